//! 坐标系 (coordinate reference systems) used for Chinese spatial data, and the published
//! conversions between them, as pure functions on (longitude, latitude) in degrees.
//!
//! - **CGCS2000** (2000 国家大地坐标系, EPSG:4490) and **WGS 84** (EPSG:4326) differ by
//!   centimetres: the platform treats them as one system.
//! - **GCJ-02** (国测局坐标, "Mars coordinates") is WGS 84 with the obfuscation that Chinese web
//!   maps (AutoNavi/高德, Tencent, Google China) must apply; **BD-09** (百度坐标) adds Baidu's
//!   own offset on top of GCJ-02.
//!
//! The forward obfuscation is the widely published algorithm (eviltransform,
//! coordtransform: Krasovsky 1940 ellipsoid `a = 6378245`, `ee = 0.00669342162296594323`);
//! it is not invertible in closed form, so GCJ-02 → WGS 84 iterates the forward function
//! until the error left is under 1e-10° (well under a millimetre). Outside China the
//! obfuscation does not apply and points pass unchanged, as in the published libraries.

use std::f64::consts::PI;

/// A coordinate reference system of point data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Crs {
    /// CGCS2000 / WGS 84 (the platform's storage system).
    Cgcs2000,
    Gcj02,
    Bd09,
}

impl Crs {
    pub fn code(self) -> &'static str {
        match self {
            Self::Cgcs2000 => "cgcs2000",
            Self::Gcj02 => "gcj02",
            Self::Bd09 => "bd09",
        }
    }

    /// `cgcs2000`, `wgs84`, `EPSG:4490`, `EPSG:4326`, `gcj02`, `bd09` (case and `-`/`_`
    /// ignored), or the Chinese names.
    pub fn parse(s: &str) -> Option<Self> {
        let k: String = s.trim().chars().filter(|c| !matches!(c, '-' | '_' | ' ')).collect::<String>().to_lowercase();
        Some(match k.as_str() {
            "cgcs2000" | "wgs84" | "epsg:4490" | "epsg:4326" | "2000国家大地坐标系" => Self::Cgcs2000,
            "gcj02" | "国测局坐标" | "火星坐标" => Self::Gcj02,
            "bd09" | "bd09ll" | "百度坐标" => Self::Bd09,
            _ => return None,
        })
    }

    pub fn title_zh(self) -> &'static str {
        match self {
            Self::Cgcs2000 => "CGCS2000 / WGS 84",
            Self::Gcj02 => "GCJ-02 国测局坐标",
            Self::Bd09 => "BD-09 百度坐标",
        }
    }

    /// Convert `(lon, lat)` in `self` to `to`.
    pub fn convert(self, to: Crs, lon: f64, lat: f64) -> (f64, f64) {
        let (lon, lat) = match self {
            Self::Cgcs2000 => (lon, lat),
            Self::Gcj02 => gcj02_to_wgs84(lon, lat),
            Self::Bd09 => {
                let (x, y) = bd09_to_gcj02(lon, lat);
                gcj02_to_wgs84(x, y)
            }
        };
        match to {
            Self::Cgcs2000 => (lon, lat),
            Self::Gcj02 => wgs84_to_gcj02(lon, lat),
            Self::Bd09 => {
                let (x, y) = wgs84_to_gcj02(lon, lat);
                gcj02_to_bd09(x, y)
            }
        }
    }
}

/// Krasovsky 1940 semi-major axis and eccentricity squared, as the algorithm uses them.
const A: f64 = 6_378_245.0;
// The published constant, digit for digit (f64 rounds it as every implementation does).
#[allow(clippy::excessive_precision)]
const EE: f64 = 0.006_693_421_622_965_943_23;
const X_PI: f64 = PI * 3000.0 / 180.0;

/// Outside the rough rectangle of China the obfuscation is not applied.
pub fn out_of_china(lon: f64, lat: f64) -> bool {
    !(72.004..=137.8347).contains(&lon) || !(0.8293..=55.8271).contains(&lat)
}

/// The sines the transform takes, from four `sin` calls and one `sin_cos` instead of ten
/// calls: `sin 3θ = 3 sin θ − 4 sin³ θ`, `cos 3θ = 4 cos³ θ − 3 cos θ`, `sin 2θ = 2 sin θ cos θ`
/// give `sin πx`, `sin 2πx`, `sin 6πx` from `πx/3` and `sin πy` from `πy/3`. The identities
/// agree with direct calls to within ~1e-15 of each term, far below the 1e-10° the results are
/// kept to (the published reference pairs are checked to 1e-12°).
struct Sines {
    /// `(20 sin 6πx + 20 sin 2πx)·2/3`, which both halves add
    shared: f64,
    x: [f64; 4],
    y: [f64; 4],
}

