//! Berth's built-in scanner served as a Pluggable Scanner API v1.1 adapter
//! (goharbor/pluggable-scanner-spec), so a Harbor (or another Berth) can register Berth as
//! its scanner: `/scanner-adapter/api/v1/metadata`, `POST /scanner-adapter/api/v1/scan`,
//! `GET /scanner-adapter/api/v1/scan/{id}/report`.
//!
//! Off unless `scan.adapter_api_key` is set (404 otherwise); callers present the key as
//! `X-ScannerAdapter-API-Key`, `Authorization: Bearer`, or as the password of Basic
//! credentials, Harbor's three `auth` types. A scan request becomes an [`KIND`] job
//! (`crates/berth/src/scan.rs`) that pulls the artifact from the registry and with the
//! authorization the request gives (kept encrypted in the job), scans it with the local
//! vulnerability data, and writes a report row whose registration is
//! `adapter:<registry url>`, apart from this registry's own reports.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use berth_core::store::StoreError;
use berth_core::store::jobs::JobState;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::AppState;
use crate::scan::{ADAPTER_REGISTRATION_PREFIX, MIME_REPORT_1_1, MIME_REPORT_NATIVE, Queued, ScanType};
use crate::scanners::{MIME_ERROR, MIME_METADATA, MIME_SBOM, MIME_SCAN_RESPONSE};

/// The job kind (and execution vendor type) of a scan requested through the adapter API.
pub const KIND: &str = "SCANNER_ADAPTER_SCAN";

/// The manifest types the adapter scans.
const CONSUMES: [&str; 2] =
    ["application/vnd.oci.image.manifest.v1+json", "application/vnd.docker.distribution.manifest.v2+json"];

/// An adapter scan job's arguments.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AdapterScanArgs {
    pub report_uuid: String,
    pub scan_type: ScanType,
    pub registry_url: String,
    /// The request's `registry.authorization`, encrypted with the cluster secret key.
    pub authorization: String,
    #[serde(default)]
    pub insecure: bool,
    pub repository: String,
    pub digest: String,
    #[serde(default)]
    pub tag: String,
    pub mime_type: String,
}

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
    match crate::scanners::builtin_metadata(state.vulns()).await {
        Ok(md) => (StatusCode::OK, [(header::CONTENT_TYPE, MIME_METADATA)], md.to_string()).into_response(),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, format!("reading the vulnerability data's status: {e}")),
    }
}

#[derive(Deserialize)]
struct ScanRequest {
    registry: Option<RegistryReq>,
    artifact: Option<ArtifactReq>,
    #[serde(default)]
    enabled_capabilities: Vec<CapabilityReq>,
}

#[derive(Deserialize)]
struct RegistryReq {
    #[serde(default)]
    url: String,
    #[serde(default)]
    authorization: String,
    #[serde(default)]
    insecure: bool,
}

#[derive(Deserialize)]
struct ArtifactReq {
    #[serde(default)]
    repository: String,
    #[serde(default)]
    digest: String,
    #[serde(default)]
    tag: String,
    #[serde(default)]
    mime_type: String,
}

#[derive(Deserialize)]
struct CapabilityReq {
    #[serde(rename = "type", default)]
    kind: String,
}

/// Checks a scan request; 400 for JSON that does not parse, 422 naming a bad field.
fn parse_request(body: &Bytes) -> Result<(ScanType, RegistryReq, ArtifactReq), Response> {
    let mut de = serde_json::Deserializer::from_slice(body);
    let req: ScanRequest = serde_path_to_error::deserialize(&mut de)
        .map_err(|e| error(StatusCode::BAD_REQUEST, format!("the scan request is not valid JSON: {e}")))?;
    let invalid = |m: String| error(StatusCode::UNPROCESSABLE_ENTITY, m);
    let registry = req.registry.ok_or_else(|| invalid("registry is required".into()))?;
    let url = registry.url.trim();
    if !crate::scanners::is_http_url(url) {
        return Err(invalid(format!("registry.url: {url:?} is not an http:// or https:// URL")));
    }
    let artifact = req.artifact.ok_or_else(|| invalid("artifact is required".into()))?;
    if artifact.repository.parse::<berth_core::RepoName>().is_err() {
        return Err(invalid(format!("artifact.repository: {:?} is not a repository name", artifact.repository)));
    }
    if artifact.digest.parse::<berth_core::Digest>().is_err() {
        return Err(invalid(format!("artifact.digest: {:?} is not a digest", artifact.digest)));
    }
    if !CONSUMES.contains(&artifact.mime_type.as_str()) {
        return Err(invalid(format!(
            "artifact.mime_type: {:?} cannot be scanned; use one of {}",
            artifact.mime_type,
            CONSUMES.join(", ")
        )));
    }
    let mut kind = ScanType::Vulnerability;
    for c in &req.enabled_capabilities {
        match c.kind.as_str() {
            "" | "vulnerability" => {}
            "sbom" => kind = ScanType::Sbom,
            other => return Err(invalid(format!("enabled_capabilities.type: {other:?} is not vulnerability or sbom"))),
        }
    }
    Ok((kind, registry, artifact))
}

