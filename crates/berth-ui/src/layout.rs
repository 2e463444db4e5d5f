//! The page shell (skip link, header, navigation, flash message, main) and the small
//! pieces every page uses: tables, pagination, copyable commands, hidden CSRF fields.

use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use maud::{DOCTYPE, Markup, PreEscaped, html};
use serde_json::Value;

use crate::{Ctx, DateFormat, Lang, Theme, enc};

/// Which main navigation entry is current.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Nav {
    Projects,
    Search,
    Users,
    Robots,
    Audit,
    Config,
    Gc,
    Jobs,
    Quotas,
    Registries,
    Replications,
    Health,
    Security,
    Exports,
    Prefs,
    Labels,
    None,
}

pub fn page(ctx: &Ctx, title: &str, nav: Nav, body: Markup) -> Response {
    page_status(ctx, StatusCode::OK, title, nav, body)
}

pub fn page_status(ctx: &Ctx, status: StatusCode, title: &str, nav: Nav, body: Markup) -> Response {
    let theme = match ctx.theme {
        Theme::Auto => None,
        t => Some(t.name()),
    };
    let link = |n: Nav, href: &str, key: &str| {
        html! { a href=(href) aria-current=[(nav == n).then_some("page")] { (ctx.t(key)) } }
    };
    let markup = html! {
        (DOCTYPE)
        html lang=(ctx.lang.code()) data-theme=[theme] {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · Berth" }
                link rel="stylesheet" href="/assets/ui.css";
                script src="/assets/ui.js" defer {}
            }
            body {
                a.skip href="#main" { (ctx.t("skip")) }
                header {
                    a.brand href="/projects" { "Berth" }
                    nav aria-label=(ctx.t("nav.main")) {
                        (link(Nav::Projects, "/projects", "nav.projects"))
                        (link(Nav::Search, "/search", "nav.search"))
                        @if ctx.user.as_ref().is_some_and(|u| u.sysadmin) {
                            (link(Nav::Users, "/admin/users", "nav.users"))
                            (link(Nav::Robots, "/admin/robots", "nav.robots"))
                            (link(Nav::Audit, "/admin/audit", "nav.audit"))
                            (link(Nav::Config, "/admin/config", "nav.config"))
                            (link(Nav::Labels, "/admin/labels", "nav.labels"))
                            (link(Nav::Quotas, "/admin/quotas", "nav.quotas"))
                            (link(Nav::Registries, "/admin/registries", "nav.registries"))
                            (link(Nav::Replications, "/admin/replications", "nav.replications"))
                            (link(Nav::Gc, "/admin/gc", "nav.gc"))
                            (link(Nav::Jobs, "/admin/jobs", "nav.jobs"))
                            (link(Nav::Health, "/admin/health", "nav.health"))
                            (link(Nav::Security, "/admin/scanners", "nav.security"))
                        }
                        @if ctx.user.is_some() {
                            (link(Nav::Exports, "/cve-exports", "nav.exports"))
                        }
                        (link(Nav::Prefs, "/prefs", "nav.prefs"))
                    }
                    @if let Some(u) = &ctx.user {
                        div.who {
                            span { (ctx.t("signed_in_as")) " " a href="/account" { strong { (u.name) } } }
                            form method="post" action="/logout" {
                                (csrf(ctx))
                                button type="submit" { (ctx.t("signout")) }
                            }
                        }
                    }
                }
                main id="main" tabindex="-1" {
                    (banner(ctx))
                    @if let Some((ok, msg)) = &ctx.flash {
                        @if *ok {
                            p.flash.ok role="status" { "✔ " (msg) }
                        } @else {
                            p.flash.err role="alert" { "✖ " (ctx.t("error")) ": " (msg) }
                        }
                    }
                    h1 { (title) }
                    (body)
                }
            }
        }
    };
    ctx.finish((status, Html(markup.into_string())).into_response())
}

