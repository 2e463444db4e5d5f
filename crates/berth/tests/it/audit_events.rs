//! Harbor 2.13's audit event types through the real binary: `/auditlog-exts/events`, the
//! extended audit log listings, the audit log purge's `include_event_types` and the
//! `audit_log_disable` setting (with Harbor's `update_configure` alias), as an
//! administrator and as callers who are refused.

use reqwest::Method;
use serde_json::{Value, json};

use crate::jobs::{append_audit, now, wait_for};
use crate::support::*;

const API: &str = "/api/v2.0";

#[tokio::test]
async fn auditlog_exts_events_and_listings_for_admins_refused_otherwise() {
    let s = Server::start_harbor();
    create_user(&s, "owner").await;
    create_user(&s, "other").await;
    let pid = create_project(&s, &user("owner"), "evts", false).await;

    // The event types: Berth's list, each `<operation>_<resource type>`.
    let events = ok_json(&s, &format!("{API}/auditlog-exts/events"), &admin()).await;
    let got: Vec<&str> = events.as_array().unwrap().iter().map(|e| e["event_type"].as_str().unwrap()).collect();
    assert_eq!(got, berth_core::audit::event_types().collect::<Vec<_>>());
    for e in
        ["create_artifact", "delete_artifact", "pull_artifact", "create_project", "delete_repository", "create_user"]
    {
        assert!(got.contains(&e), "{e} in {got:?}");
    }
    for who in [user("owner"), user("other")] {
        let r = get(&s, &format!("{API}/auditlog-exts/events"), &who).await;
        expect_error(r, 403, "FORBIDDEN").await;
    }
    let r = client().get(s.url(&format!("{API}/auditlog-exts/events"))).send().await.unwrap();
    assert_eq!(r.status(), 401);

    // The whole log in the extended shape, filtered and paged as `/audit-logs`.
    let r = get(&s, &format!("{API}/auditlog-exts?q=resource_type%3Duser&page=1&page_size=1"), &admin()).await;
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "x-total-count"), "2", "two users created");
    assert!(header(&r, "link").contains("rel=\"next\""));
    let first = &body_json(r).await[0];
    assert_eq!((first["operation"].as_str(), first["resource"].as_str()), (Some("create"), Some("other")));
    assert_eq!(first["operation_result"], true);
    assert_eq!(first["operation_description"], "create user other");
    assert!(first["op_time"].as_str().unwrap().ends_with('Z') && first["id"].as_i64().is_some());
    let r = get(&s, &format!("{API}/auditlog-exts?q=colour%3Dred"), &admin()).await;
    expect_error(r, 400, "BAD_REQUEST").await;
    for who in [user("owner"), user("other")] {
        expect_error(get(&s, &format!("{API}/auditlog-exts"), &who).await, 403, "FORBIDDEN").await;
    }

    // A project's, by name or (Harbor's rule) by id; its admin may list it, others not.
    for path in [format!("{API}/projects/evts/auditlog-exts"), format!("{API}/projects/{pid}/auditlog-exts")] {
        for who in [admin(), user("owner")] {
            let v = ok_json(&s, &path, &who).await;
            let created = v.as_array().unwrap().iter().find(|e| e["resource_type"] == "project").cloned();
            let created = created.unwrap_or_else(|| panic!("{path}: {v}"));
            assert_eq!((created["operation"].as_str(), created["username"].as_str()), (Some("create"), Some("owner")));
            assert!(v.as_array().unwrap().iter().all(|e| e["resource"] != "other"), "only the project's entries");
        }
        expect_error(get(&s, &path, &user("other")).await, 403, "FORBIDDEN").await;
    }
}

/// Old entries of several event types, written beside the server.
async fn seed(s: &Server) {
    let old = now() - 48 * 3600;
    append_audit(
        s,
        &[
            ("delete", "artifact", "old/a@1", old),
            ("delete", "artifact", "old/a@2", old),
            ("create", "artifact", "old/a:1", old),
            ("pull", "artifact", "old/a:1", old),
            ("delete", "user", "gone-user", old),
            ("create", "user", "old-user", old),
        ],
    )
    .await;
}

async fn resources(s: &Server) -> Vec<String> {
    let v = ok_json(s, &format!("{API}/audit-logs?page_size=100"), &admin()).await;
    v.as_array().unwrap().iter().map(|e| e["resource"].as_str().unwrap().to_owned()).collect()
}

async fn purge(s: &Server, who: &Who, params: Value) -> reqwest::Response {
    let body = json!({"schedule": {"type": "Manual"}, "parameters": params});
    call(s, Method::POST, &format!("{API}/system/purgeaudit/schedule"), who, Some(&body)).await
}

