//! The OCI Distribution API over HTTP: happy paths, every error code, every bad input.

use futures_util::stream;
use reqwest::StatusCode;
use serde_json::Value;

use crate::support::*;

const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";

#[tokio::test]
async fn base_endpoint_announces_the_api() {
    let s = Server::start();
    let r = client().get(s.url("/v2/")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "docker-distribution-api-version"), "registry/2.0");
    let r = client().get(s.url("/v2/x/unknown-endpoint")).send().await.unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(error_code(r).await, "NOT_FOUND");
}

#[tokio::test]
async fn chunked_upload_with_and_without_content_range() {
    let s = Server::start();
    let c = client();
    let data: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    let r = c.post(s.url("/v2/multi/level/name/blobs/uploads/")).send().await.unwrap();
    assert_eq!(r.status(), 202);
    assert_eq!(header(&r, "range"), "0-0");
    let loc = header(&r, "location");
    assert!(loc.starts_with("/v2/multi/level/name/blobs/uploads/"), "{loc}");
    assert!(!header(&r, "docker-upload-uuid").is_empty());

    // First chunk with Content-Range.
    let r = c
        .patch(s.url(&loc))
        .header("content-range", "0-99999")
        .header("content-type", "application/octet-stream")
        .body(data[..100_000].to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    assert_eq!(header(&r, "range"), "0-99999");
    let loc = header(&r, "location");

    // Out-of-order chunk: 416 and the current range.
    let r = c
        .patch(s.url(&loc))
        .header("content-range", "200000-299999")
        .body(data[200_000..].to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(header(&r, "range"), "0-99999");
    assert_eq!(error_code(r).await, "BLOB_UPLOAD_INVALID");

    // Second chunk streamed: no Content-Range, chunked transfer encoding, no Content-Length.
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        data[100_000..250_000].chunks(7_000).map(|c| Ok(c.to_vec())).collect();
    let r = c.patch(s.url(&loc)).body(reqwest::Body::wrap_stream(stream::iter(chunks))).send().await.unwrap();
    assert_eq!(r.status(), 202);
    assert_eq!(header(&r, "range"), "0-249999");

    // Status.
    let r = c.get(s.url(&loc)).send().await.unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(header(&r, "range"), "0-249999");

    // Finish with the last bytes in the PUT body.
    let d = sha256(&data);
    let r = c.put(s.url(&format!("{loc}?digest={d}"))).body(data[250_000..].to_vec()).send().await.unwrap();
    assert_eq!(r.status(), 201);
    assert_eq!(header(&r, "docker-content-digest"), d);
    assert_eq!(header(&r, "location"), format!("/v2/multi/level/name/blobs/{d}"));

    let r = c.get(s.url(&format!("/v2/multi/level/name/blobs/{d}"))).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.bytes().await.unwrap().as_ref(), &data[..]);
    // The upload is gone once finished.
    let r = c.get(s.url(&loc)).send().await.unwrap();
    assert_eq!(error_code(r).await, "BLOB_UPLOAD_UNKNOWN");
    // Stored in the Distribution layout.
    assert!(s.blob_path(&d).is_file());
}

#[tokio::test]
async fn finish_without_body_and_cancel() {
    let s = Server::start();
    let c = client();
    let r = c.post(s.url("/v2/r/blobs/uploads/")).send().await.unwrap();
    let loc = header(&r, "location");
    c.patch(s.url(&loc)).body(&b"abc"[..]).send().await.unwrap();
    let d = sha256(b"abc");
    let r = c.put(s.url(&format!("{loc}?digest={d}"))).send().await.unwrap();
    assert_eq!(r.status(), 201);

    let r = c.post(s.url("/v2/r/blobs/uploads/")).send().await.unwrap();
    let loc = header(&r, "location");
    c.patch(s.url(&loc)).body(&b"never finished"[..]).send().await.unwrap();
    let r = c.delete(s.url(&loc)).send().await.unwrap();
    assert_eq!(r.status(), 204);
    let r = c.get(s.url(&loc)).send().await.unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(error_code(r).await, "BLOB_UPLOAD_UNKNOWN");
    let r = c.delete(s.url(&loc)).send().await.unwrap();
    assert_eq!(error_code(r).await, "BLOB_UPLOAD_UNKNOWN");
    assert!(files_under(&s.data_dir.join("storage/docker/registry/v2/repositories")).is_empty());
}

#[tokio::test]
async fn upload_error_paths() {
    let s = Server::start();
    let c = client();
    // Unknown upload id.
    let r = c.patch(s.url("/v2/r/blobs/uploads/00000000-0000-4000-8000-000000000000")).body("x").send().await.unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(error_code(r).await, "BLOB_UPLOAD_UNKNOWN");
    let r = c.get(s.url("/v2/r/blobs/uploads/..%2f..%2fetc")).send().await.unwrap();
    assert_eq!(error_code(r).await, "BLOB_UPLOAD_UNKNOWN");

    // Digest mismatch on finish: DIGEST_INVALID, nothing visible, upload cancelled.
    let r = c.post(s.url("/v2/r/blobs/uploads/")).send().await.unwrap();
    let loc = header(&r, "location");
    let wrong = sha256(b"something else");
    let r = c.put(s.url(&format!("{loc}?digest={wrong}"))).body(&b"abc"[..]).send().await.unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(error_code(r).await, "DIGEST_INVALID");
    let r = c.head(s.url(&format!("/v2/r/blobs/{wrong}"))).send().await.unwrap();
    assert_eq!(r.status(), 404);
    let r = c.head(s.url(&format!("/v2/r/blobs/{}", sha256(b"abc")))).send().await.unwrap();
    assert_eq!(r.status(), 404);
    assert!(files_under(&s.blobs_dir()).is_empty());

    // Malformed digest in the query.
    let r = c.post(s.url("/v2/r/blobs/uploads/")).send().await.unwrap();
    let loc = header(&r, "location");
    let r = c.put(s.url(&format!("{loc}?digest=sha256:nothex"))).body("abc").send().await.unwrap();
    assert_eq!(error_code(r).await, "DIGEST_INVALID");
    let r = c.put(s.url(&loc)).body("abc").send().await.unwrap();
    assert_eq!(error_code(r).await, "DIGEST_INVALID");
    let r = c.post(s.url("/v2/r/blobs/uploads/?digest=md5:abc")).body("abc").send().await.unwrap();
    assert_eq!(error_code(r).await, "DIGEST_INVALID");

    // Content-Range that disagrees with Content-Length.
    let r = c.patch(s.url(&loc)).header("content-range", "0-9").body(&b"12345"[..]).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::RANGE_NOT_SATISFIABLE);
    // Unparseable Content-Range.
    let r = c.patch(s.url(&loc)).header("content-range", "bytes=lots").body(&b"12345"[..]).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(error_code(r).await, "BLOB_UPLOAD_INVALID");
    // A streamed body longer than its Content-Range announced.
    let body = reqwest::Body::wrap_stream(stream::iter(vec![Ok::<_, std::io::Error>(b"0123456789".to_vec())]));
    let r = c.patch(s.url(&loc)).header("content-range", "0-4").body(body).send().await.unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(error_code(r).await, "SIZE_INVALID");
    let r = c.get(s.url(&loc)).send().await.unwrap();
    assert_eq!(header(&r, "range"), "0-0", "a refused chunk is not recorded");

    // A POST with a body but no digest.
    let r = c.post(s.url("/v2/r/blobs/uploads/")).body("abc").send().await.unwrap();
    assert_eq!(error_code(r).await, "BLOB_UPLOAD_INVALID");
}

