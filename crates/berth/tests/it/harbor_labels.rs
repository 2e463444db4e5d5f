//! Harbor labels (`/api/v2.0/labels`, `…/artifacts/{reference}/labels`): global and
//! project labels, uniqueness per scope, who may do what, bad input, attaching to and
//! detaching from artifacts, and deleting a label detaching it everywhere.

use reqwest::Method;
use serde_json::{Value, json};

use crate::support::*;

/// A 200 JSON body and its headers.
async fn json_of(s: &Server, path: &str, who: &Who) -> (Value, reqwest::header::HeaderMap) {
    let r = get(s, path, who).await;
    assert_eq!(r.status(), 200, "GET {path}");
    let h = r.headers().clone();
    (serde_json::from_str(&r.text().await.unwrap()).unwrap(), h)
}

/// Creates a label; returns its id (from `Location`).
async fn label(s: &Server, who: &Who, body: Value) -> i64 {
    let r = call(s, Method::POST, "/api/v2.0/labels", who, Some(&body)).await;
    let status = r.status();
    let loc = header(&r, "location");
    assert_eq!(status, 201, "create label {body}: {:?}", r.text().await);
    let id = loc.strip_prefix("/api/v2.0/labels/").unwrap_or_else(|| panic!("Location {loc:?}"));
    id.parse().unwrap()
}

/// The ids of the labels on an artifact, as its JSON lists them (`repo` is `project/name`).
async fn label_ids_of(s: &Server, repo: &str, digest: &str) -> Vec<i64> {
    let (project, name) = repo.split_once('/').unwrap();
    let path = format!("/api/v2.0/projects/{project}/repositories/{name}/artifacts/{digest}");
    let (art, _) = json_of(s, &path, &admin()).await;
    art["labels"].as_array().unwrap().iter().map(|l| l["id"].as_i64().unwrap()).collect()
}

/// Users, two private projects, memberships: alice maintainer of alpha, dave developer,
/// bob guest; carol nobody. Returns (alpha id, beta id).
async fn setup(s: &Server) -> (i64, i64) {
    for name in ["alice", "bob", "carol", "dave"] {
        let body = json!({"username": name, "email": format!("{name}@example.com"), "realname": name, "password": PW});
        assert_eq!(status(s, Method::POST, "/api/v2.0/users", &admin(), Some(&body)).await, 201);
    }
    for p in ["alpha", "beta"] {
        let body = json!({"project_name": p, "metadata": {"public": "false"}});
        assert_eq!(status(s, Method::POST, "/api/v2.0/projects", &admin(), Some(&body)).await, 201);
    }
    for (user, role) in [("alice", 4), ("dave", 2), ("bob", 3)] {
        let body = json!({"role_id": role, "member_user": {"username": user}});
        assert_eq!(status(s, Method::POST, "/api/v2.0/projects/alpha/members", &admin(), Some(&body)).await, 201);
    }
    let alpha = json_of(s, "/api/v2.0/projects/alpha", &admin()).await.0["project_id"].as_i64().unwrap();
    let beta = json_of(s, "/api/v2.0/projects/beta", &admin()).await.0["project_id"].as_i64().unwrap();
    (alpha, beta)
}

/// An artifact in `repo` tagged `tag`, pushed over /v2; returns its digest.
async fn artifact(s: &Server, repo: &str, tag: &str) -> String {
    push_small_image_as(s, &admin(), repo, tag, &format!("{repo}:{tag}")).await
}

