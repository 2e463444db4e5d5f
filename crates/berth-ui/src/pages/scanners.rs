//! Scanner registrations, for system administrators (the API refuses everyone else):
//! `/admin/scanners` (list, filter by name, add with a connection test, set default,
//! delete) and `/admin/scanners/{uuid}` (the adapter's health and metadata, edit, test,
//! enable/disable); and a project's choice among the enabled ones,
//! `/projects/{p}/scanner`.

use axum::extract::Path;
use axum::http::{Method, Uri};
use axum::response::Response;
use maud::{Markup, html};
use serde_json::{Value, json};

use super::{api_project, has, project, refusal};
use crate::layout::{Nav, csrf, enabled, head, page, post_button, project_tabs, security_tabs, status, when};
use crate::{Ctx, Form, enc, query};

/// Harbor's adapter authentication schemes (empty: none).
const AUTHS: [&str; 4] = ["", "Basic", "Bearer", "X-ScannerAdapter-API-Key"];

fn api_scanner(id: &str) -> String {
    format!("/api/v2.0/scanners/{}", enc(id))
}

fn ui_scanner(id: &str) -> String {
    format!("/admin/scanners/{}", enc(id))
}

/// The built-in scanner has no endpoint to test and cannot be changed or deleted.
fn builtin(r: &Value) -> bool {
    r["url"].as_str().is_some_and(|u| u.starts_with("internal://"))
}

/// Default, or not, in words with a symbol.
fn default_mark(ctx: &Ctx, r: &Value) -> Markup {
    html! { @if r["is_default"].as_bool() == Some(true) { "★ " (ctx.t("scanners.default")) } @else { "—" } }
}

/// What the adapter can do, when it was asked (a list does not ask external adapters).
fn capabilities(ctx: &Ctx, r: &Value) -> Markup {
    let c = &r["capabilities"];
    html! {
        @if c.is_null() { (ctx.t("scanners.ask_details")) } @else {
            @if c["support_vulnerability"].as_bool() == Some(true) { "✔ " (ctx.t("scan.vulns")) " " }
            @if c["support_sbom"].as_bool() == Some(true) { "✔ SBOM" }
        }
    }
}

pub async fn list(ctx: Ctx, uri: Uri) -> Response {
    if let Err(r) = ctx.require_user() {
        return r;
    }
    let q = query(&uri);
    let name = q.get("name").trim().to_string();
    let mut path = "/api/v2.0/scanners?page_size=100".to_string();
    if !name.is_empty() {
        path.push_str(&format!("&q={}", enc(&format!("name=~{name}"))));
    }
    let a = ctx.call(Method::GET, &path, None).await;
    if !a.ok() {
        return refusal(&ctx, &a);
    }
    page(
        &ctx,
        ctx.t("scanners.title"),
        Nav::Security,
        html! {
            (security_tabs(&ctx, "/admin/scanners"))
            form.filters method="get" action="/admin/scanners" role="search" {
                label for="name" { (ctx.t("scanners.filter")) }
                input id="name" name="name" type="search" value=(name);
                button type="submit" { (ctx.t("filter")) }
            }
            @if a.items().is_empty() { p { (ctx.t("none")) } } @else {
                table {
                    (head(&ctx, &["col.name", "scanners.endpoint", "scanners.default", "col.enabled", "registries.auth", "scanners.capabilities", "col.description"], true))
                    tbody { @for r in a.items() {
                        @let id = r["uuid"].as_str().unwrap_or("");
                        @let n = r["name"].as_str().unwrap_or("");
                        tr {
                            th scope="row" { a href=(ui_scanner(id)) { (n) } }
                            td { code { (r["url"].as_str().unwrap_or("")) } }
                            td { (default_mark(&ctx, r)) }
                            td { (enabled(&ctx, r["disabled"].as_bool() != Some(true))) }
                            td { (r["auth"].as_str().filter(|a| !a.is_empty()).unwrap_or(ctx.t("scanners.no_auth"))) }
                            td { (capabilities(&ctx, r)) }
                            td { (r["description"].as_str().unwrap_or("")) }
                            td {
                                @if r["is_default"].as_bool() != Some(true) {
                                    (post_button(&ctx, &format!("{}/default", ui_scanner(id)), ctx.t("scanners.set_default"), &format!("{} {n}", ctx.t("scanners.set_default")), false))
                                    @if !builtin(r) {
                                        " "
                                        (post_button(&ctx, &format!("{}/delete", ui_scanner(id)), ctx.t("delete"), &format!("{} {n}", ctx.t("delete")), true))
                                    }
                                }
                            }
                        }
                    } }
                }
            }
            h2 id="new-scanner" { (ctx.t("scanners.new")) }
            (scanner_form(&ctx, "/admin/scanners", &Value::Null, "new-scanner"))
        },
    )
}

