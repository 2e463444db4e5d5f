//! Starting the real `berth` binary and talking to it.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use sha2::Digest as _;

/// The admin password every test server starts with.
pub const ADMIN_PASSWORD: &str = "Harbor12345";

pub struct Server {
    pub addr: String,
    /// Started with `BERTH_HTTP_TLS_CERT`: `url()` gives https:// URLs.
    pub https: bool,
    pub data_dir: PathBuf,
    child: Child,
    _tmp: Option<tempfile::TempDir>,
}

impl Server {
    /// A fresh open-mode server (anyone may push and pull) on a fresh temp dir: the
    /// OCI protocol tests need no identities.
    pub fn start() -> Server {
        let tmp = tempfile::tempdir().expect("tempdir");
        let mut s = Server::start_in(&tmp.path().join("data"));
        s._tmp = Some(tmp);
        s
    }

    /// A fresh server in Harbor mode (the default), admin password `ADMIN_PASSWORD`.
    pub fn start_harbor() -> Server {
        let tmp = tempfile::tempdir().expect("tempdir");
        let mut s = Server::spawn(&tmp.path().join("data"), &[("BERTH_AUTH_MODE", "harbor")]);
        s._tmp = Some(tmp);
        s
    }

    /// An open-mode server on an existing data dir (to restart after a crash).
    pub fn start_in(data_dir: &Path) -> Server {
        Server::spawn(data_dir, &[("BERTH_AUTH_MODE", "open")])
    }

    pub fn spawn(data_dir: &Path, env: &[(&str, &str)]) -> Server {
        let key = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/token_key.pem");
        let secret = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/secretkey");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_berth"));
        cmd.args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(data_dir)
            .env("BERTH_AUTH_PRIVATE_KEY", key)
            .env("BERTH_AUTH_SECRET_KEY", secret)
            .env("BERTH_ADMIN_PASSWORD", ADMIN_PASSWORD);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd
            .env("BERTH_LOG_LEVEL", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn berth");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).expect("read berth stdout");
        let addr = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .to_string();
        let https = env.iter().any(|(k, _)| *k == "BERTH_HTTP_TLS_CERT");
        Server { addr, https, data_dir: data_dir.to_path_buf(), child, _tmp: None }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}://{}{}", if self.https { "https" } else { "http" }, self.addr, path)
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// SIGKILL: no chance to clean up.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM and wait for a graceful exit; returns the exit status.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        unsafe { libc::kill(self.pid(), libc::SIGTERM) };
        self.child.wait().expect("wait")
    }

    pub fn blobs_dir(&self) -> PathBuf {
        self.data_dir.join("storage/docker/registry/v2/blobs")
    }

    /// Where the local filesystem store keeps the blob `digest` (`sha256:…`).
    pub fn blob_path(&self, digest: &str) -> PathBuf {
        let hex = digest.trim_start_matches("sha256:");
        self.blobs_dir().join(format!("sha256/{}/{hex}/data", &hex[..2]))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Where every test client starts: the binary links berth-blob-s3, whose reqwest
/// features (rustls without a provider) are unified into the tests' reqwest.
pub fn client_builder() -> reqwest::ClientBuilder {
    berth_blob_s3::install_crypto_provider();
    reqwest::Client::builder()
}

/// A client that sends the admin's Basic credentials with every request and follows
/// redirects.
pub fn admin_client() -> reqwest::Client {
    use base64::Engine;
    let token = base64::engine::general_purpose::STANDARD.encode(format!("admin:{ADMIN_PASSWORD}"));
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(reqwest::header::AUTHORIZATION, format!("Basic {token}").parse().unwrap());
    client_builder().default_headers(headers).timeout(std::time::Duration::from_secs(60)).build().unwrap()
}

pub fn client() -> reqwest::Client {
    client_builder().redirect(reqwest::redirect::Policy::none()).build().unwrap()
}

pub fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(bytes)))
}