#[tokio::test]
async fn global_labels_crud_and_rbac() {
    let s = Server::start_harbor();
    setup(&s).await;
    let (alice, anon) = (user("alice"), Who::Anon);

    let body = json!({"name": "prod", "description": "production", "color": "#C92100", "scope": "g"});
    let id = label(&s, &admin(), body.clone()).await;
    let (l, _) = json_of(&s, &format!("/api/v2.0/labels/{id}"), &admin()).await;
    assert_eq!(l["id"], id);
    assert_eq!(l["name"], "prod");
    assert_eq!(l["description"], "production");
    assert_eq!(l["color"], "#C92100");
    assert_eq!(l["scope"], "g");
    assert_eq!(l["project_id"], 0);
    assert_eq!(l["deleted"], false);
    assert!(l["creation_time"].as_str().unwrap().ends_with('Z'));

    // Same name in the same scope.
    expect_error(call(&s, Method::POST, "/api/v2.0/labels", &admin(), Some(&body)).await, 409, "CONFLICT").await;
    // Scope defaults to global.
    let dflt = label(&s, &admin(), json!({"name": "default-scope"})).await;
    assert_eq!(json_of(&s, &format!("/api/v2.0/labels/{dflt}"), &admin()).await.0["scope"], "g");

    // Only system administrators manage global labels or read one by id (Harbor's system
    // label permission); anyone, even anonymous, lists them (Harbor checks nothing there).
    let other = json!({"name": "qa", "scope": "g"});
    expect_error(call(&s, Method::POST, "/api/v2.0/labels", &alice, Some(&other)).await, 403, "FORBIDDEN").await;
    expect_error(call(&s, Method::POST, "/api/v2.0/labels", &anon, Some(&other)).await, 401, "UNAUTHORIZED").await;
    let path = format!("/api/v2.0/labels/{id}");
    assert_eq!(status(&s, Method::PUT, &path, &alice, Some(&json!({"color": "#000"}))).await, 403);
    assert_eq!(status(&s, Method::DELETE, &path, &alice, None).await, 403);
    assert_eq!(status(&s, Method::GET, &path, &anon, None).await, 401);
    assert_eq!(status(&s, Method::GET, &path, &alice, None).await, 403);
    assert_eq!(status(&s, Method::GET, "/api/v2.0/labels?scope=g", &anon, None).await, 200);

    let (list, h) = json_of(&s, "/api/v2.0/labels?scope=g", &user("carol")).await;
    assert_eq!(h["x-total-count"], "2");
    let names: Vec<&str> = list.as_array().unwrap().iter().map(|l| l["name"].as_str().unwrap()).collect();
    assert_eq!(names, vec!["default-scope", "prod"]);
    let (list, h) = json_of(&s, "/api/v2.0/labels?scope=g&name=pro", &user("carol")).await;
    assert_eq!((list.as_array().unwrap().len(), &h["x-total-count"]), (1, &"1".parse().unwrap()));
    assert_eq!(list[0]["id"], id);

    // Update: admin may; a rename onto a taken name is a conflict; scope cannot change.
    assert_eq!(
        status(&s, Method::PUT, &path, &admin(), Some(&json!({"color": "#000", "description": "d"}))).await,
        200
    );
    let (l, _) = json_of(&s, &path, &admin()).await;
    assert_eq!(
        (l["name"].as_str(), l["color"].as_str(), l["description"].as_str()),
        (Some("prod"), Some("#000"), Some("d"))
    );
    let r = call(&s, Method::PUT, &path, &admin(), Some(&json!({"name": "default-scope"}))).await;
    expect_error(r, 409, "CONFLICT").await;
    let r = call(&s, Method::PUT, &path, &admin(), Some(&json!({"scope": "p", "project_id": 1}))).await;
    expect_error(r, 400, "BAD_REQUEST").await;
    let r = call(&s, Method::PUT, &path, &admin(), Some(&json!({"name": ""}))).await;
    expect_error(r, 400, "BAD_REQUEST").await;

    // Delete.
    assert_eq!(status(&s, Method::DELETE, &path, &admin(), None).await, 200);
    expect_error(call(&s, Method::GET, &path, &admin(), None).await, 404, "NOT_FOUND").await;
    expect_error(call(&s, Method::DELETE, &path, &admin(), None).await, 404, "NOT_FOUND").await;
    // The name is free again.
    label(&s, &admin(), body).await;
}

