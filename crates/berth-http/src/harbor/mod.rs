//! Harbor's management API, the subset the portal, harbor-cli and terraform use most:
//! `/api/v2.0` users, projects (with metadata and summary), members, robot accounts, audit
//! logs, ping, health and system info, plus `/api/version` and the `/c/login` session.
//!
//! Handlers are thin: parse ([`json`], [`query`]), decide who is asking ([`Caller`]) and
//! whether they may ([`require_project`], [`require_system`]), make one call on the identity
//! store, shape Harbor's JSON ([`dto`]). Every failure is an [`ApiError`] in Harbor's
//! envelope ([`errors`]).

pub(crate) mod artifacts;
mod audit;
mod configurations;
mod cve_allowlist;
mod cve_export;
pub(crate) mod dto;
mod errors;
mod gc;
mod immutable_rules;
mod jobservice;
mod json;
mod labels;
mod members;
mod openapi;
mod projects;
mod purge;
mod query;
mod quotas;
mod replication;
mod repositories;
mod retentions;
mod robots;
mod scan;
mod scan_all;
mod scanners;
mod schedules;
mod search;
mod security;
mod session;
mod signature_trust;
mod system;
mod system_jobs;
mod users;
mod webhooks;

use std::fmt;
use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, any, get, post};
use axum::{Extension, Router};
use serde::Serialize;

use berth_core::access::Principal;
use berth_core::identity::rbac::{Action, Resource};
use berth_core::store::identity::{AuditEntry, Project};

use crate::AppState;
use crate::auth::{Credentials, unix_now};
use crate::error::ApiError;
use errors::{forbidden, not_found, store, unauthorized};

pub(crate) use dto::time;

const API: &str = "/api/v2.0";

fn api(path: &str) -> String {
    format!("{API}{path}")
}

/// One table drives both the router and the published OpenAPI document, so the document
/// lists exactly what is served: `path => [method handler "summary", …]`.
macro_rules! endpoints {
    ($($path:literal => [$($method:ident $handler:path, $summary:literal);+ $(;)?]),+ $(,)?) => {
        pub const OPERATIONS: &[openapi::Operation] = &[
            $($(openapi::Operation { method: stringify!($method), path: $path, summary: $summary },)+)+
        ];

        fn api_routes(m: impl Fn(MethodRouter<AppState>) -> MethodRouter<AppState>) -> Router<AppState> {
            Router::new()$(.route(&api($path), m(MethodRouter::new()$(.$method($handler))+)))+
        }
    };
}

