//! The registry's domain operations: what a push, a pull and a delete mean, on top of
//! the metadata store and the blob store. HTTP handlers call these and only translate.

use std::sync::Arc;

use bytes::Bytes;

use crate::blobstore::{BlobReader, BlobStore, ByteStream, WriteError};
use crate::digest::{Algorithm, Digest, Hasher};
use crate::error::CoreError;
use crate::manifest;
use crate::name::{Reference, RepoName, Tag};
use crate::quota::QuotaUse;
use crate::store::outbox::OutboxEvent;
use crate::store::{
    BlobInfo, MetaStore, NewManifest, PutManifestOutcome, Referrer, StoreError, StoredManifest, Upload,
};

/// The most manifests [`Registry::copy_accessories`] visits for one copy (the subject,
/// its accessories, theirs, and index children).
pub const MAX_ACCESSORY_WALK: usize = 1000;

/// The tags cosign gives a subject's accessories: `<alg>-<hex>.sig` (signatures),
/// `.att` (attestations) and `.sbom` (SBOMs). Clients find these by the subject's digest
/// alone, so a copy must recreate them next to the copied subject.
pub fn cosign_tags(subject: &Digest) -> Vec<Tag> {
    let s = subject.to_string();
    let Some((alg, hex)) = s.split_once(':') else { return Vec::new() };
    ["sig", "att", "sbom"].iter().filter_map(|k| format!("{alg}-{hex}.{k}").parse().ok()).collect()
}

pub struct Registry {
    meta: Arc<dyn MetaStore>,
    blobs: Arc<dyn BlobStore>,
    /// Told of quota warnings and refusals (webhooks); set once at startup.
    quota_events: std::sync::OnceLock<Arc<dyn QuotaEvents>>,
}

/// Where the registry reports what a push did to a project's quota. Called on the push's
/// path: implementations must return at once (queue or spawn the real work).
pub trait QuotaEvents: Send + Sync {
    /// A blob took its project's usage across `quota::WARNING_PERCENT` of the limit.
    fn warning(&self, repo: &RepoName, digest: &Digest, usage: &crate::quota::QuotaUse);
    /// A blob was refused because it would exceed the limit.
    fn exceeded(&self, repo: &RepoName, digest: &Digest, refusal: &crate::quota::QuotaExceeded);
}

/// Where a chunk must land: the client's `Content-Range`, if it sent one.
#[derive(Debug, Clone, Copy)]
pub struct ChunkRange {
    pub start: u64,
    pub end_inclusive: u64,
}

pub struct PushedManifest {
    pub digest: Digest,
    pub subject: Option<Digest>,
}

/// A blob opened for reading, with the byte range actually served.
pub struct OpenBlob {
    pub info: BlobInfo,
    pub start: u64,
    pub reader: BlobReader,
}

fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

impl From<WriteError> for CoreError {
    fn from(e: WriteError) -> Self {
        match e {
            WriteError::Body(b) => CoreError::BodyIncomplete(b.0),
            WriteError::TooLong { limit } => {
                CoreError::SizeInvalid(format!("request body is longer than the {limit} bytes declared"))
            }
            WriteError::Io(io) => io_error(io),
        }
    }
}

/// Full or read-only storage is the operator's problem to fix, not a server bug:
/// say so clearly instead of a bare 500.
pub fn io_error(e: std::io::Error) -> CoreError {
    match e.raw_os_error() {
        Some(28 /* ENOSPC */) | Some(122 /* EDQUOT */) => {
            CoreError::StorageUnavailable("no space left on the blob storage".into())
        }
        Some(30 /* EROFS */) => CoreError::StorageUnavailable("blob storage is read-only".into()),
        _ if e.kind() == std::io::ErrorKind::TimedOut => CoreError::StorageUnavailable(e.to_string()),
        _ => CoreError::Io(e),
    }
}

