//! Signatures and deployment security: cosign and Notation signatures made here with
//! generated keys, pushed as the tools push them, listed as Harbor's accessories (hidden
//! from the artifact list), verified against a project's signature trust, and Harbor's
//! content-trust pull policies (412 PROJECTPOLICYVIOLATION) over raw HTTP and skopeo.

use berth_signature::cosign;
use berth_signature::testing::{CosignSigner, NotationSigner};
use reqwest::Method;
use serde_json::{Value, json};

use crate::support::*;

const ARTIFACTS: &str = "/api/v2.0/projects/team/repositories/app/artifacts";
const TRUST: &str = "/api/v2.0/projects/team/signature-trust";

async fn put_manifest(s: &Server, repo: &str, reference: &str, media_type: &str, body: &str) -> reqwest::Response {
    admin()
        .apply(client().put(s.url(&format!("/v2/{repo}/manifests/{reference}"))))
        .header("content-type", media_type)
        .body(body.to_string())
        .send()
        .await
        .unwrap()
}

/// Pushes a cosign signature of `subject` the way `cosign sign --key` does: payload blob,
/// a config, and a manifest tagged `sha256-<hex>.sig`. `stored_payload` is what goes in
/// the registry (a tampered copy when it differs from what was signed).
pub(crate) async fn push_cosign_tag(
    s: &Server,
    subject: &str,
    signed: &[u8],
    stored_payload: &[u8],
    signer: &CosignSigner,
) {
    let sig = signer.sign(signed);
    let pd = push_blob_as(s, &admin(), "team/app", stored_payload).await;
    let config = br#"{"architecture":"","os":"","config":{},"rootfs":{"type":"layers","diff_ids":[]}}"#;
    let cd = push_blob_as(s, &admin(), "team/app", config).await;
    let m = json!({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": config.len()},
        "layers": [{"mediaType": "application/vnd.dev.cosign.simplesigning.v1+json", "digest": pd,
                    "size": stored_payload.len(), "annotations": {"dev.cosignproject.cosign/signature": sig}}]
    });
    let tag = format!("sha256-{}.sig", subject.trim_start_matches("sha256:"));
    let r = put_manifest(s, "team/app", &tag, "application/vnd.oci.image.manifest.v1+json", &m.to_string()).await;
    assert_eq!(r.status(), 201, "push cosign signature");
}

/// Signs `subject` (in team/app) with cosign under a fresh key: the signature tag of a
/// signed artifact, when which key signed does not matter.
pub(crate) async fn push_cosign_signature(s: &Server, subject: &str) {
    let payload = cosign::payload_for("team/app", subject);
    push_cosign_tag(s, subject, &payload, &payload, &CosignSigner::generate()).await;
}

/// The empty config of OCI 1.1 artifacts.
async fn push_empty_config(s: &Server) -> String {
    push_blob_as(s, &admin(), "team/app", b"{}").await
}

/// Pushes an OCI 1.1 referrer with `subject`, `artifactType` and one layer holding `blob`.
pub(crate) async fn push_referrer(
    s: &Server,
    subject: &str,
    artifact_type: &str,
    layer_type: &str,
    blob: &[u8],
    annotations: Value,
) -> String {
    let bd = push_blob_as(s, &admin(), "team/app", blob).await;
    let cd = push_empty_config(s).await;
    let m = json!({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "artifactType": artifact_type,
        "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": cd, "size": 2},
        "layers": [{"mediaType": layer_type, "digest": bd, "size": blob.len(), "annotations": annotations}],
        "subject": {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": subject, "size": 100}
    });
    let body = m.to_string();
    let d = sha256(body.as_bytes());
    let r = put_manifest(s, "team/app", &d, "application/vnd.oci.image.manifest.v1+json", &body).await;
    assert_eq!(r.status(), 201, "push referrer");
    assert_eq!(header(&r, "oci-subject"), subject);
    d
}

/// Pushes an SPDX document as Harbor's SBOM accessory of `subject` (a referrer); returns
/// its digest.
pub(crate) async fn push_harbor_sbom(s: &Server, subject: &str) -> String {
    push_referrer(
        s,
        subject,
        "application/vnd.goharbor.harbor.sbom.v1",
        "application/spdx+json",
        br#"{"spdxVersion":"SPDX-2.3"}"#,
        json!({}),
    )
    .await
}

