//! System pages beside administration's: project quotas (`/admin/quotas`, usage and
//! limit per project, the limit editable) and the health of the installation
//! (`/admin/health`: each component as `/api/v2.0/health` reports it, each instance as the
//! job service's worker pools report them).

use axum::extract::Path;
use axum::http::{Method, Uri};
use axum::response::Response;
use maud::html;
use serde_json::json;

use super::refusal;
use crate::layout::{Nav, bytes, csrf, head, page, pager, quota, status, when};
use crate::{Ctx, Form, enc, query};

const PAGE_SIZE: u64 = 20;
const GIB: f64 = 1024.0 * 1024.0 * 1024.0;

pub async fn quotas(ctx: Ctx, uri: Uri) -> Response {
    if let Err(r) = ctx.require_user() {
        return r;
    }
    let q = query(&uri);
    let pg: u64 = q.get("page").parse().unwrap_or(1).max(1);
    let sort = match q.get("sort") {
        s @ ("-used.storage" | "used.storage" | "-hard.storage" | "hard.storage") => s.to_string(),
        _ => String::new(),
    };
    let mut path = format!("/api/v2.0/quotas?page={pg}&page_size={PAGE_SIZE}");
    if !sort.is_empty() {
        path.push_str(&format!("&sort={}", enc(&sort)));
    }
    let a = ctx.call(Method::GET, &path, None).await;
    if !a.ok() {
        return refusal(&ctx, &a);
    }
    page(
        &ctx,
        ctx.t("quotas.title"),
        Nav::Quotas,
        html! {
            form.filters method="get" {
                label for="sort" { (ctx.t("sort")) }
                select id="sort" name="sort" {
                    option value="" { (ctx.t("col.project")) }
                    option value="-used.storage" selected[sort == "-used.storage"] { (ctx.t("quotas.sort_used")) }
                    option value="-hard.storage" selected[sort == "-hard.storage"] { (ctx.t("quotas.sort_limit")) }
                }
                button type="submit" { (ctx.t("apply")) }
            }
            @if a.items().is_empty() { p { (ctx.t("none")) } } @else {
                table {
                    (head(&ctx, &["col.project", "quotas.owner", "quotas.usage", "quotas.limit"], false))
                    tbody { @for x in a.items() {
                        @let id = x["id"].as_i64().unwrap_or(0);
                        @let name = x["ref"]["name"].as_str().unwrap_or("");
                        @let hard = x["hard"]["storage"].as_i64().unwrap_or(-1);
                        @let used = x["used"]["storage"].as_i64().unwrap_or(0);
                        tr {
                            th scope="row" { a href={ "/projects/" (enc(name)) "/repos" } { (name) } }
                            td { (x["ref"]["owner_name"].as_str().unwrap_or("")) }
                            td { (quota(&ctx, used, hard)) }
                            td {
                                form.inline method="post" action={ "/admin/quotas/" (id) } {
                                    (csrf(&ctx))
                                    label.visually-hidden for={ "limit-" (id) } { (ctx.t("quotas.limit_gib")) " " (name) }
                                    input id={ "limit-" (id) } name="limit_gib" type="number" step="any" min="-1" size="8"
                                        value=(if hard < 0 { "-1".to_string() } else { format!("{}", hard as f64 / GIB) });
                                    " GiB "
                                    button type="submit" aria-label={ (ctx.t("quotas.set")) " " (name) } { (ctx.t("quotas.set")) }
                                }
                            }
                        }
                    } }
                }
                p.hint { (ctx.t("quotas.hint")) }
                (pager(&ctx, "/admin/quotas", &[("sort", &sort)], pg, PAGE_SIZE, a.total().unwrap_or(0)))
            }
        },
    )
}

pub async fn quota_set(ctx: Ctx, Path(id): Path<String>, form: Form) -> Response {
    // GiB from the form to the API's bytes; anything negative means unlimited. A value
    // the API refuses (0, not a number) comes back with its message.
    let raw = form.get("limit_gib").trim();
    let limit = match raw.parse::<f64>() {
        Ok(g) if g < 0.0 => json!(-1),
        Ok(g) if g.is_finite() => json!((g * GIB).round() as i64),
        _ => json!(raw),
    };
    let body = json!({ "hard": { "storage": limit } });
    let (path, back) = (format!("/api/v2.0/quotas/{}", enc(&id)), "/admin/quotas");
    ctx.submit(&form, Method::PUT, &path, Some(body), ctx.t("saved"), back, back).await
}

