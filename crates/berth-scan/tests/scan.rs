//! Images built here (tar layers with package databases listing known versions), scanned
//! against the OSV fixture in `fixtures/osv`, whose advisories each say whether they must
//! match; reports are asserted exactly and SBOMs validated against the official schemas.

use std::path::Path;

use berth_scan::osv::Record;
use berth_scan::packages::Kind;
use berth_scan::testing::tar_layer;
use berth_scan::{auditable, gobin, inventory_of_layers, report, rpmdb, sbom};
use serde_json::{Value, json};

const DPKG_STATUS: &str = "Package: libssl3\nStatus: install ok installed\nArchitecture: amd64\nSource: openssl\nVersion: 3.0.11-1~deb12u2\n\nPackage: libc6\nStatus: install ok installed\nArchitecture: amd64\nSource: glibc\nVersion: 2.36-9+deb12u4\n\nPackage: zlib1g\nStatus: install ok installed\nArchitecture: amd64\nSource: zlib\nVersion: 1:1.2.13.dfsg-1\n\nPackage: bash\nStatus: install ok installed\nArchitecture: amd64\nSource: bash (5.2.15-2)\nVersion: 5.2.15-2+b2\n\nPackage: curl\nStatus: install ok installed\nArchitecture: amd64\nVersion: 7.88.1-10+deb12u5\n";

pub fn debian_layers() -> Vec<Vec<u8>> {
    let gobin = gobin::encode_for_tests(
        "go1.22.1",
        "path\texample.com/app\nmod\texample.com/app\t(devel)\t\ndep\tgolang.org/x/net\tv0.17.0\th1:x=\n",
    );
    let l1 = tar_layer(
        &[
            (
                "etc/os-release",
                b"PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nID=debian\nVERSION_ID=\"12\"\n",
                0o644,
            ),
            ("var/lib/dpkg/status", DPKG_STATUS.as_bytes(), 0o644),
            (
                "usr/lib/python3/dist-packages/requests-2.25.0.dist-info/METADATA",
                b"Metadata-Version: 2.1\nName: requests\nVersion: 2.25.0\n\nbody",
                0o644,
            ),
            (
                "app/node_modules/lodash/package.json",
                br#"{"name":"lodash","version":"4.17.20","license":"MIT"}"#,
                0o644,
            ),
            ("usr/local/bin/app", &gobin, 0o755),
        ],
        true,
    );
    let l2 = tar_layer(
        &[
            ("usr/lib/python3/dist-packages/.wh.requests-2.25.0.dist-info", b"", 0o644),
            (
                "usr/lib/python3/dist-packages/Django-3.2.0.dist-info/METADATA",
                b"Metadata-Version: 2.1\nName: Django\nVersion: 3.2.0\nLicense: BSD-3-Clause\n",
                0o644,
            ),
        ],
        false,
    );
    vec![l1, l2]
}

fn fixture_records() -> Vec<Record> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/osv");
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let bytes = std::fs::read(e.unwrap().path()).unwrap();
        out.push(serde_json::from_slice(&bytes).unwrap());
    }
    out
}

