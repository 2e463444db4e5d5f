//! Real clients against a real Berth: skopeo (push, pull, inspect, list-tags, copy between
//! repositories, delete), podman (pull by tag and digest, tag, push) and umoci (unpacking what
//! came back). The images are built here, in Rust, as an OCI image layout on disk: no network.
//!
//! The tools come from Debian packages. When one is missing the test is skipped with a note,
//! except under `CI=true`, where `.ci/run` installs them and a missing tool is a failure.

use std::borrow::BorrowMut;
use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::{self, Server, sha256};

const TIMEOUT: Duration = Duration::from_secs(120);

const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
const OCI_LAYER_TAR: &str = "application/vnd.oci.image.layer.v1.tar";
const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
const REF_NAME: &str = "org.opencontainers.image.ref.name";

// ---------------------------------------------------------------------------------------------
// Tools and processes
// ---------------------------------------------------------------------------------------------

/// Whether `name` is on PATH. Missing: a failure under `CI=true`, otherwise a skip.
fn have(name: &str) -> bool {
    let found =
        std::env::var_os("PATH").map(|p| std::env::split_paths(&p).any(|d| d.join(name).is_file())).unwrap_or(false);
    if !found {
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("{name} is not installed, and CI=true requires it (.ci/run installs it)");
        }
        eprintln!("skipping: {name} is not installed (set CI=true to make this a failure)");
    }
    found
}

/// Returns from the test (skipping it) unless every tool is installed.
macro_rules! require {
    ($($tool:literal),+ $(,)?) => {
        let mut all = true;
        $( all &= have($tool); )+
        if !all {
            return;
        }
    };
}

