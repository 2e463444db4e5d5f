//! Redis for a cluster of Berth instances: shared login-failure counts and short-lived
//! locks. Nothing that must survive lives here: losing Redis costs only what
//! [`crate::throttle`] and [`crate::lock`] say, never data.
//!
//! The client is deliberately small: RESP2 over TCP or TLS (`rediss://`, rustls from
//! berth-tls), ACL users, a handful of commands, a deadline on every call, a few idle
//! connections kept for reuse, and Sentinel discovery of the current master on every new
//! connection so a failover needs no restart.

mod conn;
pub mod lock;
pub mod throttle;
mod url;

use std::sync::Mutex;
use std::time::Duration;

use conn::Conn;
pub use conn::Value;
pub use url::{Kind, Target};

#[derive(Debug, thiserror::Error)]
pub enum RedisError {
    #[error("redis: no answer within {0:?}")]
    Timeout(Duration),
    #[error("redis: {0}")]
    Io(String),
    #[error("redis: unexpected reply: {0}")]
    Protocol(String),
    /// An error reply (`-ERR ...`, `-NOAUTH ...`).
    #[error("redis: {0}")]
    Server(String),
    #[error("redis.url: {0}")]
    Config(String),
    /// The CA file for `rediss` cannot be used.
    #[error("redis.tls_ca: {0}")]
    TlsCa(String),
}

/// Idle connections kept per client; more run concurrently, they just are not kept.
const IDLE: usize = 8;

pub struct Redis {
    target: Target,
    tls: Option<tokio_rustls::TlsConnector>,
    timeout: Duration,
    idle: Mutex<Vec<Conn>>,
}

impl std::fmt::Debug for Redis {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Redis").field("target", &self.target).field("timeout", &self.timeout).finish_non_exhaustive()
    }
}

impl Redis {
    /// Parses the URL; connects lazily, so a Redis that is down at start-up only shows in
    /// health checks and logs, and the instance still serves.
    pub fn new(url: &str, timeout: Duration) -> Result<Redis, RedisError> {
        Redis::with_tls_ca(url, timeout, None)
    }

    /// As [`Redis::new`]; a `rediss` URL's servers must present a certificate for their
    /// host name from a CA in `ca` (a PEM file), or from the system's CAs when `None`.
    pub fn with_tls_ca(url: &str, timeout: Duration, ca: Option<&std::path::Path>) -> Result<Redis, RedisError> {
        use berth_tls::client::{Roots, Verify, client_config};
        let target = Target::parse(url)?;
        let tls = if target.tls {
            let roots = ca.map_or(Roots::System, |p| Roots::File(p.to_path_buf()));
            let config = client_config(Verify::Full, &roots).map_err(RedisError::TlsCa)?;
            Some(tokio_rustls::TlsConnector::from(config))
        } else {
            None
        };
        Ok(Redis { target, tls, timeout, idle: Mutex::new(Vec::new()) })
    }

    /// Runs one command within the client's deadline (connecting if needed). A connection
    /// that saw any error is dropped rather than reused: its stream position is unknown.
    pub async fn cmd(&self, args: &[&[u8]]) -> Result<Value, RedisError> {
        let pooled = self.idle.lock().unwrap_or_else(|p| p.into_inner()).pop();
        let attempt = async {
            let mut conn = match pooled {
                Some(c) => c,
                None => Conn::open(&self.target, self.tls.as_ref()).await?,
            };
            let v = conn.call(args).await?;
            Ok::<_, RedisError>((conn, v))
        };
        let (conn, v) =
            tokio::time::timeout(self.timeout, attempt).await.map_err(|_| RedisError::Timeout(self.timeout))??;
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        if idle.len() < IDLE {
            idle.push(conn);
        }
        drop(idle);
        match v {
            Value::Error(e) => Err(RedisError::Server(e)),
            v => Ok(v),
        }
    }

    pub async fn ping(&self) -> Result<(), RedisError> {
        match self.cmd(&[b"PING"]).await? {
            Value::Str(s) if s == b"PONG" => Ok(()),
            other => Err(RedisError::Protocol(format!("PING answered {other:?}"))),
        }
    }
}
