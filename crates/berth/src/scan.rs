//! The `IMAGE_SCAN` job: reads an image's layers through the registry, takes its
//! inventory, and writes either Harbor's vulnerability report (matched against the
//! imported OSV data) or an SPDX SBOM report into the scan report row the API created.

use std::sync::Arc;

use berth_core::registry::Registry;
use berth_core::store::vulns::{ReportUpdate, VulnStore};
use berth_core::{Digest, Reference, RepoName};
use berth_http::scan::{ScanArgs, ScanType};
use berth_jobs::{Handler, JobCtx, JobError};
use berth_scan::osv::Record;
use berth_scan::{report, sbom};
use serde_json::json;

/// Largest layer read; larger ones are skipped with a warning in the log.
const MAX_LAYER: u64 = 4 << 30;

pub struct ScanJob {
    pub registry: Arc<Registry>,
    pub vulns: Arc<dyn VulnStore>,
    /// Webhook events of finished scans, set once the webhooks exist (they need the job
    /// service, which needs this job).
    pub events: Arc<std::sync::OnceLock<berth_http::scan::ScanEvents>>,
}

fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64)
}

fn rfc3339(secs: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(secs)
        .ok()
        .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
        .unwrap_or_default()
}

async fn read_blob(registry: &Registry, repo: &RepoName, digest: &Digest) -> Result<Vec<u8>, JobError> {
    let blob =
        registry.open_blob(repo, digest, None).await.map_err(|e| JobError::Retry(format!("layer {digest}: {e}")))?;
    let mut body = blob.reader.body;
    let mut buf = Vec::with_capacity(blob.info.size as usize);
    while let Some(chunk) = std::future::poll_fn(|cx| body.as_mut().poll_next(cx)).await {
        buf.extend_from_slice(&chunk.map_err(|e| JobError::Retry(format!("layer {digest}: {e}")))?);
    }
    Ok(buf)
}

impl ScanJob {
    async fn scan(&self, ctx: &JobCtx, a: &ScanArgs) -> Result<(String, String, String), JobError> {
        let repo: RepoName =
            a.repository.parse().map_err(|e| JobError::Fatal(format!("repository {}: {e}", a.repository)))?;
        let digest: Digest = a.digest.parse().map_err(|e| JobError::Fatal(format!("digest {}: {e}", a.digest)))?;
        let m = match self.registry.manifest(&repo, &Reference::Digest(digest.clone())).await {
            Ok(m) => m,
            Err(berth_core::CoreError::ManifestUnknown(_)) => {
                return Err(JobError::Fatal(format!("{repo}@{digest} no longer exists")));
            }
            Err(e) => return Err(JobError::Retry(e.to_string())),
        };
        let v: serde_json::Value =
            serde_json::from_slice(&m.content).map_err(|e| JobError::Fatal(format!("manifest is not JSON: {e}")))?;
        let Some(layers) = v.get("layers").and_then(|l| l.as_array()) else {
            return Err(JobError::Fatal(format!("{} is not an image manifest; it cannot be scanned", m.media_type)));
        };
        let mut fs = berth_scan::Squashed::default();
        for (i, l) in layers.iter().enumerate() {
            ctx.check()?;
            let (Some(d), size) =
                (l.get("digest").and_then(|d| d.as_str()), l.get("size").and_then(|s| s.as_u64()).unwrap_or(0))
            else {
                continue;
            };
            if size > MAX_LAYER {
                ctx.warn(format!("layer {i} ({d}) is {size} bytes; skipped"));
                continue;
            }
            let d: Digest = d.parse().map_err(|e| JobError::Fatal(format!("layer {i} digest: {e}")))?;
            let bytes = read_blob(&self.registry, &repo, &d).await?;
            // Decompressing and reading a layer is CPU work: off the async workers.
            let (res, back) = tokio::task::spawn_blocking(move || {
                let r = fs.apply(i, &bytes);
                (r, fs)
            })
            .await
            .map_err(|e| JobError::Retry(e.to_string()))?;
            fs = back;
            if let Err(e) = res {
                ctx.warn(format!("layer {i} ({d}) is not a tar archive Berth can read: {e}; skipped"));
            }
        }
        let inv = berth_scan::inventory(&fs);
        ctx.info(format!(
            "{} packages found{}",
            inv.packages.len(),
            inv.os.as_ref().map(|o| format!(" on {} {}", o.id, o.version_id)).unwrap_or_default()
        ));
        let generated = rfc3339(now());
        let artifact = json!({"repository": a.repository, "digest": a.digest, "mime_type": m.media_type});
        match a.scan_type {
            ScanType::Vulnerability => {
                let keys: Vec<(String, String)> = berth_scan::packages::lookup_keys(&inv).into_iter().collect();
                let docs = self.vulns.vuln_records_for(&keys).await?;
                let records: Vec<Record> = docs.iter().filter_map(|d| serde_json::from_str(d).ok()).collect();
                ctx.info(format!("{} advisories concern these packages", records.len()));
                let r = report::build(&inv, &records, &generated);
                ctx.info(format!("{} vulnerabilities, overall severity {}", r.vulnerabilities.len(), r.severity));
                let summary = serde_json::to_string(&report::summarize(&r)).unwrap_or_default();
                let mut body = serde_json::to_value(&r).unwrap_or_default();
                body["artifact"] = artifact;
                Ok((r.severity, summary, body.to_string()))
            }
            ScanType::Sbom => {
                let subject =
                    sbom::Subject { name: format!("{}@{}", a.repository, a.digest), digest: a.digest.clone() };
                let doc = sbom::spdx(&inv, &subject, &generated, &a.report_uuid);
                let body = json!({
                    "generated_at": generated,
                    "artifact": artifact,
                    "scanner": report::ScannerInfo::builtin(),
                    "media_type": sbom::SPDX_JSON,
                    "sbom": doc,
                });
                let summary = json!({"packages": inv.packages.len()}).to_string();
                Ok((String::new(), summary, body.to_string()))
            }
        }
    }
}

#[async_trait::async_trait]
impl Handler for ScanJob {
    async fn run(&self, ctx: &JobCtx) -> Result<(), JobError> {
        let a: ScanArgs = ctx.args()?;
        let task = ctx.job().id;
        let _ = self.vulns.finish_scan_report(&a.report_uuid, task, &ReportUpdate::status("Running", None)).await;
        ctx.info(format!("scanning {}@{} ({:?})", a.repository, a.digest, a.scan_type));
        match self.scan(ctx, &a).await {
            Ok((severity, summary, report)) => {
                let done = self
                    .vulns
                    .finish_scan_report(
                        &a.report_uuid,
                        task,
                        &ReportUpdate { status: "Success".into(), end_time: Some(now()), severity, summary, report },
                    )
                    .await?;
                if !done {
                    // The API records the report right after starting the job; on a
                    // quick scan it may not be there yet.
                    return Err(JobError::Retry("the scan report is not recorded yet".into()));
                }
                if let Some(ev) = self.events.get() {
                    ev.finished(&a, "Success").await;
                }
                Ok(())
            }
            Err(e) => {
                let status = match &e {
                    JobError::Cancelled => "Stopped",
                    JobError::Fatal(_) => "Error",
                    _ => "Running",
                };
                ctx.error(e.to_string());
                let end = (status != "Running").then(now);
                let _ = self.vulns.finish_scan_report(&a.report_uuid, task, &ReportUpdate::status(status, end)).await;
                if status != "Running"
                    && let Some(ev) = self.events.get()
                {
                    ev.finished(&a, status).await;
                }
                Err(e)
            }
        }
    }
}
