//! `/projects/{p}/members`: list, add a user with a role, remove.

use axum::extract::Path;
use axum::http::Method;
use axum::response::Response;
use maud::html;
use serde_json::json;

use super::{api_project, project_page, refusal, ui_project};
use crate::layout::{Nav, csrf, head, page, post_button, project_tabs};
use crate::{Ctx, Form, enc};

pub async fn list(ctx: Ctx, Path(p): Path<String>) -> Response {
    let proj = match project_page(&ctx, &p).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let a = ctx.call(Method::GET, &format!("{}/members?page_size=100", api_project(&p)), None).await;
    if !a.ok() {
        return refusal(&ctx, &a);
    }
    let (can_add, can_remove, can_update) =
        (proj.can("member", "create"), proj.can("member", "delete"), proj.can("member", "update"));
    let base = ui_project(&p, "members");
    page(
        &ctx,
        &p,
        Nav::Projects,
        html! {
            (project_tabs(&ctx, &p, "members"))
            h2 { (ctx.t("tab.members")) }
            table {
                (head(&ctx, &["col.name", "col.role"], can_remove))
                tbody { @for m in a.items() {
                    @let name = m["entity_name"].as_str().unwrap_or("");
                    tr {
                        th scope="row" { (name) }
                        @let mid = m["id"].as_i64().unwrap_or(0);
                        @let role = m["role_id"].as_i64().unwrap_or(3).clamp(1, 5);
                        td {
                            @if can_update {
                                form.inline method="post" action={ (base) "/" (mid) "/role" } {
                                    (csrf(&ctx))
                                    label.visually-hidden for={ "role-" (mid) } { (ctx.t("col.role")) " " (name) }
                                    select id={ "role-" (mid) } name="role_id" {
                                        @for r in [1, 4, 2, 3, 5] { option value=(r) selected[r == role] { (ctx.t(&format!("role.{r}"))) } }
                                    }
                                    button type="submit" aria-label={ (ctx.t("members.change_role")) " " (name) } { (ctx.t("members.change_role")) }
                                }
                            } @else {
                                (ctx.t(&format!("role.{role}")))
                            }
                        }
                        @if can_remove { td {
                            (post_button(&ctx, &format!("{base}/{mid}/delete"), ctx.t("members.remove"), &format!("{} {name}", ctx.t("members.remove")), true))
                        } }
                    }
                } }
            }
            @if can_add {
                h2 id="add-member" { (ctx.t("members.add")) }
                form.inline method="post" action=(base) aria-labelledby="add-member" {
                    (csrf(&ctx))
                    label for="username" { (ctx.t("username")) }
                    input id="username" name="username" required;
                    label for="role" { (ctx.t("col.role")) }
                    select id="role" name="role_id" {
                        @for r in [1, 4, 2, 3, 5] { option value=(r) selected[r == 2] { (ctx.t(&format!("role.{r}"))) } }
                    }
                    button.primary type="submit" { (ctx.t("members.add")) }
                }
            }
        },
    )
}

pub async fn add(ctx: Ctx, Path(p): Path<String>, form: Form) -> Response {
    let back = ui_project(&p, "members");
    let role: i64 = form.get("role_id").parse().unwrap_or(0);
    let body = json!({ "role_id": role, "member_user": { "username": form.get("username").trim() } });
    let path = format!("{}/members", api_project(&p));
    ctx.submit(&form, Method::POST, &path, Some(body), ctx.t("members.added"), &back, &back).await
}

pub async fn remove(ctx: Ctx, Path((p, mid)): Path<(String, String)>, form: Form) -> Response {
    let back = ui_project(&p, "members");
    let path = format!("{}/members/{}", api_project(&p), enc(&mid));
    ctx.submit(&form, Method::DELETE, &path, None, ctx.t("deleted"), &back, &back).await
}

pub async fn change_role(ctx: Ctx, Path((p, mid)): Path<(String, String)>, form: Form) -> Response {
    let back = ui_project(&p, "members");
    let role: i64 = form.get("role_id").parse().unwrap_or(0);
    let path = format!("{}/members/{}", api_project(&p), enc(&mid));
    ctx.submit(&form, Method::PUT, &path, Some(json!({ "role_id": role })), ctx.t("saved"), &back, &back).await
}
