//! Scanner registrations and Harbor's Pluggable Scanner API v1.1 both ways: Berth as the
//! client of an external adapter (a fake one started here, which really pulls the
//! artifact from Berth with the credential it was given), and Berth's built-in scanner
//! served as an adapter, registered by a second Berth.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use reqwest::Method;
use serde_json::{Value, json};

use crate::scanning::{OSV_FIXTURE, V11, debian_layers, import, push_layers, tar_layer, wait_overview};
use crate::support::*;

const SBOM_MIME: &str = "application/vnd.security.sbom.report+json; version=1.0";
const FAKE_KEY: &str = "fake-adapter-key-0123456789";

#[derive(Clone)]
enum Outcome {
    Pending,
    Ready(String),
    Failed(String),
    /// Never ready (a scanner that hangs).
    Never,
}

#[derive(Default)]
struct FakeState {
    /// The scan requests received.
    requests: Vec<Value>,
    outcomes: HashMap<String, Outcome>,
    /// (repository tried, status) of each pull the adapter made with a request's credential.
    pulls: Vec<(String, u16)>,
}

/// A scanner adapter in the test: metadata, scan (pulls the manifest it was asked to scan
/// and one of another repository, with the given authorization), report (302 until the
/// pull is done, then a fixed report).
#[derive(Clone)]
struct Fake {
    state: Arc<Mutex<FakeState>>,
}

fn authorized(h: &HeaderMap) -> bool {
    h.get("x-scanneradapter-api-key").and_then(|v| v.to_str().ok()) == Some(FAKE_KEY)
}

fn scanner() -> Value {
    json!({"name": "Fake", "vendor": "Tests", "version": "1.0"})
}

async fn fake_metadata(h: HeaderMap) -> Response {
    if !authorized(&h) {
        return (StatusCode::UNAUTHORIZED, "no key").into_response();
    }
    let consumes = [OCI_MANIFEST, "application/vnd.docker.distribution.manifest.v2+json"];
    let md = json!({
        "scanner": scanner(),
        "capabilities": [
            {"type": "vulnerability", "consumes_mime_types": consumes, "produces_mime_types": [V11]},
            {"type": "sbom", "consumes_mime_types": consumes, "produces_mime_types": [SBOM_MIME]},
        ],
        "properties": {"harbor.scanner-adapter/scanner-type": "os-package-vulnerability"},
    });
    ([("content-type", "application/vnd.scanner.adapter.metadata+json; version=1.0")], md.to_string()).into_response()
}

fn fixed_report(artifact: &Value) -> Value {
    json!({
        "generated_at": "2024-01-01T00:00:00Z",
        "artifact": artifact,
        "scanner": scanner(),
        "severity": "Critical",
        "vulnerabilities": [
            {"id": "CVE-2099-0001", "package": "openssl", "version": "1.0", "fix_version": "1.1",
             "severity": "Critical", "description": "a fixed finding", "links": []},
            {"id": "CVE-2099-0002", "package": "zlib", "version": "1.2", "fix_version": "",
             "severity": "Low", "description": "", "links": []},
        ],
    })
}

