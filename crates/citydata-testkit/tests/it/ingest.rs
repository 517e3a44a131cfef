//! Collection over HTTP: a GB18030 register with deliberate defects, modes, idempotency, and
//! every kind of bad input refused with a 4xx naming the problem and the table unchanged.

use citydata_core::demo::generate::{Register, generate_listing};
use citydata_testkit::{SpawnOptions, TestApp, assert_error, new_client, spawn_app, spawn_app_with};
use serde_json::Value;
use std::collections::BTreeSet;

const POP: &str = "101%2F000001";
const ENT: &str = "102%2F000001";

async fn upload(app: &TestApp, c: &reqwest::Client, res: &str, query: &str, body: Vec<u8>) -> reqwest::Response {
    c.post(app.url(&format!("/api/v1/resources/{res}/data{query}"))).body(body).send().await.unwrap()
}

async fn version(app: &TestApp, res: &str) -> Option<i64> {
    let v: Value = new_client()
        .get(app.url(&format!("/api/v1/resources/{res}/versions")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    v.as_array().unwrap().first().map(|x| x["version"].as_i64().unwrap())
}

fn lake(app: &TestApp) -> citydata_lake::table::Lake {
    citydata_lake::table::Lake::new(app.data_dir.path().join("lake").to_str().unwrap()).unwrap()
}

async fn resource_id(app: &TestApp, res: &str) -> uuid::Uuid {
    let c = app.login("admin").await;
    let v: Value = c.get(app.url(&format!("/api/v1/resources/{res}"))).send().await.unwrap().json().await.unwrap();
    v["id"].as_str().unwrap().parse().unwrap()
}

async fn count(app: &TestApp, res: &str) -> i64 {
    let id = resource_id(app, res).await;
    let b = lake(app).query(id, None, "SELECT count(*) FROM t").await.unwrap();
    if b.is_empty() {
        return 0;
    }
    arrow::util::display::array_value_to_string(b[0].column(0), 0).unwrap().parse().unwrap()
}

#[tokio::test]
async fn a_gb18030_register_lands_with_exactly_the_defective_rows_quarantined() {
    let app = spawn_app().await;
    let steward = app.login("gaj-steward").await;
    let mut file = Vec::new();
    let defects = generate_listing(Register::Population, 3000, 0.03, 99, true, &mut file).unwrap();
    assert!(defects.len() > 40);
    let r = upload(&app, &steward, POP, "", file).await;
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["state"], "committed");
    let report = &v["report"];
    assert_eq!(report["encoding"], "gb18030", "detected");
    assert_eq!(report["rows_read"], 3000);
    assert_eq!(report["rows_quarantined"].as_u64().unwrap(), defects.len() as u64);
    assert_eq!(report["rows_committed"].as_u64().unwrap(), 3000 - defects.len() as u64);
    assert_eq!(report["table_version"], 0);
    // Exactly the defective rows, each with its rule.
    let q: Vec<Value> = steward
        .get(app.url(&format!("/api/v1/resources/{POP}/quarantine?limit=10000")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let got: BTreeSet<(u64, String)> =
        q.iter().map(|r| (r["line"].as_u64().unwrap(), r["rule"].as_str().unwrap().to_string())).collect();
    let want: BTreeSet<(u64, String)> = defects.iter().map(|(l, r)| (*l, r.to_string())).collect();
    assert_eq!(got, want);
    assert!(q[0]["record"]["身份证号"].is_string(), "the original cells are kept");
    assert_eq!(count(&app, POP).await, 3000 - defects.len() as i64);
    // The report is stored and retrievable.
    let id = v["id"].as_str().unwrap();
    let again: Value = steward
        .get(app.url(&format!("/api/v1/resources/{POP}/ingests/{id}")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(again["report"]["rows_quarantined"], report["rows_quarantined"]);
    let rules: BTreeSet<&str> =
        report["failures"].as_array().unwrap().iter().map(|f| f["rule"].as_str().unwrap()).collect();
    assert_eq!(rules, BTreeSet::from(["id_card", "id_card_birth_date", "id_card_sex", "mobile"]));
    // Others may not upload or read the quarantine.
    let other = app.login("wjw-steward").await;
    assert_error(upload(&app, &other, POP, "", b"x".to_vec()).await, 403, "forbidden").await;
    assert_error(
        other.get(app.url(&format!("/api/v1/resources/{POP}/quarantine"))).send().await.unwrap(),
        403,
        "forbidden",
    )
    .await;
    assert_error(upload(&app, &new_client(), POP, "", b"x".to_vec()).await, 401, "unauthenticated").await;
}

fn enterprises(rows: u64, seed: u64) -> String {
    let mut out = Vec::new();
    generate_listing(Register::Enterprise, rows, 0.0, seed, false, &mut out).unwrap();
    String::from_utf8(out).unwrap()
}

#[tokio::test]
async fn upsert_delete_and_the_same_idempotency_key_twice() {
    let app = spawn_app().await;
    let c = app.login("scjgj-steward").await;
    let file = enterprises(50, 1);
    let r = c
        .post(app.url(&format!("/api/v1/resources/{ENT}/data")))
        .header("Idempotency-Key", "batch-2024-01")
        .body(file.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let first: Value = r.json().await.unwrap();
    assert_eq!(version(&app, ENT).await, Some(0));
    let r = c
        .post(app.url(&format!("/api/v1/resources/{ENT}/data")))
        .header("Idempotency-Key", "batch-2024-01")
        .body(file.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "a replay");
    let second: Value = r.json().await.unwrap();
    assert_eq!(second["id"], first["id"], "the earlier ingest is returned");
    assert_eq!(version(&app, ENT).await, Some(0), "nothing changed");
    assert_eq!(count(&app, ENT).await, 50);

    // Upsert: change one enterprise's name, add a new one.
    let mut lines: Vec<String> = file.lines().map(str::to_string).collect();
    let header = lines.remove(0);
    let first_row = lines[0].clone();
    let uscc = first_row.split(',').next().unwrap().to_string();
    let changed = first_row.replacen(first_row.split(',').nth(1).unwrap(), "泰州市改名科技有限公司", 1);
    let new_row = enterprises(60, 1).lines().nth(55).unwrap().to_string();
    let up = format!("{header}\n{changed}\n{new_row}\n");
    let r = upload(&app, &c, ENT, "?mode=upsert", up.into_bytes()).await;
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
    assert_eq!(count(&app, ENT).await, 51);
    let id = resource_id(&app, ENT).await;
    let b = lake(&app).query(id, None, &format!("SELECT qymc FROM t WHERE tyshxydm = '{uscc}'")).await.unwrap();
    assert_eq!(arrow::util::display::array_value_to_string(b[0].column(0), 0).unwrap(), "泰州市改名科技有限公司");
    // Delete by key.
    let del = format!("{header}\n{changed}\n");
    let r = upload(&app, &c, ENT, "?mode=delete", del.into_bytes()).await;
    assert_eq!(r.status(), 201);
    assert_eq!(count(&app, ENT).await, 50);
    let v: Value = new_client()
        .get(app.url(&format!("/api/v1/resources/{ENT}/versions")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let ops: Vec<&str> = v.as_array().unwrap().iter().map(|x| x["operation"].as_str().unwrap()).collect();
    assert_eq!(ops, ["MERGE", "MERGE", "WRITE"]);
    // Appending an existing key again is refused row by row.
    let r = upload(&app, &c, ENT, "", file.into_bytes()).await;
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["report"]["rows_committed"], 1, "only the row deleted above is new again");
    assert_eq!(v["report"]["failures"][0]["rule"], "unique_key");
    // Policy reject: one bad row and nothing is committed.
    let before = version(&app, ENT).await;
    let bad = format!("{header}\n91321202MA1XXXXX00,坏企业,张三,1,2020-01-01,海陵区,321202,制造业,某处\n");
    let r = upload(&app, &c, ENT, "?mode=replace&policy=reject", bad.into_bytes()).await;
    let body = assert_error(r, 422, "rejected").await;
    assert_eq!(body["error"]["details"]["ingest"]["report"]["failures"][0]["rule"], "uscc");
    assert_eq!(version(&app, ENT).await, before);
}

/// Each bad input: its status, its message, and the table left at its version.
#[tokio::test]
async fn bad_inputs_get_a_clear_4xx_and_leave_the_table_unchanged() {
    let app = spawn_app_with(SpawnOptions { ..Default::default() }).await;
    let c = app.login("scjgj-steward").await;
    let good = enterprises(20, 3);
    assert_eq!(upload(&app, &c, ENT, "", good.clone().into_bytes()).await.status(), 201);
    let v0 = version(&app, ENT).await;
    let header = good.lines().next().unwrap().to_string();
    let row = good.lines().nth(1).unwrap().to_string();

    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    std::io::Write::write_all(&mut gz, enterprises(2000, 4).as_bytes()).unwrap();
    let mut truncated = gz.finish().unwrap();
    truncated.truncate(truncated.len() / 2);

    let (gb, _, _) = encoding_rs::GB18030.encode(&good);

    let mut wb = rust_xlsxwriter::Workbook::new();
    let ws = wb.add_worksheet();
    ws.merge_range(0, 0, 0, 1, "统一社会信用代码", &rust_xlsxwriter::Format::new()).unwrap();
    ws.write_string(1, 0, "x").unwrap();
    let merged = wb.save_to_buffer().unwrap();

    // (case, body, query, status, error code, words the message must contain)
    type Case<'a> = (&'a str, Vec<u8>, &'a str, u16, &'a str, &'a str);
    let cases: Vec<Case> = vec![
        ("binary", vec![0x89, b'P', b'N', b'G', 0, 0, 1, 2, 3], "", 400, "not_text", "不是文本"),
        ("truncated gzip", truncated, "", 400, "unreadable", "截断"),
        ("ragged rows", format!("{header}\n{row}\n{row},多余\n").into_bytes(), "", 400, "ragged_row", "第 3 行"),
        (
            "unclosed quote",
            format!("{header}\n{row}\n\"91321202,泰州\n").into_bytes(),
            "",
            400,
            "unclosed_quote",
            "引号",
        ),
        ("empty file", vec![], "", 400, "empty_file", "为空"),
        ("header only", format!("{header}\n").into_bytes(), "", 400, "no_rows", "只有表头"),
        ("merged header", merged, "?format=xlsx", 400, "merged_header", "合并单元格"),
        ("wrong encoding claim", gb.to_vec(), "?encoding=utf-8", 400, "bad_encoding", "gb18030"),
        ("unknown column", format!("{header},颜色\n{row},红\n").into_bytes(), "", 400, "unknown_columns", "颜色"),
        ("bad format option", good.clone().into_bytes(), "?format=docx", 400, "unsupported_format", "docx"),
    ];
    for (name, body, query, status, code, needle) in cases {
        let r = upload(&app, &c, ENT, query, body).await;
        let body = assert_error(r, status, code).await;
        let msg = body["error"]["message"].as_str().unwrap();
        assert!(msg.contains(needle), "{name}: message should mention {needle}: {msg}");
        assert!(!msg.contains("/src/") && !msg.contains("panicked"), "{name}: {msg}");
        assert_eq!(version(&app, ENT).await, v0, "{name}: the table changed");
    }
    let ragged = upload(&app, &c, ENT, "", format!("{header}\n{row}\n{row},多余\n").into_bytes()).await;
    let body: Value = ragged.json().await.unwrap();
    assert_eq!(body["error"]["details"]["line"], 3);
    assert_eq!(count(&app, ENT).await, 20);
}

#[tokio::test]
async fn a_file_over_the_limit_is_413_and_changes_nothing() {
    let app = spawn_app().await;
    // The limit is a server setting; lower it for this app through the same settings path.
    let c = app.login("scjgj-steward").await;
    let small = enterprises(5, 5);
    assert_eq!(upload(&app, &c, ENT, "", small.into_bytes()).await.status(), 201);
    let v0 = version(&app, ENT).await;
    let limited =
        citydata_testkit::spawn_app_with(SpawnOptions { max_upload_bytes: Some(10_000), ..Default::default() }).await;
    let c2 = limited.login("scjgj-steward").await;
    let big = enterprises(2000, 6);
    let r = upload(&limited, &c2, ENT, "", big.into_bytes()).await;
    assert_error(r, 413, "payload_too_large").await;
    assert_eq!(version(&limited, ENT).await, None);
    assert_eq!(version(&app, ENT).await, v0);
}

/// The same two enterprises in every format, each into a fresh table with mode=replace.
#[tokio::test]
async fn every_format_lands() {
    let app = spawn_app().await;
    let c = app.login("scjgj-steward").await;
    let csv = enterprises(2, 8);
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    let objects: Vec<serde_json::Map<String, Value>> = rows
        .iter()
        .map(|r| header.iter().zip(r).map(|(h, v)| (h.to_string(), Value::String(v.to_string()))).collect())
        .collect();

    let tsv = csv.replace(',', "\t");
    let ndjson: String = objects.iter().map(|o| format!("{}\n", Value::Object(o.clone()))).collect();
    let json = serde_json::to_vec(&objects).unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    std::io::Write::write_all(&mut gz, csv.as_bytes()).unwrap();
    let gz = gz.finish().unwrap();
    let mut wb = rust_xlsxwriter::Workbook::new();
    let ws = wb.add_worksheet();
    for (ci, h) in header.iter().enumerate() {
        ws.write_string(0, ci as u16, *h).unwrap();
    }
    for (ri, r) in rows.iter().enumerate() {
        for (ci, v) in r.iter().enumerate() {
            if ci == 3 {
                ws.write_number((ri + 1) as u32, ci as u16, v.parse::<f64>().unwrap()).unwrap();
            } else {
                ws.write_string((ri + 1) as u32, ci as u16, *v).unwrap();
            }
        }
    }
    let xlsx = wb.save_to_buffer().unwrap();
    let schema = std::sync::Arc::new(arrow::datatypes::Schema::new(
        header
            .iter()
            .map(|h| arrow::datatypes::Field::new(*h, arrow::datatypes::DataType::Utf8, true))
            .collect::<Vec<_>>(),
    ));
    let cols: Vec<arrow::array::ArrayRef> = (0..header.len())
        .map(|ci| {
            std::sync::Arc::new(arrow::array::StringArray::from(rows.iter().map(|r| r[ci]).collect::<Vec<_>>()))
                as arrow::array::ArrayRef
        })
        .collect();
    let batch = arrow::record_batch::RecordBatch::try_new(schema.clone(), cols).unwrap();
    let mut parquet_bytes = Vec::new();
    let mut w = parquet::arrow::ArrowWriter::try_new(&mut parquet_bytes, schema, None).unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();

    for (name, query, body) in [
        ("csv", "?mode=replace", csv.clone().into_bytes()),
        ("tsv", "?mode=replace&format=tsv", tsv.into_bytes()),
        ("gzip csv", "?mode=replace", gz),
        ("ndjson", "?mode=replace&format=ndjson", ndjson.into_bytes()),
        ("json", "?mode=replace&format=json", json),
        ("xlsx", "?mode=replace&format=xlsx", xlsx),
        ("parquet", "?mode=replace&format=parquet", parquet_bytes),
    ] {
        let r = upload(&app, &c, ENT, query, body).await;
        let status = r.status();
        let v: Value = r.json().await.unwrap();
        assert_eq!(status, 201, "{name}: {v}");
        assert_eq!(v["report"]["rows_committed"], 2, "{name}: {v}");
        assert_eq!(count(&app, ENT).await, 2, "{name}");
    }
}

#[tokio::test]
async fn multipart_uploads_work_too() {
    let app = spawn_app().await;
    let c = app.login("scjgj-steward").await;
    let csv = enterprises(7, 9);
    let form = reqwest::multipart::Form::new()
        .text("note", "月度更新")
        .part("file", reqwest::multipart::Part::bytes(csv.into_bytes()).file_name("企业登记.csv"));
    let r = c.post(app.url(&format!("/api/v1/resources/{ENT}/data"))).multipart(form).send().await.unwrap();
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
    assert_eq!(count(&app, ENT).await, 7);
    let form = reqwest::multipart::Form::new().text("note", "no file");
    let r = c.post(app.url(&format!("/api/v1/resources/{ENT}/data"))).multipart(form).send().await.unwrap();
    assert_error(r, 400, "bad_multipart").await;
}

/// `serve --demo` fills every demo resource: the registers with about 1% defects, every other
/// resource with rows that pass all its validators.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_loads_data_into_every_resource() {
    let app = spawn_app_with(SpawnOptions { demo_rows: 500, ..Default::default() }).await;
    let admin = app.login("admin").await;
    let all: Value = admin.get(app.url("/api/v1/resources?per_page=1000")).send().await.unwrap().json().await.unwrap();
    let mut loaded = 0;
    for r in all["items"].as_array().unwrap() {
        let id = r["id"].as_str().unwrap();
        let ingests: Value =
            admin.get(app.url(&format!("/api/v1/resources/{id}/ingests"))).send().await.unwrap().json().await.unwrap();
        let Some(first) = ingests.as_array().unwrap().first() else {
            assert!(r["items"].as_array().unwrap().is_empty(), "{} has items but no data", r["name"]);
            continue;
        };
        let report = &first["report"];
        match r["code"].as_str().unwrap() {
            "101/000001" => assert_eq!(report["rows_read"], 500),
            "102/000001" => assert_eq!(report["rows_read"], 100),
            _ => assert_eq!(report["rows_quarantined"], 0, "{}: {report}", r["name"]),
        }
        loaded += 1;
    }
    assert_eq!(loaded, all["total"].as_u64().unwrap(), "every demo resource has items and data");
}

/// Uploads to one table at the same moment wait for each other on a node: every one lands, each
/// in its own version (delta-rs would otherwise fail all but one commit with a conflict).
#[tokio::test]
async fn concurrent_upserts_to_one_table_all_land() {
    let app = spawn_app().await;
    let c = app.login("scjgj-steward").await;
    let all = enterprises(60, 5);
    let (header, lines) = all.split_once('\n').unwrap();
    let lines: Vec<&str> = lines.lines().collect();
    let r = upload(&app, &c, ENT, "?mode=append", all.clone().into_bytes()).await;
    assert_eq!(r.status(), 201);
    let before = version(&app, ENT).await.unwrap();
    let calls = (0..6).map(|i| {
        let renamed: Vec<String> =
            lines[i * 10..i * 10 + 10].iter().map(|l| l.replacen(',', &format!(",改{i}"), 1)).collect();
        let body = format!("{header}\n{}\n", renamed.join("\n"));
        let (app, c) = (&app, &c);
        async move { upload(app, c, ENT, "?mode=upsert", body.into_bytes()).await.status().as_u16() }
    });
    let statuses = futures::future::join_all(calls).await;
    assert_eq!(statuses, vec![201; 6]);
    assert_eq!(version(&app, ENT).await, Some(before + 6));
    assert_eq!(count(&app, ENT).await, 60);
}
