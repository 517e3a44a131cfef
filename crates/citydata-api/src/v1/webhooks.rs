//! Webhooks of departments, their delivery logs, and change subscriptions.

use crate::error::ErrorEnvelope;
use crate::extract::{ApiJson, ApiQuery, Auth, Meta};
use crate::{ApiError, AppState};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use citydata_core::webhooks::{DeliveryView, SubscriptionView, WebhookInput, WebhookView};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

/// Register a webhook for a department (its stewards and department admins). Each event that
/// reaches a member's inbox — `request.new`, `request.decided`, `request.comment`,
/// `request.overdue`, `grant.expiring`, `grant.revoked` — and each new table version of a
/// subscribed resource (`table.version`) is POSTed as JSON with headers `X-Citydata-Event`,
/// `X-Citydata-Delivery`, `X-Citydata-Timestamp` and `X-Citydata-Signature:
/// sha256=<hex HMAC-SHA256(secret, timestamp + "." + body)>`. A non-2xx answer or no answer
/// is retried with exponential backoff. The answer carries the `secret`, shown only once.
#[utoipa::path(post, path = "/api/v1/webhooks", tag = "webhooks", request_body = WebhookInput,
    responses((status = 201, body = WebhookView, description = "The webhook, with its secret (shown once)"),
        (status = 400, body = ErrorEnvelope), (status = 401, body = ErrorEnvelope), (status = 403, body = ErrorEnvelope)),
    security(("session" = []), ("bearer" = [])))]
pub async fn create_webhook(
    State(state): State<AppState>,
    Meta(meta): Meta,
    Auth(p): Auth,
    ApiJson(input): ApiJson<WebhookInput>,
) -> Result<(StatusCode, Json<WebhookView>), ApiError> {
    Ok((StatusCode::CREATED, Json(state.core.create_webhook(&meta, &p, input).await?)))
}

/// The webhooks of my departments (platform admins: all), without their secrets.
#[utoipa::path(get, path = "/api/v1/webhooks", tag = "webhooks",
    responses((status = 200, body = Vec<WebhookView>), (status = 401, body = ErrorEnvelope)),
    security(("session" = []), ("bearer" = [])))]
pub async fn list_webhooks(State(state): State<AppState>, Auth(p): Auth) -> Result<Json<Vec<WebhookView>>, ApiError> {
    Ok(Json(state.core.list_webhooks(&p).await?))
}

/// Remove a webhook with its delivery log and subscriptions.
#[utoipa::path(delete, path = "/api/v1/webhooks/{id}", tag = "webhooks", params(("id" = String, Path)),
    responses((status = 204), (status = 401, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope)),
    security(("session" = []), ("bearer" = [])))]
pub async fn delete_webhook(
    State(state): State<AppState>,
    Meta(meta): Meta,
    Auth(p): Auth,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    state.core.delete_webhook(&meta, &p, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DeliveriesQuery {
    /// 1–1000, default 100.
    pub limit: Option<u32>,
}

/// The delivery log of a webhook, newest first: event, payload, state (`pending`,
/// `delivered`, `failed`), attempts, the latest HTTP status or error, the next attempt.
#[utoipa::path(get, path = "/api/v1/webhooks/{id}/deliveries", tag = "webhooks", params(("id" = String, Path), DeliveriesQuery),
    responses((status = 200, body = Vec<DeliveryView>), (status = 400, body = ErrorEnvelope), (status = 401, body = ErrorEnvelope),
        (status = 404, body = ErrorEnvelope)),
    security(("session" = []), ("bearer" = [])))]
pub async fn deliveries(
    State(state): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<DeliveriesQuery>,
) -> Result<Json<Vec<DeliveryView>>, ApiError> {
    Ok(Json(state.core.webhook_deliveries(&p, &id, q.limit.unwrap_or(100)).await?))
}

#[derive(Deserialize, ToSchema)]
pub struct SubscribeBody {
    /// The webhook (of your department) to tell.
    pub webhook_id: String,
}

/// Subscribe to a resource's new table versions: each commit POSTs a `table.version` event
/// (`{resource_id, version, changes}`) to the webhook. Your department must be able to read the
/// resource (a grant, or an unconditional share); the check is repeated at every version.
#[utoipa::path(post, path = "/api/v1/resources/{id}/subscriptions", tag = "webhooks", params(("id" = String, Path)),
    request_body = SubscribeBody,
    responses((status = 201, body = SubscriptionView), (status = 400, body = ErrorEnvelope), (status = 401, body = ErrorEnvelope),
        (status = 403, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope)),
    security(("session" = []), ("bearer" = [])))]
pub async fn subscribe(
    State(state): State<AppState>,
    Meta(meta): Meta,
    Auth(p): Auth,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<SubscribeBody>,
) -> Result<(StatusCode, Json<SubscriptionView>), ApiError> {
    Ok((StatusCode::CREATED, Json(state.core.subscribe(&meta, &p, &id, &body.webhook_id).await?)))
}

/// My departments' subscriptions (platform admins: all).
#[utoipa::path(get, path = "/api/v1/subscriptions", tag = "webhooks",
    responses((status = 200, body = Vec<SubscriptionView>), (status = 401, body = ErrorEnvelope)),
    security(("session" = []), ("bearer" = [])))]
pub async fn list_subscriptions(
    State(state): State<AppState>,
    Auth(p): Auth,
) -> Result<Json<Vec<SubscriptionView>>, ApiError> {
    Ok(Json(state.core.list_subscriptions(&p).await?))
}

/// End a subscription.
#[utoipa::path(delete, path = "/api/v1/subscriptions/{id}", tag = "webhooks", params(("id" = String, Path)),
    responses((status = 204), (status = 401, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope)),
    security(("session" = []), ("bearer" = [])))]
pub async fn unsubscribe(
    State(state): State<AppState>,
    Meta(meta): Meta,
    Auth(p): Auth,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    state.core.unsubscribe(&meta, &p, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}