#[tokio::test]
async fn project_labels_rbac_and_bad_input() {
    let s = Server::start_harbor();
    let (alpha, beta) = setup(&s).await;
    let (alice, bob, carol) = (user("alice"), user("bob"), user("carol"));

    let web = label(&s, &alice, json!({"name": "web", "scope": "p", "project_id": alpha, "color": "#48960C"})).await;
    let (l, _) = json_of(&s, &format!("/api/v2.0/labels/{web}"), &bob).await;
    assert_eq!((l["scope"].as_str(), l["project_id"].as_i64()), (Some("p"), Some(alpha)));
    // The same name may exist globally and in another project, not twice in one project.
    label(&s, &admin(), json!({"name": "web", "scope": "g"})).await;
    label(&s, &admin(), json!({"name": "web", "scope": "p", "project_id": beta})).await;
    let dup = json!({"name": "web", "scope": "p", "project_id": alpha});
    expect_error(call(&s, Method::POST, "/api/v2.0/labels", &alice, Some(&dup)).await, 409, "CONFLICT").await;

    // Guests read, maintainers manage; outsiders do neither.
    let new = json!({"name": "db", "scope": "p", "project_id": alpha});
    expect_error(call(&s, Method::POST, "/api/v2.0/labels", &bob, Some(&new)).await, 403, "FORBIDDEN").await;
    expect_error(call(&s, Method::POST, "/api/v2.0/labels", &carol, Some(&new)).await, 403, "FORBIDDEN").await;
    let in_beta = json!({"name": "db", "scope": "p", "project_id": beta});
    expect_error(call(&s, Method::POST, "/api/v2.0/labels", &alice, Some(&in_beta)).await, 403, "FORBIDDEN").await;
    let path = format!("/api/v2.0/labels/{web}");
    assert_eq!(status(&s, Method::GET, &path, &carol, None).await, 403);
    assert_eq!(status(&s, Method::PUT, &path, &bob, Some(&json!({"color": "#fff"}))).await, 403);
    assert_eq!(status(&s, Method::DELETE, &path, &bob, None).await, 403);
    assert_eq!(status(&s, Method::DELETE, &path, &carol, None).await, 403);
    let list = format!("/api/v2.0/labels?scope=p&project_id={alpha}");
    assert_eq!(status(&s, Method::GET, &list, &carol, None).await, 403);

    // Paging.
    label(&s, &alice, new).await;
    label(&s, &alice, json!({"name": "cache", "scope": "p", "project_id": alpha})).await;
    let (page1, h) = json_of(&s, &format!("{list}&page=1&page_size=2"), &bob).await;
    assert_eq!(h["x-total-count"], "3");
    assert!(h.get("link").is_some(), "Link to the next page");
    let names: Vec<&str> = page1.as_array().unwrap().iter().map(|l| l["name"].as_str().unwrap()).collect();
    assert_eq!(names, vec!["cache", "db"]);
    let (page2, _) = json_of(&s, &format!("{list}&page=2&page_size=2"), &bob).await;
    assert_eq!(page2[0]["name"], "web");
    assert_eq!(page2.as_array().unwrap().len(), 1);

    // Update and delete by a maintainer.
    assert_eq!(status(&s, Method::PUT, &path, &alice, Some(&json!({"name": "frontend"}))).await, 200);
    assert_eq!(json_of(&s, &path, &bob).await.0["name"], "frontend");
    let r = call(&s, Method::PUT, &path, &alice, Some(&json!({"name": "db"}))).await;
    expect_error(r, 409, "CONFLICT").await;
    assert_eq!(status(&s, Method::DELETE, &path, &alice, None).await, 200);
    assert_eq!(status(&s, Method::GET, &path, &alice, None).await, 404);

    // Bad input.
    for (body, what) in [
        (json!({"name": "x", "scope": "z"}), "bad scope"),
        (json!({"name": "x", "scope": "p"}), "project label without project_id"),
        (json!({"name": "x", "scope": "p", "project_id": 0}), "project_id 0"),
        (json!({"name": "", "scope": "g"}), "empty name"),
        (json!({"scope": "g"}), "no name"),
        (json!({"name": "x", "scope": "g", "bogus": 1}), "unknown field"),
        (json!({"name": 5, "scope": "g"}), "wrong type"),
    ] {
        let r = call(&s, Method::POST, "/api/v2.0/labels", &admin(), Some(&body)).await;
        assert_eq!(r.status(), 400, "{what}");
    }
    assert_eq!(status(&s, Method::GET, "/api/v2.0/labels?scope=z", &alice, None).await, 400);
    assert_eq!(status(&s, Method::GET, "/api/v2.0/labels?scope=p", &alice, None).await, 400);
    assert_eq!(status(&s, Method::GET, "/api/v2.0/labels?scope=p&project_id=x", &alice, None).await, 400);
    assert_eq!(status(&s, Method::GET, "/api/v2.0/labels/abc", &alice, None).await, 400);
    assert_eq!(status(&s, Method::GET, "/api/v2.0/labels/99999", &alice, None).await, 404);
    assert_eq!(status(&s, Method::GET, "/api/v2.0/labels/99999", &Who::Anon, None).await, 401);
    // A project that does not exist: 404 for a system administrator.
    let ghost = json!({"name": "x", "scope": "p", "project_id": 99999});
    assert_eq!(status(&s, Method::POST, "/api/v2.0/labels", &admin(), Some(&ghost)).await, 404);
    assert_eq!(status(&s, Method::POST, "/api/v2.0/labels", &alice, Some(&ghost)).await, 403);

    // The endpoints are in the published OpenAPI document.
    let (doc, _) = json_of(&s, "/api/v2.0/openapi.json", &admin()).await;
    let text = doc.to_string();
    assert!(text.contains("/labels/{id}"), "labels in the OpenAPI document");
}

