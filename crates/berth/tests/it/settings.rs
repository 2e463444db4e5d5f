//! Runtime settings (`/configurations`, issue 9 §4) against the real binary: Harbor's
//! shape, validation that names the field, audit entries, and each setting's effect
//! where Berth has one (read-only mode, project creation, sign-up, robots, sessions,
//! audit forwarding and disabled event types, systeminfo); on PostgreSQL, a change made through one instance
//! reaches another within the stated bound.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{Value, json};

use crate::support::*;

const CONFIG: &str = "/api/v2.0/configurations";
/// Harbor's read-only refusal.
const READ_ONLY: &str = "The system is in read only mode. Any modification is prohibited.";
/// How long another instance may act on an old value: `settings::REFRESH_EVERY` (2 s)
/// plus slack for a loaded machine.
const BOUND: Duration = Duration::from_secs(2);
const SLACK: Duration = Duration::from_secs(3);

async fn set(s: &Server, body: Value) {
    let r = call(s, Method::PUT, CONFIG, &admin(), Some(&body)).await;
    assert_eq!(r.status(), 200, "PUT {body}: {:?}", r.text().await);
}

async fn refused(s: &Server, body: Value) -> String {
    expect_error(call(s, Method::PUT, CONFIG, &admin(), Some(&body)).await, 400, "BAD_REQUEST").await
}

