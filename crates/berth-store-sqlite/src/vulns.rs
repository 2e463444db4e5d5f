//! [`VulnStore`] on the same database (tables from `migrations/0014_vulns.sql`).

use async_trait::async_trait;
use berth_core::store::StoreResult;
use berth_core::store::vulns::{PutOutcome, ReportUpdate, ScanReport, VulnDbStatus, VulnImport, VulnRecord, VulnStore};
use rusqlite::{OptionalExtension, Row, params};

use crate::SqliteStore;

const REPORT_COLUMNS: &str =
    "uuid, digest, registration_uuid, mime_type, status, task_id, start_time, end_time, severity, summary, report";

fn report_row(r: &Row<'_>) -> rusqlite::Result<ScanReport> {
    Ok(ScanReport {
        uuid: r.get(0)?,
        digest: r.get(1)?,
        registration_uuid: r.get(2)?,
        mime_type: r.get(3)?,
        status: r.get(4)?,
        task_id: r.get(5)?,
        start_time: r.get(6)?,
        end_time: r.get(7)?,
        severity: r.get(8)?,
        summary: r.get(9)?,
        report: r.get(10)?,
    })
}

#[async_trait]
impl VulnStore for SqliteStore {
    async fn put_vuln_records(&self, records: &[VulnRecord]) -> StoreResult<PutOutcome> {
        let records = records.to_vec();
        self.writer
            .write(move |c| {
                let mut out = PutOutcome::default();
                for r in &records {
                    let old: Option<String> = c
                        .prepare_cached("SELECT modified FROM vuln_records WHERE id = ?1")?
                        .query_row([&r.id], |row| row.get(0))
                        .optional()?;
                    match old {
                        Some(m) if m == r.modified => {
                            out.unchanged += 1;
                            continue;
                        }
                        Some(_) => out.updated += 1,
                        None => out.added += 1,
                    }
                    c.prepare_cached(
                        "INSERT INTO vuln_records (id, modified, modified_at, withdrawn, record) VALUES (?1, ?2, ?3, ?4, ?5)
                         ON CONFLICT (id) DO UPDATE SET modified = excluded.modified, modified_at = excluded.modified_at,
                           withdrawn = excluded.withdrawn, record = excluded.record",
                    )?
                    .execute(params![r.id, r.modified, r.modified_at, r.withdrawn, r.json])?;
                    c.prepare_cached("DELETE FROM vuln_affected WHERE record_id = ?1")?.execute([&r.id])?;
                    for (eco, name) in &r.keys {
                        c.prepare_cached(
                            "INSERT INTO vuln_affected (ecosystem, name, record_id) VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING",
                        )?
                        .execute(params![eco, name, r.id])?;
                    }
                }
                Ok(out)
            })
            .await
    }

    async fn record_vuln_import(&self, import: &VulnImport) -> StoreResult<()> {
        let i = import.clone();
        self.writer
            .write(move |c| {
                c.prepare_cached("INSERT INTO vuln_imports (at, source, summary) VALUES (?1, ?2, ?3)")?
                    .execute(params![i.at, i.source, i.summary])?;
                Ok(())
            })
            .await
    }

    async fn vuln_records_for(&self, keys: &[(String, String)]) -> StoreResult<Vec<String>> {
        let keys = keys.to_vec();
        self.readers
            .run(move |c| {
                let mut ids = std::collections::BTreeSet::new();
                let mut st =
                    c.prepare_cached("SELECT record_id FROM vuln_affected WHERE ecosystem = ?1 AND name = ?2")?;
                for (eco, name) in &keys {
                    for id in st.query_map(params![eco, name], |r| r.get::<_, String>(0))? {
                        ids.insert(id?);
                    }
                }
                let mut out = Vec::with_capacity(ids.len());
                let mut get = c.prepare_cached("SELECT record FROM vuln_records WHERE id = ?1")?;
                for id in ids {
                    if let Some(j) = get.query_row([&id], |r| r.get::<_, String>(0)).optional()? {
                        out.push(j);
                    }
                }
                Ok(out)
            })
            .await
    }

