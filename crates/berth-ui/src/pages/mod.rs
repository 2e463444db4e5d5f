//! The pages, one module per area. Each handler: build the [`Ctx`](crate::Ctx), ask the
//! API, render; each POST goes through [`Ctx::submit`](crate::Ctx::submit): check the
//! form's CSRF token, send the change to the API with it, redirect with a flash message
//! (the API's own error on failure).

pub mod admin;
pub mod artifact;
pub mod auth;
pub mod bulk;
pub mod hub;
pub mod labels;
pub mod members;
pub mod policies;
pub mod projects;
pub mod replication;
pub mod repos;
pub mod retention;
pub mod robots;
pub mod scanners;
pub mod search;
pub mod security;
pub mod signatures;
pub mod summary;
pub mod system;

use axum::extract::Path;
use axum::http::Method;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde_json::Value;

use crate::layout::error_page;
use crate::{Ctx, enc};

/// `/api/v2.0/projects/{p}` (by name).
pub fn api_project(p: &str) -> String {
    format!("/api/v2.0/projects/{}", enc(p))
}

/// `/api/v2.0/projects/{p}/repositories/{r}`, with `r` encoded twice as Harbor wants.
pub fn api_repo(p: &str, r: &str) -> String {
    format!("{}/repositories/{}", api_project(p), enc(&enc(r)))
}

/// `/projects/{p}/repos/{repo…}` (the repository name without the project, slashes kept).
pub fn ui_repo(p: &str, r: &str) -> String {
    let segs: Vec<String> = r.split('/').map(enc).collect();
    format!("/projects/{}/repos/{}", enc(p), segs.join("/"))
}

/// The project as the API shows it to this caller, or the page to show instead. A
/// project named by id (Harbor's portal URLs use ids) redirects to its name's URL.
pub async fn project(ctx: &Ctx, p: &str) -> Result<Value, Response> {
    let a = ctx.call(Method::GET, &api_project(p), None).await;
    if !a.ok() {
        return Err(refusal(ctx, &a));
    }
    let name = a.json["name"].as_str().unwrap_or(p);
    if name != p {
        let old = format!("/projects/{}", enc(p));
        let rest = ctx.here.strip_prefix(&old).unwrap_or("");
        return Err(ctx.redirect(&format!("/projects/{}{rest}", enc(name))));
    }
    Ok(a.json)
}

/// `/projects/{p}/{tab}`: a project's page in the UI.
pub fn ui_project(p: &str, tab: &str) -> String {
    format!("/projects/{}/{tab}", enc(p))
}

/// What a project page starts from: a signed-in caller, the project as the API shows it to
/// them, and what they may do in it.
pub struct ProjectPage {
    pub json: Value,
    pub id: i64,
    pub perms: Vec<(String, String)>,
}

impl ProjectPage {
    pub fn can(&self, resource: &str, action: &str) -> bool {
        has(&self.perms, resource, action)
    }
}

/// Sign-in, the project and the caller's permissions in it, or the page to show instead.
pub async fn project_page(ctx: &Ctx, p: &str) -> Result<ProjectPage, Response> {
    ctx.require_user()?;
    let json = project(ctx, p).await?;
    let id = json["project_id"].as_i64().unwrap_or(0);
    let perms = ctx.project_permissions(id).await;
    Ok(ProjectPage { json, id, perms })
}

/// A project's edit page: its tabs (`tab` current), the way back to that tab, the heading
/// (`id="edit"`, which the form names as its label), then the form.
pub fn project_edit_page(ctx: &Ctx, p: &str, tab: &str, name: &str, heading: &str, form: maud::Markup) -> Response {
    crate::layout::page(
        ctx,
        &format!("{p} · {name}"),
        crate::layout::Nav::Projects,
        maud::html! {
            (crate::layout::project_tabs(ctx, p, tab))
            p { a href=(ui_project(p, tab)) { "← " (ctx.t(&format!("tab.{tab}"))) } }
            h2 id="edit" { (ctx.t(heading)) }
            (form)
        },
    )
}

/// A page the caller's permissions (as the API lists them) do not allow: a change form
/// for someone who may not change (the API would refuse the change anyway).
pub fn forbidden(ctx: &Ctx) -> Response {
    error_page(ctx, StatusCode::FORBIDDEN, ctx.t("forbidden"))
}

/// The API's refusal as a page with the same status.
pub fn refusal(ctx: &Ctx, a: &crate::Answer) -> Response {
    let status =
        if a.status.is_client_error() || a.status.is_server_error() { a.status } else { StatusCode::BAD_GATEWAY };
    error_page(ctx, status, &a.error())
}

pub fn has(perms: &[(String, String)], resource: &str, action: &str) -> bool {
    perms.iter().any(|(r, a)| r == resource && a == action)
}

/// Harbor portal URLs (old bookmarks, webhook links) to their pages here.
pub async fn harbor_redirect(Path(rest): Path<String>) -> Response {
    let parts: Vec<&str> = rest.split('/').filter(|s| !s.is_empty()).collect();
    let to = match parts.as_slice() {
        ["projects", p, "repositories", r, rest @ ..] => {
            // Harbor double-encodes slashes in repository names.
            let repo = percent(&percent(r));
            match rest {
                ["artifacts-tab", "artifacts", d, ..] => format!("{}/-/artifacts/{d}", ui_repo(p, &repo)),
                _ => format!("{}/-/tags", ui_repo(p, &repo)),
            }
        }
        ["projects", p, "members"] => format!("/projects/{p}/members"),
        ["projects", p, "robot-account"] => format!("/projects/{p}/robots"),
        ["projects", p, "labels"] => format!("/projects/{p}/labels"),
        ["projects", p, "configs"] => format!("/projects/{p}/settings"),
        ["projects", p, "webhook", ..] => format!("/projects/{p}/webhooks"),
        ["projects", p, "tag-strategy", "tag-retention", ..] => format!("/projects/{p}/retention"),
        ["projects", p, "tag-strategy", ..] => format!("/projects/{p}/immutability"),
        ["projects", p, "logs", ..] => format!("/projects/{p}/audit"),
        ["projects", p, "scanner"] => format!("/projects/{p}/scanner"),
        ["projects", p, "repositories"] => format!("/projects/{p}/repos"),
        ["projects", p, ..] => format!("/projects/{p}"),
        ["users"] => "/admin/users".into(),
        ["logs", ..] => "/admin/audit".into(),
        ["configs", ..] => "/admin/config".into(),
        ["clearing-job", "audit-log-purge", ..] => "/admin/log-rotation".into(),
        ["clearing-job", ..] => "/admin/gc".into(),
        ["labels"] => "/admin/labels".into(),
        ["project-quotas"] => "/admin/quotas".into(),
        ["registries"] => "/admin/registries".into(),
        ["replications", ..] => "/admin/replications".into(),
        ["job-service-dashboard", ..] => "/admin/jobs".into(),
        ["interrogation-services", "vulnerability"] => "/admin/scan-all".into(),
        ["interrogation-services", "security-hub"] => "/admin/security".into(),
        ["interrogation-services", ..] => "/admin/scanners".into(),
        _ => "/projects".into(),
    };
    Redirect::permanent(&to).into_response()
}

fn percent(s: &str) -> String {
    crate::percent_decode(s)
}
