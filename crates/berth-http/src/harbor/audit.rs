//! `/audit-logs` and `/projects/{name}/logs` (goharbor/harbor `src/server/v2.0/handler/auditlog.go`).
//! System administrators (and robots given `audit-log:list`) see every entry; other users
//! the entries of the projects whose logs they may list (as project admins).
//!
//! Harbor 2.13's extended audit log, the same entries in its newer shape:
//! `/auditlog-exts/events` (the event types, [`berth_core::audit`]), `/auditlog-exts`
//! (system-wide, for those who may list the system's audit log) and
//! `/projects/{project_name_or_id}/auditlog-exts`.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::Response;

use berth_core::access::Principal;
use berth_core::identity::rbac::{Action, Resource};
use berth_core::store::identity::{AuditEntry, AuditFilter, Page, ProjectFilter, TextMatch};

use super::dto::{AuditLogExtResp, AuditLogResp, EventTypeResp, parse_time};
use super::errors::{bad_request, store};
use super::query::{ALL, ListQuery, Match, Sort, SortValue};
use super::{Caller, ProjectRef, json, page, require_project, require_system, system_allows};
use crate::AppState;
use crate::error::ApiError;

const SORTABLE: &[&str] = &["op_time", "id", "username", "operation", "resource_type", "resource"];

pub async fn list(State(state): State<AppState>, caller: Caller, uri: Uri) -> Result<Response, ApiError> {
    caller.require_authenticated()?;
    let q = ListQuery::parse(uri.query())?;
    q.check_sort(SORTABLE)?;
    let filter = filter(&q)?;
    let filters = if system_allows(&caller.0, "audit-log", "list") {
        vec![filter]
    } else if let Principal::User { id, .. } = &caller.0 {
        let member_of = ProjectFilter { member_user_id: Some(*id), ..ProjectFilter::default() };
        let (projects, _) = state.auth.identity.list_projects(&member_of, &ALL).await.map_err(store)?;
        let mut filters = Vec::new();
        for p in projects {
            if state.auth.access.allowed(&caller.0, &p, Resource::Log, Action::List).await.map_err(store)? {
                filters.push(AuditFilter { project_id: Some(p.id), ..filter.clone() });
            }
        }
        filters
    } else {
        Vec::new()
    };
    let (entries, total) = fetch(&state, &filters, &q).await?;
    let body: Vec<AuditLogResp> = entries.iter().map(AuditLogResp::from).collect();
    Ok(page(&body, total, q.link(uri.path(), total)))
}

pub async fn project_logs(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    uri: Uri,
) -> Result<Response, ApiError> {
    let project = require_project(&state, &caller, &ProjectRef::Name(name), Resource::Log, Action::List).await?;
    let q = ListQuery::parse(uri.query())?;
    q.check_sort(SORTABLE)?;
    let filter = AuditFilter { project_id: Some(project.id), ..filter(&q)? };
    let (entries, total) = fetch(&state, &[filter], &q).await?;
    let body: Vec<AuditLogResp> = entries.iter().map(AuditLogResp::from).collect();
    Ok(page(&body, total, q.link(uri.path(), total)))
}

/// `GET /auditlog-exts/events`: every event type Berth records.
pub async fn event_types(caller: Caller) -> Result<Response, ApiError> {
    require_system(&caller, "audit-log", "list")?;
    let body: Vec<EventTypeResp> =
        berth_core::audit::event_types().map(|event_type| EventTypeResp { event_type }).collect();
    Ok(json(StatusCode::OK, &body))
}

/// `GET /auditlog-exts`: the whole audit log, for those who may list the system's.
pub async fn list_ext(State(state): State<AppState>, caller: Caller, uri: Uri) -> Result<Response, ApiError> {
    require_system(&caller, "audit-log", "list")?;
    let q = ListQuery::parse(uri.query())?;
    q.check_sort(SORTABLE)?;
    let (entries, total) = fetch(&state, &[filter(&q)?], &q).await?;
    let body: Vec<AuditLogExtResp> = entries.iter().map(AuditLogExtResp::from).collect();
    Ok(page(&body, total, q.link(uri.path(), total)))
}

/// `GET /projects/{project_name_or_id}/auditlog-exts`.
pub async fn project_ext(
    State(state): State<AppState>,
    caller: Caller,
    Path(raw): Path<String>,
    headers: HeaderMap,
    uri: Uri,
) -> Result<Response, ApiError> {
    let r = ProjectRef::parse(&raw, &headers);
    let project = require_project(&state, &caller, &r, Resource::Log, Action::List).await?;
    let q = ListQuery::parse(uri.query())?;
    q.check_sort(SORTABLE)?;
    let filter = AuditFilter { project_id: Some(project.id), ..filter(&q)? };
    let (entries, total) = fetch(&state, &[filter], &q).await?;
    let body: Vec<AuditLogExtResp> = entries.iter().map(AuditLogExtResp::from).collect();
    Ok(page(&body, total, q.link(uri.path(), total)))
}

