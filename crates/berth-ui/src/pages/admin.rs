//! System administration: users, the audit log (and a project's), configuration,
//! garbage collection, jobs. The API decides who may see and change each (system
//! administrators); the navigation only offers them to administrators.

use axum::extract::Path;
use axum::http::{Method, Uri};
use axum::response::Response;
use maud::{Markup, html};
use serde_json::{Value, json};

use super::{api_project, csrf_refused, project, refusal};
use crate::layout::{Nav, csrf, page, pager, project_tabs, when};
use crate::{Ctx, Form, enc, query};

const PAGE_SIZE: u64 = 20;

pub async fn users(ctx: Ctx, uri: Uri) -> Response {
    if let Err(r) = ctx.require_user() {
        return r;
    }
    let q = query(&uri);
    let name = q.get("name").trim().to_string();
    let pg: u64 = q.get("page").parse().unwrap_or(1).max(1);
    let mut path = format!("/api/v2.0/users?page={pg}&page_size={PAGE_SIZE}");
    if !name.is_empty() {
        path.push_str(&format!("&q={}", enc(&format!("username=~{name}"))));
    }
    let a = ctx.call(Method::GET, &path, None).await;
    if !a.ok() {
        return refusal(&ctx, &a);
    }
    page(
        &ctx,
        ctx.t("users.title"),
        Nav::Users,
        html! {
            form.filters method="get" role="search" {
                label for="name" { (ctx.t("username")) }
                input id="name" name="name" type="search" value=(name);
                button type="submit" { (ctx.t("filter")) }
            }
            table {
                thead { tr {
                    th scope="col" { (ctx.t("username")) }
                    th scope="col" { (ctx.t("col.admin")) }
                    th scope="col" { (ctx.t("col.email")) }
                    th scope="col" { (ctx.t("col.created")) }
                } }
                tbody { @for u in a.items() {
                    tr {
                        th scope="row" { (u["username"].as_str().unwrap_or("")) }
                        td { @if u["sysadmin_flag"].as_bool() == Some(true) { "✔ " (ctx.t("yes")) } @else { (ctx.t("no")) } }
                        td { (u["email"].as_str().unwrap_or("")) }
                        td { (when(&u["creation_time"])) }
                    }
                } }
            }
            (pager(&ctx, "/admin/users", &[("name", &name)], pg, PAGE_SIZE, a.total().unwrap_or(0)))
            h2 id="new-user" { (ctx.t("users.new")) }
            form.narrow method="post" action="/admin/users" aria-labelledby="new-user" {
                (csrf(&ctx))
                p { label for="nu_name" { (ctx.t("username")) } input id="nu_name" name="username" required autocomplete="off"; }
                p { label for="nu_email" { (ctx.t("col.email")) } input id="nu_email" name="email" type="email" required; }
                p { label for="nu_real" { (ctx.t("users.realname")) } input id="nu_real" name="realname" required; }
                p { label for="nu_pw" { (ctx.t("password")) } input id="nu_pw" name="password" type="password" required autocomplete="new-password"; }
                button.primary type="submit" { (ctx.t("create")) }
            }
        },
    )
}

pub async fn user_create(ctx: Ctx, form: Form) -> Response {
    if !ctx.csrf_ok(&form) {
        return csrf_refused(&ctx, "/admin/users");
    }
    let body = json!({
        "username": form.get("username").trim(),
        "email": form.get("email").trim(),
        "realname": form.get("realname").trim(),
        "password": form.get("password"),
    });
    let a = ctx.call_with(Method::POST, "/api/v2.0/users", Some(body), Some(form.get("_csrf"))).await;
    ctx.after(&a, ctx.t("users.created"), "/admin/users")
}

