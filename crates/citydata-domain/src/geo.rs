//! 空间几何 (spatial geometry) as pure functions: the groundwork of spatial items (issue #24,
//! part 4 — the item types, ingest, filters and map previews are not built on it yet).
//!
//! - [`Geometry`] (`Point`, `Polygon` with rings of `(lon, lat)`), parsed from WKT
//!   (`POINT (lon lat)`, `POLYGON ((…), (…))`) and written as little-endian ISO WKB
//!   ([`Geometry::to_wkb`], [`Geometry::from_wkb`]) — the binary column spatial tables will
//!   store — with its [`BBox`] for the bounding-box columns.
//! - [`Geometry::validate`]: coordinates inside China's extent, rings closed with at least four
//!   positions, no NaN — the reasons a quarantine names.
//! - [`distance_m`] (haversine on the GRS 80 mean radius) and [`snap_to_grid`], the core of
//!   the location mask: a point moved to the centre of its cell of `meters`.

use crate::error::FieldError;

/// China's extent as the obfuscation algorithms use it (longitude 72.004–137.8347, latitude
/// 0.8293–55.8271).
pub const CHINA: BBox = BBox { min_lon: 72.004, min_lat: 0.8293, max_lon: 137.8347, max_lat: 55.8271 };

/// Mean Earth radius, metres.
pub const EARTH_RADIUS_M: f64 = 6_371_008.8;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BBox {
    pub min_lon: f64,
    pub min_lat: f64,
    pub max_lon: f64,
    pub max_lat: f64,
}

