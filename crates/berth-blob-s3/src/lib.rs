//! An S3-compatible blob store, so several Berth instances can share object storage.
//!
//! Keys follow CNCF Distribution's layout under an optional prefix, so an existing
//! Distribution or Harbor bucket is served in place:
//! - `<prefix>/docker/registry/v2/blobs/<alg>/<2 hex>/<hex>/data` — committed blobs;
//! - `<prefix>/docker/registry/v2/repositories/<name>/_uploads/<id>/<part>` — upload parts.
//!
//! As in the filesystem driver, every chunk of an upload is its own object, and only
//! the metadata DB decides which parts belong to the upload. A blob key is only ever
//! written whole, by one PUT, CopyObject or CompleteMultipartUpload (all atomic in S3),
//! so a reader never sees a partial blob. Committing parts of at least 5 MiB is a
//! server-side multipart copy (no bytes pass through Berth); smaller parts are streamed
//! through one multipart upload (or one PUT when small).
//!
//! Every request has a deadline: `timeout` for metadata requests; data transfers are
//! bounded by an idle timeout (reads) or a minimum rate (uploads, copies) instead of
//! a total. Transient failures (5xx, 429/SlowDown, connection errors) of idempotent
//! requests are retried with backoff; reads resume with a ranged GET where they broke.

mod client;
mod creds;
mod sigv4;
#[cfg(feature = "testing")]
pub mod testing;
mod xml;

use std::collections::HashMap;
use std::fmt;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use bytes::{Bytes, BytesMut};
use futures_util::{StreamExt, TryStreamExt};
use reqwest::Method;
use tokio::task::JoinHandle;

use berth_core::blobstore::{BlobReader, BlobStore, ByteStream, ListedBlob, OWNED_MARKER, WriteError, WrittenPart};
use berth_core::{Digest, Hasher, RepoName};

use client::{Client, Error, Request};
pub use creds::AwsEnv;

/// S3's smallest part of a multipart upload (but the last).
const MIN_PART: u64 = 5 * 1024 * 1024;
/// S3's largest object a single CopyObject or UploadPartCopy may copy.
const MAX_COPY: u64 = 5 * 1024 * 1024 * 1024;
/// S3's largest part count of a multipart upload.
const MAX_PARTS: usize = 10_000;
/// Bodies are sent in parts this large; the size grows with the part number
/// (×2 every 1000 parts, up to ×8) so 10,000 parts hold ~490 GiB.
const PART_SIZE: usize = 8 * 1024 * 1024;
/// Uploads of a known size get `timeout` plus the time this rate needs for them.
const MIN_UPLOAD_RATE: u64 = 1024 * 1024;
/// Server-side copies get `timeout` plus the time this rate needs for them.
const MIN_COPY_RATE: u64 = 16 * 1024 * 1024;
/// How many UploadPartCopy / DeleteObject requests run at once.
const CONCURRENCY: usize = 4;
/// How often a read that broke off resumes where it stopped before giving up.
const READ_RESUMES: u32 = 3;
/// The longest validity S3 accepts for a presigned URL.
const MAX_PRESIGN: Duration = Duration::from_secs(7 * 24 * 3600);

/// Where and how to reach the bucket.
#[derive(Clone)]
pub struct S3Options {
    /// `http(s)://host[:port]`, e.g. `http://127.0.0.1:3900`; empty means AWS
    /// (`https://s3.<region>.amazonaws.com`).
    pub endpoint: String,
    /// The SigV4 signing region (`us-east-1` when empty; Garage's default is `garage`).
    pub region: String,
    pub bucket: String,
    /// Keys live under `<prefix>/docker/registry/v2/…` (Distribution's `rootdirectory`);
    /// empty for the bucket's root.
    pub prefix: String,
    /// Static keys; both empty means the credential chain (environment, profile, web
    /// identity, container, instance metadata) from `env`.
    pub access_key: String,
    pub secret_key: String,
    /// The `AWS_*` variables the credential chain reads.
    pub env: AwsEnv,
    /// Server-side encryption asked for on every object written.
    pub sse: Sse,
    /// `endpoint/bucket/key` instead of `bucket.endpoint/key`; most self-hosted
    /// servers (Garage, MinIO, Ceph) want path style.
    pub path_style: bool,
    /// Deadline of a metadata request, and the idle limit of a data transfer.
    pub timeout: Duration,
}

impl Default for S3Options {
    fn default() -> Self {
        S3Options {
            endpoint: String::new(),
            region: "us-east-1".into(),
            bucket: String::new(),
            prefix: String::new(),
            access_key: String::new(),
            secret_key: String::new(),
            env: AwsEnv::default(),
            sse: Sse::None,
            path_style: false,
            timeout: Duration::from_secs(30),
        }
    }
}

impl fmt::Debug for S3Options {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("S3Options")
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field("bucket", &self.bucket)
            .field("prefix", &self.prefix)
            .field("access_key", &self.access_key)
            .field("secret_key", &if self.secret_key.is_empty() { "" } else { "<hidden>" })
            .field("env", &self.env)
            .field("sse", &self.sse)
            .field("path_style", &self.path_style)
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// Server-side encryption of the objects Berth writes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Sse {
    /// Whatever the bucket's default is.
    #[default]
    None,
    /// SSE-S3: `x-amz-server-side-encryption: AES256`.
    Aes256,
    /// SSE-KMS with this key (id, ARN or alias), or the account's `aws/s3` key when `None`.
    Kms { key_id: Option<String> },
}

