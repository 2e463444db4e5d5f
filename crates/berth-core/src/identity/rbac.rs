//! Harbor's project RBAC (goharbor/harbor `src/common/rbac/project/rbac_role.go`,
//! `rbac_util.go`, `src/core/service/token/creator.go`): the five project roles, the resources
//! and actions of a project, which role may do what, what anonymous users may do on public
//! projects, and which docker token actions a repository scope gets.
//!
//! The role matrix is the one in the design reference (`harbor-reference.md` §5). Where that
//! table only says "all" or names no actions, the actions are Harbor's own for that resource:
//! tag-retention has create/read/update/delete/list/operate, immutable-tag
//! create/update/delete/list (no read, as in Harbor), preheat-policy create/read/update/delete/
//! list, export-cve create/read/list, and notification-policy "write" is create/update/delete.

use std::fmt;
use std::str::FromStr;

use serde::{Serialize, Serializer};

/// A project member role; the discriminants are Harbor's `role.role_id` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(i64)]
pub enum Role {
    ProjectAdmin = 1,
    Developer = 2,
    Guest = 3,
    Maintainer = 4,
    LimitedGuest = 5,
}

impl Role {
    /// All roles, most to least privileged.
    pub const ALL: [Role; 5] = [Role::ProjectAdmin, Role::Maintainer, Role::Developer, Role::Guest, Role::LimitedGuest];

    /// Harbor's role id (`project_member.role`, `role.role_id`).
    pub const fn id(self) -> i64 {
        self as i64
    }

    pub fn from_id(id: i64) -> Option<Self> {
        Some(match id {
            1 => Role::ProjectAdmin,
            2 => Role::Developer,
            3 => Role::Guest,
            4 => Role::Maintainer,
            5 => Role::LimitedGuest,
            _ => return None,
        })
    }

    /// Harbor's role name (`role.name`, the `role_name` of member responses).
    pub const fn as_str(self) -> &'static str {
        match self {
            Role::ProjectAdmin => "projectAdmin",
            Role::Developer => "developer",
            Role::Guest => "guest",
            Role::Maintainer => "maintainer",
            Role::LimitedGuest => "limitedGuest",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Role::ALL.into_iter().find(|r| r.as_str() == name)
    }

