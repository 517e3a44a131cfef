//! 数据质量 (data quality): quality rules per item, their severities, the dimensions of a
//! quality report (GB/T 36344: completeness, validity, uniqueness, consistency, timeliness,
//! accuracy) and the score's weights, the 更新周期 due times, and the 纠错 ticket states.
//!
//! Rules are part of a resource's content ([`crate::resource::ResourceContent::quality_rules`]),
//! so they are versioned with its revision. A rule is written as a spec,
//! `kind(item, args…)`, with a severity beside it:
//!
//! | spec | items | meaning |
//! |---|---|---|
//! | `not_null(x)` | any | the cell is present |
//! | `range(x, min, max)` | integer, decimal, money | `min ≤ value ≤ max` |
//! | `regex(x, pattern)` | string, text | the whole cell matches |
//! | `enum(x, a\|b\|c)` | string, text | one of the values |
//! | `length(x, min, max)` | string, text | characters between `min` and `max` |
//! | `unique(x)` | any but binary | no two rows of the upload share the value |
//! | `reference(x, CODE, y)` | string, text, integer | the value is a key `y` of resource `CODE`'s current table |
//! | `freshness(x, 30d)` | date, datetime | not older than the age (`d`, `h`, `m`) when ingested |
//! | `id_card_birth_date(id, date)`, `id_card_sex(id, sex)` | id_card + date / sex | cross-item consistency |

use crate::error::{FieldError, ValidationErrors};
use crate::resource::{InfoItem, ItemName, ResourceCode, Validator};
use crate::vocab::{DataType, UpdateCycle};
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

/// What a failing rule does to its row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Hash, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum Severity {
    /// The row is quarantined (or the upload refused under `policy=reject`).
    Reject,
    /// The row is kept and counted.
    Warn,
    /// Counted only, for information.
    Info,
}

impl Severity {
    pub fn parse(s: &str) -> Result<Self, FieldError> {
        match s.trim() {
            "reject" | "拒绝" => Ok(Self::Reject),
            "" | "warn" | "警告" => Ok(Self::Warn),
            "info" | "提示" => Ok(Self::Info),
            other => Err(FieldError::new(
                "severity",
                "invalid_severity",
                format!("严重程度须为 reject、warn 或 info，收到 \"{other}\" / severity must be reject, warn or info"),
            )),
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Reject => "reject",
            Self::Warn => "warn",
            Self::Info => "info",
        }
    }
}

/// The check a rule makes.
#[derive(Debug, Clone, PartialEq)]
pub enum RuleKind {
    NotNull,
    Range {
        min: f64,
        max: f64,
    },
    Regex(String),
    Enum(Vec<String>),
    Length {
        min: u32,
        max: u32,
    },
    Unique,
    /// The value exists as key item `item` in resource `resource`'s current table.
    Reference {
        resource: ResourceCode,
        item: ItemName,
    },
    /// Not older than `max_age` at ingest (`text` as written, e.g. `30d`).
    Freshness {
        max_age: Duration,
        text: String,
    },
    /// The date item equals the birth date in this (id_card) item.
    IdCardBirthDate {
        date: ItemName,
    },
    /// The sex item agrees with this (id_card) item.
    IdCardSex {
        sex: ItemName,
    },
}

impl RuleKind {
    /// The rule's kind as reports name it.
    pub fn code(&self) -> &'static str {
        match self {
            Self::NotNull => "not_null",
            Self::Range { .. } => "range",
            Self::Regex(_) => "regex",
            Self::Enum(_) => "enum",
            Self::Length { .. } => "length",
            Self::Unique => "unique",
            Self::Reference { .. } => "reference",
            Self::Freshness { .. } => "freshness",
            Self::IdCardBirthDate { .. } => "id_card_birth_date",
            Self::IdCardSex { .. } => "id_card_sex",
        }
    }

    /// The report dimension a failure of this rule counts against.
    pub fn dimension(&self) -> Dimension {
        match self {
            Self::NotNull => Dimension::Completeness,
            Self::Unique => Dimension::Uniqueness,
            Self::Reference { .. } | Self::IdCardBirthDate { .. } | Self::IdCardSex { .. } => Dimension::Consistency,
            Self::Freshness { .. } => Dimension::Timeliness,
            _ => Dimension::Validity,
        }
    }
}

