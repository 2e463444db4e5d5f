//! System administration: users, the audit log (and a project's), configuration,
//! garbage collection, jobs. The API decides who may see and change each (system
//! administrators); the navigation only offers them to administrators.

use axum::extract::Path;
use axum::http::{Method, Uri};
use axum::response::Response;
use maud::{Markup, html};
use serde_json::{Map, Value, json};

use super::bulk::{bulk_confirm, bulk_run, ticked};
use super::{api_project, project, refusal};
use crate::layout::{
    Nav, cleanup_tabs, confirm, csrf, head, list_table, log_page, page, page_status, pager, post_button, project_tabs,
    status, when,
};
use crate::{Ctx, Form, enc, query};

const PAGE_SIZE: u64 = 20;

pub async fn users(ctx: Ctx, uri: Uri) -> Response {
    let me = match ctx.require_user() {
        Ok(u) => u.id,
        Err(r) => return r,
    };
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
            // The checkboxes belong to the bulk-delete form after the table (`form=`):
            // the rows hold forms of their own. Your own row has none.
            (list_table(&ctx, &["select", "username", "col.admin", "col.email", "col.created"], true, a.items(), |u| {
                let id = u["user_id"].as_i64().unwrap_or(0);
                let uname = u["username"].as_str().unwrap_or("");
                let admin = u["sysadmin_flag"].as_bool() == Some(true);
                let base = format!("/admin/users/{id}");
                let (words, flag) = if admin { (ctx.t("users.unset_admin"), "false") } else { (ctx.t("users.set_admin"), "true") };
                html! { tr {
                    td { @if id != me {
                        input type="checkbox" form="users-bulk" name="user" value=(id) aria-label={ (ctx.t("select")) " " (uname) };
                    } }
                    th scope="row" { (uname) }
                    td { @if admin { "✔ " (ctx.t("yes")) } @else { (ctx.t("no")) } }
                    td { (u["email"].as_str().unwrap_or("")) }
                    td { (when(&ctx, &u["creation_time"])) }
                    td {
                        // Your own flag and account are left alone here (your password is
                        // changed on /account).
                        @if id != me {
                            (post_button(&ctx, &format!("{base}/sysadmin/{flag}"), words, &format!("{words}: {uname}"), false))
                            " "
                            a href={ (base) "/password" } aria-label={ (ctx.t("users.reset_password")) ": " (uname) } { (ctx.t("users.reset_password")) }
                            " "
                            a.danger href={ (base) "/delete" } aria-label={ (ctx.t("delete")) ": " (uname) } { (ctx.t("delete")) }
                        }
                    }
                } }
            }))
            @if !a.items().is_empty() {
                form id="users-bulk" method="post" action="/admin/users/-/delete" {
                    (csrf(&ctx))
                    button.danger type="submit" { (ctx.t("users.delete_selected")) }
                }
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

/// Grants (`flag` true) or revokes system administrator (`PUT /users/{id}/sysadmin`).
pub async fn user_sysadmin(ctx: Ctx, Path((id, flag)): Path<(String, String)>, form: Form) -> Response {
    let path = format!("/api/v2.0/users/{}/sysadmin", enc(&id));
    let body = json!({ "sysadmin_flag": flag == "true" });
    let back = "/admin/users";
    ctx.submit(&form, Method::PUT, &path, Some(body), ctx.t("saved"), back, back).await
}

/// The user as the API shows them to this caller (administrators), or the page to show.
async fn user_of(ctx: &Ctx, id: &str) -> Result<Value, Response> {
    ctx.require_user()?;
    let a = ctx.call(Method::GET, &format!("/api/v2.0/users/{}", enc(id)), None).await;
    if a.ok() { Ok(a.json) } else { Err(refusal(ctx, &a)) }
}

/// An administrator sets another user's password (no old password: the API's rule).
pub async fn user_password_form(ctx: Ctx, Path(id): Path<String>) -> Response {
    let u = match user_of(&ctx, &id).await {
        Ok(u) => u,
        Err(r) => return r,
    };
    let name = u["username"].as_str().unwrap_or("");
    page(
        &ctx,
        &format!("{} · {name}", ctx.t("users.reset_password")),
        Nav::Users,
        html! {
            p { a href="/admin/users" { "← " (ctx.t("users.title")) } }
            form.narrow method="post" action={ "/admin/users/" (enc(&id)) "/password" } {
                (csrf(&ctx))
                p { label for="new_password" { (ctx.t("account.new")) } input id="new_password" name="new_password" type="password" autocomplete="new-password" required; }
                p { label for="confirm_password" { (ctx.t("account.confirm")) } input id="confirm_password" name="confirm_password" type="password" autocomplete="new-password" required; }
                button.primary type="submit" { (ctx.t("save")) }
            }
        },
    )
}

pub async fn user_password(ctx: Ctx, Path(id): Path<String>, form: Form) -> Response {
    let back = format!("/admin/users/{}/password", enc(&id));
    if let Err(r) = ctx.check_form(&form, &back) {
        return r;
    }
    if form.get("new_password") != form.get("confirm_password") {
        ctx.set_flash(false, ctx.t("account.mismatch"));
        return ctx.redirect(&back);
    }
    let path = format!("/api/v2.0/users/{}/password", enc(&id));
    let body = json!({ "new_password": form.get("new_password") });
    ctx.submit(&form, Method::PUT, &path, Some(body), ctx.t("users.password_set"), "/admin/users", &back).await
}

pub async fn user_confirm_delete(ctx: Ctx, Path(id): Path<String>) -> Response {
    let u = match user_of(&ctx, &id).await {
        Ok(u) => u,
        Err(r) => return r,
    };
    let what = format!("{} {}", ctx.t("col.user"), u["username"].as_str().unwrap_or(""));
    confirm(&ctx, &what, &format!("/admin/users/{}/delete", enc(&id)), "/admin/users")
}

pub async fn user_delete(ctx: Ctx, Path(id): Path<String>, form: Form) -> Response {
    let path = format!("/api/v2.0/users/{}", enc(&id));
    let back = "/admin/users";
    ctx.submit(&form, Method::DELETE, &path, None, ctx.t("deleted"), back, back).await
}

/// `POST /admin/users/-/delete`: the users ticked on `/admin/users`, through one confirm
/// page naming each, then one `DELETE /users/{id}` each; those the API refuses (the first
/// administrator, say) are reported by name with its reason. Your own account is never
/// deleted here: ticking it (only a forged form can) is refused with a message saying so.
pub async fn users_delete(ctx: Ctx, form: Form) -> Response {
    let me = match ctx.require_user() {
        Ok(u) => u.id,
        Err(r) => return r,
    };
    let back = "/admin/users";
    if let Err(r) = ctx.check_form(&form, back) {
        return r;
    }
    let ids = match ticked(&ctx, &form, "user", "users.none_selected", back) {
        Ok(ids) => ids,
        Err(r) => return r,
    };
    if ids.iter().any(|id| id.parse::<i64>().ok() == Some(me)) {
        ctx.set_flash(false, ctx.t("users.not_yourself"));
        return ctx.redirect(back);
    }
    // Each by name, as the API shows it (an id it does not know is refused by name too).
    let mut rows = Vec::new();
    for id in ids {
        let u = ctx.call(Method::GET, &format!("/api/v2.0/users/{}", enc(id)), None).await;
        if u.status == axum::http::StatusCode::FORBIDDEN || u.status == axum::http::StatusCode::UNAUTHORIZED {
            return ctx.after(&u, "", back);
        }
        let name = u.json["username"].as_str().map_or_else(|| format!("#{id}"), str::to_string);
        rows.push((id.to_string(), name));
    }
    if form.get("confirmed") != "1" {
        return bulk_confirm(&ctx, "/admin/users/-/delete", "user", &rows, "users.confirm_bulk", back);
    }
    let calls = rows.into_iter().map(|(id, name)| (format!("/api/v2.0/users/{}", enc(&id)), name, None)).collect();
    bulk_run(&ctx, &form, Method::DELETE, calls, "users.deleted", "artifacts.not_deleted", back).await
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
                        // Harbor's identifier, like the event type codes (whose words
                        // the catalogue has for labels, not for this column).
                        td { code { (e["resource_type"].as_str().unwrap_or("")) } }
                        td { code { (e["resource"].as_str().unwrap_or("")) } }
                    }
                } }
            }
        }
    }
}

