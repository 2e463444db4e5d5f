//! Operations surface: per-component health, the `berth healthcheck` probe that
//! keepalived/haproxy scripts run, and Prometheus metrics.

use std::process::Command;

use crate::support::*;

fn healthcheck(url: &str) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_berth"))
        .args(["healthcheck", "--url", url, "--timeout-secs", "5"])
        .output()
        .expect("run berth healthcheck");
    (out.status.success(), String::from_utf8_lossy(&out.stderr).into_owned())
}

#[tokio::test]
async fn health_names_every_component_and_fails_when_storage_does() {
    let s = Server::start();
    let c = client();
    let r = c.get(s.url("/api/v2.0/health")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let body: serde_json::Value = serde_json::from_str(&r.text().await.unwrap()).unwrap();
    assert_eq!(body["status"], "healthy");
    let names: Vec<&str> = body["components"].as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["core", "database", "storage", "jobservice"]);
    let (ok, err) = healthcheck(&format!("http://{}", s.addr));
    assert!(ok, "healthy instance: {err}");

    // Storage gone (an unmounted share): unhealthy, 503, named; the probe fails.
    let storage = s.data_dir.join("storage");
    let moved = s.data_dir.join("storage.away");
    std::fs::rename(&storage, &moved).unwrap();
    let r = c.get(s.url("/api/v2.0/health")).send().await.unwrap();
    assert_eq!(r.status(), 503);
    let body: serde_json::Value = serde_json::from_str(&r.text().await.unwrap()).unwrap();
    assert_eq!(body["status"], "unhealthy");
    let storage_state = body["components"].as_array().unwrap().iter().find(|c| c["name"] == "storage").unwrap();
    assert_eq!(storage_state["status"], "unhealthy");
    assert!(storage_state["error"].as_str().unwrap().contains("No such file"), "{storage_state}");
    let (ok, err) = healthcheck(&format!("http://{}", s.addr));
    assert!(!ok);
    assert!(err.contains("503") && err.contains("storage"), "{err}");

    // Back: healthy again without a restart.
    std::fs::rename(&moved, &storage).unwrap();
    assert_eq!(c.get(s.url("/api/v2.0/health")).send().await.unwrap().status(), 200);
}

#[tokio::test]
async fn healthcheck_fails_cleanly_when_nothing_listens() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let (ok, err) = healthcheck(&format!("http://127.0.0.1:{port}"));
    assert!(!ok);
    assert!(err.contains("Connection refused"), "{err}");
    let out = Command::new(env!("CARGO_BIN_EXE_berth")).args(["healthcheck", "--url", "ftp://x"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "a bad --url is a usage error");
}

fn series(text: &str, name_and_labels: &str) -> f64 {
    text.lines().find_map(|l| l.strip_prefix(name_and_labels).and_then(|v| v.trim().parse().ok())).unwrap_or(0.0)
}

#[tokio::test]
async fn metrics_count_requests_bytes_and_uploads() {
    let s = Server::start();
    let c = client();
    let before = c.get(s.url("/metrics")).send().await.unwrap().text().await.unwrap();
    let blob = vec![7u8; 100_000];
    // A session upload (POST, then PUT with the bytes), so the session counters move.
    let r = c.post(s.url("/v2/metrics/repo/blobs/uploads/")).send().await.unwrap();
    assert_eq!(r.status(), 202);
    let location = header(&r, "location");
    let r = c.put(s.url(&format!("{location}?digest={}", sha256(&blob)))).body(blob.clone()).send().await.unwrap();
    assert_eq!(r.status(), 201);
    let digest = push_image(&c, &s, "metrics/repo", "v1", "metrics").await;
    let r = c.get(s.url(&format!("/v2/metrics/repo/manifests/{digest}"))).send().await.unwrap();
    assert_eq!(r.status(), 200);
    r.bytes().await.unwrap();

    let r = c.get(s.url("/metrics")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(header(&r, "content-type").starts_with("text/plain; version=0.0.4"));
    let after = r.text().await.unwrap();
    let delta = |series_name: &str| series(&after, series_name) - series(&before, series_name);
    assert!(delta("berth_http_requests_total{class=\"manifest\",method=\"GET\",status=\"200\"}") >= 1.0, "{after}");
    assert!(delta("berth_http_requests_total{class=\"manifest\",method=\"PUT\",status=\"201\"}") >= 1.0, "{after}");
    assert!(delta("berth_http_request_bytes_total{class=\"blob_upload\"}") >= blob.len() as f64, "{after}");
    assert!(delta("berth_http_response_bytes_total{class=\"manifest\"}") > 0.0, "{after}");
    assert!(delta("berth_upload_sessions_total{result=\"started\"}") >= 1.0, "{after}");
    assert!(delta("berth_upload_sessions_total{result=\"completed\"}") >= 1.0, "{after}");
    assert!(series(&after, "berth_db_commits_total") > 0.0, "{after}");
    assert!(after.contains("# TYPE berth_http_request_duration_seconds histogram"), "{after}");
    assert!(after.contains("berth_http_request_duration_seconds_count{class=\"manifest\"}"), "{after}");
    // Repository names never become labels: the series count stays bounded.
    assert!(!after.contains("metrics/repo"), "{after}");
}
