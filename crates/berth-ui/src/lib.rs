//! Berth's web UI: server-rendered HTML pages (maud, compiled into the binary) with a
//! little progressive JavaScript and CSS, mounted on `/` by the `berth` binary.
//!
//! The UI implements no rule of its own. Every read and every change is a request to
//! Harbor's `/api/v2.0` made in process ([`berth_http::harbor_api`], no socket, no second
//! login): the browser's `sid` cookie is forwarded, so the API's session machinery decides
//! who is calling, renews and ends sessions, and checks the CSRF token each form carries
//! (sent on as `X-Harbor-CSRF-Token`). Permissions, validation, immutability, audit entries
//! and error messages are therefore exactly the API's. The one read that does not go
//! through the API is the tags view's page of rows, a keyset scan of the catalog
//! (`CatalogStore::list_tags_after`), made only after the API has answered the
//! repository for this caller.
//!
//! Pages work with JavaScript off: links are links, forms POST and redirect (303), and
//! destructive actions go through a confirm page. JavaScript adds copy buttons and
//! nothing else.

// A page handler's early exit is the `Response` to send (a redirect to sign-in, the
// API's refusal); it is built once per request on that path, so boxing buys nothing.
#![allow(clippy::result_large_err)]

mod i18n;
mod layout;
mod pages;

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, Request, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use berth_http::AppState;
use http_body_util::BodyExt;
use serde_json::Value;
use tower::ServiceExt;

pub use i18n::{Lang, catalogue};

/// What every UI handler shares: the in-process API.
pub struct Ui {
    api: Router,
}

