//! The public pages: home, search, datasets, departments, themes, API docs, help, login,
//! registration, and the embedded assets.

use crate::chart;
use crate::ctx::{Ctx, safe_next};
use crate::i18n::Lang;
use crate::render::Portal;
use axum::Extension;
use axum::extract::{Form, Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum_extra::extract::cookie::{Cookie, SameSite};
use citydata_api::AppState;
use citydata_core::CoreError;
use citydata_core::reads::{AggregateParams, RowsParams};
use citydata_domain::resource::Resource;
use citydata_domain::vocab::{self, DataType, THEMES};
use citydata_search::{Filters, SearchQuery, Sort};
use serde::Deserialize;
use serde_json::{Value, json};
use std::sync::Arc;

type P = Extension<Arc<Portal>>;

/// Human labels of the catalog's codes in `lang`: Chinese titles, or the English codes spelled out.
pub(crate) fn labels(lang: Lang) -> Value {
    fn en(code: &str) -> String {
        let s = code.replace('_', " ");
        let mut c = s.chars();
        match c.next() {
            Some(f) => f.to_uppercase().collect::<String>() + c.as_str(),
            None => s,
        }
    }
    macro_rules! table {
        ($t:ty) => {{
            let mut m = serde_json::Map::new();
            for v in <$t>::ALL {
                let label = if lang == Lang::Zh { v.title().to_string() } else { en(v.as_str()) };
                m.insert(v.as_str().to_string(), Value::String(label));
            }
            Value::Object(m)
        }};
    }
    let mut themes = serde_json::Map::new();
    for t in THEMES {
        themes.insert(t.code.into(), Value::String(if lang == Lang::Zh { t.name.into() } else { t.name_en.into() }));
    }
    // The share and open types have the same English codes; say which is which.
    let (share, open) = if lang == Lang::En {
        (
            json!({"unconditional": "Shared freely", "conditional": "Shared on conditions", "none": "Not shared"}),
            json!({"unconditional": "Open", "conditional": "Open on conditions", "none": "Not open"}),
        )
    } else {
        (table!(vocab::ShareType), table!(vocab::OpenType))
    };
    json!({
        "class": table!(vocab::ResourceClass), "share": share, "method": table!(vocab::ShareMethod),
        "open": open, "cycle": table!(vocab::UpdateCycle), "security": table!(vocab::SecurityLevel),
        "format": table!(vocab::FormatCategory), "data_type": table!(vocab::DataType),
        "sensitivity": table!(vocab::Sensitivity), "state": table!(vocab::ResourceState), "theme": Value::Object(themes),
    })
}

fn hits_json(r: &citydata_search::SearchResults) -> Value {
    serde_json::to_value(&r.hits).unwrap_or_default()
}

pub async fn home(State(state): State<AppState>, Extension(portal): P, ctx: Ctx) -> Response {
    let core = &state.core;
    let p = ctx.principal.as_ref();
    let all = SearchQuery { limit: 8, sort: Sort::Updated, ..Default::default() };
    let results = match core.search_catalog(p, &all).await {
        Ok(r) => r,
        Err(e) => return ctx.core_error(&portal, e),
    };
    let departments = core.list_departments().await.map(|d| d.len()).unwrap_or(0);
    let open = results
        .facets
        .get("open")
        .map(|v| v.iter().filter(|(k, _)| k != "none").map(|(_, n)| *n).sum::<u64>())
        .unwrap_or(0);
    let usage = core.usage_counts().await.unwrap_or_default();
    let downloads: u64 = usage.values().map(|u| u.downloads).sum();
    let l = labels(ctx.lang);
    let theme_counts: Vec<(String, f64)> = results
        .facets
        .get("theme")
        .map(|v| v.iter().map(|(k, n)| (l["theme"][k].as_str().unwrap_or(k).to_string(), *n as f64)).collect())
        .unwrap_or_default();
    let themes: Vec<Value> = results
        .facets
        .get("theme")
        .map(|v| v.iter().map(|(k, n)| json!({"code": k, "name": l["theme"][k], "count": n})).collect())
        .unwrap_or_default();
    // Most used: resources by reads and downloads recorded in the audit log, among those the
    // caller may see.
    let mut used: Vec<(&String, u64)> = usage.iter().map(|(k, u)| (k, u.reads + u.downloads)).collect();
    used.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    let mut popular = Vec::new();
    for (code, n) in used {
        if popular.len() == 6 {
            break;
        }
        if let Ok(r) = core.get_resource(p, code).await {
            popular.push(json!({"name": r.content.name, "slug": r.content.slug.as_str().to_string(), "uses": n}));
        }
    }
    let chart = chart::bars(&ctx.m("home_chart_title"), &theme_counts);
    ctx.render(
        &portal,
        "home.html",
        json!({
            "counts": {"resources": results.total, "departments": departments, "open": open, "downloads": downloads},
            "themes": themes, "newest": hits_json(&results), "popular": popular, "chart": chart, "labels": l,
        }),
    )
}

const PER_PAGE: usize = 20;

pub async fn datasets(State(state): State<AppState>, Extension(portal): P, ctx: Ctx) -> Response {
    search_page(&state, &portal, &ctx, None).await
}

pub async fn theme(
    State(state): State<AppState>,
    Extension(portal): P,
    Path(code): Path<String>,
    ctx: Ctx,
) -> Response {
    let Some(t) = vocab::theme(&code) else {
        return ctx.error_page(&portal, StatusCode::NOT_FOUND, &ctx.m("error_not_found"));
    };
    search_page(&state, &portal, &ctx, Some(t.code)).await
}

async fn search_page(state: &AppState, portal: &Portal, ctx: &Ctx, theme: Option<&str>) -> Response {
    let page: usize = ctx.q("page").and_then(|p| p.parse().ok()).filter(|p| *p >= 1).unwrap_or(1).min(500);
    let text = ctx.q("q").unwrap_or("").chars().take(200).collect::<String>();
    // English pages search English words too: themes and common terms by their Chinese names.
    let query_text = if ctx.lang == Lang::En { crate::present::with_chinese_synonyms(&text) } else { text.clone() };
    let filters = Filters {
        theme: theme.map(str::to_string).or_else(|| ctx.q("theme").map(str::to_string)),
        provider: ctx.q("provider").map(str::to_string),
        class: ctx.q("class").map(str::to_string),
        share: ctx.q("share").map(str::to_string),
        open: ctx.q("open").map(str::to_string),
        format: ctx.q("format").map(str::to_string),
        cycle: ctx.q("cycle").map(str::to_string),
        region: ctx.q("region").map(str::to_string),
        ..Default::default()
    };
    let sort = if ctx.q("sort") == Some("updated") { Sort::Updated } else { Sort::Relevance };
    let q = SearchQuery {
        text: query_text,
        filters: filters.clone(),
        offset: (page - 1) * PER_PAGE,
        limit: PER_PAGE,
        sort,
    };
    let results = match state.core.search_catalog(ctx.principal.as_ref(), &q).await {
        Ok(r) => r,
        Err(e) => return ctx.core_error(portal, e),
    };
    let names = state.core.department_names().await.unwrap_or_default();
    let l = labels(ctx.lang);
    // Facet links keep the other parameters and replace their own.
    let current: Vec<(String, String)> = [
        ("q", Some(text.clone())),
        ("theme", if theme.is_some() { None } else { filters.theme.clone() }),
        ("provider", filters.provider.clone()),
        ("class", filters.class.clone()),
        ("share", filters.share.clone()),
        ("open", filters.open.clone()),
        ("format", filters.format.clone()),
        ("cycle", filters.cycle.clone()),
        ("region", filters.region.clone()),
        ("sort", ctx.q("sort").map(str::to_string)),
    ]
    .into_iter()
    .filter_map(|(k, v)| v.filter(|v| !v.is_empty()).map(|v| (k.to_string(), v)))
    .collect();
    let base = ctx.path.split('?').next().unwrap_or("/datasets").to_string();
    let link = |set: &[(&str, Option<&str>)]| -> String {
        let mut pairs: Vec<(String, String)> =
            current.iter().filter(|(k, _)| !set.iter().any(|(s, _)| s == k)).cloned().collect();
        for (k, v) in set {
            if let Some(v) = v {
                pairs.push((k.to_string(), v.to_string()));
            }
        }
        let qs: Vec<String> =
            pairs.iter().map(|(k, v)| format!("{}={}", crate::ctx::urlencode(k), crate::ctx::urlencode(v))).collect();
        if qs.is_empty() { base.clone() } else { format!("{base}?{}", qs.join("&")) }
    };
    let mut facets = Vec::new();
    for dim in ["theme", "provider", "region", "share", "open", "format", "cycle"] {
        if dim == "theme" && theme.is_some() {
            continue;
        }
        let Some(values) = results.facets.get(dim) else { continue };
        let selected = current.iter().find(|(k, _)| k == dim).map(|(_, v)| v.clone());
        let label_table = match dim {
            "provider" | "region" => Value::Null,
            d => l[d].clone(),
        };
        let entries: Vec<Value> = values
            .iter()
            .map(|(v, n)| {
                let name = if dim == "provider" {
                    names.get(v).cloned().unwrap_or_else(|| v.clone())
                } else if dim == "region" {
                    // The GB/T 2260 name (the same in both languages), with the code.
                    match citydata_domain::region::RegionCode::parse(v).ok().and_then(|c| c.name()) {
                        Some(n) => format!("{n}（{v}）"),
                        None => v.clone(),
                    }
                } else {
                    label_table[v].as_str().unwrap_or(v).to_string()
                };
                let on = selected.as_deref() == Some(v.as_str());
                json!({"value": v, "name": name, "count": n, "on": on,
                       "href": if on { link(&[(dim, None), ("page", None)]) } else { link(&[(dim, Some(v)), ("page", None)]) }})
            })
            .collect();
        facets.push(json!({"dim": dim, "title": ctx.m(&format!("facet_{dim}")), "entries": entries}));
    }
    let pages = results.total.div_ceil(PER_PAGE).max(1);
    let page_s = (page + 1).to_string();
    let prev_s = (page.saturating_sub(1)).to_string();
    let theme_name = theme.map(|t| l["theme"][t].clone());
    ctx.render(
        portal,
        "datasets.html",
        json!({
            "q": text, "action": base, "total": results.total, "hits": hits_json(&results), "facets": facets, "labels": l,
            "page": page, "pages": pages, "theme": theme, "theme_name": theme_name,
            "sort": ctx.q("sort").unwrap_or("relevance"),
            "filtered": current.iter().any(|(k, _)| k != "q" && k != "sort"),
            "sort_updated": link(&[("sort", Some("updated")), ("page", None)]),
            "sort_relevance": link(&[("sort", None), ("page", None)]),
            "next": (page < pages).then(|| link(&[("page", Some(&page_s))])),
            "prev": (page > 1).then(|| link(&[("page", Some(&prev_s))])),
        }),
    )
}

fn resource_json(r: &Resource) -> Value {
    let mut v = serde_json::to_value(r).unwrap_or_default();
    if let Some(o) = v.as_object_mut() {
        o.insert("slug".into(), Value::String(r.content.slug.as_str().to_string()));
        o.insert("code".into(), Value::String(r.content.code.to_string()));
    }
    v
}

/// Up to three charts for the columns the caller may read unmasked: counts of the first two
/// text columns, a histogram of the first number, counts per period of the first date —
/// computed through the gate (`aggregate`), small groups suppressed for the public.
async fn charts(state: &AppState, ctx: &Ctx, r: &Resource, readable: &[Value]) -> Vec<Value> {
    let core = &state.core;
    let id = r.id.to_string();
    let mut out = Vec::new();
    let unmasked: Vec<&Value> = readable.iter().filter(|f| f["mask"].is_null()).collect();
    let item = |name: &str| r.content.items.iter().find(|i| i.name.as_str() == name);
    let mut texts = 0;
    for f in &unmasked {
        let Some(i) = item(f["name"].as_str().unwrap_or("")) else { continue };
        if i.key || out.len() >= 3 {
            continue;
        }
        let title = format!("{} · {}", i.title, ctx.m("chart_counts"));
        match i.data_type {
            DataType::String if texts < 2 => {
                // Many distinct values (names, addresses) make no chart: refused on a sample
                // of the rows before the whole table is grouped.
                let params = AggregateParams {
                    group_by: Some(i.name.to_string()),
                    max_groups: Some(40),
                    cache: true,
                    ..Default::default()
                };
                let Ok(a) = core.aggregate(&ctx.meta, ctx.principal.as_ref(), &id, &params).await else { continue };
                let mut data: Vec<(String, f64)> = a
                    .rows
                    .iter()
                    .map(|row| {
                        (row[i.name.as_str()].as_str().unwrap_or("—").to_string(), row["count"].as_f64().unwrap_or(0.0))
                    })
                    .collect();
                // Many distinct values (names, addresses) make no chart.
                if data.len() < 2 || data.len() > 40 {
                    continue;
                }
                data.sort_by(|a, b| b.1.total_cmp(&a.1));
                data.truncate(12);
                texts += 1;
                out.push(json!({"title": title, "svg": chart::bars(&title, &data), "suppressed": a.suppressed_groups}));
            }
            DataType::Integer | DataType::Decimal | DataType::Money | DataType::Date
                if !out.iter().any(|c| c["kind"] == i.data_type.as_str()) =>
            {
                if let Some(c) = histogram(state, ctx, &id, i).await {
                    out.push(c);
                }
            }
            _ => {}
        }
    }
    out
}

/// A histogram (numbers) or counts per period (dates) in one grouped read through the gate
/// (numbers take a second one for their range first): classes are formed by the engine
/// (`bucket`), never by one filtered count per class.
async fn histogram(state: &AppState, ctx: &Ctx, id: &str, i: &citydata_domain::resource::InfoItem) -> Option<Value> {
    let core = &state.core;
    let name = i.name.as_str();
    let is_date = i.data_type == DataType::Date;
    let grouped = |bucket: String| AggregateParams {
        group_by: Some(name.to_string()),
        bucket: Some(bucket),
        cache: true,
        ..Default::default()
    };
    // (class lower bound, count) pairs, and the range they cover.
    let (classes, lo, hi, width, suppressed) = if is_date {
        let a = core.aggregate(&ctx.meta, ctx.principal.as_ref(), id, &grouped("year".into())).await.ok()?;
        let years: Vec<(i64, f64)> = a
            .rows
            .iter()
            .filter_map(|r| {
                let y = r[name].as_str().and_then(|s| s.get(..4)).and_then(|s| s.parse::<i64>().ok())?;
                Some((y, r["count"].as_f64().unwrap_or(0.0)))
            })
            .collect();
        let lo = years.iter().map(|(y, _)| *y).min()?;
        let hi = years.iter().map(|(y, _)| *y).max()? + 1;
        let width = ((hi - lo + 9) / 10).max(1);
        (years, lo, hi, width, a.suppressed_groups)
    } else {
        let params =
            AggregateParams { metrics: Some(format!("min({name}),max({name})")), cache: true, ..Default::default() };
        let a = core.aggregate(&ctx.meta, ctx.principal.as_ref(), id, &params).await.ok()?;
        let row = a.rows.first()?;
        let n = |v: &Value| v.as_f64().or_else(|| v.as_str().and_then(|s| s.parse().ok()));
        let (lo, hi) =
            (n(&row[format!("min_{name}")])?.floor() as i64, n(&row[format!("max_{name}")])?.ceil() as i64 + 1);
        if hi <= lo {
            return None;
        }
        let width = ((hi - lo + 9) / 10).max(1);
        // Classes aligned on `lo`: shift by lo's remainder so that floor(x / w) × w starts there.
        let a = core.aggregate(&ctx.meta, ctx.principal.as_ref(), id, &grouped(width.to_string())).await.ok()?;
        let classes: Vec<(i64, f64)> = a
            .rows
            .iter()
            .filter_map(|r| Some((n(&r[name])?.floor() as i64, r["count"].as_f64().unwrap_or(0.0))))
            .collect();
        let lo = lo.div_euclid(width) * width;
        (classes, lo, hi, width, a.suppressed_groups)
    };
    if hi <= lo {
        return None;
    }
    let buckets = ((hi - lo + width - 1) / width).max(1);
    let mut data: Vec<(String, f64)> = (0..buckets)
        .map(|b| {
            let (from, to) = (lo + b * width, lo + (b + 1) * width);
            let label = if is_date && width == 1 { format!("{from}") } else { format!("{from}–{}", to - 1) };
            (label, 0.0)
        })
        .collect();
    for (start, count) in classes {
        let b = (start - lo).div_euclid(width);
        if let Some(slot) = usize::try_from(b).ok().and_then(|b| data.get_mut(b)) {
            slot.1 += count;
        }
    }
    // The last period is partial when it has not ended yet: marked, and said under the chart.
    let this_year = chrono::Utc::now().with_timezone(&citydata_domain::cast::local_offset()).format("%Y").to_string();
    let partial = is_date && this_year.parse::<i64>().is_ok_and(|y| y >= lo + (buckets - 1) * width && y < hi);
    if partial && let Some(last) = data.last_mut() {
        last.0.push('*');
    }
    let title = format!("{} · {}", i.title, if is_date { ctx.m("chart_over_time") } else { ctx.m("chart_histogram") });
    let svg = if is_date { chart::line(&title, &data) } else { chart::columns(&title, &data) };
    Some(
        json!({"title": title, "svg": svg, "kind": i.data_type.as_str(), "suppressed": suppressed, "partial": partial}),
    )
}

pub async fn dataset(
    State(state): State<AppState>,
    Extension(portal): P,
    Path(slug): Path<String>,
    ctx: Ctx,
    headers: HeaderMap,
) -> Response {
    let core = &state.core;
    let p = ctx.principal.as_ref();
    let r = match core.get_resource(p, &slug).await {
        Ok(r) => r,
        Err(e) => return ctx.core_error(&portal, e),
    };
    let id = r.id.to_string();
    let names = core.department_names().await.unwrap_or_default();
    // The preview goes through the gate like every read; a refusal is shown, not hidden.
    let preview = core
        .read_rows(
            &ctx.meta,
            p,
            &id,
            &RowsParams { limit: Some(20), count: Some("exact".into()), ..Default::default() },
        )
        .await;
    let (preview, denied) = match preview {
        Ok(rows) => (Some(serde_json::to_value(&rows).unwrap_or_default()), None),
        Err(CoreError::Denied(reason)) => (None, Some(reason.code())),
        Err(e) => {
            tracing::warn!(error = %e, "preview failed");
            (None, Some("unavailable"))
        }
    };
    let charts = match &preview {
        Some(v) => charts(&state, &ctx, &r, v["fields"].as_array().map(Vec::as_slice).unwrap_or(&[])).await,
        None => vec![],
    };
    let ingests = core.list_ingests(p, &id).await.unwrap_or_default();
    let quality = crate::present::table_quality(&ingests, preview.as_ref().and_then(|v| v["total"].as_u64()));
    let versions: Vec<Value> = core
        .table_versions(p, &id)
        .await
        .map(|v| v.into_iter().take(10).map(|x| serde_json::to_value(x).unwrap_or_default()).collect())
        .unwrap_or_default();
    // Absolute addresses follow `public_base_url`, else the host this request came to.
    let base = state.base_url(&headers);
    // A token only where the data needs one: open data reads without.
    let needs_token =
        !(r.content.open.kind == vocab::OpenType::Unconditional && r.state == vocab::ResourceState::Published);
    let open_conditional = r.content.open.kind == vocab::OpenType::Conditional;
    let share_conditional = r.content.share.kind == vocab::ShareType::Conditional;
    let can_apply = match p {
        None => open_conditional,
        Some(u) if u.memberships.is_empty() => open_conditional,
        Some(u) => share_conditional && !u.is_member_of(&r.content.provider),
    } && denied.is_some();
    let rules: serde_json::Map<String, Value> = r
        .content
        .items
        .iter()
        .filter_map(|i| {
            i.validator
                .as_ref()
                .map(|v| (i.name.to_string(), Value::String(crate::present::validator_title(v, ctx.lang))))
        })
        .collect();
    ctx.render(
        &portal,
        "dataset.html",
        json!({"rules": rules,
            "r": resource_json(&r), "provider_name": names.get(r.content.provider.as_str()), "labels": labels(ctx.lang),
            "preview": preview, "denied": denied.map(|d| ctx.m(&format!("deny_{d}"))), "charts": charts,
            "quality": quality, "versions": versions, "base": base, "needs_token": needs_token, "can_apply": can_apply,
            "formats": if r.content.items.iter().any(|i| i.data_type.is_spatial()) { json!(["csv", "xlsx", "json", "ndjson", "parquet", "geojson"]) } else { json!(["csv", "xlsx", "json", "ndjson", "parquet"]) },
            "sent": ctx.q("sent").is_some(),
            "apps": applications_using(&state, &ctx, &r).await,
            "origin": core.resource_origin(r.id).await.ok().flatten().map(|o| json!({"url": o.url})),
            "files": crate::files::dataset_files(&state, &ctx, &r).await,
            "map": crate::map::dataset_map(&state, &ctx, &r).await,
            "can_edit": ctx.principal.as_ref().is_some_and(|p| p.can_steward(&r.content.provider)),
        }),
    )
}

/// The applications (应用) registered as using `r`, for its page.
async fn applications_using(state: &AppState, ctx: &Ctx, r: &citydata_domain::resource::Resource) -> Vec<Value> {
    let apps = state.core.list_applications(ctx.principal.as_ref(), Some(&r.id.to_string())).await.unwrap_or_default();
    apps.iter().map(|a| json!({"name": a.name, "scenario": a.scenario, "url": a.url})).collect()
}

#[derive(Deserialize)]
pub struct FeedbackForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    body: String,
    #[serde(default)]
    contact: String,
}

