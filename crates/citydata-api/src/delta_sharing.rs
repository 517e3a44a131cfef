//! `/delta-sharing/`: the Delta Sharing protocol (delta-io/delta-sharing `PROTOCOL.md`) for
//! what the gate allows a profile's owner, and the signed file URLs its queries hand out.
//!
//! Thin, like every router: the bearer token is checked by [`Recipient`] (401 unknown, 403
//! revoked or expired), each handler calls one `citydata_core::sharing` use case, and every
//! error leaves in the protocol's own body `{"errorCode", "message"}` ([`SharingError`]).
//! The router sits outside the API's authentication middleware: a sharing token is no API
//! token and an API token is no sharing token.

use crate::AppState;
use crate::error::ApiError;
use crate::extract::Meta;
use axum::body::Body;
use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use citydata_core::sharing::profiles::ProfileAuth;
use citydata_core::sharing::protocol::share_name;
use citydata_core::sharing::{SharedTableRef, SharingQuery, TableMeta};
use citydata_domain::principal::Principal;
use serde::Deserialize;
use serde_json::{Value, json};

/// The protocol's routes.
pub fn router() -> Router<AppState> {
    let t = "/delta-sharing/shares/{share}/schemas/{schema}/tables/{table}";
    Router::new()
        .route("/delta-sharing/shares", get(list_shares))
        .route("/delta-sharing/shares/{share}", get(get_share))
        .route("/delta-sharing/shares/{share}/schemas", get(list_schemas))
        .route("/delta-sharing/shares/{share}/schemas/{schema}/tables", get(list_tables))
        .route("/delta-sharing/shares/{share}/all-tables", get(all_tables))
        .route(&format!("{t}/version"), get(table_version))
        .route(&format!("{t}/metadata"), get(table_metadata))
        .route(&format!("{t}/query"), post(query))
        .route(&format!("{t}/changes"), get(changes))
        .route("/delta-sharing/files/{*path}", get(file).head(file))
}

/// A protocol error: `{"errorCode", "message"}` with the API's status.
pub struct SharingError(ApiError);

impl From<ApiError> for SharingError {
    fn from(e: ApiError) -> Self {
        Self(e)
    }
}

impl From<citydata_core::CoreError> for SharingError {
    fn from(e: citydata_core::CoreError) -> Self {
        Self(e.into())
    }
}

impl IntoResponse for SharingError {
    fn into_response(self) -> Response {
        let e = self.0;
        let code = match e.status {
            StatusCode::NOT_FOUND => "RESOURCE_DOES_NOT_EXIST",
            StatusCode::UNAUTHORIZED => "UNAUTHENTICATED",
            StatusCode::FORBIDDEN => "PERMISSION_DENIED",
            StatusCode::BAD_REQUEST | StatusCode::UNPROCESSABLE_ENTITY => "INVALID_PARAMETER_VALUE",
            StatusCode::GONE => "INVALID_PARAMETER_VALUE",
            s if s.is_client_error() => "INVALID_PARAMETER_VALUE",
            _ => "INTERNAL_ERROR",
        };
        let status = if e.status == StatusCode::GONE { StatusCode::BAD_REQUEST } else { e.status };
        (status, Json(json!({"errorCode": code, "message": e.message}))).into_response()
    }
}

fn error(status: StatusCode, code: &'static str, message: &str) -> SharingError {
    SharingError(ApiError::new(status, code, message))
}

/// The profile's owner, from `Authorization: Bearer cds_…`.
pub struct Recipient(pub Principal);

impl FromRequestParts<AppState> for Recipient {
    type Rejection = SharingError;
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let token = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().strip_prefix("Bearer ").or_else(|| v.trim().strip_prefix("bearer ")))
            .map(str::trim)
            .unwrap_or("");
        match state.core.authenticate_sharing(token).await? {
            ProfileAuth::Valid(p) => Ok(Recipient(p)),
            ProfileAuth::Revoked => {
                Err(error(StatusCode::FORBIDDEN, "token_revoked", "共享凭证已撤销 / the sharing profile was revoked"))
            }
            ProfileAuth::Expired => {
                Err(error(StatusCode::FORBIDDEN, "token_expired", "共享凭证已过期 / the sharing profile has expired"))
            }
            ProfileAuth::Unknown => Err(error(
                StatusCode::UNAUTHORIZED,
                "invalid_token",
                "缺少或无效的共享凭证 / missing or invalid bearer token",
            )),
        }
    }
}

#[derive(Deserialize)]
pub struct Paging {
    #[serde(rename = "maxResults")]
    max_results: Option<String>,
    #[serde(rename = "pageToken")]
    page_token: Option<String>,
}

