//! The storage quota check of blob commits, mounts and manifest pushes (see
//! `berth_core::quota`).
//!
//! Two instances adding blobs to one project at once must not both pass the check on
//! the same old usage. A write into a project with a limit therefore first takes a
//! transaction-scoped advisory lock on the project (class "berth.quota"), before any row
//! lock (so it cannot deadlock with GC or another push over a blob row), and only then
//! reads the usage. In READ COMMITTED each statement sees a fresh snapshot, and the
//! previous holder released the lock only after its commit was visible, so the usage read
//! includes every blob a concurrent push added. Projects without a limit take no lock.

use berth_core::access::project_of;
use berth_core::quota::{self, QuotaUse, STORAGE_LIMIT};
use berth_core::store::StoreError;

use crate::pool::{Conn, DbErr, Fail, col};
use crate::to_u64;

/// A project's limit, read (and, if there is one, locked) at the start of a write.
pub(crate) struct Held<'p> {
    project: &'p str,
    limit: i64,
}

/// Reads `repo`'s project limit and, if it has one, takes the project's quota lock for
/// the rest of the transaction. Call before taking any row lock.
pub(crate) async fn lock<'r>(c: Conn<'_>, repo: &'r str) -> Result<Option<Held<'r>>, DbErr> {
    let Some(project) = project_of(repo) else { return Ok(None) };
    let row = c
        .opt(
            "SELECT pm.value FROM projects p JOIN project_metadata pm ON pm.project_id = p.id
              WHERE p.name = $1 AND pm.name = $2",
            &[&project, &STORAGE_LIMIT],
        )
        .await?;
    let value: Option<String> = row.map(|r| col(&r, 0)).transpose()?;
    let limit = quota::limit_of(value.as_deref());
    if limit < 0 {
        return Ok(None);
    }
    c.exec("SELECT pg_advisory_xact_lock(hashtext('berth.quota'), hashtext($1))", &[&project]).await?;
    Ok(Some(Held { project, limit }))
}

/// With the lock held: `Ok(None)` if the project already holds `digest` (as a blob or a
/// manifest); the usage before and after adding `size` bytes if within the limit; else
/// the quota refusal.
pub(crate) async fn check<E: From<StoreError>>(
    c: Conn<'_>,
    held: Option<Held<'_>>,
    digest: &str,
    size: u64,
) -> Result<Option<QuotaUse>, Fail<E>> {
    let Some(Held { project, limit }) = held else { return Ok(None) };
    let (lo, hi) = (format!("{project}/"), format!("{project}0"));
    let present = c
        .opt(
            "SELECT 1 FROM repositories r
               JOIN repository_blobs rb ON rb.repository_id = r.id
               JOIN blobs b ON b.digest = rb.digest
              WHERE r.name >= $1 AND r.name < $2 AND rb.digest = $3 AND b.state = 'live'
             UNION ALL
             SELECT 1 FROM repositories r JOIN manifests m ON m.repository_id = r.id
              WHERE r.name >= $1 AND r.name < $2 AND m.digest = $3
             LIMIT 1",
            &[&lo, &hi, &digest],
        )
        .await?;
    if present.is_some() {
        return Ok(None);
    }
    let row = c.one(USAGE, &[&lo, &hi]).await?;
    let used = to_u64(col(&row, 0)?, "storage usage")?;
    quota::check(project, limit, used, size).map_err(|q| Fail::No(E::from(StoreError::QuotaExceeded(q))))
}

/// A project's storage usage, for repositories named `[$1, $2)`: the distinct live blobs
/// linked to them and their distinct manifests, each digest once (`UNION` of (digest,
/// size) pairs; one digest is one size), driven by the project's rows, not by every blob
/// of the registry. Also what the catalog's `storage_usage` reports.
pub(crate) const USAGE: &str = "SELECT coalesce(sum(size), 0)::bigint FROM (
        SELECT b.digest, b.size FROM blobs b
         WHERE b.state = 'live' AND b.digest IN (
               SELECT rb.digest FROM repositories r JOIN repository_blobs rb ON rb.repository_id = r.id
                WHERE r.name >= $1 AND r.name < $2)
        UNION
        SELECT m.digest, m.size FROM repositories r JOIN manifests m ON m.repository_id = r.id
         WHERE r.name >= $1 AND r.name < $2) AS used";

/// The whole registry's storage usage: every distinct live linked blob and manifest.
pub(crate) const USAGE_ALL: &str = "SELECT coalesce(sum(size), 0)::bigint FROM (
        SELECT b.digest, b.size FROM blobs b
         WHERE b.state = 'live' AND EXISTS (SELECT 1 FROM repository_blobs rb WHERE rb.digest = b.digest)
        UNION
        SELECT m.digest, m.size FROM manifests m) AS used";
