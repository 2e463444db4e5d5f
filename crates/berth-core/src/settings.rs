//! Runtime settings: what Harbor's adminserver keeps in its database and an administrator
//! changes through `PUT /configurations`, as opposed to the infrastructure settings
//! (database, storage, listen address) that stay in the configuration file.
//!
//! The values live in the shared database ([`ClusterStore`], one row per key named
//! `config.<key>`), so every instance reads the same ones; each instance keeps them in a
//! [`SettingsCache`] that its owner refreshes every [`REFRESH_EVERY`]. A change is thus in
//! effect at once on the instance that made it and on every other one within that bound.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use serde_json::Value;

use crate::audit::EventTypeSet;
use crate::store::StoreResult;
use crate::store::cluster::ClusterStore;

/// How often each instance re-reads the settings: the bound on how long another instance
/// may still act on a value after a change.
pub const REFRESH_EVERY: Duration = Duration::from_secs(2);

/// The `ClusterStore` name prefix of the settings' rows.
const PREFIX: &str = "config.";

/// Who may create projects (Harbor's `project_creation_restriction`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CreationRestriction {
    Everyone,
    AdminOnly,
}

impl CreationRestriction {
    pub fn as_str(self) -> &'static str {
        match self {
            CreationRestriction::Everyone => "everyone",
            CreationRestriction::AdminOnly => "adminonly",
        }
    }
}

/// The runtime settings, with Harbor's defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// Always `db_auth` until LDAP, OIDC or UAA exist.
    pub auth_mode: String,
    /// Whether anyone may sign up (`POST /users` without logging in).
    pub self_registration: bool,
    pub project_creation_restriction: CreationRestriction,
    /// Refuses every change (pushes, deletes, API writes) except to the settings.
    pub read_only: bool,
    /// Days a new robot account is valid when its request does not say.
    pub robot_token_duration: i64,
    /// What robot account names start with (`robot$`).
    pub robot_name_prefix: String,
    /// The storage quota of a new project in bytes, -1 for unlimited.
    pub storage_per_project: i64,
    pub notification_enable: bool,
    /// `host:port` of a syslog (TCP) server that receives every audit entry; empty for none.
    pub audit_log_forward_endpoint: String,
    /// Keep audit entries out of the database (they are only forwarded).
    pub skip_audit_log_database: bool,
    /// Audit event types recorded nowhere: neither in the database nor forwarded
    /// (Harbor 2.13's `audit_log_disable`, a comma-separated list of event types).
    pub audit_log_disable: EventTypeSet,
    /// Minutes a login session lasts without a request (at most 720: every session ends
    /// 12 h after its login).
    pub session_timeout: i64,
    /// Shown by the portal to every user (Harbor stores a JSON document here).
    pub banner_message: String,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            auth_mode: "db_auth".into(),
            self_registration: false,
            project_creation_restriction: CreationRestriction::Everyone,
            read_only: false,
            robot_token_duration: 30,
            robot_name_prefix: "robot$".into(),
            storage_per_project: -1,
            notification_enable: true,
            audit_log_forward_endpoint: String::new(),
            skip_audit_log_database: false,
            audit_log_disable: EventTypeSet::default(),
            session_timeout: 60,
            banner_message: String::new(),
        }
    }
}

/// Every key, in the order the API lists them.
pub const KEYS: &[&str] = &[
    "audit_log_disable",
    "audit_log_forward_endpoint",
    "auth_mode",
    "banner_message",
    "notification_enable",
    "project_creation_restriction",
    "read_only",
    "robot_name_prefix",
    "robot_token_duration",
    "self_registration",
    "session_timeout",
    "skip_audit_log_database",
    "storage_per_project",
];

/// Why a change was refused; always names the key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SettingsError {
    #[error("{0} is not a configuration item Berth supports")]
    UnknownKey(String),
    #[error("{key}: {reason}")]
    Invalid { key: String, reason: String },
}

fn invalid(key: &str, reason: impl Into<String>) -> SettingsError {
    SettingsError::Invalid { key: key.to_string(), reason: reason.into() }
}

