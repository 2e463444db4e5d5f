//! `/projects` (totals, list, filter, sort, page, create, delete), bulk delete of a
//! project's repositories, and `/projects/{p}/settings`.

use axum::extract::Path;
use axum::http::{Method, Uri};
use axum::response::Response;
use maud::html;
use serde_json::json;

use std::collections::HashMap;

use berth_core::identity::rbac::{Action, Resource, Role, role_allows};

use super::bulk::{bulk_confirm, bulk_run, ticked};
use super::{ProjectPage, api_project, api_repo, has, project_page, refusal};
use crate::layout::{Nav, bytes, csrf, page, pager, project_tabs, quota, sort_th, when};
use crate::{Ctx, Form, enc, query};

const PAGE_SIZE: u64 = 20;
const GIB: f64 = 1024.0 * 1024.0 * 1024.0;
/// The totals the project list shows (message key, `/statistics` field).
const TOTALS: [(&str, &str); 6] = [
    ("projects.private_projects", "private_project_count"),
    ("projects.public_projects", "public_project_count"),
    ("projects.total_projects", "total_project_count"),
    ("projects.private_repos", "private_repo_count"),
    ("projects.public_repos", "public_repo_count"),
    ("projects.total_repos", "total_repo_count"),
];
/// The orders the project list offers: the API's `sort` fields.
const SORTS: [&str; 2] = ["name", "creation_time"];

