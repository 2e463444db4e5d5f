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

// --- tag retention ---

/// Harbor's retention templates and the parameter each reads.
pub const RETENTION_TEMPLATES: &[(&str, Option<&str>)] = &[
    ("latestPushedK", Some("latestPushedK")),
    ("latestPulledN", Some("latestPulledN")),
    ("latestActiveK", Some("latestActiveK")),
    ("nDaysSinceLastPush", Some("nDaysSinceLastPush")),
    ("nDaysSinceLastPull", Some("nDaysSinceLastPull")),
    ("lastXDays", Some("lastXDays")),
    ("always", None),
    ("nothing", None),
];

/// Harbor's `RetentionRule`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetentionRule {
    #[serde(default)]
    pub id: i64,
    #[serde(default)]
    pub priority: i64,
    #[serde(default)]
    pub disabled: bool,
    #[serde(default = "retain_action")]
    pub action: String,
    pub template: String,
    #[serde(default)]
    pub params: serde_json::Map<String, serde_json::Value>,
    #[serde(default)]
    pub tag_selectors: Vec<Selector>,
    #[serde(default)]
    pub scope_selectors: std::collections::BTreeMap<String, Vec<Selector>>,
}

fn retain_action() -> String {
    "retain".into()
}

/// One artifact of a repository as retention sees it (times in unix seconds; a never
/// pulled artifact has pull time 0).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub digest: String,
    pub tags: Vec<String>,
    pub labels: Vec<String>,
    /// The newest of the artifact's and its tags' push times.
    pub pushed: i64,
    /// The newest of the artifact's and its tags' pull times.
    pub pulled: i64,
}

/// A tag or label selector of a retention rule.
#[derive(Debug, Clone)]
enum TagFilter {
    Tags(Compiled),
    /// `withLabels` (all of them) or `withoutLabels` (none of them).
    Labels {
        with: bool,
        names: Vec<String>,
    },
}

impl TagFilter {
    fn keeps(&self, c: &Candidate) -> bool {
        match self {
            TagFilter::Tags(t) => t.selects_artifact(&c.tags),
            TagFilter::Labels { with: true, names } => names.iter().all(|n| c.labels.contains(n)),
            TagFilter::Labels { with: false, names } => !names.iter().any(|n| c.labels.contains(n)),
        }
    }
}

/// A validated retention rule.
#[derive(Debug, Clone)]
pub struct RetentionMatcher {
    pub rule: RetentionRule,
    repos: Vec<Compiled>,
    filters: Vec<TagFilter>,
    /// The template's parameter (`K`, `N` or days), 0 for `always`/`nothing`.
    n: i64,
}

impl RetentionRule {
    /// Validates the rule as Harbor does; `field` names it (`rules[2]`).
    pub fn compile(&self, field: &str) -> Result<RetentionMatcher, PolicyError> {
        if self.action != "retain" {
            return Err(refuse(
                format!("{field}.action"),
                format!("{:?} is not supported; use \"retain\"", self.action),
            ));
        }
        let (_, param) = RETENTION_TEMPLATES.iter().find(|(t, _)| *t == self.template).ok_or_else(|| {
            let names: Vec<&str> = RETENTION_TEMPLATES.iter().map(|(t, _)| *t).collect();
            refuse(format!("{field}.template"), format!("{:?} is not one of {}", self.template, names.join(", ")))
        })?;
        let n = match param {
            None => 0,
            Some(p) => {
                let v = self.params.get(*p).ok_or_else(|| refuse(format!("{field}.params.{p}"), "is required"))?;
                let n = match v {
                    serde_json::Value::Number(n) => n.as_i64(),
                    serde_json::Value::String(s) => s.trim().parse().ok(),
                    _ => None,
                };
                match n {
                    Some(n) if (0..=100_000).contains(&n) => n,
                    _ => return Err(refuse(format!("{field}.params.{p}"), "must be a whole number from 0 to 100000")),
                }
            }
        };
        if let Some(k) = self.scope_selectors.keys().find(|k| *k != "repository") {
            return Err(refuse(format!("{field}.scope_selectors.{k}"), "only \"repository\" is supported"));
        }
        let repos = self.scope_selectors.get("repository").map(Vec::as_slice).unwrap_or_default();
        if repos.is_empty() {
            return Err(refuse(format!("{field}.scope_selectors.repository"), "one repository selector is required"));
        }
        let repos = repos
            .iter()
            .enumerate()
            .map(|(i, s)| Compiled::new(s, &format!("{field}.scope_selectors.repository[{i}]"), true))
            .collect::<Result<Vec<_>, _>>()?;
        let mut filters = Vec::new();
        for (i, s) in self.tag_selectors.iter().enumerate() {
            let f = format!("{field}.tag_selectors[{i}]");
            filters.push(match s.kind.as_str() {
                "label" => {
                    let with = match s.decoration.as_str() {
                        "withLabels" => true,
                        "withoutLabels" => false,
                        d => {
                            return Err(refuse(
                                format!("{f}.decoration"),
                                format!("{d:?} is not one of withLabels, withoutLabels"),
                            ));
                        }
                    };
                    let names =
                        s.pattern.split(',').map(str::trim).filter(|n| !n.is_empty()).map(str::to_owned).collect();
                    TagFilter::Labels { with, names }
                }
                _ => TagFilter::Tags(Compiled::new(s, &f, false)?),
            });
        }
        Ok(RetentionMatcher { rule: self.clone(), repos, filters, n })
    }
}

