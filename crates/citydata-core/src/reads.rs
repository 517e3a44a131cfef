//! Governed reads through the one gate: authorize by `decide`, build the plan from its
//! `Allow`, return rows, audit the read with its row count.

use crate::audit::Actor;
use crate::gate::{Gated, resolve};
use crate::{Core, CoreError, RequestMeta};
use base64::Engine;
use citydata_domain::audit::Outcome;
use citydata_domain::policy::{Action, Allow};
use citydata_domain::principal::Principal;
use citydata_domain::resource::{ItemName, Resource};
use citydata_domain::{FieldError, ValidationErrors};
use citydata_lake::governed::GovernedRead;
use serde::Serialize;
use serde_json::Value;
use std::time::Instant;

/// Query parameters of `GET .../rows`, as received.
#[derive(Debug, Clone, Default)]
pub struct RowsParams {
    /// Comma-separated items (names or titles); default: every allowed item.
    pub fields: Option<String>,
    pub filter: Option<String>,
    /// Comma-separated items, `-` for descending.
    pub sort: Option<String>,
    pub limit: Option<u32>,
    pub cursor: Option<String>,
    /// A plain offset (CKAN's `offset`); `cursor` wins when both are given.
    pub offset: Option<usize>,
    pub version: Option<i64>,
    /// `exact` (or `estimated`) to count the matching rows, `none` (default) not to.
    pub count: Option<String>,
    /// With `count=estimated`: keep an estimate only above this many rows and count exactly
    /// below it (CKAN's `total_estimation_threshold`).
    pub estimate_above: Option<u64>,
    /// Free text to find in the readable, unmasked text items (CKAN's `q`).
    pub q: Option<String>,
    /// Text to find in each named item (CKAN's `q` as an object), all of them to hold.
    pub q_fields: Vec<(String, String)>,
}

/// One output column.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FieldView {
    pub name: String,
    pub title: String,
    #[serde(rename = "type")]
    pub data_type: String,
    /// The mask applied, if any.
    pub mask: Option<String>,
}

/// How `count=` asks for the total.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Count {
    Exact,
    Estimated,
}

/// Rows a `count=estimated` samples before it extrapolates (the table's first rows in scan order).
pub const ESTIMATE_SAMPLE_ROWS: usize = 100_000;

#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RowsResult {
    pub fields: Vec<FieldView>,
    pub rows: Vec<Value>,
    pub next_cursor: Option<String>,
    pub total: Option<u64>,
    /// `total` is an estimate (`count=estimated` on a large table with filters).
    pub total_estimated: bool,
    /// The table version these rows were read at (pages after the first stay on it).
    pub version: Option<i64>,
}

/// Record batches as JSON objects, one per row, every column a key (NULL is `null`):
/// decimals as exact strings with their declared scale (`"100.000000"`, never through f64),
/// datetimes as RFC 3339 in the platform's zone (`2024-01-05T08:30:00+08:00`), dates as
/// `YYYY-MM-DD`, binary as base64, integers and booleans as JSON numbers and booleans.
pub(crate) fn json_rows(batches: &[arrow::array::RecordBatch]) -> Result<Vec<Value>, CoreError> {
    let mut out = Vec::with_capacity(batches.iter().map(|b| b.num_rows()).sum());
    for b in batches {
        let schema = b.schema();
        let columns: Vec<Vec<Value>> = b.columns().iter().map(json_column).collect::<Result<_, _>>()?;
        for r in 0..b.num_rows() {
            let mut m = serde_json::Map::with_capacity(columns.len());
            for (f, c) in schema.fields().iter().zip(&columns) {
                m.insert(f.name().clone(), c[r].clone());
            }
            out.push(Value::Object(m));
        }
    }
    Ok(out)
}