impl Registry {
    pub fn new(meta: Arc<dyn MetaStore>, blobs: Arc<dyn BlobStore>) -> Self {
        Registry { meta, blobs, quota_events: std::sync::OnceLock::new() }
    }

    /// Sets where quota events go (once; later calls are ignored).
    pub fn set_quota_events(&self, events: Arc<dyn QuotaEvents>) {
        let _ = self.quota_events.set(events);
    }

    /// Reports a store result's quota outcome to the quota events, if any.
    fn report_quota<T>(&self, repo: &RepoName, digest: &Digest, r: &Result<T, StoreError>, usage: Option<&QuotaUse>) {
        let Some(ev) = self.quota_events.get() else { return };
        match (r, usage) {
            (Err(StoreError::QuotaExceeded(q)), _) => ev.exceeded(repo, digest, q),
            (Ok(_), Some(u)) if u.crossed_warning() => ev.warning(repo, digest, u),
            _ => {}
        }
    }

    pub fn meta(&self) -> &Arc<dyn MetaStore> {
        &self.meta
    }
    pub fn blobs(&self) -> &Arc<dyn BlobStore> {
        &self.blobs
    }

    // ---------- uploads ----------

    pub async fn start_upload(&self, repo: &RepoName) -> Result<Upload, CoreError> {
        let upload = Upload {
            id: uuid::Uuid::new_v4().to_string(),
            repo: repo.clone(),
            offset: 0,
            hash_state: Some(Hasher::new(Algorithm::Sha256).save()),
            parts: Vec::new(),
            started_at: now(),
        };
        self.meta.create_upload(&upload).await?;
        Ok(upload)
    }

    pub async fn upload_status(&self, repo: &RepoName, id: &str) -> Result<Upload, CoreError> {
        self.meta.get_upload(repo, id).await?.ok_or(CoreError::UploadUnknown)
    }

    /// Appends one chunk. The chunk is durable before the offset moves; a concurrent
    /// or stale writer for the same offset loses the compare-and-set and its bytes are
    /// discarded, so the upload's content is always what the recorded parts say.
    pub async fn write_chunk(
        &self,
        repo: &RepoName,
        id: &str,
        range: Option<ChunkRange>,
        body: ByteStream,
    ) -> Result<Upload, CoreError> {
        let upload = self.upload_status(repo, id).await?;
        let limit = match range {
            Some(r) => {
                if r.start != upload.offset {
                    return Err(CoreError::RangeInvalid(format!(
                        "chunk starts at {} but the upload has {} bytes; resume at {}",
                        r.start, upload.offset, upload.offset
                    )));
                }
                if r.end_inclusive < r.start {
                    return Err(CoreError::RangeInvalid(format!(
                        "Content-Range end {} is before its start {}",
                        r.end_inclusive, r.start
                    )));
                }
                Some(r.end_inclusive - r.start + 1)
            }
            None => None,
        };
        let updated = self.append(&upload, body, limit).await?;
        if let (Some(expected), Some(r)) = (limit, range) {
            let got = updated.offset - upload.offset;
            if got != expected {
                // The bytes are recorded (they are what the client sent); the client
                // learns the true offset from the error and the status endpoint.
                return Err(CoreError::RangeInvalid(format!(
                    "Content-Range {}-{} announced {expected} bytes but the body had {got}",
                    r.start, r.end_inclusive
                )));
            }
        }
        Ok(updated)
    }