async fn fake_scan(State(fake): State<Fake>, h: HeaderMap, body: String) -> Response {
    if !authorized(&h) {
        return (StatusCode::UNAUTHORIZED, "no key").into_response();
    }
    let req: Value = serde_json::from_str(&body).unwrap();
    let id = {
        let mut st = fake.state.lock().unwrap();
        st.requests.push(req.clone());
        let id = format!("scan-{}", st.requests.len());
        st.outcomes.insert(id.clone(), Outcome::Pending);
        id
    };
    let fake2 = fake.clone();
    let id2 = id.clone();
    tokio::spawn(async move {
        let url = req["registry"]["url"].as_str().unwrap().to_owned();
        let auth = req["registry"]["authorization"].as_str().unwrap().to_owned();
        let repo = req["artifact"]["repository"].as_str().unwrap().to_owned();
        let digest = req["artifact"]["digest"].as_str().unwrap().to_owned();
        let other = format!("{}/other", repo.split('/').next().unwrap());
        let mut statuses = Vec::new();
        for r in [&repo, &other] {
            let res = client()
                .get(format!("{url}/v2/{r}/manifests/{digest}"))
                .header("authorization", &auth)
                .header("accept", OCI_MANIFEST)
                .send()
                .await
                .unwrap();
            statuses.push((r.clone(), res.status().as_u16()));
        }
        let pulled = statuses[0].1;
        let kind = req["enabled_capabilities"][0]["type"].as_str().unwrap_or("vulnerability").to_owned();
        let outcome = if repo.contains("broken") {
            Outcome::Failed("boom: the fake adapter cannot scan this".into())
        } else if repo.contains("slow") {
            Outcome::Never
        } else if pulled != 200 {
            Outcome::Failed(format!("pulling the manifest answered {pulled}"))
        } else if kind == "sbom" {
            Outcome::Ready(
                json!({
                    "generated_at": "2024-01-01T00:00:00Z", "artifact": req["artifact"], "scanner": scanner(),
                    "media_type": "application/spdx+json",
                    "sbom": {"spdxVersion": "SPDX-2.3", "packages": [{"name": "openssl"}, {"name": "zlib"}]},
                })
                .to_string(),
            )
        } else {
            Outcome::Ready(fixed_report(&req["artifact"]).to_string())
        };
        let mut st = fake2.state.lock().unwrap();
        st.pulls.extend(statuses);
        st.outcomes.insert(id2, outcome);
    });
    (
        StatusCode::ACCEPTED,
        [("content-type", "application/vnd.scanner.adapter.scan.response+json; version=1.0")],
        json!({"id": id}).to_string(),
    )
        .into_response()
}

async fn fake_report(State(fake): State<Fake>, h: HeaderMap, Path(id): Path<String>) -> Response {
    if !authorized(&h) {
        return (StatusCode::UNAUTHORIZED, "no key").into_response();
    }
    let outcome = fake.state.lock().unwrap().outcomes.get(&id).cloned();
    match outcome {
        None => StatusCode::NOT_FOUND.into_response(),
        Some(Outcome::Pending | Outcome::Never) => (StatusCode::FOUND, [("refresh-after", "1")]).into_response(),
        Some(Outcome::Ready(body)) => {
            let accept = h.get("accept").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
            (StatusCode::OK, [("content-type", accept)], body).into_response()
        }
        Some(Outcome::Failed(msg)) => {
            (StatusCode::INTERNAL_SERVER_ERROR, json!({"error": {"message": msg}}).to_string()).into_response()
        }
    }
}

impl Fake {
    /// Serves on 127.0.0.1; returns the adapter and its base URL.
    async fn start() -> (Fake, String) {
        let fake = Fake { state: Arc::default() };
        let app = axum::Router::new()
            .route("/api/v1/metadata", axum::routing::get(fake_metadata))
            .route("/api/v1/scan", axum::routing::post(fake_scan))
            .route("/api/v1/scan/{id}/report", axum::routing::get(fake_report))
            .with_state(fake.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (fake, format!("http://{addr}"))
    }
}

async fn register(s: &Server, body: Value) -> String {
    let r = call(s, Method::POST, "/api/v2.0/scanners", &admin(), Some(&body)).await;
    assert_eq!(r.status(), 201, "register {body}");
    header(&r, "location").rsplit('/').next().unwrap().to_string()
}

/// The registrations: validation naming the field, conflicts, the stored credential
/// encrypted and never shown, metadata and ping asked of the adapter, the default, what
/// cannot be deleted, and projects' choices (gone with the project).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scanner_registrations_through_harbor_api() {
    let (_fake, fake_url) = Fake::start().await;
    let tmp = tempfile::tempdir().unwrap();
    let s = Server::spawn(&tmp.path().join("data"), &[("BERTH_AUTH_MODE", "harbor")]);
    let good =
        json!({"name": "fake", "url": fake_url, "auth": "X-ScannerAdapter-API-Key", "access_credential": FAKE_KEY});

