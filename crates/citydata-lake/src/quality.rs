//! Quality rules evaluated while converting (no second scan), and the counters a version's
//! quality report is computed from: per item the cells present, invalid, duplicated,
//! inconsistent, unreferenced and stale; per rule its failures and the most frequent failing
//! values (the provider's eyes only: they are cells).

use crate::convert::{Failure, key_hash};
use arrow::array::StringArray;
use chrono::{DateTime, Utc};
use citydata_domain::cast;
use citydata_domain::quality::{QualityRule, RuleKind, Severity};
use citydata_domain::resource::InfoItem;
use citydata_domain::vocab::DataType;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

/// At most this many distinct failing values are tallied per rule.
const TOP_DISTINCT: usize = 1_000;

/// Counters of one item over an upload.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ItemCounts {
    /// Non-empty cells.
    pub present: u64,
    /// Cells failing their type, validator, length, or a validity rule (range, regex, enum, length).
    pub invalid: u64,
    /// Cells whose key or `unique` value repeats an earlier one.
    pub duplicate: u64,
    /// Cells disagreeing with another item (ID ↔ birth date / sex).
    pub inconsistent: u64,
    /// Cells with no match in a `reference` rule's target.
    pub unreferenced: u64,
    /// Cells older than a `freshness` rule allows.
    pub stale: u64,
}

/// Counters of one quality rule.
#[derive(Debug, Clone, Default)]
pub struct RuleCounts {
    pub failed: u64,
    /// Failing values and how often each failed (at most [`TOP_DISTINCT`] distinct).
    pub values: HashMap<String, u64>,
    /// `false` when the rule could not be evaluated (a reference whose target was not loaded).
    pub evaluated: bool,
}

impl RuleCounts {
    /// The `n` most frequent failing values.
    pub fn top(&self, n: usize) -> Vec<(String, u64)> {
        let mut v: Vec<(String, u64)> = self.values.iter().map(|(k, c)| (k.clone(), *c)).collect();
        v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        v.truncate(n);
        v
    }
}

/// Everything a quality report needs from an upload.
#[derive(Debug, Clone, Default)]
pub struct QualityCounts {
    pub rows: u64,
    /// In the items' order.
    pub items: Vec<ItemCounts>,
    /// In the rules' order.
    pub rules: Vec<RuleCounts>,
}

/// The key sets a `reference` rule checks against, by rule index (hashes of the target's
/// values, as [`key_hash`] computes them).
pub type References = HashMap<usize, Arc<crate::keyset::KeySet>>;

enum Check {
    NotNull,
    Range(f64, f64),
    Regex(regex::Regex),
    Enum(Vec<String>),
    Length(u32, u32),
    Unique(crate::keyset::KeySet),
    Reference(Arc<crate::keyset::KeySet>),
    Freshness(chrono::Duration),
    Consistency(usize),
}

struct Compiled {
    /// The rule's index in the resource's list.
    index: usize,
    rule: QualityRule,
    item: usize,
    check: Check,
}

/// Which dimension a failing cell counts against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Hit {
    Invalid,
    Duplicate,
    Inconsistent,
    Unreferenced,
    Stale,
}

/// The rules of one ingest, compiled against the items, and the counters.
pub struct QualityEval {
    rules: Vec<Compiled>,
    pub counts: QualityCounts,
    now: DateTime<Utc>,
    data_types: Vec<DataType>,
    names: HashMap<String, usize>,
    /// (row, item, hit) already counted in the current batch: a cell counts once per dimension.
    marked: HashSet<(usize, usize, Hit)>,
}

fn message(item: &InfoItem, rule: &QualityRule) -> String {
    format!("“{}”不满足质量规则 {} / fails the quality rule {}", item.title, rule.spec(), rule.spec())
}