#[tokio::test]
async fn truncated_and_overlong_bodies_never_become_blobs() {
    let s = Server::start();
    // Declares 100 bytes, sends 50, closes.
    let data = vec![b'x'; 100];
    let d = sha256(&data);
    let req = format!(
        "POST /v2/t/blobs/uploads/?digest={d} HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{}",
        "x".repeat(50)
    );
    let _ = raw(&s.addr, req.as_bytes(), true);
    // Declares 5 bytes but sends 10: the digest of all 10 is not what arrived.
    let ten = b"0123456789";
    let d10 = sha256(ten);
    let req =
        format!("POST /v2/t/blobs/uploads/?digest={d10} HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\n0123456789");
    let resp = raw(&s.addr, req.as_bytes(), true);
    assert!(resp.starts_with("HTTP/1.1 400"), "{resp}");
    assert!(resp.contains("DIGEST_INVALID"), "{resp}");
    // Chunked PATCH cut off mid-chunk: the offset does not move.
    let c = client();
    let r = c.post(s.url("/v2/t/blobs/uploads/")).send().await.unwrap();
    let loc = header(&r, "location");
    let req = format!("PATCH {loc} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n10\r\nabcdefgh");
    let _ = raw(&s.addr, req.as_bytes(), true);
    let r = c.get(s.url(&loc)).send().await.unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(header(&r, "range"), "0-0");

    for digest in [&d, &d10] {
        let r = c.head(s.url(&format!("/v2/t/blobs/{digest}"))).send().await.unwrap();
        assert_eq!(r.status(), 404);
    }
    assert!(files_under(&s.blobs_dir()).is_empty());
}