    async fn append(&self, upload: &Upload, body: ByteStream, limit: Option<u64>) -> Result<Upload, CoreError> {
        let hasher =
            upload.hash_state.as_deref().and_then(Hasher::restore).unwrap_or_else(|| Hasher::new(Algorithm::Sha256));
        let part = match self.blobs.write_part(&upload.repo, &upload.id, hasher, body, limit).await {
            Ok(part) => part,
            // Another instance finished or cancelled the upload while this chunk was
            // arriving (this request may have been frozen meanwhile): its directory is gone.
            Err(WriteError::Io(e))
                if e.kind() == std::io::ErrorKind::NotFound
                    && matches!(self.meta.get_upload(&upload.repo, &upload.id).await, Ok(None)) =>
            {
                return Err(CoreError::UploadUnknown);
            }
            Err(e) => return Err(e.into()),
        };
        if part.len == 0 {
            self.blobs.delete_part(&upload.repo, &upload.id, &part.name).await.ok();
            return Ok(upload.clone());
        }
        let new_offset = upload.offset + part.len;
        let state = part.hasher.save();
        let stored =
            self.meta.append_upload_part(&upload.id, upload.offset, new_offset, Some(&state), &part.name).await;
        match stored {
            Ok(true) => {
                let mut u = upload.clone();
                u.offset = new_offset;
                u.hash_state = Some(state);
                u.parts.push(part.name);
                Ok(u)
            }
            Ok(false) => {
                self.blobs.delete_part(&upload.repo, &upload.id, &part.name).await.ok();
                Err(CoreError::RangeInvalid(format!(
                    "the upload moved past offset {} while this chunk was sent; GET the upload for its offset and resume",
                    upload.offset
                )))
            }
            Err(e) => {
                self.blobs.delete_part(&upload.repo, &upload.id, &part.name).await.ok();
                Err(e.into())
            }
        }
    }

    /// Finishes an upload: appends an optional last chunk, verifies the digest, makes
    /// the blob durable and visible, then records it.
    pub async fn finish_upload(
        &self,
        repo: &RepoName,
        id: &str,
        digest: &Digest,
        range: Option<ChunkRange>,
        last_chunk: Option<ByteStream>,
    ) -> Result<BlobInfo, CoreError> {
        self.meta.write_coming();
        let mut upload = self.upload_status(repo, id).await?;
        if let Some(body) = last_chunk {
            upload = match range {
                Some(_) => self.write_chunk(repo, id, range, body).await?,
                None => self.append(&upload, body, None).await?,
            };
        }
        let actual = match (digest.algorithm(), upload.hash_state.as_deref().and_then(Hasher::restore)) {
            (Algorithm::Sha256, Some(h)) if h.algorithm() == Algorithm::Sha256 => h.finish(),
            (alg, _) => self.blobs.hash_parts(repo, id, &upload.parts, Hasher::new(alg)).await.map_err(io_error)?,
        };
        if &actual != digest {
            self.cancel_upload(repo, id).await.ok();
            return Err(CoreError::DigestMismatch { expected: digest.clone(), actual });
        }
        let info = BlobInfo { digest: digest.clone(), size: upload.offset };
        if let Err(e) = self.publish(repo, id, &upload.parts, &info, Some(id)).await {
            if matches!(e, CoreError::Store(StoreError::QuotaExceeded(_))) {
                // The session cannot succeed (its parts may be gone): end it, as Harbor does.
                self.cancel_upload(repo, id).await.ok();
            }
            return Err(e);
        }
        if let Err(e) = self.blobs.delete_upload(repo, id).await {
            tracing::warn!(upload = id, error = %e, "could not remove a finished upload's files");
        }
        Ok(info)
    }

    /// A single-request push (`POST ?digest=` with the whole blob as body).
    pub async fn monolithic_upload(
        &self,
        repo: &RepoName,
        digest: &Digest,
        body: ByteStream,
    ) -> Result<BlobInfo, CoreError> {
        self.meta.write_coming();
        let id = uuid::Uuid::new_v4().to_string();
        let result = async {
            let part = self.blobs.write_part(repo, &id, Hasher::new(digest.algorithm()), body, None).await?;
            let actual = part.hasher.finish();
            if &actual != digest {
                return Err(CoreError::DigestMismatch { expected: digest.clone(), actual });
            }
            let info = BlobInfo { digest: digest.clone(), size: part.len };
            self.publish(repo, &id, &[part.name], &info, None).await?;
            Ok(info)
        }
        .await;
        if let Err(e) = self.blobs.delete_upload(repo, &id).await {
            tracing::warn!(upload = id, error = %e, "could not remove an upload's files");
        }
        result
    }

