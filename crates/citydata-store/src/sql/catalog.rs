//! Resources, their revisions and the catalog change log.

use super::{Cols, Db, SqlBackend, SqlRow, Stmt, foreign_key, json_text, sql, unique};
use crate::{CatalogChange, ResourceFilter, ResourceStore, Result, RevisionAction, RevisionRecord, StoreError};
use async_trait::async_trait;
use citydata_domain::resource::{Audience, Resource};
use uuid::Uuid;

fn resource<R: SqlRow>(r: &Cols<'_, R>) -> Result<Resource> {
    r.json("doc")
}

fn revision<R: SqlRow>(r: &Cols<'_, R>) -> Result<RevisionRecord> {
    Ok(RevisionRecord {
        resource_id: r.uuid("resource_id")?,
        revision: r.i64("revision")?,
        at: r.time("at")?,
        actor: r.text("actor")?,
        action: r.state("action", RevisionAction::parse)?,
        changes: r.json("changes")?,
    })
}

fn change<R: SqlRow>(r: &Cols<'_, R>) -> Result<CatalogChange> {
    Ok(CatalogChange { seq: r.i64("seq")?, resource_id: r.uuid("resource_id")? })
}

/// The region codes as `,321200,321202,` (a region filter looks for `,code,`).
fn regions(r: &Resource) -> String {
    let mut s = String::from(",");
    for c in &r.content.regions {
        s.push_str(c.as_str());
        s.push(',');
    }
    s
}

fn unique_conflict(e: &sqlx::Error, r: &Resource) -> Option<StoreError> {
    if !unique(e) {
        return None;
    }
    Some(if e.to_string().contains("slug") {
        StoreError::Conflict(format!("slug {}", r.content.slug.as_str()))
    } else {
        StoreError::Conflict(format!("resource code {}", r.content.code))
    })
}

/// The indexed columns and the document, in the order of `COLUMNS`.
fn bind_columns(q: Stmt, r: &Resource) -> Result<Stmt> {
    let c = &r.content;
    Ok(q.bind(c.code.as_str())
        .bind(c.slug.as_str())
        .bind(&c.name)
        .bind(c.classification.class.as_str())
        .bind(&c.classification.theme)
        .bind(c.share.kind.as_str())
        .bind(c.open.kind.as_str())
        .bind(c.update_cycle.as_str())
        .bind(r.state.as_str())
        .bind(c.security_level.as_str())
        .bind(regions(r))
        .bind(r.revision)
        .bind(r.updated_at)
        .bind(serde_json::to_string(r).map_err(|e| StoreError::backend(format!("resource document: {e}")))?))
}

async fn insert_revision<B: SqlBackend>(b: &B, tx: &mut B::Tx, rev: &RevisionRecord) -> Result<()> {
    let q = sql("INSERT INTO resource_revisions (resource_id, revision, at, actor, action, changes) \
                 VALUES ($1, $2, $3, $4, $5, $6)")
    .bind(rev.resource_id)
    .bind(rev.revision)
    .bind(rev.at)
    .bind(&rev.actor)
    .bind(rev.action.as_str())
    .bind(json_text(&rev.changes)?);
    b.tx_run(tx, q).await.map(drop)
}

pub(super) async fn record_change<B: SqlBackend>(b: &B, tx: &mut B::Tx, id: Uuid) -> Result<()> {
    let q = sql("INSERT INTO catalog_changes (resource_id, at) VALUES ($1, $2)").bind(id).bind(chrono::Utc::now());
    b.tx_run(tx, q).await.map(drop)
}

fn filter<B: SqlBackend>(q: &mut Stmt, f: &ResourceFilter) {
    q.push(" WHERE 1=1");
    match &f.audience {
        Audience::Platform => {}
        Audience::Public => {
            q.push(" AND state = 'published' AND open_type <> 'none'");
        }
        Audience::Government { departments } => {
            q.push(" AND (state = 'published'");
            for d in departments {
                q.push(" OR provider = ").push_bind(d.to_string());
            }
            q.push(")");
        }
    }
    for (col, v) in [
        ("provider", &f.provider),
        ("theme", &f.theme),
        ("class", &f.class),
        ("share_type", &f.share),
        ("open_type", &f.open),
        ("update_cycle", &f.cycle),
        ("state", &f.state),
        ("code", &f.code),
    ] {
        if let Some(v) = v {
            q.push(&format!(" AND {col} = ")).push_bind(v);
        }
    }
    if let Some(r) = &f.region {
        q.push(&format!(" AND {}(regions, ", B::STRPOS)).push_bind(format!(",{r},")).push(") > 0");
    }
}

#[async_trait]
impl<B: SqlBackend> ResourceStore for B {
    async fn insert_resource(&self, r: &Resource, rev: &RevisionRecord) -> Result<()> {
        let mut tx = self.tx_begin().await?;
        let q =
            sql("INSERT INTO resources (code, slug, name, class, theme, share_type, open_type, update_cycle, state, \
                     security_level, regions, revision, updated_at, doc, id, provider, created_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)");
        let q = bind_columns(q, r)?.bind(r.id).bind(r.content.provider.as_str()).bind(r.created_at);
        if let Err(e) = self.execute(Some(&mut tx), q).await {
            if let Some(c) = unique_conflict(&e, r) {
                return Err(c);
            }
            if foreign_key(&e) {
                return Err(StoreError::NotFound(format!("department {}", r.content.provider)));
            }
            return Err(B::error(e));
        }
        insert_revision(self, &mut tx, rev).await?;
        record_change(self, &mut tx, r.id).await?;
        self.tx_commit(tx).await
    }