/// `/projects`: the caller's projects (the API's list: name and visibility filters, sort,
/// offset pages), the totals (`/statistics`), storage per project for those who may list
/// quotas (one `/quotas` request for the page's projects), the new-project form.
pub async fn list(ctx: Ctx, uri: Uri) -> Response {
    let sysadmin = match ctx.require_user() {
        Ok(u) => u.sysadmin,
        Err(r) => return r,
    };
    let q = query(&uri);
    let name = q.get("name").trim().to_string();
    let public = match q.get("public") {
        v @ ("true" | "false") => v.to_string(),
        _ => String::new(),
    };
    let sort = q.get("sort").to_string();
    let sort = if SORTS.contains(&sort.strip_prefix('-').unwrap_or(&sort)) { sort } else { "name".to_string() };
    let pg: u64 = q.get("page").parse().unwrap_or(1).max(1);
    let mut path = format!("/api/v2.0/projects?page={pg}&page_size={PAGE_SIZE}&sort={}", enc(&sort));
    if !name.is_empty() {
        path.push_str(&format!("&name={}", enc(&name)));
    }
    if !public.is_empty() {
        path.push_str(&format!("&public={public}"));
    }
    let a = ctx.call(Method::GET, &path, None).await;
    if !a.ok() {
        return refusal(&ctx, &a);
    }
    let total = a.total().unwrap_or(0);
    let stats = ctx.call(Method::GET, "/api/v2.0/statistics", None).await;
    // Storage per project: the API lets only those with the system's quota permission
    // list quotas (Harbor's rule); one request for the whole page.
    let ids: Vec<String> = a.items().iter().filter_map(|p| p["project_id"].as_i64()).map(|i| i.to_string()).collect();
    let quotas: Option<HashMap<i64, (i64, i64)>> = if sysadmin && !ids.is_empty() {
        let path = format!("/api/v2.0/quotas?reference=project&reference_id={}&page_size=100", ids.join(","));
        let qa = ctx.call(Method::GET, &path, None).await;
        qa.ok().then(|| {
            qa.items()
                .iter()
                .map(|x| {
                    let used = x["used"]["storage"].as_i64().unwrap_or(0);
                    (x["id"].as_i64().unwrap_or(0), (used, x["hard"]["storage"].as_i64().unwrap_or(-1)))
                })
                .collect()
        })
    } else {
        None
    };
    // Only system administrators create proxy-cache projects, and only they may list the
    // registry endpoints: for anyone else the API refuses and the form has no choice.
    let regs = if sysadmin {
        ctx.call(Method::GET, "/api/v2.0/registries?page_size=100", None).await
    } else {
        crate::Answer::empty()
    };
    // Who may delete which project: the API's role table for the caller's role in it (the
    // confirm page asks the API itself, and the API decides the delete).
    let may_delete = |p: &serde_json::Value| {
        sysadmin
            || p["current_user_role_id"]
                .as_i64()
                .and_then(Role::from_id)
                .is_some_and(|r| role_allows(r, Resource::Project, Action::Delete))
    };
    let any_delete = a.items().iter().any(may_delete);
    // Who may export a project's CVEs: the same role table (the API decides the export,
    // through the handler the CVE exports page starts one with).
    let may_export = |p: &serde_json::Value| {
        sysadmin
            || p["current_user_role_id"]
                .as_i64()
                .and_then(Role::from_id)
                .is_some_and(|r| role_allows(r, Resource::ExportCve, Action::Create))
    };
    let any_action = any_delete || a.items().iter().any(may_export);
    let sorted_by = |s: &str| {
        let mut q: Vec<String> = [("name", name.as_str()), ("public", public.as_str())]
            .iter()
            .filter(|(_, v)| !v.is_empty())
            .map(|(k, v)| format!("{k}={}", enc(v)))
            .collect();
        q.push(format!("sort={}", enc(s)));
        format!("/projects?{}", q.join("&"))
    };
    let st = &stats.json;
    page(
        &ctx,
        ctx.t("projects.title"),
        Nav::Projects,
        html! {
            @if stats.ok() {
                section aria-labelledby="totals" {
                    h2 id="totals" { (ctx.t("projects.totals")) }
                    ul.cards {
                        @for (key, field) in TOTALS {
                            li { (ctx.t(key)) ": " strong { (st[field].as_u64().unwrap_or(0)) } }
                        }
                        @if let Some(b) = st["total_storage_consumption"].as_u64() {
                            li { (ctx.t("projects.storage_total")) ": " strong { (bytes(b)) } }
                        }
                    }
                }
            }
            form.filters method="get" action="/projects" role="search" {
                label for="name" { (ctx.t("projects.filter")) }
                input id="name" name="name" type="search" value=(name);
                label for="public" { (ctx.t("col.access")) }
                select id="public" name="public" {
                    option value="" { (ctx.t("all")) }
                    option value="true" selected[public == "true"] { (ctx.t("public")) }
                    option value="false" selected[public == "false"] { (ctx.t("private")) }
                }
                input type="hidden" name="sort" value=(sort);
                button type="submit" { (ctx.t("filter")) }
            }
            @if a.items().is_empty() {
                p { (ctx.t("none")) }
            } @else {
                table {
                    thead { tr {
                        (sort_th(&ctx, "col.name", "name", &sort, sorted_by))
                        th scope="col" { (ctx.t("col.access")) }
                        th scope="col" { (ctx.t("col.role")) }
                        th scope="col" { (ctx.t("col.kind")) }
                        th scope="col" { (ctx.t("col.repos")) }
                        @if quotas.is_some() { th scope="col" { (ctx.t("projects.storage")) } }
                        (sort_th(&ctx, "col.created", "creation_time", &sort, sorted_by))
                        @if any_action { th scope="col" { (ctx.t("col.actions")) } }
                    } }
                    tbody {
                        @for p in a.items() {
                            @let n = p["name"].as_str().unwrap_or("");
                            @let public = p["metadata"]["public"].as_str() == Some("true");
                            tr {
                                th scope="row" { a href={ "/projects/" (enc(n)) } { (n) } }
                                td { @if public { span.badge.public { "◯ " (ctx.t("public")) } } @else { span.badge.private { "🔒 " (ctx.t("private")) } } }
                                td { @match p["current_user_role_id"].as_i64() {
                                    Some(r) if r > 0 => (ctx.t(&format!("role.{}", r.clamp(1, 5)))),
                                    _ => "—",
                                } }
                                td { @if p["registry_id"].as_i64().is_some() { "⇄ " (ctx.t("proxy.cache")) } @else { (ctx.t("proxy.project")) } }
                                td.num { (p["repo_count"].as_u64().unwrap_or(0)) }
                                @if let Some(qs) = &quotas {
                                    td { @match qs.get(&p["project_id"].as_i64().unwrap_or(0)) {
                                        Some((used, hard)) => (quota(&ctx, *used, *hard)),
                                        None => "—",
                                    } }
                                }
                                td { (when(&ctx, &p["creation_time"])) }
                                @if any_action { td {
                                    @if may_export(p) {
                                        form.inline method="post" action="/cve-exports" {
                                            (csrf(&ctx))
                                            input type="hidden" name="project" value=(n);
                                            button type="submit" aria-label={ (ctx.t("projects.export_cves")) ": " (n) } { (ctx.t("projects.export_cves")) }
                                        }
                                        " "
                                    }
                                    @if may_delete(p) {
                                        a.danger href={ "/projects/" (enc(n)) "/delete" } aria-label={ (ctx.t("projects.delete")) " " (n) } { (ctx.t("delete")) }
                                    }
                                } }
                            }
                        }
                    }
                }
                (pager(&ctx, "/projects", &[("name", &name), ("public", &public), ("sort", &sort)], pg, PAGE_SIZE, total))
            }
            section aria-labelledby="new-project" {
                h2 id="new-project" { (ctx.t("projects.new")) }
                form.inline method="post" action="/projects" {
                    (csrf(&ctx))
                    label for="project_name" { (ctx.t("projects.name")) }
                    input id="project_name" name="project_name" required pattern="[a-z0-9]+([._-][a-z0-9]+)*" maxlength="255";
                    label.check { input type="checkbox" name="public" value="true"; " " (ctx.t("projects.public")) }
                    // The API takes a quota at creation only from those who may change
                    // quotas; everyone else's project gets the system's default.
                    @if sysadmin {
                        label for="storage_gib" { (ctx.t("projects.quota_gib")) }
                        input id="storage_gib" name="storage_gib" type="number" step="any" min="-1" size="8" value="-1";
                    }
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
    // GiB from the form to the API's bytes (negative: unlimited); 0 and other values the
    // API refuses come back with its message.
    let raw = form.get("storage_gib").trim();
    if !raw.is_empty() {
        match raw.parse::<f64>() {
            Ok(g) if g.is_finite() && g < 0.0 => body["storage_limit"] = json!(-1),
            Ok(g) if g.is_finite() => body["storage_limit"] = json!((g * GIB).round() as i64),
            _ => {
                if let Err(r) = ctx.check_form(&form, "/projects") {
                    return r;
                }
                ctx.set_flash(false, &format!("{} {raw:?}.", ctx.t("projects.quota_nan")));
                return ctx.redirect("/projects");
            }
        }
    }
    let to = format!("/projects/{}", enc(&name));
    ctx.submit(&form, Method::POST, "/api/v2.0/projects", Some(body), ctx.t("projects.created"), &to, "/projects").await
}

/// `GET /projects/{p}/delete`: the confirm page, for those the API lets delete the
/// project (its `_deletable` answers them only); when the project still holds
/// repositories, the API's reason instead of the button.
pub async fn confirm_delete(ctx: Ctx, Path(p): Path<String>) -> Response {
    if let Err(r) = ctx.require_user() {
        return r;
    }
    let d = ctx.call(Method::GET, &format!("{}/_deletable", api_project(&p)), None).await;
    if !d.ok() {
        return refusal(&ctx, &d);
    }
    let back = format!("/projects/{}", enc(&p));
    page(
        &ctx,
        ctx.t("confirm.title"),
        Nav::Projects,
        html! {
            @if d.json["deletable"].as_bool() == Some(false) {
                p.flash.err role="alert" { "✖ " (d.json["message"].as_str().unwrap_or("")) }
                p { a href={ (back) "/repos" } { (ctx.t("tab.repos")) } " · " a href=(back) { (ctx.t("back")) } }
            } @else {
                form method="post" action={ (back) "/delete" } {
                    (csrf(&ctx))
                    p { (ctx.t("confirm.delete")) " " strong { (p) } (ctx.t("confirm.end")) }
                    p.hint { (ctx.t("projects.delete_hint")) }
                    button.danger type="submit" { (ctx.t("delete")) }
                    " "
                    a href=(back) { (ctx.t("cancel")) }
                }
            }
        },
    )
}

/// `POST /projects/{p}/delete`: the API's delete; its refusal (not allowed, still holds
/// repositories) back on the project's page.
pub async fn delete(ctx: Ctx, Path(p): Path<String>, form: Form) -> Response {
    if let Err(r) = ctx.require_user() {
        return r;
    }
    let back = format!("/projects/{}", enc(&p));
    ctx.submit(&form, Method::DELETE, &api_project(&p), None, ctx.t("projects.deleted"), "/projects", &back).await
}

/// `POST /projects/{p}/repos/-/delete`: bulk delete of the repositories ticked in the
/// list, as the artifact list does it: a confirm page naming each, then one API delete
/// each; those the API refuses are reported by name with its reason.
pub async fn delete_repos(ctx: Ctx, Path(p): Path<String>, form: Form) -> Response {
    if let Err(r) = ctx.require_user() {
        return r;
    }
    let back = format!("/projects/{}/repos", enc(&p));
    if let Err(refused) = ctx.check_form(&form, &back) {
        return refused;
    }
    let repos = match ticked(&ctx, &form, "repo", "repos.none_selected", &back) {
        Ok(r) => r,
        Err(r) => return r,
    };
    if form.get("confirmed") != "1" {
        let rows: Vec<(String, String)> = repos.iter().map(|r| (r.to_string(), format!("{p}/{r}"))).collect();
        return bulk_confirm(&ctx, &format!("{back}/-/delete"), "repo", &rows, "repos.confirm_bulk", &back);
    }
    let calls = repos.iter().map(|r| (api_repo(&p, r), format!("{p}/{r}"), None)).collect();
    bulk_run(&ctx, &form, Method::DELETE, calls, "repos.deleted", "artifacts.not_deleted", &back).await
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