/// Sends raw bytes over a fresh connection and returns the raw response (for requests
/// no well-behaved client library would send).
pub fn raw(addr: &str, request: &[u8], close_after_send: bool) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(request).unwrap();
    if close_after_send {
        let _ = s.shutdown(std::net::Shutdown::Write);
    }
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    String::from_utf8_lossy(&out).to_string()
}

/// Files (not directories) under `dir`, recursively.
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(files_under(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}

/// Checks the OCI error envelope and returns the first error code.
pub async fn error_code(res: reqwest::Response) -> String {
    let ct = res.headers().get("content-type").map(|v| v.to_str().unwrap().to_string()).unwrap_or_default();
    assert!(ct.starts_with("application/json"), "error content type {ct}");
    let text = res.text().await.expect("error body");
    let v: serde_json::Value = serde_json::from_str(&text).expect("error body is JSON");
    let e = &v["errors"][0];
    assert!(e["message"].is_string(), "error has a message: {v}");
    e["code"].as_str().expect("error has a code").to_string()
}

/// Pushes a blob monolithically; returns its digest.
pub async fn push_blob(c: &reqwest::Client, s: &Server, repo: &str, bytes: &[u8]) -> String {
    let d = sha256(bytes);
    let r = c.post(s.url(&format!("/v2/{repo}/blobs/uploads/?digest={d}"))).body(bytes.to_vec()).send().await.unwrap();
    assert_eq!(r.status(), 201, "push blob");
    d
}

/// An OCI image manifest referencing a config and layers (already pushed).
pub fn image_manifest(config: (&str, usize), layers: &[(&str, usize)]) -> String {
    let layers: Vec<String> = layers
        .iter()
        .map(|(d, n)| format!(r#"{{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"{d}","size":{n}}}"#))
        .collect();
    format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{}","size":{}}},"layers":[{}]}}"#,
        config.0,
        config.1,
        layers.join(",")
    )
}

/// Pushes a small image (config + one layer) under `tag`; returns the manifest digest.
pub async fn push_image(c: &reqwest::Client, s: &Server, repo: &str, tag: &str, seed: &str) -> String {
    try_push_image(c, s, repo, tag, seed).await.unwrap_or_else(|e| panic!("push {repo}:{tag}: {e}"))
}

/// [`push_image`] that reports a refusal instead of panicking (fault tests). `Ok` means
/// the registry acknowledged the manifest (201).
pub async fn try_push_image(
    c: &reqwest::Client,
    s: &Server,
    repo: &str,
    tag: &str,
    seed: &str,
) -> Result<String, String> {
    let config = format!(r#"{{"architecture":"amd64","os":"linux","seed":"{seed}"}}"#);
    let layer = format!("layer for {seed}");
    let mut digests = Vec::new();
    for bytes in [config.as_bytes(), layer.as_bytes()] {
        let d = sha256(bytes);
        let r = c
            .post(s.url(&format!("/v2/{repo}/blobs/uploads/?digest={d}")))
            .body(bytes.to_vec())
            .send()
            .await
            .map_err(|e| e.to_string())?;
        if r.status() != 201 {
            return Err(format!("blob: {}", r.status()));
        }
        digests.push(d);
    }
    let m = image_manifest((&digests[0], config.len()), &[(&digests[1], layer.len())]);
    let r = c
        .put(s.url(&format!("/v2/{repo}/manifests/{tag}")))
        .header("content-type", "application/vnd.oci.image.manifest.v1+json")
        .body(m.clone())
        .send()
        .await
        .map_err(|e| e.to_string())?;
    if r.status() != 201 {
        return Err(format!("manifest: {} {}", r.status(), r.text().await.unwrap_or_default()));
    }
    Ok(sha256(m.as_bytes()))
}

/// `POST /c/login` (the Harbor portal's sign-in) with client `c`; the answer, unchecked.
pub async fn post_login(c: &reqwest::Client, s: &Server, user: &str, password: &str) -> reqwest::Response {
    c.post(s.url("/c/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("principal={user}&password={password}"))
        .send()
        .await
        .unwrap()
}

/// Logs the admin in through `POST /c/login`; returns the `sid=...` cookie to send back.
pub async fn admin_session(s: &Server) -> String {
    let r = post_login(&client(), s, "admin", ADMIN_PASSWORD).await;
    assert_eq!(r.status(), 200, "admin login");
    header(&r, "set-cookie").split(';').next().unwrap().to_string()
}

/// Whether a client tool is installed; in CI a missing tool is a failure, not a skip.
pub fn tool_available(tool: &str) -> bool {
    let found = Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {tool}"))
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !found {
        assert!(std::env::var("CI").map(|v| v != "true").unwrap_or(true), "{tool} is required in CI");
        eprintln!("skipping: {tool} is not installed");
    }
    found
}

/// Runs a command, panicking with its output if it fails.
pub fn run(args: &[&str]) -> String {
    let out = Command::new(args[0]).args(&args[1..]).output().unwrap_or_else(|e| panic!("{}: {e}", args[0]));
    assert!(
        out.status.success(),
        "{:?} failed:\nstdout: {}\nstderr: {}",
        args,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).to_string()
}

/// A minimal OCI image layout (config + one tar layer) tagged `tag`.
pub fn write_tiny_layout(dir: &Path, tag: &str) {
    let blobs = dir.join("blobs/sha256");
    std::fs::create_dir_all(&blobs).unwrap();
    let put = |bytes: &[u8]| -> String {
        let d = sha256(bytes);
        std::fs::write(blobs.join(&d["sha256:".len()..]), bytes).unwrap();
        d
    };
    // A tar with one empty directory entry is still a valid layer; an all-zero archive end
    // (two 512-byte blocks) is the smallest.
    let layer = vec![0u8; 1024];
    let ld = put(&layer);
    let config = format!(
        r#"{{"architecture":"amd64","os":"linux","rootfs":{{"type":"layers","diff_ids":["{ld}"]}},"config":{{}}}}"#
    );
    let cd = put(config.as_bytes());
    let manifest = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{cd}","size":{}}},"layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"{ld}","size":{}}}]}}"#,
        config.len(),
        layer.len()
    );
    let md = put(manifest.as_bytes());
    std::fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    let index = format!(
        r#"{{"schemaVersion":2,"manifests":[{{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"{md}","size":{},"annotations":{{"org.opencontainers.image.ref.name":"{tag}"}}}}]}}"#,
        manifest.len()
    );
    std::fs::write(dir.join("index.json"), index).unwrap();
}

