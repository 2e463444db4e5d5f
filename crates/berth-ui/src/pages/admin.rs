//! System administration: users, the audit log (and a project's), configuration,
//! garbage collection, jobs. The API decides who may see and change each (system
//! administrators); the navigation only offers them to administrators.

use axum::extract::Path;
use axum::http::{Method, Uri};
use axum::response::Response;
use maud::{Markup, html};
use serde_json::{Value, json};

use super::{api_project, project, refusal};
use crate::layout::{Nav, csrf, head, log_page, page, pager, post_button, project_tabs, status, when};
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
                        td { (when(&ctx, &u["creation_time"])) }
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
    let body = json!({
        "username": form.get("username").trim(),
        "email": form.get("email").trim(),
        "realname": form.get("realname").trim(),
        "password": form.get("password"),
    });
    let path = "/api/v2.0/users";
    let back = "/admin/users";
    ctx.submit(&form, Method::POST, path, Some(body), ctx.t("users.created"), back, back).await
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
                        td { (when(ctx, &e["op_time"])) }
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
    let body = json!({
        "project_creation_restriction": form.get("project_creation_restriction"),
        "session_timeout": form.get("session_timeout").parse::<i64>().unwrap_or(60),
        "robot_name_prefix": form.get("robot_name_prefix"),
        "read_only": form.get("read_only") == "true",
    });
    let path = "/api/v2.0/configurations";
    let back = "/admin/config";
    ctx.submit(&form, Method::PUT, path, Some(body), ctx.t("saved"), back, back).await
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
            p { a href="/admin/gc/preview" { (ctx.t("gc.preview")) } }
            h2 id="gc-now" { (ctx.t("gc.run")) }
            form.narrow method="post" action="/admin/gc" aria-labelledby="gc-now" {
                (csrf(&ctx))
                p { label.check { input type="checkbox" name="delete_untagged" value="true"; " " (ctx.t("gc.untagged")) } }
                p { label.check { input type="checkbox" name="dry_run" value="true"; " " (ctx.t("gc.dry_run")) } }
                button.primary type="submit" { (ctx.t("gc.run")) }
            }
            h2 id="gc-schedule" { (ctx.t("gc.schedule")) }
            (schedule_form(&ctx, "/admin/gc/schedule", &kind, &cron))
            h2 { (ctx.t("gc.history")) }
            @if a.items().is_empty() { p { (ctx.t("none")) } } @else {
                table {
                    (head(&ctx, &["col.id", "col.trigger", "gc.dry_run_col", "col.status", "col.created", "col.updated", "col.log"], true))
                    tbody { @for g in a.items() {
                        @let id = g["id"].as_i64().unwrap_or(0);
                        @let st = g["job_status"].as_str().unwrap_or("");
                        tr {
                            th scope="row" { (id) }
                            td { (g["schedule"]["type"].as_str().or(g["trigger"].as_str()).unwrap_or("")) }
                            td { @if g["job_parameters"].as_str().is_some_and(|p| p.contains("\"dry_run\":true")) { (ctx.t("yes")) } @else { (ctx.t("no")) } }
                            td { (status(&ctx, st)) }
                            td { (when(&ctx, &g["creation_time"])) }
                            td { (when(&ctx, &g["update_time"])) }
                            td { a href={ "/admin/gc/" (id) "/log" } aria-label={ (ctx.t("col.log")) " " (id) } { (ctx.t("col.log")) } }
                            td { @if matches!(st, "Pending" | "Running" | "Scheduled") {
                                (post_button(&ctx, &format!("/admin/gc/{id}/stop"), ctx.t("stop"), &format!("{} {id}", ctx.t("stop")), true))
                            } }
                        }
                    } }
                }
            }
        },
    )
}

