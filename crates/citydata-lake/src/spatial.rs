//! Spatial columns (issue #24): `point` and `geometry` items are stored as ISO WKB in a
//! `Binary` column, in CGCS2000. This module holds the Arrow kernels over those columns:
//!
//! - [`ColumnBuilder`] — cells (WKT, GeoJSON geometry, `lon,lat`, or a longitude/latitude column pair)
//!   parsed, converted from the item's declared system and validated, at ingest;
//! - [`present`] — WKB shown as WKT, the form every read (rows, CSV/JSON exports, SQL, CKAN,
//!   Delta Sharing) gives, since they all run the governed projection;
//! - [`grid`] — the location mask's kernel (WKT of the snapped point);
//! - [`within_expr`] / [`distance_expr`] — the filter language's spatial predicates on the raw
//!   WKB, evaluated before the masked projection like every row filter.

use arrow::array::{Array, ArrayRef, BinaryArray, BinaryBuilder, BooleanBuilder, StringArray, StringBuilder};
use arrow::datatypes::DataType;
use citydata_domain::crs::Crs;
use citydata_domain::geo::{BBox, Geometry, distance_m};
use citydata_domain::geo_cell;
use citydata_domain::resource::{InfoItem, Validator};
use citydata_domain::vocab::DataType as ItemType;
use datafusion::logical_expr::{ColumnarValue, Expr, Volatility, create_udf};
use datafusion::prelude::ident;
use datafusion::scalar::ScalarValue;
use std::sync::Arc;

/// The system an item's cells are written in (its `crs:` validator; CGCS2000 by default).
pub fn declared_crs(item: &InfoItem) -> Crs {
    match &item.validator {
        Some(Validator::Crs(c)) => *c,
        _ => Crs::Cgcs2000,
    }
}