/// The audit log's filters, from the page's query string.
struct AuditFilters {
    user: String,
    op: String,
    resource: String,
    from: String,
    to: String,
}

impl AuditFilters {
    fn of(uri: &Uri) -> AuditFilters {
        let q = query(uri);
        let f = |k: &str| q.get(k).trim().to_string();
        AuditFilters { user: f("user"), op: f("op"), resource: f("resource"), from: f("from"), to: f("to") }
    }

    /// `&q=` for the audit API, as Harbor's portal writes it: `username=~u`,
    /// `operation=op`, `resource=~r`, `op_time=[from 00:00:00~to 23:59:59]` (days in UTC).
    fn q(&self) -> String {
        let mut terms = Vec::new();
        if !self.user.is_empty() {
            terms.push(format!("username=~{}", self.user));
        }
        if !self.op.is_empty() {
            terms.push(format!("operation={}", self.op));
        }
        if !self.resource.is_empty() {
            terms.push(format!("resource=~{}", self.resource));
        }
        if !self.from.is_empty() || !self.to.is_empty() {
            let day = |d: &str, t: &str| if d.len() == 10 { format!("{d} {t}") } else { d.to_string() };
            terms.push(format!("op_time=[{}~{}]", day(&self.from, "00:00:00"), day(&self.to, "23:59:59")));
        }
        if terms.is_empty() { String::new() } else { format!("&q={}", enc(&terms.join(","))) }
    }

    fn params(&self) -> [(&str, &str); 5] {
        [("user", &self.user), ("op", &self.op), ("resource", &self.resource), ("from", &self.from), ("to", &self.to)]
    }

    fn form(&self, ctx: &Ctx) -> Markup {
        html! {
            form.filters method="get" role="search" {
                label for="user" { (ctx.t("audit.filter_user")) }
                input id="user" name="user" type="search" value=(self.user);
                label for="op" { (ctx.t("audit.filter_op")) }
                select id="op" name="op" {
                    option value="" { "—" }
                    @for o in ["create", "delete", "pull", "push", "update"] { option value=(o) selected[o == self.op] { (o) } }
                }
                label for="resource" { (ctx.t("audit.filter_resource")) }
                input id="resource" name="resource" type="search" value=(self.resource);
                label for="from" { (ctx.t("audit.from")) }
                input id="from" name="from" type="date" value=(self.from);
                label for="to" { (ctx.t("audit.to")) }
                input id="to" name="to" type="date" value=(self.to);
                button type="submit" { (ctx.t("filter")) }
            }
        }
    }
}

/// The log's page: the table, or the API's refusal of the filters next to them (a bad
/// date, say), so the filters can be corrected.
fn audit_body(ctx: &Ctx, f: &AuditFilters, a: &crate::Answer, base: &str, pg: u64) -> Markup {
    html! {
        (f.form(ctx))
        @if a.ok() {
            (audit_table(ctx, a.items()))
            (pager(ctx, base, &f.params(), pg, PAGE_SIZE, a.total().unwrap_or(0)))
        } @else {
            p.flash.err role="alert" { "✖ " (ctx.t("error")) ": " (a.error()) }
        }
    }
}

pub async fn audit(ctx: Ctx, uri: Uri) -> Response {
    if let Err(r) = ctx.require_user() {
        return r;
    }
    let f = AuditFilters::of(&uri);
    let pg: u64 = query(&uri).get("page").parse().unwrap_or(1).max(1);
    let path = format!("/api/v2.0/audit-logs?page={pg}&page_size={PAGE_SIZE}{}", f.q());
    let a = ctx.call(Method::GET, &path, None).await;
    if !a.ok() && a.status != axum::http::StatusCode::BAD_REQUEST {
        return refusal(&ctx, &a);
    }
    let status = if a.ok() { axum::http::StatusCode::OK } else { a.status };
    page_status(&ctx, status, ctx.t("audit.title"), Nav::Audit, audit_body(&ctx, &f, &a, "/admin/audit", pg))
}

