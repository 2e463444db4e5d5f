//! `/configurations` (goharbor/harbor `src/server/v2.0/handler/config.go`), for system
//! administrators: the runtime settings ([`berth_core::settings`]) in Harbor's
//! `{"<key>": {"value": …, "editable": …}}` shape, changed by `PUT` with Harbor's body
//! (`{"<key>": value, …}`). The rules are berth-core's; a refused value is a 400 naming
//! the key. Infrastructure settings from the configuration file are shown as not
//! editable, and a `PUT` that would change one is refused naming the key and the fix.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{Value, json as j};

use berth_core::settings::{SettingsError, UpdateError};

use super::errors::{bad_request, store};
use super::json::Body;
use super::{Caller, audit, json, ok};
use crate::AppState;
use crate::error::ApiError;

/// Settings that come from the configuration file, with the variable that sets them.
fn fixed(state: &AppState) -> BTreeMap<&'static str, (Value, &'static str)> {
    BTreeMap::from([("token_expiration", (j!(state.auth.token_ttl_secs / 60), "BERTH_AUTH_TOKEN_TTL_MINUTES"))])
}

fn require_admin(caller: &Caller) -> Result<(), ApiError> {
    caller.require_authenticated()?;
    if caller.0.is_sysadmin() { Ok(()) } else { Err(caller.deny()) }
}

pub async fn get(State(state): State<AppState>, caller: Caller) -> Result<Response, ApiError> {
    require_admin(&caller)?;
    let mut body: BTreeMap<&str, Value> =
        state.settings.get().values().into_iter().map(|(k, v)| (k, j!({"value": v, "editable": true}))).collect();
    for (k, (v, _)) in fixed(&state) {
        body.insert(k, j!({"value": v, "editable": false}));
    }
    Ok(json(StatusCode::OK, &body))
}

/// Whether `sent` is the current value: equal JSON, or the same number however written.
fn same(sent: &Value, cur: &Value) -> bool {
    sent == cur || matches!((sent.as_f64(), cur.as_f64()), (Some(a), Some(b)) if a == b)
}

pub async fn update(
    State(state): State<AppState>,
    caller: Caller,
    Body(mut body): Body<BTreeMap<String, Value>>,
) -> Result<Response, ApiError> {
    require_admin(&caller)?;
    // File settings may be repeated as they are (clients send back what GET returned).
    for (key, (cur, var)) in fixed(&state) {
        if let Some(sent) = body.remove(key)
            && !same(&sent, &cur)
        {
            return Err(bad_request(format!(
                "{key} cannot be changed through the API; set it in the configuration file or with {var}"
            )));
        }
    }
    let changed = state.settings.update(&body).await.map_err(|e| match e {
        UpdateError::Invalid(e @ SettingsError::UnknownKey(_)) => bad_request(e.to_string()),
        UpdateError::Invalid(e @ SettingsError::Invalid { .. }) => bad_request(e.to_string()),
        UpdateError::Store(e) => store(e),
    })?;
    if !changed.is_empty() {
        audit(&state, &caller, 0, "update", "configuration", &changed.join(",")).await;
    }
    Ok(ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_compare_by_value() {
        assert!(same(&j!(30), &j!(30)));
        assert!(same(&j!(30.0), &j!(30)));
        assert!(!same(&j!(31), &j!(30)));
        assert!(!same(&j!("30"), &j!(30)));
        assert!(same(&j!("db_auth"), &j!("db_auth")));
    }
}
