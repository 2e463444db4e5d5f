//! Harbor's tag retention on Berth's job service.
//!
//! - [`policy`]: Harbor's `RetentionPolicy` document, validated naming the field. Policies
//!   are kept by the policy store (kind [`POLICY_KIND`], one per project; the project's
//!   `retention_id` metadata names it). Rules are evaluated by `berth_core::policy`.
//! - A run is an execution (vendor type [`VENDOR_TYPE`], vendor id the policy) that starts
//!   with one launch task ([`Launch`], kind [`LAUNCH`]): it lists the project's
//!   repositories, keeps those some enabled rule covers, and hands the run on, atomically
//!   (`JobStore::hand_off`), as one task per repository ([`RepoTask`], kind [`REPO`]).
//! - A repository task reads every artifact with its tags, push and pull times (and
//!   labels if a rule selects by label), retains the union of what the covering rules
//!   retain, and deletes every other artifact (by digest: the manifest and all its tags),
//!   except those with an immutable tag. A dry run deletes nothing. Its retained and total
//!   counts are its checkpoint, which the API shows; its log lists every decision.
//! - Deletes go through `Registry::delete_manifest_by` as [`JOBSERVICE_USER`], Harbor's
//!   operator for them: each commits its `delete` event to the outbox with the deletion,
//!   so the audit log, `DELETE_ARTIFACT` webhooks and event-based replication of deletes
//!   see them as they see a user's.
//! - `TAG_RETENTION` is sent per repository task that deleted something, as Harbor's
//!   task check-in does (one Harbor task per repository), never for a dry run, with the
//!   execution's trigger as operator.
//! - Scheduled runs: the policy's cron is a schedule of (vendor type, policy id) whose
//!   default planner creates the launch task with the schedule's arguments.

pub mod policy;

use std::sync::{Arc, OnceLock};

use berth_core::access::JOBSERVICE_USER;
use berth_core::policy::{Candidate, immutable, immutable_rules, retained};
use berth_core::registry::Registry;
use berth_core::settings::SettingsCache;
use berth_core::store::StoreError;
use berth_core::store::catalog::CatalogStore;
use berth_core::store::identity::{IdentityStore, Page};
use berth_core::store::jobs::{NewExecution, NewJob};
use berth_core::store::labels::LabelStore;
use berth_core::store::policies::{PolicyStore, StoredPolicy};
use berth_core::{Reference, RepoName};
use berth_jobs::{Handler, JobCtx, JobError, JobService};
use berth_webhooks::{Event, Webhooks};
use serde::{Deserialize, Serialize};
use serde_json::json;

pub use policy::{MAX_RULES, Policy, Validated, metadata};

/// The policy store's kind for retention policies.
pub const POLICY_KIND: &str = "retention";
/// Harbor's execution vendor type; also the launch task's kind, so that a schedule's
/// default planner starts a run.
pub const VENDOR_TYPE: &str = "RETENTION";
pub const LAUNCH: &str = "RETENTION";
/// The job kind of one repository's task.
pub const REPO: &str = "RETENTION_REPO";
/// Attempts per task.
pub const MAX_ATTEMPTS: i32 = 3;
/// Artifacts read per page.
const PAGE: u64 = 10_000;
/// Deletions run at once (and between checkpoints).
const DELETE_BATCH: usize = 64;

/// Everything retention needs; shared by the API and the job handlers.
pub struct Context {
    pub policies: Arc<dyn PolicyStore>,
    pub catalog: Arc<dyn CatalogStore>,
    pub labels: Arc<dyn LabelStore>,
    pub identity: Arc<dyn IdentityStore>,
    pub registry: Arc<Registry>,
    /// Set once the webhooks exist (they need the job service, which needs this).
    webhooks: OnceLock<Notifier>,
}