    for (body, field) in [
        (json!({"url": fake_url}), "name"),
        (json!({"name": "x", "url": "ftp://scanner"}), "url"),
        (json!({"name": "x", "url": "not a url"}), "url"),
        (json!({"name": "x", "url": fake_url, "auth": "Digest", "access_credential": "a"}), "auth"),
        (json!({"name": "x", "url": fake_url, "auth": "Bearer"}), "access_credential"),
        (json!({"name": "Berth", "url": fake_url}), "name"),
        (json!({"name": "x", "url": fake_url, "colour": "red"}), "colour"),
    ] {
        let r = call(&s, Method::POST, "/api/v2.0/scanners", &admin(), Some(&body)).await;
        let msg = expect_error(r, 400, "BAD_REQUEST").await;
        assert!(msg.contains(field), "{body}: {msg}");
    }
    let id = register(&s, good.clone()).await;
    // Names and URLs are unique.
    let r = call(&s, Method::POST, "/api/v2.0/scanners", &admin(), Some(&good)).await;
    assert!(expect_error(r, 409, "CONFLICT").await.contains("name"));
    let other_name = json!({"name": "again", "url": fake_url});
    let r = call(&s, Method::POST, "/api/v2.0/scanners", &admin(), Some(&other_name)).await;
    assert!(expect_error(r, 409, "CONFLICT").await.contains("url"));

    // The list: the built-in scanner (still the default) first; the credential masked.
    let r = get(&s, "/api/v2.0/scanners", &admin()).await;
    assert_eq!(header(&r, "x-total-count"), "2");
    let list = body_json(r).await;
    assert_eq!((list[0]["name"].as_str(), list[0]["is_default"].as_bool()), (Some("Berth"), Some(true)));
    assert_eq!(list[1]["uuid"], id);
    assert_eq!(list[1]["is_default"], false);
    assert_eq!(list[1]["auth"], "X-ScannerAdapter-API-Key");
    assert_eq!(list[1]["access_credential"], "*****");
    let found = ok_json(&s, "/api/v2.0/scanners?q=name%3D~fak", &admin()).await;
    assert_eq!(found.as_array().unwrap().len(), 1);

    // One registration is shown with its adapter's health and capabilities.
    let one = ok_json(&s, &format!("/api/v2.0/scanners/{id}"), &admin()).await;
    assert_eq!(one["health"], "healthy", "{one}");
    assert_eq!((one["adapter"].as_str(), one["vendor"].as_str()), (Some("Fake"), Some("Tests")));
    assert_eq!(one["capabilities"], json!({"support_vulnerability": true, "support_sbom": true}));
    let md = ok_json(&s, &format!("/api/v2.0/scanners/{id}/metadata"), &admin()).await;
    assert_eq!(md["scanner"], scanner());
    assert_eq!(md["capabilities"][1]["type"], "sbom");
    assert_eq!(get(&s, "/api/v2.0/scanners/nope", &admin()).await.status(), 404);

    // The stored credential is encrypted: its plain text is in no file of the data dir.
    for f in files_under(&tmp.path().join("data")) {
        let bytes = std::fs::read(&f).unwrap_or_default();
        assert!(!bytes.windows(FAKE_KEY.len()).any(|w| w == FAKE_KEY.as_bytes()), "{} holds the key", f.display());
    }

    // Ping: good settings answer with the metadata; a wrong key or nobody listening is a 400.
    let ping = |body: Value| {
        let s = &s;
        async move { call(s, Method::POST, "/api/v2.0/scanners/ping", &admin(), Some(&body)).await }
    };
    let r = ping(good.clone()).await;
    assert_eq!(r.status(), 200);
    assert_eq!(body_json(r).await["scanner"]["name"], "Fake");
    let mut wrong = good.clone();
    wrong["access_credential"] = json!("wrong-key-0123456789");
    let msg = expect_error(ping(wrong).await, 400, "BAD_REQUEST").await;
    assert!(msg.contains("401"), "{msg}");
    let msg = expect_error(ping(json!({"name": "x", "url": "http://127.0.0.1:9"})).await, 400, "BAD_REQUEST").await;
    assert!(msg.contains("url"), "{msg}");
    // An update that does not repeat the credential keeps it.
    let up = json!({"name": "fake", "url": fake_url, "auth": "X-ScannerAdapter-API-Key", "description": "the fake"});
    assert_eq!(status(&s, Method::PUT, &format!("/api/v2.0/scanners/{id}"), &admin(), Some(&up)).await, 200);
    let one = ok_json(&s, &format!("/api/v2.0/scanners/{id}"), &admin()).await;
    assert_eq!((one["description"].as_str(), one["health"].as_str()), (Some("the fake"), Some("healthy")));