/// 质量规则: one check on one item (or a pair of items), with its severity.
#[derive(Debug, Clone, PartialEq)]
pub struct QualityRule {
    pub item: ItemName,
    pub kind: RuleKind,
    pub severity: Severity,
}

/// A rule as stored and shown: the spec and the severity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct QualityRuleInput {
    /// `kind(item, args…)`, e.g. `range(nl, 0, 150)`, `reference(qydm, 102/000001, tyshxydm)`.
    pub rule: String,
    /// `reject`, `warn` (default) or `info`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub severity: Option<String>,
}

fn bad(field: &str, message: String) -> FieldError {
    FieldError::new(field, "invalid_rule", message)
}

/// `30d`, `12h`, `90m`.
fn parse_age(s: &str) -> Option<Duration> {
    let t = s.trim();
    let (n, unit) = t.split_at(t.len().checked_sub(1)?);
    let n: i64 = n.trim().parse().ok().filter(|n| *n > 0 && *n <= 100_000)?;
    match unit {
        "d" => Some(Duration::days(n)),
        "h" => Some(Duration::hours(n)),
        "m" => Some(Duration::minutes(n)),
        _ => None,
    }
}

fn num(s: &str) -> Option<f64> {
    s.trim().parse::<f64>().ok().filter(|f| f.is_finite())
}

impl QualityRule {
    /// Parse a spec and severity; `field` names the rule in errors (`quality_rules[2]`).
    pub fn parse(field: &str, input: &QualityRuleInput) -> Result<Self, FieldError> {
        let spec = input.rule.trim();
        let usage = || {
            bad(
                field,
                format!(
                    "规则应写作 类型(信息项, 参数…)，如 range(nl, 0, 150)，收到 \"{spec}\" / a rule is kind(item, args…), e.g. range(nl, 0, 150); got \"{spec}\""
                ),
            )
        };
        if spec.len() > 2000 {
            return Err(bad(field, "规则过长（最多 2000 字符）/ the rule is longer than 2000 characters".into()));
        }
        let severity = Severity::parse(input.severity.as_deref().unwrap_or("warn"))
            .map_err(|e| FieldError { field: format!("{field}.severity"), ..e })?;
        let (kind, rest) = spec.split_once('(').ok_or_else(usage)?;
        let args = rest.strip_suffix(')').ok_or_else(usage)?;
        let (item, tail) = match args.split_once(',') {
            Some((a, b)) => (a, Some(b)),
            None => (args, None),
        };
        let item = ItemName::parse(item).map_err(|_| usage())?;
        let parts = |n: usize| -> Result<Vec<&str>, FieldError> {
            let v: Vec<&str> = tail.map(|t| t.split(',').map(str::trim).collect()).unwrap_or_default();
            if v.len() == n { Ok(v) } else { Err(usage()) }
        };
        let kind = match kind.trim() {
            "not_null" => {
                parts(0)?;
                RuleKind::NotNull
            }
            "unique" => {
                parts(0)?;
                RuleKind::Unique
            }
            "range" => {
                let p = parts(2)?;
                match (num(p[0]), num(p[1])) {
                    (Some(min), Some(max)) if min <= max => RuleKind::Range { min, max },
                    _ => {
                        return Err(bad(
                            field,
                            format!(
                                "range 的最小值、最大值须为数字且最小值不大于最大值 / range needs numbers MIN ≤ MAX: \"{spec}\""
                            ),
                        ));
                    }
                }
            }
            "length" => {
                let p = parts(2)?;
                match (p[0].parse::<u32>(), p[1].parse::<u32>()) {
                    (Ok(min), Ok(max)) if min <= max => RuleKind::Length { min, max },
                    _ => {
                        return Err(bad(
                            field,
                            format!(
                                "length 的最小、最大长度须为非负整数且最小不大于最大 / length needs integers MIN ≤ MAX: \"{spec}\""
                            ),
                        ));
                    }
                }
            }
            "regex" => {
                // Everything after the first comma is the pattern (it may hold commas).
                let pattern = tail.map(str::trim).filter(|p| !p.is_empty()).ok_or_else(usage)?;
                regex::RegexBuilder::new(pattern)
                    .size_limit(1 << 20)
                    .build()
                    .map_err(|e| bad(field, format!("正则表达式无效 / invalid regex: {e}")))?;
                RuleKind::Regex(pattern.to_string())
            }
            "enum" => {
                let list = tail.ok_or_else(usage)?;
                let vals: Vec<String> =
                    list.split('|').map(|v| v.trim().to_string()).filter(|v| !v.is_empty()).collect();
                if vals.is_empty() {
                    return Err(usage());
                }
                RuleKind::Enum(vals)
            }
            "reference" => {
                let p = parts(2)?;
                let resource = ResourceCode::parse(p[0]).map_err(|_| {
                    FieldError::new(
                        format!("{field}.resource"),
                        "invalid_rule",
                        format!("reference 的第二个参数须为资源代码，如 102/000001，收到 \"{}\" / the second argument of reference is a resource code", p[0]),
                    )
                })?;
                let target = ItemName::parse(p[1]).map_err(|_| usage())?;
                RuleKind::Reference { resource, item: target }
            }
            "freshness" => {
                let p = parts(1)?;
                let max_age = parse_age(p[0]).ok_or_else(|| {
                    bad(
                        field,
                        format!(
                            "freshness 的时长须写作 30d、12h 或 90m，收到 \"{}\" / max_age is like 30d, 12h or 90m",
                            p[0]
                        ),
                    )
                })?;
                RuleKind::Freshness { max_age, text: p[0].to_string() }
            }
            "id_card_birth_date" => {
                let p = parts(1)?;
                RuleKind::IdCardBirthDate { date: ItemName::parse(p[0]).map_err(|_| usage())? }
            }
            "id_card_sex" => {
                let p = parts(1)?;
                RuleKind::IdCardSex { sex: ItemName::parse(p[0]).map_err(|_| usage())? }
            }
            other => {
                return Err(bad(
                    field,
                    format!(
                        "未知的规则类型 \"{other}\"，可用：not_null、range、regex、enum、length、unique、reference、freshness、id_card_birth_date、id_card_sex / unknown rule kind \"{other}\""
                    ),
                ));
            }
        };
        Ok(Self { item, kind, severity })
    }

