//! Extractors: JSON bodies with enveloped rejections, the authenticated caller, request facts.

use crate::{ApiError, AppState};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use citydata_core::RequestMeta;
use citydata_domain::principal::Principal;
use serde::de::DeserializeOwned;
use serde_json::json;

/// `Query<T>` whose rejection is the API envelope: 400 `validation_failed` naming the parameter
/// that did not parse.
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let axum::extract::Query(q) = axum::extract::Query::<T>::from_request_parts(parts, state).await?;
        Ok(Self(q))
    }
}

/// `Json<T>` whose rejections use the API envelope: 415 `unsupported_media_type`,
/// 413 `payload_too_large`, 400 `malformed_json` (with line and column), 422 `invalid_body`
/// (a field of the wrong type, missing or unknown, named by its path in `details.field`).
pub struct ApiJson<T>(pub T);

/// An optional JSON body: absent (no `Content-Type`) is `None`; present, it must parse.
impl<T: DeserializeOwned, S: Send + Sync> axum::extract::OptionalFromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Option<Self>, Self::Rejection> {
        if req.headers().get(axum::http::header::CONTENT_TYPE).is_none() {
            return Ok(None);
        }
        <Self as FromRequest<S>>::from_request(req, state).await.map(Some)
    }
}

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let is_json = req
            .headers()
            .get(axum::http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .map(|m| {
                let m = m.trim().to_ascii_lowercase();
                m == "application/json" || (m.starts_with("application/") && m.ends_with("+json"))
            })
            .unwrap_or(false);
        if !is_json {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "请求体须为 JSON，Content-Type 应为 application/json / expected Content-Type: application/json",
            ));
        }
        let bytes = axum::body::Bytes::from_request(req, state).await.map_err(|rej| {
            if rej.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", "请求体过大 / request body too large")
            } else {
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "bad_request",
                    "无法读取请求体 / could not read the request body",
                )
            }
        })?;
        let mut de = serde_json::Deserializer::from_slice(&bytes);
        let value = serde_path_to_error::deserialize(&mut de).map_err(|e| {
            let path = e.path().to_string();
            json_error(&path, e.into_inner())
        })?;
        de.end().map_err(|e| json_error(".", e))?;
        Ok(Self(value))
    }
}

fn json_error(path: &str, inner: serde_json::Error) -> ApiError {
    let (line, column) = (inner.line(), inner.column());
    let reason = strip_position(&inner.to_string());
    // A missing field is reported by serde at its parent; name the field itself.
    let missing = reason.strip_prefix("missing field `").and_then(|r| r.split('`').next());
    let path = match (missing, path) {
        (Some(m), ".") => m.to_string(),
        (Some(m), p) => format!("{p}.{m}"),
        (None, p) => p.to_string(),
    };
    match inner.classify() {
        serde_json::error::Category::Data => ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
            format!("请求体字段 {path} 有误 / field {path} is invalid: {reason}"),
        )
        .with_details(json!({ "field": path, "reason": reason, "line": line, "column": column })),
        _ => ApiError::new(
            StatusCode::BAD_REQUEST,
            "malformed_json",
            format!("请求体不是合法的 JSON（第 {line} 行第 {column} 列）/ request body is not valid JSON (line {line}, column {column}): {reason}"),
        )
        .with_details(json!({ "line": line, "column": column })),
    }
}

/// serde_json appends " at line L column C"; the envelope carries those as fields.
fn strip_position(msg: &str) -> String {
    match msg.rfind(" at line ") {
        Some(i) => msg[..i].to_string(),
        None => msg.to_string(),
    }
}

/// The caller, when authenticated (set by the authentication middleware).
#[derive(Clone)]
pub struct MaybeAuth(pub Option<Principal>);

/// The caller, required: 401 `unauthenticated` otherwise.
pub struct Auth(pub Principal);

impl FromRequestParts<AppState> for MaybeAuth {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, _: &AppState) -> Result<Self, Self::Rejection> {
        Ok(parts.extensions.get::<MaybeAuth>().cloned().unwrap_or(MaybeAuth(None)))
    }
}

impl FromRequestParts<AppState> for Auth {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        match MaybeAuth::from_request_parts(parts, state).await?.0 {
            Some(p) => Ok(Auth(p)),
            None => Err(citydata_core::CoreError::unauthenticated().into()),
        }
    }
}

/// Request facts for the audit log (set by the request middleware).
pub struct Meta(pub RequestMeta);

impl<S: Send + Sync> FromRequestParts<S> for Meta {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Meta(parts.extensions.get::<RequestMeta>().cloned().unwrap_or_default()))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn strips_position() {
        assert_eq!(super::strip_position("key must be a string at line 1 column 2"), "key must be a string");
        assert_eq!(super::strip_position("EOF"), "EOF");
    }
}
