//! The `IMAGE_SCAN` job: reads an image's layers through the registry, takes its
//! inventory, and writes either Harbor's vulnerability report (matched against the
//! imported OSV data) into the scan report row the API created, or, as Harbor 2.11+ does,
//! an SPDX SBOM pushed as an accessory of the image (a manifest whose `subject` is the
//! image, config media type `application/vnd.goharbor.harbor.sbom.v1`, the document as its
//! one layer) with the row recording where it is. A project whose scanner is an external adapter is scanned by it instead
//! (`external.rs`). `SCANNER_ADAPTER_SCAN` is the same scan of an artifact in another
//! registry, for Berth's adapter API.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::adapter::AdapterScanArgs;
use crate::scan::{ScanArgs, ScanType};
use crate::scanners::Scanners;
use berth_core::blobstore::ByteStream;
use berth_core::registry::Registry;
use berth_core::store::vulns::{ReportUpdate, VulnStore};
use berth_core::{Digest, Reference, RepoName};
use berth_jobs::{Handler, JobCtx, JobError};
use berth_remote::{Credential, Endpoint};
use berth_scan::osv::Record;
use berth_scan::{report, sbom};
use serde_json::json;

/// Largest layer read; larger ones are skipped with a warning in the log.
const MAX_LAYER: u64 = 4 << 30;

pub struct ScanJob {
    pub registry: Arc<Registry>,
    pub vulns: Arc<dyn VulnStore>,
    /// The artifact's media type and tags, for an external adapter's scan request.
    pub catalog: Arc<dyn berth_core::store::catalog::CatalogStore>,
    /// Scanner registrations: a project whose scanner is an external adapter is scanned
    /// by it (`external.rs`).
    pub scanners: Arc<Scanners>,
    /// How an external adapter reaches this registry; set once the listener is bound.
    pub access: Arc<std::sync::OnceLock<crate::external::RegistryAccess>>,
    /// How long an external scan may take, report polling included.
    pub external_timeout: std::time::Duration,
    /// Webhook events of finished scans, set once the webhooks exist (they need the job
    /// service, which needs this job).
    pub events: Arc<std::sync::OnceLock<crate::scan::ScanEvents>>,
}

fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64)
}

pub(crate) fn rfc3339(secs: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(secs)
        .ok()
        .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
        .unwrap_or_default()
}

/// Where an image's manifest and layers are read from: this registry, or another one
/// (Berth as a scanner adapter, pulling with the credential the request gave).
pub enum Source {
    Local { registry: Arc<Registry>, repo: RepoName },
    Remote { client: berth_remote::Client, repo: String },
}

fn remote_error(what: &str, e: berth_remote::RemoteError) -> JobError {
    if e.is_transient() { JobError::Retry(format!("{what}: {e}")) } else { JobError::Fatal(format!("{what}: {e}")) }
}

impl Source {
    /// The manifest's bytes and media type.
    async fn manifest(&self, digest: &Digest) -> Result<(Vec<u8>, String), JobError> {
        match self {
            Source::Local { registry, repo } => match registry.manifest(repo, &Reference::Digest(digest.clone())).await
            {
                Ok(m) => Ok((m.content.to_vec(), m.media_type.to_string())),
                Err(berth_core::CoreError::ManifestUnknown(_)) => {
                    Err(JobError::Fatal(format!("{repo}@{digest} no longer exists")))
                }
                Err(e) => Err(JobError::Retry(e.to_string())),
            },
            Source::Remote { client, repo } => {
                let m = client
                    .manifest_get(repo, &digest.to_string())
                    .await
                    .map_err(|e| remote_error(&format!("manifest {repo}@{digest} from {}", client.base()), e))?;
                Ok((m.bytes.to_vec(), m.media_type))
            }
        }
    }