async fn artifact(s: &Server, reference: &str) -> Value {
    ok_json(s, &format!("{ARTIFACTS}/{reference}?with_accessory=true"), &admin()).await
}

async fn set_metadata(s: &Server, key: &str, value: &str) {
    let body = json!({"metadata": {key: value}});
    assert_eq!(status(s, Method::PUT, "/api/v2.0/projects/team", &admin(), Some(&body)).await, 200);
}

/// A manifest GET (or HEAD) as `who`: status, and the first error's code and message.
async fn pull(s: &Server, who: &Who, reference: &str, head: bool) -> (u16, String, String) {
    let method = if head { Method::HEAD } else { Method::GET };
    let r = who
        .apply(client().request(method, s.url(&format!("/v2/team/app/manifests/{reference}"))))
        .header("accept", "application/vnd.oci.image.manifest.v1+json")
        .send()
        .await
        .unwrap();
    let code = r.status().as_u16();
    let text = r.text().await.unwrap();
    let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
    let e = &v["errors"][0];
    (code, e["code"].as_str().unwrap_or_default().into(), e["message"].as_str().unwrap_or_default().into())
}

async fn bearer(s: &Server, scope: &str) -> String {
    let r = admin()
        .apply(client().get(s.url(&format!("/service/token?service=harbor-registry&scope={scope}"))))
        .send()
        .await
        .unwrap();
    let v = body_json(r).await;
    v["token"].as_str().unwrap().to_string()
}

