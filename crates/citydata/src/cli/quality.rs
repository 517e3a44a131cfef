//! `citydata quality report|rules import`: as the operator (platform administrator).

use super::args::{QualityCommand, QualityRulesCommand};
use super::{cli_meta, user_error};
use anyhow::{Context, bail};
use citydata_core::Core;
use std::process::ExitCode;

pub(crate) async fn run(core: Core, command: QualityCommand) -> anyhow::Result<ExitCode> {
    let operator = citydata_core::auth::operator("cli");
    match command {
        QualityCommand::Report { resource, version, format, out } => {
            let report = core.quality_report(Some(&operator), &resource, version).await.map_err(user_error)?;
            match format.as_str() {
                "json" => println!("{}", serde_json::to_string_pretty(&report)?),
                "xlsx" => {
                    let r = core.get_resource(Some(&operator), &resource).await.map_err(user_error)?;
                    let code = r.content.code.to_string();
                    let bytes = citydata_core::quality::io::report_xlsx(
                        &format!("{} 质量报告 / quality report", r.content.name),
                        &[(r.content.name.clone(), report)],
                    )
                    .map_err(user_error)?;
                    let out = out.unwrap_or_else(|| format!("quality-{}.xlsx", code.replace('/', "-")).into());
                    std::fs::write(&out, bytes).with_context(|| format!("cannot write {}", out.display()))?;
                    println!("质量报告已写入 / quality report written to {}", out.display());
                }
                other => bail!("--format 须为 json 或 xlsx，收到 {other} / --format must be json or xlsx"),
            }
            Ok(ExitCode::SUCCESS)
        }
        QualityCommand::Rules { command: QualityRulesCommand::Import { file } } => {
            let bytes = std::fs::read(&file).with_context(|| format!("cannot read {}", file.display()))?;
            let r = core.import_quality_rules(&cli_meta(), &operator, &bytes).await.map_err(user_error)?;
            println!(
                "已更新 {} 个资源的 {} 条质量规则 / replaced the rules of {} resources ({} rules)",
                r.resources, r.rules, r.resources, r.rules
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}
