//! HTTPS: the listener with a throwaway CA and clients that verify it (HTTP/2 and 1.1),
//! challenges pointing at https://, certificate rotation while requests run, and bad
//! certificate/key pairs refused at start-up naming the key. skopeo and podman over HTTPS
//! are in `clients.rs`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use berth_tls::testing::TestCa;

use crate::support::{self, ADMIN_PASSWORD, Server};

/// A Berth serving HTTPS with a certificate for 127.0.0.1 and localhost from a fresh CA.
pub struct Https {
    pub server: Server,
    pub ca: TestCa,
    pub cert: PathBuf,
    pub key: PathBuf,
    dir: tempfile::TempDir,
}

pub fn start_https(auth_mode: &str) -> Https {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new("Berth test CA");
    let (cert, key) = ca.issue(&["127.0.0.1", "localhost"]).write(&dir.path().join("tls"), "server");
    ca.write_ca(&dir.path().join("certs"));
    let server = Server::spawn(
        &dir.path().join("data"),
        &[
            ("BERTH_AUTH_MODE", auth_mode),
            ("BERTH_HTTP_TLS_CERT", cert.to_str().unwrap()),
            ("BERTH_HTTP_TLS_KEY", key.to_str().unwrap()),
        ],
    );
    Https { server, ca, cert, key, dir }
}

impl Https {
    /// A directory holding `ca.crt`, for skopeo's and podman's `--cert-dir`.
    pub fn cert_dir(&self) -> PathBuf {
        self.dir.path().join("certs")
    }

    /// A client that trusts only the test CA and reports the certificate each response came with.
    pub fn client(&self) -> reqwest::ClientBuilder {
        trusting(&self.ca)
    }
}

fn trusting(ca: &TestCa) -> reqwest::ClientBuilder {
    support::client_builder()
        .tls_certs_only([reqwest::Certificate::from_pem(ca.cert_pem.as_bytes()).unwrap()])
        .tls_info(true)
        .timeout(Duration::from_secs(30))
}

fn peer_cert(r: &reqwest::Response) -> Vec<u8> {
    let info = r.extensions().get::<reqwest::tls::TlsInfo>().expect("TLS info");
    info.peer_certificate().expect("a peer certificate").to_vec()
}

fn leaf_der(cert: &Path) -> Vec<u8> {
    berth_tls::read_certs(cert).unwrap()[0].to_vec()
}

