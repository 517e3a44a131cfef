//! Readers: any supported input as a header plus batches of text columns, streaming in
//! bounded memory (CSV/TSV, NDJSON), or from a seekable file (XLSX, Parquet, JSON array).

use crate::decode::{Encoding, Utf8Reader, maybe_gunzip};
use crate::error::{LakeError, Result};
use arrow::array::{Array, ArrayRef, StringBuilder};
use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::sync::Arc;

mod seekable;
mod shapefile;
pub use seekable::{ParquetSource, xlsx, xlsx_limited};
pub use shapefile::shapefile_zip;

/// Rows per batch handed to validation.
pub const BATCH_ROWS: usize = 16_384;

/// An input format with its options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Format {
    Csv {
        delimiter: u8,
        quote: u8,
        header: bool,
    },
    Xlsx {
        sheet: Option<String>,
    },
    Json,
    Ndjson,
    Parquet,
    /// A zipped Shapefile (`.shp` with its `.dbf`, and `.shx`/`.prj`/`.cpg` when present).
    Shapefile,
}

impl Format {
    /// The format name a file's name suggests: its extension, lowercased, after any `.gz`
    /// (`人口.CSV.gz` → `csv`); `None` without an extension.
    pub fn name_from_file_name(file_name: &str) -> Option<String> {
        let lower = file_name.to_ascii_lowercase();
        let lower = lower.trim_end_matches(".gz");
        lower.rsplit_once('.').map(|(_, ext)| ext.to_string()).filter(|e| !e.is_empty())
    }

    /// `csv`, `tsv`, `xlsx`/`xls`, `json`/`geojson`, `ndjson`/`jsonl`, `parquet`,
    /// `shapefile`/`shp`/`zip` (a `.gz` suffix is allowed).
    pub fn parse(name: &str, delimiter: Option<&str>, sheet: Option<&str>, header: bool) -> Result<Self> {
        let n = name.trim().to_ascii_lowercase();
        let n = n.trim_end_matches(".gz").trim_end_matches("+gzip");
        let delim = |default: u8| -> Result<u8> {
            match delimiter {
                None | Some("") => Ok(default),
                Some("\\t") | Some("tab") => Ok(b'\t'),
                Some(d) if d.len() == 1 && d.is_ascii() => Ok(d.as_bytes()[0]),
                Some(d) => Err(LakeError::input(
                    "invalid_option",
                    format!("分隔符须为单个 ASCII 字符，收到 \"{d}\" / delimiter must be one ASCII character"),
                )),
            }
        };
        Ok(match n {
            "csv" | "" => Self::Csv { delimiter: delim(b',')?, quote: b'"', header },
            "tsv" | "tab" => Self::Csv { delimiter: delim(b'\t')?, quote: b'"', header },
            "xlsx" | "xls" | "excel" => Self::Xlsx { sheet: sheet.map(str::to_string) },
            "json" | "geojson" => Self::Json,
            "ndjson" | "jsonl" => Self::Ndjson,
            "parquet" => Self::Parquet,
            "shapefile" | "shp" | "zip" => Self::Shapefile,
            other => {
                return Err(LakeError::input(
                    "unsupported_format",
                    format!(
                        "不支持的格式 \"{other}\"，可用 csv、tsv、xlsx、json、geojson、ndjson、parquet、shapefile（zip）/ unsupported format \"{other}\""
                    ),
                ));
            }
        })
    }

    /// Formats that need random access read from a file rather than a stream.
    pub fn needs_file(&self) -> bool {
        matches!(self, Self::Xlsx { .. } | Self::Parquet | Self::Json | Self::Shapefile)
    }
}

/// Text columns of consecutive input rows.
#[derive(Debug)]
pub struct RawBatch {
    /// One UTF-8 array per header column.
    pub columns: Vec<ArrayRef>,
    /// The line (CSV, NDJSON), spreadsheet row or element number of each row, for messages.
    pub lines: Vec<u64>,
}

impl RawBatch {
    pub fn num_rows(&self) -> usize {
        self.lines.len()
    }
}

