//! Audit event types as Harbor 2.13 names them: `<operation>_<resource type>`
//! (`create_artifact`, `delete_repository`, …). The list is what Berth records — every
//! writer of audit entries checks its pair against it in debug builds — so the API's
//! `/auditlog-exts/events`, the purge's `include_event_types`, the `audit_log_disable`
//! setting and the web UI all offer exactly the entries that can exist.

/// Every (operation, resource type) Berth writes to the audit log, by resource type.
/// Resource types are Berth's own where Harbor has none (`tag`, `scanner`, …), and its
/// `configuration` is Harbor's `configure`.
pub const EVENT_TYPES: &[(&str, &str)] = &[
    ("create", "artifact"),
    ("delete", "artifact"),
    ("pull", "artifact"),
    ("create", "artifact-label"),
    ("delete", "artifact-label"),
    ("update", "configuration"),
    ("update", "cve_allowlist"),
    ("create", "export-cve"),
    ("create", "garbage-collection"),
    ("delete", "garbage-collection"),
    ("update", "garbage-collection"),
    ("create", "immutable_rule"),
    ("delete", "immutable_rule"),
    ("update", "immutable_rule"),
    ("update", "job"),
    ("update", "jobservice-queue"),
    ("create", "label"),
    ("delete", "label"),
    ("update", "label"),
    ("create", "member"),
    ("delete", "member"),
    ("update", "member"),
    ("create", "notification_policy"),
    ("delete", "notification_policy"),
    ("update", "notification_policy"),
    ("create", "project"),
    ("delete", "project"),
    ("update", "project"),
    ("create", "purge-audit"),
    ("delete", "purge-audit"),
    ("update", "purge-audit"),
    ("create", "registry"),
    ("delete", "registry"),
    ("update", "registry"),
    ("stop", "replication_execution"),
    ("create", "replication_policy"),
    ("delete", "replication_policy"),
    ("update", "replication_policy"),
    ("delete", "repository"),
    ("create", "retention"),
    ("delete", "retention"),
    ("update", "retention"),
    ("create", "robot"),
    ("delete", "robot"),
    ("update", "robot"),
    ("create", "scan"),
    ("create", "scan-all"),
    ("delete", "scan-all"),
    ("update", "scan-all"),
    ("create", "scanner"),
    ("delete", "scanner"),
    ("update", "scanner"),
    ("update", "signature-trust"),
    ("create", "tag"),
    ("delete", "tag"),
    ("create", "user"),
    ("delete", "user"),
    ("update", "user"),
];

/// Harbor's audit operations before 2.13, the values its purge's `include_operations`
/// takes.
pub const OPERATIONS: &[&str] = &["create", "delete", "pull", "push", "update"];

/// The event type of an entry.
pub fn event_type(operation: &str, resource_type: &str) -> String {
    format!("{operation}_{resource_type}")
}

/// Every event type, in [`EVENT_TYPES`]' order.
pub fn event_types() -> impl Iterator<Item = String> {
    EVENT_TYPES.iter().map(|(o, r)| event_type(o, r))
}

/// Whether Berth records entries of this (operation, resource type).
pub fn is_recorded(operation: &str, resource_type: &str) -> bool {
    EVENT_TYPES.contains(&(operation, resource_type))
}

/// Harbor's names of resource types that Berth names otherwise, accepted wherever a
/// resource or event type is input (`update_configure` is `update_configuration`), so
/// settings and filters written for Harbor work unchanged.
const RESOURCE_TYPE_ALIASES: &[(&str, &str)] = &[("configure", "configuration")];

/// Berth's name of a resource type given in Harbor's spelling, else the name itself.
pub fn resource_type(name: &str) -> &str {
    RESOURCE_TYPE_ALIASES.iter().find(|(alias, _)| *alias == name).map_or(name, |(_, ours)| ours)
}

/// The (operation, resource type) an event type names, if Berth records it; Harbor's
/// aliases ([`resource_type`]) are accepted. Operations have no `_`, so the first one
/// splits it (resource types may contain one).
pub fn parse_event_type(event_type: &str) -> Option<(&'static str, &'static str)> {
    let (op, res) = event_type.split_once('_')?;
    let res = resource_type(res);
    EVENT_TYPES.iter().copied().find(|&(o, r)| o == op && r == res)
}