/// The UI's routes, to merge into the main router (`berth_http::router_with`).
pub fn router(state: &AppState) -> Router<AppState> {
    let ui = Arc::new(Ui { api: berth_http::harbor_api(state) });
    Router::new()
        .route("/", get(|| async { Redirect::to("/projects") }))
        .route("/assets/ui.css", get(css))
        .route("/assets/ui.js", get(js))
        .route("/login", get(pages::auth::login_form).post(pages::auth::login))
        .route("/logout", post(pages::auth::logout))
        .route("/prefs", get(pages::auth::prefs_form).post(pages::auth::prefs))
        .route("/account", get(pages::auth::account).post(pages::auth::change_password))
        .route("/account/profile", post(pages::auth::save_profile))
        .route("/projects", get(pages::projects::list).post(pages::projects::create))
        .route("/projects/{p}", get(pages::summary::show))
        .route("/projects/{p}/delete", get(pages::projects::confirm_delete).post(pages::projects::delete))
        .route("/projects/{p}/repos", get(pages::repos::list))
        .route("/projects/{p}/repos/-/delete", post(pages::projects::delete_repos))
        .route("/projects/{p}/repos/{*rest}", get(pages::repos::get).post(pages::repos::post))
        .route("/projects/{p}/members", get(pages::members::list).post(pages::members::add))
        .route("/projects/{p}/members/{mid}/delete", post(pages::members::remove))
        .route("/projects/{p}/members/{mid}/role", post(pages::members::change_role))
        .route("/projects/{p}/robots", get(pages::robots::list).post(pages::robots::project_create))
        .route("/projects/{p}/robots/{id}/edit", get(pages::robots::project_edit).post(pages::robots::project_update))
        .route("/projects/{p}/robots/{id}/toggle", post(pages::robots::project_toggle))
        .route("/projects/{p}/robots/{id}/refresh", post(pages::robots::project_refresh))
        .route(
            "/projects/{p}/robots/{id}/delete",
            get(pages::robots::project_confirm_delete).post(pages::robots::project_delete),
        )
        .route("/projects/{p}/labels", get(pages::labels::list).post(pages::labels::create))
        .route("/projects/{p}/labels/{id}/edit", get(pages::labels::edit).post(pages::labels::update))
        .route("/projects/{p}/labels/{id}/delete", post(pages::labels::delete))
        .route("/projects/{p}/settings", get(pages::projects::settings).post(pages::projects::save_settings))
        .route("/projects/{p}/webhooks", get(pages::policies::webhooks).post(pages::policies::webhook_create))
        .route(
            "/projects/{p}/webhooks/{id}/edit",
            get(pages::policies::webhook_edit).post(pages::policies::webhook_update),
        )
        .route("/projects/{p}/webhooks/{id}/delete", post(pages::policies::webhook_delete))
        .route("/projects/{p}/webhooks/{id}/toggle", post(pages::policies::webhook_toggle))
        .route("/projects/{p}/webhooks/{id}/test", post(pages::policies::webhook_test))
        .route("/projects/{p}/webhooks/{id}/targets", post(pages::policies::webhook_target_add))
        .route(
            "/projects/{p}/webhooks/{id}/targets/{i}/edit",
            get(pages::policies::webhook_target_edit).post(pages::policies::webhook_target_update),
        )
        .route("/projects/{p}/webhooks/{id}/targets/{i}/delete", post(pages::policies::webhook_target_remove))
        .route("/projects/{p}/webhooks/{id}/executions", get(pages::policies::webhook_executions))
        .route("/projects/{p}/webhooks/{id}/executions/{eid}", get(pages::policies::webhook_tasks))
        .route("/projects/{p}/webhooks/{id}/executions/{eid}/tasks/{tid}/log", get(pages::policies::webhook_task_log))
        .route("/projects/{p}/retention", get(pages::retention::show))
        .route("/projects/{p}/retention/rules", post(pages::retention::add_rule))
        .route("/projects/{p}/retention/rules/{i}/{action}", post(pages::retention::rule_action))
        .route("/projects/{p}/retention/schedule", post(pages::retention::set_schedule))
        .route("/projects/{p}/retention/run", post(pages::retention::run))
        .route("/projects/{p}/retention/executions/{eid}", get(pages::retention::execution))
        .route("/projects/{p}/retention/executions/{eid}/stop", post(pages::retention::stop))
        .route("/projects/{p}/retention/executions/{eid}/tasks/{tid}/log", get(pages::retention::task_log))
        .route("/projects/{p}/signatures", get(pages::signatures::show).post(pages::signatures::add))
        .route("/projects/{p}/signatures/{field}/{i}/delete", post(pages::signatures::remove))
        .route("/projects/{p}/immutability", get(pages::policies::immutability).post(pages::policies::immutable_create))
        .route("/projects/{p}/immutability/{id}/delete", post(pages::policies::immutable_delete))
        .route(
            "/projects/{p}/immutability/{id}/edit",
            get(pages::policies::immutable_edit).post(pages::policies::immutable_update),
        )
        .route("/projects/{p}/immutability/{id}/toggle", post(pages::policies::immutable_toggle))
        .route("/projects/{p}/audit", get(pages::admin::project_audit))
        .route("/admin/users", get(pages::admin::users).post(pages::admin::user_create))
        .route("/admin/users/-/delete", post(pages::admin::users_delete))
        .route("/admin/users/{id}/sysadmin/{flag}", post(pages::admin::user_sysadmin))
        .route("/admin/users/{id}/password", get(pages::admin::user_password_form).post(pages::admin::user_password))
        .route("/admin/users/{id}/delete", get(pages::admin::user_confirm_delete).post(pages::admin::user_delete))
        .route("/admin/labels", get(pages::labels::global_list).post(pages::labels::global_create))
        .route("/admin/labels/{id}/edit", get(pages::labels::global_edit).post(pages::labels::global_update))
        .route("/admin/labels/{id}/delete", post(pages::labels::global_delete))
        .route("/admin/log-rotation", get(pages::admin::log_rotation).post(pages::admin::log_rotation_save))
        .route("/admin/log-rotation/{id}/log", get(pages::admin::log_rotation_log))
        .route("/admin/log-rotation/{id}/stop", post(pages::admin::log_rotation_stop))
        .route("/admin/jobs/queues/{kind}", get(pages::admin::queue_jobs))
        .route("/admin/jobs/queues/{kind}/{action}", post(pages::admin::queue_action))
        .route("/admin/jobs/{id}/stop", post(pages::admin::job_stop))
        .route("/admin/jobs/{id}/log", get(pages::admin::job_log))
        .route("/admin/robots", get(pages::robots::system_list).post(pages::robots::system_create))
        .route("/admin/robots/{id}/edit", get(pages::robots::system_edit).post(pages::robots::system_update))
        .route("/admin/robots/{id}/toggle", post(pages::robots::system_toggle))
        .route("/admin/robots/{id}/refresh", post(pages::robots::system_refresh))
        .route(
            "/admin/robots/{id}/delete",
            get(pages::robots::system_confirm_delete).post(pages::robots::system_delete),
        )
        .route("/admin/audit", get(pages::admin::audit))
        .route("/admin/config", get(pages::admin::config).post(pages::admin::config_save))
        .route("/admin/gc", get(pages::admin::gc).post(pages::admin::gc_run))
        .route("/admin/gc/schedule", post(pages::admin::gc_schedule))
        .route("/admin/gc/preview", get(pages::admin::gc_preview).post(pages::admin::gc_preview_run))
        .route("/admin/gc/{id}/log", get(pages::admin::gc_log))
        .route("/admin/gc/{id}/stop", post(pages::admin::gc_stop))
        .route("/admin/quotas", get(pages::system::quotas))
        .route("/admin/quotas/{id}", post(pages::system::quota_set))
        .route("/admin/health", get(pages::system::health))
        .route("/admin/registries", get(pages::replication::registries).post(pages::replication::registry_create))
        .route("/admin/registries/{id}/ping", post(pages::replication::registry_ping))
        .route(
            "/admin/registries/{id}/edit",
            get(pages::replication::registry_edit).post(pages::replication::registry_update),
        )
        .route("/admin/registries/{id}/delete", post(pages::replication::registry_delete))
        .route("/admin/replications", get(pages::replication::replications).post(pages::replication::policy_create))
        .route(
            "/admin/replications/{id}/edit",
            get(pages::replication::policy_edit).post(pages::replication::policy_update),
        )
        .route("/admin/replications/{id}/run", post(pages::replication::policy_run))
        .route("/admin/replications/{id}/delete", post(pages::replication::policy_delete))
        .route("/admin/replications/executions/{id}", get(pages::replication::execution))
        .route("/admin/replications/executions/{id}/stop", post(pages::replication::execution_stop))
        .route("/admin/replications/executions/{id}/tasks/{tid}/log", get(pages::replication::task_log))
        .route("/admin/jobs", get(pages::admin::jobs))
        .route("/admin/scanners", get(pages::scanners::list).post(pages::scanners::create))
        .route("/admin/scanners/{id}", get(pages::scanners::detail).post(pages::scanners::update))
        .route("/admin/scanners/{id}/{action}", post(pages::scanners::action))
        .route("/projects/{p}/scanner", get(pages::scanners::project_page).post(pages::scanners::project_choose))
        .route("/admin/scan-all", get(pages::hub::scan_all).post(pages::hub::scan_all_now))
        .route("/admin/scan-all/schedule", post(pages::hub::scan_all_schedule))
        .route("/admin/scan-all/stop", post(pages::hub::scan_all_stop))
        .route("/admin/security", get(pages::hub::security))
        .route("/admin/security/vulnerabilities.csv", get(pages::hub::security_csv))
        .route("/admin/cve-allowlist", get(pages::hub::allowlist).post(pages::hub::allowlist_save))
        .route("/projects/{p}/settings/allowlist", post(pages::hub::project_allowlist_save))
        .route("/cve-exports", get(pages::hub::exports).post(pages::hub::export_start))
        .route("/cve-exports/{id}/download", get(pages::hub::export_download))
        .route("/search", get(pages::search::search))
        .route("/account/sign-in", get(|| async { Redirect::permanent("/login") }))
        .route("/harbor/{*rest}", get(pages::harbor_redirect))
        .route("/harbor", get(|| async { Redirect::permanent("/projects") }))
        .layer(axum::Extension(ui))
}

