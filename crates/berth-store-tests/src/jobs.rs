//! Conformance for [`JobStore`]: claims honour limits and concurrency keys even when
//! claimers race, fences refuse a worker whose lease was taken over, retries and dead
//! letters follow `next_state`, stops reach queued and running jobs, and a schedule fires
//! once per tick however many instances try. Kinds and vendor types are unique per run,
//! so runs can share one database.

use std::sync::Arc;
use std::time::Duration;

use berth_core::store::jobs::{
    Fence, Finish, JobState, JobStore, LogLevel, LogLine, NewExecution, NewJob, NewSchedule, WorkerPool,
};

fn exec(vendor_type: &str) -> NewExecution {
    NewExecution {
        vendor_type: vendor_type.to_owned(),
        vendor_id: 0,
        trigger: "MANUAL".into(),
        extra_attrs: r#"{"dry_run":true}"#.into(),
    }
}

fn fence(j: &berth_core::store::jobs::Job, owner: &str) -> Fence {
    Fence { job_id: j.id, attempt: j.attempt, owner: owner.to_owned() }
}

pub async fn jobs_conformance(store: Arc<dyn JobStore>) {
    let run = uuid::Uuid::new_v4().simple().to_string();
    let kind = format!("KIND_{run}");
    let vt = format!("VENDOR_{run}");

    hand_off_conformance(store.as_ref(), &run).await;

    // An execution with three tasks, none started: Pending.
    let tasks: Vec<NewJob> = (0..3).map(|i| NewJob::new(&kind, format!("{{\"n\":{i}}}"))).collect();
    let e = store.create_execution(&exec(&vt), &tasks).await.unwrap();
    let ex = store.execution(e).await.unwrap().unwrap();
    assert_eq!((ex.vendor_type.as_str(), ex.trigger.as_str(), ex.counts.queued), (vt.as_str(), "MANUAL", 3));
    assert_eq!(ex.counts.harbor_status(), "Pending");
    assert_eq!(ex.ended_at, None);
    assert_eq!(ex.extra_attrs, r#"{"dry_run":true}"#);

    // The per-kind limit caps what one claim takes.
    let got = store.claim(&kind, "w1", 10, 2, 60_000).await.unwrap();
    assert_eq!(got.len(), 2, "limit 2");
    assert!(
        got.iter().all(|j| j.state == JobState::Running && j.attempt == 1 && j.lease_owner.as_deref() == Some("w1"))
    );
    assert!(store.claim(&kind, "w2", 10, 2, 60_000).await.unwrap().is_empty(), "two run already");
    assert_eq!(store.running_jobs("w1").await.unwrap().len(), 2);
    let (a, b) = (&got[0], &got[1]);

    // Heartbeats and fences.
    assert_eq!(store.heartbeat(&fence(a, "w1"), 60_000).await.unwrap(), Some(false));
    assert_eq!(store.heartbeat(&fence(a, "w2"), 60_000).await.unwrap(), None, "another owner");
    let stale = Fence { attempt: a.attempt + 1, ..fence(a, "w1") };
    assert_eq!(store.heartbeat(&stale, 60_000).await.unwrap(), None, "another attempt");
    assert!(store.save_progress(&fence(a, "w1"), r#"{"done":1}"#).await.unwrap());
    let line = |m: &str| LogLine { at: 1, level: LogLevel::Info, attempt: 1, message: m.to_owned() };
    assert!(store.append_log(&fence(a, "w1"), &[line("one"), line("two")]).await.unwrap());
    assert!(store.append_log(&fence(a, "w1"), &[line("three")]).await.unwrap());
    assert!(!store.append_log(&fence(a, "w2"), &[line("intruder")]).await.unwrap());
    let log: Vec<String> = store.job_log(a.id).await.unwrap().into_iter().map(|l| l.message).collect();
    assert_eq!(log, ["one", "two", "three"]);
    assert_eq!(store.job(a.id).await.unwrap().unwrap().progress.as_deref(), Some(r#"{"done":1}"#));

    // Success ends the lease; a second finish finds none.
    assert!(store.finish(&fence(a, "w1"), &Finish::Succeeded).await.unwrap());
    assert!(!store.finish(&fence(a, "w1"), &Finish::Succeeded).await.unwrap());
    let done = store.job(a.id).await.unwrap().unwrap();
    assert_eq!(done.state, JobState::Succeeded);
    assert!(done.finished_at.is_some() && done.lease_owner.is_none());

    // A retryable failure goes back to the queue, not before its delay.
    let fail = Finish::Failed { error: "boom".into(), retry_in_ms: Some(3_600_000) };
    assert!(store.finish(&fence(b, "w1"), &fail).await.unwrap());
    let retried = store.job(b.id).await.unwrap().unwrap();
    assert_eq!((retried.state, retried.last_error.as_deref()), (JobState::Queued, Some("boom")));
    let now = store.job_clock().await.unwrap();
    assert!(retried.run_at >= now + 3_500_000, "delayed");

    // The third task is claimable; b is not due.
    let third = store.claim(&kind, "w2", 10, 2, 60_000).await.unwrap();
    assert_eq!(third.len(), 1);
    assert_ne!(third[0].id, b.id);
    let ex = store.execution(e).await.unwrap().unwrap();
    assert_eq!((ex.counts.running, ex.counts.queued, ex.counts.succeeded), (1, 1, 1));
    assert_eq!(ex.counts.harbor_status(), "Running");

    // Stopping: the queued one is cancelled at once, the running one hears it.
    assert!(store.stop_execution(e).await.unwrap());
    assert_eq!(store.job(b.id).await.unwrap().unwrap().state, JobState::Cancelled);
    let f3 = fence(&third[0], "w2");
    assert_eq!(store.heartbeat(&f3, 60_000).await.unwrap(), Some(true), "stop requested");
    assert!(store.finish(&f3, &Finish::Failed { error: "stopped".into(), retry_in_ms: Some(0) }).await.unwrap());
    assert_eq!(store.job(third[0].id).await.unwrap().unwrap().state, JobState::Cancelled, "no retry once stopped");
    let ex = store.execution(e).await.unwrap().unwrap();
    assert_eq!(ex.counts.harbor_status(), "Stopped");
    assert!(ex.ended_at.is_some());
    assert!(!store.stop_job(b.id).await.unwrap(), "already finished");

    leases(&store, &run).await;
    finish_many(&store, &run).await;
    single_active(&store, &run).await;
    pause_and_stats(&store, &run).await;
    queued_listing(&store, &run).await;
    schedules(&store, &run).await;
    listing_and_pruning(&store, &run).await;
    pools(&store, &run).await;
}

/// Several ends recorded at once: each fenced on its own, each following `next_state`.
async fn finish_many(store: &Arc<dyn JobStore>, run: &str) {
    let kind = format!("MANY_{run}");
    let tasks: Vec<NewJob> = (0..4).map(|i| NewJob::new(&kind, format!("{{\"n\":{i}}}"))).collect();
    store.create_execution(&exec(&format!("VM_{run}")), &tasks).await.unwrap();
    let got = store.claim(&kind, "w", 4, 10, 60_000).await.unwrap();
    assert_eq!(got.len(), 4);
    assert_eq!(store.finish_many(&[]).await.unwrap(), Vec::<bool>::new());
    let retry = Finish::Failed { error: "again".into(), retry_in_ms: Some(3_600_000) };
    let ends = [
        (fence(&got[0], "w"), Finish::Succeeded),
        (fence(&got[1], "w"), Finish::Cancelled),
        (fence(&got[2], "intruder"), Finish::Succeeded),
        (Fence { attempt: got[2].attempt + 1, ..fence(&got[2], "w") }, Finish::Cancelled),
        (fence(&got[3], "w"), retry),
    ];
    assert_eq!(store.finish_many(&ends).await.unwrap(), [true, true, false, false, true]);
    let state = |i: usize| {
        let store = Arc::clone(store);
        let id = got[i].id;
        async move { store.job(id).await.unwrap().unwrap() }
    };
    assert_eq!(state(0).await.state, JobState::Succeeded);
    assert_eq!(state(1).await.state, JobState::Cancelled);
    let untouched = state(2).await;
    assert_eq!((untouched.state, untouched.lease_owner.as_deref()), (JobState::Running, Some("w")));
    let retried = state(3).await;
    assert_eq!((retried.state, retried.last_error.as_deref()), (JobState::Queued, Some("again")));
    assert!(state(0).await.finished_at.is_some() && state(0).await.lease_owner.is_none());
    // Recorded once: the same ends again find no lease.
    assert_eq!(store.finish_many(&ends[..2]).await.unwrap(), [false, false]);
    assert!(store.finish(&fence(&got[2], "w"), &Finish::Succeeded).await.unwrap());
}

/// A worker whose lease ran out is replaced, and its late writes change nothing.
async fn leases(store: &Arc<dyn JobStore>, run: &str) {
    let kind = format!("LEASE_{run}");
    let mut one = NewJob::new(&kind, "{}");
    one.max_attempts = 2;
    store.create_execution(&exec(&format!("VL_{run}")), &[one]).await.unwrap();
    let j = store.claim(&kind, "zombie", 1, 5, 1).await.unwrap().remove(0);
    tokio::time::sleep(Duration::from_millis(30)).await;
    assert_eq!(store.reap_expired(&|_| 0).await.unwrap(), 1);
    let old = fence(&j, "zombie");
    assert_eq!(store.heartbeat(&old, 60_000).await.unwrap(), None);
    let j2 = store.claim(&kind, "heir", 1, 5, 1).await.unwrap().remove(0);
    assert_eq!((j2.id, j2.attempt), (j.id, 2));
    assert!(!store.save_progress(&old, "{}").await.unwrap(), "zombie progress refused");
    assert!(!store.finish(&old, &Finish::Succeeded).await.unwrap(), "zombie finish refused");
    assert_eq!(store.job(j.id).await.unwrap().unwrap().lease_owner.as_deref(), Some("heir"));
    // Out of attempts: the reaper buries it.
    tokio::time::sleep(Duration::from_millis(30)).await;
    assert_eq!(store.reap_expired(&|_| 0).await.unwrap(), 1);
    let dead = store.job(j.id).await.unwrap().unwrap();
    assert_eq!(dead.state, JobState::Dead);
    assert!(dead.last_error.unwrap().contains("lease"));

    // A permanent failure is dead at once.
    store.create_execution(&exec(&format!("VL_{run}")), &[NewJob::new(&kind, "{}")]).await.unwrap();
    let j = store.claim(&kind, "w", 1, 5, 60_000).await.unwrap().remove(0);
    let how = Finish::Failed { error: "bad args".into(), retry_in_ms: None };
    assert!(store.finish(&fence(&j, "w"), &how).await.unwrap());
    assert_eq!(store.job(j.id).await.unwrap().unwrap().state, JobState::Dead);
}

/// Racing claimers never run two jobs of a limit-1 kind, nor two jobs sharing a key.
async fn single_active(store: &Arc<dyn JobStore>, run: &str) {
    let kind = format!("SINGLE_{run}");
    let tasks: Vec<NewJob> = (0..20).map(|_| NewJob::new(&kind, "{}")).collect();
    store.create_execution(&exec(&format!("VS_{run}")), &tasks).await.unwrap();
    let claimers: Vec<_> = (0..8)
        .map(|i| {
            let store = Arc::clone(store);
            let kind = kind.clone();
            tokio::spawn(async move { store.claim(&kind, &format!("c{i}"), 5, 1, 60_000).await.unwrap().len() })
        })
        .collect();
    let mut total = 0;
    for c in claimers {
        total += c.await.unwrap();
    }
    assert_eq!(total, 1, "limit 1 across racing claimers");

    let kind = format!("KEYED_{run}");
    let keyed = |k: &str| NewJob { concurrency_key: Some(format!("{k}_{run}")), ..NewJob::new(&kind, "{}") };
    store.create_execution(&exec(&format!("VS_{run}")), &[keyed("p1"), keyed("p1"), keyed("p2")]).await.unwrap();
    let got = store.claim(&kind, "w", 10, 10, 60_000).await.unwrap();
    assert_eq!(got.len(), 2, "one per key");
    assert!(store.claim(&kind, "w", 10, 10, 60_000).await.unwrap().is_empty(), "p1 still runs");
    let p1 = got.iter().find(|j| j.id != got.iter().map(|j| j.id).max().unwrap()).unwrap();
    assert!(store.finish(&fence(p1, "w"), &Finish::Succeeded).await.unwrap());
    assert_eq!(store.claim(&kind, "w", 10, 10, 60_000).await.unwrap().len(), 1, "the second p1 job");
}

async fn pause_and_stats(store: &Arc<dyn JobStore>, run: &str) {
    let kind = format!("PAUSE_{run}");
    store.create_execution(&exec(&format!("VP_{run}")), &[NewJob::new(&kind, "{}")]).await.unwrap();
    store.set_kind_paused(&kind, true).await.unwrap();
    assert!(store.claim(&kind, "w", 1, 1, 60_000).await.unwrap().is_empty(), "paused");
    let stats = store.queue_stats().await.unwrap();
    let s = stats.iter().find(|s| s.kind == kind).unwrap();
    assert_eq!((s.queued, s.running, s.paused), (1, 0, true));
    let idle = format!("IDLE_{run}");
    store.set_kind_paused(&idle, true).await.unwrap();
    assert!(store.queue_stats().await.unwrap().iter().any(|s| s.kind == idle && s.paused), "listed without jobs");
    store.set_kind_paused(&kind, false).await.unwrap();
    assert_eq!(store.claim(&kind, "w", 1, 1, 60_000).await.unwrap().len(), 1);
    assert_eq!(store.stop_kind(&kind).await.unwrap(), 1);
}

/// The jobs waiting in a kind's queue: in claim order (priority, due time, id), paged,
/// counted, without running, finished or other kinds' jobs; a stopped one leaves it.
async fn queued_listing(store: &Arc<dyn JobStore>, run: &str) {
    let kind = format!("WAIT_{run}");
    let other = format!("WAIT2_{run}");
    let job = |args: &str, priority: i16, delay_ms: i64| NewJob { priority, delay_ms, ..NewJob::new(&kind, args) };
    let tasks = [
        job("late", 0, 3_600_000),
        job("first", 0, 0),
        job("urgent", 5, 0),
        job("second", 0, 0),
        job("low", -1, 0),
        NewJob::new(&other, "elsewhere"),
    ];
    store.create_execution(&exec(&format!("VW_{run}")), &tasks).await.unwrap();
    let (none, zero) = store.queued_jobs(&format!("NONE_{run}"), 0, 10).await.unwrap();
    assert!(none.is_empty() && zero == 0);
    let (all, total) = store.queued_jobs(&kind, 0, 10).await.unwrap();
    let args: Vec<&str> = all.iter().map(|j| j.args.as_str()).collect();
    assert_eq!(args, ["urgent", "first", "second", "late", "low"], "claim order");
    assert_eq!(total, 5);
    assert!(all.iter().all(|j| j.state == JobState::Queued && j.kind == kind && j.attempt == 0));
    // Paging: the total stays, the page moves.
    let (page, total) = store.queued_jobs(&kind, 1, 2).await.unwrap();
    assert_eq!((page.iter().map(|j| j.args.as_str()).collect::<Vec<_>>(), total), (vec!["first", "second"], 5));
    let (past, total) = store.queued_jobs(&kind, 10, 2).await.unwrap();
    assert!(past.is_empty() && total == 5);
    // A claimed job runs (not waiting), a stopped one is cancelled: both leave the list.
    let claimed = store.claim(&kind, "w", 1, 10, 60_000).await.unwrap();
    assert_eq!(claimed[0].args, "urgent");
    let first = all.iter().find(|j| j.args == "first").unwrap();
    assert!(store.stop_job(first.id).await.unwrap());
    let (left, total) = store.queued_jobs(&kind, 0, 10).await.unwrap();
    assert_eq!((left.iter().map(|j| j.args.as_str()).collect::<Vec<_>>(), total), (vec!["second", "late", "low"], 3));
    // A retried job waits again, with its attempt counted.
    let fail = Finish::Failed { error: "again".into(), retry_in_ms: Some(0) };
    assert!(store.finish(&fence(&claimed[0], "w"), &fail).await.unwrap());
    let (again, _) = store.queued_jobs(&kind, 0, 10).await.unwrap();
    let retried = again.iter().find(|j| j.args == "urgent").expect("retried job waits again");
    assert_eq!((retried.attempt, retried.last_error.as_deref()), (1, Some("again")));
    assert_eq!(store.queued_jobs(&other, 0, 10).await.unwrap().1, 1);
    store.stop_kind(&kind).await.unwrap();
    store.stop_kind(&other).await.unwrap();
}

/// A due schedule fires once, however many instances race to fire it.
async fn schedules(store: &Arc<dyn JobStore>, run: &str) {
    let vt = format!("SCHED_{run}");
    let now = store.job_clock().await.unwrap();
    let s = store
        .put_schedule(&NewSchedule {
            vendor_type: vt.clone(),
            vendor_id: 7,
            cron_type: "Custom".into(),
            cron: "0 0 * * * *".into(),
            args: r#"{"a":1}"#.into(),
            next_fire_at: now - 1_000,
        })
        .await
        .unwrap();
    assert_eq!((s.vendor_id, s.cron.as_str(), s.last_fired_at), (7, "0 0 * * * *", None));
    assert_eq!(store.schedule(&vt, 7).await.unwrap().unwrap(), s);
    assert!(store.due_schedules(1000).await.unwrap().iter().any(|d| d.id == s.id));
    let kind = format!("SK_{run}");
    let firers: Vec<_> = (0..5)
        .map(|_| {
            let store = Arc::clone(store);
            let (vt, kind) = (vt.clone(), kind.clone());
            let e = NewExecution { vendor_id: 7, trigger: "SCHEDULE".into(), ..exec(&vt) };
            tokio::spawn(async move {
                store
                    .fire_schedule(s.id, s.next_fire_at, now + 3_600_000, &e, &[NewJob::new(&kind, "{}")])
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut fired = Vec::new();
    for f in firers {
        fired.extend(f.await.unwrap());
    }
    assert_eq!(fired.len(), 1, "exactly once");
    let (execs, total) = store.executions(&vt, Some(7), 0, 10).await.unwrap();
    assert_eq!((total, execs[0].id, execs[0].trigger.as_str()), (1, fired[0], "SCHEDULE"));
    let after = store.schedule(&vt, 7).await.unwrap().unwrap();
    assert_eq!((after.next_fire_at, after.last_fired_at), (now + 3_600_000, Some(s.next_fire_at)));
    assert!(!store.due_schedules(1000).await.unwrap().iter().any(|d| d.id == s.id));

    // Replacing keeps one schedule per (vendor type, id).
    let edited = store
        .put_schedule(&NewSchedule {
            vendor_type: vt.clone(),
            vendor_id: 7,
            cron_type: "Daily".into(),
            cron: "0 0 0 * * *".into(),
            args: "{}".into(),
            next_fire_at: now + 86_400_000,
        })
        .await
        .unwrap();
    assert_eq!((edited.id, edited.cron_type.as_str()), (s.id, "Daily"));
    assert_eq!(store.schedules().await.unwrap().iter().filter(|x| x.vendor_type == vt).count(), 1);
    assert!(store.delete_schedule(&vt, 7).await.unwrap());
    assert!(!store.delete_schedule(&vt, 7).await.unwrap());
    assert_eq!(store.schedule(&vt, 7).await.unwrap(), None);
}

async fn listing_and_pruning(store: &Arc<dyn JobStore>, run: &str) {
    let vt = format!("LIST_{run}");
    let mut ids = Vec::new();
    for i in 0..5 {
        let e = NewExecution { vendor_id: i % 2, ..exec(&vt) };
        ids.push(store.create_execution(&e, &[]).await.unwrap());
    }
    let (page, total) = store.executions(&vt, None, 1, 2).await.unwrap();
    assert_eq!(total, 5);
    assert_eq!(page.iter().map(|e| e.id).collect::<Vec<_>>(), [ids[3], ids[2]], "newest first, offset 1");
    assert_eq!(page[0].counts.harbor_status(), "Success", "no tasks: nothing to do");
    assert_eq!(store.executions(&vt, Some(1), 0, 10).await.unwrap().1, 2);
    let later = store.job_clock().await.unwrap() + 1_000;
    assert_eq!(store.prune_executions(&vt, later, 2).await.unwrap(), 3, "keeps the newest two");
    let (left, _) = store.executions(&vt, None, 0, 10).await.unwrap();
    assert_eq!(left.iter().map(|e| e.id).collect::<Vec<_>>(), [ids[4], ids[3]]);

    // An unfinished execution is never pruned.
    let kind = format!("PRUNE_{run}");
    let busy = store.create_execution(&exec(&vt), &[NewJob::new(&kind, "{}")]).await.unwrap();
    assert_eq!(store.prune_executions(&vt, later + 10_000, 0).await.unwrap(), 2);
    assert!(store.execution(busy).await.unwrap().is_some());
    assert_eq!(store.execution_tasks(busy).await.unwrap().len(), 1);
}

async fn pools(store: &Arc<dyn JobStore>, run: &str) {
    let id = format!("pool-{run}");
    let now = store.job_clock().await.unwrap();
    let p = WorkerPool { id: id.clone(), host: "h".into(), pid: 42, concurrency: 4, started_at: now, heartbeat_at: 0 };
    store.pool_heartbeat(&p).await.unwrap();
    store.pool_heartbeat(&p).await.unwrap();
    let listed = store.pools(60_000).await.unwrap();
    let mine = listed.iter().find(|x| x.id == id).unwrap();
    assert_eq!((mine.pid, mine.concurrency, mine.started_at), (42, 4, now));
    assert!(mine.heartbeat_at >= now);
}

/// A planning task hands its work to new tasks of its execution and ends with them, in
/// one step; a worker that lost the lease adds nothing.
async fn hand_off_conformance(store: &dyn JobStore, run: &str) {
    let (plan, copy, vt) = (format!("PLAN_{run}"), format!("COPY_{run}"), format!("HANDOFF_{run}"));
    // Owners of their own, so the leases left running here do not show in the main
    // test's `running_jobs("w1")`.
    let (w1, w2) = (format!("h1-{run}"), format!("h2-{run}"));
    let e = store.create_execution(&exec(&vt), &[NewJob::new(&plan, "{}")]).await.unwrap();
    let p = store.claim(&plan, &w1, 1, 10, 60_000).await.unwrap().pop().unwrap();
    let tasks: Vec<NewJob> = (0..3).map(|i| NewJob::new(&copy, format!("{{\"repo\":{i}}}"))).collect();
    assert!(!store.hand_off(&fence(&p, &w2), &tasks).await.unwrap(), "not the owner");
    assert_eq!(store.execution_tasks(e).await.unwrap().len(), 1, "nothing added by a stranger");
    assert!(store.hand_off(&fence(&p, &w1), &tasks).await.unwrap());
    let all = store.execution_tasks(e).await.unwrap();
    assert_eq!(all.len(), 4);
    assert_eq!(all.iter().find(|j| j.id == p.id).unwrap().state, JobState::Succeeded);
    assert_eq!(all.iter().filter(|j| j.kind == copy && j.state == JobState::Queued).count(), 3);
    assert!(!store.hand_off(&fence(&p, &w1), &tasks).await.unwrap(), "ended: not twice");
    assert_eq!(store.execution(e).await.unwrap().unwrap().counts.harbor_status(), "Running");
    assert_eq!(store.claim(&copy, &w1, 10, 10, 60_000).await.unwrap().len(), 3);
}