    const fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

impl From<Role> for i64 {
    fn from(role: Role) -> i64 {
        role.id()
    }
}

impl TryFrom<i64> for Role {
    type Error = UnknownName;
    fn try_from(id: i64) -> Result<Self, UnknownName> {
        Role::from_id(id).ok_or_else(|| UnknownName { kind: "role id", name: id.to_string() })
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = UnknownName;
    fn from_str(s: &str) -> Result<Self, UnknownName> {
        Role::from_name(s).ok_or_else(|| UnknownName { kind: "role", name: s.to_owned() })
    }
}

/// A name that is not one of Harbor's roles, resources or actions.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {kind} {name:?}")]
pub struct UnknownName {
    pub kind: &'static str,
    pub name: String,
}

macro_rules! named_enum {
    ($(#[$meta:meta])* $ty:ident, $kind:literal { $($(#[$vmeta:meta])* $variant:ident => $name:literal,)+ }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $ty {
            $($(#[$vmeta])* $variant,)+
        }

        impl $ty {
            pub const ALL: &'static [$ty] = &[$($ty::$variant,)+];

            /// Harbor's name.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $($ty::$variant => $name,)+
                }
            }

            pub fn from_name(name: &str) -> Option<Self> {
                match name {
                    $($name => Some($ty::$variant),)+
                    _ => None,
                }
            }
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $ty {
            type Err = UnknownName;
            fn from_str(s: &str) -> Result<Self, UnknownName> {
                $ty::from_name(s).ok_or_else(|| UnknownName { kind: $kind, name: s.to_owned() })
            }
        }

        impl Serialize for $ty {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }
    };
}

named_enum!(
    /// A project-scoped RBAC resource (`/project/<id>/<resource>` in Harbor).
    Resource, "resource" {
        Repository => "repository",
        Artifact => "artifact",
        Tag => "tag",
        ArtifactLabel => "artifact-label",
        /// Project labels.
        Label => "label",
        Member => "member",
        Robot => "robot",
        Metadata => "metadata",
        Configuration => "configuration",
        Scan => "scan",
        Sbom => "sbom",
        Scanner => "scanner",
        TagRetention => "tag-retention",
        ImmutableTag => "immutable-tag",
        NotificationPolicy => "notification-policy",
        PreheatPolicy => "preheat-policy",
        Log => "log",
        Quota => "quota",
        Accessory => "accessory",
        ArtifactAddition => "artifact-addition",
        ExportCve => "export-cve",
        /// The project itself (Harbor's `ResourceSelf`, `/project/<id>`).
        Project => "project",
    }
);

named_enum!(
    /// An RBAC action.
    Action, "action" {
        Pull => "pull",
        Push => "push",
        Create => "create",
        Read => "read",
        Update => "update",
        Delete => "delete",
        List => "list",
        Operate => "operate",
        Stop => "stop",
        /// Granted only to scanner robots (by explicit permission), never by a role.
        ScannerPull => "scanner-pull",
    }
);

impl Resource {
    /// The actions that exist for this resource in a project: every one is granted to at least
    /// one role, and no role is granted any other.
    pub const fn actions(self) -> &'static [Action] {
        use Action::*;
        const CRUDL: &[Action] = &[Create, Read, Update, Delete, List];
        match self {
            Resource::Repository => &[Pull, Push, Create, Read, Update, Delete, List],
            Resource::Artifact | Resource::Tag => &[Create, Read, Delete, List],
            Resource::ArtifactLabel => &[Create, Delete],
            Resource::Label | Resource::Member | Resource::Robot => CRUDL,
            Resource::Metadata => &[Create, Read, Update, Delete],
            Resource::Configuration => &[Read, Update],
            Resource::Scan | Resource::Sbom => &[Create, Read, Stop],
            Resource::Scanner => &[Create, Read],
            Resource::TagRetention => &[Create, Read, Update, Delete, List, Operate],
            Resource::ImmutableTag => &[Create, Update, Delete, List],
            Resource::NotificationPolicy | Resource::PreheatPolicy => CRUDL,
            Resource::Log => &[List],
            Resource::Quota | Resource::Accessory | Resource::ArtifactAddition => &[Read, List],
            Resource::ExportCve => &[Create, Read, List],
            Resource::Project => &[Read, Update, Delete],
        }
    }

    /// The resource as `GET /users/current/permissions?scope=/project/<id>&relative=true`
    /// shows it: the name, except the project itself, which Harbor shows as `"."`.
    pub const fn relative_name(self) -> &'static str {
        match self {
            Resource::Project => ".",
            other => other.as_str(),
        }
    }

    /// Harbor's absolute resource path, e.g. `/project/3/repository` or `/project/3`.
    pub fn path(self, project_id: i64) -> String {
        match self {
            Resource::Project => format!("/project/{project_id}"),
            other => format!("/project/{project_id}/{}", other.as_str()),
        }
    }
}

/// One `(resource, action)` pair; serializes as Harbor's `{"resource":…,"action":…}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct Permission {
    pub resource: Resource,
    pub action: Action,
}

impl Permission {
    pub const fn new(resource: Resource, action: Action) -> Self {
        Permission { resource, action }
    }
}

impl fmt::Display for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.resource, self.action)
    }
}

/// A set of roles as bits (bit `n` = role id `n`).
#[derive(Clone, Copy, PartialEq, Eq)]
struct Roles(u8);

const NONE: Roles = Roles(0);
const A: Roles = Roles(Role::ProjectAdmin.bit());
const AM: Roles = Roles(A.0 | Role::Maintainer.bit());
const AMD: Roles = Roles(AM.0 | Role::Developer.bit());
const AMDG: Roles = Roles(AMD.0 | Role::Guest.bit());
const AMDGL: Roles = Roles(AMDG.0 | Role::LimitedGuest.bit());

