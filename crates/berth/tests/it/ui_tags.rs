//! The web UI's tags view and artifact grid over HTTP: the tags view's columns
//! (platforms, size, vulnerabilities, signed, immutable, pull by tag and by digest), its
//! sorts (name, pushed, pulled) with keyset pages, prefix and glob filters, bad
//! parameters named, and multi-select tag delete; the artifact grid's columns
//! (platforms, vulnerabilities, SBOM, signed, labels, copy digest), tagged/untagged filter
//! and bulk scan. Each action as an administrator and as a guest the server refuses.

use reqwest::Method;
use serde_json::json;

use crate::support::*;
use crate::ui::signed_in;
use crate::ui_features::refused;

const TAGS: &str = "/projects/team/repos/app/-/tags";

/// The tag names of a tags view page, in their order.
fn rows(body: &str) -> Vec<String> {
    body.split(r#"<th scope="row">"#).skip(1).map(|r| r[..r.find('<').unwrap()].to_string()).collect()
}

#[tokio::test]
async fn ui_tags_view_columns_sorts_filters_and_bulk_delete() {
    let s = Server::start_harbor();
    project_with_guest(&s, "team").await;
    let da = push_small_image_as(&s, &admin(), "team/app", "v1.2", "a").await;
    let db = push_small_image_as(&s, &admin(), "team/app", "v1.10", "b").await;
    let dc = push_small_image_as(&s, &admin(), "team/app", "latest", "c").await;
    push_small_image_as(&s, &admin(), "team/app", "v2-rc1", "d").await;
    let dx = push_platform_index(&s, "team/app", "multi", &[(&da, "amd64"), (&db, "arm64")]).await;
    crate::signatures::push_cosign_signature(&s, &da).await;
    let mut w = signed_in(&s, "admin", ADMIN_PASSWORD).await;
    w.submit("/projects/team/immutability", "/projects/team/immutability", &[("repos", "**"), ("tags", "latest")])
        .await;

    // The columns, each row's values in words and symbols.
    let v = w.page(TAGS).await;
    v.has(">Platforms<").has(">Size (compressed, as stored)<").has(">Vulnerabilities<").has(">Signed<");
    v.has(">Immutable<").has(r#"<label for="name">Tag name: a prefix or a glob</label>"#);
    v.has("<code>linux/amd64</code>").has("<code>linux/arm64</code>").has(&short(&dx));
    v.has("✔ cosign: signed").has("✖ unsigned").has("🔒 immutable").has("not scanned");
    // Pull by tag and by digest, per row.
    v.has("team/app:v1.2</code>").has(&format!("team/app@{da}</code>")).has("Pull by digest v1.2");
    // Name order (bytewise), the sorted column marked, the others links.
    let names = rows(&v.body);
    let pos = |n: &str| names.iter().position(|x| x == n).unwrap_or_else(|| panic!("{n} in {names:?}"));
    assert!(pos("latest") < pos("multi") && pos("multi") < pos("v1.10") && pos("v1.10") < pos("v1.2"), "{names:?}");
    v.has(r#"aria-sort="ascending">Tag<"#).has(r#"href="/projects/team/repos/app/-/tags?sort=pushed""#);
    // Newest push first; pull order (never pulled: newest tag first) marked descending.
    let pushed = w.page(&format!("{TAGS}?sort=pushed")).await;
    pushed.has(r#"aria-sort="descending">Pushed<"#);
    let names = rows(&pushed.body);
    let pos = |n: &str| names.iter().position(|x| x == n).unwrap();
    assert!(pos("multi") < pos("v2-rc1") && pos("v2-rc1") < pos("latest") && pos("v1.10") < pos("v1.2"), "{names:?}");
    let pulled = w.page(&format!("{TAGS}?sort=pulled")).await;
    pulled.has(r#"aria-sort="descending">Last pulled<"#);
    assert_eq!(rows(&pulled.body).len(), names.len());

    // Filters: a prefix, a glob (`*`, `?`), kept by the sort links.
    let f = w.page(&format!("{TAGS}?name=v1")).await;
    assert_eq!(rows(&f.body), ["v1.10", "v1.2"]);
    let g = w.page(&format!("{TAGS}?name=v%3F-rc*&sort=pushed")).await;
    assert_eq!(rows(&g.body), ["v2-rc1"]);
    g.has(r#"value="v?-rc*""#);
    let g = w.page(&format!("{TAGS}?name=*.1*")).await;
    assert_eq!(rows(&g.body), ["v1.10"]);
    g.has(r#"href="/projects/team/repos/app/-/tags?name=*.1*&amp;sort=pulled""#);

    // Bad input: the parameter named, not a 500.
    for (q, name) in [("sort=size", "sort"), ("name=v1/%5B*", "name"), ("sort=pushed&after=zzz", "after")] {
        let p = w.get(&format!("{TAGS}?{q}")).await;
        assert_eq!(p.status, 400, "{q}: {}", p.body);
        p.has(&format!("Bad request parameter: {name} "));
    }

    // Keyset pages in push order: 50, then the rest, none twice.
    for i in 0..52 {
        let r = call(
            &s,
            Method::POST,
            &format!("/api/v2.0/projects/team/repositories/app/artifacts/{dc}/tags"),
            &admin(),
            Some(&json!({"name": format!("t{i:02}")})),
        )
        .await;
        assert_eq!(r.status(), 201);
    }
    let p1 = w.page(&format!("{TAGS}?sort=pushed")).await;
    assert!(p1.body.len() < 100_000, "a page of 50 tags is {} bytes", p1.body.len());
    let first = rows(&p1.body);
    assert_eq!(first.len(), 50);
    assert_eq!(first[0], "t51", "newest first");
    let at = p1.body.find(r#"rel="next""#).expect("a next link");
    let href = &p1.body[p1.body[..at].rfind("href=\"").unwrap() + 6..at - 2];
    assert!(href.contains("sort=pushed&amp;after="), "{href}");
    let p2 = w.page(&href.replace("&amp;", "&")).await;
    let second = rows(&p2.body);
    assert_eq!(first.len() + second.len(), 52 + 6, "{second:?}");
    assert!(second.iter().all(|n| !first.contains(n)));
    assert_eq!(second.last().map(String::as_str), Some("v1.2"), "oldest last");
    p2.has("⇤ First").lacks(r#"rel="next""#);

    // The guest: no checkboxes, no bulk delete; the server refuses anyway.
    let mut gw = signed_in(&s, "gst", PW).await;
    let gv = gw.page(TAGS).await;
    gv.has(">latest<").lacks(r#"name="tag""#).lacks("Delete selected tags");
    refused(&mut gw, &gv.csrf(), &format!("{TAGS}/delete"), &[("confirmed", "1"), ("tag", "v1.10")]).await;

    // Bulk delete: nothing ticked is said so; one confirm page naming each; one delete
    // each; the immutable one reported by name with the API's reason.
    let list = w.page(&format!("{TAGS}?name=v1")).await;
    list.has(r#"name="tag" value="v1.10""#).has("Delete selected tags");
    let csrf = list.csrf();
    let r = w.post(&format!("{TAGS}/delete"), &[("_csrf", &csrf)]).await;
    assert_eq!(r.status, 303);
    w.page(&r.location).await.has("No tag was selected.");
    let confirm = w.post(&format!("{TAGS}/delete"), &[("_csrf", &csrf), ("tag", "v1.10"), ("tag", "latest")]).await;
    assert_eq!(confirm.status, 200, "{}", confirm.body);
    confirm.has("Delete these tags?").has("<strong>team/app:v1.10</strong>").has("<strong>team/app:latest</strong>");
    confirm.has(r#"name="confirmed" value="1""#).has(r#"type="hidden" name="tag" value="latest""#);
    let r = w
        .post(&format!("{TAGS}/delete"), &[("_csrf", &csrf), ("confirmed", "1"), ("tag", "v1.10"), ("tag", "latest")])
        .await;
    assert_eq!(r.status, 303);
    let after = w.page(&r.location).await;
    after.has("Deleted 1 tags.").has("Not deleted:").has("team/app:latest: ").has("immutable");
    assert!(rows(&after.body).contains(&"latest".to_string()));
    assert_eq!(rows(&w.page(&format!("{TAGS}?name=v1")).await.body), ["v1.2"]);
    // A reload of the bulk form's address goes back to the list.
    assert_eq!(w.get(&format!("{TAGS}/delete")).await.location, TAGS);

    // In Chinese: the new words have their translation.
    w.cookies.insert("lang".into(), "zh-CN".into());
    w.page(TAGS).await.has("平台").has("不可变").has("删除所选标签").has("按标签拉取");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ui_artifact_grid_columns_tagged_filter_and_bulk_scan() {
    use crate::scanning::{OSV_FIXTURE, debian_layers, import, push_layers, wait_overview};
    let tmp = tempfile::tempdir().unwrap();
    import(&tmp.path().join("data"), OSV_FIXTURE);
    let s = Server::spawn(&tmp.path().join("data"), &[("BERTH_AUTH_MODE", "harbor")]);
    let pid = project_with_guest(&s, "scan").await;
    let d1 = push_layers(&s, "scan/app", "v1", &debian_layers()).await;
    let du = push_small_image_as(&s, &admin(), "scan/app", "gone", "u").await;
    let r =
        call(&s, Method::DELETE, "/api/v2.0/projects/scan/repositories/app/artifacts/gone/tags/gone", &admin(), None)
            .await;
    assert_eq!(r.status(), 200);
    let r = call(
        &s,
        Method::POST,
        "/api/v2.0/labels",
        &admin(),
        Some(&json!({"name": "prod", "scope": "p", "project_id": pid, "color": "#aa0000"})),
    )
    .await;
    assert_eq!(r.status(), 201);
    let label = ok_json(&s, &format!("/api/v2.0/labels?scope=p&project_id={pid}"), &admin()).await[0]["id"].clone();
    let r = call(
        &s,
        Method::POST,
        "/api/v2.0/projects/scan/repositories/app/artifacts/v1/labels",
        &admin(),
        Some(&json!({"id": label})),
    )
    .await;
    assert_eq!(r.status(), 200);
    let arts = "/projects/scan/repos/app/-/artifacts";
    let mut w = signed_in(&s, "admin", ADMIN_PASSWORD).await;

    // The columns: platforms, vulnerabilities, SBOM, signed, labels; copy digest per row.
    let g = w.page(arts).await;
    g.has(">Platforms<").has(">Vulnerabilities<").has(">SBOM<").has(">Signed<").has(">Labels<");
    g.has("<code>linux/amd64</code>").has("not scanned").has("✖ No").has("✖ unsigned").has("prod");
    g.has(&format!(r#"data-copy="{d1}""#)).has(&format!("Copy digest {}", short(&d1)));
    g.has("Scan selected artifacts").has(r#"formaction="/projects/scan/repos/app/-/artifacts/scan""#);
    // Tagged and untagged (the API's q=tags=* and tags=nil).
    g.has(r#"<label for="tagged">"#);
    w.page(&format!("{arts}?tagged=yes")).await.has(&short(&d1)).lacks(&short(&du));
    w.page(&format!("{arts}?tagged=no")).await.has(&short(&du)).lacks(&short(&d1)).has(r#"value="no" selected"#);
    let bad = w.get(&format!("{arts}?tagged=maybe")).await;
    assert_eq!(bad.status, 400);
    bad.has("Bad request parameter: tagged ");

    // The guest: no checkboxes and no scan button; the server refuses a bulk scan.
    let mut gw = signed_in(&s, "gst", PW).await;
    let gg = gw.page(arts).await;
    gg.has(&short(&d1)).lacks(r#"name="digest""#).lacks("Scan selected artifacts");
    refused(&mut gw, &gg.csrf(), &format!("{arts}/scan"), &[("digest", &d1)]).await;

    // Bulk scan: nothing ticked is said so; then one scan each, and its overview in the
    // grid and in the tags view (critical and high counts in words, fixable).
    let csrf = g.csrf();
    let r = w.post(&format!("{arts}/scan"), &[("_csrf", &csrf)]).await;
    w.page(&r.location).await.has("No artifact was selected.");
    let r = w.post(&format!("{arts}/scan"), &[("_csrf", &csrf), ("digest", &d1)]).await;
    assert_eq!(r.status, 303);
    w.page(&r.location).await.has("Started 1 scans.");
    wait_overview(&s, "/api/v2.0/projects/scan/repositories/app/artifacts/v1", "vuln").await;
    let g = w.page(arts).await;
    g.has("‼ Critical").has("▲ High").has("5 fixable");
    let t = w.page("/projects/scan/repos/app/-/tags").await;
    t.has("‼ Critical").has("5 fixable");
    // The same artifact twice: the second is refused while the first runs, or both start.
    let r = w.post(&format!("{arts}/scan"), &[("_csrf", &csrf), ("digest", &d1), ("digest", "sha256:nope")]).await;
    let p = w.page(&r.location).await;
    p.has("Not scanned:").has("scan/app@sha256:nope");
}
