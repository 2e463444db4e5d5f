//! [`JobStore`] on PostgreSQL (tables from `migrations/0004_jobs.sql`), with the same
//! semantics as SQLite's. Where SQLite's single writer serialises, this store relies on:
//! - claims of one kind serialised by a transaction-scoped advisory lock, so the
//!   per-kind limit holds across instances, and `jobs_single_active` (a partial unique
//!   index) as the last word on concurrency keys;
//! - fences as predicates of the very UPDATE they guard (or a `FOR UPDATE` read first);
//! - firing a schedule as a compare-and-set on `next_fire_at` in the transaction that
//!   creates the execution, so a tick fires once however many instances see it due.
//!
//! Times come from the database's clock, so instances with skewed clocks agree on leases.

use async_trait::async_trait;
use berth_core::store::StoreResult;
use berth_core::store::jobs::{
    CLAIM_LOOKAHEAD, Execution, Fence, Finish, Job, JobState, JobStore, LogLevel, LogLine, MAX_LOG_LINES, NewExecution,
    NewJob, NewSchedule, QueueStat, Schedule, TaskCounts, WorkerPool, merge_paused, next_state, pick_claimable,
};
use tokio_postgres::Row;

use crate::{Conn, DbErr, PgStore, Tx, backend, col};

/// The database's clock in milliseconds, as an expression.
const NOW_MS: &str = "(extract(epoch FROM clock_timestamp()) * 1000)::bigint";

async fn db_now(c: Conn<'_>) -> Result<i64, DbErr> {
    col(&c.one(&format!("SELECT {NOW_MS}"), &[]).await?, 0)
}

const JOB_COLS: &str = "id, execution_id, kind, args, state, attempt, max_attempts, lease_owner, run_at, \
     cancel_requested_at IS NOT NULL, progress, last_error, created_at, started_at, finished_at, updated_at";

fn job_row(r: &Row) -> Result<Job, DbErr> {
    let state: String = col(r, 4)?;
    Ok(Job {
        id: col(r, 0)?,
        execution_id: col(r, 1)?,
        kind: col(r, 2)?,
        args: col(r, 3)?,
        state: JobState::parse(&state).ok_or_else(|| backend(format!("stored job state {state:?} is unknown")))?,
        attempt: col(r, 5)?,
        max_attempts: col(r, 6)?,
        lease_owner: col(r, 7)?,
        run_at: col(r, 8)?,
        cancel_requested: col(r, 9)?,
        progress: col(r, 10)?,
        last_error: col(r, 11)?,
        created_at: col(r, 12)?,
        started_at: col(r, 13)?,
        finished_at: col(r, 14)?,
        updated_at: col(r, 15)?,
    })
}

fn jobs(rows: &[Row]) -> Result<Vec<Job>, DbErr> {
    rows.iter().map(job_row).collect()
}

const SCHEDULE_COLS: &str =
    "id, vendor_type, vendor_id, cron_type, cron, args, next_fire_at, last_fired_at, created_at, updated_at";

fn schedule_row(r: &Row) -> Result<Schedule, DbErr> {
    Ok(Schedule {
        id: col(r, 0)?,
        vendor_type: col(r, 1)?,
        vendor_id: col(r, 2)?,
        cron_type: col(r, 3)?,
        cron: col(r, 4)?,
        args: col(r, 5)?,
        next_fire_at: col(r, 6)?,
        last_fired_at: col(r, 7)?,
        created_at: col(r, 8)?,
        updated_at: col(r, 9)?,
    })
}

const EXEC_SELECT: &str = "SELECT e.id, e.vendor_type, e.vendor_id, e.trigger, e.extra_attrs, e.created_at,
        max(j.updated_at), max(j.finished_at),
        count(j.id) FILTER (WHERE j.state = 'queued'), count(j.id) FILTER (WHERE j.state = 'running'),
        count(j.id) FILTER (WHERE j.state = 'succeeded'), count(j.id) FILTER (WHERE j.state = 'cancelled'),
        count(j.id) FILTER (WHERE j.state = 'dead')
   FROM job_executions e LEFT JOIN jobs j ON j.execution_id = e.id";

