//! Registry tokens as JSON Web Tokens, assembled by hand: the format is three base64url
//! parts, and owning the code keeps the exact claim shapes Harbor uses (a string `aud`)
//! and the dependency tree small. The signatures themselves are ring's.
//!
//! Two kinds of signing key: RSA (RS256), Harbor's `private_key.pem`, kept working so a
//! Harbor key can be reused; and P-256 (ES256), what a new installation generates. Clients
//! never verify registry tokens (only the registry does), so the algorithm is the
//! registry's own business, and a P-256 key is generated in microseconds where RSA-4096
//! took up to seconds, and signs a token ~100× cheaper.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use pem_rfc7468::LineEnding;
use pkcs8::PrivateKeyInfoRef;
use pkcs8::der::asn1::{AnyRef, BitStringRef, OctetStringRef};
use pkcs8::der::{Encode as _, Tag};
use pkcs8::spki::{AlgorithmIdentifierRef, ObjectIdentifier, SubjectPublicKeyInfoRef};
use ring::rand::{SecureRandom as _, SystemRandom};
use ring::signature::{self, EcdsaKeyPair, KeyPair as _, RsaKeyPair, UnparsedPublicKey};
use serde::{Deserialize, Serialize};
use sha2::Digest as _;
use zeroize::Zeroizing;

use crate::scope::ResourceAccess;
use crate::{ISSUER, SERVICE};

/// Clock skew tolerated when checking `exp`, `nbf` and `iat`, as Harbor allows.
pub const LEEWAY_SECS: i64 = 60;

const RSA_ENCRYPTION: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
const EC_PUBLIC_KEY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
const PRIME256V1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    pub iss: String,
    pub sub: String,
    pub aud: String,
    pub exp: i64,
    pub nbf: i64,
    pub iat: i64,
    pub jti: String,
    #[serde(default)]
    pub access: Vec<ResourceAccess>,
}

#[derive(Debug, Serialize, Deserialize)]
struct Header {
    alg: String,
    typ: String,
    kid: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("the token is malformed")]
    Malformed,
    #[error("the token is signed with {got:?}; this registry's key signs {expected}")]
    Algorithm { got: String, expected: &'static str },
    #[error("the token signature is invalid")]
    Signature,
    #[error("the token was issued by {0:?}, not {ISSUER}")]
    Issuer(String),
    #[error("the token is for {0:?}, not {SERVICE}")]
    Audience(String),
    #[error("the token has expired")]
    Expired,
    #[error("the token is not valid yet")]
    NotYetValid,
    #[error("the signing key is unusable: {0}")]
    Key(String),
}

enum Signer {
    /// The PKCS#1 DER is kept for [`TokenIssuer::to_pem`]; ring does not export keys.
    Rs256(RsaKeyPair, Zeroizing<Vec<u8>>),
    /// The PKCS#8 DER, likewise.
    Es256(EcdsaKeyPair, Zeroizing<Vec<u8>>),
}

pub struct TokenIssuer {
    signer: Signer,
    public: UnparsedPublicKey<Vec<u8>>,
    kid: String,
    rng: SystemRandom,
}

impl std::fmt::Debug for TokenIssuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenIssuer").field("alg", &self.algorithm()).field("kid", &self.kid).finish_non_exhaustive()
    }
}

/// libtrust's key id, which docker's distribution registry and Harbor put in `kid`:
/// base32 of the first 240 bits of SHA-256 over the PKIX DER public key, in twelve
/// colon-separated groups of four.
pub fn libtrust_kid(public_der: &[u8]) -> String {
    const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let hash = sha2::Sha256::digest(public_der);
    let bytes = &hash[..30];
    let mut out = String::with_capacity(59);
    let mut bits: u32 = 0;
    let mut nbits = 0;
    let mut n = 0;
    for &b in bytes {
        bits = (bits << 8) | b as u32;
        nbits += 8;
        while nbits >= 5 {
            nbits -= 5;
            if n > 0 && n % 4 == 0 {
                out.push(':');
            }
            out.push(ALPHABET[((bits >> nbits) & 31) as usize] as char);
            n += 1;
        }
    }
    out
}

fn random_jti(rng: &SystemRandom) -> String {
    const CHARS: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    let mut out = String::with_capacity(16);
    while out.len() < 16 {
        let mut buf = [0u8; 32];
        rng.fill(&mut buf).expect("OS random source");
        // 248 = 62 * 4: rejecting bytes above it keeps the choice uniform.
        out.extend(buf.iter().filter(|&&b| b < 248).map(|&b| CHARS[(b % 62) as usize] as char));
    }
    out.truncate(16);
    out
}

