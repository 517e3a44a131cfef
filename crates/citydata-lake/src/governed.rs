//! Governed reads: one DataFusion plan per read, built from the gate's decision — the grant's
//! row filter AND the caller's filter on the raw values, then the projection of the allowed
//! items with their masks, then sorting and paging on what the caller may see.

use crate::LakeError;
use crate::error::Result;
use crate::mask;
use crate::table::Lake;
use arrow::array::RecordBatch;
use arrow::datatypes::DataType;
use citydata_domain::filter::{CmpOp, Filter, Literal};
use citydata_domain::mask::MaskSpec;
use citydata_domain::resource::ItemName;
use datafusion::common::ScalarValue;
use datafusion::logical_expr::{ColumnarValue, Expr, Volatility, create_udf};
use datafusion::prelude::{DataFrame, SessionContext, ident, lit};
use std::collections::BTreeMap;
use std::sync::Arc;
use uuid::Uuid;

/// An aggregate function.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metric {
    Count,
    Sum,
    Avg,
    Min,
    Max,
}

impl Metric {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Count => "count",
            Self::Sum => "sum",
            Self::Avg => "avg",
            Self::Min => "min",
            Self::Max => "max",
        }
    }
}

/// The output of a governed plan as one partition of a streaming table.
pub(crate) struct GovernedPartition {
    pub(crate) df: DataFrame,
    pub(crate) schema: arrow::datatypes::SchemaRef,
}

impl std::fmt::Debug for GovernedPartition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("GovernedPartition")
    }
}

impl datafusion::physical_plan::streaming::PartitionStream for GovernedPartition {
    fn schema(&self) -> &arrow::datatypes::SchemaRef {
        &self.schema
    }

    fn execute(
        &self,
        _ctx: Arc<datafusion::execution::TaskContext>,
    ) -> datafusion::physical_plan::SendableRecordBatchStream {
        use futures::StreamExt;
        let df = self.df.clone();
        let batches = futures::stream::once(async move { df.execute_stream().await })
            .map(|started| match started {
                Ok(stream) => stream.boxed(),
                Err(e) => futures::stream::once(async move { Err(e) }).boxed(),
            })
            .flatten();
        Box::pin(datafusion::physical_plan::stream::RecordBatchStreamAdapter::new(self.schema.clone(), batches))
    }
}

/// A stable order for paging: the same rows in the same order on every page of a table
/// version, whatever the files' layout or the plan's parallelism.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Order {
    /// By these items' raw values ascending: the caller reads them unmasked (the key items).
    Items(Vec<ItemName>),
    /// By a keyed hash of these items' raw values (every column when empty): they are masked or
    /// hidden for the caller, so the order must reveal nothing about them.
    Hashed(Vec<ItemName>),
}

/// What one read may see and how it pages.
#[derive(Debug, Clone)]
pub struct GovernedRead<'a> {
    /// Output items, in order (already limited to what the decision allows).
    pub fields: Vec<ItemName>,
    pub masks: &'a BTreeMap<ItemName, MaskSpec>,
    /// Row filters, ANDed: the grant's and the caller's.
    pub filters: Vec<&'a Filter>,
    /// Items to sort by (`true`: descending); on the values as the caller sees them.
    pub sort: Vec<(ItemName, bool)>,
    pub offset: usize,
    pub limit: Option<usize>,
    pub version: Option<i64>,
    /// The server's secret, for pseudonyms.
    pub secret: &'a [u8],
    /// Free text that must occur in at least one of these (unmasked text) items (CKAN's `q`);
    /// each entry must hold (a `q` object searches per field).
    pub contains: Vec<(Vec<ItemName>, String)>,
    /// The tie-breaking order after `sort`, for reads that page.
    pub order: Option<Order>,
    /// Spatial items (WKB stored), shown as WKT.
    pub spatial: Vec<ItemName>,
    /// The boundary resource's districts, for the `district` location mask (without them
    /// that mask shows nothing).
    pub regions: Option<Arc<citydata_domain::geo::Regions>>,
}

impl GovernedRead<'_> {
    /// Whether the read lets every row of the version through and shows `item` as stored: no
    /// row filter (the grant's or the caller's), no free-text condition, no paging, and the
    /// item allowed, unmasked and not spatial. Only then may an answer about the item be
    /// computed from the data files without the governed plan
    /// ([`crate::group_count::count_in_files`]).
    pub(crate) fn sees_every_row_of(&self, item: &ItemName) -> bool {
        self.filters.is_empty()
            && self.contains.is_empty()
            && self.offset == 0
            && self.limit.is_none()
            && self.fields.contains(item)
            && !self.masks.contains_key(item)
            && !self.spatial.contains(item)
    }

    /// Whether the read's filters fix every key item to one value (`key = v` at the top level
    /// of the filters, which are ANDed): at most one row, from one page of one file when the
    /// table is written in key order.
    pub fn is_key_lookup(&self) -> bool {
        fn fixes(f: &Filter, k: &ItemName) -> bool {
            match f {
                Filter::Cmp { item, op: CmpOp::Eq, .. } => item == k,
                Filter::And(a, b) => fixes(a, k) || fixes(b, k),
                _ => false,
            }
        }
        let Some(Order::Items(keys)) = &self.order else { return false };
        !keys.is_empty() && keys.iter().all(|k| self.filters.iter().any(|f| fixes(f, k)))
    }
}

/// Names of the hidden order columns a paged plan carries until its final projection.
fn order_column(i: usize) -> String {
    format!("__citydata_order_{i}")
}

/// A keyed hash of the raw values of `columns` (each cast to text, NULL told apart from
/// empty), salted with the table id: an order that says nothing about the values.
fn order_hash(columns: Vec<Expr>, secret: &[u8], salt: Uuid) -> Expr {
    use arrow::array::{Array, BinaryBuilder, StringArray};
    use datafusion::functions::string::expr_fn::concat_ws;
    use hmac::{Hmac, Mac};
    let parts: Vec<Expr> = columns
        .into_iter()
        .map(|c| {
            datafusion::prelude::coalesce(vec![
                datafusion::prelude::concat(vec![lit("v"), datafusion::prelude::cast(c, DataType::Utf8)]),
                lit("n"),
            ])
        })
        .collect();
    let joined = concat_ws(lit("\u{1f}"), parts);
    let mut key = secret.to_vec();
    key.extend_from_slice(salt.as_bytes());
    let fun = Arc::new(move |args: &[ColumnarValue]| -> datafusion::error::Result<ColumnarValue> {
        let arrays = ColumnarValue::values_to_arrays(args)?;
        let text = arrays[0]
            .as_any()
            .downcast_ref::<StringArray>()
            .ok_or_else(|| datafusion::error::DataFusionError::Internal("order hash expects text".into()))?;
        let mut b = BinaryBuilder::with_capacity(text.len(), text.len() * 16);
        for v in text.iter() {
            let mut mac = Hmac::<sha2::Sha256>::new_from_slice(&key).expect("HMAC takes keys of any size");
            mac.update(v.unwrap_or("").as_bytes());
            b.append_value(&mac.finalize().into_bytes()[..16]);
        }
        Ok(ColumnarValue::Array(Arc::new(b.finish())))
    });
    let udf = create_udf("citydata_order_hash", vec![DataType::Utf8], DataType::Binary, Volatility::Immutable, fun);
    udf.call(vec![joined])
}

