//! From raw text batches to typed, validated record batches: column mapping, casting,
//! validators, key uniqueness, consistency rules. Invalid rows are set aside with every
//! failure named (item, rule, message). A message names the item and the rule, never the cell:
//! the cell is in `Failure::value` and `InvalidRow::record`, which only the provider sees.

use crate::error::{LakeError, Result};
use crate::quality::QualityEval;
use crate::read::RawBatch;
use crate::schema::{DECIMAL_SCALE, MONEY_SCALE, table_schema};
use arrow::array::{
    Array, ArrayRef, BinaryBuilder, BooleanArray, BooleanBuilder, Date32Builder, Decimal128Builder, Int64Builder,
    StringArray, StringBuilder, TimestampMicrosecondBuilder,
};
use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use base64::Engine;
use citydata_domain::cast;
use citydata_domain::identifiers::{self, IdNumber, Sex};
use citydata_domain::quality::RuleKind;
use citydata_domain::resource::{ConsistencyRule, InfoItem, Validator};
use citydata_domain::vocab::DataType;
use serde::Serialize;
use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

/// One failed check of one cell (or row).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Failure {
    pub line: u64,
    /// Item name; `None` for whole-row rules.
    pub item: Option<String>,
    pub title: Option<String>,
    /// `required`, `type`, `length`, `id_card`, `uscc`, `org_code`, `region_code`, `mobile`,
    /// `bank_card`, `email`, `regex`, `enum`, `range`, `unique_key`, `id_card_birth_date`, `id_card_sex`.
    pub rule: String,
    /// Names the item and the rule; never contains the cell (safe to show beside counts).
    pub message: String,
    /// The offending cell (the provider's eyes only).
    pub value: Option<String>,
}

/// A rejected row: its failures and its original cells.
#[derive(Debug, Clone, Serialize)]
pub struct InvalidRow {
    pub line: u64,
    pub failures: Vec<Failure>,
    pub record: BTreeMap<String, Option<String>>,
}

fn normalize_header(s: &str) -> String {
    cast::half_width(s)
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '_' && *c != '-')
        .collect::<String>()
        .to_lowercase()
}

/// Which raw column feeds which item.
#[derive(Debug, Clone)]
pub struct Mapping {
    /// For each item, the index of its source column.
    pub sources: Vec<Option<usize>>,
    /// For a point item without a column of its own, its longitude and latitude columns.
    pub pairs: Vec<Option<(usize, usize)>>,
    pub headers: Vec<String>,
}