/// One column's values as JSON ([`json_rows`]).
pub(crate) fn json_column(a: &arrow::array::ArrayRef) -> Result<Vec<Value>, CoreError> {
    use arrow::array::{Array, AsArray};
    use arrow::datatypes::{DataType as A, TimeUnit};
    let internal = |e: arrow::error::ArrowError| CoreError::Internal(e.to_string());
    let n = a.len();
    let each = |f: &dyn Fn(usize) -> Value| -> Vec<Value> {
        (0..n).map(|i| if a.is_null(i) { Value::Null } else { f(i) }).collect()
    };
    Ok(match a.data_type() {
        A::Null => vec![Value::Null; n],
        A::Boolean => {
            let x = a.as_boolean();
            each(&|i| Value::Bool(x.value(i)))
        }
        A::Int8 | A::Int16 | A::Int32 | A::Int64 => {
            let x = arrow::compute::cast(a, &A::Int64).map_err(internal)?;
            let x = x.as_primitive::<arrow::datatypes::Int64Type>();
            each(&|i| Value::from(x.value(i)))
        }
        A::UInt8 | A::UInt16 | A::UInt32 | A::UInt64 => {
            let x = arrow::compute::cast(a, &A::UInt64).map_err(internal)?;
            let x = x.as_primitive::<arrow::datatypes::UInt64Type>();
            each(&|i| Value::from(x.value(i)))
        }
        A::Float16 | A::Float32 | A::Float64 => {
            let x = arrow::compute::cast(a, &A::Float64).map_err(internal)?;
            let x = x.as_primitive::<arrow::datatypes::Float64Type>();
            each(&|i| serde_json::Number::from_f64(x.value(i)).map(Value::Number).unwrap_or(Value::Null))
        }
        A::Decimal32(..) | A::Decimal64(..) | A::Decimal128(..) | A::Decimal256(..) => {
            let f = arrow::util::display::ArrayFormatter::try_new(a.as_ref(), &Default::default()).map_err(internal)?;
            each(&|i| Value::String(f.value(i).to_string()))
        }
        A::Timestamp(_, tz) => {
            let x = arrow::compute::cast(a, &A::Timestamp(TimeUnit::Microsecond, tz.clone())).map_err(internal)?;
            let x = x.as_primitive::<arrow::datatypes::TimestampMicrosecondType>();
            // A zoned value is an instant; a naive one (from SQL) is a local wall-clock time.
            let shift = if tz.is_some() {
                0
            } else {
                i64::from(citydata_domain::cast::local_offset().local_minus_utc()) * 1_000_000
            };
            each(&|i| {
                citydata_domain::cast::format_micros(x.value(i) - shift).map(Value::String).unwrap_or(Value::Null)
            })
        }
        A::Date32 | A::Date64 | A::Time32(_) | A::Time64(_) | A::Utf8 | A::LargeUtf8 | A::Utf8View => {
            let f = arrow::util::display::ArrayFormatter::try_new(a.as_ref(), &Default::default()).map_err(internal)?;
            each(&|i| Value::String(f.value(i).to_string()))
        }
        A::Binary | A::LargeBinary | A::BinaryView | A::FixedSizeBinary(_) => {
            let x = arrow::compute::cast(a, &A::LargeBinary).map_err(internal)?;
            let x = x.as_binary::<i64>();
            // Standard base64: the form uploads read binary items in.
            each(&|i| Value::String(base64::engine::general_purpose::STANDARD.encode(x.value(i))))
        }
        // Lists, structs, maps (from SQL): Arrow's JSON writer, one column at a time.
        _ => {
            let field = arrow::datatypes::Field::new("v", a.data_type().clone(), true);
            let batch = arrow::array::RecordBatch::try_new(
                std::sync::Arc::new(arrow::datatypes::Schema::new(vec![field])),
                vec![a.clone()],
            )
            .map_err(internal)?;
            let mut buf = Vec::new();
            let mut w = arrow::json::WriterBuilder::new()
                .with_explicit_nulls(true)
                .build::<_, arrow::json::writer::JsonArray>(&mut buf);
            w.write(&batch).map_err(internal)?;
            w.finish().map_err(internal)?;
            drop(w);
            let rows: Vec<Value> = serde_json::from_slice(&buf).map_err(|e| CoreError::Internal(e.to_string()))?;
            rows.into_iter().map(|mut r| r.get_mut("v").map(Value::take).unwrap_or(Value::Null)).collect()
        }
    })
}

