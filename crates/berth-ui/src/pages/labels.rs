//! `/projects/{p}/labels`: a project's labels (list, create, edit, delete). Attaching them
//! to artifacts is on the artifact page.

use axum::extract::Path;
use axum::http::Method;
use axum::response::Response;
use maud::{Markup, html};
use serde_json::{Value, json};

use super::{project, project_page, refusal, ui_project};
use crate::layout::{Nav, csrf, list_table, page, post_button, project_tabs, when};
use crate::{Ctx, Form, enc};

pub async fn list(ctx: Ctx, Path(p): Path<String>) -> Response {
    let proj = match project_page(&ctx, &p).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let a =
        ctx.call(Method::GET, &format!("/api/v2.0/labels?scope=p&project_id={}&page_size=100", proj.id), None).await;
    if !a.ok() {
        return refusal(&ctx, &a);
    }
    let (can_create, can_update, can_delete) =
        (proj.can("label", "create"), proj.can("label", "update"), proj.can("label", "delete"));
    let base = ui_project(&p, "labels");
    page(
        &ctx,
        &p,
        Nav::Projects,
        html! {
            (project_tabs(&ctx, &p, "labels"))
            h2 { (ctx.t("tab.labels")) }
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
        },
    )
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

pub async fn create(ctx: Ctx, Path(p): Path<String>, form: Form) -> Response {
    let back = ui_project(&p, "labels");
    let proj = match project(&ctx, &p).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let body = json!({
        "name": form.get("name").trim(),
        "color": form.get("color"),
        "description": form.get("description"),
        "scope": "p",
        "project_id": proj["project_id"].as_i64().unwrap_or(0),
    });
    ctx.submit(&form, Method::POST, "/api/v2.0/labels", Some(body), ctx.t("saved"), &back, &back).await
}

pub async fn delete(ctx: Ctx, Path((p, id)): Path<(String, String)>, form: Form) -> Response {
    let back = ui_project(&p, "labels");
    let path = format!("/api/v2.0/labels/{}", enc(&id));
    ctx.submit(&form, Method::DELETE, &path, None, ctx.t("deleted"), &back, &back).await
}

/// A label's edit page: the create form, filled in.
pub async fn edit(ctx: Ctx, Path((p, id)): Path<(String, String)>) -> Response {
    match project_page(&ctx, &p).await {
        Ok(proj) if proj.can("label", "update") => {}
        Ok(_) => return super::forbidden(&ctx),
        Err(r) => return r,
    }
    let a = ctx.call(Method::GET, &format!("/api/v2.0/labels/{}", enc(&id)), None).await;
    if !a.ok() {
        return refusal(&ctx, &a);
    }
    let action = format!("{}/{}/edit", ui_project(&p, "labels"), enc(&id));
    let form = label_form(&ctx, &action, "edit", &a.json);
    super::project_edit_page(&ctx, &p, "labels", a.json["name"].as_str().unwrap_or(""), "labels.edit", form)
}

pub async fn update(ctx: Ctx, Path((p, id)): Path<(String, String)>, form: Form) -> Response {
    let back = format!("{}/{}/edit", ui_project(&p, "labels"), enc(&id));
    let path = format!("/api/v2.0/labels/{}", enc(&id));
    let body =
        json!({ "name": form.get("name").trim(), "color": form.get("color"), "description": form.get("description") });
    ctx.submit(&form, Method::PUT, &path, Some(body), ctx.t("saved"), &ui_project(&p, "labels"), &back).await
}
