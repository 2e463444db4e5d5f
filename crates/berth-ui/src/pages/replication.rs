//! Replication, for system administrators (the API refuses everyone else):
//! `/admin/registries` (registry endpoints: list, add with a connection test, check,
//! delete) and `/admin/replications` (policies: list, add, run, delete; executions with
//! their tasks and each task's log).

use axum::extract::Path;
use axum::http::{Method, Uri};
use axum::response::Response;
use maud::html;
use serde_json::{Value, json};

use super::refusal;
use crate::layout::{Nav, csrf, enabled, head, log_page, page, pager, post_button, status, when};
use crate::{Ctx, Form, enc, query};

const PAGE_SIZE: u64 = 20;

pub async fn registries(ctx: Ctx) -> Response {
    if let Err(r) = ctx.require_user() {
        return r;
    }
    let a = ctx.call(Method::GET, "/api/v2.0/registries?page_size=100", None).await;
    if !a.ok() {
        return refusal(&ctx, &a);
    }
    let kinds = ctx.call(Method::GET, "/api/v2.0/replication/adapters", None).await;
    page(
        &ctx,
        ctx.t("registries.title"),
        Nav::Registries,
        html! {
            @if a.items().is_empty() { p { (ctx.t("none")) } } @else {
                table {
                    (head(&ctx, &["col.name", "registries.url", "registries.provider", "col.status", "registries.auth", "registries.verify", "col.created"], true))
                    tbody { @for r in a.items() {
                        @let id = r["id"].as_i64().unwrap_or(0);
                        @let name = r["name"].as_str().unwrap_or("");
                        tr {
                            th scope="row" { (name) }
                            td { code { (r["url"].as_str().unwrap_or("")) } }
                            td { (r["type"].as_str().unwrap_or("")) }
                            td { (status(&ctx, r["status"].as_str().filter(|s| !s.is_empty()).unwrap_or("unknown"))) }
                            td { @match r["credential"]["access_key"].as_str().filter(|k| !k.is_empty()) {
                                Some(k) => { (ctx.t("registries.basic")) " (" (k) ")" }
                                None => { (ctx.t("registries.anonymous")) }
                            } }
                            td { @if r["insecure"].as_bool() == Some(true) { "✖ " (ctx.t("no")) } @else { "✔ " (ctx.t("yes")) } }
                            td { (when(&ctx, &r["creation_time"])) }
                            td {
                                (post_button(&ctx, &format!("/admin/registries/{id}/ping"), ctx.t("registries.test"), &format!("{} {name}", ctx.t("registries.test")), false))
                                " "
                                (post_button(&ctx, &format!("/admin/registries/{id}/delete"), ctx.t("delete"), &format!("{} {name}", ctx.t("delete")), true))
                            }
                        }
                    } }
                }
            }
            h2 id="new-registry" { (ctx.t("registries.new")) }
            form.narrow method="post" action="/admin/registries" aria-labelledby="new-registry" {
                (csrf(&ctx))
                p { label for="reg_type" { (ctx.t("registries.provider")) }
                    select id="reg_type" name="type" {
                        @for k in kinds.items() { @let k = k.as_str().unwrap_or(""); option value=(k) selected[k == "harbor"] { (k) } }
                    }
                }
                p { label for="reg_name" { (ctx.t("col.name")) } input id="reg_name" name="name" required; }
                p { label for="reg_url" { (ctx.t("registries.url")) } input id="reg_url" name="url" type="url" required placeholder="https://"; }
                p { label for="reg_key" { (ctx.t("registries.access_key")) } input id="reg_key" name="access_key" autocomplete="off"; }
                p { label for="reg_secret" { (ctx.t("registries.access_secret")) } input id="reg_secret" name="access_secret" type="password" autocomplete="new-password"; }
                p { label for="reg_desc" { (ctx.t("col.description")) } input id="reg_desc" name="description"; }
                p { label.check { input type="checkbox" name="insecure" value="true"; " " (ctx.t("registries.insecure")) } }
                button type="submit" name="test" value="1" { (ctx.t("registries.test")) }
                " "
                button.primary type="submit" { (ctx.t("create")) }
            }
        },
    )
}

