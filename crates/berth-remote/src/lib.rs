//! A client for remote OCI registries, for replication and proxy caching: the
//! Distribution API (`/v2`) with both ways registries ask for credentials (a `Basic`
//! challenge, or a `Bearer` challenge answered by a token service such as Docker Hub's
//! `auth.docker.io` or Harbor's `/service/token`), manifests, blobs (monolithic and
//! chunked uploads that another process can resume, cross-repository mounts), catalog
//! and tags. [`adapter`] adds what differs per kind of registry (Harbor, Distribution,
//! Docker Hub, generic OCI): how repositories are listed and namespaces created.
//!
//! Nothing here stores or decides anything: callers hold the endpoint's credentials and
//! decide what to copy. One [`Client`] per endpoint; it caches tokens per scope.

pub mod adapter;
pub mod challenge;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use reqwest::header::{self, HeaderMap, HeaderValue};
use reqwest::{Method, StatusCode};
use serde::Deserialize;

pub use adapter::{Adapter, AdapterKind, RemoteArtifact};
use challenge::Challenge;

/// Manifest media types a copy must accept (a registry picks what it stores).
pub const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.index.v1+json, \
    application/vnd.docker.distribution.manifest.list.v2+json, \
    application/vnd.oci.image.manifest.v1+json, \
    application/vnd.docker.distribution.manifest.v2+json";

/// Mints a registry token for the scopes a request needs.
pub type Mint = Arc<dyn Fn(&[String]) -> Result<String, String> + Send + Sync>;

/// How a client proves who it is.
#[derive(Clone, Default)]
pub enum Credential {
    #[default]
    Anonymous,
    /// A user name and password (or robot name and secret, or access key and token):
    /// sent as Basic when the registry asks for it, or to its token service.
    Basic { username: String, password: String },
    /// Tokens minted by the caller for the scopes a request needs (Berth's own
    /// registry, whose token key the caller holds): no challenge round trip.
    Minted(Mint),
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Credential::Anonymous => f.write_str("Anonymous"),
            Credential::Basic { username, .. } => write!(f, "Basic({username}, ***)"),
            Credential::Minted(_) => f.write_str("Minted"),
        }
    }
}

/// Where a registry is and how to reach it.
#[derive(Debug, Clone)]
pub struct Endpoint {
    /// `https://registry.example.com` (a path prefix is kept).
    pub url: String,
    pub credential: Credential,
    /// Accept any TLS certificate.
    pub insecure: bool,
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum RemoteError {
    /// No answer: connection refused, DNS, TLS, timeout.
    #[error("{0}")]
    Unreachable(String),
    /// 401 after presenting the credentials (or none were given).
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Denied(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{message}")]
    Status { status: u16, message: String },
    /// An answer that does not follow the protocol.
    #[error("{0}")]
    Protocol(String),
}

impl RemoteError {
    /// Whether trying again later may succeed (the remote is down, overloaded or
    /// rate-limiting); wrong credentials or refusals will not change.
    pub fn is_transient(&self) -> bool {
        match self {
            RemoteError::Unreachable(_) => true,
            RemoteError::Status { status, .. } => *status == 429 || *status >= 500,
            _ => false,
        }
    }
}

pub type Result<T, E = RemoteError> = std::result::Result<T, E>;

/// A manifest as fetched.
#[derive(Debug, Clone)]
pub struct Manifest {
    pub bytes: Bytes,
    pub media_type: String,
    /// `sha256:…` of the bytes as received.
    pub digest: String,
}

/// What a mount attempt did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mount {
    Mounted,
    /// The registry could not mount and opened an upload instead (at this URL).
    Upload(String),
}

struct CachedToken {
    token: String,
    until: Instant,
}

/// A client of one registry endpoint.
pub struct Client {
    base: String,
    http: reqwest::Client,
    credential: Credential,
    /// What the registry asked for the last time (`None`: not asked yet).
    challenge: Mutex<Option<Challenge>>,
    /// Bearer tokens by the scopes they were issued for.
    tokens: Mutex<HashMap<String, CachedToken>>,
}

/// A token this close to expiry is replaced before use.
const TOKEN_MARGIN: Duration = Duration::from_secs(20);

pub fn sha256(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(bytes)))
}