/// `POST /scan`: 202 `{"id": …}` once the job is queued.
async fn scan(State(state): State<AppState>, h: HeaderMap, body: Bytes) -> Response {
    if let Some(r) = deny(&state, &h) {
        return r;
    }
    let (kind, registry, artifact) = match parse_request(&body) {
        Ok(x) => x,
        Err(r) => return r,
    };
    let registry_url = registry.url.trim().trim_end_matches('/').to_owned();
    let (repository, digest) = (artifact.repository, artifact.digest);
    let authorization = match state.scans.scanners.seal(&registry.authorization) {
        Ok(a) => a,
        Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    };
    let uuid = uuid::Uuid::new_v4().to_string();
    let args = AdapterScanArgs {
        report_uuid: uuid.clone(),
        scan_type: kind,
        registry_url: registry_url.clone(),
        authorization,
        insecure: registry.insecure,
        repository: repository.clone(),
        digest: digest.clone(),
        tag: artifact.tag,
        mime_type: artifact.mime_type,
    };
    let started = async {
        let args = serde_json::to_string(&args).map_err(|e| StoreError::Backend(e.to_string()))?;
        state
            .scans
            .queue(Queued {
                uuid: &uuid,
                kind: KIND,
                vendor_type: KIND,
                trigger: "MANUAL",
                vendor_id: 0,
                artifact: format!("{registry_url}/{repository}@{digest}"),
                args,
                digest: &digest,
                registration: format!("{ADAPTER_REGISTRATION_PREFIX}{registry_url}"),
                mime: kind.mime(),
            })
            .await
    };
    if let Err(e) = started.await {
        return error(StatusCode::INTERNAL_SERVER_ERROR, format!("queueing the scan: {e}"));
    }
    (StatusCode::ACCEPTED, [(header::CONTENT_TYPE, MIME_SCAN_RESPONSE)], json!({"id": uuid}).to_string())
        .into_response()
}

/// The report MIME type an `Accept` asks for, if this row's kind can give it.
fn wanted(accept: &str, kind_mime: &str) -> Option<&'static str> {
    let asked: Vec<&str> = accept.split(',').map(str::trim).filter(|s| !s.is_empty()).collect();
    let offers: &[&'static str] =
        if kind_mime == MIME_SBOM { &[MIME_SBOM] } else { &[MIME_REPORT_1_1, MIME_REPORT_NATIVE] };
    if asked.is_empty() || asked.contains(&"*/*") {
        return offers.first().copied();
    }
    asked.iter().find_map(|a| offers.iter().copied().find(|o| o.replace(' ', "") == a.replace(' ', "")))
}

/// `GET /scan/{id}/report`: 302 with `Refresh-After` while the scan runs, 200 with the
/// report in the asked MIME type, 500 with the reason once it failed.
async fn report(State(state): State<AppState>, h: HeaderMap, Path(id): Path<String>) -> Response {
    if let Some(r) = deny(&state, &h) {
        return r;
    }
    let row = match state.vulns().scan_report(&id).await {
        Ok(Some(r)) if r.registration_uuid.starts_with(ADAPTER_REGISTRATION_PREFIX) => r,
        Ok(_) => return error(StatusCode::NOT_FOUND, format!("scan request {id} not found")),
        Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    };
    let accept = h.get(header::ACCEPT).and_then(|v| v.to_str().ok()).unwrap_or("");
    let Some(mime) = wanted(accept, &row.mime_type) else {
        return error(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("Accept: scan request {id} produces {}, not {accept:?}", row.mime_type),
        );
    };
    let job = state.jobs.store().job(row.task_id).await.ok().flatten();
    let dead = job.as_ref().is_some_and(|j| matches!(j.state, JobState::Dead | JobState::Cancelled));
    match row.status.as_str() {
        "Success" => (StatusCode::OK, [(header::CONTENT_TYPE, mime)], row.report).into_response(),
        "Pending" | "Running" if !dead => {
            let mut r = StatusCode::FOUND.into_response();
            r.headers_mut().insert("refresh-after", HeaderValue::from_static("1"));
            r.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            r
        }
        _ => {
            // The job's last error line says why.
            let why = match state.jobs.store().job_log(row.task_id).await {
                Ok(lines) => lines
                    .iter()
                    .rev()
                    .find(|l| l.level == berth_core::store::jobs::LogLevel::Error)
                    .map(|l| l.message.clone())
                    .unwrap_or_else(|| format!("the scan ended with status {}", row.status)),
                Err(e) => e.to_string(),
            };
            error(StatusCode::INTERNAL_SERVER_ERROR, why)
        }
    }
}
