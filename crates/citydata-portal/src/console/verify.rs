//! `/console/verify` and `/console/verify/{slug}`: 核验 by hand — a member holding a
//! verification grant checks a single record and reads the answer (一致 / 不一致 / 未找到 /
//! 格式无效, per compared item 一致 / 不一致), never a value; the same use case as
//! `POST /api/v1/resources/{id}/verify`, so quotas, the enumeration rule and the audit apply.

use super::P;
use crate::ctx::Ctx;
use crate::i18n::Lang;
use axum::Extension;
use axum::extract::{Form, Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use citydata_api::AppState;
use citydata_core::CoreError;
use citydata_core::verify::{FieldMatch, HeldVerifyGrant, VerifyInput, VerifyResult, VerifyStatus};
use serde_json::{Value, json};
use std::collections::BTreeMap;

fn status_word(ctx: &Ctx, s: VerifyStatus) -> String {
    ctx.m(match s {
        VerifyStatus::Match => "verify_match",
        VerifyStatus::NoMatch => "verify_no_match",
        VerifyStatus::NotFound => "verify_not_found",
        VerifyStatus::Invalid => "verify_invalid",
    })
}

/// The caller's verification grants, each with its resource.
pub async fn verify_list(State(state): State<AppState>, Extension(portal): P, ctx: Ctx) -> Response {
    let p = login!(ctx);
    let held = match state.core.held_verify_grants(&p).await {
        Ok(h) => h,
        Err(e) => return ctx.core_error(&portal, e),
    };
    let sep = match ctx.lang {
        Lang::Zh => "、",
        Lang::En => ", ",
    };
    let grants: Vec<Value> = held
        .iter()
        .map(|h| {
            let items: Vec<&str> = h
                .grant
                .fields
                .iter()
                .map(|f| h.resource.content.item(f).map(|i| i.title.as_str()).unwrap_or(f.as_str()))
                .collect();
            json!({"slug": h.resource.content.slug.as_str(), "name": h.resource.content.name,
                   "items": items.join(sep), "daily_quota": h.terms.daily_quota})
        })
        .collect();
    ctx.render(&portal, "console/verify.html", json!({"grants": grants}))
}

#[allow(clippy::too_many_arguments)] // one page, its form state spelled out
fn form_page(
    ctx: &Ctx,
    portal: &crate::render::Portal,
    h: &HeldVerifyGrant,
    status: StatusCode,
    values: &BTreeMap<String, String>,
    compare: &[String],
    result: Option<&VerifyResult>,
    errors: Vec<String>,
) -> Response {
    let r = &h.resource.content;
    let items: Vec<Value> = h
        .grant
        .fields
        .iter()
        .filter_map(|f| r.item(f))
        .map(|i| {
            let name = i.name.to_string();
            json!({"name": name, "title": i.title, "key": i.key,
                   "value": values.get(&name).cloned().unwrap_or_default(), "compare": compare.contains(&name)})
        })
        .collect();
    let result = result.and_then(|v| v.results.first().map(|x| (x, v.quota_left))).map(|(x, left)| {
        let fields: Vec<Value> = x
            .fields
            .iter()
            .map(|(name, m)| {
                let title = r.item(name).map(|i| i.title.clone()).unwrap_or_else(|| name.clone());
                let word = ctx.m(if *m == FieldMatch::Match { "verify_field_match" } else { "verify_field_mismatch" });
                json!({"title": title, "outcome": word})
            })
            .collect();
        json!({"status": status_word(ctx, x.status), "fields": fields, "quota_left": left})
    });
    ctx.render_status(
        portal,
        status,
        "console/verify.html",
        json!({"r": {"slug": r.slug.as_str(), "name": r.name}, "items": items, "result": result, "errors": errors,
               "daily_quota": h.terms.daily_quota}),
    )
}

async fn held(
    state: &AppState,
    ctx: &Ctx,
    portal: &crate::render::Portal,
    slug: &str,
) -> Result<HeldVerifyGrant, Response> {
    let p = ctx.require_login()?.clone();
    let all = state.core.held_verify_grants(&p).await.map_err(|e| ctx.core_error(portal, e))?;
    all.into_iter()
        .find(|h| h.resource.content.slug.as_str() == slug)
        .ok_or_else(|| ctx.error_page(portal, StatusCode::FORBIDDEN, &ctx.m("verify_no_grant")))
}

pub async fn verify_page(
    State(state): State<AppState>,
    Extension(portal): P,
    Path(slug): Path<String>,
    ctx: Ctx,
) -> Response {
    match held(&state, &ctx, &portal, &slug).await {
        Ok(h) => form_page(&ctx, &portal, &h, StatusCode::OK, &BTreeMap::new(), &[], None, Vec::new()),
        Err(r) => r,
    }
}

/// Check the record of the form (`v.<item>` values, `c.<item>` = compare).
pub async fn verify_submit(
    State(state): State<AppState>,
    Extension(portal): P,
    Path(slug): Path<String>,
    ctx: Ctx,
    Form(form): Form<Vec<(String, String)>>,
) -> Response {
    let p = login!(ctx);
    let token = form.iter().find(|(k, _)| k == "csrf").map(|(_, v)| v.as_str()).unwrap_or("");
    csrf!(ctx, token);
    let h = match held(&state, &ctx, &portal, &slug).await {
        Ok(h) => h,
        Err(r) => return r,
    };
    let mut values = BTreeMap::new();
    let mut compare = Vec::new();
    for (k, v) in &form {
        if let Some(name) = k.strip_prefix("v.") {
            if !v.trim().is_empty() {
                values.insert(name.to_string(), v.trim().to_string());
            }
        } else if let Some(name) = k.strip_prefix("c.") {
            compare.push(name.to_string());
        }
    }
    // Only items the record gives are compared.
    compare.retain(|c| values.contains_key(c));
    let input = VerifyInput { records: vec![values.clone()], compare: compare.clone() };
    match state.core.verify_records(&ctx.meta, &p, &h.resource.id.to_string(), &input).await {
        Ok(v) => form_page(&ctx, &portal, &h, StatusCode::OK, &values, &compare, Some(&v), Vec::new()),
        Err(CoreError::Validation(errs)) => {
            let errors = errs.0.iter().map(|e| crate::present::one_language(&e.message, ctx.lang)).collect();
            form_page(&ctx, &portal, &h, StatusCode::BAD_REQUEST, &values, &compare, None, errors)
        }
        Err(e) => ctx.core_error(&portal, e),
    }
}