/// 纠错: a reader reports a problem with a dataset; it reaches the provider's stewards.
pub async fn feedback(
    State(state): State<AppState>,
    Extension(portal): P,
    Path(slug): Path<String>,
    ctx: Ctx,
    Form(form): Form<FeedbackForm>,
) -> Response {
    if let Err(r) = ctx.check_csrf(&form.csrf) {
        return r;
    }
    match state.core.submit_feedback(&ctx.meta, ctx.principal.as_ref(), &slug, &form.body, &form.contact).await {
        Ok(()) => ctx.redirect(&format!("/datasets/{}?sent=1#feedback", crate::ctx::urlencode(&slug))),
        Err(e @ CoreError::Validation(_)) => {
            let errors = ctx.field_errors(&e);
            ctx.render_status(
                &portal,
                StatusCode::BAD_REQUEST,
                "message.html",
                json!({"title": ctx.m("feedback_title"), "message": errors["body"].as_str().unwrap_or(&ctx.m("error_invalid")), "back": format!("/datasets/{slug}")}),
            )
        }
        Err(e) => ctx.core_error(&portal, e),
    }
}

pub async fn departments(State(state): State<AppState>, Extension(portal): P, ctx: Ctx) -> Response {
    let depts = match state.core.list_departments().await {
        Ok(d) => d,
        Err(e) => return ctx.core_error(&portal, e),
    };
    let q = SearchQuery { limit: 1, ..Default::default() };
    let counts = state
        .core
        .search_catalog(ctx.principal.as_ref(), &q)
        .await
        .map(|r| r.facets.get("provider").cloned().unwrap_or_default())
        .unwrap_or_default();
    let list: Vec<Value> = depts
        .iter()
        .map(|d| {
            let n = counts.iter().find(|(k, _)| k == d.code.as_str()).map(|(_, n)| *n).unwrap_or(0);
            json!({"code": d.code.to_string(), "name": d.name.as_str(), "count": n})
        })
        .collect();
    ctx.render(&portal, "departments.html", json!({"departments": list}))
}

