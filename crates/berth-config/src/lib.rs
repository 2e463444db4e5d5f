//! The one configuration of a Berth instance.
//!
//! Sources, later ones winning: built-in defaults, the TOML file (`--config`), `BERTH_*`
//! environment variables, then command-line flags. `BERTH_DATABASE_URL` sets
//! `database.url`; `BERTH_HTTP__LISTEN` (double underscore) works too. This is the only
//! crate that reads the environment. [`Config::validate`] reports every problem at once,
//! each naming its key, the bad value (never a secret) and the fix.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};

pub const ENV_PREFIX: &str = "BERTH_";

/// Top-level tables; `BERTH_<TABLE>_<KEY>` maps to `<table>.<key>`.
const SECTIONS: [&str; 11] =
    ["http", "database", "redis", "storage", "uploads", "jobs", "gc", "log", "auth", "admin", "scan"];

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Where the embedded defaults keep their files (SQLite DB, blob storage).
    pub data_dir: PathBuf,
    pub http: Http,
    pub database: Database,
    pub redis: Redis,
    pub storage: Storage,
    pub uploads: Uploads,
    pub jobs: Jobs,
    pub gc: Gc,
    pub log: Log,
    pub auth: Auth,
    pub admin: Admin,
    pub scan: Scan,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Http {
    /// Address to listen on. Port 0 picks a free port.
    pub listen: String,
    /// The URL clients use to reach this registry (behind a load balancer), used in
    /// absolute links. Empty: links are relative to the request.
    pub external_url: String,
    /// Seconds in-flight requests get to finish on SIGTERM/SIGINT.
    pub shutdown_grace_secs: u64,
    /// PEM certificate chain (server certificate first). Set with `tls_key`: the listener
    /// speaks HTTPS only. Reloaded on SIGHUP and when the file changes.
    pub tls_cert: String,
    /// PEM private key of `tls_cert` (PKCS#8, RSA or EC).
    pub tls_key: String,
}

#[derive(Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Database {
    /// `sqlite:<path>`, or a libpq URL `postgres://user:pass@host1:5432,host2:5432/berth?target_session_attrs=read-write`
    /// for several instances sharing one PostgreSQL (primary + standby). Empty: `sqlite:<data_dir>/berth.db`.
    pub url: String,
    /// PostgreSQL connections per instance.
    pub max_connections: usize,
    /// Seconds to wait for a PostgreSQL connection to open (per host of a multi-host URL).
    pub connect_timeout_secs: u64,
    /// Seconds a request waits for a free pooled connection before it is answered 503.
    pub acquire_timeout_secs: u64,
    /// Seconds any one SQL statement may run before it is cancelled.
    pub statement_timeout_secs: u64,
}

/// Shared Redis for login throttling and caches across instances. Optional: without it
/// each instance keeps these in memory, and nothing that must survive lives in Redis.
#[derive(Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Redis {
    /// `redis://[[user]:password@]host:6379[/db]`, or `redis+sentinel://host1:26379,host2:26379/<master name>[/db]`;
    /// `rediss://` and `rediss+sentinel://` for TLS. Empty: no Redis.
    pub url: String,
    /// PEM CA certificates that sign the Redis servers' (and sentinels') certificates, for
    /// `rediss`. Empty: the system's CAs.
    pub tls_ca: String,
    /// Milliseconds any one Redis call may take before it counts as failed.
    pub timeout_ms: u64,
}