/// The roles granted `action` on `resource` (design reference §5).
fn granted(resource: Resource, action: Action) -> Roles {
    use Action::*;
    use Resource::*;
    match (resource, action) {
        (Repository, Pull | List | Read) => AMDGL,
        (Repository, Push | Create | Update) => AMD,
        (Repository, Delete) => AM,

        (Artifact | Tag, Read | List) => AMDGL,
        (Artifact | Tag, Create) => AMD,
        (Artifact | Tag, Delete) => AM,

        (ArtifactLabel, Create | Delete) => AMD,

        (Label, Read | List) => AMDG,
        (Label, Create | Update | Delete) => AM,

        (Member | Robot, Read | List) => AMDG,
        (Member | Robot, Create | Update | Delete) => A,

        (Metadata, Read) => AM,
        (Metadata, Create | Update | Delete) => A,

        (Configuration, Read) => AMDGL,
        (Configuration, Update) => A,

        (Scan | Sbom, Read) => AMDGL,
        (Scan | Sbom, Create | Stop) => AM,

        (Scanner, Read) => AMDGL,
        (Scanner, Create) => A,

        (TagRetention, Create | Read | Update | Delete | List | Operate) => AMD,

        (ImmutableTag, Create | Update | Delete | List) => AM,

        (NotificationPolicy, Read | List) => AM,
        (NotificationPolicy, Create | Update | Delete) => A,

        (PreheatPolicy, Create | Read | Update | Delete | List) => A,

        (Log, List) => A,

        (Quota | Accessory | ArtifactAddition, Read | List) => AMDGL,

        (ExportCve, Create | Read | List) => AMD,

        (Project, Read) => AMDGL,
        (Project, Update | Delete) => A,

        _ => NONE,
    }
}

/// Whether a project member with `role` may do `action` on `resource` of that project.
pub fn role_allows(role: Role, resource: Resource, action: Action) -> bool {
    granted(resource, action).0 & role.bit() != 0
}

/// Whether any of `roles` allows it: a user's effective role in a project is the union of
/// their own membership and their groups' memberships.
pub fn roles_allow(roles: &[Role], resource: Resource, action: Action) -> bool {
    roles.iter().any(|&r| role_allows(r, resource, action))
}

/// What anonymous users and non-members may do on a public project: read, pull and list on
/// repository, artifact, tag, label, scan, scanner, accessory and artifact-addition (where the
/// resource has that action), and read the project itself (Harbor's `ResourceSelf` read in
/// `publicProjectPolicies`, needed for `GET /projects/{name}`).
pub fn public_project_allows(resource: Resource, action: Action) -> bool {
    use Resource::*;
    let readable =
        matches!(resource, Repository | Artifact | Tag | Label | Scan | Scanner | Accessory | ArtifactAddition);
    (readable && matches!(action, Action::Read | Action::Pull | Action::List) && resource.actions().contains(&action))
        || (resource == Project && action == Action::Read)
}

/// Every permission a role has, in [`Resource::ALL`] then [`Resource::actions`] order
/// (for `GET /users/current/permissions`).
pub fn role_permissions(role: Role) -> Vec<Permission> {
    permissions_where(|r, a| role_allows(role, r, a))
}

/// Every permission defined on a project; what a system administrator gets.
pub fn all_project_permissions() -> Vec<Permission> {
    permissions_where(|_, _| true)
}

fn permissions_where(mut keep: impl FnMut(Resource, Action) -> bool) -> Vec<Permission> {
    Resource::ALL
        .iter()
        .flat_map(|&r| r.actions().iter().map(move |&a| Permission::new(r, a)))
        .filter(|p| keep(p.resource, p.action))
        .collect()
}

/// How a (non-robot) user stands towards one project.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ProjectAccess<'a> {
    /// `harbor_user.sysadmin_flag`: everything is allowed.
    pub sysadmin: bool,
    /// The user's own role and their groups' roles in the project (empty for non-members and
    /// anonymous users).
    pub roles: &'a [Role],
    /// Whether the project is public (`metadata.public = "true"`).
    pub public: bool,
}