/// Harbor's banner message (`banner_message`: a JSON document with `message`, `type` —
/// success, info, warning or danger —, `closable`, `fromDate` and `toDate`), as every page
/// and the sign-in form show it while the date window holds. A value that is not JSON is
/// shown as a warning. The message is Markdown, as Harbor's portal renders it: links,
/// emphasis and code are kept, the rest shown as text, raw HTML escaped. The value is the
/// one `/api/v2.0/systeminfo` answers anyone, read from this instance's settings cache
/// rather than asked for on every page.
fn banner(ctx: &Ctx) -> Markup {
    let settings = ctx.state.settings.get();
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let Some(b) = Banner::parse(&settings.banner_message).filter(|b| b.shown_at(now)) else {
        return html! {};
    };
    let (sym, role) = match b.kind.as_str() {
        "success" => ("✔", "status"),
        "info" => ("ℹ", "status"),
        "danger" => ("✖", "alert"),
        _ => ("⚠", "alert"),
    };
    html! {
        div class={ "banner " (b.kind) } role=(role) data-banner=(b.message) {
            span { (sym) " " (ctx.t(&format!("banner.{}", b.kind))) ": " (PreEscaped(crate::pages::artifact::inline_markdown(&b.message))) }
            @if b.closable {
                " " button type="button" hidden data-dismiss aria-label=(ctx.t("banner.dismiss")) { "×" }
            }
        }
    }
}

/// Harbor's banner message document, as stored in the `banner_message` setting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Banner {
    pub message: String,
    /// success, info, warning or danger (Harbor's `BannerMessageType`).
    pub kind: String,
    pub closable: bool,
    /// Unix seconds, inclusive; `None` for no bound.
    pub from: Option<i64>,
    pub to: Option<i64>,
    /// The dates as written (`YYYY-MM-DD` when they are days), for the form.
    pub from_day: String,
    pub to_day: String,
}

pub const BANNER_KINDS: [&str; 4] = ["info", "success", "warning", "danger"];

impl Banner {
    /// The stored value, or `None` when there is no message.
    pub fn parse(raw: &str) -> Option<Banner> {
        let raw = raw.trim();
        if raw.is_empty() {
            return None;
        }
        let Ok(Value::Object(v)) = serde_json::from_str::<Value>(raw) else {
            return Some(Banner {
                message: raw.to_string(),
                kind: "warning".into(),
                closable: false,
                from: None,
                to: None,
                from_day: String::new(),
                to_day: String::new(),
            });
        };
        let message = v.get("message").and_then(Value::as_str).unwrap_or("").trim().to_string();
        if message.is_empty() {
            return None;
        }
        let kind =
            v.get("type").and_then(Value::as_str).filter(|k| BANNER_KINDS.contains(k)).unwrap_or("warning").to_string();
        let date = |k: &str| v.get(k).and_then(Value::as_str).map(str::trim).unwrap_or("").to_string();
        let (from_raw, to_raw) = (date("fromDate"), date("toDate"));
        Some(Banner {
            message,
            kind,
            closable: v.get("closable").and_then(Value::as_bool).unwrap_or(false),
            from: banner_time(&from_raw, false),
            to: banner_time(&to_raw, true),
            from_day: banner_day(&from_raw),
            to_day: banner_day(&to_raw),
        })
    }

    pub fn shown_at(&self, now: i64) -> bool {
        self.from.is_none_or(|f| f <= now) && self.to.is_none_or(|t| now <= t)
    }
}

/// A banner date: RFC 3339 (what Harbor's portal writes), `YYYY-MM-DD` or Harbor's
/// `MM/DD/YYYY`; a bare day starts at 00:00:00 UTC, or ends at 23:59:59 for `end`.
fn banner_time(s: &str, end: bool) -> Option<i64> {
    if s.len() >= 19 {
        return parse_rfc3339(s);
    }
    let day = banner_day(s);
    let start = parse_rfc3339(&format!("{day}T00:00:00Z"))?;
    Some(if end { start + 86_399 } else { start })
}

/// The `YYYY-MM-DD` day of a banner date (empty when there is none).
fn banner_day(s: &str) -> String {
    let s = s.trim();
    if let &[m, d, y] = s.split('/').collect::<Vec<_>>().as_slice() {
        return format!("{y:0>4}-{m:0>2}-{d:0>2}");
    }
    s.get(..10).unwrap_or("").to_string()
}