impl Sse {
    fn headers(&self) -> Vec<(&'static str, String)> {
        match self {
            Sse::None => vec![],
            Sse::Aes256 => vec![("x-amz-server-side-encryption", "AES256".into())],
            Sse::Kms { key_id } => {
                let mut h = vec![("x-amz-server-side-encryption", "aws:kms".to_string())];
                if let Some(k) = key_id {
                    h.push(("x-amz-server-side-encryption-aws-kms-key-id", k.clone()));
                }
                h
            }
        }
    }
}

/// Where the store's credentials come from, without opening it (for `berth config` and tests).
pub fn credential_source(opts: &S3Options) -> io::Result<String> {
    Ok(select_source(opts)?.describe())
}

fn select_source(opts: &S3Options) -> io::Result<creds::Source> {
    let region = if opts.region.is_empty() { "us-east-1" } else { opts.region.as_str() };
    let keys = match (opts.access_key.is_empty(), opts.secret_key.is_empty()) {
        (false, false) => Some((opts.access_key.as_str(), opts.secret_key.as_str())),
        (true, true) => None,
        (false, true) => {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "storage.s3_secret_key: required when storage.s3_access_key is set (set both, or neither to use \
                 the AWS credential chain)",
            ));
        }
        (true, false) => {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "storage.s3_access_key: required when storage.s3_secret_key is set (set both, or neither to use \
                 the AWS credential chain)",
            ));
        }
    };
    creds::select(keys, &opts.env, region)
}

/// The S3 driver. Cheap to clone; clones share the connection pool.
#[derive(Clone)]
pub struct S3BlobStore {
    inner: Arc<Inner>,
}

struct Inner {
    client: Client,
    /// The key prefix: empty, or the configured prefix with one trailing `/`.
    root: String,
    sse: Vec<(&'static str, String)>,
    copied: AtomicU64,
    streamed: AtomicU64,
}

/// How commits assembled their blobs since the store was opened.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CommitCounts {
    /// Assembled in the storage (CopyObject or UploadPartCopy), no bytes through Berth.
    pub server_side: u64,
    /// Streamed through Berth (parts under 5 MiB), or an empty blob.
    pub streamed: u64,
}

impl fmt::Debug for S3BlobStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("S3BlobStore")
            .field("endpoint", &self.inner.client.endpoint)
            .field("bucket", &self.inner.client.bucket)
            .field("prefix", &self.inner.root)
            .finish()
    }
}

/// Installs rustls' ring provider for the process unless one is installed. reqwest is
/// built without a TLS provider of its own (no aws-lc-rs build), and Cargo's feature
/// unification gives every reqwest in the same binary that setting: any reqwest client
/// in a process that links this crate must be built after this ran.
pub fn install_crypto_provider() {
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        // Losing the race to another installer is fine.
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
}

impl S3BlobStore {
    /// Connects to the bucket and checks it can be listed, naming the problem when not:
    /// endpoint unreachable (`ConnectionRefused`/`TimedOut`), bucket missing
    /// (`NotFound`), credentials rejected (`PermissionDenied`), wrong region.
    pub async fn open(opts: S3Options) -> io::Result<Self> {
        let invalid = |m: &str| io::Error::new(io::ErrorKind::InvalidInput, m.to_string());
        if opts.bucket.is_empty() {
            return Err(invalid("S3 bucket name is empty"));
        }
        if opts.timeout.is_zero() {
            return Err(invalid("S3 timeout must be positive"));
        }
        let region = if opts.region.is_empty() { "us-east-1".to_string() } else { opts.region.clone() };
        let ep = client::endpoint(&opts.endpoint, &region, &opts.bucket, opts.path_style)?;
        install_crypto_provider();
        let http = reqwest::Client::builder()
            .connect_timeout(opts.timeout.min(Duration::from_secs(10)))
            .redirect(reqwest::redirect::Policy::none())
            .pool_idle_timeout(Duration::from_secs(50))
            .tcp_nodelay(true)
            .build()
            .map_err(|e| io::Error::other(format!("S3 HTTP client: {e}")))?;
        let source = select_source(&opts)?;
        // A fetch gets the storage deadline, but never more than 10 s: a start on a
        // machine without metadata service should not hang long.
        let creds = creds::Provider::new(source, opts.timeout.min(Duration::from_secs(10)))?;
        let prefix = opts.prefix.trim_matches('/');
        let root = if prefix.is_empty() { String::new() } else { format!("{prefix}/") };
        let inner = Inner {
            client: Client::new(http, creds.clone(), region.clone(), ep, opts.bucket.clone(), opts.timeout),
            root,
            sse: opts.sse.headers(),
            copied: AtomicU64::new(0),
            streamed: AtomicU64::new(0),
        };
        let probe = Request::new("ListObjectsV2", Method::GET, None, opts.timeout)
            .query("list-type", "2")
            .query("max-keys", "1")
            .query("prefix", inner.root.clone());
        if let Err(e) = inner.client.call(probe).await {
            return Err(inner.explain_open_error(e, &region));
        }
        creds.spawn_refresher();
        tracing::info!(source = %creds.source().describe(), "S3 credentials");
        Ok(S3BlobStore { inner: Arc::new(inner) })
    }

