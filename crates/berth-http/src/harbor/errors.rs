//! The management API's errors: Harbor's codes in the `{"errors":[{code,message}]}` envelope
//! (goharbor/harbor `src/lib/errors/const.go`, `src/lib/http/error.go`). Every store and
//! identity failure goes through [`identity`] or [`store`].

use axum::http::{HeaderValue, StatusCode};

use berth_core::CoreError;
use berth_core::store::StoreError;
use berth_core::store::identity::IdentityError;

use crate::error::ApiError;

pub fn bad_request(msg: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, "BAD_REQUEST", msg)
}

pub fn unauthorized(msg: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::UNAUTHORIZED, "UNAUTHORIZED", msg)
}

pub fn forbidden(msg: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::FORBIDDEN, "FORBIDDEN", msg)
}

pub fn not_found(msg: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "NOT_FOUND", msg)
}

pub fn conflict(msg: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::CONFLICT, "CONFLICT", msg)
}

pub fn precondition(msg: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::PRECONDITION_FAILED, "PRECONDITION", msg)
}

pub fn method_not_allowed() -> ApiError {
    ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "METHOD_NOT_ALLOWED", "method not allowed")
}

/// A failed identity write: conflicts name the taken field, refusals become 412.
pub fn identity(e: IdentityError) -> ApiError {
    match e {
        IdentityError::Conflict { field, value } => conflict(format!("{field} {value:?} already exists")),
        IdentityError::NotFound => not_found("not found"),
        IdentityError::Precondition(m) => precondition(m),
        IdentityError::Store(e) => store(e),
    }
}

/// A failed read: 503 while the database is unavailable, otherwise a logged 500.
pub fn store(e: StoreError) -> ApiError {
    ApiError::from(CoreError::Store(e))
}

impl From<super::query::QueryError> for ApiError {
    fn from(e: super::query::QueryError) -> Self {
        bad_request(e.0)
    }
}

/// The `Location` of a created resource.
pub fn location(path: &str) -> (axum::http::HeaderName, HeaderValue) {
    (
        axum::http::header::LOCATION,
        HeaderValue::from_str(path).unwrap_or_else(|_| HeaderValue::from_static("/api/v2.0")),
    )
}