#[tokio::test]
async fn blob_get_head_range_delete() {
    let s = Server::start();
    let c = client();
    let data: Vec<u8> = (0..1000u32).map(|i| i as u8).collect();
    let d = push_blob(&c, &s, "b", &data).await;
    let r = c.head(s.url(&format!("/v2/b/blobs/{d}"))).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "content-length"), "1000");
    assert_eq!(header(&r, "docker-content-digest"), d);

    let r = c.get(s.url(&format!("/v2/b/blobs/{d}"))).header("range", "bytes=10-19").send().await.unwrap();
    assert_eq!(r.status(), 206);
    assert_eq!(header(&r, "content-range"), "bytes 10-19/1000");
    assert_eq!(r.bytes().await.unwrap().as_ref(), &data[10..20]);
    let r = c.get(s.url(&format!("/v2/b/blobs/{d}"))).header("range", "bytes=990-").send().await.unwrap();
    assert_eq!(r.bytes().await.unwrap().as_ref(), &data[990..]);
    let r = c.get(s.url(&format!("/v2/b/blobs/{d}"))).header("range", "bytes=-5").send().await.unwrap();
    assert_eq!(r.bytes().await.unwrap().as_ref(), &data[995..]);
    let r = c.get(s.url(&format!("/v2/b/blobs/{d}"))).header("range", "bytes=5000-").send().await.unwrap();
    assert_eq!(r.status(), StatusCode::RANGE_NOT_SATISFIABLE);
    let r = c.get(s.url(&format!("/v2/b/blobs/{d}"))).header("range", "pages=1-2").send().await.unwrap();
    assert_eq!(r.status(), StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(header(&r, "content-range"), "bytes */1000");

    // Unknown in another repository (blobs are linked per repository).
    let r = c.get(s.url(&format!("/v2/other/blobs/{d}"))).send().await.unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(error_code(r).await, "BLOB_UNKNOWN");
    let r = c.get(s.url("/v2/b/blobs/sha256:123")).send().await.unwrap();
    assert_eq!(error_code(r).await, "DIGEST_INVALID");

    let r = c.delete(s.url(&format!("/v2/b/blobs/{d}"))).send().await.unwrap();
    assert_eq!(r.status(), 202);
    let r = c.get(s.url(&format!("/v2/b/blobs/{d}"))).send().await.unwrap();
    assert_eq!(error_code(r).await, "BLOB_UNKNOWN");
    let r = c.delete(s.url(&format!("/v2/b/blobs/{d}"))).send().await.unwrap();
    assert_eq!(error_code(r).await, "BLOB_UNKNOWN");
}

