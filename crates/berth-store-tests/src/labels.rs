//! Conformance for [`LabelStore`] backends. Label names and repositories carry a fresh
//! prefix and project ids are random, so runs can share a database.

use std::sync::Arc;

use berth_core::store::identity::Page;
use berth_core::store::labels::{LabelError, LabelFilter, LabelScope, LabelStore, LabelUpdate, NewLabel};
use berth_core::store::{MetaStore, NewManifest};

use crate::Cx;

fn new(name: &str, scope: LabelScope) -> NewLabel {
    NewLabel { name: name.into(), description: format!("about {name}"), color: "#0095D3".into(), scope }
}

const ALL: Page = Page { page: 1, page_size: 1000 };

/// Runs the label suite: CRUD, per-scope uniqueness, listing and attachments.
pub async fn labels_conformance(meta: Arc<dyn MetaStore>, s: Arc<dyn LabelStore>) {
    let cx = Cx::new(meta);
    let p = &cx.prefix;
    let proj_a = LabelScope::Project(1_000_000 + i64::from(rand_u16(p)));
    let proj_b = LabelScope::Project(2_000_000 + i64::from(rand_u16(p)));

    // --- create and uniqueness per (name, scope, project) ---
    let g = s.create_label(&new(&format!("{p}-env"), LabelScope::Global)).await.unwrap();
    assert!(g.id > 0);
    assert_eq!((g.name.as_str(), g.scope), (format!("{p}-env").as_str(), LabelScope::Global));
    assert_eq!(g.description, format!("about {p}-env"));
    assert_eq!(g.color, "#0095D3");
    assert!(g.creation_time > 0 && g.update_time == g.creation_time);
    assert_eq!(s.label(g.id).await.unwrap(), Some(g.clone()));
    match s.create_label(&new(&format!("{p}-env"), LabelScope::Global)).await {
        Err(LabelError::Conflict { field: "name", value }) => assert_eq!(value, format!("{p}-env")),
        other => panic!("duplicate global name: {other:?}"),
    }
    let pa = s.create_label(&new(&format!("{p}-env"), proj_a)).await.expect("same name in a project scope");
    let pb = s.create_label(&new(&format!("{p}-env"), proj_b)).await.expect("same name in another project");
    assert_ne!(pa.id, pb.id);
    assert!(matches!(
        s.create_label(&new(&format!("{p}-env"), proj_a)).await,
        Err(LabelError::Conflict { field: "name", .. })
    ));
    let pa2 = s.create_label(&new(&format!("{p}-tier_1"), proj_a)).await.unwrap();
    assert_eq!(s.label(pa.id).await.unwrap().unwrap().scope, proj_a);
    assert_eq!(s.label(-1).await.unwrap(), None);

    // --- listing ---
    let names = |v: &[berth_core::store::labels::Label]| v.iter().map(|l| l.id).collect::<Vec<_>>();
    let (list, total) = s.list_labels(&LabelFilter { scope: Some(proj_a), name: None }, &ALL).await.unwrap();
    assert_eq!((names(&list), total), (vec![pa.id, pa2.id], 2), "a project's labels, by name");
    let (list, total) =
        s.list_labels(&LabelFilter { scope: Some(proj_a), name: None }, &Page { page: 2, page_size: 1 }).await.unwrap();
    assert_eq!((names(&list), total), (vec![pa2.id], 2), "second page, total of all");
    let (list, _) =
        s.list_labels(&LabelFilter { scope: Some(LabelScope::Global), name: Some(p.clone()) }, &ALL).await.unwrap();
    assert_eq!(names(&list), vec![g.id], "global labels only");
    let (list, total) = s.list_labels(&LabelFilter { scope: None, name: Some(p.to_uppercase()) }, &ALL).await.unwrap();
    assert_eq!(total, 4, "all scopes, case-insensitive substring");
    assert_eq!(list.len(), 4);
    let (list, _) =
        s.list_labels(&LabelFilter { scope: Some(proj_a), name: Some(format!("{p}-tier_")) }, &ALL).await.unwrap();
    assert_eq!(names(&list), vec![pa2.id]);
    let (list, total) =
        s.list_labels(&LabelFilter { scope: None, name: Some(format!("{p}-tier%")) }, &ALL).await.unwrap();
    assert_eq!((list.len(), total), (0, 0), "% is literal");

    // --- update ---
    let up =
        s.update_label(pa2.id, &LabelUpdate { description: Some("new".into()), ..Default::default() }).await.unwrap();
    assert_eq!((up.name.as_str(), up.description.as_str(), up.color.as_str()), (pa2.name.as_str(), "new", "#0095D3"));
    assert_eq!((up.scope, up.creation_time), (proj_a, pa2.creation_time));
    assert!(up.update_time >= pa2.update_time);
    match s.update_label(pa2.id, &LabelUpdate { name: Some(pa.name.clone()), ..Default::default() }).await {
        Err(LabelError::Conflict { field: "name", .. }) => {}
        other => panic!("rename onto a taken name: {other:?}"),
    }
    assert_eq!(s.label(pa2.id).await.unwrap(), Some(up.clone()), "a refused update changes nothing");
    let renamed = s
        .update_label(
            pb.id,
            &LabelUpdate { name: Some(format!("{p}-renamed")), color: Some("#fff".into()), ..Default::default() },
        )
        .await
        .unwrap();
    assert_eq!((renamed.name, renamed.color), (format!("{p}-renamed"), "#fff".to_string()));
    let same = s.update_label(g.id, &LabelUpdate { name: Some(g.name.clone()), ..Default::default() }).await;
    assert!(same.is_ok(), "keeping its own name is not a conflict: {same:?}");
    assert!(matches!(s.update_label(-1, &LabelUpdate::default()).await, Err(LabelError::NotFound)));

    // --- attachments ---
    let repo = cx.repo("labels/app");
    let other = cx.repo("labels/other");
    let m1 = NewManifest { tag: None, ..cx.image(&repo, "l1") };
    let m2 = NewManifest { tag: None, ..cx.image(&repo, "l2") };
    cx.put(&m1).await;
    cx.put(&m2).await;
    assert!(s.labels_of(&repo, &m1.digest).await.unwrap().is_empty());
    s.attach_label(&repo, &m1.digest, g.id).await.unwrap();
    s.attach_label(&repo, &m1.digest, pa.id).await.unwrap();
    s.attach_label(&repo, &m2.digest, pa.id).await.unwrap();
    match s.attach_label(&repo, &m1.digest, g.id).await {
        Err(LabelError::Conflict { field: "label", .. }) => {}
        other => panic!("attaching twice: {other:?}"),
    }
    assert!(matches!(s.attach_label(&repo, &m1.digest, -1).await, Err(LabelError::NotFound)), "unknown label");
    assert!(matches!(s.attach_label(&other, &m1.digest, g.id).await, Err(LabelError::NotFound)), "wrong repository");
    let ghost = cx.blob("no-such-manifest").digest;
    assert!(matches!(s.attach_label(&repo, &ghost, g.id).await, Err(LabelError::NotFound)), "unknown digest");
    let ids = |v: Vec<berth_core::store::labels::Label>| v.into_iter().map(|l| l.id).collect::<Vec<_>>();
    assert_eq!(ids(s.labels_of(&repo, &m1.digest).await.unwrap()), vec![g.id, pa.id], "in attach order");
    assert_eq!(ids(s.labels_of(&repo, &m2.digest).await.unwrap()), vec![pa.id]);
    assert!(s.labels_of(&other, &m1.digest).await.unwrap().is_empty());
    let shown = s.labels_of(&repo, &m1.digest).await.unwrap();
    assert_eq!(shown[0], s.label(g.id).await.unwrap().unwrap(), "whole label rows");

    // Detach.
    s.detach_label(&repo, &m1.digest, g.id).await.unwrap();
    assert!(matches!(s.detach_label(&repo, &m1.digest, g.id).await, Err(LabelError::NotFound)), "detached twice");
    assert!(matches!(s.detach_label(&repo, &ghost, g.id).await, Err(LabelError::NotFound)));
    assert_eq!(ids(s.labels_of(&repo, &m1.digest).await.unwrap()), vec![pa.id]);
    s.attach_label(&repo, &m1.digest, g.id).await.expect("re-attach after detach");

    // Deleting a label detaches it everywhere; deleting a manifest drops its attachments.
    s.delete_label(pa.id).await.unwrap();
    assert_eq!(s.label(pa.id).await.unwrap(), None);
    assert!(matches!(s.delete_label(pa.id).await, Err(LabelError::NotFound)));
    assert_eq!(ids(s.labels_of(&repo, &m1.digest).await.unwrap()), vec![g.id]);
    assert!(s.labels_of(&repo, &m2.digest).await.unwrap().is_empty());
    assert!(matches!(s.attach_label(&repo, &m2.digest, pa.id).await, Err(LabelError::NotFound)));
    let again = s.create_label(&new(&format!("{p}-env"), proj_a)).await.expect("a deleted label's name is free");
    assert_ne!(again.id, pa.id);

    assert!(cx.store.delete_manifest(&repo, &m1.digest, None).await.unwrap());
    assert!(s.labels_of(&repo, &m1.digest).await.unwrap().is_empty());
    cx.put(&m1).await;
    assert!(s.labels_of(&repo, &m1.digest).await.unwrap().is_empty(), "a re-pushed artifact starts without labels");
    assert!(s.label(g.id).await.unwrap().is_some(), "the label outlives the artifact");

    for id in [g.id, pa2.id, pb.id, again.id] {
        s.delete_label(id).await.unwrap();
    }
    let (_, total) = s.list_labels(&LabelFilter { scope: None, name: Some(p.clone()) }, &ALL).await.unwrap();
    assert_eq!(total, 0);
}

fn rand_u16(prefix: &str) -> u16 {
    u16::from_str_radix(&prefix[2..6], 16).unwrap_or(7)
}