    /// A layer's bytes as they arrive.
    async fn blob(&self, digest: &Digest) -> Result<LayerStream, JobError> {
        match self {
            Source::Local { registry, repo } => {
                let blob = registry
                    .open_blob(repo, digest, None)
                    .await
                    .map_err(|e| JobError::Retry(format!("layer {digest}: {e}")))?;
                Ok(blob.reader.body)
            }
            Source::Remote { client, repo } => {
                let what = format!("layer {digest} from {}", client.base());
                let res = client.blob_get(repo, &digest.to_string(), 0).await.map_err(|e| remote_error(&what, e))?;
                let bytes = res.bytes().await.map_err(|e| JobError::Retry(format!("{what}: {e}")))?;
                Ok(Box::pin(futures_util::stream::once(std::future::ready(Ok(bytes)))))
            }
        }
    }
}

type LayerStream = std::pin::Pin<Box<dyn futures_util::Stream<Item = std::io::Result<bytes::Bytes>> + Send>>;

/// A layer's byte stream read as `BufRead` by a thread outside the async runtime, which
/// waits for each chunk. A failure of the stream (or a stop of the job) is kept apart
/// from what the unpacker makes of the bytes: it is the job's error, not the layer's.
struct StreamRead<'a> {
    rt: &'a tokio::runtime::Handle,
    body: LayerStream,
    chunk: bytes::Bytes,
    stop: &'a berth_jobs::StopFlag,
    failed: Option<JobError>,
    read: u64,
}

impl std::io::Read for StreamRead<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = std::io::BufRead::fill_buf(self)?.len().min(buf.len());
        buf[..n].copy_from_slice(&self.chunk[..n]);
        std::io::BufRead::consume(self, n);
        Ok(n)
    }
}

impl std::io::BufRead for StreamRead<'_> {
    fn fill_buf(&mut self) -> std::io::Result<&[u8]> {
        while self.chunk.is_empty() {
            if self.stop.is_set() {
                self.failed = Some(JobError::Cancelled);
                return Err(std::io::Error::other("the scan was stopped"));
            }
            let body = &mut self.body;
            match self.rt.block_on(std::future::poll_fn(|cx| body.as_mut().poll_next(cx))) {
                None => break,
                Some(Ok(b)) => {
                    self.read += b.len() as u64;
                    self.chunk = b;
                }
                Some(Err(e)) => {
                    self.failed = Some(JobError::Retry(format!("reading the layer: {e}")));
                    return Err(e);
                }
            }
        }
        Ok(&self.chunk)
    }

    fn consume(&mut self, n: usize) {
        let _ = self.chunk.split_to(n.min(self.chunk.len()));
    }
}

/// What the unpacking thread hands back.
struct Unpacked {
    inv: berth_scan::Inventory,
    /// Warnings for the job's log (layers skipped).
    warnings: Vec<String>,
    read_bytes: u64,
    /// Time spent reading and unpacking, and the CPU time of it (less than the time on a
    /// busy machine).
    busy: Duration,
    cpu: Duration,
}

/// Reads and applies an image's layers, then takes its inventory. Decompressing and
/// reading tar archives is CPU work: it runs on the calling thread, outside the async
/// runtime (whose futures, such as a layer's stream, it waits for through `rt`), so that
/// the scan's lower priority covers it.
fn unpack(
    rt: &tokio::runtime::Handle,
    src: &Source,
    layers: &[serde_json::Value],
    stop: &berth_jobs::StopFlag,
) -> Result<Unpacked, JobError> {
    let started = Instant::now();
    let mut fs = berth_scan::Squashed::default();
    let mut warnings = Vec::new();
    let mut read_bytes = 0;
    for (i, l) in layers.iter().enumerate() {
        if stop.is_set() {
            return Err(JobError::Cancelled);
        }
        let (Some(d), size) =
            (l.get("digest").and_then(|d| d.as_str()), l.get("size").and_then(|s| s.as_u64()).unwrap_or(0))
        else {
            continue;
        };
        if size > MAX_LAYER {
            warnings.push(format!("layer {i} ({d}) is {size} bytes; skipped"));
            continue;
        }
        let d: Digest = d.parse().map_err(|e| JobError::Fatal(format!("layer {i} digest: {e}")))?;
        let body = rt.block_on(src.blob(&d))?;
        let mut r = StreamRead { rt, body, chunk: bytes::Bytes::new(), stop, failed: None, read: 0 };
        let applied = fs.apply_from(i, &mut r);
        read_bytes += r.read;
        if let Some(e) = r.failed {
            return Err(e);
        }
        if let Err(e) = applied {
            warnings.push(format!("layer {i} ({d}) is not a tar archive Berth can read: {e}; skipped"));
        }
    }
    let inv = berth_scan::inventory(&fs);
    Ok(Unpacked { inv, warnings, read_bytes, busy: started.elapsed(), cpu: thread_cpu() })
}

