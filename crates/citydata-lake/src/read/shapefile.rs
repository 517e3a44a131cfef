//! Zipped Shapefiles (issue #24): one `.shp` with its `.dbf` (required), `.shx`, `.prj` and
//! `.cpg` (optional) in a zip archive, read as rows of the `.dbf`'s attributes plus a
//! `geometry` column of WKT — the column a spatial item without a column of its own reads,
//! as for GeoJSON. The cells then go through the same parsing, conversion from the item's
//! declared system and validation as any other input, so a bad shape is quarantined by its
//! record number like any rule.
//!
//! - The archive is checked against the decompression limits before anything is unpacked.
//! - Attribute text is decoded by the `.cpg` code page when there is one; otherwise by the
//!   upload's `encoding`, and with `auto` as UTF-8 when every byte of the `.dbf` is valid
//!   UTF-8, else GB18030 (the code page of Chinese desktop GIS tools, GBK's superset).
//! - A `.prj` with a projected system (`PROJCS`, e.g. Gauss–Krüger zones) is refused: the
//!   platform stores longitude/latitude and does not reproject planar coordinates.
//! - Shapes and records are paired by position, so their counts must agree; a `.dbf` with
//!   records marked deleted (which the reader skips) is refused until the layer is packed.
//! - Shapes other than points and single-outer-ring polygons (lines, multi-part polygons) are
//!   written as WKT the spatial parser refuses, so those rows are quarantined with the reason.

use super::{MemorySource, check_headers};
use crate::decode::Encoding;
use crate::error::{LakeError, Result};
use crate::limits::DecompressLimits;
use shapefile::dbase::{self, FieldValue};
use shapefile::{Shape, record::polygon::PolygonRing};
use std::io::{Cursor, Read};
use std::path::Path;

fn bad(message: String) -> LakeError {
    LakeError::input("bad_shapefile", format!("不是有效的 Shapefile 压缩包 / not a valid zipped Shapefile: {message}"))
}

/// The members of the archive, by lowercased name.
fn members(path: &Path, limits: DecompressLimits) -> Result<Vec<(String, Vec<u8>)>> {
    crate::limits::check_zip_as(std::fs::File::open(path)?, limits, bad)?;
    let mut archive = zip::ZipArchive::new(std::fs::File::open(path)?).map_err(|e| bad(e.to_string()))?;
    let mut out = Vec::new();
    for i in 0..archive.len() {
        let mut f = archive.by_index(i).map_err(|e| bad(e.to_string()))?;
        let name = f.name().map_err(|e| bad(e.to_string()))?.to_string();
        // Folders and the resource forks macOS adds to archives carry no data.
        if f.is_dir() || name.starts_with("__MACOSX/") || name.rsplit('/').next().is_some_and(|n| n.starts_with("._")) {
            continue;
        }
        let mut bytes = Vec::new();
        f.read_to_end(&mut bytes).map_err(|e| bad(e.to_string()))?;
        out.push((name, bytes));
    }
    Ok(out)
}

fn ext_of(name: &str) -> (String, String) {
    match name.rsplit_once('.') {
        Some((stem, ext)) => (stem.to_string(), ext.to_ascii_lowercase()),
        None => (name.to_string(), String::new()),
    }
}

fn dbf_encoding(cpg: Option<&[u8]>, encoding: Encoding, dbf: &[u8]) -> Result<dbase::encoding::DynEncoding> {
    use dbase::encoding::{DynEncoding, EncodingRs, Unicode};
    if let Some(cpg) = cpg {
        let label = String::from_utf8_lossy(cpg);
        let label = label.trim().trim_start_matches('\u{feff}');
        // "936" and "GBK" are what Chinese GIS tools write.
        let named = match label {
            "936" | "CP936" | "cp936" => Some(DynEncoding::from(EncodingRs::from(encoding_rs::GB18030))),
            _ => DynEncoding::from_name(label),
        };
        return named.ok_or_else(|| {
            LakeError::input(
                "bad_encoding",
                format!(
                    ".cpg 声明的编码“{label}”无法识别；请改为 UTF-8 或 GBK / the .cpg names an unknown code page \"{label}\""
                ),
            )
        });
    }
    let gb = || DynEncoding::from(EncodingRs::from(encoding_rs::GB18030));
    Ok(match encoding {
        Encoding::Utf8 => DynEncoding::from(Unicode),
        Encoding::Gb18030 => gb(),
        // The records only: the header holds binary lengths that are rarely valid UTF-8.
        Encoding::Auto if std::str::from_utf8(dbf_records(dbf)).is_ok() => DynEncoding::from(Unicode),
        Encoding::Auto => gb(),
    })
}

