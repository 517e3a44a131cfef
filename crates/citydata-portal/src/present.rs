//! Presentation: how the platform's codes, times, filters and masks read on a page, in the
//! page's language. No zh page shows a raw code (`id_card`, `WRITE`, `success`), an epoch
//! millisecond or a filter in the query language; the API keeps the codes.

use crate::i18n::Lang;
use chrono::{DateTime, Utc};
use citydata_domain::cast::local_offset;
use citydata_domain::filter::{CmpOp, Filter, Literal};
use citydata_domain::mask::MaskSpec;
use citydata_domain::resource::{InfoItem, Validator};
use citydata_domain::vocab::{self, Sensitivity};
use serde_json::{Value, json};

fn pick(lang: Lang, zh: &str, en: &str) -> String {
    if lang == Lang::Zh { zh.to_string() } else { en.to_string() }
}

/// A mask by its name: `id_card` → 身份证号（仅显示地区码）.
pub fn mask_title(spec: &str, lang: Lang) -> String {
    let Ok(m) = MaskSpec::parse(spec) else { return spec.to_string() };
    match m {
        MaskSpec::Keep { first, last } => {
            if lang == Lang::Zh {
                format!("保留前 {first} 位、后 {last} 位")
            } else {
                format!("Keep the first {first} and last {last} characters")
            }
        }
        MaskSpec::ChineseName => pick(lang, "姓名（仅显示姓氏）", "Name (surname only)"),
        MaskSpec::IdCard => pick(lang, "身份证号（仅显示地区码）", "ID number (region only)"),
        MaskSpec::Mobile => pick(lang, "手机号（隐藏中间四位）", "Mobile (middle hidden)"),
        MaskSpec::Address => pick(lang, "地址（保留到区县）", "Address (to the district)"),
        MaskSpec::BankCard => pick(lang, "银行卡号（仅显示后四位）", "Bank card (last 4 digits)"),
        MaskSpec::Email => pick(lang, "电子邮箱（隐藏用户名）", "Email (name hidden)"),
        MaskSpec::DateToYear => pick(lang, "日期（仅显示年份）", "Date (year only)"),
        MaskSpec::NumberRange { width } => {
            if lang == Lang::Zh {
                format!("数值区间（每 {width} 一档）")
            } else {
                format!("Number range (width {width})")
            }
        }
        MaskSpec::Null => pick(lang, "置空", "Blank"),
        MaskSpec::Redact => pick(lang, "全部遮盖", "Hidden"),
        MaskSpec::Pseudonym => pick(lang, "假名化（可关联，不可还原）", "Pseudonym (joinable)"),
        MaskSpec::Grid { meters } => {
            if lang == Lang::Zh {
                format!("位置（归并到 {meters} 米网格）")
            } else {
                format!("Location (snapped to a {meters} m grid)")
            }
        }
        MaskSpec::District => pick(lang, "位置（归并到所在区县的中心）", "Location (snapped to its district)"),
        MaskSpec::Clear => pick(lang, "不脱敏", "Not masked"),
    }
}

/// The masks a grant may put on `item`, the server's own vocabulary (`MaskSpec::parse`
/// accepts each value): its default mask first, then the others that fit the item's type;
/// "not masked" only where the item may be released in clear to this grantee (never a
/// sensitive personal item to the public). The default is selected for personal items.
pub fn mask_options(item: &InfoItem, public: bool, chosen: Option<&str>, lang: Lang) -> Vec<Value> {
    let default = MaskSpec::default_for(item);
    let mut specs = vec![default.clone()];
    for m in [
        MaskSpec::ChineseName,
        MaskSpec::IdCard,
        MaskSpec::Mobile,
        MaskSpec::Address,
        MaskSpec::BankCard,
        MaskSpec::Email,
        MaskSpec::DateToYear,
        MaskSpec::NumberRange { width: 10 },
        MaskSpec::Grid { meters: 1000 },
        MaskSpec::District,
        MaskSpec::Pseudonym,
        MaskSpec::Redact,
        MaskSpec::Null,
    ] {
        if m.fits(item.data_type) && !specs.contains(&m) && m.strength() >= default.strength().min(2) {
            specs.push(m);
        }
    }
    let personal = item.sensitivity != Sensitivity::None;
    let clear_allowed = !(public && personal);
    if clear_allowed {
        specs.push(MaskSpec::Clear);
    }
    let selected = match chosen {
        Some(c) => c.to_string(),
        None if personal => default.to_spec(),
        None => MaskSpec::Clear.to_spec(),
    };
    specs
        .iter()
        .map(|m| {
            let v = m.to_spec();
            json!({"value": v, "label": mask_title(&v, lang), "selected": v == selected})
        })
        .collect()
}

