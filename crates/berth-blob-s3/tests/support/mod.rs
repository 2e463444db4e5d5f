//! Helpers for the tests against a real Garage (started by `berth_blob_s3::testing`):
//! request bodies, reading blobs back, and a fault-injecting proxy.

pub mod proxy;
#[allow(dead_code)]
pub mod responder;

pub use berth_blob_s3::testing::garage;
use berth_core::blobstore::{BlobReader, BodyError, ByteStream};
use bytes::Bytes;
use futures_util::StreamExt;

/// Skips the test (with a printed line) when there is no Garage outside CI.
#[macro_export]
macro_rules! garage_or_skip {
    () => {
        match support::garage() {
            Some(g) => g,
            None => {
                eprintln!("skipped: garage is not installed (cargo install garage --locked --no-default-features --features bundled-libs,sqlite)");
                return;
            }
        }
    };
}

pub fn body(chunks: Vec<Bytes>) -> ByteStream {
    Box::pin(futures_util::stream::iter(chunks.into_iter().map(Ok::<_, BodyError>)))
}

/// A body of `bytes` in chunks of `chunk` bytes, as a client would send it.
pub fn chunked(bytes: &[u8], chunk: usize) -> ByteStream {
    body(bytes.chunks(chunk).map(Bytes::copy_from_slice).collect())
}

pub async fn read_all(r: BlobReader) -> Vec<u8> {
    let mut body = r.body;
    let mut out = Vec::with_capacity(r.len as usize);
    while let Some(c) = body.next().await {
        out.extend_from_slice(&c.unwrap());
    }
    assert_eq!(out.len() as u64, r.len);
    out
}

/// Deterministic pseudo-random bytes (xorshift), so blobs are not all zeros.
pub fn bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}
