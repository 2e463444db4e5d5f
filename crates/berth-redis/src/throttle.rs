//! The shared failed-login ledger: one hash per user name, `n` consecutive failures and
//! `t` the time of the last one in milliseconds, by Redis' clock so that instances whose
//! clocks disagree still agree on the backoff.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use berth_core::authn::FailureLedger;

use crate::{Redis, Value};

const PREFIX: &str = "berth:login-failures:";

const RECORD: &str = "local n = redis.call('HINCRBY', KEYS[1], 'n', 1) \
    local t = redis.call('TIME') \
    redis.call('HSET', KEYS[1], 't', t[1] * 1000 + math.floor(t[2] / 1000)) \
    redis.call('PEXPIRE', KEYS[1], ARGV[1]) \
    return n";

const READ: &str = "local v = redis.call('HMGET', KEYS[1], 'n', 't') \
    if not v[1] or not v[2] then return nil end \
    local t = redis.call('TIME') \
    return {tonumber(v[1]), t[1] * 1000 + math.floor(t[2] / 1000) - tonumber(v[2])}";

pub struct RedisLedger(pub Arc<Redis>);

fn key(name: &str) -> Vec<u8> {
    // Names compare case-sensitively in Harbor; keep them as given.
    [PREFIX.as_bytes(), name.as_bytes()].concat()
}

#[async_trait]
impl FailureLedger for RedisLedger {
    async fn failures(&self, name: &str) -> Result<Option<(u32, Duration)>, String> {
        match self.0.cmd(&[b"EVAL", READ.as_bytes(), b"1", &key(name)]).await.map_err(|e| e.to_string())? {
            Value::Nil => Ok(None),
            Value::Array(v) if v.len() == 2 => match (v[0].as_int(), v[1].as_int()) {
                (Some(n), Some(ago)) => {
                    Ok(Some((n.clamp(0, u32::MAX as i64) as u32, Duration::from_millis(ago.max(0) as u64))))
                }
                _ => Err(format!("unexpected ledger entry {v:?}")),
            },
            other => Err(format!("unexpected ledger reply {other:?}")),
        }
    }

    async fn record_failure(&self, name: &str, window: Duration) -> Result<(), String> {
        let ms = window.as_millis().max(1).to_string();
        self.0.cmd(&[b"EVAL", RECORD.as_bytes(), b"1", &key(name), ms.as_bytes()]).await.map_err(|e| e.to_string())?;
        Ok(())
    }

    async fn clear(&self, name: &str) -> Result<(), String> {
        self.0.cmd(&[b"DEL", &key(name)]).await.map_err(|e| e.to_string())?;
        Ok(())
    }
}