#[test]
fn debian_image_report_is_exact() {
    let layers = debian_layers();
    let inv = inventory_of_layers(layers.iter().map(Vec::as_slice)).unwrap();
    assert_eq!(inv.os.as_ref().unwrap().osv_ecosystem().as_deref(), Some("Debian:12"));
    let names: Vec<(Kind, &str)> = inv.packages.iter().map(|p| (p.kind, p.name.as_str())).collect();
    assert_eq!(
        names,
        vec![
            (Kind::Deb, "bash"),
            (Kind::Deb, "curl"),
            (Kind::Deb, "libc6"),
            (Kind::Deb, "libssl3"),
            (Kind::Deb, "zlib1g"),
            (Kind::Golang, "golang.org/x/net"),
            (Kind::Golang, "stdlib"),
            (Kind::Pypi, "django"),
            (Kind::Npm, "lodash"),
        ],
        "requests was whited out; the (devel) main module is not a package"
    );
    let r = report::build(&inv, &fixture_records(), "2024-06-01T00:00:00Z");
    let got = serde_json::to_value(&r).unwrap();
    let want = json!({
        "generated_at": "2024-06-01T00:00:00Z",
        "scanner": {"name": "Berth", "vendor": "Berth", "version": env!("CARGO_PKG_VERSION")},
        "severity": "Critical",
        "vulnerabilities": [
            {"id": "CVE-2024-0001", "package": "libssl3", "version": "3.0.11-1~deb12u2", "fix_version": "3.0.11-1~deb12u3",
             "severity": "Critical", "description": "openssl: must match (~deb12u2 < ~deb12u3)",
             "links": ["https://security-tracker.debian.org/tracker/CVE-2024-0001"],
             "preferred_cvss": {"score_v3": 9.8, "vector_v3": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"},
             "cwe_ids": [], "vendor_attributes": {"osv_id": "DEBIAN-CVE-2024-0001", "package_type": "deb"}},
            {"id": "CVE-2024-0301", "package": "lodash", "version": "4.17.20", "fix_version": "4.17.21",
             "severity": "High", "description": "lodash: must match by SEMVER range", "links": [],
             "cwe_ids": [], "vendor_attributes": {"osv_id": "GHSA-dddd-eeee-ffff", "package_type": "npm"}},
            {"id": "CVE-2024-0201", "package": "django", "version": "3.2.0", "fix_version": "3.2.1",
             "severity": "Medium", "description": "Django: must match by range", "links": [],
             "cwe_ids": [], "vendor_attributes": {"osv_id": "GHSA-aaaa-bbbb-cccc", "package_type": "pypi"}},
            {"id": "DEBIAN-CVE-2024-0004", "package": "zlib1g", "version": "1:1.2.13.dfsg-1", "fix_version": "1:1.2.13.dfsg-2",
             "severity": "Medium", "description": "zlib: must match (same epoch, later revision)", "links": [],
             "preferred_cvss": {"score_v3": 5.9, "vector_v3": "CVSS:3.1/AV:N/AC:H/PR:N/UI:N/S:U/C:H/I:N/A:N"},
             "cwe_ids": [], "vendor_attributes": {"osv_id": "DEBIAN-CVE-2024-0004", "package_type": "deb"}},
            {"id": "CVE-2024-0401", "package": "golang.org/x/net", "version": "v0.17.0", "fix_version": "0.23.0",
             "severity": "Unknown", "description": "x/net: must match (v0.17.0 < 0.23.0)", "links": [],
             "cwe_ids": [], "vendor_attributes": {"osv_id": "GO-2024-0001", "package_type": "golang"}},
            {"id": "DEBIAN-CVE-2024-0006", "package": "bash", "version": "5.2.15-2+b2", "fix_version": "5.2.15-3",
             "severity": "Unknown", "description": "bash: must match, no severity in the record", "links": [],
             "cwe_ids": [], "vendor_attributes": {"osv_id": "DEBIAN-CVE-2024-0006", "package_type": "deb"}},
        ]
    });
    assert_eq!(got, want, "{}", serde_json::to_string_pretty(&got).unwrap());
    let s = report::summarize(&r);
    assert_eq!((s.total, s.fixable), (6, 6));
    assert_eq!(s.summary.get("Medium"), Some(&2));
}

#[test]
fn alpine_and_rpm_images() {
    let l1 = tar_layer(
        &[
            ("etc/os-release", b"ID=alpine\nVERSION_ID=3.19.1\n", 0o644),
            ("lib/apk/db/installed", b"P:libcrypto3\nV:3.1.4-r5\nA:x86_64\no:openssl\nL:Apache-2.0\n\nP:musl\nV:1.2.4-r2\nA:x86_64\no:musl\n\n", 0o644),
            ("opt/old/Cargo.lock", b"[[package]]\nname = \"smallvec\"\nversion = \"1.6.0\"\nsource = \"registry+x\"\n", 0o644),
        ],
        true,
    );
    // An opaque whiteout empties opt/old from lower layers.
    let l2 = tar_layer(&[("opt/old/.wh..wh..opq", b"", 0o644), ("opt/old/keep", b"x", 0o644)], true);
    let inv = inventory_of_layers([l1.as_slice(), l2.as_slice()]).unwrap();
    assert_eq!(inv.packages.len(), 2, "{:?}", inv.packages);
    let r = report::build(&inv, &fixture_records(), "t");
    let ids: Vec<(&str, &str, &str)> =
        r.vulnerabilities.iter().map(|v| (v.id.as_str(), v.package.as_str(), v.fix_version.as_str())).collect();
    assert_eq!(ids, vec![("CVE-2024-0101", "libcrypto3", "3.1.4-r6")]);

    let db = rpmdb::sqlite_db_for_tests(&[rpmdb::Header {
        name: "openssl-libs".into(),
        version: "3.0.7".into(),
        release: "24.el9".into(),
        epoch: Some(1),
        arch: "x86_64".into(),
        license: "ASL 2.0".into(),
        source_rpm: "openssl-3.0.7-24.el9.src.rpm".into(),
    }]);
    let l = tar_layer(
        &[
            ("etc/os-release", b"ID=\"rhel\"\nVERSION_ID=\"9.3\"\n", 0o644),
            ("usr/lib/sysimage/rpm/rpmdb.sqlite", &db, 0o644),
        ],
        true,
    );
    let inv = inventory_of_layers([l.as_slice()]).unwrap();
    assert_eq!(inv.packages.len(), 1);
    let rec: Record = serde_json::from_value(json!({"id": "RHSA-2024:1", "modified": "2024-01-01T00:00:00Z",
        "affected": [{"package": {"ecosystem": "Red Hat:enterprise_linux:9::baseos", "name": "openssl"},
        "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "1:3.0.7-25.el9_3"}]}],
        "ecosystem_specific": {"severity": "Important"}}]}))
    .unwrap();
    let r = report::build(&inv, &[rec], "t");
    assert_eq!(r.vulnerabilities.len(), 1);
    assert_eq!(r.vulnerabilities[0].severity, "High");
    assert_eq!(r.vulnerabilities[0].version, "1:3.0.7-24.el9");
}

fn rpm(name: &str, version: &str, release: &str, epoch: Option<i32>, source: &str) -> rpmdb::Header {
    rpmdb::Header {
        name: name.into(),
        version: version.into(),
        release: release.into(),
        epoch,
        arch: "x86_64".into(),
        license: "GPLv2+".into(),
        source_rpm: source.into(),
    }
}

fn listed(inv: &berth_scan::Inventory) -> Vec<(Kind, &str, &str, &str, &str)> {
    inv.packages
        .iter()
        .map(|p| (p.kind, p.name.as_str(), p.version.as_str(), p.source_name.as_str(), p.path.as_str()))
        .collect()
}

/// CentOS 7 (rpm's Berkeley DB `Packages`, page size 4096 as rpm creates it) with a Rust
/// binary built with cargo-auditable; openSUSE (NDB `Packages.db`); each inventory exact.
#[test]
fn berkeley_db_ndb_and_auditable_images() {
    let bdb = rpmdb::bdb_for_tests(
        &[
            rpm("bash", "4.2.46", "35.el7_9", None, "bash-4.2.46-35.el7_9.src.rpm"),
            rpm("openssl-libs", "1.0.2k", "26.el7_9", Some(1), "openssl-1.0.2k-26.el7_9.src.rpm"),
            rpm("gpg-pubkey", "f4a80eb5", "53a7ff4b", None, ""),
        ],
        4096,
        false,
    );
    let deps = r#"{"packages":[{"name":"server","version":"0.1.0","source":"local","root":true,"dependencies":[1,2]},
        {"name":"hyper","version":"0.14.10","source":"crates.io"},{"name":"cc","version":"1.0.0","source":"crates.io","kind":"build"}]}"#;
    let rust_bin =
        auditable::elf_for_tests(&[(".text", &[0xc3; 64]), (".dep-v0", &auditable::dep_section_for_tests(deps))]);
    let layer = tar_layer(
        &[
            ("etc/os-release", b"ID=\"centos\"\nVERSION_ID=\"7\"\n", 0o644),
            ("var/lib/rpm/Packages", &bdb, 0o644),
            ("usr/local/bin/server", &rust_bin, 0o755),
            // Not executable: not searched.
            ("usr/share/doc/server.elf", &rust_bin, 0o644),
        ],
        true,
    );
    let inv = inventory_of_layers([layer.as_slice()]).unwrap();
    assert_eq!(
        listed(&inv),
        vec![
            (Kind::Rpm, "bash", "4.2.46-35.el7_9", "bash", "var/lib/rpm/Packages"),
            (Kind::Rpm, "openssl-libs", "1:1.0.2k-26.el7_9", "openssl", "var/lib/rpm/Packages"),
            (Kind::Cargo, "hyper", "0.14.10", "hyper", "usr/local/bin/server"),
        ]
    );
    assert!(inv.warnings.is_empty(), "{:?}", inv.warnings);
    // crates.io advisories match the binary's crates.
    let rec: Record = serde_json::from_value(json!({"id": "RUSTSEC-2021-0078", "modified": "2024-01-01T00:00:00Z",
        "aliases": ["CVE-2021-32715"],
        "affected": [{"package": {"ecosystem": "crates.io", "name": "hyper"},
        "ranges": [{"type": "SEMVER", "events": [{"introduced": "0"}, {"fixed": "0.14.10"}]}]},
        {"package": {"ecosystem": "crates.io", "name": "hyper"},
        "ranges": [{"type": "SEMVER", "events": [{"introduced": "0.14.9"}, {"fixed": "0.14.12"}]}]}]}))
    .unwrap();
    let r = report::build(&inv, &[rec], "t");
    let ids: Vec<(&str, &str, &str)> =
        r.vulnerabilities.iter().map(|v| (v.id.as_str(), v.package.as_str(), v.fix_version.as_str())).collect();
    assert_eq!(ids, vec![("CVE-2021-32715", "hyper", "0.14.12")]);

    let ndb = rpmdb::ndb_for_tests(&[
        rpm("libopenssl3", "3.0.8", "150500.5.14.1", None, "openssl-3-3.0.8-150500.5.14.1.src.rpm"),
        rpm("zypper", "1.14.64", "150500.6.3.1", None, "zypper-1.14.64-150500.6.3.1.src.rpm"),
    ]);
    let layer = tar_layer(
        &[
            ("etc/os-release", b"ID=\"opensuse-leap\"\nVERSION_ID=\"15.5\"\n", 0o644),
            ("usr/lib/sysimage/rpm/Packages.db", &ndb, 0o644),
        ],
        false,
    );
    let inv = inventory_of_layers([layer.as_slice()]).unwrap();
    assert_eq!(
        listed(&inv),
        vec![
            (Kind::Rpm, "libopenssl3", "3.0.8-150500.5.14.1", "openssl-3", "usr/lib/sysimage/rpm/Packages.db"),
            (Kind::Rpm, "zypper", "1.14.64-150500.6.3.1", "zypper", "usr/lib/sysimage/rpm/Packages.db"),
        ]
    );
}

