//! Signers for tests (the `testing` feature): a cosign key pair and a Notation CA with a
//! code-signing leaf, producing exactly what `cosign sign --key` and `notation sign` store.

use base64::Engine as _;
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair as _};
use serde_json::{Value, json};

use crate::trust::P256_SPKI_PREFIX;

fn b64(b: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(b)
}

fn b64url(b: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

/// A cosign key pair (ECDSA P-256, as `cosign generate-key-pair`).
pub struct CosignSigner {
    key: EcdsaKeyPair,
    /// `-----BEGIN PUBLIC KEY-----…`, what `cosign.pub` holds.
    pub public_key_pem: String,
}

impl CosignSigner {
    pub fn generate() -> Self {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng).expect("keygen");
        let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8.as_ref(), &rng).expect("key");
        let spki = [&P256_SPKI_PREFIX[..], key.public_key().as_ref()].concat();
        let public_key_pem = pem_rfc7468::encode_string("PUBLIC KEY", pem_rfc7468::LineEnding::LF, &spki).expect("pem");
        CosignSigner { key, public_key_pem }
    }

    /// The layer annotation value: base64 of the DER signature over SHA-256 of `payload`.
    pub fn sign(&self, payload: &[u8]) -> String {
        b64(self.key.sign(&SystemRandom::new(), payload).expect("sign").as_ref())
    }
}

/// A Notation CA and a leaf certificate with the code-signing usage.
pub struct NotationSigner {
    /// The CA certificate, PEM: what goes in the trust store.
    pub root_pem: String,
    leaf_der: Vec<u8>,
    root_der: Vec<u8>,
    leaf_key: EcdsaKeyPair,
}

impl NotationSigner {
    pub fn generate(org: &str) -> Self {
        use rcgen::{
            BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose,
        };
        let ca_key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("ca key");
        let mut ca = CertificateParams::new(Vec::<String>::new()).expect("params");
        ca.distinguished_name.push(DnType::OrganizationName, org);
        ca.distinguished_name.push(DnType::CommonName, format!("{org} signing CA"));
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::DigitalSignature];
        let ca_cert = ca.self_signed(&ca_key).expect("ca");
        let issuer = rcgen::Issuer::new(ca, ca_key);
        let leaf_key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("leaf key");
        let mut leaf = CertificateParams::new(Vec::<String>::new()).expect("params");
        leaf.distinguished_name.push(DnType::OrganizationName, org);
        leaf.distinguished_name.push(DnType::CommonName, format!("{org} release signer"));
        leaf.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::CodeSigning];
        let leaf_cert = leaf.signed_by(&leaf_key, &issuer).expect("leaf");
        let rng = SystemRandom::new();
        let leaf_key =
            EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &leaf_key.serialize_der(), &rng).expect("key");
        NotationSigner {
            root_pem: ca_cert.pem(),
            leaf_der: leaf_cert.der().to_vec(),
            root_der: ca_cert.der().to_vec(),
            leaf_key,
        }
    }

    /// A JWS envelope (JSON serialization) signing `target` (a descriptor: mediaType,
    /// digest, size), as `notation sign` makes it.
    pub fn envelope(&self, target: &Value, expiry: Option<&str>) -> Vec<u8> {
        let mut protected = json!({
            "alg": "ES256",
            "cty": crate::notation::PAYLOAD_TYPE,
            "crit": ["io.cncf.notary.signingScheme"],
            "io.cncf.notary.signingScheme": "notary.x509",
            "io.cncf.notary.signingTime": "2026-01-01T00:00:00Z",
        });
        if let Some(e) = expiry {
            protected["io.cncf.notary.expiry"] = Value::String(e.into());
            protected["crit"] = json!(["io.cncf.notary.signingScheme", "io.cncf.notary.expiry"]);
        }
        let p = b64url(protected.to_string().as_bytes());
        let payload = b64url(json!({ "targetArtifact": target }).to_string().as_bytes());
        let sig = self.leaf_key.sign(&SystemRandom::new(), format!("{p}.{payload}").as_bytes()).expect("sign");
        json!({
            "payload": payload,
            "protected": p,
            "header": {"x5c": [b64(&self.leaf_der), b64(&self.root_der)], "io.cncf.notary.signingAgent": "berth-test"},
            "signature": b64url(sig.as_ref()),
        })
        .to_string()
        .into_bytes()
    }
}
