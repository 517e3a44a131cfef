//! 物联网 (IoT): device identifiers and the payload schema of a device type (设备类型), which maps
//! a device's JSON message onto the info items of the resource it feeds.
//!
//! A [`PayloadSchema`] exists only when it fits the resource's items (every mapped item exists,
//! unit factors only on numbers, the timestamp on a date/datetime item). [`PayloadSchema::decode`]
//! turns one message into a row of text cells (the same cells an NDJSON upload carries, so the
//! upload's conversion and validation apply unchanged) and its instant, or a [`DecodeFailure`]
//! whose code names why the message goes to the quarantine.

use crate::error::{FieldError, ValidationErrors};
use crate::resource::InfoItem;
use crate::vocab::DataType;
use chrono::{DateTime, NaiveDateTime, TimeZone, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// A device's identifier (设备编码): 1–64 of ASCII letters, digits, `-`, `_`, `.`, `:`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct DeviceId(String);

impl DeviceId {
    pub fn parse(s: &str) -> Result<Self, FieldError> {
        let s = s.trim();
        if s.is_empty()
            || s.len() > 64
            || !s.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':'))
        {
            return Err(FieldError::new(
                "id",
                "invalid_device_id",
                "设备编码须为 1–64 个字母、数字或 - _ . : / a device id is 1–64 ASCII letters, digits or - _ . :",
            ));
        }
        Ok(Self(s.to_string()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for DeviceId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// How the message's timestamp is written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TimestampFormat {
    /// RFC 3339 with an offset (`2026-12-03T08:00:00+08:00`).
    Rfc3339,
    /// Seconds since the epoch (a JSON number or numeric text).
    EpochSeconds,
    /// Milliseconds since the epoch.
    EpochMillis,
    /// A chrono pattern for local time in the platform's zone (+08:00), e.g. `%Y-%m-%d %H:%M:%S`.
    Pattern(String),
}

impl TimestampFormat {
    pub fn parse(s: &str) -> Result<Self, FieldError> {
        match s.trim() {
            "rfc3339" | "" => Ok(Self::Rfc3339),
            "epoch_s" => Ok(Self::EpochSeconds),
            "epoch_ms" => Ok(Self::EpochMillis),
            p if p.contains('%') && p.len() <= 64 => Ok(Self::Pattern(p.to_string())),
            _ => Err(FieldError::new(
                "payload.timestamp_format",
                "invalid_timestamp_format",
                "时间格式须为 rfc3339、epoch_s、epoch_ms 或含 % 的格式串 / the timestamp format is rfc3339, epoch_s, epoch_ms or a %-pattern",
            )),
        }
    }
    pub fn as_str(&self) -> &str {
        match self {
            Self::Rfc3339 => "rfc3339",
            Self::EpochSeconds => "epoch_s",
            Self::EpochMillis => "epoch_ms",
            Self::Pattern(p) => p,
        }
    }
}

/// One mapped field: the JSON path (dot-separated keys) and an optional unit factor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct FieldMapping {
    /// The resource's item (name or Chinese title).
    pub item: String,
    /// Dot-separated keys in the message, e.g. `data.pm25`.
    pub path: String,
    /// Multiply the value by this (unit conversion, e.g. 1000 for mg/m³ → µg/m³).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub factor: Option<f64>,
}

/// The payload schema as given (the body of a device type).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct PayloadInput {
    /// The item that holds the device id.
    pub device_item: String,
    /// Where the device id is in the message; default: the topic's last level.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_path: Option<String>,
    /// The date/datetime item that holds the message's time.
    pub timestamp_item: String,
    /// Where the time is in the message.
    pub timestamp_path: String,
    /// `rfc3339` (default), `epoch_s`, `epoch_ms` or a chrono pattern in local time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp_format: Option<String>,
    /// A message id in the payload for deduplication (default: device + timestamp).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_path: Option<String>,
    /// The measured values.
    pub fields: Vec<FieldMapping>,
}

/// A checked payload schema: items resolved to their names.
#[derive(Debug, Clone, PartialEq)]
pub struct PayloadSchema {
    pub device_item: String,
    pub device_path: Option<Vec<String>>,
    pub timestamp_item: String,
    pub timestamp_path: Vec<String>,
    pub timestamp_format: TimestampFormat,
    timestamp_is_date: bool,
    pub id_path: Option<Vec<String>>,
    pub fields: Vec<(String, Vec<String>, Option<f64>)>,
}

