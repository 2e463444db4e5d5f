//! A small S3 client: SigV4-signed requests on reqwest, a deadline on every request,
//! retries with backoff for transient failures of idempotent requests, and errors that
//! say what failed and why.

use std::fmt;
use std::io;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use reqwest::Method;
use reqwest::header::HeaderMap;

use std::sync::Arc;

use crate::creds::Provider;
use crate::sigv4::{self, Credentials, EMPTY_SHA256};
use crate::xml;

/// Attempts for an idempotent request (the first one and the retries).
const ATTEMPTS: u32 = 4;
/// First backoff; doubled per retry, capped at `MAX_BACKOFF`.
const BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(2);

pub(crate) struct Client {
    http: reqwest::Client,
    pub creds: Arc<Provider>,
    region: String,
    scheme: String,
    /// The `Host` of bucket requests (with the bucket for virtual-hosted style).
    host: String,
    /// `/bucket` for path-style addressing, empty for virtual-hosted style.
    base_path: String,
    pub bucket: String,
    /// What to call the endpoint in messages.
    pub endpoint: String,
    /// Deadline of a metadata request, and the idle limit of a data transfer.
    pub timeout: Duration,
}

pub(crate) struct Request<'a> {
    pub op: &'static str,
    pub method: Method,
    /// `None` addresses the bucket.
    pub key: Option<&'a str>,
    pub query: Vec<(String, String)>,
    /// Extra headers, all signed; lowercase names.
    pub headers: Vec<(&'static str, String)>,
    pub body: Bytes,
    pub timeout: Duration,
    pub idempotent: bool,
    /// CopyObject, UploadPartCopy and CompleteMultipartUpload can answer 200 and
    /// still have failed: their body is then an `<Error>`.
    pub error_in_body: bool,
}

impl<'a> Request<'a> {
    pub fn new(op: &'static str, method: Method, key: Option<&'a str>, timeout: Duration) -> Self {
        Request {
            op,
            method,
            key,
            query: Vec::new(),
            headers: Vec::new(),
            body: Bytes::new(),
            timeout,
            idempotent: true,
            error_in_body: false,
        }
    }

    pub fn query(mut self, k: &str, v: impl Into<String>) -> Self {
        self.query.push((k.to_string(), v.into()));
        self
    }

    pub fn header(mut self, k: &'static str, v: impl Into<String>) -> Self {
        self.headers.push((k, v.into()));
        self
    }

    pub fn body(mut self, body: Bytes) -> Self {
        self.body = body;
        self
    }
}

pub(crate) struct Response {
    pub headers: HeaderMap,
    pub body: Bytes,
}

#[derive(Debug)]
pub(crate) enum Error {
    /// S3 answered with an error.
    Status { what: String, status: u16, code: String, message: String, region: Option<String> },
    /// No answer: connection refused, reset, DNS, TLS.
    Transport { what: String, endpoint: String, detail: String, connect: bool },
    /// No answer within the deadline.
    Timeout { what: String, after: Duration },
    /// No valid credentials to sign with (their source failed).
    Credentials { what: String, detail: String },
}

impl Error {
    pub fn status(&self) -> Option<u16> {
        match self {
            Error::Status { status, .. } => Some(*status),
            _ => None,
        }
    }

    pub fn code(&self) -> Option<&str> {
        match self {
            Error::Status { code, .. } => Some(code),
            _ => None,
        }
    }

