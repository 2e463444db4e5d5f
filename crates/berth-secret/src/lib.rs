//! The cluster secret key and the reversible encryption of stored credentials (the
//! passwords of remote registries), which every instance of a cluster must be able to
//! read: all instances share one key file, and its fingerprint is recorded in the
//! database at start (the binary's `cluster.rs`) so that an instance with another key
//! refuses to start instead of failing to decrypt later.
//!
//! Two formats are read:
//! - `<berth-gcm>` + base64(nonce ‖ AES-GCM ciphertext ‖ tag): what Berth writes. It is
//!   authenticated, so a wrong key is a clear error instead of garbage.
//! - Harbor's `<enc-v1>` + base64(IV ‖ AES-CFB ciphertext) under the same key bytes
//!   (Harbor's `ReversibleEncrypt`, `src/common/utils/encrypt.go`; with Harbor's 16-byte
//!   `secretkey`, AES-128), and, as Harbor does, a value with neither header as plain
//!   base64. So a Harbor's registry table can be imported with its `secretkey` file.

use std::io::Write as _;
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _};
use std::path::{Path, PathBuf};

use aes_gcm::aead::{Aead, KeyInit};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use sha2::Digest as _;

/// Harbor's header for AES-CFB values.
pub const HARBOR_HEADER: &str = "<enc-v1>";
/// Berth's header for AES-GCM values.
pub const BERTH_HEADER: &str = "<berth-gcm>";

/// Length of a generated key: Harbor's `secretkey` is 16 characters (AES-128); Berth
/// generates 32 (AES-256). Both are accepted, as is 24.
const GENERATED_LEN: usize = 32;

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("cannot read {0}: {1}")]
    Read(PathBuf, std::io::Error),
    #[error("cannot write {0}: {1}")]
    Write(PathBuf, std::io::Error),
    #[error("{0}: the key must be 16, 24 or 32 bytes (Harbor's secretkey is 16 characters), found {1}")]
    Length(PathBuf, usize),
    #[error("the value is not valid base64")]
    Base64,
    #[error("the value is too short to be encrypted")]
    Short,
    #[error("the value does not decrypt with this cluster's secret key (another key encrypted it)")]
    WrongKey,
    #[error("the value does not decrypt to UTF-8 text (another key encrypted it?)")]
    NotText,
    #[error("no random bytes: {0}")]
    Random(String),
}

/// The key, 16, 24 or 32 bytes: AES-128, -192 or -256.
#[derive(Clone)]
pub struct SecretKey {
    bytes: Vec<u8>,
}

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SecretKey({})", self.fingerprint())
    }
}

/// Where the key in use came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    Loaded,
    Generated,
    /// Another instance starting on the same directory published its key first.
    Adopted,
}

fn random(buf: &mut [u8]) -> Result<(), SecretError> {
    getrandom::fill(buf).map_err(|e| SecretError::Random(e.to_string()))
}

impl SecretKey {
    /// A key from its bytes (a key file's content without a trailing newline).
    pub fn from_bytes(bytes: &[u8], origin: &Path) -> Result<SecretKey, SecretError> {
        match bytes.len() {
            16 | 24 | 32 => Ok(SecretKey { bytes: bytes.to_vec() }),
            n => Err(SecretError::Length(origin.to_path_buf(), n)),
        }
    }

    /// Reads the key file: its content, less one trailing newline (Harbor's file has none,
    /// hand-written ones often do).
    pub fn read(path: &Path) -> Result<SecretKey, SecretError> {
        let raw = std::fs::read(path).map_err(|e| SecretError::Read(path.to_path_buf(), e))?;
        let trimmed = raw.strip_suffix(b"\n").unwrap_or(&raw);
        let trimmed = trimmed.strip_suffix(b"\r").unwrap_or(trimmed);
        SecretKey::from_bytes(trimmed, path)
    }

