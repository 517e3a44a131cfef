//! Rows counted per value of one text column: the commonest aggregate (a chart of 区县, 性别,
//! 民族 …: `group_by` one text item, no metric), counted over the governed plan's output
//! without DataFusion's grouping.
//!
//! DataFusion groups a text column by hashing every row's value into its own map (session 15's
//! profile of `group_count`: 34% of the CPU in `ArrowBytesViewMap::insert_if_new` and 7.5% in
//! hashing the values). Here each partition counts its rows on its own task: a run of equal
//! values (files in key order often hold long runs) is counted once, and a value of at most 12
//! bytes is looked up by its 16-byte view, which holds it whole. The answer is the one the
//! grouping gives: the same groups and counts, NULL as a group of its own, sorted ascending by
//! value with NULL last.
//!
//! A read that sees every row and the item as stored ([`crate::governed::GovernedRead::
//! sees_every_row_of`]) is counted from the version's data files instead
//! ([`count_in_files`]): the column is read as the Parquet dictionary it is written as, and a
//! batch is counted by its dictionary keys, without delta-rs' scan (which splits every batch
//! by a per-row file id) and without turning the dictionary into string views.

use crate::error::{LakeError, Result};
use crate::keyset::MixHasher;
use arrow::array::{
    Array, ArrayRef, DictionaryArray, Int64Array, RecordBatch, StringArray, StringViewArray, StringViewBuilder,
};
use arrow::datatypes::{DataType, Field, Int32Type, Schema};
use datafusion::prelude::DataFrame;
use futures::StreamExt;
use std::collections::HashMap;
use std::hash::BuildHasherDefault;
use std::sync::Arc;

/// One partition's counts.
#[derive(Default)]
struct Counts {
    /// Values of at most 12 bytes, by their view (length and bytes, zero-padded). An unkeyed
    /// hash is enough: the views are the table's own values, and a partition's map lives for
    /// one request.
    short: HashMap<u128, u64, BuildHasherDefault<MixHasher>>,
    long: HashMap<String, u64>,
    nulls: u64,
}

/// The longest value a view holds whole.
const INLINE: u32 = 12;

impl Counts {
    fn groups(&self) -> usize {
        self.short.len() + self.long.len() + usize::from(self.nulls > 0)
    }

    fn add(&mut self, a: &StringViewArray) {
        let views = a.views();
        let nulls = a.nulls();
        let null = |i: usize| nulls.is_some_and(|b| b.is_null(i));
        let (mut i, n) = (0, a.len());
        while i < n {
            if null(i) {
                self.nulls += 1;
                i += 1;
                continue;
            }
            let v = views[i];
            let mut j = i + 1;
            while j < n && views[j] == v && !null(j) {
                j += 1;
            }
            let run = (j - i) as u64;
            if (v as u32) <= INLINE {
                *self.short.entry(v).or_default() += run;
            } else {
                self.add_long(a.value(i), run);
            }
            i = j;
        }
    }

    /// `run` more rows of a value longer than a view holds (copied only the first time).
    fn add_long(&mut self, s: &str, run: u64) {
        match self.long.get_mut(s) {
            Some(c) => *c += run,
            None => {
                self.long.insert(s.to_owned(), run);
            }
        }
    }

    /// Counts a dictionary-encoded batch by its keys: one counter per dictionary entry, then
    /// one map update per entry that occurs.
    fn add_dictionary(&mut self, a: &DictionaryArray<Int32Type>) -> Result<()> {
        let values = a
            .values()
            .as_any()
            .downcast_ref::<StringArray>()
            .ok_or_else(|| LakeError::Other("grouped column's dictionary is not text".into()))?;
        let mut per = vec![0u64; values.len()];
        let keys = a.keys();
        match keys.nulls() {
            None => {
                for &k in keys.values() {
                    if let Some(c) = usize::try_from(k).ok().and_then(|k| per.get_mut(k)) {
                        *c += 1;
                    }
                }
            }
            Some(valid) => {
                for (i, &k) in keys.values().iter().enumerate() {
                    if !valid.is_valid(i) {
                        self.nulls += 1;
                    } else if let Some(c) = usize::try_from(k).ok().and_then(|k| per.get_mut(k)) {
                        *c += 1;
                    }
                }
            }
        }
        for (k, run) in per.into_iter().enumerate().filter(|(_, c)| *c > 0) {
            if values.is_null(k) {
                self.nulls += run;
                continue;
            }
            let s = values.value(k);
            if s.len() <= INLINE as usize {
                *self.short.entry(arrow::array::builder::make_view(s.as_bytes(), 0, 0)).or_default() += run;
            } else {
                self.add_long(s, run);
            }
        }
        Ok(())
    }

