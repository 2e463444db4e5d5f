//! `/projects/{p}/retention`: a project's tag retention policy (Harbor's `/retentions`):
//! its rules (add, enable or disable, remove), its schedule, run now or as a dry run, and
//! its executions → tasks per repository (retained of total) → each task's log.
//!
//! The policy is one document; a change to a rule is a `PUT` of the whole policy as the
//! API last answered it, with that one change.

use axum::extract::Path;
use axum::http::{Method, Uri};
use axum::response::Response;
use maud::{Markup, html};
use serde_json::{Value, json};

use super::{ProjectPage, has, project, project_page, refusal};
use crate::layout::{
    Nav, csrf, enabled, head, list_table, log_page, page, pager, post_button, project_tabs, status, when,
};
use crate::{Ctx, Form, enc, query};

const PAGE_SIZE: u64 = 10;

/// The templates, in the order Harbor's portal offers them.
const TEMPLATES: &[&str] = &[
    "latestPushedK",
    "latestPulledN",
    "nDaysSinceLastPush",
    "nDaysSinceLastPull",
    "latestActiveK",
    "always",
    "nothing",
];

fn base(p: &str) -> String {
    format!("/projects/{}/retention", enc(p))
}

/// The project's policy id (its `retention_id` metadata), if it has one.
fn policy_id(proj: &Value) -> Option<i64> {
    proj["metadata"]["retention_id"].as_str().and_then(|v| v.parse().ok())
}