#[tokio::test]
async fn configurations_are_validated_audited_and_shown() {
    let s = Server::start_harbor();
    let c = ok_json(&s, CONFIG, &admin()).await;
    let defaults = json!({
        "audit_log_disable": "", "audit_log_forward_endpoint": "", "auth_mode": "db_auth", "banner_message": "",
        "notification_enable": true, "project_creation_restriction": "everyone", "read_only": false,
        "robot_name_prefix": "robot$", "robot_token_duration": 30, "self_registration": false,
        "session_timeout": 60, "skip_audit_log_database": false, "storage_per_project": -1,
    });
    for (k, v) in defaults.as_object().unwrap() {
        assert_eq!(c[k], json!({"value": v, "editable": true}), "{k}");
    }
    let ttl = c["token_expiration"]["value"].as_i64().unwrap();
    assert_eq!(c["token_expiration"]["editable"], false, "it comes from the configuration file");
    assert_eq!(c.as_object().unwrap().len(), defaults.as_object().unwrap().len() + 1);

    // Sending back current values (file settings included) changes nothing.
    set(&s, json!({"auth_mode": "db_auth", "token_expiration": ttl, "read_only": false})).await;
    set(&s, json!({})).await;
    assert_eq!(ok_json(&s, CONFIG, &admin()).await, c);

    // Every refusal names the field; nothing of a refused body is applied.
    for (key, value) in [
        ("auth_mode", json!("ldap_auth")),
        ("auth_mode", json!("oidc_auth")),
        ("self_registration", json!("maybe")),
        ("project_creation_restriction", json!("nobody")),
        ("read_only", json!(3)),
        ("robot_token_duration", json!(0)),
        ("robot_token_duration", json!("soon")),
        ("robot_name_prefix", json!("")),
        ("robot_name_prefix", json!("a:b")),
        ("storage_per_project", json!(0)),
        ("storage_per_project", json!(-5)),
        ("notification_enable", json!(null)),
        ("audit_log_forward_endpoint", json!("no-port")),
        ("skip_audit_log_database", json!(true)),
        ("audit_log_disable", json!("create_artifact,explode_artifact")),
        ("session_timeout", json!(0)),
        ("session_timeout", json!(721)),
        ("banner_message", json!(7)),
        ("token_expiration", json!(ttl + 1)),
        ("email_host", json!("smtp.example.com")),
    ] {
        // With a valid change beside it, which must not be applied either.
        let mut body = json!({"read_only": true});
        body[key] = value.clone();
        let m = refused(&s, body).await;
        assert!(m.contains(key), "{key}={value}: {m}");
    }
    let m = refused(&s, json!({"token_expiration": ttl + 1})).await;
    assert!(m.contains("BERTH_AUTH_TOKEN_TTL_MINUTES"), "{m}");
    assert_eq!(ok_json(&s, CONFIG, &admin()).await, c, "nothing was applied");
    let malformed = client()
        .put(s.url(CONFIG))
        .basic_auth("admin", Some(ADMIN_PASSWORD))
        .header("content-type", "application/json")
        .body("[1]")
        .send()
        .await
        .unwrap();
    expect_error(malformed, 400, "BAD_REQUEST").await;

    // Only system administrators.
    create_user(&s, "alice").await;
    for (who, code) in [(user("alice"), 403), (Who::Anon, 401)] {
        assert_eq!(status(&s, Method::GET, CONFIG, &who, None).await, code);
        assert_eq!(status(&s, Method::PUT, CONFIG, &who, Some(&json!({"read_only": true}))).await, code);
    }

    // Changes, in Harbor's spellings (strings for numbers and booleans too).
    set(
        &s,
        json!({
            "self_registration": "true", "robot_token_duration": "7", "banner_message": "{\"message\":\"hello\"}",
            "project_creation_restriction": "adminonly", "storage_per_project": 1073741824i64,
            "notification_enable": false, "session_timeout": 30,
        }),
    )
    .await;
    let c = ok_json(&s, CONFIG, &admin()).await;
    assert_eq!(c["self_registration"]["value"], true);
    assert_eq!(c["robot_token_duration"]["value"], 7);
    assert_eq!(c["storage_per_project"]["value"], 1073741824i64);
    assert_eq!(c["session_timeout"]["value"], 30);
    assert_eq!(c["project_creation_restriction"]["value"], "adminonly");

    // Each change is in the audit log, naming the keys that changed.
    let log = ok_json(&s, "/api/v2.0/audit-logs?q=resource_type=configuration", &admin()).await;
    let log = log.as_array().unwrap();
    assert_eq!(log.len(), 1, "a PUT that changes nothing is not a change: {log:?}");
    assert_eq!(log[0]["operation"], "update");
    assert_eq!(log[0]["username"], "admin");
    let keys = log[0]["resource"].as_str().unwrap();
    for k in ["self_registration", "robot_token_duration", "banner_message", "session_timeout"] {
        assert!(keys.contains(k), "{keys}");
    }

    // systeminfo shows them: the login page's to everyone, the rest to users.
    let anon = ok_json(&s, "/api/v2.0/systeminfo", &Who::Anon).await;
    assert_eq!(anon["self_registration"], true);
    assert_eq!(anon["banner_message"], "{\"message\":\"hello\"}");
    assert_eq!(anon["auth_mode"], "db_auth");
    assert!(anon.get("read_only").is_none());
    let info = ok_json(&s, "/api/v2.0/systeminfo", &user("alice")).await;
    assert_eq!(info["project_creation_restriction"], "adminonly");
    assert_eq!(info["notification_enable"], false);
    assert_eq!(info["read_only"], false);

    // Kept across a restart: they live in the database.
    let data = s.data_dir.clone();
    let mut s = s;
    s.terminate();
    let s2 = Server::spawn(&data, &[("BERTH_AUTH_MODE", "harbor")]);
    assert_eq!(ok_json(&s2, CONFIG, &admin()).await, c);
}

