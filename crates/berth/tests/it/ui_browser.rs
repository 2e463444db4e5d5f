//! The web UI in a real browser: Debian's chromium driven through chromedriver over the
//! W3C WebDriver protocol. Flows: sign in and out, create a project, push with skopeo and
//! find the tag, delete a tag, create a robot and see its secret once, switch language and
//! theme, JavaScript off, an artifact's page (layers, config, remove a tag, copy, delete).
//! Every page visited is checked with axe-core (WCAG 2 A/AA rules;
//! `tests/fixtures/axe.min.js`, injected) and screenshotted to `target/ui-shots/`.
//!
//! Elements are found by label, role and text (XPath over the accessible markup), never by
//! CSS class. Without chromium and chromedriver the tests skip, except in CI (`CI=true`),
//! where that is a failure.
//!
//! The WebDriver client is the few calls below on reqwest (already a test dependency):
//! chromedriver listens on loopback over plain HTTP, and the client crates' TLS features
//! (fantoccini's `rustls-tls`) bring hyper-rustls' default aws-lc crypto provider, a C
//! build, into a tree that standardised on ring.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::{Value, json};

use crate::support::*;

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
/// How long an element or a text may take to appear: generous, as CI runs these next to
/// the rest of the suite on a small machine.
const WAIT: Duration = Duration::from_secs(30);
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// Whether the browser is there; in CI its absence is a failure.
fn browser_available() -> bool {
    let found = std::path::Path::new(CHROMIUM).exists() && std::path::Path::new(CHROMEDRIVER).exists();
    if !found {
        assert!(
            std::env::var("CI").map(|v| v != "true").unwrap_or(true),
            "chromium and chromium-driver are required in CI (scripts/test.sh installs them)"
        );
        eprintln!("skipping: {CHROMIUM} or {CHROMEDRIVER} is not installed");
    }
    found
}

/// A chromedriver process of this test, killed (by its own pid) when dropped.
struct Driver {
    child: Child,
    url: String,
}

