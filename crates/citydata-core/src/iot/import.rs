//! Bulk import of devices (物联网设备批量导入) from a spreadsheet in the catalog spreadsheet's
//! style — an XLSX workbook (first sheet) or a CSV (UTF-8 or GB18030) — one device per row:
//!
//! | 设备编码 (id) | 设备名称 (name) | 型号 (model) | 经度 (lon) | 纬度 (lat) | 行政区划代码 (region) |
//!
//! Every row is checked like a single `POST /devices` before anything is written; any error
//! refuses the whole file with each bad cell named by row and column, and the devices go in in
//! one transaction (all or none).

use super::{DeviceInput, DeviceView, device_record, device_view, sees_registry, writes};
use crate::{Core, CoreError, RequestMeta};
use citydata_domain::audit::Outcome;
use citydata_domain::principal::Principal;
use citydata_domain::{FieldError, ValidationErrors};
use std::collections::{HashMap, HashSet};
use uuid::Uuid;

/// The most rows one import takes.
pub const MAX_ROWS: usize = 10_000;

/// (key, Chinese title, English header).
const COLUMNS: &[(&str, &str, &str)] = &[
    ("id", "设备编码", "id"),
    ("name", "设备名称", "name"),
    ("model", "型号", "model"),
    ("lon", "经度", "lon"),
    ("lat", "纬度", "lat"),
    ("region", "行政区划代码", "region"),
];

fn title(key: &str) -> &'static str {
    COLUMNS.iter().find(|(k, ..)| *k == key).map(|(_, t, _)| *t).unwrap_or("")
}

fn bad(field: String, code: &'static str, message: String) -> CoreError {
    CoreError::Validation(FieldError::new(field, code, message).into())
}

/// The sheet's rows as text cells: the header row first.
fn table(bytes: &[u8]) -> Result<Vec<Vec<String>>, CoreError> {
    if bytes.starts_with(b"PK\x03\x04") {
        use calamine::Reader;
        let mut wb: calamine::Xlsx<_> = calamine::open_workbook_from_rs(std::io::Cursor::new(bytes)).map_err(|_| {
            bad("file".into(), "unreadable", "无法读取 xlsx 文件 / not a readable xlsx workbook".into())
        })?;
        let range = wb
            .worksheet_range_at(0)
            .ok_or_else(|| bad("file".into(), "unreadable", "工作簿没有工作表 / the workbook has no sheet".into()))?
            .map_err(|_| {
                bad("file".into(), "unreadable", "无法读取第一个工作表 / cannot read the first sheet".into())
            })?;
        return Ok(range.rows().map(|r| r.iter().map(crate::catalog_io::import::cell_text).collect()).collect());
    }
    let text = match std::str::from_utf8(bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes)) {
        Ok(t) => t.to_string(),
        Err(_) => {
            let (t, _, malformed) = encoding_rs::GB18030.decode(bytes);
            if malformed {
                return Err(bad(
                    "file".into(),
                    "encoding",
                    "文件既不是 UTF-8 也不是 GB18030 / the file is neither UTF-8 nor GB18030".into(),
                ));
            }
            t.into_owned()
        }
    };
    let mut rd = csv::ReaderBuilder::new().has_headers(false).flexible(true).from_reader(text.as_bytes());
    let mut out = Vec::new();
    for (i, rec) in rd.records().enumerate() {
        let rec = rec.map_err(|_| {
            bad(
                format!("rows[{}]", i + 1),
                "malformed_csv",
                format!("第 {} 行不是合法的 CSV / line {} is not valid CSV", i + 1, i + 1),
            )
        })?;
        out.push(rec.iter().map(str::to_string).collect());
    }
    Ok(out)
}

