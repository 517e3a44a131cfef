//! The change feed of a shared table (Delta Sharing `/changes`): the governed changes of a
//! version range (`Lake::changes_governed`, the plan of every governed read: fields, masks and
//! row filters of the caller's grant), written as one Parquet file per commit version beside
//! the shared tables, so that they are served like them (signed or presigned URLs) and dropped
//! with them (grant end, erasure). Each file holds the data columns and `_change_type`; the
//! client adds `_commit_version` and `_commit_timestamp` from the action.

use crate::error::{LakeError, Result};
use crate::governed::GovernedRead;
use crate::table::Lake;
use arrow::array::{Array, Int64Array, RecordBatch};
use citydata_domain::resource::ItemName;
use object_store::path::Path;
use object_store::{ObjectStoreExt, PutPayload};
use std::collections::BTreeMap;
use uuid::Uuid;

/// One change file written for a commit version.
#[derive(Debug, Clone)]
pub struct SharedChangeFile {
    pub version: i64,
    /// `<key>/v<version>.parquet`, under the resource's shared directory.
    pub path: String,
    pub size: i64,
    pub rows: usize,
}

fn other(e: impl std::fmt::Display) -> LakeError {
    LakeError::Other(format!("shared changes: {e}"))
}

impl Lake {
    /// Write the governed changes of versions `start..=end` of table `id` under the shared
    /// directory `key` (one file per version with changes the caller sees). Returns the files
    /// and the version the range ended at; `None` when the table has no version.
    pub async fn write_shared_changes(
        &self,
        id: Uuid,
        key: &str,
        start: i64,
        end: Option<i64>,
        keys: &[ItemName],
        read: &GovernedRead<'_>,
    ) -> Result<Option<(Vec<SharedChangeFile>, i64)>> {
        // `changes_governed` reads the feed after `since`: version `start` on.
        let Some((batches, current)) = self.changes_governed(id, start - 1, end, keys, read).await? else {
            return Ok(None);
        };
        let mut per_version: BTreeMap<i64, Vec<RecordBatch>> = BTreeMap::new();
        for b in batches {
            let Some(i) = b.schema().index_of("_commit_version").ok() else { continue };
            let versions =
                b.column(i).as_any().downcast_ref::<Int64Array>().ok_or_else(|| other("_commit_version type"))?;
            let distinct: std::collections::BTreeSet<i64> =
                (0..versions.len()).filter(|r| !versions.is_null(*r)).map(|r| versions.value(r)).collect();
            let keep: Vec<usize> = (0..b.num_columns()).filter(|c| *c != i).collect();
            for v in distinct {
                let mask = arrow::compute::kernels::cmp::eq(versions, &Int64Array::new_scalar(v))?;
                let part = arrow::compute::filter_record_batch(&b, &mask)?.project(&keep)?;
                per_version.entry(v).or_default().push(part);
            }
        }
        let root = self.shared_root(id)?;
        if root.scheme() == "file"
            && let Ok(p) = root.to_file_path()
        {
            std::fs::create_dir_all(p)?;
        }
        let store = deltalake::logstore::store_for(&root, self.storage_options())?;
        let mut out = Vec::new();
        for (version, parts) in per_version {
            let schema = parts[0].schema();
            let mut buf = Vec::new();
            let mut w = parquet::arrow::ArrowWriter::try_new(&mut buf, schema, None)?;
            let mut rows = 0;
            for p in &parts {
                rows += p.num_rows();
                w.write(p)?;
            }
            w.close()?;
            let path = format!("{key}/v{version}.parquet");
            let size = buf.len() as i64;
            store.put(&Path::from(path.as_str()), PutPayload::from(buf)).await.map_err(other)?;
            out.push(SharedChangeFile { version, path, size, rows });
        }
        Ok(Some((out, current)))
    }
}
