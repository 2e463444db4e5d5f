//! Project storage quotas against the real binary: `/quotas` reads and updates with
//! refusals naming the field, the default from `storage_per_project`, pushes refused with
//! Harbor's DENIED (plain HTTP and skopeo), QUOTA_WARNING / QUOTA_EXCEED webhooks received
//! by a real HTTP server, and two instances on one PostgreSQL never exceeding a limit.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use reqwest::Method;
use serde_json::{Value, json};

use crate::ha_postgres::{PgDb, pg_available, start_instance};
use crate::support::*;

const API: &str = "/api/v2.0";

/// A webhook endpoint that records the JSON bodies it receives.
async fn receiver() -> (String, Arc<Mutex<Vec<Value>>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let got: Arc<Mutex<Vec<Value>>> = Arc::default();
    let state = got.clone();
    let app = axum::Router::new().fallback(move |body: String| {
        let state = state.clone();
        async move {
            state.lock().unwrap().push(serde_json::from_str(&body).unwrap_or(Value::String(body)));
            StatusCode::OK
        }
    });
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}/hook"), got)
}

async fn wait_for_event(got: &Arc<Mutex<Vec<Value>>>, kind: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(v) = got.lock().unwrap().iter().find(|v| v["type"] == kind) {
            return v.clone();
        }
        assert!(Instant::now() < deadline, "no {kind} event within 30 s; got {:?}", got.lock().unwrap());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn quota_of(s: &Server, id: i64) -> Value {
    ok_json(s, &format!("{API}/quotas/{id}"), &admin()).await
}

async fn put_quota(s: &Server, id: i64, body: Value) -> reqwest::Response {
    call(s, Method::PUT, &format!("{API}/quotas/{id}"), &admin(), Some(&body)).await
}

async fn push_bytes(s: &Server, repo: &str, bytes: &[u8]) -> reqwest::Response {
    let d = sha256(bytes);
    let url = s.url(&format!("/v2/{repo}/blobs/uploads/?digest={d}"));
    admin().apply(client().post(url)).body(bytes.to_vec()).send().await.unwrap()
}

#[tokio::test]
async fn quota_api_refusals_events_and_skopeo_push_over_quota() {
    let s = Server::start_harbor();
    // Created with a limit by the administrator.
    let body = json!({"project_name": "quo", "metadata": {"public": "false"}, "storage_limit": 3000});
    let r = call(&s, Method::POST, &format!("{API}/projects"), &admin(), Some(&body)).await;
    assert_eq!(r.status(), 201);
    let id = location_id(&r);
    let q = quota_of(&s, id).await;
    assert_eq!((q["hard"]["storage"].as_i64(), q["used"]["storage"].as_i64()), (Some(3000), Some(0)), "{q}");
    assert_eq!(q["ref"]["name"], "quo");
    // The limit is the quota's, not a project setting.
    let p = ok_json(&s, &format!("{API}/projects/quo"), &admin()).await;
    assert!(p["metadata"].get("storage_limit").is_none(), "{p}");

    // Bad input: 400 naming the field.
    for (body, field) in [
        (json!({"hard": {"storage": 0}}), "hard.storage"),
        (json!({"hard": {"storage": -2}}), "hard.storage"),
        (json!({"hard": {"storage": "big"}}), "hard.storage"),
        (json!({"hard": {"count": 5}}), "hard.count"),
        (json!({"hard": {}}), "hard.storage"),
        (json!({}), "hard"),
        (json!({"hard": {"storage": 1}, "soft": 1}), "soft"),
    ] {
        let msg = expect_error(put_quota(&s, id, body.clone()).await, 400, "BAD_REQUEST").await;
        assert!(msg.contains(field), "{body}: {msg}");
    }
    let body = json!({"project_name": "badlimit", "storage_limit": 0});
    let msg = expect_error(
        call(&s, Method::POST, &format!("{API}/projects"), &admin(), Some(&body)).await,
        400,
        "BAD_REQUEST",
    )
    .await;
    assert!(msg.contains("storage_limit"), "{msg}");
    assert_eq!(put_quota(&s, 999_999, json!({"hard": {"storage": 10}})).await.status(), 404);

    // Webhooks for both quota events.
    let (hook, got) = receiver().await;
    let policy = json!({"name": "quota", "enabled": true, "event_types": ["QUOTA_WARNING", "QUOTA_EXCEED"],
                        "targets": [{"type": "http", "address": hook}]});
    let r = call(&s, Method::POST, &format!("{API}/projects/quo/webhook/policies"), &admin(), Some(&policy)).await;
    assert_eq!(r.status(), 201);

    // 2000 of 3000: fine. The same blob again, in another repository: free.
    assert_eq!(push_bytes(&s, "quo/a", &[1u8; 2000]).await.status(), 201);
    assert_eq!(push_bytes(&s, "quo/b", &[1u8; 2000]).await.status(), 201);
    assert_eq!(quota_of(&s, id).await["used"]["storage"], 2000);
    // 2700 of 3000 crosses 85 %: QUOTA_WARNING.
    assert_eq!(push_bytes(&s, "quo/a", &[2u8; 700]).await.status(), 201);
    let warning = wait_for_event(&got, "QUOTA_WARNING").await;
    assert_eq!(warning["event_data"]["repository"]["repo_full_name"], "quo/a", "{warning}");
    // 2700 + 400 > 3000: DENIED naming the project, its usage and the limit.
    let msg = expect_error(push_bytes(&s, "quo/a", &[3u8; 400]).await, 403, "DENIED").await;
    assert!(msg.contains("quo") && msg.contains("2.6 KiB") && msg.contains("2.9 KiB"), "{msg}");
    let exceed = wait_for_event(&got, "QUOTA_EXCEED").await;
    assert!(exceed["event_data"]["custom_attributes"]["Details"].as_str().unwrap().contains("quo"), "{exceed}");
    assert_eq!(quota_of(&s, id).await["used"]["storage"], 2700, "a refused blob uses nothing");
    let summary = ok_json(&s, &format!("{API}/projects/quo/summary"), &admin()).await;
    assert_eq!(summary["quota"]["used"]["storage"], 2700);
    assert_eq!(summary["quota"]["hard"]["storage"], 3000);

    // A chunked upload refused at its final PUT ends the session.
    let r = admin().apply(client().post(s.url("/v2/quo/c/blobs/uploads/"))).send().await.unwrap();
    assert_eq!(r.status(), 202);
    let location = header(&r, "location");
    let chunk = vec![4u8; 500];
    let r = admin()
        .apply(client().put(s.url(&format!("{location}?digest={}", sha256(&chunk)))))
        .body(chunk.clone())
        .send()
        .await
        .unwrap();
    expect_error(r, 403, "DENIED").await;
    let r = admin().apply(client().get(s.url(&location))).send().await.unwrap();
    assert_eq!(r.status(), 404, "the refused upload session is gone");

    // A cross-repository mount of a blob from another project is checked too.
    create_project(&s, &admin(), "other", false).await;
    let big = vec![5u8; 600];
    assert_eq!(push_bytes(&s, "other/src", &big).await.status(), 201);
    let url = s.url(&format!("/v2/quo/a/blobs/uploads/?mount={}&from=other/src", sha256(&big)));
    let r = admin().apply(client().post(url)).send().await.unwrap();
    expect_error(r, 403, "DENIED").await;

    // skopeo's push (about 200 bytes: skopeo compresses the layer) is refused once the
    // limit is lowered to 2800, and succeeds once it is lifted.
    if tool_available("skopeo") {
        assert_eq!(put_quota(&s, id, json!({"hard": {"storage": 2800}})).await.status(), 200);
        assert_eq!(quota_of(&s, id).await["hard"]["storage"], 2800);
        let tmp = tempfile::tempdir().unwrap();
        let layout = tmp.path().join("layout");
        write_tiny_layout(&layout, "v1");
        let auth = tmp.path().join("auth.json");
        let auth = auth.to_str().unwrap();
        run(&[
            "skopeo",
            "login",
            "--tls-verify=false",
            "--authfile",
            auth,
            "-u",
            "admin",
            "-p",
            ADMIN_PASSWORD,
            &s.addr,
        ]);
        let copy = |dest: String| {
            std::process::Command::new("skopeo")
                .args(["copy", "--retry-times", "0", "--dest-tls-verify=false", "--authfile", auth])
                .arg(format!("oci:{}:v1", layout.display()))
                .arg(dest)
                .output()
                .unwrap()
        };
        let out = copy(format!("docker://{}/quo/tiny:v1", s.addr));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "skopeo pushed over quota: {stderr}");
        assert!(stderr.contains("quota exceeded for project quo"), "{stderr}");
        // Blobs that fitted (the small layer) stay; the limit holds.
        assert!(quota_of(&s, id).await["used"]["storage"].as_i64().unwrap() <= 2800);
        assert_eq!(put_quota(&s, id, json!({"hard": {"storage": -1}})).await.status(), 200);
        assert_eq!(quota_of(&s, id).await["hard"]["storage"], -1);
        let out = copy(format!("docker://{}/quo/tiny:v1", s.addr));
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }

    // New projects take their limit from storage_per_project.
    let r =
        call(&s, Method::PUT, &format!("{API}/configurations"), &admin(), Some(&json!({"storage_per_project": 5000})))
            .await;
    assert_eq!(r.status(), 200);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let id = create_project(&s, &admin(), &format!("fresh{}", deadline.elapsed().as_millis()), false).await;
        if quota_of(&s, id).await["hard"]["storage"] == 5000 {
            break;
        }
        assert!(Instant::now() < deadline, "storage_per_project not applied to new projects");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Two instances on one PostgreSQL push distinct blobs into one project at once: exactly
/// as many as fit are accepted, whichever instance each goes through.
#[tokio::test]
async fn two_instances_on_postgres_never_exceed_a_quota() {
    if !pg_available() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let db = PgDb::create();
    let storage = tmp.path().join("shared-storage");
    let a = start_instance(&tmp.path().join("a"), &db.url(), &storage);
    let b = start_instance(&tmp.path().join("b"), &db.url(), &storage);
    let body = json!({"project_name": "race", "storage_limit": 10_000});
    let r = call(&a, Method::POST, &format!("{API}/projects"), &admin(), Some(&body)).await;
    assert_eq!(r.status(), 201);
    let id = location_id(&r);
    let (a, b) = (Arc::new(a), Arc::new(b));
    let pushes: Vec<_> = (0..30u8)
        .map(|i| {
            let s = if i % 2 == 0 { a.clone() } else { b.clone() };
            tokio::spawn(async move {
                let r = push_bytes(&s, &format!("race/r{}", i % 4), &[i; 1000]).await;
                r.status().as_u16()
            })
        })
        .collect();
    let mut accepted = 0;
    for p in pushes {
        match p.await.unwrap() {
            201 => accepted += 1,
            403 => {}
            other => panic!("unexpected status {other}"),
        }
    }
    assert_eq!(accepted, 10, "exactly ten 1000-byte blobs fit a 10000-byte quota");
    for s in [&a, &b] {
        let q = quota_of(s, id).await;
        assert_eq!(q["used"]["storage"], 10_000, "{q}");
    }
}

async fn mount(s: &Server, from: &str, to: &str, bytes: &[u8]) -> reqwest::Response {
    let url = s.url(&format!("/v2/{to}/blobs/uploads/?mount={}&from={from}", sha256(bytes)));
    admin().apply(client().post(url)).send().await.unwrap()
}

async fn put_manifest(s: &Server, repo: &str, reference: &str, manifest: &[u8]) -> reqwest::Response {
    admin()
        .apply(client().put(s.url(&format!("/v2/{repo}/manifests/{reference}"))))
        .header("content-type", "application/vnd.oci.image.manifest.v1+json")
        .body(manifest.to_vec())
        .send()
        .await
        .unwrap()
}

async fn used(s: &Server, id: i64) -> i64 {
    quota_of(s, id).await["used"]["storage"].as_i64().unwrap()
}

/// Creates `name` with `limit` and a webhook policy for both quota events.
async fn limited_project(s: &Server, name: &str, limit: i64) -> (i64, Arc<Mutex<Vec<Value>>>) {
    let body = json!({"project_name": name, "metadata": {"public": "false"}, "storage_limit": limit});
    let r = call(s, Method::POST, &format!("{API}/projects"), &admin(), Some(&body)).await;
    assert_eq!(r.status(), 201, "{:?}", r.text().await);
    let id = location_id(&r);
    let (hook, got) = receiver().await;
    let policy = json!({"name": "quota", "enabled": true, "event_types": ["QUOTA_WARNING", "QUOTA_EXCEED"],
                        "targets": [{"type": "http", "address": hook}]});
    let r = call(s, Method::POST, &format!("{API}/projects/{name}/webhook/policies"), &admin(), Some(&policy)).await;
    assert_eq!(r.status(), 201);
    (id, got)
}

/// The digest an event names (its first resource's).
fn event_digest(event: &Value) -> &str {
    event["event_data"]["resources"][0]["digest"].as_str().unwrap_or_default()
}

/// Cross-repository mounts raise QUOTA_WARNING and QUOTA_EXCEED as blob commits do;
/// manifests count against the quota (Harbor stores them as blobs: their size, once per
/// project), and a manifest PUT that would exceed it is refused with the blob's DENIED.
async fn mounts_and_manifests(s: &Server) {
    create_project(s, &admin(), "src", false).await;
    let (mid, mgot) = limited_project(s, "mnt", 1000).await;
    let (x, y) = (vec![7u8; 870], vec![8u8; 200]);
    assert_eq!(push_bytes(s, "src/base", &x).await.status(), 201);
    assert_eq!(push_bytes(s, "src/base", &y).await.status(), 201);
    // 870 of 1000 by a mount: across 85 %.
    assert_eq!(mount(s, "src/base", "mnt/a", &x).await.status(), 201);
    let warning = wait_for_event(&mgot, "QUOTA_WARNING").await;
    assert_eq!(event_digest(&warning), sha256(&x), "{warning}");
    assert_eq!(warning["event_data"]["repository"]["repo_full_name"], "mnt/a", "{warning}");
    // 870 + 200 > 1000: the mount is refused and QUOTA_EXCEED names the blob.
    let msg = expect_error(mount(s, "src/base", "mnt/a", &y).await, 403, "DENIED").await;
    assert!(msg.contains("quota exceeded for project mnt") && msg.contains("870 B"), "{msg}");
    let exceed = wait_for_event(&mgot, "QUOTA_EXCEED").await;
    assert_eq!(event_digest(&exceed), sha256(&y), "{exceed}");
    assert_eq!(used(s, mid).await, 870);

    // Manifests: blobs fit, the manifest would not.
    let (nid, ngot) = limited_project(s, "man", 100_000).await;
    let config = br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#.to_vec();
    let layer = vec![9u8; 300];
    assert_eq!(push_bytes(s, "man/a", &config).await.status(), 201);
    assert_eq!(push_bytes(s, "man/a", &layer).await.status(), 201);
    let blobs = (config.len() + layer.len()) as i64;
    assert_eq!(used(s, nid).await, blobs);
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": sha256(&config), "size": config.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": sha256(&layer), "size": layer.len()}],
    })
    .to_string()
    .into_bytes();
    let size = manifest.len() as i64;
    assert_eq!(put_quota(s, nid, json!({"hard": {"storage": blobs + size - 1}})).await.status(), 200);
    let msg = expect_error(put_manifest(s, "man/a", "v1", &manifest).await, 403, "DENIED").await;
    let expected = format!(
        "quota exceeded for project man: adding {size} B of storage resource, which when updated to current usage \
         of {blobs} B will exceed the configured upper limit of {} B",
        blobs + size - 1
    );
    assert_eq!(msg, expected);
    let exceed = wait_for_event(&ngot, "QUOTA_EXCEED").await;
    assert_eq!(event_digest(&exceed), sha256(&manifest), "{exceed}");
    let r = admin().apply(client().get(s.url("/v2/man/a/manifests/v1"))).send().await.unwrap();
    assert_eq!(r.status(), 404, "a refused manifest is not stored");
    assert_eq!(used(s, nid).await, blobs, "a refused manifest uses nothing");

    // With room for it, it is stored and counted: usage is blobs + manifest, exactly.
    assert_eq!(put_quota(s, nid, json!({"hard": {"storage": blobs + size}})).await.status(), 200);
    assert_eq!(put_manifest(s, "man/a", "v1", &manifest).await.status(), 201);
    assert_eq!(used(s, nid).await, blobs + size);
    let summary = ok_json(s, &format!("{API}/projects/man/summary"), &admin()).await;
    assert_eq!(summary["quota"]["used"]["storage"], blobs + size);
    // The same manifest in another repository of the project costs nothing more (the
    // quota is full to the byte), nor does a re-push.
    assert_eq!(mount(s, "man/a", "man/b", &config).await.status(), 201);
    assert_eq!(mount(s, "man/a", "man/b", &layer).await.status(), 201);
    assert_eq!(put_manifest(s, "man/b", "v1", &manifest).await.status(), 201);
    assert_eq!(put_manifest(s, "man/a", "v2", &manifest).await.status(), 201);
    assert_eq!(used(s, nid).await, blobs + size);
    // Deleting it from both repositories gives its bytes back.
    for repo in ["man/a", "man/b"] {
        let url = s.url(&format!("/v2/{repo}/manifests/{}", sha256(&manifest)));
        assert_eq!(admin().apply(client().delete(url)).send().await.unwrap().status(), 202);
    }
    assert_eq!(used(s, nid).await, blobs);
}

#[tokio::test]
async fn mounts_and_manifests_count_against_the_quota_on_sqlite() {
    let s = Server::start_harbor();
    mounts_and_manifests(&s).await;
}

#[tokio::test]
async fn mounts_and_manifests_count_against_the_quota_on_postgres() {
    if !pg_available() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let db = PgDb::create();
    let s = start_instance(&tmp.path().join("a"), &db.url(), &tmp.path().join("storage"));
    mounts_and_manifests(&s).await;
}
