//! Harbor 2.8+'s artifact copy (`POST …/artifacts?from=`) brings the artifact's
//! accessories along: a cosign signature under its `sha256-<hex>.sig` tag, an SBOM pushed
//! as an OCI referrer, that SBOM's own signature (an accessory's accessory), and, for an
//! index, its children's accessories. On the target they are in `…/accessories`, the
//! referrers API and under the cosign tag, and the copy's signature verifies against the
//! project's trust. The refusals are Harbor's: a missing source is 404, a project the
//! caller cannot push to is 403, each in the `{"errors":[…]}` envelope.

use berth_signature::cosign;
use berth_signature::testing::CosignSigner;
use reqwest::Method;
use serde_json::json;

use crate::signatures::{push_cosign_tag, push_referrer};
use crate::support::*;

const REPOS: &str = "/api/v2.0/projects/team/repositories";
const COSIGN_SIG: &str = "application/vnd.dev.cosign.artifact.sig.v1+json";
const SIMPLE_SIGNING: &str = "application/vnd.dev.cosign.simplesigning.v1+json";

fn sig_tag(d: &str) -> String {
    format!("sha256-{}.sig", d.trim_start_matches("sha256:"))
}

/// The digests the referrers API lists for `subject` in `repo`.
async fn referrers(s: &Server, repo: &str, subject: &str) -> Vec<String> {
    let v = ok_json(s, &format!("/v2/{repo}/referrers/{subject}"), &admin()).await;
    v["manifests"].as_array().unwrap().iter().map(|m| m["digest"].as_str().unwrap().to_string()).collect()
}

/// The digest a manifest reference resolves to in `repo` (404 → None).
async fn resolves(s: &Server, repo: &str, reference: &str) -> Option<String> {
    let r = admin()
        .apply(client().get(s.url(&format!("/v2/{repo}/manifests/{reference}"))))
        .header("accept", "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json")
        .send()
        .await
        .unwrap();
    (r.status() == 200).then(|| header(&r, "docker-content-digest"))
}

async fn copy(s: &Server, who: &Who, project: &str, repo: &str, from: &str) -> reqwest::Response {
    let path = format!("/api/v2.0/projects/{project}/repositories/{repo}/artifacts?from={}", from.replace(':', "%3A"));
    call(s, Method::POST, &path, who, None).await
}