/// Runs a purge as admin to its end; returns its log.
async fn purge_log(s: &Server, params: Value) -> String {
    let r = purge(s, &admin(), params).await;
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
    let id = location_id(&r);
    let path = format!("{API}/system/purgeaudit/{id}");
    wait_for(&path, std::time::Duration::from_secs(20), async || {
        let v = ok_json(s, &path, &admin()).await;
        (v["job_status"] == "Success").then_some(())
    })
    .await;
    get(s, &format!("{path}/log"), &admin()).await.text().await.unwrap()
}

#[tokio::test]
async fn audit_log_purge_by_event_type_takes_only_those_and_dry_run_nothing() {
    let s = Server::start_harbor();
    create_user(&s, "bob").await;
    seed(&s).await;
    let types = "delete_artifact,create_user";

    // Not an administrator: refused, nothing ran.
    expect_error(
        purge(&s, &user("bob"), json!({"audit_retention_hour": 24, "include_event_types": types})).await,
        403,
        "FORBIDDEN",
    )
    .await;

    let before = resources(&s).await;
    let log = purge_log(&s, json!({"audit_retention_hour": 24, "include_event_types": types, "dry_run": true})).await;
    assert!(log.contains("dry run: 3 entries would be purged"), "{log}");
    assert!(log.contains("event types [delete_artifact, create_user]"), "{log}");
    let after = resources(&s).await;
    assert!(before.iter().all(|r| after.contains(r)), "a dry run deletes nothing");

    let log = purge_log(&s, json!({"audit_retention_hour": "24", "include_event_types": types})).await;
    assert!(log.contains("purged 3 audit log entries"), "{log}");
    let left = resources(&s).await;
    for gone in ["old/a@1", "old/a@2", "old-user"] {
        assert!(!left.contains(&gone.to_owned()), "{gone} purged: {left:?}");
    }
    for kept in ["old/a:1", "gone-user"] {
        assert_eq!(
            left.iter().filter(|r| *r == kept).count(),
            if kept == "old/a:1" { 2 } else { 1 },
            "{kept}: {left:?}"
        );
    }
    // The young entries (the users created, the purges started) stay.
    assert!(left.contains(&"bob".to_owned()), "{left:?}");

    // Harbor's older parameter still works beside it: pulls by operation.
    let log = purge_log(&s, json!({"audit_retention_hour": 24, "include_operations": "pull"})).await;
    assert!(log.contains("purged 1 audit log entries"), "{log}");
    assert_eq!(resources(&s).await.iter().filter(|r| *r == "old/a:1").count(), 1, "the creation stays");
}

#[tokio::test]
async fn unknown_event_types_are_refused_naming_the_field() {
    let s = Server::start_harbor();
    let path = format!("{API}/system/purgeaudit/schedule");
    for params in [
        json!({"audit_retention_hour": 1, "include_event_types": "create_artifact,explode_artifact"}),
        json!({"audit_retention_hour": 1, "include_event_types": "create"}),
        json!({"audit_retention_hour": 1, "include_event_types": ["create_artifact"]}),
    ] {
        for (method, schedule) in [(Method::POST, json!({"type": "Manual"})), (Method::PUT, json!({"type": "Daily"}))] {
            let body = json!({"schedule": schedule, "parameters": params});
            let msg =
                expect_error(call(&s, method.clone(), &path, &admin(), Some(&body)).await, 400, "BAD_REQUEST").await;
            assert!(msg.contains("parameters.include_event_types"), "{method} {params}: {msg}");
        }
    }
    assert!(ok_json(&s, &format!("{API}/system/purgeaudit"), &admin()).await.as_array().unwrap().is_empty());
    // A schedule with event types keeps them as sent.
    let body = json!({"schedule": {"type": "Daily"}, "parameters": {"audit_retention_hour": 5, "include_event_types": "pull_artifact"}});
    assert_eq!(status(&s, Method::PUT, &path, &admin(), Some(&body)).await, 200);
    let got = ok_json(&s, &path, &admin()).await;
    let params: Value = serde_json::from_str(got["job_parameters"].as_str().unwrap()).unwrap();
    assert_eq!(
        (params["include_event_types"].as_str(), params["include_operations"].as_str()),
        (Some("pull_artifact"), Some(""))
    );
}

