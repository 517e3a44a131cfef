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

mod draft;
mod ids;
mod patch;
mod rules;
#[cfg(test)]
mod tests;

pub use draft::*;
pub use ids::*;
pub use patch::*;
pub use rules::*;

/// 信息项
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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
    /// 校验规则 as a spec: `id_card`, `uscc`, `regex:…`, `enum:a|b`, `range:min..max`, ...
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub validator: Option<Validator>,
    pub description: Option<String>,
    /// How the item is given to the public when the resource is open.
    pub public: Option<PublicTreatment>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Format {
    pub category: FormatCategory,
    /// e.g. `csv`, `xlsx`, `table`, `json`, `api`.
    #[serde(rename = "type")]
    pub kind: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Share {
    #[serde(rename = "type")]
    pub kind: ShareType,
    /// 共享条件; for `none`, the legal or policy basis (不予共享依据).
    pub conditions: Option<String>,
    pub method: ShareMethod,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Open {
    #[serde(rename = "type")]
    pub kind: OpenType,
    pub conditions: Option<String>,
}

/// Everything a steward edits, parsed and consistent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<String>))]
    pub consistency: Vec<ConsistencyRule>,
    /// 历史版本保留天数 (history window): how far back other departments and the public may
    /// read older table versions and the change feed; `0` = the current version only. The
    /// provider always reads its whole history. `None` = the default, [`DEFAULT_HISTORY_DAYS`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub history_days: Option<u32>,
    /// 质量规则: checks beyond the validators, each with a severity
    /// ([`crate::quality::QualityRule`]); versioned with the resource's revision.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<crate::quality::QualityRuleInput>))]
    pub quality_rules: Vec<crate::quality::QualityRule>,
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
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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