/// A quality rule or check by name (`uscc` → 统一社会信用代码校验).
pub fn rule_title(code: &str, lang: Lang) -> String {
    let (zh, en) = match code {
        "required" => ("必填项为空", "Required value missing"),
        "type" => ("类型不符", "Wrong type"),
        "length" => ("超出长度", "Too long"),
        "regex" => ("格式不符", "Pattern not matched"),
        "id_card" => ("公民身份号码校验", "ID number check"),
        "uscc" => ("统一社会信用代码校验", "Unified social credit code check"),
        "org_code" => ("组织机构代码校验", "Organization code check"),
        "region_code" => ("行政区划代码校验", "Region code check"),
        "mobile" => ("手机号码校验", "Mobile number check"),
        "bank_card" => ("银行卡号校验", "Bank card check"),
        "email" => ("电子邮箱校验", "Email check"),
        "enum" => ("取值不在允许范围", "Value not allowed"),
        "range" => ("数值超出范围", "Out of range"),
        "unique_key" => ("主键重复", "Duplicate key"),
        "id_card_birth_date" => ("身份证号与出生日期不一致", "ID number and birth date disagree"),
        "id_card_sex" => ("身份证号与性别不一致", "ID number and sex disagree"),
        _ => return code.replace('_', " "),
    };
    pick(lang, zh, en)
}

/// An item's validator as words (`enum:是|否` → 取值：是、否).
pub fn validator_title(v: &Validator, lang: Lang) -> String {
    match v {
        Validator::IdCard => rule_title("id_card", lang),
        Validator::Uscc => rule_title("uscc", lang),
        Validator::OrgCode => rule_title("org_code", lang),
        Validator::RegionCode => rule_title("region_code", lang),
        Validator::Mobile => rule_title("mobile", lang),
        Validator::BankCard => rule_title("bank_card", lang),
        Validator::Email => rule_title("email", lang),
        Validator::Regex(_) => pick(lang, "格式（正则表达式）", "Pattern (regular expression)"),
        Validator::Enum(vals) => {
            if lang == Lang::Zh {
                format!("取值：{}", vals.join("、"))
            } else {
                format!("One of: {}", vals.join(", "))
            }
        }
        Validator::Range { min, max } => {
            if lang == Lang::Zh {
                format!("取值范围 {min}–{max}")
            } else {
                format!("Between {min} and {max}")
            }
        }
        Validator::Crs(c) => {
            if lang == Lang::Zh {
                format!("坐标系：{}（入库转换为 CGCS2000）", c.title_zh())
            } else {
                format!("Coordinates in {} (converted to CGCS2000)", c.code())
            }
        }
    }
}

/// A table operation of the Delta log (`WRITE`, `MERGE`, …).
pub fn operation_title(op: &str, lang: Lang) -> String {
    let (zh, en) = match op {
        "WRITE" => ("写入", "Write"),
        "MERGE" => ("按主键更新", "Merge by key"),
        "DELETE" => ("删除", "Delete"),
        "CREATE TABLE" | "CREATE OR REPLACE TABLE" => ("建表", "Create table"),
        "SET TBLPROPERTIES" => ("设置表属性", "Set properties"),
        "VACUUM START" | "VACUUM END" => ("清理旧文件", "Vacuum"),
        "OPTIMIZE" => ("合并小文件", "Optimize"),
        "UPDATE" => ("更新", "Update"),
        "RESTORE" => ("恢复", "Restore"),
        _ => return op.to_lowercase(),
    };
    pick(lang, zh, en)
}

