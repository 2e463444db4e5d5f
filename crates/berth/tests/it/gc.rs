//! Online garbage collection through Harbor's API on the real binary, on SQLite with
//! local storage, on PostgreSQL, and on S3 (Garage): what a run frees and reports, dry
//! runs, untagged manifests, stops, bad input, GC racing pushes of the blobs it sweeps,
//! and `berth gc`.

use std::time::Duration;

use berth_core::blobstore::BlobStore;

use crate::support::*;

/// GC without a time window, so that what was just pushed and deleted is collected.
const NO_WINDOW: (&str, &str) = ("BERTH_GC_TIME_WINDOW_HOURS", "0");

fn harbor_no_window(dir: &std::path::Path, extra: &[(&str, &str)]) -> Server {
    let mut env = vec![("BERTH_AUTH_MODE", "harbor"), NO_WINDOW];
    env.extend_from_slice(extra);
    Server::spawn(dir, &env)
}

/// Starts a GC (`POST /system/gc/schedule` with type `Manual`); returns its id.
async fn start_gc(s: &Server, params: serde_json::Value) -> i64 {
    let body = serde_json::json!({"schedule": {"type": "Manual"}, "parameters": params});
    for _ in 0..200 {
        let r = call(s, reqwest::Method::POST, "/api/v2.0/system/gc/schedule", &admin(), Some(&body)).await;
        match r.status().as_u16() {
            201 => return location_id(&r),
            // One GC at a time: the previous one is still finishing.
            409 => tokio::time::sleep(Duration::from_millis(50)).await,
            other => panic!("start GC: {other} {}", r.text().await.unwrap()),
        }
    }
    panic!("a GC never became startable");
}