    fn merge(&mut self, other: Counts) {
        for (v, c) in other.short {
            *self.short.entry(v).or_default() += c;
        }
        for (s, c) in other.long {
            *self.long.entry(s).or_default() += c;
        }
        self.nulls += other.nulls;
    }

    /// `column, count` sorted ascending by value, NULL last: the grouping's answer.
    fn into_batch(self, column: &str) -> Result<RecordBatch> {
        let mut groups: Vec<(String, u64)> = self.short.into_iter().map(|(v, c)| (inline_text(v), c)).collect();
        groups.extend(self.long);
        groups.sort_unstable_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
        let mut values = StringViewBuilder::with_capacity(groups.len() + 1);
        let mut counts = Vec::with_capacity(groups.len() + 1);
        for (v, c) in &groups {
            values.append_value(v);
            counts.push(*c as i64);
        }
        if self.nulls > 0 {
            values.append_null();
            counts.push(self.nulls as i64);
        }
        let schema = Arc::new(Schema::new(vec![
            Field::new(column, DataType::Utf8View, true),
            Field::new("count", DataType::Int64, false),
        ]));
        let columns: Vec<ArrayRef> = vec![Arc::new(values.finish()), Arc::new(Int64Array::from(counts))];
        Ok(RecordBatch::try_new(schema, columns)?)
    }
}

/// The text of an inline view.
fn inline_text(v: u128) -> String {
    let len = (v as u32) as usize;
    let bytes = v.to_le_bytes();
    String::from_utf8_lossy(&bytes[4..4 + len.min(12)]).into_owned()
}

/// Whether [`count_by_text`] can answer a grouping by `column` of `df`.
pub(crate) fn applies(df: &DataFrame, column: &str) -> bool {
    df.schema().field_with_unqualified_name(column).is_ok_and(|f| f.data_type() == &DataType::Utf8View)
}

/// A count's answer.
pub(crate) enum Counted {
    /// `column, count`, one row per group, as [`count_by_text`] describes.
    Groups(RecordBatch),
    /// More than `max_groups` groups were found (counting stopped there).
    TooMany,
}

/// `SELECT column, count(*) AS count FROM df GROUP BY column ORDER BY column NULLS LAST`, as
/// one batch.
pub(crate) async fn count_by_text(df: DataFrame, column: &str, max_groups: Option<usize>) -> Result<Counted> {
    let df = df.select(vec![datafusion::prelude::ident(column)])?;
    let streams = df.execute_stream_partitioned().await?;
    // A join set: the tasks end with the request if it is dropped.
    let mut tasks = tokio::task::JoinSet::new();
    for mut stream in streams {
        tasks.spawn(async move {
            let mut counts = Counts::default();
            while let Some(batch) = stream.next().await {
                let batch = batch?;
                let a = batch
                    .column(0)
                    .as_any()
                    .downcast_ref::<StringViewArray>()
                    .ok_or_else(|| LakeError::Other("grouped column is not text".into()))?;
                counts.add(a);
                if max_groups.is_some_and(|m| counts.groups() > m) {
                    return Ok(FileCount::TooMany);
                }
            }
            Ok::<_, LakeError>(FileCount::Counted(counts))
        });
    }
    merged(tasks, column, max_groups).await?.ok_or_else(|| LakeError::Other("grouped column is not text".into()))
}

/// The tasks' counts merged into the answer (`TooMany` as soon as one task found too many);
/// `None` when a task found the column not to be text.
async fn merged(
    mut tasks: tokio::task::JoinSet<Result<FileCount>>,
    column: &str,
    max_groups: Option<usize>,
) -> Result<Option<Counted>> {
    let mut all = Counts::default();
    while let Some(t) = tasks.join_next().await {
        match t.map_err(|e| LakeError::Other(format!("group count task: {e}")))?? {
            FileCount::Counted(c) => all.merge(c),
            FileCount::TooMany => return Ok(Some(Counted::TooMany)),
            FileCount::NotText => return Ok(None),
        }
    }
    answer(all, column, max_groups).map(Some)
}

