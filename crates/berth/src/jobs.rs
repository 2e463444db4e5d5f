//! The job service of this instance: which job kinds it runs and the schedules every
//! cluster has.

use std::sync::Arc;
use std::time::Duration;

use berth_config::Config;
use berth_core::blobstore::BlobStore;
use berth_core::registry::Registry;
use berth_core::store::gc::GcStore;
use berth_core::store::identity::IdentityStore;
use berth_core::store::jobs::{JobStore, NewSchedule};
use berth_gc::GarbageCollection;
use berth_jobs::builtin::{ExecutionSweep, PurgeAuditLog, Sample, swept_vendor_types};
use berth_jobs::{CronExpr, EngineConfig, JobService, KindSpec, kinds};
use berth_webhooks::Deliver;

/// What the job kinds of this binary work on.
pub struct Deps {
    pub store: Arc<dyn JobStore>,
    pub identity: Arc<dyn IdentityStore>,
    pub gc: Arc<dyn GcStore>,
    pub blobs: Arc<dyn BlobStore>,
    pub registry: Arc<Registry>,
    pub replication: Arc<berth_replication::Context>,
    pub vulns: Arc<dyn berth_core::store::vulns::VulnStore>,
    pub retention: Arc<berth_retention::Context>,
    /// Scan all and CVE exports read the catalog, labels and policy documents.
    pub catalog: Arc<dyn berth_core::store::catalog::CatalogStore>,
    pub labels: Arc<dyn berth_core::store::labels::LabelStore>,
    pub policies: Arc<dyn berth_core::store::policies::PolicyStore>,
    /// Set by the caller once the scans exist (they need this job service).
    pub scans: Arc<std::sync::OnceLock<Arc<berth_scanning::scan::Scans>>>,
    pub scanners: Arc<berth_scanning::scanners::Scanners>,
    pub scan_access: Arc<std::sync::OnceLock<berth_scanning::external::RegistryAccess>>,
    pub scan_events: Arc<std::sync::OnceLock<berth_scanning::scan::ScanEvents>>,
}