/// A cursor: the table version the first page read and the position of the next page, so
/// every page of one walk reads the same version in the same order (each row exactly once,
/// whatever is committed in between).
fn encode_cursor(version: i64, offset: usize) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("v:{version}:o:{offset}"))
}

fn decode_cursor(c: &str) -> Option<(Option<i64>, usize)> {
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(c.trim()).ok()?;
    let text = String::from_utf8(raw).ok()?;
    if let Some(rest) = text.strip_prefix("v:") {
        let (v, o) = rest.split_once(":o:")?;
        return Some((Some(v.parse().ok().filter(|v: &i64| *v >= 0)?), o.parse().ok()?));
    }
    // Cursors issued before versions were pinned.
    Some((None, text.strip_prefix("o:")?.parse().ok()?))
}

impl Core {
    /// `GET /resources/{id}/rows`: rows the caller may see, masked and filtered, paged in a
    /// stable order on one pinned table version.
    pub async fn read_rows(
        &self,
        meta: &RequestMeta,
        principal: Option<&Principal>,
        key: &str,
        params: &RowsParams,
    ) -> Result<RowsResult, CoreError> {
        let started = Instant::now();
        let g = self.gate(meta, principal, key, Action::ReadRows, "data.read_rows").await?;
        let result = self.read_rows_allowed(&g, params).await;
        let (outcome, details) = match &result {
            Ok(r) => (
                Outcome::Success,
                serde_json::json!({
                    "decision": "allow",
                    "grant_id": g.allow.grant_id,
                    "fields": r.fields.iter().map(|f| f.name.clone()).collect::<Vec<_>>(),
                    "filter": params.filter,
                    "sort": params.sort,
                    "version": params.version,
                    "rows": r.rows.len(),
                    "bytes": serde_json::to_string(&r.rows).map(|s| s.len()).unwrap_or(0),
                    "duration_ms": started.elapsed().as_millis() as u64,
                }),
            ),
            Err(e) => (Outcome::Failure, serde_json::json!({"decision": "allow", "error": e.code()})),
        };
        self.record(meta, actor(principal), "data.read_rows", target(&g), outcome, details).await?;
        result
    }