    /// Writes a verified blob into place and records it, under the digest lock: GC,
    /// which removes bytes under the same lock, either finished before (the row is gone
    /// or `deleting` and is resurrected with these bytes) or waits until the row is live.
    async fn publish(
        &self,
        repo: &RepoName,
        upload_id: &str,
        parts: &[String],
        info: &BlobInfo,
        finished_upload: Option<&str>,
    ) -> Result<(), CoreError> {
        let lock = self.meta.lock_digest(&info.digest).await?;
        let result = async {
            self.blobs.commit(repo, upload_id, parts, &info.digest).await.map_err(io_error)?;
            // A refusal leaves the bytes in place without a row: invisible, and either
            // another row's (same digest) or removed by GC as a file no row describes.
            let r = self.meta.commit_blob(repo, info, finished_upload).await;
            let usage = r.as_ref().ok().and_then(Option::as_ref);
            self.report_quota(repo, &info.digest, &r, usage);
            r?;
            Ok(())
        }
        .await;
        lock.release().await;
        result
    }

    pub async fn cancel_upload(&self, repo: &RepoName, id: &str) -> Result<(), CoreError> {
        self.upload_status(repo, id).await?;
        self.meta.delete_upload(id).await?;
        self.blobs.delete_upload(repo, id).await.map_err(io_error)?;
        Ok(())
    }

    /// Removes uploads idle for longer than `max_idle_secs` with their files, and upload
    /// files that no session owns (a crash during a single-request push leaves those).
    pub async fn purge_stale_uploads(&self, max_idle_secs: i64) -> Result<usize, CoreError> {
        let stale = self.meta.stale_uploads(now() - max_idle_secs, 1000).await?;
        for u in &stale {
            self.meta.delete_upload(&u.id).await?;
            self.blobs.delete_upload(&u.repo, &u.id).await.map_err(io_error)?;
        }
        let cutoff = std::time::SystemTime::now() - std::time::Duration::from_secs(max_idle_secs.max(0) as u64);
        let mut orphans = 0;
        for (repo, id) in self.blobs.upload_dirs_older_than(cutoff).await.map_err(io_error)? {
            if self.meta.get_upload(&repo, &id).await?.is_none() {
                self.blobs.delete_upload(&repo, &id).await.map_err(io_error)?;
                orphans += 1;
            }
        }
        Ok(stale.len() + orphans)
    }

    // ---------- blobs ----------

    pub async fn mount_blob(
        &self,
        from: &RepoName,
        to: &RepoName,
        digest: &Digest,
    ) -> Result<Option<BlobInfo>, CoreError> {
        let r = self.meta.mount_blob_with_quota(from, to, digest).await;
        let usage = r.as_ref().ok().and_then(|m| m.as_ref()).and_then(|(_, u)| u.as_ref());
        self.report_quota(to, digest, &r, usage);
        Ok(r?.map(|(blob, _)| blob))
    }

    pub async fn blob(&self, repo: &RepoName, digest: &Digest) -> Result<BlobInfo, CoreError> {
        self.meta.repo_blob(repo, digest).await?.ok_or_else(|| CoreError::BlobUnknown(digest.clone()))
    }

    /// Where the client may download the blob from directly, if the storage supports it;
    /// checked against the repository first, like any other read.
    pub async fn blob_redirect(
        &self,
        repo: &RepoName,
        digest: &Digest,
        expires: std::time::Duration,
    ) -> Result<Option<String>, CoreError> {
        self.blob(repo, digest).await?;
        Ok(self.blobs.presigned_get(digest, expires))
    }

