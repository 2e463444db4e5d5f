//! Authentication against a real store: every Harbor password format logs in, weak hashes
//! are upgraded on success, robots must be enabled and unexpired.

use std::sync::Arc;

use berth_core::access::{AccessControl, Principal};
use berth_core::authn::{Authenticator, AuthnError};
use berth_core::identity::password::{self, PasswordVersion};
use berth_core::identity::rbac::{Action, Resource};
use berth_core::store::identity::{IdentityStore, NewProject, NewUser, Robot, RobotAccess};
use berth_store_sqlite::SqliteStore;

const VECTOR_PASSWORD: &str = "Liujunfeng@201*";
const VECTOR_SALT: &str = "bqkaoihidlteezrbeepe03luw5aws3q7";

fn store() -> (tempfile::TempDir, Arc<SqliteStore>) {
    let dir = tempfile::tempdir().unwrap();
    let s = Arc::new(SqliteStore::open(&dir.path().join("m.db")).unwrap());
    (dir, s)
}

async fn user_with(store: &SqliteStore, name: &str, hash: &str, version: &str) -> i64 {
    store
        .create_user(&NewUser {
            username: name.into(),
            email: format!("{name}@example.com"),
            realname: String::new(),
            comment: String::new(),
            password: hash.into(),
            salt: VECTOR_SALT.into(),
            password_version: version.into(),
            sysadmin: false,
        })
        .await
        .unwrap()
        .id
}

#[tokio::test]
async fn every_harbor_format_logs_in_and_weak_ones_are_upgraded() {
    let (_d, s) = store();
    let authn = Authenticator::new(s.clone());
    // The operator's vector (sha1) plus the two later formats, as Harbor stored them.
    let rows = [
        ("u_sha1", "437cf590b32985b95cc0804f64c125de", "sha1"),
        ("u_sha256", "d3eb47490136a8f061ef6251f4e016f1", "sha256"),
        ("u_pbkdf2", "968fd26a3b88acda052466d0faf8c272", "pbkdf2_sha256"),
    ];
    for (name, hash, version) in rows {
        let id = user_with(&s, name, hash, version).await;
        assert!(matches!(authn.login(name, "wrong").await, Err(AuthnError::Invalid)));
        let p = authn.login(name, VECTOR_PASSWORD).await.unwrap();
        assert_eq!(p, Principal::User { id, name: name.into(), sysadmin: false });
        let after = s.user(id).await.unwrap().unwrap();
        assert_eq!(after.password_version, "pbkdf2_sha256", "{name} upgraded to the strongest format");
        if version == "pbkdf2_sha256" {
            assert_eq!(after.password, hash, "already strongest: untouched");
        } else {
            assert_ne!(after.salt, VECTOR_SALT, "upgrade uses a fresh salt");
            assert!(password::verify(VECTOR_PASSWORD, &after.salt, PasswordVersion::Pbkdf2Sha256, &after.password));
        }
        // Still logs in after the upgrade, also by e-mail.
        authn.login(&format!("{name}@example.com"), VECTOR_PASSWORD).await.unwrap();
    }
    assert!(matches!(authn.login("nobody", VECTOR_PASSWORD).await, Err(AuthnError::Invalid)));
}

#[tokio::test]
async fn robots_must_be_enabled_and_unexpired() {
    let (_d, s) = store();
    let authn = Authenticator::new(s.clone());
    let owner = user_with(&s, "owner", "x", "sha256").await;
    let project = s
        .create_project(&NewProject { name: "team".into(), owner_id: owner, metadata: Default::default() })
        .await
        .unwrap();
    let secret = password::new_robot_secret();
    let salt = password::new_salt();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    let mut robot = Robot {
        id: 0,
        name: "team+ci".into(),
        description: String::new(),
        project_id: project.id,
        secret: password::hash_robot_secret(&secret, &salt),
        salt,
        expires_at: -1,
        duration_days: -1,
        disabled: false,
        level: "project".into(),
        permissions: vec![RobotAccess {
            kind: "project".into(),
            namespace: "team".into(),
            resource: "repository".into(),
            action: "pull".into(),
        }],
        creation_time: now,
        update_time: now,
    };
    robot = s.create_robot(&robot).await.unwrap();
    match authn.login("robot$team+ci", &secret).await.unwrap() {
        Principal::Robot { name, project_id, permissions, .. } => {
            assert_eq!(name, "robot$team+ci");
            assert_eq!(project_id, project.id);
            assert_eq!(permissions.len(), 1);
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(authn.login("robot$team+ci", "wrong").await, Err(AuthnError::Invalid)));

    // What the robot may do: its own grants, plus reading public projects like any caller.
    let access = AccessControl::new(s.clone());
    let principal = authn.login("robot$team+ci", &secret).await.unwrap();
    let mut public_meta = std::collections::BTreeMap::new();
    public_meta.insert("public".to_string(), "true".to_string());
    let public =
        s.create_project(&NewProject { name: "open".into(), owner_id: owner, metadata: public_meta }).await.unwrap();
    let private = s
        .create_project(&NewProject { name: "closed".into(), owner_id: owner, metadata: Default::default() })
        .await
        .unwrap();
    assert!(access.allowed(&principal, &project, Resource::Repository, Action::Pull).await.unwrap());
    assert!(!access.allowed(&principal, &project, Resource::Repository, Action::Push).await.unwrap());
    assert!(access.allowed(&principal, &public, Resource::Repository, Action::Pull).await.unwrap());
    assert!(!access.allowed(&principal, &public, Resource::Repository, Action::Push).await.unwrap());
    assert!(!access.allowed(&principal, &private, Resource::Repository, Action::Pull).await.unwrap());
    assert!(matches!(authn.login("robot$team+nope", &secret).await, Err(AuthnError::Invalid)));
    robot.disabled = true;
    s.update_robot(&robot).await.unwrap();
    assert!(matches!(authn.login("robot$team+ci", &secret).await, Err(AuthnError::Invalid)));
    robot.disabled = false;
    robot.expires_at = now - 10;
    s.update_robot(&robot).await.unwrap();
    assert!(matches!(authn.login("robot$team+ci", &secret).await, Err(AuthnError::Invalid)));
}
