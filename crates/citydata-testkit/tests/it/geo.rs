//! Spatial items (issue #24): `point` items declared in GCJ-02 converted to CGCS2000 at ingest
//! from a longitude/latitude column pair, bad positions quarantined, `within(bbox)` and
//! `distance` filters, the GeoJSON export, and the location mask — a grantee with `grid(500)`
//! never sees an exact position through any read path.

use citydata_testkit::{SpawnOptions, TestApp, assert_error, new_client, spawn_app, spawn_app_with};
use serde_json::{Value, json};

/// Exact CGCS2000 positions of the test's clinics (7 decimals, so the text is unmistakable).
const EXACT: [(f64, f64); 4] =
    [(119.9234567, 32.4567891), (119.9345678, 32.4678912), (120.0456789, 32.1789123), (119.8567891, 32.9345678)];

async fn clinics(app: &TestApp) -> (reqwest::Client, String) {
    let gaj = app.login("gaj-steward").await;
    let r = gaj
        .post(app.url("/api/v1/resources"))
        .json(&json!({
            "name": "社区警务室位置", "abstract": "社区警务室的名称与位置（测试）", "provider": "gaj",
            "classification": {"class": "thematic", "theme": "environment"}, "format": {"category": "database"},
            "items": [
                {"name": "mc", "title": "名称", "key": true},
                {"name": "wz", "title": "位置", "data_type": "point", "validator": "crs:gcj02"}
            ],
            "share": {"type": "conditional", "conditions": "按需申请"}, "open": {"type": "none", "conditions": "涉及警务部署"},
            "update_cycle": "monthly"
        }))
        .send()
        .await
        .unwrap();
    let status = r.status();
    let created: Value = r.json().await.unwrap();
    assert_eq!(status, 201, "{created}");
    let code = created["code"].as_str().unwrap().replace('/', "%2F");
    let p = gaj.post(app.url(&format!("/api/v1/resources/{code}/publish"))).send().await.unwrap();
    assert_eq!(p.status(), 200, "{}", p.text().await.unwrap());
    // The cells as a GCJ-02 web map gives them, in 经度/纬度 columns.
    let mut csv = String::from("名称,经度,纬度\n");
    for (i, (x, y)) in EXACT.iter().enumerate() {
        let (gx, gy) = citydata_domain::crs::wgs84_to_gcj02(*x, *y);
        csv.push_str(&format!("警务室{i},{gx:.10},{gy:.10}\n"));
    }
    csv.push_str("境外,10.5,50.1\n坏值,abc,32.1\n");
    let r = gaj.post(app.url(&format!("/api/v1/resources/{code}/data"))).body(csv).send().await.unwrap();
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
    let v: Value = r.json().await.unwrap();
    assert_eq!(
        (v["report"]["rows_committed"].as_u64(), v["report"]["rows_quarantined"].as_u64()),
        (Some(4), Some(2)),
        "{v}"
    );
    (gaj, code)
}

fn exact_texts() -> Vec<String> {
    EXACT.iter().flat_map(|(x, y)| [format!("{x}"), format!("{y}")]).collect()
}

fn wkt_point(v: &Value) -> (f64, f64) {
    let t = v.as_str().unwrap_or_else(|| panic!("not WKT: {v}"));
    let inner = t.strip_prefix("POINT (").and_then(|r| r.strip_suffix(')')).unwrap();
    let mut it = inner.split(' ').map(|s| s.parse::<f64>().unwrap());
    (it.next().unwrap(), it.next().unwrap())
}

