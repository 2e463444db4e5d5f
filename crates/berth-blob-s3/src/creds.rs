//! Where S3 credentials come from: the chain cloud users expect from AWS's SDKs,
//! resolved once at start, then kept fresh.
//!
//! Order (the first that applies wins, as in the AWS SDKs):
//! 1. static keys from Berth's configuration;
//! 2. the environment: `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`;
//! 3. the shared files (`AWS_SHARED_CREDENTIALS_FILE`, `AWS_CONFIG_FILE`, default
//!    `~/.aws/credentials` and `~/.aws/config`), profile `AWS_PROFILE` or `default`: static
//!    keys, or `role_arn` + `web_identity_token_file`;
//! 4. web identity (`AWS_WEB_IDENTITY_TOKEN_FILE` + `AWS_ROLE_ARN`, IRSA on Kubernetes):
//!    STS `AssumeRoleWithWebIdentity`, the token file re-read on every refresh;
//! 5. container credentials (`AWS_CONTAINER_CREDENTIALS_FULL_URI` or `…_RELATIVE_URI`,
//!    with `AWS_CONTAINER_AUTHORIZATION_TOKEN[_FILE]`: ECS task roles, EKS Pod Identity);
//! 6. the instance metadata service, IMDSv2 (token PUT, then the role's credentials),
//!    unless `AWS_EC2_METADATA_DISABLED=true`.
//!
//! Temporary credentials are cached and refreshed ahead of their expiry by a background
//! task (and by the request path if that fell behind); a failed refresh keeps serving
//! the old credentials while they are valid. Every fetch has a deadline.
//!
//! The environment is read by the caller into an [`AwsEnv`] snapshot, so this module
//! (and its tests) never touch the process environment.

use std::collections::BTreeMap;
use std::fmt;
use std::io;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock, Weak};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Deserialize;

use crate::sigv4;
use crate::xml;

/// The longest credentials are refreshed ahead of their expiry.
const REFRESH_AHEAD: Duration = Duration::from_secs(5 * 60);
/// Wait before retrying a background refresh that failed.
const RETRY_REFRESH: Duration = Duration::from_secs(10);
/// Default address of the ECS container credentials endpoint (for `…_RELATIVE_URI`).
const ECS_HOST: &str = "http://169.254.170.2";
/// Default instance metadata endpoint.
const IMDS_ENDPOINT: &str = "http://169.254.169.254";
/// The IMDSv2 session token's lifetime we ask for.
const IMDS_TOKEN_TTL: &str = "21600";

/// The variables the credential chain reads (`AWS_*` and `HOME`), taken once.
#[derive(Clone, Default)]
pub struct AwsEnv(BTreeMap<String, String>);

impl AwsEnv {
    /// A snapshot of this process's `AWS_*` and `HOME` variables.
    pub fn from_process() -> Self {
        AwsEnv(std::env::vars().filter(|(k, _)| k.starts_with("AWS_") || k == "HOME").collect())
    }

    /// An environment made of these pairs (for tests and embedding).
    pub fn from_pairs<K: Into<String>, V: Into<String>>(pairs: impl IntoIterator<Item = (K, V)>) -> Self {
        AwsEnv(pairs.into_iter().map(|(k, v)| (k.into(), v.into())).collect())
    }

    /// A variable's value; unset and empty are the same.
    fn get(&self, k: &str) -> Option<&str> {
        self.0.get(k).map(String::as_str).filter(|v| !v.is_empty())
    }
}

impl fmt::Debug for AwsEnv {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Names only: values include secrets.
        f.debug_list().entries(self.0.keys()).finish()
    }
}

/// One set of credentials.
#[derive(Clone)]
pub(crate) struct Credentials {
    pub access_key: String,
    pub secret_key: String,
    pub session_token: Option<String>,
    /// When temporary credentials stop working; `None` for long-term keys.
    pub expires: Option<SystemTime>,
    fetched: SystemTime,
}

impl Credentials {
    fn long_term(access_key: &str, secret_key: &str, session_token: Option<&str>) -> Self {
        Credentials {
            access_key: access_key.to_string(),
            secret_key: secret_key.to_string(),
            session_token: session_token.map(str::to_string),
            expires: None,
            fetched: SystemTime::now(),
        }
    }

