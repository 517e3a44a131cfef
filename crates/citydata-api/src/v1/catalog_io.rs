//! Catalog spreadsheets: export and import (目录编制表).

use crate::error::ErrorEnvelope;
use crate::extract::{ApiQuery, Auth, MaybeAuth, Meta};
use crate::{ApiError, AppState};
use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use citydata_core::catalog_io::{CatalogFormat, ImportReport};
use serde::Deserialize;
use serde_json::json;
use utoipa::IntoParams;

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ExportQuery {
    /// `xlsx` (default: a 资源 sheet and a 信息项 sheet) or `csv` (one row per item).
    pub format: Option<String>,
    /// Cells starting with `=`, `+`, `-`, `@`, tab or CR (other than numbers) get a leading `'`
    /// so that spreadsheets do not run them as formulas (default true; `false` for machine
    /// readers; import takes the `'` off again).
    pub csv_safe: Option<bool>,
}

/// `attachment; filename="ascii"; filename*=UTF-8''percent-encoded`.
pub fn attachment(ascii: &str, utf8: &str) -> HeaderValue {
    let mut enc = String::new();
    for b in utf8.as_bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(b) {
            enc.push(*b as char);
        } else {
            enc.push_str(&format!("%{b:02X}"));
        }
    }
    HeaderValue::from_str(&format!("attachment; filename=\"{ascii}\"; filename*=UTF-8''{enc}"))
        .unwrap_or_else(|_| HeaderValue::from_static("attachment"))
}

/// The catalog the caller may see as a spreadsheet with Chinese column headers.
#[utoipa::path(get, path = "/api/v1/catalog/export", tag = "catalog", params(ExportQuery),
    responses((status = 200, description = "The workbook or CSV", content_type = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
        (status = 400, body = ErrorEnvelope)))]
pub async fn export_catalog(
    State(state): State<AppState>,
    MaybeAuth(p): MaybeAuth,
    ApiQuery(q): ApiQuery<ExportQuery>,
) -> Result<Response, ApiError> {
    let format = CatalogFormat::parse(q.format.as_deref().unwrap_or("xlsx"))?;
    let bytes = state.core.export_catalog(p.as_ref(), format, q.csv_safe.unwrap_or(true)).await?;
    let (ctype, ext) = match format {
        CatalogFormat::Xlsx => ("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", "xlsx"),
        CatalogFormat::Csv => ("text/csv; charset=utf-8", "csv"),
    };
    let mut resp = bytes.into_response();
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(ctype));
    resp.headers_mut()
        .insert(header::CONTENT_DISPOSITION, attachment(&format!("catalog.{ext}"), &format!("政务数据资源目录.{ext}")));
    Ok(resp)
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ImportQuery {
    /// `xlsx` or `csv`; detected from the content when absent.
    pub format: Option<String>,
    /// Import the good rows even when others fail (default false: all or nothing).
    pub partial: Option<bool>,
}

/// Import a catalog spreadsheet (the export's layout) sent as the request body. Every problem
/// is reported by sheet, row and column in `details.issues`; unless `partial=true`, nothing is
/// imported when there is any.
#[utoipa::path(post, path = "/api/v1/catalog/import", tag = "catalog", params(ImportQuery),
    request_body(content = Vec<u8>, description = "The xlsx workbook or CSV file", content_type = "application/octet-stream"),
    responses((status = 200, description = "What was imported", body = ImportReport),
        (status = 400, body = ErrorEnvelope, description = "Problems by sheet, row and column in details.issues"),
        (status = 401, body = ErrorEnvelope), (status = 413, body = ErrorEnvelope)),
    security(("session" = []), ("bearer" = [])))]
pub async fn import_catalog(
    State(state): State<AppState>,
    Meta(meta): Meta,
    Auth(p): Auth,
    ApiQuery(q): ApiQuery<ImportQuery>,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<Json<ImportReport>, ApiError> {
    let body = body.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", "文件过大 / file too large")
        } else {
            ApiError::new(StatusCode::BAD_REQUEST, "bad_request", "无法读取请求体 / could not read the request body")
        }
    })?;
    let format = q.format.as_deref().map(CatalogFormat::parse).transpose()?;
    let partial = q.partial.unwrap_or(false);
    let report = state.core.import_catalog(&meta, &p, &body, format, partial).await?;
    if !report.issues.is_empty() && (!partial || report.created + report.updated == 0) {
        let summary: Vec<String> = report.issues.iter().take(5).map(|i| i.to_string()).collect();
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "validation_failed",
            format!(
                "目录文件有 {} 处问题，未导入 / the catalog file has {} problems: {}",
                report.issues.len(),
                report.issues.len(),
                summary.join("; ")
            ),
        )
        .with_details(json!({ "issues": report.issues, "resources_in_file": report.resources_in_file })));
    }
    Ok(Json(report))
}
