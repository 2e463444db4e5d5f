//! A retention run over one repository with many tags, on SQLite and local disk (no
//! HTTP). Push latency with a quota on and off is `quota_bench`.
//!
//!     cargo run --release -p berth-retention --example retention_bench -- [TAGS] [KEEP]
//!
//! TAGS (default 100000) artifacts, one tag each, are pushed into `bench/app` through
//! `Registry`; a policy "latest KEEP (default 10) pushed, every repository" is then run
//! dry (evaluation only) and for real (deleting TAGS − KEEP artifacts) through
//! `retain_repository`, the repository task's own code. Not a test: figures go to
//! docs/benchmarks.md.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use berth_blob::FsBlobStore;
use berth_core::registry::Registry;
use berth_core::{Digest, Reference, RepoName};
use berth_jobs::JobError;
use berth_retention::{Context, Outcome, Policy, RepoArgs, Report, retain_repository};
use berth_store_sqlite::SqliteStore;
use bytes::Bytes;
use common::body;

mod common;

fn manifest(config: (&Digest, usize), layer: (&Digest, usize), n: u64) -> String {
    format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{}","size":{}}},"layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"{}","size":{}}}],"annotations":{{"n":"{n}"}}}}"#,
        config.0, config.1, layer.0, layer.1
    )
}

struct Quiet(AtomicU64);

#[async_trait::async_trait]
impl Report for Quiet {
    fn info(&self, _: String) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
    fn warn(&self, _: String) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
    fn check(&self) -> Result<(), JobError> {
        Ok(())
    }
    async fn checkpoint(&self, _: &Outcome) -> Result<(), JobError> {
        Ok(())
    }
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let mut args = std::env::args().skip(1).map(|a| a.parse::<u64>().expect("numbers"));
    let tags = args.next().unwrap_or(100_000);
    let keep = args.next().unwrap_or(10);
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("storage");
    let store = Arc::new(SqliteStore::open(&dir.path().join("meta.db")).unwrap());
    let blobs = Arc::new(FsBlobStore::open(&root).unwrap());
    let reg = Arc::new(Registry::new(store.clone(), blobs));
    let bench = common::projects(store.as_ref(), &[("bench", None)]).await.remove(0);

    // Setup: TAGS artifacts sharing one config and one layer.
    let repo: RepoName = "bench/app".parse().unwrap();
    let (config, layer) = (Bytes::from_static(b"{\"bench\":true}"), Bytes::from_static(b"layer"));
    let (cd, ld) = (Digest::sha256(&config), Digest::sha256(&layer));
    reg.monolithic_upload(&repo, &cd, body(config.clone())).await.unwrap();
    reg.monolithic_upload(&repo, &ld, body(layer.clone())).await.unwrap();
    let t = Instant::now();
    let next = Arc::new(AtomicU64::new(0));
    let workers: Vec<_> = (0..64)
        .map(|_| {
            let (reg, repo, next, cd, ld) = (reg.clone(), repo.clone(), next.clone(), cd.clone(), ld.clone());
            let (cl, ll) = (config.len(), layer.len());
            tokio::spawn(async move {
                loop {
                    let n = next.fetch_add(1, Ordering::Relaxed);
                    if n >= tags {
                        break;
                    }
                    let m = manifest((&cd, cl), (&ld, ll), n);
                    let tag = Reference::Tag(format!("t{n}").parse().unwrap());
                    reg.put_manifest(&repo, &tag, Some("application/vnd.oci.image.manifest.v1+json"), Bytes::from(m))
                        .await
                        .unwrap();
                }
            })
        })
        .collect();
    for w in workers {
        w.await.unwrap();
    }
    println!("setup: {tags} tagged artifacts in {:.1} s", t.elapsed().as_secs_f64());

    let ctx = Context::new(store.clone(), store.clone(), store.clone(), store.clone(), reg.clone());
    let policy: Policy = serde_json::from_value(serde_json::json!({
        "algorithm": "or",
        "rules": [{"template": "latestPushedK", "params": {"latestPushedK": keep},
                   "tag_selectors": [{"kind": "doublestar", "decoration": "matches", "pattern": "**"}],
                   "scope_selectors": {"repository": [{"kind": "doublestar", "decoration": "repoMatches", "pattern": "**"}]}}],
        "scope": {"level": "project", "ref": bench.id}
    }))
    .unwrap();
    let mut args = RepoArgs {
        policy_id: 1,
        project_id: bench.id,
        repository: "bench/app".into(),
        dry_run: true,
        policy,
        trigger: "MANUAL".into(),
    };
    for dry in [true, false] {
        args.dry_run = dry;
        let report = Quiet(AtomicU64::new(0));
        let t = Instant::now();
        let (out, _) = retain_repository(&ctx, &args, Outcome::default(), &report).await.unwrap();
        println!(
            "retention {}: {} of {} retained, {} deleted, {} log lines, {:.1} s",
            if dry { "dry run" } else { "run" },
            out.retained,
            out.total,
            out.deleted.len(),
            report.0.load(Ordering::Relaxed),
            t.elapsed().as_secs_f64()
        );
    }
}
