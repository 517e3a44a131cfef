//! The one error model of the HTTP API: stable snake_case codes, zh-CN-first messages, field
//! details; never a stack trace, SQL text or file path.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use citydata_core::CoreError;
use serde::Serialize;
use serde_json::json;

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub details: serde_json::Value,
    pub retry_after: Option<u64>,
}

/// The envelope, for the OpenAPI document.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ErrorEnvelope {
    pub error: ErrorBody,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// Stable code: `validation_failed`, `malformed_json`, `invalid_body`, `unauthenticated`,
    /// `invalid_token`, `forbidden`, `not_found`, `method_not_allowed`, `conflict`,
    /// `payload_too_large`, `decompressed_too_large`, `unsupported_media_type`, `rate_limited`,
    /// `busy` (503), `store_unavailable` (503, the database), `storage_full` (507),
    /// `storage_unavailable` (503, the lake), `table_unreadable` (500), `internal`.
    pub code: String,
    pub message: String,
    #[schema(value_type = Object)]
    pub details: serde_json::Value,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self { status, code, message: message.into(), details: json!({}), retry_after: None }
    }
    pub fn with_details(mut self, details: serde_json::Value) -> Self {
        self.details = details;
        self
    }
    /// The message followed by each field error's message (for pages that show one line).
    pub fn message_with_fields(&self) -> String {
        let fields: Vec<&str> = self
            .details
            .get("fields")
            .and_then(|f| f.as_array())
            .map(|f| f.iter().filter_map(|x| x["message"].as_str()).collect())
            .unwrap_or_default();
        if fields.is_empty() { self.message.clone() } else { format!("{}：{}", self.message, fields.join("；")) }
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }
    pub fn route_not_found() -> Self {
        Self::not_found("没有这个接口 / no such endpoint")
    }
    pub fn method_not_allowed() -> Self {
        Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            "此接口不支持该请求方法 / method not allowed on this endpoint",
        )
    }
    pub fn internal() -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "服务器内部错误，请稍后重试 / internal server error")
    }
}

/// A query string that does not fit the handler's parameters: 400 naming the parameter.
impl From<axum::extract::rejection::QueryRejection> for ApiError {
    fn from(e: axum::extract::rejection::QueryRejection) -> Self {
        ApiError::new(
            axum::http::StatusCode::BAD_REQUEST,
            "validation_failed",
            format!("查询参数有误 / invalid query parameters: {}", e.body_text()),
        )
    }
}

impl From<CoreError> for ApiError {
    fn from(e: CoreError) -> Self {
        match e {
            CoreError::Validation(errs) => {
                Self::new(StatusCode::BAD_REQUEST, "validation_failed", format!("输入有误 / invalid input: {errs}"))
                    .with_details(json!({ "fields": errs.0 }))
            }
            CoreError::Unauthenticated(m) => Self::new(StatusCode::UNAUTHORIZED, "unauthenticated", m),
            CoreError::Forbidden(m) => Self::new(StatusCode::FORBIDDEN, "forbidden", m),
            CoreError::InsufficientScope(m) => Self::new(StatusCode::FORBIDDEN, "insufficient_scope", m),
            CoreError::NotFound(m) => Self::not_found(m),
            CoreError::Conflict(m) => Self::new(StatusCode::CONFLICT, "conflict", m),
            CoreError::InvalidTransition { state, message } => {
                Self::new(StatusCode::CONFLICT, "invalid_transition", message).with_details(json!({ "state": state }))
            }
            CoreError::RateLimited { retry_after_secs } => {
                let mut e = Self::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    "rate_limited",
                    format!("尝试次数过多，请 {retry_after_secs} 秒后重试 / too many attempts, retry after {retry_after_secs} s"),
                )
                .with_details(json!({ "retry_after_secs": retry_after_secs }));
                e.retry_after = Some(retry_after_secs);
                e
            }
            CoreError::QuotaExhausted { retry_after_secs, resets_at } => {
                let mut e = Self::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    "quota_exhausted",
                    format!(
                        "今日核验额度已用完，将于 {} 重置 / today's verification quota is used up; it resets at {}",
                        citydata_domain::cast::format_instant(resets_at),
                        resets_at.to_rfc3339()
                    ),
                )
                .with_details(json!({ "retry_after_secs": retry_after_secs, "resets_at": resets_at.to_rfc3339() }));
                e.retry_after = Some(retry_after_secs);
                e
            }
            CoreError::Busy { retry_after_secs } => {
                let mut e = Self::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "busy",
                    format!("服务器繁忙，请 {retry_after_secs} 秒后重试 / the server is busy, retry after {retry_after_secs} s"),
                )
                .with_details(json!({ "retry_after_secs": retry_after_secs }));
                e.retry_after = Some(retry_after_secs);
                e
            }
            // A decompression bomb is a too-large upload, whatever its compressed size.
            CoreError::Input { code: code @ "decompressed_too_large", message, .. } => {
                Self::new(StatusCode::PAYLOAD_TOO_LARGE, code, message)
            }
            // The same Idempotency-Key with another body: the request is well formed but cannot be
            // taken (never replay the other upload).
            CoreError::Input { code: code @ "idempotency_key_reused", message, .. } => {
                Self::new(StatusCode::UNPROCESSABLE_ENTITY, code, message)
            }
            CoreError::Input { code, message, line, column } => Self::new(StatusCode::BAD_REQUEST, code, message)
                .with_details(json!({ "line": line, "column": column })),
            CoreError::Denied(r) => Self::new(StatusCode::FORBIDDEN, r.code(), r.message()),
            CoreError::Gone { code, message } => Self::new(StatusCode::GONE, code, message),
            CoreError::TooLarge(m) => Self::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                format!("上传的文件超过大小限制 / the upload is larger than allowed: {m}"),
            ),
            CoreError::VersionNotFound(m) => Self::new(StatusCode::NOT_FOUND, "version_not_found", m),
            CoreError::VersionErased(m) => Self::new(StatusCode::GONE, "version_erased", m),
            CoreError::Storage { code, message, retry_after_secs } => {
                let status = match code {
                    "storage_full" => StatusCode::INSUFFICIENT_STORAGE,
                    "storage_unavailable" | "store_unavailable" | "provider_unavailable" => {
                        StatusCode::SERVICE_UNAVAILABLE
                    }
                    "write_conflict" => StatusCode::CONFLICT,
                    _ => StatusCode::INTERNAL_SERVER_ERROR,
                };
                let mut e = Self::new(status, code, message);
                e.retry_after = retry_after_secs;
                e
            }
            CoreError::SecondFactor { code, message, enrol } => Self::new(StatusCode::UNAUTHORIZED, code, message)
                .with_details(match enrol {
                    Some(e) => json!({"secret": e.secret, "otpauth_uri": e.otpauth_uri, "qr_svg": e.qr_svg}),
                    None => json!({}),
                }),
            CoreError::Internal(detail) => {
                tracing::error!(error = %detail, "internal error");
                Self::internal()
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({ "error": { "code": self.code, "message": self.message, "details": self.details } });
        let mut resp = (self.status, Json(body)).into_response();
        if let Some(s) = self.retry_after
            && let Ok(v) = HeaderValue::from_str(&s.to_string())
        {
            resp.headers_mut().insert(header::RETRY_AFTER, v);
        }
        resp
    }
}
