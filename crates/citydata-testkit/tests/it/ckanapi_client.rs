//! The `ckanapi` client from PyPI, unchanged, against a real server: it calls CKAN's
//! unversioned `/api/action/...` paths, and its errors must map onto CKAN's error types.
//! `.ci/run` makes a virtual environment with ckanapi and sets `CITYDATA_PYTHON`; under
//! `CI=true` a missing client fails the test instead of skipping it.

use citydata_core::demo::generate::{Register, generate_listing};
use citydata_testkit::spawn_app;
use serde_json::Value;

const SCRIPT: &str = r#"
import json, sys
import ckanapi
ckan = ckanapi.RemoteCKAN(sys.argv[1], user_agent="citydata-test")
out = {}
s = ckan.action.package_search(q="企业", rows=5)
out["search_count"] = s["count"]
out["search_names"] = [p["name"] for p in s["results"]]
p = ckan.action.package_show(id=s["results"][0]["name"])
out["show_title"] = p["title"]
out["show_resources"] = len(p["resources"])
out["orgs"] = ckan.action.organization_list()
d = ckan.action.datastore_search(resource_id="102/000001", limit=7)
out["ds_records"] = len(d["records"])
out["ds_total"] = d["total"]
out["ds_fields"] = [f["id"] for f in d["fields"]]
# Follow _links.next as a client does: every parameter of the query must come back, so the
# pages together are exactly the one-call answer of the same query.
from urllib.parse import urlparse, parse_qsl
query = dict(resource_id="102/000001", filters={"qx": ["海陵区", "高港区"]}, sort="qymc desc",
             fields=["tyshxydm", "qymc", "zczb"], limit=3)
page = ckan.action.datastore_search(**query)
paged = []
while page["records"]:
    paged += page["records"]
    page = ckan.action.datastore_search(**dict(parse_qsl(urlparse(page["_links"]["next"]).query)))
whole = ckan.action.datastore_search(**dict(query, limit=1000))
out["paged_n"] = len(paged)
out["whole_n"] = len(whole["records"])
out["paged_same"] = [(r["tyshxydm"], r["qymc"], r["zczb"]) for r in paged] == [
    (r["tyshxydm"], r["qymc"], r["zczb"]) for r in whole["records"]]
out["paged_keys"] = sorted(paged[0].keys()) if paged else []
out["zczb_type"] = type(paged[0]["zczb"]).__name__ if paged else None
try:
    ckan.action.datastore_search(resource_id="101/000001")
    out["denied"] = "no error"
except ckanapi.NotAuthorized as e:
    out["denied"] = "NotAuthorized"
except ckanapi.NotFound as e:
    out["denied"] = "NotFound"
try:
    ckan.action.package_show(id="no-such-dataset")
    out["missing"] = "no error"
except ckanapi.NotFound:
    out["missing"] = "NotFound"
print(json.dumps(out, ensure_ascii=False))
"#;

#[tokio::test]
async fn the_pypi_ckanapi_client_works_unchanged() {
    let Some(py) = citydata_testkit::python_with("ckanapi") else { return };
    let app = spawn_app().await;
    let scj = app.login("scjgj-steward").await;
    let mut ent = Vec::new();
    generate_listing(Register::Enterprise, 40, 0.0, 21, false, &mut ent).unwrap();
    let r = scj.post(app.url("/api/v1/resources/102%2F000001/data")).body(ent).send().await.unwrap();
    assert_eq!(r.status(), 201);
    let address = app.address.clone();
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(py).args(["-c", SCRIPT, &address]).output().expect("run python")
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "ckanapi failed: {stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    let v: Value = serde_json::from_str(stdout.trim()).unwrap_or_else(|_| panic!("not JSON: {stdout}"));
    assert!(v["search_count"].as_u64().unwrap() >= 1, "{v}");
    assert!(v["show_resources"].as_u64().unwrap() >= 1, "{v}");
    assert!(v["orgs"].as_array().unwrap().iter().any(|o| o == "scjgj"), "{v}");
    assert_eq!(v["ds_records"], 7, "{v}");
    assert_eq!(v["ds_total"], 40, "{v}");
    assert!(v["ds_fields"].as_array().unwrap().iter().any(|f| f == "qymc"), "{v}");
    // The anonymous client may not read the government-only population register.
    assert!(v["denied"] == "NotAuthorized" || v["denied"] == "NotFound", "{v}");
    assert_eq!(v["missing"], "NotFound", "{v}");
    // Following `_links.next` pages through exactly the query's rows (filters, sort, fields kept).
    assert!(v["whole_n"].as_u64().unwrap() >= 4, "more than one page: {v}");
    assert_eq!(v["paged_n"], v["whole_n"], "{v}");
    assert_eq!(v["paged_same"], true, "{v}");
    assert_eq!(v["paged_keys"], serde_json::json!(["qymc", "tyshxydm", "zczb"]), "{v}");
    assert_eq!(v["zczb_type"], "str", "decimals arrive as exact strings: {v}");
}
