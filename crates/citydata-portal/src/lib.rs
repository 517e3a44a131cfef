//! citydata-portal: the web pages. The open-data portal (数据开放门户) for citizens and companies
//! and the console for department staff, rendered on the server with minijinja from templates
//! embedded in the binary (a directory may override any of them), with every string in the
//! message catalogs (`messages/zh-CN.toml`, `messages/en.toml`), zh-CN first.
//!
//! Every function works without JavaScript: forms post and redirect. Every form carries a CSRF
//! token (a signed double-submit cookie). Reads of table data (previews, charts) go through the
//! same use cases — and so the same gate — as the API.
#![forbid(unsafe_code)]

mod applications;
mod chart;
mod console;
mod ctx;
mod evaluation;
mod evaluation_rules;
mod files;
mod i18n;
mod iot;
mod licenses;
mod map;
mod oidc;
mod present;
mod public;
mod quality;
mod render;
mod sources;

pub use ctx::{CSRF_COOKIE, Ctx};
pub use i18n::Lang;
pub use render::{Portal, PortalConfig};

use axum::Router;
use axum::routing::{get, post};
use citydata_api::AppState;
use std::sync::Arc;

/// The pages, under `/` (the API keeps `/api`).
pub fn router(portal: Arc<Portal>) -> Router<AppState> {
    Router::new()
        .route("/", get(public::home))
        .route("/datasets", get(public::datasets))
        .route("/datasets/{slug}", get(public::dataset))
        .route("/datasets/{slug}/feedback", post(public::feedback))
        .route("/departments", get(public::departments))
        .route("/departments/{code}", get(public::department))
        .route("/themes/{code}", get(public::theme))
        .route("/api-docs", get(public::api_docs))
        .route("/help", get(public::help))
        .route("/licenses/verify", get(licenses::verify_page).post(licenses::verify_submit))
        .route("/login", get(public::login_page).post(public::login))
        .route("/register", get(public::register_page).post(public::register))
        .route("/logout", post(public::logout))
        .route("/auth/oidc/{provider}/login", get(oidc::login))
        .route("/auth/oidc/{provider}/callback", get(oidc::callback))
        .route("/static/{file}", get(public::asset))
        .route("/console", get(console::home))
        .route("/console/resources/new", get(console::new_page).post(console::create))
        .route("/console/resources/{slug}/publish", post(console::publish))
        .route("/console/resources/{slug}/withdraw", get(console::withdraw_page).post(console::withdraw))
        .route("/console/resources/{slug}/edit", get(console::edit_page).post(console::edit))
        .route(
            "/console/resources/{slug}/upload",
            get(console::upload_page).post(console::upload).layer(axum::extract::DefaultBodyLimit::disable()),
        )
        .route("/console/requests", get(console::requests))
        .route("/console/requests/{id}", get(console::request_page))
        .route("/console/requests/{id}/approve", post(console::approve))
        .route("/console/requests/{id}/reject", post(console::reject))
        .route("/console/requests/{id}/comment", post(console::comment))
        .route("/console/apply/{slug}", get(console::apply_page).post(console::apply))
        .route("/console/grants", get(console::grants))
        .route("/console/grants/{id}/revoke", get(console::revoke_grant_page).post(console::revoke_grant))
        .route("/console/tokens", get(console::tokens).post(console::create_token))
        .route("/console/tokens/{id}/revoke", get(console::revoke_token_page).post(console::revoke_token))
        .route("/console/sharing-profiles", get(console::share_profiles).post(console::create_share_profile))
        .route(
            "/console/sharing-profiles/{id}/revoke",
            get(console::revoke_share_profile_page).post(console::revoke_share_profile),
        )
        .route("/console/service-accounts", get(console::service_accounts).post(console::create_service_account))
        .route(
            "/console/service-accounts/{id}",
            get(console::service_account).post(console::create_service_account_token),
        )
        .route(
            "/console/service-accounts/{id}/{token}/revoke",
            get(console::revoke_service_account_token_page).post(console::revoke_service_account_token),
        )
        .route("/console/sessions", get(console::sessions))
        .route("/console/sessions/end-others", post(console::end_other_sessions))
        .route("/console/sessions/{id}/end", post(console::end_session))
        .route("/console/inbox", get(console::inbox))
        .route("/console/inbox/{id}/read", post(console::mark_read))
        .route("/console/audit", get(console::audit))
        .route(
            "/console/resources/{slug}/files",
            get(files::files_page).post(files::upload).layer(axum::extract::DefaultBodyLimit::disable()),
        )
        .route("/console/resources/{slug}/rules", get(console::rules_page).post(console::save_rules))
        .route("/console/profile", get(console::profile))
        .route("/console/profile/password", post(console::change_password))
        .route("/console/tickets", get(console::tickets))
        .route("/console/tickets/{id}", get(console::ticket_page))
        .route("/console/tickets/{id}/{action}", post(console::ticket_step))
        .route("/console/verify", get(console::verify_list))
        .route("/console/verify/{slug}", get(console::verify_page).post(console::verify_submit))
        .route("/datasets/{slug}/quality", get(quality::dataset))
        .route("/datasets/{slug}/live", get(iot::live))
        .route("/console/devices", get(iot::devices))
        .route("/departments/{code}/quality", get(quality::department))
        .route("/console/quality", get(quality::console))
        .route("/evaluation", get(evaluation::public))
        .route("/dashboard", get(evaluation::dashboard))
        .route("/console/evaluation", get(evaluation::console))
        .route("/console/evaluation-rules", get(evaluation_rules::rules_page).post(evaluation_rules::save_rules))
        .route("/console/applications", get(applications::list))
        .route("/console/applications/new", get(applications::new_page).post(applications::create))
        .route("/console/applications/{id}/edit", get(applications::edit_page).post(applications::edit))
        .route("/console/sources", get(sources::list))
        .route("/console/sources/new", get(sources::new_page).post(sources::create))
        .route("/console/sources/{id}", get(sources::page))
        .route("/console/sources/{id}/run", post(sources::run))
        .layer(axum::Extension(portal))
}

/// The page for paths nothing else answers (outside `/api`).
pub async fn not_found(
    ctx: ctx::Ctx,
    axum::Extension(portal): axum::Extension<Arc<Portal>>,
) -> axum::response::Response {
    ctx.error_page(&portal, axum::http::StatusCode::NOT_FOUND, &ctx.m("error_not_found"))
}