/// An ingest's write mode.
pub fn mode_title(mode: &str, lang: Lang) -> String {
    let (zh, en) = match mode {
        "append" => ("追加", "Append"),
        "replace" => ("整表替换", "Replace the whole table"),
        "upsert" => ("按主键更新", "Update by key"),
        "delete" => ("按主键删除", "Delete by key"),
        _ => return mode.to_string(),
    };
    pick(lang, zh, en)
}

/// An audit entry's outcome.
pub fn outcome_title(o: &str, lang: Lang) -> String {
    let (zh, en) = match o {
        "success" => ("成功", "Succeeded"),
        "denied" => ("被拒绝", "Denied"),
        "failure" => ("失败", "Failed"),
        _ => return o.to_string(),
    };
    pick(lang, zh, en)
}

/// An audit action in words: the known families, else the code itself.
pub fn action_title(action: &str, lang: Lang) -> String {
    let (zh, en) = match action {
        "auth.login" => ("登录", "Sign-in"),
        "auth.logout" => ("退出", "Sign-out"),
        "auth.login_failed" => ("登录失败", "Failed sign-in"),
        "auth.register" | "user.register" => ("注册", "Registration"),
        "token.create" => ("创建令牌", "Token created"),
        "token.revoke" => ("撤销令牌", "Token revoked"),
        "department.create" => ("新建部门", "Department created"),
        "user.create" => ("新建用户", "User created"),
        "resource.create" => ("新建资源", "Resource created"),
        "resource.update" => ("修改资源", "Resource edited"),
        "resource.publish" => ("发布资源", "Resource published"),
        "resource.withdraw" => ("撤回资源", "Resource withdrawn"),
        "resource.delete" => ("删除资源", "Resource deleted"),
        "data.ingest" => ("上传数据", "Data uploaded"),
        "data.read" | "data.rows" | "data.read_rows" => ("读取数据", "Data read"),
        "data.read_changes" => ("读取变更", "Changes read"),
        "data.erase" => ("擦除历史数据", "History erased"),
        "file.upload" => ("发布文件", "File published"),
        "file.download" => ("下载文件", "File downloaded"),
        "file.list" => ("查看文件列表", "File list read"),
        "file.delete" => ("删除文件", "File deleted"),
        "resource.feedback" => ("提交纠错", "Correction reported"),
        "iot.device_offline" => ("设备离线", "Device offline"),
        "iot.device_type.create" => ("新建设备类型", "Device type created"),
        "iot.device_type.update" => ("修改设备类型", "Device type edited"),
        "iot.device.create" => ("登记设备", "Device registered"),
        "iot.device.update" => ("修改设备", "Device edited"),
        "iot.stream.create" => ("新建数据流", "Stream created"),
        "iot.stream.update" => ("修改数据流", "Stream edited"),
        "grant.narrowed" => ("授权范围收窄", "Grant narrowed"),
        "grant.renew_request" => ("申请续期", "Renewal requested"),
        "subscription.create" => ("订阅数据更新", "Subscribed"),
        "subscription.delete" => ("取消订阅", "Unsubscribed"),
        "data.export" => ("下载数据", "Data downloaded"),
        "data.aggregate" => ("统计数据", "Data aggregated"),
        "data.sql" | "sql.query" => ("SQL 查询", "SQL query"),
        "data.denied" | "gate.deny" => ("读取被拒", "Read denied"),
        "request.create" => ("提交申请", "Application submitted"),
        "request.approve" => ("批准申请", "Application approved"),
        "request.reject" => ("驳回申请", "Application refused"),
        "request.withdraw" => ("撤回申请", "Application withdrawn"),
        "request.comment" => ("申请留言", "Comment"),
        "grant.create" => ("授权", "Grant created"),
        "grant.revoke" => ("撤销授权", "Grant revoked"),
        "feedback.submit" => ("提交纠错", "Correction reported"),
        "catalog.import" => ("导入目录", "Catalog imported"),
        "catalog.export" => ("导出目录", "Catalog exported"),
        "webhook.create" => ("登记推送地址", "Webhook registered"),
        "webhook.delete" => ("删除推送地址", "Webhook removed"),
        "audit.verify" => ("校验审计链", "Audit chain verified"),
        _ => {
            // A family we do not list: its first part in words when known.
            let fam = action.split('.').next().unwrap_or(action);
            let f = match (fam, lang) {
                ("data", Lang::Zh) => "数据操作",
                ("resource", Lang::Zh) => "资源操作",
                ("request", Lang::Zh) => "申请操作",
                ("grant", Lang::Zh) => "授权操作",
                ("auth", Lang::Zh) => "登录操作",
                ("user", Lang::Zh) => "用户操作",
                ("token", Lang::Zh) => "令牌操作",
                ("webhook", Lang::Zh) => "推送操作",
                ("ingest", Lang::Zh) => "汇聚操作",
                ("quality", Lang::Zh) => "质量操作",
                ("feedback", Lang::Zh) => "纠错操作",
                ("audit", Lang::Zh) => "审计操作",
                ("catalog", Lang::Zh) => "目录操作",
                ("department", Lang::Zh) => "部门操作",
                (_, Lang::Zh) => "其他操作",
                _ => return action.to_string(),
            };
            return f.to_string();
        }
    };
    pick(lang, zh, en)
}