async fn css() -> Response {
    asset("text/css; charset=utf-8", include_str!("assets/ui.css"))
}

async fn js() -> Response {
    asset("text/javascript; charset=utf-8", include_str!("assets/ui.js"))
}

fn asset(kind: &'static str, body: &'static str) -> Response {
    ([(header::CONTENT_TYPE, kind), (header::CACHE_CONTROL, "public, max-age=300")], body).into_response()
}

/// The pull client a user prefers, for the commands the pages show.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Client {
    Docker,
    Podman,
    Nerdctl,
    Skopeo,
    Oras,
}

impl Client {
    pub const ALL: [Client; 5] = [Client::Docker, Client::Podman, Client::Nerdctl, Client::Skopeo, Client::Oras];

    pub fn name(self) -> &'static str {
        match self {
            Client::Docker => "docker",
            Client::Podman => "podman",
            Client::Nerdctl => "nerdctl",
            Client::Skopeo => "skopeo",
            Client::Oras => "oras",
        }
    }

    fn parse(s: &str) -> Option<Client> {
        Client::ALL.into_iter().find(|c| c.name() == s)
    }

    /// A command that works when pasted: `host/repo` and `:tag` or `@digest`.
    pub fn pull(self, host: &str, repo: &str, reference: &str) -> String {
        let sep = if reference.contains(':') { '@' } else { ':' };
        let image = format!("{host}/{repo}{sep}{reference}");
        match self {
            Client::Skopeo => {
                let last = repo.rsplit('/').next().unwrap_or(repo);
                let dir =
                    format!("{last}-{}", reference.trim_start_matches("sha256:").chars().take(12).collect::<String>());
                format!("skopeo copy docker://{image} dir:{dir}")
            }
            c => format!("{} pull {image}", c.name()),
        }
    }
}