/// The record bytes of a `.dbf` (after the header, whose length is at bytes 8–9).
fn dbf_records(dbf: &[u8]) -> &[u8] {
    let header = dbf.get(8..10).map(|b| usize::from(u16::from_le_bytes([b[0], b[1]]))).unwrap_or(0);
    dbf.get(header..).unwrap_or(&[])
}

/// A coordinate as WKT text; a value no geographic position can have (huge, infinite) as
/// `NaN`, which the spatial validation refuses — and which keeps a hostile file's text short.
fn coord(v: f64) -> String {
    if v.is_finite() && v.abs() < 1.0e4 { v.to_string() } else { "NaN".into() }
}

fn ring_wkt<P>(points: &[P], xy: impl Fn(&P) -> (f64, f64)) -> String {
    let coords: Vec<String> = points
        .iter()
        .map(|p| {
            let (x, y) = xy(p);
            format!("{} {}", coord(x), coord(y))
        })
        .collect();
    format!("({})", coords.join(", "))
}

fn polygon_wkt<P>(rings: &[PolygonRing<P>], xy: impl Fn(&P) -> (f64, f64) + Copy) -> String {
    let outers: Vec<&Vec<P>> = rings
        .iter()
        .filter_map(|r| match r {
            PolygonRing::Outer(p) => Some(p),
            PolygonRing::Inner(_) => None,
        })
        .collect();
    let text: Vec<String> = rings.iter().map(|r| ring_wkt(r.points(), xy)).collect();
    if outers.len() == 1 {
        // The outer ring first (a Shapefile writes each outer ring before its holes).
        format!("POLYGON ({})", text.join(", "))
    } else {
        // Several outer rings: a multi-part polygon, which the spatial parser refuses by name.
        format!("MULTIPOLYGON (({}))", text.join(", "))
    }
}

/// A shape as WKT (`None` for a null shape).
fn shape_wkt(shape: &Shape) -> Option<String> {
    Some(match shape {
        Shape::NullShape => return None,
        Shape::Point(p) => format!("POINT ({} {})", coord(p.x), coord(p.y)),
        Shape::PointM(p) => format!("POINT ({} {})", coord(p.x), coord(p.y)),
        Shape::PointZ(p) => format!("POINT ({} {})", coord(p.x), coord(p.y)),
        Shape::Polygon(p) => polygon_wkt(p.rings(), |q| (q.x, q.y)),
        Shape::PolygonM(p) => polygon_wkt(p.rings(), |q| (q.x, q.y)),
        Shape::PolygonZ(p) => polygon_wkt(p.rings(), |q| (q.x, q.y)),
        Shape::Polyline(l) => {
            format!(
                "MULTILINESTRING ({})",
                l.parts().iter().map(|r| ring_wkt(r, |q| (q.x, q.y))).collect::<Vec<_>>().join(", ")
            )
        }
        other => format!("{:?} EMPTY", other.shapetype()).to_ascii_uppercase(),
    })
}

fn value_text(v: &FieldValue) -> Option<String> {
    match v {
        FieldValue::Character(s) => s.clone(),
        FieldValue::Memo(s) => Some(s.clone()),
        FieldValue::Numeric(n) => n.map(|n| n.to_string()),
        FieldValue::Float(n) => n.map(|n| n.to_string()),
        FieldValue::Logical(b) => b.map(|b| b.to_string()),
        FieldValue::Date(d) => d.map(|d| format!("{:04}-{:02}-{:02}", d.year(), d.month(), d.day())),
        FieldValue::Integer(n) => Some(n.to_string()),
        FieldValue::Currency(n) | FieldValue::Double(n) => Some(n.to_string()),
        FieldValue::DateTime(t) => {
            let (d, h) = (t.date(), t.time());
            Some(format!(
                "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
                d.year(),
                d.month(),
                d.day(),
                h.hours(),
                h.minutes(),
                h.seconds()
            ))
        }
    }
}

