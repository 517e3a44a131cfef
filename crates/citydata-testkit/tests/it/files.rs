//! File distributions (issue #24): upload, versions, download with Range/ETag and a Chinese
//! Content-Disposition, the gate on lists and downloads, audit with bytes, and the refusals
//! (mismatched content, executables, markup, ZIP bombs, incomplete Shapefiles, size) that
//! leave nothing behind.

use citydata_testkit::{SpawnOptions, TestApp, assert_error, new_client, spawn_app, spawn_app_with};
use reqwest::Client;
use serde_json::{Value, json};
use std::io::Write;

/// 标准地名地址 (大数据中心, 无条件共享, 无条件开放, no personal items; unlike
/// 国土空间规划分区 it has no demo file).
const ZONES: &str = "103%2F000002";
/// 人口基础信息 (公安局, 有条件共享, 不予开放, personal items).
const POP: &str = "101%2F000001";

pub const PDF: &[u8] = b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj 2 0 obj<</Type/Pages/Kids[]/Count 0>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n";
const PNG: &[u8] =
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4\x89";

pub async fn put_file(app: &TestApp, c: &Client, res: &str, name: &str, body: &[u8], extra: &str) -> reqwest::Response {
    let q = format!("name={}{extra}", urlencode(name));
    c.post(app.url(&format!("/api/v1/resources/{res}/files?{q}"))).body(body.to_vec()).send().await.unwrap()
}

