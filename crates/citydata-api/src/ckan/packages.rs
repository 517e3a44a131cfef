//! Packages (datasets), organizations, groups and `package_search` with CKAN's `fq`.

use super::*;

pub(super) async fn dataset_counts(
    core: &citydata_core::Core,
    p: Option<&Principal>,
) -> Result<HashMap<String, usize>, CkanError> {
    let mut counts = HashMap::new();
    for r in core.visible_catalog(p).await? {
        *counts.entry(r.content.provider.to_string()).or_default() += 1;
    }
    Ok(counts)
}

pub(super) fn organization(d: &citydata_domain::dept::Department, package_count: usize) -> Value {
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

pub(super) fn group(t: &vocab::Theme, package_count: usize) -> Value {
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
pub(super) fn distributions(r: &Resource, base: &str) -> Vec<Value> {
    let mut formats = vec![
        ("csv", "CSV", "text/csv"),
        ("json", "JSON", "application/json"),
        ("xlsx", "XLSX", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
    ];
    if r.content.items.iter().any(|i| i.data_type.is_spatial()) {
        formats.push(("geojson", "GeoJSON", "application/geo+json"));
    }
    formats
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
pub(super) fn fmt_time(t: DateTime<Utc>) -> String {
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
pub(super) fn dimension(field: &str) -> Option<&'static str> {
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

pub(super) fn unquote(v: &str) -> String {
    v.trim().trim_matches('"').to_string()
}

pub(super) fn parse_ckan_time(s: &str) -> Option<DateTime<Utc>> {
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
pub(super) fn apply_fq(fq: &str, filters: &mut Filters, text: &mut String) -> Result<(), CkanError> {
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

pub(super) async fn package_search(
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
                let mut pkg = package(&r, &names, base);
                super::files::add_files(&state.core, p, &r, base, &mut pkg).await?;
                results.push(pkg);
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
