//! 脱敏 (masking) specifications: which function hides an item's values, chosen by the item's
//! sensitivity and the audience, or by a grant. The kernels that apply them run in
//! `citydata-lake`; this module only names them and picks defaults.

use crate::error::FieldError;
use crate::resource::{InfoItem, Validator};
use crate::vocab::{DataType, Sensitivity};
use serde::{Deserialize, Serialize};

/// One masking function.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum MaskSpec {
    /// Keep the first and last characters, replace the rest with `*`.
    Keep { first: u32, last: u32 },
    /// 张** — the surname, then one `*` per remaining character.
    ChineseName,
    /// The first 6 digits (the region) and 12 `*`: the birth date, sequence and check digit
    /// are hidden, since other items (出生日期, 性别) often give the birth date and sex away.
    IdCard,
    /// 138****1234.
    Mobile,
    /// Kept up to the district or county (区/县/市), the rest `*`.
    Address,
    /// Only the last 4 digits.
    BankCard,
    /// First character + `***@domain`.
    Email,
    /// A date reduced to its year.
    DateToYear,
    /// A number replaced by the range of `width` it falls in, e.g. `20-29`.
    NumberRange { width: u32 },
    /// Always null.
    Null,
    /// Always `***`.
    Redact,
    /// HMAC-SHA256 of the value with the server's secret, encoded short: the same value gets
    /// the same pseudonym everywhere, so pseudonymized tables still join.
    Pseudonym,
    /// The location mask: a spatial item snapped to the centre of its grid cell of `meters`
    /// (a polygon to the snapped point of its anchor).
    Grid { meters: u32 },
    /// The location mask by district: a spatial item replaced by the centre (ring mean) of
    /// the boundary resource's district holding it, NULL outside every district or when no
    /// boundary can be read (it fails closed).
    District,
    /// Shown as it is (a grant may lift a default mask explicitly).
    Clear,
}

impl MaskSpec {
    pub fn parse(s: &str) -> Result<Self, FieldError> {
        let t = s.trim();
        let err = || {
            FieldError::new(
                "masks",
                "invalid_mask",
                format!(
                    "未知的脱敏方式 \"{t}\"，可用：keep(前,后)、chinese_name、id_card、mobile、address、bank_card、email、date_to_year、number_range(宽度)、grid(米)、district、null、redact、pseudonym、none / unknown mask \"{t}\""
                ),
            )
        };
        let args = |inner: &str| -> Option<Vec<u32>> { inner.split(',').map(|x| x.trim().parse().ok()).collect() };
        Ok(match t {
            "chinese_name" => Self::ChineseName,
            "id_card" => Self::IdCard,
            "mobile" => Self::Mobile,
            "address" => Self::Address,
            "bank_card" => Self::BankCard,
            "email" => Self::Email,
            "date_to_year" => Self::DateToYear,
            "null" => Self::Null,
            "redact" => Self::Redact,
            "pseudonym" => Self::Pseudonym,
            "district" => Self::District,
            "none" | "clear" => Self::Clear,
            _ => {
                if let Some(inner) = t.strip_prefix("keep(").and_then(|r| r.strip_suffix(')')) {
                    match args(inner).as_deref() {
                        Some([f, l]) => Self::Keep { first: *f, last: *l },
                        _ => return Err(err()),
                    }
                } else if let Some(inner) = t.strip_prefix("grid(").and_then(|r| r.strip_suffix(')')) {
                    match args(inner).as_deref() {
                        Some([m]) if (10..=100_000).contains(m) => Self::Grid { meters: *m },
                        _ => return Err(err()),
                    }
                } else if let Some(inner) = t.strip_prefix("number_range(").and_then(|r| r.strip_suffix(')')) {
                    match args(inner).as_deref() {
                        Some([w]) if *w > 0 => Self::NumberRange { width: *w },
                        _ => return Err(err()),
                    }
                } else {
                    return Err(err());
                }
            }
        })
    }

    pub fn to_spec(&self) -> String {
        match self {
            Self::Keep { first, last } => format!("keep({first},{last})"),
            Self::ChineseName => "chinese_name".into(),
            Self::IdCard => "id_card".into(),
            Self::Mobile => "mobile".into(),
            Self::Address => "address".into(),
            Self::BankCard => "bank_card".into(),
            Self::Email => "email".into(),
            Self::DateToYear => "date_to_year".into(),
            Self::NumberRange { width } => format!("number_range({width})"),
            Self::Grid { meters } => format!("grid({meters})"),
            Self::District => "district".into(),
            Self::Null => "null".into(),
            Self::Redact => "redact".into(),
            Self::Pseudonym => "pseudonym".into(),
            Self::Clear => "none".into(),
        }
    }

    /// How much of a value the mask hides, for ordering masks: a grant for the public can only
    /// make a mask stronger, never weaker; re-identification checks only strengthen.
    /// 0 = clear, 1 = shows a chosen part, 2 = a standard partial mask or generalization,
    /// 3 = a stable pseudonym (links, shows nothing), 4 = nothing at all.
    pub fn strength(&self) -> u8 {
        match self {
            Self::Clear => 0,
            Self::Keep { .. } => 1,
            Self::ChineseName
            | Self::IdCard
            | Self::Mobile
            | Self::Address
            | Self::BankCard
            | Self::Email
            | Self::DateToYear
            | Self::NumberRange { .. }
            | Self::Grid { .. }
            | Self::District => 2,
            Self::Pseudonym => 3,
            Self::Null | Self::Redact => 4,
        }
    }

