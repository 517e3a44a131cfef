//! Compaction (Delta `optimize`): many small data files — a stream's micro-batches, daily
//! small appends — rewritten into files of about [`TARGET_FILE_SIZE`], so reads open a few
//! files instead of thousands.
//!
//! The rewrite is a commit with `dataChange = false`: the rows, the change data feed and every
//! earlier version stay as they were (time travel reads the old files until the retention
//! vacuum removes them). A writer committing meanwhile — this node's or another's — is
//! reconciled by the Delta conflict checker (appends never conflict with a compaction); a
//! compaction that loses gives up and the next round tries again. The new files carry the same
//! writer settings as every write (row groups, bloom filters on the key items).

use crate::error::Result;
use crate::table::{Lake, TARGET_FILE_SIZE, writer_properties};
use uuid::Uuid;

/// What a compaction did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CompactReport {
    /// Small files before.
    pub small_files: usize,
    pub files_removed: u64,
    pub files_added: u64,
    /// The table's version after the compaction commit.
    pub version: Option<i64>,
}

/// A file below this size counts as small.
pub const SMALL_FILE_BYTES: i64 = (TARGET_FILE_SIZE / 4) as i64;

impl Lake {
    /// How many of the table's current files are small (`0` for a table without versions).
    pub async fn small_files(&self, id: Uuid) -> Result<usize> {
        let table = self.open(self.table_url(id)?).await?;
        if table.version().is_none() {
            return Ok(0);
        }
        Ok(table.snapshot()?.log_data().iter().filter(|f| f.size() < SMALL_FILE_BYTES).count())
    }

    /// Rewrite the table's small files into large ones when there are at least `min_small`
    /// of them; `None` when there was nothing to do.
    pub async fn compact(&self, id: Uuid, keys: &[String], min_small: usize) -> Result<Option<CompactReport>> {
        let table = self.open(self.table_url(id)?).await?;
        if table.version().is_none() {
            return Ok(None);
        }
        let small_files = table.snapshot()?.log_data().iter().filter(|f| f.size() < SMALL_FILE_BYTES).count();
        if small_files < min_small.max(2) {
            return Ok(None);
        }
        let columns: Vec<String> = table.snapshot()?.schema().fields().map(|f| f.name().clone()).collect();
        let (t, metrics) = table
            .optimize()
            .with_target_size(std::num::NonZeroU64::new(TARGET_FILE_SIZE).expect("non-zero"))
            .with_writer_properties(writer_properties(keys, columns.iter().map(String::as_str)))
            .await?;
        crate::table::checkpoint_if_due(&t).await;
        Ok(Some(CompactReport {
            small_files,
            files_removed: metrics.num_files_removed,
            files_added: metrics.num_files_added,
            version: t.version().map(|v| v as i64),
        }))
    }
}
