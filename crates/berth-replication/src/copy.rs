//! The copy task: one repository's selected artifacts from the source to the
//! destination. Idempotent and resumable: what the destination has is skipped, what
//! this task finished is in its checkpoint, and a chunked upload continues from the
//! last chunk the destination acknowledged.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use futures_util::StreamExt as _;
use serde::{Deserialize, Serialize};

use berth_core::manifest::{self, Kind};
use berth_jobs::{Handler, JobCtx, JobError, StopFlag};
use berth_remote::{Manifest, Mount, repo_scope};

use crate::Context;
use crate::flow::{Side, job_error};

/// One artifact to copy: fetched by `reference` (a digest, or a tag where the source
/// lists no digests), pushed under `tags` (by digest when there are none).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Item {
    pub reference: String,
    #[serde(default)]
    pub tags: Vec<String>,
}

/// A copy task's arguments (no credentials: they are read, decrypted, when it runs).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CopyArgs {
    pub policy_id: i64,
    pub src_registry_id: i64,
    pub dest_registry_id: i64,
    pub src_repo: String,
    pub dst_repo: String,
    pub items: Vec<Item>,
    #[serde(default)]
    pub r#override: bool,
    #[serde(default)]
    pub copy_by_chunk: bool,
    /// KiB/s.
    #[serde(default)]
    pub speed_kib: Option<u64>,
    /// `copy` (or, for deletion replication, `deletion`).
    #[serde(default = "copy_op")]
    pub operation: String,
}

fn copy_op() -> String {
    "copy".into()
}

impl CopyArgs {
    /// Harbor's `src_resource`/`dst_resource`: `repo:[tag,…]`.
    pub fn resources(&self) -> (String, String) {
        let tags: Vec<&str> = self
            .items
            .iter()
            .flat_map(|i| {
                if i.tags.is_empty() { vec![i.reference.as_str()] } else { i.tags.iter().map(String::as_str).collect() }
            })
            .collect();
        let list = tags.join(",");
        (format!("{}:[{list}]", self.src_repo), format!("{}:[{list}]", self.dst_repo))
    }
}

/// An upload in flight, to continue on another attempt.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Upload {
    pub digest: String,
    pub url: String,
    pub offset: u64,
}

/// What a copy task saves after every blob and chunk.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Progress {
    /// How many leading items are done.
    pub items_done: usize,
    /// Blobs the destination repository has for certain (copied, mounted or found).
    pub blobs_done: BTreeSet<String>,
    pub upload: Option<Upload>,
    /// Bytes of blob content this task sent, over all attempts.
    pub bytes_sent: u64,
    pub blobs_sent: u64,
    pub blobs_present: u64,
    pub blobs_mounted: u64,
}

/// Blobs at least this large are sent in chunks even without `copy_by_chunk`, so that
/// an interrupted transfer resumes instead of starting over.
pub const CHUNK_THRESHOLD: u64 = 64 << 20;
/// Harbor's chunk size for `copy_by_chunk` is 10 MiB; a few more per round trip cost
/// little memory and save requests.
pub const CHUNK: usize = 16 << 20;

/// Keeps a transfer at or below a rate.
struct Throttle {
    bytes_per_sec: Option<u64>,
    start: Instant,
    sent: u64,
}

impl Throttle {
    fn new(kib: Option<u64>) -> Throttle {
        Throttle { bytes_per_sec: kib.map(|k| k.max(1) * 1024), start: Instant::now(), sent: 0 }
    }

    async fn consume(&mut self, n: u64, stop: &StopFlag) {
        self.sent += n;
        let Some(rate) = self.bytes_per_sec else { return };
        let due = Duration::from_secs_f64(self.sent as f64 / rate as f64);
        // Sleeps in short steps, so a stop is noticed while throttled.
        while let Some(wait) = due.checked_sub(self.start.elapsed()) {
            if stop.is_set() || wait.is_zero() {
                break;
            }
            tokio::time::sleep(wait.min(Duration::from_millis(200))).await;
        }
    }
}

pub struct Copy(pub Arc<Context>);

struct Run<'a> {
    ctx: &'a Context,
    job: &'a JobCtx,
    args: CopyArgs,
    src: Side,
    dst: Side,
    progress: Progress,
}

#[async_trait::async_trait]
impl Handler for Copy {
    async fn run(&self, job: &JobCtx) -> Result<(), JobError> {
        let res = self.attempt(job).await;
        if let Some(status) = crate::events::final_status(&res, &job.check(), job.job()) {
            crate::events::task_ended(&self.0, job, status, res.as_ref().err()).await;
        }
        res
    }
}

