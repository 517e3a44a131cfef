//! 物联网: device types, devices, MQTT streams and the real-time `latest` read.

use crate::error::ErrorEnvelope;
use crate::extract::{ApiJson, ApiQuery, Auth, MaybeAuth, Meta};
use crate::{ApiError, AppState};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use citydata_core::CoreError;
use citydata_core::iot::latest::LatestView;
use citydata_core::iot::streams::{StreamInput, StreamPatch, StreamView};
use citydata_core::iot::{DeviceInput, DevicePatch, DeviceTypeInput, DeviceTypePatch, DeviceTypeView, DeviceView};
use serde::Deserialize;
use utoipa::IntoParams;
use uuid::Uuid;

fn id(kind: &str, s: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(s.trim()).map_err(|_| CoreError::NotFound(format!("{kind}不存在：{s} / no such {kind}")).into())
}

/// Register a device type: its payload schema maps JSON paths of a message onto the resource's
/// items (units converted by `factor`), names the device and timestamp fields and the format.
/// The resource's provider department only (stewards, department admins, platform admins).
#[utoipa::path(post, path = "/api/v1/device-types", tag = "iot", request_body = DeviceTypeInput,
    responses((status = 201, body = DeviceTypeView), (status = 400, body = ErrorEnvelope), (status = 401, body = ErrorEnvelope),
        (status = 403, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope)),
    security(("session" = []), ("bearer" = [])))]
pub async fn create_device_type(
    State(state): State<AppState>,
    Meta(meta): Meta,
    Auth(p): Auth,
    ApiJson(input): ApiJson<DeviceTypeInput>,
) -> Result<(StatusCode, Json<DeviceTypeView>), ApiError> {
    Ok((StatusCode::CREATED, Json(state.core.create_device_type(&meta, &p, &input).await?)))
}

/// The device types of my departments (platform admins: all).
#[utoipa::path(get, path = "/api/v1/device-types", tag = "iot",
    responses((status = 200, body = Vec<DeviceTypeView>), (status = 401, body = ErrorEnvelope)),
    security(("session" = []), ("bearer" = [])))]
pub async fn list_device_types(
    State(state): State<AppState>,
    Auth(p): Auth,
) -> Result<Json<Vec<DeviceTypeView>>, ApiError> {
    Ok(Json(state.core.list_device_types(&p).await?))
}

/// One device type.
#[utoipa::path(get, path = "/api/v1/device-types/{id}", tag = "iot", params(("id" = String, Path)),
    responses((status = 200, body = DeviceTypeView), (status = 401, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope)),
    security(("session" = []), ("bearer" = [])))]
pub async fn get_device_type(
    State(state): State<AppState>,
    Auth(p): Auth,
    Path(tid): Path<String>,
) -> Result<Json<DeviceTypeView>, ApiError> {
    Ok(Json(state.core.get_device_type(&p, id("设备类型", &tid)?).await?))
}

/// Change a device type's name, payload schema or interval.
#[utoipa::path(patch, path = "/api/v1/device-types/{id}", tag = "iot", params(("id" = String, Path)), request_body = DeviceTypePatch,
    responses((status = 200, body = DeviceTypeView), (status = 400, body = ErrorEnvelope), (status = 401, body = ErrorEnvelope),
        (status = 403, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope)),
    security(("session" = []), ("bearer" = [])))]
pub async fn update_device_type(
    State(state): State<AppState>,
    Meta(meta): Meta,
    Auth(p): Auth,
    Path(tid): Path<String>,
    ApiJson(patch): ApiJson<DeviceTypePatch>,
) -> Result<Json<DeviceTypeView>, ApiError> {
    Ok(Json(state.core.update_device_type(&meta, &p, id("设备类型", &tid)?, &patch).await?))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DevicesQuery {
    /// Only the devices feeding this resource (id, code or slug).
    pub resource: Option<String>,
}

/// Register a device under a device type of my department.
#[utoipa::path(post, path = "/api/v1/devices", tag = "iot", request_body = DeviceInput,
    responses((status = 201, body = DeviceView), (status = 400, body = ErrorEnvelope), (status = 401, body = ErrorEnvelope),
        (status = 403, body = ErrorEnvelope), (status = 409, body = ErrorEnvelope)),
    security(("session" = []), ("bearer" = [])))]