fn audit_table(ctx: &Ctx, items: &[Value]) -> Markup {
    html! {
        @if items.is_empty() { p { (ctx.t("none")) } } @else {
            table {
                thead { tr {
                    th scope="col" { (ctx.t("col.time")) }
                    th scope="col" { (ctx.t("col.user")) }
                    th scope="col" { (ctx.t("col.operation")) }
                    th scope="col" { (ctx.t("col.resource_type")) }
                    th scope="col" { (ctx.t("col.resource")) }
                } }
                tbody { @for e in items {
                    tr {
                        td { (when(&e["op_time"])) }
                        td { (e["username"].as_str().unwrap_or("")) }
                        td { (e["operation"].as_str().unwrap_or("")) }
                        td { (e["resource_type"].as_str().unwrap_or("")) }
                        td { code { (e["resource"].as_str().unwrap_or("")) } }
                    }
                } }
            }
        }
    }
}

/// `q=` for the audit API from the filter fields.
fn audit_q(user: &str, op: &str) -> String {
    let mut terms = Vec::new();
    if !user.is_empty() {
        terms.push(format!("username=~{user}"));
    }
    if !op.is_empty() {
        terms.push(format!("operation={op}"));
    }
    if terms.is_empty() { String::new() } else { format!("&q={}", enc(&terms.join(","))) }
}

fn audit_filters(ctx: &Ctx, user: &str, op: &str) -> Markup {
    html! {
        form.filters method="get" role="search" {
            label for="user" { (ctx.t("audit.filter_user")) }
            input id="user" name="user" type="search" value=(user);
            label for="op" { (ctx.t("audit.filter_op")) }
            select id="op" name="op" {
                option value="" { "—" }
                @for o in ["create", "delete", "pull", "push", "update"] { option value=(o) selected[o == op] { (o) } }
            }
            button type="submit" { (ctx.t("filter")) }
        }
    }
}

pub async fn audit(ctx: Ctx, uri: Uri) -> Response {
    if let Err(r) = ctx.require_user() {
        return r;
    }
    let q = query(&uri);
    let (user, op) = (q.get("user").trim().to_string(), q.get("op").to_string());
    let pg: u64 = q.get("page").parse().unwrap_or(1).max(1);
    let path = format!("/api/v2.0/audit-logs?page={pg}&page_size={PAGE_SIZE}{}", audit_q(&user, &op));
    let a = ctx.call(Method::GET, &path, None).await;
    if !a.ok() {
        return refusal(&ctx, &a);
    }
    page(
        &ctx,
        ctx.t("audit.title"),
        Nav::Audit,
        html! {
            (audit_filters(&ctx, &user, &op))
            (audit_table(&ctx, a.items()))
            (pager(&ctx, "/admin/audit", &[("user", &user), ("op", &op)], pg, PAGE_SIZE, a.total().unwrap_or(0)))
        },
    )
}

pub async fn project_audit(ctx: Ctx, Path(p): Path<String>, uri: Uri) -> Response {
    if let Err(r) = ctx.require_user() {
        return r;
    }
    if let Err(r) = project(&ctx, &p).await {
        return r;
    }
    let q = query(&uri);
    let (user, op) = (q.get("user").trim().to_string(), q.get("op").to_string());
    let pg: u64 = q.get("page").parse().unwrap_or(1).max(1);
    let path = format!("{}/logs?page={pg}&page_size={PAGE_SIZE}{}", api_project(&p), audit_q(&user, &op));
    let a = ctx.call(Method::GET, &path, None).await;
    if !a.ok() {
        return refusal(&ctx, &a);
    }
    let base = format!("/projects/{}/audit", enc(&p));
    page(
        &ctx,
        &p,
        Nav::Projects,
        html! {
            (project_tabs(&ctx, &p, "audit"))
            h2 { (ctx.t("tab.audit")) }
            (audit_filters(&ctx, &user, &op))
            (audit_table(&ctx, a.items()))
            (pager(&ctx, &base, &[("user", &user), ("op", &op)], pg, PAGE_SIZE, a.total().unwrap_or(0)))
        },
    )
}

