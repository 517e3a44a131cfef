//! 部门 (department): a government body that provides and consumes data.

use crate::error::{FieldError, ValidationErrors};
use crate::region::RegionCode;
use serde::{Deserialize, Serialize};

/// A department's short unique code, e.g. `gaj` (公安局): 1–32 ASCII letters, digits or `-`,
/// starting with a letter or digit, stored lower-case.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DeptCode(String);

impl DeptCode {
    pub fn parse(s: &str) -> Result<Self, FieldError> {
        let t = s.trim();
        let ok = !t.is_empty()
            && t.len() <= 32
            && t.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && t.as_bytes()[0].is_ascii_alphanumeric();
        if ok {
            Ok(Self(t.to_ascii_lowercase()))
        } else {
            Err(FieldError::new(
                "code",
                "invalid_department_code",
                format!(
                    "部门代码只能由 1–32 位字母、数字或 - 组成，收到 \"{t}\" / department code must be 1–32 letters, digits or '-', got \"{t}\""
                ),
            ))
        }
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}
impl TryFrom<String> for DeptCode {
    type Error = FieldError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}
impl From<DeptCode> for String {
    fn from(d: DeptCode) -> String {
        d.0
    }
}
impl std::fmt::Display for DeptCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A department's display name, 1–100 characters after trimming.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct DeptName(String);

impl DeptName {
    pub fn parse(s: &str) -> Result<Self, FieldError> {
        let t = s.trim();
        let n = t.chars().count();
        if n == 0 || n > 100 || t.chars().any(char::is_control) {
            return Err(FieldError::new(
                "name",
                "invalid_department_name",
                "部门名称须为 1–100 个字符且不含控制字符 / department name must be 1–100 characters without control characters",
            ));
        }
        Ok(Self(t.to_string()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}
impl TryFrom<String> for DeptName {
    type Error = FieldError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}
impl From<DeptName> for String {
    fn from(d: DeptName) -> String {
        d.0
    }
}

/// 层级: the administrative level of a department.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeptLevel {
    /// 市级
    City,
    /// 区县级 (districts and county-level cities)
    District,
}

impl DeptLevel {
    pub fn parse(s: &str) -> Result<Self, FieldError> {
        match s.trim() {
            "city" | "市" | "市级" => Ok(Self::City),
            "district" | "区县" | "区县级" => Ok(Self::District),
            other => Err(FieldError::new(
                "level",
                "invalid_department_level",
                format!(
                    "层级必须是 city 或 district，收到 \"{other}\" / level must be city or district, got \"{other}\""
                ),
            )),
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Self::City => "city",
            Self::District => "district",
        }
    }
}

/// A department as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Department {
    pub code: DeptCode,
    pub name: DeptName,
    pub region: RegionCode,
    pub level: DeptLevel,
    pub parent: Option<DeptCode>,
}

impl Department {
    /// Parse every field of untrusted input, reporting every problem at once.
    pub fn parse(
        code: &str,
        name: &str,
        region: &str,
        level: &str,
        parent: Option<&str>,
    ) -> Result<Self, ValidationErrors> {
        let mut errs = ValidationErrors::new();
        let code = errs.check(DeptCode::parse(code));
        let name = errs.check(DeptName::parse(name));
        let region = errs.check(RegionCode::parse(region));
        let level = errs.check(DeptLevel::parse(level));
        let parent = match parent.map(str::trim).filter(|p| !p.is_empty()) {
            None => Some(None),
            Some(p) => errs.check(DeptCode::parse(p).map_err(|e| FieldError { field: "parent".into(), ..e })).map(Some),
        };
        if let (Some(c), Some(Some(p))) = (&code, &parent)
            && c == p
        {
            errs.push(FieldError::new(
                "parent",
                "invalid_parent",
                "上级部门不能是自身 / a department cannot be its own parent",
            ));
        }
        errs.into_result()?;
        Ok(Self {
            code: code.expect("checked"),
            name: name.expect("checked"),
            region: region.expect("checked"),
            level: level.expect("checked"),
            parent: parent.expect("checked"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_a_department() {
        let d = Department::parse("GAJ", "泰州市公安局", "321200", "city", None).unwrap();
        assert_eq!(d.code.as_str(), "gaj");
        assert_eq!(d.level, DeptLevel::City);
    }

    #[test]
    fn reports_every_bad_field() {
        let e = Department::parse("bad code", "", "12", "province", Some("bad code")).unwrap_err();
        let fields: Vec<&str> = e.0.iter().map(|f| f.field.as_str()).collect();
        assert_eq!(fields, ["code", "name", "region_code", "level", "parent"]);
    }

    #[test]
    fn own_parent_is_rejected() {
        let e = Department::parse("a", "A", "321200", "city", Some("A")).unwrap_err();
        assert_eq!(e.0[0].code, "invalid_parent");
    }

    proptest! {
        #[test]
        fn codes_roundtrip_lowercase(s in "[a-zA-Z0-9][a-zA-Z0-9-]{0,31}") {
            let c = DeptCode::parse(&s).unwrap();
            prop_assert_eq!(c.as_str(), s.to_ascii_lowercase());
        }
        #[test]
        fn code_parse_never_panics(s in "\\PC{0,40}") {
            let _ = DeptCode::parse(&s);
            let _ = DeptName::parse(&s);
        }
    }
}
