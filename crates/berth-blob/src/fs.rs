//! The filesystem driver.
//!
//! Layout (relative to the root, as in CNCF Distribution):
//! - `docker/registry/v2/blobs/<alg>/<2 hex>/<hex>/data` — committed blobs;
//! - `docker/registry/v2/repositories/<name>/_uploads/<id>/<part>` — upload parts.
//!
//! Why parts: every chunk goes to its own file and becomes part of the upload only
//! when the metadata DB records it (compare-and-set on the offset). A stale writer —
//! a frozen instance waking up, a retried request — writes only its own file, which is
//! discarded; it can never overwrite bytes another instance already acknowledged.
//! Nothing here relies on flock or local-only state, so the root can be a shared mount.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use tokio::sync::mpsc;

use crate::background;
use crate::watchdog::{self, DeadlineStream, Progress, run, watch, within};

use berth_core::blobstore::{BlobReader, BlobStore, ByteStream, ListedBlob, OWNED_MARKER, WriteError, WrittenPart};
use berth_core::{Digest, Hasher, RepoName};

/// Writes go to the disk in blocks this large: few syscalls, and the block fits in L2
/// while it is hashed.
const WRITE_BLOCK: usize = 256 * 1024;
/// Buffer size for reading parts (hashing, concatenating).
const READ_CHUNK: usize = 256 * 1024;
/// Blob bytes go to the client in chunks this large: fewer hand-offs between the reading
/// thread, the runtime and the socket per GiB.
const SEND_CHUNK: usize = 1024 * 1024;

pub struct FsBlobStore {
    root: Arc<PathBuf>,
    /// How long an operation may make no progress before it fails (see `watchdog`).
    stall: Duration,
    /// Blobs removed (GC's), counted for [`REMOVALS_PER_SYNC`].
    removals: AtomicU64,
}

/// One removal in this many fsyncs its parent directory, committing the journal
/// transaction that GC's removals fill. Otherwise the next request's fsync commits it,
/// and an upload waits for every unlink GC made since the last commit: on ext4 with GC
/// removing 6,000 blobs a second, that was most of a slow push's time. With the
/// removals committing their own, push p99 during GC of 300,000 blobs fell from 26 to
/// 18 ms (idle 10-12 ms; 14 ms with removals also waiting for uploads' syncs, see
/// `background`), and GC was no slower (docs/benchmarks.md).
const REMOVALS_PER_SYNC: u64 = 16;

/// Default for [`FsBlobStore::with_stall_limit`].
pub const DEFAULT_STALL_LIMIT: Duration = Duration::from_secs(30);

impl FsBlobStore {
    /// Opens (creating if needed) a store rooted at `root`.
    pub fn open(root: &Path) -> io::Result<Self> {
        fs::create_dir_all(root.join("docker/registry/v2/blobs"))?;
        fs::create_dir_all(root.join("docker/registry/v2/repositories"))?;
        Ok(FsBlobStore { root: Arc::new(root.to_path_buf()), stall: DEFAULT_STALL_LIMIT, removals: AtomicU64::new(0) })
    }

    /// Fails operations that make no progress for `limit` (a hung mount) instead of
    /// waiting forever.
    pub fn with_stall_limit(mut self, limit: Duration) -> Self {
        self.stall = limit;
        self
    }

    pub fn blob_path(&self, digest: &Digest) -> PathBuf {
        blob_dir(&self.root, digest).join("data")
    }

    fn upload_dir(&self, repo: &RepoName, id: &str) -> io::Result<PathBuf> {
        // The id comes from a URL: only accept what we generate (a UUID) so it can
        // never name a path outside the upload directory.
        if id.is_empty() || id.len() > 64 || !id.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-') {
            return Err(io::Error::new(io::ErrorKind::NotFound, "no such upload"));
        }
        Ok(self.root.join("docker/registry/v2/repositories").join(repo.as_str()).join("_uploads").join(id))
    }
}