    fn retryable(&self) -> bool {
        match self {
            Error::Status { status, code, .. } => {
                matches!(status, 500 | 502 | 503 | 504 | 429)
                    || matches!(code.as_str(), "SlowDown" | "InternalError" | "RequestTimeout" | "ServiceUnavailable")
            }
            Error::Transport { .. } => true,
            // The provider already kept old credentials while they were valid.
            Error::Credentials { .. } => false,
            // The deadline is already generous: a server that missed it is unlikely to
            // meet it a moment later, and retrying would multiply the caller's wait.
            Error::Timeout { .. } => false,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Status { what, status, code, message, .. } => {
                write!(f, "{what}: HTTP {status}")?;
                if !code.is_empty() {
                    write!(f, " {code}")?;
                }
                if !message.is_empty() {
                    write!(f, ": {message}")?;
                }
                Ok(())
            }
            Error::Transport { what, endpoint, detail, .. } => write!(f, "{what}: endpoint {endpoint}: {detail}"),
            Error::Timeout { what, after } => write!(f, "{what}: no answer within {after:?}"),
            Error::Credentials { what, detail } => write!(f, "{what}: no S3 credentials: {detail}"),
        }
    }
}

impl From<Error> for io::Error {
    fn from(e: Error) -> io::Error {
        let kind = match &e {
            Error::Status { status: 404, .. } => io::ErrorKind::NotFound,
            Error::Status { status: 403, .. } => io::ErrorKind::PermissionDenied,
            Error::Status { .. } => io::ErrorKind::Other,
            Error::Transport { connect: true, .. } => io::ErrorKind::ConnectionRefused,
            Error::Transport { .. } => io::ErrorKind::ConnectionAborted,
            Error::Timeout { .. } => io::ErrorKind::TimedOut,
            Error::Credentials { .. } => io::ErrorKind::PermissionDenied,
        };
        io::Error::new(kind, e.to_string())
    }
}

/// An error with its causes, which reqwest keeps in `source()`.
fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let m = c.to_string();
        if !s.contains(&m) {
            s.push_str(": ");
            s.push_str(&m);
        }
        cur = c.source();
    }
    s
}

pub(crate) struct Endpoint {
    pub scheme: String,
    pub host: String,
    pub base_path: String,
    pub display: String,
}