/// A boolean as Harbor takes it: JSON `true`/`false` or the strings `"true"`/`"false"`.
fn boolean(key: &str, v: &Value) -> Result<bool, SettingsError> {
    match v {
        Value::Bool(b) => Ok(*b),
        Value::String(s) if s == "true" => Ok(true),
        Value::String(s) if s == "false" => Ok(false),
        _ => Err(invalid(key, format!("must be true or false, got {v}"))),
    }
}

/// An integer as Harbor takes it: a JSON integer or a string of one.
fn integer(key: &str, v: &Value) -> Result<i64, SettingsError> {
    match v {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
    .ok_or_else(|| invalid(key, format!("must be an integer, got {v}")))
}

fn string(key: &str, v: &Value) -> Result<String, SettingsError> {
    match v {
        Value::String(s) => Ok(s.clone()),
        _ => Err(invalid(key, format!("must be a string, got {v}"))),
    }
}

/// `host:port` with a non-empty host and a port in 1..=65535.
fn endpoint(key: &str, s: &str) -> Result<(), SettingsError> {
    let bad = || invalid(key, format!("must be host:port (a syslog server over TCP) or empty, got {s:?}"));
    let (host, port) = s.rsplit_once(':').ok_or_else(bad)?;
    let host = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host);
    if host.is_empty() || host.contains(|c: char| c.is_whitespace() || c == '/') {
        return Err(bad());
    }
    match port.parse::<u16>() {
        Ok(p) if p > 0 => Ok(()),
        _ => Err(bad()),
    }
}

impl Settings {
    /// Applies `changes` (Harbor's `PUT /configurations` body) after validating every one,
    /// and answers the new settings and the keys whose value changed. Nothing is applied
    /// if any key is unknown or any value invalid.
    pub fn apply(&self, changes: &BTreeMap<String, Value>) -> Result<(Settings, Vec<&'static str>), SettingsError> {
        let mut s = self.clone();
        for (key, v) in changes {
            let k = key.as_str();
            match k {
                "auth_mode" => {
                    let mode = string(k, v)?;
                    if mode != "db_auth" {
                        return Err(invalid(
                            k,
                            format!("only db_auth is supported (LDAP, OIDC and UAA are not available), got {mode:?}"),
                        ));
                    }
                    s.auth_mode = mode;
                }
                "self_registration" => s.self_registration = boolean(k, v)?,
                "project_creation_restriction" => {
                    s.project_creation_restriction = match string(k, v)?.as_str() {
                        "everyone" => CreationRestriction::Everyone,
                        "adminonly" => CreationRestriction::AdminOnly,
                        other => return Err(invalid(k, format!("must be everyone or adminonly, got {other:?}"))),
                    }
                }
                "read_only" => s.read_only = boolean(k, v)?,
                "robot_token_duration" => {
                    let days = integer(k, v)?;
                    if !(1..=36_500).contains(&days) {
                        return Err(invalid(k, format!("must be between 1 and 36500 days, got {days}")));
                    }
                    s.robot_token_duration = days;
                }
                "robot_name_prefix" => {
                    let p = string(k, v)?;
                    if p.is_empty()
                        || p.chars().count() > 30
                        || p.chars().any(|c| c.is_whitespace() || c.is_control() || matches!(c, ':' | '+' | '/'))
                    {
                        return Err(invalid(
                            k,
                            format!("must be 1 to 30 characters without spaces, ':', '+' or '/', got {p:?}"),
                        ));
                    }
                    s.robot_name_prefix = p;
                }
                "storage_per_project" => {
                    let bytes = integer(k, v)?;
                    if bytes != -1 && bytes <= 0 {
                        return Err(invalid(
                            k,
                            format!("must be -1 (unlimited) or a positive number of bytes, got {bytes}"),
                        ));
                    }
                    s.storage_per_project = bytes;
                }
                "notification_enable" => s.notification_enable = boolean(k, v)?,
                "audit_log_forward_endpoint" => {
                    let e = string(k, v)?.trim().to_string();
                    if !e.is_empty() {
                        endpoint(k, &e)?;
                    }
                    s.audit_log_forward_endpoint = e;
                }
                "skip_audit_log_database" => s.skip_audit_log_database = boolean(k, v)?,
                "audit_log_disable" => {
                    s.audit_log_disable = EventTypeSet::parse(&string(k, v)?).map_err(|e| invalid(k, e.to_string()))?
                }
                "session_timeout" => {
                    let minutes = integer(k, v)?;
                    // Berth ends every session 12 h after its login whatever the activity.
                    if !(1..=720).contains(&minutes) {
                        return Err(invalid(
                            k,
                            format!("must be between 1 and 720 minutes (sessions end 12 h after login), got {minutes}"),
                        ));
                    }
                    s.session_timeout = minutes;
                }
                "banner_message" => {
                    let m = string(k, v)?;
                    if m.len() > 4096 {
                        return Err(invalid(k, "must be at most 4096 bytes"));
                    }
                    s.banner_message = m;
                }
                _ => return Err(SettingsError::UnknownKey(key.clone())),
            }
        }
        // Harbor's rule: audit entries kept nowhere are refused.
        if s.skip_audit_log_database && s.audit_log_forward_endpoint.is_empty() {
            let key = if changes.contains_key("skip_audit_log_database") {
                "skip_audit_log_database"
            } else {
                "audit_log_forward_endpoint"
            };
            return Err(invalid(
                key,
                "skip_audit_log_database needs an audit_log_forward_endpoint, or audit entries would be kept nowhere",
            ));
        }
        let before = self.stored();
        let after = s.stored();
        let changed = KEYS.iter().copied().filter(|k| before.get(k) != after.get(k)).collect();
        Ok((s, changed))
    }

