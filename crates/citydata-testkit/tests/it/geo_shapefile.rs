//! Zipped Shapefile ingest (issue #24): a layer written by a GIS tool's own library (the
//! `shapefile` crate's writer), with GBK attributes as Chinese desktop tools write them, goes
//! into a resource's table; a multi-part polygon is quarantined by its record number; an
//! archive without its `.dbf`, one with a projected `.prj`, a zip bomb and a file that is no
//! archive are refused by name with nothing written.

use citydata_testkit::{TestApp, assert_error, spawn_app};
use serde_json::{Value, json};
use shapefile::dbase::{self, FieldValue};
use shapefile::{Point, Polygon, PolygonRing};

const CGCS2000_PRJ: &str = r#"GEOGCS["China Geodetic Coordinate System 2000",DATUM["China_2000",SPHEROID["CGCS2000",6378137,298.257222101]],PRIMEM["Greenwich",0],UNIT["degree",0.0174532925199433]]"#;
const GAUSS_PRJ: &str = r#"PROJCS["CGCS2000 / 3-degree Gauss-Kruger CM 120E",GEOGCS["China Geodetic Coordinate System 2000"],PROJECTION["Transverse_Mercator"]]"#;

fn ring(points: &[(f64, f64)]) -> Vec<Point> {
    points.iter().map(|(x, y)| Point::new(*x, *y)).collect()
}

/// A box as a closed ring, clockwise (a Shapefile's outer ring) or counter-clockwise (a hole).
fn boxed(x0: f64, y0: f64, x1: f64, y1: f64, clockwise: bool) -> Vec<Point> {
    if clockwise {
        ring(&[(x0, y0), (x0, y1), (x1, y1), (x1, y0), (x0, y0)])
    } else {
        ring(&[(x0, y0), (x1, y0), (x1, y1), (x0, y1), (x0, y0)])
    }
}

/// The `.shp`, `.shx` and `.dbf` of a three-district layer, the attributes in GB18030.
fn layer() -> Vec<(String, Vec<u8>)> {
    let dir = tempfile::tempdir().unwrap();
    let shp = dir.path().join("区县.shp");
    let table = dbase::TableWriterBuilder::with_encoding(dbase::encoding::EncodingRs::from(encoding_rs::GB18030))
        .add_character_field("qhdm".try_into().unwrap(), 12)
        .add_character_field("qhmc".try_into().unwrap(), 40);
    let mut w = shapefile::Writer::from_path(&shp, table).unwrap();
    let rows: Vec<(&str, &str, Polygon)> = vec![
        (
            "321202",
            "海陵区",
            Polygon::with_rings(vec![
                PolygonRing::Outer(boxed(119.90, 32.43, 119.96, 32.49, true)),
                PolygonRing::Inner(boxed(119.92, 32.45, 119.93, 32.46, false)),
            ]),
        ),
        ("321204", "姜堰区", Polygon::new(PolygonRing::Outer(boxed(120.00, 32.15, 120.10, 32.25, true)))),
        (
            "321283",
            "泰兴市（两块）",
            Polygon::with_rings(vec![
                PolygonRing::Outer(boxed(120.00, 32.00, 120.05, 32.05, true)),
                PolygonRing::Outer(boxed(120.10, 32.00, 120.15, 32.05, true)),
            ]),
        ),
    ];
    for (code, name, poly) in &rows {
        let mut rec = dbase::Record::default();
        rec.insert("qhdm".into(), FieldValue::Character(Some(code.to_string())));
        rec.insert("qhmc".into(), FieldValue::Character(Some(name.to_string())));
        w.write_shape_and_record(poly, &rec).unwrap();
    }
    drop(w);
    ["shp", "shx", "dbf"]
        .iter()
        .map(|ext| (format!("区县.{ext}"), std::fs::read(shp.with_extension(ext)).unwrap()))
        .collect()
}

fn zip_of(members: &[(String, Vec<u8>)]) -> Vec<u8> {
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let opts = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
    for (name, bytes) in members {
        w.start_file(name.as_str(), opts).unwrap();
        std::io::Write::write_all(&mut w, bytes).unwrap();
    }
    w.finish().unwrap().into_inner()
}

async fn districts(app: &TestApp) -> (reqwest::Client, String) {
    let gaj = app.login("gaj-steward").await;
    let r = gaj
        .post(app.url("/api/v1/resources"))
        .json(&json!({
            "name": "辖区边界（Shapefile 测试）", "abstract": "由 Shapefile 导入的辖区边界（测试）", "provider": "gaj",
            "classification": {"class": "basic", "theme": "geospatial"}, "format": {"category": "database"},
            "items": [
                {"name": "qhdm", "title": "行政区划代码", "key": true, "validator": "region_code"},
                {"name": "qhmc", "title": "区划名称"},
                {"name": "geometry", "title": "范围", "data_type": "geometry"}
            ],
            "share": {"type": "unconditional"}, "open": {"type": "none", "conditions": "测试"},
            "update_cycle": "yearly"
        }))
        .send()
        .await
        .unwrap();
    let created: Value = r.json().await.unwrap();
    let code = created["code"].as_str().unwrap_or_else(|| panic!("{created}")).replace('/', "%2F");
    let p = gaj.post(app.url(&format!("/api/v1/resources/{code}/publish"))).send().await.unwrap();
    assert_eq!(p.status(), 200, "{}", p.text().await.unwrap());
    (gaj, code)
}