    async fn read_rows_allowed(&self, g: &Gated, params: &RowsParams) -> Result<RowsResult, CoreError> {
        let (resource, allow) = (&g.resource, &g.allow);
        let mut errs = ValidationErrors::new();
        let req = self
            .requested(
                resource,
                allow,
                params.fields.as_deref(),
                params.filter.as_deref(),
                params.sort.as_deref(),
                &mut errs,
            )
            .await?;
        let limit = params.limit.unwrap_or(100);
        if !(1..=32_000).contains(&limit) {
            errs.push(FieldError::new("limit", "out_of_range", "limit 须在 1–32000 之间 / limit must be 1–32000"));
        }
        let (pinned, offset) = match params.cursor.as_deref() {
            None => (None, params.offset.unwrap_or(0)),
            Some(c) => decode_cursor(c).unwrap_or_else(|| {
                errs.push(FieldError::new("cursor", "invalid_cursor", "cursor 无效 / invalid cursor"));
                (None, 0)
            }),
        };
        if let (Some(p), Some(v)) = (pinned, params.version)
            && p != v
        {
            errs.push(FieldError::new(
                "cursor",
                "invalid_cursor",
                "cursor 属于另一个表版本 / the cursor belongs to another table version",
            ));
        }
        // `estimated` answers from the table's statistics and a sample of its rows when the
        // caller's grant has no row filter (Lake::estimate_governed says why), exactly otherwise.
        let count = match params.count.as_deref() {
            None | Some("none") => None,
            Some("exact") => Some(Count::Exact),
            Some("estimated") if allow.row_filter.is_none() => Some(Count::Estimated),
            Some("estimated") => Some(Count::Exact),
            Some(_) => {
                errs.push(FieldError::new(
                    "count",
                    "invalid_value",
                    "count 须为 exact、estimated 或 none / count must be exact, estimated or none",
                ));
                None
            }
        };
        errs.into_result()?;
        let version = pinned.or(params.version);
        if let Some(v) = version {
            self.check_history(g, v, if pinned.is_some() { "cursor" } else { "version" }).await?;
        }
        // Items a per-field `q` may search: readable, unmasked text items.
        let mut contains: Vec<(Vec<ItemName>, String)> = Vec::new();
        for (f, text) in &params.q_fields {
            let item = resource.content.items.iter().find(|i| i.name.as_str() == f || i.title == *f);
            match item {
                Some(i)
                    if allow.fields.contains(&i.name)
                        && !allow.masks.contains_key(&i.name)
                        && matches!(
                            i.data_type,
                            citydata_domain::vocab::DataType::String | citydata_domain::vocab::DataType::Text
                        ) =>
                {
                    if !text.trim().is_empty() {
                        contains.push((vec![i.name.clone()], text.trim().chars().take(200).collect()));
                    }
                }
                _ => {
                    return Err(FieldError::new(
                        "q",
                        "unavailable_item",
                        format!("不能按“{f}”检索：须为可读且未脱敏的文本信息项 / cannot search \"{f}\": it must be a readable, unmasked text item"),
                    )
                    .into());
                }
            }
        }
        let any = params.q.as_deref().map(str::trim).filter(|q| !q.is_empty()).map(|q| {
            let text_items: Vec<ItemName> = resource
                .content
                .items
                .iter()
                .filter(|i| allow.fields.contains(&i.name) && !allow.masks.contains_key(&i.name))
                .filter(|i| {
                    matches!(
                        i.data_type,
                        citydata_domain::vocab::DataType::String | citydata_domain::vocab::DataType::Text
                    )
                })
                .map(|i| i.name.clone())
                .collect();
            (text_items, q.chars().take(200).collect::<String>())
        });
        contains.extend(any);
        let read = GovernedRead {
            offset,
            limit: Some(limit as usize),
            contains,
            order: Some(g.stable_order()),
            spatial: citydata_lake::spatial::spatial_items(&resource.content.items),
            ..g.plan(&req, &self.config.pseudonym_key, version)
        };
        let lake = self.lake()?;
        let code = crate::error::table_label(resource);
        let (batches, read_version) =
            lake.read_governed_at(resource.id, &read).await.map_err(|e| CoreError::from(e).for_resource(&code))?;
        let rows = crate::reads::json_rows(&batches)?;
        // The count is taken at the version the rows were read at.
        let counted = GovernedRead { version: read_version.or(read.version), ..read };
        let (total, total_estimated) = match count {
            None => (None, false),
            Some(Count::Exact) => {
                let n = lake.count_governed(resource.id, &counted).await;
                (Some(n.map_err(|e| CoreError::from(e).for_resource(&code))?), false)
            }
            Some(Count::Estimated) => {
                let n = lake.estimate_governed(resource.id, &counted, ESTIMATE_SAMPLE_ROWS).await;
                let (n, estimated) = n.map_err(|e| CoreError::from(e).for_resource(&code))?;
                if estimated && params.estimate_above.is_some_and(|t| n <= t) {
                    let n = lake.count_governed(resource.id, &counted).await;
                    (Some(n.map_err(|e| CoreError::from(e).for_resource(&code))?), false)
                } else {
                    (Some(n), estimated)
                }
            }
        };
        let next_cursor = match read_version {
            Some(v) if rows.len() == limit as usize => Some(encode_cursor(v, offset + rows.len())),
            _ => None,
        };
        let fields = field_views(resource, allow, &req.fields);
        Ok(RowsResult { fields, rows, next_cursor, total, total_estimated, version: read_version })
    }
}

