//! `/v2/<name>/...` parsed into an enum. Repository names contain slashes, so the
//! path is matched from its end, where the grammar is fixed.

use axum::http::Method;
use berth_core::{Digest, Reference, RepoName};

use crate::auth::{Access, Action};
use crate::error::ApiError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OciRoute {
    Catalog,
    Tags(RepoName),
    Manifest(RepoName, Reference),
    /// A manifest path whose reference is neither a valid tag nor a valid digest (kept
    /// raw): reads answer `MANIFEST_UNKNOWN` as the OCI conformance suite expects of a
    /// reference that cannot exist, writes the parse error.
    BadReference(RepoName, String),
    Blob(RepoName, Digest),
    UploadStart(RepoName),
    Upload(RepoName, String),
    Referrers(RepoName, Digest),
}

fn name(segs: &[&str]) -> Result<RepoName, ApiError> {
    let joined = segs.join("/");
    joined
        .parse::<RepoName>()
        .map_err(|e| ApiError::name_invalid(e.to_string()).detail(serde_json::json!({ "name": joined })))
}

/// Why `raw` is not a manifest reference, in the code the OCI spec gives it.
pub fn reference_error(raw: &str) -> ApiError {
    match raw.parse::<Reference>() {
        Err(berth_core::name::ReferenceError::Digest(d)) => {
            ApiError::digest_invalid(d.to_string()).detail(serde_json::json!({ "digest": raw }))
        }
        Err(berth_core::name::ReferenceError::Tag(t)) => {
            ApiError::from(berth_core::CoreError::TagInvalid(t.to_string()))
        }
        Ok(_) => ApiError::from(berth_core::CoreError::TagInvalid(raw.to_string())),
    }
}

fn digest(s: &str) -> Result<Digest, ApiError> {
    s.parse::<Digest>().map_err(|e| ApiError::digest_invalid(e.to_string()).detail(serde_json::json!({ "digest": s })))
}

impl OciRoute {
    /// Parses the path after `/v2/`. `Ok(None)`: no such endpoint.
    pub fn parse(rest: &str) -> Result<Option<OciRoute>, ApiError> {
        if rest == "_catalog" {
            return Ok(Some(OciRoute::Catalog));
        }
        let segs: Vec<&str> = rest.split('/').collect();
        let n = segs.len();
        let route = match segs.as_slice() {
            [head @ .., "tags", "list"] if !head.is_empty() => OciRoute::Tags(name(head)?),
            [head @ .., "blobs", "uploads", ""] | [head @ .., "blobs", "uploads"] if !head.is_empty() => {
                OciRoute::UploadStart(name(head)?)
            }
            [head @ .., "blobs", "uploads", id] if !head.is_empty() => OciRoute::Upload(name(head)?, id.to_string()),
            [head @ .., "manifests", reference] if !head.is_empty() => {
                let n = name(head)?;
                match reference.parse::<Reference>() {
                    Ok(r) => OciRoute::Manifest(n, r),
                    Err(_) => OciRoute::BadReference(n, reference.to_string()),
                }
            }
            [head @ .., "blobs", d] if !head.is_empty() => OciRoute::Blob(name(head)?, digest(d)?),
            [head @ .., "referrers", d] if !head.is_empty() => OciRoute::Referrers(name(head)?, digest(d)?),
            _ => {
                let _ = n;
                return Ok(None);
            }
        };
        Ok(Some(route))
    }

    /// The access a request needs; the authorizer decides before the handler runs.
    pub fn access(&self, method: &Method) -> Access {
        let repo = |name: &RepoName, actions: Vec<Action>| Access::Repository { name: name.clone(), actions };
        let read = *method == Method::GET || *method == Method::HEAD;
        match self {
            OciRoute::Catalog => Access::Catalog,
            OciRoute::Tags(n) | OciRoute::Referrers(n, _) => repo(n, vec![Action::Pull]),
            OciRoute::Manifest(n, _) | OciRoute::BadReference(n, _) | OciRoute::Blob(n, _) => {
                if read {
                    repo(n, vec![Action::Pull])
                } else if *method == Method::DELETE {
                    repo(n, vec![Action::Delete])
                } else {
                    repo(n, vec![Action::Pull, Action::Push])
                }
            }
            // Uploads (including cross-repo mounts, whose source is checked by the handler).
            OciRoute::UploadStart(n) | OciRoute::Upload(n, _) => repo(n, vec![Action::Pull, Action::Push]),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d() -> String {
        format!("sha256:{}", "a".repeat(64))
    }

    #[test]
    fn routes_from_the_end() {
        let p = |s: &str| OciRoute::parse(s).unwrap();
        assert_eq!(p("_catalog"), Some(OciRoute::Catalog));
        assert!(matches!(p("a/b/c/tags/list"), Some(OciRoute::Tags(n)) if n.as_str() == "a/b/c"));
        assert!(
            matches!(p("a/b/manifests/latest"), Some(OciRoute::Manifest(n, Reference::Tag(_))) if n.as_str() == "a/b")
        );
        assert!(matches!(p(&format!("x/manifests/{}", d())), Some(OciRoute::Manifest(_, Reference::Digest(_)))));
        assert!(matches!(p(&format!("x/blobs/{}", d())), Some(OciRoute::Blob(..))));
        assert!(matches!(p("x/y/blobs/uploads/"), Some(OciRoute::UploadStart(n)) if n.as_str() == "x/y"));
        assert!(matches!(p("x/blobs/uploads"), Some(OciRoute::UploadStart(_))));
        assert!(matches!(p("x/blobs/uploads/abc-1"), Some(OciRoute::Upload(_, id)) if id == "abc-1"));
        assert!(matches!(p(&format!("x/referrers/{}", d())), Some(OciRoute::Referrers(..))));
        // A repository may itself be called "blobs" or "manifests".
        assert!(
            matches!(p("manifests/blobs/manifests/v1"), Some(OciRoute::Manifest(n, _)) if n.as_str() == "manifests/blobs")
        );
        assert_eq!(p("tags/list"), None);
        assert_eq!(p("x/unknown"), None);
    }

    #[test]
    fn bad_parts_get_their_codes() {
        let e = |s: &str| OciRoute::parse(s).unwrap_err();
        assert_eq!(e("UPPER/manifests/x").code, "NAME_INVALID");
        assert_eq!(e("x/blobs/sha256:zz").code, "DIGEST_INVALID");
        assert_eq!(reference_error("sha256:zz").code, "DIGEST_INVALID");
        assert_eq!(reference_error("-bad").code, "TAG_INVALID");
        let p = |s: &str| OciRoute::parse(s).unwrap();
        assert!(matches!(p("x/manifests/-bad"), Some(OciRoute::BadReference(_, r)) if r == "-bad"));
        assert!(matches!(p("x/manifests/.INVALID_MANIFEST_NAME"), Some(OciRoute::BadReference(..))));
        assert_eq!(e("a//b/tags/list").code, "NAME_INVALID");
    }
}
