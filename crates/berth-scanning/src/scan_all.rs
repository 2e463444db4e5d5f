//! Harbor's scan all on the job service: an execution (vendor type `SCAN_ALL`) whose one
//! task lists every image of the registry and starts a vulnerability scan of each through
//! [`Scans::request_in`], the path a manual scan takes. Each scan is its own `IMAGE_SCAN`
//! execution whose vendor id is the scan all's execution id, so the scan all's progress
//! (Harbor's `Stats`), its stop and its history are found by that id. The API is
//! `harbor/scan_all.rs`; the schedule is the job service's (`system_jobs`).

use std::sync::{Arc, OnceLock};

use berth_core::RepoName;
use berth_core::store::StoreResult;
use berth_core::store::catalog::CatalogStore;
use berth_core::store::identity::Page;
use berth_core::store::jobs::{Execution, JobStore};
use berth_jobs::{Handler, JobCtx, JobError};
use serde::{Deserialize, Serialize};

use crate::scan::{KIND as SCAN_KIND, ScanError, ScanType, Scans, scannable};

/// The vendor type of a scan all's execution, and its task's job kind (Harbor's name).
pub const VENDOR_TYPE: &str = "SCAN_ALL";
const PAGE: u64 = 100;

/// The `SCAN_ALL` task.
pub struct ScanAll {
    pub catalog: Arc<dyn CatalogStore>,
    /// Set once the scans exist (they need the job service this handler is part of).
    pub scans: Arc<OnceLock<Arc<Scans>>>,
}

/// What a resumed attempt skips: the repository pages already handled.
#[derive(Default, Serialize, Deserialize)]
struct Progress {
    repo_pages_done: u64,
    requested: u64,
}

#[async_trait::async_trait]
impl Handler for ScanAll {
    async fn run(&self, ctx: &JobCtx) -> Result<(), JobError> {
        let scans = self.scans.get().ok_or_else(|| JobError::Retry("the scanner is not ready yet".into()))?;
        let exec_id = ctx.job().execution_id;
        let store = scans.jobs.store();
        let trigger = store.execution(exec_id).await?.map_or_else(|| "MANUAL".to_owned(), |e| e.trigger);
        let mut progress: Progress = ctx.progress().unwrap_or_default();
        match self.plan(ctx, scans, exec_id, &trigger, &mut progress).await {
            Err(JobError::Cancelled) => {
                // Scans started after the API's stop swept them are stopped here.
                let n = stop_children(store.as_ref(), exec_id).await?;
                ctx.info(format!("stopped; {n} scans stopped"));
                Err(JobError::Cancelled)
            }
            Err(e) => Err(e),
            Ok(()) => {
                ctx.info(format!("{} scans started", progress.requested));
                Ok(())
            }
        }
    }
}

impl ScanAll {
    async fn plan(
        &self,
        ctx: &JobCtx,
        scans: &Scans,
        exec_id: i64,
        trigger: &str,
        progress: &mut Progress,
    ) -> Result<(), JobError> {
        let mut page = progress.repo_pages_done + 1;
        loop {
            ctx.check()?;
            let (repos, _) = self.catalog.list_repositories(None, None, &Page { page, page_size: PAGE }).await?;
            let n = repos.len() as u64;
            for repo in repos {
                let Ok(name) = repo.name.parse::<RepoName>() else { continue };
                let mut apage = 1;
                loop {
                    ctx.check()?;
                    let Some((artifacts, _)) =
                        self.catalog.list_artifacts(&name, &Page { page: apage, page_size: PAGE }, false).await?
                    else {
                        break;
                    };
                    let an = artifacts.len() as u64;
                    for a in artifacts {
                        // Signatures and SBOMs (a subject) are not scanned, nor what is
                        // not an image.
                        if a.subject_digest.is_some() || !scannable(&a.media_type) {
                            continue;
                        }
                        ctx.check()?;
                        let digest = a.digest.to_string();
                        match scans.request_in(&repo.name, &digest, ScanType::Vulnerability, trigger, exec_id).await {
                            Ok(_) => progress.requested += 1,
                            Err(ScanError::Busy(..)) => {
                                ctx.info(format!("{}@{digest}: a scan is already running", repo.name))
                            }
                            Err(ScanError::Unsupported(why)) => {
                                ctx.warn(format!("{}@{digest}: not scanned: {why}", repo.name))
                            }
                            Err(ScanError::Store(e)) => return Err(e.into()),
                        }
                    }
                    if an < PAGE {
                        break;
                    }
                    apage += 1;
                }
            }
            progress.repo_pages_done = page;
            ctx.checkpoint(&*progress).await?;
            if n < PAGE {
                return Ok(());
            }
            page += 1;
        }
    }
}

