//! The catalog: resources (信息资源), their lifecycle and revisions, themes, search.

use crate::error::ErrorEnvelope;
use crate::extract::{ApiJson, ApiQuery, Auth, MaybeAuth, Meta};
use crate::{ApiError, AppState};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use citydata_core::catalog::ListFilter;
use citydata_domain::region::RegionCode;
use citydata_domain::resource::{Resource, ResourceInput};
use citydata_domain::vocab::{self, THEMES};
use citydata_search::{Filters, Hit, SearchQuery, SearchResults, Sort};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::HashMap;
use utoipa::{IntoParams, ToSchema};

/// Chinese titles of a resource's codes, for display.
#[derive(Serialize, ToSchema)]
pub struct ResourceLabels {
    /// The provider department's name.
    pub provider: Option<String>,
    pub theme: Option<String>,
    pub class: String,
    pub format: String,
    pub share: String,
    pub share_method: String,
    pub open: String,
    pub update_cycle: String,
    pub security_level: String,
    pub state: String,
    /// Region names (the code where a name is unknown).
    pub regions: Vec<String>,
}

/// Chinese labels for a resource's codes.
pub fn labels(r: &Resource, dept_names: &HashMap<String, String>) -> ResourceLabels {
    let c = &r.content;
    ResourceLabels {
        provider: dept_names.get(c.provider.as_str()).cloned(),
        theme: vocab::theme(&c.classification.theme).map(|t| t.name.to_string()),
        class: c.classification.class.title().into(),
        format: c.format.category.title().into(),
        share: c.share.kind.title().into(),
        share_method: c.share.method.title().into(),
        open: c.open.kind.title().into(),
        update_cycle: c.update_cycle.title().into(),
        security_level: c.security_level.title().into(),
        state: r.state.title().into(),
        regions: c.regions.iter().map(|g| g.name().unwrap_or(g.as_str()).to_string()).collect(),
    }
}

/// A resource as the API shows it: its elements, lifecycle facts and `labels` (Chinese titles).
#[derive(Serialize, ToSchema)]
pub struct ResourceView {
    #[serde(flatten)]
    pub resource: Resource,
    pub labels: ResourceLabels,
    /// Where a harvested entry comes from (absent for entries cataloged here).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub origin: Option<Origin>,
}

/// A harvested entry's origin: the harvest source, the remote's identifier and page.
#[derive(Serialize, ToSchema)]
pub struct Origin {
    pub source_id: uuid::Uuid,
    pub identifier: String,
    pub url: Option<String>,
}

/// The view of a resource: its elements, lifecycle facts and `labels` (Chinese titles).
pub fn view(r: &Resource, dept_names: &HashMap<String, String>) -> ResourceView {
    ResourceView { resource: r.clone(), labels: labels(r, dept_names), origin: None }
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Provider department code.
    pub provider: Option<String>,
    /// Theme code, e.g. `population`, `health`.
    pub theme: Option<String>,
    /// `basic`, `thematic`, `departmental`.
    pub class: Option<String>,
    /// Share type: `unconditional`, `conditional`, `none`.
    pub share: Option<String>,
    /// Open type: `unconditional`, `conditional`, `none`.
    pub open: Option<String>,
    /// Update cycle, e.g. `daily`.
    pub cycle: Option<String>,
    /// `draft`, `published`, `withdrawn` (others' drafts are never visible).
    pub state: Option<String>,
    /// A GB/T 2260 code the resource covers.
    pub region: Option<String>,
    /// Exact resource code, e.g. `101/000001`.
    pub code: Option<String>,
    pub page: Option<u64>,
    /// 1–1000, default 20.
    pub per_page: Option<u32>,
}

#[derive(Serialize, ToSchema)]
pub struct ResourcePage {
    pub total: u64,
    pub page: u64,
    pub per_page: u32,
    pub items: Vec<ResourceView>,
}

/// The catalog the caller may see: the open catalog for anonymous callers, the sharing catalog
/// for government users (plus their own department's drafts), filtered and paged.
#[utoipa::path(get, path = "/api/v1/resources", tag = "catalog", params(ListQuery),
    responses((status = 200, body = ResourcePage), (status = 400, body = ErrorEnvelope)))]
