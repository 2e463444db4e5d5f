//! The job service through the real binary: Harbor's audit log purge (manual, dry run,
//! scheduled), the job service monitor (pools, workers, queues, stop, pause, logs),
//! refusals that name the field, and on PostgreSQL with several instances: a schedule
//! fires once per tick, a job of a killed instance finishes on another from its last
//! checkpoint, and a frozen (SIGSTOPped) worker's job is taken over and its late writes
//! are refused.

use std::sync::Arc;
use std::time::{Duration, Instant};

use berth_core::store::identity::{AuditEntry, IdentityStore};
use berth_core::store::jobs::{JobState, JobStore, NewExecution, NewJob};
use reqwest::Method;
use serde_json::{Value, json};

use crate::ha_postgres::{PgDb, pg_available, start_instance_with};
use crate::support::*;

const API: &str = "/api/v2.0";

/// Seconds since the Unix epoch, as audit entries count time.
pub(crate) fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64
}

/// The server's own database, opened beside it (SQLite allows a second process).
pub(crate) fn sqlite_of(s: &Server) -> Arc<berth_store_sqlite::SqliteStore> {
    Arc::new(berth_store_sqlite::SqliteStore::open(&s.data_dir.join("berth.db")).unwrap())
}

/// Writes audit entries by `admin` — (operation, resource type, resource, time) — straight
/// into the server's database, in this order.
pub(crate) async fn append_audit(s: &Server, entries: &[(&str, &str, &str, i64)]) {
    let store = sqlite_of(s);
    for (operation, resource_type, resource, op_time) in entries {
        let e = AuditEntry {
            id: 0,
            project_id: 0,
            operation: operation.to_string(),
            resource_type: resource_type.to_string(),
            resource: resource.to_string(),
            username: "admin".into(),
            op_time: *op_time,
        };
        store.append_audit(&e).await.unwrap();
    }
}