async fn pull_with_token(s: &Server, token: &str, reference: &str) -> u16 {
    client()
        .get(s.url(&format!("/v2/team/app/manifests/{reference}")))
        .bearer_auth(token)
        .header("accept", "application/vnd.oci.image.manifest.v1+json")
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test]
async fn cosign_signatures_are_accessories_verified_and_enforced() {
    let s = Server::start_harbor();
    create_project(&s, &admin(), "team", false).await;
    create_user(&s, "viewer").await;
    add_member(&s, "team", "viewer", 3).await; // guest: pull only
    let signer = CosignSigner::generate();
    let v1 = push_small_image_as(&s, &admin(), "team/app", "v1", "one").await;
    let v2 = push_small_image_as(&s, &admin(), "team/app", "v2", "two").await;
    let v3 = push_small_image_as(&s, &admin(), "team/app", "v3", "three").await;
    let v4 = push_small_image_as(&s, &admin(), "team/app", "v4", "four").await;

    // v1: signed properly; v2: the stored payload is not what was signed; v4: cosign's
    // OCI 1.1 referrer form; v3: unsigned.
    let p1 = cosign::payload_for("team/app", &v1);
    push_cosign_tag(&s, &v1, &p1, &p1, &signer).await;
    let p2 = cosign::payload_for("team/app", &v2);
    let mut tampered = p2.clone();
    let i = tampered.len() - 3;
    tampered[i] ^= 0x20;
    push_cosign_tag(&s, &v2, &p2, &tampered, &signer).await;
    let p4 = cosign::payload_for("team/app", &v4);
    let sig4 = signer.sign(&p4);
    push_referrer(
        &s,
        &v4,
        "application/vnd.dev.cosign.artifact.sig.v1+json",
        "application/vnd.dev.cosign.simplesigning.v1+json",
        &p4,
        json!({"dev.cosignproject.cosign/signature": sig4}),
    )
    .await;

    // Accessories are not artifacts of their own in the list.
    let r = get(&s, &format!("{ARTIFACTS}?with_accessory=true&page_size=10"), &admin()).await;
    assert_eq!(header(&r, "x-total-count"), "4");
    let list = body_json(r).await;
    let digests: Vec<&str> = list.as_array().unwrap().iter().map(|a| a["digest"].as_str().unwrap()).collect();
    assert_eq!(digests, [v4.as_str(), v3.as_str(), v2.as_str(), v1.as_str()]);
    let a1 = &list[3];
    assert_eq!(a1["accessories"].as_array().unwrap().len(), 1, "{a1}");
    let acc = &a1["accessories"][0];
    assert_eq!(acc["type"], "signature.cosign");
    assert_eq!(acc["subject_artifact_digest"], v1.as_str());
    assert_eq!(acc["subject_artifact_repo"], "team/app");
    assert_eq!(acc["subject_artifact_id"], a1["id"]);
    assert!(acc["id"].as_i64().unwrap() > 0);
    // No trust configured: signed, as Harbor sees it.
    assert_eq!(a1["signature"], json!({"signed": true, "cosign": "signed", "notation": "unsigned"}));
    assert_eq!(list[1]["signature"]["signed"], false, "v3 is unsigned");
    assert!(list[1]["accessories"].as_array().unwrap().is_empty());
    // Without with_accessory, no accessories key (Harbor's default).
    let plain = ok_json(&s, ARTIFACTS, &admin()).await;
    assert!(plain[0].get("accessories").is_none());

    // The accessories endpoint, filtered by type.
    let r = get(&s, &format!("{ARTIFACTS}/v4/accessories"), &admin()).await;
    assert_eq!(header(&r, "x-total-count"), "1");
    assert_eq!(body_json(r).await[0]["type"], "signature.cosign");
    let none = ok_json(&s, &format!("{ARTIFACTS}/v1/accessories?q=type%3Dsignature.notation"), &admin()).await;
    assert_eq!(none, json!([]));

    // Trust the key: v1 and v4 verify, the tampered v2 does not.
    let trust = json!({"cosign_public_keys": [{"name": "ci", "public_key": signer.public_key_pem}]});
    assert_eq!(status(&s, Method::PUT, TRUST, &admin(), Some(&trust)).await, 200);
    assert_eq!(
        ok_json(&s, TRUST, &admin()).await,
        json!({"cosign_public_keys": [{"name": "ci", "public_key": signer.public_key_pem}], "notation_certificates": []})
    );
    assert_eq!(artifact(&s, "v1").await["signature"]["cosign"], "verified");
    assert_eq!(artifact(&s, "v4").await["signature"]["cosign"], "verified");
    assert_eq!(artifact(&s, "v2").await["signature"]["cosign"], "unverified");

    // Nothing is enforced until the project asks.
    assert_eq!(pull(&s, &admin(), "v3", false).await.0, 200);
    set_metadata(&s, "enable_content_trust_cosign", "true").await;
    let not_signed = (412, "PROJECTPOLICYVIOLATION".to_string(), "The image is not signed by cosign.".to_string());
    assert_eq!(pull(&s, &admin(), "v3", false).await, not_signed);
    assert_eq!(pull(&s, &admin(), &v3, false).await, not_signed, "by digest too");
    assert_eq!(
        pull(&s, &admin(), "v2", false).await,
        not_signed,
        "a signature that does not verify counts for nothing"
    );
    assert_eq!(pull(&s, &admin(), "v1", false).await.0, 200);
    assert_eq!(pull(&s, &user("viewer"), "v4", false).await.0, 200);
    // The signatures themselves stay pullable (verifiers fetch them).
    let sig_tag = format!("sha256-{}.sig", v1.trim_start_matches("sha256:"));
    assert_eq!(pull(&s, &user("viewer"), &sig_tag, false).await.0, 200);
    // HEAD: a caller who may push resolves what to sign; others are refused like a GET.
    assert_eq!(pull(&s, &admin(), "v3", true).await.0, 200);
    assert_eq!(pull(&s, &user("viewer"), "v3", true).await.0, 412);
    // scanner-pull (what scanners' robots hold) is exempt; a plain pull token is not.
    let scanner = bearer(&s, "repository:team/app:pull,scanner-pull").await;
    assert_eq!(pull_with_token(&s, &scanner, "v3").await, 200);
    let plain = bearer(&s, "repository:team/app:pull").await;
    assert_eq!(pull_with_token(&s, &plain, "v3").await, 412);
    assert_eq!(pull_with_token(&s, &plain, "v1").await, 200);

    // Without trust, presence is enough again (Harbor's meaning of the switch).
    assert_eq!(status(&s, Method::PUT, TRUST, &admin(), Some(&json!({}))).await, 200);
    assert_eq!(pull(&s, &admin(), "v2", false).await.0, 200);
    set_metadata(&s, "enable_content_trust_cosign", "false").await;
    assert_eq!(pull(&s, &admin(), "v3", false).await.0, 200);

    // Deleting an artifact deletes its accessories with it (Harbor's hard references).
    assert_eq!(status(&s, Method::DELETE, &format!("{ARTIFACTS}/v1"), &admin(), None).await, 200);
    assert_eq!(pull(&s, &admin(), &sig_tag, false).await.0, 404, "the .sig signature went with v1");
    assert_eq!(status(&s, Method::DELETE, &format!("{ARTIFACTS}/v4"), &admin(), None).await, 200);
    let referrers = ok_json(&s, &format!("/v2/team/app/referrers/{v4}"), &admin()).await;
    assert_eq!(referrers["manifests"], json!([]), "the referrer signature went with v4");
}