/// A damaged package database or dependency section costs its own packages, with a
/// warning naming the file, never the scan.
#[test]
fn unreadable_databases_are_warnings() {
    let mut bdb = rpmdb::bdb_for_tests(&[rpm("bash", "4.2.46", "35.el7_9", None, "")], 4096, false);
    bdb.truncate(4096 * 2);
    let layer = tar_layer(
        &[
            ("var/lib/rpm/Packages", &bdb, 0o644),
            ("usr/lib/sysimage/rpm/Packages.db", b"SQLite format 3\0 is not what NDB looks like", 0o644),
            ("usr/bin/tool", &auditable::elf_for_tests(&[(".dep-v0", b"garbage")]), 0o755),
            (
                "app/Cargo.lock",
                b"[[package]]\nname = \"smallvec\"\nversion = \"1.6.0\"\nsource = \"registry+x\"\n",
                0o644,
            ),
        ],
        true,
    );
    let inv = inventory_of_layers([layer.as_slice()]).unwrap();
    assert_eq!(listed(&inv), vec![(Kind::Cargo, "smallvec", "1.6.0", "smallvec", "app/Cargo.lock")]);
    assert_eq!(
        inv.warnings,
        vec![
            "usr/bin/tool: cargo-auditable data: section .dep-v0 is not zlib data: corrupt deflate stream".to_string(),
            "usr/lib/sysimage/rpm/Packages.db: NDB rpm database: no RpmP magic number at offset 0 (not an NDB package database)".to_string(),
            "var/lib/rpm/Packages: Berkeley DB rpm database: the last page is 2 but the file holds 2 pages of 4096 bytes".to_string(),
        ]
    );
}

