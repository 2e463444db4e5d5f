//! Vulnerabilities across artifacts, read from the stored scan reports: what Harbor's
//! security hub (`/security/summary`, `/security/vul`) and the CVE export job show
//! (goharbor/harbor `src/pkg/securityhub/dao/security.go`, `src/pkg/scan/export`).
//!
//! Harbor keeps one row per vulnerability and report and answers with SQL; Berth keeps
//! each report as one JSON document (`VulnStore`), so this walks the catalog a page of
//! repositories and artifacts at a time, reads the reports of each page of digests, and
//! hands every artifact with its findings to the caller. A walk visits at most
//! [`MAX_ARTIFACTS`] artifacts; the scope (project, repository, digest, tag, labels)
//! narrows it before any report is read. No table of its own, no migration.

use std::collections::{HashMap, HashSet};

use berth_core::policy::{Compiled, Selector};
use berth_core::store::StoreResult;
use berth_core::store::catalog::{ArtifactInfo, CatalogStore};
use berth_core::store::identity::{IdentityStore, Page};
use berth_core::store::labels::LabelStore;
use berth_core::store::vulns::VulnStore;
use berth_core::{Digest, RepoName};
use serde_json::Value;

use crate::scan::{MIME_REPORT_1_1, MIME_REPORT_NATIVE};

/// The most artifacts one walk visits (a bound on a request's work; the rest is not
/// counted).
pub const MAX_ARTIFACTS: u64 = 100_000;
const PAGE: u64 = 100;

/// One vulnerability found in one artifact.
#[derive(Debug, Clone, PartialEq)]
pub struct Finding {
    pub cve_id: String,
    pub package: String,
    pub version: String,
    pub fixed_version: String,
    /// Harbor's words: Critical, High, Medium, Low, Negligible/None, Unknown.
    pub severity: String,
    pub cvss_v3: Option<f64>,
    pub description: String,
    pub links: Vec<String>,
    pub cwe_ids: Vec<String>,
    /// The report's `vendor_attributes` (JSON text).
    pub vendor_attributes: String,
}

impl Finding {
    /// `fixed` when a fixed version is known, else `affected` (as the report shows it).
    pub fn status(&self) -> &'static str {
        if self.fixed_version.is_empty() { "affected" } else { "fixed" }
    }

    fn from_json(v: &Value) -> Option<Finding> {
        let s = |k: &str| v.get(k).and_then(Value::as_str).unwrap_or_default().to_string();
        let list = |k: &str| {
            v.get(k)
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(|x| x.as_str().map(str::to_string)).collect())
                .unwrap_or_default()
        };
        let id = s("id");
        if id.is_empty() {
            return None;
        }
        Some(Finding {
            cve_id: id,
            package: s("package"),
            version: s("version"),
            fixed_version: s("fix_version"),
            severity: if s("severity").is_empty() { "Unknown".into() } else { s("severity") },
            cvss_v3: v.pointer("/preferred_cvss/score_v3").and_then(Value::as_f64),
            description: s("description"),
            links: list("links"),
            cwe_ids: list("cwe_ids"),
            vendor_attributes: v
                .get("vendor_attributes")
                .filter(|a| !a.is_null())
                .map(Value::to_string)
                .unwrap_or_default(),
        })
    }
}

/// An artifact the walk visits.
#[derive(Debug, Clone)]
pub struct Visited<'a> {
    pub project_id: i64,
    pub artifact: &'a ArtifactInfo,
    /// Whether it has a vulnerability report (of any status), as Harbor's `scanned_cnt`.
    pub scanned: bool,
    /// The scanner's name, when there is a successful report.
    pub scanner: String,
    /// The findings of its latest successful vulnerability report.
    pub findings: Vec<Finding>,
}

/// What a walk covers; `None`/empty means all.
#[derive(Debug, Clone, Default)]
pub struct Scope {
    pub project_id: Option<i64>,
    /// Exact repository names.
    pub repositories: Option<HashSet<String>>,
    /// A doublestar pattern the repository name without its project must match (the CVE
    /// export's `repositories`).
    pub repository_pattern: Option<Compiled>,
    pub digest: Option<String>,
    /// The artifact must have one of these tags (exact).
    pub tags: Option<HashSet<String>>,
    /// A doublestar pattern one of the artifact's tags must match (the export's `tags`).
    pub tag_pattern: Option<Compiled>,
    /// The artifact must carry one of these labels.
    pub labels: Vec<i64>,
}

/// The stores a walk reads.
pub struct Sources<'a> {
    pub catalog: &'a dyn CatalogStore,
    pub identity: &'a dyn IdentityStore,
    pub vulns: &'a dyn VulnStore,
    pub labels: &'a dyn LabelStore,
}

