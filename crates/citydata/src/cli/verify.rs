//! `citydata verify --as USER RESOURCE`: 核验 from the terminal — records checked under the
//! user's verification grant, the answers (match / no_match / not_found / invalid, never a
//! value) printed as JSON, exactly as `POST /api/v1/resources/{id}/verify` answers.

use super::{cli_meta, open_core, user_error};
use anyhow::{Context, bail};
use citydata_core::verify::VerifyInput;
use citydata_server::Settings;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;

/// Check records against a resource under a verification grant (核验: answers only, no data).
#[derive(clap::Args)]
pub(crate) struct VerifyArgs {
    /// The user the command acts as (the operator on this host is trusted, as for `request`).
    #[arg(long = "as", value_name = "USERNAME")]
    user: String,
    /// Resource code, slug or id, e.g. 101/000001.
    resource: String,
    /// One record as `item=value` pairs separated by commas (names or titles), e.g.
    /// `身份证号=110105194912310029,姓名=张三`; repeatable.
    #[arg(long = "record", value_name = "ITEM=VALUE,…")]
    records: Vec<String>,
    /// Records from a file: a JSON array of objects, or CSV whose header names the items
    /// (plain comma-separated values, no quoting).
    #[arg(long, value_name = "FILE")]
    file: Option<PathBuf>,
    /// Items whose agreement each answer names, comma-separated.
    #[arg(long, value_delimiter = ',')]
    compare: Vec<String>,
}

fn parse_record(s: &str) -> anyhow::Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for pair in s.split([',', '，']).map(str::trim).filter(|p| !p.is_empty()) {
        let Some((k, v)) = pair.split_once('=') else {
            bail!("--record：“{pair}”须为 信息项=值 / --record: expected item=value, got {pair}");
        };
        out.insert(k.trim().to_string(), v.trim().to_string());
    }
    Ok(out)
}

fn read_file(path: &PathBuf) -> anyhow::Result<Vec<BTreeMap<String, String>>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let text = text.trim_start_matches('\u{feff}');
    if text.trim_start().starts_with('[') {
        return serde_json::from_str(text).with_context(|| format!("{}: not a JSON array of objects", path.display()));
    }
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let header: Vec<&str> = lines.next().map(|h| h.split(',').map(str::trim).collect()).unwrap_or_default();
    let mut out = Vec::new();
    for (i, line) in lines.enumerate() {
        let cells: Vec<&str> = line.split(',').map(str::trim).collect();
        if cells.len() != header.len() {
            bail!(
                "{} 第 {} 行有 {} 列，表头有 {} 列 / line {}: {} cells, the header has {}",
                path.display(),
                i + 2,
                cells.len(),
                header.len(),
                i + 2,
                cells.len(),
                header.len()
            );
        }
        out.push(header.iter().zip(&cells).map(|(h, c)| (h.to_string(), c.to_string())).collect());
    }
    Ok(out)
}

pub(crate) async fn run(settings: Settings, a: VerifyArgs) -> anyhow::Result<ExitCode> {
    let mut records = Vec::new();
    for r in &a.records {
        records.push(parse_record(r)?);
    }
    if let Some(f) = &a.file {
        records.extend(read_file(f)?);
    }
    if records.is_empty() {
        bail!("请用 --record 或 --file 给出要核验的记录 / give records with --record or --file");
    }
    let core = open_core(settings.resolve()?).await?;
    let principal = core.cli_principal(&a.user).await.map_err(user_error)?;
    let input = VerifyInput { records, compare: a.compare };
    let result = core.verify_records(&cli_meta(), &principal, &a.resource, &input).await.map_err(user_error)?;
    println!("{}", serde_json::to_string_pretty(&result)?);
    Ok(ExitCode::SUCCESS)
}