pub fn csrf(ctx: &Ctx) -> Markup {
    html! { input type="hidden" name="_csrf" value=(ctx.csrf); }
}

/// A command shown as selectable text, with a copy button that JavaScript reveals.
pub fn copyable(ctx: &Ctx, label: &str, cmd: &str) -> Markup {
    html! {
        span.copy {
            code { (cmd) }
            button type="button" hidden data-copy=(cmd) data-done=(ctx.t("copied")) aria-label={ (ctx.t("copy")) ": " (label) } {
                (ctx.t("copy"))
            }
        }
    }
}

/// A time from the API (Harbor's RFC 3339 in UTC) in the caller's date format; "—" for
/// none (absent, or Harbor's zero time).
pub fn when(ctx: &Ctx, v: &serde_json::Value) -> Markup {
    match v.as_str().and_then(parse_rfc3339) {
        Some(t) => unix(ctx, t),
        None => html! { "—" },
    }
}

/// Unix seconds in the caller's date format, as a `<time>` element whose `datetime` (and,
/// for relative times, tooltip) is the exact time.
pub fn unix(ctx: &Ctx, t: i64) -> Markup {
    let Ok(d) = time::OffsetDateTime::from_unix_timestamp(t) else { return html! { "—" } };
    let (y, mo, day, h, mi) = (d.year(), u8::from(d.month()), d.day(), d.hour(), d.minute());
    let iso = format!("{y:04}-{mo:02}-{day:02} {h:02}:{mi:02} UTC");
    let datetime = format!("{y:04}-{mo:02}-{day:02}T{h:02}:{mi:02}:{:02}Z", d.second());
    match ctx.dates {
        DateFormat::Iso => html! { time datetime=(datetime) { (iso) } },
        DateFormat::Locale => {
            let text = match ctx.lang {
                Lang::En => format!("{} {day}, {y}, {h:02}:{mi:02} UTC", MONTHS[usize::from(mo) - 1]),
                Lang::Zh => format!("{y}年{mo}月{day}日 {h:02}:{mi:02} UTC"),
            };
            html! { time datetime=(datetime) { (text) } }
        }
        DateFormat::Relative => {
            let now = time::OffsetDateTime::now_utc().unix_timestamp();
            html! { time datetime=(datetime) title=(iso) { (relative(ctx, now - t)) } }
        }
    }
}

const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

/// `secs` ago (negative: from now) in the largest whole unit: "3 hours ago", "in 2 days".
fn relative(ctx: &Ctx, secs: i64) -> String {
    const UNITS: [(i64, &str); 6] = [
        (365 * 86_400, "year"),
        (30 * 86_400, "month"),
        (86_400, "day"),
        (3_600, "hour"),
        (60, "minute"),
        (1, "second"),
    ];
    let a = secs.abs();
    if a < 60 {
        return ctx.t("dates.now").to_string();
    }
    let (size, unit) = UNITS.iter().find(|(s, _)| a >= *s).copied().unwrap_or((1, "second"));
    let n = a / size;
    let key = format!("dates.{unit}{}", if n == 1 { "" } else { "s" });
    let amount = crate::i18n::t(ctx.lang, &key).replace('#', &n.to_string());
    ctx.t(if secs >= 0 { "dates.ago" } else { "dates.in" }).replace('#', &amount)
}

/// Harbor's `2024-01-31T23:59:59(.fff)Z`; `None` for anything else and for the zero time.
fn parse_rfc3339(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() < 19 || s.starts_with("0001") || b[4] != b'-' || b[7] != b'-' || b[13] != b':' || b[16] != b':' {
        return None;
    }
    let n = |r: std::ops::Range<usize>| s.get(r)?.parse::<u32>().ok();
    let month = time::Month::try_from(u8::try_from(n(5..7)?).ok()?).ok()?;
    let date =
        time::Date::from_calendar_date(i32::try_from(n(0..4)?).ok()?, month, u8::try_from(n(8..10)?).ok()?).ok()?;
    let clock = time::Time::from_hms(
        u8::try_from(n(11..13)?).ok()?,
        u8::try_from(n(14..16)?).ok()?,
        u8::try_from(n(17..19)?).ok()?,
    )
    .ok()?;
    Some(time::PrimitiveDateTime::new(date, clock).assume_utc().unix_timestamp())
}

pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 { format!("{n} B") } else { format!("{v:.1} {}", UNITS[u]) }
}

/// `base?k=v&…&page=p`, empty fields left out.
fn page_href(base: &str, params: &[(&str, &str)], p: u64) -> String {
    let mut q: Vec<String> =
        params.iter().filter(|(_, v)| !v.is_empty()).map(|(k, v)| format!("{k}={}", enc(v))).collect();
    q.push(format!("page={p}"));
    format!("{base}?{}", q.join("&"))
}

/// Offset pagination for API lists: previous/next links keeping the other query fields.
pub fn pager(ctx: &Ctx, base: &str, params: &[(&str, &str)], page: u64, page_size: u64, total: u64) -> Markup {
    let href = |p: u64| page_href(base, params, p);
    let last = total.div_ceil(page_size.max(1)).max(1);
    html! {
        nav.pager aria-label=(ctx.t("pagination")) {
            @if page > 1 { a href=(href(page - 1)) rel="prev" { "← " (ctx.t("prev")) } }
            span aria-current="page" { (page) " / " (last) " · " (total) }
            @if page < last { a href=(href(page + 1)) rel="next" { (ctx.t("next")) " →" } }
        }
    }
}

/// A refusal or failure shown as a page.
pub fn error_page(ctx: &Ctx, status: StatusCode, msg: &str) -> Response {
    page_status(ctx, status, ctx.t("error"), Nav::None, html! { p.flash.err role="alert" { "✖ " (msg) } })
}

/// The tabs of a project's pages.
pub fn project_tabs(ctx: &Ctx, p: &str, current: &str) -> Markup {
    let tabs = [
        ("summary", "tab.summary"),
        ("repos", "tab.repos"),
        ("members", "tab.members"),
        ("robots", "tab.robots"),
        ("labels", "tab.labels"),
        ("immutability", "tab.immutability"),
        ("retention", "tab.retention"),
        ("signatures", "tab.signatures"),
        ("scanner", "tab.scanner"),
        ("webhooks", "tab.webhooks"),
        ("audit", "tab.audit"),
        ("settings", "tab.settings"),
    ];
    // The summary is the project's own URL.
    let href = |slug: &str| match slug {
        "summary" => format!("/projects/{}", enc(p)),
        _ => format!("/projects/{}/{slug}", enc(p)),
    };
    let tabs: Vec<(String, &str)> = tabs.iter().map(|(slug, key)| (href(slug), *key)).collect();
    tab_nav(ctx, "nav.project", &tabs, &href(current))
}

/// A row of tabs (`href`, message key), the one at `current` marked as the page.
fn tab_nav<H: AsRef<str>>(ctx: &Ctx, label: &str, tabs: &[(H, &str)], current: &str) -> Markup {
    html! {
        nav.tabs aria-label=(ctx.t(label)) {
            @for (href, key) in tabs {
                a href=(href.as_ref()) aria-current=[(href.as_ref() == current).then_some("page")] { (ctx.t(key)) }
            }
        }
    }
}

/// The tabs of the clean-up pages: garbage collection and log rotation (Harbor's
/// "Clean Up").
pub fn cleanup_tabs(ctx: &Ctx, current: &str) -> Markup {
    tab_nav(ctx, "nav.cleanup", &[("/admin/gc", "gc.title"), ("/admin/log-rotation", "purge.title")], current)
}

/// The tabs of the system's security pages: scanners, scan all, security hub, allowlist.
pub fn security_tabs(ctx: &Ctx, current: &str) -> Markup {
    let tabs = [
        ("/admin/scanners", "sec.scanners"),
        ("/admin/scan-all", "sec.scan_all"),
        ("/admin/security", "sec.hub"),
        ("/admin/cve-allowlist", "sec.allowlist"),
    ];
    tab_nav(ctx, "nav.security", &tabs, current)
}

