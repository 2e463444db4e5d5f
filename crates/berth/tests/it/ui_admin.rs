//! The web UI's administration pages over HTTP: users (set/unset administrator, reset a
//! password, delete), log rotation (the audit log purge), configuration and the banner
//! message, global labels, the account's profile, the job queues and running jobs, and
//! the audit log's filters. Each action as an administrator and as a user the server
//! refuses, and the bad input each form can get (a message naming the field).

use std::time::Duration;

use berth_core::store::jobs::{JobState, JobStore};
use serde_json::Value;

use crate::jobs::{sample_env, sqlite_of, start_sample, wait_for};
use crate::support::*;
use crate::ui::{Web, post_from, signed_in};
use crate::ui_features::refused;

#[tokio::test]
async fn ui_admin_users_set_admin_reset_password_delete() {
    let s = Server::start_harbor();
    let ann = create_user(&s, "ann").await;
    create_user(&s, "bob").await;
    let mut w = signed_in(&s, "admin", ADMIN_PASSWORD).await;
    let p = w.page("/admin/users").await;
    p.has(r#"aria-label="Set as administrator: ann""#)
        .has(&format!(r#"href="/admin/users/{ann}/password""#))
        .has(&format!(r#"href="/admin/users/{ann}/delete""#))
        // Your own row has no actions.
        .lacks(r#"href="/admin/users/1/delete""#)
        .lacks(r#"aria-label="Unset administrator: admin""#)
        .has("1 / 1 · 3");
    // Paging keeps the filter; past the end there is nothing.
    w.page("/admin/users?name=zz&page=2").await.has("Nothing here yet.").has("name=zz&amp;page=1");

    // Set and unset administrator.
    let p = w.submit("/admin/users", &format!("/admin/users/{ann}/sysadmin/true"), &[]).await;
    p.has("Saved.").has(r#"aria-label="Unset administrator: ann""#);
    assert_eq!(ok_json(&s, &format!("/api/v2.0/users/{ann}"), &admin()).await["sysadmin_flag"], true);
    w.submit("/admin/users", &format!("/admin/users/{ann}/sysadmin/false"), &[]).await.has("Saved.");
    assert_eq!(ok_json(&s, &format!("/api/v2.0/users/{ann}"), &admin()).await["sysadmin_flag"], false);

    // Reset a password: the two fields must agree, the API's policy applies.
    let form = format!("/admin/users/{ann}/password");
    w.page(&form).await.has("Reset password · ann").has(r#"<label for="new_password">"#);
    let p = w.submit(&form, &form, &[("new_password", "Newpassw0rd"), ("confirm_password", "Other")]).await;
    p.has("The new passwords differ.");
    let p = w.submit(&form, &form, &[("new_password", "short"), ("confirm_password", "short")]).await;
    p.has(r#"role="alert""#).has("password");
    let p = w.submit(&form, &form, &[("new_password", "Newpassw0rd"), ("confirm_password", "Newpassw0rd")]).await;
    p.has("Password set.");
    signed_in(&s, "ann", "Newpassw0rd").await;

    // Delete through the confirm page; the API refuses deleting the first administrator.
    let confirm = format!("/admin/users/{ann}/delete");
    w.page(&confirm).await.has("Are you sure?").has("User ann");
    let p = w.submit(&confirm, &confirm, &[]).await;
    p.has("Deleted.").lacks(">ann<");
    assert_eq!(get(&s, &format!("/api/v2.0/users/{ann}"), &admin()).await.status(), 404);
    let r = post_from(&mut w, "/admin/users", "/admin/users/1/delete", &[]).await;
    w.page(&r.location).await.has(r#"role="alert""#).has("cannot be deleted");

    // Someone who is not an administrator: every page and action refused by the API.
    let mut b = signed_in(&s, "bob", PW).await;
    for path in ["/admin/users", "/admin/users/1/password", "/admin/users/1/delete"] {
        assert_eq!(b.get(path).await.status, 403, "{path}");
    }
    let csrf = b.page("/account").await.csrf();
    refused(&mut b, &csrf, "/admin/users/1/sysadmin/false", &[]).await;
    refused(
        &mut b,
        &csrf,
        "/admin/users/1/password",
        &[("new_password", "Xpassw0rdX"), ("confirm_password", "Xpassw0rdX")],
    )
    .await;
    refused(&mut b, &csrf, "/admin/users/1/delete", &[]).await;
    assert_eq!(ok_json(&s, "/api/v2.0/users/1", &admin()).await["sysadmin_flag"], true);
}

#[tokio::test]
async fn ui_admin_log_rotation_schedule_dry_run_purge_and_log() {
    let s = Server::start_harbor();
    create_user(&s, "bob").await;
    let mut w = signed_in(&s, "admin", ADMIN_PASSWORD).await;
    let p = w.page("/admin/log-rotation").await;
    p.has(r#"aria-current="page">Log rotation"#)
        .has(r#"<label for="retention">"#)
        .has(r#"<label for="sched_type">"#)
        .has(r#"value="create_artifact" checked"#)
        .has(r#"value="update_user">"#)
        .has("Event types to purge");
    // The GC page has the same tabs.
    w.page("/admin/gc").await.has(r#"href="/admin/log-rotation""#);

    // A schedule with its retention and operations.
    let p = w
        .submit(
            "/admin/log-rotation",
            "/admin/log-rotation",
            &[
                ("type", "Custom"),
                ("cron", "0 0 3 * * *"),
                ("retention", "2"),
                ("unit", "days"),
                ("types", "create_artifact"),
                ("types", "delete_user"),
                ("do", "save"),
            ],
        )
        .await;
    p.has("Saved.").has(r#"value="0 0 3 * * *""#).has(r#"<option value="days" selected>"#);
    let sched = ok_json(&s, "/api/v2.0/system/purgeaudit/schedule", &admin()).await;
    assert_eq!(sched["schedule"]["cron"], "0 0 3 * * *");
    let params: Value = serde_json::from_str(sched["job_parameters"].as_str().unwrap()).unwrap();
    assert_eq!(
        (params["audit_retention_hour"].as_i64(), params["include_event_types"].as_str()),
        (Some(48), Some("create_artifact,delete_user"))
    );
    w.page("/admin/log-rotation").await.has(r#"value="delete_user" checked"#).has(r#"value="pull_artifact">"#);

    // Bad input: a cron that is not one, negative hours; the message names the field.
    let bad = [("type", "Custom"), ("cron", "nope"), ("retention", "1"), ("unit", "hours"), ("do", "save")];
    let p = w.submit("/admin/log-rotation", "/admin/log-rotation", &bad).await;
    p.has(r#"role="alert""#).has("Cron (six fields").has("schedule.cron");
    let bad = [("type", "None"), ("retention", "-5"), ("unit", "hours"), ("types", "pull_artifact"), ("do", "dry_run")];
    let p = w.submit("/admin/log-rotation", "/admin/log-rotation", &bad).await;
    p.has(r#"role="alert""#).has("Keep audit log entries for: parameters.audit_retention_hour");

    // A dry run, then its history row and log.
    let run =
        [("type", "None"), ("retention", "1"), ("unit", "hours"), ("types", "create_artifact"), ("do", "dry_run")];
    w.submit("/admin/log-rotation", "/admin/log-rotation", &run).await.has("Dry run started.");
    let done = wait_for("the dry run", Duration::from_secs(30), async || {
        let v = ok_json(&s, "/api/v2.0/system/purgeaudit", &admin()).await;
        let first = v[0].clone();
        matches!(first["job_status"].as_str(), Some("Success" | "Error" | "Stopped")).then_some(first)
    })
    .await;
    let id = done["id"].as_i64().unwrap();
    let p = w.page("/admin/log-rotation").await;
    p.has(&format!(r#"href="/admin/log-rotation/{id}/log""#)).has("✔ Success").has("<td>Yes</td>").has("Manual");
    w.page(&format!("/admin/log-rotation/{id}/log")).await.has("<pre class=\"log\"").has("dry run:");
    let run = [("type", "None"), ("retention", "1"), ("unit", "hours"), ("types", "create_artifact"), ("do", "now")];
    w.submit("/admin/log-rotation", "/admin/log-rotation", &run).await.has("Audit log purge started.");
    // Stopping a finished run is accepted (nothing left to stop).
    let r = post_from(&mut w, "/admin/log-rotation", &format!("/admin/log-rotation/{id}/stop"), &[]).await;
    assert_eq!(r.status, 303);
    // Harbor's portal URL.
    let r = w.get("/harbor/clearing-job/audit-log-purge").await;
    assert_eq!((r.status, r.location.as_str()), (308, "/admin/log-rotation"));

    // Not an administrator: refused.
    let mut b = signed_in(&s, "bob", PW).await;
    for path in ["/admin/log-rotation".to_string(), format!("/admin/log-rotation/{id}/log")] {
        assert_eq!(b.get(&path).await.status, 403, "{path}");
    }
    let csrf = b.page("/account").await.csrf();
    refused(&mut b, &csrf, "/admin/log-rotation", &run).await;
    refused(&mut b, &csrf, &format!("/admin/log-rotation/{id}/stop"), &[]).await;
}

#[tokio::test]
async fn ui_admin_config_every_setting_banner_and_field_errors() {
    let s = Server::start_harbor();
    create_user(&s, "bob").await;
    let mut w = signed_in(&s, "admin", ADMIN_PASSWORD).await;
    let p = w.page("/admin/config").await;
    p.has("Authentication").has("<code>db_auth</code>").has("System settings");
    for id in ["pcr", "rtd", "rp", "spp", "st", "ale", "banner_text", "banner_type", "banner_from", "banner_to"] {
        p.has(&format!(r#"<label for="{id}">"#));
    }
    // Authentication: self-registration.
    w.submit("/admin/config", "/admin/config", &[("section", "auth"), ("self_registration", "true")])
        .await
        .has("Saved.");
    assert_eq!(ok_json(&s, "/api/v2.0/configurations", &admin()).await["self_registration"]["value"], true);

    // Every system setting at once, with a banner.
    let system = |banner_type: &'static str, to: &'static str| {
        vec![
            ("section", "system"),
            ("project_creation_restriction", "adminonly"),
            ("robot_token_duration", "7"),
            ("robot_name_prefix", "bot$"),
            ("storage_per_project", "2"),
            ("session_timeout", "30"),
            ("audit_log_forward_endpoint", ""),
            ("banner_text", "Maintenance tonight"),
            ("banner_type", banner_type),
            ("banner_closable", "true"),
            ("banner_from", "2020-01-01"),
            ("banner_to", to),
        ]
    };
    let p = w.submit("/admin/config", "/admin/config", &system("danger", "2099-12-31")).await;
    p.has("Saved.").has(r#"value="Maintenance tonight""#).has(r#"value="2099-12-31""#).has(r#"value="2""#);
    let cfg = ok_json(&s, "/api/v2.0/configurations", &admin()).await;
    assert_eq!(cfg["project_creation_restriction"]["value"], "adminonly");
    assert_eq!(cfg["robot_token_duration"]["value"], 7);
    assert_eq!(cfg["robot_name_prefix"]["value"], "bot$");
    assert_eq!(cfg["storage_per_project"]["value"], 2i64 * 1024 * 1024 * 1024);
    assert_eq!(cfg["session_timeout"]["value"], 30);
    assert_eq!(cfg["notification_enable"]["value"], false, "unticked");
    assert_eq!(cfg["read_only"]["value"], false);
    // Harbor's banner document.
    let b: Value = serde_json::from_str(cfg["banner_message"]["value"].as_str().unwrap()).unwrap();
    assert_eq!(
        (b["message"].as_str(), b["type"].as_str(), b["closable"].as_bool()),
        (Some("Maintenance tonight"), Some("danger"), Some(true))
    );
    assert_eq!(
        (b["fromDate"].as_str(), b["toDate"].as_str()),
        (Some("2020-01-01T00:00:00.000Z"), Some("2099-12-31T23:59:59.000Z"))
    );
    // The banner on every page, and on the sign-in form for someone signed out.
    w.page("/projects").await.has(r#"class="banner danger" role="alert""#).has("Maintenance tonight");
    let mut anon = Web::new(&s);
    anon.page("/login").await.has(r#"role="alert""#).has("Maintenance tonight").has("data-dismiss");
    w.submit("/admin/config", "/admin/config", &system("info", "2099-12-31"))
        .await
        .has(r#"class="banner info" role="status""#);
    // Outside its window it is not shown.
    w.submit("/admin/config", "/admin/config", &system("info", "2020-01-02")).await.lacks("class=\"banner");
    anon.page("/login").await.lacks("Maintenance tonight");

    // Bad input: the page again, with the field marked and named, the sent value kept.
    let mut bad = system("info", "2099-12-31");
    for (field, value, label, key) in [
        ("session_timeout", "0", "Session timeout (minutes)", "session_timeout"),
        ("session_timeout", "soon", "Session timeout (minutes)", "session_timeout"),
        ("storage_per_project", "0", "Default project quota", "storage_per_project"),
        ("robot_token_duration", "0", "Robot account expiry (days)", "robot_token_duration"),
        ("audit_log_forward_endpoint", "nohost", "Forward audit log", "audit_log_forward_endpoint"),
        ("banner_from", "2024-13-45", "Shown from (UTC day)", "banner_from"),
    ] {
        bad.retain(|(k, _)| *k != field);
        bad.push((field, value));
        let r = post_from(&mut w, "/admin/config", "/admin/config", &bad).await;
        assert_eq!(r.status, 400, "{field}={value}: {}", r.body);
        r.has(r#"role="alert""#)
            .has(label)
            .has(&format!("{key}:"))
            .has(r#"aria-invalid="true""#)
            .has(&format!(r#"aria-describedby="err-{key}""#))
            .has(&format!(r#"value="{value}""#));
        bad = system("info", "2099-12-31");
    }
    assert_eq!(
        ok_json(&s, "/api/v2.0/configurations", &admin()).await["session_timeout"]["value"],
        30,
        "nothing saved"
    );
    // The old form (no section) still works: only what it sends changes.
    w.submit(
        "/admin/config",
        "/admin/config",
        &[("project_creation_restriction", "everyone"), ("session_timeout", "45"), ("robot_name_prefix", "robot$")],
    )
    .await
    .has("Saved.");
    assert_eq!(ok_json(&s, "/api/v2.0/configurations", &admin()).await["robot_token_duration"]["value"], 7);

    // Not an administrator: refused.
    let mut b = signed_in(&s, "bob", PW).await;
    assert_eq!(b.get("/admin/config").await.status, 403);
    let csrf = b.page("/account").await.csrf();
    refused(&mut b, &csrf, "/admin/config", &[("section", "system"), ("session_timeout", "5")]).await;
    refused(&mut b, &csrf, "/admin/config", &[("section", "auth")]).await;
    assert_eq!(ok_json(&s, "/api/v2.0/configurations", &admin()).await["self_registration"]["value"], true);
}

/// The configuration page's audit event types not recorded (`audit_log_disable`): one
/// labelled checkbox per type, saved through the API (its refusal shown by the field), in
/// effect at once; the log rotation page's types have the same labels, in English and
/// Chinese. Only administrators.
#[tokio::test]
async fn ui_admin_config_audit_event_types_not_recorded() {
    let s = Server::start_harbor();
    create_user(&s, "bob").await;
    let mut w = signed_in(&s, "admin", ADMIN_PASSWORD).await;
    let p = w.page("/admin/config").await;
    p.has("<legend>Audit log event types not recorded</legend>")
        .has(r#"<input type="checkbox" name="audit_log_disable" title="create_project" value="create_project">"#)
        .has(r#" Create project <code aria-hidden="true">create_project</code>"#)
        .has(r#" Update configuration <code aria-hidden="true">update_configuration</code>"#);
    let n = p.body.matches(r#"name="audit_log_disable""#).count();
    assert_eq!(n, berth_core::audit::EVENT_TYPES.len(), "one checkbox per type");

    let system = |types: &[&'static str]| {
        let mut f = vec![("section", "system"), ("notification_enable", "true")];
        f.extend(types.iter().map(|t| ("audit_log_disable", *t)));
        f
    };
    let p = w.submit("/admin/config", "/admin/config", &system(&["delete_user", "create_project"])).await;
    p.has("Saved.")
        .has(r#"value="create_project" checked"#)
        .has(r#"value="delete_user" checked"#)
        .has(r#"value="create_user">"#);
    let cfg = ok_json(&s, "/api/v2.0/configurations", &admin()).await;
    assert_eq!(cfg["audit_log_disable"]["value"], "create_project,delete_user", "the API's canonical form");
    create_project(&s, &admin(), "unheard", false).await;
    let log = ok_json(&s, "/api/v2.0/audit-logs?q=resource=unheard", &admin()).await;
    assert_eq!(log, serde_json::json!([]), "in effect at once");

    // A form that is not the system section's leaves the list alone.
    w.submit("/admin/config", "/admin/config", &[("section", "auth")]).await.has("Saved.");
    let cfg = ok_json(&s, "/api/v2.0/configurations", &admin()).await;
    assert_eq!(cfg["audit_log_disable"]["value"], "create_project,delete_user");

    // A type the API does not know (a tampered form): the API's refusal, by the field.
    let r = post_from(&mut w, "/admin/config", "/admin/config", &system(&["create_project", "explode_artifact"])).await;
    assert_eq!(r.status, 400, "{}", r.body);
    r.has(r#"role="alert""#)
        .has("Audit log event types not recorded: audit_log_disable:")
        .has("explode_artifact")
        .has(r#"id="err-audit_log_disable""#)
        .has(r#"aria-describedby="audit-disable-hint err-audit_log_disable""#);
    // Unticking every type records everything again.
    let p = w.submit("/admin/config", "/admin/config", &system(&[])).await;
    p.has("Saved.").lacks(r#"value="create_project" checked"#).lacks(r#"value="delete_user" checked"#);
    let cfg = ok_json(&s, "/api/v2.0/configurations", &admin()).await;
    assert_eq!(cfg["audit_log_disable"]["value"], "");

    // The log rotation page: the same labels, with the code.
    w.page("/admin/log-rotation").await.has(r#" Create artifact <code aria-hidden="true">create_artifact</code>"#);
    // In Simplified Chinese, both pages.
    let csrf = w.page("/prefs").await.csrf();
    let r = w.post("/prefs", &[("_csrf", &csrf), ("lang", "zh-CN"), ("theme", "light"), ("client", "docker")]).await;
    assert_eq!(r.status, 303);
    w.page("/admin/log-rotation").await.has(r#" 创建制品 <code aria-hidden="true">create_artifact</code>"#);
    w.page("/admin/config")
        .await
        .has("<legend>不记录的审计日志事件类型</legend>")
        .has(r#" 更新配置 <code aria-hidden="true">update_configuration</code>"#);

    // Not an administrator: refused.
    let mut b = signed_in(&s, "bob", PW).await;
    assert_eq!(b.get("/admin/config").await.status, 403);
    let csrf = b.page("/account").await.csrf();
    refused(&mut b, &csrf, "/admin/config", &system(&["create_user"])).await;
    assert_eq!(ok_json(&s, "/api/v2.0/configurations", &admin()).await["audit_log_disable"]["value"], "");
}

#[tokio::test]
async fn ui_admin_global_labels() {
    let s = Server::start_harbor();
    create_user(&s, "bob").await;
    let mut w = signed_in(&s, "admin", ADMIN_PASSWORD).await;
    w.page("/admin/labels")
        .await
        .has("Global labels")
        .has("New label")
        .has(r#"href="/admin/labels" aria-current="page""#);
    let p = w
        .submit(
            "/admin/labels",
            "/admin/labels",
            &[("name", "release"), ("color", "#00aa00"), ("description", "shipped")],
        )
        .await;
    p.has("Saved.").has(">release<").has("shipped");
    let labels = ok_json(&s, "/api/v2.0/labels?scope=g", &admin()).await;
    let id = labels[0]["id"].as_i64().unwrap();
    assert_eq!(labels[0]["scope"], "g");
    // Bad input: no name, a duplicate.
    w.submit("/admin/labels", "/admin/labels", &[("name", ""), ("color", "#00aa00")]).await.has(r#"role="alert""#);
    let p = w.submit("/admin/labels", "/admin/labels", &[("name", "release"), ("color", "#00aa00")]).await;
    p.has(r#"role="alert""#).has("already exists");
    // Edit and delete.
    let edit = format!("/admin/labels/{id}/edit");
    w.page(&edit).await.has("Edit label").has(r#"value="release""#);
    let p = w.submit(&edit, &edit, &[("name", "stable"), ("color", "#0000aa"), ("description", "")]).await;
    p.has("Saved.").has(">stable<").lacks(">release<");
    // The project's label page is the same code, with the project's scope.
    create_project(&s, &admin(), "shop", false).await;
    w.submit("/projects/shop/labels", "/projects/shop/labels", &[("name", "mine"), ("color", "#00aa00")])
        .await
        .has(">mine<");
    w.page("/admin/labels").await.lacks(">mine<");
    let r = w.get("/harbor/labels").await;
    assert_eq!((r.status, r.location.as_str()), (308, "/admin/labels"));

    // Anyone may list the global labels; only administrators change them.
    let mut b = signed_in(&s, "bob", PW).await;
    let p = b.page("/admin/labels").await;
    p.has(">stable<").lacks("New label").lacks(&edit);
    assert_eq!(b.get(&edit).await.status, 403);
    let csrf = p.csrf();
    refused(&mut b, &csrf, "/admin/labels", &[("name", "x"), ("color", "#00aa00")]).await;
    refused(&mut b, &csrf, &edit, &[("name", "y"), ("color", "#00aa00")]).await;
    refused(&mut b, &csrf, &format!("/admin/labels/{id}/delete"), &[]).await;
    let p = w.submit("/admin/labels", &format!("/admin/labels/{id}/delete"), &[]).await;
    p.has("Deleted.").lacks(">stable<");
}

#[tokio::test]
async fn ui_admin_account_profile() {
    let s = Server::start_harbor();
    let ann = create_user(&s, "ann").await;
    let mut a = signed_in(&s, "ann", PW).await;
    let p = a.page("/account").await;
    p.has(r#"<label for="email">"#)
        .has(r#"<label for="realname">"#)
        .has(r#"<label for="comment">"#)
        .has("ann@example.com");
    let p = a
        .submit(
            "/account",
            "/account/profile",
            &[("email", "ann@corp.example"), ("realname", "Ann A"), ("comment", "ops")],
        )
        .await;
    p.has("Profile saved.").has(r#"value="ann@corp.example""#).has(r#"value="Ann A""#).has(r#"value="ops""#);
    let u = ok_json(&s, &format!("/api/v2.0/users/{ann}"), &admin()).await;
    assert_eq!(
        (u["email"].as_str(), u["realname"].as_str(), u["comment"].as_str()),
        (Some("ann@corp.example"), Some("Ann A"), Some("ops"))
    );
    // Bad input: the API's message names the field.
    let p = a.submit("/account", "/account/profile", &[("email", "not-an-address"), ("realname", "Ann")]).await;
    p.has(r#"role="alert""#).has("is not a valid e-mail address");
    let long = "c".repeat(31);
    let p = a
        .submit(
            "/account",
            "/account/profile",
            &[("email", "ann@corp.example"), ("realname", "Ann"), ("comment", &long)],
        )
        .await;
    p.has(r#"role="alert""#).has("comment must be at most 30 characters");
    // Signed out: sign in first, nothing changed.
    let mut anon = Web::new(&s);
    let r = anon.post("/account/profile", &[("_csrf", "x"), ("email", "x@y.io"), ("realname", "X")]).await;
    assert_eq!((r.status, r.location.as_str()), (303, "/login?next=%2Faccount%2Fprofile"));
    assert_eq!(ok_json(&s, &format!("/api/v2.0/users/{ann}"), &admin()).await["email"], "ann@corp.example");
}

#[tokio::test]
async fn ui_admin_jobs_queues_running_job_stop_and_log() {
    let tmp = tempfile::tempdir().unwrap();
    let s = Server::spawn(&tmp.path().join("data"), &sample_env());
    create_user(&s, "bob").await;
    let store = sqlite_of(&s);
    let (_, job) = start_sample(store.as_ref(), 60).await;
    wait_for("the sample job to run", Duration::from_secs(20), async || {
        let w = ok_json(&s, "/api/v2.0/jobservice/pools/all/workers", &admin()).await;
        (!w.as_array().unwrap().is_empty()).then_some(())
    })
    .await;
    let mut w = signed_in(&s, "admin", ADMIN_PASSWORD).await;
    let p = w.page("/admin/jobs").await;
    p.has("Running jobs")
        .has(&format!(r#"href="/admin/jobs/{job}/log""#))
        .has(&format!(r#"aria-label="Stop SAMPLE {job}""#))
        .has(r#"aria-label="Pause: SAMPLE""#)
        .has(r#"aria-label="Stop all jobs: every queue""#);
    wait_for("a log line", Duration::from_secs(20), async || {
        w.page(&format!("/admin/jobs/{job}/log")).await.body.contains("second 1 of 60").then_some(())
    })
    .await;
    // Stop the running job.
    let p = w.submit("/admin/jobs", &format!("/admin/jobs/{job}/stop"), &[]).await;
    p.has("Stop requested.");
    wait_for("the stop", Duration::from_secs(20), async || {
        (store.job(job).await.unwrap().unwrap().state == JobState::Cancelled).then_some(())
    })
    .await;
    // Pause and resume a queue, then every queue.
    let p = w.submit("/admin/jobs", "/admin/jobs/queues/SAMPLE/pause", &[]).await;
    p.has("Queue paused.").has(r#"aria-label="Resume: SAMPLE""#);
    w.submit("/admin/jobs", "/admin/jobs/queues/SAMPLE/resume", &[])
        .await
        .has("Queue resumed.")
        .has(r#"aria-label="Pause: SAMPLE""#);
    w.submit("/admin/jobs", "/admin/jobs/queues/all/pause", &[]).await.lacks(r#"aria-label="Pause: SAMPLE""#);
    let queues = ok_json(&s, "/api/v2.0/jobservice/queues", &admin()).await;
    assert!(queues.as_array().unwrap().iter().all(|q| q["paused"] == true), "{queues}");
    w.submit("/admin/jobs", "/admin/jobs/queues/all/resume", &[]).await.has("Queue resumed.");
    // Stop every job of a type: the queued one goes.
    w.submit("/admin/jobs", "/admin/jobs/queues/SAMPLE/pause", &[]).await;
    let (_, waiting) = start_sample(store.as_ref(), 1).await;
    w.submit("/admin/jobs", "/admin/jobs/queues/SAMPLE/stop", &[]).await.has("Stop requested.");
    wait_for("the queued job to stop", Duration::from_secs(20), async || {
        store.job(waiting).await.unwrap().unwrap().state.is_final().then_some(())
    })
    .await;
    w.submit("/admin/jobs", "/admin/jobs/queues/SAMPLE/resume", &[]).await;
    // Bad input: an action or a job type the API does not know.
    w.submit("/admin/jobs", "/admin/jobs/queues/SAMPLE/explode", &[]).await.has(r#"role="alert""#).has("is not one of");
    w.submit("/admin/jobs", "/admin/jobs/queues/NOPE/pause", &[]).await.has(r#"role="alert""#).has("not found");
    w.submit("/admin/jobs", "/admin/jobs/424242/stop", &[]).await.has(r#"role="alert""#).has("job 424242 not found");

    // Not an administrator: refused.
    let mut b = signed_in(&s, "bob", PW).await;
    for path in ["/admin/jobs".to_string(), format!("/admin/jobs/{job}/log")] {
        assert_eq!(b.get(&path).await.status, 403, "{path}");
    }
    let csrf = b.page("/account").await.csrf();
    refused(&mut b, &csrf, "/admin/jobs/queues/SAMPLE/pause", &[]).await;
    refused(&mut b, &csrf, &format!("/admin/jobs/{job}/stop"), &[]).await;
}

#[tokio::test]
async fn ui_admin_audit_filters_by_user_operation_resource_and_time() {
    let s = Server::start_harbor();
    create_user(&s, "bob").await;
    create_project(&s, &admin(), "shop", false).await;
    create_project(&s, &admin(), "depot", false).await;
    let mut w = signed_in(&s, "admin", ADMIN_PASSWORD).await;
    let p = w.page("/admin/audit?user=adm&op=create&resource=sho&from=2000-01-01&to=2999-12-31").await;
    p.has(">shop<").lacks(">depot<").has(r#"value="sho""#).has(r#"value="2000-01-01""#);
    for id in ["user", "op", "resource", "from", "to"] {
        p.has(&format!(r#"<label for="{id}">"#));
    }
    w.page("/admin/audit?resource=depot").await.has(">depot<").lacks(">shop<");
    w.page("/admin/audit?user=bob").await.has("Nothing here yet.");
    w.page("/admin/audit?op=delete&resource=shop").await.has("Nothing here yet.");
    w.page("/admin/audit?from=2000-01-01&to=2000-01-02").await.has("Nothing here yet.");
    w.page("/admin/audit?from=2999-01-01").await.has("Nothing here yet.");
    // Bad input: the API's refusal next to the filters.
    let r = w.get("/admin/audit?from=yesterday").await;
    assert_eq!(r.status, 400);
    r.has(r#"role="alert""#).has("op_time").has(r#"value="yesterday""#);
    // The project's log, filtered the same way.
    let p = w.page("/projects/shop/audit?op=create&resource=shop&from=2000-01-01").await;
    p.has(">shop<").has(r#"<label for="resource">"#);
    w.page("/projects/shop/audit?resource=nomatch").await.has("Nothing here yet.");
    // Not a member: the API refuses the project's log, and the system log has none of it.
    let mut b = signed_in(&s, "bob", PW).await;
    assert!(matches!(b.get("/projects/shop/audit?op=create").await.status, 403 | 404));
    b.page("/admin/audit?resource=shop").await.has("Nothing here yet.");
}

/// The banner message's Markdown on every page and the sign-in form: links, emphasis
/// and code rendered; raw HTML escaped, a `javascript:` link neutralised, no blocks.
#[tokio::test]
async fn ui_banner_message_markdown_rendered_safely() {
    let s = Server::start_harbor();
    let mut w = signed_in(&s, "admin", ADMIN_PASSWORD).await;
    let text = concat!(
        "*Maintenance* at `22:00`: see [status](https://status.example.com). ",
        "<script>alert(1)</script> [click](javascript:alert(2)) <img src=x onerror=alert(3)>"
    );
    let fields = [
        ("section", "system"),
        ("project_creation_restriction", "everyone"),
        ("robot_token_duration", "30"),
        ("robot_name_prefix", "robot$"),
        ("storage_per_project", "-1"),
        ("session_timeout", "60"),
        ("audit_log_forward_endpoint", ""),
        ("banner_text", text),
        ("banner_type", "warning"),
    ];
    let p = w.submit("/admin/config", "/admin/config", &fields).await;
    p.has("Saved.");
    // The stored document keeps the Markdown as written (Harbor's portal renders it).
    let cfg = ok_json(&s, "/api/v2.0/configurations", &admin()).await;
    let b: Value = serde_json::from_str(cfg["banner_message"]["value"].as_str().unwrap()).unwrap();
    assert_eq!(b["message"], text);
    let mut anon = Web::new(&s);
    for page in [w.page("/projects").await, anon.page("/login").await] {
        let div = page.body.find(r#"class="banner warning""#).expect("banner");
        // The text (the `data-banner` attribute keeps the message only to remember a close).
        let at = div + page.body[div..].find("<span>").unwrap();
        let banner = &page.body[at..at + page.body[at..].find("</div>").unwrap()];
        for want in [
            "<em>Maintenance</em>",
            "<code>22:00</code>",
            r#"<a href="https://status.example.com">status</a>"#,
            "&lt;script&gt;alert(1)&lt;/script&gt;",
            r##"<a href="#">click</a>"##,
            "&lt;img src=x onerror=alert(3)&gt;",
        ] {
            assert!(banner.contains(want), "{want} not in {banner}");
        }
        assert!(!banner.contains("<script") && !banner.contains("<img") && !banner.contains("javascript:"), "{banner}");
        assert!(!banner.contains("<p>"), "{banner}");
    }
    // The form shows the text as written, for editing.
    w.page("/admin/config").await.has("[status](https://status.example.com)");
}