    /// Every value as the API shows it.
    pub fn values(&self) -> BTreeMap<&'static str, Value> {
        BTreeMap::from([
            ("audit_log_disable", Value::from(self.audit_log_disable.to_string())),
            ("audit_log_forward_endpoint", Value::from(self.audit_log_forward_endpoint.clone())),
            ("auth_mode", Value::from(self.auth_mode.clone())),
            ("banner_message", Value::from(self.banner_message.clone())),
            ("notification_enable", Value::from(self.notification_enable)),
            ("project_creation_restriction", Value::from(self.project_creation_restriction.as_str())),
            ("read_only", Value::from(self.read_only)),
            ("robot_name_prefix", Value::from(self.robot_name_prefix.clone())),
            ("robot_token_duration", Value::from(self.robot_token_duration)),
            ("self_registration", Value::from(self.self_registration)),
            ("session_timeout", Value::from(self.session_timeout)),
            ("skip_audit_log_database", Value::from(self.skip_audit_log_database)),
            ("storage_per_project", Value::from(self.storage_per_project)),
        ])
    }

    /// Every value as stored: strings, as Harbor keeps them.
    fn stored(&self) -> BTreeMap<&'static str, String> {
        self.values()
            .into_iter()
            .map(|(k, v)| {
                let s = match v {
                    Value::String(s) => s,
                    other => other.to_string(),
                };
                (k, s)
            })
            .collect()
    }

    /// The settings from stored rows, starting from the defaults. A row this version
    /// cannot read (written by a newer one, or by hand) is skipped with a warning rather
    /// than stopping the instance.
    fn from_rows(rows: &[(String, String)]) -> Settings {
        let mut s = Settings::default();
        for (name, raw) in rows {
            let Some(key) = name.strip_prefix(PREFIX) else { continue };
            let change = BTreeMap::from([(key.to_string(), Value::String(raw.clone()))]);
            match s.apply(&change) {
                Ok((next, _)) => s = next,
                Err(e) => tracing::warn!(setting = key, error = %e, "ignoring a stored setting"),
            }
        }
        s
    }
}

/// The settings as this instance currently knows them.
pub struct SettingsCache {
    store: Arc<dyn ClusterStore>,
    current: RwLock<Arc<Settings>>,
}

impl SettingsCache {
    /// Reads the stored settings once.
    pub async fn load(store: Arc<dyn ClusterStore>) -> StoreResult<Self> {
        let cache = SettingsCache { store, current: RwLock::new(Arc::new(Settings::default())) };
        cache.refresh().await?;
        Ok(cache)
    }

