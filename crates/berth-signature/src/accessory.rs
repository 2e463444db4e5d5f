//! Harbor's accessory model (goharbor/harbor `src/pkg/accessory/model`,
//! `src/server/middleware/subject`, `…/cosign`): which manifests are accessories of
//! another and of what type. Accessories are hidden from the top-level artifact list and
//! listed under their subject.

/// Harbor's accessory types, with its exact strings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AccessoryKind {
    CosignSignature,
    NotationSignature,
    HarborSbom,
    /// Any other manifest with a `subject` (attestations, other SBOMs, …).
    Subject,
}

impl AccessoryKind {
    pub fn as_str(self) -> &'static str {
        match self {
            AccessoryKind::CosignSignature => "signature.cosign",
            AccessoryKind::NotationSignature => "signature.notation",
            AccessoryKind::HarborSbom => "sbom.harbor",
            AccessoryKind::Subject => "subject.accessory",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Self::CosignSignature, Self::NotationSignature, Self::HarborSbom, Self::Subject]
            .into_iter()
            .find(|k| k.as_str() == s)
    }

    pub fn is_signature(self) -> bool {
        matches!(self, AccessoryKind::CosignSignature | AccessoryKind::NotationSignature)
    }
}

/// cosign's layer media type (simple signing payload).
pub const COSIGN_SIMPLESIGNING: &str = "application/vnd.dev.cosign.simplesigning.v1+json";
/// cosign's OCI 1.1 signature artifact type (`--registry-referrers-mode=oci-1-1`).
pub const COSIGN_ARTIFACT_SIG: &str = "application/vnd.dev.cosign.artifact.sig.v1+json";
/// Sigstore bundles (cosign 3's default signatures and attestations).
pub const SIGSTORE_BUNDLE: &str = "application/vnd.dev.sigstore.bundle.v0.3+json";
/// Notation's artifact type (or, in its legacy form, config media type).
pub const NOTATION_SIGNATURE: &str = "application/vnd.cncf.notary.signature";
/// Notation's JWS envelope layer.
pub const NOTATION_JWS: &str = "application/jose+json";
/// Harbor's SBOM accessory config media type.
pub const HARBOR_SBOM: &str = "application/vnd.goharbor.harbor.sbom.v1";

/// The accessory type of a manifest, from its `artifactType` (else config media type),
/// whether it has a `subject`, and its tags; `None` if it is not an accessory.
///
/// Harbor's precedence: a manifest with a subject is typed by its artifact type; a
/// manifest tagged `sha256-<hex>.sig` is a cosign signature (cosign's tag scheme, no
/// subject).
pub fn classify<'a>(
    artifact_type: Option<&str>,
    has_subject: bool,
    tags: impl IntoIterator<Item = &'a str>,
) -> Option<AccessoryKind> {
    if has_subject {
        return Some(match artifact_type.unwrap_or_default() {
            COSIGN_ARTIFACT_SIG | SIGSTORE_BUNDLE => AccessoryKind::CosignSignature,
            NOTATION_SIGNATURE => AccessoryKind::NotationSignature,
            HARBOR_SBOM => AccessoryKind::HarborSbom,
            _ => AccessoryKind::Subject,
        });
    }
    tags.into_iter().any(|t| cosign_tag_subject(t).is_some()).then_some(AccessoryKind::CosignSignature)
}

/// The digest (`sha256:<hex>`) a cosign signature tag `sha256-<hex>.sig` names.
pub fn cosign_tag_subject(tag: &str) -> Option<String> {
    let hex = tag.strip_prefix("sha256-")?.strip_suffix(".sig")?;
    (hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)))
        .then(|| format!("sha256:{hex}"))
}

/// cosign's signature tag for a digest (`sha256:<hex>` → `sha256-<hex>.sig`).
pub fn cosign_tag_for(digest: &str) -> Option<String> {
    let (alg, hex) = digest.split_once(':')?;
    Some(format!("{alg}-{hex}.sig"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEX: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn harbor_types() {
        let none: [&str; 0] = [];
        assert_eq!(classify(Some(COSIGN_ARTIFACT_SIG), true, none), Some(AccessoryKind::CosignSignature));
        assert_eq!(classify(Some(SIGSTORE_BUNDLE), true, none), Some(AccessoryKind::CosignSignature));
        assert_eq!(classify(Some(NOTATION_SIGNATURE), true, none), Some(AccessoryKind::NotationSignature));
        assert_eq!(classify(Some(HARBOR_SBOM), true, none), Some(AccessoryKind::HarborSbom));
        assert_eq!(classify(Some("application/spdx+json"), true, none), Some(AccessoryKind::Subject));
        assert_eq!(classify(None, true, none), Some(AccessoryKind::Subject));
        let tag = format!("sha256-{HEX}.sig");
        assert_eq!(
            classify(Some("application/vnd.oci.image.config.v1+json"), false, [tag.as_str()]),
            Some(AccessoryKind::CosignSignature)
        );
        assert_eq!(classify(None, false, ["latest", "sha256-abc.sig"]), None);
        // cosign's attestation and SBOM tags are ordinary artifacts in Harbor.
        assert_eq!(classify(None, false, [format!("sha256-{HEX}.att").as_str()]), None);
        assert_eq!(AccessoryKind::parse("signature.notation"), Some(AccessoryKind::NotationSignature));
    }

    #[test]
    fn cosign_tags() {
        assert_eq!(cosign_tag_subject(&format!("sha256-{HEX}.sig")), Some(format!("sha256:{HEX}")));
        assert_eq!(cosign_tag_subject(&format!("sha256-{}.sig", HEX.to_uppercase())), None);
        assert_eq!(cosign_tag_for(&format!("sha256:{HEX}")), Some(format!("sha256-{HEX}.sig")));
    }
}