/// Paging when the API may not count (`-1` above a thousand): the next link while pages
/// come back full.
pub fn pager_open(ctx: &Ctx, base: &str, params: &[(&str, &str)], page: u64, full: bool, total: Option<u64>) -> Markup {
    let href = |p: u64| page_href(base, params, p);
    html! {
        nav.pager aria-label=(ctx.t("pagination")) {
            @if page > 1 { a href=(href(page - 1)) rel="prev" { "← " (ctx.t("prev")) } }
            span aria-current="page" { (page) @if let Some(t) = total { " · " (t) } @else { " · 1000+" } }
            @if full { a href=(href(page + 1)) rel="next" { (ctx.t("next")) " →" } }
        }
    }
}

/// A confirm page for a destructive action: works with JavaScript off.
pub fn confirm(ctx: &Ctx, what: &str, action: &str, back: &str) -> Response {
    page(
        ctx,
        ctx.t("confirm.title"),
        Nav::None,
        html! {
            form method="post" action=(action) {
                (csrf(ctx))
                p { (ctx.t("confirm.delete")) " " strong { (what) } (ctx.t("confirm.end")) }
                button.danger type="submit" { (ctx.t("delete")) }
                " "
                a href=(back) { (ctx.t("cancel")) }
            }
        },
    )
}

/// A job or task status in words (the page's language where the catalogue has the word)
/// with a symbol, never by colour alone.
pub fn status(ctx: &Ctx, s: &str) -> Markup {
    let words = crate::i18n::lookup(ctx.lang, &format!("st.{}", s.to_ascii_lowercase())).unwrap_or(s);
    let (sym, class) = match s.to_ascii_lowercase().as_str() {
        "success" | "succeed" | "succeeded" | "healthy" | "streaming" => ("✔", "good"),
        "error" | "failed" | "stopped" | "unhealthy" => ("✖", "bad"),
        _ => ("◷", "neutral"),
    };
    html! { span class={ "status " (class) } { (sym) " " (words) } }
}

/// Enabled or disabled, in words with a symbol.
pub fn enabled(ctx: &Ctx, on: bool) -> Markup {
    html! { @if on { "✔ " (ctx.t("enabled")) } @else { "✖ " (ctx.t("disabled")) } }
}

/// A one-button form that POSTs to `action` with the CSRF token: deletes, runs, toggles.
/// `name` is the accessible name (the button's words plus what it acts on).
pub fn post_button(ctx: &Ctx, action: &str, words: &str, name: &str, danger: bool) -> Markup {
    html! {
        form.inline method="post" action=(action) {
            (csrf(ctx))
            @if danger {
                button.danger type="submit" aria-label=(name) { (words) }
            } @else {
                button type="submit" aria-label=(name) { (words) }
            }
        }
    }
}

/// A header row of column names (message keys), `scope="col"`, with an actions column
/// when the caller may act on rows.
pub fn head(ctx: &Ctx, keys: &[&str], actions: bool) -> Markup {
    html! {
        thead { tr {
            @for k in keys { th scope="col" { (ctx.t(k)) } }
            @if actions { th scope="col" { (ctx.t("col.actions")) } }
        } }
    }
}

/// A list as a table (column names as message keys, an actions column when the caller
/// may act), one row per item, or "none" when there is nothing.
pub fn list_table(ctx: &Ctx, keys: &[&str], actions: bool, items: &[Value], row: impl Fn(&Value) -> Markup) -> Markup {
    html! {
        @if items.is_empty() { p { (ctx.t("none")) } } @else {
            table {
                (head(ctx, keys, actions))
                tbody { @for item in items { (row(item)) } }
            }
        }
    }
}