pub async fn create_device(
    State(state): State<AppState>,
    Meta(meta): Meta,
    Auth(p): Auth,
    ApiJson(input): ApiJson<DeviceInput>,
) -> Result<(StatusCode, Json<DeviceView>), ApiError> {
    Ok((StatusCode::CREATED, Json(state.core.create_device(&meta, &p, &input).await?)))
}

/// The devices of my departments with their newest message and online state.
#[utoipa::path(get, path = "/api/v1/devices", tag = "iot", params(DevicesQuery),
    responses((status = 200, body = Vec<DeviceView>), (status = 401, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope)),
    security(("session" = []), ("bearer" = [])))]
pub async fn list_devices(
    State(state): State<AppState>,
    Auth(p): Auth,
    ApiQuery(q): ApiQuery<DevicesQuery>,
) -> Result<Json<Vec<DeviceView>>, ApiError> {
    Ok(Json(state.core.list_devices(&p, q.resource.as_deref()).await?))
}

/// One device.
#[utoipa::path(get, path = "/api/v1/devices/{id}", tag = "iot", params(("id" = String, Path)),
    responses((status = 200, body = DeviceView), (status = 401, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope)),
    security(("session" = []), ("bearer" = [])))]
pub async fn get_device(
    State(state): State<AppState>,
    Auth(p): Auth,
    Path(did): Path<String>,
) -> Result<Json<DeviceView>, ApiError> {
    Ok(Json(state.core.get_device(&p, &did).await?))
}

/// Change a device (name, model, location, region, `status` active/disabled).
#[utoipa::path(patch, path = "/api/v1/devices/{id}", tag = "iot", params(("id" = String, Path)), request_body = DevicePatch,
    responses((status = 200, body = DeviceView), (status = 400, body = ErrorEnvelope), (status = 401, body = ErrorEnvelope),
        (status = 403, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope)),
    security(("session" = []), ("bearer" = [])))]
pub async fn update_device(
    State(state): State<AppState>,
    Meta(meta): Meta,
    Auth(p): Auth,
    Path(did): Path<String>,
    ApiJson(patch): ApiJson<DevicePatch>,
) -> Result<Json<DeviceView>, ApiError> {
    Ok(Json(state.core.update_device(&meta, &p, &did, &patch).await?))
}

/// Create an MQTT stream into a resource (its provider department). The password is kept as a
/// secret and never shown again.
#[utoipa::path(post, path = "/api/v1/streams", tag = "iot", request_body = StreamInput,
    responses((status = 201, body = StreamView), (status = 400, body = ErrorEnvelope), (status = 401, body = ErrorEnvelope),
        (status = 403, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope)),
    security(("session" = []), ("bearer" = [])))]
pub async fn create_stream(
    State(state): State<AppState>,
    Meta(meta): Meta,
    Auth(p): Auth,
    ApiJson(input): ApiJson<StreamInput>,
) -> Result<(StatusCode, Json<StreamView>), ApiError> {
    Ok((StatusCode::CREATED, Json(state.core.create_stream(&meta, &p, &input).await?)))
}

/// The streams of my departments, with the consuming node and its counters.
#[utoipa::path(get, path = "/api/v1/streams", tag = "iot",
    responses((status = 200, body = Vec<StreamView>), (status = 401, body = ErrorEnvelope)),
    security(("session" = []), ("bearer" = [])))]
pub async fn list_streams(State(state): State<AppState>, Auth(p): Auth) -> Result<Json<Vec<StreamView>>, ApiError> {
    Ok(Json(state.core.list_streams(&p).await?))
}

