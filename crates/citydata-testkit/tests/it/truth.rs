//! Every surface tells the same truth (issue #13): a fixture of edge values — times with and
//! without offsets around local midnight, decimals at full precision and scale, NULLs in every
//! type, text with commas, quotes, CR/LF, tabs, emoji and rare CJK — read back value by value
//! through `rows`, `changes`, SQL, aggregates and CKAN, compared with the Delta table read
//! directly, and exported in every format and re-uploaded unchanged.

use citydata_testkit::{TestApp, assert_error, new_client, spawn_app};
use serde_json::{Value, json};
use std::collections::BTreeMap;

const TEXT_1: &str = "逗号,\"引号\"与换行\r\n第二行";
const TEXT_2: &str = "tab\there 😀 𠮷 㐀";
/// Text a spreadsheet would take for a formula: the formula-safe CSV export writes `'+86…`, and
/// the upload reads it back without the `'`.
const PHONE: &str = "+86 138-0000-0000";

/// The fixture's resource: one item of each type (key `code`).
fn resource(name: &str) -> Value {
    json!({
        "name": name,
        "abstract": "边界值一致性测试",
        "provider": "wjw",
        "classification": {"class": "thematic", "theme": "environment"},
        "format": {"category": "spreadsheet", "type": "csv"},
        "items": [
            {"name": "code", "title": "编号", "key": true},
            {"name": "txt", "title": "名称", "data_type": "text"},
            {"name": "ts", "title": "更新时间", "data_type": "datetime"},
            {"name": "amount", "title": "数值", "data_type": "decimal"},
            {"name": "fee", "title": "金额", "data_type": "money"},
            {"name": "day", "title": "日期", "data_type": "date"},
            {"name": "n", "title": "数量", "data_type": "integer"},
            {"name": "flag", "title": "标志", "data_type": "boolean"}
        ],
        "share": {"type": "unconditional", "method": "file"},
        "open": {"type": "unconditional"},
        "update_cycle": "realtime",
        "regions": ["321202"]
    })
}

/// The fixture as NDJSON (the text needs no CSV quoting to be written here).
fn fixture() -> Vec<u8> {
    let rows = [
        // A naive time is local (UTC+8): local midnight.
        json!({"code": "a1", "txt": TEXT_1, "ts": "2024-01-01 00:00:00", "amount": "1234567890123.456789",
               "fee": "12.50", "day": "2024-01-01", "n": 42, "flag": "是"}),
        // An explicit offset, the last microsecond of the local year.
        json!({"code": "a2", "txt": TEXT_2, "ts": "2023-12-31T23:59:59.999999+08:00",
               "amount": "99999999999999999999.999999", "fee": "0.01", "day": "2023-12-31", "n": -1, "flag": "否"}),
        // `Z` is UTC: 08:00 local. NULLs in every other type.
        json!({"code": "a3", "txt": null, "ts": "2024-01-01T00:00:00Z", "amount": "100.000000",
               "fee": null, "day": null, "n": null, "flag": null}),
        // A time before local midnight given in UTC on the previous day.
        json!({"code": "a4", "txt": PHONE, "ts": "2023-12-31T15:59:59Z", "amount": "-0.000001",
               "fee": "-99999999.99", "day": "1970-01-01", "n": 9007199254740993i64, "flag": "true"}),
        json!({"code": "a5", "txt": null, "ts": null, "amount": null, "fee": null, "day": null, "n": null, "flag": null}),
    ];
    rows.iter().map(|r| format!("{r}\n")).collect::<String>().into_bytes()
}

/// What every JSON surface must answer for the fixture, by key.
fn expected() -> BTreeMap<&'static str, Value> {
    BTreeMap::from([
        (
            "a1",
            json!({"code": "a1", "txt": TEXT_1, "ts": "2024-01-01T00:00:00+08:00", "amount": "1234567890123.456789",
                   "fee": "12.50", "day": "2024-01-01", "n": 42, "flag": true}),
        ),
        (
            "a2",
            json!({"code": "a2", "txt": TEXT_2, "ts": "2023-12-31T23:59:59.999999+08:00",
                   "amount": "99999999999999999999.999999", "fee": "0.01", "day": "2023-12-31", "n": -1, "flag": false}),
        ),
        (
            "a3",
            json!({"code": "a3", "txt": null, "ts": "2024-01-01T08:00:00+08:00", "amount": "100.000000",
                   "fee": null, "day": null, "n": null, "flag": null}),
        ),
        (
            "a4",
            json!({"code": "a4", "txt": PHONE, "ts": "2023-12-31T23:59:59+08:00", "amount": "-0.000001",
                   "fee": "-99999999.99", "day": "1970-01-01", "n": 9007199254740993i64, "flag": true}),
        ),
        (
            "a5",
            json!({"code": "a5", "txt": null, "ts": null, "amount": null, "fee": null, "day": null, "n": null, "flag": null}),
        ),
    ])
}