pub async fn project_audit(ctx: Ctx, Path(p): Path<String>, uri: Uri) -> Response {
    if let Err(r) = ctx.require_user() {
        return r;
    }
    if let Err(r) = project(&ctx, &p).await {
        return r;
    }
    let f = AuditFilters::of(&uri);
    let pg: u64 = query(&uri).get("page").parse().unwrap_or(1).max(1);
    let path = format!("{}/logs?page={pg}&page_size={PAGE_SIZE}{}", api_project(&p), f.q());
    let a = ctx.call(Method::GET, &path, None).await;
    if !a.ok() && a.status != axum::http::StatusCode::BAD_REQUEST {
        return refusal(&ctx, &a);
    }
    let status = if a.ok() { axum::http::StatusCode::OK } else { a.status };
    let base = format!("/projects/{}/audit", enc(&p));
    page_status(
        &ctx,
        status,
        &p,
        Nav::Projects,
        html! {
            (project_tabs(&ctx, &p, "audit"))
            h2 { (ctx.t("tab.audit")) }
            (audit_body(&ctx, &f, &a, &base, pg))
        },
    )
}

const GIB: f64 = 1024.0 * 1024.0 * 1024.0;

/// The settings `/admin/config` edits, by section (Harbor's Authentication and System
/// Settings pages): each form sends its own section's keys only. Checkboxes of the
/// section are sent as false when unticked; other keys only when the form has them.
const AUTH_BOOLS: &[&str] = &["self_registration"];
const SYSTEM_BOOLS: &[&str] = &["read_only", "notification_enable", "skip_audit_log_database"];
const SYSTEM_TEXTS: &[&str] = &[
    "project_creation_restriction",
    "robot_token_duration",
    "robot_name_prefix",
    "storage_per_project",
    "session_timeout",
    "audit_log_forward_endpoint",
];

/// The label of a setting (or of a banner field), for messages that name it.
fn config_label(key: &str) -> Option<&'static str> {
    Some(match key {
        "auth_mode" => "config.auth_mode",
        "self_registration" => "config.self_registration",
        "project_creation_restriction" => "config.creation",
        "read_only" => "config.read_only",
        "robot_token_duration" => "config.robot_duration",
        "robot_name_prefix" => "config.robot_prefix",
        "storage_per_project" => "config.storage_per_project",
        "notification_enable" => "config.notification_enable",
        "audit_log_forward_endpoint" => "config.audit_endpoint",
        "skip_audit_log_database" => "config.skip_audit_db",
        "audit_log_disable" => "config.audit_disable",
        "session_timeout" => "config.session_timeout",
        "banner_message" | "banner_text" => "config.banner_text",
        "banner_from" => "config.banner_from",
        "banner_to" => "config.banner_to",
        _ => return None,
    })
}

/// A refusal that names a field (`key: reason`, the API's form) as (key, message with the
/// field's label first).
fn field_error(ctx: &Ctx, msg: &str) -> (Option<String>, String) {
    let key = msg.split_once(':').map(|(k, _)| k.trim()).filter(|k| config_label(k).is_some());
    match key {
        Some(k) => (Some(k.to_string()), format!("{}: {msg}", ctx.t(config_label(k).unwrap_or("error")))),
        None => (None, msg.to_string()),
    }
}

/// The banner fields of the form: from the stored document, or as the form sent them.
struct BannerFields {
    text: String,
    kind: String,
    closable: bool,
    from: String,
    to: String,
}

impl BannerFields {
    fn stored(raw: &str) -> BannerFields {
        match crate::layout::Banner::parse(raw) {
            Some(b) => {
                BannerFields { text: b.message, kind: b.kind, closable: b.closable, from: b.from_day, to: b.to_day }
            }
            None => BannerFields {
                text: String::new(),
                kind: "info".into(),
                closable: false,
                from: String::new(),
                to: String::new(),
            },
        }
    }

    fn sent(form: &Form) -> BannerFields {
        BannerFields {
            text: form.get("banner_text").trim().to_string(),
            kind: form.get("banner_type").to_string(),
            closable: form.get("banner_closable") == "true",
            from: form.get("banner_from").trim().to_string(),
            to: form.get("banner_to").trim().to_string(),
        }
    }

    /// Harbor's `banner_message` document (empty when there is no message), or the field
    /// whose date is not a day.
    fn value(&self) -> Result<String, (&'static str, String)> {
        if self.text.is_empty() {
            return Ok(String::new());
        }
        let day = |field: &'static str, d: &str, t: &str| -> Result<Option<String>, (&'static str, String)> {
            if d.is_empty() {
                return Ok(None);
            }
            let ok = d.len() == 10
                && d.bytes().enumerate().all(|(i, c)| if i == 4 || i == 7 { c == b'-' } else { c.is_ascii_digit() })
                && crate::layout::Banner::parse(&json!({"message": "x", "fromDate": d}).to_string())
                    .is_some_and(|b| b.from.is_some());
            if ok { Ok(Some(format!("{d}T{t}Z"))) } else { Err((field, format!("{d:?} is not a day (YYYY-MM-DD)"))) }
        };
        let from = day("banner_from", &self.from, "00:00:00.000")?;
        let to = day("banner_to", &self.to, "23:59:59.000")?;
        if let (Some(f), Some(t)) = (&from, &to)
            && f > t
        {
            return Err(("banner_to", format!("{} is before {}", self.to, self.from)));
        }
        let mut doc = json!({
            "message": self.text,
            "type": if crate::layout::BANNER_KINDS.contains(&self.kind.as_str()) { self.kind.as_str() } else { "warning" },
            "closable": self.closable,
        });
        if let Some(f) = from {
            doc["fromDate"] = json!(f);
        }
        if let Some(t) = to {
            doc["toDate"] = json!(t);
        }
        Ok(doc.to_string())
    }
}

