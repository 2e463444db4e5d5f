//! Vulnerabilities across the system: scan all (`/admin/scan-all`: progress, scan now,
//! stop, schedule), the security hub (`/admin/security`: totals, the most dangerous
//! artifacts and CVEs, a search with its filters in the query string), CVE allowlists
//! (the system's at `/admin/cve-allowlist`, a project's in its settings) and CVE exports
//! (`/cve-exports`: start one for a project, the caller's exports, the CSV once).

use axum::extract::Path;
use axum::http::{HeaderValue, Method, Uri, header};
use axum::response::{IntoResponse, Response};
use maud::{Markup, html};
use serde_json::{Value, json};

use super::admin::{schedule_form, schedule_of};
use super::security::{SEVERITIES, severity};
use super::{api_project, refusal, ui_repo};
use crate::layout::{Nav, csrf, head, page, pager_open, post_button, security_tabs, status, when};
use crate::{Answer, Ctx, Form, enc, query};

const PAGE_SIZE: u64 = 20;

/// One scan all's progress (`Stats`): trigger, state, done of total, counts by status.
fn progress(ctx: &Ctx, m: &Value) -> Markup {
    html! {
        @if m["trigger"].is_null() { p { (ctx.t("scanall.never")) } } @else {
            dl {
                dt { (ctx.t("col.trigger")) } dd { (m["trigger"].as_str().unwrap_or("")) }
                dt { (ctx.t("col.status")) } dd { @if m["ongoing"].as_bool() == Some(true) { (status(ctx, "Running")) } @else { (status(ctx, "Success")) } }
                dt { (ctx.t("scanall.progress")) } dd { (m["completed"].as_u64().unwrap_or(0)) " / " (m["total"].as_u64().unwrap_or(0)) " " (ctx.t("scanall.done")) }
                @if let Some(ms) = m["metrics"].as_object() {
                    dt { (ctx.t("scanall.by_status")) }
                    dd { @for (i, (k, v)) in ms.iter().enumerate() { @if i > 0 { ", " } (v.as_u64().unwrap_or(0)) " " (status(ctx, k)) } }
                }
            }
        }
    }
}

pub async fn scan_all(ctx: Ctx) -> Response {
    if let Err(r) = ctx.require_user() {
        return r;
    }
    let m = ctx.call(Method::GET, "/api/v2.0/scans/all/metrics", None).await;
    if !m.ok() {
        return refusal(&ctx, &m);
    }
    let sm = ctx.call(Method::GET, "/api/v2.0/scans/schedule/metrics", None).await;
    let sched = ctx.call(Method::GET, "/api/v2.0/system/scanAll/schedule", None).await;
    let kind = sched.json["schedule"]["type"].as_str().unwrap_or("None");
    let cron = sched.json["schedule"]["cron"].as_str().unwrap_or("");
    let ongoing = m.json["ongoing"].as_bool() == Some(true);
    page(
        &ctx,
        ctx.t("scanall.title"),
        Nav::Security,
        html! {
            (security_tabs(&ctx, "/admin/scan-all"))
            p { (ctx.t("scanall.hint")) }
            p {
                (post_button(&ctx, "/admin/scan-all", ctx.t("scanall.now"), ctx.t("scanall.now"), false))
                @if ongoing { " " (post_button(&ctx, "/admin/scan-all/stop", ctx.t("stop"), ctx.t("scanall.stop"), true)) }
            }
            h2 { (ctx.t("scanall.latest")) }
            (progress(&ctx, &m.json))
            h2 { (ctx.t("scanall.latest_scheduled")) }
            (progress(&ctx, &sm.json))
            h2 { (ctx.t("gc.schedule")) }
            (schedule_form(&ctx, "/admin/scan-all/schedule", kind, cron))
        },
    )
}

const SCAN_ALL: &str = "/admin/scan-all";

