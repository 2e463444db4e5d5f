//! `/projects/{p}/labels`: a project's labels (list, create, delete).

use axum::extract::Path;
use axum::http::Method;
use axum::response::Response;
use maud::html;
use serde_json::json;

use super::{csrf_refused, has, project, refusal};
use crate::layout::{Nav, csrf, head, page, post_button, project_tabs, when};
use crate::{Ctx, Form, enc};

pub async fn list(ctx: Ctx, Path(p): Path<String>) -> Response {
    if let Err(r) = ctx.require_user() {
        return r;
    }
    let proj = match project(&ctx, &p).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let id = proj["project_id"].as_i64().unwrap_or(0);
    let perms = ctx.project_permissions(id).await;
    let a = ctx.call(Method::GET, &format!("/api/v2.0/labels?scope=p&project_id={id}&page_size=100"), None).await;
    if !a.ok() {
        return refusal(&ctx, &a);
    }
    let (can_create, can_delete) = (has(&perms, "label", "create"), has(&perms, "label", "delete"));
    let base = format!("/projects/{}/labels", enc(&p));
    page(
        &ctx,
        &p,
        Nav::Projects,
        html! {
            (project_tabs(&ctx, &p, "labels"))
            h2 { (ctx.t("tab.labels")) }
            @if a.items().is_empty() { p { (ctx.t("none")) } } @else {
                table {
                    (head(&ctx, &["col.name", "col.color", "col.description", "col.created"], can_delete))
                    tbody { @for l in a.items() {
                        @let name = l["name"].as_str().unwrap_or("");
                        @let color = l["color"].as_str().unwrap_or("");
                        tr {
                            th scope="row" { (name) }
                            td { span.swatch style={ "background:" (safe_color(color)) } {} " " code { (color) } }
                            td { (l["description"].as_str().unwrap_or("")) }
                            td { (when(&ctx, &l["creation_time"])) }
                            @if can_delete { td {
                                (post_button(&ctx, &format!("{base}/{}/delete", l["id"].as_i64().unwrap_or(0)), ctx.t("delete"), &format!("{} {name}", ctx.t("delete")), true))
                            } }
                        }
                    } }
                }
            }
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
    let back = format!("/projects/{}/labels", enc(&p));
    if !ctx.csrf_ok(&form) {
        return csrf_refused(&ctx, &back);
    }
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
    let a = ctx.call_with(Method::POST, "/api/v2.0/labels", Some(body), Some(form.get("_csrf"))).await;
    ctx.after(&a, ctx.t("saved"), &back)
}

pub async fn delete(ctx: Ctx, Path((p, id)): Path<(String, String)>, form: Form) -> Response {
    let back = format!("/projects/{}/labels", enc(&p));
    if !ctx.csrf_ok(&form) {
        return csrf_refused(&ctx, &back);
    }
    let a =
        ctx.call_with(Method::DELETE, &format!("/api/v2.0/labels/{}", enc(&id)), None, Some(form.get("_csrf"))).await;
    ctx.after(&a, ctx.t("deleted"), &back)
}