fn key_err(e: impl std::fmt::Display) -> TokenError {
    TokenError::Key(e.to_string())
}

/// The PKIX `SubjectPublicKeyInfo` DER of a public key, what libtrust hashes for the kid.
fn spki_der(algorithm: ObjectIdentifier, parameters: AnyRef<'_>, key: &[u8]) -> Result<Vec<u8>, TokenError> {
    SubjectPublicKeyInfoRef {
        algorithm: AlgorithmIdentifierRef { oid: algorithm, parameters: Some(parameters) },
        subject_public_key: BitStringRef::from_bytes(key).map_err(key_err)?,
    }
    .to_der()
    .map_err(key_err)
}

impl TokenIssuer {
    /// Loads a PEM private key: RSA as PKCS#1 (`BEGIN RSA PRIVATE KEY`, Harbor's format) or
    /// PKCS#8 (`BEGIN PRIVATE KEY`), signing RS256; P-256 as PKCS#8 or SEC1
    /// (`BEGIN EC PRIVATE KEY`), signing ES256.
    pub fn from_pem(pem: &str) -> Result<TokenIssuer, TokenError> {
        let usage = "expected a PEM private key: RSA (PKCS#1 \"RSA PRIVATE KEY\", Harbor's private_key.pem, or \
                     PKCS#8 \"PRIVATE KEY\") or P-256 (PKCS#8 \"PRIVATE KEY\" or SEC1 \"EC PRIVATE KEY\")";
        let (label, der) = pem_rfc7468::decode_vec(pem.trim().as_bytes())
            .map_err(|e| TokenError::Key(format!("not PEM ({e}); {usage}")))?;
        let der = Zeroizing::new(der);
        match label {
            "RSA PRIVATE KEY" => Self::rsa(der),
            "EC PRIVATE KEY" => {
                // ring reads P-256 keys from PKCS#8 only: wrap the SEC1 key as PKCS#8 v1.
                let params = AnyRef::new(Tag::ObjectIdentifier, PRIME256V1.as_bytes()).map_err(key_err)?;
                let info = PrivateKeyInfoRef {
                    algorithm: AlgorithmIdentifierRef { oid: EC_PUBLIC_KEY, parameters: Some(params) },
                    private_key: OctetStringRef::new(&der).map_err(key_err)?,
                    public_key: None,
                };
                Self::ec(Zeroizing::new(info.to_der().map_err(key_err)?))
            }
            "PRIVATE KEY" => {
                let info = PrivateKeyInfoRef::try_from(der.as_slice())
                    .map_err(|e| TokenError::Key(format!("not a PKCS#8 private key ({e}); {usage}")))?;
                if info.algorithm.oid == RSA_ENCRYPTION {
                    Self::rsa(Zeroizing::new(info.private_key.as_bytes().to_vec()))
                } else if info.algorithm.oid == EC_PUBLIC_KEY {
                    Self::ec(der)
                } else {
                    Err(TokenError::Key(format!("unsupported key algorithm {}; {usage}", info.algorithm.oid)))
                }
            }
            other => Err(TokenError::Key(format!("PEM block {other:?} is not a private key; {usage}"))),
        }
    }

    /// A new P-256 key (ES256): what a new installation signs with.
    pub fn generate() -> Result<TokenIssuer, TokenError> {
        let rng = SystemRandom::new();
        let doc = EcdsaKeyPair::generate_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
            .map_err(|_| TokenError::Key("the OS random source failed".into()))?;
        Self::ec(Zeroizing::new(doc.as_ref().to_vec()))
    }

    fn rsa(pkcs1: Zeroizing<Vec<u8>>) -> Result<TokenIssuer, TokenError> {
        let key = RsaKeyPair::from_der(&pkcs1).map_err(|e| {
            TokenError::Key(format!("not a usable RSA private key ({e}; 2048 to 4096 bits are supported)"))
        })?;
        let public = key.public().as_ref().to_vec();
        let kid = libtrust_kid(&spki_der(RSA_ENCRYPTION, AnyRef::NULL, &public)?);
        Ok(TokenIssuer {
            signer: Signer::Rs256(key, pkcs1),
            public: UnparsedPublicKey::new(&signature::RSA_PKCS1_2048_8192_SHA256, public),
            kid,
            rng: SystemRandom::new(),
        })
    }

