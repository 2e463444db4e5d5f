//! The OpenAPI document of the management API, built from the same endpoint table that
//! builds the router (see `endpoints!` in `mod.rs`), so it cannot drift from what Berth
//! serves. Served at `/api/v2.0/openapi.json`.

use std::collections::BTreeMap;

use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// One documented operation: an HTTP method on a path below `/api/v2.0`.
pub struct Operation {
    pub method: &'static str,
    pub path: &'static str,
    pub summary: &'static str,
}

fn operation_id(method: &str, path: &str) -> String {
    let mut id = method.to_string();
    for seg in path.split('/').filter(|s| !s.is_empty()) {
        let seg = seg.trim_start_matches('{').trim_end_matches('}');
        let mut cs = seg.chars().filter(|c| c.is_ascii_alphanumeric());
        if let Some(first) = cs.next() {
            id.push(first.to_ascii_uppercase());
            id.extend(cs);
        }
    }
    id
}

fn path_params(path: &str) -> Vec<Value> {
    path.split('/')
        .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
        .map(|name| json!({ "name": name, "in": "path", "required": true, "schema": { "type": "string" } }))
        .collect()
}

/// The OpenAPI 3 document for `ops`.
pub fn document(ops: &[Operation]) -> Value {
    let mut paths: BTreeMap<&str, serde_json::Map<String, Value>> = BTreeMap::new();
    for op in ops {
        let mut o = json!({
            "operationId": operation_id(op.method, op.path),
            "summary": op.summary,
            "tags": [op.path.split('/').nth(1).unwrap_or("")],
            "responses": {
                "default": {
                    "description": "Harbor's error envelope",
                    "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Errors" } } }
                }
            }
        });
        let params = path_params(op.path);
        if !params.is_empty() {
            o["parameters"] = Value::Array(params);
        }
        paths.entry(op.path).or_default().insert(op.method.to_string(), o);
    }
    json!({
        "openapi": "3.0.3",
        "info": {
            "title": "Berth: Harbor-compatible management API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "The subset of Harbor's /api/v2.0 that Berth serves, with Harbor's paths, JSON and conventions."
        },
        "servers": [{ "url": "/api/v2.0" }],
        "components": {
            "securitySchemes": { "basic": { "type": "http", "scheme": "basic" } },
            "schemas": {
                "Errors": {
                    "type": "object",
                    "properties": { "errors": { "type": "array", "items": {
                        "type": "object",
                        "properties": { "code": { "type": "string" }, "message": { "type": "string" } }
                    } } }
                }
            }
        },
        "security": [{ "basic": [] }],
        "paths": paths,
    })
}

pub async fn serve() -> Response {
    let body = document(super::OPERATIONS).to_string();
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn document_lists_every_operation_once() {
        let doc = document(super::super::OPERATIONS);
        let mut count = 0;
        for (path, methods) in doc["paths"].as_object().unwrap() {
            for (method, op) in methods.as_object().unwrap() {
                count += 1;
                assert!(op["operationId"].as_str().unwrap().starts_with(method.as_str()), "{method} {path}");
                let placeholders = path.matches('{').count();
                let params = op["parameters"].as_array().map(|a| a.len()).unwrap_or(0);
                assert_eq!(placeholders, params, "{method} {path}");
            }
        }
        assert_eq!(count, super::super::OPERATIONS.len());
        assert_eq!(operation_id("get", "/projects/{project}/members/{mid}"), "getProjectsProjectMembersMid");
    }
}