    /// When to fetch new ones: 5 minutes before expiry, or halfway for short-lived ones.
    fn refresh_at(&self) -> Option<SystemTime> {
        let exp = self.expires?;
        let life = exp.duration_since(self.fetched).unwrap_or_default();
        Some(exp - REFRESH_AHEAD.min(life / 2))
    }

    fn expired(&self, now: SystemTime) -> bool {
        self.expires.is_some_and(|e| now >= e)
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("access_key", &self.access_key)
            .field("session_token", &self.session_token.is_some())
            .field("expires", &self.expires)
            .finish_non_exhaustive()
    }
}

/// Where credentials are fetched from.
#[derive(Clone, Debug)]
pub(crate) enum Source {
    /// Keys that never change: configuration, environment or a profile.
    Fixed { from: String, creds: Credentials },
    /// STS AssumeRoleWithWebIdentity with a token read from a file.
    WebIdentity { from: String, token_file: PathBuf, role_arn: String, session_name: String, sts: String },
    /// The container credentials endpoint.
    Container { url: String, token: Option<String>, token_file: Option<PathBuf> },
    /// IMDSv2.
    Imds { endpoint: String },
}

impl Source {
    /// What to call the source in messages.
    pub fn describe(&self) -> String {
        match self {
            Source::Fixed { from, .. } => from.clone(),
            Source::WebIdentity { from, role_arn, sts, .. } => {
                format!("web identity ({from}, role {role_arn}, STS {sts})")
            }
            Source::Container { url, .. } => format!("container credentials endpoint {url}"),
            Source::Imds { endpoint } => format!("instance metadata service (IMDSv2) at {endpoint}"),
        }
    }
}

fn invalid(m: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, m)
}

/// Picks the source the chain's order gives, without any network call. `config_keys` are
/// the configured access key and secret (the configuration checked both-or-neither).
pub(crate) fn select(config_keys: Option<(&str, &str)>, env: &AwsEnv, region: &str) -> io::Result<Source> {
    if let Some((ak, sk)) = config_keys {
        return Ok(Source::Fixed {
            from: "storage.s3_access_key/s3_secret_key".into(),
            creds: Credentials::long_term(ak, sk, None),
        });
    }
    match (env.get("AWS_ACCESS_KEY_ID"), env.get("AWS_SECRET_ACCESS_KEY")) {
        (Some(ak), Some(sk)) => {
            return Ok(Source::Fixed {
                from: "environment (AWS_ACCESS_KEY_ID)".into(),
                creds: Credentials::long_term(ak, sk, env.get("AWS_SESSION_TOKEN")),
            });
        }
        (Some(_), None) => return Err(invalid("AWS_ACCESS_KEY_ID is set but AWS_SECRET_ACCESS_KEY is not".into())),
        (None, Some(_)) => return Err(invalid("AWS_SECRET_ACCESS_KEY is set but AWS_ACCESS_KEY_ID is not".into())),
        (None, None) => {}
    }
    if let Some(src) = profile_source(env, region)? {
        return Ok(src);
    }
    match (env.get("AWS_WEB_IDENTITY_TOKEN_FILE"), env.get("AWS_ROLE_ARN")) {
        (Some(file), Some(role)) => {
            return Ok(Source::WebIdentity {
                from: "AWS_WEB_IDENTITY_TOKEN_FILE".into(),
                token_file: PathBuf::from(file),
                role_arn: role.to_string(),
                session_name: session_name(env.get("AWS_ROLE_SESSION_NAME")),
                sts: sts_endpoint(env, region),
            });
        }
        (Some(_), None) => {
            return Err(invalid("AWS_WEB_IDENTITY_TOKEN_FILE is set but AWS_ROLE_ARN is not".into()));
        }
        (None, Some(_)) => {
            return Err(invalid("AWS_ROLE_ARN is set but AWS_WEB_IDENTITY_TOKEN_FILE is not".into()));
        }
        (None, None) => {}
    }
    if let Some(src) = container_source(env)? {
        return Ok(src);
    }
    if env.get("AWS_EC2_METADATA_DISABLED").is_some_and(|v| v.eq_ignore_ascii_case("true")) {
        return Err(invalid(
            "no S3 credentials: set storage.s3_access_key and storage.s3_secret_key, or AWS_ACCESS_KEY_ID and \
             AWS_SECRET_ACCESS_KEY, or a profile in ~/.aws/credentials (AWS_PROFILE), or \
             AWS_WEB_IDENTITY_TOKEN_FILE and AWS_ROLE_ARN, or AWS_CONTAINER_CREDENTIALS_FULL_URI; \
             the instance metadata service is off (AWS_EC2_METADATA_DISABLED=true)"
                .into(),
        ));
    }
    let endpoint = env.get("AWS_EC2_METADATA_SERVICE_ENDPOINT").unwrap_or(IMDS_ENDPOINT).trim_end_matches('/');
    check_url("AWS_EC2_METADATA_SERVICE_ENDPOINT", endpoint)?;
    Ok(Source::Imds { endpoint: endpoint.to_string() })
}

