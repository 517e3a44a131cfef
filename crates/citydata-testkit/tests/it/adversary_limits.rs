//! Issue #11, classes 6 and 7: an attacker over HTTP against the demo app. Limits for every
//! caller (nesting, sizes, decompression, login throttling, hashing) and output hygiene (CSV
//! injection, security headers, `/metrics`, `next=`, webhook destinations). Every refusal is a
//! clear 4xx (or 429/503 with `Retry-After`) in Chinese first, and the server stays up.

use crate::support::csrf_of;
use citydata_core::demo::generate::{Register, generate_listing};
use citydata_testkit::{DEMO_PASSWORD, SpawnOptions, TestApp, assert_error, new_client, spawn_app, spawn_app_with};
use serde_json::{Value, json};
use std::time::Instant;

const ENT: &str = "102%2F000001";

/// The server still answers.
async fn assert_up(app: &TestApp) {
    let r = new_client().get(app.url("/healthz")).send().await.expect("the server is still up");
    assert_eq!(r.status(), 200);
}

/// The field error's code in a 400 `validation_failed` envelope.
async fn field_code(resp: reqwest::Response) -> (String, String) {
    let body = assert_error(resp, 400, "validation_failed").await;
    let f = &body["error"]["details"]["fields"][0];
    (f["code"].as_str().unwrap_or("").to_string(), f["message"].as_str().unwrap_or("").to_string())
}

async fn load_enterprises(app: &TestApp, rows: u64) -> String {
    let scj = app.login("scjgj-steward").await;
    let mut ent = Vec::new();
    generate_listing(Register::Enterprise, rows, 0.0, 6, false, &mut ent).unwrap();
    let ent = String::from_utf8(ent).unwrap();
    let r = scj.post(app.url(&format!("/api/v1/resources/{ENT}/data"))).body(ent.clone()).send().await.unwrap();
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
    ent
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

// ---------------------------------------------------------------------------------------------
// Class 6: limits

#[tokio::test]
async fn a_deeply_nested_or_long_filter_is_refused_and_the_server_stays_up() {
    let app = spawn_app().await;
    load_enterprises(&app, 50).await;
    let anon = new_client();
    let rows = |filter: String| {
        let url = app.url(&format!("/api/v1/resources/{ENT}/rows"));
        anon.get(url).query(&[("filter", filter)]).send()
    };
    // ~1,900 nested parentheses used to overflow the parser's stack and abort the process.
    let deep = format!("{}区县 = '海陵区'{}", "(".repeat(1900), ")".repeat(1900));
    let (code, message) = field_code(rows(deep).await.unwrap()).await;
    assert_eq!(code, "filter_too_deep");
    assert!(message.contains("第 33 个字符") && message.contains("32"), "names the position: {message}");
    assert_up(&app).await;
    let nots = format!("{}区县 = '海陵区'", "NOT ".repeat(900));
    assert_eq!(field_code(rows(nots).await.unwrap()).await.0, "filter_too_deep");
    // A long AND chain builds a deep tree without any parenthesis.
    let chain = ["区县 = '海陵区'"; 201].join(" AND ");
    assert_eq!(field_code(rows(chain).await.unwrap()).await.0, "filter_too_complex");
    // The largest allowed filter still runs (the planner walks its 200-deep tree).
    let chain = ["区县 = '海陵区'"; 200].join(" OR ");
    let started = Instant::now();
    let r = rows(chain).await.unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    eprintln!("200-predicate filter answered in {:?}", started.elapsed());
    assert_up(&app).await;
}

#[tokio::test]
async fn nested_search_text_is_refused_on_every_search_surface() {
    let app = spawn_app().await;
    let c = new_client();
    let deep = format!("{}人口{}", "(".repeat(800), ")".repeat(800));
    // CKAN: 400 in CKAN's validation error shape.
    for (param, value) in [("q", deep.as_str()), ("fq", &format!("tags:{deep}"))] {
        let r = c.get(app.url("/api/3/action/package_search")).query(&[(param, value)]).send().await.unwrap();
        assert_eq!(r.status(), 400, "{param}");
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["success"], false);
        assert_eq!(v["error"]["__type"], "Validation Error");
        assert_eq!(v["error"]["code"], "query_too_deep", "{v}");
        assert!(v["error"][param][0].as_str().unwrap().contains("嵌套"), "{v}");
        assert_up(&app).await;
    }
    let long = "人口 ".repeat(400);
    let r = c.get(app.url("/api/3/action/package_search")).query(&[("q", &long)]).send().await.unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(r.json::<Value>().await.unwrap()["error"]["code"], "query_too_long");
    // REST search.
    let r = c.get(app.url("/api/v1/search")).query(&[("q", &deep)]).send().await.unwrap();
    assert_eq!(field_code(r).await.0, "query_too_deep");
    // The portal's dataset search.
    let r = c.get(app.url("/datasets")).query(&[("q", &deep)]).send().await.unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("嵌套"));
    // Ordinary searches still work.
    let r =
        c.get(app.url("/api/3/action/package_search")).query(&[("q", "(人口 OR 企业) AND 登记")]).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_up(&app).await;
}

