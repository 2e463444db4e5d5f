//! Harbor's search, statistics, quota and configuration API against the real binary in
//! Harbor mode: what each caller may see, byte counts that match what was pushed over /v2,
//! usage after a repository is deleted, and configuration changes refused by name.

use reqwest::Method;
use serde_json::{Value, json};

use crate::support::*;

/// Asserts the status and Harbor's error envelope; returns the message.
async fn expect_error(r: reqwest::Response, status: u16) -> String {
    let st = r.status().as_u16();
    let text = r.text().await.unwrap();
    assert_eq!(st, status, "status; body {text}");
    let v: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"));
    v["errors"][0]["message"].as_str().expect("message").to_string()
}

/// Pushes an image of the given config and layer bytes as admin, tagged `v1`; returns
/// the manifest's size (which counts in storage usage, as in Harbor).
async fn push_image_admin(s: &Server, repo: &str, config: &[u8], layer: &[u8]) -> u64 {
    let cd = push_blob_as(s, &admin(), repo, config).await;
    let ld = push_blob_as(s, &admin(), repo, layer).await;
    let m = image_manifest((&cd, config.len()), &[(&ld, layer.len())]);
    let size = m.len() as u64;
    let r = client()
        .put(s.url(&format!("/v2/{repo}/manifests/v1")))
        .basic_auth("admin", Some(ADMIN_PASSWORD))
        .header("content-type", OCI_MANIFEST)
        .body(m)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201, "push manifest to {repo}: {:?}", r.text().await);
    size
}

fn names(v: &Value, key: &str, field: &str) -> Vec<String> {
    let mut out: Vec<String> = v[key]
        .as_array()
        .unwrap_or_else(|| panic!("{key} is a list: {v}"))
        .iter()
        .map(|x| x[field].as_str().unwrap().to_string())
        .collect();
    out.sort();
    out
}

struct World {
    pub_id: i64,
    priv_id: i64,
    /// Bytes of distinct blobs per image part.
    a: u64,
    b: u64,
    c: u64,
    shared: u64,
    l2: u64,
    /// Manifest sizes of srchpub/app, srchpriv/app, srchpriv/tool.
    m_pub: u64,
    m_priv: u64,
    m_tool: u64,
}