/// A source of raw batches.
pub trait RawSource: Send {
    fn headers(&self) -> &[String];
    fn next_batch(&mut self) -> Result<Option<RawBatch>>;
    /// Bytes read so far (of the decoded text), for progress.
    fn bytes_read(&self) -> u64 {
        0
    }
    /// The encoding used (text formats).
    fn encoding(&self) -> Option<&'static str> {
        None
    }
}

fn builders(n: usize) -> Vec<StringBuilder> {
    (0..n).map(|_| StringBuilder::with_capacity(BATCH_ROWS, BATCH_ROWS * 16)).collect()
}

fn finish(builders: &mut [StringBuilder], lines: Vec<u64>) -> RawBatch {
    RawBatch { columns: builders.iter_mut().map(|b| Arc::new(b.finish()) as ArrayRef).collect(), lines }
}

fn check_headers(headers: &[String]) -> Result<()> {
    if headers.is_empty() || headers.iter().all(|h| h.trim().is_empty()) {
        return Err(LakeError::at_line("empty_header", 1, "文件没有表头行或表头为空 / the file has no header row"));
    }
    for (i, h) in headers.iter().enumerate() {
        if h.trim().is_empty() {
            return Err(LakeError::Input {
                code: "empty_header",
                message: format!("表头第 {} 列为空 / header column {} is empty", i + 1, i + 1),
                line: Some(1),
                column: Some(format!("{}", i + 1)),
            });
        }
        if headers[..i].iter().any(|x| x.trim() == h.trim()) {
            return Err(LakeError::Input {
                code: "duplicate_header",
                message: format!("表头“{}”重复 / duplicate header \"{}\"", h.trim(), h.trim()),
                line: Some(1),
                column: Some(h.trim().to_string()),
            });
        }
    }
    Ok(())
}

/// A reader counting the bytes that pass through it, and the quote characters (an odd
/// number at the end means a quoted field was never closed).
struct Counting<R> {
    inner: R,
    count: Arc<std::sync::atomic::AtomicU64>,
    quote: u8,
    quotes: u64,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
        self.quotes += buf[..n].iter().filter(|b| **b == self.quote).count() as u64;
        Ok(n)
    }
}

pub struct CsvSource {
    reader: csv::Reader<Counting<Utf8Reader<Box<dyn BufRead + Send>>>>,
    headers: Vec<String>,
    record: csv::StringRecord,
    count: Arc<std::sync::atomic::AtomicU64>,
    header_row: bool,
    first: Option<csv::StringRecord>,
    encoding: &'static str,
    last_line: u64,
}

fn csv_error(e: csv::Error, expected: usize) -> LakeError {
    let line = e.position().map(|p| p.line()).unwrap_or(0);
    match e.kind() {
        csv::ErrorKind::UnequalLengths { len, .. } => LakeError::at_line(
            "ragged_row",
            line,
            format!(
                "第 {line} 行有 {len} 列，表头有 {expected} 列（可能是分隔符或引号有误）/ line {line} has {len} fields, the header has {expected} (a stray delimiter or quote?)"
            ),
        ),
        csv::ErrorKind::Io(io) if io.kind() == std::io::ErrorKind::InvalidData => {
            LakeError::input("bad_encoding", io.to_string())
        }
        csv::ErrorKind::Io(io) if io.kind() == std::io::ErrorKind::FileTooLarge => {
            match crate::limits::bomb_message(io) {
                Some(m) => crate::limits::bomb_error(m),
                None => LakeError::input("too_large", io.to_string()),
            }
        }
        csv::ErrorKind::Io(io) => LakeError::input(
            "unreadable",
            format!("读取失败（文件可能被截断或损坏）/ read failed (truncated or damaged file?): {io}"),
        ),
        csv::ErrorKind::Utf8 { .. } => LakeError::at_line(
            "bad_encoding",
            line,
            format!(
                "第 {line} 行不是有效的 UTF-8 文本；如果文件是 GBK/GB18030 编码，请指定 encoding=gb18030 / line {line}: invalid UTF-8; if the file is GBK/GB18030 encoded, pass encoding=gb18030"
            ),
        ),
        _ => LakeError::at_line("bad_csv", line, format!("第 {line} 行无法解析 / line {line} cannot be parsed: {e}")),
    }
}

