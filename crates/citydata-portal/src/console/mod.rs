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
mod profile;
mod resources;
mod rules;
mod service_accounts;
mod sessions;
mod share_profiles;
mod sharing;
mod tickets;
mod verify;

/// A destructive action's confirmation step (no script needed): what will happen, whether it
/// can be undone, an optional reason, and the form that really does it (`confirm=yes`).
pub(crate) struct Confirm<'a> {
    pub title: String,
    pub what: String,
    pub undo: Option<String>,
    pub action: String,
    pub button: String,
    pub back: &'a str,
    pub reason: bool,
}

/// The confirmation before a credential (an API token, a sharing profile) is revoked: its name
/// and prefix, that programs using it stop; `key` names the messages (`confirm_{key}`,
/// `confirm_{key}_what`), `back` is its list page.
pub(crate) fn revoke_credential_page(
    ctx: &Ctx,
    portal: &Portal,
    key: &str,
    (name, prefix): (&str, &str),
    back: &str,
    id: &str,
) -> Response {
    confirm_page(
        ctx,
        portal,
        Confirm {
            title: format!("{}：{name}", ctx.m(&format!("confirm_{key}"))),
            what: ctx.m(&format!("confirm_{key}_what")).replace("{prefix}", prefix),
            undo: None,
            action: format!("{back}/{id}/revoke"),
            button: ctx.m("revoke"),
            back,
            reason: false,
        },
    )
}

pub(crate) fn confirm_page(ctx: &Ctx, portal: &Portal, c: Confirm<'_>) -> Response {
    ctx.render(
        portal,
        "console/confirm.html",
        json!({"c": {"title": c.title, "what": c.what, "undo": c.undo, "action": c.action, "button": c.button,
                     "back": c.back, "reason": c.reason}}),
    )
}

/// A form that says it was confirmed (`confirm=yes`).
#[derive(Deserialize)]
pub struct ConfirmForm {
    #[serde(default)]
    pub csrf: String,
    #[serde(default)]
    pub confirm: String,
    #[serde(default)]
    pub reason: String,
}

impl ConfirmForm {
    pub fn confirmed(&self) -> bool {
        self.confirm == "yes"
    }
}

/// A resource the signed-in caller may edit (its provider's stewards and admins), or the page to
/// answer with instead: the login redirect, 403, or the lookup's error.
pub(crate) async fn editable(
    state: &AppState,
    ctx: &Ctx,
    portal: &Portal,
    slug: &str,
) -> Result<citydata_domain::resource::Resource, Response> {
    let p = ctx.require_login()?;
    match state.core.get_resource(Some(p), slug).await {
        Ok(r) if can_edit(p, &r.content.provider) => Ok(r),
        Ok(_) => Err(ctx.core_error(portal, CoreError::forbidden())),
        Err(e) => Err(ctx.core_error(portal, e)),
    }
}

pub use account::*;
pub use profile::*;
pub use resources::*;
pub use rules::*;
pub use service_accounts::*;
pub use sessions::*;
pub use share_profiles::*;
pub use sharing::*;
pub use tickets::*;
pub use verify::*;

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
    // Counts that mean what they say: requests waiting for *my* answer, and my own
    // applications waiting for someone else's.
    let pending = core.list_requests(&p, false, Some("pending")).await.unwrap_or_default();
    let my_pending = pending.iter().filter(|r| r.requester == p.user_id).count();
    let to_answer = if sharing::answers_requests(&p) { pending.len() - my_pending } else { 0 };
    let unread = core.inbox(&p, true).await.map(|v| v.len()).unwrap_or(0);
    let grants = core.list_grants(&p).await.map(|v| v.iter().filter(|g| g.revoked_at.is_none()).count()).unwrap_or(0);
    let can_create = !resources::editable_departments(&state, &p).await.is_empty();
    let role = if p.is_admin() {
        "admin"
    } else if sharing::answers_requests(&p) {
        "steward"
    } else if p.memberships.is_empty() {
        "public"
    } else {
        "member"
    };
    ctx.render(
        &portal,
        "console/home.html",
        json!({"resources": resources, "to_answer": to_answer, "my_pending": my_pending, "unread": unread, "grants": grants,
               "role": role, "can_create": can_create, "labels": labels(ctx.lang), "done": ctx.q("done")}),
    )
}