impl QualityEval {
    /// Rules naming unknown items are skipped (the catalog type-checks them on every edit).
    pub fn new(items: &[InfoItem], rules: &[QualityRule], references: References, now: DateTime<Utc>) -> Self {
        let pos = |n: &citydata_domain::resource::ItemName| items.iter().position(|i| &i.name == n);
        let mut compiled = Vec::new();
        let mut counts = vec![RuleCounts::default(); rules.len()];
        for (index, rule) in rules.iter().enumerate() {
            let Some(item) = pos(&rule.item) else { continue };
            let check = match &rule.kind {
                RuleKind::NotNull => Check::NotNull,
                RuleKind::Range { min, max } => Check::Range(*min, *max),
                RuleKind::Regex(r) => match regex::Regex::new(&format!("^(?:{r})$")) {
                    Ok(re) => Check::Regex(re),
                    Err(_) => continue,
                },
                RuleKind::Enum(v) => Check::Enum(v.clone()),
                RuleKind::Length { min, max } => Check::Length(*min, *max),
                RuleKind::Unique => Check::Unique(crate::keyset::KeySet::default()),
                RuleKind::Reference { .. } => match references.get(&index) {
                    Some(keys) => Check::Reference(keys.clone()),
                    None => continue,
                },
                RuleKind::Freshness { max_age, .. } => Check::Freshness(*max_age),
                RuleKind::IdCardBirthDate { date: other } | RuleKind::IdCardSex { sex: other } => match pos(other) {
                    Some(o) => Check::Consistency(o),
                    None => continue,
                },
            };
            counts[index].evaluated = true;
            compiled.push(Compiled { index, rule: rule.clone(), item, check });
        }
        Self {
            rules: compiled,
            counts: QualityCounts { rows: 0, items: vec![ItemCounts::default(); items.len()], rules: counts },
            now,
            data_types: items.iter().map(|i| i.data_type).collect(),
            names: items.iter().enumerate().map(|(n, i)| (i.name.to_string(), n)).collect(),
            marked: HashSet::new(),
        }
    }

    fn hit(&mut self, row: usize, item: usize, hit: Hit) {
        if !self.marked.insert((row, item, hit)) {
            return;
        }
        let c = &mut self.counts.items[item];
        match hit {
            Hit::Invalid => c.invalid += 1,
            Hit::Duplicate => c.duplicate += 1,
            Hit::Inconsistent => c.inconsistent += 1,
            Hit::Unreferenced => c.unreferenced += 1,
            Hit::Stale => c.stale += 1,
        }
    }

    /// Start a batch: count its rows, the cells present per item and the built-in checks'
    /// failures so far (type, validators, length, the consistency rules).
    pub fn count_builtin(&mut self, text: &[Option<&StringArray>], failures: &[Vec<Failure>]) {
        self.marked.clear();
        let n = failures.len();
        self.counts.rows += n as u64;
        for (idx, col) in text.iter().enumerate() {
            if let Some(c) = col {
                let present = (0..n).filter(|r| crate::convert::cell(Some(c), *r).is_some()).count();
                self.counts.items[idx].present += present as u64;
            }
        }
        for (r, row) in failures.iter().enumerate() {
            for f in row {
                let Some(idx) = f.item.as_deref().and_then(|i| self.names.get(i)).copied() else { continue };
                let hit = match f.rule.as_str() {
                    "required" => continue,
                    "id_card_birth_date" | "id_card_sex" => Hit::Inconsistent,
                    _ => Hit::Invalid,
                };
                self.hit(r, idx, hit);
            }
        }
    }

    /// A key that repeats (the converter's own uniqueness check).
    pub fn count_duplicate_key(&mut self, row: usize, item: usize) {
        self.hit(row, item, Hit::Duplicate);
    }