fn net(e: reqwest::Error, what: &str) -> RemoteError {
    // The source chain says what failed (refused, DNS, certificate).
    let mut msg = format!("{what}: {e}");
    let mut src = std::error::Error::source(&e);
    while let Some(s) = src {
        msg.push_str(&format!(": {s}"));
        src = s.source();
    }
    RemoteError::Unreachable(msg)
}

/// The first message of an OCI/Harbor error body, if it has one.
fn error_message(body: &str) -> Option<String> {
    let v: serde_json::Value = serde_json::from_str(body).ok()?;
    let e = v.get("errors")?.get(0)?;
    let code = e.get("code").and_then(|c| c.as_str()).unwrap_or("");
    let msg = e.get("message").and_then(|c| c.as_str()).unwrap_or("");
    Some(format!("{code} {msg}").trim().to_owned())
}

async fn status_error(res: reqwest::Response, what: &str) -> RemoteError {
    let status = res.status();
    let body = res.text().await.unwrap_or_default();
    let detail = error_message(&body).unwrap_or_else(|| body.chars().take(200).collect::<String>().trim().to_owned());
    let message = if detail.is_empty() { format!("{what}: {status}") } else { format!("{what}: {status}: {detail}") };
    match status {
        StatusCode::UNAUTHORIZED => RemoteError::Unauthorized(message),
        StatusCode::FORBIDDEN => RemoteError::Denied(message),
        StatusCode::NOT_FOUND => RemoteError::NotFound(message),
        s => RemoteError::Status { status: s.as_u16(), message },
    }
}

/// `repository:<name>:<actions>`.
pub fn repo_scope(repo: &str, actions: &str) -> String {
    format!("repository:{repo}:{actions}")
}