#[derive(Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Storage {
    /// `filesystem` (a local disk or a shared mount) or `s3` (any S3-compatible service).
    pub kind: String,
    /// Root of the blob store (filesystem). Empty: `<data_dir>/storage`.
    pub root: String,
    /// S3 endpoint URL, e.g. `http://127.0.0.1:3900` (Garage, MinIO, Ceph RGW). Empty: AWS.
    pub s3_endpoint: String,
    pub s3_region: String,
    pub s3_bucket: String,
    /// Key prefix inside the bucket (Distribution's `rootdirectory`).
    pub s3_prefix: String,
    /// Static keys (both or neither). Neither: the AWS credential chain (environment,
    /// shared profile, web identity, container credentials, instance metadata).
    pub s3_access_key: String,
    pub s3_secret_key: String,
    /// Server-side encryption of every object Berth writes: `none` (the bucket's
    /// default), `aes256` (SSE-S3) or `kms` (SSE-KMS).
    pub s3_sse: String,
    /// The KMS key (id, ARN or alias) for `s3_sse = "kms"`; empty: the account's `aws/s3` key.
    pub s3_sse_kms_key_id: String,
    /// `true`: `endpoint/bucket/key` URLs (most self-hosted services); `false`: `bucket.endpoint/key`.
    pub s3_path_style: bool,
    /// Seconds a storage operation may go without progress before it fails with 503
    /// (a hung NFS mount, an S3 endpoint that stopped answering); transfers that keep
    /// moving may take longer.
    pub timeout_secs: u64,
    /// Answer blob downloads with a redirect (307) to a presigned storage URL, so the bytes
    /// flow from the storage to the client directly (S3 only).
    pub redirect: bool,
}

impl fmt::Debug for Storage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secret = if self.s3_secret_key.is_empty() { "" } else { "(set, hidden)" };
        f.debug_struct("Storage")
            .field("kind", &self.kind)
            .field("root", &self.root)
            .field("s3_endpoint", &self.s3_endpoint)
            .field("s3_region", &self.s3_region)
            .field("s3_bucket", &self.s3_bucket)
            .field("s3_prefix", &self.s3_prefix)
            .field("s3_access_key", &self.s3_access_key)
            .field("s3_secret_key", &secret)
            .field("s3_sse", &self.s3_sse)
            .field("s3_sse_kms_key_id", &self.s3_sse_kms_key_id)
            .field("s3_path_style", &self.s3_path_style)
            .field("timeout_secs", &self.timeout_secs)
            .field("redirect", &self.redirect)
            .finish()
    }
}

/// Online garbage collection.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Gc {
    /// Blobs and untagged manifests younger than this are never collected (Harbor's
    /// `GC_TIME_WINDOW_HOURS`): a push in flight has this long between uploading a layer
    /// and its manifest. 0 collects everything unreferenced at once.
    pub time_window_hours: u64,
    /// After each claim of blobs to delete, a run waits this percentage of the claim's
    /// time before the next: the database's work for GC then leaves room for requests'.
    /// 0 runs at full speed, as Harbor does; 100 gives claims at most half of a run's
    /// time. Unset, [`Config::gc_pause_percent`] picks by database.
    pub pause_percent: Option<u32>,
}

