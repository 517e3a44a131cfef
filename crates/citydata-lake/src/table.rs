//! Delta tables for resources: atomic writes in four modes, idempotent by ingest key,
//! quarantine, history, scans and vacuum.

use crate::error::{LakeError, Result};
use arrow::array::{Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, SchemaRef};
use datafusion::catalog::streaming::StreamingTable;
use datafusion::datasource::MemTable;
use datafusion::execution::TaskContext;
use datafusion::physical_plan::SendableRecordBatchStream;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::streaming::PartitionStream;
use datafusion::prelude::SessionContext;
use deltalake::DeltaTable;
use deltalake::kernel::Transaction;
use deltalake::kernel::transaction::CommitProperties;
use deltalake::protocol::SaveMode;
use futures::StreamExt;
use std::collections::HashSet;
use std::sync::{Arc, Mutex, Once};
use tokio::sync::mpsc;
use url::Url;
use uuid::Uuid;

/// How an ingest changes a table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum WriteMode {
    /// Add the rows.
    Append,
    /// The new version holds only these rows.
    Replace,
    /// Insert new keys, update existing ones (Delta MERGE).
    Upsert,
    /// Delete the rows with these keys.
    Delete,
}

impl WriteMode {
    pub fn parse(s: &str) -> Result<Self> {
        match s.trim() {
            "" | "append" => Ok(Self::Append),
            "replace" | "overwrite" => Ok(Self::Replace),
            "upsert" | "merge" => Ok(Self::Upsert),
            "delete" => Ok(Self::Delete),
            other => Err(LakeError::input(
                "invalid_mode",
                format!(
                    "mode 须为 append、replace、upsert 或 delete，收到 \"{other}\" / mode must be append, replace, upsert or delete"
                ),
            )),
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Append => "append",
            Self::Replace => "replace",
            Self::Upsert => "upsert",
            Self::Delete => "delete",
        }
    }
}

/// A time window of an append's key check: when the key includes a time item, a row outside
/// the new rows' times cannot share a key with them, so only the rows in the window are read
/// (a stream's batch reads its last few files, not the whole table).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRange {
    /// The time item (a `datetime` key item).
    pub item: String,
    /// The earliest and latest time among the new rows, microseconds since the epoch.
    pub from_micros: i64,
    pub to_micros: i64,
}

/// One version in a table's history.
#[derive(Debug, Clone, serde::Serialize)]
pub struct VersionInfo {
    pub version: i64,
    pub timestamp: Option<i64>,
    pub operation: Option<String>,
    pub ingest_id: Option<String>,
    pub rows_added: Option<i64>,
}

/// Where tables live.
#[derive(Clone, Debug)]
pub struct Lake {
    root: Url,
    /// delta-rs storage options (S3 endpoint, credentials …); empty for a local lake.
    options: Arc<std::collections::HashMap<String, String>>,
    /// The newest snapshot of recently read tables (shared by every clone of the lake).
    latest: Arc<crate::latest::LatestSnapshots>,
}

static REGISTER: Once = Once::new();

/// Data files are cut at about this size, which also bounds the writer's buffer.
pub const TARGET_FILE_SIZE: u64 = 32 * 1024 * 1024;

/// A checkpoint after every this many commits (Delta's own default is 100).
///
/// Opening a table replays every commit file since the last checkpoint, and delta-rs' log
/// reader holds a JSON decoder of about 1.3 MB per commit file while it does: a table with 99
/// commits since its checkpoint cost about 130 MB per concurrent read, and a server whose
/// tables took small upserts grew its resident memory with every commit until the next
/// checkpoint (the soak in BENCHMARKS.md). Ten keeps a read's log replay small; a checkpoint of
/// a table of a few hundred files is a few milliseconds.
pub const CHECKPOINT_INTERVAL: u64 = 10;

