//! Harbor's management API (`/api/v2.0`) against the real binary in Harbor mode: the
//! conventions (paging headers, Location, error envelope, request ids, CSRF), every
//! endpoint's happy path, every class of bad input, and who may do what.

use reqwest::Method;
use serde_json::{Value, json};

use crate::support::*;

async fn raw_body(s: &Server, method: Method, path: &str, who: &Who, body: &str) -> reqwest::Response {
    let mut r = client().request(method, s.url(path)).header("content-type", "application/json").body(body.to_string());
    if let Who::Basic(u, p) = who {
        r = r.basic_auth(u, Some(p));
    }
    r.send().await.unwrap()
}

/// A project robot with repository pull and push; returns (id, name, secret).
async fn create_robot(s: &Server, who: &Who, project: &str, name: &str) -> reqwest::Response {
    let body = json!({
        "name": name, "description": "ci", "level": "project", "duration": -1,
        "permissions": [{"kind": "project", "namespace": project, "access": [
            {"resource": "repository", "action": "pull"}, {"resource": "repository", "action": "push"}]}],
    });
    call(s, Method::POST, "/api/v2.0/robots", who, Some(&body)).await
}

/// Pushes a one-layer image with Basic credentials.
async fn push_as(s: &Server, who: &Who, repo: &str) {
    let Who::Basic(u, p) = who else { panic!("basic only") };
    let c = client();
    let put = |bytes: Vec<u8>| {
        let d = sha256(&bytes);
        let req =
            c.post(s.url(&format!("/v2/{repo}/blobs/uploads/?digest={d}"))).basic_auth(u, Some(p)).body(bytes.clone());
        (d, bytes.len(), req)
    };
    let config = br#"{"architecture":"amd64","os":"linux"}"#.to_vec();
    let (cd, cn, r1) = put(config);
    let (ld, ln, r2) = put(b"a layer".to_vec());
    assert_eq!(r1.send().await.unwrap().status(), 201);
    assert_eq!(r2.send().await.unwrap().status(), 201);
    let m = image_manifest((&cd, cn), &[(&ld, ln)]);
    let r = c
        .put(s.url(&format!("/v2/{repo}/manifests/v1")))
        .basic_auth(u, Some(p))
        .header("content-type", "application/vnd.oci.image.manifest.v1+json")
        .body(m)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
}

async fn login(s: &Server, user: &str, pw: &str) -> reqwest::Response {
    post_login(&client(), s, user, pw).await
}

fn sid_of(r: &reqwest::Response) -> String {
    let c = header(r, "set-cookie");
    let v = c.strip_prefix("sid=").unwrap_or_else(|| panic!("set-cookie {c:?}"));
    v.split(';').next().unwrap().to_string()
}

#[tokio::test]
async fn system_endpoints_and_conventions() {
    let s = Server::start_harbor();
    let r = get(&s, "/api/v2.0/ping", &Who::Anon).await;
    assert_eq!(r.status(), 200);
    assert!(header(&r, "content-type").starts_with("text/plain"));
    assert_eq!(header(&r, "x-harbor-csrf-token").len(), 64, "every API response carries a CSRF token");
    assert_eq!(r.text().await.unwrap(), "Pong");

    let r = get(&s, "/api/version", &Who::Anon).await;
    assert_eq!(body_json(r).await, json!({"version": "v2.0"}));

    let r = get(&s, "/api/v2.0/health", &Who::Anon).await;
    assert_eq!(r.status(), 200);
    let h = body_json(r).await;
    assert_eq!(h["status"], "healthy");
    let names: Vec<&str> = h["components"].as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["core", "database", "storage", "jobservice"]);
    assert!(h["components"].as_array().unwrap().iter().all(|c| c["status"] == "healthy"));

    // systeminfo: anonymous callers get the login settings only.
    let anon = body_json(get(&s, "/api/v2.0/systeminfo", &Who::Anon).await).await;
    assert_eq!(anon["auth_mode"], "db_auth");
    assert_eq!(anon["self_registration"], false);
    for hidden in ["harbor_version", "external_url", "registry_url", "current_time", "read_only"] {
        assert!(anon.get(hidden).is_none(), "{hidden} is for logged-in callers");
    }
    let authed = body_json(get(&s, "/api/v2.0/systeminfo", &admin()).await).await;
    assert!(authed["harbor_version"].as_str().unwrap().starts_with("v2."));
    assert_eq!(authed["registry_url"], s.addr.as_str());
    assert_eq!(authed["external_url"], format!("http://{}", s.addr));
    assert!(authed["current_time"].as_str().unwrap().ends_with('Z'));

    // X-Request-Id: echoed, or generated.
    let r = client().get(s.url("/api/v2.0/ping")).header("x-request-id", "req-42").send().await.unwrap();
    assert_eq!(header(&r, "x-request-id"), "req-42");
    let r = get(&s, "/api/v2.0/projects", &Who::Anon).await;
    assert_eq!(header(&r, "x-request-id").len(), 36);

    // Unknown endpoints and methods, in the envelope.
    expect_error(get(&s, "/api/v2.0/nonsense", &admin()).await, 404, "NOT_FOUND").await;
    expect_error(call(&s, Method::DELETE, "/api/v2.0/ping", &admin(), None).await, 405, "METHOD_NOT_ALLOWED").await;

    // Wrong credentials are a 401, not a silent anonymous downgrade; bearer tokens are for /v2.
    let bad = Who::Basic("admin".into(), "wrong".into());
    expect_error(get(&s, "/api/v2.0/projects", &bad).await, 401, "UNAUTHORIZED").await;
    let r = client().get(s.url("/api/v2.0/projects")).bearer_auth("x.y.z").send().await.unwrap();
    expect_error(r, 401, "UNAUTHORIZED").await;
}

