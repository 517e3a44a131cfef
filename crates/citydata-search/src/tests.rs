use super::*;
use chrono::Utc;
use citydata_domain::resource::{ResourceCode, ResourceDraft, ResourceInput, Slug};
use serde_json::json;

fn resource(
    n: u32,
    name: &str,
    summary: &str,
    provider: &str,
    theme: &str,
    open: &str,
    state: ResourceState,
) -> Resource {
    let class = if ["population", "legal_entity"].contains(&theme) { "basic" } else { "thematic" };
    let input: ResourceInput = serde_json::from_value(json!({
        "name": name, "abstract": summary, "provider": provider,
        "classification": {"class": class, "theme": theme},
        "format": {"category": "database"},
        "items": [{"name": "a", "title": "字段甲"}],
        "share": {"type": "unconditional"},
        "open": {"type": open, "conditions": "须申请"},
        "update_cycle": "daily",
        "regions": ["321202"],
        "tags": ["标签"]
    }))
    .unwrap();
    let draft = ResourceDraft::parse(&input).unwrap();
    let prefix = draft.content.classification.code();
    let content = draft.complete(ResourceCode::assign(&prefix, n), Slug::parse(&format!("r{n}")).unwrap());
    Resource {
        id: Uuid::new_v4(),
        state,
        revision: 1,
        created_at: Utc::now(),
        updated_at: Utc::now() + chrono::Duration::seconds(n as i64),
        published_at: None,
        content,
    }
}

fn fixture() -> (CatalogIndex, Vec<Resource>) {
    let idx = CatalogIndex::in_memory().unwrap();
    let rs = vec![
        resource(1, "人口基础信息", "全市户籍人口的基础信息", "gaj", "population", "none", ResourceState::Published),
        resource(
            2,
            "企业登记信息",
            "市场主体登记注册信息",
            "scjgj",
            "legal_entity",
            "unconditional",
            ResourceState::Published,
        ),
        resource(
            3,
            "空气质量监测数据",
            "各监测站点的空气质量小时数据",
            "sthjj",
            "environment",
            "unconditional",
            ResourceState::Published,
        ),
        resource(4, "流动人口登记（草稿）", "流动人口登记信息", "gaj", "population", "none", ResourceState::Draft),
        resource(
            5,
            "旅游景区客流",
            "景区实时客流人口统计",
            "whlyj",
            "tourism",
            "conditional",
            ResourceState::Published,
        ),
    ];
    for r in &rs {
        idx.upsert(r, &format!("{}名称", r.content.provider)).unwrap();
    }
    (idx, rs)
}

fn q(text: &str) -> SearchQuery {
    SearchQuery { text: text.into(), limit: 20, ..Default::default() }
}

fn names(r: &SearchResults) -> Vec<&str> {
    r.hits.iter().map(|h| h.data.name.as_str()).collect()
}

#[test]
fn chinese_words_match_and_scope_applies() {
    let (idx, _) = fixture();
    let gov = Audience::Government { departments: vec![citydata_domain::dept::DeptCode::parse("wjw").unwrap()] };
    let r = idx.search(&q("人口"), &gov).unwrap();
    assert!(names(&r).contains(&"人口基础信息"), "{:?}", names(&r));
    assert!(!names(&r).iter().any(|n| n.contains("草稿")), "drafts of other departments never match");
    let r = idx.search(&q("人口"), &Audience::Public).unwrap();
    assert!(!names(&r).contains(&"人口基础信息"), "open type none is not in the open catalog");
    assert!(names(&r).contains(&"旅游景区客流"));
    let own = Audience::Government { departments: vec![citydata_domain::dept::DeptCode::parse("gaj").unwrap()] };
    assert!(names(&idx.search(&q("流动人口"), &own).unwrap()).contains(&"流动人口登记（草稿）"));
    assert_eq!(idx.search(&q("人口"), &Audience::Platform).unwrap().total, 3);
}