/// A CSV cell without the `'` that a formula-safe export (`citydata_core::csv_safe`, on by
/// default) put before a cell a spreadsheet would run as a formula — `=`, `+`, `-`, `@`, tab or
/// CR first, and not a plain number — so that the platform's own CSV re-uploads unchanged
/// (`+86 138…`, `-abc`, `=SUM(A1)`). A cell that is `'` followed by anything else is kept.
pub fn restore_neutralized(cell: &str) -> &str {
    let Some(rest) = cell.strip_prefix('\'') else { return cell };
    let is_number = rest.bytes().any(|b| b.is_ascii_digit())
        && rest.bytes().all(|b| b.is_ascii_digit() || matches!(b, b'+' | b'-' | b'.' | b'e' | b'E'))
        && rest.parse::<f64>().is_ok();
    match rest.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r') if !is_number => rest,
        _ => cell,
    }
}

/// Refuse input that is plainly not text: NUL bytes or a known binary signature.
pub fn refuse_binary(mut r: Box<dyn BufRead + Send>) -> Result<Box<dyn BufRead + Send>> {
    let head = r.fill_buf().map_err(crate::decode::input_io_error)?;
    let kind = if head.starts_with(b"PK\x03\x04") {
        Some("ZIP/XLSX（请用 format=xlsx）")
    } else if head.starts_with(b"PAR1") {
        Some("Parquet（请用 format=parquet）")
    } else if head.starts_with(b"%PDF") {
        Some("PDF")
    } else if head.starts_with(b"\x89PNG") || head.starts_with(b"\xFF\xD8\xFF") || head.starts_with(b"GIF8") {
        Some("图片 / image")
    } else if head.iter().take(8192).any(|b| *b == 0) {
        Some("二进制 / binary")
    } else {
        None
    };
    match kind {
        Some(k) => Err(LakeError::at_line(
            "not_text",
            1,
            format!("文件不是文本表格，看起来是 {k} / the file is not a text table; it looks like {k}"),
        )),
        None => Ok(r),
    }
}

impl CsvSource {
    pub fn new<R: Read + Send + 'static>(
        input: R,
        encoding: Encoding,
        delimiter: u8,
        quote: u8,
        header: bool,
    ) -> Result<Self> {
        // The csv reader validates each record's UTF-8 (and names its line), so the text is
        // not checked twice.
        let text = Utf8Reader::new(refuse_binary(maybe_gunzip(input)?)?, encoding).checked_downstream();
        let count = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let counting = Counting { inner: text, count: count.clone(), quote, quotes: 0 };
        let mut reader = csv::ReaderBuilder::new()
            .delimiter(delimiter)
            .quote(quote)
            .has_headers(false)
            .flexible(false)
            .buffer_capacity(256 * 1024)
            .from_reader(counting);
        let mut first = csv::StringRecord::new();
        let has = reader.read_record(&mut first).map_err(|e| csv_error(e, 0))?;
        if !has {
            return Err(LakeError::at_line("empty_file", 1, "文件为空 / the file is empty"));
        }
        let encoding_name = reader.get_ref().inner.detected();
        if first.len() == 1 && first.get(0).is_some_and(|f| f.chars().any(|c| c.is_control() && c != '\t')) {
            return Err(LakeError::at_line(
                "not_text",
                1,
                "文件不是文本表格（可能是二进制文件）/ not a text table (a binary file?)",
            ));
        }
        let (headers, first): (Vec<String>, Option<csv::StringRecord>) = if header {
            (first.iter().map(|h| h.trim().trim_start_matches('\u{feff}').to_string()).collect(), None)
        } else {
            ((1..=first.len()).map(|i| format!("column{i}")).collect(), Some(first))
        };
        check_headers(&headers)?;
        Ok(Self {
            reader,
            headers,
            record: csv::StringRecord::new(),
            count,
            header_row: header,
            first,
            encoding: encoding_name,
            last_line: 1,
        })
    }
}

impl RawSource for CsvSource {
    fn headers(&self) -> &[String] {
        &self.headers
    }

