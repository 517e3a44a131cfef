//! The catalog's controlled vocabularies (GB/T 21063 / 2017 政务信息资源目录编制指南), each
//! a closed enum with a stable English code, its Chinese title, and a parser that accepts
//! either and names the allowed values when it fails.

use crate::error::FieldError;

/// Declare a vocabulary: `Variant = ("code", "中文")`.
macro_rules! vocab {
    ($(#[$m:meta])* $name:ident, $field:literal, { $($(#[$vm:meta])* $v:ident = ($code:literal, $zh:literal)),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
        pub enum $name {
            $($(#[$vm])* #[serde(rename = $code)] $v),+
        }

        // By hand, not derived: the schema must list the serde codes, which a derive cannot
        // read through this macro's literal fragments.
        #[cfg(feature = "openapi")]
        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                let titles: Vec<String> = Self::ALL.iter().map(|v| format!("`{}` {}", v.as_str(), v.title())).collect();
                utoipa::openapi::schema::ObjectBuilder::new()
                    .schema_type(utoipa::openapi::schema::Type::String)
                    .enum_values(Some([$($code),+]))
                    .description(Some(titles.join(", ")))
                    .into()
            }
        }
        #[cfg(feature = "openapi")]
        impl utoipa::ToSchema for $name {}

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$v),+];

            pub fn as_str(self) -> &'static str {
                match self { $($name::$v => $code),+ }
            }

            /// The Chinese title.
            pub fn title(self) -> &'static str {
                match self { $($name::$v => $zh),+ }
            }

            /// Parse the English code or the Chinese title.
            pub fn parse(s: &str) -> Result<Self, FieldError> {
                let t = s.trim();
                $(if t == $code || t == $zh { return Ok($name::$v); })+
                let allowed: Vec<String> = Self::ALL.iter().map(|v| format!("{} ({})", v.as_str(), v.title())).collect();
                Err(FieldError::new(
                    $field,
                    "invalid_value",
                    format!("\"{t}\" 不是允许的取值：{} / \"{t}\" is not one of: {}", allowed.join("、"), allowed.join(", ")),
                ))
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

vocab!(
    /// 资源分类: the class of a resource.
    ResourceClass, "classification.class", {
        /// 基础信息资源
        Basic = ("basic", "基础"),
        /// 主题信息资源
        Thematic = ("thematic", "主题"),
        /// 部门信息资源
        Departmental = ("departmental", "部门"),
    }
);

impl ResourceClass {
    /// The first digit of a resource code (类).
    pub fn digit(self) -> char {
        match self {
            Self::Basic => '1',
            Self::Thematic => '2',
            Self::Departmental => '3',
        }
    }
}

vocab!(
    /// 共享类型
    ShareType, "share.type", {
        /// 无条件共享
        Unconditional = ("unconditional", "无条件共享"),
        /// 有条件共享
        Conditional = ("conditional", "有条件共享"),
        /// 不予共享
        None = ("none", "不予共享"),
    }
);

vocab!(
    /// 共享方式
    ShareMethod, "share.method", {
        Api = ("api", "接口"),
        File = ("file", "文件"),
        Database = ("database", "数据库"),
    }
);

vocab!(
    /// 开放类型
    OpenType, "open.type", {
        /// 无条件开放
        Unconditional = ("unconditional", "无条件开放"),
        /// 有条件开放
        Conditional = ("conditional", "有条件开放"),
        /// 不予开放
        None = ("none", "不予开放"),
    }
);

vocab!(
    /// 更新周期
    UpdateCycle, "update_cycle", {
        Realtime = ("realtime", "实时"),
        Daily = ("daily", "每日"),
        Weekly = ("weekly", "每周"),
        Monthly = ("monthly", "每月"),
        Quarterly = ("quarterly", "每季度"),
        HalfYearly = ("half_yearly", "每半年"),
        Yearly = ("yearly", "每年"),
        Irregular = ("irregular", "不定期"),
    }
);

impl UpdateCycle {
    /// The EU frequency vocabulary term (for DCAT `dct:accrualPeriodicity`).
    pub fn eu_frequency(self) -> &'static str {
        match self {
            Self::Realtime => "CONT",
            Self::Daily => "DAILY",
            Self::Weekly => "WEEKLY",
            Self::Monthly => "MONTHLY",
            Self::Quarterly => "QUARTERLY",
            Self::HalfYearly => "ANNUAL_2",
            Self::Yearly => "ANNUAL",
            Self::Irregular => "IRREG",
        }
    }
}