#[tokio::test]
async fn read_only_refuses_every_change_but_settings_and_login() {
    let s = Server::start_harbor();
    create_project(&s, &admin(), "ro", false).await;
    let digest = push_small_image_as(&s, &admin(), "ro/app", "v1", "before").await;
    set(&s, json!({"read_only": true})).await;
    assert_eq!(ok_json(&s, "/api/v2.0/systeminfo", &admin()).await["read_only"], true);

    let denied = |r: reqwest::Response| async move {
        let m = expect_error(r, 403, "DENIED").await;
        assert_eq!(m, READ_ONLY);
    };
    let c = client();
    let basic = |r: reqwest::RequestBuilder| r.basic_auth("admin", Some(ADMIN_PASSWORD));
    // Registry writes: uploads, manifests, deletes.
    denied(basic(c.post(s.url("/v2/ro/app/blobs/uploads/"))).send().await.unwrap()).await;
    let m = image_manifest((&digest, 1), &[]);
    let put = basic(c.put(s.url("/v2/ro/app/manifests/v2")))
        .header("content-type", "application/vnd.oci.image.manifest.v1+json")
        .body(m);
    denied(put.send().await.unwrap()).await;
    denied(basic(c.delete(s.url(&format!("/v2/ro/app/manifests/{digest}")))).send().await.unwrap()).await;
    // API writes.
    let p = json!({"project_name": "another"});
    denied(call(&s, Method::POST, "/api/v2.0/projects", &admin(), Some(&p)).await).await;
    denied(call(&s, Method::DELETE, "/api/v2.0/projects/ro/repositories/app", &admin(), None).await).await;
    let u = json!({"username": "bob", "email": "bob@example.com", "realname": "b", "password": PW});
    denied(call(&s, Method::POST, "/api/v2.0/users", &admin(), Some(&u)).await).await;
    // Reads, logins and the settings go on.
    let pulled = basic(c.get(s.url("/v2/ro/app/manifests/v1")))
        .header("accept", "application/vnd.oci.image.manifest.v1+json")
        .send()
        .await
        .unwrap();
    assert_eq!(pulled.status(), 200);
    assert_eq!(ok_json(&s, "/api/v2.0/projects/ro/repositories", &admin()).await.as_array().unwrap().len(), 1);
    let login = post_login(&c, &s, "admin", ADMIN_PASSWORD).await;
    assert_eq!(login.status(), 200);

    set(&s, json!({"read_only": false})).await;
    push_small_image_as(&s, &admin(), "ro/app", "v2", "after").await;
    assert_eq!(status(&s, Method::DELETE, "/api/v2.0/projects/ro/repositories/app", &admin(), None).await, 200);
}

