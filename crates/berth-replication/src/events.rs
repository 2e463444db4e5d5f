//! Harbor's `REPLICATION` webhook event: one per copy task that ended for good
//! (`Success`, `Error`, `Stopped`; an attempt that will be retried sends nothing), to the
//! webhook policies of the project on this registry's side: the source project of a
//! push-based replication, the destination project of a pull-based one.
//!
//! The payload follows Harbor's `ReplicationHandler`: the policy's description, creator
//! and override mode, the execution's trigger and start, the remote registry's name,
//! type, URL and credential type, and the task's resource as `successful_artifact` or
//! `failed_artifact`. Unlike Harbor, each side's `namespace` is its own (Harbor gives
//! the remote side the source namespace) and `name_tag` keeps nested repository paths.

use std::sync::Arc;

use berth_core::settings::SettingsCache;
use berth_core::store::jobs::Job;
use berth_jobs::{JobCtx, JobError};
use berth_webhooks::{Event, Webhooks};
use serde_json::{Map, Value, json};

use crate::Context;
use crate::copy::CopyArgs;
use crate::registries::Registry;

/// The event type.
pub const REPLICATION: &str = "REPLICATION";

/// Where `REPLICATION` events go.
pub struct Notifier {
    pub webhooks: Arc<Webhooks>,
    /// Runtime settings: nothing is sent while `notification_enable` is off.
    pub settings: Arc<SettingsCache>,
    /// `host[:port]` of this registry (Harbor's `harbor_hostname` is the host part).
    pub hostname: String,
    /// This registry's external URL, the local side's `endpoint`.
    pub endpoint: String,
}

impl Context {
    /// Sets where `REPLICATION` events go (once the webhooks exist: they need the job
    /// service, which needs this context).
    pub fn set_webhooks(&self, n: Notifier) {
        let _ = self.webhooks.set(n);
    }
}

/// Harbor's job status of a copy attempt that ended with `res`, if the task ended for
/// good: `None` for an attempt that will be retried, or whose lease another worker took
/// (that worker reports the outcome). `signal` is the attempt's stop signal
/// ([`JobCtx::check`]): a failure after a stop request ends the task as stopped.
pub fn final_status(res: &Result<(), JobError>, signal: &Result<(), JobError>, job: &Job) -> Option<&'static str> {
    match (res, signal) {
        (Err(JobError::LeaseLost), _) | (_, Err(JobError::LeaseLost)) => None,
        (Ok(()), _) => Some("Success"),
        (Err(JobError::Cancelled), _) | (Err(_), Err(_)) => Some("Stopped"),
        (Err(JobError::Fatal(_)), _) => Some("Error"),
        (Err(_), _) if job.attempt >= job.max_attempts => Some("Error"),
        (Err(_), _) => None,
    }
}

/// What the event says besides the task: read when it is sent, as Harbor does.
pub struct Facts<'a> {
    pub hostname: &'a str,
    pub endpoint: &'a str,
    /// Description, creator, override; `None` if the policy was deleted meanwhile.
    pub policy: Option<&'a crate::Policy>,
    /// The execution's trigger (`MANUAL`, `SCHEDULE`, `EVENT`) and start (seconds).
    pub trigger: &'a str,
    pub started_at: i64,
    /// The remote end of the replication.
    pub remote: Option<&'a Registry>,
    pub execution_id: i64,
    pub task_id: i64,
}

/// The project on this registry's side of the task (`None` if neither side is local).
pub fn local_namespace(args: &CopyArgs) -> Option<&str> {
    let repo = if args.src_registry_id == 0 {
        &args.src_repo
    } else if args.dest_registry_id == 0 {
        &args.dst_repo
    } else {
        return None;
    };
    Some(repo.split_once('/').map_or(repo.as_str(), |(ns, _)| ns))
}

