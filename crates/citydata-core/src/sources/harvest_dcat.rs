//! DCAT-AP harvest: a catalog in Turtle, RDF/XML or JSON-LD (oxigraph's parsers), paged with
//! Hydra (`hydra:next` followed until there is none). Each `dcat:Dataset` becomes a CKAN-like
//! package (title and description preferring the `zh` literal, keywords, licence, landing page,
//! `dct:modified`, the distributions' formats, the update cycle from the EU frequency, the theme
//! when its IRI ends in one of ours) and then takes the CKAN harvest's path: one stable
//! identifier (the dataset's IRI, or its `dct:identifier` for a blank node), created, updated,
//! withdrawn and republished the same way.

use super::Secrets;
use super::harvest::{Remote, remote_of};
use super::pg::until_abort;
use super::runner::AbortSignal;
use crate::Core;
use citydata_domain::vocab::UpdateCycle;
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

const RDF_TYPE: &str = "http://www.w3.org/1999/02/22-rdf-syntax-ns#type";
const DCAT: &str = "http://www.w3.org/ns/dcat#";
const DCT: &str = "http://purl.org/dc/terms/";
const FOAF_NAME: &str = "http://xmlns.com/foaf/0.1/name";
const HYDRA_NEXT: [&str; 2] = ["http://www.w3.org/ns/hydra/core#next", "http://www.w3.org/ns/hydra/core#nextPage"];
/// The most pages a harvest follows.
const MAX_PAGES: usize = 1000;

/// An object of a statement: a node (its key, and its IRI when named) or a literal.
#[derive(Debug, Clone)]
enum Obj {
    Node(String, Option<String>),
    Lit(String, Option<String>),
}

/// The statements of a document, by subject key (`<iri>` or `_:b0`).
type Graph = BTreeMap<String, Vec<(String, Obj)>>;

/// The document's syntax, by media type, else by the address's ending.
fn syntax(content_type: Option<&str>, url: &url::Url) -> Option<&'static str> {
    let ct = content_type.unwrap_or("").split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    match ct.as_str() {
        "text/turtle" | "application/x-turtle" => return Some("turtle"),
        "application/rdf+xml" => return Some("rdfxml"),
        "application/ld+json" => return Some("jsonld"),
        _ => {}
    }
    let path = url.path().to_ascii_lowercase();
    if path.ends_with(".ttl") {
        Some("turtle")
    } else if path.ends_with(".rdf") || path.ends_with(".xml") {
        Some("rdfxml")
    } else if path.ends_with(".jsonld") || path.ends_with(".json") || ct == "application/json" {
        Some("jsonld")
    } else {
        None
    }
}

fn term(o: oxrdf::Term) -> Option<Obj> {
    Some(match o {
        oxrdf::Term::NamedNode(n) => Obj::Node(format!("<{}>", n.as_str()), Some(n.into_string())),
        oxrdf::Term::BlankNode(b) => Obj::Node(b.to_string(), None),
        oxrdf::Term::Literal(l) => {
            let lang = l.language().map(str::to_string);
            Obj::Lit(l.value().to_string(), lang)
        }
        #[allow(unreachable_patterns)]
        _ => return None,
    })
}

fn subject_key(s: &oxrdf::NamedOrBlankNode) -> String {
    match s {
        oxrdf::NamedOrBlankNode::NamedNode(n) => format!("<{}>", n.as_str()),
        oxrdf::NamedOrBlankNode::BlankNode(b) => b.to_string(),
    }
}

/// Parse one page into statements; a syntax error names its position.
fn parse(body: &[u8], kind: &str, base: &url::Url) -> Result<Graph, String> {
    let bad = |e: String| format!("DCAT 文档无法解析：{e} / the DCAT document does not parse: {e}");
    let mut g = Graph::new();
    let mut add = |s: String, p: String, o: oxrdf::Term| {
        if let Some(o) = term(o) {
            g.entry(s).or_default().push((p, o));
        }
    };
    match kind {
        "turtle" => {
            let parser = oxttl::TurtleParser::new().with_base_iri(base.as_str()).map_err(|e| bad(e.to_string()))?;
            for t in parser.for_slice(body) {
                let t = t.map_err(|e| bad(e.to_string()))?;
                add(subject_key(&t.subject), t.predicate.into_string(), t.object);
            }
        }
        "rdfxml" => {
            let parser = oxrdfxml::RdfXmlParser::new().with_base_iri(base.as_str()).map_err(|e| bad(e.to_string()))?;
            for t in parser.for_slice(body) {
                let t = t.map_err(|e| bad(e.to_string()))?;
                add(subject_key(&t.subject), t.predicate.into_string(), t.object);
            }
        }
        _ => {
            let parser = oxjsonld::JsonLdParser::new().with_base_iri(base.as_str()).map_err(|e| bad(e.to_string()))?;
            for q in parser.for_slice(body) {
                let q = q.map_err(|e| bad(e.to_string()))?;
                add(subject_key(&q.subject), q.predicate.into_string(), q.object);
            }
        }
    }
    Ok(g)
}

