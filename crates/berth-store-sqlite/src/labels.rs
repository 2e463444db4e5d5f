//! [`LabelStore`] on the same database (tables from `migrations/0004_labels.sql`).
//!
//! Every write is one writer job; a refusal (conflict, not found) fails the job so that
//! its savepoint is rolled back. Attachments point at manifest rows and go away with
//! the manifest (foreign key cascade) or the label.

use async_trait::async_trait;
use berth_core::store::StoreResult;
use berth_core::store::identity::Page;
use berth_core::store::labels::{
    Label, LabelError, LabelFilter, LabelResult, LabelScope, LabelStore, LabelUpdate, NewLabel,
};
use berth_core::{Digest, RepoName};
use rusqlite::types::Value;
use rusqlite::{Connection, OptionalExtension, Row, params, params_from_iter};

use crate::refuse::contains_pattern;
use crate::{Fail, SqliteStore, backend, now, to_u64};

type Refuse = crate::refuse::Refuse<LabelError>;

fn name_conflict(name: &str) -> Refuse {
    Refuse::No(LabelError::Conflict { field: "name", value: name.to_owned() })
}

/// A UNIQUE violation on the label's name (one the check before the write missed) is a
/// conflict; anything else stays a database error.
fn on_unique(e: rusqlite::Error, name: &str) -> Refuse {
    if let rusqlite::Error::SqliteFailure(f, _) = &e
        && f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
    {
        return name_conflict(name);
    }
    Refuse::from(e)
}

impl SqliteStore {
    async fn label_write<T, F>(&self, f: F) -> LabelResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, Refuse> + Send + 'static,
    {
        self.refusable_write(f).await
    }
}

const COLUMNS: &str = "l.id, l.name, l.description, l.color, l.scope, l.project_id, l.creation_time, l.update_time";

fn label_row(r: &Row<'_>) -> rusqlite::Result<(Label, String)> {
    let scope: String = r.get(4)?;
    let project_id: i64 = r.get(5)?;
    Ok((
        Label {
            id: r.get(0)?,
            name: r.get(1)?,
            description: r.get(2)?,
            color: r.get(3)?,
            scope: if scope == "p" { LabelScope::Project(project_id) } else { LabelScope::Global },
            creation_time: r.get(6)?,
            update_time: r.get(7)?,
        },
        scope,
    ))
}

fn check_scope((label, scope): (Label, String)) -> Result<Label, Fail> {
    if scope == "g" || scope == "p" {
        Ok(label)
    } else {
        Err(backend(format!("label {}: stored scope {scope:?} is neither g nor p", label.id)))
    }
}

fn label_by_id(c: &Connection, id: i64) -> Result<Option<Label>, Fail> {
    c.prepare_cached(&format!("SELECT {COLUMNS} FROM labels l WHERE l.id = ?1"))?
        .query_row([id], label_row)
        .optional()?
        .map(check_scope)
        .transpose()
}

fn name_taken(c: &Connection, name: &str, scope: LabelScope, except: i64) -> Result<bool, Fail> {
    Ok(c.prepare_cached("SELECT 1 FROM labels WHERE name = ?1 AND scope = ?2 AND project_id = ?3 AND id <> ?4")?
        .query_row(params![name, scope.code(), scope.project_id(), except], |_| Ok(()))
        .optional()?
        .is_some())
}

fn manifest_id(c: &Connection, repo: &str, digest: &str) -> Result<Option<i64>, Fail> {
    Ok(c.prepare_cached(
        "SELECT m.id FROM manifests m JOIN repositories r ON r.id = m.repository_id WHERE r.name = ?1 AND m.digest = ?2",
    )?
    .query_row([repo, digest], |r| r.get(0))
    .optional()?)
}

#[async_trait]
impl LabelStore for SqliteStore {
    async fn create_label(&self, l: &NewLabel) -> LabelResult<Label> {
        let l = l.clone();
        self.label_write(move |c| {
            if name_taken(c, &l.name, l.scope, 0)? {
                return Err(name_conflict(&l.name));
            }
            let t = now();
            let id: i64 = c
                .prepare_cached(
                    "INSERT INTO labels (name, description, color, scope, project_id, creation_time, update_time)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6) RETURNING id",
                )?
                .query_row(params![l.name, l.description, l.color, l.scope.code(), l.scope.project_id(), t], |r| {
                    r.get(0)
                })
                .map_err(|e| on_unique(e, &l.name))?;
            Ok(label_by_id(c, id)?.ok_or_else(|| backend("label row vanished inside its own transaction"))?)
        })
        .await
    }

    async fn label(&self, id: i64) -> StoreResult<Option<Label>> {
        self.readers.run(move |c| label_by_id(c, id)).await
    }

