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
}

impl CkanError {
    fn not_found(what: &str) -> Self {
        Self {
            status: StatusCode::NOT_FOUND,
            kind: "Not Found Error",
            message: format!("Not found: {what}"),
            fields: Map::new(),
        }
    }
    fn validation(field: &str, msg: &str) -> Self {
        let mut fields = Map::new();
        fields.insert(field.into(), json!([msg]));
        Self { status: StatusCode::CONFLICT, kind: "Validation Error", message: msg.into(), fields }
    }
    /// Input refused before it is parsed (too long, nested too deep): 400, in CKAN's
    /// validation error shape (`{"q": [message], "__type": "Validation Error"}`).
    fn refused(e: citydata_domain::FieldError) -> Self {
        let mut fields = Map::new();
        fields.insert(e.field.clone(), json!([e.message]));
        fields.insert("code".into(), json!(e.code));
        Self { status: StatusCode::BAD_REQUEST, kind: "Validation Error", message: e.message, fields }
    }
    fn bad_request(msg: String) -> Self {
        Self { status: StatusCode::BAD_REQUEST, kind: "Bad Request", message: msg, fields: Map::new() }
    }
}

impl From<CoreError> for CkanError {
    fn from(e: CoreError) -> Self {
        match e {
            CoreError::NotFound(m) => {
                Self { status: StatusCode::NOT_FOUND, kind: "Not Found Error", message: m, fields: Map::new() }
            }
            CoreError::Forbidden(m) | CoreError::Unauthenticated(m) => {
                Self { status: StatusCode::FORBIDDEN, kind: "Authorization Error", message: m, fields: Map::new() }
            }
            CoreError::Validation(v) => {
                let mut fields = Map::new();
                for f in &v.0 {
                    fields.insert(f.field.clone(), json!([f.message]));
                }
                Self { status: StatusCode::CONFLICT, kind: "Validation Error", message: v.to_string(), fields }
            }
            other => {
                // The stable code beside CKAN's own type (`table_unreadable`, `store_unavailable`, …).
                let api = ApiError::from(other);
                let mut fields = Map::new();
                fields.insert("code".into(), json!(api.code));
                Self { status: api.status, kind: "Internal Error", message: api.message, fields }
            }
        }
    }
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
            (e.status, Json(json!({ "help": help, "success": false, "error": err }))).into_response()
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
            let r = core.get_resource(p, &id).await.map_err(|_| CkanError::not_found("Dataset"))?;
            let names = core.department_names().await?;
            Ok(package(&r, &names, base))
        }
        "resource_show" => {
            let id = param_str(&m, "id").ok_or_else(|| CkanError::validation("id", "Missing value"))?;
            let (pkg, fmt) = id.rsplit_once('.').ok_or_else(|| CkanError::not_found("Resource"))?;
            let r = core.get_resource(p, pkg).await.map_err(|_| CkanError::not_found("Resource"))?;
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
            let d = core.get_department(&id).await.map_err(|_| CkanError::not_found("Organization"))?;
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

async fn dataset_counts(
    core: &citydata_core::Core,
    p: Option<&Principal>,
) -> Result<HashMap<String, usize>, CkanError> {
    let mut counts = HashMap::new();
    for r in core.visible_catalog(p).await? {
        *counts.entry(r.content.provider.to_string()).or_default() += 1;
    }
    Ok(counts)
}

fn organization(d: &citydata_domain::dept::Department, package_count: usize) -> Value {
    json!({
        "id": d.code.as_str(),
        "name": d.code.as_str(),
        "title": d.name.as_str(),
        "display_name": d.name.as_str(),
        "description": format!("{}（行政区划 {}）", d.name.as_str(), d.region),
        "type": "organization",
        "is_organization": true,
        "state": "active",
        "approval_status": "approved",
        "image_url": "",
        "package_count": package_count,
        "extras": [{"key": "region_code", "value": d.region.as_str()}, {"key": "level", "value": d.level.as_str()}],
    })
}

fn group(t: &vocab::Theme, package_count: usize) -> Value {
    json!({
        "id": t.code,
        "name": t.code,
        "title": t.name,
        "display_name": t.name,
        "description": t.name_en,
        "type": "group",
        "is_organization": false,
        "state": "active",
        "approval_status": "approved",
        "image_url": "",
        "package_count": package_count,
    })
}

/// The data downloads of a dataset, one per export format.
fn distributions(r: &Resource, base: &str) -> Vec<Value> {
    [
        ("csv", "CSV", "text/csv"),
        ("json", "JSON", "application/json"),
        ("xlsx", "XLSX", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
    ]
    .iter()
    .enumerate()
    .map(|(i, (ext, fmt, mime))| {
        json!({
            "id": format!("{}.{ext}", r.id),
            "package_id": r.id,
            "name": format!("{}（{fmt}）", r.content.name),
            "description": format!("{} 数据下载 / data download", r.content.name),
            "format": fmt,
            "mimetype": mime,
            "url": format!("{base}/api/v1/resources/{}/export?format={ext}", r.id),
            "url_type": null,
            "state": "active",
            "position": i,
            "created": fmt_time(r.created_at),
            "last_modified": fmt_time(r.updated_at),
            "datastore_active": true,
        })
    })
    .collect()
}

/// CKAN's timestamp form: ISO 8601 without a zone, microseconds.
fn fmt_time(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.6f").to_string()
}

/// A resource as a CKAN dataset (package), with the GB/T 21063 elements in `extras`.
pub fn package(r: &Resource, names: &HashMap<String, String>, base: &str) -> Value {
    let c = &r.content;
    let org_title = names.get(c.provider.as_str()).cloned().unwrap_or_default();
    let theme = vocab::theme(&c.classification.theme);
    let tags: Vec<Value> = c
        .tags
        .iter()
        .map(|t| json!({"id": t, "name": t, "display_name": t, "state": "active", "vocabulary_id": null}))
        .collect();
    let resources = distributions(r, base);
    let extra = |k: &str, v: String| json!({"key": k, "value": v});
    let mut extras = vec![
        extra("resource_code", c.code.to_string()),
        extra("classification_class", c.classification.class.as_str().into()),
        extra("classification_theme", c.classification.theme.clone()),
        extra("format_category", c.format.category.as_str().into()),
        extra("format_type", c.format.kind.clone()),
        extra("share_type", c.share.kind.as_str().into()),
        extra("share_method", c.share.method.as_str().into()),
        extra("open_type", c.open.kind.as_str().into()),
        extra("update_cycle", c.update_cycle.as_str().into()),
        extra("security_level", c.security_level.as_str().into()),
        extra("regions", c.regions.iter().map(|g| g.to_string()).collect::<Vec<_>>().join(",")),
        extra("info_items", serde_json::to_string(&c.items).unwrap_or_default()),
    ];
    if let Some(s) = &c.share.conditions {
        extras.push(extra("share_conditions", s.clone()));
    }
    if let Some(s) = &c.open.conditions {
        extras.push(extra("open_conditions", s.clone()));
    }
    if let Some(d) = c.publish_date {
        extras.push(extra("publish_date", d.to_string()));
    }
    if !c.related.is_empty() {
        extras.push(extra("related", c.related.iter().map(|x| x.to_string()).collect::<Vec<_>>().join(",")));
    }
    json!({
        "id": r.id,
        "name": c.slug.as_str(),
        "title": c.name,
        "notes": c.summary,
        "type": "dataset",
        "state": "active",
        "private": false,
        "version": r.revision.to_string(),
        "metadata_created": fmt_time(r.created_at),
        "metadata_modified": fmt_time(r.updated_at),
        "author": org_title,
        "author_email": null,
        "maintainer": c.contact,
        "maintainer_email": null,
        "license_id": c.license.clone().unwrap_or_else(|| "notspecified".into()),
        "license_title": c.license,
        "url": format!("{base}/datasets/{}", c.slug.as_str()),
        "owner_org": c.provider.as_str(),
        "organization": {
            "id": c.provider.as_str(),
            "name": c.provider.as_str(),
            "title": org_title,
            "type": "organization",
            "is_organization": true,
            "state": "active",
            "description": "",
            "image_url": "",
            "approval_status": "approved",
        },
        "groups": theme.map(|t| vec![json!({"id": t.code, "name": t.code, "title": t.name, "display_name": t.name, "description": t.name_en, "image_display_url": ""})]).unwrap_or_default(),
        "tags": tags,
        "num_tags": c.tags.len(),
        "resources": resources,
        "num_resources": 3,
        "extras": extras,
        "relationships_as_object": [],
        "relationships_as_subject": [],
    })
}

/// Map a CKAN facet field onto a search dimension.
fn dimension(field: &str) -> Option<&'static str> {
    Some(match field {
        "organization" | "owner_org" => "provider",
        "groups" => "theme",
        "res_format" => "format",
        "share_type" => "share",
        "open_type" => "open",
        "update_cycle" => "cycle",
        "region" | "regions" => "region",
        "classification_class" => "class",
        _ => return None,
    })
}

fn unquote(v: &str) -> String {
    v.trim().trim_matches('"').to_string()
}

fn parse_ckan_time(s: &str) -> Option<DateTime<Utc>> {
    let s = s.trim();
    if s == "*" {
        return None;
    }
    let s = s.trim_end_matches('Z');
    chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f")
        .or_else(|_| chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S"))
        .ok()
        .map(|n| n.and_utc())
        .or_else(|| {
            chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d")
                .ok()
                .and_then(|d| d.and_hms_opt(0, 0, 0))
                .map(|n| n.and_utc())
        })
}

/// Apply `fq` (`field:value` terms, `+`/`AND` allowed, values quoted or not) to the filters;
/// terms on tags or names become text clauses.
fn apply_fq(fq: &str, filters: &mut Filters, text: &mut String) -> Result<(), CkanError> {
    let mut rest = fq.trim();
    while !rest.is_empty() {
        rest = rest.trim_start_matches(|c: char| c.is_whitespace() || c == '+');
        if let Some(r) = rest.strip_prefix("AND ") {
            rest = r;
            continue;
        }
        if rest.is_empty() {
            break;
        }
        let Some((field, after)) = rest.split_once(':') else {
            return Err(CkanError::validation("fq", "Expected field:value terms"));
        };
        let field = field.trim().trim_start_matches('+');
        let (value, remaining) = if let Some(quoted) = after.strip_prefix('"') {
            let end = quoted.find('"').map(|i| i + 2).unwrap_or(after.len());
            (&after[..end], &after[end..])
        } else if after.starts_with('[') {
            let end = after.find(']').map(|i| i + 1).unwrap_or(after.len());
            (&after[..end], &after[end..])
        } else {
            let end = after.find(char::is_whitespace).unwrap_or(after.len());
            (&after[..end], &after[end..])
        };
        rest = remaining;
        let v = unquote(value);
        match field {
            "organization" | "owner_org" => filters.provider = Some(v),
            "groups" => filters.theme = Some(v),
            "res_format" => filters.format = Some(v.to_lowercase()),
            "share_type" => filters.share = Some(v),
            "open_type" => filters.open = Some(v),
            "update_cycle" => filters.cycle = Some(v),
            "region" | "regions" => filters.region = Some(v),
            "classification_class" => filters.class = Some(v),
            "tags" => text.push_str(&format!(" tags:\"{}\"", v.replace('"', ""))),
            "name" | "title" => text.push_str(&format!(" {}", v.replace('"', ""))),
            "metadata_modified" => {
                let inner = v.trim_start_matches('[').trim_end_matches(']');
                let (a, b) = inner
                    .split_once(" TO ")
                    .ok_or_else(|| CkanError::validation("fq", "metadata_modified needs [FROM TO UNTIL]"))?;
                filters.updated_since = parse_ckan_time(a);
                filters.updated_before = parse_ckan_time(b);
            }
            "dataset_type" | "type" | "state" | "capacity" | "+dataset_type" => {}
            other => return Err(CkanError::validation("fq", &format!("Unknown filter field: {other}"))),
        }
    }
    Ok(())
}

async fn package_search(
    state: &AppState,
    p: Option<&Principal>,
    base: &str,
    m: &Map<String, Value>,
) -> Result<Value, CkanError> {
    let rows = param_int(m, "rows", 10)?;
    if !(0..=1000).contains(&rows) {
        return Err(CkanError::validation("rows", "Must be between 0 and 1000"));
    }
    let start = param_int(m, "start", 0)?;
    if start < 0 {
        return Err(CkanError::validation("start", "Must be a natural number"));
    }
    let mut text = param_str(m, "q").unwrap_or_default();
    citydata_search::limits::check_query("q", &text).map_err(CkanError::refused)?;
    if text.trim() == "*:*" {
        text.clear();
    }
    let mut filters = Filters::default();
    if let Some(fq) = param_str(m, "fq") {
        citydata_search::limits::check_query("fq", &fq).map_err(CkanError::refused)?;
        apply_fq(&fq, &mut filters, &mut text)?;
        citydata_search::limits::check_query("fq", &text).map_err(CkanError::refused)?;
    }
    let sort = match param_str(m, "sort").as_deref().map(str::trim) {
        Some(s) if s.starts_with("metadata_modified") => Sort::Updated,
        _ => Sort::Relevance,
    };
    let facet_fields: Vec<String> = match m.get("facet.field") {
        None | Some(Value::Null) => vec![],
        Some(Value::Array(a)) => a.iter().filter_map(|v| v.as_str().map(str::to_string)).collect(),
        Some(Value::String(s)) => serde_json::from_str(s)
            .map_err(|_| CkanError::validation("facet.field", "Must be a JSON list of field names"))?,
        Some(_) => return Err(CkanError::validation("facet.field", "Must be a JSON list of field names")),
    };
    let facet_limit = param_int(m, "facet.limit", 50)?;
    let q = SearchQuery { text, filters, offset: start as usize, limit: rows.max(1) as usize, sort };
    let res = state.core.search_catalog(p, &q).await?;
    let names = state.core.department_names().await?;
    let mut results = Vec::new();
    if rows > 0 {
        for h in &res.hits {
            if let Ok(r) = state.core.get_resource(p, &h.data.id.to_string()).await {
                results.push(package(&r, &names, base));
            }
        }
    }
    let mut facets = Map::new();
    let mut search_facets = Map::new();
    for field in &facet_fields {
        let Some(dim) = dimension(field) else {
            facets.insert(field.clone(), json!({}));
            search_facets.insert(field.clone(), json!({"title": field, "items": []}));
            continue;
        };
        let vals = res.facets.get(dim).cloned().unwrap_or_default();
        let vals: Vec<(String, u64)> =
            if facet_limit < 0 { vals } else { vals.into_iter().take(facet_limit as usize).collect() };
        let mut counts = Map::new();
        let mut items = Vec::new();
        for (v, n) in &vals {
            counts.insert(v.clone(), json!(n));
            items.push(json!({"name": v, "display_name": facet_label(dim, v, &names), "count": n}));
        }
        facets.insert(field.clone(), Value::Object(counts));
        search_facets.insert(field.clone(), json!({"title": field, "items": items}));
    }
    Ok(json!({
        "count": res.total,
        "results": results,
        "facets": facets,
        "search_facets": search_facets,
        "sort": param_str(m, "sort").unwrap_or_else(|| "score desc, metadata_modified desc".into()),
    }))
}

fn ckan_literal(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(format!("'{}'", s.replace('\'', "''"))),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// A `datastore_search` link with the request's parameters (filters, q, fields, sort, limit,
/// records_format...), at `offset` and pinned to `version` when given.
fn datastore_link(base: &str, m: &Map<String, Value>, offset: Option<i64>, version: Option<i64>) -> String {
    let mut pairs: Vec<(String, String)> = m
        .iter()
        .filter(|(k, _)| !["offset", "version"].contains(&k.as_str()))
        .filter_map(|(k, v)| match v {
            Value::Null => None,
            Value::String(s) => Some((k.clone(), s.clone())),
            // `fields` as a list: the comma-separated form the GET parameter takes.
            Value::Array(a) if a.iter().all(Value::is_string) => {
                Some((k.clone(), a.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(",")))
            }
            other => Some((k.clone(), other.to_string())),
        })
        .collect();
    pairs.sort();
    if let Some(o) = offset {
        pairs.push(("offset".into(), o.to_string()));
    }
    if let Some(v) = version {
        pairs.push(("version".into(), v.to_string()));
    }
    let query = serde_urlencoded::to_string(&pairs).unwrap_or_default();
    format!("{base}/api/3/action/datastore_search?{query}")
}

/// CKAN's `datastore_search` over the governed rows read.
async fn datastore_search(
    state: &AppState,
    meta: &citydata_core::RequestMeta,
    p: Option<&Principal>,
    base: &str,
    m: &Map<String, Value>,
) -> Result<Value, CkanError> {
    let id = param_str(m, "resource_id")
        .or_else(|| param_str(m, "id"))
        .ok_or_else(|| CkanError::validation("resource_id", "Missing value"))?;
    let key = id
        .rsplit_once('.')
        .filter(|(_, ext)| ["csv", "json", "xlsx"].contains(ext))
        .map(|(k, _)| k.to_string())
        .unwrap_or(id.clone());
    // `q`: a string searches every text field; an object (or its JSON text) each named field.
    let q_object = |o: &Map<String, Value>| -> Result<Vec<(String, String)>, CkanError> {
        o.iter()
            .map(|(k, v)| match v {
                Value::String(s) => Ok((k.clone(), s.clone())),
                Value::Number(n) => Ok((k.clone(), n.to_string())),
                _ => Err(CkanError::validation("q", "Values of a q object must be strings")),
            })
            .collect()
    };
    let (q, q_fields) = match m.get("q") {
        None | Some(Value::Null) => (None, vec![]),
        Some(Value::Object(o)) => (None, q_object(o)?),
        Some(Value::String(s)) if s.trim_start().starts_with('{') => {
            let o: Map<String, Value> =
                serde_json::from_str(s).map_err(|_| CkanError::validation("q", "Must be a string or a JSON object"))?;
            (None, q_object(&o)?)
        }
        Some(Value::String(s)) => (Some(s.clone()), vec![]),
        Some(_) => return Err(CkanError::validation("q", "Must be a string or a JSON object")),
    };
    // CKAN 2.10+: estimate the total past this many rows (an exact count here is within it).
    if let Some(v) = m.get("total_estimation_threshold")
        && !v.is_null()
    {
        let t = param_int(m, "total_estimation_threshold", 0)?;
        if t < 0 {
            return Err(CkanError::validation("total_estimation_threshold", "Must be a natural number"));
        }
    }
    let limit = param_int(m, "limit", 100)?;
    if !(0..=32_000).contains(&limit) {
        return Err(CkanError::validation("limit", "Must be between 0 and 32000"));
    }
    let offset = param_int(m, "offset", 0)?;
    if offset < 0 {
        return Err(CkanError::validation("offset", "Must be a natural number"));
    }
    let filters: Map<String, Value> = match m.get("filters") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(o)) => o.clone(),
        Some(Value::String(s)) if s.trim().is_empty() => Map::new(),
        Some(Value::String(s)) => {
            serde_json::from_str(s).map_err(|_| CkanError::validation("filters", "Must be a JSON object"))?
        }
        Some(_) => return Err(CkanError::validation("filters", "Must be a JSON object")),
    };
    let mut clauses = Vec::new();
    for (k, v) in &filters {
        let name = format!("\"{}\"", k.replace('"', ""));
        match v {
            Value::Array(vs) => {
                let lits: Option<Vec<String>> = vs.iter().map(ckan_literal).collect();
                let lits = lits.ok_or_else(|| CkanError::validation("filters", "Values must be strings or numbers"))?;
                clauses.push(format!("{name} IN ({})", lits.join(", ")));
            }
            other => clauses.push(format!(
                "{name} = {}",
                ckan_literal(other)
                    .ok_or_else(|| CkanError::validation("filters", "Values must be strings or numbers"))?
            )),
        }
    }
    let fields = match m.get("fields") {
        None | Some(Value::Null) => None,
        Some(Value::Array(a)) => Some(a.iter().filter_map(|v| v.as_str()).collect::<Vec<_>>().join(",")),
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => return Err(CkanError::validation("fields", "Must be a list or a comma-separated string")),
    };
    // `_id` (CKAN's row id: here the row's position in the read's stable order, counted from
    // 1) is always there unless `fields` leaves it out; it is not an item of the table.
    let with_id = fields.as_deref().is_none_or(|f| f.split(',').any(|x| x.trim() == "_id"));
    let fields = fields.map(|f| f.split(',').filter(|x| x.trim() != "_id").collect::<Vec<_>>().join(","));
    let fields = fields.filter(|f| !f.trim().is_empty());
    let sort = param_str(m, "sort").map(|s| {
        s.split(',')
            .map(|part| {
                let mut it = part.split_whitespace();
                let f = it.next().unwrap_or("").trim_matches('"');
                if it.next().is_some_and(|d| d.eq_ignore_ascii_case("desc")) { format!("-{f}") } else { f.to_string() }
            })
            // `_id` is the stable order every read ends with anyway.
            .filter(|f| f.trim_start_matches('-') != "_id")
            .collect::<Vec<_>>()
            .join(",")
    });
    let include_total = m.get("include_total").map(|_| param_bool(m, "include_total")).unwrap_or(true);
    // citydata's extension: the table version to read. `_links.next` carries the version the
    // first page was read at, so that a client following it sees every row exactly once even
    // when the table changes between pages.
    let version = match m.get("version") {
        None | Some(Value::Null) => None,
        Some(_) => Some(param_int(m, "version", 0)?),
    };
    let params = citydata_core::reads::RowsParams {
        fields,
        filter: (!clauses.is_empty()).then(|| clauses.join(" AND ")),
        sort,
        limit: Some(limit.max(1) as u32),
        cursor: None,
        offset: Some(offset as usize),
        version,
        count: include_total.then(|| "exact".to_string()),
        q,
        q_fields,
    };
    // The request's id and client, so the read's audit entry names them like any REST read.
    let r = state.core.read_rows(meta, p, &key, &params).await.map_err(|e| match e {
        CoreError::Denied(reason) => CkanError {
            status: StatusCode::FORBIDDEN,
            kind: "Authorization Error",
            message: reason.message().into(),
            fields: Map::new(),
        },
        CoreError::NotFound(_) => CkanError::not_found("Resource"),
        other => CkanError::from(other),
    })?;
    let ckan_type = |t: &str| match t {
        "integer" => "int",
        "decimal" | "money" => "numeric",
        "boolean" => "bool",
        "date" => "date",
        "datetime" => "timestamp",
        _ => "text",
    };
    let mut fields: Vec<Value> = r
        .fields
        .iter()
        .map(|f| json!({"id": f.name, "type": ckan_type(&f.data_type), "info": {"label": f.title, "mask": f.mask}}))
        .collect();
    let mut names: Vec<String> = r.fields.iter().map(|f| f.name.clone()).collect();
    if with_id {
        fields.insert(0, json!({"id": "_id", "type": "int"}));
        names.insert(0, "_id".into());
    }
    let read_version = r.version;
    let mut rows = if limit == 0 { vec![] } else { r.rows };
    if with_id {
        for (i, row) in rows.iter_mut().enumerate() {
            if let Value::Object(o) = row {
                let mut with = Map::with_capacity(o.len() + 1);
                with.insert("_id".into(), json!(offset + i as i64 + 1));
                with.extend(std::mem::take(o));
                *o = with;
            }
        }
    }
    let format = param_str(m, "records_format").unwrap_or_else(|| "objects".into());
    let records = match format.as_str() {
        "objects" => Value::Array(rows),
        "lists" => Value::Array(
            rows.iter()
                .map(|o| Value::Array(names.iter().map(|n| o.get(n).cloned().unwrap_or(Value::Null)).collect()))
                .collect(),
        ),
        "csv" | "tsv" => {
            // Cells a spreadsheet would run as formulas get a leading ' unless `csv_safe=false`.
            let safe = !m.get("csv_safe").is_some_and(|v| v == &json!(false) || v == &json!("false"));
            let sep = if format == "csv" { "," } else { "\t" };
            // As CKAN's DataStore writes them (PostgreSQL's COPY … CSV): RFC 4180 quoting of
            // cells holding the separator, a quote, CR or LF; NULL empty, an empty string "";
            // every record ends with a newline.
            let mut text = String::new();
            for o in &rows {
                let cells: Vec<String> = names
                    .iter()
                    .map(|n| {
                        let cell = match o.get(n) {
                            Some(Value::String(s)) => s.clone(),
                            Some(Value::Null) | None => return String::new(),
                            Some(v) => v.to_string(),
                        };
                        let cell = if safe { citydata_core::csv_safe::neutralize(&cell).into_owned() } else { cell };
                        if cell.is_empty() || cell.contains([sep.as_bytes()[0] as char, '"', '\n', '\r']) {
                            format!("\"{}\"", cell.replace('"', "\"\""))
                        } else {
                            cell
                        }
                    })
                    .collect();
                text.push_str(&cells.join(sep));
                text.push('\n');
            }
            Value::String(text)
        }
        _ => return Err(CkanError::validation("records_format", "Must be objects, lists, csv or tsv")),
    };
    let mut result = json!({
        "resource_id": id,
        "fields": fields,
        "records": records,
        "records_format": format,
        "limit": limit,
        "offset": offset,
        "_links": {
            "start": datastore_link(base, m, None, None),
            "next": datastore_link(base, m, Some(offset + limit), read_version),
        },
    });
    if offset > 0 {
        result["_links"]["prev"] = json!(datastore_link(base, m, Some((offset - limit).max(0)), read_version));
    }
    if let Some(v) = read_version {
        result["version"] = json!(v);
    }
    if include_total {
        result["total"] = json!(r.total);
        result["total_was_estimated"] = json!(false);
    }
    Ok(result)
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
