//! Adapters between hyper bodies and the domain's byte streams.

use std::pin::Pin;
use std::task::{Context, Poll};

use axum::body::{Body, BodyDataStream};
use bytes::Bytes;
use futures_core::Stream;

use berth_core::blobstore::{BodyError, ByteStream};

struct Incoming(BodyDataStream);

impl Stream for Incoming {
    type Item = Result<Bytes, BodyError>;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        Pin::new(&mut self.0).poll_next(cx).map(|o| o.map(|r| r.map_err(|e| BodyError(e.to_string()))))
    }
}

pub fn incoming(body: Body) -> ByteStream {
    Box::pin(Incoming(body.into_data_stream()))
}

struct Outgoing(Pin<Box<dyn Stream<Item = Result<Bytes, std::io::Error>> + Send>>);

impl Stream for Outgoing {
    type Item = Result<Bytes, std::io::Error>;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.0.as_mut().poll_next(cx)
    }
}

pub fn outgoing(s: Pin<Box<dyn Stream<Item = Result<Bytes, std::io::Error>> + Send>>) -> Body {
    Body::from_stream(Outgoing(s))
}

/// Reads a whole (small) body, refusing more than `limit` bytes.
pub async fn collect_limited(body: Body, limit: usize) -> Result<Option<Bytes>, BodyError> {
    use http_body_util::BodyExt;
    match http_body_util::Limited::new(body, limit).collect().await {
        Ok(c) => Ok(Some(c.to_bytes())),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => Ok(None),
        Err(e) => Err(BodyError(e.to_string())),
    }
}
