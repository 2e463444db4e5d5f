//! Docker registry token authentication, the way Harbor's token service does it, so that
//! docker, podman and skopeo log in unchanged and Harbor's tokens stay valid:
//! RS256 (Harbor's RSA keys) or ES256 (P-256 keys, what new installations generate) JWTs with
//! `iss = harbor-token-issuer`, a string `aud`, the distribution `access` claim, and a
//! libtrust key id (`kid`). Keys are PEM (PKCS#1, as Harbor writes `private_key.pem`,
//! PKCS#8 or SEC1), so an existing Harbor key can be reused.

mod jwt;
pub mod keyfile;
mod scope;

pub use jwt::{Claims, LEEWAY_SECS, TokenError, TokenIssuer, libtrust_kid};
pub use scope::{ResourceAccess, Scope, ScopeError};

/// Harbor's issuer name: tokens must carry it to be accepted by Harbor's registry and ours.
pub const ISSUER: &str = "harbor-token-issuer";
/// Harbor's service name, the `service` parameter and the token audience.
pub const SERVICE: &str = "harbor-registry";