/// An instant in the platform's zone, `2026-12-03 16:48` (RFC 3339 text or epoch
/// milliseconds in); anything else unchanged.
pub fn local_datetime(v: &Value) -> String {
    let t: Option<DateTime<Utc>> = match v {
        Value::Number(n) => n.as_i64().and_then(DateTime::from_timestamp_millis),
        Value::String(s) => DateTime::parse_from_rfc3339(s).ok().map(|t| t.with_timezone(&Utc)),
        _ => None,
    };
    match (t, v) {
        (Some(t), _) => t.with_timezone(&local_offset()).format("%Y-%m-%d %H:%M").to_string(),
        (None, Value::String(s)) => s.clone(),
        (None, Value::Null) => String::new(),
        (None, other) => other.to_string(),
    }
}

/// The local date of an instant (RFC 3339 text or epoch milliseconds).
pub fn local_date(v: &Value) -> String {
    let s = local_datetime(v);
    s.get(..10).map(str::to_string).unwrap_or(s)
}

/// A row filter in words, with item titles and plain values: `qx = '海陵区'` → `区县 = 海陵区`,
/// `nl BETWEEN 18 AND 60` → `年龄 介于 18 和 60 之间`. Text that does not parse against the
/// items is shown as written.
pub fn filter_text(text: &str, items: &[InfoItem], lang: Lang) -> String {
    match Filter::parse(text, items) {
        Ok(f) => render_filter(&f, items, lang, true),
        Err(_) => text.to_string(),
    }
}

