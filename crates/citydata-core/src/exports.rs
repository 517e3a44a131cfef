//! 数据下载: a governed read streamed out as CSV, NDJSON, JSON, Parquet or XLSX in bounded
//! memory (XLSX is limited to a sheet's rows), audited with its row and byte counts when done.

use crate::audit::Actor;
use crate::{Core, CoreError, RequestMeta};
use bytes::Bytes;
use citydata_domain::audit::Outcome;
use citydata_domain::policy::Action;
use citydata_domain::principal::Principal;
use citydata_domain::{FieldError, ValidationErrors};
use citydata_lake::governed::GovernedRead;
use futures::StreamExt;
use std::sync::Arc;
use tokio::sync::mpsc;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormat {
    Csv,
    Ndjson,
    Json,
    Parquet,
    Xlsx,
    /// A GeoJSON FeatureCollection (resources with a spatial item).
    GeoJson,
}

impl ExportFormat {
    pub fn parse(s: &str) -> Result<Self, CoreError> {
        Ok(match s.trim().to_ascii_lowercase().as_str() {
            "" | "csv" => Self::Csv,
            "ndjson" | "jsonl" => Self::Ndjson,
            "json" => Self::Json,
            "parquet" => Self::Parquet,
            "xlsx" => Self::Xlsx,
            "geojson" => Self::GeoJson,
            other => {
                return Err(FieldError::new(
                    "format",
                    "unsupported_format",
                    format!(
                        "格式须为 csv、ndjson、json、parquet、xlsx 或 geojson，收到 \"{other}\" / unsupported format \"{other}\""
                    ),
                )
                .into());
            }
        })
    }
    pub fn ext(self) -> &'static str {
        match self {
            Self::Csv => "csv",
            Self::Ndjson => "ndjson",
            Self::Json => "json",
            Self::Parquet => "parquet",
            Self::Xlsx => "xlsx",
            Self::GeoJson => "geojson",
        }
    }
    pub fn content_type(self) -> &'static str {
        match self {
            Self::Csv => "text/csv; charset=utf-8",
            Self::Ndjson => "application/x-ndjson",
            Self::Json => "application/json",
            Self::Parquet => "application/vnd.apache.parquet",
            Self::Xlsx => "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            Self::GeoJson => "application/geo+json",
        }
    }
}

/// Export parameters, as received.
#[derive(Debug, Clone, Default)]
pub struct ExportParams {
    pub format: Option<String>,
    /// Start CSV with a UTF-8 BOM (for Excel).
    pub bom: bool,
    /// `utf-8` (default) or `gb18030`, for CSV.
    pub encoding: Option<String>,
    /// `title` for Chinese column titles, `name` (default) for item names.
    pub header: Option<String>,
    pub fields: Option<String>,
    pub filter: Option<String>,
    pub sort: Option<String>,
    pub version: Option<i64>,
    /// CSV cells a spreadsheet would run as formulas get a leading `'` (OWASP CSV injection)
    /// unless this is set, for machine readers that want the cells exactly.
    pub csv_raw: bool,
}

/// A started export: what to call it and its bytes as they come.
pub struct Export {
    pub file_name: String,
    pub ascii_name: String,
    pub content_type: &'static str,
    pub body: mpsc::Receiver<std::io::Result<Bytes>>,
}

struct Encoder {
    format: ExportFormat,
    csv_safe: bool,
    gb18030: bool,
    bom: bool,
    first: bool,
    titles: Option<Vec<String>>,
    /// The GeoJSON export's geometry column.
    geometry: Option<usize>,
}

/// The batch with its columns named by `titles` (Chinese column titles), when given.
fn retitle(
    titles: &Option<Vec<String>>,
    b: &arrow::record_batch::RecordBatch,
) -> Result<arrow::record_batch::RecordBatch, CoreError> {
    let Some(titles) = titles else { return Ok(b.clone()) };
    let fields: Vec<arrow::datatypes::Field> =
        b.schema().fields().iter().zip(titles).map(|(f, t)| f.as_ref().clone().with_name(t.clone())).collect();
    arrow::record_batch::RecordBatch::try_new(Arc::new(arrow::datatypes::Schema::new(fields)), b.columns().to_vec())
        .map_err(|e| CoreError::Internal(e.to_string()))
}