/// Waits for the GC to end; returns its status and log.
async fn wait_gc(s: &Server, id: i64) -> (String, String) {
    for _ in 0..600 {
        let v = ok_json(s, &format!("/api/v2.0/system/gc/{id}"), &admin()).await;
        let status = v["job_status"].as_str().unwrap().to_owned();
        if status != "Running" && status != "Pending" {
            let r = get(s, &format!("/api/v2.0/system/gc/{id}/log"), &admin()).await;
            assert_eq!(r.status(), 200);
            assert!(header(&r, "content-type").starts_with("text/plain"));
            return (status, r.text().await.unwrap());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("GC {id} did not end within 30 s");
}

async fn gc(s: &Server, params: serde_json::Value) -> String {
    let id = start_gc(s, params).await;
    let (status, log) = wait_gc(s, id).await;
    assert_eq!(status, "Success", "{log}");
    log
}

async fn delete_manifest(c: &reqwest::Client, s: &Server, repo: &str, digest: &str) {
    let r = c.delete(s.url(&format!("/v2/{repo}/manifests/{digest}"))).send().await.unwrap();
    assert_eq!(r.status(), 202, "delete {repo}@{digest}");
}

async fn blob_status(c: &reqwest::Client, s: &Server, repo: &str, digest: &str) -> u16 {
    c.head(s.url(&format!("/v2/{repo}/blobs/{digest}"))).send().await.unwrap().status().as_u16()
}

/// The config and layer digests [`push_image`] uploads for `seed`, and their sizes.
fn image_blobs(seed: &str) -> [(String, usize); 2] {
    let config = format!(r#"{{"architecture":"amd64","os":"linux","seed":"{seed}"}}"#);
    let layer = format!("layer for {seed}");
    [(sha256(config.as_bytes()), config.len()), (sha256(layer.as_bytes()), layer.len())]
}

/// Push two images, delete one, GC: exactly its two blobs go, with their bytes, and the
/// log says how many bytes were freed; a dry run before deletes nothing and reports
/// the same. `stored` says whether storage still holds a blob's bytes.
async fn frees_exactly_the_unreferenced_blobs<F, Fut>(s: &Server, stored: F)
where
    F: Fn(String) -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let c = admin_client();
    push_image(&c, s, "library/gc", "keep", "gc-keep").await;
    let gone = push_image(&c, s, "library/gc", "gone", "gc-gone").await;
    delete_manifest(&c, s, "library/gc", &gone).await;
    let freed: usize = image_blobs("gc-gone").iter().map(|(_, n)| n).sum();

    let log = gc(s, serde_json::json!({"dry_run": true})).await;
    assert!(
        log.contains(&format!("dry run: 0 manifests and 2 blobs eligible for deletion, {freed} B would be freed")),
        "{log}"
    );
    for (d, _) in image_blobs("gc-gone") {
        assert!(stored(d.clone()).await, "a dry run deletes nothing");
        assert!(log.contains(&format!("blob eligible for deletion: {d}")), "{log}");
    }

    let log = gc(s, serde_json::json!({"workers": 2})).await;
    assert!(log.contains(&format!("0 manifests and 2 blobs deleted, {freed} B freed ({freed} bytes)")), "{log}");
    for (d, n) in image_blobs("gc-gone") {
        assert!(log.contains(&format!("delete blob from storage: {d} ({n} bytes)")), "{log}");
        assert!(!stored(d.clone()).await, "{d}: bytes removed");
        assert_eq!(blob_status(&c, s, "library/gc", &d).await, 404);
    }
    for (d, _) in image_blobs("gc-keep") {
        assert!(stored(d.clone()).await, "{d}: referenced bytes stay");
        let r = c.get(s.url(&format!("/v2/library/gc/blobs/{d}"))).send().await.unwrap();
        assert_eq!(r.status(), 200, "the kept image pulls");
    }
    // The deleted image can be pushed again.
    push_image(&c, s, "library/gc", "again", "gc-gone").await;
    let history = ok_json(s, "/api/v2.0/system/gc", &admin()).await;
    assert_eq!(history.as_array().unwrap().len(), 2, "{history}");
    assert_eq!(history[0]["job_name"], "GARBAGE_COLLECTION");
}

#[tokio::test]
async fn gc_on_sqlite_frees_exactly_the_unreferenced_blobs() {
    let tmp = tempfile::tempdir().unwrap();
    let s = harbor_no_window(&tmp.path().join("data"), &[]);
    frees_exactly_the_unreferenced_blobs(&s, |d| {
        let path = s.blob_path(&d);
        async move { path.exists() }
    })
    .await;
}

#[tokio::test]
async fn gc_on_postgres_frees_exactly_the_unreferenced_blobs() {
    if !crate::ha_postgres::pg_available() {
        return;
    }
    let db = crate::ha_postgres::PgDb::create();
    let tmp = tempfile::tempdir().unwrap();
    let url = db.url();
    let s = harbor_no_window(&tmp.path().join("data"), &[("BERTH_DATABASE_URL", &url)]);
    frees_exactly_the_unreferenced_blobs(&s, |d| {
        let path = s.blob_path(&d);
        async move { path.exists() }
    })
    .await;
}

#[tokio::test]
async fn gc_on_s3_frees_exactly_the_unreferenced_blobs() {
    let Some(g) = berth_blob_s3::testing::garage() else { return };
    let bucket = g.bucket("gc");
    let tmp = tempfile::tempdir().unwrap();
    let env = [
        ("BERTH_STORAGE_KIND", "s3".to_owned()),
        ("BERTH_STORAGE_S3_ENDPOINT", g.endpoint.clone()),
        ("BERTH_STORAGE_S3_REGION", g.region.clone()),
        ("BERTH_STORAGE_S3_BUCKET", bucket.clone()),
        ("BERTH_STORAGE_S3_ACCESS_KEY", g.access_key.clone()),
        ("BERTH_STORAGE_S3_SECRET_KEY", g.secret_key.clone()),
    ];
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let s = harbor_no_window(&tmp.path().join("data"), &env);
    // The server uses the bucket's root (no prefix); look where it writes.
    let opts = berth_blob_s3::S3Options { prefix: String::new(), ..g.options(&bucket) };
    let store = std::sync::Arc::new(berth_blob_s3::S3BlobStore::open(opts).await.unwrap());
    frees_exactly_the_unreferenced_blobs(&s, |d| {
        let store = store.clone();
        async move { store.stat(&d.parse().unwrap()).await.unwrap().is_some() }
    })
    .await;
}

#[tokio::test]
async fn untagged_manifests_go_only_when_asked() {
    let tmp = tempfile::tempdir().unwrap();
    let s = harbor_no_window(&tmp.path().join("data"), &[]);
    let c = admin_client();
    let old = push_image(&c, &s, "library/untagged", "latest", "first").await;
    push_image(&c, &s, "library/untagged", "latest", "second").await; // untags the first
    let accept = ("accept", "application/vnd.oci.image.manifest.v1+json");
    let manifest = |d: &str| c.get(s.url(&format!("/v2/library/untagged/manifests/{d}"))).header(accept.0, accept.1);

    gc(&s, serde_json::json!({})).await;
    assert_eq!(manifest(&old).send().await.unwrap().status(), 200, "kept without delete_untagged");
    let log = gc(&s, serde_json::json!({"delete_untagged": true, "dry_run": true})).await;
    assert!(log.contains(&format!("untagged artifact eligible for deletion: library/untagged@{old}")), "{log}");
    assert_eq!(manifest(&old).send().await.unwrap().status(), 200, "a dry run deletes nothing");

    let log = gc(&s, serde_json::json!({"delete_untagged": true})).await;
    assert!(log.contains(&format!("delete the untagged artifact library/untagged@{old}")), "{log}");
    assert!(log.contains("1 manifests and 2 blobs deleted"), "its blobs go in the same run: {log}");
    assert_eq!(manifest(&old).send().await.unwrap().status(), 404);
    assert_eq!(manifest("latest").send().await.unwrap().status(), 200);
    for (d, _) in image_blobs("second") {
        assert_eq!(blob_status(&c, &s, "library/untagged", &d).await, 200);
    }
}

#[tokio::test]
async fn bad_gc_input_is_refused_naming_the_field() {
    let s = Server::start_harbor();
    let post = |body: serde_json::Value| {
        let s = &s;
        async move {
            let r = call(s, reqwest::Method::POST, "/api/v2.0/system/gc/schedule", &admin(), Some(&body)).await;
            assert_eq!(r.status(), 400, "{body}");
            body_json(r).await["errors"][0]["message"].as_str().unwrap().to_owned()
        }
    };
    let manual = |p: serde_json::Value| serde_json::json!({"schedule": {"type": "Manual"}, "parameters": p});
    assert!(post(manual(serde_json::json!({"workers": 6}))).await.contains("parameters.workers"));
    assert!(post(manual(serde_json::json!({"workers": 0}))).await.contains("parameters.workers"));
    assert!(post(manual(serde_json::json!({"dry_run": "maybe"}))).await.contains("parameters.dry_run"));
    assert!(
        post(manual(serde_json::json!({"delete_everything": true}))).await.contains("parameters.delete_everything")
    );
    let m = post(serde_json::json!({"schedule": {"type": "Custom", "cron": "every day"}})).await;
    assert!(m.contains("cron"), "{m}");
    let m = post(serde_json::json!({"schedule": {"type": "Sometimes"}})).await;
    assert!(m.contains("type"), "{m}");
    assert_eq!(status(&s, reqwest::Method::GET, "/api/v2.0/system/gc/12345", &admin(), None).await, 404);

    // A schedule is kept with GC's parameters and shown back.
    let body = serde_json::json!({"schedule": {"type": "Custom", "cron": "0 0 4 * * *"}, "parameters": {"delete_untagged": true, "workers": 2}});
    assert_eq!(status(&s, reqwest::Method::PUT, "/api/v2.0/system/gc/schedule", &admin(), Some(&body)).await, 200);
    let v = ok_json(&s, "/api/v2.0/system/gc/schedule", &admin()).await;
    assert_eq!(v["schedule"]["cron"], "0 0 4 * * *", "{v}");
    let p: serde_json::Value = serde_json::from_str(v["job_parameters"].as_str().unwrap()).unwrap();
    assert_eq!(p, serde_json::json!({"delete_untagged": true, "dry_run": false, "workers": 2}));
}

/// A stopped GC leaves a consistent store: whatever it claimed is absent and
/// unreferenced, the next run removes it, and every image still pulls.
#[tokio::test]
async fn a_stopped_gc_leaves_a_consistent_store() {
    let tmp = tempfile::tempdir().unwrap();
    let s = harbor_no_window(&tmp.path().join("data"), &[]);
    let c = admin_client();
    let mut gone = Vec::new();
    for i in 0..30 {
        let d = push_image(&c, &s, "library/stop", &format!("t{i}"), &format!("stop-{i}")).await;
        if i % 3 != 0 {
            gone.push((i, d));
        }
    }
    for (_, d) in &gone {
        delete_manifest(&c, &s, "library/stop", d).await;
    }
    let id = start_gc(&s, serde_json::json!({})).await;
    assert_eq!(status(&s, reqwest::Method::PUT, &format!("/api/v2.0/system/gc/{id}"), &admin(), None).await, 200);
    let (st, log) = wait_gc(&s, id).await;
    assert!(st == "Stopped" || st == "Success", "{st}: {log}");
    for i in (0..30).step_by(3) {
        for (d, _) in image_blobs(&format!("stop-{i}")) {
            assert_eq!(blob_status(&c, &s, "library/stop", &d).await, 200, "kept images are whole after a stop");
        }
    }
    gc(&s, serde_json::json!({})).await;
    for (i, _) in &gone {
        for (d, _) in image_blobs(&format!("stop-{i}")) {
            assert_eq!(blob_status(&c, &s, "library/stop", &d).await, 404);
        }
    }
    let left = files_under(&s.blobs_dir()).len();
    assert_eq!(left, 20, "only the 10 kept images' blobs remain on disk");
}

/// GC rounds while clients keep pushing images whose layers GC keeps sweeping (a few
/// contents, dereferenced again right after each push). A push may be refused
/// (`MANIFEST_BLOB_UNKNOWN`: the layer went between its upload and the manifest, and
/// a retry uploads it again), but an image the registry accepted always pulls whole.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn gc_racing_pushes_never_loses_a_referenced_blob() {
    let tmp = tempfile::tempdir().unwrap();
    let s = std::sync::Arc::new(harbor_no_window(&tmp.path().join("data"), &[]));
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut pushers = Vec::new();
    for p in 0..3 {
        let (s, stop) = (s.clone(), stop.clone());
        pushers.push(tokio::spawn(async move {
            let c = admin_client();
            let (mut accepted, mut refused) = (0, 0);
            let mut i = 0;
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                let config = format!(r#"{{"pusher":{p},"round":{i}}}"#);
                let layer = format!("race layer {}", i % 4);
                let mut blobs = Vec::new();
                for b in [&config, &layer] {
                    let d = sha256(b.as_bytes());
                    let url = s.url(&format!("/v2/library/race/blobs/uploads/?digest={d}"));
                    assert_eq!(c.post(url).body(b.clone()).send().await.unwrap().status(), 201);
                    blobs.push((d, b.len()));
                }
                let m = image_manifest((&blobs[0].0, blobs[0].1), &[(&blobs[1].0, blobs[1].1)]);
                let r = c
                    .put(s.url(&format!("/v2/library/race/manifests/p{p}-{i}")))
                    .header("content-type", "application/vnd.oci.image.manifest.v1+json")
                    .body(m.clone())
                    .send()
                    .await
                    .unwrap();
                if r.status() == 201 {
                    accepted += 1;
                    // Referenced now: GC may not take any of it, however it races.
                    for (d, n) in &blobs {
                        let r = c.get(s.url(&format!("/v2/library/race/blobs/{d}"))).send().await.unwrap();
                        assert_eq!(r.status(), 200, "p{p}-{i} references {d}, which is gone");
                        assert_eq!(r.bytes().await.unwrap().len(), *n);
                    }
                    delete_manifest(&c, &s, "library/race", &sha256(m.as_bytes())).await;
                } else {
                    assert_eq!(error_code(r).await, "MANIFEST_BLOB_UNKNOWN");
                    refused += 1;
                }
                i += 1;
            }
            (accepted, refused)
        }));
    }
    for _ in 0..12 {
        gc(&s, serde_json::json!({"workers": 2})).await;
    }
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let mut accepted = 0;
    for p in pushers {
        let (a, r) = p.await.unwrap();
        eprintln!("pusher: {a} accepted, {r} refused");
        accepted += a;
    }
    assert!(accepted > 0, "pushes went on during GC");
}

/// `berth gc` starts the job on the running server and follows its log.
#[tokio::test]
async fn berth_gc_command_runs_and_follows_a_gc() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let s = harbor_no_window(&data, &[]);
    let c = admin_client();
    let gone = push_image(&c, &s, "library/cli", "v1", "cli").await;
    delete_manifest(&c, &s, "library/cli", &gone).await;
    let berth = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_berth"))
            .arg("gc")
            .args(args)
            .arg("--data-dir")
            .arg(&data)
            .env("BERTH_GC_TIME_WINDOW_HOURS", "0")
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, out, err) = berth(&["--dry-run"]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.contains("[INFO] dry run: 0 manifests and 2 blobs eligible for deletion"), "{out}");
    let (code, out, err) = berth(&["--workers", "2"]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.contains("0 manifests and 2 blobs deleted"), "{out}");
    assert!(err.contains("succeeded"), "{err}");
    for (d, _) in image_blobs("cli") {
        assert_eq!(blob_status(&c, &s, "library/cli", &d).await, 404);
    }
    let (code, _, err) = berth(&["--workers", "9"]);
    assert_eq!(code, Some(2), "clap refuses: {err}");
    assert!(err.contains("--workers"), "{err}");
    let history = ok_json(&s, "/api/v2.0/system/gc", &admin()).await;
    assert_eq!(history.as_array().unwrap().len(), 2, "the command's runs are in the history");
}

