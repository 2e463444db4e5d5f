//! Webhooks against the real binary: policies over Harbor's API, deliveries received by
//! a real HTTP server on 127.0.0.1 that the test runs (and takes down), executions,
//! tasks and logs, refusals naming the field; on SQLite and PostgreSQL.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, StatusCode};
use reqwest::Method;
use serde_json::{Value, json};

use crate::ha_postgres::{PgDb, pg_available, start_instance_with};
use crate::support::*;

const API: &str = "/api/v2.0";

/// One request the receiver got.
#[derive(Clone, Debug)]
pub(crate) struct Received {
    pub path: String,
    pub headers: HeaderMap,
    pub body: Value,
}

/// A webhook endpoint: records what it accepts; while `down`, answers 503 and counts.
#[derive(Clone)]
pub(crate) struct Receiver {
    addr: String,
    got: Arc<Mutex<Vec<Received>>>,
    down: Arc<AtomicBool>,
    refused: Arc<AtomicUsize>,
}

impl Receiver {
    pub(crate) async fn start() -> Receiver {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let r = Receiver {
            addr: listener.local_addr().unwrap().to_string(),
            got: Arc::default(),
            down: Arc::default(),
            refused: Arc::default(),
        };
        let state = r.clone();
        let app = axum::Router::new().fallback(move |uri: axum::http::Uri, headers: HeaderMap, body: String| {
            let state = state.clone();
            async move {
                if state.down.load(Ordering::SeqCst) {
                    state.refused.fetch_add(1, Ordering::SeqCst);
                    return StatusCode::SERVICE_UNAVAILABLE;
                }
                let body = serde_json::from_str(&body).unwrap_or(Value::String(body));
                state.got.lock().unwrap().push(Received { path: uri.path().to_owned(), headers, body });
                StatusCode::OK
            }
        });
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        r
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub(crate) fn got(&self) -> Vec<Received> {
        self.got.lock().unwrap().clone()
    }

    /// Waits (up to `limit`) until `f` holds for what was received.
    pub(crate) async fn wait_for(&self, limit: Duration, what: &str, f: impl Fn(&[Received]) -> bool) -> Vec<Received> {
        let deadline = Instant::now() + limit;
        loop {
            let got = self.got();
            if f(&got) {
                return got;
            }
            assert!(Instant::now() < deadline, "{what}: not within {limit:?}; received {got:#?}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

fn policy(name: &str, events: &[&str], targets: Value) -> Value {
    json!({"name": name, "description": "test", "enabled": true, "event_types": events, "targets": targets})
}

async fn create_policy(s: &Server, project: &str, body: &Value) -> i64 {
    let r = call(s, Method::POST, &format!("{API}/projects/{project}/webhook/policies"), &admin(), Some(body)).await;
    assert_eq!(r.status(), 201, "{:?}", r.text().await);
    location_id(&r)
}

fn pushes(got: &[Received], path: &str) -> Vec<Received> {
    got.iter().filter(|r| r.path == path).cloned().collect()
}

#[tokio::test]
async fn policy_crud_and_refusals_naming_the_field() {
    let s = Server::start_harbor();
    create_project(&s, &admin(), "hooks", false).await;
    let base = format!("{API}/projects/hooks/webhook/policies");
    let target = json!([{"type": "http", "address": "http://127.0.0.1:9/hook", "auth_header": "Bearer x"}]);
    let id = create_policy(&s, "hooks", &policy("p1", &["PUSH_ARTIFACT", "QUOTA_EXCEED"], target.clone())).await;

    let got = ok_json(&s, &format!("{base}/{id}"), &admin()).await;
    assert_eq!(got["name"], "p1");
    assert_eq!(got["creator"], "admin");
    assert_eq!(got["enabled"], true);
    assert_eq!(got["event_types"], json!(["PUSH_ARTIFACT", "QUOTA_EXCEED"]));
    assert_eq!(got["targets"][0]["payload_format"], "Default", "the default format is filled in");
    assert_eq!(got["targets"][0]["auth_header"], "Bearer x");
    let list = ok_json(&s, &base, &admin()).await;
    assert_eq!(list.as_array().unwrap().len(), 1);

    // A name is unique in its project.
    let r = call(&s, Method::POST, &base, &admin(), Some(&policy("p1", &["PUSH_ARTIFACT"], target.clone()))).await;
    assert_eq!(r.status(), 409);

    let mut changed = got.clone();
    changed["enabled"] = json!(false);
    changed["event_types"] = json!(["PULL_ARTIFACT"]);
    changed["targets"] = json!([{"type": "slack", "address": "https://hooks.example/x"}]);
    assert_eq!(status(&s, Method::PUT, &format!("{base}/{id}"), &admin(), Some(&changed)).await, 200);
    let got = ok_json(&s, &format!("{base}/{id}"), &admin()).await;
    assert_eq!((got["enabled"].as_bool(), got["targets"][0]["type"].as_str()), (Some(false), Some("slack")));

    let events = ok_json(&s, &format!("{API}/projects/hooks/webhook/events"), &admin()).await;
    let types: Vec<&str> = events["event_type"].as_array().unwrap().iter().filter_map(Value::as_str).collect();
    for t in ["PUSH_ARTIFACT", "PULL_ARTIFACT", "DELETE_ARTIFACT", "QUOTA_EXCEED", "TAG_RETENTION", "REPLICATION"] {
        assert!(types.contains(&t), "{t} in {events}");
    }
    assert_eq!(events["notify_type"], json!(["http", "slack"]));

    for (body, field) in [
        (policy("b", &["PUSH_ARTIFACT", "NOT_AN_EVENT"], target.clone()), "event_types[1]"),
        (policy("b", &["PUSH_ARTIFACT"], json!([{"type": "http", "address": "not a url"}])), "targets[0].address"),
        (policy("b", &["PUSH_ARTIFACT"], json!([{"type": "email", "address": "http://x/"}])), "targets[0].type"),
        (
            policy("b", &["PUSH_ARTIFACT"], json!([{"type": "http", "address": "http://x/", "payload_format": "Raw"}])),
            "targets[0].payload_format",
        ),
        (policy("", &["PUSH_ARTIFACT"], target.clone()), "name"),
        (policy("b", &["PUSH_ARTIFACT"], json!([])), "targets"),
    ] {
        let r = call(&s, Method::POST, &base, &admin(), Some(&body)).await;
        let msg = expect_error(r, 400, "BAD_REQUEST").await;
        assert!(msg.contains(field), "{field} named in {msg:?}");
    }
    let r = call(&s, Method::POST, &base, &admin(), Some(&json!({"name": "b", "bogus": 1}))).await;
    assert!(expect_error(r, 400, "BAD_REQUEST").await.contains("bogus"));
    let r = get(&s, &format!("{base}/abc"), &admin()).await;
    assert!(expect_error(r, 400, "BAD_REQUEST").await.contains("webhook_policy_id"));

    assert_eq!(status(&s, Method::DELETE, &format!("{base}/{id}"), &admin(), None).await, 200);
    assert_eq!(get(&s, &format!("{base}/{id}"), &admin()).await.status(), 404);
    assert_eq!(status(&s, Method::DELETE, &format!("{base}/{id}"), &admin(), None).await, 404);
}

/// Pushes an image and checks a Default and a CloudEvents delivery arrive, with the
/// auth header and one delivery id, and are visible as an execution with two tasks.
async fn push_delivers_in_both_formats(s: &Server) {
    let rx = Receiver::start().await;
    let pid = create_project(s, &admin(), "deliver", false).await;
    let targets = json!([
        {"type": "http", "address": rx.url("/default"), "auth_header": "Bearer secret-1"},
        {"type": "http", "address": rx.url("/ce"), "payload_format": "CloudEvents"},
    ]);
    let id = create_policy(s, "deliver", &policy("both", &["PUSH_ARTIFACT", "DELETE_ARTIFACT"], targets)).await;
    // A disabled policy and one for other events get nothing.
    let other = json!([{"type": "http", "address": rx.url("/never")}]);
    create_policy(
        s,
        "deliver",
        &json!({"name": "off", "enabled": false, "event_types": ["PUSH_ARTIFACT"], "targets": other}),
    )
    .await;
    create_policy(s, "deliver", &policy("pulls", &["PULL_ARTIFACT"], other)).await;

    let digest = push_small_image_as(s, &admin(), "deliver/app", "v1", "webhook-seed").await;
    let got = rx.wait_for(Duration::from_secs(30), "both deliveries", |g| g.len() >= 2).await;
    let d = &pushes(&got, "/default")[0];
    assert_eq!(d.headers["authorization"], "Bearer secret-1");
    assert_eq!(d.headers["content-type"], "application/json");
    assert_eq!(d.body["type"], "PUSH_ARTIFACT");
    assert_eq!(d.body["operator"], "admin");
    assert!(d.body["occur_at"].as_i64().unwrap() > 1_600_000_000);
    let res = &d.body["event_data"]["resources"][0];
    assert_eq!((res["tag"].as_str(), res["digest"].as_str()), (Some("v1"), Some(digest.as_str())));
    assert!(res["resource_url"].as_str().unwrap().ends_with("/deliver/app:v1"), "{res}");
    let repo = &d.body["event_data"]["repository"];
    assert_eq!((repo["namespace"].as_str(), repo["name"].as_str()), (Some("deliver"), Some("app")));
    assert_eq!(repo["repo_full_name"], "deliver/app");
    assert_eq!(repo["repo_type"], "private");
    assert!(!d.headers["x-berth-delivery-id"].is_empty());

    let c = &pushes(&got, "/ce")[0];
    assert_eq!(c.headers["content-type"], "application/cloudevents+json");
    assert!(c.headers.get("authorization").is_none());
    assert_eq!(c.body["specversion"], "1.0");
    assert_eq!(c.body["type"], "harbor.artifact.pushed");
    assert_eq!(c.body["source"], format!("/projects/{pid}/webhook/policies/{id}"));
    assert_eq!(c.body["id"].as_str().unwrap(), c.headers["x-berth-delivery-id"].to_str().unwrap());
    assert_eq!(c.body["data"]["resources"][0]["digest"], digest.as_str());

    // The execution and its tasks, once both tasks have finished.
    let base = format!("{API}/projects/deliver/webhook/policies/{id}");
    let deadline = Instant::now() + Duration::from_secs(10);
    let exec = loop {
        let execs = ok_json(s, &format!("{base}/executions"), &admin()).await;
        let e = execs[0].clone();
        if e["status"] == "Success" || Instant::now() > deadline {
            break e;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(exec["status"], "Success", "{exec}");
    assert_eq!((exec["vendor_type"].as_str(), exec["vendor_id"].as_i64()), (Some("WEBHOOK"), Some(id)));
    assert_eq!(exec["trigger"], "EVENT");
    assert_eq!(exec["extra_attrs"]["event_type"], "PUSH_ARTIFACT");
    assert_eq!(exec["metrics"]["task_count"], 2);
    let tasks = ok_json(s, &format!("{base}/executions/{}/tasks", exec["id"]), &admin()).await;
    let tasks = tasks.as_array().unwrap();
    assert_eq!(tasks.len(), 2);
    assert!(tasks.iter().all(|t| t["status"] == "Success" && t["run_count"] == 1), "{tasks:?}");
    assert!(tasks.iter().all(|t| t["extra_attrs"].get("auth_header").is_none()), "no credentials shown");
    let log = get(s, &format!("{base}/executions/{}/tasks/{}/log", exec["id"], tasks[0]["id"]), &admin()).await;
    assert_eq!(log.status(), 200);
    let log = log.text().await.unwrap();
    assert!(log.contains("PUSH_ARTIFACT delivery") && log.contains("delivered: 200"), "{log}");
    let last = ok_json(s, &format!("{API}/projects/deliver/webhook/lasttrigger"), &admin()).await;
    let push =
        last.as_array().unwrap().iter().find(|t| t["policy_name"] == "both" && t["event_type"] == "PUSH_ARTIFACT");
    assert!(push.is_some_and(|t| t["last_trigger_time"] != "0001-01-01T00:00:00.000Z"), "{last}");

    // A delete through Harbor's API is delivered too; nothing went to the other policies.
    let r =
        call(s, Method::DELETE, &format!("{API}/projects/deliver/repositories/app/artifacts/{digest}"), &admin(), None)
            .await;
    assert_eq!(r.status(), 200);
    rx.wait_for(Duration::from_secs(30), "delete deliveries", |g| {
        g.iter().filter(|r| r.path == "/default" && r.body["type"] == "DELETE_ARTIFACT").count() == 1
    })
    .await;
    assert!(pushes(&rx.got(), "/never").is_empty(), "disabled and non-matching policies get nothing");
}

#[tokio::test]
async fn a_push_is_delivered_in_default_and_cloudevents_formats() {
    let s = Server::start_harbor();
    push_delivers_in_both_formats(&s).await;
}

#[tokio::test]
async fn on_postgres_a_push_is_delivered_in_default_and_cloudevents_formats() {
    if !pg_available() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let db = PgDb::create();
    let s = start_instance_with(&tmp.path().join("i0"), &db.url(), &tmp.path().join("shared"), &[]);
    push_delivers_in_both_formats(&s).await;
}

#[tokio::test]
async fn an_endpoint_that_was_down_gets_every_event_soon_after_it_is_back() {
    let tmp = tempfile::tempdir().unwrap();
    let cap = 2;
    let s = Server::spawn(
        &tmp.path().join("data"),
        &[("BERTH_AUTH_MODE", "harbor"), ("BERTH_JOBS_WEBHOOK_RETRY_CAP_SECS", "2")],
    );
    let rx = Receiver::start().await;
    rx.down.store(true, Ordering::SeqCst);
    create_project(&s, &admin(), "flaky", false).await;
    let targets = json!([{"type": "http", "address": rx.url("/hook")}]);
    let id = create_policy(&s, "flaky", &policy("flaky", &["PUSH_ARTIFACT"], targets)).await;
    for i in 0..3 {
        push_small_image_as(&s, &admin(), "flaky/app", &format!("v{i}"), &format!("flaky-{i}")).await;
    }
    // Down long enough for every delivery to have been refused twice (retried once).
    let deadline = Instant::now() + Duration::from_secs(60);
    while rx.refused.load(Ordering::SeqCst) < 6 {
        assert!(
            Instant::now() < deadline,
            "deliveries were not retried: {} refusals",
            rx.refused.load(Ordering::SeqCst)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let base = format!("{API}/projects/flaky/webhook/policies/{id}");
    let execs = ok_json(&s, &format!("{base}/executions"), &admin()).await;
    assert_eq!(execs.as_array().unwrap().len(), 3);
    assert!(execs.as_array().unwrap().iter().all(|e| e["status"] != "Success" && e["status"] != "Error"), "{execs}");

    rx.down.store(false, Ordering::SeqCst);
    let back = Instant::now();
    // Within the retry cap plus its spread (a third) and a poll, not within luck.
    let limit = Duration::from_secs(cap * 4 / 3 + 5);
    let got = rx
        .wait_for(limit, "every event after coming back", |g| {
            let mut tags: Vec<&str> =
                g.iter().filter_map(|r| r.body["event_data"]["resources"][0]["tag"].as_str()).collect();
            tags.sort();
            tags.dedup();
            tags == ["v0", "v1", "v2"]
        })
        .await;
    eprintln!("all events delivered {:?} after the endpoint came back", back.elapsed());
    // Retries reuse the delivery id: a receiver can tell a repeat from a new event.
    let mut ids: Vec<String> =
        got.iter().map(|r| r.headers["x-berth-delivery-id"].to_str().unwrap().to_owned()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 3);
    // The failed attempts are in the task's log.
    let execs = ok_json(&s, &format!("{base}/executions"), &admin()).await;
    let e = &execs[0];
    let tasks = ok_json(&s, &format!("{base}/executions/{}/tasks", e["id"]), &admin()).await;
    let log = get(&s, &format!("{base}/executions/{}/tasks/{}/log", e["id"], tasks[0]["id"]), &admin()).await;
    let log = log.text().await.unwrap();
    assert!(log.contains("503"), "{log}");
}
