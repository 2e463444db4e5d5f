//! Manifest GET/HEAD/PUT/DELETE.

use axum::body::Body;
use axum::http::{HeaderMap, HeaderName, StatusCode, header};
use axum::response::Response;

use berth_core::manifest::{self, MAX_MANIFEST_BYTES};
use berth_core::{CoreError, Reference, RepoName};

use super::blobs::DOCKER_CONTENT_DIGEST;
use super::{empty, hv, link};
use crate::AppState;
use crate::body::collect_limited;
use crate::error::ApiError;

static OCI_SUBJECT: HeaderName = HeaderName::from_static("oci-subject");

pub async fn get(
    state: &AppState,
    repo: &RepoName,
    r: &Reference,
    h: &HeaderMap,
    head: bool,
) -> Result<Response, ApiError> {
    let m = match state.proxy.registry_of(repo).await? {
        Some(upstream) => state.proxy.manifest(upstream, repo, r).await?.manifest,
        None => state.registry.manifest(repo, r).await?,
    };
    crate::pull_policy::check_pull(state, repo, r, &m.digest, &m.content, h, head).await?;
    let accept: Vec<&str> = h.get_all(header::ACCEPT).iter().filter_map(|v| v.to_str().ok()).collect();
    // A client that asked by digest gets exactly those bytes; by tag, only a type it accepts.
    if matches!(r, Reference::Tag(_)) && !manifest::accepts(&accept, &m.media_type) {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "MANIFEST_UNKNOWN",
            format!("the manifest is of type {}, which the request's Accept header does not allow", m.media_type),
        ));
    }
    let len = m.content.len();
    let mut res = if head { empty(StatusCode::OK) } else { Response::new(Body::from(m.content)) };
    let hd = res.headers_mut();
    hd.insert(header::CONTENT_TYPE, hv(&m.media_type));
    hd.insert(header::CONTENT_LENGTH, hv(len));
    hd.insert(DOCKER_CONTENT_DIGEST.clone(), hv(&m.digest));
    hd.insert(header::ETAG, hv(format!("\"{}\"", m.digest)));
    Ok(res)
}

pub async fn put(
    state: &AppState,
    repo: &RepoName,
    r: &Reference,
    h: &HeaderMap,
    body: Body,
    username: &str,
) -> Result<Response, ApiError> {
    let content = collect_limited(body, MAX_MANIFEST_BYTES)
        .await
        .map_err(|e| ApiError::from(CoreError::BodyIncomplete(e.0)))?
        .ok_or(CoreError::ManifestInvalid(manifest::ManifestError::TooLarge))?;
    let ct = h.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok());
    // Moving an existing immutable tag is refused, even to the same digest (as Harbor).
    if let Reference::Tag(t) = r
        && state.registry.meta().get_manifest(repo, r).await.map_err(CoreError::Store)?.is_some()
    {
        crate::immutable::guard(state, repo, &[t.as_str().to_owned()]).await?;
    }
    let pushed = state.registry.put_manifest_by(repo, r, ct, content, Some(username)).await?;
    state.events.committed();
    let mut res = empty(StatusCode::CREATED);
    let hd = res.headers_mut();
    hd.insert(header::LOCATION, link(state, &format!("/v2/{repo}/manifests/{}", pushed.digest)));
    hd.insert(DOCKER_CONTENT_DIGEST.clone(), hv(&pushed.digest));
    hd.insert(header::CONTENT_LENGTH, hv(0));
    if let Some(s) = pushed.subject {
        hd.insert(OCI_SUBJECT.clone(), hv(s));
    }
    Ok(res)
}

pub async fn delete(state: &AppState, repo: &RepoName, r: &Reference, username: &str) -> Result<Response, ApiError> {
    let tags = match r {
        Reference::Tag(t) => vec![t.as_str().to_owned()],
        Reference::Digest(_) => match state.catalog.artifact(repo, r).await.map_err(CoreError::Store)? {
            Some(a) => a.tags.into_iter().map(|t| t.name).collect(),
            None => Vec::new(),
        },
    };
    crate::immutable::guard(state, repo, &tags).await?;
    state.registry.delete_manifest_by(repo, r, Some(username)).await?;
    state.events.committed();
    let mut res = empty(StatusCode::ACCEPTED);
    res.headers_mut().insert(header::CONTENT_LENGTH, hv(0));
    Ok(res)
}