impl Default for Gc {
    fn default() -> Self {
        Gc { time_window_hours: 2, pause_percent: None }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Jobs {
    /// Whether this instance runs background jobs (every instance may; an instance that
    /// does not still serves the job API).
    pub enabled: bool,
    /// Jobs of one kind this instance runs at once.
    pub workers: u32,
    /// How long a running job's claim lasts without a heartbeat (sent every third of
    /// it): a stopped or partitioned instance's jobs are taken over this long after it
    /// stopped answering.
    pub lease_secs: u64,
    /// Registers Harbor's `SAMPLE` job kind (counts seconds, checkpointing each): for
    /// trying out a deployment's job service, and for the tests.
    pub sample_job: bool,
    /// Longest wait between attempts to deliver a webhook: an endpoint that was down
    /// hears of every event within about this long (plus a third) of coming back.
    pub webhook_retry_cap_secs: u64,
    /// How often the registry endpoints' health (`/registries`' `status`) is checked,
    /// once per cluster; a regular interval: a divisor of a minute or whole minutes
    /// dividing an hour.
    pub registry_health_secs: u64,
}

impl Default for Jobs {
    fn default() -> Self {
        Jobs {
            enabled: true,
            workers: 2,
            lease_secs: 30,
            sample_job: false,
            webhook_retry_cap_secs: 30,
            registry_health_secs: 300,
        }
    }
}

impl Jobs {
    /// The six-field cron (seconds first) of `registry_health_secs`, if it is a regular
    /// interval.
    pub fn registry_health_cron(&self) -> Option<String> {
        match self.registry_health_secs {
            s @ 1..60 if 60 % s == 0 => Some(format!("*/{s} * * * * *")),
            3600 => Some("0 0 * * * *".into()),
            s if s >= 60 && s % 60 == 0 && 60 % (s / 60) == 0 => Some(format!("0 */{} * * * *", s / 60)),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Uploads {
    /// Upload sessions idle longer than this are removed with their bytes.
    pub max_idle_hours: u64,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Auth {
    /// `harbor` (users, robots, projects, roles, token service) or `open` (anyone may push
    /// and pull; loopback only).
    pub mode: String,
    /// Lifetime of registry tokens, as Harbor's `token_expiration`.
    pub token_ttl_minutes: u64,
    /// PEM private key that signs registry tokens: RSA (RS256; Harbor's `private_key.pem`
    /// works) or P-256 (ES256). Empty: `<data_dir>/secret/private_key.pem`, a P-256 key
    /// generated on first start.
    pub private_key: String,
    /// The cluster secret key that encrypts stored credentials (remote registries'
    /// passwords): 16, 24 or 32 bytes, Harbor's `secretkey` works. Empty:
    /// `<data_dir>/secret/secretkey`, generated on first start. Instances sharing a
    /// database must share it.
    pub secret_key: String,
}

/// Scanning with external scanners, and Berth as a scanner for others.
#[derive(Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Scan {
    /// The key callers of Berth's scanner adapter API (`/scanner-adapter/api/v1`, what a
    /// Harbor registers as its scanner) present: `X-ScannerAdapter-API-Key`, Bearer, or
    /// the password of Basic credentials. Empty: that API is off. At least 16 characters.
    pub adapter_api_key: String,
    /// How long a scan by an external scanner adapter may take, report polling
    /// included, before it ends in Error.
    pub external_timeout_secs: u64,
}

impl Default for Scan {
    fn default() -> Self {
        Scan { adapter_api_key: String::new(), external_timeout_secs: 1800 }
    }
}

impl fmt::Debug for Scan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let key = if self.adapter_api_key.is_empty() { "(off)" } else { "(set, hidden)" };
        f.debug_struct("Scan")
            .field("adapter_api_key", &key)
            .field("external_timeout_secs", &self.external_timeout_secs)
            .finish()
    }
}

/// The initial administrator. Used only on the first start, when no user exists yet.
#[derive(Clone, PartialEq, Deserialize, Serialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct Admin {
    /// `BERTH_ADMIN_PASSWORD`. Empty: a password is generated and printed once.
    pub password: String,
}

// URLs may carry passwords, and `berth config` prints the whole configuration.
impl fmt::Debug for Database {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Database")
            .field("url", &redact_url(&self.url))
            .field("max_connections", &self.max_connections)
            .field("connect_timeout_secs", &self.connect_timeout_secs)
            .field("acquire_timeout_secs", &self.acquire_timeout_secs)
            .field("statement_timeout_secs", &self.statement_timeout_secs)
            .finish()
    }
}

impl fmt::Debug for Redis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Redis")
            .field("url", &redact_url(&self.url))
            .field("tls_ca", &self.tls_ca)
            .field("timeout_ms", &self.timeout_ms)
            .finish()
    }
}

