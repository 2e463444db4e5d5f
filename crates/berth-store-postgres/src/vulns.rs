//! [`VulnStore`] on the same database (tables from `migrations/0010_vulns.sql`).
//!
//! Retried after a lost connection (see `pool.rs`): reads, and the report updates, whose
//! second run changes nothing. A batch of records is not (its counts would differ), and
//! neither is recording an import.

use async_trait::async_trait;
use berth_core::store::StoreResult;
use berth_core::store::vulns::{PutOutcome, ReportUpdate, ScanReport, VulnDbStatus, VulnImport, VulnRecord, VulnStore};
use tokio_postgres::Row;

use crate::{DbErr, PgStore, Tx, col};

const REPORT_COLUMNS: &str =
    "uuid, digest, registration_uuid, mime_type, status, task_id, start_time, end_time, severity, summary, report";

fn report_row(r: &Row) -> Result<ScanReport, DbErr> {
    Ok(ScanReport {
        uuid: col(r, 0)?,
        digest: col(r, 1)?,
        registration_uuid: col(r, 2)?,
        mime_type: col(r, 3)?,
        status: col(r, 4)?,
        task_id: col(r, 5)?,
        start_time: col(r, 6)?,
        end_time: col(r, 7)?,
        severity: col(r, 8)?,
        summary: col(r, 9)?,
        report: col(r, 10)?,
    })
}

#[async_trait]
impl VulnStore for PgStore {
    async fn put_vuln_records(&self, records: &[VulnRecord]) -> StoreResult<PutOutcome> {
        self.db(Tx::Write, records, |c, records| {
            Box::pin(async move {
                let mut out = PutOutcome::default();
                for r in records {
                    let old = c.opt("SELECT modified FROM vuln_records WHERE id = $1 FOR UPDATE", &[&r.id]).await?;
                    match old.map(|row| col::<String>(&row, 0)).transpose()? {
                        Some(m) if m == r.modified => {
                            out.unchanged += 1;
                            continue;
                        }
                        Some(_) => out.updated += 1,
                        None => out.added += 1,
                    }
                    c.exec(
                        "INSERT INTO vuln_records (id, modified, modified_at, withdrawn, record) VALUES ($1, $2, $3, $4, $5)
                         ON CONFLICT (id) DO UPDATE SET modified = excluded.modified, modified_at = excluded.modified_at,
                           withdrawn = excluded.withdrawn, record = excluded.record",
                        &[&r.id, &r.modified, &r.modified_at, &r.withdrawn, &r.json],
                    )
                    .await?;
                    c.exec("DELETE FROM vuln_affected WHERE record_id = $1", &[&r.id]).await?;
                    let ecos: Vec<&str> = r.keys.iter().map(|k| k.0.as_str()).collect();
                    let names: Vec<&str> = r.keys.iter().map(|k| k.1.as_str()).collect();
                    c.exec(
                        "INSERT INTO vuln_affected (ecosystem, name, record_id)
                         SELECT e, n, $3 FROM unnest($1::text[], $2::text[]) AS k(e, n) ON CONFLICT DO NOTHING",
                        &[&ecos, &names, &r.id],
                    )
                    .await?;
                }
                Ok(out)
            })
        })
        .await
    }

    async fn record_vuln_import(&self, import: &VulnImport) -> StoreResult<()> {
        self.db(Tx::Write, import, |c, i| {
            Box::pin(async move {
                c.exec(
                    "INSERT INTO vuln_imports (at, source, summary) VALUES ($1, $2, $3)",
                    &[&i.at, &i.source, &i.summary],
                )
                .await?;
                Ok(())
            })
        })
        .await
    }