pub async fn scan_all_now(ctx: Ctx, form: Form) -> Response {
    let body = json!({ "schedule": { "type": "Manual" } });
    let path = "/api/v2.0/system/scanAll/schedule";
    ctx.submit(&form, Method::POST, path, Some(body), ctx.t("scanall.started"), SCAN_ALL, SCAN_ALL).await
}

pub async fn scan_all_schedule(ctx: Ctx, form: Form) -> Response {
    let body = json!({ "schedule": schedule_of(&form) });
    let path = "/api/v2.0/system/scanAll/schedule";
    ctx.submit(&form, Method::PUT, path, Some(body), ctx.t("saved"), SCAN_ALL, SCAN_ALL).await
}

pub async fn scan_all_stop(ctx: Ctx, form: Form) -> Response {
    let path = "/api/v2.0/system/scanAll/stop";
    ctx.submit(&form, Method::POST, path, None, ctx.t("stopped"), SCAN_ALL, SCAN_ALL).await
}

/// The security hub's search fields: (query name, message key, the API's `q` key).
const HUB_FILTERS: [(&str, &str, &str); 8] = [
    ("cve", "hub.cve", "cve_id"),
    ("package", "scan.package", "package"),
    ("project", "col.project", ""),
    ("repository", "hub.repository", "repository_name"),
    ("tag", "col.tag", "tag"),
    ("digest", "col.digest", "digest"),
    ("cvss_from", "hub.cvss_from", "cvss_score_v3_from"),
    ("cvss_to", "hub.cvss_to", "cvss_score_v3_to"),
];

/// The API's `q` terms of the hub's search filters (the page's query); a project named
/// by the caller is looked up for its id (the API filters by id).
async fn hub_terms(ctx: &Ctx, q: &Form) -> Result<Vec<String>, String> {
    let mut terms: Vec<String> = Vec::new();
    let sev = q.get("severity");
    if !sev.is_empty() {
        terms.push(format!("severity={sev}"));
    }
    for (name, _, key) in HUB_FILTERS {
        let v = q.get(name).trim();
        if v.is_empty() {
            continue;
        }
        if name == "project" {
            let p = ctx.call(Method::GET, &api_project(v), None).await;
            match p.json["project_id"].as_i64() {
                Some(id) if p.ok() => terms.push(format!("project_id={id}")),
                _ => return Err(p.error()),
            }
        } else {
            terms.push(format!("{key}={v}"));
        }
    }
    Ok(terms)
}

/// The CSV download of the search's current filters.
fn csv_href(params: &[(&str, &str)]) -> String {
    let mut ser = form_urlencoded::Serializer::new(String::new());
    for (k, v) in params.iter().filter(|(_, v)| !v.is_empty()) {
        ser.append_pair(k, v);
    }
    format!("/admin/security/vulnerabilities.csv?{}", ser.finish())
}

/// The most rows a CSV download of the hub's search holds (the API answers 100 a page).
const CSV_MAX_ROWS: u64 = 10_000;