#[tokio::test]
async fn artifact_labels() {
    let s = Server::start_harbor();
    let (alpha, beta) = setup(&s).await;
    let (alice, dave, bob) = (user("alice"), user("dave"), user("bob"));
    let digest = artifact(&s, "alpha/app", "v1").await;
    let other = artifact(&s, "alpha/app", "v2").await;
    let global = label(&s, &admin(), json!({"name": "prod", "scope": "g"})).await;
    let mine = label(&s, &alice, json!({"name": "web", "scope": "p", "project_id": alpha})).await;
    let theirs = label(&s, &admin(), json!({"name": "web", "scope": "p", "project_id": beta})).await;

    let by_digest = format!("/api/v2.0/projects/alpha/repositories/app/artifacts/{digest}/labels");
    let by_tag = "/api/v2.0/projects/alpha/repositories/app/artifacts/v1/labels";
    assert_eq!(status(&s, Method::POST, &by_digest, &dave, Some(&json!({"id": global}))).await, 200);
    let r = call(&s, Method::POST, by_tag, &dave, Some(&json!({"id": global}))).await;
    expect_error(r, 409, "CONFLICT").await;
    assert_eq!(status(&s, Method::POST, by_tag, &alice, Some(&json!({"id": mine}))).await, 200);
    assert_eq!(label_ids_of(&s, "alpha/app", &digest).await, vec![global, mine]);
    // The artifact's own JSON carries its labels, as Harbor's portal expects.
    let (art, _) = json_of(&s, "/api/v2.0/projects/alpha/repositories/app/artifacts/v1", &admin()).await;
    let ids: Vec<i64> = art["labels"].as_array().unwrap().iter().map(|l| l["id"].as_i64().unwrap()).collect();
    assert_eq!(ids, vec![global, mine], "{art}");
    assert_eq!(art["labels"][0]["name"], "prod");

    // Another project's label, an unknown label or artifact, a missing id.
    let r = call(&s, Method::POST, by_tag, &alice, Some(&json!({"id": theirs}))).await;
    expect_error(r, 400, "BAD_REQUEST").await;
    assert_eq!(status(&s, Method::POST, by_tag, &alice, Some(&json!({"id": 99999}))).await, 404);
    let nowhere = "/api/v2.0/projects/alpha/repositories/app/artifacts/nope/labels";
    assert_eq!(status(&s, Method::POST, nowhere, &alice, Some(&json!({"id": global}))).await, 404);
    assert_eq!(status(&s, Method::POST, by_tag, &alice, Some(&json!({}))).await, 400);
    // Guests and outsiders may not label.
    assert_eq!(status(&s, Method::POST, by_tag, &bob, Some(&json!({"id": mine}))).await, 403);
    assert_eq!(status(&s, Method::POST, by_tag, &user("carol"), Some(&json!({"id": mine}))).await, 403);
    assert_eq!(status(&s, Method::POST, by_tag, &Who::Anon, Some(&json!({"id": mine}))).await, 401);
    assert_eq!(label_ids_of(&s, "alpha/app", &digest).await, vec![global, mine], "refusals changed nothing");

    // Detach.
    let tag_v2 = "/api/v2.0/projects/alpha/repositories/app/artifacts/v2/labels";
    assert_eq!(status(&s, Method::POST, tag_v2, &alice, Some(&json!({"id": global}))).await, 200);
    assert_eq!(status(&s, Method::DELETE, &format!("{by_tag}/{mine}"), &bob, None).await, 403);
    assert_eq!(status(&s, Method::DELETE, &format!("{by_tag}/{mine}"), &dave, None).await, 200);
    assert_eq!(status(&s, Method::DELETE, &format!("{by_tag}/{mine}"), &dave, None).await, 404);
    assert_eq!(status(&s, Method::DELETE, &format!("{by_tag}/abc"), &dave, None).await, 400);
    assert_eq!(label_ids_of(&s, "alpha/app", &digest).await, vec![global]);

    // Deleting a label detaches it from every artifact.
    assert_eq!(label_ids_of(&s, "alpha/app", &other).await, vec![global]);
    assert_eq!(status(&s, Method::DELETE, &format!("/api/v2.0/labels/{global}"), &admin(), None).await, 200);
    assert!(label_ids_of(&s, "alpha/app", &digest).await.is_empty());
    assert!(label_ids_of(&s, "alpha/app", &other).await.is_empty());
    assert_eq!(status(&s, Method::POST, by_tag, &alice, Some(&json!({"id": global}))).await, 404);
}