impl Client {
    /// A client of `endpoint`; `timeout` bounds connecting and each read (not a whole
    /// transfer: a large blob may take long, but never stall that long). A rustls crypto
    /// provider must be installed first.
    pub fn new(endpoint: &Endpoint, timeout: Duration) -> Result<Client> {
        let url = endpoint.url.trim().trim_end_matches('/');
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(RemoteError::Protocol(format!("{url:?} is not an http:// or https:// URL")));
        }
        let http = reqwest::Client::builder()
            .connect_timeout(timeout)
            .read_timeout(timeout)
            .tls_danger_accept_invalid_certs(endpoint.insecure)
            .user_agent(concat!("berth/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| RemoteError::Protocol(format!("HTTP client: {e}")))?;
        Ok(Client {
            base: url.to_owned(),
            http,
            credential: endpoint.credential.clone(),
            challenge: Mutex::new(None),
            tokens: Mutex::new(HashMap::new()),
        })
    }

    /// The endpoint's URL, without a trailing slash.
    pub fn base(&self) -> &str {
        &self.base
    }

    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    pub fn credential(&self) -> &Credential {
        &self.credential
    }

    /// An absolute URL for a path or a `Location` (which may be relative).
    pub fn resolve(&self, location: &str) -> String {
        if location.starts_with("http://") || location.starts_with("https://") {
            location.to_owned()
        } else {
            // A Location is relative to the host, not to a path prefix of the base.
            let origin_end = self.base.find("://").map_or(0, |i| i + 3);
            let host_end = self.base[origin_end..].find('/').map_or(self.base.len(), |i| origin_end + i);
            format!("{}{}", &self.base[..host_end], if location.starts_with('/') { "" } else { "/" }) + location
        }
    }

    fn basic_header(&self) -> Option<HeaderValue> {
        use base64::Engine as _;
        match &self.credential {
            Credential::Basic { username, password } => {
                let raw = base64::engine::general_purpose::STANDARD.encode(format!("{username}:{password}"));
                HeaderValue::from_str(&format!("Basic {raw}")).ok()
            }
            _ => None,
        }
    }

    /// The Authorization header to send for `scopes`, if we know one without asking.
    fn auth_header(&self, scopes: &[String]) -> Result<Option<HeaderValue>> {
        if let Credential::Minted(mint) = &self.credential {
            let token = mint(scopes).map_err(RemoteError::Unauthorized)?;
            return Ok(HeaderValue::from_str(&format!("Bearer {token}")).ok());
        }
        match &*self.challenge.lock().unwrap_or_else(|p| p.into_inner()) {
            Some(Challenge::Basic) => Ok(self.basic_header()),
            Some(Challenge::Bearer { .. }) => {
                let key = scopes.join(" ");
                let tokens = self.tokens.lock().unwrap_or_else(|p| p.into_inner());
                Ok(tokens
                    .get(&key)
                    .filter(|t| t.until > Instant::now() + TOKEN_MARGIN)
                    .and_then(|t| HeaderValue::from_str(&format!("Bearer {}", t.token)).ok()))
            }
            None => Ok(None),
        }
    }

    /// Answers a challenge: remembers it and, for Bearer, gets a token for `scopes`.
    async fn answer(&self, challenge: Challenge, scopes: &[String]) -> Result<()> {
        if let Challenge::Bearer { realm, service, .. } = &challenge {
            self.fetch_token(realm, service.as_deref(), scopes).await?;
        } else if matches!(self.credential, Credential::Anonymous) {
            return Err(RemoteError::Unauthorized(format!(
                "{} asks for a user name and password; none are configured",
                self.base
            )));
        }
        *self.challenge.lock().unwrap_or_else(|p| p.into_inner()) = Some(challenge);
        Ok(())
    }

    async fn fetch_token(&self, realm: &str, service: Option<&str>, scopes: &[String]) -> Result<()> {
        #[derive(Deserialize)]
        struct TokenResponse {
            token: Option<String>,
            access_token: Option<String>,
            expires_in: Option<u64>,
        }
        let mut query: Vec<(&str, &str)> = Vec::new();
        if let Some(s) = service {
            query.push(("service", s));
        }
        for s in scopes {
            query.push(("scope", s));
        }
        let qs: Vec<String> = query.iter().map(|(k, v)| format!("{k}={}", encode(v))).collect();
        let sep = if realm.contains('?') { '&' } else { '?' };
        let mut req = self.http.get(format!("{realm}{sep}{}", qs.join("&")));
        if let Some(h) = self.basic_header() {
            req = req.header(header::AUTHORIZATION, h);
        }
        let res = req.send().await.map_err(|e| net(e, &format!("token service {realm}")))?;
        if !res.status().is_success() {
            let err = status_error(res, &format!("token service {realm}")).await;
            return Err(match err {
                RemoteError::Unauthorized(m) | RemoteError::Denied(m) => {
                    RemoteError::Unauthorized(format!("{m} (check the user name and password)"))
                }
                e => e,
            });
        }
        let body = res.bytes().await.map_err(|e| net(e, &format!("token service {realm}")))?;
        let t: TokenResponse =
            serde_json::from_slice(&body).map_err(|e| RemoteError::Protocol(format!("token service {realm}: {e}")))?;
        let token = t
            .token
            .or(t.access_token)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| RemoteError::Protocol(format!("token service {realm} answered without a token")))?;
        // Distribution's default when the service does not say.
        let ttl = Duration::from_secs(t.expires_in.unwrap_or(60).max(1));
        self.tokens
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(scopes.join(" "), CachedToken { token, until: Instant::now() + ttl });
        Ok(())
    }

    /// Sends a request whose body (if any) can be sent again: on a 401 challenge it
    /// answers and retries once.
    pub async fn send(
        &self,
        method: Method,
        url: &str,
        scopes: &[String],
        headers: HeaderMap,
        body: Option<Bytes>,
    ) -> Result<reqwest::Response> {
        for attempt in 0..2 {
            let mut req = self.http.request(method.clone(), url).headers(headers.clone());
            if let Some(h) = self.auth_header(scopes)? {
                req = req.header(header::AUTHORIZATION, h);
            }
            if let Some(b) = &body {
                req = req.body(b.clone());
            }
            let res = req.send().await.map_err(|e| net(e, &format!("{method} {url}")))?;
            if res.status() != StatusCode::UNAUTHORIZED
                || attempt == 1
                || matches!(self.credential, Credential::Minted(_))
            {
                return Ok(res);
            }
            let challenge =
                res.headers().get(header::WWW_AUTHENTICATE).and_then(|v| v.to_str().ok()).and_then(challenge::parse);
            match challenge {
                Some(c) => self.answer(c, scopes).await?,
                None => return Ok(res),
            }
        }
        unreachable!("the loop returns on its second attempt")
    }

