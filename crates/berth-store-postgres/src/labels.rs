//! [`LabelStore`] on the same database (tables `labels`, `label_references`).
//!
//! A label's name is unique per scope by constraint, so a rename or create racing
//! another still ends in the `name` conflict; attachments go away with their manifest or
//! label by foreign key cascade, and an attachment whose label or manifest is deleted
//! concurrently fails its foreign key, rolls back and runs again (finding `NotFound`).
//!
//! Retried after a lost connection (see `pool.rs`): reads and `update_label`. Creating,
//! deleting, attaching and detaching answer differently the second time and are not.

use async_trait::async_trait;
use berth_core::store::StoreResult;
use berth_core::store::identity::Page;
use berth_core::store::labels::{
    Label, LabelError, LabelFilter, LabelResult, LabelScope, LabelStore, LabelUpdate, NewLabel,
};
use berth_core::{Digest, RepoName};
use tokio_postgres::Row;

use crate::pool::unique_constraint;
use crate::{Args, Conn, DbErr, Fail, Listing, PgStore, Tx, backend, col, contains_pattern, now};

type Refuse = Fail<LabelError>;

fn name_conflict(name: &str) -> Refuse {
    Fail::No(LabelError::Conflict { field: "name", value: name.to_owned() })
}

/// A unique violation on the label's name (one the check before the write missed) is a
/// conflict; anything else stays a database error.
fn on_unique(e: tokio_postgres::Error, name: &str) -> Refuse {
    if unique_constraint(&e) == Some("labels_name") {
        return name_conflict(name);
    }
    Fail::from(e)
}

const COLUMNS: &str = "l.id, l.name, l.description, l.color, l.scope, l.project_id, l.creation_time, l.update_time";

fn label_row(r: &Row) -> Result<Label, DbErr> {
    let id: i64 = col(r, 0)?;
    let scope: String = col(r, 4)?;
    let scope = match scope.as_str() {
        "g" => LabelScope::Global,
        "p" => LabelScope::Project(col(r, 5)?),
        other => return Err(backend(format!("label {id}: stored scope {other:?} is neither g nor p"))),
    };
    Ok(Label {
        id,
        name: col(r, 1)?,
        description: col(r, 2)?,
        color: col(r, 3)?,
        scope,
        creation_time: col(r, 6)?,
        update_time: col(r, 7)?,
    })
}

async fn label_by_id(c: Conn<'_>, id: i64) -> Result<Option<Label>, DbErr> {
    let row = c.opt(&format!("SELECT {COLUMNS} FROM labels l WHERE l.id = $1"), &[&id]).await?;
    row.map(|r| label_row(&r)).transpose()
}

async fn name_taken(c: Conn<'_>, name: &str, scope: LabelScope, except: i64) -> Result<bool, DbErr> {
    Ok(c.opt(
        "SELECT 1 FROM labels WHERE name = $1 AND scope = $2 AND project_id = $3 AND id <> $4",
        &[&name, &scope.code(), &scope.project_id(), &except],
    )
    .await?
    .is_some())
}

async fn manifest_id(c: Conn<'_>, repo: &str, digest: &str) -> Result<Option<i64>, DbErr> {
    let row = c
        .opt(
            "SELECT m.id FROM manifests m JOIN repositories r ON r.id = m.repository_id
              WHERE r.name = $1 AND m.digest = $2",
            &[&repo, &digest],
        )
        .await?;
    row.map(|r| col(&r, 0)).transpose()
}

fn vanished() -> Refuse {
    Fail::Db(backend("label row vanished inside its own transaction"))
}

#[async_trait]
impl LabelStore for PgStore {
    async fn create_label(&self, l: &NewLabel) -> LabelResult<Label> {
        self.run(Tx::Write, l, |c, l| {
            Box::pin(async move {
                if name_taken(c, &l.name, l.scope, 0).await? {
                    return Err(name_conflict(&l.name));
                }
                let row = c
                    .one_raw(
                        "INSERT INTO labels (name, description, color, scope, project_id, creation_time, update_time)
                         VALUES ($1, $2, $3, $4, $5, $6, $6) RETURNING id",
                        &[&l.name, &l.description, &l.color, &l.scope.code(), &l.scope.project_id(), &now()],
                    )
                    .await
                    .map_err(|e| on_unique(e, &l.name))?;
                label_by_id(c, col(&row, 0)?).await?.ok_or_else(vanished)
            })
        })
        .await
    }

    async fn label(&self, id: i64) -> StoreResult<Option<Label>> {
        self.db(Tx::Read, &id, |c, id| Box::pin(async move { Ok(label_by_id(c, *id).await?) })).await
    }