/// The storage a first start finds empty is Berth's own: GC removes blob files the
/// database does not know there. A storage that already held another registry's blobs
/// keeps them until `berth storage adopt`.
#[tokio::test]
async fn gc_removes_unknown_files_only_from_storage_berth_owns() {
    let stray = b"a blob file no database row describes";
    let digest = berth_core::Digest::sha256(stray);
    let place = |data: &std::path::Path| {
        let hex = digest.hex();
        let path = data.join(format!("storage/docker/registry/v2/blobs/sha256/{}/{hex}/data", &hex[..2]));
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, stray).unwrap();
        path
    };
    let marker = |data: &std::path::Path| data.join("storage/docker/registry/v2/berth-owned");

    // Empty at first start: owned; a file written behind its back later is collected.
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let s = harbor_no_window(&data, &[]);
    assert!(marker(&data).exists(), "an empty storage becomes Berth's own");
    let path = place(&data);
    let log = gc(&s, serde_json::json!({})).await;
    assert!(log.contains(&format!("delete blob file the database does not know: {digest} (37 bytes)")), "{log}");
    assert!(!path.exists());
    drop(s);

    // Another registry's storage, served in place: the file stays, and the log says why.
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let path = place(&data);
    let s = harbor_no_window(&data, &[]);
    assert!(!marker(&data).exists(), "a storage holding blobs is not claimed");
    let log = gc(&s, serde_json::json!({})).await;
    assert!(log.contains("`berth storage adopt` lets GC remove them"), "{log}");
    assert!(path.exists());

    let adopt = std::process::Command::new(env!("CARGO_BIN_EXE_berth"))
        .args(["storage", "adopt", "--data-dir"])
        .arg(&data)
        .output()
        .unwrap();
    assert!(adopt.status.success(), "{}", String::from_utf8_lossy(&adopt.stderr));
    assert!(String::from_utf8_lossy(&adopt.stderr).contains("now Berth's own"));
    let log = gc(&s, serde_json::json!({})).await;
    assert!(log.contains(&format!("delete blob file the database does not know: {digest}")), "{log}");
    assert!(!path.exists());
}