fn schema(name: &str) -> Value {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/schemas").join(name);
    serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap()
}

fn assert_valid(validator: &jsonschema::Validator, doc: &Value) {
    let errors: Vec<String> = validator.iter_errors(doc).map(|e| format!("{} at {}", e, e.instance_path)).collect();
    assert!(errors.is_empty(), "{errors:#?}");
}

#[test]
fn sboms_validate_against_official_schemas() {
    let layers = debian_layers();
    let inv = inventory_of_layers(layers.iter().map(Vec::as_slice)).unwrap();
    let subject = sbom::Subject { name: "library/app".into(), digest: format!("sha256:{}", "ab".repeat(32)) };
    let created = "2024-06-01T00:00:00Z";

    let spdx = sbom::spdx(&inv, &subject, created, "0b0e7b32-4a2c-4a9c-9d0c-8d7c9b7b1e11");
    let v = jsonschema::options().build(&schema("spdx-2.3.schema.json")).unwrap();
    assert_valid(&v, &spdx);
    let purls: Vec<&str> = spdx["packages"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| p["externalRefs"][0]["referenceLocator"].as_str())
        .collect();
    assert!(purls.contains(&"pkg:deb/debian/zlib1g@1%3A1.2.13.dfsg-1?arch=amd64&distro=debian-12"), "{purls:?}");
    assert!(purls.contains(&"pkg:golang/golang.org/x/net@v0.17.0"), "{purls:?}");
    assert!(purls.contains(&"pkg:pypi/django@3.2.0"), "{purls:?}");

    let cdx = sbom::cyclonedx(&inv, &subject, created, "0b0e7b32-4a2c-4a9c-9d0c-8d7c9b7b1e11");
    let v = jsonschema::options()
        .with_resource(
            "http://cyclonedx.org/schema/spdx.schema.json",
            jsonschema::Resource::from_contents(schema("spdx.schema.json")).unwrap(),
        )
        .with_resource(
            "http://cyclonedx.org/schema/jsf-0.82.schema.json",
            jsonschema::Resource::from_contents(schema("jsf-0.82.schema.json")).unwrap(),
        )
        .build(&schema("bom-1.5.schema.json"))
        .unwrap();
    assert_valid(&v, &cdx);
    assert_eq!(cdx["components"].as_array().unwrap().len(), inv.packages.len() + 1);

    // A broken document is refused, so the check above means something.
    let mut bad = spdx.clone();
    bad.as_object_mut().unwrap().remove("SPDXID");
    assert!(!jsonschema::options().build(&schema("spdx-2.3.schema.json")).unwrap().is_valid(&bad));
}