/// Runs `cmd` to completion with a 120 s limit (the whole process group is killed on timeout)
/// and returns its output whatever the exit status.
fn run_unchecked(mut cmd: impl BorrowMut<Command>) -> Output {
    let cmd = cmd.borrow_mut();
    let desc = format!("{cmd:?}");
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {desc}: {e}"));
    let drain = |mut r: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut v = Vec::new();
            let _ = r.read_to_end(&mut v);
            v
        })
    };
    let out = drain(Box::new(child.stdout.take().unwrap()));
    let err = drain(Box::new(child.stderr.take().unwrap()));
    let deadline = Instant::now() + TIMEOUT;
    let status = loop {
        if let Some(s) = child.try_wait().expect("try_wait") {
            break Some(s);
        }
        if Instant::now() >= deadline {
            unsafe { libc::kill(-(child.id() as i32), libc::SIGKILL) };
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let stdout = out.join().unwrap();
    let stderr = err.join().unwrap();
    match status {
        Some(status) => Output { status, stdout, stderr },
        None => panic!(
            "timed out after {TIMEOUT:?}: {desc}\nstdout:\n{}\nstderr:\n{}",
            String::from_utf8_lossy(&stdout),
            String::from_utf8_lossy(&stderr)
        ),
    }
}

/// Runs `cmd` and panics, with its stderr, unless it succeeds. Returns stdout.
fn run(mut cmd: impl BorrowMut<Command>) -> Vec<u8> {
    let desc = format!("{:?}", cmd.borrow_mut());
    let o = run_unchecked(cmd);
    assert!(
        o.status.success(),
        "{desc} failed ({})\nstdout:\n{}\nstderr:\n{}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    o.stdout
}

/// A temp dir for one test's client state (HOME, XDG dirs, podman storage, layouts).
struct Sandbox {
    tmp: tempfile::TempDir,
}

impl Sandbox {
    fn new() -> Sandbox {
        let tmp = tempfile::tempdir().expect("tempdir");
        for d in ["home", "runtime", "config", "data", "cache"] {
            std::fs::create_dir_all(tmp.path().join(d)).unwrap();
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            std::fs::set_permissions(tmp.path().join("runtime"), std::fs::Permissions::from_mode(0o700)).unwrap();
        }
        Sandbox { tmp }
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.tmp.path().join(rel)
    }

    /// A command with HOME and the XDG dirs pointing into the sandbox.
    fn command(&self, program: &str) -> Command {
        let mut c = Command::new(program);
        c.env("HOME", self.path("home"))
            .env("XDG_RUNTIME_DIR", self.path("runtime"))
            .env("XDG_CONFIG_HOME", self.path("config"))
            .env("XDG_DATA_HOME", self.path("data"))
            .env("XDG_CACHE_HOME", self.path("cache"))
            .env_remove("REGISTRY_AUTH_FILE")
            .env_remove("CONTAINERS_CONF")
            .env_remove("CONTAINERS_STORAGE_CONF");
        c
    }

    fn skopeo(&self, args: &[&str]) -> Command {
        let mut c = self.command("skopeo");
        c.args(args);
        c
    }

    /// podman with all its state (storage, run root, libpod tmp) inside the sandbox.
    fn podman(&self, args: &[&str]) -> Command {
        let mut c = self.command("podman");
        c.arg("--root")
            .arg(self.path("podman/root"))
            .arg("--runroot")
            .arg(self.path("podman/runroot"))
            .arg("--tmpdir")
            .arg(self.path("podman/tmp"))
            .args(["--storage-driver", "vfs", "--cgroup-manager", "cgroupfs", "--events-backend", "file"])
            .args(args);
        c
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).trim().to_string()
}

// ---------------------------------------------------------------------------------------------
// A hand-written tar writer and an OCI image layout built in Rust
// ---------------------------------------------------------------------------------------------

/// A ustar archive of regular files: 512-byte headers with a correct checksum, data padded to
/// 512 bytes, and two zero blocks at the end.
fn tar(files: &[(&str, &[u8])]) -> Vec<u8> {
    fn put(field: &mut [u8], value: &[u8]) {
        assert!(value.len() <= field.len(), "tar field overflow");
        field[..value.len()].copy_from_slice(value);
    }
    let mut out = Vec::new();
    for (name, data) in files {
        assert!(name.len() < 100, "names over 99 bytes need the prefix field");
        let mut h = [0u8; 512];
        put(&mut h[0..100], name.as_bytes());
        put(&mut h[100..108], b"0000644\0"); // mode
        put(&mut h[108..116], b"0000000\0"); // uid
        put(&mut h[116..124], b"0000000\0"); // gid
        put(&mut h[124..136], format!("{:011o}\0", data.len()).as_bytes()); // size
        put(&mut h[136..148], format!("{:011o}\0", 1_700_000_000u64).as_bytes()); // mtime
        h[148..156].fill(b' '); // checksum counts as spaces while summing
        h[156] = b'0'; // regular file
        put(&mut h[257..263], b"ustar\0");
        put(&mut h[263..265], b"00");
        put(&mut h[265..297], b"root"); // uname
        put(&mut h[297..329], b"root"); // gname
        let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
        put(&mut h[148..156], format!("{sum:06o}\0 ").as_bytes());
        out.extend_from_slice(&h);
        out.extend_from_slice(data);
        out.resize(out.len().div_ceil(512) * 512, 0);
    }
    out.resize(out.len() + 1024, 0);
    out
}

/// A descriptor: digest and size of some bytes in the layout.
#[derive(Clone, Debug)]
struct Desc {
    digest: String,
    size: usize,
}

/// One image (manifest + config + one uncompressed layer) as written into the layout.
#[derive(Clone, Debug)]
struct Image {
    manifest: Desc,
    manifest_bytes: Vec<u8>,
    config: Desc,
    layer: Desc,
    /// The file in the layer and its contents.
    file: (String, Vec<u8>),
}

impl Image {
    fn digests(&self) -> BTreeSet<String> {
        [&self.manifest, &self.config, &self.layer].iter().map(|d| d.digest.clone()).collect()
    }
}

/// An OCI image layout on disk.
struct Layout {
    dir: PathBuf,
    blobs: BTreeMap<String, Vec<u8>>,
}

impl Layout {
    fn create(dir: &Path) -> Layout {
        std::fs::create_dir_all(dir.join("blobs/sha256")).unwrap();
        std::fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
        Layout { dir: dir.to_path_buf(), blobs: BTreeMap::new() }
    }

    fn add(&mut self, bytes: Vec<u8>) -> Desc {
        let digest = sha256(&bytes);
        std::fs::write(self.dir.join("blobs/sha256").join(digest.strip_prefix("sha256:").unwrap()), &bytes).unwrap();
        let size = bytes.len();
        self.blobs.insert(digest.clone(), bytes);
        Desc { digest, size }
    }

    /// An image for `arch` whose single layer holds `file`. JSON is pretty-printed with a
    /// trailing newline so that anything re-serializing it would change its digest.
    fn image(&mut self, arch: &str, variant: Option<&str>, file: &str, contents: &str) -> Image {
        let layer_bytes = tar(&[(file, contents.as_bytes())]);
        let layer = self.add(layer_bytes.clone());
        // An uncompressed layer's diff_id is its own digest.
        let mut config = json!({
            "created": "2024-01-01T00:00:00Z",
            "architecture": arch,
            "os": "linux",
            "config": { "Env": ["PATH=/usr/local/bin:/usr/bin:/bin"], "Cmd": ["/bin/true"] },
            "rootfs": { "type": "layers", "diff_ids": [layer.digest] },
            "history": [{ "created": "2024-01-01T00:00:00Z", "created_by": format!("berth test: {file}") }],
        });
        if let Some(v) = variant {
            config["variant"] = json!(v);
        }
        let config = self.add(pretty(&config));
        let manifest_bytes = pretty(&json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": { "mediaType": OCI_CONFIG, "digest": config.digest, "size": config.size },
            "layers": [{ "mediaType": OCI_LAYER_TAR, "digest": layer.digest, "size": layer.size }],
            "annotations": { "org.opencontainers.image.title": file },
        }));
        let manifest = self.add(manifest_bytes.clone());
        Image { manifest, manifest_bytes, config, layer, file: (file.to_string(), contents.as_bytes().to_vec()) }
    }

    /// Writes index.json, tagging each descriptor with a ref name.
    fn write_index(&self, entries: &[(&str, &str, &Desc)]) {
        let manifests: Vec<Value> = entries
            .iter()
            .map(|(media_type, tag, d)| {
                json!({ "mediaType": media_type, "digest": d.digest, "size": d.size, "annotations": { REF_NAME: tag } })
            })
            .collect();
        let index = json!({ "schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests });
        std::fs::write(self.dir.join("index.json"), pretty(&index)).unwrap();
    }
}

fn pretty(v: &Value) -> Vec<u8> {
    let mut b = serde_json::to_vec_pretty(v).unwrap();
    b.push(b'\n');
    b
}

/// The test layout: a two-platform index tagged `multi` and a single-arch image tagged `single`.
struct Fixture {
    layout: Layout,
    amd64: Image,
    arm64: Image,
    index: Desc,
    index_bytes: Vec<u8>,
    single: Image,
}

impl Fixture {
    fn build(dir: &Path) -> Fixture {
        let mut layout = Layout::create(dir);
        let amd64 = layout.image("amd64", None, "hello-amd64.txt", "hello from linux/amd64\n");
        let arm64 = layout.image("arm64", Some("v8"), "hello-arm64.txt", "hello from linux/arm64/v8\n");
        let index_bytes = pretty(&json!({
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": [
                { "mediaType": OCI_MANIFEST, "digest": amd64.manifest.digest, "size": amd64.manifest.size,
                  "platform": { "architecture": "amd64", "os": "linux" } },
                { "mediaType": OCI_MANIFEST, "digest": arm64.manifest.digest, "size": arm64.manifest.size,
                  "platform": { "architecture": "arm64", "os": "linux", "variant": "v8" } },
            ],
            "annotations": { "org.opencontainers.image.description": "berth multi-arch test index" },
        }));
        let index = layout.add(index_bytes.clone());
        let single = layout.image("amd64", None, "single.txt", "just one platform\n");
        layout.write_index(&[(OCI_INDEX, "multi", &index), (OCI_MANIFEST, "single", &single.manifest)]);
        Fixture { layout, amd64, arm64, index, index_bytes, single }
    }

    /// `oci:<dir>:<tag>`
    fn oci_ref(&self, tag: &str) -> String {
        format!("oci:{}:{tag}", self.layout.dir.display())
    }

    /// Every digest the multi-arch index reaches, the index included.
    fn multi_digests(&self) -> BTreeSet<String> {
        let mut s = self.amd64.digests();
        s.extend(self.arm64.digests());
        s.insert(self.index.digest.clone());
        s
    }
}

/// The digests of the files under `<layout>/blobs/sha256`, each checked against its contents.
fn layout_blobs(dir: &Path) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for f in support::files_under(&dir.join("blobs/sha256")) {
        let name = format!("sha256:{}", f.file_name().unwrap().to_str().unwrap());
        let bytes = std::fs::read(&f).unwrap();
        assert_eq!(sha256(&bytes), name, "blob file {} does not hold what its name says", f.display());
        out.insert(name);
    }
    out
}