fn session_name(configured: Option<&str>) -> String {
    match configured {
        Some(s) => s.to_string(),
        None => {
            let secs = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
            format!("berth-{secs}")
        }
    }
}

fn sts_endpoint(env: &AwsEnv, region: &str) -> String {
    if let Some(url) = env.get("AWS_ENDPOINT_URL_STS") {
        return url.trim_end_matches('/').to_string();
    }
    let region = env.get("AWS_REGION").or(env.get("AWS_DEFAULT_REGION")).unwrap_or(region);
    format!("https://sts.{region}.amazonaws.com")
}

fn check_url(var: &str, url: &str) -> io::Result<reqwest::Url> {
    let u = reqwest::Url::parse(url).map_err(|e| invalid(format!("{var}: {url:?} is not a URL: {e}")))?;
    if !matches!(u.scheme(), "http" | "https") || u.host_str().is_none() {
        return Err(invalid(format!("{var}: {url:?} must be an http:// or https:// URL with a host")));
    }
    Ok(u)
}

fn container_source(env: &AwsEnv) -> io::Result<Option<Source>> {
    let url = if let Some(rel) = env.get("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI") {
        format!("{ECS_HOST}{}", if rel.starts_with('/') { rel.to_string() } else { format!("/{rel}") })
    } else if let Some(full) = env.get("AWS_CONTAINER_CREDENTIALS_FULL_URI") {
        let u = check_url("AWS_CONTAINER_CREDENTIALS_FULL_URI", full)?;
        // As the AWS SDKs: plain HTTP only to the machine itself or the ECS/EKS agents,
        // so the authorization token never crosses a network in clear.
        let host = u.host_str().unwrap_or_default().trim_matches(['[', ']']);
        let allowed = u.scheme() == "https"
            || host == "localhost"
            || host.parse::<IpAddr>().is_ok_and(|ip| {
                ip.is_loopback()
                    || ["169.254.170.2", "169.254.170.23", "fd00:ec2::23"].contains(&ip.to_string().as_str())
            });
        if !allowed {
            return Err(invalid(format!(
                "AWS_CONTAINER_CREDENTIALS_FULL_URI: {full:?} must be https://, or http:// to a loopback address or \
                 the ECS/EKS agent (169.254.170.2, 169.254.170.23)"
            )));
        }
        full.to_string()
    } else {
        return Ok(None);
    };
    Ok(Some(Source::Container {
        url,
        token: env.get("AWS_CONTAINER_AUTHORIZATION_TOKEN").map(str::to_string),
        token_file: env.get("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE").map(PathBuf::from),
    }))
}

fn expand_home(path: &str, env: &AwsEnv) -> PathBuf {
    match (path.strip_prefix("~/"), env.get("HOME")) {
        (Some(rest), Some(home)) => Path::new(home).join(rest),
        _ => PathBuf::from(path),
    }
}

/// The sections of an AWS INI file: name → key → value. `config_style` files name
/// profiles `[profile x]` (and `[default]`), credentials files `[x]`.
fn parse_ini(text: &str, config_style: bool) -> BTreeMap<String, BTreeMap<String, String>> {
    let mut out: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    let mut current: Option<String> = None;
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            let name = name.trim();
            current = if !config_style || name == "default" {
                Some(name.to_string())
            } else {
                name.strip_prefix("profile")
                    .filter(|r| r.starts_with(char::is_whitespace))
                    .map(|r| r.trim().to_string())
            };
            if let Some(c) = &current {
                out.entry(c.clone()).or_default();
            }
            continue;
        }
        if let (Some(section), Some((k, v))) = (&current, line.split_once('=')) {
            out.entry(section.clone()).or_default().insert(k.trim().to_lowercase(), v.trim().to_string());
        }
    }
    out
}

