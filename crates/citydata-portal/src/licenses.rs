//! `/licenses/verify`: 电子证照核验 for anyone — a form (number, holder) and the answer in words
//! (有效 / 已注销或吊销 / 已过期 / 未找到) with the issuing department and the signed receipt to
//! keep; the same use case as `POST /api/v1/licenses/verify`, so the per-address limits, the
//! enumeration rule and the audit apply. Script-free.

use crate::ctx::Ctx;
use crate::render::Portal;
use axum::Extension;
use axum::extract::{Form, State};
use axum::http::StatusCode;
use axum::response::Response;
use citydata_api::AppState;
use citydata_core::CoreError;
use citydata_core::licenses::{LicenseAnswer, LicenseQuery};
use citydata_domain::license::LicenseStatus;
use serde::Deserialize;
use serde_json::{Value, json};
use std::sync::Arc;

type P = Extension<Arc<Portal>>;

#[derive(Deserialize)]
pub struct LicenseForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    number: String,
    #[serde(default)]
    holder: String,
}

fn page(
    ctx: &Ctx,
    portal: &Portal,
    status: StatusCode,
    form: Value,
    answer: Option<&LicenseAnswer>,
    errors: Value,
) -> Response {
    let result = answer.map(|a| {
        let word = ctx.m(match a.status {
            LicenseStatus::Valid => "lic_valid",
            LicenseStatus::Revoked => "lic_revoked",
            LicenseStatus::Expired => "lic_expired",
            LicenseStatus::NotFound => "lic_not_found",
        });
        json!({"status": word, "found": a.status != LicenseStatus::NotFound, "license_type": a.license_type,
               "department": a.issuing_department.as_ref().map(|d| d.name.clone()), "issuer": a.issuer,
               "verified_at": citydata_domain::cast::parse_instant(&a.verified_at)
                   .map(citydata_domain::cast::format_instant).unwrap_or_else(|| a.verified_at.clone()),
               "receipt": serde_json::to_string_pretty(&a.receipt).unwrap_or_default()})
    });
    ctx.render_status(portal, status, "licenses.html", json!({"form": form, "result": result, "errors": errors}))
}

/// The form.
pub async fn verify_page(Extension(portal): P, ctx: Ctx) -> Response {
    page(&ctx, &portal, StatusCode::OK, json!({}), None, json!({}))
}

/// The answer to the form.
pub async fn verify_submit(
    State(state): State<AppState>,
    Extension(portal): P,
    ctx: Ctx,
    Form(form): Form<LicenseForm>,
) -> Response {
    if let Err(r) = ctx.check_csrf(&form.csrf) {
        return r;
    }
    let q = LicenseQuery { number: form.number.clone(), holder: form.holder.clone() };
    let shown = json!({"number": form.number, "holder": form.holder});
    match state.core.verify_license(&ctx.meta, ctx.principal.as_ref(), &q).await {
        Ok(a) => page(&ctx, &portal, StatusCode::OK, shown, Some(&a), json!({})),
        Err(e @ CoreError::Validation(_)) => {
            let errors = ctx.field_errors(&e);
            page(&ctx, &portal, StatusCode::BAD_REQUEST, shown, None, errors)
        }
        Err(e) => ctx.core_error(&portal, e),
    }
}
