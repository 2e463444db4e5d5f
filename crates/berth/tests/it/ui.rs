//! The web UI over HTTP: every page and action as HTML, as each role (admin, developer,
//! guest, anonymous), with the sessions, CSRF tokens and cookies a browser would send.
//! The real-browser flows are in `ui_browser.rs`.

use std::collections::HashMap;

use reqwest::Method;

use crate::support::*;

/// A cookie-keeping, non-redirecting client: what a browser does, made visible.
pub struct Web<'a> {
    s: &'a Server,
    pub cookies: HashMap<String, String>,
}

pub struct Page {
    pub status: u16,
    pub location: String,
    pub body: String,
}

impl Page {
    pub fn csrf(&self) -> String {
        let at = self.body.find(r#"name="_csrf" value=""#).unwrap_or_else(|| panic!("no CSRF field in {}", self.body));
        let rest = &self.body[at + r#"name="_csrf" value=""#.len()..];
        rest[..rest.find('"').unwrap()].to_string()
    }

    #[track_caller]
    pub fn has(&self, text: &str) -> &Self {
        assert!(self.body.contains(text), "page (status {}) lacks {text:?}:\n{}", self.status, self.body);
        self
    }

    #[track_caller]
    pub fn lacks(&self, text: &str) -> &Self {
        assert!(!self.body.contains(text), "page (status {}) has {text:?}:\n{}", self.status, self.body);
        self
    }
}

impl<'a> Web<'a> {
    pub fn new(s: &'a Server) -> Web<'a> {
        Web { s, cookies: HashMap::new() }
    }

    async fn send(&mut self, method: Method, path: &str, form: Option<&[(&str, &str)]>) -> Page {
        let mut r = client().request(method, self.s.url(path));
        if !self.cookies.is_empty() {
            let c: Vec<String> = self.cookies.iter().map(|(k, v)| format!("{k}={v}")).collect();
            r = r.header("cookie", c.join("; "));
        }
        if let Some(f) = form {
            let body: String = form_encode(f);
            r = r.header("content-type", "application/x-www-form-urlencoded").body(body);
        }
        let res = r.send().await.unwrap();
        for c in res.headers().get_all("set-cookie") {
            let c = c.to_str().unwrap();
            let (kv, attrs) = c.split_once(';').unwrap_or((c, ""));
            let (k, v) = kv.split_once('=').unwrap();
            if attrs.contains("Max-Age=0") || v.is_empty() {
                self.cookies.remove(k);
            } else {
                self.cookies.insert(k.to_string(), v.to_string());
            }
        }
        let status = res.status().as_u16();
        let location = header(&res, "location");
        Page { status, location, body: res.text().await.unwrap() }
    }

    pub async fn get(&mut self, path: &str) -> Page {
        self.send(Method::GET, path, None).await
    }

    /// GET that must answer 200.
    pub async fn page(&mut self, path: &str) -> Page {
        let p = self.get(path).await;
        assert_eq!(p.status, 200, "GET {path}: {} {}", p.location, p.body);
        p
    }

    pub async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> Page {
        self.send(Method::POST, path, Some(form)).await
    }

    /// Submits a form found on `page_path` (its CSRF token included); expects a
    /// redirect and returns the page it leads to.
    pub async fn submit(&mut self, page_path: &str, action: &str, fields: &[(&str, &str)]) -> Page {
        let r = post_from(self, page_path, action, fields).await;
        assert_eq!(r.status, 303, "POST {action}: {}", r.body);
        self.page(&r.location.clone()).await
    }

    pub async fn sign_in(&mut self, user: &str, password: &str) {
        let csrf = self.page("/login").await.csrf();
        let r = self
            .post("/login", &[("_csrf", &csrf), ("principal", user), ("password", password), ("next", "/projects")])
            .await;
        assert_eq!((r.status, r.location.as_str()), (303, "/projects"), "sign in {user}: {}", r.body);
        assert!(self.cookies.contains_key("sid"), "a session cookie");
    }
}

/// A fresh client, signed in as `user`.
pub async fn signed_in<'a>(s: &'a Server, user: &str, password: &str) -> Web<'a> {
    let mut w = Web::new(s);
    w.sign_in(user, password).await;
    w
}

/// POSTs `fields` with the CSRF token of `page_path`; answers the response itself (a
/// redirect, or a page answered at once).
pub async fn post_from(w: &mut Web<'_>, page_path: &str, action: &str, fields: &[(&str, &str)]) -> Page {
    let csrf = w.page(page_path).await.csrf();
    let mut f = vec![("_csrf", csrf.as_str())];
    f.extend_from_slice(fields);
    w.post(action, &f).await
}

fn form_encode(f: &[(&str, &str)]) -> String {
    f.iter().map(|(k, v)| format!("{}={}", enc(k), enc(v))).collect::<Vec<_>>().join("&")
}

fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Tags one manifest with many names over /v2 (a PUT per tag, no new blobs).
pub async fn tag_many(s: &Server, who: &Who, repo: &str, digest_of: &str, tags: impl Iterator<Item = String>) {
    let m = get(s, &format!("/v2/{repo}/manifests/{digest_of}"), who).await;
    let ct = header(&m, "content-type");
    let body = m.bytes().await.unwrap();
    for t in tags {
        let r = who
            .apply(client().put(s.url(&format!("/v2/{repo}/manifests/{t}"))))
            .header("content-type", ct.clone())
            .body(body.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201, "tag {t}");
    }
}

#[tokio::test]
async fn ui_sign_in_and_out_ends_the_session_everywhere() {
    let s = Server::start_harbor();
    let mut w = Web::new(&s);
    // Signed out: every page leads to the sign-in form, which says where to come back.
    let r = w.get("/projects").await;
    assert_eq!((r.status, r.location.as_str()), (303, "/login?next=%2Fprojects"));
    let login = w.page("/login?next=%2Fprojects").await;
    login.has(r#"<label for="principal">"#).has(r#"<label for="password">"#).has("Skip to content");
    // A form without the right CSRF token is refused; so is a wrong password.
    let r = w.post("/login", &[("_csrf", "x"), ("principal", "admin"), ("password", ADMIN_PASSWORD)]).await;
    assert_eq!(r.status, 303);
    assert!(!w.cookies.contains_key("sid"));
    w.page(&r.location).await.has("The form expired");
    let csrf = w.page("/login").await.csrf();
    let r = w.post("/login", &[("_csrf", &csrf), ("principal", "admin"), ("password", "wrong")]).await;
    assert_eq!(r.status, 303);
    w.page(&r.location).await.has("Invalid user name or password").has(r#"role="alert""#);
    // `next` never leads to another site.
    let csrf = w.page("/login").await.csrf();
    let r = w
        .post(
            "/login",
            &[("_csrf", &csrf), ("principal", "admin"), ("password", ADMIN_PASSWORD), ("next", "//evil.example")],
        )
        .await;
    assert_eq!((r.status, r.location.as_str()), (303, "/projects"));
    let sid = w.cookies["sid"].clone();
    let p = w.page("/projects").await;
    p.has("library").has("Signed in as").has(r#"<a href="/account"><strong>admin</strong></a>"#);
    // The session is Harbor's: the API accepts the same cookie.
    ok_json(&s, "/api/v2.0/users/current", &Who::Cookie(sid.clone(), None)).await;
    // Signing out revokes the session: a kept copy of the cookie is refused too.
    let csrf = p.csrf();
    let r = w.post("/logout", &[("_csrf", &csrf)]).await;
    assert_eq!((r.status, r.location.as_str()), (303, "/login"));
    assert!(!w.cookies.contains_key("sid"));
    w.page("/login").await.has("You are signed out");
    assert_eq!(get(&s, "/api/v2.0/users/current", &Who::Cookie(sid.clone(), None)).await.status(), 401);
    let mut copy = Web::new(&s);
    copy.cookies.insert("sid".into(), sid);
    assert_eq!(copy.get("/projects").await.status, 303, "the copied cookie no longer signs in");
    // Old Harbor portal URLs lead here.
    let r = w.get("/account/sign-in").await;
    assert_eq!((r.status, r.location.as_str()), (308, "/login"));
}

#[tokio::test]
async fn ui_projects_repositories_tags_and_delete_as_each_role() {
    let s = Server::start_harbor();
    create_user(&s, "dev").await;
    create_user(&s, "gst").await;
    let mut admin_w = signed_in(&s, "admin", ADMIN_PASSWORD).await;
    // Create a project through the form.
    let p = admin_w.submit("/projects", "/projects", &[("project_name", "shop"), ("public", "true")]).await;
    p.has("Project created.").has(r#"role="status""#).has("Repositories");
    // A project name the API refuses comes back with the API's message.
    let p = admin_w.submit("/projects", "/projects", &[("project_name", "Bad Name")]).await;
    p.has(r#"role="alert""#);
    add_member(&s, "shop", "dev", 2).await;
    add_member(&s, "shop", "gst", 3).await;
    let digest = push_small_image_as(&s, &admin(), "shop/app/web", "v1", "one").await;
    push_small_image_as(&s, &admin(), "shop/app/web", "v2", "two").await;

    // Lists: projects (filter), repositories.
    admin_w.page("/projects?name=sho").await.has(r#"href="/projects/shop""#).has("Public");
    admin_w.page("/projects?name=nothing-like-it").await.has("Nothing here yet");
    let repos = admin_w.page("/projects/shop/repos").await;
    repos.has(r#"href="/projects/shop/repos/app/web/-/tags""#).has("shop/app/web");
    admin_w.page("/projects/shop").await.has(r#"aria-current="page">Summary<"#);
    let r = admin_w.get("/projects/shop/repos/app/web").await;
    assert_eq!((r.status, r.location.as_str()), (303, "/projects/shop/repos/app/web/-/tags"));

    // The tags view as a guest: tags with pull commands, no delete.
    let mut guest = signed_in(&s, "gst", PW).await;
    let tags = guest.page("/projects/shop/repos/app/web/-/tags").await;
    tags.has(">v1<").has(">v2<").has(&format!("docker pull {}/shop/app/web:v1", s.addr)).lacks("/delete");
    tags.has(&format!("/projects/shop/repos/app/web/-/artifacts/{digest}"));
    // … and the server refuses a guest's delete anyway (the API's rule, the API's words).
    let csrf = tags.csrf();
    let r = guest.post("/projects/shop/repos/app/web/-/tags/v1/delete", &[("_csrf", &csrf)]).await;
    assert_eq!(r.status, 303);
    guest.page(&r.location).await.has(r#"role="alert""#).has(">v1<");
    // Without the session's CSRF token nothing happens either.
    let r = admin_w.post("/projects/shop/repos/app/web/-/tags/v1/delete", &[("_csrf", &csrf)]).await;
    assert_eq!(r.status, 303);
    admin_w.page(&r.location).await.has("The form expired").has(">v1<");

    // Pull client preference changes the commands.
    let csrf = guest.page("/prefs").await.csrf();
    let r = guest.post("/prefs", &[("_csrf", &csrf), ("lang", "en"), ("theme", "dark"), ("client", "podman")]).await;
    assert_eq!(r.status, 303);
    let tags = guest.page("/projects/shop/repos/app/web/-/tags").await;
    tags.has(&format!("podman pull {}/shop/app/web:v2", s.addr)).has(r#"data-theme="dark""#);

    // A developer may not delete tags either (Harbor: tag delete is for maintainers up).
    let mut dev = signed_in(&s, "dev", PW).await;
    dev.page("/projects/shop/repos/app/web/-/tags").await.lacks("/delete");

    // The admin deletes v1 through the confirm page.
    let tags = admin_w.page("/projects/shop/repos/app/web/-/tags").await;
    tags.has(r#"href="/projects/shop/repos/app/web/-/tags/v1/delete""#);
    let confirm = admin_w.page("/projects/shop/repos/app/web/-/tags/v1/delete").await;
    confirm.has("shop/app/web:v1").has(r#"method="post""#);
    let r = admin_w.post("/projects/shop/repos/app/web/-/tags/v1/delete", &[("_csrf", &confirm.csrf())]).await;
    assert_eq!((r.status, r.location.as_str()), (303, "/projects/shop/repos/app/web/-/tags"));
    admin_w.page(&r.location).await.has("Tag deleted.").lacks(">v1<").has(">v2<");
    let audit = ok_json(&s, "/api/v2.0/audit-logs?q=operation=delete", &admin()).await;
    assert!(audit.to_string().contains("shop/app/web:v1"), "the API's audit entry: {audit}");

    // Artifact detail.
    let d2 = push_small_image_as(&s, &admin(), "shop/app/web", "v3", "three").await;
    let a = admin_w.page(&format!("/projects/shop/repos/app/web/-/artifacts/{d2}")).await;
    a.has(&d2).has(">v3<").has(&format!("docker pull {}/shop/app/web@{d2}", s.addr));

    // The artifact view: one row per artifact with its tags.
    let arts = admin_w.page("/projects/shop/repos/app/web/-/artifacts").await;
    arts.has(&format!("/projects/shop/repos/app/web/-/artifacts/{d2}")).has("<code>v3</code>").has("<code>v2</code>");
    arts.has(r#"href="/projects/shop/repos/app/web/-/tags""#);

    // Search by tag.
    let found = admin_w.page("/search?q=web:v").await;
    found.has("shop/app/web:v2").has("shop/app/web:v3");
    admin_w.page("/search?q=v3").await.has("shop/app/web:v3");

    // Another user's private project: the API's refusal, as a page.
    create_project(&s, &admin(), "secret", false).await;
    push_small_image_as(&s, &admin(), "secret/x", "t", "s").await;
    let r = guest.get("/projects/secret/repos/x/-/tags").await;
    assert_eq!(r.status, 403, "{}", r.body);
    let r = guest.get("/projects/secret/repos").await;
    assert_eq!(r.status, 403);
    guest.page("/search?q=t").await.lacks("secret/x");
}

#[tokio::test]
async fn ui_tags_keyset_paging_and_prefix_filter() {
    let s = Server::start_harbor();
    let mut w = signed_in(&s, "admin", ADMIN_PASSWORD).await;
    let d = push_small_image_as(&s, &admin(), "library/many", "t000", "x").await;
    tag_many(&s, &admin(), "library/many", &d, (1..120).map(|i| format!("t{i:03}"))).await;
    let p1 = w.page("/projects/library/repos/many/-/tags").await;
    p1.has(">t000<").has(">t049<").lacks(">t050<").has(r#"href="/projects/library/repos/many/-/tags?after=t049""#);
    let p2 = w.page("/projects/library/repos/many/-/tags?after=t049").await;
    p2.has(">t050<").has(">t099<").lacks(">t049<").has("?after=t099").has("First page");
    let p3 = w.page("/projects/library/repos/many/-/tags?after=t099").await;
    p3.has(">t119<").lacks("?after=t119").lacks(r#"rel="next""#);
    let f = w.page("/projects/library/repos/many/-/tags?prefix=t11").await;
    f.has(">t110<").has(">t119<").lacks(">t109<").lacks(">t000<");
}

#[tokio::test]
async fn ui_members_robots_labels_settings_policies() {
    let s = Server::start_harbor();
    create_user(&s, "mia").await;
    create_user(&s, "gus").await;
    create_project(&s, &admin(), "team", false).await;
    add_member(&s, "team", "gus", 3).await;
    let mut w = signed_in(&s, "admin", ADMIN_PASSWORD).await;

    // Members: add, see, remove.
    let m =
        w.submit("/projects/team/members", "/projects/team/members", &[("username", "mia"), ("role_id", "4")]).await;
    m.has("Member added.").has(">mia<").has("Maintainer");
    let bad =
        w.submit("/projects/team/members", "/projects/team/members", &[("username", "nobody"), ("role_id", "2")]).await;
    bad.has(r#"role="alert""#);
    let members = ok_json(&s, "/api/v2.0/projects/team/members?entityname=mia", &admin()).await;
    let mid = members[0]["id"].as_i64().unwrap().to_string();
    let m =
        w.submit("/projects/team/members", &format!("/projects/team/members/{mid}/role"), &[("role_id", "2")]).await;
    m.has("Saved.");
    let members = ok_json(&s, "/api/v2.0/projects/team/members?entityname=mia", &admin()).await;
    assert_eq!(members[0]["role_id"], 2);
    let m = w.submit("/projects/team/members", &format!("/projects/team/members/{mid}/delete"), &[]).await;
    m.has("Deleted.").lacks(">mia<");

    // Robots: the secret is shown once, on the answer to the create.
    let csrf = w.page("/projects/team/robots").await.csrf();
    let r = w
        .post(
            "/projects/team/robots",
            &[
                ("_csrf", &csrf),
                ("name", "ci"),
                ("description", "builds"),
                ("duration", "-1"),
                ("perm", "repository:pull"),
                ("perm", "repository:push"),
            ],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let created = Page { status: 200, location: String::new(), body: r.body };
    created.has("shown only once").has("robot$team+ci");
    let secret_at = created.body.find(r#"data-copy=""#).unwrap();
    let secret = &created.body[secret_at + 11..];
    let secret = &secret[..secret.find('"').unwrap()];
    assert!(secret.len() >= 8, "{secret}");
    // It works (a push with it), and it is never shown again.
    push_small_image_as(&s, &Who::Basic("robot$team+ci".into(), secret.into()), "team/built", "1", "r").await;
    w.page("/projects/team/robots").await.has("robot$team+ci").lacks(secret).has("Never");
    let robots = ok_json(&s, "/api/v2.0/robots?q=Level=project,ProjectID=2", &admin()).await;
    let rid = robots[0]["id"].as_i64().unwrap();
    w.page(&format!("/projects/team/robots/{rid}/delete")).await.has("Are you sure?");
    let r = w
        .submit(&format!("/projects/team/robots/{rid}/delete"), &format!("/projects/team/robots/{rid}/delete"), &[])
        .await;
    r.has("Deleted.").lacks("robot$team+ci");

    // Labels.
    let l = w
        .submit(
            "/projects/team/labels",
            "/projects/team/labels",
            &[("name", "prod"), ("color", "#aa0000"), ("description", "live")],
        )
        .await;
    l.has(">prod<").has("#aa0000");

    // Settings: public flag, through the API's project update.
    let st = w.submit("/projects/team/settings", "/projects/team/settings", &[("public", "true")]).await;
    st.has("Saved.");
    let proj = ok_json(&s, "/api/v2.0/projects/team", &admin()).await;
    assert_eq!(proj["metadata"]["public"], "true");

    // Immutable-tag rules: create, and the rule holds for the registry.
    let im = w
        .submit("/projects/team/immutability", "/projects/team/immutability", &[("repos", "**"), ("tags", "rel-*")])
        .await;
    im.has("rel-*");
    let rules = ok_json(&s, "/api/v2.0/projects/team/immutabletagrules", &admin()).await;
    assert_eq!(rules.as_array().unwrap().len(), 1);

    // Webhooks.
    let wh = w
        .submit(
            "/projects/team/webhooks",
            "/projects/team/webhooks",
            &[("name", "notify"), ("address", "http://127.0.0.1:9/hook"), ("event", "PUSH_ARTIFACT")],
        )
        .await;
    wh.has(">notify<").has("http://127.0.0.1:9/hook").has("PUSH_ARTIFACT");
    w.page("/projects/team/audit").await.has("create");

    // A guest sees the pages without the forms that would change anything.
    let mut g = signed_in(&s, "gus", PW).await;
    g.page("/projects/team/members").await.lacks("Add member").lacks("Remove").lacks("Change role");
    g.page("/projects/team/robots").await.lacks("New robot account");
    g.page("/projects/team/labels").await.lacks("New label");
    g.page("/projects/team/settings").await.has("<fieldset disabled>");
    let csrf = g.page("/projects/team/settings").await.csrf();
    let r = g.post("/projects/team/settings", &[("_csrf", &csrf)]).await;
    g.page(&r.location).await.has(r#"role="alert""#);
    assert_eq!(ok_json(&s, "/api/v2.0/projects/team", &admin()).await["metadata"]["public"], "true");
}

#[tokio::test]
async fn ui_admin_pages_language_and_portal_redirects() {
    let s = Server::start_harbor();
    create_user(&s, "ann").await;
    let mut w = signed_in(&s, "admin", ADMIN_PASSWORD).await;
    let u = w
        .submit(
            "/admin/users",
            "/admin/users",
            &[("username", "bob"), ("email", "bob@example.com"), ("realname", "Bob"), ("password", "Passw0rd1")],
        )
        .await;
    u.has("User created.").has(">bob<");
    w.page("/admin/users?name=an").await.has(">ann<").lacks(">bob<");
    w.page("/admin/audit").await.has("bob");
    w.page("/admin/audit?op=delete").await.lacks(">bob<");
    let c = w
        .submit(
            "/admin/config",
            "/admin/config",
            &[
                ("project_creation_restriction", "adminonly"),
                ("session_timeout", "45"),
                ("robot_name_prefix", "robot$"),
            ],
        )
        .await;
    c.has("Saved.").has(r#"value="45""#);
    let cfg = ok_json(&s, "/api/v2.0/configurations", &admin()).await;
    assert_eq!(cfg["project_creation_restriction"]["value"], "adminonly");
    let g = w.submit("/admin/gc", "/admin/gc", &[("dry_run", "true")]).await;
    g.has("Garbage collection started.");
    let jobs = w.page("/admin/jobs").await;
    jobs.has("GARBAGE_COLLECTION");

    // Read-only mode: signing in and out still works, changes come back with the API's refusal.
    w.submit(
        "/admin/config",
        "/admin/config",
        &[
            ("project_creation_restriction", "everyone"),
            ("session_timeout", "45"),
            ("robot_name_prefix", "robot$"),
            ("read_only", "true"),
        ],
    )
    .await
    .has("Saved.");
    let mut ro = signed_in(&s, "admin", ADMIN_PASSWORD).await;
    let p = ro.submit("/projects", "/projects", &[("project_name", "during-read-only")]).await;
    p.has(r#"role="alert""#).has("read only");
    w.submit(
        "/admin/config",
        "/admin/config",
        &[("project_creation_restriction", "adminonly"), ("session_timeout", "45"), ("robot_name_prefix", "robot$")],
    )
    .await
    .has("Saved.");

    // A user who is not an administrator: no admin navigation, and the API's refusal.
    let mut a = signed_in(&s, "ann", PW).await;
    a.page("/projects").await.lacks("/admin/users");
    for path in ["/admin/users", "/admin/config", "/admin/gc", "/admin/jobs"] {
        assert_eq!(a.get(path).await.status, 403, "{path}");
    }
    // The audit log answers everyone, with only the entries of their projects (the API's rule).
    a.page("/admin/audit").await.lacks(">bob<");
    // Project creation is for admins now: the form answers with the API's refusal.
    let p = a.submit("/projects", "/projects", &[("project_name", "annsproject")]).await;
    p.has(r#"role="alert""#);

    // The account page: a password change (the API's rule ends every session of the user).
    a.page("/account").await.has("ann@example.com");
    let bad = a
        .submit(
            "/account",
            "/account",
            &[("old_password", PW), ("new_password", "Newpassw0rd"), ("confirm_password", "Other")],
        )
        .await;
    bad.has("The new passwords differ.");
    let old_sid = a.cookies["sid"].clone();
    let csrf = a.page("/account").await.csrf();
    let r = a
        .post(
            "/account",
            &[
                ("_csrf", &csrf),
                ("old_password", PW),
                ("new_password", "Newpassw0rd"),
                ("confirm_password", "Newpassw0rd"),
            ],
        )
        .await;
    assert_eq!((r.status, r.location.as_str()), (303, "/login"));
    a.page("/login").await.has("Password changed.");
    assert_eq!(get(&s, "/api/v2.0/users/current", &Who::Cookie(old_sid, None)).await.status(), 401);
    a.sign_in("ann", "Newpassw0rd").await;

    // Simplified Chinese from the same catalogue.
    let csrf = a.page("/prefs").await.csrf();
    let r = a.post("/prefs", &[("_csrf", &csrf), ("lang", "zh-CN"), ("theme", "light"), ("client", "skopeo")]).await;
    assert_eq!(r.status, 303);
    a.page("/projects").await.has(r#"lang="zh-CN""#).has("项目").has("退出").has(r#"data-theme="light""#);
    // Accept-Language picks Chinese for someone with no preference.
    let r = client().get(s.url("/login")).header("accept-language", "zh-CN,zh;q=0.9").send().await.unwrap();
    assert!(r.text().await.unwrap().contains("登录"));

    // Harbor portal URLs: projects by id, repositories double-encoded.
    let r = w.get("/harbor/projects/1/repositories/app%252Fweb/artifacts-tab").await;
    assert_eq!((r.status, r.location.as_str()), (308, "/projects/1/repos/app/web/-/tags"));
    let r = w.get("/projects/1/repos").await;
    assert_eq!((r.status, r.location.as_str()), (303, "/projects/library/repos"));
    let r = w.get("/harbor/projects").await;
    assert_eq!((r.status, r.location.as_str()), (308, "/projects"));
    // Assets are served from the binary.
    let css = client().get(s.url("/assets/ui.css")).send().await.unwrap();
    assert_eq!(header(&css, "content-type"), "text/css; charset=utf-8");
    let js = client().get(s.url("/assets/ui.js")).send().await.unwrap();
    assert!(js.text().await.unwrap().contains("clipboard"));
}