impl Mapping {
    /// Map headers to items by name or Chinese title: exact first, then normalized (full-width
    /// to half-width, spaces, case). Unmapped columns are an error unless `ignore_extra`;
    /// missing required items are an error.
    pub fn new(headers: &[String], items: &[InfoItem], ignore_extra: bool) -> Result<Self> {
        let mut sources: Vec<Option<usize>> = vec![None; items.len()];
        let mut used = vec![false; headers.len()];
        for pass in 0..2 {
            for (ii, item) in items.iter().enumerate() {
                if sources[ii].is_some() {
                    continue;
                }
                let found = headers.iter().enumerate().find(|(hi, h)| {
                    !used[*hi]
                        && if pass == 0 {
                            h.trim() == item.name.as_str() || h.trim() == item.title
                        } else {
                            let n = normalize_header(h);
                            n == normalize_header(item.name.as_str()) || n == normalize_header(&item.title)
                        }
                });
                if let Some((hi, _)) = found {
                    sources[ii] = Some(hi);
                    used[hi] = true;
                }
            }
        }
        let mut pairs = vec![None; items.len()];
        for (ii, item) in items.iter().enumerate() {
            if sources[ii].is_none()
                && item.data_type.is_spatial()
                && let Some(hi) = headers.iter().enumerate().position(|(i, h)| !used[i] && h.trim() == "geometry")
            {
                // GeoJSON features: the geometry feeds the first spatial item without a column.
                sources[ii] = Some(hi);
                used[hi] = true;
                continue;
            }
            if sources[ii].is_none()
                && item.data_type == DataType::Point
                && let Some((x, y)) = crate::spatial::lon_lat_columns(item, headers, &used)
            {
                pairs[ii] = Some((x, y));
                used[x] = true;
                used[y] = true;
            }
        }
        let extra: Vec<&str> = headers.iter().zip(&used).filter(|(_, u)| !**u).map(|(h, _)| h.as_str()).collect();
        if !extra.is_empty() && !ignore_extra {
            return Err(LakeError::Input {
                code: "unknown_columns",
                message: format!(
                    "这些列不对应任何信息项：{}（可加 ignore_extra=true 忽略）/ these columns match no item: {} (pass ignore_extra=true to ignore them)",
                    extra.join("、"),
                    extra.join(", ")
                ),
                line: Some(1),
                column: Some(extra.join(",")),
            });
        }
        let missing: Vec<String> = items
            .iter()
            .zip(&sources)
            .zip(&pairs)
            .filter(|((i, s), p)| i.required && s.is_none() && p.is_none())
            .map(|(x, _)| x)
            .map(|(i, _)| format!("{}（{}）", i.title, i.name))
            .collect();
        if !missing.is_empty() {
            return Err(LakeError::Input {
                code: "missing_columns",
                message: format!(
                    "缺少必填信息项的列：{} / missing columns for required items: {}",
                    missing.join("、"),
                    missing.join(", ")
                ),
                line: Some(1),
                column: None,
            });
        }
        Ok(Self { sources, pairs, headers: headers.to_vec() })
    }
}

enum Compiled {
    None,
    Regex(regex::Regex),
    Other(Validator),
}

/// What converts a batch on its own: the items, their compiled validators, the rules across
/// items, the mapping. Fixed for an ingest and shared by its conversion workers ([`Stage`]).
struct Plan {
    items: Vec<InfoItem>,
    compiled: Vec<Compiled>,
    rules: Vec<ConsistencyRule>,
    mapping: Mapping,
    schema: SchemaRef,
    key_items: Vec<usize>,
}

/// Converts raw batches for one resource, remembering keys across batches.
///
/// A batch goes through two steps. [`Stage::run`] casts and checks each cell and each row's
/// rules across items; it depends on nothing but the batch, so several batches may be staged
/// at once on other threads. [`Converter::finish`] then takes the staged batches *in their
/// order* for what depends on the batches before: key uniqueness, the quality rules' counters
/// (and `unique` rules), and the split into valid and invalid rows. [`Converter::convert`]
/// does both.
pub struct Converter {
    plan: Arc<Plan>,
    seen_keys: crate::keyset::KeySet,
    /// Keys already in the table (append mode), as hashes.
    existing_keys: Option<crate::keyset::KeySet>,
    /// Keep invalid rows in the output batch too (policy `accept`).
    keep_all: bool,
    /// Quality rules and the report's counters.
    quality: Option<QualityEval>,
}

/// A row's cell as trimmed text; `None` when missing or blank.
pub(crate) fn cell(col: Option<&StringArray>, r: usize) -> Option<&str> {
    col.filter(|c| !c.is_null(r)).map(|c| c.value(r)).map(cast::trim_cell).filter(|s| !s.is_empty())
}

/// Does `other` agree with the identity number `id` under a cross-item quality rule? An
/// unreadable identity number or other value is not an inconsistency (it fails elsewhere).
pub(crate) fn consistent(kind: &RuleKind, id: &str, other: &str) -> bool {
    let Ok(id) = IdNumber::parse(id) else { return true };
    match kind {
        RuleKind::IdCardBirthDate { .. } => cast::parse_date(other).is_none_or(|d| d == id.birth_date()),
        RuleKind::IdCardSex { .. } => sex(other).is_none_or(|s| s == id.sex()),
        _ => true,
    }
}

fn sex(s: &str) -> Option<Sex> {
    match s {
        "男" | "1" | "M" | "m" | "male" => Some(Sex::Male),
        "女" | "2" | "F" | "f" | "female" => Some(Sex::Female),
        _ => None,
    }
}