fn actor(principal: Option<&Principal>) -> Actor<'_> {
    match principal {
        Some(p) => Actor::Principal(p),
        None => Actor::Anonymous,
    }
}

fn target(g: &Gated) -> Option<String> {
    Some(format!("resource:{}", g.resource.content.code))
}

/// `GET .../aggregate` parameters, as received.
#[derive(Debug, Clone, Default)]
pub struct AggregateParams {
    /// Comma-separated items to group by.
    pub group_by: Option<String>,
    /// `count,sum(x),avg(x),min(x),max(x)`; default `count`.
    pub metrics: Option<String>,
    pub filter: Option<String>,
    pub version: Option<i64>,
    /// `day`, `month` or `year`: date and datetime groups by that period of the local calendar.
    pub bucket: Option<String>,
    /// More groups than this is refused (`too_many_groups`), decided on a sample first when it
    /// already has more (the portal's charts: a column of names makes no chart and should not
    /// cost a grouping of every name). `None`: no limit.
    pub max_groups: Option<usize>,
    /// Answer from the node's chart cache when the same question was answered at the table's
    /// current version for the same decision ([`crate::chart_cache`]; the portal's charts).
    pub cache: bool,
}

#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AggregateResult {
    pub group_by: Vec<String>,
    pub metrics: Vec<String>,
    pub rows: Vec<Value>,
    /// Groups left out because they were smaller than `min_group_size` (public audience).
    pub suppressed_groups: u64,
    pub min_group_size: Option<u32>,
}

