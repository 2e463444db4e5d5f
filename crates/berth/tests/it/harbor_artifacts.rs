//! Harbor's repository and artifact API (`/api/v2.0/…/repositories`, `…/artifacts`) against
//! the real binary in Harbor mode: images and multi-arch indexes pushed over /v2, then
//! listed, tagged, untagged and deleted through the management API, with /v2 checked to
//! agree; double-encoded names; who may do what; the error envelope. Also the registry
//! side's audit entries and cross-repository mounts from unreadable projects.

use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};

use crate::support::*;

const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";

// --- pushing over /v2 with Basic credentials ---

struct Image {
    digest: String,
    config: String,
    layer: String,
    /// Manifest plus config plus layer, as Harbor counts an image's size.
    size: u64,
    manifest_len: usize,
}

/// An image (config + one layer) for `arch`; tagged `tag`, or pushed by digest if `None`.
async fn push_image_as(s: &Server, who: &Who, repo: &str, tag: Option<&str>, arch: &str, seed: &str) -> Image {
    let config = json!({
        "architecture": arch, "os": "linux", "created": "2024-05-06T07:08:09Z",
        "config": {"Env": ["PATH=/bin"], "Labels": {"maintainer": "ops@example.com", "seed": seed}},
        "rootfs": {"type": "layers", "diff_ids": []},
    })
    .to_string();
    let layer = format!("layer {seed} {arch}");
    let cd = push_blob_as(s, who, repo, config.as_bytes()).await;
    let ld = push_blob_as(s, who, repo, layer.as_bytes()).await;
    let m = image_manifest((&cd, config.len()), &[(&ld, layer.len())]);
    let digest = sha256(m.as_bytes());
    put_manifest_as(s, who, repo, tag.unwrap_or(&digest), OCI_MANIFEST, &m).await;
    Image { digest, config: cd, layer: ld, size: (m.len() + config.len() + layer.len()) as u64, manifest_len: m.len() }
}

/// A two-platform index tagged `tag`; returns (index digest, amd64 image, arm64 image).
async fn push_index_as(s: &Server, who: &Who, repo: &str, tag: &str) -> (String, Image, Image) {
    let amd = push_image_as(s, who, repo, None, "amd64", "multi").await;
    let arm = push_image_as(s, who, repo, None, "arm64", "multi").await;
    let index = json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [
            {"mediaType": OCI_MANIFEST, "digest": amd.digest, "size": amd.manifest_len,
             "platform": {"architecture": "amd64", "os": "linux"}},
            {"mediaType": OCI_MANIFEST, "digest": arm.digest, "size": arm.manifest_len,
             "platform": {"architecture": "arm64", "os": "linux", "variant": "v8", "os.version": "6.1"}},
        ],
    })
    .to_string();
    put_manifest_as(s, who, repo, tag, OCI_INDEX, &index).await;
    (sha256(index.as_bytes()), amd, arm)
}

/// `/v2/<repo>/tags/list`, sorted; `None` if the repository is unknown.
async fn v2_tags(s: &Server, repo: &str) -> Option<Vec<String>> {
    let r = with_auth(client().get(s.url(&format!("/v2/{repo}/tags/list"))), &admin()).send().await.unwrap();
    if r.status() == 404 {
        return None;
    }
    assert_eq!(r.status(), 200);
    let v = body_json(r).await;
    let mut tags: Vec<String> =
        v["tags"].as_array().map(|a| a.iter().map(|t| t.as_str().unwrap().to_string()).collect()).unwrap_or_default();
    tags.sort();
    Some(tags)
}

async fn v2_manifest_status(s: &Server, repo: &str, reference: &str) -> u16 {
    let r = with_auth(client().get(s.url(&format!("/v2/{repo}/manifests/{reference}"))), &admin())
        .header("accept", format!("{OCI_MANIFEST}, {OCI_INDEX}"))
        .send()
        .await
        .unwrap();
    r.status().as_u16()
}

/// Audit entries of one resource type, newest first, as (operation, resource, username).
async fn audit_entries(s: &Server, resource_type: &str) -> Vec<(String, String, String)> {
    let path = format!("/api/v2.0/audit-logs?q=resource_type={resource_type}&page_size=100");
    let v = ok_json(s, &path, &admin()).await;
    v.as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let f = |k: &str| e[k].as_str().unwrap().to_string();
            (f("operation"), f("resource"), f("username"))
        })
        .collect()
}

