//! Several instances on one PostgreSQL and one shared storage directory, as the HA
//! deployment runs them: anything done through one instance is seen and continued by the
//! other, tokens and sessions are accepted everywhere, concurrent first starts bootstrap
//! once, and an instance with a different signing key refuses to join.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::support::*;

/// The machine's PostgreSQL (trust auth); in CI it must be there.
const PG_HOST: &str = "127.0.0.1";

pub fn pg_available() -> bool {
    let up = std::net::TcpStream::connect_timeout(&"127.0.0.1:5432".parse().unwrap(), Duration::from_secs(1)).is_ok();
    if !up {
        assert_ne!(std::env::var("CI").as_deref(), Ok("true"), "PostgreSQL at 127.0.0.1:5432 is required in CI");
        eprintln!("skipped: no PostgreSQL at 127.0.0.1:5432");
    }
    up
}

pub fn psql(db: &str, sql: &str) -> String {
    let out = Command::new("psql")
        .args(["-h", PG_HOST, "-U", "postgres", "-d", db, "-v", "ON_ERROR_STOP=1", "-tA", "-c", sql])
        .output()
        .expect("run psql");
    assert!(out.status.success(), "psql {sql:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// A database of the test's own, dropped afterwards.
pub struct PgDb {
    pub name: String,
}

impl PgDb {
    pub fn create() -> PgDb {
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
        let name = format!("berth_it_{}_{nanos}", std::process::id());
        psql("postgres", &format!("CREATE DATABASE {name}"));
        PgDb { name }
    }

    pub fn url(&self) -> String {
        format!("postgres://postgres@{PG_HOST}:5432/{}", self.name)
    }
}

impl Drop for PgDb {
    fn drop(&mut self) {
        let _ = Command::new("psql")
            .args(["-h", PG_HOST, "-U", "postgres", "-d", "postgres", "-c"])
            .arg(format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name))
            .output();
    }
}

fn instance_env<'a>(db: &'a str, storage: &'a Path) -> Vec<(&'static str, String)> {
    vec![
        ("BERTH_AUTH_MODE", "harbor".into()),
        ("BERTH_DATABASE_URL", db.into()),
        ("BERTH_STORAGE_ROOT", storage.display().to_string()),
        ("BERTH_DATABASE_MAX_CONNECTIONS", "8".into()),
    ]
}

pub fn start_instance(dir: &Path, db: &str, storage: &Path) -> Server {
    start_instance_with(dir, db, storage, &[])
}

/// An instance on `db` and `storage` with more settings.
pub fn start_instance_with(dir: &Path, db: &str, storage: &Path, extra: &[(&str, &str)]) -> Server {
    let env = instance_env(db, storage);
    let mut env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    env.extend_from_slice(extra);
    Server::spawn(dir, &env)
}

/// Two instances on a database of their own and one shared storage directory.
pub struct Cluster {
    pub a: Server,
    pub b: Server,
    pub db: PgDb,
    pub tmp: tempfile::TempDir,
}

impl Cluster {
    pub fn storage(&self) -> PathBuf {
        self.tmp.path().join("shared-storage")
    }

    pub fn start() -> Cluster {
        let tmp = tempfile::tempdir().unwrap();
        let db = PgDb::create();
        let storage = tmp.path().join("shared-storage");
        let a = start_instance(&tmp.path().join("a"), &db.url(), &storage);
        let b = start_instance(&tmp.path().join("b"), &db.url(), &storage);
        Cluster { tmp, db, a, b }
    }
}