impl BBox {
    pub fn contains(&self, lon: f64, lat: f64) -> bool {
        (self.min_lon..=self.max_lon).contains(&lon) && (self.min_lat..=self.max_lat).contains(&lat)
    }
    pub fn intersects(&self, o: &BBox) -> bool {
        self.min_lon <= o.max_lon && o.min_lon <= self.max_lon && self.min_lat <= o.max_lat && o.min_lat <= self.max_lat
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Geometry {
    Point(f64, f64),
    /// Outer ring first, then holes; each ring closed (first position = last).
    Polygon(Vec<Vec<(f64, f64)>>),
}

fn bad(code: &'static str, message: String) -> FieldError {
    FieldError::new("geometry", code, message)
}

fn parse_pos(s: &str) -> Result<(f64, f64), FieldError> {
    let mut it = s.split_whitespace();
    let (Some(x), Some(y), None) = (it.next(), it.next(), it.next()) else {
        return Err(bad("bad_wkt", format!("坐标须为“经度 纬度” / a position is \"lon lat\": {s}")));
    };
    match (x.parse(), y.parse()) {
        (Ok(x), Ok(y)) => Ok((x, y)),
        _ => Err(bad("bad_wkt", format!("坐标不是数字 / not numbers: {s}"))),
    }
}

impl Geometry {
    /// `POINT (lon lat)` or `POLYGON ((lon lat, …), …)` (case-insensitive).
    pub fn parse_wkt(text: &str) -> Result<Self, FieldError> {
        let t = text.trim();
        let upper = t.to_ascii_uppercase();
        let body = |prefix: &str| -> Option<String> {
            let rest = upper.strip_prefix(prefix)?.trim_start();
            (rest.starts_with('(') && rest.ends_with(')')).then(|| t[t.len() - rest.len() + 1..t.len() - 1].to_string())
        };
        if let Some(inner) = body("POINT") {
            let (x, y) = parse_pos(&inner)?;
            return Ok(Self::Point(x, y));
        }
        if let Some(inner) = body("POLYGON") {
            let mut rings = Vec::new();
            for ring in inner.split(')').map(|r| r.trim().trim_start_matches(',').trim()).filter(|r| !r.is_empty()) {
                let ring = ring
                    .strip_prefix('(')
                    .ok_or_else(|| bad("bad_wkt", format!("环须以“(”开始 / a ring starts with '(': {ring}")))?;
                rings.push(ring.split(',').map(parse_pos).collect::<Result<Vec<_>, _>>()?);
            }
            return Ok(Self::Polygon(rings));
        }
        Err(bad("bad_wkt", "只支持 POINT 和 POLYGON / only POINT and POLYGON are supported".into()))
    }

    fn positions(&self) -> Box<dyn Iterator<Item = (f64, f64)> + '_> {
        match self {
            Self::Point(x, y) => Box::new(std::iter::once((*x, *y))),
            Self::Polygon(rings) => Box::new(rings.iter().flatten().copied()),
        }
    }

    pub fn bbox(&self) -> BBox {
        let mut b = BBox { min_lon: f64::MAX, min_lat: f64::MAX, max_lon: f64::MIN, max_lat: f64::MIN };
        for (x, y) in self.positions() {
            b.min_lon = b.min_lon.min(x);
            b.min_lat = b.min_lat.min(y);
            b.max_lon = b.max_lon.max(x);
            b.max_lat = b.max_lat.max(y);
        }
        b
    }

    /// Inside China's extent, finite, rings closed with at least four positions.
    pub fn validate(&self) -> Result<(), FieldError> {
        if let Some((x, y)) =
            self.positions().find(|(x, y)| !x.is_finite() || !y.is_finite() || !CHINA.contains(*x, *y))
        {
            return Err(bad(
                "outside_extent",
                format!("坐标 ({x}, {y}) 不在中国范围内 / position ({x}, {y}) is outside China's extent"),
            ));
        }
        if let Self::Polygon(rings) = self {
            if rings.is_empty() {
                return Err(bad("invalid_ring", "多边形没有环 / the polygon has no ring".into()));
            }
            for (i, r) in rings.iter().enumerate() {
                if r.len() < 4 || r.first() != r.last() {
                    return Err(bad(
                        "invalid_ring",
                        format!(
                            "第 {} 个环未闭合或少于 4 个点 / ring {} is not closed or has fewer than 4 positions",
                            i + 1,
                            i + 1
                        ),
                    ));
                }
            }
        }
        Ok(())
    }

    /// Little-endian ISO WKB (type 1 Point, 3 Polygon).
    pub fn to_wkb(&self) -> Vec<u8> {
        let mut out = vec![1u8];
        match self {
            Self::Point(x, y) => {
                out.extend_from_slice(&1u32.to_le_bytes());
                out.extend_from_slice(&x.to_le_bytes());
                out.extend_from_slice(&y.to_le_bytes());
            }
            Self::Polygon(rings) => {
                out.extend_from_slice(&3u32.to_le_bytes());
                out.extend_from_slice(&(rings.len() as u32).to_le_bytes());
                for r in rings {
                    out.extend_from_slice(&(r.len() as u32).to_le_bytes());
                    for (x, y) in r {
                        out.extend_from_slice(&x.to_le_bytes());
                        out.extend_from_slice(&y.to_le_bytes());
                    }
                }
            }
        }
        out
    }

    /// Read WKB (either byte order) of a Point or Polygon.
    pub fn from_wkb(b: &[u8]) -> Result<Self, FieldError> {
        let err = || bad("bad_wkb", "WKB 无效 / invalid WKB".into());
        let le = match b.first() {
            Some(1) => true,
            Some(0) => false,
            _ => return Err(err()),
        };
        let mut at = 1usize;
        let u32_ = |at: &mut usize| -> Result<u32, FieldError> {
            let s: [u8; 4] = b.get(*at..*at + 4).ok_or_else(err)?.try_into().map_err(|_| err())?;
            *at += 4;
            Ok(if le { u32::from_le_bytes(s) } else { u32::from_be_bytes(s) })
        };
        let f64_ = |at: &mut usize| -> Result<f64, FieldError> {
            let s: [u8; 8] = b.get(*at..*at + 8).ok_or_else(err)?.try_into().map_err(|_| err())?;
            *at += 8;
            Ok(if le { f64::from_le_bytes(s) } else { f64::from_be_bytes(s) })
        };
        let g = match u32_(&mut at)? {
            1 => Self::Point(f64_(&mut at)?, f64_(&mut at)?),
            3 => {
                let n = u32_(&mut at)? as usize;
                let mut rings = Vec::with_capacity(n.min(1024));
                for _ in 0..n {
                    let m = u32_(&mut at)? as usize;
                    if m > (b.len() - at.min(b.len())) / 16 {
                        return Err(err());
                    }
                    let mut r = Vec::with_capacity(m);
                    for _ in 0..m {
                        r.push((f64_(&mut at)?, f64_(&mut at)?));
                    }
                    rings.push(r);
                }
                Self::Polygon(rings)
            }
            _ => return Err(bad("bad_wkb", "只支持 Point 和 Polygon / only Point and Polygon WKB".into())),
        };
        if at != b.len() {
            return Err(err());
        }
        Ok(g)
    }
}

/// The districts of the configured boundary resource: each outline (CGCS2000) by its GB/T 2260
/// code, what `within(item, '<code>')` resolves against.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Regions {
    pub by_code: std::collections::BTreeMap<String, std::sync::Arc<Geometry>>,
}