#[tokio::test]
async fn notation_signatures_verify_against_the_project_trust_store() {
    let s = Server::start_harbor();
    create_project(&s, &admin(), "team", false).await;
    let acme = NotationSigner::generate("Acme");
    let other = NotationSigner::generate("Other");
    let signed = push_small_image_as(&s, &admin(), "team/app", "signed", "s").await;
    push_small_image_as(&s, &admin(), "team/app", "plain", "p").await;
    let target = json!({"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": signed, "size": 400});
    let envelope = acme.envelope(&target, None);
    let thumbprint = json!({"io.cncf.notary.x509chain.thumbprint#S256": "[\"00\"]"});
    push_referrer(&s, &signed, "application/vnd.cncf.notary.signature", "application/jose+json", &envelope, thumbprint)
        .await;

    let a = artifact(&s, "signed").await;
    assert_eq!(a["accessories"][0]["type"], "signature.notation");
    assert_eq!(a["signature"]["notation"], "signed");
    assert_eq!(header(&get(&s, ARTIFACTS, &admin()).await, "x-total-count"), "2");

    set_metadata(&s, "enable_content_trust", "true").await;
    let refused = (412, "PROJECTPOLICYVIOLATION".to_string(), "The image is not signed by notation.".to_string());
    assert_eq!(pull(&s, &admin(), "plain", false).await, refused);
    assert_eq!(pull(&s, &admin(), "signed", false).await.0, 200);

    // A trust store of another CA: the signature no longer counts.
    let store_of = |pem: &str| json!({"notation_certificates": [{"name": "ca", "certificate": pem}]});
    assert_eq!(status(&s, Method::PUT, TRUST, &admin(), Some(&store_of(&other.root_pem))).await, 200);
    assert_eq!(pull(&s, &admin(), "signed", false).await, refused);
    assert_eq!(artifact(&s, "signed").await["signature"]["notation"], "unverified");
    assert_eq!(status(&s, Method::PUT, TRUST, &admin(), Some(&store_of(&acme.root_pem))).await, 200);
    assert_eq!(pull(&s, &admin(), "signed", false).await.0, 200);
    assert_eq!(artifact(&s, "signed").await["signature"]["notation"], "verified");
}

#[tokio::test]
async fn signature_trust_is_checked_and_kept_per_project() {
    let s = Server::start_harbor();
    create_project(&s, &admin(), "team", false).await;
    let bad = json!({"cosign_public_keys": [{"name": "ci", "public_key": "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"}]});
    let r = call(&s, Method::PUT, TRUST, &admin(), Some(&bad)).await;
    assert_eq!(r.status(), 400);
    let v = body_json(r).await;
    assert!(v["errors"][0]["message"].as_str().unwrap().starts_with("cosign_public_keys[0].public_key:"), "{v}");
    let r = call(&s, Method::PUT, TRUST, &admin(), Some(&json!({"keys": []}))).await;
    assert_eq!(r.status(), 400, "unknown fields are refused");
    assert_eq!(ok_json(&s, TRUST, &admin()).await, json!({"cosign_public_keys": [], "notation_certificates": []}));
    // A change is in the audit log.
    let key = CosignSigner::generate().public_key_pem;
    let ok = json!({"cosign_public_keys": [{"name": "release", "public_key": key}]});
    assert_eq!(status(&s, Method::PUT, TRUST, &admin(), Some(&ok)).await, 200);
    let logs = ok_json(&s, "/api/v2.0/projects/team/logs", &admin()).await;
    assert!(logs.as_array().unwrap().iter().any(|e| e["resource_type"] == "signature-trust"), "{logs}");
}