/// The theme: the system's choice, or forced light or dark.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Theme {
    Auto,
    Light,
    Dark,
}

impl Theme {
    pub const ALL: [Theme; 3] = [Theme::Auto, Theme::Light, Theme::Dark];

    pub fn name(self) -> &'static str {
        match self {
            Theme::Auto => "auto",
            Theme::Light => "light",
            Theme::Dark => "dark",
        }
    }

    fn parse(s: &str) -> Option<Theme> {
        Theme::ALL.into_iter().find(|t| t.name() == s)
    }
}

/// How dates are shown: ISO 8601 in UTC (the default), relative to now ("5 minutes ago",
/// the exact time in a tooltip), or spelled out in the page's language.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DateFormat {
    Iso,
    Relative,
    Locale,
}

impl DateFormat {
    pub const ALL: [DateFormat; 3] = [DateFormat::Iso, DateFormat::Relative, DateFormat::Locale];

    pub fn name(self) -> &'static str {
        match self {
            DateFormat::Iso => "iso",
            DateFormat::Relative => "relative",
            DateFormat::Locale => "locale",
        }
    }

    fn parse(s: &str) -> Option<DateFormat> {
        DateFormat::ALL.into_iter().find(|f| f.name() == s)
    }
}

/// The signed-in user, as `GET /api/v2.0/users/current` shows them.
#[derive(Debug, Clone)]
pub struct User {
    pub id: i64,
    pub name: String,
    pub sysadmin: bool,
}

/// One browser request's context: who (through the API), the CSRF token the API expects,
/// preferences from cookies, and cookies to pass back (session renewal, flash).
pub struct Ctx {
    ui: Arc<Ui>,
    pub state: AppState,
    cookie: Option<HeaderValue>,
    pub csrf: String,
    pub user: Option<User>,
    pub lang: Lang,
    pub theme: Theme,
    pub client: Client,
    pub dates: DateFormat,
    /// The path and query of this request (for `next=` and redirects back).
    pub here: String,
    pub host: String,
    /// A message from the previous POST (`ok:` or `err:` prefixed).
    pub flash: Option<(bool, String)>,
    set_cookies: std::sync::Mutex<Vec<HeaderValue>>,
}

