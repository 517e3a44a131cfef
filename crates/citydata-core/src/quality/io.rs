//! Quality reports as XLSX (the CLI and the department page) and the import of quality rules
//! from a CSV file (`citydata quality rules import`): all or nothing, every problem named by
//! its line.

use super::QualityReport;
use crate::{Core, CoreError, RequestMeta};
use citydata_domain::principal::Principal;
use citydata_domain::quality::QualityRuleInput;
use citydata_domain::resource::{ResourceDraft, ResourceInput};
use citydata_domain::{FieldError, ValidationErrors};
use rust_xlsxwriter::Workbook;
use std::collections::BTreeMap;

fn xlsx_error(e: rust_xlsxwriter::XlsxError) -> CoreError {
    CoreError::Internal(format!("xlsx: {e}"))
}

/// One workbook: a 概况 sheet (score and dimensions), 信息项 (per item), 规则 (per rule).
pub fn report_xlsx(title: &str, reports: &[(String, QualityReport)]) -> Result<Vec<u8>, CoreError> {
    let mut wb = Workbook::new();
    let s = wb.add_worksheet();
    s.set_name("概况").map_err(xlsx_error)?;
    let head =
        ["资源代码", "资源名称", "版本", "行数", "得分", "完整性", "有效性", "唯一性", "一致性", "时效性", "准确性"];
    s.write_string(0, 0, title).map_err(xlsx_error)?;
    for (c, h) in head.iter().enumerate() {
        s.write_string(1, c as u16, *h).map_err(xlsx_error)?;
    }
    for (i, (name, q)) in reports.iter().enumerate() {
        let r = i as u32 + 2;
        let d = &q.dimensions;
        s.write_string(r, 0, q.resource_id.to_string()).map_err(xlsx_error)?;
        s.write_string(r, 1, name).map_err(xlsx_error)?;
        let nums = [
            q.version as f64,
            q.rows as f64,
            q.score,
            d.completeness,
            d.validity,
            d.uniqueness,
            d.consistency,
            d.timeliness,
            d.accuracy,
        ];
        for (c, v) in nums.iter().enumerate() {
            s.write_number(r, c as u16 + 2, *v).map_err(xlsx_error)?;
        }
    }
    let s = wb.add_worksheet();
    s.set_name("信息项").map_err(xlsx_error)?;
    let head = ["资源名称", "信息项", "中文名称", "完整性", "有效性", "唯一性", "一致性", "引用完整性", "时效性"];
    for (c, h) in head.iter().enumerate() {
        s.write_string(0, c as u16, *h).map_err(xlsx_error)?;
    }
    let mut r = 1;
    for (name, q) in reports {
        for it in &q.items {
            s.write_string(r, 0, name).map_err(xlsx_error)?;
            s.write_string(r, 1, &it.name).map_err(xlsx_error)?;
            s.write_string(r, 2, &it.title).map_err(xlsx_error)?;
            for (c, v) in
                [Some(it.completeness), Some(it.validity), it.uniqueness, it.consistency, it.reference, it.timeliness]
                    .iter()
                    .enumerate()
            {
                if let Some(v) = v {
                    s.write_number(r, c as u16 + 3, *v).map_err(xlsx_error)?;
                }
            }
            r += 1;
        }
    }
    let s = wb.add_worksheet();
    s.set_name("规则").map_err(xlsx_error)?;
    for (c, h) in ["资源名称", "规则", "信息项", "严重程度", "失败数"].iter().enumerate() {
        s.write_string(0, c as u16, *h).map_err(xlsx_error)?;
    }
    let mut r = 1;
    for (name, q) in reports {
        for rule in &q.rules {
            s.write_string(r, 0, name).map_err(xlsx_error)?;
            s.write_string(r, 1, &rule.rule).map_err(xlsx_error)?;
            s.write_string(r, 2, rule.item.as_deref().unwrap_or("")).map_err(xlsx_error)?;
            s.write_string(r, 3, &rule.severity).map_err(xlsx_error)?;
            match rule.failed {
                Some(n) => s.write_number(r, 4, n as f64).map_err(xlsx_error)?,
                None => s.write_string(r, 4, "未评估").map_err(xlsx_error)?,
            };
            r += 1;
        }
    }
    wb.save_to_buffer().map_err(xlsx_error)
}

/// What an import of quality rules did.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct RulesImport {
    /// Resources whose rule set was replaced.
    pub resources: usize,
    pub rules: usize,
}

const HEADERS: [(&str, &str); 3] = [("resource", "资源代码"), ("rule", "规则"), ("severity", "严重程度")];