    /// A URL that GETs blob `digest` straight from the storage for `expires` (SigV4
    /// query-string presigning), for answering blob GETs with a redirect. `None` when
    /// `expires` is zero or longer than S3 allows (7 days). The URL is not checked: the
    /// caller knows the blob exists.
    pub fn presigned_get(&self, digest: &Digest, expires: Duration) -> Option<String> {
        if expires.is_zero() || expires > MAX_PRESIGN {
            return None;
        }
        let secs = expires.as_secs().max(1);
        self.inner.client.presign_get(&self.inner.blob_key(digest), secs, SystemTime::now())
    }

    /// How commits assembled their blobs so far (server-side copy or streaming).
    pub fn commit_counts(&self) -> CommitCounts {
        CommitCounts {
            server_side: self.inner.copied.load(Ordering::Relaxed),
            streamed: self.inner.streamed.load(Ordering::Relaxed),
        }
    }

    /// Where the credentials come from (`environment (AWS_ACCESS_KEY_ID)`, a profile, …).
    pub fn credential_source(&self) -> String {
        self.inner.client.creds.source().describe()
    }

    /// How many times credentials were fetched from their source (for tests).
    pub fn credential_fetches(&self) -> u64 {
        self.inner.client.creds.fetches()
    }

    /// The object key of blob `digest` (for operators and tests).
    pub fn blob_key(&self, digest: &Digest) -> String {
        self.inner.blob_key(digest)
    }
}

/// One listed object.
struct Object {
    key: String,
    size: u64,
    modified: Option<SystemTime>,
}

fn invalid_id() -> io::Error {
    io::Error::new(io::ErrorKind::NotFound, "no such upload")
}

fn data_timeout(base: Duration, len: u64, rate: u64) -> Duration {
    base + Duration::from_secs(len / rate)
}

impl Inner {
    fn blob_key(&self, digest: &Digest) -> String {
        let hex = digest.hex();
        format!("{}docker/registry/v2/blobs/{}/{}/{hex}/data", self.root, digest.algorithm().as_str(), &hex[..2])
    }

    fn owned_key(&self) -> String {
        format!("{}docker/registry/v2/{OWNED_MARKER}", self.root)
    }

    fn repos_prefix(&self) -> String {
        format!("{}docker/registry/v2/repositories/", self.root)
    }

