//! The one place where domain errors become protocol errors: the OCI error envelope
//! `{"errors":[{"code","message","detail"}]}` with the spec's status codes.

use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use berth_core::CoreError;
use berth_core::store::StoreError;

/// Internal details of a 5xx, logged once by the middleware and never sent.
#[derive(Clone, Debug)]
pub struct InternalError(pub String);

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub detail: Value,
    pub headers: Vec<(HeaderName, HeaderValue)>,
    internal: Option<String>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError { status, code, message: message.into(), detail: Value::Null, headers: Vec::new(), internal: None }
    }
    pub fn detail(mut self, detail: Value) -> Self {
        self.detail = detail;
        self
    }
    pub fn header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.headers.push((name, value));
        self
    }
    fn internal(status: StatusCode, code: &'static str, public: &str, internal: String) -> Self {
        let mut e = ApiError::new(status, code, public);
        e.internal = Some(internal);
        e
    }

    pub fn name_invalid(msg: impl Into<String>) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, "NAME_INVALID", msg)
    }
    pub fn digest_invalid(msg: impl Into<String>) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, "DIGEST_INVALID", msg)
    }
    pub fn upload_invalid(msg: impl Into<String>) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, "BLOB_UPLOAD_INVALID", msg)
    }
    pub fn unsupported(status: StatusCode, msg: impl Into<String>) -> Self {
        ApiError::new(status, "UNSUPPORTED", msg)
    }
    /// A 500 whose detail is logged, never sent.
    pub fn internal_error(detail: String) -> Self {
        ApiError::internal(StatusCode::INTERNAL_SERVER_ERROR, "UNKNOWN", "internal server error", detail)
    }
    pub fn not_found() -> Self {
        ApiError::new(StatusCode::NOT_FOUND, "NOT_FOUND", "no such endpoint")
    }
}

impl From<CoreError> for ApiError {
    fn from(e: CoreError) -> Self {
        use StatusCode as S;
        let msg = e.to_string();
        match e {
            CoreError::BlobUnknown(d) => {
                ApiError::new(S::NOT_FOUND, "BLOB_UNKNOWN", "blob unknown to registry").detail(json!({ "digest": d }))
            }
            CoreError::UploadUnknown => {
                ApiError::new(S::NOT_FOUND, "BLOB_UPLOAD_UNKNOWN", "blob upload unknown to registry")
            }
            CoreError::UploadInvalid(_) => ApiError::new(S::BAD_REQUEST, "BLOB_UPLOAD_INVALID", msg),
            CoreError::DigestMismatch { expected, actual } => {
                ApiError::new(S::BAD_REQUEST, "DIGEST_INVALID", "provided digest did not match uploaded content")
                    .detail(json!({ "expected": expected, "actual": actual }))
            }
            CoreError::DigestInvalid { .. } => ApiError::new(S::BAD_REQUEST, "DIGEST_INVALID", msg),
            CoreError::SizeInvalid(_) => ApiError::new(S::BAD_REQUEST, "SIZE_INVALID", msg),
            CoreError::RangeInvalid(_) => ApiError::new(S::RANGE_NOT_SATISFIABLE, "BLOB_UPLOAD_INVALID", msg),
            CoreError::ManifestBlobUnknown { kind, digests } => ApiError::new(
                S::NOT_FOUND,
                "MANIFEST_BLOB_UNKNOWN",
                format!("manifest references {kind} unknown to this repository"),
            )
            .detail(json!({ "digests": digests })),
            CoreError::ManifestInvalid(m) => {
                let status = if matches!(m, berth_core::manifest::ManifestError::TooLarge) {
                    S::PAYLOAD_TOO_LARGE
                } else {
                    S::BAD_REQUEST
                };
                ApiError::new(status, "MANIFEST_INVALID", "manifest invalid").detail(json!({ "reason": m.to_string() }))
            }
            CoreError::ManifestUnknown(r) => {
                ApiError::new(S::NOT_FOUND, "MANIFEST_UNKNOWN", "manifest unknown").detail(json!({ "reference": r }))
            }
            CoreError::NameUnknown(n) => {
                ApiError::new(S::NOT_FOUND, "NAME_UNKNOWN", "repository name not known to registry")
                    .detail(json!({ "name": n }))
            }
            CoreError::NameInvalid(_) => ApiError::new(S::BAD_REQUEST, "NAME_INVALID", msg),
            CoreError::TagInvalid(_) => ApiError::new(S::BAD_REQUEST, "TAG_INVALID", msg),
            CoreError::PaginationInvalid { .. } => ApiError::new(S::BAD_REQUEST, "PAGINATION_NUMBER_INVALID", msg),
            CoreError::Unsupported(_) => ApiError::new(S::METHOD_NOT_ALLOWED, "UNSUPPORTED", msg),
            CoreError::StorageUnavailable(_) => ApiError::new(S::SERVICE_UNAVAILABLE, "UNAVAILABLE", msg)
                .header(header::RETRY_AFTER, HeaderValue::from_static("30")),
            CoreError::TooManyRequests(_) => ApiError::new(S::TOO_MANY_REQUESTS, "TOOMANYREQUESTS", msg),
            CoreError::BodyIncomplete(_) => ApiError::new(S::BAD_REQUEST, "BLOB_UPLOAD_INVALID", msg),
            CoreError::Store(StoreError::Unavailable(_)) => ApiError::internal(
                S::SERVICE_UNAVAILABLE,
                "UNAVAILABLE",
                "the metadata database is unavailable; retry later",
                msg,
            )
            .header(header::RETRY_AFTER, HeaderValue::from_static("5")),
            // Harbor answers a push over quota with 403 DENIED.
            CoreError::Store(StoreError::QuotaExceeded(q)) => ApiError::new(S::FORBIDDEN, "DENIED", q.to_string())
                .detail(json!({ "project": q.project, "used": q.used, "limit": q.limit, "adding": q.adding })),
            CoreError::Store(StoreError::Backend(_)) | CoreError::Io(_) => {
                ApiError::internal(S::INTERNAL_SERVER_ERROR, "UNKNOWN", "internal server error", msg)
            }
        }
    }
}

impl From<berth_proxy::ProxyError> for ApiError {
    fn from(e: berth_proxy::ProxyError) -> Self {
        use berth_proxy::ProxyError as P;
        let msg = e.to_string();
        match e {
            P::Core(c) => c.into(),
            P::PushRefused(_) => ApiError::new(StatusCode::FORBIDDEN, "DENIED", msg),
            P::Upstream { status: Some(429), .. } => {
                ApiError::new(StatusCode::TOO_MANY_REQUESTS, "TOOMANYREQUESTS", msg)
            }
            // The upstream failed and nothing cached could answer: the gateway's failure.
            P::Upstream { .. } | P::Endpoint { .. } => ApiError::new(StatusCode::BAD_GATEWAY, "UNKNOWN", msg),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut err = json!({ "code": self.code, "message": self.message });
        if !self.detail.is_null() {
            err["detail"] = self.detail;
        }
        let body = json!({ "errors": [err] }).to_string();
        let mut res = (self.status, [(header::CONTENT_TYPE, "application/json; charset=utf-8")], body).into_response();
        for (k, v) in self.headers {
            res.headers_mut().append(k, v);
        }
        if let Some(i) = self.internal {
            res.extensions_mut().insert(InternalError(i));
        }
        res
    }
}
