//! Short-lived cluster-wide locks for periodic work that one instance at a time should do
//! (purging abandoned uploads). A lock is only an optimisation: the work it guards is
//! safe to run twice, so an expired or lost lock costs duplicated effort, never data.

use std::time::Duration;

use crate::{Redis, RedisError, Value};

const RELEASE: &str =
    "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) else return 0 end";

/// Held until [`Lease::release`] or until its time-to-live runs out.
pub struct Lease<'a> {
    redis: &'a Redis,
    key: Vec<u8>,
    token: String,
}

/// Takes `name` for `ttl` unless another holder has it.
pub async fn try_acquire<'a>(redis: &'a Redis, name: &str, ttl: Duration) -> Result<Option<Lease<'a>>, RedisError> {
    let key = format!("berth:lock:{name}").into_bytes();
    let token = uuid::Uuid::new_v4().simple().to_string();
    let ms = ttl.as_millis().max(1).to_string();
    match redis.cmd(&[b"SET", &key, token.as_bytes(), b"NX", b"PX", ms.as_bytes()]).await? {
        Value::Str(ok) if ok == b"OK" => Ok(Some(Lease { redis, key, token })),
        Value::Nil => Ok(None),
        other => Err(RedisError::Protocol(format!("SET NX answered {other:?}"))),
    }
}

impl Lease<'_> {
    /// Releases the lock if this lease still holds it (it may have expired and been taken).
    pub async fn release(self) -> Result<(), RedisError> {
        self.redis.cmd(&[b"EVAL", RELEASE.as_bytes(), b"1", &self.key, self.token.as_bytes()]).await?;
        Ok(())
    }
}
