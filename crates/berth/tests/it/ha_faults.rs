//! Fault tests with real parts: a PostgreSQL primary and synchronous standby, two Berth
//! instances on shared storage, clients pushing while things break. Timings are printed
//! (run with `--nocapture`) and recorded in docs/ha.md.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::ha_postgres::start_instance_with;
use crate::pgpair::{self, PgPair};
use crate::support::*;

/// One image push that reports failure instead of panicking: blobs, then the manifest
/// under `tag`. `Ok` means the registry acknowledged the manifest (201).
async fn try_push(c: &reqwest::Client, s: &Server, repo: &str, tag: &str) -> Result<String, String> {
    let config = format!(r#"{{"architecture":"amd64","os":"linux","seed":"{tag}"}}"#);
    let layer = format!("layer for {tag}");
    let mut digests = Vec::new();
    for bytes in [config.as_bytes(), layer.as_bytes()] {
        let d = sha256(bytes);
        let r = c
            .post(s.url(&format!("/v2/{repo}/blobs/uploads/?digest={d}")))
            .body(bytes.to_vec())
            .send()
            .await
            .map_err(|e| e.to_string())?;
        if r.status() != 201 {
            return Err(format!("blob: {}", r.status()));
        }
        digests.push(d);
    }
    let m = image_manifest((&digests[0], config.len()), &[(&digests[1], layer.len())]);
    let r = c
        .put(s.url(&format!("/v2/{repo}/manifests/{tag}")))
        .header("content-type", "application/vnd.oci.image.manifest.v1+json")
        .body(m.clone())
        .send()
        .await
        .map_err(|e| e.to_string())?;
    if r.status() != 201 {
        return Err(format!("manifest: {} {}", r.status(), r.text().await.unwrap_or_default()));
    }
    Ok(sha256(m.as_bytes()))
}

fn admin_client() -> reqwest::Client {
    use base64::Engine;
    let token = base64::engine::general_purpose::STANDARD.encode(format!("admin:{ADMIN_PASSWORD}"));
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(reqwest::header::AUTHORIZATION, format!("Basic {token}").parse().unwrap());
    reqwest::Client::builder().default_headers(headers).timeout(Duration::from_secs(30)).build().unwrap()
}

const FAST_FAIL: [(&str, &str); 3] = [
    ("BERTH_DATABASE_CONNECT_TIMEOUT_SECS", "2"),
    ("BERTH_DATABASE_ACQUIRE_TIMEOUT_SECS", "3"),
    ("BERTH_DATABASE_STATEMENT_TIMEOUT_SECS", "5"),
];

/// Kill the primary during pushes, promote the standby: both instances reach the new
/// primary by themselves, and every push that was acknowledged is still there.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn primary_dies_standby_promoted_no_acknowledged_push_lost() {
    if !pgpair::available() {
        return;
    }
    let pg = PgPair::start(true);
    let tmp = tempfile::tempdir().unwrap();
    let storage = tmp.path().join("shared-storage");
    let a = Arc::new(start_instance_with(&tmp.path().join("a"), &pg.url(), &storage, &FAST_FAIL));
    let b = Arc::new(start_instance_with(&tmp.path().join("b"), &pg.url(), &storage, &FAST_FAIL));
    let c = admin_client();

    let stop = Arc::new(AtomicBool::new(false));
    let log: Arc<std::sync::Mutex<Vec<(Instant, String, Result<String, String>)>>> = Default::default();
    let pusher = {
        let (a, b, c, stop, log) = (a.clone(), b.clone(), c.clone(), stop.clone(), log.clone());
        tokio::spawn(async move {
            let mut i = 0u32;
            while !stop.load(Ordering::Relaxed) {
                let via = if i % 2 == 0 { &a } else { &b };
                let tag = format!("t{i}");
                let r = try_push(&c, via, "library/failover", &tag).await;
                log.lock().unwrap().push((Instant::now(), tag, r));
                i += 1;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    };
    let acknowledged = |log: &[(Instant, String, Result<String, String>)]| log.iter().filter(|e| e.2.is_ok()).count();
    wait_for(Duration::from_secs(60), || acknowledged(&log.lock().unwrap()) >= 20).await;

    let crashed_at = Instant::now();
    pg.primary.crash();
    // The operator (or a failover manager) notices and promotes after a moment; requests
    // meanwhile fail fast with 503 rather than hanging.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let promoted_at = Instant::now();
    pg.promote_standby();
    let promote_took = promoted_at.elapsed();
    wait_for(Duration::from_secs(60), || log.lock().unwrap().iter().any(|(at, _, r)| *at > promoted_at && r.is_ok()))
        .await;
    let recovered_at =
        log.lock().unwrap().iter().find(|(at, _, r)| *at > promoted_at && r.is_ok()).map(|e| e.0).unwrap();
    let before = acknowledged(&log.lock().unwrap());
    wait_for(Duration::from_secs(60), || acknowledged(&log.lock().unwrap()) >= before + 20).await;
    stop.store(true, Ordering::Relaxed);
    pusher.await.unwrap();

    let log = log.lock().unwrap();
    let failures: Vec<_> = log.iter().filter(|e| e.2.is_err()).collect();
    let longest_failure = failures
        .iter()
        .map(|e| e.0)
        .zip(failures.iter().map(|e| e.0).skip(1))
        .map(|(x, y)| y - x)
        .max()
        .unwrap_or_default();
    eprintln!(
        "failover: {} pushes, {} acknowledged, {} refused; primary crashed at 0 ms, standby promoted at {} ms (pg_ctl promote took {} ms), first acknowledged push at {} ms = {} ms after promotion; longest gap between refusals {} ms",
        log.len(),
        acknowledged(&log),
        failures.len(),
        (promoted_at - crashed_at).as_millis(),
        promote_took.as_millis(),
        (recovered_at - crashed_at).as_millis(),
        (recovered_at - promoted_at).as_millis(),
        longest_failure.as_millis()
    );
    for (_, _, r) in failures.iter().take(3) {
        eprintln!("  refused: {r:?}");
    }
    // No instance was restarted. Every acknowledged push is there, through both.
    for (_, tag, r) in log.iter() {
        if let Ok(digest) = r {
            for s in [&a, &b] {
                let res = c
                    .head(s.url(&format!("/v2/library/failover/manifests/{tag}")))
                    .header("accept", "application/vnd.oci.image.manifest.v1+json")
                    .send()
                    .await
                    .unwrap();
                assert_eq!(res.status(), 200, "acknowledged {tag} lost");
                assert_eq!(header(&res, "docker-content-digest"), *digest, "{tag}");
            }
        }
    }
    // Refusals were clean, fast errors, not hangs.
    for (_, tag, r) in log.iter() {
        if let Err(e) = r {
            assert!(e.contains("503") || e.contains("500") || e.contains("blob"), "{tag}: {e}");
        }
    }
}

/// With synchronous replication and the standby down, a commit cannot be confirmed:
/// writes must fail within the statement timeout (not hang) and work again, retried,
/// once the standby is back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn synchronous_standby_down_writes_time_out_cleanly() {
    if !pgpair::available() {
        return;
    }
    let pg = PgPair::start(true);
    let tmp = tempfile::tempdir().unwrap();
    let a = start_instance_with(&tmp.path().join("a"), &pg.url(), &tmp.path().join("storage"), &FAST_FAIL);
    let c = admin_client();
    try_push(&c, &a, "library/sync", "before").await.expect("push with both nodes up");
    pg.standby.crash();
    let t0 = Instant::now();
    let r = try_push(&c, &a, "library/sync", "during").await;
    let took = t0.elapsed();
    eprintln!("standby down: push answered after {} ms: {r:?}", took.as_millis());
    assert!(r.is_err(), "cannot be acknowledged without the synchronous standby");
    assert!(took < Duration::from_secs(20), "bounded by the statement timeout: {took:?}");
    pg.standby.restart();
    wait_for(Duration::from_secs(60), || {
        pg.primary.psql("postgres", "SELECT sync_state FROM pg_stat_replication").unwrap_or_default() == "sync"
    })
    .await;
    let digest = try_push(&c, &a, "library/sync", "during").await.expect("the retry succeeds");
    let r = c
        .head(a.url("/v2/library/sync/manifests/during"))
        .header("accept", "application/vnd.oci.image.manifest.v1+json")
        .send()
        .await
        .unwrap();
    assert_eq!(header(&r, "docker-content-digest"), digest);
}

async fn wait_for(limit: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !done() {
        assert!(Instant::now() < deadline, "condition not reached within {limit:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
