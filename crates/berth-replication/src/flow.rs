//! The planning task of a run: list the source, filter, map names, create destination
//! namespaces, then hand the run on as one copy task per repository.

use std::collections::BTreeSet;
use std::sync::Arc;

use berth_core::RepoName;
use berth_core::store::identity::{NewProject, Page};
use berth_core::store::jobs::NewJob;
use berth_jobs::{Handler, JobCtx, JobError};
use berth_remote::{Adapter, AdapterKind, Client, RemoteArtifact, RemoteError};
use serde::{Deserialize, Serialize};

use crate::copy::{CopyArgs, Item};
use crate::policy::{Filters, Policy, dest_repository};
use crate::{COPY, Context, MAX_ATTEMPTS};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FlowArgs {
    pub policy_id: i64,
    /// The policy as it was when the run started.
    pub policy: Policy,
    /// Set for a run an event triggered: only this artifact, not the whole source.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event: Option<EventScope>,
}

/// What a push or delete on this registry asks an event-based policy to replicate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventScope {
    pub repository: String,
    /// The artifact's digest (what a deletion removes at the destination).
    pub digest: String,
    /// The tag pushed or deleted, if the event names one.
    #[serde(default)]
    pub tag: Option<String>,
    /// A deletion (`replicate_deletion`) rather than a copy.
    #[serde(default)]
    pub deletion: bool,
}

/// One end of a replication.
pub(crate) enum Side {
    Local(Client),
    Remote { id: i64, name: String, adapter: Adapter },
}

/// A remote failure as a job outcome: worth retrying only if the remote may recover.
pub(crate) fn job_error(what: &str, e: RemoteError) -> JobError {
    let msg = format!("{what}: {e}");
    if e.is_transient() { JobError::Retry(msg) } else { JobError::Fatal(msg) }
}

impl Side {
    pub(crate) async fn open(ctx: &Context, id: i64) -> Result<Side, JobError> {
        if id == 0 {
            return ctx.local_client().map(Side::Local).map_err(JobError::Retry);
        }
        let r = ctx
            .registries
            .get(id)
            .await
            .map_err(|e| JobError::Retry(e.to_string()))?
            .ok_or_else(|| JobError::Fatal(format!("registry {id} no longer exists")))?;
        let adapter = ctx.registries.adapter(&r, ctx.timeout).map_err(|e| JobError::Fatal(e.to_string()))?;
        Ok(Side::Remote { id, name: format!("registry {:?} ({})", r.doc.name, r.doc.url), adapter })
    }

    pub(crate) fn client(&self) -> &Client {
        match self {
            Side::Local(c) => c,
            Side::Remote { adapter, .. } => adapter.client(),
        }
    }

    pub(crate) fn id(&self) -> i64 {
        match self {
            Side::Local(_) => 0,
            Side::Remote { id, .. } => *id,
        }
    }

    pub(crate) fn describe(&self) -> String {
        match self {
            Side::Local(_) => "this registry".into(),
            Side::Remote { name, .. } => name.clone(),
        }
    }

    fn kind(&self) -> AdapterKind {
        match self {
            Side::Local(_) => AdapterKind::Harbor,
            Side::Remote { adapter, .. } => adapter.kind,
        }
    }

    async fn repositories(&self, ctx: &Context, filters: &Filters) -> Result<Vec<String>, JobError> {
        let all = match self {
            Side::Local(_) => {
                let mut out = Vec::new();
                for page in 1.. {
                    let (repos, total) =
                        ctx.catalog.list_repositories(None, None, &Page { page, page_size: 100 }).await?;
                    let n = repos.len();
                    out.extend(repos.into_iter().map(|r| r.name));
                    if n == 0 || out.len() as u64 >= total {
                        break;
                    }
                }
                out
            }
            Side::Remote { adapter, .. } => adapter
                .repositories(&filters.namespaces())
                .await
                .map_err(|e| job_error(&format!("listing the repositories of {}", self.describe()), e))?,
        };
        Ok(all.into_iter().filter(|r| filters.repository(r)).collect())
    }

    async fn artifacts(&self, ctx: &Context, repo: &str) -> Result<Vec<RemoteArtifact>, JobError> {
        match self {
            Side::Local(_) => {
                let name: RepoName = repo.parse().map_err(|e| JobError::Fatal(format!("{repo}: {e}")))?;
                let mut out = Vec::new();
                for page in 1.. {
                    let Some((arts, total)) =
                        ctx.catalog.list_artifacts(&name, &Page { page, page_size: 100 }, true).await?
                    else {
                        break;
                    };
                    let n = arts.len();
                    for a in arts {
                        let labels =
                            ctx.labels.labels_of(&name, &a.digest).await?.into_iter().map(|l| l.name).collect();
                        let image = a
                            .artifact_type
                            .as_deref()
                            .is_none_or(|t| t.contains("image.config") || t.contains("container.image"));
                        out.push(RemoteArtifact {
                            digest: Some(a.digest.to_string()),
                            tags: a.tags.into_iter().map(|t| t.name).collect(),
                            labels,
                            kind: Some(if image { "IMAGE" } else { "ARTIFACT" }.into()),
                        });
                    }
                    if n == 0 || out.len() as u64 >= total {
                        break;
                    }
                }
                Ok(out)
            }
            Side::Remote { adapter, .. } => adapter
                .artifacts(repo)
                .await
                .map_err(|e| job_error(&format!("listing the artifacts of {repo} on {}", self.describe()), e)),
        }
    }

