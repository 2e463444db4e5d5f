//! A PostgreSQL primary with a streaming standby, made with Debian's binaries on temp
//! dirs and free ports, for failover tests. The servers run as the `postgres` system user
//! (PostgreSQL refuses to run as root), so this needs root to start them.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

pub struct PgPair {
    _tmp: tempfile::TempDir,
    pub primary: Node,
    pub standby: Node,
}

pub struct Node {
    pub dir: PathBuf,
    pub port: u16,
}

fn bin(name: &str) -> Option<PathBuf> {
    let mut versions: Vec<PathBuf> =
        std::fs::read_dir("/usr/lib/postgresql").ok()?.flatten().map(|e| e.path()).collect();
    versions.sort();
    versions.into_iter().rev().map(|v| v.join("bin").join(name)).find(|p| p.exists())
}

fn as_postgres(tool: &str, args: &[&str]) -> String {
    let out = Command::new("runuser")
        .args(["-u", "postgres", "--"])
        .arg(bin(tool).expect("PostgreSQL binaries"))
        .args(args)
        .output()
        .expect("runuser");
    assert!(
        out.status.success(),
        "{tool} {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Whether this machine can run the pair (root, Debian's PostgreSQL); in CI it must.
pub fn available() -> bool {
    let root = unsafe { libc::geteuid() } == 0;
    let ok = root && bin("initdb").is_some() && bin("pg_basebackup").is_some();
    if !ok {
        assert_ne!(
            std::env::var("CI").as_deref(),
            Ok("true"),
            "failover tests need root and PostgreSQL's server binaries in CI"
        );
        eprintln!("skipped: failover tests need root and /usr/lib/postgresql/*/bin");
    }
    ok
}

impl Node {
    pub fn psql(&self, db: &str, sql: &str) -> Result<String, String> {
        let out = Command::new("psql")
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string(), "-U", "postgres", "-d", db])
            .args(["-v", "ON_ERROR_STOP=1", "-tA", "-c", sql])
            .output()
            .map_err(|e| e.to_string())?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        }
    }

    fn start(&self) {
        let log = self.dir.join("server.log");
        as_postgres("pg_ctl", &["-D", s(&self.dir), "-l", s(&log), "-w", "-t", "30", "start"]);
    }

    /// Like a crash: no shutdown checkpoint, connections cut.
    pub fn crash(&self) {
        as_postgres("pg_ctl", &["-D", s(&self.dir), "-m", "immediate", "-w", "stop"]);
    }

    pub fn stop_quietly(&self) {
        let _ = Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(bin("pg_ctl").unwrap())
            .args(["-D", s(&self.dir), "-m", "immediate", "-w", "stop"])
            .output();
    }

    pub fn restart(&self) {
        self.start();
    }
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

impl PgPair {
    /// Primary and standby, replicating; `synchronous`: a commit returns only once the
    /// standby has it (no acknowledged write is lost on failover). Creates database `berth`.
    pub fn start(synchronous: bool) -> PgPair {
        let tmp = tempfile::tempdir().unwrap();
        let owner = Command::new("chown").arg("postgres:postgres").arg(tmp.path()).status().unwrap();
        assert!(owner.success());
        let primary = Node { dir: tmp.path().join("primary"), port: free_port() };
        let standby = Node { dir: tmp.path().join("standby"), port: free_port() };
        as_postgres("initdb", &["-D", s(&primary.dir), "-U", "postgres", "--auth=trust", "--no-sync", "-E", "UTF8"]);
        let sync = if synchronous { "synchronous_standby_names = 'standby1'" } else { "" };
        let conf = format!(
            "port = {}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{}'\nwal_level = replica\n\
             max_wal_senders = 5\nhot_standby = on\nwal_keep_size = 64MB\nmax_connections = 60\n{sync}\n",
            primary.port,
            s(tmp.path())
        );
        append(&primary.dir.join("postgresql.conf"), &conf);
        append(&primary.dir.join("pg_hba.conf"), "host replication all 127.0.0.1/32 trust\n");
        primary.start();
        as_postgres(
            "pg_basebackup",
            &[
                "-h",
                "127.0.0.1",
                "-p",
                &primary.port.to_string(),
                "-U",
                "postgres",
                "-D",
                s(&standby.dir),
                "-R",
                "-X",
                "stream",
                "--no-sync",
            ],
        );
        append(
            &standby.dir.join("postgresql.auto.conf"),
            &format!(
                "port = {}\nprimary_conninfo = 'host=127.0.0.1 port={} user=postgres application_name=standby1'\n",
                standby.port, primary.port
            ),
        );
        standby.start();
        let pair = PgPair { _tmp: tmp, primary, standby };
        pair.primary.psql("postgres", "CREATE DATABASE berth").expect("create database");
        if synchronous {
            pair.wait_until_synchronous();
        }
        pair
    }

