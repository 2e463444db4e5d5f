//! Harbor's scan API over the built-in scanner (goharbor/harbor api/v2.0/swagger.yaml,
//! `src/server/v2.0/handler/scan.go`, `artifact.go`, `scanner.go`):
//! `…/artifacts/{reference}/scan` (`scan_type` vulnerability or sbom), `…/scan/stop`,
//! `…/scan/{report_id}/log`, `…/additions/vulnerabilities`, the artifact list's
//! `scan_overview`/`sbom_overview`. The scanner registrations are `scanners.rs`.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use berth_core::identity::rbac::{Action, Resource};

use super::artifacts::load;
use super::dto::time;
use super::errors::{bad_request, conflict, not_found, store};
use super::repositories::target;
use super::{Caller, json};
use crate::AppState;
use crate::error::ApiError;
use crate::scan::{BUILTIN_NAME, MIME_REPORT_1_1, MIME_REPORT_NATIVE, ScanError, ScanType, scannable, summary_and_scanner};

type ArtifactPath = Path<(String, String, String)>;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ScanReq {
    #[serde(default)]
    scan_type: Option<String>,
}

/// The `scan_type` of an optional (`required` false) or required body; 400 naming it.
fn scan_type(body: &Bytes, required: bool) -> Result<ScanType, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return if required {
            Err(bad_request("a JSON body with scan_type is required"))
        } else {
            Ok(ScanType::Vulnerability)
        };
    }
    let req: ScanReq = super::json::parse(body)?;
    match req.scan_type.as_deref() {
        None if !required => Ok(ScanType::Vulnerability),
        None => Err(bad_request("scan_type is required: vulnerability or sbom")),
        Some(s) => {
            ScanType::parse(s).ok_or_else(|| bad_request(format!("scan_type must be vulnerability or sbom, not {s:?}")))
        }
    }
}

/// `POST …/artifacts/{reference}/scan`: 202 once the scan job is queued.
pub async fn scan(
    State(state): State<AppState>,
    caller: Caller,
    Path((p, r, reference)): ArtifactPath,
    body: Bytes,
) -> Result<Response, ApiError> {
    let t = target(&state, &caller, p, &r, Resource::Scan, Action::Create).await?;
    let kind = scan_type(&body, false)?;
    if kind == ScanType::Sbom {
        target(&state, &caller, t.project.name.clone(), &r, Resource::Sbom, Action::Create).await?;
    }
    let a = load(&state, &t, &reference).await?;
    if !scannable(&a.media_type) {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "UNPROCESSABLE_ENTITY",
            format!(
                "{} artifacts cannot be scanned by {BUILTIN_NAME}; scan the images of an index one by one",
                a.media_type
            ),
        ));
    }
    match state.scans.request(t.repo.as_str(), &a.digest.to_string(), kind, "MANUAL").await {
        Ok(_) => {}
        Err(ScanError::Busy(..)) => {
            return Err(conflict(format!("a scan of {}@{} is already in progress", t.repo, a.digest)));
        }
        Err(ScanError::Unsupported(msg)) => return Err(bad_request(msg)),
        Err(ScanError::Store(e)) => return Err(store(e)),
    }
    super::audit(&state, &caller, t.project.id, "create", "scan", &format!("{}@{}", t.repo, a.digest)).await;
    Ok(StatusCode::ACCEPTED.into_response())
}

/// `POST …/artifacts/{reference}/scan/stop` with `{"scan_type": …}`.
pub async fn stop(
    State(state): State<AppState>,
    caller: Caller,
    Path((p, r, reference)): ArtifactPath,
    body: Bytes,
) -> Result<Response, ApiError> {
    let t = target(&state, &caller, p, &r, Resource::Scan, Action::Stop).await?;
    let kind = scan_type(&body, true)?;
    let a = load(&state, &t, &reference).await?;
    let report = state.scans.report(&a.digest.to_string(), kind).await.map_err(store)?;
    match report {
        Some(rep) if matches!(rep.status.as_str(), "Pending" | "Running") => {
            state.jobs.store().stop_job(rep.task_id).await.map_err(store)?;
            Ok(StatusCode::ACCEPTED.into_response())
        }
        _ => Err(bad_request(format!("no scan of {}@{} is in progress", t.repo, a.digest))),
    }
}

/// `GET …/artifacts/{reference}/scan/{report_id}/log` (text).
pub async fn log(
    State(state): State<AppState>,
    caller: Caller,
    Path((p, r, reference, report_id)): Path<(String, String, String, String)>,
) -> Result<Response, ApiError> {
    let t = target(&state, &caller, p, &r, Resource::Scan, Action::Read).await?;
    let a = load(&state, &t, &reference).await?;
    let rep = state
        .vulns()
        .scan_report(&report_id)
        .await
        .map_err(store)?
        .filter(|rep| rep.digest == a.digest.to_string())
        .ok_or_else(|| not_found(format!("report {report_id} of {}@{} not found", t.repo, a.digest)))?;
    let lines = state.jobs.store().job_log(rep.task_id).await.map_err(store)?;
    let mut text = String::new();
    for l in lines {
        text.push_str(&format!("{} [{}] {}\n", time(l.at / 1000), l.level.as_str().to_uppercase(), l.message));
    }
    Ok(([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], text).into_response())
}

