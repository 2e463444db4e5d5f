//! Scans other registries ask of Berth's built-in scanner through its Pluggable Scanner
//! API v1.1 adapter (served by berth-http's `scanner_adapter.rs`): checking a scan
//! request, queueing it as a [`KIND`] job that pulls the artifact from the requesting
//! registry with the authorization the request gives (kept encrypted in the job), and
//! reading the state of its report. The report rows have the registration
//! `adapter:<registry url>`, apart from this registry's own reports.

use berth_core::store::StoreError;
use berth_core::store::jobs::{JobState, LogLevel};
use serde::{Deserialize, Serialize};

use crate::scan::{ADAPTER_REGISTRATION_PREFIX, MIME_REPORT_1_1, MIME_REPORT_NATIVE, Queued, ScanType, Scans};
use crate::scanners::MIME_SBOM;

/// The job kind (and execution vendor type) of a scan requested through the adapter API.
pub const KIND: &str = "SCANNER_ADAPTER_SCAN";

/// The manifest types the adapter scans.
const CONSUMES: [&str; 2] =
    ["application/vnd.oci.image.manifest.v1+json", "application/vnd.docker.distribution.manifest.v2+json"];

/// An adapter scan job's arguments.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AdapterScanArgs {
    pub report_uuid: String,
    pub scan_type: ScanType,
    pub registry_url: String,
    /// The request's `registry.authorization`, encrypted with the cluster secret key.
    pub authorization: String,
    #[serde(default)]
    pub insecure: bool,
    pub repository: String,
    pub digest: String,
    #[serde(default)]
    pub tag: String,
    pub mime_type: String,
}

#[derive(Deserialize)]
struct ScanRequest {
    registry: Option<RegistryReq>,
    artifact: Option<ArtifactReq>,
    #[serde(default)]
    enabled_capabilities: Vec<CapabilityReq>,
}

#[derive(Deserialize)]
struct RegistryReq {
    #[serde(default)]
    url: String,
    #[serde(default)]
    authorization: String,
    #[serde(default)]
    insecure: bool,
}

#[derive(Deserialize)]
struct ArtifactReq {
    #[serde(default)]
    repository: String,
    #[serde(default)]
    digest: String,
    #[serde(default)]
    tag: String,
    #[serde(default)]
    mime_type: String,
}

#[derive(Deserialize)]
struct CapabilityReq {
    #[serde(rename = "type", default)]
    kind: String,
}

/// Why a scan request was refused.
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    /// The body does not parse (400).
    #[error("the scan request is not valid JSON: {0}")]
    NotJson(String),
    /// A field is missing or wrong, named in the message (422).
    #[error("{0}")]
    Invalid(String),
}

/// A checked scan request.
pub struct ScanRequestOk {
    pub scan_type: ScanType,
    /// Without a trailing `/`.
    pub registry_url: String,
    /// In plain text, as the request gave it.
    pub authorization: String,
    pub insecure: bool,
    pub repository: String,
    pub digest: String,
    pub tag: String,
    pub mime_type: String,
}

/// Checks a scan request's body.
pub fn parse_request(body: &[u8]) -> Result<ScanRequestOk, RequestError> {
    let mut de = serde_json::Deserializer::from_slice(body);
    let req: ScanRequest =
        serde_path_to_error::deserialize(&mut de).map_err(|e| RequestError::NotJson(e.to_string()))?;
    let invalid = RequestError::Invalid;
    let registry = req.registry.ok_or_else(|| invalid("registry is required".into()))?;
    let url = registry.url.trim();
    if !crate::scanners::is_http_url(url) {
        return Err(invalid(format!("registry.url: {url:?} is not an http:// or https:// URL")));
    }
    let artifact = req.artifact.ok_or_else(|| invalid("artifact is required".into()))?;
    if artifact.repository.parse::<berth_core::RepoName>().is_err() {
        return Err(invalid(format!("artifact.repository: {:?} is not a repository name", artifact.repository)));
    }
    if artifact.digest.parse::<berth_core::Digest>().is_err() {
        return Err(invalid(format!("artifact.digest: {:?} is not a digest", artifact.digest)));
    }
    if !CONSUMES.contains(&artifact.mime_type.as_str()) {
        return Err(invalid(format!(
            "artifact.mime_type: {:?} cannot be scanned; use one of {}",
            artifact.mime_type,
            CONSUMES.join(", ")
        )));
    }
    let mut scan_type = ScanType::Vulnerability;
    for c in &req.enabled_capabilities {
        match c.kind.as_str() {
            "" | "vulnerability" => {}
            "sbom" => scan_type = ScanType::Sbom,
            other => return Err(invalid(format!("enabled_capabilities.type: {other:?} is not vulnerability or sbom"))),
        }
    }
    Ok(ScanRequestOk {
        scan_type,
        registry_url: url.trim_end_matches('/').to_owned(),
        authorization: registry.authorization,
        insecure: registry.insecure,
        repository: artifact.repository,
        digest: artifact.digest,
        tag: artifact.tag,
        mime_type: artifact.mime_type,
    })
}

