//! Identifiers of a resource and its items: 信息资源代码, slugs and 信息项名称.

use super::*;

/// 信息资源代码: a classification code (class digit + two-digit theme number, optionally
/// followed by finer 目/细目 digits), `/`, and a sequence number, e.g. `101/000001`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ItemName(String);

/// Column names the lake gives a meaning of its own: the change feed's columns (Delta's
/// change data feed); every name starting with `__citydata` is reserved too (bounding boxes,
/// plan columns).
const RESERVED: &[&str] = &["_change_type", "_commit_version", "_commit_timestamp"];

impl ItemName {
    pub fn parse(s: &str) -> Result<Self, FieldError> {
        let t = s.trim();
        let ok = !t.is_empty()
            && t.len() <= 64
            && (t.as_bytes()[0].is_ascii_alphabetic() || t.as_bytes()[0] == b'_')
            && t.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
        let lower = t.to_ascii_lowercase();
        if ok && (lower.starts_with("__citydata") || RESERVED.contains(&lower.as_str())) {
            return Err(FieldError::new(
                "name",
                "reserved_item_name",
                format!("信息项名称 \"{t}\" 为平台保留 / item name \"{t}\" is reserved by the platform"),
            ));
        }
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

#[cfg(test)]
mod item_name_tests {
    use super::ItemName;

    /// Names the lake writes beside the items (bounding boxes, plan columns, the change
    /// feed's columns) cannot be items: an item of that name would shadow or be shadowed.
    #[test]
    fn the_lakes_own_column_names_are_reserved() {
        for n in ["__citydata_bbox_wz_x", "__CITYDATA_in", "_change_type", "_Commit_Version", "_commit_timestamp"] {
            let e = ItemName::parse(n).unwrap_err();
            assert_eq!(e.code, "reserved_item_name", "{n}");
        }
        for n in ["_private", "citydata", "_citydata_x", "change_type"] {
            assert!(ItemName::parse(n).is_ok(), "{n}");
        }
    }
}
