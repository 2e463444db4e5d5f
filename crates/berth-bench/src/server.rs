//! Starting, probing and stopping the registries under test, and reading
//! their resource use from /proc.

use std::fs::{self, File};
use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use hyper::{Method, StatusCode};

use crate::auth::Creds;
use crate::http::Conn;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Berth,
    Distribution,
    /// Already running somewhere on loopback; no process metrics.
    External,
}

#[derive(Clone, Debug)]
pub struct Spec {
    pub kind: Kind,
    pub program: PathBuf,
    pub url_addr: Option<SocketAddr>,
    /// Berth in Harbor mode (users, projects, token service); clients then use tokens.
    pub harbor: bool,
}

/// The administrator password a Harbor-mode Berth is started with.
const ADMIN_PASSWORD: &str = "Bench-Admin-12345";

impl Spec {
    /// `berth:PATH`, `distribution:PATH`, `url:http://127.0.0.1:PORT`, or a bare
    /// PATH taking the slot's default kind; `none` → `None`.
    pub fn parse(s: &str, default: Kind) -> Result<Option<Spec>> {
        if s == "none" {
            return Ok(None);
        }
        let (kind, rest) = if let Some(r) = s.strip_prefix("berth:") {
            (Kind::Berth, r)
        } else if let Some(r) = s.strip_prefix("distribution:") {
            (Kind::Distribution, r)
        } else if let Some(r) = s.strip_prefix("url:") {
            (Kind::External, r)
        } else {
            (default, s)
        };
        if kind == Kind::External {
            let hostport = rest.strip_prefix("http://").unwrap_or(rest).trim_end_matches('/');
            let addr: SocketAddr =
                hostport.parse().with_context(|| format!("url: wants http://IP:PORT, got {rest}"))?;
            if !addr.ip().is_loopback() {
                bail!("only loopback servers are benchmarked, not {addr}");
            }
            return Ok(Some(Spec { kind, program: PathBuf::new(), url_addr: Some(addr), harbor: false }));
        }
        Ok(Some(Spec { kind, program: PathBuf::from(rest), url_addr: None, harbor: false }))
    }

    pub fn describe(&self) -> String {
        match self.kind {
            Kind::Berth if self.harbor => format!("Berth, Harbor mode with tokens ({})", self.program.display()),
            Kind::Berth => format!("Berth, open mode ({})", self.program.display()),
            Kind::Distribution => format!("Distribution ({})", self.program.display()),
            Kind::External => format!("external server at {}", self.url_addr.expect("url")),
        }
    }
}

pub struct Server {
    spec: Spec,
    pub addr: SocketAddr,
    pub pid: Option<u32>,
    pub startup: Option<Duration>,
    child: Option<Child>,
    dir: Option<PathBuf>,
    log: Option<PathBuf>,
    /// Set when clients must fetch tokens (Harbor mode).
    pub creds: Option<Creds>,
}

static DIR_COUNTER: AtomicU32 = AtomicU32::new(0);

fn make_temp_dir(base: &Path) -> Result<PathBuf> {
    let n = DIR_COUNTER.fetch_add(1, Ordering::Relaxed);
    let dir = base.join(format!("berth-bench-{}-{n}", std::process::id()));
    fs::create_dir(&dir).with_context(|| format!("creating {}", dir.display()))?;
    Ok(dir)
}

fn free_port() -> Result<u16> {
    let l = TcpListener::bind("127.0.0.1:0")?;
    Ok(l.local_addr()?.port())
}

const START_TIMEOUT: Duration = Duration::from_secs(30);

impl Server {
    pub async fn start(spec: &Spec, tmp_base: &Path) -> Result<Server> {
        if spec.kind == Kind::External {
            let addr = spec.url_addr.expect("url");
            let mut s = Server {
                spec: spec.clone(),
                addr,
                pid: None,
                startup: None,
                child: None,
                dir: None,
                log: None,
                creds: None,
            };
            s.wait_ready(Instant::now()).await?;
            s.startup = None;
            return Ok(s);
        }
        let dir = make_temp_dir(tmp_base)?;
        let log = dir.join("server.log");
        let mut server = Server {
            spec: spec.clone(),
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            pid: None,
            startup: None,
            child: None,
            dir: Some(dir.clone()),
            log: Some(log),
            creds: spec.harbor.then(|| Creds { user: "admin".into(), password: ADMIN_PASSWORD.into() }),
        };
        fs::create_dir(dir.join("data"))?;
        server.launch().await?;
        Ok(server)
    }

    /// Stops the server gracefully (SIGTERM) and starts it again on the same data dir;
    /// `startup` then measures a restart.
    pub async fn restart(&mut self) -> Result<()> {
        if self.child.is_none() {
            bail!("not a server this tool started");
        }
        self.stop().await?;
        self.launch().await
    }

