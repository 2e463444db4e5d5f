//! One RESP2 connection: write a command as an array of bulk strings, read one reply.

use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use crate::RedisError;
use crate::url::{Auth, Kind, Target};

/// Replies larger than this are refused: Berth stores counters and short tokens, so a
/// huge reply means a wrong server or a corrupt stream.
const MAX_BULK: usize = 16 * 1024 * 1024;
const MAX_DEPTH: usize = 8;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Nil,
    Int(i64),
    /// A simple or bulk string.
    Str(Vec<u8>),
    Array(Vec<Value>),
    Error(String),
}

impl Value {
    pub fn as_int(&self) -> Option<i64> {
        match self {
            Value::Int(i) => Some(*i),
            Value::Str(s) => std::str::from_utf8(s).ok()?.parse().ok(),
            _ => None,
        }
    }
}

/// A plain TCP or a TLS stream.
trait Io: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Io for T {}

pub(crate) struct Conn {
    stream: BufReader<Box<dyn Io>>,
}

impl Conn {
    /// `tls`: the connector when the target is `rediss`; the server's certificate must
    /// name the host in `addr`.
    async fn connect(addr: &str, tls: Option<&TlsConnector>) -> Result<Conn, RedisError> {
        let s = TcpStream::connect(addr).await.map_err(|e| RedisError::Io(format!("connecting to {addr}: {e}")))?;
        let _ = s.set_nodelay(true);
        let stream: Box<dyn Io> = match tls {
            None => Box::new(s),
            Some(tls) => {
                let host = addr.rsplit_once(':').map_or(addr, |(h, _)| h).trim_matches(['[', ']']);
                let name = rustls::pki_types::ServerName::try_from(host.to_owned())
                    .map_err(|e| RedisError::Config(format!("{host:?} is not a host name for TLS: {e}")))?;
                let s = tls
                    .connect(name, s)
                    .await
                    .map_err(|e| RedisError::Io(format!("TLS handshake with {addr}: {}", describe(&e))))?;
                Box::new(s)
            }
        };
        Ok(Conn { stream: BufReader::new(stream) })
    }

    /// Connects to the target's current master, authenticated and on the right database.
    pub(crate) async fn open(target: &Target, tls: Option<&TlsConnector>) -> Result<Conn, RedisError> {
        match &target.kind {
            Kind::Direct { addr, auth, db } => {
                let mut c = Conn::connect(addr, tls).await?;
                c.setup(auth.as_ref(), *db).await?;
                Ok(c)
            }
            Kind::Sentinel { sentinels, master, auth, db } => {
                let mut last = RedisError::Io("no sentinel given".into());
                for s in sentinels {
                    match Conn::via_sentinel(s, master, auth.as_ref(), *db, tls).await {
                        Ok(c) => return Ok(c),
                        Err(e) => last = e,
                    }
                }
                Err(last)
            }
        }
    }

    async fn via_sentinel(
        sentinel: &str,
        master: &str,
        auth: Option<&Auth>,
        db: u32,
        tls: Option<&TlsConnector>,
    ) -> Result<Conn, RedisError> {
        let mut s = Conn::connect(sentinel, tls).await?;
        let addr = match s.call(&[b"SENTINEL", b"get-master-addr-by-name", master.as_bytes()]).await? {
            Value::Array(v) if v.len() == 2 => match (&v[0], &v[1]) {
                (Value::Str(h), Value::Str(p)) => {
                    format!("{}:{}", String::from_utf8_lossy(h), String::from_utf8_lossy(p))
                }
                _ => return Err(RedisError::Protocol(format!("sentinel {sentinel}: odd master address {v:?}"))),
            },
            Value::Nil => return Err(RedisError::Io(format!("sentinel {sentinel} does not know master {master:?}"))),
            Value::Error(e) => return Err(RedisError::Server(format!("sentinel {sentinel}: {e}"))),
            other => return Err(RedisError::Protocol(format!("sentinel {sentinel}: {other:?}"))),
        };
        let mut c = Conn::connect(&addr, tls).await?;
        c.setup(auth, db).await?;
        // Right after a failover the sentinel may still name the old master, now a replica.
        match c.call(&[b"ROLE"]).await? {
            Value::Array(v) if v.first() == Some(&Value::Str(b"master".to_vec())) => Ok(c),
            other => Err(RedisError::Io(format!("{addr} (named by sentinel {sentinel}) is not a master: {other:?}"))),
        }
    }