impl ProjectAccess<'_> {
    pub fn allows(&self, resource: Resource, action: Action) -> bool {
        self.sysadmin
            || roles_allow(self.roles, resource, action)
            || (self.public && public_project_allows(resource, action))
    }

    /// Every permission this access grants, in the order of [`role_permissions`].
    pub fn permissions(&self) -> Vec<Permission> {
        permissions_where(|r, a| self.allows(r, a))
    }
}

/// An action in a docker registry token's `access` claim.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TokenAction {
    Pull,
    Push,
    Delete,
    ScannerPull,
    /// `*`, as in `registry:catalog:*`.
    All,
}

impl TokenAction {
    pub const fn as_str(self) -> &'static str {
        match self {
            TokenAction::Pull => "pull",
            TokenAction::Push => "push",
            TokenAction::Delete => "delete",
            TokenAction::ScannerPull => "scanner-pull",
            TokenAction::All => "*",
        }
    }

    /// The action of a `repository:` scope string, as Harbor's v2 token security context
    /// reads it back.
    pub fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "pull" => TokenAction::Pull,
            "push" => TokenAction::Push,
            "delete" => TokenAction::Delete,
            "scanner-pull" => TokenAction::ScannerPull,
            "*" => TokenAction::All,
            _ => return None,
        })
    }

    /// The repository RBAC actions a token action stands for when Berth reads a token back:
    /// `*` means pull, push and delete (Harbor's `v2token` context), not scanner-pull.
    pub fn rbac_actions(self) -> &'static [Action] {
        match self {
            TokenAction::Pull => &[Action::Pull],
            TokenAction::Push => &[Action::Push],
            TokenAction::Delete => &[Action::Delete],
            TokenAction::ScannerPull => &[Action::ScannerPull],
            TokenAction::All => &[Action::Pull, Action::Push, Action::Delete],
        }
    }
}