    async fn vuln_db_status(&self) -> StoreResult<VulnDbStatus> {
        self.readers
            .run(move |c| {
                let (records, withdrawn, newest): (i64, i64, Option<i64>) = c.query_row(
                    "SELECT count(*), coalesce(sum(withdrawn), 0), max(modified_at) FROM vuln_records",
                    [],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                )?;
                let ecosystems = c
                    .prepare_cached("SELECT ecosystem, count(DISTINCT record_id) FROM vuln_affected GROUP BY ecosystem ORDER BY ecosystem")?
                    .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)? as u64)))?
                    .collect::<rusqlite::Result<Vec<_>>>()?;
                let last_import = c
                    .prepare_cached("SELECT at, source, summary FROM vuln_imports ORDER BY id DESC LIMIT 1")?
                    .query_row([], |r| Ok(VulnImport { at: r.get(0)?, source: r.get(1)?, summary: r.get(2)? }))
                    .optional()?;
                Ok(VulnDbStatus {
                    records: records as u64,
                    withdrawn: withdrawn as u64,
                    ecosystems,
                    newest_modified_at: newest,
                    last_import,
                })
            })
            .await
    }

    async fn put_scan_report(&self, r: &ScanReport) -> StoreResult<()> {
        let r = r.clone();
        self.writer
            .write(move |c| {
                c.prepare_cached(
                    "DELETE FROM scan_reports WHERE digest = ?1 AND registration_uuid = ?2 AND mime_type = ?3",
                )?
                .execute(params![r.digest, r.registration_uuid, r.mime_type])?;
                c.prepare_cached(&format!(
                    "INSERT INTO scan_reports ({REPORT_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)"
                ))?
                .execute(params![
                    r.uuid,
                    r.digest,
                    r.registration_uuid,
                    r.mime_type,
                    r.status,
                    r.task_id,
                    r.start_time,
                    r.end_time,
                    r.severity,
                    r.summary,
                    r.report
                ])?;
                Ok(())
            })
            .await
    }

    async fn scan_report(&self, uuid: &str) -> StoreResult<Option<ScanReport>> {
        let uuid = uuid.to_string();
        self.readers
            .run(move |c| {
                Ok(c.prepare_cached(&format!("SELECT {REPORT_COLUMNS} FROM scan_reports WHERE uuid = ?1"))?
                    .query_row([uuid], report_row)
                    .optional()?)
            })
            .await
    }

    async fn scan_reports_of(&self, digests: &[String]) -> StoreResult<Vec<ScanReport>> {
        let digests = digests.to_vec();
        self.readers
            .run(move |c| {
                let mut st = c.prepare_cached(&format!(
                    "SELECT {REPORT_COLUMNS} FROM scan_reports WHERE digest = ?1 ORDER BY mime_type, registration_uuid"
                ))?;
                let mut out = Vec::new();
                for d in &digests {
                    for r in st.query_map([d], report_row)? {
                        out.push(r?);
                    }
                }
                Ok(out)
            })
            .await
    }

    async fn finish_scan_report(&self, uuid: &str, task_id: i64, u: &ReportUpdate) -> StoreResult<bool> {
        let (uuid, u) = (uuid.to_string(), u.clone());
        self.writer
            .write(move |c| {
                let n = c
                    .prepare_cached(
                        "UPDATE scan_reports SET status = ?3, end_time = coalesce(?4, end_time), severity = ?5, summary = ?6, report = ?7
                         WHERE uuid = ?1 AND task_id = ?2",
                    )?
                    .execute(params![uuid, task_id, u.status, u.end_time, u.severity, u.summary, u.report])?;
                Ok(n > 0)
            })
            .await
    }
}