/// Where `TAG_RETENTION` goes.
pub struct Notifier {
    pub webhooks: Arc<Webhooks>,
    /// Runtime settings: nothing is sent while `notification_enable` is off.
    pub settings: Arc<SettingsCache>,
    /// The registry's host name, Harbor's `harbor_hostname`.
    pub hostname: String,
}

/// The arguments of a launch task (and of a retention schedule).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LaunchArgs {
    pub policy_id: i64,
    #[serde(default)]
    pub dry_run: bool,
    /// Harbor's `MANUAL` or `SCHEDULE`: the operator of the run's `TAG_RETENTION` events.
    /// Schedules stored before it existed only ever fire as `SCHEDULE`.
    #[serde(default = "schedule_trigger")]
    pub trigger: String,
}

fn schedule_trigger() -> String {
    "SCHEDULE".into()
}

/// The arguments of a repository task: the policy as the launch read it, so that every
/// task of a run applies the same rules.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RepoArgs {
    pub policy_id: i64,
    pub project_id: i64,
    /// The full name, `project/rest…`.
    pub repository: String,
    pub dry_run: bool,
    pub policy: Policy,
    #[serde(default = "schedule_trigger")]
    pub trigger: String,
}

/// A repository task's result, its checkpoint: what the API shows as `total`/`retained`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Outcome {
    pub total: u64,
    pub retained: u64,
    #[serde(default)]
    pub deleted: Vec<String>,
    #[serde(default)]
    pub immutable: u64,
    #[serde(default)]
    pub done: bool,
}

/// A stored policy with its id.
pub fn parse(p: &StoredPolicy) -> Option<Policy> {
    match serde_json::from_str::<Policy>(&p.body) {
        Ok(mut policy) => {
            policy.id = p.id;
            Some(policy)
        }
        Err(e) => {
            tracing::error!(policy = p.id, error = %e, "a stored retention policy does not parse; skipped");
            None
        }
    }
}

impl Context {
    pub fn new(
        policies: Arc<dyn PolicyStore>,
        catalog: Arc<dyn CatalogStore>,
        labels: Arc<dyn LabelStore>,
        identity: Arc<dyn IdentityStore>,
        registry: Arc<Registry>,
    ) -> Context {
        Context { policies, catalog, labels, identity, registry, webhooks: OnceLock::new() }
    }

    pub fn set_webhooks(&self, n: Notifier) {
        let _ = self.webhooks.set(n);
    }

    pub async fn policy(&self, id: i64) -> Result<Option<Policy>, StoreError> {
        Ok(self.policies.policy(POLICY_KIND, id).await?.as_ref().and_then(parse))
    }

    /// Starts a run of policy `id` now; `trigger` is Harbor's `MANUAL` or `SCHEDULE`.
    pub async fn start(&self, jobs: &JobService, id: i64, dry_run: bool, trigger: &str) -> Result<i64, StoreError> {
        let (exec, tasks) = plan_start(id, dry_run, trigger);
        jobs.start(&exec, &tasks).await
    }

    /// Every artifact of `repo` as retention sees it.
    async fn candidates(&self, repo: &RepoName, labels: bool) -> Result<Vec<Candidate>, JobError> {
        let mut out = Vec::new();
        for page in 1.. {
            let Some((arts, total)) = self.catalog.list_artifacts(repo, &Page { page, page_size: PAGE }, true).await?
            else {
                break;
            };
            let n = arts.len();
            for a in arts {
                let pushed = a.tags.iter().map(|t| t.push_time).chain([a.push_time]).max().unwrap_or(0);
                let pulled = a.tags.iter().filter_map(|t| t.pull_time).chain(a.pull_time).max().unwrap_or(0);
                let labels = if labels {
                    self.labels.labels_of(repo, &a.digest).await?.into_iter().map(|l| l.name).collect()
                } else {
                    Vec::new()
                };
                out.push(Candidate {
                    digest: a.digest.to_string(),
                    tags: a.tags.into_iter().map(|t| t.name).collect(),
                    labels,
                    pushed,
                    pulled,
                });
            }
            if n == 0 || out.len() as u64 >= total {
                break;
            }
        }
        Ok(out)
    }
}

