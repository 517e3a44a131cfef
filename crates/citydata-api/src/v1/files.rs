//! 文件分发: files published with a resource (`/resources/{id}/files`). Thin handlers over
//! `citydata_core::files`; the download shapes HTTP: `Range`/206/416, `ETag`/`If-None-Match`
//! 304, `Content-Disposition` with the Chinese name (RFC 6266/5987 `filename*` plus an ASCII
//! `filename`), and headers that keep a browser from running anything it gets here.

use crate::error::ErrorEnvelope;
use crate::extract::{ApiQuery, Auth, MaybeAuth, Meta};
use crate::{ApiError, AppState};
use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use citydata_core::files::{ByteRange, Download, DownloadRequest, FileUploadInput, FileView, etag};
use citydata_domain::files::{FileKind, FileName};
use serde::Deserialize;
use utoipa::IntoParams;
use uuid::Uuid;

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct FileUploadQuery {
    /// The file name with its extension (a raw body needs it; a multipart part's file name is
    /// used otherwise).
    pub name: Option<String>,
    pub description: Option<String>,
    /// The provider states the file holds no personal information.
    pub deidentified: Option<bool>,
}

fn truthy(v: &str) -> bool {
    matches!(v.trim(), "true" | "1" | "on" | "yes")
}

/// Publish a file with a resource (stewards of the provider department): multipart (part
/// `file`, fields `name`, `description`, `deidentified`) or the raw body with `?name=`. The type
/// is found in the content and must match the extension (PDF, DOC/DOCX, XLS/XLSX, ZIP,
/// Shapefile ZIP, PNG, JPEG, GeoJSON/JSON, CSV); executables, HTML/SVG and ZIP bombs are
/// refused. A file of an existing name becomes its next version.
#[utoipa::path(post, path = "/api/v1/resources/{id}/files", tag = "files", params(("id" = String, Path), FileUploadQuery),
    request_body(content = Vec<u8>, description = "The file (raw or multipart/form-data)", content_type = "application/octet-stream"),
    responses(
        (status = 201, description = "Stored", body = FileView),
        (status = 400, body = ErrorEnvelope, description = "Bad name, or the content is refused: file_type_mismatch, file_type_not_allowed, executable_refused, shapefile_incomplete, bad_zip, bad_json, empty_file"),
        (status = 401, body = ErrorEnvelope), (status = 403, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope),
        (status = 413, body = ErrorEnvelope, description = "Larger than max_file_bytes, or a ZIP that expands past the limits"),
    ),
    security(("session" = []), ("bearer" = [])))]
pub async fn upload_file(
    State(state): State<AppState>,
    Meta(meta): Meta,
    Auth(p): Auth,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<FileUploadQuery>,
    request: axum::extract::Request,
) -> Result<(StatusCode, Json<FileView>), ApiError> {
    let multipart = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.to_ascii_lowercase().starts_with("multipart/form-data"));
    let mut input = FileUploadInput {
        name: q.name.unwrap_or_default(),
        description: q.description,
        deidentified: q.deidentified.unwrap_or(false),
    };
    let body: Box<dyn std::io::Read + Send> = if multipart {
        let up = super::data::multipart_upload(request).await?;
        for (k, v) in &up.fields {
            match k.as_str() {
                "name" if !v.trim().is_empty() => input.name = v.clone(),
                "description" => input.description = Some(v.clone()),
                "deidentified" => input.deidentified = truthy(v),
                _ => {}
            }
        }
        if input.name.trim().is_empty() {
            input.name = up.file_name.unwrap_or_default();
        }
        up.file
    } else {
        use futures::TryStreamExt;
        let stream = request.into_body().into_data_stream().map_err(std::io::Error::other);
        Box::new(tokio_util::io::SyncIoBridge::new(tokio_util::io::StreamReader::new(stream)))
    };
    let view = state.core.upload_file(&meta, &p, &id, input, body).await?;
    Ok((StatusCode::CREATED, Json(view)))
}

/// The files of a resource the caller may download, every version (by name, newest first).
/// A caller the gate refuses gets the refusal, not the list.
#[utoipa::path(get, path = "/api/v1/resources/{id}/files", tag = "files", params(("id" = String, Path)),
    responses((status = 200, body = Vec<FileView>), (status = 403, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope)))]
pub async fn list_files(
    State(state): State<AppState>,
    Meta(meta): Meta,
    MaybeAuth(p): MaybeAuth,
    Path(id): Path<String>,
) -> Result<Json<Vec<FileView>>, ApiError> {
    Ok(Json(state.core.list_files(&meta, p.as_ref(), &id).await?))
}

