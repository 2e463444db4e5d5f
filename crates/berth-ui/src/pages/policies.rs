//! A project's webhooks (`/projects/{p}/webhooks`: list, create, edit with any number of
//! targets, enable or disable, send a test event, delete; executions, tasks and logs) and
//! immutable-tag rules (`/projects/{p}/immutability`: list, create, edit, enable or
//! disable, delete).

use axum::extract::Path;
use axum::http::{Method, Uri};
use axum::response::Response;
use maud::{Markup, html};
use serde_json::{Value, json};

use super::{api_project, project, project_page, refusal, ui_project};
use crate::layout::{Nav, csrf, enabled, list_table, log_page, page, pager, post_button, project_tabs, status, when};
use crate::{Ctx, Form, enc, query};

/// The event types, notify types and payload formats the API supports (its
/// `webhook/events` answer), offered by the webhook form.
async fn supported(ctx: &Ctx, p: &str) -> Value {
    ctx.call(Method::GET, &format!("{}/webhook/events", api_project(p)), None).await.json
}

/// The webhook form, empty (`policy` null) to create one or filled from `policy` to edit
/// it: name, description, the target (notify type, address, auth header, certificate
/// check, payload format), the event types and whether it is enabled.
fn webhook_form(ctx: &Ctx, action: &str, labelled_by: &str, supported: &Value, policy: &Value) -> Markup {
    let new = policy.is_null();
    let target = &policy["targets"][0];
    let chosen = if new { vec!["PUSH_ARTIFACT".to_string()] } else { strs(&policy["event_types"]) };
    let formats = payload_formats(supported);
    let kind = target["type"].as_str().unwrap_or("http");
    let format = target["payload_format"].as_str().unwrap_or("Default");
    html! {
        form.narrow method="post" action=(action) aria-labelledby=(labelled_by) {
            (csrf(ctx))
            p { label for="wh_name" { (ctx.t("col.name")) } input id="wh_name" name="name" required value=(policy["name"].as_str().unwrap_or("")); }
            p { label for="wh_desc" { (ctx.t("col.description")) } input id="wh_desc" name="description" value=(policy["description"].as_str().unwrap_or("")); }
            p { label for="wh_type" { (ctx.t("webhooks.notify_type")) }
                select id="wh_type" name="notify_type" {
                    @for t in strs(&supported["notify_type"]) { option value=(t) selected[t == kind] { (t) } }
                }
            }
            p { label for="wh_address" { (ctx.t("webhooks.address")) } input id="wh_address" name="address" type="url" required placeholder="https://" value=(target["address"].as_str().unwrap_or("")); }
            p { label for="wh_auth" { (ctx.t("webhooks.auth_header")) } input id="wh_auth" name="auth_header" autocomplete="off" value=(target["auth_header"].as_str().unwrap_or("")); }
            p { label.check { input type="checkbox" name="skip_cert_verify" value="true" checked[target["skip_cert_verify"] == true]; " " (ctx.t("webhooks.skip_verify")) } }
            p { label for="wh_format" { (ctx.t("webhooks.payload_format")) }
                select id="wh_format" name="payload_format" {
                    @for f in &formats { option value=(f) selected[f == format] { (format_name(ctx, f)) } }
                }
            }
            fieldset {
                legend { (ctx.t("col.events")) }
                @for e in strs(&supported["event_type"]) { label.check { input type="checkbox" name="event" value=(e) checked[chosen.contains(&e)]; " " (e) } " " }
            }
            // A new webhook starts enabled; the list's toggle and this field change that.
            @if !new { p { label.check { input type="checkbox" name="enabled" value="true" checked[policy["enabled"] == true]; " " (ctx.t("enabled")) } } }
            button.primary type="submit" { @if new { (ctx.t("create")) } @else { (ctx.t("save")) } }
        }
    }
}

/// The strings of a JSON array.
fn strs(v: &Value) -> Vec<String> {
    v.as_array().into_iter().flatten().filter_map(|x| x.as_str().map(str::to_string)).collect()
}

/// Every payload format the API offers (for any notify type), once each.
fn payload_formats(supported: &Value) -> Vec<String> {
    let mut formats: Vec<String> = Vec::new();
    for f in supported["payload_formats"].as_array().into_iter().flatten().flat_map(|f| strs(&f["formats"])) {
        if !formats.contains(&f) {
            formats.push(f);
        }
    }
    formats
}