/// `scheme://user:secret@host/...` → `scheme://user:(hidden)@host/...`; also hides a
/// libpq `password=` query parameter.
pub fn redact_url(url: &str) -> String {
    let mut out = url.to_owned();
    if let Some(scheme_end) = out.find("://") {
        let rest = &out[scheme_end + 3..];
        let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
        if let Some(at) = rest[..authority_end].rfind('@')
            && let Some(colon) = rest[..at].find(':')
        {
            let start = scheme_end + 3 + colon + 1;
            out.replace_range(start..scheme_end + 3 + at, "(hidden)");
        }
    }
    if let Some(q) = out.find('?') {
        let (head, query) = out.split_at(q + 1);
        let query: Vec<String> = query
            .split('&')
            .map(|kv| if kv.starts_with("password=") { "password=(hidden)".to_owned() } else { kv.to_owned() })
            .collect();
        out = format!("{head}{}", query.join("&"));
    }
    out
}

impl fmt::Debug for Admin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shown = if self.password.is_empty() { "(generate)" } else { "(set, hidden)" };
        f.debug_struct("Admin").field("password", &shown).finish()
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Log {
    /// A tracing filter such as `info` or `berth=debug,info`.
    pub level: String,
    /// `text` or `json`.
    pub format: String,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            data_dir: PathBuf::from("./data"),
            http: Http::default(),
            database: Database::default(),
            redis: Redis::default(),
            storage: Storage::default(),
            uploads: Uploads::default(),
            jobs: Jobs::default(),
            gc: Gc::default(),
            log: Log::default(),
            auth: Auth::default(),
            admin: Admin::default(),
            scan: Scan::default(),
        }
    }
}
impl Default for Http {
    fn default() -> Self {
        Http {
            listen: "127.0.0.1:8080".into(),
            external_url: String::new(),
            shutdown_grace_secs: 30,
            tls_cert: String::new(),
            tls_key: String::new(),
        }
    }
}
impl Default for Database {
    fn default() -> Self {
        Database {
            url: String::new(),
            max_connections: 16,
            connect_timeout_secs: 5,
            acquire_timeout_secs: 5,
            statement_timeout_secs: 30,
        }
    }
}
impl Default for Redis {
    fn default() -> Self {
        Redis { url: String::new(), tls_ca: String::new(), timeout_ms: 500 }
    }
}
impl Default for Storage {
    fn default() -> Self {
        Storage {
            kind: "filesystem".into(),
            root: String::new(),
            s3_endpoint: String::new(),
            s3_region: "us-east-1".into(),
            s3_bucket: String::new(),
            s3_prefix: String::new(),
            s3_access_key: String::new(),
            s3_secret_key: String::new(),
            s3_sse: "none".into(),
            s3_sse_kms_key_id: String::new(),
            s3_path_style: true,
            timeout_secs: 30,
            redirect: false,
        }
    }
}
impl Default for Uploads {
    fn default() -> Self {
        Uploads { max_idle_hours: 24 }
    }
}
impl Default for Auth {
    fn default() -> Self {
        Auth { mode: "harbor".into(), token_ttl_minutes: 30, private_key: String::new(), secret_key: String::new() }
    }
}
impl Default for Log {
    fn default() -> Self {
        Log { level: "info".into(), format: "text".into() }
    }
}

/// Values given on the command line; they win over every other source.
#[derive(Debug, Default, Clone, Serialize)]
pub struct Overrides {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_dir: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listen: Option<String>,
}