/// A hash of a key's normalized cell texts.
pub fn key_hash<'a>(parts: impl IntoIterator<Item = &'a str>) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    for p in parts {
        let t = p.trim();
        // ASCII without lower case (identity numbers, codes) is its own upper case: hashed as
        // it is, the same as its upper-cased copy would be, without making the copy.
        if t.is_ascii() && !t.bytes().any(|b| b.is_ascii_lowercase()) {
            t.hash(&mut h);
        } else {
            t.to_uppercase().hash(&mut h);
        }
        0xffu8.hash(&mut h);
    }
    h.finish()
}

pub struct Converted {
    pub batch: RecordBatch,
    pub invalid: Vec<InvalidRow>,
}

/// A batch cast and checked on its own ([`Stage::run`]), waiting for [`Converter::finish`].
pub struct Staged {
    columns: Vec<ArrayRef>,
    failures: Vec<Vec<Failure>>,
    /// Each row's key hash; empty when the resource has no key.
    keys: Vec<u64>,
}

/// The part of a [`Converter`] that any thread may run on any batch (cloned per worker).
#[derive(Clone)]
pub struct Stage(Arc<Plan>);

impl Stage {
    /// Cast and check one batch's cells and its rules across items.
    pub fn run(&self, raw: &RawBatch) -> Result<Staged> {
        self.0.stage(raw)
    }
}

fn failure(line: u64, item: &InfoItem, rule: &str, message: String, value: Option<&str>) -> Failure {
    Failure {
        line,
        item: Some(item.name.to_string()),
        title: Some(item.title.clone()),
        rule: rule.into(),
        message,
        value: value.map(|v| v.chars().take(200).collect()),
    }
}

impl Converter {
    pub fn new(items: &[InfoItem], rules: &[ConsistencyRule], mapping: Mapping) -> Self {
        let compiled = items
            .iter()
            .map(|i| match &i.validator {
                None => Compiled::None,
                Some(Validator::Regex(r)) => {
                    regex::Regex::new(&format!("^(?:{r})$")).map(Compiled::Regex).unwrap_or(Compiled::None)
                }
                Some(v) => Compiled::Other(v.clone()),
            })
            .collect();
        let key_items = items.iter().enumerate().filter(|(_, i)| i.key).map(|(n, _)| n).collect();
        Self {
            plan: Arc::new(Plan {
                items: items.to_vec(),
                compiled,
                rules: rules.to_vec(),
                mapping,
                schema: table_schema(items),
                key_items,
            }),
            seen_keys: crate::keyset::KeySet::default(),
            existing_keys: None,
            keep_all: false,
            quality: None,
        }
    }

    /// Evaluate quality rules and count for the version's quality report.
    pub fn with_quality(mut self, eval: QualityEval) -> Self {
        self.quality = Some(eval);
        self
    }

    /// The quality counters (after the last batch).
    pub fn take_quality(&mut self) -> Option<QualityEval> {
        self.quality.take()
    }

    /// Keep invalid rows in the output (their unreadable cells null); they are still reported.
    pub fn keep_invalid_rows(mut self) -> Self {
        self.keep_all = true;
        self
    }

    pub fn schema(&self) -> &SchemaRef {
        &self.plan.schema
    }

    /// The batch-by-batch step, for conversion workers.
    pub fn stage(&self) -> Stage {
        Stage(self.plan.clone())
    }

    /// Refuse rows whose key is already in the table.
    pub fn with_existing_keys(mut self, keys: crate::keyset::KeySet) -> Self {
        self.existing_keys = Some(keys);
        self
    }

    pub fn has_keys(&self) -> bool {
        !self.plan.key_items.is_empty()
    }

    pub fn key_items(&self) -> Vec<&InfoItem> {
        self.plan.key_items.iter().map(|i| &self.plan.items[*i]).collect()
    }

