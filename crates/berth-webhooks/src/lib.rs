//! Harbor's webhooks: per-project policies ([`policy`]), events and the payloads they
//! become ([`payload`]), and delivery as jobs of the job service ([`deliver`]).
//!
//! [`Webhooks::notify`] is the one entry point for every subsystem that produces events:
//! it finds the project's enabled policies that listen to the event type and records, per
//! policy, one execution (vendor type `WEBHOOK`, vendor id the policy id, trigger `EVENT`)
//! with one task per target, each carrying its rendered body and a delivery id. Once that
//! transaction commits the event is durable: any instance's job service delivers it, with
//! retries, however long the endpoint is down (up to [`MAX_ATTEMPTS`]).
//!
//! [`send_test`] ("send test" in the UI) delivers a test event to a policy's targets at
//! once, through the same body rendering ([`delivery`]) and POST ([`Deliver::post`]).

pub mod deliver;
pub mod payload;
pub mod policy;

use std::sync::Arc;

use berth_core::store::StoreResult;
use berth_core::store::jobs::{NewExecution, NewJob};
use berth_core::store::webhooks::{WebhookPolicy, WebhookStore};
use berth_jobs::JobService;

pub use deliver::{DELIVERY_ID_HEADER, Deliver, Delivery, SLACK, WEBHOOK};
pub use payload::{ArtifactRef, Event, RepoRef, TEST_EVENT};
pub use policy::{FieldError, Target};

/// Harbor's execution vendor type for webhook deliveries.
pub const VENDOR_TYPE: &str = "WEBHOOK";

/// Attempts per delivery: with the default 30 s retry cap, about an hour of an endpoint
/// being down before a delivery is given up (an error task the API shows).
pub const MAX_ATTEMPTS: i32 = 120;

/// Policies and their deliveries.
pub struct Webhooks {
    pub store: Arc<dyn WebhookStore>,
    jobs: Arc<JobService>,
}

impl Webhooks {
    pub fn new(store: Arc<dyn WebhookStore>, jobs: Arc<JobService>) -> Webhooks {
        Webhooks { store, jobs }
    }

    /// Records the deliveries of `event` to every enabled policy of its project that
    /// listens to its type; returns the executions created.
    pub async fn notify(&self, event: &Event) -> StoreResult<Vec<i64>> {
        let policies = self.store.webhook_policies(event.project_id).await?;
        self.notify_policies(&policies, event).await
    }

    /// As [`Webhooks::notify`], with the project's policies already read (a batch of
    /// events reads them once per project).
    pub async fn notify_policies(&self, policies: &[WebhookPolicy], event: &Event) -> StoreResult<Vec<i64>> {
        let mut out = Vec::new();
        for p in policies.iter().filter(|p| listens(p, &event.event_type)) {
            let (exec, tasks) = plan(p, event);
            if tasks.is_empty() {
                continue;
            }
            out.push(self.jobs.start(&exec, &tasks).await?);
        }
        Ok(out)
    }
}

/// Whether `policy` is enabled and wants events of `event_type`.
pub fn listens(policy: &WebhookPolicy, event_type: &str) -> bool {
    policy.enabled && policy.event_types.iter().any(|t| t == event_type)
}

/// The execution and tasks that deliver `event` to `policy`'s targets.
pub fn plan(policy: &WebhookPolicy, event: &Event) -> (NewExecution, Vec<NewJob>) {
    let tasks = targets(policy)
        .iter()
        .map(|t| {
            let (kind, d) = delivery(policy.id, t, event);
            let args = serde_json::to_string(&d).unwrap_or_default();
            NewJob { max_attempts: MAX_ATTEMPTS, ..NewJob::new(kind, args) }
        })
        .collect();
    let exec = NewExecution {
        vendor_type: VENDOR_TYPE.into(),
        vendor_id: policy.id,
        trigger: "EVENT".into(),
        extra_attrs: serde_json::json!({ "event_type": event.event_type, "occur_at": event.occur_at }).to_string(),
    };
    (exec, tasks)
}

/// A policy's targets as stored (none, logged, if they do not parse).
fn targets(policy: &WebhookPolicy) -> Vec<Target> {
    match serde_json::from_str(&policy.targets) {
        Ok(t) => t,
        Err(e) => {
            tracing::error!(policy = policy.id, error = %e, "stored webhook targets do not parse; policy skipped");
            Vec::new()
        }
    }
}

/// The delivery of `event` to target `t` of policy `policy_id`, with a new delivery id:
/// the job kind and everything the POST needs, its body rendered in the target's payload
/// format (Slack's message, CloudEvents, or Harbor's `Default`).
pub fn delivery(policy_id: i64, t: &Target, event: &Event) -> (&'static str, Delivery) {
    let id = uuid::Uuid::new_v4().to_string();
    let (kind, body) = match (t.kind.as_str(), t.payload_format.as_str()) {
        ("slack", _) => (SLACK, payload::slack_body(event)),
        (_, "CloudEvents") => (WEBHOOK, payload::cloudevents_body(event, &id, policy_id)),
        _ => (WEBHOOK, payload::default_body(event)),
    };
    let d = Delivery {
        id,
        event_type: event.event_type.clone(),
        address: t.address.clone(),
        auth_header: t.auth_header.clone(),
        skip_cert_verify: t.skip_cert_verify,
        content_type: body.content_type.into(),
        body: body.text,
    };
    (kind, d)
}

/// How long a test delivery waits for the endpoint.
pub const TEST_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// What one target answered to a test delivery: the status code, or the error that left
/// no answer.
#[derive(Debug, Clone, serde::Serialize)]
pub struct TestResult {
    pub address: String,
    pub notify_type: String,
    pub payload_format: String,
    pub delivery_id: String,
    /// The HTTP status the endpoint answered (`None`: no answer).
    pub status_code: Option<u16>,
    /// Why there was no answer (connection refused, TLS, timeout), else empty.
    pub error: String,
    /// A 2xx answer.
    pub ok: bool,
}

/// Delivers `event` (usually [`Event::test`]) to every target of `policy` right away,
/// once each, without a job or retries, the way a job would (same body, headers and
/// client settings), and says what each endpoint answered. The policy need not be
/// enabled nor listen to the event's type.
pub async fn send_test(policy: &WebhookPolicy, event: &Event) -> Result<Vec<TestResult>, String> {
    let deliver = Deliver::new(TEST_TIMEOUT, TEST_TIMEOUT)?;
    let mut out = Vec::new();
    for t in targets(policy) {
        let (_, d) = delivery(policy.id, &t, event);
        let answer = deliver.post(&d).await;
        out.push(TestResult {
            address: t.address.clone(),
            notify_type: t.kind.clone(),
            payload_format: t.payload_format.clone(),
            delivery_id: d.id,
            status_code: answer.as_ref().ok().map(|s| s.as_u16()),
            error: answer.as_ref().err().cloned().unwrap_or_default(),
            ok: answer.is_ok_and(|s| s.is_success()),
        });
    }
    Ok(out)
}