/// Harbor's schedule types, and a cron field for `Custom` (six fields, seconds first).
pub fn schedule_form(ctx: &Ctx, action: &str, kind: &str, cron: &str) -> Markup {
    html! {
        form.inline method="post" action=(action) {
            (csrf(ctx))
            label for="sched_type" { (ctx.t("schedule.type")) }
            select id="sched_type" name="type" {
                @for t in ["None", "Hourly", "Daily", "Weekly", "Custom"] {
                    option value=(t) selected[t == kind] { (ctx.t(&format!("schedule.{}", t.to_ascii_lowercase()))) }
                }
            }
            label for="sched_cron" { (ctx.t("schedule.cron")) }
            input id="sched_cron" name="cron" value=(cron) placeholder="0 0 3 * * *";
            button type="submit" { (ctx.t("save")) }
        }
    }
}

/// Harbor's schedule object from [`schedule_form`]'s fields.
pub fn schedule_of(form: &Form) -> serde_json::Value {
    let kind = form.get("type");
    let mut schedule = json!({ "type": kind });
    if kind == "Custom" {
        schedule["cron"] = json!(form.get("cron").trim());
    }
    schedule
}

pub async fn gc_schedule(ctx: Ctx, form: Form) -> Response {
    let body = json!({ "schedule": schedule_of(&form), "parameters": { "delete_untagged": false, "dry_run": false } });
    ctx.submit(&form, Method::PUT, "/api/v2.0/system/gc/schedule", Some(body), ctx.t("saved"), "/admin/gc", "/admin/gc")
        .await
}

pub async fn gc_log(ctx: Ctx, Path(id): Path<String>) -> Response {
    if let Err(r) = ctx.require_user() {
        return r;
    }
    let a = ctx.call(Method::GET, &format!("/api/v2.0/system/gc/{}/log", enc(&id)), None).await;
    if !a.ok() {
        return refusal(&ctx, &a);
    }
    log_page(&ctx, &format!("{} {id}", ctx.t("gc.log")), "/admin/gc", &a.text)
}

pub async fn gc_stop(ctx: Ctx, Path(id): Path<String>, form: Form) -> Response {
    let path = format!("/api/v2.0/system/gc/{}", enc(&id));
    let back = "/admin/gc";
    ctx.submit(&form, Method::PUT, &path, None, ctx.t("stopped"), back, back).await
}