    /// Convert one raw batch: valid rows into the table's schema, the others set aside.
    pub fn convert(&mut self, raw: &RawBatch) -> Result<Converted> {
        let staged = self.plan.stage(raw)?;
        self.finish(raw, staged)
    }
}

impl Plan {
    fn check_text(&self, idx: usize, s: &str, line: u64) -> Option<Failure> {
        let item = &self.items[idx];
        // A text of at most `max` bytes has at most `max` characters: counted only past that.
        if let Some(max) = item.length
            && s.len() > max as usize
            && s.chars().count() > max as usize
        {
            return Some(failure(
                line,
                item,
                "length",
                format!("“{}”超过长度 {max} / longer than {max} characters", item.title),
                Some(s),
            ));
        }
        let check = |ok: bool, rule: &str, what: &dyn Fn() -> String| {
            if ok { None } else { Some(failure(line, item, rule, format!("“{}”{}", item.title, what()), Some(s))) }
        };
        match &self.compiled[idx] {
            Compiled::None => None,
            Compiled::Regex(re) => {
                check(re.is_match(s), "regex", &|| "不符合格式要求 / does not match the required pattern".into())
            }
            Compiled::Other(v) => match v {
                Validator::IdCard => match IdNumber::parse(s) {
                    Ok(_) => None,
                    Err(e) => {
                        Some(failure(line, item, "id_card", format!("“{}”无效：{}", item.title, e.message()), Some(s)))
                    }
                },
                Validator::Uscc => check(identifiers::is_uscc(s), "uscc", &|| {
                    "不是有效的统一社会信用代码（GB 32100）/ not a valid unified social credit code".into()
                }),
                Validator::OrgCode => check(identifiers::is_org_code(s), "org_code", &|| {
                    "不是有效的组织机构代码（GB 11714）/ not a valid organization code".into()
                }),
                Validator::RegionCode => check(identifiers::is_region_code(s.trim()), "region_code", &|| {
                    "不是有效的行政区划代码（GB/T 2260）/ not a GB/T 2260 code".into()
                }),
                Validator::Mobile => check(identifiers::is_mobile(s), "mobile", &|| {
                    "不是有效的手机号码 / not a valid mobile number".into()
                }),
                Validator::BankCard => check(identifiers::is_bank_card(s), "bank_card", &|| {
                    "不是有效的银行卡号（Luhn 校验失败）/ not a valid bank card number".into()
                }),
                Validator::Email => check(identifiers::is_email(s), "email", &|| {
                    "不是有效的电子邮箱 / not a valid email address".into()
                }),
                Validator::Enum(vals) => check(vals.iter().any(|v| v == s.trim()), "enum", &|| {
                    format!("须为 {} 之一 / must be one of {}", vals.join("、"), vals.join(", "))
                }),
                Validator::Range { .. } | Validator::Regex(_) | Validator::Crs(_) => None,
            },
        }
    }

    fn check_range(&self, idx: usize, v: f64, s: &str, line: u64) -> Option<Failure> {
        let item = &self.items[idx];
        if let Compiled::Other(Validator::Range { min, max }) = &self.compiled[idx]
            && (v < *min || v > *max)
        {
            return Some(failure(
                line,
                item,
                "range",
                format!("“{}”应在 {min} 到 {max} 之间 / must be between {min} and {max}", item.title),
                Some(s),
            ));
        }
        None
    }