vocab!(
    /// 安全级别 (GB/T 43697 数据分类分级): general data levels 1–4, important data, core data.
    SecurityLevel, "security_level", {
        General1 = ("general_1", "一般数据1级"),
        General2 = ("general_2", "一般数据2级"),
        General3 = ("general_3", "一般数据3级"),
        General4 = ("general_4", "一般数据4级"),
        /// 重要数据
        Important = ("important", "重要数据"),
        /// 核心数据
        Core = ("core", "核心数据"),
    }
);

vocab!(
    /// 资源格式分类
    FormatCategory, "format.category", {
        ElectronicFile = ("electronic_file", "电子文件"),
        Spreadsheet = ("spreadsheet", "电子表格"),
        Database = ("database", "数据库"),
        Image = ("image", "图形图像"),
        Stream = ("stream", "流媒体"),
        SelfDescribing = ("self_describing", "自描述格式"),
        Service = ("service", "服务接口"),
    }
);

vocab!(
    /// 信息项数据类型. The standard's letters map onto these: C→string, N→decimal (integer
    /// when it has no fraction), Y→money, D→date, T→datetime, L→boolean, M→text, B→binary,
    /// I→integer, F→decimal.
    DataType, "data_type", {
        String = ("string", "字符型"),
        Integer = ("integer", "整数型"),
        Decimal = ("decimal", "数值型"),
        Money = ("money", "货币型"),
        Boolean = ("boolean", "逻辑型"),
        Date = ("date", "日期型"),
        Datetime = ("datetime", "日期时间型"),
        Text = ("text", "文本型"),
        Binary = ("binary", "二进制"),
        /// A point (longitude, latitude), stored as WKB in CGCS2000.
        Point = ("point", "点位"),
        /// A point or polygon (WKT or GeoJSON geometry), stored as WKB in CGCS2000.
        Geometry = ("geometry", "空间几何"),
    }
);

impl DataType {
    /// `point` and `geometry`: WKB cells shown as WKT.
    pub fn is_spatial(self) -> bool {
        matches!(self, Self::Point | Self::Geometry)
    }

    /// Parse a code, a Chinese title, or the standard's one-letter type.
    pub fn parse_any(s: &str) -> Result<Self, FieldError> {
        match s.trim() {
            "C" | "c" => Ok(Self::String),
            "N" | "n" | "F" | "f" => Ok(Self::Decimal),
            "Y" | "y" => Ok(Self::Money),
            "D" | "d" => Ok(Self::Date),
            "T" | "t" => Ok(Self::Datetime),
            "L" | "l" => Ok(Self::Boolean),
            "M" | "m" => Ok(Self::Text),
            "B" | "b" => Ok(Self::Binary),
            "I" | "i" => Ok(Self::Integer),
            other => Self::parse(other),
        }
    }
}

vocab!(
    /// 敏感程度 of an information item.
    Sensitivity, "sensitivity", {
        None = ("none", "无"),
        /// 个人信息
        Personal = ("personal", "个人信息"),
        /// 敏感个人信息
        SensitivePersonal = ("sensitive_personal", "敏感个人信息"),
        /// 涉密/内部
        Confidential = ("confidential", "内部敏感"),
    }
);

vocab!(
    /// How an item is given to the public (open data).
    PublicTreatment, "public", {
        Excluded = ("excluded", "不开放"),
        Masked = ("masked", "脱敏开放"),
    }
);