fn selectors(ctx: &Ctx, v: &Value) -> String {
    v.as_array()
        .into_iter()
        .flatten()
        .map(|s| {
            if s["kind"].as_str() == Some("label") {
                let words = if s["decoration"].as_str() == Some("withoutLabels") {
                    ctx.t("retention.without_labels")
                } else {
                    ctx.t("retention.with_labels")
                };
                return format!("{words}: {}", s["pattern"].as_str().unwrap_or(""));
            }
            let mut t = format!("{} {}", s["decoration"].as_str().unwrap_or(""), s["pattern"].as_str().unwrap_or(""));
            if s["extras"].as_str().is_some_and(|e| e.contains("\"untagged\":true")) {
                t.push_str(" +untagged");
            }
            t
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// "retain the most recently pushed 10 artifacts", in the page's language.
fn rule_text(ctx: &Ctx, r: &Value) -> Markup {
    let tpl = r["template"].as_str().unwrap_or("");
    let n = r["params"][tpl].as_i64().map(|n| n.to_string()).unwrap_or_default();
    html! { (ctx.t(&format!("retention.tpl.{tpl}")).replace('#', &n)) }
}

pub async fn show(ctx: Ctx, Path(p): Path<String>, uri: Uri) -> Response {
    let ProjectPage { json: proj, perms, .. } = match project_page(&ctx, &p).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    if !has(&perms, "tag-retention", "read") {
        // The API's own refusal when there is a policy to ask for; else its permission list's.
        return match policy_id(&proj) {
            Some(id) => refusal(&ctx, &ctx.call(Method::GET, &format!("/api/v2.0/retentions/{id}"), None).await),
            None => super::forbidden(&ctx),
        };
    }
    let (can_change, can_run) = (has(&perms, "tag-retention", "update"), has(&perms, "tag-retention", "operate"));
    let pid = policy_id(&proj);
    let policy = match pid {
        Some(id) => {
            let a = ctx.call(Method::GET, &format!("/api/v2.0/retentions/{id}"), None).await;
            if !a.ok() {
                return refusal(&ctx, &a);
            }
            Some(a.json)
        }
        None => None,
    };
    let q = query(&uri);
    let pg: u64 = q.get("page").parse().unwrap_or(1).max(1);
    let execs = match pid {
        Some(id) => {
            ctx.call(
                Method::GET,
                &format!("/api/v2.0/retentions/{id}/executions?page={pg}&page_size={PAGE_SIZE}"),
                None,
            )
            .await
        }
        None => crate::Answer::empty(),
    };
    let rules: Vec<Value> = policy.as_ref().and_then(|v| v["rules"].as_array().cloned()).unwrap_or_default();
    let cron = policy.as_ref().and_then(|v| v["trigger"]["settings"]["cron"].as_str()).unwrap_or("").to_string();
    let b = base(&p);
    page(
        &ctx,
        &p,
        Nav::Projects,
        html! {
            (project_tabs(&ctx, &p, "retention"))
            h2 { (ctx.t("retention.rules")) }
            @if rules.is_empty() { p { (ctx.t("retention.no_rules")) } } @else {
                table {
                    (head(&ctx, &["col.id", "col.repo_pattern", "col.tag_pattern", "retention.rule", "col.enabled"], can_change))
                    tbody { @for (i, r) in rules.iter().enumerate() {
                        @let off = r["disabled"].as_bool() == Some(true);
                        tr {
                            th scope="row" { (i + 1) }
                            td { code { (selectors(&ctx, &r["scope_selectors"]["repository"])) } }
                            td { code { (selectors(&ctx, &r["tag_selectors"])) } }
                            td { (rule_text(&ctx, r)) }
                            td { (enabled(&ctx, !off)) }
                            @if can_change { td {
                                @let words = if off { ctx.t("enable") } else { ctx.t("disable") };
                                (post_button(&ctx, &format!("{b}/rules/{i}/toggle"), words, &format!("{words} #{}", i + 1), false))
                                " "
                                (post_button(&ctx, &format!("{b}/rules/{i}/delete"), ctx.t("delete"), &format!("{} #{}", ctx.t("delete"), i + 1), true))
                            } }
                        }
                    } }
                }
            }
            @if can_change {
                h2 id="new-rule" { (ctx.t("retention.add")) }
                form.narrow method="post" action={ (b) "/rules" } aria-labelledby="new-rule" {
                    (csrf(&ctx))
                    p { label for="rt_repos" { (ctx.t("retention.repos")) }
                        span.inline {
                            select id="rt_repo_dec" name="repo_decoration" aria-label=(ctx.t("retention.repo_dec")) {
                                option value="repoMatches" { (ctx.t("retention.matching")) }
                                option value="repoExcludes" { (ctx.t("retention.excluding")) }
                            }
                            input id="rt_repos" name="repos" value="**" required;
                        }
                    }
                    p { label for="rt_template" { (ctx.t("retention.rule")) }
                        select id="rt_template" name="template" {
                            @for t in TEMPLATES { option value=(t) { (ctx.t(&format!("retention.tpl.{t}")).replace('#', "N")) } }
                        }
                    }
                    p { label for="rt_n" { (ctx.t("retention.n")) } input id="rt_n" name="n" type="number" min="0" value="10"; }
                    p { label for="rt_tags" { (ctx.t("retention.tags")) }
                        span.inline {
                            select id="rt_tag_dec" name="tag_decoration" aria-label=(ctx.t("retention.tag_dec")) {
                                option value="matches" { (ctx.t("retention.matching")) }
                                option value="excludes" { (ctx.t("retention.excluding")) }
                            }
                            input id="rt_tags" name="tags" value="**" required;
                        }
                    }
                    p { label.check { input type="checkbox" name="untagged" value="true" checked; " " (ctx.t("retention.untagged")) } }
                    p { label for="rt_labels" { (ctx.t("retention.labels")) }
                        span.inline {
                            select id="rt_label_dec" name="label_decoration" aria-label=(ctx.t("retention.label_dec")) {
                                option value="withLabels" { (ctx.t("retention.with_labels")) }
                                option value="withoutLabels" { (ctx.t("retention.without_labels")) }
                            }
                            input id="rt_labels" name="labels";
                        }
                    }
                    button.primary type="submit" { (ctx.t("retention.add")) }
                }
            }
            @if pid.is_some() {
                h2 id="schedule" { (ctx.t("gc.schedule")) }
                form.inline method="post" action={ (b) "/schedule" } aria-labelledby="schedule" {
                    (csrf(&ctx))
                    label for="rt_cron" { (ctx.t("retention.cron")) }
                    input id="rt_cron" name="cron" value=(cron) placeholder="0 0 3 * * *" disabled[!can_change];
                    @if can_change { button type="submit" { (ctx.t("save")) } }
                }
                @if can_run {
                    div.inline {
                        (post_button(&ctx, &format!("{b}/run"), ctx.t("retention.run"), ctx.t("retention.run"), false))
                        form.inline method="post" action={ (b) "/run" } {
                            (csrf(&ctx))
                            input type="hidden" name="dry_run" value="true";
                            button type="submit" { (ctx.t("retention.dry_run")) }
                        }
                    }
                }
                h2 { (ctx.t("retention.executions")) }
                (list_table(&ctx, &["col.id", "col.status", "gc.dry_run_col", "col.trigger", "replications.started", "replications.ended"], can_run, execs.items(), |e| {
                    let id = e["id"].as_i64().unwrap_or(0);
                    let st = e["status"].as_str().unwrap_or("");
                    html! { tr {
                        th scope="row" { a href={ (b) "/executions/" (id) } aria-label={ (ctx.t("replications.execution")) " " (id) } { (id) } }
                        td { (status(&ctx, st)) }
                        td { @if e["dry_run"].as_bool() == Some(true) { (ctx.t("yes")) } @else { (ctx.t("no")) } }
                        td { (e["trigger"].as_str().unwrap_or("")) }
                        td { (when(&ctx, &e["start_time"])) }
                        td { (when(&ctx, &e["end_time"])) }
                        @if can_run { td { @if matches!(st, "Running" | "Pending" | "InProgress") {
                            (post_button(&ctx, &format!("{b}/executions/{id}/stop"), ctx.t("stop"), &format!("{} {id}", ctx.t("stop")), true))
                        } } }
                    } }
                }))
                @if !execs.items().is_empty() { (pager(&ctx, &b, &[], pg, PAGE_SIZE, execs.total().unwrap_or(0))) }
            }
        },
    )
}

/// The policy as the API has it now (`None`: the project has none yet).
async fn current(ctx: &Ctx, p: &str) -> Result<(i64, Option<(i64, Value)>), Response> {
    let proj = project(ctx, p).await?;
    let project_id = proj["project_id"].as_i64().unwrap_or(0);
    let Some(id) = policy_id(&proj) else { return Ok((project_id, None)) };
    let a = ctx.call(Method::GET, &format!("/api/v2.0/retentions/{id}"), None).await;
    if !a.ok() {
        return Err(refusal(ctx, &a));
    }
    Ok((project_id, Some((id, a.json))))
}

/// The project's id, its policy's id and the policy, for changes that need one to exist:
/// without one the answer is a redirect to `back` saying so.
async fn existing(ctx: &Ctx, p: &str, back: &str) -> Result<(i64, i64, Value), Response> {
    match current(ctx, p).await? {
        (project_id, Some((id, policy))) => Ok((project_id, id, policy)),
        (_, None) => {
            ctx.set_flash(false, ctx.t("retention.no_policy"));
            Err(ctx.redirect(back))
        }
    }
}

/// Sends the changed policy: a `PUT` of the existing one, or a `POST` of the first.
async fn save(
    ctx: &Ctx,
    form: &Form,
    back: &str,
    project_id: i64,
    existing: Option<i64>,
    mut policy: Value,
) -> Response {
    policy["algorithm"] = json!("or");
    policy["scope"] = json!({ "level": "project", "ref": project_id });
    if policy["trigger"].is_null() {
        policy["trigger"] = json!({ "kind": "Schedule", "settings": { "cron": "" } });
    }
    match existing {
        Some(id) => {
            policy["id"] = json!(id);
            let path = format!("/api/v2.0/retentions/{id}");
            ctx.submit(form, Method::PUT, &path, Some(policy), ctx.t("saved"), back, back).await
        }
        None => ctx.submit(form, Method::POST, "/api/v2.0/retentions", Some(policy), ctx.t("saved"), back, back).await,
    }
}

pub async fn add_rule(ctx: Ctx, Path(p): Path<String>, form: Form) -> Response {
    let back = base(&p);
    let (project_id, existing) = match current(&ctx, &p).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let (id, mut policy) = match existing {
        Some((id, v)) => (Some(id), v),
        None => (None, json!({ "rules": [] })),
    };
    let template = form.get("template").to_string();
    let mut params = serde_json::Map::new();
    if !matches!(template.as_str(), "always" | "nothing") {
        let n = form.get("n").trim();
        params.insert(template.clone(), n.parse::<i64>().map(Value::from).unwrap_or_else(|_| json!(n)));
    }
    let mut tag_selectors = vec![json!({
        "kind": "doublestar",
        "decoration": form.get("tag_decoration"),
        "pattern": form.get("tags").trim(),
        "extras": json!({ "untagged": form.get("untagged") == "true" }).to_string(),
    })];
    // Harbor's label selector: names separated by commas, with all or without any of them.
    let labels: Vec<&str> = form.get("labels").split(',').map(str::trim).filter(|l| !l.is_empty()).collect();
    if !labels.is_empty() {
        tag_selectors.push(json!({
            "kind": "label", "decoration": form.get("label_decoration"), "pattern": labels.join(","),
        }));
    }
    let rule = json!({
        "disabled": false,
        "action": "retain",
        "template": template,
        "params": params,
        "tag_selectors": tag_selectors,
        "scope_selectors": { "repository": [{
            "kind": "doublestar", "decoration": form.get("repo_decoration"), "pattern": form.get("repos").trim(),
        }] },
    });
    match policy["rules"].as_array_mut() {
        Some(rules) => rules.push(rule),
        None => policy["rules"] = json!([rule]),
    }
    save(&ctx, &form, &back, project_id, id, policy).await
}

/// Removes or toggles rule `i` of the policy.
pub async fn rule_action(ctx: Ctx, Path((p, i, action)): Path<(String, usize, String)>, form: Form) -> Response {
    let back = base(&p);
    let (project_id, id, mut policy) = match existing(&ctx, &p, &back).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let Some(rules) = policy["rules"].as_array_mut().filter(|r| i < r.len()) else {
        ctx.set_flash(false, ctx.t("retention.no_rule"));
        return ctx.redirect(&back);
    };
    match action.as_str() {
        "delete" => {
            rules.remove(i);
        }
        "toggle" => {
            let off = rules[i]["disabled"].as_bool() == Some(true);
            rules[i]["disabled"] = json!(!off);
        }
        _ => return crate::layout::error_page(&ctx, axum::http::StatusCode::NOT_FOUND, "no such action"),
    }
    save(&ctx, &form, &back, project_id, Some(id), policy).await
}

pub async fn set_schedule(ctx: Ctx, Path(p): Path<String>, form: Form) -> Response {
    let back = base(&p);
    let (project_id, id, mut policy) = match existing(&ctx, &p, &back).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    policy["trigger"] = json!({ "kind": "Schedule", "settings": { "cron": form.get("cron").trim() } });
    save(&ctx, &form, &back, project_id, Some(id), policy).await
}

pub async fn run(ctx: Ctx, Path(p): Path<String>, form: Form) -> Response {
    let back = base(&p);
    let proj = match project(&ctx, &p).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let id = policy_id(&proj).unwrap_or(0);
    let body = json!({ "dry_run": form.get("dry_run") == "true" });
    let path = format!("/api/v2.0/retentions/{id}/executions");
    ctx.submit(&form, Method::POST, &path, Some(body), ctx.t("retention.started"), &back, &back).await
}

pub async fn stop(ctx: Ctx, Path((p, eid)): Path<(String, String)>, form: Form) -> Response {
    let back = base(&p);
    let proj = match project(&ctx, &p).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let id = policy_id(&proj).unwrap_or(0);
    let path = format!("/api/v2.0/retentions/{id}/executions/{}", enc(&eid));
    ctx.submit(&form, Method::PATCH, &path, Some(json!({ "action": "stop" })), ctx.t("stopped"), &back, &back).await
}

pub async fn execution(ctx: Ctx, Path((p, eid)): Path<(String, String)>, uri: Uri) -> Response {
    if let Err(r) = ctx.require_user() {
        return r;
    }
    let proj = match project(&ctx, &p).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let id = policy_id(&proj).unwrap_or(0);
    let q = query(&uri);
    let pg: u64 = q.get("page").parse().unwrap_or(1).max(1);
    let path = format!("/api/v2.0/retentions/{id}/executions/{}/tasks?page={pg}&page_size=50", enc(&eid));
    let a = ctx.call(Method::GET, &path, None).await;
    if !a.ok() {
        return refusal(&ctx, &a);
    }
    let b = format!("{}/executions/{}", base(&p), enc(&eid));
    page(
        &ctx,
        &format!("{p} · {} {eid}", ctx.t("replications.execution")),
        Nav::Projects,
        html! {
            (project_tabs(&ctx, &p, "retention"))
            p { a href=(base(&p)) { "← " (ctx.t("tab.retention")) } }
            h2 { (ctx.t("replications.tasks")) }
            (list_table(&ctx, &["col.repo", "col.status", "retention.retained", "replications.started", "replications.ended", "col.log"], false, a.items(), |t| {
                let tid = t["id"].as_i64().unwrap_or(0);
                let repo = t["repository"].as_str().unwrap_or("");
                html! { tr {
                    th scope="row" { (repo) }
                    td { (status(&ctx, t["status"].as_str().unwrap_or(""))) }
                    td.num { (t["retained"].as_u64().unwrap_or(0)) " / " (t["total"].as_u64().unwrap_or(0)) }
                    td { (when(&ctx, &t["start_time"])) }
                    td { (when(&ctx, &t["end_time"])) }
                    td { a href={ (b) "/tasks/" (tid) "/log" } aria-label={ (ctx.t("col.log")) " " (repo) } { (ctx.t("col.log")) } }
                } }
            }))
            @if !a.items().is_empty() { (pager(&ctx, &b, &[], pg, 50, a.total().unwrap_or(0))) }
        },
    )
}

pub async fn task_log(ctx: Ctx, Path((p, eid, tid)): Path<(String, String, String)>) -> Response {
    if let Err(r) = ctx.require_user() {
        return r;
    }
    let proj = match project(&ctx, &p).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let id = policy_id(&proj).unwrap_or(0);
    let path = format!("/api/v2.0/retentions/{id}/executions/{}/tasks/{}", enc(&eid), enc(&tid));
    let a = ctx.call(Method::GET, &path, None).await;
    if !a.ok() {
        return refusal(&ctx, &a);
    }
    log_page(&ctx, &format!("{} {tid}", ctx.t("col.log")), &format!("{}/executions/{}", base(&p), enc(&eid)), &a.text)
}
