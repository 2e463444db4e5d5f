//! Conformance for [`PolicyStore`]: documents kept per (kind, project), in creation
//! order, updated and deleted by id within their kind, gone with their project.

use std::collections::BTreeMap;
use std::sync::Arc;

use berth_core::store::identity::{IdentityStore, NewProject, NewUser};
use berth_core::store::policies::PolicyStore;

pub async fn policies_conformance(store: Arc<dyn PolicyStore>, identity: Arc<dyn IdentityStore>) {
    let run = uuid::Uuid::new_v4().simple().to_string();
    let owner = identity
        .create_user(&NewUser {
            username: format!("pol-{}", &run[..12]),
            email: format!("pol-{}@example.com", &run[..12]),
            realname: "Policy Owner".into(),
            comment: String::new(),
            password: "x".into(),
            salt: "y".into(),
            password_version: "sha256".into(),
            sysadmin: false,
        })
        .await
        .unwrap();
    let project =
        |n: &str| NewProject { name: format!("pol-{n}-{}", &run[..12]), owner_id: owner.id, metadata: BTreeMap::new() };
    let p = identity.create_project(&project("a")).await.unwrap();
    let q = identity.create_project(&project("b")).await.unwrap();
    let (kind, other) = (format!("k-{run}"), format!("o-{run}"));

    let a = store.create_policy(&kind, p.id, r#"{"n":1}"#).await.unwrap();
    let b = store.create_policy(&kind, p.id, r#"{"n":2}"#).await.unwrap();
    let c = store.create_policy(&other, p.id, r#"{"n":3}"#).await.unwrap();
    store.create_policy(&kind, q.id, r#"{"n":4}"#).await.unwrap();
    let listed: Vec<String> = store.policies(&kind, p.id).await.unwrap().into_iter().map(|x| x.body).collect();
    assert_eq!(listed, [r#"{"n":1}"#, r#"{"n":2}"#], "per kind and project, oldest first");
    let got = store.policy(&kind, a).await.unwrap().unwrap();
    assert_eq!((got.kind.as_str(), got.project_id, got.id), (kind.as_str(), p.id, a));
    assert!(got.created_at > 0 && got.updated_at >= got.created_at);
    assert_eq!(store.policy(&kind, c).await.unwrap(), None, "another kind's id is not found");

    assert!(store.update_policy(&kind, b, r#"{"n":20}"#).await.unwrap());
    assert_eq!(store.policy(&kind, b).await.unwrap().unwrap().body, r#"{"n":20}"#);
    assert!(!store.update_policy(&other, b, "{}").await.unwrap());
    assert!(store.delete_policy(&kind, a).await.unwrap());
    assert!(!store.delete_policy(&kind, a).await.unwrap());
    assert_eq!(store.policies(&kind, p.id).await.unwrap().len(), 1);

    identity.delete_project(q.id).await.unwrap();
    assert!(store.policies(&kind, q.id).await.unwrap().is_empty(), "gone with the project");

    // Project 0: system-wide documents (replication registries and policies), in no
    // project and apart from every project's.
    let sys = format!("sys-{run}");
    let s1 = store.create_policy(&sys, 0, r#"{"s":1}"#).await.unwrap();
    let s2 = store.create_policy(&sys, 0, r#"{"s":2}"#).await.unwrap();
    store.create_policy(&sys, p.id, r#"{"s":3}"#).await.unwrap();
    let listed: Vec<String> = store.policies(&sys, 0).await.unwrap().into_iter().map(|x| x.body).collect();
    assert_eq!(listed, [r#"{"s":1}"#, r#"{"s":2}"#], "system-wide ones only, oldest first");
    assert_eq!(store.policies(&sys, p.id).await.unwrap().len(), 1);
    let got = store.policy(&sys, s1).await.unwrap().unwrap();
    assert_eq!((got.project_id, got.body.as_str()), (0, r#"{"s":1}"#));
    assert!(store.update_policy(&sys, s2, r#"{"s":20}"#).await.unwrap());
    assert_eq!(store.policy(&sys, s2).await.unwrap().unwrap().body, r#"{"s":20}"#);
    assert!(store.delete_policy(&sys, s1).await.unwrap());
    identity.delete_project(p.id).await.unwrap();
    assert_eq!(store.policies(&sys, 0).await.unwrap().len(), 1, "deleting a project leaves system-wide ones");
}
