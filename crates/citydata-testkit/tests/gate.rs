//! The one gate on the rows read path: grant required, narrowed scope, masks, revocation,
//! anonymous readers, and every read in the audit log.

use citydata_core::demo::generate::{Register, generate_listing};
use citydata_testkit::{TestApp, assert_error, new_client, spawn_app};
use serde_json::{Value, json};

async fn load(app: &TestApp) -> (String, String) {
    let gaj = app.login("gaj-steward").await;
    let mut pop = Vec::new();
    generate_listing(Register::Population, 600, 0.0, 5, false, &mut pop).unwrap();
    let pop = String::from_utf8(pop).unwrap();
    let r = gaj.post(app.url("/api/v1/resources/101%2F000001/data")).body(pop.clone()).send().await.unwrap();
    assert_eq!(r.status(), 201);
    let scj = app.login("scjgj-steward").await;
    let mut ent = Vec::new();
    generate_listing(Register::Enterprise, 50, 0.0, 6, false, &mut ent).unwrap();
    let ent = String::from_utf8(ent).unwrap();
    let r = scj.post(app.url("/api/v1/resources/102%2F000001/data")).body(ent.clone()).send().await.unwrap();
    assert_eq!(r.status(), 201);
    (pop, ent)
}

fn column(csv: &str, title: &str) -> Vec<String> {
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let i = header.iter().position(|h| *h == title).unwrap();
    lines.map(|l| l.split(',').nth(i).unwrap().to_string()).collect()
}

