//! Proxy-cache projects against a real CNCF Distribution as the upstream, seen through a
//! small front started by the test that forwards every request, counts them, and can
//! answer 503 (down) or 429 (rate-limited) instead, or stop listening altogether.
//! Pulls go through Berth with plain HTTP and with skopeo.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::json;

use crate::replication::{Distribution, V2, add_policy, add_registry, created_id, post, start, succeeded};
use crate::support::*;

const UP: u8 = 0;
const DOWN: u8 = 1;
const RATE_LIMITED: u8 = 2;

const ACCEPT: &str = "application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, \
    application/vnd.docker.distribution.manifest.v2+json, application/vnd.docker.distribution.manifest.list.v2+json";

/// The upstream as Berth sees it: a forwarding front of a Distribution.
struct Front {
    url: String,
    /// `"<METHOD> <path>"` → requests forwarded.
    counts: Arc<Mutex<HashMap<String, usize>>>,
    mode: Arc<AtomicU8>,
    task: tokio::task::JoinHandle<()>,
}

impl Front {
    /// Forwards to `upstream`; blob GETs are held `blob_delay` first, so that concurrent
    /// pulls really overlap the first fetch.
    async fn start(upstream: &str, blob_delay: Duration) -> Front {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let counts: Arc<Mutex<HashMap<String, usize>>> = Arc::default();
        let mode = Arc::new(AtomicU8::new(UP));
        let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
        let upstream = upstream.to_owned();
        let app = axum::Router::new().fallback({
            let (counts, mode) = (counts.clone(), mode.clone());
            move |method: axum::http::Method,
                  uri: axum::http::Uri,
                  headers: axum::http::HeaderMap,
                  body: axum::body::Bytes| {
                let (counts, mode, http, upstream) = (counts.clone(), mode.clone(), http.clone(), upstream.clone());
                async move {
                    use axum::response::IntoResponse;
                    match mode.load(Ordering::SeqCst) {
                        DOWN => return (axum::http::StatusCode::SERVICE_UNAVAILABLE, "down").into_response(),
                        RATE_LIMITED => {
                            return (axum::http::StatusCode::TOO_MANY_REQUESTS, "slow down").into_response();
                        }
                        _ => {}
                    }
                    let path = uri.path().to_owned();
                    *counts.lock().unwrap().entry(format!("{method} {path}")).or_default() += 1;
                    if method == axum::http::Method::GET && path.contains("/blobs/sha256:") {
                        tokio::time::sleep(blob_delay).await;
                    }
                    forward(&http, &upstream, method, uri, headers, body).await
                }
            }
        });
        let task = tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Front { url, counts, mode, task }
    }

    fn count(&self, method: &str, path: &str) -> usize {
        self.counts.lock().unwrap().get(&format!("{method} {path}")).copied().unwrap_or(0)
    }

    fn set(&self, mode: u8) {
        self.mode.store(mode, Ordering::SeqCst);
    }

    /// Stops listening: the upstream refuses connections from now on.
    async fn stop(self) {
        self.task.abort();
        let _ = self.task.await;
    }
}

/// Sends a request on to `upstream` and its answer back.
async fn forward(
    http: &reqwest::Client,
    upstream: &str,
    method: axum::http::Method,
    uri: axum::http::Uri,
    headers: axum::http::HeaderMap,
    body: axum::body::Bytes,
) -> axum::response::Response {
    let pq = uri.path_and_query().map(|p| p.as_str().to_owned()).unwrap_or_default();
    let m = reqwest::Method::from_bytes(method.as_str().as_bytes()).unwrap();
    let mut req = http.request(m, format!("{upstream}{pq}")).body(body.to_vec());
    for (k, v) in &headers {
        if k != "host" && k != "authorization" {
            req = req.header(k.as_str(), v.as_bytes());
        }
    }
    let res = req.send().await.unwrap();
    let status = axum::http::StatusCode::from_u16(res.status().as_u16()).unwrap();
    let mut out = axum::http::Response::builder().status(status);
    for (k, v) in res.headers() {
        let skip = ["transfer-encoding", "connection"].contains(&k.as_str())
            || (k == "content-length" && method != axum::http::Method::HEAD);
        if !skip {
            out = out.header(k.as_str(), v.as_bytes());
        }
    }
    let bytes = res.bytes().await.unwrap();
    out.body(axum::body::Body::from(bytes)).unwrap()
}