pub async fn department(
    State(state): State<AppState>,
    Extension(portal): P,
    Path(code): Path<String>,
    ctx: Ctx,
) -> Response {
    let d = match state.core.get_department(&code).await {
        Ok(d) => d,
        Err(e) => return ctx.core_error(&portal, e),
    };
    let q = SearchQuery {
        limit: 100,
        sort: Sort::Updated,
        filters: Filters { provider: Some(d.code.to_string()), ..Default::default() },
        ..Default::default()
    };
    let results = match state.core.search_catalog(ctx.principal.as_ref(), &q).await {
        Ok(r) => r,
        Err(e) => return ctx.core_error(&portal, e),
    };
    let times = state.core.response_times(d.code.as_str()).await.ok();
    ctx.render(
        &portal,
        "department.html",
        json!({"d": {"code": d.code.to_string(), "name": d.name.as_str()}, "hits": hits_json(&results),
               "total": results.total, "labels": labels(ctx.lang), "times": serde_json::to_value(times).unwrap_or_default()}),
    )
}

pub async fn api_docs(Extension(portal): P, ctx: Ctx) -> Response {
    let doc = &portal.api_doc;
    let mut groups: std::collections::BTreeMap<String, Vec<Value>> = Default::default();
    if let Some(paths) = doc["paths"].as_object() {
        for (path, ops) in paths {
            let Some(ops) = ops.as_object() else { continue };
            for (method, op) in ops {
                let tag = op["tags"][0].as_str().unwrap_or("other").to_string();
                let summary = op["summary"].as_str().or(op["description"].as_str()).unwrap_or("");
                let params: Vec<Value> = op["parameters"]
                    .as_array()
                    .map(|ps| {
                        ps.iter()
                            .map(|p| json!({"name": p["name"], "in": p["in"], "description": p["description"]}))
                            .collect()
                    })
                    .unwrap_or_default();
                let zh = crate::i18n::api_summary_zh(method, path);
                groups.entry(tag).or_default().push(json!({
                    "method": method.to_uppercase(), "path": path, "summary": summary, "summary_zh": zh,
                    "description": op["description"], "params": params,
                }));
            }
        }
    }
    let mut tags: Vec<Value> = doc["tags"]
        .as_array()
        .map(|ts| {
            ts.iter()
                .filter_map(|t| {
                    let name = t["name"].as_str()?;
                    Some(json!({"name": name, "description": t["description"], "ops": groups.remove(name)}))
                })
                .collect()
        })
        .unwrap_or_default();
    // Operations under a tag the document does not declare are listed too, never dropped.
    for (name, ops) in groups {
        tags.push(json!({"name": name, "description": name, "ops": ops}));
    }
    ctx.render(&portal, "api_docs.html", json!({"tags": tags, "version": doc["info"]["version"]}))
}