    /// The rule's spec, as parsed back by [`QualityRule::parse`].
    pub fn spec(&self) -> String {
        let i = &self.item;
        match &self.kind {
            RuleKind::NotNull => format!("not_null({i})"),
            RuleKind::Unique => format!("unique({i})"),
            RuleKind::Range { min, max } => format!("range({i}, {min}, {max})"),
            RuleKind::Length { min, max } => format!("length({i}, {min}, {max})"),
            RuleKind::Regex(r) => format!("regex({i}, {r})"),
            RuleKind::Enum(v) => format!("enum({i}, {})", v.join("|")),
            RuleKind::Reference { resource, item } => format!("reference({i}, {resource}, {item})"),
            RuleKind::Freshness { text, .. } => format!("freshness({i}, {text})"),
            RuleKind::IdCardBirthDate { date } => format!("id_card_birth_date({i}, {date})"),
            RuleKind::IdCardSex { sex } => format!("id_card_sex({i}, {sex})"),
        }
    }

    /// The other item a cross-item rule names.
    pub fn other_item(&self) -> Option<&ItemName> {
        match &self.kind {
            RuleKind::IdCardBirthDate { date } => Some(date),
            RuleKind::IdCardSex { sex } => Some(sex),
            _ => None,
        }
    }

    /// Type-check the rule against the resource's items (a reference's target is checked by
    /// the caller, who can read the catalog).
    pub fn check(&self, field: &str, items: &[InfoItem]) -> Result<(), FieldError> {
        let find = |n: &ItemName| items.iter().find(|i| &i.name == n);
        let Some(item) = find(&self.item) else {
            return Err(FieldError::new(
                field,
                "unknown_item",
                format!("规则引用了不存在的信息项 {} / the rule names an unknown item: {}", self.item, self.spec()),
            ));
        };
        let t = item.data_type;
        let text = matches!(t, DataType::String | DataType::Text);
        let fits = match &self.kind {
            RuleKind::NotNull => true,
            RuleKind::Unique => t != DataType::Binary,
            RuleKind::Range { .. } => matches!(t, DataType::Integer | DataType::Decimal | DataType::Money),
            RuleKind::Regex(_) | RuleKind::Enum(_) | RuleKind::Length { .. } => text,
            RuleKind::Reference { .. } => text || t == DataType::Integer,
            RuleKind::Freshness { .. } => matches!(t, DataType::Date | DataType::Datetime),
            RuleKind::IdCardBirthDate { .. } | RuleKind::IdCardSex { .. } => item.validator == Some(Validator::IdCard),
        };
        if !fits {
            let need = match &self.kind {
                RuleKind::Unique => "非二进制 / not binary",
                RuleKind::Range { .. } => "整数、小数或金额 / integer, decimal or money",
                RuleKind::Reference { .. } => "字符串或整数 / string or integer",
                RuleKind::Freshness { .. } => "日期或日期时间 / date or datetime",
                RuleKind::IdCardBirthDate { .. } | RuleKind::IdCardSex { .. } => {
                    "使用 id_card 校验规则的信息项 / an item with the id_card validator"
                }
                _ => "字符串或文本 / string or text",
            };
            return Err(FieldError::new(
                field,
                "rule_type_mismatch",
                format!(
                    "{} 不适用于信息项 {}（{}），须为{need} / {} does not fit item {} of type {}",
                    self.kind.code(),
                    item.name,
                    t.as_str(),
                    self.kind.code(),
                    item.name,
                    t.as_str()
                ),
            ));
        }
        if let Some(other) = self.other_item() {
            match find(other) {
                None => {
                    return Err(FieldError::new(
                        field,
                        "unknown_item",
                        format!("规则引用了不存在的信息项 {other} / the rule names an unknown item: {}", self.spec()),
                    ));
                }
                Some(o) if matches!(self.kind, RuleKind::IdCardBirthDate { .. }) && o.data_type != DataType::Date => {
                    return Err(FieldError::new(
                        field,
                        "rule_type_mismatch",
                        format!("{other} 须为日期型 / {other} must be a date item"),
                    ));
                }
                _ => {}
            }
        }
        Ok(())
    }
}

