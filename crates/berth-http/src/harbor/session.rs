//! Portal-style logins without shared memory: `POST /c/login` sets a `sid` cookie that is a
//! signed value (user id, issue and expiry times, a fingerprint of the password hash, and an
//! HMAC-SHA256 over them), so any Berth instance holding the same token signing key accepts
//! it, with or without Redis. Sessions last 60 minutes and are renewed while used, unless
//! the client sends `X-Harbor-No-Session-Renewal`, but never beyond 12 hours after the
//! login; changing the password ends every session of the user, and `GET /c/log_out`
//! records the session as revoked in the shared database, which every instance checks.
//!
//! CSRF as Harbor does it: every response carries `X-Harbor-CSRF-Token` (an HMAC of the
//! session), and an unsafe request that carries a `sid` cookie must echo it. Requests
//! without the cookie (Basic auth, anonymous) need no token.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};

use berth_core::access::Principal;
use berth_core::identity::password::constant_time_eq;
use berth_core::settings::SettingsCache;
use berth_core::store::cluster::ClusterStore;
use berth_core::store::identity::User;

use super::errors::{bad_request, forbidden, store, store as store_err, unauthorized};
use crate::auth::{Auth, unix_now};
use crate::error::ApiError;
use crate::{AppState, body};

pub const COOKIE: &str = "sid";
pub const TTL_SECS: i64 = 60 * 60;
/// No renewal past this long after the login: it bounds how long a copied cookie can be
/// kept alive, and how long a revocation must be remembered.
pub const MAX_LIFETIME_SECS: i64 = 12 * 60 * 60;
pub static CSRF_HEADER: HeaderName = HeaderName::from_static("x-harbor-csrf-token");
static NO_RENEWAL: HeaderName = HeaderName::from_static("x-harbor-no-session-renewal");

/// The session signing key: derived from the token signing key, so every instance that
/// shares `private_key.pem` shares sessions, and domain-separated from its other uses.
pub trait SessionKey {
    fn session_key(&self) -> [u8; 32];
}

impl SessionKey for Auth {
    fn session_key(&self) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(b"berth harbor-api session key v1\0");
        match self.tokens.to_pem() {
            Ok(pem) => h.update(pem.as_bytes()),
            Err(e) => {
                // Not expected for a key that was loaded from PEM; sessions then only work
                // on this instance.
                tracing::warn!(error = %e, "cannot encode the token key; sessions will not be shared");
                let mut random = [0u8; 32];
                berth_core::identity::password::fill_random(&mut random);
                h.update(random);
            }
        }
        h.finalize().into()
    }
}

/// What the session layer needs, computed once when the router is built.
pub struct Keys {
    key: [u8; 32],
    /// Whether cookies get `Secure` (served over TLS, or the external URL is https).
    secure: bool,
    /// Where logged-out sessions are recorded (the shared database).
    revocations: Option<Arc<dyn ClusterStore>>,
    /// Where the current `session_timeout` comes from (else [`TTL_SECS`]).
    settings: Option<Arc<SettingsCache>>,
}

impl Keys {
    pub fn new(state: &AppState) -> Self {
        Keys {
            key: state.auth.session_key(),
            secure: state.https || state.external_url.starts_with("https://"),
            revocations: Some(state.cluster.clone()),
            settings: Some(state.settings.clone()),
        }
    }

    /// How long a session lasts without a request: `session_timeout`, read per request so
    /// a change applies to every login and renewal from then on.
    fn ttl(&self) -> i64 {
        self.settings.as_ref().map_or(TTL_SECS, |s| s.get().session_timeout.saturating_mul(60))
    }

    /// Names a session in the revocation list: stable across renewals, and meaningless
    /// to anyone without the key.
    fn revocation_key(&self, s: &Session) -> String {
        hex(&self.mac(&[
            b"revoked",
            s.user_id.to_string().as_bytes(),
            s.issued_at.to_string().as_bytes(),
            s.fingerprint.as_bytes(),
            s.nonce.as_bytes(),
        ]))
    }