pub async fn health(ctx: Ctx) -> Response {
    if let Err(r) = ctx.require_user() {
        return r;
    }
    // The instances come first: they are for administrators only, and refuse the others.
    let pools = ctx.call(Method::GET, "/api/v2.0/jobservice/pools", None).await;
    if !pools.ok() {
        return refusal(&ctx, &pools);
    }
    let h = ctx.call(Method::GET, "/api/v2.0/health", None).await;
    let db = ctx.call(Method::GET, "/api/v2.0/system/database", None).await;
    let overall = h.json["status"].as_str().unwrap_or("unknown");
    let info = ctx.call(Method::GET, "/api/v2.0/systeminfo", None).await;
    let storage = ctx.call(Method::GET, "/api/v2.0/statistics", None).await;
    page(
        &ctx,
        ctx.t("health.title"),
        Nav::Health,
        html! {
            p role="status" { (ctx.t("health.overall")) ": " strong { (status(&ctx, overall)) } }
            h2 { (ctx.t("health.components")) }
            table {
                (head(&ctx, &["col.name", "col.status", "health.detail"], false))
                tbody { @for c in h.json["components"].as_array().into_iter().flatten() {
                    tr {
                        th scope="row" { (c["name"].as_str().unwrap_or("")) }
                        td { (status(&ctx, c["status"].as_str().unwrap_or(""))) }
                        td { (c["error"].as_str().unwrap_or("")) }
                    }
                } }
            }
            h2 { (ctx.t("health.instances")) }
            @if pools.items().is_empty() { p { (ctx.t("none")) } } @else {
                table {
                    (head(&ctx, &["health.host", "health.pid", "health.started", "health.heartbeat", "health.workers"], false))
                    tbody { @for p in pools.items() {
                        tr {
                            th scope="row" { (p["host"].as_str().unwrap_or("")) }
                            td.num { (p["pid"].as_i64().unwrap_or(0)) }
                            td { (when(&ctx, &p["start_at"])) }
                            td { (when(&ctx, &p["heartbeat_at"])) }
                            td.num { (p["concurrency"].as_i64().unwrap_or(0)) }
                        }
                    } }
                }
            }
            h2 { (ctx.t("health.database")) }
            @if !db.ok() { p role="alert" { "✖ " (db.error()) } } @else {
                dl {
                    dt { (ctx.t("health.backend")) } dd { (db.json["backend"].as_str().unwrap_or("")) }
                    dt { (ctx.t("health.role")) } dd { strong { (db.json["role"].as_str().unwrap_or("")) } }
                    @if let Some(sv) = db.json["server"].as_str().filter(|s| !s.is_empty()) { dt { (ctx.t("health.server")) } dd { code { (sv) } } }
                }
                @if db.json["role"].as_str() != Some("embedded") {
                    @let standbys = db.json["standbys"].as_array().cloned().unwrap_or_default();
                    @if standbys.is_empty() { p { "⚠ " (ctx.t("health.no_standby")) } } @else {
                        table {
                            (head(&ctx, &["health.standby", "health.address", "col.status", "health.sync", "health.lag_time", "health.lag_bytes"], false))
                            tbody { @for sb in &standbys {
                                tr {
                                    th scope="row" { (sb["name"].as_str().unwrap_or("")) }
                                    td { code { (sb["address"].as_str().unwrap_or("")) } }
                                    td { (status(&ctx, sb["state"].as_str().unwrap_or(""))) }
                                    td { (sb["sync_state"].as_str().unwrap_or("")) }
                                    td.num { (sb["replay_lag_ms"].as_i64().map(|m| format!("{m} ms")).unwrap_or_else(|| ctx.t("health.caught_up").to_string())) }
                                    td.num { (sb["replay_lag_bytes"].as_i64().map(|b| bytes(b.max(0) as u64)).unwrap_or_else(|| "—".into())) }
                                }
                            } }
                        }
                    }
                }
            }
            h2 { (ctx.t("health.storage")) }
            dl {
                dt { (ctx.t("health.version")) } dd { code { (info.json["harbor_version"].as_str().unwrap_or("")) } }
                dt { (ctx.t("health.total_storage")) } dd { (bytes(storage.json["total_storage_consumption"].as_u64().unwrap_or(0))) }
                dt { (ctx.t("col.repos")) } dd { (storage.json["total_repo_count"].as_u64().unwrap_or(0)) }
                dt { (ctx.t("projects.title")) } dd { (storage.json["total_project_count"].as_u64().unwrap_or(0)) }
            }
        },
    )
}
