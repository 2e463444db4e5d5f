use super::*;
use crate::testing::TestCa;

fn leaf_der(pair: &CertifiedKey) -> Vec<u8> {
    pair.cert[0].to_vec()
}

#[test]
fn loads_a_matching_pair_and_refuses_others_saying_which_file() {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new("test CA");
    let (cert, key) = ca.issue(&["127.0.0.1"]).write(dir.path(), "a");
    let (_, other_key) = ca.issue(&["127.0.0.1"]).write(dir.path(), "b");
    load_pair(&cert, &key).expect("a good pair");

    let err = load_pair(&cert, &other_key).unwrap_err();
    assert!(matches!(err, CertError::Mismatch { .. }), "{err:?}");
    assert!(err.to_string().contains("b.key") && err.to_string().contains("a.crt"), "{err}");

    let missing = dir.path().join("missing.crt");
    let err = load_pair(&missing, &key).unwrap_err();
    assert!(matches!(&err, CertError::Cert(m) if m.contains("missing.crt") && m.contains("cannot read")), "{err:?}");

    // A key where the certificate belongs, and the other way round.
    let err = load_pair(&key, &key).unwrap_err();
    assert!(matches!(&err, CertError::Cert(m) if m.contains("no PEM certificate")), "{err:?}");
    let err = load_pair(&cert, &cert).unwrap_err();
    assert!(matches!(&err, CertError::Key(m) if m.contains("no PEM private key")), "{err:?}");
}

#[test]
fn reloads_only_a_complete_new_pair() {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new("test CA");
    let (cert, key) = ca.issue(&["127.0.0.1"]).write(dir.path(), "server");
    let r = ReloadingCert::load(&cert, &key).unwrap();
    let first = leaf_der(&r.current());
    assert!(!r.reload_if_changed().unwrap(), "nothing changed yet");

    // Half-replaced: the new certificate is there, its key not yet. The old pair stays.
    let next = ca.issue(&["127.0.0.1"]);
    std::fs::write(&cert, &next.cert_pem).unwrap();
    assert!(matches!(r.reload_if_changed(), Err(CertError::Mismatch { .. })));
    assert_eq!(leaf_der(&r.current()), first);
    // Looked at once: no repeated warning until a file changes again.
    assert!(!r.reload_if_changed().unwrap());

    std::fs::write(&key, &next.key_pem).unwrap();
    assert!(r.reload_if_changed().unwrap());
    assert_ne!(leaf_der(&r.current()), first, "the new certificate is served");
}
