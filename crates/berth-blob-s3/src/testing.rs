//! A real S3-compatible server for tests: a throwaway single-node Garage started by
//! `scripts/garage-test-server.sh` once per test process (the script stops it when the
//! process exits), with a fresh bucket per test. Compiled only with the `testing` feature,
//! which the test suites of this crate and of the `berth` binary turn on.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use crate::S3Options;

pub struct Garage {
    pub endpoint: String,
    pub region: String,
    pub access_key: String,
    pub secret_key: String,
    config: PathBuf,
    bin: PathBuf,
}

fn find_binary() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("GARAGE_BIN") {
        return Some(PathBuf::from(p));
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    let home = std::env::var_os("HOME").map(|h| Path::new(&h).join(".cargo/bin"));
    std::env::split_paths(&path).chain(home).map(|d| d.join("garage")).find(|p| p.is_file())
}

fn start(bin: &Path) -> Garage {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/garage-test-server.sh");
    let mut child = Command::new("bash")
        .arg(&script)
        .arg("--watch")
        .arg(std::process::id().to_string())
        .env("GARAGE_BIN", bin)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("run scripts/garage-test-server.sh");
    let mut vars = HashMap::new();
    for line in BufReader::new(child.stdout.take().unwrap()).lines() {
        let line = line.unwrap();
        if line == "READY" {
            break;
        }
        if let Some((k, v)) = line.split_once('=') {
            vars.insert(k.to_string(), v.to_string());
        }
    }
    assert!(vars.contains_key("GARAGE_ENDPOINT"), "garage-test-server.sh failed (see its stderr above)");
    // The script keeps running (and stops Garage) until this process exits.
    std::mem::forget(child);
    Garage {
        endpoint: vars["GARAGE_ENDPOINT"].clone(),
        region: vars["GARAGE_REGION"].clone(),
        access_key: vars["GARAGE_ACCESS_KEY"].clone(),
        secret_key: vars["GARAGE_SECRET_KEY"].clone(),
        config: vars["GARAGE_CONFIG"].clone().into(),
        bin: bin.to_path_buf(),
    }
}

/// The shared server, or `None` (test skipped) when Garage is not installed and this
/// is not CI. In CI (`CI=true`) a missing Garage fails the test.
pub fn garage() -> Option<&'static Garage> {
    static GARAGE: OnceLock<Option<Garage>> = OnceLock::new();
    GARAGE
        .get_or_init(|| match find_binary() {
            Some(bin) => Some(start(&bin)),
            None if std::env::var("CI").as_deref() == Ok("true") => panic!(
                "garage is not installed but CI=true: run scripts/test.sh, or \
                 cargo install garage --locked --no-default-features --features bundled-libs,sqlite"
            ),
            None => None,
        })
        .as_ref()
}

impl Garage {
    /// Runs the `garage` command line against this server.
    pub fn cli(&self, args: &[&str]) {
        let out = Command::new(&self.bin).arg("-c").arg(&self.config).args(args).output().unwrap();
        assert!(out.status.success(), "garage {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    }

    /// A new bucket the test key may read and write.
    pub fn bucket(&self, tag: &str) -> String {
        static N: AtomicU32 = AtomicU32::new(0);
        let name = format!("t-{tag}-{}-{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed));
        self.cli(&["bucket", "create", &name]);
        self.cli(&["bucket", "allow", "--read", "--write", "--owner", &name, "--key", &self.access_key]);
        name
    }

    pub fn options(&self, bucket: &str) -> S3Options {
        S3Options {
            endpoint: self.endpoint.clone(),
            region: self.region.clone(),
            bucket: bucket.to_string(),
            prefix: "some/prefix".into(),
            access_key: self.access_key.clone(),
            secret_key: self.secret_key.clone(),
            path_style: true,
            timeout: Duration::from_secs(30),
            ..S3Options::default()
        }
    }
}