    /// Each item's text column in a raw batch (`None` when the file has none).
    fn text<'a>(&self, raw: &'a RawBatch) -> Vec<Option<&'a StringArray>> {
        self.mapping
            .sources
            .iter()
            .map(|s| s.and_then(|i| raw.columns.get(i)).and_then(|c| c.as_any().downcast_ref::<StringArray>()))
            .collect()
    }

    /// Cast and check one batch on its own (see [`Converter`]).
    fn stage(&self, raw: &RawBatch) -> Result<Staged> {
        let n = raw.num_rows();
        let mut failures: Vec<Vec<Failure>> = vec![Vec::new(); n];
        let text = self.text(raw);
        let mut columns: Vec<ArrayRef> = Vec::with_capacity(self.items.len());
        for (idx, item) in self.items.iter().enumerate() {
            let col = text[idx];
            if item.data_type.is_spatial() {
                let pair = self.mapping.pairs.get(idx).copied().flatten().map(|(x, y)| {
                    let get = |i: usize| raw.columns.get(i).and_then(|c| c.as_any().downcast_ref::<StringArray>());
                    (get(x), get(y))
                });
                if let Some((x, y)) = pair {
                    let (column, cells) = crate::spatial::pair_column(item, x, y, n);
                    for (r, row_failures) in failures.iter_mut().enumerate() {
                        let line = raw.lines[r];
                        match cells[r] {
                            crate::spatial::PairCell::Point(..) => {}
                            crate::spatial::PairCell::Null if !item.required => {}
                            crate::spatial::PairCell::Null => row_failures.push(failure(
                                line,
                                item,
                                "required",
                                format!("“{}”为必填项 / {} is required", item.title, item.name),
                                None,
                            )),
                            crate::spatial::PairCell::Bad(rule) => {
                                let text = format!("{},{}", cell(x, r).unwrap_or(""), cell(y, r).unwrap_or(""));
                                let what = crate::spatial::rule_message(rule);
                                row_failures.push(failure(
                                    line,
                                    item,
                                    rule,
                                    format!("“{}”{what}", item.title),
                                    Some(&text),
                                ));
                            }
                        }
                    }
                    columns.push(column);
                    continue;
                }
                let mut b = crate::spatial::ColumnBuilder::new(item, n);
                for (r, row_failures) in failures.iter_mut().enumerate() {
                    let line = raw.lines[r];
                    let text = cell(col, r);
                    if text.is_none() && item.required {
                        row_failures.push(failure(
                            line,
                            item,
                            "required",
                            format!("“{}”为必填项 / {} is required", item.title, item.name),
                            None,
                        ));
                    }
                    if let Some((rule, message)) = b.push(text) {
                        let _ = message;
                        let what = crate::spatial::rule_message(rule);
                        row_failures.push(failure(line, item, rule, format!("“{}”{what}", item.title), text));
                    }
                }
                columns.push(b.finish());
                continue;
            }
            macro_rules! each {
                ($builder:expr, $parse:expr, $what:expr) => {
                    each!($builder, $parse, $what, 1.0)
                };
                ($builder:expr, $parse:expr, $what:expr, $div:expr) => {{
                    let mut b = $builder;
                    for r in 0..n {
                        let line = raw.lines[r];
                        match cell(col, r) {
                            None => {
                                if item.required {
                                    failures[r].push(failure(
                                        line,
                                        item,
                                        "required",
                                        format!("“{}”为必填项 / {} is required", item.title, item.name),
                                        None,
                                    ));
                                }
                                b.append_null();
                            }
                            Some(s) => match $parse(s) {
                                Some(v) => {
                                    if let Some(f) = self.check_text(idx, s, line) {
                                        failures[r].push(f);
                                    }
                                    let x: f64 = ToF64::to_f64(&v) / $div;
                                    if let Some(f) = self.check_range(idx, x, s, line) {
                                        failures[r].push(f);
                                    }
                                    b.append_value(v);
                                }
                                None => {
                                    failures[r].push(failure(
                                        line,
                                        item,
                                        "type",
                                        format!(
                                            "“{}”不是有效的{} / not a valid {}",
                                            item.title,
                                            $what,
                                            item.data_type.as_str()
                                        ),
                                        Some(s),
                                    ));
                                    b.append_null();
                                }
                            },
                        }
                    }
                    Arc::new(b.finish()) as ArrayRef
                }};
            }
            let array: ArrayRef = match item.data_type {
                DataType::String | DataType::Text => {
                    each!(StringBuilder::with_capacity(n, n * 16), text_cell, "文本")
                }
                DataType::Integer => each!(Int64Builder::with_capacity(n), cast::parse_int, "整数"),
                DataType::Decimal => each!(
                    Decimal128Builder::with_capacity(n).with_precision_and_scale(38, DECIMAL_SCALE)?,
                    |s: &str| cast::parse_decimal(s, DECIMAL_SCALE as u32),
                    "数值",
                    1e6
                ),
                DataType::Money => each!(
                    Decimal128Builder::with_capacity(n).with_precision_and_scale(20, MONEY_SCALE)?,
                    |s: &str| cast::parse_decimal(s, MONEY_SCALE as u32).filter(|v| v.abs() < 10i128.pow(20)),
                    "金额",
                    1e2
                ),
                DataType::Boolean => each!(BooleanBuilder::with_capacity(n), cast::parse_bool, "是/否"),
                DataType::Date => each!(
                    Date32Builder::with_capacity(n),
                    |s: &str| cast::parse_date(s)
                        .map(|d| (d - chrono::NaiveDate::from_ymd_opt(1970, 1, 1).expect("epoch")).num_days() as i32),
                    "日期"
                ),
                DataType::Datetime => each!(
                    TimestampMicrosecondBuilder::with_capacity(n).with_timezone(crate::schema::TZ),
                    |s: &str| cast::parse_instant(s).map(|t| t.timestamp_micros()),
                    "日期时间"
                ),
                // Converted above.
                DataType::Point | DataType::Geometry => {
                    arrow::array::new_null_array(&arrow::datatypes::DataType::Binary, n)
                }
                DataType::Binary => each!(
                    BinaryBuilder::with_capacity(n, n * 16),
                    |s: &str| base64::engine::general_purpose::STANDARD.decode(s).ok(),
                    "Base64 二进制"
                ),
            };
            columns.push(array);
        }

        // Rules across items. Each row's identity number is read once per column, however
        // many rules look at it (the birth-date and the sex rule both do).
        let mut ids: Vec<(usize, Vec<Option<IdNumber>>)> = Vec::new();
        for rule in &self.rules {
            let (id_name, other_name) = match rule {
                ConsistencyRule::IdCardBirthDate { id, date } => (id, date),
                ConsistencyRule::IdCardSex { id, sex } => (id, sex),
            };
            let (Some(ii), Some(oi)) = (
                self.items.iter().position(|i| &i.name == id_name),
                self.items.iter().position(|i| &i.name == other_name),
            ) else {
                continue;
            };
            let parsed = match ids.iter().position(|(c, _)| *c == ii) {
                Some(p) => p,
                None => {
                    ids.push((ii, (0..n).map(|r| cell(text[ii], r).and_then(|t| IdNumber::parse(t).ok())).collect()));
                    ids.len() - 1
                }
            };
            let parsed = &ids[parsed].1;
            for (r, row_failures) in failures.iter_mut().enumerate() {
                let (Some(id), Some(other)) = (&parsed[r], cell(text[oi], r)) else { continue };
                let line = raw.lines[r];
                let item = &self.items[oi];
                match rule {
                    ConsistencyRule::IdCardBirthDate { .. } => {
                        if let Some(d) = cast::parse_date(other)
                            && d != id.birth_date()
                        {
                            row_failures.push(failure(
                                line,
                                item,
                                "id_card_birth_date",
                                format!(
                                    "“{}”与身份证号中的出生日期不一致 / disagrees with the birth date in the ID number",
                                    item.title
                                ),
                                Some(other),
                            ));
                        }
                    }
                    ConsistencyRule::IdCardSex { .. } => {
                        if sex(other).is_some_and(|s| s != id.sex()) {
                            row_failures.push(failure(
                                line,
                                item,
                                "id_card_sex",
                                format!(
                                    "“{}”与身份证号中的性别不一致 / disagrees with the sex in the ID number",
                                    item.title
                                ),
                                Some(other),
                            ));
                        }
                    }
                }
            }
        }

        // The rows' key hashes (the costly part of the uniqueness check: each part trimmed and
        // upper-cased), for `finish` to look up in order.
        let keys = if self.key_items.is_empty() {
            Vec::new()
        } else {
            (0..n).map(|r| key_hash(self.key_items.iter().map(|k| cell(text[*k], r).unwrap_or("")))).collect()
        };
        Ok(Staged { columns, failures, keys })
    }
}

