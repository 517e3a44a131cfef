//! Data of a resource: uploads (ingests), versions, quarantine.

use crate::error::ErrorEnvelope;
use crate::extract::{ApiQuery, Auth, MaybeAuth, Meta};
use crate::{ApiError, AppState};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use citydata_core::ingest::{IngestBody, IngestParams, IngestView, QuarantinedRow, TableVersionView, ingest_view};
use futures::TryStreamExt;
use serde::Deserialize;
use serde_json::json;
use std::io::Read;
use utoipa::IntoParams;

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UploadQuery {
    /// `append` (default), `replace`, `upsert` (by key items) or `delete` (by key items).
    pub mode: Option<String>,
    /// `csv` (default), `tsv`, `xlsx`, `json`/`geojson`, `ndjson`, `parquet`, `shapefile` (a zipped
    /// layer; also `shp`, `zip`, a `.zip` file name or `Content-Type: application/zip`); gzip is detected.
    pub format: Option<String>,
    /// `auto` (default: UTF-8, UTF-8 with BOM or GB18030 detected), `utf-8`, `gb18030`/`gbk`.
    pub encoding: Option<String>,
    /// `quarantine` (default), `reject` or `accept`.
    pub policy: Option<String>,
    /// CSV delimiter (one character, or `tab`).
    pub delimiter: Option<String>,
    /// XLSX sheet name (default: the first sheet).
    pub sheet: Option<String>,
    /// `false` when the file has no header row.
    pub header: Option<bool>,
    /// Ignore columns that match no item instead of refusing the file.
    pub ignore_extra: Option<bool>,
    /// With `mode=delete` or `mode=replace`: erase the removed rows for good (old files, change
    /// feed and log history removed; older versions then answer 410 `version_erased`).
    pub erase: Option<bool>,
}

/// Reads the request body as it arrives, refusing more than `limit` bytes.
pub struct Limited<R> {
    inner: R,
    left: u64,
}

impl<R> Limited<R> {
    pub fn new(inner: R, limit: u64) -> Self {
        Self { inner, left: limit }
    }
}

impl<R: Read> Read for Limited<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n as u64 > self.left {
            return Err(std::io::Error::new(std::io::ErrorKind::FileTooLarge, "upload limit exceeded"));
        }
        self.left -= n as u64;
        Ok(n)
    }
}

/// A streamed multipart upload: the first file part as a reader, its file name, and the text
/// fields that came before it (a form puts its other fields first).
pub struct MultipartUpload {
    pub file: Box<dyn Read + Send>,
    pub file_name: Option<String>,
    pub fields: Vec<(String, String)>,
}

/// The first file part of a multipart upload, streamed: a task owns the multipart body and
/// forwards the part's chunks. Text fields before the file (at most 64 KiB each) are returned.
pub async fn multipart_upload(request: axum::extract::Request) -> Result<MultipartUpload, ApiError> {
    use axum::extract::FromRequest;
    let bad = |m: String| ApiError::new(StatusCode::BAD_REQUEST, "bad_multipart", m);
    let mut mp = axum::extract::Multipart::from_request(request, &())
        .await
        .map_err(|e| bad(format!("multipart 请求无效 / invalid multipart body: {}", e.body_text())))?;
    let (tx, rx) = tokio::sync::mpsc::channel::<std::io::Result<axum::body::Bytes>>(4);
    type Ready = Result<(Option<String>, Vec<(String, String)>), String>;
    let (ready_tx, ready_rx) = tokio::sync::oneshot::channel::<Ready>();
    tokio::spawn(async move {
        let mut ready = Some(ready_tx);
        let mut fields = Vec::new();
        loop {
            match mp.next_field().await {
                Ok(Some(mut field)) if field.file_name().is_some() || field.name() == Some("file") => {
                    if let Some(r) = ready.take() {
                        let _ = r.send(Ok((field.file_name().map(str::to_string), std::mem::take(&mut fields))));
                    }
                    loop {
                        match field.chunk().await {
                            Ok(Some(c)) => {
                                if tx.send(Ok(c)).await.is_err() {
                                    return;
                                }
                            }
                            Ok(None) => return,
                            Err(e) => {
                                let _ = tx.send(Err(std::io::Error::other(e.body_text()))).await;
                                return;
                            }
                        }
                    }
                }
                Ok(Some(field)) => {
                    let name = field.name().unwrap_or("").to_string();
                    match field.text().await {
                        Ok(t) if t.len() <= 65_536 && fields.len() < 64 => fields.push((name, t)),
                        Ok(_) => {}
                        Err(e) => {
                            if let Some(r) = ready.take() {
                                let _ = r.send(Err(e.body_text()));
                            }
                            return;
                        }
                    }
                }
                Ok(None) => {
                    if let Some(r) = ready.take() {
                        let _ =
                            r.send(Err("multipart 中没有文件（字段名 file）/ no file part (field \"file\")".into()));
                    }
                    return;
                }
                Err(e) => {
                    if let Some(r) = ready.take() {
                        let _ = r.send(Err(e.body_text()));
                    }
                    return;
                }
            }
        }
    });
    let (file_name, fields) = match ready_rx.await {
        Ok(Ok(x)) => x,
        Ok(Err(m)) => return Err(bad(m)),
        Err(_) => return Err(bad("multipart 请求无效 / invalid multipart body".into())),
    };
    let stream = futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|x| (x, rx)) });
    let file = Box::new(tokio_util::io::SyncIoBridge::new(tokio_util::io::StreamReader::new(Box::pin(stream))));
    Ok(MultipartUpload { file, file_name, fields })
}