    /// Opens a blob; `range` is an inclusive `(start, end)` with an open end allowed.
    pub async fn open_blob(
        &self,
        repo: &RepoName,
        digest: &Digest,
        range: Option<(u64, Option<u64>)>,
    ) -> Result<OpenBlob, CoreError> {
        let info = self.blob(repo, digest).await?;
        let (start, len) = match range {
            None => (0, info.size),
            Some((start, end)) => {
                let end = end.unwrap_or(info.size.saturating_sub(1)).min(info.size.saturating_sub(1));
                if start >= info.size || end < start {
                    return Err(CoreError::RangeInvalid(format!(
                        "range {start}-{end} is outside the blob's {} bytes",
                        info.size
                    )));
                }
                (start, end - start + 1)
            }
        };
        let reader = match self.blobs.open(digest, start, len).await {
            Ok(r) => r,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                tracing::error!(%digest, "blob is recorded but its bytes are missing from storage");
                return Err(CoreError::BlobUnknown(digest.clone()));
            }
            Err(e) => return Err(io_error(e)),
        };
        Ok(OpenBlob { info, start, reader })
    }

    pub async fn delete_blob(&self, repo: &RepoName, digest: &Digest) -> Result<(), CoreError> {
        if self.meta.unlink_blob(repo, digest).await? { Ok(()) } else { Err(CoreError::BlobUnknown(digest.clone())) }
    }

    // ---------- manifests ----------

    pub async fn put_manifest(
        &self,
        repo: &RepoName,
        reference: &Reference,
        content_type: Option<&str>,
        content: Bytes,
    ) -> Result<PushedManifest, CoreError> {
        self.put_manifest_by(repo, reference, content_type, content, None).await
    }

    /// A push by `username` (a client's, not a replication's or an import's): its `create`
    /// event commits with the manifest, in the outbox.
    pub async fn put_manifest_by(
        &self,
        repo: &RepoName,
        reference: &Reference,
        content_type: Option<&str>,
        content: Bytes,
        username: Option<&str>,
    ) -> Result<PushedManifest, CoreError> {
        self.meta.write_coming();
        let parsed = manifest::parse(&content, content_type)?;
        let (digest, tag) = match reference {
            Reference::Digest(expected) => {
                let actual = Digest::of(expected.algorithm(), &content);
                if &actual != expected {
                    return Err(CoreError::DigestMismatch { expected: expected.clone(), actual });
                }
                (actual, None)
            }
            Reference::Tag(t) => (Digest::sha256(&content), Some(t.clone())),
        };
        let subject = parsed.subject.as_ref().map(|s| s.digest.clone());
        let new = NewManifest {
            repo: repo.clone(),
            digest: digest.clone(),
            media_type: parsed.media_type,
            content,
            artifact_type: parsed.artifact_type,
            annotations: parsed.annotations,
            subject: subject.clone(),
            blobs: parsed.blobs.into_iter().map(|d| d.digest).collect(),
            children: parsed.manifests.into_iter().map(|d| d.digest).collect(),
            event: username.map(|u| OutboxEvent {
                operation: "create".into(),
                repo: repo.to_string(),
                reference: reference.to_string(),
                digest: tag.is_some().then(|| digest.to_string()),
                username: u.to_owned(),
                at: now(),
            }),
            tag,
        };
        let r = self.meta.put_manifest(&new).await;
        let usage = match &r {
            Ok(PutManifestOutcome::StoredInQuota(u)) => Some(u),
            _ => None,
        };
        self.report_quota(repo, &digest, &r, usage);
        match r? {
            PutManifestOutcome::Stored | PutManifestOutcome::StoredInQuota(_) => Ok(PushedManifest { digest, subject }),
            PutManifestOutcome::MissingBlobs(digests) => Err(CoreError::ManifestBlobUnknown { kind: "blobs", digests }),
            PutManifestOutcome::MissingManifests(digests) => {
                Err(CoreError::ManifestBlobUnknown { kind: "manifests", digests })
            }
        }
    }

    /// Copies the manifest `digest` of `from` into `to` (Harbor's artifact copy): for an
    /// index its children first (those `to` already has are kept), then each manifest's
    /// blobs, mounted from `from` (so `to`'s project quota counts them), then the manifest,
    /// then each of `tags` pointed at it in `to` (a tag already there moves), then its
    /// accessories (see [`Registry::copy_accessories`]). `Ok(false)`, with nothing changed,
    /// if `to` already has the manifest. A push by `username`: the copied manifest's and
    /// its tags' `create` events commit with them.
    pub async fn copy_manifest(
        &self,
        from: &RepoName,
        to: &RepoName,
        digest: &Digest,
        tags: &[Tag],
        username: Option<&str>,
    ) -> Result<bool, CoreError> {
        if self.meta.get_manifest(to, &Reference::Digest(digest.clone())).await?.is_some() {
            return Ok(false);
        }
        let m = self.copy_one(from, to, digest, username, 0).await?;
        for t in tags {
            self.put_manifest_by(to, &Reference::Tag(t.clone()), Some(&m.media_type), m.content.clone(), username)
                .await?;
        }
        self.copy_accessories(from, to, digest).await?;
        Ok(true)
    }

    /// Copies what belongs to the manifest `subject` (already in `to`) from `from`, as
    /// Harbor 2.8+ does on a copy, so that a verifier finds the copy's signature where it
    /// looks: its accessories under cosign's tag scheme ([`cosign_tags`]; the tag is
    /// created in `to` unless `to` already has that tag, whose own signatures are kept)
    /// and its OCI referrers (manifests whose `subject` it is), each with its blobs and
    /// children; then, recursively, the accessories of those accessories and of an
    /// index's children (per-platform signatures). At most [`MAX_ACCESSORY_WALK`]
    /// manifests are visited, which bounds the work a crafted chain can cause. Returns
    /// how many manifests were copied. Accessories carry no events: the copy's own
    /// `create` event stands for them, as in Harbor.
    pub async fn copy_accessories(&self, from: &RepoName, to: &RepoName, subject: &Digest) -> Result<usize, CoreError> {
        let mut seen = std::collections::HashSet::from([subject.clone()]);
        let mut queue = vec![subject.clone()];
        let mut copied = 0;
        while let Some(d) = queue.pop() {
            if let Some(m) = self.meta.get_manifest(from, &Reference::Digest(d.clone())).await? {
                for child in manifest::parse(&m.content, Some(&m.media_type))?.manifests {
                    if seen.len() < MAX_ACCESSORY_WALK && seen.insert(child.digest.clone()) {
                        queue.push(child.digest);
                    }
                }
            }
            let mut found: Vec<(Digest, Option<Tag>)> = Vec::new();
            for tag in cosign_tags(&d) {
                if let Some(acc) = self.meta.get_manifest(from, &Reference::Tag(tag.clone())).await? {
                    found.push((acc.digest, Some(tag)));
                }
            }
            for r in self.meta.referrers(from, &d, None).await? {
                found.push((r.digest, None));
            }
            for (acc, tag) in found {
                if self.meta.get_manifest(to, &Reference::Digest(acc.clone())).await?.is_none() {
                    self.copy_one(from, to, &acc, None, 0).await?;
                    copied += 1;
                }
                if let Some(tag) = tag
                    && self.meta.get_manifest(to, &Reference::Tag(tag.clone())).await?.is_none()
                {
                    let m = self.manifest(to, &Reference::Digest(acc.clone())).await?;
                    self.put_manifest_by(to, &Reference::Tag(tag), Some(&m.media_type), m.content, None).await?;
                }
                if seen.len() < MAX_ACCESSORY_WALK && seen.insert(acc.clone()) {
                    queue.push(acc);
                }
            }
        }
        Ok(copied)
    }

    /// One manifest of [`Registry::copy_manifest`], children first, at most 8 indexes deep
    /// (digests make cycles impossible; this bounds the work).
    fn copy_one<'a>(
        &'a self,
        from: &'a RepoName,
        to: &'a RepoName,
        digest: &'a Digest,
        username: Option<&'a str>,
        depth: u32,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<StoredManifest, CoreError>> + Send + 'a>> {
        Box::pin(async move {
            let m = self.manifest(from, &Reference::Digest(digest.clone())).await?;
            let parsed = manifest::parse(&m.content, Some(&m.media_type))?;
            for child in &parsed.manifests {
                if depth < 8 && self.meta.get_manifest(to, &Reference::Digest(child.digest.clone())).await?.is_none() {
                    self.copy_one(from, to, &child.digest, None, depth + 1).await?;
                }
            }
            for b in &parsed.blobs {
                if self.meta.repo_blob(to, &b.digest).await?.is_none() {
                    self.mount_blob(from, to, &b.digest)
                        .await?
                        .ok_or_else(|| CoreError::BlobUnknown(b.digest.clone()))?;
                }
            }
            self.put_manifest_by(
                to,
                &Reference::Digest(digest.clone()),
                Some(&m.media_type),
                m.content.clone(),
                username,
            )
            .await?;
            Ok(m)
        })
    }

    pub async fn manifest(&self, repo: &RepoName, reference: &Reference) -> Result<StoredManifest, CoreError> {
        self.meta.get_manifest(repo, reference).await?.ok_or_else(|| CoreError::ManifestUnknown(reference.to_string()))
    }

    pub async fn delete_manifest(&self, repo: &RepoName, reference: &Reference) -> Result<(), CoreError> {
        self.delete_manifest_by(repo, reference, None).await
    }

    /// A delete by `username`: its `delete` event commits with the deletion, in the outbox.
    pub async fn delete_manifest_by(
        &self,
        repo: &RepoName,
        reference: &Reference,
        username: Option<&str>,
    ) -> Result<(), CoreError> {
        let event = username.map(|u| OutboxEvent {
            operation: "delete".into(),
            repo: repo.to_string(),
            reference: reference.to_string(),
            digest: None,
            username: u.to_owned(),
            at: now(),
        });
        let found = match reference {
            Reference::Digest(d) => self.meta.delete_manifest(repo, d, event.as_ref()).await?,
            Reference::Tag(t) => self.meta.delete_tag(repo, t, event.as_ref()).await?,
        };
        if found { Ok(()) } else { Err(CoreError::ManifestUnknown(reference.to_string())) }
    }

    pub async fn tags(&self, repo: &RepoName, last: Option<&str>, limit: usize) -> Result<Vec<String>, CoreError> {
        if let Some(l) = last {
            l.parse::<Tag>().map_err(|e| CoreError::PaginationInvalid { param: "last", reason: e.to_string() })?;
        }
        self.meta.list_tags(repo, last, limit).await?.ok_or_else(|| CoreError::NameUnknown(repo.to_string()))
    }

    pub async fn catalog(&self, last: Option<&str>, limit: usize) -> Result<Vec<String>, CoreError> {
        Ok(self.meta.list_repositories(last, limit).await?)
    }

    pub async fn referrers(
        &self,
        repo: &RepoName,
        subject: &Digest,
        artifact_type: Option<&str>,
    ) -> Result<Vec<Referrer>, CoreError> {
        Ok(self.meta.referrers(repo, subject, artifact_type).await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cosign_tags_name_the_three_accessory_kinds() {
        let d: Digest = format!("sha256:{}", "ab".repeat(32)).parse().unwrap();
        let tags: Vec<String> = cosign_tags(&d).iter().map(|t| t.as_str().to_owned()).collect();
        let hex = "ab".repeat(32);
        assert_eq!(tags, [format!("sha256-{hex}.sig"), format!("sha256-{hex}.att"), format!("sha256-{hex}.sbom")]);
    }
}