pub async fn help(Extension(portal): P, ctx: Ctx) -> Response {
    ctx.render(&portal, "help.html", json!({}))
}

pub async fn login_page(State(state): State<AppState>, Extension(portal): P, ctx: Ctx) -> Response {
    let next = safe_next(ctx.q("next"));
    // After registration: say so, and fill in the new username.
    let registered = ctx.q("registered").is_some();
    let providers = crate::oidc::providers(&state, ctx.lang).await;
    ctx.render(
        &portal,
        "login.html",
        json!({"next": next, "registered": registered, "username": ctx.q("username"), "providers": providers}),
    )
}

#[derive(Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
    /// 动态口令 or a recovery code (administrators, when required).
    #[serde(default)]
    totp_code: String,
    #[serde(default)]
    next: String,
}

pub async fn login(
    State(state): State<AppState>,
    Extension(portal): P,
    ctx: Ctx,
    Form(form): Form<LoginForm>,
) -> Response {
    if let Err(r) = ctx.check_csrf(&form.csrf) {
        return r;
    }
    let next = safe_next(Some(&form.next));
    let code = Some(form.totp_code.as_str()).filter(|c| !c.trim().is_empty());
    match state.core.login_with_code(&ctx.meta, &form.username, &form.password, code).await {
        Ok(s) if !s.recovery_codes.is_empty() => {
            // A second factor was just enrolled: show its recovery codes once, then go on.
            let cookie = session_cookie(&state, s.cookie_value, s.expires_at);
            let codes = s.recovery_codes;
            let mut resp = ctx.render(&portal, "login.html", json!({"next": next, "recovery_codes": codes}));
            if let Ok(v) = cookie.to_string().parse() {
                resp.headers_mut().append(header::SET_COOKIE, v);
            }
            resp
        }
        Err(CoreError::SecondFactor { message, enrol, .. }) => {
            let providers = crate::oidc::providers(&state, ctx.lang).await;
            ctx.render_status(
                &portal,
                StatusCode::UNAUTHORIZED,
                "login.html",
                json!({"next": next, "error": crate::present::one_language(&message, ctx.lang), "username": form.username,
                       "providers": providers, "totp": true, "enrol": enrol}),
            )
        }
        Ok(s) => {
            let max_age = (s.expires_at - chrono::Utc::now()).num_seconds().max(0);
            let cookie = Cookie::build((citydata_api::SESSION_COOKIE, s.cookie_value))
                .path("/")
                .http_only(true)
                .same_site(SameSite::Lax)
                .secure(state.cookie_secure)
                .max_age(time::Duration::seconds(max_age))
                .build();
            let mut resp = ctx.redirect(&next);
            if let Ok(v) = cookie.to_string().parse() {
                resp.headers_mut().append(header::SET_COOKIE, v);
            }
            resp
        }
        Err(e) => {
            let api = citydata_api::ApiError::from(e);
            let status = api.status;
            let message = match status {
                StatusCode::TOO_MANY_REQUESTS => ctx.m("login_throttled"),
                // Staff sent to the identity provider (`oidc.local_login`): say so.
                StatusCode::FORBIDDEN => crate::present::one_language(&api.message, ctx.lang),
                _ => ctx.m("login_failed"),
            };
            let providers = crate::oidc::providers(&state, ctx.lang).await;
            ctx.render_status(
                &portal,
                status,
                "login.html",
                json!({"next": next, "error": message, "username": form.username, "providers": providers}),
            )
        }
    }
}

