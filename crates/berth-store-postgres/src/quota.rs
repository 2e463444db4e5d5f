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
/// the rest of the transaction, in one round trip (each round trip of a write into a
/// limited project is time other writers of the project wait). Call before taking any
/// row lock.
pub(crate) async fn lock<'r>(c: Conn<'_>, repo: &'r str) -> Result<Option<Held<'r>>, DbErr> {
    let Some(project) = project_of(repo) else { return Ok(None) };
    // The lock is taken for values that look like a limit (`limit_of` decides; a value
    // the pattern misjudges only costs a second statement below).
    let row = c
        .opt(
            "SELECT pm.value,
                    CASE WHEN pm.value ~ '^\\s*\\+?[0-9]+\\s*$'
                         THEN pg_advisory_xact_lock(hashtext('berth.quota'), hashtext($1)) IS NULL END
               FROM projects p JOIN project_metadata pm ON pm.project_id = p.id
              WHERE p.name = $1 AND pm.name = $2",
            &[&project, &STORAGE_LIMIT],
        )
        .await?;
    let (value, locked): (Option<String>, bool) = match row {
        Some(r) => (Some(col(&r, 0)?), col::<Option<bool>>(&r, 1)?.is_some()),
        None => (None, false),
    };
    let limit = quota::limit_of(value.as_deref());
    if limit < 0 {
        return Ok(None);
    }
    if !locked {
        c.exec("SELECT pg_advisory_xact_lock(hashtext('berth.quota'), hashtext($1))", &[&project]).await?;
    }
    Ok(Some(Held { project, limit }))
}

/// With the lock held: `Ok(None)` if the project already holds `digest` (as a blob or a
/// manifest); the usage before and after adding `size` bytes if within the limit; else
/// the quota refusal. One round trip: the usage is summed only when the digest is new.
pub(crate) async fn check<E: From<StoreError>>(
    c: Conn<'_>,
    held: Option<Held<'_>>,
    digest: &str,
    size: u64,
) -> Result<Option<QuotaUse>, Fail<E>> {
    let Some(Held { project, limit }) = held else { return Ok(None) };
    let (lo, hi) = (format!("{project}/"), format!("{project}0"));
    let row = c.one(CHECK, &[&lo, &hi, &digest]).await?;
    let Some(used) = col::<Option<i64>>(&row, 0)? else { return Ok(None) };
    let used = to_u64(used, "storage usage")?;
    quota::check(project, limit, used, size).map_err(|q| Fail::No(E::from(StoreError::QuotaExceeded(q))))
}

/// A project's storage usage, for repositories named `[$1, $2)`: the distinct live blobs
/// linked to them and their distinct manifests, each digest once (`UNION` of (digest,
/// size) pairs; one digest is one size), driven by the project's rows, not by every blob
/// of the registry.
macro_rules! usage_sql {
    () => {
        "SELECT coalesce(sum(size), 0)::bigint FROM (
            SELECT b.digest, b.size FROM blobs b
             WHERE b.state = 'live' AND b.digest IN (
                   SELECT rb.digest FROM repositories r JOIN repository_blobs rb ON rb.repository_id = r.id
                    WHERE r.name >= $1 AND r.name < $2)
            UNION
            SELECT m.digest, m.size FROM repositories r JOIN manifests m ON m.repository_id = r.id
             WHERE r.name >= $1 AND r.name < $2) AS used"
    };
}

/// The project's usage (`usage_sql`); also what the catalog's `storage_usage` reports.
pub(crate) const USAGE: &str = usage_sql!();

/// NULL if the project holds digest `$3` (a live linked blob or a manifest), else its
/// usage: PostgreSQL evaluates a `CASE` branch only when it is taken.
const CHECK: &str = concat!(
    "SELECT CASE WHEN EXISTS (
            SELECT 1 FROM repositories r
              JOIN repository_blobs rb ON rb.repository_id = r.id
              JOIN blobs b ON b.digest = rb.digest
             WHERE r.name >= $1 AND r.name < $2 AND rb.digest = $3 AND b.state = 'live'
            UNION ALL
            SELECT 1 FROM repositories r JOIN manifests m ON m.repository_id = r.id
             WHERE r.name >= $1 AND r.name < $2 AND m.digest = $3)
        THEN NULL ELSE (",
    usage_sql!(),
    ") END"
);

/// The whole registry's storage usage: every distinct live linked blob and manifest.
pub(crate) const USAGE_ALL: &str = "SELECT coalesce(sum(size), 0)::bigint FROM (
        SELECT b.digest, b.size FROM blobs b
         WHERE b.state = 'live' AND EXISTS (SELECT 1 FROM repository_blobs rb WHERE rb.digest = b.digest)
        UNION
        SELECT m.digest, m.size FROM manifests m) AS used";
