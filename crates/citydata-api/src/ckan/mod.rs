//! The CKAN Action API (`/api/3/action/{action}`): the read subset that `ckanapi`, CKAN
//! harvesters and portals use, with CKAN's envelope and error shapes, over the same catalog and
//! visibility rules as the REST API.

use crate::extract::{MaybeAuth, Meta};
use crate::v1::resources::facet_label;
use crate::{ApiError, AppState};
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use citydata_core::CoreError;
use citydata_domain::principal::Principal;
use citydata_domain::resource::Resource;
use citydata_domain::vocab::{self, THEMES};
use citydata_search::{Filters, SearchQuery, Sort};
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, HashMap};

mod datastore;
mod files;
mod packages;

use datastore::*;
pub use packages::package;
use packages::*;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/3/action/{action}", get(action_get).post(action_post))
        // CKAN serves the unversioned path too, and `ckanapi.RemoteCKAN` calls it.
        .route("/api/action/{action}", get(action_get).post(action_post))
        .route("/api/3", get(|| async { Json(json!({"version": 3})) }))
}

/// The CKAN version whose API this mirrors.
const CKAN_VERSION: &str = "2.10.0";

const ACTIONS: &[(&str, &str)] = &[
    (
        "package_list",
        "Return a list of the names of the site's datasets (packages).\n\n:param limit: if given, the list of datasets will be broken into pages of at most limit datasets per page\n:param offset: when limit is given, the offset to start returning packages from",
    ),
    (
        "package_search",
        "Searches for packages satisfying a given search criteria.\n\n:param q: the solr query (Chinese text is segmented)\n:param fq: filter terms field:value (organization, groups, tags, res_format, share_type, open_type, update_cycle, region, metadata_modified:[A TO B])\n:param rows: the maximum number of matching rows (datasets) to return (max 1000)\n:param start: the offset in the complete result\n:param sort: score desc, metadata_modified desc\n:param facet.field: the fields to facet upon (JSON list)\n:param facet.limit: the maximum number of values each facet returns (-1: all)",
    ),
    (
        "package_show",
        "Return the metadata of a dataset (package) and its resources.\n\n:param id: the id (UUID), name (slug) or resource code of the dataset",
    ),
    (
        "organization_list",
        "Return a list of the names of the site's organizations (departments).\n\n:param all_fields: return dictionaries instead of names",
    ),
    (
        "organization_show",
        "Return the details of an organization (department).\n\n:param id: the name (department code) of the organization\n:param include_datasets: include a truncated list of the organization's datasets",
    ),
    (
        "group_list",
        "Return a list of the names of the site's groups (themes and basic libraries).\n\n:param all_fields: return dictionaries instead of names",
    ),
    (
        "tag_list",
        "Return a list of the site's tags.\n\n:param query: a tag name query to search for\n:param all_fields: return dictionaries instead of names",
    ),
    (
        "resource_show",
        "Return the metadata of a resource (a data download of a dataset).\n\n:param id: the id of the resource",
    ),
    ("status_show", "Return a dictionary with information about the site's configuration."),
    (
        "datastore_search",
        "Search the data of a resource, through the same policy gate as every read.\n\n:param resource_id: the resource (a package's resource id, or the dataset's id, name or code)\n:param filters: {\"field\": value or [values]}\n:param fields: fields to return (list or comma-separated)\n:param sort: \"field asc, field2 desc\"\n:param limit: at most 32000 (default 100)\n:param offset\n:param include_total: default true\n:param version: the table version to read (citydata; `_links.next` keeps the version of the first page, so that paging returns every row once while the table changes)\n:param records_format: objects (default), lists, csv or tsv\n:param csv_safe: with csv or tsv, cells starting with = + - @ (not numbers) get a leading ' so that spreadsheets do not run them as formulas (default true; false for machine readers)",
    ),
    ("help_show", "Return the help string for a particular API action.\n\n:param name: action function name"),
];

#[derive(Debug)]
struct CkanError {
    status: StatusCode,
    kind: &'static str,
    message: String,
    fields: Map<String, Value>,
    /// `Retry-After` seconds of a 503 (the store restarting, a hashing slot).
    retry_after: Option<u64>,
}