/// Runs `f` on a thread of its own at the scan's priority (see [`lower_priority`]).
fn in_background<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> tokio::sync::oneshot::Receiver<T> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let spawned = std::thread::Builder::new().name("berth-scan".into()).spawn(move || {
        lower_priority();
        let _ = tx.send(f());
    });
    if let Err(e) = spawned {
        tracing::error!(error = %e, "could not start a scan thread");
    }
    rx
}

/// The CPU time the calling thread has used.
fn thread_cpu() -> Duration {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
    Duration::new(t.tv_sec.max(0) as u64, t.tv_nsec.clamp(0, 999_999_999) as u32)
}

/// A scan is background work: its thread gets Linux's `SCHED_IDLE` policy, under which
/// it runs only on a core nothing else wants, and a request thread waking up takes the
/// core from it at once (at a mere lower nice level it would wait for the scan's time
/// slice to end). Where that is refused, nice 19. Linux sets both per thread.
fn lower_priority() {
    let param = libc::sched_param { sched_priority: 0 };
    // SAFETY: pid 0 is the calling thread; `param` is a valid sched_param for SCHED_IDLE.
    if unsafe { libc::sched_setscheduler(0, libc::SCHED_IDLE, &param) } == 0 {
        return;
    }
    let _ = rustix::process::setpriority_process(Some(rustix::thread::gettid()), 19);
}

fn once(b: Vec<u8>) -> ByteStream {
    Box::pin(futures_util::stream::once(std::future::ready(Ok(bytes::Bytes::from(b)))))
}

/// Pushes an SBOM accessory into the image's repository, then removes the image's
/// earlier SBOM accessories (Harbor keeps one per image; removing them after the push
/// leaves no moment without one).
async fn push_accessory(
    registry: &Registry,
    repo: &RepoName,
    image: &Digest,
    acc: &sbom::Accessory,
) -> Result<(), JobError> {
    let retry = |what: &str, e: berth_core::CoreError| JobError::Retry(format!("pushing the SBOM {what}: {e}"));
    for blob in [&acc.config, &acc.layer] {
        let d = Digest::sha256(blob);
        if registry.blob(repo, &d).await.is_err() {
            registry.monolithic_upload(repo, &d, once(blob.clone())).await.map_err(|e| retry("blob", e))?;
        }
    }
    let new: Digest = acc.manifest_digest.parse().map_err(|e| JobError::Fatal(format!("SBOM digest: {e}")))?;
    registry
        .put_manifest(
            repo,
            &Reference::Digest(new.clone()),
            Some("application/vnd.oci.image.manifest.v1+json"),
            bytes::Bytes::from(acc.manifest.clone()),
        )
        .await
        .map_err(|e| retry("manifest", e))?;
    let earlier = registry
        .referrers(repo, image, Some(sbom::HARBOR_SBOM_MEDIA_TYPE))
        .await
        .map_err(|e| retry("accessories", e))?;
    for r in earlier.into_iter().filter(|r| r.digest != new) {
        match registry.delete_manifest(repo, &Reference::Digest(r.digest.clone())).await {
            Ok(()) | Err(berth_core::CoreError::ManifestUnknown(_)) => {}
            Err(e) => return Err(retry("replacement (removing the earlier SBOM)", e)),
        }
    }
    Ok(())
}