    /// Makes sure a request for `scopes` will carry valid credentials, so that a body
    /// that cannot be sent twice (a stream) is not refused for want of a token.
    pub async fn authorize(&self, scopes: &[String]) -> Result<()> {
        if self.auth_header(scopes)?.is_some() || matches!(self.credential, Credential::Minted(_)) {
            return Ok(());
        }
        let known = self.challenge.lock().unwrap_or_else(|p| p.into_inner()).clone();
        match known {
            Some(c) => self.answer(c, scopes).await,
            None => {
                let res = self.send(Method::GET, &format!("{}/v2/", self.base), scopes, HeaderMap::new(), None).await?;
                if res.status() == StatusCode::UNAUTHORIZED {
                    return Err(status_error(res, &format!("{}/v2/", self.base)).await);
                }
                Ok(())
            }
        }
    }

    /// `GET /v2/` with the credentials: `Ok` if the registry speaks the Distribution API
    /// and accepts them.
    pub async fn ping(&self) -> Result<()> {
        let url = format!("{}/v2/", self.base);
        let res = self.send(Method::GET, &url, &[], HeaderMap::new(), None).await?;
        if res.status().is_success() {
            return Ok(());
        }
        Err(match status_error(res, &format!("GET {url}")).await {
            RemoteError::Unauthorized(m) => {
                RemoteError::Unauthorized(format!("{m} (check the user name and password)"))
            }
            e => e,
        })
    }

    async fn get_json<T: serde::de::DeserializeOwned>(
        &self,
        url: &str,
        scopes: &[String],
    ) -> Result<(T, Option<String>)> {
        let res = self.send(Method::GET, url, scopes, HeaderMap::new(), None).await?;
        if !res.status().is_success() {
            return Err(status_error(res, &format!("GET {url}")).await);
        }
        let next = next_link(res.headers()).map(|l| self.resolve(&l));
        let body = res.bytes().await.map_err(|e| net(e, &format!("GET {url}")))?;
        let v = serde_json::from_slice::<T>(&body).map_err(|e| RemoteError::Protocol(format!("GET {url}: {e}")))?;
        Ok((v, next))
    }

    /// Every repository of `/v2/_catalog`, following `Link` pages.
    pub async fn catalog(&self) -> Result<Vec<String>> {
        #[derive(Deserialize)]
        struct Catalog {
            #[serde(default)]
            repositories: Option<Vec<String>>,
        }
        let scopes = ["registry:catalog:*".to_owned()];
        let mut url = Some(format!("{}/v2/_catalog?n=1000", self.base));
        let mut out = Vec::new();
        while let Some(u) = url.take() {
            let (c, next): (Catalog, _) = self.get_json(&u, &scopes).await?;
            let page = c.repositories.unwrap_or_default();
            if page.is_empty() {
                break;
            }
            out.extend(page);
            url = next;
        }
        Ok(out)
    }

    /// Every tag of `repo`, following `Link` pages.
    pub async fn tags(&self, repo: &str) -> Result<Vec<String>> {
        #[derive(Deserialize)]
        struct Tags {
            #[serde(default)]
            tags: Option<Vec<String>>,
        }
        let scopes = [repo_scope(repo, "pull")];
        let mut url = Some(format!("{}/v2/{repo}/tags/list?n=1000", self.base));
        let mut out = Vec::new();
        while let Some(u) = url.take() {
            let (t, next): (Tags, _) = self.get_json(&u, &scopes).await?;
            let page = t.tags.unwrap_or_default();
            if page.is_empty() {
                break;
            }
            out.extend(page);
            url = next;
        }
        Ok(out)
    }

    fn manifest_url(&self, repo: &str, reference: &str) -> String {
        format!("{}/v2/{repo}/manifests/{reference}", self.base)
    }

