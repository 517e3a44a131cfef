//! citydata-api: the HTTP surfaces as thin axum routers. Handlers only extract input, call a
//! `citydata-core` use case and shape the answer; every error leaves through [`ApiError`] and
//! its one envelope `{"error": {"code", "message", "details"}}`.
//!
//! This crate holds no SQL and no business rule, and names no concrete store backend.
#![forbid(unsafe_code)]

pub mod ckan;
pub mod dcat;
pub mod delta_sharing;
pub mod error;
pub mod extract;
pub mod middleware;
pub mod openapi;
pub mod scopes;
pub mod v1;

pub use error::ApiError;

use citydata_core::Core;

/// Shared state of every handler: one `Arc`. axum clones the state for every extractor and
/// middleware of every request; cloning (and dropping) the `Core`'s two dozen `Arc`s and
/// strings each time was a fifth of a metadata read's CPU, the two cores bouncing the same
/// reference counts between them.
#[derive(Clone)]
pub struct AppState(std::sync::Arc<AppStateInner>);

impl AppState {
    pub fn new(inner: AppStateInner) -> Self {
        Self(std::sync::Arc::new(inner))
    }
}

impl std::ops::Deref for AppState {
    type Target = AppStateInner;
    fn deref(&self) -> &AppStateInner {
        &self.0
    }
}

/// What [`AppState`] holds.
pub struct AppStateInner {
    pub core: Core,
    /// Mark the session cookie `Secure` (when `public_base_url` is https).
    pub cookie_secure: bool,
    /// The address users reach the server at, for absolute links (CKAN, DCAT); when absent
    /// it is taken from the request's `Host`.
    pub public_base_url: Option<String>,
    /// Largest data upload, in bytes.
    pub max_upload_bytes: u64,
    /// Proxies whose `X-Forwarded-For` names the client (login throttling, audit, limits).
    pub trusted_proxies: std::sync::Arc<Vec<citydata_core::net::IpNet>>,
}

impl AppStateInner {
    /// The base URL for absolute links in answers to `headers`' request.
    pub fn base_url(&self, headers: &axum::http::HeaderMap) -> String {
        if let Some(u) = &self.public_base_url {
            return u.trim_end_matches('/').to_string();
        }
        let host = headers
            .get(axum::http::header::HOST)
            .and_then(|h| h.to_str().ok())
            .filter(|h| h.chars().all(|c| c.is_ascii_alphanumeric() || ".-:[]".contains(c)))
            .unwrap_or("localhost");
        format!("http://{host}")
    }
}

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "citydata_session";
