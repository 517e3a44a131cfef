//! `/console/resources/{slug}/rules`: the provider's stewards edit a resource's quality rules
//! in the catalog spreadsheet's form (one rule a line, an optional leading severity), with the
//! items and the rule kinds beside the field. Saving is a resource edit (a new revision); a
//! refusal names the line and keeps the text.

use super::{P, editable};
use crate::ctx::Ctx;
use crate::i18n::Lang;
use axum::Extension;
use axum::extract::{Form, Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use citydata_api::AppState;
use citydata_core::CoreError;
use citydata_domain::quality::{QualityRule, Severity, parse_rules_cell};
use citydata_domain::resource::Resource;
use serde::Deserialize;
use serde_json::{Value, json};

#[derive(Deserialize)]
pub struct RulesForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    rules: String,
    #[serde(default)]
    revision: Option<i64>,
}

fn severity_word(s: Severity, lang: Lang) -> &'static str {
    match (s, lang) {
        (Severity::Reject, Lang::Zh) => "拒绝",
        (Severity::Warn, Lang::Zh) => "警告",
        (Severity::Info, Lang::Zh) => "提示",
        (Severity::Reject, Lang::En) => "reject",
        (Severity::Warn, Lang::En) => "warn",
        (Severity::Info, Lang::En) => "info",
    }
}

/// The rules as the text field shows them, severities in the page's language.
fn rules_text(rules: &[QualityRule], lang: Lang) -> String {
    rules.iter().map(|r| format!("{} {}", severity_word(r.severity, lang), r.spec())).collect::<Vec<_>>().join("\n")
}

fn page(
    ctx: &Ctx,
    portal: &crate::render::Portal,
    r: &Resource,
    status: StatusCode,
    text: String,
    errors: Vec<String>,
) -> Response {
    let items: Vec<Value> =
        r.content.items.iter().map(|i| json!({"name": i.name.to_string(), "title": i.title, "key": i.key})).collect();
    let rules: Vec<Value> = r
        .content
        .quality_rules
        .iter()
        .map(|q| {
            let title = r.content.item(q.item.as_str()).map(|i| i.title.clone()).unwrap_or_else(|| q.item.to_string());
            json!({"spec": q.spec(), "item": title, "severity": severity_word(q.severity, ctx.lang)})
        })
        .collect();
    ctx.render_status(
        portal,
        status,
        "console/rules.html",
        json!({"r": {"slug": r.content.slug.as_str().to_string(), "name": r.content.name, "revision": r.revision},
               "items": items, "rules": rules, "text": text, "errors": errors, "saved": ctx.q("saved").is_some()}),
    )
}

pub async fn rules_page(
    State(state): State<AppState>,
    Extension(portal): P,
    Path(slug): Path<String>,
    ctx: Ctx,
) -> Response {
    let r = match editable(&state, &ctx, &portal, &slug).await {
        Ok(r) => r,
        Err(resp) => return resp,
    };
    let text = rules_text(&r.content.quality_rules, ctx.lang);
    page(&ctx, &portal, &r, StatusCode::OK, text, Vec::new())
}

/// Save the rules (a PATCH of `quality_rules` at the revision the form was loaded with).
pub async fn save_rules(
    State(state): State<AppState>,
    Extension(portal): P,
    Path(slug): Path<String>,
    ctx: Ctx,
    Form(f): Form<RulesForm>,
) -> Response {
    let p = login!(ctx);
    csrf!(ctx, &f.csrf);
    let r = match editable(&state, &ctx, &portal, &slug).await {
        Ok(r) => r,
        Err(resp) => return resp,
    };
    // Someone saved the resource since this form was loaded: do not overwrite their change.
    if f.revision.is_some_and(|rev| rev != r.revision) {
        return page(&ctx, &portal, &r, StatusCode::CONFLICT, f.rules, vec![ctx.m("rules_changed_meanwhile")]);
    }
    let patch = json!({"quality_rules": parse_rules_cell(&f.rules)});
    match state.core.update_resource(&ctx.meta, &p, &r.id.to_string(), &patch).await {
        Ok(_) => ctx.redirect(&format!("/console/resources/{}/rules?saved=1", crate::ctx::urlencode(&slug))),
        Err(CoreError::Validation(v)) => {
            // `quality_rules[3]…` → 第 4 条规则 (the lines that are not blank, in order).
            let errors =
                v.0.iter()
                    .map(|e| {
                        let msg = crate::present::one_language(&e.message, ctx.lang);
                        let n = e
                            .field
                            .strip_prefix("quality_rules[")
                            .and_then(|x| x.split(']').next())
                            .and_then(|x| x.parse::<usize>().ok());
                        match (n, ctx.lang) {
                            (Some(n), Lang::Zh) => format!("第 {} 条规则：{msg}", n + 1),
                            (Some(n), Lang::En) => format!("rule {}: {msg}", n + 1),
                            (None, _) => msg,
                        }
                    })
                    .collect();
            page(&ctx, &portal, &r, StatusCode::BAD_REQUEST, f.rules, errors)
        }
        Err(e) => ctx.core_error(&portal, e),
    }
}
