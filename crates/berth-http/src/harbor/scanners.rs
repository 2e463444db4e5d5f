//! Harbor's scanner registrations (goharbor/harbor `src/server/v2.0/handler/scanner.go`,
//! `project.go`'s scanner operations): `/scanners` (list, register, get, update, delete,
//! set default), `/scanners/ping`, `/scanners/{id}/metadata` (asked of the adapter),
//! `/projects/{p}/scanner` and its candidates. The registrations themselves, their
//! validation and the adapter client are `berth_scanning::scanners`'.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::Response;
use serde::Deserialize;
use serde_json::{Value, json};

use berth_core::identity::rbac::{Action, Resource};

use super::dto::time;
use super::errors::{bad_request, conflict, forbidden, not_found, store};
use super::json::Body;
use super::query::{ListQuery, Match};
use super::{Caller, ProjectRef, audit, created, json, ok, page, require_project, require_system};
use crate::AppState;
use crate::error::ApiError;
use berth_scanning::scanners::{AdapterMetadata, Registration, RegistrationInput, ScannerError};

/// How a stored credential is shown: never itself.
const MASK: &str = "*****";

fn scanner_error(e: ScannerError) -> ApiError {
    match e {
        ScannerError::Invalid(field, msg) => bad_request(format!("{field}: {msg}")),
        ScannerError::Conflict(msg) => conflict(msg),
        ScannerError::NotFound(id) => not_found(format!("scanner registration {id} not found")),
        ScannerError::Refused(msg) => forbidden(msg),
        ScannerError::Adapter(msg) => ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "UNKNOWN", msg),
        e @ ScannerError::Secret(..) => ApiError::internal_error(e.to_string()),
        ScannerError::Store(e) => store(e),
    }
}

/// Harbor's `ScannerRegistration`; `md` is the adapter's metadata when it was asked.
fn registration_json(r: &Registration, md: Option<Result<&AdapterMetadata, &str>>) -> Value {
    let mut v = json!({
        "uuid": r.doc.uuid,
        "name": r.doc.name,
        "description": r.doc.description,
        "url": r.doc.url,
        "disabled": r.doc.disabled,
        "is_default": r.doc.is_default,
        "auth": r.doc.auth,
        "access_credential": if r.doc.access_credential.is_empty() { "" } else { MASK },
        "skip_certVerify": r.doc.skip_cert_verify,
        "use_internal_addr": r.doc.use_internal_addr,
        "create_time": time(r.created_at),
        "update_time": time(r.updated_at),
    });
    match md {
        Some(Ok(m)) => {
            v["adapter"] = json!(m.scanner.name);
            v["vendor"] = json!(m.scanner.vendor);
            v["version"] = json!(m.scanner.version);
            v["health"] = json!("healthy");
            v["capabilities"] = json!({"support_vulnerability": m.supports(false), "support_sbom": m.supports(true)});
        }
        Some(Err(_)) => v["health"] = json!("unhealthy"),
        None => {}
    }
    v
}

/// A registration as shown, with its adapter's metadata (the built-in scanner's is
/// known; an external adapter is asked).
async fn shown(state: &AppState, r: &Registration) -> Value {
    if r.is_builtin() {
        let md = builtin_md();
        return registration_json(r, Some(Ok(&md)));
    }
    let md = match state.scans.scanners.client(r) {
        Ok(c) => c.metadata().await.map_err(|e| e.to_string()),
        Err(e) => Err(e.to_string()),
    };
    registration_json(r, Some(md.as_ref().map_err(String::as_str)))
}

fn builtin_md() -> AdapterMetadata {
    use berth_scanning::scanners::{Capability, MIME_SBOM, ScannerInfo};
    let name = berth_scanning::scan::BUILTIN_NAME.to_owned();
    AdapterMetadata {
        scanner: ScannerInfo { name: name.clone(), vendor: name, version: env!("CARGO_PKG_VERSION").into() },
        capabilities: vec![
            Capability {
                kind: "vulnerability".into(),
                produces_mime_types: vec![berth_scanning::scan::MIME_REPORT_1_1.into()],
                ..Default::default()
            },
            Capability { kind: "sbom".into(), produces_mime_types: vec![MIME_SBOM.into()], ..Default::default() },
        ],
        properties: Default::default(),
    }
}

async fn registration(state: &AppState, id: &str) -> Result<Registration, ApiError> {
    state
        .scans
        .scanners
        .get(id)
        .await
        .map_err(scanner_error)?
        .ok_or_else(|| not_found(format!("scanner registration {id} not found")))
}