#[tokio::test]
async fn copy_brings_signatures_sboms_and_their_accessories() {
    let s = Server::start_harbor();
    create_project(&s, &admin(), "team", false).await;
    create_project(&s, &admin(), "other", false).await;
    create_user(&s, "dev").await;
    add_member(&s, "team", "dev", 2).await; // developer: pulls and pushes in team
    add_member(&s, "other", "dev", 3).await; // guest: may not push to other
    let dev = user("dev");
    let signer = CosignSigner::generate();

    // v1 with a cosign tag signature, an SBOM referrer, and the SBOM's own signature.
    let v1 = push_small_image_as(&s, &admin(), "team/app", "v1", "one").await;
    let payload = cosign::payload_for("team/app", &v1);
    push_cosign_tag(&s, &v1, &payload, &payload, &signer).await;
    let sig = resolves(&s, "team/app", &sig_tag(&v1)).await.expect("the signature is pushed");
    let sbom = push_referrer(
        &s,
        &v1,
        "application/vnd.goharbor.harbor.sbom.v1",
        "application/spdx+json",
        br#"{"spdxVersion":"SPDX-2.3","name":"one"}"#,
        json!({}),
    )
    .await;
    let sbom_payload = cosign::payload_for("team/app", &sbom);
    let sbom_sig = push_referrer(
        &s,
        &sbom,
        COSIGN_SIG,
        SIMPLE_SIGNING,
        &sbom_payload,
        json!({"dev.cosignproject.cosign/signature": signer.sign(&sbom_payload)}),
    )
    .await;
    let trust = json!({"cosign_public_keys": [{"name": "ci", "public_key": signer.public_key_pem}]});
    assert_eq!(status(&s, Method::PUT, "/api/v2.0/projects/team/signature-trust", &admin(), Some(&trust)).await, 200);

    // The copy, by a developer of the project.
    let r = copy(&s, &dev, "team", "copy", &format!("team/app@{v1}")).await;
    assert_eq!(r.status(), 201, "{:?}", r.text().await);

    // The target's accessories: the signature and the SBOM, as Harbor lists them.
    let r = get(&s, &format!("{REPOS}/copy/artifacts/{v1}/accessories"), &admin()).await;
    assert_eq!(header(&r, "x-total-count"), "2");
    let accs = body_json(r).await;
    let mut kinds: Vec<(&str, &str)> =
        accs.as_array().unwrap().iter().map(|a| (a["type"].as_str().unwrap(), a["digest"].as_str().unwrap())).collect();
    kinds.sort();
    assert_eq!(kinds, [("sbom.harbor", sbom.as_str()), ("signature.cosign", sig.as_str())]);
    assert!(accs.as_array().unwrap().iter().all(|a| a["subject_artifact_repo"] == "team/copy"), "{accs}");
    // The referrers API and cosign's tag scheme find them where clients look.
    assert_eq!(referrers(&s, "team/copy", &v1).await, [sbom.clone()]);
    assert_eq!(resolves(&s, "team/copy", &sig_tag(&v1)).await.as_deref(), Some(sig.as_str()));
    // The SBOM's own signature came too (an accessory's accessory).
    assert_eq!(referrers(&s, "team/copy", &sbom).await, [sbom_sig.clone()]);
    // A verifier finds the copy's signature: it verifies against the project's trust.
    let a = ok_json(&s, &format!("{REPOS}/copy/artifacts/{v1}?with_accessory=true"), &admin()).await;
    assert_eq!(a["signature"]["cosign"], "verified", "{a}");
    // The signature's payload blob is pullable from the copy.
    let m = ok_json(&s, &format!("/v2/team/copy/manifests/{}", sig_tag(&v1)), &admin()).await;
    let layer = m["layers"][0]["digest"].as_str().unwrap();
    assert_eq!(get(&s, &format!("/v2/team/copy/blobs/{layer}"), &admin()).await.status(), 200);
    // Accessories are not artifacts of their own in the target's list.
    let r = get(&s, &format!("{REPOS}/copy/artifacts"), &admin()).await;
    assert_eq!(header(&r, "x-total-count"), "1");

    // An index: its child's accessories come with it.
    let size = manifest_len(&s, "team/app", &v1).await;
    let index = crate::ui_artifact::push_index(&s, &admin(), "team/app", "multi", &v1, size).await;
    let r = copy(&s, &admin(), "team", "multi", "team/app:multi").await;
    assert_eq!(r.status(), 201, "{:?}", r.text().await);
    assert_eq!(resolves(&s, "team/multi", "multi").await.as_deref(), Some(index.as_str()));
    assert_eq!(resolves(&s, "team/multi", &sig_tag(&v1)).await.as_deref(), Some(sig.as_str()));
    assert_eq!(referrers(&s, "team/multi", &v1).await, [sbom.clone()]);
    assert_eq!(referrers(&s, "team/multi", &sbom).await, [sbom_sig]);

    // A missing source: 404 in Harbor's envelope, nothing created.
    let missing = format!("sha256:{}", "0".repeat(64));
    let r = copy(&s, &dev, "team", "none", &format!("team/app@{missing}")).await;
    expect_error(r, 404, "NOT_FOUND").await;
    let r = copy(&s, &dev, "team", "none", "team/app:nope").await;
    expect_error(r, 404, "NOT_FOUND").await;
    assert_eq!(get(&s, &format!("{REPOS}/none"), &admin()).await.status(), 404);
    // A project the caller may not push to: 403, nothing copied there.
    let r = copy(&s, &dev, "other", "stolen", &format!("team/app@{v1}")).await;
    expect_error(r, 403, "FORBIDDEN").await;
    assert_eq!(resolves(&s, "other/stolen", &sig_tag(&v1)).await, None);
}