/// `/admin/security/vulnerabilities.csv`: the security hub's search, with the filters of
/// the page's query, as CSV (Harbor's cell rules: a value a spreadsheet would run as a
/// formula is defused), up to [`CSV_MAX_ROWS`] rows, read from the API 100 at a time.
pub async fn security_csv(ctx: Ctx, uri: Uri) -> Response {
    if let Err(r) = ctx.require_user() {
        return r;
    }
    let q = query(&uri);
    let terms = match hub_terms(&ctx, &q).await {
        Ok(t) => t,
        Err(e) => return crate::layout::error_page(&ctx, axum::http::StatusCode::BAD_REQUEST, &e),
    };
    use berth_scanning::security::csv_line;
    let mut out =
        csv_line(&["CVE", "Severity", "CVSS3", "Package", "Version", "Fixed in", "Repository", "Digest", "Tags"]);
    let (mut page_no, mut rows) = (1u64, 0u64);
    loop {
        let path =
            format!("/api/v2.0/security/vul?with_tag=true&page={page_no}&page_size=100&q={}", enc(&terms.join(",")));
        let a = ctx.call(Method::GET, &path, None).await;
        if !a.ok() {
            return refusal(&ctx, &a);
        }
        let items = a.items();
        for v in items.iter() {
            let s = |k: &str| v[k].as_str().unwrap_or("").to_string();
            let cvss = v["cvss_v3_score"].as_f64().filter(|s| *s > 0.0).map(|s| format!("{s:.1}")).unwrap_or_default();
            let tags: Vec<&str> = v["tags"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
            out.push_str(&csv_line(&[
                &s("cve_id"),
                &s("severity"),
                &cvss,
                &s("package"),
                &s("version"),
                &s("fixed_version"),
                &s("repository_name"),
                &s("digest"),
                &tags.join(" "),
            ]));
            rows += 1;
        }
        if (items.len() as u64) < 100 || rows >= CSV_MAX_ROWS {
            break;
        }
        page_no += 1;
    }
    let mut res = out.into_response();
    let h = res.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/csv; charset=utf-8"));
    h.insert(header::CONTENT_DISPOSITION, HeaderValue::from_static("attachment; filename=\"vulnerabilities.csv\""));
    ctx.finish(res)
}

/// An artifact named by its full repository name and digest, linked to its page.
fn artifact_link(repository: &str, digest: &str) -> Markup {
    let (p, r) = repository.split_once('/').unwrap_or((repository, ""));
    let short: String = digest.trim_start_matches("sha256:").chars().take(12).collect();
    html! { a href={ (ui_repo(p, r)) "/-/artifacts/" (digest) } { (repository) "@" (short) } }
}

pub async fn security(ctx: Ctx, uri: Uri) -> Response {
    if let Err(r) = ctx.require_user() {
        return r;
    }
    let s = ctx
        .call(Method::GET, "/api/v2.0/security/summary?with_dangerous_cve=true&with_dangerous_artifact=true", None)
        .await;
    if !s.ok() {
        return refusal(&ctx, &s);
    }
    let q = query(&uri);
    let pg: u64 = q.get("page").parse().unwrap_or(1).max(1);
    let sev = q.get("severity").to_string();
    let (terms, mut problem) = match hub_terms(&ctx, &q).await {
        Ok(t) => (t, None),
        Err(e) => (Vec::new(), Some(e)),
    };
    let vul = if problem.is_some() {
        Answer::empty()
    } else {
        let path = format!(
            "/api/v2.0/security/vul?tune_count=true&with_tag=true&page={pg}&page_size={PAGE_SIZE}&q={}",
            enc(&terms.join(","))
        );
        let a = ctx.call(Method::GET, &path, None).await;
        if !a.ok() {
            problem = Some(a.error());
        }
        a
    };
    let j = &s.json;
    let mut params: Vec<(&str, &str)> = HUB_FILTERS.iter().map(|(n, _, _)| (*n, q.get(n))).collect();
    params.push(("severity", &sev));
    let total = vul.headers.get("x-total-count").and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<i64>().ok());
    page(
        &ctx,
        ctx.t("hub.title"),
        Nav::Security,
        html! {
            (security_tabs(&ctx, "/admin/security"))
            p { (j["total_vuls"].as_u64().unwrap_or(0)) " " (ctx.t("scan.total")) " · "
                (j["scanned_cnt"].as_u64().unwrap_or(0)) " / " (j["total_artifact"].as_u64().unwrap_or(0)) " " (ctx.t("hub.scanned"))
                " · " (j["fixable_cnt"].as_u64().unwrap_or(0)) " " (ctx.t("scan.fixable")) }
            table {
                (head(&ctx, &["scan.severity", "hub.count"], false))
                tbody { @for (s, k) in [("Critical", "critical_cnt"), ("High", "high_cnt"), ("Medium", "medium_cnt"), ("Low", "low_cnt"), ("Unknown", "unknown_cnt"), ("None", "none_cnt")] {
                    tr { th scope="row" { (severity(&ctx, s)) } td.num { (j[k].as_u64().unwrap_or(0)) } }
                } }
            }
            h2 { (ctx.t("hub.dangerous_artifacts")) }
            @if j["dangerous_artifacts"].as_array().is_none_or(Vec::is_empty) { p { (ctx.t("none")) } } @else {
                table {
                    (head(&ctx, &["artifact.title", "sev.critical", "sev.high", "sev.medium"], false))
                    tbody { @for a in j["dangerous_artifacts"].as_array().into_iter().flatten() {
                        tr {
                            th scope="row" { (artifact_link(a["repository_name"].as_str().unwrap_or(""), a["digest"].as_str().unwrap_or(""))) }
                            td.num { (a["critical_cnt"].as_u64().unwrap_or(0)) }
                            td.num { (a["high_cnt"].as_u64().unwrap_or(0)) }
                            td.num { (a["medium_cnt"].as_u64().unwrap_or(0)) }
                        }
                    } }
                }
            }
            h2 { (ctx.t("hub.dangerous_cves")) }
            @if j["dangerous_cves"].as_array().is_none_or(Vec::is_empty) { p { (ctx.t("none")) } } @else {
                table {
                    (head(&ctx, &["scan.cve", "scan.severity", "scan.cvss", "scan.package", "scan.version"], false))
                    tbody { @for c in j["dangerous_cves"].as_array().into_iter().flatten() {
                        tr {
                            th scope="row" { (c["cve_id"].as_str().unwrap_or("")) }
                            td { (severity(&ctx, c["severity"].as_str().unwrap_or("Unknown"))) }
                            td.num { (c["cvss_score_v3"].as_f64().map(|s| format!("{s:.1}")).unwrap_or_default()) }
                            td { (c["package"].as_str().unwrap_or("")) }
                            td { (c["version"].as_str().unwrap_or("")) }
                        }
                    } }
                }
            }
            h2 id="hub-search" { (ctx.t("hub.search")) }
            form.filters method="get" action="/admin/security" role="search" aria-labelledby="hub-search" {
                label for="hub_severity" { (ctx.t("scan.severity")) }
                select id="hub_severity" name="severity" {
                    option value="" { "—" }
                    @for s in SEVERITIES { option value=(s) selected[s == sev] { (ctx.t(&format!("sev.{}", s.to_ascii_lowercase()))) } }
                }
                @for (name, key, _) in HUB_FILTERS {
                    label for={ "hub_" (name) } { (ctx.t(key)) }
                    input id={ "hub_" (name) } name=(name) value=(q.get(name));
                }
                button type="submit" { (ctx.t("filter")) }
            }
            @if let Some(e) = &problem { p.flash.err role="alert" { "✖ " (e) } }
            @else if vul.items().is_empty() { p { (ctx.t("none")) } } @else {
                p { a href=(csv_href(&params)) download { (ctx.t("hub.csv")) } }
                table {
                    (head(&ctx, &["scan.cve", "scan.severity", "scan.cvss", "scan.package", "scan.version", "scan.fixed_in", "artifact.title", "artifact.tags"], false))
                    tbody { @for v in vul.items() {
                        @let cve = v["cve_id"].as_str().unwrap_or("");
                        tr {
                            th scope="row" { @match v["links"][0].as_str().filter(|l| l.starts_with("https://")) {
                                Some(l) => { a href=(l) rel="noreferrer" { (cve) } }
                                None => { (cve) }
                            } }
                            td { (severity(&ctx, v["severity"].as_str().unwrap_or("Unknown"))) }
                            td.num { (v["cvss_v3_score"].as_f64().filter(|s| *s > 0.0).map(|s| format!("{s:.1}")).unwrap_or_default()) }
                            td { (v["package"].as_str().unwrap_or("")) }
                            td { (v["version"].as_str().unwrap_or("")) }
                            td { (v["fixed_version"].as_str().filter(|f| !f.is_empty()).unwrap_or(ctx.t("scan.no_fix"))) }
                            td { (artifact_link(v["repository_name"].as_str().unwrap_or(""), v["digest"].as_str().unwrap_or(""))) }
                            td { @for t in v["tags"].as_array().into_iter().flatten() { code { (t.as_str().unwrap_or("")) } " " } }
                        }
                    } }
                }
                (pager_open(&ctx, "/admin/security", &params, pg, vul.items().len() as u64 == PAGE_SIZE && total.is_none_or(|t| t < 0 || (pg * PAGE_SIZE) < t as u64), total.filter(|t| *t >= 0).map(|t| t as u64)))
            }
        },
    )
}

