use super::*;
use berth_core::Algorithm;
use berth_core::blobstore::BodyError;

fn body(chunks: Vec<Result<Bytes, BodyError>>) -> ByteStream {
    struct It(std::vec::IntoIter<Result<Bytes, BodyError>>);
    impl futures_core::Stream for It {
        type Item = Result<Bytes, BodyError>;
        fn poll_next(
            mut self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<Option<Self::Item>> {
            std::task::Poll::Ready(self.0.next())
        }
    }
    Box::pin(It(chunks.into_iter()))
}

async fn read_all(r: BlobReader) -> Vec<u8> {
    let mut body = r.body;
    let mut out = Vec::new();
    while let Some(c) = std::future::poll_fn(|cx| body.as_mut().poll_next(cx)).await {
        out.extend_from_slice(&c.unwrap());
    }
    out
}

const ID: &str = "0f0e0d0c-0000-4000-8000-000000000001";

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() { out.extend(files_under(&p)) } else { out.push(p) }
        }
    }
    out
}

#[tokio::test]
async fn parts_commit_into_distribution_layout() {
    let tmp = tempfile::tempdir().unwrap();
    let store = FsBlobStore::open(tmp.path()).unwrap();
    let repo: RepoName = "a/b".parse().unwrap();
    let big = vec![7u8; WRITE_BLOCK * 2 + 5];
    let p1 = store
        .write_part(
            &repo,
            ID,
            Hasher::new(Algorithm::Sha256),
            body(vec![Ok(Bytes::from_static(b"hello ")), Ok(Bytes::from(big.clone()))]),
            None,
        )
        .await
        .unwrap();
    let p2 = store.write_part(&repo, ID, p1.hasher, body(vec![Ok(Bytes::from_static(b"world"))]), None).await.unwrap();
    let mut all = b"hello ".to_vec();
    all.extend_from_slice(&big);
    all.extend_from_slice(b"world");
    let digest = p2.hasher.finish();
    assert_eq!(digest, Digest::sha256(&all));
    let parts = vec![p1.name, p2.name];
    assert_eq!(
        store.hash_parts(&repo, ID, &parts, Hasher::new(Algorithm::Sha512)).await.unwrap(),
        Digest::of(Algorithm::Sha512, &all)
    );
    store.commit(&repo, ID, &parts, &digest).await.unwrap();
    let path = tmp.path().join(format!("docker/registry/v2/blobs/sha256/{}/{}/data", &digest.hex()[..2], digest.hex()));
    assert_eq!(fs::read(&path).unwrap(), all);
    assert_eq!(store.stat(&digest).await.unwrap(), Some(all.len() as u64));
    // Committing the same content again is a no-op.
    store.commit(&repo, ID, &parts, &digest).await.unwrap();
    let ranged = read_all(store.open(&digest, 3, 10).await.unwrap()).await;
    assert_eq!(ranged, &all[3..13]);
    assert_eq!(read_all(store.open(&digest, 0, all.len() as u64).await.unwrap()).await, all);
    store.delete_upload(&repo, ID).await.unwrap();
    assert!(files_under(&tmp.path().join("docker/registry/v2/repositories")).is_empty());
    store.delete(&digest).await.unwrap();
    assert_eq!(store.stat(&digest).await.unwrap(), None);
    assert!(!path.parent().unwrap().exists(), "the blob's directory goes with its data");
    store.delete(&digest).await.unwrap();
}

#[tokio::test]
async fn deleting_a_blob_removes_whatever_its_directory_holds() {
    let tmp = tempfile::tempdir().unwrap();
    let store = FsBlobStore::open(tmp.path()).unwrap();
    let digest = Digest::sha256(b"odd");
    let dir = blob_dir(tmp.path(), &digest);
    // A directory without `data` (a crash between mkdir and rename) and with a stray file.
    fs::create_dir_all(dir.join("sub")).unwrap();
    fs::write(dir.join("stray"), b"x").unwrap();
    store.delete(&digest).await.unwrap();
    assert!(!dir.exists());
    // Absent altogether: fine.
    store.delete(&digest).await.unwrap();
}

#[tokio::test]
async fn finds_old_upload_dirs() {
    let tmp = tempfile::tempdir().unwrap();
    let store = FsBlobStore::open(tmp.path()).unwrap();
    let repo: RepoName = "x/y".parse().unwrap();
    store
        .write_part(&repo, ID, Hasher::new(Algorithm::Sha256), body(vec![Ok(Bytes::from_static(b"z"))]), None)
        .await
        .unwrap();
    let past = std::time::SystemTime::now() - std::time::Duration::from_secs(60);
    assert!(store.upload_dirs_older_than(past).await.unwrap().is_empty());
    let future = std::time::SystemTime::now() + std::time::Duration::from_secs(60);
    assert_eq!(store.upload_dirs_older_than(future).await.unwrap(), vec![(repo, ID.to_string())]);
}