fn cookie_value<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    h.get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

fn percent_decode(s: &str) -> String {
    form_urlencoded::parse(format!("x={s}").as_bytes()).next().map(|(_, v)| v.into_owned()).unwrap_or_default()
}

pub(crate) fn enc(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

impl FromRequestParts<AppState> for Ctx {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let ui = parts
            .extensions
            .get::<Arc<Ui>>()
            .cloned()
            .ok_or_else(|| StatusCode::INTERNAL_SERVER_ERROR.into_response())?;
        let h = &parts.headers;
        let lang = cookie_value(h, "lang")
            .and_then(Lang::parse)
            .or_else(|| {
                h.get(header::ACCEPT_LANGUAGE)
                    .and_then(|v| v.to_str().ok())
                    .map(|v| if v.trim_start().to_ascii_lowercase().starts_with("zh") { Lang::Zh } else { Lang::En })
            })
            .unwrap_or(Lang::En);
        let theme = cookie_value(h, "theme").and_then(Theme::parse).unwrap_or(Theme::Auto);
        let client = cookie_value(h, "client").and_then(Client::parse).unwrap_or(Client::Docker);
        let dates = cookie_value(h, "datefmt").and_then(DateFormat::parse).unwrap_or(DateFormat::Iso);
        let flash = cookie_value(h, "flash").map(percent_decode).and_then(|f| {
            f.strip_prefix("ok:")
                .map(|m| (true, m.to_string()))
                .or_else(|| f.strip_prefix("err:").map(|m| (false, m.to_string())))
        });
        let host = if state.external_url.is_empty() {
            h.get(header::HOST).and_then(|v| v.to_str().ok()).unwrap_or("127.0.0.1").to_string()
        } else {
            let u = state.external_url.trim_end_matches('/');
            u.split_once("://").map_or(u, |(_, rest)| rest).to_string()
        };
        // Only the session cookie goes to the API: the UI's own cookies mean nothing there.
        let cookie = cookie_value(h, "sid").and_then(|v| HeaderValue::from_str(&format!("sid={v}")).ok());
        let mut ctx = Ctx {
            ui,
            state: state.clone(),
            cookie,
            csrf: String::new(),
            user: None,
            lang,
            theme,
            client,
            dates,
            here: parts.uri.path_and_query().map_or("/", |p| p.as_str()).to_string(),
            host,
            flash,
            set_cookies: Default::default(),
        };
        if flash_clear(&ctx) {
            ctx.add_cookie("flash=; Path=/; Max-Age=0; SameSite=Lax");
        }
        let me = ctx.call(Method::GET, "/api/v2.0/users/current", None).await;
        if let Some(t) = me.headers.get("x-harbor-csrf-token").and_then(|v| v.to_str().ok()) {
            ctx.csrf = t.to_string();
        }
        // A renewed session cookie goes back to the browser.
        for c in me.headers.get_all(header::SET_COOKIE) {
            ctx.set_cookies.lock().expect("not poisoned").push(c.clone());
        }
        if me.status == StatusCode::OK {
            ctx.user = Some(User {
                id: me.json["user_id"].as_i64().unwrap_or(0),
                name: me.json["username"].as_str().unwrap_or("").to_string(),
                sysadmin: me.json["sysadmin_flag"].as_bool().unwrap_or(false),
            });
        }
        Ok(ctx)
    }
}

fn flash_clear(ctx: &Ctx) -> bool {
    ctx.flash.is_some()
}

/// An in-process API answer.
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub json: Value,
    pub text: String,
}

impl Answer {
    /// No answer (nothing was asked): an empty list.
    pub fn empty() -> Answer {
        Answer {
            status: StatusCode::OK,
            headers: HeaderMap::new(),
            json: Value::Array(Vec::new()),
            text: String::new(),
        }
    }

    pub fn ok(&self) -> bool {
        self.status.is_success()
    }