pub async fn list_resources(
    State(state): State<AppState>,
    MaybeAuth(p): MaybeAuth,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Json<ResourcePage>, ApiError> {
    let per_page = q.per_page.unwrap_or(20).clamp(1, 1000);
    // Bounded so that the offset cannot overflow; a page past the end is simply empty.
    let page = q.page.unwrap_or(1).clamp(1, 1_000_000);
    let filter = ListFilter {
        provider: q.provider,
        theme: q.theme,
        class: q.class,
        share: q.share,
        open: q.open,
        cycle: q.cycle,
        state: q.state,
        region: q.region,
        code: q.code,
    };
    let (total, items) =
        state.core.list_resources(p.as_ref(), &filter, per_page, (page - 1) * u64::from(per_page)).await?;
    let names = state.core.department_names().await?;
    Ok(Json(ResourcePage { total, page, per_page, items: items.iter().map(|r| view(r, &names)).collect() }))
}

/// Create a draft resource. Every GB/T 21063 element is checked; problems are named by field
/// path in `details.fields` (e.g. `items[2].validator`). The code is assigned when absent.
#[utoipa::path(post, path = "/api/v1/resources", tag = "catalog",
    request_body(content = ResourceInput, description = "The resource's elements: name, abstract, provider, classification {class, theme}, format {category, type}, items [...], share {type, conditions, method}, open {type, conditions}, update_cycle, publish_date, related, security_level, tags, license, regions, contact; optional code and slug."),
    responses((status = 201, description = "The created draft", body = ResourceView), (status = 400, body = ErrorEnvelope),
        (status = 401, body = ErrorEnvelope), (status = 403, body = ErrorEnvelope), (status = 409, body = ErrorEnvelope)),
    security(("session" = []), ("bearer" = [])))]
pub async fn create_resource(
    State(state): State<AppState>,
    Meta(meta): Meta,
    Auth(p): Auth,
    ApiJson(input): ApiJson<ResourceInput>,
) -> Result<(StatusCode, Json<ResourceView>), ApiError> {
    let r = state.core.create_resource(&meta, &p, &input).await?;
    let names = state.core.department_names().await?;
    Ok((StatusCode::CREATED, Json(view(&r, &names))))
}

/// One resource by UUID, code or slug (404 when the caller may not see it).
#[utoipa::path(get, path = "/api/v1/resources/{id}", tag = "catalog",
    params(("id" = String, Path, description = "UUID, resource code (URL-encoded) or slug")),
    responses((status = 200, body = ResourceView), (status = 404, body = ErrorEnvelope)))]
pub async fn get_resource(
    State(state): State<AppState>,
    MaybeAuth(p): MaybeAuth,
    Path(id): Path<String>,
) -> Result<Json<ResourceView>, ApiError> {
    let c = state.core.get_resource_cached(p.as_ref(), &id).await?;
    let names = state.core.department_names().await?;
    let mut v = view(&c.resource, &names);
    v.origin = c.origin.as_ref().map(|o| Origin {
        source_id: o.source_id,
        identifier: o.identifier.clone(),
        url: o.url.clone(),
    });
    Ok(Json(v))
}

/// Change elements with a JSON merge patch (RFC 7396); every change becomes a revision.
#[utoipa::path(patch, path = "/api/v1/resources/{id}", tag = "catalog",
    params(("id" = String, Path)),
    request_body(content = Object, description = "Merge patch of the resource's elements"),
    responses((status = 200, body = ResourceView), (status = 400, body = ErrorEnvelope), (status = 403, body = ErrorEnvelope),
        (status = 404, body = ErrorEnvelope), (status = 409, body = ErrorEnvelope)),
    security(("session" = []), ("bearer" = [])))]
