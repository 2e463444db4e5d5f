//! Against real Redis: the machine's on 127.0.0.1:6379, plus private servers (password,
//! Sentinel) started on free ports with the same `redis-server` binary.

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use berth_core::authn::FailureLedger;
use berth_redis::throttle::RedisLedger;
use berth_redis::{Redis, RedisError, Value, lock};

const SHARED: &str = "redis://127.0.0.1:6379";

/// The shared Redis, or `None` (skip) when it is not running outside CI.
async fn shared() -> Option<Redis> {
    let r = Redis::new(SHARED, Duration::from_secs(2)).unwrap();
    match r.ping().await {
        Ok(()) => Some(r),
        Err(e) if std::env::var("CI").as_deref() == Ok("true") => panic!("Redis at {SHARED} is required in CI: {e}"),
        Err(e) => {
            eprintln!("skipped: no Redis at {SHARED}: {e}");
            None
        }
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

struct Private {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Drop for Private {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A `redis-server` of our own; `extra` is appended to its config file.
fn private(extra: &str, sentinel: bool) -> Option<Private> {
    if Command::new("redis-server").arg("--version").output().is_err() {
        assert_ne!(std::env::var("CI").as_deref(), Ok("true"), "redis-server is required in CI");
        return None;
    }
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let conf = dir.path().join("redis.conf");
    std::fs::write(
        &conf,
        format!("port {port}\nbind 127.0.0.1\nsave \"\"\nappendonly no\ndir {}\n{extra}\n", dir.path().display()),
    )
    .unwrap();
    let mut cmd = Command::new("redis-server");
    cmd.arg(&conf);
    if sentinel {
        cmd.arg("--sentinel");
    }
    let child = cmd.stdout(Stdio::null()).stderr(Stdio::null()).spawn().expect("start redis-server");
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "redis-server on {port} did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    Some(Private { child, port, _dir: dir })
}

#[tokio::test]
async fn commands_round_trip() {
    let Some(r) = shared().await else { return };
    let key = format!("berth-test:{}", uuid::Uuid::new_v4().simple());
    assert_eq!(
        r.cmd(&[b"SET", key.as_bytes(), b"v\r\nwith crlf", b"PX", b"60000"]).await.unwrap(),
        Value::Str(b"OK".to_vec())
    );
    assert_eq!(r.cmd(&[b"GET", key.as_bytes()]).await.unwrap(), Value::Str(b"v\r\nwith crlf".to_vec()));
    assert_eq!(r.cmd(&[b"DEL", key.as_bytes()]).await.unwrap(), Value::Int(1));
    assert_eq!(r.cmd(&[b"GET", key.as_bytes()]).await.unwrap(), Value::Nil);
    match r.cmd(&[b"NOSUCHCOMMAND"]).await {
        Err(RedisError::Server(e)) => assert!(e.contains("unknown command"), "{e}"),
        other => panic!("expected a server error, got {other:?}"),
    }
    // The connection that saw the error reply is still usable (error replies are whole replies).
    r.ping().await.unwrap();
    // Concurrent callers each get their own connection.
    let r = Arc::new(r);
    let tasks: Vec<_> = (0..16)
        .map(|i| {
            let r = Arc::clone(&r);
            let key = format!("{key}:{i}");
            tokio::spawn(async move {
                r.cmd(&[b"SET", key.as_bytes(), i.to_string().as_bytes(), b"PX", b"60000"]).await.unwrap();
                r.cmd(&[b"GET", key.as_bytes()]).await.unwrap()
            })
        })
        .collect();
    for (i, t) in tasks.into_iter().enumerate() {
        assert_eq!(t.await.unwrap().as_int(), Some(i as i64));
    }
}

#[tokio::test]
async fn shared_login_ledger_counts_across_clients() {
    let Some(r) = shared().await else { return };
    let a = RedisLedger(Arc::new(r));
    // A second client, as another instance would have.
    let b = RedisLedger(Arc::new(Redis::new(SHARED, Duration::from_secs(2)).unwrap()));
    let name = format!("user-{}", uuid::Uuid::new_v4().simple());
    assert_eq!(a.failures(&name).await.unwrap(), None);
    for _ in 0..3 {
        a.record_failure(&name, Duration::from_secs(60)).await.unwrap();
    }
    b.record_failure(&name, Duration::from_secs(60)).await.unwrap();
    let (n, ago) = b.failures(&name).await.unwrap().expect("recorded");
    assert_eq!(n, 4);
    assert!(ago < Duration::from_secs(5), "{ago:?}");
    a.clear(&name).await.unwrap();
    assert_eq!(b.failures(&name).await.unwrap(), None);
    // Records expire with the window.
    a.record_failure(&name, Duration::from_millis(200)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(a.failures(&name).await.unwrap(), None);
}

#[tokio::test]
async fn locks_exclude_and_expire() {
    let Some(r) = shared().await else { return };
    let name = format!("test-{}", uuid::Uuid::new_v4().simple());
    let lease = lock::try_acquire(&r, &name, Duration::from_secs(30)).await.unwrap().expect("free");
    assert!(lock::try_acquire(&r, &name, Duration::from_secs(30)).await.unwrap().is_none(), "held");
    lease.release().await.unwrap();
    let short = lock::try_acquire(&r, &name, Duration::from_millis(200)).await.unwrap().expect("released");
    tokio::time::sleep(Duration::from_millis(400)).await;
    let next = lock::try_acquire(&r, &name, Duration::from_secs(30)).await.unwrap().expect("expired");
    // The expired lease must not release the new holder's lock.
    short.release().await.unwrap();
    assert!(lock::try_acquire(&r, &name, Duration::from_secs(30)).await.unwrap().is_none(), "still held by next");
    next.release().await.unwrap();
}

#[tokio::test]
async fn a_frozen_server_times_out_and_a_closed_port_fails_fast() {
    // Accepts connections but never answers, like a SIGSTOPped Redis.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = silent.local_addr().unwrap();
    let r = Redis::new(&format!("redis://{addr}"), Duration::from_millis(300)).unwrap();
    let t0 = Instant::now();
    assert!(matches!(r.ping().await, Err(RedisError::Timeout(_))));
    assert!(t0.elapsed() < Duration::from_secs(2), "{:?}", t0.elapsed());

    let r = Redis::new(&format!("redis://127.0.0.1:{}", free_port()), Duration::from_secs(5)).unwrap();
    let t0 = Instant::now();
    match r.ping().await {
        Err(RedisError::Io(e)) => assert!(e.contains("connecting to 127.0.0.1"), "{e}"),
        other => panic!("expected a connection error, got {other:?}"),
    }
    assert!(t0.elapsed() < Duration::from_secs(1));
}

#[tokio::test]
async fn password_and_database_selection() {
    let Some(p) = private("requirepass s3cret", false) else { return };
    let good = Redis::new(&format!("redis://:s3cret@127.0.0.1:{}/3", p.port), Duration::from_secs(2)).unwrap();
    good.ping().await.unwrap();
    good.cmd(&[b"SET", b"k", b"in-db-3"]).await.unwrap();
    let db0 = Redis::new(&format!("redis://:s3cret@127.0.0.1:{}/0", p.port), Duration::from_secs(2)).unwrap();
    assert_eq!(db0.cmd(&[b"GET", b"k"]).await.unwrap(), Value::Nil, "SELECT took effect");
    let bad = Redis::new(&format!("redis://:wrong@127.0.0.1:{}", p.port), Duration::from_secs(2)).unwrap();
    match bad.ping().await {
        Err(RedisError::Server(e)) => assert!(e.contains("authentication failed"), "{e}"),
        other => panic!("expected an auth failure, got {other:?}"),
    }
    let none = Redis::new(&format!("redis://127.0.0.1:{}", p.port), Duration::from_secs(2)).unwrap();
    match none.ping().await {
        Err(RedisError::Server(e)) => assert!(e.contains("NOAUTH"), "{e}"),
        other => panic!("expected NOAUTH, got {other:?}"),
    }
}

#[tokio::test]
async fn sentinel_finds_the_master() {
    let Some(master) = private("", false) else { return };
    let Some(sentinel) = private(&format!("sentinel monitor berthmaster 127.0.0.1 {} 1", master.port), true) else {
        return;
    };
    // A dead sentinel first: the client moves on to the next one.
    let url = format!("redis+sentinel://127.0.0.1:{},127.0.0.1:{}/berthmaster", free_port(), sentinel.port);
    let r = Redis::new(&url, Duration::from_secs(2)).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match r.ping().await {
            Ok(()) => break,
            Err(e) if Instant::now() < deadline => {
                eprintln!("waiting for the sentinel: {e}");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => panic!("sentinel never answered: {e}"),
        }
    }
    let unknown =
        Redis::new(&format!("redis+sentinel://127.0.0.1:{}/nosuch", sentinel.port), Duration::from_secs(2)).unwrap();
    match unknown.ping().await {
        Err(RedisError::Io(e)) => assert!(e.contains("does not know master \"nosuch\""), "{e}"),
        other => panic!("expected an unknown-master error, got {other:?}"),
    }
}

/// TLS settings for a private server: its own `tls-port`, a certificate for 127.0.0.1 from
/// `ca`, no client certificates required; sentinels also speak TLS to the master.
fn tls_conf(ca: &berth_tls::testing::TestCa, dir: &std::path::Path, tls_port: u16) -> String {
    let (cert, key) = ca.issue(&["127.0.0.1"]).write(dir, &format!("redis-{tls_port}"));
    let ca_file = ca.write_ca(dir);
    format!(
        "tls-port {tls_port}\ntls-cert-file {}\ntls-key-file {}\ntls-ca-cert-file {}\ntls-auth-clients no\ntls-replication yes\n",
        cert.display(),
        key.display(),
        ca_file.display()
    )
}

/// `rediss://` with an ACL user whose password needs percent-encoding: the server's
/// certificate is checked against the configured CA, a wrong CA and plain TCP are refused.
#[tokio::test]
async fn tls_with_an_acl_user() {
    let ca = berth_tls::testing::TestCa::new("Redis test CA");
    let certs = tempfile::tempdir().unwrap();
    let tp = free_port();
    let acl = "user default off\nuser berth on >p@ss:w0rd ~* &* +@all\n";
    let Some(_p) = private(&format!("{}{acl}", tls_conf(&ca, certs.path(), tp)), false) else { return };
    let ca_file = certs.path().join("ca.crt");
    let url = format!("rediss://berth:p%40ss%3Aw0rd@127.0.0.1:{tp}/2");
    let r = Redis::with_tls_ca(&url, Duration::from_secs(2), Some(&ca_file)).unwrap();
    r.ping().await.unwrap();
    r.cmd(&[b"SET", b"k", b"over tls"]).await.unwrap();
    assert_eq!(r.cmd(&[b"GET", b"k"]).await.unwrap(), Value::Str(b"over tls".to_vec()));
    assert!(lock::try_acquire(&r, "tls-lock", Duration::from_secs(5)).await.unwrap().is_some());

    let wrong =
        Redis::with_tls_ca(&format!("rediss://berth:nope@127.0.0.1:{tp}"), Duration::from_secs(2), Some(&ca_file))
            .unwrap();
    match wrong.ping().await {
        Err(RedisError::Server(e)) => assert!(e.contains("authentication failed") && e.contains("WRONGPASS"), "{e}"),
        other => panic!("expected an authentication failure, got {other:?}"),
    }

    let other_ca = berth_tls::testing::TestCa::new("someone else").write_ca(&certs.path().join("other"));
    let stranger = Redis::with_tls_ca(&url, Duration::from_secs(2), Some(&other_ca)).unwrap();
    match stranger.ping().await {
        Err(RedisError::Io(e)) => assert!(e.contains("TLS handshake") && e.contains("UnknownIssuer"), "{e}"),
        other => panic!("expected a certificate error, got {other:?}"),
    }
    let plain = Redis::new(&format!("redis://berth:p%40ss%3Aw0rd@127.0.0.1:{tp}"), Duration::from_secs(1)).unwrap();
    assert!(plain.ping().await.is_err(), "plain RESP on the TLS port");

    match Redis::with_tls_ca(&url, Duration::from_secs(2), Some(&certs.path().join("missing.crt"))) {
        Err(e @ RedisError::TlsCa(_)) => assert!(e.to_string().starts_with("redis.tls_ca: cannot read"), "{e}"),
        other => panic!("expected a CA file error, got {other:?}"),
    }
}

/// `rediss+sentinel://`: the sentinel and the master it names are both reached over TLS.
#[tokio::test]
async fn tls_via_sentinel() {
    let ca = berth_tls::testing::TestCa::new("Redis test CA");
    let certs = tempfile::tempdir().unwrap();
    let (mtp, stp) = (free_port(), free_port());
    let Some(_master) = private(&tls_conf(&ca, certs.path(), mtp), false) else { return };
    let sentinel_conf = format!("{}sentinel monitor berthmaster 127.0.0.1 {mtp} 1\n", tls_conf(&ca, certs.path(), stp));
    let Some(_sentinel) = private(&sentinel_conf, true) else { return };
    let url = format!("rediss+sentinel://127.0.0.1:{stp}/berthmaster");
    let r = Redis::with_tls_ca(&url, Duration::from_secs(2), Some(&certs.path().join("ca.crt"))).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match r.ping().await {
            Ok(()) => break,
            Err(e) if Instant::now() < deadline => {
                eprintln!("waiting for the sentinel: {e}");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => panic!("sentinel never answered over TLS: {e}"),
        }
    }
    r.cmd(&[b"SET", b"k", b"via sentinel"]).await.unwrap();
    assert_eq!(r.cmd(&[b"GET", b"k"]).await.unwrap(), Value::Str(b"via sentinel".to_vec()));
}
