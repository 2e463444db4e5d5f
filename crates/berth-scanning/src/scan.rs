//! Scans as jobs: what the API and scan-on-push call to start one, and how a report's
//! status is read. The job itself (`IMAGE_SCAN`, [`crate::job`]) runs in the job
//! service: it reads the image through the registry and matches it against the
//! vulnerability data with `berth-scan`.

use std::sync::Arc;

use berth_core::settings::SettingsCache;
use berth_core::store::StoreError;
use berth_core::store::catalog::CatalogStore;
use berth_core::store::identity::{IdentityStore, Project};
use berth_core::store::jobs::{JobState, NewExecution, NewJob};
use berth_core::store::vulns::{ScanReport, VulnStore};
use berth_core::{Reference, RepoName};
use berth_jobs::JobService;
use berth_webhooks::{ArtifactRef, Event, RepoRef, Webhooks};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::harbor_time as time;

pub use berth_scan::report::{MIME_REPORT_1_1, MIME_REPORT_NATIVE, MIME_SBOM_REPORT};

/// The job kind (and execution vendor type) of a scan.
pub const KIND: &str = "IMAGE_SCAN";
/// The vendor type of an SBOM generation's execution, as Harbor names it.
pub const SBOM_VENDOR_TYPE: &str = "SBOM";
/// The built-in scanner's registration id.
pub const BUILTIN_UUID: &str = "8b1d3d0a-5c1e-4d4e-9b7a-berthbuiltin";
pub const BUILTIN_NAME: &str = "Berth";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ScanType {
    Vulnerability,
    Sbom,
}

impl ScanType {
    pub fn parse(s: &str) -> Option<ScanType> {
        match s {
            "vulnerability" => Some(ScanType::Vulnerability),
            "sbom" => Some(ScanType::Sbom),
            _ => None,
        }
    }

    /// The MIME type of the report a scan of this type produces.
    pub fn mime(self) -> &'static str {
        match self {
            ScanType::Vulnerability => MIME_REPORT_1_1,
            ScanType::Sbom => MIME_SBOM_REPORT,
        }
    }

    fn vendor_type(self) -> &'static str {
        match self {
            ScanType::Vulnerability => KIND,
            ScanType::Sbom => SBOM_VENDOR_TYPE,
        }
    }
}

/// Whether the built-in scanner can scan an artifact of this media type (an image
/// manifest; an index's images are scanned one by one).
pub fn scannable(media_type: &str) -> bool {
    media_type == "application/vnd.oci.image.manifest.v1+json"
        || media_type == "application/vnd.docker.distribution.manifest.v2+json"
}

/// A scan job's arguments.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ScanArgs {
    pub repository: String,
    pub digest: String,
    pub report_uuid: String,
    pub scan_type: ScanType,
    /// The scanner registration's uuid; empty (jobs queued before registrations
    /// existed) or [`BUILTIN_UUID`]: the built-in scanner.
    #[serde(default)]
    pub scanner: String,
}

impl ScanArgs {
    /// Whether an external adapter does this scan.
    pub fn external(&self) -> bool {
        !self.scanner.is_empty() && self.scanner != BUILTIN_UUID
    }
}

/// Report rows of scans Berth ran for another registry as its scanner adapter
/// (`crate::adapter`) have a registration uuid with this prefix: they are not
/// this registry's reports of its own artifacts.
pub const ADAPTER_REGISTRATION_PREFIX: &str = "adapter:";

#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    #[error("a {0} scan of this artifact is already {1}")]
    Busy(&'static str, String),
    /// The project's scanner cannot do this kind of scan.
    #[error("{0}")]
    Unsupported(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Starts scans and reads their state.
pub struct Scans {
    pub jobs: Arc<JobService>,
    pub vulns: Arc<dyn VulnStore>,
    /// Scanner registrations and projects' choices.
    pub scanners: Arc<crate::scanners::Scanners>,
    /// Finds a repository's project (its scanner).
    pub identity: Arc<dyn berth_core::store::identity::IdentityStore>,
    /// `scan.adapter_api_key`: the key callers of Berth's scanner adapter API present;
    /// `None` keeps that API off.
    pub adapter_key: Option<String>,
}

fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64)
}

impl Scans {
    /// The report of (digest, type) with its status brought up to date from its job:
    /// a job that died or was stopped without its handler saying so still shows as such.
    pub async fn report(&self, digest: &str, t: ScanType) -> Result<Option<ScanReport>, StoreError> {
        Ok(self.reports(&[digest.to_string()], t).await?.remove(digest))
    }