#[tokio::test]
async fn sha512_blobs_and_manifests() {
    use sha2::Digest as _;
    let s = Server::start();
    let c = client();
    let data = b"sha512 content";
    let d = format!("sha512:{}", hex::encode(sha2::Sha512::digest(data)));
    let r = c.post(s.url(&format!("/v2/s/blobs/uploads/?digest={d}"))).body(&data[..]).send().await.unwrap();
    assert_eq!(r.status(), 201);
    // Chunked as well: the finishing digest decides the algorithm.
    let r = c.post(s.url("/v2/s/blobs/uploads/")).send().await.unwrap();
    let loc = header(&r, "location");
    let other = b"chunked sha512";
    let d2 = format!("sha512:{}", hex::encode(sha2::Sha512::digest(other)));
    c.patch(s.url(&loc)).body(&other[..]).send().await.unwrap();
    let r = c.put(s.url(&format!("{loc}?digest={d2}"))).send().await.unwrap();
    assert_eq!(r.status(), 201);
    let r = c.get(s.url(&format!("/v2/s/blobs/{d2}"))).send().await.unwrap();
    assert_eq!(r.bytes().await.unwrap().as_ref(), other);

    let m = image_manifest((&d, data.len()), &[(&d2, other.len())]);
    let md = format!("sha512:{}", hex::encode(sha2::Sha512::digest(m.as_bytes())));
    let r = c
        .put(s.url(&format!("/v2/s/manifests/{md}")))
        .header("content-type", OCI_MANIFEST)
        .body(m.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    assert_eq!(header(&r, "docker-content-digest"), md);
    let r = c.get(s.url(&format!("/v2/s/manifests/{md}"))).send().await.unwrap();
    assert_eq!(r.text().await.unwrap(), m);
}

#[tokio::test]
async fn cross_repository_mount() {
    let s = Server::start();
    let c = client();
    let d = push_blob(&c, &s, "src/repo", b"shared layer").await;
    let r = c.post(s.url(&format!("/v2/dst/blobs/uploads/?mount={d}&from=src/repo"))).send().await.unwrap();
    assert_eq!(r.status(), 201);
    assert_eq!(header(&r, "location"), format!("/v2/dst/blobs/{d}"));
    assert_eq!(header(&r, "docker-content-digest"), d);
    let r = c.get(s.url(&format!("/v2/dst/blobs/{d}"))).send().await.unwrap();
    assert_eq!(r.bytes().await.unwrap().as_ref(), b"shared layer");
    // Not mountable: a normal upload session instead.
    let missing = sha256(b"not here");
    for from in ["src/repo", "nowhere", "INVALID"] {
        let r = c.post(s.url(&format!("/v2/dst/blobs/uploads/?mount={missing}&from={from}"))).send().await.unwrap();
        assert_eq!(r.status(), 202, "from {from}");
        assert!(header(&r, "location").starts_with("/v2/dst/blobs/uploads/"));
    }
    let r = c.post(s.url("/v2/dst/blobs/uploads/?mount=sha256:bad&from=src/repo")).send().await.unwrap();
    assert_eq!(error_code(r).await, "DIGEST_INVALID");
}

#[tokio::test]
async fn manifests_by_tag_and_digest_byte_exact() {
    let s = Server::start();
    let c = client();
    let cfg = push_blob(&c, &s, "m", b"{}").await;
    let layer = push_blob(&c, &s, "m", b"layer").await;
    // Unusual but valid formatting must survive byte for byte.
    let m = format!(
        "{{\n  \"schemaVersion\": 2,\n  \"mediaType\": \"{OCI_MANIFEST}\",\n  \"config\": {{\"mediaType\": \"application/vnd.oci.image.config.v1+json\", \"digest\": \"{cfg}\", \"size\": 2}},\n  \"layers\": [{{\"mediaType\": \"application/vnd.oci.image.layer.v1.tar\", \"digest\": \"{layer}\", \"size\": 5}}]\n}}\n"
    );
    let md = sha256(m.as_bytes());
    let r =
        c.put(s.url("/v2/m/manifests/v1")).header("content-type", OCI_MANIFEST).body(m.clone()).send().await.unwrap();
    assert_eq!(r.status(), 201);
    assert_eq!(header(&r, "location"), format!("/v2/m/manifests/{md}"));
    assert_eq!(header(&r, "docker-content-digest"), md);

    for reference in ["v1", md.as_str()] {
        let r =
            c.get(s.url(&format!("/v2/m/manifests/{reference}"))).header("accept", OCI_MANIFEST).send().await.unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(header(&r, "content-type"), OCI_MANIFEST);
        assert_eq!(header(&r, "docker-content-digest"), md);
        assert_eq!(r.text().await.unwrap(), m);
        let r = c.head(s.url(&format!("/v2/m/manifests/{reference}"))).send().await.unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(header(&r, "content-length"), m.len().to_string());
    }
    // One Accept line per type, as docker and containerd send.
    let r = c
        .get(s.url("/v2/m/manifests/v1"))
        .header("accept", DOCKER_MANIFEST)
        .header("accept", OCI_INDEX)
        .header("accept", OCI_MANIFEST)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = c.get(s.url("/v2/m/manifests/v1")).header("accept", DOCKER_MANIFEST).send().await.unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(error_code(r).await, "MANIFEST_UNKNOWN");

    // Same content pushed again under another tag: same digest.
    let r =
        c.put(s.url("/v2/m/manifests/v2")).header("content-type", OCI_MANIFEST).body(m.clone()).send().await.unwrap();
    assert_eq!(header(&r, "docker-content-digest"), md);

    // Delete a tag: the other tag and the digest remain.
    let r = c.delete(s.url("/v2/m/manifests/v2")).send().await.unwrap();
    assert_eq!(r.status(), 202);
    assert_eq!(c.get(s.url("/v2/m/manifests/v2")).send().await.unwrap().status(), 404);
    assert_eq!(c.get(s.url("/v2/m/manifests/v1")).send().await.unwrap().status(), 200);
    // Delete by digest removes its tags.
    let r = c.delete(s.url(&format!("/v2/m/manifests/{md}"))).send().await.unwrap();
    assert_eq!(r.status(), 202);
    let r = c.get(s.url("/v2/m/manifests/v1")).send().await.unwrap();
    assert_eq!(error_code(r).await, "MANIFEST_UNKNOWN");
    let r = c.delete(s.url(&format!("/v2/m/manifests/{md}"))).send().await.unwrap();
    assert_eq!(error_code(r).await, "MANIFEST_UNKNOWN");
    let r: Value =
        serde_json::from_str(&c.get(s.url("/v2/m/tags/list")).send().await.unwrap().text().await.unwrap()).unwrap();
    assert_eq!(r["tags"], serde_json::json!([]));
}

#[tokio::test]
async fn docker_types_and_content_type_fallback() {
    let s = Server::start();
    let c = client();
    let cfg = push_blob(&c, &s, "d", b"{\"os\":\"linux\"}").await;
    let layer = push_blob(&c, &s, "d", b"l").await;
    // No mediaType field: the Content-Type decides.
    let m = format!(
        r#"{{"schemaVersion":2,"config":{{"mediaType":"application/vnd.docker.container.image.v1+json","digest":"{cfg}","size":15}},"layers":[{{"mediaType":"application/vnd.docker.image.rootfs.diff.tar.gzip","digest":"{layer}","size":1}}]}}"#
    );
    let r = c
        .put(s.url("/v2/d/manifests/latest"))
        .header("content-type", DOCKER_MANIFEST)
        .body(m.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let r = c.get(s.url("/v2/d/manifests/latest")).header("accept", DOCKER_MANIFEST).send().await.unwrap();
    assert_eq!(header(&r, "content-type"), DOCKER_MANIFEST);
    let md = sha256(m.as_bytes());
    // A Docker manifest list over it.
    let list = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.list.v2+json","manifests":[{{"mediaType":"{DOCKER_MANIFEST}","digest":"{md}","size":{},"platform":{{"architecture":"amd64","os":"linux"}}}}]}}"#,
        m.len()
    );
    let r = c
        .put(s.url("/v2/d/manifests/multi"))
        .header("content-type", "application/vnd.docker.distribution.manifest.list.v2+json")
        .body(list)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
}

#[tokio::test]
async fn bad_manifests_are_refused_with_their_codes() {
    let s = Server::start();
    let c = client();
    let put = |body: String, ct: &'static str| {
        let c = c.clone();
        let url = s.url("/v2/bad/manifests/t");
        async move { c.put(url).header("content-type", ct).body(body).send().await.unwrap() }
    };
    let r = put("{not json".into(), OCI_MANIFEST).await;
    assert_eq!(r.status(), 400);
    assert_eq!(error_code(r).await, "MANIFEST_INVALID");
    let r = put(
        r#"{"schemaVersion":1,"name":"bad","tag":"t","fsLayers":[]}"#.into(),
        "application/vnd.docker.distribution.manifest.v1+prettyjws",
    )
    .await;
    assert_eq!(r.status(), 400);
    let body: Value = serde_json::from_str(&r.text().await.unwrap()).unwrap();
    assert_eq!(body["errors"][0]["code"], "MANIFEST_INVALID");
    assert!(body["errors"][0]["detail"]["reason"].as_str().unwrap().contains("schema 1"));
    // A field is named when it is wrong.
    let r = put(image_manifest(("sha256:bad", 2), &[]), OCI_MANIFEST).await;
    let body: Value = serde_json::from_str(&r.text().await.unwrap()).unwrap();
    assert!(body["errors"][0]["detail"]["reason"].as_str().unwrap().contains("config.digest"), "{body}");
    // References a blob that was never pushed.
    let missing = sha256(b"missing layer");
    let cfg = push_blob(&c, &s, "bad", b"{}").await;
    let r = put(image_manifest((&cfg, 2), &[(&missing, 13)]), OCI_MANIFEST).await;
    assert_eq!(r.status(), 404);
    let body: Value = serde_json::from_str(&r.text().await.unwrap()).unwrap();
    assert_eq!(body["errors"][0]["code"], "MANIFEST_BLOB_UNKNOWN");
    assert_eq!(body["errors"][0]["detail"]["digests"][0], missing.as_str());
    // An index whose child manifest is unknown.
    let idx = format!(
        r#"{{"schemaVersion":2,"mediaType":"{OCI_INDEX}","manifests":[{{"mediaType":"{OCI_MANIFEST}","digest":"{missing}","size":3}}]}}"#
    );
    let r = put(idx, OCI_INDEX).await;
    assert_eq!(error_code(r).await, "MANIFEST_BLOB_UNKNOWN");
    // Content-Type and mediaType disagree.
    let r = put(image_manifest((&cfg, 2), &[]), OCI_INDEX).await;
    assert_eq!(error_code(r).await, "MANIFEST_INVALID");
    // Too large (the limit is 4 MiB).
    let r = put(format!("{{\"schemaVersion\":2,\"pad\":\"{}\"}}", "x".repeat(4 * 1024 * 1024)), OCI_MANIFEST).await;
    assert_eq!(r.status(), 413);
    assert_eq!(error_code(r).await, "MANIFEST_INVALID");
    // Pushed by digest, but the bytes have another digest.
    let good = image_manifest((&cfg, 2), &[]);
    let r = c
        .put(s.url(&format!("/v2/bad/manifests/{missing}")))
        .header("content-type", OCI_MANIFEST)
        .body(good)
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(r).await, "DIGEST_INVALID");
    // Invalid tag and name.
    let r = c.put(s.url("/v2/bad/manifests/-tag")).body("{}").send().await.unwrap();
    assert_eq!(error_code(r).await, "TAG_INVALID");
    let r = c.delete(s.url("/v2/bad/manifests/-tag")).send().await.unwrap();
    assert_eq!(error_code(r).await, "TAG_INVALID");
    // A reference that cannot exist is simply unknown to reads (the OCI conformance suite).
    let r = c.get(s.url("/v2/bad/manifests/.INVALID_MANIFEST_NAME")).send().await.unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(error_code(r).await, "MANIFEST_UNKNOWN");
    let r = c.head(s.url("/v2/bad/manifests/.INVALID_MANIFEST_NAME")).send().await.unwrap();
    assert_eq!(r.status(), 404);
    let r = c.get(s.url("/v2/bad/manifests/sha256:zz")).send().await.unwrap();
    assert_eq!(error_code(r).await, "MANIFEST_UNKNOWN");
    let r = c.get(s.url("/v2/Bad/manifests/t")).send().await.unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(error_code(r).await, "NAME_INVALID");
    // None of that created a tag.
    let r = c.get(s.url("/v2/bad/manifests/t")).send().await.unwrap();
    assert_eq!(error_code(r).await, "MANIFEST_UNKNOWN");
    // Wrong method.
    let r = c.post(s.url("/v2/bad/manifests/t")).send().await.unwrap();
    assert_eq!(r.status(), 405);
    assert_eq!(error_code(r).await, "UNSUPPORTED");
}