impl Converter {
    /// Finish a staged batch: the checks that depend on the batches before it. Batches must
    /// come in their order (the first of two equal keys is the one kept).
    pub fn finish(&mut self, raw: &RawBatch, staged: Staged) -> Result<Converted> {
        let Staged { columns, mut failures, keys } = staged;
        let plan = self.plan.clone();
        let text = plan.text(raw);
        // Quality rules (before key uniqueness: a row they quarantine does not claim its key).
        if let Some(q) = self.quality.as_mut() {
            q.count_builtin(&text, &failures);
            q.apply(&plan.items, &text, &raw.lines, &mut failures);
        }

        // Key uniqueness: within the file, and against the table when asked.
        if !plan.key_items.is_empty() {
            for (r, row_failures) in failures.iter_mut().enumerate() {
                if !row_failures.is_empty() {
                    continue;
                }
                let h = keys[r];
                let shown =
                    || plan.key_items.iter().map(|k| cell(text[*k], r).unwrap_or("")).collect::<Vec<_>>().join("+");
                let line = raw.lines[r];
                let first_key = &plan.items[plan.key_items[0]];
                if self.existing_keys.as_ref().is_some_and(|e| e.contains(&h)) {
                    if let Some(q) = self.quality.as_mut() {
                        q.count_duplicate_key(r, plan.key_items[0]);
                    }
                    row_failures.push(failure(line, first_key, "unique_key", "主键已存在于表中（追加模式；更新请用 upsert）/ key already in the table (use mode=upsert to update)".to_string(), Some(&shown())));
                } else if !self.seen_keys.insert(h) {
                    if let Some(q) = self.quality.as_mut() {
                        q.count_duplicate_key(r, plan.key_items[0]);
                    }
                    row_failures.push(failure(
                        line,
                        first_key,
                        "unique_key",
                        "主键在文件中重复 / duplicate key in the file".to_string(),
                        Some(&shown()),
                    ));
                }
            }
        }

        let mask = BooleanArray::from(failures.iter().map(|f| self.keep_all || f.is_empty()).collect::<Vec<_>>());
        let full = RecordBatch::try_new(plan.schema.clone(), columns)?;
        let batch = arrow::compute::filter_record_batch(&full, &mask)?;
        let mut invalid = Vec::new();
        for (r, fs) in failures.into_iter().enumerate() {
            if fs.is_empty() {
                continue;
            }
            let record = plan
                .mapping
                .headers
                .iter()
                .enumerate()
                .map(|(ci, h)| {
                    let v = raw.columns[ci]
                        .as_any()
                        .downcast_ref::<StringArray>()
                        .filter(|c| !c.is_null(r))
                        .map(|c| c.value(r).to_string());
                    (h.clone(), v)
                })
                .collect();
            invalid.push(InvalidRow { line: raw.lines[r], failures: fs, record });
        }
        Ok(Converted { batch, invalid })
    }
}

/// A text cell as it is (appended to the column without a copy of its own).
fn text_cell(s: &str) -> Option<&str> {
    Some(s)
}

/// A number's value for range checks (non-numbers are 0 and never range-checked).
trait ToF64 {
    fn to_f64(&self) -> f64;
}
impl ToF64 for &str {
    fn to_f64(&self) -> f64 {
        0.0
    }
}
impl ToF64 for i64 {
    fn to_f64(&self) -> f64 {
        *self as f64
    }
}
impl ToF64 for bool {
    fn to_f64(&self) -> f64 {
        0.0
    }
}
impl ToF64 for i32 {
    fn to_f64(&self) -> f64 {
        0.0
    }
}
impl ToF64 for Vec<u8> {
    fn to_f64(&self) -> f64 {
        0.0
    }
}
impl ToF64 for i128 {
    fn to_f64(&self) -> f64 {
        *self as f64
    }
}