/// Harbor's doublestar filter (`{a,b}` alternates), for repositories (`repo`) or tags;
/// errors name `field`.
pub fn pattern(field: &str, p: &str, repo: bool) -> Result<Compiled, berth_core::policy::PolicyError> {
    let s = Selector {
        kind: "doublestar".into(),
        decoration: if repo { "repoMatches" } else { "matches" }.into(),
        pattern: p.into(),
        extras: String::new(),
    };
    Compiled::new(&s, field, repo).map_err(|mut e| {
        e.field = field.into();
        e
    })
}

/// Visits every artifact in scope with its findings; returns how many were visited.
pub async fn walk(src: &Sources<'_>, scope: &Scope, visit: &mut (dyn FnMut(Visited<'_>) + Send)) -> StoreResult<u64> {
    let project_name = match scope.project_id {
        Some(id) => match src.identity.project(id).await? {
            Some(p) => Some(p.name),
            None => return Ok(0),
        },
        None => None,
    };
    let mut project_ids: HashMap<String, i64> = HashMap::new();
    let mut visited = 0u64;
    let mut page = 1u64;
    'repos: loop {
        let (repos, _) =
            src.catalog.list_repositories(project_name.as_deref(), None, &Page { page, page_size: PAGE }).await?;
        let n = repos.len() as u64;
        for repo in repos {
            let short = repo.name.split_once('/').map_or(repo.name.as_str(), |(_, r)| r);
            if scope.repositories.as_ref().is_some_and(|set| !set.contains(&repo.name))
                || scope.repository_pattern.as_ref().is_some_and(|p| !p.selects(short))
            {
                continue;
            }
            let project_id = match project_ids.get(&repo.project_name) {
                Some(id) => *id,
                None => {
                    let id = src.identity.project_by_name(&repo.project_name).await?.map_or(0, |p| p.id);
                    project_ids.insert(repo.project_name.clone(), id);
                    id
                }
            };
            let Ok(name) = repo.name.parse::<RepoName>() else { continue };
            let mut apage = 1u64;
            loop {
                let Some((artifacts, _)) =
                    src.catalog.list_artifacts(&name, &Page { page: apage, page_size: PAGE }, true).await?
                else {
                    break;
                };
                let an = artifacts.len() as u64;
                let mut kept: Vec<&ArtifactInfo> = Vec::with_capacity(artifacts.len());
                for a in &artifacts {
                    if scope.digest.as_ref().is_some_and(|d| *d != a.digest.to_string()) {
                        continue;
                    }
                    if let Some(tags) = &scope.tags
                        && !a.tags.iter().any(|t| tags.contains(&t.name))
                    {
                        continue;
                    }
                    if let Some(p) = &scope.tag_pattern
                        && !a.tags.iter().any(|t| p.selects(&t.name))
                    {
                        continue;
                    }
                    if !scope.labels.is_empty() && !has_label(src, &name, &a.digest, &scope.labels).await? {
                        continue;
                    }
                    kept.push(a);
                }
                let digests: Vec<String> = kept.iter().map(|a| a.digest.to_string()).collect();
                let reports = if digests.is_empty() { Vec::new() } else { src.vulns.scan_reports_of(&digests).await? };
                for a in kept {
                    if visited >= MAX_ARTIFACTS {
                        break 'repos;
                    }
                    visited += 1;
                    let d = a.digest.to_string();
                    let mine: Vec<_> = reports
                        .iter()
                        .filter(|r| {
                            r.digest == d && (r.mime_type == MIME_REPORT_1_1 || r.mime_type == MIME_REPORT_NATIVE)
                        })
                        .collect();
                    let latest = mine
                        .iter()
                        .filter(|r| r.status == "Success" && !r.report.is_empty())
                        .max_by_key(|r| r.end_time.unwrap_or(r.start_time));
                    let (scanner, findings) = match latest {
                        Some(r) => {
                            let v: Value = serde_json::from_str(&r.report).unwrap_or(Value::Null);
                            let scanner = v.pointer("/scanner/name").and_then(Value::as_str).unwrap_or("").to_string();
                            let findings = v
                                .get("vulnerabilities")
                                .and_then(Value::as_array)
                                .map(|l| l.iter().filter_map(Finding::from_json).collect())
                                .unwrap_or_default();
                            (scanner, findings)
                        }
                        None => (String::new(), Vec::new()),
                    };
                    visit(Visited { project_id, artifact: a, scanned: !mine.is_empty(), scanner, findings });
                }
                if an < PAGE {
                    break;
                }
                apage += 1;
            }
        }
        if n < PAGE {
            break;
        }
        page += 1;
    }
    Ok(visited)
}