pub async fn config(ctx: Ctx) -> Response {
    if let Err(r) = ctx.require_user() {
        return r;
    }
    let a = ctx.call(Method::GET, "/api/v2.0/configurations", None).await;
    if !a.ok() {
        return refusal(&ctx, &a);
    }
    let vals: Map<String, Value> =
        a.json.as_object().into_iter().flatten().map(|(k, v)| (k.clone(), v["value"].clone())).collect();
    let banner = BannerFields::stored(vals.get("banner_message").and_then(Value::as_str).unwrap_or(""));
    let events = event_types(&ctx).await;
    config_page(&ctx, axum::http::StatusCode::OK, &vals, &banner, &events, None)
}

/// The audit event types (the API's list), for the pages that offer them as checkboxes.
async fn event_types(ctx: &Ctx) -> Vec<String> {
    let a = ctx.call(Method::GET, "/api/v2.0/auditlog-exts/events", None).await;
    a.items().iter().filter_map(|e| e["event_type"].as_str().map(str::to_owned)).collect()
}

/// One checkbox per audit event type, named `name` with the type's code as its value,
/// labelled in the page's language with the code beneath: the same on every page. The
/// code is the checkbox's description (`title`) rather than part of its name, so a screen
/// reader says "Create artifact", not the label and then the code spelt out.
fn event_type_checks(ctx: &Ctx, name: &str, codes: &[String], ticked: impl Fn(&str) -> bool) -> Markup {
    html! {
        @for e in codes {
            label.check {
                input type="checkbox" name=(name) title=(e) value=(e) checked[ticked(e)];
                " " (crate::i18n::event_type_label(ctx.lang, e)) " " code aria-hidden="true" { (e) }
            }
        }
    }
}

/// The configuration page from `vals` (each setting's value), with `error` (the field it
/// names, if any, and the message) shown at the top and next to its field.
fn config_page(
    ctx: &Ctx,
    status: axum::http::StatusCode,
    vals: &Map<String, Value>,
    banner: &BannerFields,
    events: &[String],
    error: Option<(Option<String>, String)>,
) -> Response {
    let v = |k: &str| vals.get(k).cloned().unwrap_or(Value::Null);
    let text = |k: &str, default: &str| match v(k) {
        Value::String(s) => s,
        Value::Null => default.to_string(),
        other => other.to_string(),
    };
    let on = |k: &str| matches!(v(k), Value::Bool(true)) || v(k).as_str() == Some("true");
    let bad = error.as_ref().and_then(|(k, _)| k.clone()).unwrap_or_default();
    let invalid = |k: &str| (bad == k).then_some("true");
    let described = |k: &str| (bad == k).then(|| format!("err-{k}"));
    let note = |k: &str| {
        html! { @if bad == k { @if let Some((_, m)) = &error { " " span.field-error id={ "err-" (k) } { "✖ " (m) } } } }
    };
    let restriction = text("project_creation_restriction", "everyone");
    let storage = match v("storage_per_project") {
        Value::Number(n) if n.as_i64() == Some(-1) => "-1".to_string(),
        Value::Number(n) => format!("{}", n.as_f64().unwrap_or(0.0) / GIB),
        Value::String(s) => s,
        _ => "-1".to_string(),
    };
    let auth_mode = text("auth_mode", "db_auth");
    let disabled = text("audit_log_disable", "");
    let disabled: Vec<&str> = disabled.split(',').map(str::trim).collect();
    let disable_described = match described("audit_log_disable") {
        Some(err) => format!("audit-disable-hint {err}"),
        None => "audit-disable-hint".to_string(),
    };
    page_status(
        ctx,
        status,
        ctx.t("config.title"),
        Nav::Config,
        html! {
            @if let Some((_, m)) = &error { p.flash.err role="alert" { "✖ " (ctx.t("error")) ": " (m) } }
            h2 id="cfg-auth" { (ctx.t("config.auth")) }
            form.narrow method="post" action="/admin/config" aria-labelledby="cfg-auth" {
                (csrf(ctx))
                input type="hidden" name="section" value="auth";
                dl {
                    dt { (ctx.t("config.auth_mode")) }
                    dd { (ctx.t("config.db_auth")) " (" code { (auth_mode) } ")" }
                }
                p.hint { (ctx.t("config.auth_hint")) }
                p { label.check {
                    input type="checkbox" name="self_registration" value="true" checked[on("self_registration")];
                    " " (ctx.t("config.self_registration"))
                } }
                button.primary type="submit" { (ctx.t("save")) }
            }
            h2 id="cfg-system" { (ctx.t("config.system")) }
            form.narrow method="post" action="/admin/config" aria-labelledby="cfg-system" {
                (csrf(ctx))
                input type="hidden" name="section" value="system";
                p {
                    label for="pcr" { (ctx.t("config.creation")) }
                    select id="pcr" name="project_creation_restriction" {
                        option value="everyone" selected[restriction == "everyone"] { (ctx.t("config.everyone")) }
                        option value="adminonly" selected[restriction == "adminonly"] { (ctx.t("config.adminonly")) }
                    }
                }
                p {
                    label for="rtd" { (ctx.t("config.robot_duration")) }
                    input id="rtd" name="robot_token_duration" type="number" min="1" value=(text("robot_token_duration", "30"))
                        aria-invalid=[invalid("robot_token_duration")] aria-describedby=[described("robot_token_duration")];
                    (note("robot_token_duration"))
                }
                p {
                    label for="rp" { (ctx.t("config.robot_prefix")) }
                    input id="rp" name="robot_name_prefix" value=(text("robot_name_prefix", "robot$"))
                        aria-invalid=[invalid("robot_name_prefix")] aria-describedby=[described("robot_name_prefix")];
                    (note("robot_name_prefix"))
                }
                p {
                    label for="spp" { (ctx.t("config.storage_per_project")) }
                    input id="spp" name="storage_per_project" type="number" step="any" min="-1" value=(storage)
                        aria-invalid=[invalid("storage_per_project")] aria-describedby=[described("storage_per_project")];
                    " GiB"
                    (note("storage_per_project"))
                }
                p {
                    label for="st" { (ctx.t("config.session_timeout")) }
                    input id="st" name="session_timeout" type="number" min="1" max="720" value=(text("session_timeout", "60"))
                        aria-invalid=[invalid("session_timeout")] aria-describedby=[described("session_timeout")];
                    (note("session_timeout"))
                }
                p { label.check {
                    input type="checkbox" name="read_only" value="true" checked[on("read_only")];
                    " " (ctx.t("config.read_only"))
                } }
                p { label.check {
                    input type="checkbox" name="notification_enable" value="true" checked[on("notification_enable")];
                    " " (ctx.t("config.notification_enable"))
                } }
                p {
                    label for="ale" { (ctx.t("config.audit_endpoint")) }
                    input id="ale" name="audit_log_forward_endpoint" value=(text("audit_log_forward_endpoint", "")) placeholder="syslog.example.com:514"
                        aria-invalid=[invalid("audit_log_forward_endpoint")] aria-describedby=[described("audit_log_forward_endpoint")];
                    (note("audit_log_forward_endpoint"))
                }
                p {
                    label.check {
                        input type="checkbox" name="skip_audit_log_database" value="true" checked[on("skip_audit_log_database")]
                            aria-invalid=[invalid("skip_audit_log_database")] aria-describedby=[described("skip_audit_log_database")];
                        " " (ctx.t("config.skip_audit_db"))
                    }
                    (note("skip_audit_log_database"))
                }
                fieldset.event-types aria-describedby=(disable_described) {
                    legend { (ctx.t("config.audit_disable")) }
                    p.hint id="audit-disable-hint" { (ctx.t("config.audit_disable_hint")) }
                    (note("audit_log_disable"))
                    (event_type_checks(ctx, "audit_log_disable", events, |e| disabled.contains(&e)))
                }
                fieldset {
                    legend { (ctx.t("config.banner")) }
                    p {
                        label for="banner_text" { (ctx.t("config.banner_text")) }
                        input id="banner_text" name="banner_text" value=(banner.text) size="60"
                            aria-invalid=[invalid("banner_message")] aria-describedby=[described("banner_message")];
                        (note("banner_message"))
                    }
                    p {
                        label for="banner_type" { (ctx.t("config.banner_type")) }
                        select id="banner_type" name="banner_type" {
                            @for k in crate::layout::BANNER_KINDS {
                                option value=(k) selected[k == banner.kind] { (ctx.t(&format!("banner.{k}"))) }
                            }
                        }
                    }
                    p { label.check {
                        input type="checkbox" name="banner_closable" value="true" checked[banner.closable];
                        " " (ctx.t("config.banner_closable"))
                    } }
                    p {
                        label for="banner_from" { (ctx.t("config.banner_from")) }
                        input id="banner_from" name="banner_from" type="date" value=(banner.from)
                            aria-invalid=[invalid("banner_from")] aria-describedby=[described("banner_from")];
                        (note("banner_from"))
                        " "
                        label for="banner_to" { (ctx.t("config.banner_to")) }
                        input id="banner_to" name="banner_to" type="date" value=(banner.to)
                            aria-invalid=[invalid("banner_to")] aria-describedby=[described("banner_to")];
                        (note("banner_to"))
                    }
                    p.hint { (ctx.t("config.banner_hint")) }
                }
                button.primary type="submit" { (ctx.t("save")) }
            }
        },
    )
}

