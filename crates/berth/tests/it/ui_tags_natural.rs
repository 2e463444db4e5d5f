//! The web UI's tags view over HTTP: the natural (version-aware) order with keyset pages,
//! the type filter (image, index, Helm chart, other) combined with the name filter and
//! paging, and adding a tag (by tag or digest; a taken tag, an immutable one, a bad name,
//! no artifact named), as a developer the API lets tag and a guest it refuses.

use reqwest::Method;
use serde_json::json;

use crate::support::*;
use crate::ui::signed_in;
use crate::ui_features::refused;

const TAGS: &str = "/projects/team/repos/app/-/tags";
const HELM_CONFIG: &str = "application/vnd.cncf.helm.config.v1+json";

/// The tag names of a tags view page, in their order.
fn rows(body: &str) -> Vec<String> {
    body.split(r#"<th scope="row">"#).skip(1).map(|r| r[..r.find('<').unwrap()].to_string()).collect()
}

/// The `href` of the page's "next" link, unescaped.
fn next_link(body: &str) -> Option<String> {
    let at = body.find(r#"rel="next""#)?;
    let href = &body[body[..at].rfind("href=\"").unwrap() + 6..at - 2];
    Some(href.replace("&amp;", "&"))
}

/// Pushes a Helm chart (Helm's config media type) tagged `tag`; returns its digest.
pub(crate) async fn push_chart(s: &Server, repo: &str, tag: &str) -> String {
    let config = format!(r#"{{"name":"demo","version":"{tag}"}}"#);
    let layer = format!("chart {tag}");
    let cd = push_blob_as(s, &admin(), repo, config.as_bytes()).await;
    let ld = push_blob_as(s, &admin(), repo, layer.as_bytes()).await;
    let m = json!({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": HELM_CONFIG, "digest": cd, "size": config.len()},
        "layers": [{"mediaType": "application/vnd.cncf.helm.chart.content.v1.tar+gzip", "digest": ld, "size": layer.len()}]})
    .to_string();
    put_manifest_as(s, &admin(), repo, tag, OCI_MANIFEST, &m).await;
    sha256(m.as_bytes())
}

/// Pushes an index of `child` (an amd64 image) tagged `tag`.
pub(crate) async fn push_index_of(s: &Server, repo: &str, tag: &str, child: &str) {
    push_platform_index(s, repo, tag, &[(child, "amd64")]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ui_tags_natural_order_type_filter_and_add_tag() {
    let s = Server::start_harbor();
    create_user(&s, "dev").await;
    create_user(&s, "gst").await;
    create_project(&s, &admin(), "team", false).await;
    add_member(&s, "team", "dev", 2).await;
    add_member(&s, "team", "gst", 3).await;
    let d12 = push_small_image_as(&s, &admin(), "team/app", "v1.2", "a").await;
    push_small_image_as(&s, &admin(), "team/app", "v1.10", "b").await;
    push_small_image_as(&s, &admin(), "team/app", "v1.9", "c").await;
    push_small_image_as(&s, &admin(), "team/app", "1.10.0", "d").await;
    push_small_image_as(&s, &admin(), "team/app", "1.9.0", "e").await;
    push_index_of(&s, "team/app", "multi-2", &d12).await;
    push_chart(&s, "team/app", "chart-0.10.0").await;
    push_chart(&s, "team/app", "chart-0.9.0").await;

    let mut w = signed_in(&s, "dev", PW).await;

    // Natural order: numbers by value; the order selector says which; the tag column is
    // the sorted one.
    let v = w.page(&format!("{TAGS}?sort=natural")).await;
    assert_eq!(
        rows(&v.body),
        ["1.9.0", "1.10.0", "chart-0.9.0", "chart-0.10.0", "multi-2", "v1.2", "v1.9", "v1.10"],
        "natural order"
    );
    v.has(r#"<label for="sort">Order</label>"#).has(r#"<option value="natural" selected>"#);
    v.has(r#"aria-sort="ascending">Tag<"#);
    // Bytewise, for contrast (the default).
    let byte = w.page(TAGS).await;
    let names = rows(&byte.body);
    assert!(names.iter().position(|n| n == "v1.10") < names.iter().position(|n| n == "v1.2"), "{names:?}");
    // With a name filter: a prefix, a glob.
    assert_eq!(rows(&w.page(&format!("{TAGS}?sort=natural&name=v1.")).await.body), ["v1.2", "v1.9", "v1.10"]);
    assert_eq!(
        rows(&w.page(&format!("{TAGS}?sort=natural&name=*.0")).await.body),
        ["1.9.0", "1.10.0", "chart-0.9.0", "chart-0.10.0"]
    );

    // The type filter, alone and with a glob and either order.
    let t = w.page(&format!("{TAGS}?type=index")).await;
    assert_eq!(rows(&t.body), ["multi-2"]);
    t.has(r#"<label for="type">Type</label>"#).has(r#"<option value="index" selected>"#);
    assert_eq!(rows(&w.page(&format!("{TAGS}?type=chart&sort=natural")).await.body), ["chart-0.9.0", "chart-0.10.0"]);
    assert_eq!(rows(&w.page(&format!("{TAGS}?type=image&name=v*&sort=natural")).await.body), ["v1.2", "v1.9", "v1.10"]);
    w.page(&format!("{TAGS}?type=other")).await.has("Nothing here yet");
    // The sort links keep the filters.
    w.page(&format!("{TAGS}?type=image&name=v*"))
        .await
        .has(r#"href="/projects/team/repos/app/-/tags?name=v*&amp;type=image&amp;sort=pushed""#);

    // Bad input: the parameter named.
    for (q, name) in [("type=video", "type"), ("sort=natural&after=", "")] {
        if name.is_empty() {
            assert_eq!(w.get(&format!("{TAGS}?{q}")).await.status, 200, "an empty cursor is the first page");
            continue;
        }
        let p = w.get(&format!("{TAGS}?{q}")).await;
        assert_eq!(p.status, 400, "{q}: {}", p.body);
        p.has(&format!("Bad request parameter: {name} "));
    }

    // Adding a tag, as a developer: by tag, by digest.
    let add = format!("{TAGS}/add");
    let form = w.page(TAGS).await;
    form.has(&format!(r#"action="{add}""#)).has(r#"<label for="add_ref">Artifact (a tag or digest)</label>"#);
    form.has(r#"<label for="add_tag">New tag</label>"#);
    let added = w.submit(TAGS, &add, &[("ref", "v1.2"), ("tag", "v1.2.0")]).await;
    added.has("Tag added.");
    assert!(rows(&added.body).contains(&"v1.2.0".to_string()));
    w.submit(TAGS, &add, &[("ref", &d12), ("tag", "stable")]).await.has("Tag added.");
    let a = ok_json(&s, "/api/v2.0/projects/team/repositories/app/artifacts/stable", &admin()).await;
    assert_eq!(a["digest"], json!(d12), "the tag is on the digest's artifact");
    // Refusals in the API's words, and no artifact named said so.
    w.submit(TAGS, &add, &[("ref", "v1.9"), ("tag", "v1.10")]).await.has("already exists");
    w.submit(TAGS, &add, &[("ref", "v1.9"), ("tag", "-bad")]).await.has("invalid tag name");
    w.submit(TAGS, &add, &[("ref", "nope"), ("tag", "x1")]).await.has("not found");
    w.submit(TAGS, &add, &[("ref", " "), ("tag", "x1")]).await.has("Artifact (a tag or digest) is required.");
    // An immutable tag that is taken: refused as immutable (Harbor's 412), in the page
    // and in the API.
    let mut aw = signed_in(&s, "admin", ADMIN_PASSWORD).await;
    aw.submit("/projects/team/immutability", "/projects/team/immutability", &[("repos", "**"), ("tags", "v1.1*")])
        .await;
    w.submit(TAGS, &add, &[("ref", "v1.9"), ("tag", "v1.10")]).await.has("configured as immutable");
    let api = "/api/v2.0/projects/team/repositories/app/artifacts/v1.9/tags";
    let r = call(&s, Method::POST, api, &admin(), Some(&json!({"name": "v1.10"}))).await;
    assert_eq!(r.status(), 412, "an immutable tag that is taken");
    let r = call(&s, Method::POST, api, &admin(), Some(&json!({"name": "v1.2"}))).await;
    assert_eq!(r.status(), 409, "a tag that is taken");
    // A new tag a rule will protect is no change to a protected tag: added.
    w.submit(TAGS, &add, &[("ref", "v1.9"), ("tag", "v1.11")]).await.has("Tag added.");

    // Natural keyset pages: 52 more tags, every one once over two pages, numbers in order.
    for i in 1..=52 {
        let r = call(
            &s,
            Method::POST,
            "/api/v2.0/projects/team/repositories/app/artifacts/v1.9/tags",
            &admin(),
            Some(&json!({"name": format!("n{i}")})),
        )
        .await;
        assert_eq!(r.status(), 201);
    }
    let p1 = w.page(&format!("{TAGS}?sort=natural&type=image")).await;
    let first = rows(&p1.body);
    assert_eq!(first.len(), 50);
    let n = |i: usize| format!("n{i}");
    let at = |name: &str| first.iter().position(|x| x == name).unwrap_or_else(|| panic!("{name} in {first:?}"));
    assert!(at(&n(2)) < at(&n(10)) && at(&n(9)) < at(&n(10)), "{first:?}");
    let href = next_link(&p1.body).expect("a next link");
    assert!(href.contains("type=image") && href.contains("sort=natural&after="), "{href}");
    let p2 = w.page(&href).await;
    let second = rows(&p2.body);
    assert!(second.iter().all(|x| !first.contains(x)), "{second:?}");
    // Images: 1.9.0, 1.10.0, n1…n52, stable, v1.2, v1.2.0, v1.9, v1.10, v1.11.
    assert_eq!(first.len() + second.len(), 2 + 52 + 6, "{second:?}");
    assert_eq!(second.last().map(String::as_str), Some("v1.11"));
    assert!(next_link(&p2.body).is_none());

    // The guest sees no add form and is refused anyway.
    let mut gw = signed_in(&s, "gst", PW).await;
    let gv = gw.page(&format!("{TAGS}?sort=natural&name=v1.")).await;
    gv.lacks(&format!(r#"action="{add}""#)).has(">v1.10<");
    refused(&mut gw, &gv.csrf(), &add, &[("ref", "v1.2"), ("tag", "guest-tag")]).await;
    let r = call(&s, Method::GET, "/api/v2.0/projects/team/repositories/app/artifacts/v1.2/tags", &admin(), None).await;
    assert!(!r.text().await.unwrap().contains("guest-tag"));

    // In Chinese: the new words have their translation.
    w.cookies.insert("lang".into(), "zh-CN".into());
    w.page(TAGS).await.has("排序").has("名称，按版本顺序").has("其他 OCI 制品").has("新标签");
}

/// Pushes an OCI artifact of its own type (neither image nor chart) tagged `tag`.
async fn push_other(s: &Server, repo: &str, tag: &str) -> String {
    let cd = push_blob_as(s, &admin(), repo, b"{}").await;
    let m = json!({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "artifactType": "application/vnd.example.thing",
        "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": cd, "size": 2}, "layers": []})
    .to_string();
    put_manifest_as(s, &admin(), repo, tag, OCI_MANIFEST, &m).await;
    sha256(m.as_bytes())
}

/// Pushes an image whose config names `platform` (its JSON fields) tagged `tag`.
pub(crate) async fn push_image_for(s: &Server, repo: &str, tag: &str, platform: &str) -> String {
    let config = format!(r#"{{{platform},"seed":"{tag}"}}"#);
    let layer = format!("layer {tag}");
    let cd = push_blob_as(s, &admin(), repo, config.as_bytes()).await;
    let ld = push_blob_as(s, &admin(), repo, layer.as_bytes()).await;
    let m = image_manifest((&cd, config.len()), &[(&ld, layer.len())]);
    put_manifest_as(s, &admin(), repo, tag, OCI_MANIFEST, &m).await;
    sha256(m.as_bytes())
}

/// The cells of the tags view's row of `tag`.
fn row_of<'a>(body: &'a str, tag: &str) -> &'a str {
    let at = body.find(&format!(r#"<th scope="row">{tag}<"#)).unwrap_or_else(|| panic!("row {tag}"));
    &body[at..at + body[at..].find("</tr>").unwrap()]
}

/// The tags view's kind column (in words) and each image's own platform from its config
/// (with its variant), next to an index's platforms; the same for a guest (who may read
/// the repository); a user outside the private project gets no page at all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ui_tags_view_kind_column_and_image_platform() {
    let s = Server::start_harbor();
    create_user(&s, "gst").await;
    create_user(&s, "out").await;
    create_project(&s, &admin(), "team", false).await;
    add_member(&s, "team", "gst", 3).await;
    let arm = push_image_for(&s, "team/app", "arm", r#""architecture":"arm","os":"linux","variant":"v7""#).await;
    push_image_for(&s, "team/app", "win", r#""architecture":"amd64","os":"windows""#).await;
    push_image_for(&s, "team/app", "bare", r#""created":"2024-01-01T00:00:00Z""#).await;
    push_index_of(&s, "team/app", "multi", &arm).await;
    push_chart(&s, "team/app", "chart-1.0.0").await;
    push_other(&s, "team/app", "thing").await;

    for who in ["admin", "gst"] {
        let mut w = signed_in(&s, who, if who == "admin" { ADMIN_PASSWORD } else { PW }).await;
        let v = w.page(TAGS).await;
        v.has(r#"<th scope="col">Kind</th>"#);
        let arm_row = row_of(&v.body, "arm");
        assert!(arm_row.contains("<td>Image</td>") && arm_row.contains("<code>linux/arm/v7</code>"), "{arm_row}");
        let win = row_of(&v.body, "win");
        assert!(win.contains("<td>Image</td>") && win.contains("<code>windows/amd64</code>"), "{win}");
        // A config naming no platform shows none.
        let bare = row_of(&v.body, "bare");
        assert!(bare.contains("<td>Image</td>") && !bare.contains("<ul class=\"platforms\">"), "{bare}");
        let multi = row_of(&v.body, "multi");
        assert!(
            multi.contains("<td>Index (several platforms)</td>") && multi.contains("<code>linux/amd64</code>"),
            "{multi}"
        );
        let chart = row_of(&v.body, "chart-1.0.0");
        assert!(chart.contains("<td>Helm chart</td>") && !chart.contains("<ul class=\"platforms\">"), "{chart}");
        let thing = row_of(&v.body, "thing");
        assert!(thing.contains("<td>Other OCI artifact</td>"), "{thing}");
        // The kind filter and the column agree.
        let only = w.page(&format!("{TAGS}?type=chart")).await;
        assert_eq!(rows(&only.body), ["chart-1.0.0"]);
        assert!(row_of(&only.body, "chart-1.0.0").contains("<td>Helm chart</td>"));
    }
    let mut o = signed_in(&s, "out", PW).await;
    let p = o.get(TAGS).await;
    assert!(p.status == 404 || p.status == 403, "{}", p.status);
    p.lacks("<code>linux/arm/v7</code>").lacks(">Kind<");
}