    fn upload_prefix(&self, repo: &RepoName, id: &str) -> io::Result<String> {
        // The id comes from a URL: only accept what we generate (a UUID), as the
        // filesystem driver does.
        if id.is_empty() || id.len() > 64 || !id.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-') {
            return Err(invalid_id());
        }
        Ok(format!("{}{}/_uploads/{id}/", self.repos_prefix(), repo.as_str()))
    }

    fn part_key(&self, repo: &RepoName, id: &str, part: &str) -> io::Result<String> {
        if part.is_empty() || !part.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
            return Err(io::Error::new(io::ErrorKind::InvalidData, format!("invalid upload part name {part:?}")));
        }
        Ok(format!("{}{part}", self.upload_prefix(repo, id)?))
    }

    fn explain_open_error(&self, e: Error, region: &str) -> io::Error {
        let c = &self.client;
        let creds = c.creds.source().describe();
        let (b, ep) = (&c.bucket, &c.endpoint);
        let (kind, msg) = match &e {
            Error::Transport { connect: true, detail, .. } => {
                (io::ErrorKind::ConnectionRefused, format!("S3 endpoint {ep} is unreachable: {detail}"))
            }
            Error::Transport { detail, .. } => {
                (io::ErrorKind::ConnectionAborted, format!("S3 endpoint {ep} failed to answer: {detail}"))
            }
            Error::Timeout { after, .. } => {
                (io::ErrorKind::TimedOut, format!("S3 endpoint {ep} did not answer within {after:?}"))
            }
            Error::Credentials { detail, .. } => {
                (io::ErrorKind::PermissionDenied, format!("S3 credentials from {creds}: {detail}"))
            }
            Error::Status { status, code, message, region: bucket_region, .. } => match code.as_str() {
                "NoSuchBucket" => (io::ErrorKind::NotFound, format!("S3 bucket {b:?} does not exist at {ep}")),
                "InvalidAccessKeyId" | "SignatureDoesNotMatch" | "InvalidSignature" => (
                    io::ErrorKind::PermissionDenied,
                    format!(
                        "S3 rejected the credentials ({creds}, access key {:?}) for bucket {b:?} at {ep}: {code}: \
                         {message}",
                        self.access_key()
                    ),
                ),
                "AuthorizationHeaderMalformed" | "PermanentRedirect" | "IllegalLocationConstraintException" => (
                    io::ErrorKind::InvalidInput,
                    match bucket_region {
                        Some(r) => format!("S3 bucket {b:?} is in region {r:?}, not {region:?}"),
                        None => format!("S3 bucket {b:?} at {ep}: wrong region {region:?}? {code}: {message}"),
                    },
                ),
                _ if *status == 403 => (
                    io::ErrorKind::PermissionDenied,
                    format!(
                        "S3 refused access key {:?} ({creds}) to bucket {b:?} at {ep} (wrong credentials, or no \
                         permission on the bucket): {code}: {message}",
                        self.access_key()
                    ),
                ),
                _ if *status == 404 => {
                    (io::ErrorKind::NotFound, format!("S3 bucket {b:?} does not exist at {ep}: {code} {message}"))
                }
                _ => (io::ErrorKind::Other, format!("S3 bucket {b:?} at {ep}: {e}")),
            },
        };
        io::Error::new(kind, msg)
    }

    fn access_key(&self) -> String {
        self.client.creds.cached().map(|c| c.access_key.clone()).unwrap_or_default()
    }

    async fn head(&self, key: &str) -> Result<Option<u64>, Error> {
        match self.client.call(Request::new("HeadObject", Method::HEAD, Some(key), self.client.timeout)).await {
            Ok(r) => {
                let len = r
                    .headers
                    .get("content-length")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse::<u64>().ok())
                    .unwrap_or(0);
                Ok(Some(len))
            }
            Err(e) if e.status() == Some(404) => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn put(&self, key: &str, body: Bytes) -> Result<(), Error> {
        let t = data_timeout(self.client.timeout, body.len() as u64, MIN_UPLOAD_RATE);
        let mut req = Request::new("PutObject", Method::PUT, Some(key), t).body(body);
        req.headers.extend(self.sse.iter().cloned());
        self.client.call(req).await.map(drop)
    }

    async fn delete_key(&self, key: &str) -> Result<(), Error> {
        match self.client.call(Request::new("DeleteObject", Method::DELETE, Some(key), self.client.timeout)).await {
            Err(e) if e.status() != Some(404) => Err(e),
            _ => Ok(()),
        }
    }

    /// Every object under `prefix` (and, with a delimiter, the common prefixes).
    async fn list(&self, prefix: &str, delimiter: Option<&str>) -> Result<(Vec<Object>, Vec<String>), Error> {
        let (mut objects, mut prefixes) = (Vec::new(), Vec::new());
        let mut token: Option<String> = None;
        loop {
            let mut req = Request::new("ListObjectsV2", Method::GET, None, self.client.timeout)
                .query("list-type", "2")
                .query("prefix", prefix);
            if let Some(d) = delimiter {
                req = req.query("delimiter", d);
            }
            if let Some(t) = &token {
                req = req.query("continuation-token", t.clone());
            }
            let resp = self.client.call(req).await?;
            let text = String::from_utf8_lossy(&resp.body);
            for c in xml::blocks(&text, "Contents") {
                let Some(key) = xml::text(c, "Key") else { continue };
                let size = xml::text(c, "Size").and_then(|s| s.parse().ok()).unwrap_or(0);
                let modified = xml::text(c, "LastModified").and_then(|s| sigv4::parse_iso8601(&s));
                objects.push(Object { key, size, modified });
            }
            prefixes.extend(xml::blocks(&text, "CommonPrefixes").filter_map(|c| xml::text(c, "Prefix")));
            token = match xml::text(&text, "IsTruncated").as_deref() {
                Some("true") => xml::text(&text, "NextContinuationToken"),
                _ => None,
            };
            if token.is_none() {
                return Ok((objects, prefixes));
            }
        }
    }

    /// One page of at most `max` objects under `prefix` after key `start_after`, and
    /// whether more follow.
    async fn list_page(
        &self,
        prefix: &str,
        start_after: Option<&str>,
        max: usize,
    ) -> Result<(Vec<Object>, bool), Error> {
        let mut req = Request::new("ListObjectsV2", Method::GET, None, self.client.timeout)
            .query("list-type", "2")
            .query("prefix", prefix)
            .query("max-keys", max.clamp(1, 1000).to_string());
        if let Some(s) = start_after {
            req = req.query("start-after", s);
        }
        let resp = self.client.call(req).await?;
        let text = String::from_utf8_lossy(&resp.body);
        let objects = xml::blocks(&text, "Contents")
            .filter_map(|c| {
                Some(Object {
                    key: xml::text(c, "Key")?,
                    size: xml::text(c, "Size").and_then(|s| s.parse().ok()).unwrap_or(0),
                    modified: xml::text(c, "LastModified").and_then(|s| sigv4::parse_iso8601(&s)),
                })
            })
            .collect();
        Ok((objects, xml::text(&text, "IsTruncated").as_deref() == Some("true")))
    }

    /// Multipart uploads in progress under `prefix`, as (key, upload id): left by a
    /// writer that crashed or was cancelled before it could abort.
    async fn multipart_uploads(&self, prefix: &str) -> Result<Vec<(String, String)>, Error> {
        let req = Request::new("ListMultipartUploads", Method::GET, None, self.client.timeout)
            .query("uploads", "")
            .query("prefix", prefix);
        let resp = self.client.call(req).await?;
        let text = String::from_utf8_lossy(&resp.body);
        Ok(xml::blocks(&text, "Upload")
            .filter_map(|u| Some((xml::text(u, "Key")?, xml::text(u, "UploadId")?)))
            .collect())
    }

    async fn create_multipart(&self, key: &str) -> Result<String, Error> {
        let mut req =
            Request::new("CreateMultipartUpload", Method::POST, Some(key), self.client.timeout).query("uploads", "");
        req.headers.extend(self.sse.iter().cloned());
        let resp = self.client.call(req).await?;
        xml::text(&String::from_utf8_lossy(&resp.body), "UploadId").ok_or_else(|| Error::Status {
            what: format!("S3 CreateMultipartUpload s3://{}/{key}", self.client.bucket),
            status: 200,
            code: String::new(),
            message: "answer has no UploadId".into(),
            region: None,
        })
    }

    async fn upload_part(&self, key: &str, upload_id: &str, n: u32, body: Bytes) -> Result<(u32, String), Error> {
        let t = data_timeout(self.client.timeout, body.len() as u64, MIN_UPLOAD_RATE);
        let req = Request::new("UploadPart", Method::PUT, Some(key), t)
            .query("partNumber", n.to_string())
            .query("uploadId", upload_id)
            .body(body);
        let resp = self.client.call(req).await?;
        let etag = resp.headers.get("etag").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
        Ok((n, etag))
    }

    async fn upload_part_copy(
        &self,
        key: &str,
        upload_id: &str,
        n: u32,
        src: &str,
        range: (u64, u64),
    ) -> Result<(u32, String), Error> {
        let t = data_timeout(self.client.timeout, range.1 - range.0, MIN_COPY_RATE);
        let mut req = Request::new("UploadPartCopy", Method::PUT, Some(key), t)
            .query("partNumber", n.to_string())
            .query("uploadId", upload_id)
            .header("x-amz-copy-source", self.client.copy_source(src))
            .header("x-amz-copy-source-range", format!("bytes={}-{}", range.0, range.1 - 1));
        req.error_in_body = true;
        let resp = self.client.call(req).await?;
        let etag = xml::text(&String::from_utf8_lossy(&resp.body), "ETag").unwrap_or_default();
        Ok((n, etag))
    }

    async fn complete(&self, key: &str, upload_id: &str, parts: &[(u32, String)]) -> Result<(), Error> {
        let mut body = String::from("<CompleteMultipartUpload>");
        for (n, etag) in parts {
            body.push_str(&format!("<Part><PartNumber>{n}</PartNumber><ETag>{}</ETag></Part>", xml::escape(etag)));
        }
        body.push_str("</CompleteMultipartUpload>");
        // Assembling can take a while on the server for many or big parts.
        let t = self.client.timeout * 2 + Duration::from_millis(10 * parts.len() as u64);
        let mut req = Request::new("CompleteMultipartUpload", Method::POST, Some(key), t)
            .query("uploadId", upload_id)
            .body(body.into());
        req.error_in_body = true;
        match self.client.call(req).await {
            Ok(_) => Ok(()),
            // A retry after a lost answer finds the upload gone: the object is there.
            Err(e) if e.code() == Some("NoSuchUpload") && self.head(key).await.ok().flatten().is_some() => Ok(()),
            Err(e) => Err(e),
        }
    }

    async fn abort(&self, key: &str, upload_id: &str) {
        let req = Request::new("AbortMultipartUpload", Method::DELETE, Some(key), self.client.timeout)
            .query("uploadId", upload_id);
        if let Err(e) = self.client.call(req).await
            && e.status() != Some(404)
        {
            tracing::warn!(error = %e, "could not abort an S3 multipart upload (a bucket lifecycle rule should)");
        }
    }

    async fn copy_object(&self, dst: &str, src: &str, size: u64) -> Result<(), Error> {
        let t = data_timeout(self.client.timeout, size, MIN_COPY_RATE);
        let mut req = Request::new("CopyObject", Method::PUT, Some(dst), t)
            .header("x-amz-copy-source", self.client.copy_source(src));
        req.headers.extend(self.sse.iter().cloned());
        req.error_in_body = true;
        self.client.call(req).await.map(drop)
    }

    /// GETs `len > 0` bytes of `key` from `start`.
    async fn get_range(&self, key: &str, start: u64, len: u64) -> Result<reqwest::Response, Error> {
        let req = Request::new("GetObject", Method::GET, Some(key), self.client.timeout)
            .header("range", format!("bytes={start}-{}", start + len - 1));
        let resp = self.client.stream(req).await?;
        if resp.status() == reqwest::StatusCode::OK && start > 0 {
            return Err(Error::Status {
                what: format!("S3 GetObject s3://{}/{key}", self.client.bucket),
                status: 200,
                code: String::new(),
                message: "the server ignored the Range header".into(),
                region: None,
            });
        }
        Ok(resp)
    }

    /// The sizes of an upload's parts, in order (one listing, not a HEAD per part).
    async fn part_sizes(&self, repo: &RepoName, id: &str, parts: &[String]) -> io::Result<Vec<(String, u64)>> {
        let prefix = self.upload_prefix(repo, id)?;
        let keys = parts.iter().map(|p| self.part_key(repo, id, p)).collect::<io::Result<Vec<_>>>()?;
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let (objects, _) = self.list(&prefix, None).await?;
        let sizes: HashMap<String, u64> = objects.into_iter().map(|o| (o.key, o.size)).collect();
        keys.into_iter()
            .map(|k| match sizes.get(&k) {
                Some(&s) => Ok((k, s)),
                None => Err(io::Error::new(
                    io::ErrorKind::NotFound,
                    format!("upload part s3://{}/{k} is missing", self.client.bucket),
                )),
            })
            .collect()
    }
}