#[tokio::test]
async fn a_grant_opens_a_narrow_masked_window_and_revocation_closes_it() {
    let app = spawn_app().await;
    let (pop, _) = load(&app).await;
    let wjw = app.login("wjw-analyst").await;
    let rows_url = app.url("/api/v1/resources/101%2F000001/rows?limit=10000&count=exact");
    assert_error(wjw.get(&rows_url).send().await.unwrap(), 403, "grant_required").await;

    let gaj = app.login("gaj-steward").await;
    let g: Value = gaj
        .post(app.url("/api/v1/grants"))
        .json(&json!({
            "resource_id": "101/000001", "grantee": {"department": "wjw"},
            "fields": ["身份证号", "性别", "出生日期", "区县"], "row_filter": "区县 = '海陵区'",
            "purpose": "妇幼保健", "expires_at": "2099-01-01T00:00:00Z"
        }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let r = wjw.get(&rows_url).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let text = r.text().await.unwrap();
    let v: Value = serde_json::from_str(&text).unwrap();
    let names: Vec<&str> = v["fields"].as_array().unwrap().iter().map(|f| f["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["sfzh", "xb", "csrq", "qx"]);
    assert_eq!(v["fields"][0]["mask"], "id_card");
    let rows = v["rows"].as_array().unwrap();
    let districts = column(&pop, "区县");
    assert_eq!(rows.len(), districts.iter().filter(|d| *d == "海陵区").count());
    assert_eq!(v["total"].as_u64().unwrap() as usize, rows.len());
    assert!(rows.iter().all(|r| r["qx"] == "海陵区"));
    assert!(rows.iter().all(|r| r["sfzh"].as_str().unwrap().contains("********")));
    // No original identity number, name or mobile appears anywhere in the answer.
    for (title, values) in
        [("身份证号", column(&pop, "身份证号")), ("姓名", column(&pop, "姓名")), ("手机号", column(&pop, "手机号"))]
    {
        for value in values {
            assert!(!text.contains(&value), "{title} {value} leaked");
        }
    }
    // The caller's filter narrows further but cannot widen, nor reach masked or ungranted items.
    let r: Value = wjw
        .get(app.url("/api/v1/resources/101%2F000001/rows?filter=性别%20=%20'女'&fields=性别,区县"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(r["rows"].as_array().unwrap().iter().all(|x| x["xb"] == "女" && x["qx"] == "海陵区"));
    assert_eq!(r["fields"].as_array().unwrap().len(), 2);
    assert_error(
        wjw.get(app.url("/api/v1/resources/101%2F000001/rows?filter=身份证号%20=%20'1'")).send().await.unwrap(),
        400,
        "validation_failed",
    )
    .await;
    assert_error(
        wjw.get(app.url("/api/v1/resources/101%2F000001/rows?fields=姓名")).send().await.unwrap(),
        400,
        "validation_failed",
    )
    .await;
    // Paging.
    let p1: Value = wjw
        .get(app.url("/api/v1/resources/101%2F000001/rows?limit=5&sort=csrq"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let cursor = p1["next_cursor"].as_str().unwrap();
    let p2: Value = wjw
        .get(app.url(&format!("/api/v1/resources/101%2F000001/rows?limit=5&sort=csrq&cursor={cursor}")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(p2["rows"].as_array().unwrap().len(), 5);
    assert_ne!(p1["rows"][0], p2["rows"][0]);

    // Revocation closes it at once.
    let id = g["id"].as_str().unwrap();
    assert_eq!(gaj.post(app.url(&format!("/api/v1/grants/{id}/revoke"))).send().await.unwrap().status(), 200);
    assert_error(wjw.get(&rows_url).send().await.unwrap(), 403, "grant_revoked").await;

    // The provider reads everything, unmasked.
    let v: Value =
        gaj.get(app.url("/api/v1/resources/101%2F000001/rows?limit=1")).send().await.unwrap().json().await.unwrap();
    assert_eq!(v["fields"].as_array().unwrap().len(), 12);
    assert!(v["fields"].as_array().unwrap().iter().all(|f| f["mask"].is_null()));

    // Every read is audited with its row count; refusals too.
    let admin = app.login("admin").await;
    let page: Value = admin
        .get(app.url("/api/v1/audit?action=data.read_rows&actor=wjw-analyst&per_page=100"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let entries = page["entries"].as_array().unwrap();
    assert!(entries.iter().any(|e| e["outcome"] == "denied" && e["details"]["decision"] == "grant_required"));
    assert!(entries.iter().any(|e| e["outcome"] == "denied" && e["details"]["decision"] == "grant_revoked"));
    assert!(
        entries.iter().any(|e| e["outcome"] == "success" && e["details"]["rows"].as_u64() == Some(rows.len() as u64))
    );
}

#[tokio::test]
async fn anonymous_readers_get_open_data_masked_and_nothing_else() {
    let app = spawn_app().await;
    let (_, ent) = load(&app).await;
    let anon = new_client();
    let r = anon.get(app.url("/api/v1/resources/102%2F000001/rows?limit=1000")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let text = r.text().await.unwrap();
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["rows"].as_array().unwrap().len(), 50);
    let rep = v["fields"].as_array().unwrap().iter().find(|f| f["name"] == "fddbr").unwrap();
    assert_eq!(rep["mask"], "chinese_name");
    for name in column(&ent, "法定代表人") {
        assert!(!text.contains(&format!("\"{name}\"")), "{name} leaked");
    }
    assert!(v["rows"][0]["fddbr"].as_str().unwrap().ends_with('*'));
    // 人口基础信息 is not even in the open catalog.
    assert_error(anon.get(app.url("/api/v1/resources/101%2F000001/rows")).send().await.unwrap(), 404, "not_found")
        .await;
    // Time travel reads an older version; an unknown one is 404.
    let v: Value = anon
        .get(app.url("/api/v1/resources/102%2F000001/rows?version=0&limit=1"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["rows"].as_array().unwrap().len(), 1);
    let r = anon.get(app.url("/api/v1/resources/102%2F000001/rows?version=99")).send().await.unwrap();
    assert_error(r, 404, "not_found").await;
}

/// Every export format, as the narrowed grantee and as an anonymous reader: only the allowed
/// items and rows, masked, nothing original; audited with row counts.
#[tokio::test]
async fn every_export_format_goes_through_the_gate() {
    let app = spawn_app().await;
    let (pop, ent) = load(&app).await;
    let wjw = app.login("wjw-analyst").await;
    let base = app.url("/api/v1/resources/101%2F000001/export");
    assert_error(wjw.get(format!("{base}?format=csv")).send().await.unwrap(), 403, "grant_required").await;
    let gaj = app.login("gaj-steward").await;
    let r = gaj
        .post(app.url("/api/v1/grants"))
        .json(&json!({
            "resource_id": "101/000001", "grantee": {"department": "wjw"},
            "fields": ["身份证号", "性别", "出生日期", "区县"], "row_filter": "区县 = '海陵区'", "purpose": "统计"
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let haling = column(&pop, "区县").iter().filter(|d| *d == "海陵区").count();
    let ids = column(&pop, "身份证号");
    let names = column(&pop, "姓名");
    let no_originals = |text: &str, what: &str| {
        for v in ids.iter().chain(names.iter()) {
            assert!(!text.contains(v.as_str()), "{what}: {v} leaked");
        }
    };
    for format in ["csv", "ndjson", "json", "parquet", "xlsx"] {
        let r = wjw.get(format!("{base}?format={format}&header=title")).send().await.unwrap();
        assert_eq!(r.status(), 200, "{format}");
        let cd = r.headers()["content-disposition"].to_str().unwrap().to_string();
        assert!(cd.contains(&format!(".{format}")), "{cd}");
        let bytes = r.bytes().await.unwrap().to_vec();
        let (header, rows, text): (Vec<String>, Vec<Vec<String>>, String) = match format {
            "csv" => {
                let t = String::from_utf8(bytes).unwrap();
                let mut l = t.lines();
                let h = l.next().unwrap().split(',').map(str::to_string).collect();
                let rows = l.map(|x| x.split(',').map(str::to_string).collect()).collect();
                (h, rows, t)
            }
            "ndjson" | "json" => {
                let t = String::from_utf8(bytes).unwrap();
                let objs: Vec<serde_json::Map<String, Value>> = if format == "json" {
                    serde_json::from_str(&t).unwrap()
                } else {
                    t.lines().map(|l| serde_json::from_str(l).unwrap()).collect()
                };
                // serde_json maps sort their keys: check the set, then read in the expected order.
                let mut keys: Vec<String> = objs[0].keys().cloned().collect();
                keys.sort();
                let mut want: Vec<String> =
                    ["身份证号", "性别", "出生日期", "区县"].iter().map(|s| s.to_string()).collect();
                want.sort();
                assert_eq!(keys, want, "{format}");
                let h: Vec<String> = ["身份证号", "性别", "出生日期", "区县"].iter().map(|s| s.to_string()).collect();
                let rows = objs
                    .iter()
                    .map(|o| {
                        h.iter()
                            .map(|k| o[k].as_str().map(str::to_string).unwrap_or_else(|| o[k].to_string()))
                            .collect()
                    })
                    .collect();
                (h, rows, t)
            }
            "parquet" => {
                let reader =
                    parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(bytes::Bytes::from(bytes))
                        .unwrap()
                        .build()
                        .unwrap();
                let mut h = vec![];
                let mut rows = vec![];
                for b in reader {
                    let b = b.unwrap();
                    h = b.schema().fields().iter().map(|f| f.name().clone()).collect();
                    for r in 0..b.num_rows() {
                        rows.push(
                            b.columns()
                                .iter()
                                .map(|c| arrow::util::display::array_value_to_string(c, r).unwrap())
                                .collect(),
                        );
                    }
                }
                let text = format!("{rows:?}");
                (h, rows, text)
            }
            _ => {
                use calamine::Reader;
                let mut wb: calamine::Xlsx<_> = calamine::open_workbook_from_rs(std::io::Cursor::new(bytes)).unwrap();
                let name = wb.sheet_names()[0].clone();
                let range = wb.worksheet_range(&name).unwrap();
                let mut it = range.rows();
                let h = it.next().unwrap().iter().map(|c| c.to_string()).collect();
                let rows: Vec<Vec<String>> = it.map(|r| r.iter().map(|c| c.to_string()).collect()).collect();
                let text = format!("{rows:?}");
                (h, rows, text)
            }
        };
        assert_eq!(header, ["身份证号", "性别", "出生日期", "区县"], "{format}");
        assert_eq!(rows.len(), haling, "{format}");
        assert!(rows.iter().all(|r| r[3] == "海陵区"), "{format}");
        assert!(rows.iter().all(|r| r[0].contains("********")), "{format}");
        no_originals(&text, format);
    }
    // GB18030 CSV with a BOM-free Chinese header.
    let r = wjw.get(format!("{base}?format=csv&encoding=gb18030&header=title")).send().await.unwrap();
    let bytes = r.bytes().await.unwrap();
    let (decoded, _, bad) = encoding_rs::GB18030.decode(&bytes);
    assert!(!bad && decoded.starts_with("身份证号,"));
    assert_error(wjw.get(format!("{base}?format=docx")).send().await.unwrap(), 400, "validation_failed").await;

    // Anonymous: the open enterprise register with 法定代表人 masked.
    let anon = new_client();
    let csv = anon
        .get(app.url("/api/v1/resources/102%2F000001/export?format=csv&bom=true"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(csv.starts_with('\u{feff}'));
    assert_eq!(csv.lines().count(), 51);
    for n in column(&ent, "法定代表人") {
        assert!(!csv.contains(&format!(",{n},")), "{n} leaked");
    }
    assert_error(anon.get(format!("{base}?format=csv")).send().await.unwrap(), 404, "not_found").await;

    // Audited with rows once the download ends.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let admin = app.login("admin").await;
    let page: Value = admin
        .get(app.url("/api/v1/audit?action=data.export&actor=wjw-analyst&per_page=100"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let ok: Vec<&Value> = page["entries"].as_array().unwrap().iter().filter(|e| e["outcome"] == "success").collect();
    assert!(ok.len() >= 5, "{page}");
    assert!(ok.iter().all(|e| e["details"]["rows"].as_u64() == Some(haling as u64)));
}

#[tokio::test]
async fn aggregates_respect_the_grant_and_suppress_small_groups_for_the_public() {
    let app = spawn_app().await;
    let (pop, ent) = load(&app).await;
    let wjw = app.login("wjw-analyst").await;
    let url = app.url("/api/v1/resources/101%2F000001/aggregate?group_by=区县");
    assert_error(wjw.get(&url).send().await.unwrap(), 403, "grant_required").await;
    let gaj = app.login("gaj-steward").await;
    gaj.post(app.url("/api/v1/grants"))
        .json(&json!({"resource_id": "101/000001", "grantee": {"department": "wjw"}, "fields": ["性别", "区县"], "row_filter": "区县 = '海陵区'", "purpose": "统计"}))
        .send()
        .await
        .unwrap();
    let v: Value = wjw
        .get(app.url("/api/v1/resources/101%2F000001/aggregate?group_by=区县,性别"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let rows = v["rows"].as_array().unwrap();
    assert!(rows.iter().all(|r| r["qx"] == "海陵区"), "the grant's filter applies");
    let total: u64 = rows.iter().map(|r| r["count"].as_u64().unwrap()).sum();
    assert_eq!(total as usize, column(&pop, "区县").iter().filter(|d| *d == "海陵区").count());
    assert_error(
        wjw.get(app.url("/api/v1/resources/101%2F000001/aggregate?group_by=姓名")).send().await.unwrap(),
        400,
        "validation_failed",
    )
    .await;

    // The public: counts by district of the enterprise register; groups under 5 suppressed.
    let anon = new_client();
    let v: Value = anon
        .get(app.url(
            "/api/v1/resources/102%2F000001/aggregate?group_by=区县&metrics=count,sum(注册资本万元),max(成立日期)",
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["min_group_size"], 5);
    let districts = column(&ent, "区县");
    let shown: u64 = v["rows"].as_array().unwrap().iter().map(|r| r["count"].as_u64().unwrap()).sum();
    let small = v["rows"].as_array().unwrap().iter().any(|r| r["count"].as_u64().unwrap() < 5);
    assert!(!small);
    assert!(shown as usize <= districts.len());
    let by_rep: Value = anon
        .get(app.url("/api/v1/resources/102%2F000001/aggregate?group_by=法定代表人"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(by_rep["suppressed_groups"].as_u64().unwrap() > 0, "individual names form groups of one: {by_rep}");
    assert!(by_rep["rows"].as_array().unwrap().iter().all(|r| r["count"].as_u64().unwrap() >= 5));
    assert_error(
        anon.get(app.url("/api/v1/resources/102%2F000001/aggregate?metrics=median(x)")).send().await.unwrap(),
        400,
        "validation_failed",
    )
    .await;
}

#[tokio::test]
async fn ckan_datastore_search_goes_through_the_gate() {
    let app = spawn_app().await;
    let (pop, _) = load(&app).await;
    let token = app.token("wjw-analyst").await;
    let c = new_client();
    let call = |body: Value| {
        let c = c.clone();
        let url = app.url("/api/3/action/datastore_search");
        let token = token.clone();
        async move {
            let r = c.post(url).header("Authorization", token).json(&body).send().await.unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap())
        }
    };
    let (s, v) = call(json!({"resource_id": "101/000001"})).await;
    assert_eq!(s, 403);
    assert_eq!(v["error"]["__type"], "Authorization Error");
    let gaj = app.login("gaj-steward").await;
    gaj.post(app.url("/api/v1/grants"))
        .json(&json!({"resource_id": "101/000001", "grantee": {"department": "wjw"}, "fields": ["身份证号", "性别", "出生日期", "区县"], "row_filter": "区县 = '海陵区'", "purpose": "统计"}))
        .send()
        .await
        .unwrap();
    let (s, v) = call(json!({"resource_id": "101/000001", "limit": 32000, "filters": {"性别": "女"}})).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["success"], true);
    let recs = v["result"]["records"].as_array().unwrap();
    assert!(!recs.is_empty());
    assert!(
        recs.iter().all(|r| r["qx"] == "海陵区" && r["xb"] == "女" && r["sfzh"].as_str().unwrap().contains("****"))
    );
    assert_eq!(v["result"]["total"].as_u64().unwrap() as usize, recs.len());
    let ids: Vec<&str> = v["result"]["fields"].as_array().unwrap().iter().map(|f| f["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["sfzh", "xb", "csrq", "qx"]);
    let text = v.to_string();
    for id in column(&pop, "身份证号") {
        assert!(!text.contains(&id), "{id} leaked");
    }
    let (_, v) = call(json!({"resource_id": "101/000001", "records_format": "lists", "limit": 2, "offset": 1, "fields": ["xb", "qx"]})).await;
    assert_eq!(v["result"]["records"].as_array().unwrap().len(), 2);
    assert_eq!(v["result"]["records"][0].as_array().unwrap().len(), 2);
    let (s, _) = call(json!({"resource_id": "101/000001", "limit": 40000})).await;
    assert_eq!(s, 409);
    let (s, v) = call(json!({"sql": "SELECT 1"})).await;
    assert_eq!(s, 409, "{v}");
    let r = c
        .post(app.url("/api/3/action/datastore_search_sql"))
        .json(&json!({"sql": "SELECT * FROM x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
}

#[tokio::test]
async fn the_sql_sandbox_holds_only_the_gates_views() {
    let app = spawn_app().await;
    let (pop, _) = load(&app).await;
    let wjw = app.login("wjw-analyst").await;
    let sql = |c: &reqwest::Client, q: &str| c.post(app.url("/api/v1/sql")).json(&json!({"sql": q})).send();
    let r = sql(&wjw, "SELECT * FROM \"101/000001\"").await.unwrap();
    assert_error(r, 403, "grant_required").await;
    let gaj = app.login("gaj-steward").await;
    gaj.post(app.url("/api/v1/grants"))
        .json(&json!({"resource_id": "101/000001", "grantee": {"department": "wjw"}, "fields": ["身份证号", "性别", "区县"], "row_filter": "区县 = '海陵区'", "purpose": "统计"}))
        .send()
        .await
        .unwrap();
    let r = sql(&wjw, "SELECT * FROM \"101/000001\" LIMIT 100000").await.unwrap();
    assert_eq!(r.status(), 200);
    let text = r.text().await.unwrap();
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["columns"], json!(["sfzh", "xb", "qx"]));
    let rows = v["rows"].as_array().unwrap();
    assert_eq!(rows.len(), column(&pop, "区县").iter().filter(|d| *d == "海陵区").count());
    for id in column(&pop, "身份证号") {
        assert!(!text.contains(&id), "{id} leaked");
    }
    // Ungranted columns do not exist in the view; other rows are not there either.
    assert_error(sql(&wjw, "SELECT xm FROM \"101/000001\"").await.unwrap(), 400, "sql_error").await;
    let v: Value =
        sql(&wjw, "SELECT count(*) AS n FROM \"101/000001\" WHERE qx <> '海陵区'").await.unwrap().json().await.unwrap();
    assert_eq!(v["rows"][0]["n"], 0);
    // By slug, joined with an open resource.
    let slug = {
        let v: Value = wjw.get(app.url("/api/v1/resources/101%2F000001")).send().await.unwrap().json().await.unwrap();
        v["slug"].as_str().unwrap().to_string()
    };
    let v: Value = sql(&wjw, &format!("SELECT p.xb, count(*) AS n FROM \"{slug}\" p GROUP BY p.xb ORDER BY p.xb"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["tables"], json!(["101/000001"]));
    // Statements other than one SELECT are refused; no file or URL access.
    for bad in [
        "DROP TABLE \"101/000001\"",
        "CREATE TABLE x AS SELECT 1",
        "INSERT INTO \"101/000001\" VALUES ('x', 'y', 'z')",
        "COPY (SELECT 1) TO '/tmp/x.csv'",
        "SELECT * FROM '/etc/passwd'",
        "SELECT * FROM read_parquet('/tmp/x.parquet')",
        "SET datafusion.execution.batch_size = 1",
        "SELECT * FROM \"999/000001\"",
    ] {
        let r = sql(&wjw, bad).await.unwrap();
        let status = r.status().as_u16();
        let body: Value = r.json().await.unwrap();
        assert!((400..500).contains(&status), "{bad}: {status} {body}");
        assert!(!body.to_string().contains("/etc/passwd") || status == 404 || status == 400, "{bad}");
    }
    // The public has no SQL.
    assert_error(
        new_client().post(app.url("/api/v1/sql")).json(&json!({"sql": "SELECT 1"})).send().await.unwrap(),
        401,
        "unauthenticated",
    )
    .await;
}