impl Copy {
    async fn attempt(&self, job: &JobCtx) -> Result<(), JobError> {
        let args: CopyArgs = job.args()?;
        let src = Side::open(&self.0, args.src_registry_id).await?;
        let dst = Side::open(&self.0, args.dest_registry_id).await?;
        let progress: Progress = job.progress().unwrap_or_default();
        if job.job().attempt > 1 {
            job.info(format!(
                "attempt {}: resuming after {} artifact(s) and {} blob(s) already done{}",
                job.job().attempt,
                progress.items_done,
                progress.blobs_done.len(),
                progress
                    .upload
                    .as_ref()
                    .map_or(String::new(), |u| format!(", an upload of {} at byte {}", u.digest, u.offset))
            ));
        }
        job.info(format!(
            "copying {} from {} to {} on {}",
            args.src_repo,
            src.describe(),
            args.dst_repo,
            dst.describe()
        ));
        let mut run = Run { ctx: &self.0, job, args, src, dst, progress };
        if run.args.operation == "deletion" {
            return run.delete_all().await;
        }
        let result = run.all().await;
        let p = &run.progress;
        job.info(format!(
            "{} blob(s) sent ({} bytes), {} already there, {} mounted",
            p.blobs_sent, p.bytes_sent, p.blobs_present, p.blobs_mounted
        ));
        if job.stopping() {
            return job.check();
        }
        result
    }
}