    /// Fixed settings, never refreshed from a store: for tests and tools.
    pub fn fixed(store: Arc<dyn ClusterStore>, settings: Settings) -> Self {
        SettingsCache { store, current: RwLock::new(Arc::new(settings)) }
    }

    pub fn get(&self) -> Arc<Settings> {
        self.current.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn set(&self, s: Settings) {
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(s);
    }

    /// Re-reads the stored settings (what another instance changed).
    pub async fn refresh(&self) -> StoreResult<()> {
        let rows = self.store.settings_with_prefix(PREFIX).await?;
        self.set(Settings::from_rows(&rows));
        Ok(())
    }

    /// Validates and stores `changes` (all at once), and makes them effective here at
    /// once. Answers the keys whose value changed.
    pub async fn update(&self, changes: &BTreeMap<String, Value>) -> Result<Vec<&'static str>, UpdateError> {
        // From the stored values, not the cached ones: a change made on another instance
        // a moment ago is kept, and is what the new values are validated against.
        self.refresh().await?;
        let (next, changed) = self.get().apply(changes)?;
        let stored = next.stored();
        let rows: Vec<(String, String)> = changed.iter().map(|k| (format!("{PREFIX}{k}"), stored[k].clone())).collect();
        if !rows.is_empty() {
            self.store.replace_settings(&rows).await?;
        }
        self.set(next);
        Ok(changed)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum UpdateError {
    #[error(transparent)]
    Invalid(#[from] SettingsError),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn change(pairs: &[(&str, Value)]) -> BTreeMap<String, Value> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.clone())).collect()
    }

    fn refused(pairs: &[(&str, Value)]) -> SettingsError {
        Settings::default().apply(&change(pairs)).unwrap_err()
    }

    #[test]
    fn defaults_are_harbors() {
        let v = Settings::default().values();
        assert_eq!(v.keys().copied().collect::<Vec<_>>(), KEYS);
        assert_eq!(v["auth_mode"], json!("db_auth"));
        assert_eq!(v["project_creation_restriction"], json!("everyone"));
        assert_eq!(v["robot_token_duration"], json!(30));
        assert_eq!(v["robot_name_prefix"], json!("robot$"));
        assert_eq!(v["storage_per_project"], json!(-1));
        assert_eq!(v["session_timeout"], json!(60));
        assert_eq!(v["notification_enable"], json!(true));
        assert_eq!(v["audit_log_disable"], json!(""), "every event type recorded");
    }

    #[test]
    fn audit_log_disable_is_stored_canonically() {
        let (s, changed) = Settings::default()
            .apply(&change(&[(
                "audit_log_disable",
                json!(" delete_artifact,create_artifact , update_configure,create_artifact"),
            )]))
            .unwrap();
        assert_eq!(changed, ["audit_log_disable"]);
        assert_eq!(s.values()["audit_log_disable"], json!("create_artifact,delete_artifact,update_configuration"));
        assert!(
            s.audit_log_disable.contains("update", "configuration")
                && !s.audit_log_disable.contains("pull", "artifact")
        );
        // The same set in another spelling is no change.
        let (_, none) = s
            .apply(&change(&[("audit_log_disable", json!("update_configuration,delete_artifact,create_artifact"))]))
            .unwrap();
        assert!(none.is_empty());
        // Through the stored rows and back.
        let rows: Vec<(String, String)> = s.stored().into_iter().map(|(k, v)| (format!("{PREFIX}{k}"), v)).collect();
        assert_eq!(Settings::from_rows(&rows), s);
        let (cleared, changed) = s.apply(&change(&[("audit_log_disable", json!(" "))])).unwrap();
        assert!(cleared.audit_log_disable.is_empty());
        assert_eq!(changed, ["audit_log_disable"]);
        // An unknown type names the key and the type; nothing else of the change applies.
        for (list, bad) in [("create_artifact,explode_artifact", "explode_artifact"), ("artifact", "artifact")] {
            match refused(&[("audit_log_disable", json!(list)), ("read_only", json!(true))]) {
                SettingsError::Invalid { key, reason } => {
                    assert_eq!(key, "audit_log_disable");
                    assert!(reason.contains(&format!("{bad:?}")), "{reason}");
                }
                e => panic!("{list}: {e}"),
            }
        }
        assert!(
            matches!(refused(&[("audit_log_disable", json!(["create_artifact"]))]), SettingsError::Invalid { ref key, .. } if key == "audit_log_disable")
        );
    }

    #[test]
    fn changes_and_what_changed() {
        let d = Settings::default();
        let (s, changed) = d
            .apply(&change(&[
                ("read_only", json!(true)),
                ("self_registration", json!("true")),
                ("robot_token_duration", json!("7")),
                ("storage_per_project", json!(1_073_741_824i64)),
                ("project_creation_restriction", json!("adminonly")),
                ("auth_mode", json!("db_auth")),
                ("banner_message", json!("{\"message\":\"maintenance\"}")),
            ]))
            .unwrap();
        assert!(s.read_only && s.self_registration);
        assert_eq!((s.robot_token_duration, s.storage_per_project), (7, 1_073_741_824));
        assert_eq!(s.project_creation_restriction, CreationRestriction::AdminOnly);
        assert_eq!(
            changed,
            [
                "banner_message",
                "project_creation_restriction",
                "read_only",
                "robot_token_duration",
                "self_registration",
                "storage_per_project"
            ],
            "auth_mode did not change"
        );
        // Round trip through the stored strings.
        let rows: Vec<(String, String)> = s.stored().into_iter().map(|(k, v)| (format!("{PREFIX}{k}"), v)).collect();
        assert_eq!(Settings::from_rows(&rows), s);
        let (_, none) = s.apply(&change(&[("read_only", json!("true"))])).unwrap();
        assert!(none.is_empty());
    }

    #[test]
    fn refusals_name_the_key() {
        let cases: &[(&str, Value)] = &[
            ("auth_mode", json!("ldap_auth")),
            ("auth_mode", json!(1)),
            ("self_registration", json!("yes")),
            ("project_creation_restriction", json!("nobody")),
            ("read_only", json!(1)),
            ("robot_token_duration", json!(0)),
            ("robot_token_duration", json!("x")),
            ("robot_token_duration", json!(1.5)),
            ("robot_name_prefix", json!("")),
            ("robot_name_prefix", json!("a:b")),
            ("robot_name_prefix", json!("bot+")),
            ("storage_per_project", json!(0)),
            ("storage_per_project", json!(-2)),
            ("notification_enable", json!(null)),
            ("audit_log_forward_endpoint", json!("nohost")),
            ("audit_log_forward_endpoint", json!("h:0")),
            ("audit_log_forward_endpoint", json!(":514")),
            ("session_timeout", json!(0)),
            ("banner_message", json!("x".repeat(5000))),
        ];
        for (k, v) in cases {
            match refused(&[(k, v.clone())]) {
                SettingsError::Invalid { key, .. } => assert_eq!(&key, k, "{v}"),
                e => panic!("{k}={v}: {e}"),
            }
        }
        assert_eq!(refused(&[("nosuch", json!(1))]), SettingsError::UnknownKey("nosuch".into()));
        let e = refused(&[("skip_audit_log_database", json!(true))]);
        assert!(matches!(e, SettingsError::Invalid { ref key, .. } if key == "skip_audit_log_database"), "{e}");
        let (s, _) = Settings::default()
            .apply(&change(&[("skip_audit_log_database", json!(true)), ("audit_log_forward_endpoint", json!("h:514"))]))
            .unwrap();
        let e = s.apply(&change(&[("audit_log_forward_endpoint", json!(""))])).unwrap_err();
        assert!(matches!(e, SettingsError::Invalid { ref key, .. } if key == "audit_log_forward_endpoint"), "{e}");
        assert!(Settings::default().apply(&change(&[("audit_log_forward_endpoint", json!("[::1]:514"))])).is_ok());
    }

    #[test]
    fn unreadable_rows_are_skipped() {
        let rows = vec![
            ("config.read_only".to_string(), "true".to_string()),
            ("config.session_timeout".to_string(), "soon".to_string()),
            ("config.from_the_future".to_string(), "1".to_string()),
        ];
        let s = Settings::from_rows(&rows);
        assert!(s.read_only);
        assert_eq!(s.session_timeout, 60);
    }
}