/// One cell's outcome at ingest.
pub enum Cell {
    Null,
    Wkb(Vec<u8>),
    Bad { rule: &'static str, message: String },
}

/// Parse, convert and validate one cell of a spatial item.
pub fn cell(item: &InfoItem, text: &str) -> Cell {
    match geo_cell::parse_cell(text, declared_crs(item), item.data_type == ItemType::Point) {
        Ok(g) => Cell::Wkb(g.to_wkb()),
        Err(e) => Cell::Bad { rule: e.code, message: e.message },
    }
}

/// A stored WKB value back as a geometry (`None` for bytes that are not WKB).
fn geometry(b: &[u8]) -> Option<Geometry> {
    Geometry::from_wkb(b).ok()
}

fn binary(a: &ArrayRef) -> datafusion::error::Result<ArrayRef> {
    Ok(arrow::compute::cast(a, &DataType::Binary)?)
}

/// WKB as WKT text (NULL stays NULL).
pub fn present_array(a: &ArrayRef) -> datafusion::error::Result<ArrayRef> {
    let a = binary(a)?;
    let a = a.as_any().downcast_ref::<BinaryArray>().expect("cast to Binary");
    let mut b = StringBuilder::with_capacity(a.len(), a.len() * 32);
    for i in 0..a.len() {
        match (!a.is_null(i)).then(|| geometry(a.value(i))).flatten() {
            Some(g) => b.append_value(g.to_wkt()),
            None => b.append_null(),
        }
    }
    Ok(Arc::new(b.finish()))
}

/// The location mask: each geometry as the WKT of its snapped point.
pub fn grid(a: &ArrayRef, meters: u32) -> crate::Result<ArrayRef> {
    let a = arrow::compute::cast(a, &DataType::Binary)?;
    let a = a.as_any().downcast_ref::<BinaryArray>().expect("cast to Binary");
    let mut b = StringBuilder::with_capacity(a.len(), a.len() * 32);
    for i in 0..a.len() {
        match (!a.is_null(i)).then(|| geometry(a.value(i))).flatten() {
            Some(g) => b.append_value(geo_cell::snap(&g, f64::from(meters)).to_wkt()),
            None => b.append_null(),
        }
    }
    Ok(Arc::new(b.finish()))
}

/// The location mask by district ([`citydata_domain::mask::MaskSpec::District`]): each
/// geometry (a polygon by its anchor, as the grid mask) as the WKT of the centre of the first
/// district holding it; NULL outside every district.
pub fn district(a: &ArrayRef, regions: &citydata_domain::geo::Regions) -> crate::Result<ArrayRef> {
    let a = arrow::compute::cast(a, &DataType::Binary)?;
    let a = a.as_any().downcast_ref::<BinaryArray>().expect("cast to Binary");
    let districts: Vec<(&Geometry, citydata_domain::geo::BBox, String)> = regions
        .by_code
        .values()
        .map(|g| {
            let (x, y) = g.anchor();
            (g.as_ref(), g.bbox(), Geometry::Point(x, y).to_wkt())
        })
        .collect();
    let mut b = StringBuilder::with_capacity(a.len(), a.len() * 32);
    for i in 0..a.len() {
        let centre = (!a.is_null(i)).then(|| geometry(a.value(i))).flatten().and_then(|g| {
            let (x, y) = g.anchor();
            districts.iter().find(|(d, bb, _)| bb.contains(x, y) && d.contains(x, y)).map(|(_, _, c)| c)
        });
        match centre {
            Some(c) => b.append_value(c),
            None => b.append_null(),
        }
    }
    Ok(Arc::new(b.finish()))
}

/// A WKT column (as the projection presents it, masked or not) mapped geometry by geometry to
/// text; NULL where the cell is NULL, not WKT, or `f` gives nothing.
fn map_wkt(name: &str, e: Expr, f: impl Fn(&Geometry) -> Option<String> + Send + Sync + 'static) -> Expr {
    let fun = Arc::new(move |args: &[ColumnarValue]| -> datafusion::error::Result<ColumnarValue> {
        let arrays = ColumnarValue::values_to_arrays(args)?;
        let a = arrow::compute::cast(&arrays[0], &DataType::Utf8)?;
        let a = a.as_any().downcast_ref::<StringArray>().expect("cast to Utf8");
        let mut b = StringBuilder::with_capacity(a.len(), a.len() * 32);
        for i in 0..a.len() {
            match (!a.is_null(i)).then(|| Geometry::parse_wkt(a.value(i)).ok()).flatten().and_then(|g| f(&g)) {
                Some(t) => b.append_value(t),
                None => b.append_null(),
            }
        }
        Ok(ColumnarValue::Array(Arc::new(b.finish())))
    });
    let udf = create_udf(name, vec![DataType::Utf8], DataType::Utf8, Volatility::Immutable, fun);
    udf.call(vec![datafusion::prelude::cast(e, DataType::Utf8)])
}

/// Grid cells for aggregates (`group_by=<spatial item>&bucket=<metres>`): each geometry
/// becomes the WKT of its grid cell's centre.
pub fn grid_text_expr(e: Expr, meters: f64) -> Expr {
    map_wkt("citydata_grid_cell", e, move |g| Some(geo_cell::snap(g, meters).to_wkt()))
}

/// Districts for aggregates (`group_by=<spatial item>&bucket=region`): each geometry becomes
/// the code of the district of the boundary resource holding it (NULL outside them).
pub fn region_text_expr(e: Expr, regions: &Arc<citydata_domain::geo::Regions>) -> Expr {
    let regions = regions.clone();
    map_wkt("citydata_region_of", e, move |g| {
        regions.by_code.iter().find(|(_, shape)| g.within_shape(shape)).map(|(code, _)| code.clone())
    })
}

/// The WKT presentation of a spatial column (an expression keeping the column's name).
pub fn present(e: Expr, name: &str, input: &DataType) -> Expr {
    let fun = Arc::new(|args: &[ColumnarValue]| -> datafusion::error::Result<ColumnarValue> {
        let arrays = ColumnarValue::values_to_arrays(args)?;
        Ok(ColumnarValue::Array(present_array(&arrays[0])?))
    });
    let udf = create_udf("citydata_st_astext", vec![input.clone()], DataType::Utf8, Volatility::Immutable, fun);
    udf.call(vec![e]).alias(name)
}

/// A predicate over a stored (WKB) spatial column. `key` are the predicate's parameters as
/// literal arguments: `test` has them already, but they show in plans and keep two calls with
/// different parameters different expressions even to a planner that compared UDFs by name
/// (DataFusion 55 does not: a mutation without them still passes the two-district test).
fn predicate(
    name: &str,
    column: &str,
    key: Vec<ScalarValue>,
    test: impl Fn(&Geometry) -> bool + Send + Sync + 'static,
) -> Expr {
    let fun = Arc::new(move |args: &[ColumnarValue]| -> datafusion::error::Result<ColumnarValue> {
        let arrays = ColumnarValue::values_to_arrays(&args[..1])?;
        let a = binary(&arrays[0])?;
        let a = a.as_any().downcast_ref::<BinaryArray>().expect("cast to Binary");
        let mut b = BooleanBuilder::with_capacity(a.len());
        for i in 0..a.len() {
            match (!a.is_null(i)).then(|| geometry(a.value(i))).flatten() {
                Some(g) => b.append_value(test(&g)),
                None => b.append_null(),
            }
        }
        Ok(ColumnarValue::Array(Arc::new(b.finish())))
    });
    let mut types = vec![DataType::Binary];
    types.extend(key.iter().map(ScalarValue::data_type));
    let udf = create_udf(name, types, DataType::Boolean, Volatility::Immutable, fun);
    // The scan may give the column as `BinaryView`: the signature takes plain `Binary`.
    let mut args = vec![datafusion::prelude::cast(ident(column), DataType::Binary)];
    args.extend(key.into_iter().map(|v| Expr::Literal(v, None)));
    udf.call(args)
}

/// `within(item, bbox(…))`: the geometry's bounding box inside `b`.
pub fn within_expr(column: &str, b: &BBox) -> Expr {
    let key = [b.min_lon, b.min_lat, b.max_lon, b.max_lat].map(|v| ScalarValue::Float64(Some(v))).to_vec();
    let b = *b;
    predicate("citydata_within_bbox", column, key, move |g| g.within_bbox(&b))
}

/// `within(item, '<code>')`: the geometry inside the district's outline (a point inside it, a
/// polygon with its whole outer ring inside it).
pub fn within_region_expr(column: &str, code: &str, region: &Arc<Geometry>) -> Expr {
    let region = region.clone();
    let key = vec![ScalarValue::Utf8(Some(code.to_string()))];
    predicate("citydata_within_region", column, key, move |g| g.within_shape(&region))
}

/// `distance(item, point(lon, lat)) < metres` (`<=` when `inclusive`): from the geometry's
/// anchor (the point itself, or a polygon's ring mean).
pub fn distance_expr(column: &str, lon: f64, lat: f64, meters: f64, inclusive: bool) -> Expr {
    let key = [lon, lat, meters].map(|v| ScalarValue::Float64(Some(v))).to_vec();
    let name = if inclusive { "citydata_distance_le" } else { "citydata_distance_lt" };
    predicate(name, column, key, move |g| {
        let d = distance_m(g.anchor(), (lon, lat));
        if inclusive { d <= meters } else { d < meters }
    })
}

/// Builds a spatial item's column at ingest from its text cells.
pub struct ColumnBuilder<'a> {
    pub item: &'a InfoItem,
    b: BinaryBuilder,
}