impl Serialize for QualityRule {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        QualityRuleInput { rule: self.spec(), severity: Some(self.severity.as_str().into()) }.serialize(s)
    }
}
impl<'de> Deserialize<'de> for QualityRule {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let input = QualityRuleInput::deserialize(d)?;
        Self::parse("quality_rules", &input).map_err(|e| serde::de::Error::custom(e.message))
    }
}

/// Parse and type-check every rule, naming each bad one by its index.
pub fn parse_rules(inputs: &[QualityRuleInput], items: &[InfoItem]) -> Result<Vec<QualityRule>, ValidationErrors> {
    let mut errs = ValidationErrors::default();
    let mut out = Vec::new();
    if inputs.len() > 200 {
        errs.push(FieldError::new("quality_rules", "too_many", "质量规则最多 200 条 / at most 200 quality rules"));
    }
    for (i, input) in inputs.iter().enumerate() {
        let field = format!("quality_rules[{i}]");
        match QualityRule::parse(&field, input).and_then(|r| r.check(&field, items).map(|()| r)) {
            Ok(r) => out.push(r),
            Err(e) => errs.push(e),
        }
    }
    errs.into_result()?;
    Ok(out)
}

/// The rules as one spreadsheet cell: one rule a line, `severity spec` (`warn range(nl, 0, 150)`).
pub fn rules_cell(rules: &[QualityRule]) -> String {
    rules.iter().map(|r| format!("{} {}", r.severity.as_str(), r.spec())).collect::<Vec<_>>().join("\n")
}

