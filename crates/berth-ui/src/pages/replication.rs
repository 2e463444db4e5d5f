//! Replication, for system administrators (the API refuses everyone else):
//! `/admin/registries` (registry endpoints: list, add or edit with a connection test,
//! check, delete) and `/admin/replications` (policies: list, add, run, delete; executions with
//! their tasks and each task's log).

use axum::extract::Path;
use axum::http::{Method, Uri};
use axum::response::Response;
use maud::{Markup, html};
use serde_json::{Value, json};

use super::refusal;
use crate::layout::{Nav, csrf, enabled, list_table, log_page, page, pager, post_button, status, when};
use crate::{Ctx, Form, enc, query};

const PAGE_SIZE: u64 = 20;

/// The edit form answered with itself after a connection test: what was typed (the secret
/// too, so that saving next sends it; it is in this answer only) and the result.
struct Tested {
    reg: Value,
    secret: String,
    ok: bool,
    msg: String,
}

impl Tested {
    fn from_form(form: &Form, kind: &str, a: &crate::Answer, ctx: &Ctx) -> Tested {
        Tested {
            reg: json!({
                "type": kind,
                "name": form.get("name"),
                "url": form.get("url"),
                "description": form.get("description"),
                "insecure": form.get("insecure") == "true",
                "credential": { "access_key": form.get("access_key") },
            }),
            secret: form.get("access_secret").to_string(),
            ok: a.ok(),
            msg: if a.ok() { ctx.t("registries.reachable").to_string() } else { a.error() },
        }
    }

    fn result(&self) -> Markup {
        html! {
            @if self.ok { p.flash.ok role="status" { "✔ " (self.msg) } }
            @else { p.flash.err role="alert" { "✖ " (self.msg) } }
        }
    }
}

pub async fn registries(ctx: Ctx) -> Response {
    if let Err(r) = ctx.require_user() {
        return r;
    }
    let a = ctx.call(Method::GET, "/api/v2.0/registries?page_size=100", None).await;
    if !a.ok() {
        return refusal(&ctx, &a);
    }
    let kinds = ctx.call(Method::GET, "/api/v2.0/replication/adapters", None).await;
    let cols = [
        "col.name",
        "registries.url",
        "registries.provider",
        "col.status",
        "registries.auth",
        "registries.verify",
        "col.created",
    ];
    page(
        &ctx,
        ctx.t("registries.title"),
        Nav::Registries,
        html! {
            (list_table(&ctx, &cols, true, a.items(), |r| {
                let id = r["id"].as_i64().unwrap_or(0);
                let name = r["name"].as_str().unwrap_or("");
                html! { tr {
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
                        a href={ "/admin/registries/" (id) "/edit" } aria-label={ (ctx.t("edit")) " " (name) } { (ctx.t("edit")) }
                        " "
                        (post_button(&ctx, &format!("/admin/registries/{id}/ping"), ctx.t("registries.test"), &format!("{} {name}", ctx.t("registries.test")), false))
                        " "
                        (post_button(&ctx, &format!("/admin/registries/{id}/delete"), ctx.t("delete"), &format!("{} {name}", ctx.t("delete")), true))
                    }
                } }
            }))
            h2 id="new-registry" { (ctx.t("registries.new")) }
            (registry_form(&ctx, "/admin/registries", "new-registry", kinds.items(), None, None))
        },
    )
}