fn urlencode(s: &str) -> String {
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

async fn created(r: reqwest::Response) -> Value {
    let s = r.status();
    let v: Value = r.json().await.unwrap();
    assert_eq!(s, 201, "{v}");
    v
}

async fn list(app: &TestApp, c: &Client, res: &str) -> (u16, Value) {
    let r = c.get(app.url(&format!("/api/v1/resources/{res}/files"))).send().await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

fn zip_of(members: &[(&str, &[u8])]) -> Vec<u8> {
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let opts = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
    for (n, data) in members {
        w.start_file(*n, opts).unwrap();
        w.write_all(data).unwrap();
    }
    w.finish().unwrap().into_inner()
}

#[tokio::test]
async fn files_are_versioned_and_downloaded_with_ranges_etags_and_their_chinese_names() {
    let app = spawn_app().await;
    let admin = app.login("admin").await;
    let name = "国土空间规划分区说明.pdf";
    let v1 = created(put_file(&app, &admin, ZONES, name, PDF, "&description=%E8%AF%B4%E6%98%8E").await).await;
    assert_eq!(
        (v1["version"].as_i64(), v1["kind"].as_str(), v1["size"].as_u64()),
        (Some(1), Some("pdf"), Some(PDF.len() as u64))
    );
    assert_eq!(v1["description"], "说明");
    let mut pdf2 = PDF.to_vec();
    pdf2.extend_from_slice(b"% second edition\n");
    let v2 = created(put_file(&app, &admin, ZONES, name, &pdf2, "").await).await;
    assert_eq!(v2["version"], 2);
    assert_ne!(v1["sha256"], v2["sha256"]);
    // Multipart, the name from the part.
    let form = reqwest::multipart::Form::new()
        .text("description", "分区图")
        .part("file", reqwest::multipart::Part::bytes(PNG.to_vec()).file_name("分区图.png"));
    let png =
        created(admin.post(app.url(&format!("/api/v1/resources/{ZONES}/files"))).multipart(form).send().await.unwrap())
            .await;
    assert_eq!((png["name"].as_str(), png["kind"].as_str()), (Some("分区图.png"), Some("png")));

    // Another department reads it (无条件共享, nothing personal): every version listed.
    let gaj = app.login("gaj-steward").await;
    let (s, files) = list(&app, &gaj, ZONES).await;
    assert_eq!(s, 200, "{files}");
    let got: Vec<(String, i64, bool)> = files
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (f["name"].as_str().unwrap().to_string(), f["version"].as_i64().unwrap(), f["latest"].as_bool().unwrap())
        })
        .collect();
    assert_eq!(got, vec![("分区图.png".into(), 1, true), (name.into(), 2, true), (name.into(), 1, false)]);

    let url = app.url(v2["download_url"].as_str().unwrap());
    let r = gaj.get(&url).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let h = r.headers().clone();
    assert_eq!(h["content-type"], "application/pdf");
    assert_eq!(h["x-content-type-options"], "nosniff");
    assert_eq!(h["content-security-policy"], "sandbox");
    assert_eq!(h["accept-ranges"], "bytes");
    let etag = h["etag"].to_str().unwrap().to_string();
    assert_eq!(etag, format!("\"{}\"", v2["sha256"].as_str().unwrap()));
    assert_eq!(
        h["content-disposition"],
        "inline; filename=\"__________.pdf\"; filename*=UTF-8''%E5%9B%BD%E5%9C%9F%E7%A9%BA%E9%97%B4%E8%A7%84%E5%88%92%E5%88%86%E5%8C%BA%E8%AF%B4%E6%98%8E.pdf"
    );
    assert_eq!(r.bytes().await.unwrap().as_ref(), &pdf2[..]);
    // The older version is still there, byte for byte.
    let old = gaj.get(app.url(v1["download_url"].as_str().unwrap())).send().await.unwrap();
    assert_eq!(old.bytes().await.unwrap().as_ref(), PDF);

    // Conditional and partial requests.
    let r = gaj.get(&url).header("if-none-match", &etag).send().await.unwrap();
    assert_eq!(r.status(), 304);
    let r = gaj.get(&url).header("range", "bytes=0-4").send().await.unwrap();
    assert_eq!(r.status(), 206);
    assert_eq!(r.headers()["content-range"], format!("bytes 0-4/{}", pdf2.len()));
    assert_eq!(r.bytes().await.unwrap().as_ref(), b"%PDF-");
    let r = gaj.get(&url).header("range", "bytes=-6").send().await.unwrap();
    assert_eq!(r.status(), 206);
    assert_eq!(r.bytes().await.unwrap().as_ref(), b"ition\n");
    let r = gaj.get(&url).header("range", "bytes=100000-").send().await.unwrap();
    assert_eq!(r.status(), 416);
    assert_eq!(r.headers()["content-range"], format!("bytes */{}", pdf2.len()));
    // A range under a stale If-Range is ignored: the whole file.
    let r = gaj.get(&url).header("range", "bytes=0-4").header("if-range", "\"stale\"").send().await.unwrap();
    assert_eq!(r.status(), 200);
    // A PNG opens inline as an image; nothing is ever served as HTML.
    let r = gaj.get(app.url(png["download_url"].as_str().unwrap())).send().await.unwrap();
    assert_eq!(r.headers()["content-type"], "image/png");

    // Every download is audited with its bytes.
    let audit: Value = admin
        .get(app.url("/api/v1/audit?action=file.download&per_page=50"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let bytes: Vec<u64> = audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["outcome"] == "success")
        .filter_map(|e| e["details"]["bytes"].as_u64())
        .collect();
    assert!(bytes.contains(&(pdf2.len() as u64)) && bytes.contains(&5) && bytes.contains(&6), "{audit}");

    // Only the provider's stewards delete; then the file is gone.
    assert_error(gaj.delete(&url).send().await.unwrap(), 403, "forbidden").await;
    assert_eq!(admin.delete(&url).send().await.unwrap().status(), 204);
    assert_error(gaj.get(&url).send().await.unwrap(), 404, "not_found").await;
    assert_error(admin.delete(&url).send().await.unwrap(), 404, "not_found").await;
    assert_error(
        gaj.get(app.url(&format!("/api/v1/resources/{ZONES}/files/not-a-uuid"))).send().await.unwrap(),
        404,
        "not_found",
    )
    .await;
}

#[tokio::test]
async fn restricted_files_reach_nobody_the_gate_and_the_provider_do_not_release_them_to() {
    let app = spawn_app().await;
    let gaj = app.login("gaj-steward").await;
    let secret = created(put_file(&app, &gaj, POP, "户籍人口明细说明.pdf", PDF, "").await).await;
    let open = created(
        put_file(&app, &gaj, POP, "人口统计汇总.csv", "区县,人数\n海陵区,100\n".as_bytes(), "&deidentified=true").await,
    )
    .await;
    let (s, own) = list(&app, &gaj, POP).await;
    assert_eq!((s, own.as_array().unwrap().len()), (200, 2), "the provider sees every file");

    // Nobody else writes.
    for who in ["scjgj-steward", "wjw-steward", "wjw-analyst"] {
        let c = app.login(who).await;
        assert_error(put_file(&app, &c, POP, "x.pdf", PDF, "").await, 403, "forbidden").await;
        assert_error(
            c.delete(app.url(secret["download_url"].as_str().unwrap())).send().await.unwrap(),
            403,
            "forbidden",
        )
        .await;
    }
    assert_error(put_file(&app, &new_client(), POP, "x.pdf", PDF, "").await, 401, "unauthenticated").await;

    // Without a grant: not even the list, not a byte, whoever asks.
    let wjw = app.login("wjw-steward").await;
    for (who, c) in [("anonymous", new_client()), ("another department", wjw.clone())] {
        let (s, body) = list(&app, &c, POP).await;
        assert!(s == 403 || s == 404, "{who}: {s} {body}");
        assert!(!body.to_string().contains("户籍人口明细说明"), "{who}: {body}");
        for f in [&secret, &open] {
            let r = c.get(app.url(f["download_url"].as_str().unwrap())).send().await.unwrap();
            let s = r.status().as_u16();
            let text = r.text().await.unwrap();
            assert!(s == 403 || s == 404, "{who}: {s}");
            assert!(!text.contains("%PDF") && !text.contains("海陵区"), "{who}: {text}");
        }
    }
    // With a grant of the whole resource: only the file marked de-identified.
    let grant = json!({"resource_id": "101/000001", "grantee": {"department": "wjw"}, "purpose": "统计"});
    assert_eq!(gaj.post(app.url("/api/v1/grants")).json(&grant).send().await.unwrap().status(), 201);
    let (s, files) = list(&app, &wjw, POP).await;
    assert_eq!(s, 200, "{files}");
    let names: Vec<&str> = files.as_array().unwrap().iter().map(|f| f["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["人口统计汇总.csv"]);
    let r = wjw.get(app.url(open["download_url"].as_str().unwrap())).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-disposition"].to_str().unwrap().split(';').next(), Some("attachment"));
    assert_eq!(r.text().await.unwrap(), "区县,人数\n海陵区,100\n");
    assert_error(wjw.get(app.url(secret["download_url"].as_str().unwrap())).send().await.unwrap(), 403, "forbidden")
        .await;

    // A grant narrowed to some rows releases no file at all: a file cannot be filtered.
    let narrowed = json!({"resource_id": "101/000001", "grantee": {"department": "wjw"}, "purpose": "统计",
        "row_filter": "qx = '海陵区'"});
    let r = gaj.post(app.url("/api/v1/grants")).json(&narrowed).send().await.unwrap();
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
    let (s, files) = list(&app, &wjw, POP).await;
    assert_eq!((s, files.as_array().map(Vec::len)), (200, Some(0)), "{files}");
    assert_error(wjw.get(app.url(open["download_url"].as_str().unwrap())).send().await.unwrap(), 403, "forbidden")
        .await;

    // A file id of another resource does not open through this one.
    let admin = app.login("admin").await;
    let zone = created(put_file(&app, &admin, ZONES, "z.pdf", PDF, "").await).await;
    let cross = format!("/api/v1/resources/{POP}/files/{}", zone["id"].as_str().unwrap());
    assert_error(gaj.get(app.url(&cross)).send().await.unwrap(), 404, "not_found").await;
}

fn blobs(app: &TestApp) -> usize {
    let dir = app.data_dir.path().join("lake").join("files");
    fn count(p: &std::path::Path) -> usize {
        std::fs::read_dir(p)
            .map(|d| d.flatten().map(|e| if e.path().is_dir() { count(&e.path()) } else { 1 }).sum())
            .unwrap_or(0)
    }
    count(&dir)
}

#[tokio::test]
async fn bad_files_are_refused_with_the_reason_and_leave_nothing_behind() {
    fn small(s: &mut citydata_server::settings::Settings) {
        s.max_file_bytes = 200_000;
    }
    let app = spawn_app_with(SpawnOptions { configure: Some(small), ..Default::default() }).await;
    let admin = app.login("admin").await;
    let cases: Vec<(&str, Vec<u8>, u16, &str)> = vec![
        ("规划.xlsx", PDF.to_vec(), 400, "file_type_mismatch"),
        ("规划.pdf", b"MZ\x90\x00\x03\x00\x00\x00".to_vec(), 400, "executable_refused"),
        ("data.csv", b"\x7fELF\x02\x01\x01".to_vec(), 400, "executable_refused"),
        ("page.csv", b"<html><script>alert(1)</script></html>".to_vec(), 400, "file_type_not_allowed"),
        (
            "图.png",
            b"<svg xmlns='http://www.w3.org/2000/svg' onload='alert(1)'/>".to_vec(),
            400,
            "file_type_not_allowed",
        ),
        ("setup.exe", b"MZ".to_vec(), 400, "validation_failed"),
        ("../../etc/passwd.pdf", PDF.to_vec(), 400, "validation_failed"),
        ("empty.csv", vec![], 400, "empty_file"),
        ("bad.geojson", b"{\"type\": \"FeatureCollection\", ".to_vec(), 400, "bad_json"),
        ("shp.zip", zip_of(&[("zones.shp", b"x"), ("zones.shx", b"y")]), 400, "shapefile_incomplete"),
        ("tools.zip", zip_of(&[("readme.txt", b"x"), ("run.bat", b"del *")]), 400, "executable_refused"),
        ("bomb.zip", zip_of(&[("zeros.csv", &vec![0u8; 24 << 20])]), 413, "decompressed_too_large"),
        ("big.csv", vec![b'a'; 200_001], 413, "payload_too_large"),
        ("notzip.zip", b"PK\x03\x04 this is not an archive".to_vec(), 400, "bad_zip"),
    ];
    for (name, body, status, code) in cases {
        let r = put_file(&app, &admin, ZONES, name, &body, "").await;
        let v = assert_error(r, status, code).await;
        let message =
            v["error"]["message"].as_str().unwrap_or_default().to_string() + &v["error"]["details"].to_string();
        assert!(!message.is_empty(), "{name}: the reason is named: {v}");
    }
    // The Shapefile refusal names the missing part.
    let v = assert_error(
        put_file(&app, &admin, ZONES, "shp.zip", &zip_of(&[("zones.shp", b"x"), ("zones.shx", b"y")]), "").await,
        400,
        "shapefile_incomplete",
    )
    .await;
    assert!(v["error"]["message"].as_str().unwrap().contains("zones.dbf"), "{v}");
    // Nothing was written: no row, no blob, no spooled leftover.
    let (s, files) = list(&app, &admin, ZONES).await;
    assert_eq!((s, files), (200, json!([])));
    // (The demo's sample PDF of 国土空间规划分区 is the one blob.)
    assert_eq!(blobs(&app), 1);
    // A complete Shapefile archive and a GeoJSON are accepted.
    let shp = zip_of(&[("zones.shp", b"x"), ("zones.shx", b"y"), ("zones.dbf", b"z"), ("zones.prj", b"GEOGCS")]);
    let v = created(put_file(&app, &admin, ZONES, "分区.zip", &shp, "").await).await;
    assert_eq!(v["kind"], "shapefile");
    let v = created(
        put_file(&app, &admin, ZONES, "分区.geojson", br#"{"type":"FeatureCollection","features":[]}"#, "").await,
    )
    .await;
    assert_eq!((v["kind"].as_str(), v["media_type"].as_str()), (Some("geojson"), Some("application/geo+json")));
    assert_eq!(blobs(&app), 3);
    // The same content under two names is stored once; deleting one keeps the other's bytes.
    let a = created(put_file(&app, &admin, ZONES, "a.pdf", PDF, "").await).await;
    let b = created(put_file(&app, &admin, ZONES, "b.pdf", PDF, "").await).await;
    assert_eq!(blobs(&app), 4);
    assert_eq!(admin.delete(app.url(a["download_url"].as_str().unwrap())).send().await.unwrap().status(), 204);
    let r = admin.get(app.url(b["download_url"].as_str().unwrap())).send().await.unwrap();
    assert_eq!(r.bytes().await.unwrap().as_ref(), PDF);
    assert_eq!(admin.delete(app.url(b["download_url"].as_str().unwrap())).send().await.unwrap().status(), 204);
    assert_eq!(blobs(&app), 3, "the last reference gone, the bytes go too");
}
