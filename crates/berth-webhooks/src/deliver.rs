//! Delivery: one job per (event, policy, target), an HTTP POST of a body rendered when
//! the event was recorded.

use std::time::Duration;

use berth_jobs::{Handler, JobCtx, JobError};
use serde::{Deserialize, Serialize};

/// Job kinds (Harbor's task kinds for webhook executions).
pub const WEBHOOK: &str = "WEBHOOK";
pub const SLACK: &str = "SLACK";

/// The header carrying a delivery's id, the same on every attempt (and the CloudEvents
/// `id`): delivery is at least once, receivers drop what they have seen.
pub const DELIVERY_ID_HEADER: &str = "X-Berth-Delivery-Id";

/// A job's arguments: everything needed to deliver, fixed when the event was recorded.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Delivery {
    pub id: String,
    pub event_type: String,
    pub address: String,
    #[serde(default)]
    pub auth_header: String,
    #[serde(default)]
    pub skip_cert_verify: bool,
    pub content_type: String,
    pub body: String,
}

/// The delivery handler: POST with the target's auth header, retried (capped backoff) on
/// network errors, 429 and 5xx; any other non-2xx answer will not change by retrying.
pub struct Deliver {
    client: reqwest::Client,
    insecure: reqwest::Client,
    retry_cap: Duration,
}

impl Deliver {
    /// `timeout` bounds each attempt; `retry_cap` the wait between attempts. A rustls
    /// crypto provider must be installed before this is built.
    pub fn new(timeout: Duration, retry_cap: Duration) -> Result<Deliver, String> {
        let build = |insecure: bool| {
            reqwest::Client::builder()
                .timeout(timeout)
                .connect_timeout(timeout.min(Duration::from_secs(10)))
                .redirect(reqwest::redirect::Policy::none())
                .tls_danger_accept_invalid_certs(insecure)
                .build()
                .map_err(|e| format!("webhook HTTP client: {e}"))
        };
        Ok(Deliver { client: build(false)?, insecure: build(true)?, retry_cap })
    }
}

impl Deliver {
    /// One POST of `d` to its address, with its content type, delivery id and the target's
    /// auth header: the status the endpoint answered, or why there was no answer
    /// (connection, TLS, timeout; the error's causes included). The job and "send test"
    /// both deliver through this.
    pub async fn post(&self, d: &Delivery) -> Result<reqwest::StatusCode, String> {
        let client = if d.skip_cert_verify { &self.insecure } else { &self.client };
        let mut req = client
            .post(&d.address)
            .header(reqwest::header::CONTENT_TYPE, &d.content_type)
            .header(DELIVERY_ID_HEADER, &d.id)
            .body(d.body.clone());
        if !d.auth_header.is_empty() {
            req = req.header(reqwest::header::AUTHORIZATION, &d.auth_header);
        }
        req.send().await.map(|res| res.status()).map_err(|e| error_chain(&e))
    }
}

/// An error with its causes: reqwest's own text alone ("error sending request") does
/// not say whether the connection was refused or the certificate was wrong.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let t = c.to_string();
        if !text.contains(&t) {
            text.push_str(": ");
            text.push_str(&t);
        }
        cause = c.source();
    }
    text
}

#[async_trait::async_trait]
impl Handler for Deliver {
    async fn run(&self, ctx: &JobCtx) -> Result<(), JobError> {
        let d: Delivery = ctx.args()?;
        let attempt = ctx.job().attempt;
        ctx.info(format!("{} delivery {} to {} (attempt {attempt})", d.event_type, d.id, d.address));
        let retry = |msg: String| JobError::RetryCapped(msg, self.retry_cap);
        match self.post(&d).await {
            Ok(status) => {
                if status.is_success() {
                    ctx.info(format!("delivered: {status}"));
                    Ok(())
                } else if status.is_server_error() || status == reqwest::StatusCode::TOO_MANY_REQUESTS {
                    Err(retry(format!("{} answered {status}; will retry", d.address)))
                } else {
                    Err(JobError::Fatal(format!("{} answered {status}; not retried", d.address)))
                }
            }
            Err(e) => Err(retry(format!("{}: {e}; will retry", d.address))),
        }
    }
}
