//! Charts drawn on the server as inline SVG (no script, no external file): horizontal bars for
//! category counts, vertical bars for histograms, a line over time. Every label is escaped.

fn esc(s: &str) -> String {
    minijinja::HtmlEscape(s).to_string()
}

fn fmt(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 { format!("{}", v as i64) } else { format!("{v:.2}") }
}

/// Horizontal bars, one per `(label, value)`, largest first as given.
pub fn bars(title: &str, data: &[(String, f64)]) -> String {
    let row = 22.0;
    let left = 120.0;
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
        let short: String = label.chars().take(10).collect();
        s.push_str(&format!(
            r#"<text x="{lx}" y="{ty}" text-anchor="end" class="lbl">{l}</text><rect x="{left}" y="{y}" width="{w:.1}" height="16" class="bar"><title>{full}: {val}</title></rect><text x="{vx:.1}" y="{ty}" class="val">{val}</text>"#,
            lx = left - 6.0,
            ty = y + 12.0,
            l = esc(&short),
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
        if data.len() <= 12 || i % (data.len() / 6).max(1) == 0 {
            let short: String = label.chars().take(12).collect();
            s.push_str(&format!(
                r#"<text x="{cx:.1}" y="{ly}" text-anchor="middle" class="lbl">{l}</text>"#,
                cx = x + slot / 2.0,
                ly = bottom + 16.0,
                l = esc(&short)
            ));
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
    let every = (data.len() / 6).max(1);
    for (i, (label, v)) in data.iter().enumerate() {
        let x = 30.0 + step * i as f64;
        s.push_str(&format!(
            r#"<circle cx="{x:.1}" cy="{y:.1}" r="3" class="dot"><title>{l}: {val}</title></circle>"#,
            y = bottom - (bottom - 20.0) * v / max,
            l = esc(label),
            val = fmt(*v)
        ));
        if i % every == 0 {
            s.push_str(&format!(
                r#"<text x="{x:.1}" y="{ly}" text-anchor="middle" class="lbl">{l}</text>"#,
                ly = bottom + 16.0,
                l = esc(label)
            ));
        }
    }
    s.push_str("</svg>");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_escaped_and_bars_scale_to_the_largest() {
        let svg = bars("区县", &[("<script>alert(1)</script>".into(), 10.0), ("海陵区".into(), 5.0)]);
        assert!(!svg.contains("<script>"), "{svg}");
        assert!(svg.contains("&lt;script&gt;"));
        assert!(svg.contains(r#"width="380.0""#), "the largest bar fills the plot: {svg}");
        assert!(svg.contains(r#"width="190.0""#), "half the value, half the width: {svg}");
    }

    #[test]
    fn columns_and_lines_draw_one_mark_per_point() {
        let data: Vec<(String, f64)> = (0..5).map(|i| (format!("{}", 2000 + i), i as f64)).collect();
        assert_eq!(columns("t", &data).matches("<rect").count(), 5);
        assert_eq!(line("t", &data).matches("<circle").count(), 5);
    }
}
