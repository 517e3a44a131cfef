//! `ResourceStore` on SQLite.

use crate::{SqliteStore, backend, from_micros, is_kind, micros, uuid};
use async_trait::async_trait;
use citydata_domain::resource::{Audience, Resource};
use citydata_store::{CatalogChange, ResourceFilter, ResourceStore, Result, RevisionRecord, StoreError};
use sqlx::sqlite::SqliteRow;
use sqlx::{QueryBuilder, Row, Sqlite, SqliteConnection};
use uuid::Uuid;

fn doc(r: &Resource) -> Result<String> {
    serde_json::to_string(r).map_err(|e| StoreError::Corrupt(e.to_string()))
}

fn from_doc(row: &SqliteRow) -> Result<Resource> {
    let d: String = row.get("doc");
    serde_json::from_str(&d).map_err(|e| StoreError::Corrupt(format!("resource document: {e}")))
}

fn regions(r: &Resource) -> String {
    let mut s = String::from(",");
    for c in &r.content.regions {
        s.push_str(c.as_str());
        s.push(',');
    }
    s
}

fn unique_conflict(e: &sqlx::Error, r: &Resource) -> Option<StoreError> {
    if !is_kind(e, sqlx::error::ErrorKind::UniqueViolation) {
        return None;
    }
    let msg = e.to_string();
    Some(if msg.contains("slug") {
        StoreError::Conflict(format!("slug {}", r.content.slug.as_str()))
    } else {
        StoreError::Conflict(format!("resource code {}", r.content.code))
    })
}

async fn insert_revision(conn: &mut SqliteConnection, rev: &RevisionRecord) -> Result<()> {
    sqlx::query(
        "INSERT INTO resource_revisions (resource_id, revision, at, actor, action, changes) VALUES (?, ?, ?, ?, ?, ?)",
    )
    .bind(rev.resource_id.to_string())
    .bind(rev.revision)
    .bind(micros(rev.at))
    .bind(&rev.actor)
    .bind(&rev.action)
    .bind(serde_json::to_string(&rev.changes).unwrap_or_else(|_| "[]".into()))
    .execute(&mut *conn)
    .await
    .map_err(backend)?;
    Ok(())
}

async fn record_change(conn: &mut SqliteConnection, id: Uuid) -> Result<()> {
    sqlx::query("INSERT INTO catalog_changes (resource_id, at) VALUES (?, ?)")
        .bind(id.to_string())
        .bind(micros(chrono::Utc::now()))
        .execute(&mut *conn)
        .await
        .map_err(backend)?;
    Ok(())
}

fn push_filter(q: &mut QueryBuilder<'_, Sqlite>, f: &ResourceFilter) {
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
            q.push(format!(" AND {col} = ")).push_bind(v.clone());
        }
    }
    if let Some(r) = &f.region {
        q.push(" AND instr(regions, ").push_bind(format!(",{r},")).push(") > 0");
    }
}