fn format_from_content_type(headers: &HeaderMap) -> Option<String> {
    let ct = headers.get(header::CONTENT_TYPE)?.to_str().ok()?.split(';').next()?.trim().to_ascii_lowercase();
    Some(
        match ct.as_str() {
            "text/csv" => "csv",
            "text/tab-separated-values" => "tsv",
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet" => "xlsx",
            "application/x-ndjson" | "application/jsonl" => "ndjson",
            "application/json" => "json",
            "application/vnd.apache.parquet" | "application/x-parquet" => "parquet",
            "application/geo+json" => "json",
            "application/zip" | "application/x-zip-compressed" | "application/x-shapefile" => "shapefile",
            _ => return None,
        }
        .to_string(),
    )
}

/// Upload data into a resource's table (stewards of the provider department). The body is the
/// file itself, read as it arrives. Valid rows are committed as one new table version; invalid
/// rows go to the quarantine with their failing item and rule. An `Idempotency-Key` header makes
/// a retry safe: the same key is never applied twice.
#[utoipa::path(post, path = "/api/v1/resources/{id}/data", tag = "data", params(("id" = String, Path), UploadQuery,
        ("Idempotency-Key" = Option<String>, Header, description = "Apply this upload at most once")),
    request_body(content = Vec<u8>, description = "The file", content_type = "text/csv"),
    responses(
        (status = 201, description = "Committed; the ingest with its report", body = IngestView),
        (status = 200, description = "The Idempotency-Key was applied before; that ingest", body = IngestView),
        (status = 400, body = ErrorEnvelope, description = "The file cannot be read: details.line and details.column name where"),
        (status = 403, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope), (status = 409, body = ErrorEnvelope),
        (status = 413, body = ErrorEnvelope), (status = 422, body = ErrorEnvelope, description = "policy=reject and invalid rows: nothing committed"),
    ),
    security(("session" = []), ("bearer" = [])))]
pub async fn upload(
    State(state): State<AppState>,
    Meta(meta): Meta,
    Auth(p): Auth,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<UploadQuery>,
    request: axum::extract::Request,
) -> Result<(StatusCode, Json<IngestView>), ApiError> {
    let headers = request.headers().clone();
    let key = headers.get("idempotency-key").and_then(|v| v.to_str().ok()).map(str::to_string);
    let params = IngestParams {
        mode: q.mode,
        format: q.format.or_else(|| format_from_content_type(&headers)),
        encoding: q.encoding,
        policy: q.policy,
        delimiter: q.delimiter,
        sheet: q.sheet,
        header: q.header,
        ignore_extra: q.ignore_extra.unwrap_or(false),
        idempotency_key: key.clone(),
        erase: q.erase.unwrap_or(false),
        key_range: None,
    };
    let is_multipart = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.to_ascii_lowercase().starts_with("multipart/form-data"));
    let mut params = params;
    let reader: Box<dyn Read + Send> = if is_multipart {
        let MultipartUpload { file: r, file_name: name, fields } = multipart_upload(request).await?;
        if fields.iter().any(|(k, v)| k == "erase" && matches!(v.trim(), "true" | "1" | "on")) {
            params.erase = true;
        }
        if params.format.is_none() {
            params.format = name.as_deref().and_then(citydata_core::ingest::Format::name_from_file_name);
        }
        r
    } else {
        let stream = request.into_body().into_data_stream().map_err(std::io::Error::other);
        Box::new(tokio_util::io::SyncIoBridge::new(tokio_util::io::StreamReader::new(stream)))
    };
    let limited = Limited::new(reader, state.max_upload_bytes);
    let (record, replayed) =
        state.core.ingest_data(&meta, &p, &id, &params, IngestBody::Stream(Box::new(limited)), None).await?;
    let view = ingest_view(&record);
    if record.state.as_str() == "rejected" {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "rejected",
            "文件中有无效行，按 policy=reject 未写入任何数据 / the file has invalid rows; with policy=reject nothing was committed",
        )
        .with_details(json!({ "ingest": view })));
    }
    Ok((if replayed { StatusCode::OK } else { StatusCode::CREATED }, Json(IngestView::from(&record))))
}

