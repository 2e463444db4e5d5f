//! The web UI's artifact page over HTTP: layers with the build history's command of each,
//! the image config, the parent index of an index's child, removing a tag (confirm page,
//! immutability refused in the API's words), copying to another repository (and to a
//! project that does not exist), deleting with a confirm page naming the tags; the
//! repository description as sanitized Markdown. Each action as an administrator and as a
//! guest (no control shown, and the server refuses anyway). The API behind it: Harbor's
//! `additions/build_history` and artifact copy (`POST …/artifacts?from=`).

use serde_json::json;

use crate::support::*;
use crate::ui::Web;
use crate::ui_features::refused;

const APP: &str = "/projects/team/repos/app/-/artifacts";
const API: &str = "/api/v2.0/projects/team/repositories";

fn short(d: &str) -> String {
    format!("sha256:{}", &d.trim_start_matches("sha256:")[..12])
}

/// An image with two layers, a config that sets what a Dockerfile sets, and a history with
/// two metadata-only (`empty_layer`) steps between the layers' steps. Returns the manifest
/// digest, the two layer digests and the manifest's size.
pub async fn push_built_image(s: &Server, who: &Who, repo: &str, tag: &str) -> (String, String, String, usize) {
    let config = json!({
        "architecture": "amd64", "os": "linux", "created": "2026-01-02T03:04:05Z",
        "config": {
            "Env": ["PATH=/usr/bin", "MODE=prod"], "Entrypoint": ["/app"], "Cmd": ["--serve"],
            "ExposedPorts": {"8080/tcp": {}}, "WorkingDir": "/srv", "User": "app",
            "Labels": {"org.opencontainers.image.source": "https://example.com/shop"}
        },
        "history": [
            {"created_by": "/bin/sh -c #(nop) ADD file:base in / "},
            {"created_by": "/bin/sh -c #(nop)  ENV MODE=prod", "empty_layer": true},
            {"created_by": "RUN /bin/sh -c apk add curl # buildkit"},
            {"created_by": "CMD [\"--serve\"]", "empty_layer": true}
        ]
    })
    .to_string();
    let (l1, l2) = ("base layer bytes".to_string(), "the layer apk add made, a little longer".to_string());
    let cd = push_blob_as(s, who, repo, config.as_bytes()).await;
    let d1 = push_blob_as(s, who, repo, l1.as_bytes()).await;
    let d2 = push_blob_as(s, who, repo, l2.as_bytes()).await;
    let m = image_manifest((&cd, config.len()), &[(&d1, l1.len()), (&d2, l2.len())]);
    put_manifest(s, who, repo, tag, "application/vnd.oci.image.manifest.v1+json", &m).await;
    (sha256(m.as_bytes()), d1, d2, m.len())
}

async fn put_manifest(s: &Server, who: &Who, repo: &str, tag: &str, media_type: &str, body: &str) {
    let r = who
        .apply(client().put(s.url(&format!("/v2/{repo}/manifests/{tag}"))))
        .header("content-type", media_type)
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201, "push manifest {repo}:{tag}: {:?}", r.text().await);
}

/// An OCI index of `child` (an image manifest of `size` bytes already in `repo`), tagged
/// `tag`; returns its digest.
pub async fn push_index(s: &Server, who: &Who, repo: &str, tag: &str, child: &str, size: usize) -> String {
    let index = json!({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": child, "size": size,
            "platform": {"architecture": "amd64", "os": "linux"}
        }]
    })
    .to_string();
    put_manifest(s, who, repo, tag, "application/vnd.oci.image.index.v1+json", &index).await;
    sha256(index.as_bytes())
}

