//! `GET /service/token`: Docker token authentication as Harbor's token service does it.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use berth_core::access::Principal;
use berth_token::{ResourceAccess, SERVICE, Scope};

use crate::AppState;
use crate::auth::{Credentials, unix_now};
use crate::error::ApiError;

pub async fn token(State(state): State<AppState>, uri: Uri, headers: HeaderMap) -> Result<Response, ApiError> {
    let params: Vec<(String, String)> =
        form_urlencoded::parse(uri.query().unwrap_or("").as_bytes()).into_owned().collect();
    let auth = &state.auth;
    let service = params.iter().find(|(k, _)| k == "service").map(|(_, v)| v.as_str());
    if let Some(s) = service
        && s != SERVICE
    {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "BAD_REQUEST",
            format!("unknown service {s:?}; use {SERVICE}"),
        ));
    }
    let scopes = Scope::parse_all(params.iter().filter(|(k, _)| k == "scope").map(|(_, v)| v.as_str()))
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "BAD_REQUEST", e.to_string()))?;
    let principal = match Credentials::from_headers(&headers)? {
        Credentials::Basic(u, p) => match auth.login(&u, &p).await {
            Ok(p) => p,
            // Harbor: bad credentials with a scope get an anonymous token (public pulls
            // still work); without a scope it is a failed `docker login`.
            Err(e) if e.status == StatusCode::UNAUTHORIZED && !scopes.is_empty() => Principal::Anonymous,
            Err(e) => return Err(e),
        },
        _ => Principal::Anonymous,
    };
    if !principal.is_authenticated() && scopes.is_empty() {
        return Err(ApiError::new(StatusCode::UNAUTHORIZED, "UNAUTHORIZED", "authentication required"));
    }
    let mut granted = Vec::with_capacity(scopes.len());
    for s in scopes {
        let actions: Vec<String> = match s.kind.as_str() {
            "repository" => {
                let allowed = auth.repository_actions(&principal, &s.name).await?;
                let mut acts: Vec<String> = allowed
                    .iter()
                    .map(|a| a.as_str().to_string())
                    .filter(|a| s.actions.iter().any(|r| r == a || r == "*"))
                    .collect();
                // Only when asked by name (`*` stays pull, push, delete): scanners' robots
                // pull with it, and it exempts them from the project's pull policies.
                if s.actions.iter().any(|r| r == "scanner-pull") && auth.may_scanner_pull(&principal, &s.name).await {
                    acts.push("scanner-pull".to_string());
                }
                acts
            }
            "registry" if s.name == "catalog" && principal.is_sysadmin() => vec!["*".to_string()],
            _ => Vec::new(),
        };
        granted.push(ResourceAccess { kind: s.kind, name: s.name, actions });
    }
    let now = unix_now();
    let token = auth
        .tokens
        .issue(principal.name(), granted, now, auth.token_ttl_secs)
        .map_err(|e| ApiError::internal_error(e.to_string()))?;
    let issued_at = time_rfc3339(now);
    let body = json!({ "token": token, "access_token": "", "expires_in": auth.token_ttl_secs, "issued_at": issued_at });
    Ok((StatusCode::OK, [(header::CONTENT_TYPE, "application/json")], body.to_string()).into_response())
}

/// RFC 3339 in UTC without a date library: days-from-civil arithmetic.
fn time_rfc3339(unix: i64) -> String {
    let days = unix.div_euclid(86_400);
    let secs = unix.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z", secs / 3600, secs % 3600 / 60, secs % 60)
}

#[cfg(test)]
mod tests {
    #[test]
    fn rfc3339() {
        assert_eq!(super::time_rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(super::time_rfc3339(1_795_000_000), "2026-11-18T11:06:40Z");
        assert_eq!(super::time_rfc3339(951_782_400), "2000-02-29T00:00:00Z");
    }
}
