//! `S3BlobStore` against a real Garage server (see `support`). Without Garage the tests
//! print a line and pass, except in CI (`CI=true`), where they fail.

mod support;

use std::io;
use std::time::{Duration, Instant, SystemTime};

use berth_blob_s3::{S3BlobStore, S3Options};
use berth_core::blobstore::{BlobStore, BodyError, WriteError};
use berth_core::{Algorithm, Digest, Hasher, RepoName};
use bytes::Bytes;
use futures_util::StreamExt;

use support::{body, bytes, chunked, read_all};

const ID: &str = "0f0e0d0c-0000-4000-8000-000000000001";
const MIB: usize = 1024 * 1024;

fn repo(s: &str) -> RepoName {
    s.parse().unwrap()
}

/// Writes `chunks` as one part each (as PATCH requests would) and returns the part
/// names and the digest of the whole.
async fn push_parts(store: &S3BlobStore, repo: &RepoName, id: &str, chunks: &[&[u8]]) -> (Vec<String>, Digest) {
    let mut hasher = Hasher::new(Algorithm::Sha256);
    let mut names = Vec::new();
    for c in chunks {
        let p = store.write_part(repo, id, hasher, chunked(c, 64 * 1024), None).await.unwrap();
        assert_eq!(p.len, c.len() as u64);
        hasher = p.hasher;
        names.push(p.name);
    }
    (names, hasher.finish())
}

async fn uploads(store: &S3BlobStore) -> Vec<(RepoName, String)> {
    store.upload_dirs_older_than(SystemTime::now() + Duration::from_secs(3600)).await.unwrap()
}

#[tokio::test]
async fn every_trait_method_round_trips() {
    let g = garage_or_skip!();
    let store = S3BlobStore::open(g.options(&g.bucket("roundtrip"))).await.unwrap();
    let repo = repo("library/alpine");
    let a = bytes(300_000, 1);
    let b = b"world".to_vec();
    let (parts, digest) = push_parts(&store, &repo, ID, &[&a, &b]).await;
    let all = [a.clone(), b.clone()].concat();
    assert_eq!(digest, Digest::sha256(&all));

    // hash_parts re-reads the parts (here for sha512).
    assert_eq!(
        store.hash_parts(&repo, ID, &parts, Hasher::new(Algorithm::Sha512)).await.unwrap(),
        Digest::of(Algorithm::Sha512, &all)
    );

    // The upload is listed by age (its newest part's LastModified).
    assert_eq!(uploads(&store).await, vec![(repo.clone(), ID.to_string())]);
    let an_hour_ago = SystemTime::now() - Duration::from_secs(3600);
    assert!(store.upload_dirs_older_than(an_hour_ago).await.unwrap().is_empty());

    assert_eq!(store.stat(&digest).await.unwrap(), None);
    store.commit(&repo, ID, &parts, &digest).await.unwrap();
    assert_eq!(store.stat(&digest).await.unwrap(), Some(all.len() as u64));
    assert_eq!(
        store.blob_key(&digest),
        format!("some/prefix/docker/registry/v2/blobs/sha256/{}/{}/data", &digest.hex()[..2], digest.hex())
    );
    // Committing the same content again is a no-op.
    store.commit(&repo, ID, &parts, &digest).await.unwrap();

    assert_eq!(read_all(store.open(&digest, 0, all.len() as u64).await.unwrap()).await, all);
    assert_eq!(read_all(store.open(&digest, 3, 10).await.unwrap()).await, &all[3..13]);
    assert_eq!(read_all(store.open(&digest, all.len() as u64 - 5, 5).await.unwrap()).await, b"world");
    assert_eq!(read_all(store.open(&digest, 7, 0).await.unwrap()).await, b"");

    // delete_part removes one part; delete_upload the rest (absent is fine).
    store.delete_part(&repo, ID, &parts[1]).await.unwrap();
    store.delete_part(&repo, ID, &parts[1]).await.unwrap();
    let err = store.hash_parts(&repo, ID, &parts, Hasher::new(Algorithm::Sha256)).await.unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::NotFound, "{err}");
    store.delete_upload(&repo, ID).await.unwrap();
    store.delete_upload(&repo, ID).await.unwrap();
    assert!(uploads(&store).await.is_empty());

    store.delete(&digest).await.unwrap();
    store.delete(&digest).await.unwrap();
    assert_eq!(store.stat(&digest).await.unwrap(), None);
    let err = store.open(&digest, 0, 1).await.err().unwrap();
    assert_eq!(err.kind(), io::ErrorKind::NotFound, "{err}");

    store.check().await.unwrap();
    // An id that is not ours is no upload.
    let err = store.write_part(&repo, "../x", Hasher::new(Algorithm::Sha256), body(vec![]), None).await.unwrap_err();
    assert!(matches!(err, WriteError::Io(ref e) if e.kind() == io::ErrorKind::NotFound), "{err}");
}