/// The registry form: empty to add one, filled from `saved` (the API's registry) to edit
/// it, or from what was typed when a connection test answers with it. The provider is
/// chosen when the registry is added; the secret is never shown (left empty when editing,
/// the stored one is kept).
fn registry_form(
    ctx: &Ctx,
    action: &str,
    labelled_by: &str,
    kinds: &[Value],
    tested: Option<&Tested>,
    saved: Option<&Value>,
) -> Markup {
    let empty = Value::Null;
    let r = tested.map(|t| &t.reg).or(saved).unwrap_or(&empty);
    let editing = saved.is_some();
    let text = |k: &str| r[k].as_str().unwrap_or("").to_string();
    let kind = r["type"].as_str().unwrap_or("harbor");
    html! {
        form.narrow method="post" action=(action) aria-labelledby=(labelled_by) {
            (csrf(ctx))
            @if editing {
                p { (ctx.t("registries.provider")) ": " code { (kind) } }
            } @else {
                p { label for="reg_type" { (ctx.t("registries.provider")) }
                    select id="reg_type" name="type" {
                        @for k in kinds { @let k = k.as_str().unwrap_or(""); option value=(k) selected[k == kind] { (k) } }
                    }
                }
            }
            p { label for="reg_name" { (ctx.t("col.name")) } input id="reg_name" name="name" required value=(text("name")); }
            p { label for="reg_url" { (ctx.t("registries.url")) } input id="reg_url" name="url" type="url" required placeholder="https://" value=(text("url")); }
            p { label for="reg_key" { (ctx.t("registries.access_key")) } input id="reg_key" name="access_key" autocomplete="off" value=(r["credential"]["access_key"].as_str().unwrap_or("")); }
            p { label for="reg_secret" { (ctx.t("registries.access_secret")) }
                input id="reg_secret" name="access_secret" type="password" autocomplete="new-password"
                    value=[tested.map(|t| t.secret.as_str()).filter(|s| !s.is_empty())]
                    aria-describedby=[editing.then_some("reg_secret_hint")];
                @if editing { small id="reg_secret_hint" { (ctx.t("registries.secret_kept")) } }
            }
            p { label for="reg_desc" { (ctx.t("col.description")) } input id="reg_desc" name="description" value=(text("description")); }
            p { label.check { input type="checkbox" name="insecure" value="true" checked[r["insecure"] == true]; " " (ctx.t("registries.insecure")) } }
            button type="submit" name="test" value="1" { (ctx.t("registries.test")) }
            " "
            button.primary type="submit" { @if editing { (ctx.t("save")) } @else { (ctx.t("create")) } }
        }
    }
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

/// Harbor's `RegistryPing` from the form: a saved registry's id (its stored secret used
/// unless a new one is typed) or the provider of a new one.
fn ping_body(form: &Form, id: Option<i64>) -> Value {
    let key = form.get("access_key").trim();
    let mut body = json!({
        "url": form.get("url").trim(),
        "insecure": form.get("insecure") == "true",
        "credential_type": if key.is_empty() { "" } else { "basic" },
        "access_key": key,
    });
    match id {
        Some(id) => body["id"] = json!(id),
        None => body["type"] = json!(form.get("type")),
    }
    if !form.get("access_secret").is_empty() {
        body["access_secret"] = json!(form.get("access_secret"));
    }
    body
}

/// Adds a registry, or with "Test connection" pings what was typed and comes back to the
/// list with the result.
pub async fn registry_create(ctx: Ctx, form: Form) -> Response {
    let back = "/admin/registries";
    if form.get("test") == "1" {
        let body = ping_body(&form, None);
        let ok = ctx.t("registries.reachable");
        return ctx.submit(&form, Method::POST, "/api/v2.0/registries/ping", Some(body), ok, back, back).await;
    }
    ctx.submit(&form, Method::POST, "/api/v2.0/registries", Some(registry_body(&form)), ctx.t("saved"), back, back)
        .await
}

/// A registry's edit page: the form, filled in from the API.
pub async fn registry_edit(ctx: Ctx, Path(id): Path<String>) -> Response {
    render_registry_edit(ctx, id, None).await
}

async fn render_registry_edit(ctx: Ctx, id: String, tested: Option<Tested>) -> Response {
    if let Err(r) = ctx.require_user() {
        return r;
    }
    let a = ctx.call(Method::GET, &format!("/api/v2.0/registries/{}", enc(&id)), None).await;
    if !a.ok() {
        return refusal(&ctx, &a);
    }
    let name = a.json["name"].as_str().unwrap_or("").to_string();
    page(
        &ctx,
        &format!("{} · {name}", ctx.t("registries.edit")),
        Nav::Registries,
        html! {
            p { a href="/admin/registries" { "← " (ctx.t("registries.title")) } }
            h2 id="edit-registry" { (ctx.t("registries.edit")) }
            @if let Some(t) = &tested { (t.result()) }
            (registry_form(&ctx, &format!("/admin/registries/{}/edit", enc(&id)), "edit-registry", &[], tested.as_ref(), Some(&a.json)))
        },
    )
}

/// Saves the edit form (Harbor's `RegistryUpdate`: an empty secret keeps the stored one),
/// or with "Test connection" pings the registry with what was typed and answers with the
/// form again and the result.
pub async fn registry_update(ctx: Ctx, Path(id): Path<String>, form: Form) -> Response {
    let back = format!("/admin/registries/{}/edit", enc(&id));
    if let Err(r) = ctx.check_form(&form, &back) {
        return r;
    }
    let n = id.parse::<i64>().unwrap_or(0);
    if form.get("test") == "1" {
        let body = ping_body(&form, Some(n));
        let a = ctx.call_with(Method::POST, "/api/v2.0/registries/ping", Some(body), Some(form.get("_csrf"))).await;
        let cur = ctx.call(Method::GET, &format!("/api/v2.0/registries/{}", enc(&id)), None).await;
        let tested = Tested::from_form(&form, cur.json["type"].as_str().unwrap_or(""), &a, &ctx);
        return render_registry_edit(ctx, id, Some(tested)).await;
    }
    let key = form.get("access_key").trim();
    let mut body = json!({
        "name": form.get("name").trim(),
        "description": form.get("description"),
        "url": form.get("url").trim(),
        "insecure": form.get("insecure") == "true",
        "credential_type": if key.is_empty() { "" } else { "basic" },
        "access_key": key,
    });
    if !form.get("access_secret").is_empty() {
        body["access_secret"] = json!(form.get("access_secret"));
    }
    let path = format!("/api/v2.0/registries/{}", enc(&id));
    ctx.submit(&form, Method::PUT, &path, Some(body), ctx.t("saved"), "/admin/registries", &back).await
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
            (list_table(&ctx, &["col.name", "col.enabled", "replications.source", "replications.mode", "replications.destination", "col.trigger", "col.description"], true, a.items(), |p| {
                let id = p["id"].as_i64().unwrap_or(0);
                let name = p["name"].as_str().unwrap_or("");
                let pull = p["src_registry"]["id"].as_i64().unwrap_or(0) != 0;
                html! { tr {
                    th scope="row" { a href={ "/admin/replications?policy_id=" (id) } { (name) } }
                    td { (enabled(&ctx, p["enabled"].as_bool() == Some(true))) }
                    td { (registry_name(&p["src_registry"])) " " @for f in p["filters"].as_array().into_iter().flatten() { code { (f["type"].as_str().unwrap_or("")) "=" (f["value"].as_str().map(str::to_string).unwrap_or_else(|| f["value"].to_string())) } " " } }
                    td { @if pull { "⇣ " (ctx.t("replications.pull")) } @else { "⇡ " (ctx.t("replications.push")) } }
                    td { (registry_name(&p["dest_registry"])) ":" code { (p["dest_namespace"].as_str().filter(|n| !n.is_empty()).unwrap_or("—")) } }
                    td { (p["trigger"]["type"].as_str().unwrap_or("manual")) " " code { (p["trigger"]["trigger_settings"]["cron"].as_str().unwrap_or("")) } }
                    td { (p["description"].as_str().unwrap_or("")) }
                    td {
                        a href={ "/admin/replications/" (id) "/edit" } aria-label={ (ctx.t("edit")) " " (name) } { (ctx.t("edit")) }
                        " "
                        (post_button(&ctx, &format!("/admin/replications/{id}/run"), ctx.t("replications.run"), &format!("{} {name}", ctx.t("replications.run")), false))
                        " "
                        (post_button(&ctx, &format!("/admin/replications/{id}/delete"), ctx.t("delete"), &format!("{} {name}", ctx.t("delete")), true))
                    }
                } }
            }))
            h2 id="executions" { (ctx.t("replications.executions"))
                @if let Some(n) = policy.parse::<i64>().ok().and_then(|id| names.get(&id)) { " · " (n) " " a href="/admin/replications" { (ctx.t("replications.all")) } } }
            (list_table(&ctx, &["col.id", "replications.policy", "col.status", "col.trigger", "replications.started", "replications.ended", "replications.progress"], false, execs.items(), |e| {
                let id = e["id"].as_i64().unwrap_or(0);
                html! { tr {
                    th scope="row" { a href={ "/admin/replications/executions/" (id) } aria-label={ (ctx.t("replications.execution")) " " (id) } { (id) } }
                    td { (names.get(&e["policy_id"].as_i64().unwrap_or(0)).map_or("", String::as_str)) }
                    td { (status(&ctx, e["status"].as_str().unwrap_or(""))) @if let Some(t) = e["status_text"].as_str().filter(|t| !t.is_empty()) { br; small { (t) } } }
                    td { (e["trigger"].as_str().unwrap_or("")) }
                    td { (when(&ctx, &e["start_time"])) }
                    td { (when(&ctx, &e["end_time"])) }
                    td { (e["succeed"].as_i64().unwrap_or(0)) " / " (e["total"].as_i64().unwrap_or(0)) " " (ctx.t("replications.succeeded"))
                        @if e["failed"].as_i64().unwrap_or(0) > 0 { ", " (e["failed"].as_i64().unwrap_or(0)) " " (ctx.t("replications.failed")) } }
                } }
            }))
            @if !execs.items().is_empty() { (pager(&ctx, "/admin/replications", &[("policy_id", &policy)], pg, PAGE_SIZE, execs.total().unwrap_or(0))) }
            h2 id="new-policy" { (ctx.t("replications.new")) }
            @if regs.items().is_empty() {
                p { (ctx.t("replications.need_registry")) " " a href="/admin/registries" { (ctx.t("registries.title")) } }
            } @else {
                (policy_form(&ctx, "/admin/replications", "new-policy", regs.items(), &Value::Null))
            }
        },
    )
}

