//! Untrusted input ([`ResourceInput`]) and its parsing into a [`ResourceDraft`], which names
//! every problem with its field path at once.

use super::*;

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ClassificationInput {
    pub class: Option<String>,
    pub theme: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FormatInput {
    pub category: Option<String>,
    #[serde(rename = "type")]
    pub kind: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ShareInput {
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub conditions: Option<String>,
    pub method: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct OpenInput {
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub conditions: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ItemInput {
    pub name: Option<String>,
    pub title: Option<String>,
    pub data_type: Option<String>,
    pub length: Option<u32>,
    pub unit: Option<String>,
    pub required: Option<bool>,
    pub key: Option<bool>,
    pub sensitivity: Option<String>,
    pub validator: Option<String>,
    pub description: Option<String>,
    pub public: Option<String>,
}

/// A resource as received (create, or the merged result of a patch).
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ResourceInput {
    pub code: Option<String>,
    pub slug: Option<String>,
    pub name: Option<String>,
    #[serde(rename = "abstract")]
    pub summary: Option<String>,
    pub provider: Option<String>,
    pub classification: Option<ClassificationInput>,
    pub format: Option<FormatInput>,
    #[serde(default)]
    pub items: Vec<ItemInput>,
    pub share: Option<ShareInput>,
    pub open: Option<OpenInput>,
    pub update_cycle: Option<String>,
    pub publish_date: Option<String>,
    #[serde(default)]
    pub related: Vec<String>,
    pub security_level: Option<String>,
    #[serde(default)]
    pub tags: Vec<String>,
    pub license: Option<String>,
    #[serde(default)]
    pub regions: Vec<String>,
    pub contact: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub consistency: Vec<String>,
    /// Days of table history others may read (0–3650); default 30.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub history_days: Option<i64>,
    /// 质量规则: `{"rule": "range(nl, 0, 150)", "severity": "warn"}`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub quality_rules: Vec<crate::quality::QualityRuleInput>,
}

impl From<&ResourceContent> for ResourceInput {
    fn from(c: &ResourceContent) -> Self {
        let v = serde_json::to_value(c).unwrap_or_default();
        serde_json::from_value(v).unwrap_or_default()
    }
}

/// Parsed content whose code and slug may still need assigning.
#[derive(Debug, Clone, PartialEq)]
pub struct ResourceDraft {
    pub code: Option<ResourceCode>,
    pub slug: Option<Slug>,
    pub content: ResourceContentParts,
}

/// The parsed parts other than code and slug.
#[derive(Debug, Clone, PartialEq)]
pub struct ResourceContentParts {
    pub name: String,
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
    pub consistency: Vec<ConsistencyRule>,
    pub history_days: Option<u32>,
    pub quality_rules: Vec<crate::quality::QualityRule>,
}

impl ResourceDraft {
    /// Complete with the code and slug.
    pub fn complete(self, code: ResourceCode, slug: Slug) -> ResourceContent {
        let p = self.content;
        ResourceContent {
            code,
            slug,
            name: p.name,
            summary: p.summary,
            provider: p.provider,
            classification: p.classification,
            format: p.format,
            items: p.items,
            share: p.share,
            open: p.open,
            update_cycle: p.update_cycle,
            publish_date: p.publish_date,
            related: p.related,
            security_level: p.security_level,
            tags: p.tags,
            license: p.license,
            regions: p.regions,
            contact: p.contact,
            consistency: p.consistency,
            history_days: p.history_days,
            quality_rules: p.quality_rules,
        }
    }
}

fn at(field: &str, e: FieldError) -> FieldError {
    FieldError { field: field.to_string(), ..e }
}

fn required(field: &str, title: &str) -> FieldError {
    FieldError::new(field, "required", format!("{title}为必填项 / {field} is required"))
}

fn text(errs: &mut ValidationErrors, field: &str, title: &str, v: Option<&str>, max: usize) -> Option<String> {
    match v.map(str::trim).filter(|s| !s.is_empty()) {
        None => {
            errs.push(required(field, title));
            None
        }
        Some(s) if s.chars().count() > max => {
            errs.push(FieldError::new(
                field,
                "too_long",
                format!("{title}不能超过 {max} 个字符 / {field} is longer than {max} characters"),
            ));
            None
        }
        Some(s) => Some(s.to_string()),
    }
}

fn opt_text(errs: &mut ValidationErrors, field: &str, v: Option<&str>, max: usize) -> Option<String> {
    let s = v.map(str::trim).filter(|s| !s.is_empty())?;
    if s.chars().count() > max {
        errs.push(FieldError::new(
            field,
            "too_long",
            format!("不能超过 {max} 个字符 / {field} is longer than {max} characters"),
        ));
        return None;
    }
    Some(s.to_string())
}

fn vocab<T>(
    errs: &mut ValidationErrors,
    field: &str,
    v: Option<&str>,
    parse: fn(&str) -> Result<T, FieldError>,
    default: Option<T>,
) -> Option<T> {
    match v.map(str::trim).filter(|s| !s.is_empty()) {
        None => match default {
            Some(d) => Some(d),
            None => {
                errs.push(FieldError::new(field, "required", format!("{field} 为必填项 / {field} is required")));
                None
            }
        },
        Some(s) => errs.check(parse(s).map_err(|e| at(field, e))),
    }
}

impl ResourceDraft {
    /// Parse and check every field and every rule across fields.
    pub fn parse(input: &ResourceInput) -> Result<Self, ValidationErrors> {
        let mut errs = ValidationErrors::new();
        let code = input
            .code
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .and_then(|c| errs.check(ResourceCode::parse(c)));
        let slug =
            input.slug.as_deref().map(str::trim).filter(|s| !s.is_empty()).and_then(|s| errs.check(Slug::parse(s)));
        let name = text(&mut errs, "name", "资源名称", input.name.as_deref(), 200);
        let summary = text(&mut errs, "abstract", "资源摘要", input.summary.as_deref(), 5000);
        let provider = match input.provider.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
            None => {
                errs.push(required("provider", "资源提供方"));
                None
            }
            Some(p) => errs.check(DeptCode::parse(p).map_err(|e| at("provider", e))),
        };

        // Classification: class and theme must agree.
        let ci = input.classification.clone().unwrap_or_default();
        let class = vocab(&mut errs, "classification.class", ci.class.as_deref(), ResourceClass::parse, None);
        let theme_code = match ci.theme.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
            None => {
                errs.push(required("classification.theme", "主题分类"));
                None
            }
            Some(t) => match theme(t) {
                None => {
                    let known: Vec<String> = THEMES.iter().map(|t| format!("{} ({})", t.code, t.name)).collect();
                    errs.push(FieldError::new(
                        "classification.theme",
                        "unknown_theme",
                        format!("未知主题 \"{t}\"，可用：{} / unknown theme \"{t}\"", known.join("、")),
                    ));
                    None
                }
                Some(th) => Some(th),
            },
        };
        if let (Some(c), Some(th)) = (class, theme_code) {
            if c == ResourceClass::Basic && !th.basic {
                errs.push(FieldError::new(
                    "classification.theme",
                    "theme_class_mismatch",
                    format!("基础信息资源须归入五大基础库（人口、法人、自然资源和空间地理、社会信用、电子证照），\"{}\" 不是基础库 / basic resources belong to a basic library", th.name),
                ));
            }
            if c != ResourceClass::Basic && th.basic {
                errs.push(FieldError::new(
                    "classification.theme",
                    "theme_class_mismatch",
                    format!(
                        "\"{}\" 是基础库，仅用于基础信息资源 / \"{}\" is a basic library, for basic resources only",
                        th.name, th.code
                    ),
                ));
            }
        }
        let classification = match (class, theme_code) {
            (Some(class), Some(th)) => Some(Classification { class, theme: th.code.to_string() }),
            _ => None,
        };
        if let (Some(code), Some(cl)) = (&code, &classification)
            && !code.prefix().starts_with(&cl.code())
        {
            errs.push(FieldError::new(
                "code",
                "code_classification_mismatch",
                format!(
                    "信息资源代码 {code} 的分类代码应以 {} 开头 / the code's classification part must start with {}",
                    cl.code(),
                    cl.code()
                ),
            ));
        }

        let fi = input.format.clone().unwrap_or_default();
        let category = vocab(&mut errs, "format.category", fi.category.as_deref(), FormatCategory::parse, None);
        let kind = opt_text(&mut errs, "format.type", fi.kind.as_deref(), 50).map(|s| s.to_lowercase());
        let format = category.map(|category| Format { category, kind: kind.unwrap_or_default() });

        let items = parse_items(&mut errs, &input.items);

        let si = input.share.clone().unwrap_or_default();
        let share_kind = vocab(&mut errs, "share.type", si.kind.as_deref(), ShareType::parse, None);
        let share_conditions = opt_text(&mut errs, "share.conditions", si.conditions.as_deref(), 2000);
        let share_method =
            vocab(&mut errs, "share.method", si.method.as_deref(), ShareMethod::parse, Some(ShareMethod::Api));
        match (share_kind, &share_conditions) {
            (Some(ShareType::Conditional), None) => errs.push(FieldError::new(
                "share.conditions",
                "required",
                "有条件共享须写明共享条件 / conditional sharing needs its conditions",
            )),
            (Some(ShareType::None), None) => errs.push(FieldError::new(
                "share.conditions",
                "required",
                "不予共享须写明法律法规或政策依据 / 'none' sharing needs its legal or policy basis",
            )),
            _ => {}
        }
        let oi = input.open.clone().unwrap_or_default();
        let open_kind = vocab(&mut errs, "open.type", oi.kind.as_deref(), OpenType::parse, None);
        let open_conditions = opt_text(&mut errs, "open.conditions", oi.conditions.as_deref(), 2000);
        if open_kind == Some(OpenType::Conditional) && open_conditions.is_none() {
            errs.push(FieldError::new(
                "open.conditions",
                "required",
                "有条件开放须写明开放条件 / conditional opening needs its conditions",
            ));
        }
        let update_cycle = vocab(&mut errs, "update_cycle", input.update_cycle.as_deref(), UpdateCycle::parse, None);
        let security_level = vocab(
            &mut errs,
            "security_level",
            input.security_level.as_deref(),
            SecurityLevel::parse,
            Some(SecurityLevel::General2),
        );

        // Rules across fields.
        if let (Some(level), Some(open)) = (security_level, open_kind)
            && matches!(level, SecurityLevel::Important | SecurityLevel::Core)
            && open != OpenType::None
        {
            errs.push(FieldError::new(
                "open.type",
                "cannot_open_important_data",
                format!("{}不得开放，开放类型须为“不予开放” / {} data cannot be opened", level.title(), level.as_str()),
            ));
        }
        if open_kind == Some(OpenType::Unconditional) {
            for (i, item) in items.iter().enumerate() {
                if item.sensitivity == Sensitivity::SensitivePersonal && item.public.is_none() {
                    errs.push(FieldError::new(
                        format!("items[{i}].public"),
                        "sensitive_item_must_be_protected",
                        format!(
                            "无条件开放的资源中，敏感个人信息项“{}”须标注为不开放（excluded）或脱敏开放（masked）/ sensitive personal item {} must be excluded or masked for the public",
                            item.title, item.name
                        ),
                    ));
                }
            }
        }

        let publish_date = match input.publish_date.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
            None => None,
            Some(d) => match NaiveDate::parse_from_str(d, "%Y-%m-%d") {
                Ok(d) => Some(d),
                Err(_) => {
                    errs.push(FieldError::new(
                        "publish_date",
                        "invalid_date",
                        format!("发布日期应为 YYYY-MM-DD，收到 \"{d}\" / publish_date must be YYYY-MM-DD"),
                    ));
                    None
                }
            },
        };
        let mut related = Vec::new();
        for (i, r) in input.related.iter().enumerate() {
            if let Some(c) = errs.check(ResourceCode::parse(r).map_err(|e| at(&format!("related[{i}]"), e))) {
                related.push(c);
            }
        }
        let mut tags: Vec<String> = Vec::new();
        for (i, t) in input.tags.iter().enumerate() {
            let t = t.trim();
            if t.is_empty() {
                continue;
            }
            if t.chars().count() > 50 || t.chars().any(char::is_control) {
                errs.push(FieldError::new(
                    format!("tags[{i}]"),
                    "invalid_tag",
                    "标签须为 1–50 个字符 / tags are 1–50 characters",
                ));
            } else if !tags.iter().any(|x| x == t) {
                tags.push(t.to_string());
            }
        }
        if tags.len() > 30 {
            errs.push(FieldError::new("tags", "too_many", "标签最多 30 个 / at most 30 tags"));
        }
        let mut regions = Vec::new();
        for (i, r) in input.regions.iter().enumerate() {
            if let Some(c) = errs.check(RegionCode::parse(r).map_err(|e| at(&format!("regions[{i}]"), e)))
                && !regions.contains(&c)
            {
                regions.push(c);
            }
        }
        let license = opt_text(&mut errs, "license", input.license.as_deref(), 200);
        let contact = opt_text(&mut errs, "contact", input.contact.as_deref(), 200);
        let mut consistency = Vec::new();
        for (i, spec) in input.consistency.iter().enumerate() {
            let field = format!("consistency[{i}]");
            let Some(rule) = errs.check(ConsistencyRule::parse(spec).map_err(|e| at(&field, e))) else { continue };
            let find = |n: &ItemName| items.iter().find(|it| &it.name == n);
            let (id, other, want) = match &rule {
                ConsistencyRule::IdCardBirthDate { id, date } => (id, date, Some(DataType::Date)),
                ConsistencyRule::IdCardSex { id, sex } => (id, sex, None),
            };
            match (find(id), find(other)) {
                (Some(i1), Some(i2)) => {
                    if i1.validator != Some(Validator::IdCard) {
                        errs.push(FieldError::new(
                            &field,
                            "invalid_rule",
                            format!("{id} 须使用 id_card 校验规则 / {id} must have the id_card validator"),
                        ));
                    }
                    if want.is_some_and(|w| i2.data_type != w) {
                        errs.push(FieldError::new(
                            &field,
                            "invalid_rule",
                            format!("{other} 须为日期型 / {other} must be a date item"),
                        ));
                    }
                }
                _ => errs.push(FieldError::new(
                    &field,
                    "unknown_item",
                    format!("规则引用了不存在的信息项 / the rule names an unknown item: {}", rule.to_spec()),
                )),
            }
            consistency.push(rule);
        }

        let history_days = match input.history_days {
            None => None,
            Some(d) if (0..=3650).contains(&d) => Some(d as u32),
            Some(_) => {
                errs.push(FieldError::new(
                    "history_days",
                    "out_of_range",
                    "历史版本保留天数须在 0–3650 之间 / history_days must be 0–3650",
                ));
                None
            }
        };

        let quality_rules = match crate::quality::parse_rules(&input.quality_rules, &items) {
            Ok(r) => r,
            Err(e) => {
                for f in e.0 {
                    errs.push(f);
                }
                Vec::new()
            }
        };

        errs.into_result()?;
        Ok(Self {
            code,
            slug,
            content: ResourceContentParts {
                name: name.expect("checked"),
                summary: summary.expect("checked"),
                provider: provider.expect("checked"),
                classification: classification.expect("checked"),
                format: format.expect("checked"),
                items,
                share: Share {
                    kind: share_kind.expect("checked"),
                    conditions: share_conditions,
                    method: share_method.expect("checked"),
                },
                open: Open { kind: open_kind.expect("checked"), conditions: open_conditions },
                update_cycle: update_cycle.expect("checked"),
                publish_date,
                related,
                security_level: security_level.expect("checked"),
                tags,
                license,
                regions,
                contact,
                consistency,
                history_days,
                quality_rules,
            },
        })
    }
}

fn parse_items(errs: &mut ValidationErrors, inputs: &[ItemInput]) -> Vec<InfoItem> {
    let mut items: Vec<InfoItem> = Vec::new();
    if inputs.len() > 500 {
        errs.push(FieldError::new("items", "too_many", "信息项最多 500 个 / at most 500 items"));
        return items;
    }
    for (i, it) in inputs.iter().enumerate() {
        let f = |s: &str| format!("items[{i}].{s}");
        let name = match it.name.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
            None => {
                errs.push(FieldError::new(f("name"), "required", "信息项名称为必填项 / item name is required"));
                None
            }
            Some(n) => errs.check(ItemName::parse(n).map_err(|e| at(&f("name"), e))),
        };
        let title = text(errs, &f("title"), "信息项中文名称", it.title.as_deref(), 100);
        let data_type = match it.data_type.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
            None => Some(DataType::String),
            Some(t) => errs.check(DataType::parse_any(t).map_err(|e| at(&f("data_type"), e))),
        };
        let sensitivity =
            vocab(errs, &f("sensitivity"), it.sensitivity.as_deref(), Sensitivity::parse, Some(Sensitivity::None));
        let validator = match it.validator.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
            None => None,
            Some(v) => errs.check(Validator::parse(v).map_err(|e| at(&f("validator"), e))),
        };
        let public = match it.public.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
            None => None,
            Some(v) => errs.check(PublicTreatment::parse(v).map_err(|e| at(&f("public"), e))),
        };
        if let (Some(v), Some(t)) = (&validator, data_type)
            && !v.fits(t)
        {
            errs.push(FieldError::new(
                f("validator"),
                "validator_type_mismatch",
                format!(
                    "校验规则 {} 不适用于 {} 类型 / validator {} does not apply to {}",
                    v.to_spec(),
                    t.title(),
                    v.to_spec(),
                    t.as_str()
                ),
            ));
        }
        if let Some(l) = it.length
            && (l == 0 || l > 1_000_000)
        {
            errs.push(FieldError::new(
                f("length"),
                "invalid_length",
                "长度须在 1–1000000 之间 / length must be 1–1000000",
            ));
        }
        let unit = opt_text(errs, &f("unit"), it.unit.as_deref(), 20);
        let description = opt_text(errs, &f("description"), it.description.as_deref(), 1000);
        if let (Some(n), Some(t)) = (&name, &title) {
            if items.iter().any(|x| &x.name == n) {
                errs.push(FieldError::new(
                    f("name"),
                    "duplicate_item",
                    format!("信息项名称重复：{n} / duplicate item name {n}"),
                ));
            }
            if items.iter().any(|x| &x.title == t) {
                errs.push(FieldError::new(
                    f("title"),
                    "duplicate_item",
                    format!("信息项中文名称重复：{t} / duplicate item title {t}"),
                ));
            }
        }
        let key = it.key.unwrap_or(false);
        if let (Some(name), Some(title), Some(data_type), Some(sensitivity)) = (name, title, data_type, sensitivity) {
            items.push(InfoItem {
                name,
                title,
                data_type,
                length: it.length,
                unit,
                // A key item is always required.
                required: it.required.unwrap_or(false) || key,
                key,
                sensitivity,
                validator,
                description,
                public,
            });
        }
    }
    items
}
