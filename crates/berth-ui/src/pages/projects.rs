//! `/projects` (list, filter, page, create) and `/projects/{p}/settings`.

use axum::extract::Path;
use axum::http::{Method, Uri};
use axum::response::Response;
use maud::html;
use serde_json::json;

use super::{ProjectPage, api_project, has, project_page, refusal};
use crate::layout::{Nav, csrf, page, pager, project_tabs, when};
use crate::{Ctx, Form, enc, query};

const PAGE_SIZE: u64 = 20;

pub async fn list(ctx: Ctx, uri: Uri) -> Response {
    if let Err(r) = ctx.require_user() {
        return r;
    }
    let q = query(&uri);
    let name = q.get("name").trim().to_string();
    let pg: u64 = q.get("page").parse().unwrap_or(1).max(1);
    let mut path = format!("/api/v2.0/projects?page={pg}&page_size={PAGE_SIZE}&sort=name");
    if !name.is_empty() {
        path.push_str(&format!("&name={}", enc(&name)));
    }
    let a = ctx.call(Method::GET, &path, None).await;
    if !a.ok() {
        return refusal(&ctx, &a);
    }
    let total = a.total().unwrap_or(0);
    // Only system administrators create proxy-cache projects, and only they may list the
    // registry endpoints: for anyone else the API refuses and the form has no choice.
    let regs = if ctx.user.as_ref().is_some_and(|u| u.sysadmin) {
        ctx.call(Method::GET, "/api/v2.0/registries?page_size=100", None).await
    } else {
        crate::Answer::empty()
    };
    page(
        &ctx,
        ctx.t("projects.title"),
        Nav::Projects,
        html! {
            form.filters method="get" action="/projects" role="search" {
                label for="name" { (ctx.t("projects.filter")) }
                input id="name" name="name" type="search" value=(name);
                button type="submit" { (ctx.t("filter")) }
            }
            @if a.items().is_empty() {
                p { (ctx.t("none")) }
            } @else {
                table {
                    thead { tr {
                        th scope="col" aria-sort="ascending" { (ctx.t("col.name")) }
                        th scope="col" { (ctx.t("col.access")) }
                        th scope="col" { (ctx.t("col.role")) }
                        th scope="col" { (ctx.t("col.kind")) }
                        th scope="col" { (ctx.t("col.repos")) }
                        th scope="col" { (ctx.t("col.created")) }
                    } }
                    tbody {
                        @for p in a.items() {
                            @let n = p["name"].as_str().unwrap_or("");
                            @let public = p["metadata"]["public"].as_str() == Some("true");
                            tr {
                                th scope="row" { a href={ "/projects/" (enc(n)) "/repos" } { (n) } }
                                td { @if public { span.badge.public { "◯ " (ctx.t("public")) } } @else { span.badge.private { "🔒 " (ctx.t("private")) } } }
                                td { @match p["current_user_role_id"].as_i64() {
                                    Some(r) if r > 0 => (ctx.t(&format!("role.{}", r.clamp(1, 5)))),
                                    _ => "—",
                                } }
                                td { @if p["registry_id"].as_i64().is_some() { "⇄ " (ctx.t("proxy.cache")) } @else { (ctx.t("proxy.project")) } }
                                td.num { (p["repo_count"].as_u64().unwrap_or(0)) }
                                td { (when(&ctx, &p["creation_time"])) }
                            }
                        }
                    }
                }
                (pager(&ctx, "/projects", &[("name", &name)], pg, PAGE_SIZE, total))
            }
            section aria-labelledby="new-project" {
                h2 id="new-project" { (ctx.t("projects.new")) }
                form.inline method="post" action="/projects" {
                    (csrf(&ctx))
                    label for="project_name" { (ctx.t("projects.name")) }
                    input id="project_name" name="project_name" required pattern="[a-z0-9]+([._-][a-z0-9]+)*" maxlength="255";
                    label.check { input type="checkbox" name="public" value="true"; " " (ctx.t("projects.public")) }
                    @if !regs.items().is_empty() {
                        label for="registry_id" { (ctx.t("proxy.endpoint")) }
                        select id="registry_id" name="registry_id" {
                            option value="" { (ctx.t("proxy.none")) }
                            @for r in regs.items() { option value=(r["id"].as_i64().unwrap_or(0)) { (r["name"].as_str().unwrap_or("")) " (" (r["url"].as_str().unwrap_or("")) ")" } }
                        }
                    }
                    button.primary type="submit" { (ctx.t("create")) }
                }
            }
        },
    )
}