/// Write a checkpoint when `table`'s new version completes an interval. The commit has
/// happened whatever this does: a failed checkpoint is logged, not returned (the next
/// interval writes one, and readers replay the commits meanwhile).
pub(crate) async fn checkpoint_if_due(table: &DeltaTable) {
    let Some(version) = table.version() else { return };
    // delta-rs writes its own at every 100th.
    if (version + 1) % CHECKPOINT_INTERVAL != 0 || (version + 1) % 100 == 0 {
        return;
    }
    if let Err(e) = deltalake::checkpoints::create_checkpoint(table, None).await {
        tracing::warn!(error = %e, version, "writing a checkpoint failed; the next interval retries");
    }
}

/// Rows per Parquet row group: small enough that a key lookup, once the key's bloom filter has
/// ruled out every other group, decodes a few tens of thousands of rows, not millions.
pub const ROW_GROUP_ROWS: usize = 65_536;

/// A column's dictionary page is cut at this size; past it the column chunk goes on in plain
/// encoding.
///
/// Reading any value of a dictionary-encoded chunk decodes its whole dictionary first. With
/// Parquet's default of 1 MiB, a column of names, addresses or times filled a 1 MiB dictionary
/// in every row group, so a key lookup that needs one row decoded about a dozen 1 MiB
/// dictionaries (session 16: a lookup that matched decoded some 20 ms of dictionaries, one
/// pruned by statistics took 7.5 ms in all). At 64 KiB the columns that overflow (names,
/// addresses, phone numbers, dates, times) still cost a lookup a 64 KiB dictionary each: the
/// reader decodes a chunk's dictionary even to skip to a plain page (a tenth of a lookup's CPU,
/// session 22), so it is 8 KiB. Columns of few values (性别, 区县, 民族, 街道 …) still fit
/// and keep their dictionary, which grouping and filtering by them use.
pub const DICTIONARY_PAGE_BYTES: usize = 8 * 1024;

/// Rows per data page (Parquet's default is 20,000): the page index lets a lookup decode only
/// the page holding its row in each column, so this is what a lookup decompresses and decodes
/// per column (8,192 rows made page decoding a quarter of a lookup's CPU; BENCHMARKS.md,
/// session 17). Scans pay one small page header more per 2,048 values.
pub const DATA_PAGE_ROWS: usize = 2_048;

/// How data files are written: snappy (as delta-rs does by default), row groups of
/// [`ROW_GROUP_ROWS`], pages of at most [`DATA_PAGE_ROWS`], dictionaries of at most
/// [`DICTIONARY_PAGE_BYTES`], and on every key item a bloom filter (lookups by key skip the row
/// groups that cannot hold it) and no dictionary (a key's values are all different).
pub(crate) fn writer_properties<'a>(
    keys: &[String],
    columns: impl IntoIterator<Item = &'a str>,
) -> parquet::file::properties::WriterProperties {
    use parquet::basic::Compression;
    use parquet::schema::types::ColumnPath;
    let mut b = parquet::file::properties::WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
        .set_data_page_row_count_limit(DATA_PAGE_ROWS)
        .set_dictionary_page_size_limit(DICTIONARY_PAGE_BYTES);
    for k in keys {
        b = b
            .set_column_bloom_filter_enabled(ColumnPath::from(k.as_str()), true)
            .set_column_dictionary_enabled(ColumnPath::from(k.as_str()), false);
    }
    // Bounding-box columns are decoded whole by every spatial filter: plain integers (which
    // barely compress and rarely repeat) decode fastest without compression or a dictionary.
    for c in columns.into_iter().filter(|c| crate::bbox::is_hidden(c)) {
        b = b
            .set_column_compression(ColumnPath::from(c), Compression::UNCOMPRESSED)
            .set_column_dictionary_enabled(ColumnPath::from(c), false);
    }
    b.build()
}

/// What a write did.
#[derive(Debug, Clone)]
pub struct WriteOutcome {
    /// The table version after the write; `None` when the table does not exist (a delete on
    /// an empty resource).
    pub version: Option<i64>,
    /// `true` when the idempotency key had already been applied and nothing was written.
    pub already_applied: bool,
}

