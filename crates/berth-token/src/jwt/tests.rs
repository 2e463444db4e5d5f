use super::*;
use std::sync::OnceLock;

/// Key generation is slow; one small key serves every test here.
fn issuer() -> &'static TokenIssuer {
    static I: OnceLock<TokenIssuer> = OnceLock::new();
    I.get_or_init(|| TokenIssuer::generate(2048).unwrap())
}

fn access() -> Vec<ResourceAccess> {
    vec![ResourceAccess { kind: "repository".into(), name: "library/nginx".into(), actions: vec!["pull".into()] }]
}

#[test]
fn issue_then_verify() {
    let t = issuer().issue("alice", access(), 1_000_000, 1800).unwrap();
    let c = issuer().verify(&t, 1_000_100).unwrap();
    assert_eq!(c.sub, "alice");
    assert_eq!(c.iss, "harbor-token-issuer");
    assert_eq!(c.aud, "harbor-registry");
    assert_eq!(c.exp, 1_001_800);
    assert_eq!(c.iat, 1_000_000);
    assert_eq!(c.jti.len(), 16);
    assert_eq!(c.access, access());
    // The wire shape Harbor's clients expect: aud is a string, header carries kid.
    let body: serde_json::Value = serde_json::from_slice(&B64.decode(t.split('.').nth(1).unwrap()).unwrap()).unwrap();
    assert!(body["aud"].is_string());
    assert_eq!(body["access"][0]["type"], "repository");
    let head: serde_json::Value = serde_json::from_slice(&B64.decode(t.split('.').next().unwrap()).unwrap()).unwrap();
    assert_eq!(head["alg"], "RS256");
    assert_eq!(head["kid"], issuer().kid());
}

#[test]
fn rejects_bad_tokens() {
    let i = issuer();
    let t = i.issue("bob", access(), 1_000_000, 1800).unwrap();
    assert_eq!(i.verify(&t, 1_001_800 + 61), Err(TokenError::Expired));
    assert!(i.verify(&t, 1_001_800 + 60).is_ok(), "60 s leeway");
    assert_eq!(i.verify(&t, 1_000_000 - 61), Err(TokenError::NotYetValid));
    assert_eq!(i.verify("a.b", 0), Err(TokenError::Malformed));
    assert_eq!(i.verify("a.b.c.d", 0), Err(TokenError::Malformed));
    // Tampered claims.
    let mut parts: Vec<String> = t.split('.').map(str::to_string).collect();
    let mut claims: serde_json::Value = serde_json::from_slice(&B64.decode(&parts[1]).unwrap()).unwrap();
    claims["sub"] = "admin".into();
    parts[1] = B64.encode(serde_json::to_vec(&claims).unwrap());
    assert_eq!(i.verify(&parts.join("."), 1_000_001), Err(TokenError::Signature));
    // alg=none and HS256 are refused before any signature check.
    let none = format!("{}.{}.", B64.encode(br#"{"alg":"none","typ":"JWT","kid":"x"}"#), parts[1]);
    assert_eq!(i.verify(&none, 1_000_001), Err(TokenError::Algorithm("none".into())));
    // Another key's token.
    let other = TokenIssuer::generate(1024).unwrap();
    let t2 = other.issue("bob", access(), 1_000_000, 1800).unwrap();
    assert_eq!(i.verify(&t2, 1_000_001), Err(TokenError::Signature));
}

#[test]
fn pem_roundtrip_keeps_the_key_id() {
    let pem = issuer().to_pem().unwrap();
    assert!(pem.starts_with("-----BEGIN RSA PRIVATE KEY-----"));
    let again = TokenIssuer::from_pem(&pem).unwrap();
    assert_eq!(again.kid(), issuer().kid());
    let t = again.issue("c", vec![], 5, 10).unwrap();
    assert!(issuer().verify(&t, 6).is_ok());
    assert!(matches!(TokenIssuer::from_pem("not a key"), Err(TokenError::Key(_))));
}

#[test]
fn kid_has_libtrust_shape() {
    let kid = issuer().kid();
    let groups: Vec<&str> = kid.split(':').collect();
    assert_eq!(groups.len(), 12);
    assert!(
        groups.iter().all(|g| g.len() == 4 && g.bytes().all(|b| b.is_ascii_uppercase() || (b'2'..=b'7').contains(&b)))
    );
    // Known answer: base32 of the first 30 bytes of SHA-256("").
    assert_eq!(libtrust_kid(b""), "4OYM:IQUY:7QOB:JGX3:6TEJ:S35Z:EQT2:4QPE:MSNZ:GTFE:SWMR:W6CS");
}