#[test]
fn highlights_mark_the_match_and_escape_the_rest() {
    let (idx, _) = fixture();
    let r = idx.search(&q("空气质量"), &Audience::Public).unwrap();
    assert_eq!(r.hits.len(), 1);
    assert!(r.hits[0].highlight.contains("<b>"), "{}", r.hits[0].highlight);
}

#[test]
fn facets_count_every_match_and_filters_narrow() {
    let (idx, _) = fixture();
    let all = idx.search(&q(""), &Audience::Government { departments: vec![] }).unwrap();
    assert_eq!(all.total, 4);
    let theme: BTreeMap<String, u64> = all.facets["theme"].iter().cloned().collect();
    assert_eq!(theme["population"], 1);
    assert_eq!(theme.values().sum::<u64>(), 4);
    assert_eq!(all.facets["region"], vec![("321202".to_string(), 4)]);
    let mut fq = q("");
    fq.filters.open = Some("unconditional".into());
    let r = idx.search(&fq, &Audience::Government { departments: vec![] }).unwrap();
    assert_eq!(r.total, 2);
    // Empty text sorts newest first.
    assert_eq!(names(&all)[0], "旅游景区客流");
}

#[test]
fn codes_match_exactly_and_updates_replace() {
    let (idx, mut rs) = fixture();
    let code = rs[2].content.code.to_string();
    let r = idx.search(&q(&code), &Audience::Public).unwrap();
    assert_eq!(names(&r), ["空气质量监测数据"]);
    rs[2].content.name = "水质监测数据".into();
    rs[2].content.summary = "各断面的水质数据".into();
    idx.upsert(&rs[2], "生态环境局").unwrap();
    assert_eq!(idx.search(&q("空气质量"), &Audience::Public).unwrap().total, 0);
    assert_eq!(idx.search(&q("水质"), &Audience::Public).unwrap().total, 1);
    idx.delete(rs[2].id).unwrap();
    assert_eq!(idx.search(&q("水质"), &Audience::Public).unwrap().total, 0);
    assert_eq!(idx.num_docs(), 4);
}

#[test]
fn updated_range_filters() {
    let (idx, rs) = fixture();
    let mut fq = q("");
    fq.filters.updated_since = Some(rs[2].updated_at);
    let r = idx.search(&fq, &Audience::Platform).unwrap();
    assert_eq!(r.total, 3, "resources 3, 4 and 5 were updated at or after resource 3");
    fq.filters.updated_before = Some(rs[3].updated_at);
    assert_eq!(names(&idx.search(&fq, &Audience::Platform).unwrap()), ["空气质量监测数据"]);
}

#[test]
fn odd_query_syntax_does_not_fail() {
    let (idx, _) = fixture();
    for t in ["\"人口", "人口 AND", "((", "name:", "*", "<script>"] {
        idx.search(&q(t), &Audience::Public).unwrap();
    }
}

#[test]
fn reopening_keeps_documents_and_damage_means_rebuild() {
    let dir = tempfile::tempdir().unwrap();
    let (idx, fresh) = CatalogIndex::open(dir.path()).unwrap();
    assert!(fresh);
    let r = resource(1, "人口基础信息", "x", "gaj", "population", "none", ResourceState::Published);
    idx.upsert(&r, "公安局").unwrap();
    idx.set_applied_seq(42).unwrap();
    drop(idx);
    let (idx, fresh) = CatalogIndex::open(dir.path()).unwrap();
    assert!(!fresh);
    assert_eq!(idx.num_docs(), 1);
    assert_eq!(idx.applied_seq(), 42);
    drop(idx);
    std::fs::write(dir.path().join("meta.json"), "{ not json").unwrap();
    let (idx, fresh) = CatalogIndex::open(dir.path()).unwrap();
    assert!(fresh, "a damaged index is recreated");
    assert_eq!(idx.num_docs(), 0);
    assert_eq!(idx.applied_seq(), 0);
}
