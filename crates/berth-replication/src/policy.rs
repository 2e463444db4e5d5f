//! Harbor's replication policy (`src/pkg/reg/model/policy.go`): which registry is the
//! source and which the destination (one of them is this registry, id 0), what to copy
//! (filters), where (destination namespace and how much of the source path it
//! replaces), when (trigger) and how (override, deletion, speed, chunks). Kept as a
//! document in the [`PolicyStore`](berth_core::store::policies::PolicyStore).

use berth_core::policy::{Compiled, Selector};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The `PolicyStore` kind of replication policies.
pub const POLICY_KIND: &str = "replication-policy";

/// Harbor's `ReplicationTrigger`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Trigger {
    #[serde(rename = "type", default = "manual")]
    pub kind: String,
    #[serde(default)]
    pub trigger_settings: TriggerSettings,
}

fn manual() -> String {
    "manual".into()
}

impl Default for Trigger {
    fn default() -> Self {
        Trigger { kind: manual(), trigger_settings: TriggerSettings::default() }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TriggerSettings {
    #[serde(default)]
    pub cron: String,
}

/// Harbor's `ReplicationFilter`: `value` is a pattern (name, tag), a list of label names
/// (label) or a resource type (resource).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Filter {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub value: Value,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub decoration: String,
}

/// The stored policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Policy {
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub creator: String,
    /// 0: this registry.
    pub src_registry_id: i64,
    pub dest_registry_id: i64,
    #[serde(default)]
    pub dest_namespace: String,
    /// -1 (legacy): `namespace/<last part>`; 0: prefix the whole path; k: replace the
    /// first k parts of the path.
    #[serde(default = "minus_one")]
    pub dest_namespace_replace_count: i32,
    #[serde(default)]
    pub trigger: Trigger,
    #[serde(default)]
    pub filters: Vec<Filter>,
    #[serde(default)]
    pub replicate_deletion: bool,
    #[serde(default)]
    pub r#override: bool,
    #[serde(default = "yes")]
    pub enabled: bool,
    /// KiB/s per task; 0 or -1: no limit.
    #[serde(default)]
    pub speed: i32,
    #[serde(default)]
    pub copy_by_chunk: bool,
    #[serde(default)]
    pub single_active_replication: bool,
}

fn minus_one() -> i32 {
    -1
}

fn yes() -> bool {
    true
}

/// A refused policy: the field and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct PolicyError {
    pub field: String,
    pub message: String,
}

fn refuse(field: impl Into<String>, message: impl Into<String>) -> PolicyError {
    PolicyError { field: field.into(), message: message.into() }
}

/// The filters compiled for matching.
#[derive(Debug, Clone, Default)]
pub struct Filters {
    name: Option<Compiled>,
    /// The name pattern, for registries without a catalog (which namespaces to list).
    name_pattern: String,
    tag: Option<Compiled>,
    labels: Option<(Vec<String>, bool)>,
    /// `image`: only image artifacts.
    images_only: bool,
}

fn compile(pattern: &str, decoration: &str, field: &str) -> Result<Compiled, PolicyError> {
    let sel = Selector {
        kind: "doublestar".into(),
        decoration: if decoration.is_empty() { "matches".into() } else { decoration.to_owned() },
        pattern: pattern.to_owned(),
        extras: String::new(),
    };
    Compiled::new(&sel, field, false).map_err(|e| refuse(e.field, e.message))
}

impl Filters {
    pub fn compile(filters: &[Filter]) -> Result<Filters, PolicyError> {
        let mut out = Filters::default();
        for (i, f) in filters.iter().enumerate() {
            let at = format!("filters[{i}]");
            let text = || match &f.value {
                Value::String(s) => Ok(s.clone()),
                Value::Null => Ok(String::new()),
                _ => Err(refuse(format!("{at}.value"), "must be a pattern (a string)")),
            };
            match f.kind.as_str() {
                "name" => {
                    if f.decoration == "excludes" {
                        return Err(refuse(format!("{at}.decoration"), "a name filter only matches"));
                    }
                    out.name_pattern = text()?;
                    out.name = Some(compile(&out.name_pattern, "", &at)?);
                }
                "tag" => out.tag = Some(compile(&text()?, &f.decoration, &at)?),
                "label" => {
                    let names: Vec<String> = match &f.value {
                        Value::Array(a) => a
                            .iter()
                            .map(|v| v.as_str().map(str::to_owned))
                            .collect::<Option<_>>()
                            .ok_or_else(|| refuse(format!("{at}.value"), "must be a list of label names"))?,
                        Value::Null => Vec::new(),
                        _ => return Err(refuse(format!("{at}.value"), "must be a list of label names")),
                    };
                    let excludes = match f.decoration.as_str() {
                        "" | "matches" => false,
                        "excludes" => true,
                        d => {
                            return Err(refuse(
                                format!("{at}.decoration"),
                                format!("{d:?} is not one of matches, excludes"),
                            ));
                        }
                    };
                    out.labels = Some((names, excludes));
                }
                "resource" => match text()?.as_str() {
                    "image" => out.images_only = true,
                    "" | "artifact" => out.images_only = false,
                    v => return Err(refuse(format!("{at}.value"), format!("{v:?} is not one of image, artifact"))),
                },
                t => {
                    return Err(refuse(
                        format!("{at}.type"),
                        format!("{t:?} is not one of name, tag, label, resource"),
                    ));
                }
            }
        }
        Ok(out)
    }

