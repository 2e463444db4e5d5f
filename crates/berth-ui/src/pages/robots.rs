//! `/projects/{p}/robots`: list, create (the secret is shown once, on the answer to the
//! POST, never stored or shown again), delete with a confirm page.

use axum::extract::Path;
use axum::http::Method;
use axum::response::Response;
use maud::html;
use serde_json::json;

use super::{project_page, refusal, ui_project};
use crate::layout::{Nav, confirm, copyable, csrf, enabled, list_table, page, project_tabs, unix, when};
use crate::{Ctx, Form, enc};

pub async fn list(ctx: Ctx, Path(p): Path<String>) -> Response {
    render(ctx, p, None).await
}

async fn render(ctx: Ctx, p: String, created: Option<(String, String)>) -> Response {
    let proj = match project_page(&ctx, &p).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let path = format!("/api/v2.0/robots?page_size=100&q=Level=project,ProjectID={}", proj.id);
    let a = ctx.call(Method::GET, &path, None).await;
    if !a.ok() {
        return refusal(&ctx, &a);
    }
    let (can_create, can_delete) = (proj.can("robot", "create"), proj.can("robot", "delete"));
    let base = ui_project(&p, "robots");
    page(
        &ctx,
        &p,
        Nav::Projects,
        html! {
            (project_tabs(&ctx, &p, "robots"))
            @if let Some((name, secret)) = &created {
                section.secret role="status" aria-labelledby="secret-title" {
                    h2 id="secret-title" { (ctx.t("robots.created")) }
                    dl {
                        dt { (ctx.t("col.name")) } dd { code { (name) } }
                        dt { (ctx.t("robots.secret")) } dd { (copyable(&ctx, ctx.t("robots.secret"), secret)) }
                    }
                }
            }
            h2 { (ctx.t("tab.robots")) }
            (list_table(&ctx, &["col.name", "col.enabled", "col.description", "col.created", "col.expires"], can_delete, a.items(), |r| {
                let name = r["name"].as_str().unwrap_or("");
                let exp = r["expires_at"].as_i64().unwrap_or(-1);
                html! { tr {
                    th scope="row" { code { (name) } }
                    td { (enabled(&ctx, r["disable"].as_bool() != Some(true))) }
                    td { (r["description"].as_str().unwrap_or("")) }
                    td { (when(&ctx, &r["creation_time"])) }
                    td { @if exp < 0 { (ctx.t("never")) } @else { (unix(&ctx, exp)) } }
                    @if can_delete { td {
                        a.danger href={ (base) "/" (r["id"].as_i64().unwrap_or(0)) "/delete" } aria-label={ (ctx.t("delete")) " " (name) } { (ctx.t("delete")) }
                    } }
                } }
            }))
            @if can_create {
                h2 id="new-robot" { (ctx.t("robots.new")) }
                form.narrow method="post" action=(base) aria-labelledby="new-robot" {
                    (csrf(&ctx))
                    p { label for="robot_name" { (ctx.t("col.name")) } input id="robot_name" name="name" required; }
                    p { label for="robot_desc" { (ctx.t("col.description")) } input id="robot_desc" name="description"; }
                    p { label for="robot_duration" { (ctx.t("robots.duration")) } input id="robot_duration" name="duration" type="number" value="30" min="-1"; }
                    fieldset {
                        legend { (ctx.t("robots.perm")) }
                        label.check { input type="radio" name="access" value="pull" checked; " " (ctx.t("robots.perm.pull")) }
                        label.check { input type="radio" name="access" value="push"; " " (ctx.t("robots.perm.push")) }
                    }
                    button.primary type="submit" { (ctx.t("create")) }
                }
            }
        },
    )
}

pub async fn create(ctx: Ctx, Path(p): Path<String>, form: Form) -> Response {
    let back = ui_project(&p, "robots");
    if let Err(r) = ctx.check_form(&form, &back) {
        return r;
    }
    let mut access = vec![json!({"resource": "repository", "action": "pull"})];
    if form.get("access") == "push" {
        access.push(json!({"resource": "repository", "action": "push"}));
    }
    let body = json!({
        "name": form.get("name").trim(),
        "description": form.get("description"),
        "duration": form.get("duration").parse::<i64>().unwrap_or(30),
        "level": "project",
        "disable": false,
        "permissions": [{ "kind": "project", "namespace": p, "access": access }],
    });
    let a = ctx.call_with(Method::POST, "/api/v2.0/robots", Some(body), Some(form.get("_csrf"))).await;
    if !a.ok() {
        return ctx.after(&a, "", &back);
    }
    let name = a.json["name"].as_str().unwrap_or("").to_string();
    let secret = a.json["secret"].as_str().unwrap_or("").to_string();
    render(ctx, p, Some((name, secret))).await
}

pub async fn confirm_delete(ctx: Ctx, Path((p, id)): Path<(String, String)>) -> Response {
    let base = ui_project(&p, "robots");
    confirm(&ctx, &format!("robot {id}"), &format!("{base}/{}/delete", enc(&id)), &base)
}

pub async fn delete(ctx: Ctx, Path((p, id)): Path<(String, String)>, form: Form) -> Response {
    let back = ui_project(&p, "robots");
    let path = format!("/api/v2.0/robots/{}", enc(&id));
    ctx.submit(&form, Method::DELETE, &path, None, ctx.t("deleted"), &back, &back).await
}