/// The `REPLICATION` event of a copy task that ended with `status`.
pub fn replication_event(
    args: &CopyArgs,
    project_id: i64,
    status: &str,
    error: Option<&str>,
    f: &Facts<'_>,
    at: i64,
) -> Event {
    let (src_res, dst_res) = args.resources();
    let split = |r: &str| -> (String, String) {
        match r.split_once('/') {
            Some((ns, rest)) => (ns.to_owned(), rest.to_owned()),
            None => (String::new(), r.to_owned()),
        }
    };
    let (src_ns, src_name) = split(&src_res);
    let (dst_ns, dst_name) = split(&dst_res);
    let remote = |ns: &str| {
        let mut v = json!({
            "registry_type": f.remote.map_or("", |r| r.doc.kind.as_str()),
            "endpoint": f.remote.map_or("", |r| r.doc.url.as_str()),
        });
        if let Some(r) = f.remote {
            v["registry_name"] = json!(r.doc.name);
        }
        if !ns.is_empty() {
            v["namespace"] = json!(ns);
        }
        v
    };
    let local = |ns: &str| {
        let mut v = json!({ "registry_type": "harbor", "endpoint": f.endpoint });
        if !ns.is_empty() {
            v["namespace"] = json!(ns);
        }
        v
    };
    let push = args.src_registry_id == 0;
    let (src, dst) = if push { (local(&src_ns), remote(&dst_ns)) } else { (remote(&src_ns), local(&dst_ns)) };
    // The local side's resource names the artifact, as in Harbor.
    let name_tag = if push { src_name } else { dst_name };
    let hostname = f.hostname.split(':').next().unwrap_or(f.hostname);
    let mut r = Map::new();
    r.insert("harbor_hostname".into(), json!(hostname));
    r.insert("job_status".into(), json!(status));
    if let Some(p) = f.policy {
        if !p.description.is_empty() {
            r.insert("description".into(), json!(p.description));
        }
        if !p.creator.is_empty() {
            r.insert("policy_creator".into(), json!(p.creator));
        }
        if p.r#override {
            r.insert("override_mode".into(), json!(true));
        }
    }
    // Harbor's registries list resources of type `artifact`.
    r.insert("artifact_type".into(), json!("artifact"));
    if let Some(t) = f.remote.map(|r| r.doc.credential_type.as_str()).filter(|t| !t.is_empty()) {
        r.insert("authentication_type".into(), json!(t));
    }
    r.insert("trigger_type".into(), json!(f.trigger));
    r.insert("execution_timestamp".into(), json!(f.started_at));
    r.insert("src_resource".into(), src);
    r.insert("dest_resource".into(), dst);
    let mut artifact = json!({ "type": "artifact", "status": status, "name_tag": name_tag });
    match status {
        "Success" => {
            r.insert("successful_artifact".into(), json!([artifact]));
        }
        "Error" => {
            if let Some(e) = error {
                artifact["fail_reason"] = json!(e);
            }
            r.insert("failed_artifact".into(), json!([artifact]));
        }
        _ => {}
    }
    r.insert("execution_id".into(), json!(f.execution_id));
    r.insert("task_id".into(), json!(f.task_id));
    let mut data = Map::new();
    data.insert("replication".into(), Value::Object(r));
    Event { event_type: REPLICATION.into(), project_id, occur_at: at, operator: f.trigger.into(), data }
}

/// Sends the `REPLICATION` event of the copy task `job`, which ended with `status`.
/// Failures are logged: the task's outcome is what counts.
pub(crate) async fn task_ended(ctx: &Context, job: &JobCtx, status: &str, error: Option<&JobError>) {
    let Some(n) = ctx.webhooks.get() else { return };
    if !n.settings.get().notification_enable {
        return;
    }
    let Ok(args) = job.args::<CopyArgs>() else { return };
    let Some(namespace) = local_namespace(&args) else { return };
    let task = job.job();
    let result: Result<Option<Event>, berth_core::store::StoreError> = async {
        let Some(project) = ctx.identity.project_by_name(namespace).await? else { return Ok(None) };
        let policy = ctx.policy(args.policy_id).await?;
        let exec = match ctx.jobs.get() {
            Some(jobs) => jobs.execution(task.execution_id).await?,
            None => None,
        };
        let remote_id = if args.src_registry_id == 0 { args.dest_registry_id } else { args.src_registry_id };
        let remote = ctx.registries.get(remote_id).await.ok().flatten();
        let facts = Facts {
            hostname: &n.hostname,
            endpoint: &n.endpoint,
            policy: policy.as_ref().map(|p| &p.policy),
            trigger: exec.as_ref().map_or("MANUAL", |e| e.trigger.as_str()),
            started_at: exec.as_ref().map_or(task.created_at, |e| e.created_at) / 1000,
            remote: remote.as_ref(),
            execution_id: task.execution_id,
            task_id: task.id,
        };
        let error = error.map(ToString::to_string);
        Ok(Some(replication_event(&args, project.id, status, error.as_deref(), &facts, now())))
    }
    .await;
    match result {
        Ok(Some(event)) => {
            if let Err(e) = n.webhooks.notify(&event).await {
                tracing::warn!(error = %e, task = task.id, "could not record REPLICATION deliveries");
            }
        }
        Ok(None) => {}
        Err(e) => tracing::warn!(error = %e, task = task.id, "could not build the REPLICATION event; not sent"),
    }
}

fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::copy::Item;
    use crate::registries::RegistryDoc;
    use berth_core::store::jobs::JobState;

    fn args(src: i64, dst: i64) -> CopyArgs {
        CopyArgs {
            policy_id: 4,
            src_registry_id: src,
            dest_registry_id: dst,
            src_repo: "team/sub/app".into(),
            dst_repo: "mirror/sub/app".into(),
            items: vec![Item { reference: "sha256:1".into(), tags: vec!["v1".into()] }],
            r#override: true,
            copy_by_chunk: false,
            speed_kib: None,
            operation: "copy".into(),
        }
    }

    fn job(attempt: i32, max_attempts: i32) -> Job {
        Job {
            id: 9,
            execution_id: 8,
            kind: crate::COPY.into(),
            args: String::new(),
            state: JobState::Running,
            attempt,
            max_attempts,
            lease_owner: None,
            run_at: 0,
            cancel_requested: false,
            progress: None,
            last_error: None,
            created_at: 0,
            started_at: None,
            finished_at: None,
            updated_at: 0,
        }
    }

    #[test]
    fn only_a_final_outcome_has_a_status() {
        let ok = Ok(());
        let retry = || Err(JobError::Retry("x".into()));
        assert_eq!(final_status(&Ok(()), &ok, &job(1, 3)), Some("Success"));
        assert_eq!(final_status(&retry(), &ok, &job(1, 3)), None, "retried");
        assert_eq!(final_status(&retry(), &ok, &job(3, 3)), Some("Error"), "the last attempt");
        assert_eq!(final_status(&Err(JobError::Fatal("x".into())), &ok, &job(1, 3)), Some("Error"));
        assert_eq!(final_status(&Err(JobError::Cancelled), &Err(JobError::Cancelled), &job(1, 3)), Some("Stopped"));
        assert_eq!(final_status(&retry(), &Err(JobError::Cancelled), &job(1, 3)), Some("Stopped"));
        assert_eq!(final_status(&retry(), &Err(JobError::LeaseLost), &job(3, 3)), None, "another worker has it");
        assert_eq!(final_status(&Err(JobError::LeaseLost), &ok, &job(3, 3)), None);
    }

    #[test]
    fn the_local_side_is_the_project() {
        assert_eq!(local_namespace(&args(0, 2)), Some("team"), "push: the source project");
        assert_eq!(local_namespace(&args(2, 0)), Some("mirror"), "pull: the destination project");
        assert_eq!(local_namespace(&args(2, 3)), None);
    }

    #[test]
    fn push_payload_has_harbors_shape() {
        let remote = Registry {
            id: 2,
            doc: RegistryDoc {
                name: "dist".into(),
                url: "http://127.0.0.1:5001".into(),
                kind: "docker-registry".into(),
                credential_type: "basic".into(),
                description: String::new(),
                insecure: true,
                access_key: "u".into(),
                access_secret: String::new(),
                status: String::new(),
            },
            created_at: 0,
            updated_at: 0,
        };
        let policy: crate::Policy = serde_json::from_value(json!({
            "name": "p", "description": "to dist", "creator": "admin", "src_registry_id": 0,
            "dest_registry_id": 2, "override": true,
        }))
        .unwrap();
        let f = Facts {
            hostname: "reg.example:8443",
            endpoint: "https://reg.example:8443",
            policy: Some(&policy),
            trigger: "MANUAL",
            started_at: 1_700_000_000,
            remote: Some(&remote),
            execution_id: 8,
            task_id: 9,
        };
        let e = replication_event(&args(0, 2), 5, "Success", None, &f, 1_700_000_060);
        assert_eq!((e.event_type.as_str(), e.project_id, e.operator.as_str()), ("REPLICATION", 5, "MANUAL"));
        let r = &e.data["replication"];
        assert_eq!(r["harbor_hostname"], "reg.example");
        assert_eq!(r["job_status"], "Success");
        assert_eq!(r["description"], "to dist");
        assert_eq!(r["policy_creator"], "admin");
        assert_eq!(r["override_mode"], true);
        assert_eq!(r["authentication_type"], "basic");
        assert_eq!(r["trigger_type"], "MANUAL");
        assert_eq!(r["execution_timestamp"], 1_700_000_000);
        assert_eq!(
            r["src_resource"],
            json!({"registry_type": "harbor", "endpoint": "https://reg.example:8443", "namespace": "team"})
        );
        assert_eq!(
            r["dest_resource"],
            json!({"registry_name": "dist", "registry_type": "docker-registry",
                   "endpoint": "http://127.0.0.1:5001", "namespace": "mirror"})
        );
        assert_eq!(
            r["successful_artifact"],
            json!([{"type": "artifact", "status": "Success", "name_tag": "sub/app:[v1]"}])
        );
        assert!(r.get("failed_artifact").is_none());

        let e = replication_event(&args(2, 0), 5, "Error", Some("refused"), &f, 0);
        let r = &e.data["replication"];
        assert_eq!(r["src_resource"]["registry_name"], "dist");
        assert_eq!(r["dest_resource"]["registry_type"], "harbor");
        assert_eq!(r["failed_artifact"][0]["name_tag"], "sub/app:[v1]", "pull: the destination's name");
        assert_eq!(r["failed_artifact"][0]["fail_reason"], "refused");
        assert!(r.get("successful_artifact").is_none());
    }
}