#[tokio::test]
async fn skopeo_is_refused_unsigned_images_with_harbors_message() {
    if !tool_available("skopeo") {
        return;
    }
    let s = Server::start_harbor();
    create_project(&s, &admin(), "team", false).await;
    let tmp = tempfile::tempdir().unwrap();
    write_tiny_layout(&tmp.path().join("layout"), "latest");
    let src = format!("oci:{}:latest", tmp.path().join("layout").display());
    let creds = format!("admin:{ADMIN_PASSWORD}");
    let out = std::process::Command::new("skopeo")
        .args(["copy", "--dest-tls-verify=false", "--dest-creds", &creds, &src])
        .arg(format!("docker://{}/team/app:signed", s.addr))
        .output()
        .unwrap();
    assert!(out.status.success(), "push: {}", String::from_utf8_lossy(&out.stderr));
    // Another image (the layout's content is always the same).
    push_small_image_as(&s, &admin(), "team/app", "unsigned", "u").await;
    let signed = ok_json(&s, &format!("{ARTIFACTS}/signed"), &admin()).await["digest"].as_str().unwrap().to_string();
    let signer = CosignSigner::generate();
    let payload = cosign::payload_for("team/app", &signed);
    push_cosign_tag(&s, &signed, &payload, &payload, &signer).await;
    let trust = json!({"cosign_public_keys": [{"name": "ci", "public_key": signer.public_key_pem}]});
    assert_eq!(status(&s, Method::PUT, TRUST, &admin(), Some(&trust)).await, 200);
    set_metadata(&s, "enable_content_trust_cosign", "true").await;

    let fetch = |tag: &str| {
        let dest = tmp.path().join(format!("out-{tag}"));
        std::process::Command::new("skopeo")
            .args(["copy", "--src-tls-verify=false", "--src-creds", &creds])
            .arg(format!("docker://{}/team/app:{tag}", s.addr))
            .arg(format!("dir:{}", dest.display()))
            .output()
            .unwrap()
    };
    let refused = fetch("unsigned");
    assert!(!refused.status.success(), "unsigned pull went through: {}", String::from_utf8_lossy(&refused.stderr));
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(err.contains("The image is not signed by cosign."), "skopeo shows Harbor's message: {err}");
    let ok = fetch("signed");
    assert!(ok.status.success(), "signed pull: {}", String::from_utf8_lossy(&ok.stderr));
}

#[tokio::test]
async fn a_signed_index_lets_its_platform_manifests_through() {
    let s = Server::start_harbor();
    create_project(&s, &admin(), "team", false).await;
    let child = push_small_image_as(&s, &admin(), "team/app", "amd64", "child").await;
    let stray = push_small_image_as(&s, &admin(), "team/app", "stray", "stray").await;
    let child_len = manifest_len(&s, "team/app", &child).await;
    let index = json!({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": child, "size": child_len,
                       "platform": {"architecture": "amd64", "os": "linux"}}]
    })
    .to_string();
    let r = put_manifest(&s, "team/app", "multi", "application/vnd.oci.image.index.v1+json", &index).await;
    assert_eq!(r.status(), 201);
    let index_digest = sha256(index.as_bytes());
    let signer = CosignSigner::generate();
    let payload = cosign::payload_for("team/app", &index_digest);
    push_cosign_tag(&s, &index_digest, &payload, &payload, &signer).await;
    let trust = json!({"cosign_public_keys": [{"name": "ci", "public_key": signer.public_key_pem}]});
    assert_eq!(status(&s, Method::PUT, TRUST, &admin(), Some(&trust)).await, 200);
    assert_eq!(pull(&s, &admin(), "stray", false).await.0, 200, "nothing enforced yet");
    set_metadata(&s, "enable_content_trust_cosign", "true").await;

    let r = admin()
        .apply(client().get(s.url("/v2/team/app/manifests/multi")))
        .header("accept", "application/vnd.oci.image.index.v1+json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "the signed index");
    assert_eq!(pull(&s, &admin(), &child, false).await.0, 200, "its platform manifest, by digest");
    assert_eq!(pull(&s, &admin(), &stray, false).await.0, 412, "a manifest no signed index lists");
}
