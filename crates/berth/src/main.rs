//! The `berth` binary: command line, configuration and wiring. No domain logic here.

mod cluster;
mod gc_cli;
mod https;
mod jobs;
mod vulndb_cli;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};

use berth_config::{Config, DatabaseKind, Overrides};
use berth_core::access::AccessControl;
use berth_core::authn::Authenticator;
use berth_core::registry::Registry;
use berth_core::store::MetaStore;
use berth_core::store::catalog::CatalogStore;
use berth_core::store::cluster::ClusterStore;
use berth_core::store::gc::GcStore;
use berth_core::store::identity::IdentityStore;
use berth_core::store::jobs::JobStore;
use berth_core::store::labels::LabelStore;
use berth_http::metrics::Sample;
use berth_http::{AppState, Auth, Mode};
use berth_token::TokenIssuer;

#[derive(Parser)]
#[command(name = "berth", version, about = "A Harbor-compatible OCI registry in one binary")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the registry (SQLite + local disk under ./data unless configured otherwise).
    Serve {
        #[command(flatten)]
        common: Common,
        /// Address to listen on, e.g. 127.0.0.1:8080 (port 0 picks a free port).
        #[arg(long)]
        listen: Option<String>,
    },
    /// Validate the configuration and print it, without starting anything.
    Config {
        #[command(flatten)]
        common: Common,
    },
    /// Run a garbage collection on the running registry (the same job as the API's
    /// `/system/gc`) and follow its log until it ends.
    Gc {
        #[command(flatten)]
        common: Common,
        /// Report what would be freed; delete nothing.
        #[arg(long)]
        dry_run: bool,
        /// Also delete manifests no tag, index or subject keeps (Harbor's option).
        #[arg(long)]
        delete_untagged: bool,
        /// Parallel deletion workers, 1 to 5.
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u8).range(1..=5))]
        workers: u8,
        /// Give up (and cancel the job) if no instance has started it after this long.
        #[arg(long, default_value_t = 60)]
        wait_secs: u64,
    },
    /// Vulnerability data for the built-in scanner (OSV records in the metadata database).
    Vulndb {
        #[command(subcommand)]
        action: VulndbCommand,
    },
    /// Storage administration.
    Storage {
        #[command(subcommand)]
        action: StorageCommand,
    },
    /// Exit 0 if the instance at URL reports itself healthy (`GET /api/v2.0/health` answers
    /// 200: core, database, storage, job service and Redis all fine); for keepalived and
    /// haproxy check scripts. Prints the unhealthy components otherwise.
    Healthcheck {
        #[arg(long, default_value = "http://127.0.0.1:8080")]
        url: String,
        #[arg(long, default_value_t = 2)]
        timeout_secs: u64,
    },
}

#[derive(Subcommand)]
enum StorageCommand {
    /// Declare the configured storage Berth's own, so that garbage collection also removes
    /// blob files the database does not know. A storage Berth created empty is its own
    /// already; one that held another registry's files (Distribution, Harbor) served in
    /// place is not, until this is run - do not run it while another registry still
    /// writes there, or before its content has been imported.
    Adopt {
        #[command(flatten)]
        common: Common,
    },
}

#[derive(Subcommand)]
enum VulndbCommand {
    /// Import OSV records from a directory of JSON files or a zip of them (the OSV
    /// project's per-ecosystem `all.zip`); records whose `modified` did not change are
    /// skipped, so importing a newer copy of the same data is quick.
    Import {
        #[command(flatten)]
        common: Common,
        /// A directory (searched recursively for *.json and *.zip), a .zip or a .json file.
        path: PathBuf,
    },
    /// Show how many records there are, per ecosystem, and how old the data is.
    Status {
        #[command(flatten)]
        common: Common,
    },
}