/// Why a message cannot become a row (its code is the quarantine's `rule`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeFailure {
    pub code: &'static str,
    pub message: String,
}

impl DecodeFailure {
    fn new(code: &'static str, message: String) -> Self {
        Self { code, message }
    }
}

/// A decoded message: the row's cells (item name → text or null), its device and instant,
/// and the key that identifies it for deduplication.
#[derive(Debug, Clone, PartialEq)]
pub struct Decoded {
    pub device: String,
    pub at: DateTime<Utc>,
    pub key: String,
    pub row: Map<String, Value>,
}

fn path(field: &str, p: &str) -> Result<Vec<String>, FieldError> {
    let parts: Vec<String> = p.split('.').map(str::trim).map(str::to_string).collect();
    if p.len() > 200 || parts.iter().any(String::is_empty) || parts.len() > 8 {
        return Err(FieldError::new(
            field,
            "invalid_path",
            format!("字段路径无效：{p} / invalid field path (dot-separated keys): {p}"),
        ));
    }
    Ok(parts)
}

fn find_item<'a>(items: &'a [InfoItem], field: &str, name: &str) -> Result<&'a InfoItem, FieldError> {
    items.iter().find(|i| i.name.as_str() == name.trim() || i.title == name.trim()).ok_or_else(|| {
        FieldError::new(field, "unknown_item", format!("资源没有信息项“{name}” / the resource has no item {name}"))
    })
}

impl PayloadSchema {
    /// Check a payload schema against the items of the resource it feeds.
    pub fn parse(input: &PayloadInput, items: &[InfoItem]) -> Result<Self, ValidationErrors> {
        let mut errs = ValidationErrors::new();
        let device_item = errs.check(find_item(items, "payload.device_item", &input.device_item));
        let device_path = input.device_path.as_deref().and_then(|p| errs.check(path("payload.device_path", p)));
        let ts_item = errs.check(find_item(items, "payload.timestamp_item", &input.timestamp_item));
        if let Some(i) = ts_item
            && !matches!(i.data_type, DataType::Datetime | DataType::Date)
        {
            errs.push(FieldError::new(
                "payload.timestamp_item",
                "not_a_time",
                "时间字段须对应日期或日期时间型信息项 / the timestamp item must be a date or datetime item",
            ));
        }
        let timestamp_path = errs.check(path("payload.timestamp_path", &input.timestamp_path));
        let timestamp_format = errs.check(TimestampFormat::parse(input.timestamp_format.as_deref().unwrap_or("")));
        let id_path = input.id_path.as_deref().and_then(|p| errs.check(path("payload.id_path", p)));
        if input.fields.is_empty() || input.fields.len() > 200 {
            errs.push(FieldError::new("payload.fields", "invalid_fields", "须映射 1–200 个字段 / map 1–200 fields"));
        }
        let mut fields = Vec::new();
        for (n, f) in input.fields.iter().enumerate() {
            let field = format!("payload.fields[{n}]");
            let item = errs.check(find_item(items, &format!("{field}.item"), &f.item));
            let p = errs.check(path(&format!("{field}.path"), &f.path));
            if let Some(factor) = f.factor {
                let numeric = item
                    .is_some_and(|i| matches!(i.data_type, DataType::Integer | DataType::Decimal | DataType::Money));
                if !factor.is_finite() || factor == 0.0 || !numeric {
                    errs.push(FieldError::new(
                        format!("{field}.factor"),
                        "invalid_factor",
                        "换算系数须为非零有限数，且仅用于数值型信息项 / a factor is a finite non-zero number, for numeric items only",
                    ));
                }
            }
            if let (Some(i), Some(p)) = (item, p) {
                let name = i.name.as_str().to_string();
                if [device_item.map(|d| d.name.as_str()), ts_item.map(|t| t.name.as_str())].contains(&Some(&name))
                    || fields.iter().any(|(n, _, _)| *n == name)
                {
                    errs.push(FieldError::new(
                        format!("{field}.item"),
                        "duplicate_item",
                        format!("信息项“{name}”映射了两次 / item {name} is mapped twice"),
                    ));
                }
                fields.push((name, p, f.factor));
            }
        }
        errs.into_result()?;
        let (Some(d), Some(t), Some(tp), Some(tf)) = (device_item, ts_item, timestamp_path, timestamp_format) else {
            return Err(ValidationErrors::new());
        };
        Ok(Self {
            device_item: d.name.as_str().to_string(),
            device_path,
            timestamp_item: t.name.as_str().to_string(),
            timestamp_path: tp,
            timestamp_format: tf,
            timestamp_is_date: t.data_type == DataType::Date,
            id_path,
            fields,
        })
    }

