//! Replication against real registries: a CNCF Distribution (`docker-registry`, started
//! here with its own configuration on a loopback port and a temp dir) and a second Berth.
//! Push- and pull-based runs of single images and multi-arch indexes (digests equal on
//! both sides), filters and namespace rewriting, event-based runs and deletion, errors
//! of unreachable and refusing endpoints, stop, and the API's shapes and field errors.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{Value, json};

use crate::support::*;

/// A throwaway CNCF Distribution on 127.0.0.1, killed on drop.
pub(crate) struct Distribution {
    pub(crate) url: String,
    child: Child,
    _tmp: tempfile::TempDir,
}

impl Distribution {
    pub(crate) fn start() -> Option<Distribution> {
        if !tool_available("docker-registry") {
            eprintln!("docker-registry is not installed; skipped (scripts/test.sh installs it)");
            return None;
        }
        let tmp = tempfile::tempdir().unwrap();
        // A free port: bound, released, then given to the registry (it cannot report one).
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let config = tmp.path().join("config.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n",
                tmp.path().join("data").display()
            ),
        )
        .unwrap();
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn docker-registry");
        let d = Distribution { url: format!("http://127.0.0.1:{port}"), child, _tmp: tmp };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(s) = std::net::TcpStream::connect(("127.0.0.1", port)) {
                drop(s);
                return Some(d);
            }
            assert!(Instant::now() < deadline, "docker-registry did not start listening");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Distribution {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Where to push directly over `/v2`: a base URL and optional Basic credentials.
pub(crate) struct V2<'a> {
    pub(crate) base: &'a str,
    pub(crate) auth: Option<(&'a str, &'a str)>,
}

impl V2<'_> {
    pub(crate) fn req(&self, m: Method, path: &str) -> reqwest::RequestBuilder {
        let r = client().request(m, format!("{}{path}", self.base));
        match self.auth {
            Some((u, p)) => r.basic_auth(u, Some(p)),
            None => r,
        }
    }

    pub(crate) async fn blob(&self, repo: &str, bytes: &[u8]) -> String {
        let d = sha256(bytes);
        let r = self.req(Method::POST, &format!("/v2/{repo}/blobs/uploads/")).send().await.unwrap();
        assert_eq!(r.status(), 202, "start upload to {repo}");
        let loc = header(&r, "location");
        let url = if loc.starts_with("http") { loc } else { format!("{}{loc}", self.base) };
        let sep = if url.contains('?') { '&' } else { '?' };
        let mut put = client().put(format!("{url}{sep}digest={d}")).body(bytes.to_vec());
        if let Some((u, p)) = self.auth {
            put = put.basic_auth(u, Some(p));
        }
        let r = put.send().await.unwrap();
        assert_eq!(r.status(), 201, "finish upload to {repo}: {:?}", r.text().await);
        d
    }

    pub(crate) async fn manifest(&self, repo: &str, reference: &str, media_type: &str, body: &str) -> String {
        let r = self
            .req(Method::PUT, &format!("/v2/{repo}/manifests/{reference}"))
            .header("content-type", media_type)
            .body(body.to_owned())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201, "push manifest {repo}:{reference}: {:?}", r.text().await);
        sha256(body.as_bytes())
    }

    /// A small image (config + a layer of `layer_size` bytes, distinct per seed).
    pub(crate) async fn image(&self, repo: &str, tag: &str, seed: &str, layer_size: usize) -> String {
        let config = format!(r#"{{"architecture":"amd64","os":"linux","seed":"{seed}"}}"#);
        let mut layer = format!("layer for {seed}\n").into_bytes();
        let mut x: u32 = seed.bytes().fold(7, |a, b| a.wrapping_mul(31).wrapping_add(b.into()));
        while layer.len() < layer_size {
            // Incompressible, so a speed limit really limits.
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            layer.extend_from_slice(&x.to_le_bytes());
        }
        let cd = self.blob(repo, config.as_bytes()).await;
        let ld = self.blob(repo, &layer).await;
        let m = image_manifest((&cd, config.len()), &[(&ld, layer.len())]);
        self.manifest(repo, tag, "application/vnd.oci.image.manifest.v1+json", &m).await
    }

    /// A two-platform index tagged `tag`; returns (index digest, child digests).
    pub(crate) async fn index(&self, repo: &str, tag: &str, seed: &str) -> (String, Vec<String>) {
        let mut children = Vec::new();
        let mut entries = Vec::new();
        for arch in ["amd64", "arm64"] {
            let config = format!(r#"{{"architecture":"{arch}","os":"linux","seed":"{seed}"}}"#);
            let layer = format!("{arch} layer for {seed}");
            let cd = self.blob(repo, config.as_bytes()).await;
            let ld = self.blob(repo, layer.as_bytes()).await;
            let m = image_manifest((&cd, config.len()), &[(&ld, layer.len())]);
            let d = sha256(m.as_bytes());
            self.manifest(repo, &d, "application/vnd.oci.image.manifest.v1+json", &m).await;
            entries.push(format!(
                r#"{{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"{d}","size":{},"platform":{{"architecture":"{arch}","os":"linux"}}}}"#,
                m.len()
            ));
            children.push(d);
        }
        let index = format!(
            r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{}]}}"#,
            entries.join(",")
        );
        let d = self.manifest(repo, tag, "application/vnd.oci.image.index.v1+json", &index).await;
        (d, children)
    }

    /// The digest `reference` resolves to, if any.
    pub(crate) async fn digest(&self, repo: &str, reference: &str) -> Option<String> {
        let r = self
            .req(Method::HEAD, &format!("/v2/{repo}/manifests/{reference}"))
            .header(
                "accept",
                "application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, \
                 application/vnd.docker.distribution.manifest.v2+json, application/vnd.docker.distribution.manifest.list.v2+json",
            )
            .send()
            .await
            .unwrap();
        match r.status().as_u16() {
            200 => Some(header(&r, "docker-content-digest")),
            // Berth answers for a project that does not exist (yet) as for one the
            // caller may not see.
            404 | 401 => None,
            s => panic!("HEAD {repo}:{reference}: {s}"),
        }
    }
}

fn berth_v2(s: &Server) -> (String, (&'static str, &'static str)) {
    (s.url(""), ("admin", ADMIN_PASSWORD))
}

pub(crate) async fn post(s: &Server, path: &str, body: Value) -> reqwest::Response {
    call(s, Method::POST, &format!("/api/v2.0{path}"), &admin(), Some(&body)).await
}

pub(crate) async fn created_id(r: reqwest::Response, what: &str) -> i64 {
    let status = r.status();
    if status != 201 {
        panic!("create {what}: {status} {}", r.text().await.unwrap_or_default());
    }
    location_id(&r)
}

