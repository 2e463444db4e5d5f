//! Token scopes: `type:name:action,action` (`repository:library/nginx:pull,push`).

use serde::{Deserialize, Serialize};

/// One entry of the JWT `access` claim.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResourceAccess {
    #[serde(rename = "type")]
    pub kind: String,
    pub name: String,
    pub actions: Vec<String>,
}

/// A requested scope, as parsed from `?scope=`.
pub type Scope = ResourceAccess;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("scope {0:?} is invalid; use type:name:actions, e.g. repository:library/nginx:pull,push")]
pub struct ScopeError(pub String);

impl ResourceAccess {
    /// Parses one scope. The name may itself contain ':' (a registry host with a port),
    /// so the type is what precedes the first ':' and the actions follow the last.
    pub fn parse(s: &str) -> Result<ResourceAccess, ScopeError> {
        let err = || ScopeError(s.chars().take(200).collect());
        let (kind, rest) = s.split_once(':').ok_or_else(err)?;
        let (name, actions) = rest.rsplit_once(':').ok_or_else(err)?;
        if kind.is_empty() || name.is_empty() {
            return Err(err());
        }
        let actions: Vec<String> = actions.split(',').filter(|a| !a.is_empty()).map(str::to_string).collect();
        Ok(ResourceAccess { kind: kind.to_string(), name: name.to_string(), actions })
    }

    /// Parses every scope of a request: repeated `scope=` parameters, each possibly
    /// holding several space-separated scopes.
    pub fn parse_all<'a>(values: impl IntoIterator<Item = &'a str>) -> Result<Vec<ResourceAccess>, ScopeError> {
        values.into_iter().flat_map(|v| v.split(' ')).filter(|s| !s.is_empty()).map(Self::parse).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_harbor_scopes() {
        let s = Scope::parse("repository:library/nginx:pull,push").unwrap();
        assert_eq!((s.kind.as_str(), s.name.as_str()), ("repository", "library/nginx"));
        assert_eq!(s.actions, vec!["pull", "push"]);
        let s = Scope::parse("repository:host:5000/p/r:pull").unwrap();
        assert_eq!(s.name, "host:5000/p/r");
        let s = Scope::parse("registry:catalog:*").unwrap();
        assert_eq!(s.actions, vec!["*"]);
        let all = Scope::parse_all(["repository:a/b:pull repository:c/d:push", "registry:catalog:*"]).unwrap();
        assert_eq!(all.len(), 3);
        for bad in ["", "repository", "repository:", ":x:pull", "repository::pull"] {
            assert!(Scope::parse(bad).is_err(), "{bad}");
        }
    }

    proptest! {
        #[test]
        fn parse_never_panics(s in "\\PC{0,80}") {
            let _ = Scope::parse(&s);
        }

        #[test]
        fn roundtrip(kind in "[a-z]{1,10}", name in "[a-z0-9/:._-]{1,30}", acts in proptest::collection::vec("[a-z*]{1,6}", 0..4)) {
            let text = format!("{kind}:{name}:{}", acts.join(","));
            let s = Scope::parse(&text).unwrap();
            prop_assert_eq!(s.kind, kind);
            prop_assert_eq!(s.name, name);
            prop_assert_eq!(s.actions, acts);
        }
    }
}
