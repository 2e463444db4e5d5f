//! [`JobStore`] on SQLite (tables from `migrations/0008_jobs.sql`). Every write runs on
//! the single writer, which serialises claims, fences and firings: what PostgreSQL gets
//! from row locks, this store gets from having one writer.

use async_trait::async_trait;
use berth_core::store::StoreResult;
use berth_core::store::jobs::{
    CLAIM_LOOKAHEAD, Execution, Fence, Finish, Job, JobState, JobStore, LogLevel, LogLine, MAX_LOG_LINES, NewExecution,
    NewJob, NewSchedule, QueueStat, Schedule, TaskCounts, WorkerPool, merge_paused, next_state, pick_claimable,
};
use rusqlite::types::Type;
use rusqlite::{Connection, OptionalExtension, Row, params};

use crate::{Fail, SqliteStore};

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

const JOB_COLS: &str = "id, execution_id, kind, args, state, attempt, max_attempts, lease_owner, run_at, \
     cancel_requested_at IS NOT NULL, progress, last_error, created_at, started_at, finished_at, updated_at";

fn job_row(r: &Row) -> rusqlite::Result<Job> {
    let state: String = r.get(4)?;
    Ok(Job {
        id: r.get(0)?,
        execution_id: r.get(1)?,
        kind: r.get(2)?,
        args: r.get(3)?,
        state: JobState::parse(&state).ok_or_else(|| {
            rusqlite::Error::FromSqlConversionFailure(4, Type::Text, format!("job state {state:?}").into())
        })?,
        attempt: r.get(5)?,
        max_attempts: r.get(6)?,
        lease_owner: r.get(7)?,
        run_at: r.get(8)?,
        cancel_requested: r.get(9)?,
        progress: r.get(10)?,
        last_error: r.get(11)?,
        created_at: r.get(12)?,
        started_at: r.get(13)?,
        finished_at: r.get(14)?,
        updated_at: r.get(15)?,
    })
}

const SCHEDULE_COLS: &str =
    "id, vendor_type, vendor_id, cron_type, cron, args, next_fire_at, last_fired_at, created_at, updated_at";

fn schedule_row(r: &Row) -> rusqlite::Result<Schedule> {
    Ok(Schedule {
        id: r.get(0)?,
        vendor_type: r.get(1)?,
        vendor_id: r.get(2)?,
        cron_type: r.get(3)?,
        cron: r.get(4)?,
        args: r.get(5)?,
        next_fire_at: r.get(6)?,
        last_fired_at: r.get(7)?,
        created_at: r.get(8)?,
        updated_at: r.get(9)?,
    })
}

const EXEC_SELECT: &str = "SELECT e.id, e.vendor_type, e.vendor_id, e.trigger, e.extra_attrs, e.created_at,
        max(j.updated_at), max(j.finished_at),
        coalesce(sum(j.state = 'queued'), 0), coalesce(sum(j.state = 'running'), 0),
        coalesce(sum(j.state = 'succeeded'), 0), coalesce(sum(j.state = 'cancelled'), 0),
        coalesce(sum(j.state = 'dead'), 0)
   FROM job_executions e LEFT JOIN jobs j ON j.execution_id = e.id";

fn exec_row(r: &Row) -> rusqlite::Result<Execution> {
    let created_at: i64 = r.get(5)?;
    let updated: Option<i64> = r.get(6)?;
    let finished: Option<i64> = r.get(7)?;
    let n = |i| r.get::<_, i64>(i).map(|v| v.max(0) as u64);
    let counts = TaskCounts { queued: n(8)?, running: n(9)?, succeeded: n(10)?, cancelled: n(11)?, dead: n(12)? };
    let ended_at = (counts.queued + counts.running == 0).then(|| finished.unwrap_or(created_at));
    Ok(Execution {
        id: r.get(0)?,
        vendor_type: r.get(1)?,
        vendor_id: r.get(2)?,
        trigger: r.get(3)?,
        extra_attrs: r.get(4)?,
        created_at,
        updated_at: updated.unwrap_or(created_at).max(created_at),
        ended_at,
        counts,
    })
}

