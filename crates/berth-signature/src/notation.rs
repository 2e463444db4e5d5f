//! Notation signatures (notaryproject/specifications: `signature-specification.md`,
//! `signature-envelope-jws.md`): a manifest with `subject` whose one layer is a JWS
//! envelope (`application/jose+json`, JSON serialization). Verified here: the `x5c`
//! chain up to a configured root with the code-signing usage at the current time, the
//! JWS signature with the leaf's key (ES256/384, PS256/384/512), the critical headers,
//! `io.cncf.notary.expiry`, and that `targetArtifact.digest` is the signed manifest.
//! Not done: timestamp countersignatures, revocation, trusted-identity constraints
//! (any leaf chaining to a configured root is accepted), COSE envelopes.

use rustls_pki_types::{CertificateDer, UnixTime};
use serde_json::Value;
use webpki::{EndEntityCert, KeyUsage};

use crate::accessory::NOTATION_JWS;
use crate::trust::Root;
use crate::{VerifyError, b64_std, b64_url};

/// The content type of Notation's payload.
pub const PAYLOAD_TYPE: &str = "application/vnd.cncf.notary.payload.v1+json";
/// id-kp-codeSigning (1.3.6.1.5.5.7.3.3), DER value bytes.
const CODE_SIGNING: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x03];

/// The envelope layer's digest of a Notation signature manifest, if it is a JWS one.
pub fn envelope_layer(manifest: &[u8]) -> Option<String> {
    let v: Value = serde_json::from_slice(manifest).ok()?;
    let layers = v.get("layers")?.as_array()?;
    let l = layers.iter().find(|l| l.get("mediaType").and_then(Value::as_str) == Some(NOTATION_JWS))?;
    Some(l.get("digest")?.as_str()?.to_string())
}

fn malformed(m: impl Into<String>) -> VerifyError {
    VerifyError::Malformed(m.into())
}

/// ECDSA JWS signatures are `r || s`; webpki takes ASN.1 DER.
fn fixed_to_der(sig: &[u8]) -> Vec<u8> {
    fn int(x: &[u8]) -> Vec<u8> {
        let mut x = x;
        while x.len() > 1 && x[0] == 0 {
            x = &x[1..];
        }
        let mut out = vec![0x02];
        let pad = x[0] & 0x80 != 0;
        out.push((x.len() + usize::from(pad)) as u8);
        if pad {
            out.push(0);
        }
        out.extend_from_slice(x);
        out
    }
    let (r, s) = sig.split_at(sig.len() / 2);
    let body = [int(r), int(s)].concat();
    let mut out = vec![0x30];
    if body.len() >= 0x80 {
        out.push(0x81);
    }
    out.push(body.len() as u8);
    out.extend(body);
    out
}

/// Unix seconds of an RFC 3339 time (`2026-01-02T03:04:05Z`, fractions, `±hh:mm`).
pub fn parse_rfc3339(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't') || b[13] != b':' || b[16] != b':' {
        return None;
    }
    let n = |r: std::ops::Range<usize>| s.get(r)?.parse::<i64>().ok();
    let (y, mo, d, h, mi, se) = (n(0..4)?, n(5..7)?, n(8..10)?, n(11..13)?, n(14..16)?, n(17..19)?);
    let mut rest = &s[19..];
    if let Some(r) = rest.strip_prefix('.') {
        rest = r.trim_start_matches(|c: char| c.is_ascii_digit());
    }
    let offset = match rest {
        "Z" | "z" => 0,
        o if o.len() == 6 && (o.starts_with('+') || o.starts_with('-')) => {
            let v = o[1..3].parse::<i64>().ok()? * 3600 + o[4..6].parse::<i64>().ok()? * 60;
            if o.starts_with('-') { -v } else { v }
        }
        _ => return None,
    };
    let (yy, m) = if mo <= 2 { (y - 1, mo + 9) } else { (y, mo - 3) };
    let era = yy.div_euclid(400);
    let yoe = yy.rem_euclid(400);
    let doy = (153 * m + 2) / 5 + d - 1;
    let days = era * 146_097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719_468;
    Some(days * 86_400 + h * 3600 + mi * 60 + se - offset)
}