#[tokio::test]
async fn https_speaks_h2_and_http1_and_challenges_point_at_https() {
    let h = start_https("harbor");
    let s = &h.server;

    let h2 = h.client().build().unwrap();
    let r = h2.get(s.url("/v2/")).send().await.unwrap();
    assert_eq!(r.version(), reqwest::Version::HTTP_2, "HTTP/2 chosen via ALPN");
    assert_eq!(r.status(), 401);
    assert_eq!(peer_cert(&r), leaf_der(&h.cert));
    let challenge = support::header(&r, "www-authenticate");
    assert!(
        challenge.contains(&format!("realm=\"https://{}/service/token\"", s.addr)),
        "the token service is announced on https: {challenge}"
    );

    let h1 = h.client().http1_only().build().unwrap();
    let r = h1.get(s.url("/v2/")).basic_auth("admin", Some(ADMIN_PASSWORD)).send().await.unwrap();
    assert_eq!((r.version(), r.status().as_u16()), (reqwest::Version::HTTP_11, 200));

    // A token from the https realm, then the Bearer flow over HTTP/2.
    let r = h2
        .get(s.url("/service/token?service=harbor-registry&scope=repository:library/app:pull,push"))
        .basic_auth("admin", Some(ADMIN_PASSWORD))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let token = support::body_json(r).await["token"].as_str().unwrap().to_string();
    let r = h2.get(s.url("/v2/library/app/tags/list")).bearer_auth(&token).send().await.unwrap();
    assert_eq!(r.status(), 404, "authorized; the repository does not exist yet");

    // The Harbor API's idea of where it is, and a session cookie fit for https only.
    let r = h2.get(s.url("/api/v2.0/systeminfo")).basic_auth("admin", Some(ADMIN_PASSWORD)).send().await.unwrap();
    let info = support::body_json(r).await;
    assert_eq!(info["external_url"], format!("https://{}", s.addr), "{info}");
    let r = support::post_login(&h1, s, "admin", ADMIN_PASSWORD).await;
    assert_eq!(r.status(), 200);
    assert!(support::header(&r, "set-cookie").contains("Secure"), "{}", support::header(&r, "set-cookie"));

    // Plain HTTP on the HTTPS port gets no HTTP answer, and a client that does not trust the
    // CA refuses the server.
    let plain = support::raw(&s.addr, b"GET /v2/ HTTP/1.1\r\nHost: x\r\n\r\n", false);
    assert!(!plain.starts_with("HTTP/"), "{plain:?}");
    let stranger = trusting(&TestCa::new("another CA")).build().unwrap();
    let e = stranger.get(s.url("/v2/")).send().await.unwrap_err();
    assert!(format!("{e:?}").contains("UnknownIssuer"), "{e:?}");

    // The check scripts' probe works on https.
    let out = Command::new(env!("CARGO_BIN_EXE_berth")).args(["healthcheck", "--url", &s.url("")]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

/// Replacing the certificate files (by rename, then rewritten in place plus SIGHUP) while
/// clients keep sending requests: new handshakes get the new certificate, an established
/// connection keeps going on the old one, and no request fails.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn certificate_rotation_under_load() {
    let h = start_https("open");
    let url = h.server.url("/v2/");
    let first = leaf_der(&h.cert);
    let stop = Arc::new(AtomicBool::new(false));
    let (ok, failed) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let seen = Arc::new(std::sync::Mutex::new(std::collections::HashSet::<Vec<u8>>::new()));

    let mut workers = Vec::new();
    for _ in 0..3 {
        // No pooling: every request is a new connection and a new handshake.
        let c = h.client().pool_max_idle_per_host(0).http1_only().build().unwrap();
        let (url, stop, ok, failed, seen) = (url.clone(), stop.clone(), ok.clone(), failed.clone(), seen.clone());
        workers.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                match c.get(&url).send().await {
                    Ok(r) if r.status() == 200 => {
                        seen.lock().unwrap().insert(peer_cert(&r));
                        ok.fetch_add(1, Ordering::Relaxed);
                    }
                    other => {
                        eprintln!("request failed during rotation: {other:?}");
                        failed.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }));
    }
    // One HTTP/2 connection kept open throughout.
    let kept = {
        let c = h.client().build().unwrap();
        let (url, stop, failed) = (url.clone(), stop.clone(), failed.clone());
        tokio::spawn(async move {
            let mut certs = std::collections::HashSet::new();
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) {
                match c.get(&url).send().await {
                    Ok(r) if r.status() == 200 => {
                        certs.insert(peer_cert(&r));
                        n += 1;
                    }
                    other => {
                        eprintln!("kept-alive request failed during rotation: {other:?}");
                        failed.fetch_add(1, Ordering::Relaxed);
                    }
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            (certs, n)
        })
    };

    let wait_for = |cert: Vec<u8>| {
        let seen = seen.clone();
        async move {
            let deadline = Instant::now() + Duration::from_secs(20);
            while !seen.lock().unwrap().contains(&cert) {
                assert!(Instant::now() < deadline, "new handshakes never got the new certificate");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    };
    wait_for(first.clone()).await;

    // An operator's atomic replacement: new files renamed over the old ones.
    let tmp = h.cert.parent().unwrap().join("next");
    let (c2, k2) = h.ca.issue(&["127.0.0.1"]).write(&tmp, "server");
    let second = leaf_der(&c2);
    std::fs::rename(&k2, &h.key).unwrap();
    std::fs::rename(&c2, &h.cert).unwrap();
    wait_for(second.clone()).await;

    // Rewritten in place, then SIGHUP: the process reloads instead of exiting.
    let third_leaf = h.ca.issue(&["127.0.0.1"]);
    std::fs::write(&h.cert, &third_leaf.cert_pem).unwrap();
    std::fs::write(&h.key, &third_leaf.key_pem).unwrap();
    unsafe { libc::kill(h.server.pid(), libc::SIGHUP) };
    let third = berth_tls::read_certs(&h.cert).unwrap()[0].to_vec();
    wait_for(third).await;
    tokio::time::sleep(Duration::from_millis(300)).await;

    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.await.unwrap();
    }
    let (kept_certs, kept_n) = kept.await.unwrap();
    assert_eq!(failed.load(Ordering::Relaxed), 0, "no request may fail while certificates rotate");
    assert!(ok.load(Ordering::Relaxed) > 10, "the load ran");
    assert!(kept_n > 10, "the kept connection ran");
    assert_eq!(kept_certs, [first].into(), "the established connection was never dropped");
}

#[test]
fn bad_certificate_or_key_stops_start_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new("Berth test CA");
    let (cert, key) = ca.issue(&["127.0.0.1"]).write(dir.path(), "a");
    let (_, other_key) = ca.issue(&["127.0.0.1"]).write(dir.path(), "b");
    let data = dir.path().join("data");
    let serve = |cert: &Path, key: &Path| {
        let out = Command::new(env!("CARGO_BIN_EXE_berth"))
            .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(&data)
            .env("BERTH_HTTP_TLS_CERT", cert)
            .env("BERTH_HTTP_TLS_KEY", key)
            .env("BERTH_ADMIN_PASSWORD", ADMIN_PASSWORD)
            .output()
            .unwrap();
        assert!(out.stdout.is_empty(), "never listened: {}", String::from_utf8_lossy(&out.stdout));
        assert!(!data.exists(), "nothing opened before the certificate was checked");
        (out.status.code(), String::from_utf8_lossy(&out.stderr).to_string())
    };

    let (code, err) = serve(&cert, &dir.path().join("missing.key"));
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("http.tls_key: cannot read") && err.contains("missing.key"), "{err}");

    let (code, err) = serve(&cert, &other_key);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("http.tls_cert, http.tls_key:") && err.contains("does not belong"), "{err}");

    let (code, err) = serve(&key, &key);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("http.tls_cert:") && err.contains("no PEM certificate"), "{err}");

    let (code, err) = serve(&cert, &cert);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("http.tls_key:") && err.contains("no PEM private key"), "{err}");
}

