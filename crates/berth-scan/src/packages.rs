//! Package inventories read from a squashed filesystem: OS packages (dpkg `status` and
//! `status.d`, apk `installed`, rpm's SQLite, Berkeley DB and NDB databases) and language
//! packages (Go build information and cargo-auditable data in executables, Python
//! dist-info/egg-info, npm lock files and `node_modules`, Cargo.lock, Maven properties in
//! jars, gem specifications), and the OS from os-release.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Cursor, Read};

use serde::Serialize;

use crate::layers::{Kept, Squashed};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Deb,
    Apk,
    Rpm,
    Golang,
    Pypi,
    Npm,
    Cargo,
    Maven,
    Gem,
}

impl Kind {
    /// The purl type.
    pub fn purl_type(self) -> &'static str {
        match self {
            Kind::Deb => "deb",
            Kind::Apk => "apk",
            Kind::Rpm => "rpm",
            Kind::Golang => "golang",
            Kind::Pypi => "pypi",
            Kind::Npm => "npm",
            Kind::Cargo => "cargo",
            Kind::Maven => "maven",
            Kind::Gem => "gem",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Package {
    pub kind: Kind,
    pub name: String,
    pub version: String,
    /// For OS packages: the source package (what distro advisories name) and its version.
    pub source_name: String,
    pub source_version: String,
    pub arch: String,
    pub license: String,
    /// Where it was found.
    pub path: String,
}

impl Package {
    fn new(kind: Kind, name: &str, version: &str, path: &str) -> Package {
        Package {
            kind,
            name: name.to_string(),
            version: version.to_string(),
            source_name: name.to_string(),
            source_version: version.to_string(),
            arch: String::new(),
            license: String::new(),
            path: path.to_string(),
        }
    }
}

/// The operating system, from os-release.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Os {
    /// `ID` (debian, ubuntu, alpine, rhel, …).
    pub id: String,
    /// `VERSION_ID` (12, 22.04, 3.19.1, 9.3, …).
    pub version_id: String,
    pub pretty_name: String,
}

impl Os {
    /// The OSV ecosystem key its packages' advisories are filed under (see
    /// [`crate::osv::ecosystem_key`]): `Debian:12`, `Ubuntu:22.04`, `Alpine:v3.19`, …
    pub fn osv_ecosystem(&self) -> Option<String> {
        let major = self.version_id.split('.').next().unwrap_or("");
        let major_minor: String = self.version_id.split('.').take(2).collect::<Vec<_>>().join(".");
        Some(match self.id.as_str() {
            "debian" if !major.is_empty() => format!("Debian:{major}"),
            "debian" => "Debian".to_string(),
            "ubuntu" => format!("Ubuntu:{}", self.version_id),
            "alpine" => format!("Alpine:v{major_minor}"),
            "rhel" => format!("Red Hat:enterprise_linux:{major}"),
            "almalinux" => format!("AlmaLinux:{major}"),
            "rocky" => format!("Rocky Linux:{major}"),
            "wolfi" => "Wolfi".to_string(),
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Inventory {
    pub os: Option<Os>,
    pub packages: Vec<Package>,
    /// Package databases and executables that could not be read, one sentence each.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

/// Reads everything Berth knows how to read.
pub fn inventory(fs: &Squashed) -> Inventory {
    let mut pkgs = Vec::new();
    let mut warnings = Vec::new();
    let os = read_os(fs);
    for (path, kept) in &fs.files {
        match kept {
            Kept::Go(info) => pkgs.extend(go_packages(path, info)),
            Kept::Rust(Ok(crates)) => {
                pkgs.extend(crates.iter().map(|c| Package::new(Kind::Cargo, &c.name, &c.version, path)))
            }
            Kept::Rust(Err(e)) => warnings.push(format!("{path}: cargo-auditable data: {e}")),
            Kept::Bytes(b) => {
                let name = path.rsplit('/').next().unwrap_or(path);
                let text = || String::from_utf8_lossy(b);
                if path == "var/lib/dpkg/status" || path.starts_with("var/lib/dpkg/status.d/") {
                    if !name.ends_with(".md5sums") {
                        pkgs.extend(dpkg(path, &text()));
                    }
                } else if path.ends_with("apk/db/installed") {
                    pkgs.extend(apk(path, &text()));
                } else if let Some(format) = crate::rpmdb::Format::of_path(path) {
                    match crate::rpmdb::read(path, format, b) {
                        Ok(p) => pkgs.extend(p),
                        Err(e) => warnings.push(e.to_string()),
                    }
                } else if name == "METADATA" || name == "PKG-INFO" || name.ends_with(".egg-info") {
                    pkgs.extend(python(path, &text()));
                } else if name == "package-lock.json" {
                    pkgs.extend(npm_lock(path, b));
                } else if name == "package.json" {
                    pkgs.extend(npm_package(path, b));
                } else if name == "Cargo.lock" {
                    pkgs.extend(cargo_lock(path, &text()));
                } else if name.ends_with(".jar") || name.ends_with(".war") {
                    pkgs.extend(jar(path, b));
                } else if name.ends_with(".gemspec") {
                    pkgs.extend(gem(path, &text()));
                }
            }
        }
    }
    pkgs.sort();
    pkgs.dedup_by(|a, b| a.kind == b.kind && a.name == b.name && a.version == b.version && a.path == b.path);
    Inventory { os, packages: pkgs, warnings }
}

fn read_os(fs: &Squashed) -> Option<Os> {
    let text = fs.bytes("etc/os-release").or_else(|| fs.bytes("usr/lib/os-release"));
    let mut os = Os::default();
    if let Some(t) = text {
        for line in String::from_utf8_lossy(t).lines() {
            if let Some((k, v)) = line.split_once('=') {
                let v = v.trim().trim_matches('"').trim_matches('\'').to_string();
                match k.trim() {
                    "ID" => os.id = v,
                    "VERSION_ID" => os.version_id = v,
                    "PRETTY_NAME" => os.pretty_name = v,
                    _ => {}
                }
            }
        }
    }
    if os.id.is_empty() {
        if let Some(v) = fs.bytes("etc/alpine-release") {
            os.id = "alpine".into();
            os.version_id = String::from_utf8_lossy(v).trim().to_string();
        } else if let Some(v) = fs.bytes("etc/debian_version") {
            os.id = "debian".into();
            os.version_id = String::from_utf8_lossy(v).trim().to_string();
        } else {
            return None;
        }
    }
    // Debian point releases (12.5) and testing (trixie/sid) file under the major number.
    if os.id == "debian"
        && os.version_id.is_empty()
        && let Some(v) = fs.bytes("etc/debian_version")
    {
        os.version_id = String::from_utf8_lossy(v).trim().to_string();
    }
    Some(os)
}

/// RFC 822-style stanzas separated by blank lines; continuation lines are skipped.
fn stanzas(text: &str) -> Vec<BTreeMap<String, String>> {
    let mut out = Vec::new();
    let mut cur = BTreeMap::new();
    for line in text.lines() {
        if line.trim().is_empty() {
            if !cur.is_empty() {
                out.push(std::mem::take(&mut cur));
            }
            continue;
        }
        if line.starts_with(' ') || line.starts_with('\t') {
            continue;
        }
        if let Some((k, v)) = line.split_once(':') {
            cur.insert(k.trim().to_string(), v.trim().to_string());
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

pub fn dpkg(path: &str, text: &str) -> Vec<Package> {
    let mut out = Vec::new();
    for s in stanzas(text) {
        let (Some(name), Some(version)) = (s.get("Package"), s.get("Version")) else { continue };
        // Only installed packages (status.d files carry no Status field).
        if let Some(st) = s.get("Status")
            && !st.ends_with(" installed")
        {
            continue;
        }
        let mut p = Package::new(Kind::Deb, name, version, path);
        p.arch = s.get("Architecture").cloned().unwrap_or_default();
        if let Some(src) = s.get("Source") {
            // `Source: name (version)` when the source version differs.
            match src.split_once(' ') {
                Some((n, v)) => {
                    p.source_name = n.to_string();
                    p.source_version = v.trim().trim_start_matches('(').trim_end_matches(')').to_string();
                }
                None => p.source_name = src.clone(),
            }
        }
        out.push(p);
    }
    out
}

pub fn apk(path: &str, text: &str) -> Vec<Package> {
    let mut out = Vec::new();
    let mut fields: BTreeMap<char, String> = BTreeMap::new();
    let mut flush = |fields: &mut BTreeMap<char, String>| {
        if let (Some(n), Some(v)) = (fields.get(&'P'), fields.get(&'V')) {
            let mut p = Package::new(Kind::Apk, n, v, path);
            if let Some(o) = fields.get(&'o') {
                p.source_name = o.clone();
            }
            p.arch = fields.get(&'A').cloned().unwrap_or_default();
            p.license = fields.get(&'L').cloned().unwrap_or_default();
            out.push(p);
        }
        fields.clear();
    };
    for line in text.lines() {
        if line.trim().is_empty() {
            flush(&mut fields);
            continue;
        }
        let mut cs = line.chars();
        if let (Some(k), Some(':')) = (cs.next(), cs.next()) {
            fields.entry(k).or_insert_with(|| cs.as_str().to_string());
        }
    }
    flush(&mut fields);
    out
}

fn go_packages(path: &str, info: &crate::gobin::BuildInfo) -> Vec<Package> {
    let mut out = Vec::new();
    if let Some(m) = &info.main
        && m.version != "(devel)"
        && !m.version.is_empty()
    {
        out.push(Package::new(Kind::Golang, &m.path, &m.version, path));
    }
    for d in &info.deps {
        out.push(Package::new(Kind::Golang, &d.path, &d.version, path));
    }
    // The standard library, as other scanners report it, so Go advisories on it match.
    if let Some(v) = info.go_version.strip_prefix("go") {
        let v = v.split([' ', '-']).next().unwrap_or(v);
        out.push(Package::new(Kind::Golang, "stdlib", &format!("v{v}"), path));
    }
    out
}

/// PEP 503 normalisation: lower case, runs of `-_.` become `-`.
pub fn pep503(name: &str) -> String {
    let mut out = String::new();
    let mut dash = false;
    for c in name.chars() {
        if c == '-' || c == '_' || c == '.' {
            dash = true;
        } else {
            if dash && !out.is_empty() {
                out.push('-');
            }
            dash = false;
            out.push(c.to_ascii_lowercase());
        }
    }
    out
}

fn python(path: &str, text: &str) -> Vec<Package> {
    let mut name = None;
    let mut version = None;
    let mut license = String::new();
    for line in text.lines() {
        if line.is_empty() {
            break; // the body follows the headers
        }
        if let Some((k, v)) = line.split_once(':') {
            let v = v.trim();
            match k {
                "Name" => name = Some(v.to_string()),
                "Version" => version = Some(v.to_string()),
                "License-Expression" => license = v.to_string(),
                "License" if license.is_empty() && v.len() < 100 => license = v.to_string(),
                _ => {}
            }
        }
    }
    match (name, version) {
        (Some(n), Some(v)) => {
            let mut p = Package::new(Kind::Pypi, &pep503(&n), &v, path);
            p.license = license;
            vec![p]
        }
        _ => Vec::new(),
    }
}

fn npm_lock(path: &str, bytes: &[u8]) -> Vec<Package> {
    let Ok(doc) = serde_json::from_slice::<serde_json::Value>(bytes) else { return Vec::new() };
    let mut out = Vec::new();
    if let Some(pkgs) = doc.get("packages").and_then(|p| p.as_object()) {
        // Lock file v2/v3: keys are install paths; the root ("") is the project itself.
        for (k, v) in pkgs {
            let Some(name) = k.rsplit_once("node_modules/").map(|(_, n)| n) else { continue };
            if v.get("link").and_then(|l| l.as_bool()) == Some(true) {
                continue;
            }
            if let Some(ver) = v.get("version").and_then(|x| x.as_str()) {
                out.push(Package::new(Kind::Npm, name, ver, path));
            }
        }
    } else if let Some(deps) = doc.get("dependencies").and_then(|d| d.as_object()) {
        // Lock file v1: nested dependencies.
        fn walk(deps: &serde_json::Map<String, serde_json::Value>, path: &str, out: &mut Vec<Package>) {
            for (name, v) in deps {
                if let Some(ver) = v.get("version").and_then(|x| x.as_str()) {
                    out.push(Package::new(Kind::Npm, name, ver, path));
                }
                if let Some(sub) = v.get("dependencies").and_then(|d| d.as_object()) {
                    walk(sub, path, out);
                }
            }
        }
        walk(deps, path, &mut out);
    }
    out
}

fn npm_package(path: &str, bytes: &[u8]) -> Vec<Package> {
    let Ok(doc) = serde_json::from_slice::<serde_json::Value>(bytes) else { return Vec::new() };
    match (doc.get("name").and_then(|v| v.as_str()), doc.get("version").and_then(|v| v.as_str())) {
        (Some(n), Some(v)) => {
            let mut p = Package::new(Kind::Npm, n, v, path);
            p.license = doc.get("license").and_then(|l| l.as_str()).unwrap_or("").to_string();
            vec![p]
        }
        _ => Vec::new(),
    }
}

fn cargo_lock(path: &str, text: &str) -> Vec<Package> {
    // `[[package]]` tables with `name = "…"` and `version = "…"`; read line by line so a
    // lock file of any version needs no TOML parser.
    let mut out = Vec::new();
    let mut name: Option<String> = None;
    let mut version: Option<String> = None;
    let mut source = false;
    let mut flush = |name: &mut Option<String>, version: &mut Option<String>, source: &mut bool| {
        if let (Some(n), Some(v)) = (name.take(), version.take()) {
            // Workspace members (no source) are the application itself, not dependencies.
            if *source {
                out.push(Package::new(Kind::Cargo, &n, &v, path));
            }
        }
        *source = false;
    };
    for line in text.lines() {
        let line = line.trim();
        if line == "[[package]]" {
            flush(&mut name, &mut version, &mut source);
        } else if let Some(v) = line.strip_prefix("name = ") {
            name = Some(v.trim_matches('"').to_string());
        } else if let Some(v) = line.strip_prefix("version = ") {
            version = Some(v.trim_matches('"').to_string());
        } else if line.starts_with("source = ") {
            source = true;
        }
    }
    flush(&mut name, &mut version, &mut source);
    out
}

fn jar(path: &str, bytes: &[u8]) -> Vec<Package> {
    let Ok(mut zip) = zip::ZipArchive::new(Cursor::new(bytes)) else { return Vec::new() };
    let mut out = Vec::new();
    let names: Vec<String> = zip.file_names().filter(|n| n.ends_with("/pom.properties")).map(str::to_owned).collect();
    for n in names {
        let Ok(mut f) = zip.by_name(&n) else { continue };
        let mut s = String::new();
        if f.read_to_string(&mut s).is_err() {
            continue;
        }
        let mut g = None;
        let mut a = None;
        let mut v = None;
        for line in s.lines() {
            match line.split_once('=') {
                Some(("groupId", x)) => g = Some(x.trim().to_string()),
                Some(("artifactId", x)) => a = Some(x.trim().to_string()),
                Some(("version", x)) => v = Some(x.trim().to_string()),
                _ => {}
            }
        }
        if let (Some(g), Some(a), Some(v)) = (g, a, v) {
            out.push(Package::new(Kind::Maven, &format!("{g}:{a}"), &v, path));
        }
    }
    out
}

fn gem(path: &str, text: &str) -> Vec<Package> {
    // `s.name = "rack"` / `s.version = "2.2.8"` in the installed specification.
    let mut name = None;
    let mut version = None;
    for line in text.lines() {
        let l = line.trim();
        let value = |l: &str| {
            l.split_once('=')
                .map(|(_, v)| v.trim().trim_start_matches("\"").split('"').next().unwrap_or("").to_string())
        };
        if l.starts_with("s.name ") || l.starts_with("s.name=") {
            name = value(l);
        } else if l.starts_with("s.version ") || l.starts_with("s.version=") {
            let v = l.split_once('=').map(|(_, v)| v.to_string()).unwrap_or_default();
            // `"1.2.3"` or `Gem::Version.new("1.2.3")`
            version = v.split('"').nth(1).map(str::to_owned);
        }
    }
    match (name, version) {
        (Some(n), Some(v)) if !n.is_empty() => vec![Package::new(Kind::Gem, &n, &v, path)],
        _ => Vec::new(),
    }
}

/// The distinct (ecosystem, name) pairs an inventory's packages are matched under.
pub fn lookup_keys(inv: &Inventory) -> BTreeSet<(String, String)> {
    inv.packages.iter().filter_map(|p| crate::osv::package_key(inv.os.as_ref(), p)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dpkg_sources_and_status() {
        let t = "Package: libc6\nStatus: install ok installed\nArchitecture: amd64\nSource: glibc\nVersion: 2.36-9+deb12u4\nDescription: x\n continuation\n\nPackage: gone\nStatus: deinstall ok config-files\nVersion: 1\n\nPackage: libssl3\nStatus: install ok installed\nSource: openssl (3.0.11-1~deb12u2)\nVersion: 3.0.11-1~deb12u2+b1\n";
        let p = dpkg("var/lib/dpkg/status", t);
        assert_eq!(p.len(), 2);
        assert_eq!((p[0].source_name.as_str(), p[0].source_version.as_str()), ("glibc", "2.36-9+deb12u4"));
        assert_eq!((p[1].source_name.as_str(), p[1].source_version.as_str()), ("openssl", "3.0.11-1~deb12u2"));
    }

    #[test]
    fn apk_origin() {
        let p = apk(
            "lib/apk/db/installed",
            "C:Q1x\nP:libcrypto3\nV:3.1.4-r5\nA:x86_64\no:openssl\nL:Apache-2.0\n\nP:musl\nV:1.2.4-r2\n",
        );
        assert_eq!(p.len(), 2);
        assert_eq!(p[0].source_name, "openssl");
        assert_eq!(p[1].source_name, "musl");
    }

    #[test]
    fn language_files() {
        assert_eq!(pep503("Foo_Bar.baz"), "foo-bar-baz");
        let lock = br#"{"lockfileVersion":3,"packages":{"":{"name":"app","version":"1.0.0"},"node_modules/lodash":{"version":"4.17.20"},"node_modules/@scope/x":{"version":"1.0.0"}}}"#;
        let p = npm_lock("app/package-lock.json", lock);
        assert_eq!(p.iter().map(|p| p.name.as_str()).collect::<Vec<_>>(), vec!["@scope/x", "lodash"]);
        let cl = "version = 3\n\n[[package]]\nname = \"app\"\nversion = \"0.1.0\"\n\n[[package]]\nname = \"smallvec\"\nversion = \"1.6.0\"\nsource = \"registry+https://github.com/rust-lang/crates.io-index\"\n";
        let p = cargo_lock("app/Cargo.lock", cl);
        assert_eq!(p.len(), 1);
        assert_eq!((p[0].name.as_str(), p[0].version.as_str()), ("smallvec", "1.6.0"));
        let g = gem(
            "usr/lib/ruby/gems/3.1.0/specifications/rack-2.2.3.gemspec",
            "Gem::Specification.new do |s|\n  s.name = \"rack\".freeze\n  s.version = \"2.2.3\"\nend\n",
        );
        assert_eq!((g[0].name.as_str(), g[0].version.as_str()), ("rack", "2.2.3"));
    }
}
