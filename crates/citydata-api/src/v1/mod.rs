//! REST API v1 (`/api/v1`).

mod audit;
mod auth;
pub(crate) mod catalog_io;
pub mod data;
mod departments;
pub mod evaluation;
pub mod files;
pub mod grants;
pub mod iot;
mod licenses;
mod oidc;
pub mod quality;
mod requests;
pub mod resources;
mod service_accounts;
mod sessions;
pub mod sharing;
mod sources;
mod tokens;
mod users;
mod verify;
pub mod views;
mod webhooks;

use crate::openapi::ApiDoc;
use crate::{ApiError, AppState};
use axum::extract::Extension;
use axum::response::IntoResponse;
use axum::{Json, Router};
use std::sync::Arc;
use utoipa::OpenApi;
use utoipa::openapi::OpenApi as OpenApiDoc;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// Largest catalog file accepted by `POST /api/v1/catalog/import`.
pub const IMPORT_LIMIT: usize = 32 * 1024 * 1024;

/// All `/api/v1` routes and the OpenAPI document describing exactly them.
pub fn router() -> (Router<AppState>, OpenApiDoc) {
    let (router, doc) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(openapi_json))
        .routes(routes!(auth::login))
        .routes(routes!(auth::logout))
        .routes(routes!(auth::register))
        .routes(routes!(auth::change_password))
        .routes(routes!(auth::me))
        .routes(routes!(departments::list_departments, departments::create_department))
        .routes(routes!(departments::get_department))
        .routes(routes!(users::list_users, users::create_user))
        .routes(routes!(tokens::list_tokens, tokens::create_token))
        .routes(routes!(tokens::revoke_token))
        .routes(routes!(service_accounts::list, service_accounts::create))
        .routes(routes!(service_accounts::list_tokens, service_accounts::create_token))
        .routes(routes!(service_accounts::revoke_token))
        .routes(routes!(oidc::pin_roles))
        .routes(routes!(sessions::list_sessions, sessions::end_other_sessions))
        .routes(routes!(sessions::end_session))
        .routes(routes!(audit::list_audit))
        .routes(routes!(audit::verify_audit))
        .routes(routes!(resources::list_resources, resources::create_resource))
        .routes(routes!(resources::get_resource, resources::update_resource, resources::delete_resource))
        .routes(routes!(resources::publish_resource))
        .routes(routes!(resources::withdraw_resource))
        .routes(routes!(resources::resource_revisions))
        .routes(routes!(resources::list_themes))
        .routes(routes!(resources::search))
        .routes(routes!(catalog_io::export_catalog))
        .routes(routes!(data::list_ingests))
        .routes(routes!(data::get_ingest))
        .routes(routes!(data::versions))
        .routes(routes!(data::quarantine))
        .routes(routes!(data::rows))
        .routes(routes!(data::changes))
        .routes(routes!(data::export))
        .routes(routes!(data::aggregate))
        .routes(routes!(data::sql))
        .routes(routes!(verify::verify))
        .routes(routes!(licenses::verify_license))
        .routes(routes!(licenses::receipt_key))
        .routes(routes!(licenses::receipt_key_pem))
        .routes(routes!(grants::list_grants, grants::create_grant))
        .routes(routes!(grants::revoke_grant))
        .routes(routes!(requests::list_requests, requests::create_request))
        .routes(routes!(requests::get_request))
        .routes(routes!(requests::commitment))
        .routes(routes!(requests::renew_grant))
        .routes(routes!(requests::approve))
        .routes(routes!(requests::reject))
        .routes(routes!(requests::withdraw))
        .routes(routes!(requests::list_comments, requests::add_comment))
        .routes(routes!(requests::inbox))
        .routes(routes!(requests::mark_read))
        .routes(routes!(requests::response_times))
        .routes(routes!(webhooks::list_webhooks, webhooks::create_webhook))
        .routes(routes!(webhooks::delete_webhook))
        .routes(routes!(webhooks::deliveries))
        .routes(routes!(webhooks::subscribe))
        .routes(routes!(webhooks::list_subscriptions))
        .routes(routes!(webhooks::unsubscribe))
        .routes(routes!(iot::list_device_types, iot::create_device_type))
        .routes(routes!(iot::get_device_type, iot::update_device_type))
        .routes(routes!(iot::list_devices, iot::create_device))
        .routes(routes!(iot::get_device, iot::update_device))
        .routes(routes!(iot::list_streams, iot::create_stream))
        .routes(routes!(iot::get_stream, iot::update_stream))
        .routes(routes!(iot::latest))
        .routes(routes!(quality::quality))
        .routes(routes!(quality::quality_history))
        .routes(routes!(quality::profile))
        .routes(routes!(quality::resource_tickets, quality::create_ticket))
        .routes(routes!(quality::list_tickets))
        .routes(routes!(quality::get_ticket))
        .routes(routes!(quality::accept_ticket))
        .routes(routes!(quality::reject_ticket))
        .routes(routes!(quality::fix_ticket))
        .routes(routes!(quality::confirm_ticket))
        .routes(routes!(quality::reopen_ticket))
        .routes(routes!(quality::comment_ticket))
        .routes(routes!(quality::assign_ticket))
        .routes(routes!(quality::overdue))
        .routes(routes!(evaluation::evaluation))
        .routes(routes!(evaluation::department))
        .routes(routes!(evaluation::records))
        .routes(routes!(evaluation::export))
        .routes(routes!(evaluation::get_rules, evaluation::put_rules))
        .routes(routes!(evaluation::list_applications, evaluation::create_application))
        .routes(routes!(sharing::list_profiles, sharing::create_profile))
        .routes(routes!(sharing::revoke_profile))
        .merge(sources::routes())
        .routes(routes!(files::download_file, files::delete_file))
        .merge(
            OpenApiRouter::new()
                .routes(routes!(files::list_files, files::upload_file))
                .layer(axum::extract::DefaultBodyLimit::disable()),
        )
        .merge(OpenApiRouter::new().routes(routes!(data::upload)).layer(axum::extract::DefaultBodyLimit::disable()))
        .merge(
            OpenApiRouter::new()
                .routes(routes!(catalog_io::import_catalog))
                .layer(axum::extract::DefaultBodyLimit::max(IMPORT_LIMIT)),
        )
        .merge(
            OpenApiRouter::new()
                .routes(routes!(iot::import_devices))
                .layer(axum::extract::DefaultBodyLimit::max(IMPORT_LIMIT)),
        )
        .split_for_parts();
    let mut doc = doc;
    crate::openapi::document_rejections(&mut doc);
    crate::scopes::document(&mut doc);
    let shared = Arc::new(doc.clone());
    let router = router
        .fallback(|| async { ApiError::route_not_found() })
        .method_not_allowed_fallback(|| async { ApiError::method_not_allowed() })
        .layer(Extension(shared));
    (router, doc)
}

/// This OpenAPI 3.1 document.
#[utoipa::path(get, path = "/api/v1/openapi.json", tag = "meta",
    responses((status = 200, description = "OpenAPI 3.1 document", content_type = "application/json")))]
async fn openapi_json(Extension(doc): Extension<Arc<OpenApiDoc>>) -> impl IntoResponse {
    Json(doc.as_ref().clone())
}
