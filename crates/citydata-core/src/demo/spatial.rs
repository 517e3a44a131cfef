//! Generated spatial cells for the demo (issue #24): points and small planning polygons inside
//! 泰州's six districts (around each district's seat, so a map shows six clusters), and the
//! generated district boundaries the map draws behind them. None of it is surveyed data: every
//! shape here is labelled 示例 (generated) where it is shown.

use citydata_domain::crs::Crs;
use citydata_domain::resource::{InfoItem, Validator};
use citydata_domain::vocab::DataType;
use rand::Rng;
use rand::rngs::StdRng;

/// The seats of 海陵区, 高港区, 姜堰区, 兴化市, 靖江市, 泰兴市 (CGCS2000, approximate), in the
/// order of the generator's districts.
pub const SEATS: [(f64, f64); 6] =
    [(119.92, 32.49), (119.88, 32.32), (120.15, 32.51), (119.85, 32.94), (120.27, 32.02), (120.05, 32.17)];

/// Generated district outlines (示例): a hexagon around each seat, labelled with the
/// district's name. Not the real boundaries.
pub fn districts() -> Vec<(&'static str, Vec<(f64, f64)>)> {
    const NAMES: [&str; 6] = ["海陵区", "高港区", "姜堰区", "兴化市", "靖江市", "泰兴市"];
    const R: [f64; 6] = [0.07, 0.08, 0.12, 0.2, 0.1, 0.11];
    NAMES
        .iter()
        .zip(SEATS)
        .zip(R)
        .map(|((n, (x, y)), r)| {
            let mut ring: Vec<(f64, f64)> = (0..6)
                .map(|k| {
                    let a = std::f64::consts::PI / 3.0 * k as f64;
                    (x + r * a.cos(), y + r * 0.85 * a.sin())
                })
                .collect();
            ring.push(ring[0]);
            (*n, ring)
        })
        .collect()
}

/// The rows of the demo's boundary resource ([`super::BOUNDARY`]): code, name and generated
/// outline of each district, as CSV.
pub fn boundary_csv() -> String {
    let mut csv = String::from("行政区划代码,区划名称,范围（示例图形）\n");
    for ((code, name), (_, ring)) in super::DISTRICTS.iter().zip(districts()) {
        let ring: Vec<String> = ring.iter().map(|(x, y)| format!("{x:.6} {y:.6}")).collect();
        csv.push_str(&format!("{code},{name},\"POLYGON (({}))\"\n", ring.join(", ")));
    }
    csv
}

/// One cell of a spatial item for a row of `district`: a point near the seat (written in the
/// item's declared system), or a small square polygon.
pub fn cell(item: &InfoItem, district: usize, rng: &mut StdRng) -> String {
    let (x, y) = SEATS[district % 6];
    let (x, y) = (x + rng.gen_range(-0.05..0.05), y + rng.gen_range(-0.04..0.04));
    match item.data_type {
        DataType::Point => {
            let crs = match &item.validator {
                Some(Validator::Crs(c)) => *c,
                _ => Crs::Cgcs2000,
            };
            let (x, y) = Crs::Cgcs2000.convert(crs, x, y);
            format!("{x:.7},{y:.7}")
        }
        _ => {
            let d = rng.gen_range(0.003..0.012);
            format!(
                "POLYGON (({x0:.6} {y0:.6}, {x1:.6} {y0:.6}, {x1:.6} {y1:.6}, {x0:.6} {y1:.6}, {x0:.6} {y0:.6}))",
                x0 = x - d,
                y0 = y - d,
                x1 = x + d,
                y1 = y + d
            )
        }
    }
}
