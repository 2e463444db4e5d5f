//! Robot accounts: a project's (`/projects/{p}/robots`, managed by its admins) and the
//! system-level ones (`/admin/robots`, managed by system administrators). List, create,
//! edit (description, expiry, enabled, permissions as a resources × actions matrix),
//! enable or disable, refresh the secret, delete with a confirm page. A secret is shown
//! once, on the answer to the POST that made it (create or refresh), with a link that
//! saves it as `{name}.json` (a `data:` link in that answer), never stored or shown again.

use std::collections::HashSet;

use axum::extract::Path;
use axum::http::Method;
use axum::response::Response;
use berth_core::identity::rbac::{Action, Resource};
use maud::{Markup, html};
use serde_json::{Value, json};

use super::{project_page, refusal, ui_project};
use crate::layout::{Nav, confirm, copyable, csrf, enabled, list_table, page, post_button, project_tabs, unix, when};
use crate::{Ctx, Form, enc};

/// Whose robots: a project's (by name) or the system's.
enum Scope {
    Project(String),
    System,
}

impl Scope {
    fn base(&self) -> String {
        match self {
            Scope::Project(p) => ui_project(p, "robots"),
            Scope::System => "/admin/robots".into(),
        }
    }

    fn level(&self) -> &'static str {
        match self {
            Scope::Project(_) => "project",
            Scope::System => "system",
        }
    }

    /// The page's title and navigation entry.
    fn frame(&self, ctx: &Ctx) -> (String, Nav) {
        match self {
            Scope::Project(p) => (p.clone(), Nav::Projects),
            Scope::System => (ctx.t("robots.system_title").to_string(), Nav::Robots),
        }
    }

    fn tabs(&self, ctx: &Ctx) -> Markup {
        match self {
            Scope::Project(p) => project_tabs(ctx, p, "robots"),
            Scope::System => html! {},
        }
    }

    /// The `q` of the robot list, and whether the caller may create, update and delete
    /// (the API refuses anyway; this only hides the buttons).
    async fn access(&self, ctx: &Ctx) -> Result<(String, [bool; 3]), Response> {
        match self {
            Scope::Project(p) => {
                let proj = project_page(ctx, p).await?;
                let can = ["create", "update", "delete"].map(|a| proj.can("robot", a));
                Ok((format!("Level=project,ProjectID={}", proj.id), can))
            }
            Scope::System => {
                let admin = ctx.require_user()?.sysadmin;
                Ok(("Level=system".into(), [admin; 3]))
            }
        }
    }
}