/// Every problem found, each as `key: message`.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigError {
    pub problems: Vec<String>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.problems.len();
        writeln!(f, "the configuration has {n} problem{}:", if n == 1 { "" } else { "s" })?;
        for p in &self.problems {
            writeln!(f, "  - {p}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {}

/// The database the configuration selects.
#[derive(Debug, Clone, PartialEq)]
pub enum DatabaseKind {
    Sqlite(PathBuf),
    /// The libpq URL as given.
    Postgres(String),
}

fn env_key(key: &str) -> String {
    let key = key.to_ascii_lowercase();
    if key.contains("__") {
        return key.replace("__", ".");
    }
    for s in SECTIONS {
        if let Some(rest) = key.strip_prefix(s).and_then(|r| r.strip_prefix('_')) {
            return format!("{s}.{rest}");
        }
    }
    key
}

impl Config {
    /// Loads from defaults, the optional file, the process environment and `overrides`,
    /// then validates.
    pub fn load(file: Option<&Path>, overrides: &Overrides) -> Result<Config, ConfigError> {
        Self::load_from(file, overrides, Env::prefixed(ENV_PREFIX))
    }

    fn load_from(file: Option<&Path>, overrides: &Overrides, env: Env) -> Result<Config, ConfigError> {
        let mut problems = Vec::new();
        if let Some(p) = file {
            if p.is_dir() {
                problems.push(format!("--config: {} is a directory; give the path of a TOML file", p.display()));
            } else if !p.exists() {
                problems.push(format!(
                    "--config: {} does not exist; create it or drop the flag to run on defaults",
                    p.display()
                ));
            }
        }
        if !problems.is_empty() {
            return Err(ConfigError { problems });
        }
        let mut fig = Figment::from(Serialized::defaults(Config::default()));
        if let Some(p) = file {
            fig = fig.merge(Toml::file_exact(p));
        }
        fig = fig.merge(env.map(|k| env_key(k.as_str()).into()).lowercase(false));
        fig = fig.merge(Serialized::defaults(overrides_as_keys(overrides)));
        let cfg: Config = fig
            .extract()
            .map_err(|e| ConfigError { problems: e.into_iter().map(|e| describe_figment_error(&e)).collect() })?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// Checks what the types cannot: addresses, URLs, paths that must be directories.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let mut p = Vec::new();
        if self.http.listen.parse::<SocketAddr>().is_err() {
            p.push(format!(
                "http.listen: {:?} is not an IP address and port; use e.g. \"127.0.0.1:8080\" or \"0.0.0.0:5000\"",
                self.http.listen
            ));
        }
        let ext = &self.http.external_url;
        if !ext.is_empty() && !ext.starts_with("http://") && !ext.starts_with("https://") {
            p.push(format!(
                "http.external_url: {ext:?} must start with http:// or https://, e.g. \"https://registry.example.com\""
            ));
        }
        match (self.http.tls_cert.is_empty(), self.http.tls_key.is_empty()) {
            (true, true) => {}
            (false, true) => {
                p.push("http.tls_key: required with http.tls_cert; give the PEM private key of the certificate".into())
            }
            (true, false) => p.push(
                "http.tls_cert: required with http.tls_key; give the PEM certificate chain (server certificate first)"
                    .into(),
            ),
            (false, false) => {
                must_be_readable_file("http.tls_cert", Path::new(&self.http.tls_cert), &mut p);
                must_be_readable_file("http.tls_key", Path::new(&self.http.tls_key), &mut p);
            }
        }
        must_be_dir_or_absent("data_dir", &self.data_dir, &mut p);
        let key = &self.scan.adapter_api_key;
        if !key.is_empty() && (key.chars().count() < 16 || key.chars().any(char::is_whitespace)) {
            p.push(
                "scan.adapter_api_key: must be at least 16 characters without spaces; generate one with e.g. `openssl rand -hex 32`, or leave it empty to keep the scanner adapter API off"
                    .into(),
            );
        }
        if self.scan.external_timeout_secs == 0 {
            p.push("scan.external_timeout_secs: must be at least 1; the default is 1800".into());
        }
        let st = &self.storage;
        match st.kind.as_str() {
            "filesystem" => {
                must_be_dir_or_absent("storage.root", &self.storage_root(), &mut p);
                if st.redirect {
                    p.push("storage.redirect: only the s3 storage can redirect downloads; set it to false".into());
                }
                if st.s3_sse != "none" {
                    p.push(
                        "storage.s3_sse: only the s3 storage encrypts objects; remove it or set it to \"none\"".into(),
                    );
                }
            }
            "s3" => {
                if st.s3_bucket.is_empty() {
                    p.push("storage.s3_bucket: required with storage.kind = \"s3\"; name the bucket".into());
                }
                match (st.s3_access_key.is_empty(), st.s3_secret_key.is_empty()) {
                    (false, true) => p.push(
                        "storage.s3_secret_key: required when storage.s3_access_key is set; set both, or neither \
                         to use the AWS credential chain (environment, profile, web identity, container, instance \
                         metadata)"
                            .into(),
                    ),
                    (true, false) => p.push(
                        "storage.s3_access_key: required when storage.s3_secret_key is set; set both, or neither \
                         to use the AWS credential chain (environment, profile, web identity, container, instance \
                         metadata)"
                            .into(),
                    ),
                    _ => {}
                }
                match st.s3_sse.as_str() {
                    "none" | "aes256" => {
                        if !st.s3_sse_kms_key_id.is_empty() {
                            p.push(format!(
                                "storage.s3_sse_kms_key_id: only used with storage.s3_sse = \"kms\" (it is {:?}); \
                                 set s3_sse to \"kms\" or remove the key id",
                                st.s3_sse
                            ));
                        }
                    }
                    "kms" => {}
                    other => p.push(format!(
                        "storage.s3_sse: {other:?} is not supported; use \"none\", \"aes256\" (SSE-S3) or \"kms\" \
                         (SSE-KMS)"
                    )),
                }
                let e = &st.s3_endpoint;
                if !e.is_empty() && !e.starts_with("http://") && !e.starts_with("https://") {
                    p.push(format!(
                        "storage.s3_endpoint: {e:?} must start with http:// or https://, e.g. \"http://127.0.0.1:3900\""
                    ));
                }
                if st.s3_region.is_empty() {
                    p.push(
                        "storage.s3_region: must not be empty (e.g. \"us-east-1\", or your service's region name)"
                            .into(),
                    );
                }
            }
            other => p.push(format!("storage.kind: {other:?} is not supported; use \"filesystem\" or \"s3\"")),
        }
        if st.timeout_secs == 0 {
            p.push("storage.timeout_secs: must be at least 1".into());
        }
        match self.database_kind() {
            Ok(DatabaseKind::Sqlite(path)) => {
                if path.is_dir() {
                    p.push(format!(
                        "database.url: {} is a directory, but must be the SQLite database file; use e.g. \"sqlite:{}\"",
                        path.display(),
                        path.join("berth.db").display()
                    ));
                }
            }
            Ok(DatabaseKind::Postgres(_)) => {}
            Err(e) => p.push(e),
        }
        for (key, v) in [
            ("database.max_connections", self.database.max_connections as u64),
            ("database.connect_timeout_secs", self.database.connect_timeout_secs),
            ("database.acquire_timeout_secs", self.database.acquire_timeout_secs),
            ("database.statement_timeout_secs", self.database.statement_timeout_secs),
            ("redis.timeout_ms", self.redis.timeout_ms),
        ] {
            if v == 0 {
                p.push(format!("{key}: must be at least 1 (0 would fail every request)"));
            }
        }
        let r = &self.redis.url;
        let scheme = r.split("://").next().unwrap_or("");
        let tls = matches!(scheme, "rediss" | "rediss+sentinel");
        if !r.is_empty() && !tls && !matches!(scheme, "redis" | "redis+sentinel") {
            let scheme = r.split(':').next().unwrap_or("");
            p.push(format!(
                "redis.url: scheme {scheme:?} is not supported; use \"redis://host:6379\", \"redis+sentinel://host1:26379,host2:26379/mymaster\", or rediss:// / rediss+sentinel:// for TLS"
            ));
        }
        if !self.redis.tls_ca.is_empty() {
            if tls {
                must_be_readable_file("redis.tls_ca", Path::new(&self.redis.tls_ca), &mut p);
            } else {
                p.push("redis.tls_ca: only used with TLS; make redis.url start with rediss:// or rediss+sentinel://, or leave redis.tls_ca empty".into());
            }
        }
        match self.auth.mode.as_str() {
            "harbor" => {}
            "open" => {
                let loopback = self.http.listen.parse::<SocketAddr>().map(|a| a.ip().is_loopback()).unwrap_or(true);
                if !loopback {
                    p.push(format!(
                        "auth.mode: \"open\" lets anyone push and delete, so it needs a loopback http.listen (127.0.0.1 or ::1), not {:?}; use auth.mode = \"harbor\" to serve other machines",
                        self.http.listen
                    ));
                }
            }
            other => p.push(format!("auth.mode: {other:?} is not supported; use \"harbor\" or \"open\"")),
        }
        if self.auth.token_ttl_minutes == 0 {
            p.push("auth.token_ttl_minutes: must be at least 1 (Harbor's default is 30)".into());
        }
        let key = self.private_key_path();
        if key.is_dir() {
            p.push(format!(
                "auth.private_key: {} is a directory, but must be a PEM file with the private key; point auth.private_key at the file (or leave it empty to generate one)",
                key.display()
            ));
        } else if !self.auth.private_key.is_empty() && !key.exists() {
            p.push(format!(
                "auth.private_key: {} does not exist; give the path of a PEM private key, RSA or P-256 (Harbor's private_key.pem works) or leave it empty to generate one",
                key.display()
            ));
        }
        let secret = self.secret_key_path();
        if secret.is_dir() {
            p.push(format!(
                "auth.secret_key: {} is a directory, but must be the key file; point auth.secret_key at the file (or leave it empty to generate one)",
                secret.display()
            ));
        } else if !self.auth.secret_key.is_empty() && !secret.exists() {
            p.push(format!(
                "auth.secret_key: {} does not exist; give the path of a file holding a 16, 24 or 32 byte key (Harbor's secretkey works) or leave it empty to generate one",
                secret.display()
            ));
        }
        if !(3..=3600).contains(&self.jobs.lease_secs) {
            p.push(format!(
                "jobs.lease_secs: {} is out of range; use 3 to 3600 (30 is the default)",
                self.jobs.lease_secs
            ));
        }
        if !(1..=3600).contains(&self.jobs.webhook_retry_cap_secs) {
            p.push(format!(
                "jobs.webhook_retry_cap_secs: {} is out of range; use 1 to 3600 (30 is the default)",
                self.jobs.webhook_retry_cap_secs
            ));
        }
        if self.jobs.registry_health_cron().is_none() {
            p.push(format!(
                "jobs.registry_health_secs: {} is not a regular interval; use a divisor of 60 (such as 10, 15, 30) or whole minutes dividing an hour (60, 120, 300, 600, 900, 1800, 3600; 300 is the default)",
                self.jobs.registry_health_secs
            ));
        }
        if !(1..=64).contains(&self.jobs.workers) {
            p.push(format!("jobs.workers: {} is out of range; use 1 to 64", self.jobs.workers));
        }
        if self.gc.time_window_hours > 24 * 365 {
            p.push(format!(
                "gc.time_window_hours: {} is out of range; use 0 to 8760 (2 is the default)",
                self.gc.time_window_hours
            ));
        }
        if let Some(pause) = self.gc.pause_percent
            && pause > 1000
        {
            p.push(format!(
                "gc.pause_percent: {pause} is out of range; use 0 (full speed) to 1000, or leave it unset (100 with \
                 PostgreSQL, 0 with SQLite)"
            ));
        }
        if self.uploads.max_idle_hours == 0 {
            p.push("uploads.max_idle_hours: must be at least 1".into());
        }
        if !matches!(self.log.format.as_str(), "text" | "json") {
            p.push(format!("log.format: {:?} is not supported; use \"text\" or \"json\"", self.log.format));
        }
        if p.is_empty() { Ok(()) } else { Err(ConfigError { problems: p }) }
    }

    pub fn private_key_path(&self) -> PathBuf {
        if self.auth.private_key.is_empty() {
            self.data_dir.join("secret/private_key.pem")
        } else {
            PathBuf::from(&self.auth.private_key)
        }
    }

    pub fn secret_key_path(&self) -> PathBuf {
        if self.auth.secret_key.is_empty() {
            self.data_dir.join("secret/secretkey")
        } else {
            PathBuf::from(&self.auth.secret_key)
        }
    }

    pub fn storage_root(&self) -> PathBuf {
        if self.storage.root.is_empty() { self.data_dir.join("storage") } else { PathBuf::from(&self.storage.root) }
    }

    /// `gc.pause_percent`, or unset, by database: with PostgreSQL 100, because GC's
    /// claims are the server's work, which nothing there ranks below requests' (on a
    /// machine it shares with Berth, unpaced GC made pushes 3-4 times slower at p50);
    /// with SQLite 0, because its writer already runs GC's writes only in the gaps
    /// between requests'.
    pub fn gc_pause_percent(&self) -> u32 {
        self.gc.pause_percent.unwrap_or(match self.database_kind() {
            Ok(DatabaseKind::Postgres(_)) => 100,
            _ => 0,
        })
    }

    pub fn database_kind(&self) -> Result<DatabaseKind, String> {
        let url = &self.database.url;
        if url.is_empty() {
            return Ok(DatabaseKind::Sqlite(self.data_dir.join("berth.db")));
        }
        if let Some(path) = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:")) {
            if path.is_empty() {
                return Err(
                    "database.url: \"sqlite:\" needs a file path, e.g. \"sqlite:/var/lib/berth/berth.db\"".into()
                );
            }
            return Ok(DatabaseKind::Sqlite(PathBuf::from(path)));
        }
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Ok(DatabaseKind::Postgres(url.clone()));
        }
        let scheme = url.split(':').next().unwrap_or("");
        // Never echo the URL itself: it may carry a password.
        Err(format!(
            "database.url: scheme {scheme:?} is not supported; use \"sqlite:<path>\" or \"postgres://user@host:5432/berth\""
        ))
    }
}

