//! OSV records (schema 1.x, read tolerantly) and matching: a package version is affected
//! if it is listed in `versions` or inside a range, walking the range's events in version
//! order (introduced sets, fixed / last_affected clear, limit bounds). ECOSYSTEM ranges use
//! the ecosystem's own order ([`crate::version`]); GIT ranges are not evaluated. Withdrawn
//! records never match.

use std::cmp::Ordering;

use serde::{Deserialize, Serialize};

use crate::packages::{Kind, Os, Package, pep503};
use crate::version::Scheme;

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct Record {
    pub id: String,
    #[serde(default)]
    pub modified: String,
    #[serde(default)]
    pub published: Option<String>,
    #[serde(default)]
    pub withdrawn: Option<String>,
    #[serde(default, deserialize_with = "null_vec")]
    pub aliases: Vec<String>,
    #[serde(default)]
    pub summary: Option<String>,
    #[serde(default)]
    pub details: Option<String>,
    #[serde(default, deserialize_with = "null_vec")]
    pub severity: Vec<Severity>,
    #[serde(default, deserialize_with = "null_vec")]
    pub affected: Vec<Affected>,
    #[serde(default, deserialize_with = "null_vec")]
    pub references: Vec<Reference>,
    #[serde(default)]
    pub database_specific: Option<serde_json::Value>,
}

