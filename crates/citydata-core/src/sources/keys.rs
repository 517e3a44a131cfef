//! Hard deletes found by a full key comparison (`compare_keys`): a database source's key
//! values (read in the run's snapshot) against the table's; rows whose key the source no
//! longer has are deleted by key in one `delete` ingest. A comparison that would delete more
//! than half of a table of more than ten rows fails the run instead (an emptied or mistyped
//! source must not empty the table); the data stays.
//!
//! Periodic: a second source on the same table with `compare_keys` and a slow schedule (daily)
//! beside the incremental one (every few minutes) is the usual arrangement.

use crate::ingest::IngestParams;
use crate::{Core, CoreError, RequestMeta};
use citydata_domain::principal::Principal;
use citydata_domain::resource::Resource;
use futures::StreamExt;
use std::collections::HashSet;
use std::sync::Arc;

use super::runner::AbortSignal;

/// For each key item, the source column that carries it (its name, else its title).
pub(crate) fn key_columns(resource: &Resource, columns: &[String]) -> Result<Vec<(String, String)>, String> {
    let keys: Vec<_> = resource.content.items.iter().filter(|i| i.key).collect();
    if keys.is_empty() {
        return Err("比对主键需要目标资源有主键信息项 / comparing keys needs key items on the target resource".into());
    }
    keys.iter()
        .map(|i| {
            let name = i.name.to_string();
            columns
                .iter()
                .find(|c| **c == name)
                .or_else(|| columns.iter().find(|c| **c == i.title))
                .map(|c| (name.clone(), c.clone()))
                .ok_or_else(|| {
                    format!(
                        "源中没有主键“{}”（{name}）的列 / the source has no column for key {name} ({})",
                        i.title, i.title
                    )
                })
        })
        .collect()
}

impl Core {
    /// Delete the rows whose key is not among `source` (values in `key_columns` order).
    pub(crate) async fn delete_missing_keys(
        &self,
        meta: &RequestMeta,
        principal: &Principal,
        resource: &Resource,
        keys: &[(String, String)],
        source: HashSet<Vec<String>>,
        abort: &Arc<AbortSignal>,
    ) -> Result<Option<serde_json::Value>, String> {
        let names: Vec<String> = keys.iter().map(|(n, _)| n.clone()).collect();
        let table = self
            .lake()
            .map_err(|e| e.client_message())?
            .key_values(resource.id, &names)
            .await
            .map_err(|e| CoreError::from(e).client_message())?;
        let missing: Vec<&Vec<String>> = table.iter().filter(|k| !source.contains(*k)).collect();
        if missing.is_empty() {
            return Ok(None);
        }
        if table.len() > 10 && missing.len() * 2 > table.len() {
            return Err(format!(
                "主键比对将删除 {} 行（共 {} 行），超过一半，未执行；请检查来源 / the key comparison would delete {} of {} rows (more than half) and was not applied; check the source",
                missing.len(),
                table.len(),
                missing.len(),
                table.len()
            ));
        }
        let lines: Vec<Result<String, String>> = missing
            .iter()
            .map(|k| {
                let o: serde_json::Map<String, serde_json::Value> =
                    names.iter().cloned().zip(k.iter().map(|v| serde_json::Value::String(v.clone()))).collect();
                Ok(serde_json::Value::Object(o).to_string())
            })
            .collect();
        let params = IngestParams {
            mode: Some("delete".into()),
            format: Some("ndjson".into()),
            ignore_extra: true,
            ..IngestParams::default()
        };
        let key = resource.id.to_string();
        self.feed_ingest(futures::stream::iter(lines).boxed(), meta, principal, &key, params, abort).await.map(Some)
    }
}