/// Builds the job service with every kind this binary knows.
pub fn service(cfg: &Config, deps: Deps) -> anyhow::Result<Arc<JobService>> {
    let Deps {
        store,
        identity,
        gc,
        blobs,
        registry,
        replication,
        vulns,
        retention,
        catalog,
        labels,
        policies,
        scans,
        scanners,
        scan_access,
        scan_events,
    } = deps;
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "berth".to_owned());
    // Unique per process: a restarted instance is a new pool, and the old one's jobs are
    // taken over when their leases run out.
    let owner = format!("{host}-{}-{}", std::process::id(), &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let workers = cfg.jobs.workers;
    // System jobs run one at a time across the cluster, as in Harbor.
    let single = |name, handler: Arc<dyn berth_jobs::Handler>| KindSpec {
        name,
        handler,
        cluster_limit: 1,
        local_workers: 1,
        max_runtime: Some(Duration::from_secs(24 * 3600)),
    };
    let lease = Duration::from_secs(cfg.jobs.lease_secs);
    let engine = EngineConfig { lease, heartbeat: lease / 3, ..EngineConfig::new(owner, host) };
    let registry_for_scan = registry.clone();
    let mut b = JobService::builder(store.clone(), engine)
        .kind(single(kinds::PURGE_AUDIT_LOG, Arc::new(PurgeAuditLog { identity: identity.clone() })))
        .kind(single(
            kinds::GARBAGE_COLLECTION,
            Arc::new(GarbageCollection {
                store: gc,
                blobs,
                time_window_hours: cfg.gc.time_window_hours,
                pause_percent: cfg.gc_pause_percent(),
                uploads: Some((registry, cfg.uploads.max_idle_hours)),
            }),
        ))
        // Scan all lists the registry and starts scans: one at a time, as in Harbor.
        .kind(single(
            berth_scanning::scan_all::VENDOR_TYPE,
            Arc::new(berth_scanning::scan_all::ScanAll { catalog: catalog.clone(), scans }),
        ))
        .kind(KindSpec {
            name: berth_scanning::cve_export::VENDOR_TYPE,
            handler: Arc::new(berth_scanning::cve_export::CveExport {
                catalog: catalog.clone(),
                identity,
                vulns: vulns.clone(),
                labels,
                policies,
                jobs: store.clone(),
            }),
            cluster_limit: 4,
            local_workers: 1,
            max_runtime: Some(Duration::from_secs(3600)),
        })
        .kind(single(
            kinds::EXECUTION_SWEEP,
            Arc::new(ExecutionSweep {
                jobs: store,
                vendor_types: swept_vendor_types()
                    .into_iter()
                    .chain([
                        berth_webhooks::VENDOR_TYPE.to_owned(),
                        berth_replication::VENDOR_TYPE.to_owned(),
                        berth_retention::VENDOR_TYPE.to_owned(),
                        berth_scanning::scan_all::VENDOR_TYPE.to_owned(),
                        berth_scanning::cve_export::VENDOR_TYPE.to_owned(),
                        berth_scanning::adapter::KIND.to_owned(),
                        berth_replication::health::HEALTH.to_owned(),
                    ])
                    .collect(),
            }),
        ));
    // Retention: one launch per run, repository tasks in parallel across the cluster.
    b = b
        .kind(KindSpec {
            name: berth_retention::LAUNCH,
            handler: Arc::new(berth_retention::Launch(retention.clone())),
            cluster_limit: 8,
            local_workers: workers.max(1),
            max_runtime: Some(Duration::from_secs(3600)),
        })
        .kind(KindSpec {
            name: berth_retention::REPO,
            handler: Arc::new(berth_retention::RepoTask(retention)),
            cluster_limit: 16,
            local_workers: workers.max(1),
            max_runtime: Some(Duration::from_secs(6 * 3600)),
        });
    // Deliveries are many and short; each waits on a remote endpoint, not on this host.
    berth_blob_s3::install_crypto_provider();
    let deliver: Arc<dyn berth_jobs::Handler> = Arc::new(
        Deliver::new(WEBHOOK_TIMEOUT, Duration::from_secs(cfg.jobs.webhook_retry_cap_secs))
            .map_err(anyhow::Error::msg)?,
    );
    for name in [berth_webhooks::WEBHOOK, berth_webhooks::SLACK] {
        b = b.kind(KindSpec {
            name,
            handler: deliver.clone(),
            cluster_limit: 256,
            local_workers: workers.saturating_mul(4),
            max_runtime: Some(WEBHOOK_TIMEOUT * 2),
        });
    }
    // Replication: planning is short; copies wait on the network, so an instance runs
    // several (Harbor runs them with unlimited concurrency).
    b = b
        .kind(single(
            berth_replication::health::HEALTH,
            Arc::new(berth_replication::health::HealthCheck(replication.clone())),
        ))
        .kind(KindSpec {
            name: berth_replication::FLOW,
            handler: Arc::new(berth_replication::flow::Flow(replication.clone())),
            cluster_limit: 64,
            local_workers: workers,
            max_runtime: Some(Duration::from_secs(3600)),
        })
        .kind(KindSpec {
            name: berth_replication::COPY,
            handler: Arc::new(berth_replication::copy::Copy(replication)),
            cluster_limit: 256,
            local_workers: workers.saturating_mul(2),
            max_runtime: Some(Duration::from_secs(24 * 3600)),
        })
        // A policy's schedule carries the policy (kept in step by the API): firing it is
        // its planning task.
        .planner(berth_replication::VENDOR_TYPE, |s| {
            vec![berth_core::store::jobs::NewJob {
                max_attempts: berth_replication::MAX_ATTEMPTS,
                ..berth_core::store::jobs::NewJob::new(berth_replication::FLOW, &s.args)
            }]
        });
    // Scans read whole layers into memory and use a core each: a few per instance.
    let external_timeout = Duration::from_secs(cfg.scan.external_timeout_secs);
    b = b.kind(KindSpec {
        name: berth_scanning::scan::KIND,
        handler: Arc::new(berth_scanning::job::ScanJob {
            registry: registry_for_scan,
            vulns: vulns.clone(),
            catalog,
            scanners: scanners.clone(),
            access: scan_access,
            external_timeout,
            events: scan_events,
        }),
        cluster_limit: 64,
        local_workers: workers.clamp(1, 2),
        // An external scan may wait on its adapter up to its deadline.
        max_runtime: Some(Duration::from_secs(3600).max(external_timeout + Duration::from_secs(300))),
    });
    // Scans other registries ask Berth's adapter API for: the same work, pulled remotely.
    b = b.kind(KindSpec {
        name: berth_scanning::adapter::KIND,
        handler: Arc::new(berth_scanning::job::AdapterScanJob { vulns, scanners }),
        cluster_limit: 64,
        local_workers: workers.clamp(1, 2),
        max_runtime: Some(Duration::from_secs(3600)),
    });
    if cfg.jobs.sample_job {
        b = b.kind(KindSpec {
            name: kinds::SAMPLE,
            handler: Arc::new(Sample),
            cluster_limit: 64,
            local_workers: workers,
            max_runtime: None,
        });
    }
    Ok(b.build())
}

/// How long one webhook delivery attempt may take.
const WEBHOOK_TIMEOUT: Duration = Duration::from_secs(10);

/// The schedules every cluster has: the daily sweep of old execution history (created
/// once per cluster: a second instance finds it there) and the registry health check
/// (set to this instance's `jobs.registry_health_secs` when it differs).
pub async fn ensure_schedules(jobs: &JobService, cfg: &Config) -> anyhow::Result<()> {
    ensure_schedule(jobs, kinds::EXECUTION_SWEEP, "Daily", "0 0 3 * * *", false).await?;
    let health = cfg.jobs.registry_health_cron().unwrap_or_else(|| "0 */5 * * * *".into());
    ensure_schedule(jobs, berth_replication::health::HEALTH, "Custom", &health, true).await
}

async fn ensure_schedule(
    jobs: &JobService,
    vendor_type: &str,
    cron_type: &str,
    cron: &str,
    replace: bool,
) -> anyhow::Result<()> {
    let store = jobs.store();
    match store.schedule(vendor_type, 0).await? {
        Some(s) if !replace || s.cron == cron => return Ok(()),
        _ => {}
    }
    let cron = CronExpr::parse(cron).map_err(anyhow::Error::msg)?;
    let Some(next) = jobs.next_fire(&cron).await? else { return Ok(()) };
    store
        .put_schedule(&NewSchedule {
            vendor_type: vendor_type.into(),
            vendor_id: 0,
            cron_type: cron_type.into(),
            cron: cron.as_str().into(),
            args: "{}".into(),
            next_fire_at: next,
        })
        .await?;
    Ok(())
}