    /// The manifest's digest and media type, or `None` if there is none.
    pub async fn manifest_head(&self, repo: &str, reference: &str) -> Result<Option<(String, String)>> {
        let url = self.manifest_url(repo, reference);
        let mut h = HeaderMap::new();
        h.insert(header::ACCEPT, HeaderValue::from_static(MANIFEST_ACCEPT));
        let res = self.send(Method::HEAD, &url, &[repo_scope(repo, "pull")], h, None).await?;
        match res.status() {
            StatusCode::NOT_FOUND => Ok(None),
            s if s.is_success() => {
                let digest =
                    res.headers().get("docker-content-digest").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
                let mt = res.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
                Ok(Some((digest, mt)))
            }
            _ => Err(status_error(res, &format!("HEAD {url}")).await),
        }
    }

    /// Fetches a manifest; one fetched by digest is checked against it.
    pub async fn manifest_get(&self, repo: &str, reference: &str) -> Result<Manifest> {
        let url = self.manifest_url(repo, reference);
        let mut h = HeaderMap::new();
        h.insert(header::ACCEPT, HeaderValue::from_static(MANIFEST_ACCEPT));
        let res = self.send(Method::GET, &url, &[repo_scope(repo, "pull")], h, None).await?;
        if !res.status().is_success() {
            return Err(status_error(res, &format!("GET {url}")).await);
        }
        let ct = res.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
        let bytes = res.bytes().await.map_err(|e| net(e, &format!("GET {url}")))?;
        let digest = sha256(&bytes);
        if reference.starts_with("sha256:") && reference != digest {
            return Err(RemoteError::Protocol(format!("GET {url}: the manifest's digest is {digest}")));
        }
        let media_type = serde_json::from_slice::<serde_json::Value>(&bytes)
            .ok()
            .and_then(|v| v.get("mediaType").and_then(|m| m.as_str()).map(str::to_owned))
            .unwrap_or_else(|| ct.split(';').next().unwrap_or("").trim().to_owned());
        Ok(Manifest { bytes, media_type, digest })
    }