#[tokio::test]
async fn users() {
    let s = Server::start_harbor();
    let alice = create_user(&s, "alice").await;
    let bob = create_user(&s, "bob").await;

    let u = body_json(get(&s, &format!("/api/v2.0/users/{alice}"), &admin()).await).await;
    assert_eq!(u["user_id"], alice);
    assert_eq!(u["username"], "alice");
    assert_eq!(u["email"], "alice@example.com");
    assert_eq!(u["realname"], "alice");
    assert_eq!(u["sysadmin_flag"], false);
    assert!(u["creation_time"].as_str().unwrap().ends_with('Z'));
    assert!(u["update_time"].is_string());
    for secret in ["password", "salt", "password_version"] {
        assert!(u.get(secret).is_none(), "{secret} must never be returned");
    }

    // Paging: headers and links.
    let r = get(&s, "/api/v2.0/users?page_size=1&page=2", &admin()).await;
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "x-total-count"), "3");
    assert_eq!(
        header(&r, "link"),
        "</api/v2.0/users?page=1&page_size=1>; rel=\"prev\" , </api/v2.0/users?page=3&page_size=1>; rel=\"next\""
    );
    let page = body_json(r).await;
    assert_eq!(page.as_array().unwrap().len(), 1);
    assert_eq!(page[0]["username"], "alice");
    // q= exact and fuzzy, sort.
    let r = body_json(get(&s, "/api/v2.0/users?q=username%3D~li", &admin()).await).await;
    assert_eq!(r.as_array().unwrap().len(), 1);
    assert_eq!(r[0]["username"], "alice");
    let r = body_json(get(&s, "/api/v2.0/users?q=username=bob", &admin()).await).await;
    assert_eq!(r[0]["user_id"], bob);
    let r = body_json(get(&s, "/api/v2.0/users?q=username=bo", &admin()).await).await;
    assert_eq!(r, json!([]));
    let r = body_json(get(&s, "/api/v2.0/users?sort=-username", &admin()).await).await;
    let names: Vec<&str> = r.as_array().unwrap().iter().map(|u| u["username"].as_str().unwrap()).collect();
    assert_eq!(names, ["bob", "alice", "admin"]);

    // Everyone may search (to add members) and read themselves.
    let r = get(&s, "/api/v2.0/users/search?username=bo", &user("alice")).await;
    assert_eq!(header(&r, "x-total-count"), "1");
    assert_eq!(body_json(r).await, json!([{"user_id": bob, "username": "bob"}]));
    expect_error(get(&s, "/api/v2.0/users/search", &user("alice")).await, 400, "BAD_REQUEST").await;
    let me = body_json(get(&s, "/api/v2.0/users/current", &user("alice")).await).await;
    assert_eq!(me["user_id"], alice);
    expect_error(get(&s, "/api/v2.0/users/current", &Who::Anon).await, 401, "UNAUTHORIZED").await;
    assert_eq!(get(&s, &format!("/api/v2.0/users/{alice}"), &user("alice")).await.status(), 200);
    expect_error(get(&s, &format!("/api/v2.0/users/{bob}"), &user("alice")).await, 403, "FORBIDDEN").await;

    // Profile.
    let p = json!({"email": "alice@corp.example.com", "realname": "Alice A", "comment": "hi"});
    let r = call(&s, Method::PUT, &format!("/api/v2.0/users/{alice}"), &user("alice"), Some(&p)).await;
    assert_eq!(r.status(), 200);
    let u = body_json(get(&s, "/api/v2.0/users/current", &user("alice")).await).await;
    assert_eq!((u["email"].as_str(), u["realname"].as_str()), (Some("alice@corp.example.com"), Some("Alice A")));
    let taken = json!({"email": "bob@example.com"});
    let r = call(&s, Method::PUT, &format!("/api/v2.0/users/{alice}"), &user("alice"), Some(&taken)).await;
    expect_error(r, 409, "CONFLICT").await;
    let r = call(&s, Method::PUT, &format!("/api/v2.0/users/{bob}"), &user("alice"), Some(&p)).await;
    expect_error(r, 403, "FORBIDDEN").await;

    // Password: own change needs the old one; policy errors name the rule.
    let path = format!("/api/v2.0/users/{alice}/password");
    let r = call(&s, Method::PUT, &path, &user("alice"), Some(&json!({"new_password": "Newpassw0rd"}))).await;
    assert!(expect_error(r, 403, "FORBIDDEN").await.contains("old_password"));
    let wrong = json!({"old_password": "Wrong0ne!", "new_password": "Newpassw0rd"});
    expect_error(call(&s, Method::PUT, &path, &user("alice"), Some(&wrong)).await, 403, "FORBIDDEN").await;
    let weak = json!({"old_password": PW, "new_password": "newpassw0rd"});
    let m = expect_error(call(&s, Method::PUT, &path, &user("alice"), Some(&weak)).await, 400, "BAD_REQUEST").await;
    assert!(m.contains("uppercase"), "{m}");
    let short = json!({"old_password": PW, "new_password": "Ab1"});
    let m = expect_error(call(&s, Method::PUT, &path, &user("alice"), Some(&short)).await, 400, "BAD_REQUEST").await;
    assert!(m.contains("at least 8"), "{m}");
    let same = json!({"old_password": PW, "new_password": PW});
    expect_error(call(&s, Method::PUT, &path, &user("alice"), Some(&same)).await, 400, "BAD_REQUEST").await;
    let good = json!({"old_password": PW, "new_password": "Newpassw0rd"});
    assert_eq!(call(&s, Method::PUT, &path, &user("alice"), Some(&good)).await.status(), 200);
    let new_alice = Who::Basic("alice".into(), "Newpassw0rd".into());
    assert_eq!(get(&s, "/api/v2.0/users/current", &new_alice).await.status(), 200);
    expect_error(get(&s, "/api/v2.0/users/current", &user("alice")).await, 401, "UNAUTHORIZED").await;
    // An administrator sets someone else's without the old one.
    let reset = json!({"new_password": PW});
    assert_eq!(call(&s, Method::PUT, &path, &admin(), Some(&reset)).await.status(), 200);
    assert_eq!(get(&s, "/api/v2.0/users/current", &user("alice")).await.status(), 200);

    // Sysadmin flag.
    let sysadmin = format!("/api/v2.0/users/{bob}/sysadmin");
    let on = json!({"sysadmin_flag": true});
    expect_error(call(&s, Method::PUT, &sysadmin, &user("alice"), Some(&on)).await, 403, "FORBIDDEN").await;
    expect_error(get(&s, "/api/v2.0/users", &user("bob")).await, 403, "FORBIDDEN").await;
    assert_eq!(call(&s, Method::PUT, &sysadmin, &admin(), Some(&on)).await.status(), 200);
    assert_eq!(get(&s, "/api/v2.0/users", &user("bob")).await.status(), 200);
    let u = body_json(get(&s, &format!("/api/v2.0/users/{bob}"), &admin()).await).await;
    assert_eq!(u["sysadmin_flag"], true);

    // Conflicts, unknown and malformed ids, protected users.
    let dup = json!({"username": "alice", "email": "other@example.com", "realname": "x", "password": PW});
    let m = expect_error(call(&s, Method::POST, "/api/v2.0/users", &admin(), Some(&dup)).await, 409, "CONFLICT").await;
    assert!(m.contains("username"), "{m}");
    let dup = json!({"username": "carol", "email": "bob@example.com", "realname": "x", "password": PW});
    let m = expect_error(call(&s, Method::POST, "/api/v2.0/users", &admin(), Some(&dup)).await, 409, "CONFLICT").await;
    assert!(m.contains("email"), "{m}");
    expect_error(get(&s, "/api/v2.0/users/9999", &admin()).await, 404, "NOT_FOUND").await;
    expect_error(get(&s, "/api/v2.0/users/abc", &admin()).await, 400, "BAD_REQUEST").await;
    expect_error(call(&s, Method::DELETE, "/api/v2.0/users/1", &admin(), None).await, 403, "FORBIDDEN").await;
    let new = json!({"username": "dave", "email": "dave@example.com", "realname": "d", "password": PW});
    expect_error(call(&s, Method::POST, "/api/v2.0/users", &user("alice"), Some(&new)).await, 403, "FORBIDDEN").await;
    expect_error(call(&s, Method::POST, "/api/v2.0/users", &Who::Anon, Some(&new)).await, 401, "UNAUTHORIZED").await;

    // Delete.
    let r = call(&s, Method::DELETE, &format!("/api/v2.0/users/{alice}"), &admin(), None).await;
    assert_eq!(r.status(), 200);
    expect_error(get(&s, &format!("/api/v2.0/users/{alice}"), &admin()).await, 404, "NOT_FOUND").await;
    expect_error(call(&s, Method::DELETE, "/api/v2.0/users/9999", &admin(), None).await, 404, "NOT_FOUND").await;

    // Every change is in the audit log, newest first.
    let log = body_json(get(&s, "/api/v2.0/audit-logs?q=resource_type=user&page_size=100", &admin()).await).await;
    let ops: Vec<(String, String)> = log
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["operation"].as_str().unwrap().into(), e["resource"].as_str().unwrap().into()))
        .collect();
    assert_eq!(ops.first().unwrap(), &("delete".to_string(), "alice".to_string()));
    assert!(ops.contains(&("create".into(), "bob".into())));
    assert!(ops.iter().filter(|(o, r)| o == "update" && r == "alice").count() >= 3);
    assert!(log[0]["op_time"].as_str().unwrap().ends_with('Z'));
    assert_eq!(log[0]["username"], "admin");
}

