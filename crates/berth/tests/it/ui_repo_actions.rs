//! The web UI's repository actions over HTTP: the artifact list's type and label filters
//! and accessory toggle, bulk delete (one confirmation, refusals named), the repository
//! description, adding a tag, retention rules' label selectors and the date format
//! preference. Each action as an administrator and as a guest the API refuses (no
//! control shown, and the server refuses anyway).

use serde_json::json;

use crate::support::*;
use crate::ui::signed_in;
use crate::ui_features::refused;

const ARTS: &str = "/projects/team/repos/app/-/artifacts";

#[tokio::test]
async fn ui_artifact_filters_accessories_bulk_delete_description_and_tags() {
    let s = Server::start_harbor();
    let pid = project_with_guest(&s, "team").await;
    let d1 = push_small_image_as(&s, &admin(), "team/app", "v1", "one").await;
    let d2 = push_small_image_as(&s, &admin(), "team/app", "v2", "two").await;
    let d3 = push_small_image_as(&s, &admin(), "team/app", "v3", "three").await;
    // v1 carries the label "prod" and a cosign signature (an accessory).
    let r = call(
        &s,
        reqwest::Method::POST,
        "/api/v2.0/labels",
        &admin(),
        Some(&json!({"name": "prod", "scope": "p", "project_id": pid, "color": "#aa0000"})),
    )
    .await;
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
    let labels = ok_json(&s, &format!("/api/v2.0/labels?scope=p&project_id={pid}"), &admin()).await;
    let label_id = labels[0]["id"].as_i64().unwrap();
    let r = call(
        &s,
        reqwest::Method::POST,
        "/api/v2.0/projects/team/repositories/app/artifacts/v1/labels",
        &admin(),
        Some(&json!({"id": label_id})),
    )
    .await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    crate::signatures::push_cosign_signature(&s, &d1).await;
    let mut w = signed_in(&s, "admin", ADMIN_PASSWORD).await;

    // The list: three artifacts, type in words, accessories hidden; the filters labelled.
    let all = w.page(ARTS).await;
    all.has(&short(&d1)).has(&short(&d2)).has(&short(&d3)).has(">Image<").lacks("signature.cosign");
    all.has(r#"<label for="type">"#).has(r#"<label for="label">"#).has(r#"name="accessories""#);
    all.has(&format!(r#"<option value="{label_id}">prod</option>"#));
    // By type (the API's `q=type=`), by label (`q=labels=(id)`).
    w.page(&format!("{ARTS}?type=IMAGE")).await.has(&short(&d2));
    w.page(&format!("{ARTS}?type=CHART")).await.lacks(&short(&d2)).has("Nothing here yet");
    let by_label = w.page(&format!("{ARTS}?label={label_id}")).await;
    by_label.has(&short(&d1)).lacks(&short(&d2)).lacks(&short(&d3));
    by_label.has(&format!(r#"<option value="{label_id}" selected>prod</option>"#));
    // The API behind the filters: a label that is not an id is refused, naming the field.
    let r = get(&s, "/api/v2.0/projects/team/repositories/app/artifacts?q=labels%3D(prod)", &admin()).await;
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("labels takes label ids"));
    let r = get(&s, "/api/v2.0/projects/team/repositories/app/artifacts?q=type%3D~IMA", &admin()).await;
    assert_eq!(r.status(), 400);
    // Accessories, when asked for, nested under their subject (from the same API answer).
    let acc = w.page(&format!("{ARTS}?accessories=1")).await;
    acc.has(r#"class="sub""#).has("signature.cosign").has(&format!("Accessory of {}", short(&d1)));

    // The guest sees no checkboxes and no delete button; the server refuses anyway.
    let mut g = signed_in(&s, "gst", PW).await;
    let gl = g.page(ARTS).await;
    gl.has(&short(&d2)).lacks(r#"name="digest""#).lacks("Delete selected artifacts");
    let csrf = gl.csrf();
    refused(&mut g, &csrf, &format!("{ARTS}/delete"), &[("confirmed", "1"), ("digest", &d2)]).await;
    assert!(
        ok_json(&s, "/api/v2.0/projects/team/repositories/app/artifacts", &admin()).await.to_string().contains(&d2)
    );

    // Bulk delete: nothing selected is said so; then one confirmation naming each artifact
    // with its tags; an immutable one is reported by name with the API's reason.
    let list = w.page(ARTS).await;
    list.has(&format!(r#"name="digest" value="{d2}""#)).has("Delete selected artifacts");
    let csrf = list.csrf();
    let r = w.post(&format!("{ARTS}/delete"), &[("_csrf", &csrf)]).await;
    assert_eq!(r.status, 303);
    w.page(&r.location).await.has("No artifact was selected.");
    w.submit("/projects/team/immutability", "/projects/team/immutability", &[("repos", "**"), ("tags", "v3")]).await;
    let csrf = w.page(ARTS).await.csrf();
    let confirm = w.post(&format!("{ARTS}/delete"), &[("_csrf", &csrf), ("digest", &d2), ("digest", &d3)]).await;
    assert_eq!(confirm.status, 200, "{}", confirm.body);
    confirm.has("Are you sure?").has(&format!("team/app@{} (v2)", short(&d2))).has(r#"name="confirmed" value="1""#);
    confirm.has(&format!(r#"type="hidden" name="digest" value="{d3}""#));
    let r = w
        .post(&format!("{ARTS}/delete"), &[("_csrf", &csrf), ("confirmed", "1"), ("digest", &d2), ("digest", &d3)])
        .await;
    assert_eq!(r.status, 303);
    let after = w.page(&r.location).await;
    after.has("Deleted 1 artifacts.").has("Not deleted:").has(&format!("team/app@{}", short(&d3)));
    after.has(r#"role="alert""#).lacks(&format!(r#"value="{d2}""#)).has(&format!(r#"value="{d3}""#));
    let left = ok_json(&s, "/api/v2.0/projects/team/repositories/app/artifacts", &admin()).await.to_string();
    assert!(!left.contains(&d2) && left.contains(&d3), "{left}");

    // The description: none yet, then set through the form (Harbor's PUT), shown as text.
    let info = w.page("/projects/team/repos/app/-/info").await;
    info.has("No description yet.").has(r#"<label for="description">"#).has(r#"aria-current="page">Description<"#);
    let saved = w
        .submit(
            "/projects/team/repos/app/-/info",
            "/projects/team/repos/app/-/info",
            &[("description", "The <shop> API.\nSecond line.")],
        )
        .await;
    saved.has("Saved.").has("The &lt;shop&gt; API.\nSecond line.");
    let repo = ok_json(&s, "/api/v2.0/projects/team/repositories/app", &admin()).await;
    assert_eq!(repo["description"], "The <shop> API.\nSecond line.");
    let gi = g.page("/projects/team/repos/app/-/info").await;
    gi.has("The &lt;shop&gt; API.").lacks("<textarea");
    let csrf = gi.csrf();
    refused(&mut g, &csrf, "/projects/team/repos/app/-/info", &[("description", "mine")]).await;
    assert_eq!(
        ok_json(&s, "/api/v2.0/projects/team/repositories/app", &admin()).await["description"],
        repo["description"]
    );

    // Add a tag to an artifact; a name the API refuses comes back with its words.
    let art = format!("{ARTS}/{d1}");
    w.page(&art).await.has(r#"<label for="new_tag">"#).has("Add tag");
    let tagged = w.submit(&art, &format!("{art}/tags"), &[("tag", "stable")]).await;
    tagged.has("Tag added.").has("<strong>stable</strong>");
    let tags = ok_json(&s, &format!("/api/v2.0/projects/team/repositories/app/artifacts/{d1}/tags"), &admin()).await;
    assert!(tags.to_string().contains("\"stable\""), "{tags}");
    w.submit(&art, &format!("{art}/tags"), &[("tag", "v3")]).await.has(r#"role="alert""#);
    let ga = g.page(&art).await;
    ga.has("<strong>stable</strong>").lacks("Add tag");
    let csrf = ga.csrf();
    refused(&mut g, &csrf, &format!("{art}/tags"), &[("tag", "guest-tag")]).await;
}

#[tokio::test]
async fn ui_retention_label_selectors_and_date_formats() {
    let s = Server::start_harbor();
    project_with_guest(&s, "team").await;
    push_small_image_as(&s, &admin(), "team/app", "v1", "one").await;
    let mut w = signed_in(&s, "admin", ADMIN_PASSWORD).await;

    // A retention rule that keeps only artifacts labelled "prod" and "ga".
    let form = w.page("/projects/team/retention").await;
    form.has(r#"<label for="rt_labels">"#).has(r#"aria-label="Labels: with or without""#);
    let p = w
        .submit(
            "/projects/team/retention",
            "/projects/team/retention/rules",
            &[
                ("repo_decoration", "repoMatches"),
                ("repos", "**"),
                ("template", "always"),
                ("tag_decoration", "matches"),
                ("tags", "**"),
                ("label_decoration", "withLabels"),
                ("labels", " prod, ga ,"),
            ],
        )
        .await;
    p.has("Saved.").has("with all of the labels: prod,ga");
    let proj = ok_json(&s, "/api/v2.0/projects/team", &admin()).await;
    let id = proj["metadata"]["retention_id"].as_str().unwrap().to_string();
    let policy = ok_json(&s, &format!("/api/v2.0/retentions/{id}"), &admin()).await;
    let sel = &policy["rules"][0]["tag_selectors"][1];
    assert_eq!(
        (sel["kind"].as_str(), sel["decoration"].as_str(), sel["pattern"].as_str()),
        (Some("label"), Some("withLabels"), Some("prod,ga"))
    );
    // A decoration the API does not know comes back with its words, naming the field.
    w.submit(
        "/projects/team/retention",
        "/projects/team/retention/rules",
        &[
            ("template", "always"),
            ("repos", "**"),
            ("repo_decoration", "repoMatches"),
            ("tags", "**"),
            ("tag_decoration", "matches"),
            ("label_decoration", "withSome"),
            ("labels", "x"),
        ],
    )
    .await
    .has(r#"role="alert""#)
    .has("tag_selectors[1].decoration");
    // The guest sees no rule form and is refused.
    let mut g = signed_in(&s, "gst", PW).await;
    let gp = g.get("/projects/team/retention").await;
    assert_eq!(gp.status, 403, "{}", gp.body);
    gp.lacks("rt_labels");
    let csrf = g.page("/projects/team/repos").await.csrf();
    refused(&mut g, &csrf, "/projects/team/retention/rules", &[("template", "always"), ("labels", "x")]).await;

    // Date formats: ISO by default, then relative (exact time in the tooltip), then written
    // out in Chinese; the choice is a labelled select on the preferences page.
    let arts = "/projects/team/repos/app/-/artifacts";
    let iso = w.page(arts).await;
    iso.has("<time datetime=\"").has(" UTC</time>");
    let prefs = w.page("/prefs").await;
    prefs.has(r#"<label for="datefmt">"#).has(r#"<option value="iso" selected>"#);
    w.submit("/prefs", "/prefs", &[("lang", "en"), ("datefmt", "relative")])
        .await
        .has(r#"<option value="relative" selected>"#);
    let rel = w.page(arts).await;
    assert!(rel.body.contains("just now</time>") || rel.body.contains(" ago</time>"), "{}", rel.body);
    rel.has(r#"title=""#);
    w.submit("/prefs", "/prefs", &[("lang", "zh-CN"), ("datefmt", "locale")]).await.has("日期格式");
    let zh = w.page(arts).await;
    assert!(zh.body.contains("日 ") && zh.body.contains("年"), "{}", zh.body);
    // Every date on every page follows it: the project list too.
    w.page("/projects").await.has("年");
}