#[tokio::test]
async fn points_convert_at_ingest_filter_by_bbox_and_distance_and_export_as_geojson() {
    let app = spawn_app().await;
    let (gaj, code) = clinics(&app).await;
    // Stored in CGCS2000: the GCJ-02 cells came back to the surveyed positions (within 1e-7°).
    let rows: Value =
        gaj.get(app.url(&format!("/api/v1/resources/{code}/rows?sort=mc"))).send().await.unwrap().json().await.unwrap();
    let got: Vec<(f64, f64)> = rows["rows"].as_array().unwrap().iter().map(|r| wkt_point(&r["wz"])).collect();
    assert_eq!(got.len(), 4, "{rows}");
    for ((x, y), (ex, ey)) in got.iter().zip(EXACT) {
        assert!((x - ex).abs() < 2e-7 && (y - ey).abs() < 2e-7, "{x},{y} vs {ex},{ey}");
    }
    // The quarantine names the rule, never the cell.
    let q: Vec<Value> =
        gaj.get(app.url(&format!("/api/v1/resources/{code}/quarantine"))).send().await.unwrap().json().await.unwrap();
    let rules: Vec<&str> = q.iter().map(|r| r["rule"].as_str().unwrap()).collect();
    assert_eq!(rules, vec!["outside_extent", "bad_point"], "{q:?}");
    assert!(!q[0]["message"].as_str().unwrap().contains("10.5"));

    // within(bbox) and distance.
    let filtered = |f: &str| {
        let url = app.url(&format!("/api/v1/resources/{code}/rows?sort=mc&filter={}", urlencoding(f)));
        let gaj = gaj.clone();
        async move {
            let r = gaj.get(url).send().await.unwrap();
            let s = r.status();
            let v: Value = r.json().await.unwrap();
            assert_eq!(s, 200, "{v}");
            v["rows"].as_array().unwrap().iter().map(|r| r["mc"].as_str().unwrap().to_string()).collect::<Vec<_>>()
        }
    };
    assert_eq!(filtered("within(wz, bbox(119.9, 32.4, 119.95, 32.5))").await, vec!["警务室0", "警务室1"]);
    assert_eq!(filtered("within(位置, bbox(119.0, 31.0, 121.0, 34.0)) AND mc <> '警务室3'").await.len(), 3);
    // 警务室0 → 警务室1 is about 1.6 km.
    assert_eq!(filtered("distance(wz, point(119.9234567, 32.4567891)) < 1000").await, vec!["警务室0"]);
    assert_eq!(filtered("distance(wz, point(119.9234567, 32.4567891)) <= 2000").await, vec!["警务室0", "警务室1"]);
    for (bad, code_) in [
        ("within(mc, bbox(1, 2, 3, 4))", "invalid_filter"),
        ("within(wz, bbox(120, 32, 119, 33))", "invalid_filter"),
        ("within(wz, '321202')", "invalid_filter"),
        ("wz = 'POINT (1 2)'", "invalid_filter"),
        ("distance(wz, point(120, 32)) > 5", "invalid_filter"),
    ] {
        let r = gaj
            .get(app.url(&format!("/api/v1/resources/{code}/rows?filter={}", urlencoding(bad))))
            .send()
            .await
            .unwrap();
        let body = assert_error(r, 400, "validation_failed").await;
        assert_eq!(body["error"]["details"]["fields"][0]["code"], code_, "{bad}: {body}");
    }

    // A GeoJSON FeatureCollection appends rows: properties by name, the geometry into the
    // point item (converted from GCJ-02 like any cell); a polygon is not a point.
    let (gx, gy) = citydata_domain::crs::wgs84_to_gcj02(119.95, 32.47);
    let fc = json!({"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"名称": "警务室9"}, "geometry": {"type": "Point", "coordinates": [gx, gy]}},
        {"type": "Feature", "properties": {"名称": "面"}, "geometry": {"type": "Polygon",
            "coordinates": [[[119.9, 32.4], [120.0, 32.4], [120.0, 32.5], [119.9, 32.4]]]}}
    ]});
    let r = gaj
        .post(app.url(&format!("/api/v1/resources/{code}/data?mode=append&format=geojson")))
        .body(fc.to_string())
        .send()
        .await
        .unwrap();
    let s = r.status();
    let v: Value = r.json().await.unwrap();
    assert_eq!(s, 201, "{v}");
    assert_eq!(
        (v["report"]["rows_committed"].as_u64(), v["report"]["rows_quarantined"].as_u64()),
        (Some(1), Some(1)),
        "{v}"
    );
    assert_eq!(filtered("within(wz, bbox(119.949, 32.469, 119.951, 32.471))").await, vec!["警务室9"]);
    let r = gaj
        .get(app.url(&format!("/api/v1/resources/{code}/rows?filter={}", urlencoding("mc = '警务室9'"))))
        .send()
        .await
        .unwrap();
    let one: Value = r.json().await.unwrap();
    let (x, y) = wkt_point(&one["rows"][0]["wz"]);
    assert!((x - 119.95).abs() < 1e-7 && (y - 32.47).abs() < 1e-7, "{x},{y}");

    // GeoJSON export.
    let r = gaj.get(app.url(&format!("/api/v1/resources/{code}/export?format=geojson&sort=mc"))).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "application/geo+json");
    let fc: Value = r.json().await.unwrap();
    assert_eq!(fc["type"], "FeatureCollection");
    let f0 = &fc["features"][0];
    assert_eq!(f0["geometry"]["type"], "Point", "{fc}");
    assert_eq!(f0["properties"], json!({"mc": "警务室0"}));
    assert!((f0["geometry"]["coordinates"][0].as_f64().unwrap() - EXACT[0].0).abs() < 2e-7);
    assert_eq!(fc["features"].as_array().unwrap().len(), 5);
    // Without a spatial item there is nothing to draw.
    let r =
        gaj.get(app.url(&format!("/api/v1/resources/{code}/export?format=geojson&fields=mc"))).send().await.unwrap();
    let body = assert_error(r, 400, "validation_failed").await;
    assert_eq!(body["error"]["details"]["fields"][0]["code"], "no_spatial_item");
    // A department without a grant gets nothing from the spatial paths either.
    let wjw = app.login("wjw-analyst").await;
    for path in ["rows?filter=within(wz,bbox(119,31,121,34))", "export?format=geojson"] {
        let r = wjw.get(app.url(&format!("/api/v1/resources/{code}/{path}"))).send().await.unwrap();
        assert_eq!(r.status(), 403, "{path}");
    }
    // Anonymous callers do not even see the entry (不予开放).
    assert_eq!(
        new_client()
            .get(app.url(&format!("/api/v1/resources/{code}/export?format=geojson")))
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
}

