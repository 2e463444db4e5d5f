//! Who is asking, and what they may do: the principal of a request and the decisions of
//! Harbor's permission model (project roles, system admins, public projects, robot
//! permissions). Pure decisions over the identity store; no HTTP here.

use std::sync::Arc;

use crate::identity::rbac::{Action, Resource, Role, public_project_allows, role_allows};
use crate::store::StoreResult;
use crate::store::identity::{IdentityStore, Project, RobotAccess};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    Anonymous,
    User {
        id: i64,
        name: String,
        sysadmin: bool,
    },
    /// `name` is the full name, `robot$…`.
    Robot {
        id: i64,
        name: String,
        project_id: i64,
        permissions: Vec<RobotAccess>,
    },
}

impl Principal {
    /// The name Harbor records (audit log, token `sub`); empty for anonymous.
    pub fn name(&self) -> &str {
        match self {
            Principal::Anonymous => "",
            Principal::User { name, .. } | Principal::Robot { name, .. } => name,
        }
    }
    pub fn is_sysadmin(&self) -> bool {
        matches!(self, Principal::User { sysadmin: true, .. })
    }
    pub fn is_authenticated(&self) -> bool {
        !matches!(self, Principal::Anonymous)
    }
}

/// Who the job service's own changes (retention deletes, replication's requests to this
/// registry) are recorded as in the audit log and events: Harbor's job service calls its
/// core with a secret that stands for this user.
pub const JOBSERVICE_USER: &str = "harbor-jobservice";

/// The project part of a repository name (`library/nginx` → `library`); `None` for a
/// name without a project, which Harbor does not allow.
pub fn project_of(repository: &str) -> Option<&str> {
    repository.split_once('/').map(|(p, _)| p).filter(|p| !p.is_empty())
}

#[derive(Clone)]
pub struct AccessControl {
    identity: Arc<dyn IdentityStore>,
}

impl AccessControl {
    pub fn new(identity: Arc<dyn IdentityStore>) -> Self {
        AccessControl { identity }
    }

    /// The member role a user holds in a project, if any.
    pub async fn role(&self, principal: &Principal, project: &Project) -> StoreResult<Option<Role>> {
        match principal {
            Principal::User { id, .. } => Ok(self.identity.member_role(project.id, *id).await?.and_then(Role::from_id)),
            _ => Ok(None),
        }
    }

    /// Harbor's decision for `action` on `resource` inside `project`.
    pub async fn allowed(
        &self,
        principal: &Principal,
        project: &Project,
        resource: Resource,
        action: Action,
    ) -> StoreResult<bool> {
        if principal.is_sysadmin() {
            return Ok(true);
        }
        if let Principal::Robot { permissions, project_id, .. } = principal {
            // Like any authenticated caller, a robot may read public projects.
            return Ok(robot_allows(permissions, *project_id, project, resource, action)
                || (project.is_public() && public_project_allows(resource, action)));
        }
        if let Some(role) = self.role(principal, project).await?
            && role_allows(role, resource, action)
        {
            return Ok(true);
        }
        Ok(project.is_public() && public_project_allows(resource, action))
    }
}

/// Robots carry explicit permissions: a project-level robot is confined to its own
/// project; a system-level robot's entries name a project or `*`.
pub fn robot_allows(
    permissions: &[RobotAccess],
    robot_project_id: i64,
    project: &Project,
    resource: Resource,
    action: Action,
) -> bool {
    if robot_project_id != 0 && robot_project_id != project.id {
        return false;
    }
    permissions.iter().any(|p| {
        p.kind == "project"
            && (p.namespace == project.name || p.namespace == "*")
            && p.resource == resource.as_str()
            && p.action == action.as_str()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn project(id: i64, name: &str, public: bool) -> Project {
        let mut metadata = BTreeMap::new();
        metadata.insert("public".to_string(), public.to_string());
        Project { id, name: name.into(), owner_id: 1, metadata, creation_time: 0, update_time: 0 }
    }

    fn perm(ns: &str, resource: &str, action: &str) -> RobotAccess {
        RobotAccess { kind: "project".into(), namespace: ns.into(), resource: resource.into(), action: action.into() }
    }

    #[test]
    fn project_part_of_names() {
        assert_eq!(project_of("library/nginx"), Some("library"));
        assert_eq!(project_of("a/b/c"), Some("a"));
        assert_eq!(project_of("nginx"), None);
    }

    #[test]
    fn robots_are_confined() {
        let p = project(7, "team", false);
        let other = project(8, "other", false);
        let perms = vec![perm("team", "repository", "pull"), perm("team", "repository", "push")];
        assert!(robot_allows(&perms, 7, &p, Resource::Repository, Action::Pull));
        assert!(robot_allows(&perms, 7, &p, Resource::Repository, Action::Push));
        assert!(!robot_allows(&perms, 7, &p, Resource::Repository, Action::Delete));
        assert!(!robot_allows(&perms, 7, &other, Resource::Repository, Action::Pull));
        let system = vec![perm("*", "repository", "pull")];
        assert!(robot_allows(&system, 0, &other, Resource::Repository, Action::Pull));
        assert!(!robot_allows(&system, 0, &other, Resource::Repository, Action::Push));
    }
}