/// A spreadsheet cell back into rule inputs: one rule a line, an optional leading severity
/// (`reject`/`warn`/`info` or 拒绝/警告/提示; `warn` when absent).
pub fn parse_rules_cell(cell: &str) -> Vec<QualityRuleInput> {
    cell.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(|l| match l.split_once(char::is_whitespace) {
            Some((sev, spec)) if Severity::parse(sev).is_ok() && !sev.is_empty() => {
                QualityRuleInput { rule: spec.trim().to_string(), severity: Some(sev.to_string()) }
            }
            _ => QualityRuleInput { rule: l.to_string(), severity: None },
        })
        .collect()
}

/// GB/T 36344 的质量维度 (the report's dimensions).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Hash)]
#[serde(rename_all = "snake_case")]
pub enum Dimension {
    /// 完整性
    Completeness,
    /// 规范性/有效性
    Validity,
    /// 唯一性
    Uniqueness,
    /// 一致性 (with reference integrity)
    Consistency,
    /// 时效性
    Timeliness,
    /// 准确性 (confirmed 纠错 per 10,000 rows)
    Accuracy,
}

/// The score's weights per dimension (normalized by their sum; configurable in settings as
/// `quality_weights`). Defaults: completeness 25, validity 25, uniqueness 15, consistency 15,
/// timeliness 10, accuracy 10.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct QualityWeights {
    pub completeness: f64,
    pub validity: f64,
    pub uniqueness: f64,
    pub consistency: f64,
    pub timeliness: f64,
    pub accuracy: f64,
}

impl Default for QualityWeights {
    fn default() -> Self {
        Self {
            completeness: 25.0,
            validity: 25.0,
            uniqueness: 15.0,
            consistency: 15.0,
            timeliness: 10.0,
            accuracy: 10.0,
        }
    }
}

/// The six dimension rates, each in 0–1.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Dimensions {
    pub completeness: f64,
    pub validity: f64,
    pub uniqueness: f64,
    pub consistency: f64,
    pub timeliness: f64,
    pub accuracy: f64,
}

impl QualityWeights {
    /// Weights must be finite, non-negative and not all zero.
    pub fn check(&self) -> Result<(), String> {
        let all = [self.completeness, self.validity, self.uniqueness, self.consistency, self.timeliness, self.accuracy];
        if all.iter().any(|w| !w.is_finite() || *w < 0.0) || all.iter().sum::<f64>() <= 0.0 {
            return Err("quality_weights must be non-negative numbers, not all zero".into());
        }
        Ok(())
    }

    /// 0–100, rounded to one decimal.
    pub fn score(&self, d: &Dimensions) -> f64 {
        let pairs = [
            (self.completeness, d.completeness),
            (self.validity, d.validity),
            (self.uniqueness, d.uniqueness),
            (self.consistency, d.consistency),
            (self.timeliness, d.timeliness),
            (self.accuracy, d.accuracy),
        ];
        let total: f64 = pairs.iter().map(|p| p.0).sum();
        if total <= 0.0 {
            return 0.0;
        }
        let s = pairs.iter().map(|(w, v)| w * v.clamp(0.0, 1.0)).sum::<f64>() / total * 100.0;
        (s * 10.0).round() / 10.0
    }
}

/// Accuracy from confirmed 纠错: `1 / (1 + e)` where `e` is confirmed errors per 10,000 rows
/// (no confirmed error → 1; one per 10,000 → 0.5).
pub fn accuracy(confirmed: u64, rows: u64) -> f64 {
    if confirmed == 0 {
        return 1.0;
    }
    let e = confirmed as f64 * 10_000.0 / rows.max(1) as f64;
    1.0 / (1.0 + e)
}

/// How long one 更新周期 lasts; `None` for 不定期 (never due).
pub fn cycle_length(cycle: UpdateCycle) -> Option<Duration> {
    Some(match cycle {
        UpdateCycle::Realtime => Duration::hours(1),
        UpdateCycle::Daily => Duration::days(1),
        UpdateCycle::Weekly => Duration::days(7),
        UpdateCycle::Monthly => Duration::days(31),
        UpdateCycle::Quarterly => Duration::days(92),
        UpdateCycle::HalfYearly => Duration::days(183),
        UpdateCycle::Yearly => Duration::days(366),
        UpdateCycle::Irregular => return None,
    })
}

