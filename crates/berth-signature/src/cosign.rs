//! cosign's simple-signing signatures (sigstore/cosign `specs/SIGNATURE_SPEC.md`): each
//! signature is a layer of media type `application/vnd.dev.cosign.simplesigning.v1+json`
//! whose blob is the payload, with the base64 signature in the layer annotation
//! `dev.cosignproject.cosign/signature`. With a key, the signature is an ASN.1 DER ECDSA
//! signature over SHA-256 of the payload bytes, and the payload's
//! `critical.image.docker-manifest-digest` names the signed manifest.

use ring::signature::{ECDSA_P256_SHA256_ASN1, UnparsedPublicKey};
use serde_json::Value;

use crate::accessory::COSIGN_SIMPLESIGNING;
use crate::trust::CosignKey;
use crate::{VerifyError, b64_std};

pub const SIGNATURE_ANNOTATION: &str = "dev.cosignproject.cosign/signature";

/// One signature in a cosign signature manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureLayer {
    /// The payload blob's digest.
    pub payload_digest: String,
    /// Its size as the manifest says.
    pub size: u64,
    /// Base64 of the DER signature.
    pub signature: String,
}

/// The simple-signing layers of a cosign signature manifest (any other layer is ignored).
pub fn signature_layers(manifest: &[u8]) -> Vec<SignatureLayer> {
    let Ok(v) = serde_json::from_slice::<Value>(manifest) else { return Vec::new() };
    let layers = v.get("layers").and_then(Value::as_array).cloned().unwrap_or_default();
    layers
        .iter()
        .filter(|l| l.get("mediaType").and_then(Value::as_str) == Some(COSIGN_SIMPLESIGNING))
        .filter_map(|l| {
            Some(SignatureLayer {
                payload_digest: l.get("digest")?.as_str()?.to_string(),
                size: l.get("size").and_then(Value::as_u64).unwrap_or(0),
                signature: l.get("annotations")?.get(SIGNATURE_ANNOTATION)?.as_str()?.to_string(),
            })
        })
        .collect()
}

/// The manifest digest a simple-signing payload claims.
pub fn payload_subject(payload: &[u8]) -> Result<String, VerifyError> {
    let v: Value = serde_json::from_slice(payload).map_err(|e| VerifyError::Malformed(format!("payload: {e}")))?;
    let image = v.get("critical").and_then(|c| c.get("image"));
    // cosign writes lower case; the spec's example capitalises it.
    let d = image
        .and_then(|i| i.get("docker-manifest-digest").or_else(|| i.get("Docker-manifest-digest")))
        .and_then(Value::as_str)
        .ok_or_else(|| VerifyError::Malformed("payload has no critical.image.docker-manifest-digest".into()))?;
    Ok(d.to_string())
}

/// Verifies one signature (`payload` is the layer's blob, already checked against its
/// digest by the registry) against `keys`; `Ok(name)` of the key that verified it.
pub fn verify(payload: &[u8], signature_b64: &str, subject: &str, keys: &[CosignKey]) -> Result<String, VerifyError> {
    let signed = payload_subject(payload)?;
    let sig = b64_std(signature_b64)?;
    let key = keys
        .iter()
        .find(|k| UnparsedPublicKey::new(&ECDSA_P256_SHA256_ASN1, &k.point).verify(payload, &sig).is_ok())
        .ok_or_else(|| VerifyError::Untrusted("no configured cosign key verifies the signature".into()))?;
    if signed != subject {
        return Err(VerifyError::WrongSubject { signed, wanted: subject.to_string() });
    }
    Ok(key.name.clone())
}

/// The simple-signing payload cosign writes for `digest` in `repo` (for tests and tools).
pub fn payload_for(repo: &str, digest: &str) -> Vec<u8> {
    serde_json::json!({
        "critical": {
            "identity": {"docker-reference": repo},
            "image": {"docker-manifest-digest": digest},
            "type": "cosign container image signature"
        },
        "optional": null
    })
    .to_string()
    .into_bytes()
}