    /// A verified session that was not logged out. A failed lookup counts as revoked:
    /// the caller is then simply not logged in.
    async fn still_valid(&self, s: Session, now: i64) -> Option<Session> {
        let Some(store) = &self.revocations else { return Some(s) };
        match store.session_revoked(&self.revocation_key(&s), now).await {
            Ok(false) => Some(s),
            Ok(true) => None,
            Err(e) => {
                tracing::warn!(error = %e, "cannot check session revocations; treating the session as ended");
                None
            }
        }
    }

    fn mac(&self, parts: &[&[u8]]) -> [u8; 32] {
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&self.key).expect("HMAC takes any key length");
        for p in parts {
            mac.update(&(p.len() as u64).to_le_bytes());
            mac.update(p);
        }
        mac.finalize().into_bytes().into()
    }

    /// The cookie value of a session.
    pub fn sign(&self, s: &Session) -> String {
        let body = format!("{}.{}.{}.{}.{}", s.user_id, s.issued_at, s.expires_at, s.fingerprint, s.nonce);
        let mac = self.mac(&[b"sid", body.as_bytes()]);
        format!("{body}.{}", hex(&mac))
    }

    /// The session behind a cookie value, if it is authentic and unexpired.
    pub fn verify(&self, value: &str, now: i64) -> Option<Session> {
        let (body, mac) = value.rsplit_once('.')?;
        let expected = hex(&self.mac(&[b"sid", body.as_bytes()]));
        if !constant_time_eq(expected.as_bytes(), mac.as_bytes()) {
            return None;
        }
        let mut parts = body.split('.');
        let s = Session {
            user_id: parts.next()?.parse().ok()?,
            issued_at: parts.next()?.parse().ok()?,
            expires_at: parts.next()?.parse().ok()?,
            fingerprint: parts.next()?.to_string(),
            nonce: parts.next()?.to_string(),
        };
        (parts.next().is_none() && now < s.expires_at && now < s.issued_at + MAX_LIFETIME_SECS).then_some(s)
    }

    /// The CSRF token of a session (stable across renewals), or of anonymous callers.
    pub fn csrf(&self, s: Option<&Session>) -> String {
        match s {
            Some(s) => hex(&self.mac(&[
                b"csrf",
                s.user_id.to_string().as_bytes(),
                s.issued_at.to_string().as_bytes(),
                s.fingerprint.as_bytes(),
                s.nonce.as_bytes(),
            ])),
            None => hex(&self.mac(&[b"csrf", b"anonymous"])),
        }
    }

    fn cookie(&self, value: &str, max_age: i64) -> HeaderValue {
        let secure = if self.secure { "; Secure" } else { "" };
        HeaderValue::from_str(&format!("{COOKIE}={value}; Path=/; Max-Age={max_age}; HttpOnly; SameSite=Lax{secure}"))
            .expect("cookie is a valid header value")
    }
}

/// A verified session, as carried in the `sid` cookie.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub user_id: i64,
    pub issued_at: i64,
    pub expires_at: i64,
    /// Binds the session to the user's current password hash.
    pub fingerprint: String,
    /// Random per login: two logins in the same second are still two sessions (their
    /// CSRF tokens and revocations differ).
    pub nonce: String,
}

/// A short fingerprint of a user's stored password: a new password ends old sessions.
pub fn fingerprint(user: &User) -> String {
    let mut h = Sha256::new();
    for f in [user.salt.as_bytes(), user.password.as_bytes(), user.password_version.as_bytes()] {
        h.update((f.len() as u64).to_le_bytes());
        h.update(f);
    }
    hex(&h.finalize()[..8])
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn sid_cookie(h: &HeaderMap) -> Option<String> {
    h.get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == COOKIE)
        .map(|(_, v)| v.to_string())
}

/// Set by the login handler so the layer sends the new session's CSRF token.
#[derive(Clone)]
struct NewSession(Session);