impl Geometry {
    /// Whether `(lon, lat)` lies inside the polygon (even-odd over every ring, so holes are
    /// outside; a position on an edge may fall either way). A point geometry contains nothing.
    pub fn contains(&self, lon: f64, lat: f64) -> bool {
        let Geometry::Polygon(rings) = self else { return false };
        let mut inside = false;
        for ring in rings {
            for w in ring.windows(2) {
                let ((x1, y1), (x2, y2)) = (w[0], w[1]);
                if (y1 > lat) != (y2 > lat) && lon < x1 + (lat - y1) / (y2 - y1) * (x2 - x1) {
                    inside = !inside;
                }
            }
        }
        inside
    }

    /// Whether this geometry lies within `region`: a point inside it, a polygon with every
    /// position of its outer ring inside it.
    pub fn within_shape(&self, region: &Geometry) -> bool {
        let b = region.bbox();
        match self {
            Geometry::Point(x, y) => b.contains(*x, *y) && region.contains(*x, *y),
            Geometry::Polygon(rings) => rings
                .first()
                .is_some_and(|r| !r.is_empty() && r.iter().all(|(x, y)| b.contains(*x, *y) && region.contains(*x, *y))),
        }
    }
}

/// Great-circle distance in metres (haversine).
pub fn distance_m(a: (f64, f64), b: (f64, f64)) -> f64 {
    let (la1, la2) = (a.1.to_radians(), b.1.to_radians());
    let dla = la2 - la1;
    let dlo = (b.0 - a.0).to_radians();
    let h = (dla / 2.0).sin().powi(2) + la1.cos() * la2.cos() * (dlo / 2.0).sin().powi(2);
    2.0 * EARTH_RADIUS_M * h.sqrt().asin()
}

