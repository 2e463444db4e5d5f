//! Test blobs: a large random prefix shared by every variant plus a 32-byte
//! tail unique to each variant. The SHA-256 state after the prefix is kept,
//! so a variant's digest costs one tiny hash update — all digests are known
//! before any timed section and no two uploads carry the same content.

use bytes::Bytes;
use sha2::{Digest, Sha256};

use crate::http::ReqBody;

pub const TAIL: usize = 32;

pub struct BlobSource {
    prefix: Bytes,
    after_prefix: Sha256,
}

#[derive(Clone)]
pub struct Blob {
    pub parts: Vec<Bytes>,
    pub len: u64,
    pub digest: String,
}

/// xorshift64* — fast, deterministic filler; the content only has to be incompressible-ish.
pub fn random_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        out.extend_from_slice(&x.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes());
    }
    out.truncate(len);
    out
}

pub fn sha256_digest(data: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(data)))
}

impl BlobSource {
    /// Variants will be `size` bytes long.
    pub fn random(size: usize, seed: u64) -> Self {
        assert!(size > TAIL);
        let prefix = Bytes::from(random_bytes(size - TAIL, seed));
        let mut after_prefix = Sha256::new();
        after_prefix.update(&prefix);
        Self { prefix, after_prefix }
    }

    pub fn variant(&self, id: u64) -> Blob {
        let mut tail = [b'.'; TAIL];
        tail[..12].copy_from_slice(b"berth-bench:");
        tail[12..20].copy_from_slice(&id.to_le_bytes());
        let digest = format!("sha256:{}", hex::encode(self.after_prefix.clone().chain_update(tail).finalize()));
        let tail = Bytes::copy_from_slice(&tail);
        Blob { len: (self.prefix.len() + TAIL) as u64, parts: vec![self.prefix.clone(), tail], digest }
    }
}

impl Blob {
    pub fn small(data: Vec<u8>) -> Self {
        let digest = sha256_digest(&data);
        Self { len: data.len() as u64, parts: vec![Bytes::from(data)], digest }
    }

    pub fn body(&self) -> ReqBody {
        ReqBody::from_parts(self.parts.iter().cloned())
    }

    /// Splits the blob into consecutive chunks of `chunk` bytes (the last may be
    /// shorter): `(first byte offset, last byte offset inclusive, pieces)`.
    pub fn chunks(&self, chunk: u64) -> Vec<(u64, u64, Vec<Bytes>)> {
        let mut out = Vec::new();
        let mut start = 0u64;
        while start < self.len {
            let end = (start + chunk).min(self.len); // exclusive
            let mut pieces = Vec::new();
            let mut off = 0u64;
            for p in &self.parts {
                let (ps, pe) = (off, off + p.len() as u64);
                let (s, e) = (start.max(ps), end.min(pe));
                if s < e {
                    pieces.push(p.slice((s - ps) as usize..(e - ps) as usize));
                }
                off = pe;
            }
            out.push((start, end - 1, pieces));
            start = end;
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variant_digest_matches_content() {
        let src = BlobSource::random(1000, 7);
        for id in [0, 1, 99] {
            let b = src.variant(id);
            let all: Vec<u8> = b.parts.iter().flat_map(|p| p.iter().copied()).collect();
            assert_eq!(all.len() as u64, b.len);
            assert_eq!(sha256_digest(&all), b.digest);
        }
        assert_ne!(src.variant(1).digest, src.variant(2).digest);
    }

    #[test]
    fn chunks_cover_the_blob() {
        let b = BlobSource::random(1000, 3).variant(5);
        let chunks = b.chunks(300);
        assert_eq!(chunks.len(), 4);
        let mut all = Vec::new();
        let mut next = 0;
        for (s, e, pieces) in chunks {
            assert_eq!(s, next);
            let n: usize = pieces.iter().map(|p| p.len()).sum();
            assert_eq!(e - s + 1, n as u64);
            next = e + 1;
            all.extend(pieces.iter().flat_map(|p| p.iter().copied()));
        }
        assert_eq!(sha256_digest(&all), b.digest);
    }
}