#[tokio::test]
async fn projects_and_metadata() {
    let s = Server::start_harbor();
    create_user(&s, "alice").await;

    let body = json!({"project_name": "team", "metadata": {"public": "false"}});
    let r = call(&s, Method::POST, "/api/v2.0/projects", &user("alice"), Some(&body)).await;
    assert_eq!(r.status(), 201);
    let team = location_id(&r);
    assert_eq!(header(&r, "location"), format!("/api/v2.0/projects/{team}"));
    let r = client()
        .post(s.url("/api/v2.0/projects"))
        .basic_auth("alice", Some(PW))
        .header("x-resource-name-in-location", "true")
        .body(json!({"project_name": "pub", "public": true}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(header(&r, "location"), "/api/v2.0/projects/pub");
    let digits = create_project(&s, &admin(), "123", false).await;

    // Conflicts and bad names; HEAD.
    expect_error(call(&s, Method::POST, "/api/v2.0/projects", &admin(), Some(&body)).await, 409, "CONFLICT").await;
    let bad = json!({"project_name": "Team!"});
    let m = expect_error(call(&s, Method::POST, "/api/v2.0/projects", &admin(), Some(&bad)).await, 400, "BAD_REQUEST")
        .await;
    assert!(m.contains("lower-case"), "{m}");
    let anon_create =
        call(&s, Method::POST, "/api/v2.0/projects", &Who::Anon, Some(&json!({"project_name": "x"}))).await;
    expect_error(anon_create, 401, "UNAUTHORIZED").await;
    assert_eq!(call(&s, Method::HEAD, "/api/v2.0/projects?project_name=team", &admin(), None).await.status(), 200);
    assert_eq!(call(&s, Method::HEAD, "/api/v2.0/projects?project_name=none", &admin(), None).await.status(), 404);
    assert_eq!(call(&s, Method::HEAD, "/api/v2.0/projects?project_name=team", &Who::Anon, None).await.status(), 401);

    // Project JSON, by id and by name; a numeric name needs X-Is-Resource-Name.
    let p = body_json(get(&s, &format!("/api/v2.0/projects/{team}"), &user("alice")).await).await;
    assert_eq!(p["project_id"], team);
    assert_eq!(p["name"], "team");
    assert_eq!(p["owner_name"], "alice");
    assert_eq!(p["repo_count"], 0);
    assert_eq!(p["metadata"], json!({"public": "false"}));
    assert_eq!(p["current_user_role_id"], 1);
    assert_eq!(p["current_user_role_ids"], json!([1]));
    assert!(p["creation_time"].as_str().unwrap().ends_with('Z'));
    assert_eq!(body_json(get(&s, "/api/v2.0/projects/team", &user("alice")).await).await["project_id"], team);
    let r = client()
        .get(s.url("/api/v2.0/projects/123"))
        .basic_auth("admin", Some(ADMIN_PASSWORD))
        .header("x-is-resource-name", "true")
        .send()
        .await
        .unwrap();
    assert_eq!(body_json(r).await["project_id"], digits);
    expect_error(get(&s, "/api/v2.0/projects/123", &admin()).await, 404, "NOT_FOUND").await;

    // Listing: anonymous callers see public projects; members their own too; paging.
    let names = |v: &Value| -> Vec<String> {
        v.as_array().unwrap().iter().map(|p| p["name"].as_str().unwrap().to_string()).collect()
    };
    let r = get(&s, "/api/v2.0/projects", &Who::Anon).await;
    assert_eq!(header(&r, "x-total-count"), "2");
    assert_eq!(names(&body_json(r).await), ["library", "pub"]);
    assert_eq!(
        names(&body_json(get(&s, "/api/v2.0/projects", &user("alice")).await).await),
        ["library", "pub", "team"]
    );
    assert_eq!(
        names(&body_json(get(&s, "/api/v2.0/projects", &admin()).await).await),
        ["123", "library", "pub", "team"]
    );
    let r = get(&s, "/api/v2.0/projects?page=2&page_size=2", &admin()).await;
    assert_eq!(header(&r, "x-total-count"), "4");
    assert_eq!(header(&r, "link"), "</api/v2.0/projects?page=1&page_size=2>; rel=\"prev\"");
    assert_eq!(names(&body_json(r).await), ["pub", "team"]);
    let r = get(&s, "/api/v2.0/projects?q=name%3D~ea", &admin()).await;
    assert_eq!(names(&body_json(r).await), ["team"]);
    let r = get(&s, "/api/v2.0/projects?q=name=pub", &admin()).await;
    assert_eq!(names(&body_json(r).await), ["pub"]);
    let r = get(&s, "/api/v2.0/projects?q=public=true&sort=-name", &admin()).await;
    assert_eq!(names(&body_json(r).await), ["pub", "library"]);
    let r = get(&s, "/api/v2.0/projects?public=false", &user("alice")).await;
    assert_eq!(names(&body_json(r).await), ["team"]);
    let r = get(&s, "/api/v2.0/projects?public=false", &Who::Anon).await;
    assert_eq!(header(&r, "x-total-count"), "0");
    let r = get(&s, "/api/v2.0/projects?sort=-creation_time&page_size=1", &admin()).await;
    assert_eq!(names(&body_json(r).await), ["123"]);
    let r = get(&s, "/api/v2.0/projects?owner=alice", &admin()).await;
    assert_eq!(names(&body_json(r).await), ["pub", "team"]);

    // Update: metadata is validated and normalized.
    let up = json!({"metadata": {"public": "TRUE", "auto_scan": "1", "severity": "High"}});
    let r = call(&s, Method::PUT, "/api/v2.0/projects/team", &user("alice"), Some(&up)).await;
    assert_eq!(r.status(), 200);
    let p = body_json(get(&s, "/api/v2.0/projects/team", &Who::Anon).await).await;
    assert_eq!(p["metadata"], json!({"public": "true", "auto_scan": "true", "severity": "high"}));
    let bad = json!({"metadata": {"public": "maybe"}});
    let r = call(&s, Method::PUT, "/api/v2.0/projects/team", &admin(), Some(&bad)).await;
    assert!(expect_error(r, 400, "BAD_REQUEST").await.contains("public"));
    let bad = json!({"metadata": {"colour": "red"}});
    expect_error(call(&s, Method::PUT, "/api/v2.0/projects/team", &admin(), Some(&bad)).await, 400, "BAD_REQUEST")
        .await;

    // Metadata API.
    let md = "/api/v2.0/projects/team/metadatas";
    let all = body_json(get(&s, &format!("{md}/"), &user("alice")).await).await;
    assert_eq!(all["severity"], "high");
    let r = call(&s, Method::POST, &format!("{md}/"), &admin(), Some(&json!({"prevent_vul": "true"}))).await;
    assert_eq!(r.status(), 200);
    let r = call(&s, Method::POST, &format!("{md}/"), &admin(), Some(&json!({"prevent_vul": "false"}))).await;
    expect_error(r, 409, "CONFLICT").await;
    let two = json!({"a": "1", "b": "2"});
    expect_error(call(&s, Method::POST, &format!("{md}/"), &admin(), Some(&two)).await, 400, "BAD_REQUEST").await;
    assert_eq!(body_json(get(&s, &format!("{md}/prevent_vul"), &admin()).await).await, json!({"prevent_vul": "true"}));
    expect_error(get(&s, &format!("{md}/enable_content_trust"), &admin()).await, 404, "NOT_FOUND").await;
    let r = call(&s, Method::PUT, &format!("{md}/prevent_vul"), &admin(), Some(&json!({"prevent_vul": "f"}))).await;
    assert_eq!(r.status(), 200);
    assert_eq!(body_json(get(&s, &format!("{md}/prevent_vul"), &admin()).await).await["prevent_vul"], "false");
    let r = call(
        &s,
        Method::PUT,
        &format!("{md}/auto_sbom_generation"),
        &admin(),
        Some(&json!({"auto_sbom_generation": "true"})),
    )
    .await;
    expect_error(r, 404, "NOT_FOUND").await;
    assert_eq!(call(&s, Method::DELETE, &format!("{md}/prevent_vul"), &admin(), None).await.status(), 200);
    expect_error(call(&s, Method::DELETE, &format!("{md}/prevent_vul"), &admin(), None).await, 404, "NOT_FOUND").await;

    // Summary.
    let sum = body_json(get(&s, "/api/v2.0/projects/team/summary", &user("alice")).await).await;
    assert_eq!(sum["repo_count"], 0);
    assert_eq!(sum["project_admin_count"], 1);
    assert_eq!(sum["developer_count"], 0);
    assert_eq!(sum["quota"], json!({"hard": {"storage": -1}, "used": {"storage": 0}}));
    let sum = body_json(get(&s, "/api/v2.0/projects/team/summary", &Who::Anon).await).await;
    assert!(sum.get("project_admin_count").is_none(), "member counts are for those who may list members");
    assert!(sum.get("quota").is_none(), "the quota is for members");
    let ok = json!({"deletable": true});
    assert_eq!(body_json(get(&s, "/api/v2.0/projects/team/_deletable", &user("alice")).await).await, ok);

    // Delete: refused while repositories exist (412), then done.
    push_as(&s, &admin(), "team/app").await;
    let p = body_json(get(&s, "/api/v2.0/projects/team", &admin()).await).await;
    assert_eq!(p["repo_count"], 1);
    let sum = body_json(get(&s, "/api/v2.0/projects/team/summary", &user("alice")).await).await;
    assert!(sum["quota"]["used"]["storage"].as_i64().unwrap() > 0, "{sum}");
    let d = body_json(get(&s, "/api/v2.0/projects/team/_deletable", &user("alice")).await).await;
    assert_eq!(d, json!({"deletable": false, "message": "the project contains repositories, can not be deleted"}));
    let r = call(&s, Method::DELETE, "/api/v2.0/projects/team", &user("alice"), None).await;
    expect_error(r, 412, "PRECONDITION").await;
    assert_eq!(call(&s, Method::DELETE, "/api/v2.0/projects/pub", &user("alice"), None).await.status(), 200);
    expect_error(get(&s, "/api/v2.0/projects/pub", &admin()).await, 404, "NOT_FOUND").await;

    // Project logs: the project's own changes.
    let logs = body_json(get(&s, "/api/v2.0/projects/team/logs?q=resource_type=project", &user("alice")).await).await;
    let ops: Vec<&str> = logs.as_array().unwrap().iter().map(|e| e["operation"].as_str().unwrap()).collect();
    assert!(ops.contains(&"create") && ops.contains(&"update"), "{logs}");
    assert!(logs.as_array().unwrap().iter().all(|e| e["resource"] == "team"));
    let all = body_json(get(&s, "/api/v2.0/projects/team/logs", &user("alice")).await).await;
    assert!(
        all.as_array()
            .unwrap()
            .iter()
            .all(|e| e["resource"] == "team" || e["resource"].as_str().unwrap().starts_with("team/"))
    );
    let all = body_json(get(&s, "/api/v2.0/audit-logs?q=operation=delete", &admin()).await).await;
    assert_eq!(all[0]["resource"], "pub");
    assert_eq!(all[0]["resource_type"], "project");

    // Harbor's audit log queries: fuzzy, one-of, time ranges; filtered by the store, so the
    // total counts only matches.
    let total = |r: &reqwest::Response| header(r, "x-total-count").parse::<u64>().unwrap();
    let logs = |q: &str| {
        let (s, q) = (&s, q.to_string());
        async move {
            let r = get(s, &format!("/api/v2.0/audit-logs?page_size=100&q={q}"), &admin()).await;
            assert_eq!(r.status(), 200, "{q}");
            let n = total(&r);
            let v = body_json(r).await;
            assert_eq!(v.as_array().unwrap().len() as u64, n.min(100));
            v.as_array().unwrap().clone()
        }
    };
    let all = logs("").await;
    let fuzzy = logs("resource=~EA").await;
    assert!(!fuzzy.is_empty() && fuzzy.iter().all(|e| e["resource"].as_str().unwrap().contains("ea")), "{fuzzy:?}");
    assert!(fuzzy.len() < all.len());
    let either = logs("operation=%7Bdelete%20create%7D,resource_type=project").await;
    assert!(either.iter().all(|e| e["operation"] == "delete" || e["operation"] == "create"));
    assert!(either.iter().any(|e| e["operation"] == "delete") && either.iter().any(|e| e["operation"] == "create"));
    assert_eq!(logs("resource=pub,operation=delete,username=alice").await.len(), 1);
    assert_eq!(logs("op_time=[2000-01-01%2000:00:00~2100-01-01T00:00:00]").await.len(), all.len());
    assert_eq!(logs("op_time=[~2000-01-01%2000:00:00]").await.len(), 0);
    let newest = all[0]["op_time"].as_str().unwrap()[..19].to_string();
    assert!(!logs(&format!("op_time=[{newest}~]")).await.is_empty());
    assert_eq!(logs("op_time=[4102444800~]").await.len(), 0, "unix seconds work too");
    let mine = get(&s, "/api/v2.0/projects/team/logs?q=resource=~team/,operation=create", &user("alice")).await;
    assert_eq!(mine.status(), 200);
    assert!(
        body_json(mine).await.as_array().unwrap().iter().all(|e| e["resource"].as_str().unwrap().starts_with("team/"))
    );
    for (q, named) in [
        ("nosuch=1", "nosuch"),
        ("op_time=yesterday", "op_time"),
        ("op_time=[yesterday~]", "op_time"),
        ("op_time=[2024-02-30%2000:00:00~]", "op_time"),
        ("operation=(a%20b)", "operation"),
        ("operation=%7B%7D", "operation"),
    ] {
        for path in ["/api/v2.0/audit-logs", "/api/v2.0/projects/team/logs"] {
            let m = expect_error(get(&s, &format!("{path}?q={q}"), &admin()).await, 400, "BAD_REQUEST").await;
            assert!(m.contains(named), "{q}: {m}");
        }
    }
}

#[tokio::test]
async fn members() {
    let s = Server::start_harbor();
    let bob = create_user(&s, "bob").await;
    let carol = create_user(&s, "carol").await;
    create_project(&s, &admin(), "team", false).await;
    let base = "/api/v2.0/projects/team/members";

    let r =
        call(&s, Method::POST, base, &admin(), Some(&json!({"role_id": 2, "member_user": {"username": "bob"}}))).await;
    assert_eq!(r.status(), 201);
    let mid = location_id(&r);
    assert_eq!(header(&r, "location"), format!("/api/v2.0/projects/team/members/{mid}"));
    let by_id = json!({"role_id": 3, "member_user": {"user_id": carol}});
    assert_eq!(call(&s, Method::POST, base, &admin(), Some(&by_id)).await.status(), 201);

    let again = json!({"role_id": 4, "member_user": {"username": "bob"}});
    expect_error(call(&s, Method::POST, base, &admin(), Some(&again)).await, 409, "CONFLICT").await;
    let ghost = json!({"role_id": 2, "member_user": {"username": "ghost"}});
    expect_error(call(&s, Method::POST, base, &admin(), Some(&ghost)).await, 404, "NOT_FOUND").await;
    let ghost_id = json!({"role_id": 2, "member_user": {"user_id": 999}});
    expect_error(call(&s, Method::POST, base, &admin(), Some(&ghost_id)).await, 400, "BAD_REQUEST").await;
    let bad_role = json!({"role_id": 9, "member_user": {"username": "bob"}});
    let m = expect_error(call(&s, Method::POST, base, &admin(), Some(&bad_role)).await, 400, "BAD_REQUEST").await;
    assert!(m.contains("role_id"), "{m}");
    let group = json!({"role_id": 2, "member_group": {"group_name": "devs"}});
    expect_error(call(&s, Method::POST, base, &admin(), Some(&group)).await, 400, "BAD_REQUEST").await;
    let nobody = json!({"role_id": 2});
    expect_error(call(&s, Method::POST, base, &admin(), Some(&nobody)).await, 400, "BAD_REQUEST").await;

    let r = get(&s, base, &user("bob")).await;
    assert_eq!(header(&r, "x-total-count"), "3");
    let list = body_json(r).await;
    let entities: Vec<(&str, &str)> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["entity_name"].as_str().unwrap(), m["role_name"].as_str().unwrap()))
        .collect();
    assert_eq!(entities, [("admin", "projectAdmin"), ("bob", "developer"), ("carol", "guest")]);
    let r = get(&s, &format!("{base}?entityname=car&page_size=1"), &admin()).await;
    assert_eq!(header(&r, "x-total-count"), "1");
    let m = body_json(get(&s, &format!("{base}/{mid}"), &admin()).await).await;
    assert_eq!(
        m,
        json!({"id": mid, "project_id": m["project_id"], "entity_name": "bob", "role_name": "developer",
        "role_id": 2, "entity_id": bob, "entity_type": "u"})
    );

    let r = call(&s, Method::PUT, &format!("{base}/{mid}"), &admin(), Some(&json!({"role_id": 4}))).await;
    assert_eq!(r.status(), 200);
    assert_eq!(body_json(get(&s, &format!("{base}/{mid}"), &admin()).await).await["role_name"], "maintainer");
    let r = call(&s, Method::PUT, &format!("{base}/{mid}"), &admin(), Some(&json!({"role_id": 0}))).await;
    expect_error(r, 400, "BAD_REQUEST").await;
    let r = call(&s, Method::PUT, &format!("{base}/999"), &admin(), Some(&json!({"role_id": 2}))).await;
    expect_error(r, 404, "NOT_FOUND").await;
    // Bob is a maintainer: he may read but not change members.
    let r = call(&s, Method::DELETE, &format!("{base}/{mid}"), &user("bob"), None).await;
    expect_error(r, 403, "FORBIDDEN").await;
    assert_eq!(call(&s, Method::DELETE, &format!("{base}/{mid}"), &admin(), None).await.status(), 200);
    expect_error(get(&s, &format!("{base}/{mid}"), &admin()).await, 404, "NOT_FOUND").await;
    expect_error(get(&s, &format!("{base}/abc"), &admin()).await, 400, "BAD_REQUEST").await;
    // No longer a member of a private project: indistinguishable from a missing one.
    expect_error(get(&s, base, &user("bob")).await, 403, "FORBIDDEN").await;

    let log = body_json(get(&s, "/api/v2.0/audit-logs?q=resource_type=member", &admin()).await).await;
    let ops = operations(&log);
    assert_eq!(&ops[..3], [("delete", "bob"), ("update", "bob"), ("create", "carol")]);
}