fn session_cookie(state: &AppState, value: String, expires_at: chrono::DateTime<chrono::Utc>) -> Cookie<'static> {
    let max_age = (expires_at - chrono::Utc::now()).num_seconds().max(0);
    Cookie::build((citydata_api::SESSION_COOKIE, value))
        .path("/")
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(state.cookie_secure)
        .max_age(time::Duration::seconds(max_age))
        .build()
}

pub async fn logout(
    State(state): State<AppState>,
    Extension(portal): P,
    ctx: Ctx,
    headers: HeaderMap,
    Form(form): Form<CsrfOnly>,
) -> Response {
    let _ = portal;
    if let Err(r) = ctx.check_csrf(&form.csrf) {
        return r;
    }
    let jar = axum_extra::extract::cookie::CookieJar::from_headers(&headers);
    let mut to = "/".to_string();
    if let (Some(c), Some(p)) = (jar.get(citydata_api::SESSION_COOKIE), ctx.principal.as_ref()) {
        // A provider's session ends at the provider too (RP-initiated logout), then comes back.
        let back = format!("{}/", state.base_url(&headers));
        if let Some(u) = state.core.oidc_logout_url(c.value(), &back).await {
            to = u;
        }
        let _ = state.core.logout(&ctx.meta, p, Some(c.value())).await;
    }
    let mut resp = ctx.redirect(&to);
    let gone = Cookie::build((citydata_api::SESSION_COOKIE, "")).path("/").max_age(time::Duration::ZERO).build();
    if let Ok(v) = gone.to_string().parse() {
        resp.headers_mut().append(header::SET_COOKIE, v);
    }
    resp
}