fn insert_execution(c: &Connection, exec: &NewExecution, tasks: &[NewJob], now: i64) -> Result<i64, Fail> {
    let id: i64 = c
        .prepare_cached(
            "INSERT INTO job_executions (vendor_type, vendor_id, trigger, extra_attrs, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5) RETURNING id",
        )?
        .query_row(params![exec.vendor_type, exec.vendor_id, exec.trigger, exec.extra_attrs, now], |r| r.get(0))?;
    insert_tasks(c, id, tasks, now)?;
    Ok(id)
}

fn insert_tasks(c: &Connection, id: i64, tasks: &[NewJob], now: i64) -> Result<(), Fail> {
    let mut st = c.prepare_cached(
        "INSERT INTO jobs (execution_id, kind, args, state, priority, run_at, max_attempts, concurrency_key,
                           created_at, updated_at)
         VALUES (?1, ?2, ?3, 'queued', ?4, ?5, ?6, ?7, ?8, ?8)",
    )?;
    for t in tasks {
        st.execute(params![
            id,
            t.kind,
            t.args,
            t.priority,
            now + t.delay_ms.max(0),
            t.max_attempts.max(1),
            t.concurrency_key,
            now
        ])?;
    }
    Ok(())
}

/// The row of a job the fence still owns.
fn fenced(c: &Connection, f: &Fence) -> Result<Option<(i32, bool)>, Fail> {
    Ok(c.prepare_cached(
        "SELECT max_attempts, cancel_requested_at IS NOT NULL FROM jobs
          WHERE id = ?1 AND attempt = ?2 AND lease_owner = ?3 AND state = 'running'",
    )?
    .query_row(params![f.job_id, f.attempt, f.owner], |r| Ok((r.get(0)?, r.get(1)?)))
    .optional()?)
}

/// Moves a running job to where `how` leaves it (the rule is `next_state`).
fn end_attempt(
    c: &Connection,
    id: i64,
    attempt: i32,
    max_attempts: i32,
    cancel: bool,
    how: &Finish,
    now: i64,
) -> Result<(), Fail> {
    let (state, retry_in) = next_state(how, attempt, max_attempts, cancel);
    let finished = (state != JobState::Queued).then_some(now);
    c.prepare_cached(
        "UPDATE jobs SET state = ?2, run_at = coalesce(?3, run_at), finished_at = ?4, lease_owner = NULL,
                lease_expires_at = NULL, last_error = coalesce(?5, last_error), updated_at = ?6
          WHERE id = ?1",
    )?
    .execute(params![id, state.as_str(), retry_in.map(|ms| now + ms), finished, how.error(), now])?;
    Ok(())
}

#[async_trait]
impl JobStore for SqliteStore {
    async fn job_clock(&self) -> StoreResult<i64> {
        Ok(now_ms())
    }

    async fn create_execution(&self, exec: &NewExecution, tasks: &[NewJob]) -> StoreResult<i64> {
        let (exec, tasks) = (exec.clone(), tasks.to_vec());
        self.writer.write(move |c| insert_execution(c, &exec, &tasks, now_ms())).await
    }

