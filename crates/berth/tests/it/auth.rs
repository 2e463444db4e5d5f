//! Registry authentication as Harbor does it: challenges, the token service, Basic and
//! Bearer on /v2, public and missing projects, throttling, and real clients logging in.

use base64::Engine as _;
use serde_json::Value;

use crate::support::*;

fn claims(token: &str) -> (Value, Value) {
    let part = |i: usize| -> Value {
        let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(token.split('.').nth(i).unwrap()).unwrap();
        serde_json::from_slice(&raw).unwrap()
    };
    (part(0), part(1))
}

async fn token(s: &Server, user: Option<(&str, &str)>, scopes: &[&str]) -> reqwest::Response {
    let mut url = s.url("/service/token?service=harbor-registry");
    for sc in scopes {
        url.push_str(&format!("&scope={}", sc.replace(':', "%3A").replace('/', "%2F")));
    }
    let mut req = client().get(url);
    if let Some((u, p)) = user {
        req = req.basic_auth(u, Some(p));
    }
    req.send().await.unwrap()
}

#[tokio::test]
async fn challenge_and_token_service() {
    let s = Server::start_harbor();
    let c = client();
    let r = c.get(s.url("/v2/")).send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(header(&r, "docker-distribution-api-version"), "registry/2.0");
    assert_eq!(
        header(&r, "www-authenticate"),
        format!("Bearer realm=\"http://{}/service/token\",service=\"harbor-registry\"", s.addr)
    );
    assert_eq!(error_code(r).await, "UNAUTHORIZED");

    // docker login: Basic, no scope.
    let r = token(&s, Some(("admin", ADMIN_PASSWORD)), &[]).await;
    assert_eq!(r.status(), 200);
    let body: Value = serde_json::from_str(&r.text().await.unwrap()).unwrap();
    assert_eq!(body["expires_in"], 1800);
    assert!(body["issued_at"].as_str().unwrap().ends_with('Z'));
    let t = body["token"].as_str().unwrap();
    let (head, cl) = claims(t);
    assert_eq!(head["alg"], "RS256");
    assert_eq!(head["kid"].as_str().unwrap().split(':').count(), 12);
    assert_eq!(cl["iss"], "harbor-token-issuer");
    assert_eq!(cl["aud"], "harbor-registry");
    assert_eq!(cl["sub"], "admin");
    let r = c.get(s.url("/v2/")).bearer_auth(t).send().await.unwrap();
    assert_eq!(r.status(), 200);

    // Failed logins.
    let r = token(&s, Some(("admin", "wrong")), &[]).await;
    assert_eq!(r.status(), 401);
    let r = token(&s, None, &[]).await;
    assert_eq!(r.status(), 401);
    let r = client().get(s.url("/service/token?service=other")).send().await.unwrap();
    assert_eq!(r.status(), 400);
    let r = client().get(s.url("/service/token?service=harbor-registry&scope=nonsense")).send().await.unwrap();
    assert_eq!(r.status(), 400);

    // Admin gets everything on a repository and the catalog.
    let r =
        token(&s, Some(("admin", ADMIN_PASSWORD)), &["repository:library/app:pull,push,delete", "registry:catalog:*"])
            .await;
    let body: Value = serde_json::from_str(&r.text().await.unwrap()).unwrap();
    let (_, cl) = claims(body["token"].as_str().unwrap());
    assert_eq!(cl["access"][0]["type"], "repository");
    assert_eq!(cl["access"][0]["name"], "library/app");
    assert_eq!(cl["access"][0]["actions"], serde_json::json!(["pull", "push", "delete"]));
    assert_eq!(cl["access"][1]["actions"], serde_json::json!(["*"]));

    // Anonymous: pull on the public library project only; nothing on a missing project.
    let r =
        token(&s, None, &["repository:library/app:pull,push", "repository:nope/app:pull", "registry:catalog:*"]).await;
    let body: Value = serde_json::from_str(&r.text().await.unwrap()).unwrap();
    let (_, cl) = claims(body["token"].as_str().unwrap());
    assert_eq!(cl["sub"], "");
    assert_eq!(cl["access"][0]["actions"], serde_json::json!(["pull"]));
    assert_eq!(cl["access"][1]["actions"], serde_json::json!([]));
    assert_eq!(cl["access"][2]["actions"], serde_json::json!([]));
    // Bad credentials with a scope: an anonymous token, as Harbor does.
    let r = token(&s, Some(("admin", "wrong")), &["repository:library/app:pull"]).await;
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn push_and_pull_with_basic_and_bearer() {
    let s = Server::start_harbor();
    let c = client();
    let data = b"layer bytes";
    let d = sha256(data);
    // Anonymous push: challenged with the scope it needs.
    let r = c.post(s.url(&format!("/v2/library/app/blobs/uploads/?digest={d}"))).body(&data[..]).send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(
        header(&r, "www-authenticate"),
        format!(
            "Bearer realm=\"http://{}/service/token\",service=\"harbor-registry\",scope=\"repository:library/app:pull,push\"",
            s.addr
        )
    );
    // Basic auth straight on /v2, as Harbor accepts.
    let r = c
        .post(s.url(&format!("/v2/library/app/blobs/uploads/?digest={d}")))
        .basic_auth("admin", Some(ADMIN_PASSWORD))
        .body(&data[..])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    // Anonymous pull from the public project works.
    let r = c.get(s.url(&format!("/v2/library/app/blobs/{d}"))).send().await.unwrap();
    assert_eq!(r.status(), 200);
    // A bearer token scoped to pull cannot push.
    let r = token(&s, Some(("admin", ADMIN_PASSWORD)), &["repository:library/app:pull"]).await;
    let t: Value = serde_json::from_str(&r.text().await.unwrap()).unwrap();
    let t = t["token"].as_str().unwrap().to_string();
    let r = c.get(s.url(&format!("/v2/library/app/blobs/{d}"))).bearer_auth(&t).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let r = c.post(s.url("/v2/library/app/blobs/uploads/")).bearer_auth(&t).send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(header(&r, "www-authenticate"), "Basic realm=\"harbor\"");
    // A push token works for the upload protocol.
    let r = token(&s, Some(("admin", ADMIN_PASSWORD)), &["repository:library/app:pull,push"]).await;
    let t: Value = serde_json::from_str(&r.text().await.unwrap()).unwrap();
    let t = t["token"].as_str().unwrap().to_string();
    let r = c.post(s.url("/v2/library/app/blobs/uploads/")).bearer_auth(&t).send().await.unwrap();
    assert_eq!(r.status(), 202);
    // A tampered token is refused.
    let bad = format!("{}x", &t[..t.len() - 1]);
    let r = c.get(s.url("/v2/")).bearer_auth(bad).send().await.unwrap();
    assert_eq!(r.status(), 401);
    // Repositories outside any existing project are refused even to the admin.
    let r = c
        .post(s.url(&format!("/v2/nope/app/blobs/uploads/?digest={d}")))
        .basic_auth("admin", Some(ADMIN_PASSWORD))
        .body(&data[..])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = c.get(s.url("/v2/_catalog")).send().await.unwrap();
    assert_eq!(r.status(), 401);
    let r = c.get(s.url("/v2/_catalog")).basic_auth("admin", Some(ADMIN_PASSWORD)).send().await.unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn failed_logins_are_throttled_per_user() {
    let s = Server::start_harbor();
    let c = client();
    for _ in 0..5 {
        let r = c.get(s.url("/v2/")).basic_auth("admin", Some("Wrong1234")).send().await.unwrap();
        assert_eq!(r.status(), 401);
    }
    let r = c.get(s.url("/v2/")).basic_auth("admin", Some(ADMIN_PASSWORD)).send().await.unwrap();
    assert_eq!(r.status(), 429, "locked out even with the right password for a while");
    assert!(!header(&r, "retry-after").is_empty());
    assert_eq!(error_code(r).await, "TOOMANYREQUESTS");
    // Another user name is not affected.
    let r = c.get(s.url("/v2/")).basic_auth("someone", Some("Wrong1234")).send().await.unwrap();
    assert_eq!(r.status(), 401);
}

#[tokio::test]
async fn skopeo_logs_in_and_pushes_anonymous_pulls_public() {
    if !tool_available("skopeo") {
        return;
    }
    let s = Server::start_harbor();
    let tmp = tempfile::tempdir().unwrap();
    let auth_file = tmp.path().join("auth.json");
    let layout = tmp.path().join("layout");
    write_tiny_layout(&layout, "v1");
    let auth = auth_file.to_str().unwrap();
    run(&["skopeo", "login", "--tls-verify=false", "--authfile", auth, "-u", "admin", "-p", ADMIN_PASSWORD, &s.addr]);
    run(&[
        "skopeo",
        "copy",
        "--dest-tls-verify=false",
        "--authfile",
        auth,
        &format!("oci:{}:v1", layout.display()),
        &format!("docker://{}/library/tiny:v1", s.addr),
    ]);
    // Anonymous pull of the public project through the token dance.
    let empty_auth = tmp.path().join("none.json");
    std::fs::write(&empty_auth, "{}").unwrap();
    let out = tmp.path().join("out");
    run(&[
        "skopeo",
        "copy",
        "--src-tls-verify=false",
        "--authfile",
        empty_auth.to_str().unwrap(),
        &format!("docker://{}/library/tiny:v1", s.addr),
        &format!("oci:{}:v1", out.display()),
    ]);
    // A wrong password fails the login.
    let bad = std::process::Command::new("skopeo")
        .args(["login", "--tls-verify=false", "--authfile", auth, "-u", "admin", "-p", "Nope12345", &s.addr])
        .output()
        .unwrap();
    assert!(!bad.status.success());
}

#[tokio::test]
async fn tokens_minted_before_a_project_was_recreated_are_refused() {
    let s = Server::start_harbor();
    let c = client();
    let create = || async {
        let r = c
            .post(s.url("/api/v2.0/projects"))
            .basic_auth("admin", Some(ADMIN_PASSWORD))
            .header("content-type", "application/json")
            .body(r#"{"project_name":"again","metadata":{"public":"false"}}"#)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
    };
    create().await;
    let r = token(&s, Some(("admin", ADMIN_PASSWORD)), &["repository:again/app:pull,push"]).await;
    let t: Value = serde_json::from_str(&r.text().await.unwrap()).unwrap();
    let t = t["token"].as_str().unwrap().to_string();
    let r = c.post(s.url("/v2/again/app/blobs/uploads/")).bearer_auth(&t).send().await.unwrap();
    assert_eq!(r.status(), 202, "the token works for the project it was minted for");
    let r = c
        .delete(s.url("/api/v2.0/projects/again"))
        .header("x-is-resource-name", "true")
        .basic_auth("admin", Some(ADMIN_PASSWORD))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // Token times have one-second resolution: the new project must be visibly younger.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    create().await;
    let r = c.post(s.url("/v2/again/app/blobs/uploads/")).bearer_auth(&t).send().await.unwrap();
    assert_eq!(r.status(), 401, "a token from before the project was re-created is for another project");
}

/// The admin is created after the listener is up, but a weak configured password is
/// still refused before anything listens, naming the setting.
#[tokio::test]
async fn a_weak_admin_password_fails_the_start_before_listening() {
    let tmp = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_berth"))
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(tmp.path().join("data"))
        .env("BERTH_ADMIN_PASSWORD", "short")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("admin.password (BERTH_ADMIN_PASSWORD) does not meet the password policy"), "{err}");
    assert!(out.stdout.is_empty(), "never listened");
}