#[tokio::test]
async fn json_nesting_is_bounded_by_the_parser_before_merge_patch_recurses() {
    let app = spawn_app().await;
    let gaj = app.login("gaj-steward").await;
    let nested = |depth: usize| format!("{}1{}", "{\"a\":".repeat(depth), "}".repeat(depth));
    let patch = |body: String| {
        gaj.patch(app.url("/api/v1/resources/101%2F000001"))
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    // serde_json refuses nesting past 128 levels, so merge_patch never recurses deeper.
    assert_error(patch(nested(100_000)).await.unwrap(), 400, "malformed_json").await;
    assert_error(patch(nested(200)).await.unwrap(), 400, "malformed_json").await;
    // Within the limit the patch is merged and refused by validation (no such element).
    let r = patch(format!("{{\"extra\":{}}}", nested(120))).await.unwrap();
    assert!(r.status().is_client_error(), "{}", r.status());
    assert_up(&app).await;
}

#[tokio::test]
async fn uploads_and_imports_check_permission_before_reading_the_file() {
    let app = spawn_app().await;
    let garbage = vec![b'\x01'; 5 * 1024 * 1024];
    let wjw = app.login("wjw-analyst").await;
    let r = wjw.post(app.url("/api/v1/resources/101%2F000001/data")).body(garbage.clone()).send().await.unwrap();
    assert_error(r, 403, "forbidden").await;
    let r =
        wjw.post(app.url("/api/v1/catalog/import?format=xlsx")).body(b"not a workbook".to_vec()).send().await.unwrap();
    assert_error(r, 403, "forbidden").await;
    let r = wjw.post(app.url("/api/v1/catalog/import?format=csv")).body(b"a,b\n1".to_vec()).send().await.unwrap();
    assert_error(r, 403, "forbidden").await;
    let r = new_client().post(app.url("/api/v1/catalog/import")).body(garbage).send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert_up(&app).await;
}

/// Raw deflate of `prefix`, then `chunks` MiB of ASCII zeros, then `suffix`, with the CRC-32
/// and size of the whole. Each piece ends in a full flush, so one compressed MiB of zeros can
/// be repeated: building a bomb of hundreds of MiB costs a few milliseconds, as it would for an
/// attacker.
fn deflate_bomb(prefix: &[u8], chunks: usize, suffix: &[u8]) -> (Vec<u8>, u32, u64) {
    use flate2::{Compress, Compression, Crc, FlushCompress};
    let piece = |c: &mut Compress, data: &[u8], flush: FlushCompress| {
        let mut out = Vec::with_capacity(data.len() + 1024);
        c.compress_vec(data, &mut out, flush).unwrap();
        out
    };
    let zeros = vec![b'0'; 1 << 20];
    let mut c = Compress::new(Compression::best(), false);
    let mut out = piece(&mut c, prefix, FlushCompress::Full);
    let block = piece(&mut c, &zeros, FlushCompress::Full);
    let mut crc = Crc::new();
    crc.update(prefix);
    let mut zeros_crc = Crc::new();
    zeros_crc.update(&zeros);
    for _ in 0..chunks {
        out.extend_from_slice(&block);
        crc.combine(&zeros_crc);
    }
    out.extend(piece(&mut c, suffix, FlushCompress::Finish));
    let mut tail = Crc::new();
    tail.update(suffix);
    crc.combine(&tail);
    (out, crc.sum(), (prefix.len() + chunks * zeros.len() + suffix.len()) as u64)
}

/// A zip archive (deflated members) written by hand, as an attacker would.
fn zip_of(members: &[(&str, Vec<u8>, u32, u64)]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut central = Vec::new();
    for (name, data, crc, size) in members {
        let offset = out.len() as u32;
        let head = |sig: u32, central: bool| {
            let mut h = Vec::new();
            h.extend(sig.to_le_bytes());
            if central {
                h.extend(20u16.to_le_bytes());
            }
            for v in [20u16, 0, 8, 0, 0x21] {
                h.extend(v.to_le_bytes());
            }
            h.extend(crc.to_le_bytes());
            h.extend((data.len() as u32).to_le_bytes());
            h.extend((*size as u32).to_le_bytes());
            h.extend((name.len() as u16).to_le_bytes());
            h.extend(0u16.to_le_bytes());
            if central {
                for v in [0u16, 0, 0] {
                    h.extend(v.to_le_bytes());
                }
                h.extend(0u32.to_le_bytes());
                h.extend(offset.to_le_bytes());
            }
            h.extend(name.as_bytes());
            h
        };
        out.extend(head(0x04034b50, false));
        out.extend(data);
        central.extend(head(0x02014b50, true));
    }
    let cd_offset = out.len() as u32;
    out.extend(&central);
    out.extend(0x06054b50u32.to_le_bytes());
    for v in [0u16, 0, members.len() as u16, members.len() as u16] {
        out.extend(v.to_le_bytes());
    }
    out.extend((central.len() as u32).to_le_bytes());
    out.extend(cd_offset.to_le_bytes());
    out.extend(0u16.to_le_bytes());
    out
}

/// A minimal workbook whose one sheet expands to `mib` MiB.
fn xlsx_bomb(mib: usize) -> Vec<u8> {
    let small = [
        (
            "[Content_Types].xml",
            r#"<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" ContentType="application/xml"/><Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/><Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/></Types>"#,
        ),
        (
            "_rels/.rels",
            r#"<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="xl/workbook.xml"/></Relationships>"#,
        ),
        (
            "xl/workbook.xml",
            r#"<?xml version="1.0" encoding="UTF-8"?><workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"><sheets><sheet name="资源" sheetId="1" r:id="rId1"/></sheets></workbook>"#,
        ),
        (
            "xl/_rels/workbook.xml.rels",
            r#"<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" Target="worksheets/sheet1.xml"/></Relationships>"#,
        ),
    ];
    let mut members: Vec<(&str, Vec<u8>, u32, u64)> = small
        .iter()
        .map(|(n, t)| {
            let (d, c, s) = deflate_bomb(t.as_bytes(), 0, b"");
            (*n, d, c, s)
        })
        .collect();
    let (d, c, s) = deflate_bomb(
        br#"<?xml version="1.0" encoding="UTF-8"?><worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData><row r="1"><c r="A1" t="inlineStr"><is><t>"#,
        mib,
        b"</t></is></c></row></sheetData></worksheet>",
    );
    members.push(("xl/worksheets/sheet1.xml", d, c, s));
    zip_of(&members)
}

/// A gzip stream of `header` and `mib` MiB of zeros.
fn gzip_bomb(header: &[u8], mib: usize) -> Vec<u8> {
    let (d, crc, size) = deflate_bomb(header, mib, b"\n");
    let mut out = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];
    out.extend(d);
    out.extend(crc.to_le_bytes());
    out.extend((size as u32).to_le_bytes());
    out
}

