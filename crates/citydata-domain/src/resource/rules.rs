//! Rules over item values: 校验规则 of one item and consistency rules across a row.

use super::*;

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
    /// The coordinate system a spatial item's cells are written in (`crs:gcj02`); they are
    /// converted to CGCS2000 at ingest.
    Crs(crate::crs::Crs),
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
                } else if let Some(c) = t.strip_prefix("crs:") {
                    Self::Crs(crate::crs::Crs::parse(c).ok_or_else(|| {
                        err(format!("未知的坐标系 \"{c}\"，可用：cgcs2000、wgs84、gcj02、bd09 / unknown coordinate system \"{c}\""))
                    })?)
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
                        "未知的校验规则 \"{t}\"，可用：id_card、uscc、org_code、region_code、mobile、bank_card、email、regex:…、enum:a|b、range:min..max、crs:gcj02 / unknown validator \"{t}\""
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
            Self::Crs(c) => format!("crs:{}", c.code()),
        }
    }

    pub(super) fn fits(&self, t: DataType) -> bool {
        match self {
            Self::Range { .. } => matches!(t, DataType::Integer | DataType::Decimal | DataType::Money),
            Self::Crs(_) => t.is_spatial(),
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