/// The top-level descriptors of `<layout>/index.json`.
fn layout_index(dir: &Path) -> Vec<Value> {
    let v: Value = serde_json::from_slice(&std::fs::read(dir.join("index.json")).unwrap()).unwrap();
    v["manifests"].as_array().expect("index.json has manifests").clone()
}

// ---------------------------------------------------------------------------------------------
// HTTP helpers
// ---------------------------------------------------------------------------------------------

const ACCEPT_ALL: &str = "application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, \
     application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.docker.distribution.manifest.v2+json";

/// GET a manifest: (status, Docker-Content-Digest, Content-Type, body).
async fn get_manifest(s: &Server, repo: &str, reference: &str, accept: &str) -> (u16, String, String, Vec<u8>) {
    let r = support::client()
        .get(s.url(&format!("/v2/{repo}/manifests/{reference}")))
        .header("accept", accept)
        .send()
        .await
        .unwrap();
    let h = |n: &str| r.headers().get(n).map(|v| v.to_str().unwrap().to_string()).unwrap_or_default();
    let (status, digest, ct) = (r.status().as_u16(), h("docker-content-digest"), h("content-type"));
    (status, digest, ct, r.bytes().await.unwrap().to_vec())
}

async fn head_blob(s: &Server, repo: &str, digest: &str) -> u16 {
    support::client().head(s.url(&format!("/v2/{repo}/blobs/{digest}"))).send().await.unwrap().status().as_u16()
}