    /// [`Scans::report`] of many digests in one read of the reports (a job is read only
    /// for a report still pending or running), by digest; digests never scanned are
    /// left out.
    pub async fn reports(
        &self,
        digests: &[String],
        t: ScanType,
    ) -> Result<std::collections::HashMap<String, ScanReport>, StoreError> {
        let mut latest: std::collections::HashMap<String, ScanReport> = std::collections::HashMap::new();
        // One row per scanner: the latest scan's, whichever scanner the project used then.
        for r in self.vulns.scan_reports_of(digests).await? {
            if r.mime_type != t.mime() || r.registration_uuid.starts_with(ADAPTER_REGISTRATION_PREFIX) {
                continue;
            }
            match latest.get(&r.digest) {
                Some(had) if (had.start_time, had.task_id) >= (r.start_time, r.task_id) => {}
                _ => {
                    latest.insert(r.digest.clone(), r);
                }
            }
        }
        for r in latest.values_mut() {
            if matches!(r.status.as_str(), "Pending" | "Running")
                && let Some(job) = self.jobs.store().job(r.task_id).await?
            {
                match job.state {
                    JobState::Dead => r.status = "Error".into(),
                    JobState::Cancelled => r.status = "Stopped".into(),
                    JobState::Running => r.status = "Running".into(),
                    _ => {}
                }
                if r.end_time.is_none() && matches!(job.state, JobState::Dead | JobState::Cancelled) {
                    r.end_time = job.finished_at.map(|ms| ms / 1000);
                }
            }
        }
        Ok(latest)
    }

    /// Starts a scan of `repository@digest`; `trigger` is `MANUAL`, `EVENT` or `SCHEDULE`.
    /// Returns the new report's id.
    pub async fn request(
        &self,
        repository: &str,
        digest: &str,
        t: ScanType,
        trigger: &str,
    ) -> Result<String, ScanError> {
        self.request_in(repository, digest, t, trigger, 0).await
    }

    /// As [`Scans::request`], the scan's execution carrying `vendor_id`: a scan all's
    /// execution id for the scans it starts (`crate::scan_all`), 0 otherwise.
    pub async fn request_in(
        &self,
        repository: &str,
        digest: &str,
        t: ScanType,
        trigger: &str,
        vendor_id: i64,
    ) -> Result<String, ScanError> {
        if let Some(r) = self.report(digest, t).await?
            && matches!(r.status.as_str(), "Pending" | "Running")
        {
            return Err(ScanError::Busy(
                match t {
                    ScanType::Vulnerability => "vulnerability",
                    ScanType::Sbom => "sbom",
                },
                r.status.to_lowercase(),
            ));
        }
        let scanner = self.scanner_of(repository).await?;
        if !scanner.is_builtin() && scanner.doc.disabled {
            return Err(ScanError::Unsupported(format!("scanner {:?} is disabled", scanner.doc.name)));
        }
        let uuid = uuid::Uuid::new_v4().to_string();
        let args = ScanArgs {
            repository: repository.into(),
            digest: digest.into(),
            report_uuid: uuid.clone(),
            scan_type: t,
            scanner: scanner.doc.uuid.clone(),
        };
        let args = serde_json::to_string(&args).map_err(|e| StoreError::Backend(e.to_string()))?;
        self.queue(Queued {
            uuid: &uuid,
            kind: KIND,
            vendor_type: t.vendor_type(),
            trigger,
            vendor_id,
            artifact: format!("{repository}@{digest}"),
            args,
            digest,
            registration: scanner.doc.uuid.clone(),
            mime: t.mime(),
        })
        .await?;
        Ok(uuid)
    }
}

/// A scan job to queue with its report row.
pub(crate) struct Queued<'a> {
    pub uuid: &'a str,
    pub kind: &'static str,
    pub vendor_type: &'a str,
    pub trigger: &'a str,
    /// A scan all's execution id for the scans it starts, 0 otherwise.
    pub vendor_id: i64,
    /// What the execution shows as its artifact.
    pub artifact: String,
    pub args: String,
    pub digest: &'a str,
    pub registration: String,
    pub mime: &'a str,
}

