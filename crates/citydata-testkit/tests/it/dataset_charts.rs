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