impl Core {
    /// Grouped counts and metrics through the gate; small groups are suppressed for the public.
    pub async fn aggregate(
        &self,
        meta: &RequestMeta,
        principal: Option<&Principal>,
        key: &str,
        params: &AggregateParams,
    ) -> Result<AggregateResult, CoreError> {
        use citydata_lake::governed::Metric;
        let g = self.gate(meta, principal, key, Action::Aggregate, "data.aggregate").await?;
        let (resource, allow) = (&g.resource, &g.allow);
        let mut errs = ValidationErrors::new();
        let req = self.requested(resource, allow, None, params.filter.as_deref(), None, &mut errs).await?;
        // Groups are formed on the values as the caller sees them (masked values group
        // together); small groups are suppressed for the public.
        let group_by: Vec<ItemName> = match params.group_by.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
            Some(gb) => resolve(resource, allow, gb, "group_by", &mut errs).into_iter().map(|(n, _)| n).collect(),
            None => vec![],
        };
        let bucket = match params.bucket.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(b @ ("day" | "month" | "year")) => Some(b.to_string()),
            // Spatial groups by the district of the boundary resource holding them.
            Some("region") => Some("region".to_string()),
            // A numeric group in classes of this width (a histogram in one query).
            Some(w) if w.parse::<f64>().is_ok_and(|w| w.is_finite() && w > 0.0) => Some(w.to_string()),
            Some(other) => {
                errs.push(FieldError::new(
                    "bucket",
                    "invalid_value",
                    format!(
                        "bucket 须为 day、month、year 或正数组距，收到 \"{other}\" / bucket must be day, month, year or a positive class width"
                    ),
                ));
                None
            }
        };
        let mut metrics: Vec<(Metric, Option<ItemName>)> = Vec::new();
        for m in
            params.metrics.as_deref().unwrap_or("count").split([',', '，']).map(str::trim).filter(|s| !s.is_empty())
        {
            let (f, arg) = match m.split_once('(') {
                Some((f, rest)) => (f.trim(), Some(rest.trim_end_matches(')').trim())),
                None => (m, None),
            };
            let metric = match f {
                "count" => Metric::Count,
                "sum" => Metric::Sum,
                "avg" => Metric::Avg,
                "min" => Metric::Min,
                "max" => Metric::Max,
                other => {
                    errs.push(FieldError::new(
                        "metrics",
                        "invalid_metric",
                        format!(
                            "未知的统计函数 \"{other}\"，可用 count、sum、avg、min、max / unknown metric \"{other}\""
                        ),
                    ));
                    continue;
                }
            };
            match arg.filter(|a| !a.is_empty()) {
                None if metric == Metric::Count => {}
                None => errs.push(FieldError::new(
                    "metrics",
                    "invalid_metric",
                    format!("{f} 需要一个信息项，如 {f}(x) / {f} needs an item"),
                )),
                Some(a) => match resource.content.item(a) {
                    Some(i) if allow.fields.contains(&i.name) && !allow.masks.contains_key(&i.name) => {
                        let numeric = matches!(
                            i.data_type,
                            citydata_domain::vocab::DataType::Integer
                                | citydata_domain::vocab::DataType::Decimal
                                | citydata_domain::vocab::DataType::Money
                        );
                        if matches!(metric, Metric::Sum | Metric::Avg) && !numeric {
                            errs.push(FieldError::new(
                                "metrics",
                                "not_numeric",
                                format!("{f}({a}) 需要数值型信息项 / {f} needs a numeric item"),
                            ));
                        }
                        metrics.push((metric, Some(i.name.clone())));
                    }
                    _ => errs.push(FieldError::new(
                        "metrics",
                        "unavailable_item",
                        format!("不能统计未授权或已脱敏的信息项“{a}” / cannot compute on {a}"),
                    )),
                },
            }
        }
        let districts = match bucket.as_deref() {
            Some("region") => {
                let spatial = group_by
                    .iter()
                    .any(|g| resource.content.item(g.as_str()).is_some_and(|i| i.data_type.is_spatial()));
                let regions = self.regions().await?;
                if !spatial || regions.is_none() {
                    errs.push(FieldError::new(
                        "bucket",
                        "invalid_value",
                        "bucket=region 需要按空间信息项分组并配置边界资源 / bucket=region needs a spatial group item and a boundary resource",
                    ));
                }
                regions
            }
            _ => None,
        };
        errs.into_result()?;
        if let Some(v) = params.version {
            self.check_history(&g, v, "version").await?;
        }
        // The portal's charts: the same question at the same table version has the same answer.
        let lake = self.lake()?;
        let cache_key = match (params.cache, params.version, &g.regions, &districts) {
            (true, None, None, None) => lake.latest_version(resource.id).await.ok().flatten().map(|v| {
                let key = format!(
                    "{}|{v}|{}|{:?}|{:?}|{:?}|{:?}|{:?}|{:?}",
                    resource.id,
                    resource.revision,
                    allow,
                    req.caller_filter,
                    group_by,
                    bucket,
                    metrics,
                    params.max_groups
                );
                (key, v)
            }),
            _ => None,
        };
        let cached = cache_key.as_ref().and_then(|(k, _)| self.chart_cache.get(k));
        let from_cache = cached.is_some();
        let result = match cached {
            Some(result) => result,
            None => {
                let read = g.plan(&req, &self.config.pseudonym_key, params.version);
                let (batches, suppressed) = lake
                    .aggregate_governed(
                        resource.id,
                        &read,
                        &citydata_lake::governed::Grouping {
                            items: &group_by,
                            bucket: bucket.as_deref(),
                            regions: districts.as_ref(),
                        },
                        &metrics,
                        allow.min_group_size,
                        params.max_groups,
                    )
                    .await
                    .map_err(|e| CoreError::from(e).for_resource(&crate::error::table_label(resource)))?;
                let result = AggregateResult {
                    group_by: group_by.iter().map(|g| g.to_string()).collect(),
                    metrics: std::iter::once("count".to_string())
                        .chain(metrics.iter().filter_map(|(m, i)| i.as_ref().map(|i| format!("{}_{}", m.as_str(), i))))
                        .collect(),
                    rows: crate::reads::json_rows(&batches)?,
                    suppressed_groups: suppressed,
                    min_group_size: allow.min_group_size,
                };
                // Kept only when no commit came during the read (the answer is of version `v`).
                if let Some((key, v)) = cache_key
                    && lake.latest_version(resource.id).await.ok().flatten() == Some(v)
                {
                    self.chart_cache.put(key, &result);
                }
                result
            }
        };
        let mut details = serde_json::json!({"decision": "allow", "grant_id": allow.grant_id, "group_by": result.group_by, "metrics": result.metrics, "filter": params.filter, "rows": result.rows.len(), "suppressed_groups": result.suppressed_groups});
        if from_cache {
            details["cached"] = true.into();
        }
        self.record(meta, actor(principal), "data.aggregate", target(&g), Outcome::Success, details).await?;
        Ok(result)
    }
}