/// How a write is recorded in the Delta log.
#[derive(Debug, Clone, Copy)]
pub struct CommitTag<'a> {
    /// Application transaction id: a second write with the same id is skipped.
    pub app_id: Option<&'a str>,
    /// Written to the commit info as `citydata.ingestId`.
    pub ingest_id: &'a str,
}

/// A stream of batches from a channel, as a table partition.
#[derive(Debug)]
pub(crate) struct ChannelPartition {
    pub(crate) schema: SchemaRef,
    pub(crate) rx: Mutex<Option<mpsc::Receiver<Result<RecordBatch>>>>,
    /// Each batch gains its spatial items' box columns on the way ([`crate::bbox`]); `schema`
    /// is then the stored schema.
    pub(crate) boxes: bool,
}

impl PartitionStream for ChannelPartition {
    fn schema(&self) -> &SchemaRef {
        &self.schema
    }
    fn execute(&self, _ctx: Arc<TaskContext>) -> SendableRecordBatchStream {
        let rx = self.rx.lock().ok().and_then(|mut r| r.take());
        let stored = self.boxes.then(|| self.schema.clone());
        let stream = futures::stream::unfold(rx, move |rx| {
            let stored = stored.clone();
            async move {
                let mut rx = rx?;
                let mut next = rx.recv().await?;
                if let Some(stored) = &stored {
                    next = next.and_then(|b| crate::bbox::with_boxes(&b, stored));
                }
                Some((next.map_err(|e| datafusion::error::DataFusionError::External(Box::new(e))), Some(rx)))
            }
        });
        Box::pin(RecordBatchStreamAdapter::new(self.schema.clone(), stream))
    }
}

fn quote(c: &str) -> String {
    format!("\"{}\"", c.replace('"', "\"\""))
}

impl Lake {
    /// `root` is a local directory path or an object store URL (`s3://bucket/prefix`).
    pub fn new(root: &str) -> Result<Self> {
        Self::with_storage_options(root, std::collections::HashMap::new())
    }

    /// A lake at `root` whose object store takes these delta-rs storage options
    /// ([`crate::storage::S3Settings::storage_options`]).
    pub fn with_storage_options(root: &str, options: std::collections::HashMap<String, String>) -> Result<Self> {
        REGISTER.call_once(|| {
            crate::storage::register_s3();
            crate::local_store::register_local();
        });
        let url = if root.contains("://") {
            Url::parse(root).map_err(|e| LakeError::Other(format!("lake_url {root}: {e}")))?
        } else {
            let p = std::path::Path::new(root);
            std::fs::create_dir_all(p)?;
            let abs = p.canonicalize()?;
            Url::from_directory_path(&abs).map_err(|_| LakeError::Other(format!("lake path {}", abs.display())))?
        };
        let mut url = url;
        if !url.path().ends_with('/') {
            url.set_path(&format!("{}/", url.path()));
        }
        if url.scheme() == "s3" && url.host_str().is_none_or(str::is_empty) {
            return Err(LakeError::Other(format!("lake_url {root}: no bucket (s3://bucket/prefix)")));
        }
        Ok(Self { root: url, options: Arc::new(options), latest: Default::default() })
    }

    /// The lake's root URL (ends in `/`).
    pub(crate) fn root(&self) -> &Url {
        &self.root
    }

    /// The storage options every table of this lake opens with.
    pub fn storage_options(&self) -> std::collections::HashMap<String, String> {
        (*self.options).clone()
    }

    fn url(&self, kind: &str, id: Uuid) -> Result<Url> {
        let u = self.root.join(&format!("{kind}/{id}/")).map_err(|e| LakeError::Other(e.to_string()))?;
        if u.scheme() == "file"
            && let Ok(p) = u.to_file_path()
        {
            std::fs::create_dir_all(p)?;
        }
        Ok(u)
    }

    pub fn table_url(&self, id: Uuid) -> Result<Url> {
        self.url("tables", id)
    }

    pub fn quarantine_url(&self, id: Uuid) -> Result<Url> {
        self.url("quarantine", id)
    }

