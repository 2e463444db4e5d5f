//! Real clients logging in through the token service: podman and skopeo as a project
//! member and as a robot account, and being refused where Harbor refuses them.

use std::path::Path;
use std::process::{Command, Output};

use serde_json::{Value, json};

use crate::support::*;

const PW: &str = "Passw0rd-e2e";

async fn api(s: &Server, method: reqwest::Method, path: &str, body: Value) -> (u16, Value, String) {
    let r = client()
        .request(method, s.url(path))
        .basic_auth("admin", Some(ADMIN_PASSWORD))
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let location = r.headers().get("location").map(|v| v.to_str().unwrap().to_string()).unwrap_or_default();
    let text = r.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null), location)
}

/// A client command whose state (config, auth files, storage) stays inside `dir`.
fn client_cmd(dir: &Path, program: &str) -> Command {
    let mut c = Command::new(program);
    for (k, sub) in
        [("HOME", "home"), ("XDG_RUNTIME_DIR", "run"), ("XDG_CONFIG_HOME", "config"), ("XDG_DATA_HOME", "data")]
    {
        let p = dir.join(sub);
        std::fs::create_dir_all(&p).unwrap();
        c.env(k, p);
    }
    c.env_remove("REGISTRY_AUTH_FILE");
    if program == "podman" {
        c.arg("--root")
            .arg(dir.join("storage"))
            .arg("--runroot")
            .arg(dir.join("runroot"))
            .arg("--tmpdir")
            .arg(dir.join("tmp"));
        c.args(["--storage-driver", "vfs", "--cgroup-manager", "cgroupfs", "--events-backend", "file"]);
    }
    c
}

