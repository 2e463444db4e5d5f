//! The built-in scanner through Harbor's API, on SQLite: an image built here (tar layers
//! with a dpkg status listing known versions, a Python package whited out by a later
//! layer, npm and Go packages), vulnerability data imported with `berth vulndb import`
//! from the OSV fixture of berth-scan (advisories that must and must not match: epochs,
//! `~`, `+b` rebuilds, withdrawn records), reports asserted exactly.

use std::path::Path;
use std::time::{Duration, Instant};

pub(crate) use berth_scan::testing::tar_layer;
use reqwest::Method;
use serde_json::{Value, json};

use crate::support::*;

pub(crate) const OSV_FIXTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../berth-scan/tests/fixtures/osv");
pub(crate) const V11: &str = "application/vnd.security.vulnerability.report; version=1.1";
const NATIVE: &str = "application/vnd.scanner.adapter.vuln.report.harbor+json; version=1.0";

const DPKG_STATUS: &str = "Package: libssl3\nStatus: install ok installed\nArchitecture: amd64\nSource: openssl\nVersion: 3.0.11-1~deb12u2\n\nPackage: libc6\nStatus: install ok installed\nArchitecture: amd64\nSource: glibc\nVersion: 2.36-9+deb12u4\n\nPackage: zlib1g\nStatus: install ok installed\nArchitecture: amd64\nSource: zlib\nVersion: 1:1.2.13.dfsg-1\n\nPackage: bash\nStatus: install ok installed\nArchitecture: amd64\nSource: bash (5.2.15-2)\nVersion: 5.2.15-2+b2\n\nPackage: curl\nStatus: install ok installed\nArchitecture: amd64\nVersion: 7.88.1-10+deb12u5\n";

pub(crate) fn debian_layers() -> Vec<Vec<u8>> {
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
                b"Name: requests\nVersion: 2.25.0\n",
                0o644,
            ),
            ("app/node_modules/lodash/package.json", br#"{"name":"lodash","version":"4.17.20"}"#, 0o644),
        ],
        true,
    );
    let l2 = tar_layer(
        &[
            ("usr/lib/python3/dist-packages/.wh.requests-2.25.0.dist-info", b"", 0o644),
            ("usr/lib/python3/dist-packages/Django-3.2.0.dist-info/METADATA", b"Name: Django\nVersion: 3.2.0\n", 0o644),
        ],
        false,
    );
    vec![l1, l2]
}

/// Pushes an image of these layers over /v2 as admin; returns its digest.
pub(crate) async fn push_layers(s: &Server, repo: &str, tag: &str, layers: &[Vec<u8>]) -> String {
    let who = admin();
    let config = br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#;
    let cd = push_blob_as(s, &who, repo, config).await;
    let mut ls = Vec::new();
    for l in layers {
        ls.push((push_blob_as(s, &who, repo, l).await, l.len()));
    }
    let refs: Vec<(&str, usize)> = ls.iter().map(|(d, n)| (d.as_str(), *n)).collect();
    let m = image_manifest((&cd, config.len()), &refs);
    put_manifest_as(s, &who, repo, tag, OCI_MANIFEST, &m).await;
    sha256(m.as_bytes())
}

pub(crate) fn import(data_dir: &Path, source: &str) -> String {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_berth"))
        .args(["vulndb", "import", "--data-dir"])
        .arg(data_dir)
        .arg(source)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "import failed: {text} {}", String::from_utf8_lossy(&out.stderr));
    text
}

