//! `/console/evaluation-rules`: the center's editor of the evaluation rules (issue #17) — per
//! indicator its weight, its target and the city's plan target; the same use case as
//! `PUT /api/v1/evaluation/rules` (checked whole, a new version, audited), platform admins only,
//! refused with 409 when the rules changed since the form was shown.

use crate::ctx::Ctx;
use crate::i18n::Lang;
use crate::render::Portal;
use axum::Extension;
use axum::extract::{Form, State};
use axum::http::StatusCode;
use axum::response::Response;
use citydata_api::AppState;
use citydata_core::CoreError;
use citydata_domain::evaluation::{INDICATORS, Rules};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::Arc;

type P = Extension<Arc<Portal>>;

fn number(v: Option<&f64>) -> String {
    v.map(|x| format!("{x}")).unwrap_or_default()
}

fn page(
    ctx: &Ctx,
    portal: &Portal,
    status: StatusCode,
    version: i64,
    values: &BTreeMap<String, String>,
    errors: Vec<String>,
) -> Response {
    let rows: Vec<Value> = INDICATORS
        .iter()
        .map(|i| {
            let v = |k: &str| values.get(&format!("{k}.{}", i.code)).cloned().unwrap_or_default();
            json!({"code": i.code, "title": if ctx.lang == Lang::En { i.en } else { i.zh },
                   "weight": v("w"), "target": v("t"), "plan": v("p")})
        })
        .collect();
    ctx.render_status(
        portal,
        status,
        "console/evaluation_rules.html",
        json!({"rows": rows, "version": version, "errors": errors, "saved": ctx.q("saved").is_some()}),
    )
}

fn values_of(rules: &Rules) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for i in INDICATORS {
        out.insert(format!("w.{}", i.code), number(rules.weights.get(i.code)));
        out.insert(format!("t.{}", i.code), number(rules.targets.get(i.code)));
        out.insert(format!("p.{}", i.code), number(rules.plan.get(i.code)));
    }
    out
}

/// The form, filled with the current rules.
pub async fn rules_page(State(state): State<AppState>, Extension(portal): P, ctx: Ctx) -> Response {
    let p = match ctx.require_login() {
        Ok(p) => p.clone(),
        Err(r) => return r,
    };
    if !p.is_admin() {
        return ctx.error_page(&portal, StatusCode::FORBIDDEN, &ctx.m("evr_forbidden"));
    }
    match state.core.evaluation_rules(None).await {
        Ok(r) => page(&ctx, &portal, StatusCode::OK, r.version, &values_of(&r.rules), Vec::new()),
        Err(e) => ctx.core_error(&portal, e),
    }
}

/// Save: `version` (the rules the form was filled from), `w.<indicator>` (weight),
/// `t.<indicator>` (target), `p.<indicator>` (plan target); an empty box leaves it out.
pub async fn save_rules(
    State(state): State<AppState>,
    Extension(portal): P,
    ctx: Ctx,
    Form(form): Form<Vec<(String, String)>>,
) -> Response {
    let p = match ctx.require_login() {
        Ok(p) => p.clone(),
        Err(r) => return r,
    };
    let field = |k: &str| form.iter().find(|(n, _)| n == k).map(|(_, v)| v.trim().to_string()).unwrap_or_default();
    if let Err(r) = ctx.check_csrf(&field("csrf")) {
        return r;
    }
    if !p.is_admin() {
        return ctx.error_page(&portal, StatusCode::FORBIDDEN, &ctx.m("evr_forbidden"));
    }
    let version: i64 = field("version").parse().unwrap_or(-1);
    let mut values = BTreeMap::new();
    let mut rules = Rules { weights: BTreeMap::new(), targets: BTreeMap::new(), plan: BTreeMap::new() };
    let mut errors = Vec::new();
    for i in INDICATORS {
        let title = if ctx.lang == Lang::En { i.en } else { i.zh };
        for (k, map, label) in [
            ("w", &mut rules.weights, "evr_weight"),
            ("t", &mut rules.targets, "evr_target"),
            ("p", &mut rules.plan, "evr_plan"),
        ] {
            let raw = field(&format!("{k}.{}", i.code));
            values.insert(format!("{k}.{}", i.code), raw.clone());
            if raw.is_empty() {
                continue;
            }
            match raw.parse::<f64>() {
                Ok(x) if x.is_finite() && x >= 0.0 => {
                    map.insert(i.code.to_string(), x);
                }
                _ => errors.push(format!("{title}（{}）：{}", ctx.m(label), ctx.m("evr_not_a_number"))),
            }
        }
    }
    if !errors.is_empty() {
        return page(&ctx, &portal, StatusCode::BAD_REQUEST, version, &values, errors);
    }
    match state.core.set_evaluation_rules_from(&ctx.meta, &p, rules, version).await {
        Ok(_) => ctx.redirect("/console/evaluation-rules?saved=1"),
        Err(CoreError::Validation(errs)) => {
            let errors = errs.0.iter().map(|e| crate::present::one_language(&e.message, ctx.lang)).collect();
            page(&ctx, &portal, StatusCode::BAD_REQUEST, version, &values, errors)
        }
        Err(e) => ctx.core_error(&portal, e),
    }
}
