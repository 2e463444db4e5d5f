//! Berth's HTTP layer. Handlers are thin: parse the request into domain types, check
//! access, call one `berth_core::registry::Registry` operation, shape the response.
//! Only this crate knows wire formats; errors become protocol errors in `error.rs`.

// `ApiError` carries the whole protocol error (status, code, message, detail, headers) and
// is built once per failed request; boxing it would cost an allocation on every error
// path and buy nothing measurable.
#![allow(clippy::result_large_err)]

pub mod audit_log;
pub mod auth;
mod auth_cache;
mod body;
pub mod error;
pub mod events;
mod harbor;
pub mod health;
mod immutable;
pub mod metrics;
mod middleware;
pub mod oci;
pub mod pull_policy;
pub mod quota_events;
pub mod scanner_adapter;
pub mod tag_page;
mod token;

use std::sync::Arc;

use axum::Router;
use axum::routing::{any, get};
use berth_core::registry::Registry;

pub use auth::{Access, Action, Auth, Mode};

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub registry: Arc<Registry>,
    pub auth: Arc<Auth>,
    /// Harbor's views of repositories and artifacts (the `/api/v2.0` listings).
    pub catalog: Arc<dyn berth_core::store::catalog::CatalogStore>,
    /// Harbor's labels (global and per project) and their attachments to artifacts.
    pub labels: Arc<dyn berth_core::store::labels::LabelStore>,
    /// Cluster-wide state: key fingerprints, logged-out sessions.
    pub cluster: Arc<dyn berth_core::store::cluster::ClusterStore>,
    /// Push, pull and delete events, written to the audit log in batches.
    pub events: events::EventSink,
    /// Prefix for absolute links (`https://registry.example.com`); empty for relative links,
    /// which never pin a client to one instance behind a load balancer.
    pub external_url: Arc<str>,
    /// `Some(lifetime)`: answer blob GETs with a redirect to a presigned storage URL
    /// valid that long, when the storage can make one.
    pub blob_redirect: Option<std::time::Duration>,
    /// Project policies kept as documents (immutable-tag rules).
    pub policies: Arc<dyn berth_core::store::policies::PolicyStore>,
    /// The job service: executions, schedules and workers of the background jobs.
    pub jobs: Arc<berth_jobs::JobService>,
    /// Replication: registry endpoints, policies, and what its jobs share.
    pub replication: Arc<berth_replication::Context>,
    /// Webhook policies and their deliveries (jobs of `jobs`).
    pub webhooks: Arc<berth_webhooks::Webhooks>,
    /// Tag retention policies and runs.
    pub retention: Arc<berth_retention::Context>,
    /// Health checks beyond database, storage and job service (e.g. Redis when configured).
    pub health: Arc<[health::Component]>,
    /// The runtime settings (`/configurations`), refreshed from the database by the binary.
    pub settings: Arc<berth_core::settings::SettingsCache>,
    /// Where audit entries go (database and/or syslog, as the settings say).
    pub audit_log: audit_log::AuditLog,
    /// Whether this listener speaks TLS: absolute URLs built from the request's Host then
    /// start with `https://`, and session cookies are `Secure`.
    pub https: bool,
    /// The HTTPS certificate file (`http.tls_cert`), offered for download by
    /// `/systeminfo/getcert`; `None` when serving plain HTTP.
    pub tls_cert: Option<std::path::PathBuf>,
    /// Becomes true once the first-start state (admin, `library`) exists; requests that
    /// need identities wait for it (see `middleware::await_bootstrap`).
    pub bootstrapped: tokio::sync::watch::Receiver<bool>,
    /// Harbor's pull policies (content trust, vulnerability prevention): the scanner's
    /// gate and a short cache of projects' policies.
    pub pull_policy: Arc<pull_policy::PullPolicy>,
    /// Scans (jobs) and their reports, and the vulnerability data they use.
    pub scans: Arc<berth_scanning::scan::Scans>,
    /// Proxy-cache projects: pulls through them fetch from their upstream registry.
    pub proxy: Arc<berth_proxy::ProxyCache>,
}

impl AppState {
    /// The vulnerability data and scan reports.
    pub(crate) fn vulns(&self) -> &dyn berth_core::store::vulns::VulnStore {
        self.scans.vulns.as_ref()
    }

    /// Where clients reach us: the configured external URL, else the scheme this listener
    /// speaks and the request's own host.
    pub(crate) fn origin(&self, h: &axum::http::HeaderMap) -> String {
        if !self.external_url.is_empty() {
            return self.external_url.to_string();
        }
        let host = h.get(axum::http::header::HOST).and_then(|v| v.to_str().ok()).unwrap_or("127.0.0.1");
        format!("{}://{host}", if self.https { "https" } else { "http" })
    }
}

/// The whole HTTP surface, ready to serve.
pub fn router(state: AppState) -> Router {
    router_with(state, Router::new())
}

/// The whole HTTP surface plus `extra` routes (the web UI, `berth-ui`), which pass through
/// the same middleware (request ids, metrics, bootstrap wait) except the read-only check:
/// their changes are calls to [`harbor_api`], which makes it, so a page can answer a
/// refused change with the API's message.
pub fn router_with(state: AppState, extra: Router<AppState>) -> Router {
    Router::new()
        .route("/v2", get(oci::base))
        .route("/v2/", get(oci::base))
        .route("/v2/{*rest}", any(oci::dispatch))
        .route("/service/token", get(token::token))
        .route("/metrics", get(metrics::handler))
        .merge(harbor::router(&state))
        .merge(scanner_adapter::router())
        .fallback(oci::not_found)
        .layer(axum::middleware::from_fn_with_state(state.clone(), middleware::read_only))
        .merge(extra)
        .layer(axum::middleware::from_fn_with_state(state.clone(), middleware::await_bootstrap))
        .layer(axum::middleware::from_fn(middleware::request_context))
        .layer(axum::middleware::from_fn(metrics::track))
        .with_state(state)
}

/// Harbor's `/api/v2.0` and `/c/*` alone, behind the middleware that decides what may
/// happen (bootstrap wait, read-only mode), for calling in process: the web UI sends its
/// requests here, forwarding the browser's `sid` cookie and CSRF token, so every rule,
/// check and audit entry is the API's own and none is implemented twice.
pub fn harbor_api(state: &AppState) -> Router {
    harbor::router(state)
        .layer(axum::middleware::from_fn_with_state(state.clone(), middleware::read_only))
        .layer(axum::middleware::from_fn_with_state(state.clone(), middleware::await_bootstrap))
        .with_state(state.clone())
}