#[test]
fn the_bombs_are_well_formed() {
    let mut text = String::new();
    std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(&gzip_bomb(b"a,b\n", 2)[..]), &mut text).unwrap();
    assert_eq!(text.len(), 4 + 2 * 1024 * 1024 + 1);
    let mut z = zip::ZipArchive::new(std::io::Cursor::new(xlsx_bomb(2))).unwrap();
    let mut sheet = z.by_name("xl/worksheets/sheet1.xml").unwrap();
    let mut n = 0;
    let mut buf = vec![0; 1 << 16];
    loop {
        match std::io::Read::read(&mut sheet, &mut buf).unwrap() {
            0 => break,
            k => n += k,
        }
    }
    assert!(n > 2 * 1024 * 1024, "{n}");
}

#[tokio::test]
async fn an_xlsx_zip_bomb_is_refused_before_it_is_opened() {
    let app = spawn_app().await;
    load_enterprises(&app, 20).await;
    let before = version(&app, ENT).await;
    let bomb = xlsx_bomb(300);
    eprintln!("xlsx bomb: {} bytes expanding to 300 MiB", bomb.len());
    assert!(bomb.len() < 1024 * 1024, "{}", bomb.len());
    let scj = app.login("scjgj-steward").await;
    let started = Instant::now();
    let r = scj
        .post(app.url(&format!("/api/v1/resources/{ENT}/data?format=xlsx")))
        .body(bomb.clone())
        .send()
        .await
        .unwrap();
    let body = assert_error(r, 413, "decompressed_too_large").await;
    eprintln!("refused in {:?}: {}", started.elapsed(), body["error"]["message"]);
    assert!(body["error"]["message"].as_str().unwrap().contains("压缩"));
    assert_eq!(version(&app, ENT).await, before, "nothing written");
    assert_up(&app).await;
    // The same file as a catalog import.
    let admin = app.login("admin").await;
    let r = admin.post(app.url("/api/v1/catalog/import?format=xlsx")).body(bomb).send().await.unwrap();
    assert_error(r, 413, "decompressed_too_large").await;
    assert_up(&app).await;
}