impl Scans {
    /// Starts a scan job (an execution of one task) and records its report row,
    /// `Pending`, fenced by the task's id.
    pub(crate) async fn queue(&self, q: Queued<'_>) -> Result<(), StoreError> {
        let exec = NewExecution {
            vendor_type: q.vendor_type.into(),
            vendor_id: q.vendor_id,
            trigger: q.trigger.into(),
            extra_attrs: serde_json::json!({"artifact": q.artifact, "report_id": q.uuid}).to_string(),
        };
        let mut job = NewJob::new(q.kind, q.args);
        job.max_attempts = 3;
        let exec_id = self.jobs.start(&exec, &[job]).await?;
        let task_id = self.jobs.store().execution_tasks(exec_id).await?.first().map(|j| j.id).unwrap_or(0);
        // The job may already run: its handler fences on the report id and retries if
        // this row is not there yet.
        self.vulns
            .put_scan_report(&ScanReport {
                uuid: q.uuid.into(),
                digest: q.digest.into(),
                registration_uuid: q.registration,
                mime_type: q.mime.into(),
                status: "Pending".into(),
                task_id,
                start_time: now(),
                end_time: None,
                severity: String::new(),
                summary: String::new(),
                report: String::new(),
            })
            .await
    }

    /// The registration the project of `repository` scans with.
    pub async fn scanner_of(&self, repository: &str) -> Result<crate::scanners::Registration, StoreError> {
        let project = match repository.split_once('/') {
            Some((p, _)) => self.identity.project_by_name(p).await?,
            None => None,
        };
        let r = match project {
            Some(p) => self.scanners.of_project(p.id).await,
            None => self.scanners.default_registration().await,
        };
        r.map_err(|e| match e {
            crate::scanners::ScannerError::Store(s) => s,
            other => StoreError::Backend(other.to_string()),
        })
    }
}

impl Scans {
    /// Starts the scans `project` asks for on push (`auto_scan`, `auto_sbom_generation`)
    /// of `repo@digest`, just pushed. Indexes are not scanned themselves (their images
    /// are pushed, and scanned, one by one). Failures are logged: the push stands.
    pub async fn on_push(&self, repo: &RepoName, digest: &str, project: &Project, catalog: &dyn CatalogStore) {
        let on = |k: &str| project.metadata.get(k).is_some_and(|v| v == "true");
        let types: Vec<ScanType> = [("auto_scan", ScanType::Vulnerability), ("auto_sbom_generation", ScanType::Sbom)]
            .into_iter()
            .filter(|(k, _)| on(k))
            .map(|(_, t)| t)
            .collect();
        if types.is_empty() {
            return;
        }
        let Ok(d) = digest.parse() else { return };
        match catalog.artifact(repo, &Reference::Digest(d)).await {
            Ok(Some(a)) if a.media_type.ends_with("manifest.v1+json") || a.media_type.ends_with("manifest.v2+json") => {
            }
            _ => return,
        }
        for t in types {
            if let Err(err) = self.request(repo.as_str(), digest, t, "EVENT").await {
                tracing::warn!(error = %err, repo = %repo, digest, "could not start a scan on push");
            }
        }
    }
}

/// The built-in scanner judges pulls for `prevent_vul`: by the artifact's latest
/// vulnerability report, counting the findings at or above the project's threshold.
#[async_trait::async_trait]
impl berth_core::pull_policy::VulnerabilityGate for Scans {
    async fn verdict(
        &self,
        _repo: &berth_core::RepoName,
        digest: &berth_core::Digest,
        threshold: berth_core::pull_policy::Severity,
        allowed: &std::collections::HashSet<String>,
    ) -> Result<berth_core::pull_policy::ScanVerdict, String> {
        use berth_core::pull_policy::{ScanVerdict, Severity};
        let report = self.report(&digest.to_string(), ScanType::Vulnerability).await.map_err(|e| e.to_string())?;
        let Some(r) = report else { return Ok(ScanVerdict::NotScanned) };
        if r.status != "Success" {
            return Ok(ScanVerdict::Status(r.status));
        }
        let report: serde_json::Value =
            serde_json::from_str(&r.report).map_err(|e| format!("stored report of {digest} is not JSON: {e}"))?;
        let at_or_above = report["vulnerabilities"]
            .as_array()
            .map(|v| {
                v.iter()
                    .filter(|f| !f["id"].as_str().is_some_and(|id| allowed.contains(id)))
                    .filter(|f| f["severity"].as_str().and_then(Severity::parse).unwrap_or(Severity::None) >= threshold)
                    .count() as u64
            })
            .unwrap_or(0);
        Ok(ScanVerdict::Scanned { at_or_above })
    }
}

