//! Charts drawn on the server as inline SVG (no script, no external file): horizontal bars for
//! category counts, vertical bars for histograms, a line over time. Every label is escaped.

pub(crate) fn esc(s: &str) -> String {
    minijinja::HtmlEscape(s).to_string()
}

/// Display width of text at the chart's 11px font, in ASCII units (a CJK character is two).
fn width_units(s: &str) -> usize {
    s.chars().map(|c| if c.is_ascii() { 1 } else { 2 }).sum()
}

/// `s` shortened to `units` wide, with `…` when cut.
fn fit(s: &str, units: usize) -> String {
    if width_units(s) <= units {
        return s.to_string();
    }
    let mut out = String::new();
    let mut w = 0;
    for c in s.chars() {
        let cw = if c.is_ascii() { 1 } else { 2 };
        if w + cw + 1 > units {
            break;
        }
        out.push(c);
        w += cw;
    }
    out.push('…');
    out
}

/// A label that fits `units`, its full text as a tooltip (and for screen readers in the title).
fn label_text(x: f64, y: f64, anchor: &str, label: &str, units: usize) -> String {
    format!(
        r#"<text x="{x:.1}" y="{y:.1}" text-anchor="{anchor}" class="lbl"><title>{full}</title>{short}</text>"#,
        full = esc(label),
        short = esc(&fit(label, units))
    )
}

/// Pixels per width unit at 11px (about 6.2px for ASCII, 12 for a CJK character).
const UNIT_PX: f64 = 6.2;

fn fmt(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 { format!("{}", v as i64) } else { format!("{v:.2}") }
}

/// Horizontal bars, one per `(label, value)`, largest first as given.
pub fn bars(title: &str, data: &[(String, f64)]) -> String {
    let row = 22.0;
    // The label column is as wide as the longest label needs, within 90–200 px.
    let longest = data.iter().map(|d| width_units(&d.0)).max().unwrap_or(4) as f64;
    let left = (longest * UNIT_PX + 12.0).clamp(90.0, 200.0);
    let label_units = ((left - 12.0) / UNIT_PX) as usize;
    let width = 560.0;
    let height = 30.0 + row * data.len() as f64;
    let max = data.iter().map(|d| d.1).fold(0.0_f64, f64::max).max(1.0);
    let mut s = format!(
        r#"<svg class="chart" role="img" aria-label="{t}" viewBox="0 0 {width} {height}" xmlns="http://www.w3.org/2000/svg"><title>{t}</title>"#,
        t = esc(title)
    );
    for (i, (label, v)) in data.iter().enumerate() {
        let y = 20.0 + row * i as f64;
        let w = (width - left - 60.0) * v / max;
        s.push_str(&label_text(left - 6.0, y + 12.0, "end", label, label_units));
        s.push_str(&format!(
            r#"<rect x="{left:.1}" y="{y}" width="{w:.1}" height="16" class="bar"><title>{full}: {val}</title></rect><text x="{vx:.1}" y="{ty}" class="val">{val}</text>"#,
            ty = y + 12.0,
            full = esc(label),
            val = fmt(*v),
            vx = left + w + 4.0,
        ));
    }
    s.push_str("</svg>");
    s
}

/// Vertical bars over consecutive ranges (a histogram) or periods.
pub fn columns(title: &str, data: &[(String, f64)]) -> String {
    let width = 600.0;
    let height = 220.0;
    let bottom = 180.0;
    let n = data.len().max(1) as f64;
    let slot = (width - 40.0) / n;
    let max = data.iter().map(|d| d.1).fold(0.0_f64, f64::max).max(1.0);
    let (every, units) = label_spacing(data, slot);
    let mut s = format!(
        r#"<svg class="chart" role="img" aria-label="{t}" viewBox="0 0 {width} {height}" xmlns="http://www.w3.org/2000/svg"><title>{t}</title><line x1="20" y1="{bottom}" x2="{x2}" y2="{bottom}" class="axis"/>"#,
        t = esc(title),
        x2 = width - 20.0
    );
    for (i, (label, v)) in data.iter().enumerate() {
        let h = (bottom - 20.0) * v / max;
        let x = 20.0 + slot * i as f64;
        s.push_str(&format!(
            r#"<rect x="{x:.1}" y="{y:.1}" width="{w:.1}" height="{h:.1}" class="bar"><title>{l}: {val}</title></rect>"#,
            y = bottom - h,
            w = (slot - 2.0).max(1.0),
            l = esc(label),
            val = fmt(*v),
        ));
        // Axis labels never overlap: every k-th, each fitted to k slots.
        if i % every == 0 {
            s.push_str(&label_text(x + slot / 2.0, bottom + 16.0, "middle", label, units));
        }
    }
    s.push_str("</svg>");
    s
}

