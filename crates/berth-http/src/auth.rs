//! Registry authentication and authorization, the way Harbor does it, so that docker,
//! podman and skopeo log in unchanged. Every `/v2` request is mapped (by its parsed
//! route) to the access it needs and checked here before its handler runs:
//! - `Bearer` tokens from `/service/token` must grant that access in their `access` claim;
//! - `Basic` credentials (users, `robot$…`) are checked and decided by Harbor's RBAC;
//! - no credentials: anonymous, which may pull from public projects only.
//!
//! A refusal is a 401 with the challenge Harbor sends, so clients fetch the right token.

use std::sync::Arc;

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use base64::Engine as _;

use berth_core::RepoName;
use berth_core::access::{AccessControl, Principal, project_of};
use berth_core::authn::{Authenticator, AuthnError};
use berth_core::identity::rbac::{Action as RbacAction, Resource};
use berth_core::store::identity::IdentityStore;
use berth_token::{Claims, LEEWAY_SECS, SERVICE, TokenIssuer};

pub use crate::auth_cache::AuthCaches;

use crate::error::ApiError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Pull,
    Push,
    Delete,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Pull => "pull",
            Action::Push => "push",
            Action::Delete => "delete",
        }
    }
    fn rbac(self) -> RbacAction {
        match self {
            Action::Pull => RbacAction::Pull,
            Action::Push => RbacAction::Push,
            Action::Delete => RbacAction::Delete,
        }
    }
}

/// What one request needs: actions on a repository, or the registry catalog.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Access {
    /// `GET /v2/`: any authenticated principal.
    Base,
    Catalog,
    Repository {
        name: RepoName,
        actions: Vec<Action>,
    },
}

/// Who may use the registry API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Harbor's model: users, robots, projects, roles, tokens.
    Harbor,
    /// Anyone may push and pull (a single trusted machine, like Distribution's default).
    /// Only allowed on loopback addresses; the management API still needs a login.
    Open,
}

pub struct Auth {
    pub mode: Mode,
    pub authn: Authenticator,
    pub access: AccessControl,
    pub identity: Arc<dyn IdentityStore>,
    pub tokens: TokenIssuer,
    pub token_ttl_secs: i64,
    pub caches: AuthCaches,
}

/// Credentials a request carries.
pub enum Credentials {
    None,
    Basic(String, String),
    Bearer(String),
}

impl Credentials {
    pub fn from_headers(h: &HeaderMap) -> Result<Credentials, ApiError> {
        let Some(v) = h.get(header::AUTHORIZATION) else { return Ok(Credentials::None) };
        let bad = || ApiError::new(StatusCode::UNAUTHORIZED, "UNAUTHORIZED", "malformed Authorization header");
        let v = v.to_str().map_err(|_| bad())?;
        let (scheme, rest) = v.split_once(' ').ok_or_else(bad)?;
        if scheme.eq_ignore_ascii_case("basic") {
            let raw = base64::engine::general_purpose::STANDARD.decode(rest.trim()).map_err(|_| bad())?;
            let raw = String::from_utf8(raw).map_err(|_| bad())?;
            let (u, p) = raw.split_once(':').ok_or_else(bad)?;
            Ok(Credentials::Basic(u.to_string(), p.to_string()))
        } else if scheme.eq_ignore_ascii_case("bearer") {
            Ok(Credentials::Bearer(rest.trim().to_string()))
        } else {
            Err(bad())
        }
    }
}

pub(crate) fn unix_now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

impl Auth {
    /// The principal behind Basic credentials, or an error in the envelope.
    pub async fn login(&self, name: &str, password: &str) -> Result<Principal, ApiError> {
        self.authn.login(name, password).await.map_err(|e| match e {
            AuthnError::Invalid => ApiError::new(StatusCode::UNAUTHORIZED, "UNAUTHORIZED", e.to_string()),
            AuthnError::Throttled(d) => ApiError::new(StatusCode::TOO_MANY_REQUESTS, "TOOMANYREQUESTS", e.to_string())
                .header(header::RETRY_AFTER, HeaderValue::from(d.as_secs().max(1))),
            AuthnError::Store(s) => ApiError::from(berth_core::CoreError::Store(s)),
        })
    }

    /// The repository actions `principal` may perform on `repo` (for tokens and Basic auth).
    pub async fn repository_actions(&self, principal: &Principal, repo: &str) -> Result<Vec<Action>, ApiError> {
        let Some(project) = project_of(repo) else { return Ok(Vec::new()) };
        let Some(project) = self.identity.project_by_name(project).await.map_err(store_err)? else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        for a in [Action::Pull, Action::Push, Action::Delete] {
            if self.access.allowed(principal, &project, Resource::Repository, a.rbac()).await.map_err(store_err)? {
                out.push(a);
            }
        }
        Ok(out)
    }

    /// Whether `principal` holds repository `scanner-pull` on `repo`'s project (robots
    /// made for scanners; system administrators, whom Harbor allows everything).
    pub async fn may_scanner_pull(&self, principal: &Principal, repo: &str) -> bool {
        let Some(project) = project_of(repo) else { return false };
        let Ok(Some(project)) = self.identity.project_by_name(project).await else { return false };
        self.access.allowed(principal, &project, Resource::Repository, RbacAction::ScannerPull).await.unwrap_or(false)
    }

