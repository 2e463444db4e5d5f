//! A project's webhooks (`/projects/{p}/webhooks`) and immutable-tag rules
//! (`/projects/{p}/immutability`): list, create, delete.

use axum::extract::Path;
use axum::http::Method;
use axum::response::Response;
use maud::html;
use serde_json::json;

use super::{api_project, csrf_refused, has, project, refusal};
use crate::layout::{Nav, csrf, page, project_tabs, when};
use crate::{Ctx, Form, enc};

/// The event types offered in the form (the API validates them).
const EVENTS: &[&str] = &["PUSH_ARTIFACT", "PULL_ARTIFACT", "DELETE_ARTIFACT"];

pub async fn webhooks(ctx: Ctx, Path(p): Path<String>) -> Response {
    if let Err(r) = ctx.require_user() {
        return r;
    }
    let proj = match project(&ctx, &p).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let perms = ctx.project_permissions(proj["project_id"].as_i64().unwrap_or(0)).await;
    let a = ctx.call(Method::GET, &format!("{}/webhook/policies?page_size=100", api_project(&p)), None).await;
    if !a.ok() {
        return refusal(&ctx, &a);
    }
    let (can_create, can_delete) =
        (has(&perms, "notification-policy", "create"), has(&perms, "notification-policy", "delete"));
    let base = format!("/projects/{}/webhooks", enc(&p));
    page(
        &ctx,
        &p,
        Nav::Projects,
        html! {
            (project_tabs(&ctx, &p, "webhooks"))
            h2 { (ctx.t("tab.webhooks")) }
            @if a.items().is_empty() { p { (ctx.t("none")) } } @else {
                table {
                    thead { tr {
                        th scope="col" { (ctx.t("col.name")) }
                        th scope="col" { (ctx.t("col.enabled")) }
                        th scope="col" { (ctx.t("col.targets")) }
                        th scope="col" { (ctx.t("col.events")) }
                        th scope="col" { (ctx.t("col.created")) }
                        @if can_delete { th scope="col" { (ctx.t("col.actions")) } }
                    } }
                    tbody { @for w in a.items() {
                        @let name = w["name"].as_str().unwrap_or("");
                        tr {
                            th scope="row" { (name) }
                            td { @if w["enabled"].as_bool() == Some(true) { "✔ " (ctx.t("enabled")) } @else { "✖ " (ctx.t("disabled")) } }
                            td { @for t in w["targets"].as_array().into_iter().flatten() { code { (t["address"].as_str().unwrap_or("")) } " " } }
                            td { @for e in w["event_types"].as_array().into_iter().flatten() { code { (e.as_str().unwrap_or("")) } " " } }
                            td { (when(&w["creation_time"])) }
                            @if can_delete { td {
                                form method="post" action={ (base) "/" (w["id"].as_i64().unwrap_or(0)) "/delete" } {
                                    (csrf(&ctx))
                                    button.danger type="submit" aria-label={ (ctx.t("delete")) " " (name) } { (ctx.t("delete")) }
                                }
                            } }
                        }
                    } }
                }
            }
            @if can_create {
                h2 id="new-webhook" { (ctx.t("webhooks.new")) }
                form.narrow method="post" action=(base) aria-labelledby="new-webhook" {
                    (csrf(&ctx))
                    p { label for="wh_name" { (ctx.t("col.name")) } input id="wh_name" name="name" required; }
                    p { label for="wh_address" { (ctx.t("webhooks.address")) } input id="wh_address" name="address" type="url" required placeholder="https://"; }
                    fieldset {
                        legend { (ctx.t("col.events")) }
                        @for e in EVENTS { label.check { input type="checkbox" name="event" value=(e) checked[*e == "PUSH_ARTIFACT"]; " " (e) } }
                    }
                    button.primary type="submit" { (ctx.t("create")) }
                }
            }
        },
    )
}

pub async fn webhook_create(ctx: Ctx, Path(p): Path<String>, form: Form) -> Response {
    let back = format!("/projects/{}/webhooks", enc(&p));
    if !ctx.csrf_ok(&form) {
        return csrf_refused(&ctx, &back);
    }
    let body = json!({
        "name": form.get("name").trim(),
        "enabled": true,
        "event_types": form.all("event"),
        "targets": [{ "type": "http", "address": form.get("address").trim(), "payload_format": "Default" }],
    });
    let path = format!("{}/webhook/policies", api_project(&p));
    let a = ctx.call_with(Method::POST, &path, Some(body), Some(form.get("_csrf"))).await;
    ctx.after(&a, ctx.t("saved"), &back)
}