#[tokio::test]
async fn blob_listing_pages_in_digest_order_and_ownership_is_recorded() {
    let g = garage_or_skip!();
    let store = S3BlobStore::open(g.options(&g.bucket("bloblist"))).await.unwrap();
    assert!(store.list_blobs(None, 10).await.unwrap().is_empty());
    assert!(!store.owned().await.unwrap());
    let r = repo("lib/list");
    let mut all = Vec::new();
    for i in 0..12u8 {
        let id = format!("0f0e0d0c-0000-4000-8000-0000000001{i:02x}");
        let content = vec![i; 10 + usize::from(i)];
        let (parts, digest) = push_parts(&store, &r, &id, &[&content]).await;
        store.commit(&r, &id, &parts, &digest).await.unwrap();
        store.delete_upload(&r, &id).await.unwrap();
        all.push((digest, content.len() as u64));
    }
    all.sort();
    let mut seen = Vec::new();
    let mut after: Option<Digest> = None;
    loop {
        let page = store.list_blobs(after.as_ref(), 5).await.unwrap();
        assert!(page.len() <= 5);
        let Some(last) = page.last() else { break };
        after = Some(last.digest.clone());
        assert!(page.iter().all(|b| b.modified.is_some()));
        seen.extend(page.into_iter().map(|b| (b.digest, b.size)));
    }
    assert_eq!(seen, all);
    store.mark_owned().await.unwrap();
    assert!(store.owned().await.unwrap());
    // The marker is no blob.
    assert_eq!(store.list_blobs(None, 100).await.unwrap().len(), all.len());
}

#[tokio::test]
async fn upload_listing_walks_nested_repositories_and_skips_fresh_uploads() {
    let g = garage_or_skip!();
    let store = S3BlobStore::open(g.options(&g.bucket("listing"))).await.unwrap();
    let old = "00000000-0000-4000-8000-00000000000a";
    push_parts(&store, &repo("a"), old, &[b"x"]).await;
    push_parts(&store, &repo("team/x/deep"), old, &[b"y"]).await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let cutoff = SystemTime::now();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let fresh = "00000000-0000-4000-8000-00000000000b";
    push_parts(&store, &repo("a"), fresh, &[b"z"]).await;
    let mut got = store.upload_dirs_older_than(cutoff).await.unwrap();
    got.sort_by(|a, b| a.0.as_str().cmp(b.0.as_str()));
    assert_eq!(got, vec![(repo("a"), old.to_string()), (repo("team/x/deep"), old.to_string())]);
    assert_eq!(uploads(&store).await.len(), 3);
}

#[tokio::test]
async fn big_parts_commit_server_side() {
    let g = garage_or_skip!();
    let store = S3BlobStore::open(g.options(&g.bucket("copy"))).await.unwrap();
    let repo = repo("big/copy");
    let (a, b, c) = (bytes(6 * MIB, 2), bytes(5 * MIB + 1, 3), bytes(3 * MIB + 17, 4));
    let (parts, digest) = push_parts(&store, &repo, ID, &[&a, &b, &c]).await;
    store.commit(&repo, ID, &parts, &digest).await.unwrap();
    assert_eq!(store.commit_counts().server_side, 1);
    assert_eq!(store.commit_counts().streamed, 0);
    let got = read_all(store.open(&digest, 0, (a.len() + b.len() + c.len()) as u64).await.unwrap()).await;
    assert_eq!(Digest::sha256(&got), digest);
    assert_eq!(got, [a, b, c].concat());

    // One part (even one written as a multipart upload itself) is one CopyObject.
    let id2 = "0f0e0d0c-0000-4000-8000-000000000002";
    let one = bytes(20 * MIB + 3, 5);
    let (parts, digest) = push_parts(&store, &repo, id2, &[&one]).await;
    store.commit(&repo, id2, &parts, &digest).await.unwrap();
    assert_eq!(store.commit_counts().server_side, 2);
    assert_eq!(read_all(store.open(&digest, 0, one.len() as u64).await.unwrap()).await, one);
    let tail = read_all(store.open(&digest, 9 * MIB as u64, 11 * MIB as u64 + 3).await.unwrap()).await;
    assert_eq!(tail, &one[9 * MIB..]);
}