/// `GET .../changes` parameters, as received.
#[derive(Debug, Clone, Default)]
pub struct ChangesParams {
    /// The table version the caller already has; changes after it are returned. Required.
    pub since_version: Option<i64>,
    pub fields: Option<String>,
    pub filter: Option<String>,
    /// 1–10000, default 1000.
    pub limit: Option<u32>,
    pub offset: Option<usize>,
    /// The last version included (default: the current one); later pages pass the first
    /// page's `current_version`, so that commits between pages neither shift nor extend them.
    pub until_version: Option<i64>,
}

/// The rows that changed between two table versions, as the caller may see them. Each row
/// carries `_commit_version`, the version that made the change.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ChangesResult {
    pub since_version: i64,
    /// The table's version now: pass it as `since_version` next time (once `next_offset` is
    /// null).
    pub current_version: i64,
    pub fields: Vec<FieldView>,
    pub inserted: Vec<Value>,
    /// The rows as they are after the update.
    pub updated: Vec<Value>,
    pub deleted: Vec<Value>,
    /// Set when more changes remain in this range: ask again with `offset` = this.
    pub next_offset: Option<usize>,
}

impl Core {
    /// `GET /resources/{id}/changes?since_version=N`: inserted, updated and deleted rows since
    /// version N, from the Delta change data feed, through the gate like every read (the same
    /// decision as `rows`: allowed items, masks, the grant's row filter). Audited.
    pub async fn read_changes(
        &self,
        meta: &RequestMeta,
        principal: Option<&Principal>,
        key: &str,
        params: &ChangesParams,
    ) -> Result<ChangesResult, CoreError> {
        let g = self.gate(meta, principal, key, Action::ReadRows, "data.read_changes").await?;
        let result = self.read_changes_allowed(&g, params).await;
        let (outcome, details) = match &result {
            Ok(r) => (
                Outcome::Success,
                serde_json::json!({
                    "decision": "allow",
                    "grant_id": g.allow.grant_id,
                    "since_version": r.since_version,
                    "current_version": r.current_version,
                    "fields": r.fields.iter().map(|f| f.name.clone()).collect::<Vec<_>>(),
                    "rows": r.inserted.len() + r.updated.len() + r.deleted.len(),
                }),
            ),
            Err(e) => (Outcome::Failure, serde_json::json!({"decision": "allow", "error": e.code()})),
        };
        self.record(meta, actor(principal), "data.read_changes", target(&g), outcome, details).await?;
        result
    }