    /// Evaluate the rules over one batch's cells, counting every failure and adding the
    /// `reject` ones to their rows.
    pub fn apply(
        &mut self,
        items: &[InfoItem],
        text: &[Option<&StringArray>],
        lines: &[u64],
        failures: &mut [Vec<Failure>],
    ) {
        let mut hits: Vec<(usize, usize, Hit)> = Vec::new();
        for c in self.rules.iter_mut() {
            let counts = &mut self.counts.rules[c.index];
            let col = text[c.item];
            let dt = self.data_types[c.item];
            for r in 0..lines.len() {
                let v = crate::convert::cell(col, r);
                let ok = match (&mut c.check, v) {
                    (Check::NotNull, v) => v.is_some(),
                    (_, None) => true,
                    (Check::Range(min, max), Some(s)) => match number(dt, s) {
                        Some(x) => x >= *min && x <= *max,
                        None => true, // a type failure, counted as such
                    },
                    (Check::Regex(re), Some(s)) => re.is_match(s),
                    (Check::Enum(vals), Some(s)) => vals.iter().any(|x| x == s),
                    (Check::Length(min, max), Some(s)) => {
                        let n = s.chars().count() as u32;
                        n >= *min && n <= *max
                    }
                    (Check::Unique(seen), Some(s)) => seen.insert(key_hash([s])),
                    (Check::Reference(keys), Some(s)) => keys.contains(&key_hash([s])),
                    (Check::Freshness(age), Some(s)) => match instant(dt, s) {
                        Some(t) => self.now - t <= *age,
                        None => true,
                    },
                    (Check::Consistency(o), Some(id)) => match crate::convert::cell(text[*o], r) {
                        None => true,
                        Some(other) => crate::convert::consistent(&c.rule.kind, id, other),
                    },
                };
                if ok {
                    continue;
                }
                counts.failed += 1;
                let (at, shown) = match &c.check {
                    Check::Consistency(o) => (*o, crate::convert::cell(text[*o], r)),
                    _ => (c.item, v),
                };
                let hit = match &c.check {
                    Check::NotNull => None,
                    Check::Unique(_) => Some(Hit::Duplicate),
                    Check::Reference(_) => Some(Hit::Unreferenced),
                    Check::Freshness(_) => Some(Hit::Stale),
                    Check::Consistency(_) => Some(Hit::Inconsistent),
                    _ => Some(Hit::Invalid),
                };
                if let Some(h) = hit {
                    hits.push((r, at, h));
                }
                if let Some(s) = shown {
                    let s: String = s.chars().take(200).collect();
                    if let Some(n) = counts.values.get_mut(&s) {
                        *n += 1;
                    } else if counts.values.len() < TOP_DISTINCT {
                        counts.values.insert(s, 1);
                    }
                }
                if c.rule.severity == Severity::Reject {
                    let item = &items[at];
                    failures[r].push(Failure {
                        line: lines[r],
                        item: Some(item.name.to_string()),
                        title: Some(item.title.clone()),
                        rule: c.rule.kind.code().to_string(),
                        message: message(item, &c.rule),
                        value: shown.map(|s| s.chars().take(200).collect()),
                    });
                }
            }
        }
        for (r, at, h) in hits {
            self.hit(r, at, h);
        }
    }
}

fn number(dt: DataType, s: &str) -> Option<f64> {
    match dt {
        DataType::Integer => cast::parse_int(s).map(|v| v as f64),
        DataType::Decimal => cast::parse_decimal(s, 6).map(|v| v as f64 / 1e6),
        DataType::Money => cast::parse_decimal(s, 2).map(|v| v as f64 / 1e2),
        _ => None,
    }
}

fn instant(dt: DataType, s: &str) -> Option<DateTime<Utc>> {
    match dt {
        DataType::Date => cast::parse_date(s)
            .and_then(|d| d.and_hms_opt(0, 0, 0))
            .map(|t| t.and_utc() - chrono::Duration::seconds(cast::local_offset().local_minus_utc() as i64)),
        DataType::Datetime => cast::parse_instant(s),
        _ => None,
    }
}

/// A stored batch back as the text cells the converter reads (a full profile of a table
/// version): each item's column cast to text (binary as base64), found by the item's name.
pub fn as_raw(
    batch: &arrow::record_batch::RecordBatch,
    items: &[InfoItem],
    first_line: u64,
) -> crate::Result<crate::read::RawBatch> {
    use arrow::array::{Array, ArrayRef, BinaryArray, StringBuilder};
    use base64::Engine;
    let n = batch.num_rows();
    let mut columns: Vec<ArrayRef> = Vec::with_capacity(items.len());
    for item in items {
        let text: ArrayRef = match batch.column_by_name(item.name.as_str()) {
            None => Arc::new(StringArray::new_null(n)),
            // Spatial cells as WKT, the form ingest reads.
            Some(c) if item.data_type.is_spatial() => crate::spatial::present_array(c)?,
            Some(c) => match c.as_any().downcast_ref::<BinaryArray>() {
                Some(bin) => {
                    let mut b = StringBuilder::with_capacity(n, n * 16);
                    for r in 0..n {
                        if bin.is_null(r) {
                            b.append_null();
                        } else {
                            b.append_value(base64::engine::general_purpose::STANDARD.encode(bin.value(r)));
                        }
                    }
                    Arc::new(b.finish())
                }
                None => arrow::compute::cast(c, &arrow::datatypes::DataType::Utf8)?,
            },
        };
        columns.push(text);
    }
    let lines = (0..n as u64).map(|i| first_line + i).collect();
    Ok(crate::read::RawBatch { columns, lines })
}