/// A batch as Parquet exports write it: the table's logical types (plain `string` and
/// `binary`, not the engine's view types, which not every reader can filter or sort) and each
/// item's title as field metadata (`title`), whoever exports, masked items included.
fn parquet_batch(
    b: &arrow::record_batch::RecordBatch,
    titles: &[String],
) -> Result<arrow::record_batch::RecordBatch, arrow::error::ArrowError> {
    use arrow::datatypes::DataType as A;
    let mut fields = Vec::with_capacity(b.num_columns());
    let mut columns = Vec::with_capacity(b.num_columns());
    for (i, (f, c)) in b.schema().fields().iter().zip(b.columns()).enumerate() {
        let plain = match f.data_type() {
            A::Utf8View | A::LargeUtf8 => Some(A::Utf8),
            A::BinaryView | A::LargeBinary => Some(A::Binary),
            _ => None,
        };
        let (t, c) = match plain {
            Some(t) => (t.clone(), arrow::compute::cast(c, &t)?),
            None => (f.data_type().clone(), c.clone()),
        };
        let mut meta = f.metadata().clone();
        if let Some(title) = titles.get(i) {
            meta.insert("title".into(), title.clone());
        }
        fields.push(arrow::datatypes::Field::new(f.name(), t, true).with_metadata(meta));
        columns.push(c);
    }
    arrow::record_batch::RecordBatch::try_new(Arc::new(arrow::datatypes::Schema::new(fields)), columns)
}

/// Binary columns as standard base64 text — the form uploads read — for the text formats and
/// XLSX (Parquet keeps them binary).
fn base64_binary(
    b: &arrow::record_batch::RecordBatch,
) -> Result<arrow::record_batch::RecordBatch, arrow::error::ArrowError> {
    use arrow::array::{Array, AsArray};
    use arrow::datatypes::DataType as A;
    use base64::Engine;
    let is_binary = |t: &A| matches!(t, A::Binary | A::LargeBinary | A::BinaryView);
    if !b.schema().fields().iter().any(|f| is_binary(f.data_type())) {
        return Ok(b.clone());
    }
    let mut fields = Vec::with_capacity(b.num_columns());
    let mut columns = Vec::with_capacity(b.num_columns());
    for (f, c) in b.schema().fields().iter().zip(b.columns()) {
        if is_binary(f.data_type()) {
            let x = arrow::compute::cast(c, &A::LargeBinary)?;
            let x = x.as_binary::<i64>();
            let text: arrow::array::StringArray = (0..x.len())
                .map(|i| (!x.is_null(i)).then(|| base64::engine::general_purpose::STANDARD.encode(x.value(i))))
                .collect();
            fields.push(f.as_ref().clone().with_data_type(A::Utf8));
            columns.push(Arc::new(text) as arrow::array::ArrayRef);
        } else {
            fields.push(f.as_ref().clone());
            columns.push(c.clone());
        }
    }
    arrow::record_batch::RecordBatch::try_new(Arc::new(arrow::datatypes::Schema::new(fields)), columns)
}