/// Harbor's `ScannerRegistrationReq` (and the read-only fields of `ScannerRegistration`,
/// which clients send back, accepted and ignored).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub struct RegistrationReq {
    name: Option<String>,
    description: Option<String>,
    url: Option<String>,
    auth: Option<String>,
    access_credential: Option<String>,
    #[serde(rename = "skip_certVerify")]
    skip_cert_verify: Option<bool>,
    use_internal_addr: Option<bool>,
    disabled: Option<bool>,
    uuid: Option<String>,
    is_default: Option<bool>,
    create_time: Option<String>,
    update_time: Option<String>,
    adapter: Option<String>,
    vendor: Option<String>,
    version: Option<String>,
    health: Option<String>,
    capabilities: Option<Value>,
}

impl RegistrationReq {
    /// The input over `old` (an update) or over nothing (a create or ping).
    fn input(self, old: Option<&Registration>) -> RegistrationInput {
        let base = old.map(|r| RegistrationInput {
            name: r.doc.name.clone(),
            description: r.doc.description.clone(),
            url: r.doc.url.clone(),
            auth: r.doc.auth.clone(),
            access_credential: None,
            skip_cert_verify: r.doc.skip_cert_verify,
            use_internal_addr: r.doc.use_internal_addr,
            disabled: r.doc.disabled,
        });
        let b = base.unwrap_or_default();
        RegistrationInput {
            name: self.name.unwrap_or(b.name),
            description: self.description.unwrap_or(b.description),
            url: self.url.unwrap_or(b.url),
            auth: self.auth.unwrap_or(b.auth),
            // The mask a client read back means "unchanged".
            access_credential: self.access_credential.filter(|c| c != MASK),
            skip_cert_verify: self.skip_cert_verify.unwrap_or(b.skip_cert_verify),
            use_internal_addr: self.use_internal_addr.unwrap_or(b.use_internal_addr),
            disabled: self.disabled.unwrap_or(b.disabled),
        }
    }
}

/// One page of registrations, as listed (adapters not asked).
fn registrations_page(all: &[Registration], q: &ListQuery, uri: &Uri) -> Response {
    let pg = q.store_page();
    let total = all.len() as u64;
    let md = builtin_md();
    let body: Vec<Value> = all
        .iter()
        .skip(pg.offset() as usize)
        .take(pg.page_size as usize)
        .map(|r| registration_json(r, r.is_builtin().then_some(Ok(&md))))
        .collect();
    page(&body, total, q.link(uri.path(), total))
}

/// `GET /scanners` (`q=name=~x`, pages): the built-in scanner first. The adapters are
/// not asked here (a list must not wait on them); `GET /scanners/{id}` asks.
pub async fn list(State(state): State<AppState>, caller: Caller, uri: Uri) -> Result<Response, ApiError> {
    require_system(&caller, "scanner", "list")?;
    let q = ListQuery::parse(uri.query())?;
    let mut all = state.scans.scanners.list().await.map_err(scanner_error)?;
    let name = match q.term("name") {
        Some(Match::Exact(n)) => Some((n.clone(), true)),
        Some(Match::Fuzzy(n)) => Some((n.clone(), false)),
        _ => None,
    };
    if let Some((n, exact)) = name {
        all.retain(|r| if exact { r.doc.name == n } else { r.doc.name.contains(&n) });
    }
    Ok(registrations_page(&all, &q, &uri))
}

/// `POST /scanners`: 201 with the new registration's `Location`.
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    uri: Uri,
    Body(req): Body<RegistrationReq>,
) -> Result<Response, ApiError> {
    require_system(&caller, "scanner", "create")?;
    let input = req.input(None);
    let id = state.scans.scanners.create(&input).await.map_err(scanner_error)?;
    audit(&state, &caller, 0, "create", "scanner", &input.name).await;
    Ok(created(&format!("{}/{id}", uri.path().trim_end_matches('/'))))
}

pub async fn get(State(state): State<AppState>, caller: Caller, Path(id): Path<String>) -> Result<Response, ApiError> {
    require_system(&caller, "scanner", "read")?;
    let r = registration(&state, &id).await?;
    Ok(json(StatusCode::OK, &shown(&state, &r).await))
}

pub async fn update(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Body(req): Body<RegistrationReq>,
) -> Result<Response, ApiError> {
    require_system(&caller, "scanner", "update")?;
    let r = registration(&state, &id).await?;
    let input = req.input(Some(&r));
    state.scans.scanners.update(&id, &input).await.map_err(scanner_error)?;
    audit(&state, &caller, 0, "update", "scanner", &input.name).await;
    Ok(ok())
}

