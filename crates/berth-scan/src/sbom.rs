//! SBOM documents of an inventory: SPDX 2.3 JSON and CycloneDX 1.5 JSON, each package with
//! its package URL.

use serde_json::{Value, json};

use crate::packages::{Inventory, Kind, Package};

pub const SPDX_JSON: &str = "application/spdx+json";
pub const CYCLONEDX_JSON: &str = "application/vnd.cyclonedx+json";

/// What the document describes.
#[derive(Debug, Clone)]
pub struct Subject {
    /// `repository@digest`, e.g. `library/app@sha256:…`.
    pub name: String,
    pub digest: String,
}

fn enc(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b'~' | b'+') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The package URL (package-url/purl-spec) of a package.
pub fn purl(inv: &Inventory, p: &Package) -> String {
    let distro_ns = || inv.os.as_ref().map(|o| o.id.to_ascii_lowercase()).unwrap_or_else(|| "unknown".into());
    let distro_q = || inv.os.as_ref().map(|o| format!("&distro={}-{}", o.id, o.version_id)).unwrap_or_default();
    match p.kind {
        Kind::Deb | Kind::Apk => format!(
            "pkg:{}/{}/{}@{}?arch={}{}",
            p.kind.purl_type(),
            distro_ns(),
            enc(&p.name),
            enc(&p.version),
            enc(&p.arch),
            distro_q()
        ),
        Kind::Rpm => {
            let (epoch, ver) = match p.version.split_once(':') {
                Some((e, v)) => (format!("&epoch={e}"), v),
                None => (String::new(), p.version.as_str()),
            };
            format!("pkg:rpm/{}/{}@{}?arch={}{epoch}{}", distro_ns(), enc(&p.name), enc(ver), enc(&p.arch), distro_q())
        }
        Kind::Golang => {
            format!("pkg:golang/{}@{}", p.name.split('/').map(enc).collect::<Vec<_>>().join("/"), enc(&p.version))
        }
        Kind::Npm => match p.name.split_once('/') {
            Some((scope, n)) if scope.starts_with('@') => {
                format!("pkg:npm/{}/{}@{}", enc(scope), enc(n), enc(&p.version))
            }
            _ => format!("pkg:npm/{}@{}", enc(&p.name), enc(&p.version)),
        },
        Kind::Maven => {
            let (g, a) = p.name.split_once(':').unwrap_or(("", &p.name));
            format!("pkg:maven/{}/{}@{}", enc(g), enc(a), enc(&p.version))
        }
        Kind::Pypi | Kind::Cargo | Kind::Gem => {
            format!("pkg:{}/{}@{}", p.kind.purl_type(), enc(&p.name), enc(&p.version))
        }
    }
}

fn spdx_id(i: usize) -> String {
    format!("SPDXRef-Package-{i}")
}

/// An SPDX 2.3 JSON document. `created` is RFC 3339; `namespace_id` makes the document
/// namespace unique (a UUID).
pub fn spdx(inv: &Inventory, subject: &Subject, created: &str, namespace_id: &str) -> Value {
    let mut packages = vec![json!({
        "SPDXID": "SPDXRef-Image",
        "name": subject.name,
        "downloadLocation": "NOASSERTION",
        "primaryPackagePurpose": "CONTAINER",
        "checksums": [{"algorithm": "SHA256", "checksumValue": subject.digest.trim_start_matches("sha256:")}],
    })];
    let mut relationships = vec![json!({
        "spdxElementId": "SPDXRef-DOCUMENT", "relationshipType": "DESCRIBES", "relatedSpdxElement": "SPDXRef-Image"
    })];
    if let Some(os) = &inv.os {
        packages.push(json!({
            "SPDXID": "SPDXRef-OperatingSystem",
            "name": os.id,
            "versionInfo": os.version_id,
            "downloadLocation": "NOASSERTION",
            "primaryPackagePurpose": "OPERATING_SYSTEM",
        }));
        relationships.push(json!({"spdxElementId": "SPDXRef-Image", "relationshipType": "CONTAINS", "relatedSpdxElement": "SPDXRef-OperatingSystem"}));
    }
    for (i, p) in inv.packages.iter().enumerate() {
        let mut pkg = json!({
            "SPDXID": spdx_id(i),
            "name": p.name,
            "versionInfo": p.version,
            "downloadLocation": "NOASSERTION",
            "primaryPackagePurpose": if matches!(p.kind, Kind::Deb | Kind::Apk | Kind::Rpm) { "INSTALL" } else { "LIBRARY" },
            "externalRefs": [{"referenceCategory": "PACKAGE-MANAGER", "referenceType": "purl", "referenceLocator": purl(inv, p)}],
            "sourceInfo": format!("found in {}", p.path),
        });
        if !p.license.is_empty() {
            pkg["licenseDeclared"] = json!("NOASSERTION");
            pkg["comment"] = json!(format!("declared license: {}", p.license));
        }
        packages.push(pkg);
        relationships.push(
            json!({"spdxElementId": "SPDXRef-Image", "relationshipType": "CONTAINS", "relatedSpdxElement": spdx_id(i)}),
        );
    }
    json!({
        "spdxVersion": "SPDX-2.3",
        "dataLicense": "CC0-1.0",
        "SPDXID": "SPDXRef-DOCUMENT",
        "name": subject.name,
        "documentNamespace": format!("https://berth.invalid/spdx/{}-{namespace_id}", enc(&subject.name)),
        "creationInfo": {"created": created, "creators": [format!("Tool: berth-{}", env!("CARGO_PKG_VERSION"))]},
        "packages": packages,
        "relationships": relationships,
    })
}