/// The execution and launch task of a run of policy `id`.
pub fn plan_start(id: i64, dry_run: bool, trigger: &str) -> (NewExecution, Vec<NewJob>) {
    let args = LaunchArgs { policy_id: id, dry_run, trigger: trigger.to_owned() };
    let task =
        NewJob { max_attempts: MAX_ATTEMPTS, ..NewJob::new(LAUNCH, serde_json::to_string(&args).unwrap_or_default()) };
    let exec = NewExecution {
        vendor_type: VENDOR_TYPE.into(),
        vendor_id: id,
        trigger: trigger.into(),
        extra_attrs: json!({ "dry_run": dry_run }).to_string(),
    };
    (exec, vec![task])
}

/// Whether an execution was a dry run (from its `extra_attrs`).
pub fn is_dry_run(extra_attrs: &str) -> bool {
    serde_json::from_str::<serde_json::Value>(extra_attrs).ok().and_then(|v| v["dry_run"].as_bool()).unwrap_or(false)
}

/// The launch task: plans one task per covered repository.
pub struct Launch(pub Arc<Context>);

#[async_trait::async_trait]
impl Handler for Launch {
    async fn run(&self, ctx: &JobCtx) -> Result<(), JobError> {
        let args: LaunchArgs = ctx.args()?;
        let c = &self.0;
        let policy = c
            .policy(args.policy_id)
            .await?
            .ok_or_else(|| JobError::Fatal(format!("retention policy {} no longer exists", args.policy_id)))?;
        let v = policy.validate().map_err(|e| JobError::Fatal(format!("the stored policy is invalid: {e}")))?;
        let project = c
            .identity
            .project(v.project_id)
            .await?
            .ok_or_else(|| JobError::Fatal(format!("project {} no longer exists", v.project_id)))?;
        let mut tasks = Vec::new();
        let mut listed = 0u64;
        for page in 1.. {
            let (repos, total) =
                c.catalog.list_repositories(Some(&project.name), None, &Page { page, page_size: PAGE }).await?;
            let n = repos.len() as u64;
            listed += n;
            for r in repos {
                let short = r.name.strip_prefix(&format!("{}/", project.name)).unwrap_or(&r.name).to_owned();
                if !v.rules.iter().any(|m| m.covers(&short)) {
                    continue;
                }
                let a = RepoArgs {
                    policy_id: args.policy_id,
                    project_id: v.project_id,
                    repository: r.name.clone(),
                    dry_run: args.dry_run,
                    policy: policy.clone(),
                    trigger: args.trigger.clone(),
                };
                tasks.push(NewJob {
                    max_attempts: MAX_ATTEMPTS,
                    ..NewJob::new(REPO, serde_json::to_string(&a).unwrap_or_default())
                });
            }
            if n == 0 || listed >= total {
                break;
            }
        }
        ctx.info(format!(
            "retention policy {} of project {}: {} of {listed} repositories selected{}",
            args.policy_id,
            project.name,
            tasks.len(),
            if args.dry_run { " (dry run)" } else { "" }
        ));
        if tasks.is_empty() {
            return Ok(());
        }
        ctx.hand_off(&tasks).await
    }
}

/// One repository's retention.
pub struct RepoTask(pub Arc<Context>);

/// Where a repository's retention reports: the job's log, stop flag and checkpoint, or
/// a benchmark's sink.
#[async_trait::async_trait]
pub trait Report: Send + Sync {
    fn info(&self, msg: String);
    fn warn(&self, msg: String);
    /// `Err` once the run must stop.
    fn check(&self) -> Result<(), JobError>;
    async fn checkpoint(&self, out: &Outcome) -> Result<(), JobError>;
}

struct JobReport<'a>(&'a JobCtx);

