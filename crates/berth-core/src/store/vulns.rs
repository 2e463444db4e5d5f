//! Vulnerability data and scan results in the metadata database, shared by every
//! instance: OSV records as imported by `berth vulndb import` (each with the
//! (ecosystem, package) keys it is looked up by), the history of imports, and scan
//! reports, one per (artifact digest, scanner, report MIME type) as Harbor keeps them.

use async_trait::async_trait;

use super::StoreResult;

/// One OSV record to store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VulnRecord {
    /// The OSV id (`DEBIAN-CVE-2024-1234`, `GHSA-…`).
    pub id: String,
    /// The record's `modified`, as written (RFC 3339): a re-import skips a record whose
    /// stored `modified` is the same.
    pub modified: String,
    /// `modified` in seconds since the epoch (the data's age).
    pub modified_at: i64,
    pub withdrawn: bool,
    /// (ecosystem key, package name) pairs it concerns, see `berth_scan::osv::ecosystem_key`.
    pub keys: Vec<(String, String)>,
    /// The record as JSON.
    pub json: String,
}

/// What a batch of [`VulnStore::put_vuln_records`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PutOutcome {
    pub added: u64,
    pub updated: u64,
    pub unchanged: u64,
}

/// A finished import, as `berth vulndb status` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VulnImport {
    pub at: i64,
    pub source: String,
    /// JSON counts.
    pub summary: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VulnDbStatus {
    pub records: u64,
    pub withdrawn: u64,
    /// Ecosystem keys and how many records concern each, by key.
    pub ecosystems: Vec<(String, u64)>,
    /// The newest `modified` of any record (seconds since the epoch).
    pub newest_modified_at: Option<i64>,
    pub last_import: Option<VulnImport>,
}

/// A scan's state and, once it succeeded, its report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanReport {
    /// Harbor's `report_id`.
    pub uuid: String,
    /// The scanned manifest's digest.
    pub digest: String,
    pub registration_uuid: String,
    /// The report MIME type (vulnerability 1.1, or the SBOM report type).
    pub mime_type: String,
    /// Harbor's scan status: Pending, Running, Success, Error, Stopped.
    pub status: String,
    /// The job task running it (its log is the report's log; stop asks it to stop).
    pub task_id: i64,
    /// Seconds since the epoch.
    pub start_time: i64,
    pub end_time: Option<i64>,
    /// Overall severity, and the summary (JSON) the artifact list shows.
    pub severity: String,
    pub summary: String,
    /// The report (JSON), empty until it succeeded.
    pub report: String,
}

/// What [`VulnStore::finish_scan_report`] writes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReportUpdate {
    pub status: String,
    /// Kept as it was when `None`.
    pub end_time: Option<i64>,
    pub severity: String,
    pub summary: String,
    pub report: String,
}

impl ReportUpdate {
    /// Only a new status.
    pub fn status(status: &str, end_time: Option<i64>) -> ReportUpdate {
        ReportUpdate { status: status.into(), end_time, ..Default::default() }
    }
}

#[async_trait]
pub trait VulnStore: Send + Sync + 'static {
    /// Adds or replaces records, in one transaction; a record whose stored `modified` is
    /// unchanged is left alone.
    async fn put_vuln_records(&self, records: &[VulnRecord]) -> StoreResult<PutOutcome>;
    /// Records a finished import.
    async fn record_vuln_import(&self, import: &VulnImport) -> StoreResult<()>;
    /// The JSON of every record concerning any of the (ecosystem key, name) pairs,
    /// withdrawn ones included (the matcher ignores them), each once, by id.
    async fn vuln_records_for(&self, keys: &[(String, String)]) -> StoreResult<Vec<String>>;
    async fn vuln_db_status(&self) -> StoreResult<VulnDbStatus>;

    /// Creates or replaces the report of (digest, registration, MIME type).
    async fn put_scan_report(&self, r: &ScanReport) -> StoreResult<()>;
    async fn scan_report(&self, uuid: &str) -> StoreResult<Option<ScanReport>>;
    /// The reports of these digests (any scanner, any MIME type).
    async fn scan_reports_of(&self, digests: &[String]) -> StoreResult<Vec<ScanReport>>;
    /// Sets a report's status (and end time when given, severity, summary and report),
    /// only if its task is still `task_id` (a newer scan replaced the row otherwise).
    /// Returns whether it changed.
    async fn finish_scan_report(&self, uuid: &str, task_id: i64, u: &ReportUpdate) -> StoreResult<bool>;
}