/// The ingests of a resource, newest first.
#[utoipa::path(get, path = "/api/v1/resources/{id}/ingests", tag = "data", params(("id" = String, Path)),
    responses((status = 200, body = Vec<IngestView>), (status = 404, body = ErrorEnvelope)))]
pub async fn list_ingests(
    State(state): State<AppState>,
    MaybeAuth(p): MaybeAuth,
    Path(id): Path<String>,
) -> Result<Json<Vec<IngestView>>, ApiError> {
    Ok(Json(state.core.list_ingests(p.as_ref(), &id).await?.iter().map(IngestView::from).collect()))
}

/// One ingest and its report: rows read, committed, quarantined, failures per item and rule, a
/// sample of failing rows, duration, rows/s and the resulting table version.
#[utoipa::path(get, path = "/api/v1/resources/{id}/ingests/{ingest_id}", tag = "data",
    params(("id" = String, Path), ("ingest_id" = String, Path)),
    responses((status = 200, body = IngestView), (status = 404, body = ErrorEnvelope)))]
pub async fn get_ingest(
    State(state): State<AppState>,
    MaybeAuth(p): MaybeAuth,
    Path((id, ingest_id)): Path<(String, String)>,
) -> Result<Json<IngestView>, ApiError> {
    Ok(Json(IngestView::from(&state.core.get_ingest(p.as_ref(), &id, &ingest_id).await?)))
}

/// The versions of a resource's table, newest first (time travel reads name one).
#[utoipa::path(get, path = "/api/v1/resources/{id}/versions", tag = "data", params(("id" = String, Path)),
    responses((status = 200, body = Vec<TableVersionView>), (status = 404, body = ErrorEnvelope)))]
pub async fn versions(
    State(state): State<AppState>,
    MaybeAuth(p): MaybeAuth,
    Path(id): Path<String>,
) -> Result<Json<Vec<TableVersionView>>, ApiError> {
    let v = state.core.table_versions(p.as_ref(), &id).await?;
    Ok(Json(v.iter().map(TableVersionView::from).collect()))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct QuarantineQuery {
    /// Only the rows of this ingest.
    pub ingest_id: Option<String>,
    /// 1–10000, default 100.
    pub limit: Option<u32>,
}

/// Quarantined rows with the failing item, rule and message and the original cells (the
/// provider department only).
#[utoipa::path(get, path = "/api/v1/resources/{id}/quarantine", tag = "data", params(("id" = String, Path), QuarantineQuery),
    responses((status = 200, body = Vec<QuarantinedRow>), (status = 403, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope)),
    security(("session" = []), ("bearer" = [])))]
pub async fn quarantine(
    State(state): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<QuarantineQuery>,
) -> Result<Json<Vec<QuarantinedRow>>, ApiError> {
    Ok(Json(state.core.quarantine(&p, &id, q.ingest_id.as_deref(), q.limit.unwrap_or(100)).await?))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RowsQuery {
    /// Comma-separated items (names or Chinese titles); default: every item you may read.
    pub fields: Option<String>,
    /// e.g. `区县 = '海陵区' AND 出生日期 >= '1990-01-01'` (on unmasked items you may read).
    pub filter: Option<String>,
    /// Comma-separated items; `-` for descending.
    pub sort: Option<String>,
    /// 1–32000, default 100.
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// Read an older table version (time travel).
    pub version: Option<i64>,
    /// `exact`, `estimated` or `none` (default).
    pub count: Option<String>,
}

/// Rows of a resource's table through the policy gate: only the items and rows your grant (or
/// the share/open rules) allow, masked as decided. `403` with `grant_required`,
/// `grant_expired`, `grant_revoked`, `not_shared` or `not_open` otherwise. Every read is audited.
#[utoipa::path(get, path = "/api/v1/resources/{id}/rows", tag = "data", params(("id" = String, Path), RowsQuery),
    responses((status = 200, body = citydata_core::reads::RowsResult, description = "The rows you may read, masked, with their fields"),
        (status = 400, body = ErrorEnvelope), (status = 403, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope)))]
