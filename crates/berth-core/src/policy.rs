//! Harbor's rule selectors and immutable-tag rules (goharbor/harbor
//! `src/lib/selector/selectors/doublestar`, `src/pkg/immutable/match/rule`): the same
//! JSON shapes, the same matching, shared by immutability, retention and replication
//! filters.
//!
//! Patterns are doublestar globs: `*` and `?` stay within one path segment, `**` crosses
//! segments, `{a,b}` alternates, `[...]` is a class; an empty pattern matches everything.

use globset::{GlobBuilder, GlobMatcher};
use serde::{Deserialize, Serialize};

/// A refused rule, naming the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct PolicyError {
    pub field: String,
    pub message: String,
}

fn refuse(field: impl Into<String>, message: impl Into<String>) -> PolicyError {
    PolicyError { field: field.into(), message: message.into() }
}

/// Harbor's `RetentionSelector` / `ImmutableSelector`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Selector {
    pub kind: String,
    pub decoration: String,
    #[serde(default)]
    pub pattern: String,
    /// JSON text, e.g. `{"untagged":true}`.
    #[serde(default)]
    pub extras: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Decoration {
    Matches,
    Excludes,
}

/// A validated selector, ready to match.
#[derive(Debug, Clone)]
pub struct Compiled {
    decoration: Decoration,
    glob: GlobMatcher,
    /// For tag selectors: whether untagged artifacts are selected (Harbor's defaults:
    /// `matches` selects them, `excludes` does not, unless `extras.untagged` says).
    untagged: bool,
}

impl Compiled {
    /// Compiles `s`; `field` names it in errors (`rules[0].tag_selectors[0]`).
    /// `repo` selects the decorations allowed: `repoMatches`/`repoExcludes` or
    /// `matches`/`excludes`.
    pub fn new(s: &Selector, field: &str, repo: bool) -> Result<Compiled, PolicyError> {
        if s.kind != "doublestar" {
            return Err(refuse(format!("{field}.kind"), format!("{:?} is not supported; use \"doublestar\"", s.kind)));
        }
        let decoration = match (repo, s.decoration.as_str()) {
            (true, "repoMatches") | (false, "matches") => Decoration::Matches,
            (true, "repoExcludes") | (false, "excludes") => Decoration::Excludes,
            (true, d) => {
                return Err(refuse(
                    format!("{field}.decoration"),
                    format!("{d:?} is not one of repoMatches, repoExcludes"),
                ));
            }
            (false, d) => {
                return Err(refuse(format!("{field}.decoration"), format!("{d:?} is not one of matches, excludes")));
            }
        };
        let pattern = if s.pattern.trim().is_empty() { "**" } else { s.pattern.trim() };
        let glob = GlobBuilder::new(pattern)
            .literal_separator(true)
            .backslash_escape(true)
            .empty_alternates(true)
            .build()
            .map_err(|e| {
                refuse(format!("{field}.pattern"), format!("{pattern:?} is not a valid pattern: {}", e.kind()))
            })?
            .compile_matcher();
        let mut untagged = decoration == Decoration::Matches;
        if !s.extras.trim().is_empty() {
            let extras: serde_json::Value = serde_json::from_str(&s.extras)
                .map_err(|e| refuse(format!("{field}.extras"), format!("is not JSON: {e}")))?;
            match extras.get("untagged") {
                None => {}
                Some(serde_json::Value::Bool(b)) => untagged = *b,
                Some(_) => return Err(refuse(format!("{field}.extras"), "untagged must be true or false")),
            }
        }
        Ok(Compiled { decoration, glob, untagged })
    }

    /// Whether `value` (a repository name without its project, or a tag) is selected.
    pub fn selects(&self, value: &str) -> bool {
        self.glob.is_match(value) == (self.decoration == Decoration::Matches)
    }

    /// Harbor's tag selection of an artifact: `matches` selects it if any tag matches,
    /// `excludes` if any tag does not; an untagged artifact by the `untagged` flag.
    pub fn selects_artifact(&self, tags: &[String]) -> bool {
        if tags.is_empty() { self.untagged } else { tags.iter().any(|t| self.selects(t)) }
    }
}

