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
pub mod quota_events;
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
    /// Becomes true once the first-start state (admin, `library`) exists; requests that
    /// need identities wait for it (see `middleware::await_bootstrap`).
    pub bootstrapped: tokio::sync::watch::Receiver<bool>,
}

impl AppState {
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
    Router::new()
        .route("/v2", get(oci::base))
        .route("/v2/", get(oci::base))
        .route("/v2/{*rest}", any(oci::dispatch))
        .route("/service/token", get(token::token))
        .route("/metrics", get(metrics::handler))
        .merge(harbor::router(&state))
        .fallback(oci::not_found)
        .layer(axum::middleware::from_fn_with_state(state.clone(), middleware::read_only))
        .layer(axum::middleware::from_fn_with_state(state.clone(), middleware::await_bootstrap))
        .layer(axum::middleware::from_fn(middleware::request_context))
        .layer(axum::middleware::from_fn(metrics::track))
        .with_state(state)
}
