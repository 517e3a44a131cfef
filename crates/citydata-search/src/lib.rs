//! citydata-search: the catalog's full-text index (tantivy, Chinese tokenized by jieba) with
//! facets, filters and the catalog visibility rules applied inside the query.
//!
//! The index is a cache of the metadata store: it can always be rebuilt from it. Each node has
//! its own index directory and records the last catalog change sequence it has applied
//! ([`CatalogIndex::applied_seq`]) so that it can catch up with changes made by other nodes or
//! by the command line. This crate knows no database and no HTTP.
#![forbid(unsafe_code)]

pub mod limits;

use citydata_domain::resource::Resource;
use citydata_domain::vocab::{OpenType, ResourceState};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use tantivy::collector::{Count, FacetCollector, TopDocs};
use tantivy::query::{AllQuery, BooleanQuery, Occur, Query, QueryParser, TermQuery};
use tantivy::schema::{
    FAST, Facet, FacetOptions, Field, INDEXED, IndexRecordOption, STORED, STRING, Schema, TextFieldIndexing,
    TextOptions, Value,
};
use tantivy::snippet::SnippetGenerator;
use tantivy::tokenizer::{LowerCaser, TextAnalyzer};
use tantivy::{Index, IndexReader, IndexWriter, Order, ReloadPolicy, TantivyDocument, Term, doc};
use uuid::Uuid;

