//! Readers of whole files that need seeking: XLSX sheets (calamine, with decompression limits)
//! and Parquet (columns cast to text, so one validation path serves every format).

use super::*;

fn cell(d: &calamine::Data) -> Option<String> {
    use calamine::Data;
    match d {
        Data::Empty => None,
        Data::String(s) => Some(s.clone()),
        Data::Float(f) if f.fract() == 0.0 && f.abs() < 1e15 => Some(format!("{}", *f as i64)),
        Data::Float(f) => Some(f.to_string()),
        Data::Int(i) => Some(i.to_string()),
        Data::Bool(b) => Some(b.to_string()),
        Data::DateTime(dt) => {
            let serial = dt.as_f64();
            let base = chrono::NaiveDate::from_ymd_opt(1899, 12, 30)?.and_hms_opt(0, 0, 0)?;
            let t = base + chrono::Duration::milliseconds((serial * 86_400_000.0).round() as i64);
            Some(if serial.fract() == 0.0 {
                t.date().to_string()
            } else {
                t.format("%Y-%m-%d %H:%M:%S%.f").to_string()
            })
        }
        Data::DateTimeIso(s) | Data::DurationIso(s) => Some(s.clone()),
        Data::Error(e) => Some(format!("#{e:?}")),
    }
}

pub(super) fn column_letter(mut c: usize) -> String {
    let mut s = String::new();
    c += 1;
    while c > 0 {
        let r = (c - 1) % 26;
        s.insert(0, (b'A' + r as u8) as char);
        c = (c - 1) / 26;
    }
    s
}

/// The first sheet (or `sheet`) of an XLSX workbook; the first row is the header.
pub fn xlsx(path: &Path, sheet: Option<&str>) -> Result<MemorySource> {
    xlsx_limited(path, sheet, crate::limits::DecompressLimits::default())
}

/// [`xlsx`] with the workbook's decompressed size checked against `limits` first.
pub fn xlsx_limited(path: &Path, sheet: Option<&str>, limits: crate::limits::DecompressLimits) -> Result<MemorySource> {
    use calamine::Reader;
    crate::limits::check_zip(std::fs::File::open(path)?, limits)?;
    let mut wb: calamine::Xlsx<_> = calamine::open_workbook(path).map_err(|e| {
        LakeError::input("bad_xlsx", format!("不是有效的 xlsx 工作簿 / not a valid xlsx workbook: {e}"))
    })?;
    let names = wb.sheet_names().to_vec();
    let name = match sheet {
        Some(s) => names.iter().find(|n| n.as_str() == s).cloned().ok_or_else(|| {
            LakeError::input(
                "no_sheet",
                format!("工作簿中没有工作表“{s}”，现有：{} / no sheet \"{s}\"", names.join("、")),
            )
        })?,
        None => names
            .first()
            .cloned()
            .ok_or_else(|| LakeError::input("bad_xlsx", "工作簿没有工作表 / the workbook has no sheets"))?,
    };
    let range = wb.worksheet_range(&name).map_err(|e| {
        LakeError::input("bad_xlsx", format!("无法读取工作表“{name}” / cannot read sheet \"{name}\": {e}"))
    })?;
    if let Ok(merged) = wb.merge_cells_by_sheet_name(&name) {
        let start_row = range.start().map(|(r, _)| r).unwrap_or(0);
        if let Some(m) = merged.iter().find(|m| m.start.0 <= start_row && m.end.0 >= start_row && m.end.1 > m.start.1) {
            return Err(LakeError::Input {
                code: "merged_header",
                message: format!(
                    "表头含合并单元格（{}1 到 {}1），请取消合并并为每列写一个列名 / the header has merged cells ({}1:{}1): unmerge them and name each column",
                    column_letter(m.start.1 as usize),
                    column_letter(m.end.1 as usize),
                    column_letter(m.start.1 as usize),
                    column_letter(m.end.1 as usize)
                ),
                line: Some(1),
                column: Some(column_letter(m.start.1 as usize)),
            });
        }
    }
    let mut rows = range.rows();
    let header = rows.next().ok_or_else(|| LakeError::at_line("empty_file", 1, "工作表为空 / the sheet is empty"))?;
    let mut headers: Vec<String> = header.iter().map(|c| cell(c).unwrap_or_default().trim().to_string()).collect();
    while headers.last().is_some_and(|h| h.is_empty()) {
        headers.pop();
    }
    if let Some(i) = headers.iter().position(|h| h.is_empty()) {
        return Err(LakeError::Input {
            code: "empty_header",
            message: format!(
                "表头 {}1 单元格为空（是否有合并单元格？）/ header cell {}1 is empty (merged cells?)",
                column_letter(i),
                column_letter(i)
            ),
            line: Some(1),
            column: Some(column_letter(i)),
        });
    }
    check_headers(&headers)?;
    let n = headers.len();
    let mut out = Vec::new();
    for (i, r) in rows.enumerate() {
        let vals: Vec<Option<String>> = (0..n).map(|c| r.get(c).and_then(cell)).collect();
        if vals.iter().all(|v| v.as_deref().is_none_or(|s| s.trim().is_empty())) {
            continue;
        }
        if r.iter().skip(n).any(|c| cell(c).is_some_and(|s| !s.trim().is_empty())) {
            return Err(LakeError::at_line(
                "ragged_row",
                (i + 2) as u64,
                format!("第 {} 行在表头之外还有数据 / row {} has values beyond the header's columns", i + 2, i + 2),
            ));
        }
        out.push(((i + 2) as u64, vals));
    }
    Ok(MemorySource { headers, rows: out.into_iter() })
}