async fn tags(s: &Server, repo: &str) -> Vec<String> {
    let r = support::client().get(s.url(&format!("/v2/{repo}/tags/list"))).send().await.unwrap();
    assert_eq!(r.status(), 200, "tags list of {repo}");
    let v: Value = serde_json::from_slice(&r.bytes().await.unwrap()).unwrap();
    assert_eq!(v["name"], repo, "tags list names the repository");
    v["tags"].as_array().map(|a| a.iter().map(|t| t.as_str().unwrap().to_string()).collect()).unwrap_or_default()
}

/// Asserts GET of a manifest gives 404 with MANIFEST_UNKNOWN.
async fn assert_manifest_unknown(s: &Server, repo: &str, reference: &str) {
    let r = support::client()
        .get(s.url(&format!("/v2/{repo}/manifests/{reference}")))
        .header("accept", ACCEPT_ALL)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404, "GET /v2/{repo}/manifests/{reference} after delete");
    assert_eq!(support::error_code(r).await, "MANIFEST_UNKNOWN");
}

/// Every blob a manifest (image or index, fetched from the registry) references is HEAD-able
/// in `repo`; recurses into index children. Returns the digests checked (manifests included).
async fn assert_complete(s: &Server, repo: &str, reference: &str) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    let mut todo = vec![reference.to_string()];
    while let Some(r) = todo.pop() {
        let (status, digest, ct, body) = get_manifest(s, repo, &r, ACCEPT_ALL).await;
        assert_eq!(status, 200, "GET /v2/{repo}/manifests/{r}");
        assert_eq!(digest, sha256(&body), "Docker-Content-Digest of {repo}:{r} is the digest of the body");
        seen.insert(digest);
        let m: Value = serde_json::from_slice(&body).unwrap();
        if ct == OCI_INDEX || ct == DOCKER_LIST {
            for c in m["manifests"].as_array().unwrap() {
                todo.push(c["digest"].as_str().unwrap().to_string());
            }
            continue;
        }
        assert!(ct == OCI_MANIFEST || ct == DOCKER_MANIFEST, "unexpected manifest type {ct:?} for {repo}:{r}");
        let mut blobs = vec![m["config"]["digest"].as_str().unwrap().to_string()];
        blobs.extend(m["layers"].as_array().unwrap().iter().map(|l| l["digest"].as_str().unwrap().to_string()));
        for b in blobs {
            assert_eq!(head_blob(s, repo, &b).await, 200, "HEAD /v2/{repo}/blobs/{b}");
            seen.insert(b);
        }
    }
    seen
}

// ---------------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------------