/// A response header as text (empty when absent).
pub fn header(r: &reqwest::Response, name: &str) -> String {
    r.headers().get(name).map(|v| v.to_str().unwrap().to_string()).unwrap_or_default()
}

/// Asserts the status and Harbor's error envelope with `code`; returns the message.
pub async fn expect_error(r: reqwest::Response, status: u16, code: &str) -> String {
    let st = r.status().as_u16();
    let ct = header(&r, "content-type");
    let text = r.text().await.unwrap();
    assert_eq!(st, status, "status; body {text}");
    assert!(ct.starts_with("application/json"), "content type {ct}");
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["errors"][0]["code"], code, "{text}");
    v["errors"][0]["message"].as_str().expect("message").to_string()
}

// --- Harbor's management API: one client for every test module ---

/// Passes Harbor's password policy; every user the tests create has it.
pub const PW: &str = "Passw0rd1";

/// Who is calling.
#[derive(Clone, Debug)]
pub enum Who {
    Anon,
    Basic(String, String),
    /// `sid` cookie and, if any, the CSRF token to echo.
    Cookie(String, Option<String>),
}

impl Who {
    /// Adds these credentials to a request.
    pub fn apply(&self, r: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match self {
            Who::Anon => r,
            Who::Basic(u, p) => r.basic_auth(u, Some(p)),
            Who::Cookie(sid, csrf) => {
                let r = r.header("cookie", format!("sid={sid}"));
                match csrf {
                    Some(t) => r.header("x-harbor-csrf-token", t),
                    None => r,
                }
            }
        }
    }
}