#[derive(Deserialize)]
pub struct CsrfOnly {
    #[serde(default)]
    pub csrf: String,
}

pub async fn register_page(Extension(portal): P, ctx: Ctx) -> Response {
    ctx.render(&portal, "register.html", json!({"errors": {}}))
}

#[derive(Deserialize)]
pub struct RegisterForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    display_name: String,
}

pub async fn register(
    State(state): State<AppState>,
    Extension(portal): P,
    ctx: Ctx,
    Form(form): Form<RegisterForm>,
) -> Response {
    if let Err(r) = ctx.check_csrf(&form.csrf) {
        return r;
    }
    let input = citydata_core::accounts::RegisterInput {
        email: form.email.clone(),
        password: form.password.clone(),
        display_name: Some(form.display_name.clone()).filter(|s| !s.trim().is_empty()),
    };
    match state.core.register_public(&ctx.meta, &input).await {
        Ok(_) => ctx.redirect(&format!("/login?registered=1&username={}", crate::ctx::urlencode(form.email.trim()))),
        Err(e @ CoreError::Validation(_)) => ctx.render_status(
            &portal,
            StatusCode::BAD_REQUEST,
            "register.html",
            json!({"errors": ctx.field_errors(&e), "email": form.email, "display_name": form.display_name}),
        ),
        Err(e) => ctx.core_error(&portal, e),
    }
}