async fn create(app: &TestApp, c: &reqwest::Client, name: &str) -> String {
    let r = c.post(app.url("/api/v1/resources")).json(&resource(name)).send().await.unwrap();
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
    let v: Value = r.json().await.unwrap();
    let id = v["id"].as_str().unwrap().to_string();
    let r = c.post(app.url(&format!("/api/v1/resources/{id}/publish"))).send().await.unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    id
}

async fn upload(app: &TestApp, c: &reqwest::Client, id: &str, query: &str, body: Vec<u8>) -> Value {
    let r = c.post(app.url(&format!("/api/v1/resources/{id}/data?{query}"))).body(body).send().await.unwrap();
    let status = r.status();
    let v: Value = r.json().await.unwrap();
    assert!(status.is_success(), "{query}: {status} {v}");
    assert_eq!(v["state"], "committed", "{query}: {v}");
    assert_eq!(v["report"]["rows_quarantined"], 0, "{query}: {v}");
    v
}

async fn get(c: &reqwest::Client, url: String) -> Value {
    let r = c.get(&url).send().await.unwrap();
    let status = r.status();
    let text = r.text().await.unwrap();
    assert_eq!(status, 200, "{url}: {text}");
    serde_json::from_str(&text).unwrap()
}

async fn rows(app: &TestApp, c: &reqwest::Client, id: &str) -> BTreeMap<String, Value> {
    let v = get(c, app.url(&format!("/api/v1/resources/{id}/rows?limit=100"))).await;
    by_code(v["rows"].as_array().unwrap())
}

fn by_code(rows: &[Value]) -> BTreeMap<String, Value> {
    rows.iter().map(|r| (r["code"].as_str().unwrap().to_string(), r.clone())).collect()
}

fn assert_rows(got: &BTreeMap<String, Value>, surface: &str) {
    let want = expected();
    assert_eq!(got.len(), want.len(), "{surface}: {got:?}");
    for (k, w) in &want {
        assert_eq!(&got[*k], w, "{surface}: row {k}");
    }
}

/// The Delta table read directly (no gate, no formatting of ours): the stored instants and
/// decimals, as Arrow prints them.
async fn delta(app: &TestApp, id: &str) -> BTreeMap<String, Vec<String>> {
    let lake = citydata_lake::table::Lake::new(app.data_dir.path().join("lake").to_str().unwrap()).unwrap();
    let b = lake
        .query(
            id.parse().unwrap(),
            None,
            "SELECT code, txt, CAST(ts AS BIGINT) AS ts, CAST(amount AS VARCHAR) AS amount, CAST(fee AS VARCHAR) AS fee, \
             CAST(day AS VARCHAR) AS day, n, flag FROM t",
        )
        .await
        .unwrap();
    let mut out = BTreeMap::new();
    for b in &b {
        for r in 0..b.num_rows() {
            let cells: Vec<String> = b
                .columns()
                .iter()
                .map(|c| {
                    if c.is_null(r) {
                        "NULL".into()
                    } else {
                        arrow::util::display::array_value_to_string(c, r).unwrap()
                    }
                })
                .collect();
            out.insert(cells[0].clone(), cells);
        }
    }
    out
}

use arrow::array::Array;