    /// Pushes a manifest under a tag or its digest; returns the digest the registry
    /// reports (or ours).
    pub async fn manifest_put(&self, repo: &str, reference: &str, media_type: &str, bytes: Bytes) -> Result<String> {
        let url = self.manifest_url(repo, reference);
        let mut h = HeaderMap::new();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_str(media_type)
                .map_err(|_| RemoteError::Protocol(format!("media type {media_type:?}")))?,
        );
        let digest = sha256(&bytes);
        let res = self.send(Method::PUT, &url, &[repo_scope(repo, "pull,push")], h, Some(bytes)).await?;
        if !res.status().is_success() {
            return Err(status_error(res, &format!("PUT {url}")).await);
        }
        Ok(res.headers().get("docker-content-digest").and_then(|v| v.to_str().ok()).map_or(digest, str::to_owned))
    }

    /// Deletes a manifest by digest (and so every tag on it).
    pub async fn manifest_delete(&self, repo: &str, digest: &str) -> Result<bool> {
        let url = self.manifest_url(repo, digest);
        let res = self.send(Method::DELETE, &url, &[repo_scope(repo, "delete")], HeaderMap::new(), None).await?;
        match res.status() {
            StatusCode::NOT_FOUND => Ok(false),
            s if s.is_success() => Ok(true),
            _ => Err(status_error(res, &format!("DELETE {url}")).await),
        }
    }

    /// The blob's size, or `None` if the repository does not have it.
    pub async fn blob_head(&self, repo: &str, digest: &str) -> Result<Option<u64>> {
        let url = format!("{}/v2/{repo}/blobs/{digest}", self.base);
        let res = self.send(Method::HEAD, &url, &[repo_scope(repo, "pull")], HeaderMap::new(), None).await?;
        match res.status() {
            StatusCode::NOT_FOUND => Ok(None),
            s if s.is_success() => Ok(Some(res.content_length().unwrap_or(0))),
            _ => Err(status_error(res, &format!("HEAD {url}")).await),
        }
    }

    /// Starts reading a blob at byte `from` (a ranged GET; a registry that ignores the
    /// range is caught, not silently misread). Redirects to storage are followed.
    pub async fn blob_get(&self, repo: &str, digest: &str, from: u64) -> Result<reqwest::Response> {
        let url = format!("{}/v2/{repo}/blobs/{digest}", self.base);
        let mut h = HeaderMap::new();
        if from > 0 {
            h.insert(header::RANGE, HeaderValue::from_str(&format!("bytes={from}-")).expect("ascii"));
        }
        let res = self.send(Method::GET, &url, &[repo_scope(repo, "pull")], h, None).await?;
        if !res.status().is_success() {
            return Err(status_error(res, &format!("GET {url}")).await);
        }
        if from > 0 && res.status() != StatusCode::PARTIAL_CONTENT {
            return Err(RemoteError::Protocol(format!("GET {url}: the registry ignored the Range header")));
        }
        Ok(res)
    }

    /// Starts an upload; returns its URL.
    pub async fn upload_start(&self, repo: &str) -> Result<String> {
        let url = format!("{}/v2/{repo}/blobs/uploads/", self.base);
        let res = self.send(Method::POST, &url, &[repo_scope(repo, "pull,push")], HeaderMap::new(), None).await?;
        if res.status() != StatusCode::ACCEPTED {
            return Err(status_error(res, &format!("POST {url}")).await);
        }
        self.location(&res, &url)
    }

    fn location(&self, res: &reqwest::Response, url: &str) -> Result<String> {
        res.headers()
            .get(header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .map(|l| self.resolve(l))
            .ok_or_else(|| RemoteError::Protocol(format!("{url}: no Location in the answer")))
    }

    /// Mounts `digest` from repository `from` of the same registry into `repo`.
    pub async fn mount(&self, repo: &str, digest: &str, from: &str) -> Result<Mount> {
        let url = format!("{}/v2/{repo}/blobs/uploads/?mount={digest}&from={from}", self.base);
        let scopes = [repo_scope(repo, "pull,push"), repo_scope(from, "pull")];
        let res = self.send(Method::POST, &url, &scopes, HeaderMap::new(), None).await?;
        match res.status() {
            StatusCode::CREATED => Ok(Mount::Mounted),
            StatusCode::ACCEPTED => Ok(Mount::Upload(self.location(&res, &url)?)),
            _ => Err(status_error(res, &format!("POST {url}")).await),
        }
    }

    /// How many bytes an open upload holds, or `None` if the registry forgot it.
    pub async fn upload_status(&self, repo: &str, upload_url: &str) -> Result<Option<u64>> {
        let res = self.send(Method::GET, upload_url, &[repo_scope(repo, "pull,push")], HeaderMap::new(), None).await?;
        match res.status() {
            StatusCode::NOT_FOUND => Ok(None),
            StatusCode::NO_CONTENT | StatusCode::OK => {
                let range = res.headers().get(header::RANGE).and_then(|v| v.to_str().ok()).unwrap_or("");
                // `0-<last>`; an empty upload may say `0-0` or send nothing.
                let end = range.rsplit('-').next().and_then(|e| e.parse::<u64>().ok());
                Ok(Some(match end {
                    Some(e) if range != "0-0" => e + 1,
                    _ => 0,
                }))
            }
            _ => Err(status_error(res, &format!("GET {upload_url}")).await),
        }
    }

    /// Appends one chunk at `offset`; returns the upload's next URL.
    pub async fn upload_chunk(&self, repo: &str, upload_url: &str, offset: u64, chunk: Bytes) -> Result<String> {
        let mut h = HeaderMap::new();
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/octet-stream"));
        let end = offset + chunk.len() as u64 - 1;
        h.insert(header::CONTENT_RANGE, HeaderValue::from_str(&format!("{offset}-{end}")).expect("ascii"));
        let res = self.send(Method::PATCH, upload_url, &[repo_scope(repo, "pull,push")], h, Some(chunk)).await?;
        if res.status() != StatusCode::ACCEPTED {
            return Err(status_error(res, &format!("PATCH {upload_url}")).await);
        }
        self.location(&res, upload_url)
    }

    /// Finishes an upload with its digest and an optional last body (a stream is sent
    /// once: call [`Client::authorize`] first).
    pub async fn upload_finish(
        &self,
        repo: &str,
        upload_url: &str,
        digest: &str,
        body: Option<(reqwest::Body, u64)>,
    ) -> Result<()> {
        let sep = if upload_url.contains('?') { '&' } else { '?' };
        let url = format!("{upload_url}{sep}digest={digest}");
        let scopes = [repo_scope(repo, "pull,push")];
        let res = match body {
            None => self.send(Method::PUT, &url, &scopes, HeaderMap::new(), None).await?,
            Some((body, len)) => {
                let mut req = self
                    .http
                    .put(&url)
                    .header(header::CONTENT_TYPE, "application/octet-stream")
                    .header(header::CONTENT_LENGTH, len)
                    .body(body);
                if let Some(h) = self.auth_header(&scopes)? {
                    req = req.header(header::AUTHORIZATION, h);
                }
                req.send().await.map_err(|e| net(e, &format!("PUT {upload_url}")))?
            }
        };
        if res.status() != StatusCode::CREATED {
            return Err(status_error(res, &format!("PUT {upload_url}")).await);
        }
        Ok(())
    }

    /// `GET` on a path of the endpoint with its Basic credentials (the management APIs of
    /// Harbor and Docker Hub): JSON and the next page's URL.
    pub async fn api_get<T: serde::de::DeserializeOwned>(&self, url: &str) -> Result<(T, Option<String>)> {
        let mut req = self.http.get(url).header(header::ACCEPT, "application/json");
        if let Some(h) = self.basic_header() {
            req = req.header(header::AUTHORIZATION, h);
        }
        let res = req.send().await.map_err(|e| net(e, &format!("GET {url}")))?;
        if !res.status().is_success() {
            return Err(status_error(res, &format!("GET {url}")).await);
        }
        let next = next_link(res.headers()).map(|l| self.resolve(&l));
        let body = res.bytes().await.map_err(|e| net(e, &format!("GET {url}")))?;
        let v = serde_json::from_slice::<T>(&body).map_err(|e| RemoteError::Protocol(format!("GET {url}: {e}")))?;
        Ok((v, next))
    }

    /// A request to the management API with Basic credentials.
    pub async fn api_send(
        &self,
        method: Method,
        url: &str,
        json: Option<serde_json::Value>,
    ) -> Result<reqwest::Response> {
        let mut req = self.http.request(method.clone(), url).header(header::ACCEPT, "application/json");
        if let Some(h) = self.basic_header() {
            req = req.header(header::AUTHORIZATION, h);
        }
        if let Some(j) = json {
            req = req.header(header::CONTENT_TYPE, "application/json").body(j.to_string());
        }
        req.send().await.map_err(|e| net(e, &format!("{method} {url}")))
    }
}

