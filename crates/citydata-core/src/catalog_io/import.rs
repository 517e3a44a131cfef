//! A catalog spreadsheet back in: rows read, checked and reported by sheet, row and column.

use super::*;

/// A row as read: column key → cell text, and where it came from.
struct Row {
    sheet: &'static str,
    number: usize,
    cells: HashMap<&'static str, String>,
}

impl Row {
    /// The cell's text (a `'` that a CSV-safe export put before a formula-like value is
    /// taken off).
    fn get(&self, k: &str) -> Option<String> {
        self.cells.get(k).map(|s| crate::csv_safe::restore(s.trim()).to_string()).filter(|s| !s.is_empty())
    }
}

/// An Excel serial day number (1900 date system) as `YYYY-MM-DD`.
fn excel_date(serial: f64) -> String {
    let base = chrono::NaiveDate::from_ymd_opt(1899, 12, 30).expect("static date");
    base.checked_add_signed(chrono::Duration::days(serial.floor() as i64)).map(|d| d.to_string()).unwrap_or_default()
}

pub(crate) fn cell_text(d: &Data) -> String {
    match d {
        Data::Empty => String::new(),
        Data::String(s) => s.clone(),
        Data::Float(f) if f.fract() == 0.0 && f.abs() < 1e15 => format!("{}", *f as i64),
        Data::Float(f) => f.to_string(),
        Data::Int(i) => i.to_string(),
        Data::Bool(b) => {
            if *b {
                "是".into()
            } else {
                "否".into()
            }
        }
        Data::DateTime(dt) => excel_date(dt.as_f64()),
        Data::DateTimeIso(s) | Data::DurationIso(s) => s.chars().take(10).collect(),
        Data::Error(e) => format!("#ERR {e:?}"),
    }
}

/// Map headers to column keys; an unknown header is ignored, a missing required one is an issue.
fn map_headers(
    sheet: &'static str,
    headers: &[String],
    columns: &'static [(&'static str, &'static str)],
    item_prefix: bool,
    issues: &mut Vec<ImportIssue>,
) -> Vec<Option<&'static str>> {
    let norm = |s: &str| s.trim().trim_start_matches('\u{feff}').replace([' ', '\u{3000}'], "");
    let mapped: Vec<Option<&'static str>> = headers
        .iter()
        .map(|h| {
            let h = norm(h);
            columns
                .iter()
                .find(|(k, t)| {
                    let t = if item_prefix { csv_item_header(t) } else { t.to_string() };
                    h == t || h == *k
                })
                .map(|(k, _)| *k)
        })
        .collect();
    for required in ["code", "name"] {
        if columns.iter().any(|(k, _)| *k == required) && !mapped.contains(&Some(required)) {
            let title = columns.iter().find(|(k, _)| *k == required).map(|(_, t)| *t).unwrap_or(required);
            issues.push(ImportIssue {
                sheet: sheet.into(),
                row: 1,
                column: Some(title.into()),
                message: format!("缺少必需的列「{title}」/ missing column {title}"),
            });
        }
    }
    mapped
}

fn read_xlsx(bytes: &[u8], issues: &mut Vec<ImportIssue>) -> (Vec<Row>, Vec<Row>) {
    let mut wb: calamine::Xlsx<_> = match calamine::open_workbook_from_rs(std::io::Cursor::new(bytes)) {
        Ok(w) => w,
        Err(e) => {
            issues.push(ImportIssue {
                sheet: "-".into(),
                row: 0,
                column: None,
                message: format!("无法读取 xlsx 文件 / not a readable xlsx workbook: {e}"),
            });
            return (vec![], vec![]);
        }
    };
    let mut read = |sheet: &'static str, columns: &'static [(&'static str, &'static str)]| -> Vec<Row> {
        let range = match wb.worksheet_range(sheet) {
            Ok(r) => r,
            Err(_) => {
                issues.push(ImportIssue {
                    sheet: sheet.into(),
                    row: 0,
                    column: None,
                    message: format!("缺少工作表「{sheet}」/ missing sheet {sheet}"),
                });
                return vec![];
            }
        };
        let mut rows = range.rows();
        let Some(header) = rows.next() else { return vec![] };
        let headers: Vec<String> = header.iter().map(cell_text).collect();
        let keys = map_headers(sheet, &headers, columns, false, issues);
        let mut out = Vec::new();
        for (i, r) in rows.enumerate() {
            let mut cells = HashMap::new();
            for (c, d) in r.iter().enumerate() {
                if let Some(Some(k)) = keys.get(c) {
                    cells.insert(*k, cell_text(d));
                }
            }
            if cells.values().all(|v| v.trim().is_empty()) {
                continue;
            }
            out.push(Row { sheet, number: i + 2, cells });
        }
        out
    };
    let resources = read(RESOURCE_SHEET, RESOURCE_COLUMNS);
    let items = read(ITEM_SHEET, ITEM_COLUMNS);
    (resources, items)
}