impl Run<'_> {
    fn at_src(&self, what: &str) -> String {
        format!("{what} {} on {}", self.args.src_repo, self.src.describe())
    }

    fn at_dst(&self, what: &str) -> String {
        format!("{what} {} on {}", self.args.dst_repo, self.dst.describe())
    }

    async fn save(&self) -> Result<(), JobError> {
        self.job.checkpoint(&self.progress).await
    }

    /// Deletion replication: the artifacts go from the destination too (by digest, as
    /// Harbor deletes an artifact with its tags). One already gone counts as done.
    async fn delete_all(&mut self) -> Result<(), JobError> {
        let items = self.args.items.clone();
        for item in &items {
            self.job.check()?;
            let dst = self.dst.client();
            let digest = if item.reference.contains(':') {
                Some(item.reference.clone())
            } else {
                dst.manifest_head(&self.args.dst_repo, &item.reference)
                    .await
                    .map_err(|e| job_error(&self.at_dst("checking"), e))?
                    .map(|(d, _)| d)
            };
            let Some(digest) = digest else {
                self.job.info(format!(
                    "{}:{} is not at the destination; nothing to delete",
                    self.args.dst_repo, item.reference
                ));
                continue;
            };
            let deleted = dst
                .manifest_delete(&self.args.dst_repo, &digest)
                .await
                .map_err(|e| job_error(&self.at_dst(&format!("deleting {digest} from")), e))?;
            if deleted {
                self.job.info(format!("deleted {}@{digest}", self.args.dst_repo));
            } else {
                self.job.info(format!("{}@{digest} was already gone", self.args.dst_repo));
            }
        }
        Ok(())
    }

    async fn all(&mut self) -> Result<(), JobError> {
        let items = self.args.items.clone();
        for (i, item) in items.iter().enumerate().skip(self.progress.items_done) {
            self.job.check()?;
            self.item(item).await?;
            self.progress.items_done = i + 1;
            self.save().await?;
        }
        Ok(())
    }

    async fn item(&mut self, item: &Item) -> Result<(), JobError> {
        let m = self
            .src
            .client()
            .manifest_get(&self.args.src_repo, &item.reference)
            .await
            .map_err(|e| job_error(&self.at_src(&format!("reading {}", item.reference)), e))?;
        let targets: Vec<String> = if item.tags.is_empty() { vec![m.digest.clone()] } else { item.tags.clone() };
        let mut todo = Vec::new();
        for t in targets {
            match self.dst.client().manifest_head(&self.args.dst_repo, &t).await {
                Ok(Some((d, _))) if d == m.digest => {
                    self.job.info(format!("{}:{t} is already {} at the destination", self.args.dst_repo, m.digest))
                }
                Ok(Some((d, _))) if !self.args.r#override => self.job.warn(format!(
                    "{}:{t} is {d} at the destination, not {}; skipped (override is off)",
                    self.args.dst_repo, m.digest
                )),
                Ok(_) => todo.push(t),
                Err(e) => return Err(job_error(&self.at_dst("checking"), e)),
            }
        }
        if todo.is_empty() {
            return Ok(());
        }
        self.tree(&m).await?;
        for t in todo {
            self.job.check()?;
            self.dst
                .client()
                .manifest_put(&self.args.dst_repo, &t, &m.media_type, m.bytes.clone())
                .await
                .map_err(|e| job_error(&self.at_dst(&format!("pushing manifest {t} to")), e))?;
            self.job.info(format!("pushed {}:{t} ({})", self.args.dst_repo, m.digest));
        }
        Ok(())
    }

    /// Everything `m` refers to, depth first: blobs, and child manifests (pushed by
    /// digest, before the index that lists them).
    async fn tree(&mut self, m: &Manifest) -> Result<(), JobError> {
        let parsed = manifest::parse(&m.bytes, Some(&m.media_type))
            .map_err(|e| JobError::Fatal(format!("{}: manifest {}: {e}", self.at_src("reading"), m.digest)))?;
        if parsed.kind == Kind::Index {
            for child in &parsed.manifests {
                self.job.check()?;
                let d = child.digest.to_string();
                if self.progress.blobs_done.contains(&d) {
                    continue;
                }
                let dst = self.dst.client();
                if dst
                    .manifest_head(&self.args.dst_repo, &d)
                    .await
                    .map_err(|e| job_error(&self.at_dst("checking"), e))?
                    .is_none()
                {
                    let cm = self
                        .src
                        .client()
                        .manifest_get(&self.args.src_repo, &d)
                        .await
                        .map_err(|e| job_error(&self.at_src(&format!("reading {d} from")), e))?;
                    Box::pin(self.tree(&cm)).await?;
                    self.dst
                        .client()
                        .manifest_put(&self.args.dst_repo, &d, &cm.media_type, cm.bytes.clone())
                        .await
                        .map_err(|e| job_error(&self.at_dst(&format!("pushing manifest {d} to")), e))?;
                    self.job.info(format!("pushed {}@{d}", self.args.dst_repo));
                }
                self.progress.blobs_done.insert(d);
                self.save().await?;
            }
        }
        for b in &parsed.blobs {
            self.job.check()?;
            self.blob(&b.digest.to_string(), b.size).await?;
        }
        Ok(())
    }

    async fn blob(&mut self, digest: &str, size: u64) -> Result<(), JobError> {
        if self.progress.blobs_done.contains(digest) {
            self.job.info(format!("blob {digest}: done by an earlier attempt"));
            return Ok(());
        }
        let dst_repo = self.args.dst_repo.clone();
        let dst = self.dst.client();
        if dst
            .blob_head(&dst_repo, digest)
            .await
            .map_err(|e| job_error(&self.at_dst("checking a blob of"), e))?
            .is_some()
        {
            self.job.info(format!("blob {digest}: already at the destination"));
            self.progress.blobs_present += 1;
            return self.blob_done(digest).await;
        }
        if let Some(from) = self.ctx.mount_hint(self.dst.id(), digest).filter(|f| *f != dst_repo) {
            // A failed mount only means copying.
            if let Ok(Mount::Mounted) = dst.mount(&dst_repo, digest, &from).await {
                self.job.info(format!("blob {digest}: mounted from {from}"));
                self.progress.blobs_mounted += 1;
                return self.blob_done(digest).await;
            }
        }
        // Continue an upload an earlier attempt left, if the destination still has it.
        let resumed = match self.progress.upload.clone() {
            Some(u) if u.digest == digest => match dst.upload_status(&dst_repo, &u.url).await {
                Ok(Some(offset)) => Some((u.url, offset)),
                _ => {
                    self.job.warn(format!("blob {digest}: the destination forgot the earlier upload; starting over"));
                    None
                }
            },
            _ => None,
        };
        let (url, offset) = match resumed {
            Some((url, offset)) => {
                self.job.info(format!("blob {digest}: resuming the upload at byte {offset} of {size}"));
                (url, offset)
            }
            None => (
                dst.upload_start(&dst_repo).await.map_err(|e| job_error(&self.at_dst("starting an upload to"), e))?,
                0,
            ),
        };
        let chunked = self.args.copy_by_chunk || size >= CHUNK_THRESHOLD || offset > 0;
        let sent =
            if chunked { self.chunked(digest, url, offset).await? } else { self.monolithic(digest, size, url).await? };
        self.progress.upload = None;
        self.progress.blobs_sent += 1;
        self.progress.bytes_sent += sent;
        self.job.info(format!("blob {digest}: sent {sent} bytes{}", if chunked { " in chunks" } else { "" }));
        self.blob_done(digest).await
    }

    async fn blob_done(&mut self, digest: &str) -> Result<(), JobError> {
        self.ctx.remember_blob(self.dst.id(), digest, &self.args.dst_repo);
        self.progress.blobs_done.insert(digest.to_owned());
        self.save().await
    }

    /// One streamed PUT: the source's bytes go straight to the destination.
    async fn monolithic(&mut self, digest: &str, size: u64, url: String) -> Result<u64, JobError> {
        let res = self
            .src
            .client()
            .blob_get(&self.args.src_repo, digest, 0)
            .await
            .map_err(|e| job_error(&self.at_src(&format!("reading blob {digest} of")), e))?;
        let stop = self.job.stop_flag();
        let throttle = Throttle::new(self.args.speed_kib);
        let stream = futures_util::stream::unfold(
            (res.bytes_stream(), throttle, stop),
            |(mut s, mut throttle, stop)| async move {
                if stop.is_set() {
                    return Some((Err(std::io::Error::other("stopped")), (s, throttle, stop)));
                }
                match s.next().await {
                    Some(Ok(b)) => {
                        throttle.consume(b.len() as u64, &stop).await;
                        Some((Ok::<Bytes, std::io::Error>(b), (s, throttle, stop)))
                    }
                    Some(Err(e)) => {
                        Some((Err(std::io::Error::other(format!("reading the source: {e}"))), (s, throttle, stop)))
                    }
                    None => None,
                }
            },
        );
        let dst = self.dst.client();
        let scopes = [repo_scope(&self.args.dst_repo, "pull,push")];
        dst.authorize(&scopes).await.map_err(|e| job_error(&self.at_dst("authorizing a push to"), e))?;
        let body = reqwest::Body::wrap_stream(stream);
        match dst.upload_finish(&self.args.dst_repo, &url, digest, Some((body, size))).await {
            Ok(()) => Ok(size),
            Err(_) if self.job.stopping() => Err(self.job.check().err().unwrap_or(JobError::Cancelled)),
            Err(e) => Err(job_error(&self.at_dst(&format!("uploading blob {digest} to")), e)),
        }
    }

    /// PATCHes of [`CHUNK`] bytes, each acknowledged and checkpointed before the next.
    async fn chunked(&mut self, digest: &str, mut url: String, mut offset: u64) -> Result<u64, JobError> {
        let start = offset;
        let res = self
            .src
            .client()
            .blob_get(&self.args.src_repo, digest, offset)
            .await
            .map_err(|e| job_error(&self.at_src(&format!("reading blob {digest} of")), e))?;
        let mut stream = res.bytes_stream();
        let stop = self.job.stop_flag();
        let mut throttle = Throttle::new(self.args.speed_kib);
        let mut buf = BytesMut::with_capacity(CHUNK);
        loop {
            self.job.check()?;
            let next = stream.next().await;
            let end = match next {
                Some(Ok(b)) => {
                    throttle.consume(b.len() as u64, &stop).await;
                    buf.extend_from_slice(&b);
                    false
                }
                Some(Err(e)) => {
                    return Err(JobError::Retry(format!("{}: {e}", self.at_src(&format!("reading blob {digest} of")))));
                }
                None => true,
            };
            if buf.len() >= CHUNK || (end && !buf.is_empty()) {
                self.job.check()?;
                let chunk = buf.split().freeze();
                let n = chunk.len() as u64;
                url = self
                    .dst
                    .client()
                    .upload_chunk(&self.args.dst_repo, &url, offset, chunk)
                    .await
                    .map_err(|e| job_error(&self.at_dst(&format!("uploading a chunk of {digest} to")), e))?;
                offset += n;
                self.progress.upload = Some(Upload { digest: digest.to_owned(), url: url.clone(), offset });
                self.save().await?;
            }
            if end {
                break;
            }
        }
        self.dst
            .client()
            .upload_finish(&self.args.dst_repo, &url, digest, None)
            .await
            .map_err(|e| job_error(&self.at_dst(&format!("finishing the upload of {digest} to")), e))?;
        Ok(offset - start)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resources_read_like_harbor() {
        let a = CopyArgs {
            policy_id: 1,
            src_registry_id: 0,
            dest_registry_id: 2,
            src_repo: "library/a".into(),
            dst_repo: "m/a".into(),
            items: vec![
                Item { reference: "sha256:1".into(), tags: vec!["v1".into(), "latest".into()] },
                Item { reference: "sha256:2".into(), tags: vec![] },
            ],
            r#override: false,
            copy_by_chunk: false,
            speed_kib: None,
            operation: "copy".into(),
        };
        assert_eq!(a.resources(), ("library/a:[v1,latest,sha256:2]".into(), "m/a:[v1,latest,sha256:2]".into()));
    }

    #[tokio::test]
    async fn throttle_holds_the_rate() {
        let flag = StopFlag::never();
        let mut t = Throttle::new(Some(100));
        let started = Instant::now();
        t.consume(30 * 1024, &flag).await;
        let took = started.elapsed();
        assert!(took >= Duration::from_millis(280), "{took:?}");
        assert!(took < Duration::from_secs(2), "{took:?}");
    }
}