/// RFC 5987 `ext-value` encoding of a UTF-8 string (attr-char kept, the rest as %XX).
fn rfc5987(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `inline` (PDF, images: the browser's own viewer) or `attachment`, with the name twice: an
/// ASCII stand-in for old clients and the real one as `filename*`.
pub fn content_disposition(name: &str, kind: FileKind) -> String {
    let ascii = FileName::parse(name).map(|n| n.ascii_fallback()).unwrap_or_else(|_| "file".into());
    let ascii = ascii.replace(['"', '\\'], "_");
    let disposition = if kind.inline() { "inline" } else { "attachment" };
    format!("{disposition}; filename=\"{ascii}\"; filename*=UTF-8''{}", rfc5987(name))
}

/// A file id from the path: anything but a UUID names no file.
fn parse_id(s: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(s).map_err(|_| ApiError::new(StatusCode::NOT_FOUND, "not_found", "文件不存在 / no such file"))
}

fn header_text(h: &HeaderMap, name: header::HeaderName) -> Option<String> {
    h.get(name).and_then(|v| v.to_str().ok()).map(str::to_string)
}

fn guard_headers(h: &mut HeaderMap, sha256: &str) {
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static("sandbox"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("private, no-cache"));
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    if let Ok(v) = HeaderValue::from_str(&etag(sha256)) {
        h.insert(header::ETAG, v);
    }
}

/// Download a file through the gate (audited with the bytes sent). `Range: bytes=a-b` gives
/// 206; `If-None-Match` with the ETag (the content's SHA-256) gives 304. Served with the
/// type found in the content, `X-Content-Type-Options: nosniff` and `Content-Security-Policy:
/// sandbox`; PDFs and images inline, everything else as an attachment.
#[utoipa::path(get, path = "/api/v1/resources/{id}/files/{file_id}", tag = "files",
    params(("id" = String, Path), ("file_id" = Uuid, Path),
        ("Range" = Option<String>, Header, description = "One byte range: bytes=a-b, bytes=a-, bytes=-n"),
        ("If-None-Match" = Option<String>, Header, description = "The ETag of a copy the client has")),
    responses(
        (status = 200, description = "The file", content_type = "application/octet-stream"),
        (status = 206, description = "The range asked for", content_type = "application/octet-stream"),
        (status = 304, description = "Not modified"),
        (status = 403, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope),
        (status = 416, description = "Range not satisfiable")))]
pub async fn download_file(
    State(state): State<AppState>,
    Meta(meta): Meta,
    MaybeAuth(p): MaybeAuth,
    Path((id, file_id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let file_id = parse_id(&file_id)?;
    let req = DownloadRequest {
        range: header_text(&headers, header::RANGE).as_deref().and_then(ByteRange::parse),
        if_none_match: header_text(&headers, header::IF_NONE_MATCH),
        if_range: header_text(&headers, header::IF_RANGE),
    };
    let resp = match state.core.download_file(&meta, p.as_ref(), &id, file_id, req).await? {
        Download::NotModified(f) => {
            let mut r = StatusCode::NOT_MODIFIED.into_response();
            guard_headers(r.headers_mut(), &f.sha256);
            r
        }
        Download::Unsatisfiable(f) => {
            let mut r = StatusCode::RANGE_NOT_SATISFIABLE.into_response();
            guard_headers(r.headers_mut(), &f.sha256);
            if let Ok(v) = HeaderValue::from_str(&format!("bytes */{}", f.size)) {
                r.headers_mut().insert(header::CONTENT_RANGE, v);
            }
            r
        }
        Download::Content { file, kind, range, body } => {
            let (status, len) = match range {
                Some((a, b)) => (StatusCode::PARTIAL_CONTENT, b - a + 1),
                None => (StatusCode::OK, file.size as u64),
            };
            let mut r = Response::new(Body::from_stream(body));
            *r.status_mut() = status;
            let h = r.headers_mut();
            guard_headers(h, &file.sha256);
            h.insert(header::CONTENT_TYPE, HeaderValue::from_static(kind.media_type()));
            h.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
            if let Ok(v) = HeaderValue::from_str(&content_disposition(&file.name, kind)) {
                h.insert(header::CONTENT_DISPOSITION, v);
            }
            if let Some((a, b)) = range
                && let Ok(v) = HeaderValue::from_str(&format!("bytes {a}-{b}/{}", file.size))
            {
                h.insert(header::CONTENT_RANGE, v);
            }
            r
        }
    };
    Ok(resp)
}

/// Remove one version of a file (stewards of the provider department).
#[utoipa::path(delete, path = "/api/v1/resources/{id}/files/{file_id}", tag = "files",
    params(("id" = String, Path), ("file_id" = Uuid, Path)),
    responses((status = 204, description = "Removed"), (status = 401, body = ErrorEnvelope),
        (status = 403, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope)),
    security(("session" = []), ("bearer" = [])))]
pub async fn delete_file(
    State(state): State<AppState>,
    Meta(meta): Meta,
    Auth(p): Auth,
    Path((id, file_id)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let file_id = parse_id(&file_id)?;
    state.core.delete_file(&meta, &p, &id, file_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn disposition_carries_the_chinese_name_and_an_ascii_fallback() {
        let d = content_disposition("国土空间规划 2024.pdf", FileKind::Pdf);
        assert_eq!(
            d,
            "inline; filename=\"______ 2024.pdf\"; filename*=UTF-8''%E5%9B%BD%E5%9C%9F%E7%A9%BA%E9%97%B4%E8%A7%84%E5%88%92%202024.pdf"
        );
        assert!(content_disposition("a.zip", FileKind::Zip).starts_with("attachment; "));
    }
}
