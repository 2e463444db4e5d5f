//! S3-compatible storage (a real Garage started by scripts/garage-test-server.sh): two
//! instances with no shared disk at all, and blob downloads redirected to the storage.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};

use crate::support::*;

struct Garage {
    vars: HashMap<String, String>,
}

fn garage_binary() -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let home = std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo/bin"));
    std::env::split_paths(&path).chain(home).map(|d| d.join("garage")).find(|p| p.is_file())
}

/// One Garage for this test process (the script stops it when the process exits).
fn garage() -> Option<&'static Garage> {
    static G: OnceLock<Option<Garage>> = OnceLock::new();
    G.get_or_init(|| {
        let Some(bin) = garage_binary() else {
            assert_ne!(
                std::env::var("CI").as_deref(),
                Ok("true"),
                "garage is required in CI (scripts/test.sh installs it)"
            );
            eprintln!("skipped: garage is not installed");
            return None;
        };
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../scripts/garage-test-server.sh");
        let mut child = Command::new("bash")
            .args([script, "--watch", &std::process::id().to_string()])
            .env("GARAGE_BIN", bin)
            .stdout(Stdio::piped())
            .spawn()
            .expect("garage-test-server.sh");
        let mut vars = HashMap::new();
        for line in BufReader::new(child.stdout.take().unwrap()).lines() {
            let line = line.unwrap();
            if line == "READY" {
                break;
            }
            if let Some((k, v)) = line.split_once('=') {
                vars.insert(k.to_string(), v.to_string());
            }
        }
        assert!(vars.contains_key("GARAGE_ENDPOINT"), "garage did not start");
        std::mem::forget(child);
        Some(Garage { vars })
    })
    .as_ref()
}