#[tokio::test]
async fn robots() {
    let s = Server::start_harbor();
    let team = create_project(&s, &admin(), "team", false).await;

    let r = create_robot(&s, &admin(), "team", "ci").await;
    assert_eq!(r.status(), 201);
    let id = location_id(&r);
    assert_eq!(header(&r, "location"), format!("/api/v2.0/robots/{id}"));
    let created = body_json(r).await;
    assert_eq!(created["name"], "robot$team+ci");
    assert_eq!(created["expires_at"], -1);
    let secret = created["secret"].as_str().unwrap().to_string();
    assert!(secret.len() >= 8);
    let robot = Who::Basic("robot$team+ci".into(), secret.clone());

    // The robot pulls and pushes through the token service.
    let r = client()
        .get(s.url("/service/token?service=harbor-registry&scope=repository%3Ateam%2Fapp%3Apull%2Cpush%2Cdelete"))
        .basic_auth("robot$team+ci", Some(&secret))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    push_as(&s, &robot, "team/app").await;

    let got = body_json(get(&s, &format!("/api/v2.0/robots/{id}"), &admin()).await).await;
    assert_eq!(got["name"], "robot$team+ci");
    assert_eq!(got["level"], "project");
    assert_eq!(got["duration"], -1);
    assert_eq!(got["disable"], false);
    assert_eq!(got["editable"], true);
    assert_eq!(
        got["permissions"],
        json!([{"kind": "project", "namespace": "team", "access": [
            {"resource": "repository", "action": "pull"}, {"resource": "repository", "action": "push"}]}])
    );
    assert!(got.get("secret").is_none(), "the secret is shown only on create and refresh");

    let r = get(&s, &format!("/api/v2.0/robots?q=Level%3Dproject%2CProjectID%3D{team}"), &admin()).await;
    assert_eq!(header(&r, "x-total-count"), "1");
    assert_eq!(body_json(r).await[0]["id"], id);
    let r = get(&s, "/api/v2.0/robots", &admin()).await;
    assert_eq!(header(&r, "x-total-count"), "0", "the default list is system robots");
    expect_error(get(&s, "/api/v2.0/robots?q=Level=project", &admin()).await, 400, "BAD_REQUEST").await;
    expect_error(get(&s, "/api/v2.0/robots?q=Level=galaxy", &admin()).await, 400, "BAD_REQUEST").await;

    // Update: disable, 30 days.
    let mut up = got.clone();
    up["disable"] = json!(true);
    up["duration"] = json!(30);
    up["description"] = json!("paused");
    let r = call(&s, Method::PUT, &format!("/api/v2.0/robots/{id}"), &admin(), Some(&up)).await;
    assert_eq!(r.status(), 200, "{:?}", r.text().await);
    let got = body_json(get(&s, &format!("/api/v2.0/robots/{id}"), &admin()).await).await;
    assert_eq!((got["disable"].as_bool(), got["duration"].as_i64()), (Some(true), Some(30)));
    assert!(got["expires_at"].as_i64().unwrap() > 0);
    // A disabled robot cannot log in.
    expect_error(get(&s, "/api/v2.0/projects", &robot).await, 401, "UNAUTHORIZED").await;
    up["disable"] = json!(false);
    assert_eq!(call(&s, Method::PUT, &format!("/api/v2.0/robots/{id}"), &admin(), Some(&up)).await.status(), 200);
    assert_eq!(get(&s, "/api/v2.0/projects", &robot).await.status(), 200);
    // Name, level and project cannot change.
    let mut rename = up.clone();
    rename["name"] = json!("robot$team+other");
    let r = call(&s, Method::PUT, &format!("/api/v2.0/robots/{id}"), &admin(), Some(&rename)).await;
    expect_error(r, 400, "BAD_REQUEST").await;
    create_project(&s, &admin(), "other", false).await;
    let mut moved = up.clone();
    moved["permissions"][0]["namespace"] = json!("other");
    let r = call(&s, Method::PUT, &format!("/api/v2.0/robots/{id}"), &admin(), Some(&moved)).await;
    expect_error(r, 400, "BAD_REQUEST").await;

    // Refresh: a new random secret replaces the old one; or the caller's own.
    let r = call(&s, Method::PATCH, &format!("/api/v2.0/robots/{id}"), &admin(), Some(&json!({}))).await;
    assert_eq!(r.status(), 200);
    let fresh = body_json(r).await["secret"].as_str().unwrap().to_string();
    assert_ne!(fresh, secret);
    expect_error(get(&s, "/api/v2.0/projects", &robot).await, 401, "UNAUTHORIZED").await;
    let robot = Who::Basic("robot$team+ci".into(), fresh);
    assert_eq!(get(&s, "/api/v2.0/projects", &robot).await.status(), 200);
    let own = json!({"secret": "MyOwnSecret1"});
    let r = call(&s, Method::PATCH, &format!("/api/v2.0/robots/{id}"), &admin(), Some(&own)).await;
    assert_eq!(body_json(r).await, json!({"secret": ""}));
    let robot = Who::Basic("robot$team+ci".into(), "MyOwnSecret1".into());
    assert_eq!(get(&s, "/api/v2.0/projects", &robot).await.status(), 200);
    let weak = json!({"secret": "weak"});
    let r = call(&s, Method::PATCH, &format!("/api/v2.0/robots/{id}"), &admin(), Some(&weak)).await;
    assert!(expect_error(r, 400, "BAD_REQUEST").await.contains("8"));

    // Bad robots.
    expect_error(create_robot(&s, &admin(), "team", "ci").await, 409, "CONFLICT").await;
    expect_error(create_robot(&s, &admin(), "team", "CI+x").await, 400, "BAD_REQUEST").await;
    expect_error(create_robot(&s, &admin(), "nope", "ci").await, 404, "NOT_FOUND").await;
    let base = json!({"name": "b", "level": "project", "duration": -1,
        "permissions": [{"kind": "project", "namespace": "team", "access": [{"resource": "repository", "action": "pull"}]}]});
    for (field, value) in [
        ("duration", json!(0)),
        ("level", json!("galaxy")),
        ("permissions", json!([])),
        ("permissions", json!([{"kind": "project", "namespace": "team", "access": []}])),
        (
            "permissions",
            json!([{"kind": "project", "namespace": "team", "access": [{"resource": "repository", "action": "fly"}]}]),
        ),
        (
            "permissions",
            json!([{"kind": "cluster", "namespace": "team", "access": [{"resource": "repository", "action": "pull"}]}]),
        ),
    ] {
        let mut b = base.clone();
        b[field] = value.clone();
        let r = call(&s, Method::POST, "/api/v2.0/robots", &admin(), Some(&b)).await;
        expect_error(r, 400, "BAD_REQUEST").await;
    }

    // A system robot with system permissions manages users and sees every project.
    let sys = json!({"name": "ops", "level": "system", "duration": 7, "permissions": [
        {"kind": "system", "namespace": "/", "access": [{"resource": "user", "action": "list"}, {"resource": "project", "action": "create"}]},
        {"kind": "project", "namespace": "*", "access": [{"resource": "repository", "action": "pull"}]}]});
    let r = call(&s, Method::POST, "/api/v2.0/robots", &admin(), Some(&sys)).await;
    assert_eq!(r.status(), 201);
    let sys_id = location_id(&r);
    let created = body_json(r).await;
    assert_eq!(created["name"], "robot$ops");
    assert!(created["expires_at"].as_i64().unwrap() > 0);
    let ops = Who::Basic("robot$ops".into(), created["secret"].as_str().unwrap().into());
    assert_eq!(get(&s, "/api/v2.0/users", &ops).await.status(), 200);
    expect_error(get(&s, "/api/v2.0/users/1", &ops).await, 403, "FORBIDDEN").await;
    let names = body_json(get(&s, "/api/v2.0/projects", &ops).await).await;
    assert_eq!(names.as_array().unwrap().len(), 3, "{names}");
    assert!(create_project(&s, &ops, "made-by-robot", false).await > 0);
    let r = get(&s, "/api/v2.0/robots", &admin()).await;
    assert_eq!(header(&r, "x-total-count"), "1");
    // A project robot may not create projects; nor robots beyond its own permissions.
    let r = call(&s, Method::POST, "/api/v2.0/projects", &robot, Some(&json!({"project_name": "nope"}))).await;
    expect_error(r, 403, "FORBIDDEN").await;
    let perms = body_json(get(&s, "/api/v2.0/users/current/permissions?scope=/system&relative=true", &ops).await).await;
    assert_eq!(perms, json!([{"resource": "project", "action": "create"}, {"resource": "user", "action": "list"}]));

    // Delete.
    assert_eq!(call(&s, Method::DELETE, &format!("/api/v2.0/robots/{id}"), &admin(), None).await.status(), 200);
    expect_error(get(&s, &format!("/api/v2.0/robots/{id}"), &admin()).await, 404, "NOT_FOUND").await;
    expect_error(get(&s, "/api/v2.0/projects", &robot).await, 401, "UNAUTHORIZED").await;
    expect_error(call(&s, Method::DELETE, "/api/v2.0/robots/abc", &admin(), None).await, 400, "BAD_REQUEST").await;
    assert_eq!(call(&s, Method::DELETE, &format!("/api/v2.0/robots/{sys_id}"), &admin(), None).await.status(), 200);

    let log = body_json(get(&s, "/api/v2.0/audit-logs?q=resource_type=robot&page_size=100", &admin()).await).await;
    let ops = operations(&log);
    assert_eq!(ops.first(), Some(&("delete", "robot$ops")));
    assert!(ops.contains(&("create", "robot$team+ci")));
    assert!(ops.contains(&("delete", "robot$team+ci")));
}