#[tokio::test]
async fn a_gzip_bomb_is_refused_while_it_streams() {
    let app = spawn_app().await;
    let ent = load_enterprises(&app, 20).await;
    let before = version(&app, ENT).await;
    let header = format!("{}\n", ent.lines().next().unwrap());
    let gz = gzip_bomb(header.as_bytes(), 300);
    eprintln!("gzip bomb: {} bytes expanding to 300 MiB", gz.len());
    assert!(gz.len() < 1024 * 1024);
    let scj = app.login("scjgj-steward").await;
    for query in ["", "?format=json"] {
        let r =
            scj.post(app.url(&format!("/api/v1/resources/{ENT}/data{query}"))).body(gz.clone()).send().await.unwrap();
        assert_error(r, 413, "decompressed_too_large").await;
        assert_eq!(version(&app, ENT).await, before, "nothing written");
        assert_up(&app).await;
    }
}

#[tokio::test]
async fn one_client_trying_many_usernames_is_throttled() {
    let app = spawn_app().await;
    let c = new_client();
    let login = |u: String, p: &'static str| {
        c.post(app.url("/api/v1/auth/login")).json(&json!({"username": u, "password": p})).send()
    };
    for i in 0..30 {
        let r = login(format!("guess{i}"), "wrong-password").await.unwrap();
        assert_eq!(r.status(), 401, "attempt {i}");
    }
    let r = login("guess30".into(), "wrong-password").await.unwrap();
    assert!(r.headers().get("retry-after").is_some());
    assert_error(r, 429, "rate_limited").await;
    // Even a right password from this client waits: the client is what is throttled.
    let r = login("gaj-steward".into(), DEMO_PASSWORD).await.unwrap();
    assert_eq!(r.status(), 429);
    assert_up(&app).await;
}

