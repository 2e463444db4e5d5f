//! Plans of GC's hot statements on the real schema: the planner's choice, not the SQL's
//! meaning, is what made them slow, so their plans are what is checked.

mod common;

use berth_store_postgres::{REFERENCED, RUN_AND_DIGESTS};
use common::TestDb;

/// The plan of `EXECUTE {call}`, one line per node.
async fn plan(c: &tokio_postgres::Client, call: &str) -> String {
    let rows = c.query(&format!("EXPLAIN (COSTS OFF) EXECUTE {call}"), &[]).await.unwrap();
    rows.iter().map(|r| r.get::<_, String>(0)).collect::<Vec<_>>().join("\n")
}

/// Phase B's reads and deletions by run and digests go through the primary key, with
/// thousands of rows claimed by the run (the pipeline running ahead), in the generic
/// plan a prepared statement gets after a few runs as in the custom one.
#[tokio::test]
async fn phase_b_finds_its_rows_by_digest() {
    let Some(db) = TestDb::create().await else { return };
    drop(db.store().await);
    let c = db.side().await;
    c.batch_execute(
        "INSERT INTO blobs (digest, size, state, created_at)
              SELECT 'sha256:' || encode(sha256(convert_to('b ' || i, 'UTF8')), 'hex'), 1, 'live', 0
                FROM generate_series(1, 20000) i;
         UPDATE blobs SET state = 'deleting', gc_run = '1:1', gc_claimed_at = 0
          WHERE digest IN (SELECT digest FROM blobs ORDER BY digest LIMIT 4096);
         ANALYZE blobs;",
    )
    .await
    .unwrap();
    let digests: Vec<String> = c
        .query("SELECT digest FROM blobs WHERE state = 'deleting' ORDER BY digest OFFSET 2000 LIMIT 100", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    let list = format!("{{{}}}", digests.join(","));
    c.batch_execute(&format!(
        "PREPARE sel(text[], text) AS SELECT digest, size FROM blobs WHERE {RUN_AND_DIGESTS} ORDER BY digest FOR UPDATE;
         PREPARE del(text[], text) AS DELETE FROM blobs WHERE {RUN_AND_DIGESTS};"
    ))
    .await
    .unwrap();
    for mode in ["force_generic_plan", "force_custom_plan"] {
        c.batch_execute(&format!("SET plan_cache_mode = {mode}")).await.unwrap();
        for st in ["sel", "del"] {
            let plan = plan(&c, &format!("{st}('{list}', '1:1')")).await;
            assert!(plan.contains("blobs_pkey") && !plan.contains("blobs_deleting"), "{st}, {mode}:\n{plan}");
        }
    }
    // And they find the rows they should: the run's `deleting` ones among the digests.
    let found =
        c.query(&format!("SELECT digest FROM blobs WHERE {RUN_AND_DIGESTS}"), &[&digests, &"1:1"]).await.unwrap().len();
    let other_run =
        c.query(&format!("SELECT digest FROM blobs WHERE {RUN_AND_DIGESTS}"), &[&digests, &"2:1"]).await.unwrap().len();
    assert_eq!((found, other_run), (100, 0));
}

/// Releasing holdings asks whether a digest is still held only of the holdings that
/// exist: GC's phase B releases, for every link it deletes, digests whose holdings its
/// claim already released (migration 0016). A claim's release (`died`) asks no
/// `berth_usage_held` at all, only whether a manifest holds the digest (migration 0018).
#[tokio::test]
async fn release_asks_about_existing_holdings_only() {
    let Some(db) = TestDb::create().await else { return };
    drop(db.store().await);
    let c = db.side().await;
    c.batch_execute("SET track_functions = 'all'; INSERT INTO project_digests VALUES ('p', 'sha256:held', 5)")
        .await
        .unwrap();
    let held_calls = |absent: usize, died: bool| {
        let c = &c;
        async move {
            let mut ds: Vec<String> = (0..absent).map(|i| format!("sha256:absent{i}")).collect();
            ds.push("sha256:held".into());
            let ps = vec!["p".to_owned(); ds.len()];
            // The view also counts the session's calls not yet reported: a difference.
            let calls = || async {
                c.query_opt("SELECT calls FROM pg_stat_xact_user_functions WHERE funcname = 'berth_usage_held'", &[])
                    .await
                    .unwrap()
                    .map_or(0i64, |r| r.get(0))
            };
            c.batch_execute("BEGIN").await.unwrap();
            let before = calls().await;
            c.execute("SELECT berth_usage_release($1, $2, $3)", &[&ps, &ds, &died]).await.unwrap();
            let after = calls().await;
            c.batch_execute("ROLLBACK").await.unwrap();
            after - before
        }
    };
    assert_eq!(held_calls(0, false).await, 1, "the one holding is asked about");
    assert_eq!(held_calls(100, false).await, 1, "a hundred absent holdings are not");
    assert_eq!(held_calls(100, true).await, 0, "a claim's release asks only about manifests");
    // Released: nothing links the digest, so the holding went.
    c.execute("SELECT berth_usage_release($1, $2)", &[&vec!["p"], &vec!["sha256:held"]]).await.unwrap();
    assert_eq!(db.count("SELECT count(*) FROM project_digests").await, 0);
}

/// Manifests and their references are found by digest with thousands of them: a GC
/// claim's release asks, for each holding, whether a manifest of the project has that
/// digest (`berth_usage_held`, migration 0017's index), and phase B whether any of its
/// digests is referenced, in the generic plan as in the custom one.
#[tokio::test]
async fn manifests_and_references_are_found_by_digest() {
    let Some(db) = TestDb::create().await else { return };
    drop(db.store().await);
    let c = db.side().await;
    c.batch_execute(
        "INSERT INTO repositories (name, created_at) SELECT 'p/r' || i, 0 FROM generate_series(1, 50) i;
         INSERT INTO manifests (repository_id, digest, media_type, size, content, created_at)
              SELECT r.id, 'sha256:' || encode(sha256(convert_to('m ' || r.id || ' ' || i, 'UTF8')), 'hex'),
                     'application/vnd.oci.image.manifest.v1+json', 2, '{}', 0
                FROM repositories r, generate_series(1, 100) i;
         INSERT INTO manifest_blobs (manifest_id, digest)
              SELECT m.id, 'sha256:' || encode(sha256(convert_to('l ' || m.id, 'UTF8')), 'hex') FROM manifests m;
         ANALYZE repositories; ANALYZE manifests; ANALYZE manifest_blobs;
         PREPARE held_by_manifest(text, text) AS SELECT 1 FROM manifests m JOIN repositories r ON r.id = m.repository_id
                   WHERE m.digest = $2 AND r.name >= $1 || '/' AND r.name < $1 || '0';",
    )
    .await
    .unwrap();
    c.batch_execute(&format!("PREPARE referenced(text[]) AS {REFERENCED}")).await.unwrap();
    let list: Vec<String> = (0..512).map(|i| format!("sha256:absent{i}")).collect();
    let list = format!("{{{}}}", list.join(","));
    for mode in ["force_generic_plan", "force_custom_plan"] {
        c.batch_execute(&format!("SET plan_cache_mode = {mode}")).await.unwrap();
        for (st, args, index) in [
            ("held_by_manifest", "'p', 'sha256:x'".to_owned(), "manifests_digest"),
            ("referenced", format!("'{list}'"), "manifest_blobs_digest"),
        ] {
            let plan = plan(&c, &format!("{st}({args})")).await;
            assert!(plan.contains(index) && !plan.contains("Seq Scan on manifest"), "{st}, {mode}:\n{plan}");
        }
    }
    // And the probe finds a referenced digest among absent ones.
    let referenced: String = c.query_one("SELECT digest FROM manifest_blobs LIMIT 1", &[]).await.unwrap().get(0);
    let digests = vec!["sha256:absent".to_owned(), referenced.clone()];
    let found: Option<String> = c.query_opt(REFERENCED, &[&digests]).await.unwrap().map(|r| r.get(0));
    assert_eq!(found, Some(referenced));
}