vocab!(
    /// 资源状态
    ResourceState, "state", {
        Draft = ("draft", "草稿"),
        Published = ("published", "已发布"),
        Withdrawn = ("withdrawn", "已撤回"),
    }
);

/// A theme (主题) or basic library (基础库), with its two-digit number within its class.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Theme {
    pub code: &'static str,
    pub number: u8,
    pub name: &'static str,
    pub name_en: &'static str,
    /// `true` for the five basic libraries (基础库), which only basic resources use.
    pub basic: bool,
}

/// The basic libraries and the plan's themes.
pub const THEMES: &[Theme] = &[
    Theme { code: "population", number: 1, name: "人口", name_en: "Population", basic: true },
    Theme { code: "legal_entity", number: 2, name: "法人", name_en: "Legal entities", basic: true },
    Theme {
        code: "geospatial",
        number: 3,
        name: "自然资源和空间地理",
        name_en: "Natural resources and geospatial",
        basic: true,
    },
    Theme { code: "credit", number: 4, name: "社会信用", name_en: "Social credit", basic: true },
    Theme { code: "e_license", number: 5, name: "电子证照", name_en: "Electronic licenses", basic: true },
    Theme { code: "health", number: 1, name: "健康医疗", name_en: "Health care", basic: false },
    Theme { code: "finance", number: 2, name: "金融", name_en: "Finance", basic: false },
    Theme { code: "environment", number: 3, name: "生态环境", name_en: "Ecology and environment", basic: false },
    Theme { code: "tourism", number: 4, name: "旅游", name_en: "Tourism", basic: false },
    Theme { code: "transport", number: 5, name: "交通运输", name_en: "Transport", basic: false },
    Theme { code: "market", number: 6, name: "市场监管", name_en: "Market regulation", basic: false },
    Theme {
        code: "social_security", number: 7, name: "人社", name_en: "Employment and social security", basic: false
    },
    Theme { code: "education", number: 8, name: "教育", name_en: "Education", basic: false },
    Theme { code: "public_safety", number: 9, name: "公共安全", name_en: "Public safety", basic: false },
    Theme { code: "urban", number: 10, name: "城乡建设", name_en: "Urban and rural construction", basic: false },
    Theme { code: "culture", number: 11, name: "文化", name_en: "Culture", basic: false },
    Theme { code: "agriculture", number: 12, name: "农业农村", name_en: "Agriculture", basic: false },
];

pub fn theme(code: &str) -> Option<&'static Theme> {
    let c = code.trim();
    THEMES.iter().find(|t| t.code == c || t.name == c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vocabularies_parse_codes_and_titles() {
        assert_eq!(ShareType::parse("有条件共享").unwrap(), ShareType::Conditional);
        assert_eq!(ShareType::parse("conditional").unwrap(), ShareType::Conditional);
        let e = OpenType::parse("maybe").unwrap_err();
        assert_eq!(e.field, "open.type");
        assert!(e.message.contains("unconditional"));
        assert_eq!(DataType::parse_any("D").unwrap(), DataType::Date);
        assert_eq!(UpdateCycle::parse("每季度").unwrap().eu_frequency(), "QUARTERLY");
        for v in SecurityLevel::ALL {
            assert_eq!(SecurityLevel::parse(v.as_str()).unwrap(), *v);
            assert_eq!(SecurityLevel::parse(v.title()).unwrap(), *v);
        }
    }

    #[test]
    fn theme_codes_are_unique_and_numbered_within_class() {
        for (i, a) in THEMES.iter().enumerate() {
            for b in &THEMES[i + 1..] {
                assert_ne!(a.code, b.code);
                assert!(a.basic != b.basic || a.number != b.number, "{} and {}", a.code, b.code);
            }
        }
        assert_eq!(theme("人口").unwrap().code, "population");
    }
}