/// What a scan writes into its report row: (severity, summary, report).
pub type Outcome = (String, String, String);

/// Scans `repository@digest` from `src` with the built-in scanner.
pub async fn scan_image(
    ctx: &JobCtx,
    vulns: &dyn VulnStore,
    src: Arc<Source>,
    repository: &str,
    digest: &str,
    report_uuid: &str,
    scan_type: ScanType,
) -> Result<Outcome, JobError> {
    let digest_parsed: Digest = digest.parse().map_err(|e| JobError::Fatal(format!("digest {digest}: {e}")))?;
    let (content, media_type) = src.manifest(&digest_parsed).await?;
    let v: serde_json::Value =
        serde_json::from_slice(&content).map_err(|e| JobError::Fatal(format!("manifest is not JSON: {e}")))?;
    let Some(layers) = v.get("layers").and_then(|l| l.as_array()).cloned() else {
        return Err(JobError::Fatal(format!("{media_type} is not an image manifest; it cannot be scanned")));
    };
    ctx.check()?;
    let started = Instant::now();
    let (rt, stop, from) = (tokio::runtime::Handle::current(), ctx.stop_flag(), src.clone());
    let Unpacked { inv, warnings, read_bytes, busy, cpu } = in_background(move || unpack(&rt, &from, &layers, &stop))
        .await
        .map_err(|_| JobError::Retry("the unpacking thread ended early".into()))?
        // The thread saw the stop flag; the job's context says whether it was a stop or
        // a lost lease.
        .map_err(|e| if matches!(e, JobError::Cancelled) { ctx.check().err().unwrap_or(e) } else { e })?;
    for w in warnings {
        ctx.warn(w);
    }
    ctx.info(format!(
        "{} MiB of layers read and unpacked in {:.2} s ({:.2} s of CPU); {:.2} s in all",
        read_bytes >> 20,
        busy.as_secs_f64(),
        cpu.as_secs_f64(),
        started.elapsed().as_secs_f64()
    ));
    for w in &inv.warnings {
        ctx.warn(format!("{w}; its packages are not in the report"));
    }
    ctx.info(format!(
        "{} packages found{}",
        inv.packages.len(),
        inv.os.as_ref().map(|o| format!(" on {} {}", o.id, o.version_id)).unwrap_or_default()
    ));
    let generated = rfc3339(now());
    let artifact = json!({"repository": repository, "digest": digest, "mime_type": media_type});
    match scan_type {
        ScanType::Vulnerability => {
            let keys: Vec<(String, String)> = berth_scan::packages::lookup_keys(&inv).into_iter().collect();
            let t = Instant::now();
            let docs = vulns.vuln_records_for(&keys).await?;
            let fetched = t.elapsed();
            let t = Instant::now();
            // Parsing, matching and writing the report out are CPU work too: at the
            // scan's priority.
            let (count, vulnerabilities, outcome) = in_background(move || {
                let records: Vec<Record> = docs.iter().filter_map(|d| serde_json::from_str(d).ok()).collect();
                let r = report::build(&inv, &records, &generated);
                let summary = serde_json::to_string(&report::summarize(&r)).unwrap_or_default();
                let mut body = serde_json::to_value(&r).unwrap_or_default();
                body["artifact"] = artifact;
                (records.len(), r.vulnerabilities.len(), (r.severity, summary, body.to_string()))
            })
            .await
            .map_err(|_| JobError::Retry("the matching thread ended early".into()))?;
            ctx.info(format!(
                "{count} advisories concern these packages (read in {:.2} s, matched in {:.2} s)",
                fetched.as_secs_f64(),
                t.elapsed().as_secs_f64()
            ));
            ctx.info(format!("{vulnerabilities} vulnerabilities, overall severity {}", outcome.0));
            Ok(outcome)
        }
        ScanType::Sbom => {
            let subject = sbom::Subject { name: format!("{repository}@{digest}"), digest: digest.to_owned() };
            let doc = sbom::spdx(&inv, &subject, &generated, report_uuid);
            let Source::Local { registry, repo } = &*src else {
                // For another registry (Berth as its scanner adapter) the document is the
                // report: nothing is pushed there.
                let body = json!({
                    "generated_at": generated,
                    "artifact": artifact,
                    "scanner": report::ScannerInfo::builtin(),
                    "media_type": sbom::SPDX_JSON,
                    "sbom": doc,
                });
                let summary = json!({"packages": inv.packages.len()}).to_string();
                return Ok((String::new(), summary, body.to_string()));
            };
            let doc = serde_json::to_vec(&doc).map_err(|e| JobError::Fatal(e.to_string()))?;
            let image = sbom::Descriptor {
                media_type: media_type.clone(),
                digest: digest.to_owned(),
                size: content.len() as u64,
            };
            let acc = sbom::harbor_accessory(doc, &image, &generated);
            push_accessory(registry, repo, &digest_parsed, &acc).await?;
            ctx.info(format!("SBOM pushed as {repository}@{}", acc.manifest_digest));
            // Harbor's summary of an SBOM report says where the accessory is.
            let summary = json!({
                "sbom_repository": repository,
                "sbom_digest": acc.manifest_digest,
                "packages": inv.packages.len(),
            });
            let body = json!({
                "generated_at": generated,
                "artifact": artifact,
                "scanner": report::ScannerInfo::builtin(),
                "media_type": sbom::SPDX_JSON,
                "sbom_repository": repository,
                "sbom_digest": acc.manifest_digest,
            });
            Ok((String::new(), summary.to_string(), body.to_string()))
        }
    }
}

