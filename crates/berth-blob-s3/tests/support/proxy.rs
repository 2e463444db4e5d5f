//! A TCP proxy in front of the real server that injects transport faults: answers
//! `503 SlowDown` or hangs up on new connections, and cuts responses off mid-body.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

#[derive(Default)]
struct Faults {
    /// New connections to answer with 503 SlowDown (after reading the request head).
    slow_down: AtomicU32,
    /// New connections to close after reading the request head, without an answer.
    hang_up: AtomicU32,
    /// Connections to cut once they carried more than `cut_after` bytes to the client.
    cuts: AtomicU32,
    cut_after: AtomicUsize,
    /// Faults injected so far.
    injected: AtomicU32,
}

pub struct Proxy {
    pub url: String,
    faults: Arc<Faults>,
}

fn take(n: &AtomicU32) -> bool {
    n.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |v| v.checked_sub(1)).is_ok()
}

async fn read_head(s: &mut TcpStream) -> Vec<u8> {
    let mut head = Vec::new();
    let mut buf = [0u8; 4096];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match s.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    head
}

impl Proxy {
    /// Proxies to `upstream` (`http://host:port`).
    pub async fn start(upstream: &str) -> Proxy {
        let upstream = upstream.trim_start_matches("http://").to_string();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let faults = Arc::new(Faults::default());
        let f = faults.clone();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                tokio::spawn(serve(client, upstream.clone(), f.clone()));
            }
        });
        Proxy { url, faults }
    }

    /// The next `slow_down` new connections get a 503 SlowDown, the `hang_up` after
    /// those are closed without an answer.
    pub fn fail_next_connections(&self, slow_down: u32, hang_up: u32) {
        self.faults.slow_down.store(slow_down, Ordering::SeqCst);
        self.faults.hang_up.store(hang_up, Ordering::SeqCst);
    }

    /// The next `times` connections that carry more than `after` bytes to the client
    /// are cut there.
    pub fn cut_responses(&self, times: u32, after: usize) {
        self.faults.cut_after.store(after, Ordering::SeqCst);
        self.faults.cuts.store(times, Ordering::SeqCst);
    }

    pub fn injected(&self) -> u32 {
        self.faults.injected.load(Ordering::SeqCst)
    }
}

async fn serve(mut client: TcpStream, upstream: String, f: Arc<Faults>) {
    let mut first = Vec::new();
    if f.slow_down.load(Ordering::SeqCst) > 0 || f.hang_up.load(Ordering::SeqCst) > 0 {
        first = read_head(&mut client).await;
        if take(&f.slow_down) {
            f.injected.fetch_add(1, Ordering::SeqCst);
            let body = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\
                <Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>";
            let resp = format!(
                "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/xml\r\nContent-Length: {}\r\n\
                 Connection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = client.write_all(resp.as_bytes()).await;
            return;
        }
        if take(&f.hang_up) {
            f.injected.fetch_add(1, Ordering::SeqCst);
            return;
        }
    }
    let Ok(mut server) = TcpStream::connect(&upstream).await else { return };
    if server.write_all(&first).await.is_err() {
        return;
    }
    let (mut cr, mut cw) = client.into_split();
    let (mut sr, mut sw) = server.into_split();
    let up = tokio::spawn(async move {
        let _ = tokio::io::copy(&mut cr, &mut sw).await;
        let _ = sw.shutdown().await;
    });
    let mut carried = 0usize;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match sr.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        carried += n;
        let limit = f.cut_after.load(Ordering::SeqCst);
        if carried > limit && f.cuts.load(Ordering::SeqCst) > 0 && take(&f.cuts) {
            f.injected.fetch_add(1, Ordering::SeqCst);
            let keep = n.saturating_sub(carried - limit);
            let _ = cw.write_all(&buf[..keep]).await;
            break;
        }
        if cw.write_all(&buf[..n]).await.is_err() {
            break;
        }
    }
    up.abort();
}