/// The rows of a zipped Shapefile at `path` (read whole, within `limits`).
pub fn shapefile_zip(path: &Path, encoding: Encoding, limits: DecompressLimits) -> Result<MemorySource> {
    let members = members(path, limits)?;
    let shps: Vec<&(String, Vec<u8>)> = members.iter().filter(|(n, _)| ext_of(n).1 == "shp").collect();
    let (shp_name, shp) = match shps.as_slice() {
        [one] => (&one.0, &one.1),
        [] => {
            return Err(LakeError::input(
                "no_shp",
                "压缩包中没有 .shp 文件 / the archive holds no .shp file".to_string(),
            ));
        }
        many => {
            let names: Vec<&str> = many.iter().map(|(n, _)| n.as_str()).collect();
            return Err(LakeError::input(
                "several_shp",
                format!(
                    "压缩包中有多个 .shp（{}），每次只能导入一个图层 / the archive holds several .shp files ({}): upload one layer at a time",
                    names.join("、"),
                    names.join(", ")
                ),
            ));
        }
    };
    let stem = ext_of(shp_name).0;
    let sibling =
        |ext: &str| members.iter().find(|(n, _)| ext_of(n) == (stem.clone(), ext.to_string())).map(|(_, b)| b);
    let dbf = sibling("dbf").ok_or_else(|| {
        LakeError::input(
            "missing_dbf",
            format!("压缩包中缺少属性文件 {stem}.dbf / the archive has no {stem}.dbf beside {shp_name}"),
        )
    })?;
    if let Some(prj) = sibling("prj") {
        let prj = String::from_utf8_lossy(prj);
        let head = prj.trim_start().to_ascii_uppercase();
        // WKT1 (what ESRI tools write) and WKT2.
        if head.starts_with("PROJCS") || head.starts_with("PROJCRS") || head.starts_with("PROJECTEDCRS") {
            let name = prj.split('"').nth(1).unwrap_or("?");
            return Err(LakeError::input(
                "projected_crs",
                format!(
                    "{stem}.prj 是投影坐标系（{name}），请先转换为经纬度（CGCS2000 或 WGS 84）再上传 / {stem}.prj is a projected system ({name}): convert it to longitude/latitude (CGCS2000 or WGS 84) first"
                ),
            ));
        }
    }
    let enc = dbf_encoding(sibling("cpg").map(Vec::as_slice), encoding, dbf)?;
    let shape_reader = match sibling("shx") {
        Some(shx) => shapefile::ShapeReader::with_shx(Cursor::new(shp.as_slice()), Cursor::new(shx.as_slice())),
        None => shapefile::ShapeReader::new(Cursor::new(shp.as_slice())),
    }
    .map_err(|e| bad(format!("{shp_name}: {e}")))?;
    let mut dbf_reader = dbase::ReaderBuilder::new()
        .with_encoding(enc)
        .build(Cursor::new(dbf.as_slice()))
        .map_err(|e| bad(format!("{stem}.dbf: {e}")))?;
    let fields: Vec<String> = dbf_reader.fields().iter().map(|f| f.name().to_string()).collect();
    let mut headers = fields.clone();
    if headers.iter().any(|h| h.eq_ignore_ascii_case("geometry")) {
        return Err(LakeError::input(
            "duplicate_header",
            format!(
                "{stem}.dbf 已有名为 geometry 的字段，与图形列同名 / {stem}.dbf has a field named geometry, the shapes' column"
            ),
        ));
    }
    headers.push("geometry".into());
    check_headers(&headers)?;
    // Shapes and records are paired by position, so both are read whole and counted: a record
    // marked deleted (skipped by the reader) or a short file on either side would pair every
    // later shape with another record's attributes.
    let declared = dbf_reader.header().num_records as usize;
    let records = dbf_reader.read().map_err(|e| bad(format!("{stem}.dbf: {e}")))?;
    if records.len() != declared {
        return Err(LakeError::input(
            "dbf_deleted_records",
            format!(
                "{stem}.dbf 有 {} 条已标记删除的记录，请在 GIS 软件中压缩（Pack）图层后重新上传 / {stem}.dbf has {} records marked deleted: pack the layer in your GIS tool and upload it again",
                declared.saturating_sub(records.len()),
                declared.saturating_sub(records.len())
            ),
        ));
    }
    let shapes = shape_reader.read().map_err(|e| bad(format!("{shp_name}: {e}")))?;
    if shapes.len() != records.len() {
        return Err(LakeError::input(
            "shp_dbf_mismatch",
            format!(
                "{shp_name} 有 {} 个图形，{stem}.dbf 有 {} 条记录，数量不一致 / {shp_name} holds {} shapes but {stem}.dbf {} records",
                shapes.len(),
                records.len(),
                shapes.len(),
                records.len()
            ),
        ));
    }
    let mut rows = Vec::with_capacity(records.len());
    for (i, (shape, record)) in shapes.iter().zip(&records).enumerate() {
        let mut row: Vec<Option<String>> = fields.iter().map(|f| record.get(f).and_then(value_text)).collect();
        row.push(shape_wkt(shape));
        rows.push(((i + 1) as u64, row));
    }
    Ok(MemorySource { headers, rows: rows.into_iter() })
}
