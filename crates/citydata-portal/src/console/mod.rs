//! The console for signed-in users: their department's resources (edit, publish, withdraw,
//! upload with the ingest report), requests to answer and their own, grants, tokens, the inbox,
//! applications for data, and for platform admins the audit log with the chain status.

use crate::ctx::{Ctx, urlencode};
use crate::public::{CsrfOnly, labels};
use crate::render::Portal;
use axum::Extension;
use axum::extract::{Form, Path, Request, State};
use axum::http::StatusCode;
use axum::response::Response;
use citydata_api::AppState;
use citydata_core::CoreError;
use citydata_core::catalog::{ListFilter, can_edit};
use citydata_core::grants::GrantView;
use citydata_core::ingest::{IngestBody, IngestParams, ingest_view};
use citydata_core::requests::{ApproveInput, NewRequestInput, RequestView};
use citydata_domain::dept::DeptCode;
use citydata_domain::user::Role;
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::Arc;

type P = Extension<Arc<Portal>>;

macro_rules! login {
    ($ctx:expr) => {
        match $ctx.require_login() {
            Ok(p) => p.clone(),
            Err(r) => return r,
        }
    };
}

macro_rules! csrf {
    ($ctx:expr, $token:expr) => {
        if let Err(r) = $ctx.check_csrf($token) {
            return r;
        }
    };
}

mod account;
mod resources;
mod sharing;

pub use account::*;
pub use resources::*;
pub use sharing::*;

pub async fn home(State(state): State<AppState>, Extension(portal): P, ctx: Ctx) -> Response {
    let p = login!(ctx);
    let core = &state.core;
    let mut resources = Vec::new();
    for m in &p.memberships {
        let filter = ListFilter { provider: Some(m.department.to_string()), ..Default::default() };
        if let Ok((_, list)) = core.list_resources(Some(&p), &filter, 200, 0).await {
            for r in list {
                if resources.iter().any(|x: &Value| x["id"] == json!(r.id)) {
                    continue;
                }
                resources.push(json!({
                    "id": r.id, "name": r.content.name, "slug": r.content.slug.as_str().to_string(), "code": r.content.code.to_string(),
                    "state": r.state.as_str(), "updated_at": r.updated_at, "editable": can_edit(&p, &r.content.provider),
                }));
            }
        }
    }
    let pending = core.list_requests(&p, false, Some("pending")).await.map(|v| v.len()).unwrap_or(0);
    let unread = core.inbox(&p, true).await.map(|v| v.len()).unwrap_or(0);
    ctx.render(
        &portal,
        "console/home.html",
        json!({"resources": resources, "pending": pending, "unread": unread, "labels": labels(ctx.lang), "done": ctx.q("done")}),
    )
}