/// The rule form, empty (`policy` null) to create one or filled from `policy` to edit it:
/// every field the API takes from the portal, the schedule among them.
fn policy_form(ctx: &Ctx, action: &str, labelled_by: &str, regs: &[Value], policy: &Value) -> Markup {
    let new = policy.is_null();
    let pull = policy["src_registry"]["id"].as_i64().unwrap_or(0) != 0;
    let remote = if pull { &policy["src_registry"] } else { &policy["dest_registry"] };
    let remote = remote["id"].as_i64().unwrap_or(0);
    let filter = |kind: &str| {
        policy["filters"].as_array().into_iter().flatten().find(|f| f["type"] == kind).and_then(|f| f["value"].as_str())
    };
    let trigger = policy["trigger"]["type"].as_str().unwrap_or("manual");
    let text = |k: &str| policy[k].as_str().unwrap_or("").to_string();
    html! {
        form.narrow method="post" action=(action) aria-labelledby=(labelled_by) {
            (csrf(ctx))
            p { label for="rp_name" { (ctx.t("col.name")) } input id="rp_name" name="name" required value=(text("name")); }
            p { label for="rp_desc" { (ctx.t("col.description")) } input id="rp_desc" name="description" value=(text("description")); }
            fieldset {
                legend { (ctx.t("replications.mode")) }
                label.check { input type="radio" name="mode" value="push" checked[!pull]; " " (ctx.t("replications.push_long")) }
                br;
                label.check { input type="radio" name="mode" value="pull" checked[pull]; " " (ctx.t("replications.pull_long")) }
            }
            p { label for="rp_registry" { (ctx.t("replications.remote")) }
                select id="rp_registry" name="registry" {
                    @for r in regs {
                        @let id = r["id"].as_i64().unwrap_or(0);
                        option value=(id) selected[id == remote] { (r["name"].as_str().unwrap_or("")) " (" (r["url"].as_str().unwrap_or("")) ")" }
                    }
                }
            }
            p { label for="rp_filter" { (ctx.t("replications.filter")) } input id="rp_filter" name="filter" placeholder="library/**" value=(filter("name").unwrap_or("")); }
            p { label for="rp_tag" { (ctx.t("replications.tag_filter")) } input id="rp_tag" name="tag_filter" placeholder="v*" value=(filter("tag").unwrap_or("")); }
            p { label for="rp_ns" { (ctx.t("replications.namespace")) } input id="rp_ns" name="dest_namespace" value=(text("dest_namespace")); }
            p { label for="rp_trigger" { (ctx.t("col.trigger")) }
                select id="rp_trigger" name="trigger" {
                    @for (v, k) in [("manual", "replications.manual"), ("scheduled", "replications.scheduled"), ("event_based", "replications.event")] {
                        option value=(v) selected[v == trigger] { (ctx.t(k)) }
                    }
                }
            }
            p { label for="rp_cron" { (ctx.t("schedule.cron")) } input id="rp_cron" name="cron" placeholder="0 0 3 * * *" value=(policy["trigger"]["trigger_settings"]["cron"].as_str().unwrap_or("")); }
            p { label.check { input type="checkbox" name="override" value="true" checked[new || policy["override"] == true]; " " (ctx.t("replications.override")) } }
            p { label.check { input type="checkbox" name="deletion" value="true" checked[policy["replicate_deletion"] == true]; " " (ctx.t("replications.deletion")) } }
            // A new rule starts enabled.
            @if !new { p { label.check { input type="checkbox" name="enabled" value="true" checked[policy["enabled"] == true]; " " (ctx.t("enabled")) } } }
            button.primary type="submit" { @if new { (ctx.t("create")) } @else { (ctx.t("save")) } }
        }
    }
}