    async fn setup(&mut self, auth: Option<&Auth>, db: u32) -> Result<(), RedisError> {
        if let Some(a) = auth {
            let reply = match &a.user {
                Some(u) => self.call(&[b"AUTH", u.as_bytes(), a.password.as_bytes()]).await?,
                None => self.call(&[b"AUTH", a.password.as_bytes()]).await?,
            };
            if let Value::Error(e) = reply {
                return Err(RedisError::Server(format!("authentication failed: {e}")));
            }
        }
        if db != 0
            && let Value::Error(e) = self.call(&[b"SELECT", db.to_string().as_bytes()]).await?
        {
            return Err(RedisError::Server(format!("SELECT {db}: {e}")));
        }
        Ok(())
    }

    pub(crate) async fn call(&mut self, args: &[&[u8]]) -> Result<Value, RedisError> {
        let mut buf = Vec::with_capacity(16 + args.iter().map(|a| a.len() + 16).sum::<usize>());
        buf.extend_from_slice(format!("*{}\r\n", args.len()).as_bytes());
        for a in args {
            buf.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
            buf.extend_from_slice(a);
            buf.extend_from_slice(b"\r\n");
        }
        self.stream.get_mut().write_all(&buf).await.map_err(io)?;
        self.read(0).await
    }

    async fn line(&mut self) -> Result<Vec<u8>, RedisError> {
        let mut line = Vec::new();
        let n = (&mut self.stream).take(64 * 1024).read_until(b'\n', &mut line).await.map_err(io)?;
        if n == 0 {
            return Err(RedisError::Io("connection closed by the server".into()));
        }
        if !line.ends_with(b"\r\n") {
            return Err(RedisError::Protocol("reply line not terminated by CRLF".into()));
        }
        line.truncate(line.len() - 2);
        Ok(line)
    }

    fn read(&mut self, depth: usize) -> std::pin::Pin<Box<dyn Future<Output = Result<Value, RedisError>> + Send + '_>> {
        Box::pin(async move {
            let line = self.line().await?;
            let (kind, rest) = line.split_first().ok_or_else(|| RedisError::Protocol("empty reply line".into()))?;
            let text = || String::from_utf8_lossy(rest).into_owned();
            let number = || {
                std::str::from_utf8(rest)
                    .ok()
                    .and_then(|s| s.parse::<i64>().ok())
                    .ok_or_else(|| RedisError::Protocol(format!("bad length or integer {:?}", text())))
            };
            match kind {
                b'+' => Ok(Value::Str(rest.to_vec())),
                b'-' => Ok(Value::Error(text())),
                b':' => Ok(Value::Int(number()?)),
                b'$' => {
                    let n = number()?;
                    if n < 0 {
                        return Ok(Value::Nil);
                    }
                    let n = n as usize;
                    if n > MAX_BULK {
                        return Err(RedisError::Protocol(format!("bulk reply of {n} bytes is too large")));
                    }
                    let mut data = vec![0u8; n + 2];
                    self.stream.read_exact(&mut data).await.map_err(io)?;
                    if !data.ends_with(b"\r\n") {
                        return Err(RedisError::Protocol("bulk reply not terminated by CRLF".into()));
                    }
                    data.truncate(n);
                    Ok(Value::Str(data))
                }
                b'*' => {
                    let n = number()?;
                    if n < 0 {
                        return Ok(Value::Nil);
                    }
                    if depth >= MAX_DEPTH || n as usize > 1024 * 1024 {
                        return Err(RedisError::Protocol("array reply too deep or too long".into()));
                    }
                    let mut items = Vec::with_capacity(n as usize);
                    for _ in 0..n {
                        items.push(self.read(depth + 1).await?);
                    }
                    Ok(Value::Array(items))
                }
                other => Err(RedisError::Protocol(format!("unknown reply type {:?}", *other as char))),
            }
        })
    }
}

/// The handshake error with the rustls reason inside it ("invalid peer certificate: …").
fn describe(e: &std::io::Error) -> String {
    match e.get_ref() {
        Some(inner) if !e.to_string().contains(&inner.to_string()) => format!("{e}: {inner}"),
        _ => e.to_string(),
    }
}

fn io(e: std::io::Error) -> RedisError {
    RedisError::Io(e.to_string())
}