endpoints! {
    "/ping" => [get system::ping, "Ping the API (text Pong)"],
    "/health" => [get system::health, "Health of each component; 503 when unhealthy"],
    "/systeminfo" => [get system::systeminfo, "System information (less for anonymous callers)"],
    "/systeminfo/getcert" => [get system::getcert, "The registry's HTTPS certificate (PEM, ca.crt); 404 when serving HTTP"],
    "/openapi.json" => [get openapi::serve, "This document"],
    "/users" => [get users::list, "List users"; post users::create, "Create a user"],
    "/users/current" => [get users::current, "The calling user"],
    "/users/search" => [get users::search, "Search users by name"],
    "/users/current/permissions" => [get users::permissions, "The caller's permissions in a scope"],
    "/users/{user_id}" => [get users::get, "Get a user"; put users::update, "Update a user's profile"; delete users::delete, "Delete a user"],
    "/users/{user_id}/password" => [put users::password, "Change a password"],
    "/users/{user_id}/sysadmin" => [put users::sysadmin, "Grant or revoke system administrator"],
    "/projects" => [get projects::list, "List projects"; post projects::create, "Create a project"; head projects::head, "Check whether a project name exists"],
    "/projects/{project}" => [get projects::get, "Get a project"; put projects::update, "Update a project"; delete projects::delete, "Delete an empty project"],
    "/projects/{project}/summary" => [get projects::summary, "Project summary"],
    "/projects/{project}/_deletable" => [get projects::deletable, "Whether the project can be deleted now"],
    "/projects/{project}/metadatas" => [get projects::metadata_list, "List project metadata"; post projects::metadata_add, "Add project metadata"],
    "/projects/{project}/metadatas/" => [get projects::metadata_list, "List project metadata"; post projects::metadata_add, "Add project metadata"],
    "/projects/{project}/metadatas/{name}" => [get projects::metadata_get, "Get one metadata value"; put projects::metadata_update, "Update one metadata value"; delete projects::metadata_delete, "Delete one metadata value"],
    "/projects/{project}/members" => [get members::list, "List members"; post members::create, "Add a member"],
    "/projects/{project}/members/{mid}" => [get members::get, "Get a member"; put members::update, "Change a member's role"; delete members::delete, "Remove a member"],
    "/projects/{project}/signature-trust" => [get signature_trust::get, "The keys and certificates signatures are verified against (Berth)"; put signature_trust::put, "Replace the project's signature trust (Berth)"],
    "/projects/{project}/immutabletagrules" => [get immutable_rules::list, "List a project's immutable-tag rules"; post immutable_rules::create, "Add an immutable-tag rule"],
    "/projects/{project}/immutabletagrules/{immutable_rule_id}" => [put immutable_rules::update, "Change (or disable) an immutable-tag rule"; delete immutable_rules::delete, "Remove an immutable-tag rule"],
    "/projects/{project}/logs" => [get audit::project_logs, "A project's audit log"],
    "/projects/{project}/webhook/policies" => [get webhooks::list, "List webhook policies"; post webhooks::create, "Create a webhook policy"],
    "/projects/{project}/webhook/policies/{webhook_policy_id}" => [get webhooks::get, "Get a webhook policy"; put webhooks::update, "Update a webhook policy"; delete webhooks::delete, "Delete a webhook policy"],
    "/projects/{project}/webhook/policies/{webhook_policy_id}/test" => [post webhooks::test, "Send a test event to the policy's targets now and return what each answered (Berth; Harbor has no test operation)"],
    "/projects/{project}/webhook/policies/{webhook_policy_id}/executions" => [get webhooks::executions, "A webhook policy's executions (one per event)"],
    "/projects/{project}/webhook/policies/{webhook_policy_id}/executions/{execution_id}/tasks" => [get webhooks::tasks, "An execution's tasks (one per target)"],
    "/projects/{project}/webhook/policies/{webhook_policy_id}/executions/{execution_id}/tasks/{task_id}/log" => [get webhooks::task_log, "A webhook task's log (text)"],
    "/projects/{project}/webhook/events" => [get webhooks::events, "Supported event types, notify types and payload formats"],
    "/projects/{project}/webhook/lasttrigger" => [get webhooks::last_trigger, "When each policy's event types last triggered (deprecated in Harbor)"],
    "/repositories" => [get repositories::list_all, "List repositories the caller can see"],
    "/projects/{project}/repositories" => [get repositories::list, "List a project's repositories"],
    "/projects/{project}/repositories/{repository}" => [get repositories::get, "Get a repository"; put repositories::update, "Update a repository's description"; delete repositories::delete, "Delete a repository"],
    "/projects/{project}/repositories/{repository}/artifacts" => [get artifacts::list, "List artifacts"; post artifacts::copy, "Copy an artifact here (?from=project/repo@digest or :tag), with its tags"],
    "/projects/{project}/repositories/{repository}/artifacts/{reference}" => [get artifacts::get, "Get an artifact by tag or digest"; delete artifacts::delete, "Delete an artifact and its tags"],
    "/projects/{project}/repositories/{repository}/artifacts/{reference}/accessories" => [get artifacts::list_accessories, "List an artifact's accessories (signatures, SBOMs)"],
    "/projects/{project}/repositories/{repository}/artifacts/{reference}/tags" => [get artifacts::list_tags, "List an artifact's tags"; post artifacts::create_tag, "Tag an artifact"],
    "/projects/{project}/repositories/{repository}/artifacts/{reference}/tags/{tag}" => [delete artifacts::delete_tag, "Remove a tag"],
    "/projects/{project}/repositories/{repository}/artifacts/{reference}/labels" => [post labels::attach, "Add a label to an artifact"],
    "/projects/{project}/repositories/{repository}/artifacts/{reference}/labels/{label_id}" => [delete labels::detach, "Remove a label from an artifact"],
    "/projects/{project}/repositories/{repository}/artifacts/{reference}/scan" => [post scan::scan, "Scan an artifact (scan_type vulnerability or sbom) with the built-in scanner"],
    "/projects/{project}/repositories/{repository}/artifacts/{reference}/scan/stop" => [post scan::stop, "Stop an artifact's scan"],
    "/projects/{project}/repositories/{repository}/artifacts/{reference}/scan/{report_id}/log" => [get scan::log, "A scan's log (text)"],
    "/projects/{project}/repositories/{repository}/artifacts/{reference}/additions/vulnerabilities" => [get scan::vulnerabilities, "An artifact's vulnerability report, keyed by report MIME type"],
    "/projects/{project}/repositories/{repository}/artifacts/{reference}/additions/sbom" => [get scan::sbom, "An artifact's generated SBOM (SPDX JSON)"],
    "/projects/{project}/repositories/{repository}/artifacts/{reference}/additions/build_history" => [get artifacts::build_history, "An image's build history (the config's history)"],
    "/scanners" => [get scanners::list, "Scanner registrations (the built-in scanner first)"; post scanners::create, "Register a scanner adapter (Pluggable Scanner API v1.1)"],
    "/scanners/ping" => [post scanners::ping, "Ask a scanner adapter for its metadata with these settings"],
    "/scanners/{registration_id}" => [get scanners::get, "A scanner registration, with its adapter's health"; put scanners::update, "Change a scanner registration"; delete scanners::delete, "Delete a scanner registration (not the default or built-in one)"; patch scanners::set_default, "Make a scanner registration the system default"],
    "/scanners/{registration_id}/metadata" => [get scanners::metadata, "A scanner's capabilities and properties, as its adapter answers"],
    "/projects/{project}/scanner" => [get scanners::project_scanner, "The scanner a project uses"; put scanners::set_project_scanner, "Choose a project's scanner"],
    "/projects/{project}/scanner/candidates" => [get scanners::project_scanner_candidates, "Scanners a project may choose (the enabled ones)"],
    "/labels" => [get labels::list, "List global or project labels"; post labels::create, "Create a label"],
    "/labels/{id}" => [get labels::get, "Get a label"; put labels::update, "Update a label"; delete labels::delete, "Delete a label"],
    "/robots" => [get robots::list, "List robot accounts"; post robots::create, "Create a robot account"],
    "/robots/{robot_id}" => [get robots::get, "Get a robot account"; put robots::update, "Update a robot account"; patch robots::refresh, "Refresh or set a robot secret"; delete robots::delete, "Delete a robot account"],
    "/audit-logs" => [get audit::list, "The audit log"],
    "/auditlog-exts" => [get audit::list_ext, "The audit log in Harbor 2.13's extended shape (system administrators)"],
    "/auditlog-exts/events" => [get audit::event_types, "The audit event types (<operation>_<resource type>) entries can have"],
    "/projects/{project}/auditlog-exts" => [get audit::project_ext, "A project's audit log in Harbor 2.13's extended shape"],
    "/search" => [get search::search, "Search projects and repositories the caller can see"],
    "/statistics" => [get search::statistics, "Project, repository and storage counts over the caller's projects"],
    "/quotas" => [get quotas::list, "List project quotas"],
    "/quotas/{id}" => [get quotas::get, "Get a project's quota"; put quotas::update, "Set a project's storage limit"],
    "/retentions/metadatas" => [get retentions::metadatas, "Retention rule templates and selectors"],
    "/retentions" => [post retentions::create, "Create a project's tag retention policy"],
    "/retentions/{id}" => [get retentions::get, "Get a retention policy"; put retentions::update, "Update a retention policy"; delete retentions::delete, "Delete a retention policy"],
    "/retentions/{id}/executions" => [get retentions::executions, "A retention policy's executions"; post retentions::run, "Run a retention policy now (or a dry run)"],
    "/retentions/{id}/executions/{eid}" => [patch retentions::stop, "Stop a retention execution"],
    "/retentions/{id}/executions/{eid}/tasks" => [get retentions::tasks, "A retention execution's tasks (one per repository)"],
    "/retentions/{id}/executions/{eid}/tasks/{tid}" => [get retentions::task_log, "A retention task's log (text)"],
    "/system/gc" => [get gc::list, "Garbage collection history"],
    "/system/gc/{gc_id}" => [get gc::get, "A garbage collection"; put gc::stop, "Stop a garbage collection"],
    "/system/gc/{gc_id}/log" => [get gc::log, "A garbage collection's log (text)"],
    "/system/gc/schedule" => [get gc::get_schedule, "The garbage collection schedule"; post gc::create_schedule, "Run a garbage collection now (Manual) or schedule it"; put gc::update_schedule, "Change the garbage collection schedule"],
    "/system/purgeaudit" => [get purge::list, "Audit log purge history"],
    "/system/purgeaudit/{purge_id}" => [get purge::get, "An audit log purge"; put purge::stop, "Stop an audit log purge"],
    "/system/purgeaudit/{purge_id}/log" => [get purge::log, "An audit log purge's log (text)"],
    "/system/purgeaudit/schedule" => [get purge::get_schedule, "The audit log purge schedule"; post purge::create_schedule, "Run an audit log purge now (Manual) or schedule it"; put purge::update_schedule, "Change the audit log purge schedule"],
    "/system/database" => [get system::database, "The metadata database: backend, role, standbys and their lag (Berth)"],
    "/jobservice/pools" => [get jobservice::pools, "Job service worker pools (one per instance)"],
    "/jobservice/pools/{pool_id}/workers" => [get jobservice::workers, "Busy workers of a pool (or all)"],
    "/jobservice/jobs/{job_id}" => [put jobservice::stop_job, "Stop a job"],
    "/jobservice/jobs/{job_id}/log" => [get jobservice::job_log, "A job's log (text)"],
    "/jobservice/queues" => [get jobservice::queues, "Job queues by job type"],
    "/jobservice/queues/{job_type}" => [put jobservice::queue_action, "Stop, pause or resume a job type's queue (or all)"],
    "/jobservice/queues/{job_type}/jobs" => [get jobservice::queue_jobs, "The jobs of a type waiting in its queue, in the order workers take them, paged (Berth)"],
    "/schedules" => [get jobservice::schedules, "Every schedule"],
    "/schedules/{job_type}/paused" => [get jobservice::schedules_paused, "Whether schedules are paused"],
    "/registries" => [get replication::list_registries, "List replication registry endpoints"; post replication::create_registry, "Add a registry endpoint (its secret is stored encrypted)"],
    "/registries/ping" => [post replication::ping_registry, "Check that a registry answers and takes the credentials"],
    "/registries/{id}" => [get replication::get_registry, "Get a registry endpoint (never its secret)"; put replication::update_registry, "Update a registry endpoint"; delete replication::delete_registry, "Delete a registry endpoint no policy uses"],
    "/registries/{id}/info" => [get replication::registry_info, "What a registry's adapter supports (filters, triggers)"],
    "/replication/adapters" => [get replication::adapters, "Registry adapter types"],
    "/replication/adapterinfos" => [get replication::adapter_infos, "How each adapter's endpoint is given"],
    "/replication/policies" => [get replication::list_policies, "List replication policies"; post replication::create_policy, "Create a replication policy"],
    "/replication/policies/{id}" => [get replication::get_policy, "Get a replication policy"; put replication::update_policy, "Update a replication policy"; delete replication::delete_policy, "Delete a replication policy with no run in progress"],
    "/replication/executions" => [get replication::list_executions, "List replication executions"; post replication::start_execution, "Start a replication policy now"],
    "/replication/executions/{id}" => [get replication::get_execution, "Get a replication execution"; put replication::stop_execution, "Stop a replication execution"],
    "/replication/executions/{id}/tasks" => [get replication::list_tasks, "A replication execution's tasks (one per repository)"],
    "/replication/executions/{id}/tasks/{task_id}/log" => [get replication::task_log, "A replication task's log (text)"],
    "/system/CVEAllowlist" => [get cve_allowlist::get_system, "The system's CVE allowlist"; put cve_allowlist::put_system, "Replace the system's CVE allowlist"],
    "/system/scanAll/schedule" => [get scan_all::get_schedule, "The scan all schedule"; post scan_all::create_schedule, "Scan every image now (Manual) or create the scan all schedule"; put scan_all::update_schedule, "Change or remove the scan all schedule"],
    "/system/scanAll/stop" => [post scan_all::stop, "Stop the latest scan all and its scans"],
    "/scans/all/metrics" => [get scan_all::metrics, "Progress of the latest scan all"],
    "/scans/schedule/metrics" => [get scan_all::schedule_metrics, "Progress of the latest scheduled scan all (deprecated in Harbor)"],
    "/security/summary" => [get security::summary, "Vulnerability counts over every artifact (security hub)"],
    "/security/vul" => [get security::vulnerabilities, "Vulnerabilities across artifacts, filtered with q (security hub)"],
    "/export/cve" => [post cve_export::start, "Export a project's vulnerabilities as CSV (a job)"],
    "/export/cve/executions" => [get cve_export::list, "The caller's CVE exports"],
    "/export/cve/execution/{execution_id}" => [get cve_export::get, "A CVE export"],
    "/export/cve/download/{execution_id}" => [get cve_export::download, "Download a CVE export's CSV (once)"],
    "/configurations" => [get configurations::get, "Runtime settings (system administrators)"; put configurations::update, "Change runtime settings (system administrators)"],
}