/// A rule as the API takes it, from the rule form (a new one enabled).
fn policy_body(form: &Form, new: bool) -> Value {
    let remote = json!({ "id": form.get("registry").parse::<i64>().unwrap_or(0) });
    let (src, dest) = if form.get("mode") == "pull" { (remote, Value::Null) } else { (Value::Null, remote) };
    let mut filters = Vec::new();
    if !form.get("filter").trim().is_empty() {
        filters.push(json!({ "type": "name", "value": form.get("filter").trim() }));
    }
    if !form.get("tag_filter").trim().is_empty() {
        filters.push(json!({ "type": "tag", "value": form.get("tag_filter").trim(), "decoration": "matches" }));
    }
    json!({
        "name": form.get("name").trim(),
        "description": form.get("description").trim(),
        "src_registry": src,
        "dest_registry": dest,
        "dest_namespace": form.get("dest_namespace").trim(),
        "filters": filters,
        "trigger": { "type": form.get("trigger"), "trigger_settings": { "cron": form.get("cron").trim() } },
        "override": form.get("override") == "true",
        "replicate_deletion": form.get("deletion") == "true",
        "enabled": new || form.get("enabled") == "true",
    })
}

pub async fn policy_create(ctx: Ctx, form: Form) -> Response {
    let back = "/admin/replications";
    let body = policy_body(&form, true);
    ctx.submit(&form, Method::POST, "/api/v2.0/replication/policies", Some(body), ctx.t("saved"), back, back).await
}

