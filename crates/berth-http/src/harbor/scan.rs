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
use berth_scanning::scan::{
    BUILTIN_NAME, MIME_REPORT_1_1, MIME_REPORT_NATIVE, ScanError, ScanType, scannable, summary_and_scanner,
};

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
    // As for starting one: stopping an SBOM generation is the `sbom` resource's too.
    if kind == ScanType::Sbom {
        target(&state, &caller, t.project.name.clone(), &r, Resource::Sbom, Action::Stop).await?;
    }
    let a = load(&state, &t, &reference).await?;
    let report = state.scans.report(&a.digest.to_string(), kind).await.map_err(store)?;
    match report {
        Some(rep) if matches!(rep.status.as_str(), "Pending" | "Running") => {
            state.jobs.store().stop_job(rep.task_id).await.map_err(store)?;
            Ok(StatusCode::ACCEPTED.into_response())
        }
        _ => Err(bad_request(match kind {
            ScanType::Sbom => format!("no SBOM generation of {}@{} is in progress", t.repo, a.digest),
            ScanType::Vulnerability => format!("no scan of {}@{} is in progress", t.repo, a.digest),
        })),
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
    Ok(Some(json!({ mime: berth_scanning::scan::overview(&r) })))
}

/// `sbom_overview` of an artifact, `None` if no SBOM was generated: Harbor's fields, with
/// `sbom_digest` naming the accessory that holds the document (what Harbor's UI reads
/// `additions/sbom` of).
pub async fn sbom_overview(state: &AppState, digest: &str) -> Result<Option<Value>, ApiError> {
    let Some(r) = state.scans.report(digest, ScanType::Sbom).await.map_err(store)? else { return Ok(None) };
    let (summary, scanner) = summary_and_scanner(&r.summary);
    Ok(Some(json!({
        "report_id": r.uuid,
        "scan_status": r.status,
        "sbom_digest": summary["sbom_digest"].as_str().unwrap_or_default(),
        "duration": r.end_time.map_or(0, |e| e - r.start_time),
        "start_time": time(r.start_time),
        "end_time": r.end_time.map(time).unwrap_or_else(|| time(0)),
        "scanner": scanner,
    })))
}

/// Larger SBOM documents are not served (one of an image with 10,000 packages is a few MiB).
const MAX_SBOM: u64 = 64 << 20;

/// `GET …/artifacts/{reference}/additions/sbom`: the SPDX document of an SBOM accessory,
/// as Harbor answers it (its one layer, content type the accessory's media type). Harbor's
/// UI asks it of the accessory (the overview's `sbom_digest`); asked of a scanned image,
/// Berth answers with the image's current SBOM accessory.
pub async fn sbom(
    State(state): State<AppState>,
    caller: Caller,
    Path((p, r, reference)): ArtifactPath,
) -> Result<Response, ApiError> {
    use berth_scan::sbom::HARBOR_SBOM_MEDIA_TYPE;
    let t = target(&state, &caller, p, &r, Resource::ArtifactAddition, Action::Read).await?;
    let a = load(&state, &t, &reference).await?;
    let missing = || not_found(format!("no SBOM of {}@{} (generate one with scan_type sbom)", t.repo, a.digest));
    let accessory = if a.artifact_type.as_deref() == Some(HARBOR_SBOM_MEDIA_TYPE) {
        a.digest.clone()
    } else {
        let rep = state
            .scans
            .report(&a.digest.to_string(), ScanType::Sbom)
            .await
            .map_err(store)?
            .filter(|r| r.status == "Success")
            .ok_or_else(missing)?;
        let v: Value = serde_json::from_str(&rep.report).unwrap_or(Value::Null);
        match v["sbom_digest"].as_str().and_then(|d| d.parse::<berth_core::Digest>().ok()) {
            Some(d) => d,
            // Reports written before SBOMs were accessories hold the document.
            None if v["sbom"].is_object() => {
                let doc = serde_json::to_vec(&v["sbom"]).unwrap_or_default();
                return Ok(([(header::CONTENT_TYPE, HARBOR_SBOM_MEDIA_TYPE)], doc).into_response());
            }
            None => return Err(missing()),
        }
    };
    let m = match state.registry.manifest(&t.repo, &berth_core::Reference::Digest(accessory.clone())).await {
        Ok(m) => m,
        Err(berth_core::CoreError::ManifestUnknown(_)) => {
            return Err(not_found(format!("the SBOM accessory {}@{accessory} no longer exists", t.repo)));
        }
        Err(e) => return Err(e.into()),
    };
    let v: Value = serde_json::from_slice(&m.content).unwrap_or(Value::Null);
    let layer = match v["layers"].as_array().map(Vec::as_slice) {
        Some([l]) => l["digest"].as_str().and_then(|d| d.parse::<berth_core::Digest>().ok()),
        _ => None,
    }
    .ok_or_else(|| {
        not_found(format!("{}@{accessory} has no SBOM layer (an SBOM accessory has exactly one)", t.repo))
    })?;
    let blob = state.registry.open_blob(&t.repo, &layer, None).await?;
    if blob.info.size > MAX_SBOM {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "UNPROCESSABLE_ENTITY",
            format!("the SBOM {}@{layer} is {} bytes, more than the {MAX_SBOM} served", t.repo, blob.info.size),
        ));
    }
    let mut body = blob.reader.body;
    let mut doc = Vec::with_capacity(blob.info.size as usize);
    while let Some(chunk) = std::future::poll_fn(|cx| body.as_mut().poll_next(cx)).await {
        doc.extend_from_slice(
            &chunk.map_err(|e| ApiError::from(berth_core::CoreError::Io(std::io::Error::other(e.to_string()))))?,
        );
    }
    Ok(([(header::CONTENT_TYPE, HARBOR_SBOM_MEDIA_TYPE)], doc).into_response())
}