/// One page of `items` and the next page's token.
fn page<T: Clone>(items: &[T], p: &Paging) -> Result<(Vec<T>, Option<String>), SharingError> {
    let bad = |f: &str| error(StatusCode::BAD_REQUEST, "invalid_value", &format!("{f} 无效 / invalid {f}"));
    let max = match &p.max_results {
        None => 1000,
        Some(m) => m.parse::<usize>().ok().filter(|m| (1..=1000).contains(m)).ok_or_else(|| bad("maxResults"))?,
    };
    let start = match p.page_token.as_deref().filter(|t| !t.is_empty()) {
        None => 0,
        Some(t) => t.strip_prefix("o").and_then(|o| o.parse::<usize>().ok()).ok_or_else(|| bad("pageToken"))?,
    };
    let end = (start + max).min(items.len());
    let slice = items.get(start..end).map(<[T]>::to_vec).unwrap_or_default();
    Ok((slice, (end < items.len()).then(|| format!("o{end}"))))
}

fn items(items: Vec<Value>, next: Option<String>) -> Json<Value> {
    let mut v = json!({ "items": items });
    if let Some(n) = next {
        v["nextPageToken"] = json!(n);
    }
    Json(v)
}

async fn list_shares(Recipient(p): Recipient, Query(q): Query<Paging>) -> Result<Json<Value>, SharingError> {
    let (shares, next) = page(&[share_name(&p)], &q)?;
    Ok(items(shares.into_iter().map(|s| json!({ "name": s })).collect(), next))
}

async fn get_share(
    State(state): State<AppState>,
    Recipient(p): Recipient,
    Path(share): Path<String>,
) -> Result<Json<Value>, SharingError> {
    state.core.sharing_check_share(&p, &share)?;
    Ok(Json(json!({ "share": { "name": share } })))
}

async fn list_schemas(
    State(state): State<AppState>,
    Recipient(p): Recipient,
    Path(share): Path<String>,
    Query(q): Query<Paging>,
) -> Result<Json<Value>, SharingError> {
    state.core.sharing_check_share(&p, &share)?;
    let mut schemas: Vec<String> = state.core.sharing_tables(&p).await?.into_iter().map(|t| t.schema).collect();
    schemas.dedup();
    let (schemas, next) = page(&schemas, &q)?;
    Ok(items(schemas.into_iter().map(|s| json!({ "name": s, "share": share })).collect(), next))
}

fn table_json(t: &SharedTableRef) -> Value {
    json!({ "name": t.name, "schema": t.schema, "share": t.share, "id": t.resource_id })
}

async fn list_tables(
    State(state): State<AppState>,
    Recipient(p): Recipient,
    Path((share, schema)): Path<(String, String)>,
    Query(q): Query<Paging>,
) -> Result<Json<Value>, SharingError> {
    state.core.sharing_check_share(&p, &share)?;
    let tables: Vec<SharedTableRef> =
        state.core.sharing_tables(&p).await?.into_iter().filter(|t| t.schema == schema).collect();
    if tables.is_empty() {
        return Err(error(
            StatusCode::NOT_FOUND,
            "not_found",
            &format!("库不存在：{share}.{schema} / no such schema: {share}.{schema}"),
        ));
    }
    let (tables, next) = page(&tables, &q)?;
    Ok(items(tables.iter().map(table_json).collect(), next))
}

async fn all_tables(
    State(state): State<AppState>,
    Recipient(p): Recipient,
    Path(share): Path<String>,
    Query(q): Query<Paging>,
) -> Result<Json<Value>, SharingError> {
    state.core.sharing_check_share(&p, &share)?;
    let tables = state.core.sharing_tables(&p).await?;
    let (tables, next) = page(&tables, &q)?;
    Ok(items(tables.iter().map(table_json).collect(), next))
}

fn version_header(v: i64) -> [(header::HeaderName, HeaderValue); 1] {
    [(header::HeaderName::from_static("delta-table-version"), HeaderValue::from(v))]
}

async fn table_version(
    State(state): State<AppState>,
    Meta(meta): Meta,
    Recipient(p): Recipient,
    Path((share, schema, table)): Path<(String, String, String)>,
) -> Result<Response, SharingError> {
    let v = state.core.sharing_table_version(&meta, &p, &share, &schema, &table).await?;
    Ok((version_header(v), "").into_response())
}

fn protocol_lines(m: &TableMeta) -> String {
    let protocol = json!({ "protocol": { "minReaderVersion": 1 } });
    let metadata = json!({ "metaData": {
        "id": m.table_id,
        "name": m.name,
        "format": { "provider": "parquet" },
        "schemaString": m.schema_string,
        "partitionColumns": [],
    }});
    format!("{protocol}\n{metadata}\n")
}

