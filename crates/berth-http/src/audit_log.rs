//! Where audit entries go, as the runtime settings say: the database unless
//! `skip_audit_log_database`, and a syslog server (TCP) when `audit_log_forward_endpoint`
//! is set, as Harbor forwards them; nowhere for the event types `audit_log_disable`
//! lists. Every writer of audit entries (management changes, artifact events) goes
//! through [`AuditLog::append`], the one place those settings are applied.
//!
//! Forwarding is off the caller's path and best effort, like Harbor's: a queue feeds one
//! connection, each line is written under a deadline, and entries that cannot be sent
//! (server down, queue full) are dropped with a warning; they are still in the database
//! unless that was switched off.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::sync::mpsc;

use berth_core::settings::SettingsCache;
use berth_core::store::StoreResult;
use berth_core::store::identity::{AuditEntry, IdentityStore};

/// Entries waiting to be forwarded beyond this many are dropped.
const QUEUE: usize = 16_384;
/// Connecting and each write must finish within this.
const DEADLINE: Duration = Duration::from_secs(3);

#[derive(Clone)]
pub struct AuditLog {
    identity: Arc<dyn IdentityStore>,
    settings: Arc<SettingsCache>,
    forward: mpsc::Sender<(String, String)>,
}

impl AuditLog {
    /// Starts the forwarder task on the current runtime.
    pub fn start(identity: Arc<dyn IdentityStore>, settings: Arc<SettingsCache>) -> AuditLog {
        let (tx, rx) = mpsc::channel(QUEUE);
        tokio::spawn(forward(rx));
        AuditLog { identity, settings, forward: tx }
    }

    pub async fn append(&self, entries: &[AuditEntry]) -> StoreResult<()> {
        let s = self.settings.get();
        // Disabled event types are dropped before both destinations, as Harbor does.
        let entries: Cow<[AuditEntry]> = if s.audit_log_disable.is_empty() {
            Cow::Borrowed(entries)
        } else {
            entries.iter().filter(|e| !s.audit_log_disable.contains(&e.operation, &e.resource_type)).cloned().collect()
        };
        if !s.audit_log_forward_endpoint.is_empty() {
            for e in entries.iter() {
                if self.forward.try_send((s.audit_log_forward_endpoint.clone(), line(e))).is_err() {
                    tracing::warn!("the audit forwarding queue is full; an entry was not forwarded");
                }
            }
        }
        if s.skip_audit_log_database || entries.is_empty() {
            return Ok(());
        }
        self.identity.append_audit_batch(&entries).await
    }
}

/// One syslog line (RFC 3164 framing, `user.info`, newline-terminated) whose message is
/// the entry as JSON.
fn line(e: &AuditEntry) -> String {
    let msg = json!({
        "project_id": e.project_id,
        "operation": e.operation,
        "resource_type": e.resource_type,
        "resource": e.resource,
        "username": e.username,
        "op_time": crate::harbor::time(e.op_time),
    });
    format!("<14>1 {} berth audit_log - - - {msg}\n", crate::harbor::time(e.op_time))
}

async fn forward(mut rx: mpsc::Receiver<(String, String)>) {
    let mut conn: Option<(String, TcpStream)> = None;
    while let Some((endpoint, line)) = rx.recv().await {
        // A new endpoint gets a new connection; a failed write drops the connection, and
        // the next entry tries a fresh one.
        if conn.as_ref().is_some_and(|(e, _)| *e != endpoint) {
            conn = None;
        }
        if conn.is_none() {
            match tokio::time::timeout(DEADLINE, TcpStream::connect(&endpoint)).await {
                Ok(Ok(s)) => conn = Some((endpoint.clone(), s)),
                Ok(Err(e)) => {
                    tracing::warn!(%endpoint, error = %e, "cannot reach the audit log forward endpoint; entry dropped");
                    continue;
                }
                Err(_) => {
                    tracing::warn!(%endpoint, "the audit log forward endpoint did not answer in time; entry dropped");
                    continue;
                }
            }
        }
        if let Some((_, s)) = conn.as_mut() {
            match tokio::time::timeout(DEADLINE, s.write_all(line.as_bytes())).await {
                Ok(Ok(())) => {}
                _ => {
                    tracing::warn!(%endpoint, "could not forward an audit entry; reconnecting for the next one");
                    conn = None;
                }
            }
        }
    }
}
