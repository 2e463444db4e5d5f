//! What the `/v2` Bearer path remembers between requests, so that a client reusing its
//! token does not pay a signature verification and a database lookup per request.
//!
//! - Verified tokens: a token's signature and claims cannot change, so a verified token is
//!   remembered until it expires. Only successes are remembered.
//! - Project creation times, by name: a token is refused if its project was (re)created
//!   after it was minted. This instance forgets a name the moment it creates or deletes
//!   that project; a change made through another instance is seen within
//!   [`PROJECT_TTL`], the bound on how long an old token keeps working elsewhere after its
//!   project was deleted or re-created.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use berth_token::Claims;

/// How long a project lookup is trusted (see the module documentation).
pub const PROJECT_TTL: Duration = Duration::from_secs(2);
/// Bounds on the entries kept; beyond them the oldest state is dropped wholesale, which
/// only costs lookups.
const MAX_TOKENS: usize = 1024;
const MAX_PROJECTS: usize = 4096;

/// A project's creation time (`None`: no such project) and when that was looked up.
type ProjectEntry = (Option<i64>, Instant);

#[derive(Default)]
pub struct AuthCaches {
    tokens: Mutex<HashMap<Box<str>, Arc<Claims>>>,
    projects: Mutex<HashMap<Box<str>, ProjectEntry>>,
}

impl AuthCaches {
    /// The claims of a token verified before, while it is still valid at `now`
    /// (`valid_until` gives the expiry, with the issuer's leeway).
    pub fn token(&self, token: &str, now: i64, valid_until: impl Fn(&Claims) -> i64) -> Option<Arc<Claims>> {
        let map = self.tokens.lock().unwrap_or_else(|e| e.into_inner());
        map.get(token).filter(|c| now <= valid_until(c)).cloned()
    }

    pub fn remember_token(&self, token: &str, claims: Arc<Claims>, now: i64, valid_until: impl Fn(&Claims) -> i64) {
        let mut map = self.tokens.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() >= MAX_TOKENS {
            map.retain(|_, c| now <= valid_until(c));
            if map.len() >= MAX_TOKENS {
                map.clear();
            }
        }
        map.insert(token.into(), claims);
    }

    /// The creation time of `project` (`Some(None)`: it does not exist) if looked up
    /// less than [`PROJECT_TTL`] ago.
    pub fn project(&self, project: &str) -> Option<Option<i64>> {
        let map = self.projects.lock().unwrap_or_else(|e| e.into_inner());
        map.get(project).filter(|(_, at)| at.elapsed() < PROJECT_TTL).map(|(t, _)| *t)
    }

    pub fn remember_project(&self, project: &str, creation_time: Option<i64>) {
        let mut map = self.projects.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() >= MAX_PROJECTS {
            map.retain(|_, (_, at)| at.elapsed() < PROJECT_TTL);
            if map.len() >= MAX_PROJECTS {
                map.clear();
            }
        }
        map.insert(project.into(), (creation_time, Instant::now()));
    }

    /// Called when this instance creates or deletes `project`.
    pub fn forget_project(&self, project: &str) {
        self.projects.lock().unwrap_or_else(|e| e.into_inner()).remove(project);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(exp: i64) -> Arc<Claims> {
        Arc::new(Claims {
            iss: String::new(),
            sub: "u".into(),
            aud: String::new(),
            exp,
            nbf: 0,
            iat: 0,
            jti: String::new(),
            access: Vec::new(),
        })
    }

    #[test]
    fn tokens_are_remembered_until_they_expire() {
        let c = AuthCaches::default();
        let until = |c: &Claims| c.exp + 60;
        assert!(c.token("t", 0, until).is_none());
        c.remember_token("t", claims(100), 0, until);
        assert_eq!(c.token("t", 160, until).unwrap().sub, "u");
        assert!(c.token("t", 161, until).is_none(), "expired");
        assert!(c.token("other", 0, until).is_none());
        // Full: expired entries go first, then everything.
        for i in 0..MAX_TOKENS + 10 {
            c.remember_token(&format!("t{i}"), claims(100), 0, until);
        }
        assert!(c.tokens.lock().unwrap().len() <= MAX_TOKENS);
    }

    #[test]
    fn projects_are_remembered_briefly_and_forgotten_on_change() {
        let c = AuthCaches::default();
        assert_eq!(c.project("p"), None);
        c.remember_project("p", Some(5));
        c.remember_project("gone", None);
        assert_eq!(c.project("p"), Some(Some(5)));
        assert_eq!(c.project("gone"), Some(None));
        c.forget_project("p");
        assert_eq!(c.project("p"), None);
        c.projects.lock().unwrap().insert("old".into(), (Some(1), Instant::now() - PROJECT_TTL));
        assert_eq!(c.project("old"), None, "past the bound");
    }
}
