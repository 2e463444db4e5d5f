//! Tag retention against the real binary: Harbor's policy API with refusals naming the
//! field, dry runs that change nothing, runs that keep exactly what Harbor's rules keep
//! (the union over rules; immutable tags never deleted), tasks per repository with
//! retained/total counts and logs, scheduled runs; on SQLite and PostgreSQL.

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{Value, json};

use crate::ha_postgres::{PgDb, pg_available, start_instance};
use crate::support::*;
use crate::webhooks::{Received, Receiver};

const API: &str = "/api/v2.0";

fn sel(decoration: &str, pattern: &str, extras: &str) -> Value {
    json!({"kind": "doublestar", "decoration": decoration, "pattern": pattern, "extras": extras})
}

fn rule(template: &str, n: Option<i64>, tags: Value, repos: &str) -> Value {
    let params = match n {
        Some(n) => json!({ template: n }),
        None => json!({}),
    };
    json!({"action": "retain", "template": template, "params": params, "tag_selectors": [tags],
           "scope_selectors": {"repository": [sel("repoMatches", repos, "")]}})
}

fn policy(project_id: i64, rules: Vec<Value>, cron: &str) -> Value {
    json!({"algorithm": "or", "rules": rules, "trigger": {"kind": "Schedule", "settings": {"cron": cron}},
           "scope": {"level": "project", "ref": project_id}})
}

/// The tags of every artifact of `repo` (a project's `app`), by digest.
async fn artifacts(s: &Server, project: &str, repo: &str) -> Vec<(String, Vec<String>)> {
    let path = format!("{API}/projects/{project}/repositories/{repo}/artifacts?with_tag=true&page_size=100");
    let list = ok_json(s, &path, &admin()).await;
    let mut out: Vec<(String, Vec<String>)> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            let tags = a["tags"].as_array().map(|t| t.iter().map(|t| t["name"].as_str().unwrap().to_owned()).collect());
            (a["digest"].as_str().unwrap().to_owned(), tags.unwrap_or_default())
        })
        .collect();
    out.sort();
    out
}

/// Waits for an execution to end; returns it.
async fn finished(s: &Server, policy: i64, exec: i64) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let list = ok_json(s, &format!("{API}/retentions/{policy}/executions"), &admin()).await;
        if let Some(e) = list.as_array().unwrap().iter().find(|e| e["id"] == exec)
            && !matches!(e["status"].as_str(), Some("Running" | "Pending"))
        {
            return e.clone();
        }
        assert!(Instant::now() < deadline, "execution {exec} did not end: {list}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn run(s: &Server, policy: i64, dry_run: bool) -> Value {
    let path = format!("{API}/retentions/{policy}/executions");
    let r = call(s, Method::POST, &path, &admin(), Some(&json!({"dry_run": dry_run}))).await;
    assert_eq!(r.status(), 201, "{:?}", r.text().await);
    let exec = location_id(&r);
    let e = finished(s, policy, exec).await;
    assert_eq!(e["status"], "Success", "{e}");
    assert_eq!(e["dry_run"], dry_run);
    e
}

