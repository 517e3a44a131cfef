//! 共享表 (shared tables, Delta Sharing): what the gate allows a recipient, as files.
//!
//! The Delta Sharing protocol hands out whole Parquet files, so a recipient can never be given
//! the source table's files (they hold every row and every unmasked value). Instead the
//! governed read — the same [`GovernedRead`] plan `GET .../rows` and exports run: the grant's
//! row filter, the allowed items, the masks — is written once as a Delta table of its own
//! under `sharing/<resource id>/<key>/`, where `key` names the source version and the exact
//! scope ([`Lake::materialize_governed`]). The source table is never touched; a new source
//! version or a different scope is a new key, and [`Lake::drop_shared`] removes them all when
//! a grant ends.
//!
//! Each hand-out of a shared table's files refreshes a marker object `<key>.served` beside it
//! ([`Lake::touch_shared`]); [`Lake::sweep_shared`] removes the tables whose marker (or, before
//! the first hand-out, newest file) is older than a cutoff the caller puts past the longest
//! file URL lifetime, so no URL handed out outlives its files, and superseded versions do not
//! pile up. A table removed while still current is written again on its next use.
//!
//! Timestamps are written as UTC instants (Delta's `timestamp`): governed reads present them
//! in the platform's zone (`+08:00`), which Delta cannot store; the instants are the same.

use crate::error::{LakeError, Result};
use crate::governed::{GovernedPartition, GovernedRead};
use crate::table::{Lake, TARGET_FILE_SIZE};
use arrow::datatypes::{DataType, TimeUnit};
use datafusion::catalog::streaming::StreamingTable;
use datafusion::prelude::SessionContext;
use datafusion::prelude::{cast, ident};
use deltalake::protocol::SaveMode;
use futures::TryStreamExt;
use object_store::{ObjectStore, ObjectStoreExt};
use serde::Serialize;
use std::sync::Arc;
use url::Url;
use uuid::Uuid;

/// One data file of a shared table.
#[derive(Debug, Clone, Serialize)]
pub struct SharedFile {
    /// The path relative to the shared table's root (what a signed URL names).
    pub path: String,
    pub size: i64,
    /// Delta's per-file statistics JSON (`numRecords`, `minValues`, `maxValues`, `nullCount`).
    pub stats: Option<String>,
    pub modification_time: i64,
}

/// A shared table as the protocol describes it.
#[derive(Debug, Clone)]
pub struct SharedTable {
    /// The shared table's Delta id (stable for one key).
    pub table_id: String,
    /// Delta's schema JSON of what the recipient reads.
    pub schema_string: String,
    pub files: Vec<SharedFile>,
    /// The source table version the shared table was written from.
    pub source_version: i64,
}

fn other(e: impl std::fmt::Display) -> LakeError {
    LakeError::Other(e.to_string())
}

/// `true` when `key` may name a shared table or file path segment (no traversal, no separators).
fn safe_segment(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 200
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
        && !s.starts_with('.')
}

impl Lake {
    /// The shared tables of one resource live under this URL.
    pub fn shared_root(&self, id: Uuid) -> Result<Url> {
        self.root().join(&format!("sharing/{id}/")).map_err(other)
    }

    /// The URL of one shared table.
    pub fn shared_url(&self, id: Uuid, key: &str) -> Result<Url> {
        if !safe_segment(key) {
            return Err(LakeError::Other(format!("invalid shared table key {key}")));
        }
        let u = self.root().join(&format!("sharing/{id}/{key}/")).map_err(other)?;
        if u.scheme() == "file"
            && let Ok(p) = u.to_file_path()
        {
            std::fs::create_dir_all(p)?;
        }
        Ok(u)
    }