/// A payload format's name in the page's language (Harbor's `Default`); the API's word
/// for the others (`CloudEvents` is a name).
fn format_name<'a>(ctx: &Ctx, f: &'a str) -> &'a str {
    crate::i18n::lookup(ctx.lang, &format!("webhooks.format.{f}")).unwrap_or(f)
}

/// A target as the API takes it, from a form's target fields.
fn target_body(form: &Form) -> Value {
    let or = |v: &str, default: &str| if v.is_empty() { default.to_string() } else { v.to_string() };
    json!({
        "type": or(form.get("notify_type"), "http"),
        "address": form.get("address").trim(),
        "auth_header": form.get("auth_header"),
        "skip_cert_verify": form.get("skip_cert_verify") == "true",
        "payload_format": or(form.get("payload_format"), "Default"),
    })
}

/// A webhook policy as the API takes it, from the webhook form (a new one enabled).
fn webhook_body(form: &Form, new: bool) -> Value {
    json!({
        "name": form.get("name").trim(),
        "description": form.get("description").trim(),
        "enabled": new || form.get("enabled") == "true",
        "event_types": form.all("event"),
        "targets": [target_body(form)],
    })
}

pub async fn webhooks(ctx: Ctx, Path(p): Path<String>) -> Response {
    render_webhooks(ctx, p, None).await
}

/// A test delivery's outcome to show: the policy's name and one result per target.
type Tested = (String, Vec<Value>);

/// The webhooks page, with a test delivery's results above the list when there are any.
async fn render_webhooks(ctx: Ctx, p: String, tested: Option<Tested>) -> Response {
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
    let events = if can_create { supported(&ctx, &p).await } else { Value::Null };
    page(
        &ctx,
        &p,
        Nav::Projects,
        html! {
            (project_tabs(&ctx, &p, "webhooks"))
            @if let Some((name, results)) = &tested { (test_results(&ctx, name, results)) }
            h2 { (ctx.t("tab.webhooks")) }
            (list_table(&ctx, &["col.name", "col.enabled", "col.targets", "col.events", "col.created"], can_delete || can_update, a.items(), |w| {
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
                    @if can_delete || can_update { td {
                        @if can_update {
                            a href={ (base) "/" (id) "/edit" } aria-label={ (ctx.t("edit")) " " (name) } { (ctx.t("edit")) } " "
                            (post_button(&ctx, &format!("{base}/{id}/toggle"), words, &format!("{words} {name}"), false)) " "
                            (post_button(&ctx, &format!("{base}/{id}/test"), ctx.t("webhooks.test"), &format!("{} {name}", ctx.t("webhooks.test")), false)) " "
                        }
                        @if can_delete {
                            (post_button(&ctx, &format!("{base}/{id}/delete"), ctx.t("delete"), &format!("{} {name}", ctx.t("delete")), true))
                        }
                    } }
                } }
            }))
            @if can_create {
                h2 id="new-webhook" { (ctx.t("webhooks.new")) }
                (webhook_form(&ctx, &base, "new-webhook", &events, &Value::Null))
            }
        },
    )
}

/// What each target answered to a test delivery, as a status region: the status code in
/// words with a symbol, or the error that left no answer.
fn test_results(ctx: &Ctx, name: &str, results: &[Value]) -> Markup {
    html! {
        section.secret role="status" aria-labelledby="test-title" {
            h2 id="test-title" { (ctx.t("webhooks.tested")) " " code { (name) } }
            (list_table(ctx, &["webhooks.address", "webhooks.notify_type", "webhooks.payload_format", "webhooks.answer"], false, results, |r| {
                let code = r["status_code"].as_u64();
                html! { tr {
                    th scope="row" { code { (r["address"].as_str().unwrap_or("")) } }
                    td { (r["notify_type"].as_str().unwrap_or("")) }
                    td { (format_name(ctx, r["payload_format"].as_str().unwrap_or(""))) }
                    td {
                        @match code {
                            Some(c) => {
                                @let reason = axum::http::StatusCode::from_u16(c as u16).ok().and_then(|s| s.canonical_reason()).unwrap_or("");
                                @if r["ok"] == true { "✔ " } @else { "✖ " }
                                (ctx.t("webhooks.answered")) " " strong { (c) " " (reason) }
                            }
                            None => { "✖ " (ctx.t("webhooks.no_answer")) ": " (r["error"].as_str().unwrap_or("")) }
                        }
                    }
                } }
            }))
        }
    }
}

