//! An event and the bodies it becomes: Harbor's `Default` JSON, CloudEvents 1.0
//! (structured mode) and a Slack message.

use serde::Serialize;
use serde_json::{Map, Value, json};

/// Something that happened in a project, as subsystems report it.
#[derive(Debug, Clone, Serialize)]
pub struct Event {
    /// One of [`crate::policy::EVENT_TYPES`].
    pub event_type: String,
    pub project_id: i64,
    /// Seconds since the epoch.
    pub occur_at: i64,
    pub operator: String,
    /// Harbor's `event_data`: `resources`, `repository`, and whatever else the event
    /// type carries (`custom_attributes`, `replication`, `retention`, …).
    pub data: Map<String, Value>,
}

/// The repository of an artifact event.
pub struct RepoRef<'a> {
    pub project_id: i64,
    pub public: bool,
    /// `project/name…`.
    pub name: &'a str,
}

/// One artifact of an artifact event.
pub struct ArtifactRef<'a> {
    pub digest: &'a str,
    pub tag: &'a str,
}

impl Event {
    /// A push, pull or delete of artifacts in one repository (`project/name…`).
    pub fn artifact(
        event_type: &str,
        repo: &RepoRef<'_>,
        artifacts: &[ArtifactRef<'_>],
        registry_host: &str,
        operator: &str,
        occur_at: i64,
    ) -> Event {
        let RepoRef { project_id, public, name: repo } = *repo;
        let (namespace, name) = repo.split_once('/').unwrap_or(("", repo));
        let resources: Vec<Value> = artifacts
            .iter()
            .map(|a| {
                let reference = if a.tag.is_empty() { format!("@{}", a.digest) } else { format!(":{}", a.tag) };
                let mut r = json!({ "digest": a.digest, "resource_url": format!("{registry_host}/{repo}{reference}") });
                if !a.tag.is_empty() {
                    r["tag"] = json!(a.tag);
                }
                r
            })
            .collect();
        let mut data = Map::new();
        data.insert("resources".into(), Value::Array(resources));
        data.insert(
            "repository".into(),
            json!({
                "date_created": occur_at,
                "name": name,
                "namespace": namespace,
                "repo_full_name": repo,
                "repo_type": if public { "public" } else { "private" },
            }),
        );
        Event { event_type: event_type.into(), project_id, occur_at, operator: operator.into(), data }
    }
}

/// The event type of a test delivery ("send test"): not one of Harbor's, so a receiver
/// that acts on pushes or scans ignores it.
pub const TEST_EVENT: &str = "WEBHOOK_TEST";

impl Event {
    /// The event "send test" delivers: which policy of which project sent it, and who
    /// asked.
    pub fn test(project_id: i64, project: &str, policy_id: i64, policy: &str, operator: &str, occur_at: i64) -> Event {
        let mut data = Map::new();
        data.insert("test".into(), Value::Bool(true));
        data.insert("project".into(), json!({ "id": project_id, "name": project }));
        data.insert("policy".into(), json!({ "id": policy_id, "name": policy }));
        data.insert("message".into(), json!("A test event sent from Berth; nothing happened in the registry."));
        Event { event_type: TEST_EVENT.into(), project_id, occur_at, operator: operator.into(), data }
    }
}

/// Harbor's CloudEvents type names.
pub fn cloudevents_type(event_type: &str) -> String {
    match event_type {
        "PUSH_ARTIFACT" => "harbor.artifact.pushed".into(),
        "PULL_ARTIFACT" => "harbor.artifact.pulled".into(),
        "DELETE_ARTIFACT" => "harbor.artifact.deleted".into(),
        "QUOTA_EXCEED" => "harbor.quota.exceeded".into(),
        "QUOTA_WARNING" => "harbor.quota.warning".into(),
        "TAG_RETENTION" => "harbor.tag_retention.finished".into(),
        "SCANNING_COMPLETED" => "harbor.scan.completed".into(),
        "SCANNING_FAILED" => "harbor.scan.failed".into(),
        "SCANNING_STOPPED" => "harbor.scan.stopped".into(),
        "REPLICATION" => "harbor.replication.status.changed".into(),
        TEST_EVENT => "harbor.webhook.test".into(),
        other => format!("harbor.{}", other.to_lowercase()),
    }
}

/// A body and its content type.
pub struct Body {
    pub content_type: &'static str,
    pub text: String,
}

/// Harbor's `Default` payload.
pub fn default_body(e: &Event) -> Body {
    let v = json!({
        "type": e.event_type,
        "occur_at": e.occur_at,
        "operator": e.operator,
        "event_data": e.data,
    });
    Body { content_type: "application/json", text: v.to_string() }
}

/// CloudEvents 1.0, structured mode: `id` is the delivery's id (the same on every retry,
/// so receivers can drop duplicates), `source` the policy.
pub fn cloudevents_body(e: &Event, id: &str, policy_id: i64) -> Body {
    let time = time::OffsetDateTime::from_unix_timestamp(e.occur_at)
        .ok()
        .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
        .unwrap_or_default();
    let v = json!({
        "specversion": "1.0",
        "id": id,
        "source": format!("/projects/{}/webhook/policies/{policy_id}", e.project_id),
        "type": cloudevents_type(&e.event_type),
        "datacontenttype": "application/json",
        "time": time,
        "operator": e.operator,
        "data": e.data,
    });
    Body { content_type: "application/cloudevents+json", text: v.to_string() }
}

/// A Slack incoming-webhook message: a line saying what happened and the event data as
/// a code block.
pub fn slack_body(e: &Event) -> Body {
    let data = serde_json::to_string_pretty(&e.data).unwrap_or_default();
    let text = format!(
        "Harbor webhook events\n*event_type:* {}\n*occur_at:* <!date^{}^{{date}} {{time}}|{}>\n*operator:* {}\n```{data}```",
        e.event_type, e.occur_at, e.occur_at, e.operator
    );
    Body { content_type: "application/json", text: json!({ "text": text }).to_string() }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn push() -> Event {
        Event::artifact(
            "PUSH_ARTIFACT",
            &RepoRef { project_id: 7, public: false, name: "lib/app/web" },
            &[ArtifactRef { digest: "sha256:ab", tag: "v1" }],
            "reg.example:5000",
            "admin",
            1_700_000_000,
        )
    }

    #[test]
    fn default_payload_has_harbors_shape() {
        let v: Value = serde_json::from_str(&default_body(&push()).text).unwrap();
        assert_eq!(v["type"], "PUSH_ARTIFACT");
        assert_eq!(v["occur_at"], 1_700_000_000);
        assert_eq!(v["operator"], "admin");
        let r = &v["event_data"]["resources"][0];
        assert_eq!((r["digest"].as_str(), r["tag"].as_str()), (Some("sha256:ab"), Some("v1")));
        assert_eq!(r["resource_url"], "reg.example:5000/lib/app/web:v1");
        let repo = &v["event_data"]["repository"];
        assert_eq!((repo["namespace"].as_str(), repo["name"].as_str()), (Some("lib"), Some("app/web")));
        assert_eq!(
            (repo["repo_full_name"].as_str(), repo["repo_type"].as_str()),
            (Some("lib/app/web"), Some("private"))
        );
    }

    #[test]
    fn cloudevents_payload() {
        let b = cloudevents_body(&push(), "id-1", 3);
        assert_eq!(b.content_type, "application/cloudevents+json");
        let v: Value = serde_json::from_str(&b.text).unwrap();
        assert_eq!((v["specversion"].as_str(), v["id"].as_str()), (Some("1.0"), Some("id-1")));
        assert_eq!(v["type"], "harbor.artifact.pushed");
        assert_eq!(v["source"], "/projects/7/webhook/policies/3");
        assert_eq!(v["time"], "2023-11-14T22:13:20Z");
        assert_eq!(v["data"]["resources"][0]["tag"], "v1");
    }

    #[test]
    fn test_event_says_it_is_one() {
        let e = Event::test(7, "lib", 3, "ci", "admin", 1_700_000_000);
        let v: Value = serde_json::from_str(&cloudevents_body(&e, "id-2", 3).text).unwrap();
        assert_eq!(v["type"], "harbor.webhook.test");
        assert_eq!((v["data"]["test"].as_bool(), v["data"]["policy"]["name"].as_str()), (Some(true), Some("ci")));
        let v: Value = serde_json::from_str(&default_body(&e).text).unwrap();
        assert_eq!((v["type"].as_str(), v["event_data"]["project"]["name"].as_str()), (Some(TEST_EVENT), Some("lib")));
    }

    #[test]
    fn slack_message_is_text() {
        let v: Value = serde_json::from_str(&slack_body(&push()).text).unwrap();
        assert!(v["text"].as_str().unwrap().contains("PUSH_ARTIFACT"));
    }
}