    // The default: the built-in scanner cannot be deleted or changed; the default cannot be deleted.
    let builtin = list[0]["uuid"].as_str().unwrap().to_string();
    let r = call(&s, Method::DELETE, &format!("/api/v2.0/scanners/{builtin}"), &admin(), None).await;
    expect_error(r, 403, "FORBIDDEN").await;
    let r = call(&s, Method::PUT, &format!("/api/v2.0/scanners/{builtin}"), &admin(), Some(&up)).await;
    expect_error(r, 403, "FORBIDDEN").await;
    let set_default = |who: String| {
        let s = &s;
        async move {
            status(s, Method::PATCH, &format!("/api/v2.0/scanners/{who}"), &admin(), Some(&json!({"is_default": true})))
                .await
        }
    };
    assert_eq!(set_default(id.clone()).await, 200);
    let list = ok_json(&s, "/api/v2.0/scanners", &admin()).await;
    assert_eq!((list[0]["is_default"].as_bool(), list[1]["is_default"].as_bool()), (Some(false), Some(true)));
    create_project(&s, &admin(), "p1", false).await;
    assert_eq!(ok_json(&s, "/api/v2.0/projects/p1/scanner", &admin()).await["uuid"], id, "the default");
    let r = call(&s, Method::DELETE, &format!("/api/v2.0/scanners/{id}"), &admin(), None).await;
    assert!(expect_error(r, 403, "FORBIDDEN").await.contains("default"));
    assert_eq!(set_default(builtin.clone()).await, 200);
    assert_eq!(ok_json(&s, "/api/v2.0/projects/p1/scanner", &admin()).await["uuid"], builtin);

    // A project may choose any enabled registration; a disabled one is no candidate, and a
    // project that chose it scans with the default.
    let choose = json!({"uuid": id});
    assert_eq!(status(&s, Method::PUT, "/api/v2.0/projects/p1/scanner", &admin(), Some(&choose)).await, 200);
    assert_eq!(ok_json(&s, "/api/v2.0/projects/p1/scanner", &admin()).await["uuid"], id);
    let cands = ok_json(&s, "/api/v2.0/projects/p1/scanner/candidates", &admin()).await;
    assert_eq!(cands.as_array().unwrap().len(), 2);
    let off = json!({"disabled": true});
    assert_eq!(status(&s, Method::PUT, &format!("/api/v2.0/scanners/{id}"), &admin(), Some(&off)).await, 200);
    let cands = ok_json(&s, "/api/v2.0/projects/p1/scanner/candidates", &admin()).await;
    assert_eq!(cands.as_array().unwrap().len(), 1);
    assert_eq!(ok_json(&s, "/api/v2.0/projects/p1/scanner", &admin()).await["uuid"], builtin);
    let r = call(&s, Method::PUT, "/api/v2.0/projects/p1/scanner", &admin(), Some(&choose)).await;
    assert!(expect_error(r, 400, "BAD_REQUEST").await.contains("disabled"));

    // Deleting answers with the registration; then it is gone.
    let r = call(&s, Method::DELETE, &format!("/api/v2.0/scanners/{id}"), &admin(), None).await;
    assert_eq!(r.status(), 200);
    assert_eq!(body_json(r).await["name"], "fake");
    assert_eq!(get(&s, &format!("/api/v2.0/scanners/{id}"), &admin()).await.status(), 404);
    assert_eq!(header(&get(&s, "/api/v2.0/scanners", &admin()).await, "x-total-count"), "1");

    // A deleted project's choice goes with it.
    let p2 = create_project(&s, &admin(), "p2", false).await;
    let choose = json!({"uuid": builtin});
    assert_eq!(status(&s, Method::PUT, "/api/v2.0/projects/p2/scanner", &admin(), Some(&choose)).await, 200);
    use berth_core::store::policies::PolicyStore;
    let store = berth_store_sqlite::SqliteStore::open(&s.data_dir.join("berth.db")).unwrap();
    assert_eq!(store.policies("project-scanner", p2).await.unwrap().len(), 1);
    assert_eq!(call(&s, Method::DELETE, "/api/v2.0/projects/p2", &admin(), None).await.status(), 200);
    assert!(store.policies("project-scanner", p2).await.unwrap().is_empty(), "the choice was left behind");
}