/// An event type that is not one Berth records.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not an audit event type (GET /api/v2.0/auditlog-exts/events lists them)")]
pub struct UnknownEventType(pub String);

/// Some event types, as settings and parameters list them (`create_artifact,delete_user`):
/// each once, in [`EVENT_TYPES`]' order, so equal sets are equal lists whatever order,
/// spacing, repetition or Harbor aliases they were given in.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventTypeSet(Vec<(&'static str, &'static str)>);

impl EventTypeSet {
    /// A comma-separated list; spaces around items and empty items are ignored, an unknown
    /// item is refused by name.
    pub fn parse(list: &str) -> Result<EventTypeSet, UnknownEventType> {
        let mut chosen = Vec::new();
        for item in list.split(',').map(str::trim).filter(|t| !t.is_empty()) {
            chosen.push(parse_event_type(item).ok_or_else(|| UnknownEventType(item.to_owned()))?);
        }
        Ok(EventTypeSet(EVENT_TYPES.iter().copied().filter(|p| chosen.contains(p)).collect()))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether entries of this (operation, resource type) are in the set.
    pub fn contains(&self, operation: &str, resource_type: &str) -> bool {
        self.0.iter().any(|&(o, r)| o == operation && r == resource_type)
    }

    /// The event types, in [`EVENT_TYPES`]' order.
    pub fn event_types(&self) -> impl Iterator<Item = String> + '_ {
        self.0.iter().map(|(o, r)| event_type(o, r))
    }
}

/// The canonical list: comma-separated without spaces, as stored and shown.
impl std::fmt::Display for EventTypeSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.event_types().collect::<Vec<_>>().join(","))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_types_are_distinct_and_parse_back() {
        let all: Vec<String> = event_types().collect();
        let mut sorted = all.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), all.len(), "no event type twice");
        for (e, pair) in all.iter().zip(EVENT_TYPES) {
            assert_eq!(parse_event_type(e), Some(*pair), "{e}");
        }
        assert!(all.contains(&"create_artifact".to_owned()) && all.contains(&"update_cve_allowlist".to_owned()));
        assert_eq!(parse_event_type("explode_artifact"), None);
        assert_eq!(parse_event_type("create"), None);
        assert!(EVENT_TYPES.iter().all(|(o, _)| !o.contains('_')), "the first _ splits an event type");
    }

    #[test]
    fn harbors_configure_is_berths_configuration() {
        assert_eq!(parse_event_type("update_configure"), Some(("update", "configuration")));
        assert_eq!(parse_event_type("update_configuration"), Some(("update", "configuration")));
        assert_eq!(parse_event_type("create_configure"), None, "only the types Berth records");
        assert_eq!((resource_type("configure"), resource_type("project")), ("configuration", "project"));
        assert!(!event_types().any(|e| e.ends_with("_configure")), "the alias is input only");
    }

    #[test]
    fn sets_are_canonical() {
        let s = EventTypeSet::parse(" delete_user , create_artifact,,update_configure, create_artifact ").unwrap();
        assert_eq!(s.to_string(), "create_artifact,update_configuration,delete_user");
        assert!(s.contains("create", "artifact") && s.contains("update", "configuration"));
        assert!(!s.contains("delete", "artifact"));
        assert_eq!(EventTypeSet::parse(&s.to_string()).unwrap(), s, "the canonical list parses back to itself");
        assert_eq!(s, EventTypeSet::parse("update_configuration,delete_user,create_artifact").unwrap());
        for empty in ["", " ", ",", " , "] {
            let e = EventTypeSet::parse(empty).unwrap();
            assert!(e.is_empty() && e.to_string().is_empty(), "{empty:?}");
        }
        let all = EventTypeSet::parse(&event_types().collect::<Vec<_>>().join(",")).unwrap();
        assert_eq!(all.event_types().collect::<Vec<_>>(), event_types().collect::<Vec<_>>());
    }

    #[test]
    fn unknown_items_are_named() {
        for (list, bad) in [
            ("create_artifact,explode_artifact", "explode_artifact"),
            ("create", "create"),
            ("Create_Artifact", "Create_Artifact"),
            ("create_artifact delete_user", "create_artifact delete_user"),
        ] {
            let e = EventTypeSet::parse(list).unwrap_err();
            assert_eq!(e, UnknownEventType(bad.into()));
            assert!(e.to_string().contains(&format!("{bad:?}")), "{e}");
        }
    }
}