fn read_profile_file(path: &Path, var: &str, explicit: bool) -> io::Result<Option<String>> {
    match std::fs::read_to_string(path) {
        Ok(s) => Ok(Some(s)),
        Err(e) if e.kind() == io::ErrorKind::NotFound && !explicit => Ok(None),
        Err(e) => Err(io::Error::new(e.kind(), format!("{var}: cannot read {}: {e}", path.display()))),
    }
}

fn profile_source(env: &AwsEnv, region: &str) -> io::Result<Option<Source>> {
    let explicit_profile = env.get("AWS_PROFILE");
    let profile = explicit_profile.unwrap_or("default");
    let creds_path = expand_home(env.get("AWS_SHARED_CREDENTIALS_FILE").unwrap_or("~/.aws/credentials"), env);
    let config_path = expand_home(env.get("AWS_CONFIG_FILE").unwrap_or("~/.aws/config"), env);
    let creds_file = read_profile_file(
        &creds_path,
        "AWS_SHARED_CREDENTIALS_FILE",
        env.get("AWS_SHARED_CREDENTIALS_FILE").is_some(),
    )?;
    let config_file = read_profile_file(&config_path, "AWS_CONFIG_FILE", env.get("AWS_CONFIG_FILE").is_some())?;
    // The credentials file wins over the config file, key by key.
    let mut keys = config_file.as_deref().map(|t| parse_ini(t, true)).unwrap_or_default().remove(profile);
    if let Some(from_creds) = creds_file.as_deref().map(|t| parse_ini(t, false)).unwrap_or_default().remove(profile) {
        keys.get_or_insert_default().extend(from_creds);
    }
    let Some(keys) = keys else {
        if explicit_profile.is_some() {
            return Err(invalid(format!(
                "AWS_PROFILE: profile {profile:?} is in neither {} nor {}",
                creds_path.display(),
                config_path.display()
            )));
        }
        return Ok(None);
    };
    let from = format!("profile {profile:?} ({} / {})", creds_path.display(), config_path.display());
    let get = |k: &str| keys.get(k).map(String::as_str).filter(|v| !v.is_empty());
    match (get("aws_access_key_id"), get("aws_secret_access_key")) {
        (Some(ak), Some(sk)) => {
            return Ok(Some(Source::Fixed { from, creds: Credentials::long_term(ak, sk, get("aws_session_token")) }));
        }
        (Some(_), None) | (None, Some(_)) => {
            return Err(invalid(format!(
                "AWS_PROFILE: {from} has only one of aws_access_key_id and aws_secret_access_key; set both"
            )));
        }
        (None, None) => {}
    }
    if let (Some(role), Some(file)) = (get("role_arn"), get("web_identity_token_file")) {
        return Ok(Some(Source::WebIdentity {
            from,
            token_file: expand_home(file, env),
            role_arn: role.to_string(),
            session_name: session_name(get("role_session_name")),
            sts: sts_endpoint(env, region),
        }));
    }
    let unsupported: Vec<&str> =
        ["source_profile", "credential_source", "credential_process", "sso_start_url", "sso_session"]
            .into_iter()
            .filter(|k| keys.contains_key(*k))
            .collect();
    if !unsupported.is_empty() {
        return Err(invalid(format!(
            "AWS_PROFILE: {from} uses {}, which Berth does not support; give the profile aws_access_key_id and \
             aws_secret_access_key, or role_arn with web_identity_token_file",
            unsupported.join(", ")
        )));
    }
    if explicit_profile.is_some() {
        return Err(invalid(format!(
            "AWS_PROFILE: {from} holds no credentials (aws_access_key_id, aws_secret_access_key)"
        )));
    }
    // A default profile with only settings (region, output): not a credential source.
    Ok(None)
}

/// The JSON the container endpoint and IMDS answer with.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct JsonCreds {
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    message: Option<String>,
    access_key_id: Option<String>,
    secret_access_key: Option<String>,
    token: Option<String>,
    expiration: Option<String>,
}