/// `YYYY-MM-DD` (UTC) of a time in seconds.
fn day(t: i64) -> String {
    match time::OffsetDateTime::from_unix_timestamp(t) {
        Ok(d) => format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day()),
        Err(_) => String::new(),
    }
}

/// A `YYYY-MM-DD` date as seconds at 00:00 UTC.
fn parse_day(s: &str) -> Option<i64> {
    let mut it = s.trim().splitn(3, '-').map(|p| p.parse::<i64>().ok());
    let (y, m, d) = (it.next()??, it.next()??, it.next()??);
    let month = time::Month::try_from(u8::try_from(m).ok()?).ok()?;
    let date = time::Date::from_calendar_date(i32::try_from(y).ok()?, month, u8::try_from(d).ok()?).ok()?;
    Some(date.midnight().assume_utc().unix_timestamp())
}

/// An allowlist's CVE ids and expiry in words (⚠ once expired: it exempts nothing).
fn allowlist_view(ctx: &Ctx, list: &Value) -> Markup {
    let items: Vec<&str> =
        list["items"].as_array().into_iter().flatten().filter_map(|i| i["cve_id"].as_str()).collect();
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    html! {
        p { (ctx.t("allow.expires")) ": "
            @match list["expires_at"].as_i64() {
                Some(t) => { (day(t)) @if t <= now { " ⚠ " (ctx.t("allow.expired")) } },
                None => (ctx.t("never")),
            }
        }
        @if items.is_empty() { p { (ctx.t("allow.empty")) } } @else {
            ul { @for i in &items { li { code { (i) } } } }
        }
    }
}