#[tokio::test]
async fn failed_body_leaves_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let store = FsBlobStore::open(tmp.path()).unwrap();
    let repo: RepoName = "r".parse().unwrap();
    let err = store
        .write_part(
            &repo,
            ID,
            Hasher::new(Algorithm::Sha256),
            body(vec![Ok(Bytes::from_static(b"abc")), Err(BodyError("reset".into()))]),
            None,
        )
        .await
        .unwrap_err();
    assert!(matches!(err, WriteError::Body(_)));
    let err = store
        .write_part(&repo, ID, Hasher::new(Algorithm::Sha256), body(vec![Ok(Bytes::from_static(b"abcdef"))]), Some(4))
        .await
        .unwrap_err();
    assert!(matches!(err, WriteError::TooLong { limit: 4 }));
    assert!(files_under(tmp.path()).is_empty(), "{:?}", files_under(tmp.path()));
}

#[tokio::test]
async fn hostile_ids_and_missing_blobs() {
    let tmp = tempfile::tempdir().unwrap();
    let store = FsBlobStore::open(tmp.path()).unwrap();
    let repo: RepoName = "r".parse().unwrap();
    let err = store.write_part(&repo, "../../x", Hasher::new(Algorithm::Sha256), body(vec![]), None).await.unwrap_err();
    assert!(matches!(err, WriteError::Io(e) if e.kind() == io::ErrorKind::NotFound));
    assert!(store.delete_part(&repo, ID, "../x").await.is_err());
    let missing = Digest::sha256(b"nothing");
    assert!(store.open(&missing, 0, 1).await.is_err());
    assert_eq!(store.stat(&missing).await.unwrap(), None);
    store.check().await.unwrap();
}

/// A FIFO blocks whoever opens it until the other end shows up: a stand-in for a hung
/// mount that nothing can interrupt.
fn fifo(path: &Path) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    let ok = std::process::Command::new("mkfifo").arg(path).status().unwrap();
    assert!(ok.success(), "mkfifo");
}

#[test]
fn a_hung_file_fails_within_the_stall_limit() {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let dir = tempfile::tempdir().unwrap();
    rt.block_on(async {
        let limit = Duration::from_millis(300);
        let store = FsBlobStore::open(dir.path()).unwrap().with_stall_limit(limit);
        let digest = Digest::sha256(b"hung");
        fifo(&store.blob_path(&digest));
        let t0 = std::time::Instant::now();
        let err = store.open(&digest, 0, 4).await.err().expect("cannot open a hung file");
        assert_eq!(err.kind(), io::ErrorKind::TimedOut, "{err}");
        assert!(err.to_string().contains("no progress for 0.3 s while opening a blob"), "{err}");
        assert!(t0.elapsed() < Duration::from_secs(2), "{:?}", t0.elapsed());

        let repo: RepoName = "hung/repo".parse().unwrap();
        let part = store.upload_dir(&repo, ID).unwrap().join("0123456789abcdef0123456789abcdef");
        fifo(&part);
        let err = store
            .hash_parts(&repo, ID, &["0123456789abcdef0123456789abcdef".into()], Hasher::new(Algorithm::Sha512))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut, "{err}");
    });
    // The threads left opening the FIFOs never finish (that is the point): a runtime
    // dropped the usual way would wait for them. Unblocking them from the test raced with
    // their open when the machine was slow to start them.
    rt.shutdown_background();
}

/// A slow client is not a stalled disk: chunks arriving further apart in total than the
/// limit, but each within it, are written.
#[tokio::test]
async fn a_slow_client_is_not_a_stall() {
    let dir = tempfile::tempdir().unwrap();
    let store = FsBlobStore::open(dir.path()).unwrap().with_stall_limit(Duration::from_millis(300));
    let repo: RepoName = "slow/repo".parse().unwrap();
    struct Slow(u32, Pin<Box<tokio::time::Sleep>>);
    impl futures_core::Stream for Slow {
        type Item = Result<Bytes, BodyError>;
        fn poll_next(mut self: Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> std::task::Poll<Option<Self::Item>> {
            if self.0 == 0 {
                return std::task::Poll::Ready(None);
            }
            match self.1.as_mut().poll(cx) {
                std::task::Poll::Ready(()) => {
                    self.0 -= 1;
                    let next = tokio::time::Instant::now() + Duration::from_millis(100);
                    self.1.as_mut().reset(next);
                    std::task::Poll::Ready(Some(Ok(Bytes::from(vec![7u8; 10_000]))))
                }
                std::task::Poll::Pending => std::task::Poll::Pending,
            }
        }
    }
    use std::future::Future;
    use std::pin::Pin;
    let body: ByteStream = Box::pin(Slow(8, Box::pin(tokio::time::sleep(Duration::from_millis(100)))));
    let part = store.write_part(&repo, ID, Hasher::new(Algorithm::Sha256), body, None).await.expect("slow but steady");
    assert_eq!(part.len, 80_000);
}