/// `DELETE /scanners/{id}`: 200 with the deleted registration; the default and the
/// built-in scanner are refused (403).
pub async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    require_system(&caller, "scanner", "delete")?;
    let r = state.scans.scanners.delete(&id).await.map_err(scanner_error)?;
    audit(&state, &caller, 0, "delete", "scanner", &r.doc.name).await;
    Ok(json(StatusCode::OK, &registration_json(&r, None)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IsDefault {
    is_default: Option<bool>,
}

/// `PATCH /scanners/{id}` `{"is_default": true}`: the system default.
pub async fn set_default(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Body(req): Body<IsDefault>,
) -> Result<Response, ApiError> {
    require_system(&caller, "scanner", "update")?;
    let r = registration(&state, &id).await?;
    if req.is_default == Some(true) {
        state.scans.scanners.set_default(&id).await.map_err(scanner_error)?;
        audit(&state, &caller, 0, "update", "scanner", &r.doc.name).await;
    }
    Ok(ok())
}

/// `POST /scanners/ping` (Harbor's `ScannerRegistrationSettings`): asks the adapter for
/// its metadata with these settings; 200 if it answers as the API says.
pub async fn ping(State(state): State<AppState>, caller: Caller, body: Bytes) -> Result<Response, ApiError> {
    require_system(&caller, "scanner", "create")?;
    let req: RegistrationReq = super::json::parse(&body)?;
    let uuid = req.uuid.clone();
    if req.url.as_deref().is_none_or(|u| u.trim().is_empty()) {
        return Err(bad_request("url: is required"));
    }
    let input = req.input(None);
    let client = state.scans.scanners.client_for(&input, uuid.as_deref()).await.map_err(scanner_error)?;
    let md = client.metadata().await.map_err(|e| bad_request(format!("url: {e}")))?;
    Ok(json(StatusCode::OK, &md))
}

/// `GET /scanners/{id}/metadata`: the built-in scanner's, or the adapter's as it answers.
pub async fn metadata(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    require_system(&caller, "scanner", "read")?;
    let r = registration(&state, &id).await?;
    if r.is_builtin() {
        let md = berth_scanning::scanners::builtin_metadata(state.vulns()).await.map_err(store)?;
        return Ok(json(StatusCode::OK, &md));
    }
    let md = state.scans.scanners.client(&r).map_err(scanner_error)?.metadata().await.map_err(scanner_error)?;
    Ok(json(StatusCode::OK, &md))
}

/// `GET /projects/{project_name_or_id}/scanner`: its choice, else the default.
pub async fn project_scanner(
    State(state): State<AppState>,
    caller: Caller,
    Path(p): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let project =
        require_project(&state, &caller, &ProjectRef::parse(&p, &headers), Resource::Scanner, Action::Read).await?;
    let r = state.scans.scanners.of_project(project.id).await.map_err(scanner_error)?;
    Ok(json(StatusCode::OK, &shown(&state, &r).await))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ProjectScannerReq {
    uuid: String,
}

/// `PUT /projects/{project_name_or_id}/scanner` `{"uuid": …}`: any enabled registration.
pub async fn set_project_scanner(
    State(state): State<AppState>,
    caller: Caller,
    Path(p): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let project =
        require_project(&state, &caller, &ProjectRef::parse(&p, &headers), Resource::Scanner, Action::Create).await?;
    let req: ProjectScannerReq = super::json::parse(&body)?;
    state.scans.scanners.set_project(project.id, &req.uuid).await.map_err(scanner_error)?;
    audit(&state, &caller, project.id, "update", "scanner", &req.uuid).await;
    Ok(ok())
}

/// `GET /projects/{project_name_or_id}/scanner/candidates`: the enabled registrations.
pub async fn project_scanner_candidates(
    State(state): State<AppState>,
    caller: Caller,
    Path(p): Path<String>,
    headers: HeaderMap,
    uri: Uri,
) -> Result<Response, ApiError> {
    require_project(&state, &caller, &ProjectRef::parse(&p, &headers), Resource::Scanner, Action::Create).await?;
    let q = ListQuery::parse(uri.query())?;
    let all: Vec<Registration> =
        state.scans.scanners.list().await.map_err(scanner_error)?.into_iter().filter(|r| !r.doc.disabled).collect();
    Ok(registrations_page(&all, &q, &uri))
}