/// The values of `p` on `s`.
fn values<'a>(g: &'a Graph, s: &str, p: &str) -> impl Iterator<Item = &'a Obj> {
    g.get(s).into_iter().flatten().filter(move |(q, _)| q == p).map(|(_, o)| o)
}

/// The literal of `p` on `s`, preferring Chinese, then no language, then any.
fn literal(g: &Graph, s: &str, p: &str) -> Option<String> {
    let lits: Vec<(&String, &Option<String>)> = values(g, s, p)
        .filter_map(|o| match o {
            Obj::Lit(v, l) if !v.trim().is_empty() => Some((v, l)),
            _ => None,
        })
        .collect();
    let pick = lits
        .iter()
        .find(|(_, l)| l.as_deref().is_some_and(|l| l.to_ascii_lowercase().starts_with("zh")))
        .or_else(|| lits.iter().find(|(_, l)| l.is_none()))
        .or_else(|| lits.first());
    pick.map(|(v, _)| v.trim().to_string())
}

fn iri(g: &Graph, s: &str, p: &str) -> Option<String> {
    values(g, s, p).find_map(|o| match o {
        Obj::Node(_, Some(i)) => Some(i.clone()),
        Obj::Lit(v, _) if v.starts_with("http") => Some(v.clone()),
        _ => None,
    })
}

/// The Hydra link to the next page, if the page has one.
fn next_page(g: &Graph) -> Option<String> {
    g.values().flatten().find_map(|(p, o)| match o {
        Obj::Node(_, Some(i)) if HYDRA_NEXT.contains(&p.as_str()) => Some(i.clone()),
        _ => None,
    })
}

/// Every `dcat:Dataset` of a page as a CKAN-like package.
fn datasets(g: &Graph) -> Result<Vec<Remote>, String> {
    let dataset = format!("{DCAT}Dataset");
    let mut out = Vec::new();
    for (s, stmts) in g {
        if !stmts.iter().any(|(p, o)| p == RDF_TYPE && matches!(o, Obj::Node(_, Some(i)) if *i == dataset)) {
            continue;
        }
        let subject_iri = s.strip_prefix('<').and_then(|x| x.strip_suffix('>')).map(str::to_string);
        let Some(id) = subject_iri.clone().or_else(|| literal(g, s, &format!("{DCT}identifier"))) else {
            return Err(
                "有数据集既无 IRI 也无 dct:identifier / a dataset has neither an IRI nor a dct:identifier".into()
            );
        };
        let Some(title) = literal(g, s, &format!("{DCT}title")) else {
            return Err(format!("数据集 {id} 没有 dct:title / dataset {id} has no dct:title"));
        };
        let keywords: Vec<Value> = {
            let mut seen = HashSet::new();
            values(g, s, &format!("{DCAT}keyword"))
                .filter_map(|o| match o {
                    Obj::Lit(v, _) if seen.insert(v.clone()) => Some(json!({"name": v})),
                    _ => None,
                })
                .collect()
        };
        let formats: Vec<Value> = values(g, s, &format!("{DCAT}distribution"))
            .filter_map(|o| match o {
                Obj::Node(k, _) => iri(g, k, &format!("{DCT}format"))
                    .or_else(|| iri(g, k, &format!("{DCAT}mediaType")))
                    .or_else(|| literal(g, k, &format!("{DCT}format"))),
                _ => None,
            })
            .map(|f| json!({"format": f.rsplit(['/', '#']).next().unwrap_or(&f).to_string()}))
            .collect();
        let mut extras = Vec::new();
        if let Some(freq) = iri(g, s, &format!("{DCT}accrualPeriodicity"))
            && let Some(c) = UpdateCycle::ALL.iter().find(|c| freq.ends_with(&format!("/{}", c.eu_frequency())))
        {
            extras.push(json!({"key": "update_cycle", "value": c.as_str()}));
        }
        if let Some(theme) = iri(g, s, &format!("{DCAT}theme"))
            && let Some(th) = citydata_domain::vocab::theme(theme.rsplit('/').next().unwrap_or(""))
        {
            let class = if th.basic { "basic" } else { "departmental" };
            extras.push(json!({"key": "classification_class", "value": class}));
            extras.push(json!({"key": "classification_theme", "value": th.code}));
        }
        // The publisher, as CKAN's organization: its IRI (or name) and its foaf:name.
        let publisher = values(g, s, &format!("{DCT}publisher")).next().map(|o| match o {
            Obj::Node(k, i) => {
                let name = literal(g, k, FOAF_NAME);
                json!({"name": i.clone().or(name.clone()), "title": name})
            }
            Obj::Lit(v, _) => json!({"name": v, "title": v}),
        });
        let package = json!({
            "id": id,
            "title": title,
            "organization": publisher,
            "notes": literal(g, s, &format!("{DCT}description")),
            "tags": keywords,
            "license_id": iri(g, s, &format!("{DCT}license")).or_else(|| literal(g, s, &format!("{DCT}rights"))),
            "url": iri(g, s, &format!("{DCAT}landingPage")).or(subject_iri),
            "metadata_modified": literal(g, s, &format!("{DCT}modified")),
            "resources": formats,
            "extras": extras,
        });
        out.push(remote_of(package)?);
    }
    Ok(out)
}

