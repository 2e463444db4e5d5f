//! `/projects/{p}/labels`: a project's labels (list, create, delete).

use axum::extract::Path;
use axum::http::Method;
use axum::response::Response;
use maud::html;
use serde_json::json;

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
    let (can_create, can_delete) = (proj.can("label", "create"), proj.can("label", "delete"));
    let base = ui_project(&p, "labels");
    page(
        &ctx,
        &p,
        Nav::Projects,
        html! {
            (project_tabs(&ctx, &p, "labels"))
            h2 { (ctx.t("tab.labels")) }
            (list_table(&ctx, &["col.name", "col.color", "col.description", "col.created"], can_delete, a.items(), |l| {
                let name = l["name"].as_str().unwrap_or("");
                let color = l["color"].as_str().unwrap_or("");
                html! { tr {
                    th scope="row" { (name) }
                    td { span.swatch style={ "background:" (safe_color(color)) } {} " " code { (color) } }
                    td { (l["description"].as_str().unwrap_or("")) }
                    td { (when(&ctx, &l["creation_time"])) }
                    @if can_delete { td {
                        (post_button(&ctx, &format!("{base}/{}/delete", l["id"].as_i64().unwrap_or(0)), ctx.t("delete"), &format!("{} {name}", ctx.t("delete")), true))
                    } }
                } }
            }))
            @if can_create {
                h2 id="new-label" { (ctx.t("labels.new")) }
                form.inline method="post" action=(base) aria-labelledby="new-label" {
                    (csrf(&ctx))
                    label for="label_name" { (ctx.t("col.name")) }
                    input id="label_name" name="name" required;
                    label for="label_color" { (ctx.t("col.color")) }
                    input id="label_color" name="color" type="color" value="#0065ab";
                    label for="label_desc" { (ctx.t("col.description")) }
                    input id="label_desc" name="description";
                    button.primary type="submit" { (ctx.t("create")) }
                }
            }
        },
    )
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