fn read_csv(bytes: &[u8], issues: &mut Vec<ImportIssue>) -> (Vec<Row>, Vec<Row>) {
    let text = match std::str::from_utf8(bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes)) {
        Ok(t) => t.to_string(),
        Err(_) => {
            let (t, _, bad) = encoding_rs::GB18030.decode(bytes);
            if bad {
                issues.push(ImportIssue {
                    sheet: "CSV".into(),
                    row: 0,
                    column: None,
                    message: "文件既不是 UTF-8 也不是 GB18030 编码 / the file is neither UTF-8 nor GB18030".into(),
                });
                return (vec![], vec![]);
            }
            t.into_owned()
        }
    };
    let mut rdr = csv::ReaderBuilder::new().flexible(false).from_reader(text.as_bytes());
    let headers: Vec<String> = match rdr.headers() {
        Ok(h) => h.iter().map(str::to_string).collect(),
        Err(e) => {
            issues.push(ImportIssue {
                sheet: "CSV".into(),
                row: 1,
                column: None,
                message: format!("无法读取表头 / cannot read the header: {e}"),
            });
            return (vec![], vec![]);
        }
    };
    let rkeys = map_headers("CSV", &headers, RESOURCE_COLUMNS, false, issues);
    let ikeys: Vec<Option<&'static str>> = headers
        .iter()
        .map(|h| ITEM_COLUMNS.iter().skip(1).find(|(_, t)| csv_item_header(t) == h.trim()).map(|(k, _)| *k))
        .collect();
    let (mut resources, mut items) = (Vec::new(), Vec::new());
    let mut seen = HashSet::new();
    for (i, rec) in rdr.records().enumerate() {
        let number = i + 2;
        let rec = match rec {
            Ok(r) => r,
            Err(e) => {
                issues.push(ImportIssue {
                    sheet: "CSV".into(),
                    row: number,
                    column: None,
                    message: format!("无法解析此行 / cannot parse this row: {e}"),
                });
                continue;
            }
        };
        let mut rc = HashMap::new();
        let mut ic = HashMap::new();
        for (c, v) in rec.iter().enumerate() {
            if let Some(Some(k)) = rkeys.get(c) {
                rc.insert(*k, v.to_string());
            }
            if let Some(Some(k)) = ikeys.get(c) {
                ic.insert(*k, v.to_string());
            }
        }
        let code = rc.get("code").cloned().unwrap_or_default();
        if seen.insert(code.clone()) {
            resources.push(Row { sheet: "CSV", number, cells: rc });
        }
        if ic.values().any(|v| !v.trim().is_empty()) {
            ic.insert("code", code);
            items.push(Row { sheet: "CSV", number, cells: ic });
        }
    }
    (resources, items)
}

fn split_list(s: Option<String>) -> Vec<String> {
    s.map(|s| s.split([';', '；', ',', '，', '、']).map(|x| x.trim().to_string()).filter(|x| !x.is_empty()).collect())
        .unwrap_or_default()
}

fn parse_bool(s: Option<String>) -> Result<Option<bool>, String> {
    match s.as_deref().map(str::trim) {
        None | Some("") => Ok(None),
        Some("是" | "Y" | "y" | "true" | "TRUE" | "1" | "√") => Ok(Some(true)),
        Some("否" | "N" | "n" | "false" | "FALSE" | "0" | "×") => Ok(Some(false)),
        Some(other) => Err(format!("应为“是”或“否”，收到 \"{other}\" / expected 是 or 否")),
    }
}

/// Where a resource field's problem is shown.
fn column_of(field: &str) -> &'static str {
    let key = match field.split(['[', '.']).next().unwrap_or(field) {
        "classification" if field.ends_with("class") => "class",
        "classification" => "theme",
        "format" if field.ends_with("category") => "format_category",
        "format" => "format_type",
        "share" if field.ends_with("type") => "share_type",
        "share" if field.ends_with("method") => "share_method",
        "share" => "share_conditions",
        "open" if field.ends_with("type") => "open_type",
        "open" => "open_conditions",
        "summary" => "abstract",
        other => other,
    };
    RESOURCE_COLUMNS.iter().find(|(k, _)| *k == key).map(|(_, t)| *t).unwrap_or("")
}

