//! The web UI's edit pages over HTTP: webhook policies and replication rules (every
//! field), robot accounts (permission matrix, enable/disable, a refreshed secret shown
//! once, system-level robots), labels (edit, attach to and detach from an artifact). Each
//! as an administrator, and as a role the API refuses: no button shown, and the server
//! refuses the POST anyway.

use serde_json::Value;

use crate::support::*;
use crate::ui::{Page, Web, signed_in};
use crate::ui_features::refused;

/// A registry endpoint for this same server, added through the form; its id.
pub(crate) async fn self_registry(w: &mut Web<'_>, s: &Server) -> String {
    let me = s.url("");
    w.submit(
        "/admin/registries",
        "/admin/registries",
        &[
            ("type", "harbor"),
            ("name", "self"),
            ("url", &me),
            ("access_key", "admin"),
            ("access_secret", ADMIN_PASSWORD),
        ],
    )
    .await
    .has("Saved.");
    ok_json(s, "/api/v2.0/registries", &admin()).await[0]["id"].as_i64().unwrap().to_string()
}

/// The secret a page shows once (its copy button's text).
fn shown_secret(p: &Page) -> String {
    let at = p.body.find(r#"data-copy=""#).unwrap_or_else(|| panic!("no secret in {}", p.body));
    let rest = &p.body[at + r#"data-copy=""#.len()..];
    rest[..rest.find('"').unwrap()].to_string()
}

fn strs(v: &Value) -> Vec<&str> {
    v.as_array().unwrap().iter().map(|x| x.as_str().unwrap()).collect()
}

#[tokio::test]
async fn ui_edit_webhooks_and_replication_rules() {
    let s = Server::start_harbor();
    create_user(&s, "mnt").await;
    create_project(&s, &admin(), "hooks", false).await;
    add_member(&s, "hooks", "mnt", 4).await;
    let mut w = signed_in(&s, "admin", ADMIN_PASSWORD).await;

    // A webhook with every field of the form, then each field changed on its edit page.
    let list = w.page("/projects/hooks/webhooks").await;
    list.has(r#"<label for="wh_auth">"#).has(r#"<option value="CloudEvents">"#).has(r#"value="SCANNING_COMPLETED""#);
    w.submit(
        "/projects/hooks/webhooks",
        "/projects/hooks/webhooks",
        &[
            ("name", "ci"),
            ("description", "first"),
            ("notify_type", "http"),
            ("address", "http://127.0.0.1:9/a"),
            ("payload_format", "Default"),
            ("event", "PUSH_ARTIFACT"),
        ],
    )
    .await
    .has(">ci<")
    .has("✔ Enabled");
    let id = ok_json(&s, "/api/v2.0/projects/hooks/webhook/policies", &admin()).await[0]["id"].as_i64().unwrap();
    let edit = format!("/projects/hooks/webhooks/{id}/edit");
    w.page("/projects/hooks/webhooks").await.has(&format!(r#"href="{edit}""#));
    let e = w.page(&edit).await;
    e.has(r#"value="ci""#).has(r#"value="first""#).has(r#"value="http://127.0.0.1:9/a""#);
    e.has(r#"value="PUSH_ARTIFACT" checked"#).has(r#"name="enabled" value="true" checked"#);
    let saved = w
        .submit(
            &edit,
            &edit,
            &[
                ("name", "renamed"),
                ("description", "second"),
                ("notify_type", "http"),
                ("address", "https://127.0.0.1:9/b"),
                ("auth_header", "Bearer t0k"),
                ("skip_cert_verify", "true"),
                ("payload_format", "CloudEvents"),
                ("event", "PULL_ARTIFACT"),
                ("event", "DELETE_ARTIFACT"),
            ],
        )
        .await;
    saved.has("Saved.").has(">renamed<").has("✖ Disabled");
    let p = ok_json(&s, &format!("/api/v2.0/projects/hooks/webhook/policies/{id}"), &admin()).await;
    assert_eq!(
        (p["name"].as_str(), p["description"].as_str(), p["enabled"].as_bool()),
        (Some("renamed"), Some("second"), Some(false))
    );
    assert_eq!(strs(&p["event_types"]), ["PULL_ARTIFACT", "DELETE_ARTIFACT"]);
    let t = &p["targets"][0];
    assert_eq!(t["address"], "https://127.0.0.1:9/b");
    assert_eq!(t["auth_header"], "Bearer t0k");
    assert_eq!(t["skip_cert_verify"], true);
    assert_eq!(t["payload_format"], "CloudEvents");
    // A second target added through the API survives an edit of the first in the form.
    let api = format!("/api/v2.0/projects/hooks/webhook/policies/{id}");
    let mut two = p.clone();
    two["targets"]
        .as_array_mut()
        .unwrap()
        .push(serde_json::json!({"type": "http", "address": "http://127.0.0.1:9/second"}));
    assert_eq!(status(&s, reqwest::Method::PUT, &api, &admin(), Some(&two)).await, 200);
    w.submit(
        &edit,
        &edit,
        &[
            ("name", "renamed"),
            ("description", "second"),
            ("address", "https://127.0.0.1:9/b"),
            ("auth_header", "Bearer t0k"),
            ("payload_format", "CloudEvents"),
            ("event", "PULL_ARTIFACT"),
        ],
    )
    .await
    .has("Saved.");
    let p = ok_json(&s, &api, &admin()).await;
    let addrs: Vec<&str> = p["targets"].as_array().unwrap().iter().map(|t| t["address"].as_str().unwrap()).collect();
    assert_eq!(addrs, ["https://127.0.0.1:9/b", "http://127.0.0.1:9/second"]);
    assert_eq!(p["targets"][0]["skip_cert_verify"], false);
    // The edit page shows what was saved; a change the API refuses comes back to it with
    // the API's words, and nothing changes.
    w.page(&edit).await.has(r#"value="Bearer t0k""#).has(r#"<option value="CloudEvents" selected>"#);
    let bad = w.submit(&edit, &edit, &[("name", "renamed"), ("address", "nope"), ("event", "PUSH_ARTIFACT")]).await;
    bad.has(r#"role="alert""#).has("address").has(r#"value="https://127.0.0.1:9/b""#);

    // A maintainer reads the policies but gets no edit link, and the server refuses the edit.
    let mut m = signed_in(&s, "mnt", PW).await;
    m.page("/projects/hooks/webhooks").await.has(">renamed<").lacks(&edit);
    assert_eq!(m.get(&edit).await.status, 403);
    let csrf = m.page("/projects/hooks/webhooks").await.csrf();
    refused(&mut m, &csrf, &edit, &[("name", "mine"), ("address", "http://127.0.0.1:9/c"), ("event", "PUSH_ARTIFACT")])
        .await;
    let p = ok_json(&s, &format!("/api/v2.0/projects/hooks/webhook/policies/{id}"), &admin()).await;
    assert_eq!(p["name"], "renamed");

    // Replication: a registry (this same server), a rule, then every field edited.
    let reg = self_registry(&mut w, &s).await;
    w.submit(
        "/admin/replications",
        "/admin/replications",
        &[("name", "out"), ("mode", "push"), ("registry", &reg), ("trigger", "manual"), ("override", "true")],
    )
    .await
    .has(">out<");
    let pid = ok_json(&s, "/api/v2.0/replication/policies", &admin()).await[0]["id"].as_i64().unwrap();
    let redit = format!("/admin/replications/{pid}/edit");
    w.page("/admin/replications").await.has(&format!(r#"href="{redit}""#));
    let e = w.page(&redit).await;
    e.has(r#"value="out""#).has(r#"<option value="manual" selected>"#).has(r#"name="override" value="true" checked"#);
    let saved = w
        .submit(
            &redit,
            &redit,
            &[
                ("name", "in"),
                ("description", "nightly"),
                ("mode", "pull"),
                ("registry", &reg),
                ("filter", "hooks/**"),
                ("tag_filter", "v*"),
                ("dest_namespace", "copies"),
                ("trigger", "scheduled"),
                ("cron", "0 0 5 * * *"),
                ("deletion", "true"),
            ],
        )
        .await;
    saved.has("Saved.").has(">in<").has("nightly").has("0 0 5 * * *");
    let r = ok_json(&s, &format!("/api/v2.0/replication/policies/{pid}"), &admin()).await;
    assert_eq!(r["src_registry"]["id"].as_i64().unwrap().to_string(), reg, "{r}");
    assert_eq!(r["dest_namespace"], "copies");
    assert_eq!(r["trigger"]["type"], "scheduled");
    assert_eq!(r["trigger"]["trigger_settings"]["cron"], "0 0 5 * * *");
    assert_eq!(
        (r["override"].as_bool(), r["replicate_deletion"].as_bool(), r["enabled"].as_bool()),
        (Some(false), Some(true), Some(false))
    );
    let filters: Vec<(&str, &str)> = r["filters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (f["type"].as_str().unwrap(), f["value"].as_str().unwrap()))
        .collect();
    assert_eq!(filters, [("name", "hooks/**"), ("tag", "v*")]);
    let e = w.page(&redit).await;
    e.has(r#"value="pull" checked"#).has(r#"<option value="scheduled" selected>"#).has(r#"value="hooks/**""#);
    // A schedule the API refuses: its message, on the edit page.
    w.submit(
        &redit,
        &redit,
        &[("name", "in"), ("mode", "pull"), ("registry", &reg), ("trigger", "scheduled"), ("cron", "nope")],
    )
    .await
    .has(r#"role="alert""#);

    // Not an administrator: no page, and the server refuses the change.
    create_user(&s, "ann").await;
    let mut a = signed_in(&s, "ann", PW).await;
    assert_eq!(a.get(&redit).await.status, 403);
    let csrf = a.page("/projects").await.csrf();
    refused(&mut a, &csrf, &redit, &[("name", "x"), ("mode", "push"), ("registry", &reg), ("trigger", "manual")]).await;
    assert_eq!(ok_json(&s, &format!("/api/v2.0/replication/policies/{pid}"), &admin()).await["name"], "in");
}

#[tokio::test]
async fn ui_edit_robots_matrix_toggle_refresh_and_system_robots() {
    let s = Server::start_harbor();
    create_user(&s, "dev").await;
    let project_id = create_project(&s, &admin(), "team", false).await;
    add_member(&s, "team", "dev", 2).await;
    let mut w = signed_in(&s, "admin", ADMIN_PASSWORD).await;

    // The create form is a resources × actions matrix, each box labelled.
    let page = w.page("/projects/team/robots").await;
    page.has(r#"<table class="matrix">"#).has(r#"value="repository:pull" checked"#);
    page.has(r#"<label class="visually-hidden" for="perm-artifact-read">artifact read</label>"#);
    let csrf = page.csrf();
    let r = w
        .post(
            "/projects/team/robots",
            &[
                ("_csrf", &csrf),
                ("name", "ci"),
                ("duration", "-1"),
                ("perm", "repository:pull"),
                ("perm", "artifact:read"),
            ],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    r.has("shown only once");
    let robots = ok_json(&s, &format!("/api/v2.0/robots?q=Level=project,ProjectID={project_id}"), &admin()).await;
    let rid = robots[0]["id"].as_i64().unwrap();
    let name = robots[0]["name"].as_str().unwrap().to_string();
    let access = |v: &Value| -> Vec<String> {
        let mut a: Vec<String> = v["permissions"][0]["access"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| format!("{}:{}", x["resource"].as_str().unwrap(), x["action"].as_str().unwrap()))
            .collect();
        a.sort();
        a
    };
    assert_eq!(access(&robots[0]), ["artifact:read", "repository:pull"]);

    // Edit: the matrix shows what it holds; save new permissions and a description.
    let edit = format!("/projects/team/robots/{rid}/edit");
    let list = w.page("/projects/team/robots").await;
    list.has(&format!(r#"href="{edit}""#)).has(&format!("/projects/team/robots/{rid}/refresh"));
    let e = w.page(&edit).await;
    e.has(r#"value="artifact:read" checked"#).has(r#"value="repository:push">"#);
    let saved = w
        .submit(
            &edit,
            &edit,
            &[
                ("description", "builds"),
                ("duration", "-1"),
                ("enabled", "true"),
                ("perm", "repository:pull"),
                ("perm", "repository:push"),
                ("perm", "tag:list"),
            ],
        )
        .await;
    saved.has("Saved.").has("builds");
    let got = ok_json(&s, &format!("/api/v2.0/robots/{rid}"), &admin()).await;
    assert_eq!(access(&got), ["repository:pull", "repository:push", "tag:list"]);
    assert_eq!(got["description"], "builds");

    // A refreshed secret: shown once on the answer, works, and the old one does not.
    let old = shown_secret(&r);
    let csrf = w.page("/projects/team/robots").await.csrf();
    let r = w.post(&format!("/projects/team/robots/{rid}/refresh"), &[("_csrf", &csrf)]).await;
    assert_eq!(r.status, 200, "{}", r.body);
    r.has("New secret").has(&name);
    let new = shown_secret(&r);
    assert_ne!(new, old);
    push_small_image_as(&s, &Who::Basic(name.clone(), new.clone()), "team/built", "1", "r").await;
    assert_eq!(
        status(&s, reqwest::Method::GET, "/api/v2.0/projects/team", &Who::Basic(name.clone(), old), None).await,
        401
    );
    w.page("/projects/team/robots").await.lacks(&new);

    // Disable and enable from the list.
    let toggle = format!("/projects/team/robots/{rid}/toggle");
    w.submit("/projects/team/robots", &toggle, &[]).await.has("✖ Disabled");
    assert_eq!(ok_json(&s, &format!("/api/v2.0/robots/{rid}"), &admin()).await["disable"], true);
    w.submit("/projects/team/robots", &toggle, &[]).await.has("✔ Enabled");

    // A developer: no change buttons, and the server refuses each change.
    let mut d = signed_in(&s, "dev", PW).await;
    let dl = d.get("/projects/team/robots").await;
    dl.lacks(&edit).lacks("/refresh").lacks("/toggle").lacks("New robot account");
    assert_eq!(d.get(&edit).await.status, 403);
    let csrf = d.page("/projects/team/members").await.csrf();
    refused(&mut d, &csrf, &format!("/projects/team/robots/{rid}/refresh"), &[]).await;
    refused(&mut d, &csrf, &toggle, &[]).await;
    refused(&mut d, &csrf, &edit, &[("duration", "-1"), ("perm", "repository:delete")]).await;
    let got = ok_json(&s, &format!("/api/v2.0/robots/{rid}"), &admin()).await;
    assert_eq!((got["disable"].as_bool(), access(&got).len()), (Some(false), 3));

    // System robots: system permissions and those in every project, for administrators.
    let sys = w.page("/admin/robots").await;
    sys.has("System permissions").has(r#"value="audit-log:list""#).has("Permissions in every project");
    let csrf = sys.csrf();
    let r = w
        .post(
            "/admin/robots",
            &[
                ("_csrf", &csrf),
                ("name", "ops"),
                ("duration", "7"),
                ("sperm", "audit-log:list"),
                ("perm", "repository:pull"),
            ],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    r.has("shown only once").has("robot$ops");
    let sr = ok_json(&s, "/api/v2.0/robots?q=Level=system", &admin()).await;
    let sid = sr[0]["id"].as_i64().unwrap();
    let kinds: Vec<(&str, &str)> = sr[0]["permissions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["kind"].as_str().unwrap(), p["namespace"].as_str().unwrap()))
        .collect();
    assert_eq!(kinds, [("system", "/"), ("project", "*")]);
    let sedit = format!("/admin/robots/{sid}/edit");
    w.page(&sedit).await.has(r#"value="audit-log:list" checked"#).has(r#"value="repository:pull" checked"#);
    w.submit(&sedit, &sedit, &[("duration", "7"), ("enabled", "true"), ("sperm", "user:list")]).await.has("Saved.");
    let got = ok_json(&s, &format!("/api/v2.0/robots/{sid}"), &admin()).await;
    assert_eq!(got["permissions"].as_array().unwrap().len(), 1, "{got}");
    assert_eq!(got["permissions"][0]["access"][0]["resource"], "user");
    w.page("/projects").await.has(r#"href="/admin/robots""#);
    // Not an administrator: no navigation, no page, and the API's refusal.
    d.page("/projects").await.lacks(r#"href="/admin/robots""#);
    assert_eq!(d.get("/admin/robots").await.status, 403);
    let csrf = d.page("/projects").await.csrf();
    refused(&mut d, &csrf, &format!("/admin/robots/{sid}/toggle"), &[]).await;
    refused(&mut d, &csrf, "/admin/robots", &[("name", "mine"), ("duration", "1"), ("sperm", "user:list")]).await;
}

#[tokio::test]
async fn ui_edit_labels_and_attach_them_to_artifacts() {
    let s = Server::start_harbor();
    create_user(&s, "gus").await;
    let project_id = create_project(&s, &admin(), "lab", false).await;
    add_member(&s, "lab", "gus", 3).await;
    let digest = push_small_image_as(&s, &admin(), "lab/app", "v1", "l").await;
    let mut w = signed_in(&s, "admin", ADMIN_PASSWORD).await;
    w.submit("/projects/lab/labels", "/projects/lab/labels", &[("name", "prod"), ("color", "#0065ab")])
        .await
        .has(">prod<");
    let lid = ok_json(&s, &format!("/api/v2.0/labels?scope=p&project_id={project_id}"), &admin()).await[0]["id"]
        .as_i64()
        .unwrap();

    // Edit: the create form, filled in.
    let edit = format!("/projects/lab/labels/{lid}/edit");
    w.page("/projects/lab/labels").await.has(&format!(r#"href="{edit}""#));
    w.page(&edit).await.has(r#"value="prod""#).has(r##"value="#0065ab""##);
    w.submit(&edit, &edit, &[("name", "production"), ("color", "#aa0000"), ("description", "live")])
        .await
        .has("Saved.")
        .has(">production<")
        .has("live");
    let l = ok_json(&s, &format!("/api/v2.0/labels/{lid}"), &admin()).await;
    assert_eq!((l["name"].as_str(), l["color"].as_str()), (Some("production"), Some("#aa0000")));
    // A name the API refuses: its words.
    w.submit(&edit, &edit, &[("name", ""), ("color", "#aa0000")]).await.has(r#"role="alert""#);

    // Attach to the artifact and detach again, on the artifact page.
    let art = format!("/projects/lab/repos/app/-/artifacts/{digest}");
    let p = w.page(&art).await;
    p.has(r#"<label for="attach_label">"#).has(&format!(r#"<option value="{lid}">production</option>"#));
    let p = w.submit(&art, &format!("{art}/labels"), &[("label_id", &lid.to_string())]).await;
    p.has("Label added.").has("production").has(&format!("{art}/labels/{lid}/delete"));
    let a =
        ok_json(&s, &format!("/api/v2.0/projects/lab/repositories/app/artifacts/{digest}?with_label=true"), &admin())
            .await;
    assert_eq!(a["labels"][0]["id"].as_i64(), Some(lid), "{a}");

    // A guest: no edit link or attach form, and the server refuses both.
    let mut g = signed_in(&s, "gus", PW).await;
    g.page("/projects/lab/labels").await.has(">production<").lacks(&edit);
    assert_eq!(g.get(&edit).await.status, 403);
    g.page(&art).await.has("production").lacks("attach_label").lacks("/delete");
    let csrf = g.page("/projects/lab/labels").await.csrf();
    refused(&mut g, &csrf, &edit, &[("name", "mine"), ("color", "#000000")]).await;
    refused(&mut g, &csrf, &format!("{art}/labels/{lid}/delete"), &[]).await;

    let p = w.submit(&art, &format!("{art}/labels/{lid}/delete"), &[]).await;
    p.has("Label removed.");
    let a =
        ok_json(&s, &format!("/api/v2.0/projects/lab/repositories/app/artifacts/{digest}?with_label=true"), &admin())
            .await;
    assert!(a["labels"].as_array().is_none_or(|l| l.is_empty()), "{a}");
    refused(&mut g, &csrf, &format!("{art}/labels"), &[("label_id", &lid.to_string())]).await;

    // The same pages in Simplified Chinese.
    w.cookies.insert("lang".into(), "zh-CN".into());
    w.page(&edit).await.has("编辑标签");
    w.page(&art).await.has("添加标签");
}

/// `%XX` escapes undone (a `data:` link's text).
fn percent_decoded(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            out.push(u8::from_str_radix(&s[i + 1..i + 3], 16).unwrap());
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).unwrap()
}

#[tokio::test]
async fn ui_edit_immutability_webhook_test_registries_and_robot_file() {
    let s = Server::start_harbor();
    create_project(&s, &admin(), "pol", false).await;
    for (u, role) in [("dev", 2), ("gst", 3), ("mnt", 4)] {
        create_user(&s, u).await;
        add_member(&s, "pol", u, role).await;
    }
    let mut w = signed_in(&s, "admin", ADMIN_PASSWORD).await;

    // Immutability: a rule created, then edited (both selectors and their decorations,
    // disabled), enabled again from the list, and a bad pattern refused naming the field.
    let base = "/projects/pol/immutability";
    w.submit(base, base, &[("repos", "**"), ("tags", "v*")]).await.has("repoMatches **").has("matches v*");
    let rule = &ok_json(&s, "/api/v2.0/projects/pol/immutabletagrules", &admin()).await[0];
    let id = rule["id"].as_i64().unwrap();
    let edit = format!("{base}/{id}/edit");
    w.page(base).await.has(&format!(r#"href="{edit}""#)).has(&format!(r#"action="{base}/{id}/toggle""#));
    let e = w.page(&edit).await;
    e.has(r#"value="v*""#).has(r#"<option value="matches" selected>"#).has(r#"name="enabled" value="true" checked"#);
    let saved = w
        .submit(
            &edit,
            &edit,
            &[
                ("repo_decoration", "repoExcludes"),
                ("repos", "tmp/**"),
                ("tag_decoration", "excludes"),
                ("tags", "dev-*"),
            ],
        )
        .await;
    saved.has("Saved.").has("repoExcludes tmp/**").has("excludes dev-*").has("✖ Disabled");
    let r = &ok_json(&s, "/api/v2.0/projects/pol/immutabletagrules", &admin()).await[0];
    assert_eq!(r["disabled"], true, "{r}");
    assert_eq!(r["scope_selectors"]["repository"][0]["decoration"], "repoExcludes");
    assert_eq!(r["scope_selectors"]["repository"][0]["pattern"], "tmp/**");
    assert_eq!(
        (r["tag_selectors"][0]["decoration"].as_str(), r["tag_selectors"][0]["pattern"].as_str()),
        (Some("excludes"), Some("dev-*"))
    );
    w.page(&edit).await.has(r#"<option value="repoExcludes" selected>"#).has(r#"value="tmp/**""#);
    w.submit(base, &format!("{base}/{id}/toggle"), &[]).await.has("Saved.").has("✔ Enabled");
    assert_eq!(ok_json(&s, "/api/v2.0/projects/pol/immutabletagrules", &admin()).await[0]["disabled"], false);
    let bad = w.submit(&edit, &edit, &[("repos", "**"), ("tags", "[v"), ("enabled", "true")]).await;
    bad.has(r#"role="alert""#).has("tag_selectors[0].pattern");
    assert_eq!(
        ok_json(&s, "/api/v2.0/projects/pol/immutabletagrules", &admin()).await[0]["tag_selectors"][0]["pattern"],
        "dev-*"
    );
    // A developer may not change rules: no page, and the server refuses the change.
    let mut d = signed_in(&s, "dev", PW).await;
    assert_eq!(d.get(&edit).await.status, 403);
    let csrf = d.page("/projects").await.csrf();
    refused(&mut d, &csrf, &edit, &[("repos", "**"), ("tags", "x")]).await;
    refused(&mut d, &csrf, &format!("{base}/{id}/toggle"), &[]).await;
    assert_eq!(ok_json(&s, "/api/v2.0/projects/pol/immutabletagrules", &admin()).await[0]["disabled"], false);

    // Webhooks: a policy with two targets (the second added on the edit page), a test
    // event sent to both: Harbor's Default payload to one, CloudEvents to the other, each
    // endpoint's answer on the page.
    let recv = crate::webhooks::Receiver::start().await;
    let hooks = "/projects/pol/webhooks";
    w.submit(
        hooks,
        hooks,
        &[
            ("name", "ci"),
            ("address", &recv.url("/default")),
            ("auth_header", "Bearer t0k"),
            ("event", "PUSH_ARTIFACT"),
        ],
    )
    .await
    .has(">ci<");
    let hid = ok_json(&s, "/api/v2.0/projects/pol/webhook/policies", &admin()).await[0]["id"].as_i64().unwrap();
    let hedit = format!("{hooks}/{hid}/edit");
    w.page(&hedit).await.has(r#"<label for="wt_address">"#).lacks(&format!("{hooks}/{hid}/targets/0/delete"));
    let ce = recv.url("/ce");
    w.submit(
        &hedit,
        &format!("{hooks}/{hid}/targets"),
        &[("notify_type", "http"), ("address", &ce), ("payload_format", "CloudEvents")],
    )
    .await
    .has("Saved.")
    .has(&format!("{hooks}/{hid}/targets/1/delete"))
    .has(&ce);
    let csrf = w.page(hooks).await.has(&format!(r#"action="{hooks}/{hid}/test""#)).csrf();
    let t = w.post(&format!("{hooks}/{hid}/test"), &[("_csrf", &csrf)]).await;
    assert_eq!(t.status, 200, "{}", t.body);
    t.has("Test event sent by")
        .has(&recv.url("/default"))
        .has(&ce)
        .has("Answered <strong>200 OK</strong>")
        .lacks("No answer");
    let got = recv.got();
    let one = got.iter().find(|r| r.path == "/default").expect("the Default delivery");
    assert_eq!(one.body["type"], "WEBHOOK_TEST", "{:?}", one.body);
    assert_eq!(one.body["operator"], "admin");
    assert_eq!(one.body["event_data"]["policy"]["name"], "ci");
    assert_eq!(one.headers["authorization"], "Bearer t0k");
    assert!(one.headers.contains_key("x-berth-delivery-id"));
    let two = got.iter().find(|r| r.path == "/ce").expect("the CloudEvents delivery");
    assert_eq!(two.headers["content-type"], "application/cloudevents+json");
    assert_eq!(
        (two.body["specversion"].as_str(), two.body["type"].as_str()),
        (Some("1.0"), Some("harbor.webhook.test"))
    );
    assert_eq!(two.body["id"].as_str(), two.headers["x-berth-delivery-id"].to_str().ok());
    // A test is not an event: nothing recorded as an execution.
    let execs = ok_json(&s, &format!("/api/v2.0/projects/pol/webhook/policies/{hid}/executions"), &admin()).await;
    assert_eq!(execs.as_array().unwrap().len(), 0, "{execs}");
    // The second target removed; then an endpoint nobody listens on: the error on the
    // page, not a failure.
    w.submit(&hedit, &format!("{hooks}/{hid}/targets/1/delete"), &[]).await.has("Saved.").lacks(&ce);
    let p = ok_json(&s, &format!("/api/v2.0/projects/pol/webhook/policies/{hid}"), &admin()).await;
    assert_eq!(p["targets"].as_array().unwrap().len(), 1, "{p}");
    w.submit(&hedit, &format!("{hooks}/{hid}/targets"), &[("address", "http://127.0.0.1:9/down")]).await.has("Saved.");
    let t = w.post(&format!("{hooks}/{hid}/test"), &[("_csrf", &csrf)]).await;
    assert_eq!(t.status, 200, "{}", t.body);
    t.has("No answer").has("http://127.0.0.1:9/down").has("Answered <strong>200 OK</strong>");
    // A bad address for a new target: the API's message naming the field.
    w.submit(&hedit, &format!("{hooks}/{hid}/targets"), &[("address", "nope")])
        .await
        .has(r#"role="alert""#)
        .has("targets[2].address");
    // The API operation itself: as the project admin, a result per target; a maintainer
    // (who reads policies) and a guest are refused.
    let api = format!("/api/v2.0/projects/pol/webhook/policies/{hid}/test");
    let r = call(&s, reqwest::Method::POST, &api, &admin(), None).await;
    assert_eq!(r.status(), 200);
    let results = body_json(r).await;
    let codes: Vec<Value> = results.as_array().unwrap().iter().map(|r| r["status_code"].clone()).collect();
    assert_eq!(codes, [serde_json::json!(200), Value::Null], "{results}");
    assert!(!results[1]["error"].as_str().unwrap().is_empty(), "{results}");
    let before = recv.got().len();
    for who in ["mnt", "gst"] {
        assert_eq!(status(&s, reqwest::Method::POST, &api, &user(who), None).await, 403, "{who}");
    }
    let mut m = signed_in(&s, "mnt", PW).await;
    m.page(hooks).await.has(">ci<").lacks(&format!("{hooks}/{hid}/test"));
    let csrf = m.page(hooks).await.csrf();
    refused(&mut m, &csrf, &format!("{hooks}/{hid}/test"), &[]).await;
    refused(&mut m, &csrf, &format!("{hooks}/{hid}/targets/0/delete"), &[]).await;
    let mut g = signed_in(&s, "gst", PW).await;
    let csrf = g.page("/projects").await.csrf();
    refused(&mut g, &csrf, &format!("{hooks}/{hid}/test"), &[]).await;
    assert_eq!(recv.got().len(), before, "a refused test sends nothing");

    // Registries: edited with a connection test first (the stored secret used when none
    // is typed), saved keeping the secret, a bad URL refused naming the field.
    let reg = self_registry(&mut w, &s).await;
    let redit = format!("/admin/registries/{reg}/edit");
    w.page("/admin/registries").await.has(&format!(r#"href="{redit}""#));
    let e = w.page(&redit).await;
    e.has(r#"value="self""#)
        .has(r#"value="admin""#)
        .has("Leave empty to keep the stored secret.")
        .lacks(ADMIN_PASSWORD);
    let csrf = e.csrf();
    let me = s.url("");
    let fields = |name: &'static str, secret: &'static str| {
        vec![
            ("name", name),
            ("url", me.as_str()),
            ("access_key", "admin"),
            ("access_secret", secret),
            ("description", "peer"),
        ]
    };
    let mut f = vec![("_csrf", csrf.as_str()), ("test", "1")];
    f.extend(fields("typed", ""));
    let t = w.post(&redit, &f).await;
    assert_eq!(t.status, 200, "{}", t.body);
    t.has("The registry answered").has(r#"value="typed""#);
    let mut f = vec![("_csrf", csrf.as_str()), ("test", "1")];
    f.extend(fields("typed", "wrong"));
    w.post(&redit, &f).await.has(r#"role="alert""#).has("failed to ping");
    assert_eq!(
        ok_json(&s, &format!("/api/v2.0/registries/{reg}"), &admin()).await["name"],
        "self",
        "a test saves nothing"
    );
    let mut f = fields("renamed", "");
    f.push(("insecure", "true"));
    w.submit(&redit, &redit, &f).await.has("Saved.").has(">renamed<");
    let r = ok_json(&s, &format!("/api/v2.0/registries/{reg}"), &admin()).await;
    assert_eq!(
        (r["name"].as_str(), r["description"].as_str(), r["insecure"].as_bool()),
        (Some("renamed"), Some("peer"), Some(true))
    );
    w.submit("/admin/registries", &format!("/admin/registries/{reg}/ping"), &[]).await.has("The registry answered");
    let bad = w.submit(&redit, &redit, &[("name", "renamed"), ("url", "ftp://x")]).await;
    bad.has(r#"role="alert""#).has("url:");
    assert_eq!(ok_json(&s, &format!("/api/v2.0/registries/{reg}"), &admin()).await["url"], me.as_str());
    // Not a system administrator: no page, and the server refuses the change.
    assert_eq!(m.get(&redit).await.status, 403);
    let csrf = m.page("/projects").await.csrf();
    refused(&mut m, &csrf, &redit, &[("name", "mine"), ("url", "http://127.0.0.1:9")]).await;
    assert_eq!(ok_json(&s, &format!("/api/v2.0/registries/{reg}"), &admin()).await["name"], "renamed");

    // A robot's secret, shown once, can be saved as a file: a data: link in that answer.
    let csrf = w.page("/projects/pol/robots").await.csrf();
    let r = w
        .post(
            "/projects/pol/robots",
            &[("_csrf", &csrf), ("name", "bot"), ("duration", "-1"), ("perm", "repository:pull")],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let secret = shown_secret(&r);
    r.has(r#"download="robot$pol+bot.json""#);
    let at = r.body.find(r#"href="data:application/json;charset=utf-8,"#).expect("a data: link");
    let rest = &r.body[at + r#"href="data:application/json;charset=utf-8,"#.len()..];
    let file: Value = serde_json::from_str(&percent_decoded(&rest[..rest.find('"').unwrap()])).unwrap();
    assert_eq!((file["name"].as_str(), file["secret"].as_str()), (Some("robot$pol+bot"), Some(secret.as_str())));
    w.page("/projects/pol/robots").await.lacks(&secret).lacks("data:application/json");
}
