//! S3-compatible storage (a real Garage started by scripts/garage-test-server.sh): two
//! instances with no shared disk at all, and blob downloads redirected to the storage.

use berth_blob_s3::testing::{Garage, garage};

use crate::support::*;

/// The settings that point Berth at `bucket` on the test process's Garage.
fn s3_env(g: &Garage, bucket: &str) -> Vec<(&'static str, String)> {
    vec![
        ("BERTH_STORAGE_KIND", "s3".into()),
        ("BERTH_STORAGE_S3_ENDPOINT", g.endpoint.clone()),
        ("BERTH_STORAGE_S3_REGION", g.region.clone()),
        ("BERTH_STORAGE_S3_BUCKET", bucket.into()),
        ("BERTH_STORAGE_S3_ACCESS_KEY", g.access_key.clone()),
        ("BERTH_STORAGE_S3_SECRET_KEY", g.secret_key.clone()),
    ]
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
    let bucket = g.bucket("it");
    let tmp = tempfile::tempdir().unwrap();
    let mut env = s3_env(g, &bucket);
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
    let bucket = g.bucket("it");
    let tmp = tempfile::tempdir().unwrap();
    let mut env = s3_env(g, &bucket);
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
    assert!(location.starts_with(&g.endpoint), "{location}");
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
