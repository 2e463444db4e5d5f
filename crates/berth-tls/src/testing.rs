//! Throwaway certificate authorities for tests: a CA and server certificates it signs,
//! written as PEM files the way an operator would have them.

use std::path::{Path, PathBuf};

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};

pub struct TestCa {
    issuer: Issuer<'static, KeyPair>,
    /// The CA certificate, PEM.
    pub cert_pem: String,
}

/// A server certificate and its key, PEM.
pub struct Leaf {
    pub cert_pem: String,
    pub key_pem: String,
}

impl TestCa {
    pub fn new(name: &str) -> TestCa {
        let key = KeyPair::generate().expect("CA key");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let cert = params.self_signed(&key).expect("CA certificate");
        TestCa { issuer: Issuer::new(params, key), cert_pem: cert.pem() }
    }

    /// A server certificate for `names` (DNS names or IP addresses), e.g. `["127.0.0.1", "localhost"]`.
    pub fn issue(&self, names: &[&str]) -> Leaf {
        let key = KeyPair::generate().expect("server key");
        let mut params =
            CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>()).expect("server params");
        params.distinguished_name.push(DnType::CommonName, names.first().copied().unwrap_or("server"));
        params.use_authority_key_identifier_extension = true;
        let cert = params.signed_by(&key, &self.issuer).expect("server certificate");
        Leaf { cert_pem: cert.pem(), key_pem: key.serialize_pem() }
    }

    /// Writes `ca.crt` into `dir` (the name podman's and skopeo's `--cert-dir` look for).
    pub fn write_ca(&self, dir: &Path) -> PathBuf {
        std::fs::create_dir_all(dir).expect("create cert dir");
        let p = dir.join("ca.crt");
        std::fs::write(&p, &self.cert_pem).expect("write ca.crt");
        p
    }
}

impl Leaf {
    /// Writes `<stem>.crt` and `<stem>.key` (mode 0600) into `dir`; returns both paths.
    pub fn write(&self, dir: &Path, stem: &str) -> (PathBuf, PathBuf) {
        use std::os::unix::fs::PermissionsExt;
        std::fs::create_dir_all(dir).expect("create cert dir");
        let (c, k) = (dir.join(format!("{stem}.crt")), dir.join(format!("{stem}.key")));
        std::fs::write(&c, &self.cert_pem).expect("write certificate");
        std::fs::write(&k, &self.key_pem).expect("write key");
        std::fs::set_permissions(&k, std::fs::Permissions::from_mode(0o600)).expect("chmod key");
        (c, k)
    }
}