/// The registration form: a new one (`r` null) or an edit of `r` (its credential is
/// never shown; left empty it stays as it is).
fn scanner_form(ctx: &Ctx, action: &str, r: &Value, labelled_by: &str) -> Markup {
    let s = |k: &str| r[k].as_str().unwrap_or("").to_string();
    let auth = s("auth");
    html! {
        form.narrow method="post" action=(action) aria-labelledby=(labelled_by) {
            (csrf(ctx))
            p { label for="sc_name" { (ctx.t("col.name")) } input id="sc_name" name="name" required value=(s("name")); }
            p { label for="sc_url" { (ctx.t("scanners.endpoint")) } input id="sc_url" name="url" type="url" required placeholder="https://" value=(s("url")); }
            p { label for="sc_auth" { (ctx.t("registries.auth")) }
                select id="sc_auth" name="auth" {
                    @for a in AUTHS { option value=(a) selected[a == auth] { (if a.is_empty() { ctx.t("scanners.no_auth") } else { a }) } }
                }
            }
            p { label for="sc_cred" { (ctx.t("scanners.credential")) }
                input id="sc_cred" name="access_credential" type="password" autocomplete="new-password";
                @if !r.is_null() { br; small { (ctx.t("scanners.credential_keep")) } }
            }
            p { label for="sc_desc" { (ctx.t("col.description")) } input id="sc_desc" name="description" value=(s("description")); }
            p { label.check { input type="checkbox" name="skip_cert_verify" value="true" checked[r["skip_certVerify"].as_bool() == Some(true)]; " " (ctx.t("scanners.skip_verify")) } }
            button type="submit" name="test" value="1" { (ctx.t("registries.test")) }
            " "
            button.primary type="submit" { (if r.is_null() { ctx.t("create") } else { ctx.t("save") }) }
        }
    }
}

/// The API body of the form; an empty credential is left out (unchanged on an edit).
fn scanner_body(form: &Form, uuid: Option<&str>) -> Value {
    let mut b = json!({
        "name": form.get("name").trim(),
        "url": form.get("url").trim(),
        "auth": form.get("auth"),
        "description": form.get("description"),
        "skip_certVerify": form.get("skip_cert_verify") == "true",
    });
    if !form.get("access_credential").is_empty() {
        b["access_credential"] = json!(form.get("access_credential"));
    }
    if let Some(u) = uuid {
        b["uuid"] = json!(u);
    }
    b
}

/// Tests the settings (`POST /scanners/ping`; with the uuid the stored credential is used
/// when none is typed), or saves them.
async fn test_or_save(ctx: &Ctx, form: &Form, uuid: Option<&str>, save: (Method, &str), back: &str) -> Response {
    if form.get("test") == "1" {
        let body = Some(scanner_body(form, uuid));
        let ping = "/api/v2.0/scanners/ping";
        return ctx.submit(form, Method::POST, ping, body, ctx.t("scanners.reachable"), back, back).await;
    }
    ctx.submit(form, save.0, save.1, Some(scanner_body(form, None)), ctx.t("saved"), back, back).await
}

pub async fn create(ctx: Ctx, form: Form) -> Response {
    test_or_save(&ctx, &form, None, (Method::POST, "/api/v2.0/scanners"), "/admin/scanners").await
}

pub async fn update(ctx: Ctx, Path(id): Path<String>, form: Form) -> Response {
    test_or_save(&ctx, &form, Some(&id), (Method::PUT, &api_scanner(&id)), &ui_scanner(&id)).await
}

