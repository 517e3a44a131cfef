//! 电子证照 (electronic licenses, issue #23 item 5): which resources are license registers, which
//! of their items carry the number, holder, status, validity and issuer, and what a license's
//! status is — pure rules; the lookup and the signed receipt live in `citydata_core::licenses`.
//!
//! **A license register** (证照库) is a resource of the basic library 电子证照 (theme
//! `e_license`) with exactly one key item — the license number (证照编号) — and a holder item
//! (持证主体). The roles are found by the item's name or title:
//!
//! | role     | names            | titles                                   | needed |
//! |----------|------------------|------------------------------------------|--------|
//! | number   | the key item     |                                          | yes    |
//! | holder   | `czzt`, `czr`    | 持证主体, 持证主体名称, 持证人, 持证人姓名 | yes    |
//! | status   | `zzzt`           | 证照状态                                 | no     |
//! | validity | `yxqz`, `yxqjzrq`| 有效期至, 有效期截止日期                  | no     |
//! | issuer   | `fzjg`           | 发证机关, 颁发机构                        | no     |
//!
//! A resource without a holder item is not a license register (a number alone must never be
//! enough to learn anything).

use crate::cast::half_width;
use crate::resource::{InfoItem, ResourceContent};
use crate::vocab::DataType;
use chrono::NaiveDate;

/// The theme of the 电子证照 basic library.
pub const LICENSE_THEME: &str = "e_license";

const HOLDER: (&[&str], &[&str]) = (&["czzt", "czr"], &["持证主体", "持证主体名称", "持证人", "持证人姓名"]);
const STATUS: (&[&str], &[&str]) = (&["zzzt"], &["证照状态"]);
const VALIDITY: (&[&str], &[&str]) = (&["yxqz", "yxqjzrq"], &["有效期至", "有效期截止日期"]);
const ISSUER: (&[&str], &[&str]) = (&["fzjg"], &["发证机关", "颁发机构"]);

/// The items of a license register by role.
#[derive(Debug, Clone)]
pub struct LicenseItems<'a> {
    pub number: &'a InfoItem,
    pub holder: &'a InfoItem,
    pub status: Option<&'a InfoItem>,
    /// A date item: the last day the license is valid (empty: 长期, no end).
    pub valid_until: Option<&'a InfoItem>,
    pub issuer: Option<&'a InfoItem>,
}

fn find<'a>(items: &'a [InfoItem], (names, titles): (&[&str], &[&str])) -> Option<&'a InfoItem> {
    items.iter().find(|i| names.contains(&i.name.as_str()) || titles.contains(&i.title.trim()))
}

/// The roles of `content`'s items when it is a license register, else `None`.
pub fn license_items(content: &ResourceContent) -> Option<LicenseItems<'_>> {
    if content.classification.theme != LICENSE_THEME {
        return None;
    }
    let mut keys = content.items.iter().filter(|i| i.key);
    let number = keys.next()?;
    if keys.next().is_some() {
        return None;
    }
    let holder = find(&content.items, HOLDER).filter(|h| h.name != number.name)?;
    Some(LicenseItems {
        number,
        holder,
        status: find(&content.items, STATUS),
        valid_until: find(&content.items, VALIDITY).filter(|i| i.data_type == DataType::Date),
        issuer: find(&content.items, ISSUER),
    })
}

/// What a verification answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum LicenseStatus {
    /// The number is registered to this holder and the license is in force.
    Valid,
    /// Registered to this holder, but cancelled, revoked or withdrawn (注销/吊销/撤销/作废).
    Revoked,
    /// Registered to this holder, but its validity ended before today.
    Expired,
    /// No license has this number **for this holder**: an unknown number and a known number with
    /// another holder answer the same, so a number alone never confirms that it exists.
    NotFound,
}

impl LicenseStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Valid => "valid",
            Self::Revoked => "revoked",
            Self::Expired => "expired",
            Self::NotFound => "not_found",
        }
    }
}

/// The status of a found license from its status text and last valid day, on `today` (the
/// platform's local date). A revocation outranks an expiry; a status text that is neither a
/// word for valid nor for expired counts as revoked (not in force, fail closed).
pub fn status_of(status: Option<&str>, valid_until: Option<NaiveDate>, today: NaiveDate) -> LicenseStatus {
    let s = status.map(|s| s.trim().to_lowercase()).unwrap_or_default();
    let from_text = match s.as_str() {
        "" | "有效" | "正常" | "存续" | "在用" | "valid" | "active" => LicenseStatus::Valid,
        "过期" | "已过期" | "失效" | "expired" => LicenseStatus::Expired,
        _ => LicenseStatus::Revoked,
    };
    match (from_text, valid_until) {
        (LicenseStatus::Valid, Some(end)) if end < today => LicenseStatus::Expired,
        (s, _) => s,
    }
}

/// A holder name as compared: full-width forms folded (（）→ ()), spaces removed, ASCII
/// letters in one case. `有限公司` and `有 限 公 司` are the same holder; `甲公司` and `乙公司` not.
pub fn normalize_holder(s: &str) -> String {
    half_width(s).chars().filter(|c| !c.is_whitespace()).flat_map(char::to_lowercase).collect()
}

/// A license number as compared: trimmed, spaces removed, upper case (USCC letters).
pub fn normalize_number(s: &str) -> String {
    half_width(s).chars().filter(|c| !c.is_whitespace()).flat_map(char::to_uppercase).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn status_follows_the_text_then_the_validity() {
        let today = d("2026-12-03");
        assert_eq!(status_of(Some("有效"), None, today), LicenseStatus::Valid);
        assert_eq!(status_of(None, Some(d("2026-12-03")), today), LicenseStatus::Valid, "the last day is valid");
        assert_eq!(status_of(Some("有效"), Some(d("2026-12-02")), today), LicenseStatus::Expired);
        assert_eq!(status_of(Some("吊销"), Some(d("2020-01-01")), today), LicenseStatus::Revoked, "revoked outranks");
        assert_eq!(status_of(Some("注销"), None, today), LicenseStatus::Revoked);
        assert_eq!(status_of(Some("过期"), None, today), LicenseStatus::Expired);
        assert_eq!(status_of(Some("待定"), None, today), LicenseStatus::Revoked, "unknown text fails closed");
    }

    #[test]
    fn holders_and_numbers_compare_after_folding() {
        assert_eq!(normalize_holder(" 泰州市某某（集团）有限 公司"), normalize_holder("泰州市某某(集团)有限公司"));
        assert_ne!(normalize_holder("甲公司"), normalize_holder("乙公司"));
        assert_eq!(normalize_number(" 91321200mA1 "), "91321200MA1");
    }
}
