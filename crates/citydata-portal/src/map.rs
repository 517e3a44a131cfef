//! 地图预览 (issue #24): a spatial resource's features drawn on the server as inline SVG — no
//! tile server, no script. The features come through the gate like every read (the viewer's
//! grant, row filter and location mask apply: a masked viewer sees snapped points), at most
//! [`MAX_FEATURES`] of them, in a plain equirectangular projection of their extent (longitude
//! scaled by the cosine of the middle latitude), with the districts of the configured boundary
//! resource (`boundary_resource`, open to all) behind them when they meet the features' extent,
//! a legend naming that resource (the demo's says its shapes are generated) and a `<title>` per
//! feature and district for hover.

use crate::chart::esc;
use crate::ctx::Ctx;
use citydata_api::AppState;
use citydata_core::reads::RowsParams;
use citydata_domain::geo::Geometry;
use citydata_domain::geo_cell;
use citydata_domain::resource::Resource;
use citydata_domain::vocab::DataType;
use serde_json::{Value, json};

pub const MAX_FEATURES: u32 = 500;
const W: f64 = 640.0;
const PAD: f64 = 16.0;
/// The legend's band at the top.
const TOP: f64 = 80.0;

/// The map of `r` for its page, or `None` (no spatial item, refused, or nothing to draw).
pub(crate) async fn dataset_map(state: &AppState, ctx: &Ctx, r: &Resource) -> Option<Value> {
    let geo = r.content.items.iter().find(|i| i.data_type.is_spatial())?;
    let label = r.content.items.iter().find(|i| matches!(i.data_type, DataType::String) && !i.data_type.is_spatial());
    let fields = match label {
        Some(l) => format!("{},{}", geo.name, l.name),
        None => geo.name.to_string(),
    };
    let params = RowsParams { fields: Some(fields), limit: Some(MAX_FEATURES), ..Default::default() };
    let page = state.core.read_rows(&ctx.meta, ctx.principal.as_ref(), &r.id.to_string(), &params).await.ok()?;
    let features: Vec<(Geometry, String)> = page
        .rows
        .iter()
        .filter_map(|row| {
            let g = geo_cell::parse_text(row.get(geo.name.as_str())?.as_str()?).ok()?;
            let t = label.and_then(|l| row.get(l.name.as_str())).and_then(Value::as_str).unwrap_or("").to_string();
            Some((g, t))
        })
        .collect();
    if features.is_empty() {
        return None;
    }
    let masked = page_masked(&page, geo.name.as_str());
    let outlines = state.core.district_outlines().await;
    let districts = outlines.as_ref().map(|(name, r)| (name.as_str(), r.as_ref()));
    Some(json!({
        "svg": svg(&features, districts, &geo.title, masked, ctx.lang == crate::i18n::Lang::Zh),
        "count": features.len(),
        "masked": masked
    }))
}

fn page_masked(page: &citydata_core::reads::RowsResult, item: &str) -> bool {
    serde_json::to_value(page)
        .ok()
        .and_then(|v| {
            v["fields"].as_array().and_then(|fs| fs.iter().find(|f| f["name"] == item).map(|f| !f["mask"].is_null()))
        })
        .unwrap_or(false)
}

struct Proj {
    min_x: f64,
    max_y: f64,
    k: f64,
    kx: f64,
    /// The picture's height and the horizontal offset that centres the data.
    h: f64,
    left: f64,
}

impl Proj {
    /// Fit the extent into the width, the height following the data's aspect (at most 1.2×
    /// the width), below the legend's band.
    fn new(min_x: f64, min_y: f64, max_x: f64, max_y: f64) -> Self {
        let mid = ((min_y + max_y) / 2.0).to_radians().cos().max(0.1);
        let (dx, dy) = (((max_x - min_x) * mid).max(1e-4), (max_y - min_y).max(1e-4));
        let max_h = W * 1.2 - TOP - PAD;
        let k = ((W - 2.0 * PAD) / dx).min(max_h / dy);
        let left = PAD + ((W - 2.0 * PAD) - dx * k) / 2.0;
        Self { min_x, max_y, k, kx: k * mid, h: TOP + dy * k + PAD, left }
    }
    fn at(&self, (x, y): (f64, f64)) -> (f64, f64) {
        (self.left + (x - self.min_x) * self.kx, TOP + (self.max_y - y) * self.k)
    }
    fn path(&self, ring: &[(f64, f64)]) -> String {
        let mut d = String::new();
        for (i, p) in ring.iter().enumerate() {
            let (x, y) = self.at(*p);
            d.push_str(&format!("{}{x:.1},{y:.1}", if i == 0 { "M" } else { "L" }));
        }
        d.push('Z');
        d
    }
}