#[tokio::test]
async fn push_through_one_instance_pull_and_continue_through_the_other() {
    if !pg_available() {
        return;
    }
    let cl = Cluster::start();
    let (a, b) = (&cl.a, &cl.b);
    let c = admin_client();

    // Push through A, pull through B: manifest by tag and every blob it references.
    let digest = push_image(&c, a, "library/ha", "v1", "ha").await;
    let r = c
        .get(b.url("/v2/library/ha/manifests/v1"))
        .header("accept", "application/vnd.oci.image.manifest.v1+json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "docker-content-digest"), digest);
    let manifest: serde_json::Value = serde_json::from_slice(&r.bytes().await.unwrap()).unwrap();
    for d in std::iter::once(&manifest["config"]).chain(manifest["layers"].as_array().unwrap()) {
        let d = d["digest"].as_str().unwrap();
        let r = c.get(b.url(&format!("/v2/library/ha/blobs/{d}"))).send().await.unwrap();
        assert_eq!(r.status(), 200, "blob {d} through B");
        assert_eq!(sha256(&r.bytes().await.unwrap()), d);
    }

    // A chunked upload started on A continues and finishes on B.
    let data: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    let r = c.post(a.url("/v2/library/ha/blobs/uploads/")).send().await.unwrap();
    assert_eq!(r.status(), 202);
    let loc = header(&r, "location");
    assert!(loc.starts_with('/'), "relative Location never pins the client to A: {loc}");
    let r = c
        .patch(a.url(&loc))
        .header("content-type", "application/octet-stream")
        .header("content-range", "0-99999")
        .body(data[..100_000].to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let loc = header(&r, "location");
    let r = c
        .patch(b.url(&loc))
        .header("content-type", "application/octet-stream")
        .header("content-range", "100000-299999")
        .body(data[100_000..].to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202, "B continues A's upload");
    assert_eq!(header(&r, "range"), "0-299999");
    let loc = header(&r, "location");
    let r = c.put(b.url(&format!("{loc}?digest={}", sha256(&data)))).send().await.unwrap();
    assert_eq!(r.status(), 201);
    let r = c.get(a.url(&format!("/v2/library/ha/blobs/{}", sha256(&data)))).send().await.unwrap();
    assert_eq!(r.bytes().await.unwrap().as_ref(), &data[..], "A serves what B finished");

    // A token issued by A is accepted by B.
    let r =
        c.get(a.url("/service/token?service=harbor-registry&scope=repository:library/ha:pull")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let token: serde_json::Value = serde_json::from_slice(&r.bytes().await.unwrap()).unwrap();
    let r = client()
        .get(b.url("/v2/library/ha/manifests/v1"))
        .bearer_auth(token["token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "B accepts A's token");

    // A session cookie from A's login works on B.
    let sid = admin_session(a).await;
    let r = client().get(b.url("/api/v2.0/users/current")).header("cookie", sid).send().await.unwrap();
    assert_eq!(r.status(), 200, "B accepts A's session");

    // The same image pushed through A and B at once: one consistent result.
    let (ra, rb) = tokio::join!(
        push_image(&c, a, "library/race", "same", "race"),
        push_image(&c, b, "library/race", "same", "race")
    );
    assert_eq!(ra, rb);
    for s in [a, b] {
        let r = c
            .head(s.url("/v2/library/race/manifests/same"))
            .header("accept", "application/vnd.oci.image.manifest.v1+json")
            .send()
            .await
            .unwrap();
        assert_eq!(header(&r, "docker-content-digest"), ra);
    }
    let tags: serde_json::Value = serde_json::from_slice(
        &c.get(a.url("/v2/library/race/tags/list")).send().await.unwrap().bytes().await.unwrap(),
    )
    .unwrap();
    assert_eq!(tags["tags"], serde_json::json!(["same"]));
    drop(cl.storage());
}

#[tokio::test]
async fn simultaneous_first_starts_bootstrap_once() {
    if !pg_available() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let db = PgDb::create();
    let storage = tmp.path().join("shared-storage");
    let url = db.url();
    let servers: Vec<Server> = std::thread::scope(|s| {
        let handles: Vec<_> = ["a", "b", "c"]
            .iter()
            .map(|n| {
                let (dir, url, storage) = (tmp.path().join(n), url.clone(), storage.clone());
                s.spawn(move || start_instance(&dir, &url, &storage))
            })
            .collect();
        handles.into_iter().map(|h| h.join().expect("instance started")).collect()
    });
    // Every instance serves and the admin logs in on each (a login waits for the
    // first-start bootstrap, which runs while the listener is already up).
    let c = admin_client();
    for s in &servers {
        let r = c.get(s.url("/api/v2.0/users/current")).send().await.unwrap();
        assert_eq!(r.status(), 200);
        let r = c.get(s.url("/api/v2.0/health")).send().await.unwrap();
        assert_eq!(r.status(), 200);
    }
    assert_eq!(psql(&db.name, "SELECT count(*) FROM users WHERE username = 'admin'"), "1");
    assert_eq!(psql(&db.name, "SELECT count(*) FROM projects WHERE name = 'library'"), "1");
    let versions = psql(&db.name, "SELECT count(*) = count(DISTINCT version) FROM schema_migrations");
    assert_eq!(versions, "t");
}

/// The seed's topology: instances on one shared data directory with the default key path
/// and no key configured, started at the same moment on a fresh directory. One generates
/// the key, the others adopt it; none dies, and a token from any verifies on every other.
#[tokio::test]
async fn simultaneous_first_starts_on_one_data_dir_share_one_generated_key() {
    if !pg_available() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let db = PgDb::create();
    let (dir, url) = (tmp.path().join("shared"), db.url());
    let servers: Vec<Server> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..3)
            .map(|_| {
                let (dir, url) = (dir.clone(), url.clone());
                s.spawn(move || {
                    let env = [
                        ("BERTH_AUTH_MODE", "harbor"),
                        ("BERTH_DATABASE_URL", &url),
                        ("BERTH_AUTH_PRIVATE_KEY", ""),
                        ("BERTH_AUTH_SECRET_KEY", ""),
                    ];
                    Server::spawn(&dir, &env)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().expect("instance started")).collect()
    });
    let key = std::fs::read_to_string(dir.join("secret/private_key.pem")).unwrap();
    assert!(key.starts_with("-----BEGIN PRIVATE KEY-----"), "a P-256 key in PKCS#8");
    let mut names: Vec<_> = std::fs::read_dir(dir.join("secret")).unwrap().map(|e| e.unwrap().file_name()).collect();
    names.sort();
    assert_eq!(names, ["private_key.pem", "secretkey"], "no temporary file left behind");
    let secret = std::fs::read(dir.join("secret/secretkey")).unwrap();
    assert_eq!(secret.len(), 32, "a generated AES-256 secret key; all three started, so they agreed on it");
    let c = client();
    for (i, from) in servers.iter().enumerate() {
        let r = c
            .get(from.url("/service/token?service=harbor-registry&scope=repository%3Alibrary%2Fk%3Apull%2Cpush"))
            .basic_auth("admin", Some(ADMIN_PASSWORD))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let token = body_json(r).await["token"].as_str().unwrap().to_string();
        let head = token.split('.').next().unwrap();
        let head: serde_json::Value = serde_json::from_slice(
            &base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, head).unwrap(),
        )
        .unwrap();
        assert_eq!(head["alg"], "ES256");
        for on in &servers {
            let r = c.get(on.url("/v2/library/k/tags/list")).bearer_auth(&token).send().await.unwrap();
            assert_eq!(r.status(), 404, "instance {i}'s token is accepted everywhere (the repository is just empty)");
        }
    }
}

/// Instances remember verified tokens and project lookups; a project deleted and
/// re-created through one instance must still invalidate old tokens on the others, within
/// the stated bound (berth-http's `PROJECT_TTL`, 2 s).
#[tokio::test]
async fn a_recreated_project_invalidates_old_tokens_on_every_instance_within_the_bound() {
    if !pg_available() {
        return;
    }
    let cl = Cluster::start();
    let c = client();
    let admin = admin();
    let project = |method: reqwest::Method| {
        let (c, url, admin) = (c.clone(), cl.a.url("/api/v2.0/projects"), admin.clone());
        async move {
            let r = if method == reqwest::Method::POST {
                c.post(url).header("content-type", "application/json").body(r#"{"project_name":"moving"}"#)
            } else {
                c.delete(format!("{url}/moving")).header("x-is-resource-name", "true")
            };
            let r = with_auth(r, &admin).send().await.unwrap();
            assert!(r.status().is_success(), "{method} project: {}", r.status());
        }
    };
    project(reqwest::Method::POST).await;
    let r = c
        .get(cl.a.url("/service/token?service=harbor-registry&scope=repository%3Amoving%2Fapp%3Apull%2Cpush"))
        .basic_auth("admin", Some(ADMIN_PASSWORD))
        .send()
        .await
        .unwrap();
    let token = body_json(r).await["token"].as_str().unwrap().to_string();
    let upload = |s: &Server| c.post(s.url("/v2/moving/app/blobs/uploads/")).bearer_auth(&token).send();
    for s in [&cl.a, &cl.b] {
        // Twice: the second answer comes from the caches.
        assert_eq!(upload(s).await.unwrap().status(), 202);
        assert_eq!(upload(s).await.unwrap().status(), 202);
    }
    // Token times have one-second resolution: the new project must be visibly younger.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    project(reqwest::Method::DELETE).await;
    project(reqwest::Method::POST).await;
    let changed = std::time::Instant::now();
    assert_eq!(upload(&cl.a).await.unwrap().status(), 401, "at once on the instance that made the change");
    let bound = Duration::from_secs(2);
    tokio::time::sleep(bound.saturating_sub(changed.elapsed()) + Duration::from_millis(100)).await;
    assert_eq!(upload(&cl.b).await.unwrap().status(), 401, "within the bound on the other instance");
}

#[tokio::test]
async fn an_instance_with_another_signing_key_refuses_to_start() {
    if !pg_available() {
        return;
    }
    let cl = Cluster::start();
    let other_key = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/other_token_key.pem");
    let out = Command::new(env!("CARGO_BIN_EXE_berth"))
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(cl.tmp.path().join("c"))
        .env("BERTH_DATABASE_URL", cl.db.url())
        .env("BERTH_STORAGE_ROOT", cl.storage())
        .env("BERTH_AUTH_PRIVATE_KEY", other_key)
        .env("BERTH_ADMIN_PASSWORD", ADMIN_PASSWORD)
        .output()
        .unwrap();
    assert!(!out.status.success(), "must refuse");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("auth.private_key:") && err.contains("differs from the key the other instances"), "{err}");
    assert!(err.contains("other_token_key.pem"), "names the file: {err}");
    assert!(String::from_utf8_lossy(&out.stdout).is_empty(), "never started listening");
    // The cluster is unaffected.
    let r = admin_client().get(cl.a.url("/api/v2.0/health")).send().await.unwrap();
    assert_eq!(r.status(), 200);
}

/// The cluster secret key encrypts stored registry credentials: an instance with another
/// key could not read them, so it refuses to start, naming the key and the fix.
#[tokio::test]
async fn an_instance_with_another_secret_key_refuses_to_start() {
    if !pg_available() {
        return;
    }
    let cl = Cluster::start();
    let other = cl.tmp.path().join("other-secretkey");
    std::fs::write(&other, "AnotherSecretKey").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_berth"))
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(cl.tmp.path().join("c"))
        .env("BERTH_DATABASE_URL", cl.db.url())
        .env("BERTH_STORAGE_ROOT", cl.storage())
        .env("BERTH_AUTH_PRIVATE_KEY", concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/token_key.pem"))
        .env("BERTH_AUTH_SECRET_KEY", &other)
        .env("BERTH_ADMIN_PASSWORD", ADMIN_PASSWORD)
        .output()
        .unwrap();
    assert!(!out.status.success(), "must refuse");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("auth.secret_key:") && err.contains("differs from the key the other instances"), "{err}");
    assert!(err.contains("other-secretkey"), "names the file: {err}");
    assert!(String::from_utf8_lossy(&out.stdout).is_empty(), "never started listening");
}

#[tokio::test]
async fn unreachable_database_fails_the_start_within_the_timeout() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let tmp = tempfile::tempdir().unwrap();
    let started = std::time::Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_berth"))
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(tmp.path())
        .env("BERTH_DATABASE_URL", format!("postgres://berth:hunter2@127.0.0.1:{port}/berth"))
        .env("BERTH_DATABASE_CONNECT_TIMEOUT_SECS", "2")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("database.url:"), "{err}");
    assert!(!err.contains("hunter2"), "no password in errors: {err}");
    assert!(started.elapsed() < Duration::from_secs(20), "{:?}", started.elapsed());
}

#[tokio::test]
async fn logging_out_on_one_instance_ends_the_session_everywhere() {
    if !pg_available() {
        return;
    }
    let cl = Cluster::start();
    let sid = admin_session(&cl.a).await;
    let current = |s: &Server| {
        let (url, sid) = (s.url("/api/v2.0/users/current"), sid.clone());
        async move { client().get(url).header("cookie", sid).send().await.unwrap().status() }
    };
    assert_eq!(current(&cl.b).await, 200);
    let r = client().get(cl.b.url("/c/log_out")).header("cookie", sid.clone()).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(header(&r, "set-cookie").contains("Max-Age=0"), "the browser's cookie is cleared");
    // A copy of the cookie is refused by both instances.
    assert_eq!(current(&cl.a).await, 401);
    assert_eq!(current(&cl.b).await, 401);
    // Logging in again works.
    let sid2 = admin_session(&cl.a).await;
    let r = client().get(cl.b.url("/api/v2.0/users/current")).header("cookie", sid2).send().await.unwrap();
    assert_eq!(r.status(), 200);
}