    fn next_batch(&mut self) -> Result<Option<RawBatch>> {
        let n = self.headers.len();
        let mut b = builders(n);
        let mut lines = Vec::with_capacity(BATCH_ROWS);
        if let Some(first) = self.first.take() {
            for (i, f) in first.iter().enumerate() {
                b[i].append_value(f);
            }
            lines.push(1);
        }
        while lines.len() < BATCH_ROWS {
            match self.reader.read_record(&mut self.record) {
                Ok(false) => {
                    if self.reader.get_ref().quotes % 2 == 1 {
                        let l = self.last_line;
                        return Err(LakeError::at_line(
                            "unclosed_quote",
                            l,
                            format!("第 {l} 行的引号没有闭合 / line {l}: a quoted field is not closed"),
                        ));
                    }
                    break;
                }
                Ok(true) => {
                    let line = self.record.position().map(|p| p.line()).unwrap_or(0);
                    self.last_line = line;
                    if self.record.len() == 1 && self.record.get(0) == Some("") && n > 1 {
                        continue; // a blank line
                    }
                    if self.record.len() != n {
                        let unclosed = self.record.iter().next_back().is_some_and(|f| f.contains('\n'));
                        let msg = if unclosed {
                            format!("第 {line} 行的引号没有闭合 / line {line}: a quoted field is not closed")
                        } else {
                            format!(
                                "第 {line} 行有 {} 列，表头有 {n} 列 / line {line} has {} fields, the header has {n}",
                                self.record.len(),
                                self.record.len()
                            )
                        };
                        return Err(LakeError::at_line(
                            if unclosed { "unclosed_quote" } else { "ragged_row" },
                            line,
                            msg,
                        ));
                    }
                    for (i, f) in self.record.iter().enumerate() {
                        if f.is_empty() { b[i].append_null() } else { b[i].append_value(restore_neutralized(f)) }
                    }
                    lines.push(line);
                }
                Err(e) => {
                    let unclosed = matches!(e.kind(), csv::ErrorKind::UnequalLengths { .. })
                        && (self.reader.get_ref().quotes % 2 == 1
                            || self.reader.position().line() > e.position().map(|p| p.line()).unwrap_or(0) + 1);
                    let err = csv_error(e, n);
                    if unclosed && let LakeError::Input { line: Some(l), .. } = &err {
                        let l = *l;
                        return Err(LakeError::at_line(
                            "unclosed_quote",
                            l,
                            format!("第 {l} 行的引号没有闭合 / line {l}: a quoted field is not closed"),
                        ));
                    }
                    return Err(err);
                }
            }
        }
        let _ = self.header_row;
        if lines.is_empty() { Ok(None) } else { Ok(Some(finish(&mut b, lines))) }
    }

    fn bytes_read(&self) -> u64 {
        self.count.load(std::sync::atomic::Ordering::Relaxed)
    }

    fn encoding(&self) -> Option<&'static str> {
        Some(self.encoding)
    }
}

