//! Berth's built-in scanner served as a Pluggable Scanner API v1.1 adapter
//! (goharbor/pluggable-scanner-spec), so a Harbor (or another Berth) can register Berth as
//! its scanner: `/scanner-adapter/api/v1/metadata`, `POST /scanner-adapter/api/v1/scan`,
//! `GET /scanner-adapter/api/v1/scan/{id}/report`.
//!
//! Off unless `scan.adapter_api_key` is set (404 otherwise); callers present the key as
//! `X-ScannerAdapter-API-Key`, `Authorization: Bearer`, or as the password of Basic
//! credentials, Harbor's three `auth` types. Checking and queueing a scan request and
//! reading its report's state are `berth_scanning::adapter`'s.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use berth_scanning::adapter::{ReportState, RequestError, parse_request};
use berth_scanning::scanners::{MIME_ERROR, MIME_METADATA, MIME_SCAN_RESPONSE};
use serde_json::json;

use crate::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/scanner-adapter/api/v1/metadata", get(metadata))
        .route("/scanner-adapter/api/v1/scan", post(scan))
        .route("/scanner-adapter/api/v1/scan/{id}/report", get(report))
}

/// The adapter API's error envelope.
fn error(status: StatusCode, msg: impl Into<String>) -> Response {
    let body = json!({"error": {"message": msg.into()}}).to_string();
    (status, [(header::CONTENT_TYPE, MIME_ERROR)], body).into_response()
}

fn same(a: &[u8], b: &[u8]) -> bool {
    // Constant time in the key's length: the comparison does not tell how much matched.
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// `None` if the caller may use the adapter; else the answer (404 while it is off).
fn deny(state: &AppState, h: &HeaderMap) -> Option<Response> {
    use base64::Engine as _;
    let Some(key) = state.scans.adapter_key.as_deref().filter(|k| !k.is_empty()) else {
        return Some(error(StatusCode::NOT_FOUND, "the scanner adapter API is off (set scan.adapter_api_key)"));
    };
    let key = key.as_bytes();
    let given = |name: header::HeaderName| h.get(name).and_then(|v| v.to_str().ok()).map(str::trim);
    if let Some(k) = given(header::HeaderName::from_static("x-scanneradapter-api-key"))
        && same(k.as_bytes(), key)
    {
        return None;
    }
    if let Some(a) = given(header::AUTHORIZATION) {
        let (scheme, rest) = a.split_once(' ').unwrap_or((a, ""));
        let rest = rest.trim();
        if scheme.eq_ignore_ascii_case("bearer") && same(rest.as_bytes(), key) {
            return None;
        }
        if scheme.eq_ignore_ascii_case("basic")
            && let Ok(raw) = base64::engine::general_purpose::STANDARD.decode(rest)
            && let Some(pos) = raw.iter().position(|b| *b == b':')
            && same(&raw[pos + 1..], key)
        {
            return None;
        }
    }
    let mut r = error(StatusCode::UNAUTHORIZED, "a valid scanner adapter API key is required");
    r.headers_mut()
        .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer realm=\"berth-scanner-adapter\""));
    Some(r)
}

async fn metadata(State(state): State<AppState>, h: HeaderMap) -> Response {
    if let Some(r) = deny(&state, &h) {
        return r;
    }
    match berth_scanning::scanners::builtin_metadata(state.vulns()).await {
        Ok(md) => (StatusCode::OK, [(header::CONTENT_TYPE, MIME_METADATA)], md.to_string()).into_response(),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, format!("reading the vulnerability data's status: {e}")),
    }
}

/// `POST /scan`: 202 `{"id": …}` once the job is queued; 400 for JSON that does not
/// parse, 422 naming a bad field.
async fn scan(State(state): State<AppState>, h: HeaderMap, body: Bytes) -> Response {
    if let Some(r) = deny(&state, &h) {
        return r;
    }
    let req = match parse_request(&body) {
        Ok(x) => x,
        Err(e @ RequestError::NotJson(_)) => return error(StatusCode::BAD_REQUEST, e.to_string()),
        Err(e @ RequestError::Invalid(_)) => return error(StatusCode::UNPROCESSABLE_ENTITY, e.to_string()),
    };
    match state.scans.request_for_adapter(req).await {
        Ok(uuid) => {
            (StatusCode::ACCEPTED, [(header::CONTENT_TYPE, MIME_SCAN_RESPONSE)], json!({"id": uuid}).to_string())
                .into_response()
        }
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

/// `GET /scan/{id}/report`: 302 with `Refresh-After` while the scan runs, 200 with the
/// report in the asked MIME type, 500 with the reason once it failed.
async fn report(State(state): State<AppState>, h: HeaderMap, Path(id): Path<String>) -> Response {
    if let Some(r) = deny(&state, &h) {
        return r;
    }
    let accept = h.get(header::ACCEPT).and_then(|v| v.to_str().ok()).unwrap_or("");
    match state.scans.adapter_report(&id, accept).await {
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
        Ok(ReportState::NotFound) => error(StatusCode::NOT_FOUND, format!("scan request {id} not found")),
        Ok(ReportState::NotAcceptable(produces)) => error(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("Accept: scan request {id} produces {produces}, not {accept:?}"),
        ),
        Ok(ReportState::Ready { mime, report }) => {
            (StatusCode::OK, [(header::CONTENT_TYPE, mime)], report).into_response()
        }
        Ok(ReportState::Running) => {
            let mut r = StatusCode::FOUND.into_response();
            r.headers_mut().insert("refresh-after", HeaderValue::from_static("1"));
            r.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            r
        }
        Ok(ReportState::Failed(why)) => error(StatusCode::INTERNAL_SERVER_ERROR, why),
    }
}