/// Marks the report Running, runs the scan, and writes its outcome into the row, fenced
/// by the task id; a failure is logged and becomes the report's status.
pub async fn run_fenced<F>(ctx: &JobCtx, vulns: &dyn VulnStore, report_uuid: &str, scan: F) -> Result<(), JobError>
where
    F: std::future::Future<Output = Result<Outcome, JobError>>,
{
    let task = ctx.job().id;
    let _ = vulns.finish_scan_report(report_uuid, task, &ReportUpdate::status("Running", None)).await;
    let outcome = scan.await;
    if let Err(e) = &outcome {
        ctx.error(e.to_string());
    }
    // The log is complete before the report's status says the scan ended: whoever reads
    // the log then finds every line (the job service would otherwise write the last ones
    // only after the handler returns).
    let _ = ctx.flush_logs().await;
    match outcome {
        Ok((severity, summary, report)) => {
            let done = vulns
                .finish_scan_report(
                    report_uuid,
                    task,
                    &ReportUpdate { status: "Success".into(), end_time: Some(now()), severity, summary, report },
                )
                .await?;
            if !done {
                // The API records the report right after starting the job; on a
                // quick scan it may not be there yet.
                return Err(JobError::Retry("the scan report is not recorded yet".into()));
            }
            Ok(())
        }
        Err(e) => {
            let status = match &e {
                JobError::Cancelled => "Stopped",
                JobError::Fatal(_) => "Error",
                _ => "Running",
            };
            let end = (status != "Running").then(now);
            let _ = vulns.finish_scan_report(report_uuid, task, &ReportUpdate::status(status, end)).await;
            Err(e)
        }
    }
}

