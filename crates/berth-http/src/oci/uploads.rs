//! Blob uploads: POST (monolithic, session or cross-repo mount), PATCH, PUT, GET, DELETE.

use axum::body::Body;
use axum::http::{HeaderMap, HeaderName, StatusCode, header};
use axum::response::Response;

use berth_core::registry::ChunkRange;
use berth_core::store::{BlobInfo, Upload};
use berth_core::{Digest, RepoName};

use super::blobs::DOCKER_CONTENT_DIGEST;
use super::{Query, empty, hv, link, realm_base};
use crate::AppState;
use crate::auth::{Access, Action};
use crate::body::incoming;
use crate::error::ApiError;
use crate::metrics::{self, UploadEnd};

static UPLOAD_UUID: HeaderName = HeaderName::from_static("docker-upload-uuid");

fn query_digest(q: &Query) -> Result<Option<Digest>, ApiError> {
    q.get("digest")
        .map(|d| {
            d.parse::<Digest>()
                .map_err(|e| ApiError::digest_invalid(e.to_string()).detail(serde_json::json!({ "digest": d })))
        })
        .transpose()
}

fn content_length(h: &HeaderMap) -> Option<u64> {
    h.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse().ok())
}

/// `Content-Range: <start>-<end>` (the spec's form; `bytes ` prefixes are tolerated).
fn content_range(h: &HeaderMap) -> Result<Option<ChunkRange>, ApiError> {
    let Some(v) = h.get(header::CONTENT_RANGE) else { return Ok(None) };
    let bad = || {
        ApiError::new(
            StatusCode::RANGE_NOT_SATISFIABLE,
            "BLOB_UPLOAD_INVALID",
            "invalid Content-Range header; use <start>-<end> (inclusive byte offsets)",
        )
    };
    let s = v.to_str().map_err(|_| bad())?.trim();
    let s = s.strip_prefix("bytes").map(|x| x.trim_start_matches([' ', '='])).unwrap_or(s);
    let s = s.split('/').next().unwrap_or("");
    let (a, b) = s.split_once('-').ok_or_else(bad)?;
    let start = a.trim().parse().map_err(|_| bad())?;
    let end_inclusive = b.trim().parse().map_err(|_| bad())?;
    if end_inclusive < start {
        return Err(bad());
    }
    Ok(Some(ChunkRange { start, end_inclusive }))
}

/// The `Range` header of upload responses: the inclusive range received so far.
/// Zero bytes is written `0-0`, as Distribution does and clients expect.
fn received_range(offset: u64) -> String {
    format!("0-{}", offset.saturating_sub(1))
}

fn upload_response(state: &AppState, status: StatusCode, u: &Upload) -> Response {
    let mut r = empty(status);
    let h = r.headers_mut();
    h.insert(header::LOCATION, link(state, &format!("/v2/{}/blobs/uploads/{}", u.repo, u.id)));
    h.insert(header::RANGE, hv(received_range(u.offset)));
    h.insert(UPLOAD_UUID.clone(), hv(&u.id));
    h.insert(header::CONTENT_LENGTH, hv(0));
    r
}

fn created(state: &AppState, repo: &RepoName, blob: &BlobInfo) -> Response {
    let mut r = empty(StatusCode::CREATED);
    let h = r.headers_mut();
    h.insert(header::LOCATION, link(state, &format!("/v2/{repo}/blobs/{}", blob.digest)));
    h.insert(DOCKER_CONTENT_DIGEST.clone(), hv(&blob.digest));
    h.insert(header::CONTENT_LENGTH, hv(0));
    r
}