fn item_column_of(sub: &str) -> &'static str {
    ITEM_COLUMNS.iter().find(|(k, _)| *k == sub).map(|(_, t)| *t).unwrap_or("")
}

struct Parsed {
    row: usize,
    sheet: &'static str,
    input: ResourceInput,
    state: ResourceState,
}

impl Core {
    /// Import a catalog file. Every problem is reported by sheet, row and column; when there is
    /// any and `partial` is false nothing is written. Existing codes are updated, others created.
    pub async fn import_catalog(
        &self,
        meta: &RequestMeta,
        principal: &Principal,
        bytes: &[u8],
        format: Option<CatalogFormat>,
        partial: bool,
    ) -> Result<ImportReport, CoreError> {
        // Only those who may maintain some department's catalog get their file read at all.
        if !principal.memberships.iter().any(|m| can_edit(principal, &m.department)) {
            let r = Err(CoreError::forbidden());
            return self.audited(meta, crate::audit::Actor::Principal(principal), "catalog.import", None, r).await;
        }
        let mut report = ImportReport::default();
        if bytes.is_empty() {
            return Err(citydata_domain::FieldError::new("file", "empty_file", "文件为空 / the file is empty").into());
        }
        let format = format.unwrap_or_else(|| CatalogFormat::sniff(bytes));
        let (rrows, irows) = match format {
            CatalogFormat::Xlsx => {
                // A bomb is refused here; an unreadable archive is reported as an issue below.
                if let Err(e @ citydata_lake::LakeError::Input { code: "decompressed_too_large", .. }) =
                    citydata_lake::limits::check_zip(std::io::Cursor::new(bytes), self.config.decompress)
                {
                    return Err(e.into());
                }
                read_xlsx(bytes, &mut report.issues)
            }
            CatalogFormat::Csv => read_csv(bytes, &mut report.issues),
        };
        report.resources_in_file = rrows.len();
        if !report.issues.is_empty() && report.issues.iter().any(|i| i.row <= 1) {
            return Ok(report);
        }

        // Items grouped by resource code, in file order.
        let mut items_by_code: BTreeMap<String, Vec<&Row>> = BTreeMap::new();
        let codes: HashSet<String> = rrows.iter().filter_map(|r| r.get("code")).collect();
        for ir in &irows {
            let code = ir.get("code").unwrap_or_default();
            if !codes.contains(&code) {
                report.issues.push(ImportIssue {
                    sheet: ir.sheet.into(),
                    row: ir.number,
                    column: Some("信息资源代码".into()),
                    message: format!(
                        "资源表中没有信息资源代码 \"{code}\" / no resource with code \"{code}\" in the resource sheet"
                    ),
                });
                continue;
            }
            items_by_code.entry(code).or_default().push(ir);
        }

        let mut parsed: Vec<Parsed> = Vec::new();
        let mut bad_rows: HashSet<usize> = HashSet::new();
        let mut seen_codes = HashSet::new();
        let dept_names = self.department_names().await?;
        for rr in &rrows {
            let before = report.issues.len();
            let mut issue = |column: &str, message: String| {
                report.issues.push(ImportIssue {
                    sheet: rr.sheet.into(),
                    row: rr.number,
                    column: (!column.is_empty()).then(|| column.to_string()),
                    message,
                })
            };
            let code = rr.get("code");
            match &code {
                None => issue("信息资源代码", "信息资源代码为必填项 / the resource code is required".into()),
                Some(c) if !seen_codes.insert(c.clone()) => {
                    issue("信息资源代码", format!("文件中信息资源代码重复：{c} / duplicate code {c}"))
                }
                _ => {}
            }
            let item_rows = code.as_ref().and_then(|c| items_by_code.get(c)).cloned().unwrap_or_default();
            let mut items = Vec::new();
            for ir in &item_rows {
                let length = match ir.get("length") {
                    None => None,
                    Some(l) => match l.parse::<u32>() {
                        Ok(n) => Some(n),
                        Err(_) => {
                            report.issues.push(ImportIssue {
                                sheet: ir.sheet.into(),
                                row: ir.number,
                                column: Some("长度".into()),
                                message: format!("长度应为正整数，收到 \"{l}\" / length must be a whole number"),
                            });
                            None
                        }
                    },
                };
                let mut flag = |k: &str, title: &str| match parse_bool(ir.get(k)) {
                    Ok(b) => b,
                    Err(m) => {
                        report.issues.push(ImportIssue {
                            sheet: ir.sheet.into(),
                            row: ir.number,
                            column: Some(title.into()),
                            message: m,
                        });
                        None
                    }
                };
                let required = flag("required", "是否必填");
                let key = flag("key", "是否主键");
                items.push(ItemInput {
                    name: ir.get("name"),
                    title: ir.get("title"),
                    data_type: ir.get("data_type"),
                    length,
                    unit: ir.get("unit"),
                    required,
                    key,
                    sensitivity: ir.get("sensitivity"),
                    validator: ir.get("validator"),
                    description: ir.get("description"),
                    public: ir.get("public"),
                });
            }
            let theme = rr.get("theme");
            let input = ResourceInput {
                code: code.clone(),
                slug: rr.get("slug"),
                name: rr.get("name"),
                summary: rr.get("abstract"),
                provider: rr.get("provider"),
                classification: Some(ClassificationInput { class: rr.get("class"), theme }),
                format: Some(FormatInput { category: rr.get("format_category"), kind: rr.get("format_type") }),
                items,
                share: Some(ShareInput {
                    kind: rr.get("share_type"),
                    conditions: rr.get("share_conditions"),
                    method: rr.get("share_method"),
                }),
                open: Some(OpenInput { kind: rr.get("open_type"), conditions: rr.get("open_conditions") }),
                update_cycle: rr.get("update_cycle"),
                publish_date: rr.get("publish_date"),
                related: split_list(rr.get("related")),
                security_level: rr.get("security_level"),
                tags: split_list(rr.get("tags")),
                license: rr.get("license"),
                regions: split_list(rr.get("regions")),
                contact: rr.get("contact"),
                consistency: rr
                    .get("consistency")
                    .map(|s| s.split([';', '；']).map(|x| x.trim().to_string()).filter(|x| !x.is_empty()).collect())
                    .unwrap_or_default(),
                history_days: rr.get("history_days").map(|d| d.trim().parse::<i64>().unwrap_or(-1)),
                quality_rules: rr
                    .get("quality_rules")
                    .map(|c| citydata_domain::quality::parse_rules_cell(&c))
                    .unwrap_or_default(),
            };
            let state = match rr.get("state") {
                None => ResourceState::Draft,
                Some(s) => match ResourceState::parse(&s) {
                    Ok(s) => s,
                    Err(e) => {
                        report.issues.push(ImportIssue {
                            sheet: rr.sheet.into(),
                            row: rr.number,
                            column: Some("状态".into()),
                            message: e.message,
                        });
                        ResourceState::Draft
                    }
                },
            };
            match ResourceDraft::parse(&input) {
                Err(errs) => {
                    for e in errs.0 {
                        if let Some(rest) = e.field.strip_prefix("items[") {
                            let (idx, sub) = rest.split_once("].").unwrap_or((rest.trim_end_matches(']'), ""));
                            let ir = idx.parse::<usize>().ok().and_then(|i| item_rows.get(i));
                            let sheet = ir.map(|r| r.sheet).unwrap_or(ITEM_SHEET);
                            let column = item_column_of(sub);
                            let column = if sheet == "CSV" { csv_item_header(column) } else { column.to_string() };
                            report.issues.push(ImportIssue {
                                sheet: sheet.into(),
                                row: ir.map(|r| r.number).unwrap_or(rr.number),
                                column: Some(column).filter(|s| !s.is_empty() && s != "信息项"),
                                message: e.message,
                            });
                        } else {
                            let col = column_of(&e.field);
                            report.issues.push(ImportIssue {
                                sheet: rr.sheet.into(),
                                row: rr.number,
                                column: (!col.is_empty()).then(|| col.to_string()),
                                message: e.message,
                            });
                        }
                    }
                }
                Ok(d) => {
                    if !dept_names.contains_key(d.content.provider.as_str()) {
                        report.issues.push(ImportIssue {
                            sheet: rr.sheet.into(),
                            row: rr.number,
                            column: Some("资源提供方代码".into()),
                            message: format!("部门不存在：{} / unknown department", d.content.provider),
                        });
                    } else if !can_edit(principal, &d.content.provider) {
                        report.issues.push(ImportIssue {
                            sheet: rr.sheet.into(),
                            row: rr.number,
                            column: Some("资源提供方代码".into()),
                            message: format!(
                                "无权维护 {} 的资源 / not allowed to maintain this department's resources",
                                d.content.provider
                            ),
                        });
                    }
                    // Reference rules are checked as on every edit (a target must already be
                    // in the catalog, or be the resource itself).
                    let own = match &d.code {
                        Some(c) => self.store.find_resource(c.as_str()).await?.map(|r| r.id),
                        None => None,
                    };
                    let mut targets = citydata_domain::ValidationErrors::default();
                    self.check_rule_targets(
                        &d.content.provider,
                        &d.content.quality_rules,
                        own,
                        d.code.as_ref(),
                        &mut targets,
                    )
                    .await?;
                    for e in targets.0 {
                        report.issues.push(ImportIssue {
                            sheet: rr.sheet.into(),
                            row: rr.number,
                            column: Some("质量规则".into()),
                            message: e.message,
                        });
                    }
                    for r in &d.content.related {
                        if !codes.contains(r.as_str()) && self.store.find_resource(r.as_str()).await?.is_none() {
                            report.issues.push(ImportIssue {
                                sheet: rr.sheet.into(),
                                row: rr.number,
                                column: Some("关联资源代码".into()),
                                message: format!("关联资源不存在：{r} / related resource does not exist"),
                            });
                        }
                    }
                }
            }
            if report.issues.len() > before
                || item_rows.iter().any(|ir| report.issues.iter().any(|i| i.sheet == ir.sheet && i.row == ir.number))
            {
                bad_rows.insert(rr.number);
            } else {
                parsed.push(Parsed { row: rr.number, sheet: rr.sheet, input, state });
            }
        }

        if !report.issues.is_empty() && !partial {
            report.skipped = report.resources_in_file;
            return Ok(report);
        }
        report.skipped = bad_rows.len();

        // Apply: creations first (so that related codes exist), then the states.
        for p in parsed {
            let code = p.input.code.clone().unwrap_or_default();
            let existing = self.store.find_resource(&code).await?;
            let result = match existing {
                Some(current) => {
                    let patch = serde_json::to_value(&p.input).map_err(|e| CoreError::Internal(e.to_string()))?;
                    let r = self.update_resource(meta, principal, &current.id.to_string(), &patch).await;
                    if r.is_ok() {
                        report.updated += 1;
                    }
                    r
                }
                None => {
                    let r = self.create_resource(meta, principal, &p.input).await;
                    if r.is_ok() {
                        report.created += 1;
                    }
                    r
                }
            };
            let outcome = match result {
                Ok(r) => self.reach_state(meta, principal, r, p.state).await,
                Err(e) => Err(e),
            };
            if let Err(e) = outcome {
                report.skipped += 1;
                report.issues.push(ImportIssue {
                    sheet: p.sheet.into(),
                    row: p.row,
                    column: None,
                    message: e.to_string(),
                });
            }
        }
        self.record(
            meta,
            crate::audit::Actor::Principal(principal),
            "catalog.import",
            None,
            if report.issues.is_empty() {
                citydata_domain::audit::Outcome::Success
            } else {
                citydata_domain::audit::Outcome::Failure
            },
            serde_json::json!({"created": report.created, "updated": report.updated, "skipped": report.skipped}),
        )
        .await?;
        Ok(report)
    }

    async fn reach_state(
        &self,
        meta: &RequestMeta,
        p: &Principal,
        r: Resource,
        want: ResourceState,
    ) -> Result<(), CoreError> {
        let id = r.id.to_string();
        if r.state == want {
            return Ok(());
        }
        match (r.state, want) {
            (_, ResourceState::Published) => self.publish_resource(meta, p, &id).await.map(|_| ()),
            (ResourceState::Published, ResourceState::Withdrawn) => {
                self.withdraw_resource(meta, p, &id).await.map(|_| ())
            }
            (ResourceState::Draft, ResourceState::Withdrawn) => {
                self.publish_resource(meta, p, &id).await?;
                self.withdraw_resource(meta, p, &id).await.map(|_| ())
            }
            // A published resource is never turned back into a draft by an import.
            (_, ResourceState::Draft) | (ResourceState::Withdrawn, ResourceState::Withdrawn) => Ok(()),
        }
    }
}