/// Harbor's default `X-Accept-Vulnerabilities`.
const DEFAULT_ACCEPT: [&str; 2] = [MIME_REPORT_1_1, MIME_REPORT_NATIVE];

/// The MIME types a request accepts, in its order; Harbor's default when absent.
fn accepted(headers: &HeaderMap) -> Vec<String> {
    let raw = headers.get("x-accept-vulnerabilities").and_then(|v| v.to_str().ok()).unwrap_or("");
    // MIME types contain "; version=…" but never a comma, so commas separate them.
    let list: Vec<String> = raw.split(',').map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect();
    if list.is_empty() { DEFAULT_ACCEPT.iter().map(|s| s.to_string()).collect() } else { list }
}

/// `GET …/artifacts/{reference}/additions/vulnerabilities`: `{"<MIME>": report}` for the
/// first accepted MIME type with a report, `{}` when there is none.
pub async fn vulnerabilities(
    State(state): State<AppState>,
    caller: Caller,
    Path((p, r, reference)): ArtifactPath,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let t = target(&state, &caller, p, &r, Resource::ArtifactAddition, Action::Read).await?;
    let a = load(&state, &t, &reference).await?;
    let digest = a.digest.to_string();
    let rep = state.scans.report(&digest, ScanType::Vulnerability).await.map_err(store)?;
    let mut out = serde_json::Map::new();
    if let Some(rep) = rep.filter(|r| r.status == "Success" && !r.report.is_empty()) {
        // The built-in scanner's report has the 1.1 shape, which is also the native 1.0
        // shape with more fields.
        if let Some(mime) = accepted(&headers).into_iter().find(|m| DEFAULT_ACCEPT.contains(&m.as_str())) {
            let mut v: Value = serde_json::from_str(&rep.report).unwrap_or(Value::Null);
            if let Some(o) = v.as_object_mut() {
                o.remove("artifact");
            }
            if let Some(items) = v.get_mut("vulnerabilities").and_then(|x| x.as_array_mut()) {
                for it in items {
                    it["artifact_digests"] = json!([digest]);
                    if it.get("status").is_none() {
                        it["status"] = json!(if it["fix_version"].as_str().is_some_and(|f| !f.is_empty()) {
                            "fixed"
                        } else {
                            "affected"
                        });
                    }
                }
            }
            out.insert(mime, v);
        }
    }
    Ok(json(StatusCode::OK, &Value::Object(out)))
}

/// `scan_overview` (keyed by the report MIME type) of an artifact, `None` if never scanned.
pub async fn scan_overview(state: &AppState, digest: &str, headers: &HeaderMap) -> Result<Option<Value>, ApiError> {
    let Some(r) = state.scans.report(digest, ScanType::Vulnerability).await.map_err(store)? else { return Ok(None) };
    let Some(mime) = accepted(headers).into_iter().find(|m| DEFAULT_ACCEPT.contains(&m.as_str())) else {
        return Ok(None);
    };
    Ok(Some(json!({ mime: crate::scan::overview(&r) })))
}

/// `sbom_overview` of an artifact, `None` if no SBOM was generated.
pub async fn sbom_overview(state: &AppState, digest: &str) -> Result<Option<Value>, ApiError> {
    let Some(r) = state.scans.report(digest, ScanType::Sbom).await.map_err(store)? else { return Ok(None) };
    let (_, scanner) = summary_and_scanner(&r.summary);
    Ok(Some(json!({
        "report_id": r.uuid,
        "scan_status": r.status,
        "sbom_digest": "",
        "duration": r.end_time.map_or(0, |e| e - r.start_time),
        "start_time": time(r.start_time),
        "end_time": r.end_time.map(time).unwrap_or_else(|| time(0)),
        "scanner": scanner,
    })))
}

/// `GET …/artifacts/{reference}/additions/sbom`: the generated SPDX document.
pub async fn sbom(
    State(state): State<AppState>,
    caller: Caller,
    Path((p, r, reference)): ArtifactPath,
) -> Result<Response, ApiError> {
    let t = target(&state, &caller, p, &r, Resource::ArtifactAddition, Action::Read).await?;
    let a = load(&state, &t, &reference).await?;
    let rep = state
        .scans
        .report(&a.digest.to_string(), ScanType::Sbom)
        .await
        .map_err(store)?
        .filter(|r| r.status == "Success")
        .ok_or_else(|| not_found(format!("no SBOM of {}@{} (generate one with scan_type sbom)", t.repo, a.digest)))?;
    let v: Value = serde_json::from_str(&rep.report).unwrap_or(Value::Null);
    let doc = serde_json::to_vec(&v["sbom"]).unwrap_or_default();
    Ok(([(header::CONTENT_TYPE, berth_scan::sbom::SPDX_JSON)], doc).into_response())
}
