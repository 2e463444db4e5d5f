//! libpq's TLS settings in the URL. tokio-postgres reads `sslmode` only as far as
//! `disable|prefer|require` and refuses `sslrootcert`, so both are taken out here, turned
//! into a rustls connector that checks the server as libpq would, and the rest of the URL
//! goes to tokio-postgres unchanged.

use std::path::PathBuf;

use berth_core::store::StoreError;
use berth_tls::client::{Roots, Verify, client_config, libpq_default_root};
use tokio_postgres_rustls::MakeRustlsConnect;

/// The URL for tokio-postgres and the connector that does what its `sslmode` asks.
pub(crate) struct Prepared {
    pub url: String,
    pub connector: MakeRustlsConnect,
    /// What the server's certificate is checked against, for error messages.
    pub checks: String,
}

pub(crate) fn prepare(url: &str) -> Result<Prepared, StoreError> {
    let bad = |m: String| StoreError::Backend(format!("TLS settings in the URL: {m}"));
    let (base, query) = url.split_once('?').unwrap_or((url, ""));
    let (mut mode, mut root) = (String::from("prefer"), None::<String>);
    let mut kept = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        match k {
            "sslmode" => {
                mode = decode(v);
                // tokio-postgres then insists on TLS; the connector does the checking.
                let passed = if matches!(mode.as_str(), "verify-ca" | "verify-full") { "require" } else { v };
                kept.push(format!("sslmode={passed}"));
            }
            "sslrootcert" => root = Some(decode(v)),
            _ => kept.push(pair.to_owned()),
        }
    }
    let explicit_root = root.is_some();
    let roots = match root.as_deref() {
        Some("system") => Some(Roots::System),
        Some(path) => Some(Roots::File(PathBuf::from(path))),
        // libpq's default: ~/.postgresql/root.crt when it exists.
        None => libpq_default_root().filter(|p| p.exists()).map(Roots::File),
    };
    let verify = match mode.as_str() {
        "disable" | "allow" | "prefer" | "require" if roots.is_some() && mode != "disable" => Verify::Chain,
        "disable" | "allow" | "prefer" | "require" => Verify::Nothing,
        "verify-ca" => Verify::Chain,
        "verify-full" => Verify::Full,
        other => {
            return Err(bad(format!(
                "sslmode={other:?} is not one of disable, prefer, require, verify-ca, verify-full"
            )));
        }
    };
    let roots = match (verify, roots) {
        (Verify::Nothing, r) => r.unwrap_or(Roots::System),
        (_, Some(r)) => r,
        (_, None) => {
            return Err(bad(format!(
                "sslmode={mode} checks the server's certificate and needs the CA that signed it: add sslrootcert=/path/to/ca.crt (or sslrootcert=system for the system's CAs) to database.url, or place it at ~/.postgresql/root.crt"
            )));
        }
    };
    let mut config = client_config(verify, &roots).map_err(|e| bad(format!("sslrootcert: {e}")))?;
    // PostgreSQL 17 requires this ALPN name for direct TLS; older servers ignore it.
    std::sync::Arc::make_mut(&mut config).alpn_protocols = vec![b"postgresql".to_vec()];
    let checks = match (verify, &roots) {
        (Verify::Nothing, _) => "nothing (encryption only)".to_owned(),
        (v, Roots::File(p)) => format!(
            "the CA in {}{}{}",
            p.display(),
            if explicit_root { "" } else { " (libpq's default sslrootcert)" },
            if v == Verify::Full { " and the host name" } else { "" }
        ),
        (v, Roots::System) => {
            format!("the system's CAs{}", if v == Verify::Full { " and the host name" } else { "" })
        }
    };
    let url = if kept.is_empty() { base.to_owned() } else { format!("{base}?{}", kept.join("&")) };
    Ok(Prepared { url, connector: MakeRustlsConnect::new((*config).clone()), checks })
}

/// A connection error, with what was checked when the server's certificate was refused.
pub(crate) fn explain(message: String, checks: &str) -> String {
    if message.contains("invalid peer certificate") {
        format!(
            "{message}; the server's certificate was checked against {checks}: fix sslrootcert or sslmode in database.url"
        )
    } else {
        message
    }
}

fn decode(v: &str) -> String {
    percent_encoding::percent_decode_str(v).decode_utf8_lossy().into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ssl_settings_leave_the_url_and_the_rest_stays() {
        let p = prepare("postgres://u@h1:5432,h2:5432/db?target_session_attrs=read-write&sslmode=verify-ca&sslrootcert=%2Ftmp%2Fnone.crt")
            .err()
            .expect("a missing root file is an error");
        assert!(p.to_string().contains("sslrootcert: cannot read /tmp/none.crt"), "{p}");

        let p = prepare("postgres://u@h/db?sslmode=require&target_session_attrs=read-write").unwrap();
        assert_eq!(p.url, "postgres://u@h/db?sslmode=require&target_session_attrs=read-write");
        let p = prepare("postgres://u@h/db?sslmode=verify-full&sslrootcert=system").unwrap();
        assert_eq!(p.url, "postgres://u@h/db?sslmode=require");
        assert_eq!(p.checks, "the system's CAs and the host name");
        let p = prepare("postgres://u@h/db").unwrap();
        assert_eq!(p.url, "postgres://u@h/db");

        if !libpq_default_root().is_some_and(|p| p.exists()) {
            let e = prepare("postgres://u@h/db?sslmode=verify-full").err().unwrap().to_string();
            assert!(e.contains("add sslrootcert=/path/to/ca.crt"), "{e}");
        }
        let e = prepare("postgres://u@h/db?sslmode=sometimes").err().unwrap().to_string();
        assert!(e.contains("sslmode=\"sometimes\""), "{e}");
    }
}
