//! Immutable tags: rules managed through Harbor's API, enforced on a push over an existing
//! tag (even with the same digest), on tag, artifact and manifest deletes, shown with
//! `with_immutable_status`, lifted by disabling the rule; refusals name the field.

use reqwest::Method;
use serde_json::{Value, json};

use crate::support::*;

const RULES: &str = "/api/v2.0/projects/team/immutabletagrules";

fn rule(repos: &str, tags: &str) -> Value {
    json!({"disabled": false, "action": "immutable", "template": "immutable_template",
           "tag_selectors": [{"kind": "doublestar", "decoration": "matches", "pattern": tags}],
           "scope_selectors": {"repository": [{"kind": "doublestar", "decoration": "repoMatches", "pattern": repos}]}})
}

/// A manifest PUT of `team/<repo>:<tag>` as admin with fresh content; the status.
async fn push(s: &Server, repo: &str, tag: &str, seed: &str) -> reqwest::Response {
    let who = admin();
    let config = format!(r#"{{"architecture":"amd64","os":"linux","seed":"{seed}"}}"#);
    let cd = push_blob_as(s, &who, &format!("team/{repo}"), config.as_bytes()).await;
    let m = image_manifest((&cd, config.len()), &[]);
    who.apply(client().put(s.url(&format!("/v2/team/{repo}/manifests/{tag}"))))
        .header("content-type", "application/vnd.oci.image.manifest.v1+json")
        .body(m)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn immutable_tags_refuse_every_change_until_the_rule_is_disabled() {
    let s = Server::start_harbor();
    create_project(&s, &admin(), "team", false).await;
    let r = call(&s, Method::POST, RULES, &admin(), Some(&rule("app", "v*"))).await;
    assert_eq!(r.status(), 201);
    let id = location_id(&r);
    assert!(header(&r, "location").ends_with(&format!("{RULES}/{id}")));

    assert_eq!(push(&s, "app", "v1", "one").await.status(), 201, "a new tag may be pushed");
    let digest = push_small_image_as(&s, &admin(), "team/app", "dev", "dev").await;
    let r = push(&s, "app", "v1", "two").await;
    let msg = expect_error(r, 412, "PRECONDITION").await;
    assert_eq!(msg, "Failed to process request due to 'team/app:v1' configured as immutable.");
    assert_eq!(push(&s, "app", "dev", "dev2").await.status(), 201, "other tags move freely");
    assert_eq!(push(&s, "other", "v1", "a").await.status(), 201);
    assert_eq!(push(&s, "other", "v1", "b").await.status(), 201, "other repositories are not covered");

    // Deletes of the tag, of its artifact, of its manifest.
    let v1 = ok_json(&s, "/api/v2.0/projects/team/repositories/app/artifacts/v1", &admin()).await;
    let v1_digest = v1["digest"].as_str().unwrap().to_owned();
    let tag_path = "/api/v2.0/projects/team/repositories/app/artifacts/v1/tags/v1";
    expect_error(call(&s, Method::DELETE, tag_path, &admin(), None).await, 412, "PRECONDITION").await;
    let art = format!("/api/v2.0/projects/team/repositories/app/artifacts/{v1_digest}");
    expect_error(call(&s, Method::DELETE, &art, &admin(), None).await, 412, "PRECONDITION").await;
    let r = admin().apply(client().delete(s.url(&format!("/v2/team/app/manifests/{v1_digest}")))).send().await.unwrap();
    expect_error(r, 412, "PRECONDITION").await;
    assert_eq!(get(&s, &art, &admin()).await.status(), 200, "still there");
    let r = admin().apply(client().delete(s.url(&format!("/v2/team/app/manifests/{digest}")))).send().await.unwrap();
    assert_eq!(r.status(), 202, "an artifact whose tags are all mutable can go");

    // The artifact list shows which tags are immutable, when asked.
    let list =
        ok_json(&s, "/api/v2.0/projects/team/repositories/app/artifacts?with_immutable_status=true", &admin()).await;
    let flags: Vec<(String, bool)> = list
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|a| a["tags"].as_array().unwrap().iter())
        .map(|t| (t["name"].as_str().unwrap().to_owned(), t["immutable"].as_bool().unwrap()))
        .collect();
    assert!(flags.contains(&("v1".into(), true)) && flags.contains(&("dev".into(), false)), "{flags:?}");
    let plain = ok_json(&s, "/api/v2.0/projects/team/repositories/app/artifacts", &admin()).await;
    assert!(
        plain
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|a| a["tags"].as_array().unwrap().iter())
            .all(|t| t["immutable"] == false)
    );

    // Disabled, the rule protects nothing.
    let mut off = rule("app", "v*");
    off["disabled"] = json!(true);
    assert_eq!(status(&s, Method::PUT, &format!("{RULES}/{id}"), &admin(), Some(&off)).await, 200);
    let listed = ok_json(&s, RULES, &admin()).await;
    assert_eq!((listed[0]["id"].as_i64(), listed[0]["disabled"].as_bool()), (Some(id), Some(true)));
    assert_eq!(push(&s, "app", "v1", "three").await.status(), 201);
    assert_eq!(status(&s, Method::DELETE, tag_path, &admin(), None).await, 200);
    assert_eq!(status(&s, Method::DELETE, &format!("{RULES}/{id}"), &admin(), None).await, 200);
    assert!(ok_json(&s, RULES, &admin()).await.as_array().unwrap().is_empty());
    let audit = ok_json(&s, "/api/v2.0/audit-logs?page_size=50", &admin()).await;
    assert!(
        audit.as_array().unwrap().iter().any(|e| e["resource_type"] == "immutable_rule" && e["operation"] == "delete")
    );
}