fn null_vec<'de, D: serde::Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Vec<T>, D::Error> {
    Ok(Option::<Vec<T>>::deserialize(d)?.unwrap_or_default())
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct Severity {
    #[serde(rename = "type")]
    pub kind: String,
    pub score: String,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct Reference {
    #[serde(rename = "type", default)]
    pub kind: String,
    #[serde(default)]
    pub url: String,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct PackageId {
    #[serde(default)]
    pub ecosystem: String,
    #[serde(default)]
    pub name: String,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct Affected {
    #[serde(default)]
    pub package: Option<PackageId>,
    #[serde(default, deserialize_with = "null_vec")]
    pub severity: Vec<Severity>,
    #[serde(default, deserialize_with = "null_vec")]
    pub ranges: Vec<Range>,
    #[serde(default, deserialize_with = "null_vec")]
    pub versions: Vec<String>,
    #[serde(default)]
    pub ecosystem_specific: Option<serde_json::Value>,
    #[serde(default)]
    pub database_specific: Option<serde_json::Value>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct Range {
    #[serde(rename = "type", default)]
    pub kind: String,
    #[serde(default, deserialize_with = "null_vec")]
    pub events: Vec<Event>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct Event {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub introduced: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fixed: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_affected: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<String>,
}

/// The key advisories are filed and looked up under: distro releases are reduced to
/// what an image's os-release can tell (`Ubuntu:22.04:LTS` → `Ubuntu:22.04`,
/// `Red Hat:enterprise_linux:9::appstream` → `Red Hat:enterprise_linux:9`,
/// `Debian:12`, `Alpine:v3.19`); language ecosystems are kept as they are.
pub fn ecosystem_key(ecosystem: &str) -> String {
    let parts: Vec<&str> = ecosystem.split(':').collect();
    match parts[0] {
        "Ubuntu" => {
            let rest: Vec<&str> =
                parts[1..].iter().copied().filter(|p| *p != "LTS" && *p != "Pro" && *p != "FIPS").collect();
            match rest.first() {
                Some(v) => format!("Ubuntu:{v}"),
                None => "Ubuntu".into(),
            }
        }
        "Red Hat" => parts.iter().take(3).copied().collect::<Vec<_>>().join(":"),
        "Maven" => "Maven".into(),
        _ => parts.iter().take(2).copied().collect::<Vec<_>>().join(":"),
    }
}

/// The normalised package name under an ecosystem (PyPI names are PEP 503-normalised).
pub fn name_key(ecosystem: &str, name: &str) -> String {
    if ecosystem == "PyPI" { pep503(name) } else { name.to_string() }
}

/// (ecosystem key, name) under which a found package's advisories are looked up.
pub fn package_key(os: Option<&Os>, p: &Package) -> Option<(String, String)> {
    let eco = match p.kind {
        Kind::Deb | Kind::Apk | Kind::Rpm => ecosystem_key(&os?.osv_ecosystem()?),
        Kind::Golang => "Go".into(),
        Kind::Pypi => "PyPI".into(),
        Kind::Npm => "npm".into(),
        Kind::Cargo => "crates.io".into(),
        Kind::Maven => "Maven".into(),
        Kind::Gem => "RubyGems".into(),
    };
    let name = if matches!(p.kind, Kind::Deb | Kind::Apk | Kind::Rpm) { p.source_name.clone() } else { p.name.clone() };
    Some((eco.clone(), name_key(&eco, &name)))
}

/// The version advisories are compared against: distro advisories name source versions.
pub fn package_version(p: &Package) -> &str {
    match p.kind {
        Kind::Deb | Kind::Apk | Kind::Rpm => &p.source_version,
        _ => &p.version,
    }
}

/// One advisory that applies to a package.
#[derive(Debug, Clone, PartialEq)]
pub struct Hit {
    /// The CVE id when the record has one as id or alias, else the record's id.
    pub id: String,
    pub record_id: String,
    pub fixed_version: String,
    pub severity: String,
    pub cvss_v3_score: Option<f64>,
    pub cvss_v3_vector: String,
    pub description: String,
    pub links: Vec<String>,
}

/// Whether `version` is affected by one `affected[]` entry.
pub fn is_affected(scheme: Scheme, a: &Affected, version: &str) -> (bool, Option<String>) {
    if a.versions.iter().any(|v| scheme.compare(v, version) == Ordering::Equal) {
        return (true, first_fix(scheme, a, version));
    }
    for r in &a.ranges {
        let s = match r.kind.as_str() {
            "ECOSYSTEM" => scheme,
            "SEMVER" => Scheme::SemVer,
            _ => continue,
        };
        if in_range(s, &r.events, version) {
            return (true, first_fix(s, a, version));
        }
    }
    (false, None)
}

fn event_version(e: &Event) -> &str {
    e.introduced.as_deref().or(e.fixed.as_deref()).or(e.last_affected.as_deref()).or(e.limit.as_deref()).unwrap_or("")
}

fn cmp_event(s: Scheme, a: &str, b: &str) -> Ordering {
    // "0" means before every version.
    match (a == "0", b == "0") {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Less,
        (false, true) => Ordering::Greater,
        _ => s.compare(a, b),
    }
}

pub fn in_range(s: Scheme, events: &[Event], v: &str) -> bool {
    let mut sorted: Vec<&Event> = events.iter().collect();
    sorted.sort_by(|a, b| cmp_event(s, event_version(a), event_version(b)));
    for e in events {
        if let Some(limit) = &e.limit
            && limit != "*"
            && s.compare(v, limit) != Ordering::Less
        {
            return false;
        }
    }
    let mut affected = false;
    for e in sorted {
        if let Some(i) = &e.introduced {
            if i == "0" || s.compare(v, i) != Ordering::Less {
                affected = true;
            }
        } else if let Some(f) = &e.fixed {
            if s.compare(v, f) != Ordering::Less {
                affected = false;
            }
        } else if let Some(l) = &e.last_affected
            && s.compare(v, l) == Ordering::Greater
        {
            affected = false;
        }
    }
    affected
}

/// The lowest fixed version above `v`, as Harbor reports `fix_version`.
fn first_fix(s: Scheme, a: &Affected, v: &str) -> Option<String> {
    let mut fixes: Vec<&str> = a
        .ranges
        .iter()
        .flat_map(|r| r.events.iter())
        .filter_map(|e| e.fixed.as_deref())
        .filter(|f| s.compare(f, v) == Ordering::Greater)
        .collect();
    fixes.sort_by(|x, y| s.compare(x, y));
    fixes.first().map(|f| f.to_string())
}

/// The advisories among `records` that apply to package `p` found in an image with `os`.
pub fn match_package(os: Option<&Os>, p: &Package, records: &[Record]) -> Vec<Hit> {
    Index::new(records).match_package(os, p)
}

/// Records grouped by the (ecosystem key, name key) pairs their `affected` entries name,
/// so that each package is compared with its own few records, not with all of an image's.
pub struct Index<'a> {
    records: &'a [Record],
    by_key: std::collections::HashMap<(String, String), Vec<usize>>,
}

impl<'a> Index<'a> {
    pub fn new(records: &'a [Record]) -> Index<'a> {
        let mut by_key: std::collections::HashMap<(String, String), Vec<usize>> = Default::default();
        for (i, r) in records.iter().enumerate() {
            if r.withdrawn.as_deref().is_some_and(|w| !w.is_empty()) {
                continue;
            }
            for a in &r.affected {
                let Some(pkg) = &a.package else { continue };
                let eco = ecosystem_key(&pkg.ecosystem);
                let name = name_key(&eco, &pkg.name);
                let list = by_key.entry((eco, name)).or_default();
                if list.last() != Some(&i) {
                    list.push(i);
                }
            }
        }
        Index { records, by_key }
    }

    /// What [`match_package`] finds, from the records given to [`Index::new`].
    pub fn match_package(&self, os: Option<&Os>, p: &Package) -> Vec<Hit> {
        let Some(key) = package_key(os, p) else { return Vec::new() };
        let Some(candidates) = self.by_key.get(&key) else { return Vec::new() };
        let (eco, name) = &key;
        let version = package_version(p);
        let mut hits = Vec::new();
        for r in candidates.iter().map(|&i| &self.records[i]) {
            for a in &r.affected {
                let Some(pkg) = &a.package else { continue };
                if &ecosystem_key(&pkg.ecosystem) != eco || &name_key(eco, &pkg.name) != name {
                    continue;
                }
                let Some(scheme) = Scheme::for_ecosystem(&pkg.ecosystem) else { continue };
                let (yes, fix) = is_affected(scheme, a, version);
                if yes {
                    hits.push(hit(r, a, fix));
                    break;
                }
            }
        }
        // One row per CVE for a package, as Harbor keeps one per (cve, package, version).
        hits.sort_by(|a, b| a.id.cmp(&b.id).then(a.record_id.cmp(&b.record_id)));
        hits.dedup_by(|a, b| a.id == b.id);
        hits
    }
}

fn hit(r: &Record, a: &Affected, fix: Option<String>) -> Hit {
    let id = if r.id.starts_with("CVE-") {
        r.id.clone()
    } else {
        r.aliases.iter().find(|x| x.starts_with("CVE-")).cloned().unwrap_or_else(|| r.id.clone())
    };
    let sev_list = if a.severity.is_empty() { &r.severity } else { &a.severity };
    let vector = sev_list.iter().find(|s| s.kind == "CVSS_V3").map(|s| s.score.clone()).unwrap_or_default();
    let score = crate::cvss::base_score_v3(&vector);
    let severity = score
        .map(crate::cvss::rating)
        .map(str::to_owned)
        .or_else(|| word_severity(sev_list, a, r))
        .unwrap_or_else(|| "Unknown".to_string());
    let description = r.details.clone().filter(|d| !d.is_empty()).or_else(|| r.summary.clone()).unwrap_or_default();
    Hit {
        id,
        record_id: r.id.clone(),
        fixed_version: fix.unwrap_or_default(),
        severity,
        cvss_v3_score: score,
        cvss_v3_vector: vector,
        description,
        links: r.references.iter().map(|x| x.url.clone()).filter(|u| !u.is_empty()).take(5).collect(),
    }
}

/// A severity word from the record (Ubuntu priorities, GHSA's `database_specific.severity`).
fn word_severity(list: &[Severity], a: &Affected, r: &Record) -> Option<String> {
    let word = list
        .iter()
        .find(|s| s.kind == "Ubuntu")
        .map(|s| s.score.clone())
        .or_else(|| {
            a.ecosystem_specific.as_ref().and_then(|v| v.get("severity")).and_then(|v| v.as_str()).map(str::to_owned)
        })
        .or_else(|| {
            a.database_specific.as_ref().and_then(|v| v.get("severity")).and_then(|v| v.as_str()).map(str::to_owned)
        })
        .or_else(|| {
            r.database_specific.as_ref().and_then(|v| v.get("severity")).and_then(|v| v.as_str()).map(str::to_owned)
        })?;
    Some(
        match word.to_ascii_lowercase().as_str() {
            "critical" => "Critical",
            "high" | "important" => "High",
            "medium" | "moderate" => "Medium",
            "low" => "Low",
            "negligible" | "unimportant" => "Negligible",
            _ => "Unknown",
        }
        .to_string(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(i: Option<&str>, f: Option<&str>, l: Option<&str>) -> Event {
        Event { introduced: i.map(Into::into), fixed: f.map(Into::into), last_affected: l.map(Into::into), limit: None }
    }

    #[test]
    fn ranges() {
        let r = [ev(Some("0"), None, None), ev(None, Some("1.2.3-4"), None)];
        assert!(in_range(Scheme::Dpkg, &r, "1.2.3-3"));
        assert!(in_range(Scheme::Dpkg, &r, "1.2.3-4~deb12u1"));
        assert!(!in_range(Scheme::Dpkg, &r, "1.2.3-4"));
        assert!(!in_range(Scheme::Dpkg, &r, "1.2.3-4+b1"));
        let two = [
            ev(Some("1.0.0"), None, None),
            ev(None, Some("1.0.5"), None),
            ev(Some("2.0.0"), None, None),
            ev(None, None, Some("2.1.0")),
        ];
        for (v, want) in
            [("0.9.0", false), ("1.0.1", true), ("1.0.5", false), ("2.0.0", true), ("2.1.0", true), ("2.1.1", false)]
        {
            assert_eq!(in_range(Scheme::SemVer, &two, v), want, "{v}");
        }
    }

    #[test]
    fn keys() {
        assert_eq!(ecosystem_key("Ubuntu:22.04:LTS"), "Ubuntu:22.04");
        assert_eq!(ecosystem_key("Ubuntu:Pro:18.04:LTS"), "Ubuntu:18.04");
        assert_eq!(ecosystem_key("Red Hat:enterprise_linux:9::appstream"), "Red Hat:enterprise_linux:9");
        assert_eq!(ecosystem_key("Alpine:v3.19"), "Alpine:v3.19");
        assert_eq!(ecosystem_key("Debian:12"), "Debian:12");
        assert_eq!(ecosystem_key("PyPI"), "PyPI");
    }
}