/// One stream.
#[utoipa::path(get, path = "/api/v1/streams/{id}", tag = "iot", params(("id" = String, Path)),
    responses((status = 200, body = StreamView), (status = 401, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope)),
    security(("session" = []), ("bearer" = [])))]
pub async fn get_stream(
    State(state): State<AppState>,
    Auth(p): Auth,
    Path(sid): Path<String>,
) -> Result<Json<StreamView>, ApiError> {
    Ok(Json(state.core.get_stream(&p, id("数据流", &sid)?).await?))
}

/// Change a stream (`enabled: false` stops its consumer at the next lease renewal).
#[utoipa::path(patch, path = "/api/v1/streams/{id}", tag = "iot", params(("id" = String, Path)), request_body = StreamPatch,
    responses((status = 200, body = StreamView), (status = 400, body = ErrorEnvelope), (status = 401, body = ErrorEnvelope),
        (status = 403, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope)),
    security(("session" = []), ("bearer" = [])))]
pub async fn update_stream(
    State(state): State<AppState>,
    Meta(meta): Meta,
    Auth(p): Auth,
    Path(sid): Path<String>,
    ApiJson(patch): ApiJson<StreamPatch>,
) -> Result<Json<StreamView>, ApiError> {
    Ok(Json(state.core.update_stream(&meta, &p, id("数据流", &sid)?, &patch).await?))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LatestQuery {
    /// One device's newest row (default: every device's).
    pub device: Option<String>,
}

/// The newest row per device of a stream-fed resource, through the policy gate (masks apply;
/// a caller the gate refuses gets its refusal, and the read is audited).
#[utoipa::path(get, path = "/api/v1/resources/{id}/latest", tag = "iot", params(("id" = String, Path), LatestQuery),
    responses((status = 200, body = LatestView), (status = 400, body = ErrorEnvelope), (status = 403, body = ErrorEnvelope),
        (status = 404, body = ErrorEnvelope)))]
pub async fn latest(
    State(state): State<AppState>,
    Meta(meta): Meta,
    MaybeAuth(p): MaybeAuth,
    Path(rid): Path<String>,
    ApiQuery(q): ApiQuery<LatestQuery>,
) -> Result<Json<LatestView>, ApiError> {
    Ok(Json(state.core.latest(&meta, p.as_ref(), &rid, q.device.as_deref()).await?))
}

/// Register many devices of one device type from a spreadsheet (XLSX, first sheet, or CSV in
/// UTF-8/GB18030) with the columns 设备编码, 设备名称, 型号, 经度, 纬度, 行政区划代码 (or id,
/// name, model, lon, lat, region). All or nothing: any bad cell refuses the file, named by row
/// and column in `details.fields`.
#[utoipa::path(post, path = "/api/v1/device-types/{id}/devices", tag = "iot",
    params(("id" = String, Path, description = "The device type")),
    request_body(content = Vec<u8>, description = "The xlsx workbook or CSV file", content_type = "application/octet-stream"),
    responses((status = 201, body = Vec<DeviceView>), (status = 400, body = ErrorEnvelope), (status = 401, body = ErrorEnvelope),
        (status = 403, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope), (status = 409, body = ErrorEnvelope),
        (status = 413, body = ErrorEnvelope)),
    security(("session" = []), ("bearer" = [])))]
pub async fn import_devices(
    State(state): State<AppState>,
    Meta(meta): Meta,
    Auth(p): Auth,
    Path(tid): Path<String>,
    body: Result<axum::body::Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<(StatusCode, Json<Vec<DeviceView>>), ApiError> {
    // A malformed id is a JSON 404 like the other device-type routes, not axum's plain text.
    let id = id("设备类型", &tid)?;
    let body = body.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", "文件过大 / file too large")
        } else {
            ApiError::new(StatusCode::BAD_REQUEST, "bad_request", "无法读取请求体 / could not read the request body")
        }
    })?;
    Ok((StatusCode::CREATED, Json(state.core.import_devices(&meta, &p, id, &body).await?)))
}
