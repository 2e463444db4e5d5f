//! The authorization slot. Every `/v2` request is mapped to the access it needs
//! (repository + actions, the same shape as a Docker token scope) and checked here
//! before its handler runs. Until identity lands, `AllowAll` serves loopback setups.

use axum::http::HeaderMap;
use berth_core::RepoName;

use crate::error::ApiError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Pull,
    Push,
    Delete,
}

/// What one request needs: actions on a repository, or the registry catalog.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Access {
    /// `GET /v2/`: any authenticated principal.
    Base,
    Catalog,
    Repository {
        name: RepoName,
        actions: Vec<Action>,
    },
}

pub trait Authorizer: Send + Sync + 'static {
    fn authorize(&self, headers: &HeaderMap, access: &Access) -> Result<(), ApiError>;
}

/// Grants everything: the open registry for a single trusted machine.
pub struct AllowAll;

impl Authorizer for AllowAll {
    fn authorize(&self, _: &HeaderMap, _: &Access) -> Result<(), ApiError> {
        Ok(())
    }
}