#[tokio::test]
async fn sessions_and_csrf() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut s = Server::spawn(&data, &[("BERTH_AUTH_MODE", "harbor")]);

    expect_error(login(&s, "admin", "wrong").await, 401, "UNAUTHORIZED").await;
    let r = login(&s, "admin", ADMIN_PASSWORD).await;
    assert_eq!(r.status(), 200);
    let cookie = header(&r, "set-cookie");
    assert!(cookie.contains("HttpOnly") && cookie.contains("Path=/") && cookie.contains("Max-Age=3600"), "{cookie}");
    let sid = sid_of(&r);
    let csrf = header(&r, "x-harbor-csrf-token");
    assert_eq!(csrf.len(), 64);

    let with_token = Who::Cookie(sid.clone(), Some(csrf.clone()));
    let without_token = Who::Cookie(sid.clone(), None);
    let me = body_json(get(&s, "/api/v2.0/users/current", &without_token).await).await;
    assert_eq!(me["username"], "admin");
    let r = get(&s, "/api/v2.0/users/current", &without_token).await;
    assert_eq!(header(&r, "x-harbor-csrf-token"), csrf, "the session's token is on every response");

    // Unsafe methods with the cookie need the token.
    let p = json!({"project_name": "via-session"});
    let m =
        expect_error(call(&s, Method::POST, "/api/v2.0/projects", &without_token, Some(&p)).await, 403, "FORBIDDEN")
            .await;
    assert_eq!(m, "CSRF token invalid");
    let wrong = Who::Cookie(sid.clone(), Some("0".repeat(64)));
    expect_error(call(&s, Method::POST, "/api/v2.0/projects", &wrong, Some(&p)).await, 403, "FORBIDDEN").await;
    assert_eq!(call(&s, Method::POST, "/api/v2.0/projects", &with_token, Some(&p)).await.status(), 201);
    // Basic-auth clients need none.
    let p2 = json!({"project_name": "via-basic"});
    assert_eq!(call(&s, Method::POST, "/api/v2.0/projects", &admin(), Some(&p2)).await.status(), 201);
    // A forged cookie is nobody, and cannot pass the CSRF check either.
    let forged = Who::Cookie(sid.replacen('1', "2", 1), Some(csrf.clone()));
    expect_error(get(&s, "/api/v2.0/users/current", &forged).await, 401, "UNAUTHORIZED").await;
    let p3 = json!({"project_name": "forged"});
    expect_error(call(&s, Method::POST, "/api/v2.0/projects", &forged, Some(&p3)).await, 403, "FORBIDDEN").await;

    // Stateless: the session survives a restart (and works on any instance with the key).
    s.terminate();
    let s = Server::spawn(&data, &[("BERTH_AUTH_MODE", "harbor")]);
    let me = body_json(get(&s, "/api/v2.0/users/current", &with_token).await).await;
    assert_eq!(me["username"], "admin");

    // A user's sessions end when the password changes.
    create_user(&s, "alice").await;
    let r = login(&s, "alice", PW).await;
    let alice = Who::Cookie(sid_of(&r), Some(header(&r, "x-harbor-csrf-token")));
    let me = body_json(get(&s, "/api/v2.0/users/current", &alice).await).await;
    let pw = json!({"old_password": PW, "new_password": "Another1pw"});
    let path = format!("/api/v2.0/users/{}/password", me["user_id"]);
    assert_eq!(call(&s, Method::PUT, &path, &alice, Some(&pw)).await.status(), 200);
    expect_error(get(&s, "/api/v2.0/users/current", &alice).await, 401, "UNAUTHORIZED").await;

    // Logout clears the cookie; robots have no sessions.
    let r = get(&s, "/c/log_out", &with_token).await;
    assert_eq!(r.status(), 200);
    assert!(header(&r, "set-cookie").starts_with("sid=; "), "{}", header(&r, "set-cookie"));
    assert!(header(&r, "set-cookie").contains("Max-Age=0"));
    let r = client().post(s.url("/c/login")).body("password=x").send().await.unwrap();
    expect_error(r, 400, "BAD_REQUEST").await;
}