fn exec_row(r: &Row) -> Result<Execution, DbErr> {
    let created_at: i64 = col(r, 5)?;
    let updated: Option<i64> = col(r, 6)?;
    let finished: Option<i64> = col(r, 7)?;
    let n = |i| col::<i64>(r, i).map(|v| v.max(0) as u64);
    let counts = TaskCounts { queued: n(8)?, running: n(9)?, succeeded: n(10)?, cancelled: n(11)?, dead: n(12)? };
    let ended_at = (counts.queued + counts.running == 0).then(|| finished.unwrap_or(created_at));
    Ok(Execution {
        id: col(r, 0)?,
        vendor_type: col(r, 1)?,
        vendor_id: col(r, 2)?,
        trigger: col(r, 3)?,
        extra_attrs: col(r, 4)?,
        created_at,
        updated_at: updated.unwrap_or(created_at).max(created_at),
        ended_at,
        counts,
    })
}

async fn insert_execution(c: Conn<'_>, exec: &NewExecution, tasks: &[NewJob], now: i64) -> Result<i64, DbErr> {
    let row = c
        .one(
            "INSERT INTO job_executions (vendor_type, vendor_id, trigger, extra_attrs, created_at)
             VALUES ($1, $2, $3, $4, $5) RETURNING id",
            &[&exec.vendor_type, &exec.vendor_id, &exec.trigger, &exec.extra_attrs, &now],
        )
        .await?;
    let id: i64 = col(&row, 0)?;
    insert_tasks(c, id, tasks, now).await?;
    Ok(id)
}

async fn insert_tasks(c: Conn<'_>, id: i64, tasks: &[NewJob], now: i64) -> Result<(), DbErr> {
    if tasks.is_empty() {
        return Ok(());
    }
    // One statement for every task: an execution may have thousands.
    let kinds: Vec<&str> = tasks.iter().map(|t| t.kind.as_str()).collect();
    let args: Vec<&str> = tasks.iter().map(|t| t.args.as_str()).collect();
    let priorities: Vec<i16> = tasks.iter().map(|t| t.priority).collect();
    let run_at: Vec<i64> = tasks.iter().map(|t| now + t.delay_ms.max(0)).collect();
    let attempts: Vec<i32> = tasks.iter().map(|t| t.max_attempts.max(1)).collect();
    let keys: Vec<Option<&str>> = tasks.iter().map(|t| t.concurrency_key.as_deref()).collect();
    c.exec(
        "INSERT INTO jobs (execution_id, kind, args, state, priority, run_at, max_attempts, concurrency_key,
                           created_at, updated_at)
         SELECT $1, k, a, 'queued', p, r, m, ck, $2, $2
           FROM unnest($3::text[], $4::text[], $5::smallint[], $6::bigint[], $7::int[], $8::text[])
                WITH ORDINALITY AS t(k, a, p, r, m, ck, n)
          ORDER BY n",
        &[&id, &now, &kinds, &args, &priorities, &run_at, &attempts, &keys],
    )
    .await?;
    Ok(())
}

/// Locks the row of a job the fence still owns.
async fn fenced(c: Conn<'_>, f: &Fence) -> Result<Option<(i32, bool)>, DbErr> {
    let row = c
        .opt(
            "SELECT max_attempts, cancel_requested_at IS NOT NULL FROM jobs
              WHERE id = $1 AND attempt = $2 AND lease_owner = $3 AND state = 'running' FOR UPDATE",
            &[&f.job_id, &f.attempt, &f.owner],
        )
        .await?;
    row.map(|r| Ok((col(&r, 0)?, col(&r, 1)?))).transpose()
}

/// Moves a running job to where `how` leaves it (the rule is `next_state`).
async fn end_attempt(
    c: Conn<'_>,
    id: i64,
    attempt: i32,
    max_attempts: i32,
    cancel: bool,
    how: &Finish,
    now: i64,
) -> Result<(), DbErr> {
    let (state, retry_in) = next_state(how, attempt, max_attempts, cancel);
    let finished = (state != JobState::Queued).then_some(now);
    c.exec(
        "UPDATE jobs SET state = $2, run_at = coalesce($3, run_at), finished_at = $4, lease_owner = NULL,
                lease_expires_at = NULL, last_error = coalesce($5, last_error), updated_at = $6
          WHERE id = $1",
        &[&id, &state.as_str(), &retry_in.map(|ms| now + ms), &finished, &how.error(), &now],
    )
    .await?;
    Ok(())
}

/// Cancels the queued jobs matching `filter` and asks the running ones to stop.
async fn stop_where(c: Conn<'_>, filter: &str, arg: &(dyn tokio_postgres::types::ToSql + Sync)) -> Result<u64, DbErr> {
    let now = db_now(c).await?;
    let queued = c
        .exec(
            &format!(
                "UPDATE jobs SET state = 'cancelled', finished_at = $2, updated_at = $2
                  WHERE {filter} AND state = 'queued'"
            ),
            &[arg, &now],
        )
        .await?;
    let running = c
        .exec(
            &format!(
                "UPDATE jobs SET cancel_requested_at = coalesce(cancel_requested_at, $2), updated_at = $2
                  WHERE {filter} AND state = 'running'"
            ),
            &[arg, &now],
        )
        .await?;
    Ok(queued + running)
}