    async fn list_labels(&self, filter: &LabelFilter, page: &Page) -> StoreResult<(Vec<Label>, u64)> {
        let mut conds = Vec::new();
        let mut args: Args = Vec::new();
        if let Some(scope) = filter.scope {
            args.push(Box::new(scope.code()));
            conds.push(format!("l.scope = ${}", args.len()));
            args.push(Box::new(scope.project_id()));
            conds.push(format!("l.project_id = ${}", args.len()));
        }
        if let Some(name) = &filter.name {
            args.push(Box::new(contains_pattern(name)));
            conds.push(format!("l.name ILIKE ${}", args.len()));
        }
        let listing =
            Listing::new(&format!("SELECT {COLUMNS} FROM labels l"), "labels l", &conds, "l.name, l.id", args, page);
        self.db(Tx::Read, &listing, |c, listing| {
            Box::pin(async move {
                let (rows, total) = listing.run(c).await?;
                Ok((rows.iter().map(label_row).collect::<Result<_, _>>()?, total))
            })
        })
        .await
    }

    async fn update_label(&self, id: i64, update: &LabelUpdate) -> LabelResult<Label> {
        self.run(Tx::Idempotent, &(id, update), |c, (id, u)| {
            Box::pin(async move {
                let old = label_by_id(c, *id).await?.ok_or(Fail::No(LabelError::NotFound))?;
                let name = u.name.clone().unwrap_or(old.name);
                if name_taken(c, &name, old.scope, *id).await? {
                    return Err(name_conflict(&name));
                }
                c.exec_raw(
                    "UPDATE labels SET name = $2, description = $3, color = $4, update_time = $5 WHERE id = $1",
                    &[
                        id,
                        &name,
                        u.description.as_ref().unwrap_or(&old.description),
                        u.color.as_ref().unwrap_or(&old.color),
                        &now().max(old.update_time),
                    ],
                )
                .await
                .map_err(|e| on_unique(e, &name))?;
                label_by_id(c, *id).await?.ok_or_else(vanished)
            })
        })
        .await
    }

    async fn delete_label(&self, id: i64) -> LabelResult<()> {
        self.run(Tx::Write, &id, |c, id| {
            Box::pin(async move {
                // Attachments go by ON DELETE CASCADE.
                match c.exec("DELETE FROM labels WHERE id = $1", &[id]).await? {
                    0 => Err(Fail::No(LabelError::NotFound)),
                    _ => Ok(()),
                }
            })
        })
        .await
    }

    async fn attach_label(&self, repo: &RepoName, digest: &Digest, label_id: i64) -> LabelResult<()> {
        self.run(Tx::Write, &(repo.as_str(), digest.to_string(), label_id), |c, (r, d, label_id)| {
            Box::pin(async move {
                let m = manifest_id(c, r, d).await?.ok_or(Fail::No(LabelError::NotFound))?;
                if label_by_id(c, *label_id).await?.is_none() {
                    return Err(Fail::No(LabelError::NotFound));
                }
                let n = c
                    .exec(
                        "INSERT INTO label_references (label_id, manifest_id, created_at) VALUES ($1, $2, $3)
                         ON CONFLICT (label_id, manifest_id) DO NOTHING",
                        &[label_id, &m, &now()],
                    )
                    .await?;
                if n == 0 {
                    return Err(Fail::No(LabelError::Conflict { field: "label", value: label_id.to_string() }));
                }
                Ok(())
            })
        })
        .await
    }

    async fn detach_label(&self, repo: &RepoName, digest: &Digest, label_id: i64) -> LabelResult<()> {
        self.run(Tx::Write, &(repo.as_str(), digest.to_string(), label_id), |c, (r, d, label_id)| {
            Box::pin(async move {
                let m = manifest_id(c, r, d).await?.ok_or(Fail::No(LabelError::NotFound))?;
                match c
                    .exec("DELETE FROM label_references WHERE label_id = $1 AND manifest_id = $2", &[label_id, &m])
                    .await?
                {
                    0 => Err(Fail::No(LabelError::NotFound)),
                    _ => Ok(()),
                }
            })
        })
        .await
    }

    async fn labels_of(&self, repo: &RepoName, digest: &Digest) -> StoreResult<Vec<Label>> {
        self.db(Tx::Read, &(repo.as_str(), digest.to_string()), |c, (r, d)| {
            Box::pin(async move {
                let Some(m) = manifest_id(c, r, d).await? else { return Ok(Vec::new()) };
                let rows = c
                    .rows(
                        &format!(
                            "SELECT {COLUMNS} FROM label_references lr JOIN labels l ON l.id = lr.label_id
                              WHERE lr.manifest_id = $1 ORDER BY lr.created_at, l.id"
                        ),
                        &[&m],
                    )
                    .await?;
                Ok(rows.iter().map(label_row).collect::<Result<_, _>>()?)
            })
        })
        .await
    }
}