fn literal(v: &Literal) -> Expr {
    match v {
        Literal::Str(s) => lit(s.clone()),
        Literal::Int(i) => lit(*i),
        Literal::Dec(d) => {
            let scaled = citydata_domain::cast::parse_decimal(d, crate::schema::DECIMAL_SCALE as u32).unwrap_or(0);
            Expr::Literal(ScalarValue::Decimal128(Some(scaled), 38, crate::schema::DECIMAL_SCALE), None)
        }
        Literal::Bool(b) => lit(*b),
        Literal::Date(d) => {
            let days = (*d - chrono::NaiveDate::from_ymd_opt(1970, 1, 1).expect("epoch")).num_days() as i32;
            Expr::Literal(ScalarValue::Date32(Some(days)), None)
        }
        Literal::DateTime(t) => Expr::Literal(
            ScalarValue::TimestampMicrosecond(Some(t.timestamp_micros()), Some(crate::schema::TZ.into())),
            None,
        ),
    }
}

/// A filter as a DataFusion expression over the table's columns.
pub fn filter_expr(f: &Filter) -> Expr {
    filter_expr_in(f, &|_| false)
}

/// [`filter_expr`] over a frame that has the columns `has` names: each spatial test is
/// preceded by its range test on the item's bounding-box columns ([`crate::bbox::prefilter`]),
/// which file, row-group and page statistics can skip and which is decoded first.
pub fn filter_expr_in(f: &Filter, has: &dyn Fn(&str) -> bool) -> Expr {
    let exact = match f {
        Filter::And(a, b) => filter_expr_in(a, has).and(filter_expr_in(b, has)),
        Filter::Or(a, b) => filter_expr_in(a, has).or(filter_expr_in(b, has)),
        Filter::Not(a) => !filter_expr_in(a, has),
        Filter::Cmp { item, op, value } => {
            let c = ident(item.as_str());
            let v = literal(value);
            match op {
                CmpOp::Eq => c.eq(v),
                CmpOp::NotEq => c.not_eq(v),
                CmpOp::Lt => c.lt(v),
                CmpOp::LtEq => c.lt_eq(v),
                CmpOp::Gt => c.gt(v),
                CmpOp::GtEq => c.gt_eq(v),
            }
        }
        Filter::In { item, values, negated } => {
            ident(item.as_str()).in_list(values.iter().map(literal).collect(), *negated)
        }
        Filter::Between { item, low, high } => ident(item.as_str()).between(literal(low), literal(high)),
        Filter::Within { item, bbox } => crate::spatial::within_expr(item.as_str(), bbox),
        Filter::WithinRegion { item, code, shape } => crate::spatial::within_region_expr(item.as_str(), code, shape),
        Filter::Distance { item, lon, lat, meters, inclusive } => {
            crate::spatial::distance_expr(item.as_str(), *lon, *lat, *meters, *inclusive)
        }
        Filter::IsNull { item, negated } => {
            if *negated {
                ident(item.as_str()).is_not_null()
            } else {
                ident(item.as_str()).is_null()
            }
        }
    };
    match crate::bbox::prefilter(f, has) {
        Some(pre) => pre.and(exact),
        None => exact,
    }
}

/// `e` itself, behind a function the planner does not see through. The change feed orders its
/// union of images by hidden copies of the key items; when the planner knew a copy equal to its
/// item it sorted each branch by the item and then found the merged order unproven
/// (DataFusion 55's `SanityCheckPlan` refused the plan once spatial items' box columns were in
/// the feed's files).
fn opaque(e: Expr, t: &DataType) -> Expr {
    let fun = Arc::new(|args: &[ColumnarValue]| -> datafusion::error::Result<ColumnarValue> { Ok(args[0].clone()) });
    let udf = datafusion::logical_expr::create_udf(
        "citydata_order_key",
        vec![t.clone()],
        t.clone(),
        Volatility::Immutable,
        fun,
    );
    udf.call(vec![e])
}

/// A datetime column presented in the platform's zone (the same instants; only the zone of
/// the type changes), so every surface writes local times with their offset and SQL reads
/// naive literals and truncates days in local time. Other columns as they are.
fn local_time(e: Expr, out: &DataType, name: &str) -> Expr {
    if matches!(out, DataType::Timestamp(..)) {
        datafusion::prelude::cast(e, crate::schema::local_timestamp_type()).alias(name)
    } else {
        e
    }
}

/// The masked column as an expression: a UDF wrapping the Arrow kernel.
fn masked(
    item: &ItemName,
    spec: &MaskSpec,
    input: &DataType,
    secret: &[u8],
    regions: Option<&Arc<citydata_domain::geo::Regions>>,
) -> Expr {
    if *spec == MaskSpec::Clear {
        return ident(item.as_str());
    }
    let spec_c = spec.clone();
    let secret = secret.to_vec();
    let regions = regions.cloned();
    let out = mask::output_type(spec, input);
    let fun = Arc::new(move |args: &[ColumnarValue]| -> datafusion::error::Result<ColumnarValue> {
        let arrays = ColumnarValue::values_to_arrays(args)?;
        let result = match (&spec_c, &regions) {
            (MaskSpec::District, Some(r)) => crate::spatial::district(&arrays[0], r),
            _ => mask::apply(&spec_c, &arrays[0], &secret),
        }
        .map_err(|e| datafusion::error::DataFusionError::External(Box::new(e)))?;
        Ok(ColumnarValue::Array(result))
    });
    let name = format!("mask_{}_{}", spec.to_spec().replace(['(', ')', ','], "_"), item.as_str());
    let udf = create_udf(&name, vec![input.clone()], out, Volatility::Immutable, fun);
    udf.call(vec![ident(item.as_str())]).alias(item.as_str())
}

/// The session a governed read plans in: Parquet filters are evaluated while decoding (late
/// materialization), so a selective filter — a key lookup whose bloom filter left one row group
/// — decodes the filter's column first and the other columns only for the matching rows.
///
/// Every read session shares one runtime with a Parquet metadata cache (footers, page
/// indexes) that outlives a request. Data files are never changed in place (Delta writes new
/// paths), so a cached footer is never stale. Measured: no effect on local-disk lookups, a
/// little on S3 (BENCHMARKS.md, "Shared read runtime").
pub fn read_session() -> SessionContext {
    read_session_in(None)
}

