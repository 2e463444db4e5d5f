//! The samples in deploy/ are checked by the tools that run them: haproxy and keepalived
//! parse their files, the keepalived check script tells a healthy instance from a dead
//! one, and the environment files name only settings Berth knows.

use std::path::PathBuf;
use std::process::Command;

use crate::support::*;

fn deploy(path: &str) -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../deploy")).join(path)
}

#[test]
fn haproxy_sample_is_valid() {
    if !tool_available("haproxy") {
        return;
    }
    let out = Command::new("haproxy")
        .args(["-c", "-f"])
        .arg(deploy("haproxy/haproxy.cfg"))
        .env("REGISTRY_BIND", "127.0.0.1:5000")
        .env("REGISTRY_NODE1", "127.0.0.1:8081")
        .env("REGISTRY_NODE2", "127.0.0.1:8082")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
}

#[test]
fn keepalived_samples_are_valid() {
    if !tool_available("keepalived") {
        return;
    }
    // keepalived checks that the script exists and is safe to run (root-owned, not
    // writable by others): point the sample at the repository's copy instead of
    // /etc/keepalived, leaving everything else as shipped.
    let script = deploy("keepalived/check_berth.sh").canonicalize().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    for file in ["keepalived/keepalived-active-standby.conf", "keepalived/keepalived-active-active.conf"] {
        let conf = std::fs::read_to_string(deploy(file)).unwrap();
        assert!(conf.contains("\"/etc/keepalived/check_berth.sh\""), "{file} runs the shipped script");
        let conf = conf.replace("/etc/keepalived/check_berth.sh", script.to_str().unwrap());
        let path = tmp.path().join("keepalived.conf");
        std::fs::write(&path, conf).unwrap();
        let out = Command::new("keepalived").arg("-t").arg("-f").arg(&path).output().unwrap();
        let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert!(out.status.success(), "{file}: {text}");
    }
}

#[tokio::test]
async fn keepalived_check_script_follows_instance_health() {
    let s = Server::start();
    let run = |url: &str| {
        Command::new("sh")
            .arg(deploy("keepalived/check_berth.sh"))
            .env("BERTH_BIN", env!("CARGO_BIN_EXE_berth"))
            .env("BERTH_CHECK_URL", url)
            .output()
            .unwrap()
    };
    let url = format!("http://{}", s.addr);
    let healthy = tokio::task::spawn_blocking(move || run(&url)).await.unwrap();
    assert!(healthy.status.success(), "{}", String::from_utf8_lossy(&healthy.stderr));
    let storage = s.data_dir.join("storage");
    std::fs::rename(&storage, s.data_dir.join("away")).unwrap();
    let url = format!("http://{}", s.addr);
    let sick = tokio::task::spawn_blocking(move || run(&url)).await.unwrap();
    assert_eq!(sick.status.code(), Some(1), "unhealthy storage fails the check");
    std::fs::rename(s.data_dir.join("away"), &storage).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let dead = tokio::task::spawn_blocking(move || run(&format!("http://127.0.0.1:{port}"))).await.unwrap();
    assert_eq!(dead.status.code(), Some(1), "nothing listening fails the check");
}

/// `KEY=value` lines of an environment file, comments skipped.
fn env_file(path: &str) -> Vec<(String, String)> {
    std::fs::read_to_string(deploy(path))
        .unwrap()
        .lines()
        .filter(|l| !l.trim_start().starts_with('#') && l.contains('='))
        .map(|l| {
            let (k, v) = l.split_once('=').unwrap();
            (k.trim().to_string(), v.trim().to_string())
        })
        .collect()
}

/// Runs `berth config` with the sample's settings. Files and mounts of the target machine
/// do not exist here, so only those complaints are tolerated: no unknown keys, no bad values.
fn check_settings(name: &str, vars: &[(String, String)]) {
    assert!(vars.iter().any(|(k, _)| k == "BERTH_DATABASE_URL"), "{name} sets the database");
    let tmp = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_berth"));
    cmd.arg("config").current_dir(tmp.path());
    for (k, v) in vars {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    for line in err.lines().filter(|l| l.trim_start().starts_with("- ")) {
        assert!(line.contains("does not exist"), "{name}: {line}");
    }
}

#[test]
fn sample_environments_name_only_known_settings() {
    check_settings("deploy/systemd/berth.env", &env_file("systemd/berth.env"));
    // The compose file's environment block for the instances.
    let compose = std::fs::read_to_string(deploy("compose/docker-compose.yml")).unwrap();
    let vars: Vec<(String, String)> = compose
        .lines()
        .filter_map(|l| l.trim().strip_prefix("BERTH_").map(|rest| rest.split_once(": ").unwrap()))
        .map(|(k, v)| (format!("BERTH_{k}"), v.to_string()))
        .collect();
    check_settings("deploy/compose/docker-compose.yml", &vars);
    // Every BERTH_ variable the Helm chart sets.
    let deployment = std::fs::read_to_string(deploy("helm/berth/templates/deployment.yaml")).unwrap();
    let names: Vec<String> = deployment
        .split("name: ")
        .skip(1)
        .filter_map(|s| s.split([',', ' ', '\n']).next())
        .filter(|n| n.starts_with("BERTH_"))
        .map(str::to_string)
        .collect();
    assert!(names.len() >= 8, "{names:?}");
    let vars: Vec<(String, String)> = names
        .iter()
        .map(|n| {
            let v = match n.as_str() {
                "BERTH_DATABASE_URL" => "postgres://berth@db/berth",
                "BERTH_HTTP_LISTEN" => "0.0.0.0:8080",
                "BERTH_HTTP_EXTERNAL_URL" => "https://registry.example.com",
                "BERTH_REDIS_URL" => "redis://redis:6379",
                "BERTH_ADMIN_PASSWORD" => "Harbor12345",
                n if n.ends_with("_SECS") || n.ends_with("CONNECTIONS") => "10",
                _ => "/nonexistent/berth",
            };
            (n.clone(), v.to_string())
        })
        .collect();
    check_settings("deploy/helm/berth", &vars);
}