impl Driver {
    async fn start() -> Driver {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let child = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        let url = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(r) = client().get(format!("{url}/status")).send().await
                && r.status() == 200
            {
                break;
            }
            assert!(Instant::now() < deadline, "chromedriver did not start");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Driver { child, url }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One browser session.
struct Browser {
    http: reqwest::Client,
    base: String,
    _profile: tempfile::TempDir,
    name: String,
    shots: u32,
    axe: String,
    /// The chromedriver of a browser started with [`Browser::start`].
    _driver: Option<Driver>,
}

impl Browser {
    async fn open(d: &Driver, name: &str, javascript: bool) -> Browser {
        let profile = tempfile::tempdir().unwrap();
        let mut args = vec![
            "--headless=new".to_string(),
            "--no-sandbox".into(),
            "--disable-gpu".into(),
            "--disable-dev-shm-usage".into(),
            "--disable-background-networking".into(),
            "--disable-component-update".into(),
            "--no-first-run".into(),
            "--no-default-browser-check".into(),
            "--window-size=1280,900".into(),
            "--lang=en-US".into(),
            format!("--user-data-dir={}", profile.path().display()),
        ];
        if !javascript {
            args.push("--blink-settings=scriptEnabled=false".into());
        }
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": CHROMIUM, "args": args},
        }}});
        let http = client_builder().timeout(Duration::from_secs(180)).build().unwrap();
        let v = wd(&http, reqwest::Method::POST, &format!("{}/session", d.url), Some(caps)).await;
        let id = v["sessionId"].as_str().unwrap_or_else(|| panic!("no session: {v}")).to_string();
        // axe-core on a loaded machine may need more than WebDriver's default 30 s.
        let t = json!({"script": 120_000, "pageLoad": 120_000, "implicit": 0});
        wd(&http, reqwest::Method::POST, &format!("{}/session/{id}/timeouts", d.url), Some(t)).await;
        let axe = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/axe.min.js")).unwrap();
        Browser {
            http,
            base: format!("{}/session/{id}", d.url),
            _profile: profile,
            name: name.to_string(),
            shots: 0,
            axe,
            _driver: None,
        }
    }

    /// A browser with a chromedriver of its own, which lives as long as the browser.
    async fn start(name: &str, javascript: bool) -> Browser {
        let d = Driver::start().await;
        let mut b = Browser::open(&d, name, javascript).await;
        b._driver = Some(d);
        b
    }

    /// [`Browser::start`] with JavaScript, signed in as the administrator: how most flows
    /// begin.
    async fn admin(s: &Server, name: &str) -> Browser {
        let b = Browser::start(name, true).await;
        sign_in(&b, s, "admin", ADMIN_PASSWORD).await;
        b
    }

    async fn cmd(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        wd(&self.http, method, &format!("{}{path}", self.base), body).await
    }

    async fn goto(&self, url: &str) {
        self.cmd(reqwest::Method::POST, "/url", Some(json!({"url": url}))).await;
    }

    async fn url(&self) -> String {
        self.cmd(reqwest::Method::GET, "/url", None).await.as_str().unwrap().to_string()
    }

    async fn source(&self) -> String {
        self.cmd(reqwest::Method::GET, "/source", None).await.as_str().unwrap().to_string()
    }

    async fn find_all(&self, xpath: &str) -> Vec<String> {
        let v = self.cmd(reqwest::Method::POST, "/elements", Some(json!({"using": "xpath", "value": xpath}))).await;
        v.as_array()
            .unwrap_or_else(|| panic!("elements: {v}"))
            .iter()
            .map(|e| e[ELEMENT].as_str().unwrap_or_else(|| panic!("element: {e}")).to_string())
            .collect()
    }

    /// The one element at `xpath`, waiting up to [`WAIT`] for it.
    async fn find(&self, xpath: &str) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            let found = self.find_all(xpath).await;
            if let Some(e) = found.into_iter().next() {
                return e;
            }
            assert!(Instant::now() < deadline, "no element {xpath} on {}:\n{}", self.url().await, self.source().await);
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The input labelled `label` (`<label for>`), checked through WebDriver's computed label.
    async fn by_label(&self, label: &str) -> String {
        let e = self.find(&format!("//*[@id=//label[normalize-space()={}]/@for]", xq(label))).await;
        let computed = self.cmd(reqwest::Method::GET, &format!("/element/{e}/computedlabel"), None).await;
        assert_eq!(computed.as_str(), Some(label), "accessible name of the field labelled {label}");
        e
    }

    /// A button or link by its role and accessible name.
    async fn by_role(&self, role: &str, name: &str) -> String {
        let tag = match role {
            "button" => "button",
            "link" => "a",
            other => panic!("role {other}"),
        };
        let e = self.find(&format!("//{tag}[normalize-space()={n} or @aria-label={n}]", n = xq(name))).await;
        let r = self.cmd(reqwest::Method::GET, &format!("/element/{e}/computedrole"), None).await;
        assert_eq!(r.as_str(), Some(role), "role of {name}");
        e
    }

    /// Whether the element is shown (WebDriver's answer, `true` or `false`).
    async fn displayed(&self, e: &str) -> Value {
        self.cmd(reqwest::Method::GET, &format!("/element/{e}/displayed"), None).await
    }

    async fn click(&self, e: &str) {
        self.cmd(reqwest::Method::POST, &format!("/element/{e}/click"), Some(json!({}))).await;
    }

    async fn type_in(&self, e: &str, text: &str) {
        self.cmd(reqwest::Method::POST, &format!("/element/{e}/clear"), Some(json!({}))).await;
        self.cmd(reqwest::Method::POST, &format!("/element/{e}/value"), Some(json!({"text": text}))).await;
    }

    async fn fill(&self, label: &str, text: &str) {
        let e = self.by_label(label).await;
        self.type_in(&e, text).await;
    }

    /// Chooses the option with visible text `option` in the select labelled `label`.
    async fn choose(&self, label: &str, option: &str) {
        let select = self.by_label(label).await;
        let id = self.cmd(reqwest::Method::GET, &format!("/element/{select}/attribute/id"), None).await;
        let o = self
            .find(&format!("//select[@id={}]/option[normalize-space()={}]", xq(id.as_str().unwrap()), xq(option)))
            .await;
        self.click(&o).await;
    }

    async fn press(&self, role: &str, name: &str) {
        let e = self.by_role(role, name).await;
        self.click(&e).await;
    }

    /// Waits until the page's text contains `text`.
    async fn sees(&self, text: &str) {
        let deadline = Instant::now() + WAIT;
        loop {
            if self.source().await.contains(text) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{text:?} never appeared on {}:\n{}",
                self.url().await,
                self.source().await
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The visible page as PNG.
    async fn screenshot(&self) -> Vec<u8> {
        let v = self.cmd(reqwest::Method::GET, "/screenshot", None).await;
        base64::engine::general_purpose::STANDARD.decode(v.as_str().unwrap()).unwrap()
    }

    async fn shot(&mut self, what: &str) {
        let png = self.screenshot().await;
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/ui-shots");
        std::fs::create_dir_all(&dir).unwrap();
        self.shots += 1;
        std::fs::write(dir.join(format!("{}-{:02}-{what}.png", self.name, self.shots)), png).unwrap();
    }

    /// A screenshot for the README, written to `docs/{file}` when `UPDATE_DOCS_SCREENSHOTS=1`
    /// (so an ordinary test run leaves the checked-in images alone).
    async fn shot_for_docs(&mut self, file: &str) {
        self.shot(file.trim_end_matches(".png")).await;
        if std::env::var("UPDATE_DOCS_SCREENSHOTS").as_deref() != Ok("1") {
            return;
        }
        let png = self.screenshot().await;
        let docs = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs");
        std::fs::write(docs.join(file), png).unwrap();
    }

    /// Ticks the checkbox whose accessible name is `name` (its `aria-label`, or the text of
    /// the label wrapped around it).
    async fn tick(&self, name: &str) {
        let n = xq(name);
        let e = self
            .find(&format!("//input[@type='checkbox' and (@aria-label={n} or parent::label[normalize-space()={n}])]"))
            .await;
        let r = self.cmd(reqwest::Method::GET, &format!("/element/{e}/computedrole"), None).await;
        assert_eq!(r.as_str(), Some("checkbox"), "role of {name}");
        self.click(&e).await;
    }

    /// axe-core on the current page: no serious or critical WCAG 2 A/AA violation.
    async fn accessible(&self) {
        let v = Value::from(self.axe_violations().await);
        assert!(v.as_array().unwrap().is_empty(), "accessibility violations on {}: {v:#}", self.url().await);
    }

    /// axe-core on the current page ([`Browser::accessible`]), then its screenshot.
    async fn checked_shot(&mut self, what: &str) {
        self.accessible().await;
        self.shot(what).await;
    }

    /// Reloads `url` until its page shows `text`, for up to [`WAIT`]; `what` is what is
    /// waited for.
    async fn reload_until(&self, url: &str, text: &str, what: &str) {
        let deadline = Instant::now() + WAIT;
        while !self.source().await.contains(text) {
            assert!(Instant::now() < deadline, "{what} did not finish: {}", self.source().await);
            tokio::time::sleep(Duration::from_millis(300)).await;
            self.goto(url).await;
        }
    }

    async fn close(self) {
        self.cmd(reqwest::Method::DELETE, "", None).await;
    }
}

/// An XPath string literal.
fn xq(s: &str) -> String {
    if !s.contains('\'') { format!("'{s}'") } else { format!("\"{s}\"") }
}

async fn wd(http: &reqwest::Client, method: reqwest::Method, url: &str, body: Option<Value>) -> Value {
    let mut r = http.request(method.clone(), url);
    if let Some(b) = body {
        r = r.header("content-type", "application/json").body(b.to_string());
    }
    let res = r.send().await.unwrap_or_else(|e| panic!("WebDriver {method} {url}: {e}"));
    let status = res.status();
    let text = res.text().await.unwrap();
    let v: Value = serde_json::from_str(&text).unwrap_or_else(|_| panic!("WebDriver {method} {url}: {status} {text}"));
    assert!(status.is_success(), "WebDriver {method} {url}: {status} {v}");
    v["value"].clone()
}

async fn sign_in(b: &Browser, s: &Server, user: &str, password: &str) {
    b.goto(&s.url("/login")).await;
    submit_sign_in(b, user, password).await;
}

/// Fills in the sign-in form on the page and sends it; the user is then signed in.
async fn submit_sign_in(b: &Browser, user: &str, password: &str) {
    b.fill("Username", user).await;
    b.fill("Password", password).await;
    b.press("button", "Sign in").await;
    b.sees("Signed in as").await;
}

/// Visits each page (path, screenshot name) signed in (`marker`: text every signed-in page
/// shows, in the page's language): it is shown, passes axe, and is screenshotted.
async fn check_pages(b: &mut Browser, s: &Server, marker: &str, pages: &[(impl AsRef<str>, &str)]) {
    for (path, shot) in pages {
        b.goto(&s.url(path.as_ref())).await;
        b.sees(marker).await;
        b.checked_shot(shot).await;
    }
}

/// Sets the signed-in user's preferences to Simplified Chinese with the dark theme.
async fn switch_to_zh_dark(b: &Browser, s: &Server) {
    b.goto(&s.url("/prefs")).await;
    b.choose("Language", "简体中文").await;
    b.choose("Theme", "Dark").await;
    b.press("button", "Save").await;
    b.sees("偏好设置已保存").await;
}

#[tokio::test]
async fn browser_sign_in_project_push_find_delete_robot_language_theme() {
    if !browser_available() || !tool_available("skopeo") {
        return;
    }
    let s = Server::start_harbor();
    let mut b = Browser::start("flows", true).await;

    // Sign in (redirected there from a page), with the form's labels.
    b.goto(&s.url("/projects")).await;
    b.sees("Sign in").await;
    assert!(b.url().await.contains("/login?next=%2Fprojects"));
    b.checked_shot("sign-in").await;
    submit_sign_in(&b, "admin", ADMIN_PASSWORD).await;
    b.sees("library").await;
    b.checked_shot("projects").await;

    // Create a project.
    b.fill("Project name", "web").await;
    b.press("button", "Create").await;
    b.sees("Project created.").await;
    assert!(b.url().await.ends_with("/projects/web"));

    // Push with skopeo, then find the tag by filtering the tags view.
    let tmp = tempfile::tempdir().unwrap();
    write_tiny_layout(tmp.path(), "v1.2.3");
    let src = format!("oci:{}:v1.2.3", tmp.path().display());
    let creds = format!("admin:{ADMIN_PASSWORD}");
    for tag in ["v1.2.3", "v1.3.0", "latest"] {
        let dest = format!("docker://{}/web/shop/api:{tag}", s.addr);
        run(&["skopeo", "copy", "--dest-tls-verify=false", "--dest-creds", &creds, &src, &dest]);
    }
    b.goto(&s.url("/projects/web/repos")).await;
    b.press("link", "web/shop/api").await;
    b.sees("v1.3.0").await;
    b.fill("Tag name: a prefix or a glob", "v1.2").await;
    b.press("button", "Filter").await;
    b.sees(r#"value="v1.2""#).await;
    let src_now = b.source().await;
    assert!(src_now.contains(">v1.2.3<") && !src_now.contains(">v1.3.0<"), "{src_now}");
    // The pull command is there as text, and JavaScript revealed its copy button.
    let copy = b.by_role("button", "Copy: Pull by tag v1.2.3").await;
    assert_eq!(b.displayed(&copy).await, json!(true));
    b.sees(&format!("docker pull {}/web/shop/api:v1.2.3", s.addr)).await;
    b.checked_shot("tags").await;

    // Delete a tag through the confirm page.
    b.press("link", "Delete tag v1.2.3").await;
    b.sees("Are you sure?").await;
    b.accessible().await;
    b.press("button", "Delete").await;
    b.sees("Tag deleted.").await;
    assert!(!b.source().await.contains(">v1.2.3<"));

    // Search by tag.
    b.goto(&s.url("/search")).await;
    b.fill("Project, repository or tag", "api:lat").await;
    b.press("button", "Search").await;
    b.sees("web/shop/api:latest").await;
    b.accessible().await;

    // A robot account: the secret is shown once.
    b.goto(&s.url("/projects/web/robots")).await;
    b.fill("Name", "deployer").await;
    b.press("button", "Create").await;
    b.sees("shown only once").await;
    let secret_field = b.find("(//section[@aria-labelledby='secret-title']//code)[2]").await;
    let secret = b.cmd(reqwest::Method::GET, &format!("/element/{secret_field}/text"), None).await;
    let secret = secret.as_str().unwrap().to_string();
    assert!(secret.len() >= 8, "{secret}");
    b.checked_shot("robot-secret").await;
    b.goto(&s.url("/projects/web/robots")).await;
    b.sees("robot$web+deployer").await;
    assert!(!b.source().await.contains(&secret), "the secret is not shown again");

    // Every other page passes axe too (and gets a screenshot).
    let pages = &[
        ("/projects/web/repos/shop/api/-/artifacts", "artifacts"),
        ("/projects/web/members", "members"),
        ("/projects/web/labels", "labels"),
        ("/projects/web/immutability", "immutability"),
        ("/projects/web/webhooks", "webhooks"),
        ("/projects/web/audit", "project-audit"),
        ("/projects/web/settings", "settings"),
        ("/admin/users", "users"),
        ("/admin/audit", "audit"),
        ("/admin/config", "config"),
        ("/admin/gc", "gc"),
        ("/admin/jobs", "jobs"),
        ("/account", "account"),
        ("/prefs", "prefs"),
    ];
    check_pages(&mut b, &s, "Signed in as", pages).await;

    // Language and theme.
    switch_to_zh_dark(&b, &s).await;
    b.goto(&s.url("/projects")).await;
    b.sees("退出").await;
    let html = b.source().await;
    assert!(html.contains(r#"lang="zh-CN""#) && html.contains(r#"data-theme="dark""#));
    b.checked_shot("projects-zh-dark").await;
    b.goto(&s.url("/projects/web/repos/shop/api/-/tags")).await;
    b.checked_shot("tags-zh-dark").await;

    // Sign out: back to the sign-in page, and pages ask for it again.
    b.press("button", "退出").await;
    b.sees("您已退出").await;
    b.goto(&s.url("/projects")).await;
    b.sees("name=\"password\"").await;
    b.close().await;
}

#[tokio::test]
async fn browser_works_without_javascript() {
    if !browser_available() {
        return;
    }
    let s = Server::start_harbor();
    push_small_image_as(&s, &admin(), "library/nojs", "keep", "a").await;
    push_small_image_as(&s, &admin(), "library/nojs", "drop", "b").await;
    let mut b = Browser::start("nojs", false).await;
    sign_in(&b, &s, "admin", ADMIN_PASSWORD).await;
    b.goto(&s.url("/projects/library/repos/nojs/-/tags")).await;
    b.sees(">keep<").await;
    // No JavaScript: the copy button stays hidden, the command stays as text.
    let copy = b.find("//button[@data-copy]").await;
    assert_eq!(b.displayed(&copy).await, json!(false));
    b.shot("tags-nojs").await;
    b.press("link", "Delete tag drop").await;
    b.press("button", "Delete").await;
    b.sees("Tag deleted.").await;
    assert!(!b.source().await.contains(">drop<"));
    b.press("button", "Sign out").await;
    b.sees("You are signed out.").await;
    b.close().await;
}

/// Switches the preferences to Chinese with the dark theme, then visits each page (path,
/// screenshot name): it is shown to the signed-in user, passes axe, and is screenshotted.
async fn zh_dark_pages(b: &mut Browser, s: &Server, pages: &[(impl AsRef<str>, &str)]) {
    switch_to_zh_dark(b, s).await;
    check_pages(b, s, "退出", pages).await;
}

/// One flow per feature page: quotas, tag retention (a rule, a dry run, its tasks),
/// scanning (the scan button, the vulnerabilities and SBOM pages), comparing tags,
/// signatures, registries and replication, GC (schedule, preview), health; every page
/// checked with axe and screenshotted, then again in Chinese with the dark theme.
#[tokio::test]
async fn browser_feature_pages() {
    if !browser_available() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let s = Server::spawn(&tmp.path().join("data"), &[("BERTH_AUTH_MODE", "harbor")]);
    let peer = Server::start_harbor();
    let d1 = push_small_image_as(&s, &admin(), "library/app", "v1", "one").await;
    push_small_image_as(&s, &admin(), "library/app", "v2", "two").await;
    push_small_image_as(&s, &admin(), "library/app", "v3", "three").await;
    let mut b = Browser::admin(&s, "features").await;

    // Quotas: set a project's limit.
    b.goto(&s.url("/admin/quotas")).await;
    b.fill("Storage limit in GiB (-1: unlimited) for library", "1").await;
    b.press("button", "Set limit library").await;
    b.sees("Saved.").await;
    b.sees("1.0 GiB").await;
    b.checked_shot("quotas").await;

    // Retention: a rule, a dry run, the run's tasks.
    b.goto(&s.url("/projects/library/retention")).await;
    b.choose("Retain", "the N most recently pushed artifacts").await;
    b.fill("N (count or days)", "1").await;
    b.press("button", "Add rule").await;
    b.sees("the 1 most recently pushed artifacts").await;
    b.press("button", "Dry run").await;
    b.sees("Retention run started.").await;
    b.checked_shot("retention").await;
    let proj = ok_json(&s, "/api/v2.0/projects/library", &admin()).await;
    let pid = proj["metadata"]["retention_id"].as_str().unwrap().to_string();
    let execs = format!("/api/v2.0/retentions/{pid}/executions");
    let e = poll_json(&s, &execs, "the dry run's success", WAIT, |e| e[0]["status"] == "Success").await;
    let eid = e[0]["id"].as_i64().unwrap();
    b.goto(&s.url("/projects/library/retention")).await;
    b.press("link", &format!("Execution {eid}")).await;
    b.sees("library/app").await;
    b.sees("1 / 3").await;
    b.checked_shot("retention-tasks").await;
    b.press("link", "Log library/app").await;
    b.sees("Back").await;
    b.accessible().await;

    // Scanning: the button, then the report pages (empty until the scan is done).
    let art = format!("/projects/library/repos/app/-/artifacts/{d1}");
    b.goto(&s.url(&art)).await;
    b.press("button", "Scan for vulnerabilities").await;
    b.sees("Scan started.").await;
    b.checked_shot("artifact-scan").await;
    let pages = &[
        (format!("{art}/vulnerabilities"), "vulnerabilities"),
        (format!("{art}/sbom"), "sbom"),
        ("/projects/library/repos/app/-/compare?a=v1&b=v2".to_string(), "compare"),
    ];
    check_pages(&mut b, &s, "Signed in as", pages).await;

    // Signatures: the trust page.
    b.goto(&s.url("/projects/library/signatures")).await;
    b.sees("Trusted cosign public keys").await;
    b.checked_shot("signatures").await;

    // Registries and replication: add the peer, a push rule, run it.
    b.goto(&s.url("/admin/registries")).await;
    b.choose("Provider", "harbor").await;
    b.fill("Name", "peer").await;
    b.fill("Endpoint URL", &peer.url("")).await;
    b.fill("Access ID (user name)", "admin").await;
    b.fill("Access secret (password)", ADMIN_PASSWORD).await;
    b.press("button", "Test connection").await;
    b.sees("The registry answered").await;
    b.fill("Name", "peer").await;
    b.fill("Endpoint URL", &peer.url("")).await;
    b.fill("Access ID (user name)", "admin").await;
    b.fill("Access secret (password)", ADMIN_PASSWORD).await;
    b.press("button", "Create").await;
    b.sees("Saved.").await;
    b.checked_shot("registries").await;
    b.goto(&s.url("/admin/replications")).await;
    b.fill("Name", "to-peer").await;
    b.fill("Resources matching (name, e.g. library/**)", "library/**").await;
    b.press("button", "Create").await;
    b.sees("Saved.").await;
    b.press("button", "Replicate to-peer").await;
    b.sees("Replication started.").await;
    b.checked_shot("replications").await;

    // GC: a schedule and the preview.
    b.goto(&s.url("/admin/gc")).await;
    b.choose("Schedule", "Daily").await;
    b.press("button", "Save").await;
    b.sees("Saved.").await;
    b.checked_shot("gc").await;
    b.press("link", "Preview: storage by project and what a collection would free").await;
    b.sees("Storage by project").await;
    b.checked_shot("gc-preview").await;

    // Health.
    b.goto(&s.url("/admin/health")).await;
    b.sees("Instances").await;
    b.checked_shot("health").await;

    // The same pages in Chinese, dark theme.
    zh_dark_pages(
        &mut b,
        &s,
        &[
            ("/admin/quotas".to_string(), "quotas-zh-dark"),
            ("/projects/library/retention".to_string(), "retention-zh-dark"),
            (art.clone(), "artifact-zh-dark"),
            (format!("{art}/vulnerabilities"), "vulnerabilities-zh-dark"),
            ("/projects/library/signatures".to_string(), "signatures-zh-dark"),
            ("/admin/registries".to_string(), "registries-zh-dark"),
            ("/admin/replications".to_string(), "replications-zh-dark"),
            ("/admin/gc/preview".to_string(), "gc-preview-zh-dark"),
            ("/admin/health".to_string(), "health-zh-dark"),
        ],
    )
    .await;
    b.close().await;
}

#[tokio::test]
async fn browser_edit_webhooks_replication_robots_and_labels() {
    if !browser_available() {
        return;
    }
    let s = Server::start_harbor();
    let project_id = create_project(&s, &admin(), "web", false).await;
    let digest = push_small_image_as(&s, &admin(), "web/app", "v1", "edit").await;
    // A registry and a rule to edit, made through the HTTP forms.
    let mut w = crate::ui::signed_in(&s, "admin", ADMIN_PASSWORD).await;
    let reg = crate::ui_edit::self_registry(&mut w, &s).await;
    w.submit(
        "/admin/replications",
        "/admin/replications",
        &[("name", "out"), ("registry", &reg), ("trigger", "manual")],
    )
    .await;
    let mut b = Browser::admin(&s, "edit").await;

    // A webhook: created, then its auth header, certificate check and format changed.
    b.goto(&s.url("/projects/web/webhooks")).await;
    b.fill("Name", "hook").await;
    b.fill("Endpoint URL", "http://127.0.0.1:9/h").await;
    b.press("button", "Create").await;
    b.sees("Saved.").await;
    b.press("link", "Edit hook").await;
    b.sees("Edit webhook").await;
    b.fill("Auth header (sent as Authorization)", "Bearer b").await;
    b.tick("Skip certificate verification").await;
    b.choose("Payload format", "CloudEvents").await;
    b.checked_shot("webhook-edit").await;
    b.press("button", "Save").await;
    b.sees("Saved.").await;
    let p = ok_json(&s, "/api/v2.0/projects/web/webhook/policies", &admin()).await;
    let t = &p[0]["targets"][0];
    assert_eq!((t["auth_header"].as_str(), t["skip_cert_verify"].as_bool()), (Some("Bearer b"), Some(true)), "{t}");
    assert_eq!(t["payload_format"], "CloudEvents");

    // A replication rule: now scheduled.
    b.goto(&s.url("/admin/replications")).await;
    b.press("link", "Edit out").await;
    b.sees("Edit replication rule").await;
    b.choose("Trigger", "Scheduled (cron)").await;
    b.fill("Cron (six fields, seconds first, UTC)", "0 0 4 * * *").await;
    b.checked_shot("replication-edit").await;
    b.press("button", "Save").await;
    b.sees("Saved.").await;
    let r = ok_json(&s, "/api/v2.0/replication/policies", &admin()).await;
    assert_eq!(r[0]["trigger"]["trigger_settings"]["cron"], "0 0 4 * * *", "{r}");

    // A label: renamed, then attached to the artifact.
    b.goto(&s.url("/projects/web/labels")).await;
    b.fill("Name", "prod").await;
    b.press("button", "Create").await;
    b.sees(">prod<").await;
    b.press("link", "Edit prod").await;
    b.sees("Edit label").await;
    b.accessible().await;
    b.fill("Name", "production").await;
    b.press("button", "Save").await;
    b.sees(">production<").await;
    b.goto(&s.url(&format!("/projects/web/repos/app/-/artifacts/{digest}"))).await;
    b.choose("Label to add", "production").await;
    b.press("button", "Add label").await;
    b.sees("Label added.").await;
    b.by_role("button", "Remove label production").await;
    b.checked_shot("artifact-labels").await;

    // A robot: permissions from the matrix, edited, then a new secret shown once.
    b.goto(&s.url("/projects/web/robots")).await;
    b.fill("Name", "bot").await;
    let read = b.by_label("artifact read").await;
    b.click(&read).await;
    b.press("button", "Create").await;
    b.sees("shown only once").await;
    b.goto(&s.url("/projects/web/robots")).await;
    b.press("link", "Edit robot$web+bot").await;
    b.sees("Edit robot account").await;
    let push = b.by_label("repository push").await;
    b.click(&push).await;
    b.checked_shot("robot-edit").await;
    b.press("button", "Save").await;
    b.sees("Saved.").await;
    let robots = ok_json(&s, &format!("/api/v2.0/robots?q=Level=project,ProjectID={project_id}"), &admin()).await;
    assert_eq!(robots[0]["permissions"][0]["access"].as_array().unwrap().len(), 3, "{robots}");
    b.press("button", "Refresh secret robot$web+bot").await;
    b.sees("New secret").await;
    b.checked_shot("robot-refreshed").await;
    b.press("button", "Disable robot$web+bot").await;
    b.sees("✖ Disabled").await;

    // A system robot.
    b.goto(&s.url("/admin/robots")).await;
    b.fill("Name", "ops").await;
    let audit = b.by_label("audit-log list").await;
    b.click(&audit).await;
    b.press("button", "Create").await;
    b.sees("robot$ops").await;
    b.checked_shot("system-robots").await;
    b.close().await;
}

/// Immutable-tag rules edited, a webhook's "send test" to a server this test runs, and a
/// registry endpoint edited after a connection test; axe on each page.
#[tokio::test]
async fn browser_edit_immutability_webhook_test_and_registry() {
    if !browser_available() {
        return;
    }
    let s = Server::start_harbor();
    create_project(&s, &admin(), "web", false).await;
    let recv = crate::webhooks::Receiver::start().await;
    let hook = json!({"name": "hook", "event_types": ["PUSH_ARTIFACT"],
                      "targets": [{"type": "http", "address": recv.url("/hook"), "payload_format": "CloudEvents"}]});
    let r = call(&s, reqwest::Method::POST, "/api/v2.0/projects/web/webhook/policies", &admin(), Some(&hook)).await;
    assert_eq!(r.status(), 201);
    let mut w = crate::ui::signed_in(&s, "admin", ADMIN_PASSWORD).await;
    crate::ui_edit::self_registry(&mut w, &s).await;
    let mut b = Browser::admin(&s, "policies").await;

    // An immutable-tag rule: created, then its tag pattern changed and disabled.
    b.goto(&s.url("/projects/web/immutability")).await;
    b.fill("Tags (pattern, e.g. v*)", "v*").await;
    b.press("button", "Create").await;
    b.sees("Saved.").await;
    let id = ok_json(&s, "/api/v2.0/projects/web/immutabletagrules", &admin()).await[0]["id"].as_i64().unwrap();
    b.press("link", &format!("Edit #{id}")).await;
    b.sees("Edit immutable-tag rule").await;
    b.fill("Tags (pattern, e.g. v*)", "rel-*").await;
    b.tick("Enabled").await;
    b.checked_shot("immutability-edit").await;
    b.press("button", "Save").await;
    b.sees("Saved.").await;
    b.sees("✖ Disabled").await;
    let rule = &ok_json(&s, "/api/v2.0/projects/web/immutabletagrules", &admin()).await[0];
    assert_eq!((rule["tag_selectors"][0]["pattern"].as_str(), rule["disabled"].as_bool()), (Some("rel-*"), Some(true)));
    b.press("button", &format!("Enable #{id}")).await;
    b.sees("✔ Enabled").await;

    // Send test: the endpoint's answer on the page, the event at the endpoint.
    b.goto(&s.url("/projects/web/webhooks")).await;
    b.press("button", "Send test hook").await;
    b.sees("Answered").await;
    b.sees("200 OK").await;
    b.checked_shot("webhook-test").await;
    let got = recv.got();
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].body["type"], "harbor.webhook.test");

    // A registry endpoint: renamed, tested with the stored secret, saved.
    b.goto(&s.url("/admin/registries")).await;
    b.press("link", "Edit self").await;
    b.sees("Edit registry endpoint").await;
    b.fill("Name", "peer").await;
    b.fill("Description", "this server").await;
    b.press("button", "Test connection").await;
    b.sees("The registry answered").await;
    b.checked_shot("registry-edit").await;
    b.press("button", "Save").await;
    b.sees("Saved.").await;
    let regs = ok_json(&s, "/api/v2.0/registries", &admin()).await;
    assert_eq!(
        (regs[0]["name"].as_str(), regs[0]["description"].as_str()),
        (Some("peer"), Some("this server")),
        "{regs}"
    );
    b.close().await;
}

/// One flow per security page: scanners (add the peer's adapter, its details), a
/// project's scanner, scan all (schedule, scan now), the security hub (a search), the CVE
/// allowlists (system, project), a CVE export, and a proxy-cache project; axe on every
/// page, screenshots, then all of them again in Chinese with the dark theme.
#[tokio::test]
async fn browser_security_pages() {
    use crate::scanning::{OSV_FIXTURE, debian_layers, import, push_layers};
    if !browser_available() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let key = "adapter-key-0123456789abcdef";
    let peer =
        Server::spawn(&tmp.path().join("peer"), &[("BERTH_AUTH_MODE", "harbor"), ("BERTH_SCAN_ADAPTER_API_KEY", key)]);
    import(&tmp.path().join("data"), OSV_FIXTURE);
    let s = Server::spawn(&tmp.path().join("data"), &[("BERTH_AUTH_MODE", "harbor")]);
    push_layers(&s, "library/app", "v1", &debian_layers()).await;
    let mut b = Browser::admin(&s, "security").await;

    // Scanners: add the peer's adapter after a connection test, then its details.
    b.goto(&s.url("/admin/scanners")).await;
    b.sees("★ Default").await;
    b.accessible().await;
    b.fill("Name", "peer").await;
    b.fill("Adapter endpoint", &peer.url("/scanner-adapter")).await;
    b.choose("Authentication", "X-ScannerAdapter-API-Key").await;
    b.fill("Credential (password, token or API key)", key).await;
    b.press("button", "Create").await;
    b.sees("Saved.").await;
    b.shot("scanners").await;
    b.press("link", "peer").await;
    b.sees("✔ healthy").await;
    b.press("button", "Test connection peer").await;
    b.sees("The scanner adapter answered.").await;
    b.checked_shot("scanner").await;

    // The project's scanner: choose the peer, then the built-in one again.
    b.goto(&s.url("/projects/library/scanner")).await;
    b.choose("Scanner", "peer").await;
    b.press("button", "Save").await;
    b.sees("Saved.").await;
    b.sees("/scanner-adapter").await;
    b.choose("Scanner", "Berth").await;
    b.press("button", "Save").await;
    b.sees("internal://berth").await;
    b.checked_shot("project-scanner").await;

    // Scan all: a schedule, then now.
    b.goto(&s.url("/admin/scan-all")).await;
    b.choose("Schedule", "Daily").await;
    b.press("button", "Save").await;
    b.sees("Saved.").await;
    b.press("button", "Scan all now").await;
    b.sees("Scan all started.").await;
    b.checked_shot("scan-all").await;
    poll_json(&s, "/api/v2.0/scans/all/metrics", "the scan all's end", WAIT, |m| {
        m["ongoing"] == false && m["completed"] == 1
    })
    .await;

    // The security hub: a search by package.
    b.goto(&s.url("/admin/security")).await;
    b.fill("Package", "libssl3").await;
    b.press("button", "Filter").await;
    b.sees(r#"value="libssl3""#).await;
    b.sees("CVE-2024-0001").await;
    b.checked_shot("security-hub").await;

    // CVE allowlists: the system's, then copied into a project's.
    b.goto(&s.url("/admin/cve-allowlist")).await;
    b.fill("CVE IDs (one a line)", "CVE-2024-0001").await;
    b.press("button", "Save").await;
    b.sees("Saved.").await;
    b.sees("<code>CVE-2024-0001</code>").await;
    b.checked_shot("cve-allowlist").await;
    b.goto(&s.url("/projects/library/settings")).await;
    b.press("button", "Copy the system's allowlist").await;
    b.sees("Saved.").await;
    b.checked_shot("project-allowlist").await;
    let proj = ok_json(&s, "/api/v2.0/projects/library", &admin()).await;
    assert_eq!(proj["cve_allowlist"]["items"][0]["cve_id"], "CVE-2024-0001", "{proj}");

    // A CVE export.
    b.goto(&s.url("/projects/library/scanner")).await;
    b.press("link", "Export this project's vulnerabilities as CSV").await;
    b.sees(r#"value="library""#).await;
    b.press("button", "Export").await;
    b.sees("Export started.").await;
    b.checked_shot("cve-exports").await;

    // A proxy-cache project of the peer.
    let reg = json!({"name": "peer", "type": "harbor", "url": peer.url(""), "insecure": true,
        "credential": {"type": "basic", "access_key": "admin", "access_secret": ADMIN_PASSWORD}});
    assert_eq!(status(&s, reqwest::Method::POST, "/api/v2.0/registries", &admin(), Some(&reg)).await, 201);
    b.goto(&s.url("/projects")).await;
    b.fill("Project name", "mirror").await;
    b.by_label("Proxy cache of").await;
    let o = b.find("//select[@id='registry_id']/option[starts-with(normalize-space(), 'peer')]").await;
    b.click(&o).await;
    b.press("button", "Create").await;
    b.sees("This project is a proxy cache of").await;
    b.checked_shot("proxy-cache").await;
    b.goto(&s.url("/projects")).await;
    b.sees("⇄ Proxy cache").await;

    // The same pages in Chinese, dark theme.
    let id = ok_json(&s, "/api/v2.0/scanners", &admin()).await[1]["uuid"].as_str().unwrap().to_string();
    zh_dark_pages(
        &mut b,
        &s,
        &[
            ("/admin/scanners".to_string(), "scanners-zh-dark"),
            (format!("/admin/scanners/{id}"), "scanner-zh-dark"),
            ("/projects/library/scanner".to_string(), "project-scanner-zh-dark"),
            ("/admin/scan-all".to_string(), "scan-all-zh-dark"),
            ("/admin/security?severity=Critical".to_string(), "security-hub-zh-dark"),
            ("/admin/cve-allowlist".to_string(), "cve-allowlist-zh-dark"),
            ("/projects/library/settings".to_string(), "project-allowlist-zh-dark"),
            ("/cve-exports".to_string(), "cve-exports-zh-dark"),
            ("/projects/mirror/repos".to_string(), "proxy-cache-zh-dark"),
            ("/projects".to_string(), "projects-proxy-zh-dark"),
        ],
    )
    .await;
    b.close().await;
}

/// The repository actions: the artifact list filtered by type and label, accessories
/// shown, two artifacts deleted with one confirmation, the description edited, a tag
/// added, a retention rule with a label selector, the date format preference; every page
/// checked with axe. Also the README's two screenshots (`shot_for_docs`): the tags view in
/// English with the light theme, the project list in Chinese with the dark theme.
#[tokio::test]
async fn browser_repository_actions_and_readme_screenshots() {
    if !browser_available() {
        return;
    }
    let s = Server::start_harbor();
    let pid = create_project(&s, &admin(), "team", true).await;
    let d1 = push_small_image_as(&s, &admin(), "team/app", "v1.0.0", "one").await;
    let d2 = push_small_image_as(&s, &admin(), "team/app", "v1.1.0", "two").await;
    let d3 = push_small_image_as(&s, &admin(), "team/app", "v2.0.0", "three").await;
    crate::ui::tag_many(&s, &admin(), "team/app", &d3, ["2.0", "latest", "stable"].into_iter().map(String::from)).await;
    let label = json!({"name": "prod", "scope": "p", "project_id": pid, "color": "#aa0000"});
    assert_eq!(call(&s, reqwest::Method::POST, "/api/v2.0/labels", &admin(), Some(&label)).await.status(), 201);
    let lid = ok_json(&s, &format!("/api/v2.0/labels?scope=p&project_id={pid}"), &admin()).await[0]["id"].clone();
    let attach = format!("/api/v2.0/projects/team/repositories/app/artifacts/{d1}/labels");
    assert_eq!(call(&s, reqwest::Method::POST, &attach, &admin(), Some(&json!({"id": lid}))).await.status(), 200);
    let mut b = Browser::admin(&s, "repo-actions").await;
    b.goto(&s.url("/prefs")).await;
    b.choose("Theme", "Light").await;
    b.press("button", "Save").await;
    b.sees("Preferences saved.").await;

    // README: the tags view, English, light theme.
    b.goto(&s.url("/projects/team/repos/app/-/tags")).await;
    b.sees(">v2.0.0<").await;
    b.accessible().await;
    b.shot_for_docs("ui-tags.png").await;

    // The artifact list by type and label, then with accessories (a cosign signature).
    crate::signatures::push_cosign_signature(&s, &d1).await;
    b.press("link", "Artifacts").await;
    b.choose("Type", "Image").await;
    b.choose("Label", "prod").await;
    b.press("button", "Filter").await;
    // The filtered page (not the one before it, which has `aria-label=` too).
    b.sees(r#"selected="">prod<"#).await;
    let html = b.source().await;
    assert!(html.contains(&short(&d1)) && !html.contains(&short(&d2)), "{html}");
    b.checked_shot("artifacts-filtered").await;
    b.goto(&s.url("/projects/team/repos/app/-/artifacts")).await;
    b.tick("Show accessories (signatures, SBOMs)").await;
    b.press("button", "Filter").await;
    b.sees("signature.cosign").await;
    b.checked_shot("artifacts-accessories").await;

    // Bulk delete: two ticked, one confirmation naming them, both gone.
    b.tick(&format!("Select {}", short(&d2))).await;
    b.tick(&format!("Select {}", short(&d1))).await;
    b.press("button", "Delete selected artifacts").await;
    b.sees("Are you sure?").await;
    b.sees(&format!("team/app@{} (v1.1.0)", short(&d2))).await;
    b.checked_shot("bulk-delete-confirm").await;
    b.press("button", "Delete").await;
    b.sees("Deleted 2 artifacts.").await;
    assert!(!b.source().await.contains(&short(&d2)));

    // The description.
    b.press("link", "Description").await;
    b.sees("No description yet.").await;
    b.fill("Description", "Shop API, built nightly.").await;
    b.press("button", "Save").await;
    b.sees("Saved.").await;
    b.sees("Shop API, built nightly.").await;
    b.checked_shot("description").await;

    // A tag added to an artifact.
    b.goto(&s.url(&format!("/projects/team/repos/app/-/artifacts/{d3}"))).await;
    b.fill("New tag for this artifact", "release").await;
    b.press("button", "Add tag").await;
    b.sees("Tag added.").await;
    b.sees("<strong>release</strong>").await;
    b.accessible().await;

    // A retention rule with a label selector.
    b.goto(&s.url("/projects/team/retention")).await;
    b.choose("Retain", "always").await;
    b.fill("Label names (comma-separated; empty: any)", "prod").await;
    b.press("button", "Add rule").await;
    b.sees("with all of the labels: prod").await;
    b.checked_shot("retention-labels").await;

    // Dates relative to now, then the README's second picture: Chinese, dark.
    b.goto(&s.url("/prefs")).await;
    b.choose("Date format", "Relative (5 minutes ago)").await;
    b.press("button", "Save").await;
    // The POST's navigation must land before the next one starts, or it
    // replaces it (seen in CI: the "artifacts" page was the prefs page).
    b.sees("Preferences saved.").await;
    b.goto(&s.url("/projects/team/repos/app/-/artifacts")).await;
    let html = b.source().await;
    assert!(html.contains(" ago</time>") || html.contains("just now</time>"), "{html}");
    b.goto(&s.url("/prefs")).await;
    b.choose("Language", "简体中文").await;
    b.choose("Theme", "Dark").await;
    b.choose("Date format", "ISO 8601 (2026-01-31 14:05 UTC)").await;
    b.press("button", "Save").await;
    b.sees("偏好设置已保存").await;
    b.goto(&s.url("/projects")).await;
    b.sees("team").await;
    b.accessible().await;
    b.shot_for_docs("ui-projects-zh-dark.png").await;
    b.goto(&s.url("/projects/team/repos/app/-/artifacts?accessories=1")).await;
    b.sees("退出").await;
    b.checked_shot("artifacts-zh-dark").await;
    b.close().await;
}

/// The administration pages: set a user as administrator, a log rotation dry run and its
/// log, a setting changed with a banner message that then shows (and closes), and a
/// global label.
#[tokio::test]
async fn browser_admin_users_log_rotation_config_banner_and_global_labels() {
    if !browser_available() {
        return;
    }
    let s = Server::start_harbor();
    create_user(&s, "ann").await;
    let mut b = Browser::admin(&s, "admin").await;

    // Set and see administrator; the reset-password page.
    b.goto(&s.url("/admin/users")).await;
    b.accessible().await;
    b.press("button", "Set as administrator: ann").await;
    b.sees("Saved.").await;
    b.by_role("button", "Unset administrator: ann").await;
    b.checked_shot("admin-users").await;
    let ann = ok_json(&s, "/api/v2.0/users?q=username%3Dann", &admin()).await;
    assert_eq!(ann[0]["sysadmin_flag"], true);
    b.press("link", "Reset password: ann").await;
    b.sees("Reset password · ann").await;
    b.accessible().await;

    // Log rotation: a dry run, its history row and its log.
    b.goto(&s.url("/admin/log-rotation")).await;
    b.accessible().await;
    b.fill("Keep audit log entries for", "1").await;
    b.choose("Unit", "hours").await;
    b.press("button", "Dry run").await;
    b.sees("Dry run started.").await;
    b.reload_until(&s.url("/admin/log-rotation"), "✔ Success", "the dry run").await;
    b.checked_shot("log-rotation").await;
    let log = b.find("//a[starts-with(@aria-label, 'Log ')]").await;
    b.click(&log).await;
    b.sees("dry run:").await;
    b.accessible().await;

    // A setting and a banner message, saved with the system settings' button.
    b.goto(&s.url("/admin/config")).await;
    b.accessible().await;
    b.fill("Session timeout (minutes)", "90").await;
    b.fill("Message (empty: no banner)", "Upgrade on Friday").await;
    b.choose("Type", "Warning").await;
    b.tick("Users may close it").await;
    let save = b.find("//form[@aria-labelledby='cfg-system']//button[@type='submit']").await;
    b.click(&save).await;
    b.sees("Saved.").await;
    assert_eq!(ok_json(&s, "/api/v2.0/configurations", &admin()).await["session_timeout"]["value"], 90);
    b.goto(&s.url("/projects")).await;
    let banner = b.find("//div[@role='alert' and contains(normalize-space(), 'Upgrade on Friday')]").await;
    b.checked_shot("banner").await;
    // JavaScript reveals the close button; closed, the banner stays away this session.
    b.press("button", "Close the announcement").await;
    assert_eq!(b.displayed(&banner).await, json!(false));
    b.goto(&s.url("/projects")).await;
    let banner = b.find("//div[@role='alert' and contains(normalize-space(), 'Upgrade on Friday')]").await;
    assert_eq!(b.displayed(&banner).await, json!(false));

    // A global label.
    b.goto(&s.url("/admin/labels")).await;
    b.accessible().await;
    b.fill("Name", "gold").await;
    b.fill("Description", "release candidates").await;
    b.press("button", "Create").await;
    b.sees("Saved.").await;
    b.find("//th[@scope='row' and normalize-space()='gold']").await;
    b.checked_shot("global-labels").await;
    assert_eq!(ok_json(&s, "/api/v2.0/labels?scope=g", &admin()).await[0]["name"], "gold");
    b.close().await;
}

/// The project pages: the list (totals, sorted by name) to a project's summary, a push
/// command copied to the clipboard, two repositories deleted with one confirmation, the
/// list sorted by a column, a member's role changed; every page checked with axe, then the
/// summary again in Chinese with the dark theme.
#[tokio::test]
async fn browser_project_summary_copy_bulk_delete_and_member_role() {
    if !browser_available() {
        return;
    }
    let s = Server::start_harbor();
    create_user(&s, "mia").await;
    create_project(&s, &admin(), "team", false).await;
    add_member(&s, "team", "mia", 2).await;
    for r in ["r1", "r2", "r3"] {
        push_small_image_as(&s, &admin(), &format!("team/{r}"), "v1", r).await;
    }
    push_small_image_as(&s, &admin(), "team/r3", "v2", "r3b").await;
    let mut b = Browser::admin(&s, "projects").await;

    // The list with its totals, then the project's summary.
    b.goto(&s.url("/projects")).await;
    b.sees("All repositories").await;
    b.checked_shot("projects-totals").await;
    b.press("link", "team").await;
    b.sees("Push commands").await;
    b.sees("Members by role").await;
    assert!(b.url().await.ends_with("/projects/team"));
    b.checked_shot("summary").await;

    // Copy a push command: the button JavaScript revealed puts it on the clipboard.
    for name in ["clipboard-read", "clipboard-write"] {
        let p = json!({"descriptor": {"name": name}, "state": "granted"});
        b.cmd(reqwest::Method::POST, "/permissions", Some(p)).await;
    }
    let push = format!("docker push {}/team/REPOSITORY:TAG", s.addr);
    b.sees(&format!("<code>{push}</code>")).await;
    b.press("button", "Copy: Docker step 2").await;
    b.sees(">Copied<").await;
    let read = "const done = arguments[arguments.length - 1];\
                navigator.clipboard.readText().then(done).catch(e => done('error: ' + e));";
    let copied = b.cmd(reqwest::Method::POST, "/execute/async", Some(json!({"script": read, "args": []}))).await;
    assert_eq!(copied.as_str(), Some(push.as_str()));

    // The repositories, sorted by artifact count (most first on the second click).
    b.press("link", "Repositories").await;
    b.sees("Delete selected repositories").await;
    b.press("link", "Artifacts").await;
    b.sees(r#"aria-sort="ascending"><a href="/projects/team/repos?sort=-artifact_count""#).await;
    b.press("link", "Artifacts ▲").await;
    b.sees(r#"aria-sort="descending""#).await;
    let html = b.source().await;
    assert!(html.find(">team/r3<").unwrap() < html.find(">team/r1<").unwrap(), "{html}");
    b.checked_shot("repos-sorted").await;

    // Two ticked, one confirmation naming both, both gone.
    b.tick("Select team/r1").await;
    b.tick("Select team/r2").await;
    b.press("button", "Delete selected repositories").await;
    b.sees("Are you sure?").await;
    b.sees("<strong>team/r2</strong>").await;
    b.checked_shot("repos-bulk-confirm").await;
    b.press("button", "Delete").await;
    b.sees("Deleted 2 repositories.").await;
    let html = b.source().await;
    assert!(!html.contains(">team/r1<") && html.contains(">team/r3<"), "{html}");

    // A member's role, changed with the labelled select.
    b.press("link", "Members").await;
    b.choose("Role mia", "Maintainer").await;
    b.press("button", "Change role mia").await;
    b.sees("Saved.").await;
    let m = ok_json(&s, "/api/v2.0/projects/team/members?entityname=mia", &admin()).await;
    assert_eq!(m[0]["role_id"], 4);
    b.checked_shot("member-role").await;

    // The project's delete confirm page (the project still holds a repository: the API's
    // reason instead of the button).
    b.goto(&s.url("/projects/team")).await;
    b.press("link", "Delete project team").await;
    b.sees("contains repositories").await;
    b.accessible().await;

    // Chinese, dark.
    let pages = [
        ("/projects", "projects-zh-dark"),
        ("/projects/team", "summary-zh-dark"),
        ("/projects/team/repos", "repos-zh-dark"),
    ];
    zh_dark_pages(&mut b, &s, &pages).await;
    b.close().await;
}

#[tokio::test]
async fn browser_artifact_page_layers_config_untag_copy_delete() {
    if !browser_available() {
        return;
    }
    let s = Server::start_harbor();
    create_project(&s, &admin(), "team", false).await;
    let (dg, _, _, _) = crate::ui_artifact::push_built_image(&s, &admin(), "team/app", "v1").await;
    crate::ui::tag_many(&s, &admin(), "team/app", &dg, ["old"].into_iter().map(String::from)).await;
    // Another image, so the repository stays when the first is deleted.
    push_small_image_as(&s, &admin(), "team/app", "other", "other").await;
    let mut b = Browser::admin(&s, "artifact").await;

    // Layers with the step that made each, and the config.
    b.goto(&s.url(&format!("/projects/team/repos/app/-/artifacts/{dg}"))).await;
    b.sees("RUN /bin/sh -c apk add curl # buildkit").await;
    b.sees("8080/tcp").await;
    b.sees("PATH=/usr/bin").await;
    b.checked_shot("artifact-layers-config").await;

    // Remove a tag through its confirm page.
    b.press("link", "Remove tag old").await;
    b.sees("team/app:old").await;
    b.accessible().await;
    b.press("button", "Delete").await;
    b.sees("Tag removed.").await;
    assert!(!b.source().await.contains("<strong>old</strong>"));

    // Copy to another repository with an extra tag: the copy's page.
    b.fill("Target repository", "copy").await;
    b.fill("Extra tag (optional)", "extra").await;
    b.press("button", "Copy artifact").await;
    b.sees("Copied to team/copy.").await;
    b.sees("<strong>extra</strong>").await;
    b.checked_shot("artifact-copied").await;

    // Delete the original: the confirm page names its tag, then the artifact list.
    b.goto(&s.url(&format!("/projects/team/repos/app/-/artifacts/{dg}"))).await;
    b.press("link", "Delete this artifact").await;
    b.sees("These tags are deleted with it:").await;
    b.sees("<strong>v1</strong>").await;
    b.checked_shot("artifact-delete-confirm").await;
    b.press("button", "Delete").await;
    b.sees("Artifact deleted.").await;
    assert_eq!(
        get(&s, &format!("/api/v2.0/projects/team/repositories/app/artifacts/{dg}"), &admin()).await.status(),
        404
    );
    b.close().await;
}

/// The tags view sorted by push time and filtered by a glob, two tags deleted at once
/// through one confirmation, then a bulk scan from the artifact grid with its overview.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_tags_sort_glob_bulk_delete_and_bulk_scan() {
    if !browser_available() {
        return;
    }
    use crate::scanning::{OSV_FIXTURE, debian_layers, import, push_layers, wait_overview};
    let tmp = tempfile::tempdir().unwrap();
    import(&tmp.path().join("data"), OSV_FIXTURE);
    let s = Server::spawn(&tmp.path().join("data"), &[("BERTH_AUTH_MODE", "harbor")]);
    create_project(&s, &admin(), "team", false).await;
    let d1 = push_layers(&s, "team/app", "latest", &debian_layers()).await;
    push_small_image_as(&s, &admin(), "team/app", "v1.2", "a").await;
    push_small_image_as(&s, &admin(), "team/app", "v1.10", "b").await;
    push_small_image_as(&s, &admin(), "team/app", "v2.0", "c").await;
    let mut b = Browser::admin(&s, "tags-bulk").await;

    // Sorted by push time: the newest tag first, the column marked.
    b.goto(&s.url("/projects/team/repos/app/-/tags")).await;
    b.sees(">v2.0<").await;
    b.accessible().await;
    b.press("link", "Sort by Pushed").await;
    b.sees(r#"aria-sort="descending">Pushed<"#).await;
    let html = b.source().await;
    assert!(html.find(">v2.0<").unwrap() < html.find(">latest<").unwrap(), "{html}");
    b.checked_shot("tags-by-push").await;

    // A glob: only the v1.x tags, still by push time.
    b.fill("Tag name: a prefix or a glob", "v1.*").await;
    b.press("button", "Filter").await;
    b.sees(r#"value="v1.*""#).await;
    assert!(b.url().await.contains("sort=pushed"), "the sort kept");
    let html = b.source().await;
    assert!(html.contains(">v1.10<") && html.contains(">v1.2<") && !html.contains(">latest<"), "{html}");

    // Both ticked, one confirmation naming them, both gone.
    b.tick("Select v1.10").await;
    b.tick("Select v1.2").await;
    b.press("button", "Delete selected tags").await;
    b.sees("Delete these tags?").await;
    b.sees("team/app:v1.10").await;
    b.checked_shot("tags-bulk-confirm").await;
    b.press("button", "Delete").await;
    b.sees("Deleted 2 tags.").await;
    let html = b.source().await;
    assert!(!html.contains(">v1.10<") && html.contains(">latest<"), "{html}");

    // A bulk scan from the artifact grid; its overview in the grid.
    b.press("link", "Artifacts").await;
    b.tick(&format!("Select {}", short(&d1))).await;
    b.press("button", "Scan selected artifacts").await;
    b.sees("Started 1 scans.").await;
    wait_overview(&s, "/api/v2.0/projects/team/repositories/app/artifacts/latest", "vuln").await;
    b.goto(&s.url("/projects/team/repos/app/-/artifacts?tagged=yes")).await;
    b.sees("‼ Critical").await;
    b.sees("fixable").await;
    b.checked_shot("artifacts-scanned").await;
    b.close().await;
}

/// An artifact with a cosign signature, an SBOM and 60 tags: its tags paged (next,
/// previous), a copy that brings the accessories along and shows them on the target,
/// the artifact grid sorted by size, SBOMs generated and a scan stopped in bulk (the scan
/// queue paused, so the scan waits to be stopped); then the pages again in Chinese with
/// the dark theme.
#[tokio::test]
async fn browser_copy_with_accessories_tag_pages_grid_sort_and_bulk_stop_sbom() {
    if !browser_available() {
        return;
    }
    let s = Server::start_harbor();
    create_project(&s, &admin(), "team", false).await;
    let dg = push_small_image_as(&s, &admin(), "team/app", "t000", "paged").await;
    crate::signatures::push_cosign_signature(&s, &dg).await;
    crate::signatures::push_harbor_sbom(&s, &dg).await;
    crate::ui::tag_many(&s, &admin(), "team/app", &dg, (1..60).map(|i| format!("t{i:03}"))).await;
    let (big, ..) = crate::ui_artifact::push_built_image(&s, &admin(), "team/app", "big").await;
    let art = format!("/projects/team/repos/app/-/artifacts/{dg}");
    let mut b = Browser::admin(&s, "copy-pages-sort").await;

    // The tags a page at a time: 50, then the rest, then back.
    b.goto(&s.url(&art)).await;
    b.sees("<strong>t049</strong>").await;
    assert!(!b.source().await.contains("<strong>t050</strong>"), "one page of tags");
    b.accessible().await;
    b.press("link", "Next tags →").await;
    b.sees("<strong>t059</strong>").await;
    assert!(!b.source().await.contains("<strong>t049</strong>"));
    b.checked_shot("artifact-tags-page-2").await;
    b.press("link", "← Previous tags").await;
    b.sees("<strong>t000</strong>").await;

    // Copy: the target shows the signature and the SBOM as its accessories.
    b.fill("Target repository", "copy").await;
    b.press("button", "Copy artifact").await;
    b.sees("Copied to team/copy.").await;
    b.sees("signature.cosign").await;
    b.sees("sbom.harbor").await;
    b.checked_shot("artifact-copied-with-accessories").await;

    // The grid by size: smallest first, the column marked.
    b.goto(&s.url("/projects/team/repos/app/-/artifacts")).await;
    b.press("link", "Size (compressed, as stored)").await;
    b.sees(r#"aria-sort="ascending""#).await;
    assert!(b.url().await.contains("sort=size"));
    let html = b.source().await;
    assert!(
        html.find(&format!(r#"title="{dg}""#)).unwrap() < html.find(&format!(r#"title="{big}""#)).unwrap(),
        "{html}"
    );
    b.checked_shot("artifacts-by-size").await;

    // Bulk: SBOMs of both, then a scan of one stopped while it waits in the paused queue.
    pause_queue(&s, "IMAGE_SCAN").await;
    b.tick(&format!("Select {}", short(&dg))).await;
    b.tick(&format!("Select {}", short(&big))).await;
    b.press("button", "Generate SBOMs of selected artifacts").await;
    b.sees("Started 2 SBOM generations.").await;
    b.tick(&format!("Select {}", short(&big))).await;
    b.press("button", "Scan selected artifacts").await;
    b.sees("Started 1 scans.").await;
    b.tick(&format!("Select {}", short(&big))).await;
    b.press("button", "Stop scanning selected artifacts").await;
    b.sees("Stopped 1 scans.").await;
    b.checked_shot("artifacts-bulk-stop").await;

    zh_dark_pages(
        &mut b,
        &s,
        &[
            (format!("/projects/team/repos/copy/-/artifacts/{dg}?tags_after=t049"), "zh-dark-copy-tags-page"),
            ("/projects/team/repos/app/-/artifacts?sort=-size".to_string(), "zh-dark-artifacts-by-size"),
        ],
    )
    .await;
    b.sees("停止扫描所选制品").await;
    b.close().await;
}

/// What the tour of every page visits: the ids of the fixtures its parameterised pages
/// show (project `zh`, repository `zh/app`).
struct Tour {
    digest: String,
    user: i64,
    robot: i64,
    system_robot: i64,
    label: i64,
    global_label: i64,
    immutable: i64,
    webhook: i64,
    webhook_exec: i64,
    webhook_task: i64,
    retention_exec: i64,
    retention_task: i64,
    registry: i64,
    replication: i64,
    replication_exec: i64,
    replication_task: i64,
    scanner: String,
    gc: i64,
    purge: i64,
    job: i64,
    queue: String,
}

/// Every page the UI serves, as the tour visits them: (path, screenshot name). The sign-in
/// page is visited last, signed out. `every_ui_page_is_in_the_tour` checks this list
/// against the UI's router.
fn tour_pages(t: &Tour) -> Vec<(String, String)> {
    let repo = "/projects/zh/repos/app/-";
    let art = format!("{repo}/artifacts/{}", t.digest);
    let hook = format!("/projects/zh/webhooks/{}", t.webhook);
    let exec = format!("{hook}/executions/{}", t.webhook_exec);
    let rexec = format!("/projects/zh/retention/executions/{}", t.retention_exec);
    let pexec = format!("/admin/replications/executions/{}", t.replication_exec);
    let pages = [
        ("/projects".to_string(), "projects"),
        ("/projects/zh".into(), "summary"),
        ("/projects/zh/delete".into(), "project-delete"),
        ("/projects/zh/repos".into(), "repos"),
        (format!("{repo}/tags"), "tags"),
        (format!("{repo}/tags/v1/delete"), "tag-delete"),
        (format!("{repo}/artifacts"), "artifacts"),
        (format!("{repo}/info"), "info"),
        (art.clone(), "artifact"),
        (format!("{art}/tags/v1/delete"), "artifact-untag"),
        (format!("{art}/delete"), "artifact-delete"),
        (format!("{art}/vulnerabilities"), "vulnerabilities"),
        (format!("{art}/sbom"), "sbom"),
        (format!("{repo}/compare?a=v1&b=v2"), "compare"),
        ("/projects/zh/members".into(), "members"),
        ("/projects/zh/robots".into(), "robots"),
        (format!("/projects/zh/robots/{}/edit", t.robot), "robot-edit"),
        (format!("/projects/zh/robots/{}/delete", t.robot), "robot-delete"),
        ("/projects/zh/labels".into(), "labels"),
        (format!("/projects/zh/labels/{}/edit", t.label), "label-edit"),
        ("/projects/zh/settings".into(), "settings"),
        ("/projects/zh/webhooks".into(), "webhooks"),
        (format!("{hook}/edit"), "webhook-edit"),
        (format!("{hook}/targets/1/edit"), "webhook-target-edit"),
        (format!("{hook}/executions"), "webhook-executions"),
        (exec.clone(), "webhook-tasks"),
        (format!("{exec}/tasks/{}/log", t.webhook_task), "webhook-task-log"),
        ("/projects/zh/retention".into(), "retention"),
        (rexec.clone(), "retention-tasks"),
        (format!("{rexec}/tasks/{}/log", t.retention_task), "retention-task-log"),
        ("/projects/zh/signatures".into(), "signatures"),
        ("/projects/zh/immutability".into(), "immutability"),
        (format!("/projects/zh/immutability/{}/edit", t.immutable), "immutability-edit"),
        ("/projects/zh/audit".into(), "project-audit"),
        ("/projects/zh/scanner".into(), "project-scanner"),
        ("/search?q=app".into(), "search"),
        ("/prefs".into(), "prefs"),
        ("/account".into(), "account"),
        ("/admin/users".into(), "users"),
        (format!("/admin/users/{}/password", t.user), "user-password"),
        (format!("/admin/users/{}/delete", t.user), "user-delete"),
        ("/admin/labels".into(), "global-labels"),
        (format!("/admin/labels/{}/edit", t.global_label), "global-label-edit"),
        ("/admin/log-rotation".into(), "log-rotation"),
        (format!("/admin/log-rotation/{}/log", t.purge), "log-rotation-log"),
        ("/admin/jobs".into(), "jobs"),
        (format!("/admin/jobs/queues/{}", t.queue), "jobs-queue"),
        (format!("/admin/jobs/{}/log", t.job), "job-log"),
        ("/admin/robots".into(), "system-robots"),
        (format!("/admin/robots/{}/edit", t.system_robot), "system-robot-edit"),
        (format!("/admin/robots/{}/delete", t.system_robot), "system-robot-delete"),
        ("/admin/audit".into(), "audit"),
        ("/admin/config".into(), "config"),
        ("/admin/gc".into(), "gc"),
        ("/admin/gc/preview".into(), "gc-preview"),
        (format!("/admin/gc/{}/log", t.gc), "gc-log"),
        ("/admin/quotas".into(), "quotas"),
        ("/admin/health".into(), "health"),
        ("/admin/registries".into(), "registries"),
        (format!("/admin/registries/{}/edit", t.registry), "registry-edit"),
        ("/admin/replications".into(), "replications"),
        (format!("/admin/replications/{}/edit", t.replication), "replication-edit"),
        (pexec.clone(), "replication-tasks"),
        (format!("{pexec}/tasks/{}/log", t.replication_task), "replication-task-log"),
        ("/admin/scanners".into(), "scanners"),
        (format!("/admin/scanners/{}", t.scanner), "scanner"),
        ("/admin/scan-all".into(), "scan-all"),
        ("/admin/security".into(), "security-hub"),
        ("/admin/cve-allowlist".into(), "cve-allowlist"),
        ("/cve-exports".into(), "cve-exports"),
        ("/login".into(), "sign-in"),
    ];
    pages.into_iter().map(|(p, n)| (p, format!("{n}-zh-dark"))).collect()
}

/// The GET routes of the UI's router (`crates/berth-ui/src/lib.rs`), with the repository
/// catch-all expanded into the views `pages::repos::get` serves (`crates/berth-ui/src/
/// pages/repos.rs`; arms that only redirect left out): each as its path segments, `{…}`
/// for a parameter.
fn ui_get_routes() -> Vec<Vec<String>> {
    let lib = include_str!("../../../berth-ui/src/lib.rs");
    let repos = include_str!("../../../berth-ui/src/pages/repos.rs");
    let mut routes = Vec::new();
    for chunk in lib.split(".route(").skip(1) {
        let path = chunk.split('"').nth(1).expect("a route's path");
        if !chunk.contains("get(") {
            continue;
        }
        routes.push(path.to_string());
    }
    let views = {
        let body = repos.split("pub async fn get(").nth(1).expect("repos::get");
        let body = body.split("pub async fn post(").next().unwrap();
        body.lines()
            .map(str::trim)
            .filter(|l| l.starts_with('[') && l.contains("=>"))
            .map(|l| l.split("=>").next().unwrap().trim())
            .filter(|p| !p.contains('|') && *p != r#"[""]"#)
            .map(|p| {
                p.trim_matches(['[', ']'])
                    .split(',')
                    .map(|e| e.trim())
                    .map(|e| if e.starts_with('"') { e.trim_matches('"').to_string() } else { format!("{{{e}}}") })
                    .collect::<Vec<_>>()
                    .join("/")
            })
            .collect::<Vec<_>>()
    };
    assert!(views.len() >= 10, "the repository views were not found in repos.rs: {views:?}");
    let mut out = Vec::new();
    for r in routes {
        match r.split_once("/{*rest}") {
            Some((base, "")) if base.ends_with("/repos") => {
                for v in &views {
                    out.push(format!("{base}/{{repo}}/-/{v}"));
                }
            }
            _ => out.push(r),
        }
    }
    out.into_iter().map(|r| r.split('/').filter(|s| !s.is_empty()).map(str::to_string).collect()).collect()
}

/// Whether `path` (its query left out) is an address of `route`.
fn route_matches(route: &[String], path: &str) -> bool {
    let path = path.split('?').next().unwrap();
    let segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    if route.last().is_some_and(|l| l.starts_with("{*")) {
        return segs.len() >= route.len() && route[..route.len() - 1].iter().zip(&segs).all(|(r, s)| seg_matches(r, s));
    }
    route.len() == segs.len() && route.iter().zip(&segs).all(|(r, s)| seg_matches(r, s))
}

fn seg_matches(r: &str, s: &str) -> bool {
    if r.starts_with('{') { !s.is_empty() } else { r == s }
}

/// The GET routes that are not pages: redirects, assets, file downloads.
const NOT_PAGES: [&str; 8] = [
    "/",
    "/assets/ui.css",
    "/assets/ui.js",
    "/account/sign-in",
    "/harbor",
    "/harbor/{*rest}",
    "/admin/security/vulnerabilities.csv",
    "/cve-exports/{id}/download",
];

/// Every page the UI's router serves is in the tour of `browser_every_page_in_chinese_and_dark`:
/// a page added without being visited there fails here.
#[test]
fn every_ui_page_is_in_the_tour() {
    let t = Tour {
        digest: "sha256:0123".into(),
        user: 2,
        robot: 3,
        system_robot: 4,
        label: 5,
        global_label: 6,
        immutable: 7,
        webhook: 8,
        webhook_exec: 9,
        webhook_task: 10,
        retention_exec: 11,
        retention_task: 12,
        registry: 13,
        replication: 14,
        replication_exec: 15,
        replication_task: 16,
        scanner: "uuid".into(),
        gc: 17,
        purge: 18,
        job: 19,
        queue: "WEBHOOK".into(),
    };
    let tour: Vec<String> = tour_pages(&t).into_iter().map(|(p, _)| p).collect();
    let routes = ui_get_routes();
    let not_pages: Vec<Vec<String>> =
        NOT_PAGES.iter().map(|r| r.split('/').filter(|s| !s.is_empty()).map(str::to_string).collect()).collect();
    for n in &not_pages {
        assert!(routes.contains(n), "{n:?} is listed as not a page but the router has no such GET route");
    }
    let missing: Vec<String> = routes
        .iter()
        .filter(|r| !not_pages.contains(r))
        .filter(|r| !tour.iter().any(|p| route_matches(r, p)))
        .map(|r| format!("/{}", r.join("/")))
        .collect();
    assert!(missing.is_empty(), "pages the tour does not visit (add them to tour_pages): {missing:#?}");
    let stray: Vec<&String> = tour
        .iter()
        .filter(|p| !routes.iter().filter(|r| !not_pages.contains(r)).any(|r| route_matches(r, p)))
        .collect();
    assert!(stray.is_empty(), "tour pages no route serves: {stray:?}");
    assert!(routes.len() > 60, "only {} GET routes found: the parser lost its way", routes.len());
}

/// The page's text a reader meets, outside code and times: text nodes, and the names,
/// tooltips and placeholders of elements, and the title.
const PAGE_STRINGS: &str = r#"
const out = [document.title];
const skip = new Set(['CODE', 'PRE', 'KBD', 'SAMP', 'SCRIPT', 'STYLE', 'TEXTAREA', 'TIME']);
const walk = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
for (let n = walk.nextNode(); n; n = walk.nextNode()) {
  let inside = false;
  for (let e = n.parentElement; e; e = e.parentElement) { if (skip.has(e.tagName)) { inside = true; break; } }
  const t = n.textContent.trim();
  if (!inside && t) out.push(t);
}
for (const e of document.querySelectorAll('[aria-label], [title], [placeholder], [alt]')) {
  if (e.tagName === 'CODE' || e.tagName === 'TIME') continue;
  for (const a of ['aria-label', 'title', 'placeholder', 'alt']) {
    const v = e.getAttribute(a);
    if (v && v.trim()) out.push(v.trim());
  }
}
return out;
"#;

/// What on a Chinese page is still in English from the catalogue (a text or a name equal
/// to a message's English, or holding one of several words), or a key the catalogue lacks
/// (shown as "?").
fn english_left(strings: &[String]) -> Vec<String> {
    let mut found = Vec::new();
    for s in strings {
        if s == "?" {
            found.push("a message key missing from the catalogue (\"?\")".to_string());
        }
        for (key, en, zh) in berth_ui::catalogue() {
            if en == zh || !en.chars().any(|c| c.is_ascii_alphabetic()) {
                continue;
            }
            let phrase = en.contains(' ') && en.len() >= 10 && !en.contains('#');
            if s == en || (phrase && s.contains(en)) {
                found.push(format!("{key} ({en:?}) in {s:?}"));
            }
        }
    }
    found.sort();
    found.dedup();
    found
}

impl Browser {
    /// axe-core's serious and critical WCAG 2 A/AA violations on the current page.
    async fn axe_violations(&self) -> Vec<Value> {
        let script = format!(
            "{}\nconst done = arguments[arguments.length - 1];\
             axe.run(document, {{runOnly: {{type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa']}}}})\
               .then(r => done(r.violations.filter(v => v.impact === 'serious' || v.impact === 'critical')\
                 .map(v => ({{id: v.id, help: v.help, nodes: v.nodes.map(n => n.html).slice(0, 3)}}))))\
               .catch(e => done([{{id: 'axe-error', help: String(e)}}]));",
            self.axe
        );
        let v = self.cmd(reqwest::Method::POST, "/execute/async", Some(json!({"script": script, "args": []}))).await;
        v.as_array().cloned().unwrap_or_default()
    }

    /// What is wrong with the current page as a Chinese, dark one: its language and theme,
    /// English left from the catalogue, axe's violations.
    async fn zh_dark_problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        let html = self.source().await;
        if !html.contains(r#"lang="zh-CN""#) {
            out.push("not lang=\"zh-CN\"".to_string());
        }
        if !html.contains(r#"data-theme="dark""#) {
            out.push("not the dark theme".to_string());
        }
        let v =
            self.cmd(reqwest::Method::POST, "/execute/sync", Some(json!({"script": PAGE_STRINGS, "args": []}))).await;
        let strings: Vec<String> = v.as_array().unwrap().iter().map(|s| s.as_str().unwrap_or("").to_string()).collect();
        out.extend(english_left(&strings).into_iter().map(|e| format!("English left: {e}")));
        out.extend(self.axe_violations().await.into_iter().map(|v| format!("axe: {v}")));
        out
    }
}

/// Polls `GET path` as the administrator until `done` holds (up to 90 s); the answer.
async fn api_until(s: &Server, path: &str, what: &str, done: impl Fn(&Value) -> bool) -> Value {
    poll_json(s, path, what, Duration::from_secs(90), done).await
}

/// Every page the UI serves (`tour_pages`, checked against the router by
/// `every_ui_page_is_in_the_tour`), with fixtures for each parameterised one, in
/// Simplified Chinese with the dark theme: each is `lang="zh-CN"`, dark, shows no English
/// text of the catalogue nor a missing key, passes axe, and is screenshotted. Problems of
/// every page are gathered and reported together.
#[tokio::test]
async fn browser_every_page_in_chinese_and_dark() {
    if !browser_available() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let s = Server::spawn(&tmp.path().join("data"), &[("BERTH_AUTH_MODE", "harbor")]);
    let peer = Server::start_harbor();
    let post = async |path: &str, body: Value| -> reqwest::Response {
        let r = call(&s, reqwest::Method::POST, path, &admin(), Some(&body)).await;
        assert!(r.status().is_success(), "POST {path}: {}", r.status());
        r
    };

    // A project with a member, robots, labels, an immutable-tag rule, and a webhook with
    // two targets nobody listens on, listening to pushes; then two images pushed.
    let pid = create_project(&s, &admin(), "zh", false).await;
    let user = create_user(&s, "zhuser").await;
    add_member(&s, "zh", "zhuser", 2).await;
    let hook = json!({"name": "zhhook", "event_types": ["PUSH_ARTIFACT"], "targets": [
        {"type": "http", "address": "http://127.0.0.1:9/one", "payload_format": "Default"},
        {"type": "http", "address": "http://127.0.0.1:9/two", "payload_format": "CloudEvents"}]});
    let webhook = location_id(&post("/api/v2.0/projects/zh/webhook/policies", hook).await);
    let digest = push_small_image_as(&s, &admin(), "zh/app", "v1", "zh-one").await;
    push_small_image_as(&s, &admin(), "zh/app", "v2", "zh-two").await;
    let robot = json!({"name": "zhbot", "level": "project", "duration": -1, "permissions": [
        {"kind": "project", "namespace": "zh", "access": [{"resource": "repository", "action": "pull"}]}]});
    let robot = body_json(post("/api/v2.0/robots", robot).await).await["id"].as_i64().unwrap();
    let sysbot = json!({"name": "zhops", "level": "system", "duration": -1, "permissions": [
        {"kind": "system", "namespace": "/", "access": [{"resource": "audit-log", "action": "list"}]}]});
    let system_robot = body_json(post("/api/v2.0/robots", sysbot).await).await["id"].as_i64().unwrap();
    let label = location_id(&post("/api/v2.0/labels", json!({"name": "zhl", "scope": "p", "project_id": pid})).await);
    let global_label = location_id(&post("/api/v2.0/labels", json!({"name": "zhg", "scope": "g"})).await);
    let rule = json!({"tag_selectors": [{"kind": "doublestar", "decoration": "matches", "pattern": "rel-*"}],
        "scope_selectors": {"repository": [{"kind": "doublestar", "decoration": "repoMatches", "pattern": "**"}]}});
    let immutable = location_id(&post("/api/v2.0/projects/zh/immutabletagrules", rule).await);
    let hooks = format!("/api/v2.0/projects/zh/webhook/policies/{webhook}/executions");
    let execs = api_until(&s, &hooks, "a webhook execution", |v| !v.as_array().unwrap().is_empty()).await;
    let webhook_exec = execs[0]["id"].as_i64().unwrap();
    let tasks =
        api_until(&s, &format!("{hooks}/{webhook_exec}/tasks"), "webhook tasks", |v| v.as_array().unwrap().len() == 2)
            .await;
    let webhook_task = tasks[0]["id"].as_i64().unwrap();

    // Tag retention: a rule and a dry run (through the UI's forms), its execution and task.
    let mut w = crate::ui::signed_in(&s, "admin", ADMIN_PASSWORD).await;
    let fields = [
        ("repo_decoration", "repoMatches"),
        ("repos", "**"),
        ("template", "latestPushedK"),
        ("n", "1"),
        ("tag_decoration", "matches"),
        ("tags", "**"),
    ];
    w.submit("/projects/zh/retention", "/projects/zh/retention/rules", &fields).await.has("Saved.");
    w.submit("/projects/zh/retention", "/projects/zh/retention/run", &[("dry_run", "true")]).await;
    let rid =
        ok_json(&s, "/api/v2.0/projects/zh", &admin()).await["metadata"]["retention_id"].as_str().unwrap().to_string();
    let rexecs = format!("/api/v2.0/retentions/{rid}/executions");
    let e = api_until(&s, &rexecs, "a retention dry run", |v| v[0]["status"] == "Success").await;
    let retention_exec = e[0]["id"].as_i64().unwrap();
    let t = ok_json(&s, &format!("{rexecs}/{retention_exec}/tasks"), &admin()).await;
    let retention_task = t[0]["id"].as_i64().unwrap();

    // A registry endpoint (the peer), a push rule to it, one run with its task.
    w.submit(
        "/admin/registries",
        "/admin/registries",
        &[
            ("type", "harbor"),
            ("name", "zhpeer"),
            ("url", &peer.url("")),
            ("access_key", "admin"),
            ("access_secret", ADMIN_PASSWORD),
        ],
    )
    .await
    .has("Saved.");
    let registry = ok_json(&s, "/api/v2.0/registries", &admin()).await[0]["id"].as_i64().unwrap();
    let reg = registry.to_string();
    w.submit(
        "/admin/replications",
        "/admin/replications",
        &[("name", "zhrep"), ("mode", "push"), ("registry", &reg), ("filter", "zh/**"), ("trigger", "manual")],
    )
    .await
    .has("Saved.");
    let replication = ok_json(&s, "/api/v2.0/replication/policies", &admin()).await[0]["id"].as_i64().unwrap();
    w.submit("/admin/replications", &format!("/admin/replications/{replication}/run"), &[]).await;
    let e = api_until(&s, "/api/v2.0/replication/executions", "a replication", |v| {
        v[0]["status"].as_str().is_some_and(|s| !matches!(s, "InProgress" | "Pending" | "Running"))
    })
    .await;
    let replication_exec = e[0]["id"].as_i64().unwrap();
    let t = api_until(&s, &format!("/api/v2.0/replication/executions/{replication_exec}/tasks"), "tasks", |v| {
        !v.as_array().unwrap().is_empty()
    })
    .await;
    let replication_task = t[0]["id"].as_i64().unwrap();

    // A GC dry run and a log rotation dry run, with their logs.
    let gc_body = json!({"schedule": {"type": "Manual"}, "parameters": {"dry_run": true}});
    let gc = location_id(&post("/api/v2.0/system/gc/schedule", gc_body).await);
    let purge_body = json!({"schedule": {"type": "Manual"},
        "parameters": {"audit_retention_hour": 24, "include_operations": "create,delete,pull", "dry_run": true}});
    let purge = location_id(&post("/api/v2.0/system/purgeaudit/schedule", purge_body).await);
    let scanner = ok_json(&s, "/api/v2.0/scanners", &admin()).await[0]["uuid"].as_str().unwrap().to_string();
    let tour = Tour {
        digest,
        user,
        robot,
        system_robot,
        label,
        global_label,
        immutable,
        webhook,
        webhook_exec,
        webhook_task,
        retention_exec,
        retention_task,
        registry,
        replication,
        replication_exec,
        replication_task,
        scanner,
        gc,
        purge,
        // A webhook delivery is a job of the job service (its task id), retried: it waits
        // in the WEBHOOK queue.
        job: webhook_task,
        queue: "WEBHOOK".into(),
    };

    let mut b = Browser::admin(&s, "every-page").await;
    switch_to_zh_dark(&b, &s).await;
    let mut problems = Vec::new();
    let pages = tour_pages(&tour);
    for (path, shot) in &pages {
        if path == "/login" {
            // Signed out, the sign-in form keeps the language and theme.
            b.press("button", "退出").await;
            b.sees("您已退出").await;
            b.goto(&s.url(path)).await;
            b.sees(r#"name="password""#).await;
        } else {
            b.goto(&s.url(path)).await;
            b.sees("退出").await;
        }
        problems.extend(b.zh_dark_problems().await.into_iter().map(|p| format!("{path}: {p}")));
        b.shot(shot).await;
    }
    assert!(problems.is_empty(), "{} problems on {} pages:\n{}", problems.len(), pages.len(), problems.join("\n"));
    b.close().await;
}

/// Two users deleted with one confirmation, a job waiting in a paused queue seen and
/// stopped, and a webhook's second target edited in place; axe on every page.
#[tokio::test]
async fn browser_bulk_user_delete_waiting_jobs_and_webhook_target_edit() {
    use berth_core::store::jobs::{JobState, JobStore};
    if !browser_available() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let s = Server::spawn(&tmp.path().join("data"), &crate::jobs::sample_env());
    let ann = create_user(&s, "ann").await;
    let bob = create_user(&s, "bob").await;
    create_user(&s, "cat").await;
    pause_queue(&s, "SAMPLE").await;
    let store = crate::jobs::sqlite_of(&s);
    let (_, first) = crate::jobs::start_sample(store.as_ref(), 1).await;
    let (_, second) = crate::jobs::start_sample(store.as_ref(), 1).await;
    create_project(&s, &admin(), "web", false).await;
    let hook = json!({"name": "two", "event_types": ["PUSH_ARTIFACT"], "targets": [
        {"type": "http", "address": "http://127.0.0.1:9/first", "payload_format": "Default"},
        {"type": "http", "address": "http://127.0.0.1:9/second", "payload_format": "Default"}]});
    let r = call(&s, reqwest::Method::POST, "/api/v2.0/projects/web/webhook/policies", &admin(), Some(&hook)).await;
    let hook_id = location_id(&r);
    let mut b = Browser::admin(&s, "admin2").await;

    // Users: two ticked, one confirmation naming both, both gone.
    b.goto(&s.url("/admin/users")).await;
    b.tick("Select ann").await;
    b.tick("Select bob").await;
    b.accessible().await;
    b.press("button", "Delete selected users").await;
    b.sees("Delete these users?").await;
    b.sees("<strong>bob</strong>").await;
    b.checked_shot("users-bulk-confirm").await;
    b.press("button", "Delete").await;
    b.sees("Deleted 2 users.").await;
    b.checked_shot("users-bulk-deleted").await;
    for id in [ann, bob] {
        assert_eq!(get(&s, &format!("/api/v2.0/users/{id}"), &admin()).await.status(), 404);
    }
    assert!(b.source().await.contains(">cat<"));

    // Jobs: the paused queue's waiting jobs, one stopped from there.
    b.goto(&s.url("/admin/jobs")).await;
    b.press("link", "Waiting jobs: SAMPLE").await;
    b.sees("Next run").await;
    b.by_role("button", &format!("Stop SAMPLE {second}")).await;
    b.checked_shot("jobs-waiting").await;
    b.press("button", &format!("Stop SAMPLE {first}")).await;
    b.sees("Stop requested.").await;
    assert!(b.url().await.ends_with("/admin/jobs/queues/SAMPLE"));
    assert!(!b.source().await.contains(&format!("Stop SAMPLE {first}\"")));
    assert_eq!(store.job(first).await.unwrap().unwrap().state, JobState::Cancelled);
    assert_eq!(store.job(second).await.unwrap().unwrap().state, JobState::Queued);

    // A webhook's second target, edited in place.
    b.goto(&s.url(&format!("/projects/web/webhooks/{hook_id}/edit"))).await;
    b.press("link", "Edit http://127.0.0.1:9/second").await;
    b.sees("Edit a target").await;
    b.fill("Endpoint URL", "http://127.0.0.1:9/changed").await;
    b.fill("Auth header (sent as Authorization)", "Bearer two").await;
    b.choose("Payload format", "CloudEvents").await;
    b.checked_shot("webhook-target-edit").await;
    b.press("button", "Save").await;
    b.sees("Saved.").await;
    b.sees("http://127.0.0.1:9/changed").await;
    let p = ok_json(&s, &format!("/api/v2.0/projects/web/webhook/policies/{hook_id}"), &admin()).await;
    let t = &p["targets"];
    assert_eq!(
        (t[0]["address"].as_str(), t[1]["address"].as_str()),
        (Some("http://127.0.0.1:9/first"), Some("http://127.0.0.1:9/changed"))
    );
    assert_eq!(
        (t[1]["auth_header"].as_str(), t[1]["payload_format"].as_str()),
        (Some("Bearer two"), Some("CloudEvents"))
    );
    b.close().await;
}

/// The tags view in natural (version-aware) order, adding a tag from it (and a taken one
/// refused in the API's words), and its type filter; every page checked with axe and
/// screenshotted, then again in Chinese with the dark theme.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_tags_natural_order_add_tag_and_type_filter() {
    if !browser_available() {
        return;
    }
    const TAGS: &str = "/projects/team/repos/app/-/tags";
    let s = Server::start_harbor();
    create_project(&s, &admin(), "team", false).await;
    let d12 = push_small_image_as(&s, &admin(), "team/app", "v1.2", "a").await;
    push_small_image_as(&s, &admin(), "team/app", "v1.10", "b").await;
    push_small_image_as(&s, &admin(), "team/app", "v1.9", "c").await;
    crate::ui_tags_natural::push_chart(&s, "team/app", "chart-0.10.0").await;
    crate::ui_tags_natural::push_index_of(&s, "team/app", "multi", &d12).await;
    let mut b = Browser::admin(&s, "tags-natural").await;
    let in_order = |html: &str, names: &[&str]| {
        let at: Vec<usize> = names
            .iter()
            .map(|n| html.find(&format!(">{n}<")).unwrap_or_else(|| panic!("{n} not shown:\n{html}")))
            .collect();
        assert!(at.windows(2).all(|w| w[0] < w[1]), "{names:?} not in this order:\n{html}");
    };
    async fn url_has(b: &Browser, want: &str) {
        let deadline = Instant::now() + WAIT;
        while !b.url().await.contains(want) {
            assert!(Instant::now() < deadline, "the address never had {want}: {}", b.url().await);
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    // Bytewise first (v1.10 before v1.2); then the natural order chosen from the selector.
    b.goto(&s.url(TAGS)).await;
    b.sees(">v1.10<").await;
    in_order(&b.source().await, &["v1.10", "v1.2", "v1.9"]);
    b.choose("Order", "Name, versions in order (v1.2 before v1.10)").await;
    b.press("button", "Filter").await;
    url_has(&b, "sort=natural").await;
    b.sees(">v1.9<").await;
    in_order(&b.source().await, &["chart-0.10.0", "multi", "v1.2", "v1.9", "v1.10"]);
    b.checked_shot("tags-natural").await;

    // Add a tag to the artifact v1.9 names; a taken tag is refused in the API's words.
    b.fill("Artifact (a tag or digest)", "v1.9").await;
    b.fill("New tag", "v1.9-stable").await;
    b.press("button", "Add tag").await;
    b.sees("Tag added.").await;
    b.sees(">v1.9-stable<").await;
    b.fill("Artifact (a tag or digest)", "v1.2").await;
    b.fill("New tag", "v1.10").await;
    b.press("button", "Add tag").await;
    b.sees("already exists").await;
    b.checked_shot("tags-add-refused").await;

    // The type filter: Helm charts, then indexes, the natural order kept.
    b.goto(&s.url(&format!("{TAGS}?sort=natural"))).await;
    b.choose("Type", "Helm chart").await;
    b.press("button", "Filter").await;
    url_has(&b, "type=chart").await;
    b.sees(">chart-0.10.0<").await;
    let html = b.source().await;
    assert!(!html.contains(">v1.2<") && !html.contains(">multi<"), "{html}");
    assert!(b.url().await.contains("sort=natural"), "the order kept");
    b.checked_shot("tags-type-chart").await;
    b.choose("Type", "Index (several platforms)").await;
    b.press("button", "Filter").await;
    url_has(&b, "type=index").await;
    b.sees(">multi<").await;
    assert!(!b.source().await.contains(">chart-0.10.0<"));
    b.accessible().await;

    // In Chinese with the dark theme.
    zh_dark_pages(
        &mut b,
        &s,
        &[
            (format!("{TAGS}?sort=natural"), "tags-natural-zh-dark"),
            (format!("{TAGS}?sort=natural&type=image&name=v1*"), "tags-type-zh-dark"),
        ],
    )
    .await;
    b.sees("名称，按版本顺序").await;
    in_order(&b.source().await, &["v1.2", "v1.9", "v1.9-stable", "v1.10"]);
    b.close().await;
}

/// The tags view's kind column and an image's own platform (with its variant); SBOM
/// generations stopped in bulk from the artifact grid (the scan queue paused, so they
/// wait); the banner message's Markdown (a link, emphasis, code; a `javascript:` link
/// neutralised); a project's CVEs exported from the project list. Every page checked with
/// axe, then in Chinese with the dark theme.
#[tokio::test]
async fn browser_tags_kind_platform_stop_sbom_banner_markdown_and_list_cve_export() {
    if !browser_available() {
        return;
    }
    const TAGS: &str = "/projects/team/repos/app/-/tags";
    let s = Server::start_harbor();
    create_project(&s, &admin(), "team", false).await;
    let arm = crate::ui_tags_natural::push_image_for(
        &s,
        "team/app",
        "arm",
        r#""architecture":"arm","os":"linux","variant":"v7""#,
    )
    .await;
    let win =
        crate::ui_tags_natural::push_image_for(&s, "team/app", "win", r#""architecture":"amd64","os":"windows""#).await;
    crate::ui_tags_natural::push_chart(&s, "team/app", "chart-1.0.0").await;
    crate::ui_tags_natural::push_index_of(&s, "team/app", "multi", &arm).await;
    let banner = json!({"message": "*Upgrade* at `22:00`: [status](https://status.example.com) [x](javascript:alert(1))",
        "type": "warning", "closable": false});
    let r = call(
        &s,
        reqwest::Method::PUT,
        "/api/v2.0/configurations",
        &admin(),
        Some(&json!({"banner_message": banner.to_string()})),
    )
    .await;
    assert_eq!(r.status(), 200);
    let mut b = Browser::admin(&s, "kind-sbom-banner-export").await;

    // The banner: Markdown rendered, the unsafe link made harmless.
    b.goto(&s.url("/projects")).await;
    b.find("//div[@role='alert']//a[@href='https://status.example.com' and normalize-space()='status']").await;
    b.find("//div[@role='alert']//em[normalize-space()='Upgrade']").await;
    b.find("//div[@role='alert']//code[normalize-space()='22:00']").await;
    b.find("//div[@role='alert']//a[@href='#' and normalize-space()='x']").await;
    assert!(b.find_all("//div[@role='alert']//a[contains(@href, 'javascript')]").await.is_empty());
    b.checked_shot("banner-markdown").await;

    // The tags view: each row's kind in words; images' own platforms, an index's.
    b.goto(&s.url(TAGS)).await;
    b.find("//th[@scope='col' and normalize-space()='Kind']").await;
    let cell = |tag: &str, text: &str| {
        format!("//tr[th[@scope='row' and normalize-space()='{tag}']]/td[normalize-space()='{text}']")
    };
    b.find(&cell("arm", "Image")).await;
    b.find(&cell("arm", "linux/arm/v7")).await;
    b.find(&cell("win", "windows/amd64")).await;
    b.find(&cell("chart-1.0.0", "Helm chart")).await;
    b.find(&cell("multi", "Index (several platforms)")).await;
    b.checked_shot("tags-kind-platform").await;

    // The grid: SBOMs of both generated while the queue is paused, then stopped in bulk.
    pause_queue(&s, "IMAGE_SCAN").await;
    b.goto(&s.url("/projects/team/repos/app/-/artifacts")).await;
    b.tick(&format!("Select {}", short(&arm))).await;
    b.tick(&format!("Select {}", short(&win))).await;
    b.press("button", "Generate SBOMs of selected artifacts").await;
    b.sees("Started 2 SBOM generations.").await;
    b.tick(&format!("Select {}", short(&arm))).await;
    b.tick(&format!("Select {}", short(&win))).await;
    b.press("button", "Stop generating SBOMs of selected artifacts").await;
    b.sees("Stopped 2 SBOM generations.").await;
    b.checked_shot("artifacts-bulk-stop-sbom").await;

    // The project list: export the project's CVEs from its row.
    b.goto(&s.url("/projects")).await;
    b.press("button", "Export CVEs: team").await;
    b.sees("Export started.").await;
    assert!(b.url().await.contains("/cve-exports?project=team"));
    b.checked_shot("project-list-cve-export").await;

    zh_dark_pages(
        &mut b,
        &s,
        &[
            (TAGS.to_string(), "zh-dark-tags-kind-platform"),
            ("/projects/team/repos/app/-/artifacts".to_string(), "zh-dark-artifacts-stop-sbom"),
            ("/projects".to_string(), "zh-dark-projects-cve-export"),
        ],
    )
    .await;
    b.sees("导出 CVE").await;
    b.goto(&s.url(TAGS)).await;
    b.sees("制品种类").await;
    b.sees("<code>linux/arm/v7</code>").await;
    b.goto(&s.url("/projects/team/repos/app/-/artifacts")).await;
    b.sees("停止为所选制品生成 SBOM").await;
    b.close().await;
}

/// Log rotation by event type: the API's event types as labelled checkboxes (one ticked
/// with the keyboard), purge now, the run in the history, and only those entries gone.
#[tokio::test]
async fn browser_log_rotation_purges_chosen_event_types() {
    if !browser_available() {
        return;
    }
    let s = Server::start_harbor();
    let old = crate::jobs::now() - 7200;
    let entries = [
        ("delete", "user", "old-gone", old),
        ("update", "project", "old-gone-too", old),
        ("create", "user", "old-kept", old),
    ];
    crate::jobs::append_audit(&s, &entries).await;
    let mut b = Browser::admin(&s, "admin").await;
    b.goto(&s.url("/admin/log-rotation")).await;
    b.sees("Event types to purge").await;
    b.accessible().await;
    b.fill("Keep audit log entries for", "1").await;
    b.choose("Unit", "hours").await;
    // Only the chosen ones: untick the defaults (creations, deletions, pulls) first.
    for e in b.find_all("//fieldset[contains(@class,'event-types')]//input[@type='checkbox']").await {
        if b.cmd(reqwest::Method::GET, &format!("/element/{e}/selected"), None).await == json!(true) {
            b.click(&e).await;
        }
    }
    // Labelled in words ("Delete user"), the code its value and description.
    let delete_user = b.find("//input[@type='checkbox' and @value='delete_user']").await;
    let name = b.cmd(reqwest::Method::GET, &format!("/element/{delete_user}/computedlabel"), None).await;
    assert_eq!(name, json!("Delete user"));
    b.click(&delete_user).await;
    // With the keyboard: the space bar ticks the focused checkbox.
    let update = b.find("//input[@type='checkbox' and @value='update_project']").await;
    b.cmd(reqwest::Method::POST, &format!("/element/{update}/value"), Some(json!({"text": " "}))).await;
    assert_eq!(b.cmd(reqwest::Method::GET, &format!("/element/{update}/selected"), None).await, json!(true));
    b.press("button", "Purge now").await;
    b.sees("Audit log purge started.").await;
    b.reload_until(&s.url("/admin/log-rotation"), "✔ Success", "the purge").await;
    b.checked_shot("log-rotation-event-types").await;
    let runs = ok_json(&s, "/api/v2.0/system/purgeaudit", &admin()).await;
    let params: Value = serde_json::from_str(runs[0]["job_parameters"].as_str().unwrap()).unwrap();
    assert_eq!(params["include_event_types"], "update_project,delete_user", "in the list's order");
    let log = b.find("//a[starts-with(@aria-label, 'Log ')]").await;
    b.click(&log).await;
    b.sees("purged 2 audit log entries").await;
    b.accessible().await;
    let left = ok_json(&s, "/api/v2.0/audit-logs?page_size=100", &admin()).await;
    let left: Vec<&str> = left.as_array().unwrap().iter().map(|e| e["resource"].as_str().unwrap()).collect();
    assert!(left.contains(&"old-kept") && !left.contains(&"old-gone") && !left.contains(&"old-gone-too"), "{left:?}");
    b.close().await;
}

/// The configuration page's audit event types not recorded (`audit_log_disable`): a type
/// ticked with the keyboard, saved, still ticked after a reload and in effect; in Chinese
/// the labels are translated (no English left); axe on each.
#[tokio::test]
async fn browser_config_audit_event_types_not_recorded() {
    if !browser_available() {
        return;
    }
    let s = Server::start_harbor();
    let mut b = Browser::admin(&s, "audit-disable").await;
    b.goto(&s.url("/admin/config")).await;
    b.sees("Audit log event types not recorded").await;
    b.accessible().await;
    let xpath = "//fieldset[contains(@class,'event-types')]//input[@type='checkbox' and @value='create_project']";
    let selected = async |b: &Browser| {
        let e = b.find(xpath).await;
        b.cmd(reqwest::Method::GET, &format!("/element/{e}/selected"), None).await == json!(true)
    };
    let e = b.find(xpath).await;
    let name = b.cmd(reqwest::Method::GET, &format!("/element/{e}/computedlabel"), None).await;
    assert_eq!(name, json!("Create project"));
    assert!(!selected(&b).await);
    // The space bar ticks the focused checkbox.
    b.cmd(reqwest::Method::POST, &format!("/element/{e}/value"), Some(json!({"text": " "}))).await;
    assert!(selected(&b).await);
    // The system settings form's own Save (the authentication form has one too).
    let save = b.find("//form[@aria-labelledby='cfg-system']//button[@type='submit']").await;
    b.click(&save).await;
    b.sees("Saved.").await;
    b.goto(&s.url("/admin/config")).await;
    b.sees("Audit log event types not recorded").await;
    assert!(selected(&b).await, "still ticked after a reload");
    let cfg = ok_json(&s, "/api/v2.0/configurations", &admin()).await;
    assert_eq!(cfg["audit_log_disable"]["value"], "create_project");
    create_project(&s, &admin(), "unheard", false).await;
    assert_eq!(ok_json(&s, "/api/v2.0/audit-logs?q=resource=unheard", &admin()).await, json!([]));
    b.accessible().await;
    let to_types = json!({"script": "document.querySelector('fieldset.event-types').scrollIntoView()", "args": []});
    b.cmd(reqwest::Method::POST, "/execute/sync", Some(to_types.clone())).await;
    b.shot("config-audit-event-types").await;

    // Simplified Chinese (and dark, as the Chinese tour checks pages).
    switch_to_zh_dark(&b, &s).await;
    b.goto(&s.url("/admin/config")).await;
    b.sees("不记录的审计日志事件类型").await;
    let e = b.find(xpath).await;
    let name = b.cmd(reqwest::Method::GET, &format!("/element/{e}/computedlabel"), None).await;
    assert_eq!(name, json!("创建项目"));
    assert!(selected(&b).await);
    let problems = b.zh_dark_problems().await;
    assert!(problems.is_empty(), "{problems:#?}");
    b.cmd(reqwest::Method::POST, "/execute/sync", Some(to_types)).await;
    b.shot("config-audit-event-types-zh").await;
    b.close().await;
}
