//! `/configurations` (goharbor/harbor `src/server/v2.0/handler/config.go`): the settings
//! Berth has, in Harbor's `{"<key>": {"value": …, "editable": false}}` shape. None can be
//! changed through the API: they come from Berth's configuration file. A `PUT` that
//! repeats current values is accepted; one that would change a value, or names a key
//! Berth does not have, is refused with a 400 naming the key, never silently ignored.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{Value, json as j};

use super::errors::bad_request;
use super::json::Body;
use super::{Caller, json, ok};
use crate::AppState;
use crate::error::ApiError;

/// The current values, computed from the running configuration.
fn current(state: &AppState) -> BTreeMap<&'static str, Value> {
    BTreeMap::from([
        ("auth_mode", j!("db_auth")),
        ("token_expiration", j!(state.auth.token_ttl_secs / 60)),
        ("self_registration", j!(false)),
        ("project_creation_restriction", j!("everyone")),
        ("read_only", j!(false)),
        ("robot_name_prefix", j!("robot$")),
    ])
}

fn require_admin(caller: &Caller) -> Result<(), ApiError> {
    caller.require_authenticated()?;
    if caller.0.is_sysadmin() { Ok(()) } else { Err(caller.deny()) }
}

pub async fn get(State(state): State<AppState>, caller: Caller) -> Result<Response, ApiError> {
    require_admin(&caller)?;
    let body: BTreeMap<&str, Value> =
        current(&state).into_iter().map(|(k, v)| (k, j!({"value": v, "editable": false}))).collect();
    Ok(json(StatusCode::OK, &body))
}

/// Whether `sent` is the current value: equal JSON, or the same number however written.
fn same(sent: &Value, cur: &Value) -> bool {
    sent == cur || matches!((sent.as_f64(), cur.as_f64()), (Some(a), Some(b)) if a == b)
}

pub async fn update(
    State(state): State<AppState>,
    caller: Caller,
    Body(body): Body<BTreeMap<String, Value>>,
) -> Result<Response, ApiError> {
    require_admin(&caller)?;
    let cur = current(&state);
    for (key, value) in &body {
        match cur.get(key.as_str()) {
            None => return Err(bad_request(format!("{key} is not a configuration item Berth supports"))),
            Some(c) if !same(value, c) => {
                return Err(bad_request(format!(
                    "{key} cannot be changed through the API in this version; set it in the configuration file"
                )));
            }
            Some(_) => {}
        }
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