/// A secret to show once: the message key of its heading, the robot's name, the secret.
type Shown = (&'static str, String, String);

async fn render(ctx: Ctx, scope: Scope, shown: Option<Shown>) -> Response {
    let (q, [can_create, can_update, can_delete]) = match scope.access(&ctx).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let a = ctx.call(Method::GET, &format!("/api/v2.0/robots?page_size=100&q={q}"), None).await;
    if !a.ok() {
        return refusal(&ctx, &a);
    }
    let base = scope.base();
    let system = if can_create { system_permissions(&ctx, &scope).await } else { Vec::new() };
    let (title, nav) = scope.frame(&ctx);
    page(
        &ctx,
        &title,
        nav,
        html! {
            (scope.tabs(&ctx))
            @if let Some((heading, name, secret)) = &shown {
                section.secret role="status" aria-labelledby="secret-title" {
                    h2 id="secret-title" { (ctx.t(heading)) }
                    dl {
                        dt { (ctx.t("col.name")) } dd { code { (name) } }
                        dt { (ctx.t("robots.secret")) } dd { (copyable(&ctx, ctx.t("robots.secret"), secret)) }
                    }
                    p { a download={ (name) ".json" } href=(secret_file(name, secret)) { (ctx.t("robots.download")) " " code { (name) ".json" } } }
                }
            }
            h2 { (ctx.t("tab.robots")) }
            (list_table(&ctx, &["col.name", "col.enabled", "col.description", "col.created", "col.expires"], can_update || can_delete, a.items(), |r| {
                let name = r["name"].as_str().unwrap_or("");
                let exp = r["expires_at"].as_i64().unwrap_or(-1);
                let id = r["id"].as_i64().unwrap_or(0);
                let on = r["disable"].as_bool() != Some(true);
                let toggle = if on { ctx.t("disable") } else { ctx.t("enable") };
                html! { tr {
                    th scope="row" { code { (name) } }
                    td { (enabled(&ctx, on)) }
                    td { (r["description"].as_str().unwrap_or("")) }
                    td { (when(&ctx, &r["creation_time"])) }
                    td { @if exp < 0 { (ctx.t("never")) } @else { (unix(&ctx, exp)) } }
                    @if can_update || can_delete { td {
                        @if can_update {
                            a href={ (base) "/" (id) "/edit" } aria-label={ (ctx.t("edit")) " " (name) } { (ctx.t("edit")) } " "
                            (post_button(&ctx, &format!("{base}/{id}/toggle"), toggle, &format!("{toggle} {name}"), false)) " "
                            (post_button(&ctx, &format!("{base}/{id}/refresh"), ctx.t("robots.refresh"), &format!("{} {name}", ctx.t("robots.refresh")), false)) " "
                        }
                        @if can_delete {
                            a.danger href={ (base) "/" (id) "/delete" } aria-label={ (ctx.t("delete")) " " (name) } { (ctx.t("delete")) }
                        }
                    } }
                } }
            }))
            @if can_create {
                h2 id="new-robot" { (ctx.t("robots.new")) }
                (robot_form(&ctx, &scope, &base, "new-robot", &system, &Value::Null))
            }
        },
    )
}

/// The shown secret as a file to save, `{"name": …, "secret": …}`, in a `data:` link: it
/// works without JavaScript and is part of this one answer only (nothing on the server
/// keeps the secret to serve it again).
fn secret_file(name: &str, secret: &str) -> String {
    let text = json!({ "name": name, "secret": secret }).to_string();
    let mut url = String::from("data:application/json;charset=utf-8,");
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            url.push(char::from(b));
        } else {
            url.push_str(&format!("%{b:02X}"));
        }
    }
    url
}

/// The system permissions the caller holds (and so may give a system robot), by resource.
async fn system_permissions(ctx: &Ctx, scope: &Scope) -> Vec<(String, Vec<String>)> {
    if !matches!(scope, Scope::System) {
        return Vec::new();
    }
    let a = ctx.call(Method::GET, "/api/v2.0/users/current/permissions?scope=/system&relative=true", None).await;
    let mut rows: Vec<(String, Vec<String>)> = Vec::new();
    for p in a.items() {
        let (r, act) = (p["resource"].as_str().unwrap_or(""), p["action"].as_str().unwrap_or("").to_string());
        match rows.iter_mut().find(|(name, _)| name == r) {
            Some((_, acts)) => acts.push(act),
            None => rows.push((r.to_string(), vec![act])),
        }
    }
    rows
}

/// The project permissions a robot may hold: every resource with the actions that exist
/// for it (the same table the API validates against).
fn project_rows() -> Vec<(String, Vec<String>)> {
    Resource::ALL
        .iter()
        .map(|r| (r.as_str().to_string(), r.actions().iter().map(|a| a.as_str().to_string()).collect()))
        .collect()
}