/// Cell text of a JSON value: strings as they are, numbers and booleans printed, null as null.
fn json_text(v: &serde_json::Value) -> Option<String> {
    match v {
        serde_json::Value::Null => None,
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Bool(b) => Some(b.to_string()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        other => Some(other.to_string()),
    }
}

/// NDJSON: one object per line, streamed. The first object's keys are the header.
pub struct NdjsonSource {
    lines: std::io::Lines<BufReader<Utf8Reader<Box<dyn BufRead + Send>>>>,
    headers: Vec<String>,
    line_no: u64,
    pending: Option<(u64, serde_json::Map<String, serde_json::Value>)>,
}

/// A JSON value whose top-level object members that are numbers keep their exact text
/// (`1234567890123.456789` stays that, not the nearest f64), as strings: decimals upload
/// exactly. Numbers in exponent form keep serde's reading.
fn exact_value(text: &str) -> serde_json::Result<serde_json::Value> {
    use serde_json::Value;
    match serde_json::from_str::<Value>(text)? {
        Value::Object(mut m) => {
            if m.values().any(Value::is_number) {
                let raw: std::collections::HashMap<String, Box<serde_json::value::RawValue>> =
                    serde_json::from_str(text)?;
                for (k, v) in m.iter_mut() {
                    if let (true, Some(r)) = (v.is_number(), raw.get(k)) {
                        let t = r.get().trim();
                        if !t.contains(['e', 'E']) {
                            *v = Value::String(t.to_string());
                        }
                    }
                }
            }
            Ok(Value::Object(m))
        }
        other => Ok(other),
    }
}

fn json_object(line: u64, text: &str) -> Result<serde_json::Map<String, serde_json::Value>> {
    match exact_value(text) {
        Ok(serde_json::Value::Object(m)) => Ok(m),
        Ok(_) => Err(LakeError::at_line(
            "bad_json",
            line,
            format!("第 {line} 行不是 JSON 对象 / line {line} is not a JSON object"),
        )),
        Err(e) => Err(LakeError::Input {
            code: "bad_json",
            message: format!(
                "第 {line} 行 JSON 无效（第 {} 列）/ line {line}: invalid JSON at column {}: {e}",
                e.column(),
                e.column()
            ),
            line: Some(line),
            column: Some(e.column().to_string()),
        }),
    }
}

impl NdjsonSource {
    pub fn new<R: Read + Send + 'static>(input: R, encoding: Encoding) -> Result<Self> {
        let mut lines = BufReader::new(Utf8Reader::new(refuse_binary(maybe_gunzip(input)?)?, encoding)).lines();
        let mut line_no = 0;
        loop {
            line_no += 1;
            match lines.next() {
                None => return Err(LakeError::at_line("empty_file", 1, "文件为空 / the file is empty")),
                Some(Err(e)) => return Err(crate::decode::input_io_error(e)),
                Some(Ok(l)) if l.trim().is_empty() => continue,
                Some(Ok(l)) => {
                    let obj = json_object(line_no, l.trim_start_matches('\u{feff}'))?;
                    let headers: Vec<String> = obj.keys().cloned().collect();
                    check_headers(&headers)?;
                    return Ok(Self { lines, headers, line_no, pending: Some((line_no, obj)) });
                }
            }
        }
    }
}

fn push_object(
    b: &mut [StringBuilder],
    headers: &[String],
    obj: &serde_json::Map<String, serde_json::Value>,
    line: u64,
) -> Result<()> {
    if let Some(k) = obj.keys().find(|k| !headers.contains(k)) {
        return Err(LakeError::Input {
            code: "ragged_row",
            message: format!(
                "第 {line} 行有表头中没有的字段“{k}” / line {line} has a field \"{k}\" that the first record does not"
            ),
            line: Some(line),
            column: Some(k.clone()),
        });
    }
    for (i, h) in headers.iter().enumerate() {
        match obj.get(h).and_then(json_text) {
            Some(t) if !t.is_empty() => b[i].append_value(t),
            _ => b[i].append_null(),
        }
    }
    Ok(())
}

impl RawSource for NdjsonSource {
    fn headers(&self) -> &[String] {
        &self.headers
    }
    fn next_batch(&mut self) -> Result<Option<RawBatch>> {
        let mut b = builders(self.headers.len());
        let mut lines = Vec::new();
        if let Some((l, obj)) = self.pending.take() {
            push_object(&mut b, &self.headers, &obj, l)?;
            lines.push(l);
        }
        while lines.len() < BATCH_ROWS {
            self.line_no += 1;
            match self.lines.next() {
                None => break,
                Some(Err(e)) => return Err(crate::decode::input_io_error(e)),
                Some(Ok(l)) if l.trim().is_empty() => continue,
                Some(Ok(l)) => {
                    let obj = json_object(self.line_no, &l)?;
                    push_object(&mut b, &self.headers, &obj, self.line_no)?;
                    lines.push(self.line_no);
                }
            }
        }
        if lines.is_empty() { Ok(None) } else { Ok(Some(finish(&mut b, lines))) }
    }
}

/// Rows held in memory (JSON array, XLSX), handed out in batches.
pub struct MemorySource {
    headers: Vec<String>,
    rows: std::vec::IntoIter<(u64, Vec<Option<String>>)>,
}