fn ndjson(version: i64, body: String) -> Response {
    let mut r = (version_header(version), body).into_response();
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/x-ndjson; charset=utf-8"));
    r
}

async fn table_metadata(
    State(state): State<AppState>,
    Meta(meta): Meta,
    Recipient(p): Recipient,
    Path((share, schema, table)): Path<(String, String, String)>,
) -> Result<Response, SharingError> {
    let m = state.core.sharing_metadata(&meta, &p, &share, &schema, &table).await?;
    Ok(ndjson(m.version, protocol_lines(&m)))
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct QueryBody {
    #[serde(default)]
    predicate_hints: Option<Value>,
    #[serde(default)]
    json_predicate_hints: Option<Value>,
    #[serde(default)]
    limit_hint: Option<i64>,
    #[serde(default)]
    version: Option<i64>,
    #[serde(default)]
    timestamp: Option<String>,
}

async fn query(
    State(state): State<AppState>,
    headers: HeaderMap,
    Meta(meta): Meta,
    Recipient(p): Recipient,
    Path((share, schema, table)): Path<(String, String, String)>,
    body: axum::body::Bytes,
) -> Result<Response, SharingError> {
    let b: QueryBody = if body.iter().all(u8::is_ascii_whitespace) {
        QueryBody::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| {
            error(StatusCode::BAD_REQUEST, "malformed_json", &format!("请求体不是合法的 JSON / invalid JSON body: {e}"))
        })?
    };
    let _ = b.predicate_hints;
    if b.version.is_some() && b.timestamp.is_some() {
        return Err(error(
            StatusCode::BAD_REQUEST,
            "invalid_value",
            "version 与 timestamp 只能给出其一 / give version or timestamp, not both",
        ));
    }
    let q = SharingQuery {
        version: b.version,
        timestamp: b.timestamp,
        limit_hint: b.limit_hint,
        // A string (the protocol's form) or an object; anything else is ignored.
        json_predicate_hints: b.json_predicate_hints.and_then(|h| match h {
            Value::String(s) => Some(s),
            Value::Object(_) => Some(h.to_string()),
            _ => None,
        }),
    };
    let a = state.core.sharing_query(&meta, &p, &share, &schema, &table, &q).await?;
    let base = state.base_url(&headers);
    let mut out = protocol_lines(&a.meta);
    for f in &a.files {
        let line = json!({ "file": {
            // Presigned object-store URLs (a lake on S3) are absolute already.
            "url": if f.path.starts_with('/') { format!("{base}{}", f.path) } else { f.path.clone() },
            "id": f.id,
            "partitionValues": {},
            "size": f.size,
            "stats": f.stats,
            "expirationTimestamp": f.expiration_timestamp,
        }});
        out.push_str(&line.to_string());
        out.push('\n');
    }
    Ok(ndjson(a.meta.version, out))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChangesParams {
    starting_version: Option<String>,
    starting_timestamp: Option<String>,
    ending_version: Option<String>,
    ending_timestamp: Option<String>,
}

/// `GET .../changes`: the governed change feed as `cdf` files, one per commit version.
async fn changes(
    State(state): State<AppState>,
    headers: HeaderMap,
    Meta(meta): Meta,
    Recipient(p): Recipient,
    Path((share, schema, table)): Path<(String, String, String)>,
    Query(c): Query<ChangesParams>,
) -> Result<Response, SharingError> {
    let long = |name: &str, v: &Option<String>| -> Result<Option<i64>, SharingError> {
        v.as_deref()
            .map(|s| {
                s.trim().parse::<i64>().map_err(|_| {
                    error(StatusCode::BAD_REQUEST, "invalid_value", &format!("{name} 须为整数 / {name} must be a Long"))
                })
            })
            .transpose()
    };
    let q = citydata_core::sharing::changes::ChangesQuery {
        starting_version: long("startingVersion", &c.starting_version)?,
        starting_timestamp: c.starting_timestamp.clone(),
        ending_version: long("endingVersion", &c.ending_version)?,
        ending_timestamp: c.ending_timestamp.clone(),
    };
    if q.starting_version.is_some() && q.starting_timestamp.is_some() {
        return Err(error(
            StatusCode::BAD_REQUEST,
            "invalid_value",
            "startingVersion 与 startingTimestamp 只能给出其一 / give startingVersion or startingTimestamp, not both",
        ));
    }
    let a = state.core.sharing_changes(&meta, &p, &share, &schema, &table, &q).await?;
    let base = state.base_url(&headers);
    let mut out = protocol_lines(&a.meta);
    for f in &a.files {
        let line = json!({ "cdf": {
            "url": if f.url.starts_with('/') { format!("{base}{}", f.url) } else { f.url.clone() },
            "id": f.id,
            "partitionValues": {},
            "size": f.size,
            "timestamp": f.timestamp,
            "version": f.version,
            "expirationTimestamp": f.expiration_timestamp,
        }});
        out.push_str(&line.to_string());
        out.push('\n');
    }
    Ok(ndjson(a.starting_version, out))
}

#[derive(Deserialize)]
pub struct Signed {
    expires: Option<i64>,
    /// The profile the URL was handed to, and its owner.
    p: Option<String>,
    u: Option<String>,
    sig: Option<String>,
}

/// One byte range of `len` bytes from a `Range` header (a single range only); `Err` when it
/// cannot be satisfied.
fn byte_range(h: Option<&HeaderValue>, len: u64) -> Result<Option<(u64, u64)>, ()> {
    let Some(v) = h.and_then(|v| v.to_str().ok()) else { return Ok(None) };
    let Some(spec) = v.trim().strip_prefix("bytes=") else { return Ok(None) };
    if spec.contains(',') {
        return Ok(None);
    }
    let (a, b) = spec.split_once('-').ok_or(())?;
    let (start, end) = match (a.trim(), b.trim()) {
        ("", n) => {
            let n: u64 = n.parse().map_err(|_| ())?;
            if n == 0 {
                return Err(());
            }
            (len.saturating_sub(n), len.saturating_sub(1))
        }
        (s, "") => (s.parse().map_err(|_| ())?, len.saturating_sub(1)),
        (s, e) => (s.parse().map_err(|_| ())?, e.parse::<u64>().map_err(|_| ())?.min(len.saturating_sub(1))),
    };
    if start > end || start >= len {
        return Err(());
    }
    Ok(Some((start, end)))
}

/// A signed file URL: the file (or a byte range of it); `HEAD` answers its size.
async fn file(
    State(state): State<AppState>,
    method: Method,
    headers: HeaderMap,
    Path(path): Path<String>,
    Query(s): Query<Signed>,
) -> Result<Response, SharingError> {
    use tokio::io::{AsyncReadExt, AsyncSeekExt};
    let holder = citydata_core::sharing::protocol::UrlHolder {
        // Anything but a UUID fails the signature (403), like a forged one.
        profile: s.p.as_deref().and_then(|v| v.parse().ok()).unwrap_or_default(),
        user: s.u.as_deref().and_then(|v| v.parse().ok()).unwrap_or_default(),
    };
    let local = state.core.sharing_file(&path, s.expires.unwrap_or(0), &holder, s.sig.as_deref().unwrap_or("")).await?;
    let mut f = tokio::fs::File::open(&local).await.map_err(|_| ApiError::not_found("文件不存在 / no such file"))?;
    let len = f.metadata().await.map_err(|_| ApiError::not_found("文件不存在 / no such file"))?.len();
    let range = match byte_range(headers.get(header::RANGE), len) {
        Ok(r) => r,
        Err(()) => {
            let mut r = StatusCode::RANGE_NOT_SATISFIABLE.into_response();
            r.headers_mut()
                .insert(header::CONTENT_RANGE, HeaderValue::from_str(&format!("bytes */{len}")).expect("ascii"));
            return Ok(r);
        }
    };
    let (status, start, count) = match range {
        Some((a, b)) => (StatusCode::PARTIAL_CONTENT, a, b - a + 1),
        None => (StatusCode::OK, 0, len),
    };
    let body = if method == Method::HEAD {
        Body::empty()
    } else {
        f.seek(std::io::SeekFrom::Start(start)).await.map_err(|_| ApiError::internal())?;
        // 256 KiB reads: the default 4 KiB made a 40 MB Parquet file ten thousand body frames.
        Body::from_stream(tokio_util::io::ReaderStream::with_capacity(f.take(count), 256 << 10))
    };
    let mut r = Response::new(body);
    *r.status_mut() = status;
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/octet-stream"));
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(count));
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("private, no-store"));
    if range.is_some() {
        let v = format!("bytes {start}-{}/{len}", start + count - 1);
        h.insert(header::CONTENT_RANGE, HeaderValue::from_str(&v).expect("ascii"));
    }
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::byte_range;
    use axum::http::HeaderValue;

    #[test]
    fn ranges() {
        let r = |s: &str| byte_range(Some(&HeaderValue::from_str(s).unwrap()), 100);
        assert_eq!(r("bytes=0-9"), Ok(Some((0, 9))));
        assert_eq!(r("bytes=90-"), Ok(Some((90, 99))));
        assert_eq!(r("bytes=-10"), Ok(Some((90, 99))));
        assert_eq!(r("bytes=95-200"), Ok(Some((95, 99))));
        assert_eq!(r("bytes=100-"), Err(()));
        assert_eq!(r("bytes=5-1"), Err(()));
        assert_eq!(byte_range(None, 100), Ok(None));
    }
}
