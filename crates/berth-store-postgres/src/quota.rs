//! The storage quota check of blob commits, mounts and manifest pushes (see
//! `berth_core::quota`).
//!
//! The usage is the project's `project_usage` row plus its `project_usage_delta` rows,
//! which the triggers of migration 0012 append in the same transaction as every change
//! to what the project holds (`project_digests`); the quota check and the repair fold
//! the deltas into the row. The live sum (`usage_sql!`) is what `repair` checks it
//! against.
//!
//! Two instances adding blobs to one project at once must not both pass the check on
//! the same old usage. The check (`berth_quota_check`, one round trip) therefore locks a
//! limited project's usage row before it reads whether the project holds the digest and
//! its usage, in statements that start after the lock is held (READ COMMITTED), so they
//! see everything the previous holder committed; the row stays locked until the commit.
//! The caller runs it after locking the blob's row and before writing the link or the
//! manifest: like the triggers, and GC's claims, blob rows before project rows, so the
//! two never wait for each other in a cycle. Projects without a limit lock nothing here
//! (the triggers lock their row only when the link or manifest is written).

use berth_core::access::project_of;
use berth_core::quota::{self, QuotaUse, UsageRepair};
use berth_core::store::StoreError;

use crate::pool::{Conn, DbErr, Fail, col};
use crate::to_u64;

/// A project's storage usage recomputed from its rows, for repositories named `[$1, $2)`: the distinct live blobs
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

/// `Ok(None)` if `repo`'s project has no limit or already holds `digest` (as a blob or a
/// manifest); the usage before and after adding `size` bytes if within the limit; else
/// the quota refusal. A limited project's usage row stays locked until the commit.
pub(crate) async fn check<E: From<StoreError>>(
    c: Conn<'_>,
    repo: &str,
    digest: &str,
    size: u64,
) -> Result<Option<QuotaUse>, Fail<E>> {
    let Some(project) = project_of(repo) else { return Ok(None) };
    let row = c.one(CHECK, &[&project, &digest]).await?;
    judge(project, &row, size)
}

/// The check's statement, for a caller that sends it with others ([`Conn::pipeline`]):
/// `$1` the project ([`project_of`] the repository; none, no check), `$2` the digest.
pub(crate) const CHECK: &str = "SELECT lim, used FROM berth_quota_check($1, $2)";

/// [`check`]'s answer from the row [`CHECK`] returned.
pub(crate) fn judge<E: From<StoreError>>(
    project: &str,
    row: &tokio_postgres::Row,
    size: u64,
) -> Result<Option<QuotaUse>, Fail<E>> {
    let limit = quota::limit_of(col::<Option<String>>(row, 0)?.as_deref());
    let Some(used) = col::<Option<i64>>(row, 1)? else { return Ok(None) };
    if limit < 0 {
        return Ok(None);
    }
    let used = to_u64(used, "storage usage")?;
    quota::check(project, limit, used, size).map_err(|q| Fail::No(E::from(StoreError::QuotaExceeded(q))))
}

/// The project's stored usage: its row (none: nothing folded yet) plus its deltas.
pub(crate) async fn stored_usage(c: Conn<'_>, project: &str) -> Result<u64, DbErr> {
    let row = c
        .one(
            "SELECT (coalesce((SELECT used FROM project_usage WHERE project = $1), 0)
                   + coalesce((SELECT sum(delta) FROM project_usage_delta WHERE project = $1), 0))::bigint",
            &[&project],
        )
        .await?;
    to_u64(col(&row, 0)?, "storage usage")
}

/// Every project that has repositories or a usage row.
pub(crate) const PROJECTS: &str =
    "SELECT berth_project_of(name) FROM repositories WHERE berth_project_of(name) IS NOT NULL
     UNION SELECT project FROM project_usage";

/// Recomputes `project`'s usage with its row locked and corrects the row if it differs
/// from the stored usage; first brings its `project_digests` rows in line with what it
/// holds (the removals and additions that would otherwise be miscounted later).
pub(crate) async fn repair(c: Conn<'_>, project: &str) -> Result<Option<UsageRepair>, DbErr> {
    c.exec("SELECT berth_usage_lock(ARRAY[$1::text])", &[&project]).await?;
    c.exec("DELETE FROM project_digests WHERE project = $1 AND NOT berth_usage_held(project, digest)", &[&project])
        .await?;
    let (lo, hi) = (format!("{project}/"), format!("{project}0"));
    c.exec(
        "INSERT INTO project_digests (project, digest, size)
         SELECT $3, digest, max(size) FROM (
             SELECT b.digest, b.size FROM repositories r
               JOIN repository_blobs rb ON rb.repository_id = r.id
               JOIN blobs b ON b.digest = rb.digest AND b.state = 'live'
              WHERE r.name >= $1 AND r.name < $2
             UNION
             SELECT m.digest, m.size FROM repositories r JOIN manifests m ON m.repository_id = r.id
              WHERE r.name >= $1 AND r.name < $2) held
         GROUP BY digest
         ON CONFLICT (project, digest) DO NOTHING",
        &[&lo, &hi, &project],
    )
    .await?;
    // One statement, one snapshot: the deltas it folds are those of the commits the sum sees.
    let row = c
        .one(
            concat!(
                "WITH f AS (DELETE FROM project_usage_delta WHERE project = $3 RETURNING delta)
                 SELECT (u.used + coalesce((SELECT sum(delta) FROM f), 0))::bigint, (",
                usage_sql!(),
                ") FROM project_usage u WHERE u.project = $3"
            ),
            &[&lo, &hi, &project],
        )
        .await?;
    let (stored, actual): (i64, i64) = (col(&row, 0)?, col(&row, 1)?);
    c.exec("UPDATE project_usage SET used = $2 WHERE project = $1", &[&project, &actual]).await?;
    if stored == actual {
        return Ok(None);
    }
    Ok(Some(UsageRepair { project: project.to_owned(), stored, actual: to_u64(actual, "storage usage")? }))
}

/// The whole registry's storage usage: every distinct live linked blob and manifest.
pub(crate) const USAGE_ALL: &str = "SELECT coalesce(sum(size), 0)::bigint FROM (
        SELECT b.digest, b.size FROM blobs b
         WHERE b.state = 'live' AND EXISTS (SELECT 1 FROM repository_blobs rb WHERE rb.digest = b.digest)
        UNION
        SELECT m.digest, m.size FROM manifests m) AS used";
