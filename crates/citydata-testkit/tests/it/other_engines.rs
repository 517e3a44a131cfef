//! Other engines on the same tables (issue #20 item 5): the provider's own analysts read a
//! resource's table directly with PyPI's `deltalake` and `polars` (the tables are plain Delta
//! Lake), from a local lake and from S3 (moto), current version and time travel. Granted readers of other
//! departments go through Delta Sharing instead (it/sharing.rs): direct reads bypass the gate,
//! so only the provider's own storage credentials can make them.

use citydata_core::demo::generate::{Register, generate_listing};
use citydata_testkit::s3::Moto;
use citydata_testkit::{SpawnOptions, TestApp, spawn_app_with};
use serde_json::Value;

const SCRIPT: &str = r##"
import json, os, sys
from deltalake import DeltaTable
import polars as pl
uri, opts = sys.argv[1], json.loads(sys.argv[2])
t = DeltaTable(uri, storage_options=opts or None)
old = DeltaTable(uri, version=0, storage_options=opts or None)
frame = pl.read_delta(uri, storage_options=opts or None)
print(json.dumps({
    "version": t.version(),
    "rows": t.to_pyarrow_table().num_rows,
    "rows_v0": old.to_pyarrow_table().num_rows,
    "columns": [f.name for f in t.schema().fields],
    "polars_rows": frame.height,
    "polars_rows_v0": pl.read_delta(uri, version=0, storage_options=opts or None).height,
    "polars_people": frame.filter(pl.col("sfzh").is_not_null()).select(pl.col("sfzh").n_unique()).item(),
}))
# Leave without the interpreter's teardown: under load deltalake's runtime threads have been
# seen to abort the process at exit ("terminate called without an active exception") after the
# answer was printed.
sys.stdout.flush()
os._exit(0)
"##;

async fn two_versions(app: &TestApp) -> String {
    let gaj = app.login("gaj-steward").await;
    let mut people = Vec::new();
    generate_listing(Register::Population, 40, 0.0, 6, false, &mut people).unwrap();
    let text = String::from_utf8(people).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    for part in [&lines[1..31], &lines[31..]] {
        let body = format!("{}\n{}\n", lines[0], part.join("\n"));
        let r = gaj.post(app.url("/api/v1/resources/101%2F000001/data")).body(body).send().await.unwrap();
        assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
    }
    let v: Value = gaj.get(app.url("/api/v1/resources/101%2F000001")).send().await.unwrap().json().await.unwrap();
    v["id"].as_str().unwrap().to_string()
}

fn read(py: &str, uri: &str, opts: &str) -> Value {
    let out = std::process::Command::new(py).args(["-c", SCRIPT, uri, opts]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

fn check(v: &Value) {
    assert_eq!(v["version"], 1, "{v}");
    assert_eq!((v["rows"].as_u64(), v["rows_v0"].as_u64()), (Some(40), Some(30)), "{v}");
    // polars on the same table: the same rows, the same time travel.
    assert_eq!((v["polars_rows"].as_u64(), v["polars_rows_v0"].as_u64()), (Some(40), Some(30)), "{v}");
    assert_eq!(v["polars_people"], 40, "{v}");
    let cols: Vec<&str> = v["columns"].as_array().unwrap().iter().map(|c| c.as_str().unwrap()).collect();
    assert!(cols.contains(&"sfzh") && cols.contains(&"qx"), "the items by name: {cols:?}");
}

#[tokio::test]
async fn python_deltalake_reads_a_local_table_directly() {
    let Some(py) = citydata_testkit::python_with("deltalake, polars") else { return };
    let app = spawn_app_with(SpawnOptions::default()).await;
    let id = two_versions(&app).await;
    let dir = app.data_dir.path().join("lake/tables").join(&id);
    let py2 = py.clone();
    let v = tokio::task::spawn_blocking(move || read(&py2, dir.to_str().unwrap(), "{}")).await.unwrap();
    check(&v);
}

#[tokio::test]
async fn python_deltalake_reads_a_table_on_s3_directly() {
    let Some(py) = citydata_testkit::python_with("deltalake, polars") else { return };
    let Some(moto) = Moto::start_or_skip("other_engines::s3") else { return };
    let lake = moto.lake().await;
    let app = spawn_app_with(SpawnOptions { s3: Some(lake.clone()), ..SpawnOptions::default() }).await;
    let id = two_versions(&app).await;
    let uri = format!("{}/tables/{id}", lake.lake_url);
    let opts = serde_json::json!({
        "AWS_ENDPOINT_URL": lake.endpoint, "AWS_ALLOW_HTTP": "true", "AWS_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "reader", "AWS_SECRET_ACCESS_KEY": "reader-secret",
    })
    .to_string();
    let v = tokio::task::spawn_blocking(move || read(&py, &uri, &opts)).await.unwrap();
    check(&v);
}