/// The bootstrap administrator.
pub fn admin() -> Who {
    Who::Basic("admin".into(), ADMIN_PASSWORD.into())
}

/// A user created by [`create_user`] (password [`PW`]).
pub fn user(name: &str) -> Who {
    Who::Basic(name.into(), PW.into())
}

pub fn with_auth(r: reqwest::RequestBuilder, who: &Who) -> reqwest::RequestBuilder {
    who.apply(r)
}

/// One request; `body` is sent as JSON.
pub async fn call(
    s: &Server,
    method: reqwest::Method,
    path: &str,
    who: &Who,
    body: Option<&serde_json::Value>,
) -> reqwest::Response {
    let mut r = who.apply(client().request(method, s.url(path)));
    if let Some(b) = body {
        r = r.header("content-type", "application/json").body(b.to_string());
    }
    r.send().await.unwrap()
}

pub async fn get(s: &Server, path: &str, who: &Who) -> reqwest::Response {
    call(s, reqwest::Method::GET, path, who, None).await
}

pub async fn status(
    s: &Server,
    method: reqwest::Method,
    path: &str,
    who: &Who,
    body: Option<&serde_json::Value>,
) -> u16 {
    call(s, method, path, who, body).await.status().as_u16()
}

pub async fn body_json(r: reqwest::Response) -> serde_json::Value {
    let status = r.status();
    let text = r.text().await.unwrap();
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}), status {status}: {text}"))
}

/// A 200 with a JSON body.
pub async fn ok_json(s: &Server, path: &str, who: &Who) -> serde_json::Value {
    let r = get(s, path, who).await;
    let status = r.status();
    let text = r.text().await.unwrap();
    assert_eq!(status, 200, "GET {path} as {who:?}: {text}");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

/// The id at the end of a `Location`.
pub fn location_id(r: &reqwest::Response) -> i64 {
    let loc = header(r, "location");
    loc.rsplit('/').next().unwrap().parse().unwrap_or_else(|_| panic!("location {loc:?}"))
}

/// Creates a user with password [`PW`] as admin; returns its id.
pub async fn create_user(s: &Server, name: &str) -> i64 {
    let body = serde_json::json!({
        "username": name, "email": format!("{name}@example.com"), "realname": name, "password": PW,
    });
    let r = call(s, reqwest::Method::POST, "/api/v2.0/users", &admin(), Some(&body)).await;
    assert_eq!(r.status(), 201, "create user {name}: {:?}", r.text().await);
    assert!(header(&r, "location").starts_with("/api/v2.0/users/"));
    location_id(&r)
}

/// Creates a project; returns its id.
pub async fn create_project(s: &Server, who: &Who, name: &str, public: bool) -> i64 {
    let body = serde_json::json!({"project_name": name, "metadata": {"public": public.to_string()}});
    let r = call(s, reqwest::Method::POST, "/api/v2.0/projects", who, Some(&body)).await;
    assert_eq!(r.status(), 201, "create project {name}: {:?}", r.text().await);
    location_id(&r)
}

/// Adds `user` to `project` with a role id, as admin; returns the member id.
pub async fn add_member(s: &Server, project: &str, user: &str, role: i64) -> i64 {
    let body = serde_json::json!({"role_id": role, "member_user": {"username": user}});
    let path = format!("/api/v2.0/projects/{project}/members");
    let r = call(s, reqwest::Method::POST, &path, &admin(), Some(&body)).await;
    assert_eq!(r.status(), 201, "add {user}: {:?}", r.text().await);
    location_id(&r)
}

/// Pushes a blob monolithically over /v2 with `who`'s credentials; returns its digest.
pub async fn push_blob_as(s: &Server, who: &Who, repo: &str, bytes: &[u8]) -> String {
    let d = sha256(bytes);
    let url = s.url(&format!("/v2/{repo}/blobs/uploads/?digest={d}"));
    let r = who.apply(client().post(url)).body(bytes.to_vec()).send().await.unwrap();
    assert_eq!(r.status(), 201, "push blob to {repo}");
    d
}

/// Pushes a small image (config + one layer, distinct per `seed`) tagged `tag` over /v2 with
/// `who`'s credentials; returns the manifest digest.
pub async fn push_small_image_as(s: &Server, who: &Who, repo: &str, tag: &str, seed: &str) -> String {
    let config = format!(r#"{{"architecture":"amd64","os":"linux","seed":"{seed}"}}"#);
    let layer = format!("layer for {seed}");
    let cd = push_blob_as(s, who, repo, config.as_bytes()).await;
    let ld = push_blob_as(s, who, repo, layer.as_bytes()).await;
    let m = image_manifest((&cd, config.len()), &[(&ld, layer.len())]);
    put_manifest_as(s, who, repo, tag, OCI_MANIFEST, &m).await;
    sha256(m.as_bytes())
}

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";

/// PUTs a manifest of `media_type` under `reference` over /v2 with `who`'s credentials;
/// the registry must acknowledge it (201).
pub async fn put_manifest_as(s: &Server, who: &Who, repo: &str, reference: &str, media_type: &str, body: &str) {
    let r = who
        .apply(client().put(s.url(&format!("/v2/{repo}/manifests/{reference}"))))
        .header("content-type", media_type)
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201, "push manifest {repo}:{reference}: {:?}", r.text().await);
}

/// The size of the OCI image manifest `reference` in `repo`, fetched as admin.
pub async fn manifest_len(s: &Server, repo: &str, reference: &str) -> usize {
    let r = admin()
        .apply(client().get(s.url(&format!("/v2/{repo}/manifests/{reference}"))))
        .header("accept", OCI_MANIFEST)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "GET manifest {repo}:{reference}");
    r.bytes().await.unwrap().len()
}