    /// SIGTERM, then SIGKILL if it has not exited within 10 s.
    pub async fn stop(&mut self) -> Result<()> {
        let Some(mut child) = self.child.take() else { return Ok(()) };
        let _ = Command::new("kill").arg("-TERM").arg(child.id().to_string()).status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if child.try_wait()?.is_some() {
                self.pid = None;
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        let _ = child.kill();
        let _ = child.wait();
        self.pid = None;
        bail!("server did not exit within 10 s of SIGTERM; killed")
    }

    async fn launch(&mut self) -> Result<()> {
        let dir = self.dir.clone().expect("own data dir");
        let log = self.log.clone().expect("own log");
        let data = dir.join("data");
        let log_file = File::options().create(true).append(true).open(&log)?;
        let mut cmd = Command::new(&self.spec.program);
        cmd.stdin(Stdio::null()).stderr(log_file.try_clone()?);
        let port = match self.spec.kind {
            Kind::Berth => {
                cmd.arg("serve").arg("--listen").arg("127.0.0.1:0").arg("--data-dir").arg(&data).stdout(Stdio::piped());
                // Open mode is what Distribution does (no authentication; Berth allows it on
                // loopback only); Harbor mode is what Harbor users run.
                cmd.env("BERTH_AUTH_MODE", if self.spec.harbor { "harbor" } else { "open" })
                    .env("BERTH_ADMIN_PASSWORD", ADMIN_PASSWORD);
                0
            }
            Kind::Distribution => {
                let port = free_port()?;
                let config = dir.join("config.yml");
                fs::write(&config, distribution_config(&data, port))?;
                cmd.arg("serve").arg(&config).stdout(log_file);
                port
            }
            Kind::External => unreachable!(),
        };
        let spawned_at = Instant::now();
        let mut child = cmd.spawn().with_context(|| format!("starting {}", self.spec.program.display()))?;
        self.pid = Some(child.id());
        let stdout = child.stdout.take();
        self.child = Some(child);
        self.addr = SocketAddr::from(([127, 0, 0, 1], port));
        self.startup = None;
        if let Some(stdout) = stdout {
            self.addr = self.read_listen_line(stdout).await?;
        }
        self.wait_ready(spawned_at).await
    }

    /// Berth announces its port with exactly one stdout line, `listening on ADDR`.
    async fn read_listen_line(&mut self, stdout: std::process::ChildStdout) -> Result<SocketAddr> {
        let (tx, rx) = tokio::sync::oneshot::channel::<String>();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            if let Some(Ok(first)) = lines.next() {
                let _ = tx.send(first);
            }
            // Keep draining so a chatty stdout never blocks the server.
            for _ in lines.by_ref() {}
        });
        let line = match tokio::time::timeout(START_TIMEOUT, rx).await {
            Ok(Ok(line)) => line,
            Ok(Err(_)) => bail!("server closed stdout without printing `listening on ADDR`{}", self.exit_info()),
            Err(_) => bail!("no `listening on ADDR` line within {START_TIMEOUT:?}{}", self.exit_info()),
        };
        let addr = line
            .strip_prefix("listening on ")
            .and_then(|a| a.trim().parse::<SocketAddr>().ok())
            .ok_or_else(|| anyhow!("unexpected first stdout line {line:?} (want `listening on IP:PORT`)"))?;
        if !addr.ip().is_loopback() {
            bail!("server listens on non-loopback {addr}");
        }
        Ok(addr)
    }

    /// Polls `GET /v2/` every millisecond until it answers: 200, or in Harbor mode the
    /// 401 challenge that starts a client's token flow. Then, in Harbor mode, checks that
    /// a `docker login` works (untimed: the first login after a start verifies the
    /// password hash once, whenever it comes).
    async fn wait_ready(&mut self, since: Instant) -> Result<()> {
        let deadline = since + START_TIMEOUT;
        let mut last = String::from("no answer");
        let ready = if self.creds.is_some() { StatusCode::UNAUTHORIZED } else { StatusCode::OK };
        while Instant::now() < deadline {
            self.check_alive()?;
            let mut conn = Conn::new(self.addr);
            let attempt = tokio::time::timeout(
                Duration::from_secs(1),
                conn.call(Method::GET, "/v2/", &[], crate::http::ReqBody::empty()),
            )
            .await;
            match attempt {
                Ok(Ok(r)) if r.status == ready => {
                    self.startup = Some(since.elapsed());
                    if let Some(c) = self.creds.clone() {
                        let login = async {
                            crate::auth::authorize(Some(&c), &mut conn, &[]).await?;
                            conn.call(Method::GET, "/v2/", &[], crate::http::ReqBody::empty())
                                .await?
                                .expect(StatusCode::OK, "GET /v2/ with a token")
                        };
                        tokio::time::timeout(START_TIMEOUT, login).await.context("docker login timed out")??;
                    }
                    return Ok(());
                }
                Ok(Ok(r)) => last = format!("GET /v2/ answered {}", r.describe()),
                Ok(Err(e)) => last = format!("{e:#}"),
                Err(_) => last = "GET /v2/ timed out".into(),
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        bail!("not ready within {START_TIMEOUT:?}: {last}{}", self.exit_info())
    }

    /// Errors out (with the log's tail) if the server process has exited.
    pub fn check_alive(&mut self) -> Result<()> {
        if let Some(child) = &mut self.child
            && let Some(status) = child.try_wait()?
        {
            bail!("server exited ({status}); log tail:\n{}", self.log_tail(20));
        }
        Ok(())
    }

    fn exit_info(&mut self) -> String {
        match self.check_alive() {
            Ok(()) => format!("; log tail:\n{}", self.log_tail(20)),
            Err(e) => format!("; {e:#}"),
        }
    }

    pub fn log_tail(&self, lines: usize) -> String {
        let Some(log) = &self.log else {
            return String::new();
        };
        let text = fs::read_to_string(log).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// Non-empty lines the server wrote to its log (stderr, and stdout for
    /// Distribution) that mention an error or panic.
    pub fn log_problems(&self, max: usize) -> Vec<String> {
        let Some(log) = &self.log else {
            return Vec::new();
        };
        let text = fs::read_to_string(log).unwrap_or_default();
        text.lines()
            .filter(|l| {
                let l = l.to_ascii_lowercase();
                l.contains("error") || l.contains("panic") || l.contains("fatal")
            })
            .take(max)
            .map(|l| strip_ansi(l).chars().take(300).collect())
            .collect()
    }

    /// The data dir of a server this tool started (for `berth vulndb import`).
    pub fn data_dir(&self) -> Option<PathBuf> {
        self.dir.as_ref().map(|d| d.join("data"))
    }

    pub fn cpu_seconds(&self) -> Option<f64> {
        self.pid.and_then(|p| proc_cpu_seconds(p).ok())
    }

    pub fn status_mib(&self, field: &str) -> Option<f64> {
        self.pid.and_then(|p| proc_status_kib(p, field).ok()).map(|k| k as f64 / 1024.0)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if let Some(dir) = self.dir.take() {
            let _ = fs::remove_dir_all(&dir);
        }
    }
}

/// Removes ANSI colour sequences (`ESC [ ... letter`) from a log line.
fn strip_ansi(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

fn distribution_config(data: &Path, port: u16) -> String {
    format!(
        "version: 0.1\n\
         log:\n  level: error\n  accesslog:\n    disabled: true\n\
         storage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\n  cache:\n    blobdescriptor: inmemory\n\
         http:\n  addr: 127.0.0.1:{port}\n",
        data.display()
    )
}

/// utime + stime of the whole process (all threads), in seconds.
pub fn proc_cpu_seconds(pid: u32) -> Result<f64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the parenthesised command name: state is field 3, utime 14, stime 15.
    let after = &stat[stat.rfind(')').ok_or_else(|| anyhow!("bad stat"))? + 1..];
    let f: Vec<&str> = after.split_whitespace().collect();
    let utime: u64 = f.get(11).ok_or_else(|| anyhow!("short stat"))?.parse()?;
    let stime: u64 = f.get(12).ok_or_else(|| anyhow!("short stat"))?.parse()?;
    // USER_HZ is 100 on every Linux ABI that matters (`getconf CLK_TCK`).
    Ok((utime + stime) as f64 / 100.0)
}

pub fn proc_status_kib(pid: u32, field: &str) -> Result<u64> {
    let status = fs::read_to_string(format!("/proc/{pid}/status"))?;
    for line in status.lines() {
        if let Some(rest) = line.strip_prefix(field).and_then(|r| r.strip_prefix(':')) {
            return Ok(rest.trim().trim_end_matches("kB").trim().parse()?);
        }
    }
    bail!("{field} not in /proc/{pid}/status")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ansi_sequences_are_stripped() {
        assert_eq!(strip_ansi("\x1b[2mtime\x1b[0m \x1b[33m WARN\x1b[0m msg"), "time  WARN msg");
    }

    #[test]
    fn specs_parse() {
        let s = Spec::parse("distribution:/usr/bin/docker-registry", Kind::Berth).unwrap().unwrap();
        assert_eq!(s.kind, Kind::Distribution);
        assert!(Spec::parse("none", Kind::Berth).unwrap().is_none());
        let s = Spec::parse("url:http://127.0.0.1:5000/", Kind::Berth).unwrap().unwrap();
        assert_eq!(s.url_addr, Some("127.0.0.1:5000".parse().unwrap()));
        assert!(Spec::parse("url:http://10.0.0.1:5000", Kind::Berth).is_err());
    }
}