    /// Creates the namespace (project) a pushed repository needs.
    pub(crate) async fn ensure_namespace(&self, ctx: &Context, namespace: &str) -> Result<(), JobError> {
        match self {
            Side::Local(_) => {
                if ctx.identity.project_by_name(namespace).await?.is_some() {
                    return Ok(());
                }
                let owner = ctx.identity.user_by_login("admin").await?.map_or(1, |u| u.id);
                let metadata = [("public".to_owned(), "false".to_owned())].into();
                match ctx
                    .identity
                    .create_project(&NewProject { name: namespace.to_owned(), owner_id: owner, metadata })
                    .await
                {
                    Ok(_) => Ok(()),
                    // Created meanwhile by someone else: what we wanted.
                    Err(_) if ctx.identity.project_by_name(namespace).await?.is_some() => Ok(()),
                    Err(e) => Err(JobError::Fatal(format!("creating project {namespace}: {e}"))),
                }
            }
            Side::Remote { adapter, .. } => adapter
                .ensure_namespace(namespace)
                .await
                .map_err(|e| job_error(&format!("creating namespace {namespace} on {}", self.describe()), e)),
        }
    }
}

pub struct Flow(pub Arc<Context>);

#[async_trait::async_trait]
impl Handler for Flow {
    async fn run(&self, job: &JobCtx) -> Result<(), JobError> {
        let ctx = &*self.0;
        let args: FlowArgs = job.args()?;
        let p = &args.policy;
        let filters = p.validate().map_err(|e| JobError::Fatal(format!("the policy is invalid: {e}")))?;
        let src = Side::open(ctx, p.src_registry_id).await?;
        let dst = Side::open(ctx, p.dest_registry_id).await?;
        job.info(format!("replication policy {:?}: from {} to {}", p.name, src.describe(), dst.describe()));
        // A scheduled run while another is in progress does nothing (Harbor's rule for
        // single_active_replication; a manual start is refused at the API instead).
        if p.single_active_replication && ctx.running_besides(args.policy_id, job.job().execution_id).await? {
            job.info("skipped: another run of this policy is in progress (single_active_replication)");
            return job.hand_off(&[]).await;
        }
        // An unreachable or refusing endpoint fails here, with its own words.
        for side in [&src, &dst] {
            if let Side::Remote { adapter, .. } = side {
                adapter.health().await.map_err(|e| job_error(&format!("checking {}", side.describe()), e))?;
            }
        }
        let repos = match &args.event {
            Some(e) => vec![e.repository.clone()].into_iter().filter(|r| filters.repository(r)).collect(),
            None => src.repositories(ctx, &filters).await?,
        };
        job.info(format!("{} repositories match the name filter", repos.len()));
        let mut tasks = Vec::new();
        let mut namespaces = BTreeSet::new();
        for repo in repos {
            job.check()?;
            let mut items = Vec::new();
            let artifacts = match &args.event {
                // A deleted artifact is gone from the source: what the event says is all
                // there is (a tag filter still applies to the tag it names).
                Some(e) if e.deletion => vec![RemoteArtifact {
                    digest: Some(e.digest.clone()),
                    tags: e.tag.iter().cloned().collect(),
                    labels: Vec::new(),
                    kind: None,
                }],
                Some(e) => src
                    .artifacts(ctx, &repo)
                    .await?
                    .into_iter()
                    .filter(|a| a.digest.as_deref() == Some(e.digest.as_str()))
                    .map(|mut a| {
                        // Only the tag pushed, if it is one of the artifact's.
                        if let Some(t) = &e.tag
                            && a.tags.contains(t)
                        {
                            a.tags = vec![t.clone()];
                        }
                        a
                    })
                    .collect(),
                None => src.artifacts(ctx, &repo).await?,
            };
            for a in artifacts {
                let deletion = args.event.as_ref().is_some_and(|e| e.deletion);
                if !deletion && !filters.artifact(&a.tags, &a.labels, a.kind.as_deref()) {
                    continue;
                }
                if deletion && !a.tags.is_empty() && filters.tags(&a.tags).is_empty() {
                    continue;
                }
                let tags = filters.tags(&a.tags);
                let reference = match (&a.digest, tags.first()) {
                    (Some(d), _) => d.clone(),
                    (None, Some(t)) => t.clone(),
                    (None, None) => continue,
                };
                items.push(Item { reference, tags });
            }
            if items.is_empty() {
                continue;
            }
            let mapped = dest_repository(&repo, &p.dest_namespace, p.dest_namespace_replace_count)
                .map_err(|e| JobError::Fatal(e.to_string()))?;
            let dst_repo = dst.kind().repository_name(&mapped);
            if let Some((ns, _)) = dst_repo.split_once('/')
                && !args.event.as_ref().is_some_and(|e| e.deletion)
            {
                namespaces.insert(ns.to_owned());
            }
            let args = CopyArgs {
                policy_id: args.policy_id,
                src_registry_id: p.src_registry_id,
                dest_registry_id: p.dest_registry_id,
                src_repo: repo.clone(),
                dst_repo,
                items,
                r#override: p.r#override,
                copy_by_chunk: p.copy_by_chunk,
                speed_kib: p.speed_limit(),
                operation: if args.event.as_ref().is_some_and(|e| e.deletion) { "deletion" } else { "copy" }.into(),
            };
            tasks.push(NewJob {
                max_attempts: MAX_ATTEMPTS,
                ..NewJob::new(COPY, serde_json::to_string(&args).map_err(|e| JobError::Fatal(e.to_string()))?)
            });
        }
        for ns in &namespaces {
            dst.ensure_namespace(ctx, ns).await?;
        }
        job.info(format!("{} repositories to copy", tasks.len()));
        job.hand_off(&tasks).await
    }
}
