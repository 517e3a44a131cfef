//! The dataset page's charts: each is one grouped read through the gate (numbers one more for
//! their range), never a filtered count per class; the class widths (`bucket`) of the API are
//! exact for the provider and suppress small classes for the public like any group.

use crate::support::audit_entries;
use citydata_core::demo::generate::{Register, generate_listing};
use citydata_testkit::{TestApp, assert_error, new_client, spawn_app};
use serde_json::Value;

const ROWS: u64 = 300;

async fn load_enterprises(app: &TestApp) {
    let scjgj = app.login("scjgj-steward").await;
    let mut body = Vec::new();
    generate_listing(Register::Enterprise, ROWS, 0.0, 3, false, &mut body).unwrap();
    let r = scjgj.post(app.url("/api/v1/resources/102%2F000001/data")).body(body).send().await.unwrap();
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
}

#[tokio::test]
async fn a_dataset_pages_charts_take_a_bounded_number_of_gated_reads() {
    let app = spawn_app().await;
    load_enterprises(&app).await;
    let v: Value =
        new_client().get(app.url("/api/v1/resources/102%2F000001")).send().await.unwrap().json().await.unwrap();
    let slug = v["slug"].as_str().unwrap().to_string();
    let steward = app.login("scjgj-steward").await;
    let before = audit_entries(&app, "data.aggregate").await.len();
    let html = steward.get(app.url(&format!("/datasets/{slug}"))).send().await.unwrap().text().await.unwrap();
    let charts = html.matches("<svg class=\"chart\"").count();
    assert_eq!(charts, 3, "two text columns and the registered capital");
    let reads = audit_entries(&app, "data.aggregate").await.len() - before;
    // A histogram is its range and then its classes (2 reads, not 1 + one per class); each
    // text column tried is one read (a name or an address has too many values to chart and is
    // skipped after its read).
    assert!(reads <= 6, "{reads} gated reads for {charts} charts");
}