#[tokio::test]
async fn small_parts_commit_by_streaming() {
    let g = garage_or_skip!();
    let store = S3BlobStore::open(g.options(&g.bucket("stream"))).await.unwrap();
    let repo = repo("small/parts");
    // Small: one PUT. Empty parts are skipped.
    let (parts, digest) = push_parts(&store, &repo, ID, &[b"hello ", b"", b"there"]).await;
    store.commit(&repo, ID, &parts, &digest).await.unwrap();
    assert_eq!(read_all(store.open(&digest, 0, 11).await.unwrap()).await, b"hello there");

    // Larger than a part: one multipart upload fed from the parts. A big part after a
    // small one also forces streaming (S3 wants every part but the last ≥ 5 MiB).
    let id2 = "0f0e0d0c-0000-4000-8000-000000000002";
    let chunks: Vec<Vec<u8>> = (0..6).map(|i| bytes(3 * MIB + i, 10 + i as u64)).chain([bytes(7 * MIB, 99)]).collect();
    let refs: Vec<&[u8]> = chunks.iter().map(|c| c.as_slice()).collect();
    let (parts, digest) = push_parts(&store, &repo, id2, &refs).await;
    store.commit(&repo, id2, &parts, &digest).await.unwrap();
    let all = chunks.concat();
    assert_eq!(read_all(store.open(&digest, 0, all.len() as u64).await.unwrap()).await, all);

    // The empty blob.
    let id3 = "0f0e0d0c-0000-4000-8000-000000000003";
    let empty = Digest::sha256(b"");
    store.commit(&repo, id3, &[], &empty).await.unwrap();
    assert_eq!(store.stat(&empty).await.unwrap(), Some(0));
    assert_eq!(store.commit_counts().streamed, 3);
    assert_eq!(store.commit_counts().server_side, 0);
}

#[tokio::test]
async fn blob_key_never_appears_before_commit_completes() {
    let g = garage_or_skip!();
    let bucket = g.bucket("atomic");
    let store = S3BlobStore::open(g.options(&bucket)).await.unwrap();
    let observer = S3BlobStore::open(g.options(&bucket)).await.unwrap();
    let repo = repo("atomic/commit");
    // Small parts stream through Berth: the slowest commit, several UploadPart calls.
    let chunks: Vec<Vec<u8>> = (0..12).map(|i| bytes(3 * MIB, 40 + i)).collect();
    let refs: Vec<&[u8]> = chunks.iter().map(|c| c.as_slice()).collect();
    let (parts, digest) = push_parts(&store, &repo, ID, &refs).await;
    let total = (chunks.len() * 3 * MIB) as u64;
    let url = observer.presigned_get(&digest, Duration::from_secs(60)).unwrap();
    let http = reqwest::Client::new();

    let commit = {
        let (store, repo, parts, digest) = (store.clone(), repo.clone(), parts.clone(), digest.clone());
        tokio::spawn(async move { store.commit(&repo, ID, &parts, &digest).await })
    };
    let (mut absent, mut present) = (0, 0);
    while !commit.is_finished() {
        match observer.stat(&digest).await.unwrap() {
            None => absent += 1,
            Some(n) => {
                assert_eq!(n, total, "partial blob visible during commit");
                present += 1;
            }
        }
        let res = http.get(&url).send().await.unwrap();
        if res.status().is_success() {
            assert_eq!(res.bytes().await.unwrap().len() as u64, total, "partial blob readable during commit");
        } else {
            assert_eq!(res.status(), reqwest::StatusCode::NOT_FOUND);
        }
    }
    commit.await.unwrap().unwrap();
    assert!(absent > 0, "the commit finished before it could be observed");
    eprintln!("observed the blob absent {absent} times, complete {present} times, never partial");
    assert_eq!(observer.stat(&digest).await.unwrap(), Some(total));
}

