//! `citydata source list|runs|run`: collection sources as the operator (platform administrator).

use super::{cli_meta, user_error};
use anyhow::Context;
use citydata_core::Core;
use clap::Subcommand;
use std::process::ExitCode;

#[derive(Subcommand)]
pub(crate) enum SourceCommand {
    /// Create a source from a JSON file (the body of `POST /api/v1/sources`), acting as a
    /// steward of the provider department: runs act as that user.
    Create {
        /// The JSON file.
        file: std::path::PathBuf,
        /// The steward the source belongs to.
        #[arg(long = "as", value_name = "USER")]
        user: String,
    },
    /// Every source, one JSON object a line (secrets are never shown).
    List,
    /// A source's runs, newest first, one JSON object a line.
    Runs {
        /// The source's id.
        id: String,
        #[arg(long, default_value_t = 20)]
        limit: u32,
    },
    /// Run a source now and wait until the run ends (exit 1 unless it succeeded). The run is
    /// claimed like any other: by this process, or by a running server first.
    Run {
        /// The source's id.
        id: String,
    },
}

pub(crate) async fn run(core: Core, command: SourceCommand) -> anyhow::Result<ExitCode> {
    let operator = citydata_core::auth::operator("cli");
    match command {
        SourceCommand::Create { file, user } => {
            let text = std::fs::read_to_string(&file).with_context(|| format!("cannot read {}", file.display()))?;
            let input: citydata_core::sources::SourceInput =
                serde_json::from_str(&text).with_context(|| format!("{} is not a source (JSON)", file.display()))?;
            let principal = core.cli_principal(&user).await.map_err(user_error)?;
            let s = core.create_source(&cli_meta(), &principal, input).await.map_err(user_error)?;
            println!("{}", serde_json::to_string(&s)?);
            Ok(ExitCode::SUCCESS)
        }
        SourceCommand::List => {
            for s in core.list_sources(&operator).await.map_err(user_error)? {
                println!("{}", serde_json::to_string(&s)?);
            }
            Ok(ExitCode::SUCCESS)
        }
        SourceCommand::Runs { id, limit } => {
            for r in core.source_runs(&operator, &id, limit).await.map_err(user_error)? {
                println!("{}", serde_json::to_string(&r)?);
            }
            Ok(ExitCode::SUCCESS)
        }
        SourceCommand::Run { id } => {
            // Runs whose node died (their lease ended) are settled first, as a server would.
            core.settle_stale_runs().await.map_err(user_error)?;
            let started = core.run_source(&cli_meta(), &operator, &id).await.map_err(user_error)?;
            let run_id = started.run_id.to_string();
            loop {
                // Run queued work here until ours has ended (a server may take it first).
                core.settle_stale_runs().await.map_err(user_error)?;
                let ran = core.run_next_source().await.map_err(user_error)?;
                let run = core.source_run(&operator, &id, &run_id).await.map_err(user_error)?;
                if matches!(run.state.as_str(), "succeeded" | "failed" | "aborted") {
                    println!("{}", serde_json::to_string_pretty(&run)?);
                    return Ok(if run.state == "succeeded" { ExitCode::SUCCESS } else { ExitCode::FAILURE });
                }
                if ran.is_none() {
                    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
                }
            }
        }
    }
}
