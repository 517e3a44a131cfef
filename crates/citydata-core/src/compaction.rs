//! Compaction of resource tables (see `citydata_lake::compact`): a sweep over the catalog's
//! tables, run by the server every [`COMPACT_EVERY`] and by `citydata lake compact`. Each
//! table's compaction waits for this node's writes to that table; other nodes' commits are
//! reconciled by the Delta log. Audited as `data.compact` by `system`.

use crate::{Core, CoreError, RequestMeta, audit::Actor};
use citydata_domain::audit::Outcome;
use citydata_domain::resource::Resource;
use citydata_lake::compact::CompactReport;

/// How often the server looks for tables to compact.
pub const COMPACT_EVERY: std::time::Duration = std::time::Duration::from_secs(600);

/// A table is compacted once it has this many small files (a stream committing every 5 s
/// reaches it in under three minutes; a daily upload in two months).
pub const MIN_SMALL_FILES: usize = 32;

impl Core {
    /// Compact one resource's table when it has at least `min_small` small files.
    pub async fn compact_table(&self, r: &Resource, min_small: usize) -> Result<Option<CompactReport>, CoreError> {
        let keys: Vec<String> = r.content.items.iter().filter(|i| i.key).map(|i| i.name.to_string()).collect();
        let _writer = self.table_writer(r.id).await;
        let report = self.lake()?.compact(r.id, &keys, min_small).await?;
        if let Some(rep) = &report {
            let meta = RequestMeta::new(Some("compaction".into()), None);
            let details = serde_json::json!({
                "small_files": rep.small_files,
                "files_removed": rep.files_removed,
                "files_added": rep.files_added,
                "version": rep.version,
            });
            let target = Some(format!("resource:{}", r.content.code));
            self.record(&meta, Actor::Name("system"), "data.compact", target, Outcome::Success, details).await?;
        }
        Ok(report)
    }

    /// Compact every table with at least `min_small` small files. Returns the tables compacted
    /// and the files they had before. A table that fails (e.g. another node's compaction won)
    /// is logged and left for the next round.
    pub async fn compact_lake(&self, min_small: usize) -> Result<(usize, u64), CoreError> {
        let (mut tables, mut files) = (0, 0);
        for r in self.every_resource().await? {
            match self.compact_table(&r, min_small).await {
                Ok(Some(rep)) => {
                    tables += 1;
                    files += rep.files_removed;
                }
                Ok(None) => {}
                Err(e) => tracing::warn!(error = %e, resource = %r.id, "compacting a table failed"),
            }
        }
        Ok((tables, files))
    }
}
