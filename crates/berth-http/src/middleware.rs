//! Cross-cutting request handling: request ids, the one place 5xx errors are logged, and
//! the read-only mode.

use axum::extract::{Request, State};
use axum::http::{HeaderName, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::AppState;
use crate::auth::Mode;
use crate::error::{ApiError, InternalError};

static REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
static API_VERSION: HeaderName = HeaderName::from_static("docker-distribution-api-version");

pub async fn request_context(mut req: Request, next: Next) -> Response {
    // HTTP/2 names the host in `:authority` (the URI), not in a Host header; links and
    // challenges are built from Host, so give every request one.
    if !req.headers().contains_key(header::HOST)
        && let Some(host) = req.uri().authority().and_then(|a| HeaderValue::from_str(a.as_str()).ok())
    {
        req.headers_mut().insert(header::HOST, host);
    }
    let id =
        req.headers().get(&REQUEST_ID).filter(|v| v.len() <= 128).cloned().unwrap_or_else(|| {
            HeaderValue::from_str(&uuid::Uuid::new_v4().to_string()).expect("uuid is a valid header")
        });
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let http1_body = req.version() <= axum::http::Version::HTTP_11
        && (req.headers().contains_key(header::TRANSFER_ENCODING)
            || req
                .headers()
                .get(header::CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.trim() != "0"));
    let mut res = next.run(req).await;
    let status = res.status();
    if status.is_server_error() {
        let internal = res.extensions().get::<InternalError>().map(|e| e.0.as_str()).unwrap_or("");
        tracing::error!(request_id = ?id, %method, %path, status = status.as_u16(), error = internal, "request failed");
    } else {
        tracing::debug!(request_id = ?id, %method, %path, status = status.as_u16(), "request");
    }
    let h = res.headers_mut();
    // A refusal may be sent before the request's body was read (a full disk, a quota, a
    // bad digest); hyper then drops the connection rather than read the rest, and a client
    // that reuses it from its keep-alive pool finds it closed under its next request.
    // Saying so makes it open a new one (Go's server, Distribution's, does the same).
    if http1_body && (status.is_client_error() || status.is_server_error()) {
        h.insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    h.insert(REQUEST_ID.clone(), id);
    if path.starts_with("/v2") {
        h.insert(API_VERSION.clone(), HeaderValue::from_static("registry/2.0"));
    }
    res
}

/// Harbor's read-only mode (`read_only` in `/configurations`): every request that could
/// change something is refused with Harbor's `DENIED`, except changing the settings
/// (how the mode is left) and logging in.
pub async fn read_only(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let m = req.method();
    let safe = matches!(*m, Method::GET | Method::HEAD | Method::OPTIONS);
    let path = req.uri().path();
    let exempt = (*m == Method::PUT && path.trim_end_matches('/') == "/api/v2.0/configurations")
        || (*m == Method::POST && path == "/c/login");
    if !safe && !exempt && state.settings.get().read_only {
        return ApiError::new(
            StatusCode::FORBIDDEN,
            "DENIED",
            "The system is in read only mode. Any modification is prohibited.",
        )
        .into_response();
    }
    next.run(req).await
}

/// A first start creates the administrator (a PBKDF2 hash of 600,000 rounds, a few hundred
/// ms) after the listener is up, so the server answers at once; until then, requests that
/// need users or projects wait here instead of seeing an empty identity store. What needs
/// none goes through: liveness and health, metrics, the registry in open mode, and the
/// anonymous `GET /v2/` (Harbor mode: the challenge that starts a token flow).
pub async fn await_bootstrap(State(state): State<AppState>, req: Request, next: Next) -> Response {
    if !*state.bootstrapped.borrow() && needs_identities(&state, &req) {
        let mut done = state.bootstrapped.clone();
        if done.wait_for(|d| *d).await.is_err() {
            // The bootstrap failed; the process is exiting with its error.
            return (StatusCode::SERVICE_UNAVAILABLE, "starting up failed").into_response();
        }
    }
    next.run(req).await
}

fn needs_identities(state: &AppState, req: &Request) -> bool {
    let path = req.uri().path();
    let registry = path == "/v2" || path.starts_with("/v2/");
    if registry && state.auth.mode == Mode::Open {
        return false;
    }
    if (path == "/v2" || path == "/v2/") && !req.headers().contains_key(header::AUTHORIZATION) {
        return false;
    }
    !matches!(path, "/api/v2.0/ping" | "/api/v2.0/health" | "/metrics")
}