#[tokio::test]
async fn failed_writes_leave_nothing_behind() {
    let g = garage_or_skip!();
    let store = S3BlobStore::open(g.options(&g.bucket("failed"))).await.unwrap();
    let repo = repo("fail/me");
    // Over the limit, in the first (buffered) part and after a multipart upload started.
    for (len, limit) in [(100, 50), (20 * MIB, 17 * MIB as u64)] {
        let err = store
            .write_part(&repo, ID, Hasher::new(Algorithm::Sha256), chunked(&bytes(len, 7), MIB / 2), Some(limit))
            .await
            .unwrap_err();
        assert!(matches!(err, WriteError::TooLong { limit: l } if l == limit), "{err}");
    }
    // The client's body breaks off.
    let broken = Box::pin(futures_util::stream::iter(vec![
        Ok(Bytes::from(bytes(9 * MIB, 8))),
        Err(BodyError("connection closed".into())),
    ]));
    let err = store.write_part(&repo, ID, Hasher::new(Algorithm::Sha256), broken, None).await.unwrap_err();
    assert!(matches!(err, WriteError::Body(_)), "{err}");
    // The request is dropped (client gone) while a multipart upload is under way.
    let stalled = Box::pin(
        futures_util::stream::iter(vec![Ok::<_, BodyError>(Bytes::from(bytes(9 * MIB, 9)))])
            .chain(futures_util::stream::pending()),
    );
    let write = store.write_part(&repo, ID, Hasher::new(Algorithm::Sha256), stalled, None);
    assert!(tokio::time::timeout(Duration::from_secs(2), write).await.is_err());
    store.delete_upload(&repo, ID).await.unwrap();
    assert!(uploads(&store).await.is_empty());
}

#[tokio::test]
async fn presigned_url_serves_the_blob_to_a_plain_http_client() {
    let g = garage_or_skip!();
    let store = S3BlobStore::open(g.options(&g.bucket("presign"))).await.unwrap();
    let repo = repo("presign/me");
    let data = bytes(1_000_003, 9);
    let (parts, digest) = push_parts(&store, &repo, ID, &[&data]).await;
    store.commit(&repo, ID, &parts, &digest).await.unwrap();

    let url = store.presigned_get(&digest, Duration::from_secs(300)).unwrap();
    assert!(url.starts_with(&g.endpoint) && url.contains("X-Amz-Signature="), "{url}");
    let res = reqwest::get(&url).await.unwrap();
    assert_eq!(res.status(), reqwest::StatusCode::OK);
    assert_eq!(res.bytes().await.unwrap(), data);
    // Range requests work on the redirect target too (clients resume downloads).
    let res = reqwest::Client::new().get(&url).header("range", "bytes=10-19").send().await.unwrap();
    assert_eq!(res.status(), reqwest::StatusCode::PARTIAL_CONTENT);
    assert_eq!(res.bytes().await.unwrap(), &data[10..20]);
    // A tampered URL is refused.
    let res = reqwest::get(url.replace("X-Amz-Expires=300", "X-Amz-Expires=301")).await.unwrap();
    assert_eq!(res.status(), reqwest::StatusCode::FORBIDDEN);

    assert_eq!(store.presigned_get(&digest, Duration::ZERO), None);
    assert_eq!(store.presigned_get(&digest, Duration::from_secs(8 * 24 * 3600)), None);
}

async fn open_err(opts: S3Options) -> (io::Error, Duration) {
    let t = Instant::now();
    let err = S3BlobStore::open(opts).await.unwrap_err();
    (err, t.elapsed())
}

#[tokio::test]
async fn open_names_the_problem_quickly() {
    let g = garage_or_skip!();
    let bucket = g.bucket("open");

    let (err, took) = open_err(S3Options { secret_key: "0".repeat(64), ..g.options(&bucket) }).await;
    eprintln!("wrong secret: {err} ({took:?})");
    assert_eq!(err.kind(), io::ErrorKind::PermissionDenied, "{err}");
    assert!(err.to_string().contains(&g.access_key), "{err}");
    assert!(took < Duration::from_secs(5));

    let (err, took) = open_err(S3Options { access_key: format!("GK{}", "0".repeat(24)), ..g.options(&bucket) }).await;
    eprintln!("unknown key: {err} ({took:?})");
    assert_eq!(err.kind(), io::ErrorKind::PermissionDenied, "{err}");
    assert!(took < Duration::from_secs(5));

    let (err, took) = open_err(g.options("no-such-bucket-here")).await;
    eprintln!("missing bucket: {err} ({took:?})");
    assert_eq!(err.kind(), io::ErrorKind::NotFound, "{err}");
    assert!(err.to_string().contains("no-such-bucket-here") && err.to_string().contains("does not exist"), "{err}");
    assert!(took < Duration::from_secs(5));

    let (err, _) = open_err(S3Options { bucket: String::new(), ..g.options(&bucket) }).await;
    assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{err}");
}