type ReqwestStream = Pin<Box<dyn futures_core::Stream<Item = reqwest::Result<Bytes>> + Send>>;

/// Streams `[pos, end)` of `key`, starting with `first` (an answer to a GET from
/// `pos`, if already made). A transfer idle for `timeout` or broken off resumes with
/// a ranged GET from where it stopped, a few times.
fn read_stream(
    inner: Arc<Inner>,
    key: String,
    pos: u64,
    end: u64,
    first: Option<reqwest::Response>,
) -> impl futures_core::Stream<Item = io::Result<Bytes>> + Send + 'static {
    struct St {
        inner: Arc<Inner>,
        key: String,
        pos: u64,
        end: u64,
        body: Option<ReqwestStream>,
        resumes: u32,
        done: bool,
    }
    let body = first.map(|r| Box::pin(r.bytes_stream()) as ReqwestStream);
    let st = St { inner, key, pos, end, body, resumes: 0, done: false };
    futures_util::stream::unfold(st, |mut st| async move {
        loop {
            if st.done || st.pos >= st.end {
                return None;
            }
            let Some(body) = st.body.as_mut() else {
                match st.inner.get_range(&st.key, st.pos, st.end - st.pos).await {
                    Ok(resp) => st.body = Some(Box::pin(resp.bytes_stream())),
                    Err(e) => {
                        st.done = true;
                        return Some((Err(e.into()), st));
                    }
                }
                continue;
            };
            let idle = st.inner.client.timeout;
            let problem = match tokio::time::timeout(idle, body.next()).await {
                Ok(Some(Ok(mut chunk))) => {
                    let left = st.end - st.pos;
                    if chunk.len() as u64 > left {
                        chunk.truncate(left as usize);
                    }
                    st.pos += chunk.len() as u64;
                    if chunk.is_empty() {
                        continue;
                    }
                    return Some((Ok(chunk), st));
                }
                Ok(Some(Err(e))) => format!("broke off: {e}"),
                Ok(None) => "ended early".to_string(),
                Err(_) => format!("idle for {idle:?}"),
            };
            st.body = None;
            if st.resumes >= READ_RESUMES {
                st.done = true;
                let e = io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!(
                        "S3 GetObject s3://{}/{}: transfer {problem} at byte {}",
                        st.inner.client.bucket, st.key, st.pos
                    ),
                );
                return Some((Err(e), st));
            }
            st.resumes += 1;
            tracing::debug!(key = %st.key, pos = st.pos, %problem, "resuming S3 read");
        }
    })
}

