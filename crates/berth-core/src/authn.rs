//! Authentication: turning a user name and a password (or a robot name and secret) into a
//! principal. Harbor's rules: users log in by name or e-mail; robots as `robot$<name>`,
//! enabled and unexpired; every password format Harbor ever wrote is accepted, and a weak
//! one is replaced by the strongest on a successful login.

use std::sync::Arc;
use std::time::Duration;

use crate::access::Principal;
use crate::identity::names::RobotName;
use crate::identity::password::{self, LoginThrottle, PasswordVersion, ThrottlePolicy, VerifyCache};
use crate::settings::SettingsCache;
use crate::store::StoreError;
use crate::store::identity::{IdentityStore, UserUpdate};

/// Harbor's prefix for robot account names.
pub const ROBOT_PREFIX: &str = "robot$";

#[derive(Debug, thiserror::Error)]
pub enum AuthnError {
    /// Wrong name or secret; deliberately says nothing about which.
    #[error("invalid user name or password")]
    Invalid,
    #[error("too many failed logins for this user; retry in {} s", .0.as_secs().max(1))]
    Throttled(Duration),
    #[error(transparent)]
    Store(#[from] StoreError),
}

pub struct Authenticator {
    identity: Arc<dyn IdentityStore>,
    cache: VerifyCache,
    throttle: LoginThrottle,
    shared: Option<Arc<dyn FailureLedger>>,
    /// Where the current `robot_name_prefix` comes from (else [`ROBOT_PREFIX`]).
    settings: Option<Arc<SettingsCache>>,
}

/// Failed-login counts shared by every instance (Redis), so that an attacker spreading
/// guesses over the instances behind a load balancer meets the same throttle as one
/// talking to a single instance. Best effort by design: when the ledger fails, each
/// instance still throttles on its own counts, and logins keep working.
#[async_trait::async_trait]
pub trait FailureLedger: Send + Sync + 'static {
    /// Consecutive failures recorded for `name` and how long ago the last one was.
    async fn failures(&self, name: &str) -> Result<Option<(u32, Duration)>, String>;
    /// Adds a failure; the record expires `window` after its last failure.
    async fn record_failure(&self, name: &str, window: Duration) -> Result<(), String>;
    async fn clear(&self, name: &str) -> Result<(), String>;
}

fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

impl Authenticator {
    pub fn new(identity: Arc<dyn IdentityStore>) -> Self {
        Authenticator {
            identity,
            cache: VerifyCache::new(),
            throttle: LoginThrottle::new(ThrottlePolicy::default()),
            shared: None,
            settings: None,
        }
    }

    /// Takes the robot name prefix from the runtime settings.
    pub fn with_settings(mut self, settings: Arc<SettingsCache>) -> Self {
        self.settings = Some(settings);
        self
    }

    /// What robot account names start with now.
    pub fn robot_prefix(&self) -> String {
        self.settings.as_ref().map_or_else(|| ROBOT_PREFIX.to_string(), |s| s.get().robot_name_prefix.clone())
    }

    /// Also counts failures in `ledger`, shared with the other instances.
    pub fn with_shared_throttle(mut self, ledger: Arc<dyn FailureLedger>) -> Self {
        self.shared = Some(ledger);
        self
    }

    /// Checks a Basic-auth pair.
    pub async fn login(&self, name: &str, secret: &str) -> Result<Principal, AuthnError> {
        self.throttle.check(name).map_err(AuthnError::Throttled)?;
        let shared_failures = self.check_shared(name).await?;
        let prefix = self.robot_prefix();
        let result = if name.starts_with(&prefix) {
            self.robot(name, secret, &prefix).await
        } else {
            self.user(name, secret).await
        };
        match &result {
            Ok(_) => self.throttle.record(name, true),
            Err(AuthnError::Invalid) => self.throttle.record(name, false),
            Err(_) => {}
        }
        if let Some(ledger) = &self.shared {
            let outcome = match &result {
                Ok(_) if shared_failures => ledger.clear(name).await,
                Err(AuthnError::Invalid) => ledger.record_failure(name, self.throttle.policy().window).await,
                _ => Ok(()),
            };
            if let Err(e) = outcome {
                tracing::debug!(error = %e, "shared login throttle unavailable; throttling on this instance only");
            }
        }
        result
    }

    /// Refuses while the shared count says so; returns whether there are failures to clear
    /// on success. A failing ledger counts as "no failures" (see [`FailureLedger`]).
    async fn check_shared(&self, name: &str) -> Result<bool, AuthnError> {
        let Some(ledger) = &self.shared else { return Ok(false) };
        match ledger.failures(name).await {
            Ok(Some((n, since))) => {
                let backoff = self.throttle.policy().backoff_after(n);
                if since < backoff {
                    return Err(AuthnError::Throttled(backoff - since));
                }
                Ok(true)
            }
            Ok(None) => Ok(false),
            Err(e) => {
                tracing::debug!(error = %e, "shared login throttle unavailable; throttling on this instance only");
                Ok(false)
            }
        }
    }

    async fn user(&self, name: &str, password: &str) -> Result<Principal, AuthnError> {
        let Some(user) = self.identity.user_by_login(name).await? else {
            return Err(AuthnError::Invalid);
        };
        let version = PasswordVersion::from_harbor(&user.password_version);
        if user.password.is_empty() || !self.cache.verify_cached(user.id, password, &user.salt, version, &user.password)
        {
            return Err(AuthnError::Invalid);
        }
        if password::needs_upgrade(version) {
            let salt = password::new_salt();
            let hash = password::hash(password, &salt, password::STRONGEST);
            let update =
                UserUpdate { password: Some((hash, salt, password::STRONGEST.to_string())), ..UserUpdate::default() };
            // A failed upgrade leaves the old, still valid hash: the login stands.
            if let Err(e) = self.identity.update_user(user.id, &update).await {
                tracing::warn!(user = %user.username, error = %e, "could not upgrade a password hash");
            }
        }
        Ok(Principal::User { id: user.id, name: user.username, sysadmin: user.sysadmin })
    }

    async fn robot(&self, full_name: &str, secret: &str, prefix: &str) -> Result<Principal, AuthnError> {
        let Ok(parsed) = RobotName::parse_with_prefix(full_name, prefix) else { return Err(AuthnError::Invalid) };
        let Some(robot) = self.identity.robot_by_name(&parsed.stored_name()).await? else {
            return Err(AuthnError::Invalid);
        };
        if robot.disabled || (robot.expires_at != -1 && robot.expires_at <= now()) {
            return Err(AuthnError::Invalid);
        }
        // Robot ids are offset so they never collide with user ids in the cache.
        let cache_id = -robot.id - 1;
        if !self.cache.verify_cached(cache_id, secret, &robot.salt, PasswordVersion::Sha256, &robot.secret) {
            return Err(AuthnError::Invalid);
        }
        Ok(Principal::Robot {
            id: robot.id,
            name: format!("{prefix}{}", robot.name),
            project_id: robot.project_id,
            permissions: robot.permissions,
        })
    }
}
