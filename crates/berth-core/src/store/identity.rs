//! The identity half of the metadata store: users, projects, members, robot accounts and
//! the audit log, shaped after Harbor's data model so that a Harbor database can be
//! imported with its ids. Each method is atomic; uniqueness is enforced by the store and
//! reported as `IdentityError::Conflict` naming the field.

use std::collections::BTreeMap;

use async_trait::async_trait;

use super::{StoreError, StoreResult};

/// What a write can fail on, besides the database itself.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    /// A unique field (`username`, `email`, `name`) is already taken.
    #[error("{field} {value:?} is already taken")]
    Conflict { field: &'static str, value: String },
    /// The row to change does not exist.
    #[error("not found")]
    NotFound,
    /// The change would break a rule the store checks atomically (e.g. deleting a
    /// project that still has repositories).
    #[error("{0}")]
    Precondition(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

pub type IdentityResult<T> = Result<T, IdentityError>;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: i64,
    pub username: String,
    pub email: String,
    pub realname: String,
    pub comment: String,
    /// Harbor's format: hex PBKDF2 output, with its salt and version name.
    pub password: String,
    pub salt: String,
    pub password_version: String,
    pub sysadmin: bool,
    pub creation_time: i64,
    pub update_time: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewUser {
    pub username: String,
    pub email: String,
    pub realname: String,
    pub comment: String,
    pub password: String,
    pub salt: String,
    pub password_version: String,
    pub sysadmin: bool,
}

/// Fields a profile update may change (`None` leaves a field as it is).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserUpdate {
    pub email: Option<String>,
    pub realname: Option<String>,
    pub comment: Option<String>,
    pub sysadmin: Option<bool>,
    /// New (hash, salt, version).
    pub password: Option<(String, String, String)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Project {
    pub id: i64,
    pub name: String,
    pub owner_id: i64,
    /// Harbor keeps metadata as strings (`"public": "true"`).
    pub metadata: BTreeMap<String, String>,
    pub creation_time: i64,
    pub update_time: i64,
}

impl Project {
    pub fn is_public(&self) -> bool {
        self.metadata.get("public").map(|v| v == "true").unwrap_or(false)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewProject {
    pub name: String,
    pub owner_id: i64,
    pub metadata: BTreeMap<String, String>,
}

/// A page request: 1-based page, bounded page size, optional exact/fuzzy filters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    pub page: u64,
    pub page_size: u64,
}

impl Page {
    pub fn offset(&self) -> u64 {
        self.page.saturating_sub(1).saturating_mul(self.page_size)
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProjectFilter {
    /// Substring match on the name (Harbor's `name=~x`); exact when `name_exact`.
    pub name: Option<String>,
    pub name_exact: bool,
    pub public: Option<bool>,
    /// Only projects this user is a member of, plus public ones when `include_public`.
    pub member_user_id: Option<i64>,
    pub include_public: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub id: i64,
    pub project_id: i64,
    /// The user's id (Harbor's `entity_id` with `entity_type = 'u'`).
    pub user_id: i64,
    pub username: String,
    /// Harbor's role id (1 projectAdmin, 2 developer, 3 guest, 4 maintainer, 5 limitedGuest).
    pub role_id: i64,
}

/// One permission of a robot account, as Harbor stores it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RobotAccess {
    /// `project` or `system`.
    pub kind: String,
    /// Project name, `*` for all projects, or `/` for system.
    pub namespace: String,
    pub resource: String,
    pub action: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Robot {
    pub id: i64,
    /// The name without the `robot$` prefix: `name` (system) or `project+name`.
    pub name: String,
    pub description: String,
    /// 0 for system-level robots.
    pub project_id: i64,
    pub secret: String,
    pub salt: String,
    /// Unix seconds, -1 for never.
    pub expires_at: i64,
    pub duration_days: i64,
    pub disabled: bool,
    pub level: String,
    pub permissions: Vec<RobotAccess>,
    pub creation_time: i64,
    pub update_time: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    pub id: i64,
    pub project_id: i64,
    /// `create`, `delete`, `pull`, `push`, `update`, …
    pub operation: String,
    /// `artifact`, `project`, `user`, `robot`, `member`, …
    pub resource_type: String,
    pub resource: String,
    pub username: String,
    pub op_time: i64,
}

/// How a text column is matched (Harbor's `k=v`, `k=~v` and `k={a b}`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TextMatch {
    Exact(String),
    /// Contains the value, ignoring ASCII case.
    Contains(String),
    /// Equals one of the values (none: matches nothing).
    AnyOf(Vec<String>),
}

impl From<&str> for TextMatch {
    fn from(v: &str) -> Self {
        TextMatch::Exact(v.to_string())
    }
}

impl From<String> for TextMatch {
    fn from(v: String) -> Self {
        TextMatch::Exact(v)
    }
}

/// Which audit entries to list; every given condition must hold.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditFilter {
    pub project_id: Option<i64>,
    pub username: Option<TextMatch>,
    pub operation: Option<TextMatch>,
    pub resource_type: Option<TextMatch>,
    pub resource: Option<TextMatch>,
    /// `op_time` at or after this (unix seconds).
    pub op_time_from: Option<i64>,
    /// `op_time` at or before this (unix seconds).
    pub op_time_to: Option<i64>,
}

impl AuditFilter {
    /// The text conditions with their column names, for the stores' SQL.
    pub fn text_columns(&self) -> [(&'static str, Option<&TextMatch>); 4] {
        [
            ("username", self.username.as_ref()),
            ("operation", self.operation.as_ref()),
            ("resource_type", self.resource_type.as_ref()),
            ("resource", self.resource.as_ref()),
        ]
    }
}

#[async_trait]
pub trait IdentityStore: Send + Sync + 'static {
    // --- users ---
    async fn create_user(&self, u: &NewUser) -> IdentityResult<User>;
    async fn user(&self, id: i64) -> StoreResult<Option<User>>;
    /// By user name or, as Harbor allows at login, by e-mail.
    async fn user_by_login(&self, name_or_email: &str) -> StoreResult<Option<User>>;
    /// Users whose name contains `name` (all when `None`), by id, with the total count.
    async fn list_users(&self, name: Option<&str>, page: &Page) -> StoreResult<(Vec<User>, u64)>;
    async fn update_user(&self, id: i64, update: &UserUpdate) -> IdentityResult<User>;
    /// Deletes a user and their memberships.
    async fn delete_user(&self, id: i64) -> IdentityResult<()>;
    async fn user_count(&self) -> StoreResult<u64>;

    // --- projects ---
    /// Creates a project and makes its owner a projectAdmin member.
    async fn create_project(&self, p: &NewProject) -> IdentityResult<Project>;
    async fn project(&self, id: i64) -> StoreResult<Option<Project>>;
    async fn project_by_name(&self, name: &str) -> StoreResult<Option<Project>>;
    async fn list_projects(&self, filter: &ProjectFilter, page: &Page) -> StoreResult<(Vec<Project>, u64)>;
    /// Replaces the given metadata keys (others stay).
    async fn update_project_metadata(&self, id: i64, metadata: &BTreeMap<String, String>) -> IdentityResult<Project>;
    async fn delete_project_metadata(&self, id: i64, key: &str) -> IdentityResult<()>;
    /// Deletes a project; refused with `Precondition` while repositories named
    /// `<project>/…` exist (checked in the same transaction).
    async fn delete_project(&self, id: i64) -> IdentityResult<()>;
    /// Number of repositories under the project's name.
    async fn project_repository_count(&self, name: &str) -> StoreResult<u64>;

    // --- members ---
    async fn add_member(&self, project_id: i64, user_id: i64, role_id: i64) -> IdentityResult<Member>;
    async fn members(&self, project_id: i64, name: Option<&str>, page: &Page) -> StoreResult<(Vec<Member>, u64)>;
    async fn member(&self, project_id: i64, member_id: i64) -> StoreResult<Option<Member>>;
    async fn update_member_role(&self, project_id: i64, member_id: i64, role_id: i64) -> IdentityResult<Member>;
    async fn remove_member(&self, project_id: i64, member_id: i64) -> IdentityResult<()>;
    /// The user's role in a project, if a member.
    async fn member_role(&self, project_id: i64, user_id: i64) -> StoreResult<Option<i64>>;

    // --- robots ---
    async fn create_robot(&self, r: &Robot) -> IdentityResult<Robot>;
    async fn robot(&self, id: i64) -> StoreResult<Option<Robot>>;
    async fn robot_by_name(&self, name: &str) -> StoreResult<Option<Robot>>;
    /// Robots of a project (`Some(id)`) or system-level robots (`Some(0)`), or all.
    async fn list_robots(&self, project_id: Option<i64>, page: &Page) -> StoreResult<(Vec<Robot>, u64)>;
    /// Replaces description, expiry, disabled flag, permissions and, if changed, secret.
    async fn update_robot(&self, r: &Robot) -> IdentityResult<Robot>;
    async fn delete_robot(&self, id: i64) -> IdentityResult<()>;

    // --- audit log ---
    async fn append_audit(&self, e: &AuditEntry) -> StoreResult<()>;
    /// Appends many entries at once (pull events arrive by the thousand); backends should
    /// write them in one transaction.
    async fn append_audit_batch(&self, entries: &[AuditEntry]) -> StoreResult<()> {
        for e in entries {
            self.append_audit(e).await?;
        }
        Ok(())
    }
    async fn list_audit(&self, filter: &AuditFilter, page: &Page) -> StoreResult<(Vec<AuditEntry>, u64)>;
    /// Deletes up to `batch` entries older than `before` (unix seconds) whose operation is
    /// one of `operations` or whose event type (`<operation>_<resource_type>`,
    /// [`crate::audit`]) is one of `event_types`, oldest first, and returns how many went;
    /// with `dry_run` it deletes nothing and counts every entry that would go.
    async fn purge_audit(
        &self,
        before: i64,
        operations: &[String],
        event_types: &[String],
        batch: u64,
        dry_run: bool,
    ) -> StoreResult<u64>;
}