/// Harbor's documented examples, in one repository (oldest first):
/// A `v1`, B `v2`, C `dev-1`, D `v3`+`latest`, E untagged; and `other` with one image.
/// Rules: the 2 most recently pushed artifacts with a `v*` tag (untagged excluded), and
/// always every `dev-*` tag, in `app` only. Retained: D, B (rule 1) ∪ C (rule 2); A is
/// kept only because `v1` is immutable; E goes. `other` is covered by no rule: untouched.
async fn scenario(s: &Server) {
    let project_id = create_project(s, &admin(), "ret", false).await;
    let mut digests = Vec::new();
    for (i, tag) in ["v1", "v2", "dev-1", "v3", "tmp"].iter().enumerate() {
        digests.push(push_small_image_as(s, &admin(), "ret/app", tag, &format!("retention {i}")).await);
        // Push times are in seconds: distinct ones make "most recent" unambiguous.
        tokio::time::sleep(Duration::from_millis(1100)).await;
    }
    let tag_latest = format!("{API}/projects/ret/repositories/app/artifacts/{}/tags", digests[3]);
    assert_eq!(call(s, Method::POST, &tag_latest, &admin(), Some(&json!({"name": "latest"}))).await.status(), 201);
    let untag = format!("{API}/projects/ret/repositories/app/artifacts/{}/tags/tmp", digests[4]);
    assert_eq!(call(s, Method::DELETE, &untag, &admin(), None).await.status(), 200);
    push_small_image_as(s, &admin(), "ret/other", "old", "retention other").await;
    let immutable = json!({"tag_selectors": [sel("matches", "v1", "")],
                           "scope_selectors": {"repository": [sel("repoMatches", "**", "")]}});
    let r = call(s, Method::POST, &format!("{API}/projects/ret/immutabletagrules"), &admin(), Some(&immutable)).await;
    assert_eq!(r.status(), 201);

    // Bad input: 400 naming the field; nothing created.
    let good_rules = vec![
        rule("latestPushedK", Some(2), sel("matches", "v*", r#"{"untagged":false}"#), "app"),
        rule("always", None, sel("matches", "dev-*", r#"{"untagged":false}"#), "app"),
    ];
    for (body, field) in [
        (policy(project_id, vec![rule("keepSome", Some(1), sel("matches", "**", ""), "**")], ""), "rules[0].template"),
        (
            policy(project_id, vec![rule("always", None, sel("matches", "[", ""), "**")], ""),
            "rules[0].tag_selectors[0].pattern",
        ),
        (
            policy(project_id, vec![rule("always", None, sel("matches", "**", ""), "{")], ""),
            "rules[0].scope_selectors.repository[0].pattern",
        ),
        (policy(project_id, good_rules.clone(), "0 0 * * *"), "trigger.settings.cron"),
        (
            policy(project_id, vec![rule("latestPushedK", None, sel("matches", "**", ""), "**")], ""),
            "rules[0].params.latestPushedK",
        ),
        (json!({"rules": [], "scope": {"level": "project", "ref": project_id}, "color": "red"}), "color"),
    ] {
        let r = call(s, Method::POST, &format!("{API}/retentions"), &admin(), Some(&body)).await;
        let msg = expect_error(r, 400, "BAD_REQUEST").await;
        assert!(msg.contains(field), "{field}: {msg}");
    }

    let r = call(
        s,
        Method::POST,
        &format!("{API}/retentions"),
        &admin(),
        Some(&policy(project_id, good_rules.clone(), "")),
    )
    .await;
    assert_eq!(r.status(), 201, "{:?}", r.text().await);
    let id = location_id(&r);
    let p = ok_json(s, &format!("{API}/projects/ret"), &admin()).await;
    assert_eq!(p["metadata"]["retention_id"], id.to_string());
    let got = ok_json(s, &format!("{API}/retentions/{id}"), &admin()).await;
    assert_eq!(got["id"], id);
    assert_eq!(got["rules"].as_array().unwrap().len(), 2);
    // One policy per project.
    let r = call(
        s,
        Method::POST,
        &format!("{API}/retentions"),
        &admin(),
        Some(&policy(project_id, good_rules.clone(), "")),
    )
    .await;
    assert_eq!(r.status(), 409);
    let meta = ok_json(s, &format!("{API}/retentions/metadatas"), &admin()).await;
    assert!(meta["templates"].as_array().unwrap().iter().any(|t| t["rule_template"] == "nDaysSinceLastPull"));

    // A dry run changes nothing but reports what it would do.
    let before = artifacts(s, "ret", "app").await;
    assert_eq!(before.len(), 5);
    let e = run(s, id, true).await;
    assert_eq!(artifacts(s, "ret", "app").await, before, "a dry run deletes nothing");
    let tasks = ok_json(s, &format!("{API}/retentions/{id}/executions/{}/tasks", e["id"]), &admin()).await;
    let tasks = tasks.as_array().unwrap();
    assert_eq!(tasks.len(), 1, "only app is covered: {tasks:?}");
    assert_eq!(tasks[0]["repository"], "ret/app");
    assert_eq!((tasks[0]["total"].as_i64(), tasks[0]["retained"].as_i64()), (Some(5), Some(4)));
    let log = call(
        s,
        Method::GET,
        &format!("{API}/retentions/{id}/executions/{}/tasks/{}", e["id"], tasks[0]["id"]),
        &admin(),
        None,
    )
    .await
    .text()
    .await
    .unwrap();
    assert!(log.contains("[dry run] delete ret/app@") && log.contains(&digests[4]), "{log}");
    assert!(log.contains("v1 is immutable"), "{log}");

    // Deletes reach webhooks and the audit log like a user's, as harbor-jobservice.
    let rx = Receiver::start().await;
    let hook = json!({"name": "ret", "enabled": true, "event_types": ["DELETE_ARTIFACT", "TAG_RETENTION"],
                      "targets": [{"type": "http", "address": rx.url("/hook")}]});
    let r = call(s, Method::POST, &format!("{API}/projects/ret/webhook/policies"), &admin(), Some(&hook)).await;
    assert_eq!(r.status(), 201, "{:?}", r.text().await);
    // A dry run sends nothing.
    run(s, id, true).await;

    // The real run keeps exactly A (immutable), B, C, D.
    let e = run(s, id, false).await;
    let after: Vec<String> = artifacts(s, "ret", "app").await.into_iter().map(|(d, _)| d).collect();
    let mut expected: Vec<String> = digests[..4].to_vec();
    expected.sort();
    assert_eq!(after, expected);
    assert_eq!(artifacts(s, "ret", "other").await.len(), 1, "a repository no rule covers is untouched");
    let tasks = ok_json(s, &format!("{API}/retentions/{id}/executions/{}/tasks", e["id"]), &admin()).await;
    assert_eq!((tasks[0]["total"].as_i64(), tasks[0]["retained"].as_i64()), (Some(5), Some(4)));
    let list = ok_json(s, &format!("{API}/retentions/{id}/executions"), &admin()).await;
    assert_eq!(list.as_array().unwrap().len(), 3);
    let of_type = |got: &[Received], t: &str| -> Vec<Value> {
        got.iter().filter(|r| r.body["type"] == t).map(|r| r.body.clone()).collect()
    };
    let got = rx
        .wait_for(Duration::from_secs(30), "DELETE_ARTIFACT and TAG_RETENTION", |g| {
            !of_type(g, "DELETE_ARTIFACT").is_empty() && !of_type(g, "TAG_RETENTION").is_empty()
        })
        .await;
    let deletes = of_type(&got, "DELETE_ARTIFACT");
    assert_eq!(deletes.len(), 1, "{deletes:?}");
    assert_eq!(deletes[0]["operator"], "harbor-jobservice", "{}", deletes[0]);
    assert_eq!(deletes[0]["event_data"]["resources"][0]["digest"], digests[4].as_str(), "{}", deletes[0]);
    assert_eq!(deletes[0]["event_data"]["repository"]["repo_full_name"], "ret/app");
    let tr = of_type(&got, "TAG_RETENTION");
    assert_eq!(tr.len(), 1, "one for the real run's one repository, none for the dry runs: {tr:?}");
    assert_eq!(tr[0]["operator"], "MANUAL", "{}", tr[0]);
    let data = &tr[0]["event_data"]["retention"];
    assert_eq!((data["total"].as_i64(), data["retained"].as_i64()), (Some(5), Some(4)), "{data}");
    assert_eq!((data["project_name"].as_str(), data["retention_policy_id"].as_i64()), (Some("ret"), Some(id)));
    assert_eq!(data["result"], "SUCCESS");
    assert_eq!(data["retention_rule"].as_array().unwrap().len(), 2, "{data}");
    assert_eq!(data["retention_rule"][0]["template"], "latestPushedK");
    assert_eq!(data["deleted_artifact"], json!([{"type": "image", "status": "SUCCESS", "name_tag": ""}]), "{data}");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let logs = ok_json(s, &format!("{API}/audit-logs?q=operation=delete&page_size=100"), &admin()).await;
        let resource = format!("ret/app@{}", digests[4]);
        if let Some(entry) = logs.as_array().unwrap().iter().find(|l| l["resource"] == resource.as_str()) {
            assert_eq!(entry["username"], "harbor-jobservice", "{entry}");
            assert_eq!(entry["resource_type"], "artifact", "{entry}");
            break;
        }
        assert!(Instant::now() < deadline, "no audit entry for {resource}: {logs}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // Widening the rules to every repository deletes `other`'s only artifact: nothing matches.
    let wider = policy(
        project_id,
        vec![rule("latestPushedK", Some(1), sel("matches", "v*", r#"{"untagged":false}"#), "**")],
        "",
    );
    assert_eq!(call(s, Method::PUT, &format!("{API}/retentions/{id}"), &admin(), Some(&wider)).await.status(), 200);
    run(s, id, false).await;
    assert!(artifacts(s, "ret", "other").await.is_empty());
    // Two repositories deleted something: one TAG_RETENTION each, as Harbor sends them.
    let got = rx
        .wait_for(Duration::from_secs(30), "a TAG_RETENTION per repository", |g| of_type(g, "TAG_RETENTION").len() >= 3)
        .await;
    let mut named: Vec<String> = of_type(&got, "TAG_RETENTION")[1..]
        .iter()
        .flat_map(|e| e["event_data"]["retention"]["deleted_artifact"].as_array().unwrap().clone())
        .map(|a| a["name_tag"].as_str().unwrap().to_owned())
        .collect();
    named.sort();
    assert_eq!(named, ["app:dev-1", "app:v2", "other:old"], "{got:#?}");
    let left: Vec<Vec<String>> = artifacts(s, "ret", "app").await.into_iter().map(|(_, t)| t).collect();
    assert!(left.iter().any(|t| t.contains(&"v3".to_string())), "the newest v* stays: {left:?}");
    assert!(left.iter().any(|t| t == &["v1".to_string()]), "the immutable v1 stays: {left:?}");
    assert_eq!(left.len(), 2, "{left:?}");

    // Abort: with the queue paused the run cannot start; stopping it ends it as Stopped
    // and deletes nothing.
    let queue = format!("{API}/jobservice/queues/RETENTION");
    let pause = call(s, Method::PUT, &queue, &admin(), Some(&json!({"action": "pause"}))).await;
    assert_eq!(pause.status(), 200, "{:?}", pause.text().await);
    let before = artifacts(s, "ret", "app").await;
    let execs = format!("{API}/retentions/{id}/executions");
    let r = call(s, Method::POST, &execs, &admin(), Some(&json!({"dry_run": false}))).await;
    assert_eq!(r.status(), 201);
    let exec = location_id(&r);
    // Bad input on the execution endpoints: 400 naming the field.
    for (method, path, body, field) in [
        (Method::PATCH, format!("{execs}/{exec}"), json!({"action": "pause"}), "action"),
        (Method::PATCH, format!("{execs}/abc"), json!({"action": "stop"}), "eid"),
        (Method::POST, execs.clone(), json!({"dry_run": "yes"}), "dry_run"),
        (Method::POST, format!("{API}/retentions/abc/executions"), json!({}), "id"),
    ] {
        let msg = expect_error(call(s, method, &path, &admin(), Some(&body)).await, 400, "BAD_REQUEST").await;
        assert!(msg.contains(field), "{path} {body}: {field} in {msg}");
    }
    let r = call(s, Method::PATCH, &format!("{execs}/{exec}"), &admin(), Some(&json!({"action": "stop"}))).await;
    assert_eq!(r.status(), 200, "{:?}", r.text().await);
    assert_eq!(finished(s, id, exec).await["status"], "Stopped");
    let resume = call(s, Method::PUT, &queue, &admin(), Some(&json!({"action": "resume"}))).await;
    assert_eq!(resume.status(), 200);
    assert_eq!(artifacts(s, "ret", "app").await, before, "a stopped run deleted nothing");

    // A schedule runs it by itself; removing the cron removes the schedule.
    let every = policy(project_id, vec![rule("always", None, sel("matches", "**", ""), "**")], "*/2 * * * * *");
    assert_eq!(call(s, Method::PUT, &format!("{API}/retentions/{id}"), &admin(), Some(&every)).await.status(), 200);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let list = ok_json(s, &format!("{API}/retentions/{id}/executions"), &admin()).await;
        if list.as_array().unwrap().iter().any(|e| e["trigger"] == "SCHEDULE") {
            break;
        }
        assert!(Instant::now() < deadline, "no scheduled run: {list}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let manual = policy(project_id, vec![rule("always", None, sel("matches", "**", ""), "**")], "");
    assert_eq!(call(s, Method::PUT, &format!("{API}/retentions/{id}"), &admin(), Some(&manual)).await.status(), 200);
    let scheds = ok_json(s, &format!("{API}/schedules"), &admin()).await;
    assert!(!scheds.to_string().contains("RETENTION"), "{scheds}");

    assert_eq!(call(s, Method::DELETE, &format!("{API}/retentions/{id}"), &admin(), None).await.status(), 200);
    assert_eq!(get(s, &format!("{API}/retentions/{id}"), &admin()).await.status(), 404);
    let p = ok_json(s, &format!("{API}/projects/ret"), &admin()).await;
    assert!(p["metadata"].get("retention_id").is_none(), "{p}");
}

#[tokio::test]
async fn retention_on_sqlite() {
    let s = Server::start_harbor();
    scenario(&s).await;
}

#[tokio::test]
async fn retention_on_postgres() {
    if !pg_available() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let db = PgDb::create();
    let s = start_instance(&tmp.path().join("a"), &db.url(), &tmp.path().join("storage"));
    scenario(&s).await;
}

/// A deleted project takes its retention policy, the policy's schedule and its webhook
/// policies with it.
#[tokio::test]
async fn deleting_a_project_removes_its_retention_and_webhook_policies() {
    let s = Server::start_harbor();
    let project_id = create_project(&s, &admin(), "gone", false).await;
    let body = policy(project_id, vec![rule("always", None, sel("matches", "**", ""), "**")], "0 0 3 * * *");
    let r = call(&s, Method::POST, &format!("{API}/retentions"), &admin(), Some(&body)).await;
    assert_eq!(r.status(), 201, "{:?}", r.text().await);
    let id = location_id(&r);
    let hook = json!({"name": "h", "enabled": true, "event_types": ["PUSH_ARTIFACT"],
                      "targets": [{"type": "http", "address": "http://127.0.0.1:9/hook"}]});
    let r = call(&s, Method::POST, &format!("{API}/projects/gone/webhook/policies"), &admin(), Some(&hook)).await;
    assert_eq!(r.status(), 201, "{:?}", r.text().await);
    let hook_id = location_id(&r);
    assert!(ok_json(&s, &format!("{API}/schedules"), &admin()).await.to_string().contains("RETENTION"));

    assert_eq!(call(&s, Method::DELETE, &format!("{API}/projects/gone"), &admin(), None).await.status(), 200);
    assert_eq!(get(&s, &format!("{API}/retentions/{id}"), &admin()).await.status(), 404);
    let scheds = ok_json(&s, &format!("{API}/schedules"), &admin()).await;
    assert!(!scheds.to_string().contains("RETENTION"), "{scheds}");
    // The webhook policy's row is gone too (the API cannot name a deleted project's).
    use berth_core::store::webhooks::WebhookStore;
    let store = berth_store_sqlite::SqliteStore::open(&s.data_dir.join("berth.db")).unwrap();
    assert_eq!(store.webhook_policy(hook_id).await.unwrap(), None, "webhook policy {hook_id} left behind");
}
