//! Tag lists, the catalog and the referrers API.

use axum::http::{HeaderName, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use berth_core::{CoreError, Digest, RepoName};

use super::{Query, hv, link};
use crate::AppState;
use crate::error::ApiError;

static FILTERS_APPLIED: HeaderName = HeaderName::from_static("oci-filters-applied");

/// `n` as given, or `None` for "everything".
fn page_size(q: &Query) -> Result<Option<usize>, ApiError> {
    match q.get("n") {
        None | Some("") => Ok(None),
        Some(s) => s.parse::<usize>().map(Some).map_err(|_| {
            CoreError::PaginationInvalid { param: "n", reason: format!("{s:?} is not a non-negative integer") }.into()
        }),
    }
}

/// Fetches one more than asked to learn whether a next page exists.
fn probe_limit(n: Option<usize>) -> usize {
    n.map(|n| n.saturating_add(1)).unwrap_or(usize::MAX)
}

fn json_page(state: &AppState, body: Value, next: Option<String>) -> Response {
    let mut res = (StatusCode::OK, [(header::CONTENT_TYPE, "application/json")], body.to_string()).into_response();
    if let Some(path) = next {
        let l = link(state, &path);
        res.headers_mut().insert(header::LINK, hv(format!("<{}>; rel=\"next\"", l.to_str().unwrap_or(&path))));
    }
    res
}

fn next_link(base: &str, n: Option<usize>, items: &mut Vec<String>) -> Option<String> {
    let n = n?;
    if items.len() <= n {
        return None;
    }
    items.truncate(n);
    let last = items.last()?;
    let last: String = form_urlencoded::byte_serialize(last.as_bytes()).collect();
    Some(format!("{base}?n={n}&last={last}"))
}

pub async fn tags(state: &AppState, repo: &RepoName, q: &Query) -> Result<Response, ApiError> {
    let n = page_size(q)?;
    let mut tags = if n == Some(0) {
        state.registry.tags(repo, None, 0).await?
    } else {
        state.registry.tags(repo, q.get("last"), probe_limit(n)).await?
    };
    let next = next_link(&format!("/v2/{repo}/tags/list"), n, &mut tags);
    Ok(json_page(state, json!({ "name": repo.as_str(), "tags": tags }), next))
}

pub async fn catalog(state: &AppState, q: &Query) -> Result<Response, ApiError> {
    let n = page_size(q)?;
    let mut repos =
        if n == Some(0) { Vec::new() } else { state.registry.catalog(q.get("last"), probe_limit(n)).await? };
    let next = next_link("/v2/_catalog", n, &mut repos);
    Ok(json_page(state, json!({ "repositories": repos }), next))
}

pub async fn referrers(state: &AppState, repo: &RepoName, subject: &Digest, q: &Query) -> Result<Response, ApiError> {
    let filter = q.get("artifactType").filter(|s| !s.is_empty());
    let list = state.registry.referrers(repo, subject, filter).await?;
    let manifests: Vec<Value> = list
        .into_iter()
        .map(|r| {
            let mut d = json!({ "mediaType": r.media_type, "digest": r.digest, "size": r.size });
            if let Some(t) = r.artifact_type {
                d["artifactType"] = Value::String(t);
            }
            if let Some(a) = r.annotations.and_then(|a| serde_json::from_str::<Value>(&a).ok()) {
                d["annotations"] = a;
            }
            d
        })
        .collect();
    let body = json!({
        "schemaVersion": 2,
        "mediaType": berth_core::manifest::OCI_INDEX,
        "manifests": manifests,
    });
    let mut res =
        (StatusCode::OK, [(header::CONTENT_TYPE, berth_core::manifest::OCI_INDEX)], body.to_string()).into_response();
    if filter.is_some() {
        res.headers_mut().insert(FILTERS_APPLIED.clone(), hv("artifactType"));
    }
    Ok(res)
}
