//! 信息资源 (information resource): the catalog entry with the GB/T 21063 / 2017 编制指南
//! elements, its 信息项 (information items), and the rules that tie them together.
//!
//! Untrusted input arrives as [`ResourceInput`] (every field optional, vocabularies accepted as
//! English codes or Chinese titles) and becomes a [`ResourceDraft`] only through
//! [`ResourceDraft::parse`], which reports every problem with its field path at once.

use crate::dept::DeptCode;
use crate::error::{FieldError, ValidationErrors};
use crate::region::RegionCode;
use crate::vocab::*;
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// 信息资源代码: a classification code (class digit + two-digit theme number, optionally
/// followed by finer 目/细目 digits), `/`, and a sequence number, e.g. `101/000001`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ResourceCode(String);

impl ResourceCode {
    pub fn parse(s: &str) -> Result<Self, FieldError> {
        let t = s.trim();
        let ok = match t.split_once('/') {
            Some((prefix, seq)) => {
                [3, 6, 9].contains(&prefix.len())
                    && prefix.bytes().all(|b| b.is_ascii_digit())
                    && matches!(prefix.as_bytes()[0], b'1'..=b'3')
                    && (4..=8).contains(&seq.len())
                    && seq.bytes().all(|b| b.is_ascii_digit())
            }
            None => false,
        };
        if ok {
            Ok(Self(t.to_string()))
        } else {
            Err(FieldError::new(
                "code",
                "invalid_resource_code",
                format!(
                    "信息资源代码应为“分类代码/顺序号”，如 101/000001，收到 \"{t}\" / resource code must be CLASSIFICATION/SEQUENCE like 101/000001, got \"{t}\""
                ),
            ))
        }
    }
    /// Assign the code for `sequence` within a classification prefix.
    pub fn assign(prefix: &str, sequence: u32) -> Self {
        Self(format!("{prefix}/{sequence:06}"))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
    pub fn prefix(&self) -> &str {
        self.0.split_once('/').map(|(p, _)| p).unwrap_or("")
    }
    pub fn sequence(&self) -> u32 {
        self.0.split_once('/').and_then(|(_, s)| s.parse().ok()).unwrap_or(0)
    }
}
impl TryFrom<String> for ResourceCode {
    type Error = FieldError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}
impl From<ResourceCode> for String {
    fn from(c: ResourceCode) -> String {
        c.0
    }
}
impl std::fmt::Display for ResourceCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A URL-safe name for a resource: lower-case ASCII letters and digits in `-`-separated words.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Slug(String);

impl Slug {
    pub fn parse(s: &str) -> Result<Self, FieldError> {
        let t = s.trim();
        let ok = !t.is_empty()
            && t.len() <= 100
            && t.split('-').all(|w| !w.is_empty() && w.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()));
        if ok {
            Ok(Self(t.to_string()))
        } else {
            Err(FieldError::new(
                "slug",
                "invalid_slug",
                format!(
                    "slug 只能由小写字母、数字和 - 组成，收到 \"{t}\" / slug must be lower-case letters and digits separated by '-', got \"{t}\""
                ),
            ))
        }
    }
    /// A slug from free text (Chinese becomes pinyin-like words); `fallback` when nothing is left.
    pub fn from_text(text: &str, fallback: &str) -> Self {
        let mut s = String::new();
        let mut dash = false;
        for c in text.chars().flat_map(|c| deunicode_char(c).chars().collect::<Vec<_>>()) {
            if c.is_ascii_alphanumeric() {
                if dash && !s.is_empty() {
                    s.push('-');
                }
                s.push(c.to_ascii_lowercase());
                dash = false;
            } else {
                dash = true;
            }
        }
        s.truncate(80);
        let s = s.trim_end_matches('-').to_string();
        if s.is_empty() { Self(fallback.to_string()) } else { Self(s) }
    }
    /// This slug with a numeric suffix, to make it unique.
    pub fn with_suffix(&self, n: u32) -> Self {
        Self(format!("{}-{n}", self.0))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}
impl TryFrom<String> for Slug {
    type Error = FieldError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}
impl From<Slug> for String {
    fn from(s: Slug) -> String {
        s.0
    }
}

/// ASCII transliteration of one character (Chinese characters become pinyin syllables),
/// with word breaks around each transliterated character.
fn deunicode_char(c: char) -> String {
    if c.is_ascii() { c.to_string() } else { format!(" {} ", deunicode::deunicode_char(c).unwrap_or(" ")) }
}

/// 信息项名称: a column identifier, `[A-Za-z_][A-Za-z0-9_]*`, at most 64 characters, stored lower-case.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ItemName(String);

impl ItemName {
    pub fn parse(s: &str) -> Result<Self, FieldError> {
        let t = s.trim();
        let ok = !t.is_empty()
            && t.len() <= 64
            && (t.as_bytes()[0].is_ascii_alphabetic() || t.as_bytes()[0] == b'_')
            && t.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
        if ok {
            Ok(Self(t.to_ascii_lowercase()))
        } else {
            Err(FieldError::new(
                "name",
                "invalid_item_name",
                format!(
                    "信息项名称须为字母或下划线开头的字母、数字、下划线组合（≤64），收到 \"{t}\" / item name must be an identifier (letters, digits, '_', ≤64), got \"{t}\""
                ),
            ))
        }
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}
impl TryFrom<String> for ItemName {
    type Error = FieldError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}
impl From<ItemName> for String {
    fn from(s: ItemName) -> String {
        s.0
    }
}
impl std::fmt::Display for ItemName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// 校验规则 of an information item.
#[derive(Debug, Clone, PartialEq)]
pub enum Validator {
    /// 公民身份号码 (GB 11643)
    IdCard,
    /// 统一社会信用代码 (GB 32100)
    Uscc,
    /// 组织机构代码 (GB 11714)
    OrgCode,
    /// 行政区划代码 (GB/T 2260)
    RegionCode,
    Mobile,
    BankCard,
    Email,
    Regex(String),
    Enum(Vec<String>),
    Range {
        min: f64,
        max: f64,
    },
}

impl Validator {
    pub fn parse(s: &str) -> Result<Self, FieldError> {
        let t = s.trim();
        let err = |m: String| FieldError::new("validator", "invalid_validator", m);
        Ok(match t {
            "id_card" => Self::IdCard,
            "uscc" => Self::Uscc,
            "org_code" => Self::OrgCode,
            "region_code" => Self::RegionCode,
            "mobile" => Self::Mobile,
            "bank_card" => Self::BankCard,
            "email" => Self::Email,
            _ => {
                if let Some(re) = t.strip_prefix("regex:") {
                    regex::Regex::new(re).map_err(|e| err(format!("正则表达式无效 / invalid regex: {e}")))?;
                    Self::Regex(re.to_string())
                } else if let Some(list) = t.strip_prefix("enum:") {
                    let vals: Vec<String> =
                        list.split('|').map(|v| v.trim().to_string()).filter(|v| !v.is_empty()).collect();
                    if vals.is_empty() {
                        return Err(err(
                            "enum: 后至少需要一个取值，如 enum:男|女 / enum: needs values, e.g. enum:a|b".into()
                        ));
                    }
                    Self::Enum(vals)
                } else if let Some(range) = t.strip_prefix("range:") {
                    let parsed = range.split_once("..").and_then(|(a, b)| {
                        let min = a.trim().parse::<f64>().ok()?;
                        let max = b.trim().parse::<f64>().ok()?;
                        (min <= max && min.is_finite() && max.is_finite()).then_some((min, max))
                    });
                    match parsed {
                        Some((min, max)) => Self::Range { min, max },
                        None => {
                            return Err(err(format!(
                                "range 应为 range:最小值..最大值，收到 \"{t}\" / expected range:MIN..MAX, got \"{t}\""
                            )));
                        }
                    }
                } else {
                    return Err(err(format!(
                        "未知的校验规则 \"{t}\"，可用：id_card、uscc、org_code、region_code、mobile、bank_card、email、regex:…、enum:a|b、range:min..max / unknown validator \"{t}\""
                    )));
                }
            }
        })
    }