    /// Whether the repository (its full name, `project/…`) is selected.
    pub fn repository(&self, name: &str) -> bool {
        self.name.as_ref().is_none_or(|n| n.selects(name))
    }

    /// Whether an artifact with these tags, labels and (Harbor's) type is selected.
    pub fn artifact(&self, tags: &[String], labels: &[String], kind: Option<&str>) -> bool {
        if self.images_only && kind.is_some_and(|k| !k.eq_ignore_ascii_case("image")) {
            return false;
        }
        if let Some((want, excludes)) = &self.labels {
            let has_all = want.iter().all(|w| labels.contains(w));
            let has_any = want.iter().any(|w| labels.contains(w));
            if (*excludes && has_any) || (!*excludes && !has_all) {
                return false;
            }
        }
        self.tag.as_ref().is_none_or(|t| t.selects_artifact(tags))
    }

    /// The tags of an artifact a tag filter keeps (all without one).
    pub fn tags(&self, tags: &[String]) -> Vec<String> {
        match &self.tag {
            Some(t) => tags.iter().filter(|x| t.selects(x)).cloned().collect(),
            None => tags.to_vec(),
        }
    }

    /// Namespaces the name filter names literally (`team/**` → `team`), for registries
    /// that cannot list everything.
    pub fn namespaces(&self) -> Vec<String> {
        let lit: String = self.name_pattern.chars().take_while(|c| !"*?[{\\".contains(*c)).collect();
        match lit.split_once('/') {
            Some((ns, _)) if !ns.is_empty() => vec![ns.to_owned()],
            _ => Vec::new(),
        }
    }
}

/// Where `repo` goes: Harbor's `replaceNamespace`.
pub fn dest_repository(repo: &str, namespace: &str, replace_count: i32) -> Result<String, PolicyError> {
    let namespace = namespace.trim_matches('/');
    if namespace.is_empty() {
        return Ok(repo.to_owned());
    }
    let parts: Vec<&str> = repo.split('/').collect();
    let (path, last) = parts.split_at(parts.len() - 1);
    match replace_count {
        -1 => Ok(format!("{namespace}/{}", last[0])),
        0 => Ok(format!("{namespace}/{repo}")),
        k if k > 0 && (k as usize) <= path.len() => {
            let rest = parts[k as usize..].join("/");
            Ok(format!("{namespace}/{rest}"))
        }
        k => Err(refuse(
            "dest_namespace_replace_count",
            format!("{k} cannot apply to {repo:?}, which has {} namespace part(s)", path.len()),
        )),
    }
}

impl Policy {
    /// Everything a client can get wrong, named by field. `registry_exists` answers for
    /// the ids it is given.
    pub fn validate(&self) -> Result<Filters, PolicyError> {
        if self.name.trim().is_empty() {
            return Err(refuse("name", "is required"));
        }
        if self.name.len() > 256 {
            return Err(refuse("name", "must be at most 256 characters"));
        }
        match (self.src_registry_id, self.dest_registry_id) {
            (0, 0) => {
                return Err(refuse("src_registry", "either the source or the destination must be a remote registry"));
            }
            (a, b) if a != 0 && b != 0 => {
                return Err(refuse("dest_registry", "either the source or the destination must be this registry"));
            }
            (a, b) if a < 0 || b < 0 => return Err(refuse("src_registry", "registry ids are positive")),
            _ => {}
        }
        if self.dest_namespace_replace_count < -1 {
            return Err(refuse("dest_namespace_replace_count", "must be -1 or more"));
        }
        let ns = self.dest_namespace.trim_matches('/');
        if !ns.is_empty()
            && !ns.split('/').all(|p| {
                !p.is_empty() && p.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
            })
        {
            return Err(refuse(
                "dest_namespace",
                format!("{ns:?} is not a valid namespace (lower-case letters, digits, . _ - and /)"),
            ));
        }
        match self.trigger.kind.as_str() {
            "manual" => {}
            "scheduled" => {
                berth_jobs::CronExpr::parse(&self.trigger.trigger_settings.cron)
                    .map_err(|e| refuse("trigger.trigger_settings.cron", e.to_string()))?;
            }
            "event_based" if self.src_registry_id == 0 => {}
            "event_based" => return Err(refuse("trigger.type", "event_based needs this registry as the source")),
            t => return Err(refuse("trigger.type", format!("{t:?} is not one of manual, scheduled, event_based"))),
        }
        if self.speed < -1 {
            return Err(refuse("speed", "must be -1 (no limit) or more"));
        }
        Filters::compile(&self.filters)
    }