/// [`read_session`] planning in `partitions` partitions (the number of cores when `None`).
/// A lookup by the whole key reads one page of one file: one partition spares it the tasks
/// and thread hand-overs of a parallel plan.
///
/// A session is a copy of a prototype built once per partition count: building one registers
/// every built-in function anew, which showed in a lookup's profile. The prototype has no
/// catalog (reads use `read_table`), so nothing registered by name could be shared between
/// copies: registering a table in a read session fails.
pub fn read_session_in(partitions: Option<usize>) -> SessionContext {
    type Prototypes =
        std::sync::Mutex<std::collections::HashMap<Option<usize>, Arc<datafusion::execution::SessionState>>>;
    static PROTOTYPES: std::sync::OnceLock<Prototypes> = std::sync::OnceLock::new();
    let prototype = {
        let mut prototypes = PROTOTYPES.get_or_init(Default::default).lock().unwrap_or_else(|e| e.into_inner());
        prototypes
            .entry(partitions)
            .or_insert_with(|| {
                Arc::new(
                    datafusion::execution::SessionStateBuilder::new()
                        .with_config(read_config(partitions).with_create_default_catalog_and_schema(false))
                        .with_runtime_env(read_runtime())
                        .with_default_features()
                        .build(),
                )
            })
            .clone()
    };
    // Copied outside the lock: concurrent reads do not wait on each other's copies.
    SessionContext::new_with_state(prototype.as_ref().clone())
}

/// The settings of a read session ([`read_session_in`]).
pub fn read_config(partitions: Option<usize>) -> datafusion::prelude::SessionConfig {
    let mut config = datafusion::prelude::SessionConfig::new();
    if let Some(n) = partitions {
        config = config.with_target_partitions(n.max(1));
    }
    let parquet = &mut config.options_mut().execution.parquet;
    parquet.pushdown_filters = true;
    parquet.reorder_filters = true;
    parquet.bloom_filter_on_read = true;
    config
}

/// The read sessions' runtime: the default one with a 128 MiB Parquet metadata cache.
fn read_runtime() -> Arc<datafusion::execution::runtime_env::RuntimeEnv> {
    static RT: std::sync::OnceLock<Arc<datafusion::execution::runtime_env::RuntimeEnv>> = std::sync::OnceLock::new();
    RT.get_or_init(|| {
        datafusion::execution::runtime_env::RuntimeEnvBuilder::new()
            .with_metadata_cache_limit(128 << 20)
            .build_arc()
            .unwrap_or_else(|_| Arc::new(datafusion::execution::runtime_env::RuntimeEnv::default()))
    })
    .clone()
}

/// Tables with more data files than this are not warmed ([`warm_page_indexes`]).
pub const WARM_FILES_MAX: usize = 1_000;

/// One data file of a table version, described as the scan describes it to DataFusion's
/// footer cache (path, size, a zero modification time: data files never change in place).
pub(crate) struct DataFile {
    pub meta: object_store::ObjectMeta,
    /// Whether rows of the file are deleted by a deletion vector.
    pub deletes: bool,
}

/// The data files of the table's version, `None` for a table of more than
/// [`WARM_FILES_MAX`] files (their footers are not kept).
pub(crate) fn data_files(table: &deltalake::DeltaTable) -> Option<Vec<DataFile>> {
    let snapshot = table.snapshot().ok()?;
    let log = snapshot.log_data();
    if log.num_files() > WARM_FILES_MAX {
        return None;
    }
    let root = table.table_url().clone();
    log.iter()
        .map(|f| {
            let url = root.join(f.path().as_ref()).ok()?;
            let meta = object_store::ObjectMeta {
                location: object_store::path::Path::from_url_path(url.path()).ok()?,
                size: u64::try_from(f.size()).ok()?,
                last_modified: chrono::DateTime::<chrono::Utc>::UNIX_EPOCH,
                e_tag: None,
                version: None,
            };
            Some(DataFile { meta, deletes: f.deletion_vector_descriptor().is_some() })
        })
        .collect()
}

/// A data file's footer with its page index, from the read runtime's cache (read and kept
/// there when it is not in it).
pub(crate) async fn footer(
    store: &dyn object_store::ObjectStore,
    meta: &object_store::ObjectMeta,
    cache: Arc<datafusion::execution::cache::cache_manager::FileMetadataCache>,
) -> datafusion::common::Result<Arc<parquet::file::metadata::ParquetMetaData>> {
    use datafusion::datasource::physical_plan::parquet::metadata::DFParquetMetadata;
    use parquet::file::metadata::PageIndexPolicy;
    DFParquetMetadata::new(store, meta)
        .with_file_metadata_cache(Some(cache))
        .with_page_index_policy(Some(PageIndexPolicy::Optional))
        .fetch_metadata()
        .await
}

/// The read runtime's cache of data file footers.
pub(crate) fn footer_cache() -> Arc<datafusion::execution::cache::cache_manager::FileMetadataCache> {
    read_runtime().cache_manager.get_file_metadata_cache()
}

/// Put each data file's footer *with its page index* into the read runtime's metadata cache
/// (those already there are not read again).
///
/// DataFusion caches a footer without the page index, and when a filter can use the index it
/// reads and decodes the index anew on every query — and copies the whole footer to attach it
/// (measured: a third of a lookup's CPU on a 19-file table). A cached footer that already
/// carries the index is used as it is. The cache key is the file's path with its size and a
/// zero modification time, exactly as delta-rs describes the file to the scan; data files are
/// never changed in place, so an entry is never stale. A table of more than
/// [`WARM_FILES_MAX`] files is left to DataFusion (its footers would not stay in the cache, and
/// every new version would read them all again).
pub(crate) async fn warm_page_indexes(table: &deltalake::DeltaTable) {
    use futures::StreamExt;
    let Some(files) = data_files(table) else { return };
    let metas: Vec<object_store::ObjectMeta> = files.into_iter().map(|f| f.meta).collect();
    let store = table.log_store().root_object_store(None);
    let cache = footer_cache();
    futures::stream::iter(metas.iter())
        .for_each_concurrent(8, |meta| {
            let (store, cache) = (store.clone(), cache.clone());
            async move {
                let fetched = footer(store.as_ref(), meta, cache).await;
                if let Err(e) = fetched {
                    tracing::debug!(file = %meta.location, error = %e, "page index not cached");
                }
            }
        })
        .await;
}

/// Rows of the sample [`Lake::aggregate_governed`] counts groups on before the whole table
/// (one row group of the data files).
pub const GROUP_PROBE_ROWS: usize = 65_536;

