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

/// Core, database and storage; 503 and `unhealthy` when any component is.
pub async fn health(State(state): State<AppState>) -> Response {
    let component = |name: &str, r: Result<(), String>| match r {
        Ok(()) => json!({ "name": name, "status": "healthy" }),
        Err(e) => json!({ "name": name, "status": "unhealthy", "error": e }),
    };
    let db = state.registry.meta().ping().await.map_err(|e| e.to_string());
    let storage = state.registry.blobs().check().await.map_err(|e| e.to_string());
    let healthy = db.is_ok() && storage.is_ok();
    let body = json!({
        "status": if healthy { "healthy" } else { "unhealthy" },
        "components": [component("core", Ok(())), component("database", db), component("storage", storage)],
    });
    json(if healthy { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE }, &body)
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