    /// The governed read `r` of resource `id` as the shared table `key`, written on first use
    /// (a second call with the same key reads what the first wrote; two concurrent first calls
    /// race on Delta's first commit and the loser reads the winner's table). `None` when the
    /// source has no version yet. Callers pin `r.version` (the key names it), which is what
    /// [`SharedTable::source_version`] reports for a table written earlier.
    pub async fn materialize_governed(&self, id: Uuid, key: &str, r: &GovernedRead<'_>) -> Result<Option<SharedTable>> {
        let url = self.shared_url(id, key)?;
        let table = self.open(url.clone()).await?;
        let source_version = if table.version().is_none() {
            let Some((_ctx, df, version)) = self.frame_at(id, r.version).await? else { return Ok(None) };
            let df = self.project(df, r)?;
            // Delta stores instants in UTC only.
            let columns: Vec<_> = df
                .schema()
                .fields()
                .iter()
                .map(|f| match f.data_type() {
                    DataType::Timestamp(_, Some(tz)) if !tz.eq_ignore_ascii_case("utc") => {
                        cast(ident(f.name()), DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())))
                            .alias(f.name())
                    }
                    _ => ident(f.name()),
                })
                .collect();
            let df = df.select(columns)?;
            // The governed plan runs in its own session (its scan, its mask functions); the
            // writer sees only its output, as a stream.
            let schema: arrow::datatypes::SchemaRef = Arc::new(df.schema().as_arrow().clone());
            let part = Arc::new(GovernedPartition { df, schema: schema.clone() });
            let wctx = SessionContext::new();
            wctx.register_table("source", Arc::new(StreamingTable::try_new(schema, vec![part])?))?;
            let plan = wctx.table("source").await?.logical_plan().clone();
            let written = table
                .write(Vec::new())
                .with_input_plan(plan)
                .with_save_mode(SaveMode::ErrorIfExists)
                .with_target_file_size(std::num::NonZeroU64::new(TARGET_FILE_SIZE))
                .await;
            if let Err(e) = written {
                // Someone else wrote the same key first: theirs is the same read.
                let again = self.open(url.clone()).await?;
                if again.version().is_none() {
                    return Err(e.into());
                }
            }
            Some(version)
        } else {
            None
        };
        let mut table = self.open(url).await?;
        table.load().await?;
        let snapshot = table.snapshot()?;
        let meta = snapshot.metadata();
        let source_version = source_version.or(r.version).unwrap_or(0);
        let files = snapshot
            .log_data()
            .iter()
            .map(|f| SharedFile {
                path: f.path().to_string(),
                size: f.size(),
                stats: f.stats(),
                modification_time: f.modification_time(),
            })
            .collect();
        Ok(Some(SharedTable {
            table_id: meta.id().to_string(),
            schema_string: meta.schema_string().clone(),
            files,
            source_version,
        }))
    }

    /// The local path of a shared table's data file, when the lake is a local directory and
    /// the file exists; `None` for anything else (a path that climbs out, another store).
    pub fn shared_file_path(&self, id: Uuid, key: &str, file: &str) -> Option<std::path::PathBuf> {
        if !safe_segment(key) || !file.split('/').all(safe_segment) {
            return None;
        }
        let u = self.root().join(&format!("sharing/{id}/{key}/{file}")).ok()?;
        if u.scheme() != "file" {
            return None;
        }
        let p = u.to_file_path().ok()?;
        p.is_file().then_some(p)
    }

    /// Remove every shared table of resource `id` whose key starts with `prefix` (all of them
    /// when it is empty). Returns the number of files deleted.
    pub async fn drop_shared(&self, id: Uuid, prefix: &str) -> Result<usize> {
        let root = self.shared_root(id)?;
        if root.scheme() == "file"
            && let Ok(p) = root.to_file_path()
        {
            std::fs::create_dir_all(p)?;
        }
        let store = self.open(root.clone()).await?.object_store();
        let files: Vec<_> = store.list(None).map_ok(|m| m.location).try_collect().await.map_err(other)?;
        let mut n = 0;
        for f in files {
            if f.as_ref().starts_with(prefix) {
                store.delete(&f).await.map_err(other)?;
                n += 1;
            }
        }
        if root.scheme() == "file"
            && let Ok(p) = root.to_file_path()
            && let Ok(dirs) = std::fs::read_dir(&p)
        {
            for d in dirs.flatten() {
                if d.file_name().to_string_lossy().starts_with(prefix) {
                    let _ = std::fs::remove_dir_all(d.path());
                }
            }
        }
        Ok(n)
    }

    /// Mark shared table `key` of resource `id` as handed out now.
    pub async fn touch_shared(&self, id: Uuid, key: &str) -> Result<()> {
        if !safe_segment(key) {
            return Err(LakeError::Other(format!("invalid shared table key {key}")));
        }
        let root = self.shared_root(id)?;
        let store = self.open(root).await?.object_store();
        let marker = object_store::path::Path::from(format!("{key}.served"));
        store.put(&marker, object_store::PutPayload::new()).await.map_err(other)?;
        Ok(())
    }

    /// Remove every shared table (of any resource) last handed out — or, never handed out,
    /// last written — before `cutoff`. Returns how many tables were removed.
    pub async fn sweep_shared(&self, cutoff: chrono::DateTime<chrono::Utc>) -> Result<usize> {
        let root = self.root().join("sharing/").map_err(other)?;
        if root.scheme() == "file" {
            match root.to_file_path() {
                Ok(p) if p.is_dir() => {}
                _ => return Ok(0),
            }
        }
        let store = self.open(root).await?.object_store();
        let objects: Vec<object_store::ObjectMeta> = store.list(None).try_collect().await.map_err(other)?;
        // (resource, key) → the newest time it was handed out or written.
        let mut last: std::collections::BTreeMap<(String, String), chrono::DateTime<chrono::Utc>> = Default::default();
        for o in &objects {
            let parts: Vec<&str> = o.location.as_ref().splitn(3, '/').collect();
            let (id, key) = match parts.as_slice() {
                [id, marker] if marker.ends_with(".served") => (*id, marker.trim_end_matches(".served")),
                [id, key, _] => (*id, *key),
                _ => continue,
            };
            let e = last.entry((id.to_string(), key.to_string())).or_insert(o.last_modified);
            *e = (*e).max(o.last_modified);
        }
        let mut removed = 0;
        for ((id, key), at) in last {
            if at >= cutoff {
                continue;
            }
            // Handed out again since the listing: keep it.
            let marker = object_store::path::Path::from(format!("{id}/{key}.served"));
            if let Ok(m) = store.head(&marker).await
                && m.last_modified >= cutoff
            {
                continue;
            }
            let prefix = object_store::path::Path::from(format!("{id}/{key}"));
            let files: Vec<_> = store.list(Some(&prefix)).map_ok(|m| m.location).try_collect().await.map_err(other)?;
            for f in files {
                store.delete(&f).await.map_err(other)?;
            }
            match store.delete(&marker).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(other(e)),
            }
            if let Ok(id) = Uuid::parse_str(&id)
                && let Ok(root) = self.shared_root(id)
                && root.scheme() == "file"
                && let Ok(p) = root.to_file_path()
            {
                let _ = std::fs::remove_dir_all(p.join(&key));
            }
            removed += 1;
        }
        Ok(removed)
    }
}