pub(crate) async fn wait_for<T>(what: &str, limit: Duration, mut f: impl AsyncFnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(start.elapsed() < limit, "timed out after {limit:?} waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Polls `GET path` until `job_status` is final; returns the body.
async fn finished(s: &Server, path: &str) -> Value {
    wait_for(path, Duration::from_secs(20), async || {
        let v = ok_json(s, path, &admin()).await;
        let st = v["job_status"].as_str().unwrap().to_owned();
        (!matches!(st.as_str(), "Pending" | "Running")).then_some(v)
    })
    .await
}

async fn text(s: &Server, path: &str) -> String {
    let r = get(s, path, &admin()).await;
    assert_eq!(r.status(), 200, "GET {path}");
    assert!(header(&r, "content-type").starts_with("text/plain"));
    r.text().await.unwrap()
}

async fn run_purge(s: &Server, params: Value) -> (i64, Value, String) {
    let body = json!({"schedule": {"type": "Manual"}, "parameters": params});
    let r = call(s, Method::POST, &format!("{API}/system/purgeaudit/schedule"), &admin(), Some(&body)).await;
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
    let id = location_id(&r);
    assert!(header(&r, "location").ends_with(&format!("/api/v2.0/system/purgeaudit/{id}")));
    let v = finished(s, &format!("{API}/system/purgeaudit/{id}")).await;
    let log = text(s, &format!("{API}/system/purgeaudit/{id}/log")).await;
    (id, v, log)
}

#[tokio::test]
async fn audit_log_purge_dry_run_then_real_keeps_what_it_should() {
    let s = Server::start_harbor();
    let old = now() - 48 * 3600;
    let gone: Vec<String> = (0..3).map(|i| format!("old/gone:{i}")).collect();
    let mut entries: Vec<_> = gone.iter().map(|r| ("delete", "artifact", r.as_str(), old)).collect();
    entries.push(("pull", "artifact", "old/kept:pull", old));
    entries.push(("delete", "artifact", "young/kept:delete", now()));
    append_audit(&s, &entries).await;
    let count = async |q: &str| {
        let r = get(&s, &format!("{API}/audit-logs?q={q}&page_size=100"), &admin()).await;
        header(&r, "x-total-count").parse::<u64>().unwrap()
    };
    let deletes = count("operation%3Ddelete").await;

    let params = json!({"audit_retention_hour": 24, "include_operations": "delete", "dry_run": true});
    let (id, v, log) = run_purge(&s, params).await;
    assert_eq!((v["id"].as_i64(), v["job_status"].as_str()), (Some(id), Some("Success")));
    assert_eq!((v["job_name"].as_str(), v["job_kind"].as_str()), (Some("PURGE_AUDIT_LOG"), Some("MANUAL")));
    let stored: Value = serde_json::from_str(v["job_parameters"].as_str().unwrap()).unwrap();
    assert_eq!(stored["dry_run"], true);
    assert!(log.contains("dry run: 3 entries would be purged"), "{log}");
    assert_eq!(count("operation%3Ddelete").await, deletes, "a dry run deletes nothing");

    let (_, v, log) = run_purge(&s, json!({"audit_retention_hour": "24", "include_operations": "delete"})).await;
    assert_eq!(v["job_status"], "Success");
    assert!(log.contains("purged 3 audit log entries"), "{log}");
    assert!(log.lines().all(|l| l.contains(" [INFO] ")), "Harbor-style lines: {log}");
    assert_eq!(count("operation%3Ddelete").await, deletes - 3);
    let kept = ok_json(&s, &format!("{API}/audit-logs?page_size=100"), &admin()).await;
    let resources: Vec<&str> = kept.as_array().unwrap().iter().map(|e| e["resource"].as_str().unwrap()).collect();
    assert!(resources.contains(&"old/kept:pull") && resources.contains(&"young/kept:delete"), "{resources:?}");
    assert!(!resources.iter().any(|r| r.starts_with("old/gone")));

    // History, newest first, with Harbor's paging headers; starting the purge was audited.
    let r = get(&s, &format!("{API}/system/purgeaudit?page=1&page_size=1"), &admin()).await;
    assert_eq!(header(&r, "x-total-count"), "2");
    assert!(header(&r, "link").contains("rel=\"next\""));
    assert_eq!(body_json(r).await[0]["id"].as_i64(), Some(id + 1));
    assert!(resources.iter().any(|r| r.starts_with("audit log purge")), "{resources:?}");
    let r = get(&s, &format!("{API}/system/purgeaudit/999999"), &admin()).await;
    expect_error(r, 404, "NOT_FOUND").await;
}

#[tokio::test]
async fn purge_schedule_fires_and_can_be_removed() {
    let s = Server::start_harbor();
    let path = format!("{API}/system/purgeaudit/schedule");
    let none = ok_json(&s, &path, &admin()).await;
    assert_eq!(none["schedule"]["type"], "None");
    let body = json!({"schedule": {"type": "Custom", "cron": "*/1 * * * * *"},
                      "parameters": {"audit_retention_hour": 720, "include_operations": "create,pull"}});
    assert_eq!(status(&s, Method::PUT, &path, &admin(), Some(&body)).await, 200);
    let got = ok_json(&s, &path, &admin()).await;
    assert_eq!(
        (got["schedule"]["type"].as_str(), got["schedule"]["cron"].as_str()),
        (Some("Custom"), Some("*/1 * * * * *"))
    );
    assert!(got["schedule"]["next_scheduled_time"].as_str().unwrap().ends_with('Z'));
    let fired = wait_for("a scheduled purge", Duration::from_secs(10), async || {
        let list = ok_json(&s, &format!("{API}/system/purgeaudit"), &admin()).await;
        list.as_array().unwrap().iter().find(|e| e["job_kind"] == "SCHEDULE").cloned()
    })
    .await;
    let params: Value = serde_json::from_str(fired["job_parameters"].as_str().unwrap()).unwrap();
    assert_eq!(params["audit_retention_hour"], 720);
    let listed = ok_json(&s, &format!("{API}/schedules"), &admin()).await;
    assert!(listed.as_array().unwrap().iter().any(|x| x["vendor_type"] == "PURGE_AUDIT_LOG"), "{listed}");
    assert!(listed.as_array().unwrap().iter().any(|x| x["vendor_type"] == "EXECUTION_SWEEP"), "the daily sweep");

    assert_eq!(status(&s, Method::PUT, &path, &admin(), Some(&json!({"schedule": {"type": "None"}}))).await, 200);
    assert_eq!(ok_json(&s, &path, &admin()).await["schedule"]["type"], "None");
    let settled = ok_json(&s, &format!("{API}/system/purgeaudit"), &admin()).await.as_array().unwrap().len();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let after = ok_json(&s, &format!("{API}/system/purgeaudit"), &admin()).await.as_array().unwrap().len();
    assert!(after <= settled + 1, "no more firings once removed ({settled} → {after})");
}

#[tokio::test]
async fn bad_schedules_and_parameters_are_refused_naming_the_field() {
    let s = Server::start_harbor();
    let path = format!("{API}/system/purgeaudit/schedule");
    let cases = [
        (
            json!({"schedule": {"type": "Custom", "cron": "0 0 * * *"}, "parameters": {"audit_retention_hour": 1}}),
            "schedule.cron",
        ),
        (
            json!({"schedule": {"type": "Custom", "cron": "0 0 25 * * *"}, "parameters": {"audit_retention_hour": 1}}),
            "schedule.cron",
        ),
        (json!({"schedule": {"type": "Custom"}, "parameters": {"audit_retention_hour": 1}}), "schedule.cron"),
        (json!({"schedule": {"type": "Sometimes"}, "parameters": {"audit_retention_hour": 1}}), "schedule.type"),
        (
            json!({"schedule": {"type": "Manual"}, "parameters": {"audit_retention_hour": 0}}),
            "parameters.audit_retention_hour",
        ),
        (json!({"schedule": {"type": "Manual"}, "parameters": {}}), "parameters.audit_retention_hour"),
        (
            json!({"schedule": {"type": "Manual"}, "parameters": {"audit_retention_hour": 1, "include_operations": "pull,boom"}}),
            "parameters.include_operations",
        ),
        (
            json!({"schedule": {"type": "Manual"}, "parameters": {"audit_retention_hour": 1, "workers": 3}}),
            "parameters.workers",
        ),
        (json!({"schedule": {"type": "Daily"}, "parameters": {"audit_retention_hour": 1}, "colour": "red"}), "colour"),
        (json!({"parameters": {"audit_retention_hour": 1}}), "schedule"),
    ];
    for (body, field) in cases {
        for method in [Method::POST, Method::PUT] {
            let r = call(&s, method.clone(), &path, &admin(), Some(&body)).await;
            let msg = expect_error(r, 400, "BAD_REQUEST").await;
            assert!(msg.contains(field), "{method} {body}: {msg:?} should name {field}");
        }
    }
    assert!(
        ok_json(&s, &format!("{API}/system/purgeaudit"), &admin()).await.as_array().unwrap().is_empty(),
        "nothing ran"
    );
    let r =
        call(&s, Method::PUT, &format!("{API}/jobservice/queues/all"), &admin(), Some(&json!({"action": "explode"})))
            .await;
    assert!(expect_error(r, 400, "BAD_REQUEST").await.contains("action"));
    let r = call(
        &s,
        Method::PUT,
        &format!("{API}/jobservice/queues/NO_SUCH_TYPE"),
        &admin(),
        Some(&json!({"action": "pause"})),
    )
    .await;
    expect_error(r, 404, "NOT_FOUND").await;
    let r =
        call(&s, Method::PUT, &format!("{API}/jobservice/jobs/abc"), &admin(), Some(&json!({"action": "stop"}))).await;
    assert!(expect_error(r, 400, "BAD_REQUEST").await.contains("job_id"));
    let r = call(&s, Method::PUT, &format!("{API}/jobservice/jobs/424242"), &admin(), Some(&json!({"action": "stop"})))
        .await;
    expect_error(r, 404, "NOT_FOUND").await;
    let r = get(&s, &format!("{API}/schedules/GARBAGE_COLLECTION/paused"), &admin()).await;
    assert!(expect_error(r, 400, "BAD_REQUEST").await.contains("job_type"));
}

pub(crate) fn sample_env() -> Vec<(&'static str, &'static str)> {
    vec![("BERTH_AUTH_MODE", "harbor"), ("BERTH_JOBS_SAMPLE_JOB", "true"), ("BERTH_JOBS_LEASE_SECS", "3")]
}

pub(crate) async fn start_sample(store: &dyn JobStore, seconds: u64) -> (i64, i64) {
    let exec =
        NewExecution { vendor_type: "SAMPLE".into(), vendor_id: 0, trigger: "MANUAL".into(), extra_attrs: "{}".into() };
    let job = NewJob { max_attempts: 5, ..NewJob::new("SAMPLE", json!({"seconds": seconds}).to_string()) };
    let e = store.create_execution(&exec, &[job]).await.unwrap();
    let task = store.execution_tasks(e).await.unwrap()[0].id;
    (e, task)
}

async fn job_done(store: &dyn JobStore, id: i64) -> u64 {
    let j = store.job(id).await.unwrap().unwrap();
    j.progress.and_then(|p| serde_json::from_str::<Value>(&p).ok()).and_then(|p| p["done"].as_u64()).unwrap_or(0)
}

#[tokio::test]
async fn job_service_monitor_stops_pauses_and_shows_workers() {
    let tmp = tempfile::tempdir().unwrap();
    let s = Server::spawn(&tmp.path().join("data"), &sample_env());
    let store = sqlite_of(&s);
    let pools = ok_json(&s, &format!("{API}/jobservice/pools"), &admin()).await;
    assert_eq!(pools.as_array().unwrap().len(), 1, "{pools}");
    let pool = pools[0]["worker_pool_id"].as_str().unwrap().to_owned();
    assert_eq!(pools[0]["pid"].as_i64(), Some(i64::from(s.pid())));

    let (_, job) = start_sample(store.as_ref(), 60).await;
    wait_for("the sample job to run", Duration::from_secs(10), async || {
        (job_done(store.as_ref(), job).await >= 1).then_some(())
    })
    .await;
    let workers = ok_json(&s, &format!("{API}/jobservice/pools/{pool}/workers"), &admin()).await;
    assert_eq!(
        (workers[0]["job_name"].as_str(), workers[0]["job_id"].as_str()),
        (Some("SAMPLE"), Some(job.to_string().as_str()))
    );
    assert_eq!(ok_json(&s, &format!("{API}/jobservice/pools/all/workers"), &admin()).await, workers);
    let queues = ok_json(&s, &format!("{API}/jobservice/queues"), &admin()).await;
    let names: Vec<&str> = queues.as_array().unwrap().iter().map(|q| q["job_type"].as_str().unwrap()).collect();
    for t in ["PURGE_AUDIT_LOG", "EXECUTION_SWEEP", "SAMPLE", "SCHEDULER"] {
        assert!(names.contains(&t), "{names:?}");
    }

    // Stop it: within a heartbeat (1 s here) plus a step.
    let asked = Instant::now();
    let stop = json!({"action": "stop"});
    assert_eq!(status(&s, Method::PUT, &format!("{API}/jobservice/jobs/{job}"), &admin(), Some(&stop)).await, 200);
    wait_for("the stop", Duration::from_secs(5), async || {
        (store.job(job).await.unwrap().unwrap().state == JobState::Cancelled).then_some(())
    })
    .await;
    assert!(asked.elapsed() < Duration::from_secs(4), "stopped after {:?}", asked.elapsed());
    let log = text(&s, &format!("{API}/jobservice/jobs/{job}/log")).await;
    assert!(log.contains("second 1 of 60"), "{log}");

    // Paused, a queue keeps its jobs; resumed, they run.
    let pause = json!({"action": "pause"});
    assert_eq!(status(&s, Method::PUT, &format!("{API}/jobservice/queues/SAMPLE"), &admin(), Some(&pause)).await, 200);
    let (_, waiting) = start_sample(store.as_ref(), 1).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(store.job(waiting).await.unwrap().unwrap().state, JobState::Queued);
    let queues = ok_json(&s, &format!("{API}/jobservice/queues"), &admin()).await;
    let sample = queues.as_array().unwrap().iter().find(|q| q["job_type"] == "SAMPLE").unwrap().clone();
    assert_eq!((sample["count"].as_u64(), sample["paused"].as_bool()), (Some(1), Some(true)));
    let metrics = client().get(s.url("/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains("berth_jobs_queued{kind=\"SAMPLE\"} 1"), "{metrics}");
    let resume = json!({"action": "resume"});
    assert_eq!(status(&s, Method::PUT, &format!("{API}/jobservice/queues/SAMPLE"), &admin(), Some(&resume)).await, 200);
    wait_for("the resumed job", Duration::from_secs(10), async || {
        (store.job(waiting).await.unwrap().unwrap().state == JobState::Succeeded).then_some(())
    })
    .await;
    let metrics = client().get(s.url("/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains("berth_jobs_finished_total{kind=\"SAMPLE\",outcome=\"succeeded\"} 1"), "{metrics}");
    assert!(metrics.contains("berth_jobs_finished_total{kind=\"SAMPLE\",outcome=\"stopped\"} 1"), "{metrics}");

    // Schedules pause with the SCHEDULER queue, as in Harbor.
    let paused = format!("{API}/schedules/all/paused");
    assert_eq!(ok_json(&s, &paused, &admin()).await, json!({"paused": false}));
    assert_eq!(
        status(&s, Method::PUT, &format!("{API}/jobservice/queues/SCHEDULER"), &admin(), Some(&pause)).await,
        200
    );
    assert_eq!(ok_json(&s, &paused, &admin()).await, json!({"paused": true}));
    let health = ok_json(&s, &format!("{API}/health"), &admin()).await;
    let jobservice =
        health["components"].as_array().unwrap().iter().find(|c| c["name"] == "jobservice").unwrap().clone();
    assert_eq!(jobservice["status"], "healthy", "{health}");
}

#[tokio::test]
async fn on_postgres_a_schedule_fires_once_per_tick_across_three_instances() {
    if !pg_available() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let db = PgDb::create();
    let storage = tmp.path().join("shared");
    let servers: Vec<Server> =
        (0..3).map(|i| start_instance_with(&tmp.path().join(format!("i{i}")), &db.url(), &storage, &[])).collect();
    let s = &servers[0];
    let path = format!("{API}/system/purgeaudit/schedule");
    let body =
        json!({"schedule": {"type": "Custom", "cron": "*/1 * * * * *"}, "parameters": {"audit_retention_hour": 720}});
    let started = Instant::now();
    assert_eq!(status(s, Method::PUT, &path, &admin(), Some(&body)).await, 200);
    tokio::time::sleep(Duration::from_millis(4200)).await;
    assert_eq!(
        status(&servers[1], Method::PUT, &path, &admin(), Some(&json!({"schedule": {"type": "None"}}))).await,
        200
    );
    let elapsed = started.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let r = get(&servers[2], &format!("{API}/system/purgeaudit?page_size=100"), &admin()).await;
    let total: f64 = header(&r, "x-total-count").parse().unwrap();
    // At most one firing per tick that passed, not one per instance (three instances
    // racing would fire each tick up to three times); missed ticks (a loaded machine)
    // collapse into one firing, so there is no exact lower bound beyond "it fired".
    assert!(total >= 2.0 && total <= elapsed.ceil() + 1.0, "{total} firings in {elapsed:.1} s");
    let pools = ok_json(s, &format!("{API}/jobservice/pools"), &admin()).await;
    assert_eq!(pools.as_array().unwrap().len(), 3, "every instance's pool is listed");
}

/// A PostgreSQL database of its own with one instance running sample jobs (lease 3 s),
/// and a store on it for the test to look through.
struct SampleCluster {
    tmp: tempfile::TempDir,
    db: PgDb,
    store: berth_store_postgres::PgStore,
}

impl SampleCluster {
    async fn start() -> (Server, SampleCluster) {
        let tmp = tempfile::tempdir().unwrap();
        let db = PgDb::create();
        let first = start_instance_with(&tmp.path().join("a"), &db.url(), &tmp.path().join("shared"), &sample_env());
        let store =
            berth_store_postgres::PgStore::connect(berth_store_postgres::PgOptions::new(db.url())).await.unwrap();
        (first, SampleCluster { tmp, db, store })
    }

    fn second(&self) -> Server {
        start_instance_with(&self.tmp.path().join("b"), &self.db.url(), &self.tmp.path().join("shared"), &sample_env())
    }
}

async fn final_state(store: &dyn JobStore, job: i64) -> berth_core::store::jobs::Job {
    wait_for("the job to finish on the other instance", Duration::from_secs(30), async || {
        let j = store.job(job).await.unwrap().unwrap();
        j.state.is_final().then_some(j)
    })
    .await
}

#[tokio::test]
async fn on_postgres_a_killed_instances_job_finishes_on_another_from_its_checkpoint() {
    if !pg_available() {
        return;
    }
    let (mut a, sc) = SampleCluster::start().await;
    let store = &sc.store;
    let (exec, job) = start_sample(store, 6).await;
    wait_for("two seconds of work on A", Duration::from_secs(15), async || {
        (job_done(store, job).await >= 2).then_some(())
    })
    .await;
    let b = sc.second();
    a.kill();
    let at_kill = job_done(store, job).await;
    let done = final_state(store, job).await;
    assert_eq!((done.state, done.attempt), (JobState::Succeeded, 2));
    let log = text(&b, &format!("{API}/jobservice/jobs/{job}/log")).await;
    assert!(log.contains(&format!("resuming at second {at_kill}")), "resumed from the checkpoint: {log}");
    let seconds_counted = log.lines().filter(|l| l.contains(" of 6")).count() as u64;
    assert!(seconds_counted <= 6 + 1, "at most the second in flight is done twice: {log}");
    assert!(done.last_error.unwrap().contains("lease expired"), "the lost attempt is explained");
    let e = store.execution(exec).await.unwrap().unwrap();
    assert_eq!(e.counts.harbor_status(), "Success");
}

#[tokio::test]
async fn on_postgres_a_frozen_workers_job_is_taken_over_and_its_late_writes_refused() {
    if !pg_available() {
        return;
    }
    let (a, sc) = SampleCluster::start().await;
    let store = &sc.store;
    let (_, job) = start_sample(store, 5).await;
    wait_for("work on A", Duration::from_secs(15), async || (job_done(store, job).await >= 1).then_some(())).await;
    let b = sc.second();
    unsafe { libc::kill(a.pid(), libc::SIGSTOP) };
    let done = final_state(store, job).await;
    assert_eq!((done.state, done.attempt, job_done(store, job).await), (JobState::Succeeded, 2, 5));
    // A wakes up believing it still runs the job: whatever it writes is refused.
    unsafe { libc::kill(a.pid(), libc::SIGCONT) };
    tokio::time::sleep(Duration::from_secs(3)).await;
    let after = store.job(job).await.unwrap().unwrap();
    assert_eq!(after, done, "the frozen worker changed nothing");
    let log = store.job_log(job).await.unwrap();
    let takeover = log.iter().position(|l| l.attempt == 2).unwrap();
    assert!(log[takeover..].iter().all(|l| l.attempt == 2), "no line of the old attempt after the takeover");
    assert_eq!(ok_json(&b, &format!("{API}/health"), &admin()).await["status"], "healthy");
}
