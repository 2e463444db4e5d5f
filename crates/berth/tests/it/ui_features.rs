//! The web UI's feature pages over HTTP: quotas, health, GC (schedule, log, preview),
//! tag retention, webhook executions, replication, scanning and SBOMs, signatures, and
//! comparing two tags. Each page and action as an administrator, and as a role the API
//! refuses (no button shown, and the server refuses anyway). Waits for jobs poll the API
//! with a deadline.

use std::time::Duration;

use serde_json::Value;

use crate::support::*;
use crate::ui::{Web, signed_in};

/// Polls `path` as admin until `done` holds for its JSON (up to 60 s); returns it.
async fn until(s: &Server, path: &str, what: &str, done: impl Fn(&Value) -> bool) -> Value {
    poll_json(s, path, what, Duration::from_secs(60), done).await
}

/// POSTs a form the caller may not use; the API's refusal must be what they see.
pub(crate) async fn refused(w: &mut Web<'_>, csrf: &str, action: &str, fields: &[(&str, &str)]) {
    let mut f = vec![("_csrf", csrf)];
    f.extend_from_slice(fields);
    let r = w.post(action, &f).await;
    // Either the refusal at once (the change needed a read the API refused first), or a
    // redirect to a page with the refusal as its message.
    let p = if r.status == 303 { w.get(&r.location).await } else { r };
    assert!(p.body.contains("no permission"), "POST {action} was not refused: {} {}", p.status, p.body);
}

fn final_status(s: &str) -> bool {
    matches!(s, "Success" | "Succeed" | "Failed" | "Error" | "Stopped")
}

fn harbor_with(tmp: &tempfile::TempDir, env: &[(&str, &str)]) -> Server {
    let mut all = vec![("BERTH_AUTH_MODE", "harbor")];
    all.extend_from_slice(env);
    Server::spawn(&tmp.path().join("data"), &all)
}