impl RawSource for MemorySource {
    fn headers(&self) -> &[String] {
        &self.headers
    }
    fn next_batch(&mut self) -> Result<Option<RawBatch>> {
        let mut b = builders(self.headers.len());
        let mut lines = Vec::new();
        for (line, row) in self.rows.by_ref().take(BATCH_ROWS) {
            for (i, v) in row.into_iter().enumerate() {
                match v {
                    Some(s) if !s.is_empty() => b[i].append_value(s),
                    _ => b[i].append_null(),
                }
            }
            lines.push(line);
        }
        if lines.is_empty() { Ok(None) } else { Ok(Some(finish(&mut b, lines))) }
    }
}

/// A JSON array of objects (read whole: arrays are not streamable line by line).
pub fn json_array(path: &Path, encoding: Encoding) -> Result<MemorySource> {
    let mut text = String::new();
    Utf8Reader::new(maybe_gunzip(std::fs::File::open(path)?)?, encoding)
        .read_to_string(&mut text)
        .map_err(crate::decode::input_io_error)?;
    let text = text.trim_start_matches('\u{feff}');
    if text.trim().is_empty() {
        return Err(LakeError::at_line("empty_file", 1, "文件为空 / the file is empty"));
    }
    let v: serde_json::Value = serde_json::from_str(text).map_err(|e| LakeError::Input {
        code: "bad_json",
        message: format!(
            "JSON 无效（第 {} 行第 {} 列）/ invalid JSON at line {}, column {}: {e}",
            e.line(),
            e.column(),
            e.line(),
            e.column()
        ),
        line: Some(e.line() as u64),
        column: Some(e.column().to_string()),
    })?;
    // A GeoJSON FeatureCollection: each feature a row of its properties and `geometry`.
    let features = crate::spatial::feature_rows(&v);
    let items = match v {
        _ if features.is_some() => features.clone().unwrap_or_default(),
        serde_json::Value::Array(_) => {
            let raw: Vec<Box<serde_json::value::RawValue>> = serde_json::from_str(text)
                .map_err(|e| LakeError::input("bad_json", format!("JSON 无效 / invalid JSON: {e}")))?;
            raw.iter()
                .map(|r| exact_value(r.get()))
                .collect::<serde_json::Result<Vec<_>>>()
                .map_err(|e| LakeError::input("bad_json", format!("JSON 无效 / invalid JSON: {e}")))?
        }
        _ => vec![],
    };
    if features.is_none() && !v.is_array() {
        return Err(LakeError::at_line(
            "bad_json",
            1,
            "JSON 文件须为对象数组；逐行对象请用 format=ndjson / a JSON file must be an array of objects (use format=ndjson for one object per line)",
        ));
    }
    let mut headers: Vec<String> = Vec::new();
    for it in &items {
        if let serde_json::Value::Object(m) = it {
            for k in m.keys() {
                if !headers.contains(k) {
                    headers.push(k.clone());
                }
            }
        }
    }
    check_headers(&headers)?;
    let mut rows = Vec::with_capacity(items.len());
    for (i, it) in items.into_iter().enumerate() {
        let serde_json::Value::Object(m) = it else {
            return Err(LakeError::at_line(
                "bad_json",
                (i + 1) as u64,
                format!("第 {} 个元素不是对象 / element {} is not an object", i + 1, i + 1),
            ));
        };
        rows.push(((i + 1) as u64, headers.iter().map(|h| m.get(h).and_then(json_text)).collect()));
    }
    Ok(MemorySource { headers, rows: rows.into_iter() })
}

#[cfg(test)]
mod tests {
    use super::seekable::column_letter;
    use super::*;

    #[test]
    fn a_file_name_suggests_its_format() {
        assert_eq!(Format::name_from_file_name("人口.CSV.gz").as_deref(), Some("csv"));
        assert_eq!(Format::name_from_file_name("a.b.xlsx").as_deref(), Some("xlsx"));
        assert_eq!(Format::name_from_file_name("noext"), None);
        assert_eq!(Format::name_from_file_name("trailing."), None);
    }

    fn csv(text: &str) -> Result<CsvSource> {
        CsvSource::new(std::io::Cursor::new(text.as_bytes().to_vec()), Encoding::Auto, b',', b'"', true)
    }