impl Core {
    /// Every dataset of a DCAT catalog (all Hydra pages, or an error and nothing).
    pub(super) async fn dcat_datasets(
        &self,
        first: &url::Url,
        abort: &Arc<AbortSignal>,
    ) -> Result<Vec<Remote>, String> {
        let client = self.source_http_client()?;
        let mut budget = super::http::MAX_BYTES;
        let mut all: Vec<Remote> = Vec::new();
        let mut seen_ids = HashSet::new();
        let mut seen_pages = HashSet::new();
        let mut url = first.clone();
        for _ in 0..MAX_PAGES {
            if !seen_pages.insert(url.to_string()) {
                break;
            }
            let fetched =
                until_abort(abort, self.fetch_page(&client, &url, &Secrets::default(), None, &mut budget)).await?;
            let Some((headers, body)) = fetched else {
                return Err("DCAT 来源回答 304 / the DCAT source answered 304".into());
            };
            let ct = headers.get(reqwest::header::CONTENT_TYPE).and_then(|v| v.to_str().ok());
            let kind = syntax(ct, &url).ok_or_else(|| {
                format!(
                    "回答不是 DCAT 文档（{}） / the answer is not a DCAT document (Turtle, RDF/XML or JSON-LD)",
                    ct.unwrap_or("?")
                )
            })?;
            let g = parse(&body, kind, &url)?;
            for r in datasets(&g)? {
                if seen_ids.insert(r.id.clone()) {
                    all.push(r);
                }
            }
            match next_page(&g) {
                Some(n) => {
                    url = url.join(&n).map_err(|_| format!("下一页链接无效：{n} / the next link is not valid: {n}"))?;
                }
                None => return Ok(all),
            }
        }
        Err(format!("分页超过 {MAX_PAGES} 页 / more than {MAX_PAGES} pages"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TTL: &str = r#"
@prefix dcat: <http://www.w3.org/ns/dcat#> . @prefix dct: <http://purl.org/dc/terms/> .
@prefix hydra: <http://www.w3.org/ns/hydra/core#> .
<https://x.example/ds/1> a dcat:Dataset ; dct:title "Bus stops"@en, "公交站点"@zh ;
  dct:description "全市公交站点"@zh ; dcat:keyword "交通"@zh ;
  dct:modified "2026-11-01T00:00:00Z" ;
  dct:accrualPeriodicity <http://publications.europa.eu/resource/authority/frequency/MONTHLY> ;
  dcat:theme <https://x.example/themes/transport> ;
  dcat:distribution [ dct:format <http://publications.europa.eu/resource/authority/file-type/CSV> ] ;
  dct:publisher <https://x.example/org/jtj> .
<https://x.example/org/jtj> <http://xmlns.com/foaf/0.1/name> "市交通运输局"@zh .
<https://x.example/catalog.ttl?page=1> hydra:next <https://x.example/catalog.ttl?page=2> .
"#;

    #[test]
    fn a_turtle_page_gives_its_datasets_and_its_next_link() {
        let base = url::Url::parse("https://x.example/catalog.ttl").unwrap();
        let g = parse(TTL.as_bytes(), "turtle", &base).unwrap();
        assert_eq!(next_page(&g).as_deref(), Some("https://x.example/catalog.ttl?page=2"));
        let ds = datasets(&g).unwrap();
        assert_eq!(ds.len(), 1);
        let i = super::super::harvest::package_input(&ds[0].package, "jtj", "urban");
        assert_eq!(i.name.as_deref(), Some("公交站点"), "the Chinese title wins");
        assert_eq!(i.update_cycle.as_deref(), Some("monthly"));
        assert_eq!(i.classification.unwrap().theme.as_deref(), Some("transport"));
        assert_eq!(i.format.unwrap().kind.as_deref(), Some("csv"));
        assert_eq!(ds[0].modified.as_deref(), Some("2026-11-01T00:00:00Z"));
        // The publisher, as the organization a harvest maps to a department.
        assert_eq!(ds[0].package["organization"]["name"], "https://x.example/org/jtj");
        assert_eq!(ds[0].package["organization"]["title"], "市交通运输局");
    }

    #[test]
    fn broken_documents_are_refused_with_the_reason() {
        let base = url::Url::parse("https://x.example/c.ttl").unwrap();
        let e = parse(b"<a> <b> ", "turtle", &base).unwrap_err();
        assert!(e.contains("无法解析"), "{e}");
        let g = parse(
            b"@prefix dcat: <http://www.w3.org/ns/dcat#> . <https://x.example/d> a dcat:Dataset .",
            "turtle",
            &base,
        )
        .unwrap();
        assert!(datasets(&g).unwrap_err().contains("dct:title"));
        assert_eq!(syntax(Some("text/html"), &url::Url::parse("https://x.example/").unwrap()), None);
        assert_eq!(syntax(None, &url::Url::parse("https://x.example/catalog.jsonld?page=2").unwrap()), Some("jsonld"));
    }
}
