//! Harbor's `RetentionPolicy` document as the API reads and writes it, its validation
//! (naming the field), and the metadata endpoint's catalogue of templates and selectors.
//! Rule evaluation is `berth_core::policy` (shared with immutability).

use berth_core::policy::{PolicyError, RETENTION_TEMPLATES, RetentionMatcher, RetentionRule};
use berth_jobs::CronExpr;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

/// Harbor's limit of rules per policy.
pub const MAX_RULES: usize = 15;

/// Harbor's `RetentionPolicy`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    #[serde(default)]
    pub id: i64,
    #[serde(default = "or")]
    pub algorithm: String,
    #[serde(default)]
    pub rules: Vec<RetentionRule>,
    #[serde(default)]
    pub trigger: Option<Trigger>,
    #[serde(default)]
    pub scope: Option<Scope>,
}

fn or() -> String {
    "or".into()
}

/// Harbor's `RetentionRuleTrigger`: `kind` is always `Schedule`; `settings.cron` empty
/// means manual runs only.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Trigger {
    pub kind: String,
    #[serde(default)]
    pub settings: Map<String, Value>,
    #[serde(default)]
    pub references: Value,
}

/// Harbor's `RetentionPolicyScope`: the project the policy belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scope {
    pub level: String,
    #[serde(rename = "ref")]
    pub reference: i64,
}

/// A policy checked and ready to run.
pub struct Validated {
    pub project_id: i64,
    pub rules: Vec<RetentionMatcher>,
    /// The schedule, if `trigger.settings.cron` is set.
    pub cron: Option<CronExpr>,
}

fn refuse(field: impl Into<String>, message: impl Into<String>) -> PolicyError {
    PolicyError { field: field.into(), message: message.into() }
}

impl Policy {
    /// Validates the policy as Harbor does, naming the offending field.
    pub fn validate(&self) -> Result<Validated, PolicyError> {
        if self.algorithm != "or" {
            return Err(refuse("algorithm", format!("{:?} is not supported; use \"or\"", self.algorithm)));
        }
        if self.rules.len() > MAX_RULES {
            return Err(refuse("rules", format!("at most {MAX_RULES} rules are allowed")));
        }
        let rules = self.compiled()?;
        let scope = self.scope.as_ref().ok_or_else(|| refuse("scope", "is required"))?;
        if scope.level != "project" {
            return Err(refuse("scope.level", format!("{:?} is not supported; use \"project\"", scope.level)));
        }
        if scope.reference <= 0 {
            return Err(refuse("scope.ref", "must be the id of a project"));
        }
        let cron = match &self.trigger {
            None => None,
            Some(t) => {
                if t.kind != "Schedule" {
                    return Err(refuse("trigger.kind", format!("{:?} is not supported; use \"Schedule\"", t.kind)));
                }
                match t.settings.get("cron") {
                    None | Some(Value::Null) => None,
                    Some(Value::String(c)) if c.trim().is_empty() => None,
                    Some(Value::String(c)) => {
                        Some(CronExpr::parse(c).map_err(|e| refuse("trigger.settings.cron", e.message))?)
                    }
                    Some(_) => return Err(refuse("trigger.settings.cron", "must be a string")),
                }
            }
        };
        Ok(Validated { project_id: scope.reference, rules, cron })
    }

    /// The rules compiled (disabled ones included: they cover nothing).
    pub fn compiled(&self) -> Result<Vec<RetentionMatcher>, PolicyError> {
        self.rules.iter().enumerate().map(|(i, r)| r.compile(&format!("rules[{i}]"))).collect()
    }

    /// Whether any rule selects by label (labels are read only then).
    pub fn uses_labels(&self) -> bool {
        self.rules.iter().any(|r| r.tag_selectors.iter().any(|s| s.kind == "label"))
    }
}