/// The built-in scanner as Harbor's `scanner` object.
pub fn scanner_json() -> Value {
    json!({"name": BUILTIN_NAME, "vendor": BUILTIN_NAME, "version": env!("CARGO_PKG_VERSION")})
}

/// A stored summary and the scanner that made the report: an external adapter's report
/// keeps its scanner in the summary (see `crate::scanners::stored_vulnerability_report`).
pub fn summary_and_scanner(raw: &str) -> (Value, Value) {
    let mut summary: Value = serde_json::from_str(raw).unwrap_or(Value::Null);
    let scanner = summary.as_object_mut().and_then(|o| o.remove("scanner")).unwrap_or_else(scanner_json);
    (summary, scanner)
}

/// A vulnerability report's overview, as `scan_overview` shows it under its MIME type.
pub fn overview(r: &ScanReport) -> Value {
    let (summary, scanner) = summary_and_scanner(&r.summary);
    let mut v = json!({
        "report_id": r.uuid,
        "scan_status": r.status,
        "severity": if r.severity.is_empty() { "Unknown" } else { r.severity.as_str() },
        "duration": r.end_time.map_or(0, |e| e - r.start_time),
        "start_time": time(r.start_time),
        "end_time": r.end_time.map(time).unwrap_or_else(|| time(0)),
        "complete_percent": if r.status == "Success" { 100 } else { 0 },
        "scanner": scanner,
    });
    if !summary.is_null() {
        v["summary"] = summary;
    }
    v
}

/// Harbor's `SCANNING_COMPLETED`, `SCANNING_FAILED` and `SCANNING_STOPPED` webhook events,
/// sent when a scan job ends (not for an attempt that will be retried).
pub struct ScanEvents {
    pub webhooks: Arc<Webhooks>,
    pub identity: Arc<dyn IdentityStore>,
    pub vulns: Arc<dyn VulnStore>,
    /// Runtime settings: nothing is sent while `notification_enable` is off.
    pub settings: Arc<SettingsCache>,
    /// `host[:port]` of the registry, for payloads' `resource_url`.
    pub registry_host: String,
}

impl ScanEvents {
    /// The scan of `args` ended with Harbor's `status` (`Success`, `Error`, `Stopped`).
    /// Failures to record the deliveries are logged: the report is written already.
    pub async fn finished(&self, args: &ScanArgs, status: &str) {
        let kind = match status {
            "Success" => "SCANNING_COMPLETED",
            "Stopped" => "SCANNING_STOPPED",
            _ => "SCANNING_FAILED",
        };
        if !self.settings.get().notification_enable {
            return;
        }
        let Some(project) = berth_core::access::project_of(&args.repository) else { return };
        let p = match self.identity.project_by_name(project).await {
            Ok(Some(p)) => p,
            Ok(None) => return,
            Err(e) => {
                tracing::warn!(error = %e, project, event = kind, "could not read the project; scan event not sent");
                return;
            }
        };
        let reports = self.vulns.scan_reports_of(std::slice::from_ref(&args.digest)).await.unwrap_or_default();
        let report = reports.iter().find(|r| r.uuid == args.report_uuid);
        let mut event = Event::artifact(
            kind,
            &RepoRef { project_id: p.id, public: p.is_public(), name: &args.repository },
            &[ArtifactRef { digest: &args.digest, tag: "" }],
            &self.registry_host,
            // Harbor's operator for scan events it did not attribute to a user.
            "auto",
            now(),
        );
        if let (Some(r), Some(Value::Object(res))) =
            (report, event.data.get_mut("resources").and_then(|v| v.get_mut(0)))
        {
            let key = if args.scan_type == ScanType::Sbom { "sbom_overview" } else { "scan_overview" };
            res.insert(key.into(), json!({ args.scan_type.mime(): overview(r) }));
        }
        let scan_type = if args.scan_type == ScanType::Sbom { "sbom" } else { "vulnerability" };
        event.data.insert("scan".into(), json!({ "scan_type": scan_type }));
        if let Err(e) = self.webhooks.notify(&event).await {
            tracing::warn!(error = %e, project, event = kind, "could not record scan event deliveries");
        }
    }
}
