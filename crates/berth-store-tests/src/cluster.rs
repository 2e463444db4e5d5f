//! Conformance for [`ClusterStore`]: the first claim wins, atomically, and later claims
//! report what was recorded.

use std::sync::Arc;

use berth_core::store::cluster::ClusterStore;

pub async fn cluster_conformance(store: Arc<dyn ClusterStore>) {
    // Names are unique per run so runs can share one database.
    let name = format!("conformance.{}", uuid::Uuid::new_v4().simple());
    assert_eq!(store.setting(&name).await.unwrap(), None);
    assert_eq!(store.claim_setting(&name, "first").await.unwrap(), "first");
    assert_eq!(store.claim_setting(&name, "second").await.unwrap(), "first", "the first claim stays");
    assert_eq!(store.setting(&name).await.unwrap().as_deref(), Some("first"));
    store.replace_setting(&name, "replaced").await.unwrap();
    assert_eq!(store.setting(&name).await.unwrap().as_deref(), Some("replaced"));
    assert_eq!(store.claim_setting(&name, "third").await.unwrap(), "replaced");
    let fresh = format!("{name}.fresh");
    store.replace_setting(&fresh, "new").await.unwrap();
    assert_eq!(store.setting(&fresh).await.unwrap().as_deref(), Some("new"), "replace creates too");

    // Several at once, and listing by prefix.
    let group = format!("{name}.group.");
    let entries: Vec<(String, String)> =
        ["b", "a", "c"].iter().map(|k| (format!("{group}{k}"), format!("v{k}"))).collect();
    store.replace_settings(&entries).await.unwrap();
    store.replace_settings(&[(format!("{group}a"), "changed".into())]).await.unwrap();
    store.replace_settings(&[]).await.unwrap();
    let listed = store.settings_with_prefix(&group).await.unwrap();
    let want: Vec<(String, String)> = [("a", "changed"), ("b", "vb"), ("c", "vc")]
        .iter()
        .map(|(k, v)| (format!("{group}{k}"), v.to_string()))
        .collect();
    assert_eq!(listed, want);
    assert_eq!(store.settings_with_prefix(&format!("{group}b")).await.unwrap(), want[1..2].to_vec());
    assert_eq!(store.settings_with_prefix(&format!("{name}.none.")).await.unwrap(), vec![]);
    // A prefix is literal: LIKE's wildcards match only themselves.
    assert_eq!(store.settings_with_prefix(&format!("{name}.group_")).await.unwrap(), vec![]);
    assert_eq!(store.settings_with_prefix(&format!("{name}%")).await.unwrap(), vec![]);

    // Revoked sessions: refused until their end, then forgotten by the purge.
    let key = format!("{name}.session");
    let now = 1_000_000;
    assert!(!store.session_revoked(&key, now).await.unwrap());
    store.revoke_session(&key, now + 60).await.unwrap();
    store.revoke_session(&key, now + 60).await.unwrap(); // twice: logging out again is fine
    assert!(store.session_revoked(&key, now).await.unwrap());
    assert!(!store.session_revoked(&key, now + 60).await.unwrap(), "ends at its time");
    let other = format!("{name}.other");
    store.revoke_session(&other, now + 3600).await.unwrap();
    assert!(store.purge_revoked_sessions(now + 61).await.unwrap() >= 1);
    assert!(store.session_revoked(&other, now + 61).await.unwrap(), "the purge keeps running revocations");
    assert!(!store.session_revoked(&key, now).await.unwrap(), "purged");

    // Many instances starting at once: exactly one value wins and everyone sees it.
    let race = format!("{name}.race");
    let mut tasks = Vec::new();
    for i in 0..12 {
        let (store, race) = (Arc::clone(&store), race.clone());
        tasks.push(tokio::spawn(async move { store.claim_setting(&race, &format!("v{i}")).await }));
    }
    let mut seen = Vec::new();
    for t in tasks {
        seen.push(t.await.expect("task").expect("claim"));
    }
    assert!(seen.windows(2).all(|w| w[0] == w[1]), "all claimers agree: {seen:?}");
    assert_eq!(store.setting(&race).await.unwrap().as_ref(), Some(&seen[0]));

    // Named locks: one holder at a time across every handle on the database; another
    // name is free meanwhile; released, the waiter gets it.
    let lname = format!("{name}.lock");
    let held = store.lock(&lname).await.unwrap();
    let other = tokio::time::timeout(std::time::Duration::from_secs(10), store.lock(&format!("{lname}.other")))
        .await
        .expect("another name is not held");
    other.unwrap().release().await;
    let waiter = {
        let (store, lname) = (Arc::clone(&store), lname.clone());
        tokio::spawn(async move { store.lock(&lname).await.map(|_l| ()) })
    };
    // The waiter cannot get it while it is held (it would finish at once if it could).
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(!waiter.is_finished(), "a held lock is not taken twice");
    held.release().await;
    tokio::time::timeout(std::time::Duration::from_secs(10), waiter)
        .await
        .expect("the waiter gets the lock once it is released")
        .expect("task")
        .expect("lock");
}