/// `batches` without the groups whose `count` is below `k`, and how many those were (order kept).
fn drop_small_groups(batches: Vec<RecordBatch>, k: i64) -> Result<(Vec<RecordBatch>, u64)> {
    use arrow::array::{Array, BooleanArray, Int64Array};
    let mut kept = Vec::with_capacity(batches.len());
    let mut dropped = 0u64;
    for b in batches {
        let counts = b
            .column_by_name("count")
            .and_then(|c| c.as_any().downcast_ref::<Int64Array>())
            .ok_or_else(|| LakeError::Other("aggregate without its count".into()))?;
        let keep: BooleanArray = counts.iter().map(|c| Some(c.unwrap_or(0) >= k)).collect();
        dropped += (keep.len() - keep.true_count()) as u64;
        kept.push(arrow::compute::filter_record_batch(&b, &keep)?);
    }
    Ok((kept, dropped))
}

/// How an aggregate groups: the group items, their `bucket` (`day`/`month`/`year`, a class
/// width, grid metres for a spatial item, or `region`) and the districts `region` uses.
#[derive(Clone, Copy)]
pub struct Grouping<'a> {
    pub items: &'a [ItemName],
    pub bucket: Option<&'a str>,
    pub regions: Option<&'a Arc<citydata_domain::geo::Regions>>,
}

impl Lake {
    async fn frame(&self, id: Uuid, version: Option<i64>) -> Result<Option<(SessionContext, DataFrame)>> {
        Ok(self.frame_at(id, version).await?.map(|(ctx, df, _)| (ctx, df)))
    }

    /// The table at `version` (the current one when `None`) as a frame, with the version read.
    pub(crate) async fn frame_at(
        &self,
        id: Uuid,
        version: Option<i64>,
    ) -> Result<Option<(SessionContext, DataFrame, i64)>> {
        self.frame_in(id, version, None, &[]).await
    }

    /// The table at `version` (the current one when `None`; a version before an erasure is
    /// refused) and the version read; `None` before the first write.
    pub(crate) async fn table_at(
        &self,
        id: Uuid,
        version: Option<i64>,
    ) -> Result<Option<(deltalake::DeltaTable, i64)>> {
        let mut table = self.open_latest(id).await?;
        let Some(current) = table.version() else { return Ok(None) };
        if let Some(v) = version {
            crate::erase::load_checked(&mut table, v).await?;
        }
        Ok(Some((table, version.unwrap_or(current as i64))))
    }

    /// [`Self::frame_at`] in a session of `partitions` partitions ([`read_session_in`]); with
    /// `key_order` (the key items), scans read the files in key order when their key ranges
    /// are disjoint ([`crate::key_order`]).
    async fn frame_in(
        &self,
        id: Uuid,
        version: Option<i64>,
        partitions: Option<usize>,
        key_order: &[String],
    ) -> Result<Option<(SessionContext, DataFrame, i64)>> {
        let Some((table, read)) = self.table_at(id, version).await? else { return Ok(None) };
        let mut provider = table.table_provider().await?;
        let mut partitions = partitions;
        if !key_order.is_empty()
            && let Some(order) = crate::key_order::KeyOrder::of(&table, &provider.schema(), key_order)
        {
            provider = Arc::new(crate::key_order::KeyOrdered::new(provider, order));
            // The files are read one after another; more partitions would only deal the
            // batches round robin and need a merge to put them back in order.
            partitions = Some(1);
        }
        let ctx = read_session_in(partitions);
        table.update_datafusion_session(&ctx.state())?;
        let df = ctx.read_table(provider)?;
        Ok(Some((ctx, df, read)))
    }