/// The session layer: checks CSRF, hands a verified session to the handlers (as a request
/// extension), and stamps the CSRF token and a renewed cookie on the response.
pub async fn layer(State(keys): State<Arc<Keys>>, mut req: Request, next: Next) -> Response {
    let now = unix_now();
    let cookie = sid_cookie(req.headers());
    let session = match cookie.as_deref().and_then(|c| keys.verify(c, now)) {
        Some(s) => keys.still_valid(s, now).await,
        None => None,
    };
    let safe = matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE);
    if !safe && cookie.is_some() && req.uri().path() != "/c/login" {
        let sent = req.headers().get(&CSRF_HEADER).map(|v| v.as_bytes()).unwrap_or_default();
        let ok = session.as_ref().is_some_and(|s| constant_time_eq(keys.csrf(Some(s)).as_bytes(), sent));
        if !ok {
            let mut res = forbidden("CSRF token invalid").into_response();
            if let Ok(v) = HeaderValue::from_str(&keys.csrf(session.as_ref())) {
                res.headers_mut().insert(CSRF_HEADER.clone(), v);
            }
            return res;
        }
    }
    let renew = !req.headers().contains_key(&NO_RENEWAL);
    if let Some(s) = &session {
        req.extensions_mut().insert(s.clone());
    }
    let mut res = next.run(req).await;
    let fresh = res.extensions().get::<NewSession>().map(|n| n.0.clone());
    let token = keys.csrf(fresh.as_ref().or(session.as_ref()));
    if let Ok(v) = HeaderValue::from_str(&token) {
        res.headers_mut().insert(CSRF_HEADER.clone(), v);
    }
    // Sliding expiry, at most once a minute (or a 60th of a shorter lifetime); never over
    // a cookie the handler set.
    let ttl = keys.ttl();
    if let Some(mut s) = session
        && renew
        && !res.headers().contains_key(header::SET_COOKIE)
        && s.expires_at - now < ttl - (ttl / 60).clamp(1, 60)
    {
        s.expires_at = (now + ttl).min(s.issued_at + MAX_LIFETIME_SECS);
        res.headers_mut().append(header::SET_COOKIE, keys.cookie(&keys.sign(&s), s.expires_at - now));
    }
    res
}

/// The user behind a verified session, if the session still stands (user exists, same
/// password).
pub async fn principal(state: &AppState, s: &Session) -> Result<Option<Principal>, ApiError> {
    let Some(user) = state.auth.identity.user(s.user_id).await.map_err(store)? else {
        return Ok(None);
    };
    if fingerprint(&user) != s.fingerprint {
        return Ok(None);
    }
    Ok(Some(Principal::User { id: user.id, name: user.username, sysadmin: user.sysadmin }))
}

/// `POST /c/login` with form fields `principal` and `password`.
pub async fn login(
    State(state): State<AppState>,
    axum::Extension(keys): axum::Extension<Arc<Keys>>,
    req: Request,
) -> Result<Response, ApiError> {
    let raw = body::collect_limited(req.into_body(), 64 * 1024)
        .await
        .map_err(|e| bad_request(format!("cannot read the login form: {e}")))?
        .unwrap_or_default();
    let form: Vec<(String, String)> = form_urlencoded::parse(&raw).into_owned().collect();
    let field = |k: &str| form.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    let name = field("principal").ok_or_else(|| bad_request("the login form needs the field principal"))?;
    let password = field("password").ok_or_else(|| bad_request("the login form needs the field password"))?;
    let Principal::User { id, .. } = state.auth.login(&name, &password).await? else {
        // Robots use Basic auth; they have no portal sessions.
        return Err(unauthorized("invalid user name or password"));
    };
    let user = state.auth.identity.user(id).await.map_err(store)?.ok_or_else(|| unauthorized("user vanished"))?;
    let now = unix_now();
    let mut nonce = [0u8; 8];
    berth_core::identity::password::fill_random(&mut nonce);
    let session = Session {
        user_id: id,
        issued_at: now,
        expires_at: now + keys.ttl().min(MAX_LIFETIME_SECS),
        fingerprint: fingerprint(&user),
        nonce: hex(&nonce),
    };
    let mut res = StatusCode::OK.into_response();
    res.headers_mut().insert(header::SET_COOKIE, keys.cookie(&keys.sign(&session), session.expires_at - now));
    res.extensions_mut().insert(NewSession(session));
    Ok(res)
}

