//! Accounts: usernames, roles (角色) and memberships in departments.

use crate::dept::DeptCode;
use crate::error::FieldError;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// A login name: 2–64 characters of lower-case ASCII letters, digits, `.`, `_`, `-`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Username(String);

impl Username {
    pub fn parse(s: &str) -> Result<Self, FieldError> {
        let t = s.trim().to_ascii_lowercase();
        let ok = (2..=64).contains(&t.len())
            && t.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
            && t.as_bytes()[0].is_ascii_alphanumeric();
        if ok {
            Ok(Self(t))
        } else {
            Err(FieldError::new(
                "username",
                "invalid_username",
                "用户名须为 2–64 位小写字母、数字或 . _ -，且以字母或数字开头 / username must be 2–64 lower-case letters, digits, '.', '_' or '-', starting with a letter or digit",
            ))
        }
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}
impl TryFrom<String> for Username {
    type Error = FieldError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}
impl From<Username> for String {
    fn from(u: Username) -> String {
        u.0
    }
}
impl std::fmt::Display for Username {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A new password in clear text. Its `Debug` never shows the text.
#[derive(Clone)]
pub struct Password(String);

impl Password {
    pub const MIN_CHARS: usize = 8;
    pub fn parse(s: &str) -> Result<Self, FieldError> {
        let n = s.chars().count();
        if !(Self::MIN_CHARS..=256).contains(&n) {
            return Err(FieldError::new(
                "password",
                "weak_password",
                format!(
                    "密码长度须为 {}–256 个字符 / password must be {}–256 characters",
                    Self::MIN_CHARS,
                    Self::MIN_CHARS
                ),
            ));
        }
        Ok(Self(s.to_string()))
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}
impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

/// What a member may do in a department.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// 平台管理员: manages the platform (departments, users, audit).
    Admin,
    /// 部门管理员: manages the department's members.
    DeptAdmin,
    /// 数据管理员: maintains the department's resources and answers requests.
    Steward,
    /// 数据使用者: consumes data.
    Analyst,
}

impl Role {
    pub const ALL: [Role; 4] = [Role::Admin, Role::DeptAdmin, Role::Steward, Role::Analyst];
    pub fn parse(s: &str) -> Result<Self, FieldError> {
        match s.trim() {
            "admin" => Ok(Self::Admin),
            "dept_admin" => Ok(Self::DeptAdmin),
            "steward" => Ok(Self::Steward),
            "analyst" => Ok(Self::Analyst),
            other => Err(FieldError::new(
                "role",
                "invalid_role",
                format!(
                    "角色必须是 admin、dept_admin、steward 或 analyst，收到 \"{other}\" / role must be admin, dept_admin, steward or analyst, got \"{other}\""
                ),
            )),
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Admin => "admin",
            Self::DeptAdmin => "dept_admin",
            Self::Steward => "steward",
            Self::Analyst => "analyst",
        }
    }
    pub fn title_zh(self) -> &'static str {
        match self {
            Self::Admin => "平台管理员",
            Self::DeptAdmin => "部门管理员",
            Self::Steward => "数据管理员",
            Self::Analyst => "数据使用者",
        }
    }
}

/// A role held in a department.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Membership {
    pub department: DeptCode,
    pub role: Role,
}

/// A user as stored (without the password hash).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    pub id: Uuid,
    pub username: Username,
    pub display_name: String,
    pub memberships: Vec<Membership>,
    pub disabled: bool,
}

/// Parse a display name: 1–100 characters, no control characters.
pub fn parse_display_name(s: &str) -> Result<String, FieldError> {
    let t = s.trim();
    let n = t.chars().count();
    if n == 0 || n > 100 || t.chars().any(char::is_control) {
        return Err(FieldError::new(
            "display_name",
            "invalid_display_name",
            "姓名须为 1–100 个字符 / display name must be 1–100 characters",
        ));
    }
    Ok(t.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn usernames() {
        assert_eq!(Username::parse("GAJ-Steward").unwrap().as_str(), "gaj-steward");
        assert!(Username::parse("x").is_err());
        assert!(Username::parse("-abc").is_err());
        assert!(Username::parse("张三").is_err());
    }

    #[test]
    fn password_debug_is_redacted() {
        let p = Password::parse("citydata-demo").unwrap();
        assert!(!format!("{p:?}").contains("citydata"));
        assert!(Password::parse("short").is_err());
    }

    #[test]
    fn roles_roundtrip() {
        for r in Role::ALL {
            assert_eq!(Role::parse(r.as_str()).unwrap(), r);
        }
        assert!(Role::parse("root").is_err());
    }

    proptest! {
        #[test]
        fn username_parse_never_panics(s in "\\PC{0,80}") {
            let _ = Username::parse(&s);
        }
    }
}
