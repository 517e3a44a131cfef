//! `citydata`: the server and the command line of the city data platform.
#![deny(unsafe_code)]

mod alloc_tuning;
mod backup;
mod bench;
mod cli;
mod lake_check;
mod soak;

use std::process::ExitCode;

fn main() -> ExitCode {
    // Before any thread exists: the allocator's arenas are fixed when threads first allocate.
    alloc_tuning::tune_malloc();
    let _ = citydata_lake::ingest::AFTER_READ.set(alloc_tuning::release_free_memory);
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(2);
        }
    };
    let result = runtime.block_on(cli::run());
    // Dropping the runtime would wait for every blocking task still running (e.g. the reader of
    // an upload cut off when `serve`'s shutdown grace period ended): give them a moment only.
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("错误 / error: {e:#}");
            ExitCode::from(2)
        }
    }
}