    fn wait_until_synchronous(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let state = self.primary.psql("postgres", "SELECT sync_state FROM pg_stat_replication").unwrap_or_default();
            if state == "sync" {
                return;
            }
            assert!(Instant::now() < deadline, "standby never became synchronous (state {state:?})");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// `postgres://` URL listing both nodes; connections go to whichever accepts writes.
    pub fn url(&self) -> String {
        format!(
            "postgres://postgres@127.0.0.1:{},127.0.0.1:{}/berth?target_session_attrs=read-write",
            self.primary.port, self.standby.port
        )
    }

    /// What a failover manager does: promote the standby and, since it now has no
    /// standby of its own, stop waiting for a synchronous one (it inherited the old
    /// primary's `synchronous_standby_names`; left set, every commit would wait forever).
    pub fn promote_standby(&self) {
        as_postgres("pg_ctl", &["-D", s(&self.standby.dir), "-w", "promote"]);
        self.standby
            .psql("postgres", "ALTER SYSTEM SET synchronous_standby_names = ''")
            .and_then(|_| self.standby.psql("postgres", "SELECT pg_reload_conf()"))
            .expect("relax synchronous replication on the new primary");
    }
}

impl Drop for PgPair {
    fn drop(&mut self) {
        self.primary.stop_quietly();
        self.standby.stop_quietly();
    }
}

fn append(path: &Path, text: &str) {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new().append(true).open(path).unwrap();
    f.write_all(text.as_bytes()).unwrap();
    let _ = Command::new("chown").arg("postgres:postgres").arg(path).status();
}

/// One PostgreSQL that accepts only TLS connections from 127.0.0.1 (`hostnossl … reject`),
/// serving the given certificate and key.
pub struct PgTls {
    _tmp: tempfile::TempDir,
    pub node: Node,
}

impl PgTls {
    pub fn start(cert_pem: &str, key_pem: &str) -> PgTls {
        let tmp = tempfile::tempdir().unwrap();
        let owner = Command::new("chown").arg("postgres:postgres").arg(tmp.path()).status().unwrap();
        assert!(owner.success());
        let node = Node { dir: tmp.path().join("db"), port: free_port() };
        as_postgres("initdb", &["-D", s(&node.dir), "-U", "postgres", "--auth=trust", "--no-sync", "-E", "UTF8"]);
        let conf = format!(
            "port = {}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{}'\nmax_connections = 40\n\
             ssl = on\nssl_cert_file = 'server.crt'\nssl_key_file = 'server.key'\n",
            node.port,
            s(tmp.path())
        );
        append(&node.dir.join("postgresql.conf"), &conf);
        let hba = node.dir.join("pg_hba.conf");
        std::fs::write(
            &hba,
            "local all all trust\nhostssl all all 127.0.0.1/32 trust\nhostnossl all all 127.0.0.1/32 reject\n",
        )
        .unwrap();
        let _ = Command::new("chown").arg("postgres:postgres").arg(&hba).status();
        let pg = PgTls { _tmp: tmp, node };
        pg.write_cert(cert_pem, key_pem);
        pg.node.start();
        pg.node.psql("postgres", "CREATE DATABASE berth").expect("create database");
        pg
    }

    fn write_cert(&self, cert_pem: &str, key_pem: &str) {
        use std::os::unix::fs::PermissionsExt;
        for (name, pem) in [("server.crt", cert_pem), ("server.key", key_pem)] {
            let p = self.node.dir.join(name);
            std::fs::write(&p, pem).unwrap();
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
            let _ = Command::new("chown").arg("postgres:postgres").arg(&p).status();
        }
    }

    /// New certificate files, then a configuration reload (PostgreSQL rereads them).
    pub fn replace_cert(&self, cert_pem: &str, key_pem: &str) {
        self.write_cert(cert_pem, key_pem);
        as_postgres("pg_ctl", &["-D", s(&self.node.dir), "reload"]);
    }

    /// `postgres://postgres@127.0.0.1:PORT/berth?<params>`
    pub fn url(&self, params: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/berth?{params}", self.node.port)
    }
}

impl Drop for PgTls {
    fn drop(&mut self) {
        self.node.stop_quietly();
    }
}
