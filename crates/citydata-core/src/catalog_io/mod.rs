//! Catalog spreadsheets (目录编制表): export the catalog to a workbook with a 资源 sheet and a
//! 信息项 sheet (or one flat CSV), and import the same layout, reporting every problem by
//! sheet, row and column. Exporting one instance and importing into a fresh one gives the same
//! catalog.

use crate::catalog::{audience, can_edit};
use crate::{Core, CoreError, RequestMeta};
use calamine::{Data, Reader};
use citydata_domain::dept::DeptCode;
use citydata_domain::principal::Principal;
use citydata_domain::resource::{
    ClassificationInput, FormatInput, ItemInput, OpenInput, Resource, ResourceDraft, ResourceInput, ShareInput,
};
use citydata_domain::vocab::{self, ResourceState};
use citydata_store::ResourceFilter;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap, HashSet};

mod export;
pub(crate) mod import;

pub const RESOURCE_SHEET: &str = "资源";
pub const ITEM_SHEET: &str = "信息项";

/// Columns of the 资源 sheet: (key, Chinese header).
pub const RESOURCE_COLUMNS: &[(&str, &str)] = &[
    ("code", "信息资源代码"),
    ("name", "信息资源名称"),
    ("abstract", "信息资源摘要"),
    ("provider", "资源提供方代码"),
    ("provider_name", "资源提供方"),
    ("class", "资源分类"),
    ("theme", "主题分类"),
    ("format_category", "资源格式分类"),
    ("format_type", "资源格式类型"),
    ("share_type", "共享类型"),
    ("share_conditions", "共享条件"),
    ("share_method", "共享方式"),
    ("open_type", "开放类型"),
    ("open_conditions", "开放条件"),
    ("update_cycle", "更新周期"),
    ("publish_date", "发布日期"),
    ("related", "关联资源代码"),
    ("security_level", "安全级别"),
    ("tags", "标签"),
    ("license", "许可协议"),
    ("regions", "覆盖区域"),
    ("contact", "联系方式"),
    ("consistency", "一致性规则"),
    ("quality_rules", "质量规则"),
    ("slug", "访问标识"),
    ("state", "状态"),
];

/// Columns of the 信息项 sheet.
pub const ITEM_COLUMNS: &[(&str, &str)] = &[
    ("code", "信息资源代码"),
    ("seq", "序号"),
    ("name", "信息项名称"),
    ("title", "中文名称"),
    ("data_type", "数据类型"),
    ("length", "长度"),
    ("unit", "计量单位"),
    ("required", "是否必填"),
    ("key", "是否主键"),
    ("sensitivity", "敏感程度"),
    ("validator", "校验规则"),
    ("public", "公众开放方式"),
    ("description", "说明"),
];

/// The item columns in the flat CSV layout are prefixed to keep the names apart.
fn csv_item_header(h: &str) -> String {
    format!("信息项{h}").replace("信息项信息项", "信息项")
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CatalogFormat {
    Xlsx,
    Csv,
}

impl CatalogFormat {
    pub fn parse(s: &str) -> Result<Self, CoreError> {
        match s.trim().to_ascii_lowercase().as_str() {
            "xlsx" => Ok(Self::Xlsx),
            "csv" => Ok(Self::Csv),
            other => Err(citydata_domain::FieldError::new(
                "format",
                "invalid_format",
                format!("格式须为 xlsx 或 csv，收到 \"{other}\" / format must be xlsx or csv"),
            )
            .into()),
        }
    }
    /// Guess from the bytes: a zip container is a workbook.
    pub fn sniff(bytes: &[u8]) -> Self {
        if bytes.starts_with(b"PK\x03\x04") { Self::Xlsx } else { Self::Csv }
    }
}

/// One problem in an imported file.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ImportIssue {
    pub sheet: String,
    /// 1-based row number as the spreadsheet shows it (the header is row 1).
    pub row: usize,
    /// The column header, when the problem is in one cell.
    pub column: Option<String>,
    pub message: String,
}

impl std::fmt::Display for ImportIssue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.column {
            Some(c) => write!(f, "{} 第 {} 行「{}」：{}", self.sheet, self.row, c, self.message),
            None => write!(f, "{} 第 {} 行：{}", self.sheet, self.row, self.message),
        }
    }
}

#[derive(Debug, Clone, Default, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ImportReport {
    pub resources_in_file: usize,
    pub created: usize,
    pub updated: usize,
    pub skipped: usize,
    pub issues: Vec<ImportIssue>,
}

/// Check that `principal` exists in departments (for CLI callers that pick a department).
pub fn parse_department(code: &str) -> Result<DeptCode, CoreError> {
    Ok(DeptCode::parse(code)?)
}
