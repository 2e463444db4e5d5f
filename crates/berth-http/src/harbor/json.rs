//! Request bodies: JSON read strictly (unknown fields, wrong types and missing required
//! fields are refused) with a 400 that names the offending field, in Harbor's envelope.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use serde::de::DeserializeOwned;

use super::errors::bad_request;
use crate::error::ApiError;

/// Largest JSON body the management API reads.
const LIMIT: usize = 1 << 20;

/// A JSON request body of type `T`.
pub struct Body<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Body<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, _: &S) -> Result<Self, ApiError> {
        let body = crate::body::collect_limited(req.into_body(), LIMIT)
            .await
            .map_err(|e| bad_request(format!("cannot read the request body: {e}")))?
            .ok_or_else(|| {
                ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "REQUEST_ENTITY_TOO_LARGE", "request body too large")
            })?;
        parse(&body).map(Body)
    }
}

/// Parses a body, mapping every serde error to `BAD_REQUEST` with the field path.
pub fn parse<T: DeserializeOwned>(body: &Bytes) -> Result<T, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(bad_request("a JSON request body is required"));
    }
    let mut de = serde_json::Deserializer::from_slice(body);
    let value: T = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let what = strip_position(&inner);
        if inner.is_syntax() || inner.is_eof() {
            bad_request(format!("malformed JSON in the request body: {inner}"))
        } else if path == "." || path.is_empty() {
            bad_request(format!("invalid request body: {what}"))
        } else {
            bad_request(format!("invalid request body at {path}: {what}"))
        }
    })?;
    de.end().map_err(|e| bad_request(format!("malformed JSON in the request body: {e}")))?;
    Ok(value)
}

/// serde_json's message without " at line L column C".
fn strip_position(e: &serde_json::Error) -> String {
    let s = e.to_string();
    match s.rfind(" at line ") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Inner {
        user_id: Option<i64>,
        username: Option<String>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Req {
        role_id: i64,
        member_user: Option<Inner>,
    }

    fn msg(s: &str) -> String {
        let e = parse::<Req>(&Bytes::copy_from_slice(s.as_bytes())).unwrap_err();
        assert_eq!(e.status, StatusCode::BAD_REQUEST);
        assert_eq!(e.code, "BAD_REQUEST");
        e.message
    }

    #[test]
    fn errors_name_the_field() {
        assert!(parse::<Req>(&Bytes::from_static(br#"{"role_id":1,"member_user":{"username":"a"}}"#)).is_ok());
        assert!(msg("").contains("required"));
        assert!(msg("{").contains("malformed"));
        assert!(msg(r#"{"role_id":1} x"#).contains("malformed"));
        assert!(msg("{}").contains("missing field `role_id`"));
        let m = msg(r#"{"role_id":"x"}"#);
        assert!(m.contains("role_id") && m.contains("invalid type"), "{m}");
        let m = msg(r#"{"role_id":1,"member_user":{"user_id":"7"}}"#);
        assert!(m.contains("member_user.user_id"), "{m}");
        let m = msg(r#"{"role_id":1,"extra":true}"#);
        assert!(m.contains("unknown field `extra`"), "{m}");
        let m = msg(r#"{"role_id":1,"member_user":{"nick":"a"}}"#);
        assert!(m.contains("member_user") && m.contains("unknown field `nick`"), "{m}");
        assert!(!m.contains("line"), "{m}");
    }
}