/// A resources × actions matrix of checkboxes named `field` with values
/// `resource:action`; a cell whose action does not exist for its resource says so.
fn matrix(ctx: &Ctx, caption: &str, field: &str, rows: &[(String, Vec<String>)], checked: &HashSet<String>) -> Markup {
    let mut cols: Vec<&str> = Vec::new();
    for a in Action::ALL.iter().map(|a| a.as_str()) {
        if rows.iter().any(|(_, acts)| acts.iter().any(|x| x == a)) {
            cols.push(a);
        }
    }
    for (_, acts) in rows {
        for a in acts {
            if !cols.contains(&a.as_str()) {
                cols.push(a);
            }
        }
    }
    html! {
        table.matrix {
            caption { (caption) }
            thead { tr {
                th scope="col" { (ctx.t("robots.resource")) }
                @for c in &cols { th scope="col" { (c) } }
            } }
            tbody { @for (r, acts) in rows {
                tr {
                    th scope="row" { code { (r) } }
                    @for c in &cols {
                        td { @if acts.iter().any(|a| a == c) {
                            @let value = format!("{r}:{c}");
                            @let id = format!("{field}-{r}-{c}");
                            input type="checkbox" id=(id) name=(field) value=(value) checked[checked.contains(&value)];
                            label.visually-hidden for=(id) { (r) " " (c) }
                        } @else {
                            span aria-hidden="true" { "—" }
                        } }
                    }
                }
            } }
        }
    }
}

/// What a robot holds, as the matrix's values: its project permissions (`perm`; the one
/// project of a project robot, all projects of a system robot) and system ones (`sperm`).
fn held(robot: &Value, kind: &str) -> HashSet<String> {
    robot["permissions"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|p| p["kind"] == kind)
        .flat_map(|p| p["access"].as_array().into_iter().flatten())
        .map(|a| format!("{}:{}", a["resource"].as_str().unwrap_or(""), a["action"].as_str().unwrap_or("")))
        .collect()
}

/// The robot form, empty (`robot` null) to create one or filled from `robot` to edit it.
fn robot_form(
    ctx: &Ctx,
    scope: &Scope,
    action: &str,
    labelled_by: &str,
    system: &[(String, Vec<String>)],
    robot: &Value,
) -> Markup {
    let new = robot.is_null();
    let project_checked = if new { HashSet::from(["repository:pull".to_string()]) } else { held(robot, "project") };
    let caption = match scope {
        Scope::Project(_) => ctx.t("robots.perm"),
        Scope::System => ctx.t("robots.perm_all_projects"),
    };
    html! {
        form.narrow method="post" action=(action) aria-labelledby=(labelled_by) {
            (csrf(ctx))
            @if new {
                p { label for="robot_name" { (ctx.t("col.name")) } input id="robot_name" name="name" required; }
            }
            p { label for="robot_desc" { (ctx.t("col.description")) } input id="robot_desc" name="description" value=(robot["description"].as_str().unwrap_or("")); }
            p { label for="robot_duration" { (ctx.t("robots.duration")) } input id="robot_duration" name="duration" type="number" min="-1" value=(robot["duration"].as_i64().unwrap_or(30)); }
            @if !new {
                p { label.check { input type="checkbox" name="enabled" value="true" checked[robot["disable"] != true]; " " (ctx.t("enabled")) } }
            }
            @if matches!(scope, Scope::System) {
                (matrix(ctx, ctx.t("robots.perm_system"), "sperm", system, &held(robot, "system")))
            }
            (matrix(ctx, caption, "perm", &project_rows(), &project_checked))
            button.primary type="submit" { @if new { (ctx.t("create")) } @else { (ctx.t("save")) } }
        }
    }
}

/// The permissions the API takes, from the matrix: a project robot's one project; a
/// system robot's system permissions and those on all projects (each only if any).
fn permissions(scope: &Scope, form: &Form) -> Vec<Value> {
    let access = |field: &str| -> Vec<Value> {
        form.all(field)
            .into_iter()
            .filter_map(|v| v.split_once(':'))
            .map(|(r, a)| json!({ "resource": r, "action": a }))
            .collect()
    };
    match scope {
        Scope::Project(p) => vec![json!({ "kind": "project", "namespace": p, "access": access("perm") })],
        Scope::System => [("system", "/", access("sperm")), ("project", "*", access("perm"))]
            .into_iter()
            .filter(|(_, _, a)| !a.is_empty())
            .map(|(kind, ns, a)| json!({ "kind": kind, "namespace": ns, "access": a }))
            .collect(),
    }
}

