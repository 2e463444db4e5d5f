//! The web UI's artifact page over HTTP: layers with the build history's command of each,
//! the image config, the parent index of an index's child, removing a tag (confirm page,
//! immutability refused in the API's words), copying to another repository (and to a
//! project that does not exist), deleting with a confirm page naming the tags; the
//! repository description as sanitized Markdown. Each action as an administrator and as a
//! guest (no control shown, and the server refuses anyway). The API behind it: Harbor's
//! `additions/build_history` and artifact copy (`POST …/artifacts?from=`).

use serde_json::json;

use crate::support::*;
use crate::ui::signed_in;
use crate::ui_features::refused;

const APP: &str = "/projects/team/repos/app/-/artifacts";
const API: &str = "/api/v2.0/projects/team/repositories";

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
    put_manifest_as(s, who, repo, tag, OCI_MANIFEST, &m).await;
    (sha256(m.as_bytes()), d1, d2, m.len())
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
    put_manifest_as(s, who, repo, tag, OCI_INDEX, &index).await;
    sha256(index.as_bytes())
}

#[tokio::test]
async fn ui_artifact_layers_config_parents_untag_copy_delete() {
    let s = Server::start_harbor();
    project_with_guest(&s, "team").await;
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

    let mut w = signed_in(&s, "admin", ADMIN_PASSWORD).await;
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
    let mut g = signed_in(&s, "gst", PW).await;
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
    let mut w = signed_in(&s, "admin", ADMIN_PASSWORD).await;
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

/// Copying from the artifact page brings the accessories along (a cosign signature under
/// its tag, an SBOM referrer), shown on the target's page; the artifact's tags are shown a
/// page at a time (keyset: next, previous, first), a bad cursor named. A guest sees the
/// pages but no copy form, and the server refuses the copy anyway.
#[tokio::test]
async fn ui_artifact_copy_brings_accessories_and_tags_are_paged() {
    let s = Server::start_harbor();
    project_with_guest(&s, "team").await;
    let d = push_small_image_as(&s, &admin(), "team/app", "t000", "paged").await;
    crate::signatures::push_cosign_signature(&s, &d).await;
    let sbom = crate::signatures::push_harbor_sbom(&s, &d).await;
    // 120 tags: t000 … t119, three pages of 50.
    crate::ui::tag_many(&s, &admin(), "team/app", &d, (1..120).map(|i| format!("t{i:03}"))).await;

    let mut w = signed_in(&s, "admin", ADMIN_PASSWORD).await;
    let art = format!("{APP}/{d}");
    let names = |body: &str| -> Vec<String> {
        body.split("<li><strong>").skip(1).map(|r| r[..r.find('<').unwrap()].to_string()).collect()
    };
    let p1 = w.page(&art).await;
    let first = names(&p1.body);
    assert_eq!(first.len(), 50, "one page of tags");
    assert_eq!((first[0].as_str(), first[49].as_str()), ("t000", "t049"));
    p1.has(r#"aria-label="Pages of this artifact's tags""#).lacks("Previous tags").lacks("First tags");
    p1.has(&format!(r#"href="{art}?tags_after=t049#artifact-tags" rel="next""#));
    let p2 = w.page(&format!("{art}?tags_after=t049")).await;
    assert_eq!(names(&p2.body).first().map(String::as_str), Some("t050"));
    p2.has(&format!(r#"href="{art}?tags_before=t050#artifact-tags" rel="prev""#)).has("First tags");
    let p3 = w.page(&format!("{art}?tags_after=t099")).await;
    let last = names(&p3.body);
    assert_eq!((last.len(), last[0].as_str(), last[19].as_str()), (20, "t100", "t119"));
    p3.lacks("Next tags").has("Previous tags");
    let back = w.page(&format!("{art}?tags_before=t050")).await;
    assert_eq!(names(&back.body), first, "previous from page 2 is page 1");
    // A cursor that is not a tag name, or both at once: 400 naming the parameter.
    let bad = w.get(&format!("{art}?tags_after=%2Fx")).await;
    assert_eq!(bad.status, 400);
    bad.has("Bad request parameter: tags_after ");
    let bad = w.get(&format!("{art}?tags_after=t001&tags_before=t009")).await;
    assert_eq!(bad.status, 400);
    bad.has("Bad request parameter: tags_before ");

    // The page says accessories come along; the copy's page shows them.
    p1.has("its accessories (signatures, SBOMs, attestations)");
    let copied = w.submit(&art, &format!("{art}/copy"), &[("project", "team"), ("repo", "copy")]).await;
    copied.has("Copied to team/copy.").has("signature.cosign").has("sbom.harbor").has(&short(&sbom));
    copied.has("<strong>t000</strong>").has("Next tags");
    let acc = ok_json(&s, &format!("{API}/copy/artifacts/{d}/accessories"), &admin()).await;
    assert_eq!(acc.as_array().map(Vec::len), Some(2), "{acc}");

    // The guest pages through the tags but has no copy form; the server refuses a copy.
    let mut g = signed_in(&s, "gst", PW).await;
    let gp = g.page(&format!("{art}?tags_after=t049")).await;
    assert_eq!(names(&gp.body).first().map(String::as_str), Some("t050"));
    gp.lacks("copy_project");
    refused(&mut g, &gp.csrf(), &format!("{art}/copy"), &[("project", "team"), ("repo", "guestcopy")]).await;
    assert_eq!(get(&s, &format!("{API}/guestcopy"), &admin()).await.status(), 404);
}

/// The artifact grid sorts by push time, size and digest (server-side, `aria-sort`, a bad
/// `sort` named), and stops scans and generates SBOMs of the ticked artifacts in bulk
/// (the scan queue paused, so the scans wait and can be stopped); a guest sees neither
/// button and the server refuses both. On plain HTTP there is no certificate to download.
#[tokio::test]
async fn ui_artifact_grid_sort_bulk_stop_scan_and_sbom() {
    let s = Server::start_harbor();
    project_with_guest(&s, "team").await;
    let small = push_small_image_as(&s, &admin(), "team/app", "small", "s").await;
    let (big, ..) = push_built_image(&s, &admin(), "team/app", "big").await;
    let mid = push_small_image_as(&s, &admin(), "team/app", "mid", "a somewhat longer seed for a bigger config").await;
    let mut w = signed_in(&s, "admin", ADMIN_PASSWORD).await;
    let order = |body: &str, ds: &[&str]| -> Vec<usize> {
        let mut at: Vec<(usize, usize)> =
            ds.iter().enumerate().map(|(i, d)| (body.find(&format!(r#"title="{d}""#)).unwrap(), i)).collect();
        at.sort();
        at.into_iter().map(|(_, i)| i).collect()
    };
    let all = [small.as_str(), big.as_str(), mid.as_str()];
    // Default: newest first, the push column marked.
    let g = w.page(APP).await;
    assert_eq!(order(&g.body, &all), [2, 1, 0]);
    g.has(r#"<th scope="col" aria-sort="descending"><a href="/projects/team/repos/app/-/artifacts?sort=push_time">Pushed"#);
    // By size, both ways.
    let sizes: Vec<u64> = {
        let mut v = Vec::new();
        for d in all {
            v.push(ok_json(&s, &format!("{API}/app/artifacts/{d}"), &admin()).await["size"].as_u64().unwrap());
        }
        v
    };
    let mut by_size = vec![0, 1, 2];
    by_size.sort_by_key(|i| sizes[*i]);
    let g = w.page(&format!("{APP}?sort=size")).await;
    assert_eq!(order(&g.body, &all), by_size);
    g.has(r#"aria-sort="ascending"><a href="/projects/team/repos/app/-/artifacts?sort=-size""#);
    let g = w.page(&format!("{APP}?sort=-size")).await;
    by_size.reverse();
    assert_eq!(order(&g.body, &all), by_size);
    // By digest, keeping the filters in the links.
    let mut by_digest = vec![0, 1, 2];
    by_digest.sort_by_key(|i| all[*i]);
    let g = w.page(&format!("{APP}?sort=digest&tagged=yes")).await;
    assert_eq!(order(&g.body, &all), by_digest);
    g.has(r#"href="/projects/team/repos/app/-/artifacts?tagged=yes&amp;sort=-digest""#);
    g.has(r#"<input type="hidden" name="sort" value="digest">"#);
    let bad = w.get(&format!("{APP}?sort=name")).await;
    assert_eq!(bad.status, 400);
    bad.has("Bad request parameter: sort ");

    // Bulk: the buttons; nothing ticked is said so.
    let g = w.page(APP).await;
    g.has("Stop scanning selected artifacts").has(r#"formaction="/projects/team/repos/app/-/artifacts/scan/stop""#);
    g.has("Generate SBOMs of selected artifacts").has(r#"formaction="/projects/team/repos/app/-/artifacts/sbom""#);
    let csrf = g.csrf();
    for action in ["scan/stop", "sbom"] {
        let r = w.post(&format!("{APP}/{action}"), &[("_csrf", &csrf)]).await;
        w.page(&r.location).await.has("No artifact was selected.");
    }
    // With the scan queue paused, scans wait: generate SBOMs of two, scan one, stop it.
    pause_queue(&s, "IMAGE_SCAN").await;
    let r = w.post(&format!("{APP}/sbom"), &[("_csrf", &csrf), ("digest", &small), ("digest", &mid)]).await;
    assert_eq!(r.status, 303);
    w.page(&r.location).await.has("Started 2 SBOM generations.");
    for d in [&small, &mid] {
        let a = ok_json(&s, &format!("{API}/app/artifacts/{d}?with_sbom_overview=true"), &admin()).await;
        assert_eq!(a["sbom_overview"]["scan_status"], "Pending", "{a}");
    }
    let r = w.post(&format!("{APP}/scan"), &[("_csrf", &csrf), ("digest", &big)]).await;
    w.page(&r.location).await.has("Started 1 scans.");
    let r = w.post(&format!("{APP}/scan/stop"), &[("_csrf", &csrf), ("digest", &big), ("digest", &small)]).await;
    assert_eq!(r.status, 303);
    // The one with no scan running is refused by name, with the API's reason.
    let p = w.page(&r.location).await;
    p.has("Stopped 1 scans.").has("Not stopped:").has(&format!("team/app@{}", short(&small))).has("in progress");

    // The guest: no buttons, and the server refuses both.
    let mut gw = signed_in(&s, "gst", PW).await;
    let gg = gw.page(&format!("{APP}?sort=size")).await;
    gg.has(r#"aria-sort="ascending""#).lacks("Stop scanning selected").lacks("Generate SBOMs of selected");
    refused(&mut gw, &gg.csrf(), &format!("{APP}/scan/stop"), &[("digest", &big)]).await;
    refused(&mut gw, &gg.csrf(), &format!("{APP}/sbom"), &[("digest", &big)]).await;

    // Plain HTTP: no certificate to download (the API says so in Harbor's envelope).
    w.page("/projects/team").await.has("Push commands").lacks("getcert");
    expect_error(get(&s, "/api/v2.0/systeminfo/getcert", &admin()).await, 404, "NOT_FOUND").await;
}

/// Stopping SBOM generations in bulk from the artifact grid (the scan queue paused, so
/// they wait): the one generating stops, the one with none in progress is refused by name
/// with the API's reason; stopping a scan stays a button of its own. The API's
/// `POST …/scan/stop` with `{"scan_type":"sbom"}` stops the SBOM, not the scan. A guest
/// sees no button and the server (and the API) refuse.
#[tokio::test]
async fn ui_artifact_grid_bulk_stop_sbom_generation() {
    let s = Server::start_harbor();
    project_with_guest(&s, "team").await;
    let one = push_small_image_as(&s, &admin(), "team/app", "one", "1").await;
    let two = push_small_image_as(&s, &admin(), "team/app", "two", "2").await;
    let mut w = signed_in(&s, "admin", ADMIN_PASSWORD).await;
    let g = w.page(APP).await;
    g.has("Stop scanning selected artifacts").has("Stop generating SBOMs of selected artifacts");
    g.has(r#"formaction="/projects/team/repos/app/-/artifacts/sbom/stop""#);
    let csrf = g.csrf();
    let r = w.post(&format!("{APP}/sbom/stop"), &[("_csrf", &csrf)]).await;
    w.page(&r.location).await.has("No artifact was selected.");
    // A reload of the form's address goes back to the grid.
    assert_eq!(w.get(&format!("{APP}/sbom/stop")).await.status, 303);

    pause_queue(&s, "IMAGE_SCAN").await;
    let r = w.post(&format!("{APP}/sbom"), &[("_csrf", &csrf), ("digest", &one)]).await;
    w.page(&r.location).await.has("Started 1 SBOM generations.");
    let r = w.post(&format!("{APP}/scan"), &[("_csrf", &csrf), ("digest", &two)]).await;
    w.page(&r.location).await.has("Started 1 scans.");

    // The guest: no button; the UI and the API refuse.
    let mut gw = signed_in(&s, "gst", PW).await;
    let gg = gw.page(APP).await;
    gg.lacks("Stop generating SBOMs").lacks("sbom/stop");
    refused(&mut gw, &gg.csrf(), &format!("{APP}/sbom/stop"), &[("digest", &one)]).await;
    let r = call(
        &s,
        reqwest::Method::POST,
        &format!("{API}/app/artifacts/{one}/scan/stop"),
        &user("gst"),
        Some(&json!({"scan_type": "sbom"})),
    )
    .await;
    expect_error(r, 403, "FORBIDDEN").await;

    // Stop the SBOM of both: `one` stops, `two` (only a scan waits) is named with the reason.
    let r = w.post(&format!("{APP}/sbom/stop"), &[("_csrf", &csrf), ("digest", &one), ("digest", &two)]).await;
    assert_eq!(r.status, 303);
    let p = w.page(&r.location).await;
    p.has("Stopped 1 SBOM generations.").has("Not stopped:").has(&format!("team/app@{}", short(&two)));
    p.has("no SBOM generation");
    let a = ok_json(&s, &format!("{API}/app/artifacts/{one}?with_sbom_overview=true"), &admin()).await;
    assert_ne!(a["sbom_overview"]["scan_status"], "Pending", "{a}");
    // The scan of `two` still waits: stopping SBOMs left it alone.
    let a = ok_json(&s, &format!("{API}/app/artifacts/{two}?with_scan_overview=true"), &admin()).await;
    let st = a["scan_overview"].as_object().and_then(|o| o.values().next()).map(|v| v["scan_status"].clone());
    assert_eq!(st, Some(json!("Pending")), "{a}");
    // The API without a body, or with another scan type, names `scan_type`.
    let r = call(&s, reqwest::Method::POST, &format!("{API}/app/artifacts/{one}/scan/stop"), &admin(), None).await;
    assert!(expect_error(r, 400, "BAD_REQUEST").await.contains("scan_type"));
    let r = call(
        &s,
        reqwest::Method::POST,
        &format!("{API}/app/artifacts/{one}/scan/stop"),
        &admin(),
        Some(&json!({"scan_type": "malware"})),
    )
    .await;
    assert!(expect_error(r, 400, "BAD_REQUEST").await.contains("scan_type"));
}