    async fn update_resource(&self, r: &Resource, rev: &RevisionRecord) -> Result<()> {
        let mut tx = self.tx_begin().await?;
        let q = sql("UPDATE resources SET code = $1, slug = $2, name = $3, class = $4, theme = $5, share_type = $6, \
                     open_type = $7, update_cycle = $8, state = $9, security_level = $10, regions = $11, revision = $12, \
                     updated_at = $13, doc = $14 WHERE id = $15 AND revision = $16");
        let q = bind_columns(q, r)?.bind(r.id).bind(r.revision - 1);
        match self.execute(Some(&mut tx), q).await {
            Ok(1) => {}
            Ok(_) => return Err(StoreError::Conflict(format!("resource {} was changed by someone else", r.id))),
            Err(e) => return Err(unique_conflict(&e, r).unwrap_or_else(|| B::error(e))),
        }
        insert_revision(self, &mut tx, rev).await?;
        record_change(self, &mut tx, r.id).await?;
        self.tx_commit(tx).await
    }

    async fn get_resource(&self, id: Uuid) -> Result<Option<Resource>> {
        self.map_one(sql("SELECT doc FROM resources WHERE id = $1").bind(id), "resources", resource).await
    }

    async fn find_resource(&self, key: &str) -> Result<Option<Resource>> {
        // A key is an id only in the canonical (lower-case, hyphenated) form ids are stored in.
        let id = Uuid::parse_str(key).ok().filter(|u| u.to_string() == key.to_ascii_lowercase());
        let q = sql("SELECT doc FROM resources WHERE id = $1 OR code = $2 OR slug = $3 LIMIT 1")
            .bind(id)
            .bind(key)
            .bind(key);
        self.map_one(q, "resources", resource).await
    }

    async fn list_resources(&self, f: &ResourceFilter, limit: u32, offset: u64) -> Result<Vec<Resource>> {
        let mut q = sql("SELECT doc FROM resources");
        filter::<B>(&mut q, f);
        q.push(" ORDER BY updated_at DESC, code LIMIT ")
            .push_bind(i64::from(limit))
            .push(" OFFSET ")
            .push_bind(offset as i64);
        self.map(q, "resources", resource).await
    }

    async fn count_resources(&self, f: &ResourceFilter) -> Result<u64> {
        let mut q = sql("SELECT COUNT(*) AS n FROM resources");
        filter::<B>(&mut q, f);
        Ok(self.count(q, "resources").await? as u64)
    }

    async fn delete_resource(&self, id: Uuid) -> Result<bool> {
        let mut tx = self.tx_begin().await?;
        let n = self.tx_run(&mut tx, sql("DELETE FROM resources WHERE id = $1").bind(id)).await?;
        if n == 1 {
            record_change(self, &mut tx, id).await?;
        }
        self.tx_commit(tx).await?;
        Ok(n == 1)
    }

    async fn list_revisions(&self, id: Uuid) -> Result<Vec<RevisionRecord>> {
        let q = sql("SELECT * FROM resource_revisions WHERE resource_id = $1 ORDER BY revision").bind(id);
        self.map(q, "resource_revisions", revision).await
    }

    async fn max_code_sequence(&self, prefix: &str) -> Result<u32> {
        // The highest code of the prefix, found by the database (the longest, then the
        // greatest: sequences are zero-padded to six digits and longer past 999999). Fetching
        // every code of the prefix made each creation cost as much as the prefix had entries.
        let q = sql("SELECT code FROM resources WHERE substr(code, 1, $1) = $2 \
                     ORDER BY length(code) DESC, code DESC LIMIT 1")
        .bind(i32::try_from(prefix.len() + 1).unwrap_or(i32::MAX))
        .bind(format!("{prefix}/"));
        let codes = self.map(q, "resources", |r| r.text("code")).await?;
        Ok(codes.iter().filter_map(|c| c.split_once('/')?.1.parse::<u32>().ok()).max().unwrap_or(0))
    }

    async fn slug_taken(&self, slug: &str) -> Result<bool> {
        Ok(self.count(sql("SELECT COUNT(*) AS n FROM resources WHERE slug = $1").bind(slug), "resources").await? > 0)
    }

    async fn catalog_changes_after(&self, seq: i64, limit: u32) -> Result<Vec<CatalogChange>> {
        let q = sql("SELECT seq, resource_id FROM catalog_changes WHERE seq > $1 ORDER BY seq LIMIT $2")
            .bind(seq)
            .bind(i64::from(limit));
        self.map(q, "catalog_changes", change).await
    }

    async fn last_catalog_change(&self) -> Result<i64> {
        let q = sql("SELECT COALESCE(MAX(seq), 0) AS n FROM catalog_changes");
        self.count(q, "catalog_changes").await
    }
}