impl<'a> ColumnBuilder<'a> {
    pub fn new(item: &'a InfoItem, n: usize) -> Self {
        Self { item, b: BinaryBuilder::with_capacity(n, n * 21) }
    }
    /// Append one cell; the failure `(rule, message)` when it is refused.
    pub fn push(&mut self, text: Option<&str>) -> Option<(&'static str, String)> {
        match text.map(|t| cell(self.item, t)).unwrap_or(Cell::Null) {
            Cell::Null => {
                self.b.append_null();
                None
            }
            Cell::Wkb(w) => {
                self.b.append_value(w);
                None
            }
            Cell::Bad { rule, message } => {
                self.b.append_null();
                Some((rule, message))
            }
        }
    }
    pub fn finish(mut self) -> ArrayRef {
        Arc::new(self.b.finish())
    }
}

/// One row of a longitude/latitude column pair at ingest.
#[derive(Clone, Copy)]
pub enum PairCell {
    Null,
    Point(f64, f64),
    Bad(&'static str),
}

/// A point item fed by a longitude/latitude column pair, for a whole batch: each row's two
/// cells parsed as numbers and taken through [`geo_cell::point_cell`] (the rules of a
/// `lon,lat` cell, without joining and re-parsing text), the rows split across the machine's
/// cores — converting from GCJ-02 or BD-09 inverts an iterative function and is most of a
/// spatial ingest's cost — then written as WKB. Returns the column and each row's outcome.
pub fn pair_column(
    item: &InfoItem,
    lon: Option<&StringArray>,
    lat: Option<&StringArray>,
    n: usize,
) -> (ArrayRef, Vec<PairCell>) {
    let crs = declared_crs(item);
    let one = |r: usize| -> PairCell {
        let (l, t) = (crate::convert::cell(lon, r), crate::convert::cell(lat, r));
        if l.is_none() && t.is_none() {
            return PairCell::Null;
        }
        match (l.unwrap_or("").parse::<f64>(), t.unwrap_or("").parse::<f64>()) {
            (Ok(x), Ok(y)) => match geo_cell::point_cell(x, y, crs) {
                Ok((x, y)) => PairCell::Point(x, y),
                Err(e) => PairCell::Bad(e.code),
            },
            _ => PairCell::Bad("bad_point"),
        }
    };
    let mut out = vec![PairCell::Null; n];
    let threads = std::thread::available_parallelism().map(|t| t.get()).unwrap_or(1).min(8);
    // Only a converted system is worth the threads; plain CGCS2000 positions are a bounds check.
    if threads > 1 && n >= 4096 && crs != Crs::Cgcs2000 {
        let chunk = n.div_ceil(threads);
        let one = &one;
        std::thread::scope(|s| {
            for (k, part) in out.chunks_mut(chunk).enumerate() {
                s.spawn(move || {
                    for (j, o) in part.iter_mut().enumerate() {
                        *o = one(k * chunk + j);
                    }
                });
            }
        });
    } else {
        for (r, o) in out.iter_mut().enumerate() {
            *o = one(r);
        }
    }
    let mut b = BinaryBuilder::with_capacity(n, n * 21);
    for o in &out {
        match o {
            PairCell::Point(x, y) => {
                let mut w = [0u8; 21];
                w[0] = 1;
                w[1..5].copy_from_slice(&1u32.to_le_bytes());
                w[5..13].copy_from_slice(&x.to_le_bytes());
                w[13..21].copy_from_slice(&y.to_le_bytes());
                b.append_value(w);
            }
            _ => b.append_null(),
        }
    }
    (Arc::new(b.finish()), out)
}

/// The longitude/latitude column pair feeding a point item with no column of its own:
/// `经度`/`纬度`, `lon`/`lat`, `lng`/`lat`, `longitude`/`latitude`, or `<item>_lon`/`<item>_lat`.
pub fn lon_lat_columns(item: &InfoItem, headers: &[String], used: &[bool]) -> Option<(usize, usize)> {
    let norm = |s: &str| s.trim().to_lowercase();
    let name = item.name.as_str();
    let find = |cands: &[String]| {
        headers.iter().enumerate().find(|(i, h)| !used[*i] && cands.contains(&norm(h))).map(|(i, _)| i)
    };
    let lon: Vec<String> = ["经度", "lon", "lng", "longitude", "x"]
        .iter()
        .map(|s| s.to_string())
        .chain([format!("{name}_lon"), format!("{name}_lng"), format!("{}经度", item.title)])
        .collect();
    let lat: Vec<String> = ["纬度", "lat", "latitude", "y"]
        .iter()
        .map(|s| s.to_string())
        .chain([format!("{name}_lat"), format!("{}纬度", item.title)])
        .collect();
    Some((find(&lon)?, find(&lat)?))
}

/// The message of a spatial rule, naming the rule and never the cell (a quarantine message is
/// shown beside counts; the cell itself is only in the provider's record).
pub fn rule_message(rule: &str) -> &'static str {
    match rule {
        "outside_extent" => "坐标不在中国范围内（或不是有效数字）/ coordinates outside China's extent",
        "invalid_ring" => "多边形的环未闭合或少于 4 个点 / a polygon ring is not closed or has fewer than 4 positions",
        "not_a_point" => "只接受点（经度,纬度）/ takes points only",
        "bad_geojson" => "不是有效的 GeoJSON 几何（Point 或 Polygon）/ not a valid GeoJSON geometry",
        "bad_wkt" => "不是有效的 WKT（POINT 或 POLYGON）/ not valid WKT",
        _ => "不是有效的点位（经度,纬度）/ not a valid position (lon,lat)",
    }
}

/// The spatial items of a resource (for [`crate::governed::GovernedRead::spatial`]).
pub fn spatial_items(items: &[InfoItem]) -> Vec<citydata_domain::resource::ItemName> {
    items.iter().filter(|i| i.data_type.is_spatial()).map(|i| i.name.clone()).collect()
}

/// The rows of a GeoJSON FeatureCollection (`None` for any other JSON): each feature's
/// properties, and its geometry object under `geometry` (the column a spatial item without a
/// column of its own reads).
pub fn feature_rows(v: &serde_json::Value) -> Option<Vec<serde_json::Value>> {
    if v.get("type").and_then(serde_json::Value::as_str) != Some("FeatureCollection") {
        return None;
    }
    let features = v.get("features")?.as_array()?;
    Some(
        features
            .iter()
            .map(|f| {
                let mut row = f.get("properties").and_then(serde_json::Value::as_object).cloned().unwrap_or_default();
                row.insert("geometry".into(), f.get("geometry").cloned().unwrap_or(serde_json::Value::Null));
                serde_json::Value::Object(row)
            })
            .collect(),
    )
}