    pub async fn open(&self, url: Url) -> Result<DeltaTable> {
        Ok(DeltaTable::try_from_url_with_storage_options(url, self.storage_options()).await?)
    }

    /// The resource's table at its newest version, from the snapshot kept by the last read
    /// when no commit came since ([`crate::latest`]), else opened and kept.
    pub(crate) async fn open_latest(&self, id: Uuid) -> Result<DeltaTable> {
        if let Some(t) = self.latest.get(id).await {
            return Ok(t);
        }
        let t = self.open(self.table_url(id)?).await?;
        crate::governed::warm_page_indexes(&t).await;
        self.latest.put(id, &t);
        Ok(t)
    }

    /// The newest version of a resource's table from the kept snapshot (two `HEAD`s when no
    /// commit came since it was read; see [`crate::latest`]).
    pub async fn latest_version(&self, id: Uuid) -> Result<Option<i64>> {
        Ok(self.open_latest(id).await?.version().map(|v| v as i64))
    }

    /// The current version of a resource's table (`None` before the first write).
    pub async fn version(&self, id: Uuid) -> Result<Option<i64>> {
        let t = self.open(self.table_url(id)?).await?;
        Ok(t.version().map(|v| v as i64))
    }

    /// Key hashes of every row in the table (or of the rows in `range`), for uniqueness
    /// checks on append.
    pub async fn key_hashes(
        &self,
        id: Uuid,
        keys: &[String],
        range: Option<&KeyRange>,
    ) -> Result<crate::keyset::KeySet> {
        let mut out = crate::keyset::KeySet::default();
        self.each_key_in(id, keys, range, |parts| {
            out.insert(crate::convert::key_hash(parts.iter().copied()));
        })
        .await?;
        Ok(out)
    }

    /// The key values of every row (as text, a null as ""), for comparing with a source.
    pub async fn key_values(&self, id: Uuid, keys: &[String]) -> Result<HashSet<Vec<String>>> {
        let mut out = HashSet::new();
        self.each_key(id, keys, |parts| {
            out.insert(parts.iter().map(|p| p.to_string()).collect());
        })
        .await?;
        Ok(out)
    }

    /// Call `f` with the key values (as text) of every row of the table.
    async fn each_key(&self, id: Uuid, keys: &[String], f: impl FnMut(&[&str])) -> Result<()> {
        self.each_key_in(id, keys, None, f).await
    }

    /// Call `f` with the key values (as text) of every row of the table, or of the rows whose
    /// time item lies in `range` (files outside it are skipped by their statistics).
    async fn each_key_in(
        &self,
        id: Uuid,
        keys: &[String],
        range: Option<&KeyRange>,
        mut f: impl FnMut(&[&str]),
    ) -> Result<()> {
        use datafusion::logical_expr::ident;
        use datafusion::prelude::lit;
        use datafusion::scalar::ScalarValue;
        let t = self.open(self.table_url(id)?).await?;
        if t.version().is_none() || keys.is_empty() {
            return Ok(());
        }
        let ctx = SessionContext::new();
        t.update_datafusion_session(&ctx.state())?;
        ctx.register_table("t", t.table_provider().await?)?;
        let mut df = ctx.table("t").await?;
        if let Some(r) = range {
            let at = |micros: i64| lit(ScalarValue::TimestampMicrosecond(Some(micros), Some(crate::schema::TZ.into())));
            df = df.filter(ident(&r.item).gt_eq(at(r.from_micros)).and(ident(&r.item).lt_eq(at(r.to_micros))))?;
        }
        let mut stream = df.select(keys.iter().map(ident).collect::<Vec<_>>())?.execute_stream().await?;
        while let Some(batch) = stream.next().await {
            let batch = batch?;
            let text: Vec<Arc<dyn Array>> = batch
                .columns()
                .iter()
                .map(|c| arrow::compute::cast(c, &DataType::Utf8))
                .collect::<std::result::Result<_, _>>()?;
            let text: Vec<&StringArray> =
                text.iter().filter_map(|c| c.as_any().downcast_ref::<StringArray>()).collect();
            let mut parts: Vec<&str> = Vec::with_capacity(keys.len());
            for r in 0..batch.num_rows() {
                parts.clear();
                parts.extend(text.iter().map(|c| if c.is_null(r) { "" } else { c.value(r) }));
                f(&parts);
            }
        }
        Ok(())
    }