fn jwt_claims(authorization: &str) -> Value {
    let token = authorization.strip_prefix("Bearer ").expect("a Bearer authorization");
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

async fn scan_log(s: &Server, art: &str, o: &Value) -> String {
    let id = o["report_id"].as_str().unwrap();
    get(s, &format!("{art}/scan/{id}/log"), &admin()).await.text().await.unwrap()
}

/// A project whose scanner is an external adapter: the adapter gets a registry URL and a
/// token that pulls that one repository (it tries another one and is refused), its report
/// is stored and served like the built-in scanner's (report API, overview, prevent_vul),
/// SBOMs come from its SBOM capability, and a failing or hanging adapter ends the scan in
/// Error with the reason in the scan's log.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn external_scanner_adapter_scans_with_a_pull_token_for_one_repository() {
    let (fake, fake_url) = Fake::start().await;
    let tmp = tempfile::tempdir().unwrap();
    let s = Server::spawn(
        &tmp.path().join("data"),
        &[("BERTH_AUTH_MODE", "harbor"), ("BERTH_SCAN_EXTERNAL_TIMEOUT_SECS", "4")],
    );
    create_project(&s, &admin(), "ext", false).await;
    push_small_image_as(&s, &admin(), "ext/other", "v1", "another repository").await;
    let digest = push_layers(&s, "ext/app", "v1", &debian_layers()).await;
    let id = register(
        &s,
        json!({"name": "fake", "url": fake_url, "auth": "X-ScannerAdapter-API-Key", "access_credential": FAKE_KEY}),
    )
    .await;
    let choose = json!({"uuid": id});
    assert_eq!(status(&s, Method::PUT, "/api/v2.0/projects/ext/scanner", &admin(), Some(&choose)).await, 200);

    let art = "/api/v2.0/projects/ext/repositories/app/artifacts/v1";
    assert_eq!(status(&s, Method::POST, &format!("{art}/scan"), &admin(), None).await, 202);
    let o = wait_overview(&s, art, "vuln").await;
    assert_eq!(o["scan_status"], "Success", "{o} {}", scan_log(&s, art, &o).await);
    assert_eq!(o["severity"], "Critical");
    assert_eq!(o["scanner"], scanner());
    assert_eq!(o["summary"], json!({"total": 2, "fixable": 1, "summary": {"Critical": 1, "Low": 1}}));

    // What the adapter was asked, and what its credential could do.
    let (req, pulls) = {
        let st = fake.state.lock().unwrap();
        (st.requests[0].clone(), st.pulls.clone())
    };
    assert_eq!(req["registry"]["url"], format!("http://{}", s.addr));
    assert_eq!(
        req["artifact"],
        json!({"repository": "ext/app", "digest": digest, "tag": "v1", "mime_type": OCI_MANIFEST})
    );
    assert_eq!(req["enabled_capabilities"], json!([{"type": "vulnerability", "produces_mime_types": [V11]}]));
    assert_eq!(pulls, vec![("ext/app".to_string(), 200), ("ext/other".to_string(), 401)]);
    let claims = jwt_claims(req["registry"]["authorization"].as_str().unwrap());
    assert_eq!(
        claims["access"],
        json!([{"type": "repository", "name": "ext/app", "actions": ["pull", "scanner-pull"]}])
    );
    let lifetime = claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap();
    assert!(lifetime <= 4 + 60, "the token outlives the scan's deadline by at most a minute: {lifetime} s");

    // The report, as the report API shows it.
    let v = ok_json(&s, &format!("{art}/additions/vulnerabilities"), &admin()).await;
    let items = v[V11]["vulnerabilities"].as_array().unwrap();
    let ids: Vec<&str> = items.iter().map(|x| x["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["CVE-2099-0001", "CVE-2099-0002"]);
    assert_eq!(items[0]["artifact_digests"], json!([digest]));
    assert_eq!((items[0]["status"].as_str(), items[1]["status"].as_str()), (Some("fixed"), Some("affected")));
    assert_eq!(v[V11]["scanner"], scanner());

    // prevent_vul judges by it.
    let set = json!({"metadata": {"prevent_vul": "true", "severity": "high"}});
    assert_eq!(status(&s, Method::PUT, "/api/v2.0/projects/ext", &admin(), Some(&set)).await, 200);
    let r = admin()
        .apply(client().get(s.url("/v2/ext/app/manifests/v1")))
        .header("accept", OCI_MANIFEST)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 412);
    assert!(r.text().await.unwrap().contains("current image with 1 vulnerabilities"));
    let unset = json!({"metadata": {"prevent_vul": "false"}});
    assert_eq!(status(&s, Method::PUT, "/api/v2.0/projects/ext", &admin(), Some(&unset)).await, 200);

    // An SBOM from the adapter's SBOM capability.
    let body = json!({"scan_type": "sbom"});
    assert_eq!(status(&s, Method::POST, &format!("{art}/scan"), &admin(), Some(&body)).await, 202);
    let o = wait_overview(&s, art, "sbom").await;
    assert_eq!(o["scan_status"], "Success", "{o}");
    assert_eq!(o["scanner"], scanner());
    let doc = ok_json(&s, &format!("{art}/additions/sbom"), &admin()).await;
    assert_eq!(doc["packages"][0]["name"], "openssl");
    let req = fake.state.lock().unwrap().requests[1].clone();
    assert_eq!(req["enabled_capabilities"][0]["type"], "sbom");
    assert_eq!(req["enabled_capabilities"][0]["produces_mime_types"], json!([SBOM_MIME]));

    // An adapter that fails: Error, with its message in the log.
    let tiny = vec![tar_layer(&[("etc/os-release", b"ID=alpine\nVERSION_ID=3.19.1\n", 0o644)], true)];
    push_layers(&s, "ext/broken", "v1", &tiny).await;
    let art = "/api/v2.0/projects/ext/repositories/broken/artifacts/v1";
    assert_eq!(status(&s, Method::POST, &format!("{art}/scan"), &admin(), None).await, 202);
    let o = wait_overview(&s, art, "vuln").await;
    assert_eq!(o["scan_status"], "Error", "{o}");
    let log = scan_log(&s, art, &o).await;
    assert!(log.contains("boom: the fake adapter cannot scan this"), "{log}");

    // An adapter that never finishes: Error once the deadline (4 s here) passed.
    push_layers(&s, "ext/slow", "v1", &tiny).await;
    let art = "/api/v2.0/projects/ext/repositories/slow/artifacts/v1";
    assert_eq!(status(&s, Method::POST, &format!("{art}/scan"), &admin(), None).await, 202);
    let o = wait_overview(&s, art, "vuln").await;
    assert_eq!(o["scan_status"], "Error", "{o}");
    let log = scan_log(&s, art, &o).await;
    assert!(log.contains("did not produce the report") && log.contains("within 4 s"), "{log}");
}

/// Berth's built-in scanner as a Pluggable Scanner API adapter: off unless a key is
/// configured, the key required, bad requests refused naming the field; a second Berth
/// registers it and gets its findings (from the OSV data imported into the adapter's
/// Berth only) and SBOMs for an image that only the second Berth holds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn berth_serves_as_a_scanner_adapter_for_another_registry() {
    let tmp = tempfile::tempdir().unwrap();
    let key = "adapter-key-0123456789abcdef";
    let data_b = tmp.path().join("b");
    import(&data_b, OSV_FIXTURE);
    let b = Server::spawn(&data_b, &[("BERTH_AUTH_MODE", "harbor"), ("BERTH_SCAN_ADAPTER_API_KEY", key)]);
    let a = Server::spawn(&tmp.path().join("a"), &[("BERTH_AUTH_MODE", "harbor")]);

    // The adapter API itself.
    let md_url = b.url("/scanner-adapter/api/v1/metadata");
    assert_eq!(client().get(&md_url).send().await.unwrap().status(), 401);
    let r = client().get(&md_url).header("x-scanneradapter-api-key", "wrong").send().await.unwrap();
    assert_eq!(r.status(), 401);
    let r = client().get(&md_url).header("x-scanneradapter-api-key", key).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "content-type"), "application/vnd.scanner.adapter.metadata+json; version=1.0");
    let md = body_json(r).await;
    assert_eq!(md["scanner"]["name"], "Berth");
    assert!(md["capabilities"][0]["produces_mime_types"].as_array().unwrap().contains(&json!(V11)), "{md}");
    let r = client().get(&md_url).bearer_auth(key).send().await.unwrap();
    assert_eq!(r.status(), 200, "Bearer works too");
    let r =
        client().get(a.url("/scanner-adapter/api/v1/metadata")).header("x-scanneradapter-api-key", key).send().await;
    assert_eq!(r.unwrap().status(), 404, "off without a key");
    let scan_url = b.url("/scanner-adapter/api/v1/scan");
    let bad = json!({"registry": {"url": "http://127.0.0.1:9"},
                     "artifact": {"repository": "p/app", "digest": "nope", "mime_type": OCI_MANIFEST}});
    let r =
        client().post(&scan_url).header("x-scanneradapter-api-key", key).body(bad.to_string()).send().await.unwrap();
    assert_eq!(r.status(), 422);
    assert!(body_json(r).await["error"]["message"].as_str().unwrap().contains("artifact.digest"));
    let r = client().post(&scan_url).header("x-scanneradapter-api-key", key).body("{").send().await.unwrap();
    assert_eq!(r.status(), 400);
    let r = client()
        .get(b.url("/scanner-adapter/api/v1/scan/nope/report"))
        .header("x-scanneradapter-api-key", key)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);

    // A registers B as its scanner.
    let reg = json!({"name": "berth-b", "url": b.url("/scanner-adapter"), "auth": "X-ScannerAdapter-API-Key",
                     "access_credential": key});
    let r = call(&a, Method::POST, "/api/v2.0/scanners/ping", &admin(), Some(&reg)).await;
    assert_eq!(r.status(), 200);
    let id = register(&a, reg).await;
    create_project(&a, &admin(), "remote", false).await;
    let choose = json!({"uuid": id});
    assert_eq!(status(&a, Method::PUT, "/api/v2.0/projects/remote/scanner", &admin(), Some(&choose)).await, 200);
    push_layers(&a, "remote/app", "v1", &debian_layers()).await;
    let art = "/api/v2.0/projects/remote/repositories/app/artifacts/v1";
    assert_eq!(status(&a, Method::POST, &format!("{art}/scan"), &admin(), None).await, 202);
    let o = wait_overview(&a, art, "vuln").await;
    assert_eq!(o["scan_status"], "Success", "{o} {}", scan_log(&a, art, &o).await);
    assert_eq!(o["scanner"]["name"], "Berth");
    assert_eq!(
        o["summary"],
        json!({"total": 5, "fixable": 5, "summary": {"Critical": 1, "High": 1, "Medium": 2, "Unknown": 1}})
    );
    let v = ok_json(&a, &format!("{art}/additions/vulnerabilities"), &admin()).await;
    let rows: Vec<(String, String, String)> = v[V11]["vulnerabilities"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| {
            let f = |k: &str| x[k].as_str().unwrap_or("").to_string();
            (f("id"), f("package"), f("fix_version"))
        })
        .collect();
    let row = |a: &str, b: &str, c: &str| (a.to_string(), b.to_string(), c.to_string());
    assert_eq!(
        rows,
        vec![
            row("CVE-2024-0001", "libssl3", "3.0.11-1~deb12u3"),
            row("CVE-2024-0301", "lodash", "4.17.21"),
            row("CVE-2024-0201", "django", "3.2.1"),
            row("DEBIAN-CVE-2024-0004", "zlib1g", "1:1.2.13.dfsg-2"),
            row("DEBIAN-CVE-2024-0006", "bash", "5.2.15-3"),
        ]
    );

    // An SBOM through the adapter, with Bearer authentication this time.
    let up = json!({"auth": "Bearer", "access_credential": key});
    assert_eq!(status(&a, Method::PUT, &format!("/api/v2.0/scanners/{id}"), &admin(), Some(&up)).await, 200);
    let body = json!({"scan_type": "sbom"});
    assert_eq!(status(&a, Method::POST, &format!("{art}/scan"), &admin(), Some(&body)).await, 202);
    let o = wait_overview(&a, art, "sbom").await;
    assert_eq!(o["scan_status"], "Success", "{o}");
    let doc = ok_json(&a, &format!("{art}/additions/sbom"), &admin()).await;
    assert_eq!(doc["spdxVersion"], "SPDX-2.3");
    let names: Vec<&str> = doc["packages"].as_array().unwrap().iter().filter_map(|p| p["name"].as_str()).collect();
    assert!(names.contains(&"libssl3") && names.contains(&"django"), "{names:?}");
}