/// The management API's routes, to merge into the main router. (Not nested: handlers see
/// the full path, which the `Link` header repeats.)
pub fn router(state: &AppState) -> Router<AppState> {
    let keys = Arc::new(session::Keys::new(state));
    let m = |r: MethodRouter<AppState>| r.fallback(method_not_allowed);
    api_routes(m)
        .route(API, any(unknown_endpoint))
        .route(&api("/{*rest}"), any(unknown_endpoint))
        .route("/api/version", m(get(system::version)))
        .route("/c/login", m(post(session::login)))
        .route("/c/log_out", m(get(session::logout)))
        .layer(Extension(keys.clone()))
        .layer(axum::middleware::from_fn_with_state(keys, session::layer))
}

async fn method_not_allowed() -> ApiError {
    errors::method_not_allowed()
}

async fn unknown_endpoint() -> ApiError {
    not_found("no such API endpoint")
}

/// Who is calling: Basic credentials (users and `robot$…`) first, then the session cookie,
/// otherwise anonymous. Wrong credentials are a 401, never a silent downgrade.
pub struct Caller(pub Principal);

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        match Credentials::from_headers(&parts.headers)? {
            Credentials::Basic(user, password) => Ok(Caller(state.auth.login(&user, &password).await?)),
            Credentials::Bearer(_) => {
                Err(unauthorized("bearer tokens are for the registry API (/v2); use Basic auth or a session"))
            }
            Credentials::None => match parts.extensions.get::<session::Session>() {
                Some(s) => Ok(Caller(session::principal(state, s).await?.unwrap_or(Principal::Anonymous))),
                None => Ok(Caller(Principal::Anonymous)),
            },
        }
    }
}

