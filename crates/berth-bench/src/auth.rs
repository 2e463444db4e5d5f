//! Harbor-mode clients the way docker, podman and skopeo behave: Basic credentials go only
//! to the token service, which answers a Bearer token for the repository scopes asked;
//! registry requests carry that token. A client keeps a token for as long as it works on
//! the same repositories, and asks for a new one when it moves on to another repository
//! (a push that mounts asks for the source repository as well).

use anyhow::{Context as _, Result, anyhow};
use base64::Engine as _;
use hyper::{Method, StatusCode};

use crate::http::{Conn, ReqBody};

/// The administrator's credentials on a Harbor-mode server.
#[derive(Clone, Debug)]
pub struct Creds {
    pub user: String,
    pub password: String,
}

impl Creds {
    fn basic(&self) -> String {
        let raw = format!("{}:{}", self.user, self.password);
        format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(raw))
    }

    /// `GET /service/token` for `scopes` (none: `docker login`).
    pub async fn token(&self, conn: &mut Conn, scopes: &[String]) -> Result<String> {
        let mut path = "/service/token?service=harbor-registry".to_string();
        for s in scopes {
            path.push_str("&scope=");
            path.extend(s.bytes().map(|b| match b {
                b':' => "%3A".to_string(),
                b'/' => "%2F".to_string(),
                b',' => "%2C".to_string(),
                _ => (b as char).to_string(),
            }));
        }
        let basic = self.basic();
        let r = conn.call(Method::GET, &path, &[("authorization", &basic)], ReqBody::empty()).await?;
        let r = r.expect(StatusCode::OK, "GET /service/token")?;
        let v: serde_json::Value = serde_json::from_slice(&r.body).context("token answer")?;
        v["token"].as_str().map(str::to_string).ok_or_else(|| anyhow!("token answer without a token"))
    }

    /// Creates a project (untimed set-up; Harbor needs one before anything is pushed).
    pub async fn create_project(&self, conn: &mut Conn, name: &str) -> Result<()> {
        let basic = self.basic();
        let body = format!(r#"{{"project_name":"{name}","metadata":{{"public":"false"}}}}"#);
        let r = conn
            .call(
                Method::POST,
                "/api/v2.0/projects",
                &[("authorization", &basic), ("content-type", "application/json")],
                ReqBody::from_bytes(body),
            )
            .await?;
        r.expect(StatusCode::CREATED, "POST /api/v2.0/projects").map(|_| ())
    }
}

/// `repository:NAME:ACTIONS`.
pub fn repo_scope(repo: &str, actions: &str) -> String {
    format!("repository:{repo}:{actions}")
}

/// Gives `conn` a token for `scopes` when the server wants tokens; nothing otherwise.
pub async fn authorize(creds: Option<&Creds>, conn: &mut Conn, scopes: &[String]) -> Result<()> {
    if let Some(c) = creds {
        conn.bearer = None;
        let token = c.token(conn, scopes).await?;
        conn.bearer = Some(token);
    }
    Ok(())
}