#[tokio::test]
async fn creation_sign_up_robots_and_sessions_follow_the_settings() {
    let s = Server::start_harbor();
    create_user(&s, "alice").await;
    let alice = user("alice");

    // Project creation: everyone, then administrators only.
    create_project(&s, &alice, "alices", false).await;
    set(&s, json!({"project_creation_restriction": "adminonly"})).await;
    let p = json!({"project_name": "alices2"});
    let m = expect_error(call(&s, Method::POST, "/api/v2.0/projects", &alice, Some(&p)).await, 403, "FORBIDDEN").await;
    assert!(m.contains("admin"), "{m}");
    create_project(&s, &admin(), "admins", false).await;
    set(&s, json!({"project_creation_restriction": "everyone"})).await;
    create_project(&s, &alice, "alices2", false).await;

    // Sign-up: refused until enabled; then anyone not logged in may sign up, and the new
    // account is an ordinary one that can log in.
    let signup = |name: &str| json!({"username": name, "email": format!("{name}@example.com"), "realname": name, "password": PW});
    let r = call(&s, Method::POST, "/api/v2.0/users", &Who::Anon, Some(&signup("carol"))).await;
    expect_error(r, 401, "UNAUTHORIZED").await;
    set(&s, json!({"self_registration": true})).await;
    let r = call(&s, Method::POST, "/api/v2.0/users", &Who::Anon, Some(&signup("carol"))).await;
    assert_eq!(r.status(), 201, "{:?}", r.text().await);
    let me = ok_json(&s, "/api/v2.0/users/current", &user("carol")).await;
    assert_eq!((me["username"].as_str(), me["sysadmin_flag"].as_bool()), (Some("carol"), Some(false)));
    let r = call(&s, Method::POST, "/api/v2.0/users", &alice, Some(&signup("dave"))).await;
    expect_error(r, 403, "FORBIDDEN").await;

    // Robots: the default duration and the name prefix.
    set(&s, json!({"robot_token_duration": 7, "robot_name_prefix": "bot_"})).await;
    let body = json!({"name": "ci", "level": "project", "permissions": [{"kind": "project", "namespace": "alices",
        "access": [{"resource": "repository", "action": "pull"}, {"resource": "repository", "action": "push"}]}]});
    let before = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    let r = call(&s, Method::POST, "/api/v2.0/robots", &admin(), Some(&body)).await;
    assert_eq!(r.status(), 201);
    let id = location_id(&r);
    let created = body_json(r).await;
    assert_eq!(created["name"], "bot_alices+ci");
    let expires = created["expires_at"].as_i64().unwrap();
    assert!((before + 7 * 86_400..=before + 7 * 86_400 + 60).contains(&expires), "{expires}");
    let got = ok_json(&s, &format!("/api/v2.0/robots/{id}"), &admin()).await;
    assert_eq!((got["name"].as_str(), got["duration"].as_i64()), (Some("bot_alices+ci"), Some(7)));
    let secret = created["secret"].as_str().unwrap().to_string();
    let bot = Who::Basic("bot_alices+ci".into(), secret.clone());
    push_small_image_as(&s, &bot, "alices/app", "v1", "robot").await;
    let old_name = Who::Basic("robot$alices+ci".into(), secret);
    let r = old_name.apply(client().get(s.url("/v2/alices/app/tags/list"))).send().await.unwrap();
    assert_eq!(r.status(), 401, "robots log in with the current prefix only");
    // Pushes are audited off the request path: wait for the entry, under a deadline.
    let start = Instant::now();
    loop {
        let log = ok_json(&s, "/api/v2.0/audit-logs?q=resource=~alices/app,operation=create", &admin()).await;
        if log.as_array().unwrap().iter().any(|e| e["username"] == "bot_alices+ci") {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(20), "the robot's push was not audited: {log}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Sessions last session_timeout minutes.
    set(&s, json!({"session_timeout": 5})).await;
    let r = post_login(&client(), &s, "alice", PW).await;
    assert_eq!(r.status(), 200);
    let cookie = header(&r, "set-cookie");
    assert!(cookie.contains("Max-Age=300"), "{cookie}");
}

/// Reads lines from a test syslog server until one contains every `needle`.
fn wait_for_line(lines: &std::sync::mpsc::Receiver<String>, needles: &[&str]) -> String {
    lines_until(lines, needles).pop().unwrap()
}

/// The lines a test syslog server receives up to the first that contains every `needle`.
fn lines_until(lines: &std::sync::mpsc::Receiver<String>, needles: &[&str]) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut seen = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = lines.recv_timeout(left).unwrap_or_else(|_| panic!("no forwarded line with {needles:?}"));
        let found = needles.iter().all(|n| line.contains(n));
        seen.push(line);
        if found {
            return seen;
        }
    }
}

#[tokio::test]
async fn audit_entries_are_forwarded_and_can_skip_the_database() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = listener.local_addr().unwrap().to_string();
    let (tx, lines) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(conn) = conn else { return };
            let tx = tx.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(conn).lines() {
                    let Ok(line) = line else { return };
                    if tx.send(line).is_err() {
                        return;
                    }
                }
            });
        }
    });
    let s = Server::start_harbor();
    set(&s, json!({"audit_log_forward_endpoint": endpoint})).await;
    create_project(&s, &admin(), "fwd", false).await;
    let line = wait_for_line(&lines, &["\"operation\":\"create\"", "\"resource\":\"fwd\""]);
    assert!(line.starts_with("<14>1 "), "{line}");
    let entry: Value = serde_json::from_str(&line[line.find('{').unwrap()..]).unwrap();
    assert_eq!(entry["resource_type"], "project");
    assert_eq!(entry["username"], "admin");
    let in_db = ok_json(&s, "/api/v2.0/audit-logs?q=resource=fwd", &admin()).await;
    assert_eq!(in_db.as_array().unwrap().len(), 1, "forwarded and kept");

    // Skipping the database: forwarded only, pushes included.
    set(&s, json!({"skip_audit_log_database": true})).await;
    create_project(&s, &admin(), "fwd2", false).await;
    push_small_image_as(&s, &admin(), "fwd2/app", "v1", "fwd").await;
    wait_for_line(&lines, &["\"resource\":\"fwd2\""]);
    wait_for_line(&lines, &["\"resource\":\"fwd2/app:v1\"", "\"operation\":\"create\""]);
    let in_db = ok_json(&s, "/api/v2.0/audit-logs?q=resource=~fwd2", &admin()).await;
    assert_eq!(in_db, json!([]), "nothing in the database");
    // The endpoint cannot be removed while entries would be kept nowhere.
    let m = refused(&s, json!({"audit_log_forward_endpoint": ""})).await;
    assert!(m.contains("audit_log_forward_endpoint"), "{m}");
    // A disabled event type is not forwarded either; the others are. Entries are
    // forwarded in order, so one created before the next enabled one would come first.
    set(&s, json!({"audit_log_disable": "create_project"})).await;
    create_project(&s, &admin(), "fwd-quiet", false).await;
    create_user(&s, "fwduser").await;
    let seen = lines_until(&lines, &["\"resource\":\"fwduser\""]);
    assert!(!seen.iter().any(|l| l.contains("fwd-quiet")), "{seen:?}");
    set(&s, json!({"audit_log_disable": ""})).await;
    set(&s, json!({"skip_audit_log_database": false, "audit_log_forward_endpoint": ""})).await;
    create_project(&s, &admin(), "fwd3", false).await;
    assert_eq!(ok_json(&s, "/api/v2.0/audit-logs?q=resource=fwd3", &admin()).await.as_array().unwrap().len(), 1);
    assert_eq!(ok_json(&s, "/api/v2.0/audit-logs?q=resource=fwduser", &admin()).await, json!([]), "forward only");
}