fn from_json(body: &[u8], what: &str) -> Result<Credentials, String> {
    let j: JsonCreds = serde_json::from_slice(body).map_err(|e| format!("{what}: unreadable answer: {e}"))?;
    if let Some(code) = j.code.as_deref().filter(|c| *c != "Success") {
        return Err(format!("{what}: {code}: {}", j.message.unwrap_or_default()));
    }
    let (Some(ak), Some(sk)) = (j.access_key_id, j.secret_access_key) else {
        return Err(format!("{what}: the answer has no AccessKeyId/SecretAccessKey"));
    };
    let expires = match j.expiration.as_deref() {
        Some(e) => Some(sigv4::parse_iso8601(e).ok_or_else(|| format!("{what}: unreadable Expiration {e:?}"))?),
        None => None,
    };
    Ok(Credentials { access_key: ak, secret_key: sk, session_token: j.token, expires, fetched: SystemTime::now() })
}

fn http_error(what: &str, e: reqwest::Error) -> String {
    let mut s = format!("{what}: {e}");
    let mut cur = std::error::Error::source(&e);
    while let Some(c) = cur {
        s.push_str(&format!(": {c}"));
        cur = c.source();
    }
    s
}

async fn ok_body(what: &str, resp: reqwest::Response) -> Result<bytes::Bytes, String> {
    let status = resp.status();
    let body = resp.bytes().await.map_err(|e| http_error(what, e))?;
    if !status.is_success() {
        let text = String::from_utf8_lossy(&body);
        let detail = match (xml::text(&text, "Code"), xml::text(&text, "Message")) {
            (Some(c), Some(m)) => format!("{c}: {m}"),
            _ => text.chars().take(300).collect(),
        };
        return Err(format!("{what}: HTTP {}: {detail}", status.as_u16()));
    }
    Ok(body)
}

