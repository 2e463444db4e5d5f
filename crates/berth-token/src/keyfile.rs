//! The signing key file, shared by every instance that starts on the same data directory.
//! Several instances may start at the same moment on a fresh shared directory: each may
//! find no key and generate one, but only one key may win and every instance must end
//! up using it. A key file is published only complete and durable: written to a private
//! temporary name, fsynced, then hard-linked to its final name, which fails if another
//! instance got there first; the loser then reads the winner's (complete) file.

use std::io::Write as _;
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _};
use std::path::{Path, PathBuf};

use crate::{TokenError, TokenIssuer};

/// Where the key in use came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// It was already there.
    Loaded,
    /// This process generated and published it.
    Generated,
    /// Another process published one while this one was generating its own.
    Adopted,
}

#[derive(Debug, thiserror::Error)]
pub enum KeyFileError {
    #[error("cannot read {0}: {1}")]
    Read(PathBuf, std::io::Error),
    #[error("cannot write {0}: {1}")]
    Write(PathBuf, std::io::Error),
    #[error("{0}: {1}")]
    Key(PathBuf, TokenError),
}

/// Loads the key at `path`; when there is none and `generate` is set, generates a P-256
/// key and publishes it there, or adopts the one another process published first.
pub fn load_or_generate(path: &Path, generate: bool) -> Result<(TokenIssuer, Origin), KeyFileError> {
    match read(path) {
        Err(KeyFileError::Read(_, e)) if e.kind() == std::io::ErrorKind::NotFound && generate => {}
        other => return other.map(|k| (k, Origin::Loaded)),
    }
    let issuer = TokenIssuer::generate().map_err(|e| KeyFileError::Key(path.to_path_buf(), e))?;
    let pem = issuer.to_pem().map_err(|e| KeyFileError::Key(path.to_path_buf(), e))?;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let write_err = |p: &Path| {
        let p = p.to_path_buf();
        move |e| KeyFileError::Write(p, e)
    };
    std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir).map_err(write_err(dir))?;
    let tmp = dir.join(format!(
        ".{}.{}.{:x}.tmp",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("key"),
        std::process::id(),
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos()),
    ));
    let written = (|| {
        let mut f = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&tmp)?;
        f.write_all(pem.as_bytes())?;
        f.sync_all()
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(KeyFileError::Write(tmp, e));
    }
    // A hard link never replaces an existing name, unlike rename.
    let linked = std::fs::hard_link(&tmp, path);
    let _ = std::fs::remove_file(&tmp);
    match linked {
        Ok(()) => {
            // The new name must survive a crash, or a restart would generate another key.
            std::fs::File::open(dir).and_then(|d| d.sync_all()).map_err(write_err(dir))?;
            Ok((issuer, Origin::Generated))
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => read(path).map(|k| (k, Origin::Adopted)),
        Err(e) => Err(KeyFileError::Write(path.to_path_buf(), e)),
    }
}

fn read(path: &Path) -> Result<TokenIssuer, KeyFileError> {
    let pem = std::fs::read_to_string(path).map_err(|e| KeyFileError::Read(path.to_path_buf(), e))?;
    TokenIssuer::from_pem(&pem).map_err(|e| KeyFileError::Key(path.to_path_buf(), e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt as _;
    use std::sync::{Arc, Barrier};

    #[test]
    fn simultaneous_generators_all_end_up_with_one_key() {
        for _ in 0..20 {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("secret/private_key.pem");
            let n = 6;
            let barrier = Arc::new(Barrier::new(n));
            let results: Vec<(String, Origin)> = std::thread::scope(|s| {
                let handles: Vec<_> = (0..n)
                    .map(|_| {
                        let (barrier, path) = (barrier.clone(), path.clone());
                        s.spawn(move || {
                            barrier.wait();
                            let (k, origin) = load_or_generate(&path, true).unwrap();
                            (k.kid().to_string(), origin)
                        })
                    })
                    .collect();
                handles.into_iter().map(|h| h.join().unwrap()).collect()
            });
            let on_disk = load_or_generate(&path, false).unwrap().0;
            assert!(results.iter().all(|(kid, _)| kid == on_disk.kid()), "{results:?}");
            assert_eq!(results.iter().filter(|(_, o)| *o == Origin::Generated).count(), 1, "{results:?}");
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
            let mode = std::fs::metadata(path.parent().unwrap()).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o700);
            let names: Vec<_> =
                std::fs::read_dir(path.parent().unwrap()).unwrap().map(|e| e.unwrap().file_name()).collect();
            assert_eq!(names, ["private_key.pem"], "no temporary file is left behind");
        }
    }

    #[test]
    fn an_existing_key_is_used_and_a_missing_configured_one_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.pem");
        let (first, origin) = load_or_generate(&path, true).unwrap();
        assert_eq!(origin, Origin::Generated);
        let (again, origin) = load_or_generate(&path, true).unwrap();
        assert_eq!((again.kid(), origin), (first.kid(), Origin::Loaded));
        let missing = dir.path().join("missing.pem");
        let err = load_or_generate(&missing, false).unwrap_err().to_string();
        assert!(err.starts_with(&format!("cannot read {}", missing.display())), "{err}");
        assert!(!missing.exists());
        std::fs::write(&missing, "garbage").unwrap();
        let err = load_or_generate(&missing, true).unwrap_err().to_string();
        assert!(err.contains("missing.pem") && err.contains("not PEM"), "{err}");
    }
}