    async fn read_changes_allowed(&self, g: &Gated, params: &ChangesParams) -> Result<ChangesResult, CoreError> {
        let (resource, allow) = (&g.resource, &g.allow);
        let mut errs = ValidationErrors::new();
        let req = self
            .requested(resource, allow, params.fields.as_deref(), params.filter.as_deref(), None, &mut errs)
            .await?;
        let since = match params.since_version {
            Some(v) if v >= 0 => v,
            Some(_) => {
                errs.push(FieldError::new(
                    "since_version",
                    "out_of_range",
                    "since_version 不能为负 / since_version must be ≥ 0",
                ));
                0
            }
            None => {
                errs.push(FieldError::new(
                    "since_version",
                    "required",
                    "since_version 为必填项（已有的表版本号）/ since_version is required: the table version you have",
                ));
                0
            }
        };
        let limit = params.limit.unwrap_or(1000);
        if !(1..=10_000).contains(&limit) {
            errs.push(FieldError::new("limit", "out_of_range", "limit 须在 1–10000 之间 / limit must be 1–10000"));
        }
        if let Some(u) = params.until_version
            && u < since
        {
            errs.push(FieldError::new(
                "until_version",
                "out_of_range",
                "until_version 不能小于 since_version / until_version must be ≥ since_version",
            ));
        }
        errs.into_result()?;
        let offset = params.offset.unwrap_or(0);
        // Past the current version is the caller's mistake (a clock from another table or a
        // reset one): 400 naming the current version, which is where to start from.
        let current = self
            .lake()?
            .version(resource.id)
            .await
            .map_err(|e| CoreError::from(e).for_resource(&crate::error::table_label(resource)))?;
        if let Some(current) = current
            && since > current
        {
            return Err(FieldError::new(
                "since_version",
                "out_of_range",
                format!(
                    "since_version {since} 超过当前版本 {current}，请用 current_version={current} / since_version {since} is past the current version {current}: use {current}"
                ),
            )
            .into());
        }
        self.check_history(g, since, "since_version").await?;
        let read = GovernedRead {
            offset,
            // One more than asked, to know whether more remain.
            limit: Some(limit as usize + 1),
            order: Some(g.stable_order()),
            spatial: citydata_lake::spatial::spatial_items(&resource.content.items),
            ..g.plan(&req, &self.config.pseudonym_key, None)
        };
        let keys: Vec<ItemName> = resource.content.items.iter().filter(|i| i.key).map(|i| i.name.clone()).collect();
        let (batches, current) = self
            .lake()?
            .changes_governed(resource.id, since, params.until_version, &keys, &read)
            .await
            .map_err(|e| CoreError::from(e).for_resource(&crate::error::table_label(resource)))?
            .unwrap_or_default();
        let mut rows = json_rows(&batches)?;
        let next_offset = (rows.len() > limit as usize).then(|| offset + limit as usize);
        rows.truncate(limit as usize);
        let (mut inserted, mut updated, mut deleted) = (Vec::new(), Vec::new(), Vec::new());
        for mut row in rows {
            let kind = row.as_object_mut().and_then(|o| o.remove("_change_type"));
            match kind.as_ref().and_then(Value::as_str) {
                Some("insert") => inserted.push(row),
                Some("update_postimage") => updated.push(row),
                Some("delete") => deleted.push(row),
                _ => {}
            }
        }
        Ok(ChangesResult {
            since_version: since,
            current_version: current,
            fields: field_views(resource, allow, &req.fields),
            inserted,
            updated,
            deleted,
            next_offset,
        })
    }
}

/// The output columns of a read, with their titles and masks.
fn field_views(resource: &Resource, allow: &Allow, fields: &[ItemName]) -> Vec<FieldView> {
    fields
        .iter()
        .filter_map(|n| resource.content.items.iter().find(|i| &i.name == n))
        .map(|i| FieldView {
            name: i.name.to_string(),
            title: i.title.clone(),
            data_type: i.data_type.as_str().into(),
            mask: allow.masks.get(&i.name).map(|m| m.to_spec()),
        })
        .collect()
}
