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
use oxrdf::vocab::xsd;
use oxrdf::{Literal, NamedNode, NamedNodeRef, Term, Triple};
use oxttl::TurtleSerializer;
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::HashMap;

/// Datasets per catalog page.
pub const PAGE_SIZE: usize = 100;

mod files;

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

/// The downloads of `r`: the table formats, and GeoJSON when it has a spatial item.
fn distributions_of(r: &Resource) -> Vec<(&'static str, &'static str, &'static str)> {
    let mut d = DISTRIBUTIONS.to_vec();
    if r.content.items.iter().any(|i| i.data_type.is_spatial()) {
        d.push(("geojson", "GEOJSON", "application/geo+json"));
    }
    d
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

/// The vocabularies the Turtle documents abbreviate.
const PREFIXES: &[(&str, &str)] = &[
    ("dcat", "http://www.w3.org/ns/dcat#"),
    ("dct", "http://purl.org/dc/terms/"),
    ("foaf", "http://xmlns.com/foaf/0.1/"),
    ("xsd", "http://www.w3.org/2001/XMLSchema#"),
    ("skos", "http://www.w3.org/2004/02/skos/core#"),
    ("hydra", "http://www.w3.org/ns/hydra/core#"),
];
const RDF_TYPE: &str = "http://www.w3.org/1999/02/22-rdf-syntax-ns#type";

/// An IRI node. Links are built from validated codes and slugs; a character an IRI may not
/// hold (which only a strange `Host` could bring) is percent-encoded first.
fn node(s: &str) -> NamedNode {
    NamedNode::new(s).unwrap_or_else(|_| {
        let mut out = String::new();
        for c in s.chars() {
            match c {
                '<' | '>' | '"' | '{' | '}' | '|' | '^' | '`' | '\\' | ' ' => {
                    out.push_str(&format!("%{:02X}", c as u32))
                }
                c if (c as u32) < 0x20 => out.push_str(&format!("%{:02X}", c as u32)),
                c => out.push(c),
            }
        }
        NamedNode::new(out).unwrap_or_else(|_| NamedNode::new_unchecked("urn:invalid"))
    })
}

/// The triples of a Turtle document, written by oxttl's serializer (escaping, prefixes and
/// grouping by subject are its business).
#[derive(Default)]
struct Graph(Vec<Triple>);

impl Graph {
    fn add(&mut self, s: &str, p: &str, o: impl Into<Term>) {
        self.0.push(Triple::new(node(s), node(p), o));
    }
    fn a(&mut self, s: &str, class: &str) {
        self.add(s, RDF_TYPE, node(class));
    }
    fn iri(&mut self, s: &str, p: &str, o: &str) {
        self.add(s, p, node(o));
    }
    fn zh(&mut self, s: &str, p: &str, text: &str) {
        self.lang(s, p, text, "zh");
    }
    fn lang(&mut self, s: &str, p: &str, text: &str, tag: &str) {
        self.add(s, p, Literal::new_language_tagged_literal_unchecked(text, tag));
    }
    fn typed(&mut self, s: &str, p: &str, value: &str, datatype: NamedNodeRef<'_>) {
        self.add(s, p, Literal::new_typed_literal(value, datatype));
    }
    fn turtle(&self) -> String {
        let mut ser = TurtleSerializer::new();
        for (prefix, ns) in PREFIXES {
            ser = ser.with_prefix(*prefix, *ns).expect("the prefixes are valid IRIs");
        }
        let mut w = ser.for_writer(Vec::new());
        for t in &self.0 {
            // Writing to memory cannot fail.
            let _ = w.serialize_triple(t);
        }
        String::from_utf8(w.finish().unwrap_or_default()).unwrap_or_default()
    }
}

const DCAT: &str = "http://www.w3.org/ns/dcat#";
const DCT: &str = "http://purl.org/dc/terms/";
const FOAF: &str = "http://xmlns.com/foaf/0.1/";
const SKOS: &str = "http://www.w3.org/2004/02/skos/core#";
const HYDRA: &str = "http://www.w3.org/ns/hydra/core#";

fn dcat(t: &str) -> String {
    format!("{DCAT}{t}")
}
fn dct(t: &str) -> String {
    format!("{DCT}{t}")
}

fn dataset_ttl(g: &mut Graph, l: &Links, r: &Resource) {
    let c = &r.content;
    let ds = l.dataset(r);
    g.a(&ds, &dcat("Dataset"));
    g.add(&ds, &dct("identifier"), Literal::new_simple_literal(c.code.as_str()));
    g.zh(&ds, &dct("title"), &c.name);
    g.zh(&ds, &dct("description"), &c.summary);
    g.iri(&ds, &dct("publisher"), &l.agent(c.provider.as_str()));
    g.iri(&ds, &dcat("theme"), &l.theme(&c.classification.theme));
    for t in &c.tags {
        g.zh(&ds, &dcat("keyword"), t);
    }
    g.iri(&ds, &dct("accrualPeriodicity"), &format!("{FREQ}{}", c.update_cycle.eu_frequency()));
    for region in &c.regions {
        g.iri(&ds, &dct("spatial"), &l.region(region.as_str()));
    }
    if let Some(d) = c.publish_date {
        g.typed(&ds, &dct("issued"), &d.to_string(), xsd::DATE);
    }
    g.typed(&ds, &dct("modified"), &r.updated_at.format("%Y-%m-%dT%H:%M:%SZ").to_string(), xsd::DATE_TIME);
    g.iri(&ds, &dct("language"), LANG_ZHO);
    if let Some(lic) = &c.license {
        g.zh(&ds, &dct("rights"), lic);
    }
    if let Some(cond) = &c.open.conditions {
        g.zh(&ds, &dct("accessRights"), cond);
    }
    g.iri(&ds, &dcat("landingPage"), &l.landing(r));
    for (ext, _, _) in distributions_of(r) {
        g.iri(&ds, &dcat("distribution"), &l.distribution(r, ext));
    }
    for (ext, ft, mt) in distributions_of(r) {
        let d = l.distribution(r, ext);
        g.a(&d, &dcat("Distribution"));
        g.zh(&d, &dct("title"), &format!("{}（{ft}）", c.name));
        g.iri(&d, &dcat("accessURL"), &l.landing(r));
        g.iri(&d, &dcat("downloadURL"), &l.download(r, ext));
        g.iri(&d, &dct("format"), &format!("{FILE_TYPE}{ft}"));
        g.iri(&d, &dcat("mediaType"), &format!("https://www.iana.org/assignments/media-types/{mt}"));
    }
}

fn agent_ttl(g: &mut Graph, l: &Links, code: &str, name: &str) {
    let a = l.agent(code);
    g.a(&a, &format!("{FOAF}Agent"));
    g.zh(&a, &format!("{FOAF}name"), name);
}

fn agents_and_themes_ttl(g: &mut Graph, l: &Links, rs: &[Resource], names: &HashMap<String, String>) {
    let mut providers: Vec<&str> = rs.iter().map(|r| r.content.provider.as_str()).collect();
    providers.sort();
    providers.dedup();
    for p in providers {
        agent_ttl(g, l, p, names.get(p).map(String::as_str).unwrap_or(p));
    }
    let mut themes: Vec<&str> = rs.iter().map(|r| r.content.classification.theme.as_str()).collect();
    themes.sort();
    themes.dedup();
    for t in themes {
        if let Some(th) = vocab::theme(t) {
            let c = l.theme(t);
            g.a(&c, &format!("{SKOS}Concept"));
            g.zh(&c, &format!("{SKOS}prefLabel"), th.name);
            g.lang(&c, &format!("{SKOS}prefLabel"), th.name_en, "en");
            g.iri(&c, &format!("{SKOS}inScheme"), &format!("{}/themes", l.base));
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
        "dcat:distribution": distributions_of(r).iter().map(|(ext, _, _)| json!({"@id": l.distribution(r, ext)})).collect::<Vec<_>>(),
    })];
    for (ext, ft, mt) in distributions_of(r) {
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
    let mut g = Graph::default();
    let cat = l.catalog();
    g.a(&cat, &dcat("Catalog"));
    g.zh(&cat, &dct("title"), "城市公共数据开放目录");
    g.lang(&cat, &dct("title"), "City open data catalog", "en");
    g.zh(&cat, &dct("description"), "由 citydata 发布的政务数据开放目录（开放目录）");
    g.iri(&cat, &dct("publisher"), &l.agent("dsjzx"));
    g.iri(&cat, &format!("{FOAF}homepage"), &format!("{base}/"));
    g.iri(&cat, &dct("language"), LANG_ZHO);
    g.iri(&cat, &dcat("themeTaxonomy"), &format!("{base}/themes"));
    for r in &slice {
        g.iri(&cat, &dcat("dataset"), &l.dataset(r));
    }
    let this = format!("{base}/catalog.ttl?page={page}");
    g.a(&this, &format!("{HYDRA}PartialCollectionView"));
    g.typed(&this, &format!("{HYDRA}totalItems"), &all.len().to_string(), xsd::INTEGER);
    g.iri(&this, &format!("{HYDRA}first"), &format!("{base}/catalog.ttl?page=1"));
    if page > 1 {
        g.iri(&this, &format!("{HYDRA}previous"), &format!("{base}/catalog.ttl?page={}", page - 1));
    }
    if page < pages {
        g.iri(&this, &format!("{HYDRA}next"), &format!("{base}/catalog.ttl?page={}", page + 1));
    }
    g.iri(&this, &format!("{HYDRA}last"), &format!("{base}/catalog.ttl?page={pages}"));
    if !slice.iter().any(|r| r.content.provider.as_str() == "dsjzx") {
        agent_ttl(&mut g, &l, "dsjzx", names.get("dsjzx").map(String::as_str).unwrap_or("大数据管理中心"));
    }
    for r in &slice {
        dataset_ttl(&mut g, &l, r);
        files::files_ttl(&mut g, &l, r, &files::public_files(&state, r).await?);
    }
    agents_and_themes_ttl(&mut g, &l, &slice, &names);
    Ok(respond(g.turtle(), "text/turtle; charset=utf-8"))
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
        let mut nodes = dataset_jsonld(&l, r);
        files::files_jsonld(&l, r, &files::public_files(&state, r).await?, &mut nodes);
        graph.extend(nodes);
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
            let mut g = Graph::default();
            dataset_ttl(&mut g, &l, &r);
            files::files_ttl(&mut g, &l, &r, &files::public_files(&state, &r).await?);
            agents_and_themes_ttl(&mut g, &l, std::slice::from_ref(&r), &names);
            Ok(respond(g.turtle(), "text/turtle; charset=utf-8"))
        }
        "jsonld" => {
            let mut graph = dataset_jsonld(&l, &r);
            files::files_jsonld(&l, &r, &files::public_files(&state, &r).await?, &mut graph);
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
    use super::*;

    #[test]
    fn literals_and_iris_are_escaped_by_the_serializer() {
        let mut g = Graph::default();
        g.zh("http://x/a b<c>", &dct("title"), "a\"b\\c\nd");
        let ttl = g.turtle();
        assert!(ttl.contains("<http://x/a%20b%3Cc%3E>"), "{ttl}");
        assert!(ttl.contains(r#""a\"b\\c\nd"@zh"#), "{ttl}");
        assert!(ttl.contains("@prefix dct: <http://purl.org/dc/terms/>"), "{ttl}");
    }
}