impl CkanError {
    fn not_found(what: &str) -> Self {
        Self {
            status: StatusCode::NOT_FOUND,
            kind: "Not Found Error",
            message: format!("Not found: {what}"),
            fields: Map::new(),
            retry_after: None,
        }
    }
    /// CKAN's "Not found" for what is missing or not visible; what failed otherwise (the
    /// store down: 503 with `Retry-After`) keeps its own answer.
    fn not_found_or(e: CoreError, what: &str) -> Self {
        match e {
            CoreError::NotFound(_) | CoreError::Forbidden(_) | CoreError::Unauthenticated(_) | CoreError::Denied(_) => {
                Self::not_found(what)
            }
            other => Self::from(other),
        }
    }
    fn validation(field: &str, msg: &str) -> Self {
        let mut fields = Map::new();
        fields.insert(field.into(), json!([msg]));
        Self { status: StatusCode::CONFLICT, kind: "Validation Error", message: msg.into(), fields, retry_after: None }
    }
    /// Input refused before it is parsed (too long, nested too deep): 400, in CKAN's
    /// validation error shape (`{"q": [message], "__type": "Validation Error"}`).
    fn refused(e: citydata_domain::FieldError) -> Self {
        let mut fields = Map::new();
        fields.insert(e.field.clone(), json!([e.message]));
        fields.insert("code".into(), json!(e.code));
        Self {
            status: StatusCode::BAD_REQUEST,
            kind: "Validation Error",
            message: e.message,
            fields,
            retry_after: None,
        }
    }
    fn bad_request(msg: String) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            kind: "Bad Request",
            message: msg,
            fields: Map::new(),
            retry_after: None,
        }
    }
}

impl From<CoreError> for CkanError {
    fn from(e: CoreError) -> Self {
        match e {
            CoreError::NotFound(m) => Self {
                status: StatusCode::NOT_FOUND,
                kind: "Not Found Error",
                message: m,
                fields: Map::new(),
                retry_after: None,
            },
            CoreError::Forbidden(m) | CoreError::Unauthenticated(m) => Self {
                status: StatusCode::FORBIDDEN,
                kind: "Authorization Error",
                message: m,
                fields: Map::new(),
                retry_after: None,
            },
            CoreError::Validation(v) => {
                let mut fields = Map::new();
                for f in &v.0 {
                    fields.insert(f.field.clone(), json!([f.message]));
                }
                Self {
                    status: StatusCode::CONFLICT,
                    kind: "Validation Error",
                    message: v.to_string(),
                    fields,
                    retry_after: None,
                }
            }
            other => {
                // The stable code beside CKAN's own type (`table_unreadable`, `store_unavailable`, …).
                let api = ApiError::from(other);
                let mut fields = Map::new();
                fields.insert("code".into(), json!(api.code));
                // A token outside its scope or resources is refused, not broken.
                let kind = if api.status == StatusCode::FORBIDDEN { "Authorization Error" } else { "Internal Error" };
                Self { status: api.status, kind, message: api.message, fields, retry_after: api.retry_after }
            }
        }
    }
}

/// A refusal made before a CKAN action runs (authentication, the store down), in CKAN's
/// envelope when `path` is a CKAN action and in the API's own otherwise.
pub(crate) fn refusal(base: &str, path: &str, e: ApiError) -> Response {
    let action = path.strip_prefix("/api/3/action/").or_else(|| path.strip_prefix("/api/action/"));
    let Some(action) = action else { return e.into_response() };
    let kind = match e.status {
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => "Authorization Error",
        _ => "Internal Error",
    };
    let mut fields = Map::new();
    fields.insert("code".into(), json!(e.code));
    let err = CkanError { status: e.status, kind, message: e.message, fields, retry_after: e.retry_after };
    envelope(base, action, Err(err))
}

fn help_url(base: &str, action: &str) -> String {
    format!("{base}/api/3/action/help_show?name={action}")
}

fn envelope(base: &str, action: &str, r: Result<Value, CkanError>) -> Response {
    let help = help_url(base, action);
    match r {
        Ok(result) => Json(json!({ "help": help, "success": true, "result": result })).into_response(),
        Err(e) => {
            let mut err = e.fields;
            err.insert("__type".into(), e.kind.into());
            err.insert("message".into(), e.message.into());
            let mut resp = (e.status, Json(json!({ "help": help, "success": false, "error": err }))).into_response();
            if let Some(s) = e.retry_after {
                resp.headers_mut().insert(axum::http::header::RETRY_AFTER, axum::http::HeaderValue::from(s));
            }
            resp
        }
    }
}

async fn action_get(
    State(state): State<AppState>,
    Meta(meta): Meta,
    MaybeAuth(p): MaybeAuth,
    headers: HeaderMap,
    Path(action): Path<String>,
    Query(params): Query<Vec<(String, String)>>,
) -> Response {
    let mut m = Map::new();
    for (k, v) in params {
        m.insert(k, Value::String(v));
    }
    let base = state.base_url(&headers);
    let r = dispatch(&state, &meta, p.as_ref(), &base, &action, m).await;
    envelope(&base, &action, r)
}