impl Core {
    /// Replace the quality rules of the resources a CSV names (`resource,rule,severity` or
    /// `资源代码,规则,严重程度`; one rule a line). Every rule set is parsed and type-checked
    /// first; with any problem nothing is written and each problem is named `line N: …`.
    /// Each resource changed becomes one revision (audited as `catalog.update`).
    pub async fn import_quality_rules(
        &self,
        meta: &RequestMeta,
        principal: &Principal,
        bytes: &[u8],
    ) -> Result<RulesImport, CoreError> {
        let text = std::str::from_utf8(bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes)).map_err(|_| {
            FieldError::new("file", "bad_encoding", "规则文件须为 UTF-8 编码的 CSV / the rules file must be UTF-8 CSV")
        })?;
        let mut rdr = csv::ReaderBuilder::new().flexible(true).from_reader(text.as_bytes());
        let header: Vec<String> = rdr
            .headers()
            .map_err(|e| FieldError::new("file", "bad_csv", format!("无法读取表头 / unreadable header: {e}")))?
            .iter()
            .map(|h| h.trim().to_string())
            .collect();
        let col = |k: &str| {
            HEADERS.iter().find(|(en, _)| *en == k).and_then(|(en, zh)| header.iter().position(|h| h == en || h == zh))
        };
        let (Some(rc), Some(rr)) = (col("resource"), col("rule")) else {
            return Err(FieldError::new(
                "file",
                "missing_columns",
                "须有列 resource（资源代码）和 rule（规则），可选 severity（严重程度）/ columns resource and rule are required",
            )
            .into());
        };
        let sc = col("severity");
        let mut sets: BTreeMap<String, Vec<(u64, QualityRuleInput)>> = BTreeMap::new();
        let mut errs = ValidationErrors::new();
        for (i, rec) in rdr.records().enumerate() {
            let line = i as u64 + 2;
            let rec = match rec {
                Ok(r) => r,
                Err(e) => {
                    errs.push(FieldError::new(format!("line {line}"), "bad_csv", e.to_string()));
                    continue;
                }
            };
            let get = |c: usize| rec.get(c).map(str::trim).unwrap_or("").to_string();
            let (res, rule) = (get(rc), get(rr));
            if res.is_empty() && rule.is_empty() {
                continue;
            }
            let severity = sc.map(get).filter(|s| !s.is_empty());
            sets.entry(res).or_default().push((line, QualityRuleInput { rule, severity }));
        }
        if sets.is_empty() && errs.0.is_empty() {
            errs.push(FieldError::new("file", "no_rows", "文件没有规则行 / the file has no rules"));
        }
        // Validate every set against its resource before writing anything.
        for (res, rules) in &sets {
            let at = rules.first().map(|r| r.0).unwrap_or(2);
            let current = match self.get_resource(Some(principal), res).await {
                Ok(r) if crate::catalog::can_edit(principal, &r.content.provider) => r,
                Ok(_) | Err(CoreError::NotFound(_)) => {
                    errs.push(FieldError::new(
                        format!("line {at}"),
                        "unknown_resource",
                        format!("资源不存在或无权编辑：{res} / no such resource you may edit: {res}"),
                    ));
                    continue;
                }
                Err(e) => return Err(e),
            };
            let mut input = ResourceInput::from(&current.content);
            input.quality_rules = rules.iter().map(|r| r.1.clone()).collect();
            let renumber = |e: FieldError| -> FieldError {
                let idx = e
                    .field
                    .strip_prefix("quality_rules[")
                    .and_then(|r| r.split(']').next())
                    .and_then(|n| n.parse::<usize>().ok());
                match idx.and_then(|i| rules.get(i)) {
                    Some((line, _)) => FieldError { field: format!("line {line}"), ..e },
                    None => FieldError { field: format!("line {at}"), ..e },
                }
            };
            match ResourceDraft::parse(&input) {
                Err(v) => v.0.into_iter().map(renumber).for_each(|e| errs.push(e)),
                Ok(d) => {
                    let mut targets = ValidationErrors::new();
                    self.check_rule_targets(
                        &d.content.provider,
                        &d.content.quality_rules,
                        Some(current.id),
                        None,
                        &mut targets,
                    )
                    .await?;
                    targets.0.into_iter().map(renumber).for_each(|e| errs.push(e));
                }
            }
        }
        errs.into_result()?;
        let mut report = RulesImport::default();
        for (res, rules) in &sets {
            let patch = serde_json::json!({ "quality_rules": rules.iter().map(|r| &r.1).collect::<Vec<_>>() });
            self.update_resource(meta, principal, res, &patch).await?;
            report.resources += 1;
            report.rules += rules.len();
        }
        Ok(report)
    }
}
