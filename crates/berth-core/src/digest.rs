//! Content digests (`sha256:<hex>`, `sha512:<hex>`) and the streaming hasher used while
//! bytes arrive, whose state can be saved so another instance can continue an upload.

use std::fmt;
use std::str::FromStr;

use sha2::Digest as _;
use sha2::digest::common::hazmat::SerializableState;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Algorithm {
    Sha256,
    Sha512,
}

impl Algorithm {
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::Sha256 => "sha256",
            Algorithm::Sha512 => "sha512",
        }
    }
    fn hex_len(self) -> usize {
        match self {
            Algorithm::Sha256 => 64,
            Algorithm::Sha512 => 128,
        }
    }
}

/// A validated digest. The encoded part is always lower-case hex of the right length,
/// so it is safe to use in file paths.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest {
    algorithm: Algorithm,
    hex: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DigestError {
    #[error("digest must look like <algorithm>:<hex>")]
    Format,
    #[error("digest algorithm {0:?} is not supported (use sha256 or sha512)")]
    Algorithm(String),
    #[error("{algorithm} digest must be {expected} lower-case hex characters")]
    Encoding { algorithm: &'static str, expected: usize },
}

impl Digest {
    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }
    pub fn hex(&self) -> &str {
        &self.hex
    }
    /// Digest of a whole byte slice (manifests, small test blobs).
    pub fn of(algorithm: Algorithm, bytes: &[u8]) -> Digest {
        let mut h = Hasher::new(algorithm);
        h.update(bytes);
        h.finish()
    }
    pub fn sha256(bytes: &[u8]) -> Digest {
        Self::of(Algorithm::Sha256, bytes)
    }
}

impl FromStr for Digest {
    type Err = DigestError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (alg, hex) = s.split_once(':').ok_or(DigestError::Format)?;
        let algorithm = match alg {
            "sha256" => Algorithm::Sha256,
            "sha512" => Algorithm::Sha512,
            "" => return Err(DigestError::Format),
            other => {
                // The spec's grammar allows other algorithms; we refuse them clearly.
                let valid = other.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"+._-".contains(&b));
                return Err(if valid { DigestError::Algorithm(other.to_string()) } else { DigestError::Format });
            }
        };
        let ok =
            hex.len() == algorithm.hex_len() && hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        if !ok {
            return Err(DigestError::Encoding { algorithm: algorithm.as_str(), expected: algorithm.hex_len() });
        }
        Ok(Digest { algorithm, hex: hex.to_string() })
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.algorithm.as_str(), self.hex)
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl serde::Serialize for Digest {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Digest {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Streaming hasher for one algorithm.
#[derive(Clone)]
pub enum Hasher {
    Sha256(sha2::Sha256),
    Sha512(sha2::Sha512),
}

impl fmt::Debug for Hasher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Hasher({})", self.algorithm().as_str())
    }
}

impl Hasher {
    pub fn new(algorithm: Algorithm) -> Self {
        match algorithm {
            Algorithm::Sha256 => Hasher::Sha256(sha2::Sha256::new()),
            Algorithm::Sha512 => Hasher::Sha512(sha2::Sha512::new()),
        }
    }
    pub fn algorithm(&self) -> Algorithm {
        match self {
            Hasher::Sha256(_) => Algorithm::Sha256,
            Hasher::Sha512(_) => Algorithm::Sha512,
        }
    }
    pub fn update(&mut self, bytes: &[u8]) {
        match self {
            Hasher::Sha256(h) => h.update(bytes),
            Hasher::Sha512(h) => h.update(bytes),
        }
    }
    pub fn finish(self) -> Digest {
        let algorithm = self.algorithm();
        let hex = match self {
            Hasher::Sha256(h) => hex::encode(h.finalize()),
            Hasher::Sha512(h) => hex::encode(h.finalize()),
        };
        Digest { algorithm, hex }
    }
    /// Saves the running state so that an upload can be continued by another
    /// instance without re-reading what was already received.
    pub fn save(&self) -> Vec<u8> {
        let mut out = vec![match self {
            Hasher::Sha256(_) => 1u8,
            Hasher::Sha512(_) => 2u8,
        }];
        match self {
            Hasher::Sha256(h) => out.extend_from_slice(&h.serialize()),
            Hasher::Sha512(h) => out.extend_from_slice(&h.serialize()),
        }
        out
    }
    /// Restores a state saved by [`Hasher::save`]; `None` if the bytes are not one.
    pub fn restore(saved: &[u8]) -> Option<Self> {
        let (tag, rest) = saved.split_first()?;
        match tag {
            1 => sha2::Sha256::deserialize(rest.try_into().ok()?).ok().map(Hasher::Sha256),
            2 => sha2::Sha512::deserialize(rest.try_into().ok()?).ok().map(Hasher::Sha512),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn known_vectors() {
        assert_eq!(
            Digest::sha256(b"").to_string(),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert!(Digest::of(Algorithm::Sha512, b"abc").to_string().starts_with("sha512:ddaf35a1"));
    }

    #[test]
    fn rejects_bad_digests() {
        assert_eq!("sha256".parse::<Digest>(), Err(DigestError::Format));
        assert_eq!(":abc".parse::<Digest>(), Err(DigestError::Format));
        assert!(matches!("md5:abc".parse::<Digest>(), Err(DigestError::Algorithm(_))));
        assert!(matches!("sha256:ABC".parse::<Digest>(), Err(DigestError::Encoding { .. })));
        let upper = format!("sha256:{}", "A".repeat(64));
        assert!(upper.parse::<Digest>().is_err());
        let short = format!("sha512:{}", "a".repeat(64));
        assert!(short.parse::<Digest>().is_err());
    }

    #[test]
    fn saved_state_continues() {
        let mut a = Hasher::new(Algorithm::Sha256);
        a.update(b"hello ");
        let mut b = Hasher::restore(&a.save()).unwrap();
        b.update(b"world");
        assert_eq!(b.finish(), Digest::sha256(b"hello world"));
        let mut c = Hasher::new(Algorithm::Sha512);
        c.update(b"x");
        let mut d = Hasher::restore(&c.save()).unwrap();
        d.update(b"y");
        assert_eq!(d.finish(), Digest::of(Algorithm::Sha512, b"xy"));
        assert!(Hasher::restore(&[9, 1, 2]).is_none());
        assert!(Hasher::restore(&[]).is_none());
    }

    proptest! {
        #[test]
        fn display_parse_roundtrip(bytes in proptest::collection::vec(any::<u8>(), 0..64), sha512 in any::<bool>()) {
            let alg = if sha512 { Algorithm::Sha512 } else { Algorithm::Sha256 };
            let d = Digest::of(alg, &bytes);
            prop_assert_eq!(d.to_string().parse::<Digest>().unwrap(), d);
        }

        #[test]
        fn parse_never_panics_and_accepts_only_hex(s in "\\PC{0,140}") {
            if let Ok(d) = s.parse::<Digest>() {
                prop_assert_eq!(d.to_string(), s.clone());
                prop_assert!(d.hex().bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
            }
        }

        #[test]
        fn hex_of_right_length_parses(hex in "[0-9a-f]{64}") {
            let s = format!("sha256:{hex}");
            prop_assert!(s.parse::<Digest>().is_ok());
        }
    }
}
