//! Scan all, the security hub, CVE allowlists and CVE export through Harbor's API, on
//! SQLite, over images built by `scanning.rs`'s helpers and the OSV fixture of
//! berth-scan. The Debian image's report: CVE-2024-0001 (libssl3, Critical, CVSS 9.8),
//! CVE-2024-0301 (lodash, High), CVE-2024-0201 (django, Medium), DEBIAN-CVE-2024-0004
//! (zlib1g, Medium), DEBIAN-CVE-2024-0006 (bash, Unknown), all fixed; the Alpine image
//! has one fixed finding (openssl).

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{Value, json};

use crate::scanning::{OSV_FIXTURE, debian_layers, import, push_layers, tar_layer, wait_overview};
use crate::support::*;

fn alpine_layers() -> Vec<Vec<u8>> {
    vec![tar_layer(
        &[
            ("etc/os-release", b"ID=alpine\nVERSION_ID=3.19.1\n", 0o644),
            (
                "lib/apk/db/installed",
                b"P:libcrypto3\nV:3.1.4-r5\nA:x86_64\no:openssl\n\nP:musl\nV:1.2.4-r2\no:musl\n",
                0o644,
            ),
        ],
        true,
    )]
}

/// A server with the OSV fixture imported.
fn server(tmp: &tempfile::TempDir) -> Server {
    let data = tmp.path().join("data");
    import(&data, OSV_FIXTURE);
    Server::spawn(&data, &[("BERTH_AUTH_MODE", "harbor")])
}

/// Polls `path` until `done` holds, for up to 60 s.
async fn wait_json(s: &Server, path: &str, done: impl Fn(&Value) -> bool) -> Value {
    poll_json(s, path, path, Duration::from_secs(60), done).await
}