/// One XLSX cell: numbers, dates and datetimes as Excel numbers with a number format, so that
/// sums and date arithmetic work; text stays text (codes such as 身份证号 are string items and
/// never become numbers). A value Excel's double cannot hold exactly — a decimal of more than
/// 15 significant digits, an integer past 10^15, a time with microseconds — is written as text
/// (its exact form), so that a re-upload changes nothing.
enum XlsxCell {
    Empty,
    Text(String),
    Number(f64, &'static str),
    Bool(bool),
}

/// Number formats by pattern, made once per workbook.
#[derive(Default)]
struct XlsxFormats(std::collections::HashMap<&'static str, rust_xlsxwriter::Format>);

impl XlsxFormats {
    fn get(&mut self, pattern: &'static str) -> rust_xlsxwriter::Format {
        self.0.entry(pattern).or_insert_with(|| rust_xlsxwriter::Format::new().set_num_format(pattern)).clone()
    }
}

/// Days from Excel's epoch (1899-12-30) to the Unix epoch.
const EXCEL_UNIX_DAYS: f64 = 25_569.0;

fn xlsx_cells(a: &arrow::array::ArrayRef) -> Result<Vec<XlsxCell>, String> {
    use arrow::array::{Array, AsArray};
    use arrow::datatypes::{DataType as A, TimeUnit};
    let n = a.len();
    let e = |e: arrow::error::ArrowError| e.to_string();
    let text = |a: &arrow::array::ArrayRef| -> Result<Vec<XlsxCell>, String> {
        let f = arrow::util::display::ArrayFormatter::try_new(a.as_ref(), &Default::default()).map_err(e)?;
        Ok((0..n)
            .map(|i| if a.is_null(i) { XlsxCell::Empty } else { XlsxCell::Text(f.value(i).to_string()) })
            .collect())
    };
    Ok(match a.data_type() {
        A::Int8 | A::Int16 | A::Int32 | A::Int64 | A::UInt8 | A::UInt16 | A::UInt32 => {
            let x = arrow::compute::cast(a, &A::Int64).map_err(e)?;
            let x = x.as_primitive::<arrow::datatypes::Int64Type>();
            (0..n)
                .map(|i| match x.is_null(i) {
                    true => XlsxCell::Empty,
                    false if x.value(i).unsigned_abs() < 1_000_000_000_000_000 => {
                        XlsxCell::Number(x.value(i) as f64, "0")
                    }
                    false => XlsxCell::Text(x.value(i).to_string()),
                })
                .collect()
        }
        A::Float32 | A::Float64 => {
            let x = arrow::compute::cast(a, &A::Float64).map_err(e)?;
            let x = x.as_primitive::<arrow::datatypes::Float64Type>();
            (0..n)
                .map(|i| if x.is_null(i) { XlsxCell::Empty } else { XlsxCell::Number(x.value(i), "General") })
                .collect()
        }
        A::Decimal128(_, scale) | A::Decimal256(_, scale) => {
            let scale = (*scale).max(0) as u32;
            let pattern = if scale == 2 { "#,##0.00" } else { "0.######" };
            let cells = text(a)?;
            cells
                .into_iter()
                .map(|c| match c {
                    XlsxCell::Text(t) => {
                        let exact = citydata_domain::cast::parse_decimal(&t, scale);
                        match t.parse::<f64>() {
                            Ok(f)
                                if exact.is_some()
                                    && citydata_domain::cast::parse_decimal(&f.to_string(), scale) == exact =>
                            {
                                XlsxCell::Number(f, pattern)
                            }
                            _ => XlsxCell::Text(t),
                        }
                    }
                    other => other,
                })
                .collect()
        }
        A::Boolean => {
            let x = a.as_boolean();
            (0..n).map(|i| if x.is_null(i) { XlsxCell::Empty } else { XlsxCell::Bool(x.value(i)) }).collect()
        }
        A::Date32 => {
            let x = a.as_primitive::<arrow::datatypes::Date32Type>();
            (0..n)
                .map(|i| {
                    if x.is_null(i) {
                        XlsxCell::Empty
                    } else {
                        XlsxCell::Number(f64::from(x.value(i)) + EXCEL_UNIX_DAYS, "yyyy-mm-dd")
                    }
                })
                .collect()
        }
        A::Timestamp(_, tz) => {
            // The local wall-clock time (Excel has no zones; a re-upload reads it as local).
            let x = arrow::compute::cast(a, &A::Timestamp(TimeUnit::Microsecond, tz.clone())).map_err(e)?;
            let x = x.as_primitive::<arrow::datatypes::TimestampMicrosecondType>();
            let shift = if tz.is_some() {
                i64::from(citydata_domain::cast::local_offset().local_minus_utc()) * 1_000_000
            } else {
                0
            };
            (0..n)
                .map(|i| {
                    if x.is_null(i) {
                        return XlsxCell::Empty;
                    }
                    let local = x.value(i) + shift;
                    if local % 1_000 != 0 {
                        let instant = x.value(i) - if tz.is_some() { 0 } else { shift };
                        return citydata_domain::cast::format_micros(instant)
                            .map(XlsxCell::Text)
                            .unwrap_or(XlsxCell::Empty);
                    }
                    let days = local.div_euclid(86_400_000_000);
                    let micros = local.rem_euclid(86_400_000_000);
                    let serial = days as f64 + EXCEL_UNIX_DAYS + micros as f64 / 86_400_000_000.0;
                    let pattern =
                        if micros % 1_000_000 == 0 { "yyyy-mm-dd hh:mm:ss" } else { "yyyy-mm-dd hh:mm:ss.000" };
                    XlsxCell::Number(serial, pattern)
                })
                .collect()
        }
        _ => text(a)?,
    })
}

impl Encoder {
    fn retitle(&self, b: &arrow::record_batch::RecordBatch) -> Result<arrow::record_batch::RecordBatch, CoreError> {
        retitle(&self.titles, b)
    }

    /// The bytes of one batch in a text format.
    fn text(&mut self, b: &arrow::record_batch::RecordBatch) -> Result<Vec<u8>, CoreError> {
        let b = self.retitle(b)?;
        let mut out = Vec::new();
        let internal = |e: arrow::error::ArrowError| CoreError::Internal(e.to_string());
        // Formula neutralizing applies to text only, so binary becomes base64 after it.
        let b =
            if self.format == ExportFormat::Csv && self.csv_safe { crate::csv_safe::neutralize_batch(&b) } else { b };
        let b = base64_binary(&b).map_err(internal)?;
        match self.format {
            ExportFormat::Csv => {
                if self.first && self.bom && !self.gb18030 {
                    out.extend_from_slice(b"\xEF\xBB\xBF");
                }
                let mut w = arrow::csv::WriterBuilder::new().with_header(self.first).build(&mut out);
                w.write(&b).map_err(internal)?;
            }
            ExportFormat::Ndjson => {
                let mut w = arrow::json::WriterBuilder::new()
                    .with_explicit_nulls(true)
                    .build::<_, arrow::json::writer::LineDelimited>(&mut out);
                w.write(&b).map_err(internal)?;
                w.finish().map_err(internal)?;
            }
            ExportFormat::Json => {
                let mut arr = Vec::new();
                let mut w = arrow::json::WriterBuilder::new()
                    .with_explicit_nulls(true)
                    .build::<_, arrow::json::writer::JsonArray>(&mut arr);
                w.write(&b).map_err(internal)?;
                w.finish().map_err(internal)?;
                let inner = arr.strip_prefix(b"[").and_then(|a| a.strip_suffix(b"]")).unwrap_or(&arr);
                if !inner.is_empty() {
                    out.extend_from_slice(if self.first { b"[" } else { b"," });
                    out.extend_from_slice(inner);
                } else if self.first {
                    out.extend_from_slice(b"[");
                }
            }
            ExportFormat::GeoJson => {
                if let Some(g) = self.geometry {
                    out = crate::exports_geojson::features(&b, g, self.first).map_err(internal)?;
                }
            }
            _ => {}
        }
        self.first = false;
        if self.gb18030 && self.format == ExportFormat::Csv {
            let text = String::from_utf8_lossy(&out).into_owned();
            let (bytes, _, _) = encoding_rs::GB18030.encode(&text);
            return Ok(bytes.into_owned());
        }
        Ok(out)
    }
}

/// Sends bytes written to it down the channel (used from a blocking thread).
struct ChannelWriter {
    tx: mpsc::Sender<std::io::Result<Bytes>>,
    bytes: u64,
}

impl std::io::Write for ChannelWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.bytes += buf.len() as u64;
        self.tx
            .blocking_send(Ok(Bytes::copy_from_slice(buf)))
            .map_err(|_| std::io::Error::other("download cancelled"))?;
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Core {
    /// Start a governed export; the gate decides before anything is sent.
    pub async fn export(
        &self,
        meta: &RequestMeta,
        principal: Option<&Principal>,
        key: &str,
        params: &ExportParams,
    ) -> Result<Export, CoreError> {
        let g = self.gate(meta, principal, key, Action::Export, "data.export").await?;
        let target = Some(format!("resource:{}", g.resource.content.code));
        let actor_name = principal.map(|p| p.username.to_string());
        // Who exported, with the department and token, for the record written when it ends.
        let who = principal.map(crate::audit::actor_details).unwrap_or_default();
        let (resource, allow) = (&g.resource, &g.allow);
        let mut errs = ValidationErrors::new();
        let format = match ExportFormat::parse(params.format.as_deref().unwrap_or("csv")) {
            Ok(f) => f,
            Err(CoreError::Validation(v)) => {
                errs.0.extend(v.0);
                ExportFormat::Csv
            }
            Err(e) => return Err(e),
        };
        let gb18030 = match params.encoding.as_deref().map(|e| e.to_ascii_lowercase().replace(['-', '_'], "")) {
            None => false,
            Some(e) if e == "utf8" => false,
            Some(e) if e == "gb18030" || e == "gbk" => true,
            Some(e) => {
                errs.push(FieldError::new(
                    "encoding",
                    "invalid_encoding",
                    format!("encoding 须为 utf-8 或 gb18030，收到 \"{e}\" / encoding must be utf-8 or gb18030"),
                ));
                false
            }
        };
        let titles = match params.header.as_deref() {
            None | Some("name") => false,
            Some("title") => true,
            Some(other) => {
                errs.push(FieldError::new(
                    "header",
                    "invalid_value",
                    format!("header 须为 name 或 title，收到 \"{other}\" / header must be name or title"),
                ));
                false
            }
        };
        let sc = self
            .requested(
                resource,
                allow,
                params.fields.as_deref(),
                params.filter.as_deref(),
                params.sort.as_deref(),
                &mut errs,
            )
            .await?;
        errs.into_result()?;
        if let Some(v) = params.version {
            self.check_history(&g, v, "version").await?;
        }
        let geometry = sc.fields.iter().position(|f| read_spatial(resource, f));
        if format == ExportFormat::GeoJson && geometry.is_none() {
            return Err(FieldError::new(
                "format",
                "no_spatial_item",
                "GeoJSON 导出需要读取至少一个空间信息项（点位或空间几何）/ a GeoJSON export needs a spatial item among the fields",
            )
            .into());
        }
        let read = GovernedRead {
            limit: if format == ExportFormat::Xlsx { Some(1_048_575) } else { None },
            ..g.plan(&sc, &self.config.pseudonym_key, params.version)
        };
        let label = crate::error::table_label(resource);
        let stream = match self.lake()?.stream_governed(resource.id, &read).await {
            Ok(Some(s)) => Some(peek_first(s).await),
            Ok(None) => None,
            Err(e) => return Err(CoreError::from(e).for_resource(&label)),
        };
        let stream = stream.transpose().map_err(|e| CoreError::from(e).for_resource(&label))?;
        let title_list: Vec<String> = sc
            .fields
            .iter()
            .map(|n| {
                resource
                    .content
                    .items
                    .iter()
                    .find(|i| &i.name == n)
                    .map(|i| i.title.clone())
                    .unwrap_or_else(|| n.to_string())
            })
            .collect();
        let (tx, rx) = mpsc::channel::<std::io::Result<Bytes>>(8);
        let core = self.clone();
        let meta = meta.clone();
        let grant_id = allow.grant_id;
        let fields_audit: Vec<String> = sc.fields.iter().map(|f| f.to_string()).collect();
        let filter_text = params.filter.clone();
        let started = std::time::Instant::now();
        let mut enc = Encoder {
            format,
            csv_safe: !params.csv_raw,
            gb18030,
            bom: params.bom,
            first: true,
            titles: titles.then_some(title_list.clone()),
            geometry,
        };
        tokio::spawn(async move {
            let mut rows = 0u64;
            let mut bytes = 0u64;
            let mut failed: Option<String> = None;
            match (format, stream) {
                (ExportFormat::Parquet | ExportFormat::Xlsx, Some(mut stream)) => {
                    let tx2 = tx.clone();
                    let handle = tokio::runtime::Handle::current();
                    let titles_for_xlsx = title_list.clone();
                    let parquet_titles = enc.titles.clone();
                    let item_titles = title_list.clone();
                    let result = tokio::task::spawn_blocking(move || -> Result<(u64, u64), String> {
                        let mut sink = ChannelWriter { tx: tx2, bytes: 0 };
                        let mut n = 0u64;
                        if format == ExportFormat::Parquet {
                            let mut spare = Some(sink);
                            let mut writer: Option<parquet::arrow::ArrowWriter<ChannelWriter>> = None;
                            while let Some(b) = handle.block_on(stream.next()) {
                                let b = b.map_err(|e| e.to_string())?;
                                let b = parquet_batch(&b, &item_titles).map_err(|e| e.to_string())?;
                                let b = retitle(&parquet_titles, &b).map_err(|e| e.to_string())?;
                                n += b.num_rows() as u64;
                                if writer.is_none() {
                                    let s = spare.take().ok_or("writer already started")?;
                                    writer = Some(
                                        parquet::arrow::ArrowWriter::try_new(s, b.schema(), None)
                                            .map_err(|e| e.to_string())?,
                                    );
                                }
                                writer.as_mut().expect("set above").write(&b).map_err(|e| e.to_string())?;
                            }
                            let written = match writer {
                                Some(w) => w.into_inner().map_err(|e| e.to_string())?.bytes,
                                None => 0,
                            };
                            return Ok((n, written));
                        } else {
                            let mut formats = XlsxFormats::default();
                            let mut wb = rust_xlsxwriter::Workbook::new();
                            let ws = wb.add_worksheet();
                            for (c, t) in titles_for_xlsx.iter().enumerate() {
                                ws.write_string(0, c as u16, t).map_err(|e| e.to_string())?;
                            }
                            let mut row = 1u32;
                            while let Some(b) = handle.block_on(stream.next()) {
                                let b = b.map_err(|e| e.to_string())?;
                                n += b.num_rows() as u64;
                                let b = base64_binary(&b).map_err(|e| e.to_string())?;
                                let cells: Vec<Vec<XlsxCell>> =
                                    b.columns().iter().map(xlsx_cells).collect::<Result<_, _>>()?;
                                for r in 0..b.num_rows() {
                                    for (c, col) in cells.iter().enumerate() {
                                        let c = c as u16;
                                        let e = |e: rust_xlsxwriter::XlsxError| e.to_string();
                                        match &col[r] {
                                            XlsxCell::Empty => {}
                                            XlsxCell::Text(t) => {
                                                ws.write_string(row, c, t).map_err(e)?;
                                            }
                                            XlsxCell::Number(x, fmt) => {
                                                ws.write_number_with_format(row, c, *x, &formats.get(fmt))
                                                    .map_err(e)?;
                                            }
                                            XlsxCell::Bool(x) => {
                                                ws.write_boolean(row, c, *x).map_err(e)?;
                                            }
                                        }
                                    }
                                    row += 1;
                                }
                            }
                            let buf = wb.save_to_buffer().map_err(|e| e.to_string())?;
                            std::io::Write::write_all(&mut sink, &buf).map_err(|e| e.to_string())?;
                        }
                        Ok((n, sink.bytes))
                    })
                    .await;
                    match result {
                        Ok(Ok((n, b))) => {
                            rows = n;
                            bytes = b;
                        }
                        Ok(Err(e)) => failed = Some(e),
                        Err(e) => failed = Some(e.to_string()),
                    }
                }
                (_, Some(mut stream)) => {
                    while let Some(b) = stream.next().await {
                        let chunk = match b {
                            Ok(b) => {
                                rows += b.num_rows() as u64;
                                enc.text(&b).map_err(|e| e.to_string())
                            }
                            Err(e) => Err(e.to_string()),
                        };
                        match chunk {
                            Ok(c) if c.is_empty() => {}
                            Ok(c) => {
                                bytes += c.len() as u64;
                                if tx.send(Ok(Bytes::from(c))).await.is_err() {
                                    failed = Some("download cancelled".into());
                                    break;
                                }
                            }
                            Err(e) => {
                                failed = Some(e);
                                break;
                            }
                        }
                    }
                    // Close the JSON array (or write an empty one / a bare header).
                    let tail: Vec<u8> = match format {
                        ExportFormat::Json if enc.first => b"[]".to_vec(),
                        ExportFormat::Json => b"]".to_vec(),
                        ExportFormat::GeoJson if enc.first => crate::exports_geojson::EMPTY.to_vec(),
                        ExportFormat::GeoJson => crate::exports_geojson::TAIL.to_vec(),
                        _ => vec![],
                    };
                    if !tail.is_empty() && failed.is_none() {
                        bytes += tail.len() as u64;
                        let _ = tx.send(Ok(Bytes::from(tail))).await;
                    }
                }
                (_, None) => {
                    let empty: &[u8] = match format {
                        ExportFormat::Json => b"[]",
                        ExportFormat::GeoJson => crate::exports_geojson::EMPTY,
                        _ => b"",
                    };
                    if !empty.is_empty() {
                        let _ = tx.send(Ok(Bytes::from_static(empty))).await;
                    }
                }
            }
            if let Some(e) = &failed {
                tracing::warn!(error = %e, "export failed");
                let _ = tx.send(Err(std::io::Error::other("export failed"))).await;
            }
            let actor = actor_name.as_deref().map(Actor::Name).unwrap_or(Actor::Anonymous);
            let mut details = serde_json::json!({
                "decision": "allow", "grant_id": grant_id, "format": format.ext(), "fields": fields_audit,
                "filter": filter_text, "rows": rows, "bytes": bytes, "duration_ms": started.elapsed().as_millis() as u64,
                "error": failed,
            });
            if let Some(d) = details.as_object_mut() {
                d.extend(who);
            }
            let outcome = if failed.is_some() { Outcome::Failure } else { Outcome::Success };
            if let Err(e) = core.record(&meta, actor, "data.export", target, outcome, details).await {
                tracing::error!(error = %e, "audit append failed");
            }
        });
        let date = chrono::Utc::now().format("%Y%m%d");
        Ok(Export {
            file_name: format!("{}-{date}.{}", resource.content.name, format.ext()),
            ascii_name: format!("{}-{date}.{}", resource.content.slug.as_str(), format.ext()),
            content_type: format.content_type(),
            body: rx,
        })
    }
}

/// Poll the first batch before answering, so that a table whose data file is missing or
/// damaged answers `table_unreadable` naming the resource rather than a 200 that breaks off.
/// (A later file failing mid-download still aborts the transfer: the client sees an
/// incomplete body, never a complete-looking file.)
async fn peek_first(
    mut stream: datafusion::physical_plan::SendableRecordBatchStream,
) -> Result<datafusion::physical_plan::SendableRecordBatchStream, citydata_lake::LakeError> {
    let schema = stream.schema();
    let first = match stream.next().await {
        Some(Err(e)) => return Err(e.into()),
        other => other,
    };
    Ok(Box::pin(datafusion::physical_plan::stream::RecordBatchStreamAdapter::new(
        schema,
        futures::stream::iter(first).chain(stream),
    )))
}

fn read_spatial(resource: &citydata_domain::resource::Resource, f: &citydata_domain::resource::ItemName) -> bool {
    resource.content.items.iter().any(|i| &i.name == f && i.data_type.is_spatial())
}