#[tokio::test]
async fn referrers_and_subject_header() {
    let s = Server::start();
    let c = client();
    let subject = push_image(&c, &s, "ref", "v1", "base").await;
    let empty_cfg = push_blob(&c, &s, "ref", b"{}").await;
    let mut pushed = Vec::new();
    for (kind, ann) in [("application/vnd.example.sig", "a"), ("application/vnd.example.sbom", "b")] {
        let m = format!(
            r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}","artifactType":"{kind}","config":{{"mediaType":"application/vnd.oci.empty.v1+json","digest":"{empty_cfg}","size":2}},"layers":[],"subject":{{"mediaType":"{OCI_MANIFEST}","digest":"{subject}","size":1}},"annotations":{{"k":"{ann}"}}}}"#
        );
        let d = sha256(m.as_bytes());
        let r = c
            .put(s.url(&format!("/v2/ref/manifests/{d}")))
            .header("content-type", OCI_MANIFEST)
            .body(m.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
        assert_eq!(header(&r, "oci-subject"), subject);
        pushed.push((d, kind, m.len()));
    }
    let r = c.get(s.url(&format!("/v2/ref/referrers/{subject}"))).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "content-type"), OCI_INDEX);
    assert!(r.headers().get("oci-filters-applied").is_none());
    let v: Value = serde_json::from_str(&r.text().await.unwrap()).unwrap();
    assert_eq!(v["mediaType"], OCI_INDEX);
    assert_eq!(v["manifests"].as_array().unwrap().len(), 2);
    let r = c
        .get(s.url(&format!("/v2/ref/referrers/{subject}?artifactType=application/vnd.example.sbom")))
        .send()
        .await
        .unwrap();
    assert_eq!(header(&r, "oci-filters-applied"), "artifactType");
    let v: Value = serde_json::from_str(&r.text().await.unwrap()).unwrap();
    let list = v["manifests"].as_array().unwrap();
    assert_eq!(list.len(), 1);
    let (d, kind, size) = &pushed[1];
    assert_eq!(list[0]["digest"], d.as_str());
    assert_eq!(list[0]["artifactType"], *kind);
    assert_eq!(list[0]["size"], *size);
    assert_eq!(list[0]["annotations"]["k"], "b");
    // No referrers: an empty index, not a 404.
    let r = c.get(s.url(&format!("/v2/ref/referrers/{}", sha256(b"nothing")))).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = serde_json::from_str(&r.text().await.unwrap()).unwrap();
    assert_eq!(v["manifests"], serde_json::json!([]));
    let r = c.get(s.url("/v2/ref/referrers/sha256:zz")).send().await.unwrap();
    assert_eq!(error_code(r).await, "DIGEST_INVALID");
}

