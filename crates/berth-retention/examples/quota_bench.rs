//! Push latency with a storage quota on and off, side by side, on SQLite and on
//! PostgreSQL (local disk for the bytes; no HTTP).
//!
//!     cargo run --release -p berth-retention --example quota_bench -- [ROUNDS] [IMAGES] [PG_URL]
//!
//! For each database, two projects: `qoff` without a limit and `qon` with one that is
//! never reached (so every blob commit and manifest PUT reads the project's usage in its
//! transaction). Each of ROUNDS (default 20) rounds pushes IMAGES (default 20) small
//! images (a config and a layer blob, then the manifest) into each project, alternating
//! push by push, the side that goes first flipping every push, and records each push's
//! wall time. It prints the medians and p90 over all pushes of each
//! side, the median of the per-round ratios (on/off) and the overall ratio. PG_URL
//! (default `postgres://postgres@127.0.0.1:5432/postgres`) names a server on which a
//! scratch database is created and dropped. Not a test: figures go to docs/benchmarks.md.

use std::sync::Arc;
use std::time::{Duration, Instant};

use berth_blob::FsBlobStore;
use berth_core::registry::Registry;
use berth_core::store::MetaStore;
use berth_core::store::identity::IdentityStore;
use berth_core::{Digest, Reference, RepoName};
use berth_store_postgres::{PgOptions, PgStore};
use berth_store_sqlite::SqliteStore;
use bytes::Bytes;
use common::body;

mod common;

/// One image push: two blobs, then the manifest by tag. Returns its wall time.
async fn push_image(reg: &Registry, repo: &RepoName, salt: &str, n: u64) -> Duration {
    let t = Instant::now();
    let mut refs = Vec::new();
    for part in ["config", "layer"] {
        let bytes = Bytes::from(format!("{salt} {part} {n} {}", "x".repeat(200)));
        let d = Digest::sha256(&bytes);
        reg.monolithic_upload(repo, &d, body(bytes.clone())).await.unwrap();
        refs.push((d, bytes.len()));
    }
    let m = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{}","size":{}}},"layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"{}","size":{}}}]}}"#,
        refs[0].0, refs[0].1, refs[1].0, refs[1].1
    );
    let tag = Reference::Tag(format!("t{n}").parse().unwrap());
    reg.put_manifest(repo, &tag, Some("application/vnd.oci.image.manifest.v1+json"), Bytes::from(m)).await.unwrap();
    t.elapsed()
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn pct(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

/// Runs the side-by-side comparison on one metadata store.
async fn compare<S>(label: &str, store: Arc<S>, storage: &std::path::Path, rounds: u64, images: u64)
where
    S: MetaStore + IdentityStore,
{
    let blobs = Arc::new(FsBlobStore::open(storage).unwrap());
    let reg = Registry::new(store.clone(), blobs);
    common::projects(store.as_ref(), &[("qoff", None), ("qon", Some(1i64 << 40))]).await;
    let (off, on): (RepoName, RepoName) = ("qoff/app".parse().unwrap(), "qon/app".parse().unwrap());
    // Warm-up: caches, prepared statements, pool connections on both sides.
    for n in 0..5 {
        push_image(&reg, &off, "warm", n).await;
        push_image(&reg, &on, "warm", n).await;
    }
    let (mut all_off, mut all_on, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..rounds {
        // Pushes alternate one by one, the first side flipping every push and every
        // round, so that both sides see the same load (on a shared machine it changes
        // within seconds) and neither always runs first.
        let (mut a, mut b) = (Vec::new(), Vec::new());
        for i in 0..images {
            let n = round * images + i;
            if (round + i) % 2 == 0 {
                a.push(push_image(&reg, &off, "bench", n).await.as_secs_f64() * 1e3);
                b.push(push_image(&reg, &on, "bench", n).await.as_secs_f64() * 1e3);
            } else {
                b.push(push_image(&reg, &on, "bench", n).await.as_secs_f64() * 1e3);
                a.push(push_image(&reg, &off, "bench", n).await.as_secs_f64() * 1e3);
            }
        }
        ratios.push(median(&mut b) / median(&mut a));
        all_off.extend(a);
        all_on.extend(b);
    }
    let (m_off, m_on) = (median(&mut all_off), median(&mut all_on));
    println!(
        "{label}: {} pushes per side; quota off median {m_off:.2} ms p90 {:.2} ms; quota on median {m_on:.2} ms p90 \
         {:.2} ms; ratio of medians {:.3}; median of per-round ratios {:.3}",
        all_off.len(),
        pct(&mut all_off, 0.9),
        pct(&mut all_on, 0.9),
        m_on / m_off,
        median(&mut ratios)
    );
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let mut args = std::env::args().skip(1);
    let rounds = args.next().map_or(20, |a| a.parse().expect("ROUNDS"));
    let images = args.next().map_or(20, |a| a.parse().expect("IMAGES"));
    let pg = args.next().unwrap_or_else(|| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let dir = tempfile::tempdir().unwrap();

    let sqlite = Arc::new(SqliteStore::open(&dir.path().join("meta.db")).unwrap());
    compare("SQLite", sqlite, &dir.path().join("storage-sqlite"), rounds, images).await;

    let (admin, conn) = tokio_postgres::connect(&pg, tokio_postgres::NoTls).await.expect("PostgreSQL at PG_URL");
    tokio::spawn(conn);
    let name = format!("berth_quota_bench_{}", std::process::id());
    admin.batch_execute(&format!("CREATE DATABASE {name}")).await.unwrap();
    let url = match pg.rsplit_once('/') {
        Some((base, _)) => format!("{base}/{name}"),
        None => panic!("PG_URL needs a database part"),
    };
    let store = Arc::new(PgStore::connect(PgOptions::new(url)).await.unwrap());
    compare("PostgreSQL", store.clone(), &dir.path().join("storage-pg"), rounds, images).await;
    drop(store);
    if let Err(e) = admin.batch_execute(&format!("DROP DATABASE {name} WITH (FORCE)")).await {
        eprintln!("could not drop {name}: {e}");
    }
}