/// The scans a scan all started, newest first, a page at a time.
async fn children(store: &dyn JobStore, exec_id: i64, mut f: impl FnMut(&Execution)) -> StoreResult<()> {
    let mut offset = 0;
    loop {
        let (page, _) = store.executions(SCAN_KIND, Some(exec_id), offset, 500).await?;
        let n = page.len() as u64;
        page.iter().for_each(&mut f);
        if n < 500 {
            return Ok(());
        }
        offset += n;
    }
}

/// Stops every unfinished scan a scan all started; returns how many.
pub async fn stop_children(store: &dyn JobStore, exec_id: i64) -> StoreResult<u64> {
    let mut open = Vec::new();
    children(store, exec_id, |e| {
        if e.counts.queued + e.counts.running > 0 {
            open.push(e.id);
        }
    })
    .await?;
    let mut n = 0;
    for id in open {
        if store.stop_execution(id).await? {
            n += 1;
        }
    }
    Ok(n)
}

/// Harbor's `Stats` of a scan all.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Stats {
    pub total: u64,
    pub completed: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metrics: Option<std::collections::BTreeMap<&'static str, u64>>,
    pub ongoing: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trigger: Option<String>,
    /// The scan all's execution id (Harbor 2.0–2.3 named the run this way).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub requester: Option<String>,
}

/// The latest scan all's execution (of `trigger` if given: `SCHEDULE` for the scheduled
/// metrics), looking through the newest 100.
pub async fn latest(store: &dyn JobStore, trigger: Option<&str>) -> StoreResult<Option<Execution>> {
    let (execs, _) = store.executions(VENDOR_TYPE, None, 0, if trigger.is_some() { 100 } else { 1 }).await?;
    Ok(execs.into_iter().find(|e| trigger.is_none_or(|t| e.trigger == t)))
}

/// Harbor's `Stats`: one entry per scan started, by its status; ongoing while the listing
/// task or any scan is unfinished. Empty (`{total: 0, …}`) when there was no scan all.
pub async fn stats(store: &dyn JobStore, trigger: Option<&str>) -> StoreResult<Stats> {
    let Some(exec) = latest(store, trigger).await? else { return Ok(Stats::default()) };
    let mut metrics: std::collections::BTreeMap<&'static str, u64> =
        ["Pending", "Running", "Success", "Error", "Stopped"].into_iter().map(|s| (s, 0)).collect();
    children(store, exec.id, |e| {
        if let Some(n) = metrics.get_mut(e.counts.harbor_status()) {
            *n += 1;
        }
    })
    .await?;
    let total: u64 = metrics.values().sum();
    let completed = metrics["Success"] + metrics["Error"] + metrics["Stopped"];
    let planning = exec.counts.queued + exec.counts.running > 0;
    let mut t = exec.trigger.to_lowercase();
    if let Some(first) = t.get_mut(0..1) {
        first.make_ascii_uppercase();
    }
    Ok(Stats {
        total,
        completed,
        metrics: Some(metrics),
        ongoing: planning || total != completed,
        trigger: Some(t),
        requester: Some(exec.id.to_string()),
    })
}
