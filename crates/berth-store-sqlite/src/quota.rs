//! The storage quota check of blob commits, mounts and manifest pushes (see
//! `berth_core::quota`). It runs on the writer thread inside the write's own savepoint, so
//! the usage it reads and the row it then adds are one atomic step: no other write runs in
//! between. The usage is the project's `project_usage` row, which the triggers of
//! migration 0015 keep; the live sum (`USAGE`) is what `repair` checks it against.

use berth_core::access::project_of;
use berth_core::quota::{self, QuotaUse, STORAGE_LIMIT, UsageRepair};
use berth_core::store::StoreError;
use rusqlite::{Connection, OptionalExtension};

use crate::{Fail, to_u64};

/// `Ok(None)` if `repo`'s project has no limit or already holds `digest` (as a blob or a
/// manifest); the usage before and after adding `size` bytes if within the limit; else
/// the quota refusal.
pub(crate) fn check(c: &Connection, repo: &str, digest: &str, size: u64) -> Result<Option<QuotaUse>, Fail> {
    let Some(project) = project_of(repo) else { return Ok(None) };
    let limit = limit(c, project)?;
    if limit < 0 {
        return Ok(None);
    }
    let (lo, hi) = (format!("{project}/"), format!("{project}0"));
    let held: Option<i64> = c
        .prepare_cached(
            "SELECT 1 FROM repositories r
               JOIN repository_blobs rb ON rb.repository_id = r.id
               JOIN blobs b ON b.digest = rb.digest
              WHERE r.name >= ?1 AND r.name < ?2 AND rb.digest = ?3 AND b.state = 'live'
             UNION ALL
             SELECT 1 FROM repositories r JOIN manifests m ON m.repository_id = r.id
              WHERE r.name >= ?1 AND r.name < ?2 AND m.digest = ?3
             LIMIT 1",
        )?
        .query_row([&lo, &hi, digest], |r| r.get(0))
        .optional()?;
    if held.is_some() {
        return Ok(None);
    }
    let used = stored_usage(c, project)?;
    quota::check(project, limit, used, size).map_err(|q| Fail(StoreError::QuotaExceeded(q)))
}

pub(crate) fn limit(c: &Connection, project: &str) -> Result<i64, Fail> {
    let v: Option<String> = c
        .prepare_cached(
            "SELECT pm.value FROM projects p JOIN project_metadata pm ON pm.project_id = p.id
              WHERE p.name = ?1 AND pm.name = ?2",
        )?
        .query_row([project, STORAGE_LIMIT], |r| r.get(0))
        .optional()?;
    Ok(quota::limit_of(v.as_deref()))
}

/// The project's stored usage; a project without a row holds nothing yet (the triggers
/// create it with the project's first blob or manifest).
pub(crate) fn stored_usage(c: &Connection, project: &str) -> Result<u64, Fail> {
    let n: Option<i64> = c
        .prepare_cached("SELECT used FROM project_usage WHERE project = ?1")?
        .query_row([project], |r| r.get(0))
        .optional()?;
    to_u64(n.unwrap_or(0), "storage usage")
}

/// Every project that has repositories or a usage row.
pub(crate) fn projects(c: &Connection) -> Result<Vec<String>, Fail> {
    Ok(c.prepare_cached(
        "SELECT DISTINCT substr(name, 1, instr(name, '/') - 1) FROM repositories WHERE instr(name, '/') > 1
             UNION SELECT project FROM project_usage",
    )?
    .query_map([], |r| r.get(0))?
    .collect::<rusqlite::Result<Vec<String>>>()?)
}

/// Recomputes `project`'s usage and corrects its row if it differs (on the writer: no
/// write runs between the sum and the correction).
pub(crate) fn repair(c: &Connection, project: &str) -> Result<Option<UsageRepair>, Fail> {
    let (lo, hi) = (format!("{project}/"), format!("{project}0"));
    let actual: i64 = c.prepare_cached(USAGE)?.query_row([&lo, &hi], |r| r.get(0))?;
    let stored: Option<i64> = c
        .prepare_cached("SELECT used FROM project_usage WHERE project = ?1")?
        .query_row([project], |r| r.get(0))
        .optional()?;
    if stored == Some(actual) {
        return Ok(None);
    }
    c.prepare_cached(
        "INSERT INTO project_usage (project, used) VALUES (?1, ?2)
         ON CONFLICT (project) DO UPDATE SET used = excluded.used",
    )?
    .execute(rusqlite::params![project, actual])?;
    Ok(Some(UsageRepair {
        project: project.to_owned(),
        stored: stored.unwrap_or(0),
        actual: to_u64(actual, "storage usage")?,
    }))
}

/// A project's storage usage recomputed from its rows, for repositories named `[?1, ?2)`:
/// the distinct live blobs linked to them and their distinct manifests, each digest once
/// (`UNION` of (digest, size) pairs; one digest is one size), driven by the project's
/// rows (not by every blob of the registry).
pub(crate) const USAGE: &str = "SELECT coalesce(sum(size), 0) FROM (
        SELECT b.digest, b.size FROM blobs b
         WHERE b.state = 'live' AND b.digest IN (
               SELECT rb.digest FROM repositories r JOIN repository_blobs rb ON rb.repository_id = r.id
                WHERE r.name >= ?1 AND r.name < ?2)
        UNION
        SELECT m.digest, m.size FROM repositories r JOIN manifests m ON m.repository_id = r.id
         WHERE r.name >= ?1 AND r.name < ?2)";

/// The whole registry's storage usage: every distinct live linked blob and manifest.
pub(crate) const USAGE_ALL: &str = "SELECT coalesce(sum(size), 0) FROM (
        SELECT b.digest, b.size FROM blobs b
         WHERE b.state = 'live' AND EXISTS (SELECT 1 FROM repository_blobs rb WHERE rb.digest = b.digest)
        UNION
        SELECT m.digest, m.size FROM manifests m)";