/// When the next update is due: the last successful commit (or the publication, when nothing
/// was ever committed) plus one cycle.
pub fn due_at(cycle: UpdateCycle, since: DateTime<Utc>) -> Option<DateTime<Utc>> {
    cycle_length(cycle).map(|l| since + l)
}

/// Timeliness in 0–1: 1 until the due time, then falling linearly to 0 one more cycle later.
pub fn timeliness(cycle: UpdateCycle, since: Option<DateTime<Utc>>, now: DateTime<Utc>) -> f64 {
    let (Some(len), Some(since)) = (cycle_length(cycle), since) else {
        return if cycle == UpdateCycle::Irregular { 1.0 } else { 0.0 };
    };
    let late = now - (since + len);
    if late <= Duration::zero() {
        1.0
    } else {
        (1.0 - late.num_seconds() as f64 / len.num_seconds() as f64).clamp(0.0, 1.0)
    }
}

/// The state of a 纠错 ticket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Hash)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum TicketState {
    /// 已提交: waiting for the provider.
    Submitted,
    /// 已受理
    Accepted,
    /// 已驳回 (with a reason)
    Rejected,
    /// 已修正 (linked to the table version that fixed it)
    Fixed,
    /// 已确认 by the reporter
    Confirmed,
    /// 已关闭 automatically after the confirmation period
    Closed,
}

/// A step of a ticket's life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum TicketAction {
    Accept,
    Reject,
    Fix,
    Confirm,
    Reopen,
    /// The automatic close of a fixed ticket nobody confirmed.
    Close,
}

impl TicketState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Submitted => "submitted",
            Self::Accepted => "accepted",
            Self::Rejected => "rejected",
            Self::Fixed => "fixed",
            Self::Confirmed => "confirmed",
            Self::Closed => "closed",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "submitted" => Self::Submitted,
            "accepted" => Self::Accepted,
            "rejected" => Self::Rejected,
            "fixed" => Self::Fixed,
            "confirmed" => Self::Confirmed,
            "closed" => Self::Closed,
            _ => return None,
        })
    }
    /// 中文名称
    pub fn title(self) -> &'static str {
        match self {
            Self::Submitted => "已提交",
            Self::Accepted => "已受理",
            Self::Rejected => "已驳回",
            Self::Fixed => "已修正",
            Self::Confirmed => "已确认",
            Self::Closed => "已关闭",
        }
    }
    /// Waiting for the provider (the SLA clock runs).
    pub fn awaits_provider(self) -> bool {
        matches!(self, Self::Submitted | Self::Accepted)
    }
    /// The state after `action`, or `None` when the action does not apply now:
    /// submitted → accepted | rejected; accepted → fixed | rejected; fixed → confirmed | closed;
    /// rejected, fixed, closed → submitted (reopen).
    pub fn after(self, action: TicketAction) -> Option<Self> {
        use TicketAction as A;
        Some(match (self, action) {
            (Self::Submitted, A::Accept) => Self::Accepted,
            (Self::Submitted | Self::Accepted, A::Reject) => Self::Rejected,
            (Self::Accepted, A::Fix) => Self::Fixed,
            (Self::Fixed, A::Confirm) => Self::Confirmed,
            (Self::Fixed, A::Close) => Self::Closed,
            (Self::Rejected | Self::Fixed | Self::Closed, A::Reopen) => Self::Submitted,
            _ => return None,
        })
    }
}

impl TicketAction {
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "accept" => Self::Accept,
            "reject" => Self::Reject,
            "fix" => Self::Fix,
            "confirm" => Self::Confirm,
            "reopen" => Self::Reopen,
            _ => return None,
        })
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Accept => "accept",
            Self::Reject => "reject",
            Self::Fix => "fix",
            Self::Confirm => "confirm",
            Self::Reopen => "reopen",
            Self::Close => "close",
        }
    }
}

#[cfg(test)]
#[path = "quality_tests.rs"]
mod tests;