impl Sines {
    fn of(x: f64, y: f64) -> Self {
        let triple = |s: f64| 3.0 * s - 4.0 * s * s * s;
        let (s3, c3) = (x * PI / 3.0).sin_cos();
        let (sx, cx) = (triple(s3), 4.0 * c3 * c3 * c3 - 3.0 * c3);
        let s2 = 2.0 * sx * cx;
        let s6 = triple(s2);
        let sy3 = (y * PI / 3.0).sin();
        Self {
            shared: (20.0 * s6 + 20.0 * s2) * 2.0 / 3.0,
            x: [sx, s3, (x / 12.0 * PI).sin(), (x / 30.0 * PI).sin()],
            y: [triple(sy3), sy3, (y / 12.0 * PI).sin(), (y * PI / 30.0).sin()],
        }
    }
}

fn transform_lat(x: f64, y: f64, s: &Sines) -> f64 {
    let mut r = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * x.abs().sqrt();
    r += s.shared;
    r += (20.0 * s.y[0] + 40.0 * s.y[1]) * 2.0 / 3.0;
    r += (160.0 * s.y[2] + 320.0 * s.y[3]) * 2.0 / 3.0;
    r
}

fn transform_lon(x: f64, y: f64, s: &Sines) -> f64 {
    let mut r = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * x.abs().sqrt();
    r += s.shared;
    r += (20.0 * s.x[0] + 40.0 * s.x[1]) * 2.0 / 3.0;
    r += (150.0 * s.x[2] + 300.0 * s.x[3]) * 2.0 / 3.0;
    r
}

/// WGS 84 / CGCS2000 → GCJ-02.
pub fn wgs84_to_gcj02(lon: f64, lat: f64) -> (f64, f64) {
    if out_of_china(lon, lat) {
        return (lon, lat);
    }
    let (x, y) = (lon - 105.0, lat - 35.0);
    let s = Sines::of(x, y);
    let mut dlat = transform_lat(x, y, &s);
    let mut dlon = transform_lon(x, y, &s);
    let (sin_lat, cos_lat) = (lat / 180.0 * PI).sin_cos();
    let magic = 1.0 - EE * sin_lat * sin_lat;
    let sqrt_magic = magic.sqrt();
    dlat = (dlat * 180.0) / ((A * (1.0 - EE)) / (magic * sqrt_magic) * PI);
    dlon = (dlon * 180.0) / (A / sqrt_magic * cos_lat * PI);
    (lon + dlon, lat + dlat)
}

/// GCJ-02 → WGS 84 / CGCS2000, by fixed-point iteration of the forward function.
pub fn gcj02_to_wgs84(lon: f64, lat: f64) -> (f64, f64) {
    if out_of_china(lon, lat) {
        return (lon, lat);
    }
    let (mut x, mut y) = (lon, lat);
    for _ in 0..30 {
        let (gx, gy) = wgs84_to_gcj02(x, y);
        let (dx, dy) = (gx - lon, gy - lat);
        x -= dx;
        y -= dy;
        // Each step shrinks the error by the offset's slope, under 0.005 inside China (its
        // steepest terms change by ~335 units a degree, a unit being ~9e-6°): after a step of
        // under 1e-8° the error left is under 5e-11°, so one more step would not show.
        if dx.abs() < 1e-8 && dy.abs() < 1e-8 {
            break;
        }
    }
    (x, y)
}

/// GCJ-02 → BD-09.
pub fn gcj02_to_bd09(lon: f64, lat: f64) -> (f64, f64) {
    let z = (lon * lon + lat * lat).sqrt() + 0.00002 * (lat * X_PI).sin();
    let theta = lat.atan2(lon) + 0.000003 * (lon * X_PI).cos();
    (z * theta.cos() + 0.0065, z * theta.sin() + 0.006)
}