async fn fetch_web_identity(
    http: &reqwest::Client,
    token_file: &Path,
    role_arn: &str,
    session_name: &str,
    sts: &str,
) -> Result<Credentials, String> {
    // Re-read every time: kubelet rotates the projected token.
    let token = tokio::fs::read_to_string(token_file)
        .await
        .map_err(|e| format!("web identity token file {}: {e}", token_file.display()))?;
    let form = [
        ("Action", "AssumeRoleWithWebIdentity"),
        ("Version", "2011-06-15"),
        ("RoleArn", role_arn),
        ("RoleSessionName", session_name),
        ("WebIdentityToken", token.trim()),
    ]
    .iter()
    .map(|(k, v)| format!("{k}={}", sigv4::uri_encode(v, false)))
    .collect::<Vec<_>>()
    .join("&");
    let what = format!("STS AssumeRoleWithWebIdentity at {sts}");
    let resp = http
        .post(format!("{sts}/"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form)
        .send()
        .await
        .map_err(|e| http_error(&what, e))?;
    let body = ok_body(&what, resp).await?;
    let text = String::from_utf8_lossy(&body);
    let c =
        xml::blocks(&text, "Credentials").next().ok_or_else(|| format!("{what}: no <Credentials> in the answer"))?;
    let field = |t: &str| xml::text(c, t).ok_or_else(|| format!("{what}: no <{t}> in the answer"));
    let exp = field("Expiration")?;
    Ok(Credentials {
        access_key: field("AccessKeyId")?,
        secret_key: field("SecretAccessKey")?,
        session_token: Some(field("SessionToken")?),
        expires: Some(sigv4::parse_iso8601(&exp).ok_or_else(|| format!("{what}: unreadable Expiration {exp:?}"))?),
        fetched: SystemTime::now(),
    })
}

async fn fetch_container(
    http: &reqwest::Client,
    url: &str,
    token: Option<&str>,
    token_file: Option<&Path>,
) -> Result<Credentials, String> {
    let what = format!("container credentials endpoint {url}");
    let mut rb = http.get(url);
    // The file wins and is re-read each time (EKS Pod Identity rotates it).
    let auth = match token_file {
        Some(f) => Some(
            tokio::fs::read_to_string(f)
                .await
                .map_err(|e| format!("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE {}: {e}", f.display()))?
                .trim()
                .to_string(),
        ),
        None => token.map(str::to_string),
    };
    if let Some(a) = auth {
        rb = rb.header("authorization", a);
    }
    let resp = rb.send().await.map_err(|e| http_error(&what, e))?;
    from_json(&ok_body(&what, resp).await?, &what)
}

async fn fetch_imds(http: &reqwest::Client, endpoint: &str) -> Result<Credentials, String> {
    let what = format!("instance metadata service (IMDSv2) at {endpoint}");
    let resp = http
        .put(format!("{endpoint}/latest/api/token"))
        .header("x-aws-ec2-metadata-token-ttl-seconds", IMDS_TOKEN_TTL)
        .send()
        .await
        .map_err(|e| http_error(&format!("{what}: session token"), e))?;
    let token = ok_body(&format!("{what}: session token"), resp).await?;
    let token = String::from_utf8_lossy(&token).trim().to_string();
    let base = format!("{endpoint}/latest/meta-data/iam/security-credentials/");
    let resp = http
        .get(&base)
        .header("x-aws-ec2-metadata-token", &token)
        .send()
        .await
        .map_err(|e| http_error(&format!("{what}: role name"), e))?;
    let roles = ok_body(&format!("{what}: role name (does the instance have an IAM role?)"), resp).await?;
    let role = String::from_utf8_lossy(&roles).lines().map(str::trim).find(|l| !l.is_empty()).map(str::to_string);
    let role = role.ok_or_else(|| format!("{what}: the instance has no IAM role"))?;
    let resp = http
        .get(format!("{base}{role}"))
        .header("x-aws-ec2-metadata-token", &token)
        .send()
        .await
        .map_err(|e| http_error(&format!("{what}: role {role}"), e))?;
    from_json(&ok_body(&what, resp).await?, &format!("{what}: role {role}"))
}

/// The resolved source with its cached credentials.
pub(crate) struct Provider {
    source: Source,
    http: reqwest::Client,
    /// Deadline of one fetch (all its requests together).
    deadline: Duration,
    current: RwLock<Option<Arc<Credentials>>>,
    /// One fetch at a time; others wait for its result.
    refreshing: tokio::sync::Mutex<()>,
    /// When a fetch last failed: while old credentials are valid, requests do not
    /// retry the source more often than `RETRY_REFRESH` (each try could take the deadline).
    failed_at: RwLock<Option<std::time::Instant>>,
    fetches: AtomicU64,
}

impl Provider {
    pub fn new(source: Source, deadline: Duration) -> io::Result<Arc<Self>> {
        let http = reqwest::Client::builder()
            // Below the deadline, so an unreachable host says "connect" rather than racing it.
            .connect_timeout((deadline / 2).min(Duration::from_secs(2)))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| io::Error::other(format!("S3 credentials HTTP client: {e}")))?;
        let current = match &source {
            Source::Fixed { creds, .. } => Some(Arc::new(creds.clone())),
            _ => None,
        };
        Ok(Arc::new(Provider {
            source,
            http,
            deadline,
            current: RwLock::new(current),
            refreshing: tokio::sync::Mutex::new(()),
            failed_at: RwLock::new(None),
            fetches: AtomicU64::new(0),
        }))
    }

    pub fn source(&self) -> &Source {
        &self.source
    }

    /// How many fetches ran (for tests).
    pub fn fetches(&self) -> u64 {
        self.fetches.load(Ordering::Relaxed)
    }

    /// The cached credentials, whatever their age (for presigning, which cannot wait).
    pub fn cached(&self) -> Option<Arc<Credentials>> {
        self.current.read().expect("credentials lock").clone()
    }

    /// Valid credentials: the cached ones unless due for refresh, else fetched now.
    /// A failed refresh keeps the old credentials while they still work.
    pub async fn get(&self) -> Result<Arc<Credentials>, String> {
        let fresh = |c: &Option<Arc<Credentials>>| {
            c.as_ref().filter(|c| c.refresh_at().is_none_or(|r| SystemTime::now() < r)).cloned()
        };
        if let Some(c) = fresh(&self.cached()) {
            return Ok(c);
        }
        let _one = self.refreshing.lock().await;
        if let Some(c) = fresh(&self.cached()) {
            return Ok(c);
        }
        let recently_failed = self.failed_at.read().expect("lock").is_some_and(|t| t.elapsed() < RETRY_REFRESH);
        if let Some(old) = self.cached().filter(|c| recently_failed && !c.expired(SystemTime::now())) {
            return Ok(old);
        }
        let got = self.fetch().await;
        *self.failed_at.write().expect("lock") = got.is_err().then(std::time::Instant::now);
        match got {
            Ok(c) => Ok(c),
            Err(e) => match self.cached() {
                Some(old) if !old.expired(SystemTime::now()) => {
                    tracing::warn!(error = %e, "refreshing S3 credentials failed; the current ones are still valid");
                    Ok(old)
                }
                _ => Err(e),
            },
        }
    }

    /// Fetches from the source within the deadline and caches the result.
    async fn fetch(&self) -> Result<Arc<Credentials>, String> {
        self.fetches.fetch_add(1, Ordering::Relaxed);
        let fetch = async {
            match &self.source {
                Source::Fixed { creds, .. } => Ok(creds.clone()),
                Source::WebIdentity { token_file, role_arn, session_name, sts, .. } => {
                    fetch_web_identity(&self.http, token_file, role_arn, session_name, sts).await
                }
                Source::Container { url, token, token_file } => {
                    fetch_container(&self.http, url, token.as_deref(), token_file.as_deref()).await
                }
                Source::Imds { endpoint } => fetch_imds(&self.http, endpoint).await,
            }
        };
        let creds = match tokio::time::timeout(self.deadline, fetch).await {
            Ok(r) => r?,
            Err(_) => return Err(format!("{}: no answer within {:?}", self.source.describe(), self.deadline)),
        };
        if creds.expired(SystemTime::now()) {
            return Err(format!("{}: the credentials it gave have already expired", self.source.describe()));
        }
        let creds = Arc::new(creds);
        *self.current.write().expect("credentials lock") = Some(creds.clone());
        Ok(creds)
    }

    /// Keeps temporary credentials fresh ahead of expiry, so neither requests nor
    /// presigned URLs wait for or use stale ones. Ends when the provider is dropped.
    pub fn spawn_refresher(self: &Arc<Self>) {
        if matches!(self.source, Source::Fixed { .. }) {
            return;
        }
        let weak: Weak<Provider> = Arc::downgrade(self);
        tokio::spawn(async move {
            loop {
                let wait = {
                    let Some(p) = weak.upgrade() else { return };
                    match p.cached().and_then(|c| c.refresh_at()) {
                        Some(at) => at.duration_since(SystemTime::now()).unwrap_or_default(),
                        None => RETRY_REFRESH,
                    }
                };
                tokio::time::sleep(wait).await;
                let Some(p) = weak.upgrade() else { return };
                if let Err(e) = p.get().await {
                    tracing::warn!(error = %e, "refreshing S3 credentials failed; retrying in {RETRY_REFRESH:?}");
                    drop(p);
                    tokio::time::sleep(RETRY_REFRESH).await;
                }
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ini_files_parse_both_styles() {
        let config = "[default]\nregion = eu-west-1\n[profile dev]\naws_access_key_id = A\n[profiles x]\nk=v\n";
        let m = parse_ini(config, true);
        assert_eq!(m["default"]["region"], "eu-west-1");
        assert_eq!(m["dev"]["aws_access_key_id"], "A");
        assert!(!m.contains_key("profiles x") && !m.contains_key("x"));
        let creds = "# comment\n[dev]\nAWS_SECRET_ACCESS_KEY = s=1\n";
        assert_eq!(parse_ini(creds, false)["dev"]["aws_secret_access_key"], "s=1");
    }

    #[test]
    fn refresh_is_ahead_of_expiry() {
        let now = SystemTime::now();
        let mut c = Credentials::long_term("a", "b", None);
        assert_eq!(c.refresh_at(), None);
        c.fetched = now;
        c.expires = Some(now + Duration::from_secs(3600));
        assert_eq!(c.refresh_at(), Some(now + Duration::from_secs(3300)));
        c.expires = Some(now + Duration::from_secs(60));
        assert_eq!(c.refresh_at(), Some(now + Duration::from_secs(30)));
    }
}