    async fn vuln_records_for(&self, keys: &[(String, String)]) -> StoreResult<Vec<String>> {
        let ecos: Vec<String> = keys.iter().map(|k| k.0.clone()).collect();
        let names: Vec<String> = keys.iter().map(|k| k.1.clone()).collect();
        self.db(Tx::Read, &(ecos, names), |c, (ecos, names)| {
            Box::pin(async move {
                let rows = c
                    .rows(
                        "SELECT r.record FROM vuln_records r WHERE r.id IN (
                           SELECT a.record_id FROM vuln_affected a
                           JOIN unnest($1::text[], $2::text[]) AS k(e, n) ON a.ecosystem = k.e AND a.name = k.n)
                         ORDER BY r.id",
                        &[ecos, names],
                    )
                    .await?;
                Ok(rows.iter().map(|r| col::<String>(r, 0)).collect::<Result<_, _>>()?)
            })
        })
        .await
    }

    async fn vuln_db_status(&self) -> StoreResult<VulnDbStatus> {
        self.db(Tx::Read, &(), |c, _| {
            Box::pin(async move {
                let row = c
                    .one(
                        "SELECT count(*), count(*) FILTER (WHERE withdrawn), max(modified_at) FROM vuln_records",
                        &[],
                    )
                    .await?;
                let ecos = c
                    .rows(
                        "SELECT ecosystem, count(DISTINCT record_id) FROM vuln_affected GROUP BY ecosystem ORDER BY ecosystem",
                        &[],
                    )
                    .await?;
                let last = c.opt("SELECT at, source, summary FROM vuln_imports ORDER BY id DESC LIMIT 1", &[]).await?;
                Ok(VulnDbStatus {
                    records: col::<i64>(&row, 0)? as u64,
                    withdrawn: col::<i64>(&row, 1)? as u64,
                    newest_modified_at: col(&row, 2)?,
                    ecosystems: ecos
                        .iter()
                        .map(|r| Ok((col::<String>(r, 0)?, col::<i64>(r, 1)? as u64)))
                        .collect::<Result<_, DbErr>>()?,
                    last_import: last
                        .map(|r| Ok::<_, DbErr>(VulnImport { at: col(&r, 0)?, source: col(&r, 1)?, summary: col(&r, 2)? }))
                        .transpose()?,
                })
            })
        })
        .await
    }

    async fn put_scan_report(&self, r: &ScanReport) -> StoreResult<()> {
        self.db(Tx::Idempotent, r, |c, r| {
            Box::pin(async move {
                c.exec(
                    "DELETE FROM scan_reports WHERE digest = $1 AND registration_uuid = $2 AND mime_type = $3",
                    &[&r.digest, &r.registration_uuid, &r.mime_type],
                )
                .await?;
                c.exec(
                    &format!("INSERT INTO scan_reports ({REPORT_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"),
                    &[
                        &r.uuid,
                        &r.digest,
                        &r.registration_uuid,
                        &r.mime_type,
                        &r.status,
                        &r.task_id,
                        &r.start_time,
                        &r.end_time,
                        &r.severity,
                        &r.summary,
                        &r.report,
                    ],
                )
                .await?;
                Ok(())
            })
        })
        .await
    }

    async fn scan_report(&self, uuid: &str) -> StoreResult<Option<ScanReport>> {
        self.db(Tx::Read, uuid, |c, uuid| {
            Box::pin(async move {
                let row =
                    c.opt(&format!("SELECT {REPORT_COLUMNS} FROM scan_reports WHERE uuid = $1"), &[&uuid]).await?;
                Ok(row.map(|r| report_row(&r)).transpose()?)
            })
        })
        .await
    }

    async fn scan_reports_of(&self, digests: &[String]) -> StoreResult<Vec<ScanReport>> {
        self.db(Tx::Read, digests, |c, digests| {
            Box::pin(async move {
                let rows = c
                    .rows(
                        &format!(
                            "SELECT {REPORT_COLUMNS} FROM scan_reports WHERE digest = ANY($1)
                             ORDER BY digest, mime_type, registration_uuid"
                        ),
                        &[&digests],
                    )
                    .await?;
                Ok(rows.iter().map(report_row).collect::<Result<_, _>>()?)
            })
        })
        .await
    }

    async fn finish_scan_report(&self, uuid: &str, task_id: i64, u: &ReportUpdate) -> StoreResult<bool> {
        let args = (uuid.to_string(), task_id, u.clone());
        self.db(Tx::Idempotent, &args, |c, (uuid, task_id, u)| {
            Box::pin(async move {
                let n = c
                    .exec(
                        "UPDATE scan_reports SET status = $3, end_time = coalesce($4, end_time), severity = $5, summary = $6, report = $7
                         WHERE uuid = $1 AND task_id = $2",
                        &[uuid, task_id, &u.status, &u.end_time, &u.severity, &u.summary, &u.report],
                    )
                    .await?;
                Ok(n > 0)
            })
        })
        .await
    }
}