/// Polls the audit log (written right after the response) until `want` is all there.
async fn wait_for_audit(s: &Server, resource_type: &str, want: &[(&str, &str, &str)]) {
    let mut seen = Vec::new();
    for _ in 0..50 {
        seen = audit_entries(s, resource_type).await;
        let has = |(o, r, u): &(&str, &str, &str)| seen.iter().any(|(a, b, c)| a == o && b == r && c == u);
        if want.iter().all(has) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("audit log lacks some of {want:?}; it has {seen:?}");
}

const REPOS: &str = "/api/v2.0/projects/library/repositories";

#[tokio::test]
async fn repositories_artifacts_and_tags() {
    let s = Server::start_harbor();
    let app = push_image_as(&s, &admin(), "library/app", Some("v1"), "amd64", "app").await;
    let (index, amd, arm) = push_index_as(&s, &admin(), "library/multi", "latest").await;

    // Repositories of the project: newest first, children of an index not counted.
    let r = get(&s, REPOS, &Who::Anon).await;
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "x-total-count"), "2");
    let repos = body_json(r).await;
    let names: Vec<&str> = repos.as_array().unwrap().iter().map(|r| r["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["library/multi", "library/app"]);
    let multi = &repos[0];
    assert_eq!(multi["project_id"], 1);
    assert_eq!(multi["artifact_count"], 1);
    assert_eq!(multi["pull_count"], 0);
    assert_eq!(multi["description"], "");
    assert!(multi["id"].as_i64().unwrap() > 0);
    assert!(multi["creation_time"].as_str().unwrap().ends_with('Z'));
    assert!(multi["update_time"].as_str().unwrap().ends_with('Z'));

    // Queries and paging.
    let v = ok_json(&s, &format!("{REPOS}?q=name%3D~mul"), &admin()).await;
    assert_eq!(v.as_array().unwrap().len(), 1);
    assert_eq!(v[0]["name"], "library/multi");
    let v = ok_json(&s, &format!("{REPOS}?q=name%3Dlibrary%2Fapp"), &admin()).await;
    assert_eq!(v.as_array().unwrap().len(), 1);
    let v = ok_json(&s, &format!("{REPOS}?sort=name"), &admin()).await;
    assert_eq!(v[0]["name"], "library/app");
    let r = get(&s, &format!("{REPOS}?page_size=1"), &admin()).await;
    assert_eq!(header(&r, "x-total-count"), "2");
    assert_eq!(header(&r, "link"), format!("<{REPOS}?page=2&page_size=1>; rel=\"next\""));
    assert_eq!(body_json(r).await.as_array().unwrap().len(), 1);
    let r = get(&s, &format!("{REPOS}?page=2&page_size=1"), &admin()).await;
    assert_eq!(body_json(r).await[0]["name"], "library/app");

    // All repositories: anonymous callers see the public library.
    let v = ok_json(&s, "/api/v2.0/repositories", &Who::Anon).await;
    assert_eq!(v.as_array().unwrap().len(), 2);

    // One repository; its description.
    let v = ok_json(&s, &format!("{REPOS}/app"), &Who::Anon).await;
    assert_eq!(v["name"], "library/app");
    assert_eq!(v["artifact_count"], 1);
    let r = call(&s, Method::PUT, &format!("{REPOS}/app"), &admin(), Some(&json!({"description": "the app"}))).await;
    assert_eq!(r.status(), 200);
    assert_eq!(ok_json(&s, &format!("{REPOS}/app"), &admin()).await["description"], "the app");
    let mut whole = ok_json(&s, &format!("{REPOS}/app"), &admin()).await;
    whole["description"] = json!("round trip");
    let r = call(&s, Method::PUT, &format!("{REPOS}/app"), &admin(), Some(&whole)).await;
    assert_eq!(r.status(), 200);
    assert_eq!(ok_json(&s, &format!("{REPOS}/app"), &admin()).await["description"], "round trip");

    // Artifacts of an image repository.
    let arts = format!("{REPOS}/app/artifacts");
    let r = get(&s, &arts, &Who::Anon).await;
    assert_eq!(header(&r, "x-total-count"), "1");
    let list = body_json(r).await;
    let a = &list[0];
    let repo_id = ok_json(&s, &format!("{REPOS}/app"), &admin()).await["id"].clone();
    assert_eq!(a["type"], "IMAGE");
    assert_eq!(a["media_type"], OCI_CONFIG);
    assert_eq!(a["manifest_media_type"], OCI_MANIFEST);
    assert_eq!(a["artifact_type"], OCI_CONFIG);
    assert_eq!(a["digest"], app.digest.as_str());
    assert_eq!(a["size"], app.size);
    assert_eq!(a["project_id"], 1);
    assert_eq!(a["repository_id"], repo_id);
    assert_eq!(a["repository_name"], "library/app");
    assert_eq!(a["references"], json!([]));
    assert_eq!(a["labels"], json!([]));
    assert_eq!(a["annotations"], json!({}));
    assert_eq!(a["pull_time"], "0001-01-01T00:00:00.000Z");
    assert!(a["push_time"].as_str().unwrap().ends_with('Z'));
    assert_eq!(a["extra_attrs"]["architecture"], "amd64");
    assert_eq!(a["extra_attrs"]["os"], "linux");
    assert_eq!(a["extra_attrs"]["created"], "2024-05-06T07:08:09Z");
    assert_eq!(a["extra_attrs"]["author"], "ops@example.com");
    assert_eq!(a["extra_attrs"]["config"]["Env"], json!(["PATH=/bin"]));
    let tags = a["tags"].as_array().unwrap();
    assert_eq!(tags.len(), 1);
    assert_eq!(tags[0]["name"], "v1");
    assert_eq!(tags[0]["artifact_id"], a["id"]);
    assert_eq!(tags[0]["repository_id"], repo_id);
    assert_eq!(tags[0]["immutable"], false);
    assert!(tags[0]["push_time"].as_str().unwrap().ends_with('Z'));
    let v = ok_json(&s, &format!("{arts}?with_tag=false"), &admin()).await;
    assert_eq!(v[0]["tags"], Value::Null);

    // One artifact, by tag or by digest.
    let by_tag = ok_json(&s, &format!("{arts}/v1"), &Who::Anon).await;
    let by_digest = ok_json(&s, &format!("{arts}/{}", app.digest), &Who::Anon).await;
    assert_eq!(by_tag, by_digest);
    assert_eq!(by_tag["id"], a["id"]);

    // Tags: add, list, conflicts, remove; /v2 agrees at each step.
    let r = call(&s, Method::POST, &format!("{arts}/v1/tags"), &admin(), Some(&json!({"name": "v2"}))).await;
    assert_eq!(r.status(), 201);
    assert_eq!(header(&r, "location"), format!("{arts}/v1/tags/v2"));
    assert_eq!(v2_tags(&s, "library/app").await.unwrap(), ["v1", "v2"]);
    assert_eq!(v2_manifest_status(&s, "library/app", "v2").await, 200);
    for taken in ["v2", "v1"] {
        let r = call(&s, Method::POST, &format!("{arts}/v1/tags"), &admin(), Some(&json!({"name": taken}))).await;
        let m = expect_error(r, 409, "CONFLICT").await;
        assert!(m.contains(taken), "{m}");
    }
    let r = get(&s, &format!("{arts}/{}/tags", app.digest), &Who::Anon).await;
    assert_eq!(header(&r, "x-total-count"), "2");
    let names: Vec<String> =
        body_json(r).await.as_array().unwrap().iter().map(|t| t["name"].as_str().unwrap().to_string()).collect();
    assert_eq!(names.len(), 2);
    assert!(names.contains(&"v1".into()) && names.contains(&"v2".into()));
    let r = get(&s, &format!("{arts}/v1/tags?page_size=1"), &admin()).await;
    assert_eq!(header(&r, "x-total-count"), "2");
    assert!(header(&r, "link").contains("rel=\"next\""));

    let r = call(&s, Method::DELETE, &format!("{arts}/v2/tags/v1"), &admin(), None).await;
    assert_eq!(r.status(), 200);
    assert_eq!(v2_tags(&s, "library/app").await.unwrap(), ["v2"]);
    let r = call(&s, Method::DELETE, &format!("{arts}/v2/tags/v1"), &admin(), None).await;
    expect_error(r, 404, "NOT_FOUND").await;

    // The index: one listed artifact whose children are its references.
    let marts = format!("{REPOS}/multi/artifacts");
    let r = get(&s, &marts, &admin()).await;
    assert_eq!(header(&r, "x-total-count"), "1");
    let list = body_json(r).await;
    let idx = &list[0];
    assert_eq!(idx["digest"], index.as_str());
    assert_eq!(idx["type"], "IMAGE");
    assert_eq!(idx["media_type"], OCI_INDEX);
    assert_eq!(idx["manifest_media_type"], OCI_INDEX);
    assert_eq!(idx["extra_attrs"], json!({}));
    assert_eq!(idx["tags"][0]["name"], "latest");
    let refs = idx["references"].as_array().unwrap();
    assert_eq!(refs.len(), 2);
    assert_eq!(refs[0]["parent_id"], idx["id"]);
    assert_eq!(refs[0]["child_digest"], amd.digest.as_str());
    assert_eq!(refs[0]["platform"], json!({"architecture": "amd64", "os": "linux"}));
    assert_eq!(refs[1]["child_digest"], arm.digest.as_str());
    assert_eq!(
        refs[1]["platform"],
        json!({"architecture": "arm64", "os": "linux", "variant": "v8", "'os.version'": "6.1"})
    );
    // A child can be read on its own, with its own id.
    let child = ok_json(&s, &format!("{marts}/{}", arm.digest), &admin()).await;
    assert_eq!(child["id"], refs[1]["child_id"]);
    assert_eq!(child["extra_attrs"]["architecture"], "arm64");
    assert_eq!(child["tags"], json!([]));
    assert!(idx["size"].as_u64().unwrap() > amd.size + arm.size);
    // …but not deleted while the index references it.
    let r = call(&s, Method::DELETE, &format!("{marts}/{}", arm.digest), &admin(), None).await;
    expect_error(r, 412, "VIOLATE_FOREIGN_KEY_CONSTRAINT").await;
    assert_eq!(v2_manifest_status(&s, "library/multi", &arm.digest).await, 200);

    // Deleting an artifact by tag deletes the manifest and all its tags.
    let r = call(&s, Method::POST, &format!("{arts}/v2/tags"), &admin(), Some(&json!({"name": "v3"}))).await;
    assert_eq!(r.status(), 201);
    let r = call(&s, Method::DELETE, &format!("{arts}/v3"), &admin(), None).await;
    assert_eq!(r.status(), 200);
    assert_eq!(v2_manifest_status(&s, "library/app", &app.digest).await, 404);
    assert_eq!(v2_tags(&s, "library/app").await.unwrap_or_default(), Vec::<String>::new());
    expect_error(get(&s, &format!("{arts}/{}", app.digest), &admin()).await, 404, "NOT_FOUND").await;
    let r = get(&s, &arts, &admin()).await;
    if r.status() == 200 {
        assert_eq!(header(&r, "x-total-count"), "0");
    } else {
        expect_error(r, 404, "NOT_FOUND").await;
    }

    // Deleting the index deletes its untagged children too.
    let r = call(&s, Method::DELETE, &format!("{marts}/latest"), &admin(), None).await;
    assert_eq!(r.status(), 200);
    for d in [&index, &amd.digest, &arm.digest] {
        assert_eq!(v2_manifest_status(&s, "library/multi", d).await, 404, "{d}");
    }

    // Deleting a repository removes it from both views.
    let (_, _, _) = push_index_as(&s, &admin(), "library/gone", "x").await;
    let r = call(&s, Method::DELETE, &format!("{REPOS}/gone"), &admin(), None).await;
    assert_eq!(r.status(), 200);
    expect_error(get(&s, &format!("{REPOS}/gone"), &admin()).await, 404, "NOT_FOUND").await;
    assert_eq!(v2_tags(&s, "library/gone").await, None);
    let r = call(&s, Method::DELETE, &format!("{REPOS}/gone"), &admin(), None).await;
    expect_error(r, 404, "NOT_FOUND").await;

    // The management API's changes are in the audit log.
    wait_for_audit(&s, "tag", &[("create", "library/app:v2", "admin"), ("delete", "library/app:v1", "admin")]).await;
    wait_for_audit(&s, "repository", &[("delete", "library/gone", "admin")]).await;
    let idx_res = format!("library/multi@{index}");
    let app_res = format!("library/app@{}", app.digest);
    wait_for_audit(&s, "artifact", &[("delete", &idx_res, "admin"), ("delete", &app_res, "admin")]).await;
}

#[tokio::test]
async fn double_encoded_repository_names() {
    let s = Server::start_harbor();
    let img = push_image_as(&s, &admin(), "library/team/app", Some("v1"), "amd64", "nested").await;

    let v = ok_json(&s, REPOS, &admin()).await;
    assert_eq!(v[0]["name"], "library/team/app");
    for encoded in ["team%252Fapp", "team%2Fapp"] {
        let v = ok_json(&s, &format!("{REPOS}/{encoded}"), &admin()).await;
        assert_eq!(v["name"], "library/team/app", "{encoded}");
    }
    let arts = format!("{REPOS}/team%252Fapp/artifacts");
    let list = ok_json(&s, &arts, &Who::Anon).await;
    assert_eq!(list[0]["digest"], img.digest.as_str());
    assert_eq!(list[0]["repository_name"], "library/team/app");
    let r = call(&s, Method::POST, &format!("{arts}/v1/tags"), &admin(), Some(&json!({"name": "v2"}))).await;
    assert_eq!(r.status(), 201);
    assert_eq!(v2_tags(&s, "library/team/app").await.unwrap(), ["v1", "v2"]);
    let r = call(&s, Method::PUT, &format!("{REPOS}/team%252Fapp"), &admin(), Some(&json!({"description": "d"}))).await;
    assert_eq!(r.status(), 200);
    // Only the part after the project: `library%252Fteam%252Fapp` would be library/library/…
    expect_error(get(&s, &format!("{REPOS}/library%252Fteam%252Fapp"), &admin()).await, 404, "NOT_FOUND").await;
    expect_error(get(&s, &format!("{REPOS}/team"), &admin()).await, 404, "NOT_FOUND").await;
    let r = call(&s, Method::DELETE, &format!("{REPOS}/team%252Fapp"), &admin(), None).await;
    assert_eq!(r.status(), 200);
    assert_eq!(v2_tags(&s, "library/team/app").await, None);
}

/// Who may list artifacts, add a tag, delete an artifact and delete a repository in a
/// private project, exactly as Harbor decides.
#[tokio::test]
async fn authorization_matrix() {
    let s = Server::start_harbor();
    for u in ["nonmember", "guest", "dev", "maint", "padmin"] {
        create_user(&s, u).await;
    }
    create_project(&s, &admin(), "team", false).await;
    for (u, role) in [("guest", 3), ("dev", 2), ("maint", 4), ("padmin", 1)] {
        add_member(&s, "team", u, role).await;
    }
    let who: Vec<(&str, Who)> = vec![
        ("anonymous", Who::Anon),
        ("non-member", user("nonmember")),
        ("guest", user("guest")),
        ("developer", user("dev")),
        ("maintainer", user("maint")),
        ("projectAdmin", user("padmin")),
        ("sysadmin", admin()),
    ];
    // One artifact and one repository per caller, so that each delete has its own target.
    push_image_as(&s, &admin(), "team/app", Some("v1"), "amd64", "base").await;
    for i in 0..who.len() {
        push_image_as(&s, &admin(), "team/app", Some(&format!("d{i}")), "amd64", &format!("d{i}")).await;
        push_image_as(&s, &admin(), &format!("team/r{i}"), Some("v1"), "amd64", &format!("r{i}")).await;
    }

    // Expected: anonymous, non-member, guest, developer, maintainer, projectAdmin, sysadmin.
    let list_artifacts = [401, 403, 200, 200, 200, 200, 200];
    let get_repository = [401, 403, 200, 200, 200, 200, 200];
    let get_unknown_repository = [401, 403, 404, 404, 404, 404, 404];
    let add_tag = [401, 403, 403, 201, 201, 201, 201];
    let delete_artifact = [401, 403, 403, 403, 200, 200, 200];
    let delete_repository = [401, 403, 403, 403, 200, 200, 200];
    let mut failures = Vec::new();
    let mut check = |what: &str, name: &str, got: reqwest::StatusCode, want: u16| {
        if got.as_u16() != want {
            failures.push(format!("{what} as {name}: got {got}, want {want}"));
        }
    };
    let base = "/api/v2.0/projects/team/repositories";
    for (i, (name, w)) in who.iter().enumerate() {
        let r = get(&s, &format!("{base}/app/artifacts"), w).await;
        check("list artifacts", name, r.status(), list_artifacts[i]);
        let r = get(&s, &format!("{base}/app"), w).await;
        check("get repository", name, r.status(), get_repository[i]);
        let r = get(&s, &format!("{base}/nope"), w).await;
        check("get unknown repository", name, r.status(), get_unknown_repository[i]);
        let tag = json!({"name": format!("t{i}")});
        let r = call(&s, Method::POST, &format!("{base}/app/artifacts/v1/tags"), w, Some(&tag)).await;
        check("add tag", name, r.status(), add_tag[i]);
        let r = call(&s, Method::DELETE, &format!("{base}/app/artifacts/d{i}"), w, None).await;
        check("delete artifact", name, r.status(), delete_artifact[i]);
        let r = call(&s, Method::DELETE, &format!("{base}/r{i}"), w, None).await;
        check("delete repository", name, r.status(), delete_repository[i]);
    }
    assert!(failures.is_empty(), "authorization mismatches:\n{}", failures.join("\n"));

    // Refusals are in the envelope: 401 for anonymous callers, 403 for others.
    expect_error(get(&s, &format!("{base}/app/artifacts"), &Who::Anon).await, 401, "UNAUTHORIZED").await;
    expect_error(get(&s, &format!("{base}/app/artifacts"), &user("nonmember")).await, 403, "FORBIDDEN").await;
    // A private project's repositories are not in other callers' `/repositories`.
    let names = |v: Value| -> Vec<String> {
        v.as_array().unwrap().iter().map(|r| r["name"].as_str().unwrap().to_string()).collect()
    };
    let anon = names(ok_json(&s, "/api/v2.0/repositories?page_size=100", &Who::Anon).await);
    assert!(anon.iter().all(|n| !n.starts_with("team/")), "{anon:?}");
    let outsider = names(ok_json(&s, "/api/v2.0/repositories?page_size=100", &user("nonmember")).await);
    assert!(outsider.is_empty(), "{outsider:?}");
    let guest = names(ok_json(&s, "/api/v2.0/repositories?page_size=100", &user("guest")).await);
    assert!(guest.contains(&"team/app".to_string()), "{guest:?}");
    let r = get(&s, "/api/v2.0/repositories", &admin()).await;
    assert_eq!(r.status(), 200);
    // The tags the matrix added, and the artifacts and repositories it deleted, per /v2.
    let tags = v2_tags(&s, "team/app").await.unwrap();
    for (i, allowed) in add_tag.iter().enumerate() {
        assert_eq!(tags.contains(&format!("t{i}")), *allowed == 201, "t{i}: {tags:?}");
        assert_eq!(tags.contains(&format!("d{i}")), delete_artifact[i] != 200, "d{i}: {tags:?}");
        assert_eq!(v2_tags(&s, &format!("team/r{i}")).await.is_some(), delete_repository[i] != 200, "r{i}");
    }
}

#[tokio::test]
async fn error_envelopes() {
    let s = Server::start_harbor();
    let img = push_image_as(&s, &admin(), "library/app", Some("v1"), "amd64", "e").await;
    let arts = format!("{REPOS}/app/artifacts");
    let a = admin();

    // Unknown repositories, artifacts, tags and projects.
    expect_error(get(&s, &format!("{REPOS}/nope"), &a).await, 404, "NOT_FOUND").await;
    expect_error(get(&s, &format!("{REPOS}/nope/artifacts"), &a).await, 404, "NOT_FOUND").await;
    expect_error(get(&s, &format!("{REPOS}/Bad_Name"), &a).await, 404, "NOT_FOUND").await;
    let m = expect_error(get(&s, &format!("{arts}/v9"), &a).await, 404, "NOT_FOUND").await;
    assert!(m.contains("v9"), "{m}");
    let unknown = sha256(b"nothing");
    expect_error(get(&s, &format!("{arts}/{unknown}"), &a).await, 404, "NOT_FOUND").await;
    expect_error(get(&s, &format!("{arts}/{unknown}/tags"), &a).await, 404, "NOT_FOUND").await;
    expect_error(call(&s, Method::DELETE, &format!("{arts}/{unknown}"), &a, None).await, 404, "NOT_FOUND").await;
    expect_error(call(&s, Method::DELETE, &format!("{arts}/v1/tags/nope"), &a, None).await, 404, "NOT_FOUND").await;
    let r = call(&s, Method::POST, &format!("{arts}/v9/tags"), &a, Some(&json!({"name": "x"}))).await;
    expect_error(r, 404, "NOT_FOUND").await;
    expect_error(get(&s, "/api/v2.0/projects/nope/repositories", &a).await, 404, "NOT_FOUND").await;
    expect_error(get(&s, "/api/v2.0/projects/nope/repositories", &Who::Anon).await, 401, "UNAUTHORIZED").await;

    // Bad references and tag names name what is wrong.
    for bad in ["sha256:zz", "sha256:", "-v1", "a%20b"] {
        let m = expect_error(get(&s, &format!("{arts}/{bad}"), &a).await, 400, "BAD_REQUEST").await;
        assert!(m.contains("reference"), "{bad}: {m}");
    }
    for bad in [json!({"name": ".v2"}), json!({"name": "a/b"}), json!({"name": "x".repeat(129)})] {
        let r = call(&s, Method::POST, &format!("{arts}/v1/tags"), &a, Some(&bad)).await;
        let m = expect_error(r, 400, "BAD_REQUEST").await;
        assert!(m.contains("tag"), "{bad}: {m}");
    }
    let r = call(&s, Method::POST, &format!("{arts}/v1/tags"), &a, Some(&json!({}))).await;
    assert!(expect_error(r, 400, "BAD_REQUEST").await.contains("name"));
    let r = call(&s, Method::POST, &format!("{arts}/v1/tags"), &a, Some(&json!({"name": "x", "color": 1}))).await;
    assert!(expect_error(r, 400, "BAD_REQUEST").await.contains("color"));
    let r = call(&s, Method::PUT, &format!("{REPOS}/app"), &a, Some(&json!({"description": 5}))).await;
    assert!(expect_error(r, 400, "BAD_REQUEST").await.contains("description"));
    let r = call(&s, Method::DELETE, &format!("{arts}/v1/tags/-x"), &a, None).await;
    expect_error(r, 400, "BAD_REQUEST").await;

    // Paging, queries, sorting and flags.
    for path in ["/api/v2.0/repositories", REPOS, arts.as_str(), &format!("{arts}/v1/tags")] {
        for q in ["page_size=0", "page_size=101", "page_size=ten", "page=0", "page=-1", "q=name", "q=name=~"] {
            let r = get(&s, &format!("{path}?{q}"), &a).await;
            let m = expect_error(r, 400, "BAD_REQUEST").await;
            assert!(!m.is_empty(), "{path}?{q}");
        }
        assert_eq!(get(&s, &format!("{path}?page_size=100"), &a).await.status(), 200, "{path}");
    }
    for path in ["/api/v2.0/repositories", REPOS, arts.as_str()] {
        let m = expect_error(get(&s, &format!("{path}?sort=nosuch"), &a).await, 400, "BAD_REQUEST").await;
        assert!(m.contains("nosuch"), "{m}");
    }
    let m = expect_error(get(&s, &format!("{arts}?with_tag=maybe"), &a).await, 400, "BAD_REQUEST").await;
    assert!(m.contains("with_tag"), "{m}");
    let m = expect_error(get(&s, &format!("{REPOS}?q=name%3D%5B1~2%5D"), &a).await, 400, "BAD_REQUEST").await;
    assert!(m.contains("name"), "{m}");
    // Artifact filters Harbor's portal sends.
    let v = ok_json(&s, &format!("{arts}?q=tags%3D*"), &a).await;
    assert_eq!(v[0]["digest"], img.digest.as_str());
    let v = ok_json(&s, &format!("{arts}?q=tags%3Dnil"), &a).await;
    assert_eq!(v, json!([]));
    let v = ok_json(&s, &format!("{arts}?q=tags%3D~v"), &a).await;
    assert_eq!(v.as_array().unwrap().len(), 1);

    // Methods a resource does not have.
    let r = call(&s, Method::PATCH, &format!("{REPOS}/app"), &a, None).await;
    expect_error(r, 405, "METHOD_NOT_ALLOWED").await;
    let r = call(&s, Method::PUT, &format!("{arts}/v1"), &a, None).await;
    expect_error(r, 405, "METHOD_NOT_ALLOWED").await;
}

/// A cross-repository mount from a private project the caller cannot read is not a mount:
/// the registry starts a normal upload (202), and the blob stays out of the caller's reach.
#[tokio::test]
async fn mount_from_unreadable_private_project_falls_back_to_upload() {
    let s = Server::start_harbor();
    create_user(&s, "mallory").await;
    create_project(&s, &admin(), "vault", false).await;
    create_project(&s, &admin(), "mine", false).await;
    add_member(&s, "mine", "mallory", 2).await;
    let secret = push_image_as(&s, &admin(), "vault/app", Some("v1"), "amd64", "secret").await;
    let m = user("mallory");

    let url = s.url(&format!("/v2/mine/app/blobs/uploads/?mount={}&from=vault/app", secret.layer));
    let r = with_auth(client().post(url), &m).send().await.unwrap();
    assert_eq!(r.status(), 202, "no mount without pull rights on the source");
    assert!(header(&r, "location").contains("/v2/mine/app/blobs/uploads/"), "{}", header(&r, "location"));
    assert!(header(&r, "docker-content-digest").is_empty());

    // Not linked into the caller's repository, and not readable at the source.
    let r = with_auth(client().head(s.url(&format!("/v2/mine/app/blobs/{}", secret.layer))), &m).send().await.unwrap();
    assert_eq!(r.status(), 404);
    for blob in [&secret.layer, &secret.config] {
        let r = with_auth(client().get(s.url(&format!("/v2/vault/app/blobs/{blob}"))), &m).send().await.unwrap();
        assert_eq!(r.status(), 401);
    }
    let r =
        with_auth(client().get(s.url(&format!("/v2/vault/app/manifests/{}", secret.digest))), &m).send().await.unwrap();
    assert_eq!(r.status(), 401);

    // The same mount by someone who may pull from the source does mount.
    let url = s.url(&format!("/v2/mine/copy/blobs/uploads/?mount={}&from=vault/app", secret.layer));
    let r = with_auth(client().post(url), &admin()).send().await.unwrap();
    assert_eq!(r.status(), 201);
    assert_eq!(header(&r, "docker-content-digest"), secret.layer);
}

/// Manifest push, pull and delete over /v2 are in the audit log, with the user's name.
#[tokio::test]
async fn audit_log_records_manifest_push_pull_and_delete() {
    let s = Server::start_harbor();
    create_user(&s, "dev").await;
    add_member(&s, "library", "dev", 2).await;
    let img = push_image_as(&s, &user("dev"), "library/aud", Some("v1"), "amd64", "aud").await;
    let r = with_auth(client().get(s.url("/v2/library/aud/manifests/v1")), &admin())
        .header("accept", OCI_MANIFEST)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = with_auth(client().delete(s.url(&format!("/v2/library/aud/manifests/{}", img.digest))), &admin())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let by_digest = format!("library/aud@{}", img.digest);
    wait_for_audit(
        &s,
        "artifact",
        &[("create", "library/aud:v1", "dev"), ("pull", "library/aud:v1", "admin"), ("delete", &by_digest, "admin")],
    )
    .await;
    // The project's own log has them too.
    let v = ok_json(&s, "/api/v2.0/projects/library/logs?page_size=100", &admin()).await;
    assert!(v.as_array().unwrap().iter().any(|e| e["operation"] == "pull" && e["resource"] == "library/aud:v1"), "{v}");
}

/// Pulls are counted per repository (written in batches off the request path).
#[tokio::test]
async fn pulls_are_counted() {
    let s = Server::start_harbor();
    push_image_as(&s, &admin(), "library/counted", Some("v1"), "amd64", "count").await;
    let c = client();
    for _ in 0..3 {
        let r = with_auth(c.get(s.url("/v2/library/counted/manifests/v1")), &admin())
            .header("accept", "application/vnd.oci.image.manifest.v1+json")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    // HEAD is not a pull.
    let r = with_auth(c.head(s.url("/v2/library/counted/manifests/v1")), &admin()).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let mut count = Value::Null;
    for _ in 0..50 {
        count = ok_json(&s, "/api/v2.0/projects/library/repositories/counted", &admin()).await["pull_count"].clone();
        if count == 3 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(count, 3);
}

/// Unix seconds of a Harbor time (`YYYY-MM-DDTHH:MM:SS.mmmZ`).
fn unix_of(t: &str) -> i64 {
    let n = |r: std::ops::Range<usize>| t[r].parse::<i64>().unwrap_or_else(|_| panic!("time {t:?}"));
    let (y, m, d) = (n(0..4), n(5..7), n(8..10));
    // Days from civil (H. Hinnant).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    days * 86_400 + n(11..13) * 3600 + n(14..16) * 60 + n(17..19)
}

fn unix_now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64
}

/// A tag of an artifact JSON, by name.
fn tag_json<'a>(artifact: &'a Value, name: &str) -> &'a Value {
    artifact["tags"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == name)
        .unwrap_or_else(|| panic!("tag {name} in {artifact}"))
}