#[tokio::test]
async fn tags_and_catalog_paging() {
    let s = Server::start();
    let c = client();
    push_image(&c, &s, "p/app", "b", "x").await;
    let r = c.get(s.url("/v2/p/app/tags/list")).send().await.unwrap();
    let _ = r.text().await;
    let md = push_image(&c, &s, "p/app", "a", "x").await;
    let m = c.get(s.url(&format!("/v2/p/app/manifests/{md}"))).send().await.unwrap().text().await.unwrap();
    for t in ["c", "B", "a1", "_z"] {
        let r = c
            .put(s.url(&format!("/v2/p/app/manifests/{t}")))
            .header("content-type", OCI_MANIFEST)
            .body(m.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
    }
    let all: Value =
        serde_json::from_str(&c.get(s.url("/v2/p/app/tags/list")).send().await.unwrap().text().await.unwrap()).unwrap();
    assert_eq!(all["name"], "p/app");
    assert_eq!(all["tags"], serde_json::json!(["B", "_z", "a", "a1", "b", "c"]));

    let r = c.get(s.url("/v2/p/app/tags/list?n=2")).send().await.unwrap();
    assert_eq!(header(&r, "link"), "</v2/p/app/tags/list?n=2&last=_z>; rel=\"next\"");
    let v: Value = serde_json::from_str(&r.text().await.unwrap()).unwrap();
    assert_eq!(v["tags"], serde_json::json!(["B", "_z"]));
    let r = c.get(s.url("/v2/p/app/tags/list?n=2&last=b")).send().await.unwrap();
    assert_eq!(header(&r, "link"), "", "the last page has no Link");
    let v: Value = serde_json::from_str(&r.text().await.unwrap()).unwrap();
    assert_eq!(v["tags"], serde_json::json!(["c"]));
    let r = c.get(s.url("/v2/p/app/tags/list?n=0")).send().await.unwrap();
    let v: Value = serde_json::from_str(&r.text().await.unwrap()).unwrap();
    assert_eq!(v["tags"], serde_json::json!([]));
    let r = c.get(s.url("/v2/p/app/tags/list?n=lots")).send().await.unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(error_code(r).await, "PAGINATION_NUMBER_INVALID");
    let r = c.get(s.url("/v2/p/none/tags/list")).send().await.unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(error_code(r).await, "NAME_UNKNOWN");

    for repo in ["p/zeta", "p/beta", "alpha"] {
        push_image(&c, &s, repo, "t", repo).await;
    }
    // A repository with only an upload session is not listed.
    c.post(s.url("/v2/p/empty/blobs/uploads/")).send().await.unwrap();
    let v: Value =
        serde_json::from_str(&c.get(s.url("/v2/_catalog")).send().await.unwrap().text().await.unwrap()).unwrap();
    assert_eq!(v["repositories"], serde_json::json!(["alpha", "p/app", "p/beta", "p/zeta"]));
    let r = c.get(s.url("/v2/_catalog?n=3")).send().await.unwrap();
    assert_eq!(header(&r, "link"), "</v2/_catalog?n=3&last=p%2Fbeta>; rel=\"next\"");
    let r = c.get(s.url("/v2/_catalog?n=3&last=p%2Fbeta")).send().await.unwrap();
    let v: Value = serde_json::from_str(&r.text().await.unwrap()).unwrap();
    assert_eq!(v["repositories"], serde_json::json!(["p/zeta"]));
}

#[tokio::test]
async fn concurrent_pushes_of_the_same_blob_and_manifest() {
    let s = Server::start();
    let c = client();
    let data: Vec<u8> = (0..2_000_000u32).map(|i| (i * 7 % 256) as u8).collect();
    let d = sha256(&data);
    let mut tasks = Vec::new();
    for i in 0..8 {
        let (c, url, data) = (c.clone(), s.url(""), data.clone());
        let d = d.clone();
        tasks.push(tokio::spawn(async move {
            if i % 2 == 0 {
                c.post(format!("{url}/v2/same/blobs/uploads/?digest={d}")).body(data).send().await.unwrap().status()
            } else {
                let r = c.post(format!("{url}/v2/same/blobs/uploads/")).send().await.unwrap();
                let loc = r.headers()["location"].to_str().unwrap().to_string();
                c.patch(format!("{url}{loc}")).body(data[..1000].to_vec()).send().await.unwrap();
                c.put(format!("{url}{loc}?digest={d}")).body(data[1000..].to_vec()).send().await.unwrap().status()
            }
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), 201);
    }
    let r = c.get(s.url(&format!("/v2/same/blobs/{d}"))).send().await.unwrap();
    assert_eq!(r.bytes().await.unwrap().as_ref(), &data[..]);
    assert_eq!(files_under(&s.blobs_dir()).len(), 1);

    let cfg = push_blob(&c, &s, "same", b"{}").await;
    let m = image_manifest((&cfg, 2), &[(&d, data.len())]);
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let (c, url, m) = (c.clone(), s.url("/v2/same/manifests/latest"), m.clone());
        tasks.push(tokio::spawn(async move {
            c.put(url).header("content-type", OCI_MANIFEST).body(m).send().await.unwrap().status()
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), 201);
    }
    let r = c.get(s.url("/v2/same/manifests/latest")).send().await.unwrap();
    assert_eq!(header(&r, "docker-content-digest"), sha256(m.as_bytes()));
}