/// `GET /retentions/metadatas`: Harbor's `RetentionMetadata`.
pub fn metadata() -> Value {
    let text = |t: &str| match t {
        "latestPushedK" => "retain the most recently pushed # artifacts",
        "latestPulledN" => "retain the most recently pulled # artifacts",
        "latestActiveK" => "retain the most recently pushed or pulled # artifacts",
        "nDaysSinceLastPush" => "retain the artifacts pushed within the last # days",
        "nDaysSinceLastPull" => "retain the artifacts pulled within the last # days",
        "lastXDays" => "retain the artifacts pushed in the last # days",
        "always" => "retain always",
        _ => "retain none",
    };
    let templates: Vec<Value> = RETENTION_TEMPLATES
        .iter()
        .map(|(t, p)| {
            let unit = if t.contains("Days") { "DAYS" } else { "COUNT" };
            let params: Vec<Value> = p.iter().map(|_| json!({"type": "int", "unit": unit, "required": true})).collect();
            json!({"rule_template": t, "display_text": text(t), "action": "retain", "params": params})
        })
        .collect();
    json!({
        "templates": templates,
        "scope_selectors": [{"display_text": "Repositories", "kind": "doublestar",
                             "decorations": ["repoMatches", "repoExcludes"]}],
        "tag_selectors": [
            {"display_text": "Tags", "kind": "doublestar", "decorations": ["matches", "excludes"]},
            {"display_text": "Labels", "kind": "label", "decorations": ["withLabels", "withoutLabels"]}
        ]
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(v: Value) -> Policy {
        serde_json::from_value(v).unwrap()
    }

    fn rule(template: &str) -> Value {
        json!({"template": template, "params": {template: 1},
               "tag_selectors": [{"kind": "doublestar", "decoration": "matches", "pattern": "**"}],
               "scope_selectors": {"repository": [{"kind": "doublestar", "decoration": "repoMatches", "pattern": "**"}]}})
    }

    #[test]
    fn valid_policy_and_its_schedule() {
        let p = policy(json!({"algorithm": "or", "rules": [rule("latestPushedK"), rule("always")],
            "trigger": {"kind": "Schedule", "settings": {"cron": "0 0 0 * * *"}},
            "scope": {"level": "project", "ref": 3}}));
        let v = p.validate().unwrap();
        assert_eq!((v.project_id, v.rules.len()), (3, 2));
        assert_eq!(v.cron.unwrap().as_str(), "0 0 0 * * *");
        let manual =
            policy(json!({"rules": [rule("always")], "trigger": {"kind": "Schedule", "settings": {"cron": ""}},
            "scope": {"level": "project", "ref": 3}}));
        assert!(manual.validate().unwrap().cron.is_none());
    }

    #[test]
    fn refusals_name_the_field() {
        let field = |v: Value| match policy(v).validate() {
            Ok(_) => panic!("accepted"),
            Err(e) => e.field,
        };
        let scope = json!({"level": "project", "ref": 1});
        assert_eq!(field(json!({"algorithm": "and", "scope": scope})), "algorithm");
        assert_eq!(field(json!({"rules": [rule("sometimes")], "scope": scope})), "rules[0].template");
        let mut bad = rule("always");
        bad["tag_selectors"][0]["pattern"] = json!("[");
        assert_eq!(field(json!({"rules": [bad], "scope": scope})), "rules[0].tag_selectors[0].pattern");
        assert_eq!(
            field(
                json!({"rules": [], "scope": scope, "trigger": {"kind": "Schedule", "settings": {"cron": "0 0 * * *"}}})
            ),
            "trigger.settings.cron"
        );
        assert_eq!(field(json!({"rules": [], "scope": scope, "trigger": {"kind": "Event"}})), "trigger.kind");
        assert_eq!(field(json!({"rules": []})), "scope");
        assert_eq!(field(json!({"rules": [], "scope": {"level": "system", "ref": 1}})), "scope.level");
        let many: Vec<Value> = (0..16).map(|_| rule("always")).collect();
        assert_eq!(field(json!({"rules": many, "scope": scope})), "rules");
    }

    #[test]
    fn metadata_lists_every_template() {
        let m = metadata();
        assert_eq!(m["templates"].as_array().unwrap().len(), RETENTION_TEMPLATES.len());
        assert_eq!(m["templates"][0]["rule_template"], "latestPushedK");
    }
}