/// `berth serve` expected to fail at start-up; its stderr.
fn serve_fails(env: &[(&str, &str)]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_berth"));
    cmd.args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path().join("data"))
        .env("BERTH_AUTH_PRIVATE_KEY", concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/token_key.pem"))
        .env("BERTH_ADMIN_PASSWORD", ADMIN_PASSWORD)
        .env("BERTH_LOG_LEVEL", "warn");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    assert!(!out.status.success(), "expected a failed start: {}", String::from_utf8_lossy(&out.stdout));
    String::from_utf8_lossy(&out.stderr).into_owned()
}

async fn serves_on(url: &str) -> (Server, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::spawn(&dir.path().join("data"), &[("BERTH_AUTH_MODE", "harbor"), ("BERTH_DATABASE_URL", url)]);
    let r = support::client().get(s.url("/api/v2.0/health")).send().await.unwrap();
    assert_eq!(r.status(), 200, "healthy on {url}");
    let projects = support::ok_json(&s, "/api/v2.0/projects", &support::admin()).await;
    assert!(projects.as_array().is_some_and(|p| !p.is_empty()), "{projects}");
    (s, dir)
}

/// PostgreSQL accepting only TLS, with a certificate from a throwaway CA: `sslmode` and
/// `sslrootcert` in `database.url` mean what they mean to libpq, and a server that fails
/// the check is refused at start-up with a message saying what it was checked against.
#[tokio::test]
async fn postgres_over_tls_checks_the_server_as_libpq_does() {
    if !crate::pgpair::available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new("PostgreSQL test CA");
    let ca_file = ca.write_ca(&dir.path().join("pg"));
    let ca_file = ca_file.to_str().unwrap();
    let leaf = ca.issue(&["127.0.0.1"]);
    let pg = crate::pgpair::PgTls::start(&leaf.cert_pem, &leaf.key_pem);

    let url = pg.url(&format!("sslmode=verify-full&sslrootcert={ca_file}"));
    let s = serves_on(&url).await;
    let plain = pg
        .node
        .psql(
            "postgres",
            "SELECT count(*) FILTER (WHERE s.ssl), count(*) FILTER (WHERE NOT s.ssl) FROM pg_stat_ssl s \
             JOIN pg_stat_activity a USING (pid) WHERE a.application_name = 'berth'",
        )
        .unwrap();
    let (tls, clear) = plain.split_once('|').unwrap();
    assert!(tls.parse::<u32>().unwrap() > 0 && clear == "0", "Berth's connections are all TLS: {plain}");
    drop(s);

    // Another CA's certificate: refused, naming what it was checked against.
    let other = TestCa::new("someone else").write_ca(&dir.path().join("other"));
    let url = pg.url(&format!("sslmode=verify-ca&sslrootcert={}", other.display()));
    let err = serve_fails(&[("BERTH_DATABASE_URL", &url)]);
    assert!(err.contains("database.url"), "{err}");
    assert!(
        err.contains("UnknownIssuer") && err.contains(&format!("checked against the CA in {}", other.display())),
        "{err}"
    );

    // Plain connections are refused by the server; sslmode=require encrypts without checking.
    let err = serve_fails(&[("BERTH_DATABASE_URL", &pg.url("sslmode=disable"))]);
    assert!(err.contains("no encryption"), "{err}");
    drop(serves_on(&pg.url("sslmode=require")).await);

    // A certificate for another name: verify-ca accepts it, verify-full does not.
    let elsewhere = ca.issue(&["db.example.test"]);
    pg.replace_cert(&elsewhere.cert_pem, &elsewhere.key_pem);
    drop(serves_on(&pg.url(&format!("sslmode=verify-ca&sslrootcert={ca_file}"))).await);
    let err = serve_fails(&[("BERTH_DATABASE_URL", &pg.url(&format!("sslmode=verify-full&sslrootcert={ca_file}")))]);
    assert!(err.contains("not valid for name") && err.contains("and the host name"), "{err}");

    // verify-full without a CA to check against is a start-up error that says what to add.
    let err =
        serve_fails(&[("BERTH_DATABASE_URL", &pg.url("sslmode=verify-full")), ("HOME", dir.path().to_str().unwrap())]);
    assert!(err.contains("add sslrootcert=/path/to/ca.crt"), "{err}");
}