    fn ec(pkcs8: Zeroizing<Vec<u8>>) -> Result<TokenIssuer, TokenError> {
        let rng = SystemRandom::new();
        let key = EcdsaKeyPair::from_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, &pkcs8, &rng).map_err(|e| {
            TokenError::Key(format!(
                "not a usable P-256 private key ({e}; the curve must be P-256 and the public key included)"
            ))
        })?;
        let public = key.public_key().as_ref().to_vec();
        let params = AnyRef::new(Tag::ObjectIdentifier, PRIME256V1.as_bytes()).map_err(key_err)?;
        let kid = libtrust_kid(&spki_der(EC_PUBLIC_KEY, params, &public)?);
        Ok(TokenIssuer {
            signer: Signer::Es256(key, pkcs8),
            public: UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, public),
            kid,
            rng,
        })
    }

    /// The key as PEM: RSA as PKCS#1, the format Harbor stores; P-256 as PKCS#8.
    pub fn to_pem(&self) -> Result<String, TokenError> {
        let (label, der) = match &self.signer {
            Signer::Rs256(_, der) => ("RSA PRIVATE KEY", der),
            Signer::Es256(_, der) => ("PRIVATE KEY", der),
        };
        pem_rfc7468::encode_string(label, LineEnding::LF, der).map_err(key_err)
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The JWS algorithm of this key's tokens: `RS256` or `ES256`.
    pub fn algorithm(&self) -> &'static str {
        match self.signer {
            Signer::Rs256(..) => "RS256",
            Signer::Es256(..) => "ES256",
        }
    }

    /// Issues a token for `subject` (empty for anonymous) granting `access`, valid for
    /// `ttl_secs` from `now` (unix seconds).
    pub fn issue(
        &self,
        subject: &str,
        access: Vec<ResourceAccess>,
        now: i64,
        ttl_secs: i64,
    ) -> Result<String, TokenError> {
        let header = Header { alg: self.algorithm().into(), typ: "JWT".into(), kid: self.kid.clone() };
        let claims = Claims {
            iss: ISSUER.into(),
            sub: subject.into(),
            aud: SERVICE.into(),
            exp: now + ttl_secs,
            nbf: now,
            iat: now,
            jti: random_jti(&self.rng),
            access,
        };
        let head = B64.encode(serde_json::to_vec(&header).map_err(key_err)?);
        let body = B64.encode(serde_json::to_vec(&claims).map_err(key_err)?);
        let signing_input = format!("{head}.{body}");
        let failed = |_| TokenError::Key("signing failed".into());
        let sig = match &self.signer {
            Signer::Rs256(key, _) => {
                let mut sig = vec![0; key.public().modulus_len()];
                key.sign(&signature::RSA_PKCS1_SHA256, &self.rng, signing_input.as_bytes(), &mut sig)
                    .map_err(failed)?;
                sig
            }
            Signer::Es256(key, _) => key.sign(&self.rng, signing_input.as_bytes()).map_err(failed)?.as_ref().to_vec(),
        };
        Ok(format!("{signing_input}.{}", B64.encode(sig)))
    }

    /// Checks signature, algorithm, issuer, audience and validity window.
    pub fn verify(&self, token: &str, now: i64) -> Result<Claims, TokenError> {
        let mut parts = token.split('.');
        let (Some(head), Some(body), Some(sig), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
            return Err(TokenError::Malformed);
        };
        let header: Header =
            B64.decode(head).ok().and_then(|h| serde_json::from_slice(&h).ok()).ok_or(TokenError::Malformed)?;
        // Only this key's own algorithm: never `none`, never HMAC with the public key.
        if header.alg != self.algorithm() {
            return Err(TokenError::Algorithm { got: header.alg, expected: self.algorithm() });
        }
        let sig = B64.decode(sig).map_err(|_| TokenError::Malformed)?;
        let signing_input = &token[..head.len() + 1 + body.len()];
        self.public.verify(signing_input.as_bytes(), &sig).map_err(|_| TokenError::Signature)?;
        let claims: Claims =
            B64.decode(body).ok().and_then(|b| serde_json::from_slice(&b).ok()).ok_or(TokenError::Malformed)?;
        if claims.iss != ISSUER {
            return Err(TokenError::Issuer(claims.iss));
        }
        if claims.aud != SERVICE {
            return Err(TokenError::Audience(claims.aud));
        }
        if now > claims.exp + LEEWAY_SECS {
            return Err(TokenError::Expired);
        }
        if now + LEEWAY_SECS < claims.nbf {
            return Err(TokenError::NotYetValid);
        }
        Ok(claims)
    }
}

#[cfg(test)]
mod tests;