/// Verifies a JWS envelope for `subject` (`sha256:…`) against `roots` at `now` (unix
/// seconds); `Ok(name)` of the root the chain ends at.
pub fn verify_jws(envelope: &[u8], subject: &str, roots: &[Root], now: u64) -> Result<String, VerifyError> {
    let env: Value = serde_json::from_slice(envelope).map_err(|e| malformed(format!("envelope: {e}")))?;
    let field = |k: &str| env.get(k).and_then(Value::as_str).ok_or_else(|| malformed(format!("envelope has no {k}")));
    let (protected_b64, payload_b64, sig_b64) = (field("protected")?, field("payload")?, field("signature")?);
    let protected: Value =
        serde_json::from_slice(&b64_url(protected_b64)?).map_err(|e| malformed(format!("protected header: {e}")))?;
    let ph = |k: &str| protected.get(k);
    let alg = ph("alg").and_then(Value::as_str).ok_or_else(|| malformed("no alg"))?;
    if ph("cty").and_then(Value::as_str) != Some(PAYLOAD_TYPE) {
        return Err(malformed(format!("cty must be {PAYLOAD_TYPE}")));
    }
    let crit: Vec<&str> =
        ph("crit").and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str).collect();
    if !crit.contains(&"io.cncf.notary.signingScheme") {
        return Err(malformed("crit must list io.cncf.notary.signingScheme"));
    }
    if let Some(missing) = crit.iter().find(|c| ph(c).is_none()) {
        return Err(malformed(format!("critical header {missing} is absent")));
    }
    match ph("io.cncf.notary.signingScheme").and_then(Value::as_str) {
        Some("notary.x509") | Some("notary.x509.signingAuthority") => {}
        other => return Err(malformed(format!("unknown signing scheme {other:?}"))),
    }
    if let Some(exp) = ph("io.cncf.notary.expiry").and_then(Value::as_str) {
        let t = parse_rfc3339(exp).ok_or_else(|| malformed(format!("bad expiry {exp:?}")))?;
        if t <= now as i64 {
            return Err(VerifyError::Untrusted(format!("the signature expired at {exp}")));
        }
    }
    let (algorithm, fixed): (&dyn rustls_pki_types::SignatureVerificationAlgorithm, bool) = match alg {
        "ES256" => (webpki::ring::ECDSA_P256_SHA256, true),
        "ES384" => (webpki::ring::ECDSA_P384_SHA384, true),
        "PS256" => (webpki::ring::RSA_PSS_2048_8192_SHA256_LEGACY_KEY, false),
        "PS384" => (webpki::ring::RSA_PSS_2048_8192_SHA384_LEGACY_KEY, false),
        "PS512" => (webpki::ring::RSA_PSS_2048_8192_SHA512_LEGACY_KEY, false),
        other => return Err(malformed(format!("unsupported alg {other}"))),
    };
    let x5c: Vec<CertificateDer<'static>> = env
        .get("header")
        .and_then(|h| h.get("x5c"))
        .and_then(Value::as_array)
        .ok_or_else(|| malformed("no x5c certificate chain"))?
        .iter()
        .map(|c| {
            c.as_str().ok_or_else(|| malformed("x5c entry is not a string")).and_then(b64_std).map(CertificateDer::from)
        })
        .collect::<Result<_, _>>()?;
    let (leaf, intermediates) = x5c.split_first().ok_or_else(|| malformed("empty x5c"))?;
    let ee = EndEntityCert::try_from(leaf).map_err(|e| malformed(format!("leaf certificate: {e}")))?;
    let root_ders: Vec<CertificateDer<'_>> = roots.iter().map(|r| CertificateDer::from(r.der.as_slice())).collect();
    let anchors: Vec<_> = root_ders.iter().filter_map(|c| webpki::anchor_from_trusted_cert(c).ok()).collect();
    let algs = [
        webpki::ring::ECDSA_P256_SHA256,
        webpki::ring::ECDSA_P256_SHA384,
        webpki::ring::ECDSA_P384_SHA256,
        webpki::ring::ECDSA_P384_SHA384,
        webpki::ring::RSA_PKCS1_2048_8192_SHA256,
        webpki::ring::RSA_PKCS1_2048_8192_SHA384,
        webpki::ring::RSA_PKCS1_2048_8192_SHA512,
        webpki::ring::RSA_PSS_2048_8192_SHA256_LEGACY_KEY,
        webpki::ring::RSA_PSS_2048_8192_SHA384_LEGACY_KEY,
        webpki::ring::RSA_PSS_2048_8192_SHA512_LEGACY_KEY,
    ];
    let path = ee
        .verify_for_usage(
            &algs,
            &anchors,
            intermediates,
            UnixTime::since_unix_epoch(std::time::Duration::from_secs(now)),
            KeyUsage::required(CODE_SIGNING),
            None,
            None,
        )
        .map_err(|e| VerifyError::Untrusted(format!("certificate chain: {e:?}")))?;
    let anchor = path.anchor();
    let root = roots
        .iter()
        .zip(&root_ders)
        .find(|(_, der)| webpki::anchor_from_trusted_cert(der).is_ok_and(|a| a.subject == anchor.subject))
        .map(|(r, _)| r.name.clone())
        .unwrap_or_default();
    let sig = b64_url(sig_b64)?;
    let sig = if fixed { fixed_to_der(&sig) } else { sig };
    let signing_input = format!("{protected_b64}.{payload_b64}");
    ee.verify_signature(algorithm, signing_input.as_bytes(), &sig)
        .map_err(|e| VerifyError::Untrusted(format!("JWS signature: {e:?}")))?;
    let payload: Value =
        serde_json::from_slice(&b64_url(payload_b64)?).map_err(|e| malformed(format!("payload: {e}")))?;
    let signed = payload
        .get("targetArtifact")
        .and_then(|t| t.get("digest"))
        .and_then(Value::as_str)
        .ok_or_else(|| malformed("payload has no targetArtifact.digest"))?;
    if signed != subject {
        return Err(VerifyError::WrongSubject { signed: signed.to_string(), wanted: subject.to_string() });
    }
    Ok(root)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339() {
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(parse_rfc3339("2024-02-29T12:00:00.5+02:00"), Some(1_709_200_800));
        assert_eq!(parse_rfc3339("nope"), None);
    }

    #[test]
    fn der_of_fixed() {
        let mut sig = vec![0u8; 64];
        sig[0] = 0x80;
        sig[63] = 1;
        let der = fixed_to_der(&sig);
        assert_eq!(&der[..4], &[0x30, 38, 0x02, 33]);
        assert_eq!(&der[der.len() - 3..], &[0x02, 1, 1]);
    }
}
