//! A scan by an external scanner adapter (Harbor's Pluggable Scanner API v1.1, as
//! Harbor's `src/pkg/scan/job.go` drives it): ask the adapter for its metadata, choose
//! the report MIME type it produces for this manifest type, submit the scan with a
//! registry URL it can reach and a credential that pulls this one repository, poll the
//! report until it is ready or the deadline passes, and store it like the built-in
//! scanner's report, so the report API, `scan_overview` and `prevent_vul` read it
//! unchanged.
//!
//! The credential is what Harbor gives with `Bearer` authorization: a registry token,
//! minted here with the cluster's token key, granting `pull` and `scanner-pull` (which
//! exempts it from `prevent_vul`, as Harbor's scanner robots are) on the one repository
//! and expiring shortly after the scan's deadline. It names no account, so nothing is
//! left behind to remove.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::scan::{ScanArgs, ScanType};
use crate::scanners::{self, ReportPoll};
use berth_jobs::{JobCtx, JobError};
use serde_json::json;

use crate::job::{Outcome, ScanJob};

/// Mints a registry token for (subject, repository, lifetime in seconds).
pub type Mint = Arc<dyn Fn(&str, &str, i64) -> Result<String, String> + Send + Sync>;

/// How an adapter reaches this registry.
pub struct RegistryAccess {
    pub mint: Mint,
    /// This instance's own listener (`use_internal_addr`, and when no external URL is
    /// configured).
    pub internal_url: String,
    /// `http.external_url`; empty if not configured.
    pub external_url: String,
}

fn adapter_error(e: scanners::ScannerError) -> JobError {
    JobError::Fatal(e.to_string())
}

/// Runs the scan of `a` on the registration it names.
pub async fn scan(job: &ScanJob, ctx: &JobCtx, a: &ScanArgs) -> Result<Outcome, JobError> {
    let deadline = Instant::now() + job.external_timeout;
    let reg = job
        .scanners
        .get(&a.scanner)
        .await
        .map_err(adapter_error)?
        .ok_or_else(|| JobError::Fatal(format!("scanner registration {} no longer exists", a.scanner)))?;
    let access = job.access.get().ok_or_else(|| {
        JobError::Retry("this instance is not listening yet; an external scanner cannot reach it".into())
    })?;
    let client = job.scanners.client(&reg).map_err(adapter_error)?;
    ctx.info(format!("scanner {:?} at {}", reg.doc.name, reg.doc.url));
    let md = client.metadata().await.map_err(adapter_error)?;
    ctx.info(format!("adapter: {} {} by {}", md.scanner.name, md.scanner.version, md.scanner.vendor));

    let repo: berth_core::RepoName =
        a.repository.parse().map_err(|e| JobError::Fatal(format!("repository {}: {e}", a.repository)))?;
    let digest: berth_core::Digest =
        a.digest.parse().map_err(|e| JobError::Fatal(format!("digest {}: {e}", a.digest)))?;
    // Harbor sends a tag of the artifact with its digest; the newest one here.
    let (media_type, tag) = match job.catalog.artifact(&repo, &berth_core::Reference::Digest(digest)).await {
        Ok(Some(art)) => (art.media_type, art.tags.first().map(|t| t.name.clone()).unwrap_or_default()),
        Ok(None) => return Err(JobError::Fatal(format!("{}@{} no longer exists", a.repository, a.digest))),
        Err(e) => return Err(JobError::Retry(e.to_string())),
    };
    let sbom = a.scan_type == ScanType::Sbom;
    let mime = md.report_mime(sbom, &media_type).ok_or_else(|| {
        JobError::Fatal(format!(
            "scanner {:?} produces no {} report for {media_type}",
            reg.doc.name,
            if sbom { "SBOM" } else { "vulnerability" }
        ))
    })?;

    let registry_url = if reg.doc.use_internal_addr || access.external_url.is_empty() {
        access.internal_url.clone()
    } else {
        access.external_url.clone()
    };
    // Valid a little past the deadline: the adapter may still be pulling when Berth stops
    // waiting, and a token it cannot use then is harmless.
    let ttl = job.external_timeout.as_secs() as i64 + 60;
    let token = (access.mint)(&format!("scanner:{}", reg.doc.name), &a.repository, ttl)
        .map_err(|e| JobError::Fatal(format!("minting the scanner's pull token: {e}")))?;
    let mut capability = json!({"type": if sbom { "sbom" } else { "vulnerability" }, "produces_mime_types": [mime]});
    if sbom {
        capability["parameters"] = json!({"sbom_media_types": [berth_scan::sbom::SPDX_JSON]});
    }
    let request = json!({
        "registry": {"url": registry_url, "authorization": format!("Bearer {token}")},
        "artifact": {"repository": a.repository, "digest": a.digest, "tag": tag, "mime_type": media_type},
        "enabled_capabilities": [capability],
    });
    let id = client.scan(&request).await.map_err(adapter_error)?;
    ctx.info(format!("scan request {id} accepted; polling its report ({mime})"));

    let body = loop {
        ctx.check()?;
        match client.report(&id, mime).await.map_err(adapter_error)? {
            ReportPoll::Ready(body) => break body,
            ReportPoll::Later(after) => {
                let now = Instant::now();
                if now >= deadline {
                    return Err(JobError::Fatal(format!(
                        "scanner {:?} did not produce the report of scan request {id} within {} s",
                        reg.doc.name,
                        job.external_timeout.as_secs()
                    )));
                }
                tokio::time::sleep(after.min(deadline - now).max(Duration::from_millis(100))).await;
            }
        }
    };
    if sbom {
        let mut v: serde_json::Value =
            serde_json::from_str(&body).map_err(|e| JobError::Fatal(format!("the SBOM report is not JSON: {e}")))?;
        if v.get("scanner").is_none_or(|s| !s.is_object()) {
            v["scanner"] = serde_json::to_value(&md.scanner).unwrap_or_default();
        }
        let packages = v["sbom"]["packages"].as_array().map_or(0, |p| p.len());
        let summary = json!({"packages": packages, "scanner": v["scanner"]}).to_string();
        ctx.info(format!("SBOM report received ({packages} packages)"));
        return Ok((String::new(), summary, v.to_string()));
    }
    let (severity, summary, report) = scanners::stored_vulnerability_report(&body, &md.scanner)
        .map_err(|e| JobError::Fatal(format!("report: {e}")))?;
    ctx.info(format!("report received, overall severity {severity}"));
    Ok((severity, summary, report))
}
