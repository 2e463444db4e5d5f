use super::*;

/// An RSA key in Harbor's format (PKCS#1; 2048 bits), the one the integration tests also use.
const RSA_PEM: &str = include_str!("../../../berth/tests/fixtures/token_key.pem");
/// Its libtrust key id, from `openssl pkey -pubout -outform DER` (not from this code).
const RSA_KID: &str = "W6QU:VRTM:LZTO:JOEF:I2ZV:YPVY:UTY7:YP4O:UT6C:O4SQ:DVXY:AYFF";
/// A P-256 key from `openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256` and
/// the same key as `openssl ec` writes it (SEC1).
const EC_PKCS8: &str = "-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgWB8hmATMlCV1WEY8
qH7ttOteb2B4Xia1pFIi3pcmwy+hRANCAASY9qTjbv7Nn16UVJlmp+IHtFHg4E6n
1UK9vaCvBwwa+Bw2+DSh7h6AYEUbutmG+vWmdLdgfSXfsM+EvLkkfJbe
-----END PRIVATE KEY-----
";
const EC_SEC1: &str = "-----BEGIN EC PRIVATE KEY-----
MHcCAQEEIFgfIZgEzJQldVhGPKh+7bTrXm9geF4mtaRSIt6XJsMvoAoGCCqGSM49
AwEHoUQDQgAEmPak427+zZ9elFSZZqfiB7RR4OBOp9VCvb2grwcMGvgcNvg0oe4e
gGBFG7rZhvr1pnS3YH0l37DPhLy5JHyW3g==
-----END EC PRIVATE KEY-----
";
const EC_KID: &str = "C76C:XCHH:7PUX:YRR6:IDZQ:ZTJT:EEAT:BVXO:CX23:DZPO:7SW3:4RKL";

fn rsa() -> TokenIssuer {
    TokenIssuer::from_pem(RSA_PEM).unwrap()
}

fn access() -> Vec<ResourceAccess> {
    vec![ResourceAccess { kind: "repository".into(), name: "library/nginx".into(), actions: vec!["pull".into()] }]
}

fn decode_part(t: &str, i: usize) -> serde_json::Value {
    serde_json::from_slice(&B64.decode(t.split('.').nth(i).unwrap()).unwrap()).unwrap()
}

#[test]
fn issue_then_verify_with_both_kinds_of_key() {
    for (issuer, alg, sig_len) in [(rsa(), "RS256", 256), (TokenIssuer::generate().unwrap(), "ES256", 64)] {
        let t = issuer.issue("alice", access(), 1_000_000, 1800).unwrap();
        let c = issuer.verify(&t, 1_000_100).unwrap();
        assert_eq!(c.sub, "alice");
        assert_eq!(c.iss, "harbor-token-issuer");
        assert_eq!(c.aud, "harbor-registry");
        assert_eq!(c.exp, 1_001_800);
        assert_eq!(c.iat, 1_000_000);
        assert_eq!(c.jti.len(), 16);
        assert_eq!(c.access, access());
        // The wire shape Harbor's clients expect: aud is a string, header carries kid.
        let body = decode_part(&t, 1);
        assert!(body["aud"].is_string());
        assert_eq!(body["access"][0]["type"], "repository");
        let head = decode_part(&t, 0);
        assert_eq!(head["alg"], alg);
        assert_eq!(head["kid"], issuer.kid());
        // JWS signatures: RSA as long as the modulus, ECDSA as fixed-size r || s.
        assert_eq!(B64.decode(t.split('.').nth(2).unwrap()).unwrap().len(), sig_len);
    }
}

