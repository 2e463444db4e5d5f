//! Harbor's CVE export (goharbor/harbor `src/server/v2.0/handler/scanexport.go`,
//! `src/jobservice/job/impl/scandataexport`): a job (`SCAN_DATA_EXPORT`) that writes the
//! vulnerabilities of one project's artifacts, filtered by repository and tag patterns,
//! labels and CVE ids, as CSV with Harbor's columns. The CSV is a `PolicyStore` document
//! of the project (kind [`DOC_KIND`]), so every instance can serve the download; it is
//! removed once downloaded (as Harbor does), after [`KEEP_SECS`], or with its project.
//! The execution's vendor id is the requesting user's id: users list and download only
//! their own exports.

use std::collections::HashSet;
use std::sync::Arc;

use berth_core::store::StoreResult;
use berth_core::store::catalog::CatalogStore;
use berth_core::store::identity::IdentityStore;
use berth_core::store::jobs::JobStore;
use berth_core::store::labels::LabelStore;
use berth_core::store::policies::PolicyStore;
use berth_core::store::vulns::VulnStore;
use berth_jobs::{Handler, JobCtx, JobError};
use serde::{Deserialize, Serialize};

use crate::security::{CSV_HEADER, Scope, Sources, csv_line, pattern, walk};

/// The vendor type of an export's execution, and its job kind (Harbor's name).
pub const VENDOR_TYPE: &str = "SCAN_DATA_EXPORT";
/// The policy kind of a finished export's CSV.
pub const DOC_KIND: &str = "cve-export";
/// How long an export not downloaded is kept.
pub const KEEP_SECS: i64 = 24 * 3600;
/// The largest CSV an export writes; a larger one fails, asking for narrower criteria.
pub const MAX_CSV_BYTES: usize = 64 << 20;
/// The only `X-Scan-Data-Type` Harbor exports.
pub const DATA_TYPE: &str = "application/vnd.security.vulnerability.report; version=1.1";

/// What to export, as validated by the API; the job's arguments and (without the CSV)
/// the execution's extra attributes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExportRequest {
    #[serde(default)]
    pub job_name: String,
    pub user_id: i64,
    pub user_name: String,
    pub project_id: i64,
    #[serde(default)]
    pub labels: Vec<i64>,
    /// Harbor's doublestar pattern over repository names without the project (`{a,b}`).
    #[serde(default)]
    pub repositories: String,
    /// CVE ids, comma-separated, optionally in `{…}`.
    #[serde(default)]
    pub cve_ids: String,
    /// A doublestar pattern over tags.
    #[serde(default)]
    pub tags: String,
}

impl ExportRequest {
    /// The walk's scope; errors name the field.
    pub fn scope(&self) -> Result<Scope, berth_core::policy::PolicyError> {
        let nonempty = |s: &str| !s.trim().is_empty();
        Ok(Scope {
            project_id: Some(self.project_id),
            repository_pattern: if nonempty(&self.repositories) {
                Some(pattern("repositories", self.repositories.trim(), true)?)
            } else {
                None
            },
            tag_pattern: if nonempty(&self.tags) { Some(pattern("tags", self.tags.trim(), false)?) } else { None },
            labels: self.labels.clone(),
            ..Scope::default()
        })
    }

    /// The CVE ids asked for; empty for all.
    pub fn cve_set(&self) -> HashSet<String> {
        self.cve_ids
            .trim()
            .trim_start_matches('{')
            .trim_end_matches('}')
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect()
    }
}

/// A finished export's stored CSV.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Doc {
    execution_id: i64,
    csv: String,
}

/// The `SCAN_DATA_EXPORT` job.
pub struct CveExport {
    pub catalog: Arc<dyn CatalogStore>,
    pub identity: Arc<dyn IdentityStore>,
    pub vulns: Arc<dyn VulnStore>,
    pub labels: Arc<dyn LabelStore>,
    pub policies: Arc<dyn PolicyStore>,
    pub jobs: Arc<dyn JobStore>,
}