/// The report MIME type an `Accept` asks for, if this row's kind can give it.
fn wanted(accept: &str, kind_mime: &str) -> Option<&'static str> {
    let asked: Vec<&str> = accept.split(',').map(str::trim).filter(|s| !s.is_empty()).collect();
    let offers: &[&'static str] =
        if kind_mime == MIME_SBOM { &[MIME_SBOM] } else { &[MIME_REPORT_1_1, MIME_REPORT_NATIVE] };
    if asked.is_empty() || asked.contains(&"*/*") {
        return offers.first().copied();
    }
    asked.iter().find_map(|a| offers.iter().copied().find(|o| o.replace(' ', "") == a.replace(' ', "")))
}

/// Why a checked scan request was not queued.
#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    /// Encrypting the request's authorization failed.
    #[error("{0}")]
    Seal(String),
    #[error("queueing the scan: {0}")]
    Store(#[from] StoreError),
}

/// Where a requested scan's report stands.
pub enum ReportState {
    NotFound,
    /// The row's kind of report cannot be given in any type `Accept` names; the row's
    /// MIME type.
    NotAcceptable(String),
    Running,
    /// The report in the MIME type asked for.
    Ready {
        mime: &'static str,
        report: String,
    },
    /// The scan failed: why, as its job's last error line says.
    Failed(String),
}

impl Scans {
    /// Queues the scan a checked request asks for; the report's id.
    pub async fn request_for_adapter(&self, req: ScanRequestOk) -> Result<String, QueueError> {
        let authorization = self.scanners.seal(&req.authorization).map_err(|e| QueueError::Seal(e.to_string()))?;
        let uuid = uuid::Uuid::new_v4().to_string();
        let (registry_url, repository, digest, kind) =
            (req.registry_url.clone(), req.repository.clone(), req.digest.clone(), req.scan_type);
        let args = AdapterScanArgs {
            report_uuid: uuid.clone(),
            scan_type: kind,
            registry_url: req.registry_url,
            authorization,
            insecure: req.insecure,
            repository: req.repository,
            digest: req.digest,
            tag: req.tag,
            mime_type: req.mime_type,
        };
        let args = serde_json::to_string(&args).map_err(|e| StoreError::Backend(e.to_string()))?;
        let queued = self.queue(Queued {
            uuid: &uuid,
            kind: KIND,
            vendor_type: KIND,
            trigger: "MANUAL",
            vendor_id: 0,
            artifact: format!("{registry_url}/{repository}@{digest}"),
            args,
            digest: &digest,
            registration: format!("{ADAPTER_REGISTRATION_PREFIX}{registry_url}"),
            mime: kind.mime(),
        });
        queued.await?;
        Ok(uuid)
    }

    /// The state of the report of the adapter scan `id`, in a type `accept` names.
    pub async fn adapter_report(&self, id: &str, accept: &str) -> Result<ReportState, StoreError> {
        let row = match self.vulns.scan_report(id).await? {
            Some(r) if r.registration_uuid.starts_with(ADAPTER_REGISTRATION_PREFIX) => r,
            _ => return Ok(ReportState::NotFound),
        };
        let Some(mime) = wanted(accept, &row.mime_type) else { return Ok(ReportState::NotAcceptable(row.mime_type)) };
        let job = self.jobs.store().job(row.task_id).await.ok().flatten();
        let dead = job.as_ref().is_some_and(|j| matches!(j.state, JobState::Dead | JobState::Cancelled));
        Ok(match row.status.as_str() {
            "Success" => ReportState::Ready { mime, report: row.report },
            "Pending" | "Running" if !dead => ReportState::Running,
            _ => {
                // The job's last error line says why.
                let why = match self.jobs.store().job_log(row.task_id).await {
                    Ok(lines) => lines
                        .iter()
                        .rev()
                        .find(|l| l.level == LogLevel::Error)
                        .map(|l| l.message.clone())
                        .unwrap_or_else(|| format!("the scan ended with status {}", row.status)),
                    Err(e) => e.to_string(),
                };
                ReportState::Failed(why)
            }
        })
    }
}