pub async fn detail(ctx: Ctx, Path(id): Path<String>) -> Response {
    if let Err(r) = ctx.require_user() {
        return r;
    }
    let a = ctx.call(Method::GET, &api_scanner(&id), None).await;
    if !a.ok() {
        return refusal(&ctx, &a);
    }
    let md = ctx.call(Method::GET, &format!("{}/metadata", api_scanner(&id)), None).await;
    let r = &a.json;
    let n = r["name"].as_str().unwrap_or("");
    let base = ui_scanner(&id);
    page(
        &ctx,
        n,
        Nav::Security,
        html! {
            (security_tabs(&ctx, "/admin/scanners"))
            p { a href="/admin/scanners" { "← " (ctx.t("scanners.title")) } }
            dl {
                dt { (ctx.t("scanners.endpoint")) } dd { code { (r["url"].as_str().unwrap_or("")) } }
                dt { (ctx.t("scanners.health")) } dd { (status(&ctx, r["health"].as_str().unwrap_or("unknown"))) }
                dt { (ctx.t("scanners.default")) } dd { (default_mark(&ctx, r)) }
                dt { (ctx.t("col.enabled")) } dd { (enabled(&ctx, r["disabled"].as_bool() != Some(true))) }
                dt { (ctx.t("scanners.adapter")) } dd { (r["adapter"].as_str().unwrap_or("—")) " " (r["vendor"].as_str().unwrap_or("")) " " (r["version"].as_str().unwrap_or("")) }
                dt { (ctx.t("scanners.capabilities")) } dd { (capabilities(&ctx, r)) }
                dt { (ctx.t("registries.auth")) } dd { (r["auth"].as_str().filter(|a| !a.is_empty()).unwrap_or(ctx.t("scanners.no_auth"))) }
                dt { (ctx.t("col.description")) } dd { (r["description"].as_str().unwrap_or("")) }
                dt { (ctx.t("col.created")) } dd { (when(&ctx, &r["create_time"])) }
            }
            p {
                @if !builtin(r) {
                    (post_button(&ctx, &format!("{base}/ping"), ctx.t("registries.test"), &format!("{} {n}", ctx.t("registries.test")), false))
                    " "
                }
                @if r["is_default"].as_bool() != Some(true) {
                    (post_button(&ctx, &format!("{base}/default"), ctx.t("scanners.set_default"), &format!("{} {n}", ctx.t("scanners.set_default")), false))
                    " "
                    @if !builtin(r) {
                        @if r["disabled"].as_bool() == Some(true) {
                            (post_button(&ctx, &format!("{base}/enable"), ctx.t("enable"), &format!("{} {n}", ctx.t("enable")), false))
                        } @else {
                            (post_button(&ctx, &format!("{base}/disable"), ctx.t("disable"), &format!("{} {n}", ctx.t("disable")), false))
                        }
                        " "
                        (post_button(&ctx, &format!("{base}/delete"), ctx.t("delete"), &format!("{} {n}", ctx.t("delete")), true))
                    }
                }
            }
            h2 { (ctx.t("scanners.metadata")) }
            @if !md.ok() { p.flash.err role="alert" { "✖ " (md.error()) } } @else {
                table {
                    (head(&ctx, &["col.kind", "scanners.consumes", "scanners.produces"], false))
                    tbody { @for c in md.json["capabilities"].as_array().into_iter().flatten() {
                        tr {
                            th scope="row" { (c["type"].as_str().unwrap_or("vulnerability")) }
                            td { @for m in c["consumes_mime_types"].as_array().into_iter().flatten() { code { (m.as_str().unwrap_or("")) } br; } }
                            td { @for m in c["produces_mime_types"].as_array().into_iter().flatten() { code { (m.as_str().unwrap_or("")) } br; } }
                        }
                    } }
                }
                @if let Some(props) = md.json["properties"].as_object().filter(|p| !p.is_empty()) {
                    h3 { (ctx.t("scanners.properties")) }
                    dl { @for (k, v) in props { dt { code { (k) } } dd { (v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string())) } } }
                }
            }
            @if !builtin(r) {
                h2 id="edit-scanner" { (ctx.t("scanners.edit")) }
                (scanner_form(&ctx, &base, r, "edit-scanner"))
            }
        },
    )
}

