//! Start-up refuses bad configuration with every problem named.

use std::process::Command;

fn berth(args: &[&str], env: &[(&str, &str)]) -> (i32, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_berth"));
    cmd.args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run berth");
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stderr).to_string())
}

#[test]
fn bad_configuration_is_reported_all_at_once() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("not-a-dir");
    std::fs::write(&file, "x").unwrap();
    let (code, err) = berth(
        &["serve", "--data-dir", file.to_str().unwrap()],
        &[("BERTH_HTTP_LISTEN", "localhost"), ("BERTH_DATABASE_URL", "mysql://u:secret@h/db")],
    );
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("3 problems"), "{err}");
    assert!(err.contains("data_dir:") && err.contains("is a file, but must be a directory"), "{err}");
    assert!(err.contains("http.listen: \"localhost\""), "{err}");
    assert!(err.contains("database.url: scheme \"mysql\""), "{err}");
    assert!(!err.contains("secret"), "secrets are never echoed: {err}");
}

#[test]
fn config_file_that_is_a_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let (code, err) = berth(&["serve", "--config", tmp.path().to_str().unwrap()], &[]);
    assert_eq!(code, 2);
    assert!(err.contains("--config:") && err.contains("is a directory; give the path of a TOML file"), "{err}");
}

#[test]
fn unknown_keys_and_bad_types_name_the_key() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = tmp.path().join("berth.toml");
    std::fs::write(&cfg, "[storage]\nroot_dir = \"/x\"\n").unwrap();
    let (code, err) = berth(&["config", "--config", cfg.to_str().unwrap()], &[]);
    assert_eq!(code, 2);
    assert!(err.contains("storage.root_dir") && err.contains("known keys here: kind, root"), "{err}");
    std::fs::write(&cfg, "[http]\nshutdown_grace_secs = \"soon\"\n").unwrap();
    let (code, err) = berth(&["config", "--config", cfg.to_str().unwrap()], &[]);
    assert_eq!(code, 2);
    assert!(err.contains("http.shutdown_grace_secs"), "{err}");
}

#[test]
fn valid_configuration_is_accepted() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = tmp.path().join("berth.toml");
    std::fs::write(&cfg, format!("data_dir = \"{}\"\n[http]\nlisten = \"127.0.0.1:0\"\n", tmp.path().display()))
        .unwrap();
    let (code, err) = berth(&["config", "--config", cfg.to_str().unwrap()], &[]);
    assert_eq!(code, 0, "{err}");
}

#[test]
fn healthcheck_reports_a_dead_registry() {
    let (code, err) = berth(&["healthcheck", "--url", "http://127.0.0.1:1", "--timeout-secs", "1"], &[]);
    assert_eq!(code, 1);
    assert!(err.contains("127.0.0.1:1"), "{err}");
}