    /// Harbor's exemption from pull policies (`SkipPolicyChecking`): the caller holds
    /// `scanner-pull` on the repository — a Bearer token granting it (what the token
    /// service gives scanners' robots), or a robot with that permission using Basic
    /// credentials. Nothing else exempts: Harbor's old `User-Agent: cosign` bypass is a
    /// client-chosen header, so Berth does not honour it.
    pub async fn holds_scanner_pull(&self, h: &HeaderMap, repo: &RepoName) -> bool {
        if self.mode == Mode::Open {
            return false;
        }
        match Credentials::from_headers(h) {
            Ok(Credentials::Bearer(token)) => self.verify_token(&token).is_ok_and(|c| {
                c.access.iter().any(|a| {
                    a.kind == "repository" && a.name == repo.as_str() && a.actions.iter().any(|x| x == "scanner-pull")
                })
            }),
            Ok(Credentials::Basic(u, p)) => match self.login(&u, &p).await {
                Ok(principal @ Principal::Robot { .. }) => self.may_scanner_pull(&principal, repo.as_str()).await,
                _ => false,
            },
            _ => false,
        }
    }

    /// Decides a `/v2` request. `realm_base` is the external URL (or the request's own
    /// scheme and host) used in the challenge.
    pub async fn authorize_v2(&self, h: &HeaderMap, access: &Access, realm_base: &str) -> Result<Principal, ApiError> {
        if self.mode == Mode::Open {
            return Ok(Principal::Anonymous);
        }
        let creds = Credentials::from_headers(h)?;
        let has_auth = !matches!(creds, Credentials::None);
        let deny = |msg: &str| challenge(access, realm_base, has_auth, msg);
        match creds {
            Credentials::Bearer(token) => {
                let claims = self.verify_token(&token).map_err(|e| deny(&e.to_string()))?;
                let ok = match access {
                    Access::Base => true,
                    Access::Catalog => claims
                        .access
                        .iter()
                        .any(|a| a.kind == "registry" && a.name == "catalog" && a.actions.iter().any(|x| x == "*")),
                    Access::Repository { name, actions } => {
                        let granted = claims.access.iter().find(|a| a.kind == "repository" && a.name == name.as_str());
                        let all = granted.is_some_and(|g| {
                            actions.iter().all(|a| g.actions.iter().any(|x| x == a.as_str() || x == "*"))
                        });
                        // A token minted before the project was (re)created is for another project.
                        all && match project_of(name.as_str()) {
                            Some(p) => self.project_created(p).await?.is_some_and(|created| claims.iat >= created),
                            None => false,
                        }
                    }
                };
                if ok {
                    Ok(Principal::User { id: 0, name: claims.sub.clone(), sysadmin: false })
                } else {
                    Err(deny("the token does not grant this access"))
                }
            }
            Credentials::Basic(u, p) => {
                let principal = match self.login(&u, &p).await {
                    Ok(p) => p,
                    Err(e) if e.status == StatusCode::UNAUTHORIZED => {
                        return Err(deny("invalid user name or password"));
                    }
                    Err(e) => return Err(e),
                };
                self.decide(&principal, access).await?.then_some(principal).ok_or_else(|| deny("access denied"))
            }
            Credentials::None => {
                let principal = Principal::Anonymous;
                self.decide(&principal, access)
                    .await?
                    .then_some(principal)
                    .ok_or_else(|| deny("authentication required"))
            }
        }
    }

    /// A token's claims, verified once and then remembered until it expires.
    fn verify_token(&self, token: &str) -> Result<Arc<Claims>, berth_token::TokenError> {
        let now = unix_now();
        let valid_until = |c: &Claims| c.exp + LEEWAY_SECS;
        if let Some(c) = self.caches.token(token, now, valid_until) {
            return Ok(c);
        }
        let claims = Arc::new(self.tokens.verify(token, now)?);
        self.caches.remember_token(token, claims.clone(), now, valid_until);
        Ok(claims)
    }

    /// When `project` was created, `None` if it does not exist; see [`AuthCaches`] for how
    /// fresh the answer is.
    async fn project_created(&self, project: &str) -> Result<Option<i64>, ApiError> {
        if let Some(known) = self.caches.project(project) {
            return Ok(known);
        }
        let created = self.identity.project_by_name(project).await.map_err(store_err)?.map(|p| p.creation_time);
        self.caches.remember_project(project, created);
        Ok(created)
    }

    async fn decide(&self, principal: &Principal, access: &Access) -> Result<bool, ApiError> {
        Ok(match access {
            Access::Base => principal.is_authenticated(),
            Access::Catalog => principal.is_sysadmin(),
            Access::Repository { name, actions } => {
                let granted = self.repository_actions(principal, name.as_str()).await?;
                actions.iter().all(|a| granted.contains(a))
            }
        })
    }
}

fn store_err(e: berth_core::store::StoreError) -> ApiError {
    ApiError::from(berth_core::CoreError::Store(e))
}

/// Harbor's 401: a Bearer challenge naming the token service and the scope needed, or a
/// Basic challenge when the client already sent credentials.
fn challenge(access: &Access, realm_base: &str, has_auth: bool, msg: &str) -> ApiError {
    let value = if has_auth || matches!(access, Access::Catalog) {
        "Basic realm=\"harbor\"".to_string()
    } else {
        let mut v = format!("Bearer realm=\"{realm_base}/service/token\",service=\"{SERVICE}\"");
        if let Access::Repository { name, actions } = access {
            let acts: Vec<&str> = actions.iter().map(|a| a.as_str()).collect();
            v.push_str(&format!(",scope=\"repository:{name}:{}\"", acts.join(",")));
        }
        v
    };
    ApiError::new(StatusCode::UNAUTHORIZED, "UNAUTHORIZED", msg).header(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_str(&value).unwrap_or(HeaderValue::from_static("Basic realm=\"harbor\"")),
    )
}