fn ok(out: Output, what: &str) -> String {
    assert!(
        out.status.success(),
        "{what} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).to_string()
}

#[tokio::test]
async fn podman_and_skopeo_log_in_as_member_and_robot() {
    if !tool_available("skopeo") || !tool_available("podman") {
        return;
    }
    let s = Server::start_harbor();
    use reqwest::Method;
    // A private project with a developer, an outsider, and a robot that may pull and push.
    let (st, _, _) =
        api(&s, Method::POST, "/api/v2.0/projects", json!({"project_name": "team", "metadata": {"public": "false"}}))
            .await;
    assert_eq!(st, 201);
    for name in ["dev1", "outsider"] {
        let body = json!({"username": name, "email": format!("{name}@example.com"), "realname": name, "password": PW});
        let (st, _, _) = api(&s, Method::POST, "/api/v2.0/users", body).await;
        assert_eq!(st, 201);
    }
    let (st, _, _) = api(
        &s,
        Method::POST,
        "/api/v2.0/projects/team/members",
        json!({"role_id": 2, "member_user": {"username": "dev1"}}),
    )
    .await;
    assert_eq!(st, 201);
    let robot = json!({
        "name": "ci", "description": "ci", "level": "project", "duration": -1,
        "permissions": [{"kind": "project", "namespace": "team", "access": [
            {"resource": "repository", "action": "pull"}, {"resource": "repository", "action": "push"}]}],
    });
    let (st, robot, _) = api(&s, Method::POST, "/api/v2.0/robots", robot).await;
    assert_eq!(st, 201, "{robot}");
    let robot_name = robot["name"].as_str().unwrap().to_string();
    let robot_secret = robot["secret"].as_str().unwrap().to_string();
    assert_eq!(robot_name, "robot$team+ci");

    let tmp = tempfile::tempdir().unwrap();
    let layout = tmp.path().join("layout");
    write_tiny_layout(&layout, "v1");
    let src = format!("oci:{}:v1", layout.display());

    // The developer logs in with skopeo and pushes.
    let dev = tmp.path().join("dev");
    let auth = dev.join("auth.json");
    let auth = auth.to_str().unwrap();
    ok(
        client_cmd(&dev, "skopeo")
            .args(["login", "--tls-verify=false", "--authfile", auth, "-u", "dev1", "-p", PW, &s.addr])
            .output()
            .unwrap(),
        "skopeo login dev1",
    );
    ok(
        client_cmd(&dev, "skopeo")
            .args([
                "copy",
                "--dest-tls-verify=false",
                "--authfile",
                auth,
                &src,
                &format!("docker://{}/team/app:v1", s.addr),
            ])
            .output()
            .unwrap(),
        "skopeo push as dev1",
    );
    // podman logs in as the developer and pulls.
    ok(
        client_cmd(&dev, "podman")
            .args(["login", "--tls-verify=false", "--authfile", auth, "-u", "dev1", "-p", PW, &s.addr])
            .output()
            .unwrap(),
        "podman login",
    );
    ok(
        client_cmd(&dev, "podman")
            .args(["pull", "--tls-verify=false", "--authfile", auth, &format!("{}/team/app:v1", s.addr)])
            .output()
            .unwrap(),
        "podman pull as dev1",
    );

    // The robot logs in with podman, pulls, and pushes under another name.
    let bot = tmp.path().join("bot");
    let bot_auth = bot.join("auth.json");
    let bot_auth = bot_auth.to_str().unwrap();
    ok(
        client_cmd(&bot, "podman")
            .args([
                "login",
                "--tls-verify=false",
                "--authfile",
                bot_auth,
                "-u",
                &robot_name,
                "-p",
                &robot_secret,
                &s.addr,
            ])
            .output()
            .unwrap(),
        "podman login as robot",
    );
    ok(
        client_cmd(&bot, "podman")
            .args(["pull", "--tls-verify=false", "--authfile", bot_auth, &format!("{}/team/app:v1", s.addr)])
            .output()
            .unwrap(),
        "podman pull as robot",
    );
    ok(
        client_cmd(&bot, "skopeo")
            .args([
                "copy",
                "--dest-tls-verify=false",
                "--authfile",
                bot_auth,
                &src,
                &format!("docker://{}/team/from-robot:v1", s.addr),
            ])
            .output()
            .unwrap(),
        "skopeo push as robot",
    );
    let tags: Value = serde_json::from_str(
        &client()
            .get(s.url("/v2/team/from-robot/tags/list"))
            .basic_auth("admin", Some(ADMIN_PASSWORD))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
    )
    .unwrap();
    assert_eq!(tags["tags"], json!(["v1"]));

    // Refusals: anonymous and a non-member cannot read the private project; the robot
    // cannot push outside its project; a wrong secret cannot log in.
    let anon = tmp.path().join("anon");
    let out = client_cmd(&anon, "skopeo")
        .args(["inspect", "--tls-verify=false", "--no-creds", &format!("docker://{}/team/app:v1", s.addr)])
        .output()
        .unwrap();
    assert!(!out.status.success(), "anonymous read of a private project must fail");
    let outsider = tmp.path().join("outsider");
    let out = client_cmd(&outsider, "skopeo")
        .args([
            "inspect",
            "--tls-verify=false",
            "--creds",
            &format!("outsider:{PW}"),
            &format!("docker://{}/team/app:v1", s.addr),
        ])
        .output()
        .unwrap();
    assert!(!out.status.success(), "a non-member must not read a private project");
    let out = client_cmd(&bot, "skopeo")
        .args([
            "copy",
            "--dest-tls-verify=false",
            "--authfile",
            bot_auth,
            &src,
            &format!("docker://{}/library/robot-escape:v1", s.addr),
        ])
        .output()
        .unwrap();
    assert!(!out.status.success(), "a project robot must not push to another project");
    let out = client_cmd(&bot, "podman")
        .args([
            "login",
            "--tls-verify=false",
            "--authfile",
            bot_auth,
            "-u",
            &robot_name,
            "-p",
            "Wrong-secret-1",
            &s.addr,
        ])
        .output()
        .unwrap();
    assert!(!out.status.success(), "a wrong robot secret must not log in");
}