#[test]
fn rejects_bad_tokens() {
    for i in [rsa(), TokenIssuer::generate().unwrap()] {
        let t = i.issue("bob", access(), 1_000_000, 1800).unwrap();
        assert_eq!(i.verify(&t, 1_001_800 + 61), Err(TokenError::Expired));
        assert!(i.verify(&t, 1_001_800 + 60).is_ok(), "60 s leeway");
        assert_eq!(i.verify(&t, 1_000_000 - 61), Err(TokenError::NotYetValid));
        assert_eq!(i.verify("a.b", 0), Err(TokenError::Malformed));
        assert_eq!(i.verify("a.b.c.d", 0), Err(TokenError::Malformed));
        // Tampered claims.
        let mut parts: Vec<String> = t.split('.').map(str::to_string).collect();
        let mut claims = decode_part(&t, 1);
        claims["sub"] = "admin".into();
        parts[1] = B64.encode(serde_json::to_vec(&claims).unwrap());
        assert_eq!(i.verify(&parts.join("."), 1_000_001), Err(TokenError::Signature));
        // alg=none, HS256 and the other asymmetric algorithm are refused before any signature check.
        for alg in ["none", "HS256", if i.algorithm() == "RS256" { "ES256" } else { "RS256" }] {
            let head = B64.encode(format!(r#"{{"alg":"{alg}","typ":"JWT","kid":"x"}}"#));
            assert_eq!(
                i.verify(&format!("{head}.{}.{}", parts[1], parts[2]), 1_000_001),
                Err(TokenError::Algorithm { got: alg.into(), expected: i.algorithm() })
            );
        }
        // Another key's token, of the same algorithm.
        let other = if i.algorithm() == "RS256" {
            TokenIssuer::from_pem(include_str!("../../../berth/tests/fixtures/other_token_key.pem")).unwrap()
        } else {
            TokenIssuer::generate().unwrap()
        };
        let t2 = other.issue("bob", access(), 1_000_000, 1800).unwrap();
        assert_eq!(i.verify(&t2, 1_000_001), Err(TokenError::Signature));
    }
}

#[test]
fn key_ids_are_libtrust_fingerprints_of_the_public_key() {
    assert_eq!(rsa().kid(), RSA_KID);
    let ec = TokenIssuer::from_pem(EC_PKCS8).unwrap();
    assert_eq!((ec.kid(), ec.algorithm()), (EC_KID, "ES256"));
    assert_eq!(TokenIssuer::from_pem(EC_SEC1).unwrap().kid(), EC_KID);
}

#[test]
fn pem_roundtrip_keeps_the_key() {
    // RSA stays PKCS#1 byte for byte (the session key is derived from this text).
    let pem = rsa().to_pem().unwrap();
    assert!(pem.starts_with("-----BEGIN RSA PRIVATE KEY-----"));
    assert_eq!(pem.trim(), RSA_PEM.trim());
    let generated = TokenIssuer::generate().unwrap();
    let pem = generated.to_pem().unwrap();
    assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----"));
    let again = TokenIssuer::from_pem(&pem).unwrap();
    assert_eq!(again.kid(), generated.kid());
    let t = again.issue("c", vec![], 5, 10).unwrap();
    assert!(generated.verify(&t, 6).is_ok());
    // A SEC1 key is written as PKCS#8 and keeps its id.
    let sec1 = TokenIssuer::from_pem(EC_SEC1).unwrap();
    assert_eq!(TokenIssuer::from_pem(&sec1.to_pem().unwrap()).unwrap().kid(), EC_KID);
}

#[test]
fn unusable_keys_are_refused_with_the_reason() {
    let err = |pem: &str| match TokenIssuer::from_pem(pem) {
        Err(TokenError::Key(m)) => m,
        other => panic!("{other:?}"),
    };
    assert!(err("not a key").contains("not PEM"));
    let cert = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
    assert!(err(cert).contains("\"CERTIFICATE\" is not a private key"), "{}", err(cert));
    let junk = "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n";
    assert!(err(junk).contains("not a PKCS#8 private key"));
}

#[test]
fn kid_has_libtrust_shape() {
    let kid = TokenIssuer::generate().unwrap().kid().to_string();
    let groups: Vec<&str> = kid.split(':').collect();
    assert_eq!(groups.len(), 12);
    assert!(
        groups.iter().all(|g| g.len() == 4 && g.bytes().all(|b| b.is_ascii_uppercase() || (b'2'..=b'7').contains(&b)))
    );
    // Known answer: base32 of the first 30 bytes of SHA-256("").
    assert_eq!(libtrust_kid(b""), "4OYM:IQUY:7QOB:JGX3:6TEJ:S35Z:EQT2:4QPE:MSNZ:GTFE:SWMR:W6CS");
}