#[tokio::test]
async fn forwarded_for_from_an_untrusted_peer_does_not_escape_throttling() {
    let app = spawn_app().await;
    let c = new_client();
    for i in 0..10 {
        let r = c
            .post(app.url("/api/v1/auth/login"))
            .header("x-forwarded-for", format!("203.0.113.{i}"))
            .json(&json!({"username": "gaj-steward", "password": "wrong-password"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401);
    }
    let r = c
        .post(app.url("/api/v1/auth/login"))
        .header("x-forwarded-for", "198.51.100.77")
        .json(&json!({"username": "gaj-steward", "password": "wrong-password"}))
        .send()
        .await
        .unwrap();
    assert!(r.headers().get("retry-after").is_some());
    assert_error(r, 429, "rate_limited").await;
    // The audit log records the real peer, not the forged header.
    let admin = app.login("admin").await;
    let v: Value = admin
        .get(app.url("/api/v1/audit?actor=gaj-steward&action=auth.login"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let text = v.to_string();
    assert!(text.contains("127.0.0.1") && !text.contains("203.0.113.") && !text.contains("198.51.100.77"), "{text}");
}

#[tokio::test]
async fn one_username_from_many_clients_behind_a_trusted_proxy_is_throttled() {
    let app = spawn_app_with(SpawnOptions {
        configure: Some(|s| s.trusted_proxies = vec!["127.0.0.1/32".into()]),
        ..Default::default()
    })
    .await;
    let c = new_client();
    let attempt = |client: String| {
        c.post(app.url("/api/v1/auth/login"))
            .header("x-forwarded-for", client)
            .json(&json!({"username": "gaj-steward", "password": "wrong-password"}))
            .send()
    };
    // Behind the trusted proxy each forwarded address is its own client ...
    for _ in 0..10 {
        assert_eq!(attempt("198.51.100.1".into()).await.unwrap().status(), 401);
    }
    assert_eq!(attempt("198.51.100.1".into()).await.unwrap().status(), 429);
    assert_eq!(attempt("198.51.100.2".into()).await.unwrap().status(), 401);
    // ... but the username itself is throttled across clients (100 failures in the window).
    let mut refused_at = None;
    for i in 0..120 {
        let r = attempt(format!("10.{}.{}.1", i / 200, i % 200)).await.unwrap();
        if r.status() == 429 {
            assert!(r.headers().get("retry-after").is_some());
            refused_at = Some(i);
            break;
        }
        assert_eq!(r.status(), 401);
    }
    assert_eq!(refused_at, Some(100 - 11 - 1 + 1), "11 failures before the loop; the 101st failure is refused");
    assert_up(&app).await;
}

#[tokio::test]
async fn a_saturated_password_hasher_answers_503_with_retry_after() {
    let app = spawn_app_with(SpawnOptions {
        configure: Some(|s| {
            s.password_hash_concurrency = 1;
            s.password_queue_timeout_ms = 1;
        }),
        ..Default::default()
    })
    .await;
    let c = new_client();
    let logins = (0..24).map(|_| {
        c.post(app.url("/api/v1/auth/login"))
            .json(&json!({"username": "gaj-steward", "password": DEMO_PASSWORD}))
            .send()
    });
    let answers = futures::future::join_all(logins).await;
    let mut busy = 0;
    for r in answers {
        let r = r.unwrap();
        match r.status().as_u16() {
            200 => {}
            503 => {
                busy += 1;
                assert_eq!(r.headers()["retry-after"], "2");
                assert_error(r, 503, "busy").await;
            }
            s => panic!("unexpected {s}"),
        }
    }
    assert!(busy > 0, "one hashing slot, 24 logins at once: some must be told to retry");
    assert_up(&app).await;
}

// ---------------------------------------------------------------------------------------------
// Class 7: output hygiene

#[tokio::test]
async fn ckan_csv_records_and_catalog_exports_neutralize_formulas() {
    let app = spawn_app().await;
    let scj = app.login("scjgj-steward").await;
    let mut ent = Vec::new();
    generate_listing(Register::Enterprise, 3, 0.0, 6, false, &mut ent).unwrap();
    let ent = String::from_utf8(ent).unwrap();
    let mut lines: Vec<String> = ent.lines().map(str::to_string).collect();
    for (line, formula) in lines.iter_mut().skip(1).zip(["=1+2", "@SUM(A1)", "-3+4"]) {
        let (head, _) = line.rsplit_once(',').unwrap();
        *line = format!("{head},{formula}");
    }
    let r = scj.post(app.url(&format!("/api/v1/resources/{ENT}/data"))).body(lines.join("\n")).send().await.unwrap();
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
    let search = |safe: Option<bool>| {
        let mut body = json!({"resource_id": "102/000001", "records_format": "csv"});
        if let Some(s) = safe {
            body["csv_safe"] = json!(s);
        }
        scj.post(app.url("/api/3/action/datastore_search")).json(&body).send()
    };
    let v: Value = search(None).await.unwrap().json().await.unwrap();
    let records = v["result"]["records"].as_str().unwrap().to_string();
    for f in ["'=1+2", "'@SUM(A1)", "'-3+4"] {
        assert!(records.contains(f), "{f} in {records}");
    }
    let v: Value = search(Some(false)).await.unwrap().json().await.unwrap();
    let raw = v["result"]["records"].as_str().unwrap().to_string();
    assert!(raw.contains(",=1+2") && !raw.contains('\''), "machine readers opt out: {raw}");
    // The data export (CSV) neutralizes the same cells, with the same opt-out.
    let csv = scj
        .get(app.url(&format!("/api/v1/resources/{ENT}/export?format=csv")))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for f in ["'=1+2", "'@SUM(A1)", "'-3+4"] {
        assert!(csv.contains(f), "{f} in {csv}");
    }
    let csv = scj
        .get(app.url(&format!("/api/v1/resources/{ENT}/export?format=csv&csv_safe=false")))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(csv.contains(",=1+2") && !csv.contains("'="), "machine readers opt out: {csv}");

    // The catalog export: a resource whose abstract is a formula.
    let gaj = app.login("gaj-steward").await;
    let r = gaj
        .patch(app.url("/api/v1/resources/101%2F000001"))
        .json(&json!({"abstract": "=HYPERLINK(\"http://evil.example\",\"点击\")"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let csv = gaj.get(app.url("/api/v1/catalog/export?format=csv")).send().await.unwrap().text().await.unwrap();
    assert!(csv.contains("'=HYPERLINK"), "neutralized in CSV");
    let csv = gaj
        .get(app.url("/api/v1/catalog/export?format=csv&csv_safe=false"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!csv.contains("'=HYPERLINK") && csv.contains("=HYPERLINK"), "opt-out keeps the value");
    let xlsx = gaj.get(app.url("/api/v1/catalog/export?format=xlsx")).send().await.unwrap().bytes().await.unwrap();
    let mut wb: calamine::Xlsx<_> = calamine::open_workbook_from_rs(std::io::Cursor::new(xlsx.to_vec())).unwrap();
    use calamine::Reader;
    let sheet = wb.sheet_names()[0].clone();
    let range = wb.worksheet_range(&sheet).unwrap();
    let cells: Vec<String> = range.cells().map(|(_, _, c)| c.to_string()).collect();
    assert!(cells.iter().any(|c| c.starts_with("'=HYPERLINK")), "neutralized in XLSX");
    // An exported file imports back to the same value.
    let csv = gaj.get(app.url("/api/v1/catalog/export?format=csv")).send().await.unwrap().bytes().await.unwrap();
    let r =
        gaj.post(app.url("/api/v1/catalog/import?format=csv&partial=true")).body(csv.to_vec()).send().await.unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let v: Value = gaj.get(app.url("/api/v1/resources/101%2F000001")).send().await.unwrap().json().await.unwrap();
    assert_eq!(v["abstract"], "=HYPERLINK(\"http://evil.example\",\"点击\")", "{v}");
}

#[tokio::test]
async fn pages_carry_a_content_security_policy_and_api_answers_nosniff() {
    let app = spawn_app().await;
    let c = new_client();
    for path in ["/", "/datasets", "/login", "/help", "/api-docs", "/departments", "/no-such-page"] {
        let r = c.get(app.url(path)).send().await.unwrap();
        let h = r.headers().clone();
        let csp = h.get("content-security-policy").unwrap_or_else(|| panic!("{path}: no CSP")).to_str().unwrap();
        for part in ["default-src 'self'", "frame-ancestors 'none'", "object-src 'none'"] {
            assert!(csp.contains(part), "{path}: {csp}");
        }
        assert!(!csp.contains("unsafe-inline"), "{path}: {csp}");
        assert_eq!(h["x-content-type-options"], "nosniff", "{path}");
        assert_eq!(h["referrer-policy"], "same-origin", "{path}");
        let html = r.text().await.unwrap();
        assert!(
            !html.contains("<script") && !html.contains(" style=") && !html.contains("<style"),
            "{path}: inline code"
        );
    }
    let r = c.get(app.url("/api/v1/departments")).send().await.unwrap();
    assert_eq!(r.headers()["x-content-type-options"], "nosniff");
    let r = c.get(app.url("/api/v1/nothing-here")).send().await.unwrap();
    assert_eq!(r.headers()["x-content-type-options"], "nosniff");
}

#[tokio::test]
async fn metrics_need_a_token_or_their_own_listener() {
    // Not configured: not served.
    let app = spawn_app().await;
    assert_eq!(new_client().get(app.url("/metrics")).send().await.unwrap().status(), 404);
    // With a token: only with the token (an API token does not do).
    let app = spawn_app_with(SpawnOptions {
        configure: Some(|s| s.metrics_token = Some(citydata_server::settings::Secret::new("m-token-123"))),
        ..Default::default()
    })
    .await;
    let c = new_client();
    assert_eq!(c.get(app.url("/metrics")).send().await.unwrap().status(), 401);
    assert_eq!(c.get(app.url("/metrics")).bearer_auth("wrong").send().await.unwrap().status(), 401);
    let api_token = app.token("admin").await;
    assert_eq!(c.get(app.url("/metrics")).bearer_auth(api_token).send().await.unwrap().status(), 401);
    let r = c.get(app.url("/metrics")).bearer_auth("m-token-123").send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().contains("http_requests_total"));
    // On a separate listener: not on the public one.
    let app = spawn_app_with(SpawnOptions {
        configure: Some(|s| s.metrics_addr = Some("127.0.0.1:0".parse().unwrap())),
        ..Default::default()
    })
    .await;
    assert_eq!(c.get(app.url("/metrics")).send().await.unwrap().status(), 404);
    let m = app.metrics_address.clone().unwrap();
    let r = c.get(format!("{m}/metrics")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().contains("store_pool_connections"));
}

#[tokio::test]
async fn login_next_goes_only_to_paths_on_this_site() {
    let app = spawn_app().await;
    for next in [
        "//evil.example",
        "/\\evil.example",
        "/\r\nSet-Cookie: citydata_session=x",
        "/\t/evil.example",
        "https://evil",
        "javascript:alert(1)",
    ] {
        let c =
            reqwest::Client::builder().cookie_store(true).redirect(reqwest::redirect::Policy::none()).build().unwrap();
        let html = c.get(app.url("/login")).send().await.unwrap().text().await.unwrap();
        let r = c
            .post(app.url("/login"))
            .form(&[
                ("csrf", csrf_of(&html).as_str()),
                ("username", "gaj-steward"),
                ("password", DEMO_PASSWORD),
                ("next", next),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 303, "{next:?}");
        assert_eq!(r.headers()["location"], "/console", "{next:?}");
        // No injected cookie: the real session cookie has a random value that may well start
        // with "x", so compare the whole value.
        assert!(!r.headers().get_all("set-cookie").iter().any(|v| {
            let v = v.to_str().unwrap_or("");
            v == "citydata_session=x" || v.starts_with("citydata_session=x;") || v.starts_with("citydata_session=x ")
        }));
    }
    // The login form does not carry a bad target either.
    let html = new_client().get(app.url("/login?next=%2F%2Fevil.example")).send().await.unwrap().text().await.unwrap();
    assert!(html.contains("name=\"next\" value=\"&#x2f;console\""), "{html}");
    assert_up(&app).await;
}

#[tokio::test]
async fn webhooks_to_internal_addresses_are_refused_at_registration_and_delivery() {
    let app = spawn_app().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let gaj = app.login("gaj-steward").await;
    for url in [
        "http://169.254.169.254/latest/meta-data/".to_string(),
        format!("http://127.0.0.1:{port}/"),
        format!("http://localhost:{port}/"),
        "http://[::1]/".into(),
        "http://[::ffff:127.0.0.1]/".into(),
        "http://[fe80::1]/".into(),
        "http://10.0.0.1/".into(),
        "http://0.0.0.0:22/".into(),
    ] {
        let r = gaj
            .post(app.url("/api/v1/webhooks"))
            .json(&json!({"url": url, "events": ["request.new"]}))
            .send()
            .await
            .unwrap();
        let (code, message) = field_code(r).await;
        assert_eq!(code, "webhook_address_not_allowed", "{url}");
        assert!(message.contains("内部网络") || message.contains("解析"), "{message}");
    }
    // A webhook that got in some other way (an old row, a name that now resolves inside) is
    // checked again at delivery: nothing is sent, and the log holds only the class.
    let got = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let seen = got.clone();
    tokio::spawn(async move {
        while let Ok((_s, _)) = listener.accept().await {
            seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
    });
    let id = uuid::Uuid::now_v7();
    let now = if citydata_testkit::using_postgres() { "now()".to_string() } else { "0".to_string() };
    app.exec_sql(&format!(
        "INSERT INTO webhooks (id, department, url, secret, events, created_by, created_at) VALUES ('{id}', 'gaj', 'http://127.0.0.1:{port}/hook', 's', '[\"request.new\"]', 'gaj-steward', {now})"
    ))
    .await;
    let analyst = app.login("wjw-analyst").await;
    let r = analyst
        .post(app.url("/api/v1/requests"))
        .json(&json!({"resource_id": "101/000001", "purpose": "统计", "basis": "职责"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let mut log = Value::Null;
    for _ in 0..100 {
        log =
            gaj.get(app.url(&format!("/api/v1/webhooks/{id}/deliveries"))).send().await.unwrap().json().await.unwrap();
        if log[0]["attempts"].as_i64().unwrap_or(0) > 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(log[0]["last_error"], "address_not_allowed", "{log}");
    assert_eq!(got.load(std::sync::atomic::Ordering::SeqCst), 0, "no connection was made");
    assert_up(&app).await;
}
