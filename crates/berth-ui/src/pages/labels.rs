//! Labels: a project's (`/projects/{p}/labels`) and the system's global ones
//! (`/admin/labels`, Harbor's scope `g`), one set of pages for both: list, create, edit,
//! delete. Attaching them to artifacts is on the artifact page.

use axum::extract::Path;
use axum::http::Method;
use axum::response::Response;
use maud::{Markup, html};
use serde_json::{Value, json};

use super::{has, project, project_page, refusal, ui_project};
use crate::layout::{Nav, csrf, list_table, page, post_button, project_tabs, when};
use crate::{Ctx, Form, enc};

/// Whose labels: a project's (by name and id) or the system's.
enum Scope {
    Project { name: String, id: i64 },
    Global,
}

impl Scope {
    /// Where its pages live.
    fn base(&self) -> String {
        match self {
            Scope::Project { name, .. } => ui_project(name, "labels"),
            Scope::Global => "/admin/labels".into(),
        }
    }

    /// `GET /labels` for this scope.
    fn api_list(&self) -> String {
        match self {
            Scope::Project { id, .. } => format!("/api/v2.0/labels?scope=p&project_id={id}&page_size=100"),
            Scope::Global => "/api/v2.0/labels?scope=g&page_size=100".into(),
        }
    }

    /// The scope fields of `POST /labels`.
    fn api_scope(&self) -> Value {
        match self {
            Scope::Project { id, .. } => json!({ "scope": "p", "project_id": id }),
            Scope::Global => json!({ "scope": "g" }),
        }
    }

    /// The page shell: a project's tabs, or the administration's navigation.
    fn page(&self, ctx: &Ctx, heading: &str, body: Markup) -> Response {
        match self {
            Scope::Project { name, .. } => page(
                ctx,
                name,
                Nav::Projects,
                html! { (project_tabs(ctx, name, "labels")) h2 id="labels-title" { (heading) } (body) },
            ),
            Scope::Global => page(ctx, heading, Nav::Labels, body),
        }
    }
}

/// What the caller may do with the scope's labels (`create`, `update`, `delete`), as the
/// API lists their permissions: in the project, or on the system.
async fn scope_and_perms(ctx: &Ctx, p: Option<&str>) -> Result<(Scope, [bool; 3]), Response> {
    let (scope, perms) = match p {
        Some(p) => {
            let proj = project_page(ctx, p).await?;
            (Scope::Project { name: p.to_string(), id: proj.id }, proj.perms)
        }
        None => {
            ctx.require_user()?;
            let a =
                ctx.call(Method::GET, "/api/v2.0/users/current/permissions?scope=/system&relative=true", None).await;
            let perms = a
                .items()
                .iter()
                .map(|p| {
                    (p["resource"].as_str().unwrap_or("").to_string(), p["action"].as_str().unwrap_or("").to_string())
                })
                .collect::<Vec<_>>();
            (Scope::Global, perms)
        }
    };
    let can = |a: &str| has(&perms, "label", a);
    Ok((scope, [can("create"), can("update"), can("delete")]))
}

async fn list_in(ctx: Ctx, p: Option<&str>) -> Response {
    let (scope, [can_create, can_update, can_delete]) = match scope_and_perms(&ctx, p).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let a = ctx.call(Method::GET, &scope.api_list(), None).await;
    if !a.ok() {
        return refusal(&ctx, &a);
    }
    let base = scope.base();
    let heading = match scope {
        Scope::Project { .. } => ctx.t("tab.labels"),
        Scope::Global => ctx.t("labels.global"),
    };
    let body = html! {
        (list_table(&ctx, &["col.name", "col.color", "col.description", "col.created"], can_delete || can_update, a.items(), |l| {
            let name = l["name"].as_str().unwrap_or("");
            let color = l["color"].as_str().unwrap_or("");
            html! { tr {
                th scope="row" { (name) }
                td { span.swatch style={ "background:" (safe_color(color)) } {} " " code { (color) } }
                td { (l["description"].as_str().unwrap_or("")) }
                td { (when(&ctx, &l["creation_time"])) }
                @let id = l["id"].as_i64().unwrap_or(0);
                @if can_delete || can_update { td {
                    @if can_update { a href={ (base) "/" (id) "/edit" } aria-label={ (ctx.t("edit")) " " (name) } { (ctx.t("edit")) } " " }
                    @if can_delete { (post_button(&ctx, &format!("{base}/{id}/delete"), ctx.t("delete"), &format!("{} {name}", ctx.t("delete")), true)) }
                } }
            } }
        }))
        @if can_create {
            h2 id="new-label" { (ctx.t("labels.new")) }
            (label_form(&ctx, &base, "new-label", &serde_json::Value::Null))
        }
    };
    scope.page(&ctx, heading, body)
}

pub async fn list(ctx: Ctx, Path(p): Path<String>) -> Response {
    list_in(ctx, Some(&p)).await
}

pub async fn global_list(ctx: Ctx) -> Response {
    list_in(ctx, None).await
}