impl Core {
    /// Import the devices of a file into device type `type_id`. Returns the devices created.
    pub async fn import_devices(
        &self,
        meta: &RequestMeta,
        p: &Principal,
        type_id: Uuid,
        bytes: &[u8],
    ) -> Result<Vec<DeviceView>, CoreError> {
        let t = match self.store.get_device_type(type_id).await? {
            Some(t) if sees_registry(p, &t.department) => t,
            _ => return Err(CoreError::NotFound("设备类型不存在 / no such device type".into())),
        };
        if !writes(p, &t.department) {
            self.audit_iot(meta, p, "iot.device.import", format!("device_type:{}", t.id), Outcome::Denied).await?;
            return Err(CoreError::forbidden());
        }
        let rows = table(bytes)?;
        let Some((header, body)) = rows.split_first() else {
            return Err(bad("file".into(), "empty", "文件是空的 / the file is empty".into()));
        };
        // Header → column keys (Chinese title or English name; unknown columns are refused so a
        // misspelt 经度 is not silently dropped).
        let mut keys: Vec<Option<&str>> = Vec::new();
        let mut errs = ValidationErrors::new();
        for (c, h) in header.iter().enumerate() {
            let h = h.trim();
            if h.is_empty() {
                keys.push(None);
                continue;
            }
            match COLUMNS.iter().find(|(_, zh, en)| h == *zh || h.eq_ignore_ascii_case(en)) {
                Some((k, ..)) => keys.push(Some(k)),
                None => {
                    keys.push(None);
                    errs.push(FieldError::new(
                        format!("columns[{}]", c + 1),
                        "unknown_column",
                        format!("第 1 行第 {} 列：未知的列「{h}」/ unknown column \"{h}\"", c + 1),
                    ));
                }
            }
        }
        for required in ["id", "name"] {
            if !keys.contains(&Some(required)) {
                errs.push(FieldError::new(
                    "columns",
                    "missing_column",
                    format!("缺少必需的列「{}」/ missing column {required}", title(required)),
                ));
            }
        }
        errs.into_result()?;
        let mut errs = ValidationErrors::new();
        if body.len() > MAX_ROWS {
            return Err(bad(
                "rows".into(),
                "too_many_rows",
                format!("一次最多导入 {MAX_ROWS} 台设备 / at most {MAX_ROWS} devices per import"),
            ));
        }
        let mut records = Vec::new();
        let mut seen = HashSet::new();
        for (i, cells) in body.iter().enumerate() {
            let line = i + 2;
            let cell: HashMap<&str, &str> =
                keys.iter().zip(cells).filter_map(|(k, v)| k.map(|k| (k, v.trim()))).collect();
            if cell.values().all(|v| v.is_empty()) {
                continue;
            }
            let text = |k: &str| cell.get(k).copied().filter(|v| !v.is_empty());
            let mut number = |k: &'static str| -> Option<f64> {
                let v = text(k)?;
                match v.parse::<f64>() {
                    Ok(n) if n.is_finite() => Some(n),
                    _ => {
                        errs.push(FieldError::new(
                            format!("rows[{line}].{k}"),
                            "not_a_number",
                            format!("第 {line} 行「{}」：「{v}」不是数字 / row {line}, {k}: not a number", title(k)),
                        ));
                        None
                    }
                }
            };
            let (lon, lat) = (number("lon"), number("lat"));
            let input = DeviceInput {
                id: text("id").unwrap_or("").to_string(),
                type_id,
                name: text("name").unwrap_or("").to_string(),
                model: text("model").map(str::to_string),
                lon,
                lat,
                region: text("region").map(str::to_string),
            };
            match device_record(&input, &t) {
                Ok(d) => {
                    if !seen.insert(d.id.clone()) {
                        errs.push(FieldError::new(
                            format!("rows[{line}].id"),
                            "duplicate",
                            format!(
                                "第 {line} 行「设备编码」：{} 在文件中重复 / row {line}: the id appears twice",
                                d.id
                            ),
                        ));
                    }
                    records.push(d);
                }
                Err(e) => {
                    for f in e.0 {
                        let k = f.field.rsplit('.').next().unwrap_or(&f.field).to_string();
                        errs.push(FieldError::new(
                            format!("rows[{line}].{k}"),
                            f.code,
                            format!("第 {line} 行「{}」：{}", title(&k), f.message),
                        ));
                    }
                }
            }
        }
        errs.into_result()?;
        if records.is_empty() {
            return Err(bad("rows".into(), "empty", "文件中没有设备 / the file lists no device".into()));
        }
        match self.store.create_devices(&records).await {
            Ok(()) => {}
            Err(citydata_store::StoreError::Conflict(what)) => {
                let id = what.trim_start_matches("device ").to_string();
                return Err(CoreError::Conflict(format!("设备编码已存在：{id} / the device id exists: {id}")));
            }
            Err(e) => return Err(e.into()),
        }
        let target = format!("device_type:{}", t.id);
        self.audit_iot(meta, p, "iot.device.import", target, Outcome::Success).await?;
        let now = chrono::Utc::now();
        Ok(records.into_iter().map(|d| device_view(d, t.interval_secs, now)).collect())
    }
}