pub async fn rows(
    State(state): State<AppState>,
    Meta(meta): Meta,
    MaybeAuth(p): MaybeAuth,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<RowsQuery>,
) -> Result<Json<citydata_core::reads::RowsResult>, ApiError> {
    let params = citydata_core::reads::RowsParams {
        fields: q.fields,
        filter: q.filter,
        sort: q.sort,
        limit: q.limit,
        cursor: q.cursor,
        offset: None,
        version: q.version,
        count: q.count,
        estimate_above: None,
        q: None,
        q_fields: vec![],
    };
    Ok(Json(state.core.read_rows(&meta, p.as_ref(), &id, &params).await?))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ChangesQuery {
    /// The table version you already have (required); changes after it are returned.
    pub since_version: Option<i64>,
    /// Comma-separated items; default: every item you may read.
    pub fields: Option<String>,
    /// A filter on unmasked items you may read, applied to each changed row.
    pub filter: Option<String>,
    /// 1–10000, default 1000.
    pub limit: Option<u32>,
    /// `next_offset` of the previous answer.
    pub offset: Option<usize>,
    /// The last version to include: pass the first page's `current_version` with `offset`, so
    /// that every page describes the same versions while new commits arrive.
    pub until_version: Option<i64>,
}

/// 增量同步: the rows inserted, updated (as they are now) and deleted after `since_version`,
/// from the table's change data feed, through the policy gate exactly like `rows` (the same
/// items, masks and row filter; `403` without a grant). Each row carries `_commit_version`;
/// `current_version` is the `since_version` of your next call. A replace upload shows as the
/// deletion of every old row and the insertion of every new one. Audited.
#[utoipa::path(get, path = "/api/v1/resources/{id}/changes", tag = "data", params(("id" = String, Path), ChangesQuery),
    responses((status = 200, body = citydata_core::reads::ChangesResult),
        (status = 400, body = ErrorEnvelope), (status = 403, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope)))]
pub async fn changes(
    State(state): State<AppState>,
    Meta(meta): Meta,
    MaybeAuth(p): MaybeAuth,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<ChangesQuery>,
) -> Result<Json<citydata_core::reads::ChangesResult>, ApiError> {
    let params = citydata_core::reads::ChangesParams {
        since_version: q.since_version,
        fields: q.fields,
        filter: q.filter,
        limit: q.limit,
        offset: q.offset,
        until_version: q.until_version,
    };
    Ok(Json(state.core.read_changes(&meta, p.as_ref(), &id, &params).await?))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ExportQuery {
    /// `csv` (default), `ndjson`, `json`, `parquet`, `xlsx`, `geojson` (resources with a spatial item: a FeatureCollection).
    pub format: Option<String>,
    /// Start CSV with a UTF-8 BOM (for Excel).
    pub bom: Option<bool>,
    /// `utf-8` (default) or `gb18030` (CSV).
    pub encoding: Option<String>,
    /// `name` (default) or `title` (Chinese column titles).
    pub header: Option<String>,
    pub fields: Option<String>,
    pub filter: Option<String>,
    pub sort: Option<String>,
    pub version: Option<i64>,
    /// CSV: cells starting with `=`, `+`, `-`, `@`, tab or CR (not numbers) get a leading `'`
    /// so that spreadsheets do not run them as formulas (default `true`; `false` for machine
    /// readers that want the cells exactly).
    pub csv_safe: Option<bool>,
}

/// Download what you may read of a resource, streamed in constant memory, through the gate
/// like every read (masked, filtered, audited with its row and byte counts).
#[utoipa::path(get, path = "/api/v1/resources/{id}/export", tag = "data", params(("id" = String, Path), ExportQuery),
    responses((status = 200, description = "The file", content_type = "text/csv"),
        (status = 400, body = ErrorEnvelope), (status = 403, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope)))]