/// Writes one object from a stream of chunks: one PUT if it fits in a part, else a
/// multipart upload with one part in flight while the next fills. Memory: two parts.
/// The object appears only when `finish` succeeds; dropped unfinished, the multipart
/// upload is aborted.
struct ObjectWriter {
    inner: Arc<Inner>,
    key: String,
    upload_id: Option<String>,
    done: Vec<(u32, String)>,
    inflight: Option<JoinHandle<Result<(u32, String), Error>>>,
    buf: BytesMut,
    next: u32,
}

fn part_size(n: u32) -> usize {
    PART_SIZE << ((n.saturating_sub(1) / 1000).min(3))
}

impl ObjectWriter {
    fn new(inner: Arc<Inner>, key: String) -> Self {
        ObjectWriter { inner, key, upload_id: None, done: Vec::new(), inflight: None, buf: BytesMut::new(), next: 1 }
    }

    async fn write(&mut self, mut data: Bytes) -> Result<(), Error> {
        while !data.is_empty() {
            let size = part_size(self.next);
            if self.buf.is_empty() && data.len() >= size {
                let part = data.split_to(size);
                self.send_part(part).await?;
                continue;
            }
            let take = (size - self.buf.len()).min(data.len());
            self.buf.extend_from_slice(&data.split_to(take));
            if self.buf.len() >= size {
                let part = self.buf.split().freeze();
                self.send_part(part).await?;
            }
        }
        Ok(())
    }

    async fn join_inflight(&mut self) -> Result<(), Error> {
        if let Some(h) = self.inflight.take() {
            let part = h.await.map_err(|e| Error::Transport {
                what: format!("S3 UploadPart s3://{}/{}", self.inner.client.bucket, self.key),
                endpoint: self.inner.client.endpoint.clone(),
                detail: format!("upload task failed: {e}"),
                connect: false,
            })??;
            self.done.push(part);
        }
        Ok(())
    }

    async fn send_part(&mut self, part: Bytes) -> Result<(), Error> {
        let upload_id = match &self.upload_id {
            Some(id) => id.clone(),
            None => {
                let id = self.inner.create_multipart(&self.key).await?;
                self.upload_id = Some(id.clone());
                id
            }
        };
        self.join_inflight().await?;
        let n = self.next;
        self.next += 1;
        let (inner, key) = (self.inner.clone(), self.key.clone());
        self.inflight = Some(tokio::spawn(async move { inner.upload_part(&key, &upload_id, n, part).await }));
        Ok(())
    }

    async fn finish(&mut self) -> Result<(), Error> {
        if self.upload_id.is_none() {
            let body = self.buf.split().freeze();
            return self.inner.put(&self.key, body).await;
        }
        if !self.buf.is_empty() {
            let part = self.buf.split().freeze();
            self.send_part(part).await?;
        }
        self.join_inflight().await?;
        let id = self.upload_id.clone().unwrap_or_default();
        self.inner.complete(&self.key, &id, &self.done).await?;
        self.upload_id = None;
        Ok(())
    }

    async fn abort(&mut self) {
        if let Some(h) = self.inflight.take() {
            h.abort();
        }
        if let Some(id) = self.upload_id.take() {
            self.inner.abort(&self.key, &id).await;
        }
    }
}

impl Drop for ObjectWriter {
    fn drop(&mut self) {
        if let Some(h) = self.inflight.take() {
            h.abort();
        }
        if let Some(id) = self.upload_id.take()
            && let Ok(rt) = tokio::runtime::Handle::try_current()
        {
            let (inner, key) = (self.inner.clone(), self.key.clone());
            rt.spawn(async move { inner.abort(&key, &id).await });
        }
    }
}