async fn create(ctx: Ctx, scope: Scope, form: Form) -> Response {
    if let Err(r) = ctx.check_form(&form, &scope.base()) {
        return r;
    }
    let body = json!({
        "name": form.get("name").trim(),
        "description": form.get("description"),
        "duration": form.get("duration").parse::<i64>().unwrap_or(30),
        "level": scope.level(),
        "disable": false,
        "permissions": permissions(&scope, &form),
    });
    let a = ctx.call_with(Method::POST, "/api/v2.0/robots", Some(body), Some(form.get("_csrf"))).await;
    if !a.ok() {
        return ctx.after(&a, "", &scope.base());
    }
    let name = a.json["name"].as_str().unwrap_or("").to_string();
    let secret = a.json["secret"].as_str().unwrap_or("").to_string();
    render(ctx, scope, Some(("robots.created", name, secret))).await
}

/// The robot as the API shows it to this caller, or its refusal as a page.
async fn robot(ctx: &Ctx, id: &str) -> Result<Value, Response> {
    let a = ctx.call(Method::GET, &format!("/api/v2.0/robots/{}", enc(id)), None).await;
    if a.ok() { Ok(a.json) } else { Err(refusal(ctx, &a)) }
}

async fn edit_form(ctx: Ctx, scope: Scope, id: String) -> Response {
    match scope.access(&ctx).await {
        Ok((_, [_, true, _])) => {}
        Ok(_) => return super::forbidden(&ctx),
        Err(r) => return r,
    }
    let r = match robot(&ctx, &id).await {
        Ok(v) => v,
        Err(resp) => return resp,
    };
    let system = system_permissions(&ctx, &scope).await;
    let (title, nav) = scope.frame(&ctx);
    let base = scope.base();
    page(
        &ctx,
        &format!("{title} · {}", r["name"].as_str().unwrap_or("")),
        nav,
        html! {
            (scope.tabs(&ctx))
            p { a href=(base) { "← " (ctx.t("tab.robots")) } }
            h2 id="edit-robot" { (ctx.t("robots.edit")) " " code { (r["name"].as_str().unwrap_or("")) } }
            (robot_form(&ctx, &scope, &format!("{base}/{}/edit", enc(&id)), "edit-robot", &system, &r))
        },
    )
}

async fn update(ctx: Ctx, scope: Scope, id: String, form: Form) -> Response {
    let base = scope.base();
    let back = format!("{base}/{}/edit", enc(&id));
    let r = match robot(&ctx, &id).await {
        Ok(v) => v,
        Err(resp) => return resp,
    };
    let body = json!({
        "name": r["name"],
        "description": form.get("description"),
        "duration": form.get("duration").parse::<i64>().unwrap_or(-1),
        "level": r["level"],
        "disable": form.get("enabled") != "true",
        "permissions": permissions(&scope, &form),
    });
    let path = format!("/api/v2.0/robots/{}", enc(&id));
    ctx.submit(&form, Method::PUT, &path, Some(body), ctx.t("saved"), &base, &back).await
}

async fn toggle(ctx: Ctx, scope: Scope, id: String, form: Form) -> Response {
    let base = scope.base();
    let mut r = match robot(&ctx, &id).await {
        Ok(v) => v,
        Err(resp) => return resp,
    };
    let off = r["disable"] == true;
    r["disable"] = json!(!off);
    let path = format!("/api/v2.0/robots/{}", enc(&id));
    ctx.submit(&form, Method::PUT, &path, Some(r), ctx.t("saved"), &base, &base).await
}