impl fmt::Display for TokenAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for TokenAction {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

/// The token actions for a `repository:<project>/<repo>` scope, given the caller's RBAC check
/// on that project: `pull` ⇐ repository pull, `push` ⇐ repository push, `delete` ⇐ repository
/// delete, `scanner-pull` ⇐ repository scanner-pull (Harbor's `actionScopeMap`). As in Harbor,
/// the result is everything allowed, whatever the scope asked for; a missing project gets
/// nothing (the caller passes a check that always says no).
pub fn repository_token_actions(can: impl Fn(Resource, Action) -> bool) -> Vec<TokenAction> {
    [
        (Action::Pull, TokenAction::Pull),
        (Action::Push, TokenAction::Push),
        (Action::Delete, TokenAction::Delete),
        (Action::ScannerPull, TokenAction::ScannerPull),
    ]
    .into_iter()
    .filter(|&(rbac, _)| can(Resource::Repository, rbac))
    .map(|(_, token)| token)
    .collect()
}

/// [`repository_token_actions`] for a user: a system administrator gets `pull`, `push`,
/// `delete` and `scanner-pull` (Harbor's security context allows a sysadmin everything), a
/// member what their roles allow, anyone on a public project `pull`.
pub fn token_actions(access: &ProjectAccess<'_>) -> Vec<TokenAction> {
    repository_token_actions(|r, a| access.allows(r, a))
}

/// The token actions for `registry:catalog:*`: `*` for system administrators, nothing for
/// anyone else. Any other scope type gets nothing.
pub fn catalog_token_actions(sysadmin: bool) -> Vec<TokenAction> {
    if sysadmin { vec![TokenAction::All] } else { Vec::new() }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    /// Design reference §5, transcribed: `resource action roles`, with A=projectAdmin
    /// M=maintainer D=developer G=guest L=limitedGuest. Every cell not listed is a "no".
    const MATRIX: &str = "
        repository pull AMDGL
        repository list AMDGL
        repository read AMDGL
        repository push AMD
        repository create AMD
        repository update AMD
        repository delete AM

        artifact read AMDGL
        artifact list AMDGL
        artifact create AMD
        artifact delete AM
        tag read AMDGL
        tag list AMDGL
        tag create AMD
        tag delete AM

        artifact-label create AMD
        artifact-label delete AMD

        label read AMDG
        label list AMDG
        label create AM
        label update AM
        label delete AM

        member read AMDG
        member list AMDG
        member create A
        member update A
        member delete A
        robot read AMDG
        robot list AMDG
        robot create A
        robot update A
        robot delete A

        metadata read AM
        metadata create A
        metadata update A
        metadata delete A

        configuration read AMDGL
        configuration update A

        scan read AMDGL
        scan create AM
        scan stop AM
        sbom read AMDGL
        sbom create AM
        sbom stop AM

        scanner read AMDGL
        scanner create A

        tag-retention create AMD
        tag-retention read AMD
        tag-retention update AMD
        tag-retention delete AMD
        tag-retention list AMD
        tag-retention operate AMD

        immutable-tag create AM
        immutable-tag update AM
        immutable-tag delete AM
        immutable-tag list AM

        notification-policy read AM
        notification-policy list AM
        notification-policy create A
        notification-policy update A
        notification-policy delete A

        preheat-policy create A
        preheat-policy read A
        preheat-policy update A
        preheat-policy delete A
        preheat-policy list A

        log list A

        quota read AMDGL
        quota list AMDGL
        accessory read AMDGL
        accessory list AMDGL
        artifact-addition read AMDGL
        artifact-addition list AMDGL

        export-cve create AMD
        export-cve read AMD
        export-cve list AMD

        project read AMDGL
        project update A
        project delete A
    ";

    fn letter(role: Role) -> char {
        match role {
            Role::ProjectAdmin => 'A',
            Role::Maintainer => 'M',
            Role::Developer => 'D',
            Role::Guest => 'G',
            Role::LimitedGuest => 'L',
        }
    }

    fn matrix() -> Vec<(Resource, Action, &'static str)> {
        MATRIX
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(|line| {
                let cols: Vec<&str> = line.split_whitespace().collect();
                assert_eq!(cols.len(), 3, "bad row {line:?}");
                let resource = cols[0].parse().unwrap();
                let action = cols[1].parse().unwrap();
                assert!(cols[2].chars().all(|c| "AMDGL".contains(c)), "bad roles in {line:?}");
                (resource, action, cols[2])
            })
            .collect()
    }

    #[test]
    fn matrix_cell_by_cell() {
        let rows = matrix();
        let mut seen = BTreeSet::new();
        for &(r, a, _) in &rows {
            assert!(seen.insert((r, a)), "duplicate row {r} {a}");
        }
        let mut checked = 0;
        for &resource in Resource::ALL {
            for &action in Action::ALL {
                let roles = rows.iter().find(|&&(r, a, _)| r == resource && a == action).map_or("", |&(_, _, l)| l);
                for role in Role::ALL {
                    let expected = roles.contains(letter(role));
                    assert_eq!(
                        role_allows(role, resource, action),
                        expected,
                        "{role} {action} {resource}: table says {roles:?}"
                    );
                    checked += 1;
                }
            }
        }
        assert_eq!(checked, Resource::ALL.len() * Action::ALL.len() * Role::ALL.len());
    }

    #[test]
    fn resource_actions_are_exactly_the_granted_cells() {
        let rows: BTreeSet<(Resource, Action)> = matrix().into_iter().map(|(r, a, _)| (r, a)).collect();
        let vocabulary: BTreeSet<(Resource, Action)> =
            all_project_permissions().into_iter().map(|p| (p.resource, p.action)).collect();
        assert_eq!(rows, vocabulary);
        // Every resource of §5 is present and has at least one action.
        assert_eq!(Resource::ALL.len(), 22);
        assert!(Resource::ALL.iter().all(|r| !r.actions().is_empty()));
        // The project admin has every permission, like a system administrator.
        assert_eq!(role_permissions(Role::ProjectAdmin), all_project_permissions());
    }

    #[test]
    fn roles_are_nested_as_in_harbor() {
        // Each role's permissions include the next lower role's (A ⊇ M ⊇ D ⊇ G ⊇ L).
        for pair in Role::ALL.windows(2) {
            let higher: BTreeSet<_> = role_permissions(pair[0]).into_iter().collect();
            let lower: BTreeSet<_> = role_permissions(pair[1]).into_iter().collect();
            assert!(lower.is_subset(&higher), "{} ⊄ {}", pair[1], pair[0]);
        }
    }

    #[test]
    fn role_ids_and_names() {
        let expected = [
            (Role::ProjectAdmin, 1, "projectAdmin"),
            (Role::Developer, 2, "developer"),
            (Role::Guest, 3, "guest"),
            (Role::Maintainer, 4, "maintainer"),
            (Role::LimitedGuest, 5, "limitedGuest"),
        ];
        for (role, id, name) in expected {
            assert_eq!(role.id(), id);
            assert_eq!(i64::from(role), id);
            assert_eq!(Role::from_id(id), Some(role));
            assert_eq!(Role::try_from(id), Ok(role));
            assert_eq!(role.as_str(), name);
            assert_eq!(role.to_string(), name);
            assert_eq!(name.parse::<Role>(), Ok(role));
        }
        assert_eq!(Role::from_id(0), None);
        assert_eq!(Role::from_id(6), None);
        assert!(Role::try_from(9).is_err());
        assert!("ProjectAdmin".parse::<Role>().is_err());
    }

    #[test]
    fn resource_and_action_names() {
        for &r in Resource::ALL {
            assert_eq!(Resource::from_name(r.as_str()), Some(r));
            assert_eq!(r.to_string().parse::<Resource>(), Ok(r));
        }
        for &a in Action::ALL {
            assert_eq!(Action::from_name(a.as_str()), Some(a));
        }
        assert_eq!(Resource::ArtifactLabel.as_str(), "artifact-label");
        assert_eq!(Resource::ArtifactAddition.as_str(), "artifact-addition");
        assert_eq!(Resource::ExportCve.as_str(), "export-cve");
        assert_eq!(Resource::NotificationPolicy.as_str(), "notification-policy");
        assert_eq!(Action::ScannerPull.as_str(), "scanner-pull");
        assert_eq!("helm-chart".parse::<Resource>().unwrap_err().to_string(), "unknown resource \"helm-chart\"");
        assert_eq!(Resource::Project.relative_name(), ".");
        assert_eq!(Resource::Repository.relative_name(), "repository");
        assert_eq!(Resource::Project.path(3), "/project/3");
        assert_eq!(Resource::Repository.path(3), "/project/3/repository");
        let json = serde_json::to_string(&Permission::new(Resource::Repository, Action::Pull)).unwrap();
        assert_eq!(json, r#"{"resource":"repository","action":"pull"}"#);
        assert_eq!(Permission::new(Resource::Tag, Action::List).to_string(), "tag:list");
    }

    #[test]
    fn no_role_gets_scanner_pull() {
        for role in Role::ALL {
            for &r in Resource::ALL {
                assert!(!role_allows(role, r, Action::ScannerPull));
            }
        }
        assert!(!public_project_allows(Resource::Repository, Action::ScannerPull));
    }

    #[test]
    fn public_projects() {
        let readable = [
            Resource::Repository,
            Resource::Artifact,
            Resource::Tag,
            Resource::Label,
            Resource::Scan,
            Resource::Scanner,
            Resource::Accessory,
            Resource::ArtifactAddition,
        ];
        for &r in Resource::ALL {
            for &a in Action::ALL {
                let expected = (readable.contains(&r)
                    && matches!(a, Action::Read | Action::Pull | Action::List)
                    && r.actions().contains(&a))
                    || (r == Resource::Project && a == Action::Read);
                assert_eq!(public_project_allows(r, a), expected, "{r} {a}");
            }
        }
        assert!(public_project_allows(Resource::Repository, Action::Pull));
        assert!(public_project_allows(Resource::Label, Action::List));
        assert!(!public_project_allows(Resource::Repository, Action::Push));
        assert!(!public_project_allows(Resource::Member, Action::List));
        assert!(!public_project_allows(Resource::Quota, Action::Read));
        assert!(!public_project_allows(Resource::Artifact, Action::Pull));
    }

    #[test]
    fn project_access_combines_sysadmin_roles_and_public() {
        let anon_private = ProjectAccess::default();
        assert!(!anon_private.allows(Resource::Repository, Action::Pull));
        assert!(anon_private.permissions().is_empty());

        let anon_public = ProjectAccess { public: true, ..Default::default() };
        assert!(anon_public.allows(Resource::Repository, Action::Pull));
        assert!(!anon_public.allows(Resource::Repository, Action::Push));

        // Union of own and group roles.
        let roles = [Role::LimitedGuest, Role::Developer];
        let member = ProjectAccess { roles: &roles, ..Default::default() };
        assert!(member.allows(Resource::Repository, Action::Push));
        assert!(!member.allows(Resource::Repository, Action::Delete));

        // A limited guest of a public project also gets the public read permissions.
        let lg = [Role::LimitedGuest];
        assert!(!ProjectAccess { roles: &lg, ..Default::default() }.allows(Resource::Label, Action::Read));
        assert!(ProjectAccess { roles: &lg, public: true, ..Default::default() }.allows(Resource::Label, Action::Read));

        let admin = ProjectAccess { sysadmin: true, ..Default::default() };
        assert!(admin.allows(Resource::Repository, Action::ScannerPull));
        assert_eq!(admin.permissions(), all_project_permissions());
    }

    #[test]
    fn registry_token_actions() {
        let names = |v: Vec<TokenAction>| v.iter().map(|a| a.as_str()).collect::<Vec<_>>();
        let access =
            |roles: &[Role], public: bool| names(token_actions(&ProjectAccess { sysadmin: false, roles, public }));
        assert_eq!(access(&[Role::ProjectAdmin], false), ["pull", "push", "delete"]);
        assert_eq!(access(&[Role::Maintainer], false), ["pull", "push", "delete"]);
        assert_eq!(access(&[Role::Developer], false), ["pull", "push"]);
        assert_eq!(access(&[Role::Guest], false), ["pull"]);
        assert_eq!(access(&[Role::LimitedGuest], false), ["pull"]);
        assert_eq!(access(&[], false), Vec::<&str>::new());
        assert_eq!(access(&[], true), ["pull"]);
        assert_eq!(access(&[Role::Guest, Role::Developer], true), ["pull", "push"]);
        let sysadmin = ProjectAccess { sysadmin: true, ..Default::default() };
        assert_eq!(names(token_actions(&sysadmin)), ["pull", "push", "delete", "scanner-pull"]);
        // A scanner robot with an explicit scanner-pull permission.
        let robot = [Permission::new(Resource::Repository, Action::ScannerPull)];
        assert_eq!(names(repository_token_actions(|r, a| robot.contains(&Permission::new(r, a)))), ["scanner-pull"]);
        assert!(repository_token_actions(|_, _| false).is_empty());
        assert_eq!(names(catalog_token_actions(true)), ["*"]);
        assert!(catalog_token_actions(false).is_empty());
        assert_eq!(serde_json::to_string(&TokenAction::All).unwrap(), r#""*""#);
        for a in [TokenAction::Pull, TokenAction::Push, TokenAction::Delete, TokenAction::ScannerPull, TokenAction::All]
        {
            assert_eq!(TokenAction::from_name(a.as_str()), Some(a));
        }
        assert_eq!(TokenAction::All.rbac_actions(), [Action::Pull, Action::Push, Action::Delete]);
    }
}
