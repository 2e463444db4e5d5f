//! The HTTPS listener's certificate and key: loaded from PEM files and checked to belong
//! together, then swapped in place on SIGHUP or when the files change. Each handshake asks
//! the resolver for the current pair, so established connections keep theirs and new ones
//! get the new one, with no restart and no dropped connection.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime};

use rustls::ServerConfig;
use rustls::pki_types::PrivateKeyDer;
use rustls::pki_types::pem::PemObject;
use rustls::server::{ClientHello, ResolvesServerCert, ServerSessionMemoryCache, StoresServerSessions};
use rustls::sign::CertifiedKey;

/// What is wrong with the certificate/key pair; the caller names its configuration keys.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CertError {
    #[error("{0}")]
    Cert(String),
    #[error("{0}")]
    Key(String),
    /// The key is not the one the certificate was issued for.
    #[error("the private key in {key} does not belong to the certificate in {cert}")]
    Mismatch { cert: String, key: String },
}

/// Loads and checks the pair: the chain (leaf first) and its private key (PKCS#8, PKCS#1
/// or SEC1 PEM).
pub fn load_pair(cert: &Path, key: &Path) -> Result<CertifiedKey, CertError> {
    let chain = crate::read_certs(cert).map_err(CertError::Cert)?;
    let pem = std::fs::read(key).map_err(|e| CertError::Key(format!("cannot read {}: {e}", key.display())))?;
    let der = PrivateKeyDer::from_pem_slice(&pem)
        .map_err(|e| CertError::Key(format!("{} holds no PEM private key (PKCS#8, RSA or EC): {e}", key.display())))?;
    let signing = crate::provider()
        .key_provider
        .load_private_key(der)
        .map_err(|e| CertError::Key(format!("{}: unusable private key: {e}", key.display())))?;
    let pair = CertifiedKey::new(chain, signing);
    match pair.keys_match() {
        Ok(()) => Ok(pair),
        Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::KeyMismatch)) => {
            Err(CertError::Mismatch { cert: cert.display().to_string(), key: key.display().to_string() })
        }
        Err(e) => Err(CertError::Cert(format!("{}: unusable certificate: {e}", cert.display()))),
    }
}

/// The certificate every new handshake gets, replaceable while serving.
#[derive(Debug)]
pub struct ReloadingCert {
    cert_path: PathBuf,
    key_path: PathBuf,
    current: RwLock<Arc<CertifiedKey>>,
    /// Sessions clients may resume. Replaced with the certificate: a resumed session
    /// carries the certificate of its first handshake, so after a reload every new
    /// connection makes a full handshake and sees the new one.
    sessions: RwLock<Arc<ServerSessionMemoryCache>>,
    /// The files' metadata when last looked at, so a change is noticed once.
    seen: Mutex<[Option<Stamp>; 2]>,
}

/// Enough of a file's metadata to notice a replacement: a rename (new inode), an
/// in-place rewrite (mtime, length) or a Kubernetes secret's symlink swap (metadata is
/// read through symlinks).
#[derive(Debug, Clone, PartialEq)]
struct Stamp {
    ino: u64,
    len: u64,
    modified: Option<SystemTime>,
}

fn stamp(p: &Path) -> Option<Stamp> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(p).ok()?;
    Some(Stamp { ino: m.ino(), len: m.len(), modified: m.modified().ok() })
}

impl ReloadingCert {
    pub fn load(cert: &Path, key: &Path) -> Result<Arc<Self>, CertError> {
        let seen = [stamp(cert), stamp(key)];
        let pair = load_pair(cert, key)?;
        Ok(Arc::new(ReloadingCert {
            cert_path: cert.to_path_buf(),
            key_path: key.to_path_buf(),
            current: RwLock::new(Arc::new(pair)),
            sessions: RwLock::new(new_session_cache()),
            seen: Mutex::new(seen),
        }))
    }

    /// Loads the files again and, if they hold a good pair, serves it from the next
    /// handshake on. On failure the previous pair stays.
    pub fn reload(&self) -> Result<(), CertError> {
        let seen = [stamp(&self.cert_path), stamp(&self.key_path)];
        *self.seen.lock().unwrap_or_else(|p| p.into_inner()) = seen;
        let pair = load_pair(&self.cert_path, &self.key_path)?;
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(pair);
        *self.sessions.write().unwrap_or_else(|p| p.into_inner()) = new_session_cache();
        Ok(())
    }

    /// Reloads when either file changed since last seen. `Ok(true)`: a new pair is served.
    /// A pair caught half-replaced (new certificate, old key) fails here and is tried again
    /// once the other file changes too.
    pub fn reload_if_changed(&self) -> Result<bool, CertError> {
        let now = [stamp(&self.cert_path), stamp(&self.key_path)];
        if *self.seen.lock().unwrap_or_else(|p| p.into_inner()) == now {
            return Ok(false);
        }
        self.reload().map(|()| true)
    }

    /// TLS 1.3 and 1.2 with rustls's default (forward-secret, AEAD-only) suites, HTTP/2
    /// offered first via ALPN, certificates from this resolver.
    pub fn server_config(self: &Arc<Self>) -> Arc<ServerConfig> {
        let mut cfg = ServerConfig::builder_with_provider(crate::provider())
            .with_safe_default_protocol_versions()
            .expect("ring supports the default protocol versions")
            .with_no_client_auth()
            .with_cert_resolver(self.clone());
        cfg.session_storage = self.clone();
        cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Arc::new(cfg)
    }

    /// Reloads on SIGHUP and when the files change (looked at every `every`), logging what
    /// happened. Runs until the task is aborted.
    pub fn spawn_watcher(self: Arc<Self>, every: Duration) -> tokio::task::JoinHandle<()> {
        use tokio::signal::unix::{SignalKind, signal};
        let mut hup = signal(SignalKind::hangup()).ok();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                let outcome = tokio::select! {
                    _ = tick.tick() => self.reload_if_changed(),
                    Some(()) = async { match hup.as_mut() { Some(h) => h.recv().await, None => std::future::pending().await } } => {
                        self.reload().map(|()| true)
                    }
                };
                match outcome {
                    Ok(true) => {
                        tracing::info!(cert = %self.cert_path.display(), "TLS certificate reloaded; new connections use it")
                    }
                    Ok(false) => {}
                    Err(e) => {
                        tracing::warn!(error = %e, "TLS certificate not reloaded; still serving the previous one")
                    }
                }
            }
        })
    }

    /// The pair new handshakes get.
    pub fn current(&self) -> Arc<CertifiedKey> {
        self.current.read().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

impl ResolvesServerCert for ReloadingCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current())
    }
}

impl StoresServerSessions for ReloadingCert {
    fn put(&self, key: Vec<u8>, value: Vec<u8>) -> bool {
        self.session_cache().put(key, value)
    }
    fn get(&self, key: &[u8]) -> Option<Vec<u8>> {
        self.session_cache().get(key)
    }
    fn take(&self, key: &[u8]) -> Option<Vec<u8>> {
        self.session_cache().take(key)
    }
    fn can_cache(&self) -> bool {
        true
    }
}

impl ReloadingCert {
    fn session_cache(&self) -> Arc<ServerSessionMemoryCache> {
        self.sessions.read().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// rustls's default size.
fn new_session_cache() -> Arc<ServerSessionMemoryCache> {
    ServerSessionMemoryCache::new(256)
}

#[cfg(test)]
mod tests;