/// The hand-written tar writer produces archives GNU tar reads back (a check on the test
/// fixture itself, so that a broken fixture is not mistaken for a registry bug).
#[test]
fn tar_writer_is_readable_by_gnu_tar() {
    require!("tar");
    let sb = Sandbox::new();
    let archive = sb.path("t.tar");
    std::fs::write(&archive, tar(&[("a.txt", b"alpha\n"), ("b.txt", &[b'x'; 513])])).unwrap();
    let listing = text(&run(Command::new("tar").arg("-tvf").arg(&archive)));
    assert!(listing.contains("a.txt") && listing.contains("b.txt") && listing.contains("513"), "{listing}");
    let out = sb.path("x");
    std::fs::create_dir_all(&out).unwrap();
    run(Command::new("tar").arg("-xf").arg(&archive).arg("-C").arg(&out));
    assert_eq!(std::fs::read(out.join("a.txt")).unwrap(), b"alpha\n");
    assert_eq!(std::fs::read(out.join("b.txt")).unwrap(), vec![b'x'; 513]);
}

/// skopeo pushes a two-platform OCI index, Berth stores it byte for byte, and skopeo pulls it
/// back with every digest unchanged.
#[tokio::test]
async fn skopeo_round_trips_a_multi_arch_index_byte_exact() {
    require!("skopeo");
    let sb = Sandbox::new();
    let fx = Fixture::build(&sb.path("layout"));
    let s = Server::start();
    let dest = format!("docker://{}/berth/multi:v1", s.addr);

    // --preserve-digests: otherwise skopeo gzips the uncompressed layers on the way to a
    // registry and rewrites the manifests.
    run(sb.skopeo(&["copy", "--all", "--preserve-digests", "--dest-tls-verify=false", &fx.oci_ref("multi"), &dest]));

    // The index as stored is the index as sent.
    let raw = run(sb.skopeo(&["inspect", "--raw", "--tls-verify=false", &dest]));
    assert_eq!(raw, fx.index_bytes, "skopeo inspect --raw differs from the pushed index bytes");

    let (status, digest, ct, body) = get_manifest(&s, "berth/multi", "v1", OCI_INDEX).await;
    assert_eq!(status, 200);
    assert_eq!(digest, fx.index.digest, "Docker-Content-Digest of the index");
    assert_eq!(ct, OCI_INDEX);
    assert_eq!(body, fx.index_bytes);
    for img in [&fx.amd64, &fx.arm64] {
        let (status, digest, ct, body) = get_manifest(&s, "berth/multi", &img.manifest.digest, OCI_MANIFEST).await;
        assert_eq!((status, ct.as_str()), (200, OCI_MANIFEST));
        assert_eq!(digest, img.manifest.digest);
        assert_eq!(body, img.manifest_bytes);
    }
    assert_eq!(assert_complete(&s, "berth/multi", "v1").await, fx.multi_digests());
    assert_eq!(tags(&s, "berth/multi").await, ["v1"]);

    // And back into a fresh layout.
    let out = sb.path("out");
    run(sb.skopeo(&[
        "copy",
        "--all",
        "--preserve-digests",
        "--src-tls-verify=false",
        "--dest-oci-accept-uncompressed-layers",
        &dest,
        &format!("oci:{}:v1", out.display()),
    ]));
    let top = layout_index(&out);
    assert_eq!(top.len(), 1, "one image in the pulled layout: {top:?}");
    assert_eq!(top[0]["digest"], fx.index.digest.as_str(), "index digest after the round trip");
    assert_eq!(top[0]["mediaType"], OCI_INDEX);
    assert_eq!(top[0]["annotations"][REF_NAME], "v1");
    assert_eq!(layout_blobs(&out), fx.multi_digests(), "blob set after the round trip");
    for d in fx.multi_digests() {
        let name = d.strip_prefix("sha256:").unwrap();
        assert_eq!(std::fs::read(out.join("blobs/sha256").join(name)).unwrap(), fx.layout.blobs[&d], "blob {d}");
    }
}

