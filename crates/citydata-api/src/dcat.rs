//! DCAT-AP 3 for the open catalog (开放目录): `/catalog.ttl`, `/catalog.jsonld` (paged with
//! `?page=`), and `/dataset/{slug}.ttl|.jsonld`, for data portal aggregators.

use crate::{ApiError, AppState};
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use citydata_domain::resource::Resource;
use citydata_domain::vocab;
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::HashMap;

/// Datasets per catalog page.
pub const PAGE_SIZE: usize = 100;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/catalog.ttl", get(catalog_ttl))
        .route("/catalog.jsonld", get(catalog_jsonld))
        .route("/dataset/{file}", get(dataset))
}

#[derive(Deserialize)]
struct PageQuery {
    page: Option<String>,
}

const FREQ: &str = "http://publications.europa.eu/resource/authority/frequency/";
const FILE_TYPE: &str = "http://publications.europa.eu/resource/authority/file-type/";
const LANG_ZHO: &str = "http://publications.europa.eu/resource/authority/language/ZHO";

/// One download of a dataset: (extension, EU file type, media type).
const DISTRIBUTIONS: &[(&str, &str, &str)] = &[
    ("csv", "CSV", "text/csv"),
    ("json", "JSON", "application/json"),
    ("xlsx", "XLSX", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
];

/// A Turtle string literal.
fn lit(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// An IRI in angle brackets, with the characters Turtle forbids percent-encoded.
fn iri(s: &str) -> String {
    let mut out = String::from("<");
    for c in s.chars() {
        match c {
            '<' | '>' | '"' | '{' | '}' | '|' | '^' | '`' | '\\' | ' ' => out.push_str(&format!("%{:02X}", c as u32)),
            c if (c as u32) < 0x20 => out.push_str(&format!("%{:02X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('>');
    out
}

struct Links<'a> {
    base: &'a str,
}

impl Links<'_> {
    fn catalog(&self) -> String {
        format!("{}/catalog", self.base)
    }
    fn dataset(&self, r: &Resource) -> String {
        format!("{}/dataset/{}", self.base, r.content.slug.as_str())
    }
    fn landing(&self, r: &Resource) -> String {
        format!("{}/datasets/{}", self.base, r.content.slug.as_str())
    }
    fn agent(&self, code: &str) -> String {
        format!("{}/departments/{code}", self.base)
    }
    fn theme(&self, code: &str) -> String {
        format!("{}/themes/{code}", self.base)
    }
    fn region(&self, code: &str) -> String {
        format!("{}/regions/{code}", self.base)
    }
    fn download(&self, r: &Resource, ext: &str) -> String {
        format!("{}/api/v1/resources/{}/export?format={ext}", self.base, r.id)
    }
    fn distribution(&self, r: &Resource, ext: &str) -> String {
        format!("{}/distribution/{ext}", self.dataset(r))
    }
}

const PREFIXES: &str = "@prefix dcat: <http://www.w3.org/ns/dcat#> .\n\
@prefix dct: <http://purl.org/dc/terms/> .\n\
@prefix foaf: <http://xmlns.com/foaf/0.1/> .\n\
@prefix xsd: <http://www.w3.org/2001/XMLSchema#> .\n\
@prefix skos: <http://www.w3.org/2004/02/skos/core#> .\n\
@prefix hydra: <http://www.w3.org/ns/hydra/core#> .\n\n";

fn dataset_ttl(out: &mut String, l: &Links, r: &Resource) {
    let c = &r.content;
    out.push_str(&format!("{} a dcat:Dataset ;\n", iri(&l.dataset(r))));
    out.push_str(&format!("    dct:identifier {} ;\n", lit(c.code.as_str())));
    out.push_str(&format!("    dct:title {}@zh ;\n", lit(&c.name)));
    out.push_str(&format!("    dct:description {}@zh ;\n", lit(&c.summary)));
    out.push_str(&format!("    dct:publisher {} ;\n", iri(&l.agent(c.provider.as_str()))));
    out.push_str(&format!("    dcat:theme {} ;\n", iri(&l.theme(&c.classification.theme))));
    for t in &c.tags {
        out.push_str(&format!("    dcat:keyword {}@zh ;\n", lit(t)));
    }
    out.push_str(&format!(
        "    dct:accrualPeriodicity {} ;\n",
        iri(&format!("{FREQ}{}", c.update_cycle.eu_frequency()))
    ));
    for g in &c.regions {
        out.push_str(&format!("    dct:spatial {} ;\n", iri(&l.region(g.as_str()))));
    }
    if let Some(d) = c.publish_date {
        out.push_str(&format!("    dct:issued {}^^xsd:date ;\n", lit(&d.to_string())));
    }
    out.push_str(&format!(
        "    dct:modified {}^^xsd:dateTime ;\n",
        lit(&r.updated_at.format("%Y-%m-%dT%H:%M:%SZ").to_string())
    ));
    out.push_str(&format!("    dct:language {} ;\n", iri(LANG_ZHO)));
    if let Some(lic) = &c.license {
        out.push_str(&format!("    dct:rights {}@zh ;\n", lit(lic)));
    }
    if let Some(cond) = &c.open.conditions {
        out.push_str(&format!("    dct:accessRights {}@zh ;\n", lit(cond)));
    }
    out.push_str(&format!("    dcat:landingPage {} ;\n", iri(&l.landing(r))));
    let dists: Vec<String> = DISTRIBUTIONS.iter().map(|(ext, _, _)| iri(&l.distribution(r, ext))).collect();
    out.push_str(&format!("    dcat:distribution {} .\n\n", dists.join(" , ")));
    for (ext, ft, mt) in DISTRIBUTIONS {
        out.push_str(&format!("{} a dcat:Distribution ;\n", iri(&l.distribution(r, ext))));
        out.push_str(&format!("    dct:title {}@zh ;\n", lit(&format!("{}（{ft}）", c.name))));
        out.push_str(&format!("    dcat:accessURL {} ;\n", iri(&l.landing(r))));
        out.push_str(&format!("    dcat:downloadURL {} ;\n", iri(&l.download(r, ext))));
        out.push_str(&format!("    dct:format {} ;\n", iri(&format!("{FILE_TYPE}{ft}"))));
        out.push_str(&format!(
            "    dcat:mediaType {} .\n\n",
            iri(&format!("https://www.iana.org/assignments/media-types/{mt}"))
        ));
    }
}

fn agents_and_themes_ttl(out: &mut String, l: &Links, rs: &[Resource], names: &HashMap<String, String>) {
    let mut providers: Vec<&str> = rs.iter().map(|r| r.content.provider.as_str()).collect();
    providers.sort();
    providers.dedup();
    for p in providers {
        out.push_str(&format!(
            "{} a foaf:Agent ;\n    foaf:name {}@zh .\n\n",
            iri(&l.agent(p)),
            lit(names.get(p).map(String::as_str).unwrap_or(p))
        ));
    }
    let mut themes: Vec<&str> = rs.iter().map(|r| r.content.classification.theme.as_str()).collect();
    themes.sort();
    themes.dedup();
    for t in themes {
        if let Some(th) = vocab::theme(t) {
            out.push_str(&format!(
                "{} a skos:Concept ;\n    skos:prefLabel {}@zh , {}@en ;\n    skos:inScheme {} .\n\n",
                iri(&l.theme(t)),
                lit(th.name),
                lit(th.name_en),
                iri(&format!("{}/themes", l.base))
            ));
        }
    }
}

fn dataset_jsonld(l: &Links, r: &Resource) -> Vec<Value> {
    let c = &r.content;
    let mut nodes = vec![json!({
        "@id": l.dataset(r),
        "@type": "dcat:Dataset",
        "dct:identifier": c.code.as_str(),
        "dct:title": {"@value": c.name, "@language": "zh"},
        "dct:description": {"@value": c.summary, "@language": "zh"},
        "dct:publisher": {"@id": l.agent(c.provider.as_str())},
        "dcat:theme": {"@id": l.theme(&c.classification.theme)},
        "dcat:keyword": c.tags.iter().map(|t| json!({"@value": t, "@language": "zh"})).collect::<Vec<_>>(),
        "dct:accrualPeriodicity": {"@id": format!("{FREQ}{}", c.update_cycle.eu_frequency())},
        "dct:spatial": c.regions.iter().map(|g| json!({"@id": l.region(g.as_str())})).collect::<Vec<_>>(),
        "dct:issued": c.publish_date.map(|d| json!({"@value": d.to_string(), "@type": "xsd:date"})),
        "dct:modified": {"@value": r.updated_at.format("%Y-%m-%dT%H:%M:%SZ").to_string(), "@type": "xsd:dateTime"},
        "dct:language": {"@id": LANG_ZHO},
        "dcat:landingPage": {"@id": l.landing(r)},
        "dcat:distribution": DISTRIBUTIONS.iter().map(|(ext, _, _)| json!({"@id": l.distribution(r, ext)})).collect::<Vec<_>>(),
    })];
    for (ext, ft, mt) in DISTRIBUTIONS {
        nodes.push(json!({
            "@id": l.distribution(r, ext),
            "@type": "dcat:Distribution",
            "dct:title": {"@value": format!("{}（{ft}）", c.name), "@language": "zh"},
            "dcat:accessURL": {"@id": l.landing(r)},
            "dcat:downloadURL": {"@id": l.download(r, ext)},
            "dct:format": {"@id": format!("{FILE_TYPE}{ft}")},
            "dcat:mediaType": {"@id": format!("https://www.iana.org/assignments/media-types/{mt}")},
        }));
    }
    nodes
}

fn context() -> Value {
    json!({
        "dcat": "http://www.w3.org/ns/dcat#",
        "dct": "http://purl.org/dc/terms/",
        "foaf": "http://xmlns.com/foaf/0.1/",
        "xsd": "http://www.w3.org/2001/XMLSchema#",
        "skos": "http://www.w3.org/2004/02/skos/core#",
        "hydra": "http://www.w3.org/ns/hydra/core#",
    })
}

fn respond(body: String, ctype: &'static str) -> Response {
    let mut resp = body.into_response();
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(ctype));
    resp
}

/// The open catalog: published resources whose open type is not `none`, in code order.
async fn open_catalog(state: &AppState) -> Result<Vec<Resource>, ApiError> {
    Ok(state.core.visible_catalog(None).await?)
}

fn page_of(q: &PageQuery, total: usize) -> Result<(usize, usize), ApiError> {
    let pages = total.div_ceil(PAGE_SIZE).max(1);
    let page = match q.page.as_deref() {
        None | Some("") => 1,
        Some(p) => p.parse::<usize>().ok().filter(|p| *p >= 1).ok_or_else(|| {
            ApiError::new(
                axum::http::StatusCode::BAD_REQUEST,
                "validation_failed",
                "page 须为正整数 / page must be a positive integer",
            )
        })?,
    };
    Ok((page, pages))
}

async fn catalog_ttl(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<PageQuery>,
) -> Result<Response, ApiError> {
    let base = state.base_url(&headers);
    let l = Links { base: &base };
    let all = open_catalog(&state).await?;
    let (page, pages) = page_of(&q, all.len())?;
    let slice: Vec<Resource> = all.iter().skip((page - 1) * PAGE_SIZE).take(PAGE_SIZE).cloned().collect();
    let names = state.core.department_names().await?;
    let mut out = String::from(PREFIXES);
    out.push_str(&format!("{} a dcat:Catalog ;\n", iri(&l.catalog())));
    out.push_str(&format!(
        "    dct:title {}@zh , {}@en ;\n",
        lit("城市公共数据开放目录"),
        lit("City open data catalog")
    ));
    out.push_str(&format!("    dct:description {}@zh ;\n", lit("由 citydata 发布的政务数据开放目录（开放目录）")));
    out.push_str(&format!("    dct:publisher {} ;\n", iri(&l.agent("dsjzx"))));
    out.push_str(&format!("    foaf:homepage {} ;\n", iri(&format!("{base}/"))));
    out.push_str(&format!("    dct:language {} ;\n", iri(LANG_ZHO)));
    out.push_str(&format!("    dcat:themeTaxonomy {}", iri(&format!("{base}/themes"))));
    if !slice.is_empty() {
        let ds: Vec<String> = slice.iter().map(|r| iri(&l.dataset(r))).collect();
        out.push_str(&format!(" ;\n    dcat:dataset {}", ds.join(" ,\n        ")));
    }
    out.push_str(" .\n\n");
    let this = format!("{base}/catalog.ttl?page={page}");
    out.push_str(&format!("{} a hydra:PartialCollectionView ;\n", iri(&this)));
    out.push_str(&format!("    hydra:totalItems {}^^xsd:integer ;\n", lit(&all.len().to_string())));
    out.push_str(&format!("    hydra:first {} ;\n", iri(&format!("{base}/catalog.ttl?page=1"))));
    if page > 1 {
        out.push_str(&format!("    hydra:previous {} ;\n", iri(&format!("{base}/catalog.ttl?page={}", page - 1))));
    }
    if page < pages {
        out.push_str(&format!("    hydra:next {} ;\n", iri(&format!("{base}/catalog.ttl?page={}", page + 1))));
    }
    out.push_str(&format!("    hydra:last {} .\n\n", iri(&format!("{base}/catalog.ttl?page={pages}"))));
    if !slice.iter().any(|r| r.content.provider.as_str() == "dsjzx") {
        let name = names.get("dsjzx").map(String::as_str).unwrap_or("大数据管理中心");
        out.push_str(&format!("{} a foaf:Agent ;\n    foaf:name {}@zh .\n\n", iri(&l.agent("dsjzx")), lit(name)));
    }
    for r in &slice {
        dataset_ttl(&mut out, &l, r);
    }
    agents_and_themes_ttl(&mut out, &l, &slice, &names);
    Ok(respond(out, "text/turtle; charset=utf-8"))
}

async fn catalog_jsonld(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<PageQuery>,
) -> Result<Response, ApiError> {
    let base = state.base_url(&headers);
    let l = Links { base: &base };
    let all = open_catalog(&state).await?;
    let (page, pages) = page_of(&q, all.len())?;
    let slice: Vec<Resource> = all.iter().skip((page - 1) * PAGE_SIZE).take(PAGE_SIZE).cloned().collect();
    let names = state.core.department_names().await?;
    let mut graph = vec![json!({
        "@id": l.catalog(),
        "@type": "dcat:Catalog",
        "dct:title": [{"@value": "城市公共数据开放目录", "@language": "zh"}, {"@value": "City open data catalog", "@language": "en"}],
        "dct:publisher": {"@id": l.agent("dsjzx")},
        "foaf:homepage": {"@id": format!("{base}/")},
        "dct:language": {"@id": LANG_ZHO},
        "dcat:dataset": slice.iter().map(|r| json!({"@id": l.dataset(r)})).collect::<Vec<_>>(),
    })];
    let mut view = json!({
        "@id": format!("{base}/catalog.jsonld?page={page}"),
        "@type": "hydra:PartialCollectionView",
        "hydra:totalItems": all.len(),
        "hydra:first": {"@id": format!("{base}/catalog.jsonld?page=1")},
        "hydra:last": {"@id": format!("{base}/catalog.jsonld?page={pages}")},
    });
    if page < pages {
        view["hydra:next"] = json!({"@id": format!("{base}/catalog.jsonld?page={}", page + 1)});
    }
    if page > 1 {
        view["hydra:previous"] = json!({"@id": format!("{base}/catalog.jsonld?page={}", page - 1)});
    }
    graph.push(view);
    for r in &slice {
        graph.extend(dataset_jsonld(&l, r));
    }
    let mut providers: Vec<&str> = slice.iter().map(|r| r.content.provider.as_str()).collect();
    providers.sort();
    providers.dedup();
    for p in providers {
        graph.push(json!({"@id": l.agent(p), "@type": "foaf:Agent", "foaf:name": {"@value": names.get(p).cloned().unwrap_or_default(), "@language": "zh"}}));
    }
    let doc = json!({"@context": context(), "@graph": graph});
    Ok(respond(serde_json::to_string_pretty(&doc).unwrap_or_default(), "application/ld+json; charset=utf-8"))
}

async fn dataset(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(file): Path<String>,
) -> Result<Response, ApiError> {
    let base = state.base_url(&headers);
    let l = Links { base: &base };
    let (slug, ext) =
        file.rsplit_once('.').ok_or_else(|| ApiError::not_found("请使用 .ttl 或 .jsonld / use .ttl or .jsonld"))?;
    // Only the open catalog is published as DCAT.
    let r = state.core.get_resource(None, slug).await?;
    let names = state.core.department_names().await?;
    match ext {
        "ttl" => {
            let mut out = String::from(PREFIXES);
            dataset_ttl(&mut out, &l, &r);
            agents_and_themes_ttl(&mut out, &l, std::slice::from_ref(&r), &names);
            Ok(respond(out, "text/turtle; charset=utf-8"))
        }
        "jsonld" => {
            let mut graph = dataset_jsonld(&l, &r);
            let p = r.content.provider.as_str();
            graph.push(json!({"@id": l.agent(p), "@type": "foaf:Agent", "foaf:name": {"@value": names.get(p).cloned().unwrap_or_default(), "@language": "zh"}}));
            let doc = json!({"@context": context(), "@graph": graph});
            Ok(respond(serde_json::to_string_pretty(&doc).unwrap_or_default(), "application/ld+json; charset=utf-8"))
        }
        _ => Err(ApiError::not_found("请使用 .ttl 或 .jsonld / use .ttl or .jsonld")),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn literals_and_iris_are_escaped() {
        assert_eq!(super::lit("a\"b\\c\nd"), "\"a\\\"b\\\\c\\nd\"");
        assert_eq!(super::iri("http://x/a b<c>"), "<http://x/a%20b%3Cc%3E>");
    }
}