/// The centre of the grid cell of `meters` holding `(lon, lat)`: cells are `meters` tall and,
/// at the cell row's latitude, `meters` wide, so every point of a cell maps to one position
/// and the position is never more than `meters / √2` from the true one.
pub fn snap_to_grid(lon: f64, lat: f64, meters: f64) -> (f64, f64) {
    let dlat = meters / (EARTH_RADIUS_M * std::f64::consts::PI / 180.0);
    let row = (lat / dlat).floor();
    let clat = (row + 0.5) * dlat;
    let dlon = dlat / clat.to_radians().cos().max(1e-6);
    let col = (lon / dlon).floor();
    ((col + 0.5) * dlon, clat)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn points_and_polygons_within_a_region_with_a_hole() {
        let region = Geometry::parse_wkt(
            "POLYGON ((119.8 32.3, 120.1 32.3, 120.1 32.6, 119.8 32.6, 119.8 32.3), (119.9 32.4, 120.0 32.4, 120.0 32.5, 119.9 32.5, 119.9 32.4))",
        )
        .unwrap();
        assert!(Geometry::Point(119.85, 32.35).within_shape(&region));
        assert!(!Geometry::Point(119.95, 32.45).within_shape(&region), "in the hole");
        assert!(!Geometry::Point(120.2, 32.45).within_shape(&region), "east of it");
        assert!(!Geometry::Point(119.85, 32.7).within_shape(&region), "north of it");
        let inside = Geometry::parse_wkt("POLYGON ((119.81 32.31, 119.85 32.31, 119.85 32.35, 119.81 32.31))").unwrap();
        assert!(inside.within_shape(&region));
        let across = Geometry::parse_wkt("POLYGON ((119.81 32.31, 120.2 32.31, 120.2 32.35, 119.81 32.31))").unwrap();
        assert!(!across.within_shape(&region), "a polygon crossing the border");
        assert!(!Geometry::Point(119.85, 32.35).within_shape(&Geometry::Point(119.85, 32.35)));
    }

    #[test]
    fn wkt_and_wkb_round_trip_with_bbox() {
        let p = Geometry::parse_wkt("POINT (119.92 32.45)").unwrap();
        assert_eq!(p, Geometry::Point(119.92, 32.45));
        let wkb = p.to_wkb();
        assert_eq!(wkb.len(), 21);
        assert_eq!(hex(&wkb[..5]), "0101000000");
        assert_eq!(Geometry::from_wkb(&wkb).unwrap(), p);
        let poly = Geometry::parse_wkt("polygon ((119.9 32.4, 120.0 32.4, 120.0 32.5, 119.9 32.4), (119.95 32.42, 119.96 32.42, 119.96 32.43, 119.95 32.42))").unwrap();
        let Geometry::Polygon(r) = &poly else { panic!() };
        assert_eq!((r.len(), r[0].len()), (2, 4));
        assert_eq!(Geometry::from_wkb(&poly.to_wkb()).unwrap(), poly);
        assert_eq!(poly.bbox(), BBox { min_lon: 119.9, min_lat: 32.4, max_lon: 120.0, max_lat: 32.5 });
        // Big-endian WKB of POINT(1 2) from the OGC examples.
        let be = [&[0u8, 0, 0, 0, 1][..], &1.0f64.to_be_bytes(), &2.0f64.to_be_bytes()].concat();
        assert_eq!(Geometry::from_wkb(&be).unwrap(), Geometry::Point(1.0, 2.0));
        for bad in [&b""[..], b"\x01\x01\x00\x00\x00", b"\x02", b"\x01\x03\x00\x00\x00\x01\x00\x00\x00\xff\xff\xff\x7f"]
        {
            assert!(Geometry::from_wkb(bad).is_err(), "{bad:?}");
        }
        assert!(Geometry::parse_wkt("LINESTRING (1 2, 3 4)").is_err());
        assert!(Geometry::parse_wkt("POINT (1)").is_err());
    }

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }

    #[test]
    fn validation_names_the_reason() {
        assert!(Geometry::Point(119.92, 32.45).validate().is_ok());
        assert_eq!(Geometry::Point(2.35, 48.85).validate().unwrap_err().code, "outside_extent");
        assert_eq!(Geometry::Point(f64::NAN, 32.0).validate().unwrap_err().code, "outside_extent");
        let open = Geometry::parse_wkt("POLYGON ((119.9 32.4, 120.0 32.4, 120.0 32.5, 119.9 32.5))").unwrap();
        assert_eq!(open.validate().unwrap_err().code, "invalid_ring");
        assert_eq!(Geometry::Polygon(vec![]).validate().unwrap_err().code, "invalid_ring");
    }

    #[test]
    fn distances_and_grid_snapping() {
        // One degree of latitude is about 111.2 km.
        let d = distance_m((119.9, 32.0), (119.9, 33.0));
        assert!((d - 111_195.0).abs() < 10.0, "{d}");
        // Snapping: within half a cell diagonal, and stable for every point of a cell.
        let p = (119.9234, 32.4561);
        let s = snap_to_grid(p.0, p.1, 500.0);
        assert!(distance_m(p, s) <= 500.0 / 2f64.sqrt() + 1.0, "{}", distance_m(p, s));
        assert_eq!(snap_to_grid(s.0, s.1, 500.0), s);
        let near = snap_to_grid(p.0 + 0.0001, p.1 + 0.0001, 500.0);
        assert_eq!(near, s, "a neighbour in the same cell lands on the same centre");
        assert_ne!(snap_to_grid(p.0, p.1, 500.0), p);
    }
}
