//! `/ping`, `/api/version`, `/health` and `/systeminfo`.

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
    let bounded = |name: &'static str, critical: bool, f: CheckFuture| async move {
        match tokio::time::timeout(HEALTH_TIMEOUT, f).await {
            Ok(r) => (name, critical, r),
            Err(_) => (name, critical, Err(format!("no answer within {} s", HEALTH_TIMEOUT.as_secs()))),
        }
    };
    let meta = state.registry.meta().clone();
    let blobs = state.registry.blobs().clone();
    let events = state.events.clone();
    let mut checks: Vec<(&'static str, bool, CheckFuture)> = vec![
        ("core", true, Box::pin(async { Ok(()) })),
        ("database", true, Box::pin(async move { meta.ping().await.map_err(|e| e.to_string()) })),
        ("storage", true, Box::pin(async move { blobs.check().await.map_err(|e| e.to_string()) })),
        ("jobservice", false, Box::pin(async move { events.health() })),
    ];
    for c in state.health.iter() {
        checks.push((c.name, c.critical, (c.check)()));
    }
    let results = join_all(checks.into_iter().map(|(n, critical, f)| bounded(n, critical, f))).await;
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

/// Runs the futures concurrently on this task (the checks are few and cheap to poll).
async fn join_all<F: std::future::Future>(futures: impl IntoIterator<Item = F>) -> Vec<F::Output> {
    let mut set: Vec<std::pin::Pin<Box<F>>> = futures.into_iter().map(Box::pin).collect();
    let mut out: Vec<Option<F::Output>> = set.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (i, f) in set.iter_mut().enumerate() {
            if out[i].is_none() {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => out[i] = Some(v),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending { std::task::Poll::Pending } else { std::task::Poll::Ready(()) }
    })
    .await;
    out.into_iter().map(|o| o.expect("every future finished")).collect()
}

/// Anonymous callers get the login page's settings only; authenticated ones also the
/// version, URLs and current time.
pub async fn systeminfo(State(state): State<AppState>, caller: Caller, headers: HeaderMap) -> Response {
    let mut info = json!({
        "auth_mode": "db_auth",
        "primary_auth_mode": false,
        "self_registration": false,
        "banner_message": "",
        "oidc_provider_name": "",
    });
    if caller.0.is_authenticated() {
        let external = if state.external_url.is_empty() {
            let host = headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("localhost");
            format!("http://{host}")
        } else {
            state.external_url.to_string()
        };
        let registry = external.split_once("://").map(|(_, r)| r.to_string()).unwrap_or_else(|| external.clone());
        let protected: Value = json!({
            "harbor_version": HARBOR_VERSION,
            "external_url": external,
            "registry_url": registry,
            "read_only": false,
            "current_time": dto::time(unix_now()),
            "has_ca_root": false,
            "project_creation_restriction": "everyone",
            "registry_storage_provider_name": "filesystem",
            "notification_enable": false,
        });
        if let (Some(i), Value::Object(p)) = (info.as_object_mut(), protected) {
            i.extend(p);
        }
    }
    json(StatusCode::OK, &info)
}