fn urlencoding(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// The attacker holds a grant with the location mask `grid(500)` and tries every read path
/// for the exact positions: rows, CSV/JSON/GeoJSON exports, SQL, CKAN `datastore_search`, the
/// spatial filters (bisecting a bbox would find the exact position), sorting; and the Delta
/// Sharing table when the PyPI client is installed.
#[tokio::test]
async fn a_location_masked_grantee_never_sees_an_exact_position() {
    let app = spawn_app().await;
    let (gaj, code) = clinics(&app).await;
    let plain_code = code.replace("%2F", "/");
    let r = gaj
        .post(app.url("/api/v1/grants"))
        .json(&json!({"resource_id": plain_code, "grantee": {"department": "wjw"}, "masks": {"位置": "grid(500)"},
                      "purpose": "就医可达性分析", "expires_at": "2099-01-01T00:00:00Z"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
    let wjw = app.login("wjw-analyst").await;
    let exact = exact_texts();
    let mut bodies = Vec::new();
    for path in
        ["rows?limit=100", "export?format=csv", "export?format=json", "export?format=ndjson", "export?format=geojson"]
    {
        let r = wjw.get(app.url(&format!("/api/v1/resources/{code}/{path}"))).send().await.unwrap();
        assert_eq!(r.status(), 200, "{path}");
        bodies.push((path.to_string(), r.text().await.unwrap()));
    }
    let sql = json!({"sql": format!("SELECT * FROM \"{plain_code}\"")});
    let r = wjw.post(app.url("/api/v1/sql")).json(&sql).send().await.unwrap();
    assert_eq!(r.status(), 200);
    bodies.push(("sql".into(), r.text().await.unwrap()));
    let r = wjw
        .post(app.url("/api/3/action/datastore_search"))
        .json(&json!({"resource_id": plain_code, "limit": 100}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    bodies.push(("ckan".into(), r.text().await.unwrap()));
    for (path, body) in &bodies {
        assert!(body.contains("POINT") || body.contains("Point"), "{path}: positions are there, snapped: {body}");
        for e in &exact {
            assert!(!body.contains(e.as_str()), "{path} leaks the exact {e}: {body}");
        }
    }
    // The rows say which mask applied, and the snapped point is within the cell.
    let rows: Value = serde_json::from_str(&bodies[0].1).unwrap();
    assert!(rows.to_string().contains("grid(500)"), "{rows}");
    for r in rows["rows"].as_array().unwrap() {
        let (x, y) = wkt_point(&r["wz"]);
        let near = EXACT.iter().map(|e| citydata_domain::geo::distance_m((x, y), *e)).fold(f64::MAX, f64::min);
        assert!(near < 500.0, "{x},{y}");
    }
    // Filtering or sorting on the masked position would reveal it.
    for path in [
        "rows?filter=within(wz,bbox(119.92,32.45,119.93,32.46))",
        "rows?filter=distance(wz,point(119.92,32.45))%3C10",
        "rows?sort=wz",
    ] {
        let r = wjw.get(app.url(&format!("/api/v1/resources/{code}/{path}"))).send().await.unwrap();
        assert_eq!(r.status(), 400, "{path}");
    }
    // Delta Sharing: the materialized table is the same governed read.
    if let Some(py) = citydata_testkit::python_with("delta_sharing") {
        let r = wjw.post(app.url("/api/v1/sharing/profiles")).json(&json!({"name": "geo"})).send().await.unwrap();
        assert_eq!(r.status(), 201);
        let profile: Value = r.json().await.unwrap();
        let path = std::env::temp_dir().join(format!("geo-{}.share", uuid::Uuid::new_v4()));
        std::fs::write(&path, profile.to_string()).unwrap();
        // Leaves without the interpreter's teardown, as the other Delta Sharing scripts do:
        // pyarrow's threads have aborted the process at exit ("terminate called without an
        // active exception") after the answer was printed (a CI run of stop 39).
        let script = "import os, sys, delta_sharing\nc = delta_sharing.SharingClient(sys.argv[1])\nt = c.list_all_tables()[0]\ndf = delta_sharing.load_as_pandas(sys.argv[1] + '#' + t.share + '.' + t.schema + '.' + t.name)\nprint(df.to_json(orient='records', force_ascii=False))\nsys.stdout.flush()\nos._exit(0)\n";
        let out = tokio::task::spawn_blocking(move || {
            std::process::Command::new(py).args(["-c", script, path.to_str().unwrap()]).output().unwrap()
        })
        .await
        .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        assert!(out.status.success() && text.contains("POINT"), "{text} {}", String::from_utf8_lossy(&out.stderr));
        for e in &exact {
            assert!(!text.contains(e.as_str()), "delta sharing leaks {e}: {text}");
        }
    }
}

/// The slug the boundary resource of [`districts_from_a_boundary_resource`] gets from its name
/// (the setting takes a code or a slug).
const BOUNDARY: &str = "qu-xian-xing-zheng-qu-hua-bian-jie-ce-shi";

/// `within(item, '<code>')` against the districts of the configured boundary resource: refused
/// until the resource is published and open to all, then on rows, aggregates and exports; an
/// unknown code names itself.
#[tokio::test]
async fn districts_from_a_boundary_resource() {
    let app = spawn_app_with(SpawnOptions {
        configure: Some(|s| s.boundary_resource = Some(BOUNDARY.into())),
        ..SpawnOptions::default()
    })
    .await;
    let (gaj, code) = clinics(&app).await;
    let rows = |f: &str| {
        let url = app.url(&format!("/api/v1/resources/{code}/rows?sort=mc&filter={}", urlencoding(f)));
        let gaj = gaj.clone();
        async move { gaj.get(url).send().await.unwrap() }
    };
    let names = |v: Value| -> Vec<String> {
        v["rows"].as_array().unwrap().iter().map(|r| r["mc"].as_str().unwrap().to_string()).collect()
    };
    let refused = |r: reqwest::Response, why: &'static str| async move {
        let body = assert_error(r, 400, "validation_failed").await;
        let e = &body["error"]["details"]["fields"][0];
        assert_eq!(e["code"], "invalid_filter", "{body}");
        assert!(e["message"].as_str().unwrap().contains(why), "{body}");
    };
    refused(rows("within(wz, '321202')").await, "none is configured").await;

    // The boundary resource: two districts (boxes drawn for the test), not yet open.
    let dsj = gaj.clone();
    let r = dsj
        .post(app.url("/api/v1/resources"))
        .json(&json!({
            "name": "区县行政区划边界（测试）", "abstract": "测试用的区县边界", "provider": "gaj",
            "classification": {"class": "basic", "theme": "geospatial"}, "format": {"category": "database"},
            "items": [
                {"name": "qhdm", "title": "行政区划代码", "key": true, "validator": "region_code"},
                {"name": "qhmc", "title": "区划名称"},
                {"name": "fw", "title": "范围", "data_type": "geometry"}
            ],
            "share": {"type": "unconditional"}, "open": {"type": "none", "conditions": "未审定"},
            "update_cycle": "yearly"
        }))
        .send()
        .await
        .unwrap();
    let created: Value = r.json().await.unwrap();
    assert_eq!(created["slug"], BOUNDARY, "{created}");
    let b = created["code"].as_str().unwrap().replace('/', "%2F");
    assert_eq!(dsj.post(app.url(&format!("/api/v1/resources/{b}/publish"))).send().await.unwrap().status(), 200);
    let csv = "行政区划代码,区划名称,范围\n\
               321202,海陵区,\"POLYGON ((119.90 32.43, 119.96 32.43, 119.96 32.49, 119.90 32.49, 119.90 32.43))\"\n\
               321204,姜堰区,\"POLYGON ((120.00 32.15, 120.10 32.15, 120.10 32.25, 120.00 32.25, 120.00 32.15))\"\n";
    let r = dsj.post(app.url(&format!("/api/v1/resources/{b}/data"))).body(csv).send().await.unwrap();
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
    // Shared but not open to all: a region filter would reveal its outlines, so it is refused.
    refused(rows("within(wz, '321202')").await, "none is configured").await;
    let r = dsj
        .patch(app.url(&format!("/api/v1/resources/{b}")))
        .json(&json!({"open": {"type": "unconditional"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());

    let ok = |r: reqwest::Response| async move {
        let s = r.status();
        let v: Value = r.json().await.unwrap();
        assert_eq!(s, 200, "{v}");
        v
    };
    assert_eq!(names(ok(rows("within(wz, '321202')").await).await), vec!["警务室0", "警务室1"]);
    assert_eq!(names(ok(rows("within(位置, '321204')").await).await), vec!["警务室2"]);
    // Two districts in one filter are two predicates, not one taken twice.
    assert_eq!(
        names(ok(rows("within(wz, '321202') OR within(wz, '321204')").await).await),
        vec!["警务室0", "警务室1", "警务室2"]
    );
    assert_eq!(names(ok(rows("NOT within(wz, '321202') AND mc <> '警务室2'").await).await), vec!["警务室3"]);
    refused(rows("within(wz, '321203')").await, "no region 321203").await;
    refused(rows("within(mc, '321202')").await, "not a spatial item").await;
    // Aggregates and exports take the same filter.
    let agg = gaj
        .get(app.url(&format!("/api/v1/resources/{code}/aggregate?filter={}", urlencoding("within(wz, '321202')"))))
        .send()
        .await
        .unwrap();
    let agg = ok(agg).await;
    assert!(agg.to_string().contains("\"count\":2"), "{agg}");
    // Aggregates by grid cell: a spatial group with `bucket` in metres; in 100 km cells two
    // clinics share a cell, in 10 m cells each is alone. A cell is named by its centre.
    let cells = |bucket: u32| {
        let url = app.url(&format!("/api/v1/resources/{code}/aggregate?group_by=wz&bucket={bucket}"));
        let gaj = gaj.clone();
        async move {
            let v: Value = gaj.get(url).send().await.unwrap().json().await.unwrap();
            let rows = v["rows"].as_array().unwrap_or_else(|| panic!("{v}")).clone();
            let mut counts: Vec<u64> = rows.iter().map(|r| r["count"].as_u64().unwrap()).collect();
            counts.sort();
            for r in &rows {
                assert!(r["wz"].as_str().is_some_and(|w| w.starts_with("POINT (")), "{v}");
                assert!(!exact_texts().iter().any(|t| r["wz"].as_str().unwrap().contains(t.as_str())), "{v}");
            }
            counts
        }
    };
    // The expected groups: the clinics' positions snapped by the domain's own grid.
    let expect = |m: f64| {
        let mut by = std::collections::BTreeMap::<String, u64>::new();
        for (x, y) in EXACT {
            let (cx, cy) = citydata_domain::geo::snap_to_grid(x, y, m);
            *by.entry(format!("{cx:.4},{cy:.4}")).or_default() += 1;
        }
        let mut v: Vec<u64> = by.into_values().collect();
        v.sort();
        v
    };
    assert_eq!(expect(100_000.0).len(), 3, "the 100 km grid groups two clinics together");
    assert_eq!(cells(100_000).await, expect(100_000.0));
    assert_eq!(cells(10).await, vec![1, 1, 1, 1]);
    // By district: 321202 holds two, 321204 one, 警务室3 lies outside both (a NULL group).
    let v: Value = gaj
        .get(app.url(&format!("/api/v1/resources/{code}/aggregate?group_by=wz&bucket=region")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut by: Vec<(String, u64)> = v["rows"]
        .as_array()
        .unwrap_or_else(|| panic!("{v}"))
        .iter()
        .map(|r| (r["wz"].as_str().unwrap_or("-").to_string(), r["count"].as_u64().unwrap()))
        .collect();
    by.sort();
    assert_eq!(by, vec![("-".into(), 1), ("321202".into(), 2), ("321204".into(), 1)], "{v}");
    let r = gaj
        .get(app.url(&format!("/api/v1/resources/{code}/aggregate?group_by=mc&bucket=region")))
        .send()
        .await
        .unwrap();
    assert_error(r, 400, "validation_failed").await;
    let csv = gaj
        .get(app.url(&format!(
            "/api/v1/resources/{code}/export?format=csv&fields=mc&sort=mc&filter={}",
            urlencoding("within(wz, '321204')")
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(csv.status(), 200);
    let text = csv.text().await.unwrap();
    assert_eq!(text.trim_start_matches('\u{feff}').lines().skip(1).collect::<Vec<_>>(), vec!["警务室2"], "{text}");

    // A grant limited to a district: 卫健委 reads the clinics of 海陵区 only, on every path.
    let plain = code.replace("%2F", "/");
    let grant = |filter: &'static str| {
        let body = json!({"resource_id": plain, "grantee": {"department": "wjw"}, "row_filter": filter,
                          "purpose": "海陵区就医可达性分析", "expires_at": "2099-01-01T00:00:00Z"});
        let (gaj, url) = (gaj.clone(), app.url("/api/v1/grants"));
        async move { gaj.post(url).json(&body).send().await.unwrap() }
    };
    let body = assert_error(grant("within(wz, '321209')").await, 400, "validation_failed").await;
    assert!(body.to_string().contains("321209"), "an unknown district is refused by name: {body}");
    let r = grant("within(位置, '321202')").await;
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
    let wjw = app.login("wjw-analyst").await;
    let v: Value = wjw
        .get(app.url(&format!("/api/v1/resources/{code}/rows?sort=mc&limit=100")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(names(v), vec!["警务室0", "警务室1"]);
    let csv = wjw
        .get(app.url(&format!("/api/v1/resources/{code}/export?format=csv&fields=mc&sort=mc")))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(csv.trim_start_matches('\u{feff}').lines().skip(1).collect::<Vec<_>>(), vec!["警务室0", "警务室1"]);
    // Counting by district or widening with a filter of its own gives nothing beyond 海陵区.
    let v: Value = wjw
        .get(app.url(&format!("/api/v1/resources/{code}/aggregate?group_by=wz&bucket=region")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let rows = v["rows"].as_array().unwrap_or_else(|| panic!("{v}"));
    assert_eq!(rows.len(), 1, "{v}");
    assert_eq!((rows[0]["wz"].as_str(), rows[0]["count"].as_u64()), (Some("321202"), Some(2)), "{v}");
    let v: Value = wjw
        .get(app.url(&format!(
            "/api/v1/resources/{code}/rows?filter={}",
            urlencoding("within(wz, '321204') OR mc = '警务室3'")
        )))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["rows"].as_array().map(Vec::len), Some(0), "{v}");
    let sql = json!({"sql": format!("SELECT mc FROM \"{plain}\" ORDER BY mc")});
    let v: Value = wjw.post(app.url("/api/v1/sql")).json(&sql).send().await.unwrap().json().await.unwrap();
    assert_eq!(v.to_string().matches("警务室").count(), 2, "{v}");

    // The location mask by district: 市场监管局 sees each clinic at its district's centre —
    // the two of 海陵区 at one point, the one outside every district not at all — and never an
    // exact position, on any path.
    let r = gaj
        .post(app.url("/api/v1/grants"))
        .json(&json!({"resource_id": plain, "grantee": {"department": "scjgj"}, "masks": {"位置": "district"},
                      "purpose": "按区县统计", "expires_at": "2099-01-01T00:00:00Z"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
    let scj = app.login("scjgj-steward").await;
    let v: Value = scj
        .get(app.url(&format!("/api/v1/resources/{code}/rows?sort=mc&limit=100")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let at: Vec<Value> =
        v["rows"].as_array().unwrap_or_else(|| panic!("{v}")).iter().map(|r| r["wz"].clone()).collect();
    assert_eq!(at.len(), 4, "{v}");
    assert_eq!(at[0], at[1], "one point for the district: {v}");
    assert!(at[0].as_str().is_some_and(|w| w.starts_with("POINT (")) && at[2].is_string() && at[0] != at[2], "{v}");
    assert!(at[3].is_null(), "outside every district: {v}");
    let (cx, cy) = wkt_point(&at[0]);
    assert!((119.90..119.96).contains(&cx) && (32.43..32.49).contains(&cy), "inside 海陵区: {v}");
    let mut bodies = vec![("rows".to_string(), v.to_string())];
    for path in ["export?format=csv", "export?format=geojson", "aggregate?group_by=wz"] {
        let r = scj.get(app.url(&format!("/api/v1/resources/{code}/{path}"))).send().await.unwrap();
        assert_eq!(r.status(), 200, "{path}");
        bodies.push((path.to_string(), r.text().await.unwrap()));
    }
    let sql = json!({"sql": format!("SELECT * FROM \"{plain}\"")});
    bodies
        .push(("sql".into(), scj.post(app.url("/api/v1/sql")).json(&sql).send().await.unwrap().text().await.unwrap()));
    for (path, body) in &bodies {
        assert!(body.contains("POINT") || body.contains("Point"), "{path}: {body}");
        for e in exact_texts() {
            assert!(!body.contains(e.as_str()), "{path} leaks the exact {e}: {body}");
        }
    }
    // The masked item cannot be filtered on: that would place the clinics again.
    let r = scj
        .get(app.url(&format!(
            "/api/v1/resources/{code}/rows?filter={}",
            urlencoding("within(wz, bbox(119.92, 32.45, 119.93, 32.46))")
        )))
        .send()
        .await
        .unwrap();
    assert_error(r, 400, "validation_failed").await;
}

/// The bounding-box columns beside a spatial item are the lake's, not an item: no surface
/// names, sorts, filters, groups or selects them, none shows them, and no item may take
/// their names.
#[tokio::test]
async fn the_box_columns_are_reachable_through_no_surface() {
    let app = spawn_app().await;
    let (gaj, code) = clinics(&app).await;
    let hidden = "__citydata_bbox_wz_x";
    // ⌊119.9234567·10⁷⌋: the stored box value of the first clinic.
    let stored = citydata_lake::bbox::fixed(EXACT[0].0).to_string();
    for path in [
        format!("rows?fields={hidden}"),
        format!("rows?sort={hidden}"),
        format!("rows?filter={}", urlencoding(&format!("{hidden} > 0"))),
        format!("aggregate?group_by={hidden}"),
        format!("export?format=csv&fields={hidden}"),
    ] {
        let r = gaj.get(app.url(&format!("/api/v1/resources/{code}/{path}"))).send().await.unwrap();
        let status = r.status();
        let body = r.text().await.unwrap();
        assert_eq!(status, 400, "{path}: {body}");
        assert!(!body.contains(&stored), "{path}: {body}");
    }
    let table = code.replace("%2F", "/");
    let r = gaj
        .post(app.url("/api/v1/sql"))
        .json(&json!({"sql": format!("SELECT {hidden} FROM \"{table}\"")}))
        .send()
        .await
        .unwrap();
    let status = r.status();
    let body = r.text().await.unwrap();
    assert_eq!(status, 400, "{body}");
    assert!(!body.contains(&stored), "{body}");
    // What every read shows: items only.
    for path in ["rows?limit=10", "export?format=csv", "export?format=json", "export?format=geojson"] {
        let body =
            gaj.get(app.url(&format!("/api/v1/resources/{code}/{path}"))).send().await.unwrap().text().await.unwrap();
        assert!(!body.contains("__citydata") && !body.contains(&stored), "{path}: {body}");
    }
    let sql = json!({"sql": format!("SELECT * FROM \"{table}\"")});
    let body = gaj.post(app.url("/api/v1/sql")).json(&sql).send().await.unwrap().text().await.unwrap();
    assert!(body.contains("警务室0") && !body.contains("__citydata") && !body.contains(&stored), "{body}");
    // No item may take such a name.
    let r = gaj
        .post(app.url("/api/v1/resources"))
        .json(&json!({
            "name": "保留名称", "abstract": "x", "provider": "gaj",
            "classification": {"class": "thematic", "theme": "environment"}, "format": {"category": "database"},
            "items": [{"name": "mc", "title": "名称", "key": true}, {"name": hidden, "title": "框"}],
            "share": {"type": "unconditional"}, "open": {"type": "none", "conditions": "x"}, "update_cycle": "monthly"
        }))
        .send()
        .await
        .unwrap();
    let e = assert_error(r, 400, "validation_failed").await;
    let field = &e["error"]["details"]["fields"][0];
    assert_eq!(
        (field["field"].as_str(), field["code"].as_str()),
        (Some("items[1].name"), Some("reserved_item_name")),
        "{e}"
    );
}
