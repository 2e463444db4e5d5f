//! The squashed filesystem of an image: layers applied in order with OCI whiteouts
//! (`.wh.<name>` removes a lower path, `.wh..wh..opq` empties a lower directory). Only what
//! the package readers need is kept: the bytes of package databases and metadata files,
//! and, for executables, the Go build information or cargo-auditable dependency list found
//! in them (never the binaries).

use std::collections::BTreeMap;
use std::io::{BufRead, Read};

use crate::{auditable, gobin};

/// What is kept of one file.
#[derive(Debug, Clone)]
pub enum Kept {
    Bytes(Vec<u8>),
    Go(gobin::BuildInfo),
    /// A Rust executable's cargo-auditable crates, or why they could not be read.
    Rust(Result<Vec<auditable::Crate>, String>),
}

#[derive(Debug, Default)]
pub struct Squashed {
    /// Path (no leading `/` or `./`) → what was kept.
    pub files: BTreeMap<String, Kept>,
}

#[derive(Debug, thiserror::Error)]
pub enum LayerError {
    #[error("layer {index}: {message}")]
    Bad { index: usize, message: String },
}

/// Metadata files are small; a larger one is not a package database Berth reads.
const MAX_META: u64 = 64 << 20;
/// Executables larger than this are not searched for Go build information.
const MAX_EXEC: u64 = 512 << 20;

/// Whether a path holds package metadata that is worth keeping.
pub fn is_metadata(path: &str) -> bool {
    let name = path.rsplit('/').next().unwrap_or(path);
    matches!(
        path,
        "var/lib/dpkg/status"
            | "lib/apk/db/installed"
            | "usr/lib/apk/db/installed"
            | "etc/os-release"
            | "usr/lib/os-release"
            | "etc/alpine-release"
            | "etc/debian_version"
    ) || path.starts_with("var/lib/dpkg/status.d/")
        || crate::rpmdb::Format::of_path(path).is_some()
        || (name == "METADATA" && parent_ends(path, ".dist-info"))
        || (name == "PKG-INFO" && parent_ends(path, ".egg-info"))
        || (path.ends_with(".egg-info") && !path.contains(".egg-info/"))
        || name == "package-lock.json"
        || (name == "package.json" && path.contains("node_modules/"))
        || name == "Cargo.lock"
        || name.ends_with(".jar")
        || name.ends_with(".war")
        || (name.ends_with(".gemspec") && path.contains("/specifications/"))
}

fn parent_ends(path: &str, suffix: &str) -> bool {
    path.rsplit_once('/').is_some_and(|(parent, _)| parent.ends_with(suffix))
}

fn clean(path: &str) -> String {
    let p = path.trim_start_matches("./").trim_start_matches('/');
    p.trim_end_matches('/').to_string()
}

/// Opens a layer blob: gzip (by magic) or plain tar.
fn open<'a>(mut layer: impl BufRead + 'a) -> std::io::Result<Box<dyn Read + 'a>> {
    let gzip = layer.fill_buf()?.starts_with(&[0x1f, 0x8b]);
    Ok(if gzip { Box::new(flate2::bufread::MultiGzDecoder::new(layer)) } else { Box::new(layer) })
}

impl Squashed {
    /// Applies one layer (a tar, optionally gzip-compressed) over what is there.
    pub fn apply(&mut self, index: usize, layer: &[u8]) -> Result<(), LayerError> {
        self.apply_from(index, layer)
    }

    /// [`Squashed::apply`] reading the layer as it arrives, so that a large one is never
    /// held whole in memory.
    pub fn apply_from(&mut self, index: usize, layer: impl BufRead) -> Result<(), LayerError> {
        let bad = |message: String| LayerError::Bad { index, message };
        let mut archive = tar::Archive::new(open(layer).map_err(|e| bad(e.to_string()))?);
        let mut added: BTreeMap<String, Option<Kept>> = BTreeMap::new();
        let mut removed: Vec<String> = Vec::new();
        let mut opaque: Vec<String> = Vec::new();
        for entry in archive.entries().map_err(|e| bad(e.to_string()))? {
            let mut entry = entry.map_err(|e| bad(e.to_string()))?;
            let path = clean(&entry.path().map_err(|e| bad(e.to_string()))?.to_string_lossy());
            let (dir, name) = match path.rsplit_once('/') {
                Some((d, n)) => (d.to_string(), n.to_string()),
                None => (String::new(), path.clone()),
            };
            if name == ".wh..wh..opq" {
                opaque.push(dir);
                continue;
            }
            if let Some(target) = name.strip_prefix(".wh.") {
                removed.push(if dir.is_empty() { target.to_string() } else { format!("{dir}/{target}") });
                continue;
            }
            let header = entry.header();
            let size = header.size().unwrap_or(0);
            let kind = header.entry_type();
            if kind.is_dir() {
                // A directory replacing a file removes the file.
                added.insert(path, None);
                continue;
            }
            if !kind.is_file() {
                // Links and devices: a link over a kept file hides it.
                added.insert(path, None);
                continue;
            }
            let exec = header.mode().map(|m| m & 0o111 != 0).unwrap_or(false);
            let kept = if is_metadata(&path) && size <= MAX_META {
                let mut buf = Vec::with_capacity(size as usize);
                entry.read_to_end(&mut buf).map_err(|e| bad(format!("{path}: {e}")))?;
                Some(Kept::Bytes(buf))
            } else if exec && (1024..=MAX_EXEC).contains(&size) {
                let mut buf = Vec::with_capacity(size as usize);
                entry.read_to_end(&mut buf).map_err(|e| bad(format!("{path}: {e}")))?;
                gobin::read(&buf).map(Kept::Go).or_else(|| auditable::read(&buf).map(Kept::Rust))
            } else {
                None
            };
            added.insert(path, kept);
        }
        // Whiteouts hide only what lower layers had.
        for dir in opaque {
            let prefix = if dir.is_empty() { String::new() } else { format!("{dir}/") };
            self.files.retain(|k, _| !k.starts_with(&prefix));
        }
        for p in removed {
            let prefix = format!("{p}/");
            self.files.retain(|k, _| k != &p && !k.starts_with(&prefix));
        }
        for (path, kept) in added {
            match kept {
                Some(k) => {
                    self.files.insert(path, k);
                }
                None => {
                    self.files.remove(&path);
                }
            }
        }
        Ok(())
    }

    pub fn bytes(&self, path: &str) -> Option<&[u8]> {
        match self.files.get(path) {
            Some(Kept::Bytes(b)) => Some(b),
            _ => None,
        }
    }
}
