//! Spatial cells (issue #24, part 2): the text forms a `point` or `geometry` item accepts at
//! ingest and the forms reads give back.
//!
//! - In: WKT (`POINT (lon lat)`, `POLYGON ((…))`), a GeoJSON geometry object
//!   (`{"type":"Point","coordinates":[lon,lat]}`, `Polygon`), or for points `lon,lat` /
//!   `lon lat`. [`parse_cell`] converts from the item's declared system ([`Crs`], the item's
//!   `crs:` validator) to the storage system (CGCS2000) and validates (China's extent, closed
//!   rings): the error names the reason a quarantine records.
//! - Out: WKT ([`Geometry::to_wkt`]) in rows, CSV, JSON and SQL; GeoJSON
//!   ([`Geometry::to_geojson`]) in the GeoJSON export.

use crate::crs::Crs;
use crate::error::FieldError;
use crate::geo::Geometry;
use serde_json::{Value, json};

fn bad(code: &'static str, message: String) -> FieldError {
    FieldError::new("geometry", code, message)
}

fn pos(v: &Value) -> Option<(f64, f64)> {
    let a = v.as_array()?;
    if a.len() < 2 {
        return None;
    }
    Some((a[0].as_f64()?, a[1].as_f64()?))
}

/// A GeoJSON geometry object (Point or Polygon) as a [`Geometry`].
pub fn from_geojson(v: &Value) -> Result<Geometry, FieldError> {
    let unsupported = || {
        bad(
            "bad_geojson",
            "GeoJSON 几何须为 Point 或 Polygon，坐标为 [经度, 纬度] / a GeoJSON geometry must be a Point or a Polygon of [lon, lat] positions".into(),
        )
    };
    let coords = v.get("coordinates").ok_or_else(unsupported)?;
    match v.get("type").and_then(Value::as_str) {
        Some("Point") => pos(coords).map(|(x, y)| Geometry::Point(x, y)).ok_or_else(unsupported),
        Some("Polygon") => {
            let rings = coords.as_array().ok_or_else(unsupported)?;
            let rings = rings
                .iter()
                .map(|r| r.as_array().and_then(|ps| ps.iter().map(pos).collect::<Option<Vec<_>>>()))
                .collect::<Option<Vec<_>>>()
                .ok_or_else(unsupported)?;
            Ok(Geometry::Polygon(rings))
        }
        _ => Err(unsupported()),
    }
}

/// The geometry a cell holds, in the system it was written in.
pub fn parse_text(text: &str) -> Result<Geometry, FieldError> {
    let t = text.trim();
    if t.starts_with('{') {
        let v: Value = serde_json::from_str(t)
            .map_err(|e| bad("bad_geojson", format!("GeoJSON 无法解析 / GeoJSON does not parse: {e}")))?;
        return from_geojson(&v);
    }
    if t.contains('(') && t.chars().next().is_some_and(|c| c.is_ascii_alphabetic()) {
        return Geometry::parse_wkt(t);
    }
    let parts: Vec<&str> = t.split([',', '，', ' ']).map(str::trim).filter(|s| !s.is_empty()).collect();
    match parts.as_slice() {
        [x, y] => match (x.parse::<f64>(), y.parse::<f64>()) {
            (Ok(x), Ok(y)) => Ok(Geometry::Point(x, y)),
            _ => Err(bad("bad_point", "经纬度须为数字 / longitude and latitude must be numbers".into())),
        },
        _ => Err(bad(
            "bad_point",
            "须为“经度,纬度”、WKT 或 GeoJSON 几何 / expected \"lon,lat\", WKT or a GeoJSON geometry".into(),
        )),
    }
}

impl Geometry {
    /// Every position converted from `from` to `to`.
    pub fn convert(self, from: Crs, to: Crs) -> Geometry {
        if from == to {
            return self;
        }
        match self {
            Geometry::Point(x, y) => {
                let (x, y) = from.convert(to, x, y);
                Geometry::Point(x, y)
            }
            Geometry::Polygon(rings) => Geometry::Polygon(
                rings.into_iter().map(|r| r.into_iter().map(|(x, y)| from.convert(to, x, y)).collect()).collect(),
            ),
        }
    }

    pub fn is_point(&self) -> bool {
        matches!(self, Geometry::Point(..))
    }

    /// WKT with up to 7 decimals (about 1 cm).
    pub fn to_wkt(&self) -> String {
        let p = |(x, y): (f64, f64)| format!("{} {}", round7(x), round7(y));
        match self {
            Geometry::Point(x, y) => format!("POINT ({})", p((*x, *y))),
            Geometry::Polygon(rings) => {
                let rs: Vec<String> = rings
                    .iter()
                    .map(|r| format!("({})", r.iter().map(|q| p(*q)).collect::<Vec<_>>().join(", ")))
                    .collect();
                format!("POLYGON ({})", rs.join(", "))
            }
        }
    }

    /// A GeoJSON geometry object.
    pub fn to_geojson(&self) -> Value {
        let p = |(x, y): (f64, f64)| json!([round7(x), round7(y)]);
        match self {
            Geometry::Point(x, y) => json!({"type": "Point", "coordinates": p((*x, *y))}),
            Geometry::Polygon(rings) => json!({
                "type": "Polygon",
                "coordinates": rings.iter().map(|r| r.iter().map(|q| p(*q)).collect::<Vec<_>>()).collect::<Vec<_>>(),
            }),
        }
    }

