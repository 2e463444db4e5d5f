//! A minimal keep-alive HTTP/1.1 client connection on top of hyper's low-level
//! `client::conn::http1`, plus a request body made of `Bytes` pieces.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use anyhow::{Context as _, Result, anyhow, bail};
use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::client::conn::http1;
use hyper::header::HeaderMap;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// A request body made of already-materialised pieces; cloning a `Bytes` is a
/// reference-count bump, so sending the same blob many times copies nothing.
#[derive(Default)]
pub struct ReqBody {
    chunks: VecDeque<Bytes>,
    remaining: u64,
}

impl ReqBody {
    pub fn empty() -> Self {
        Self::default()
    }

    pub fn from_parts(parts: impl IntoIterator<Item = Bytes>) -> Self {
        let chunks: VecDeque<Bytes> = parts.into_iter().filter(|b| !b.is_empty()).collect();
        let remaining = chunks.iter().map(|b| b.len() as u64).sum();
        Self { chunks, remaining }
    }

    pub fn from_bytes(b: impl Into<Bytes>) -> Self {
        Self::from_parts([b.into()])
    }

    pub fn len(&self) -> u64 {
        self.remaining
    }
}

impl Body for ReqBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let this = self.get_mut();
        Poll::Ready(this.chunks.pop_front().map(|b| {
            this.remaining -= b.len() as u64;
            Ok(Frame::data(b))
        }))
    }

    fn is_end_stream(&self) -> bool {
        self.chunks.is_empty()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.remaining)
    }
}

/// A fully read response.
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// `Location` turned into an origin-form path (Distribution answers with an
    /// absolute URL, others may answer with a path).
    pub fn location(&self) -> Result<String> {
        let loc = self.header("location").ok_or_else(|| anyhow!("{} without a Location header", self.status))?;
        origin_form(loc)
    }

    /// Short description for error messages: status and the start of the body.
    pub fn describe(&self) -> String {
        let text = String::from_utf8_lossy(&self.body[..self.body.len().min(300)]).into_owned();
        format!("{} {}", self.status.as_u16(), text.trim())
    }

    pub fn expect(self, want: StatusCode, what: &str) -> Result<Reply> {
        if self.status == want {
            Ok(self)
        } else {
            bail!("{what}: expected {}, got {}", want.as_u16(), self.describe())
        }
    }
}

/// `http://host:port/p?q` or `/p?q` → `/p?q`. Only loopback absolute URLs are accepted.
pub fn origin_form(url: &str) -> Result<String> {
    if url.starts_with('/') {
        return Ok(url.to_string());
    }
    let rest = url.strip_prefix("http://").ok_or_else(|| anyhow!("unsupported URL in Location/Link: {url}"))?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let host = authority.rsplit_once(':').map_or(authority, |(h, _)| h);
    if !(host == "127.0.0.1" || host == "localhost" || host == "[::1]") {
        bail!("refusing to follow a non-loopback URL: {url}");
    }
    Ok(path.to_string())
}

/// Appends `key=value` to a path that may already carry a query.
pub fn with_query(path: &str, kv: &str) -> String {
    let sep = if path.contains('?') { '&' } else { '?' };
    format!("{path}{sep}{kv}")
}

/// One keep-alive connection; reconnects lazily when the server closed it.
pub struct Conn {
    addr: SocketAddr,
    host: String,
    sender: Option<http1::SendRequest<ReqBody>>,
    /// A registry token sent with every request that carries no Authorization of its own.
    pub bearer: Option<String>,
}

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Upper bound for any single request; keeps every loop finite even if a server hangs.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(120);

impl Conn {
    pub fn new(addr: SocketAddr) -> Self {
        Self { addr, host: addr.to_string(), sender: None, bearer: None }
    }

    pub async fn connect(&mut self) -> Result<()> {
        let stream = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(self.addr))
            .await
            .context("connect timed out")??;
        stream.set_nodelay(true)?;
        let (sender, conn) = http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        self.sender = Some(sender);
        Ok(())
    }

    async fn ready_sender(&mut self) -> Result<&mut http1::SendRequest<ReqBody>> {
        let usable = match &mut self.sender {
            Some(s) if !s.is_closed() => s.ready().await.is_ok(),
            _ => false,
        };
        if !usable {
            self.connect().await?;
            let s = self.sender.as_mut().expect("just connected");
            s.ready().await?;
        }
        Ok(self.sender.as_mut().expect("connected"))
    }

    /// Sends a request and returns the response head; the caller reads the body.
    pub async fn send(
        &mut self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: ReqBody,
    ) -> Result<Response<Incoming>> {
        let host = self.host.clone();
        let has_body = matches!(method, Method::POST | Method::PUT | Method::PATCH);
        let mut b = Request::builder().method(method).uri(path).header("host", host);
        if has_body {
            b = b.header("content-length", body.len());
        }
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        if let Some(t) = &self.bearer
            && !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("authorization"))
        {
            b = b.header("authorization", format!("Bearer {t}"));
        }
        let req = b.body(body)?;
        let sender = self.ready_sender().await?;
        match tokio::time::timeout(REQUEST_TIMEOUT, sender.send_request(req)).await {
            Ok(Ok(resp)) => Ok(resp),
            Ok(Err(e)) => {
                self.sender = None;
                Err(anyhow!(e).context(format!("request {path}")))
            }
            Err(_) => {
                self.sender = None;
                bail!("request {path} timed out")
            }
        }
    }

    /// Sends a request and reads the whole response body.
    pub async fn call(&mut self, method: Method, path: &str, headers: &[(&str, &str)], body: ReqBody) -> Result<Reply> {
        let resp = self.send(method, path, headers, body).await?;
        read_all(resp).await
    }

    /// Sends a request and discards the response body, counting its bytes.
    pub async fn call_drain(
        &mut self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: ReqBody,
    ) -> Result<(StatusCode, u64)> {
        let resp = self.send(method, path, headers, body).await?;
        let status = resp.status();
        let n = drain(resp).await?;
        Ok((status, n))
    }
}

/// Reads and discards a response body, returning its length.
pub async fn drain(resp: Response<Incoming>) -> Result<u64> {
    let mut body = resp.into_body();
    let mut n = 0u64;
    let read = async {
        while let Some(frame) = body.frame().await {
            if let Some(d) = frame?.data_ref() {
                n += d.len() as u64;
            }
        }
        Ok::<_, hyper::Error>(())
    };
    tokio::time::timeout(REQUEST_TIMEOUT, read).await.context("reading response body timed out")??;
    Ok(n)
}

/// Reads a whole response body.
pub async fn read_all(resp: Response<Incoming>) -> Result<Reply> {
    let (parts, body) = resp.into_parts();
    let body = tokio::time::timeout(REQUEST_TIMEOUT, body.collect())
        .await
        .context("reading response body timed out")??
        .to_bytes();
    Ok(Reply { status: parts.status, headers: parts.headers, body })
}