impl Caller {
    pub fn require_authenticated(&self) -> Result<(), ApiError> {
        if self.0.is_authenticated() { Ok(()) } else { Err(unauthorized("authentication required")) }
    }

    /// Harbor's refusal: 401 for anonymous callers, 403 for everyone else.
    pub fn deny(&self) -> ApiError {
        if self.0.is_authenticated() {
            forbidden(format!("{} has no permission for this operation", self.0.name()))
        } else {
            unauthorized("authentication required")
        }
    }

    /// The local user id, for users (not robots or anonymous).
    pub fn user_id(&self) -> Option<i64> {
        match &self.0 {
            Principal::User { id, .. } => Some(*id),
            _ => None,
        }
    }
}

/// A `{project_name_or_id}` path segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProjectRef {
    Id(i64),
    Name(String),
}

impl ProjectRef {
    /// Harbor's rule: a name when `X-Is-Resource-Name: true`, else an id if it parses.
    pub fn parse(raw: &str, headers: &HeaderMap) -> Self {
        let by_name = headers
            .get(HeaderName::from_static("x-is-resource-name"))
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.eq_ignore_ascii_case("true"));
        match raw.parse::<i64>() {
            Ok(id) if !by_name => ProjectRef::Id(id),
            _ => ProjectRef::Name(raw.to_string()),
        }
    }
}