fn svg(
    features: &[(Geometry, String)],
    districts: Option<(&str, &citydata_domain::geo::Regions)>,
    title: &str,
    masked: bool,
    zh: bool,
) -> String {
    let mut b = features[0].0.bbox();
    let grow = |b: &mut citydata_domain::geo::BBox, o: &citydata_domain::geo::BBox| {
        b.min_lon = b.min_lon.min(o.min_lon);
        b.min_lat = b.min_lat.min(o.min_lat);
        b.max_lon = b.max_lon.max(o.max_lon);
        b.max_lat = b.max_lat.max(o.max_lat);
    };
    for (g, _) in features {
        grow(&mut b, &g.bbox());
    }
    let districts_source = districts;
    // The districts drawn: those meeting the features' extent, which then grows to hold them.
    let extent = b;
    let districts: Vec<(&str, &Geometry)> = districts
        .map(|(_, r)| {
            r.by_code
                .iter()
                .filter(|(_, g)| {
                    let o = g.bbox();
                    o.min_lon <= extent.max_lon
                        && o.max_lon >= extent.min_lon
                        && o.min_lat <= extent.max_lat
                        && o.max_lat >= extent.min_lat
                })
                .map(|(c, g)| (c.as_str(), g.as_ref()))
                .collect()
        })
        .unwrap_or_default();
    for (_, g) in &districts {
        grow(&mut b, &g.bbox());
    }
    let p = Proj::new(b.min_lon, b.min_lat, b.max_lon, b.max_lat);
    let h = p.h.ceil();
    let (what, legend_title) = if zh { ("地图", "图例") } else { ("Map", "Legend") };
    let mut s = format!(
        r##"<svg class="map" viewBox="0 0 {W} {h}" width="100%" role="img" aria-labelledby="map-t" xmlns="http://www.w3.org/2000/svg"><title id="map-t">{} {what}</title><rect width="{W}" height="{h}" fill="#f4f7f6"/>"##,
        esc(title)
    );
    if !districts.is_empty() {
        s.push_str(r##"<g class="districts" fill="#e3ebe6" stroke="#8aa595" stroke-width="1">"##);
        for (code, g) in &districts {
            // The GB/T 2260 name and code, the same in both languages.
            let name = citydata_domain::region::RegionCode::parse(code).ok().and_then(|c| c.name());
            let label = match name {
                Some(n) => format!("{n}（{code}）"),
                None => code.to_string(),
            };
            let Geometry::Polygon(rings) = g else { continue };
            let d: String = rings.iter().map(|r| p.path(r)).collect();
            s.push_str(&format!(r#"<path d="{d}" fill-rule="evenodd"><title>{}</title></path>"#, esc(&label)));
        }
        s.push_str("</g>");
    }
    s.push_str(r##"<g class="features" fill="#c0392b" fill-opacity="0.55" stroke="#7b241c" stroke-width="1">"##);
    for (g, t) in features {
        let hover = if t.is_empty() { g.to_wkt() } else { format!("{t} · {}", g.to_wkt()) };
        match g {
            Geometry::Point(x, y) => {
                let (cx, cy) = p.at((*x, *y));
                s.push_str(&format!(
                    r#"<circle cx="{cx:.1}" cy="{cy:.1}" r="4"><title>{}</title></circle>"#,
                    esc(&hover)
                ));
            }
            Geometry::Polygon(rings) => {
                let d: String = rings.iter().map(|r| p.path(r)).collect();
                s.push_str(&format!(r#"<path d="{d}" fill-rule="evenodd"><title>{}</title></path>"#, esc(&hover)));
            }
        }
    }
    s.push_str("</g>");
    // Legend.
    let n = features.len();
    let kind = if features.iter().all(|(g, _)| g.is_point()) {
        if zh { "点位" } else { "points" }
    } else if zh {
        "面"
    } else {
        "polygons"
    };
    let mut lines =
        vec![if zh { format!("{}（{n} 个{kind}）", esc(title)) } else { format!("{} ({n} {kind})", esc(title)) }];
    if let (false, Some((source, _))) = (districts.is_empty(), districts_source) {
        lines.push(if zh {
            format!("灰色为区县边界，来自「{}」", esc(source))
        } else {
            format!("Grey: district outlines from “{}”", esc(source))
        });
    }
    if masked {
        lines.push(if zh { "位置已按网格脱敏".into() } else { "Positions snapped to a grid (masked)".into() });
    }
    // The legend in its own band at the top, two columns.
    s.push_str(&format!(
        r##"<g class="legend" font-size="11"><text x="16" y="20" font-weight="bold">{legend_title}</text>"##
    ));
    for (i, l) in lines.iter().enumerate() {
        let y = 20.0 + 16.0 * (i as f64 + 1.0);
        let mark = if i == 0 { r##"<circle cx="20" cy="0" r="4" fill="#c0392b"/>"## } else { "" };
        s.push_str(&format!(r#"<g transform="translate(0,{y:.0})">{mark}<text x="30" y="4">{l}</text></g>"#));
    }
    s.push_str("</g></svg>");
    s
}