/// Harbor's audit log query: `username`, `operation`, `resource_type` and `resource` as
/// exact (`k=v`), fuzzy (`k=~v`) or one-of (`k={a b}`) matches, `op_time=[from~to]` with
/// either bound a UTC time (`2024-01-31 23:59:59`, `2024-01-31T23:59:59`) or unix seconds.
/// The store applies every condition. Unknown keys are refused, never silently ignored.
/// A `resource_type` in Harbor's spelling (`configure`) means Berth's (`configuration`).
fn filter(q: &ListQuery) -> Result<AuditFilter, ApiError> {
    let mut f = AuditFilter::default();
    for (key, m) in &q.terms {
        let slot = match key.as_str() {
            "username" => &mut f.username,
            "operation" => &mut f.operation,
            "resource_type" => &mut f.resource_type,
            "resource" => &mut f.resource,
            "op_time" => {
                let Match::Range(from, to) = m else {
                    return Err(bad_request(format!(
                        "op_time takes a range such as [2024-01-01 00:00:00~2024-01-31 23:59:59], not a {}",
                        m.describe()
                    )));
                };
                f.op_time_from = from.as_deref().map(op_time).transpose()?;
                f.op_time_to = to.as_deref().map(op_time).transpose()?;
                continue;
            }
            _ => {
                return Err(bad_request(format!(
                    "cannot filter audit logs by {key:?}; filterable fields: username, operation, resource_type, resource, op_time"
                )));
            }
        };
        // Harbor's names of resource types (`configure`) find Berth's entries.
        let value = |v: &String| {
            if key == "resource_type" { berth_core::audit::resource_type(v).to_owned() } else { v.clone() }
        };
        *slot = Some(match m {
            Match::Exact(v) => TextMatch::Exact(value(v)),
            Match::Fuzzy(v) => TextMatch::Contains(value(v)),
            Match::Or(vs) if !vs.is_empty() => TextMatch::AnyOf(vs.iter().map(value).collect()),
            m => {
                return Err(bad_request(format!(
                    "{key} takes k=v, k=~v or k={{a b}}, not an empty list or a {}",
                    m.describe()
                )));
            }
        });
    }
    Ok(f)
}

fn op_time(v: &str) -> Result<i64, ApiError> {
    let v = v.trim().trim_matches(['"', '\'']);
    v.parse::<i64>().ok().or_else(|| parse_time(v)).ok_or_else(|| {
        bad_request(format!("op_time: {v:?} is not a time like 2024-01-31 23:59:59 (UTC) or unix seconds"))
    })
}

/// One page over one or several filters (one per project), newest first unless sorted
/// otherwise. Several filters are merged from each one's first `page × page_size` rows.
async fn fetch(state: &AppState, filters: &[AuditFilter], q: &ListQuery) -> Result<(Vec<AuditEntry>, u64), ApiError> {
    let identity = &state.auth.identity;
    let newest_first = q.sorted_like(&Sort { key: "op_time".into(), desc: true });
    if filters.len() == 1 && newest_first {
        return identity.list_audit(&filters[0], &q.store_page()).await.map_err(store);
    }
    let window = if newest_first { Page { page: 1, page_size: q.page.saturating_mul(q.page_size) } } else { ALL };
    let mut all = Vec::new();
    let mut total = 0;
    for f in filters {
        let (entries, n) = identity.list_audit(f, &window).await.map_err(store)?;
        all.extend(entries);
        total += n;
    }
    all.sort_by_key(|e| std::cmp::Reverse((e.op_time, e.id)));
    Ok((q.sort_and_page(all, sort_key), total))
}

fn sort_key(e: &AuditEntry, key: &str) -> SortValue {
    match key {
        "id" => SortValue::Int(e.id),
        "username" => SortValue::Text(e.username.clone()),
        "operation" => SortValue::Text(e.operation.clone()),
        "resource_type" => SortValue::Text(e.resource_type.clone()),
        "resource" => SortValue::Text(e.resource.clone()),
        _ => SortValue::Int(e.op_time),
    }
}

#[cfg(test)]
mod tests {
    /// Every `audit(…)` call in the API's handlers that names its operation and resource
    /// type literally records an event type the list has (the others are checked when they
    /// run, in debug builds): a new kind of entry must be purgeable and listed.
    #[test]
    fn audited_event_types_are_in_the_list() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/src/harbor");
        let mut seen = 0;
        for f in std::fs::read_dir(dir).unwrap() {
            let path = f.unwrap().path();
            let src = std::fs::read_to_string(&path).unwrap().split_whitespace().collect::<Vec<_>>().join(" ");
            for call in src.split("audit(").skip(1) {
                let args: Vec<&str> = call.splitn(6, ", ").collect();
                let literal = |i: usize| args.get(i).and_then(|a| a.strip_prefix('"')?.strip_suffix('"'));
                if let (Some(op), Some(kind)) = (literal(3), literal(4)) {
                    seen += 1;
                    assert!(
                        berth_core::audit::is_recorded(op, kind),
                        "{}: {op}_{kind} is not in berth_core::audit::EVENT_TYPES",
                        path.display()
                    );
                }
            }
        }
        assert!(seen > 40, "found only {seen} audit calls");
    }
}