impl fmt::Display for ProjectRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProjectRef::Id(id) => write!(f, "{id}"),
            ProjectRef::Name(n) => f.write_str(n),
        }
    }
}

pub async fn find_project(state: &AppState, r: &ProjectRef) -> Result<Option<Project>, ApiError> {
    let identity = &state.auth.identity;
    match r {
        ProjectRef::Id(id) => identity.project(*id).await,
        ProjectRef::Name(name) => identity.project_by_name(name).await,
    }
    .map_err(store)
}

/// The project, if the caller may do `action` on `resource` in it. As in Harbor, a
/// project the caller may not see and a project that does not exist look the same (401
/// anonymous, 403 otherwise); only system administrators learn that it does not exist.
pub async fn require_project(
    state: &AppState,
    caller: &Caller,
    r: &ProjectRef,
    resource: Resource,
    action: Action,
) -> Result<Project, ApiError> {
    match find_project(state, r).await? {
        Some(p) if state.auth.access.allowed(&caller.0, &p, resource, action).await.map_err(store)? => Ok(p),
        None if caller.0.is_sysadmin() => Err(not_found(format!("project {r} not found"))),
        _ => Err(caller.deny()),
    }
}

/// Whether the caller holds a system-level permission: system administrators hold all, a
/// system-level robot those it was given (`kind: system`).
pub fn system_allows(principal: &Principal, resource: &str, action: &str) -> bool {
    match principal {
        Principal::User { sysadmin, .. } => *sysadmin,
        Principal::Robot { project_id: 0, permissions, .. } => {
            permissions.iter().any(|p| p.kind == "system" && p.resource == resource && p.action == action)
        }
        _ => false,
    }
}