pub async fn config(ctx: Ctx) -> Response {
    if let Err(r) = ctx.require_user() {
        return r;
    }
    let a = ctx.call(Method::GET, "/api/v2.0/configurations", None).await;
    if !a.ok() {
        return refusal(&ctx, &a);
    }
    let v = |k: &str| a.json[k]["value"].clone();
    let restriction = v("project_creation_restriction");
    let restriction = restriction.as_str().unwrap_or("everyone");
    page(
        &ctx,
        ctx.t("config.title"),
        Nav::Config,
        html! {
            form.narrow method="post" action="/admin/config" {
                (csrf(&ctx))
                p {
                    label for="pcr" { (ctx.t("config.creation")) }
                    select id="pcr" name="project_creation_restriction" {
                        option value="everyone" selected[restriction == "everyone"] { (ctx.t("config.everyone")) }
                        option value="adminonly" selected[restriction == "adminonly"] { (ctx.t("config.adminonly")) }
                    }
                }
                p {
                    label for="st" { (ctx.t("config.session_timeout")) }
                    input id="st" name="session_timeout" type="number" min="1" value=(v("session_timeout").as_i64().unwrap_or(60));
                }
                p {
                    label for="rp" { (ctx.t("config.robot_prefix")) }
                    input id="rp" name="robot_name_prefix" value=(v("robot_name_prefix").as_str().unwrap_or("robot$"));
                }
                p { label.check {
                    input type="checkbox" name="read_only" value="true" checked[v("read_only").as_bool() == Some(true)];
                    " " (ctx.t("config.read_only"))
                } }
                button.primary type="submit" { (ctx.t("save")) }
            }
        },
    )
}

pub async fn config_save(ctx: Ctx, form: Form) -> Response {
    if !ctx.csrf_ok(&form) {
        return csrf_refused(&ctx, "/admin/config");
    }
    let body = json!({
        "project_creation_restriction": form.get("project_creation_restriction"),
        "session_timeout": form.get("session_timeout").parse::<i64>().unwrap_or(60),
        "robot_name_prefix": form.get("robot_name_prefix"),
        "read_only": form.get("read_only") == "true",
    });
    let a = ctx.call_with(Method::PUT, "/api/v2.0/configurations", Some(body), Some(form.get("_csrf"))).await;
    ctx.after(&a, ctx.t("saved"), "/admin/config")
}

pub async fn gc(ctx: Ctx) -> Response {
    if let Err(r) = ctx.require_user() {
        return r;
    }
    let a = ctx.call(Method::GET, "/api/v2.0/system/gc?page_size=20", None).await;
    if !a.ok() {
        return refusal(&ctx, &a);
    }
    let sched = ctx.call(Method::GET, "/api/v2.0/system/gc/schedule", None).await;
    let kind = sched.json["schedule"]["type"].as_str().unwrap_or("None").to_string();
    let cron = sched.json["schedule"]["cron"].as_str().unwrap_or("").to_string();
    page(
        &ctx,
        ctx.t("gc.title"),
        Nav::Gc,
        html! {
            p { (ctx.t("gc.schedule")) ": " strong { (kind) } " " code { (cron) } }
            form.narrow method="post" action="/admin/gc" {
                (csrf(&ctx))
                p { label.check { input type="checkbox" name="delete_untagged" value="true"; " " (ctx.t("gc.untagged")) } }
                p { label.check { input type="checkbox" name="dry_run" value="true"; " " (ctx.t("gc.dry_run")) } }
                button.primary type="submit" { (ctx.t("gc.run")) }
            }
            h2 { (ctx.t("gc.history")) }
            @if a.items().is_empty() { p { (ctx.t("none")) } } @else {
                table {
                    thead { tr {
                        th scope="col" { "ID" }
                        th scope="col" { (ctx.t("col.trigger")) }
                        th scope="col" { (ctx.t("col.status")) }
                        th scope="col" { (ctx.t("col.created")) }
                        th scope="col" { (ctx.t("col.updated")) }
                    } }
                    tbody { @for g in a.items() {
                        tr {
                            th scope="row" { a href={ "/api/v2.0/system/gc/" (g["id"].as_i64().unwrap_or(0)) "/log" } { (g["id"].as_i64().unwrap_or(0)) } }
                            td { (g["schedule"]["type"].as_str().or(g["trigger"].as_str()).unwrap_or("")) }
                            td { (status(g["job_status"].as_str().unwrap_or(""))) }
                            td { (when(&g["creation_time"])) }
                            td { (when(&g["update_time"])) }
                        }
                    } }
                }
            }
        },
    )
}

