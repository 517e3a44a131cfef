//! `citydata evaluate --period 2026-Q4 [--out file.xlsx] [--rescore]`: as the operator.

use super::{cli_meta, user_error};
use anyhow::Context;
use citydata_core::Core;
use std::path::PathBuf;
use std::process::ExitCode;

pub(crate) async fn run(core: Core, period: &str, out: Option<PathBuf>, rescore: bool) -> anyhow::Result<ExitCode> {
    let operator = citydata_core::auth::operator("cli");
    let e = core.evaluate_unchecked(&cli_meta(), Some(&operator), period, rescore).await.map_err(user_error)?;
    match out {
        None => println!("{}", serde_json::to_string_pretty(&e)?),
        Some(out) => {
            let bytes = citydata_core::evaluation::export::evaluation_xlsx(&e).map_err(user_error)?;
            std::fs::write(&out, bytes).with_context(|| format!("cannot write {}", out.display()))?;
            println!("评估结果已写入 / evaluation written to {} ({} departments)", out.display(), e.departments.len());
        }
    }
    Ok(ExitCode::SUCCESS)
}