/// A stand-in for Docker Hub: its registry asks for a Bearer token from a token realm
/// (`/token`, given the account's Basic credentials), and its repository API lists a
/// namespace's repositories page by page (`/v2/repositories/<ns>/`); the images come from
/// a Distribution behind it.
struct FakeHub {
    url: String,
    /// The scopes tokens were asked for.
    scopes: Arc<Mutex<Vec<String>>>,
    _task: tokio::task::JoinHandle<()>,
}

impl FakeHub {
    const USER: (&'static str, &'static str) = ("hubuser", "hubpass");
    const TOKEN: &'static str = "hub-token-1";

    async fn start(upstream: &str) -> FakeHub {
        use axum::http::{HeaderMap, StatusCode, Uri};
        use axum::response::IntoResponse;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let scopes: Arc<Mutex<Vec<String>>> = Arc::default();
        let http = reqwest::Client::new();
        let (upstream, base) = (upstream.to_owned(), url.clone());
        let app = axum::Router::new().fallback({
            let scopes = scopes.clone();
            move |method: axum::http::Method, uri: Uri, headers: HeaderMap, body: axum::body::Bytes| {
                let (scopes, http, upstream, base) = (scopes.clone(), http.clone(), upstream.clone(), base.clone());
                async move {
                    use base64::Engine as _;
                    let auth = headers.get("authorization").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
                    let basic = format!(
                        "Basic {}",
                        base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", Self::USER.0, Self::USER.1))
                    );
                    let path = uri.path().to_owned();
                    let query = uri.query().unwrap_or("").to_owned();
                    if path == "/token" {
                        if auth != basic {
                            return (StatusCode::UNAUTHORIZED, "bad credentials").into_response();
                        }
                        for kv in query.split('&') {
                            if let Some(v) = kv.strip_prefix("scope=") {
                                scopes.lock().unwrap().push(v.replace("%3A", ":").replace("%2F", "/"));
                            }
                        }
                        let body = json!({"token": Self::TOKEN, "access_token": Self::TOKEN, "expires_in": 300});
                        return ([("content-type", "application/json")], body.to_string()).into_response();
                    }
                    if let Some(ns) = path.strip_prefix("/v2/repositories/") {
                        let ns = ns.trim_end_matches('/');
                        // Two pages, so the adapter must follow `next`.
                        let body = if query.contains("page=2") {
                            json!({"count": 2, "next": null, "results": [{"name": "busybox", "namespace": ns}]})
                        } else {
                            json!({"count": 2, "next": format!("{base}/v2/repositories/{ns}/?page=2&page_size=100"),
                                   "results": [{"name": "alpine", "namespace": ns}]})
                        };
                        return ([("content-type", "application/json")], body.to_string()).into_response();
                    }
                    if auth != format!("Bearer {}", Self::TOKEN) {
                        let challenge = format!("Bearer realm=\"{base}/token\",service=\"registry.docker.io\"");
                        return (StatusCode::UNAUTHORIZED, [("www-authenticate", challenge)], "{}").into_response();
                    }
                    forward(&http, &upstream, method, uri, headers, body).await
                }
            }
        });
        let task = tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        FakeHub { url, scopes, _task: task }
    }
}

fn v2_admin(s: &Server) -> (String, (&'static str, &'static str)) {
    (s.url(""), ("admin", ADMIN_PASSWORD))
}

/// A proxy project of registry `registry` (public, so anyone may pull).
async fn proxy_project(s: &Server, name: &str, registry: i64, extra: serde_json::Value) -> i64 {
    let mut body = json!({"project_name": name, "registry_id": registry, "metadata": {"public": "true"}});
    if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
        b.extend(e.clone());
    }
    created_id(post(s, "/projects", body).await, "proxy project").await
}

/// GET (or HEAD) of a manifest through Berth as admin: (status, digest header, body).
async fn pull_manifest(s: &Server, repo: &str, reference: &str) -> (u16, String, bytes::Bytes) {
    let r = admin_client()
        .get(s.url(&format!("/v2/{repo}/manifests/{reference}")))
        .header("accept", ACCEPT)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let d = header(&r, "docker-content-digest");
    (status, d, r.bytes().await.unwrap())
}

