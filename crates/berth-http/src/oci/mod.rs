//! The OCI Distribution API (`/v2`).

mod blobs;
mod listing;
mod manifests;
pub mod route;
mod uploads;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::AppState;
use crate::auth::Access;
use crate::error::ApiError;
use route::OciRoute;

pub async fn base(State(state): State<AppState>, headers: HeaderMap) -> Response {
    match state.auth.authorize_v2(&headers, &Access::Base, &realm_base(&state, &headers)).await {
        Ok(_) => (StatusCode::OK, [(header::CONTENT_TYPE, "application/json")], "{}").into_response(),
        Err(e) => e.into_response(),
    }
}

pub async fn not_found() -> ApiError {
    ApiError::not_found()
}

pub async fn dispatch(State(state): State<AppState>, req: Request) -> Response {
    match handle(state, req).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

/// Query parameters, decoded.
pub(crate) struct Query(Vec<(String, String)>);

impl Query {
    fn parse(q: Option<&str>) -> Self {
        Query(form_urlencoded::parse(q.unwrap_or("").as_bytes()).into_owned().collect())
    }
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }
}

async fn handle(state: AppState, req: Request) -> Result<Response, ApiError> {
    let (parts, body) = req.into_parts();
    let rest = parts.uri.path().strip_prefix("/v2/").unwrap_or("");
    let route = OciRoute::parse(rest)?.ok_or_else(ApiError::not_found)?;
    let principal = state
        .auth
        .authorize_v2(&parts.headers, &route.access(&parts.method), &realm_base(&state, &parts.headers))
        .await?;
    let q = Query::parse(parts.uri.query());
    let m = &parts.method;
    // Pushes and deletes record their events in the outbox, with the change itself.
    let audit = match (&route, m) {
        (OciRoute::Manifest(name, r), &Method::GET) => Some(("pull", name.clone(), r.to_string())),
        _ => None,
    };
    let result = route_request(&state, route, &q, &parts.headers, &parts.method, body, principal.name()).await;
    if let (Ok(res), Some((operation, repo, reference))) = (&result, audit)
        && res.status().is_success()
    {
        // Off the request path: the client already has its answer.
        let digest = res.headers().get("docker-content-digest").and_then(|v| v.to_str().ok()).map(str::to_owned);
        state.events.record(operation, repo, reference, digest, principal.name().to_string());
    }
    result
}

async fn route_request(
    state: &AppState,
    route: OciRoute,
    q: &Query,
    h: &HeaderMap,
    m: &Method,
    body: Body,
    username: &str,
) -> Result<Response, ApiError> {
    match route {
        OciRoute::Catalog if m == Method::GET => listing::catalog(state, q).await,
        OciRoute::Tags(name) if m == Method::GET => listing::tags(state, &name, q).await,
        OciRoute::Referrers(name, d) if m == Method::GET => listing::referrers(state, &name, &d, q).await,
        OciRoute::Manifest(name, r) => match *m {
            Method::GET | Method::HEAD => manifests::get(state, &name, &r, h, *m == Method::HEAD).await,
            Method::PUT => {
                state.proxy.check_push(&name).await?;
                manifests::put(state, &name, &r, h, body, username).await
            }
            Method::DELETE => manifests::delete(state, &name, &r, username).await,
            _ => Err(method_not_allowed(m)),
        },
        OciRoute::BadReference(_, raw) => match *m {
            Method::GET | Method::HEAD => Err(ApiError::from(berth_core::CoreError::ManifestUnknown(raw))),
            _ => Err(route::reference_error(&raw)),
        },
        OciRoute::Blob(name, d) => match *m {
            Method::GET | Method::HEAD => blobs::get(state, &name, &d, h, *m == Method::HEAD).await,
            Method::DELETE => blobs::delete(state, &name, &d).await,
            _ => Err(method_not_allowed(m)),
        },
        OciRoute::UploadStart(name) if m == Method::POST => {
            state.proxy.check_push(&name).await?;
            uploads::start(state, &name, q, h, body).await
        }
        OciRoute::Upload(name, id) => match *m {
            Method::GET => uploads::status(state, &name, &id).await,
            Method::PATCH => {
                state.proxy.check_push(&name).await?;
                uploads::patch(state, &name, &id, h, body).await
            }
            Method::PUT => {
                state.proxy.check_push(&name).await?;
                uploads::finish(state, &name, &id, q, h, body).await
            }
            Method::DELETE => uploads::cancel(state, &name, &id).await,
            _ => Err(method_not_allowed(m)),
        },
        _ => Err(method_not_allowed(m)),
    }
}

fn method_not_allowed(m: &Method) -> ApiError {
    ApiError::unsupported(StatusCode::METHOD_NOT_ALLOWED, format!("method {m} is not supported on this endpoint"))
}

/// Where the token service is: under the URL clients reach us at.
pub(crate) fn realm_base(state: &AppState, h: &HeaderMap) -> String {
    state.origin(h)
}

/// A link to `path` for clients: relative, or under the configured external URL.
pub(crate) fn link(state: &AppState, path: &str) -> HeaderValue {
    let s = format!("{}{}", state.external_url, path);
    HeaderValue::from_str(&s).unwrap_or_else(|_| HeaderValue::from_static("/v2/"))
}

pub(crate) fn hv(s: impl ToString) -> HeaderValue {
    HeaderValue::from_str(&s.to_string()).unwrap_or_else(|_| HeaderValue::from_static(""))
}

pub(crate) fn empty(status: StatusCode) -> Response {
    let mut r = Response::new(Body::empty());
    *r.status_mut() = status;
    r
}