/// One row of the authorization matrix: what, how, where, body, and the status per principal.
type Case = (&'static str, Method, &'static str, Option<Value>, [u16; 9]);

/// Who may do what, endpoint by endpoint, as Harbor decides it.
#[tokio::test]
async fn authorization_matrix() {
    let s = Server::start_harbor();
    for u in ["nonmember", "limited", "guest", "dev", "maint", "padmin", "target-a", "target-b"] {
        create_user(&s, u).await;
    }
    create_project(&s, &admin(), "team", false).await;
    for (u, role) in [("limited", 5), ("guest", 3), ("dev", 2), ("maint", 4), ("padmin", 1)] {
        add_member(&s, "team", u, role).await;
    }
    let r = create_robot(&s, &admin(), "team", "bot").await;
    let secret = body_json(r).await["secret"].as_str().unwrap().to_string();
    push_as(&s, &admin(), "team/app").await;

    let who: Vec<(&str, Who)> = vec![
        ("anonymous", Who::Anon),
        ("non-member", user("nonmember")),
        ("limitedGuest", user("limited")),
        ("guest", user("guest")),
        ("developer", user("dev")),
        ("maintainer", user("maint")),
        ("projectAdmin", user("padmin")),
        ("sysadmin", admin()),
        ("robot (pull, push)", Who::Basic("robot$team+bot".into(), secret)),
    ];
    let update = json!({"metadata": {"auto_scan": "true"}});
    let member = |target: &str| json!({"role_id": 3, "member_user": {"username": target}});
    // Expected status for: anonymous, non-member, limitedGuest, guest, developer, maintainer,
    // projectAdmin, sysadmin, robot.
    #[rustfmt::skip]
    let cases: Vec<Case> = vec![
        ("get project",           Method::GET,    "/projects/team",           None,         [401, 403, 200, 200, 200, 200, 200, 200, 403]),
        ("get unknown project",   Method::GET,    "/projects/nope",           None,         [401, 403, 403, 403, 403, 403, 403, 404, 403]),
        ("project summary",       Method::GET,    "/projects/team/summary",   None,         [401, 403, 200, 200, 200, 200, 200, 200, 403]),
        ("update project",        Method::PUT,    "/projects/team",           Some(update), [401, 403, 403, 403, 403, 403, 200, 200, 403]),
        // The project has a repository: allowed callers get 412.
        ("delete project",        Method::DELETE, "/projects/team",           None,         [401, 403, 403, 403, 403, 403, 412, 412, 403]),
        ("list members",          Method::GET,    "/projects/team/members",   None,         [401, 403, 403, 200, 200, 200, 200, 200, 403]),
        ("list metadata",         Method::GET,    "/projects/team/metadatas/", None,        [401, 403, 403, 403, 403, 200, 200, 200, 403]),
        ("project logs",          Method::GET,    "/projects/team/logs",      None,         [401, 403, 403, 403, 403, 403, 200, 200, 403]),
        ("list users",            Method::GET,    "/users",                   None,         [401, 403, 403, 403, 403, 403, 403, 200, 403]),
        ("audit logs",            Method::GET,    "/audit-logs",              None,         [401, 200, 200, 200, 200, 200, 200, 200, 200]),
        ("list project robots",   Method::GET,    "/robots?q=Level=project,ProjectID=2", None, [401, 403, 403, 200, 200, 200, 200, 200, 403]),
    ];
    let mut failures = Vec::new();
    for (what, method, path, body, expected) in &cases {
        for ((name, w), want) in who.iter().zip(expected) {
            let r = call(&s, method.clone(), &format!("/api/v2.0{path}"), w, body.as_ref()).await;
            if r.status().as_u16() != *want {
                failures.push(format!("{what} as {name}: got {}, want {want}", r.status()));
            }
        }
    }
    // Creations: only project admins and system admins (each with its own target).
    let creations: [u16; 9] = [401, 403, 403, 403, 403, 403, 201, 201, 403];
    for (i, ((name, w), want)) in who.iter().zip(creations).enumerate() {
        let target = if name == &"sysadmin" { "target-b" } else { "target-a" };
        let r = call(&s, Method::POST, "/api/v2.0/projects/team/members", w, Some(&member(target))).await;
        if r.status().as_u16() != want {
            failures.push(format!("add member as {name}: got {}, want {want}", r.status()));
        }
        let r = create_robot(&s, w, "team", &format!("r{i}")).await;
        if r.status().as_u16() != want {
            failures.push(format!("create robot as {name}: got {}, want {want}", r.status()));
        }
    }
    assert!(failures.is_empty(), "authorization mismatches:\n{}", failures.join("\n"));

    // A project admin's audit view is their projects' entries only.
    let log = body_json(get(&s, "/api/v2.0/audit-logs?page_size=100", &user("padmin")).await).await;
    assert!(!log.as_array().unwrap().is_empty());
    assert!(log.as_array().unwrap().iter().all(|e| e["resource_type"] != "user"), "{log}");
    let log = body_json(get(&s, "/api/v2.0/audit-logs", &user("dev")).await).await;
    assert_eq!(log, json!([]));

    // What the portal shows: permissions in the project.
    let perms = |w: Who| {
        let s = &s;
        async move {
            let v =
                body_json(get(s, "/api/v2.0/users/current/permissions?scope=/project/2&relative=true", &w).await).await;
            v.as_array()
                .unwrap()
                .iter()
                .map(|p| format!("{}:{}", p["resource"].as_str().unwrap(), p["action"].as_str().unwrap()))
                .collect::<Vec<_>>()
        }
    };
    let dev = perms(user("dev")).await;
    assert!(dev.contains(&"repository:push".to_string()) && !dev.contains(&"repository:delete".to_string()));
    assert!(dev.contains(&".:read".to_string()));
    let limited = perms(user("limited")).await;
    assert!(limited.contains(&"repository:pull".to_string()) && !limited.contains(&"member:list".to_string()));
    assert!(perms(user("nonmember")).await.is_empty());
    let robot = perms(who[8].1.clone()).await;
    assert_eq!(robot, ["repository:pull", "repository:push"]);
    let abs = body_json(get(&s, "/api/v2.0/users/current/permissions?scope=/project/2", &admin()).await).await;
    assert!(abs.as_array().unwrap().iter().any(|p| p["resource"] == "/project/2/repository"));
    assert!(abs.as_array().unwrap().iter().any(|p| p["resource"] == "/project/2" && p["action"] == "delete"));
    expect_error(get(&s, "/api/v2.0/users/current/permissions", &Who::Anon).await, 401, "UNAUTHORIZED").await;
}