/// Pushes, as admin, an OCI index of `children` (digest, architecture; image manifests
/// already in `repo`) tagged `tag`; returns its digest.
pub async fn push_platform_index(s: &Server, repo: &str, tag: &str, children: &[(&str, &str)]) -> String {
    let mut entries = Vec::new();
    for (d, arch) in children {
        let len = manifest_len(s, repo, d).await;
        entries.push(serde_json::json!({"mediaType": OCI_MANIFEST, "digest": d, "size": len,
                            "platform": {"architecture": arch, "os": "linux"}}));
    }
    let body = serde_json::json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries}).to_string();
    put_manifest_as(s, &admin(), repo, tag, OCI_INDEX, &body).await;
    sha256(body.as_bytes())
}

/// A digest as the UI shows it: `sha256:` and the first 12 hex digits.
pub fn short(d: &str) -> String {
    format!("sha256:{}", &d.trim_start_matches("sha256:")[..12])
}

/// A private project `name` with the user `gst` (created here, password [`PW`]) as its
/// guest: the setup of every test that checks what a guest may not do.
pub async fn project_with_guest(s: &Server, name: &str) -> i64 {
    create_user(s, "gst").await;
    let id = create_project(s, &admin(), name, false).await;
    add_member(s, name, "gst", 3).await;
    id
}

/// Pauses the job service's queue of `job_type` as admin (jobs of that type then wait).
pub async fn pause_queue(s: &Server, job_type: &str) {
    let path = format!("/api/v2.0/jobservice/queues/{job_type}");
    let r = call(s, reqwest::Method::PUT, &path, &admin(), Some(&serde_json::json!({"action": "pause"}))).await;
    assert_eq!(r.status(), 200);
}

/// Polls `GET path` as admin until `done` holds for its JSON, for up to `within`; returns
/// the answer that satisfied it.
pub async fn poll_json(
    s: &Server,
    path: &str,
    what: &str,
    within: Duration,
    done: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let deadline = std::time::Instant::now() + within;
    loop {
        let v = ok_json(s, path, &admin()).await;
        if done(&v) {
            return v;
        }
        assert!(std::time::Instant::now() < deadline, "{what} never happened: {v}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