    /// The API's own error message (Harbor's envelope), for showing to the user.
    pub fn error(&self) -> String {
        self.json["errors"][0]["message"]
            .as_str()
            .map(str::to_string)
            .unwrap_or_else(|| format!("{} {}", self.status.as_u16(), self.text.chars().take(200).collect::<String>()))
    }

    pub fn total(&self) -> Option<u64> {
        self.headers.get("x-total-count").and_then(|v| v.to_str().ok()).and_then(|v| v.parse().ok())
    }

    pub fn items(&self) -> &[Value] {
        self.json.as_array().map_or(&[], |v| v.as_slice())
    }
}

impl Ctx {
    pub fn add_cookie(&self, c: &str) {
        if let Ok(v) = HeaderValue::from_str(c) {
            self.set_cookies.lock().expect("not poisoned").push(v);
        }
    }

    pub fn set_flash(&self, ok: bool, msg: &str) {
        let v = format!("{}:{msg}", if ok { "ok" } else { "err" });
        self.add_cookie(&format!("flash={}; Path=/; Max-Age=60; SameSite=Lax; HttpOnly", enc(&v)));
    }

    pub fn t(&self, key: &str) -> &'static str {
        i18n::t(self.lang, key)
    }

    /// Calls the API in process as this browser's session. Unsafe methods carry the CSRF
    /// token the form sent (checked by the API's session layer).
    pub async fn call(&self, method: Method, path: &str, body: Option<Value>) -> Answer {
        self.call_with(method, path, body, None).await
    }

    pub async fn call_with(&self, method: Method, path: &str, body: Option<Value>, csrf: Option<&str>) -> Answer {
        self.call_headers(method, path, body, csrf, &[]).await
    }

    /// [`Ctx::call_with`] with request headers an operation needs besides the body
    /// (`X-Scan-Data-Type` of a CVE export).
    pub async fn call_headers(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
        csrf: Option<&str>,
        headers: &[(&str, &str)],
    ) -> Answer {
        let mut req = Request::builder().method(method).uri(path).header(header::HOST, self.host.as_str());
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        if let Some(c) = &self.cookie {
            req = req.header(header::COOKIE, c.clone());
        }
        if let Some(t) = csrf {
            req = req.header("x-harbor-csrf-token", t);
        }
        let req = match body {
            Some(b) => req
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(serde_json::to_vec(&b).unwrap_or_default())),
            None => req.body(Body::empty()),
        };
        let req = match req {
            Ok(r) => r,
            Err(e) => return internal(format!("building an API request for {path}: {e}")),
        };
        self.send(req).await
    }

    async fn send(&self, req: Request<Body>) -> Answer {
        let res = match self.ui.api.clone().oneshot(req).await {
            Ok(r) => r,
            Err(e) => match e {},
        };
        let (parts, body) = res.into_parts();
        let bytes = match body.collect().await {
            Ok(b) => b.to_bytes(),
            Err(e) => return internal(format!("reading an API answer: {e}")),
        };
        let text = String::from_utf8_lossy(&bytes).into_owned();
        let json = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Answer { status: parts.status, headers: parts.headers, json, text }
    }

    /// A POSTed form's CSRF token, if it is the session's (or, before sign-in, the
    /// anonymous one). The API checks it again on every change it is sent with.
    fn csrf_ok(&self, form: &Form) -> bool {
        let sent = form.get("_csrf");
        !self.csrf.is_empty() && sent.len() == self.csrf.len() && {
            let mut diff = 0u8;
            for (a, b) in sent.bytes().zip(self.csrf.bytes()) {
                diff |= a ^ b;
            }
            diff == 0
        }
    }

    /// A page response with the cookies gathered on the way.
    pub fn finish(&self, mut res: Response) -> Response {
        let h = res.headers_mut();
        for c in self.set_cookies.lock().expect("not poisoned").drain(..) {
            h.append(header::SET_COOKIE, c);
        }
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        h.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(
                "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; frame-ancestors 'none'",
            ),
        );
        h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
        res
    }

    /// 303 to `to`, with the cookies gathered on the way (POST-redirect-GET).
    pub fn redirect(&self, to: &str) -> Response {
        self.finish(Redirect::to(to).into_response())
    }

    /// Sign-in first: a redirect to `/login?next=here` unless someone is signed in.
    pub fn require_user(&self) -> Result<&User, Response> {
        self.user.as_ref().ok_or_else(|| self.redirect(&format!("/login?next={}", enc(&self.here))))
    }

    /// A form's change, the one way every form handler sends it: check the form's CSRF
    /// token (refused: back to `back` with a flash), send `method path body` to the API
    /// with the token, then flash `ok_msg` and go to `to`, or flash the API's error and go
    /// back to `back`.
    #[allow(clippy::too_many_arguments)]
    pub async fn submit(
        &self,
        form: &Form,
        method: Method,
        path: &str,
        body: Option<Value>,
        ok_msg: &str,
        to: &str,
        back: &str,
    ) -> Response {
        if let Err(r) = self.check_form(form, back) {
            return r;
        }
        let a = self.call_with(method, path, body, Some(form.get("_csrf"))).await;
        self.after(&a, ok_msg, if a.ok() { to } else { back })
    }

    /// For a handler that does more than one change or answers with a page: the form's
    /// CSRF token checked, or the redirect back to `back` with the refusal flashed.
    pub fn check_form(&self, form: &Form, back: &str) -> Result<(), Response> {
        if self.csrf_ok(form) {
            return Ok(());
        }
        self.set_flash(false, self.t("csrf"));
        Err(self.redirect(back))
    }

    /// After a change: a flash message (the API's error on failure) and a redirect.
    pub fn after(&self, a: &Answer, ok_msg: &str, to: &str) -> Response {
        if a.ok() {
            self.set_flash(true, ok_msg)
        } else {
            self.set_flash(false, &a.error())
        }
        self.redirect(to)
    }

    /// The permissions the caller has in a project (`resource`, `action`), from the API.
    pub async fn project_permissions(&self, project_id: i64) -> Vec<(String, String)> {
        let a = self
            .call(
                Method::GET,
                &format!("/api/v2.0/users/current/permissions?scope=/project/{project_id}&relative=true"),
                None,
            )
            .await;
        a.items()
            .iter()
            .map(|p| (p["resource"].as_str().unwrap_or("").to_string(), p["action"].as_str().unwrap_or("").to_string()))
            .collect()
    }
}

