//! A project's signature trust: what Berth verifies signatures against.
//!
//! Stored as the JSON document the API takes (`/projects/{p}/signature-trust`):
//!
//! ```json
//! {"cosign_public_keys": [{"name": "ci", "public_key": "-----BEGIN PUBLIC KEY-----…"}],
//!  "notation_certificates": [{"name": "corp-ca", "certificate": "-----BEGIN CERTIFICATE-----…"}]}
//! ```
//!
//! Keys are ECDSA P-256 `PUBLIC KEY` PEMs (what `cosign generate-key-pair` writes);
//! certificates are the roots (or intermediates to trust as anchors) of Notation's `ca`
//! trust store, PEM, several per entry allowed.

use serde::{Deserialize, Serialize};

/// The DER prefix of every P-256 SubjectPublicKeyInfo (SEQUENCE, id-ecPublicKey,
/// prime256v1, BIT STRING of 66 bytes): what follows is the 65-byte uncompressed point.
/// DER is canonical, so a P-256 key is exactly these 26 bytes plus the point.
pub(crate) const P256_SPKI_PREFIX: [u8; 26] = [
    0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce,
    0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
];

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrustDoc {
    #[serde(default)]
    pub cosign_public_keys: Vec<CosignKeyDoc>,
    #[serde(default)]
    pub notation_certificates: Vec<CertificateDoc>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CosignKeyDoc {
    pub name: String,
    pub public_key: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CertificateDoc {
    pub name: String,
    pub certificate: String,
}

/// A configuration that failed its checks, naming the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct TrustError {
    pub field: String,
    pub message: String,
}

/// A cosign public key, ready to verify.
#[derive(Debug, Clone)]
pub struct CosignKey {
    pub name: String,
    /// The uncompressed P-256 point.
    pub point: Vec<u8>,
}

/// A Notation root certificate (DER).
#[derive(Debug, Clone)]
pub struct Root {
    pub name: String,
    pub der: Vec<u8>,
}

/// A project's trust, parsed.
#[derive(Debug, Clone, Default)]
pub struct Trust {
    pub cosign: Vec<CosignKey>,
    pub notation: Vec<Root>,
}

fn err(field: String, message: impl Into<String>) -> TrustError {
    TrustError { field, message: message.into() }
}

/// The PEM blocks of `text` with their labels.
fn pem_blocks(text: &str) -> Result<Vec<(String, Vec<u8>)>, String> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("-----BEGIN ") {
        let after = &rest[start..];
        let label_end = after[11..].find("-----").ok_or("an unterminated BEGIN line")? + 11;
        let label = &after[11..label_end];
        let end_marker = format!("-----END {label}-----");
        let end = after.find(&end_marker).ok_or_else(|| format!("no {end_marker} line"))? + end_marker.len();
        let (l, der) = pem_rfc7468::decode_vec(after[..end].as_bytes()).map_err(|e| format!("bad PEM: {e}"))?;
        out.push((l.to_string(), der));
        rest = &after[end..];
    }
    Ok(out)
}

/// The point of a P-256 public key in PEM (`PUBLIC KEY`).
pub fn p256_point_from_pem(pem: &str) -> Result<Vec<u8>, String> {
    let blocks = pem_blocks(pem)?;
    let [(label, der)] = blocks.as_slice() else {
        return Err(format!("expected one PEM block, found {}", blocks.len()));
    };
    if label != "PUBLIC KEY" {
        return Err(format!("expected a PUBLIC KEY PEM block, found {label}"));
    }
    match der.strip_prefix(&P256_SPKI_PREFIX[..]) {
        Some(point) if point.len() == 65 && point[0] == 4 => Ok(point.to_vec()),
        _ => Err("not an ECDSA P-256 public key (cosign's default; other key types are not supported)".into()),
    }
}

impl TrustDoc {
    /// Checks every entry, naming the first bad field (`cosign_public_keys[1].public_key`).
    pub fn compile(&self) -> Result<Trust, TrustError> {
        let mut trust = Trust::default();
        let mut names = std::collections::HashSet::new();
        for (i, k) in self.cosign_public_keys.iter().enumerate() {
            let f = |x: &str| format!("cosign_public_keys[{i}].{x}");
            if k.name.trim().is_empty() {
                return Err(err(f("name"), "must not be empty"));
            }
            if !names.insert(("cosign", k.name.clone())) {
                return Err(err(f("name"), format!("{:?} is used twice", k.name)));
            }
            let point = p256_point_from_pem(&k.public_key).map_err(|m| err(f("public_key"), m))?;
            trust.cosign.push(CosignKey { name: k.name.clone(), point });
        }
        for (i, c) in self.notation_certificates.iter().enumerate() {
            let f = |x: &str| format!("notation_certificates[{i}].{x}");
            if c.name.trim().is_empty() {
                return Err(err(f("name"), "must not be empty"));
            }
            if !names.insert(("notation", c.name.clone())) {
                return Err(err(f("name"), format!("{:?} is used twice", c.name)));
            }
            let blocks = pem_blocks(&c.certificate).map_err(|m| err(f("certificate"), m))?;
            if blocks.is_empty() {
                return Err(err(f("certificate"), "no PEM CERTIFICATE block"));
            }
            for (label, der) in blocks {
                if label != "CERTIFICATE" {
                    return Err(err(f("certificate"), format!("expected CERTIFICATE PEM blocks, found {label}")));
                }
                let cert = rustls_pki_types::CertificateDer::from(der.clone());
                webpki::anchor_from_trusted_cert(&cert)
                    .map_err(|e| err(f("certificate"), format!("not a usable X.509 certificate: {e}")))?;
                trust.notation.push(Root { name: c.name.clone(), der });
            }
        }
        Ok(trust)
    }
}

impl Trust {
    pub fn is_empty(&self) -> bool {
        self.cosign.is_empty() && self.notation.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_fields_are_named() {
        let doc = TrustDoc {
            cosign_public_keys: vec![CosignKeyDoc { name: "ci".into(), public_key: "nonsense".into() }],
            notation_certificates: vec![],
        };
        let e = doc.compile().unwrap_err();
        assert_eq!(e.field, "cosign_public_keys[0].public_key");
        let doc = TrustDoc {
            cosign_public_keys: vec![],
            notation_certificates: vec![CertificateDoc { name: "".into(), certificate: String::new() }],
        };
        assert_eq!(doc.compile().unwrap_err().field, "notation_certificates[0].name");
        assert!(TrustDoc::default().compile().unwrap().is_empty());
    }
}