fn has(form: &Form, k: &str) -> bool {
    form.0.iter().any(|(n, _)| n == k)
}

/// Saves one section of the configuration page. A refusal (the API's, naming the key, or
/// a banner date that is not a day) answers with the page, the sent values kept and the
/// field marked.
pub async fn config_save(ctx: Ctx, form: Form) -> Response {
    let back = "/admin/config";
    if let Err(r) = ctx.check_form(&form, back) {
        return r;
    }
    let auth = form.get("section") == "auth";
    let mut body = Map::new();
    for k in if auth { AUTH_BOOLS } else { SYSTEM_BOOLS } {
        body.insert(k.to_string(), json!(form.get(k) == "true"));
    }
    // The ticked types as the API takes them (it checks and canonicalises them); only from
    // the system section's form, the one with the checkboxes.
    if form.get("section") == "system" {
        body.insert("audit_log_disable".into(), json!(form.all("audit_log_disable").join(",")));
    }
    if !auth {
        for k in SYSTEM_TEXTS.iter().filter(|k| has(&form, k)) {
            let raw = form.get(k).trim();
            // Numbers as numbers; anything else as sent, for the API to refuse by name.
            let v = match *k {
                "robot_token_duration" | "session_timeout" => {
                    raw.parse::<i64>().map_or_else(|_| json!(raw), |n| json!(n))
                }
                "storage_per_project" => match raw.parse::<f64>() {
                    Ok(g) if g < 0.0 => json!(-1),
                    Ok(g) if g.is_finite() => json!((g * GIB).round() as i64),
                    _ => json!(raw),
                },
                _ => json!(raw),
            };
            body.insert(k.to_string(), v);
        }
    }
    let banner = BannerFields::sent(&form);
    let mut error = None;
    if !auth && has(&form, "banner_text") {
        match banner.value() {
            Ok(v) => {
                body.insert("banner_message".into(), json!(v));
            }
            Err((field, msg)) => error = Some(field_error(&ctx, &format!("{field}: {msg}"))),
        }
    }
    if error.is_none() {
        let a = ctx
            .call_with(
                Method::PUT,
                "/api/v2.0/configurations",
                Some(Value::Object(body.clone())),
                Some(form.get("_csrf")),
            )
            .await;
        if a.ok() {
            ctx.set_flash(true, ctx.t("saved"));
            return ctx.redirect(back);
        }
        if a.status != axum::http::StatusCode::BAD_REQUEST {
            return ctx.after(&a, "", back);
        }
        error = Some(field_error(&ctx, &a.error()));
    }
    // The page again: the stored values with the sent ones over them.
    let cur = ctx.call(Method::GET, "/api/v2.0/configurations", None).await;
    let mut vals: Map<String, Value> =
        cur.json.as_object().into_iter().flatten().map(|(k, v)| (k.clone(), v["value"].clone())).collect();
    for (k, v) in body {
        if k == "storage_per_project" {
            vals.insert(k, json!(form.get("storage_per_project")));
        } else {
            vals.insert(k, v);
        }
    }
    let banner = if has(&form, "banner_text") {
        banner
    } else {
        BannerFields::stored(vals.get("banner_message").and_then(Value::as_str).unwrap_or(""))
    };
    let events = event_types(&ctx).await;
    config_page(&ctx, axum::http::StatusCode::BAD_REQUEST, &vals, &banner, &events, error)
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
    let (kind, cron) = schedule_now(&sched.json);
    page(
        &ctx,
        ctx.t("gc.title"),
        Nav::Gc,
        html! {
            (cleanup_tabs(&ctx, "/admin/gc"))
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
            (job_history(&ctx, a.items(), "/admin/gc"))
        },
    )
}