fn registry_body(form: &Form) -> Value {
    let key = form.get("access_key").trim();
    json!({
        "name": form.get("name").trim(),
        "type": form.get("type"),
        "url": form.get("url").trim(),
        "description": form.get("description"),
        "insecure": form.get("insecure") == "true",
        "credential": {
            "type": if key.is_empty() { "" } else { "basic" },
            "access_key": key,
            "access_secret": form.get("access_secret"),
        },
    })
}

pub async fn registry_create(ctx: Ctx, form: Form) -> Response {
    let back = "/admin/registries";
    if form.get("test") == "1" {
        let key = form.get("access_key").trim();
        let body = json!({
            "type": form.get("type"),
            "url": form.get("url").trim(),
            "insecure": form.get("insecure") == "true",
            "credential_type": if key.is_empty() { "" } else { "basic" },
            "access_key": key,
            "access_secret": form.get("access_secret"),
        });
        return ctx
            .submit(
                &form,
                Method::POST,
                "/api/v2.0/registries/ping",
                Some(body),
                ctx.t("registries.reachable"),
                back,
                back,
            )
            .await;
    }
    ctx.submit(&form, Method::POST, "/api/v2.0/registries", Some(registry_body(&form)), ctx.t("saved"), back, back)
        .await
}

pub async fn registry_ping(ctx: Ctx, Path(id): Path<String>, form: Form) -> Response {
    let back = "/admin/registries";
    let body = json!({ "id": id.parse::<i64>().unwrap_or(0) });
    ctx.submit(&form, Method::POST, "/api/v2.0/registries/ping", Some(body), ctx.t("registries.reachable"), back, back)
        .await
}

pub async fn registry_delete(ctx: Ctx, Path(id): Path<String>, form: Form) -> Response {
    let back = "/admin/registries";
    ctx.submit(&form, Method::DELETE, &format!("/api/v2.0/registries/{}", enc(&id)), None, ctx.t("deleted"), back, back)
        .await
}

/// "Local" or the remote registry's name, from a policy's `src_registry`/`dest_registry`.
fn registry_name(v: &Value) -> String {
    match v["id"].as_i64() {
        Some(0) | None => "Local".into(),
        Some(_) => v["name"].as_str().unwrap_or("").to_string(),
    }
}