async fn scan(s: &Server, art: &str) {
    assert_eq!(status(s, Method::POST, &format!("{art}/scan"), &admin(), None).await, 202);
    assert_eq!(wait_overview(s, art, "vuln").await["scan_status"], "Success");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cve_allowlists_exempt_vulnerabilities_from_prevent_vul() {
    let tmp = tempfile::tempdir().unwrap();
    let s = server(&tmp);
    create_user(&s, "alice").await;

    // The system's list: empty at first, readable by any signed-in user, written by admins.
    let sys = ok_json(&s, "/api/v2.0/system/CVEAllowlist", &user("alice")).await;
    assert_eq!((sys["project_id"].as_i64(), sys["items"].clone()), (Some(0), json!([])));
    assert_eq!(get(&s, "/api/v2.0/system/CVEAllowlist", &Who::Anon).await.status(), 401);
    let body = json!({"items": [{"cve_id": "CVE-2024-0301"}]});
    assert_eq!(status(&s, Method::PUT, "/api/v2.0/system/CVEAllowlist", &user("alice"), Some(&body)).await, 403);
    for (bad, field) in [
        (json!({"items": [{"cve_id": "CVE-1"}, {"cve_id": "CVE-1"}]}), "items[1].cve_id"),
        (json!({"items": [{"cve_id": " "}]}), "items[0].cve_id"),
        (json!({"expires_at": -1, "items": []}), "expires_at"),
        (json!({"items": [{"cve": "CVE-1"}]}), "cve"),
    ] {
        let r = call(&s, Method::PUT, "/api/v2.0/system/CVEAllowlist", &admin(), Some(&bad)).await;
        let msg = expect_error(r, 400, "BAD_REQUEST").await;
        assert!(msg.contains(field), "{bad}: {msg}");
    }
    assert_eq!(status(&s, Method::PUT, "/api/v2.0/system/CVEAllowlist", &admin(), Some(&body)).await, 200);
    let sys = ok_json(&s, "/api/v2.0/system/CVEAllowlist", &admin()).await;
    assert_eq!(sys["items"], json!([{"cve_id": "CVE-2024-0301"}]));
    assert!(sys.get("expires_at").is_none(), "no expiry: {sys}");

    // A project's own list, given at creation, shown by GET, validated on update.
    let create = json!({"project_name": "guard", "metadata": {"public": "false", "reuse_sys_cve_allowlist": "false"},
        "cve_allowlist": {"items": [{"cve_id": "CVE-2024-0001"}]}});
    assert_eq!(status(&s, Method::POST, "/api/v2.0/projects", &admin(), Some(&create)).await, 201);
    let p = ok_json(&s, "/api/v2.0/projects/guard", &admin()).await;
    let pid = p["project_id"].as_i64().unwrap();
    assert_eq!(p["cve_allowlist"]["items"], json!([{"cve_id": "CVE-2024-0001"}]));
    assert_eq!(p["cve_allowlist"]["project_id"], pid);
    assert_eq!(p["metadata"]["reuse_sys_cve_allowlist"], "false");
    let bad = json!({"cve_allowlist": {"items": [{"cve_id": "CVE-2024-0001"}, {"cve_id": "CVE-2024-0001"}]}});
    let r = call(&s, Method::PUT, "/api/v2.0/projects/guard", &admin(), Some(&bad)).await;
    assert!(expect_error(r, 400, "BAD_REQUEST").await.contains("cve_allowlist.items[1].cve_id"));
    let bad = json!({"cve_allowlist": {"project_id": pid + 100, "items": []}});
    let r = call(&s, Method::PUT, "/api/v2.0/projects/guard", &admin(), Some(&bad)).await;
    assert!(expect_error(r, 400, "BAD_REQUEST").await.contains("cve_allowlist.project_id"));

    push_layers(&s, "guard/app", "v1", &debian_layers()).await;
    scan(&s, "/api/v2.0/projects/guard/repositories/app/artifacts/v1").await;
    let pull = async || {
        let r = admin()
            .apply(client().get(s.url("/v2/guard/app/manifests/v1")))
            .header("accept", "application/vnd.oci.image.manifest.v1+json")
            .send()
            .await
            .unwrap();
        let code = r.status().as_u16();
        (code, r.text().await.unwrap())
    };
    let set = async |body: Value| {
        assert_eq!(status(&s, Method::PUT, "/api/v2.0/projects/guard", &admin(), Some(&body)).await, 200);
    };
    // Critical: only CVE-2024-0001 reaches it, and the project's list exempts it.
    set(json!({"metadata": {"prevent_vul": "true", "severity": "critical"}})).await;
    assert_eq!(pull().await.0, 200);
    // High: lodash's CVE-2024-0301 too, which only the system's list names.
    set(json!({"metadata": {"severity": "high"}})).await;
    let (code, text) = pull().await;
    assert_eq!(code, 412, "{text}");
    assert!(text.contains("current image with 1 vulnerabilities cannot be pulled"), "{text}");
    // Reusing the system's list: CVE-2024-0001 counts again, CVE-2024-0301 does not.
    set(json!({"metadata": {"reuse_sys_cve_allowlist": "true"}})).await;
    let (code, text) = pull().await;
    assert_eq!(code, 412);
    assert!(text.contains("current image with 1 vulnerabilities"), "{text}");
    // The project's own list, with both, until it expires.
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    set(json!({"metadata": {"reuse_sys_cve_allowlist": "false"}, "cve_allowlist": {"expires_at": now + 3600,
        "items": [{"cve_id": "CVE-2024-0001"}, {"cve_id": "CVE-2024-0301"}]}}))
    .await;
    assert_eq!(pull().await.0, 200);
    assert_eq!(ok_json(&s, "/api/v2.0/projects/guard", &admin()).await["cve_allowlist"]["expires_at"], now + 3600);
    set(json!({"cve_allowlist": {"expires_at": now - 1, "items": [{"cve_id": "CVE-2024-0001"}, {"cve_id": "CVE-2024-0301"}]}}))
        .await;
    let (code, text) = pull().await;
    assert_eq!(code, 412, "an expired list exempts nothing");
    assert!(text.contains("current image with 2 vulnerabilities"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scan_all_scans_every_image_and_reports_progress() {
    let tmp = tempfile::tempdir().unwrap();
    let s = server(&tmp);
    create_project(&s, &admin(), "one", false).await;
    create_project(&s, &admin(), "two", false).await;
    push_layers(&s, "one/app", "v1", &debian_layers()).await;
    push_layers(&s, "two/alpine", "3.19", &alpine_layers()).await;
    create_user(&s, "bob").await;

    // Nothing yet.
    assert_eq!(
        ok_json(&s, "/api/v2.0/scans/all/metrics", &admin()).await,
        json!({"total": 0, "completed": 0, "ongoing": false})
    );
    let r = call(&s, Method::POST, "/api/v2.0/system/scanAll/stop", &admin(), None).await;
    assert!(expect_error(r, 400, "BAD_REQUEST").await.contains("no scan all job"));
    assert_eq!(get(&s, "/api/v2.0/scans/all/metrics", &user("bob")).await.status(), 403);
    let manual = json!({"schedule": {"type": "Manual"}});
    assert_eq!(status(&s, Method::POST, "/api/v2.0/system/scanAll/schedule", &user("bob"), Some(&manual)).await, 403);

    // Scan now: one scan per image, both succeed.
    assert_eq!(status(&s, Method::POST, "/api/v2.0/system/scanAll/schedule", &admin(), Some(&manual)).await, 201);
    let mut m = wait_json(&s, "/api/v2.0/scans/all/metrics", |v| v["ongoing"] == false && v["total"] == 2).await;
    assert!(m["requester"].as_str().is_some_and(|r| r.parse::<i64>().is_ok()), "the execution id: {m}");
    m.as_object_mut().unwrap().remove("requester");
    assert_eq!(
        m,
        json!({"total": 2, "completed": 2, "ongoing": false, "trigger": "Manual",
               "metrics": {"Pending": 0, "Running": 0, "Success": 2, "Error": 0, "Stopped": 0}})
    );
    for art in [
        "/api/v2.0/projects/one/repositories/app/artifacts/v1",
        "/api/v2.0/projects/two/repositories/alpine/artifacts/3.19",
    ] {
        assert_eq!(wait_overview(&s, art, "vuln").await["scan_status"], "Success", "{art}");
    }
    // The scheduled metrics: no scheduled run yet.
    assert_eq!(ok_json(&s, "/api/v2.0/scans/schedule/metrics", &admin()).await["total"], 0);

    // The schedule: none, then daily; a second POST is refused, PUT changes or removes it.
    let sched = "/api/v2.0/system/scanAll/schedule";
    assert_eq!(ok_json(&s, sched, &admin()).await["schedule"]["type"], "None");
    let daily = json!({"schedule": {"type": "Daily", "cron": "0 0 0 * * *"}});
    assert_eq!(status(&s, Method::POST, sched, &admin(), Some(&daily)).await, 201);
    let got = ok_json(&s, sched, &admin()).await;
    assert_eq!(
        (got["schedule"]["type"].as_str(), got["schedule"]["cron"].as_str()),
        (Some("Daily"), Some("0 0 0 * * *"))
    );
    let r = call(&s, Method::POST, sched, &admin(), Some(&json!({"schedule": {"type": "Weekly"}}))).await;
    expect_error(r, 412, "PRECONDITION").await;
    let r = call(&s, Method::PUT, sched, &admin(), Some(&manual)).await;
    assert!(expect_error(r, 400, "BAD_REQUEST").await.contains("schedule.type"));
    let r =
        call(&s, Method::PUT, sched, &admin(), Some(&json!({"schedule": {"type": "Custom", "cron": "nope"}}))).await;
    assert!(expect_error(r, 400, "BAD_REQUEST").await.contains("cron"));
    let r = call(&s, Method::POST, sched, &admin(), Some(&json!({"schedul": {}}))).await;
    assert!(expect_error(r, 400, "BAD_REQUEST").await.contains("schedul"));
    assert_eq!(status(&s, Method::PUT, sched, &admin(), Some(&json!({"schedule": {"type": "Weekly"}}))).await, 200);
    assert_eq!(ok_json(&s, sched, &admin()).await["schedule"]["type"], "Weekly");
    assert_eq!(status(&s, Method::PUT, sched, &admin(), Some(&json!({"schedule": {"type": "None"}}))).await, 200);
    assert_eq!(ok_json(&s, sched, &admin()).await["schedule"]["type"], "None");

    // Stop: with scans held in their queue, a scan all stays ongoing (a second one is a
    // 409) until it is stopped, and its scans end as Stopped.
    let pause = json!({"action": "pause"});
    assert_eq!(status(&s, Method::PUT, "/api/v2.0/jobservice/queues/IMAGE_SCAN", &admin(), Some(&pause)).await, 200);
    assert_eq!(status(&s, Method::POST, sched, &admin(), Some(&manual)).await, 201);
    let m = wait_json(&s, "/api/v2.0/scans/all/metrics", |v| v["total"] == 2 && v["metrics"]["Pending"] == 2).await;
    assert_eq!(m["ongoing"], true);
    let r = call(&s, Method::POST, sched, &admin(), Some(&manual)).await;
    expect_error(r, 409, "CONFLICT").await;
    assert_eq!(status(&s, Method::POST, "/api/v2.0/system/scanAll/stop", &user("bob"), None).await, 403);
    assert_eq!(status(&s, Method::POST, "/api/v2.0/system/scanAll/stop", &admin(), None).await, 202);
    let m = wait_json(&s, "/api/v2.0/scans/all/metrics", |v| v["ongoing"] == false).await;
    assert_eq!(m["metrics"]["Stopped"], 2, "{m}");
    assert_eq!(m["completed"], 2);
    let resume = json!({"action": "resume"});
    assert_eq!(status(&s, Method::PUT, "/api/v2.0/jobservice/queues/IMAGE_SCAN", &admin(), Some(&resume)).await, 200);

    // A schedule fires scan all runs of its own, which the scheduled metrics show.
    let every_second = json!({"schedule": {"type": "Custom", "cron": "* * * * * *"}});
    assert_eq!(status(&s, Method::POST, sched, &admin(), Some(&every_second)).await, 201);
    let m = wait_json(&s, "/api/v2.0/scans/schedule/metrics", |v| v["trigger"] == "Schedule").await;
    assert!(m["metrics"].is_object(), "{m}");
    assert_eq!(status(&s, Method::PUT, sched, &admin(), Some(&json!({"schedule": {"type": "None"}}))).await, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn security_hub_counts_and_lists_vulnerabilities() {
    let tmp = tempfile::tempdir().unwrap();
    let s = server(&tmp);
    let one = create_project(&s, &admin(), "one", false).await;
    let two = create_project(&s, &admin(), "two", false).await;
    let debian = push_layers(&s, "one/app", "v1", &debian_layers()).await;
    push_layers(&s, "two/alpine", "3.19", &alpine_layers()).await;
    // Not scanned: counted as an artifact, not as scanned.
    push_small_image_as(&s, &admin(), "two/plain", "v1", "plain").await;
    scan(&s, "/api/v2.0/projects/one/repositories/app/artifacts/v1").await;
    scan(&s, "/api/v2.0/projects/two/repositories/alpine/artifacts/3.19").await;
    create_user(&s, "carol").await;

    let sum = ok_json(&s, "/api/v2.0/security/summary", &admin()).await;
    assert_eq!(
        (&sum["critical_cnt"], &sum["high_cnt"], &sum["medium_cnt"], &sum["total_vuls"], &sum["fixable_cnt"]),
        (&json!(1), &json!(1), &json!(2), &json!(6), &json!(6)),
        "{sum}"
    );
    assert_eq!(
        sum["low_cnt"].as_u64().unwrap() + sum["none_cnt"].as_u64().unwrap() + sum["unknown_cnt"].as_u64().unwrap(),
        2
    );
    assert_eq!((&sum["scanned_cnt"], &sum["total_artifact"]), (&json!(2), &json!(3)));
    assert!(sum.get("dangerous_cves").is_none() && sum.get("dangerous_artifacts").is_none(), "{sum}");
    let sum =
        ok_json(&s, "/api/v2.0/security/summary?with_dangerous_cve=true&with_dangerous_artifact=true", &admin()).await;
    assert_eq!(
        sum["dangerous_cves"][0],
        json!({"cve_id": "CVE-2024-0001", "severity": "Critical", "cvss_score_v3": 9.8,
               "desc": "openssl: must match (~deb12u2 < ~deb12u3)", "package": "libssl3", "version": "3.0.11-1~deb12u2"})
    );
    assert_eq!(
        sum["dangerous_artifacts"][0],
        json!({"project_id": one, "repository_name": "one/app", "digest": debian,
               "critical_cnt": 1, "high_cnt": 1, "medium_cnt": 2})
    );
    let r = get(&s, "/api/v2.0/security/summary?with_dangerous_cve=maybe", &admin()).await;
    assert!(expect_error(r, 400, "BAD_REQUEST").await.contains("with_dangerous_cve"));
    assert_eq!(get(&s, "/api/v2.0/security/summary", &user("carol")).await.status(), 403);
    assert_eq!(get(&s, "/api/v2.0/security/vul", &Who::Anon).await.status(), 401);

    // The list: by CVSS score, paged, filtered by q.
    let r = get(&s, "/api/v2.0/security/vul?page_size=2", &admin()).await;
    assert_eq!(header(&r, "x-total-count"), "6");
    assert!(header(&r, "link").contains("rel=\"next\""), "{}", header(&r, "link"));
    let page = body_json(r).await;
    assert_eq!(page.as_array().unwrap().len(), 2);
    assert_eq!(
        page[0],
        json!({"project_id": one, "repository_name": "one/app", "digest": debian, "cve_id": "CVE-2024-0001",
               "severity": "Critical", "status": "fixed", "cvss_v3_score": 9.8, "package": "libssl3",
               "version": "3.0.11-1~deb12u2", "fixed_version": "3.0.11-1~deb12u3",
               "desc": "openssl: must match (~deb12u2 < ~deb12u3)",
               "links": ["https://security-tracker.debian.org/tracker/CVE-2024-0001"]})
    );
    let ids = async |q: &str| -> Vec<String> {
        let v =
            ok_json(&s, &format!("/api/v2.0/security/vul?page_size=100&with_tag=true&q={}", urlencode(q)), &admin())
                .await;
        v.as_array().unwrap().iter().map(|x| x["cve_id"].as_str().unwrap().to_string()).collect()
    };
    assert_eq!(ids("cve_id=CVE-2024-0301").await, vec!["CVE-2024-0301"]);
    assert_eq!(ids("severity=Medium").await.len(), 2);
    assert_eq!(ids(&format!("project_id={two}")).await.len(), 1);
    assert_eq!(ids("repository_name=one/app,package=zlib1g").await, vec!["DEBIAN-CVE-2024-0004"]);
    assert_eq!(ids("cvss_score_v3=[9~10]").await, vec!["CVE-2024-0001"]);
    assert_eq!(ids("cvss_score_v3_from=9,cvss_score_v3_to=10").await, vec!["CVE-2024-0001"]);
    assert_eq!(ids(&format!("digest={debian}")).await.len(), 5);
    assert_eq!(ids("tag=3.19").await.len(), 1);
    assert_eq!(ids("tag=nope").await.len(), 0);
    let tagged = ok_json(&s, "/api/v2.0/security/vul?with_tag=true&q=tag%3D3.19", &admin()).await;
    assert_eq!(tagged[0]["tags"], json!(["3.19"]));
    for (q, field) in
        [("color=red", "color"), ("cvss_score_v3=[x~10]", "cvss_score_v3"), ("project_id=abc", "project_id")]
    {
        let r = get(&s, &format!("/api/v2.0/security/vul?q={}", urlencode(q)), &admin()).await;
        let msg = expect_error(r, 400, "BAD_REQUEST").await;
        assert!(msg.contains(field), "{q}: {msg}");
    }
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._".contains(&b) { (b as char).to_string() } else { format!("%{b:02X}") }
        })
        .collect()
}

const DATA_TYPE: &str = "application/vnd.security.vulnerability.report; version=1.1";

async fn export(s: &Server, who: &Who, body: &Value, data_type: Option<&str>) -> reqwest::Response {
    let mut r = who.apply(client().post(s.url("/api/v2.0/export/cve"))).header("content-type", "application/json");
    if let Some(t) = data_type {
        r = r.header("X-Scan-Data-Type", t);
    }
    r.body(body.to_string()).send().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cve_export_writes_harbors_csv_once() {
    let tmp = tempfile::tempdir().unwrap();
    let s = server(&tmp);
    let pid = create_project(&s, &admin(), "one", false).await;
    let digest = push_layers(&s, "one/app", "v1", &debian_layers()).await;
    push_layers(&s, "one/other", "v2", &alpine_layers()).await;
    scan(&s, "/api/v2.0/projects/one/repositories/app/artifacts/v1").await;
    scan(&s, "/api/v2.0/projects/one/repositories/other/artifacts/v2").await;
    create_user(&s, "dev").await;
    create_user(&s, "guest").await;
    create_user(&s, "outsider").await;
    add_member(&s, "one", "dev", 2).await;
    add_member(&s, "one", "guest", 3).await;

    // Bad requests name what is wrong.
    let ok = json!({"projects": [pid]});
    let r = export(&s, &admin(), &ok, None).await;
    assert!(expect_error(r, 400, "BAD_REQUEST").await.contains("X-Scan-Data-Type"));
    for (body, field) in [
        (json!({"projects": []}), "projects"),
        (json!({"projects": [pid, pid]}), "projects"),
        (json!({"projects": [pid], "repositories": "a b"}), "repositories"),
        (json!({"projects": [pid], "tags": "["}), "tags"),
        (json!({"projects": [pid], "labels": [999]}), "labels[0]"),
        (json!({"projects": [pid], "cve_ids": "x"}), "cve_ids"),
    ] {
        let r = export(&s, &admin(), &body, Some(DATA_TYPE)).await;
        let msg = expect_error(r, 400, "BAD_REQUEST").await;
        assert!(msg.contains(field), "{body}: {msg}");
    }
    // export-cve create: developers and up; not guests nor outsiders.
    assert_eq!(export(&s, &user("guest"), &ok, Some(DATA_TYPE)).await.status(), 403);
    assert_eq!(export(&s, &user("outsider"), &ok, Some(DATA_TYPE)).await.status(), 403);

    let run = async |who: &Who, body: &Value| -> i64 {
        let r = export(&s, who, body, Some(DATA_TYPE)).await;
        assert_eq!(r.status(), 200);
        let id = body_json(r).await["id"].as_i64().unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let e = ok_json(&s, &format!("/api/v2.0/export/cve/execution/{id}"), who).await;
            if e["status"] == "Success" {
                assert_eq!(e["file_present"], true, "{e}");
                return id;
            }
            assert!(e["status"] != "Error" && Instant::now() < deadline, "{e}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    };
    let id = run(&user("dev"), &json!({"projects": [pid], "repositories": "app"})).await;
    let e = ok_json(&s, &format!("/api/v2.0/export/cve/execution/{id}"), &user("dev")).await;
    assert_eq!((e["user_name"].as_str(), e["trigger"].as_str()), (Some("dev"), Some("MANUAL")));
    // Someone else's export is not theirs to see.
    assert_eq!(get(&s, &format!("/api/v2.0/export/cve/execution/{id}"), &admin()).await.status(), 403);
    assert_eq!(get(&s, &format!("/api/v2.0/export/cve/download/{id}"), &user("outsider")).await.status(), 403);
    assert_eq!(get(&s, "/api/v2.0/export/cve/execution/999999", &user("dev")).await.status(), 404);
    let list = ok_json(&s, "/api/v2.0/export/cve/executions", &user("dev")).await;
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
    assert_eq!(ok_json(&s, "/api/v2.0/export/cve/executions", &admin()).await, json!({"items": []}));

    let r = get(&s, &format!("/api/v2.0/export/cve/download/{id}"), &user("dev")).await;
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "content-type"), "text/csv");
    assert!(header(&r, "content-disposition").contains(&format!("scandata_export_{id}.csv")));
    let csv = r.text().await.unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(
        lines[0],
        "Repository,Artifact Digest,CVE,Package,Current Version,Fixed in version,Severity,CWE Ids,Additional Data,Scanner"
    );
    assert_eq!(lines.len(), 6, "the header and one/app's 5 findings: {csv}");
    assert_eq!(
        lines[1],
        format!(
            "one/app,{digest},CVE-2024-0001,libssl3,3.0.11-1~deb12u2,3.0.11-1~deb12u3,Critical,,\"{{\"\"osv_id\"\":\"\"DEBIAN-CVE-2024-0001\"\",\"\"package_type\"\":\"\"deb\"\"}}\",Berth"
        )
    );
    // Once downloaded, the file is gone.
    assert_eq!(get(&s, &format!("/api/v2.0/export/cve/download/{id}"), &user("dev")).await.status(), 404);
    assert_eq!(ok_json(&s, &format!("/api/v2.0/export/cve/execution/{id}"), &user("dev")).await["file_present"], false);

    // CVE ids and tags narrow it.
    let id = run(&admin(), &json!({"projects": [pid], "cveIds": "{CVE-2024-0001,CVE-2024-0301}", "tags": "v*"})).await;
    let csv = get(&s, &format!("/api/v2.0/export/cve/download/{id}"), &admin()).await.text().await.unwrap();
    let cves: Vec<&str> = csv.lines().skip(1).map(|l| l.split(',').nth(2).unwrap()).collect();
    assert_eq!(cves, vec!["CVE-2024-0001", "CVE-2024-0301"], "{csv}");
    // Labels: only artifacts carrying one of them.
    let r = call(
        &s,
        Method::POST,
        "/api/v2.0/labels",
        &admin(),
        Some(&json!({"name": "prod", "scope": "p", "project_id": pid})),
    )
    .await;
    assert_eq!(r.status(), 201);
    let label = location_id(&r);
    let attach = json!({"id": label});
    let path = "/api/v2.0/projects/one/repositories/other/artifacts/v2/labels";
    assert_eq!(status(&s, Method::POST, path, &admin(), Some(&attach)).await, 200);
    let id = run(&admin(), &json!({"projects": [pid], "labels": [label]})).await;
    let csv = get(&s, &format!("/api/v2.0/export/cve/download/{id}"), &admin()).await.text().await.unwrap();
    assert_eq!(csv.lines().count(), 2, "only the labelled one/other:v2's finding: {csv}");
    assert!(csv.lines().nth(1).unwrap().starts_with("one/other,"), "{csv}");
    let id = run(&admin(), &json!({"projects": [pid], "tags": "v2"})).await;
    let csv = get(&s, &format!("/api/v2.0/export/cve/download/{id}"), &admin()).await.text().await.unwrap();
    assert_eq!(csv.lines().count(), 2, "only one/other:v2's finding: {csv}");
    assert!(csv.lines().nth(1).unwrap().starts_with("one/other,"), "{csv}");
}