impl Garage {
    fn bucket(&self) -> String {
        static N: AtomicU32 = AtomicU32::new(0);
        let name = format!("berth-it-{}-{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed));
        let g = |args: &[&str]| {
            let out = Command::new(&self.vars["GARAGE_BIN"])
                .arg("-c")
                .arg(&self.vars["GARAGE_CONFIG"])
                .args(args)
                .output()
                .unwrap();
            assert!(out.status.success(), "garage {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        };
        g(&["bucket", "create", &name]);
        g(&["bucket", "allow", "--read", "--write", "--owner", &name, "--key", &self.vars["GARAGE_ACCESS_KEY"]]);
        name
    }

    fn env(&self, bucket: &str) -> Vec<(&'static str, String)> {
        vec![
            ("BERTH_STORAGE_KIND", "s3".into()),
            ("BERTH_STORAGE_S3_ENDPOINT", self.vars["GARAGE_ENDPOINT"].clone()),
            ("BERTH_STORAGE_S3_REGION", self.vars["GARAGE_REGION"].clone()),
            ("BERTH_STORAGE_S3_BUCKET", bucket.into()),
            ("BERTH_STORAGE_S3_ACCESS_KEY", self.vars["GARAGE_ACCESS_KEY"].clone()),
            ("BERTH_STORAGE_S3_SECRET_KEY", self.vars["GARAGE_SECRET_KEY"].clone()),
        ]
    }
}

fn spawn(dir: &std::path::Path, env: &[(&str, String)]) -> Server {
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    Server::spawn(dir, &env)
}

#[tokio::test]
async fn two_instances_on_s3_share_pushes_and_uploads() {
    let Some(g) = garage() else { return };
    if !crate::ha_postgres::pg_available() {
        return;
    }
    let db = crate::ha_postgres::PgDb::create();
    let bucket = g.bucket();
    let tmp = tempfile::tempdir().unwrap();
    let mut env = g.env(&bucket);
    env.push(("BERTH_AUTH_MODE", "open".into()));
    env.push(("BERTH_DATABASE_URL", db.url()));
    let a = spawn(&tmp.path().join("a"), &env);
    let b = spawn(&tmp.path().join("b"), &env);
    let c = client();

    let digest = push_image(&c, &a, "library/s3", "v1", "s3").await;
    let r = c
        .get(b.url("/v2/library/s3/manifests/v1"))
        .header("accept", "application/vnd.oci.image.manifest.v1+json")
        .send()
        .await
        .unwrap();
    assert_eq!(header(&r, "docker-content-digest"), digest);

    // Chunked upload: 6 MiB on A, 3 MiB on B, finished on B (parts stored in S3).
    let data: Vec<u8> = (0..9u32 << 20).map(|i| (i.wrapping_mul(2654435761) >> 24) as u8).collect();
    let r = c.post(a.url("/v2/library/s3/blobs/uploads/")).send().await.unwrap();
    let loc = header(&r, "location");
    let r =
        c.patch(a.url(&loc)).header("content-range", "0-6291455").body(data[..6 << 20].to_vec()).send().await.unwrap();
    assert_eq!(r.status(), 202);
    let loc = header(&r, "location");
    let end = data.len() - 1;
    let r = c
        .patch(b.url(&loc))
        .header("content-range", format!("6291456-{end}"))
        .body(data[6 << 20..].to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202, "B continues A's upload");
    let loc = header(&r, "location");
    let r = c.put(b.url(&format!("{loc}?digest={}", sha256(&data)))).send().await.unwrap();
    assert_eq!(r.status(), 201);
    for s in [&a, &b] {
        let r = c.get(s.url(&format!("/v2/library/s3/blobs/{}", sha256(&data)))).send().await.unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(sha256(&r.bytes().await.unwrap()), sha256(&data));
    }
    let r = c.get(a.url("/api/v2.0/health")).send().await.unwrap();
    assert_eq!(r.status(), 200, "S3 storage is checked by health");
}

#[tokio::test]
async fn downloads_redirect_to_presigned_storage_urls() {
    let Some(g) = garage() else { return };
    let bucket = g.bucket();
    let tmp = tempfile::tempdir().unwrap();
    let mut env = g.env(&bucket);
    env.push(("BERTH_AUTH_MODE", "open".into()));
    env.push(("BERTH_STORAGE_REDIRECT", "true".into()));
    let s = spawn(&tmp.path().join("data"), &env);
    let c = client_builder().build().unwrap();
    let layer = b"a layer fetched straight from the storage".repeat(1000);
    let digest = push_blob(&c, &s, "library/redirect", &layer).await;

    let no_follow = client();
    let r = no_follow.get(s.url(&format!("/v2/library/redirect/blobs/{digest}"))).send().await.unwrap();
    assert_eq!(r.status(), 307);
    assert_eq!(header(&r, "docker-content-digest"), digest);
    let location = header(&r, "location");
    assert!(location.starts_with(&g.vars["GARAGE_ENDPOINT"]), "{location}");
    assert!(location.contains("X-Amz-Signature="), "{location}");
    // A plain client following the redirect gets the bytes, ranges included.
    let r = c.get(s.url(&format!("/v2/library/redirect/blobs/{digest}"))).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.bytes().await.unwrap().as_ref(), &layer[..]);
    let r = c
        .get(s.url(&format!("/v2/library/redirect/blobs/{digest}")))
        .header("range", "bytes=2-9")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 206);
    assert_eq!(r.bytes().await.unwrap().as_ref(), &layer[2..10]);
    // HEAD is answered by Berth; unknown blobs are 404 from Berth, never a redirect.
    let r = no_follow.head(s.url(&format!("/v2/library/redirect/blobs/{digest}"))).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let missing = sha256(b"missing");
    let r = no_follow.get(s.url(&format!("/v2/library/redirect/blobs/{missing}"))).send().await.unwrap();
    assert_eq!(r.status(), 404);

    // A real client pulls a whole image through the redirects.
    if tool_available("skopeo") {
        push_image(&c, &s, "library/redirect", "v1", "redirect").await;
        let out = tmp.path().join("copy");
        run(&[
            "skopeo",
            "copy",
            "--src-tls-verify=false",
            &format!("docker://{}/library/redirect:v1", s.addr),
            &format!("oci:{}:v1", out.display()),
        ]);
        assert!(out.join("index.json").exists());
    }
}