/// The embedded stylesheet (name carries its hash: cached for a year) and logo.
pub async fn asset(Extension(portal): P, Path(file): Path<String>, headers: HeaderMap) -> Response {
    if file == portal.css_path.trim_start_matches("/static/") {
        if headers.get(header::IF_NONE_MATCH).and_then(|v| v.to_str().ok()) == Some(portal.css_etag.as_str()) {
            return StatusCode::NOT_MODIFIED.into_response();
        }
        return (
            [
                (header::CONTENT_TYPE, "text/css; charset=utf-8"),
                (header::CACHE_CONTROL, "public, max-age=31536000, immutable"),
                (header::ETAG, portal.css_etag.as_str()),
            ],
            portal.css(),
        )
            .into_response();
    }
    if file == "logo.svg" {
        return (
            [(header::CONTENT_TYPE, "image/svg+xml"), (header::CACHE_CONTROL, "public, max-age=86400")],
            crate::render::LOGO_SVG,
        )
            .into_response();
    }
    StatusCode::NOT_FOUND.into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_cover_every_code_and_tell_share_from_open_in_english() {
        for lang in [Lang::Zh, Lang::En] {
            let l = labels(lang);
            for v in vocab::ShareType::ALL {
                assert!(l["share"][v.as_str()].is_string(), "{lang:?} share {v}");
            }
            for v in vocab::OpenType::ALL {
                assert!(l["open"][v.as_str()].is_string(), "{lang:?} open {v}");
            }
            assert_ne!(l["share"]["unconditional"], l["open"]["unconditional"], "{lang:?}");
        }
    }
}