pub async fn replications(ctx: Ctx, uri: Uri) -> Response {
    if let Err(r) = ctx.require_user() {
        return r;
    }
    let a = ctx.call(Method::GET, "/api/v2.0/replication/policies?page_size=100", None).await;
    if !a.ok() {
        return refusal(&ctx, &a);
    }
    let q = query(&uri);
    let pg: u64 = q.get("page").parse().unwrap_or(1).max(1);
    let policy: String = q.get("policy_id").chars().filter(char::is_ascii_digit).collect();
    let mut path = format!("/api/v2.0/replication/executions?page={pg}&page_size={PAGE_SIZE}");
    if !policy.is_empty() {
        path.push_str(&format!("&policy_id={policy}"));
    }
    let execs = ctx.call(Method::GET, &path, None).await;
    let regs = ctx.call(Method::GET, "/api/v2.0/registries?page_size=100", None).await;
    let names: std::collections::HashMap<i64, String> = a
        .items()
        .iter()
        .map(|p| (p["id"].as_i64().unwrap_or(0), p["name"].as_str().unwrap_or("").to_string()))
        .collect();
    page(
        &ctx,
        ctx.t("replications.title"),
        Nav::Replications,
        html! {
            h2 { (ctx.t("replications.policies")) }
            @if a.items().is_empty() { p { (ctx.t("none")) } } @else {
                table {
                    (head(&ctx, &["col.name", "col.enabled", "replications.source", "replications.mode", "replications.destination", "col.trigger", "col.description"], true))
                    tbody { @for p in a.items() {
                        @let id = p["id"].as_i64().unwrap_or(0);
                        @let name = p["name"].as_str().unwrap_or("");
                        @let pull = p["src_registry"]["id"].as_i64().unwrap_or(0) != 0;
                        tr {
                            th scope="row" { a href={ "/admin/replications?policy_id=" (id) } { (name) } }
                            td { (enabled(&ctx, p["enabled"].as_bool() == Some(true))) }
                            td { (registry_name(&p["src_registry"])) " " @for f in p["filters"].as_array().into_iter().flatten() { code { (f["type"].as_str().unwrap_or("")) "=" (f["value"].as_str().map(str::to_string).unwrap_or_else(|| f["value"].to_string())) } " " } }
                            td { @if pull { "⇣ " (ctx.t("replications.pull")) } @else { "⇡ " (ctx.t("replications.push")) } }
                            td { (registry_name(&p["dest_registry"])) ":" code { (p["dest_namespace"].as_str().filter(|n| !n.is_empty()).unwrap_or("—")) } }
                            td { (p["trigger"]["type"].as_str().unwrap_or("manual")) " " code { (p["trigger"]["trigger_settings"]["cron"].as_str().unwrap_or("")) } }
                            td { (p["description"].as_str().unwrap_or("")) }
                            td {
                                (post_button(&ctx, &format!("/admin/replications/{id}/run"), ctx.t("replications.run"), &format!("{} {name}", ctx.t("replications.run")), false))
                                " "
                                (post_button(&ctx, &format!("/admin/replications/{id}/delete"), ctx.t("delete"), &format!("{} {name}", ctx.t("delete")), true))
                            }
                        }
                    } }
                }
            }
            h2 id="executions" { (ctx.t("replications.executions"))
                @if let Some(n) = policy.parse::<i64>().ok().and_then(|id| names.get(&id)) { " · " (n) " " a href="/admin/replications" { (ctx.t("replications.all")) } } }
            @if execs.items().is_empty() { p { (ctx.t("none")) } } @else {
                table {
                    (head(&ctx, &["col.id", "replications.policy", "col.status", "col.trigger", "replications.started", "replications.ended", "replications.progress"], false))
                    tbody { @for e in execs.items() {
                        @let id = e["id"].as_i64().unwrap_or(0);
                        tr {
                            th scope="row" { a href={ "/admin/replications/executions/" (id) } aria-label={ (ctx.t("replications.execution")) " " (id) } { (id) } }
                            td { (names.get(&e["policy_id"].as_i64().unwrap_or(0)).map_or("", String::as_str)) }
                            td { (status(&ctx, e["status"].as_str().unwrap_or(""))) @if let Some(t) = e["status_text"].as_str().filter(|t| !t.is_empty()) { br; small { (t) } } }
                            td { (e["trigger"].as_str().unwrap_or("")) }
                            td { (when(&ctx, &e["start_time"])) }
                            td { (when(&ctx, &e["end_time"])) }
                            td { (e["succeed"].as_i64().unwrap_or(0)) " / " (e["total"].as_i64().unwrap_or(0)) " " (ctx.t("replications.succeeded"))
                                @if e["failed"].as_i64().unwrap_or(0) > 0 { ", " (e["failed"].as_i64().unwrap_or(0)) " " (ctx.t("replications.failed")) } }
                        }
                    } }
                }
                (pager(&ctx, "/admin/replications", &[("policy_id", &policy)], pg, PAGE_SIZE, execs.total().unwrap_or(0)))
            }
            h2 id="new-policy" { (ctx.t("replications.new")) }
            @if regs.items().is_empty() {
                p { (ctx.t("replications.need_registry")) " " a href="/admin/registries" { (ctx.t("registries.title")) } }
            } @else {
                form.narrow method="post" action="/admin/replications" aria-labelledby="new-policy" {
                    (csrf(&ctx))
                    p { label for="rp_name" { (ctx.t("col.name")) } input id="rp_name" name="name" required; }
                    fieldset {
                        legend { (ctx.t("replications.mode")) }
                        label.check { input type="radio" name="mode" value="push" checked; " " (ctx.t("replications.push_long")) }
                        br;
                        label.check { input type="radio" name="mode" value="pull"; " " (ctx.t("replications.pull_long")) }
                    }
                    p { label for="rp_registry" { (ctx.t("replications.remote")) }
                        select id="rp_registry" name="registry" {
                            @for r in regs.items() { option value=(r["id"].as_i64().unwrap_or(0)) { (r["name"].as_str().unwrap_or("")) " (" (r["url"].as_str().unwrap_or("")) ")" } }
                        }
                    }
                    p { label for="rp_filter" { (ctx.t("replications.filter")) } input id="rp_filter" name="filter" placeholder="library/**"; }
                    p { label for="rp_tag" { (ctx.t("replications.tag_filter")) } input id="rp_tag" name="tag_filter" placeholder="v*"; }
                    p { label for="rp_ns" { (ctx.t("replications.namespace")) } input id="rp_ns" name="dest_namespace"; }
                    p { label for="rp_trigger" { (ctx.t("col.trigger")) }
                        select id="rp_trigger" name="trigger" {
                            option value="manual" { (ctx.t("replications.manual")) }
                            option value="scheduled" { (ctx.t("replications.scheduled")) }
                            option value="event_based" { (ctx.t("replications.event")) }
                        }
                    }
                    p { label for="rp_cron" { (ctx.t("schedule.cron")) } input id="rp_cron" name="cron" placeholder="0 0 3 * * *"; }
                    p { label.check { input type="checkbox" name="override" value="true" checked; " " (ctx.t("replications.override")) } }
                    p { label.check { input type="checkbox" name="deletion" value="true"; " " (ctx.t("replications.deletion")) } }
                    button.primary type="submit" { (ctx.t("create")) }
                }
            }
        },
    )
}

