//! citydata-server: turns [`Settings`] into a running server. Owns layered configuration,
//! telemetry, the choice of metadata backend, the middleware stack, ops endpoints,
//! graceful shutdown and demo seeding.
//!
//! This crate (with the `citydata` binary and the testkit) is the only one that names a
//! concrete store backend.
#![forbid(unsafe_code)]

mod app;
pub mod settings;
pub mod telemetry;

pub use app::{Application, build_router, core_config, open_search_index, open_store, shutdown_signal};
pub use settings::{LogFormat, Overrides, ResolvedSettings, Settings, SettingsError};