pub async fn export(
    State(state): State<AppState>,
    Meta(meta): Meta,
    MaybeAuth(p): MaybeAuth,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<ExportQuery>,
) -> Result<axum::response::Response, ApiError> {
    use axum::response::IntoResponse;
    let params = citydata_core::exports::ExportParams {
        format: q.format,
        bom: q.bom.unwrap_or(false),
        encoding: q.encoding,
        header: q.header,
        fields: q.fields,
        filter: q.filter,
        sort: q.sort,
        version: q.version,
        csv_raw: !q.csv_safe.unwrap_or(true),
    };
    let e = state.core.export(&meta, p.as_ref(), &id, &params).await?;
    let stream = futures::stream::unfold(e.body, |mut rx| async move { rx.recv().await.map(|x| (x, rx)) });
    let mut resp = axum::body::Body::from_stream(stream).into_response();
    let ctype = if params
        .encoding
        .as_deref()
        .is_some_and(|x| x.eq_ignore_ascii_case("gb18030") || x.eq_ignore_ascii_case("gbk"))
    {
        "text/csv; charset=gb18030"
    } else {
        e.content_type
    };
    resp.headers_mut().insert(header::CONTENT_TYPE, axum::http::HeaderValue::from_static(ctype));
    resp.headers_mut().insert(header::CONTENT_DISPOSITION, super::catalog_io::attachment(&e.ascii_name, &e.file_name));
    Ok(resp)
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AggregateQuery {
    /// Comma-separated items (names or titles).
    pub group_by: Option<String>,
    /// `count,sum(x),avg(x),min(x),max(x)`; default `count`.
    pub metrics: Option<String>,
    pub filter: Option<String>,
    pub version: Option<i64>,
    /// `day`, `month` or `year`: date and datetime groups by the local calendar period; a
    /// positive number: numeric groups in classes of that width (`floor(x / w) × w`), and
    /// spatial groups in grid cells of that many metres (10–100000), each named by the WKT of
    /// its centre.
    pub bucket: Option<String>,
    /// At most this many groups (1–100000, default 10000); a grouping with more is refused
    /// with `too_many_groups` (400) instead of answering every value as its own group.
    pub max_groups: Option<u64>,
}

/// Groups an HTTP aggregate answers at most unless it asks for fewer or more (up to
/// [`AGGREGATE_MAX_GROUPS_LIMIT`]): the same order as a SQL answer's 10,000 rows.
pub const AGGREGATE_MAX_GROUPS: u64 = 10_000;
pub const AGGREGATE_MAX_GROUPS_LIMIT: u64 = 100_000;

/// Grouped counts and metrics through the gate. For the public, groups smaller than the
/// threshold (5) are suppressed (GB/T 37964 small-cell suppression) and counted in
/// `suppressed_groups`.
#[utoipa::path(get, path = "/api/v1/resources/{id}/aggregate", tag = "data", params(("id" = String, Path), AggregateQuery),
    responses((status = 200, body = citydata_core::reads::AggregateResult), (status = 400, body = ErrorEnvelope), (status = 403, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope)))]
pub async fn aggregate(
    State(state): State<AppState>,
    Meta(meta): Meta,
    MaybeAuth(p): MaybeAuth,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<AggregateQuery>,
) -> Result<Json<citydata_core::reads::AggregateResult>, ApiError> {
    let params = citydata_core::reads::AggregateParams {
        group_by: q.group_by,
        metrics: q.metrics,
        filter: q.filter,
        version: q.version,
        bucket: q.bucket,
        max_groups: Some(aggregate_max_groups(q.max_groups)?),
        cache: false,
    };
    Ok(Json(state.core.aggregate(&meta, p.as_ref(), &id, &params).await?))
}

fn aggregate_max_groups(asked: Option<u64>) -> Result<usize, ApiError> {
    match asked.unwrap_or(AGGREGATE_MAX_GROUPS) {
        n @ 1..=AGGREGATE_MAX_GROUPS_LIMIT => Ok(n as usize),
        _ => Err(citydata_core::CoreError::Input {
            code: "bad_parameter",
            message: format!(
                "max_groups 须在 1 到 {AGGREGATE_MAX_GROUPS_LIMIT} 之间 / max_groups must be between 1 and {AGGREGATE_MAX_GROUPS_LIMIT}"
            ),
            line: None,
            column: Some("max_groups".into()),
        }
        .into()),
    }
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SqlRequest {
    /// One SELECT over views named by resource code (in double quotes) or slug, e.g.
    /// `SELECT qx, count(*) FROM "101/000001" GROUP BY qx`.
    pub sql: String,
}

/// Run one read-only SELECT over the resources you may read (government users). Each view is
/// the gate's view of the resource: only granted items and rows, masked. DDL, DML and COPY are
/// refused; at most 10,000 rows; 30 s.
#[utoipa::path(post, path = "/api/v1/sql", tag = "data", request_body = SqlRequest,
    responses((status = 200, body = citydata_core::sql::SqlResult),
        (status = 400, body = ErrorEnvelope), (status = 401, body = ErrorEnvelope), (status = 403, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope)),
    security(("session" = []), ("bearer" = [])))]
pub async fn sql(
    State(state): State<AppState>,
    Meta(meta): Meta,
    Auth(p): Auth,
    crate::extract::ApiJson(body): crate::extract::ApiJson<SqlRequest>,
) -> Result<Json<citydata_core::sql::SqlResult>, ApiError> {
    Ok(Json(state.core.run_sql(&meta, &p, &body.sql).await?))
}