/// Harbor's `ImmutableRule`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImmutableRule {
    #[serde(default)]
    pub id: i64,
    #[serde(default)]
    pub priority: i64,
    #[serde(default)]
    pub disabled: bool,
    #[serde(default = "immutable_action")]
    pub action: String,
    #[serde(default = "immutable_template")]
    pub template: String,
    #[serde(default)]
    pub params: serde_json::Map<String, serde_json::Value>,
    pub tag_selectors: Vec<Selector>,
    pub scope_selectors: std::collections::BTreeMap<String, Vec<Selector>>,
}

fn immutable_action() -> String {
    "immutable".into()
}

fn immutable_template() -> String {
    "immutable_template".into()
}

/// An immutable rule, validated and compiled.
#[derive(Debug, Clone)]
pub struct ImmutableMatcher {
    pub rule: ImmutableRule,
    repo: Compiled,
    tag: Compiled,
}

impl ImmutableRule {
    /// Validates the rule as Harbor does and compiles its first repository and tag
    /// selectors, the only ones Harbor's matcher reads.
    pub fn compile(&self) -> Result<ImmutableMatcher, PolicyError> {
        if self.action != "immutable" {
            return Err(refuse("action", format!("{:?} is not supported; use \"immutable\"", self.action)));
        }
        if self.template != "immutable_template" {
            return Err(refuse(
                "template",
                format!("{:?} is not supported; use \"immutable_template\"", self.template),
            ));
        }
        if let Some(k) = self.scope_selectors.keys().find(|k| *k != "repository") {
            return Err(refuse(format!("scope_selectors.{k}"), "only \"repository\" is supported"));
        }
        let repos = self.scope_selectors.get("repository").filter(|r| !r.is_empty());
        let repo = repos.ok_or_else(|| refuse("scope_selectors.repository", "one repository selector is required"))?;
        if repo.len() > 1 {
            return Err(refuse("scope_selectors.repository", "exactly one repository selector is allowed"));
        }
        match self.tag_selectors.len() {
            0 => return Err(refuse("tag_selectors", "one tag selector is required")),
            1 => {}
            _ => return Err(refuse("tag_selectors", "exactly one tag selector is allowed")),
        }
        let repo = Compiled::new(&repo[0], "scope_selectors.repository[0]", true)?;
        let mut tag = Compiled::new(&self.tag_selectors[0], "tag_selectors[0]", false)?;
        // Harbor's matcher never treats an untagged artifact as immutable.
        tag.untagged = false;
        Ok(ImmutableMatcher { rule: self.clone(), repo, tag })
    }
}

impl ImmutableMatcher {
    /// Whether `tag` in `repository` (the name without its project) is immutable under
    /// this rule.
    pub fn protects(&self, repository: &str, tag: &str) -> bool {
        !self.rule.disabled && self.repo.selects(repository) && self.tag.selects(tag)
    }
}

/// A project's immutable-tag rules, compiled. A stored rule that no longer compiles
/// (it was valid when saved) is skipped with a warning rather than blocking every push.
pub async fn immutable_rules(
    store: &dyn crate::store::policies::PolicyStore,
    project_id: i64,
) -> crate::store::StoreResult<Vec<ImmutableMatcher>> {
    let stored = store.policies(crate::store::policies::IMMUTABLE_TAG, project_id).await?;
    Ok(stored
        .into_iter()
        .filter_map(|p| {
            let compiled =
                serde_json::from_str::<ImmutableRule>(&p.body).map_err(|e| e.to_string()).and_then(|mut r| {
                    r.id = p.id;
                    r.compile().map_err(|e| e.to_string())
                });
            compiled.map_err(|e| tracing::warn!(rule = p.id, error = %e, "stored immutable rule skipped")).ok()
        })
        .collect())
}

