//! `berth vulndb import PATH` and `berth vulndb status`: the operator's way to bring OSV
//! vulnerability data into the metadata database that every instance reads (air-gapped
//! sites copy the OSV project's per-ecosystem `all.zip` files in; see docs/scanning.md).

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use berth_core::store::vulns::{PutOutcome, VulnDbStatus, VulnImport, VulnRecord, VulnStore};

/// Records per transaction: large enough that a 200,000-record import is a few hundred
/// commits, small enough that one holds the SQLite writer only briefly.
const BATCH: usize = 500;

pub async fn import(store: Arc<dyn VulnStore>, path: &Path) -> anyhow::Result<ExitCode> {
    let started = std::time::Instant::now();
    let mut total = PutOutcome::default();
    let withdrawn;
    // Parsing is synchronous (files, zips); batches are written as they fill.
    let counts = {
        let owned = path.to_path_buf();
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Vec<VulnRecord>>(4);
        let reader = tokio::task::spawn_blocking(move || {
            let mut batch = Vec::with_capacity(BATCH);
            let mut withdrawn = 0u64;
            let r = berth_scan::import::read_source(
                &owned,
                |p| {
                    if p.withdrawn {
                        withdrawn += 1;
                    }
                    batch.push(VulnRecord {
                        id: p.record.id.clone(),
                        modified: p.record.modified.clone(),
                        modified_at: p.modified_at,
                        withdrawn: p.withdrawn,
                        keys: p.keys,
                        json: p.json,
                    });
                    if batch.len() >= BATCH {
                        tx.blocking_send(std::mem::take(&mut batch)).map_err(|_| ())?;
                    }
                    Ok::<(), ()>(())
                },
                |name, why| eprintln!("skipped {name}: not an OSV record ({why})"),
            );
            if !batch.is_empty() {
                let _ = tx.blocking_send(batch);
            }
            (r, withdrawn)
        });
        while let Some(b) = rx.recv().await {
            let out = store.put_vuln_records(&b).await?;
            total.added += out.added;
            total.updated += out.updated;
            total.unchanged += out.unchanged;
        }
        let (r, w) = reader.await?;
        withdrawn = w;
        match r {
            Ok(Ok(c)) => c,
            Ok(Err(())) => anyhow::bail!("import stopped: the database writer went away"),
            Err(e) => anyhow::bail!("cannot read {}: {e}", path.display()),
        }
    };
    let summary = serde_json::json!({
        "files": counts.files, "invalid": counts.invalid, "added": total.added, "updated": total.updated,
        "unchanged": total.unchanged, "withdrawn": withdrawn,
    });
    store
        .record_vuln_import(&VulnImport { at: now(), source: path.display().to_string(), summary: summary.to_string() })
        .await?;
    println!(
        "imported {}: {} files, {} new, {} updated, {} unchanged, {} withdrawn, {} not OSV records ({:.1} s)",
        path.display(),
        counts.files,
        total.added,
        total.updated,
        total.unchanged,
        withdrawn,
        counts.invalid,
        started.elapsed().as_secs_f64()
    );
    let st = store.vuln_db_status().await?;
    print_status(&st);
    if counts.files > 0 && counts.invalid == counts.files {
        eprintln!("berth: nothing in {} was an OSV record", path.display());
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn status(store: Arc<dyn VulnStore>) -> anyhow::Result<ExitCode> {
    let st = store.vuln_db_status().await?;
    print_status(&st);
    Ok(if st.records == 0 { ExitCode::from(3) } else { ExitCode::SUCCESS })
}

fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64)
}

fn age(secs: i64) -> String {
    let s = (now() - secs).max(0);
    match s {
        s if s < 3600 => format!("{} minutes", s / 60),
        s if s < 2 * 86400 => format!("{} hours", s / 3600),
        s => format!("{} days", s / 86400),
    }
}

fn rfc3339(secs: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(secs)
        .ok()
        .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
        .unwrap_or_default()
}

fn print_status(st: &VulnDbStatus) {
    if st.records == 0 {
        println!("vulnerability database: empty (run `berth vulndb import PATH`)");
        return;
    }
    println!("vulnerability database: {} records ({} withdrawn)", st.records, st.withdrawn);
    if let Some(m) = st.newest_modified_at {
        println!("newest record modified {} ({} old)", rfc3339(m), age(m));
    }
    if let Some(i) = &st.last_import {
        println!("last import {} ({} ago) from {}", rfc3339(i.at), age(i.at), i.source);
    }
    for (eco, n) in &st.ecosystems {
        println!("  {eco}: {n}");
    }
}

/// `/metrics`: the age of the vulnerability data (seconds since the newest record was
/// modified) and of the last import, refreshed from the database every 30 s so scraping
/// never waits on it. -1 while the database is empty.
pub fn register_age_gauge(store: Arc<dyn VulnStore>) {
    use std::sync::atomic::{AtomicI64, Ordering};
    let newest = Arc::new(AtomicI64::new(-1));
    let imported = Arc::new(AtomicI64::new(-1));
    let (n, i) = (newest.clone(), imported.clone());
    tokio::spawn(async move {
        loop {
            if let Ok(st) = store.vuln_db_status().await {
                n.store(st.newest_modified_at.unwrap_or(-1), Ordering::Relaxed);
                i.store(st.last_import.map_or(-1, |l| l.at), Ordering::Relaxed);
            }
            tokio::time::sleep(std::time::Duration::from_secs(30)).await;
        }
    });
    berth_http::metrics::global().add_gauges(Box::new(move || {
        let age = |at: i64| if at < 0 { -1.0 } else { (now() - at).max(0) as f64 };
        vec![
            berth_http::metrics::Sample {
                name: "berth_vulndb_data_age_seconds",
                help: "Seconds since the newest imported vulnerability record was modified (-1: no data).",
                kind: "gauge",
                value: age(newest.load(Ordering::Relaxed)),
            },
            berth_http::metrics::Sample {
                name: "berth_vulndb_import_age_seconds",
                help: "Seconds since the last `berth vulndb import` (-1: never).",
                kind: "gauge",
                value: age(imported.load(Ordering::Relaxed)),
            },
        ]
    }));
}