    /// Loads the key at `path`; when there is none and `generate` is set, generates one
    /// (32 random alphanumerics) and publishes it there so that instances starting
    /// together on one directory all end with the first one's key: written to a private
    /// temporary file, fsynced, hard-linked to its name (which fails if another got there
    /// first; the loser reads the winner's complete file).
    pub fn load_or_generate(path: &Path, generate: bool) -> Result<(SecretKey, Origin), SecretError> {
        match SecretKey::read(path) {
            Err(SecretError::Read(_, e)) if e.kind() == std::io::ErrorKind::NotFound && generate => {}
            other => return other.map(|k| (k, Origin::Loaded)),
        }
        const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
        let mut raw = [0u8; GENERATED_LEN];
        random(&mut raw)?;
        // 256 is a multiple of 62 only roughly; the bias (a few percent per character)
        // leaves each character well above 5.8 bits, 185 bits in all.
        let key: Vec<u8> = raw.iter().map(|b| ALPHABET[usize::from(*b) % ALPHABET.len()]).collect();
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        let werr = |p: &Path| {
            let p = p.to_path_buf();
            move |e| SecretError::Write(p, e)
        };
        std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir).map_err(werr(dir))?;
        let tmp = dir.join(format!(
            ".{}.{}.{:x}.tmp",
            path.file_name().and_then(|n| n.to_str()).unwrap_or("secretkey"),
            std::process::id(),
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos()),
        ));
        let written = (|| {
            let mut f = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&tmp)?;
            f.write_all(&key)?;
            f.sync_all()
        })();
        if let Err(e) = written {
            let _ = std::fs::remove_file(&tmp);
            return Err(SecretError::Write(tmp, e));
        }
        let linked = std::fs::hard_link(&tmp, path);
        let _ = std::fs::remove_file(&tmp);
        match linked {
            Ok(()) => {
                std::fs::File::open(dir).and_then(|d| d.sync_all()).map_err(werr(dir))?;
                Ok((SecretKey { bytes: key }, Origin::Generated))
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                SecretKey::read(path).map(|k| (k, Origin::Adopted))
            }
            Err(e) => Err(SecretError::Write(path.to_path_buf(), e)),
        }
    }

    /// Identifies the key without revealing it (recorded in the database; compared at
    /// start by every instance).
    pub fn fingerprint(&self) -> String {
        let mut h = sha2::Sha256::new();
        h.update(b"berth secret key fingerprint\0");
        h.update(&self.bytes);
        hex::encode(&h.finalize()[..12])
    }

    /// Encrypts `plain` in Berth's format.
    pub fn encrypt(&self, plain: &str) -> Result<String, SecretError> {
        let mut nonce = [0u8; 12];
        random(&mut nonce)?;
        let sealed = match self.bytes.len() {
            16 => aes_gcm::Aes128Gcm::new_from_slice(&self.bytes).map(|c| c.encrypt((&nonce).into(), plain.as_bytes())),
            // AES-192-GCM is not a named type in aes-gcm; use the generic form.
            24 => aes_gcm::AesGcm::<aes::Aes192, aes_gcm::aead::consts::U12>::new_from_slice(&self.bytes)
                .map(|c| c.encrypt((&nonce).into(), plain.as_bytes())),
            _ => aes_gcm::Aes256Gcm::new_from_slice(&self.bytes).map(|c| c.encrypt((&nonce).into(), plain.as_bytes())),
        }
        .map_err(|_| SecretError::WrongKey)?
        .map_err(|_| SecretError::WrongKey)?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        Ok(format!("{BERTH_HEADER}{}", B64.encode(out)))
    }

    /// Decrypts a value written by [`SecretKey::encrypt`] or by Harbor.
    pub fn decrypt(&self, value: &str) -> Result<String, SecretError> {
        if let Some(rest) = value.strip_prefix(BERTH_HEADER) {
            let raw = B64.decode(rest).map_err(|_| SecretError::Base64)?;
            if raw.len() < 12 + 16 {
                return Err(SecretError::Short);
            }
            let (nonce, sealed) = raw.split_at(12);
            let nonce = aes_gcm::Nonce::<aes_gcm::aead::consts::U12>::from_slice(nonce);
            let plain = match self.bytes.len() {
                16 => aes_gcm::Aes128Gcm::new_from_slice(&self.bytes).map(|c| c.decrypt(nonce, sealed)),
                24 => aes_gcm::AesGcm::<aes::Aes192, aes_gcm::aead::consts::U12>::new_from_slice(&self.bytes)
                    .map(|c| c.decrypt(nonce, sealed)),
                _ => aes_gcm::Aes256Gcm::new_from_slice(&self.bytes).map(|c| c.decrypt(nonce, sealed)),
            }
            .map_err(|_| SecretError::WrongKey)?
            .map_err(|_| SecretError::WrongKey)?;
            return String::from_utf8(plain).map_err(|_| SecretError::NotText);
        }
        if let Some(rest) = value.strip_prefix(HARBOR_HEADER) {
            return self.decrypt_harbor_cfb(rest);
        }
        // Harbor's fallback: values written before encryption are plain base64.
        let raw = B64.decode(value).map_err(|_| SecretError::Base64)?;
        String::from_utf8(raw).map_err(|_| SecretError::NotText)
    }

    /// Harbor's `decryptAES`: base64(IV ‖ AES-CFB128 ciphertext). CFB carries no
    /// integrity check, so a wrong key shows only as text that is not UTF-8 (or wrong).
    fn decrypt_harbor_cfb(&self, b64: &str) -> Result<String, SecretError> {
        use cfb_mode::cipher::{AsyncStreamCipher, KeyIvInit};
        let raw = B64.decode(b64).map_err(|_| SecretError::Base64)?;
        if raw.len() < 16 {
            return Err(SecretError::Short);
        }
        let (iv, ct) = raw.split_at(16);
        let mut buf = ct.to_vec();
        match self.bytes.len() {
            16 => cfb_mode::Decryptor::<aes::Aes128>::new_from_slices(&self.bytes, iv)
                .map_err(|_| SecretError::WrongKey)?
                .decrypt(&mut buf),
            24 => cfb_mode::Decryptor::<aes::Aes192>::new_from_slices(&self.bytes, iv)
                .map_err(|_| SecretError::WrongKey)?
                .decrypt(&mut buf),
            _ => cfb_mode::Decryptor::<aes::Aes256>::new_from_slices(&self.bytes, iv)
                .map_err(|_| SecretError::WrongKey)?
                .decrypt(&mut buf),
        }
        String::from_utf8(buf).map_err(|_| SecretError::NotText)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(s: &str) -> SecretKey {
        SecretKey::from_bytes(s.as_bytes(), Path::new("test")).unwrap()
    }

    /// A vector made outside this code, with OpenSSL (whose `aes-128-cfb` is CFB128, as
    /// Go's `cipher.NewCFBEncrypter`), laid out as Harbor stores it:
    /// `printf 'Harbor12345-registry-secret' | openssl enc -aes-128-cfb -K <hex of "0123456789abcdef">
    ///  -iv 000102030405060708090a0b0c0d0e0f`, IV prepended, base64, `<enc-v1>` header.
    #[test]
    fn reads_harbor_enc_v1_values() {
        let k = key("0123456789abcdef");
        assert_eq!(
            k.decrypt(include_str!("../testdata/harbor_enc_v1.txt").trim()).unwrap(),
            "Harbor12345-registry-secret"
        );
    }

    #[test]
    fn reads_harbor_plain_base64_fallback() {
        assert_eq!(key("0123456789abcdef").decrypt("c2VjcmV0").unwrap(), "secret");
    }

    #[test]
    fn round_trips_with_every_key_length() {
        for k in ["0123456789abcdef", "0123456789abcdef01234567", "0123456789abcdef0123456789abcdef"] {
            let k = key(k);
            let enc = k.encrypt("pa$$w0rd ünïcode").unwrap();
            assert!(enc.starts_with(BERTH_HEADER));
            assert_ne!(enc, k.encrypt("pa$$w0rd ünïcode").unwrap(), "a fresh nonce each time");
            assert_eq!(k.decrypt(&enc).unwrap(), "pa$$w0rd ünïcode");
        }
    }

    #[test]
    fn another_key_is_a_clear_error() {
        let enc = key("0123456789abcdef").encrypt("x").unwrap();
        assert!(matches!(key("fedcba9876543210").decrypt(&enc), Err(SecretError::WrongKey)));
        assert!(matches!(key("0123456789abcdef").decrypt("<berth-gcm>AAAA"), Err(SecretError::Short)));
        assert!(matches!(key("0123456789abcdef").decrypt("<berth-gcm>!!"), Err(SecretError::Base64)));
    }

    #[test]
    fn generates_once_and_reloads() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys/secretkey");
        let (a, o) = SecretKey::load_or_generate(&path, true).unwrap();
        assert_eq!(o, Origin::Generated);
        assert_eq!(std::fs::read(&path).unwrap().len(), 32);
        let (b, o) = SecretKey::load_or_generate(&path, true).unwrap();
        assert_eq!(o, Origin::Loaded);
        assert_eq!(a.fingerprint(), b.fingerprint());
        assert_eq!(b.decrypt(&a.encrypt("s").unwrap()).unwrap(), "s");
        let missing = dir.path().join("none");
        assert!(matches!(SecretKey::load_or_generate(&missing, false), Err(SecretError::Read(..))));
        std::fs::write(dir.path().join("short"), "abc\n").unwrap();
        assert!(matches!(SecretKey::read(&dir.path().join("short")), Err(SecretError::Length(_, 3))));
        // Harbor's file has no newline; hand-written files may.
        std::fs::write(dir.path().join("nl"), "0123456789abcdef\n").unwrap();
        assert_eq!(
            SecretKey::read(&dir.path().join("nl")).unwrap().fingerprint(),
            key("0123456789abcdef").fingerprint()
        );
    }
}
