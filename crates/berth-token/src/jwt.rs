//! RS256 JSON Web Tokens, written out by hand: the format is three base64url parts, and
//! owning the code keeps the exact claim shapes Harbor uses (a string `aud`) and the
//! dependency tree small.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use rsa::pkcs1::{DecodeRsaPrivateKey, EncodeRsaPrivateKey};
use rsa::pkcs8::{DecodePrivateKey, EncodePublicKey, LineEnding};
use rsa::sha2::Sha256;
use rsa::{PrivateKey, PublicKey};
use serde::{Deserialize, Serialize};
use sha2::Digest as _;

use crate::scope::ResourceAccess;
use crate::{ISSUER, SERVICE};

/// Clock skew tolerated when checking `exp`, `nbf` and `iat`, as Harbor allows.
const LEEWAY_SECS: i64 = 60;

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
    #[error("the token is signed with {0:?}; only RS256 is accepted")]
    Algorithm(String),
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

pub struct TokenIssuer {
    key: PrivateKey,
    public: PublicKey,
    kid: String,
}

impl std::fmt::Debug for TokenIssuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenIssuer").field("kid", &self.kid).finish_non_exhaustive()
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

fn random_jti() -> String {
    const CHARS: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    let mut out = String::with_capacity(16);
    while out.len() < 16 {
        let mut buf = [0u8; 32];
        getrandom::fill(&mut buf).expect("OS random source");
        // 248 = 62 * 4: rejecting bytes above it keeps the choice uniform.
        out.extend(buf.iter().filter(|&&b| b < 248).map(|&b| CHARS[(b % 62) as usize] as char));
    }
    out.truncate(16);
    out
}

impl TokenIssuer {
    /// Loads a PEM private key: PKCS#1 (`BEGIN RSA PRIVATE KEY`, Harbor's format) or PKCS#8.
    pub fn from_pem(pem: &str) -> Result<TokenIssuer, TokenError> {
        let key = PrivateKey::from_pkcs1_pem(pem)
            .or_else(|_| PrivateKey::from_pkcs8_pem(pem))
            .map_err(|e| TokenError::Key(format!("not an RSA private key in PEM (PKCS#1 or PKCS#8): {e}")))?;
        Self::from_key(key)
    }

    /// A new RSA key of `bits` bits (Harbor uses 4096).
    pub fn generate(bits: usize) -> Result<TokenIssuer, TokenError> {
        let key = PrivateKey::new(&mut getrandom::SysRng, bits).map_err(|e| TokenError::Key(e.to_string()))?;
        Self::from_key(key)
    }

    fn from_key(key: PrivateKey) -> Result<TokenIssuer, TokenError> {
        let public = key.to_public_key();
        let der = public.to_public_key_der().map_err(|e| TokenError::Key(e.to_string()))?;
        let kid = libtrust_kid(der.as_bytes());
        Ok(TokenIssuer { key, public, kid })
    }

    /// The key as PKCS#1 PEM, the format Harbor stores.
    pub fn to_pem(&self) -> Result<String, TokenError> {
        self.key.to_pkcs1_pem(LineEnding::LF).map(|p| p.to_string()).map_err(|e| TokenError::Key(e.to_string()))
    }

    pub fn kid(&self) -> &str {
        &self.kid
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
        let header = Header { alg: "RS256".into(), typ: "JWT".into(), kid: self.kid.clone() };
        let claims = Claims {
            iss: ISSUER.into(),
            sub: subject.into(),
            aud: SERVICE.into(),
            exp: now + ttl_secs,
            nbf: now,
            iat: now,
            jti: random_jti(),
            access,
        };
        let head = B64.encode(serde_json::to_vec(&header).map_err(|e| TokenError::Key(e.to_string()))?);
        let body = B64.encode(serde_json::to_vec(&claims).map_err(|e| TokenError::Key(e.to_string()))?);
        let signing_input = format!("{head}.{body}");
        let sig =
            self.key.pkcs1v15_sign::<Sha256>(signing_input.as_bytes()).map_err(|e| TokenError::Key(e.to_string()))?;
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
        if header.alg != "RS256" {
            return Err(TokenError::Algorithm(header.alg));
        }
        let sig = B64.decode(sig).map_err(|_| TokenError::Malformed)?;
        let signing_input = &token[..head.len() + 1 + body.len()];
        self.public.pkcs1v15_verify::<Sha256>(signing_input.as_bytes(), &sig).map_err(|_| TokenError::Signature)?;
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