fn render_filter(f: &Filter, items: &[InfoItem], lang: Lang, top: bool) -> String {
    let title = |n: &citydata_domain::resource::ItemName| {
        items.iter().find(|i| &i.name == n).map(|i| i.title.clone()).unwrap_or_else(|| n.to_string())
    };
    let lit = |l: &Literal| match l {
        Literal::Str(s) => s.clone(),
        Literal::Date(d) => d.to_string(),
        Literal::DateTime(t) => local_datetime(&Value::String(t.to_rfc3339())),
        Literal::Bool(b) => pick(lang, if *b { "是" } else { "否" }, if *b { "yes" } else { "no" }),
        other => other.to_string(),
    };
    let zh = lang == Lang::Zh;
    let s = match f {
        Filter::And(a, b) => {
            format!(
                "{}{}{}",
                render_filter(a, items, lang, false),
                if zh { " 且 " } else { " and " },
                render_filter(b, items, lang, false)
            )
        }
        Filter::Or(a, b) => {
            format!(
                "{}{}{}",
                render_filter(a, items, lang, false),
                if zh { " 或 " } else { " or " },
                render_filter(b, items, lang, false)
            )
        }
        Filter::Not(a) => format!("{}{}", if zh { "非 " } else { "not " }, render_filter(a, items, lang, false)),
        Filter::Cmp { item, op, value } => {
            let op = match op {
                CmpOp::Eq => "=",
                CmpOp::NotEq => "≠",
                CmpOp::Lt => "<",
                CmpOp::LtEq => "≤",
                CmpOp::Gt => ">",
                CmpOp::GtEq => "≥",
            };
            format!("{} {op} {}", title(item), lit(value))
        }
        Filter::In { item, values, negated } => {
            let vs: Vec<String> = values.iter().map(lit).collect();
            match (zh, negated) {
                (true, false) => format!("{} 属于 {}", title(item), vs.join("、")),
                (true, true) => format!("{} 不属于 {}", title(item), vs.join("、")),
                (false, false) => format!("{} is one of {}", title(item), vs.join(", ")),
                (false, true) => format!("{} is none of {}", title(item), vs.join(", ")),
            }
        }
        Filter::Between { item, low, high } => {
            if zh {
                format!("{} 介于 {} 和 {} 之间", title(item), lit(low), lit(high))
            } else {
                format!("{} between {} and {}", title(item), lit(low), lit(high))
            }
        }
        Filter::IsNull { item, negated } => match (zh, negated) {
            (true, false) => format!("{} 为空", title(item)),
            (true, true) => format!("{} 不为空", title(item)),
            (false, false) => format!("{} is empty", title(item)),
            (false, true) => format!("{} is not empty", title(item)),
        },
        Filter::Within { item, bbox: b } => {
            let area = format!("{}–{}°E, {}–{}°N", b.min_lon, b.max_lon, b.min_lat, b.max_lat);
            if zh { format!("{} 位于 {area} 内", title(item)) } else { format!("{} within {area}", title(item)) }
        }
        Filter::WithinRegion { item, code, .. } => {
            if zh {
                format!("{} 位于行政区划 {code} 内", title(item))
            } else {
                format!("{} within region {code}", title(item))
            }
        }
        Filter::Distance { item, lon, lat, meters, inclusive } => {
            let le = if *inclusive { "≤" } else { "<" };
            if zh {
                format!("{} 距 ({lon}, {lat}) {le} {meters} 米", title(item))
            } else {
                format!("{} {le} {meters} m from ({lon}, {lat})", title(item))
            }
        }
    };
    if top
        || matches!(
            f,
            Filter::Cmp { .. }
                | Filter::In { .. }
                | Filter::Between { .. }
                | Filter::IsNull { .. }
                | Filter::Within { .. }
                | Filter::WithinRegion { .. }
                | Filter::Distance { .. }
        )
    {
        s
    } else {
        format!("（{s}）")
    }
}

fn has_cjk(s: &str) -> bool {
    s.chars().any(|c| ('\u{4e00}'..='\u{9fff}').contains(&c) || ('\u{3000}'..='\u{303f}').contains(&c))
}

