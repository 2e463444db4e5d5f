//! Conformance for [`OutboxStore`]: events commit with the change they report (and only
//! when it happened), claims are leased and disjoint, a lapsed lease lets another
//! drainer take the batch over, and only the lease holder's ack removes it. Claims take
//! every event of the database, so this suite needs a fresh one.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use berth_core::store::outbox::{OutboxEvent, OutboxStore};
use berth_core::store::{MetaStore, NewManifest, PutManifestOutcome};

use crate::{Cx, tag};

fn event(op: &str, repo: &str, reference: &str) -> OutboxEvent {
    OutboxEvent {
        operation: op.into(),
        repo: repo.into(),
        reference: reference.into(),
        digest: None,
        username: "alice".into(),
        at: 1_700_000_000,
    }
}

pub async fn outbox_conformance<S: MetaStore + OutboxStore>(store: Arc<S>) {
    let cx = Cx::new(Arc::clone(&store) as Arc<dyn MetaStore>);
    let ob: Arc<dyn OutboxStore> = store;
    let repo = cx.repo("outbox");
    let layer = cx.blob("layer");
    cx.store.commit_blob(&repo, &layer, None).await.unwrap();

    // A push with an event, one without, and one that fails: one event.
    let pushed = NewManifest {
        blobs: vec![layer.digest.clone()],
        tag: Some(tag("v1")),
        event: Some(event("create", repo.as_str(), "v1")),
        ..cx.image(&repo, "one")
    };
    cx.put(&pushed).await;
    cx.put(&NewManifest { tag: Some(tag("quiet")), ..cx.image(&repo, "quiet") }).await;
    let broken = NewManifest {
        blobs: vec![cx.blob("absent").digest],
        event: Some(event("create", repo.as_str(), "broken")),
        ..cx.image(&repo, "broken")
    };
    assert!(matches!(cx.store.put_manifest(&broken).await.unwrap(), PutManifestOutcome::MissingBlobs(_)));
    // Deletes: of something that exists (an event) and of something that does not (none).
    let del_tag = event("delete", repo.as_str(), "quiet");
    assert!(cx.store.delete_tag(&repo, &tag("quiet"), Some(&del_tag)).await.unwrap());
    assert!(!cx.store.delete_tag(&repo, &tag("never"), Some(&event("delete", repo.as_str(), "never"))).await.unwrap());
    let del = event("delete", repo.as_str(), &pushed.digest.to_string());
    assert!(cx.store.delete_manifest(&repo, &pushed.digest, Some(&del)).await.unwrap());
    assert!(!cx.store.delete_manifest(&repo, &pushed.digest, Some(&del)).await.unwrap());

    let got = ob.claim_events("a", 10, 60_000).await.unwrap();
    let refs: Vec<(&str, &str)> =
        got.iter().map(|e| (e.event.operation.as_str(), e.event.reference.as_str())).collect();
    let d = pushed.digest.to_string();
    assert_eq!(refs, [("create", "v1"), ("delete", "quiet"), ("delete", d.as_str())], "oldest first");
    assert_eq!(got[0].event, event("create", repo.as_str(), "v1"), "stored as given");

    // Leased: nobody else gets them; a stranger's ack removes nothing.
    assert!(ob.claim_events("b", 10, 60_000).await.unwrap().is_empty());
    let ids: Vec<i64> = got.iter().map(|e| e.id).collect();
    assert_eq!(ob.ack_events("b", &ids).await.unwrap(), 0);
    assert_eq!(ob.ack_events("a", &ids[..1]).await.unwrap(), 1);

    // A lapsed lease: the batch goes to the next drainer, the first one's late ack is void.
    let short = ob.claim_events("c", 10, 60_000).await.unwrap();
    assert!(short.is_empty(), "still leased by a");
    cx.put(&NewManifest {
        event: Some(event("create", repo.as_str(), "v2")),
        tag: Some(tag("v2")),
        ..cx.image(&repo, "two")
    })
    .await;
    let c = ob.claim_events("c", 10, 1).await.unwrap();
    assert_eq!(c.len(), 1, "only the new event is free");
    tokio::time::sleep(Duration::from_millis(30)).await;
    let d2 = ob.claim_events("d", 1, 60_000).await.unwrap();
    assert_eq!(d2.iter().map(|e| e.id).collect::<Vec<_>>(), [c[0].id], "the lapsed one, limit respected");
    assert_eq!(ob.ack_events("c", &[c[0].id]).await.unwrap(), 0, "c lost its lease");
    assert_eq!(ob.ack_events("d", &[c[0].id]).await.unwrap(), 1);
    assert_eq!(ob.ack_events("a", &ids[1..]).await.unwrap(), 2);
    assert!(ob.claim_events("e", 10, 1).await.unwrap().is_empty(), "all acknowledged");

    // Racing drainers never share an event.
    for i in 0..40 {
        let t = format!("r{i}");
        cx.put(&NewManifest {
            event: Some(event("create", repo.as_str(), &t)),
            tag: Some(tag(&t)),
            ..cx.image(&repo, &t)
        })
        .await;
    }
    let claims: Vec<_> = (0..4)
        .map(|w| {
            let ob = Arc::clone(&ob);
            tokio::spawn(async move {
                let mut mine = Vec::new();
                loop {
                    let got = ob.claim_events(&format!("w{w}"), 3, 60_000).await.unwrap();
                    if got.is_empty() {
                        break mine;
                    }
                    mine.extend(got.into_iter().map(|e| e.id));
                }
            })
        })
        .collect();
    let mut seen = HashSet::new();
    for c in claims {
        for id in c.await.unwrap() {
            assert!(seen.insert(id), "event {id} claimed twice");
        }
    }
    assert_eq!(seen.len(), 40);
}