async fn has_label(src: &Sources<'_>, repo: &RepoName, digest: &Digest, wanted: &[i64]) -> StoreResult<bool> {
    Ok(src.labels.labels_of(repo, digest).await?.iter().any(|l| wanted.contains(&l.id)))
}

/// Harbor's severity order for sorting (Critical first).
pub fn severity_rank(s: &str) -> u8 {
    berth_scan::report::severity_rank(s)
}

/// The counts of Harbor's `SecuritySummary`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counts {
    pub critical: u64,
    pub high: u64,
    pub medium: u64,
    pub low: u64,
    pub none: u64,
    pub unknown: u64,
    pub fixable: u64,
}

impl Counts {
    pub fn add(&mut self, f: &Finding) {
        match f.severity.as_str() {
            "Critical" => self.critical += 1,
            "High" => self.high += 1,
            "Medium" => self.medium += 1,
            "Low" => self.low += 1,
            "None" | "Negligible" => self.none += 1,
            _ => self.unknown += 1,
        }
        if !f.fixed_version.is_empty() {
            self.fixable += 1;
        }
    }

    pub fn total(&self) -> u64 {
        self.critical + self.high + self.medium + self.low + self.none + self.unknown
    }
}

/// A finding with the artifact it was found in, as `/security/vul` lists it.
#[derive(Debug, Clone)]
pub struct Located {
    pub project_id: i64,
    pub repository: String,
    pub digest: String,
    pub tags: Vec<String>,
    pub finding: Finding,
}

/// Harbor's order of `/security/vul`: CVSS v3 score descending (none last), then
/// severity, id, repository, digest, package.
pub fn sort_located(items: &mut [Located]) {
    items.sort_by(|a, b| {
        let score = |x: &Located| x.finding.cvss_v3.unwrap_or(-1.0);
        score(b)
            .partial_cmp(&score(a))
            .unwrap_or(std::cmp::Ordering::Equal)
            .then_with(|| severity_rank(&b.finding.severity).cmp(&severity_rank(&a.finding.severity)))
            .then_with(|| a.finding.cve_id.cmp(&b.finding.cve_id))
            .then_with(|| a.repository.cmp(&b.repository))
            .then_with(|| a.digest.cmp(&b.digest))
            .then_with(|| a.finding.package.cmp(&b.finding.package))
    });
}

/// Harbor's CSV export columns (`src/pkg/scan/export/model.go`).
pub const CSV_HEADER: [&str; 10] = [
    "Repository",
    "Artifact Digest",
    "CVE",
    "Package",
    "Current Version",
    "Fixed in version",
    "Severity",
    "CWE Ids",
    "Additional Data",
    "Scanner",
];

/// A cell as Harbor writes it: a value a spreadsheet would run as a formula gets a
/// leading `'` (`src/pkg/scan/export/manager.go` `sanitizeCSVCell`), then CSV quoting.
pub fn csv_cell(value: &str) -> String {
    let v = if value.starts_with(['=', '+', '-', '@', '\t', '\r', '\n']) { format!("'{value}") } else { value.into() };
    if v.contains([',', '"', '\n', '\r']) { format!("\"{}\"", v.replace('"', "\"\"")) } else { v }
}

/// One CSV line (with its newline).
pub fn csv_line(cells: &[&str]) -> String {
    let mut s = cells.iter().map(|c| csv_cell(c)).collect::<Vec<_>>().join(",");
    s.push('\n');
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_cells_are_quoted_and_defused() {
        assert_eq!(csv_cell("libssl1.1"), "libssl1.1");
        assert_eq!(csv_cell("=cmd|'/c calc'!A1"), "'=cmd|'/c calc'!A1");
        assert_eq!(csv_cell("@evil/pkg"), "'@evil/pkg");
        assert_eq!(csv_cell("a,b"), "\"a,b\"");
        assert_eq!(csv_cell("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_line(&["a", "-1"]), "a,'-1\n");
    }

    #[test]
    fn findings_read_loosely() {
        let v = serde_json::json!({"id": "CVE-1", "package": "p", "version": "1", "fix_version": "",
            "severity": "High", "preferred_cvss": {"score_v3": 7.5}});
        let f = Finding::from_json(&v).unwrap();
        assert_eq!((f.cvss_v3, f.status()), (Some(7.5), "affected"));
        assert!(Finding::from_json(&serde_json::json!({"package": "p"})).is_none());
        let mut c = Counts::default();
        c.add(&f);
        assert_eq!((c.high, c.total(), c.fixable), (1, 1, 0));
    }
}