/// Pulls a blob through Berth and checks its bytes against its digest.
async fn pull_blob(s: &Server, repo: &str, digest: &str) {
    let r = admin_client().get(s.url(&format!("/v2/{repo}/blobs/{digest}"))).send().await.unwrap();
    assert_eq!(r.status(), 200, "GET blob {digest} of {repo}");
    assert_eq!(sha256(&r.bytes().await.unwrap()), digest, "blob {digest} of {repo}");
}

/// The config and layer digests of an image manifest.
fn blobs_of(manifest: &[u8]) -> Vec<String> {
    let v: serde_json::Value = serde_json::from_slice(manifest).unwrap();
    let mut out = vec![v["config"]["digest"].as_str().unwrap().to_owned()];
    out.extend(v["layers"].as_array().unwrap().iter().map(|l| l["digest"].as_str().unwrap().to_owned()));
    out
}

/// Waits until the artifact `reference` of `project/repo` is stored in Berth.
async fn wait_cached(s: &Server, project: &str, repo: &str, reference: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    let path =
        format!("/api/v2.0/projects/{project}/repositories/{}/artifacts/{reference}", repo.replace('/', "%252F"));
    loop {
        if get(s, &path, &admin()).await.status() == 200 {
            return;
        }
        assert!(Instant::now() < deadline, "{project}/{repo}:{reference} was not cached in time");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxy_cache_pulls_through_caches_and_serves_when_the_upstream_fails() {
    let Some(dist) = Distribution::start() else { return };
    let up = V2 { base: &dist.url, auth: None };
    let v1 = up.image("team/app", "v1", "first", 40_000).await;
    let front = Front::start(&dist.url, Duration::ZERO).await;
    let s = Server::start_harbor();
    let reg = add_registry(&s, "upstream", "docker-registry", &front.url, None).await;
    let pid = proxy_project(&s, "cache", reg, json!({})).await;

    // The project says what it caches; the metadata API does not show it as a key.
    let p = ok_json(&s, "/api/v2.0/projects/cache", &admin()).await;
    assert_eq!(p["registry_id"], reg);
    assert!(p["metadata"].get("registry_id").is_none(), "{p}");
    assert_eq!(ok_json(&s, &format!("/api/v2.0/projects/{pid}"), &admin()).await["registry_id"], reg);
    let plain = create_project(&s, &admin(), "plain", false).await;
    assert!(ok_json(&s, &format!("/api/v2.0/projects/{plain}"), &admin()).await.get("registry_id").is_none());

    // First pull: from the upstream, same bytes and digest.
    let (st, d, body) = pull_manifest(&s, "cache/team/app", "v1").await;
    assert_eq!((st, d.as_str()), (200, v1.as_str()));
    assert_eq!(sha256(&body), v1);
    let blobs = blobs_of(&body);
    for b in &blobs {
        pull_blob(&s, "cache/team/app", b).await;
    }
    wait_cached(&s, "cache", "team/app", "v1").await;
    for b in &blobs {
        assert_eq!(front.count("GET", &format!("/v2/team/app/blobs/{b}")), 1, "blob {b} fetched once");
    }
    // Cached content is the project's: it counts against its quota.
    let summary = ok_json(&s, "/api/v2.0/projects/cache/summary", &admin()).await;
    assert!(summary["quota"]["used"]["storage"].as_i64().unwrap() >= 40_000, "{summary}");

    // Second pull: a tag is checked upstream with a HEAD; the bytes come from the cache.
    let heads = front.count("HEAD", "/v2/team/app/manifests/v1");
    let (st, d, _) = pull_manifest(&s, "cache/team/app", "v1").await;
    assert_eq!((st, d.as_str()), (200, v1.as_str()));
    assert_eq!(front.count("HEAD", "/v2/team/app/manifests/v1"), heads + 1);
    for b in &blobs {
        pull_blob(&s, "cache/team/app", b).await;
        assert_eq!(front.count("GET", &format!("/v2/team/app/blobs/{b}")), 1, "blob {b} served from the cache");
    }
    // A cached manifest by digest needs no upstream request at all.
    let before = front.counts.lock().unwrap().values().sum::<usize>();
    assert_eq!(pull_manifest(&s, "cache/team/app", &v1).await.0, 200);
    assert_eq!(front.counts.lock().unwrap().values().sum::<usize>(), before);

    // Upstream down (503) or rate-limiting (429): the cached copy is served.
    for mode in [DOWN, RATE_LIMITED] {
        front.set(mode);
        let (st, d, _) = pull_manifest(&s, "cache/team/app", "v1").await;
        assert_eq!((st, d.as_str()), (200, v1.as_str()), "mode {mode}");
        // What was never cached cannot be served: the upstream's failure, clearly.
        let r = admin_client()
            .get(s.url("/v2/cache/team/other/manifests/v1"))
            .header("accept", ACCEPT)
            .send()
            .await
            .unwrap();
        let code = if mode == DOWN { (502, "UNKNOWN") } else { (429, "TOOMANYREQUESTS") };
        let msg = expect_error(r, code.0, code.1).await;
        assert!(msg.contains("upstream registry upstream"), "{msg}");
    }
    front.set(UP);

    // A tag moved upstream is seen on the next pull (and cached again).
    let v2 = up.image("team/app", "v1", "second", 30_000).await;
    assert_ne!(v1, v2);
    let (st, d, body) = pull_manifest(&s, "cache/team/app", "v1").await;
    assert_eq!((st, d.as_str()), (200, v2.as_str()));
    for b in blobs_of(&body) {
        pull_blob(&s, "cache/team/app", &b).await;
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let a = get(&s, "/api/v2.0/projects/cache/repositories/team%252Fapp/artifacts/v1", &admin()).await;
        if a.status() == 200 && body_json(a).await["digest"] == v2.as_str() {
            break;
        }
        assert!(Instant::now() < deadline, "the moved tag was not cached");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Unknown upstream repository or tag: MANIFEST_UNKNOWN; unknown blob: BLOB_UNKNOWN.
    let r = admin_client().get(s.url("/v2/cache/nothere/manifests/latest")).header("accept", ACCEPT).send().await;
    expect_error(r.unwrap(), 404, "MANIFEST_UNKNOWN").await;
    let r = admin_client().get(s.url("/v2/cache/team/app/manifests/nosuchtag")).header("accept", ACCEPT).send().await;
    expect_error(r.unwrap(), 404, "MANIFEST_UNKNOWN").await;
    let missing = sha256(b"not upstream");
    let r = admin_client().get(s.url(&format!("/v2/cache/team/app/blobs/{missing}"))).send().await;
    expect_error(r.unwrap(), 404, "BLOB_UNKNOWN").await;

    // Pushes are refused with Harbor's error; the cache's content can be deleted.
    let (base, auth) = v2_admin(&s);
    let r = client()
        .post(format!("{base}/v2/cache/team/app/blobs/uploads/"))
        .basic_auth(auth.0, Some(auth.1))
        .send()
        .await
        .unwrap();
    let msg = expect_error(r, 403, "DENIED").await;
    assert_eq!(msg, "can not push artifact to a proxy project: cache");
    let r = client()
        .put(format!("{base}/v2/cache/team/app/manifests/v9"))
        .basic_auth(auth.0, Some(auth.1))
        .header("content-type", "application/vnd.oci.image.manifest.v1+json")
        .body(body.to_vec())
        .send()
        .await
        .unwrap();
    expect_error(r, 403, "DENIED").await;

    // The upstream stopped altogether: what is cached is still served, by tag and digest.
    drop(dist);
    front.stop().await;
    let (st, d, _) = pull_manifest(&s, "cache/team/app", "v1").await;
    assert_eq!((st, d.as_str()), (200, v2.as_str()));
    assert_eq!(pull_manifest(&s, "cache/team/app", &v1).await.0, 200);
    for b in &blobs {
        pull_blob(&s, "cache/team/app", b).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxy_cache_skopeo_pulls_through_and_again_with_the_upstream_stopped() {
    if !tool_available("skopeo") {
        return;
    }
    let Some(dist) = Distribution::start() else { return };
    let up = V2 { base: &dist.url, auth: None };
    let digest = up.image("tools/busy", "1.0", "skopeo", 20_000).await;
    let s = Server::start_harbor();
    let reg = add_registry(&s, "dist", "docker-registry", &dist.url, None).await;
    proxy_project(&s, "mirror", reg, json!({})).await;
    let tmp = tempfile::tempdir().unwrap();
    let creds = format!("admin:{ADMIN_PASSWORD}");
    let src = format!("docker://{}/mirror/tools/busy:1.0", s.addr);
    let copy = |dest: &str| {
        let d = format!("oci:{}:1.0", tmp.path().join(dest).display());
        run(&["skopeo", "copy", "--src-tls-verify=false", "--src-creds", &creds, &src, &d]);
    };
    let inspect = || {
        let raw = run(&["skopeo", "inspect", "--raw", "--tls-verify=false", "--creds", &creds, &src]);
        sha256(raw.as_bytes())
    };
    copy("first");
    assert_eq!(inspect(), digest, "same digest through the proxy");
    wait_cached(&s, "mirror", "tools/busy", "1.0").await;
    drop(dist);
    copy("second");
    assert_eq!(inspect(), digest, "served from the cache with the upstream stopped");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxy_cache_fetches_an_uncached_blob_once_for_concurrent_pulls() {
    let Some(dist) = Distribution::start() else { return };
    let up = V2 { base: &dist.url, auth: None };
    let layer: Vec<u8> = (0..300_000u32).map(|i| (i.wrapping_mul(2654435761) >> 13) as u8).collect();
    let d = up.blob("big/blob", &layer).await;
    let front = Front::start(&dist.url, Duration::from_millis(500)).await;
    let s = Server::start_harbor();
    let reg = add_registry(&s, "upstream", "docker-registry", &front.url, None).await;
    proxy_project(&s, "px", reg, json!({})).await;
    let pulls: Vec<_> = (0..8).map(|_| pull_blob(&s, "px/big/blob", &d)).collect();
    futures_util::future::join_all(pulls).await;
    assert_eq!(front.count("GET", &format!("/v2/big/blob/blobs/{d}")), 1, "one upstream fetch");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxy_cache_fetches_an_uncached_blob_once_per_cluster_on_postgresql() {
    if !crate::ha_postgres::pg_available() {
        return;
    }
    let Some(dist) = Distribution::start() else { return };
    let up = V2 { base: &dist.url, auth: None };
    let layer: Vec<u8> = (0..200_000u32).map(|i| (i.wrapping_mul(40503) >> 7) as u8).collect();
    let d = up.blob("shared/blob", &layer).await;
    let front = Front::start(&dist.url, Duration::from_millis(500)).await;
    let db = crate::ha_postgres::PgDb::create();
    let tmp = tempfile::tempdir().unwrap();
    let storage = tmp.path().join("storage");
    let a = crate::ha_postgres::start_instance(&tmp.path().join("a"), &db.url(), &storage);
    let b = crate::ha_postgres::start_instance(&tmp.path().join("b"), &db.url(), &storage);
    let reg = add_registry(&a, "upstream", "docker-registry", &front.url, None).await;
    proxy_project(&a, "px", reg, json!({})).await;
    let mut pulls = Vec::new();
    for i in 0..8 {
        let s = if i % 2 == 0 { &a } else { &b };
        pulls.push(pull_blob(s, "px/shared/blob", &d));
    }
    futures_util::future::join_all(pulls).await;
    assert_eq!(front.count("GET", &format!("/v2/shared/blob/blobs/{d}")), 1, "one upstream fetch for the cluster");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxy_cache_obeys_the_project_quota() {
    let Some(dist) = Distribution::start() else { return };
    let up = V2 { base: &dist.url, auth: None };
    let digest = up.image("app", "v1", "quota", 50_000).await;
    let front = Front::start(&dist.url, Duration::ZERO).await;
    let s = Server::start_harbor();
    let reg = add_registry(&s, "upstream", "docker-registry", &front.url, None).await;
    proxy_project(&s, "small", reg, json!({"storage_limit": 10_000})).await;
    // Served (passed through), but what exceeds the quota is not cached.
    let (st, d, body) = pull_manifest(&s, "small/app", "v1").await;
    assert_eq!((st, d.as_str()), (200, digest.as_str()));
    let layer = blobs_of(&body)[1].clone();
    pull_blob(&s, "small/app", &layer).await;
    pull_blob(&s, "small/app", &layer).await;
    assert!(front.count("GET", &format!("/v2/app/blobs/{layer}")) >= 2, "not cached: fetched again");
    let summary = ok_json(&s, "/api/v2.0/projects/small/summary", &admin()).await;
    let used = summary["quota"]["used"]["storage"].as_i64().unwrap();
    assert!(used <= 10_000, "usage stays within the limit: {summary}");
}

/// The `docker-hub` adapter against a stand-in Hub: the token realm with the account's
/// credentials, `library/` for single names, Hub's paged repository API. A pull
/// replication mirrors `library/**`; a proxy project pulls `alpine` as `library/alpine`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docker_hub_adapter_mirrors_and_proxies_through_a_fake_hub() {
    let Some(dist) = Distribution::start() else { return };
    let up = V2 { base: &dist.url, auth: None };
    let alpine = up.image("library/alpine", "3", "hub-alpine", 1_000).await;
    let busybox = up.image("library/busybox", "1", "hub-busybox", 1_000).await;
    let hub = FakeHub::start(&dist.url).await;
    let s = Server::start_harbor();
    let reg = add_registry(&s, "hub", "docker-hub", &hub.url, Some(FakeHub::USER)).await;
    let r = post(&s, "/registries/ping", json!({"id": reg})).await;
    assert_eq!(r.status(), 200, "ping through the token realm: {:?}", r.text().await);
    let r = post(
        &s,
        "/registries/ping",
        json!({"type": "docker-hub", "url": hub.url, "access_key": "hubuser", "access_secret": "wrong"}),
    )
    .await;
    assert_eq!(r.status(), 400, "wrong Hub credentials are refused");

    // Mirror: Hub has no catalog; the name filter's namespace is listed through its API.
    create_project(&s, &admin(), "hubmirror", false).await;
    let p = add_policy(
        &s,
        json!({"name": "from-hub", "src_registry": {"id": reg}, "dest_namespace": "hubmirror",
               "dest_namespace_replace_count": 1, "filters": [{"type": "name", "value": "library/**"}]}),
    )
    .await;
    let exec = start(&s, p).await;
    succeeded(&s, exec).await;
    let (base, auth) = v2_admin(&s);
    let berth = V2 { base: &base, auth: Some(auth) };
    assert_eq!(berth.digest("hubmirror/alpine", "3").await.as_deref(), Some(alpine.as_str()));
    assert_eq!(berth.digest("hubmirror/busybox", "1").await.as_deref(), Some(busybox.as_str()), "second page");

    // Proxy: `dockerhub/alpine` is Hub's `library/alpine`.
    proxy_project(&s, "dockerhub", reg, json!({})).await;
    let (st, d, body) = pull_manifest(&s, "dockerhub/alpine", "3").await;
    assert_eq!((st, d.as_str()), (200, alpine.as_str()));
    for b in blobs_of(&body) {
        pull_blob(&s, "dockerhub/alpine", &b).await;
    }
    let scopes = hub.scopes.lock().unwrap().clone();
    assert!(scopes.iter().any(|s| s == "repository:library/alpine:pull"), "{scopes:?}");
}

#[tokio::test]
async fn proxy_cache_projects_are_validated() {
    let s = Server::start_harbor();
    let reg = add_registry(&s, "somewhere", "docker-registry", "http://127.0.0.1:9", None).await;
    for (id, field) in [(999, "registry_id"), (0, "registry_id")] {
        let r = post(&s, "/projects", json!({"project_name": "bad", "registry_id": id})).await;
        let msg = expect_error(r, 400, "BAD_REQUEST").await;
        assert!(msg.contains(field), "{msg}");
    }
    // Only system administrators create proxy projects.
    create_user(&s, "dev").await;
    let r = call(
        &s,
        Method::POST,
        "/api/v2.0/projects",
        &user("dev"),
        Some(&json!({"project_name": "mine", "registry_id": reg})),
    )
    .await;
    expect_error(r, 403, "FORBIDDEN").await;
    proxy_project(&s, "px", reg, json!({})).await;
    // Its registry cannot be changed, nor its registry_id removed as metadata.
    let other = add_registry(&s, "other", "docker-registry", "http://127.0.0.1:10", None).await;
    let r = call(&s, Method::PUT, "/api/v2.0/projects/px", &admin(), Some(&json!({"registry_id": other}))).await;
    let msg = expect_error(r, 400, "BAD_REQUEST").await;
    assert!(msg.contains("registry_id"), "{msg}");
    let r = call(&s, Method::PUT, "/api/v2.0/projects/px", &admin(), Some(&json!({"registry_id": reg}))).await;
    assert_eq!(r.status(), 200);
    let r = call(&s, Method::DELETE, "/api/v2.0/projects/px/metadatas/registry_id", &admin(), None).await;
    expect_error(r, 404, "NOT_FOUND").await;
    // A registry a proxy project uses cannot be deleted.
    let r = call(&s, Method::DELETE, &format!("/api/v2.0/registries/{reg}"), &admin(), None).await;
    let msg = expect_error(r, 412, "PRECONDITION").await;
    assert!(msg.contains("px"), "{msg}");
}