    fn filtered(df: DataFrame, r: &GovernedRead<'_>) -> Result<DataFrame> {
        let mut df = df;
        let schema = df.schema().clone();
        let has = |c: &str| schema.has_column_with_unqualified_name(c);
        for f in &r.filters {
            df = df.filter(filter_expr_in(f, &has))?;
        }
        for (items, text) in &r.contains {
            let pattern = format!("%{}%", text.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_"));
            let any = items.iter().map(|i| ident(i.as_str()).like(lit(pattern.clone()))).reduce(|a, b| a.or(b));
            if let Some(e) = any {
                df = df.filter(e)?;
            } else {
                df = df.filter(lit(false))?;
            }
        }
        Ok(df)
    }

    /// The rows of a read, masked and paged. Empty when the table has no version yet.
    pub async fn read_governed(&self, id: Uuid, r: &GovernedRead<'_>) -> Result<Vec<RecordBatch>> {
        Ok(self.read_governed_at(id, r).await?.0)
    }

    /// The rows of a read and the table version they come from (`None`: no version yet), so a
    /// cursor can pin the next page to the same version.
    pub async fn read_governed_at(&self, id: Uuid, r: &GovernedRead<'_>) -> Result<(Vec<RecordBatch>, Option<i64>)> {
        let Some((_ctx, df, version)) = self.governed_frame(id, r).await? else {
            return Ok((vec![], None));
        };
        Ok((df.collect().await?, Some(version)))
    }

    /// `EXPLAIN ANALYZE` of [`Self::read_governed_at`]'s plan (for profiling reads; the
    /// `explain_page` example).
    pub async fn explain_governed(&self, id: Uuid, r: &GovernedRead<'_>) -> Result<String> {
        let Some((_ctx, df, _)) = self.governed_frame(id, r).await? else { return Ok(String::new()) };
        let batches = df.explain(false, true)?.collect().await?;
        Ok(arrow::util::pretty::pretty_format_batches(&batches)?.to_string())
    }

    /// The plan of [`Self::read_governed_at`], and the version it reads.
    pub(crate) async fn governed_frame(
        &self,
        id: Uuid,
        r: &GovernedRead<'_>,
    ) -> Result<Option<(SessionContext, DataFrame, i64)>> {
        let partitions = r.is_key_lookup().then_some(1);
        // A page in key order (no other sort) reads the files in key order and stops early.
        // Not with a spatial test: its box may hold a handful of rows, and a scan that cannot
        // stop early is faster on every core than in key order on one.
        let key_order = match &r.order {
            Some(Order::Items(items))
                if r.sort.is_empty() && r.limit.is_some() && !r.filters.iter().any(|f| crate::bbox::is_spatial(f)) =>
            {
                items.iter().map(|i| i.as_str().to_string()).collect()
            }
            _ => vec![],
        };
        let Some((ctx, df, version)) = self.frame_in(id, r.version, partitions, &key_order).await? else {
            return Ok(None);
        };
        Ok(Some((ctx, self.project_in(id, df, r)?, version)))
    }

    /// The rows of a read as a stream of batches, for exports in constant memory. `None` when
    /// the table has no version yet.
    pub async fn stream_governed(
        &self,
        id: Uuid,
        r: &GovernedRead<'_>,
    ) -> Result<Option<datafusion::physical_plan::SendableRecordBatchStream>> {
        let Some((_ctx, df)) = self.frame(id, r.version).await? else { return Ok(None) };
        let df = self.project(df, r)?;
        Ok(Some(df.execute_stream().await?))
    }

    /// The allowed items of `df`, each masked as the decision says.
    fn projection(df: &DataFrame, r: &GovernedRead<'_>) -> Vec<Expr> {
        let schema = df.schema();
        r.fields
            .iter()
            .map(|f| {
                let input = schema
                    .field_with_unqualified_name(f.as_str())
                    .map(|x| x.data_type().clone())
                    .unwrap_or(DataType::Utf8);
                let (e, out) = match r.masks.get(f) {
                    Some(spec) => {
                        (masked(f, spec, &input, r.secret, r.regions.as_ref()), mask::output_type(spec, &input))
                    }
                    None => (ident(f.as_str()), input),
                };
                if r.spatial.contains(f)
                    && matches!(out, DataType::Binary | DataType::BinaryView | DataType::LargeBinary)
                {
                    return crate::spatial::present(e, f.as_str(), &out);
                }
                local_time(e, &out, f.as_str())
            })
            .collect()
    }

    /// The read as one plan: filters on raw values, the masked projection (plus hidden order
    /// columns computed from the raw values), `sort` on what the caller sees, the stable order
    /// as tie-breaker, paging, and the final projection without the order columns.
    fn project_in(&self, id: Uuid, df: DataFrame, r: &GovernedRead<'_>) -> Result<DataFrame> {
        let mut projection = Self::projection(&df, r);
        let order: Vec<Expr> = match &r.order {
            None => vec![],
            Some(Order::Items(items)) => items.iter().map(|i| ident(i.as_str())).collect(),
            Some(Order::Hashed(items)) => {
                let cols: Vec<Expr> = if items.is_empty() {
                    df.schema()
                        .fields()
                        .iter()
                        .filter(|f| !crate::bbox::is_hidden(f.name()))
                        .map(|f| ident(f.name()))
                        .collect()
                } else {
                    items.iter().map(|i| ident(i.as_str())).collect()
                };
                vec![order_hash(cols, r.secret, id)]
            }
        };
        let n_order = order.len();
        projection.extend(order.into_iter().enumerate().map(|(i, e)| e.alias(order_column(i))));
        let df = Self::filtered(df, r)?;
        let mut df = df.select(projection)?;
        let mut sort: Vec<datafusion::logical_expr::SortExpr> =
            // NULLs last ascending, first descending: PostgreSQL's (and CKAN's) rule.
            r.sort.iter().map(|(c, desc)| ident(c.as_str()).sort(!desc, *desc)).collect();
        sort.extend((0..n_order).map(|i| ident(order_column(i)).sort(true, true)));
        if !sort.is_empty() {
            df = df.sort(sort)?;
        }
        let mut df = df.limit(r.offset, r.limit)?;
        if n_order > 0 {
            df = df.select(r.fields.iter().map(|f| ident(f.as_str())).collect::<Vec<_>>())?;
        }
        Ok(df)
    }

    pub(crate) fn project(&self, df: DataFrame, r: &GovernedRead<'_>) -> Result<DataFrame> {
        self.project_in(Uuid::nil(), df, r)
    }

    /// Grouped metrics over what the read may see (grouping on the masked values). Groups with
    /// fewer rows than `min_group` are dropped; returns the batches and how many were dropped.
    ///
    /// With `max_groups`, more groups than that is an error (`too_many_groups`), found first on
    /// a sample of the first [`GROUP_PROBE_ROWS`] rows the read lets through: a grouping by a
    /// column of names then costs a sample's scan, not a hash table of every distinct value.
    /// The sample decides only a refusal the full answer would make too (a sample cannot have
    /// more groups than the whole).
    pub async fn aggregate_governed(
        &self,
        id: Uuid,
        r: &GovernedRead<'_>,
        grouping: &Grouping<'_>,
        metrics: &[(Metric, Option<ItemName>)],
        min_group: Option<u32>,
        max_groups: Option<usize>,
    ) -> Result<(Vec<RecordBatch>, u64)> {
        let Grouping { items: group_by, bucket, regions } = *grouping;
        use datafusion::functions_aggregate::expr_fn::{avg, count, max, min, sum};
        let too_many = |n: usize| LakeError::Input {
            code: "too_many_groups",
            message: format!(
                "分组超过 {n} 个：请按取值较少的信息项分组、使用 bucket 或加筛选条件 / more than {n} groups: group by an item with fewer values, use bucket, or filter"
            ),
            line: None,
            column: Some("group_by".into()),
        };
        let counted = |c: crate::group_count::Counted| match c {
            crate::group_count::Counted::TooMany => Err(too_many(max_groups.unwrap_or_default())),
            crate::group_count::Counted::Groups(batch) => match min_group {
                Some(k) => drop_small_groups(vec![batch], i64::from(k)),
                None => Ok((vec![batch], 0)),
            },
        };
        let counts_only = bucket.is_none() && metrics.iter().all(|(_, item)| item.is_none());
        // Rows counted by one text item over a read that sees every row and the item as
        // stored (the owner's charts, the public's unfiltered ones): counted from the data
        // files' dictionary pages, without the plan. Any other read takes the plan below.
        if let [g] = group_by
            && counts_only
            && r.sees_every_row_of(g)
        {
            let Some((table, _)) = self.table_at(id, r.version).await? else { return Ok((vec![], 0)) };
            if let Some(c) = crate::group_count::count_in_files(&table, g.as_str(), max_groups).await? {
                return counted(c);
            }
        }
        let Some((_ctx, df)) = self.frame(id, r.version).await? else { return Ok((vec![], 0)) };
        let df = self.project(df, r)?;
        // A date or datetime group by `bucket` (day, month, year): truncated in the platform's
        // zone (the projection presents datetimes in it), so a day is the local day. A numeric
        // group by `bucket` = a class width: floor(x / width) × width.
        let df = match bucket {
            Some(b) => {
                let schema = df.schema().clone();
                let mut df = df;
                for g in group_by {
                    let Ok(f) = schema.field_with_unqualified_name(g.as_str()) else { continue };
                    let trunc = |e: Expr| datafusion::functions::datetime::expr_fn::date_trunc(lit(b.to_string()), e);
                    let width = b.parse::<f64>().ok().filter(|w| w.is_finite() && *w > 0.0);
                    let e = match f.data_type() {
                        // A spatial item (WKT after the projection) in grid cells of `width`
                        // metres: each geometry becomes its cell's centre.
                        _ if r.spatial.contains(g) => match (b, regions, width) {
                            ("region", Some(regions), _) => {
                                crate::spatial::region_text_expr(ident(g.as_str()), regions)
                            }
                            (_, _, Some(w)) => {
                                crate::spatial::grid_text_expr(ident(g.as_str()), w.clamp(10.0, 100_000.0))
                            }
                            _ => continue,
                        },
                        // Numbers in classes of `width`: each value becomes its class's lower bound.
                        t if t.is_numeric() => {
                            let Some(w) = width else { continue };
                            let x = datafusion::prelude::cast(ident(g.as_str()), DataType::Float64);
                            datafusion::functions::math::expr_fn::floor(x / lit(w)) * lit(w)
                        }
                        _ if width.is_some() => continue,
                        DataType::Timestamp(..) => {
                            datafusion::prelude::cast(trunc(ident(g.as_str())), crate::schema::local_timestamp_type())
                        }
                        // A date has no zone: truncated as a naive timestamp at its midnight
                        // (the same day, month and year; no per-value zone arithmetic).
                        DataType::Date32 => datafusion::prelude::cast(
                            trunc(datafusion::prelude::cast(
                                ident(g.as_str()),
                                DataType::Timestamp(arrow::datatypes::TimeUnit::Second, None),
                            )),
                            DataType::Date32,
                        ),
                        _ => continue,
                    };
                    df = df.with_column(g.as_str(), e)?;
                }
                df
            }
            None => df,
        };
        let groups: Vec<Expr> = group_by.iter().map(|g| ident(g.as_str())).collect();
        let mut aggs: Vec<Expr> = vec![count(lit(1)).alias("count")];
        for (m, item) in metrics {
            let Some(item) = item else { continue };
            let c = ident(item.as_str());
            // Decimal sums and averages in 76 digits: exact, and no overflow of the column's 38.
            let wide = match df.schema().field_with_unqualified_name(item.as_str()).map(|f| f.data_type().clone()) {
                Ok(DataType::Decimal128(_, scale)) if matches!(m, Metric::Sum | Metric::Avg) => {
                    datafusion::prelude::cast(c.clone(), DataType::Decimal256(76, scale))
                }
                _ => c.clone(),
            };
            let name = format!("{}_{}", m.as_str(), item.as_str());
            aggs.push(
                match m {
                    Metric::Count => count(c),
                    Metric::Sum => sum(wide),
                    Metric::Avg => avg(wide),
                    Metric::Min => min(c),
                    Metric::Max => max(c),
                }
                .alias(name),
            );
        }
        if let Some(m) = max_groups.filter(|_| !groups.is_empty()) {
            let probe = df.clone().limit(0, Some(GROUP_PROBE_ROWS))?.aggregate(groups.clone(), vec![])?.count().await?;
            if probe > m {
                return Err(too_many(m));
            }
        }
        // Rows counted by one text item (the commonest chart): counted directly, not grouped.
        if let [g] = group_by
            && counts_only
            && crate::group_count::applies(&df, g.as_str())
        {
            return counted(crate::group_count::count_by_text(df, g.as_str(), max_groups).await?);
        }
        let grouped = df.aggregate(groups.clone(), aggs)?;
        let grouped = if groups.is_empty() {
            grouped
        } else {
            grouped.sort(groups.iter().map(|g| g.clone().sort(true, false)).collect())?
        };
        // One aggregation: the small groups are counted and dropped from its answer (before,
        // the public's suppression ran the whole aggregation twice).
        let batches = grouped.collect().await?;
        if let Some(m) = max_groups
            && batches.iter().map(RecordBatch::num_rows).sum::<usize>() > m
        {
            return Err(too_many(m));
        }
        match min_group {
            Some(k) => drop_small_groups(batches, i64::from(k)),
            None => Ok((batches, 0)),
        }
    }

    /// The read as an opaque table for the SQL sandbox. `None` when empty.
    ///
    /// Opaque on purpose: a view (`DataFrame::into_view`) exposes its plan, so the optimizer
    /// would merge the statement's WHERE with the grant's row filter and push both into the
    /// scan, where a predicate that can fail (`1/(CASE WHEN … THEN 0 ELSE 1 END)`) would run on
    /// rows outside the grant and answer with an error or not — one bit per statement. Here
    /// the governed plan runs in its own session and the statement only ever sees its output
    /// (no filter pushdown into a streaming table).
    pub async fn governed_view(
        &self,
        id: Uuid,
        r: &GovernedRead<'_>,
    ) -> Result<Option<Arc<dyn datafusion::catalog::TableProvider>>> {
        use datafusion::catalog::streaming::StreamingTable;
        let Some((_ctx, df)) = self.frame(id, r.version).await? else { return Ok(None) };
        let df = self.project(df, r)?;
        let schema: arrow::datatypes::SchemaRef = Arc::new(df.schema().as_arrow().clone());
        let part = Arc::new(GovernedPartition { df, schema: schema.clone() });
        Ok(Some(Arc::new(StreamingTable::try_new(schema, vec![part])?)))
    }

    /// How many rows the read's filters let through (for `count=exact`).
    pub async fn count_governed(&self, id: Uuid, r: &GovernedRead<'_>) -> Result<u64> {
        let Some((_ctx, df)) = self.frame(id, r.version).await? else { return Ok(0) };
        Ok(Self::filtered(df, r)?.count().await? as u64)
    }

    /// An estimate of how many rows the read's filters let through, and whether it is one
    /// (`count=estimated`, CKAN's `total_estimation_threshold`): the table's row count (from
    /// the Delta log's statistics) times the share of its first `sample` rows, in scan order,
    /// that pass the filters. Exact (`false`) when the read has no filters or the table holds
    /// at most `sample` rows.
    ///
    /// Only for reads whose filters are all the caller's own: under a grant's row filter the
    /// table's whole size, which that grantee may not learn, would be a factor of the answer.
    pub async fn estimate_governed(&self, id: Uuid, r: &GovernedRead<'_>, sample: usize) -> Result<(u64, bool)> {
        let Some((_ctx, df, _)) = self.frame_at(id, r.version).await? else { return Ok((0, false)) };
        let total = df.clone().count().await? as u64;
        if r.filters.is_empty() && r.contains.is_empty() {
            return Ok((total, false));
        }
        if total <= sample as u64 {
            return Ok((Self::filtered(df, r)?.count().await? as u64, false));
        }
        let hits = Self::filtered(df.limit(0, Some(sample))?, r)?.count().await? as u64;
        Ok(((hits as f64 * total as f64 / sample as f64).round() as u64, true))
    }

    /// The rows that changed after table version `since` (exclusive) up to the current
    /// version, from the Delta change data feed, as the read may see them: the allowed items
    /// masked, then `_change_type` (`insert`, `update_postimage`, `delete`) and
    /// `_commit_version`, in commit order (then the read's stable order) and paged. `None`
    /// when the table has no version yet. A replace shows as the deletion of every old row and
    /// the insertion of every new one.
    ///
    /// The filters (the grant's and the caller's) are judged on both images of an update, so
    /// a synced copy stays equal to what `rows` returns: a row an update moves out of the
    /// filter arrives as a delete (its old image), one it moves in as an insert. Updates are
    /// paired by `keys` within their commit (updates only come from merges on the key items).
    pub async fn changes_governed(
        &self,
        id: Uuid,
        since: i64,
        until: Option<i64>,
        keys: &[ItemName],
        r: &GovernedRead<'_>,
    ) -> Result<Option<(Vec<RecordBatch>, i64)>> {
        use datafusion::common::JoinType;
        use datafusion::prelude::{coalesce, when};
        use deltalake::delta_datafusion::DeltaCdfTableProvider;
        let table = self.open(self.table_url(id)?).await?;
        let Some(current) = table.version() else { return Ok(None) };
        let current = current as i64;
        // -1: from the first version on (Delta Sharing's `startingVersion=0`).
        if since < -1 {
            return Err(crate::LakeError::InvalidVersion(since));
        }
        // Pinned pages end at the version the first page reported.
        let current = match until {
            Some(u) if u > current => return Err(crate::LakeError::InvalidVersion(u)),
            Some(u) => u,
            None => current,
        };
        // The feed after `since` starts at `since + 1`: it must not reach into erased versions.
        if let Some(e) = crate::erase::erased_before_of(&table)
            && since + 1 < e
        {
            return Err(crate::LakeError::VersionErased { asked: since, erased_before: e });
        }
        if since >= current {
            return Ok(Some((vec![], current)));
        }
        let enabled = table
            .snapshot()?
            .metadata()
            .configuration()
            .get("delta.enableChangeDataFeed")
            .is_some_and(|v| v.eq_ignore_ascii_case("true"));
        if !enabled {
            return Err(crate::LakeError::input(
                "change_feed_unavailable",
                "此表创建时未开启变更数据记录，无法提供增量；请整表读取 / this table records no change feed: read it whole",
            ));
        }
        let builder = table.scan_cdf().with_starting_version((since + 1) as u64).with_ending_version(current as u64);
        let ctx = SessionContext::new();
        let df = ctx.read_table(Arc::new(DeltaCdfTableProvider::try_new(builder)?))?;
        // The feed's filters are the plain tests: the box columns are left out at once.
        let kept: Vec<Expr> = df
            .schema()
            .fields()
            .iter()
            .filter(|f| !crate::bbox::is_hidden(f.name()))
            .map(|f| ident(f.name()))
            .collect();
        let df = df.select(kept)?;
        let version_col = || datafusion::prelude::cast(ident("_commit_version"), DataType::Int64);
        let inside = r.filters.iter().map(|f| filter_expr(f)).reduce(|a, b| a.and(b));
        let columns: Vec<Expr> = df.schema().fields().iter().map(|f| ident(f.name())).collect();
        let df = match inside {
            // No filter: every change as it is; the old image of an update is not sent.
            None => df.filter(ident("_change_type").not_eq(lit("update_preimage")))?,
            Some(inside) => {
                let df = df.with_column("__citydata_in", coalesce(vec![inside, lit(false)]))?;
                let plain = df
                    .clone()
                    .filter(ident("_change_type").in_list(vec![lit("insert"), lit("delete")], false))?
                    .filter(ident("__citydata_in"))?
                    .select(columns.clone())?;
                if keys.is_empty() {
                    plain
                } else {
                    // One side of each update: its keys, its commit and whether it is inside.
                    let side = |kind: &str, flag: &str| -> Result<DataFrame> {
                        let mut cols: Vec<Expr> = keys
                            .iter()
                            .enumerate()
                            .map(|(i, k)| ident(k.as_str()).alias(format!("__citydata_k{i}")))
                            .collect();
                        cols.push(version_col().alias("__citydata_v"));
                        cols.push(ident("__citydata_in").alias(flag));
                        Ok(df.clone().filter(ident("_change_type").eq(lit(kind.to_string())))?.select(cols)?)
                    };
                    let mut left_on: Vec<String> = keys.iter().map(|k| k.to_string()).collect();
                    left_on.push("__citydata_lv".into());
                    let right_on: Vec<String> = (0..keys.len())
                        .map(|i| format!("__citydata_k{i}"))
                        .chain(std::iter::once("__citydata_v".to_string()))
                        .collect();
                    let left_refs: Vec<&str> = left_on.iter().map(String::as_str).collect();
                    let right_refs: Vec<&str> = right_on.iter().map(String::as_str).collect();
                    let image = |kind: &str| -> Result<DataFrame> {
                        Ok(df
                            .clone()
                            .filter(ident("_change_type").eq(lit(kind.to_string())))?
                            .with_column("__citydata_lv", version_col())?)
                    };
                    // New images inside: an update when the old image was inside too, else an insert.
                    let post = image("update_postimage")?
                        .join(
                            side("update_preimage", "__citydata_other")?,
                            JoinType::Left,
                            &left_refs,
                            &right_refs,
                            None,
                        )?
                        .filter(ident("__citydata_in"))?;
                    let post_kind =
                        when(coalesce(vec![ident("__citydata_other"), lit(false)]), lit("update_postimage"))
                            .otherwise(lit("insert"))?;
                    let post = post.select(
                        columns
                            .iter()
                            .map(|c| {
                                if *c == ident("_change_type") {
                                    post_kind.clone().alias("_change_type")
                                } else {
                                    c.clone()
                                }
                            })
                            .collect::<Vec<_>>(),
                    )?;
                    // Old images inside whose new image is not: the row left the caller's view.
                    let pre = image("update_preimage")?
                        .join(
                            side("update_postimage", "__citydata_other")?,
                            JoinType::Left,
                            &left_refs,
                            &right_refs,
                            None,
                        )?
                        .filter(ident("__citydata_in").and(!coalesce(vec![ident("__citydata_other"), lit(false)])))?;
                    let pre = pre.select(
                        columns
                            .iter()
                            .map(|c| {
                                if *c == ident("_change_type") {
                                    lit("delete").alias("_change_type")
                                } else {
                                    c.clone()
                                }
                            })
                            .collect::<Vec<_>>(),
                    )?;
                    plain.union(post)?.union(pre)?
                }
            }
        };
        let mut projection = Self::projection(&df, r);
        projection.push(ident("_change_type"));
        projection.push(version_col().alias("_commit_version"));
        let order: Vec<Expr> = match &r.order {
            None => vec![],
            Some(Order::Items(items)) => items
                .iter()
                .map(|i| {
                    let t = df.schema().field_with_unqualified_name(i.as_str()).map(|f| f.data_type().clone());
                    opaque(ident(i.as_str()), &t.unwrap_or(DataType::Utf8))
                })
                .collect(),
            Some(Order::Hashed(items)) => {
                let cols: Vec<Expr> = if items.is_empty() {
                    r.fields.iter().map(|i| ident(i.as_str())).collect()
                } else {
                    items.iter().map(|i| ident(i.as_str())).collect()
                };
                vec![order_hash(cols, r.secret, id)]
            }
        };
        let n_order = order.len();
        // Within a commit, a row's delete sorts before its insert.
        let kind_rank = when(ident("_change_type").eq(lit("delete")), lit(0i32)).otherwise(lit(1i32))?;
        projection.push(kind_rank.alias("__citydata_kind"));
        projection.extend(order.into_iter().enumerate().map(|(i, e)| e.alias(order_column(i))));
        let df = df.select(projection)?;
        let mut sort = vec![ident("_commit_version").sort(true, true), ident("__citydata_kind").sort(true, true)];
        sort.extend((0..n_order).map(|i| ident(order_column(i)).sort(true, true)));
        let df = df.sort(sort)?.limit(r.offset, r.limit)?;
        let mut out: Vec<Expr> = r.fields.iter().map(|f| ident(f.as_str())).collect();
        out.push(ident("_change_type"));
        out.push(ident("_commit_version"));
        let df = df.select(out)?;
        Ok(Some((df.collect().await?, current)))
    }
}

#[cfg(test)]
mod session_tests {
    use super::*;