#[async_trait]
impl JobStore for PgStore {
    async fn job_clock(&self) -> StoreResult<i64> {
        self.db(Tx::Read, &(), |c, ()| Box::pin(async move { Ok(db_now(c).await?) })).await
    }

    async fn create_execution(&self, exec: &NewExecution, tasks: &[NewJob]) -> StoreResult<i64> {
        self.db(Tx::Write, &(exec, tasks), |c, (exec, tasks)| {
            Box::pin(async move {
                let now = db_now(c).await?;
                Ok(insert_execution(c, exec, tasks, now).await?)
            })
        })
        .await
    }

    async fn execution(&self, id: i64) -> StoreResult<Option<Execution>> {
        self.db(Tx::Read, &id, |c, id| {
            Box::pin(async move {
                let row = c.opt(&format!("{EXEC_SELECT} WHERE e.id = $1 GROUP BY e.id"), &[id]).await?;
                Ok(row.map(|r| exec_row(&r)).transpose()?)
            })
        })
        .await
    }

    async fn executions(
        &self,
        vendor_type: &str,
        vendor_id: Option<i64>,
        offset: u64,
        limit: u64,
    ) -> StoreResult<(Vec<Execution>, u64)> {
        let args = (
            vendor_type,
            vendor_id,
            i64::try_from(offset).unwrap_or(i64::MAX),
            i64::try_from(limit).unwrap_or(i64::MAX),
        );
        self.db(Tx::Read, &args, |c, (vt, vid, offset, limit)| {
            Box::pin(async move {
                let rows = c
                    .rows(
                        &format!(
                            "{EXEC_SELECT} WHERE e.vendor_type = $1 AND ($2::bigint IS NULL OR e.vendor_id = $2)
                              GROUP BY e.id ORDER BY e.id DESC LIMIT $3 OFFSET $4"
                        ),
                        &[vt, vid, limit, offset],
                    )
                    .await?;
                let total: i64 = col(
                    &c.one(
                        "SELECT count(*) FROM job_executions WHERE vendor_type = $1 AND ($2::bigint IS NULL OR vendor_id = $2)",
                        &[vt, vid],
                    )
                    .await?,
                    0,
                )?;
                Ok((rows.iter().map(exec_row).collect::<Result<_, _>>()?, total.max(0) as u64))
            })
        })
        .await
    }

    async fn execution_tasks(&self, execution_id: i64) -> StoreResult<Vec<Job>> {
        self.db(Tx::Read, &execution_id, |c, id| {
            Box::pin(async move {
                Ok(jobs(
                    &c.rows(&format!("SELECT {JOB_COLS} FROM jobs WHERE execution_id = $1 ORDER BY id"), &[id]).await?,
                )?)
            })
        })
        .await
    }

    async fn prune_executions(&self, vendor_type: &str, before: i64, keep: u64) -> StoreResult<u64> {
        let args = (vendor_type, before, i64::try_from(keep).unwrap_or(i64::MAX));
        self.db(Tx::Write, &args, |c, (vt, before, keep)| {
            Box::pin(async move {
                Ok(c.exec(
                    "DELETE FROM job_executions e
                      WHERE e.vendor_type = $1
                        AND e.id NOT IN (SELECT id FROM job_executions WHERE vendor_type = $1 ORDER BY id DESC LIMIT $3)
                        AND NOT EXISTS (SELECT 1 FROM jobs j WHERE j.execution_id = e.id
                                          AND j.state IN ('queued', 'running'))
                        AND coalesce((SELECT max(finished_at) FROM jobs j WHERE j.execution_id = e.id),
                                     e.created_at) < $2",
                    &[vt, before, keep],
                )
                .await?)
            })
        })
        .await
    }

