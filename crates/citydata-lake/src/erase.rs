//! 擦除 (erasure) and table versions: making removed rows unrecoverable, and answering a
//! `version=` that does not exist or was erased with a clean error instead of the engine's.
//!
//! A Delta table keeps every old version readable: a delete commit only marks files removed,
//! the change data feed keeps the removed rows under `_change_data/`, and the commit log keeps
//! per-file column statistics (minimum and maximum values) of every file ever added. Erasure
//! after a `delete` or `replace` commit therefore
//! 1. vacuums every file the current version does not reference, with retention zero;
//! 2. deletes every file under `_change_data/` (the change feed of all earlier versions);
//! 3. records the marker `citydata.erasedBefore = P` as a table property in commit `P`;
//! 4. writes a checkpoint at `P` and deletes the commit log before `P`.
//!
//! Versions before `P` then answer [`LakeError::VersionErased`], and the change feed only
//! starts at `P`. Nothing of the removed rows is left under the table's directory.

use crate::error::{LakeError, Result};
use crate::table::Lake;
use deltalake::DeltaTable;
use futures::TryStreamExt;
use object_store::{ObjectStore, ObjectStoreExt};
use serde::Serialize;
use std::collections::HashMap;
use uuid::Uuid;

/// The table property holding the first version that survived an erasure.
pub const ERASED_BEFORE: &str = "citydata.erasedBefore";

/// What an erasure did: counts only, never a value.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct EraseReport {
    /// Data files no longer referenced by the current version, deleted.
    pub files_vacuumed: usize,
    /// Change data feed files deleted.
    pub change_files_removed: usize,
    /// Commit log files deleted (the history before the marker).
    pub log_files_removed: usize,
    /// Versions before this one are gone (`None` when the table had no version).
    pub erased_before: Option<i64>,
    /// Files of shared copies (Delta Sharing) deleted.
    pub shared_files_removed: usize,
}

/// The erasure marker of a loaded table (read it from the newest version).
pub fn erased_before_of(table: &DeltaTable) -> Option<i64> {
    let snapshot = table.snapshot().ok()?;
    snapshot.metadata().configuration().get(ERASED_BEFORE).and_then(|v| v.parse().ok())
}

/// Is `v` a version of `table` (loaded at its newest version) that may be read?
pub fn version_ok(table: &DeltaTable, v: i64) -> Result<()> {
    if v < 0 {
        return Err(LakeError::InvalidVersion(v));
    }
    let erased = erased_before_of(table);
    if let Some(e) = erased
        && v < e
    {
        return Err(LakeError::VersionErased { asked: v, erased_before: e });
    }
    let latest = table.version().map(|l| l as i64);
    match latest {
        Some(l) if v <= l => Ok(()),
        _ => Err(LakeError::VersionNotFound { asked: v, earliest: erased.unwrap_or(0), latest }),
    }
}

/// Load version `v` of `table` (loaded at its newest version), checking it first. A version in
/// range whose log cannot be read answers `VersionNotFound`; the engine's text goes to the log.
pub async fn load_checked(table: &mut DeltaTable, v: i64) -> Result<()> {
    version_ok(table, v)?;
    let (earliest, latest) = (erased_before_of(table).unwrap_or(0), table.version().map(|l| l as i64));
    if let Err(e) = table.load_version(v as u64).await {
        tracing::error!(error = %e, version = v, "loading a table version failed");
        return Err(LakeError::VersionNotFound { asked: v, earliest, latest });
    }
    Ok(())
}

impl Lake {
    /// The first version that survived an erasure of the resource's table, if it was erased.
    /// Reads of `version=` and `since_version=` below it must answer `version_erased`.
    pub async fn erased_before(&self, id: Uuid) -> Result<Option<i64>> {
        let t = self.open(self.table_url(id)?).await?;
        Ok(erased_before_of(&t))
    }

    /// `Ok` when version `v` of the resource's table exists and may be read; else
    /// `InvalidVersion` (negative), `VersionErased` or `VersionNotFound` (naming the versions
    /// that exist). Call it before a time-travel read.
    pub async fn check_version(&self, id: Uuid, v: i64) -> Result<()> {
        let t = self.open(self.table_url(id)?).await?;
        version_ok(&t, v)
    }

    /// Make rows removed by earlier commits unrecoverable (see the module documentation).
    pub async fn erase(&self, id: Uuid) -> Result<EraseReport> {
        let table = self.open(self.table_url(id)?).await?;
        if table.version().is_none() {
            return Ok(EraseReport::default());
        }
        // 1. Every file the current version does not reference.
        let (table, metrics) = table
            .vacuum()
            .with_retention_period(chrono::Duration::zero())
            .with_enforce_retention_duration(false)
            .await?;
        let mut report = EraseReport { files_vacuumed: metrics.files_deleted.len(), ..Default::default() };
        // 2. The change data feed (vacuum keeps the files the log still names).
        let store = table.object_store();
        let prefix = deltalake::Path::from("_change_data");
        let cdc: Vec<_> = store.list(Some(&prefix)).map_ok(|m| m.location).try_collect().await.map_err(other)?;
        for path in &cdc {
            store.delete(path).await.map_err(other)?;
        }
        report.change_files_removed = cdc.len();
        // 3. The marker, in its own commit P.
        let marker = table.version().map(|v| v as i64 + 1).unwrap_or(0);
        let table = table
            .set_tbl_properties()
            .with_properties(HashMap::from([(ERASED_BEFORE.to_string(), marker.to_string())]))
            .with_raise_if_not_exists(false)
            .await?;
        let p = table.version().map(|v| v as i64).unwrap_or(marker);
        if p != marker {
            // Another writer committed in between: the marker must name our commit.
            return Err(LakeError::Other(format!("erasure raced with a write (expected version {marker}, got {p})")));
        }
        // 4. A checkpoint at P, then the log before it.
        deltalake::checkpoints::create_checkpoint(&table, None).await?;
        let cutoff = chrono::Utc::now().timestamp_millis() + 60_000;
        report.log_files_removed =
            deltalake::checkpoints::cleanup_expired_logs_for(p as u64, table.log_store().as_ref(), cutoff, None)
                .await?;
        report.erased_before = Some(p);
        // 5. Every shared copy (Delta Sharing's materialized tables and change files): they may
        // hold the erased rows; the next query materializes what remains.
        report.shared_files_removed = self.drop_shared(id, "").await?;
        Ok(report)
    }
}

fn other(e: impl std::fmt::Display) -> LakeError {
    LakeError::Other(e.to_string())
}