#[async_trait::async_trait]
impl Report for JobReport<'_> {
    fn info(&self, msg: String) {
        self.0.info(msg);
    }
    fn warn(&self, msg: String) {
        self.0.warn(msg);
    }
    fn check(&self) -> Result<(), JobError> {
        self.0.check()
    }
    async fn checkpoint(&self, out: &Outcome) -> Result<(), JobError> {
        self.0.checkpoint(out).await
    }
}

/// One repository's retention: reads its artifacts, keeps the union of what the covering
/// rules retain and every artifact with an immutable tag, deletes the rest (unless a dry
/// run). `prev` is an earlier attempt's checkpoint. Returns the outcome and the deleted
/// artifacts with their tags.
pub async fn retain_repository(
    c: &Context,
    args: &RepoArgs,
    prev: Outcome,
    r: &dyn Report,
) -> Result<(Outcome, Vec<(String, Vec<String>)>), JobError> {
    let repo: RepoName = args.repository.parse().map_err(|e| JobError::Fatal(format!("{}: {e}", args.repository)))?;
    let short = match args.repository.split_once('/') {
        Some((_, rest)) => rest.to_owned(),
        None => args.repository.clone(),
    };
    let rules = args.policy.compiled().map_err(|e| JobError::Fatal(format!("invalid rules: {e}")))?;
    let now = now();
    let candidates = c.candidates(&repo, args.policy.uses_labels()).await?;
    let keep = retained(&rules, &short, &candidates, now);
    let locked = immutable_rules(c.policies.as_ref(), args.project_id).await?;
    // A previous attempt's deletions are gone from the list; they still count.
    let mut out = Outcome {
        total: candidates.len() as u64 + prev.deleted.len() as u64,
        deleted: prev.deleted,
        ..Outcome::default()
    };
    let dry = if args.dry_run { "[dry run] " } else { "" };
    let mut doomed = Vec::new();
    for cand in &candidates {
        let tags = if cand.tags.is_empty() { "<untagged>".to_owned() } else { cand.tags.join(",") };
        if keep.contains(&cand.digest) {
            out.retained += 1;
            r.info(format!("{dry}retain {}@{} ({tags})", args.repository, cand.digest));
        } else if let Some(t) = cand.tags.iter().find(|t| immutable(&locked, &short, t).is_some()) {
            out.retained += 1;
            out.immutable += 1;
            r.warn(format!("{dry}keep {}@{}: tag {t} is immutable", args.repository, cand.digest));
        } else {
            doomed.push((cand.digest.clone(), cand.tags.clone(), tags));
        }
    }
    // Deletes go in concurrent batches: each is its own transaction, and concurrent ones
    // share a commit (SQLite's group commit, PostgreSQL's pool), which a loop of single
    // deletes would not.
    let mut deleted_now = Vec::new();
    for batch in doomed.chunks(DELETE_BATCH) {
        r.check()?;
        if !args.dry_run {
            let mut set = tokio::task::JoinSet::new();
            for (digest, _, _) in batch {
                let d: berth_core::Digest = digest.parse().map_err(|e| JobError::Fatal(format!("{digest}: {e}")))?;
                let (registry, repo) = (c.registry.clone(), repo.clone());
                set.spawn(async move {
                    match registry.delete_manifest_by(&repo, &Reference::Digest(d.clone()), Some(JOBSERVICE_USER)).await
                    {
                        // Deleted meanwhile (by a user, or an earlier attempt): done either way.
                        Ok(()) | Err(berth_core::CoreError::ManifestUnknown(_)) => Ok(()),
                        Err(e) => Err(format!("deleting {repo}@{d}: {e}")),
                    }
                });
            }
            while let Some(res) = set.join_next().await {
                res.map_err(|e| JobError::Retry(e.to_string()))?.map_err(JobError::Retry)?;
            }
        }
        for (digest, tags, shown) in batch {
            r.info(format!("{dry}delete {}@{digest} ({shown})", args.repository));
            out.deleted.push(digest.clone());
            deleted_now.push((digest.clone(), tags.clone()));
        }
        if !args.dry_run {
            r.checkpoint(&out).await?;
        }
    }
    out.done = true;
    r.info(format!(
        "{dry}{}: {} of {} artifacts retained ({} by immutability), {} deleted",
        args.repository,
        out.retained,
        out.total,
        out.immutable,
        out.deleted.len()
    ));
    r.checkpoint(&out).await?;
    Ok((out, deleted_now))
}