/// Every entry of the system's audit log, in both listings, as `<operation>_<resource
/// type> <resource>`; the two must agree.
async fn recorded(s: &Server) -> Vec<String> {
    let mut both = Vec::new();
    for path in [format!("{API}/audit-logs?page_size=100"), format!("{API}/auditlog-exts?page_size=100")] {
        let v = ok_json(s, &path, &admin()).await;
        let entries: Vec<String> = v
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                format!(
                    "{}_{} {}",
                    e["operation"].as_str().unwrap(),
                    e["resource_type"].as_str().unwrap(),
                    e["resource"].as_str().unwrap()
                )
            })
            .collect();
        both.push(entries);
    }
    assert_eq!(both[0], both[1], "/audit-logs and /auditlog-exts list the same entries");
    both.remove(0)
}

/// `audit_log_disable`: the listed event types are recorded nowhere, the others as before;
/// the list is checked (an unknown type is a 400 naming the setting and the type),
/// canonical, and takes Harbor's `update_configure`. A change of the settings is itself
/// skipped while `update_configuration` is disabled, as Harbor skips every disabled type.
#[tokio::test]
async fn disabled_event_types_are_recorded_nowhere() {
    let s = Server::start_harbor();
    let config = format!("{API}/configurations");
    let put = async |body: Value| call(&s, Method::PUT, &config, &admin(), Some(&body)).await;

    for (list, bad) in [("create_project,explode_artifact", "explode_artifact"), ("create project", "create project")] {
        let m = expect_error(put(json!({"audit_log_disable": list})).await, 400, "BAD_REQUEST").await;
        assert!(m.contains("audit_log_disable") && m.contains(bad), "{list}: {m}");
    }
    let m = expect_error(put(json!({"audit_log_disable": ["create_project"]})).await, 400, "BAD_REQUEST").await;
    assert!(m.contains("audit_log_disable"), "{m}");
    assert_eq!(ok_json(&s, &config, &admin()).await["audit_log_disable"], json!({"value": "", "editable": true}));

    // Spaces, repetitions and Harbor's alias; stored and shown in the canonical form.
    let r = put(json!({"audit_log_disable": " update_configure, create_project ,create_project"})).await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let shown = ok_json(&s, &config, &admin()).await["audit_log_disable"]["value"].clone();
    assert_eq!(shown, "update_configuration,create_project", "in the events list's order");

    create_project(&s, &admin(), "quiet", false).await;
    create_user(&s, "loud").await;
    let r = put(json!({"banner_message": "unrecorded"})).await;
    assert_eq!(r.status(), 200);
    // Management changes are recorded before the answer: the listing is complete now.
    let log = recorded(&s).await;
    assert!(log.contains(&"create_user loud".to_owned()), "an enabled type is recorded: {log:?}");
    assert!(!log.iter().any(|e| e.starts_with("create_project ")), "create_project is disabled: {log:?}");
    assert!(!log.iter().any(|e| e.starts_with("update_configuration ")), "update_configuration too: {log:?}");

    // Enabled again: the change itself is recorded (the settings in force once it is
    // made decide), and so are new projects.
    let r = put(json!({"audit_log_disable": "delete_user"})).await;
    assert_eq!(r.status(), 200);
    create_project(&s, &admin(), "heard", false).await;
    let log = recorded(&s).await;
    assert!(log.contains(&"update_configuration audit_log_disable".to_owned()), "{log:?}");
    assert!(log.contains(&"create_project heard".to_owned()), "{log:?}");
    assert!(!log.contains(&"create_project quiet".to_owned()), "what was not recorded stays unrecorded");
    // Harbor's spelling finds them in a filter too.
    let v = ok_json(&s, &format!("{API}/auditlog-exts?q=resource_type%3Dconfigure"), &admin()).await;
    assert_eq!(v.as_array().unwrap().len(), 1, "{v}");
    assert_eq!(v[0]["resource_type"], "configuration");
}

/// The purge takes Harbor's `update_configure` as Berth's `update_configuration`, and
/// keeps the canonical name in its parameters.
#[tokio::test]
async fn purge_takes_harbors_update_configure() {
    let s = Server::start_harbor();
    let log =
        purge_log(&s, json!({"audit_retention_hour": 24, "include_event_types": "update_configure", "dry_run": true}))
            .await;
    assert!(log.contains("event types [update_configuration]"), "{log}");
    let path = format!("{API}/system/purgeaudit/schedule");
    let body = json!({"schedule": {"type": "Daily"},
        "parameters": {"audit_retention_hour": 5, "include_event_types": "update_configure, pull_artifact"}});
    assert_eq!(status(&s, Method::PUT, &path, &admin(), Some(&body)).await, 200);
    let got = ok_json(&s, &path, &admin()).await;
    let params: Value = serde_json::from_str(got["job_parameters"].as_str().unwrap()).unwrap();
    assert_eq!(params["include_event_types"], "pull_artifact,update_configuration");
}