fn must_be_dir_or_absent(key: &str, path: &Path, problems: &mut Vec<String>) {
    if path.exists() && !path.is_dir() {
        problems.push(format!(
            "{key}: {} is a file, but must be a directory; point {key} at a directory (it is created if missing)",
            path.display()
        ));
    }
}

fn must_be_readable_file(key: &str, path: &Path, problems: &mut Vec<String>) {
    if path.is_dir() {
        problems.push(format!("{key}: {} is a directory; give the path of the PEM file", path.display()));
    } else if let Err(e) = std::fs::File::open(path) {
        problems.push(format!("{key}: cannot read {}: {e}; give the path of a readable PEM file", path.display()));
    }
}

fn overrides_as_keys(o: &Overrides) -> figment::value::Dict {
    let mut dict = figment::value::Dict::new();
    if let Some(d) = &o.data_dir {
        dict.insert("data_dir".into(), d.display().to_string().into());
    }
    if let Some(l) = &o.listen {
        let mut http = figment::value::Dict::new();
        http.insert("listen".into(), l.clone().into());
        dict.insert("http".into(), http.into());
    }
    dict
}

fn describe_figment_error(e: &figment::Error) -> String {
    let key = if e.path.is_empty() { "(top level)".to_string() } else { e.path.join(".") };
    let source = match &e.metadata {
        Some(m) if m.name.contains("environment") => {
            format!(" (from environment variable {ENV_PREFIX}{})", key.replace('.', "_").to_ascii_uppercase())
        }
        Some(m) => match &m.source {
            Some(src) => format!(" (in {src})"),
            None => format!(" (in {})", m.name),
        },
        None => String::new(),
    };
    let fix = match &e.kind {
        figment::error::Kind::UnknownField(_, expected) => {
            format!("; known keys here: {}", expected.join(", "))
        }
        _ => String::new(),
    };
    format!("{key}: {}{source}{fix}", e.kind)
}

#[cfg(test)]
mod tests;