    /// [`Self::write`] of `batches`, fed one at a time through a small channel as an upload's
    /// are (tests).
    #[cfg(test)]
    pub(crate) async fn write_batches(
        &self,
        id: Uuid,
        schema: SchemaRef,
        mode: WriteMode,
        keys: &[&str],
        batches: impl IntoIterator<Item = RecordBatch, IntoIter: Send + 'static>,
    ) -> Result<WriteOutcome> {
        let batches = batches.into_iter();
        let (tx, rx) = mpsc::channel(2);
        let feeder = tokio::spawn(async move {
            for b in batches {
                if tx.send(Ok(b)).await.is_err() {
                    return;
                }
            }
        });
        let keys: Vec<String> = keys.iter().map(|k| k.to_string()).collect();
        let written = self.write(id, schema, mode, &keys, rx, CommitTag { app_id: None, ingest_id: "t" }).await;
        feeder.await.map_err(|e| LakeError::Other(e.to_string()))?;
        written
    }

    /// Write the batches coming from `rx` in `mode`, as one Delta commit. When `app_id` was
    /// already committed to this table, nothing is written (`already_applied`). The commit
    /// records `ingest_id` in its commit info.
    pub async fn write(
        &self,
        id: Uuid,
        schema: SchemaRef,
        mode: WriteMode,
        keys: &[String],
        rx: mpsc::Receiver<Result<RecordBatch>>,
        tag: CommitTag<'_>,
    ) -> Result<WriteOutcome> {
        let (app_id, ingest_id) = (tag.app_id, tag.ingest_id);
        let table = self.open(self.table_url(id)?).await?;
        // Spatial items' bounding-box columns, computed here so that every write has them —
        // except a merge into a table written before they existed: delta-rs 1.1's merge with
        // schema evolution lost the target's unmatched rows (a lake test showed it), so such
        // a table gains them by its next append or replace instead.
        let merging_into_old = matches!(mode, WriteMode::Upsert | WriteMode::Delete)
            && table.version().is_some()
            && crate::bbox::stored_schema(&schema).is_some_and(|stored| {
                let have = table.snapshot().map(|s| s.schema()).ok();
                stored.fields().iter().any(|f| have.as_ref().is_none_or(|h| h.field(f.name()).is_none()))
            });
        if let (Some(app), Some(_)) = (app_id, table.version())
            && table.snapshot()?.transaction_version(table.log_store().as_ref(), app).await?.is_some()
        {
            return Ok(WriteOutcome { version: table.version().map(|v| v as i64), already_applied: true });
        }
        let mut props = CommitProperties::default()
            .with_metadata([("citydata.ingestId".to_string(), serde_json::Value::String(ingest_id.to_string()))]);
        if let Some(app) = app_id {
            props = props.with_application_transaction(Transaction::new(app, 1));
        }
        let ctx = SessionContext::new();
        let effective = match (mode, table.version()) {
            (WriteMode::Upsert, None) => WriteMode::Append,
            (m, _) => m,
        };
        match effective {
            WriteMode::Append | WriteMode::Replace => {
                // Keyed rows are written in key order, so the files, row groups and pages of a
                // write hold disjoint key ranges (a lookup reads one page).
                let rx = crate::sorted::sorted_by_keys(&schema, keys, rx).await?;
                // Box columns after the sort, which then carries no more than the items (its
                // memory pool is bounded), computed as the writer pulls each batch.
                let stored = crate::bbox::stored_schema(&schema);
                let boxes = stored.is_some();
                let schema = stored.unwrap_or(schema);
                let part = Arc::new(ChannelPartition { schema: schema.clone(), rx: Mutex::new(Some(rx)), boxes });
                ctx.register_table("source", Arc::new(StreamingTable::try_new(schema.clone(), vec![part])?))?;
                let df = ctx.table("source").await?;
                let save = if effective == WriteMode::Append { SaveMode::Append } else { SaveMode::Overwrite };
                let schema_mode = if effective == WriteMode::Append {
                    deltalake::operations::write::SchemaMode::Merge
                } else {
                    deltalake::operations::write::SchemaMode::Overwrite
                };
                let creating = table.version().is_none();
                let mut builder = table.write(Vec::<RecordBatch>::new());
                if creating {
                    // Every table records its change data feed from its first version (增量同步).
                    builder = builder.with_configuration([("delta.enableChangeDataFeed", Some("true"))]);
                }
                if !keys.is_empty() {
                    // One stream to the writer: in a session of several partitions DataFusion
                    // deals the sorted batches round robin and merges them again in whatever
                    // order they arrive, so files came out with interleaved, overlapping key
                    // ranges (measured on a 5,000,000-row upload: every file overlapped the next).
                    builder = builder.with_session_state(Arc::new(crate::sorted::one_partition_state(None)));
                }
                let t = builder
                    .with_input_plan(df.logical_plan().clone())
                    .with_save_mode(save)
                    .with_schema_mode(schema_mode)
                    .with_target_file_size(std::num::NonZeroU64::new(TARGET_FILE_SIZE))
                    .with_writer_properties(writer_properties(keys, schema.fields().iter().map(|f| f.name().as_str())))
                    .with_commit_properties(props)
                    .await?;
                checkpoint_if_due(&t).await;
                Ok(WriteOutcome { version: t.version().map(|v| v as i64), already_applied: false })
            }
            WriteMode::Upsert | WriteMode::Delete => {
                let mut rx = rx;
                let stored = crate::bbox::stored_schema(&schema).filter(|_| !merging_into_old);
                let mut batches = Vec::new();
                while let Some(b) = rx.recv().await {
                    batches.push(match &stored {
                        Some(stored) => crate::bbox::with_boxes(&b?, stored)?,
                        None => b?,
                    });
                }
                let schema = stored.unwrap_or(schema);
                if table.version().is_none() {
                    return Ok(WriteOutcome { version: None, already_applied: false });
                }
                if keys.is_empty() {
                    return Err(LakeError::input(
                        "no_key",
                        "此资源没有主键信息项，不能按键更新或删除 / the resource has no key items: upsert and delete need keys",
                    ));
                }
                let source = ctx.read_table(Arc::new(MemTable::try_new(schema.clone(), vec![batches])?))?;
                let predicate = keys
                    .iter()
                    .map(|k| format!("target.{} = source.{}", quote(k), quote(k)))
                    .collect::<Vec<_>>()
                    .join(" AND ");
                let columns: Vec<String> = schema.fields().iter().map(|f| f.name().clone()).collect();
                let builder = table
                    .merge(source, predicate)
                    .with_source_alias("source")
                    .with_target_alias("target")
                    .with_writer_properties(writer_properties(keys, schema.fields().iter().map(|f| f.name().as_str())))
                    .with_commit_properties(props);
                let builder = if effective == WriteMode::Upsert {
                    let cols = columns.clone();
                    // Only rows that differ are rewritten: an unchanged row is no update in
                    // the change feed (re-uploading the same file changes nothing).
                    let changed = columns
                        .iter()
                        // Box columns follow their item: a row whose box was never written (a
                        // file older than the columns) is not changed by gaining one.
                        .filter(|c| !keys.contains(c) && !crate::bbox::is_hidden(c))
                        .map(|c| {
                            let (t, s) = (format!("target.{}", quote(c)), format!("source.{}", quote(c)));
                            // `IS DISTINCT FROM`, spelled so that delta-rs' merge planner takes it.
                            format!("({t} <> {s} OR ({t} IS NULL) <> ({s} IS NULL))")
                        })
                        .reduce(|a, b| format!("{a} OR {b}"))
                        .unwrap_or_else(|| "false".into());
                    builder
                        .when_matched_update(|mut u| {
                            u = u.predicate(changed.clone());
                            for c in &cols {
                                u = u.update(quote(c), format!("source.{}", quote(c)));
                            }
                            u
                        })?
                        .when_not_matched_insert(|mut i| {
                            for c in &columns {
                                i = i.set(quote(c), format!("source.{}", quote(c)));
                            }
                            i
                        })?
                } else {
                    builder.when_matched_delete(|d| d)?
                };
                let (t, _metrics) = builder.await?;
                checkpoint_if_due(&t).await;
                Ok(WriteOutcome { version: t.version().map(|v| v as i64), already_applied: false })
            }
        }
    }