impl RetentionMatcher {
    /// Whether this rule covers `repository` (the name without its project).
    pub fn covers(&self, repository: &str) -> bool {
        !self.rule.disabled && self.repos.iter().all(|r| r.selects(repository))
    }

    /// The digests this rule retains among `candidates`, at `now` (unix seconds).
    pub fn retains(&self, candidates: &[Candidate], now: i64) -> Vec<String> {
        let mut selected: Vec<&Candidate> =
            candidates.iter().filter(|c| self.filters.iter().all(|f| f.keeps(c))).collect();
        let day = 86_400;
        fn top(mut v: Vec<&Candidate>, key: fn(&Candidate) -> i64, k: i64) -> Vec<&Candidate> {
            // Newest first; ties in digest order so a run is repeatable.
            v.sort_by(|a, b| key(b).cmp(&key(a)).then_with(|| a.digest.cmp(&b.digest)));
            v.truncate(usize::try_from(k).unwrap_or(0));
            v
        }
        selected = match self.rule.template.as_str() {
            "latestPushedK" => top(selected, |c| c.pushed, self.n),
            "latestPulledN" => top(selected, |c| c.pulled, self.n),
            "latestActiveK" => top(selected, |c| c.pushed.max(c.pulled), self.n),
            "nDaysSinceLastPush" => selected.into_iter().filter(|c| c.pushed >= now - self.n * day).collect(),
            "nDaysSinceLastPull" => selected.into_iter().filter(|c| c.pulled >= now - self.n * day).collect(),
            "lastXDays" => selected.into_iter().filter(|c| c.pushed > now - self.n * day).collect(),
            "always" => selected,
            _ => Vec::new(),
        };
        selected.into_iter().map(|c| c.digest.clone()).collect()
    }
}

/// Harbor's retention of one repository: the union of what each covering rule retains.
/// Everything else in `candidates` goes (the caller still skips immutable artifacts).
pub fn retained(
    rules: &[RetentionMatcher],
    repository: &str,
    candidates: &[Candidate],
    now: i64,
) -> std::collections::BTreeSet<String> {
    rules.iter().filter(|r| r.covers(repository)).flat_map(|r| r.retains(candidates, now)).collect()
}

#[cfg(test)]
mod retention_tests {
    use super::*;

    const NOW: i64 = 1_800_000_000;
    const DAY: i64 = 86_400;

    fn c(digest: &str, tags: &[&str], pushed_days_ago: i64, pulled_days_ago: Option<i64>) -> Candidate {
        Candidate {
            digest: digest.into(),
            tags: tags.iter().map(|t| t.to_string()).collect(),
            labels: Vec::new(),
            pushed: NOW - pushed_days_ago * DAY,
            pulled: pulled_days_ago.map_or(0, |d| NOW - d * DAY),
        }
    }

    fn rule(template: &str, n: i64, tags: Selector, repo: &str) -> RetentionMatcher {
        let r: RetentionRule = serde_json::from_value(serde_json::json!({
            "template": template, "params": {template: n},
            "tag_selectors": [tags],
            "scope_selectors": {"repository": [{"kind": "doublestar", "decoration": "repoMatches", "pattern": repo}]}
        }))
        .unwrap();
        r.compile("rules[0]").unwrap()
    }

    fn tags(decoration: &str, pattern: &str, extras: &str) -> Selector {
        Selector {
            kind: "doublestar".into(),
            decoration: decoration.into(),
            pattern: pattern.into(),
            extras: extras.into(),
        }
    }