/// A new random secret, shown once on the page this POST answers.
async fn refresh(ctx: Ctx, scope: Scope, id: String, form: Form) -> Response {
    if let Err(r) = ctx.check_form(&form, &scope.base()) {
        return r;
    }
    let path = format!("/api/v2.0/robots/{}", enc(&id));
    let a = ctx.call_with(Method::PATCH, &path, Some(json!({})), Some(form.get("_csrf"))).await;
    if !a.ok() {
        return ctx.after(&a, "", &scope.base());
    }
    let name = match robot(&ctx, &id).await {
        Ok(r) => r["name"].as_str().unwrap_or("").to_string(),
        Err(resp) => return resp,
    };
    let secret = a.json["secret"].as_str().unwrap_or("").to_string();
    render(ctx, scope, Some(("robots.refreshed", name, secret))).await
}

fn confirm_delete(ctx: Ctx, scope: Scope, id: String) -> Response {
    let base = scope.base();
    confirm(&ctx, &format!("robot {id}"), &format!("{base}/{}/delete", enc(&id)), &base)
}

async fn delete(ctx: Ctx, scope: Scope, id: String, form: Form) -> Response {
    let back = scope.base();
    let path = format!("/api/v2.0/robots/{}", enc(&id));
    ctx.submit(&form, Method::DELETE, &path, None, ctx.t("deleted"), &back, &back).await
}

// The routes: a project's robots, then the system's.

pub async fn list(ctx: Ctx, Path(p): Path<String>) -> Response {
    render(ctx, Scope::Project(p), None).await
}

pub async fn project_create(ctx: Ctx, Path(p): Path<String>, form: Form) -> Response {
    create(ctx, Scope::Project(p), form).await
}

pub async fn project_edit(ctx: Ctx, Path((p, id)): Path<(String, String)>) -> Response {
    edit_form(ctx, Scope::Project(p), id).await
}

pub async fn project_update(ctx: Ctx, Path((p, id)): Path<(String, String)>, form: Form) -> Response {
    update(ctx, Scope::Project(p), id, form).await
}

pub async fn project_toggle(ctx: Ctx, Path((p, id)): Path<(String, String)>, form: Form) -> Response {
    toggle(ctx, Scope::Project(p), id, form).await
}

pub async fn project_refresh(ctx: Ctx, Path((p, id)): Path<(String, String)>, form: Form) -> Response {
    refresh(ctx, Scope::Project(p), id, form).await
}

pub async fn project_confirm_delete(ctx: Ctx, Path((p, id)): Path<(String, String)>) -> Response {
    confirm_delete(ctx, Scope::Project(p), id)
}

pub async fn project_delete(ctx: Ctx, Path((p, id)): Path<(String, String)>, form: Form) -> Response {
    delete(ctx, Scope::Project(p), id, form).await
}

pub async fn system_list(ctx: Ctx) -> Response {
    render(ctx, Scope::System, None).await
}

pub async fn system_create(ctx: Ctx, form: Form) -> Response {
    create(ctx, Scope::System, form).await
}

pub async fn system_edit(ctx: Ctx, Path(id): Path<String>) -> Response {
    edit_form(ctx, Scope::System, id).await
}

pub async fn system_update(ctx: Ctx, Path(id): Path<String>, form: Form) -> Response {
    update(ctx, Scope::System, id, form).await
}

pub async fn system_toggle(ctx: Ctx, Path(id): Path<String>, form: Form) -> Response {
    toggle(ctx, Scope::System, id, form).await
}

pub async fn system_refresh(ctx: Ctx, Path(id): Path<String>, form: Form) -> Response {
    refresh(ctx, Scope::System, id, form).await
}

pub async fn system_confirm_delete(ctx: Ctx, Path(id): Path<String>) -> Response {
    confirm_delete(ctx, Scope::System, id)
}

pub async fn system_delete(ctx: Ctx, Path(id): Path<String>, form: Form) -> Response {
    delete(ctx, Scope::System, id, form).await
}