/// Starts uploads at `url` until the answer is `want` (403 in read-only mode, else 202).
/// The guarantee is about requests that start after the change was stored (`since`) plus
/// the bound: such a request must see it. Slow answers on a loaded machine do not count
/// against the bound, only when a request was sent. Returns when it was first seen.
async fn until_status(what: &str, since: Instant, url: String, want: u16) -> Duration {
    let c = admin_client();
    loop {
        let sent = since.elapsed();
        if c.post(&url).send().await.unwrap().status() == want {
            return sent;
        }
        assert!(sent < BOUND + SLACK, "{what}: a request sent {sent:?} after the change did not see it");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_change_reaches_every_instance_within_the_bound() {
    use crate::ha_postgres::{PgDb, pg_available, start_instance};
    if !pg_available() {
        return;
    }
    let db = PgDb::create();
    let tmp = tempfile::tempdir().unwrap();
    let storage = tmp.path().join("storage");
    let a = start_instance(&tmp.path().join("a"), &db.url(), &storage);
    let b = start_instance(&tmp.path().join("b"), &db.url(), &storage);
    create_project(&a, &admin(), "ha", false).await;
    // The first Basic login on an instance hashes the password (slow in a debug build);
    // done now so the rounds below time the settings, not the hash.
    for s in [&a, &b] {
        ok_json(s, "/api/v2.0/users/current", &admin()).await;
    }

    for round in 0..3 {
        set(&a, json!({"read_only": true})).await;
        let changed = Instant::now();
        // In effect at once where it was made…
        let r = call(&a, Method::POST, "/api/v2.0/projects", &admin(), Some(&json!({"project_name": "x"}))).await;
        expect_error(r, 403, "DENIED").await;
        // …and on the other instance within the bound.
        let took = until_status("read_only on b", changed, b.url("/v2/ha/app/blobs/uploads/"), 403).await;
        eprintln!("round {round}: read_only reached the other instance after {took:?}");
        let info = ok_json(&b, "/api/v2.0/systeminfo", &admin()).await;
        assert_eq!(info["read_only"], true);
        set(&b, json!({"read_only": false, "banner_message": format!("round {round}")})).await;
        let changed = Instant::now();
        until_status("read_only off on a", changed, a.url("/v2/ha/app/blobs/uploads/"), 202).await;
        let c = ok_json(&a, CONFIG, &admin()).await;
        assert_eq!(c["banner_message"]["value"], format!("round {round}"));
    }
    // Changes from both instances, each audited once.
    let log = ok_json(&a, "/api/v2.0/audit-logs?q=resource_type=configuration&page_size=100", &admin()).await;
    assert_eq!(log.as_array().unwrap().len(), 6, "{log}");
}