    async fn execution(&self, id: i64) -> StoreResult<Option<Execution>> {
        self.readers
            .run(move |c| {
                let sql = format!("{EXEC_SELECT} WHERE e.id = ?1 GROUP BY e.id");
                Ok(c.prepare_cached(&sql)?.query_row([id], exec_row).optional()?)
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
        let vendor_type = vendor_type.to_owned();
        self.readers
            .run(move |c| {
                let tx = c.transaction()?;
                let sql = format!(
                    "{EXEC_SELECT} WHERE e.vendor_type = ?1 AND (?2 IS NULL OR e.vendor_id = ?2)
                      GROUP BY e.id ORDER BY e.id DESC LIMIT ?3 OFFSET ?4"
                );
                let page = tx
                    .prepare_cached(&sql)?
                    .query_map(
                        params![vendor_type, vendor_id, i64::try_from(limit).unwrap_or(i64::MAX), offset as i64],
                        exec_row,
                    )?
                    .collect::<Result<Vec<_>, _>>()?;
                let total: i64 = tx
                    .prepare_cached(
                        "SELECT count(*) FROM job_executions WHERE vendor_type = ?1 AND (?2 IS NULL OR vendor_id = ?2)",
                    )?
                    .query_row(params![vendor_type, vendor_id], |r| r.get(0))?;
                Ok((page, total.max(0) as u64))
            })
            .await
    }

    async fn execution_tasks(&self, execution_id: i64) -> StoreResult<Vec<Job>> {
        self.readers
            .run(move |c| {
                let sql = format!("SELECT {JOB_COLS} FROM jobs WHERE execution_id = ?1 ORDER BY id");
                Ok(c.prepare_cached(&sql)?.query_map([execution_id], job_row)?.collect::<Result<_, _>>()?)
            })
            .await
    }

    async fn prune_executions(&self, vendor_type: &str, before: i64, keep: u64) -> StoreResult<u64> {
        let vendor_type = vendor_type.to_owned();
        self.writer
            .write(move |c| {
                Ok(c.prepare_cached(
                    "DELETE FROM job_executions
                      WHERE vendor_type = ?1
                        AND id NOT IN (SELECT id FROM job_executions WHERE vendor_type = ?1 ORDER BY id DESC LIMIT ?3)
                        AND NOT EXISTS (SELECT 1 FROM jobs j WHERE j.execution_id = job_executions.id
                                          AND j.state IN ('queued', 'running'))
                        AND coalesce((SELECT max(finished_at) FROM jobs j WHERE j.execution_id = job_executions.id),
                                     created_at) < ?2",
                )?
                .execute(params![vendor_type, before, i64::try_from(keep).unwrap_or(i64::MAX)])?
                    as u64)
            })
            .await
    }

    async fn claim(&self, kind: &str, owner: &str, n: u32, limit: u32, lease_ms: i64) -> StoreResult<Vec<Job>> {
        let (kind, owner) = (kind.to_owned(), owner.to_owned());
        self.writer
            .write(move |c| {
                let now = now_ms();
                let paused: bool = c
                    .prepare_cached("SELECT paused FROM job_queues WHERE kind = ?1")?
                    .query_row([&kind], |r| r.get(0))
                    .optional()?
                    .unwrap_or(false);
                if paused {
                    return Ok(Vec::new());
                }
                let running: i64 = c
                    .prepare_cached("SELECT count(*) FROM jobs WHERE kind = ?1 AND state = 'running'")?
                    .query_row([&kind], |r| r.get(0))?;
                let room = (i64::from(limit) - running).min(i64::from(n));
                if room <= 0 {
                    return Ok(Vec::new());
                }
                let candidates: Vec<(i64, Option<String>)> = c
                    .prepare_cached(
                        "SELECT id, concurrency_key FROM jobs
                          WHERE kind = ?1 AND state = 'queued' AND run_at <= ?2
                          ORDER BY priority DESC, run_at, id LIMIT ?3",
                    )?
                    .query_map(params![kind, now, room * i64::from(CLAIM_LOOKAHEAD)], |r| Ok((r.get(0)?, r.get(1)?)))?
                    .collect::<Result<_, _>>()?;
                let busy_keys: Vec<String> = if candidates.iter().any(|(_, k)| k.is_some()) {
                    c.prepare_cached(
                        "SELECT concurrency_key FROM jobs WHERE state = 'running' AND concurrency_key IS NOT NULL",
                    )?
                    .query_map([], |r| r.get(0))?
                    .collect::<Result<_, _>>()?
                } else {
                    Vec::new()
                };
                let ids = pick_claimable(&candidates, &busy_keys, room as usize);
                let sql = format!(
                    "UPDATE jobs SET state = 'running', attempt = attempt + 1, lease_owner = ?2,
                            lease_expires_at = ?3, started_at = ?4, updated_at = ?4
                      WHERE id = ?1 RETURNING {JOB_COLS}"
                );
                let mut st = c.prepare_cached(&sql)?;
                let mut out = Vec::with_capacity(ids.len());
                for id in ids {
                    out.push(st.query_row(params![id, owner, now + lease_ms, now], job_row)?);
                }
                Ok(out)
            })
            .await
    }

    async fn heartbeat(&self, fence: &Fence, lease_ms: i64) -> StoreResult<Option<bool>> {
        let f = fence.clone();
        self.writer
            .write(move |c| {
                let now = now_ms();
                Ok(c.prepare_cached(
                    "UPDATE jobs SET lease_expires_at = ?4, updated_at = ?5
                      WHERE id = ?1 AND attempt = ?2 AND lease_owner = ?3 AND state = 'running'
                      RETURNING cancel_requested_at IS NOT NULL",
                )?
                .query_row(params![f.job_id, f.attempt, f.owner, now + lease_ms, now], |r| r.get(0))
                .optional()?)
            })
            .await
    }

    async fn save_progress(&self, fence: &Fence, progress: &str) -> StoreResult<bool> {
        let (f, progress) = (fence.clone(), progress.to_owned());
        self.writer
            .write(move |c| {
                Ok(c.prepare_cached(
                    "UPDATE jobs SET progress = ?4, updated_at = ?5
                      WHERE id = ?1 AND attempt = ?2 AND lease_owner = ?3 AND state = 'running'",
                )?
                .execute(params![f.job_id, f.attempt, f.owner, progress, now_ms()])?
                    == 1)
            })
            .await
    }

    async fn append_log(&self, fence: &Fence, lines: &[LogLine]) -> StoreResult<bool> {
        let (f, lines) = (fence.clone(), lines.to_vec());
        self.writer
            .write(move |c| {
                if fenced(c, &f)?.is_none() {
                    return Ok(false);
                }
                let next: i64 = c
                    .prepare_cached("SELECT coalesce(max(seq), 0) + 1 FROM job_logs WHERE job_id = ?1")?
                    .query_row([f.job_id], |r| r.get(0))?;
                let mut st = c.prepare_cached(
                    "INSERT INTO job_logs (job_id, seq, attempt, at, level, message) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                )?;
                for (i, l) in lines.iter().enumerate() {
                    let seq = next + i as i64;
                    if seq > MAX_LOG_LINES {
                        break;
                    }
                    st.execute(params![f.job_id, seq, l.attempt, l.at, l.level.code(), l.message])?;
                }
                Ok(true)
            })
            .await
    }

    async fn finish(&self, fence: &Fence, how: &Finish) -> StoreResult<bool> {
        let (f, how) = (fence.clone(), how.clone());
        self.writer
            .write(move |c| {
                let Some((max_attempts, cancel)) = fenced(c, &f)? else {
                    return Ok(false);
                };
                end_attempt(c, f.job_id, f.attempt, max_attempts, cancel, &how, now_ms())?;
                Ok(true)
            })
            .await
    }

    async fn finish_many(&self, ends: &[(Fence, Finish)]) -> StoreResult<Vec<bool>> {
        let ends = ends.to_vec();
        self.writer
            .write(move |c| {
                let now = now_ms();
                let mut out = Vec::with_capacity(ends.len());
                for (f, how) in &ends {
                    let Some((max_attempts, cancel)) = fenced(c, f)? else {
                        out.push(false);
                        continue;
                    };
                    end_attempt(c, f.job_id, f.attempt, max_attempts, cancel, how, now)?;
                    out.push(true);
                }
                Ok(out)
            })
            .await
    }

    async fn hand_off(&self, fence: &Fence, tasks: &[NewJob]) -> StoreResult<bool> {
        let (f, tasks) = (fence.clone(), tasks.to_vec());
        self.writer
            .write(move |c| {
                let Some((max_attempts, cancel)) = fenced(c, &f)? else {
                    return Ok(false);
                };
                let now = now_ms();
                let exec: i64 = c
                    .prepare_cached("SELECT execution_id FROM jobs WHERE id = ?1")?
                    .query_row([f.job_id], |r| r.get(0))?;
                insert_tasks(c, exec, &tasks, now)?;
                end_attempt(c, f.job_id, f.attempt, max_attempts, cancel, &Finish::Succeeded, now)?;
                Ok(true)
            })
            .await
    }

    async fn reap_expired(&self, retry_in_ms: &(dyn Fn(i32) -> i64 + Sync)) -> StoreResult<u64> {
        // The delays are computed here, before the write, because the closure cannot go
        // to the writer thread; an attempt count is all they depend on.
        let delays: Vec<i64> = (0..=64).map(retry_in_ms).collect();
        self.writer
            .write(move |c| {
                let now = now_ms();
                let expired: Vec<(i64, i32, i32, bool)> = c
                    .prepare_cached(
                        "SELECT id, attempt, max_attempts, cancel_requested_at IS NOT NULL FROM jobs
                          WHERE state = 'running' AND lease_expires_at < ?1",
                    )?
                    .query_map([now], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?
                    .collect::<Result<_, _>>()?;
                for &(id, attempt, max, cancel) in &expired {
                    let delay = delays[attempt.clamp(0, 64) as usize];
                    let how = Finish::Failed {
                        error: "the worker running it stopped (its lease expired)".into(),
                        retry_in_ms: Some(delay),
                    };
                    end_attempt(c, id, attempt, max, cancel, &how, now)?;
                }
                Ok(expired.len() as u64)
            })
            .await
    }

    async fn stop_job(&self, job_id: i64) -> StoreResult<bool> {
        self.writer.write(move |c| stop_where(c, "id = ?1", job_id).map(|n| n > 0)).await
    }

    async fn stop_execution(&self, execution_id: i64) -> StoreResult<bool> {
        self.writer.write(move |c| stop_where(c, "execution_id = ?1", execution_id).map(|n| n > 0)).await
    }

    async fn stop_kind(&self, kind: &str) -> StoreResult<u64> {
        let kind = kind.to_owned();
        self.writer.write(move |c| stop_where(c, "kind = ?1", kind)).await
    }

    async fn job(&self, job_id: i64) -> StoreResult<Option<Job>> {
        self.readers
            .run(move |c| {
                let sql = format!("SELECT {JOB_COLS} FROM jobs WHERE id = ?1");
                Ok(c.prepare_cached(&sql)?.query_row([job_id], job_row).optional()?)
            })
            .await
    }

    async fn job_log(&self, job_id: i64) -> StoreResult<Vec<LogLine>> {
        self.readers
            .run(move |c| {
                Ok(c.prepare_cached("SELECT at, level, attempt, message FROM job_logs WHERE job_id = ?1 ORDER BY seq")?
                    .query_map([job_id], |r| {
                        Ok(LogLine {
                            at: r.get(0)?,
                            level: LogLevel::from_code(r.get(1)?),
                            attempt: r.get(2)?,
                            message: r.get(3)?,
                        })
                    })?
                    .collect::<Result<_, _>>()?)
            })
            .await
    }

    async fn set_kind_paused(&self, kind: &str, paused: bool) -> StoreResult<()> {
        let kind = kind.to_owned();
        self.writer
            .write(move |c| {
                c.prepare_cached(
                    "INSERT INTO job_queues (kind, paused) VALUES (?1, ?2)
                     ON CONFLICT (kind) DO UPDATE SET paused = excluded.paused",
                )?
                .execute(params![kind, paused])?;
                Ok(())
            })
            .await
    }

    async fn queue_stats(&self) -> StoreResult<Vec<QueueStat>> {
        self.readers
            .run(move |c| {
                let now = now_ms();
                let mut out: Vec<QueueStat> = c
                    .prepare_cached(
                        "SELECT kind, sum(state = 'queued'), sum(state = 'running'),
                                min(CASE WHEN state = 'queued' AND run_at <= ?1 THEN run_at END)
                           FROM jobs WHERE state IN ('queued', 'running') GROUP BY kind",
                    )?
                    .query_map([now], |r| {
                        let oldest: Option<i64> = r.get(3)?;
                        Ok(QueueStat {
                            kind: r.get(0)?,
                            queued: r.get::<_, i64>(1)?.max(0) as u64,
                            running: r.get::<_, i64>(2)?.max(0) as u64,
                            oldest_ms: oldest.map_or(0, |t| (now - t).max(0)),
                            paused: false,
                        })
                    })?
                    .collect::<Result<_, _>>()?;
                let paused: Vec<(String, bool)> = c
                    .prepare_cached("SELECT kind, paused FROM job_queues")?
                    .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
                    .collect::<Result<_, _>>()?;
                merge_paused(&mut out, paused);
                Ok(out)
            })
            .await
    }

    async fn pool_heartbeat(&self, pool: &WorkerPool) -> StoreResult<()> {
        let p = pool.clone();
        self.writer
            .write(move |c| {
                c.prepare_cached(
                    "INSERT INTO job_pools (id, host, pid, concurrency, started_at, heartbeat_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                     ON CONFLICT (id) DO UPDATE SET heartbeat_at = excluded.heartbeat_at,
                                                    concurrency = excluded.concurrency",
                )?
                .execute(params![p.id, p.host, p.pid, p.concurrency, p.started_at, now_ms()])?;
                // Pools gone for a day are forgotten.
                c.prepare_cached("DELETE FROM job_pools WHERE heartbeat_at < ?1")?.execute([now_ms() - 86_400_000])?;
                Ok(())
            })
            .await
    }

    async fn pools(&self, fresh_ms: i64) -> StoreResult<Vec<WorkerPool>> {
        self.readers
            .run(move |c| {
                Ok(c.prepare_cached(
                    "SELECT id, host, pid, concurrency, started_at, heartbeat_at FROM job_pools
                      WHERE heartbeat_at >= ?1 ORDER BY started_at, id",
                )?
                .query_map([now_ms() - fresh_ms], |r| {
                    Ok(WorkerPool {
                        id: r.get(0)?,
                        host: r.get(1)?,
                        pid: r.get(2)?,
                        concurrency: r.get(3)?,
                        started_at: r.get(4)?,
                        heartbeat_at: r.get(5)?,
                    })
                })?
                .collect::<Result<_, _>>()?)
            })
            .await
    }

    async fn queued_jobs(&self, kind: &str, offset: u64, limit: u64) -> StoreResult<(Vec<Job>, u64)> {
        let kind = kind.to_owned();
        self.readers
            .run(move |c| {
                let tx = c.transaction()?;
                let sql = format!(
                    "SELECT {JOB_COLS} FROM jobs WHERE kind = ?1 AND state = 'queued'
                      ORDER BY priority DESC, run_at, id LIMIT ?2 OFFSET ?3"
                );
                let page = tx
                    .prepare_cached(&sql)?
                    .query_map(
                        params![
                            kind,
                            i64::try_from(limit).unwrap_or(i64::MAX),
                            i64::try_from(offset).unwrap_or(i64::MAX)
                        ],
                        job_row,
                    )?
                    .collect::<Result<Vec<_>, _>>()?;
                let total: i64 = tx
                    .prepare_cached("SELECT count(*) FROM jobs WHERE kind = ?1 AND state = 'queued'")?
                    .query_row([&kind], |r| r.get(0))?;
                Ok((page, total.max(0) as u64))
            })
            .await
    }

    async fn running_jobs(&self, owner: &str) -> StoreResult<Vec<Job>> {
        let owner = owner.to_owned();
        self.readers
            .run(move |c| {
                let sql =
                    format!("SELECT {JOB_COLS} FROM jobs WHERE state = 'running' AND lease_owner = ?1 ORDER BY id");
                Ok(c.prepare_cached(&sql)?.query_map([owner], job_row)?.collect::<Result<_, _>>()?)
            })
            .await
    }

    async fn put_schedule(&self, s: &NewSchedule) -> StoreResult<Schedule> {
        let s = s.clone();
        self.writer
            .write(move |c| {
                let now = now_ms();
                let sql = format!(
                    "INSERT INTO job_schedules (vendor_type, vendor_id, cron_type, cron, args, next_fire_at,
                                                created_at, updated_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7)
                     ON CONFLICT (vendor_type, vendor_id) DO UPDATE SET
                         cron_type = excluded.cron_type, cron = excluded.cron, args = excluded.args,
                         next_fire_at = excluded.next_fire_at, updated_at = excluded.updated_at
                     RETURNING {SCHEDULE_COLS}"
                );
                Ok(c.prepare_cached(&sql)?.query_row(
                    params![s.vendor_type, s.vendor_id, s.cron_type, s.cron, s.args, s.next_fire_at, now],
                    schedule_row,
                )?)
            })
            .await
    }

    async fn schedule(&self, vendor_type: &str, vendor_id: i64) -> StoreResult<Option<Schedule>> {
        let vendor_type = vendor_type.to_owned();
        self.readers
            .run(move |c| {
                let sql =
                    format!("SELECT {SCHEDULE_COLS} FROM job_schedules WHERE vendor_type = ?1 AND vendor_id = ?2");
                Ok(c.prepare_cached(&sql)?.query_row(params![vendor_type, vendor_id], schedule_row).optional()?)
            })
            .await
    }

    async fn delete_schedule(&self, vendor_type: &str, vendor_id: i64) -> StoreResult<bool> {
        let vendor_type = vendor_type.to_owned();
        self.writer
            .write(move |c| {
                Ok(c.prepare_cached("DELETE FROM job_schedules WHERE vendor_type = ?1 AND vendor_id = ?2")?
                    .execute(params![vendor_type, vendor_id])?
                    > 0)
            })
            .await
    }

    async fn schedules(&self) -> StoreResult<Vec<Schedule>> {
        self.readers
            .run(move |c| {
                let sql = format!("SELECT {SCHEDULE_COLS} FROM job_schedules ORDER BY id");
                Ok(c.prepare_cached(&sql)?.query_map([], schedule_row)?.collect::<Result<_, _>>()?)
            })
            .await
    }

    async fn due_schedules(&self, limit: u32) -> StoreResult<Vec<Schedule>> {
        self.readers
            .run(move |c| {
                let sql = format!(
                    "SELECT {SCHEDULE_COLS} FROM job_schedules
                      WHERE next_fire_at <= ?1
                        AND NOT EXISTS (SELECT 1 FROM job_queues WHERE kind = 'SCHEDULER' AND paused)
                      ORDER BY next_fire_at LIMIT ?2"
                );
                Ok(c.prepare_cached(&sql)?
                    .query_map(params![now_ms(), limit], schedule_row)?
                    .collect::<Result<_, _>>()?)
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
        let (exec, tasks) = (exec.clone(), tasks.to_vec());
        self.writer
            .write(move |c| {
                let now = now_ms();
                let advanced = c
                    .prepare_cached(
                        "UPDATE job_schedules SET next_fire_at = ?3, last_fired_at = ?2, updated_at = ?4
                          WHERE id = ?1 AND next_fire_at = ?2",
                    )?
                    .execute(params![schedule_id, expected_next, new_next, now])?;
                if advanced == 0 {
                    return Ok(None);
                }
                insert_execution(c, &exec, &tasks, now).map(Some)
            })
            .await
    }
}

/// Cancels the queued jobs matching `filter` and asks the running ones to stop.
fn stop_where(c: &Connection, filter: &str, arg: impl rusqlite::ToSql) -> Result<u64, Fail> {
    let now = now_ms();
    let queued = c
        .prepare_cached(&format!(
            "UPDATE jobs SET state = 'cancelled', finished_at = ?2, updated_at = ?2 WHERE {filter} AND state = 'queued'"
        ))?
        .execute(params![arg, now])?;
    let running = c
        .prepare_cached(&format!(
            "UPDATE jobs SET cancel_requested_at = coalesce(cancel_requested_at, ?2), updated_at = ?2
              WHERE {filter} AND state = 'running'"
        ))?
        .execute(params![arg, now])?;
    Ok((queued + running) as u64)
}