/// The page's half of a bilingual message (`中文 / English`, the API's style): Chinese pages
/// keep the parts in Chinese, English pages the parts without Chinese. A message in one
/// language only is returned whole.
pub fn one_language(text: &str, lang: Lang) -> String {
    // Split at "/ " after a space or a Chinese character or mark (`错误 / wrong`, `。/ I`),
    // never inside a path or a date (`a/b`, `2024/1/5`).
    let mut parts: Vec<&str> = Vec::new();
    let mut start = 0;
    let mut prev: Option<char> = None;
    let mut depth = 0i32;
    for (i, c) in text.char_indices() {
        // Inside brackets (`（联系方式 / contact: …）`) the halves belong together.
        match c {
            '（' | '(' => depth += 1,
            '）' | ')' => depth -= 1,
            _ => {}
        }
        if c == '/'
            && depth <= 0
            && text[i + 1..].starts_with(' ')
            && prev.is_some_and(|p| p == ' ' || has_cjk(&p.to_string()) || "》”）".contains(p))
        {
            parts.push(text[start..i].trim());
            start = i + 1;
        }
        prev = Some(c);
    }
    parts.push(text[start..].trim());
    if parts.len() < 2 {
        return text.to_string();
    }
    let picked: Vec<String> = match lang {
        Lang::Zh => parts
            .iter()
            .filter(|p| has_cjk(p))
            .map(|p| {
                // "filter at character 3: 缺少右括号" → "缺少右括号"
                if has_cjk(p.split(": ").next().unwrap_or(p)) {
                    p.to_string()
                } else {
                    p.split_once(": ").map(|(_, b)| b.to_string()).unwrap_or_else(|| p.to_string())
                }
            })
            .collect(),
        Lang::En => parts
            .iter()
            .map(|p| {
                if has_cjk(p) {
                    p.rsplit_once("：").map(|(_, b)| b).unwrap_or("").trim().to_string()
                } else {
                    p.to_string()
                }
            })
            .filter(|p| !p.is_empty() && !has_cjk(p))
            .collect(),
    };
    if picked.is_empty() { text.to_string() } else { picked.join(if lang == Lang::Zh { "：" } else { ": " }) }
}

/// Every closed vocabulary as an ordered list of `{value, label}`, in the order of meaning the
/// domain declares (实时, 每日, 每周, … — not by code), for `<select>`s.
pub fn options(lang: Lang) -> Value {
    let labels = crate::public::labels(lang);
    macro_rules! list {
        ($t:ty, $key:literal) => {{
            <$t>::ALL
                .iter()
                .map(|v| json!({"value": v.as_str(), "label": labels[$key][v.as_str()]}))
                .collect::<Vec<_>>()
        }};
    }
    let themes: Vec<Value> = vocab::THEMES
        .iter()
        .map(|t| json!({"value": t.code, "label": if lang == Lang::Zh { t.name } else { t.name_en }}))
        .collect();
    json!({
        "class": list!(vocab::ResourceClass, "class"), "share": list!(vocab::ShareType, "share"),
        "method": list!(vocab::ShareMethod, "method"), "open": list!(vocab::OpenType, "open"),
        "cycle": list!(vocab::UpdateCycle, "cycle"), "format": list!(vocab::FormatCategory, "format"),
        "data_type": list!(vocab::DataType, "data_type"), "sensitivity": list!(vocab::Sensitivity, "sensitivity"),
        "theme": themes,
    })
}

/// Common English search words and their Chinese catalog terms.
const SYNONYMS: &[(&str, &str)] = &[
    ("enterprise", "企业"),
    ("enterprises", "企业"),
    ("company", "企业"),
    ("companies", "企业"),
    ("business", "企业"),
    ("population", "人口"),
    ("people", "人口"),
    ("bus", "公交"),
    ("transport", "交通"),
    ("traffic", "交通"),
    ("hospital", "医院"),
    ("hospitals", "医院"),
    ("health", "卫生"),
    ("school", "学校"),
    ("schools", "学校"),
    ("education", "教育"),
    ("planning", "规划"),
    ("land", "土地"),
    ("environment", "环境"),
    ("weather", "气象"),
    ("air", "空气"),
    ("water", "水"),
    ("credit", "信用"),
    ("license", "许可"),
    ("price", "价格"),
    ("tourism", "旅游"),
    ("employment", "就业"),
    ("pension", "社保"),
];

