//! `/ping`, `/api/version`, `/health`, `/systeminfo` and its `getcert`.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::{Caller, dto, json};
use crate::AppState;
use crate::auth::unix_now;

/// The Harbor API version Berth implements, as `harbor_version` reports it.
const HARBOR_VERSION: &str = concat!("v2.13.0-berth-", env!("CARGO_PKG_VERSION"));

pub async fn ping() -> Response {
    (StatusCode::OK, [(header::CONTENT_TYPE, "text/plain; charset=utf-8")], "Pong").into_response()
}

pub async fn version() -> Response {
    json(StatusCode::OK, &json!({ "version": "v2.0" }))
}

/// Every component, each check bounded by [`HEALTH_TIMEOUT`] so a frozen dependency
/// makes the answer unhealthy instead of hanging the load balancer's probe. A failed
/// critical component (core, database, storage) makes the instance `unhealthy` with 503,
/// so load balancers route away; optional ones (job service, Redis) are reported per
/// component while the instance stays in rotation.
pub async fn health(State(state): State<AppState>) -> Response {
    use crate::health::{CheckFuture, HEALTH_TIMEOUT};
    let meta = state.registry.meta().clone();
    let blobs = state.registry.blobs().clone();
    let events = state.events.clone();
    let jobs = state.jobs.clone();
    let mut checks: Vec<(&'static str, bool, CheckFuture)> = vec![
        ("core", true, Box::pin(async { Ok(()) })),
        ("database", true, Box::pin(async move { meta.ping().await.map_err(|e| e.to_string()) })),
        ("storage", true, Box::pin(async move { blobs.check().await.map_err(|e| e.to_string()) })),
        ("jobservice", false, Box::pin(async move { events.health().and_then(|()| jobs.health()) })),
    ];
    for c in state.health.iter() {
        checks.push((c.name, c.critical, (c.check)()));
    }
    // Each check on its own task, so they run at once and a slow one delays no other.
    let running: Vec<_> = checks
        .into_iter()
        .map(|(name, critical, f)| (name, critical, tokio::spawn(tokio::time::timeout(HEALTH_TIMEOUT, f))))
        .collect();
    let mut results = Vec::with_capacity(running.len());
    for (name, critical, task) in running {
        let r = match task.await {
            Ok(Ok(r)) => r,
            Ok(Err(_)) => Err(format!("no answer within {} s", HEALTH_TIMEOUT.as_secs())),
            Err(e) => Err(format!("the check failed: {e}")),
        };
        results.push((name, critical, r));
    }
    let healthy = results.iter().all(|(_, critical, r)| r.is_ok() || !critical);
    let components: Vec<Value> = results
        .into_iter()
        .map(|(name, _, r)| match r {
            Ok(()) => json!({ "name": name, "status": "healthy" }),
            Err(e) => json!({ "name": name, "status": "unhealthy", "error": e }),
        })
        .collect();
    let body = json!({ "status": if healthy { "healthy" } else { "unhealthy" }, "components": components });
    json(if healthy { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE }, &body)
}

/// Anonymous callers get the login page's settings only; authenticated ones also the
/// version, URLs and current time.
pub async fn systeminfo(State(state): State<AppState>, caller: Caller, headers: HeaderMap) -> Response {
    let settings = state.settings.get();
    let mut info = json!({
        "auth_mode": settings.auth_mode,
        "primary_auth_mode": false,
        "self_registration": settings.self_registration,
        "banner_message": settings.banner_message,
        "oidc_provider_name": "",
    });
    if caller.0.is_authenticated() {
        let external = state.origin(&headers);
        let registry = external.split_once("://").map(|(_, r)| r.to_string()).unwrap_or_else(|| external.clone());
        let protected: Value = json!({
            "harbor_version": HARBOR_VERSION,
            "external_url": external,
            "registry_url": registry,
            "read_only": settings.read_only,
            "current_time": dto::time(unix_now()),
            "has_ca_root": state.tls_cert.is_some(),
            "project_creation_restriction": settings.project_creation_restriction.as_str(),
            "registry_storage_provider_name": "filesystem",
            "notification_enable": settings.notification_enable,
        });
        if let (Some(i), Value::Object(p)) = (info.as_object_mut(), protected) {
            i.extend(p);
        }
    }
    json(StatusCode::OK, &info)
}

/// `GET /systeminfo/getcert` (Harbor's): the certificate this server speaks HTTPS with
/// (`http.tls_cert`, its chain as configured), for clients to trust a registry whose
/// certificate a private CA issued (`/etc/docker/certs.d/<host>/ca.crt`). Read from the
/// file on each request, so a renewed certificate (which the server reloads) is what is
/// downloaded. Open to every caller, as in Harbor: it is what any client sees in the TLS
/// handshake anyway. 404 with Harbor's error when Berth serves plain HTTP.
pub async fn getcert(State(state): State<AppState>) -> Result<Response, crate::error::ApiError> {
    let missing = || super::errors::not_found("The system is not configured with a CA certificate (http.tls_cert)");
    let Some(path) = state.tls_cert.as_deref() else { return Err(missing()) };
    let pem = tokio::fs::read(path).await.map_err(|e| {
        tracing::warn!(path = %path.display(), error = %e, "cannot read the TLS certificate for getcert");
        missing()
    })?;
    Ok((
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, "application/octet-stream"),
            (header::CONTENT_DISPOSITION, "attachment; filename=\"ca.crt\""),
        ],
        pem,
    )
        .into_response())
}

/// `GET /system/database` (Berth's): the metadata database's backend and role, and the
/// standbys streaming from it with their lag, for administrators (like the job service's
/// pools, which name the instances).
pub async fn database(State(state): State<AppState>, caller: Caller) -> Result<Response, crate::error::ApiError> {
    super::require_system(&caller, "jobservice-monitor", "list")?;
    let t = state.registry.meta().topology().await.map_err(super::errors::store)?;
    Ok(json(StatusCode::OK, &t))
}