/// Parquet: columns cast to text so that one validation path serves every format.
pub struct ParquetSource {
    reader: parquet::arrow::arrow_reader::ParquetRecordBatchReader,
    headers: Vec<String>,
    row: u64,
}

impl ParquetSource {
    pub fn new(path: &Path) -> Result<Self> {
        let file = std::fs::File::open(path)?;
        let builder = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file).map_err(|e| {
            LakeError::input("bad_parquet", format!("不是有效的 Parquet 文件 / not a valid Parquet file: {e}"))
        })?;
        let headers: Vec<String> = builder.schema().fields().iter().map(|f| f.name().clone()).collect();
        check_headers(&headers)?;
        let reader = builder
            .with_batch_size(BATCH_ROWS)
            .build()
            .map_err(|e| LakeError::input("bad_parquet", format!("无法读取 Parquet / cannot read Parquet: {e}")))?;
        Ok(Self { reader, headers, row: 0 })
    }
}

impl RawSource for ParquetSource {
    fn headers(&self) -> &[String] {
        &self.headers
    }
    fn next_batch(&mut self) -> Result<Option<RawBatch>> {
        let Some(batch) = self.reader.next() else { return Ok(None) };
        let batch = batch
            .map_err(|e| LakeError::input("bad_parquet", format!("Parquet 数据损坏 / damaged Parquet data: {e}")))?;
        let mut columns = Vec::with_capacity(batch.num_columns());
        for (f, c) in batch.schema().fields().iter().zip(batch.columns()) {
            // Binary from a citydata export (its fields carry `title`) is a binary item: base64,
            // the text form binary items are read in. Other writers' plain BYTE_ARRAY columns
            // are usually text and are read as UTF-8, as before.
            let base64 = f.metadata().contains_key("title");
            let text = match c.data_type() {
                arrow::datatypes::DataType::Utf8 => c.clone(),
                arrow::datatypes::DataType::Date32 | arrow::datatypes::DataType::Date64 => {
                    arrow::compute::cast(c, &arrow::datatypes::DataType::Utf8)?
                }
                arrow::datatypes::DataType::Binary
                | arrow::datatypes::DataType::LargeBinary
                | arrow::datatypes::DataType::BinaryView
                | arrow::datatypes::DataType::FixedSizeBinary(_)
                    if base64 =>
                {
                    use arrow::array::{Array, AsArray};
                    use base64::Engine;
                    let x = arrow::compute::cast(c, &arrow::datatypes::DataType::LargeBinary)?;
                    let x = x.as_binary::<i64>();
                    Arc::new(
                        (0..x.len())
                            .map(|i| {
                                (!x.is_null(i)).then(|| base64::engine::general_purpose::STANDARD.encode(x.value(i)))
                            })
                            .collect::<arrow::array::StringArray>(),
                    ) as arrow::array::ArrayRef
                }
                _ => arrow::compute::cast(c, &arrow::datatypes::DataType::Utf8)?,
            };
            columns.push(text);
        }
        let n = batch.num_rows() as u64;
        let lines = (self.row + 1..=self.row + n).collect();
        self.row += n;
        let _ = columns.first().map(|c| c.len());
        Ok(Some(RawBatch { columns, lines }))
    }
}