/// The list's editable fields: CVE ids one a line, and the expiry date.
fn allowlist_fields(ctx: &Ctx, list: &Value, prefix: &str) -> Markup {
    let items: Vec<&str> =
        list["items"].as_array().into_iter().flatten().filter_map(|i| i["cve_id"].as_str()).collect();
    html! {
        p { label for={ (prefix) "_items" } { (ctx.t("allow.items")) }
            textarea id={ (prefix) "_items" } name="items" rows="5" { (items.join("\n")) } }
        p { label for={ (prefix) "_expires" } { (ctx.t("allow.expires_on")) }
            input id={ (prefix) "_expires" } name="expires" type="date" value=(list["expires_at"].as_i64().map(day).unwrap_or_default()); }
    }
}

/// Harbor's `CVEAllowlist` body from the form, or the field the form got wrong.
fn allowlist_body(ctx: &Ctx, form: &Form) -> Result<Value, String> {
    let items: Vec<Value> = form
        .get("items")
        .split(|c: char| c.is_whitespace() || c == ',')
        .filter(|s| !s.is_empty())
        .map(|id| json!({ "cve_id": id }))
        .collect();
    let expires = match form.get("expires").trim() {
        "" => Value::Null,
        d => {
            let t = parse_day(d).ok_or_else(|| format!("{}: {d}", ctx.t("allow.bad_date")))?;
            json!(t)
        }
    };
    Ok(json!({ "items": items, "expires_at": expires }))
}