/// A job status in words with a symbol, never by colour alone.
fn status(s: &str) -> Markup {
    let (sym, class) = match s.to_ascii_lowercase().as_str() {
        "success" | "succeed" | "succeeded" => ("✔", "good"),
        "error" | "failed" | "stopped" => ("✖", "bad"),
        _ => ("◷", "neutral"),
    };
    html! { span class={ "status " (class) } { (sym) " " (s) } }
}

pub async fn gc_run(ctx: Ctx, form: Form) -> Response {
    if !ctx.csrf_ok(&form) {
        return csrf_refused(&ctx, "/admin/gc");
    }
    let body = json!({
        "schedule": { "type": "Manual" },
        "parameters": { "delete_untagged": form.get("delete_untagged") == "true", "dry_run": form.get("dry_run") == "true" },
    });
    let a = ctx.call_with(Method::POST, "/api/v2.0/system/gc/schedule", Some(body), Some(form.get("_csrf"))).await;
    ctx.after(&a, ctx.t("gc.started"), "/admin/gc")
}

pub async fn jobs(ctx: Ctx) -> Response {
    if let Err(r) = ctx.require_user() {
        return r;
    }
    let queues = ctx.call(Method::GET, "/api/v2.0/jobservice/queues", None).await;
    if !queues.ok() {
        return refusal(&ctx, &queues);
    }
    let schedules = ctx.call(Method::GET, "/api/v2.0/schedules?page_size=100", None).await;
    let pools = ctx.call(Method::GET, "/api/v2.0/jobservice/pools", None).await;
    page(
        &ctx,
        ctx.t("jobs.title"),
        Nav::Jobs,
        html! {
            h2 { (ctx.t("jobs.queues")) }
            table {
                thead { tr {
                    th scope="col" { (ctx.t("col.type")) }
                    th scope="col" { (ctx.t("jobs.pending")) }
                    th scope="col" { (ctx.t("jobs.paused")) }
                } }
                tbody { @for q in queues.items() {
                    tr {
                        th scope="row" { code { (q["job_type"].as_str().unwrap_or("")) } }
                        td.num { (q["count"].as_i64().unwrap_or(0)) }
                        td { @if q["paused"].as_bool() == Some(true) { "⏸ " (ctx.t("yes")) } @else { (ctx.t("no")) } }
                    }
                } }
            }
            h2 { (ctx.t("jobs.schedules")) }
            @if schedules.items().is_empty() { p { (ctx.t("none")) } } @else {
                table {
                    thead { tr {
                        th scope="col" { (ctx.t("col.type")) }
                        th scope="col" { "cron" }
                        th scope="col" { (ctx.t("col.updated")) }
                    } }
                    tbody { @for s in schedules.items() {
                        tr {
                            th scope="row" { code { (s["vendor_type"].as_str().unwrap_or("")) } }
                            td { code { (s["cron"].as_str().unwrap_or("")) } }
                            td { (when(&s["update_time"])) }
                        }
                    } }
                }
            }
            h2 { (ctx.t("jobs.pools")) }
            ul { @for p in pools.items() {
                li { code { (p["worker_pool_id"].as_str().unwrap_or("")) } " · " (p["host"].as_str().unwrap_or("")) " · " (p["concurrency"].as_i64().unwrap_or(0)) }
            } }
        },
    )
}