    /// Decode one message (`topic` gives the device when the schema has no `device_path`).
    pub fn decode(&self, topic: &str, payload: &[u8]) -> Result<Decoded, DecodeFailure> {
        let v: Value = serde_json::from_slice(payload).map_err(|_| {
            DecodeFailure::new("not_json", "消息不是 JSON 对象 / the message is not a JSON object".into())
        })?;
        if !v.is_object() {
            return Err(DecodeFailure::new("not_json", "消息不是 JSON 对象 / the message is not a JSON object".into()));
        }
        let device = match &self.device_path {
            Some(p) => lookup(&v, p).and_then(scalar_text),
            None => topic.rsplit('/').next().filter(|s| !s.is_empty()).map(str::to_string),
        }
        .ok_or_else(|| DecodeFailure::new("missing_device", "消息没有设备编码 / the message names no device".into()))?;
        let raw_ts = lookup(&v, &self.timestamp_path).filter(|t| !t.is_null()).ok_or_else(|| {
            DecodeFailure::new("missing_timestamp", "消息没有时间 / the message has no timestamp".into())
        })?;
        let at = parse_time(raw_ts, &self.timestamp_format).ok_or_else(|| {
            DecodeFailure::new(
                "invalid_timestamp",
                format!(
                    "时间无法按 {} 解析 / the timestamp does not parse as {}",
                    self.timestamp_format.as_str(),
                    self.timestamp_format.as_str()
                ),
            )
        })?;
        let mut row = Map::new();
        row.insert(self.device_item.clone(), Value::String(device.clone()));
        let ts_text = if self.timestamp_is_date {
            at.with_timezone(&crate::cast::local_offset()).format("%Y-%m-%d").to_string()
        } else {
            at.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
        };
        row.insert(self.timestamp_item.clone(), Value::String(ts_text));
        for (item, p, factor) in &self.fields {
            let cell = match lookup(&v, p) {
                None | Some(Value::Null) => Value::Null,
                Some(x) => match (factor, x) {
                    (Some(f), Value::Number(n)) => match n.as_f64().map(|n| n * f) {
                        Some(y) if y.is_finite() => Value::String(number_text(y)),
                        _ => Value::String(n.to_string()),
                    },
                    (_, x) => scalar_text(x).map(Value::String).unwrap_or_else(|| Value::String(x.to_string())),
                },
            };
            row.insert(item.clone(), cell);
        }
        let key = match self.id_path.as_ref().and_then(|p| lookup(&v, p)).and_then(scalar_text) {
            Some(id) => format!("{device}\u{1f}id:{id}"),
            None => format!("{device}\u{1f}{}", at.timestamp_micros()),
        };
        Ok(Decoded { device, at, key, row })
    }
}

fn lookup<'a>(v: &'a Value, path: &[String]) -> Option<&'a Value> {
    path.iter().try_fold(v, |v, k| v.get(k))
}

fn scalar_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// A converted value as decimal text, at most 6 fraction digits, no trailing zeros.
fn number_text(y: f64) -> String {
    let s = format!("{y:.6}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" { "0".into() } else { s.to_string() }
}

fn parse_time(v: &Value, f: &TimestampFormat) -> Option<DateTime<Utc>> {
    let number = || match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse::<f64>().ok(),
        _ => None,
    };
    match f {
        TimestampFormat::Rfc3339 => {
            DateTime::parse_from_rfc3339(v.as_str()?.trim()).ok().map(|t| t.with_timezone(&Utc))
        }
        TimestampFormat::EpochSeconds => {
            let s = number()?;
            (s.is_finite() && s.abs() < 1e11).then(|| Utc.timestamp_micros((s * 1e6).round() as i64).single())?
        }
        TimestampFormat::EpochMillis => {
            let ms = number()?;
            (ms.is_finite() && ms.abs() < 1e14).then(|| Utc.timestamp_micros((ms * 1e3).round() as i64).single())?
        }
        TimestampFormat::Pattern(p) => {
            let t = NaiveDateTime::parse_from_str(v.as_str()?.trim(), p).ok()?;
            crate::cast::local_offset().from_local_datetime(&t).single().map(|t| t.with_timezone(&Utc))
        }
    }
}

#[cfg(test)]
#[path = "iot_tests.rs"]
mod tests;