#[tokio::test]
async fn every_read_surface_returns_the_stored_values_exactly() {
    let app = spawn_app().await;
    let steward = app.login("wjw-steward").await;
    let id = create(&app, &steward, "边界值一致性").await;
    // Version 0 holds a5, version 1 the others (so that the change feed shows them).
    let all = fixture();
    let text = String::from_utf8(all).unwrap();
    let (first, rest): (Vec<&str>, Vec<&str>) = text.lines().partition(|l| l.contains("\"a5\""));
    upload(&app, &steward, &id, "format=ndjson", first.join("\n").into_bytes()).await;
    upload(&app, &steward, &id, "format=ndjson&mode=append", rest.join("\n").into_bytes()).await;

    // The Delta table holds the instants (UTC microseconds) and exact decimals.
    let d = delta(&app, &id).await;
    assert_eq!(d["a1"][2], "1704038400000000", "local midnight 2024-01-01 is 16:00 UTC the day before");
    assert_eq!(d["a2"][2], "1704038399999999");
    assert_eq!(d["a3"][2], "1704067200000000", "Z is honored");
    assert_eq!(d["a4"][2], "1704038399000000", "Z on the previous day is honored");
    assert_eq!(d["a1"][3], "1234567890123.456789");
    assert_eq!(d["a2"][3], "99999999999999999999.999999");
    assert_eq!(d["a3"][3], "100.000000");
    assert_eq!(d["a2"][1], TEXT_2);
    assert_eq!(d["a1"][1], TEXT_1);
    assert_eq!(d["a5"][2..], ["NULL"; 6]);

    // rows: every key present (NULL is null), decimals exact strings, times local with offset.
    assert_rows(&rows(&app, &steward, &id).await, "rows");

    // changes: the same values.
    let v = get(&steward, app.url(&format!("/api/v1/resources/{id}/changes?since_version=0"))).await;
    let mut changed: Vec<Value> = v["inserted"].as_array().unwrap().clone();
    for r in &mut changed {
        r.as_object_mut().unwrap().retain(|k, _| !k.starts_with('_'));
    }
    let changed = by_code(&changed);
    assert_eq!(changed.len(), 4, "{v}");
    for (k, r) in &changed {
        assert_eq!(r, &expected()[k.as_str()], "changes: row {k}");
    }

    // CKAN objects and lists.
    let v = get(&steward, app.url(&format!("/api/3/action/datastore_search?resource_id={id}&limit=100"))).await;
    let mut records = v["result"]["records"].as_array().unwrap().clone();
    for r in &mut records {
        assert!(r["_id"].is_i64(), "{r}");
        r.as_object_mut().unwrap().remove("_id");
    }
    assert_rows(&by_code(&records), "ckan objects");

    // SQL: the same values; decimals and sums exact; decimal literals are decimals.
    let sql = |q: String| {
        let c = steward.clone();
        let url = app.url("/api/v1/sql");
        async move {
            let r = c.post(url).json(&json!({ "sql": q })).send().await.unwrap();
            let status = r.status();
            let v: Value = r.json().await.unwrap();
            assert_eq!(status, 200, "{q}: {v}");
            v
        }
    };
    let code = get(&steward, app.url(&format!("/api/v1/resources/{id}"))).await["code"].as_str().unwrap().to_string();
    let v = sql(format!("SELECT * FROM \"{code}\"")).await;
    assert_rows(&by_code(v["rows"].as_array().unwrap()), "sql");
    assert_eq!(v["row_limit"], 10000, "the row cap is reported");
    assert_eq!(v["truncated"], false);
    let v = sql(format!(
        "SELECT sum(amount) AS s, sum(fee) AS f, max(amount) AS m, min(amount) + 0.000001 AS z FROM \"{code}\""
    ))
    .await;
    assert_eq!(v["rows"][0]["s"], "100000001234567890223.456787", "{v}");
    assert_eq!(v["rows"][0]["f"], "-99999987.48", "{v}");
    assert_eq!(v["rows"][0]["m"], "99999999999999999999.999999", "{v}");
    assert_eq!(v["rows"][0]["z"], "0.000000", "{v}");

    // One time model: naive literals are local, `Z` is UTC, on every surface.
    let before_local_midnight = ["a2", "a4"];
    let v = sql(format!("SELECT code FROM \"{code}\" WHERE ts < '2024-01-01' ORDER BY code")).await;
    let got: Vec<&str> = v["rows"].as_array().unwrap().iter().map(|r| r["code"].as_str().unwrap()).collect();
    assert_eq!(got, before_local_midnight, "SQL: a naive literal is local time");
    let v = get(
        &steward,
        app.url(&format!("/api/v1/resources/{id}/rows?filter=ts%20%3C%20'2024-01-01'&sort=code&limit=100")),
    )
    .await;
    let got: Vec<&str> = v["rows"].as_array().unwrap().iter().map(|r| r["code"].as_str().unwrap()).collect();
    assert_eq!(got, before_local_midnight, "rows: a naive literal is local time");
    for q in ["ts = '2024-01-01T00:00:00Z'", "ts = '2024-01-01 08:00:00'", "ts = '2024-01-01T08:00:00+08:00'"] {
        let v =
            get(&steward, app.url(&format!("/api/v1/resources/{id}/rows?filter={}&limit=100", urlencoding(q)))).await;
        let got: Vec<&str> = v["rows"].as_array().unwrap().iter().map(|r| r["code"].as_str().unwrap()).collect();
        assert_eq!(got, ["a3"], "rows filter {q}");
        let v = sql(format!("SELECT code FROM \"{code}\" WHERE {q}")).await;
        assert_eq!(v["rows"], json!([{"code": "a3"}]), "SQL {q}");
    }
    let filters = json!({"ts": "2024-01-01T00:00:00Z"}).to_string();
    let v = get(
        &steward,
        app.url(&format!("/api/3/action/datastore_search?resource_id={id}&filters={}", urlencoding(&filters))),
    )
    .await;
    assert_eq!(v["result"]["records"].as_array().unwrap().len(), 1, "CKAN filters honor Z: {v}");
    assert_eq!(v["result"]["records"][0]["code"], "a3");
    // date_trunc groups by the local day.
    let v = sql(format!(
        "SELECT date_trunc('day', ts) AS d, count(*) AS n FROM \"{code}\" WHERE ts IS NOT NULL GROUP BY 1 ORDER BY 1"
    ))
    .await;
    assert_eq!(
        v["rows"],
        json!([{"d": "2023-12-31T00:00:00+08:00", "n": 2}, {"d": "2024-01-01T00:00:00+08:00", "n": 2}]),
        "{v}"
    );

    // Aggregates: decimal sums and averages exact.
    let v = get(
        &steward,
        app.url(&format!("/api/v1/resources/{id}/aggregate?metrics=count,sum(amount),avg(fee),max(fee)")),
    )
    .await;
    assert_eq!(v["rows"][0]["sum_amount"], "100000001234567890223.456787", "{v}");
    // (12.50 + 0.01 − 99999999.99) / 3, in decimal.
    assert_eq!(v["rows"][0]["avg_fee"], "-33333329.160000", "{v}");
    assert_eq!(v["rows"][0]["max_fee"], "12.50", "{v}");
    // By local day (the same rule as SQL's date_trunc); NULLs last.
    let v = get(&steward, app.url(&format!("/api/v1/resources/{id}/aggregate?group_by=ts&bucket=day"))).await;
    assert_eq!(
        v["rows"],
        json!([
            {"ts": "2023-12-31T00:00:00+08:00", "count": 2},
            {"ts": "2024-01-01T00:00:00+08:00", "count": 2},
            {"ts": null, "count": 1}
        ]),
        "{v}"
    );
    let v = get(&steward, app.url(&format!("/api/v1/resources/{id}/aggregate?group_by=day&bucket=month"))).await;
    assert_eq!(
        v["rows"],
        json!([
            {"day": "1970-01-01", "count": 1},
            {"day": "2023-12-01", "count": 1},
            {"day": "2024-01-01", "count": 1},
            {"day": null, "count": 2}
        ]),
        "{v}"
    );
    // Counts by one text item (counted without DataFusion's grouping) are SQL's GROUP BY's:
    // the same groups and counts, NULL a group of its own and last.
    for item in ["txt", "code"] {
        let v = get(&steward, app.url(&format!("/api/v1/resources/{id}/aggregate?group_by={item}"))).await;
        let q =
            sql(format!("SELECT {item}, count(*) AS count FROM \"{code}\" GROUP BY {item} ORDER BY {item} NULLS LAST"))
                .await;
        assert_eq!(v["rows"], q["rows"], "group_by={item}: {v} against {q}");
        assert!(v["rows"].as_array().unwrap().len() > 1, "{v}");
    }
    // Sorted reads put NULLs last ascending and first descending (PostgreSQL's rule).
    let v = get(&steward, app.url(&format!("/api/v1/resources/{id}/rows?sort=n&fields=code,n"))).await;
    let codes: Vec<&str> = v["rows"].as_array().unwrap().iter().map(|r| r["code"].as_str().unwrap()).collect();
    assert_eq!(&codes[..3], ["a2", "a1", "a4"], "{v}");
    let v = get(&steward, app.url(&format!("/api/v1/resources/{id}/rows?sort=-n&fields=code,n"))).await;
    let codes: Vec<&str> = v["rows"].as_array().unwrap().iter().map(|r| r["code"].as_str().unwrap()).collect();
    assert_eq!(&codes[2..], ["a4", "a1", "a2"], "{v}");
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

#[tokio::test]
async fn errors_not_500s_for_versions_past_the_current_one() {
    let app = spawn_app().await;
    let steward = app.login("wjw-steward").await;
    let id = create(&app, &steward, "版本错误").await;
    upload(&app, &steward, &id, "format=ndjson", fixture()).await;
    for path in [
        format!("/api/v1/resources/{id}/export?format=csv&version=99"),
        format!("/api/v1/resources/{id}/rows?version=99"),
        format!("/api/v1/resources/{id}/aggregate?version=99"),
    ] {
        let r = steward.get(app.url(&path)).send().await.unwrap();
        let body = assert_error(r, 404, "version_not_found").await;
        assert!(body["error"]["message"].as_str().unwrap().contains("99"), "{path}: {body}");
    }
    let r = steward.get(app.url(&format!("/api/v1/resources/{id}/changes?since_version=5"))).send().await.unwrap();
    let body = assert_error(r, 400, "validation_failed").await;
    assert!(body.to_string().contains("since_version"), "{body}");
    assert!(body.to_string().contains("current version 0"), "{body}");
    // count=estimated answers a count.
    let v = get(&steward, app.url(&format!("/api/v1/resources/{id}/rows?count=estimated&limit=1"))).await;
    assert_eq!(v["total"], 5, "{v}");
    let _ = new_client();
}

async fn export(app: &TestApp, c: &reqwest::Client, id: &str, query: &str) -> Vec<u8> {
    let r = c.get(app.url(&format!("/api/v1/resources/{id}/export?{query}"))).send().await.unwrap();
    assert_eq!(r.status(), 200, "{query}");
    r.bytes().await.unwrap().to_vec()
}

#[tokio::test]
async fn every_export_format_re_uploads_to_the_same_table() {
    let app = spawn_app().await;
    let steward = app.login("wjw-steward").await;
    let source = create(&app, &steward, "导出源").await;
    upload(&app, &steward, &source, "format=ndjson", fixture()).await;
    assert_rows(&rows(&app, &steward, &source).await, "source");
    // The exports write the one documented form: times RFC 3339 with the zone's offset,
    // decimals exact at their scale (exact JSON numbers in NDJSON/JSON), NULL as null.
    let csv = String::from_utf8(export(&app, &steward, &source, "format=csv").await).unwrap();
    for want in
        ["2024-01-01T00:00:00+08:00", "2023-12-31T23:59:59.999999+08:00", "99999999999999999999.999999", "100.000000"]
    {
        assert!(csv.contains(want), "{want} missing from {csv}");
    }
    assert!(csv.contains("'+86 138-0000-0000"), "the formula-safe CSV neutralizes it: {csv}");
    let ndjson = String::from_utf8(export(&app, &steward, &source, "format=ndjson").await).unwrap();
    for want in
        ["\"amount\":1234567890123.456789", "\"fee\":12.50", "\"ts\":\"2024-01-01T08:00:00+08:00\"", "\"txt\":null"]
    {
        assert!(ndjson.contains(want), "{want} missing from {ndjson}");
    }
    let target = create(&app, &steward, "回传目标").await;
    for (export_query, upload_query) in [
        ("format=csv", "format=csv"),
        ("format=csv&bom=true", "format=csv"),
        ("format=csv&header=title", "format=csv"),
        // Detected without `encoding=`.
        ("format=csv&encoding=gb18030", "format=csv"),
        ("format=csv&encoding=gb18030&header=title", "format=csv"),
        ("format=ndjson", "format=ndjson"),
        ("format=json", "format=json"),
        ("format=parquet", "format=parquet"),
        ("format=xlsx", "format=xlsx"),
        ("format=xlsx&header=title", "format=xlsx"),
    ] {
        let file = export(&app, &steward, &source, export_query).await;
        upload(&app, &steward, &target, &format!("{upload_query}&mode=replace"), file).await;
        assert_rows(&rows(&app, &steward, &target).await, export_query);
    }
    // Upserting the same rows again changes nothing: no updates in the change feed.
    let before = get(&steward, app.url(&format!("/api/v1/resources/{target}/versions"))).await;
    let current = before[0]["version"].as_i64().unwrap();
    let file = export(&app, &steward, &source, "format=csv").await;
    upload(&app, &steward, &target, "format=csv&mode=upsert", file).await;
    let v = get(&steward, app.url(&format!("/api/v1/resources/{target}/changes?since_version={current}"))).await;
    assert_eq!(v["updated"], json!([]), "{v}");
    assert_eq!(v["inserted"], json!([]), "{v}");
    assert_rows(&rows(&app, &steward, &target).await, "after upsert");
}

#[tokio::test]
async fn parquet_exports_use_plain_logical_types_with_titles() {
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    let app = spawn_app().await;
    let steward = app.login("wjw-steward").await;
    let id = create(&app, &steward, "Parquet类型").await;
    upload(&app, &steward, &id, "format=ndjson", fixture()).await;
    let file = export(&app, &steward, &id, "format=parquet").await;
    let b = ParquetRecordBatchReaderBuilder::try_new(bytes::Bytes::from(file)).unwrap();
    let schema = b.schema().clone();
    use arrow::datatypes::{DataType as A, TimeUnit};
    let types: Vec<(String, A, String)> = schema
        .fields()
        .iter()
        .map(|f| (f.name().clone(), f.data_type().clone(), f.metadata().get("title").cloned().unwrap_or_default()))
        .collect();
    assert_eq!(
        types,
        vec![
            ("code".into(), A::Utf8, "编号".into()),
            ("txt".into(), A::Utf8, "名称".into()),
            ("ts".into(), A::Timestamp(TimeUnit::Microsecond, Some("+08:00".into())), "更新时间".into()),
            ("amount".into(), A::Decimal128(38, 6), "数值".into()),
            ("fee".into(), A::Decimal128(20, 2), "金额".into()),
            ("day".into(), A::Date32, "日期".into()),
            ("n".into(), A::Int64, "数量".into()),
            ("flag".into(), A::Boolean, "标志".into()),
        ]
    );
}

#[tokio::test]
async fn ckan_datastore_search_behaves_like_ckan() {
    let app = spawn_app().await;
    let steward = app.login("wjw-steward").await;
    let id = create(&app, &steward, "CKAN一致性").await;
    upload(&app, &steward, &id, "format=ndjson", fixture()).await;
    let call = |body: Value| {
        let c = steward.clone();
        let url = app.url("/api/3/action/datastore_search");
        async move {
            let r = c.post(url).json(&body).send().await.unwrap();
            let status = r.status();
            let v: Value = r.json().await.unwrap();
            assert_eq!(status, 200, "{body}: {v}");
            v["result"].clone()
        }
    };
    // `_id` first; records are objects with every field.
    let v = call(json!({"resource_id": id, "sort": "code", "limit": 2})).await;
    assert_eq!(v["fields"][0], json!({"id": "_id", "type": "int"}));
    assert_eq!(v["records"][0]["_id"], 1);
    assert_eq!(v["records"][1]["_id"], 2);
    assert_eq!(v["records"][0]["code"], "a1");
    // csv: RFC 4180 quoting, NULL empty, every record ending with a newline.
    let v =
        call(json!({"resource_id": id, "sort": "code", "fields": ["code", "txt", "amount"], "records_format": "csv"}))
            .await;
    let text = v["records"].as_str().unwrap();
    let mut r = ::csv::ReaderBuilder::new().has_headers(false).from_reader(text.as_bytes());
    let recs: Vec<Vec<String>> = r.records().map(|x| x.unwrap().iter().map(String::from).collect()).collect();
    assert_eq!(recs.len(), 5, "{text}");
    assert_eq!(recs[0], ["a1", TEXT_1, "1234567890123.456789"]);
    assert_eq!(recs[1], ["a2", TEXT_2, "99999999999999999999.999999"]);
    assert_eq!(recs[2], ["a3", "", "100.000000"]);
    assert!(text.ends_with('\n'), "{text:?}");
    assert!(!text.contains("_id"), "fields without _id leave it out");
    // tsv: a tab inside a cell is quoted.
    let v = call(json!({"resource_id": id, "sort": "code", "fields": "code,txt", "records_format": "tsv", "limit": 2}))
        .await;
    let text = v["records"].as_str().unwrap();
    let mut r = ::csv::ReaderBuilder::new().has_headers(false).delimiter(b'\t').from_reader(text.as_bytes());
    let recs: Vec<Vec<String>> = r.records().map(|x| x.unwrap().iter().map(String::from).collect()).collect();
    assert_eq!(recs, [["a1", TEXT_1], ["a2", TEXT_2]]);
    // _links.next keeps every parameter; following it reads the next rows of the same query.
    let filters = json!({"code": ["a1", "a2", "a3", "a4"]});
    let v =
        call(json!({"resource_id": id, "filters": filters, "sort": "code desc", "fields": ["code"], "limit": 2})).await;
    assert_eq!(v["records"], json!([{"code": "a4"}, {"code": "a3"}]), "{v}");
    let next = v["_links"]["next"].as_str().unwrap().to_string();
    for p in ["filters=", "sort=", "fields=", "limit=2", "offset=2"] {
        assert!(next.contains(p), "{p} missing from {next}");
    }
    let url = if next.starts_with("http") { next } else { app.url(&next) };
    let v = get(&steward, url).await;
    assert_eq!(v["result"]["records"], json!([{"code": "a2"}, {"code": "a1"}]), "{v}");
    let prev = v["result"]["_links"]["prev"].as_str().unwrap();
    assert!(prev.contains("offset=0") && prev.contains("filters="), "{prev}");
    // q as an object searches per field.
    let v = call(json!({"resource_id": id, "q": {"txt": "𠮷"}, "fields": ["code"]})).await;
    assert_eq!(v["records"], json!([{"code": "a2"}]), "{v}");
    let v =
        call(json!({"resource_id": id, "q": {"txt": "引号"}, "fields": ["code"], "total_estimation_threshold": 1000}))
            .await;
    assert_eq!(v["records"], json!([{"code": "a1"}]), "{v}");
    assert_eq!(v["total"], 1);
    assert_eq!(v["total_was_estimated"], false);
    // include_total=false leaves the total out.
    let v = call(json!({"resource_id": id, "include_total": false, "limit": 1})).await;
    assert!(v.get("total").is_none(), "{v}");
}

#[tokio::test]
async fn binary_items_round_trip_as_base64_in_every_format() {
    let app = spawn_app().await;
    let steward = app.login("wjw-steward").await;
    let body = |name: &str| {
        let mut r = resource(name);
        r["items"] = json!([
            {"name": "code", "title": "编号", "key": true},
            {"name": "blob", "title": "附件", "data_type": "binary"}
        ]);
        r
    };
    let mut ids = vec![];
    for name in ["二进制源", "二进制目标"] {
        let r = steward.post(app.url("/api/v1/resources")).json(&body(name)).send().await.unwrap();
        assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
        let id = r.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_string();
        let r = steward.post(app.url(&format!("/api/v1/resources/{id}/publish"))).send().await.unwrap();
        assert_eq!(r.status(), 200);
        ids.push(id);
    }
    let (source, target) = (&ids[0], &ids[1]);
    // 0x00 0x01 0x02 0xFF and 0xFB 0xFF (base64 starting with "+").
    let file = "{\"code\":\"b1\",\"blob\":\"AAEC/w==\"}\n{\"code\":\"b2\",\"blob\":\"+/8=\"}\n{\"code\":\"b3\",\"blob\":null}\n";
    upload(&app, &steward, source, "format=ndjson", file.as_bytes().to_vec()).await;
    let want =
        json!([{"code": "b1", "blob": "AAEC/w=="}, {"code": "b2", "blob": "+/8="}, {"code": "b3", "blob": null}]);
    let read = |id: String| {
        let c = steward.clone();
        let url = app.url(&format!("/api/v1/resources/{id}/rows?sort=code"));
        async move { get(&c, url).await["rows"].clone() }
    };
    assert_eq!(read(source.clone()).await, want);
    for (export_query, upload_query) in [
        ("format=csv", "format=csv"),
        ("format=csv&encoding=gb18030", "format=csv"),
        ("format=ndjson", "format=ndjson"),
        ("format=json", "format=json"),
        ("format=parquet", "format=parquet"),
        ("format=xlsx", "format=xlsx"),
    ] {
        let file = export(&app, &steward, source, export_query).await;
        upload(&app, &steward, target, &format!("{upload_query}&mode=replace"), file).await;
        assert_eq!(read(target.clone()).await, want, "{export_query}");
    }
}

/// `count=estimated` extrapolates from a sample on a large table with filters and says so; CKAN's
/// `total_estimation_threshold` keeps an estimate only above the threshold; under a grant's row
/// filter the count stays exact (an estimate there would scale by the whole table's size, which
/// that grantee may not learn).
#[tokio::test]
async fn count_estimated_is_an_estimate_only_where_it_may_be() {
    let app = spawn_app().await;
    let steward = app.login("wjw-steward").await;
    let mut res = resource("估算计数");
    res["share"] = json!({"type": "conditional", "method": "file", "conditions": "仅限统计"});
    res["open"] = json!({"type": "none"});
    let r = steward.post(app.url("/api/v1/resources")).json(&res).send().await.unwrap();
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
    let id = r.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_string();
    let r = steward.post(app.url(&format!("/api/v1/resources/{id}/publish"))).send().await.unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    // 120,000 rows: in the first 100,000 (the sample) every fourth is `a`; the last 20,000 are
    // all `a`. Exactly 45,000 match; the sample says a quarter, so the estimate is 30,000.
    // (Rows are stored in key order: the keys are zero-padded so that it is this order.)
    let sample = 100_000;
    let mut csv = String::from("code,txt\n");
    for i in 0..120_000 {
        let a = if i < sample { i % 4 == 0 } else { true };
        csv.push_str(&format!("k{i:06},{}\n", if a { "a" } else { "b" }));
    }
    upload(&app, &steward, &id, "format=csv", csv.into_bytes()).await;
    let rows = |q: &str| app.url(&format!("/api/v1/resources/{id}/rows?limit=1&{q}"));
    let v = get(&steward, rows("count=estimated")).await;
    assert_eq!((v["total"].clone(), v["total_estimated"].clone()), (json!(120_000), json!(false)), "{v}");
    let filter = urlencoding("txt = 'a'");
    let v = get(&steward, rows(&format!("count=estimated&filter={filter}"))).await;
    assert_eq!((v["total"].clone(), v["total_estimated"].clone()), (json!(30_000), json!(true)), "{v}");
    let v = get(&steward, rows(&format!("count=exact&filter={filter}"))).await;
    assert_eq!((v["total"].clone(), v["total_estimated"].clone()), (json!(45_000), json!(false)), "{v}");

    let ckan = |threshold: u64| {
        let filters = urlencoding(r#"{"txt":"a"}"#);
        app.url(&format!(
            "/api/3/action/datastore_search?resource_id={id}&limit=1&filters={filters}&total_estimation_threshold={threshold}"
        ))
    };
    let v = get(&steward, ckan(10)).await;
    assert_eq!(
        (v["result"]["total"].clone(), v["result"]["total_was_estimated"].clone()),
        (json!(30_000), json!(true))
    );
    let v = get(&steward, ckan(50_000)).await;
    assert_eq!(
        (v["result"]["total"].clone(), v["result"]["total_was_estimated"].clone()),
        (json!(45_000), json!(false))
    );

    // A grantee under a row filter gets the exact count of the rows it may read.
    let r = steward
        .post(app.url("/api/v1/grants"))
        .json(&json!({"resource_id": id, "grantee": {"department": "gaj"}, "fields": ["code", "txt"],
                      "row_filter": "txt = 'a'", "purpose": "统计", "expires_at": "2099-01-01T00:00:00Z"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
    let gaj = app.login("gaj-steward").await;
    let v = get(&gaj, rows("count=estimated")).await;
    assert_eq!((v["total"].clone(), v["total_estimated"].clone()), (json!(45_000), json!(false)), "{v}");
}

/// The Parquet export as pyarrow (from PyPI) reads it: it filters and sorts the strings, keeps
/// the decimals exact, the times with their zone and the titles as field metadata.
#[tokio::test]
async fn pyarrow_filters_sorts_and_sums_the_parquet_export() {
    let Some(python) = citydata_testkit::python_with("pyarrow") else { return };
    let app = spawn_app().await;
    let steward = app.login("wjw-steward").await;
    let id = create(&app, &steward, "pyarrow读取").await;
    upload(&app, &steward, &id, "format=ndjson", fixture()).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("export.parquet");
    std::fs::write(&path, export(&app, &steward, &id, "format=parquet").await).unwrap();
    let script = r#"
import json, os, sys
import pyarrow.compute as pc, pyarrow.parquet as pq
t = pq.read_table(sys.argv[1])
kept = t.filter(pc.starts_with(t["code"], "a")).sort_by([("code", "descending")])
out = {
    "codes": kept["code"].to_pylist(),
    "code_type": str(t.schema.field("code").type),
    "title": t.schema.field("ts").metadata[b"title"].decode(),
    "ts_type": str(t.schema.field("ts").type),
    "a1_ts": t.filter(pc.equal(t["code"], "a1"))["ts"][0].as_py().isoformat(),
    "amount_sum": str(pc.sum(t["amount"]).as_py()),
    "amount_type": str(t.schema.field("amount").type),
}
print(json.dumps(out, ensure_ascii=False))
# No interpreter teardown: pyarrow's threads can abort the process at exit under load.
sys.stdout.flush()
os._exit(0)
"#;
    let out = std::process::Command::new(python).args(["-c", script]).arg(&path).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        v,
        json!({
            "codes": ["a5", "a4", "a3", "a2", "a1"],
            "code_type": "string",
            "title": "更新时间",
            "ts_type": "timestamp[us, tz=+08:00]",
            "a1_ts": "2024-01-01T00:00:00+08:00",
            // 1234567890123.456789 + 99999999999999999999.999999 + 100 - 0.000001, exactly.
            "amount_sum": "100000001234567890223.456787",
            "amount_type": "decimal128(38, 6)",
        })
    );
}