impl S3BlobStore {
    /// Assembles the parts into `target` server-side: one CopyObject, or a multipart
    /// upload of UploadPartCopy ranges (every range but the last is ≥ 5 MiB).
    async fn commit_by_copy(&self, target: &str, parts: &[(String, u64)]) -> Result<(), Error> {
        if let [(src, size)] = parts
            && *size <= MAX_COPY
        {
            return self.inner.copy_object(target, src, *size).await;
        }
        let mut ranges = Vec::new();
        for (src, size) in parts {
            // Parts above the copy limit are split evenly, so no piece is small.
            let pieces = size.div_ceil(MAX_COPY);
            let piece = size.div_ceil(pieces);
            let mut start = 0;
            while start < *size {
                let end = (start + piece).min(*size);
                ranges.push((src.clone(), (start, end)));
                start = end;
            }
        }
        let id = self.inner.create_multipart(target).await?;
        let copies = futures_util::stream::iter(ranges.into_iter().enumerate().map(|(i, (src, range))| {
            let id = id.clone();
            async move { self.inner.upload_part_copy(target, &id, i as u32 + 1, &src, range).await }
        }))
        .buffer_unordered(CONCURRENCY)
        .try_collect::<Vec<_>>()
        .await;
        let result = match copies {
            Ok(mut done) => {
                done.sort_by_key(|(n, _)| *n);
                self.inner.complete(target, &id, &done).await
            }
            Err(e) => Err(e),
        };
        if result.is_err() {
            self.inner.abort(target, &id).await;
        }
        result
    }

    /// Streams the parts through Berth into `target` (one PUT when small).
    async fn commit_by_streaming(&self, target: &str, parts: &[(String, u64)]) -> io::Result<()> {
        let mut w = ObjectWriter::new(self.inner.clone(), target.to_string());
        let result: io::Result<()> = async {
            for (key, size) in parts {
                let mut s = std::pin::pin!(read_stream(self.inner.clone(), key.clone(), 0, *size, None));
                while let Some(chunk) = s.next().await {
                    w.write(chunk?).await?;
                }
            }
            Ok(w.finish().await?)
        }
        .await;
        if result.is_err() {
            w.abort().await;
        }
        result
    }
}

#[async_trait]
impl BlobStore for S3BlobStore {
    fn presigned_get(&self, digest: &Digest, expires: Duration) -> Option<String> {
        S3BlobStore::presigned_get(self, digest, expires)
    }

    async fn stat(&self, digest: &Digest) -> io::Result<Option<u64>> {
        Ok(self.inner.head(&self.inner.blob_key(digest)).await?)
    }

    async fn open(&self, digest: &Digest, start: u64, len: u64) -> io::Result<BlobReader> {
        if len == 0 {
            return Ok(BlobReader { len, body: Box::pin(futures_util::stream::empty()) });
        }
        let key = self.inner.blob_key(digest);
        // The first GET is made here, so a missing blob or a refusing server is an
        // error of `open`, before any answer has started.
        let first = self.inner.get_range(&key, start, len).await?;
        let body = read_stream(self.inner.clone(), key, start, start + len, Some(first));
        Ok(BlobReader { len, body: Box::pin(body) })
    }

    async fn write_part(
        &self,
        repo: &RepoName,
        upload_id: &str,
        mut hasher: Hasher,
        mut body: ByteStream,
        limit: Option<u64>,
    ) -> Result<WrittenPart, WriteError> {
        let name = uuid::Uuid::new_v4().simple().to_string();
        let key = self.inner.part_key(repo, upload_id, &name)?;
        let mut w = ObjectWriter::new(self.inner.clone(), key.clone());
        let mut len: u64 = 0;
        let result: Result<(), WriteError> = async {
            while let Some(item) = body.next().await {
                let chunk = item?;
                len += chunk.len() as u64;
                if let Some(limit) = limit
                    && len > limit
                {
                    return Err(WriteError::TooLong { limit });
                }
                hasher.update(&chunk);
                w.write(chunk).await.map_err(io::Error::from)?;
            }
            w.finish().await.map_err(io::Error::from)?;
            Ok(())
        }
        .await;
        match result {
            Ok(()) => Ok(WrittenPart { name, len, hasher }),
            Err(e) => {
                w.abort().await;
                // In case the object was written but its answer lost.
                let _ = self.inner.delete_key(&key).await;
                Err(e)
            }
        }
    }

    async fn hash_parts(
        &self,
        repo: &RepoName,
        upload_id: &str,
        parts: &[String],
        mut hasher: Hasher,
    ) -> io::Result<Digest> {
        for (key, size) in self.inner.part_sizes(repo, upload_id, parts).await? {
            let mut s = std::pin::pin!(read_stream(self.inner.clone(), key, 0, size, None));
            while let Some(chunk) = s.next().await {
                hasher.update(&chunk?);
            }
        }
        Ok(hasher.finish())
    }

    async fn commit(&self, repo: &RepoName, upload_id: &str, parts: &[String], digest: &Digest) -> io::Result<()> {
        let target = self.inner.blob_key(digest);
        if self.inner.head(&target).await?.is_some() {
            // Content-addressed and only ever written whole: the bytes there are these.
            return Ok(());
        }
        let parts = self.inner.part_sizes(repo, upload_id, parts).await?;
        let parts: Vec<(String, u64)> = parts.into_iter().filter(|(_, s)| *s > 0).collect();
        let total: u64 = parts.iter().map(|(_, s)| s).sum();
        let copyable = parts.len() <= MAX_PARTS
            && parts.iter().rev().skip(1).all(|(_, s)| *s >= MIN_PART)
            && parts.iter().map(|(_, s)| s.div_ceil(MAX_COPY)).sum::<u64>() <= MAX_PARTS as u64;
        let counter = match parts.len() {
            0 => {
                self.inner.put(&target, Bytes::new()).await?;
                &self.inner.streamed
            }
            _ if copyable => {
                self.commit_by_copy(&target, &parts).await?;
                &self.inner.copied
            }
            _ => {
                self.commit_by_streaming(&target, &parts).await?;
                &self.inner.streamed
            }
        };
        counter.fetch_add(1, Ordering::Relaxed);
        match self.inner.head(&target).await? {
            Some(n) if n == total => Ok(()),
            got => Err(io::Error::other(format!(
                "S3 commit of s3://{}/{target}: expected {total} bytes, found {got:?}",
                self.inner.client.bucket
            ))),
        }
    }