pub async fn start(
    state: &AppState,
    repo: &RepoName,
    q: &Query,
    h: &HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let reg = &state.registry;
    if let Some(mount) = q.get("mount") {
        let digest: Digest = mount.parse().map_err(|e: berth_core::digest::DigestError| {
            ApiError::digest_invalid(e.to_string()).detail(serde_json::json!({ "digest": mount }))
        })?;
        // Mounting from a repository that is invalid, missing, unreadable to the caller
        // or lacks the blob is not an error: the client falls back to a normal upload (202).
        if let Some(from) = q.get("from").and_then(|f| f.parse::<RepoName>().ok())
            && may_pull(state, h, &from).await
            && let Some(blob) = reg.mount_blob(&from, repo, &digest).await?
        {
            return Ok(created(state, repo, &blob));
        }
        let u = reg.start_upload(repo).await?;
        metrics::global().upload_started();
        return Ok(upload_response(state, StatusCode::ACCEPTED, &u));
    }
    if let Some(digest) = query_digest(q)? {
        let blob = reg.monolithic_upload(repo, &digest, incoming(body)).await?;
        return Ok(created(state, repo, &blob));
    }
    if content_length(h).unwrap_or(0) > 0 {
        return Err(ApiError::upload_invalid("a POST with a body needs ?digest=<digest> (monolithic upload)"));
    }
    let u = reg.start_upload(repo).await?;
    metrics::global().upload_started();
    Ok(upload_response(state, StatusCode::ACCEPTED, &u))
}

/// A mount reads the source repository: the caller needs pull rights there too, or it
/// could copy a private blob into a repository it can read.
async fn may_pull(state: &AppState, h: &HeaderMap, from: &RepoName) -> bool {
    let access = Access::Repository { name: from.clone(), actions: vec![Action::Pull] };
    state.auth.authorize_v2(h, &access, &realm_base(state, h)).await.is_ok()
}

pub async fn status(state: &AppState, repo: &RepoName, id: &str) -> Result<Response, ApiError> {
    let u = state.registry.upload_status(repo, id).await?;
    Ok(upload_response(state, StatusCode::NO_CONTENT, &u))
}

pub async fn patch(
    state: &AppState,
    repo: &RepoName,
    id: &str,
    h: &HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let range = content_range(h)?;
    if let (Some(r), Some(len)) = (range, content_length(h))
        && r.end_inclusive - r.start + 1 != len
    {
        return Err(ApiError::new(
            StatusCode::RANGE_NOT_SATISFIABLE,
            "BLOB_UPLOAD_INVALID",
            format!("Content-Range {}-{} does not match Content-Length {len}", r.start, r.end_inclusive),
        ));
    }
    match state.registry.write_chunk(repo, id, range, incoming(body)).await {
        Ok(u) => Ok(upload_response(state, StatusCode::ACCEPTED, &u)),
        Err(e) => Err(with_upload_range(state, repo, id, e.into()).await),
    }
}

/// A 416 tells the client where to resume: add the upload's current range.
async fn with_upload_range(state: &AppState, repo: &RepoName, id: &str, e: ApiError) -> ApiError {
    if e.status != StatusCode::RANGE_NOT_SATISFIABLE {
        return e;
    }
    match state.registry.upload_status(repo, id).await {
        Ok(u) => e
            .header(header::RANGE, hv(received_range(u.offset)))
            .header(header::LOCATION, link(state, &format!("/v2/{repo}/blobs/uploads/{id}"))),
        Err(_) => e,
    }
}

pub async fn finish(
    state: &AppState,
    repo: &RepoName,
    id: &str,
    q: &Query,
    h: &HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let digest =
        query_digest(q)?.ok_or_else(|| ApiError::digest_invalid("PUT to finish an upload needs ?digest=<digest>"))?;
    let range = content_range(h)?;
    // Chunked transfer encoding has no Content-Length: the body may still carry data.
    let has_body = content_length(h).map(|n| n > 0).unwrap_or_else(|| h.contains_key(header::TRANSFER_ENCODING));
    let last = if has_body { Some(incoming(body)) } else { None };
    match state.registry.finish_upload(repo, id, &digest, range, last).await {
        Ok(blob) => {
            metrics::global().upload_ended(UploadEnd::Completed);
            Ok(created(state, repo, &blob))
        }
        Err(e) => Err(with_upload_range(state, repo, id, e.into()).await),
    }
}

pub async fn cancel(state: &AppState, repo: &RepoName, id: &str) -> Result<Response, ApiError> {
    state.registry.cancel_upload(repo, id).await?;
    metrics::global().upload_ended(UploadEnd::Cancelled);
    let mut r = empty(StatusCode::NO_CONTENT);
    r.headers_mut().insert(header::CONTENT_LENGTH, hv(0));
    Ok(r)
}