/// Harbor's system-level permissions (`src/common/rbac/const.go`, system scope): what a
/// system-level robot may be given, and what `/users/current/permissions?scope=/system` lists.
pub const SYSTEM_POLICIES: &[(&str, &str)] = &[
    ("audit-log", "list"),
    ("catalog", "read"),
    ("garbage-collection", "read"),
    ("garbage-collection", "create"),
    ("garbage-collection", "list"),
    ("garbage-collection", "update"),
    ("garbage-collection", "stop"),
    ("jobservice-monitor", "list"),
    ("jobservice-monitor", "stop"),
    ("label", "read"),
    ("label", "create"),
    ("label", "delete"),
    ("label", "update"),
    ("ldap-user", "create"),
    ("ldap-user", "list"),
    ("preheat-instance", "read"),
    ("preheat-instance", "create"),
    ("preheat-instance", "delete"),
    ("preheat-instance", "list"),
    ("preheat-instance", "update"),
    ("project", "list"),
    ("project", "create"),
    ("purge-audit", "read"),
    ("purge-audit", "create"),
    ("purge-audit", "list"),
    ("purge-audit", "update"),
    ("purge-audit", "stop"),
    ("quota", "read"),
    ("quota", "list"),
    ("quota", "update"),
    ("registry", "read"),
    ("registry", "create"),
    ("registry", "delete"),
    ("registry", "list"),
    ("registry", "update"),
    ("replication", "read"),
    ("replication", "create"),
    ("replication", "list"),
    ("replication-adapter", "list"),
    ("replication-policy", "read"),
    ("replication-policy", "create"),
    ("replication-policy", "delete"),
    ("replication-policy", "list"),
    ("replication-policy", "update"),
    ("robot", "create"),
    ("robot", "read"),
    ("robot", "list"),
    ("robot", "delete"),
    ("scan-all", "read"),
    ("scan-all", "create"),
    ("scan-all", "update"),
    ("scan-all", "stop"),
    ("scanner", "read"),
    ("scanner", "create"),
    ("scanner", "delete"),
    ("scanner", "list"),
    ("scanner", "update"),
    ("security-hub", "read"),
    ("security-hub", "list"),
    ("system-volumes", "read"),
    ("user", "create"),
    ("user", "read"),
    ("user", "update"),
    ("user", "list"),
    ("user", "delete"),
    ("user-group", "create"),
    ("user-group", "read"),
    ("user-group", "update"),
    ("user-group", "list"),
    ("user-group", "delete"),
];