    /// KiB/s, if limited.
    pub fn speed_limit(&self) -> Option<u64> {
        (self.speed > 0).then_some(self.speed as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn policy(filters: Value) -> Policy {
        serde_json::from_value(json!({
            "name": "p", "src_registry_id": 0, "dest_registry_id": 1, "filters": filters,
        }))
        .unwrap()
    }

    #[test]
    fn namespace_rewriting_follows_harbor() {
        let r = "a/b/c/img";
        assert_eq!(dest_repository(r, "n", -1).unwrap(), "n/img");
        assert_eq!(dest_repository(r, "n", 0).unwrap(), "n/a/b/c/img");
        assert_eq!(dest_repository(r, "n", 1).unwrap(), "n/b/c/img");
        assert_eq!(dest_repository(r, "n", 3).unwrap(), "n/img");
        assert_eq!(dest_repository(r, "n", 4).unwrap_err().field, "dest_namespace_replace_count");
        assert_eq!(dest_repository(r, "", 2).unwrap(), r, "no namespace: unchanged");
        assert_eq!(dest_repository("library/hello", "mirror", -1).unwrap(), "mirror/hello");
        assert_eq!(dest_repository("library/hello", "m/x", 1).unwrap(), "m/x/hello");
    }

    #[test]
    fn filters_select_like_harbor() {
        let f = policy(json!([
            {"type": "name", "value": "library/**"},
            {"type": "tag", "value": "v*", "decoration": "matches"},
            {"type": "label", "value": ["prod"]},
            {"type": "resource", "value": "image"},
        ]))
        .validate()
        .unwrap();
        assert!(f.repository("library/a/b"));
        assert!(!f.repository("team/a"));
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert!(f.artifact(&s(&["v1", "latest"]), &s(&["prod"]), Some("IMAGE")));
        assert!(!f.artifact(&s(&["latest"]), &s(&["prod"]), None), "tag");
        assert!(!f.artifact(&s(&["v1"]), &s(&[]), None), "label");
        assert!(!f.artifact(&s(&["v1"]), &s(&["prod"]), Some("CHART")), "resource");
        assert_eq!(f.tags(&s(&["v1", "latest", "v2"])), s(&["v1", "v2"]));
        assert_eq!(f.namespaces(), vec!["library".to_owned()]);

        let ex = policy(json!([{"type": "tag", "value": "*-rc", "decoration": "excludes"},
                               {"type": "label", "value": ["wip"], "decoration": "excludes"}]))
        .validate()
        .unwrap();
        assert!(ex.artifact(&s(&["1.0"]), &s(&[]), None));
        assert!(!ex.artifact(&s(&["1.0-rc"]), &s(&[]), None));
        assert!(!ex.artifact(&s(&["1.0"]), &s(&["wip"]), None));
        assert!(ex.repository("anything/at/all"), "no name filter");
    }

    #[test]
    fn bad_policies_name_the_field() {
        let field = |v: Value| serde_json::from_value::<Policy>(v).unwrap().validate().unwrap_err().field;
        let base = json!({"name": "p", "src_registry_id": 0, "dest_registry_id": 1});
        let with = |k: &str, v: Value| {
            let mut b = base.clone();
            b[k] = v;
            b
        };
        assert_eq!(field(with("name", json!(""))), "name");
        assert_eq!(field(with("dest_registry_id", json!(0))), "src_registry");
        assert_eq!(field(json!({"name": "p", "src_registry_id": 1, "dest_registry_id": 2})), "dest_registry");
        assert_eq!(field(with("dest_namespace", json!("Bad Name"))), "dest_namespace");
        assert_eq!(field(with("dest_namespace_replace_count", json!(-2))), "dest_namespace_replace_count");
        assert_eq!(field(with("trigger", json!({"type": "hourly"}))), "trigger.type");
        assert_eq!(
            field(with("trigger", json!({"type": "scheduled", "trigger_settings": {"cron": "nope"}}))),
            "trigger.trigger_settings.cron"
        );
        assert_eq!(
            field(
                json!({"name": "p", "src_registry_id": 1, "dest_registry_id": 0, "trigger": {"type": "event_based"}})
            ),
            "trigger.type"
        );
        assert_eq!(field(with("filters", json!([{"type": "size", "value": "1"}]))), "filters[0].type");
        assert_eq!(
            field(with("filters", json!([{"type": "tag", "value": "[", "decoration": "matches"}]))),
            "filters[0].pattern"
        );
        assert_eq!(field(with("filters", json!([{"type": "label", "value": "x"}]))), "filters[0].value");
        assert_eq!(field(with("filters", json!([{"type": "resource", "value": "chart"}]))), "filters[0].value");
    }
}