#[derive(Debug, thiserror::Error)]
pub enum SearchError {
    #[error("search index error: {0}")]
    Index(#[from] tantivy::TantivyError),
    #[error("search index directory: {0}")]
    Io(#[from] std::io::Error),
    #[error("search index: {0}")]
    Other(String),
}

pub type Result<T> = std::result::Result<T, SearchError>;

/// The facet dimensions, in the order they are reported.
pub const FACETS: &[&str] = &["theme", "provider", "class", "share", "open", "format", "cycle", "region"];

const TOKENIZER: &str = "jieba";

#[derive(Clone, Copy)]
struct Fields {
    id: Field,
    code: Field,
    slug: Field,
    name: Field,
    summary: Field,
    tags: Field,
    items: Field,
    provider_name: Field,
    provider: Field,
    state: Field,
    open: Field,
    facets: Field,
    updated: Field,
    stored: Field,
}

fn schema() -> (Schema, Fields) {
    let mut b = Schema::builder();
    let text = |stored: bool| {
        let o = TextOptions::default().set_indexing_options(
            TextFieldIndexing::default()
                .set_tokenizer(TOKENIZER)
                .set_index_option(IndexRecordOption::WithFreqsAndPositions),
        );
        if stored { o.set_stored() } else { o }
    };
    let fields = Fields {
        id: b.add_text_field("id", STRING | STORED),
        code: b.add_text_field("code", STRING | STORED),
        slug: b.add_text_field("slug", STRING),
        name: b.add_text_field("name", text(true)),
        summary: b.add_text_field("summary", text(true)),
        tags: b.add_text_field("tags", text(false)),
        items: b.add_text_field("items", text(false)),
        provider_name: b.add_text_field("provider_name", text(false)),
        provider: b.add_text_field("provider", STRING),
        state: b.add_text_field("state", STRING),
        open: b.add_text_field("open", STRING),
        facets: b.add_facet_field("facets", FacetOptions::default()),
        updated: b.add_i64_field("updated", INDEXED | FAST),
        stored: b.add_text_field("hit", STORED),
    };
    (b.build(), fields)
}

fn register_tokenizer(index: &Index) {
    let analyzer = TextAnalyzer::builder(tantivy_jieba::JiebaTokenizer::new()).filter(LowerCaser).build();
    index.tokenizers().register(TOKENIZER, analyzer);
}

pub use citydata_domain::resource::Audience;

/// Exact-match filters; each set one narrows the result.
#[derive(Debug, Clone, Default)]
pub struct Filters {
    pub theme: Option<String>,
    pub provider: Option<String>,
    pub class: Option<String>,
    pub share: Option<String>,
    pub open: Option<String>,
    pub format: Option<String>,
    pub cycle: Option<String>,
    pub region: Option<String>,
    pub state: Option<String>,
    /// Only resources updated at or after this time (for harvesters).
    pub updated_since: Option<chrono::DateTime<chrono::Utc>>,
    /// Only resources updated before this time.
    pub updated_before: Option<chrono::DateTime<chrono::Utc>>,
}

impl Filters {
    fn pairs(&self) -> Vec<(&'static str, &str)> {
        let mut v = Vec::new();
        for (k, val) in [
            ("theme", &self.theme),
            ("provider", &self.provider),
            ("class", &self.class),
            ("share", &self.share),
            ("open", &self.open),
            ("format", &self.format),
            ("cycle", &self.cycle),
            ("region", &self.region),
            ("state", &self.state),
        ] {
            if let Some(x) = val.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
                v.push((k, x));
            }
        }
        v
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Sort {
    /// Best match first; newest first when there is no text.
    #[default]
    Relevance,
    /// Most recently updated first.
    Updated,
}

#[derive(Debug, Clone, Default)]
pub struct SearchQuery {
    pub text: String,
    pub filters: Filters,
    pub offset: usize,
    pub limit: usize,
    pub sort: Sort,
}

/// What a hit carries, stored in the index so that search answers without the database.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct HitData {
    pub id: Uuid,
    pub code: String,
    pub slug: String,
    pub name: String,
    pub provider: String,
    pub provider_name: String,
    pub theme: String,
    pub class: String,
    pub share: String,
    pub open: String,
    pub format: String,
    pub cycle: String,
    pub state: String,
    pub updated_at: String,
}

#[derive(Debug, Clone, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Hit {
    #[serde(flatten)]
    pub data: HitData,
    pub score: f32,
    /// HTML with the matched words in `<b>`; escaped otherwise.
    pub highlight: String,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct SearchResults {
    pub total: usize,
    pub hits: Vec<Hit>,
    /// Per dimension, `(value, count)` pairs over all matches, largest first.
    pub facets: BTreeMap<String, Vec<(String, u64)>>,
}

/// The catalog index.
pub struct CatalogIndex {
    index: Index,
    reader: IndexReader,
    writer: Mutex<IndexWriter>,
    f: Fields,
    dir: Option<PathBuf>,
}

const SEQ_FILE: &str = "applied_seq";

impl CatalogIndex {
    /// Open the index in `dir`, creating it when missing and recreating it when damaged.
    /// Returns the index and whether it is new (and so must be filled from the store).
    pub fn open(dir: &Path) -> Result<(Self, bool)> {
        std::fs::create_dir_all(dir)?;
        let (schema, f) = schema();
        let has_meta = dir.join("meta.json").exists();
        let opened = if has_meta {
            match Index::open_in_dir(dir) {
                Ok(i) if i.schema() == schema => Some(i),
                Ok(_) => {
                    tracing::warn!("search index schema changed; rebuilding");
                    None
                }
                Err(e) => {
                    tracing::warn!(error = %e, "search index damaged; rebuilding");
                    None
                }
            }
        } else {
            None
        };
        let (index, fresh) = match opened {
            Some(i) => (i, false),
            None => {
                for entry in std::fs::read_dir(dir)? {
                    let p = entry?.path();
                    if p.is_dir() { std::fs::remove_dir_all(&p)? } else { std::fs::remove_file(&p)? }
                }
                (Index::create_in_dir(dir, schema)?, true)
            }
        };
        let me = Self::from_index(index, f, Some(dir.to_path_buf()))?;
        // A damaged segment may only show when read: probe once.
        if !fresh && me.reader.searcher().search(&AllQuery, &Count).is_err() {
            drop(me);
            std::fs::remove_dir_all(dir)?;
            return Self::open(dir);
        }
        Ok((me, fresh))
    }

    /// An index in memory (tests, tools).
    pub fn in_memory() -> Result<Self> {
        let (schema, f) = schema();
        Self::from_index(Index::create_in_ram(schema), f, None)
    }

    fn from_index(index: Index, f: Fields, dir: Option<PathBuf>) -> Result<Self> {
        register_tokenizer(&index);
        let writer = index.writer_with_num_threads(1, 32_000_000)?;
        let reader = index.reader_builder().reload_policy(ReloadPolicy::Manual).try_into()?;
        Ok(Self { index, reader, writer: Mutex::new(writer), f, dir })
    }

    /// The last catalog change sequence number applied to this index (0 when unknown).
    pub fn applied_seq(&self) -> i64 {
        self.dir
            .as_ref()
            .and_then(|d| std::fs::read_to_string(d.join(SEQ_FILE)).ok())
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(0)
    }

    pub fn set_applied_seq(&self, seq: i64) -> Result<()> {
        if let Some(d) = &self.dir {
            let tmp = d.join(format!("{SEQ_FILE}.tmp"));
            std::fs::write(&tmp, seq.to_string())?;
            std::fs::rename(tmp, d.join(SEQ_FILE))?;
        }
        Ok(())
    }

    fn document(&self, r: &Resource, provider_name: &str) -> TantivyDocument {
        let c = &r.content;
        let f = &self.f;
        let hit = HitData {
            id: r.id,
            code: c.code.to_string(),
            slug: c.slug.as_str().to_string(),
            name: c.name.clone(),
            provider: c.provider.to_string(),
            provider_name: provider_name.to_string(),
            theme: c.classification.theme.clone(),
            class: c.classification.class.as_str().to_string(),
            share: c.share.kind.as_str().to_string(),
            open: c.open.kind.as_str().to_string(),
            format: c.format.category.as_str().to_string(),
            cycle: c.update_cycle.as_str().to_string(),
            state: r.state.as_str().to_string(),
            updated_at: r.updated_at.to_rfc3339(),
        };
        let mut d = doc!(
            f.id => r.id.to_string(),
            f.code => c.code.to_string(),
            f.slug => c.slug.as_str(),
            f.name => c.name.as_str(),
            f.summary => c.summary.as_str(),
            f.provider_name => provider_name,
            f.provider => c.provider.as_str(),
            f.state => r.state.as_str(),
            f.open => c.open.kind.as_str(),
            f.updated => r.updated_at.timestamp_micros(),
            f.stored => serde_json::to_string(&hit).unwrap_or_default(),
        );
        for t in &c.tags {
            d.add_text(f.tags, t);
        }
        for i in &c.items {
            d.add_text(f.items, &i.title);
            d.add_text(f.items, i.name.as_str());
        }
        for (dim, v) in [
            ("theme", hit.theme.as_str()),
            ("provider", hit.provider.as_str()),
            ("class", hit.class.as_str()),
            ("share", hit.share.as_str()),
            ("open", hit.open.as_str()),
            ("format", hit.format.as_str()),
            ("cycle", hit.cycle.as_str()),
            ("state", hit.state.as_str()),
        ] {
            d.add_facet(f.facets, Facet::from_path([dim, v]));
        }
        for region in &c.regions {
            d.add_facet(f.facets, Facet::from_path(["region", region.as_str()]));
        }
        d
    }

    fn commit(&self, w: &mut IndexWriter) -> Result<()> {
        w.commit()?;
        self.reader.reload()?;
        Ok(())
    }

    /// Add or replace one resource and make it searchable at once.
    pub fn upsert(&self, r: &Resource, provider_name: &str) -> Result<()> {
        self.upsert_many(std::iter::once((r, provider_name)))
    }

    pub fn upsert_many<'a>(&self, rs: impl IntoIterator<Item = (&'a Resource, &'a str)>) -> Result<()> {
        let mut w = self.writer.lock().map_err(|_| SearchError::Other("writer lock poisoned".into()))?;
        for (r, pn) in rs {
            w.delete_term(Term::from_field_text(self.f.id, &r.id.to_string()));
            w.add_document(self.document(r, pn))?;
        }
        self.commit(&mut w)
    }

    pub fn delete(&self, id: Uuid) -> Result<()> {
        let mut w = self.writer.lock().map_err(|_| SearchError::Other("writer lock poisoned".into()))?;
        w.delete_term(Term::from_field_text(self.f.id, &id.to_string()));
        self.commit(&mut w)
    }

    /// Remove everything (before a rebuild).
    pub fn clear(&self) -> Result<()> {
        let mut w = self.writer.lock().map_err(|_| SearchError::Other("writer lock poisoned".into()))?;
        w.delete_all_documents()?;
        self.commit(&mut w)
    }

    pub fn num_docs(&self) -> u64 {
        self.reader.searcher().num_docs()
    }

    fn term(&self, field: Field, v: &str) -> Box<dyn Query> {
        Box::new(TermQuery::new(Term::from_field_text(field, v), IndexRecordOption::Basic))
    }

    fn facet(&self, dim: &str, v: &str) -> Box<dyn Query> {
        Box::new(TermQuery::new(Term::from_facet(self.f.facets, &Facet::from_path([dim, v])), IndexRecordOption::Basic))
    }

    fn scope_query(&self, scope: &Audience) -> Option<Box<dyn Query>> {
        let published = self.term(self.f.state, ResourceState::Published.as_str());
        match scope {
            Audience::Platform => None,
            Audience::Public => Some(Box::new(BooleanQuery::new(vec![
                (Occur::Must, published),
                (Occur::MustNot, self.term(self.f.open, OpenType::None.as_str())),
            ]))),
            Audience::Government { departments } => {
                let mut any: Vec<(Occur, Box<dyn Query>)> = vec![(Occur::Should, published)];
                for d in departments {
                    any.push((Occur::Should, self.term(self.f.provider, d.as_str())));
                }
                Some(Box::new(BooleanQuery::new(any)))
            }
        }
    }

    /// Search within `scope`: full text, filters, facets and highlights.
    pub fn search(&self, q: &SearchQuery, scope: &Audience) -> Result<SearchResults> {
        let searcher = self.reader.searcher();
        let f = &self.f;
        let text = q.text.trim();
        let mut parser = QueryParser::for_index(&self.index, vec![f.name, f.summary, f.tags, f.items, f.provider_name]);
        parser.set_conjunction_by_default();
        parser.set_field_boost(f.name, 4.0);
        parser.set_field_boost(f.tags, 2.0);
        parser.set_field_boost(f.items, 1.5);
        let text_query: Option<Box<dyn Query>> = if text.is_empty() {
            None
        } else if let Some(exact) = self.exact_code(text) {
            Some(exact)
        } else {
            Some(parser.parse_query_lenient(text).0)
        };
        let mut clauses: Vec<(Occur, Box<dyn Query>)> = Vec::new();
        match &text_query {
            Some(t) => clauses.push((Occur::Must, t.box_clone())),
            None => clauses.push((Occur::Must, Box::new(AllQuery))),
        }
        if let Some(s) = self.scope_query(scope) {
            clauses.push((Occur::Must, s));
        }
        for (dim, v) in q.filters.pairs() {
            clauses.push((Occur::Must, self.facet(dim, v)));
        }
        if q.filters.updated_since.is_some() || q.filters.updated_before.is_some() {
            use std::ops::Bound;
            let lower = match q.filters.updated_since {
                Some(t) => Bound::Included(Term::from_field_i64(f.updated, t.timestamp_micros())),
                None => Bound::Unbounded,
            };
            let upper = match q.filters.updated_before {
                Some(t) => Bound::Excluded(Term::from_field_i64(f.updated, t.timestamp_micros())),
                None => Bound::Unbounded,
            };
            clauses.push((Occur::Must, Box::new(tantivy::query::RangeQuery::new(lower, upper))));
        }
        let query = BooleanQuery::new(clauses);

        let limit = q.limit.clamp(1, 1000);
        let mut facet_collector = FacetCollector::for_field("facets");
        for dim in FACETS {
            facet_collector.add_facet(Facet::from_path([*dim]));
        }
        let by_score = text_query.is_some() && q.sort == Sort::Relevance;
        let (total, facet_counts, docs) = if by_score {
            let top = TopDocs::with_limit(limit).and_offset(q.offset).order_by_score();
            let (total, facets, docs) = searcher.search(&query, &(Count, facet_collector, top))?;
            (total, facets, docs)
        } else {
            let top =
                TopDocs::with_limit(limit).and_offset(q.offset).order_by_fast_field::<i64>("updated", Order::Desc);
            let (total, facets, docs) = searcher.search(&query, &(Count, facet_collector, top))?;
            (total, facets, docs.into_iter().map(|(_, a)| (0.0, a)).collect::<Vec<_>>())
        };

        let snippets = match &text_query {
            Some(t) => {
                let mut name = SnippetGenerator::create(&searcher, t.as_ref(), f.name)?;
                name.set_max_num_chars(120);
                let mut summary = SnippetGenerator::create(&searcher, t.as_ref(), f.summary)?;
                summary.set_max_num_chars(160);
                Some((name, summary))
            }
            None => None,
        };
        let mut hits = Vec::with_capacity(docs.len());
        for (score, addr) in docs {
            let d: TantivyDocument = searcher.doc(addr)?;
            let Some(data) =
                d.get_first(f.stored).and_then(|v| v.as_str()).and_then(|s| serde_json::from_str::<HitData>(s).ok())
            else {
                continue;
            };
            let highlight = match &snippets {
                Some((ng, sg)) => {
                    let n = ng.snippet_from_doc(&d);
                    let s = sg.snippet_from_doc(&d);
                    if !s.highlighted().is_empty() && n.highlighted().is_empty() { s.to_html() } else { n.to_html() }
                }
                None => String::new(),
            };
            let highlight = if highlight.is_empty() { html_escape(&data.name) } else { highlight };
            hits.push(Hit { data, score, highlight });
        }
        let mut facets = BTreeMap::new();
        for dim in FACETS {
            let mut vals: Vec<(String, u64)> = facet_counts
                .get(Facet::from_path([*dim]))
                .map(|(facet, n)| (facet.to_path().last().map(|s| s.to_string()).unwrap_or_default(), n))
                .collect();
            vals.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
            facets.insert(dim.to_string(), vals);
        }
        Ok(SearchResults { total, hits, facets })
    }

    /// A query that looks like a resource code matches that code exactly.
    fn exact_code(&self, text: &str) -> Option<Box<dyn Query>> {
        citydata_domain::resource::ResourceCode::parse(text).ok().map(|c| self.term(self.f.code, c.as_str()))
    }
}

fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests;
