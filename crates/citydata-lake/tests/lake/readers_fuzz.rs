//! Property fuzzing of every reader of uploaded files: CSV/TSV, NDJSON, JSON arrays, XLSX and
//! zipped Shapefiles
//! must answer any input — random bytes, mangled structure, mutated zips — with batches or a
//! clear `LakeError`, never a panic. CI runs a few hundred cases per reader; the long run is
//! `CITYDATA_FUZZ_CASES=200000 cargo test --release -p citydata-lake --test lake -- readers_fuzz`.

use citydata_lake::decode::Encoding;
use citydata_lake::read::{CsvSource, NdjsonSource, RawSource, json_array, shapefile_zip, xlsx};
use proptest::prelude::*;
use std::io::Write;

fn cases() -> u32 {
    std::env::var("CITYDATA_FUZZ_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(300)
}

/// Read a source to its end (or its first error); what matters is that it returns.
fn drain(mut s: impl RawSource) -> usize {
    let mut rows = 0;
    for _ in 0..10_000 {
        match s.next_batch() {
            Ok(Some(b)) => rows += b.num_rows(),
            Ok(None) | Err(_) => break,
        }
    }
    rows
}

/// Text that looks like a table: cells of Chinese, quotes, separators, newlines, BOMs, controls.
fn tableish() -> impl Strategy<Value = Vec<u8>> {
    let piece = prop_oneof![
        Just("\"".to_string()),
        Just(",".to_string()),
        Just("\t".to_string()),
        Just("\n".to_string()),
        Just("\r\n".to_string()),
        Just("\u{feff}".to_string()),
        Just("身份证号".to_string()),
        Just("姓名".to_string()),
        Just("{\"a\":".to_string()),
        Just("[".to_string()),
        Just("]".to_string()),
        Just("}".to_string()),
        "[a-z0-9 ]{0,8}",
        "\\PC{0,6}",
    ];
    (proptest::collection::vec(piece, 0..120), proptest::collection::vec(any::<u8>(), 0..8), any::<bool>()).prop_map(
        |(pieces, noise, gb)| {
            let text: String = pieces.concat();
            let mut bytes = if gb { encoding_rs::GB18030.encode(&text).0.into_owned() } else { text.into_bytes() };
            let at = bytes.len() / 2;
            bytes.splice(at..at, noise);
            bytes
        },
    )
}

fn xlsx_bytes() -> Vec<u8> {
    let mut buf = std::io::Cursor::new(Vec::new());
    {
        let mut z = zip::ZipWriter::new(&mut buf);
        let opt = zip::write::SimpleFileOptions::default();
        let files = [
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
                r#"<?xml version="1.0" encoding="UTF-8"?><workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"><sheets><sheet name="Sheet1" sheetId="1" r:id="rId1"/></sheets></workbook>"#,
            ),
            (
                "xl/_rels/workbook.xml.rels",
                r#"<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" Target="worksheets/sheet1.xml"/></Relationships>"#,
            ),
            (
                "xl/worksheets/sheet1.xml",
                r#"<?xml version="1.0" encoding="UTF-8"?><worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData><row r="1"><c r="A1" t="inlineStr"><is><t>姓名</t></is></c><c r="B1" t="inlineStr"><is><t>区县</t></is></c></row><row r="2"><c r="A2" t="inlineStr"><is><t>张三</t></is></c><c r="B2" t="inlineStr"><is><t>海陵区</t></is></c></row></sheetData></worksheet>"#,
            ),
        ];
        for (name, body) in files {
            z.start_file(name, opt).unwrap();
            z.write_all(body.as_bytes()).unwrap();
        }
        z.finish().unwrap();
    }
    buf.into_inner()
}