/// A CycloneDX 1.5 JSON document; `serial` is a UUID.
pub fn cyclonedx(inv: &Inventory, subject: &Subject, created: &str, serial: &str) -> Value {
    let mut components = Vec::new();
    let mut refs = Vec::new();
    if let Some(os) = &inv.os {
        components.push(json!({"type": "operating-system", "bom-ref": "os", "name": os.id, "version": os.version_id}));
        refs.push(json!("os"));
    }
    for p in &inv.packages {
        let purl = purl(inv, p);
        let mut c = json!({
            "type": "library",
            "bom-ref": purl,
            "name": p.name,
            "version": p.version,
            "purl": purl,
            "properties": [{"name": "berth:package:path", "value": p.path}],
        });
        if !p.license.is_empty() {
            c["licenses"] = json!([{"license": {"name": p.license}}]);
        }
        refs.push(json!(purl));
        components.push(c);
    }
    json!({
        "bomFormat": "CycloneDX",
        "specVersion": "1.5",
        "serialNumber": format!("urn:uuid:{serial}"),
        "version": 1,
        "metadata": {
            "timestamp": created,
            "tools": {"components": [{"type": "application", "name": "berth", "version": env!("CARGO_PKG_VERSION")}]},
            "component": {"type": "container", "bom-ref": "image", "name": subject.name, "version": subject.digest},
        },
        "components": components,
        "dependencies": [{"ref": "image", "dependsOn": refs}],
    })
}

/// Harbor's SBOM accessory type: the config media type of the manifest Harbor 2.11+ pushes
/// next to a scanned image (goharbor/harbor `src/pkg/scan/sbom`); berth-signature's
/// accessory classification knows it as `sbom.harbor`.
pub const HARBOR_SBOM_MEDIA_TYPE: &str = "application/vnd.goharbor.harbor.sbom.v1";
/// The media type of the accessory's one layer, which holds the SBOM document as is.
pub const HARBOR_SBOM_LAYER: &str = "application/vnd.oci.image.layer.v1.tar";

/// An OCI descriptor's three fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Descriptor {
    pub media_type: String,
    pub digest: String,
    pub size: u64,
}

impl Descriptor {
    fn of(media_type: &str, bytes: &[u8]) -> Descriptor {
        use sha2::Digest as _;
        Descriptor {
            media_type: media_type.to_string(),
            digest: format!("sha256:{}", hex::encode(sha2::Sha256::digest(bytes))),
            size: bytes.len() as u64,
        }
    }

    fn json(&self) -> Value {
        json!({"mediaType": self.media_type, "digest": self.digest, "size": self.size})
    }
}

/// The blobs and manifest of an SBOM accessory, to be pushed to the subject's repository.
#[derive(Debug, Clone)]
pub struct Accessory {
    pub config: Vec<u8>,
    pub layer: Vec<u8>,
    pub manifest: Vec<u8>,
    pub manifest_digest: String,
}

/// Harbor's SBOM accessory of `subject` (`GenAccessoryArt`): an OCI image manifest whose
/// config media type is [`HARBOR_SBOM_MEDIA_TYPE`], whose one layer is the SBOM `document`
/// and whose `subject` is the scanned image, annotated with its creation time.
pub fn harbor_accessory(document: Vec<u8>, subject: &Descriptor, created: &str) -> Accessory {
    let layer = Descriptor::of(HARBOR_SBOM_LAYER, &document);
    let config = serde_json::to_vec(&json!({
        "architecture": "",
        "os": "",
        "created": created,
        "history": [{"created": created, "created_by": "Berth", "author": "Berth"}],
        "rootfs": {"type": "layers", "diff_ids": [layer.digest]},
        "config": {},
    }))
    .unwrap_or_default();
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": Descriptor::of(HARBOR_SBOM_MEDIA_TYPE, &config).json(),
        "layers": [layer.json()],
        "subject": subject.json(),
        "annotations": {
            "created": created,
            "created-by": "Berth",
            "org.opencontainers.artifact.created": created,
            "org.opencontainers.artifact.description": "SPDX JSON SBOM",
        },
    }))
    .unwrap_or_default();
    let manifest_digest = Descriptor::of("", &manifest).digest;
    Accessory { config, layer: document, manifest, manifest_digest }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn harbor_accessory_shape() {
        let subject = Descriptor {
            media_type: "application/vnd.oci.image.manifest.v1+json".into(),
            digest: format!("sha256:{}", "ab".repeat(32)),
            size: 1234,
        };
        let a = harbor_accessory(br#"{"spdxVersion":"SPDX-2.3"}"#.to_vec(), &subject, "2024-06-01T00:00:00Z");
        let m: Value = serde_json::from_slice(&a.manifest).unwrap();
        assert_eq!(m["config"]["mediaType"], HARBOR_SBOM_MEDIA_TYPE);
        assert_eq!(m["config"]["size"], a.config.len());
        assert_eq!(m["layers"].as_array().unwrap().len(), 1);
        assert_eq!(m["layers"][0]["mediaType"], HARBOR_SBOM_LAYER);
        assert_eq!(m["layers"][0]["size"], a.layer.len());
        assert_eq!(m["layers"][0]["digest"], "sha256:d4f269605ffe72fbe7a3021d68284798ec364111376ee2eace17688bb52a9e1d");
        assert_eq!(m["subject"], json!({"mediaType": subject.media_type, "digest": subject.digest, "size": 1234}));
        assert_eq!(m["annotations"]["org.opencontainers.artifact.description"], "SPDX JSON SBOM");
        let c: Value = serde_json::from_slice(&a.config).unwrap();
        assert_eq!(c["rootfs"]["diff_ids"][0], m["layers"][0]["digest"]);
        assert_eq!(a.manifest_digest, Descriptor::of("", &a.manifest).digest);
    }
}