#[async_trait::async_trait]
impl Handler for ScanJob {
    async fn run(&self, ctx: &JobCtx) -> Result<(), JobError> {
        let a: ScanArgs = ctx.args()?;
        ctx.info(format!("scanning {}@{} ({:?})", a.repository, a.digest, a.scan_type));
        let res = if a.external() {
            run_fenced(ctx, self.vulns.as_ref(), &a.report_uuid, crate::external::scan(self, ctx, &a)).await
        } else {
            let repo: RepoName =
                a.repository.parse().map_err(|e| JobError::Fatal(format!("repository {}: {e}", a.repository)))?;
            let src = Arc::new(Source::Local { registry: self.registry.clone(), repo });
            let scan = scan_image(ctx, self.vulns.as_ref(), src, &a.repository, &a.digest, &a.report_uuid, a.scan_type);
            run_fenced(ctx, self.vulns.as_ref(), &a.report_uuid, scan).await
        };
        // An attempt that will be retried sends no event.
        let status = match &res {
            Ok(()) => Some("Success"),
            Err(JobError::Cancelled) => Some("Stopped"),
            Err(JobError::Fatal(_)) => Some("Error"),
            Err(_) => None,
        };
        if let (Some(status), Some(ev)) = (status, self.events.get()) {
            ev.finished(&a, status).await;
        }
        res
    }
}

/// The `SCANNER_ADAPTER_SCAN` job: a scan another registry asked Berth's adapter API for
/// (`crate::adapter`). The artifact is pulled from that registry with the
/// authorization it gave, then scanned like a local one.
pub struct AdapterScanJob {
    pub vulns: Arc<dyn VulnStore>,
    pub scanners: Arc<Scanners>,
}

/// How long one request to the registry being scanned may stall.
const REMOTE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

/// A scan request's `registry.authorization` as a client credential: Basic is the
/// registry's user and password, Bearer a token sent as it is.
pub fn credential_of(authorization: &str) -> Result<Credential, JobError> {
    use base64::Engine as _;
    let a = authorization.trim();
    if a.is_empty() {
        return Ok(Credential::Anonymous);
    }
    let (scheme, rest) = a.split_once(' ').unwrap_or((a, ""));
    let rest = rest.trim().to_owned();
    if scheme.eq_ignore_ascii_case("basic") {
        let raw = base64::engine::general_purpose::STANDARD
            .decode(&rest)
            .map_err(|e| JobError::Fatal(format!("registry.authorization: Basic credentials are not base64: {e}")))?;
        let raw = String::from_utf8(raw)
            .map_err(|_| JobError::Fatal("registry.authorization: Basic credentials are not UTF-8".into()))?;
        let (u, p) = raw.split_once(':').unwrap_or((raw.as_str(), ""));
        return Ok(Credential::Basic { username: u.to_owned(), password: p.to_owned() });
    }
    if scheme.eq_ignore_ascii_case("bearer") {
        return Ok(Credential::Minted(Arc::new(move |_: &[String]| Ok::<String, String>(rest.clone()))));
    }
    Err(JobError::Fatal(format!("registry.authorization: the {scheme:?} scheme is not supported; use Basic or Bearer")))
}

#[async_trait::async_trait]
impl Handler for AdapterScanJob {
    async fn run(&self, ctx: &JobCtx) -> Result<(), JobError> {
        let a: AdapterScanArgs = ctx.args()?;
        ctx.info(format!(
            "scanning {}/{}@{} ({:?}) for a scan request",
            a.registry_url, a.repository, a.digest, a.scan_type
        ));
        let scan = async {
            let auth = self.scanners.open(&a.authorization).map_err(|e| JobError::Fatal(e.to_string()))?;
            let endpoint =
                Endpoint { url: a.registry_url.clone(), credential: credential_of(&auth)?, insecure: a.insecure };
            let client = berth_remote::Client::new(&endpoint, REMOTE_TIMEOUT)
                .map_err(|e| JobError::Fatal(format!("registry.url {}: {e}", a.registry_url)))?;
            let src = Arc::new(Source::Remote { client, repo: a.repository.clone() });
            scan_image(ctx, self.vulns.as_ref(), src, &a.repository, &a.digest, &a.report_uuid, a.scan_type).await
        };
        run_fenced(ctx, self.vulns.as_ref(), &a.report_uuid, scan).await
    }
}