/// `text` with the English words that name a theme or a common term replaced by their Chinese
/// catalog terms (theme names from the theme table, the rest from [`SYNONYMS`]), so that an
/// English query finds Chinese entries; other words are kept.
pub fn with_chinese_synonyms(text: &str) -> String {
    let lower = text.to_lowercase();
    let words: Vec<&str> = lower.split(|c: char| !c.is_ascii_alphanumeric()).filter(|w| !w.is_empty()).collect();
    if words.is_empty() {
        return text.to_string();
    }
    let mut out: Vec<String> = Vec::new();
    let mut changed = false;
    for w in &words {
        let theme = vocab::THEMES.iter().find(|t| {
            t.name_en.to_lowercase().split(' ').any(|e| e.len() > 3 && (e == *w || e.trim_end_matches('s') == *w))
        });
        let term = SYNONYMS.iter().find(|(en, _)| en == w).map(|(_, zh)| *zh).or(theme.map(|t| t.name));
        match term {
            Some(zh) => {
                changed = true;
                if !out.iter().any(|o| o == zh) {
                    out.push(zh.to_string());
                }
            }
            None => out.push(w.to_string()),
        }
    }
    if changed { out.join(" ") } else { text.to_string() }
}

/// The quality of the whole table, not of the last upload: the rows now in it (as the caller
/// may read them), and the rows set aside and failures per rule over the uploads that built
/// the current table (back to the last whole-table replacement).
pub fn table_quality(ingests: &[citydata_store::IngestRecord], rows: Option<u64>) -> Option<Value> {
    let mut read = 0u64;
    let mut quarantined = 0u64;
    let mut uploads = 0u64;
    let mut last = None;
    let mut failures: std::collections::BTreeMap<(String, String), u64> = Default::default();
    for i in ingests {
        let Some(r) = i.report.as_ref().filter(|_| i.state.as_str() == "committed") else { continue };
        uploads += 1;
        last.get_or_insert(i.created_at);
        read += r["rows_read"].as_u64().unwrap_or(0);
        quarantined += r["rows_quarantined"].as_u64().unwrap_or(0);
        for f in r["failures"].as_array().into_iter().flatten() {
            let title = f["title"].as_str().or(f["item"].as_str()).unwrap_or("").to_string();
            *failures.entry((f["rule"].as_str().unwrap_or("").to_string(), title)).or_default() +=
                f["count"].as_u64().unwrap_or(0);
        }
        if i.mode == "replace" {
            break;
        }
    }
    if uploads == 0 {
        return None;
    }
    let mut failures: Vec<_> = failures.into_iter().collect();
    failures.sort_by_key(|f| std::cmp::Reverse(f.1));
    Some(json!({
        "rows": rows, "rows_read": read, "rows_quarantined": quarantined, "uploads": uploads, "last": last,
        "failures": failures.iter().map(|((rule, title), n)| json!({"rule": rule, "title": title, "count": n})).collect::<Vec<_>>(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use citydata_domain::resource::ItemName;
    use citydata_domain::vocab::DataType;

    fn item(name: &str, title: &str, t: DataType, s: Sensitivity) -> InfoItem {
        InfoItem {
            name: ItemName::parse(name).unwrap(),
            title: title.into(),
            data_type: t,
            length: None,
            unit: None,
            required: false,
            key: false,
            sensitivity: s,
            validator: None,
            description: None,
            public: None,
        }
    }

    #[test]
    fn every_offered_mask_is_one_the_server_accepts_and_has_a_chinese_name() {
        for (t, s) in [
            (DataType::String, Sensitivity::SensitivePersonal),
            (DataType::Date, Sensitivity::Personal),
            (DataType::Integer, Sensitivity::None),
        ] {
            for public in [true, false] {
                let i = item("x", "身份证号", t, s);
                let opts = mask_options(&i, public, None, Lang::Zh);
                assert!(!opts.is_empty());
                assert_eq!(opts.iter().filter(|o| o["selected"] == true).count(), 1, "{t:?} {s:?}");
                for o in &opts {
                    let v = o["value"].as_str().unwrap();
                    assert!(MaskSpec::parse(v).is_ok(), "{v}");
                    assert!(MaskSpec::parse(v).unwrap().fits(t), "{v} fits {t:?}");
                    let label = o["label"].as_str().unwrap();
                    assert!(!label.is_ascii(), "{v} has a Chinese name: {label}");
                }
                let clear = opts.iter().any(|o| o["value"] == "none");
                assert_eq!(clear, !(public && s != Sensitivity::None), "{t:?} {s:?} public={public}");
                if s != Sensitivity::None {
                    assert_ne!(opts.iter().find(|o| o["selected"] == true).unwrap()["value"], "none", "safe default");
                }
            }
        }
        assert_eq!(mask_title("name", Lang::Zh), "name", "an unknown mask is never given a name");
    }

    #[test]
    fn filters_read_as_words() {
        let items = vec![
            item("qx", "区县", DataType::String, Sensitivity::None),
            item("nl", "年龄", DataType::Integer, Sensitivity::None),
        ];
        assert_eq!(filter_text("qx = '海陵区'", &items, Lang::Zh), "区县 = 海陵区");
        assert_eq!(
            filter_text("qx IN ('海陵区', '高港区') AND nl >= 18", &items, Lang::Zh),
            "区县 属于 海陵区、高港区 且 年龄 ≥ 18"
        );
        assert_eq!(filter_text("nl BETWEEN 18 AND 60", &items, Lang::En), "年龄 between 18 and 60");
        assert_eq!(filter_text("nonsense ((", &items, Lang::Zh), "nonsense ((");
    }

    #[test]
    fn times_are_local_and_never_epoch_milliseconds() {
        assert_eq!(local_datetime(&json!(0)), "1970-01-01 08:00");
        assert_eq!(local_datetime(&json!("2026-01-05T16:30:00Z")), "2026-01-06 00:30");
        assert_eq!(local_date(&json!("2026-01-05T16:30:00Z")), "2026-01-06");
        assert_eq!(local_datetime(&Value::Null), "");
    }

    #[test]
    fn messages_keep_the_pages_language() {
        assert_eq!(one_language("用户名或密码错误 / wrong username or password", Lang::Zh), "用户名或密码错误");
        assert_eq!(
            one_language("用户名或密码错误 / wrong username or password", Lang::En),
            "wrong username or password"
        );
        assert_eq!(one_language("只有中文", Lang::En), "只有中文");
        assert_eq!(one_language("承担责任。/ I undertake it.", Lang::Zh), "承担责任。");
        assert_eq!(one_language("承担责任。/ I undertake it.", Lang::En), "I undertake it.");
        assert_eq!(one_language("日期 2024/1/5 有误", Lang::Zh), "日期 2024/1/5 有误");
        let fb = "王：数据有误（联系方式 / contact: 138-0000-1234）";
        assert_eq!(one_language(fb, Lang::Zh), fb, "the contact stays");
        let f = "过滤条件第 3 个字符处 / filter at character 3: 未知的信息项 abc / unknown item abc";
        assert_eq!(one_language(f, Lang::Zh), "过滤条件第 3 个字符处：未知的信息项 abc");
        assert!(!has_cjk(&one_language(f, Lang::En)), "{}", one_language(f, Lang::En));
    }

    #[test]
    fn english_words_find_chinese_entries() {
        assert_eq!(with_chinese_synonyms("Enterprise"), "企业");
        assert!(with_chinese_synonyms("hospitals").contains("医院"));
        assert!(with_chinese_synonyms("population").contains("人口"));
        assert_eq!(with_chinese_synonyms("企业"), "企业");
    }

    #[test]
    fn options_follow_the_order_of_meaning() {
        let o = options(Lang::Zh);
        let cycle: Vec<&str> = o["cycle"].as_array().unwrap().iter().map(|v| v["label"].as_str().unwrap()).collect();
        assert_eq!(&cycle[..3], &["实时", "每日", "每周"]);
    }
}