#[async_trait::async_trait]
impl Handler for CveExport {
    async fn run(&self, ctx: &JobCtx) -> Result<(), JobError> {
        let req: ExportRequest = ctx.args()?;
        let exec_id = ctx.job().execution_id;
        let removed = expire(self.policies.as_ref(), self.jobs.as_ref()).await?;
        if removed > 0 {
            ctx.info(format!("removed {removed} exports older than {} hours", KEEP_SECS / 3600));
        }
        let scope = req.scope().map_err(|e| JobError::Fatal(e.to_string()))?;
        let cves = req.cve_set();
        let src = Sources {
            catalog: self.catalog.as_ref(),
            identity: self.identity.as_ref(),
            vulns: self.vulns.as_ref(),
            labels: self.labels.as_ref(),
        };
        let mut csv = csv_line(&CSV_HEADER);
        let (mut rows, mut too_big) = (0u64, false);
        let artifacts = walk(&src, &scope, &mut |v| {
            let digest = v.artifact.digest.to_string();
            for f in &v.findings {
                if too_big || (!cves.is_empty() && !cves.contains(&f.cve_id)) {
                    continue;
                }
                let cwe = f.cwe_ids.join(",");
                csv.push_str(&csv_line(&[
                    v.artifact.repository_name.as_str(),
                    digest.as_str(),
                    f.cve_id.as_str(),
                    f.package.as_str(),
                    f.version.as_str(),
                    f.fixed_version.as_str(),
                    f.severity.as_str(),
                    cwe.as_str(),
                    f.vendor_attributes.as_str(),
                    v.scanner.as_str(),
                ]));
                rows += 1;
                too_big = csv.len() > MAX_CSV_BYTES;
            }
        })
        .await?;
        if too_big {
            return Err(JobError::Fatal(format!(
                "the export is larger than {} MiB; narrow it with repositories, tags, labels or cveIds",
                MAX_CSV_BYTES >> 20
            )));
        }
        ctx.check()?;
        let body =
            serde_json::to_string(&Doc { execution_id: exec_id, csv }).map_err(|e| JobError::Fatal(e.to_string()))?;
        // A retried attempt replaces what an earlier one stored.
        remove(self.policies.as_ref(), req.project_id, exec_id).await?;
        self.policies.create_policy(DOC_KIND, req.project_id, &body).await?;
        ctx.info(format!("{rows} vulnerabilities of {artifacts} artifacts exported"));
        Ok(())
    }
}

/// The CSV of an export, if it is (still) there.
pub async fn csv(policies: &dyn PolicyStore, project_id: i64, exec_id: i64) -> StoreResult<Option<String>> {
    for d in policies.policies(DOC_KIND, project_id).await? {
        if let Ok(doc) = serde_json::from_str::<Doc>(&d.body)
            && doc.execution_id == exec_id
        {
            return Ok(Some(doc.csv));
        }
    }
    Ok(None)
}

/// Whether an export's CSV is there, without handing it over.
pub async fn present(policies: &dyn PolicyStore, project_id: i64, exec_id: i64) -> StoreResult<bool> {
    Ok(csv(policies, project_id, exec_id).await?.is_some())
}

/// Removes an export's CSV.
pub async fn remove(policies: &dyn PolicyStore, project_id: i64, exec_id: i64) -> StoreResult<()> {
    for d in policies.policies(DOC_KIND, project_id).await? {
        if serde_json::from_str::<Doc>(&d.body).is_ok_and(|doc| doc.execution_id == exec_id) {
            policies.delete_policy(DOC_KIND, d.id).await?;
        }
    }
    Ok(())
}

/// The export request an execution carries.
pub fn request_of(extra_attrs: &str) -> Option<ExportRequest> {
    serde_json::from_str(extra_attrs).ok()
}

fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64)
}

/// Removes the CSVs older than [`KEEP_SECS`] of every project that has exports; returns
/// how many went.
pub async fn expire(policies: &dyn PolicyStore, jobs: &dyn JobStore) -> StoreResult<u64> {
    let mut projects = HashSet::new();
    let mut offset = 0;
    loop {
        let (execs, _) = jobs.executions(VENDOR_TYPE, None, offset, 500).await?;
        let n = execs.len() as u64;
        projects.extend(execs.iter().filter_map(|e| request_of(&e.extra_attrs)).map(|r| r.project_id));
        if n < 500 {
            break;
        }
        offset += n;
    }
    let cutoff = now() - KEEP_SECS;
    let mut removed = 0;
    for p in projects {
        for d in policies.policies(DOC_KIND, p).await? {
            if d.created_at < cutoff && policies.delete_policy(DOC_KIND, d.id).await? {
                removed += 1;
            }
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cve_ids_and_patterns() {
        let mut r = ExportRequest {
            job_name: String::new(),
            user_id: 1,
            user_name: "u".into(),
            project_id: 2,
            labels: vec![],
            repositories: "{app,web/**}".into(),
            cve_ids: "{CVE-1, CVE-2}".into(),
            tags: String::new(),
        };
        assert_eq!(r.cve_set(), HashSet::from(["CVE-1".to_string(), "CVE-2".to_string()]));
        let s = r.scope().unwrap();
        let p = s.repository_pattern.unwrap();
        assert!(p.selects("app") && p.selects("web/x/y") && !p.selects("other"));
        r.tags = "[".into();
        assert_eq!(r.scope().unwrap_err().field, "tags");
    }
}