pub async fn gc_run(ctx: Ctx, form: Form) -> Response {
    let body = json!({
        "schedule": { "type": "Manual" },
        "parameters": { "delete_untagged": form.get("delete_untagged") == "true", "dry_run": form.get("dry_run") == "true" },
    });
    let path = "/api/v2.0/system/gc/schedule";
    let back = "/admin/gc";
    ctx.submit(&form, Method::POST, path, Some(body), ctx.t("gc.started"), back, back).await
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
                    th scope="col" { (ctx.t("col.kind")) }
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
                        th scope="col" { (ctx.t("col.kind")) }
                        th scope="col" { "cron" }
                        th scope="col" { (ctx.t("col.updated")) }
                    } }
                    tbody { @for s in schedules.items() {
                        tr {
                            th scope="row" { code { (s["vendor_type"].as_str().unwrap_or("")) } }
                            td { code { (s["cron"].as_str().unwrap_or("")) } }
                            td { (when(&ctx, &s["update_time"])) }
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

/// What the latest dry run's log says: the summary line and the untagged artifacts
/// it listed, as (repository, digest).
fn dry_run_findings(log: &str) -> (Option<String>, Vec<(String, String)>) {
    let summary = log.lines().rev().find_map(|l| l.split_once("dry run: ").map(|(_, s)| s.to_string()));
    let untagged = log
        .lines()
        .filter_map(|l| l.split_once("untagged artifact eligible for deletion: ").map(|(_, s)| s.trim()))
        .filter_map(|s| s.split_once('@').map(|(r, d)| (r.to_string(), d.to_string())))
        .collect();
    (summary, untagged)
}

/// A GC preview (Berth's): the storage each project uses, and what the latest dry run
/// found to free, grouped by project and repository.
pub async fn gc_preview(ctx: Ctx) -> Response {
    if let Err(r) = ctx.require_user() {
        return r;
    }
    let hist = ctx.call(Method::GET, "/api/v2.0/system/gc?page_size=50", None).await;
    if !hist.ok() {
        return refusal(&ctx, &hist);
    }
    let quotas = ctx.call(Method::GET, "/api/v2.0/quotas?page_size=100&sort=-used.storage", None).await;
    let latest = hist.items().iter().find(|g| {
        g["job_parameters"].as_str().is_some_and(|p| p.contains("\"dry_run\":true"))
            && g["job_status"].as_str().is_some_and(|s| s.eq_ignore_ascii_case("success"))
    });
    let pending = hist.items().iter().any(|g| matches!(g["job_status"].as_str(), Some("Pending" | "Running")));
    let log = match latest {
        Some(g) => {
            ctx.call(Method::GET, &format!("/api/v2.0/system/gc/{}/log", g["id"].as_i64().unwrap_or(0)), None)
                .await
                .text
        }
        None => String::new(),
    };
    let (summary, untagged) = dry_run_findings(&log);
    let mut by_repo: std::collections::BTreeMap<&str, Vec<&str>> = Default::default();
    for (r, d) in &untagged {
        by_repo.entry(r.as_str()).or_default().push(d.as_str());
    }
    let total: i64 = quotas.items().iter().map(|q| q["used"]["storage"].as_i64().unwrap_or(0)).sum();
    page(
        &ctx,
        ctx.t("gc.preview"),
        Nav::Gc,
        html! {
            p { a href="/admin/gc" { "← " (ctx.t("gc.title")) } }
            h2 { (ctx.t("gc.by_project")) }
            @if quotas.items().is_empty() { p { (ctx.t("none")) } } @else {
                table {
                    (head(&ctx, &["col.project", "quotas.usage", "gc.share"], false))
                    tbody { @for q in quotas.items() {
                        @let used = q["used"]["storage"].as_i64().unwrap_or(0);
                        @let name = q["ref"]["name"].as_str().unwrap_or("");
                        tr {
                            th scope="row" { a href={ "/projects/" (enc(name)) "/repos" } { (name) } }
                            td.num { (crate::layout::bytes(used.max(0) as u64)) }
                            td.num { (if total > 0 { format!("{:.1} %", used as f64 * 100.0 / total as f64) } else { "—".into() }) }
                        }
                    } }
                }
                p { (ctx.t("gc.total")) ": " strong { (crate::layout::bytes(total.max(0) as u64)) } }
            }
            h2 { (ctx.t("gc.reclaimable")) }
            @match latest {
                None => p { (ctx.t("gc.no_dry_run")) },
                Some(g) => {
                    p { (ctx.t("gc.from_dry_run")) " " a href={ "/admin/gc/" (g["id"].as_i64().unwrap_or(0)) "/log" } { "#" (g["id"].as_i64().unwrap_or(0)) } " (" (when(&ctx, &g["update_time"])) ")" }
                    @if let Some(s) = &summary { p role="status" { strong { (s) } } }
                    @if by_repo.is_empty() { p { (ctx.t("gc.no_untagged")) } } @else {
                        table {
                            (head(&ctx, &["col.repo", "gc.untagged_count", "col.digest"], false))
                            tbody { @for (repo, ds) in &by_repo {
                                tr {
                                    th scope="row" { (repo) }
                                    td.num { (ds.len()) }
                                    td { @for d in ds.iter().take(5) { code title=(d) { (super::repos::short(d)) } " " } @if ds.len() > 5 { "+" (ds.len() - 5) } }
                                }
                            } }
                        }
                    }
                }
            }
            @if pending { p role="status" { "◷ " (ctx.t("gc.running")) } }
            form.inline method="post" action="/admin/gc/preview" {
                (csrf(&ctx))
                button.primary type="submit" { (ctx.t("gc.preview_run")) }
            }
        },
    )
}

pub async fn gc_preview_run(ctx: Ctx, form: Form) -> Response {
    let body = json!({ "schedule": { "type": "Manual" }, "parameters": { "delete_untagged": true, "dry_run": true } });
    let path = "/api/v2.0/system/gc/schedule";
    let back = "/admin/gc/preview";
    ctx.submit(&form, Method::POST, path, Some(body), ctx.t("gc.preview_started"), back, back).await
}