#[test]
fn the_xlsx_seed_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.xlsx");
    std::fs::write(&path, xlsx_bytes()).unwrap();
    assert_eq!(drain(xlsx(&path, None).expect("the seed workbook opens")), 1);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases()))]

    #[test]
    fn csv_and_tsv_never_panic(bytes in tableish(), tab in any::<bool>(), header in any::<bool>()) {
        let delimiter = if tab { b'\t' } else { b',' };
        if let Ok(s) = CsvSource::new(std::io::Cursor::new(bytes), Encoding::Auto, delimiter, b'"', header) {
            drain(s);
        }
    }

    #[test]
    fn random_bytes_never_panic_any_text_reader(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        if let Ok(s) = CsvSource::new(std::io::Cursor::new(bytes.clone()), Encoding::Auto, b',', b'"', true) {
            drain(s);
        }
        if let Ok(s) = NdjsonSource::new(std::io::Cursor::new(bytes), Encoding::Auto) {
            drain(s);
        }
    }

    #[test]
    fn ndjson_and_json_arrays_never_panic(bytes in tableish()) {
        if let Ok(s) = NdjsonSource::new(std::io::Cursor::new(bytes.clone()), Encoding::Auto) {
            drain(s);
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.json");
        std::fs::write(&path, &bytes).unwrap();
        if let Ok(s) = json_array(&path, Encoding::Auto) {
            drain(s);
        }
    }

    #[test]
    fn mutated_shapefiles_never_panic(
        member in 0usize..3,
        flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..12),
    ) {
        let mut layer = shapefile_layer(true);
        let bytes = &mut layer[member].1;
        for (at, b) in flips {
            let i = at.index(bytes.len());
            bytes[i] = b;
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.zip");
        std::fs::write(&path, zip_stored(&layer)).unwrap();
        if let Ok(s) = shapefile_zip(&path, Encoding::Auto, citydata_lake::limits::DecompressLimits::default()) {
            drain(s);
        }
    }

    #[test]
    fn mutated_workbooks_never_panic(flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..12)) {
        let mut bytes = xlsx_bytes();
        for (at, b) in flips {
            let i = at.index(bytes.len());
            bytes[i] = b;
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.xlsx");
        std::fs::write(&path, &bytes).unwrap();
        if let Ok(s) = xlsx(&path, None) {
            drain(s);
        }
    }
}

/// A two-polygon layer's `.shp`, `.shx` and `.dbf` (GB18030 attributes, else UTF-8), written
/// by the `shapefile` crate's own writer.
fn shapefile_layer(gbk: bool) -> Vec<(String, Vec<u8>)> {
    use shapefile::dbase;
    let dir = tempfile::tempdir().unwrap();
    let shp = dir.path().join("a.shp");
    let table = if gbk {
        dbase::TableWriterBuilder::with_encoding(dbase::encoding::EncodingRs::from(encoding_rs::GB18030))
    } else {
        dbase::TableWriterBuilder::with_encoding(dbase::encoding::Unicode)
    };
    let table =
        table.add_character_field("mc".try_into().unwrap(), 20).add_numeric_field("rk".try_into().unwrap(), 10, 0);
    let mut w = shapefile::Writer::from_path(&shp, table).unwrap();
    for (i, x) in [119.9, 120.0].into_iter().enumerate() {
        let ring: Vec<shapefile::Point> = [(x, 32.4), (x, 32.5), (x + 0.1, 32.5), (x + 0.1, 32.4), (x, 32.4)]
            .into_iter()
            .map(|(x, y)| shapefile::Point::new(x, y))
            .collect();
        let mut rec = dbase::Record::default();
        rec.insert("mc".into(), dbase::FieldValue::Character(Some(format!("海陵{i}"))));
        rec.insert("rk".into(), dbase::FieldValue::Numeric(Some(i as f64)));
        w.write_shape_and_record(&shapefile::Polygon::new(shapefile::PolygonRing::Outer(ring)), &rec).unwrap();
    }
    drop(w);
    ["shp", "shx", "dbf"].iter().map(|e| (format!("a.{e}"), std::fs::read(shp.with_extension(e)).unwrap())).collect()
}

fn zip_stored(members: &[(String, Vec<u8>)]) -> Vec<u8> {
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let opts = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    for (name, bytes) in members {
        w.start_file(name.as_str(), opts).unwrap();
        w.write_all(bytes).unwrap();
    }
    w.finish().unwrap().into_inner()
}

fn read_layer(layer: &[(String, Vec<u8>)]) -> citydata_lake::Result<citydata_lake::read::MemorySource> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.zip");
    std::fs::write(&path, zip_stored(layer)).unwrap();
    shapefile_zip(&path, Encoding::Auto, citydata_lake::limits::DecompressLimits::default())
}

#[test]
fn the_unmutated_layer_reads_in_either_encoding_without_a_cpg() {
    for gbk in [true, false] {
        let mut s = read_layer(&shapefile_layer(gbk)).unwrap();
        assert_eq!(s.headers(), ["mc", "rk", "geometry"]);
        let b = s.next_batch().unwrap().unwrap();
        let names = b.columns[0].as_any().downcast_ref::<arrow::array::StringArray>().unwrap();
        assert_eq!((names.value(0), names.value(1)), ("海陵0", "海陵1"), "gbk: {gbk}");
    }
}

#[test]
fn a_deleted_record_is_refused_rather_than_shifting_the_shapes() {
    let mut layer = shapefile_layer(true);
    let dbf = &mut layer[2].1;
    let header = usize::from(u16::from_le_bytes([dbf[8], dbf[9]]));
    dbf[header] = b'*';
    match read_layer(&layer) {
        Err(citydata_lake::LakeError::Input { code, .. }) => assert_eq!(code, "dbf_deleted_records"),
        other => panic!("{:?}", other.map(|s| s.headers().to_vec())),
    }
}