#[async_trait::async_trait]
impl Handler for RepoTask {
    async fn run(&self, ctx: &JobCtx) -> Result<(), JobError> {
        let args: RepoArgs = ctx.args()?;
        let prev: Outcome = ctx.progress().unwrap_or_default();
        let (out, deleted) = retain_repository(&self.0, &args, prev, &JobReport(ctx)).await?;
        if !args.dry_run {
            self.notify(&args, &out, &deleted).await;
        }
        Ok(())
    }
}

impl RepoTask {
    /// Harbor's `TAG_RETENTION` for one repository's task: its counts, the policy's rules
    /// and the deleted artifacts (Harbor's payload names only the last one, a bug this
    /// does not copy). Nothing when nothing was deleted, as in Harbor.
    async fn notify(&self, args: &RepoArgs, out: &Outcome, deleted: &[(String, Vec<String>)]) {
        let Some(n) = self.0.webhooks.get() else { return };
        if deleted.is_empty() || !n.settings.get().notification_enable {
            return;
        }
        let event = retention_event(args, out, deleted, &n.hostname, now());
        if let Err(e) = n.webhooks.notify(&event).await {
            tracing::warn!(error = %e, policy = args.policy_id, "could not record TAG_RETENTION deliveries");
        }
    }
}

/// The `TAG_RETENTION` event of a repository task, in Harbor's shape
/// (`event_data.retention`).
pub fn retention_event(
    args: &RepoArgs,
    out: &Outcome,
    deleted: &[(String, Vec<String>)],
    hostname: &str,
    at: i64,
) -> Event {
    let (namespace, name) = args.repository.split_once('/').unwrap_or(("", &args.repository));
    let deleted: Vec<serde_json::Value> = deleted
        .iter()
        .map(|(_, tags)| {
            let name_tag = tags.first().map(|t| format!("{name}:{t}")).unwrap_or_default();
            json!({"type": "image", "status": "SUCCESS", "name_tag": name_tag})
        })
        .collect();
    let rules: Vec<serde_json::Value> = args
        .policy
        .rules
        .iter()
        .map(|r| {
            json!({"template": r.template, "params": r.params, "tag_selectors": r.tag_selectors,
                   "scope_selectors": r.scope_selectors})
        })
        .collect();
    let hostname = hostname.split(':').next().unwrap_or(hostname);
    let mut data = serde_json::Map::new();
    data.insert(
        "retention".into(),
        json!({
            "total": out.total, "retained": out.retained, "harbor_hostname": hostname,
            "project_name": namespace, "retention_policy_id": args.policy_id, "retention_rule": rules,
            "result": "SUCCESS", "deleted_artifact": deleted,
        }),
    );
    Event {
        event_type: "TAG_RETENTION".into(),
        project_id: args.project_id,
        occur_at: at,
        operator: args.trigger.clone(),
        data,
    }
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// Tasks of an execution by repository, for the API: only repository tasks count.
pub fn task_outcome(progress: Option<&str>) -> Outcome {
    progress.and_then(|p| serde_json::from_str(p).ok()).unwrap_or_default()
}

/// A repository task's repository (from its arguments).
pub fn task_repository(args: &str) -> String {
    serde_json::from_str::<RepoArgs>(args).map(|a| a.repository).unwrap_or_default()
}