    async fn claim(&self, kind: &str, owner: &str, n: u32, limit: u32, lease_ms: i64) -> StoreResult<Vec<Job>> {
        let args = (kind, owner, i64::from(n), i64::from(limit), lease_ms);
        self.db(Tx::Write, &args, |c, (kind, owner, n, limit, lease_ms)| {
            Box::pin(async move {
                // One claimer per kind at a time across the cluster: the count below stays
                // true until this transaction commits its claims.
                c.exec("SELECT pg_advisory_xact_lock(hashtext('berth.jobs.claim'), hashtext($1))", &[kind]).await?;
                // The queue's state and its head in one round trip; the head is read
                // for the most this claim could take (`n`), `room` trims it below.
                let rows = c
                    .rows(
                        &format!(
                            "WITH s AS (SELECT coalesce((SELECT paused FROM job_queues WHERE kind = $1), false) AS paused,
                                               (SELECT count(*) FROM jobs WHERE kind = $1 AND state = 'running') AS running,
                                               {NOW_MS} AS now)
                             SELECT s.paused, s.running, s.now, q.id, q.concurrency_key
                               FROM s LEFT JOIN LATERAL (
                                    SELECT id, concurrency_key FROM jobs
                                     WHERE kind = $1 AND state = 'queued' AND run_at <= s.now AND NOT s.paused
                                     ORDER BY priority DESC, run_at, id LIMIT $2) q ON true"
                        ),
                        &[kind, &(n * i64::from(CLAIM_LOOKAHEAD))],
                    )
                    .await?;
                let head = rows.first().ok_or_else(|| backend("the claim's queue read returned no row"))?;
                let (paused, running, now): (bool, i64, i64) = (col(head, 0)?, col(head, 1)?, col(head, 2)?);
                if paused {
                    return Ok(Vec::new());
                }
                let room = (limit - running).min(*n);
                if room <= 0 {
                    return Ok(Vec::new());
                }
                let mut candidates: Vec<(i64, Option<String>)> = Vec::with_capacity(rows.len());
                for r in &rows {
                    if let Some(id) = col::<Option<i64>>(r, 3)? {
                        candidates.push((id, col(r, 4)?));
                    }
                }
                if candidates.is_empty() {
                    return Ok(Vec::new());
                }
                let busy_keys: Vec<String> = if candidates.iter().any(|(_, k)| k.is_some()) {
                    c.rows(
                        "SELECT concurrency_key FROM jobs WHERE state = 'running' AND concurrency_key IS NOT NULL",
                        &[],
                    )
                    .await?
                    .iter()
                    .map(|r| col(r, 0))
                    .collect::<Result<_, _>>()?
                } else {
                    Vec::new()
                };
                let ids = pick_claimable(&candidates, &busy_keys, room as usize);
                let rows = c
                    .rows(
                        &format!(
                            "UPDATE jobs SET state = 'running', attempt = attempt + 1, lease_owner = $2,
                                    lease_expires_at = $3, started_at = $4, updated_at = $4
                              WHERE id = ANY($1) AND state = 'queued'
                              RETURNING {JOB_COLS}"
                        ),
                        &[&ids, owner, &(now + lease_ms), &now],
                    )
                    .await?;
                let mut out = jobs(&rows)?;
                out.sort_by_key(|j| j.id);
                Ok(out)
            })
        })
        .await
    }

    async fn heartbeat(&self, fence: &Fence, lease_ms: i64) -> StoreResult<Option<bool>> {
        self.db(Tx::Idempotent, &(fence, lease_ms), |c, (f, lease_ms)| {
            Box::pin(async move {
                let row = c
                    .opt(
                        &format!(
                            "UPDATE jobs SET lease_expires_at = {NOW_MS} + $4, updated_at = {NOW_MS}
                              WHERE id = $1 AND attempt = $2 AND lease_owner = $3 AND state = 'running'
                              RETURNING cancel_requested_at IS NOT NULL"
                        ),
                        &[&f.job_id, &f.attempt, &f.owner, lease_ms],
                    )
                    .await?;
                Ok(row.map(|r| col(&r, 0)).transpose()?)
            })
        })
        .await
    }

    async fn save_progress(&self, fence: &Fence, progress: &str) -> StoreResult<bool> {
        self.db(Tx::Idempotent, &(fence, progress), |c, (f, progress)| {
            Box::pin(async move {
                let now = db_now(c).await?;
                Ok(c.exec(
                    "UPDATE jobs SET progress = $4, updated_at = $5
                      WHERE id = $1 AND attempt = $2 AND lease_owner = $3 AND state = 'running'",
                    &[&f.job_id, &f.attempt, &f.owner, progress, &now],
                )
                .await?
                    == 1)
            })
        })
        .await
    }

    async fn append_log(&self, fence: &Fence, lines: &[LogLine]) -> StoreResult<bool> {
        self.db(Tx::Write, &(fence, lines), |c, (f, lines)| {
            Box::pin(async move {
                // The row lock also orders concurrent appends of one job.
                if fenced(c, f).await?.is_none() {
                    return Ok(false);
                }
                let next: i64 = col(
                    &c.one("SELECT coalesce(max(seq), 0) + 1 FROM job_logs WHERE job_id = $1", &[&f.job_id]).await?,
                    0,
                )?;
                for (i, l) in lines.iter().enumerate() {
                    let seq = next + i as i64;
                    if seq > MAX_LOG_LINES {
                        break;
                    }
                    c.exec(
                        "INSERT INTO job_logs (job_id, seq, attempt, at, level, message) VALUES ($1, $2, $3, $4, $5, $6)",
                        &[&f.job_id, &seq, &l.attempt, &l.at, &l.level.code(), &l.message],
                    )
                    .await?;
                }
                Ok(true)
            })
        })
        .await
    }

    async fn hand_off(&self, fence: &Fence, tasks: &[NewJob]) -> StoreResult<bool> {
        self.db(Tx::Write, &(fence, tasks), |c, (f, tasks)| {
            Box::pin(async move {
                let Some((max_attempts, cancel)) = fenced(c, f).await? else {
                    return Ok(false);
                };
                let now = db_now(c).await?;
                let row = c.one("SELECT execution_id FROM jobs WHERE id = $1", &[&f.job_id]).await?;
                let exec: i64 = col(&row, 0)?;
                insert_tasks(c, exec, tasks, now).await?;
                end_attempt(c, f.job_id, f.attempt, max_attempts, cancel, &Finish::Succeeded, now).await?;
                Ok(true)
            })
        })
        .await
    }

    async fn finish(&self, fence: &Fence, how: &Finish) -> StoreResult<bool> {
        self.db(Tx::Write, &(fence, how), |c, (f, how)| {
            Box::pin(async move {
                // Success and stop end the same way whatever the row holds: one fenced
                // statement. A failure's outcome depends on attempts and stop requests.
                if let Some(state) = match how {
                    Finish::Succeeded => Some(JobState::Succeeded),
                    Finish::Cancelled => Some(JobState::Cancelled),
                    Finish::Failed { .. } => None,
                } {
                    let n = c
                        .exec(
                            &format!(
                                "UPDATE jobs SET state = $4, finished_at = {NOW_MS}, lease_owner = NULL,
                                        lease_expires_at = NULL, updated_at = {NOW_MS}
                                  WHERE id = $1 AND attempt = $2 AND lease_owner = $3 AND state = 'running'"
                            ),
                            &[&f.job_id, &f.attempt, &f.owner, &state.as_str()],
                        )
                        .await?;
                    return Ok(n == 1);
                }
                let Some((max_attempts, cancel)) = fenced(c, f).await? else {
                    return Ok(false);
                };
                let now = db_now(c).await?;
                end_attempt(c, f.job_id, f.attempt, max_attempts, cancel, how, now).await?;
                Ok(true)
            })
        })
        .await
    }

    async fn finish_many(&self, ends: &[(Fence, Finish)]) -> StoreResult<Vec<bool>> {
        self.db(Tx::Write, ends, |c, ends| {
            Box::pin(async move {
                let mut out = vec![false; ends.len()];
                // Successes and stops: one fenced UPDATE for all of them.
                let simple: Vec<usize> =
                    (0..ends.len()).filter(|&i| !matches!(ends[i].1, Finish::Failed { .. })).collect();
                if !simple.is_empty() {
                    let ids: Vec<i64> = simple.iter().map(|&i| ends[i].0.job_id).collect();
                    let attempts: Vec<i32> = simple.iter().map(|&i| ends[i].0.attempt).collect();
                    let owners: Vec<&str> = simple.iter().map(|&i| ends[i].0.owner.as_str()).collect();
                    let states: Vec<&str> = simple
                        .iter()
                        .map(|&i| match ends[i].1 {
                            Finish::Cancelled => JobState::Cancelled.as_str(),
                            _ => JobState::Succeeded.as_str(),
                        })
                        .collect();
                    let rows = c
                        .rows(
                            &format!(
                                "UPDATE jobs j SET state = t.s, finished_at = {NOW_MS}, lease_owner = NULL,
                                        lease_expires_at = NULL, updated_at = {NOW_MS}
                                   FROM unnest($1::bigint[], $2::int[], $3::text[], $4::text[]) AS t(id, a, o, s)
                                  WHERE j.id = t.id AND j.attempt = t.a AND j.lease_owner = t.o
                                    AND j.state = 'running'
                              RETURNING j.id, j.attempt"
                            ),
                            &[&ids, &attempts, &owners, &states],
                        )
                        .await?;
                    for r in &rows {
                        let (id, attempt): (i64, i32) = (col(r, 0)?, col(r, 1)?);
                        for &i in &simple {
                            if ends[i].0.job_id == id && ends[i].0.attempt == attempt {
                                out[i] = true;
                            }
                        }
                    }
                }
                // Failures depend on each row's attempts and stop request.
                for (i, (f, how)) in ends.iter().enumerate() {
                    if !matches!(how, Finish::Failed { .. }) {
                        continue;
                    }
                    if let Some((max_attempts, cancel)) = fenced(c, f).await? {
                        let now = db_now(c).await?;
                        end_attempt(c, f.job_id, f.attempt, max_attempts, cancel, how, now).await?;
                        out[i] = true;
                    }
                }
                Ok(out)
            })
        })
        .await
    }

    async fn reap_expired(&self, retry_in_ms: &(dyn Fn(i32) -> i64 + Sync)) -> StoreResult<u64> {
        let delays: Vec<i64> = (0..=64).map(retry_in_ms).collect();
        self.db(Tx::Write, &delays, |c, delays| {
            Box::pin(async move {
                let now = db_now(c).await?;
                // SKIP LOCKED: a row a worker is finishing right now is not expired.
                let rows = c
                    .rows(
                        "SELECT id, attempt, max_attempts, cancel_requested_at IS NOT NULL FROM jobs
                          WHERE state = 'running' AND lease_expires_at < $1 FOR UPDATE SKIP LOCKED",
                        &[&now],
                    )
                    .await?;
                for r in &rows {
                    let (id, attempt, max, cancel): (i64, i32, i32, bool) =
                        (col(r, 0)?, col(r, 1)?, col(r, 2)?, col(r, 3)?);
                    let how = Finish::Failed {
                        error: "the worker running it stopped (its lease expired)".into(),
                        retry_in_ms: Some(delays[attempt.clamp(0, 64) as usize]),
                    };
                    end_attempt(c, id, attempt, max, cancel, &how, now).await?;
                }
                Ok(rows.len() as u64)
            })
        })
        .await
    }

    async fn stop_job(&self, job_id: i64) -> StoreResult<bool> {
        self.db(Tx::Idempotent, &job_id, |c, id| Box::pin(async move { Ok(stop_where(c, "id = $1", id).await? > 0) }))
            .await
    }

    async fn stop_execution(&self, execution_id: i64) -> StoreResult<bool> {
        self.db(Tx::Idempotent, &execution_id, |c, id| {
            Box::pin(async move { Ok(stop_where(c, "execution_id = $1", id).await? > 0) })
        })
        .await
    }

    async fn stop_kind(&self, kind: &str) -> StoreResult<u64> {
        self.db(Tx::Write, kind, |c, kind| Box::pin(async move { Ok(stop_where(c, "kind = $1", &kind).await?) })).await
    }

    async fn job(&self, job_id: i64) -> StoreResult<Option<Job>> {
        self.db(Tx::Read, &job_id, |c, id| {
            Box::pin(async move {
                let row = c.opt(&format!("SELECT {JOB_COLS} FROM jobs WHERE id = $1"), &[id]).await?;
                Ok(row.map(|r| job_row(&r)).transpose()?)
            })
        })
        .await
    }

    async fn job_log(&self, job_id: i64) -> StoreResult<Vec<LogLine>> {
        self.db(Tx::Read, &job_id, |c, id| {
            Box::pin(async move {
                let rows = c
                    .rows("SELECT at, level, attempt, message FROM job_logs WHERE job_id = $1 ORDER BY seq", &[id])
                    .await?;
                Ok(rows
                    .iter()
                    .map(|r| {
                        Ok(LogLine {
                            at: col(r, 0)?,
                            level: LogLevel::from_code(col(r, 1)?),
                            attempt: col(r, 2)?,
                            message: col(r, 3)?,
                        })
                    })
                    .collect::<Result<_, DbErr>>()?)
            })
        })
        .await
    }

    async fn set_kind_paused(&self, kind: &str, paused: bool) -> StoreResult<()> {
        self.db(Tx::Idempotent, &(kind, paused), |c, (kind, paused)| {
            Box::pin(async move {
                c.exec(
                    "INSERT INTO job_queues (kind, paused) VALUES ($1, $2)
                     ON CONFLICT (kind) DO UPDATE SET paused = excluded.paused",
                    &[kind, paused],
                )
                .await?;
                Ok(())
            })
        })
        .await
    }

    async fn queue_stats(&self) -> StoreResult<Vec<QueueStat>> {
        self.db(Tx::Read, &(), |c, ()| {
            Box::pin(async move {
                let now = db_now(c).await?;
                let rows = c
                    .rows(
                        "SELECT kind, count(*) FILTER (WHERE state = 'queued'), count(*) FILTER (WHERE state = 'running'),
                                min(run_at) FILTER (WHERE state = 'queued' AND run_at <= $1)
                           FROM jobs WHERE state IN ('queued', 'running') GROUP BY kind",
                        &[&now],
                    )
                    .await?;
                let mut out = rows
                    .iter()
                    .map(|r| {
                        let oldest: Option<i64> = col(r, 3)?;
                        Ok(QueueStat {
                            kind: col(r, 0)?,
                            queued: col::<i64>(r, 1)?.max(0) as u64,
                            running: col::<i64>(r, 2)?.max(0) as u64,
                            oldest_ms: oldest.map_or(0, |t| (now - t).max(0)),
                            paused: false,
                        })
                    })
                    .collect::<Result<Vec<_>, DbErr>>()?;
                let paused = c
                    .rows("SELECT kind, paused FROM job_queues", &[])
                    .await?
                    .iter()
                    .map(|r| Ok((col(r, 0)?, col(r, 1)?)))
                    .collect::<Result<Vec<_>, DbErr>>()?;
                merge_paused(&mut out, paused);
                Ok(out)
            })
        })
        .await
    }

    async fn pool_heartbeat(&self, pool: &WorkerPool) -> StoreResult<()> {
        self.db(Tx::Idempotent, pool, |c, p| {
            Box::pin(async move {
                let now = db_now(c).await?;
                c.exec(
                    "INSERT INTO job_pools (id, host, pid, concurrency, started_at, heartbeat_at)
                     VALUES ($1, $2, $3, $4, $5, $6)
                     ON CONFLICT (id) DO UPDATE SET heartbeat_at = excluded.heartbeat_at,
                                                    concurrency = excluded.concurrency",
                    &[&p.id, &p.host, &p.pid, &p.concurrency, &p.started_at, &now],
                )
                .await?;
                // Pools gone for a day are forgotten.
                c.exec("DELETE FROM job_pools WHERE heartbeat_at < $1", &[&(now - 86_400_000)]).await?;
                Ok(())
            })
        })
        .await
    }

    async fn pools(&self, fresh_ms: i64) -> StoreResult<Vec<WorkerPool>> {
        self.db(Tx::Read, &fresh_ms, |c, fresh_ms| {
            Box::pin(async move {
                let now = db_now(c).await?;
                let rows = c
                    .rows(
                        "SELECT id, host, pid, concurrency, started_at, heartbeat_at FROM job_pools
                          WHERE heartbeat_at >= $1 ORDER BY started_at, id",
                        &[&(now - *fresh_ms)],
                    )
                    .await?;
                Ok(rows
                    .iter()
                    .map(|r| {
                        Ok(WorkerPool {
                            id: col(r, 0)?,
                            host: col(r, 1)?,
                            pid: col(r, 2)?,
                            concurrency: col(r, 3)?,
                            started_at: col(r, 4)?,
                            heartbeat_at: col(r, 5)?,
                        })
                    })
                    .collect::<Result<_, DbErr>>()?)
            })
        })
        .await
    }

    async fn queued_jobs(&self, kind: &str, offset: u64, limit: u64) -> StoreResult<(Vec<Job>, u64)> {
        let args = (kind, i64::try_from(offset).unwrap_or(i64::MAX), i64::try_from(limit).unwrap_or(i64::MAX));
        self.db(Tx::Read, &args, |c, (kind, offset, limit)| {
            Box::pin(async move {
                let rows = c
                    .rows(
                        &format!(
                            "SELECT {JOB_COLS} FROM jobs WHERE kind = $1 AND state = 'queued'
                              ORDER BY priority DESC, run_at, id LIMIT $2 OFFSET $3"
                        ),
                        &[kind, limit, offset],
                    )
                    .await?;
                let total: i64 =
                    col(&c.one("SELECT count(*) FROM jobs WHERE kind = $1 AND state = 'queued'", &[kind]).await?, 0)?;
                Ok((jobs(&rows)?, total.max(0) as u64))
            })
        })
        .await
    }

    async fn running_jobs(&self, owner: &str) -> StoreResult<Vec<Job>> {
        self.db(Tx::Read, owner, |c, owner| {
            Box::pin(async move {
                Ok(jobs(
                    &c.rows(
                        &format!(
                            "SELECT {JOB_COLS} FROM jobs WHERE state = 'running' AND lease_owner = $1 ORDER BY id"
                        ),
                        &[&owner],
                    )
                    .await?,
                )?)
            })
        })
        .await
    }

    async fn put_schedule(&self, s: &NewSchedule) -> StoreResult<Schedule> {
        self.db(Tx::Idempotent, s, |c, s| {
            Box::pin(async move {
                let now = db_now(c).await?;
                let row = c
                    .one(
                        &format!(
                            "INSERT INTO job_schedules (vendor_type, vendor_id, cron_type, cron, args, next_fire_at,
                                                        created_at, updated_at)
                             VALUES ($1, $2, $3, $4, $5, $6, $7, $7)
                             ON CONFLICT (vendor_type, vendor_id) DO UPDATE SET
                                 cron_type = excluded.cron_type, cron = excluded.cron, args = excluded.args,
                                 next_fire_at = excluded.next_fire_at, updated_at = excluded.updated_at
                             RETURNING {SCHEDULE_COLS}"
                        ),
                        &[&s.vendor_type, &s.vendor_id, &s.cron_type, &s.cron, &s.args, &s.next_fire_at, &now],
                    )
                    .await?;
                Ok(schedule_row(&row)?)
            })
        })
        .await
    }

    async fn schedule(&self, vendor_type: &str, vendor_id: i64) -> StoreResult<Option<Schedule>> {
        self.db(Tx::Read, &(vendor_type, vendor_id), |c, (vt, vid)| {
            Box::pin(async move {
                let row = c
                    .opt(
                        &format!("SELECT {SCHEDULE_COLS} FROM job_schedules WHERE vendor_type = $1 AND vendor_id = $2"),
                        &[vt, vid],
                    )
                    .await?;
                Ok(row.map(|r| schedule_row(&r)).transpose()?)
            })
        })
        .await
    }

    async fn delete_schedule(&self, vendor_type: &str, vendor_id: i64) -> StoreResult<bool> {
        self.db(Tx::Write, &(vendor_type, vendor_id), |c, (vt, vid)| {
            Box::pin(async move {
                Ok(c.exec("DELETE FROM job_schedules WHERE vendor_type = $1 AND vendor_id = $2", &[vt, vid]).await? > 0)
            })
        })
        .await
    }

    async fn schedules(&self) -> StoreResult<Vec<Schedule>> {
        self.db(Tx::Read, &(), |c, ()| {
            Box::pin(async move {
                let rows = c.rows(&format!("SELECT {SCHEDULE_COLS} FROM job_schedules ORDER BY id"), &[]).await?;
                Ok(rows.iter().map(schedule_row).collect::<Result<_, _>>()?)
            })
        })
        .await
    }

    async fn due_schedules(&self, limit: u32) -> StoreResult<Vec<Schedule>> {
        self.db(Tx::Read, &i64::from(limit), |c, limit| {
            Box::pin(async move {
                let now = db_now(c).await?;
                let rows = c
                    .rows(
                        &format!(
                            "SELECT {SCHEDULE_COLS} FROM job_schedules
                              WHERE next_fire_at <= $1
                                AND NOT EXISTS (SELECT 1 FROM job_queues WHERE kind = 'SCHEDULER' AND paused)
                              ORDER BY next_fire_at LIMIT $2"
                        ),
                        &[&now, limit],
                    )
                    .await?;
                Ok(rows.iter().map(schedule_row).collect::<Result<_, _>>()?)
            })
        })
        .await
    }

    async fn fire_schedule(
        &self,
        schedule_id: i64,
        expected_next: i64,
        new_next: i64,
        exec: &NewExecution,
        tasks: &[NewJob],
    ) -> StoreResult<Option<i64>> {
        let args = (schedule_id, expected_next, new_next, exec, tasks);
        self.db(Tx::Write, &args, |c, (id, expected, new_next, exec, tasks)| {
            Box::pin(async move {
                let now = db_now(c).await?;
                // The row lock makes a second instance wait here, then find next_fire_at moved.
                let advanced = c
                    .exec(
                        "UPDATE job_schedules SET next_fire_at = $3, last_fired_at = $2, updated_at = $4
                          WHERE id = $1 AND next_fire_at = $2",
                        &[id, expected, new_next, &now],
                    )
                    .await?;
                if advanced == 0 {
                    return Ok(None);
                }
                Ok(Some(insert_execution(c, exec, tasks, now).await?))
            })
        })
        .await
    }
}