pub(crate) async fn add_registry(s: &Server, name: &str, kind: &str, url: &str, cred: Option<(&str, &str)>) -> i64 {
    let mut body = json!({"name": name, "type": kind, "url": url, "insecure": true});
    if let Some((k, p)) = cred {
        body["credential"] = json!({"type": "basic", "access_key": k, "access_secret": p});
    }
    created_id(post(s, "/registries", body).await, "registry").await
}

pub(crate) async fn add_policy(s: &Server, body: Value) -> i64 {
    created_id(post(s, "/replication/policies", body).await, "policy").await
}

pub(crate) async fn start(s: &Server, policy: i64) -> i64 {
    created_id(post(s, "/replication/executions", json!({"policy_id": policy})).await, "execution").await
}

/// Waits until the execution has ended; returns it.
async fn finished(s: &Server, exec: i64, within: Duration) -> Value {
    let deadline = Instant::now() + within;
    loop {
        let e = ok_json(s, &format!("/api/v2.0/replication/executions/{exec}"), &admin()).await;
        if e["status"] != "InProgress" {
            return e;
        }
        if Instant::now() > deadline {
            let tasks = ok_json(s, &format!("/api/v2.0/replication/executions/{exec}/tasks"), &admin()).await;
            panic!("execution {exec} still running after {within:?}: {e} {tasks}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn task_logs(s: &Server, exec: i64) -> String {
    let tasks = ok_json(s, &format!("/api/v2.0/replication/executions/{exec}/tasks"), &admin()).await;
    let mut out = String::new();
    for t in tasks.as_array().unwrap() {
        let r = get(s, &format!("/api/v2.0/replication/executions/{exec}/tasks/{}/log", t["id"]), &admin()).await;
        assert_eq!(r.status(), 200);
        out.push_str(&r.text().await.unwrap());
    }
    out
}

pub(crate) async fn succeeded(s: &Server, exec: i64) -> Value {
    let e = finished(s, exec, Duration::from_secs(60)).await;
    assert_eq!(e["status"], "Succeed", "{e}\n{}", task_logs(s, exec).await);
    e
}

/// Keeps asking until `f` gives `Some`, for at most `within`.
async fn eventually<T, F: std::future::Future<Output = Option<T>>>(
    within: Duration,
    what: &str,
    mut f: impl FnMut() -> F,
) -> T {
    let deadline = Instant::now() + within;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(Instant::now() < deadline, "{what}: not within {within:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn push_replication_to_distribution_keeps_digests_and_rewrites_namespaces() {
    let Some(dist) = Distribution::start() else { return };
    let s = Server::start_harbor();
    let (base, auth) = berth_v2(&s);
    let berth = V2 { base: &base, auth: Some(auth) };
    let remote = V2 { base: &dist.url, auth: None };
    create_project(&s, &admin(), "team", false).await;
    let img = berth.image("team/sub/app", "v1", "push-one", 4096).await;
    let (index, children) = berth.index("team/sub/app", "multi", "push-index").await;
    berth.image("team/other", "v1", "filtered-out", 100).await;
    let dev = berth.image("team/sub/app", "dev", "tag-filtered-out", 100).await;

    let reg = add_registry(&s, "dist", "docker-registry", &dist.url, None).await;
    let policy = add_policy(
        &s,
        json!({
            "name": "to-dist",
            "src_registry": null,
            "dest_registry": {"id": reg},
            "dest_namespace": "mirror",
            "dest_namespace_replace_count": 1,
            "filters": [{"type": "name", "value": "team/sub/**"}, {"type": "tag", "value": "dev", "decoration": "excludes"}],
            "trigger": {"type": "manual"},
            "enabled": true,
        }),
    )
    .await;
    let exec = start(&s, policy).await;
    let e = succeeded(&s, exec).await;
    assert_eq!(e["trigger"], "manual");
    assert_eq!(e["policy_id"], policy);
    assert_eq!(e["total"], 1, "one repository: {e}");

    // team/sub/app → mirror/sub/app (the first namespace part replaced).
    assert_eq!(remote.digest("mirror/sub/app", "v1").await, Some(img), "image digest equal on both sides");
    assert_eq!(remote.digest("mirror/sub/app", "multi").await, Some(index.clone()), "index digest equal");
    for c in &children {
        assert_eq!(remote.digest("mirror/sub/app", c).await.as_deref(), Some(c.as_str()), "child {c}");
    }
    assert_eq!(remote.digest("mirror/sub/app", "dev").await, None, "excluded tag not copied");
    assert_eq!(remote.digest("mirror/sub/app", &dev).await, None);
    assert_eq!(remote.digest("mirror/other", "v1").await, None, "name filter");

    // Tasks in Harbor's shape, and a log that says what happened.
    let tasks = ok_json(&s, &format!("/api/v2.0/replication/executions/{exec}/tasks"), &admin()).await;
    assert_eq!(tasks[0]["operation"], "plan", "{tasks}");
    let t = &tasks[1];
    assert_eq!(t["status"], "Succeed");
    assert_eq!(t["operation"], "copy");
    assert!(t["src_resource"].as_str().unwrap().starts_with("team/sub/app:["), "{t}");
    assert!(t["dst_resource"].as_str().unwrap().starts_with("mirror/sub/app:["), "{t}");
    let log = task_logs(&s, exec).await;
    assert!(log.contains("pushed mirror/sub/app:multi"), "{log}");

    // A second run finds everything there and sends nothing.
    let again = start(&s, policy).await;
    succeeded(&s, again).await;
    let log = task_logs(&s, again).await;
    assert!(log.contains("already") && log.contains("0 blob(s) sent"), "{log}");

    let list = ok_json(&s, &format!("/api/v2.0/replication/executions?policy_id={policy}"), &admin()).await;
    assert_eq!(list.as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn pull_replication_from_distribution_with_tag_filter() {
    let Some(dist) = Distribution::start() else { return };
    let s = Server::start_harbor();
    let (base, auth) = berth_v2(&s);
    let berth = V2 { base: &base, auth: Some(auth) };
    let remote = V2 { base: &dist.url, auth: None };
    let v1 = remote.image("upstream/tool", "v1.0", "pull-v1", 2048).await;
    let (index, _) = remote.index("upstream/tool", "v2.0", "pull-index").await;
    remote.image("upstream/tool", "latest", "pull-latest", 100).await;
    remote.image("elsewhere/x", "v1.0", "pull-elsewhere", 100).await;

    let reg = add_registry(&s, "dist", "docker-registry", &dist.url, None).await;
    let policy = add_policy(
        &s,
        json!({
            "name": "from-dist",
            "src_registry": {"id": reg},
            "dest_registry": {"id": 0},
            "dest_namespace": "pulled",
            // Chunked PATCHes into Berth's own upload path.
            "copy_by_chunk": true,
            "dest_namespace_replace_count": 0,
            "filters": [{"type": "name", "value": "upstream/**"}, {"type": "tag", "value": "v*"}],
        }),
    )
    .await;
    let exec = start(&s, policy).await;
    succeeded(&s, exec).await;
    let log = task_logs(&s, exec).await;
    assert!(log.contains("in chunks"), "copy_by_chunk sends chunks: {log}");
    // Replace count 0: the whole path goes under the namespace; the project is created.
    assert_eq!(berth.digest("pulled/upstream/tool", "v1.0").await, Some(v1));
    assert_eq!(berth.digest("pulled/upstream/tool", "v2.0").await, Some(index));
    assert_eq!(berth.digest("pulled/upstream/tool", "latest").await, None, "tag filter");
    assert_eq!(berth.digest("pulled/elsewhere/x", "v1.0").await, None, "name filter");
    let p = ok_json(&s, "/api/v2.0/projects/pulled", &admin()).await;
    assert_eq!(p["name"], "pulled");
    // Seen by Harbor's API like any pushed artifact.
    let arts = ok_json(&s, "/api/v2.0/projects/pulled/repositories/upstream%252Ftool/artifacts", &admin()).await;
    assert_eq!(arts.as_array().unwrap().len(), 2, "{arts}");
}

#[tokio::test]
async fn berth_to_berth_event_based_replication_and_deletion() {
    let a = Server::start_harbor();
    let b = Server::start_harbor();
    let (a_base, auth) = berth_v2(&a);
    let (b_base, _) = berth_v2(&b);
    let src = V2 { base: &a_base, auth: Some(auth) };
    let dst = V2 { base: &b_base, auth: Some(auth) };
    create_project(&a, &admin(), "team", false).await;

    let reg = add_registry(&a, "other-berth", "harbor", &b.url(""), Some(("admin", ADMIN_PASSWORD))).await;
    // The secret is stored encrypted and never shown again.
    let r = ok_json(&a, &format!("/api/v2.0/registries/{reg}"), &admin()).await;
    assert_eq!(r["credential"]["access_key"], "admin");
    assert_eq!(r["credential"]["access_secret"], "*****", "{r}");
    assert!(!r.to_string().contains(ADMIN_PASSWORD));
    let r = post(&a, "/registries/ping", json!({"id": reg})).await;
    assert_eq!(r.status(), 200, "ping with the stored secret: {:?}", r.text().await);
    let info = ok_json(&a, &format!("/api/v2.0/registries/{reg}/info"), &admin()).await;
    assert_eq!(info["type"], "harbor");

    add_policy(
        &a,
        json!({
            "name": "on-push",
            "dest_registry": {"id": reg},
            "trigger": {"type": "event_based"},
            "replicate_deletion": true,
            "filters": [{"type": "name", "value": "team/**"}],
        }),
    )
    .await;
    let pushed = Instant::now();
    let d = src.image("team/app", "v1", "event", 1000).await;
    let got =
        eventually(Duration::from_secs(30), "event-based replication", || async { dst.digest("team/app", "v1").await })
            .await;
    assert_eq!(got, d);
    eprintln!("a push replicated in {:?}", pushed.elapsed());
    let execs = ok_json(&a, "/api/v2.0/replication/executions", &admin()).await;
    assert_eq!(execs[0]["trigger"], "event_based", "{execs}");

    // The destination project was created, and it is private.
    let p = ok_json(&b, "/api/v2.0/projects/team", &admin()).await;
    assert_eq!(p["metadata"]["public"], "false");

    // Deleting the artifact on A deletes it on B.
    let r =
        call(&a, Method::DELETE, &format!("/api/v2.0/projects/team/repositories/app/artifacts/{d}"), &admin(), None)
            .await;
    assert_eq!(r.status(), 200);
    eventually(Duration::from_secs(30), "deletion replication", || async {
        dst.digest("team/app", &d).await.is_none().then_some(())
    })
    .await;

    // A push by digest alone (no tag) is replicated too, by digest.
    let config = r#"{"architecture":"amd64","os":"linux","seed":"untagged"}"#;
    let layer = b"an untagged image's layer";
    let cd = src.blob("team/app", config.as_bytes()).await;
    let ld = src.blob("team/app", layer).await;
    let m = image_manifest((&cd, config.len()), &[(&ld, layer.len())]);
    let md = src.manifest("team/app", &sha256(m.as_bytes()), "application/vnd.oci.image.manifest.v1+json", &m).await;
    let got = eventually(Duration::from_secs(30), "replication of a digest-only push", || async {
        dst.digest("team/app", &md).await
    })
    .await;
    assert_eq!(got, md);
}

#[tokio::test]
async fn unreachable_and_refusing_endpoints_give_clear_errors() {
    let a = Server::start_harbor();
    let b = Server::start_harbor();
    create_project(&a, &admin(), "team", false).await;
    let (base, auth) = berth_v2(&a);
    V2 { base: &base, auth: Some(auth) }.image("team/app", "v1", "errors", 100).await;

    // Wrong credentials: the ping says so, and a run fails with the remote's refusal.
    let wrong = add_registry(&a, "wrong", "harbor", &b.url(""), Some(("admin", "not-the-password"))).await;
    let r = post(&a, "/registries/ping", json!({"id": wrong})).await;
    assert_eq!(r.status(), 400);
    let text = r.text().await.unwrap();
    assert!(text.contains("failed to ping") && text.contains("401"), "{text}");
    let p = add_policy(&a, json!({"name": "wrong-creds", "dest_registry": {"id": wrong}})).await;
    let exec = start(&a, p).await;
    let e = finished(&a, exec, Duration::from_secs(60)).await;
    assert_eq!(e["status"], "Failed", "{e}");
    let msg = e["status_text"].as_str().unwrap();
    assert!(msg.contains("401") || msg.to_lowercase().contains("unauthorized"), "{e}");

    // Nothing listening: the run says the connection failed (it retries meanwhile).
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let down = add_registry(&a, "down", "docker-registry", &format!("http://127.0.0.1:{port}"), None).await;
    let r = post(&a, "/registries/ping", json!({"id": down})).await;
    assert_eq!(r.status(), 400);
    let p = add_policy(&a, json!({"name": "unreachable", "dest_registry": {"id": down}})).await;
    let exec = start(&a, p).await;
    let text = eventually(Duration::from_secs(30), "an error on the execution", || async {
        let e = ok_json(&a, &format!("/api/v2.0/replication/executions/{exec}"), &admin()).await;
        Some(e["status_text"].as_str().unwrap().to_owned()).filter(|t| !t.is_empty())
    })
    .await;
    assert!(text.contains(&format!("127.0.0.1:{port}")), "names the endpoint: {text}");
    assert!(text.to_lowercase().contains("connect"), "says it could not connect: {text}");
    let r = call(&a, Method::PUT, &format!("/api/v2.0/replication/executions/{exec}"), &admin(), None).await;
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn stop_ends_a_running_copy_within_seconds() {
    let Some(dist) = Distribution::start() else { return };
    let tmp = tempfile::tempdir().unwrap();
    // A short lease: the heartbeat that brings the stop request comes every second.
    let s = Server::spawn(&tmp.path().join("data"), &[("BERTH_AUTH_MODE", "harbor"), ("BERTH_JOBS_LEASE_SECS", "3")]);
    create_project(&s, &admin(), "big", false).await;
    let (base, auth) = berth_v2(&s);
    V2 { base: &base, auth: Some(auth) }.image("big/blob", "v1", "slow", 4 << 20).await;
    let reg = add_registry(&s, "dist", "docker-registry", &dist.url, None).await;
    // 64 KiB/s: four MiB take a minute.
    let p = add_policy(&s, json!({"name": "slow", "dest_registry": {"id": reg}, "speed": 64})).await;
    let exec = start(&s, p).await;
    eventually(Duration::from_secs(30), "a copy task running", || async {
        let t = ok_json(&s, &format!("/api/v2.0/replication/executions/{exec}/tasks"), &admin()).await;
        t.as_array().unwrap().iter().any(|t| t["operation"] == "copy" && t["status"] == "InProgress").then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let asked = Instant::now();
    let r = call(&s, Method::PUT, &format!("/api/v2.0/replication/executions/{exec}"), &admin(), None).await;
    assert_eq!(r.status(), 200);
    let e = finished(&s, exec, Duration::from_secs(15)).await;
    assert_eq!(e["status"], "Stopped", "{e}");
    assert!(asked.elapsed() < Duration::from_secs(10), "stopped in {:?}", asked.elapsed());
    let remote = V2 { base: &dist.url, auth: None };
    assert_eq!(remote.digest("big/blob", "v1").await, None, "no manifest pushed");
}

#[tokio::test]
async fn the_api_validates_and_names_the_field() {
    let s = Server::start_harbor();
    let adapters = ok_json(&s, "/api/v2.0/replication/adapters", &admin()).await;
    for k in ["harbor", "docker-registry", "docker-hub", "oci"] {
        assert!(adapters.as_array().unwrap().iter().any(|a| a == k), "{adapters}");
    }
    let infos = ok_json(&s, "/api/v2.0/replication/adapterinfos", &admin()).await;
    assert!(infos["docker-hub"]["endpoint_pattern"].is_object(), "{infos}");

    let bad = |body: Value, field: &'static str| {
        let s = &s;
        async move {
            let r = post(s, "/registries", body.clone()).await;
            assert_eq!(r.status(), 400, "{body}");
            let text = r.text().await.unwrap();
            assert!(text.contains(field), "names {field}: {text}");
        }
    };
    bad(json!({"name": "x", "type": "quay-ish", "url": "http://x"}), "type").await;
    bad(json!({"name": "x", "type": "harbor", "url": "ftp://x"}), "url").await;
    bad(json!({"name": "", "type": "harbor", "url": "http://x"}), "name").await;
    let reg = add_registry(&s, "r", "oci", "http://127.0.0.1:9", Some(("u", "secret-value"))).await;
    let r = post(&s, "/registries", json!({"name": "r", "type": "oci", "url": "http://y"})).await;
    assert_eq!(r.status(), 409, "names are unique");
    // Update keeps the secret unless a new one is given; the list never shows it.
    let r = call(&s, Method::PUT, &format!("/api/v2.0/registries/{reg}"), &admin(), Some(&json!({"description": "d"})))
        .await;
    assert_eq!(r.status(), 200);
    let list = ok_json(&s, "/api/v2.0/registries", &admin()).await;
    assert_eq!(list[0]["description"], "d");
    assert_eq!(list[0]["credential"]["access_secret"], "*****");
    assert!(!list.to_string().contains("secret-value"));

    let bad_policy = |body: Value, field: &'static str| {
        let s = &s;
        async move {
            let r = post(s, "/replication/policies", body.clone()).await;
            assert_eq!(r.status(), 400, "{body}");
            let text = r.text().await.unwrap();
            assert!(text.contains(field), "names {field}: {text}");
        }
    };
    bad_policy(json!({"name": "", "dest_registry": {"id": reg}}), "name").await;
    bad_policy(json!({"name": "p", "dest_registry": {"id": 999}}), "dest_registry").await;
    bad_policy(json!({"name": "p"}), "src_registry").await;
    bad_policy(json!({"name": "p", "dest_registry": {"id": reg}, "trigger": {"type": "scheduled", "trigger_settings": {"cron": "nope"}}}), "trigger.trigger_settings.cron").await;
    bad_policy(json!({"name": "p", "src_registry": {"id": reg}, "trigger": {"type": "event_based"}}), "trigger.type")
        .await;
    bad_policy(
        json!({"name": "p", "dest_registry": {"id": reg}, "filters": [{"type": "size", "value": "1"}]}),
        "filters[0].type",
    )
    .await;
    bad_policy(json!({"name": "p", "dest_registry": {"id": reg}, "dest_namespace": "Bad Name"}), "dest_namespace")
        .await;
    bad_policy(json!({"name": "p", "dest_registry": {"id": reg}, "colour": "red"}), "colour").await;

    // A scheduled policy gets a schedule; changing it to manual removes it.
    let p = add_policy(
        &s,
        json!({"name": "nightly", "dest_registry": {"id": reg}, "trigger": {"type": "scheduled", "trigger_settings": {"cron": "0 0 2 * * *"}}}),
    )
    .await;
    let got = ok_json(&s, &format!("/api/v2.0/replication/policies/{p}"), &admin()).await;
    assert_eq!(got["trigger"]["trigger_settings"]["cron"], "0 0 2 * * *");
    assert_eq!(got["dest_registry"]["id"], reg);
    assert_eq!(got["src_registry"]["id"], 0);
    assert_eq!(got["dest_registry"]["credential"]["access_secret"], "*****");
    let schedules = ok_json(&s, "/api/v2.0/schedules", &admin()).await;
    assert!(schedules.to_string().contains("REPLICATION"), "{schedules}");
    let r = call(
        &s,
        Method::PUT,
        &format!("/api/v2.0/replication/policies/{p}"),
        &admin(),
        Some(&json!({"name": "nightly", "dest_registry": {"id": reg}, "trigger": {"type": "manual"}})),
    )
    .await;
    assert_eq!(r.status(), 200);
    let schedules = ok_json(&s, "/api/v2.0/schedules", &admin()).await;
    assert!(!schedules.to_string().contains("REPLICATION"), "{schedules}");

    // A registry a policy uses cannot be deleted; once the policy is gone it can.
    let r = call(&s, Method::DELETE, &format!("/api/v2.0/registries/{reg}"), &admin(), None).await;
    assert_eq!(r.status(), 412);
    let r = call(&s, Method::DELETE, &format!("/api/v2.0/replication/policies/{p}"), &admin(), None).await;
    assert_eq!(r.status(), 200);
    let r = call(&s, Method::DELETE, &format!("/api/v2.0/registries/{reg}"), &admin(), None).await;
    assert_eq!(r.status(), 200);
    let r = get(&s, &format!("/api/v2.0/registries/{reg}"), &admin()).await;
    assert_eq!(r.status(), 404);
}

#[tokio::test]
async fn a_scheduled_policy_runs_on_its_cron() {
    let Some(dist) = Distribution::start() else { return };
    let s = Server::start_harbor();
    create_project(&s, &admin(), "team", false).await;
    let (base, auth) = berth_v2(&s);
    let d = V2 { base: &base, auth: Some(auth) }.image("team/app", "v1", "scheduled", 100).await;
    let reg = add_registry(&s, "dist", "docker-registry", &dist.url, None).await;
    let p = add_policy(
        &s,
        json!({"name": "every-2s", "dest_registry": {"id": reg},
               "trigger": {"type": "scheduled", "trigger_settings": {"cron": "*/2 * * * * *"}}}),
    )
    .await;
    let exec = eventually(Duration::from_secs(30), "a scheduled execution", || async {
        let e = ok_json(&s, &format!("/api/v2.0/replication/executions?policy_id={p}"), &admin()).await;
        e.as_array().unwrap().last().map(|e| e["id"].as_i64().unwrap())
    })
    .await;
    let e = succeeded(&s, exec).await;
    assert_eq!(e["trigger"], "scheduled");
    let remote = V2 { base: &dist.url, auth: None };
    assert_eq!(remote.digest("team/app", "v1").await, Some(d));
    // Disabling the policy removes its schedule: no new runs.
    let r = call(
        &s,
        Method::PUT,
        &format!("/api/v2.0/replication/policies/{p}"),
        &admin(),
        Some(&json!({"name": "every-2s", "dest_registry": {"id": reg}, "enabled": false,
                     "trigger": {"type": "scheduled", "trigger_settings": {"cron": "*/2 * * * * *"}}})),
    )
    .await;
    assert_eq!(r.status(), 200);
    let schedules = ok_json(&s, "/api/v2.0/schedules", &admin()).await;
    assert!(!schedules.to_string().contains("REPLICATION"), "{schedules}");
}

/// Two instances on one PostgreSQL and storage; the one running a copy is killed with
/// SIGKILL mid-copy. The other takes the task over once the lease runs out and resumes
/// from the checkpoint: the blobs the first attempt finished are not sent again.
#[tokio::test]
async fn a_copy_killed_mid_way_resumes_on_another_instance_without_resending() {
    use crate::ha_postgres::{PgDb, pg_available, start_instance_with};
    if !pg_available() {
        return;
    }
    let Some(dist) = Distribution::start() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let db = PgDb::create();
    let storage = tmp.path().join("storage");
    let lease = [("BERTH_JOBS_LEASE_SECS", "3")];
    let mut servers = [
        start_instance_with(&tmp.path().join("a"), &db.url(), &storage, &lease),
        start_instance_with(&tmp.path().join("b"), &db.url(), &storage, &lease),
    ];
    let s = &servers[0];
    create_project(s, &admin(), "big", false).await;
    let (base, auth) = berth_v2(s);
    let src = V2 { base: &base, auth: Some(auth) };
    // Twelve 1 MiB layers, at 1 MiB/s: about a second each.
    let config = r#"{"architecture":"amd64","os":"linux","seed":"resume"}"#;
    let cd = src.blob("big/image", config.as_bytes()).await;
    let mut layers = Vec::new();
    for i in 0..12u32 {
        let bytes: Vec<u8> =
            (0..(1u32 << 20)).map(|j| (j.wrapping_mul(2_654_435_761).wrapping_add(i) >> 13) as u8).collect();
        layers.push((src.blob("big/image", &bytes).await, bytes.len()));
    }
    let refs: Vec<(&str, usize)> = layers.iter().map(|(d, n)| (d.as_str(), *n)).collect();
    let m = image_manifest((&cd, config.len()), &refs);
    let digest = src.manifest("big/image", "v1", "application/vnd.oci.image.manifest.v1+json", &m).await;

    let reg = add_registry(s, "dist", "docker-registry", &dist.url, None).await;
    let p = add_policy(s, json!({"name": "big", "dest_registry": {"id": reg}, "speed": 1024})).await;
    let exec = start(s, p).await;
    let tasks_path = format!("/api/v2.0/replication/executions/{exec}/tasks");
    let task = eventually(Duration::from_secs(30), "the copy task", || async {
        let t = ok_json(s, &tasks_path, &admin()).await;
        t.as_array().unwrap().iter().find(|t| t["operation"] == "copy").map(|t| t["id"].as_i64().unwrap())
    })
    .await;
    let log_path = format!("/api/v2.0/replication/executions/{exec}/tasks/{task}/log");
    // Until three blobs are through (each is checkpointed with the log).
    eventually(Duration::from_secs(60), "three blobs sent", || async {
        let log = get(s, &log_path, &admin()).await.text().await.unwrap();
        (log.matches(": sent ").count() >= 3).then_some(())
    })
    .await;
    // Which instance runs it: the worker's pool id carries the process id.
    let workers = ok_json(s, "/api/v2.0/jobservice/pools/all/workers", &admin()).await;
    let pool = workers
        .as_array()
        .unwrap()
        .iter()
        .find(|w| w["job_id"].as_str() == Some(task.to_string().as_str()))
        .unwrap_or_else(|| panic!("no worker runs task {task}: {workers}"))["pool_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let victim =
        servers.iter().position(|x| pool.contains(&format!("-{}-", x.pid()))).expect("the pool is one of ours");
    servers[victim].kill();
    let survivor = &servers[1 - victim];

    let e = finished(survivor, exec, Duration::from_secs(120)).await;
    assert_eq!(e["status"], "Succeed", "{e}");
    let remote = V2 { base: &dist.url, auth: None };
    assert_eq!(remote.digest("big/image", "v1").await, Some(digest));

    let log = get(survivor, &log_path, &admin()).await.text().await.unwrap();
    let (first, second) = log.split_once("attempt 2: resuming").unwrap_or_else(|| panic!("no resumed attempt:\n{log}"));
    let sent = |part: &str| -> std::collections::BTreeSet<String> {
        part.lines()
            .filter(|l| l.contains(": sent "))
            .filter_map(|l| {
                l.split("blob ").nth(1).and_then(|r| r.split(':').take(2).collect::<Vec<_>>().join(":").into())
            })
            .collect()
    };
    let (before, after) = (sent(first), sent(second));
    assert!(before.len() >= 3, "{log}");
    assert!(before.is_disjoint(&after), "blobs finished before the kill were sent again:\n{log}");
    assert_eq!(before.len() + after.len(), 13, "every blob sent exactly once over both attempts:\n{log}");
    assert!(second.contains("done by an earlier attempt"), "{log}");
}

/// `single_active_replication`: a scheduled run that fires while the previous one still
/// copies does nothing (its planning task says why); a manual start is refused.
#[tokio::test]
async fn single_active_replication_skips_runs_while_one_is_in_progress() {
    let Some(dist) = Distribution::start() else { return };
    let s = Server::start_harbor();
    create_project(&s, &admin(), "big", false).await;
    let (base, auth) = berth_v2(&s);
    V2 { base: &base, auth: Some(auth) }.image("big/blob", "v1", "single", 3 << 20).await;
    let reg = add_registry(&s, "dist", "docker-registry", &dist.url, None).await;
    // 3 MiB at 256 KiB/s: twelve seconds, while the schedule fires every two.
    let p = add_policy(
        &s,
        json!({"name": "single", "dest_registry": {"id": reg}, "speed": 256, "single_active_replication": true,
               "trigger": {"type": "scheduled", "trigger_settings": {"cron": "*/2 * * * * *"}}}),
    )
    .await;
    let list = format!("/api/v2.0/replication/executions?policy_id={p}");
    let execs = eventually(Duration::from_secs(40), "three executions", || async {
        let e = ok_json(&s, &list, &admin()).await;
        (e.as_array().unwrap().len() >= 3).then_some(e)
    })
    .await;
    let r = post(&s, "/replication/executions", json!({"policy_id": p})).await;
    assert_eq!(r.status(), 412, "a manual start is refused while a run is in progress");
    // Newest first: the later ones were skipped, copying nothing.
    let first = execs.as_array().unwrap().last().unwrap();
    assert_eq!(first["status"], "InProgress", "{execs}");
    for e in &execs.as_array().unwrap()[..execs.as_array().unwrap().len() - 1] {
        let e = finished(&s, e["id"].as_i64().unwrap(), Duration::from_secs(20)).await;
        assert_eq!((e["status"].as_str(), e["total"].as_i64()), (Some("Succeed"), Some(0)), "{e}");
        let log = task_logs(&s, e["id"].as_i64().unwrap()).await;
        assert!(log.contains("skipped: another run of this policy is in progress"), "{log}");
    }
    let r = call(
        &s,
        Method::PUT,
        &format!("/api/v2.0/replication/policies/{p}"),
        &admin(),
        Some(&json!({"name": "single", "dest_registry": {"id": reg}, "enabled": false})),
    )
    .await;
    assert_eq!(r.status(), 200);
    let r = call(&s, Method::PUT, &format!("/api/v2.0/replication/executions/{}", first["id"]), &admin(), None).await;
    assert_eq!(r.status(), 200);
}

/// An artifact that refers to an image (a signature or SBOM: OCI `subject`) goes along
/// with it, digest unchanged.
#[tokio::test]
async fn referrers_are_replicated_with_their_subject() {
    let Some(dist) = Distribution::start() else { return };
    let s = Server::start_harbor();
    create_project(&s, &admin(), "team", false).await;
    let (base, auth) = berth_v2(&s);
    let berth = V2 { base: &base, auth: Some(auth) };
    let subject = berth.image("team/app", "v1", "with-referrer", 100).await;
    let subject_size = berth
        .req(Method::GET, &format!("/v2/team/app/manifests/{subject}"))
        .header("accept", "application/vnd.oci.image.manifest.v1+json")
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap()
        .len();
    let empty = berth.blob("team/app", b"{}").await;
    let sig = berth.blob("team/app", b"a signature").await;
    let referrer = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","artifactType":"application/vnd.example.signature","config":{{"mediaType":"application/vnd.oci.empty.v1+json","digest":"{empty}","size":2}},"layers":[{{"mediaType":"application/octet-stream","digest":"{sig}","size":11}}],"subject":{{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"{subject}","size":{subject_size}}}}}"#
    );
    let rd = sha256(referrer.as_bytes());
    berth.manifest("team/app", &rd, "application/vnd.oci.image.manifest.v1+json", &referrer).await;

    let reg = add_registry(&s, "dist", "docker-registry", &dist.url, None).await;
    let p =
        add_policy(&s, json!({"name": "with-referrers", "dest_registry": {"id": reg}, "copy_by_chunk": true})).await;
    let exec = start(&s, p).await;
    succeeded(&s, exec).await;
    let remote = V2 { base: &dist.url, auth: None };
    assert_eq!(remote.digest("team/app", "v1").await, Some(subject));
    assert_eq!(
        remote.digest("team/app", &rd).await,
        Some(rd.clone()),
        "the referrer, by digest:\n{}",
        task_logs(&s, exec).await
    );
}

/// Registry endpoints are checked on a schedule (once per cluster, by the job service)
/// and their `status` follows the endpoint: healthy while it answers, unhealthy once it
/// stops or if it never answered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registry_health_is_checked_periodically() {
    let Some(dist) = Distribution::start() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let s = Server::spawn(
        &tmp.path().join("data"),
        &[("BERTH_AUTH_MODE", "harbor"), ("BERTH_JOBS_REGISTRY_HEALTH_SECS", "2")],
    );
    let good = add_registry(&s, "good", "docker-registry", &dist.url, None).await;
    let bad = add_registry(&s, "bad", "docker-registry", "http://127.0.0.1:9", None).await;
    let status_of = |id: i64| {
        let s = &s;
        async move {
            let v = ok_json(s, &format!("/api/v2.0/registries/{id}"), &admin()).await;
            v["status"].as_str().unwrap_or_default().to_owned()
        }
    };
    let wait_for = |id: i64, want: &'static str| {
        let status_of = &status_of;
        async move {
            let deadline = Instant::now() + Duration::from_secs(60);
            loop {
                let got = status_of(id).await;
                if got == want {
                    return;
                }
                assert!(Instant::now() < deadline, "registry {id} is {got:?}, expected {want:?}");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    };
    wait_for(good, "healthy").await;
    wait_for(bad, "unhealthy").await;
    drop(dist);
    wait_for(good, "unhealthy").await;
}

/// A webhook policy of `project` that sends `REPLICATION` to `rx` in the Default and
/// CloudEvents formats and as a Slack message; returns its id.
async fn replication_hook(s: &Server, project: &str, rx: &crate::webhooks::Receiver) -> i64 {
    let body = json!({"name": "replication", "enabled": true, "event_types": ["REPLICATION"], "targets": [
        {"type": "http", "address": rx.url(&format!("/{project}/default"))},
        {"type": "http", "address": rx.url(&format!("/{project}/ce")), "payload_format": "CloudEvents"},
        {"type": "slack", "address": rx.url(&format!("/{project}/slack"))},
    ]});
    let r =
        call(s, Method::POST, &format!("/api/v2.0/projects/{project}/webhook/policies"), &admin(), Some(&body)).await;
    assert_eq!(r.status(), 201, "{:?}", r.text().await);
    location_id(&r)
}

/// What arrived at `path`.
fn at(got: &[crate::webhooks::Received], path: &str) -> Vec<Value> {
    got.iter().filter(|r| r.path == path).map(|r| r.body.clone()).collect()
}

async fn set_notifications(s: &Server, on: bool) {
    let r = call(s, Method::PUT, "/api/v2.0/configurations", &admin(), Some(&json!({"notification_enable": on}))).await;
    assert_eq!(r.status(), 200, "{:?}", r.text().await);
}

/// A finished copy task is Harbor's `REPLICATION` event, for the source project of a
/// push and the destination project of a pull, in all three formats, once per task;
/// nothing while `notification_enable` is off.
#[tokio::test]
async fn a_finished_copy_is_a_replication_webhook_event() {
    let Some(dist) = Distribution::start() else { return };
    let s = Server::start_harbor();
    let rx = crate::webhooks::Receiver::start().await;
    let (base, auth) = berth_v2(&s);
    let berth = V2 { base: &base, auth: Some(auth) };
    let remote = V2 { base: &dist.url, auth: None };
    create_project(&s, &admin(), "src", false).await;
    create_project(&s, &admin(), "pulled", false).await;
    let hook_src = replication_hook(&s, "src", &rx).await;
    replication_hook(&s, "pulled", &rx).await;
    let img = berth.image("src/app", "v1", "replication-event", 1024).await;
    let reg = add_registry(&s, "dist", "docker-registry", &dist.url, None).await;

    // Off: the run succeeds and records no delivery (checked once the run has ended:
    // deliveries are recorded before a copy task ends).
    set_notifications(&s, false).await;
    let push = add_policy(
        &s,
        json!({"name": "push", "description": "src to dist", "dest_registry": {"id": reg},
               "dest_namespace": "mirror", "dest_namespace_replace_count": 1, "override": true,
               "filters": [{"type": "name", "value": "src/**"}]}),
    )
    .await;
    let exec = start(&s, push).await;
    succeeded(&s, exec).await;
    let hooks = ok_json(&s, &format!("/api/v2.0/projects/src/webhook/policies/{hook_src}/executions"), &admin()).await;
    assert_eq!(hooks, json!([]), "nothing while notification_enable is off");
    set_notifications(&s, true).await;

    // Push: the source project hears of it.
    let exec = start(&s, push).await;
    succeeded(&s, exec).await;
    assert_eq!(remote.digest("mirror/app", "v1").await, Some(img.clone()));
    let got = rx
        .wait_for(Duration::from_secs(30), "the push's three deliveries", |g| {
            ["/src/default", "/src/ce", "/src/slack"].iter().all(|p| !at(g, p).is_empty())
        })
        .await;
    let d = &at(&got, "/src/default")[0];
    assert_eq!(d["type"], "REPLICATION", "{d}");
    assert_eq!(d["operator"], "MANUAL", "{d}");
    let r = &d["event_data"]["replication"];
    assert_eq!(r["job_status"], "Success", "{d}");
    assert_eq!(r["trigger_type"], "MANUAL");
    assert_eq!(r["policy_creator"], "admin");
    assert_eq!(r["description"], "src to dist");
    assert_eq!(r["override_mode"], true);
    assert_eq!(r["artifact_type"], "artifact");
    assert_eq!(r["harbor_hostname"], "127.0.0.1");
    assert!(r["execution_timestamp"].as_i64().unwrap() > 1_600_000_000, "{r}");
    assert_eq!(r["execution_id"], exec);
    assert_eq!(
        (r["src_resource"]["registry_type"].as_str(), r["src_resource"]["namespace"].as_str()),
        (Some("harbor"), Some("src"))
    );
    assert_eq!(r["dest_resource"]["registry_name"], "dist");
    assert_eq!(r["dest_resource"]["registry_type"], "docker-registry");
    assert_eq!(r["dest_resource"]["endpoint"], dist.url.as_str());
    assert_eq!(r["dest_resource"]["namespace"], "mirror");
    assert_eq!(r["successful_artifact"], json!([{"type": "artifact", "status": "Success", "name_tag": "app:[v1]"}]));
    assert!(r.get("failed_artifact").is_none(), "{r}");
    let c = &at(&got, "/src/ce")[0];
    assert_eq!(c["type"], "harbor.replication.status.changed", "{c}");
    assert_eq!(c["data"]["replication"]["successful_artifact"][0]["name_tag"], "app:[v1]");
    let slack = at(&got, "/src/slack")[0]["text"].as_str().unwrap().to_owned();
    assert!(slack.contains("REPLICATION") && slack.contains("app:[v1]"), "{slack}");

    // Pull: the destination project hears of it.
    remote.image("upstream/tool", "v2", "replication-event-pull", 512).await;
    let pull = add_policy(
        &s,
        json!({"name": "pull", "src_registry": {"id": reg}, "dest_registry": {"id": 0},
               "dest_namespace": "pulled", "filters": [{"type": "name", "value": "upstream/**"}]}),
    )
    .await;
    let exec = start(&s, pull).await;
    succeeded(&s, exec).await;
    let got =
        rx.wait_for(Duration::from_secs(30), "the pull's delivery", |g| !at(g, "/pulled/default").is_empty()).await;
    let r = &at(&got, "/pulled/default")[0]["event_data"]["replication"];
    assert_eq!(r["job_status"], "Success", "{r}");
    assert_eq!(r["src_resource"]["registry_name"], "dist");
    assert_eq!(r["src_resource"]["namespace"], "upstream");
    assert_eq!(
        (r["dest_resource"]["registry_type"].as_str(), r["dest_resource"]["namespace"].as_str()),
        (Some("harbor"), Some("pulled"))
    );
    assert_eq!(r["successful_artifact"][0]["name_tag"], "tool:[v2]");

    // Once per task: the push's project got exactly one event per format.
    for p in ["/src/default", "/src/ce", "/src/slack"] {
        assert_eq!(at(&rx.got(), p).len(), 1, "{p}");
    }
}

/// A copy task that fails (the destination refuses the credentials it was changed to
/// after planning) is a `REPLICATION` event with `job_status` `Error` and the artifact
/// as `failed_artifact`.
#[tokio::test]
async fn a_failed_copy_is_a_failed_replication_event() {
    let a = Server::start_harbor();
    let b = Server::start_harbor();
    let rx = crate::webhooks::Receiver::start().await;
    create_project(&a, &admin(), "team", false).await;
    replication_hook(&a, "team", &rx).await;
    let (base, auth) = berth_v2(&a);
    V2 { base: &base, auth: Some(auth) }.image("team/app", "v1", "failed-event", 100).await;
    let reg = add_registry(&a, "b", "harbor", &b.url(""), Some(("admin", ADMIN_PASSWORD))).await;
    let p = add_policy(&a, json!({"name": "to-b", "dest_registry": {"id": reg}})).await;

    // Copies wait while the plan is made with good credentials; then they go bad.
    let queue = "/api/v2.0/jobservice/queues/REPLICATION";
    let pause = json!({"action": "pause"});
    assert_eq!(call(&a, Method::PUT, queue, &admin(), Some(&pause)).await.status(), 200);
    let exec = start(&a, p).await;
    eventually(Duration::from_secs(30), "the copy task planned", || async {
        let tasks = ok_json(&a, &format!("/api/v2.0/replication/executions/{exec}/tasks"), &admin()).await;
        tasks.as_array().unwrap().iter().any(|t| t["operation"] == "copy").then_some(())
    })
    .await;
    let bad = json!({"access_key": "admin", "access_secret": "not-the-password", "credential_type": "basic"});
    let r = call(&a, Method::PUT, &format!("/api/v2.0/registries/{reg}"), &admin(), Some(&bad)).await;
    assert_eq!(r.status(), 200, "{:?}", r.text().await);
    let resume = json!({"action": "resume"});
    assert_eq!(call(&a, Method::PUT, queue, &admin(), Some(&resume)).await.status(), 200);

    let e = finished(&a, exec, Duration::from_secs(90)).await;
    assert_eq!(e["status"], "Failed", "{e}");
    let got =
        rx.wait_for(Duration::from_secs(30), "the failure's delivery", |g| !at(g, "/team/default").is_empty()).await;
    let d = &at(&got, "/team/default")[0];
    assert_eq!(d["type"], "REPLICATION", "{d}");
    let r = &d["event_data"]["replication"];
    assert_eq!(r["job_status"], "Error", "{d}");
    assert_eq!(r["authentication_type"], "basic");
    assert_eq!(r["dest_resource"]["registry_type"], "harbor");
    let f = &r["failed_artifact"][0];
    assert_eq!((f["status"].as_str(), f["name_tag"].as_str()), (Some("Error"), Some("app:[v1]")), "{d}");
    assert!(f["fail_reason"].as_str().unwrap().contains("401"), "{d}");
    assert!(r.get("successful_artifact").is_none(), "{r}");
    let c = &at(&rx.got(), "/team/ce")[0];
    assert_eq!(c["data"]["replication"]["job_status"], "Error", "{c}");
}

/// A copy whose destination goes away after planning is retried (3 attempts with
/// backoff); only the last attempt's failure is an event: one `REPLICATION` with
/// `job_status` `Error`, none for the attempts before it.
#[tokio::test]
async fn a_retried_copy_is_one_event_when_it_ends() {
    let Some(dist) = Distribution::start() else { return };
    let s = Server::start_harbor();
    let rx = crate::webhooks::Receiver::start().await;
    create_project(&s, &admin(), "retried", false).await;
    let hook = replication_hook(&s, "retried", &rx).await;
    let (base, auth) = berth_v2(&s);
    V2 { base: &base, auth: Some(auth) }.image("retried/app", "v1", "retried-event", 100).await;
    let reg = add_registry(&s, "dist", "docker-registry", &dist.url, None).await;
    let p = add_policy(&s, json!({"name": "to-dist", "dest_registry": {"id": reg}})).await;

    let queue = "/api/v2.0/jobservice/queues/REPLICATION";
    assert_eq!(call(&s, Method::PUT, queue, &admin(), Some(&json!({"action": "pause"}))).await.status(), 200);
    let exec = start(&s, p).await;
    eventually(Duration::from_secs(30), "the copy task planned", || async {
        let tasks = ok_json(&s, &format!("/api/v2.0/replication/executions/{exec}/tasks"), &admin()).await;
        tasks.as_array().unwrap().iter().any(|t| t["operation"] == "copy").then_some(())
    })
    .await;
    drop(dist);
    assert_eq!(call(&s, Method::PUT, queue, &admin(), Some(&json!({"action": "resume"}))).await.status(), 200);

    // Backoff of 10 s, then 20 s (with up to a third more) between the three attempts.
    let e = finished(&s, exec, Duration::from_secs(120)).await;
    assert_eq!(e["status"], "Failed", "{e}");
    let log = task_logs(&s, exec).await;
    assert!(log.contains("attempt 3"), "three attempts: {log}");
    // Deliveries are recorded before a task ends: exactly one event's, now.
    let hooks = ok_json(&s, &format!("/api/v2.0/projects/retried/webhook/policies/{hook}/executions"), &admin()).await;
    assert_eq!(hooks.as_array().unwrap().len(), 1, "one event for the task: {hooks}");
    let got =
        rx.wait_for(Duration::from_secs(30), "the failure's delivery", |g| !at(g, "/retried/default").is_empty()).await;
    let r = &at(&got, "/retried/default")[0]["event_data"]["replication"];
    assert_eq!(r["job_status"], "Error", "{r}");
    assert!(r.get("authentication_type").is_none(), "anonymous: {r}");
    assert_eq!(r["failed_artifact"][0]["name_tag"], "app:[v1]", "{r}");
}