    fn set(v: &[&str]) -> std::collections::BTreeSet<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    fn repo() -> Vec<Candidate> {
        vec![
            c("a", &["v1"], 10, Some(1)),
            c("b", &["v2"], 5, None),
            c("c", &["v3", "latest"], 1, Some(3)),
            c("d", &[], 2, None),
            c("e", &["dev-1"], 0, None),
        ]
    }

    #[test]
    fn latest_pushed_k_among_matching_tags_untagged_included_by_default() {
        // Harbor's doc example: retain the 2 most recently pushed artifacts matching `v*`;
        // `matches` selects untagged artifacts unless told otherwise.
        let r = rule("latestPushedK", 2, tags("matches", "v*", ""), "**");
        assert_eq!(retained(&[r], "app", &repo(), NOW), set(&["c", "d"]));
        let r = rule("latestPushedK", 2, tags("matches", "v*", r#"{"untagged":false}"#), "**");
        assert_eq!(retained(&[r], "app", &repo(), NOW), set(&["b", "c"]));
    }

    #[test]
    fn excludes_selects_artifacts_with_any_other_tag() {
        let r = rule("always", 0, tags("excludes", "dev-*", ""), "**");
        assert_eq!(retained(&[r], "app", &repo(), NOW), set(&["a", "b", "c"]), "untagged not selected by excludes");
    }

    #[test]
    fn day_rules_and_pulls() {
        let r = rule("nDaysSinceLastPush", 5, tags("matches", "**", ""), "**");
        assert_eq!(retained(&[r], "app", &repo(), NOW), set(&["b", "c", "d", "e"]), "pushed within 5 days, inclusive");
        let r = rule("lastXDays", 5, tags("matches", "**", ""), "**");
        assert_eq!(retained(&[r], "app", &repo(), NOW), set(&["c", "d", "e"]), "strictly within");
        let r = rule("nDaysSinceLastPull", 2, tags("matches", "**", ""), "**");
        assert_eq!(retained(&[r], "app", &repo(), NOW), set(&["a"]));
        let r = rule("latestPulledN", 1, tags("matches", "**", ""), "**");
        assert_eq!(retained(&[r], "app", &repo(), NOW), set(&["a"]));
    }

    #[test]
    fn rules_union_and_scope() {
        let keep_v = rule("latestPushedK", 1, tags("matches", "v*", r#"{"untagged":false}"#), "**");
        let keep_dev = rule("always", 0, tags("matches", "dev-*", r#"{"untagged":false}"#), "app");
        assert_eq!(retained(&[keep_v.clone(), keep_dev.clone()], "app", &repo(), NOW), set(&["c", "e"]));
        assert_eq!(
            retained(&[keep_v, keep_dev], "other", &repo(), NOW),
            set(&["c"]),
            "the second rule covers app only"
        );
        assert!(retained(&[], "app", &repo(), NOW).is_empty(), "no rule retains nothing");
    }

    #[test]
    fn ties_break_by_digest_so_runs_repeat() {
        let same = vec![c("z", &["v1"], 1, None), c("y", &["v2"], 1, None), c("x", &["v3"], 1, None)];
        let r = rule("latestPushedK", 2, tags("matches", "**", ""), "**");
        assert_eq!(retained(&[r], "app", &same, NOW), set(&["x", "y"]));
    }

    #[test]
    fn refusals_name_the_field() {
        let bad = |v: serde_json::Value| {
            serde_json::from_value::<RetentionRule>(v).unwrap().compile("rules[1]").unwrap_err().field
        };
        let scope =
            serde_json::json!({"repository": [{"kind": "doublestar", "decoration": "repoMatches", "pattern": "**"}]});
        assert_eq!(bad(serde_json::json!({"template": "keepAll", "scope_selectors": scope})), "rules[1].template");
        assert_eq!(
            bad(serde_json::json!({"template": "latestPushedK", "scope_selectors": scope})),
            "rules[1].params.latestPushedK"
        );
        assert_eq!(
            bad(
                serde_json::json!({"template": "latestPushedK", "params": {"latestPushedK": -1}, "scope_selectors": scope})
            ),
            "rules[1].params.latestPushedK"
        );
        assert_eq!(bad(serde_json::json!({"template": "always"})), "rules[1].scope_selectors.repository");
        assert_eq!(
            bad(serde_json::json!({"template": "always", "scope_selectors": scope,
                "tag_selectors": [{"kind": "label", "decoration": "someLabels", "pattern": "a"}]})),
            "rules[1].tag_selectors[0].decoration"
        );
    }
}