    /// Append rows to a resource's quarantine table.
    pub async fn quarantine(&self, id: Uuid, batches: Vec<RecordBatch>) -> Result<()> {
        if batches.iter().all(|b| b.num_rows() == 0) {
            return Ok(());
        }
        let table = self.open(self.quarantine_url(id)?).await?;
        table.write(batches).with_save_mode(SaveMode::Append).await?;
        Ok(())
    }

    /// The table's versions, newest first.
    pub async fn history(&self, id: Uuid) -> Result<Vec<VersionInfo>> {
        let table = self.open(self.table_url(id)?).await?;
        let Some(current) = table.version() else { return Ok(vec![]) };
        let infos: Vec<_> = table.history(None).collect().await;
        let earliest = crate::erase::erased_before_of(&table).unwrap_or(0);
        let mut out = Vec::new();
        for (i, info) in infos.into_iter().enumerate() {
            // After an erasure the log before the marker is gone: history ends there.
            let Ok(info) = info else { break };
            if current as i64 - (i as i64) < earliest {
                break;
            }
            let rows_added = info
                .info
                .get("operationMetrics")
                .and_then(|m| m.get("num_added_rows").or_else(|| m.get("numOutputRows")))
                .and_then(|v| v.as_i64().or_else(|| v.as_str().and_then(|s| s.parse().ok())));
            out.push(VersionInfo {
                version: current as i64 - i as i64,
                timestamp: info.timestamp,
                operation: info.operation.clone(),
                ingest_id: info.info.get("citydata.ingestId").and_then(|v| v.as_str()).map(str::to_string),
                rows_added,
            });
        }
        Ok(out)
    }

