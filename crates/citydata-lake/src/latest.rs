//! The latest snapshot of recently read tables, so a read does not replay the Delta log.
//!
//! Opening a table lists its `_delta_log` and reads the checkpoint and the commits after it
//! (several milliseconds and a few dozen file reads for a key lookup that otherwise reads one
//! page). A snapshot loaded once is reused while it is still the newest: Delta versions are
//! consecutive, so the table is still at version `v` exactly when `_delta_log/v.json` exists
//! and `_delta_log/(v+1).json` does not: two `HEAD`s (two `stat`s on a local lake), and
//! correct with several nodes writing, since the check is on the shared storage. A table
//! whose log is gone (the resource was deleted) fails the first check and is opened afresh.

use deltalake::DeltaTable;
use object_store::ObjectStoreExt;
use object_store::path::Path;
use std::collections::HashMap;
use std::sync::Mutex;
use uuid::Uuid;

/// Tables kept; the least recently used is dropped beyond this.
pub const LATEST_SNAPSHOTS: usize = 64;

#[derive(Default)]
pub(crate) struct LatestSnapshots {
    tables: Mutex<HashMap<Uuid, (DeltaTable, u64)>>,
    tick: std::sync::atomic::AtomicU64,
}

impl std::fmt::Debug for LatestSnapshots {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = self.tables.lock().map(|t| t.len()).unwrap_or(0);
        write!(f, "LatestSnapshots({n} tables)")
    }
}

/// `_delta_log/<v, 20 digits>.json`, as delta-rs names commits.
fn commit_path(v: u64) -> Path {
    deltalake::logstore::commit_uri_from_version(Some(v))
}

impl LatestSnapshots {
    /// The cached snapshot of `id` when it is still the table's newest version.
    pub(crate) async fn get(&self, id: Uuid) -> Option<DeltaTable> {
        let table = self.tables.lock().ok()?.get(&id).map(|(t, _)| t.clone())?;
        let v = table.version()?;
        let store = table.log_store().object_store(None);
        let current = store.head(&commit_path(v)).await.is_ok();
        let newer = !matches!(store.head(&commit_path(v + 1)).await, Err(object_store::Error::NotFound { .. }));
        if !current || newer {
            if let Ok(mut t) = self.tables.lock() {
                t.remove(&id);
            }
            return None;
        }
        if let Ok(mut t) = self.tables.lock()
            && let Some(e) = t.get_mut(&id)
        {
            e.1 = self.tick.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        Some(table)
    }

    /// Keep `table` (loaded at its newest version) for the next read.
    pub(crate) fn put(&self, id: Uuid, table: &DeltaTable) {
        if table.version().is_none() {
            return;
        }
        let Ok(mut t) = self.tables.lock() else { return };
        if t.len() >= LATEST_SNAPSHOTS
            && !t.contains_key(&id)
            && let Some(oldest) = t.iter().min_by_key(|(_, (_, tick))| *tick).map(|(k, _)| *k)
        {
            t.remove(&oldest);
        }
        let tick = self.tick.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        t.insert(id, (table.clone(), tick));
    }
}