/// The merged counts as the answer.
fn answer(all: Counts, column: &str, max_groups: Option<usize>) -> Result<Counted> {
    if max_groups.is_some_and(|m| all.groups() > m) {
        return Ok(Counted::TooMany);
    }
    Ok(Counted::Groups(all.into_batch(column)?))
}

/// How a counting task (or one file of [`count_in_files`]) ended.
enum FileCount<C = Counts> {
    Counted(C),
    TooMany,
    /// A file holds the column as something other than text: the plan counts instead.
    NotText,
}

/// Rows per value of the text column `column` over every row of the table's version, read
/// from its data files: the answer of [`count_by_text`] over a plan that neither filters nor
/// masks the column. `None` when the files cannot be read directly (deletion vectors,
/// partition values or column mapping, which only delta-rs' scan applies; more files than
/// footers kept; a column that is not text, in the table or in one of its files); the
/// caller then counts over the plan.
///
/// Each file's column is read as a dictionary (the writer's dictionary pages, decoded once
/// per column chunk) and counted by its keys; the files are shared among one task per core.
/// A file written before the column existed counts its rows as NULL, as the scan shows them.
pub(crate) async fn count_in_files(
    table: &deltalake::DeltaTable,
    column: &str,
    max_groups: Option<usize>,
) -> Result<Option<Counted>> {
    let Ok(state) = table.snapshot() else { return Ok(None) };
    let snapshot = state.snapshot();
    let text = snapshot
        .arrow_schema()
        .field_with_name(column)
        .is_ok_and(|f| matches!(f.data_type(), DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View));
    // The kernel's mode, named by its serialized form (the kernel crate is not a dependency).
    let mode = serde_json::to_value(snapshot.table_configuration().column_mapping_mode()).ok();
    let mapped = mode.as_ref().and_then(|m| m.as_str()) != Some("none");
    if !text || mapped || !snapshot.metadata().partition_columns().is_empty() {
        return Ok(None);
    }
    let Some(files) = crate::governed::data_files(table) else { return Ok(None) };
    if files.iter().any(|f| f.deletes) {
        return Ok(None);
    }
    let files: Arc<Vec<object_store::ObjectMeta>> = Arc::new(files.into_iter().map(|f| f.meta).collect());
    let store = table.log_store().root_object_store(None);
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get()).min(files.len()).max(1);
    // A join set: the tasks end with the request if it is dropped.
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..workers {
        let (files, store, next, column) = (files.clone(), store.clone(), next.clone(), column.to_string());
        tasks.spawn(async move {
            let mut counts = Counts::default();
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some(meta) = files.get(i) else { break };
                match count_file(&store, meta, &column, max_groups, &mut counts).await? {
                    FileCount::Counted(()) => {}
                    FileCount::TooMany => return Ok(FileCount::TooMany),
                    FileCount::NotText => return Ok(FileCount::NotText),
                }
            }
            Ok::<_, LakeError>(FileCount::Counted(counts))
        });
    }
    merged(tasks, column, max_groups).await
}

