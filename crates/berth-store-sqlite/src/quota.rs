//! The storage quota check of blob commits, mounts and manifest pushes (see
//! `berth_core::quota`). It runs on the writer thread inside the write's own savepoint, so
//! the usage it reads and the row it then adds are one atomic step: no other write runs in
//! between.

use berth_core::access::project_of;
use berth_core::quota::{self, QuotaUse, STORAGE_LIMIT};
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
    let used = usage(c, &lo, &hi)?;
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

/// The sizes of the distinct live blobs linked to repositories named `[lo, hi)` and of
/// their distinct manifests, each digest once (`UNION` of (digest, size) pairs; one digest
/// is one size), driven by the project's rows (not by every blob of the registry).
fn usage(c: &Connection, lo: &str, hi: &str) -> Result<u64, Fail> {
    let n: i64 = c.prepare_cached(USAGE)?.query_row([lo, hi], |r| r.get(0))?;
    to_u64(n, "storage usage")
}

/// A project's storage usage, for repositories named `[?1, ?2)`: also what the catalog's
/// `storage_usage` reports.
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