/// Every class of bad input gets a 400 (or 409/404) in the envelope, naming what is wrong.
#[tokio::test]
async fn bad_input() {
    let s = Server::start_harbor();
    let users = "/api/v2.0/users";
    let m = expect_error(raw_body(&s, Method::POST, users, &admin(), "{\"username\":").await, 400, "BAD_REQUEST").await;
    assert!(m.contains("malformed"), "{m}");
    expect_error(raw_body(&s, Method::POST, users, &admin(), "").await, 400, "BAD_REQUEST").await;
    let full = json!({"username": "u1", "email": "u1@example.com", "realname": "U", "password": PW});
    let mut unknown = full.clone();
    unknown["nickname"] = json!("x");
    let m = expect_error(call(&s, Method::POST, users, &admin(), Some(&unknown)).await, 400, "BAD_REQUEST").await;
    assert!(m.contains("nickname"), "{m}");
    let mut wrong_type = full.clone();
    wrong_type["username"] = json!(5);
    let m = expect_error(call(&s, Method::POST, users, &admin(), Some(&wrong_type)).await, 400, "BAD_REQUEST").await;
    assert!(m.contains("username") && m.contains("invalid type"), "{m}");
    let mut missing = full.clone();
    missing.as_object_mut().unwrap().remove("password");
    let m = expect_error(call(&s, Method::POST, users, &admin(), Some(&missing)).await, 400, "BAD_REQUEST").await;
    assert!(m.contains("password"), "{m}");
    for (field, value, says) in [
        ("email", json!("not-an-email"), "email"),
        ("username", json!("a$b"), "username"),
        ("realname", json!(""), "realname"),
        ("comment", json!("x".repeat(31)), "comment"),
        ("password", json!("short"), "at least 8"),
    ] {
        let mut b = full.clone();
        b[field] = value;
        let m = expect_error(call(&s, Method::POST, users, &admin(), Some(&b)).await, 400, "BAD_REQUEST").await;
        assert!(m.contains(says), "{field}: {m}");
    }

    let projects = "/api/v2.0/projects";
    let b = json!({"project_name": "p", "metadata": {"public": true}});
    let m = expect_error(call(&s, Method::POST, projects, &admin(), Some(&b)).await, 400, "BAD_REQUEST").await;
    assert!(m.contains("metadata.public"), "{m}");
    let m = expect_error(call(&s, Method::POST, projects, &admin(), Some(&json!({}))).await, 400, "BAD_REQUEST").await;
    assert!(m.contains("project_name"), "{m}");
    let b = json!({"project_name": "p", "registry_id": 1});
    expect_error(call(&s, Method::POST, projects, &admin(), Some(&b)).await, 400, "BAD_REQUEST").await;
    let b = json!({"role_id": "2", "member_user": {"username": "admin"}});
    let m = expect_error(
        call(&s, Method::POST, "/api/v2.0/projects/library/members", &admin(), Some(&b)).await,
        400,
        "BAD_REQUEST",
    )
    .await;
    assert!(m.contains("role_id"), "{m}");
    let b = json!({"role_id": 2, "member_user": {"name": "admin"}});
    let m = expect_error(
        call(&s, Method::POST, "/api/v2.0/projects/library/members", &admin(), Some(&b)).await,
        400,
        "BAD_REQUEST",
    )
    .await;
    assert!(m.contains("member_user") && m.contains("name"), "{m}");
    let b = json!({"name": "x", "level": "project", "duration": -1});
    let m =
        expect_error(call(&s, Method::POST, "/api/v2.0/robots", &admin(), Some(&b)).await, 400, "BAD_REQUEST").await;
    assert!(m.contains("permissions"), "{m}");
    let b = json!({"sysadmin_flag": "yes"});
    let m =
        expect_error(call(&s, Method::PUT, "/api/v2.0/users/1/sysadmin", &admin(), Some(&b)).await, 400, "BAD_REQUEST")
            .await;
    assert!(m.contains("sysadmin_flag"), "{m}");

    // Paging, queries and sorting.
    for path in ["/api/v2.0/projects", "/api/v2.0/users", "/api/v2.0/audit-logs", "/api/v2.0/robots"] {
        for q in
            ["page_size=0", "page_size=101", "page_size=ten", "page=0", "page=-1", "q=name", "q=name=~", "sort=nosuch"]
        {
            let r = get(&s, &format!("{path}?{q}"), &admin()).await;
            expect_error(r, 400, "BAD_REQUEST").await;
        }
        let r = get(&s, &format!("{path}?page_size=100"), &admin()).await;
        assert_eq!(r.status(), 200, "{path}");
    }
    let m = expect_error(get(&s, "/api/v2.0/projects?page_size=101", &admin()).await, 400, "BAD_REQUEST").await;
    assert!(m.contains("page_size"), "{m}");

    // Unknown ids, malformed ids.
    for path in
        ["/users/9999", "/robots/9999", "/projects/9999", "/projects/library/members/9999", "/projects/nope/summary"]
    {
        expect_error(get(&s, &format!("/api/v2.0{path}"), &admin()).await, 404, "NOT_FOUND").await;
    }
    for path in ["/users/x1", "/robots/x1", "/projects/library/members/x1"] {
        expect_error(get(&s, &format!("/api/v2.0{path}"), &admin()).await, 400, "BAD_REQUEST").await;
    }
    let r = get(&s, "/api/v2.0/users/current/permissions?scope=/project/1&relative=maybe", &admin()).await;
    expect_error(r, 400, "BAD_REQUEST").await;
}

