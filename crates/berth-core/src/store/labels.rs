//! Harbor's labels (`harbor_label`, `label_reference`): global labels (scope `g`) and
//! project labels (scope `p`, with their project), and which artifacts carry them.
//!
//! A label's name is unique within its scope and project. An artifact is a manifest,
//! named by (repository, digest); deleting the manifest or the label detaches it.

use async_trait::async_trait;

use super::identity::Page;
use super::{StoreError, StoreResult};
use crate::digest::Digest;
use crate::name::RepoName;

#[derive(Debug, thiserror::Error)]
pub enum LabelError {
    /// `name` is taken in the scope, or (`label`) the artifact already has the label.
    #[error("{field} {value:?} already exists")]
    Conflict { field: &'static str, value: String },
    /// The label, the artifact or the attachment does not exist.
    #[error("not found")]
    NotFound,
    #[error(transparent)]
    Store(#[from] StoreError),
}

pub type LabelResult<T> = Result<T, LabelError>;

/// Where a label lives: global (`g`) or in one project (`p`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LabelScope {
    Global,
    Project(i64),
}

impl LabelScope {
    /// Harbor's `scope` column: `g` or `p`.
    pub fn code(&self) -> &'static str {
        match self {
            LabelScope::Global => "g",
            LabelScope::Project(_) => "p",
        }
    }

    /// Harbor's `project_id`: 0 for global labels.
    pub fn project_id(&self) -> i64 {
        match self {
            LabelScope::Global => 0,
            LabelScope::Project(id) => *id,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Label {
    pub id: i64,
    pub name: String,
    pub description: String,
    pub color: String,
    pub scope: LabelScope,
    pub creation_time: i64,
    pub update_time: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewLabel {
    pub name: String,
    pub description: String,
    pub color: String,
    pub scope: LabelScope,
}

/// Fields an update may change (`None` leaves a field as it is); the scope never changes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LabelUpdate {
    pub name: Option<String>,
    pub description: Option<String>,
    pub color: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LabelFilter {
    /// Only labels of this scope (and project); all when `None`.
    pub scope: Option<LabelScope>,
    /// Name contains (ASCII case-insensitive; `%`, `_`, `\` literal).
    pub name: Option<String>,
}

#[async_trait]
pub trait LabelStore: Send + Sync + 'static {
    /// `Conflict { field: "name" }` if the scope already has the name; id and times are
    /// assigned.
    async fn create_label(&self, l: &NewLabel) -> LabelResult<Label>;
    async fn label(&self, id: i64) -> StoreResult<Option<Label>>;
    /// Matching labels by name (then id), with the total count.
    async fn list_labels(&self, filter: &LabelFilter, page: &Page) -> StoreResult<(Vec<Label>, u64)>;
    async fn update_label(&self, id: i64, update: &LabelUpdate) -> LabelResult<Label>;
    /// Deletes the label and detaches it from every artifact.
    async fn delete_label(&self, id: i64) -> LabelResult<()>;
    /// `NotFound` if the label or the artifact does not exist; `Conflict { field: "label" }`
    /// if the artifact already has it.
    async fn attach_label(&self, repo: &RepoName, digest: &Digest, label_id: i64) -> LabelResult<()>;
    /// `NotFound` unless the artifact has the label.
    async fn detach_label(&self, repo: &RepoName, digest: &Digest, label_id: i64) -> LabelResult<()>;
    /// The artifact's labels in the order they were attached (empty for an unknown artifact).
    async fn labels_of(&self, repo: &RepoName, digest: &Digest) -> StoreResult<Vec<Label>>;
}
