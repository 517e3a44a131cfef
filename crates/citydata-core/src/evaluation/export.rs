//! The evaluation as the assessment office files it: an XLSX workbook with a 汇总 (summary)
//! sheet, one sheet per indicator and a 评估规则 (rules) sheet. Values only, no formulas.

use super::Evaluation;
use crate::CoreError;
use citydata_domain::evaluation::INDICATORS;
use rust_xlsxwriter::{Workbook, Worksheet};

fn xlsx_error(e: rust_xlsxwriter::XlsxError) -> CoreError {
    CoreError::Internal(format!("xlsx: {e}"))
}

fn opt(s: &mut Worksheet, r: u32, c: u16, v: Option<f64>) -> Result<(), CoreError> {
    if let Some(v) = v {
        s.write_number(r, c, v).map_err(xlsx_error)?;
    }
    Ok(())
}

fn head(s: &mut Worksheet, cols: &[&str]) -> Result<(), CoreError> {
    for (c, h) in cols.iter().enumerate() {
        s.write_string(0, c as u16, *h).map_err(xlsx_error)?;
    }
    Ok(())
}

/// The workbook of one evaluation.
pub fn evaluation_xlsx(e: &Evaluation) -> Result<Vec<u8>, CoreError> {
    let mut wb = Workbook::new();
    let s = wb.add_worksheet();
    s.set_name("汇总").map_err(xlsx_error)?;
    head(s, &["排名", "部门代码", "部门名称", "得分", "较上期变化", "期间", "规则版本"])?;
    for (i, d) in e.departments.iter().enumerate() {
        let r = i as u32 + 1;
        opt(s, r, 0, d.rank.map(f64::from))?;
        s.write_string(r, 1, &d.code).map_err(xlsx_error)?;
        s.write_string(r, 2, &d.name).map_err(xlsx_error)?;
        opt(s, r, 3, d.score)?;
        opt(s, r, 4, d.change)?;
        s.write_string(r, 5, &e.period).map_err(xlsx_error)?;
        s.write_number(r, 6, e.rules_version as f64).map_err(xlsx_error)?;
    }
    for ind in INDICATORS {
        let s = wb.add_worksheet();
        s.set_name(ind.zh).map_err(xlsx_error)?;
        head(s, &["部门代码", "部门名称", "指标值", "分子", "分母", "目标值", "指标得分", "权重", "指标代码"])?;
        for (i, d) in e.departments.iter().enumerate() {
            let r = i as u32 + 1;
            let Some(v) = d.indicators.get(ind.code) else { continue };
            s.write_string(r, 0, &d.code).map_err(xlsx_error)?;
            s.write_string(r, 1, &d.name).map_err(xlsx_error)?;
            opt(s, r, 2, v.value)?;
            opt(s, r, 3, v.numerator.map(|n| n as f64))?;
            opt(s, r, 4, v.denominator.map(|n| n as f64))?;
            opt(s, r, 5, v.target)?;
            opt(s, r, 6, v.score)?;
            s.write_number(r, 7, v.weight).map_err(xlsx_error)?;
            s.write_string(r, 8, ind.code).map_err(xlsx_error)?;
        }
    }
    let s = wb.add_worksheet();
    s.set_name("评估规则").map_err(xlsx_error)?;
    head(s, &["指标代码", "指标名称", "权重", "目标值", "规划目标"])?;
    for (i, ind) in INDICATORS.iter().enumerate() {
        let r = i as u32 + 1;
        s.write_string(r, 0, ind.code).map_err(xlsx_error)?;
        s.write_string(r, 1, ind.zh).map_err(xlsx_error)?;
        s.write_number(r, 2, e.rules.weights.get(ind.code).copied().unwrap_or(0.0)).map_err(xlsx_error)?;
        opt(s, r, 3, e.rules.targets.get(ind.code).copied())?;
        opt(s, r, 4, e.rules.plan.get(ind.code).copied())?;
    }
    let r = INDICATORS.len() as u32 + 2;
    s.write_string(r, 0, "规则版本").map_err(xlsx_error)?;
    s.write_number(r, 1, e.rules_version as f64).map_err(xlsx_error)?;
    s.write_string(r + 1, 0, "期间").map_err(xlsx_error)?;
    s.write_string(r + 1, 1, &e.period).map_err(xlsx_error)?;
    wb.save_to_buffer().map_err(xlsx_error)
}