/// Adds one data file's rows to `counts`.
async fn count_file(
    store: &Arc<dyn object_store::ObjectStore>,
    meta: &object_store::ObjectMeta,
    column: &str,
    max_groups: Option<usize>,
    counts: &mut Counts,
) -> Result<FileCount<()>> {
    use datafusion::datasource::physical_plan::ParquetFileReaderFactory;
    use datafusion::datasource::physical_plan::parquet::DefaultParquetFileReaderFactory;
    use datafusion::physical_plan::metrics::ExecutionPlanMetricsSet;
    use parquet::arrow::arrow_reader::{ArrowReaderMetadata, ArrowReaderOptions};
    use parquet::arrow::{ParquetRecordBatchStreamBuilder, ProjectionMask};
    let footer = crate::governed::footer(store.as_ref(), meta, crate::governed::footer_cache()).await?;
    let stored = ArrowReaderMetadata::try_new(footer.clone(), ArrowReaderOptions::new())?;
    let Ok(at) = stored.schema().index_of(column) else {
        counts.nulls += u64::try_from(footer.file_metadata().num_rows()).unwrap_or_default();
        return Ok(FileCount::Counted(()));
    };
    if !matches!(stored.schema().field(at).data_type(), DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View) {
        return Ok(FileCount::NotText);
    }
    // The column as a dictionary of text: the reader hands on the dictionary page's values
    // once and each row's key, instead of every row's text.
    let mut fields: Vec<Arc<Field>> = stored.schema().fields().iter().cloned().collect();
    let dictionary = DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8));
    fields[at] = Arc::new(fields[at].as_ref().clone().with_data_type(dictionary));
    let schema = Arc::new(Schema::new_with_metadata(fields, stored.schema().metadata().clone()));
    let reading = ArrowReaderMetadata::try_new(footer, ArrowReaderOptions::new().with_schema(schema))?;
    let mask = ProjectionMask::roots(reading.metadata().file_metadata().schema_descr(), [at]);
    let reader: Box<dyn parquet::arrow::async_reader::AsyncFileReader> = DefaultParquetFileReaderFactory::new(
        store.clone(),
    )
    .create_reader(0, meta.clone().into(), None, &ExecutionPlanMetricsSet::new())?;
    let mut stream = ParquetRecordBatchStreamBuilder::new_with_metadata(reader, reading)
        .with_projection(mask)
        .with_batch_size(COUNT_BATCH_ROWS)
        .build()?;
    while let Some(batch) = stream.next().await {
        let batch = batch?;
        let a = batch
            .column(0)
            .as_any()
            .downcast_ref::<DictionaryArray<Int32Type>>()
            .ok_or_else(|| LakeError::Other("grouped column is not a dictionary".into()))?;
        counts.add_dictionary(a)?;
        if max_groups.is_some_and(|m| counts.groups() > m) {
            return Ok(FileCount::TooMany);
        }
    }
    Ok(FileCount::Counted(()))
}