async fn action_post(
    State(state): State<AppState>,
    Meta(meta): Meta,
    MaybeAuth(p): MaybeAuth,
    headers: HeaderMap,
    Path(action): Path<String>,
    Query(params): Query<Vec<(String, String)>>,
    body: Bytes,
) -> Response {
    let base = state.base_url(&headers);
    let mut m = Map::new();
    for (k, v) in params {
        m.insert(k, Value::String(v));
    }
    if !body.is_empty() {
        let is_form = headers
            .get(axum::http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
        if is_form {
            for (k, v) in url_form(&body) {
                m.insert(k, Value::String(v));
            }
        } else {
            match serde_json::from_slice::<Value>(&body) {
                Ok(Value::Object(o)) => m.extend(o),
                _ => {
                    let e = CkanError::bad_request(
                        "Bad request - JSON Error: the request body must be a JSON object".into(),
                    );
                    return envelope(&base, &action, Err(e));
                }
            }
        }
    }
    let r = dispatch(&state, &meta, p.as_ref(), &base, &action, m).await;
    envelope(&base, &action, r)
}

fn url_form(body: &[u8]) -> Vec<(String, String)> {
    serde_urlencoded::from_bytes(body).unwrap_or_default()
}

fn param_str(m: &Map<String, Value>, k: &str) -> Option<String> {
    match m.get(k)? {
        Value::String(s) => Some(s.clone()),
        Value::Null => None,
        other => Some(other.to_string()),
    }
}

fn param_int(m: &Map<String, Value>, k: &str, default: i64) -> Result<i64, CkanError> {
    match m.get(k) {
        None | Some(Value::Null) => Ok(default),
        Some(Value::Number(n)) => n.as_i64().ok_or_else(|| CkanError::validation(k, "Invalid integer")),
        Some(Value::String(s)) if s.trim().is_empty() => Ok(default),
        Some(Value::String(s)) => s.trim().parse().map_err(|_| CkanError::validation(k, "Invalid integer")),
        Some(_) => Err(CkanError::validation(k, "Invalid integer")),
    }
}

fn param_bool(m: &Map<String, Value>, k: &str) -> bool {
    match m.get(k) {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => matches!(s.to_ascii_lowercase().as_str(), "true" | "1" | "yes" | "on"),
        Some(Value::Number(n)) => n.as_i64() == Some(1),
        _ => false,
    }
}

async fn dispatch(
    state: &AppState,
    meta: &citydata_core::RequestMeta,
    p: Option<&Principal>,
    base: &str,
    action: &str,
    m: Map<String, Value>,
) -> Result<Value, CkanError> {
    let core = &state.core;
    match action {
        "status_show" => Ok(json!({
            "ckan_version": CKAN_VERSION,
            "site_title": "城市数据共享交换与开放平台",
            "site_description": "citydata — 政务数据资源目录、共享交换与开放 / city data catalog, sharing and open data",
            "site_url": base,
            "locale_default": "zh_Hans_CN",
            "error_emails_to": null,
            "extensions": ["citydata", "datastore"],
        })),
        "help_show" => {
            let name = param_str(&m, "name").ok_or_else(|| CkanError::validation("name", "Missing value"))?;
            ACTIONS
                .iter()
                .find(|(a, _)| *a == name)
                .map(|(_, h)| json!(h))
                .ok_or_else(|| CkanError::not_found(&format!("action {name}")))
        }
        "package_list" => {
            let limit = param_int(&m, "limit", -1)?;
            let offset = param_int(&m, "offset", 0)?.max(0) as usize;
            let all = core.visible_catalog(p).await?;
            let names: Vec<Value> = all.iter().map(|r| json!(r.content.slug.as_str())).skip(offset).collect();
            let names: Vec<Value> = if limit >= 0 { names.into_iter().take(limit as usize).collect() } else { names };
            Ok(Value::Array(names))
        }
        "package_show" => {
            let id = param_str(&m, "id")
                .or_else(|| param_str(&m, "name"))
                .ok_or_else(|| CkanError::validation("id", "Missing value"))?;
            let r = core.get_resource(p, &id).await.map_err(|e| CkanError::not_found_or(e, "Dataset"))?;
            let names = core.department_names().await?;
            let mut pkg = package(&r, &names, base);
            files::add_files(core, p, &r, base, &mut pkg).await?;
            Ok(pkg)
        }
        "resource_show" => {
            let id = param_str(&m, "id").ok_or_else(|| CkanError::validation("id", "Missing value"))?;
            let (pkg, fmt) = id.rsplit_once('.').ok_or_else(|| CkanError::not_found("Resource"))?;
            let r = core.get_resource(p, pkg).await.map_err(|e| CkanError::not_found_or(e, "Resource"))?;
            if uuid::Uuid::parse_str(fmt).is_ok() {
                let files = files::latest_files(core, p, &r).await?;
                return files::file_resources(&r, &files, base, distributions(&r, base).len())
                    .into_iter()
                    .find(|d| d["id"] == format!("{}.{fmt}", r.id))
                    .ok_or_else(|| CkanError::not_found("Resource"));
            }
            distributions(&r, base)
                .into_iter()
                .find(|d| d["id"] == format!("{}.{fmt}", r.id))
                .ok_or_else(|| CkanError::not_found("Resource"))
        }
        "package_search" => package_search(state, p, base, &m).await,
        "datastore_search" => datastore_search(state, meta, p, base, &m).await,
        "datastore_search_sql" => Err(CkanError {
            status: StatusCode::FORBIDDEN,
            kind: "Authorization Error",
            message:
                "datastore_search_sql 未启用；请使用 datastore_search 或 /api/v1/sql / datastore_search_sql is disabled"
                    .into(),
            fields: Map::new(),
            retry_after: None,
        }),
        "organization_list" => {
            let all_fields = param_bool(&m, "all_fields");
            let depts = core.list_departments().await?;
            let counts = dataset_counts(core, p).await?;
            Ok(Value::Array(
                depts
                    .iter()
                    .map(|d| {
                        if all_fields {
                            organization(d, counts.get(d.code.as_str()).copied().unwrap_or(0))
                        } else {
                            json!(d.code.as_str())
                        }
                    })
                    .collect(),
            ))
        }
        "organization_show" => {
            let id = param_str(&m, "id").ok_or_else(|| CkanError::validation("id", "Missing value"))?;
            let d = core.get_department(&id).await.map_err(|e| CkanError::not_found_or(e, "Organization"))?;
            let all = core.visible_catalog(p).await?;
            let mine: Vec<&Resource> = all.iter().filter(|r| r.content.provider == d.code).collect();
            let mut org = organization(&d, mine.len());
            if param_bool(&m, "include_datasets") {
                let names = core.department_names().await?;
                org["packages"] = Value::Array(mine.iter().take(10).map(|r| package(r, &names, base)).collect());
            }
            Ok(org)
        }
        "group_list" => {
            let all_fields = param_bool(&m, "all_fields");
            let all = core.visible_catalog(p).await?;
            Ok(Value::Array(
                THEMES
                    .iter()
                    .map(|t| {
                        if all_fields {
                            let n = all.iter().filter(|r| r.content.classification.theme == t.code).count();
                            group(t, n)
                        } else {
                            json!(t.code)
                        }
                    })
                    .collect(),
            ))
        }
        "tag_list" => {
            let query = param_str(&m, "query").or_else(|| param_str(&m, "q")).unwrap_or_default();
            let all = core.visible_catalog(p).await?;
            let mut tags: BTreeMap<String, usize> = BTreeMap::new();
            for r in &all {
                for t in &r.content.tags {
                    if query.is_empty() || t.contains(&query) {
                        *tags.entry(t.clone()).or_default() += 1;
                    }
                }
            }
            let all_fields = param_bool(&m, "all_fields");
            Ok(Value::Array(
                tags.keys()
                    .map(|t| {
                        if all_fields {
                            json!({"id": t, "name": t, "display_name": t, "vocabulary_id": null})
                        } else {
                            json!(t)
                        }
                    })
                    .collect(),
            ))
        }
        other => Err(CkanError::bad_request(format!("Bad request - Action name not known: {other}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fq_terms_map_onto_filters() {
        let mut f = Filters::default();
        let mut t = String::new();
        apply_fq(
            "organization:gaj +groups:\"population\" tags:人口 metadata_modified:[2024-01-01T00:00:00Z TO *]",
            &mut f,
            &mut t,
        )
        .unwrap();
        assert_eq!(f.provider.as_deref(), Some("gaj"));
        assert_eq!(f.theme.as_deref(), Some("population"));
        assert!(t.contains("tags:\"人口\""));
        assert!(f.updated_since.is_some() && f.updated_before.is_none());
        assert!(apply_fq("colour:red", &mut f, &mut t).is_err());
        assert!(apply_fq("nonsense", &mut f, &mut t).is_err());
    }

    #[test]
    fn form_bodies_decode() {
        assert_eq!(
            url_form(b"q=%E4%BA%BA%E5%8F%A3&rows=2"),
            vec![("q".into(), "人口".into()), ("rows".into(), "2".into())]
        );
    }
}