pub async fn allowlist(ctx: Ctx) -> Response {
    let admin = match ctx.require_user() {
        Ok(u) => u.sysadmin,
        Err(r) => return r,
    };
    let a = ctx.call(Method::GET, "/api/v2.0/system/CVEAllowlist", None).await;
    if !a.ok() {
        return refusal(&ctx, &a);
    }
    page(
        &ctx,
        ctx.t("allow.title"),
        Nav::Security,
        html! {
            @if admin { (security_tabs(&ctx, "/admin/cve-allowlist")) }
            p { (ctx.t("allow.hint")) }
            (allowlist_view(&ctx, &a.json))
            @if admin {
                h2 id="allow-edit" { (ctx.t("allow.edit")) }
                form.narrow method="post" action="/admin/cve-allowlist" aria-labelledby="allow-edit" {
                    (csrf(&ctx))
                    (allowlist_fields(&ctx, &a.json, "sys"))
                    button.primary type="submit" { (ctx.t("save")) }
                }
            }
        },
    )
}

pub async fn allowlist_save(ctx: Ctx, form: Form) -> Response {
    let back = "/admin/cve-allowlist";
    if let Err(refused) = ctx.check_form(&form, back) {
        return refused;
    }
    let body = match allowlist_body(&ctx, &form) {
        Ok(b) => b,
        Err(e) => {
            ctx.set_flash(false, &e);
            return ctx.redirect(back);
        }
    };
    ctx.submit(&form, Method::PUT, "/api/v2.0/system/CVEAllowlist", Some(body), ctx.t("saved"), back, back).await
}

/// A project's allowlist in its settings: the system's or its own, with the system's
/// shown for reference (and copied on request).
pub fn project_allowlist(ctx: &Ctx, p: &str, proj: &Value, system: &Value, can: bool) -> Markup {
    let reuse = proj["metadata"]["reuse_sys_cve_allowlist"].as_str().is_none_or(|v| v == "true");
    html! {
        h2 id="allowlist" { (ctx.t("allow.title")) }
        form.narrow method="post" action={ "/projects/" (enc(p)) "/settings/allowlist" } aria-labelledby="allowlist" {
            (csrf(ctx))
            fieldset disabled[!can] {
                legend { (ctx.t("allow.which")) }
                label.check { input type="radio" name="reuse" value="true" checked[reuse]; " " (ctx.t("allow.use_system")) }
                br;
                label.check { input type="radio" name="reuse" value="false" checked[!reuse]; " " (ctx.t("allow.use_project")) }
                (allowlist_fields(ctx, &proj["cve_allowlist"], "proj"))
                button.primary type="submit" { (ctx.t("save")) }
                " "
                button type="submit" name="copy" value="1" { (ctx.t("allow.copy")) }
            }
        }
        h3 { (ctx.t("allow.system")) }
        (allowlist_view(ctx, system))
    }
}

pub async fn project_allowlist_save(ctx: Ctx, Path(p): Path<String>, form: Form) -> Response {
    let back = format!("/projects/{}/settings", enc(&p));
    if let Err(refused) = ctx.check_form(&form, &back) {
        return refused;
    }
    let (reuse, list) = if form.get("copy") == "1" {
        let sys = ctx.call(Method::GET, "/api/v2.0/system/CVEAllowlist", None).await;
        let items: Vec<Value> =
            sys.json["items"].as_array().into_iter().flatten().map(|i| json!({ "cve_id": i["cve_id"] })).collect();
        ("false", json!({ "items": items, "expires_at": sys.json["expires_at"] }))
    } else {
        match allowlist_body(&ctx, &form) {
            Ok(b) => (if form.get("reuse") == "false" { "false" } else { "true" }, b),
            Err(e) => {
                ctx.set_flash(false, &e);
                return ctx.redirect(&back);
            }
        }
    };
    let body = json!({ "metadata": { "reuse_sys_cve_allowlist": reuse }, "cve_allowlist": list });
    let to = format!("{back}#allowlist");
    ctx.submit(&form, Method::PUT, &api_project(&p), Some(body), ctx.t("saved"), &to, &to).await
}

/// What a CVE export may be asked for: (form field, message key, the API's field).
const EXPORT_FIELDS: [(&str, &str, &str); 3] = [
    ("repositories", "exports.repos", "repositories"),
    ("tags", "exports.tags", "tags"),
    ("cves", "exports.cves", "cveIds"),
];