    pub fn to_spec(&self) -> String {
        match self {
            Self::IdCard => "id_card".into(),
            Self::Uscc => "uscc".into(),
            Self::OrgCode => "org_code".into(),
            Self::RegionCode => "region_code".into(),
            Self::Mobile => "mobile".into(),
            Self::BankCard => "bank_card".into(),
            Self::Email => "email".into(),
            Self::Regex(r) => format!("regex:{r}"),
            Self::Enum(v) => format!("enum:{}", v.join("|")),
            Self::Range { min, max } => format!("range:{min}..{max}"),
        }
    }

    fn fits(&self, t: DataType) -> bool {
        match self {
            Self::Range { .. } => matches!(t, DataType::Integer | DataType::Decimal | DataType::Money),
            _ => matches!(t, DataType::String | DataType::Text),
        }
    }
}

impl Serialize for Validator {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_spec())
    }
}
impl<'de> Deserialize<'de> for Validator {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse(&s).map_err(|e| serde::de::Error::custom(e.message))
    }
}

/// A rule across items of one row (资源级一致性规则).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConsistencyRule {
    /// The date item equals the birth date in the identity number item.
    IdCardBirthDate { id: ItemName, date: ItemName },
    /// The sex item (男/女, or 1/2 per GB/T 2261.1) agrees with the identity number item.
    IdCardSex { id: ItemName, sex: ItemName },
}

impl ConsistencyRule {
    /// `id_card_birth_date(sfzh, csrq)` or `id_card_sex(sfzh, xb)`.
    pub fn parse(s: &str) -> Result<Self, FieldError> {
        let err = || {
            FieldError::new(
                "consistency",
                "invalid_rule",
                format!(
                    "一致性规则应为 id_card_birth_date(身份证项, 日期项) 或 id_card_sex(身份证项, 性别项)，收到 \"{s}\" / expected id_card_birth_date(ID_ITEM, DATE_ITEM) or id_card_sex(ID_ITEM, SEX_ITEM)"
                ),
            )
        };
        let t = s.trim();
        let (kind, args) = t.split_once('(').ok_or_else(err)?;
        let args = args.strip_suffix(')').ok_or_else(err)?;
        let (a, b) = args.split_once(',').ok_or_else(err)?;
        let a = ItemName::parse(a).map_err(|_| err())?;
        let b = ItemName::parse(b).map_err(|_| err())?;
        match kind.trim() {
            "id_card_birth_date" => Ok(Self::IdCardBirthDate { id: a, date: b }),
            "id_card_sex" => Ok(Self::IdCardSex { id: a, sex: b }),
            _ => Err(err()),
        }
    }
    pub fn to_spec(&self) -> String {
        match self {
            Self::IdCardBirthDate { id, date } => format!("id_card_birth_date({id}, {date})"),
            Self::IdCardSex { id, sex } => format!("id_card_sex({id}, {sex})"),
        }
    }
    /// The rule's name in reports.
    pub fn code(&self) -> &'static str {
        match self {
            Self::IdCardBirthDate { .. } => "id_card_birth_date",
            Self::IdCardSex { .. } => "id_card_sex",
        }
    }
}