/// Berth on Redis over TLS (the server's plain port only tells the test that it is up)
/// with an ACL user whose password needs percent-encoding: `rediss://` and `redis.tls_ca`.
#[tokio::test]
async fn redis_over_tls_with_an_acl_user() {
    if !support::tool_available("redis-server") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new("Redis test CA");
    let (cert, key) = ca.issue(&["127.0.0.1"]).write(dir.path(), "redis");
    let ca_file = ca.write_ca(dir.path());
    let free = || std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let (port, tls_port) = (free(), free());
    let tls_port_s = tls_port.to_string();
    let _redis = crate::ha_faults::RedisServer::start_with(
        port,
        &[
            "--tls-port",
            &tls_port_s,
            "--tls-cert-file",
            cert.to_str().unwrap(),
            "--tls-key-file",
            key.to_str().unwrap(),
            "--tls-ca-cert-file",
            ca_file.to_str().unwrap(),
            "--tls-auth-clients",
            "no",
            "--user",
            "berth",
            "on",
            ">s3cr%t",
            "~*",
            "&*",
            "+@all",
        ],
    );
    let url = format!("rediss://berth:s3cr%25t@127.0.0.1:{tls_port}");
    let data = dir.path().join("data");
    let s = Server::spawn(
        &data,
        &[("BERTH_AUTH_MODE", "harbor"), ("BERTH_REDIS_URL", &url), ("BERTH_REDIS_TLS_CA", ca_file.to_str().unwrap())],
    );
    let (status, redis) = crate::ha_faults::redis_component(&support::client(), &s).await;
    assert_eq!((status, redis.as_str()), (200, "healthy"));
    drop(s);

    // Another CA: Berth still serves (Redis is optional) and health says why Redis is out.
    let other = TestCa::new("someone else").write_ca(&dir.path().join("other"));
    let s = Server::spawn(
        &dir.path().join("data2"),
        &[("BERTH_AUTH_MODE", "harbor"), ("BERTH_REDIS_URL", &url), ("BERTH_REDIS_TLS_CA", other.to_str().unwrap())],
    );
    let r = support::client().get(s.url("/api/v2.0/health")).send().await.unwrap();
    let body = support::body_json(r).await;
    let text = body.to_string();
    assert!(text.contains("UnknownIssuer"), "{text}");
}

/// Over HTTPS the registry's certificate is offered for download: Harbor's
/// `/systeminfo/getcert` answers the configured certificate file as `ca.crt` to any
/// caller, `systeminfo` says `has_ca_root`, and the project summary links it beside the
/// push commands.
#[tokio::test]
async fn https_offers_its_certificate_for_download_beside_the_push_commands() {
    let h = start_https("harbor");
    let s = &h.server;
    let c = h.client().build().unwrap();
    let r = c.get(s.url("/api/v2.0/systeminfo/getcert")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(support::header(&r, "content-disposition"), "attachment; filename=\"ca.crt\"");
    assert_eq!(r.bytes().await.unwrap().as_ref(), std::fs::read(&h.cert).unwrap().as_slice(), "the configured file");
    let info = c.get(s.url("/api/v2.0/systeminfo")).basic_auth("admin", Some(ADMIN_PASSWORD)).send().await.unwrap();
    assert_eq!(support::body_json(info).await["has_ca_root"], true);

    let login = support::post_login(&c, s, "admin", ADMIN_PASSWORD).await;
    assert_eq!(login.status(), 200);
    let sid = support::header(&login, "set-cookie").split(';').next().unwrap().to_string();
    let page = c.get(s.url("/projects/library")).header("cookie", sid).send().await.unwrap().text().await.unwrap();
    assert!(page.contains("Push commands"), "{page}");
    assert!(
        page.contains(
            r#"<a href="/api/v2.0/systeminfo/getcert" download="ca.crt">Download the registry certificate</a>"#
        ),
        "{page}"
    );
}