#[tokio::test]
async fn skopeo_cannot_overwrite_an_immutable_tag() {
    if !tool_available("skopeo") {
        return;
    }
    let s = Server::start_harbor();
    create_project(&s, &admin(), "team", false).await;
    assert_eq!(status(&s, Method::POST, RULES, &admin(), Some(&rule("**", "release-*"))).await, 201);
    let tmp = tempfile::tempdir().unwrap();
    write_tiny_layout(&tmp.path().join("layout"), "latest");
    let src = format!("oci:{}:latest", tmp.path().join("layout").display());
    let dest = format!("docker://{}/team/tool:release-1", s.addr);
    let creds = format!("admin:{ADMIN_PASSWORD}");
    let copy = |dest: String| {
        std::process::Command::new("skopeo")
            .args(["copy", "--dest-tls-verify=false", "--dest-creds", &creds, &src, &dest])
            .output()
            .unwrap()
    };
    assert!(copy(dest.clone()).status.success(), "first push");
    let again = copy(dest);
    assert!(!again.status.success(), "the second push of an immutable tag fails");
    let err = String::from_utf8_lossy(&again.stderr);
    assert!(err.contains("configured as immutable"), "skopeo shows Harbor's message: {err}");
}

#[tokio::test]
async fn bad_rules_are_refused_naming_the_field() {
    let s = Server::start_harbor();
    create_project(&s, &admin(), "team", false).await;
    let mut bad_decoration = rule("**", "v*");
    bad_decoration["tag_selectors"][0]["decoration"] = json!("sometimes");
    let mut bad_kind = rule("**", "v*");
    bad_kind["scope_selectors"]["repository"][0]["kind"] = json!("regex");
    let mut bad_scope = rule("**", "v*");
    bad_scope["scope_selectors"] = json!({"namespace": []});
    let mut unknown = rule("**", "v*");
    unknown["colour"] = json!("red");
    let cases = [
        (rule("**", "["), "tag_selectors[0].pattern"),
        (bad_decoration, "tag_selectors[0].decoration"),
        (bad_kind, "scope_selectors.repository[0].kind"),
        (bad_scope, "scope_selectors.namespace"),
        (json!({"tag_selectors": [], "scope_selectors": {"repository": []}}), "scope_selectors.repository"),
        (unknown, "colour"),
    ];
    for (body, field) in cases {
        let msg = expect_error(call(&s, Method::POST, RULES, &admin(), Some(&body)).await, 400, "BAD_REQUEST").await;
        assert!(msg.contains(field), "{body}: {msg:?} should name {field}");
    }
    assert_eq!(status(&s, Method::POST, RULES, &admin(), Some(&rule("**", "v*"))).await, 201);
    expect_error(call(&s, Method::POST, RULES, &admin(), Some(&rule("**", "v*"))).await, 409, "CONFLICT").await;
    for i in 1..15 {
        assert_eq!(status(&s, Method::POST, RULES, &admin(), Some(&rule("**", &format!("r{i}-*")))).await, 201);
    }
    let msg =
        expect_error(call(&s, Method::POST, RULES, &admin(), Some(&rule("**", "more"))).await, 400, "BAD_REQUEST")
            .await;
    assert!(msg.contains("15"), "{msg}");
    expect_error(
        call(&s, Method::PUT, &format!("{RULES}/999999"), &admin(), Some(&rule("**", "x"))).await,
        404,
        "NOT_FOUND",
    )
    .await;
    let msg =
        expect_error(call(&s, Method::DELETE, &format!("{RULES}/abc"), &admin(), None).await, 400, "BAD_REQUEST").await;
    assert!(msg.contains("immutable_rule_id"));
}