/// A rule's edit page: the create form, filled in.
pub async fn policy_edit(ctx: Ctx, Path(id): Path<String>) -> Response {
    if let Err(r) = ctx.require_user() {
        return r;
    }
    let a = ctx.call(Method::GET, &format!("/api/v2.0/replication/policies/{}", enc(&id)), None).await;
    if !a.ok() {
        return refusal(&ctx, &a);
    }
    let regs = ctx.call(Method::GET, "/api/v2.0/registries?page_size=100", None).await;
    let name = a.json["name"].as_str().unwrap_or("");
    page(
        &ctx,
        &format!("{} · {name}", ctx.t("replications.edit")),
        Nav::Replications,
        html! {
            p { a href="/admin/replications" { "← " (ctx.t("replications.title")) } }
            h2 id="edit-policy" { (ctx.t("replications.edit")) }
            (policy_form(&ctx, &format!("/admin/replications/{}/edit", enc(&id)), "edit-policy", regs.items(), &a.json))
        },
    )
}

pub async fn policy_update(ctx: Ctx, Path(id): Path<String>, form: Form) -> Response {
    let path = format!("/api/v2.0/replication/policies/{}", enc(&id));
    let back = format!("/admin/replications/{}/edit", enc(&id));
    let body = policy_body(&form, false);
    ctx.submit(&form, Method::PUT, &path, Some(body), ctx.t("saved"), "/admin/replications", &back).await
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
                    @for s in ["Pending", "InProgress", "Succeed", "Failed", "Stopped"] {
                        option value=(s) selected[s == st] { (crate::i18n::lookup(ctx.lang, &format!("st.{}", s.to_ascii_lowercase())).unwrap_or(s)) }
                    }
                }
                button type="submit" { (ctx.t("filter")) }
            }
            (list_table(&ctx, &["col.id", "col.operation", "replications.source", "replications.destination", "col.status", "replications.started", "replications.ended", "col.log"], false, tasks.items(), |t| {
                let tid = t["id"].as_i64().unwrap_or(0);
                html! { tr {
                    th scope="row" { (tid) }
                    td { (t["operation"].as_str().unwrap_or("")) }
                    td { code { (t["src_resource"].as_str().unwrap_or("")) } }
                    td { code { (t["dst_resource"].as_str().unwrap_or("")) } }
                    td { (status(&ctx, t["status"].as_str().unwrap_or(""))) }
                    td { (when(&ctx, &t["start_time"])) }
                    td { (when(&ctx, &t["end_time"])) }
                    td { a href={ (base) "/tasks/" (tid) "/log" } aria-label={ (ctx.t("col.log")) " " (tid) } { (ctx.t("col.log")) } }
                } }
            }))
            @if !tasks.items().is_empty() { (pager(&ctx, &base, &[("status", &st)], pg, PAGE_SIZE, tasks.total().unwrap_or(0))) }
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