/// A job's log (plain text from the API) as a page, with the way back.
pub fn log_page(ctx: &Ctx, title: &str, back: &str, text: &str) -> Response {
    page(
        ctx,
        title,
        Nav::None,
        html! {
            p { a href=(back) { "← " (ctx.t("back")) } }
            @if text.trim().is_empty() { p { (ctx.t("log.empty")) } } @else { pre.log tabindex="0" { (text) } }
        },
    )
}

/// A `dl` of a quota: used of limit, with the share in words (not by colour or bar alone).
pub fn quota(ctx: &Ctx, used: i64, hard: i64) -> Markup {
    html! {
        @if hard < 0 {
            (bytes(used.max(0) as u64)) " " (ctx.t("quota.of")) " " (ctx.t("quota.unlimited"))
        } @else {
            @let pct = if hard > 0 { used.max(0) as f64 * 100.0 / hard as f64 } else { 100.0 };
            meter min="0" max=(hard) value=(used.max(0)) aria-hidden="true" {}
            " " (bytes(used.max(0) as u64)) " " (ctx.t("quota.of")) " " (bytes(hard as u64)) " (" (format!("{pct:.0}")) "%)"
            @if pct >= 100.0 { " ⚠ " (ctx.t("quota.full")) }
        }
    }
}

/// A sortable column's header: a link that sorts the list by `field` (ascending, or
/// descending when it is already sorted ascending by it), and `aria-sort` on the column
/// the list is sorted by. `sort` is the API's `sort` value (`field` or `-field`); `href`
/// makes the link for a sort value (keeping the page's other query fields).
pub fn sort_th(ctx: &Ctx, key: &str, field: &str, sort: &str, href: impl Fn(&str) -> String) -> Markup {
    let desc = format!("-{field}");
    let (aria, next, arrow) = if sort == field {
        (Some("ascending"), desc.as_str(), " ▲")
    } else if sort == desc {
        (Some("descending"), field, " ▼")
    } else {
        (None, field, "")
    };
    html! {
        th scope="col" aria-sort=[aria] {
            a href=(href(next)) { (ctx.t(key)) span aria-hidden="true" { (arrow) } }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn banners_and_their_windows() {
        assert_eq!(Banner::parse(""), None);
        assert_eq!(Banner::parse(r#"{"message":"  "}"#), None, "no message, no banner");
        // Not JSON: the text, as a warning.
        let b = Banner::parse("maintenance").unwrap();
        assert_eq!((b.message.as_str(), b.kind.as_str(), b.from, b.to), ("maintenance", "warning", None, None));
        assert!(b.shown_at(0));
        // Harbor's portal: RFC 3339 times; an unknown type is a warning.
        let b = Banner::parse(
            r#"{"message":"m","type":"danger","closable":true,"fromDate":"2024-01-31T16:00:00.000Z","toDate":"2024-02-01T00:00:00.000Z"}"#,
        )
        .unwrap();
        assert_eq!(
            (b.kind.as_str(), b.closable, b.from_day.as_str(), b.to_day.as_str()),
            ("danger", true, "2024-01-31", "2024-02-01")
        );
        let from = parse_rfc3339("2024-01-31T16:00:00Z").unwrap();
        assert!(
            !b.shown_at(from - 1)
                && b.shown_at(from)
                && b.shown_at(from + 8 * 3600)
                && !b.shown_at(from + 8 * 3600 + 1)
        );
        assert_eq!(Banner::parse(r#"{"message":"m","type":"loud"}"#).unwrap().kind, "warning");
        // Days (ours and Harbor's MM/DD/YYYY): the whole of both days.
        let b = Banner::parse(r#"{"message":"m","fromDate":"2024-01-31","toDate":"02/01/2024"}"#).unwrap();
        let day = parse_rfc3339("2024-01-31T00:00:00Z").unwrap();
        assert_eq!((b.from, b.to), (Some(day), Some(day + 2 * 86_400 - 1)));
        assert_eq!(b.to_day, "2024-02-01");
        // Only one bound.
        let b = Banner::parse(r#"{"message":"m","toDate":"2024-01-31"}"#).unwrap();
        assert!(b.shown_at(0) && !b.shown_at(day + 86_400));
    }
}
