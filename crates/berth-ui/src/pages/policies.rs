//! A project's webhooks (`/projects/{p}/webhooks`) and immutable-tag rules
//! (`/projects/{p}/immutability`): list, create, delete.

use axum::extract::Path;
use axum::http::{Method, Uri};
use axum::response::Response;
use maud::html;
use serde_json::json;

use super::{api_project, project, project_page, refusal, ui_project};
use crate::layout::{
    Nav, csrf, enabled, head, list_table, log_page, page, pager, post_button, project_tabs, status, when,
};
use crate::{Ctx, Form, enc, query};

/// The event types offered in the form (the API validates them).
const EVENTS: &[&str] = &["PUSH_ARTIFACT", "PULL_ARTIFACT", "DELETE_ARTIFACT"];

pub async fn webhooks(ctx: Ctx, Path(p): Path<String>) -> Response {
    let proj = match project_page(&ctx, &p).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let a = ctx.call(Method::GET, &format!("{}/webhook/policies?page_size=100", api_project(&p)), None).await;
    if !a.ok() {
        return refusal(&ctx, &a);
    }
    let (can_create, can_delete, can_update) = (
        proj.can("notification-policy", "create"),
        proj.can("notification-policy", "delete"),
        proj.can("notification-policy", "update"),
    );
    let base = ui_project(&p, "webhooks");
    page(
        &ctx,
        &p,
        Nav::Projects,
        html! {
            (project_tabs(&ctx, &p, "webhooks"))
            h2 { (ctx.t("tab.webhooks")) }
            (list_table(&ctx, &["col.name", "col.enabled", "col.targets", "col.events", "col.created"], can_delete, a.items(), |w| {
                let name = w["name"].as_str().unwrap_or("");
                let id = w["id"].as_i64().unwrap_or(0);
                let on = w["enabled"].as_bool() == Some(true);
                let words = if on { ctx.t("disable") } else { ctx.t("enable") };
                html! { tr {
                    th scope="row" { a href={ (base) "/" (id) "/executions" } { (name) } }
                    td { (enabled(&ctx, on)) }
                    td { @for t in w["targets"].as_array().into_iter().flatten() { code { (t["address"].as_str().unwrap_or("")) } " " } }
                    td { @for e in w["event_types"].as_array().into_iter().flatten() { code { (e.as_str().unwrap_or("")) } " " } }
                    td { (when(&ctx, &w["creation_time"])) }
                    @if can_delete { td {
                        @if can_update { (post_button(&ctx, &format!("{base}/{id}/toggle"), words, &format!("{words} {name}"), false)) " " }
                        (post_button(&ctx, &format!("{base}/{id}/delete"), ctx.t("delete"), &format!("{} {name}", ctx.t("delete")), true))
                    } }
                } }
            }))
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
    let back = ui_project(&p, "webhooks");
    let body = json!({
        "name": form.get("name").trim(),
        "enabled": true,
        "event_types": form.all("event"),
        "targets": [{ "type": "http", "address": form.get("address").trim(), "payload_format": "Default" }],
    });
    let path = format!("{}/webhook/policies", api_project(&p));
    ctx.submit(&form, Method::POST, &path, Some(body), ctx.t("saved"), &back, &back).await
}

pub async fn webhook_delete(ctx: Ctx, Path((p, id)): Path<(String, String)>, form: Form) -> Response {
    let back = ui_project(&p, "webhooks");
    let path = format!("{}/webhook/policies/{}", api_project(&p), enc(&id));
    ctx.submit(&form, Method::DELETE, &path, None, ctx.t("deleted"), &back, &back).await
}

pub async fn immutability(ctx: Ctx, Path(p): Path<String>) -> Response {
    let proj = match project_page(&ctx, &p).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let a = ctx.call(Method::GET, &format!("{}/immutabletagrules", api_project(&p)), None).await;
    if !a.ok() {
        return refusal(&ctx, &a);
    }
    let (can_create, can_delete) = (proj.can("immutable-tag", "create"), proj.can("immutable-tag", "delete"));
    let base = ui_project(&p, "immutability");
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
            (list_table(&ctx, &["col.id", "col.repo_pattern", "col.tag_pattern", "col.enabled"], can_delete, a.items(), |r| {
                let id = r["id"].as_i64().unwrap_or(0);
                html! { tr {
                    th scope="row" { (id) }
                    td { code { (patterns(&r["scope_selectors"]["repository"])) } }
                    td { code { (patterns(&r["tag_selectors"])) } }
                    td { (enabled(&ctx, r["disabled"].as_bool() != Some(true))) }
                    @if can_delete { td {
                        (post_button(&ctx, &format!("{base}/{id}/delete"), ctx.t("delete"), &format!("{} #{id}", ctx.t("delete")), true))
                    } }
                } }
            }))
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
    let back = ui_project(&p, "immutability");
    let body = json!({
        "disabled": false,
        "tag_selectors": [{ "kind": "doublestar", "decoration": "matches", "pattern": form.get("tags").trim() }],
        "scope_selectors": { "repository": [{ "kind": "doublestar", "decoration": "repoMatches", "pattern": form.get("repos").trim() }] },
    });
    let path = format!("{}/immutabletagrules", api_project(&p));
    ctx.submit(&form, Method::POST, &path, Some(body), ctx.t("saved"), &back, &back).await
}

pub async fn immutable_delete(ctx: Ctx, Path((p, id)): Path<(String, String)>, form: Form) -> Response {
    let back = ui_project(&p, "immutability");
    let path = format!("{}/immutabletagrules/{}", api_project(&p), enc(&id));
    ctx.submit(&form, Method::DELETE, &path, None, ctx.t("deleted"), &back, &back).await
}

pub async fn webhook_toggle(ctx: Ctx, Path((p, id)): Path<(String, String)>, form: Form) -> Response {
    let back = ui_project(&p, "webhooks");
    let path = format!("{}/webhook/policies/{}", api_project(&p), enc(&id));
    let cur = ctx.call(Method::GET, &path, None).await;
    if !cur.ok() {
        return ctx.after(&cur, "", &back);
    }
    let mut body = cur.json;
    let on = body["enabled"].as_bool() == Some(true);
    body["enabled"] = json!(!on);
    ctx.submit(&form, Method::PUT, &path, Some(body), ctx.t("saved"), &back, &back).await
}

/// A webhook policy's executions (one per event it was notified of), newest first.
pub async fn webhook_executions(ctx: Ctx, Path((p, id)): Path<(String, String)>, uri: Uri) -> Response {
    if let Err(r) = ctx.require_user() {
        return r;
    }
    if let Err(r) = project(&ctx, &p).await {
        return r;
    }
    let api = format!("{}/webhook/policies/{}", api_project(&p), enc(&id));
    let pol = ctx.call(Method::GET, &api, None).await;
    if !pol.ok() {
        return refusal(&ctx, &pol);
    }
    let q = query(&uri);
    let pg: u64 = q.get("page").parse().unwrap_or(1).max(1);
    let a = ctx.call(Method::GET, &format!("{api}/executions?page={pg}&page_size=20"), None).await;
    if !a.ok() {
        return refusal(&ctx, &a);
    }
    let base = format!("/projects/{}/webhooks/{}/executions", enc(&p), enc(&id));
    let name = pol.json["name"].as_str().unwrap_or("");
    page(
        &ctx,
        &format!("{p} · {name}"),
        Nav::Projects,
        html! {
            (project_tabs(&ctx, &p, "webhooks"))
            p { a href={ "/projects/" (enc(&p)) "/webhooks" } { "← " (ctx.t("tab.webhooks")) } }
            h2 { (ctx.t("replications.executions")) }
            @if a.items().is_empty() { p { (ctx.t("none")) } } @else {
                table {
                    (head(&ctx, &["col.id", "col.events", "col.status", "replications.started", "replications.ended"], false))
                    tbody { @for e in a.items() {
                        @let eid = e["id"].as_i64().unwrap_or(0);
                        tr {
                            th scope="row" { a href={ (base) "/" (eid) } aria-label={ (ctx.t("replications.execution")) " " (eid) } { (eid) } }
                            td { code { (e["extra_attrs"]["event_type"].as_str().unwrap_or(e["trigger"].as_str().unwrap_or(""))) } }
                            td { (status(&ctx, e["status"].as_str().unwrap_or(""))) }
                            td { (when(&ctx, &e["start_time"])) }
                            td { (when(&ctx, &e["end_time"])) }
                        }
                    } }
                }
                (pager(&ctx, &base, &[], pg, 20, a.total().unwrap_or(0)))
            }
        },
    )
}

/// An execution's tasks (one per target) with their logs.
pub async fn webhook_tasks(ctx: Ctx, Path((p, id, eid)): Path<(String, String, String)>) -> Response {
    if let Err(r) = ctx.require_user() {
        return r;
    }
    let api = format!("{}/webhook/policies/{}/executions/{}/tasks", api_project(&p), enc(&id), enc(&eid));
    let a = ctx.call(Method::GET, &format!("{api}?page_size=100"), None).await;
    if !a.ok() {
        return refusal(&ctx, &a);
    }
    let base = format!("/projects/{}/webhooks/{}/executions/{}", enc(&p), enc(&id), enc(&eid));
    page(
        &ctx,
        &format!("{p} · {} {eid}", ctx.t("replications.execution")),
        Nav::Projects,
        html! {
            (project_tabs(&ctx, &p, "webhooks"))
            p { a href={ "/projects/" (enc(&p)) "/webhooks/" (enc(&id)) "/executions" } { "← " (ctx.t("replications.executions")) } }
            h2 { (ctx.t("replications.tasks")) }
            (list_table(&ctx, &["col.id", "col.targets", "col.status", "webhooks.attempts", "replications.started", "replications.ended", "col.log"], false, a.items(), |t| {
                let tid = t["id"].as_i64().unwrap_or(0);
                html! { tr {
                    th scope="row" { (tid) }
                    td { code { (t["extra_attrs"]["address"].as_str().unwrap_or("")) } }
                    td { (status(&ctx, t["status"].as_str().unwrap_or(""))) @if let Some(m) = t["status_message"].as_str().filter(|m| !m.is_empty()) { br; small { (m) } } }
                    td.num { (t["run_count"].as_i64().unwrap_or(0)) }
                    td { (when(&ctx, &t["start_time"])) }
                    td { (when(&ctx, &t["end_time"])) }
                    td { a href={ (base) "/tasks/" (tid) "/log" } aria-label={ (ctx.t("col.log")) " " (tid) } { (ctx.t("col.log")) } }
                } }
            }))
        },
    )
}

pub async fn webhook_task_log(ctx: Ctx, Path((p, id, eid, tid)): Path<(String, String, String, String)>) -> Response {
    if let Err(r) = ctx.require_user() {
        return r;
    }
    let path =
        format!("{}/webhook/policies/{}/executions/{}/tasks/{}/log", api_project(&p), enc(&id), enc(&eid), enc(&tid));
    let a = ctx.call(Method::GET, &path, None).await;
    if !a.ok() {
        return refusal(&ctx, &a);
    }
    let back = format!("/projects/{}/webhooks/{}/executions/{}", enc(&p), enc(&id), enc(&eid));
    log_page(&ctx, &format!("{} {tid}", ctx.t("col.log")), &back, &a.text)
}
