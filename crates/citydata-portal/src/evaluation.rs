//! 评估考核 pages: `/evaluation` (public league table of openness and service),
//! `/dashboard` (the center's big screen: totals, the department × department matrix of
//! reads, quarterly trends, plan targets as progress bars; refreshes itself without script)
//! and `/console/evaluation` (the caller's department: every indicator with value, target,
//! score and the link to its records, and its score over the last quarters). All figures come
//! from `Core::evaluate`, the same as `/api/v1/evaluation`.

use crate::chart;
use crate::ctx::Ctx;
use crate::render::Portal;
use axum::Extension;
use axum::extract::State;
use axum::response::Response;
use chrono::Utc;
use citydata_api::AppState;
use citydata_core::evaluation::Evaluation;
use citydata_domain::evaluation::{INDICATORS, Period, Unit, indicator};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::Arc;

type P = Extension<Arc<Portal>>;

/// Seconds between refreshes of the wall display (`/dashboard?refresh=300`). Opt-in: a timed
/// reload the reader did not ask for fails WCAG 2.2.1, so the page offers it as a link.
const REFRESH_SECONDS: u32 = 300;

fn period_of(ctx: &Ctx) -> String {
    ctx.q("period").map(str::to_string).unwrap_or_else(|| Period::quarter_of(Utc::now()).to_string())
}

fn title(ctx: &Ctx, code: &str) -> String {
    indicator(code).map_or_else(
        || code.to_string(),
        |i| if ctx.lang == crate::i18n::Lang::En { i.en.to_string() } else { i.zh.to_string() },
    )
}

/// A value as people read it: rates as percentages, days and counts as numbers, none as "—".
fn shown(code: &str, v: Option<f64>) -> String {
    match (indicator(code).map(|i| i.unit), v) {
        (_, None) => "—".into(),
        (Some(Unit::Rate), Some(v)) => format!("{:.1}%", v * 100.0),
        (_, Some(v)) if v.fract() == 0.0 => format!("{}", v as i64),
        (_, Some(v)) => format!("{v:.2}"),
    }
}

/// The last `n` quarters up to the one holding `now`, oldest first.
fn quarters(n: usize) -> Vec<Period> {
    let mut q = vec![Period::quarter_of(Utc::now())];
    while q.len() < n {
        let prev = q[q.len() - 1].previous();
        q.push(prev);
    }
    q.reverse();
    q
}

/// `/evaluation`: the public league table (openness and service only).
pub async fn public(State(state): State<AppState>, Extension(portal): P, ctx: Ctx) -> Response {
    let period = period_of(&ctx);
    let e = match state.core.public_evaluation(&ctx.meta, &period).await {
        Ok(e) => e,
        Err(e) => return ctx.core_error(&portal, e),
    };
    let cols = ["open_rate", "public_reads", "requests_in_sla_rate", "response_median_days"];
    let mut rows: Vec<Value> = e
        .departments
        .iter()
        .filter(|d| d.indicators["catalog_resources"].value.unwrap_or(0.0) > 0.0)
        .map(|d| {
            let open = d.indicators["open_rate"].score.unwrap_or(0.0);
            let service = d.indicators["requests_in_sla_rate"].score;
            let public_score = service.map_or(open, |s| (open + s) / 2.0);
            json!({"code": d.code, "name": d.name, "score": format!("{public_score:.1}"), "sort": public_score,
                "cells": cols.iter().map(|c| shown(c, d.indicators[*c].value)).collect::<Vec<_>>()})
        })
        .collect();
    rows.sort_by(|a, b| b["sort"].as_f64().unwrap_or(0.0).total_cmp(&a["sort"].as_f64().unwrap_or(0.0)));
    for (i, r) in rows.iter_mut().enumerate() {
        r["rank"] = json!(i + 1);
    }
    let chart_data: Vec<(String, f64)> = rows
        .iter()
        .map(|r| (r["name"].as_str().unwrap_or_default().to_string(), r["sort"].as_f64().unwrap_or(0.0)))
        .collect();
    let chart = (!chart_data.is_empty()).then(|| chart::bars(&ctx.m("ev_public_score"), &chart_data));
    ctx.render(
        &portal,
        "evaluation.html",
        json!({"period": e.period, "heads": cols.iter().map(|c| title(&ctx, c)).collect::<Vec<_>>(), "rows": rows, "chart": chart,
            "periods": quarters(4).iter().map(|p| p.to_string()).collect::<Vec<_>>()}),
    )
}