pub async fn update_resource(
    State(state): State<AppState>,
    Meta(meta): Meta,
    Auth(p): Auth,
    Path(id): Path<String>,
    ApiJson(patch): ApiJson<Value>,
) -> Result<Json<ResourceView>, ApiError> {
    let r = state.core.update_resource(&meta, &p, &id, &patch).await?;
    let names = state.core.department_names().await?;
    Ok(Json(view(&r, &names)))
}

/// Delete a draft.
#[utoipa::path(delete, path = "/api/v1/resources/{id}", tag = "catalog",
    params(("id" = String, Path)),
    responses((status = 204, description = "Deleted"), (status = 403, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope),
        (status = 409, body = ErrorEnvelope, description = "Not a draft")),
    security(("session" = []), ("bearer" = [])))]
pub async fn delete_resource(
    State(state): State<AppState>,
    Meta(meta): Meta,
    Auth(p): Auth,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    state.core.delete_resource(&meta, &p, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Publish a draft or withdrawn resource.
#[utoipa::path(post, path = "/api/v1/resources/{id}/publish", tag = "catalog",
    params(("id" = String, Path)),
    responses((status = 200, body = ResourceView), (status = 403, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope), (status = 409, body = ErrorEnvelope)),
    security(("session" = []), ("bearer" = [])))]
pub async fn publish_resource(
    State(state): State<AppState>,
    Meta(meta): Meta,
    Auth(p): Auth,
    Path(id): Path<String>,
) -> Result<Json<ResourceView>, ApiError> {
    let r = state.core.publish_resource(&meta, &p, &id).await?;
    let names = state.core.department_names().await?;
    Ok(Json(view(&r, &names)))
}

/// Withdraw a published resource from the catalogs.
#[utoipa::path(post, path = "/api/v1/resources/{id}/withdraw", tag = "catalog",
    params(("id" = String, Path)),
    responses((status = 200, body = ResourceView), (status = 403, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope), (status = 409, body = ErrorEnvelope)),
    security(("session" = []), ("bearer" = [])))]
pub async fn withdraw_resource(
    State(state): State<AppState>,
    Meta(meta): Meta,
    Auth(p): Auth,
    Path(id): Path<String>,
) -> Result<Json<ResourceView>, ApiError> {
    let r = state.core.withdraw_resource(&meta, &p, &id).await?;
    let names = state.core.department_names().await?;
    Ok(Json(view(&r, &names)))
}

pub use citydata_core::catalog::RevisionView;

/// Every revision of a resource: who changed which elements, when (government users).
#[utoipa::path(get, path = "/api/v1/resources/{id}/revisions", tag = "catalog",
    params(("id" = String, Path)),
    responses((status = 200, body = Vec<RevisionView>), (status = 404, body = ErrorEnvelope)))]
pub async fn resource_revisions(
    State(state): State<AppState>,
    MaybeAuth(p): MaybeAuth,
    Path(id): Path<String>,
) -> Result<Json<Vec<RevisionView>>, ApiError> {
    Ok(Json(state.core.resource_revisions(p.as_ref(), &id).await?))
}

#[derive(Serialize, ToSchema)]
pub struct ThemeView {
    pub code: String,
    pub name: String,
    pub name_en: String,
    /// `basic` for the five basic libraries (基础库), `thematic` otherwise.
    pub kind: String,
    /// Two-digit number used in resource codes.
    pub number: u8,
}