pub async fn create(ctx: Ctx, form: Form) -> Response {
    if let Err(r) = ctx.require_user() {
        return r;
    }
    let name = form.get("project_name").trim().to_string();
    let mut body = json!({ "project_name": name, "public": form.get("public") == "true" });
    if !form.get("registry_id").is_empty() {
        // A number the API checks (exists, > 0); anything else it refuses by name.
        body["registry_id"] =
            form.get("registry_id").parse::<i64>().map_or_else(|_| json!(form.get("registry_id")), |n| json!(n));
    }
    let to = format!("/projects/{}/repos", enc(&name));
    ctx.submit(&form, Method::POST, "/api/v2.0/projects", Some(body), ctx.t("projects.created"), &to, "/projects").await
}

/// "This project is a proxy cache of …": the endpoint by name for those who may read
/// registries, by id for everyone else; nothing for an ordinary project.
pub async fn proxy_notice(ctx: &Ctx, proj: &serde_json::Value) -> maud::Markup {
    let Some(id) = proj["registry_id"].as_i64() else { return html! {} };
    let r = ctx.call(Method::GET, &format!("/api/v2.0/registries/{id}"), None).await;
    html! {
        p.hint { "⇄ " (ctx.t("proxy.of")) " "
            @if r.ok() { strong { (r.json["name"].as_str().unwrap_or("")) } " (" code { (r.json["url"].as_str().unwrap_or("")) } ")" }
            @else { (ctx.t("proxy.endpoint_id")) " " (id) }
            ". " (ctx.t("proxy.hint"))
        }
    }
}

pub async fn project_root(ctx: Ctx, Path(p): Path<String>) -> Response {
    ctx.redirect(&format!("/projects/{}/repos", enc(&p)))
}

const FLAGS: &[(&str, &str)] = &[
    ("public", "settings.public"),
    ("auto_scan", "settings.auto_scan"),
    ("auto_sbom_generation", "settings.auto_sbom"),
    ("prevent_vul", "settings.prevent_vul"),
    ("enable_content_trust_cosign", "sig.require_cosign"),
    ("enable_content_trust", "sig.require_notation"),
];

/// The severities `prevent_vul` can stop at (Harbor's metadata values).
const SEVERITIES: &[&str] = &["critical", "high", "medium", "low", "negligible"];

pub async fn settings(ctx: Ctx, Path(p): Path<String>) -> Response {
    let ProjectPage { json: proj, perms, .. } = match project_page(&ctx, &p).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let can = has(&perms, ".", "update");
    let summary = ctx.call(Method::GET, &format!("{}/summary", api_project(&p)), None).await;
    let system_list = ctx.call(Method::GET, "/api/v2.0/system/CVEAllowlist", None).await;
    let proxy = proxy_notice(&ctx, &proj).await;
    let sev = proj["metadata"]["severity"].as_str().unwrap_or("low").to_string();
    page(
        &ctx,
        &p,
        Nav::Projects,
        html! {
            (project_tabs(&ctx, &p, "settings"))
            (proxy)
            h2 { (ctx.t("settings.title")) }
            form.narrow method="post" action={ "/projects/" (enc(&p)) "/settings" } {
                (csrf(&ctx))
                fieldset disabled[!can] {
                    @for (key, label) in FLAGS {
                        p { label.check {
                            input type="checkbox" name=(key) value="true" checked[proj["metadata"][*key].as_str() == Some("true")];
                            " " (ctx.t(label))
                        } }
                    }
                    p {
                        label for="severity" { (ctx.t("settings.severity")) }
                        select id="severity" name="severity" {
                            @for s in SEVERITIES { option value=(s) selected[*s == sev] { (ctx.t(&format!("sev.{s}"))) } }
                        }
                    }
                    button.primary type="submit" { (ctx.t("save")) }
                }
            }
            (super::hub::project_allowlist(&ctx, &p, &proj, &system_list.json, can))
            @if let Some(q) = summary.json.get("quota") {
                h2 { (ctx.t("quotas.usage")) }
                p { (crate::layout::quota(&ctx, q["used"]["storage"].as_i64().unwrap_or(0), q["hard"]["storage"].as_i64().unwrap_or(-1))) }
            }
        },
    )
}

pub async fn save_settings(ctx: Ctx, Path(p): Path<String>, form: Form) -> Response {
    let back = format!("/projects/{}/settings", enc(&p));
    let mut metadata: serde_json::Map<String, serde_json::Value> =
        FLAGS.iter().map(|(k, _)| (k.to_string(), json!((form.get(k) == "true").to_string()))).collect();
    if !form.get("severity").is_empty() {
        metadata.insert("severity".into(), json!(form.get("severity")));
    }
    let body = json!({ "metadata": metadata });
    ctx.submit(&form, Method::PUT, &api_project(&p), Some(body), ctx.t("saved"), &back, &back).await
}