    /// A representative position: the point, or the mean of a polygon's outer ring.
    pub fn anchor(&self) -> (f64, f64) {
        match self {
            Geometry::Point(x, y) => (*x, *y),
            Geometry::Polygon(rings) => {
                let r = rings.first().map(|r| &r[..r.len().saturating_sub(1).max(1).min(r.len())]).unwrap_or(&[]);
                if r.is_empty() {
                    return (0.0, 0.0);
                }
                let n = r.len() as f64;
                (r.iter().map(|p| p.0).sum::<f64>() / n, r.iter().map(|p| p.1).sum::<f64>() / n)
            }
        }
    }

    /// Whether the geometry lies within `b` (a polygon by its bounding box, so a polygon that
    /// crosses the edge is not within).
    pub fn within_bbox(&self, b: &crate::geo::BBox) -> bool {
        let g = self.bbox();
        b.contains(g.min_lon, g.min_lat) && b.contains(g.max_lon, g.max_lat)
    }
}

fn round7(v: f64) -> f64 {
    (v * 1e7).round() / 1e7
}

/// A cell of a spatial item: parsed, converted from `from` to CGCS2000, validated. `point_only`
/// refuses anything but a point (items of type `point`).
pub fn parse_cell(text: &str, from: Crs, point_only: bool) -> Result<Geometry, FieldError> {
    let g = parse_text(text)?;
    if point_only && !g.is_point() {
        return Err(bad("not_a_point", "此信息项只接受点（经度,纬度）/ this item takes points only".into()));
    }
    if let Geometry::Point(x, y) = g {
        return point_cell(x, y, from).map(|(x, y)| Geometry::Point(x, y));
    }
    // Validate where it was written (the obfuscations are defined only inside China), then
    // again after conversion.
    g.validate()?;
    let g = g.convert(from, Crs::Cgcs2000);
    g.validate()?;
    Ok(g)
}

/// A position written in `from`: validated where written (the obfuscations are defined only
/// inside China), converted to CGCS2000, validated again — [`parse_cell`]'s rules for a point,
/// without a geometry or any text (the ingest's longitude/latitude column pairs).
pub fn point_cell(x: f64, y: f64, from: Crs) -> Result<(f64, f64), FieldError> {
    let check = |x: f64, y: f64| {
        if x.is_finite() && y.is_finite() && crate::geo::CHINA.contains(x, y) {
            Ok((x, y))
        } else {
            Err(bad(
                "outside_extent",
                format!("坐标 ({x}, {y}) 不在中国范围内 / position ({x}, {y}) is outside China's extent"),
            ))
        }
    };
    let (x, y) = check(x, y)?;
    let (x, y) = from.convert(Crs::Cgcs2000, x, y);
    check(x, y)
}

/// The location mask: a point snapped to the centre of its grid cell of `meters`; a polygon
/// becomes the snapped point of its anchor (its shape would give the exact place away).
pub fn snap(g: &Geometry, meters: f64) -> Geometry {
    let (x, y) = g.anchor();
    let (x, y) = crate::geo::snap_to_grid(x, y, meters);
    Geometry::Point(x, y)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_in_every_form_convert_and_validate() {
        let a = parse_cell("119.92,32.45", Crs::Cgcs2000, true).unwrap();
        assert_eq!(a, Geometry::Point(119.92, 32.45));
        assert_eq!(parse_cell("POINT (119.92 32.45)", Crs::Cgcs2000, true).unwrap(), a);
        assert_eq!(parse_cell(r#"{"type":"Point","coordinates":[119.92,32.45]}"#, Crs::Cgcs2000, true).unwrap(), a);
        // GCJ-02 → CGCS2000: the eviltransform reference pair (Shanghai).
        let g = parse_cell("121.48941,31.22588", Crs::Gcj02, true).unwrap();
        let Geometry::Point(x, y) = g else { panic!() };
        let (fx, fy) = crate::crs::wgs84_to_gcj02(x, y);
        assert!((fx - 121.48941).abs() < 1e-8 && (fy - 31.22588).abs() < 1e-8);
        assert_eq!(parse_cell("10.0,50.0", Crs::Cgcs2000, true).unwrap_err().code, "outside_extent");
        assert_eq!(parse_cell("abc", Crs::Cgcs2000, true).unwrap_err().code, "bad_point");
        assert_eq!(parse_cell("POINT (1", Crs::Cgcs2000, true).unwrap_err().code, "bad_wkt");
        assert_eq!(parse_cell("1.0;2.0", Crs::Cgcs2000, true).unwrap_err().code, "bad_point");
        let poly = "POLYGON ((119.9 32.4, 120.0 32.4, 120.0 32.5, 119.9 32.4))";
        assert_eq!(parse_cell(poly, Crs::Cgcs2000, true).unwrap_err().code, "not_a_point");
        let p = parse_cell(poly, Crs::Cgcs2000, false).unwrap();
        assert_eq!(p.to_wkt(), "POLYGON ((119.9 32.4, 120 32.4, 120 32.5, 119.9 32.4))");
        assert_eq!(from_geojson(&p.to_geojson()).unwrap(), p);
        let open = "POLYGON ((119.9 32.4, 120.0 32.4, 120.0 32.5, 119.95 32.45))";
        assert_eq!(parse_cell(open, Crs::Cgcs2000, false).unwrap_err().code, "invalid_ring");
        assert_eq!(parse_cell("{\"type\":\"Line\"}", Crs::Cgcs2000, false).unwrap_err().code, "bad_geojson");
    }

    #[test]
    fn the_mask_hides_the_exact_place() {
        let g = Geometry::Point(119.923456, 32.456789);
        let s = snap(&g, 500.0);
        let Geometry::Point(x, y) = s else { panic!() };
        assert!(crate::geo::distance_m((x, y), (119.923456, 32.456789)) <= 500.0);
        assert_ne!(s, g);
        assert_eq!(snap(&Geometry::Point(119.9235, 32.4568), 500.0), s);
    }
}