pub async fn policy_create(ctx: Ctx, form: Form) -> Response {
    let back = "/admin/replications";
    let remote = json!({ "id": form.get("registry").parse::<i64>().unwrap_or(0) });
    let (src, dest) = if form.get("mode") == "pull" { (remote, Value::Null) } else { (Value::Null, remote) };
    let mut filters = Vec::new();
    if !form.get("filter").trim().is_empty() {
        filters.push(json!({ "type": "name", "value": form.get("filter").trim() }));
    }
    if !form.get("tag_filter").trim().is_empty() {
        filters.push(json!({ "type": "tag", "value": form.get("tag_filter").trim(), "decoration": "matches" }));
    }
    let body = json!({
        "name": form.get("name").trim(),
        "src_registry": src,
        "dest_registry": dest,
        "dest_namespace": form.get("dest_namespace").trim(),
        "filters": filters,
        "trigger": { "type": form.get("trigger"), "trigger_settings": { "cron": form.get("cron").trim() } },
        "override": form.get("override") == "true",
        "replicate_deletion": form.get("deletion") == "true",
        "enabled": true,
    });
    ctx.submit(&form, Method::POST, "/api/v2.0/replication/policies", Some(body), ctx.t("saved"), back, back).await
}

pub async fn policy_run(ctx: Ctx, Path(id): Path<String>, form: Form) -> Response {
    let back = "/admin/replications";
    let body = json!({ "policy_id": id.parse::<i64>().unwrap_or(0) });
    let (path, to) = ("/api/v2.0/replication/executions", format!("{back}?policy_id={}", enc(&id)));
    ctx.submit(&form, Method::POST, path, Some(body), ctx.t("replications.started_msg"), &to, back).await
}

pub async fn policy_delete(ctx: Ctx, Path(id): Path<String>, form: Form) -> Response {
    let back = "/admin/replications";
    let path = format!("/api/v2.0/replication/policies/{}", enc(&id));
    ctx.submit(&form, Method::DELETE, &path, None, ctx.t("deleted"), back, back).await
}

