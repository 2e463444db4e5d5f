//! The samples in deploy/ are checked by the tools that run them: haproxy and keepalived
//! parse their files, the keepalived check script tells a healthy instance from a dead
//! one, and the environment files name only settings Berth knows.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

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

/// Two "nodes" (network namespaces joined by a veth pair), each running a Berth and
/// keepalived with the shipped active-standby configuration and check script: the VIP
/// sits on the higher-priority node, moves when that node's Berth dies, and stays put
/// when it comes back (`nopreempt`).
#[test]
fn keepalived_moves_the_vip_when_the_instance_fails() {
    if unsafe { libc::geteuid() } != 0 || !tool_available("keepalived") || !tool_available("ip") {
        assert_ne!(std::env::var("CI").as_deref(), Ok("true"), "the VIP test needs root, ip and keepalived in CI");
        eprintln!("skipped: the VIP test needs root, ip and keepalived");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let nodes = Nodes::new();
    let vip = "10.77.0.100";
    let mut berths = Vec::new();
    let mut keepaliveds = Vec::new();
    for (i, ns) in nodes.names.iter().enumerate() {
        let n = i + 1;
        berths.push(berth_in(ns, &tmp.path().join(format!("data{n}"))));
        // Scripts run with keepalived's environment, not ours: a wrapper names the binary.
        let wrapper = tmp.path().join(format!("check{n}.sh"));
        std::fs::write(
            &wrapper,
            format!(
                "#!/bin/sh\nBERTH_BIN={} BERTH_CHECK_URL=http://127.0.0.1:8080 exec {}\n",
                env!("CARGO_BIN_EXE_berth"),
                deploy("keepalived/check_berth.sh").canonicalize().unwrap().display()
            ),
        )
        .unwrap();
        std::fs::set_permissions(&wrapper, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        let conf = std::fs::read_to_string(deploy("keepalived/keepalived-active-standby.conf"))
            .unwrap()
            .replace("/etc/keepalived/check_berth.sh", wrapper.to_str().unwrap())
            .replace("interface eth0", &format!("interface {}", nodes.links[i]))
            .replace("10.0.0.100/24", &format!("{vip}/24"))
            .replace(
                "priority 150            # 100 on the other node",
                if n == 1 { "priority 150" } else { "priority 100" },
            );
        let path = tmp.path().join(format!("keepalived{n}.conf"));
        std::fs::write(&path, conf).unwrap();
        let pid = |what: &str| tmp.path().join(format!("{what}{n}.pid")).display().to_string();
        keepaliveds.push(Killed(
            Command::new("ip")
                .args(["netns", "exec", ns, "keepalived", "-n", "-l", "-D", "-P", "-f"])
                .arg(&path)
                .args(["-p", &pid("keepalived"), "-r", &pid("vrrp")])
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .unwrap(),
        ));
    }
    let holds = |i: usize| {
        let out = Command::new("ip").args(["-n", &nodes.names[i], "addr", "show", &nodes.links[i]]).output().unwrap();
        String::from_utf8_lossy(&out.stdout).contains(vip)
    };
    let wait = |what: &str, limit: Duration, cond: &dyn Fn() -> bool| {
        let t0 = Instant::now();
        while !cond() {
            assert!(t0.elapsed() < limit, "{what} not within {limit:?}");
            std::thread::sleep(Duration::from_millis(50));
        }
        t0.elapsed()
    };
    wait("the VIP on node 1", Duration::from_secs(20), &|| holds(0) && !holds(1));

    // Node 1's Berth dies: its check fails twice, it gives the VIP up, node 2 takes it.
    berths[0].0.kill().unwrap();
    berths[0].0.wait().unwrap();
    let moved = wait("the VIP on node 2", Duration::from_secs(30), &|| holds(1) && !holds(0));

    // Node 1 recovers: the VIP stays where it is (no second interruption).
    berths[0] = berth_in(&nodes.names[0], &tmp.path().join("data1"));
    std::thread::sleep(Duration::from_secs(6));
    assert!(holds(1) && !holds(0), "nopreempt: the VIP does not move back");
    eprintln!(
        "keepalived: the VIP moved to the standby node {} ms after the active node's Berth died; it stayed there when Berth came back",
        moved.as_millis()
    );
    drop(keepaliveds);
}

/// Two network namespaces joined by a veth pair, removed on drop.
struct Nodes {
    names: [String; 2],
    links: [String; 2],
}

impl Nodes {
    fn new() -> Nodes {
        let tag = std::process::id() % 100_000;
        let names = [format!("berth{tag}a"), format!("berth{tag}b")];
        let links = [format!("bv{tag}a"), format!("bv{tag}b")];
        let ip = |args: &[&str]| {
            let out = Command::new("ip").args(args).output().unwrap();
            assert!(out.status.success(), "ip {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        };
        for n in &names {
            ip(&["netns", "add", n]);
        }
        let nodes = Nodes { names, links };
        let (n, l) = (&nodes.names, &nodes.links);
        ip(&["link", "add", &l[0], "type", "veth", "peer", "name", &l[1]]);
        for i in 0..2 {
            ip(&["link", "set", &l[i], "netns", &n[i]]);
            ip(&["-n", &n[i], "addr", "add", &format!("10.77.0.{}/24", i + 1), "dev", &l[i]]);
            ip(&["-n", &n[i], "link", "set", &l[i], "up"]);
            ip(&["-n", &n[i], "link", "set", "lo", "up"]);
        }
        nodes
    }
}

impl Drop for Nodes {
    fn drop(&mut self) {
        for n in &self.names {
            let _ = Command::new("ip").args(["netns", "del", n]).status();
        }
    }
}

/// A child process killed on drop.
struct Killed(std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A Berth on 127.0.0.1:8080 inside namespace `ns`, with its own SQLite data dir.
fn berth_in(ns: &str, data: &std::path::Path) -> Killed {
    use std::io::BufRead;
    let mut child = Command::new("ip")
        .args(["netns", "exec", ns, env!("CARGO_BIN_EXE_berth"), "serve", "--listen", "127.0.0.1:8080", "--data-dir"])
        .arg(data)
        .env("BERTH_AUTH_MODE", "open")
        .env("BERTH_AUTH_PRIVATE_KEY", concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/token_key.pem"))
        .env("BERTH_ADMIN_PASSWORD", ADMIN_PASSWORD)
        .env("BERTH_LOG_LEVEL", "error")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    assert!(line.starts_with("listening on"), "{line:?}");
    Killed(child)
}