pub(crate) async fn error_of(res: reqwest::Response, what: &str) -> RemoteError {
    status_error(res, what).await
}

/// Percent-encodes a query value (everything but RFC 3986's unreserved characters).
pub fn encode(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for b in v.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The `rel="next"` target of a `Link` header.
fn next_link(h: &HeaderMap) -> Option<String> {
    let link = h.get(header::LINK)?.to_str().ok()?;
    link.split(',').find(|l| l.contains("rel=\"next\"")).and_then(|l| {
        let start = l.find('<')? + 1;
        let end = l.find('>')?;
        Some(l[start..end].to_owned())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_relative_locations_against_the_host() {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let ep = Endpoint { url: "http://h:5000/prefix/".into(), credential: Credential::Anonymous, insecure: false };
        let c = Client::new(&ep, Duration::from_secs(5)).unwrap();
        assert_eq!(c.base(), "http://h:5000/prefix");
        assert_eq!(c.resolve("/v2/a/blobs/uploads/x?s=1"), "http://h:5000/v2/a/blobs/uploads/x?s=1");
        assert_eq!(c.resolve("https://o/x"), "https://o/x");
        assert!(Client::new(&Endpoint { url: "h:5000".into(), ..ep }, Duration::from_secs(5)).is_err());
    }

    #[test]
    fn reads_next_links() {
        let mut h = HeaderMap::new();
        h.insert(header::LINK, HeaderValue::from_static("</v2/_catalog?last=b&n=2>; rel=\"next\""));
        assert_eq!(next_link(&h).as_deref(), Some("/v2/_catalog?last=b&n=2"));
        assert_eq!(next_link(&HeaderMap::new()), None);
    }

    #[test]
    fn error_bodies_become_messages() {
        assert_eq!(
            error_message(r#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}"#).as_deref(),
            Some("UNAUTHORIZED authentication required")
        );
        assert!(RemoteError::Status { status: 503, message: String::new() }.is_transient());
        assert!(!RemoteError::Unauthorized(String::new()).is_transient());
    }
}