    /// Run `sql` over table `t` (the resource's table, at `version` when given). For tests and
    /// internal use: governed reads go through the policy gate.
    pub async fn query(&self, id: Uuid, version: Option<i64>, sql: &str) -> Result<Vec<RecordBatch>> {
        self.query_url(self.table_url(id)?, version, sql).await
    }

    /// The same over the quarantine table.
    pub async fn query_quarantine(&self, id: Uuid, sql: &str) -> Result<Vec<RecordBatch>> {
        self.query_url(self.quarantine_url(id)?, None, sql).await
    }

    async fn query_url(&self, url: Url, version: Option<i64>, sql: &str) -> Result<Vec<RecordBatch>> {
        let mut table = self.open(url).await?;
        if table.version().is_none() {
            return Ok(vec![]);
        }
        if let Some(v) = version {
            crate::erase::load_checked(&mut table, v).await?;
        }
        let ctx = SessionContext::new();
        table.update_datafusion_session(&ctx.state())?;
        ctx.register_table("t", table.table_provider().await?)?;
        Ok(ctx.sql(sql).await?.collect().await?)
    }

    /// Remove files no longer referenced (left by failed or killed writes, or old versions
    /// past the retention period). Returns the number of files deleted.
    pub async fn vacuum(&self, id: Uuid, retention_hours: u64) -> Result<usize> {
        let table = self.open(self.table_url(id)?).await?;
        if table.version().is_none() {
            return Ok(0);
        }
        let (_, metrics) = table
            .vacuum()
            .with_retention_period(chrono::Duration::hours(retention_hours as i64))
            .with_enforce_retention_duration(false)
            .await?;
        Ok(metrics.files_deleted.len())
    }
}