impl Serialize for ConsistencyRule {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_spec())
    }
}
impl<'de> Deserialize<'de> for ConsistencyRule {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse(&s).map_err(|e| serde::de::Error::custom(e.message))
    }
}

/// 信息项
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InfoItem {
    pub name: ItemName,
    /// 中文名称
    pub title: String,
    pub data_type: DataType,
    pub length: Option<u32>,
    pub unit: Option<String>,
    pub required: bool,
    /// Part of the primary key.
    pub key: bool,
    pub sensitivity: Sensitivity,
    pub validator: Option<Validator>,
    pub description: Option<String>,
    /// How the item is given to the public when the resource is open.
    pub public: Option<PublicTreatment>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Classification {
    pub class: ResourceClass,
    /// Theme code (主题) or, for basic resources, the library (基础库).
    pub theme: String,
}

impl Classification {
    /// The classification code (类 + 项): class digit and the theme's two-digit number.
    pub fn code(&self) -> String {
        let n = theme(&self.theme).map(|t| t.number).unwrap_or(0);
        format!("{}{:02}", self.class.digit(), n)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Format {
    pub category: FormatCategory,
    /// e.g. `csv`, `xlsx`, `table`, `json`, `api`.
    #[serde(rename = "type")]
    pub kind: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Share {
    #[serde(rename = "type")]
    pub kind: ShareType,
    /// 共享条件; for `none`, the legal or policy basis (不予共享依据).
    pub conditions: Option<String>,
    pub method: ShareMethod,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Open {
    #[serde(rename = "type")]
    pub kind: OpenType,
    pub conditions: Option<String>,
}

/// Everything a steward edits, parsed and consistent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResourceContent {
    pub code: ResourceCode,
    pub slug: Slug,
    pub name: String,
    #[serde(rename = "abstract")]
    pub summary: String,
    pub provider: DeptCode,
    pub classification: Classification,
    pub format: Format,
    pub items: Vec<InfoItem>,
    pub share: Share,
    pub open: Open,
    pub update_cycle: UpdateCycle,
    pub publish_date: Option<NaiveDate>,
    pub related: Vec<ResourceCode>,
    pub security_level: SecurityLevel,
    pub tags: Vec<String>,
    pub license: Option<String>,
    pub regions: Vec<RegionCode>,
    pub contact: Option<String>,
    /// Rules across items that every row must satisfy.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub consistency: Vec<ConsistencyRule>,
    /// 历史版本保留天数 (history window): how far back other departments and the public may
    /// read older table versions and the change feed; `0` = the current version only. The
    /// provider always reads its whole history. `None` = the default, [`DEFAULT_HISTORY_DAYS`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub history_days: Option<u32>,
}

/// The history window of a resource that does not set one.
pub const DEFAULT_HISTORY_DAYS: u32 = 30;

impl ResourceContent {
    /// The history window in days.
    pub fn history_days(&self) -> u32 {
        self.history_days.unwrap_or(DEFAULT_HISTORY_DAYS)
    }

    pub fn item(&self, name_or_title: &str) -> Option<&InfoItem> {
        let t = name_or_title.trim();
        self.items.iter().find(|i| i.name.as_str() == t.to_ascii_lowercase() || i.title == t)
    }
}

/// A resource as stored: its content and lifecycle facts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Resource {
    pub id: Uuid,
    pub state: ResourceState,
    /// Incremented by every change; revision 1 is the creation.
    pub revision: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub published_at: Option<DateTime<Utc>>,
    #[serde(flatten)]
    pub content: ResourceContent,
}

/// Who looks at the catalog, which decides what they may see of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Audience {
    /// Anonymous callers and public users: the open catalog (开放目录), i.e. published
    /// resources whose open type is not `none`.
    Public,
    /// Members of departments: the sharing catalog (共享目录), i.e. every published resource,
    /// plus every state of the resources their own departments provide.
    Government { departments: Vec<DeptCode> },
    /// Platform administrators: everything.
    Platform,
}

impl Audience {
    pub fn can_see(&self, r: &Resource) -> bool {
        match self {
            Self::Platform => true,
            Self::Public => r.state == ResourceState::Published && r.content.open.kind != OpenType::None,
            Self::Government { departments } => {
                r.state == ResourceState::Published || departments.contains(&r.content.provider)
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Input

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ClassificationInput {
    pub class: Option<String>,
    pub theme: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct FormatInput {
    pub category: Option<String>,
    #[serde(rename = "type")]
    pub kind: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ShareInput {
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub conditions: Option<String>,
    pub method: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct OpenInput {
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub conditions: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ItemInput {
    pub name: Option<String>,
    pub title: Option<String>,
    pub data_type: Option<String>,
    pub length: Option<u32>,
    pub unit: Option<String>,
    pub required: Option<bool>,
    pub key: Option<bool>,
    pub sensitivity: Option<String>,
    pub validator: Option<String>,
    pub description: Option<String>,
    pub public: Option<String>,
}

/// A resource as received (create, or the merged result of a patch).
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ResourceInput {
    pub code: Option<String>,
    pub slug: Option<String>,
    pub name: Option<String>,
    #[serde(rename = "abstract")]
    pub summary: Option<String>,
    pub provider: Option<String>,
    pub classification: Option<ClassificationInput>,
    pub format: Option<FormatInput>,
    #[serde(default)]
    pub items: Vec<ItemInput>,
    pub share: Option<ShareInput>,
    pub open: Option<OpenInput>,
    pub update_cycle: Option<String>,
    pub publish_date: Option<String>,
    #[serde(default)]
    pub related: Vec<String>,
    pub security_level: Option<String>,
    #[serde(default)]
    pub tags: Vec<String>,
    pub license: Option<String>,
    #[serde(default)]
    pub regions: Vec<String>,
    pub contact: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub consistency: Vec<String>,
    /// Days of table history others may read (0–3650); default 30.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub history_days: Option<i64>,
}

impl From<&ResourceContent> for ResourceInput {
    fn from(c: &ResourceContent) -> Self {
        let v = serde_json::to_value(c).unwrap_or_default();
        serde_json::from_value(v).unwrap_or_default()
    }
}

/// Parsed content whose code and slug may still need assigning.
#[derive(Debug, Clone, PartialEq)]
pub struct ResourceDraft {
    pub code: Option<ResourceCode>,
    pub slug: Option<Slug>,
    pub content: ResourceContentParts,
}

/// The parsed parts other than code and slug.
#[derive(Debug, Clone, PartialEq)]
pub struct ResourceContentParts {
    pub name: String,
    pub summary: String,
    pub provider: DeptCode,
    pub classification: Classification,
    pub format: Format,
    pub items: Vec<InfoItem>,
    pub share: Share,
    pub open: Open,
    pub update_cycle: UpdateCycle,
    pub publish_date: Option<NaiveDate>,
    pub related: Vec<ResourceCode>,
    pub security_level: SecurityLevel,
    pub tags: Vec<String>,
    pub license: Option<String>,
    pub regions: Vec<RegionCode>,
    pub contact: Option<String>,
    pub consistency: Vec<ConsistencyRule>,
    pub history_days: Option<u32>,
}

impl ResourceDraft {
    /// Complete with the code and slug.
    pub fn complete(self, code: ResourceCode, slug: Slug) -> ResourceContent {
        let p = self.content;
        ResourceContent {
            code,
            slug,
            name: p.name,
            summary: p.summary,
            provider: p.provider,
            classification: p.classification,
            format: p.format,
            items: p.items,
            share: p.share,
            open: p.open,
            update_cycle: p.update_cycle,
            publish_date: p.publish_date,
            related: p.related,
            security_level: p.security_level,
            tags: p.tags,
            license: p.license,
            regions: p.regions,
            contact: p.contact,
            consistency: p.consistency,
            history_days: p.history_days,
        }
    }
}

fn at(field: &str, e: FieldError) -> FieldError {
    FieldError { field: field.to_string(), ..e }
}

fn required(field: &str, title: &str) -> FieldError {
    FieldError::new(field, "required", format!("{title}为必填项 / {field} is required"))
}

fn text(errs: &mut ValidationErrors, field: &str, title: &str, v: Option<&str>, max: usize) -> Option<String> {
    match v.map(str::trim).filter(|s| !s.is_empty()) {
        None => {
            errs.push(required(field, title));
            None
        }
        Some(s) if s.chars().count() > max => {
            errs.push(FieldError::new(
                field,
                "too_long",
                format!("{title}不能超过 {max} 个字符 / {field} is longer than {max} characters"),
            ));
            None
        }
        Some(s) => Some(s.to_string()),
    }
}

fn opt_text(errs: &mut ValidationErrors, field: &str, v: Option<&str>, max: usize) -> Option<String> {
    let s = v.map(str::trim).filter(|s| !s.is_empty())?;
    if s.chars().count() > max {
        errs.push(FieldError::new(
            field,
            "too_long",
            format!("不能超过 {max} 个字符 / {field} is longer than {max} characters"),
        ));
        return None;
    }
    Some(s.to_string())
}

fn vocab<T>(
    errs: &mut ValidationErrors,
    field: &str,
    v: Option<&str>,
    parse: fn(&str) -> Result<T, FieldError>,
    default: Option<T>,
) -> Option<T> {
    match v.map(str::trim).filter(|s| !s.is_empty()) {
        None => match default {
            Some(d) => Some(d),
            None => {
                errs.push(FieldError::new(field, "required", format!("{field} 为必填项 / {field} is required")));
                None
            }
        },
        Some(s) => errs.check(parse(s).map_err(|e| at(field, e))),
    }
}

impl ResourceDraft {
    /// Parse and check every field and every rule across fields.
    pub fn parse(input: &ResourceInput) -> Result<Self, ValidationErrors> {
        let mut errs = ValidationErrors::new();
        let code = input
            .code
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .and_then(|c| errs.check(ResourceCode::parse(c)));
        let slug =
            input.slug.as_deref().map(str::trim).filter(|s| !s.is_empty()).and_then(|s| errs.check(Slug::parse(s)));
        let name = text(&mut errs, "name", "资源名称", input.name.as_deref(), 200);
        let summary = text(&mut errs, "abstract", "资源摘要", input.summary.as_deref(), 5000);
        let provider = match input.provider.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
            None => {
                errs.push(required("provider", "资源提供方"));
                None
            }
            Some(p) => errs.check(DeptCode::parse(p).map_err(|e| at("provider", e))),
        };

        // Classification: class and theme must agree.
        let ci = input.classification.clone().unwrap_or_default();
        let class = vocab(&mut errs, "classification.class", ci.class.as_deref(), ResourceClass::parse, None);
        let theme_code = match ci.theme.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
            None => {
                errs.push(required("classification.theme", "主题分类"));
                None
            }
            Some(t) => match theme(t) {
                None => {
                    let known: Vec<String> = THEMES.iter().map(|t| format!("{} ({})", t.code, t.name)).collect();
                    errs.push(FieldError::new(
                        "classification.theme",
                        "unknown_theme",
                        format!("未知主题 \"{t}\"，可用：{} / unknown theme \"{t}\"", known.join("、")),
                    ));
                    None
                }
                Some(th) => Some(th),
            },
        };
        if let (Some(c), Some(th)) = (class, theme_code) {
            if c == ResourceClass::Basic && !th.basic {
                errs.push(FieldError::new(
                    "classification.theme",
                    "theme_class_mismatch",
                    format!("基础信息资源须归入五大基础库（人口、法人、自然资源和空间地理、社会信用、电子证照），\"{}\" 不是基础库 / basic resources belong to a basic library", th.name),
                ));
            }
            if c != ResourceClass::Basic && th.basic {
                errs.push(FieldError::new(
                    "classification.theme",
                    "theme_class_mismatch",
                    format!(
                        "\"{}\" 是基础库，仅用于基础信息资源 / \"{}\" is a basic library, for basic resources only",
                        th.name, th.code
                    ),
                ));
            }
        }
        let classification = match (class, theme_code) {
            (Some(class), Some(th)) => Some(Classification { class, theme: th.code.to_string() }),
            _ => None,
        };
        if let (Some(code), Some(cl)) = (&code, &classification)
            && !code.prefix().starts_with(&cl.code())
        {
            errs.push(FieldError::new(
                "code",
                "code_classification_mismatch",
                format!(
                    "信息资源代码 {code} 的分类代码应以 {} 开头 / the code's classification part must start with {}",
                    cl.code(),
                    cl.code()
                ),
            ));
        }

        let fi = input.format.clone().unwrap_or_default();
        let category = vocab(&mut errs, "format.category", fi.category.as_deref(), FormatCategory::parse, None);
        let kind = opt_text(&mut errs, "format.type", fi.kind.as_deref(), 50).map(|s| s.to_lowercase());
        let format = category.map(|category| Format { category, kind: kind.unwrap_or_default() });

        let items = parse_items(&mut errs, &input.items);

        let si = input.share.clone().unwrap_or_default();
        let share_kind = vocab(&mut errs, "share.type", si.kind.as_deref(), ShareType::parse, None);
        let share_conditions = opt_text(&mut errs, "share.conditions", si.conditions.as_deref(), 2000);
        let share_method =
            vocab(&mut errs, "share.method", si.method.as_deref(), ShareMethod::parse, Some(ShareMethod::Api));
        match (share_kind, &share_conditions) {
            (Some(ShareType::Conditional), None) => errs.push(FieldError::new(
                "share.conditions",
                "required",
                "有条件共享须写明共享条件 / conditional sharing needs its conditions",
            )),
            (Some(ShareType::None), None) => errs.push(FieldError::new(
                "share.conditions",
                "required",
                "不予共享须写明法律法规或政策依据 / 'none' sharing needs its legal or policy basis",
            )),
            _ => {}
        }
        let oi = input.open.clone().unwrap_or_default();
        let open_kind = vocab(&mut errs, "open.type", oi.kind.as_deref(), OpenType::parse, None);
        let open_conditions = opt_text(&mut errs, "open.conditions", oi.conditions.as_deref(), 2000);
        if open_kind == Some(OpenType::Conditional) && open_conditions.is_none() {
            errs.push(FieldError::new(
                "open.conditions",
                "required",
                "有条件开放须写明开放条件 / conditional opening needs its conditions",
            ));
        }
        let update_cycle = vocab(&mut errs, "update_cycle", input.update_cycle.as_deref(), UpdateCycle::parse, None);
        let security_level = vocab(
            &mut errs,
            "security_level",
            input.security_level.as_deref(),
            SecurityLevel::parse,
            Some(SecurityLevel::General2),
        );

        // Rules across fields.
        if let (Some(level), Some(open)) = (security_level, open_kind)
            && matches!(level, SecurityLevel::Important | SecurityLevel::Core)
            && open != OpenType::None
        {
            errs.push(FieldError::new(
                "open.type",
                "cannot_open_important_data",
                format!("{}不得开放，开放类型须为“不予开放” / {} data cannot be opened", level.title(), level.as_str()),
            ));
        }
        if open_kind == Some(OpenType::Unconditional) {
            for (i, item) in items.iter().enumerate() {
                if item.sensitivity == Sensitivity::SensitivePersonal && item.public.is_none() {
                    errs.push(FieldError::new(
                        format!("items[{i}].public"),
                        "sensitive_item_must_be_protected",
                        format!(
                            "无条件开放的资源中，敏感个人信息项“{}”须标注为不开放（excluded）或脱敏开放（masked）/ sensitive personal item {} must be excluded or masked for the public",
                            item.title, item.name
                        ),
                    ));
                }
            }
        }

        let publish_date = match input.publish_date.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
            None => None,
            Some(d) => match NaiveDate::parse_from_str(d, "%Y-%m-%d") {
                Ok(d) => Some(d),
                Err(_) => {
                    errs.push(FieldError::new(
                        "publish_date",
                        "invalid_date",
                        format!("发布日期应为 YYYY-MM-DD，收到 \"{d}\" / publish_date must be YYYY-MM-DD"),
                    ));
                    None
                }
            },
        };
        let mut related = Vec::new();
        for (i, r) in input.related.iter().enumerate() {
            if let Some(c) = errs.check(ResourceCode::parse(r).map_err(|e| at(&format!("related[{i}]"), e))) {
                related.push(c);
            }
        }
        let mut tags: Vec<String> = Vec::new();
        for (i, t) in input.tags.iter().enumerate() {
            let t = t.trim();
            if t.is_empty() {
                continue;
            }
            if t.chars().count() > 50 || t.chars().any(char::is_control) {
                errs.push(FieldError::new(
                    format!("tags[{i}]"),
                    "invalid_tag",
                    "标签须为 1–50 个字符 / tags are 1–50 characters",
                ));
            } else if !tags.iter().any(|x| x == t) {
                tags.push(t.to_string());
            }
        }
        if tags.len() > 30 {
            errs.push(FieldError::new("tags", "too_many", "标签最多 30 个 / at most 30 tags"));
        }
        let mut regions = Vec::new();
        for (i, r) in input.regions.iter().enumerate() {
            if let Some(c) = errs.check(RegionCode::parse(r).map_err(|e| at(&format!("regions[{i}]"), e)))
                && !regions.contains(&c)
            {
                regions.push(c);
            }
        }
        let license = opt_text(&mut errs, "license", input.license.as_deref(), 200);
        let contact = opt_text(&mut errs, "contact", input.contact.as_deref(), 200);
        let mut consistency = Vec::new();
        for (i, spec) in input.consistency.iter().enumerate() {
            let field = format!("consistency[{i}]");
            let Some(rule) = errs.check(ConsistencyRule::parse(spec).map_err(|e| at(&field, e))) else { continue };
            let find = |n: &ItemName| items.iter().find(|it| &it.name == n);
            let (id, other, want) = match &rule {
                ConsistencyRule::IdCardBirthDate { id, date } => (id, date, Some(DataType::Date)),
                ConsistencyRule::IdCardSex { id, sex } => (id, sex, None),
            };
            match (find(id), find(other)) {
                (Some(i1), Some(i2)) => {
                    if i1.validator != Some(Validator::IdCard) {
                        errs.push(FieldError::new(
                            &field,
                            "invalid_rule",
                            format!("{id} 须使用 id_card 校验规则 / {id} must have the id_card validator"),
                        ));
                    }
                    if want.is_some_and(|w| i2.data_type != w) {
                        errs.push(FieldError::new(
                            &field,
                            "invalid_rule",
                            format!("{other} 须为日期型 / {other} must be a date item"),
                        ));
                    }
                }
                _ => errs.push(FieldError::new(
                    &field,
                    "unknown_item",
                    format!("规则引用了不存在的信息项 / the rule names an unknown item: {}", rule.to_spec()),
                )),
            }
            consistency.push(rule);
        }

        let history_days = match input.history_days {
            None => None,
            Some(d) if (0..=3650).contains(&d) => Some(d as u32),
            Some(_) => {
                errs.push(FieldError::new(
                    "history_days",
                    "out_of_range",
                    "历史版本保留天数须在 0–3650 之间 / history_days must be 0–3650",
                ));
                None
            }
        };

        errs.into_result()?;
        Ok(Self {
            code,
            slug,
            content: ResourceContentParts {
                name: name.expect("checked"),
                summary: summary.expect("checked"),
                provider: provider.expect("checked"),
                classification: classification.expect("checked"),
                format: format.expect("checked"),
                items,
                share: Share {
                    kind: share_kind.expect("checked"),
                    conditions: share_conditions,
                    method: share_method.expect("checked"),
                },
                open: Open { kind: open_kind.expect("checked"), conditions: open_conditions },
                update_cycle: update_cycle.expect("checked"),
                publish_date,
                related,
                security_level: security_level.expect("checked"),
                tags,
                license,
                regions,
                contact,
                consistency,
                history_days,
            },
        })
    }
}

fn parse_items(errs: &mut ValidationErrors, inputs: &[ItemInput]) -> Vec<InfoItem> {
    let mut items: Vec<InfoItem> = Vec::new();
    if inputs.len() > 500 {
        errs.push(FieldError::new("items", "too_many", "信息项最多 500 个 / at most 500 items"));
        return items;
    }
    for (i, it) in inputs.iter().enumerate() {
        let f = |s: &str| format!("items[{i}].{s}");
        let name = match it.name.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
            None => {
                errs.push(FieldError::new(f("name"), "required", "信息项名称为必填项 / item name is required"));
                None
            }
            Some(n) => errs.check(ItemName::parse(n).map_err(|e| at(&f("name"), e))),
        };
        let title = text(errs, &f("title"), "信息项中文名称", it.title.as_deref(), 100);
        let data_type = match it.data_type.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
            None => Some(DataType::String),
            Some(t) => errs.check(DataType::parse_any(t).map_err(|e| at(&f("data_type"), e))),
        };
        let sensitivity =
            vocab(errs, &f("sensitivity"), it.sensitivity.as_deref(), Sensitivity::parse, Some(Sensitivity::None));
        let validator = match it.validator.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
            None => None,
            Some(v) => errs.check(Validator::parse(v).map_err(|e| at(&f("validator"), e))),
        };
        let public = match it.public.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
            None => None,
            Some(v) => errs.check(PublicTreatment::parse(v).map_err(|e| at(&f("public"), e))),
        };
        if let (Some(v), Some(t)) = (&validator, data_type)
            && !v.fits(t)
        {
            errs.push(FieldError::new(
                f("validator"),
                "validator_type_mismatch",
                format!(
                    "校验规则 {} 不适用于 {} 类型 / validator {} does not apply to {}",
                    v.to_spec(),
                    t.title(),
                    v.to_spec(),
                    t.as_str()
                ),
            ));
        }
        if let Some(l) = it.length
            && (l == 0 || l > 1_000_000)
        {
            errs.push(FieldError::new(
                f("length"),
                "invalid_length",
                "长度须在 1–1000000 之间 / length must be 1–1000000",
            ));
        }
        let unit = opt_text(errs, &f("unit"), it.unit.as_deref(), 20);
        let description = opt_text(errs, &f("description"), it.description.as_deref(), 1000);
        if let (Some(n), Some(t)) = (&name, &title) {
            if items.iter().any(|x| &x.name == n) {
                errs.push(FieldError::new(
                    f("name"),
                    "duplicate_item",
                    format!("信息项名称重复：{n} / duplicate item name {n}"),
                ));
            }
            if items.iter().any(|x| &x.title == t) {
                errs.push(FieldError::new(
                    f("title"),
                    "duplicate_item",
                    format!("信息项中文名称重复：{t} / duplicate item title {t}"),
                ));
            }
        }
        let key = it.key.unwrap_or(false);
        if let (Some(name), Some(title), Some(data_type), Some(sensitivity)) = (name, title, data_type, sensitivity) {
            items.push(InfoItem {
                name,
                title,
                data_type,
                length: it.length,
                unit,
                // A key item is always required.
                required: it.required.unwrap_or(false) || key,
                key,
                sensitivity,
                validator,
                description,
                public,
            });
        }
    }
    items
}

/// One changed element between two versions of a resource's content.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FieldChange {
    pub field: String,
    pub before: serde_json::Value,
    pub after: serde_json::Value,
}

/// The top-level elements that differ between `before` and `after`.
pub fn diff(before: &ResourceContent, after: &ResourceContent) -> Vec<FieldChange> {
    let b = serde_json::to_value(before).unwrap_or_default();
    let a = serde_json::to_value(after).unwrap_or_default();
    let (Some(bm), Some(am)) = (b.as_object(), a.as_object()) else { return vec![] };
    let mut out = Vec::new();
    for (k, av) in am {
        let bv = bm.get(k).cloned().unwrap_or(serde_json::Value::Null);
        if &bv != av {
            out.push(FieldChange { field: k.clone(), before: bv, after: av.clone() });
        }
    }
    out
}

/// RFC 7396 JSON merge patch.
pub fn merge_patch(target: &mut serde_json::Value, patch: &serde_json::Value) {
    match patch {
        serde_json::Value::Object(p) => {
            if !target.is_object() {
                *target = serde_json::Value::Object(Default::default());
            }
            let t = target.as_object_mut().expect("object");
            for (k, v) in p {
                if v.is_null() {
                    t.remove(k);
                } else {
                    merge_patch(t.entry(k.clone()).or_insert(serde_json::Value::Null), v);
                }
            }
        }
        other => *target = other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn population() -> ResourceInput {
        serde_json::from_value(json!({
            "name": "人口基础信息",
            "abstract": "全市户籍人口基础信息",
            "provider": "gaj",
            "classification": {"class": "basic", "theme": "人口"},
            "format": {"category": "数据库", "type": "table"},
            "items": [
                {"name": "sfzh", "title": "身份证号", "key": true, "validator": "id_card", "sensitivity": "sensitive_personal"},
                {"name": "xm", "title": "姓名", "sensitivity": "personal"},
                {"name": "csrq", "title": "出生日期", "data_type": "D"}
            ],
            "share": {"type": "有条件共享", "conditions": "用于公共服务", "method": "api"},
            "open": {"type": "none"},
            "update_cycle": "每日",
            "security_level": "general_3",
            "regions": ["321200"],
            "tags": ["人口", "户籍", "人口"]
        }))
        .unwrap()
    }

    #[test]
    fn parses_a_full_resource() {
        let d = ResourceDraft::parse(&population()).unwrap();
        let c = &d.content;
        assert_eq!(c.classification.theme, "population");
        assert_eq!(c.classification.code(), "101");
        assert!(c.items[0].required, "key implies required");
        assert_eq!(c.items[2].data_type, DataType::Date);
        assert_eq!(c.tags, ["人口", "户籍"]);
        let content = d.complete(ResourceCode::assign("101", 1), Slug::parse("ren-kou").unwrap());
        assert_eq!(content.code.as_str(), "101/000001");
        // Round trip through the input shape.
        let again = ResourceDraft::parse(&ResourceInput::from(&content)).unwrap();
        assert_eq!(again.complete(content.code.clone(), content.slug.clone()), content);
    }

    #[test]
    fn reports_every_missing_field() {
        let e = ResourceDraft::parse(&ResourceInput::default()).unwrap_err();
        let fields: Vec<&str> = e.0.iter().map(|f| f.field.as_str()).collect();
        for f in [
            "name",
            "abstract",
            "provider",
            "classification.class",
            "classification.theme",
            "format.category",
            "share.type",
            "open.type",
            "update_cycle",
        ] {
            assert!(fields.contains(&f), "{f} missing from {fields:?}");
        }
    }

    #[test]
    fn important_data_cannot_be_opened() {
        let mut i = population();
        i.security_level = Some("important".into());
        i.open = Some(OpenInput { kind: Some("conditional".into()), conditions: Some("x".into()) });
        let e = ResourceDraft::parse(&i).unwrap_err();
        assert!(e.0.iter().any(|f| f.field == "open.type" && f.code == "cannot_open_important_data"), "{e}");
    }

    #[test]
    fn sensitive_items_must_be_protected_when_open() {
        let mut i = population();
        i.open = Some(OpenInput { kind: Some("unconditional".into()), conditions: None });
        let e = ResourceDraft::parse(&i).unwrap_err();
        assert_eq!(e.0[0].field, "items[0].public");
        i.items[0].public = Some("masked".into());
        assert!(ResourceDraft::parse(&i).is_ok());
    }

    #[test]
    fn share_conditions_and_basis_are_required() {
        let mut i = population();
        i.share = Some(ShareInput { kind: Some("none".into()), conditions: None, method: None });
        let e = ResourceDraft::parse(&i).unwrap_err();
        assert_eq!(e.0[0].field, "share.conditions");
    }

    #[test]
    fn theme_must_fit_class_and_code_must_fit_classification() {
        let mut i = population();
        i.classification = Some(ClassificationInput { class: Some("basic".into()), theme: Some("health".into()) });
        assert_eq!(ResourceDraft::parse(&i).unwrap_err().0[0].code, "theme_class_mismatch");
        let mut i = population();
        i.code = Some("201/000001".into());
        assert_eq!(ResourceDraft::parse(&i).unwrap_err().0[0].code, "code_classification_mismatch");
        let mut i = population();
        i.classification = Some(ClassificationInput { class: Some("basic".into()), theme: Some("外星人".into()) });
        assert_eq!(ResourceDraft::parse(&i).unwrap_err().0[0].code, "unknown_theme");
    }

    #[test]
    fn items_are_checked() {
        let mut i = population();
        i.items.push(ItemInput {
            name: Some("sfzh".into()),
            title: Some("姓名".into()),
            validator: Some("range:1..0".into()),
            ..Default::default()
        });
        i.items.push(ItemInput {
            name: Some("age".into()),
            title: Some("年龄".into()),
            data_type: Some("integer".into()),
            validator: Some("mobile".into()),
            ..Default::default()
        });
        let e = ResourceDraft::parse(&i).unwrap_err();
        let fields: Vec<&str> = e.0.iter().map(|f| f.field.as_str()).collect();
        assert!(fields.contains(&"items[3].validator"));
        assert!(fields.contains(&"items[4].validator"));
    }

    #[test]
    fn validators_roundtrip() {
        for s in [
            "id_card",
            "uscc",
            "org_code",
            "region_code",
            "mobile",
            "bank_card",
            "email",
            "regex:^[A-Z]+$",
            "enum:男|女",
            "range:0..150",
        ] {
            assert_eq!(Validator::parse(s).unwrap().to_spec(), s);
        }
        assert!(Validator::parse("regex:(").is_err());
        assert!(Validator::parse("enum:").is_err());
        assert!(Validator::parse("luhn").is_err());
    }

    #[test]
    fn codes_and_slugs() {
        assert!(ResourceCode::parse("101/000001").is_ok());
        assert!(ResourceCode::parse("101001001/0001").is_ok());
        for bad in ["101", "401/000001", "10/000001", "101/01", "abc/000001"] {
            assert!(ResourceCode::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(ResourceCode::parse("101/000042").unwrap().sequence(), 42);
        assert!(Slug::parse("ren-kou-2").is_ok());
        assert!(Slug::parse("Ren Kou").is_err());
        assert_eq!(Slug::from_text("Air quality 2024!", "x").as_str(), "air-quality-2024");
        assert_eq!(Slug::from_text("人口基础信息", "x").as_str(), "ren-kou-ji-chu-xin-xi");
        assert_eq!(Slug::from_text("——", "r-101-000001").as_str(), "r-101-000001");
    }

    #[test]
    fn merge_patch_follows_rfc7396() {
        let mut t = json!({"a": 1, "b": {"c": 2, "d": 3}});
        merge_patch(&mut t, &json!({"a": null, "b": {"c": 5}, "e": [1]}));
        assert_eq!(t, json!({"b": {"c": 5, "d": 3}, "e": [1]}));
    }
}