/// A system job's schedule as its `GET …/schedule` answers it: (type, cron).
fn schedule_now(v: &Value) -> (String, String) {
    let kind = v["schedule"]["type"].as_str().unwrap_or("None").to_string();
    let cron = v["schedule"]["cron"].as_str().unwrap_or("").to_string();
    (kind, cron)
}

/// A system job's history (garbage collection, log rotation): id, trigger, dry run,
/// status, times, a link to its log page (`{ui_base}/{id}/log`) and, while it may still
/// run, a stop button (`{ui_base}/{id}/stop`).
fn job_history(ctx: &Ctx, items: &[Value], ui_base: &str) -> Markup {
    let keys = ["col.id", "col.trigger", "gc.dry_run_col", "col.status", "col.created", "col.updated", "col.log"];
    list_table(ctx, &keys, true, items, |g| {
        let id = g["id"].as_i64().unwrap_or(0);
        let st = g["job_status"].as_str().unwrap_or("");
        let trigger = g["schedule"]["type"].as_str().or(g["trigger"].as_str()).or(g["job_kind"].as_str()).unwrap_or("");
        let trigger =
            crate::i18n::lookup(ctx.lang, &format!("trigger.{}", trigger.to_ascii_lowercase())).unwrap_or(trigger);
        html! { tr {
            th scope="row" { (id) }
            td { (trigger) }
            td { @if g["job_parameters"].as_str().is_some_and(|p| p.contains("\"dry_run\":true")) { (ctx.t("yes")) } @else { (ctx.t("no")) } }
            td { (status(ctx, st)) }
            td { (when(ctx, &g["creation_time"])) }
            td { (when(ctx, &g["update_time"])) }
            td { a href={ (ui_base) "/" (id) "/log" } aria-label={ (ctx.t("col.log")) " " (id) } { (ctx.t("col.log")) } }
            td { @if matches!(st, "Pending" | "Running" | "Scheduled") {
                (post_button(ctx, &format!("{ui_base}/{id}/stop"), ctx.t("stop"), &format!("{} {id}", ctx.t("stop")), true))
            } }
        } }
    })
}

/// The schedule fields: Harbor's schedule types, and a cron field for `Custom` (six
/// fields, seconds first).
fn schedule_fields(ctx: &Ctx, kind: &str, cron: &str) -> Markup {
    html! {
        label for="sched_type" { (ctx.t("schedule.type")) }
        select id="sched_type" name="type" {
            @for t in ["None", "Hourly", "Daily", "Weekly", "Custom"] {
                option value=(t) selected[t == kind] { (ctx.t(&format!("schedule.{}", t.to_ascii_lowercase()))) }
            }
        }
        label for="sched_cron" { (ctx.t("schedule.cron")) }
        input id="sched_cron" name="cron" value=(cron) placeholder="0 0 3 * * *";
    }
}