#[tokio::test]
async fn ui_artifact_layers_config_parents_untag_copy_delete() {
    let s = Server::start_harbor();
    create_user(&s, "gst").await;
    create_project(&s, &admin(), "team", false).await;
    add_member(&s, "team", "gst", 3).await;
    let (d, l1, l2, size) = push_built_image(&s, &admin(), "team/app", "v1").await;
    crate::ui::tag_many(&s, &admin(), "team/app", &d, ["old", "keep"].into_iter().map(String::from)).await;
    let index = push_index(&s, &admin(), "team/app", "multi", &d, size).await;
    let gone = push_small_image_as(&s, &admin(), "team/app", "gone", "gone").await;

    // The API: the build history as the config has it; an index has none (400).
    let h = ok_json(&s, &format!("{API}/app/artifacts/{d}/additions/build_history"), &admin()).await;
    assert_eq!(h.as_array().map(Vec::len), Some(4), "{h}");
    assert_eq!(h[1]["empty_layer"], true);
    assert_eq!(h[2]["created_by"], "RUN /bin/sh -c apk add curl # buildkit");
    let r = get(&s, &format!("{API}/app/artifacts/{index}/additions/build_history"), &admin()).await;
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("build_history isn't supported"));

    let mut w = Web::new(&s);
    w.sign_in("admin", ADMIN_PASSWORD).await;
    let art = format!("{APP}/{d}");
    let page = w.page(&art).await;
    // Layers in order with their sizes and the step that made each (metadata steps skipped).
    page.has(r#"<h2 id="layers">Layers</h2>"#).has(&short(&l1)).has(&short(&l2));
    page.has("16 B").has("39 B");
    page.has("ADD file:base in /").has("RUN /bin/sh -c apk add curl # buildkit").lacks("ENV MODE=prod");
    let (at1, at2, atrun) = (
        page.body.find(&short(&l1)).unwrap(),
        page.body.find(&short(&l2)).unwrap(),
        page.body.find("apk add").unwrap(),
    );
    assert!(at1 < at2 && at2 < atrun, "the RUN step is on the second layer's row");
    // The config.
    page.has("Environment").has("PATH=/usr/bin").has("MODE=prod").has("Entrypoint").has("/app");
    page.has("--serve").has("Exposed ports").has("8080/tcp").has("Working directory").has("/srv");
    page.has(">User<").has("OCI labels").has("org.opencontainers.image.source").has("https://example.com/shop");
    // The index it belongs to, linked.
    page.has("Part of index").has(&format!(r#"href="{APP}/{index}""#));
    w.page(&format!("{APP}/{index}")).await.lacks("Part of index").lacks(r#"id="layers""#);
    // The actions an administrator may take.
    page.has(r#"aria-label="Remove tag old""#).has(r#"<label for="copy_project">"#).has(r#"<label for="copy_repo">"#);
    page.has(r#"<label for="copy_tag">"#).has("Copy artifact").has("Delete this artifact");
    // An index's child cannot be deleted on its own: the API's reason.
    w.submit(&art, &format!("{art}/delete"), &[]).await.has(r#"role="alert""#).has("referenced by others");

    // Remove a tag: a confirm page, then gone; an immutable one is refused in the API's words.
    let confirm = w.page(&format!("{art}/tags/old/delete")).await;
    confirm.has("Are you sure?").has("team/app:old");
    let done = w.submit(&format!("{art}/tags/old/delete"), &format!("{art}/tags/old/delete"), &[]).await;
    done.has("Tag removed.").lacks("<strong>old</strong>").has("<strong>keep</strong>");
    let tags = ok_json(&s, &format!("{API}/app/artifacts/{d}/tags"), &admin()).await.to_string();
    assert!(!tags.contains("\"old\"") && tags.contains("\"keep\""), "{tags}");
    w.submit("/projects/team/immutability", "/projects/team/immutability", &[("repos", "app"), ("tags", "keep")]).await;
    let refusal = w.submit(&art, &format!("{art}/tags/keep/delete"), &[]).await;
    refusal.has(r#"role="alert""#).has("configured as immutable").has("<strong>keep</strong>");

    // Copy to another repository with an extra tag: the copy's page, its tags with it.
    let copied =
        w.submit(&art, &format!("{art}/copy"), &[("project", "team"), ("repo", "copy"), ("tag", "extra")]).await;
    copied.has("Copied to team/copy.").has("<strong>v1</strong>").has("<strong>extra</strong>");
    copied.has(&short(&l2)).has("RUN /bin/sh -c apk add curl # buildkit");
    let tags = ok_json(&s, &format!("{API}/copy/artifacts/{d}/tags"), &admin()).await.to_string();
    assert!(tags.contains("\"v1\"") && tags.contains("\"extra\"") && tags.contains("\"keep\""), "{tags}");
    let pulled = get(&s, &format!("/v2/team/copy/blobs/{l2}"), &admin()).await;
    assert_eq!(pulled.status(), 200, "the copy's blobs are pullable");
    // Bad input: a project that does not exist, a copy already there, no repository named.
    let nope = w.submit(&art, &format!("{art}/copy"), &[("project", "nope"), ("repo", "x")]).await;
    nope.has(r#"role="alert""#).has("project nope not found");
    let again = w.submit(&art, &format!("{art}/copy"), &[("project", "team"), ("repo", "copy")]).await;
    again.has(r#"role="alert""#).has("already exists");
    w.submit(&art, &format!("{art}/copy"), &[("project", "team"), ("repo", " ")])
        .await
        .has("Name the target project and repository.");
    // The API: the source must be named right.
    let r = call(&s, reqwest::Method::POST, &format!("{API}/copy2/artifacts?from=app:v1"), &admin(), None).await;
    assert_eq!(r.status(), 400);

    // Delete: a confirm page naming the tags that go with it, then the list.
    let gone_page = format!("{APP}/{gone}");
    let confirm = w.page(&format!("{gone_page}/delete")).await;
    confirm.has("Are you sure?").has("These tags are deleted with it:").has("<strong>gone</strong>");
    confirm.has(&format!("team/app@{}", short(&gone)));
    let csrf = confirm.csrf();
    let r = w.post(&format!("{gone_page}/delete"), &[("_csrf", &csrf)]).await;
    assert_eq!((r.status, r.location.as_str()), (303, APP));
    w.page(APP).await.has("Artifact deleted.").lacks(&short(&gone));
    assert_eq!(get(&s, &format!("{API}/app/artifacts/{gone}"), &admin()).await.status(), 404);

    // The guest sees the page without the controls, and the server refuses anyway.
    let mut g = Web::new(&s);
    g.sign_in("gst", PW).await;
    let gp = g.page(&art).await;
    gp.has(&short(&l2)).has("8080/tcp").has("Part of index");
    gp.lacks("Remove tag").lacks("copy_project").lacks("Copy artifact").lacks("Delete this artifact");
    let csrf = gp.csrf();
    refused(&mut g, &csrf, &format!("{art}/tags/v1/delete"), &[]).await;
    refused(&mut g, &csrf, &format!("{art}/copy"), &[("project", "team"), ("repo", "guestcopy")]).await;
    refused(&mut g, &csrf, &format!("{art}/delete"), &[]).await;
    let tags = ok_json(&s, &format!("{API}/app/artifacts/{d}/tags"), &admin()).await.to_string();
    assert!(tags.contains("\"v1\""), "{tags}");
    assert_eq!(get(&s, &format!("{API}/guestcopy"), &admin()).await.status(), 404);
}

#[tokio::test]
async fn ui_repository_description_is_sanitized_markdown() {
    let s = Server::start_harbor();
    create_project(&s, &admin(), "team", false).await;
    push_small_image_as(&s, &admin(), "team/app", "v1", "one").await;
    let mut w = Web::new(&s);
    w.sign_in("admin", ADMIN_PASSWORD).await;
    let info = "/projects/team/repos/app/-/info";
    let text = "# Shop API\n\nBuilt **nightly**. See [the docs](https://example.com/docs) or \
                [x](javascript:alert(1)).\n\n<script>alert(2)</script>\n\n- one\n- two";
    let p = w.submit(info, info, &[("description", text)]).await;
    p.has("Saved.").has("<h1>Shop API</h1>").has("<strong>nightly</strong>");
    p.has(r#"<a href="https://example.com/docs">the docs</a>"#).has(r##"<a href="#">x</a>"##);
    p.has("&lt;script&gt;alert(2)&lt;/script&gt;").lacks("<script>alert(2)").lacks(r#"href="javascript"#);
    p.has("<li>one</li>");
    // The form still edits the source text.
    p.has(r#"<textarea id="description" name="description">"#).has("# Shop API");
}
