//! Blob GET/HEAD/DELETE.

use axum::body::Body;
use axum::http::{HeaderMap, HeaderName, StatusCode, header};
use axum::response::Response;

use berth_core::{CoreError, Digest, RepoName};

use super::{empty, hv};
use crate::AppState;
use crate::body::outgoing;
use crate::error::ApiError;

pub(crate) static DOCKER_CONTENT_DIGEST: HeaderName = HeaderName::from_static("docker-content-digest");

/// Parses a single `Range: bytes=...` into an inclusive start and optional end; a
/// suffix range (`bytes=-N`) needs the size. Multiple ranges are not supported and the
/// header is then ignored, as RFC 9110 allows.
fn parse_range(h: &HeaderMap, size: u64) -> Result<Option<(u64, Option<u64>)>, ApiError> {
    let Some(v) = h.get(header::RANGE) else { return Ok(None) };
    let bad = || {
        ApiError::new(
            StatusCode::RANGE_NOT_SATISFIABLE,
            "BLOB_UNKNOWN",
            "invalid Range header; use bytes=<start>-<end>",
        )
        .header(header::CONTENT_RANGE, hv(format!("bytes */{size}")))
    };
    let s = v.to_str().map_err(|_| bad())?.trim();
    let spec = s.strip_prefix("bytes=").ok_or_else(bad)?;
    if spec.contains(',') {
        return Ok(None);
    }
    let (a, b) = spec.split_once('-').ok_or_else(bad)?;
    let (a, b) = (a.trim(), b.trim());
    if a.is_empty() {
        let n: u64 = b.parse().map_err(|_| bad())?;
        if n == 0 || size == 0 {
            return Err(bad());
        }
        return Ok(Some((size.saturating_sub(n), None)));
    }
    let start: u64 = a.parse().map_err(|_| bad())?;
    let end = if b.is_empty() { None } else { Some(b.parse::<u64>().map_err(|_| bad())?) };
    Ok(Some((start, end)))
}

pub async fn get(
    state: &AppState,
    repo: &RepoName,
    digest: &Digest,
    h: &HeaderMap,
    head: bool,
) -> Result<Response, ApiError> {
    let reg = &state.registry;
    if let Some(upstream) = state.proxy.registry_of(repo).await?
        && let berth_proxy::BlobSource::Upstream(reader) = state.proxy.blob(upstream, repo, digest).await?
    {
        // Not cached (over quota): the upstream's bytes, whole.
        let len = reader.len;
        let mut r = if head { empty(StatusCode::OK) } else { Response::new(outgoing(reader.body)) };
        let hd = r.headers_mut();
        hd.insert(header::CONTENT_LENGTH, hv(len));
        hd.insert(header::CONTENT_TYPE, hv("application/octet-stream"));
        hd.insert(DOCKER_CONTENT_DIGEST.clone(), hv(digest));
        return Ok(r);
    }
    if head {
        let info = reg.blob(repo, digest).await?;
        let mut r = empty(StatusCode::OK);
        let hd = r.headers_mut();
        hd.insert(header::CONTENT_LENGTH, hv(info.size));
        hd.insert(header::CONTENT_TYPE, hv("application/octet-stream"));
        hd.insert(DOCKER_CONTENT_DIGEST.clone(), hv(digest));
        hd.insert(header::ACCEPT_RANGES, hv("bytes"));
        hd.insert(header::ETAG, hv(format!("\"{digest}\"")));
        return Ok(r);
    }
    if let Some(expires) = state.blob_redirect
        && let Some(url) = reg.blob_redirect(repo, digest, expires).await?
    {
        // The bytes come from the storage itself; Range headers travel with the redirect.
        let mut r = empty(StatusCode::TEMPORARY_REDIRECT);
        let hd = r.headers_mut();
        hd.insert(header::LOCATION, hv(url));
        hd.insert(DOCKER_CONTENT_DIGEST.clone(), hv(digest));
        hd.insert(header::CONTENT_LENGTH, hv(0));
        return Ok(r);
    }
    // The size is needed to interpret suffix ranges; the store answers from the DB.
    let range = match h.get(header::RANGE) {
        None => None,
        Some(_) => {
            let info = reg.blob(repo, digest).await?;
            parse_range(h, info.size)?
        }
    };
    let blob = reg.open_blob(repo, digest, range).await.map_err(|e| match e {
        CoreError::RangeInvalid(msg) => ApiError::new(StatusCode::RANGE_NOT_SATISFIABLE, "BLOB_UNKNOWN", msg),
        other => ApiError::from(other),
    })?;
    let len = blob.reader.len;
    let mut r = Response::new(outgoing(blob.reader.body));
    let hd = r.headers_mut();
    hd.insert(header::CONTENT_LENGTH, hv(len));
    hd.insert(header::CONTENT_TYPE, hv("application/octet-stream"));
    hd.insert(DOCKER_CONTENT_DIGEST.clone(), hv(digest));
    hd.insert(header::ACCEPT_RANGES, hv("bytes"));
    hd.insert(header::ETAG, hv(format!("\"{digest}\"")));
    hd.insert(header::CACHE_CONTROL, hv("max-age=31536000"));
    if range.is_some() {
        *r.status_mut() = StatusCode::PARTIAL_CONTENT;
        let end = blob.start + len - 1;
        r.headers_mut().insert(header::CONTENT_RANGE, hv(format!("bytes {}-{}/{}", blob.start, end, blob.info.size)));
    }
    Ok(r)
}

pub async fn delete(state: &AppState, repo: &RepoName, digest: &Digest) -> Result<Response, ApiError> {
    state.registry.delete_blob(repo, digest).await?;
    let mut r = Response::new(Body::empty());
    *r.status_mut() = StatusCode::ACCEPTED;
    r.headers_mut().insert(header::CONTENT_LENGTH, hv(0));
    Ok(r)
}