    /// A reader that hands out at most three bytes a call, so that characters are cut at
    /// chunk boundaries.
    struct Trickle(std::io::Cursor<Vec<u8>>);

    impl Read for Trickle {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let n = buf.len().min(3);
            self.0.read(&mut buf[..n])
        }
    }

    /// Text declared UTF-8 is checked once, by the CSV reader: characters cut at every chunk
    /// boundary read whole, and a line in another encoding is named, with the encoding to use.
    #[test]
    fn utf8_is_checked_once_and_names_the_line() {
        let rows = "张三,泰州市海陵区鼓楼路\n".repeat(40);
        let text = format!("姓名,地址\n{rows}");
        let mut src =
            CsvSource::new(Trickle(std::io::Cursor::new(text.into_bytes())), Encoding::Utf8, b',', b'"', true).unwrap();
        let batch = src.next_batch().unwrap().unwrap();
        assert_eq!(batch.num_rows(), 40);
        let (gb, _, _) = encoding_rs::GB18030.encode("李四,高港区");
        let mut bytes = format!("姓名,地址\n{rows}").into_bytes();
        bytes.extend_from_slice(&gb);
        bytes.extend_from_slice("\n王五,兴化市\n".as_bytes());
        let mut src = CsvSource::new(Trickle(std::io::Cursor::new(bytes)), Encoding::Utf8, b',', b'"', true).unwrap();
        match src.next_batch() {
            Err(LakeError::Input { code: "bad_encoding", line: Some(42), message, .. }) => {
                assert!(message.contains("第 42 行") && message.contains("encoding=gb18030"), "{message}");
            }
            other => panic!("expected bad_encoding at line 42, got {:?}", other.map(|b| b.map(|b| b.num_rows()))),
        }
    }

    #[test]
    fn csv_batches_and_errors_name_lines() {
        let mut s = csv("a,b\n1,\"x,y\"\n3,4\n").unwrap();
        assert_eq!(s.headers(), ["a", "b"]);
        let b = s.next_batch().unwrap().unwrap();
        assert_eq!(b.lines, vec![2, 3]);
        assert!(s.next_batch().unwrap().is_none());
        let mut s = csv("a,b\n1,2\n3,4,5\n").unwrap();
        let e = s.next_batch().unwrap_err();
        assert!(matches!(&e, LakeError::Input { code: "ragged_row", line: Some(3), .. }), "{e:?}");
        let mut s = csv("a,b\n1,2\n3,\"open\n5,6\n").unwrap();
        let e = s.next_batch().unwrap_err();
        assert!(matches!(&e, LakeError::Input { code: "unclosed_quote", line: Some(3), .. }), "{e:?}");
        assert!(matches!(csv("").err().unwrap(), LakeError::Input { code: "empty_file", .. }));
        assert!(matches!(csv("a,,b\n").err().unwrap(), LakeError::Input { code: "empty_header", .. }));
        assert!(matches!(csv("a,a\n").err().unwrap(), LakeError::Input { code: "duplicate_header", .. }));
        let mut header_only = csv("a,b\n").unwrap();
        assert!(header_only.next_batch().unwrap().is_none());
    }

    #[test]
    fn ndjson_streams_objects() {
        let mut s = NdjsonSource::new(
            std::io::Cursor::new(b"{\"a\":1,\"b\":\"x\"}\n\n{\"a\":2,\"b\":null}\n".to_vec()),
            Encoding::Auto,
        )
        .unwrap();
        let b = s.next_batch().unwrap().unwrap();
        assert_eq!(b.lines, vec![1, 3]);
        assert!(b.columns[1].is_null(1));
        let mut s = NdjsonSource::new(std::io::Cursor::new(b"{\"a\":1}\n{\"a\":\n".to_vec()), Encoding::Auto).unwrap();
        assert!(matches!(s.next_batch().unwrap_err(), LakeError::Input { line: Some(2), .. }));
    }

    #[test]
    fn letters() {
        assert_eq!(column_letter(0), "A");
        assert_eq!(column_letter(25), "Z");
        assert_eq!(column_letter(26), "AA");
    }
}