/// `GET /c/log_out`: clears the cookie and revokes the session on every instance, so a
/// copy of the cookie is refused too.
pub async fn logout(
    axum::Extension(keys): axum::Extension<Arc<Keys>>,
    session: Option<axum::Extension<Session>>,
) -> Result<Response, ApiError> {
    if let (Some(axum::Extension(s)), Some(store)) = (session, &keys.revocations) {
        store.revoke_session(&keys.revocation_key(&s), s.issued_at + MAX_LIFETIME_SECS).await.map_err(store_err)?;
    }
    let mut res = StatusCode::OK.into_response();
    res.headers_mut().insert(header::SET_COOKIE, keys.cookie("", 0));
    Ok(res)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(k: u8) -> Keys {
        Keys { key: [k; 32], secure: false, revocations: None, settings: None }
    }

    fn session() -> Session {
        Session {
            user_id: 7,
            issued_at: 100,
            expires_at: 100 + TTL_SECS,
            fingerprint: "00112233aabbccdd".into(),
            nonce: "0123456789abcdef".into(),
        }
    }

    #[test]
    fn signed_sessions() {
        let k = keys(1);
        let s = session();
        let v = k.sign(&s);
        assert_eq!(k.verify(&v, 101), Some(s.clone()));
        // Another instance with the same key accepts it; another key does not.
        assert_eq!(keys(1).verify(&v, 101), Some(s.clone()));
        assert_eq!(keys(2).verify(&v, 101), None);
        // Expired.
        assert_eq!(k.verify(&v, 100 + TTL_SECS), None);
        // Renewed up to, but never past, the maximum lifetime.
        let long = Session { expires_at: 100 + MAX_LIFETIME_SECS + 10, ..s.clone() };
        assert!(k.verify(&k.sign(&long), 100 + MAX_LIFETIME_SECS - 1).is_some());
        assert_eq!(k.verify(&k.sign(&long), 100 + MAX_LIFETIME_SECS), None);
        // Tampered: another user id with the old MAC.
        let forged = v.replacen("7.", "1.", 1);
        assert_eq!(k.verify(&forged, 101), None);
        for junk in ["", ".", "a.b.c.d.e", "7.100.99999999999.fp", "7.100.99999999999.fp.n.extra", "x.y"] {
            assert_eq!(k.verify(junk, 101), None, "{junk}");
        }
    }

    #[test]
    fn csrf_tokens() {
        let k = keys(1);
        let s = session();
        let mut renewed = s.clone();
        renewed.expires_at += 500;
        assert_eq!(k.csrf(Some(&s)), k.csrf(Some(&renewed)), "stable across renewals");
        let mut other = s.clone();
        other.issued_at += 1;
        assert_ne!(k.csrf(Some(&s)), k.csrf(Some(&other)));
        let same_second = Session { nonce: "fedcba9876543210".into(), ..s.clone() };
        assert_ne!(k.csrf(Some(&s)), k.csrf(Some(&same_second)), "two logins in one second differ");
        assert_ne!(k.revocation_key(&s), k.revocation_key(&same_second));
        assert_ne!(k.csrf(Some(&s)), k.csrf(None));
        assert_ne!(k.csrf(Some(&s)), keys(2).csrf(Some(&s)));
        assert_eq!(k.csrf(None).len(), 64);
    }

    #[test]
    fn cookies_are_parsed() {
        let mut h = HeaderMap::new();
        h.append(header::COOKIE, HeaderValue::from_static("a=1; sid=abc.def"));
        assert_eq!(sid_cookie(&h).as_deref(), Some("abc.def"));
        h.clear();
        h.append(header::COOKIE, HeaderValue::from_static("xsid=1"));
        assert_eq!(sid_cookie(&h), None);
        let c = Keys { key: [0; 32], secure: true, revocations: None, settings: None }.cookie("v", 10);
        assert_eq!(c.to_str().unwrap(), "sid=v; Path=/; Max-Age=10; HttpOnly; SameSite=Lax; Secure");
    }
}
