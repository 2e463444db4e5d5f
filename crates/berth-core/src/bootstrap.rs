//! First-start state every Harbor user expects: the `admin` system administrator and the
//! public `library` project. Idempotent: later starts change nothing.

use std::collections::BTreeMap;

use crate::identity::password;
use crate::store::identity::{IdentityError, IdentityStore, NewProject, NewUser};

#[derive(Debug, thiserror::Error)]
pub enum BootstrapError {
    #[error("admin.password (BERTH_ADMIN_PASSWORD) does not meet the password policy: {0}")]
    WeakAdminPassword(String),
    #[error(transparent)]
    Identity(#[from] IdentityError),
}

/// What the first start did.
#[derive(Debug, Default)]
pub struct Bootstrapped {
    /// Set when the admin was created with a generated password, to be shown once.
    pub generated_admin_password: Option<String>,
    pub created_admin: bool,
}

/// The configured admin password must pass Harbor's policy; checked before anything
/// starts, since the admin is created only after the listener is up.
pub fn check_admin_password(password: &str) -> Result<(), BootstrapError> {
    password::check_policy(password).map_err(|e| BootstrapError::WeakAdminPassword(e.to_string()))
}

pub async fn ensure_initial_state(
    identity: &dyn IdentityStore,
    admin_password: Option<&str>,
) -> Result<Bootstrapped, BootstrapError> {
    let mut out = Bootstrapped::default();
    let admin = match identity.user_by_login("admin").await.map_err(IdentityError::from)? {
        Some(u) => u,
        None if identity.user_count().await.map_err(IdentityError::from)? == 0 => {
            let pw = match admin_password {
                Some(p) => {
                    check_admin_password(p)?;
                    p.to_string()
                }
                None => {
                    let p = password::new_robot_secret();
                    out.generated_admin_password = Some(p.clone());
                    p
                }
            };
            let salt = password::new_salt();
            let created = identity
                .create_user(&NewUser {
                    username: "admin".into(),
                    email: String::new(),
                    realname: "system admin".into(),
                    comment: "admin user".into(),
                    password: password::hash(&pw, &salt, password::STRONGEST),
                    salt,
                    password_version: password::STRONGEST.to_string(),
                    sysadmin: true,
                })
                .await;
            match created {
                Ok(user) => {
                    out.created_admin = true;
                    user
                }
                // Another instance of the cluster, starting at the same moment, won: its
                // admin (and the password it showed) stands, and it creates `library`.
                Err(IdentityError::Conflict { .. }) => {
                    out.generated_admin_password = None;
                    return Ok(out);
                }
                Err(e) => return Err(e.into()),
            }
        }
        // Users exist but none is called admin (renamed or imported): leave them be.
        None => return Ok(out),
    };
    if out.created_admin && identity.project_by_name("library").await.map_err(IdentityError::from)?.is_none() {
        let mut metadata = BTreeMap::new();
        metadata.insert("public".to_string(), "true".to_string());
        match identity.create_project(&NewProject { name: "library".into(), owner_id: admin.id, metadata }).await {
            Ok(_) | Err(IdentityError::Conflict { .. }) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(out)
}
