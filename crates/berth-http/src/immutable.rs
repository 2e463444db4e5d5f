//! Immutable tags, enforced wherever a tag can change: a manifest pushed over an existing
//! tag, a tag deleted, a manifest or artifact deleted while carrying one (goharbor/harbor
//! `src/server/middleware/immutable`). The answer is Harbor's: 412 `PRECONDITION`.

use axum::http::StatusCode;
use berth_core::policy::{immutable, immutable_rules};
use berth_core::{CoreError, RepoName};

use crate::AppState;
use crate::error::ApiError;

/// Refuses when any of `tags` of `repo` is protected by one of its project's rules.
pub async fn guard(state: &AppState, repo: &RepoName, tags: &[String]) -> Result<(), ApiError> {
    if tags.is_empty() {
        return Ok(());
    }
    // Repositories outside a project (open mode) have no rules.
    let Some((project, rest)) = repo.as_str().split_once('/') else { return Ok(()) };
    let store_err = |e| ApiError::from(CoreError::Store(e));
    let Some(p) = state.auth.identity.project_by_name(project).await.map_err(store_err)? else { return Ok(()) };
    let rules = immutable_rules(state.policies.as_ref(), p.id).await.map_err(store_err)?;
    match tags.iter().find(|t| immutable(&rules, rest, t).is_some()) {
        Some(t) => Err(ApiError::new(
            StatusCode::PRECONDITION_FAILED,
            "PRECONDITION",
            format!("Failed to process request due to '{repo}:{t}' configured as immutable."),
        )),
        None => Ok(()),
    }
}