pub fn require_system(caller: &Caller, resource: &str, action: &str) -> Result<(), ApiError> {
    caller.require_authenticated()?;
    if system_allows(&caller.0, resource, action) { Ok(()) } else { Err(caller.deny()) }
}

/// Records a management change. The change has happened; a failure to record it is logged,
/// not reported to the caller as if the change had failed.
pub async fn audit(state: &AppState, caller: &Caller, project_id: i64, operation: &str, kind: &str, resource: &str) {
    // The event types offered for purging and listing are the ones in this list.
    debug_assert!(
        berth_core::audit::is_recorded(operation, kind),
        "audit entry {operation}_{kind}: add it to berth_core::audit::EVENT_TYPES"
    );
    let entry = AuditEntry {
        id: 0,
        project_id,
        operation: operation.to_string(),
        resource_type: kind.to_string(),
        resource: resource.to_string(),
        username: caller.0.name().to_string(),
        op_time: unix_now(),
    };
    if let Err(e) = state.audit_log.append(std::slice::from_ref(&entry)).await {
        tracing::error!(error = %e, operation, kind, resource, "could not write an audit log entry");
    }
}

/// A JSON response.
pub fn json<T: Serialize>(status: StatusCode, body: &T) -> Response {
    match serde_json::to_vec(body) {
        Ok(b) => (status, [(header::CONTENT_TYPE, "application/json")], b).into_response(),
        Err(e) => ApiError::internal_error(format!("encoding a response: {e}")).into_response(),
    }
}

/// A page of a list: the items, `X-Total-Count` and, when there are other pages, `Link`.
pub fn page<T: Serialize>(items: &[T], total: u64, link: Option<String>) -> Response {
    let mut res = json(StatusCode::OK, &items);
    let h = res.headers_mut();
    h.insert(HeaderName::from_static("x-total-count"), HeaderValue::from(total));
    if let Some(l) = link.and_then(|l| HeaderValue::from_str(&l).ok()) {
        h.insert(header::LINK, l);
    }
    res
}

/// An empty `200 OK`.
pub fn ok() -> Response {
    StatusCode::OK.into_response()
}

/// `201 Created` with `Location` and an optional body.
pub fn created(location: &str) -> Response {
    (StatusCode::CREATED, [errors::location(location)]).into_response()
}

/// A numeric path parameter, or a 400 naming it.
pub fn parse_id(raw: &str, name: &str) -> Result<i64, ApiError> {
    raw.parse::<i64>().map_err(|_| errors::bad_request(format!("{name} must be an integer, got {raw:?}")))
}