/// A line through `(label, value)` points in order (e.g. counts per year).
pub fn line(title: &str, data: &[(String, f64)]) -> String {
    let width = 600.0;
    let bottom = 180.0;
    let max = data.iter().map(|d| d.1).fold(0.0_f64, f64::max).max(1.0);
    let step = if data.len() > 1 { (width - 60.0) / (data.len() - 1) as f64 } else { 0.0 };
    let pts: Vec<String> = data
        .iter()
        .enumerate()
        .map(|(i, (_, v))| format!("{:.1},{:.1}", 30.0 + step * i as f64, bottom - (bottom - 20.0) * v / max))
        .collect();
    let mut s = format!(
        r#"<svg class="chart" role="img" aria-label="{t}" viewBox="0 0 {width} 220" xmlns="http://www.w3.org/2000/svg"><title>{t}</title><line x1="20" y1="{bottom}" x2="{x2}" y2="{bottom}" class="axis"/><polyline points="{p}" class="line" fill="none"/>"#,
        t = esc(title),
        x2 = width - 20.0,
        p = pts.join(" ")
    );
    let (every, units) = label_spacing(data, step.max(1.0));
    for (i, (label, v)) in data.iter().enumerate() {
        let x = 30.0 + step * i as f64;
        s.push_str(&format!(
            r#"<circle cx="{x:.1}" cy="{y:.1}" r="3" class="dot"><title>{l}: {val}</title></circle>"#,
            y = bottom - (bottom - 20.0) * v / max,
            l = esc(label),
            val = fmt(*v)
        ));
        if i % every == 0 {
            s.push_str(&label_text(x, bottom + 16.0, "middle", label, units));
        }
    }
    s.push_str("</svg>");
    s
}

/// How often to label the axis (every k-th point) and how wide each label may be, so that
/// labels `slot` px apart never overlap.
fn label_spacing(data: &[(String, f64)], slot: f64) -> (usize, usize) {
    let widest = data.iter().map(|d| width_units(&d.0)).max().unwrap_or(1) as f64 * UNIT_PX + 6.0;
    let every = ((widest / slot).ceil() as usize).clamp(1, data.len().max(1));
    let units = ((slot * every as f64 - 6.0) / UNIT_PX).max(3.0) as usize;
    (every, units)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_escaped_and_bars_scale_to_the_largest() {
        let svg = bars("区县", &[("<script>alert(1)</script>".into(), 10.0), ("海陵区".into(), 5.0)]);
        assert!(!svg.contains("<script>"), "{svg}");
        assert!(svg.contains("&lt;script&gt;"));
        let widths: Vec<f64> = svg
            .split("<rect ")
            .skip(1)
            .map(|r| r.split("width=\"").nth(1).unwrap().split('"').next().unwrap().parse().unwrap())
            .collect();
        let left: f64 = svg.split("<rect x=\"").nth(1).unwrap().split('"').next().unwrap().parse().unwrap();
        assert!((widths[0] - (560.0 - left - 60.0)).abs() < 0.2, "the largest bar fills the plot: {svg}");
        assert!((widths[1] * 2.0 - widths[0]).abs() < 0.2, "half the value, half the width: {svg}");
    }

    #[test]
    fn long_labels_are_abbreviated_with_the_full_text_kept_and_axis_labels_do_not_overlap() {
        let long = "Legal entity registration category".to_string();
        let svg = bars("t", &[(long.clone(), 3.0), ("海陵区".into(), 2.0)]);
        assert!(svg.contains(&format!("<title>{long}</title>")), "the full text as a title");
        assert!(svg.contains('…'), "abbreviated, marked: {svg}");
        let data: Vec<(String, f64)> =
            (0..12).map(|i| (format!("2024-01-{:02}–2024-01-{:02}", i, i + 1), 1.0)).collect();
        let svg = columns("t", &data);
        let shown = svg.matches("class=\"lbl\"").count();
        assert!((2..12).contains(&shown), "{shown} labels");
        let (every, units) = label_spacing(&data, (600.0 - 40.0) / 12.0);
        assert!(units as f64 * UNIT_PX <= (600.0 - 40.0) / 12.0 * every as f64, "each label fits its slots");
    }

    #[test]
    fn columns_and_lines_draw_one_mark_per_point() {
        let data: Vec<(String, f64)> = (0..5).map(|i| (format!("{}", 2000 + i), i as f64)).collect();
        assert_eq!(columns("t", &data).matches("<rect").count(), 5);
        assert_eq!(line("t", &data).matches("<circle").count(), 5);
    }
}