/// "Send test": the API delivers a test event to each target now; the answer is the
/// webhooks page with what each endpoint said.
pub async fn webhook_test(ctx: Ctx, Path((p, id)): Path<(String, String)>, form: Form) -> Response {
    let back = ui_project(&p, "webhooks");
    if let Err(r) = ctx.check_form(&form, &back) {
        return r;
    }
    let api = format!("{}/webhook/policies/{}", api_project(&p), enc(&id));
    let a = ctx.call_with(Method::POST, &format!("{api}/test"), None, Some(form.get("_csrf"))).await;
    if !a.ok() {
        return ctx.after(&a, "", &back);
    }
    let name = ctx.call(Method::GET, &api, None).await.json["name"].as_str().unwrap_or("").to_string();
    render_webhooks(ctx, p, Some((name, a.items().to_vec()))).await
}

pub async fn webhook_create(ctx: Ctx, Path(p): Path<String>, form: Form) -> Response {
    let back = ui_project(&p, "webhooks");
    let body = webhook_body(&form, true);
    let path = format!("{}/webhook/policies", api_project(&p));
    ctx.submit(&form, Method::POST, &path, Some(body), ctx.t("saved"), &back, &back).await
}

/// A webhook's edit page: the create form, filled in (it edits the first target), the
/// list of all targets (edit any in place, remove one while there are others), a form
/// that adds a target, and "send test".
pub async fn webhook_edit(ctx: Ctx, Path((p, id)): Path<(String, String)>) -> Response {
    match project_page(&ctx, &p).await {
        Ok(proj) if proj.can("notification-policy", "update") => {}
        Ok(_) => return super::forbidden(&ctx),
        Err(r) => return r,
    }
    let a = ctx.call(Method::GET, &format!("{}/webhook/policies/{}", api_project(&p), enc(&id)), None).await;
    if !a.ok() {
        return refusal(&ctx, &a);
    }
    let events = supported(&ctx, &p).await;
    let base = format!("{}/{}", ui_project(&p, "webhooks"), enc(&id));
    let name = a.json["name"].as_str().unwrap_or("");
    let targets: Vec<Value> = a.json["targets"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
        .map(|(i, t)| {
            let mut t = t.clone();
            t["_index"] = json!(i);
            t
        })
        .collect();
    let many = targets.len() > 1;
    let formats = payload_formats(&events);
    let body = html! {
        (webhook_form(&ctx, &format!("{base}/edit"), "edit", &events, &a.json))
        h2 id="targets" { (ctx.t("webhooks.targets")) }
        (list_table(&ctx, &["col.id", "webhooks.address", "webhooks.notify_type", "webhooks.payload_format"], true, &targets, |t| {
            let i = t["_index"].as_u64().unwrap_or(0);
            let address = t["address"].as_str().unwrap_or("");
            html! { tr {
                th scope="row" { (i + 1) }
                td { code { (address) } }
                td { (t["type"].as_str().unwrap_or("")) }
                td { (format_name(&ctx, t["payload_format"].as_str().unwrap_or(""))) }
                td {
                    a href={ (base) "/targets/" (i) "/edit" } aria-label={ (ctx.t("edit")) " " (address) } { (ctx.t("edit")) }
                    @if many {
                        " "
                        (post_button(&ctx, &format!("{base}/targets/{i}/delete"), ctx.t("webhooks.target_remove"), &format!("{} {address}", ctx.t("webhooks.target_remove")), true))
                    }
                }
            } }
        }))
        h3 id="add-target" { (ctx.t("webhooks.target_add")) }
        form.narrow method="post" action={ (base) "/targets" } aria-labelledby="add-target" {
            (csrf(&ctx))
            p { label for="wt_type" { (ctx.t("webhooks.target_type")) }
                select id="wt_type" name="notify_type" {
                    @for t in strs(&events["notify_type"]) { option value=(t) { (t) } }
                }
            }
            p { label for="wt_address" { (ctx.t("webhooks.target_address")) } input id="wt_address" name="address" type="url" required placeholder="https://"; }
            p { label for="wt_auth" { (ctx.t("webhooks.target_auth")) } input id="wt_auth" name="auth_header" autocomplete="off"; }
            p { label.check { input type="checkbox" name="skip_cert_verify" value="true"; " " (ctx.t("webhooks.target_skip")) } }
            p { label for="wt_format" { (ctx.t("webhooks.target_format")) }
                select id="wt_format" name="payload_format" {
                    @for f in &formats { option value=(f) { (format_name(&ctx, f)) } }
                }
            }
            button type="submit" { (ctx.t("webhooks.target_add")) }
        }
        h2 id="send-test" { (ctx.t("webhooks.test")) }
        p { (ctx.t("webhooks.test_hint")) }
        (post_button(&ctx, &format!("{base}/test"), ctx.t("webhooks.test"), &format!("{} {name}", ctx.t("webhooks.test")), false))
    };
    super::project_edit_page(&ctx, &p, "webhooks", name, "webhooks.edit", body)
}

pub async fn webhook_update(ctx: Ctx, Path((p, id)): Path<(String, String)>, form: Form) -> Response {
    let path = format!("{}/webhook/policies/{}", api_project(&p), enc(&id));
    let back = format!("{}/{}/edit", ui_project(&p, "webhooks"), enc(&id));
    let mut body = webhook_body(&form, false);
    // The form edits the first target; any others are kept.
    let cur = ctx.call(Method::GET, &path, None).await;
    if let (Some(t), Some(rest)) = (body["targets"].as_array_mut(), cur.json["targets"].as_array()) {
        t.extend(rest.iter().skip(1).cloned());
    }
    ctx.submit(&form, Method::PUT, &path, Some(body), ctx.t("saved"), &ui_project(&p, "webhooks"), &back).await
}

/// Adds a target (the edit page's second form) to the policy as the API last answered it.
pub async fn webhook_target_add(ctx: Ctx, Path((p, id)): Path<(String, String)>, form: Form) -> Response {
    let path = format!("{}/webhook/policies/{}", api_project(&p), enc(&id));
    let back = format!("{}/{}/edit", ui_project(&p, "webhooks"), enc(&id));
    let cur = ctx.call(Method::GET, &path, None).await;
    if !cur.ok() {
        return ctx.after(&cur, "", &back);
    }
    let mut body = cur.json;
    let target = target_body(&form);
    match body["targets"].as_array_mut() {
        Some(t) => t.push(target),
        None => body["targets"] = json!([target]),
    }
    ctx.submit(&form, Method::PUT, &path, Some(body), ctx.t("saved"), &back, &back).await
}

/// `…/webhooks/{id}/targets/{i}/edit`: one target (any of them, the second and later ones
/// too) edited in place: notify type, endpoint, auth header, certificate check, payload
/// format, filled in from the policy as the API answers it.
pub async fn webhook_target_edit(ctx: Ctx, Path((p, id, i)): Path<(String, String, usize)>) -> Response {
    match project_page(&ctx, &p).await {
        Ok(proj) if proj.can("notification-policy", "update") => {}
        Ok(_) => return super::forbidden(&ctx),
        Err(r) => return r,
    }
    let a = ctx.call(Method::GET, &format!("{}/webhook/policies/{}", api_project(&p), enc(&id)), None).await;
    if !a.ok() {
        return refusal(&ctx, &a);
    }
    let Some(t) = a.json["targets"].as_array().and_then(|t| t.get(i)).cloned() else {
        return crate::layout::error_page(&ctx, axum::http::StatusCode::NOT_FOUND, ctx.t("webhooks.no_target"));
    };
    let events = supported(&ctx, &p).await;
    let name = a.json["name"].as_str().unwrap_or("");
    let base = format!("{}/{}", ui_project(&p, "webhooks"), enc(&id));
    let kind = t["type"].as_str().unwrap_or("http");
    let format = t["payload_format"].as_str().unwrap_or("Default");
    let mut formats = payload_formats(&events);
    if !formats.iter().any(|f| f == format) {
        formats.push(format.to_string());
    }
    let body = html! {
        p { a href={ (base) "/edit" } { "← " (ctx.t("webhooks.edit")) " " (name) } }
        form.narrow method="post" action={ (base) "/targets/" (i) "/edit" } aria-labelledby="edit" {
            (csrf(&ctx))
            p.hint { (ctx.t("webhooks.target_n")) " " (i + 1) }
            p { label for="et_type" { (ctx.t("webhooks.notify_type")) }
                select id="et_type" name="notify_type" {
                    @for n in strs(&events["notify_type"]) { option value=(n) selected[n == kind] { (n) } }
                }
            }
            p { label for="et_address" { (ctx.t("webhooks.address")) }
                input id="et_address" name="address" type="url" required value=(t["address"].as_str().unwrap_or("")); }
            p { label for="et_auth" { (ctx.t("webhooks.auth_header")) }
                input id="et_auth" name="auth_header" autocomplete="off" value=(t["auth_header"].as_str().unwrap_or("")); }
            p { label.check {
                input type="checkbox" name="skip_cert_verify" value="true" checked[t["skip_cert_verify"] == true];
                " " (ctx.t("webhooks.skip_verify"))
            } }
            p { label for="et_format" { (ctx.t("webhooks.payload_format")) }
                select id="et_format" name="payload_format" {
                    @for f in &formats { option value=(f) selected[f == format] { (format_name(&ctx, f)) } }
                }
            }
            button.primary type="submit" { (ctx.t("save")) }
        }
    };
    super::project_edit_page(&ctx, &p, "webhooks", name, "webhooks.target_edit", body)
}

/// Replaces target `i` with the target edit form's fields; the other targets and the
/// policy's fields stay as the API last answered them.
pub async fn webhook_target_update(ctx: Ctx, Path((p, id, i)): Path<(String, String, usize)>, form: Form) -> Response {
    let path = format!("{}/webhook/policies/{}", api_project(&p), enc(&id));
    let edit = format!("{}/{}/edit", ui_project(&p, "webhooks"), enc(&id));
    let back = format!("{}/{}/targets/{i}/edit", ui_project(&p, "webhooks"), enc(&id));
    if let Err(r) = ctx.check_form(&form, &back) {
        return r;
    }
    let cur = ctx.call(Method::GET, &path, None).await;
    if !cur.ok() {
        return ctx.after(&cur, "", &edit);
    }
    let mut body = cur.json;
    match body["targets"].as_array_mut().and_then(|t| t.get_mut(i)) {
        Some(t) => *t = target_body(&form),
        None => {
            ctx.set_flash(false, ctx.t("webhooks.no_target"));
            return ctx.redirect(&edit);
        }
    }
    ctx.submit(&form, Method::PUT, &path, Some(body), ctx.t("saved"), &edit, &back).await
}

/// Removes target `i` (the API refuses a policy without targets).
pub async fn webhook_target_remove(ctx: Ctx, Path((p, id, i)): Path<(String, String, usize)>, form: Form) -> Response {
    let path = format!("{}/webhook/policies/{}", api_project(&p), enc(&id));
    let back = format!("{}/{}/edit", ui_project(&p, "webhooks"), enc(&id));
    let cur = ctx.call(Method::GET, &path, None).await;
    if !cur.ok() {
        return ctx.after(&cur, "", &back);
    }
    let mut body = cur.json;
    match body["targets"].as_array_mut().filter(|t| i < t.len()) {
        Some(t) => {
            t.remove(i);
        }
        None => {
            ctx.set_flash(false, ctx.t("webhooks.no_target"));
            return ctx.redirect(&back);
        }
    }
    ctx.submit(&form, Method::PUT, &path, Some(body), ctx.t("saved"), &back, &back).await
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
    let (can_create, can_update, can_delete) =
        (proj.can("immutable-tag", "create"), proj.can("immutable-tag", "update"), proj.can("immutable-tag", "delete"));
    let base = ui_project(&p, "immutability");
    page(
        &ctx,
        &p,
        Nav::Projects,
        html! {
            (project_tabs(&ctx, &p, "immutability"))
            h2 { (ctx.t("tab.immutability")) }
            (list_table(&ctx, &["col.id", "col.repo_pattern", "col.tag_pattern", "col.enabled"], can_update || can_delete, a.items(), |r| {
                let id = r["id"].as_i64().unwrap_or(0);
                let on = r["disabled"].as_bool() != Some(true);
                let words = if on { ctx.t("disable") } else { ctx.t("enable") };
                html! { tr {
                    th scope="row" { (id) }
                    td { code { (patterns(&r["scope_selectors"]["repository"])) } }
                    td { code { (patterns(&r["tag_selectors"])) } }
                    td { (enabled(&ctx, on)) }
                    @if can_update || can_delete { td {
                        @if can_update {
                            a href={ (base) "/" (id) "/edit" } aria-label={ (ctx.t("edit")) " #" (id) } { (ctx.t("edit")) } " "
                            (post_button(&ctx, &format!("{base}/{id}/toggle"), words, &format!("{words} #{id}"), false)) " "
                        }
                        @if can_delete {
                            (post_button(&ctx, &format!("{base}/{id}/delete"), ctx.t("delete"), &format!("{} #{id}", ctx.t("delete")), true))
                        }
                    } }
                } }
            }))
            @if can_create {
                h2 id="new-rule" { (ctx.t("immutability.new")) }
                (rule_form(&ctx, &base, "new-rule", &Value::Null))
            }
        },
    )
}

/// A rule's selectors as text: `repoMatches **`, `excludes v*`.
fn patterns(sels: &Value) -> String {
    sels.as_array()
        .into_iter()
        .flatten()
        .map(|s| format!("{} {}", s["decoration"].as_str().unwrap_or(""), s["pattern"].as_str().unwrap_or("")))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The rule form, empty (`rule` null) to create one or filled from `rule` to edit it:
/// Harbor's shape, one repository selector (`repoMatches` or `repoExcludes` a pattern)
/// and one tag selector (`matches` or `excludes`), and whether the rule is enabled.
fn rule_form(ctx: &Ctx, action: &str, labelled_by: &str, rule: &Value) -> Markup {
    let new = rule.is_null();
    let repo = &rule["scope_selectors"]["repository"][0];
    let tag = &rule["tag_selectors"][0];
    let repo_dec = repo["decoration"].as_str().unwrap_or("repoMatches");
    let tag_dec = tag["decoration"].as_str().unwrap_or("matches");
    html! {
        form.narrow method="post" action=(action) aria-labelledby=(labelled_by) {
            (csrf(ctx))
            p { label for="repo_pattern" { (ctx.t("immutability.repos")) }
                span.inline {
                    select id="im_repo_dec" name="repo_decoration" aria-label=(ctx.t("retention.repo_dec")) {
                        option value="repoMatches" selected[repo_dec == "repoMatches"] { (ctx.t("retention.matching")) }
                        option value="repoExcludes" selected[repo_dec == "repoExcludes"] { (ctx.t("retention.excluding")) }
                    }
                    input id="repo_pattern" name="repos" value=(repo["pattern"].as_str().unwrap_or("**")) required;
                }
            }
            p { label for="tag_pattern" { (ctx.t("immutability.tags")) }
                span.inline {
                    select id="im_tag_dec" name="tag_decoration" aria-label=(ctx.t("retention.tag_dec")) {
                        option value="matches" selected[tag_dec == "matches"] { (ctx.t("retention.matching")) }
                        option value="excludes" selected[tag_dec == "excludes"] { (ctx.t("retention.excluding")) }
                    }
                    input id="tag_pattern" name="tags" value=(tag["pattern"].as_str().unwrap_or("")) required;
                }
            }
            // A new rule starts enabled; the list's toggle and this field change that.
            @if !new { p { label.check { input type="checkbox" name="enabled" value="true" checked[rule["disabled"] != true]; " " (ctx.t("enabled")) } } }
            button.primary type="submit" { @if new { (ctx.t("create")) } @else { (ctx.t("save")) } }
        }
    }
}

/// The form's selectors put into `rule` (Harbor's `ImmutableRule`; a new one is `{}`).
fn rule_body(form: &Form, mut rule: Value, disabled: bool) -> Value {
    let or = |v: &str, default: &str| if v.is_empty() { default.to_string() } else { v.to_string() };
    rule["disabled"] = json!(disabled);
    rule["tag_selectors"] = json!([{
        "kind": "doublestar", "decoration": or(form.get("tag_decoration"), "matches"), "pattern": form.get("tags").trim(),
    }]);
    rule["scope_selectors"] = json!({ "repository": [{
        "kind": "doublestar", "decoration": or(form.get("repo_decoration"), "repoMatches"), "pattern": form.get("repos").trim(),
    }] });
    rule
}

pub async fn immutable_create(ctx: Ctx, Path(p): Path<String>, form: Form) -> Response {
    let back = ui_project(&p, "immutability");
    let body = rule_body(&form, json!({}), false);
    let path = format!("{}/immutabletagrules", api_project(&p));
    ctx.submit(&form, Method::POST, &path, Some(body), ctx.t("saved"), &back, &back).await
}

/// Rule `id` of the project as the API lists it (the API has no read of one rule), or
/// the page to show instead.
async fn immutable_rule(ctx: &Ctx, p: &str, id: &str) -> Result<Value, Response> {
    let a = ctx.call(Method::GET, &format!("{}/immutabletagrules", api_project(p)), None).await;
    if !a.ok() {
        return Err(refusal(ctx, &a));
    }
    a.items()
        .iter()
        .find(|r| r["id"].as_i64().is_some_and(|n| n.to_string() == id))
        .cloned()
        .ok_or_else(|| crate::layout::error_page(ctx, axum::http::StatusCode::NOT_FOUND, ctx.t("immutability.no_rule")))
}

/// A rule's edit page: the create form, filled in.
pub async fn immutable_edit(ctx: Ctx, Path((p, id)): Path<(String, String)>) -> Response {
    match project_page(&ctx, &p).await {
        Ok(proj) if proj.can("immutable-tag", "update") => {}
        Ok(_) => return super::forbidden(&ctx),
        Err(r) => return r,
    }
    let rule = match immutable_rule(&ctx, &p, &id).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let action = format!("{}/{}/edit", ui_project(&p, "immutability"), enc(&id));
    let form = rule_form(&ctx, &action, "edit", &rule);
    super::project_edit_page(&ctx, &p, "immutability", &format!("#{id}"), "immutability.edit", form)
}

pub async fn immutable_update(ctx: Ctx, Path((p, id)): Path<(String, String)>, form: Form) -> Response {
    let list = ui_project(&p, "immutability");
    let back = format!("{list}/{}/edit", enc(&id));
    let rule = match immutable_rule(&ctx, &p, &id).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let body = rule_body(&form, rule, form.get("enabled") != "true");
    let path = format!("{}/immutabletagrules/{}", api_project(&p), enc(&id));
    ctx.submit(&form, Method::PUT, &path, Some(body), ctx.t("saved"), &list, &back).await
}

/// Enables a disabled rule, or disables an enabled one.
pub async fn immutable_toggle(ctx: Ctx, Path((p, id)): Path<(String, String)>, form: Form) -> Response {
    let back = ui_project(&p, "immutability");
    let mut rule = match immutable_rule(&ctx, &p, &id).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let off = rule["disabled"].as_bool() == Some(true);
    rule["disabled"] = json!(!off);
    let path = format!("{}/immutabletagrules/{}", api_project(&p), enc(&id));
    ctx.submit(&form, Method::PUT, &path, Some(rule), ctx.t("saved"), &back, &back).await
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
            (list_table(&ctx, &["col.id", "col.events", "col.status", "replications.started", "replications.ended"], false, a.items(), |e| {
                let eid = e["id"].as_i64().unwrap_or(0);
                html! { tr {
                    th scope="row" { a href={ (base) "/" (eid) } aria-label={ (ctx.t("replications.execution")) " " (eid) } { (eid) } }
                    td { code { (e["extra_attrs"]["event_type"].as_str().unwrap_or(e["trigger"].as_str().unwrap_or(""))) } }
                    td { (status(&ctx, e["status"].as_str().unwrap_or(""))) }
                    td { (when(&ctx, &e["start_time"])) }
                    td { (when(&ctx, &e["end_time"])) }
                } }
            }))
            @if !a.items().is_empty() { (pager(&ctx, &base, &[], pg, 20, a.total().unwrap_or(0))) }
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