fn internal(msg: String) -> Answer {
    tracing::error!(%msg, "web UI: in-process API call failed");
    Answer {
        status: StatusCode::INTERNAL_SERVER_ERROR,
        headers: HeaderMap::new(),
        json: serde_json::json!({"errors":[{"code":"INTERNAL_ERROR","message":msg}]}),
        text: String::new(),
    }
}

/// A urlencoded form body (`application/x-www-form-urlencoded`), fields by name.
pub struct Form(pub Vec<(String, String)>);

impl Form {
    pub fn get(&self, k: &str) -> &str {
        self.0.iter().find(|(n, _)| n == k).map_or("", |(_, v)| v.as_str())
    }

    pub fn all(&self, k: &str) -> Vec<&str> {
        self.0.iter().filter(|(n, _)| n == k).map(|(_, v)| v.as_str()).collect()
    }
}

impl<S: Send + Sync> axum::extract::FromRequest<S> for Form {
    type Rejection = Response;

    async fn from_request(req: axum::extract::Request, _: &S) -> Result<Self, Response> {
        let limited = http_body_util::Limited::new(req.into_body(), 256 * 1024);
        let bytes = limited
            .collect()
            .await
            .map_err(|_| (StatusCode::PAYLOAD_TOO_LARGE, "form too large").into_response())?
            .to_bytes();
        Ok(Form(form_urlencoded::parse(&bytes).into_owned().collect()))
    }
}

/// The page's query string, fields by name.
pub fn query(uri: &axum::http::Uri) -> Form {
    Form(form_urlencoded::parse(uri.query().unwrap_or("").as_bytes()).into_owned().collect())
}