    /// Sessions are copies of one prototype: each keeps its settings, and none can register a
    /// table by name that another copy would then see.
    #[tokio::test]
    async fn read_sessions_are_copies_that_share_no_tables() {
        let one = read_session_in(Some(1));
        assert_eq!(one.state().config().target_partitions(), 1);
        assert!(one.state().config().options().execution.parquet.pushdown_filters);
        let schema =
            Arc::new(arrow::datatypes::Schema::new(vec![arrow::datatypes::Field::new("a", DataType::Int32, true)]));
        let table = Arc::new(datafusion::datasource::MemTable::try_new(schema, vec![vec![]]).unwrap());
        assert!(one.register_table("t", table).is_err(), "a read session has no catalog to register into");
        assert!(read_session_in(Some(1)).table("t").await.is_err());
        assert!(read_session().table("t").await.is_err());
        let df = one.read_empty().unwrap().select(vec![lit(1).alias("x")]).unwrap();
        assert_eq!(df.collect().await.unwrap()[0].num_rows(), 1, "a copy plans and runs");
    }
}

#[cfg(test)]
mod key_lookup_tests {
    use super::*;
    use citydata_domain::filter::Literal;

    #[test]
    fn a_key_lookup_fixes_every_key_item() {
        let name = |s: &str| ItemName::parse(s).unwrap();
        let eq = |i: &str, v: &str| Filter::Cmp { item: name(i), op: CmpOp::Eq, value: Literal::Str(v.into()) };
        let masks = BTreeMap::new();
        fn lookup<'a>(masks: &'a BTreeMap<ItemName, MaskSpec>, filters: Vec<&'a Filter>, order: Option<Order>) -> bool {
            GovernedRead {
                fields: vec![],
                masks,
                filters,
                sort: vec![],
                offset: 0,
                limit: Some(1),
                version: None,
                secret: b"s",
                contains: vec![],
                order,
                spatial: vec![],
                regions: None,
            }
            .is_key_lookup()
        }
        let read = |filters, order| lookup(&masks, filters, order);
        let (a, b, other) = (eq("a", "1"), eq("b", "2"), eq("c", "3"));
        let both =
            Filter::And(Box::new(other.clone()), Box::new(Filter::And(Box::new(a.clone()), Box::new(b.clone()))));
        let keys = || Some(Order::Items(vec![name("a"), name("b")]));
        assert!(read(vec![&a, &b], keys()));
        assert!(read(vec![&both], keys()), "inside ANDs");
        assert!(!read(vec![&a], keys()), "one of two key items");
        let either = Filter::Or(Box::new(a.clone()), Box::new(b.clone()));
        assert!(!read(vec![&either], keys()), "an OR is no lookup");
        let lt = Filter::Cmp { item: name("a"), op: CmpOp::Lt, value: Literal::Str("1".into()) };
        assert!(!read(vec![&lt, &b], keys()));
        assert!(!read(vec![&a, &b], Some(Order::Hashed(vec![]))), "no key order");
        assert!(!read(vec![&a, &b], None));
    }
}