/// Themes (主题) and basic libraries (基础库).
#[utoipa::path(get, path = "/api/v1/themes", tag = "catalog", responses((status = 200, body = Vec<ThemeView>)))]
pub async fn list_themes() -> Json<Vec<ThemeView>> {
    Json(
        THEMES
            .iter()
            .map(|t| ThemeView {
                code: t.code.into(),
                name: t.name.into(),
                name_en: t.name_en.into(),
                kind: if t.basic { "basic" } else { "thematic" }.into(),
                number: t.number,
            })
            .collect(),
    )
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SearchParams {
    /// Words to find (Chinese is segmented); empty lists everything visible.
    pub q: Option<String>,
    pub theme: Option<String>,
    pub provider: Option<String>,
    pub class: Option<String>,
    pub share: Option<String>,
    pub open: Option<String>,
    /// Format category, e.g. `database`, `spreadsheet`.
    pub format: Option<String>,
    pub cycle: Option<String>,
    pub region: Option<String>,
    /// `relevance` (default) or `updated`.
    pub sort: Option<String>,
    pub page: Option<u64>,
    /// 1–100, default 20.
    pub per_page: Option<u32>,
}

#[derive(Serialize, ToSchema)]
pub struct FacetValue {
    pub value: String,
    pub label: String,
    pub count: u64,
}

#[derive(Serialize, ToSchema)]
pub struct SearchResponse {
    pub total: usize,
    pub page: u64,
    pub per_page: u32,
    pub hits: Vec<Hit>,
    /// Per dimension (`theme`, `provider`, ...), its values with counts, largest first.
    pub facets: HashMap<String, Vec<FacetValue>>,
}

/// Label of a facet value in Chinese.
pub fn facet_label(dim: &str, value: &str, names: &HashMap<String, String>) -> String {
    let label = match dim {
        "theme" => vocab::theme(value).map(|t| t.name.to_string()),
        "provider" => names.get(value).cloned(),
        "class" => vocab::ResourceClass::parse(value).ok().map(|v| v.title().to_string()),
        "share" => vocab::ShareType::parse(value).ok().map(|v| v.title().to_string()),
        "open" => vocab::OpenType::parse(value).ok().map(|v| v.title().to_string()),
        "format" => vocab::FormatCategory::parse(value).ok().map(|v| v.title().to_string()),
        "cycle" => vocab::UpdateCycle::parse(value).ok().map(|v| v.title().to_string()),
        "region" => RegionCode::parse(value).ok().and_then(|r| r.name().map(str::to_string)),
        _ => None,
    };
    label.unwrap_or_else(|| value.to_string())
}

/// Turn search results into the API's shape (shared with the CKAN surface).
pub fn search_response(r: SearchResults, page: u64, per_page: u32, names: &HashMap<String, String>) -> SearchResponse {
    let facets = r
        .facets
        .iter()
        .map(|(dim, vals)| {
            let vs = vals
                .iter()
                .map(|(v, n)| FacetValue { value: v.clone(), label: facet_label(dim, v, names), count: *n })
                .collect();
            (dim.clone(), vs)
        })
        .collect();
    let hits = r.hits;
    SearchResponse { total: r.total, page, per_page, hits, facets }
}

/// Full-text search of the catalog the caller may see, with facets and highlights.
#[utoipa::path(get, path = "/api/v1/search", tag = "catalog", params(SearchParams),
    responses((status = 200, body = SearchResponse), (status = 400, body = ErrorEnvelope)))]
pub async fn search(
    State(state): State<AppState>,
    MaybeAuth(p): MaybeAuth,
    ApiQuery(q): ApiQuery<SearchParams>,
) -> Result<Json<SearchResponse>, ApiError> {
    let per_page = q.per_page.unwrap_or(20).clamp(1, 100);
    let page = q.page.unwrap_or(1).clamp(1, 10_000);
    let sort = match q.sort.as_deref() {
        None | Some("") | Some("relevance") => Sort::Relevance,
        Some("updated") => Sort::Updated,
        Some(other) => {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "validation_failed",
                format!("sort 须为 relevance 或 updated，收到 \"{other}\" / sort must be relevance or updated"),
            ));
        }
    };
    let query = SearchQuery {
        text: q.q.unwrap_or_default().chars().take(200).collect(),
        filters: Filters {
            theme: q.theme,
            provider: q.provider,
            class: q.class,
            share: q.share,
            open: q.open,
            format: q.format,
            cycle: q.cycle,
            region: q.region,
            state: None,
            updated_since: None,
            updated_before: None,
        },
        offset: ((page - 1) * u64::from(per_page)) as usize,
        limit: per_page as usize,
        sort,
    };
    let r = state.core.search_catalog(p.as_ref(), &query).await?;
    let names = state.core.department_names().await?;
    Ok(Json(search_response(r, page, per_page, &names)))
}