#[async_trait]
impl ResourceStore for SqliteStore {
    async fn insert_resource(&self, r: &Resource, rev: &RevisionRecord) -> Result<()> {
        let c = &r.content;
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await.map_err(backend)?;
        let res = sqlx::query(
            "INSERT INTO resources (id, code, slug, name, provider, class, theme, share_type, open_type, update_cycle, state, \
             security_level, regions, revision, created_at, updated_at, doc) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(r.id.to_string())
        .bind(c.code.as_str())
        .bind(c.slug.as_str())
        .bind(&c.name)
        .bind(c.provider.as_str())
        .bind(c.classification.class.as_str())
        .bind(&c.classification.theme)
        .bind(c.share.kind.as_str())
        .bind(c.open.kind.as_str())
        .bind(c.update_cycle.as_str())
        .bind(r.state.as_str())
        .bind(c.security_level.as_str())
        .bind(regions(r))
        .bind(r.revision)
        .bind(micros(r.created_at))
        .bind(micros(r.updated_at))
        .bind(doc(r)?)
        .execute(&mut *tx)
        .await;
        if let Err(e) = res {
            if let Some(c) = unique_conflict(&e, r) {
                return Err(c);
            }
            if is_kind(&e, sqlx::error::ErrorKind::ForeignKeyViolation) {
                return Err(StoreError::NotFound(format!("department {}", c.provider)));
            }
            return Err(backend(e));
        }
        insert_revision(&mut tx, rev).await?;
        record_change(&mut tx, r.id).await?;
        tx.commit().await.map_err(backend)
    }

    async fn update_resource(&self, r: &Resource, rev: &RevisionRecord) -> Result<()> {
        let c = &r.content;
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await.map_err(backend)?;
        let res = sqlx::query(
            "UPDATE resources SET code = ?, slug = ?, name = ?, class = ?, theme = ?, share_type = ?, open_type = ?, \
             update_cycle = ?, state = ?, security_level = ?, regions = ?, revision = ?, updated_at = ?, doc = ? \
             WHERE id = ? AND revision = ?",
        )
        .bind(c.code.as_str())
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
        .bind(micros(r.updated_at))
        .bind(doc(r)?)
        .bind(r.id.to_string())
        .bind(r.revision - 1)
        .execute(&mut *tx)
        .await;
        match res {
            Ok(done) if done.rows_affected() == 1 => {}
            Ok(_) => return Err(StoreError::Conflict(format!("resource {} was changed by someone else", r.id))),
            Err(e) => return Err(unique_conflict(&e, r).unwrap_or_else(|| backend(e))),
        }
        insert_revision(&mut tx, rev).await?;
        record_change(&mut tx, r.id).await?;
        tx.commit().await.map_err(backend)
    }

    async fn get_resource(&self, id: Uuid) -> Result<Option<Resource>> {
        let row = sqlx::query("SELECT doc FROM resources WHERE id = ?")
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await
            .map_err(backend)?;
        row.as_ref().map(from_doc).transpose()
    }

    async fn find_resource(&self, key: &str) -> Result<Option<Resource>> {
        let row = sqlx::query("SELECT doc FROM resources WHERE id = ? OR code = ? OR slug = ? LIMIT 1")
            .bind(key.to_ascii_lowercase())
            .bind(key)
            .bind(key)
            .fetch_optional(&self.pool)
            .await
            .map_err(backend)?;
        row.as_ref().map(from_doc).transpose()
    }

    async fn list_resources(&self, f: &ResourceFilter, limit: u32, offset: u64) -> Result<Vec<Resource>> {
        let mut q = QueryBuilder::<Sqlite>::new("SELECT doc FROM resources");
        push_filter(&mut q, f);
        q.push(" ORDER BY updated_at DESC, code LIMIT ")
            .push_bind(i64::from(limit))
            .push(" OFFSET ")
            .push_bind(offset as i64);
        let rows = q.build().fetch_all(&self.pool).await.map_err(backend)?;
        rows.iter().map(from_doc).collect()
    }

    async fn count_resources(&self, f: &ResourceFilter) -> Result<u64> {
        let mut q = QueryBuilder::<Sqlite>::new("SELECT COUNT(*) AS n FROM resources");
        push_filter(&mut q, f);
        let row = q.build().fetch_one(&self.pool).await.map_err(backend)?;
        Ok(row.get::<i64, _>("n") as u64)
    }

    async fn delete_resource(&self, id: Uuid) -> Result<bool> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await.map_err(backend)?;
        let n = sqlx::query("DELETE FROM resources WHERE id = ?")
            .bind(id.to_string())
            .execute(&mut *tx)
            .await
            .map_err(backend)?
            .rows_affected();
        if n == 1 {
            record_change(&mut tx, id).await?;
        }
        tx.commit().await.map_err(backend)?;
        Ok(n == 1)
    }

    async fn list_revisions(&self, id: Uuid) -> Result<Vec<RevisionRecord>> {
        let rows = sqlx::query("SELECT * FROM resource_revisions WHERE resource_id = ? ORDER BY revision")
            .bind(id.to_string())
            .fetch_all(&self.pool)
            .await
            .map_err(backend)?;
        rows.iter()
            .map(|r| {
                let changes: String = r.get("changes");
                Ok(RevisionRecord {
                    resource_id: uuid(r.get("resource_id"))?,
                    revision: r.get("revision"),
                    at: from_micros(r.get("at"))?,
                    actor: r.get("actor"),
                    action: r.get("action"),
                    changes: serde_json::from_str(&changes).map_err(|e| StoreError::Corrupt(e.to_string()))?,
                })
            })
            .collect()
    }

    async fn max_code_sequence(&self, prefix: &str) -> Result<u32> {
        let codes: Vec<String> = sqlx::query_scalar("SELECT code FROM resources WHERE substr(code, 1, ?) = ?")
            .bind(prefix.len() as i64 + 1)
            .bind(format!("{prefix}/"))
            .fetch_all(&self.pool)
            .await
            .map_err(backend)?;
        Ok(codes.iter().filter_map(|c| c.split_once('/')?.1.parse::<u32>().ok()).max().unwrap_or(0))
    }

    async fn slug_taken(&self, slug: &str) -> Result<bool> {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM resources WHERE slug = ?")
            .bind(slug)
            .fetch_one(&self.pool)
            .await
            .map_err(backend)?;
        Ok(n > 0)
    }

    async fn catalog_changes_after(&self, seq: i64, limit: u32) -> Result<Vec<CatalogChange>> {
        let rows = sqlx::query("SELECT seq, resource_id FROM catalog_changes WHERE seq > ? ORDER BY seq LIMIT ?")
            .bind(seq)
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await
            .map_err(backend)?;
        rows.iter().map(|r| Ok(CatalogChange { seq: r.get("seq"), resource_id: uuid(r.get("resource_id"))? })).collect()
    }

    async fn last_catalog_change(&self) -> Result<i64> {
        let n: Option<i64> =
            sqlx::query_scalar("SELECT MAX(seq) FROM catalog_changes").fetch_one(&self.pool).await.map_err(backend)?;
        Ok(n.unwrap_or(0))
    }
}