pub async fn exports(ctx: Ctx, uri: Uri) -> Response {
    if let Err(r) = ctx.require_user() {
        return r;
    }
    let a = ctx.call(Method::GET, "/api/v2.0/export/cve/executions", None).await;
    if !a.ok() {
        return refusal(&ctx, &a);
    }
    let q = query(&uri);
    page(
        &ctx,
        ctx.t("exports.title"),
        Nav::Exports,
        html! {
            p { (ctx.t("exports.hint")) }
            h2 id="export-new" { (ctx.t("exports.new")) }
            form.narrow method="post" action="/cve-exports" aria-labelledby="export-new" {
                (csrf(&ctx))
                p { label for="ex_project" { (ctx.t("col.project")) } input id="ex_project" name="project" required value=(q.get("project")); }
                @for (name, key, _) in EXPORT_FIELDS {
                    p { label for={ "ex_" (name) } { (ctx.t(key)) } input id={ "ex_" (name) } name=(name); }
                }
                button.primary type="submit" { (ctx.t("exports.start")) }
            }
            h2 { (ctx.t("exports.yours")) }
            @let items = a.json["items"].as_array().cloned().unwrap_or_default();
            @if items.is_empty() { p { (ctx.t("none")) } } @else {
                table {
                    (head(&ctx, &["col.id", "col.status", "replications.started", "replications.ended", "exports.file"], false))
                    tbody { @for e in &items {
                        @let id = e["id"].as_i64().unwrap_or(0);
                        tr {
                            th scope="row" { (id) }
                            td { (status(&ctx, e["status"].as_str().unwrap_or(""))) @if let Some(t) = e["status_text"].as_str().filter(|t| !t.is_empty()) { br; small { (t) } } }
                            td { (when(&ctx, &e["start_time"])) }
                            td { (when(&ctx, &e["end_time"])) }
                            td { @if e["file_present"].as_bool() == Some(true) {
                                a href={ "/cve-exports/" (id) "/download" } aria-label={ (ctx.t("exports.download")) " " (id) } { (ctx.t("exports.download")) }
                            } @else { (ctx.t("exports.no_file")) } }
                        }
                    } }
                }
            }
        },
    )
}

pub async fn export_start(ctx: Ctx, form: Form) -> Response {
    let back = format!("/cve-exports?project={}", enc(form.get("project").trim()));
    if let Err(refused) = ctx.check_form(&form, &back) {
        return refused;
    }
    let p = ctx.call(Method::GET, &api_project(form.get("project").trim()), None).await;
    if !p.ok() {
        return ctx.after(&p, "", &back);
    }
    let mut body =
        json!({ "job_name": format!("ui-{}", form.get("project").trim()), "projects": [p.json["project_id"]] });
    for (name, _, field) in EXPORT_FIELDS {
        if !form.get(name).is_empty() {
            body[field] = json!(form.get(name));
        }
    }
    let data_type = ("x-scan-data-type", "application/vnd.security.vulnerability.report; version=1.1");
    let a =
        ctx.call_headers(Method::POST, "/api/v2.0/export/cve", Some(body), Some(form.get("_csrf")), &[data_type]).await;
    ctx.after(&a, ctx.t("exports.started"), &back)
}

/// The CSV as the API sends it (once: the API removes the file after a download).
pub async fn export_download(ctx: Ctx, Path(id): Path<String>) -> Response {
    if let Err(r) = ctx.require_user() {
        return r;
    }
    let a = ctx.call(Method::GET, &format!("/api/v2.0/export/cve/download/{}", enc(&id)), None).await;
    if !a.ok() {
        return refusal(&ctx, &a);
    }
    let mut res = a.text.into_response();
    let h = res.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/csv; charset=utf-8"));
    if let Some(d) = a.headers.get(header::CONTENT_DISPOSITION) {
        h.insert(header::CONTENT_DISPOSITION, d.clone());
    }
    ctx.finish(res)
}
