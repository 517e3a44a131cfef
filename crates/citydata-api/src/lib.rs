//! citydata-api: the HTTP surfaces as thin axum routers. Handlers only extract input, call a
//! `citydata-core` use case and shape the answer; every error leaves through [`ApiError`] and
//! its one envelope `{"error": {"code", "message", "details"}}`.
//!
//! This crate holds no SQL and no business rule, and names no concrete store backend.
#![forbid(unsafe_code)]

pub mod error;
pub mod extract;
pub mod middleware;
pub mod openapi;
pub mod v1;

pub use error::ApiError;

use citydata_core::Core;

/// Shared state of every handler.
#[derive(Clone)]
pub struct AppState {
    pub core: Core,
    /// Mark the session cookie `Secure` (when `public_base_url` is https).
    pub cookie_secure: bool,
}

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "citydata_session";