    /// The stronger of two masks (`self` on a tie). Among location masks the coarser wins: a
    /// wider grid over a finer one, and a district (tens of kilometres) over any grid finer
    /// than 10 km — so a public grant asking for `district` is not served the default 500 m.
    pub fn stronger(self, other: Self) -> Self {
        const DISTRICT_SCALE: u32 = 10_000;
        match (&self, &other) {
            (Self::Grid { meters: a }, Self::Grid { meters: b }) => {
                if b > a {
                    other
                } else {
                    self
                }
            }
            (Self::Grid { meters }, Self::District) if *meters < DISTRICT_SCALE => other,
            (Self::District, Self::Grid { meters }) if *meters >= DISTRICT_SCALE => other,
            (Self::Grid { .. } | Self::District, Self::Grid { .. } | Self::District) => self,
            _ => {
                if other.strength() > self.strength() {
                    other
                } else {
                    self
                }
            }
        }
    }

    /// Whether the mask can apply to an item of type `t` (text masks need text; date and number
    /// masks need their types; null, redact and pseudonym fit anything).
    pub fn fits(&self, t: DataType) -> bool {
        match self {
            Self::Null | Self::Redact | Self::Pseudonym | Self::Clear => true,
            Self::DateToYear => matches!(t, DataType::Date | DataType::Datetime),
            Self::NumberRange { .. } => matches!(t, DataType::Integer | DataType::Decimal | DataType::Money),
            Self::Grid { .. } | Self::District => t.is_spatial(),
            _ => matches!(t, DataType::String | DataType::Text),
        }
    }

    /// The mask an item gets by default when it must be masked.
    pub fn default_for(item: &InfoItem) -> Self {
        match (&item.validator, item.data_type) {
            (Some(Validator::IdCard), _) => Self::IdCard,
            (Some(Validator::Mobile), _) => Self::Mobile,
            (Some(Validator::BankCard), _) => Self::BankCard,
            (Some(Validator::Email), _) => Self::Email,
            (_, DataType::Date | DataType::Datetime) => Self::DateToYear,
            (_, DataType::Integer | DataType::Decimal | DataType::Money) => Self::NumberRange { width: 10 },
            (_, DataType::Point | DataType::Geometry) => Self::Grid { meters: 500 },
            (_, DataType::String | DataType::Text) => {
                let t = &item.title;
                if t.contains("姓名")
                    || t.contains("代表人")
                    || t.contains("经营者")
                    || t.ends_with("人")
                    || item.name.as_str() == "xm"
                {
                    Self::ChineseName
                } else if t.contains("地址") || t.contains("住所") || t.contains("住址") || t.contains("居住地")
                {
                    Self::Address
                } else if item.sensitivity == Sensitivity::SensitivePersonal {
                    Self::Redact
                } else {
                    Self::Keep { first: 1, last: 0 }
                }
            }
            _ => Self::Null,
        }
    }
}

impl Serialize for MaskSpec {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_spec())
    }
}
impl<'de> Deserialize<'de> for MaskSpec {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse(&s).map_err(|e| serde::de::Error::custom(e.message))
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn the_coarser_location_mask_is_the_stronger() {
        let g = |m| MaskSpec::Grid { meters: m };
        assert_eq!(g(500).stronger(MaskSpec::District), MaskSpec::District);
        assert_eq!(MaskSpec::District.stronger(g(500)), MaskSpec::District);
        assert_eq!(g(500).stronger(g(1000)), g(1000));
        assert_eq!(g(1000).stronger(g(500)), g(1000));
        assert_eq!(MaskSpec::District.stronger(g(50_000)), g(50_000));
        assert_eq!(g(50_000).stronger(MaskSpec::District), g(50_000));
        assert_eq!(g(500).stronger(MaskSpec::Null), MaskSpec::Null);
        assert_eq!(MaskSpec::parse("district").unwrap(), MaskSpec::District);
    }

    use super::*;

    #[test]
    fn specs_roundtrip() {
        for s in [
            "keep(3,4)",
            "chinese_name",
            "id_card",
            "mobile",
            "address",
            "bank_card",
            "email",
            "date_to_year",
            "number_range(10)",
            "grid(500)",
            "null",
            "redact",
            "pseudonym",
            "none",
        ] {
            assert_eq!(MaskSpec::parse(s).unwrap().to_spec(), s);
        }
        for bad in ["keep(3)", "number_range(0)", "grid(1)", "shuffle", "keep(a,b)"] {
            assert!(MaskSpec::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn masks_fit_types() {
        assert!(MaskSpec::IdCard.fits(DataType::String));
        assert!(!MaskSpec::IdCard.fits(DataType::Date));
        assert!(MaskSpec::DateToYear.fits(DataType::Date));
        assert!(MaskSpec::Null.fits(DataType::Integer));
    }
}