    async fn list_labels(&self, filter: &LabelFilter, page: &Page) -> StoreResult<(Vec<Label>, u64)> {
        let filter = filter.clone();
        let clamp = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        let (limit, offset) = (clamp(page.page_size), clamp(page.offset()));
        self.readers
            .run(move |c| {
                let mut conds = Vec::new();
                let mut args: Vec<Value> = Vec::new();
                if let Some(scope) = filter.scope {
                    args.push(Value::Text(scope.code().into()));
                    conds.push(format!("l.scope = ?{}", args.len()));
                    args.push(Value::Integer(scope.project_id()));
                    conds.push(format!("l.project_id = ?{}", args.len()));
                }
                if let Some(name) = &filter.name {
                    args.push(Value::Text(contains_pattern(name)));
                    conds.push(format!("l.name LIKE ?{} ESCAPE '\\'", args.len()));
                }
                let clause = if conds.is_empty() { String::new() } else { format!(" WHERE {}", conds.join(" AND ")) };
                let total: i64 = c
                    .prepare(&format!("SELECT count(*) FROM labels l{clause}"))?
                    .query_row(params_from_iter(&args), |r| r.get(0))?;
                let n = args.len();
                args.push(Value::Integer(limit));
                args.push(Value::Integer(offset));
                let rows = c
                    .prepare(&format!(
                        "SELECT {COLUMNS} FROM labels l{clause} ORDER BY l.name COLLATE BINARY, l.id LIMIT ?{} OFFSET ?{}",
                        n + 1,
                        n + 2
                    ))?
                    .query_map(params_from_iter(&args), label_row)?
                    .collect::<rusqlite::Result<Vec<_>>>()?;
                let labels = rows.into_iter().map(check_scope).collect::<Result<Vec<_>, _>>()?;
                Ok((labels, to_u64(total, "label count")?))
            })
            .await
    }

    async fn update_label(&self, id: i64, update: &LabelUpdate) -> LabelResult<Label> {
        let u = update.clone();
        self.label_write(move |c| {
            let old = label_by_id(c, id)?.ok_or(Refuse::No(LabelError::NotFound))?;
            let name = u.name.unwrap_or(old.name);
            if name_taken(c, &name, old.scope, id)? {
                return Err(name_conflict(&name));
            }
            c.prepare_cached(
                "UPDATE labels SET name = ?2, description = ?3, color = ?4, update_time = ?5 WHERE id = ?1",
            )?
            .execute(params![
                id,
                name,
                u.description.unwrap_or(old.description),
                u.color.unwrap_or(old.color),
                now().max(old.update_time)
            ])
            .map_err(|e| on_unique(e, &name))?;
            Ok(label_by_id(c, id)?.ok_or_else(|| backend("label row vanished inside its own transaction"))?)
        })
        .await
    }

    async fn delete_label(&self, id: i64) -> LabelResult<()> {
        self.label_write(move |c| {
            // Explicitly, so that detaching does not depend on foreign keys being enforced.
            c.prepare_cached("DELETE FROM label_references WHERE label_id = ?1")?.execute([id])?;
            match c.prepare_cached("DELETE FROM labels WHERE id = ?1")?.execute([id])? {
                0 => Err(Refuse::No(LabelError::NotFound)),
                _ => Ok(()),
            }
        })
        .await
    }

    async fn attach_label(&self, repo: &RepoName, digest: &Digest, label_id: i64) -> LabelResult<()> {
        let (r, d) = (repo.as_str().to_owned(), digest.to_string());
        self.label_write(move |c| {
            let m = manifest_id(c, &r, &d)?.ok_or(Refuse::No(LabelError::NotFound))?;
            if label_by_id(c, label_id)?.is_none() {
                return Err(Refuse::No(LabelError::NotFound));
            }
            let n = c
                .prepare_cached(
                    "INSERT INTO label_references (label_id, manifest_id, created_at) VALUES (?1, ?2, ?3)
                     ON CONFLICT (label_id, manifest_id) DO NOTHING",
                )?
                .execute(params![label_id, m, now()])?;
            if n == 0 {
                return Err(Refuse::No(LabelError::Conflict { field: "label", value: label_id.to_string() }));
            }
            Ok(())
        })
        .await
    }

    async fn detach_label(&self, repo: &RepoName, digest: &Digest, label_id: i64) -> LabelResult<()> {
        let (r, d) = (repo.as_str().to_owned(), digest.to_string());
        self.label_write(move |c| {
            let m = manifest_id(c, &r, &d)?.ok_or(Refuse::No(LabelError::NotFound))?;
            match c
                .prepare_cached("DELETE FROM label_references WHERE label_id = ?1 AND manifest_id = ?2")?
                .execute(params![label_id, m])?
            {
                0 => Err(Refuse::No(LabelError::NotFound)),
                _ => Ok(()),
            }
        })
        .await
    }

    async fn labels_of(&self, repo: &RepoName, digest: &Digest) -> StoreResult<Vec<Label>> {
        let (r, d) = (repo.as_str().to_owned(), digest.to_string());
        self.readers
            .run(move |c| {
                let Some(m) = manifest_id(c, &r, &d)? else { return Ok(Vec::new()) };
                let rows = c
                    .prepare_cached(&format!(
                        "SELECT {COLUMNS} FROM label_references lr JOIN labels l ON l.id = lr.label_id
                          WHERE lr.manifest_id = ?1 ORDER BY lr.created_at, l.id"
                    ))?
                    .query_map([m], label_row)?
                    .collect::<rusqlite::Result<Vec<_>>>()?;
                rows.into_iter().map(check_scope).collect()
            })
            .await
    }
}