/// Where bucket requests go: `endpoint` (empty = AWS in `region`), path-style or
/// virtual-hosted.
pub(crate) fn endpoint(endpoint: &str, region: &str, bucket: &str, path_style: bool) -> io::Result<Endpoint> {
    let invalid = |m: String| io::Error::new(io::ErrorKind::InvalidInput, m);
    let raw = if endpoint.is_empty() { format!("https://s3.{region}.amazonaws.com") } else { endpoint.to_string() };
    let url = reqwest::Url::parse(&raw).map_err(|e| invalid(format!("S3 endpoint {raw:?} is not a URL: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(invalid(format!("S3 endpoint {raw:?} must be http:// or https://")));
    }
    let host = url.host_str().ok_or_else(|| invalid(format!("S3 endpoint {raw:?} has no host")))?;
    let authority = match url.port() {
        Some(p) => format!("{host}:{p}"),
        None => host.to_string(),
    };
    let path = url.path().trim_end_matches('/');
    if url.query().is_some() {
        return Err(invalid(format!("S3 endpoint {raw:?} must not have a query")));
    }
    let (host, base_path) = if path_style {
        (authority, format!("{path}/{}", sigv4::uri_encode(bucket, false)))
    } else {
        (format!("{bucket}.{authority}"), path.to_string())
    };
    Ok(Endpoint { scheme: url.scheme().to_string(), host, base_path, display: raw })
}

impl Client {
    pub fn new(
        http: reqwest::Client,
        creds: Arc<Provider>,
        region: String,
        ep: Endpoint,
        bucket: String,
        timeout: Duration,
    ) -> Self {
        Client {
            http,
            creds,
            region,
            scheme: ep.scheme,
            host: ep.host,
            base_path: ep.base_path,
            bucket,
            endpoint: ep.display,
            timeout,
        }
    }

    fn path(&self, key: Option<&str>) -> String {
        match key {
            Some(k) => format!("{}/{}", self.base_path, sigv4::uri_encode(k, true)),
            None if self.base_path.is_empty() => "/".to_string(),
            None => self.base_path.clone(),
        }
    }

    fn what(&self, req: &Request<'_>) -> String {
        match req.key {
            Some(k) => format!("S3 {} s3://{}/{k}", req.op, self.bucket),
            None => format!("S3 {} s3://{}", req.op, self.bucket),
        }
    }

    /// A presigned GET URL for `key`, signed with the cached credentials (the refresher
    /// keeps them ahead of expiry); `None` when there are none valid.
    pub fn presign_get(&self, key: &str, expires_secs: u64, now: SystemTime) -> Option<String> {
        let c = self.creds.cached().filter(|c| c.expires.is_none_or(|e| e > now))?;
        // A URL cannot outlive the credentials that signed it.
        let secs = match c.expires {
            Some(e) => expires_secs.min(e.duration_since(now).unwrap_or_default().as_secs().max(1)),
            None => expires_secs,
        };
        let path = self.path(Some(key));
        let keys = Credentials {
            access_key: &c.access_key,
            secret_key: &c.secret_key,
            session_token: c.session_token.as_deref(),
            region: &self.region,
        };
        let q = sigv4::presign_query(&keys, &self.host, &path, secs, now);
        Some(format!("{}://{}{path}?{q}", self.scheme, self.host))
    }

    /// The `x-amz-copy-source` value naming `key` in this bucket.
    pub fn copy_source(&self, key: &str) -> String {
        format!("/{}/{}", sigv4::uri_encode(&self.bucket, false), sigv4::uri_encode(key, true))
    }

    async fn send_once(&self, req: &Request<'_>, payload_hash: &str) -> Result<reqwest::Response, Error> {
        let path = self.path(req.key);
        let mut url = format!("{}://{}{path}", self.scheme, self.host);
        if !req.query.is_empty() {
            url.push('?');
            let q: Vec<String> = req
                .query
                .iter()
                .map(|(k, v)| format!("{}={}", sigv4::uri_encode(k, false), sigv4::uri_encode(v, false)))
                .collect();
            url.push_str(&q.join("&"));
        }
        let c = self.creds.get().await.map_err(|detail| Error::Credentials { what: self.what(req), detail })?;
        let (date, stamp) = sigv4::amz_dates(SystemTime::now());
        let mut headers: Vec<(&str, String)> = vec![
            ("host", self.host.clone()),
            ("x-amz-content-sha256", payload_hash.to_string()),
            ("x-amz-date", stamp.clone()),
        ];
        if let Some(t) = &c.session_token {
            headers.push(("x-amz-security-token", t.clone()));
        }
        headers.extend(req.headers.iter().map(|(k, v)| (*k, v.clone())));
        let keys = Credentials {
            access_key: &c.access_key,
            secret_key: &c.secret_key,
            session_token: c.session_token.as_deref(),
            region: &self.region,
        };
        let auth = sigv4::authorization(
            &keys,
            req.method.as_str(),
            &path,
            &req.query,
            &headers,
            payload_hash,
            (&date, &stamp),
        );
        let mut rb = self.http.request(req.method.clone(), &url).header("authorization", auth);
        for (k, v) in headers.iter().skip(1) {
            rb = rb.header(*k, v);
        }
        if req.method == Method::PUT || req.method == Method::POST {
            rb = rb.body(req.body.clone());
        }
        rb.send().await.map_err(|e| Error::Transport {
            what: self.what(req),
            endpoint: self.endpoint.clone(),
            detail: chain(&e),
            connect: e.is_connect(),
        })
    }

    /// Turns an error response into an `Error`, reading its body (within `deadline`).
    async fn status_error(&self, req: &Request<'_>, resp: reqwest::Response) -> Error {
        let status = resp.status().as_u16();
        let region = resp.headers().get("x-amz-bucket-region").and_then(|v| v.to_str().ok()).map(str::to_string);
        let body = resp.bytes().await.unwrap_or_default();
        self.body_error(req, status, &body, region)
    }

    fn body_error(&self, req: &Request<'_>, status: u16, body: &[u8], region: Option<String>) -> Error {
        let text = String::from_utf8_lossy(body);
        let code = xml::text(&text, "Code").unwrap_or_default();
        let mut message = xml::text(&text, "Message").unwrap_or_default();
        if code.is_empty() && message.is_empty() && req.method == Method::HEAD {
            message = match status {
                404 => "not found".into(),
                403 => "forbidden (wrong credentials, or no permission)".into(),
                _ => String::new(),
            };
        }
        Error::Status { what: self.what(req), status, code, message, region }
    }

    async fn payload_hash(req: &Request<'_>) -> String {
        if req.body.is_empty() {
            EMPTY_SHA256.to_string()
        } else if req.body.len() < 256 * 1024 {
            sigv4::sha256_hex(&req.body)
        } else {
            // Signed payloads let the server reject corrupted bodies; hash big ones
            // off the async workers.
            let body = req.body.clone();
            tokio::task::spawn_blocking(move || sigv4::sha256_hex(&body)).await.expect("hashing does not panic")
        }
    }

    /// Sends a request and reads the whole (small) answer, retrying transient
    /// failures of idempotent requests.
    pub async fn call(&self, req: Request<'_>) -> Result<Response, Error> {
        let hash = Self::payload_hash(&req).await;
        retry(req.idempotent, || async {
            let attempt = async {
                let resp = self.send_once(&req, &hash).await?;
                let status = resp.status();
                if !status.is_success() {
                    return Err(self.status_error(&req, resp).await);
                }
                let headers = resp.headers().clone();
                let body = resp.bytes().await.map_err(|e| Error::Transport {
                    what: self.what(&req),
                    endpoint: self.endpoint.clone(),
                    detail: chain(&e),
                    connect: false,
                })?;
                if req.error_in_body && body.windows(7).any(|w| w == b"<Error>") {
                    return Err(self.body_error(&req, status.as_u16(), &body, None));
                }
                Ok(Response { headers, body })
            };
            match tokio::time::timeout(req.timeout, attempt).await {
                Ok(r) => r,
                Err(_) => Err(Error::Timeout { what: self.what(&req), after: req.timeout }),
            }
        })
        .await
    }

    /// Sends a request whose answer is streamed: the deadline covers the status and
    /// headers; the caller bounds the body by an idle timeout.
    pub async fn stream(&self, req: Request<'_>) -> Result<reqwest::Response, Error> {
        retry(req.idempotent, || async {
            let attempt = async {
                let resp = self.send_once(&req, EMPTY_SHA256).await?;
                if !resp.status().is_success() {
                    return Err(self.status_error(&req, resp).await);
                }
                Ok(resp)
            };
            match tokio::time::timeout(req.timeout, attempt).await {
                Ok(r) => r,
                Err(_) => Err(Error::Timeout { what: self.what(&req), after: req.timeout }),
            }
        })
        .await
    }
}

/// Backoff before retry number `n` (1-based): exponential, capped, with jitter so
/// instances hitting the same failure do not retry in lockstep.
pub(crate) fn backoff(n: u32) -> Duration {
    let base = BACKOFF.saturating_mul(1 << (n - 1).min(16)).min(MAX_BACKOFF);
    let nanos = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
    base + base.mul_f64(f64::from(nanos % 1000) / 2000.0)
}

async fn retry<T, F, Fut>(idempotent: bool, mut f: F) -> Result<T, Error>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, Error>>,
{
    let attempts = if idempotent { ATTEMPTS } else { 1 };
    let mut n = 1;
    loop {
        match f().await {
            Err(e) if n < attempts && e.retryable() => {
                tracing::debug!(error = %e, attempt = n, "retrying S3 request");
                tokio::time::sleep(backoff(n)).await;
                n += 1;
            }
            r => return r,
        }
    }
}