/// Polls the artifact until its overview of `key` reaches a final status.
pub(crate) async fn wait_overview(s: &Server, path: &str, key: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let a = ok_json(s, &format!("{path}?with_scan_overview=true&with_sbom_overview=true"), &admin()).await;
        let o = match key {
            "sbom" => a.get("sbom_overview").cloned(),
            _ => a.get("scan_overview").and_then(|o| o.get(V11)).cloned(),
        };
        if let Some(o) = o
            && matches!(o["scan_status"].as_str(), Some("Success" | "Error" | "Stopped"))
        {
            return o;
        }
        assert!(Instant::now() < deadline, "scan did not finish: {a}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scan_through_harbor_api() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    // Air-gapped import before the first start; the second import changes nothing.
    let out = import(&data, OSV_FIXTURE);
    assert!(out.contains("15 files, 15 new, 0 updated, 0 unchanged, 1 withdrawn"), "{out}");
    let out = import(&data, OSV_FIXTURE);
    assert!(out.contains("0 new, 0 updated, 15 unchanged"), "{out}");
    let s = Server::spawn(&data, &[("BERTH_AUTH_MODE", "harbor")]);
    create_project(&s, &admin(), "scan", false).await;
    let digest = push_layers(&s, "scan/app", "v1", &debian_layers()).await;
    let art = "/api/v2.0/projects/scan/repositories/app/artifacts/v1";

    let a = ok_json(&s, &format!("{art}?with_scan_overview=true"), &admin()).await;
    assert!(a.get("scan_overview").is_none(), "not scanned yet: {a}");
    let none = ok_json(&s, &format!("{art}/additions/vulnerabilities"), &admin()).await;
    assert_eq!(none, json!({}));

    // Bad input names the field.
    for (body, want) in [(json!({"scan_type": "nope"}), "scan_type"), (json!({"scan_typo": "sbom"}), "scan_typo")] {
        let r = call(&s, Method::POST, &format!("{art}/scan"), &admin(), Some(&body)).await;
        let msg = expect_error(r, 400, "BAD_REQUEST").await;
        assert!(msg.contains(want), "{msg}");
    }
    let r = call(&s, Method::POST, &format!("{art}/scan/stop"), &admin(), None).await;
    assert!(expect_error(r, 400, "BAD_REQUEST").await.contains("scan_type"));
    let r =
        call(&s, Method::POST, "/api/v2.0/projects/scan/repositories/app/artifacts/nope/scan", &admin(), None).await;
    assert_eq!(r.status(), 404);

    // A scan with no body is a vulnerability scan.
    assert_eq!(status(&s, Method::POST, &format!("{art}/scan"), &admin(), None).await, 202);
    let o = wait_overview(&s, art, "vuln").await;
    assert_eq!(o["scan_status"], "Success", "{o}");
    assert_eq!(o["severity"], "Critical");
    assert_eq!(o["complete_percent"], 100);
    assert_eq!(o["scanner"], json!({"name": "Berth", "vendor": "Berth", "version": env!("CARGO_PKG_VERSION")}));
    assert_eq!(
        o["summary"],
        json!({"total": 5, "fixable": 5, "summary": {"Critical": 1, "High": 1, "Medium": 2, "Unknown": 1}})
    );

    let r = get(&s, &format!("{art}/additions/vulnerabilities"), &admin()).await;
    assert_eq!(header(&r, "content-type"), "application/json");
    let v = body_json(r).await;
    let report = &v[V11];
    assert_eq!(report["severity"], "Critical");
    assert!(report.get("artifact").is_none(), "Harbor's stored report has no artifact key");
    let rows: Vec<(String, String, String, String, String, String)> = report["vulnerabilities"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| {
            let f = |k: &str| x[k].as_str().unwrap_or("").to_string();
            (f("id"), f("package"), f("version"), f("fix_version"), f("severity"), f("status"))
        })
        .collect();
    let row = |a: &str, b: &str, c: &str, d: &str, e: &str| {
        (a.to_string(), b.to_string(), c.to_string(), d.to_string(), e.to_string(), "fixed".to_string())
    };
    assert_eq!(
        rows,
        vec![
            row("CVE-2024-0001", "libssl3", "3.0.11-1~deb12u2", "3.0.11-1~deb12u3", "Critical"),
            row("CVE-2024-0301", "lodash", "4.17.20", "4.17.21", "High"),
            row("CVE-2024-0201", "django", "3.2.0", "3.2.1", "Medium"),
            row("DEBIAN-CVE-2024-0004", "zlib1g", "1:1.2.13.dfsg-1", "1:1.2.13.dfsg-2", "Medium"),
            row("DEBIAN-CVE-2024-0006", "bash", "5.2.15-2+b2", "5.2.15-3", "Unknown"),
        ]
    );
    assert_eq!(
        report["vulnerabilities"][0],
        json!({
            "id": "CVE-2024-0001", "package": "libssl3", "version": "3.0.11-1~deb12u2", "fix_version": "3.0.11-1~deb12u3",
            "severity": "Critical", "description": "openssl: must match (~deb12u2 < ~deb12u3)",
            "links": ["https://security-tracker.debian.org/tracker/CVE-2024-0001"],
            "preferred_cvss": {"score_v3": 9.8, "vector_v3": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"},
            "cwe_ids": [], "vendor_attributes": {"osv_id": "DEBIAN-CVE-2024-0001", "package_type": "deb"},
            "artifact_digests": [digest], "status": "fixed",
        })
    );
    // The first accepted MIME type that has a report names it.
    let r = client()
        .get(s.url(&format!("{art}/additions/vulnerabilities")))
        .basic_auth("admin", Some(ADMIN_PASSWORD))
        .header("X-Accept-Vulnerabilities", format!("application/x-unknown, {NATIVE}"))
        .send()
        .await
        .unwrap();
    let v = body_json(r).await;
    assert_eq!(v.as_object().unwrap().keys().collect::<Vec<_>>(), vec![NATIVE]);

    // The scan's log.
    let report_id = o["report_id"].as_str().unwrap();
    let r = get(&s, &format!("{art}/scan/{report_id}/log"), &admin()).await;
    assert_eq!(r.status(), 200);
    assert!(header(&r, "content-type").starts_with("text/plain"));
    let log = r.text().await.unwrap();
    assert!(log.contains("7 packages found on debian 12"), "{log}");
    assert_eq!(get(&s, &format!("{art}/scan/nope/log"), &admin()).await.status(), 404);
    // Nothing is running: stop is refused.
    let r = call(&s, Method::POST, &format!("{art}/scan/stop"), &admin(), Some(&json!({"scan_type": "vulnerability"})))
        .await;
    assert_eq!(r.status(), 400);

    // An SBOM, as Harbor 2.11+ keeps it: an accessory of the image (subject = the image,
    // config media type Harbor's SBOM type, the SPDX document as its one layer).
    const HARBOR_SBOM: &str = "application/vnd.goharbor.harbor.sbom.v1";
    let body = json!({"scan_type": "sbom"});
    assert_eq!(status(&s, Method::POST, &format!("{art}/scan"), &admin(), Some(&body)).await, 202);
    let o = wait_overview(&s, art, "sbom").await;
    assert_eq!(o["scan_status"], "Success", "{o}");
    let sbom_digest = o["sbom_digest"].as_str().unwrap().to_string();
    assert!(sbom_digest.starts_with("sha256:") && sbom_digest != digest, "{o}");
    let accs = ok_json(&s, &format!("{art}/accessories"), &admin()).await;
    assert_eq!(accs.as_array().unwrap().len(), 1, "{accs}");
    assert_eq!(accs[0]["type"], "sbom.harbor");
    assert_eq!(accs[0]["digest"], sbom_digest.as_str());
    assert_eq!(accs[0]["subject_artifact_digest"], digest.as_str());
    let with = ok_json(&s, &format!("{art}?with_accessory=true"), &admin()).await;
    assert_eq!(with["accessories"][0]["digest"], sbom_digest.as_str(), "{with}");
    let r = get(&s, &format!("/v2/scan/app/manifests/{sbom_digest}"), &admin()).await;
    assert_eq!(r.status(), 200);
    let m = body_json(r).await;
    assert_eq!(m["config"]["mediaType"], HARBOR_SBOM);
    assert_eq!(m["subject"]["digest"], digest.as_str());
    assert_eq!(m["layers"].as_array().unwrap().len(), 1);
    // Harbor's UI reads the accessory's addition; Berth answers the image's too.
    let acc_art = format!("/api/v2.0/projects/scan/repositories/app/artifacts/{sbom_digest}");
    let r = get(&s, &format!("{acc_art}/additions/sbom"), &admin()).await;
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "content-type"), HARBOR_SBOM);
    let doc = body_json(r).await;
    assert_eq!(doc["spdxVersion"], "SPDX-2.3");
    let names: Vec<&str> = doc["packages"].as_array().unwrap().iter().filter_map(|p| p["name"].as_str()).collect();
    assert!(names.contains(&"libssl3") && names.contains(&"django") && !names.contains(&"requests"), "{names:?}");
    assert_eq!(body_json(get(&s, &format!("{art}/additions/sbom"), &admin()).await).await, doc);
    // A second SBOM replaces the first accessory.
    assert_eq!(status(&s, Method::POST, &format!("{art}/scan"), &admin(), Some(&body)).await, 202);
    let deadline = Instant::now() + Duration::from_secs(60);
    let second = loop {
        let o = wait_overview(&s, art, "sbom").await;
        if o["sbom_digest"] != sbom_digest.as_str() {
            break o["sbom_digest"].as_str().unwrap().to_string();
        }
        assert!(Instant::now() < deadline, "no new SBOM: {o}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let accs = ok_json(&s, &format!("{art}/accessories"), &admin()).await;
    assert_eq!(accs.as_array().unwrap().len(), 1, "{accs}");
    assert_eq!(accs[0]["digest"], second.as_str());
    assert_eq!(get(&s, &format!("{acc_art}/additions/sbom"), &admin()).await.status(), 404);
    // An image without an SBOM has none.
    let r = get(&s, "/api/v2.0/projects/scan/repositories/none/artifacts/v1/additions/sbom", &admin()).await;
    assert_eq!(r.status(), 404);

    // The list shows both overviews.
    let list = ok_json(
        &s,
        "/api/v2.0/projects/scan/repositories/app/artifacts?with_scan_overview=true&with_sbom_overview=true",
        &admin(),
    )
    .await;
    assert_eq!(list[0]["scan_overview"][V11]["scan_status"], "Success");
    assert_eq!(list[0]["sbom_overview"]["scan_status"], "Success");
    assert_eq!(list.as_array().unwrap().len(), 1, "the SBOM accessory is listed under its image only: {list}");

    // Scan on push.
    let up = json!({"metadata": {"auto_scan": "true"}});
    assert_eq!(status(&s, Method::PUT, "/api/v2.0/projects/scan", &admin(), Some(&up)).await, 200);
    let alpine = vec![tar_layer(
        &[
            ("etc/os-release", b"ID=alpine\nVERSION_ID=3.19.1\n", 0o644),
            (
                "lib/apk/db/installed",
                b"P:libcrypto3\nV:3.1.4-r5\nA:x86_64\no:openssl\n\nP:musl\nV:1.2.4-r2\no:musl\n",
                0o644,
            ),
        ],
        true,
    )];
    push_layers(&s, "scan/alpine", "3.19", &alpine).await;
    let o = wait_overview(&s, "/api/v2.0/projects/scan/repositories/alpine/artifacts/3.19", "vuln").await;
    assert_eq!(o["scan_status"], "Success", "{o}");
    assert_eq!(o["summary"]["total"], 1);

    // The scanner registrations.
    let r = get(&s, "/api/v2.0/scanners", &admin()).await;
    assert_eq!(header(&r, "x-total-count"), "1");
    let list = body_json(r).await;
    assert_eq!(list[0]["is_default"], true);
    assert_eq!(list[0]["capabilities"], json!({"support_vulnerability": true, "support_sbom": true}));
    let id = list[0]["uuid"].as_str().unwrap();
    let md = ok_json(&s, &format!("/api/v2.0/scanners/{id}/metadata"), &admin()).await;
    assert_eq!(
        md["properties"]["harbor.scanner-adapter/vulnerability-database-updated-at"],
        "2024-05-03T00:00:00.000Z"
    );
    assert_eq!(ok_json(&s, "/api/v2.0/projects/scan/scanner", &admin()).await["uuid"], id);
    assert_eq!(get(&s, "/api/v2.0/scanners/nope", &admin()).await.status(), 404);
    let cands = ok_json(&s, "/api/v2.0/projects/scan/scanner/candidates", &admin()).await;
    assert_eq!(cands[0]["uuid"], id);
    let r = call(&s, Method::PUT, "/api/v2.0/projects/scan/scanner", &admin(), Some(&json!({"uuid": "other"}))).await;
    assert!(expect_error(r, 400, "BAD_REQUEST").await.contains("uuid"));
    let r = call(&s, Method::PUT, "/api/v2.0/projects/scan/scanner", &admin(), Some(&json!({"uuid": id}))).await;
    assert_eq!(r.status(), 200);

    let metrics = client().get(s.url("/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains("berth_vulndb_data_age_seconds"), "{metrics}");
}

/// `prevent_vul` judged by the built-in scanner: an unscanned image is refused, a scanned
/// one by how many findings reach the project's severity, with Harbor's messages; an
/// image whose findings all stay below the threshold is pulled.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prevent_vul_refuses_pulls_by_the_scan_report() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    import(&data, OSV_FIXTURE);
    let s = Server::spawn(&data, &[("BERTH_AUTH_MODE", "harbor")]);
    create_project(&s, &admin(), "guard", false).await;
    push_layers(&s, "guard/app", "v1", &debian_layers()).await;
    let art = "/api/v2.0/projects/guard/repositories/app/artifacts/v1";
    let set = async |severity: &str| {
        let body = json!({"metadata": {"prevent_vul": "true", "severity": severity}});
        assert_eq!(status(&s, Method::PUT, "/api/v2.0/projects/guard", &admin(), Some(&body)).await, 200);
    };
    let pull = async || {
        let r = admin()
            .apply(client().get(s.url("/v2/guard/app/manifests/v1")))
            .header("accept", "application/vnd.oci.image.manifest.v1+json")
            .send()
            .await
            .unwrap();
        let code = r.status().as_u16();
        let v: Value = serde_json::from_str(&r.text().await.unwrap()).unwrap_or(Value::Null);
        (
            code,
            v["errors"][0]["code"].as_str().unwrap_or_default().to_owned(),
            v["errors"][0]["message"].as_str().unwrap_or_default().to_owned(),
        )
    };
    assert_eq!(pull().await.0, 200, "nothing enforced yet");
    set("high").await;
    let (code, err, msg) = pull().await;
    assert_eq!((code, err.as_str()), (412, "PROJECTPOLICYVIOLATION"), "{msg}");
    assert!(msg.starts_with("current image without vulnerability scanning cannot be pulled"), "{msg}");

    assert_eq!(status(&s, Method::POST, &format!("{art}/scan"), &admin(), None).await, 202);
    assert_eq!(wait_overview(&s, art, "vuln").await["scan_status"], "Success");
    // The report: Critical 1, High 1, Medium 2, Unknown 1.
    let (code, _, msg) = pull().await;
    assert_eq!(code, 412);
    assert!(msg.starts_with("current image with 2 vulnerabilities cannot be pulled"), "{msg}");
    assert!(msg.contains("\"High\" or higher"), "{msg}");
    set("critical").await;
    assert!(pull().await.2.starts_with("current image with 1 vulnerabilities"));
    set("low").await;
    assert!(pull().await.2.starts_with("current image with 4 vulnerabilities"));
    // Without the setting, the same image is pulled again.
    let body = json!({"metadata": {"prevent_vul": "false"}});
    assert_eq!(status(&s, Method::PUT, "/api/v2.0/projects/guard", &admin(), Some(&body)).await, 200);
    assert_eq!(pull().await.0, 200);
}

/// A finished scan is a `SCANNING_COMPLETED` webhook event (Harbor's payload: the
/// artifact's resource with its `scan_overview`, the repository, `scan.scan_type`),
/// received by a real HTTP server; scanning something that is not an image fails and is a
/// `SCANNING_FAILED` event.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scan_events_reach_webhooks() {
    use crate::webhooks::Receiver;
    let s = Server::start_harbor();
    create_project(&s, &admin(), "scanhook", false).await;
    let rx = Receiver::start().await;
    let hook = json!({"name": "scans", "enabled": true, "event_types": ["SCANNING_COMPLETED", "SCANNING_FAILED"],
                      "targets": [{"type": "http", "address": rx.url("/hook")}]});
    let r = call(&s, Method::POST, "/api/v2.0/projects/scanhook/webhook/policies", &admin(), Some(&hook)).await;
    assert_eq!(r.status(), 201, "{:?}", r.text().await);
    let digest = push_layers(&s, "scanhook/app", "v1", &debian_layers()).await;
    let art = "/api/v2.0/projects/scanhook/repositories/app/artifacts/v1";
    let r = call(&s, Method::POST, &format!("{art}/scan"), &admin(), None).await;
    assert_eq!(r.status(), 202, "{:?}", r.text().await);
    let got = rx
        .wait_for(Duration::from_secs(60), "SCANNING_COMPLETED", |g| {
            g.iter().any(|r| r.body["type"] == "SCANNING_COMPLETED")
        })
        .await;
    let e = got.iter().find(|r| r.body["type"] == "SCANNING_COMPLETED").unwrap().body.clone();
    assert_eq!(e["operator"], "auto", "{e}");
    let res = &e["event_data"]["resources"][0];
    assert_eq!(res["digest"], digest.as_str(), "{e}");
    assert_eq!(res["scan_overview"][V11]["scan_status"], "Success", "{e}");
    assert_eq!(e["event_data"]["repository"]["repo_full_name"], "scanhook/app", "{e}");
    assert_eq!(e["event_data"]["scan"]["scan_type"], "vulnerability", "{e}");

    // An artifact deleted between the scan request and the scan: the scan fails. The
    // queue is paused so that the deletion comes first.
    let digest2 = push_layers(&s, "scanhook/gone", "v1", &[b"another layer".to_vec()]).await;
    let queue = "/api/v2.0/jobservice/queues/IMAGE_SCAN";
    assert_eq!(call(&s, Method::PUT, queue, &admin(), Some(&json!({"action": "pause"}))).await.status(), 200);
    let gone = "/api/v2.0/projects/scanhook/repositories/gone/artifacts/v1";
    let r = call(&s, Method::POST, &format!("{gone}/scan"), &admin(), None).await;
    assert_eq!(r.status(), 202, "{:?}", r.text().await);
    assert_eq!(call(&s, Method::DELETE, gone, &admin(), None).await.status(), 200);
    assert_eq!(call(&s, Method::PUT, queue, &admin(), Some(&json!({"action": "resume"}))).await.status(), 200);
    let got = rx
        .wait_for(Duration::from_secs(60), "SCANNING_FAILED", |g| g.iter().any(|r| r.body["type"] == "SCANNING_FAILED"))
        .await;
    let e = got.iter().find(|r| r.body["type"] == "SCANNING_FAILED").unwrap().body.clone();
    assert_eq!(e["event_data"]["resources"][0]["digest"], digest2.as_str(), "{e}");
    assert_eq!(e["event_data"]["repository"]["repo_full_name"], "scanhook/gone", "{e}");
}