async fn rows(app: &TestApp, c: &reqwest::Client, code: &str) -> Vec<Value> {
    let v: Value =
        c.get(app.url(&format!("/api/v1/resources/{code}/rows?sort=qhdm"))).send().await.unwrap().json().await.unwrap();
    v["rows"].as_array().unwrap_or_else(|| panic!("{v}")).clone()
}

#[tokio::test]
async fn a_zipped_shapefile_with_gbk_attributes_becomes_rows() {
    let app = spawn_app().await;
    let (gaj, code) = districts(&app).await;
    let upload = |body: Vec<u8>, query: &'static str| {
        let url = app.url(&format!("/api/v1/resources/{code}/data{query}"));
        let gaj = gaj.clone();
        async move { gaj.post(url).body(body).send().await.unwrap() }
    };
    let mut members = layer();
    members.push(("区县.prj".into(), CGCS2000_PRJ.as_bytes().to_vec()));

    // Refused by name, nothing written: no .dbf, a projected system, a bomb, not an archive.
    let no_dbf: Vec<_> = members.iter().filter(|(n, _)| !n.ends_with(".dbf")).cloned().collect();
    let body = assert_error(upload(zip_of(&no_dbf), "?format=shapefile").await, 400, "missing_dbf").await;
    assert!(body["error"]["message"].as_str().unwrap().contains("区县.dbf"), "{body}");
    let mut projected = members.clone();
    projected.last_mut().unwrap().1 = GAUSS_PRJ.as_bytes().to_vec();
    let body = assert_error(upload(zip_of(&projected), "?format=shapefile").await, 400, "projected_crs").await;
    assert!(body["error"]["message"].as_str().unwrap().contains("Gauss-Kruger"), "{body}");
    let mut bomb = members.clone();
    bomb.push(("填充.bin".into(), vec![0u8; 64 << 20]));
    assert_error(upload(zip_of(&bomb), "?format=shapefile").await, 413, "decompressed_too_large").await;
    assert_error(upload(b"qhdm,qhmc\n1,2\n".to_vec(), "?format=shapefile").await, 400, "bad_shapefile").await;
    let two = [members.clone(), vec![("另一层.shp".into(), members[0].1.clone())]].concat();
    assert_error(upload(zip_of(&two), "?format=shapefile").await, 400, "several_shp").await;
    assert!(rows(&app, &gaj, &code).await.is_empty(), "nothing half-written");

    // The layer: two districts in, the two-part polygon quarantined as its record 3. No .cpg,
    // so the GB18030 attributes are recognized by their bytes; a .zip name says the format.
    let r = upload(zip_of(&members), "").await;
    let s = r.status();
    let v: Value = r.json().await.unwrap();
    assert_eq!(s, 400, "a body without a format or file name is CSV, and a zip is no CSV: {v}");
    let r = gaj
        .post(app.url(&format!("/api/v1/resources/{code}/data")))
        .header("Content-Type", "application/zip")
        .body(zip_of(&members))
        .send()
        .await
        .unwrap();
    let s = r.status();
    let v: Value = r.json().await.unwrap();
    assert_eq!(s, 201, "{v}");
    assert_eq!(
        (v["report"]["rows_committed"].as_u64(), v["report"]["rows_quarantined"].as_u64()),
        (Some(2), Some(1)),
        "{v}"
    );
    let q: Value =
        gaj.get(app.url(&format!("/api/v1/resources/{code}/quarantine"))).send().await.unwrap().json().await.unwrap();
    assert!(q.to_string().contains("泰兴市（两块）"), "the provider sees the quarantined row: {q}");
    let got = rows(&app, &gaj, &code).await;
    let names: Vec<&str> = got.iter().map(|r| r["qhmc"].as_str().unwrap()).collect();
    assert_eq!(names, vec!["海陵区", "姜堰区"]);
    let hl = got[0]["geometry"].as_str().unwrap();
    assert!(hl.starts_with("POLYGON ((119.9 32.43"), "{hl}");
    assert_eq!(hl.matches("), (").count(), 1, "the hole is kept: {hl}");

    // With a .cpg naming the code page, and attributes rewritten: the same rows, replaced.
    let mut with_cpg = members.clone();
    with_cpg.push(("区县.cpg".into(), b"GBK".to_vec()));
    let r = upload(zip_of(&with_cpg), "?format=shp&mode=replace").await;
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
    assert_eq!(rows(&app, &gaj, &code).await.len(), 2);
}
