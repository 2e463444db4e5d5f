//! Harbor's webhook policy as the API reads and writes it, and its validation.

use serde::{Deserialize, Serialize};

/// Harbor's event types. Policies may name any of them; the artifact events are
/// delivered now, the others when their subsystems call [`crate::Webhooks::notify`].
pub const EVENT_TYPES: &[&str] = &[
    PUSH_ARTIFACT,
    PULL_ARTIFACT,
    DELETE_ARTIFACT,
    "QUOTA_EXCEED",
    "QUOTA_WARNING",
    "TAG_RETENTION",
    "SCANNING_COMPLETED",
    "SCANNING_FAILED",
    "SCANNING_STOPPED",
    "REPLICATION",
];

pub const PUSH_ARTIFACT: &str = "PUSH_ARTIFACT";
pub const PULL_ARTIFACT: &str = "PULL_ARTIFACT";
pub const DELETE_ARTIFACT: &str = "DELETE_ARTIFACT";

/// Harbor's notify types (target `type`).
pub const NOTIFY_TYPES: &[&str] = &["http", "slack"];

/// Payload formats by notify type: Slack gets its own message shape.
pub const PAYLOAD_FORMATS: &[(&str, &[&str])] = &[("http", &["Default", "CloudEvents"]), ("slack", &["Default"])];

/// Harbor's `WebhookTargetObject`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Target {
    #[serde(rename = "type", default)]
    pub kind: String,
    #[serde(default)]
    pub address: String,
    #[serde(default)]
    pub auth_header: String,
    #[serde(default)]
    pub skip_cert_verify: bool,
    #[serde(default)]
    pub payload_format: String,
}

/// A refusal naming the offending field, as Harbor's clients expect in a 400.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

fn bad(field: impl Into<String>, message: impl Into<String>) -> FieldError {
    FieldError { field: field.into(), message: message.into() }
}

/// Checks a policy's name, event types and targets; fills each target's default
/// payload format (`Default`).
pub fn validate(name: &str, event_types: &[String], targets: &mut [Target]) -> Result<(), FieldError> {
    if name.trim().is_empty() {
        return Err(bad("name", "is required"));
    }
    if name.len() > 256 {
        return Err(bad("name", "is longer than 256 characters"));
    }
    if event_types.is_empty() {
        return Err(bad("event_types", "name at least one event type"));
    }
    for (i, t) in event_types.iter().enumerate() {
        if !EVENT_TYPES.contains(&t.as_str()) {
            return Err(bad(
                format!("event_types[{i}]"),
                format!("unknown event type {t:?}; supported: {}", EVENT_TYPES.join(", ")),
            ));
        }
    }
    if targets.is_empty() {
        return Err(bad("targets", "name at least one target"));
    }
    for (i, t) in targets.iter_mut().enumerate() {
        let formats = PAYLOAD_FORMATS.iter().find(|(k, _)| *k == t.kind).map(|(_, f)| *f).ok_or_else(|| {
            bad(
                format!("targets[{i}].type"),
                format!("unknown notify type {:?}; supported: {}", t.kind, NOTIFY_TYPES.join(", ")),
            )
        })?;
        match reqwest::Url::parse(&t.address) {
            Ok(u) if matches!(u.scheme(), "http" | "https") && u.host_str().is_some() => {}
            Ok(_) => {
                return Err(bad(format!("targets[{i}].address"), "must be an http:// or https:// URL with a host"));
            }
            Err(e) => return Err(bad(format!("targets[{i}].address"), format!("{:?} is not a URL: {e}", t.address))),
        }
        if t.payload_format.is_empty() {
            t.payload_format = "Default".into();
        }
        if !formats.contains(&t.payload_format.as_str()) {
            return Err(bad(
                format!("targets[{i}].payload_format"),
                format!(
                    "{:?} is not a payload format of {}; supported: {}",
                    t.payload_format,
                    t.kind,
                    formats.join(", ")
                ),
            ));
        }
        if t.auth_header.contains(['\r', '\n']) {
            return Err(bad(format!("targets[{i}].auth_header"), "must be one line"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(kind: &str, address: &str, format: &str) -> Target {
        Target {
            kind: kind.into(),
            address: address.into(),
            auth_header: String::new(),
            skip_cert_verify: false,
            payload_format: format.into(),
        }
    }

    fn check(types: &[&str], mut targets: Vec<Target>) -> Result<Vec<Target>, String> {
        let types: Vec<String> = types.iter().map(|s| s.to_string()).collect();
        validate("p", &types, &mut targets).map(|()| targets).map_err(|e| e.field)
    }

    #[test]
    fn refusals_name_the_field() {
        let ok = target("http", "http://127.0.0.1:9/hook", "");
        assert_eq!(check(&["PUSH_ARTIFACT", "NOPE"], vec![ok.clone()]), Err("event_types[1]".into()));
        assert_eq!(check(&[], vec![ok.clone()]), Err("event_types".into()));
        assert_eq!(check(&["PUSH_ARTIFACT"], vec![]), Err("targets".into()));
        assert_eq!(check(&["PUSH_ARTIFACT"], vec![target("email", "http://x/", "")]), Err("targets[0].type".into()));
        assert_eq!(check(&["PUSH_ARTIFACT"], vec![target("http", "not a url", "")]), Err("targets[0].address".into()));
        assert_eq!(check(&["PUSH_ARTIFACT"], vec![target("http", "ftp://x/", "")]), Err("targets[0].address".into()));
        assert_eq!(
            check(&["PUSH_ARTIFACT"], vec![ok.clone(), target("slack", "https://h/", "CloudEvents")]),
            Err("targets[1].payload_format".into())
        );
        assert_eq!(
            check(&["PUSH_ARTIFACT"], vec![target("http", "http://x/", "Raw")]),
            Err("targets[0].payload_format".into())
        );
        let mut ok = check(&["PUSH_ARTIFACT", "TAG_RETENTION"], vec![ok]).unwrap();
        assert_eq!(ok.remove(0).payload_format, "Default");
    }
}