#[tokio::test]
async fn ui_quotas_health_gc_schedule_log_and_preview() {
    let tmp = tempfile::tempdir().unwrap();
    let s = harbor_with(&tmp, &[("BERTH_GC_TIME_WINDOW_HOURS", "0")]);
    create_user(&s, "ann").await;
    create_project(&s, &admin(), "big", false).await;
    add_member(&s, "big", "ann", 1).await;
    push_small_image_as(&s, &admin(), "big/app", "v1", "one").await;
    // Re-tagging v1 leaves the first artifact untagged: the GC preview lists it.
    let old = push_small_image_as(&s, &admin(), "big/old", "t", "first").await;
    push_small_image_as(&s, &admin(), "big/old", "t", "second").await;
    let mut w = signed_in(&s, "admin", ADMIN_PASSWORD).await;

    // Quotas: usage and limit per project, the limit set in GiB.
    let q = w.page("/admin/quotas").await;
    q.has(">big<").has("unlimited").has(r#"<label class="visually-hidden" for="limit-"#);
    let quotas = ok_json(&s, "/api/v2.0/quotas?reference=project", &admin()).await;
    let id = quotas.as_array().unwrap().iter().find(|x| x["ref"]["name"] == "big").unwrap()["id"].as_i64().unwrap();
    let q = w.submit("/admin/quotas", &format!("/admin/quotas/{id}"), &[("limit_gib", "2")]).await;
    q.has("Saved.").has("2.0 GiB").has("<meter");
    assert_eq!(ok_json(&s, &format!("/api/v2.0/quotas/{id}"), &admin()).await["hard"]["storage"], 2i64 << 30);
    // A limit the API refuses comes back with its words, naming the field.
    w.submit("/admin/quotas", &format!("/admin/quotas/{id}"), &[("limit_gib", "0")])
        .await
        .has(r#"role="alert""#)
        .has("hard.storage");
    w.page("/admin/quotas?sort=-used.storage").await.has(r#"<option value="-used.storage" selected>"#);
    // The project's settings show its quota to those who may read it.
    w.page("/projects/big/settings").await.has("Storage used").has("2.0 GiB");

    // Health: components in words, the instance from the job service.
    let h = w.page("/admin/health").await;
    h.has("database").has("storage").has("✔ healthy").has("Instances").has("<td class=\"num\">");
    h.has("Metadata database").has("sqlite").has("<strong>embedded</strong>");
    // Statuses from the API are shown in the page's language where the catalogue has them.
    w.cookies.insert("lang".into(), "zh-CN".into());
    w.page("/admin/health").await.has("✔ 健康").has("元数据数据库");
    w.cookies.remove("lang");
    let db = ok_json(&s, "/api/v2.0/system/database", &admin()).await;
    assert_eq!((db["backend"].as_str(), db["role"].as_str()), (Some("sqlite"), Some("embedded")), "{db}");

    // GC: a schedule, a run, its log as a page, and the preview from a dry run.
    let g = w.submit("/admin/gc", "/admin/gc/schedule", &[("type", "Custom"), ("cron", "0 0 3 * * *")]).await;
    g.has("Saved.").has(r#"value="0 0 3 * * *""#);
    let sched = ok_json(&s, "/api/v2.0/system/gc/schedule", &admin()).await;
    assert_eq!(sched["schedule"]["type"], "Custom", "{sched}");
    w.submit("/admin/gc", "/admin/gc/schedule", &[("type", "Custom"), ("cron", "nope")]).await.has(r#"role="alert""#);
    w.page("/admin/gc/preview").await.has("No dry run yet").has(">big<");
    w.submit("/admin/gc/preview", "/admin/gc/preview", &[]).await.has("Dry run started.");
    let hist = until(&s, "/api/v2.0/system/gc", "a dry run", |v| {
        v[0]["job_status"].as_str().is_some_and(|s| s.eq_ignore_ascii_case("success"))
    })
    .await;
    let gid = hist[0]["id"].as_i64().unwrap();
    let p = w.page("/admin/gc/preview").await;
    p.has("1 manifests and 0 blobs eligible for deletion").has("big/old").has(&format!("href=\"/admin/gc/{gid}/log\""));
    p.has(&old["sha256:".len()..][..12]);
    w.page(&format!("/admin/gc/{gid}/log")).await.has("<pre class=\"log\"").has("untagged artifact eligible");
    w.page("/admin/gc").await.has(&format!("href=\"/admin/gc/{gid}/log\"")).has("✔ Success");

    // Not an administrator: no navigation to these pages, and the API's refusal.
    let mut a = signed_in(&s, "ann", PW).await;
    a.page("/projects").await.lacks("/admin/quotas").lacks("/admin/health");
    for path in ["/admin/quotas", "/admin/health", "/admin/gc/preview", &format!("/admin/gc/{gid}/log")] {
        assert_eq!(a.get(path).await.status, 403, "{path}");
    }
    let csrf = a.page("/projects").await.csrf();
    refused(&mut a, &csrf, &format!("/admin/quotas/{id}"), &[("limit_gib", "-1")]).await;
    assert_eq!(ok_json(&s, &format!("/api/v2.0/quotas/{id}"), &admin()).await["hard"]["storage"], 2i64 << 30);
    refused(&mut a, &csrf, "/admin/gc/preview", &[]).await;
    refused(&mut a, &csrf, "/admin/gc/schedule", &[("type", "None")]).await;
    assert_eq!(ok_json(&s, "/api/v2.0/system/gc/schedule", &admin()).await["schedule"]["type"], "Custom");
}

#[tokio::test]
async fn ui_tag_retention_rules_runs_tasks_and_logs() {
    let s = Server::start_harbor();
    project_with_guest(&s, "keep").await;
    for (t, seed) in [("a", "1"), ("b", "2"), ("c", "3")] {
        push_small_image_as(&s, &admin(), "keep/app", t, seed).await;
    }
    let mut w = signed_in(&s, "admin", ADMIN_PASSWORD).await;
    w.page("/projects/keep/retention").await.has("No retention rules").lacks("Run now");
    // Changes that need a policy say there is none, and create nothing.
    w.submit("/projects/keep/retention", "/projects/keep/retention/schedule", &[("cron", "0 0 4 * * *")])
        .await
        .has("This project has no retention policy.");
    w.submit("/projects/keep/retention", "/projects/keep/retention/rules/0/toggle", &[])
        .await
        .has("This project has no retention policy.");
    assert!(ok_json(&s, "/api/v2.0/projects/keep", &admin()).await["metadata"]["retention_id"].is_null());

    // The first rule creates the policy.
    let r = w
        .submit(
            "/projects/keep/retention",
            "/projects/keep/retention/rules",
            &[
                ("repo_decoration", "repoMatches"),
                ("repos", "**"),
                ("template", "latestPushedK"),
                ("n", "1"),
                ("tag_decoration", "matches"),
                ("tags", "**"),
                ("untagged", "true"),
            ],
        )
        .await;
    r.has("Saved.").has("the 1 most recently pushed artifacts").has("Run now").has("Dry run");
    let proj = ok_json(&s, "/api/v2.0/projects/keep", &admin()).await;
    let pid: i64 = proj["metadata"]["retention_id"].as_str().unwrap().parse().unwrap();
    let pol = ok_json(&s, &format!("/api/v2.0/retentions/{pid}"), &admin()).await;
    assert_eq!(pol["rules"][0]["params"]["latestPushedK"], 1, "{pol}");
    // A rule the API refuses: its message, naming the field.
    w.submit(
        "/projects/keep/retention",
        "/projects/keep/retention/rules",
        &[("repos", "**"), ("template", "latestPushedK"), ("n", "x"), ("tags", "**")],
    )
    .await
    .has(r#"role="alert""#)
    .has("rules[1]");
    // A schedule, then a bad one.
    w.submit("/projects/keep/retention", "/projects/keep/retention/schedule", &[("cron", "0 0 4 * * *")])
        .await
        .has(r#"value="0 0 4 * * *""#);
    w.submit("/projects/keep/retention", "/projects/keep/retention/schedule", &[("cron", "bad")])
        .await
        .has("trigger.settings.cron");

    // A dry run: its execution, tasks (retained of total) and a task's log.
    w.submit("/projects/keep/retention", "/projects/keep/retention/run", &[("dry_run", "true")])
        .await
        .has("Retention run started.");
    let execs = until(&s, &format!("/api/v2.0/retentions/{pid}/executions"), "a dry run", |v| {
        v[0]["status"].as_str().is_some_and(final_status)
    })
    .await;
    let eid = execs[0]["id"].as_i64().unwrap();
    assert_eq!(execs[0]["dry_run"], true);
    let page = w.page("/projects/keep/retention").await;
    page.has(&format!("href=\"/projects/keep/retention/executions/{eid}\"")).has("✔ Success");
    let tasks = w.page(&format!("/projects/keep/retention/executions/{eid}")).await;
    tasks.has("keep/app").has("1 / 3");
    let t = ok_json(&s, &format!("/api/v2.0/retentions/{pid}/executions/{eid}/tasks"), &admin()).await;
    let tid = t[0]["id"].as_i64().unwrap();
    w.page(&format!("/projects/keep/retention/executions/{eid}/tasks/{tid}/log")).await.has("<pre class=\"log\"");
    // Nothing was deleted by the dry run.
    assert_eq!(ok_json(&s, "/api/v2.0/projects/keep/repositories/app", &admin()).await["artifact_count"], 3);

    // Disable, then remove the rule.
    w.submit("/projects/keep/retention", "/projects/keep/retention/rules/0/toggle", &[]).await.has("✖ Disabled");
    assert_eq!(ok_json(&s, &format!("/api/v2.0/retentions/{pid}"), &admin()).await["rules"][0]["disabled"], true);
    w.submit("/projects/keep/retention", "/projects/keep/retention/rules/0/delete", &[])
        .await
        .has("No retention rules");

    // A guest may not see the policy (Harbor: developers and up), nor run it.
    let mut g = signed_in(&s, "gst", PW).await;
    assert_eq!(g.get("/projects/keep/retention").await.status, 403);
    let csrf = g.page("/projects/keep/repos").await.csrf();
    refused(&mut g, &csrf, "/projects/keep/retention/run", &[]).await;
    refused(
        &mut g,
        &csrf,
        "/projects/keep/retention/rules",
        &[("template", "always"), ("repos", "**"), ("tags", "**")],
    )
    .await;
    let runs = ok_json(&s, &format!("/api/v2.0/retentions/{pid}/executions"), &admin()).await;
    assert_eq!(runs.as_array().unwrap().len(), 1, "only the admin's run: {runs}");
}

#[tokio::test]
async fn ui_webhook_executions_tasks_logs_and_toggle() {
    let s = Server::start_harbor();
    create_user(&s, "gst").await;
    create_user(&s, "mnt").await;
    create_project(&s, &admin(), "hooks", false).await;
    add_member(&s, "hooks", "gst", 3).await;
    add_member(&s, "hooks", "mnt", 4).await;
    let mut w = signed_in(&s, "admin", ADMIN_PASSWORD).await;
    w.submit(
        "/projects/hooks/webhooks",
        "/projects/hooks/webhooks",
        &[("name", "down"), ("address", "http://127.0.0.1:9/hook"), ("event", "PUSH_ARTIFACT")],
    )
    .await
    .has(">down<");
    let pol = ok_json(&s, "/api/v2.0/projects/hooks/webhook/policies", &admin()).await;
    let id = pol[0]["id"].as_i64().unwrap();
    push_small_image_as(&s, &admin(), "hooks/app", "v1", "x").await;
    let execs =
        until(&s, &format!("/api/v2.0/projects/hooks/webhook/policies/{id}/executions"), "a webhook execution", |v| {
            v.as_array().is_some_and(|a| !a.is_empty())
        })
        .await;
    let eid = execs[0]["id"].as_i64().unwrap();
    let e = w.page(&format!("/projects/hooks/webhooks/{id}/executions")).await;
    e.has("PUSH_ARTIFACT").has(&format!("href=\"/projects/hooks/webhooks/{id}/executions/{eid}\""));
    let t = w.page(&format!("/projects/hooks/webhooks/{id}/executions/{eid}")).await;
    t.has("http://127.0.0.1:9/hook");
    let tasks =
        ok_json(&s, &format!("/api/v2.0/projects/hooks/webhook/policies/{id}/executions/{eid}/tasks"), &admin()).await;
    let tid = tasks[0]["id"].as_i64().unwrap();
    w.page(&format!("/projects/hooks/webhooks/{id}/executions/{eid}/tasks/{tid}/log")).await.has("Back");

    // Disable through the list, and the API says so.
    w.submit("/projects/hooks/webhooks", &format!("/projects/hooks/webhooks/{id}/toggle"), &[]).await.has("✖ Disabled");
    let p = ok_json(&s, &format!("/api/v2.0/projects/hooks/webhook/policies/{id}"), &admin()).await;
    assert_eq!(p["enabled"], false);

    // A maintainer reads policies and executions but has no toggle or delete, and the
    // server refuses a toggle; a guest may not see them at all (Harbor's rules).
    let mut m = signed_in(&s, "mnt", PW).await;
    m.page("/projects/hooks/webhooks").await.has(">down<").lacks("/toggle").lacks("/delete");
    m.page(&format!("/projects/hooks/webhooks/{id}/executions")).await.has("PUSH_ARTIFACT");
    let csrf = m.page("/projects/hooks/repos").await.csrf();
    refused(&mut m, &csrf, &format!("/projects/hooks/webhooks/{id}/toggle"), &[]).await;
    let mut g = signed_in(&s, "gst", PW).await;
    assert_eq!(g.get("/projects/hooks/webhooks").await.status, 403);
    assert_eq!(g.get(&format!("/projects/hooks/webhooks/{id}/executions")).await.status, 403);
    assert_eq!(
        ok_json(&s, &format!("/api/v2.0/projects/hooks/webhook/policies/{id}"), &admin()).await["enabled"],
        false
    );
}

#[tokio::test]
async fn ui_registries_and_replication_to_another_berth() {
    let a = Server::start_harbor();
    let b = Server::start_harbor();
    create_user(&a, "ann").await;
    create_project(&a, &admin(), "team", false).await;
    push_small_image_as(&a, &admin(), "team/app", "v1", "rep").await;
    let mut w = signed_in(&a, "admin", ADMIN_PASSWORD).await;
    w.page("/admin/replications").await.has("Add a registry endpoint first");

    // A connection test before saving; a bad password is the API's refusal.
    let peer = b.url("");
    let fields = |pw: &'static str| {
        vec![
            ("type", "harbor"),
            ("name", "other"),
            ("url", peer.as_str()),
            ("access_key", "admin"),
            ("access_secret", pw),
            ("insecure", "true"),
        ]
    };
    let mut test = fields("wrong");
    test.push(("test", "1"));
    w.submit("/admin/registries", "/admin/registries", &test).await.has(r#"role="alert""#).has("failed to ping");
    let mut test = fields(ADMIN_PASSWORD);
    test.push(("test", "1"));
    w.submit("/admin/registries", "/admin/registries", &test).await.has("The registry answered");
    assert_eq!(
        ok_json(&a, "/api/v2.0/registries", &admin()).await.as_array().unwrap().len(),
        0,
        "a test saves nothing"
    );
    let r = w.submit("/admin/registries", "/admin/registries", &fields(ADMIN_PASSWORD)).await;
    r.has("Saved.").has(">other<").has("User name and password (admin)").lacks(ADMIN_PASSWORD);
    let regs = ok_json(&a, "/api/v2.0/registries", &admin()).await;
    let reg = regs[0]["id"].as_i64().unwrap();
    w.submit("/admin/registries", &format!("/admin/registries/{reg}/ping"), &[]).await.has("✔ healthy");

    // A push rule, run by hand: the execution, its tasks and a task's log.
    let reg_s = reg.to_string();
    let p = w
        .submit(
            "/admin/replications",
            "/admin/replications",
            &[
                ("name", "to-b"),
                ("mode", "push"),
                ("registry", &reg_s),
                ("filter", "team/**"),
                ("trigger", "manual"),
                ("override", "true"),
            ],
        )
        .await;
    p.has("Saved.").has(">to-b<").has("Push").has("name=team/**");
    // A rule the API refuses (no such registry), with its message.
    w.submit("/admin/replications", "/admin/replications", &[("name", "bad"), ("mode", "push"), ("registry", "999")])
        .await
        .has(r#"role="alert""#);
    let pols = ok_json(&a, "/api/v2.0/replication/policies", &admin()).await;
    let pid = pols[0]["id"].as_i64().unwrap();
    w.submit("/admin/replications", &format!("/admin/replications/{pid}/run"), &[]).await.has("Replication started.");
    let execs = until(&a, "/api/v2.0/replication/executions", "a replication", |v| {
        v[0]["status"].as_str().is_some_and(final_status)
    })
    .await;
    assert_eq!(execs[0]["status"], "Succeed", "{execs}");
    let eid = execs[0]["id"].as_i64().unwrap();
    let list = w.page(&format!("/admin/replications?policy_id={pid}")).await;
    list.has(&format!("href=\"/admin/replications/executions/{eid}\"")).has("1 / 1 succeeded");
    let ex = w.page(&format!("/admin/replications/executions/{eid}")).await;
    ex.has("team/app").has("✔ Succeed");
    w.page(&format!("/admin/replications/executions/{eid}?status=Failed")).await.has("Nothing here yet");
    let tasks = ok_json(&a, &format!("/api/v2.0/replication/executions/{eid}/tasks"), &admin()).await;
    let tid = tasks[0]["id"].as_i64().unwrap();
    w.page(&format!("/admin/replications/executions/{eid}/tasks/{tid}/log")).await.has("<pre class=\"log\"");
    // The image is on the other registry.
    ok_json(&b, "/api/v2.0/projects/team/repositories/app/artifacts/v1", &admin()).await;

    // A registry in use cannot be deleted (the API's rule and words); the rule can.
    w.submit("/admin/registries", &format!("/admin/registries/{reg}/delete"), &[]).await.has(r#"role="alert""#);
    w.submit("/admin/replications", &format!("/admin/replications/{pid}/delete"), &[]).await.has("Deleted.");
    w.submit("/admin/registries", &format!("/admin/registries/{reg}/delete"), &[]).await.has("Deleted.");

    // Not an administrator: refused, pages and actions.
    let mut n = signed_in(&a, "ann", PW).await;
    for path in ["/admin/registries", "/admin/replications", &format!("/admin/replications/executions/{eid}")] {
        assert_eq!(n.get(path).await.status, 403, "{path}");
    }
    let csrf = n.page("/projects").await.csrf();
    refused(&mut n, &csrf, "/admin/registries", &[("type", "harbor"), ("name", "x"), ("url", peer.as_str())]).await;
    refused(&mut n, &csrf, "/admin/replications/1/run", &[]).await;
    assert_eq!(ok_json(&a, "/api/v2.0/registries", &admin()).await.as_array().unwrap().len(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ui_scan_vulnerabilities_sbom_and_compare() {
    use crate::scanning::{OSV_FIXTURE, debian_layers, import, push_layers, wait_overview};
    let tmp = tempfile::tempdir().unwrap();
    import(&tmp.path().join("data"), OSV_FIXTURE);
    let s = harbor_with(&tmp, &[]);
    project_with_guest(&s, "scan").await;
    let layers = debian_layers();
    let d1 = push_layers(&s, "scan/app", "v1", &layers).await;
    let d2 = push_layers(&s, "scan/app", "v2", &layers[..1]).await;
    let mut w = signed_in(&s, "admin", ADMIN_PASSWORD).await;
    let art = format!("/projects/scan/repos/app/-/artifacts/{d1}");
    let page = w.page(&art).await;
    page.has("Not scanned yet.").has("Scan for vulnerabilities").has("No SBOM generated yet.");
    page.has("cosign: ✖ unsigned").has("notation: ✖ unsigned");

    // Scan, and the overview in words: counts by severity, fixable, a link to the list.
    w.submit(&art, &format!("{art}/scan"), &[("scan_type", "vulnerability")]).await.has("Scan started.");
    let api = "/api/v2.0/projects/scan/repositories/app/artifacts/v1";
    wait_overview(&s, api, "vuln").await;
    let page = w.page(&art).await;
    page.has("5 vulnerabilities").has("‼ Critical").has("5 fixable").has(&format!("href=\"{art}/vulnerabilities\""));
    let v = w.page(&format!("{art}/vulnerabilities")).await;
    v.has("CVE-2024-0001").has("libssl3").has("3.0.11-1~deb12u3").has("9.8").has("DEBIAN-CVE-2024-0006");
    // Critical comes first: severity order, not the report's.
    assert!(v.body.find("CVE-2024-0001").unwrap() < v.body.find("CVE-2024-0301").unwrap());
    let f = w.page(&format!("{art}/vulnerabilities?severity=Medium")).await;
    f.has("CVE-2024-0201")
        .has("DEBIAN-CVE-2024-0004")
        .lacks("CVE-2024-0001")
        .has(r#"<option value="Medium" selected>"#);
    w.page(&format!("{art}/vulnerabilities?package=lod")).await.has("CVE-2024-0301").lacks("CVE-2024-0001");

    // SBOM: generate, then its packages.
    w.submit(&art, &format!("{art}/scan"), &[("scan_type", "sbom")]).await.has("Scan started.");
    wait_overview(&s, api, "sbom").await;
    w.page(&art).await.has(&format!("href=\"{art}/sbom\""));
    let sb = w.page(&format!("{art}/sbom")).await;
    sb.has("libssl3").has("pkg:deb/debian/libssl3").has("lodash").has("Download (SPDX JSON)");
    w.page(&format!("{art}/sbom?name=lod")).await.has("lodash").lacks(">libssl3<");

    // Compare v1 and v2: one shared layer, one only in v1; packages and CVEs need both scanned.
    let c = w.page("/projects/scan/repos/app/-/compare?a=v1&b=v2").await;
    c.has("1 shared").has("1 only in").has("Generate an SBOM of both").has("Scan both artifacts");
    let art2 = format!("/projects/scan/repos/app/-/artifacts/{d2}");
    w.submit(&art2, &format!("{art2}/scan"), &[("scan_type", "vulnerability")]).await;
    w.submit(&art2, &format!("{art2}/scan"), &[("scan_type", "sbom")]).await;
    let api2 = "/api/v2.0/projects/scan/repositories/app/artifacts/v2";
    wait_overview(&s, api2, "vuln").await;
    wait_overview(&s, api2, "sbom").await;
    let c = w.page("/projects/scan/repos/app/-/compare?a=v1&b=v2").await;
    // Django comes only with v1's second layer.
    c.has("Packages that differ").has("CVE-2024-0201 django");
    assert!(c.body.to_ascii_lowercase().contains(">django<"), "{}", c.body);
    w.page("/projects/scan/repos/app/-/compare").await.has("First tag");
    w.page("/projects/scan/repos/app/-/compare?a=v1&b=v1").await.has("Both tags point to the same artifact");
    assert_eq!(w.get("/projects/scan/repos/app/-/compare?a=v1&b=nope").await.status, 404);

    // A guest reads the reports but has no scan buttons, and the server refuses a scan.
    let mut g = signed_in(&s, "gst", PW).await;
    let gp = g.page(&art).await;
    gp.has("5 vulnerabilities").lacks("Scan for vulnerabilities").lacks("Generate SBOM");
    refused(&mut g, &gp.csrf(), &format!("{art}/scan"), &[("scan_type", "vulnerability")]).await;
}

#[tokio::test]
async fn ui_signature_trust_and_signed_state() {
    use berth_signature::cosign;
    use berth_signature::testing::CosignSigner;
    let s = Server::start_harbor();
    project_with_guest(&s, "team").await;
    let signer = CosignSigner::generate();
    let d = push_small_image_as(&s, &admin(), "team/app", "v1", "signed").await;
    let payload = cosign::payload_for("team/app", &d);
    crate::signatures::push_cosign_tag(&s, &d, &payload, &payload, &signer).await;
    let mut w = signed_in(&s, "admin", ADMIN_PASSWORD).await;
    let art = format!("/projects/team/repos/app/-/artifacts/{d}");
    // Signed, but no trusted key yet: not verified; the signature is an accessory.
    w.page(&art).await.has("cosign: ✔ signed (no trusted key").has("signature.cosign");

    let p = w.page("/projects/team/signatures").await;
    p.has("Trusted cosign public keys").has("None: signatures are found").has(r#"<label for="sig_pem">"#);
    let added = w
        .submit(
            "/projects/team/signatures",
            "/projects/team/signatures",
            &[("kind", "cosign_public_keys"), ("name", "release"), ("pem", &signer.public_key_pem)],
        )
        .await;
    added.has("Saved.").has(">release<");
    let trust = ok_json(&s, "/api/v2.0/projects/team/signature-trust", &admin()).await;
    assert_eq!(trust["cosign_public_keys"][0]["name"], "release");
    w.page(&art).await.has("cosign: ✔✔ signed and verified");
    // A key the API refuses: its words, naming the field.
    w.submit(
        "/projects/team/signatures",
        "/projects/team/signatures",
        &[
            ("kind", "cosign_public_keys"),
            ("name", "bad"),
            ("pem", "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----"),
        ],
    )
    .await
    .has(r#"role="alert""#)
    .has("cosign_public_keys[1].public_key");
    w.submit("/projects/team/signatures", "/projects/team/signatures/cosign_public_keys/0/delete", &[])
        .await
        .has("Saved.")
        .lacks(">release<");
    // A key that does not verify the signature: signed, but unverified.
    let other = CosignSigner::generate();
    w.submit(
        "/projects/team/signatures",
        "/projects/team/signatures",
        &[("kind", "cosign_public_keys"), ("name", "other"), ("pem", &other.public_key_pem)],
    )
    .await;
    w.page(&art).await.has("cosign: ⚠ signed, but no trusted key verifies it");

    // Content trust switches live in the settings, and the signatures page shows them.
    w.submit("/projects/team/settings", "/projects/team/settings", &[("enable_content_trust_cosign", "true")])
        .await
        .has("Saved.");
    w.page("/projects/team/signatures").await.has("Pull only images signed with cosign: ✔ Enabled");

    // A guest may not read the trust (Harbor's metadata rule), nor change it.
    let mut g = signed_in(&s, "gst", PW).await;
    assert_eq!(g.get("/projects/team/signatures").await.status, 403);
    let csrf = g.page("/projects/team/repos").await.csrf();
    let pem = signer.public_key_pem.clone();
    refused(
        &mut g,
        &csrf,
        "/projects/team/signatures",
        &[("kind", "cosign_public_keys"), ("name", "x"), ("pem", &pem)],
    )
    .await;
    let trust = ok_json(&s, "/api/v2.0/projects/team/signature-trust", &admin()).await;
    assert_eq!(trust["cosign_public_keys"].as_array().unwrap().len(), 1, "only the admin's key: {trust}");
}

/// The health page on PostgreSQL with a streaming standby: the primary, the standby by
/// name with its state and lag, and a warning once the standby is gone.
#[tokio::test]
async fn ui_health_names_the_database_primary_and_its_standby() {
    if !crate::pgpair::available() {
        return;
    }
    let pg = crate::pgpair::PgPair::start(false);
    let tmp = tempfile::tempdir().unwrap();
    let s = crate::ha_postgres::start_instance(&tmp.path().join("a"), &pg.url(), &tmp.path().join("storage"));
    let db =
        until(&s, "/api/v2.0/system/database", "the standby streaming", |v| v["standbys"][0]["state"] == "streaming")
            .await;
    assert_eq!((db["backend"].as_str(), db["role"].as_str()), (Some("postgresql"), Some("primary")), "{db}");
    let mut w = signed_in(&s, "admin", ADMIN_PASSWORD).await;
    let h = w.page("/admin/health").await;
    h.has("postgresql").has("<strong>primary</strong>").has(">standby1<").has("✔ streaming").has("async");
    h.has(&format!("127.0.0.1:{}", pg.primary.port));
    // The standby stops: the primary stops listing it, and the page says so.
    pg.standby.stop_quietly();
    until(&s, "/api/v2.0/system/database", "the standby gone", |v| v["standbys"].as_array().is_some_and(Vec::is_empty))
        .await;
    w.page("/admin/health").await.has("No standby streams from this database");
    // Not for everyone.
    create_user(&s, "ann").await;
    assert_eq!(
        status(&s, reqwest::Method::GET, "/api/v2.0/system/database", &Who::Basic("ann".into(), PW.into()), None).await,
        403
    );
}

/// Scanner registrations (a second Berth serving its built-in scanner as the adapter):
/// add with a connection test, details with the adapter's metadata, edit, test, disable,
/// default, delete; a project's choice; and proxy-cache projects of the same second Berth
/// as a registry endpoint. Then a project guest: no buttons, and the API refuses.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ui_scanners_project_scanner_and_proxy_cache_projects() {
    let tmp = tempfile::tempdir().unwrap();
    let key = "adapter-key-0123456789abcdef";
    let b = Server::spawn(&tmp.path().join("b"), &[("BERTH_AUTH_MODE", "harbor"), ("BERTH_SCAN_ADAPTER_API_KEY", key)]);
    let s = harbor_with(&tmp, &[]);
    project_with_guest(&s, "p1").await;
    let mut w = signed_in(&s, "admin", ADMIN_PASSWORD).await;
    w.page("/admin/scanners").await.has(">Berth</a></th>").has("★ Default").has(r#"<label for="sc_url">"#);
    // The harbor portal's URL comes here.
    assert_eq!(w.get("/harbor/interrogation-services/scanners").await.location, "/admin/scanners");

    let adapter = b.url("/scanner-adapter");
    let fields = |cred: &'static str| {
        vec![
            ("name", "berth-b"),
            ("url", adapter.as_str()),
            ("auth", "X-ScannerAdapter-API-Key"),
            ("access_credential", cred),
        ]
    };
    let mut test = fields("wrong-key-0123456789");
    test.push(("test", "1"));
    w.submit("/admin/scanners", "/admin/scanners", &test).await.has(r#"role="alert""#).has("url");
    let mut test = fields(key);
    test.push(("test", "1"));
    w.submit("/admin/scanners", "/admin/scanners", &test).await.has("The scanner adapter answered.");
    assert_eq!(ok_json(&s, "/api/v2.0/scanners", &admin()).await.as_array().unwrap().len(), 1, "a test saves nothing");
    // A name the API refuses (the built-in scanner's), naming the field.
    let mut bad = fields(key);
    bad[0] = ("name", "Berth");
    w.submit("/admin/scanners", "/admin/scanners", &bad).await.has(r#"role="alert""#).has("name");
    let l = w.submit("/admin/scanners", "/admin/scanners", &fields(key)).await;
    l.has("Saved.").has(">berth-b<").lacks(key);
    let list = ok_json(&s, "/api/v2.0/scanners", &admin()).await;
    let id = list[1]["uuid"].as_str().unwrap().to_string();
    let builtin = list[0]["uuid"].as_str().unwrap().to_string();
    w.page("/admin/scanners?name=berth-").await.has(">berth-b<").lacks(">Berth</a></th>").has(r#"value="berth-""#);

    // Details: the adapter's health and metadata; a test with the stored key; an edit
    // that keeps the key; disable and enable.
    let page = format!("/admin/scanners/{id}");
    let d = w.page(&page).await;
    d.has("✔ healthy")
        .has("application/vnd.security.vulnerability.report; version=1.1")
        .has("Set as default")
        .lacks(key);
    w.submit(&page, &format!("{page}/ping"), &[]).await.has("The scanner adapter answered.");
    let edit = [
        ("name", "berth-b"),
        ("url", adapter.as_str()),
        ("auth", "X-ScannerAdapter-API-Key"),
        ("description", "the peer"),
    ];
    w.submit(&page, &page, &edit).await.has("Saved.").has("the peer").has("✔ healthy");
    w.submit(&page, &format!("{page}/disable"), &[]).await.has("✖ Disabled");
    assert_eq!(ok_json(&s, &format!("/api/v2.0/scanners/{id}"), &admin()).await["disabled"], true);
    // A disabled scanner is no project's candidate.
    w.page("/projects/p1/scanner").await.lacks(&format!(r#"<option value="{id}""#));
    w.submit(&page, &format!("{page}/enable"), &[]).await.has("✔ Enabled");

    // The project's choice.
    let p = w.page("/projects/p1/scanner").await;
    p.has("<dd>Berth</dd>").has(r#"<label for="scanner">"#).has(&format!(r#"<option value="{id}""#));
    w.submit("/projects/p1/scanner", "/projects/p1/scanner", &[("uuid", &id)]).await.has("Saved.").has(&adapter);
    assert_eq!(ok_json(&s, "/api/v2.0/projects/p1/scanner", &admin()).await["uuid"], id);
    w.submit("/projects/p1/scanner", "/projects/p1/scanner", &[("uuid", "nope")]).await.has(r#"role="alert""#);

    // Default: the default cannot be deleted (the API's words); back to the built-in, then delete.
    w.submit("/admin/scanners", &format!("{page}/default"), &[]).await.has("★ Default");
    assert_eq!(ok_json(&s, &format!("/api/v2.0/scanners/{id}"), &admin()).await["is_default"], true);
    w.submit(&page, &format!("{page}/delete"), &[]).await.has(r#"role="alert""#).has("default");
    w.submit("/admin/scanners", &format!("/admin/scanners/{builtin}/default"), &[]).await.has("Saved.");
    let gone = w.submit(&page, &format!("{page}/delete"), &[]).await;
    gone.has("Deleted.").lacks(">berth-b<");
    assert_eq!(w.get(&page).await.status, 404);

    // Proxy cache: the same peer as a registry endpoint, chosen in the new-project form.
    let reg = serde_json::json!({"name": "peer", "type": "harbor", "url": b.url(""), "insecure": true,
        "credential": {"type": "basic", "access_key": "admin", "access_secret": ADMIN_PASSWORD}});
    assert_eq!(status(&s, reqwest::Method::POST, "/api/v2.0/registries", &admin(), Some(&reg)).await, 201);
    let rid = ok_json(&s, "/api/v2.0/registries", &admin()).await[0]["id"].as_i64().unwrap().to_string();
    w.page("/projects").await.has(r#"<label for="registry_id">"#).has(">peer (");
    w.submit("/projects", "/projects", &[("project_name", "hub"), ("registry_id", "999")])
        .await
        .has(r#"role="alert""#)
        .has("registry_id");
    let r = w.submit("/projects", "/projects", &[("project_name", "hub"), ("registry_id", &rid)]).await;
    r.has("Project created.").has("This project is a proxy cache of").has("<strong>peer</strong>");
    assert_eq!(ok_json(&s, "/api/v2.0/projects/hub", &admin()).await["registry_id"].to_string(), rid);
    w.page("/projects").await.has("⇄ Proxy cache");
    w.page("/projects/hub/settings").await.has("This project is a proxy cache of");
    w.cookies.insert("lang".into(), "zh-CN".into());
    w.page("/projects/hub/repos").await.has("本项目是以下仓库的镜像代理");
    w.cookies.remove("lang");

    // A project guest: the project's scanner but no choice; no admin pages; refusals.
    let mut g = signed_in(&s, "gst", PW).await;
    g.page("/projects/p1/scanner").await.has("<dd>Berth</dd>").lacks(r#"name="uuid""#);
    g.page("/projects").await.lacks("/admin/scanners").lacks(r#"name="registry_id""#);
    assert_eq!(g.get("/admin/scanners").await.status, 403);
    assert_eq!(g.get(&format!("/admin/scanners/{builtin}")).await.status, 403);
    let csrf = g.page("/projects/p1/repos").await.csrf();
    refused(&mut g, &csrf, "/projects/p1/scanner", &[("uuid", &builtin)]).await;
    refused(&mut g, &csrf, "/admin/scanners", &[("name", "x"), ("url", adapter.as_str())]).await;
    refused(&mut g, &csrf, &format!("/admin/scanners/{builtin}/default"), &[]).await;
    let r = g.post("/projects", &[("_csrf", &csrf), ("project_name", "mine"), ("registry_id", &rid)]).await;
    g.get(&r.location).await.has("Only system admin can create proxy cache project");
    // A form whose token is not the session's is refused before the API is asked.
    let r = g.post("/projects/p1/scanner", &[("_csrf", "forged"), ("uuid", &builtin)]).await;
    g.get(&r.location).await.has("The form expired.");
}

/// Scan all (schedule, now, progress, stop), the security hub with its filters, the
/// system's and a project's CVE allowlists, and CVE exports with the CSV downloaded once;
/// then a project guest, who sees no change and is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ui_scan_all_security_hub_allowlists_and_cve_export() {
    use crate::scanning::{OSV_FIXTURE, debian_layers, import, push_layers};
    let tmp = tempfile::tempdir().unwrap();
    import(&tmp.path().join("data"), OSV_FIXTURE);
    let s = harbor_with(&tmp, &[]);
    project_with_guest(&s, "scan").await;
    let d = push_layers(&s, "scan/app", "v1", &debian_layers()).await;
    let mut w = signed_in(&s, "admin", ADMIN_PASSWORD).await;

    // Scan all: nothing yet, nothing to stop; a schedule; a bad one; scan now.
    w.page("/admin/scan-all").await.has("None yet.").has("Scan all now").lacks("Stop the scan all");
    w.submit("/admin/scan-all", "/admin/scan-all/stop", &[]).await.has(r#"role="alert""#).has("no scan all job");
    w.submit("/admin/scan-all", "/admin/scan-all/schedule", &[("type", "Daily")]).await.has("Saved.");
    assert_eq!(ok_json(&s, "/api/v2.0/system/scanAll/schedule", &admin()).await["schedule"]["type"], "Daily");
    w.submit("/admin/scan-all", "/admin/scan-all/schedule", &[("type", "Custom"), ("cron", "nope")])
        .await
        .has(r#"role="alert""#)
        .has("cron");
    w.submit("/admin/scan-all", "/admin/scan-all", &[]).await.has("Scan all started.");
    until(&s, "/api/v2.0/scans/all/metrics", "the scan all", |v| v["ongoing"] == false && v["total"] == 1).await;
    let p = w.page("/admin/scan-all").await;
    p.has("1 / 1 scans finished").has("Manual").has("✔ Success");
    w.submit("/admin/scan-all", "/admin/scan-all/stop", &[]).await.has("Stop requested.");

    // The security hub: totals, the worst artifact and CVEs, a search by filters.
    let h = w.page("/admin/security").await;
    h.has("5 vulnerabilities").has("1 / 1 artifacts scanned").has(&format!("/-/artifacts/{d}\"")).has("CVE-2024-0001");
    let f = w.page("/admin/security?package=django&severity=Medium").await;
    f.has("CVE-2024-0201").has(r#"<option value="Medium" selected>"#).has(r#"value="django""#).has(">v1<");
    let body = &f.body[f.body.find("hub-search").unwrap()..];
    assert!(!body.contains("libssl3"), "only django's row: {body}");
    w.page("/admin/security?project=scan&repository=scan/app&tag=v1&cvss_from=9").await.has("CVE-2024-0001");
    w.page("/admin/security?project=nope").await.has(r#"role="alert""#).has("nope");
    w.page("/admin/security?cvss_from=11").await.has(r#"role="alert""#).has("cvss_score_v3_from");
    // The search's results as CSV, with the page's filters (the link carries them).
    f.has("/admin/security/vulnerabilities.csv?package=django&amp;severity=Medium");
    let csv = w.get("/admin/security/vulnerabilities.csv?package=django&severity=Medium").await;
    assert_eq!(csv.status, 200, "{}", csv.body);
    assert!(csv.body.starts_with("CVE,Severity,CVSS3,Package,"), "{}", csv.body);
    assert!(csv.body.contains("CVE-2024-0201") && csv.body.contains("scan/app"), "{}", csv.body);
    assert!(!csv.body.contains("libssl3"), "only django's rows: {}", csv.body);
    assert_eq!(w.get("/admin/security/vulnerabilities.csv?project=nope").await.status, 400);

    // The system's allowlist: CVE ids with an expiry date; bad input named.
    w.page("/admin/cve-allowlist").await.has("No CVE on the list.").has(r#"<label for="sys_items">"#);
    let fields = [("items", "CVE-2024-0001\nCVE-2024-0301"), ("expires", "2099-01-01")];
    w.submit("/admin/cve-allowlist", "/admin/cve-allowlist", &fields).await.has("Saved.").has("2099-01-01");
    let sys = ok_json(&s, "/api/v2.0/system/CVEAllowlist", &admin()).await;
    assert_eq!((sys["items"].as_array().unwrap().len(), sys["expires_at"].as_i64()), (2, Some(4_070_908_800)), "{sys}");
    w.submit("/admin/cve-allowlist", "/admin/cve-allowlist", &[("items", "CVE-1 CVE-1")])
        .await
        .has(r#"role="alert""#)
        .has("items[1].cve_id");
    w.submit("/admin/cve-allowlist", "/admin/cve-allowlist", &[("items", "CVE-1"), ("expires", "2099-13-01")])
        .await
        .has(r#"role="alert""#)
        .has("expires_at");
    w.submit("/admin/cve-allowlist", "/admin/cve-allowlist", &[("items", "CVE-1"), ("expires", "2000-01-01")])
        .await
        .has("expired");

    // A project's: its own list, then the system's copied.
    w.page("/projects/scan/settings").await.has(r#"<input type="radio" name="reuse" value="true" checked>"#);
    w.submit(
        "/projects/scan/settings",
        "/projects/scan/settings/allowlist",
        &[("reuse", "false"), ("items", "CVE-2024-0201"), ("expires", "")],
    )
    .await
    .has("Saved.")
    .has(r#"<input type="radio" name="reuse" value="false" checked>"#);
    let proj = ok_json(&s, "/api/v2.0/projects/scan", &admin()).await;
    assert_eq!(proj["metadata"]["reuse_sys_cve_allowlist"], "false", "{proj}");
    assert_eq!(proj["cve_allowlist"]["items"][0]["cve_id"], "CVE-2024-0201");
    w.submit("/projects/scan/settings", "/projects/scan/settings/allowlist", &[("copy", "1")]).await.has("Saved.");
    let proj = ok_json(&s, "/api/v2.0/projects/scan", &admin()).await;
    assert_eq!(proj["cve_allowlist"]["items"], serde_json::json!([{"cve_id": "CVE-1"}]), "{proj}");

    // CVE export: start, wait, download once.
    w.page("/cve-exports?project=scan").await.has(r#"value="scan""#).has("Nothing here yet");
    w.submit("/cve-exports", "/cve-exports", &[("project", "scan"), ("repositories", "a b")])
        .await
        .has(r#"role="alert""#)
        .has("repositories");
    w.submit("/cve-exports", "/cve-exports", &[("project", "nope")]).await.has(r#"role="alert""#);
    w.submit("/cve-exports", "/cve-exports", &[("project", "scan"), ("repositories", "app")])
        .await
        .has("Export started.");
    let ex = until(&s, "/api/v2.0/export/cve/executions", "the export", |v| v["items"][0]["status"] == "Success").await;
    let eid = ex["items"][0]["id"].as_i64().unwrap();
    w.page("/cve-exports").await.has(&format!("href=\"/cve-exports/{eid}/download\""));
    let csv = w.get(&format!("/cve-exports/{eid}/download")).await;
    assert_eq!(csv.status, 200);
    assert!(csv.body.contains("CVE-2024-0001") && csv.body.contains("scan/app"), "{}", csv.body);
    w.page("/cve-exports").await.lacks(&format!("/cve-exports/{eid}/download")).has("downloaded");
    assert_eq!(w.get(&format!("/cve-exports/{eid}/download")).await.status, 404);

    // The project guest: no admin pages, the allowlist read-only, refusals.
    let mut g = signed_in(&s, "gst", PW).await;
    for path in ["/admin/scan-all", "/admin/security", "/admin/security/vulnerabilities.csv"] {
        assert_eq!(g.get(path).await.status, 403, "{path}");
    }
    g.page("/admin/cve-allowlist").await.has("CVE-1").lacks(r#"action="/admin/cve-allowlist""#);
    g.page("/projects/scan/settings").await.has("<fieldset disabled>");
    let csrf = g.page("/cve-exports").await.csrf();
    refused(&mut g, &csrf, "/admin/scan-all", &[]).await;
    refused(&mut g, &csrf, "/admin/scan-all/schedule", &[("type", "None")]).await;
    refused(&mut g, &csrf, "/admin/scan-all/stop", &[]).await;
    refused(&mut g, &csrf, "/admin/cve-allowlist", &[("items", "CVE-9")]).await;
    refused(&mut g, &csrf, "/projects/scan/settings/allowlist", &[("reuse", "true"), ("items", "")]).await;
    refused(&mut g, &csrf, "/cve-exports", &[("project", "scan")]).await;
    assert_eq!(ok_json(&s, "/api/v2.0/system/scanAll/schedule", &admin()).await["schedule"]["type"], "Daily");
    assert_eq!(ok_json(&s, "/api/v2.0/system/CVEAllowlist", &admin()).await["items"][0]["cve_id"], "CVE-1");
}