/// Projects `srchpub` (public) and `srchpriv` (private, alice a developer); bob is in
/// nothing. Images: srchpub/app (config a + shared layer), srchpriv/app (config b + the
/// same shared layer), srchpriv/tool (config c + layer l2).
async fn world(s: &Server) -> World {
    create_user(s, "alice").await;
    create_user(s, "bob").await;
    let pub_id = create_project(s, &admin(), "srchpub", true).await;
    let priv_id = create_project(s, &admin(), "srchpriv", false).await;
    add_member(s, "srchpriv", "alice", 2).await;
    let (a, b, c) = (br#"{"seed":"a"}"#.as_slice(), br#"{"seed":"bb"}"#.as_slice(), br#"{"seed":"ccc"}"#.as_slice());
    let shared = b"a layer both projects share".as_slice();
    let l2 = b"the tool's own layer, a little longer".as_slice();
    let m_pub = push_image_admin(s, "srchpub/app", a, shared).await;
    let m_priv = push_image_admin(s, "srchpriv/app", b, shared).await;
    let m_tool = push_image_admin(s, "srchpriv/tool", c, l2).await;
    let n = |x: &[u8]| x.len() as u64;
    World { pub_id, priv_id, a: n(a), b: n(b), c: n(c), shared: n(shared), l2: n(l2), m_pub, m_priv, m_tool }
}

#[tokio::test]
async fn search_statistics_quotas_and_configurations() {
    let s = Server::start_harbor();
    let w = world(&s).await;
    let (alice, bob) = (user("alice"), user("bob"));

    // --- search: only what the caller may see ---
    let v = ok_json(&s, "/api/v2.0/search?q=SRCH", &Who::Anon).await;
    assert_eq!(names(&v, "project", "name"), ["srchpub"], "anonymous: public projects only; {v}");
    assert_eq!(names(&v, "repository", "repository_name"), ["srchpub/app"]);
    let r = &v["repository"][0];
    assert_eq!(r["project_name"], "srchpub");
    assert_eq!(r["project_id"], w.pub_id);
    assert_eq!(r["project_public"], true);
    assert_eq!(r["artifact_count"], 1);
    assert_eq!(r["pull_count"], 0);
    assert_eq!(v["project"][0]["project_id"], w.pub_id);
    assert_eq!(v["project"][0]["repo_count"], 1);
    assert_eq!(v["project"][0]["metadata"]["public"], "true");

    let v = ok_json(&s, "/api/v2.0/search?q=srch", &bob).await;
    assert_eq!(names(&v, "project", "name"), ["srchpub"], "an outsider sees public projects only");
    assert_eq!(names(&v, "repository", "repository_name"), ["srchpub/app"]);

    let v = ok_json(&s, "/api/v2.0/search?q=srch", &alice).await;
    assert_eq!(names(&v, "project", "name"), ["srchpriv", "srchpub"]);
    assert_eq!(names(&v, "repository", "repository_name"), ["srchpriv/app", "srchpriv/tool", "srchpub/app"]);
    let mine = v["project"].as_array().unwrap().iter().find(|p| p["name"] == "srchpriv").unwrap();
    assert_eq!(mine["current_user_role_id"], 2);
    let tool = v["repository"].as_array().unwrap().iter().find(|r| r["repository_name"] == "srchpriv/tool").unwrap();
    assert_eq!((tool["project_id"].as_i64(), &tool["project_public"]), (Some(w.priv_id), &json!(false)));

    let v = ok_json(&s, "/api/v2.0/search?q=tool", &admin()).await;
    assert_eq!(names(&v, "project", "name"), Vec::<String>::new());
    assert_eq!(names(&v, "repository", "repository_name"), ["srchpriv/tool"]);
    let v = ok_json(&s, "/api/v2.0/search?q=tool", &Who::Anon).await;
    assert_eq!(v, json!({"project": [], "repository": []}));
    expect_error(call(&s, Method::GET, "/api/v2.0/search", &alice, None).await, 400).await;

    // --- statistics ---
    expect_error(call(&s, Method::GET, "/api/v2.0/statistics", &Who::Anon, None).await, 401).await;
    let all = ok_json(&s, "/api/v2.0/projects?page_size=100", &admin()).await;
    let all = all.as_array().unwrap();
    let public_projects = all.iter().filter(|p| p["metadata"]["public"] == "true").count() as u64;
    let private_projects = all.len() as u64 - public_projects;
    let stored = w.a + w.b + w.c + w.shared + w.l2 + w.m_pub + w.m_priv + w.m_tool;
    let v = ok_json(&s, "/api/v2.0/statistics", &admin()).await;
    assert_eq!(
        v,
        json!({
            "private_project_count": private_projects, "private_repo_count": 2,
            "public_project_count": public_projects, "public_repo_count": 1,
            "total_project_count": all.len(), "total_repo_count": 3,
            "total_storage_consumption": stored,
        }),
        "the shared layer counts once; manifests count"
    );
    let v = ok_json(&s, "/api/v2.0/statistics", &alice).await;
    assert_eq!(
        v,
        json!({
            "private_project_count": 1, "private_repo_count": 2,
            "public_project_count": public_projects, "public_repo_count": 1,
            "total_project_count": public_projects + 1, "total_repo_count": 3,
        }),
        "members see their projects and public ones, and no storage"
    );
    let v = ok_json(&s, "/api/v2.0/statistics", &bob).await;
    assert_eq!((v["private_project_count"].as_u64(), v["private_repo_count"].as_u64()), (Some(0), Some(0)));
    assert_eq!(v["public_repo_count"], 1);
    assert!(v.get("total_storage_consumption").is_none());

    // --- quotas ---
    let priv_used = w.b + w.shared + w.c + w.l2 + w.m_priv + w.m_tool;
    let pub_used = w.a + w.shared + w.m_pub;
    let q = ok_json(&s, &format!("/api/v2.0/quotas/{}", w.priv_id), &admin()).await;
    assert_eq!(q["id"], w.priv_id);
    assert_eq!(q["ref"], json!({"id": w.priv_id, "name": "srchpriv", "owner_name": "admin"}));
    assert_eq!(q["hard"], json!({"storage": -1}));
    assert_eq!(q["used"], json!({"storage": priv_used}));
    assert!(q["creation_time"].is_string() && q["update_time"].is_string());
    let path = format!("/api/v2.0/quotas?reference=project&reference_id={}", w.pub_id);
    let list = ok_json(&s, &path, &admin()).await;
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert_eq!(list[0]["used"]["storage"], pub_used);
    // Berth's extension: several projects' quotas in one request (unknown ids left out).
    let path =
        format!("/api/v2.0/quotas?reference=project&reference_id={},{},999999,{}", w.pub_id, w.priv_id, w.pub_id);
    let list = ok_json(&s, &path, &admin()).await;
    let names: Vec<&str> = list.as_array().unwrap().iter().map(|q| q["ref"]["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["srchpub", "srchpriv"]);
    let r = call(&s, Method::GET, "/api/v2.0/quotas?reference_id=1,x", &admin(), None).await;
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("reference_id"));
    let many: Vec<String> = (1..=101).map(|i| i.to_string()).collect();
    let path = format!("/api/v2.0/quotas?reference_id={}", many.join(","));
    assert_eq!(status(&s, Method::GET, &path, &admin(), None).await, 400);
    let r = call(&s, Method::GET, "/api/v2.0/quotas?sort=-used.storage&page_size=100", &admin(), None).await;
    assert_eq!(r.headers()["x-total-count"].to_str().unwrap(), all.len().to_string());
    let list: Value = serde_json::from_str(&r.text().await.unwrap()).unwrap();
    assert_eq!(list[0]["ref"]["name"], "srchpriv", "largest first");
    assert_eq!(list[1]["ref"]["name"], "srchpub");

    // Only system administrators read quotas (Harbor's system `quota` permission), not even
    // a member their own project's.
    assert_eq!(status(&s, Method::GET, &format!("/api/v2.0/quotas/{}", w.priv_id), &alice, None).await, 403);
    let path = format!("/api/v2.0/quotas?reference=project&reference_id={}", w.priv_id);
    assert_eq!(status(&s, Method::GET, &path, &alice, None).await, 403);
    assert_eq!(status(&s, Method::GET, "/api/v2.0/quotas", &alice, None).await, 403);
    assert_eq!(status(&s, Method::GET, &format!("/api/v2.0/quotas/{}", w.priv_id), &bob, None).await, 403);
    assert_eq!(status(&s, Method::GET, &path, &bob, None).await, 403);
    assert_eq!(status(&s, Method::GET, &format!("/api/v2.0/quotas/{}", w.priv_id), &Who::Anon, None).await, 401);
    assert_eq!(status(&s, Method::GET, "/api/v2.0/quotas", &Who::Anon, None).await, 401);
    assert_eq!(status(&s, Method::GET, "/api/v2.0/quotas/999999", &admin(), None).await, 404);

    // Deleting a repository frees what only it linked; the shared layer stays counted.
    let r = call(&s, Method::DELETE, "/api/v2.0/projects/srchpriv/repositories/tool", &admin(), None).await;
    assert_eq!(r.status(), 200);
    let q = ok_json(&s, &format!("/api/v2.0/quotas/{}", w.priv_id), &admin()).await;
    assert_eq!(q["used"]["storage"], w.b + w.shared + w.m_priv);
    let q = ok_json(&s, &format!("/api/v2.0/quotas/{}", w.pub_id), &admin()).await;
    assert_eq!(q["used"]["storage"], pub_used);
    let v = ok_json(&s, "/api/v2.0/statistics", &admin()).await;
    assert_eq!(v["total_storage_consumption"], w.a + w.b + w.shared + w.m_pub + w.m_priv);
    assert_eq!((v["private_repo_count"].as_u64(), v["total_repo_count"].as_u64()), (Some(1), Some(2)));

    // --- configurations (settings.rs tests changes) ---
    let c = ok_json(&s, "/api/v2.0/configurations", &admin()).await;
    assert_eq!(c["auth_mode"], json!({"value": "db_auth", "editable": true}));
    assert!(c["token_expiration"]["value"].as_i64().is_some_and(|m| m > 0), "token_expiration is minutes");
    for (who, code) in [(alice.clone(), 403), (Who::Anon, 401)] {
        assert_eq!(status(&s, Method::GET, "/api/v2.0/configurations", &who, None).await, code);
        assert_eq!(status(&s, Method::PUT, "/api/v2.0/configurations", &who, Some(&json!({}))).await, code);
    }

    // All of it is in the published document.
    let doc = ok_json(&s, "/api/v2.0/openapi.json", &Who::Anon).await;
    for p in ["/search", "/statistics", "/quotas", "/quotas/{id}", "/configurations"] {
        assert!(doc["paths"].get(p).is_some(), "{p} in the OpenAPI document");
    }
}