    async fn delete_upload(&self, repo: &RepoName, upload_id: &str) -> io::Result<()> {
        let Ok(prefix) = self.inner.upload_prefix(repo, upload_id) else { return Ok(()) };
        let (objects, _) = self.inner.list(&prefix, None).await?;
        futures_util::stream::iter(objects.into_iter().map(|o| async move { self.inner.delete_key(&o.key).await }))
            .buffer_unordered(CONCURRENCY)
            .try_collect::<Vec<_>>()
            .await?;
        // Parts whose writer died mid-way are unfinished multipart uploads, invisible
        // to the listing above but billed; best effort (a lifecycle rule is the net).
        match self.inner.multipart_uploads(&prefix).await {
            Ok(ups) => {
                for (key, id) in ups {
                    self.inner.abort(&key, &id).await;
                }
            }
            Err(e) => tracing::warn!(error = %e, "could not list unfinished S3 multipart uploads"),
        }
        Ok(())
    }

    async fn delete_part(&self, repo: &RepoName, upload_id: &str, part: &str) -> io::Result<()> {
        Ok(self.inner.delete_key(&self.inner.part_key(repo, upload_id, part)?).await?)
    }

    async fn upload_dirs_older_than(&self, before: SystemTime) -> io::Result<Vec<(RepoName, String)>> {
        // Walk the repositories "directories" as the filesystem driver does, so link
        // files under `_layers`/`_manifests` of a Distribution bucket are not listed.
        let base = self.inner.repos_prefix();
        let mut out = Vec::new();
        let mut dirs = vec![base.clone()];
        while let Some(dir) = dirs.pop() {
            let (_, subdirs) = self.inner.list(&dir, Some("/")).await?;
            for sub in subdirs {
                let name = sub[dir.len()..].trim_end_matches('/');
                if name == "_uploads" {
                    let Ok(repo) = dir[base.len()..].trim_end_matches('/').parse::<RepoName>() else { continue };
                    let (objects, _) = self.inner.list(&sub, None).await?;
                    // An upload's age is that of its newest part (a directory's mtime).
                    let mut newest: HashMap<&str, SystemTime> = HashMap::new();
                    for o in &objects {
                        let Some(id) = o.key[sub.len()..].split('/').next() else { continue };
                        let t = o.modified.unwrap_or(before);
                        let e = newest.entry(id).or_insert(t);
                        *e = (*e).max(t);
                    }
                    let mut ids: Vec<_> = newest.into_iter().filter(|(_, t)| *t < before).map(|(id, _)| id).collect();
                    ids.sort();
                    out.extend(ids.into_iter().map(|id| (repo.clone(), id.to_string())));
                } else if !name.starts_with('_') {
                    dirs.push(sub);
                }
            }
        }
        Ok(out)
    }

    async fn delete(&self, digest: &Digest) -> io::Result<()> {
        Ok(self.inner.delete_key(&self.inner.blob_key(digest)).await?)
    }

    async fn list_blobs(&self, after: Option<&Digest>, limit: usize) -> io::Result<Vec<ListedBlob>> {
        let prefix = format!("{}docker/registry/v2/blobs/", self.inner.root);
        let mut start = after.map(|d| self.inner.blob_key(d));
        let mut out = Vec::new();
        while out.len() < limit {
            let (objects, more) = self.inner.list_page(&prefix, start.as_deref(), limit - out.len()).await?;
            start = objects.last().map(|o| o.key.clone());
            for o in objects {
                // `<alg>/<2 hex>/<hex>/data`; anything else is not a blob.
                let parts: Vec<&str> = o.key[prefix.len()..].split('/').collect();
                if let [alg, _, hex, "data"] = parts.as_slice()
                    && let Ok(digest) = format!("{alg}:{hex}").parse::<Digest>()
                {
                    out.push(ListedBlob { digest, size: o.size, modified: o.modified });
                }
            }
            if !more || start.is_none() {
                break;
            }
        }
        Ok(out)
    }

    async fn owned(&self) -> io::Result<bool> {
        Ok(self.inner.head(&self.inner.owned_key()).await?.is_some())
    }

    async fn mark_owned(&self) -> io::Result<()> {
        let body = Bytes::from_static(
            b"This storage is Berth's own: its garbage collection removes blob objects the database does not know.\n",
        );
        Ok(self.inner.put(&self.inner.owned_key(), body).await?)
    }

    async fn check(&self) -> io::Result<()> {
        let key = format!("{}.berth-health-{}", self.inner.root, uuid::Uuid::new_v4().simple());
        let timeout = self.inner.client.timeout;
        let probe = async {
            self.inner.put(&key, Bytes::from_static(b"ok")).await?;
            self.inner.delete_key(&key).await
        };
        match tokio::time::timeout(timeout, probe).await {
            Ok(r) => Ok(r?),
            Err(_) => Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("S3 health probe on s3://{} got no answer within {timeout:?}", self.inner.client.bucket),
            )),
        }
    }
}