/// The department × department matrix of reads as SVG: rows read, columns provide.
fn matrix(ctx: &Ctx, e: &Evaluation) -> Option<String> {
    let names: BTreeMap<&str, &str> = e.departments.iter().map(|d| (d.code.as_str(), d.name.as_str())).collect();
    let mut codes: Vec<&str> = e.city.flows.iter().flat_map(|f| [f.reader.as_str(), f.provider.as_str()]).collect();
    codes.sort_unstable();
    codes.dedup();
    if codes.is_empty() {
        return None;
    }
    let max = e.city.flows.iter().map(|f| f.reads).max().unwrap_or(1).max(1) as f64;
    let (cell, left, top) = (44.0, 150.0, 120.0);
    let w = left + cell * codes.len() as f64 + 10.0;
    let h = top + cell * codes.len() as f64 + 10.0;
    let t = chart::esc(&ctx.m("ev_matrix"));
    let mut s = format!(
        r#"<svg class="chart matrix" role="img" aria-label="{t}" viewBox="0 0 {w} {h}" xmlns="http://www.w3.org/2000/svg"><title>{t}</title>"#
    );
    let label = |c: &str| chart::esc(names.get(c).copied().unwrap_or(c));
    for (i, c) in codes.iter().enumerate() {
        let y = top + cell * i as f64 + cell / 2.0 + 4.0;
        s.push_str(&format!(r#"<text x="{}" y="{y}" text-anchor="end" class="lbl">{}</text>"#, left - 6.0, label(c)));
        let x = left + cell * i as f64 + cell / 2.0;
        s.push_str(&format!(
            r#"<text x="{x}" y="{}" text-anchor="start" class="lbl" transform="rotate(-45 {x} {})">{}</text>"#,
            top - 6.0,
            top - 6.0,
            label(c)
        ));
    }
    for f in &e.city.flows {
        let (Some(r), Some(p)) =
            (codes.iter().position(|c| *c == f.reader), codes.iter().position(|c| *c == f.provider))
        else {
            continue;
        };
        let (x, y) = (left + cell * p as f64, top + cell * r as f64);
        let o = 0.15 + 0.85 * f.reads as f64 / max;
        s.push_str(&format!(
            r#"<rect x="{x}" y="{y}" width="{}" height="{}" class="bar" fill-opacity="{o:.2}"><title>{} → {}: {}</title></rect><text x="{}" y="{}" text-anchor="middle" class="val">{}</text>"#,
            cell - 2.0,
            cell - 2.0,
            label(&f.reader),
            label(&f.provider),
            f.reads,
            x + cell / 2.0,
            y + cell / 2.0 + 4.0,
            f.reads
        ));
    }
    s.push_str("</svg>");
    Some(s)
}

/// `/dashboard`: the center's big screen (department members and platform admins).
pub async fn dashboard(State(state): State<AppState>, Extension(portal): P, ctx: Ctx) -> Response {
    let period = period_of(&ctx);
    let p = ctx.principal.as_ref();
    let e = match state.core.evaluate(&ctx.meta, p, &period, false).await {
        Ok(e) => e,
        Err(e) => return ctx.core_error(&portal, e),
    };
    let c = &e.city.indicators;
    let totals = [
        ("catalog_resources", c.get("catalog_resources").copied().flatten()),
        ("effective_share_rate", c.get("effective_share_rate").copied().flatten()),
        ("open_rate", c.get("open_rate").copied().flatten()),
        ("applications", c.get("applications").copied().flatten()),
        ("reads", c.get("reads").copied().flatten()),
        ("requests_in_sla_rate", c.get("requests_in_sla_rate").copied().flatten()),
    ]
    .iter()
    .map(|(k, v)| json!({"title": title(&ctx, k), "value": shown(k, *v)}))
    .collect::<Vec<_>>();
    let plan: Vec<(String, f64)> =
        e.city.plan.iter().map(|p| (title(&ctx, &p.indicator), p.progress.unwrap_or(0.0))).collect();
    let plan_rows: Vec<Value> = e
        .city
        .plan
        .iter()
        .map(|p| json!({"title": title(&ctx, &p.indicator), "value": shown(&p.indicator, p.value), "target": shown(&p.indicator, Some(p.target))}))
        .collect();
    let mut share = Vec::new();
    let mut score = Vec::new();
    for q in quarters(4) {
        if let Ok(x) = state.core.evaluate(&ctx.meta, p, &q.to_string(), false).await {
            share.push((q.to_string(), x.city.indicators["effective_share_rate"].unwrap_or(0.0) * 100.0));
            let scored: Vec<f64> = x.departments.iter().filter_map(|d| d.score).collect();
            let mean = if scored.is_empty() { 0.0 } else { scored.iter().sum::<f64>() / scored.len() as f64 };
            score.push((q.to_string(), (mean * 100.0).round() / 100.0));
        }
    }
    let ranking: Vec<(String, f64)> =
        e.departments.iter().filter_map(|d| d.score.map(|s| (d.name.clone(), s))).collect();
    ctx.render(
        &portal,
        "dashboard.html",
        json!({
            "period": e.period, "totals": totals, "refresh_every": REFRESH_SECONDS,
            "refresh": ctx.q("refresh").and_then(|r| r.parse::<u32>().ok()).map(|r| r.clamp(30, 3600)),
            "plan": chart::bars(&ctx.m("ev_plan"), &plan), "plan_rows": plan_rows,
            "matrix": matrix(&ctx, &e),
            "share_trend": chart::line(&ctx.m("ev_share_trend"), &share),
            "score_trend": chart::line(&ctx.m("ev_score_trend"), &score),
            "ranking": (!ranking.is_empty()).then(|| chart::bars(&ctx.m("ev_ranking"), &ranking)),
        }),
    )
}

/// `/console/evaluation`: the caller's department, every indicator with its records.
pub async fn console(State(state): State<AppState>, Extension(portal): P, ctx: Ctx) -> Response {
    let principal = match ctx.require_login() {
        Ok(p) => p.clone(),
        Err(r) => return r,
    };
    let period = period_of(&ctx);
    let Some(dept) =
        ctx.q("department").map(str::to_string).or_else(|| principal.primary_department().map(|d| d.to_string()))
    else {
        return ctx.core_error(
            &portal,
            citydata_core::CoreError::Forbidden(
                "评估结果仅对部门用户开放 / the evaluation is for department members".into(),
            ),
        );
    };
    let d = match state.core.evaluate_department(&ctx.meta, Some(&principal), &dept, &period).await {
        Ok(d) => d,
        Err(e) => return ctx.core_error(&portal, e),
    };
    let rows: Vec<Value> = INDICATORS
        .iter()
        .map(|i| {
            let x = &d.indicators[i.code];
            json!({"title": title(&ctx, i.code), "value": shown(i.code, x.value),
                "target": shown(i.code, x.target), "score": x.score.map(|s| format!("{s:.2}")).unwrap_or_else(|| "—".into()),
                "weight": x.weight, "explain": x.explain})
        })
        .collect();
    let mut trend = Vec::new();
    for q in quarters(4) {
        if let Ok(x) = state.core.evaluate_department(&ctx.meta, Some(&principal), &dept, &q.to_string()).await {
            trend.push((q.to_string(), x.score.unwrap_or(0.0)));
        }
    }
    ctx.render(
        &portal,
        "console/evaluation.html",
        json!({"period": period, "d": {"code": d.code, "name": d.name, "score": d.score.map(|s| format!("{s:.2}")),
            "rank": d.rank, "change": d.change.map(|c| format!("{c:+.2}"))},
            "rows": rows, "trend": chart::line(&ctx.m("ev_score_trend"), &trend)}),
    )
}