/// The first enabled rule protecting `tag` in `repository`, if any.
pub fn immutable<'a>(rules: &'a [ImmutableMatcher], repository: &str, tag: &str) -> Option<&'a ImmutableMatcher> {
    rules.iter().find(|r| r.protects(repository, tag))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sel(decoration: &str, pattern: &str, extras: &str) -> Selector {
        Selector {
            kind: "doublestar".into(),
            decoration: decoration.into(),
            pattern: pattern.into(),
            extras: extras.into(),
        }
    }

    fn rule(repo: Selector, tag: Selector) -> ImmutableRule {
        serde_json::from_value(serde_json::json!({
            "tag_selectors": [tag], "scope_selectors": {"repository": [repo]}
        }))
        .unwrap()
    }

    #[test]
    fn doublestar_patterns_as_harbor_matches_them() {
        let c = |p: &str| Compiled::new(&sel("matches", p, ""), "t", false).unwrap();
        assert!(c("v1.*").selects("v1.2") && !c("v1.*").selects("v2.0"));
        assert!(c("{latest,stable}").selects("stable") && !c("{latest,stable}").selects("dev"));
        assert!(c("").selects("anything"), "empty matches all");
        assert!(c("**").selects("any/thing"));
        let r = |p: &str| Compiled::new(&sel("repoMatches", p, ""), "r", true).unwrap();
        assert!(!r("*").selects("team/app"), "* stays in one segment");
        assert!(r("**").selects("team/app") && r("team/**").selects("team/a/b"));
        assert!(r("app?").selects("app1") && !r("app?").selects("app12"));
        let ex = Compiled::new(&sel("excludes", "dev-*", ""), "t", false).unwrap();
        assert!(ex.selects("v1") && !ex.selects("dev-1"));
    }

    #[test]
    fn untagged_defaults_and_extras() {
        let m = Compiled::new(&sel("matches", "v*", ""), "t", false).unwrap();
        let ex = Compiled::new(&sel("excludes", "v*", ""), "t", false).unwrap();
        assert!(m.selects_artifact(&[]) && !ex.selects_artifact(&[]));
        let m2 = Compiled::new(&sel("matches", "v*", r#"{"untagged":false}"#), "t", false).unwrap();
        assert!(!m2.selects_artifact(&[]));
        assert!(m.selects_artifact(&["dev".into(), "v2".into()]), "any tag matching");
        assert!(ex.selects_artifact(&["v1".into(), "dev".into()]), "any tag not matching");
        assert!(!ex.selects_artifact(&["v1".into()]));
    }

    #[test]
    fn immutable_rules_use_the_first_selectors_and_skip_disabled_ones() {
        let r = rule(sel("repoMatches", "app", ""), sel("matches", "v*", "")).compile().unwrap();
        assert!(r.protects("app", "v1") && !r.protects("app", "latest") && !r.protects("other", "v1"));
        let mut off = rule(sel("repoMatches", "**", ""), sel("matches", "**", ""));
        off.disabled = true;
        let off = off.compile().unwrap();
        assert!(immutable(&[off, r], "app", "v1").is_some());
        let ex = rule(sel("repoExcludes", "tmp/**", ""), sel("excludes", "dev-*", "")).compile().unwrap();
        assert!(ex.protects("app", "v1") && !ex.protects("tmp/x", "v1") && !ex.protects("app", "dev-1"));
    }

    #[test]
    fn refusals_name_the_field() {
        let field = |r: ImmutableRule| r.compile().unwrap_err().field;
        assert_eq!(
            field(rule(sel("matches", "**", ""), sel("matches", "v*", ""))),
            "scope_selectors.repository[0].decoration"
        );
        assert_eq!(
            field(rule(sel("repoMatches", "**", ""), sel("sometimes", "v*", ""))),
            "tag_selectors[0].decoration"
        );
        assert_eq!(
            field(rule(sel("repoMatches", "[", ""), sel("matches", "v*", ""))),
            "scope_selectors.repository[0].pattern"
        );
        assert_eq!(field(rule(sel("repoMatches", "**", ""), sel("matches", "v*", "{"))), "tag_selectors[0].extras");
        let mut r = rule(sel("repoMatches", "**", ""), sel("matches", "v*", ""));
        r.tag_selectors[0].kind = "regex".into();
        assert_eq!(field(r.clone()), "tag_selectors[0].kind");
        r.tag_selectors.clear();
        assert_eq!(field(r), "tag_selectors");
        let mut r = rule(sel("repoMatches", "**", ""), sel("matches", "v*", ""));
        r.action = "retain".into();
        assert_eq!(field(r), "action");
    }
}