/// `ping`, `default`, `enable`, `disable`, `delete` on one registration.
pub async fn action(ctx: Ctx, Path((id, action)): Path<(String, String)>, form: Form) -> Response {
    let detail = ui_scanner(&id);
    if let Err(refused) = ctx.check_form(&form, &detail) {
        return refused;
    }
    let api = api_scanner(&id);
    let token = Some(form.get("_csrf"));
    let (a, msg, back) = match action.as_str() {
        "ping" => {
            let r = ctx.call(Method::GET, &api, None).await;
            if !r.ok() {
                return ctx.after(&r, "", &detail);
            }
            let body = json!({ "uuid": id, "name": r.json["name"], "url": r.json["url"], "auth": r.json["auth"],
                               "skip_certVerify": r.json["skip_certVerify"] });
            let a = ctx.call_with(Method::POST, "/api/v2.0/scanners/ping", Some(body), token).await;
            (a, ctx.t("scanners.reachable"), detail)
        }
        "default" => {
            let a = ctx.call_with(Method::PATCH, &api, Some(json!({ "is_default": true })), token).await;
            (a, ctx.t("saved"), detail)
        }
        "enable" | "disable" => {
            let a = ctx.call_with(Method::PUT, &api, Some(json!({ "disabled": action == "disable" })), token).await;
            (a, ctx.t("saved"), detail)
        }
        "delete" => {
            let a = ctx.call_with(Method::DELETE, &api, None, token).await;
            let back = if a.ok() { "/admin/scanners".to_string() } else { detail };
            (a, ctx.t("deleted"), back)
        }
        _ => return crate::layout::error_page(&ctx, axum::http::StatusCode::NOT_FOUND, ctx.t("not_found")),
    };
    ctx.after(&a, msg, &back)
}

pub async fn project_page(ctx: Ctx, Path(p): Path<String>) -> Response {
    if let Err(r) = ctx.require_user() {
        return r;
    }
    let proj = match project(&ctx, &p).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let perms = ctx.project_permissions(proj["project_id"].as_i64().unwrap_or(0)).await;
    let can = has(&perms, "scanner", "create");
    let a = ctx.call(Method::GET, &format!("{}/scanner", api_project(&p)), None).await;
    if !a.ok() {
        return refusal(&ctx, &a);
    }
    let cands = if can {
        ctx.call(Method::GET, &format!("{}/scanner/candidates?page_size=100", api_project(&p)), None).await
    } else {
        crate::Answer::empty()
    };
    let r = &a.json;
    let current = r["uuid"].as_str().unwrap_or("");
    page(
        &ctx,
        &p,
        Nav::Projects,
        html! {
            (project_tabs(&ctx, &p, "scanner"))
            h2 { (ctx.t("scanners.project")) }
            dl {
                dt { (ctx.t("col.name")) } dd { (r["name"].as_str().unwrap_or("")) }
                dt { (ctx.t("scanners.endpoint")) } dd { code { (r["url"].as_str().unwrap_or("")) } }
                dt { (ctx.t("scanners.health")) } dd { (status(&ctx, r["health"].as_str().unwrap_or("unknown"))) }
                dt { (ctx.t("scanners.default")) } dd { (default_mark(&ctx, r)) }
                dt { (ctx.t("col.description")) } dd { (r["description"].as_str().unwrap_or("")) }
            }
            @if can {
                form.inline method="post" action={ "/projects/" (enc(&p)) "/scanner" } {
                    (csrf(&ctx))
                    label for="scanner" { (ctx.t("scanners.choose")) }
                    select id="scanner" name="uuid" {
                        @for c in cands.items() {
                            @let u = c["uuid"].as_str().unwrap_or("");
                            option value=(u) selected[u == current] { (c["name"].as_str().unwrap_or("")) }
                        }
                    }
                    button.primary type="submit" { (ctx.t("save")) }
                }
            }
            p { a href={ "/cve-exports?project=" (enc(&p)) } { (ctx.t("exports.of_project")) } }
        },
    )
}

pub async fn project_choose(ctx: Ctx, Path(p): Path<String>, form: Form) -> Response {
    let back = format!("/projects/{}/scanner", enc(&p));
    let body = Some(json!({ "uuid": form.get("uuid") }));
    ctx.submit(&form, Method::PUT, &format!("{}/scanner", api_project(&p)), body, ctx.t("saved"), &back, &back).await
}