pub async fn webhook_delete(ctx: Ctx, Path((p, id)): Path<(String, String)>, form: Form) -> Response {
    let back = format!("/projects/{}/webhooks", enc(&p));
    if !ctx.csrf_ok(&form) {
        return csrf_refused(&ctx, &back);
    }
    let path = format!("{}/webhook/policies/{}", api_project(&p), enc(&id));
    let a = ctx.call_with(Method::DELETE, &path, None, Some(form.get("_csrf"))).await;
    ctx.after(&a, ctx.t("deleted"), &back)
}

pub async fn immutability(ctx: Ctx, Path(p): Path<String>) -> Response {
    if let Err(r) = ctx.require_user() {
        return r;
    }
    let proj = match project(&ctx, &p).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let perms = ctx.project_permissions(proj["project_id"].as_i64().unwrap_or(0)).await;
    let a = ctx.call(Method::GET, &format!("{}/immutabletagrules", api_project(&p)), None).await;
    if !a.ok() {
        return refusal(&ctx, &a);
    }
    let (can_create, can_delete) = (has(&perms, "immutable-tag", "create"), has(&perms, "immutable-tag", "delete"));
    let base = format!("/projects/{}/immutability", enc(&p));
    let patterns = |sels: &serde_json::Value| -> String {
        sels.as_array()
            .into_iter()
            .flatten()
            .map(|s| format!("{} {}", s["decoration"].as_str().unwrap_or(""), s["pattern"].as_str().unwrap_or("")))
            .collect::<Vec<_>>()
            .join(", ")
    };
    page(
        &ctx,
        &p,
        Nav::Projects,
        html! {
            (project_tabs(&ctx, &p, "immutability"))
            h2 { (ctx.t("tab.immutability")) }
            @if a.items().is_empty() { p { (ctx.t("none")) } } @else {
                table {
                    thead { tr {
                        th scope="col" { "#" }
                        th scope="col" { (ctx.t("col.repo_pattern")) }
                        th scope="col" { (ctx.t("col.tag_pattern")) }
                        th scope="col" { (ctx.t("col.enabled")) }
                        @if can_delete { th scope="col" { (ctx.t("col.actions")) } }
                    } }
                    tbody { @for r in a.items() {
                        @let id = r["id"].as_i64().unwrap_or(0);
                        tr {
                            th scope="row" { (id) }
                            td { code { (patterns(&r["scope_selectors"]["repository"])) } }
                            td { code { (patterns(&r["tag_selectors"])) } }
                            td { @if r["disabled"].as_bool() == Some(true) { "✖ " (ctx.t("disabled")) } @else { "✔ " (ctx.t("enabled")) } }
                            @if can_delete { td {
                                form method="post" action={ (base) "/" (id) "/delete" } {
                                    (csrf(&ctx))
                                    button.danger type="submit" aria-label={ (ctx.t("delete")) " #" (id) } { (ctx.t("delete")) }
                                }
                            } }
                        }
                    } }
                }
            }
            @if can_create {
                h2 id="new-rule" { (ctx.t("immutability.new")) }
                form.inline method="post" action=(base) aria-labelledby="new-rule" {
                    (csrf(&ctx))
                    label for="repo_pattern" { (ctx.t("immutability.repos")) }
                    input id="repo_pattern" name="repos" value="**" required;
                    label for="tag_pattern" { (ctx.t("immutability.tags")) }
                    input id="tag_pattern" name="tags" required;
                    button.primary type="submit" { (ctx.t("create")) }
                }
            }
        },
    )
}

pub async fn immutable_create(ctx: Ctx, Path(p): Path<String>, form: Form) -> Response {
    let back = format!("/projects/{}/immutability", enc(&p));
    if !ctx.csrf_ok(&form) {
        return csrf_refused(&ctx, &back);
    }
    let body = json!({
        "disabled": false,
        "tag_selectors": [{ "kind": "doublestar", "decoration": "matches", "pattern": form.get("tags").trim() }],
        "scope_selectors": { "repository": [{ "kind": "doublestar", "decoration": "repoMatches", "pattern": form.get("repos").trim() }] },
    });
    let path = format!("{}/immutabletagrules", api_project(&p));
    let a = ctx.call_with(Method::POST, &path, Some(body), Some(form.get("_csrf"))).await;
    ctx.after(&a, ctx.t("saved"), &back)
}

pub async fn immutable_delete(ctx: Ctx, Path((p, id)): Path<(String, String)>, form: Form) -> Response {
    let back = format!("/projects/{}/immutability", enc(&p));
    if !ctx.csrf_ok(&form) {
        return csrf_refused(&ctx, &back);
    }
    let path = format!("{}/immutabletagrules/{}", api_project(&p), enc(&id));
    let a = ctx.call_with(Method::DELETE, &path, None, Some(form.get("_csrf"))).await;
    ctx.after(&a, ctx.t("deleted"), &back)
}