#[tokio::test]
async fn unreachable_endpoint_fails_quickly() {
    // A port nobody listens on (bound, then closed).
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let opts = S3Options {
        endpoint: format!("http://127.0.0.1:{port}"),
        region: "garage".into(),
        bucket: "b".into(),
        access_key: "GK0".into(),
        secret_key: "s".into(),
        path_style: true,
        ..S3Options::default()
    };
    let (err, took) = open_err(opts).await;
    eprintln!("unreachable: {err} ({took:?})");
    assert_eq!(err.kind(), io::ErrorKind::ConnectionRefused, "{err}");
    assert!(err.to_string().contains("unreachable") && err.to_string().contains(&port.to_string()), "{err}");
    assert!(took < Duration::from_secs(5), "{took:?}");
}

#[tokio::test]
async fn silent_endpoint_times_out() {
    // Accepts connections and never answers.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = listener.accept().await {
            held.push(s);
        }
    });
    let opts = S3Options {
        endpoint: format!("http://127.0.0.1:{port}"),
        region: "garage".into(),
        bucket: "b".into(),
        access_key: "GK0".into(),
        secret_key: "s".into(),
        path_style: true,
        timeout: Duration::from_millis(500),
        ..S3Options::default()
    };
    let (err, took) = open_err(opts).await;
    eprintln!("silent: {err} ({took:?})");
    assert_eq!(err.kind(), io::ErrorKind::TimedOut, "{err}");
    assert!(took < Duration::from_secs(3), "{took:?}");
}

#[tokio::test]
async fn options_debug_hides_the_secret() {
    let opts = S3Options { secret_key: "very-secret".into(), access_key: "GKabc".into(), ..S3Options::default() };
    let s = format!("{opts:?}");
    assert!(!s.contains("very-secret") && s.contains("GKabc") && s.contains("<hidden>"), "{s}");
}

#[tokio::test]
async fn transient_failures_are_retried_and_broken_reads_resume() {
    let g = garage_or_skip!();
    let bucket = g.bucket("faults");
    let direct = S3BlobStore::open(g.options(&bucket)).await.unwrap();
    let repo = repo("fault/y");
    let data = bytes(6 * MIB + 5, 11);
    let (parts, digest) = push_parts(&direct, &repo, ID, &[&data]).await;
    direct.commit(&repo, ID, &parts, &digest).await.unwrap();

    let proxy = support::proxy::Proxy::start(&g.endpoint).await;
    // Two 503 SlowDown answers, then a connection closed without an answer: the
    // fourth attempt of open's probe gets through.
    proxy.fail_next_connections(2, 1);
    let t = Instant::now();
    let store = S3BlobStore::open(S3Options { endpoint: proxy.url.clone(), ..g.options(&bucket) }).await.unwrap();
    assert_eq!(proxy.injected(), 3);
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());

    // A download cut off twice resumes from where it broke, byte-exact.
    proxy.cut_responses(2, MIB);
    assert_eq!(read_all(store.open(&digest, 0, data.len() as u64).await.unwrap()).await, data);
    assert_eq!(proxy.injected(), 5);
    proxy.cut_responses(1, MIB);
    assert_eq!(read_all(store.open(&digest, 100, 3 * MIB as u64).await.unwrap()).await, &data[100..100 + 3 * MIB]);
    assert_eq!(proxy.injected(), 6);

    // More failures than retries: a clear error, not a hang.
    proxy.cut_responses(10, 0);
    let err = match store.open(&digest, 0, data.len() as u64).await {
        Ok(r) => {
            let mut body = r.body;
            let mut last = Ok(Bytes::new());
            while let Some(c) = body.next().await {
                last = c;
                if last.is_err() {
                    break;
                }
            }
            last.unwrap_err()
        }
        Err(e) => e,
    };
    eprintln!("too many faults: {err}");
    assert!(err.to_string().contains("S3"), "{err}");
}