fn blob_dir(root: &Path, digest: &Digest) -> PathBuf {
    let hex = digest.hex();
    root.join("docker/registry/v2/blobs").join(digest.algorithm().as_str()).join(&hex[..2]).join(hex)
}

/// Removes a blob's directory, which holds its `data` file alone: two calls, where
/// `remove_dir_all`'s walk takes seven (open, stat, two reads, unlink, close, rmdir) —
/// GC removes millions. Anything else found there falls back to the walk. Absent is fine.
fn remove_blob_dir(dir: &Path) -> io::Result<()> {
    absent_ok(fs::remove_file(dir.join("data")))?;
    match fs::remove_dir(dir) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => absent_ok(fs::remove_dir_all(dir)),
        _ => Ok(()),
    }
}

/// A removal (or a sync) of something already gone succeeded.
fn absent_ok(r: io::Result<()>) -> io::Result<()> {
    match r {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

fn fsync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// `create_dir_all`, then fsync every directory whose entry was created, so the new
/// path survives a crash.
fn create_dirs_durably(dir: &Path) -> io::Result<()> {
    let mut missing = Vec::new();
    let mut cur = dir;
    while !cur.exists() {
        missing.push(cur.to_path_buf());
        match cur.parent() {
            Some(p) => cur = p,
            None => break,
        }
    }
    if missing.is_empty() {
        return Ok(());
    }
    fs::create_dir_all(dir)?;
    for d in missing.iter().rev() {
        if let Some(parent) = d.parent() {
            fsync_dir(parent)?;
        }
    }
    Ok(())
}

fn part_path(dir: &Path, name: &str) -> io::Result<PathBuf> {
    if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
        return Err(io::Error::new(io::ErrorKind::InvalidData, format!("invalid upload part name {name:?}")));
    }
    Ok(dir.join(name))
}

/// Receives chunks on a blocking thread, hashing and writing them in blocks.
fn write_blocking(
    path: &Path,
    mut hasher: Hasher,
    mut rx: mpsc::Receiver<Bytes>,
    limit: Option<u64>,
    progress: &Progress,
) -> Result<(u64, Hasher, File), WriteError> {
    let mut file = OpenOptions::new().write(true).create_new(true).open(path)?;
    progress.tick();
    let mut buf: Vec<u8> = Vec::with_capacity(WRITE_BLOCK);
    let mut len: u64 = 0;
    while let Some(chunk) = rx.blocking_recv() {
        // Waiting for a slow client is not a stall of the disk.
        progress.tick();
        len += chunk.len() as u64;
        if let Some(limit) = limit
            && len > limit
        {
            return Err(WriteError::TooLong { limit });
        }
        if buf.is_empty() && chunk.len() >= WRITE_BLOCK {
            hasher.update(&chunk);
            file.write_all(&chunk)?;
            progress.tick();
            continue;
        }
        buf.extend_from_slice(&chunk);
        if buf.len() >= WRITE_BLOCK {
            hasher.update(&buf);
            file.write_all(&buf)?;
            progress.tick();
            buf.clear();
        }
    }
    hasher.update(&buf);
    file.write_all(&buf)?;
    Ok((len, hasher, file))
}

#[async_trait]
impl BlobStore for FsBlobStore {
    async fn stat(&self, digest: &Digest) -> io::Result<Option<u64>> {
        match within(self.stall, "reading a blob's size", tokio::fs::metadata(self.blob_path(digest))).await {
            Ok(m) => Ok(Some(m.len())),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn open(&self, digest: &Digest, start: u64, len: u64) -> io::Result<BlobReader> {
        let path = self.blob_path(digest);
        let mut file = run(self.stall, "opening a blob", move |_| {
            let mut f = File::open(path)?;
            if start > 0 {
                f.seek(SeekFrom::Start(start))?;
            }
            Ok(f)
        })
        .await?;
        let (tx, rx) = mpsc::channel::<io::Result<Bytes>>(4);
        tokio::task::spawn_blocking(move || {
            let mut left = len;
            while left > 0 {
                let want = left.min(SEND_CHUNK as u64) as usize;
                // `read_to_end` into spare capacity reads straight into uninitialised
                // memory (no zeroing pass): at GB/s that memset was a measurable share of
                // the CPU per GiB pulled.
                let mut buf = Vec::with_capacity(want);
                let res = (&mut file).take(want as u64).read_to_end(&mut buf).and_then(|n| {
                    if n == 0 {
                        Err(io::Error::new(io::ErrorKind::UnexpectedEof, "blob file shorter than recorded"))
                    } else {
                        Ok(n)
                    }
                });
                let item = match res {
                    Ok(n) => {
                        left -= n as u64;
                        Ok(Bytes::from(buf))
                    }
                    Err(e) => {
                        left = 0;
                        Err(e)
                    }
                };
                if tx.blocking_send(item).is_err() {
                    break; // client went away
                }
            }
        });
        Ok(BlobReader { len, body: Box::pin(DeadlineStream::new(rx, self.stall)) })
    }

    async fn write_part(
        &self,
        repo: &RepoName,
        upload_id: &str,
        hasher: Hasher,
        mut body: ByteStream,
        limit: Option<u64>,
    ) -> Result<WrittenPart, WriteError> {
        let dir = self.upload_dir(repo, upload_id)?;
        let name = uuid::Uuid::new_v4().simple().to_string();
        let path = dir.join(&name);
        let (tx, rx) = mpsc::channel::<Bytes>(32);
        let progress = Progress::new();
        let writer = {
            let (dir, path, progress) = (dir.clone(), path.clone(), progress.clone());
            tokio::task::spawn_blocking(move || {
                {
                    let _writing = background::writing();
                    create_dirs_durably(&dir)?;
                }
                let (len, hasher, file) = write_blocking(&path, hasher, rx, limit, &progress)?;
                let _writing = background::writing();
                // Data only: the size is fixed by the rename into place, whose directory
                // is synced.
                file.sync_data()?;
                fsync_dir(&dir)?;
                Ok((len, hasher))
            })
        };
        let mut body_error = None;
        let mut stalled_writer = None;
        while let Some(item) = std::future::poll_fn(|cx| body.as_mut().poll_next(cx)).await {
            match item {
                Ok(chunk) => match tokio::time::timeout(self.stall, tx.send(chunk)).await {
                    Ok(Ok(())) => {}
                    Ok(Err(_)) => break, // the writer failed; its error is reported below
                    Err(_) => {
                        // The writer took nothing for the whole limit: the disk is stuck.
                        stalled_writer = Some(watchdog::stalled("writing an upload", self.stall));
                        break;
                    }
                },
                Err(e) => {
                    body_error = Some(e);
                    break;
                }
            }
        }
        drop(tx);
        let result = match stalled_writer {
            Some(e) => Err(e),
            None => watch(writer, &progress, self.stall, "writing an upload").await,
        };
        let outcome = match (body_error, result) {
            (Some(e), _) => Err(WriteError::Body(e)),
            (None, Err(e)) => Err(WriteError::Io(e)),
            (None, Ok(Err(e))) => Err(e),
            (None, Ok(Ok((len, hasher)))) => return Ok(WrittenPart { name, len, hasher }),
        };
        let _ = tokio::fs::remove_file(&path).await;
        outcome
    }

    async fn hash_parts(
        &self,
        repo: &RepoName,
        upload_id: &str,
        parts: &[String],
        mut hasher: Hasher,
    ) -> io::Result<Digest> {
        let dir = self.upload_dir(repo, upload_id)?;
        let parts = parts.to_vec();
        run(self.stall, "hashing an upload", move |progress| {
            let mut buf = vec![0u8; READ_CHUNK];
            for p in &parts {
                let mut f = File::open(part_path(&dir, p)?)?;
                loop {
                    let n = f.read(&mut buf)?;
                    progress.tick();
                    if n == 0 {
                        break;
                    }
                    hasher.update(&buf[..n]);
                }
            }
            Ok(hasher.finish())
        })
        .await
    }

    async fn commit(&self, repo: &RepoName, upload_id: &str, parts: &[String], digest: &Digest) -> io::Result<()> {
        let dir = self.upload_dir(repo, upload_id)?;
        let target_dir = blob_dir(&self.root, digest);
        let parts = parts.to_vec();
        run(self.stall, "committing a blob", move |progress| {
            let _writing = background::writing();
            let target = target_dir.join("data");
            if target.exists() {
                // Content-addressed and only ever renamed into place complete: the
                // bytes already there are these bytes.
                return Ok(());
            }
            let source = match parts.as_slice() {
                [] => {
                    let p = dir.join("empty");
                    fs::create_dir_all(&dir)?;
                    File::create(&p)?.sync_all()?;
                    p
                }
                [one] => part_path(&dir, one)?,
                many => {
                    let p = dir.join("joined");
                    let mut out = File::create(&p)?;
                    let mut buf = vec![0u8; READ_CHUNK];
                    for part in many {
                        let mut f = File::open(part_path(&dir, part)?)?;
                        loop {
                            let n = f.read(&mut buf)?;
                            if n == 0 {
                                break;
                            }
                            out.write_all(&buf[..n])?;
                            progress.tick();
                        }
                    }
                    out.sync_data()?;
                    progress.tick();
                    p
                }
            };
            create_dirs_durably(&target_dir)?;
            fs::rename(&source, &target)?;
            fsync_dir(&target_dir)
        })
        .await
    }

    async fn delete_upload(&self, repo: &RepoName, upload_id: &str) -> io::Result<()> {
        let dir = match self.upload_dir(repo, upload_id) {
            Ok(d) => d,
            Err(_) => return Ok(()),
        };
        let _writing = background::writing();
        absent_ok(within(self.stall, "removing an upload", tokio::fs::remove_dir_all(&dir)).await)
    }

    async fn delete_part(&self, repo: &RepoName, upload_id: &str, part: &str) -> io::Result<()> {
        let path = part_path(&self.upload_dir(repo, upload_id)?, part)?;
        absent_ok(within(self.stall, "removing an upload part", tokio::fs::remove_file(path)).await)
    }

    async fn upload_dirs_older_than(&self, before: std::time::SystemTime) -> io::Result<Vec<(RepoName, String)>> {
        let repos = self.root.join("docker/registry/v2/repositories");
        run(self.stall, "listing uploads", move |_| {
            let mut out = Vec::new();
            find_upload_dirs(&repos, &repos, before, &mut out)?;
            Ok(out)
        })
        .await
    }

    async fn delete(&self, digest: &Digest) -> io::Result<()> {
        // Only GC removes blobs: on the background threads, so that its removals never
        // take the cores from requests (see `background`).
        let dir = blob_dir(&self.root, digest);
        let sync = self.removals.fetch_add(1, Ordering::Relaxed).is_multiple_of(REMOVALS_PER_SYNC);
        crate::background::run_background(self.stall, "deleting a blob", move || {
            remove_blob_dir(&dir)?;
            match dir.parent() {
                Some(parent) if sync => absent_ok(fsync_dir(parent)),
                _ => Ok(()),
            }
        })
        .await
    }

    async fn check(&self) -> io::Result<()> {
        let root = self.root.clone();
        run(self.stall, "checking the storage", move |_| {
            let probe = root.join(format!(".berth-health-{}", uuid::Uuid::new_v4().simple()));
            File::create(&probe)?.write_all(b"ok")?;
            fs::remove_file(&probe)
        })
        .await
    }

    async fn list_blobs(&self, after: Option<&Digest>, limit: usize) -> io::Result<Vec<ListedBlob>> {
        let base = self.root.join("docker/registry/v2/blobs");
        let after = after.map(|d| (d.algorithm().as_str().to_owned(), d.hex().to_owned()));
        run(self.stall, "listing blobs", move |_| list_blob_files(&base, after.as_ref(), limit)).await
    }

    async fn owned(&self) -> io::Result<bool> {
        let marker = self.root.join("docker/registry/v2").join(OWNED_MARKER);
        match within(self.stall, "reading the storage's owner marker", tokio::fs::metadata(marker)).await {
            Ok(_) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(e),
        }
    }

    async fn mark_owned(&self) -> io::Result<()> {
        let dir = self.root.join("docker/registry/v2");
        run(self.stall, "writing the storage's owner marker", move |_| {
            let mut f = File::create(dir.join(OWNED_MARKER))?;
            f.write_all(
                b"This storage is Berth's own: its garbage collection removes blob files the database does not know.\n",
            )?;
            f.sync_all()?;
            fsync_dir(&dir)
        })
        .await
    }
}

/// Sub-directory names of `dir`, sorted; none if it does not exist.
fn sorted_dirs(dir: &Path) -> io::Result<Vec<String>> {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut names: Vec<String> = entries
        .flatten()
        .filter(|e| e.file_type().map(|t| t.is_dir()).unwrap_or(false))
        .filter_map(|e| e.file_name().into_string().ok())
        .collect();
    names.sort();
    Ok(names)
}

/// Blob files under `blobs/<alg>/<2 hex>/<hex>/data` after `after` (algorithm, hex), in
/// digest order, skipping whole directories that sort before it.
fn list_blob_files(base: &Path, after: Option<&(String, String)>, limit: usize) -> io::Result<Vec<ListedBlob>> {
    let mut out = Vec::new();
    for alg in sorted_dirs(base)? {
        let same_alg = after.filter(|(a, _)| *a == alg);
        if after.is_some_and(|(a, _)| alg < *a) {
            continue;
        }
        for prefix in sorted_dirs(&base.join(&alg))? {
            if same_alg.is_some_and(|(_, h)| prefix.as_str() < h.get(..2).unwrap_or("")) {
                continue;
            }
            for hex in sorted_dirs(&base.join(&alg).join(&prefix))? {
                if same_alg.is_some_and(|(_, h)| hex <= *h) {
                    continue;
                }
                let Ok(digest) = format!("{alg}:{hex}").parse::<Digest>() else { continue };
                let meta = match fs::metadata(base.join(&alg).join(&prefix).join(&hex).join("data")) {
                    Ok(m) => m,
                    Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                    Err(e) => return Err(e),
                };
                out.push(ListedBlob { digest, size: meta.len(), modified: meta.modified().ok() });
                if out.len() >= limit {
                    return Ok(out);
                }
            }
        }
    }
    Ok(out)
}

/// Walks the repositories tree for `<name>/_uploads/<id>` directories.
fn find_upload_dirs(
    base: &Path,
    dir: &Path,
    before: std::time::SystemTime,
    out: &mut Vec<(RepoName, String)>,
) -> io::Result<()> {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    for entry in entries.flatten() {
        if !entry.file_type().map(|t| t.is_dir()).unwrap_or(false) {
            continue;
        }
        let path = entry.path();
        if entry.file_name() == "_uploads" {
            let repo = dir.strip_prefix(base).ok().and_then(|r| r.to_str()).and_then(|r| r.parse::<RepoName>().ok());
            let Some(repo) = repo else { continue };
            for up in fs::read_dir(&path)?.flatten() {
                let modified = up.metadata().and_then(|m| m.modified()).unwrap_or(before);
                if modified < before
                    && let Some(id) = up.file_name().to_str()
                {
                    out.push((repo.clone(), id.to_string()));
                }
            }
        } else if !entry.file_name().to_string_lossy().starts_with('_') {
            find_upload_dirs(base, &path, before, out)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