pub async fn execution(ctx: Ctx, Path(id): Path<String>, uri: Uri) -> Response {
    if let Err(r) = ctx.require_user() {
        return r;
    }
    let e = ctx.call(Method::GET, &format!("/api/v2.0/replication/executions/{}", enc(&id)), None).await;
    if !e.ok() {
        return refusal(&ctx, &e);
    }
    let q = query(&uri);
    let pg: u64 = q.get("page").parse().unwrap_or(1).max(1);
    let st = q.get("status").to_string();
    let mut path = format!("/api/v2.0/replication/executions/{}/tasks?page={pg}&page_size={PAGE_SIZE}", enc(&id));
    if !st.is_empty() {
        path.push_str(&format!("&status={}", enc(&st)));
    }
    let tasks = ctx.call(Method::GET, &path, None).await;
    let base = format!("/admin/replications/executions/{}", enc(&id));
    let running = e.json["status"].as_str() == Some("InProgress");
    page(
        &ctx,
        &format!("{} {id}", ctx.t("replications.execution")),
        Nav::Replications,
        html! {
            p { a href="/admin/replications" { "← " (ctx.t("replications.title")) } }
            dl {
                dt { (ctx.t("col.status")) } dd { (status(&ctx, e.json["status"].as_str().unwrap_or(""))) }
                dt { (ctx.t("col.trigger")) } dd { (e.json["trigger"].as_str().unwrap_or("")) }
                dt { (ctx.t("replications.started")) } dd { (when(&ctx, &e.json["start_time"])) }
                dt { (ctx.t("replications.ended")) } dd { (when(&ctx, &e.json["end_time"])) }
                @if let Some(t) = e.json["status_text"].as_str().filter(|t| !t.is_empty()) { dt { (ctx.t("health.detail")) } dd { (t) } }
            }
            @if running { (post_button(&ctx, &format!("{base}/stop"), ctx.t("stop"), ctx.t("stop"), true)) }
            h2 { (ctx.t("replications.tasks")) }
            form.filters method="get" action=(base) {
                label for="status" { (ctx.t("col.status")) }
                select id="status" name="status" {
                    option value="" { "—" }
                    @for s in ["Pending", "InProgress", "Succeed", "Failed", "Stopped"] { option value=(s) selected[s == st] { (s) } }
                }
                button type="submit" { (ctx.t("filter")) }
            }
            @if tasks.items().is_empty() { p { (ctx.t("none")) } } @else {
                table {
                    (head(&ctx, &["col.id", "col.operation", "replications.source", "replications.destination", "col.status", "replications.started", "replications.ended", "col.log"], false))
                    tbody { @for t in tasks.items() {
                        @let tid = t["id"].as_i64().unwrap_or(0);
                        tr {
                            th scope="row" { (tid) }
                            td { (t["operation"].as_str().unwrap_or("")) }
                            td { code { (t["src_resource"].as_str().unwrap_or("")) } }
                            td { code { (t["dst_resource"].as_str().unwrap_or("")) } }
                            td { (status(&ctx, t["status"].as_str().unwrap_or(""))) }
                            td { (when(&ctx, &t["start_time"])) }
                            td { (when(&ctx, &t["end_time"])) }
                            td { a href={ (base) "/tasks/" (tid) "/log" } aria-label={ (ctx.t("col.log")) " " (tid) } { (ctx.t("col.log")) } }
                        }
                    } }
                }
                (pager(&ctx, &base, &[("status", &st)], pg, PAGE_SIZE, tasks.total().unwrap_or(0)))
            }
        },
    )
}

pub async fn execution_stop(ctx: Ctx, Path(id): Path<String>, form: Form) -> Response {
    let back = format!("/admin/replications/executions/{}", enc(&id));
    let path = format!("/api/v2.0/replication/executions/{}", enc(&id));
    ctx.submit(&form, Method::PUT, &path, None, ctx.t("stopped"), &back, &back).await
}

pub async fn task_log(ctx: Ctx, Path((id, tid)): Path<(String, String)>) -> Response {
    if let Err(r) = ctx.require_user() {
        return r;
    }
    let path = format!("/api/v2.0/replication/executions/{}/tasks/{}/log", enc(&id), enc(&tid));
    let a = ctx.call(Method::GET, &path, None).await;
    if !a.ok() {
        return refusal(&ctx, &a);
    }
    log_page(
        &ctx,
        &format!("{} {tid}", ctx.t("col.log")),
        &format!("/admin/replications/executions/{}", enc(&id)),
        &a.text,
    )
}