/// Rows per batch of [`count_file`]. Small enough that a batch's keys (32 KiB) stay below the
/// allocator's mmap threshold and in the cache: with a row group's 65,536 rows, a third of a
/// count's CPU went to mapping, faulting and unmapping each batch's buffers.
const COUNT_BATCH_ROWS: usize = 8_192;

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs, repeats across batches, long and short values, NULLs, and values that share a
    /// 12-byte prefix: the counts are those of a plain map of the values.
    #[test]
    fn counts_agree_with_a_map_of_the_values() {
        let values: Vec<Option<&str>> = vec![
            Some("海陵区"),
            Some("海陵区"),
            None,
            Some("高港区"),
            Some("a very long value past twelve bytes"),
            Some("a very long value past twelve bytez"),
            Some("a very long value past twelve bytes"),
            Some(""),
            None,
            Some("海陵区"),
            Some("123456789012"),
            Some("1234567890123"),
        ];
        let mut counts = Counts::default();
        for chunk in values.chunks(5) {
            counts.add(&StringViewArray::from(chunk.to_vec()));
        }
        let mut expected: HashMap<Option<String>, u64> = HashMap::new();
        for v in &values {
            *expected.entry(v.map(str::to_string)).or_default() += 1;
        }
        let mut got: HashMap<Option<String>, u64> = HashMap::new();
        for (v, c) in &counts.short {
            got.insert(Some(inline_text(*v)), *c);
        }
        for (s, c) in &counts.long {
            got.insert(Some(s.clone()), *c);
        }
        if counts.nulls > 0 {
            got.insert(None, counts.nulls);
        }
        assert_eq!(got, expected);
        assert_eq!(counts.groups(), expected.len());
    }

    /// `column` and its row count per value as DataFusion's GROUP BY answers over the table's
    /// plain frame, NULL as `None`.
    async fn grouped(
        lake: &crate::table::Lake,
        id: uuid::Uuid,
        column: &str,
        version: Option<i64>,
    ) -> Vec<(Option<String>, i64)> {
        use datafusion::functions_aggregate::expr_fn::count;
        use datafusion::prelude::{ident, lit};
        let (_ctx, df, _) = lake.frame_at(id, version).await.unwrap().unwrap();
        let batches = df
            .aggregate(vec![ident(column)], vec![count(lit(1)).alias("count")])
            .unwrap()
            .sort(vec![ident(column).sort(true, false)])
            .unwrap()
            .collect()
            .await
            .unwrap();
        rows(&batches)
    }

    fn rows(batches: &[RecordBatch]) -> Vec<(Option<String>, i64)> {
        let mut out = Vec::new();
        for b in batches {
            let v = arrow::compute::cast(b.column(0), &DataType::Utf8).unwrap();
            let v = v.as_any().downcast_ref::<StringArray>().unwrap();
            let c = b.column(1).as_any().downcast_ref::<Int64Array>().unwrap();
            for i in 0..b.num_rows() {
                out.push((v.is_valid(i).then(|| v.value(i).to_string()), c.value(i)));
            }
        }
        out
    }

    async fn from_files(
        lake: &crate::table::Lake,
        id: uuid::Uuid,
        column: &str,
        version: Option<i64>,
        max: Option<usize>,
    ) -> Counted {
        let (table, _) = lake.table_at(id, version).await.unwrap().unwrap();
        count_in_files(&table, column, max).await.unwrap().expect("the files are read directly")
    }

    /// Counting from the data files answers what DataFusion's grouping answers over the plan:
    /// files of several appends (the first written before the column existed, so its rows
    /// are NULL), NULLs, values longer than a view holds, a column of so many values that its
    /// pages fall back from the dictionary, an older version; and it stops past `max_groups`.
    #[tokio::test]
    async fn files_count_as_the_grouping_does() {
        use crate::table::WriteMode;
        let dir = tempfile::tempdir().unwrap();
        let lake = crate::table::Lake::new(dir.path().to_str().unwrap()).unwrap();
        let id = uuid::Uuid::new_v4();
        let narrow = Arc::new(Schema::new(vec![Field::new("k", DataType::Utf8, false)]));
        let first = RecordBatch::try_new(
            narrow.clone(),
            vec![Arc::new(StringArray::from_iter_values((0..1_000).map(|i| format!("a{i:06}"))))],
        )
        .unwrap();
        lake.write_batches(id, narrow, WriteMode::Append, &["k"], [first]).await.unwrap();
        let wide = Arc::new(Schema::new(vec![
            Field::new("k", DataType::Utf8, false),
            Field::new("g", DataType::Utf8, true),
            Field::new("n", DataType::Utf8, true),
        ]));
        let districts = [Some("海陵区"), Some("高港区"), None, Some("a district name past twelve bytes"), Some("")];
        for (part, rows) in [("b", 30_000usize), ("c", 20_000)] {
            let batch = RecordBatch::try_new(
                wide.clone(),
                vec![
                    Arc::new(StringArray::from_iter_values((0..rows).map(|i| format!("{part}{i:06}")))),
                    Arc::new(StringArray::from_iter((0..rows).map(|i| districts[(i * 7 + i / 3) % districts.len()]))),
                    Arc::new(StringArray::from_iter_values((0..rows).map(|i| format!("{part}-name-{}", i % 9_000)))),
                ],
            )
            .unwrap();
            lake.write_batches(id, wide.clone(), WriteMode::Append, &["k"], [batch]).await.unwrap();
        }
        for column in ["g", "n", "k"] {
            for version in [None, Some(1)] {
                let Counted::Groups(b) = from_files(&lake, id, column, version, None).await else { panic!("no limit") };
                assert_eq!(rows(&[b]), grouped(&lake, id, column, version).await, "{column} at {version:?}");
            }
        }
        let g = grouped(&lake, id, "g", None).await;
        let nulls = 1_000
            + [30_000usize, 20_000].iter().map(|&n| (0..n).filter(|i| (i * 7 + i / 3) % 5 == 2).count()).sum::<usize>();
        assert_eq!(g.last(), Some(&(None, nulls as i64)), "the first file's rows and the NULLs");
        assert!(matches!(from_files(&lake, id, "n", None, Some(100)).await, Counted::TooMany));
        assert!(matches!(from_files(&lake, id, "g", None, Some(5)).await, Counted::Groups(_)));
        assert!(matches!(from_files(&lake, id, "g", None, Some(4)).await, Counted::TooMany));
    }
}