/// A second view of the page at the same table version takes its charts from the node's
/// chart cache (still audited, marked `cached`); another caller's decision is answered anew
/// (the public's small groups are suppressed, the provider's are not), and so is every view
/// after a commit. The API's own `aggregate` never answers from the cache.
#[tokio::test]
async fn charts_are_kept_per_table_version_and_decision() {
    let app = spawn_app().await;
    load_enterprises(&app).await;
    let v: Value =
        new_client().get(app.url("/api/v1/resources/102%2F000001")).send().await.unwrap().json().await.unwrap();
    let slug = v["slug"].as_str().unwrap().to_string();
    let page = app.url(&format!("/datasets/{slug}"));
    let steward = app.login("scjgj-steward").await;
    // (fresh, cached) aggregate reads audited since `since`.
    let reads = |since: usize| {
        let app = &app;
        async move {
            let all = audit_entries(app, "data.aggregate").await;
            let new = &all[..all.len() - since];
            let cached = new.iter().filter(|e| e["details"]["cached"] == true).count();
            (new.len() - cached, cached)
        }
    };
    let n0 = audit_entries(&app, "data.aggregate").await.len();
    let first = steward.get(page.clone()).send().await.unwrap().text().await.unwrap();
    let (fresh, cached) = reads(n0).await;
    assert!(fresh >= 3 && cached == 0, "the first view reads: {fresh} fresh, {cached} cached");
    let n1 = n0 + fresh;
    let second = steward.get(page.clone()).send().await.unwrap().text().await.unwrap();
    let (fresh2, cached2) = reads(n1).await;
    assert_eq!((fresh2, cached2), (0, fresh), "the second view is answered from the cache, each read audited");
    let charts = |html: &str| {
        html.split("<svg class=\"chart\"")
            .skip(1)
            .map(|s| s.split("</svg>").next().unwrap_or("").to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(charts(&first), charts(&second), "the same charts");
    assert_eq!(charts(&first).len(), 3);

    // The public's decision differs (small groups suppressed): its own reads, not the steward's.
    let n2 = n1 + cached2;
    let public = new_client().get(page.clone()).send().await.unwrap().text().await.unwrap();
    let (fresh3, cached3) = reads(n2).await;
    assert!(fresh3 >= 1 && cached3 == 0, "the public's first view: {fresh3} fresh, {cached3} cached");
    assert!(public.contains("<svg class=\"chart\""));

    // A commit: the next view reads the new version.
    let n3 = n2 + fresh3;
    let scjgj = app.login("scjgj-steward").await;
    let mut body = Vec::new();
    generate_listing(Register::Enterprise, ROWS / 2, 0.0, 5, false, &mut body).unwrap();
    let r = scjgj.post(app.url("/api/v1/resources/102%2F000001/data?mode=replace")).body(body).send().await.unwrap();
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
    steward.get(page.clone()).send().await.unwrap().text().await.unwrap();
    let (fresh4, cached4) = reads(n3).await;
    assert!(fresh4 >= 3 && cached4 == 0, "after a commit: {fresh4} fresh, {cached4} cached");

    // The API's aggregate is computed each time.
    let n4 = n3 + fresh4;
    let url = app.url("/api/v1/resources/102%2F000001/aggregate?group_by=注册资本万元&bucket=10000");
    for _ in 0..2 {
        assert_eq!(steward.get(url.clone()).send().await.unwrap().status(), 200);
    }
    assert_eq!(reads(n4).await, (2, 0));
}

#[tokio::test]
async fn numeric_classes_are_exact_for_the_provider_and_small_ones_suppressed_for_the_public() {
    let app = spawn_app().await;
    load_enterprises(&app).await;
    let steward = app.login("scjgj-steward").await;
    let url = |q: &str| app.url(&format!("/api/v1/resources/102%2F000001/aggregate?group_by=注册资本万元&{q}"));
    let v: Value = steward.get(url("bucket=10000")).send().await.unwrap().json().await.unwrap();
    let rows = v["rows"].as_array().unwrap();
    let item = v["group_by"][0].as_str().unwrap();
    assert!(rows.len() >= 3 && rows.len() <= 10, "{v}");
    let mut total = 0;
    for r in rows {
        let lower = r[item].as_f64().unwrap();
        assert!(lower % 10_000.0 == 0.0 && lower >= 0.0, "{r}");
        total += r["count"].as_u64().unwrap();
    }
    assert_eq!(total, ROWS, "every row in exactly one class");

    // Classes narrower than the values' spacing are a group by value: the public sees only
    // classes of at least the threshold, the rest counted as suppressed.
    let v: Value = new_client().get(url("bucket=0.001")).send().await.unwrap().json().await.unwrap();
    let k = v["min_group_size"].as_u64().expect("a threshold for the public");
    assert!(v["rows"].as_array().unwrap().iter().all(|r| r["count"].as_u64().unwrap() >= k), "{v}");
    assert!(v["suppressed_groups"].as_u64().unwrap() > 0, "{v}");

    for bad in ["bucket=-5", "bucket=0", "bucket=NaN", "bucket=week"] {
        let e = assert_error(steward.get(url(bad)).send().await.unwrap(), 400, "validation_failed").await;
        assert!(e.to_string().contains("bucket"), "{bad}: {e}");
    }
}

/// A group limit (the portal's charts ask for at most 40) refuses a grouping by a column of
/// many values, for the provider and the public alike, and lets a small one through with the
/// same answer as without it; the public's small groups are still counted as suppressed.
#[tokio::test]
async fn a_group_limit_refuses_many_groups_and_changes_nothing_below_it() {
    use citydata_core::reads::AggregateParams;
    let app = spawn_app().await;
    load_enterprises(&app).await;
    let core = &app.core;
    let meta = citydata_core::RequestMeta::default();
    let steward = core.cli_principal("scjgj-steward").await.unwrap();
    let v: Value =
        new_client().get(app.url("/api/v1/resources/102%2F000001")).send().await.unwrap().json().await.unwrap();
    let items: Vec<String> =
        v["items"].as_array().unwrap().iter().map(|i| i["name"].as_str().unwrap().to_string()).collect();
    let by = |item: &str, max: Option<usize>| AggregateParams {
        group_by: Some(item.to_string()),
        max_groups: max,
        ..Default::default()
    };
    // The key (统一社会信用代码) has one group per row: 300 > 40.
    let key = v["items"].as_array().unwrap().iter().find(|i| i["key"] == true).unwrap()["name"].as_str().unwrap();
    let all = core.aggregate(&meta, Some(&steward), "102/000001", &by(key, None)).await.unwrap();
    assert_eq!(all.rows.len() as u64, ROWS);
    for who in [Some(&steward), None] {
        let e = core.aggregate(&meta, who, "102/000001", &by(key, Some(40))).await.unwrap_err();
        assert_eq!(e.code(), "too_many_groups", "{e}");
        assert!(e.to_string().contains("group_by") || e.to_string().contains("分组"), "{e}");
    }
    // At most 40 groups: the same answer as without a limit, for both audiences.
    let mut checked = 0;
    for item in &items {
        let Ok(unlimited) = core.aggregate(&meta, None, "102/000001", &by(item, None)).await else { continue };
        let total = unlimited.rows.len() as u64 + unlimited.suppressed_groups;
        if total == 0 || total > 40 {
            continue;
        }
        for who in [Some(&steward), None] {
            let a = core.aggregate(&meta, who, "102/000001", &by(item, None)).await.unwrap();
            let b = core.aggregate(&meta, who, "102/000001", &by(item, Some(40))).await.unwrap();
            assert_eq!(a.rows, b.rows, "{item}");
            assert_eq!(a.suppressed_groups, b.suppressed_groups, "{item}");
        }
        checked += 1;
    }
    assert!(checked >= 1, "a column of at most 40 values among {items:?}");
}

/// Over HTTP an aggregate answers at most 10,000 groups unless it asks otherwise
/// (`max_groups`, 1–100000): a grouping by the key is refused naming `group_by` when it asks
/// for fewer groups than rows, answered whole when it allows them, and a limit out of range
/// is refused naming `max_groups`.
#[tokio::test]
async fn http_aggregates_have_a_group_limit() {
    let app = spawn_app().await;
    load_enterprises(&app).await;
    let steward = app.login("scjgj-steward").await;
    let v: Value =
        new_client().get(app.url("/api/v1/resources/102%2F000001")).send().await.unwrap().json().await.unwrap();
    let key = v["items"].as_array().unwrap().iter().find(|i| i["key"] == true).unwrap()["name"].as_str().unwrap();
    let url = |q: &str| app.url(&format!("/api/v1/resources/102%2F000001/aggregate?group_by={key}{q}"));
    let e = assert_error(steward.get(url("&max_groups=299")).send().await.unwrap(), 400, "too_many_groups").await;
    assert!(e.to_string().contains("group_by"), "{e}");
    let all: Value = steward.get(url("&max_groups=300")).send().await.unwrap().json().await.unwrap();
    assert_eq!(all["rows"].as_array().map(Vec::len), Some(ROWS as usize), "{all}");
    let default: Value = steward.get(url("")).send().await.unwrap().json().await.unwrap();
    assert_eq!(default["rows"], all["rows"], "300 groups are within the default 10,000");
    for bad in ["&max_groups=0", "&max_groups=100001", "&max_groups=-1", "&max_groups=x"] {
        let r = steward.get(url(bad)).send().await.unwrap();
        assert_eq!(r.status(), 400, "{bad}");
        let body = r.text().await.unwrap();
        assert!(body.contains("max_groups"), "{bad}: {body}");
    }
}