/// Repository names of several path segments work end to end (push, inspect, list-tags,
/// catalog, pull), and umoci unpacks what comes back into the expected file.
#[tokio::test]
async fn skopeo_and_umoci_with_nested_repository_names() {
    require!("skopeo", "umoci");
    let sb = Sandbox::new();
    let fx = Fixture::build(&sb.path("layout"));
    let s = Server::start();
    let names = ["team/sub/app", "a/b/c/d/e/f", "org-1/group_2/svc.v3", "team/sub"];

    for (i, name) in names.iter().enumerate() {
        let dest = format!("docker://{}/{name}:1.{i}", s.addr);
        run(sb.skopeo(&["copy", "--preserve-digests", "--dest-tls-verify=false", &fx.oci_ref("single"), &dest]));
        let raw = run(sb.skopeo(&["inspect", "--raw", "--tls-verify=false", &dest]));
        assert_eq!(raw, fx.single.manifest_bytes, "{name}: inspect --raw");

        let listed: Value = serde_json::from_slice(&run(sb.skopeo(&[
            "list-tags",
            "--tls-verify=false",
            &format!("docker://{}/{name}", s.addr),
        ])))
        .unwrap();
        assert_eq!(listed["Tags"], json!([format!("1.{i}")]), "{name}: skopeo list-tags");
        assert_eq!(tags(&s, name).await, [format!("1.{i}")], "{name}: tags list");
        assert_eq!(assert_complete(&s, name, &format!("1.{i}")).await, fx.single.digests());

        // Back out, then unpacked by umoci.
        let out = sb.path(&format!("out{i}"));
        run(sb.skopeo(&[
            "copy",
            "--preserve-digests",
            "--src-tls-verify=false",
            "--dest-oci-accept-uncompressed-layers",
            &dest,
            &format!("oci:{}:t", out.display()),
        ]));
        assert_eq!(layout_blobs(&out), fx.single.digests(), "{name}: blob set after the round trip");
        let bundle = sb.path(&format!("bundle{i}"));
        run(sb
            .command("umoci")
            .args(["unpack", "--rootless", "--image"])
            .arg(format!("{}:t", out.display()))
            .arg(&bundle));
        let (file, contents) = &fx.single.file;
        assert_eq!(&std::fs::read(bundle.join("rootfs").join(file)).unwrap(), contents, "{name}: unpacked file");
    }

    let r = support::client().get(s.url("/v2/_catalog")).send().await.unwrap();
    assert_eq!(r.status(), 200, "catalog");
    let catalog: Value = serde_json::from_slice(&r.bytes().await.unwrap()).unwrap();
    let repos: BTreeSet<&str> =
        catalog["repositories"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
    assert_eq!(repos, names.iter().copied().collect(), "catalog lists every nested name");
}

/// podman pulls (by tag and by digest, and a multi-arch index for its platform), tags and
/// pushes to another repository; what it pushed is complete in the registry.
#[tokio::test]
async fn podman_pull_tag_push() {
    require!("skopeo", "podman");
    let sb = Sandbox::new();
    let fx = Fixture::build(&sb.path("layout"));
    let s = Server::start();
    let a = &s.addr;
    run(sb.skopeo(&[
        "copy",
        "--preserve-digests",
        "--dest-tls-verify=false",
        &fx.oci_ref("single"),
        &format!("docker://{a}/src/app:single"),
    ]));
    run(sb.skopeo(&[
        "copy",
        "--all",
        "--preserve-digests",
        "--dest-tls-verify=false",
        &fx.oci_ref("multi"),
        &format!("docker://{a}/src/multi:v1"),
    ]));

    // Pull by tag.
    let src = format!("{a}/src/app:single");
    run(sb.podman(&["pull", "--tls-verify=false", &src]));
    let inspect: Value = serde_json::from_slice(&run(sb.podman(&["image", "inspect", &src]))).unwrap();
    assert_eq!(inspect[0]["Digest"], fx.single.manifest.digest.as_str(), "podman's idea of the manifest digest");
    assert_eq!(inspect[0]["Architecture"], "amd64");

    // Tag and push to another repository.
    let dst = format!("{a}/dst/team/app:pushed");
    run(sb.podman(&["tag", &src, &dst]));
    run(sb.podman(&["push", "--tls-verify=false", &dst]));
    assert_eq!(tags(&s, "dst/team/app").await, ["pushed"]);
    let checked = assert_complete(&s, "dst/team/app", "pushed").await;
    assert!(checked.len() >= 3, "manifest, config and a layer: {checked:?}");

    // Pull by digest, into fresh storage so that the registry really serves it.
    let sb2 = Sandbox::new();
    let by_digest = format!("{a}/src/app@{}", fx.single.manifest.digest);
    run(sb2.podman(&["pull", "--tls-verify=false", &by_digest]));
    let inspect: Value = serde_json::from_slice(&run(sb2.podman(&["image", "inspect", &by_digest]))).unwrap();
    assert_eq!(inspect[0]["Digest"], fx.single.manifest.digest.as_str());

    // A multi-arch index: podman picks the platform asked for.
    for (arch, img) in [("amd64", &fx.amd64), ("arm64", &fx.arm64)] {
        let sb3 = Sandbox::new();
        let multi = format!("{a}/src/multi:v1");
        run(sb3.podman(&["pull", "--tls-verify=false", "--platform", &format!("linux/{arch}"), &multi]));
        let inspect: Value = serde_json::from_slice(&run(sb3.podman(&["image", "inspect", &multi]))).unwrap();
        assert_eq!(inspect[0]["Architecture"], arch, "{inspect}");
        assert_eq!(inspect[0]["Digest"], fx.index.digest.as_str(), "pulled via the index: {inspect}");
        let digests: Vec<&str> =
            inspect[0]["RepoDigests"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
        assert!(
            digests.iter().any(|d| d.ends_with(&img.manifest.digest)),
            "{arch}: RepoDigests mention the platform manifest {}: {digests:?}",
            img.manifest.digest
        );
    }
}

/// skopeo copying docker:// to docker:// on the same registry (which lets it mount blobs
/// across repositories instead of uploading them again).
#[tokio::test]
async fn skopeo_copies_between_repositories_on_one_registry() {
    require!("skopeo");
    let sb = Sandbox::new();
    let fx = Fixture::build(&sb.path("layout"));
    let s = Server::start();
    let a = &s.addr;
    let origin = format!("docker://{a}/origin/app:v1");
    run(sb.skopeo(&["copy", "--all", "--preserve-digests", "--dest-tls-verify=false", &fx.oci_ref("multi"), &origin]));

    let mirror = format!("docker://{a}/mirror/team/app:v1");
    let o = run_unchecked(sb.skopeo(&[
        "--debug",
        "copy",
        "--all",
        "--preserve-digests",
        "--src-tls-verify=false",
        "--dest-tls-verify=false",
        &origin,
        &mirror,
    ]));
    let log = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "skopeo copy between repositories failed ({}):\n{log}", o.status);
    // skopeo remembers (in its blob info cache) that the layers live in origin/app, so it
    // mounts them instead of uploading; a failed mount would silently fall back to an upload.
    let mounted = log.lines().filter(|l| l.contains("mount OK")).count();
    assert!(mounted >= 2, "expected both layers to be mounted from origin/app, {mounted} were; skopeo log:\n{log}");

    assert!(tags(&s, "mirror/team/app").await.contains(&"v1".to_string()), "mirror has the tag");
    let raw = run(sb.skopeo(&["inspect", "--raw", "--tls-verify=false", &mirror]));
    assert_eq!(raw, fx.index_bytes, "the copied index is byte-identical");
    assert_eq!(assert_complete(&s, "mirror/team/app", "v1").await, fx.multi_digests());

    // A single image, without --all, into a third repository, then a second tag in the mirror.
    run(sb.skopeo(&[
        "copy",
        "--preserve-digests",
        "--dest-tls-verify=false",
        &fx.oci_ref("single"),
        &format!("docker://{a}/origin/single:s"),
    ]));
    run(sb.skopeo(&[
        "copy",
        "--preserve-digests",
        "--src-tls-verify=false",
        "--dest-tls-verify=false",
        &format!("docker://{a}/origin/single:s"),
        &format!("docker://{a}/mirror/team/app:single"),
    ]));
    let mut t = tags(&s, "mirror/team/app").await;
    t.sort();
    assert_eq!(t, ["single", "v1"]);
    assert_eq!(assert_complete(&s, "mirror/team/app", "single").await, fx.single.digests());
    // The source is untouched.
    assert_eq!(assert_complete(&s, "origin/app", "v1").await, fx.multi_digests());
}

/// skopeo delete, by tag and by digest: the manifest is gone afterwards (404 MANIFEST_UNKNOWN).
#[tokio::test]
async fn skopeo_delete_by_tag_and_by_digest() {
    require!("skopeo");
    let sb = Sandbox::new();
    let fx = Fixture::build(&sb.path("layout"));
    let s = Server::start();
    let a = &s.addr;

    // By tag (skopeo resolves the tag and deletes the manifest by digest).
    let by_tag = format!("docker://{a}/del/tag/app:one");
    run(sb.skopeo(&["copy", "--preserve-digests", "--dest-tls-verify=false", &fx.oci_ref("single"), &by_tag]));
    assert_eq!(get_manifest(&s, "del/tag/app", "one", ACCEPT_ALL).await.0, 200);
    run(sb.skopeo(&["delete", "--tls-verify=false", &by_tag]));
    assert_manifest_unknown(&s, "del/tag/app", "one").await;
    assert_manifest_unknown(&s, "del/tag/app", &fx.single.manifest.digest).await;
    assert!(!run_unchecked(sb.skopeo(&["inspect", "--raw", "--tls-verify=false", &by_tag])).status.success());

    // By digest.
    let repo = "del/digest/app";
    run(sb.skopeo(&[
        "copy",
        "--preserve-digests",
        "--dest-tls-verify=false",
        &fx.oci_ref("single"),
        &format!("docker://{a}/{repo}:two"),
    ]));
    run(sb.skopeo(&["delete", "--tls-verify=false", &format!("docker://{a}/{repo}@{}", fx.single.manifest.digest)]));
    assert_manifest_unknown(&s, repo, &fx.single.manifest.digest).await;
    assert_manifest_unknown(&s, repo, "two").await;

    // A multi-arch index by tag: the index goes; its children were pushed in their own right.
    let multi = format!("docker://{a}/del/multi:v1");
    run(sb.skopeo(&["copy", "--all", "--preserve-digests", "--dest-tls-verify=false", &fx.oci_ref("multi"), &multi]));
    run(sb.skopeo(&["delete", "--tls-verify=false", &multi]));
    assert_manifest_unknown(&s, "del/multi", "v1").await;
    assert_manifest_unknown(&s, "del/multi", &fx.index.digest).await;
    // Deleting again fails cleanly.
    let again = run_unchecked(sb.skopeo(&[
        "delete",
        "--tls-verify=false",
        &format!("docker://{a}/del/multi@{}", fx.index.digest),
    ]));
    assert!(!again.status.success(), "deleting a deleted manifest succeeded");
}

/// skopeo and podman against Berth on HTTPS in Harbor mode with certificate verification
/// on: the throwaway CA comes only from `--cert-dir`, and without it they refuse the server.
/// Tokens come from the https realm the challenge names.
#[tokio::test]
async fn skopeo_and_podman_over_https_verify_the_certificate() {
    require!("skopeo", "podman");
    let h = crate::tls::start_https("harbor");
    let sb = Sandbox::new();
    let fx = Fixture::build(&sb.path("layout"));
    let certs = h.cert_dir();
    let certs = certs.to_str().unwrap();
    let creds = format!("admin:{}", support::ADMIN_PASSWORD);
    let a = &h.server.addr;
    let dest = format!("docker://{a}/library/app:v1");

    let refused = run_unchecked(sb.skopeo(&["copy", "--dest-creds", &creds, &fx.oci_ref("single"), &dest]));
    assert!(!refused.status.success(), "an unknown CA must be refused");
    assert!(text(&refused.stderr).contains("certificate"), "{}", text(&refused.stderr));

    run(sb.skopeo(&[
        "copy",
        "--preserve-digests",
        "--dest-cert-dir",
        certs,
        "--dest-creds",
        &creds,
        &fx.oci_ref("single"),
        &dest,
    ]));
    let raw = run(sb.skopeo(&["inspect", "--raw", "--cert-dir", certs, "--creds", &creds, &dest]));
    assert_eq!(raw, fx.single.manifest_bytes, "skopeo reads back the manifest byte for byte");
    run(sb.skopeo(&[
        "copy",
        "--src-cert-dir",
        certs,
        "--src-creds",
        &creds,
        &dest,
        &format!("oci:{}:back", sb.path("back").display()),
    ]));

    let src = format!("{a}/library/app:v1");
    run(sb.podman(&["pull", "--cert-dir", certs, "--creds", &creds, &src]));
    let inspect: Value = serde_json::from_slice(&run(sb.podman(&["image", "inspect", &src]))).unwrap();
    assert_eq!(inspect[0]["Digest"], fx.single.manifest.digest.as_str());
    let dst = format!("{a}/library/copy:v2");
    run(sb.podman(&["tag", &src, &dst]));
    run(sb.podman(&["push", "--cert-dir", certs, "--creds", &creds, &dst]));
    let listed: Value = serde_json::from_slice(&run(sb.skopeo(&[
        "list-tags",
        "--cert-dir",
        certs,
        "--creds",
        &creds,
        &format!("docker://{a}/library/copy"),
    ])))
    .unwrap();
    assert_eq!(listed["Tags"], json!(["v2"]));
}