/// Polls an artifact until `done` holds (pull times are written by the event flush, just
/// after the response).
async fn wait_for_artifact(s: &Server, path: &str, done: impl Fn(&Value) -> bool) -> Value {
    let mut a = Value::Null;
    for _ in 0..50 {
        a = ok_json(s, path, &admin()).await;
        if done(&a) {
            return a;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{path} never got there: {a}");
}

/// Tags have stable, distinct ids; pulls by tag and by digest set the tag's and the
/// artifact's `pull_time` (Harbor's zero time until then); tags sort by Harbor's keys.
#[tokio::test]
async fn tag_ids_and_pull_times() {
    const ZERO: &str = "0001-01-01T00:00:00.000Z";
    assert_eq!(unix_of("1970-01-02T00:00:01.000Z"), 86_401);
    assert_eq!(unix_of("2026-11-18T11:06:40.000Z"), 1_795_000_000);
    let s = Server::start_harbor();
    let repo = "library/pulled";
    let d1 = push_small_image_as(&s, &admin(), repo, "v1", "first").await;
    let d2 = push_small_image_as(&s, &admin(), repo, "w", "second").await;
    let arts = format!("{REPOS}/pulled/artifacts");
    let r = call(&s, Method::POST, &format!("{arts}/v1/tags"), &admin(), Some(&json!({"name": "v2"}))).await;
    assert_eq!(r.status(), 201);
    let (a1_path, a2_path) = (format!("{arts}/{d1}"), format!("{arts}/{d2}"));

    // Before any pull: zero times; ids non-zero and distinct, the same in every view.
    let a1 = ok_json(&s, &a1_path, &admin()).await;
    let a2 = ok_json(&s, &a2_path, &admin()).await;
    assert_eq!((a1["pull_time"].as_str(), a2["pull_time"].as_str()), (Some(ZERO), Some(ZERO)));
    let (v1, v2, w) = (tag_json(&a1, "v1").clone(), tag_json(&a1, "v2").clone(), tag_json(&a2, "w").clone());
    for t in [&v1, &v2, &w] {
        assert!(t["id"].as_i64().unwrap() > 0, "{t}");
        assert_eq!(t["pull_time"], ZERO, "{t}");
    }
    let ids = [v1["id"].as_i64().unwrap(), v2["id"].as_i64().unwrap(), w["id"].as_i64().unwrap()];
    assert!(ids[0] != ids[1] && ids[1] != ids[2] && ids[0] != ids[2], "{ids:?}");
    let listed = ok_json(&s, &format!("{a1_path}/tags"), &admin()).await;
    let listed_ids: Vec<i64> = listed.as_array().unwrap().iter().map(|t| t["id"].as_i64().unwrap()).collect();
    assert_eq!(listed_ids.len(), 2);
    assert!(listed_ids.contains(&ids[0]) && listed_ids.contains(&ids[1]));
    let list = ok_json(&s, &arts, &admin()).await;
    let from_list = list.as_array().unwrap().iter().find(|a| a["digest"] == d1.as_str()).unwrap();
    assert_eq!(tag_json(from_list, "v1")["id"], v1["id"]);

    // Tag listing sorts by name, id, push_time and pull_time; not by anything else.
    let names = |v: Value| -> Vec<String> {
        v.as_array().unwrap().iter().map(|t| t["name"].as_str().unwrap().to_string()).collect()
    };
    assert_eq!(names(ok_json(&s, &format!("{a1_path}/tags?sort=name"), &admin()).await), ["v1", "v2"]);
    assert_eq!(names(ok_json(&s, &format!("{a1_path}/tags?sort=-name"), &admin()).await), ["v2", "v1"]);
    let by_id = if ids[0] < ids[1] { ["v1", "v2"] } else { ["v2", "v1"] };
    assert_eq!(names(ok_json(&s, &format!("{a1_path}/tags?sort=id"), &admin()).await), by_id);
    let r = get(&s, &format!("{a1_path}/tags?sort=-name&page=2&page_size=1"), &admin()).await;
    assert_eq!(header(&r, "x-total-count"), "2");
    assert_eq!(names(body_json(r).await), ["v1"], "sorted, then paged");
    expect_error(get(&s, &format!("{a1_path}/tags?sort=size"), &admin()).await, 400, "BAD_REQUEST").await;

    // A pull by tag: the tag's and the artifact's pull time; the other tag's stays zero.
    let start = unix_now();
    let pull = |reference: String| {
        let url = s.url(&format!("/v2/{repo}/manifests/{reference}"));
        async move {
            let r = with_auth(client().get(url), &admin()).header("accept", OCI_MANIFEST).send().await.unwrap();
            assert_eq!(r.status(), 200);
        }
    };
    pull("v1".into()).await;
    let a1 = wait_for_artifact(&s, &a1_path, |a| tag_json(a, "v1")["pull_time"] != ZERO).await;
    let end = unix_now() + 1;
    let recent = |t: &Value| {
        let u = unix_of(t.as_str().unwrap());
        assert!(u >= start && u <= end, "{t} is not within [{start}, {end}]");
    };
    recent(&a1["pull_time"]);
    recent(&tag_json(&a1, "v1")["pull_time"]);
    assert_eq!(tag_json(&a1, "v2")["pull_time"], ZERO, "not pulled through v2");
    assert_eq!(ok_json(&s, &a2_path, &admin()).await["pull_time"], ZERO, "another artifact");
    assert_eq!(names(ok_json(&s, &format!("{a1_path}/tags?sort=-pull_time"), &admin()).await), ["v1", "v2"]);
    assert_eq!(names(ok_json(&s, &format!("{a1_path}/tags?sort=pull_time"), &admin()).await), ["v2", "v1"]);

    // A pull by digest: the artifact's only.
    pull(d2.clone()).await;
    let a2 = wait_for_artifact(&s, &a2_path, |a| a["pull_time"] != ZERO).await;
    recent(&a2["pull_time"]);
    assert_eq!(tag_json(&a2, "w")["pull_time"], ZERO, "pulled by digest, not through w");
    assert_eq!(get(&s, &format!("{arts}?sort=-pull_time"), &admin()).await.status(), 200);

    // Moving v1 to the other artifact keeps its id (and the ids stay distinct); it was
    // never pulled there. The first artifact keeps its pull time.
    push_small_image_as(&s, &admin(), repo, "v1", "second").await;
    let a2 = ok_json(&s, &a2_path, &admin()).await;
    let moved = tag_json(&a2, "v1");
    assert_eq!(moved["id"], v1["id"], "a re-tag keeps the id");
    assert_eq!(moved["pull_time"], ZERO);
    assert_ne!(moved["id"], tag_json(&a2, "w")["id"]);
    let a1_after = ok_json(&s, &a1_path, &admin()).await;
    assert_eq!(a1_after["pull_time"], a1["pull_time"]);
    assert_eq!(tag_json(&a1_after, "v2")["id"], v2["id"]);
    let tags = ok_json(&s, &format!("{a2_path}/tags?sort=id"), &admin()).await;
    let got: Vec<i64> = tags.as_array().unwrap().iter().map(|t| t["id"].as_i64().unwrap()).collect();
    let mut want = vec![ids[0], ids[2]];
    want.sort_unstable();
    assert_eq!(got, want);
}