#[derive(clap::Args)]
struct Common {
    /// TOML configuration file. BERTH_* environment variables override it.
    #[arg(long, short)]
    config: Option<PathBuf>,
    /// Directory for the embedded database and blob storage (default ./data).
    #[arg(long)]
    data_dir: Option<PathBuf>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve { common, listen } => {
            let cfg = match load(&common, listen) {
                Ok(c) => c,
                Err(code) => return code,
            };
            init_logging(&cfg);
            let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("tokio runtime");
            match rt.block_on(serve(cfg)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("berth: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Config { common } => match load(&common, None) {
            Ok(c) => {
                println!("configuration is valid:\n{c:#?}");
                ExitCode::SUCCESS
            }
            Err(code) => code,
        },
        Command::Gc { common, dry_run, delete_untagged, workers, wait_secs } => {
            let cfg = match load(&common, None) {
                Ok(c) => c,
                Err(code) => return code,
            };
            let params = berth_gc::GcParams { delete_untagged, dry_run, workers };
            let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("tokio runtime");
            let run = async {
                let stores = open_stores(&cfg).await?;
                gc_cli::run(stores.jobs, params, Duration::from_secs(wait_secs)).await
            };
            match rt.block_on(run) {
                Ok(code) => code,
                Err(e) => {
                    eprintln!("berth: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Storage { action: StorageCommand::Adopt { common } } => {
            let cfg = match load(&common, None) {
                Ok(c) => c,
                Err(code) => return code,
            };
            let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("tokio runtime");
            let run = async {
                let blobs = open_blobs(&cfg).await?;
                if blobs.owned().await? {
                    eprintln!("the storage is already Berth's own; nothing to do");
                } else {
                    blobs.mark_owned().await?;
                    eprintln!(
                        "the storage is now Berth's own: garbage collection removes blob files the database does not know"
                    );
                }
                anyhow::Ok(())
            };
            match rt.block_on(run) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("berth: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Vulndb { action } => {
            let common = match &action {
                VulndbCommand::Import { common, .. } | VulndbCommand::Status { common } => common,
            };
            let cfg = match load(common, None) {
                Ok(c) => c,
                Err(code) => return code,
            };
            let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("tokio runtime");
            let run = async {
                // An import may come before the first `serve` (an air-gapped install).
                std::fs::create_dir_all(&cfg.data_dir)
                    .with_context(|| format!("data_dir: cannot create {}", cfg.data_dir.display()))?;
                let stores = open_stores(&cfg).await?;
                match &action {
                    VulndbCommand::Import { path, .. } => vulndb_cli::import(stores.vulns, path).await,
                    VulndbCommand::Status { .. } => vulndb_cli::status(stores.vulns).await,
                }
            };
            match rt.block_on(run) {
                Ok(code) => code,
                Err(e) => {
                    eprintln!("berth: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Healthcheck { url, timeout_secs } => healthcheck(&url, Duration::from_secs(timeout_secs)),
    }
}

fn load(common: &Common, listen: Option<String>) -> Result<Config, ExitCode> {
    let overrides = Overrides { data_dir: common.data_dir.clone(), listen };
    Config::load(common.config.as_deref(), &overrides).map_err(|e| {
        eprintln!("berth: {e}");
        ExitCode::from(2)
    })
}

fn init_logging(cfg: &Config) {
    let filter = tracing_subscriber::EnvFilter::try_new(&cfg.log.level)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    use std::io::IsTerminal;
    // Colours only for a terminal: log files and journald get plain text.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    if cfg.log.format == "json" {
        builder.json().init();
    } else {
        builder.init();
    }
}

async fn serve(cfg: Config) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    let tls = load_tls(&cfg)?;
    std::fs::create_dir_all(&cfg.data_dir)
        .with_context(|| format!("data_dir: cannot create {}", cfg.data_dir.display()))?;
    // Reading (or on a first start generating) the key runs beside opening the stores.
    let key = tokio::task::spawn_blocking({
        let cfg = cfg.clone();
        move || load_token_key(&cfg)
    });
    let secret = tokio::task::spawn_blocking({
        let cfg = cfg.clone();
        move || load_secret_key(&cfg)
    });
    let blobs = open_blobs(&cfg).await?;
    claim_empty_storage(&*blobs).await;
    let stores = open_stores(&cfg).await?;
    let (meta, identity, catalog, labels) = (stores.meta, stores.identity, stores.catalog, stores.labels);
    let admin_password = Some(cfg.admin.password.clone()).filter(|p| !p.is_empty());
    if let Some(p) = &admin_password {
        berth_core::bootstrap::check_admin_password(p)?;
    }
    // A first start hashes the admin password (600,000 PBKDF2 rounds, a few hundred ms):
    // that runs while the server already answers; requests needing identities wait for it.
    let (bootstrapped_tx, bootstrapped) = tokio::sync::watch::channel(false);
    let mut bootstrap = tokio::spawn({
        let identity = identity.clone();
        async move {
            // The server already answers, so a database that is briefly unavailable (a
            // failover, an exhausted pool) must not end the process: the bootstrap is
            // idempotent and is tried again until it gets through.
            let mut pause = Duration::from_millis(200);
            let boot = loop {
                match berth_core::bootstrap::ensure_initial_state(identity.as_ref(), admin_password.as_deref()).await {
                    Err(berth_core::bootstrap::BootstrapError::Identity(
                        berth_core::store::identity::IdentityError::Store(
                            e @ berth_core::store::StoreError::Unavailable(_),
                        ),
                    )) => {
                        tracing::warn!(error = %e, retry_in_ms = pause.as_millis() as u64, "first-start bootstrap waits for the database");
                        tokio::time::sleep(pause).await;
                        pause = (pause * 2).min(Duration::from_secs(5));
                    }
                    other => break other?,
                }
            };
            if let Some(pw) = boot.generated_admin_password {
                // Shown once on the terminal, never logged: log files travel further than terminals.
                eprintln!("berth: created the system administrator \"admin\" with password: {pw}");
                eprintln!(
                    "berth: it is shown only now; change it after logging in, or set BERTH_ADMIN_PASSWORD on a fresh data dir"
                );
            }
            let _ = bootstrapped_tx.send(true);
            anyhow::Ok(())
        }
    });
    let redis = open_redis(&cfg)?;
    let tokens = key.await.context("generating the token key")??;
    cluster::check_token_key(stores.cluster.as_ref(), tokens.kid(), &cfg.private_key_path(), stores.shared).await?;
    let secret = Arc::new(secret.await.context("generating the secret key")??);
    cluster::check_secret_key(stores.cluster.as_ref(), &secret.fingerprint(), &cfg.secret_key_path(), stores.shared)
        .await?;
    let scanners =
        Arc::new(berth_scanning::scanners::Scanners::new(stores.policies.clone(), secret.clone(), REMOTE_TIMEOUT));
    let scan_access = Arc::new(std::sync::OnceLock::new());
    let replication = Arc::new(berth_replication::Context::new(
        berth_replication::Registries::new(stores.policies.clone(), secret),
        stores.policies.clone(),
        catalog.clone(),
        labels.clone(),
        identity.clone(),
        REMOTE_TIMEOUT,
    ));
    let settings = Arc::new(
        berth_core::settings::SettingsCache::load(stores.cluster.clone())
            .await
            .context("reading the runtime settings")?,
    );
    let audit_log = berth_http::audit_log::AuditLog::start(identity.clone(), settings.clone());
    let registry = Arc::new(Registry::new(meta, blobs.clone()));
    let retention = Arc::new(berth_retention::Context::new(
        stores.policies.clone(),
        catalog.clone(),
        labels.clone(),
        identity.clone(),
        registry.clone(),
    ));
    let scans_slot = Arc::new(std::sync::OnceLock::new());
    let scan_events = Arc::new(std::sync::OnceLock::new());
    let job_service = jobs::service(
        &cfg,
        jobs::Deps {
            store: stores.jobs.clone(),
            identity: identity.clone(),
            gc: stores.gc.clone(),
            blobs: blobs.clone(),
            registry: registry.clone(),
            replication: replication.clone(),
            vulns: stores.vulns.clone(),
            retention: retention.clone(),
            catalog: catalog.clone(),
            labels: labels.clone(),
            policies: stores.policies.clone(),
            scans: scans_slot.clone(),
            scanners: scanners.clone(),
            scan_access: scan_access.clone(),
            scan_events: scan_events.clone(),
        },
    )?;
    replication.set_jobs(stores.jobs.clone());
    let scans = Arc::new(berth_scanning::scan::Scans {
        jobs: job_service.clone(),
        vulns: stores.vulns.clone(),
        scanners,
        identity: identity.clone(),
        adapter_key: Some(cfg.scan.adapter_api_key.clone()).filter(|k| !k.is_empty()),
    });
    let _ = scans_slot.set(scans.clone());
    vulndb_cli::register_age_gauge(stores.vulns.clone());
    let webhooks = Arc::new(berth_webhooks::Webhooks::new(stores.webhooks.clone(), job_service.clone()));
    let registry_host = match cfg.http.external_url.split_once("://") {
        Some((_, rest)) => rest.trim_end_matches('/').to_owned(),
        None => cfg.http.listen.clone(),
    };
    let _ = scan_events.set(berth_scanning::scan::ScanEvents {
        webhooks: webhooks.clone(),
        identity: identity.clone(),
        vulns: stores.vulns.clone(),
        settings: settings.clone(),
        registry_host: registry_host.clone(),
    });
    retention.set_webhooks(berth_retention::Notifier {
        webhooks: webhooks.clone(),
        settings: settings.clone(),
        hostname: registry_host.clone(),
    });
    replication.set_webhooks(berth_replication::events::Notifier {
        webhooks: webhooks.clone(),
        settings: settings.clone(),
        hostname: registry_host.clone(),
        endpoint: if cfg.http.external_url.is_empty() {
            format!("http://{registry_host}")
        } else {
            cfg.http.external_url.trim_end_matches('/').to_owned()
        },
    });
    registry.set_quota_events(Arc::new(berth_http::quota_events::QuotaNotifier {
        webhooks: webhooks.clone(),
        identity: identity.clone(),
        settings: settings.clone(),
        registry_host: registry_host.clone(),
    }));
    let events = berth_http::events::EventSink::start(
        audit_log.clone(),
        identity.clone(),
        catalog.clone(),
        Some(berth_http::events::WebhookSink {
            webhooks: webhooks.clone(),
            registry_host,
            settings: settings.clone(),
            scans: Some(scans.clone()),
        }),
        Some(berth_http::events::ReplicationSink { replication: replication.clone(), jobs: job_service.clone() }),
        Some(berth_http::events::OutboxDrain { store: stores.outbox.clone(), owner: job_service.owner().to_owned() }),
    );
    let auth = Auth {
        mode: if cfg.auth.mode == "open" { Mode::Open } else { Mode::Harbor },
        authn: match &redis {
            Some(r) => Authenticator::new(identity.clone())
                .with_shared_throttle(Arc::new(berth_redis::throttle::RedisLedger(r.clone()))),
            None => Authenticator::new(identity.clone()),
        }
        .with_settings(settings.clone()),
        access: AccessControl::new(identity.clone()),
        identity,
        tokens,
        token_ttl_secs: cfg.auth.token_ttl_minutes as i64 * 60,
        caches: Default::default(),
    };
    let auth = Arc::new(auth);
    let state = AppState {
        registry: registry.clone(),
        auth: auth.clone(),
        replication: replication.clone(),
        catalog,
        labels,
        cluster: stores.cluster.clone(),
        events,
        external_url: cfg.http.external_url.trim_end_matches('/').into(),
        // Distribution's default lifetime for redirect URLs.
        blob_redirect: cfg.storage.redirect.then_some(Duration::from_secs(20 * 60)),
        jobs: job_service.clone(),
        policies: stores.policies.clone(),
        webhooks,
        retention,
        health: redis.iter().map(|r| redis_health(r.clone())).collect::<Vec<_>>().into(),
        https: tls.is_some(),
        tls_cert: tls.is_some().then(|| cfg.http.tls_cert.clone().into()),
        settings: settings.clone(),
        audit_log,
        bootstrapped,
        pull_policy: {
            let p = berth_http::pull_policy::PullPolicy::default();
            // The built-in scanner judges prevent_vul.
            p.set_vulnerability_gate(scans.clone());
            Arc::new(p)
        },
        scans,
        proxy: Arc::new(berth_proxy::ProxyCache::new(
            registry.clone(),
            replication.registries.clone(),
            auth.identity.clone(),
            stores.cluster.clone(),
            REMOTE_TIMEOUT,
        )),
    };
    jobs::ensure_schedules(&job_service, &cfg).await.context("creating the job service's schedules")?;
    let metrics_jobs = job_service.clone();
    berth_http::metrics::global().add_text(Box::new(move || metrics_jobs.metrics_text()));

    let listener = tokio::net::TcpListener::bind(&cfg.http.listen)
        .await
        .with_context(|| format!("http.listen: cannot listen on {}", cfg.http.listen))?;
    let addr = listener.local_addr()?;
    // Replication jobs reach this registry over its own /v2, on loopback, with tokens
    // minted here (any instance can run any job: each reaches itself).
    let local_ip = if addr.ip().is_unspecified() {
        if addr.is_ipv6() { "[::1]".to_owned() } else { "127.0.0.1".to_owned() }
    } else if addr.is_ipv6() {
        format!("[{}]", addr.ip())
    } else {
        addr.ip().to_string()
    };
    replication.set_local(berth_replication::LocalAccess {
        url: format!("{}://{local_ip}:{}", if tls.is_some() { "https" } else { "http" }, addr.port()),
        mint: {
            let auth = auth.clone();
            Arc::new(move |scopes: &[String]| {
                let access = berth_token::ResourceAccess::parse_all(scopes.iter().map(String::as_str))
                    .map_err(|e| e.to_string())?;
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs() as i64);
                auth.tokens.issue(REPLICATION_SUBJECT, access, now, 3600).map_err(|e| e.to_string())
            })
        },
    });
    // External scanner adapters pull the artifact they scan with a token for that one
    // repository (see berth-scanning's external.rs), from the external URL or this listener.
    let _ = scan_access.set(berth_scanning::external::RegistryAccess {
        mint: {
            let auth = auth.clone();
            Arc::new(move |subject: &str, repo: &str, ttl: i64| {
                let scope = format!("repository:{repo}:pull,scanner-pull");
                let access = berth_token::ResourceAccess::parse_all([scope.as_str()]).map_err(|e| e.to_string())?;
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs() as i64);
                auth.tokens.issue(subject, access, now, ttl).map_err(|e| e.to_string())
            })
        },
        internal_url: format!("{}://{local_ip}:{}", if tls.is_some() { "https" } else { "http" }, addr.port()),
        external_url: cfg.http.external_url.trim_end_matches('/').to_owned(),
    });
    // The one line on stdout: scripts and tests read the address from it.
    println!("listening on {addr}");
    tracing::info!(%addr, https = tls.is_some(), data_dir = %cfg.data_dir.display(), startup_ms = started.elapsed().as_millis() as u64, "berth is ready");

    let refresher = tokio::spawn(refresh_settings(settings));
    let janitor = tokio::spawn(janitor(registry, stores.cluster.clone(), redis, cfg.uploads.max_idle_hours));
    let grace = Duration::from_secs(cfg.http.shutdown_grace_secs);
    let job_loop = cfg.jobs.enabled.then(|| tokio::spawn(job_service.clone().run(grace)));
    // The web UI (`/`, `/login`, `/projects/…`) rides on the same router and middleware.
    let ui = berth_ui::router(&state);
    let app = berth_http::router_with(state, ui);
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stopping = async move {
        shutdown_signal().await;
        tracing::info!("shutting down: finishing in-flight requests");
        let _ = stop_tx.send(true);
    };
    let watcher = tls.as_ref().map(|cert| cert.clone().spawn_watcher(CERT_POLL));
    let server = async move {
        match tls {
            Some(cert) => {
                let listener = https::TlsListener::new(listener, cert.server_config())?;
                axum::serve(listener, app).with_graceful_shutdown(stopping).await
            }
            None => axum::serve(listener, app).with_graceful_shutdown(stopping).await,
        }
    };
    let mut stop_rx2 = stop_rx.clone();
    let bootstrap_failed = async {
        match (&mut bootstrap).await {
            Ok(Ok(())) => std::future::pending().await,
            Ok(Err(e)) => Err(e),
            Err(e) => Err(anyhow::anyhow!("first-start bootstrap: {e}")),
        }
    };
    tokio::select! {
        r = server => r.context("server failed")?,
        r = bootstrap_failed => return r,
        _ = async { let _ = stop_rx2.wait_for(|s| *s).await; tokio::time::sleep(grace).await } => {
            tracing::warn!(grace_secs = grace.as_secs(), "requests still running after the grace period; exiting (unfinished uploads stay invisible)");
        }
    }
    janitor.abort();
    // Running jobs are asked to stop at a safe point; those that do not within the grace
    // period are taken over by another instance when their leases run out.
    job_service.shutdown();
    if let Some(l) = job_loop {
        let _ = tokio::time::timeout(grace + Duration::from_secs(1), l).await;
    }
    if let Some(w) = watcher {
        w.abort();
    }
    refresher.abort();
    Ok(())
}

/// How often the certificate files are checked for a replacement (SIGHUP reloads at once).
const CERT_POLL: Duration = Duration::from_secs(2);

/// The HTTPS certificate, loaded and checked before anything is opened, so a bad pair is a
/// start-up error naming its key rather than failed handshakes later.
fn load_tls(cfg: &Config) -> anyhow::Result<Option<Arc<berth_tls::server::ReloadingCert>>> {
    use berth_tls::server::{CertError, ReloadingCert};
    let h = &cfg.http;
    if h.tls_cert.is_empty() {
        return Ok(None);
    }
    ReloadingCert::load(h.tls_cert.as_ref(), h.tls_key.as_ref()).map(Some).map_err(|e| match e {
        CertError::Cert(m) => anyhow::anyhow!("http.tls_cert: {m}"),
        CertError::Key(m) => anyhow::anyhow!("http.tls_key: {m}"),
        CertError::Mismatch { .. } => {
            anyhow::anyhow!("http.tls_cert, http.tls_key: {e}; give the key the certificate was issued for")
        }
    })
}

/// A storage with no blobs at first start is Berth's from then on (see
/// `BlobStore::owned`); one that holds blobs Berth did not write stays another
/// registry's until an operator adopts it. A storage error here only delays the claim to
/// the next start: serving must not depend on it.
async fn claim_empty_storage(blobs: &dyn berth_core::blobstore::BlobStore) {
    let claim = async {
        if !blobs.owned().await? && blobs.list_blobs(None, 1).await?.is_empty() {
            blobs.mark_owned().await?;
            tracing::info!(
                "the storage was empty: it is Berth's own, so GC may remove files the database does not know"
            );
        }
        std::io::Result::Ok(())
    };
    if let Err(e) = claim.await {
        tracing::warn!(error = %e, "could not check whether the storage is Berth's own; GC keeps unknown files for now");
    }
}

async fn open_blobs(cfg: &Config) -> anyhow::Result<Arc<dyn berth_core::blobstore::BlobStore>> {
    if cfg.storage.kind == "s3" {
        let st = &cfg.storage;
        let opts = berth_blob_s3::S3Options {
            endpoint: st.s3_endpoint.clone(),
            region: st.s3_region.clone(),
            bucket: st.s3_bucket.clone(),
            prefix: st.s3_prefix.clone(),
            access_key: st.s3_access_key.clone(),
            secret_key: st.s3_secret_key.clone(),
            // The AWS SDKs' variables, read here as berth-config reads BERTH_*.
            env: berth_blob_s3::AwsEnv::from_process(),
            sse: match st.s3_sse.as_str() {
                "aes256" => berth_blob_s3::Sse::Aes256,
                "kms" => {
                    berth_blob_s3::Sse::Kms { key_id: Some(st.s3_sse_kms_key_id.clone()).filter(|k| !k.is_empty()) }
                }
                _ => berth_blob_s3::Sse::None,
            },
            path_style: st.s3_path_style,
            timeout: Duration::from_secs(st.timeout_secs),
        };
        let store = berth_blob_s3::S3BlobStore::open(opts).await.map_err(|e| anyhow::anyhow!("storage (s3): {e}"))?;
        return Ok(Arc::new(store));
    }
    let root = cfg.storage_root();
    let store = berth_blob::FsBlobStore::open(&root)
        .with_context(|| format!("storage.root: cannot use {} as blob storage", root.display()))?
        .with_stall_limit(Duration::from_secs(cfg.storage.timeout_secs));
    Ok(Arc::new(store))
}

struct Stores {
    meta: Arc<dyn MetaStore>,
    identity: Arc<dyn IdentityStore>,
    catalog: Arc<dyn CatalogStore>,
    labels: Arc<dyn LabelStore>,
    cluster: Arc<dyn ClusterStore>,
    webhooks: Arc<dyn berth_core::store::webhooks::WebhookStore>,
    jobs: Arc<dyn JobStore>,
    gc: Arc<dyn GcStore>,
    policies: Arc<dyn berth_core::store::policies::PolicyStore>,
    outbox: Arc<dyn berth_core::store::outbox::OutboxStore>,
    vulns: Arc<dyn berth_core::store::vulns::VulnStore>,
    /// Whether other instances may share this database.
    shared: bool,
}

async fn open_stores(cfg: &Config) -> anyhow::Result<Stores> {
    match cfg.database_kind().map_err(anyhow::Error::msg)? {
        DatabaseKind::Sqlite(path) => {
            let store = Arc::new(
                berth_store_sqlite::SqliteStore::open(&path)
                    .with_context(|| format!("database.url: cannot open SQLite database {}", path.display()))?,
            );
            let stats = store.clone();
            berth_http::metrics::global().add_gauges(Box::new(move || {
                let s = stats.writer_stats();
                vec![
                    Sample {
                        name: "berth_db_write_jobs_total",
                        help: "Write jobs the SQLite writer ran since start.",
                        kind: "counter",
                        value: s.jobs as f64,
                    },
                    Sample {
                        name: "berth_db_commits_total",
                        help: "Commits the SQLite writer made since start, fsynced or not (`berth_db_unsynced_commits_total`).",
                        kind: "counter",
                        value: s.commits as f64,
                    },
                    Sample {
                        name: "berth_db_unsynced_commits_total",
                        help: "Of the SQLite writer's commits, those made without an fsync (GC's background work).",
                        kind: "counter",
                        value: s.unsynced_commits as f64,
                    },
                ]
            }));
            Ok(Stores {
                meta: store.clone(),
                identity: store.clone(),
                catalog: store.clone(),
                labels: store.clone(),
                cluster: store.clone(),
                webhooks: store.clone(),
                jobs: store.clone(),
                gc: store.clone(),
                outbox: store.clone(),
                vulns: store.clone(),
                policies: store,
                shared: false,
            })
        }
        DatabaseKind::Postgres(url) => {
            let d = &cfg.database;
            let opts = berth_store_postgres::PgOptions {
                url,
                max_connections: d.max_connections,
                connect_timeout: Duration::from_secs(d.connect_timeout_secs),
                acquire_timeout: Duration::from_secs(d.acquire_timeout_secs),
                statement_timeout: Duration::from_secs(d.statement_timeout_secs),
            };
            let store = Arc::new(
                berth_store_postgres::PgStore::connect(opts)
                    .await
                    .context("database.url: cannot use the PostgreSQL database")?,
            );
            let pool = store.clone();
            berth_http::metrics::global().add_gauges(Box::new(move || {
                let p = pool.pool_status();
                let gauge = |name, help, value: usize| Sample { name, help, kind: "gauge", value: value as f64 };
                vec![
                    gauge("berth_db_pool_connections", "PostgreSQL connections open (idle or in use).", p.size),
                    gauge("berth_db_pool_idle", "PostgreSQL connections idle in the pool.", p.idle),
                    gauge("berth_db_pool_max", "PostgreSQL pool size limit (database.max_connections).", p.max),
                    gauge("berth_db_pool_waiting", "Requests waiting for a PostgreSQL connection.", p.waiting),
                ]
            }));
            Ok(Stores {
                meta: store.clone(),
                identity: store.clone(),
                catalog: store.clone(),
                labels: store.clone(),
                cluster: store.clone(),
                webhooks: store.clone(),
                jobs: store.clone(),
                gc: store.clone(),
                outbox: store.clone(),
                vulns: store.clone(),
                policies: store,
                shared: true,
            })
        }
    }
}

/// Loads the token signing key; on the first start with the default path, generates a
/// P-256 key (ES256) there, or adopts the one an instance starting at the same moment on
/// the same directory published first.
fn load_token_key(cfg: &Config) -> anyhow::Result<TokenIssuer> {
    use berth_token::keyfile::{Origin, load_or_generate};
    let path = cfg.private_key_path();
    let (issuer, origin) = load_or_generate(&path, cfg.auth.private_key.is_empty())
        .map_err(|e| anyhow::anyhow!("auth.private_key: {e}"))?;
    match origin {
        Origin::Loaded => {}
        Origin::Generated => {
            tracing::info!(path = %path.display(), kid = issuer.kid(), "generated the token signing key (P-256, ES256)")
        }
        Origin::Adopted => {
            tracing::info!(path = %path.display(), kid = issuer.kid(), "another instance generated the token signing key at the same moment; using it")
        }
    }
    Ok(issuer)
}

/// Connect and read timeout of replication's requests to remote registries.
const REMOTE_TIMEOUT: Duration = Duration::from_secs(60);

/// Who replication's requests to this registry are recorded as (audit log, events).
const REPLICATION_SUBJECT: &str = berth_core::access::JOBSERVICE_USER;

/// Loads the cluster secret key; on the first start with the default path, generates one
/// there (or adopts the one an instance starting at the same moment published first).
fn load_secret_key(cfg: &Config) -> anyhow::Result<berth_secret::SecretKey> {
    use berth_secret::{Origin, SecretKey};
    let path = cfg.secret_key_path();
    let (key, origin) = SecretKey::load_or_generate(&path, cfg.auth.secret_key.is_empty())
        .map_err(|e| anyhow::anyhow!("auth.secret_key: {e}"))?;
    match origin {
        Origin::Loaded => {}
        Origin::Generated => {
            tracing::info!(path = %path.display(), fingerprint = %key.fingerprint(), "generated the cluster secret key")
        }
        Origin::Adopted => {
            tracing::info!(path = %path.display(), fingerprint = %key.fingerprint(), "another instance generated the cluster secret key at the same moment; using it")
        }
    }
    Ok(key)
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

/// Periodic clean-up: abandoned uploads and expired session revocations.
/// Re-reads the runtime settings every [`REFRESH_EVERY`]: the bound on how long after a
/// change on another instance this one still acts on the old values. A failed read keeps
/// the last values.
async fn refresh_settings(settings: Arc<berth_core::settings::SettingsCache>) {
    let mut tick = tokio::time::interval(berth_core::settings::REFRESH_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if let Err(e) = settings.refresh().await {
            tracing::warn!(error = %e, "could not re-read the runtime settings; keeping the last ones");
        }
    }
}

async fn janitor(
    registry: Arc<Registry>,
    cluster: Arc<dyn ClusterStore>,
    redis: Option<Arc<berth_redis::Redis>>,
    max_idle_hours: u64,
) {
    // First pass a minute after start (leftovers of a crash), then every ten minutes; never
    // during start-up or shutdown, when the runtime may cancel it midway.
    const EVERY: Duration = Duration::from_secs(600);
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + Duration::from_secs(60), EVERY);
    loop {
        tick.tick().await;
        // With Redis, one instance of the cluster purges per round; purging twice is
        // harmless, so a Redis failure just means every instance does it.
        let lease = match &redis {
            Some(r) => {
                match berth_redis::lock::try_acquire(r, "purge-stale-uploads", EVERY - Duration::from_secs(30)).await {
                    Ok(Some(lease)) => Some(lease),
                    Ok(None) => continue,
                    Err(e) => {
                        tracing::debug!(error = %e, "no cluster lock for the upload purge; purging anyway");
                        None
                    }
                }
            }
            None => None,
        };
        match registry.purge_stale_uploads(max_idle_hours as i64 * 3600).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(removed = n, "removed abandoned uploads"),
            Err(e) => tracing::warn!(error = %e, "could not purge abandoned uploads"),
        }
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64);
        if let Err(e) = cluster.purge_revoked_sessions(now).await {
            tracing::warn!(error = %e, "could not purge ended session revocations");
        }
        // Kept until it expires: the next round is a full period away, and holding it
        // stops the other instances from repeating this round's work.
        drop(lease);
    }
}

fn open_redis(cfg: &Config) -> anyhow::Result<Option<Arc<berth_redis::Redis>>> {
    if cfg.redis.url.is_empty() {
        return Ok(None);
    }
    let ca = Some(cfg.redis.tls_ca.as_str()).filter(|c| !c.is_empty()).map(std::path::Path::new);
    let r = berth_redis::Redis::with_tls_ca(&cfg.redis.url, Duration::from_millis(cfg.redis.timeout_ms), ca)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(Some(Arc::new(r)))
}

fn redis_health(r: Arc<berth_redis::Redis>) -> berth_http::health::Component {
    berth_http::health::Component {
        name: "redis",
        critical: false,
        check: Arc::new(move || {
            let r = r.clone();
            Box::pin(async move { r.ping().await.map_err(|e| e.to_string()) })
        }),
    }
}

/// A dependency-free HTTP/1.1 probe so check scripts need no curl. Over https the
/// certificate is not checked: the probe asks whether this instance serves, usually via
/// 127.0.0.1, a name the certificate rarely carries, and it sends no secret.
fn healthcheck(url: &str, timeout: Duration) -> ExitCode {
    use std::io::{Read, Write};
    let (tls, rest) = match (url.strip_prefix("http://"), url.strip_prefix("https://")) {
        (Some(r), _) => (false, r),
        (_, Some(r)) => (true, r),
        _ => {
            eprintln!("berth healthcheck: --url must start with http:// or https://");
            return ExitCode::from(2);
        }
    };
    let hostport = rest.split('/').next().unwrap_or("");
    let result = (|| -> std::io::Result<String> {
        use std::net::ToSocketAddrs;
        let addr =
            hostport.to_socket_addrs()?.next().ok_or_else(|| std::io::Error::other("address did not resolve"))?;
        let s = std::net::TcpStream::connect_timeout(&addr, timeout)?;
        s.set_read_timeout(Some(timeout))?;
        s.set_write_timeout(Some(timeout))?;
        let mut s: Box<dyn ReadWrite> = if tls { Box::new(tls_probe_stream(s, hostport)?) } else { Box::new(s) };
        write!(s, "GET /api/v2.0/health HTTP/1.1\r\nHost: {hostport}\r\nConnection: close\r\n\r\n")?;
        s.flush()?;
        // The answer is a few hundred bytes; cap it so a wrong port cannot make us read forever.
        let mut buf = Vec::new();
        match s.take(64 * 1024).read_to_end(&mut buf) {
            // Servers may close without TLS's close_notify once the answer is complete.
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof && !buf.is_empty() => {}
            r => {
                r?;
            }
        }
        Ok(String::from_utf8_lossy(&buf).to_string())
    })();
    match result {
        Ok(answer) if answer.starts_with("HTTP/1.1 200") => {
            // Still serving; an optional dependency (Redis) may be down: say so, stay in rotation.
            if answer.contains("\"unhealthy\"") {
                let body = answer.split_once("\r\n\r\n").map_or("", |(_, b)| b);
                eprintln!("berth healthcheck: serving, but degraded: {}", body.trim());
            }
            ExitCode::SUCCESS
        }
        Ok(answer) => {
            let status = answer.lines().next().unwrap_or("");
            let body = answer.split_once("\r\n\r\n").map_or("", |(_, b)| b);
            eprintln!("berth healthcheck: unhealthy: {status} {}", body.trim());
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("berth healthcheck: {url}: {e}");
            ExitCode::FAILURE
        }
    }
}

trait ReadWrite: std::io::Read + std::io::Write {}
impl<T: std::io::Read + std::io::Write> ReadWrite for T {}

fn tls_probe_stream(
    tcp: std::net::TcpStream,
    hostport: &str,
) -> std::io::Result<rustls::StreamOwned<rustls::ClientConnection, std::net::TcpStream>> {
    use berth_tls::client::{Roots, Verify, client_config};
    let config = client_config(Verify::Nothing, &Roots::System).map_err(std::io::Error::other)?;
    let host = hostport.rsplit_once(':').map_or(hostport, |(h, _)| h).trim_matches(['[', ']']);
    let name = rustls::pki_types::ServerName::try_from(host.to_owned()).map_err(std::io::Error::other)?;
    let conn = rustls::ClientConnection::new(config, name).map_err(std::io::Error::other)?;
    Ok(rustls::StreamOwned::new(conn, tcp))
}
