//! A tiny HTTP/1.1 server on 127.0.0.1 for the credential tests: it records every
//! request and answers with whatever the test's handler says. It plays the credential
//! sources (STS, container endpoint, IMDS) and, where no Garage is needed, S3 itself.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

#[derive(Clone, Debug)]
pub struct Req {
    pub method: String,
    /// Path and query as sent.
    pub target: String,
    /// Lowercase names.
    pub headers: HashMap<String, String>,
    pub body: String,
}

impl Req {
    pub fn path(&self) -> &str {
        self.target.split('?').next().unwrap_or("")
    }

    pub fn header(&self, k: &str) -> Option<&str> {
        self.headers.get(k).map(String::as_str)
    }

    /// The access key id of a SigV4 `Authorization` header.
    pub fn signed_by(&self) -> Option<String> {
        let auth = self.header("authorization")?;
        let cred = auth.split("Credential=").nth(1)?;
        Some(cred.split('/').next()?.to_string())
    }
}

pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Resp {
    pub fn ok(body: impl Into<String>) -> Resp {
        Resp { status: 200, headers: vec![], body: body.into() }
    }

    pub fn status(status: u16, body: impl Into<String>) -> Resp {
        Resp { status, headers: vec![], body: body.into() }
    }

    pub fn header(mut self, k: &str, v: &str) -> Resp {
        self.headers.push((k.into(), v.into()));
        self
    }
}

type Handler = Arc<dyn Fn(&Req) -> Pin<Box<dyn Future<Output = Resp> + Send>> + Send + Sync>;

pub struct Responder {
    pub url: String,
    seen: Arc<Mutex<Vec<Req>>>,
}

impl Responder {
    /// Starts a responder whose answers come from `handler` (synchronous).
    pub async fn start(handler: impl Fn(&Req) -> Resp + Send + Sync + 'static) -> Responder {
        let handler = Arc::new(handler);
        Self::start_async(move |r| {
            let resp = handler(r);
            Box::pin(async move { resp })
        })
        .await
    }

    /// Starts a responder whose handler may wait (to play a silent endpoint).
    pub async fn start_async(
        handler: impl Fn(&Req) -> Pin<Box<dyn Future<Output = Resp> + Send>> + Send + Sync + 'static,
    ) -> Responder {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let handler: Handler = Arc::new(handler);
        let seen2 = seen.clone();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = listener.accept().await {
                let (handler, seen) = (handler.clone(), seen2.clone());
                tokio::spawn(async move {
                    let Some(req) = read_request(&mut s).await else { return };
                    seen.lock().unwrap().push(req.clone());
                    let resp = handler(&req).await;
                    let mut out = format!(
                        "HTTP/1.1 {} X\r\ncontent-length: {}\r\nconnection: close\r\n",
                        resp.status,
                        resp.body.len()
                    );
                    for (k, v) in &resp.headers {
                        out.push_str(&format!("{k}: {v}\r\n"));
                    }
                    out.push_str("\r\n");
                    if req.method != "HEAD" {
                        out.push_str(&resp.body);
                    }
                    let _ = s.write_all(out.as_bytes()).await;
                    let _ = s.shutdown().await;
                });
            }
        });
        Responder { url, seen }
    }

    /// Every request so far, in order.
    pub fn requests(&self) -> Vec<Req> {
        self.seen.lock().unwrap().clone()
    }

    /// The requests whose path starts with `prefix`.
    pub fn requests_to(&self, prefix: &str) -> Vec<Req> {
        self.requests().into_iter().filter(|r| r.path().starts_with(prefix)).collect()
    }
}

async fn read_request(s: &mut tokio::net::TcpStream) -> Option<Req> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        let n = s.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let mut lines = head.split("\r\n");
    let mut first = lines.next()?.split(' ');
    let (method, target) = (first.next()?.to_string(), first.next()?.to_string());
    let headers: HashMap<String, String> =
        lines.filter_map(|l| l.split_once(':')).map(|(k, v)| (k.trim().to_lowercase(), v.trim().to_string())).collect();
    let len: usize = headers.get("content-length").and_then(|v| v.parse().ok()).unwrap_or(0);
    let mut body = buf[head_end + 4..].to_vec();
    while body.len() < len {
        let n = s.read(&mut chunk).await.ok()?;
        if n == 0 {
            break;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    Some(Req { method, target, headers, body: String::from_utf8_lossy(&body).to_string() })
}

/// What a bucket listing of nothing looks like, for a fake S3's ListObjectsV2.
pub const EMPTY_LISTING: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\
    <ListBucketResult><Name>b</Name><KeyCount>0</KeyCount><IsTruncated>false</IsTruncated></ListBucketResult>";