/// The published OpenAPI document lists what is served: every documented operation is
/// routed (never "no such API endpoint" or 405), and undocumented paths are not.
#[tokio::test]
async fn openapi_document_matches_the_routes() {
    let s = Server::start_harbor();
    let r = get(&s, "/api/v2.0/openapi.json", &Who::Anon).await;
    assert_eq!(r.status(), 200);
    let doc = body_json(r).await;
    assert_eq!(doc["openapi"], "3.0.3");
    let paths = doc["paths"].as_object().unwrap();
    assert!(paths.len() >= 25, "{}", paths.len());
    for (path, methods) in paths {
        let concrete = path
            .replace("{project}", "library")
            .replace("{repository}", "nothing")
            .replace("{reference}", "latest")
            .replace("{tag}", "t")
            .replace("{name}", "public")
            .replace("{user_id}", "1")
            .replace("{mid}", "1")
            .replace("{robot_id}", "1");
        for method in methods.as_object().unwrap().keys() {
            let m = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let r = call(&s, m.clone(), &format!("/api/v2.0{concrete}"), &admin(), None).await;
            let status = r.status().as_u16();
            let text = r.text().await.unwrap();
            assert_ne!(status, 405, "{method} {path} is documented but not routed");
            assert!(!text.contains("no such API endpoint"), "{method} {path} is documented but not routed");
        }
    }
    let r = get(&s, "/api/v2.0/not-a-thing", &admin()).await;
    assert_eq!(r.status(), 404);
    assert!(!paths.contains_key("/not-a-thing"));
}

/// An audit log page as (operation, resource) pairs, newest first.
fn operations(log: &Value) -> Vec<(&str, &str)> {
    log.as_array()
        .unwrap()
        .iter()
        .map(|e| (e["operation"].as_str().unwrap(), e["resource"].as_str().unwrap()))
        .collect()
}