/// The label form, empty (`label` null) to create one or filled from `label` to edit it.
fn label_form(ctx: &Ctx, action: &str, labelled_by: &str, label: &Value) -> Markup {
    html! {
        form.inline method="post" action=(action) aria-labelledby=(labelled_by) {
            (csrf(ctx))
            label for="label_name" { (ctx.t("col.name")) }
            input id="label_name" name="name" required value=(label["name"].as_str().unwrap_or(""));
            label for="label_color" { (ctx.t("col.color")) }
            input id="label_color" name="color" type="color" value=(label["color"].as_str().filter(|c| c.len() == 7 && safe_color(c) == *c).unwrap_or("#0065ab"));
            label for="label_desc" { (ctx.t("col.description")) }
            input id="label_desc" name="description" value=(label["description"].as_str().unwrap_or(""));
            button.primary type="submit" { @if label.is_null() { (ctx.t("create")) } @else { (ctx.t("save")) } }
        }
    }
}

/// A label as a coloured swatch and its name (the colour is decoration, the name says it).
pub fn chip(l: &Value) -> Markup {
    html! { span.swatch style={ "background:" (safe_color(l["color"].as_str().unwrap_or(""))) } {} " " (l["name"].as_str().unwrap_or("")) }
}

/// Only `#rrggbb`-like values reach a style attribute.
fn safe_color(c: &str) -> &str {
    if c.starts_with('#') && c.len() <= 9 && c[1..].chars().all(|x| x.is_ascii_hexdigit()) { c } else { "transparent" }
}

/// The scope a change is for: the project (by name, as the API shows it to the caller),
/// or the system's.
async fn scope_of(ctx: &Ctx, p: Option<&str>) -> Result<Scope, Response> {
    match p {
        Some(p) => {
            let proj = project(ctx, p).await?;
            Ok(Scope::Project { name: p.to_string(), id: proj["project_id"].as_i64().unwrap_or(0) })
        }
        None => Ok(Scope::Global),
    }
}

async fn create_in(ctx: Ctx, p: Option<&str>, form: Form) -> Response {
    let scope = match scope_of(&ctx, p).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let back = scope.base();
    let mut body =
        json!({ "name": form.get("name").trim(), "color": form.get("color"), "description": form.get("description") });
    if let (Some(b), Some(s)) = (body.as_object_mut(), scope.api_scope().as_object()) {
        b.extend(s.clone());
    }
    ctx.submit(&form, Method::POST, "/api/v2.0/labels", Some(body), ctx.t("saved"), &back, &back).await
}

pub async fn create(ctx: Ctx, Path(p): Path<String>, form: Form) -> Response {
    create_in(ctx, Some(&p), form).await
}

pub async fn global_create(ctx: Ctx, form: Form) -> Response {
    create_in(ctx, None, form).await
}

async fn delete_in(ctx: Ctx, back: String, id: &str, form: Form) -> Response {
    let path = format!("/api/v2.0/labels/{}", enc(id));
    ctx.submit(&form, Method::DELETE, &path, None, ctx.t("deleted"), &back, &back).await
}

pub async fn delete(ctx: Ctx, Path((p, id)): Path<(String, String)>, form: Form) -> Response {
    delete_in(ctx, ui_project(&p, "labels"), &id, form).await
}

pub async fn global_delete(ctx: Ctx, Path(id): Path<String>, form: Form) -> Response {
    delete_in(ctx, "/admin/labels".into(), &id, form).await
}

/// A label's edit page: the create form, filled in.
async fn edit_in(ctx: Ctx, p: Option<&str>, id: &str) -> Response {
    let (scope, [_, can_update, _]) = match scope_and_perms(&ctx, p).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    if !can_update {
        return super::forbidden(&ctx);
    }
    let a = ctx.call(Method::GET, &format!("/api/v2.0/labels/{}", enc(id)), None).await;
    if !a.ok() {
        return refusal(&ctx, &a);
    }
    let action = format!("{}/{}/edit", scope.base(), enc(id));
    let form = label_form(&ctx, &action, "edit", &a.json);
    let name = a.json["name"].as_str().unwrap_or("");
    match scope {
        Scope::Project { name: p, .. } => super::project_edit_page(&ctx, &p, "labels", name, "labels.edit", form),
        Scope::Global => page(
            &ctx,
            &format!("{} · {name}", ctx.t("labels.global")),
            Nav::Labels,
            html! {
                p { a href="/admin/labels" { "← " (ctx.t("labels.global")) } }
                h2 id="edit" { (ctx.t("labels.edit")) }
                (form)
            },
        ),
    }
}

pub async fn edit(ctx: Ctx, Path((p, id)): Path<(String, String)>) -> Response {
    edit_in(ctx, Some(&p), &id).await
}

pub async fn global_edit(ctx: Ctx, Path(id): Path<String>) -> Response {
    edit_in(ctx, None, &id).await
}

async fn update_in(ctx: Ctx, list: String, id: &str, form: Form) -> Response {
    let back = format!("{list}/{}/edit", enc(id));
    let path = format!("/api/v2.0/labels/{}", enc(id));
    let body =
        json!({ "name": form.get("name").trim(), "color": form.get("color"), "description": form.get("description") });
    ctx.submit(&form, Method::PUT, &path, Some(body), ctx.t("saved"), &list, &back).await
}

pub async fn update(ctx: Ctx, Path((p, id)): Path<(String, String)>, form: Form) -> Response {
    update_in(ctx, ui_project(&p, "labels"), &id, form).await
}

pub async fn global_update(ctx: Ctx, Path(id): Path<String>, form: Form) -> Response {
    update_in(ctx, "/admin/labels".into(), &id, form).await
}