/// BD-09 → GCJ-02.
pub fn bd09_to_gcj02(lon: f64, lat: f64) -> (f64, f64) {
    let (x, y) = (lon - 0.0065, lat - 0.006);
    let z = (x * x + y * y).sqrt() - 0.00002 * (y * X_PI).sin();
    let theta = y.atan2(x) - 0.000003 * (x * X_PI).cos();
    (z * theta.cos(), z * theta.sin())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: (f64, f64), b: (f64, f64), tol: f64) -> bool {
        (a.0 - b.0).abs() < tol && (a.1 - b.1).abs() < tol
    }

    /// eviltransform's reference pairs (WGS 84 → GCJ-02), as (lat, lng).
    const EVIL: [(f64, f64, f64, f64); 3] = [
        (31.1774276, 121.5272106, 31.17530398364597, 121.531541859215), // 上海
        (22.543847, 113.912316, 22.540796131694766, 113.9171764808363), // 深圳
        (39.911954, 116.377817, 39.91334545536069, 116.38404722455657), // 北京
    ];

    #[test]
    fn wgs84_to_gcj02_matches_the_published_pairs_and_inverts() {
        for (wlat, wlng, glat, glng) in EVIL {
            let got = wgs84_to_gcj02(wlng, wlat);
            assert!(close(got, (glng, glat), 1e-9), "{got:?} vs {glng},{glat}");
            // The inverse by iteration lands within a millimetre (1e-8° ≈ 1 mm).
            let back = gcj02_to_wgs84(glng, glat);
            assert!(close(back, (wlng, wlat), 1e-8), "{back:?} vs {wlng},{wlat}");
            assert!(close(Crs::Gcj02.convert(Crs::Cgcs2000, glng, glat), (wlng, wlat), 1e-8));
        }
    }

    #[test]
    fn coordtransform_pairs_for_bd09_and_gcj02() {
        // coordtransform's documented results for (116.404, 39.915).
        assert!(close(bd09_to_gcj02(116.404, 39.915), (116.39762729119315, 39.90865673957631), 1e-12));
        assert!(close(gcj02_to_bd09(116.404, 39.915), (116.41036949371029, 39.92133699351021), 1e-12));
        assert!(close(wgs84_to_gcj02(116.404, 39.915), (116.41024449916938, 39.91640428150164), 1e-12));
        // coordtransform's GCJ-02 → WGS 84 is one correction step (metre-level); the iterated
        // inverse agrees to within about a metre (1e-5°) and round-trips exactly.
        let wgs = gcj02_to_wgs84(116.404, 39.915);
        assert!(close(wgs, (116.39775550083061, 39.91359571849836), 1e-5), "{wgs:?}");
        assert!(close(wgs84_to_gcj02(wgs.0, wgs.1), (116.404, 39.915), 1e-9));
    }

    #[test]
    fn outside_china_nothing_moves_and_codes_parse() {
        assert_eq!(wgs84_to_gcj02(2.35, 48.85), (2.35, 48.85));
        assert_eq!(gcj02_to_wgs84(-74.0, 40.7), (-74.0, 40.7));
        for (s, c) in
            [("WGS84", Crs::Cgcs2000), ("EPSG:4490", Crs::Cgcs2000), ("gcj-02", Crs::Gcj02), ("BD_09", Crs::Bd09)]
        {
            assert_eq!(Crs::parse(s), Some(c), "{s}");
            assert_eq!(Crs::parse(c.code()), Some(c));
        }
        assert_eq!(Crs::parse("utm50n"), None);
        // 泰州 in BD-09 → CGCS2000 → BD-09 comes back within a metre (BD-09 → GCJ-02 is the
        // published closed-form approximation of the inverse).
        let p = (119.925, 32.455);
        let w = Crs::Bd09.convert(Crs::Cgcs2000, p.0, p.1);
        assert!(close(Crs::Cgcs2000.convert(Crs::Bd09, w.0, w.1), p, 1e-5));
        // GCJ-02 moves 泰州 by a few hundred metres, never by nothing.
        let g = wgs84_to_gcj02(p.0, p.1);
        assert!((g.0 - p.0).abs() > 1e-3 && (g.1 - p.1).abs() > 1e-4, "{g:?}");
    }

    /// The inversion's early stop leaves under 1e-10° of error anywhere in China (a grid of
    /// 200 × 200 positions over the whole rectangle, the slope's steepest places included).
    #[test]
    fn the_inverse_is_within_1e_10_degrees_everywhere_in_china() {
        let mut worst: f64 = 0.0;
        for i in 0..200 {
            for j in 0..200 {
                let (lon, lat) = (73.0 + f64::from(i) * 64.0 / 199.0, 1.0 + f64::from(j) * 54.0 / 199.0);
                let (gx, gy) = wgs84_to_gcj02(lon, lat);
                let (x, y) = gcj02_to_wgs84(gx, gy);
                worst = worst.max((x - lon).abs()).max((y - lat).abs());
            }
        }
        assert!(worst < 1e-10, "worst error {worst:e}°");
    }

    /// The sines from identities equal the direct calls, term by term, over China and beyond.
    #[test]
    fn the_sines_from_identities_equal_the_direct_calls() {
        for i in 0..400 {
            for j in 0..400 {
                let (x, y) = (-40.0 + f64::from(i) * 0.2, -40.0 + f64::from(j) * 0.2);
                let s = Sines::of(x, y);
                let shared = (20.0 * (6.0 * x * PI).sin() + 20.0 * (2.0 * x * PI).sin()) * 2.0 / 3.0;
                let direct_x = [(x * PI).sin(), (x / 3.0 * PI).sin(), (x / 12.0 * PI).sin(), (x / 30.0 * PI).sin()];
                let direct_y = [(y * PI).sin(), (y / 3.0 * PI).sin(), (y / 12.0 * PI).sin(), (y * PI / 30.0).sin()];
                assert!((s.shared - shared).abs() < 1e-11, "{x}: {} vs {shared}", s.shared);
                for k in 0..4 {
                    assert!((s.x[k] - direct_x[k]).abs() < 1e-13, "x {x} term {k}");
                    assert!((s.y[k] - direct_y[k]).abs() < 1e-13, "y {y} term {k}");
                }
            }
        }
    }
}