#[cfg(test)]
mod page_index_tests {
    use super::*;
    use crate::table::WriteMode;
    use arrow::array::StringArray;
    use arrow::datatypes::{DataType, Field, Schema};
    use datafusion::datasource::physical_plan::parquet::metadata::CachedParquetMetaData;

    /// A read finds every data file's footer cached with its page index, under the key the
    /// scan itself uses (one entry per file: a footer cached under another key would be a
    /// second entry, and the scan would decode the index again on every query).
    #[tokio::test]
    async fn reads_find_footers_cached_with_their_page_index() {
        let dir = tempfile::tempdir().unwrap();
        let lake = Lake::new(dir.path().to_str().unwrap()).unwrap();
        let id = Uuid::new_v4();
        let schema = Arc::new(Schema::new(vec![Field::new("k", DataType::Utf8, true)]));
        for part in 0..3 {
            let batch = RecordBatch::try_new(
                schema.clone(),
                vec![Arc::new(StringArray::from_iter_values((0..20_000).map(|i| format!("{part}-{i:08}"))))],
            )
            .unwrap();
            lake.write_batches(id, schema.clone(), WriteMode::Append, &["k"], [batch]).await.unwrap();
        }
        let (_ctx, df, _) = lake.frame_at(id, None).await.unwrap().unwrap();
        let found = df.filter(ident("k").eq(lit("1-00012345"))).unwrap().collect().await.unwrap();
        assert_eq!(found.iter().map(|b| b.num_rows()).sum::<usize>(), 1);
        let table_dir = lake.table_url(id).unwrap().to_file_path().unwrap();
        let prefix = object_store::path::Path::from_absolute_path(&table_dir).unwrap();
        let entries: Vec<_> = read_runtime()
            .cache_manager
            .get_file_metadata_cache()
            .list_entries()
            .into_iter()
            .filter(|(k, _)| k.as_ref().starts_with(prefix.as_ref()))
            .collect();
        assert_eq!(entries.len(), 3, "one entry per data file: {:?}", entries.iter().map(|e| &e.0).collect::<Vec<_>>());
        for (path, e) in entries {
            let m = e.value.file_metadata.as_any().downcast_ref::<CachedParquetMetaData>().unwrap().parquet_metadata();
            assert!(m.column_index().is_some() && m.offset_index().is_some(), "{path} without its page index");
        }
    }
}
