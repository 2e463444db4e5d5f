//! Instances sharing a Redis: failed logins counted cluster-wide; Redis down or
//! unreachable costs nothing but that sharing (the instance serves and says so in health).

use std::time::Duration;

use crate::support::*;

const REDIS: &str = "redis://127.0.0.1:6379";

/// Whether the machine's Redis answers; in CI it must.
fn redis_running() -> bool {
    let up = std::net::TcpStream::connect_timeout(&"127.0.0.1:6379".parse().unwrap(), Duration::from_secs(1)).is_ok();
    if !up {
        assert_ne!(std::env::var("CI").as_deref(), Ok("true"), "Redis at 127.0.0.1:6379 is required in CI");
        eprintln!("skipped: no Redis at 127.0.0.1:6379");
    }
    up
}

fn harbor_with(env: &[(&str, &str)]) -> (tempfile::TempDir, Server) {
    let tmp = tempfile::tempdir().unwrap();
    let mut all = vec![("BERTH_AUTH_MODE", "harbor")];
    all.extend_from_slice(env);
    let s = Server::spawn(&tmp.path().join("data"), &all);
    (tmp, s)
}

#[tokio::test]
async fn failed_logins_are_throttled_across_instances() {
    if !redis_running() {
        return;
    }
    let (_a_dir, a) = harbor_with(&[("BERTH_REDIS_URL", REDIS)]);
    let (_b_dir, b) = harbor_with(&[("BERTH_REDIS_URL", REDIS)]);
    let c = client();
    // A name of its own: Redis is shared with every other test and run.
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    let name = format!("guess-{}-{nanos}", std::process::id());
    for i in 0..5 {
        let target = if i % 2 == 0 { &a } else { &b };
        let r = c.get(target.url("/v2/")).basic_auth(&name, Some("Wrong1234")).send().await.unwrap();
        assert_eq!(r.status(), 401, "attempt {i}");
    }
    // Five failures spread over A and B: both instances now refuse the name.
    for s in [&a, &b] {
        let r = c.get(s.url("/v2/")).basic_auth(&name, Some("Wrong1234")).send().await.unwrap();
        assert_eq!(r.status(), 429);
        assert!(!header(&r, "retry-after").is_empty());
    }
    // Other names are untouched, and the admin logs in on both.
    for s in [&a, &b] {
        let r = c.get(s.url("/v2/_catalog")).basic_auth("admin", Some(ADMIN_PASSWORD)).send().await.unwrap();
        assert_eq!(r.status(), 200);
    }
    let r = c.get(a.url("/api/v2.0/health")).send().await.unwrap();
    let body: serde_json::Value = serde_json::from_str(&r.text().await.unwrap()).unwrap();
    let redis = body["components"].as_array().unwrap().iter().find(|c| c["name"] == "redis").expect("redis listed");
    assert_eq!(redis["status"], "healthy");
}

#[tokio::test]
async fn unreachable_redis_degrades_without_failing() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let url = format!("redis://127.0.0.1:{port}");
    let (_dir, s) = harbor_with(&[("BERTH_REDIS_URL", &url), ("BERTH_REDIS_TIMEOUT_MS", "200")]);
    let c = client();
    // Logins, pushes and pulls work.
    let digest = push_image(&admin_client(), &s, "library/degraded", "v1", "degraded").await;
    let r = c
        .get(s.url(&format!("/v2/library/degraded/manifests/{digest}")))
        .basic_auth("admin", Some(ADMIN_PASSWORD))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // Throttling still works per instance.
    for _ in 0..5 {
        let r = c.get(s.url("/v2/")).basic_auth("nobody", Some("Wrong1234")).send().await.unwrap();
        assert_eq!(r.status(), 401);
    }
    let r = c.get(s.url("/v2/")).basic_auth("nobody", Some("Wrong1234")).send().await.unwrap();
    assert_eq!(r.status(), 429);
    // Health: Redis is reported, the instance stays in rotation (200).
    let r = c.get(s.url("/api/v2.0/health")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let body: serde_json::Value = serde_json::from_str(&r.text().await.unwrap()).unwrap();
    assert_eq!(body["status"], "healthy");
    let redis = body["components"].as_array().unwrap().iter().find(|c| c["name"] == "redis").expect("redis listed");
    assert_eq!(redis["status"], "unhealthy");
    assert!(redis["error"].as_str().unwrap().contains(&port.to_string()), "{redis}");
    let jobs = body["components"].as_array().unwrap().iter().find(|c| c["name"] == "jobservice").unwrap();
    assert_eq!(jobs["status"], "healthy", "the job service needs no Redis");
    // Jobs run as usual: they live in the database, not in Redis.
    let body = serde_json::json!({"schedule": {"type": "Manual"}, "parameters": {"audit_retention_hour": 24}});
    let r = call(&s, reqwest::Method::POST, "/api/v2.0/system/purgeaudit/schedule", &admin(), Some(&body)).await;
    assert_eq!(r.status(), 201);
    let path = format!("/api/v2.0/system/purgeaudit/{}", location_id(&r));
    let mut status = String::new();
    for _ in 0..100 {
        status = ok_json(&s, &path, &admin()).await["job_status"].as_str().unwrap().to_owned();
        if status == "Success" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(status, "Success");
}

#[test]
fn a_bad_redis_url_stops_the_start_with_the_key_named() {
    let tmp = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_berth"))
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(tmp.path())
        .env("BERTH_REDIS_URL", "redis+sentinel://s1:26379")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("redis.url:") && err.contains("master name"), "{err}");
}