/// Harbor's schedule types, and a cron field for `Custom` (six fields, seconds first).
pub fn schedule_form(ctx: &Ctx, action: &str, kind: &str, cron: &str) -> Markup {
    html! {
        form.inline method="post" action=(action) {
            (csrf(ctx))
            (schedule_fields(ctx, kind, cron))
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

/// A system job's log page (`GET {api_base}/{id}/log`), with the way back to `ui_base`.
async fn job_log_page(ctx: &Ctx, api_base: &str, ui_base: &str, id: &str, title: &str) -> Response {
    if let Err(r) = ctx.require_user() {
        return r;
    }
    let a = ctx.call(Method::GET, &format!("{api_base}/{}/log", enc(id)), None).await;
    if !a.ok() {
        return refusal(ctx, &a);
    }
    log_page(ctx, &format!("{title} {id}"), ui_base, &a.text)
}

pub async fn gc_log(ctx: Ctx, Path(id): Path<String>) -> Response {
    job_log_page(&ctx, "/api/v2.0/system/gc", "/admin/gc", &id, ctx.t("gc.log")).await
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

/// `/admin/log-rotation`: Harbor's audit log purge ("Log Rotation"): the schedule with
/// how long to keep entries and which event types to purge (the API's list), purge now
/// or as a dry run, and the history with each run's log.
pub async fn log_rotation(ctx: Ctx, uri: Uri) -> Response {
    if let Err(r) = ctx.require_user() {
        return r;
    }
    let pg: u64 = query(&uri).get("page").parse().unwrap_or(1).max(1);
    let a = ctx.call(Method::GET, &format!("/api/v2.0/system/purgeaudit?page={pg}&page_size={PAGE_SIZE}"), None).await;
    if !a.ok() {
        return refusal(&ctx, &a);
    }
    let sched = ctx.call(Method::GET, "/api/v2.0/system/purgeaudit/schedule", None).await;
    let (kind, cron) = schedule_now(&sched.json);
    let params: Value =
        sched.json["job_parameters"].as_str().and_then(|p| serde_json::from_str(p).ok()).unwrap_or(Value::Null);
    let hours = params["audit_retention_hour"].as_i64().unwrap_or(24 * 30);
    let (amount, unit) = if hours % 24 == 0 { (hours / 24, "days") } else { (hours, "hours") };
    let event_types = event_types(&ctx).await;
    let chosen = purge_selection(&params, &event_types);
    page(
        &ctx,
        ctx.t("purge.title"),
        Nav::Gc,
        html! {
            (cleanup_tabs(&ctx, "/admin/log-rotation"))
            h2 id="purge-settings" { (ctx.t("purge.settings")) }
            form.narrow method="post" action="/admin/log-rotation" aria-labelledby="purge-settings" {
                (csrf(&ctx))
                p { (schedule_fields(&ctx, &kind, &cron)) }
                p {
                    label for="retention" { (ctx.t("purge.keep")) }
                    input id="retention" name="retention" type="number" min="1" value=(amount);
                    label.visually-hidden for="unit" { (ctx.t("purge.unit")) }
                    select id="unit" name="unit" {
                        option value="hours" selected[unit == "hours"] { (ctx.t("purge.hours")) }
                        option value="days" selected[unit == "days"] { (ctx.t("purge.days")) }
                    }
                }
                fieldset.event-types aria-describedby="event-types-hint" {
                    legend { (ctx.t("purge.event_types")) }
                    p.hint id="event-types-hint" { (ctx.t("purge.event_types_hint")) }
                    (event_type_checks(&ctx, "types", &event_types, |e| chosen.contains(&e)))
                }
                button.primary type="submit" name="do" value="save" { (ctx.t("purge.save")) }
                " "
                button type="submit" name="do" value="dry_run" { (ctx.t("purge.dry_run")) }
                " "
                button type="submit" name="do" value="now" { (ctx.t("purge.now")) }
            }
            h2 { (ctx.t("gc.history")) }
            (job_history(&ctx, a.items(), "/admin/log-rotation"))
            (pager(&ctx, "/admin/log-rotation", &[], pg, PAGE_SIZE, a.total().unwrap_or(0)))
        },
    )
}

/// The event types a saved purge selects, as the purge does: those it lists in
/// `include_event_types` and those of the operations in Harbor's older
/// `include_operations`. With nothing saved, creations, deletions and pulls.
fn purge_selection<'a>(params: &Value, event_types: &'a [String]) -> Vec<&'a str> {
    let list = |k: &str| params[k].as_str().map(|v| v.split(',').map(str::trim).collect::<Vec<_>>());
    let (types, ops) = match (list("include_event_types"), list("include_operations")) {
        (None, None) => (vec![], vec!["create", "delete", "pull"]),
        (types, ops) => (types.unwrap_or_default(), ops.unwrap_or_default()),
    };
    let by_op = |e: &str| e.split_once('_').is_some_and(|(op, _)| ops.contains(&op));
    event_types.iter().map(String::as_str).filter(|e| types.contains(e) || by_op(e)).collect()
}

/// The purge form: save the schedule (`do=save`), or purge now (`now`) or as a dry run
/// (`dry_run`) with the form's retention and event types.
pub async fn log_rotation_save(ctx: Ctx, form: Form) -> Response {
    let raw = form.get("retention").trim();
    // Days to the API's hours; anything else as sent, for the API to refuse by name.
    let hours = match (raw.parse::<i64>(), form.get("unit")) {
        (Ok(n), "days") => json!(n.saturating_mul(24)),
        (Ok(n), _) => json!(n),
        _ => json!(raw),
    };
    let mut parameters = json!({ "audit_retention_hour": hours, "include_event_types": form.all("types").join(",") });
    let back = "/admin/log-rotation";
    let (method, schedule, msg) = match form.get("do") {
        "now" | "dry_run" => {
            parameters["dry_run"] = json!(form.get("do") == "dry_run");
            let msg = if form.get("do") == "now" { "purge.started" } else { "purge.dry_run_started" };
            (Method::POST, json!({ "type": "Manual" }), msg)
        }
        _ => (Method::PUT, schedule_of(&form), "saved"),
    };
    let body = json!({ "schedule": schedule, "parameters": parameters });
    let path = "/api/v2.0/system/purgeaudit/schedule";
    if let Err(r) = ctx.check_form(&form, back) {
        return r;
    }
    let a = ctx.call_with(method, path, Some(body), Some(form.get("_csrf"))).await;
    if a.ok() {
        ctx.set_flash(true, ctx.t(msg));
    } else {
        // The API names the field (`parameters.audit_retention_hour: …`,
        // `schedule.cron: …`); the message starts with the form's label for it.
        let e = a.error();
        let label = match e.split_once(':').map(|(k, _)| k.trim().trim_start_matches("parameters.")) {
            Some("audit_retention_hour") => Some("purge.keep"),
            Some("include_event_types") => Some("purge.event_types"),
            Some("schedule.cron") => Some("schedule.cron"),
            _ => None,
        };
        ctx.set_flash(false, &label.map_or(e.clone(), |l| format!("{}: {e}", ctx.t(l))));
    }
    ctx.redirect(back)
}

pub async fn log_rotation_log(ctx: Ctx, Path(id): Path<String>) -> Response {
    job_log_page(&ctx, "/api/v2.0/system/purgeaudit", "/admin/log-rotation", &id, ctx.t("purge.log")).await
}

pub async fn log_rotation_stop(ctx: Ctx, Path(id): Path<String>, form: Form) -> Response {
    let path = format!("/api/v2.0/system/purgeaudit/{}", enc(&id));
    let back = "/admin/log-rotation";
    ctx.submit(&form, Method::PUT, &path, None, ctx.t("stopped"), back, back).await
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
    let running = ctx.call(Method::GET, "/api/v2.0/jobservice/pools/all/workers", None).await;
    let queue_button = |t: &str, action: &str, danger: bool| {
        let words = ctx.t(&format!("jobs.{action}"));
        let name = if t == "all" { format!("{words}: {}", ctx.t("jobs.all_queues")) } else { format!("{words}: {t}") };
        post_button(&ctx, &format!("/admin/jobs/queues/{}/{action}", enc(t)), words, &name, danger)
    };
    page(
        &ctx,
        ctx.t("jobs.title"),
        Nav::Jobs,
        html! {
            h2 { (ctx.t("jobs.queues")) }
            p {
                (queue_button("all", "pause", false)) " "
                (queue_button("all", "resume", false)) " "
                (queue_button("all", "stop", true))
            }
            (list_table(&ctx, &["col.kind", "jobs.pending", "jobs.latency", "jobs.paused"], true, queues.items(), |q| {
                let t = q["job_type"].as_str().unwrap_or("");
                let paused = q["paused"].as_bool() == Some(true);
                html! { tr {
                    th scope="row" { code { (t) } }
                    td.num { (q["count"].as_i64().unwrap_or(0)) }
                    td.num { (q["latency"].as_i64().unwrap_or(0)) " s" }
                    td { @if paused { "⏸ " (ctx.t("yes")) } @else { (ctx.t("no")) } }
                    td {
                        a href={ "/admin/jobs/queues/" (enc(t)) } aria-label={ (ctx.t("jobs.waiting")) ": " (t) } { (ctx.t("jobs.waiting")) }
                        " "
                        @if paused { (queue_button(t, "resume", false)) } @else { (queue_button(t, "pause", false)) }
                        " " (queue_button(t, "stop", true))
                    }
                } }
            }))
            h2 { (ctx.t("jobs.running")) }
            (list_table(&ctx, &["col.kind", "col.id", "jobs.pool", "jobs.started", "jobs.checked_in", "col.log"], true, running.items(), |w| {
                let id = w["job_id"].as_str().map(str::to_string).or_else(|| w["job_id"].as_i64().map(|n| n.to_string())).unwrap_or_default();
                let kind = w["job_name"].as_str().unwrap_or("");
                html! { tr {
                    th scope="row" { code { (kind) } }
                    td.num { (id) }
                    td { code { (w["pool_id"].as_str().unwrap_or("")) } }
                    td { (when(&ctx, &w["start_at"])) }
                    td { (when(&ctx, &w["checkin_at"])) }
                    td { a href={ "/admin/jobs/" (enc(&id)) "/log" } aria-label={ (ctx.t("col.log")) " " (kind) " " (id) } { (ctx.t("col.log")) } }
                    td { (post_button(&ctx, &format!("/admin/jobs/{}/stop", enc(&id)), ctx.t("stop"), &format!("{} {kind} {id}", ctx.t("stop")), true)) }
                } }
            }))
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

/// Pauses, resumes or stops a job type's queue (`all`: every one).
pub async fn queue_action(ctx: Ctx, Path((kind, action)): Path<(String, String)>, form: Form) -> Response {
    let path = format!("/api/v2.0/jobservice/queues/{}", enc(&kind));
    let msg = match action.as_str() {
        "pause" => ctx.t("jobs.paused_msg"),
        "resume" => ctx.t("jobs.resumed_msg"),
        _ => ctx.t("stopped"),
    };
    let back = "/admin/jobs";
    ctx.submit(&form, Method::PUT, &path, Some(json!({ "action": action })), msg, back, back).await
}

pub async fn job_stop(ctx: Ctx, Path(id): Path<String>, form: Form) -> Response {
    let path = format!("/api/v2.0/jobservice/jobs/{}", enc(&id));
    // A job stopped from its queue's page goes back there (`queue`: the job type).
    let back = match form.get("queue") {
        "" => "/admin/jobs".to_string(),
        q => format!("/admin/jobs/queues/{}", enc(q)),
    };
    ctx.submit(&form, Method::PUT, &path, Some(json!({ "action": "stop" })), ctx.t("stopped"), &back, &back).await
}

/// `/admin/jobs/queues/{kind}`: the jobs of a type waiting in its queue (Berth's
/// `GET /jobservice/queues/{job_type}/jobs`), in the order workers take them: id,
/// execution, enqueued, attempts, next run, last error; paged; stop one.
pub async fn queue_jobs(ctx: Ctx, Path(kind): Path<String>, uri: Uri) -> Response {
    if let Err(r) = ctx.require_user() {
        return r;
    }
    let pg: u64 = query(&uri).get("page").parse().unwrap_or(1).max(1);
    let path = format!("/api/v2.0/jobservice/queues/{}/jobs?page={pg}&page_size={PAGE_SIZE}", enc(&kind));
    let a = ctx.call(Method::GET, &path, None).await;
    if !a.ok() {
        return refusal(&ctx, &a);
    }
    let base = format!("/admin/jobs/queues/{}", enc(&kind));
    let keys = ["col.id", "jobs.execution", "jobs.enqueued", "jobs.attempts", "jobs.next_run", "jobs.last_error"];
    page(
        &ctx,
        &format!("{} · {kind}", ctx.t("jobs.waiting")),
        Nav::Jobs,
        html! {
            p { a href="/admin/jobs" { "← " (ctx.t("jobs.title")) } }
            (list_table(&ctx, &keys, true, a.items(), |j| {
                let id = j["job_id"].as_str().unwrap_or("");
                let max = j["max_attempts"].as_i64().unwrap_or(0);
                html! { tr {
                    th scope="row" { (id) }
                    td.num { (j["execution_id"].as_i64().unwrap_or(0)) }
                    td { (when(&ctx, &j["enqueue_at"])) }
                    td.num { (j["attempts"].as_i64().unwrap_or(0)) " / " (max) }
                    td { (when(&ctx, &j["run_at"])) }
                    td { (j["last_error"].as_str().unwrap_or("—")) }
                    td {
                        form.inline method="post" action={ "/admin/jobs/" (enc(id)) "/stop" } {
                            (csrf(&ctx))
                            input type="hidden" name="queue" value=(kind);
                            button.danger type="submit" aria-label={ (ctx.t("stop")) " " (kind) " " (id) } { (ctx.t("stop")) }
                        }
                    }
                } }
            }))
            (pager(&ctx, &base, &[], pg, PAGE_SIZE, a.total().unwrap_or(0)))
        },
    )
}

pub async fn job_log(ctx: Ctx, Path(id): Path<String>) -> Response {
    job_log_page(&ctx, "/api/v2.0/jobservice/jobs", "/admin/jobs", &id, ctx.t("jobs.log")).await
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
