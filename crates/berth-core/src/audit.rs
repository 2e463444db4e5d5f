//! Audit event types as Harbor 2.13 names them: `<operation>_<resource type>`
//! (`create_artifact`, `delete_repository`, …). The list is what Berth records — every
//! writer of audit entries checks its pair against it in debug builds — so the API's
//! `/auditlog-exts/events`, the purge's `include_event_types` and the web UI all offer
//! exactly the entries that can exist.

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

/// The (operation, resource type) an event type names, if Berth records it. Operations
/// have no `_`, so the first one splits it (resource types may contain one).
pub fn parse_event_type(event_type: &str) -> Option<(&'static str, &'static str)> {
    let (op, res) = event_type.split_once('_')?;
    EVENT_TYPES.iter().copied().find(|&(o, r)| o == op && r == res)
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
}
