//! The conformance suite for [`WebhookStore`] backends. Each run uses fresh project ids,
//! so runs can share a database.

use std::sync::Arc;

use berth_core::store::webhooks::{NewWebhookPolicy, WebhookError, WebhookStore};

pub async fn webhooks_conformance(store: Arc<dyn WebhookStore>) {
    let project = i64::from(uuid::Uuid::new_v4().as_u128() as u32) + 1_000_000;
    let other = project + 1;
    let new = |project_id, name: &str| NewWebhookPolicy {
        project_id,
        name: name.into(),
        description: "d".into(),
        enabled: true,
        creator: "admin".into(),
        event_types: vec!["PUSH_ARTIFACT".into(), "DELETE_ARTIFACT".into()],
        targets: r#"[{"type":"http","address":"http://127.0.0.1:1/"}]"#.into(),
    };

    let a = store.create_webhook_policy(&new(project, "a")).await.expect("create a");
    assert_eq!((a.project_id, a.name.as_str(), a.enabled), (project, "a", true));
    assert_eq!(a.event_types, ["PUSH_ARTIFACT", "DELETE_ARTIFACT"], "event types keep their order");
    assert_eq!(a.targets, new(project, "a").targets, "targets are kept as given");
    assert!(a.creation_time > 0 && a.update_time == a.creation_time);
    assert_eq!(store.webhook_policy(a.id).await.unwrap().as_ref(), Some(&a));

    // Names are unique per project only.
    assert!(
        matches!(store.create_webhook_policy(&new(project, "a")).await, Err(WebhookError::Conflict(n)) if n == "a")
    );
    let elsewhere = store.create_webhook_policy(&new(other, "a")).await.expect("same name, other project");
    let b = store.create_webhook_policy(&new(project, "b")).await.expect("create b");
    let listed: Vec<i64> = store.webhook_policies(project).await.unwrap().iter().map(|p| p.id).collect();
    assert_eq!(listed, [a.id, b.id]);
    assert_eq!(store.webhook_policies(other).await.unwrap().len(), 1);

    // Update replaces the content, keeps the project, creator and creation time.
    let changed = NewWebhookPolicy {
        project_id: other,
        creator: "someone".into(),
        enabled: false,
        event_types: vec!["PULL_ARTIFACT".into()],
        targets: "[]".into(),
        ..new(project, "a2")
    };
    let a2 = store.update_webhook_policy(a.id, &changed).await.expect("update");
    assert_eq!((a2.project_id, a2.creator.as_str(), a2.creation_time), (project, "admin", a.creation_time));
    assert_eq!((a2.name.as_str(), a2.enabled, a2.targets.as_str()), ("a2", false, "[]"));
    assert_eq!(a2.event_types, ["PULL_ARTIFACT"]);
    assert!(a2.update_time >= a.update_time);
    assert!(matches!(
        store.update_webhook_policy(a.id, &new(project, "b")).await,
        Err(WebhookError::Conflict(n)) if n == "b"
    ));
    assert!(matches!(store.update_webhook_policy(-1, &new(project, "x")).await, Err(WebhookError::NotFound)));

    store.delete_webhook_policy(a.id).await.expect("delete");
    assert!(matches!(store.delete_webhook_policy(a.id).await, Err(WebhookError::NotFound)));
    assert_eq!(store.webhook_policy(a.id).await.unwrap(), None);
    let listed: Vec<i64> = store.webhook_policies(project).await.unwrap().iter().map(|p| p.id).collect();
    assert_eq!(listed, [b.id]);
    store.delete_webhook_policy(b.id).await.unwrap();
    store.delete_webhook_policy(elsewhere.id).await.unwrap();
}
