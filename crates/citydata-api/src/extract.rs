//! Extractors: JSON bodies with enveloped rejections, the authenticated caller, request facts.

use crate::{ApiError, AppState};
use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use citydata_core::RequestMeta;
use citydata_domain::principal::Principal;
use serde::de::DeserializeOwned;
use serde_json::json;

/// `Json<T>` whose rejections use the API envelope: 400 `malformed_json` (with line and
/// column), 415 `unsupported_media_type`, 413 `payload_too_large`, 422 `invalid_body`
/// (a field of the wrong type, missing or unknown).
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(v)) => Ok(Self(v)),
            Err(rej) => Err(json_rejection(rej)),
        }
    }
}

fn json_rejection(rej: JsonRejection) -> ApiError {
    match rej {
        JsonRejection::JsonSyntaxError(e) => {
            let (line, column, msg) = serde_position(&e.body_text());
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "malformed_json",
                format!("请求体不是合法的 JSON（第 {line} 行第 {column} 列）/ request body is not valid JSON (line {line}, column {column}): {msg}"),
            )
            .with_details(json!({ "line": line, "column": column }))
        }
        JsonRejection::JsonDataError(e) => {
            let (line, column, msg) = serde_position(&e.body_text());
            ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_body",
                format!("请求体字段有误 / request body does not match the expected shape: {msg}"),
            )
            .with_details(json!({ "line": line, "column": column, "reason": msg }))
        }
        JsonRejection::MissingJsonContentType(_) => ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "请求体须为 JSON，Content-Type 应为 application/json / expected Content-Type: application/json",
        ),
        other if other.status() == StatusCode::PAYLOAD_TOO_LARGE => ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            "请求体过大 / request body too large",
        ),
        other => ApiError::new(other.status(), "bad_request", "无法读取请求体 / could not read the request body"),
    }
}

/// Pull "line L column C" out of serde_json's message (kept free of any internal detail).
fn serde_position(text: &str) -> (u64, u64, String) {
    let msg = text.rsplit_once(": ").map(|(_, m)| m).unwrap_or(text).to_string();
    let num_after = |key: &str| -> u64 {
        msg.find(key)
            .and_then(|i| msg[i + key.len()..].split(|c: char| !c.is_ascii_digit()).next()?.parse().ok())
            .unwrap_or(0)
    };
    (num_after("line "), num_after("column "), msg)
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
    fn extracts_serde_position() {
        let (l, c, m) = super::serde_position("Failed to parse the request body as JSON: key must be a string at line 1 column 2");
        assert_eq!((l, c), (1, 2));
        assert!(m.starts_with("key must"));
    }
}
