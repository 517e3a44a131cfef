//! 行政区划代码 (administrative division code, GB/T 2260).
//!
//! A code is six digits: province (2), prefecture (2), county (2). A `RegionCode` exists only
//! for codes in the bundled GB/T 2260 table (`identifiers::region_name`).

use crate::error::FieldError;
use serde::{Deserialize, Serialize};

/// The GB/T 2260 province-level codes (first two digits).
const PROVINCES: &[(&str, &str)] = &[
    ("11", "北京市"),
    ("12", "天津市"),
    ("13", "河北省"),
    ("14", "山西省"),
    ("15", "内蒙古自治区"),
    ("21", "辽宁省"),
    ("22", "吉林省"),
    ("23", "黑龙江省"),
    ("31", "上海市"),
    ("32", "江苏省"),
    ("33", "浙江省"),
    ("34", "安徽省"),
    ("35", "福建省"),
    ("36", "江西省"),
    ("37", "山东省"),
    ("41", "河南省"),
    ("42", "湖北省"),
    ("43", "湖南省"),
    ("44", "广东省"),
    ("45", "广西壮族自治区"),
    ("46", "海南省"),
    ("50", "重庆市"),
    ("51", "四川省"),
    ("52", "贵州省"),
    ("53", "云南省"),
    ("54", "西藏自治区"),
    ("61", "陕西省"),
    ("62", "甘肃省"),
    ("63", "青海省"),
    ("64", "宁夏回族自治区"),
    ("65", "新疆维吾尔自治区"),
    ("71", "台湾省"),
    ("81", "香港特别行政区"),
    ("82", "澳门特别行政区"),
];

/// Divisions whose names citydata knows without the full table (the demo city, 泰州市).
const KNOWN: &[(&str, &str)] = &[
    ("320000", "江苏省"),
    ("321200", "泰州市"),
    ("321202", "海陵区"),
    ("321203", "高港区"),
    ("321204", "姜堰区"),
    ("321281", "兴化市"),
    ("321282", "靖江市"),
    ("321283", "泰兴市"),
];

/// A valid GB/T 2260 administrative division code.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RegionCode(String);

impl RegionCode {
    pub fn parse(s: &str) -> Result<Self, FieldError> {
        let s = s.trim();
        let err = |m: String| FieldError::new("region_code", "invalid_region_code", m);
        if s.len() != 6 || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(err(format!(
                "行政区划代码必须是 6 位数字，收到 \"{s}\" / region code must be six digits (GB/T 2260), got \"{s}\""
            )));
        }
        if !PROVINCES.iter().any(|(p, _)| *p == &s[..2]) {
            return Err(err(format!(
                "行政区划代码 {s} 的省级代码 {} 不存在 / region code {s}: unknown province {}",
                &s[..2],
                &s[..2]
            )));
        }
        if !crate::identifiers::is_region_code(s) {
            return Err(err(format!(
                "行政区划代码 {s} 不在 GB/T 2260 代码表中 / region code {s} is not in the GB/T 2260 table"
            )));
        }
        Ok(Self(s.to_string()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
    /// The division's name from the bundled GB/T 2260 table.
    pub fn name(&self) -> Option<&'static str> {
        crate::identifiers::region_name(&self.0).or_else(|| self.known_name())
    }

    fn known_name(&self) -> Option<&'static str> {
        KNOWN.iter().find(|(c, _)| *c == self.0).map(|(_, n)| *n).or_else(|| {
            if &self.0[2..] == "0000" {
                PROVINCES.iter().find(|(p, _)| *p == &self.0[..2]).map(|(_, n)| *n)
            } else {
                None
            }
        })
    }
}

impl TryFrom<String> for RegionCode {
    type Error = FieldError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}
impl From<RegionCode> for String {
    fn from(r: RegionCode) -> String {
        r.0
    }
}
impl std::fmt::Display for RegionCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn taizhou_codes_parse_and_have_names() {
        for (c, n) in KNOWN {
            assert_eq!(RegionCode::parse(c).unwrap().name(), Some(*n));
        }
        assert_eq!(RegionCode::parse("110000").unwrap().name(), Some("北京市"));
    }

    #[test]
    fn rejects_bad_codes() {
        for bad in ["", "32120", "3212021", "32120a", "991202", "００１２３４"] {
            let e = RegionCode::parse(bad).unwrap_err();
            assert_eq!(e.field, "region_code");
        }
    }

    proptest! {
        #[test]
        fn parse_never_panics(s in ".{0,10}") {
            let _ = RegionCode::parse(&s);
        }
        #[test]
        fn codes_parse_exactly_when_in_the_table(p in 0usize..PROVINCES.len(), rest in 0u32..10000) {
            let code = format!("{}{:04}", PROVINCES[p].0, rest);
            prop_assert_eq!(RegionCode::parse(&code).is_ok(), crate::identifiers::is_region_code(&code));
        }
    }
}
