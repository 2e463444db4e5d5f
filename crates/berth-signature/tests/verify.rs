//! Signatures made here, as cosign and Notation make them, verified and tampered with.

use berth_signature::testing::{CosignSigner, NotationSigner};
use berth_signature::trust::{CertificateDoc, CosignKeyDoc, TrustDoc};
use berth_signature::{VerifyError, cosign, notation};
use serde_json::json;

const SUBJECT: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
const OTHER: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";

fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()
}

#[test]
fn cosign_signatures_verify_and_tampering_is_refused() {
    let signer = CosignSigner::generate();
    let other = CosignSigner::generate();
    let trust = TrustDoc {
        cosign_public_keys: vec![
            CosignKeyDoc { name: "other".into(), public_key: other.public_key_pem.clone() },
            CosignKeyDoc { name: "ci".into(), public_key: signer.public_key_pem.clone() },
        ],
        notation_certificates: vec![],
    }
    .compile()
    .unwrap();
    let payload = cosign::payload_for("library/app", SUBJECT);
    let sig = signer.sign(&payload);
    assert_eq!(cosign::verify(&payload, &sig, SUBJECT, &trust.cosign), Ok("ci".to_string()));

    // One byte of the payload changed: no key verifies it.
    let mut tampered = payload.clone();
    let i = tampered.iter().position(|b| *b == b'0').unwrap();
    tampered[i] = b'1';
    assert!(matches!(cosign::verify(&tampered, &sig, SUBJECT, &trust.cosign), Err(VerifyError::Untrusted(_))));
    // A payload signed for another image is valid but not for this one.
    let p2 = cosign::payload_for("library/app", OTHER);
    let s2 = signer.sign(&p2);
    assert!(matches!(cosign::verify(&p2, &s2, SUBJECT, &trust.cosign), Err(VerifyError::WrongSubject { .. })));
    // Signed by a key the project does not trust.
    let only_other = TrustDoc {
        cosign_public_keys: vec![CosignKeyDoc { name: "other".into(), public_key: other.public_key_pem.clone() }],
        notation_certificates: vec![],
    }
    .compile()
    .unwrap();
    assert!(matches!(cosign::verify(&payload, &sig, SUBJECT, &only_other.cosign), Err(VerifyError::Untrusted(_))));
    assert!(matches!(cosign::verify(&payload, "%%%", SUBJECT, &trust.cosign), Err(VerifyError::Malformed(_))));

    // The manifest cosign pushes under sha256-<hex>.sig.
    let manifest = json!({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": OTHER, "size": 2},
        "layers": [{"mediaType": "application/vnd.dev.cosign.simplesigning.v1+json", "digest": OTHER, "size": 200,
                    "annotations": {"dev.cosignproject.cosign/signature": sig}}]
    });
    let layers = cosign::signature_layers(manifest.to_string().as_bytes());
    assert_eq!(layers.len(), 1);
    assert_eq!(layers[0].signature, sig);
}

#[test]
fn notation_envelopes_verify_against_the_trust_store() {
    let signer = NotationSigner::generate("Acme");
    let stranger = NotationSigner::generate("Mallory");
    let doc = |pem: &str| TrustDoc {
        cosign_public_keys: vec![],
        notation_certificates: vec![CertificateDoc { name: "acme".into(), certificate: pem.to_string() }],
    };
    let trust = doc(&signer.root_pem).compile().unwrap();
    let target = json!({"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": SUBJECT, "size": 500});
    let env = signer.envelope(&target, None);
    assert_eq!(notation::verify_jws(&env, SUBJECT, &trust.notation, now()), Ok("acme".to_string()));
    assert!(matches!(notation::verify_jws(&env, OTHER, &trust.notation, now()), Err(VerifyError::WrongSubject { .. })));

    // Another CA's signer, and a store without its root.
    let foreign = stranger.envelope(&target, None);
    assert!(matches!(notation::verify_jws(&foreign, SUBJECT, &trust.notation, now()), Err(VerifyError::Untrusted(_))));

    // Tampered payload: the JWS signature no longer matches.
    let mut v: serde_json::Value = serde_json::from_slice(&env).unwrap();
    let forged = {
        use base64::Engine as _;
        let p = json!({"targetArtifact": {"mediaType": "x", "digest": OTHER, "size": 1}}).to_string();
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(p)
    };
    v["payload"] = json!(forged);
    let r = notation::verify_jws(v.to_string().as_bytes(), OTHER, &trust.notation, now());
    assert!(matches!(r, Err(VerifyError::Untrusted(ref m)) if m.contains("JWS signature")), "{r:?}");

    // Expired signatures are refused.
    let expired = signer.envelope(&target, Some("2020-01-01T00:00:00Z"));
    assert!(matches!(notation::verify_jws(&expired, SUBJECT, &trust.notation, now()), Err(VerifyError::Untrusted(_))));
    let later = signer.envelope(&target, Some("2999-01-01T00:00:00Z"));
    assert!(notation::verify_jws(&later, SUBJECT, &trust.notation, now()).is_ok());

    // A trust document with something that is not a certificate names the field.
    let e = doc("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n").compile().unwrap_err();
    assert_eq!(e.field, "notation_certificates[0].certificate");
}
