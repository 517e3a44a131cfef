//! Files of resources. A new version is `MAX(version) + 1` of its name in the same statement;
//! two uploads racing for one number meet the unique key and the loser retries.

use super::{Cols, Db, SqlBackend, SqlRow, sql, unique};
use crate::{FileRecord, FileStore, Result, StoreError};
use async_trait::async_trait;
use uuid::Uuid;

fn file<R: SqlRow>(r: &Cols<'_, R>) -> Result<FileRecord> {
    Ok(FileRecord {
        id: r.uuid("id")?,
        resource_id: r.uuid("resource_id")?,
        name: r.text("name")?,
        version: r.i32("version")?,
        sha256: r.text("sha256")?,
        size: r.i64("size")?,
        kind: r.text("kind")?,
        description: r.opt_text("description")?,
        deidentified: r.flag("deidentified")?,
        uploaded_by: r.text("uploaded_by")?,
        created_at: r.time("created_at")?,
    })
}

#[async_trait]
impl<B: SqlBackend> FileStore for B {
    async fn insert_file(&self, f: &FileRecord) -> Result<i32> {
        for _ in 0..5 {
            let q =
                sql("INSERT INTO resource_files (id, resource_id, name, version, sha256, size, kind, description, \
                         deidentified, uploaded_by, created_at) \
                         SELECT $1, $2, $3, COALESCE(MAX(version), 0) + 1, $4, $5, $6, $7, $8, $9, $10 \
                         FROM resource_files WHERE resource_id = $2 AND name = $3")
                .bind(f.id)
                .bind(f.resource_id)
                .bind(&f.name)
                .bind(&f.sha256)
                .bind(f.size)
                .bind(&f.kind)
                .bind(&f.description)
                .bind(f.deidentified)
                .bind(&f.uploaded_by)
                .bind(f.created_at);
            match self.execute(None, q).await {
                Ok(_) => {
                    let got = self.get_file(f.resource_id, f.id).await?;
                    return got
                        .map(|g| g.version)
                        .ok_or_else(|| StoreError::Corrupt("resource_files: inserted row not found".into()));
                }
                Err(e) if unique(&e) => continue,
                Err(e) => return Err(Self::error(e)),
            }
        }
        Err(StoreError::Conflict(format!("file {}", f.name)))
    }

    async fn list_files(&self, resource_id: Uuid) -> Result<Vec<FileRecord>> {
        let q =
            sql("SELECT * FROM resource_files WHERE resource_id = $1 ORDER BY name, version DESC").bind(resource_id);
        self.map(q, "resource_files", file).await
    }

    async fn get_file(&self, resource_id: Uuid, id: Uuid) -> Result<Option<FileRecord>> {
        let q = sql("SELECT * FROM resource_files WHERE resource_id = $1 AND id = $2").bind(resource_id).bind(id);
        self.map_one(q, "resource_files", file).await
    }

    async fn delete_file(&self, resource_id: Uuid, id: Uuid) -> Result<bool> {
        let q = sql("DELETE FROM resource_files WHERE resource_id = $1 AND id = $2").bind(resource_id).bind(id);
        Ok(self.run(q).await? > 0)
    }

    async fn count_blob_refs(&self, sha256: &str) -> Result<i64> {
        self.count(sql("SELECT COUNT(*) AS n FROM resource_files WHERE sha256 = $1").bind(sha256), "resource_files")
            .await
    }
}
