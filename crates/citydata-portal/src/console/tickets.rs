//! 纠错 tickets in the console: 我的纠错 (the tickets one reported, with confirm and reopen once
//! the provider has fixed them) and, for the provider's stewards and admins, the tickets on
//! their department's data with accept, reject and fix. The state machine, the clock and the
//! notices are the core's; these pages only show it and keep the input of a refused step.

use super::P;
use super::sharing::{Names, answers_requests};
use crate::ctx::Ctx;
use axum::Extension;
use axum::extract::{Form, Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use citydata_api::AppState;
use citydata_core::CoreError;
use citydata_core::catalog::can_edit;
use citydata_core::quality::tickets::{TicketStep, TicketView};
use citydata_domain::dept::DeptCode;
use citydata_domain::principal::Principal;
use citydata_domain::quality::{TicketAction, TicketState};
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::HashMap;

/// A ticket's step or comment as posted by the page.
#[derive(Deserialize, Default)]
pub struct TicketForm {
    #[serde(default)]
    pub csrf: String,
    #[serde(default)]
    pub reason: String,
    #[serde(default)]
    pub note: String,
    #[serde(default)]
    pub version: String,
    #[serde(default)]
    pub body: String,
    #[serde(default)]
    pub assignee: String,
}

/// Resource id → (name, slug), looked up once per page.
async fn resource_names(state: &AppState, p: &Principal, list: &[TicketView]) -> HashMap<String, (String, String)> {
    let mut out = HashMap::new();
    for t in list {
        let id = t.resource_id.to_string();
        if out.contains_key(&id) {
            continue;
        }
        if let Ok(r) = state.core.get_resource(Some(p), &id).await {
            out.insert(id, (r.content.name, r.content.slug.as_str().to_string()));
        }
    }
    out
}

fn row(t: &TicketView, names: &HashMap<String, (String, String)>, depts: &Names) -> Value {
    let (resource, slug) = names.get(&t.resource_id.to_string()).cloned().unzip();
    json!({"id": t.id, "title": t.title, "state": t.state.as_str(), "overdue": t.overdue, "created_at": t.created_at,
           "due_at": t.due_at, "resource": resource, "slug": slug, "department": depts.dept(&t.department)})
}

/// `/console/tickets`: the tickets one reported, and those on one's departments' data.
pub async fn tickets(State(state): State<AppState>, Extension(portal): P, ctx: Ctx) -> Response {
    let p = login!(ctx);
    let state_filter = ctx.q("state").filter(|s| TicketState::parse(s).is_some());
    let overdue = ctx.q("overdue") == Some("1");
    let list = match state.core.list_tickets(&p, state_filter, None, overdue).await {
        Ok(v) => v,
        Err(e) => return ctx.core_error(&portal, e),
    };
    let names = resource_names(&state, &p, &list).await;
    let depts = Names::load(&state, &p, Vec::new()).await;
    let username = p.username.to_string();
    let (mine, theirs): (Vec<&TicketView>, Vec<&TicketView>) =
        list.iter().partition(|t| t.reporter.as_deref() == Some(username.as_str()));
    let states: Vec<Value> = ["submitted", "accepted", "rejected", "fixed", "confirmed", "closed"]
        .iter()
        .map(|s| json!({"value": s, "selected": state_filter == Some(*s)}))
        .collect();
    ctx.render(
        &portal,
        "console/tickets.html",
        json!({"mine": mine.iter().map(|t| row(t, &names, &depts)).collect::<Vec<_>>(),
               "incoming": theirs.iter().map(|t| row(t, &names, &depts)).collect::<Vec<_>>(),
               "answers": answers_requests(&p), "states": states, "overdue": overdue,
               "filtered": state_filter.is_some() || overdue}),
    )
}

fn is_provider(p: &Principal, t: &TicketView) -> bool {
    p.is_admin() || DeptCode::parse(&t.department).is_ok_and(|d| can_edit(p, &d))
}

fn is_reporter(p: &Principal, t: &TicketView) -> bool {
    t.reporter.as_deref() == Some(p.username.as_str())
}

/// What the caller may do with a ticket now.
fn actions(p: &Principal, t: &TicketView) -> Vec<&'static str> {
    let (provider, reporter) = (is_provider(p, t), is_reporter(p, t));
    let mut out = Vec::new();
    for (a, by_provider) in [
        (TicketAction::Accept, true),
        (TicketAction::Fix, true),
        (TicketAction::Reject, true),
        (TicketAction::Confirm, false),
        (TicketAction::Reopen, false),
    ] {
        if t.state.after(a).is_some() && ((by_provider && provider) || (!by_provider && reporter)) {
            out.push(a.as_str());
        }
    }
    out
}

async fn ticket_view(
    state: &AppState,
    portal: &crate::render::Portal,
    ctx: &Ctx,
    p: &Principal,
    id: &str,
    refused: Option<(&str, &TicketForm, CoreError)>,
) -> Response {
    let t = match state.core.get_ticket(Some(p), id).await {
        Ok(t) => t,
        Err(e) => return ctx.core_error(portal, e),
    };
    let names = resource_names(state, p, std::slice::from_ref(&t)).await;
    let mut people: Vec<String> = t.history.iter().filter_map(|e| e.actor.clone()).collect();
    people.extend(t.history.iter().filter(|e| e.action == "assign").filter_map(|e| e.text.clone()));
    people.extend(t.reporter.clone());
    people.extend(t.assignee.clone());
    let names_of = Names::load(state, p, people).await;
    let history: Vec<Value> = t
        .history
        .iter()
        .map(|e| {
            // The reporter's contact is stored bilingual-prefixed; the page labels it itself.
            let contact = e.text.as_deref().and_then(|x| x.strip_prefix("联系方式 / contact: "));
            let text = match contact {
                Some(c) => Some(format!(
                    "{}{}{c}",
                    ctx.m("contact"),
                    if ctx.lang == crate::i18n::Lang::En { ": " } else { "：" }
                )),
                None => e.text.clone(),
            };
            json!({"at": e.at, "action": e.action, "by": e.by, "actor": e.actor.as_deref().map(|a| names_of.person(a)),
                   "state": e.state.map(|s| s.as_str()), "text": text, "version": e.version})
        })
        .collect();
    let (status, errors, kept, failed) = match refused {
        Some((action, form, e)) => {
            let status =
                if matches!(e, CoreError::Validation(_)) { StatusCode::BAD_REQUEST } else { StatusCode::CONFLICT };
            let mut errors = ctx.field_errors(&e);
            if errors.as_object().is_some_and(|o| o.is_empty()) {
                let api = citydata_api::ApiError::from(e);
                errors = json!({"step": crate::present::one_language(&api.message, ctx.lang)});
            }
            (
                status,
                errors,
                json!({"reason": form.reason, "note": form.note, "version": form.version, "body": form.body}),
                Some(action.to_string()),
            )
        }
        None => (StatusCode::OK, json!({}), json!({}), None),
    };
    let assignees: Vec<Value> = if is_provider(p, &t)
        && !matches!(t.state, TicketState::Confirmed | TicketState::Closed | TicketState::Rejected)
    {
        state
            .core
            .ticket_assignees(p, id)
            .await
            .unwrap_or_default()
            .into_iter()
            .map(|(u, n)| json!({"username": u, "name": n, "selected": t.assignee.as_deref() == Some(u.as_str())}))
            .collect()
    } else {
        Vec::new()
    };
    let mut view = row(&t, &names, &names_of);
    view["assignee"] = json!(t.assignee.as_deref().map(|a| names_of.person(a)));
    view["description"] = json!(t.description);
    view["record_key"] = json!(t.record_key);
    view["item"] = json!(t.item);
    view["reporter"] = json!(t.reporter.as_deref().map(|r| names_of.person(r)));
    view["fixed_version"] = json!(t.fixed_version);
    ctx.render_status(
        portal,
        status,
        "console/ticket.html",
        json!({"t": view, "history": history, "actions": actions(p, &t), "assignees": assignees, "can_comment": is_provider(p, &t) || is_reporter(p, &t), "errors": errors, "k": kept, "failed": failed,
               "sent": ctx.q("done")}),
    )
}

/// `/console/tickets/{id}`: a ticket, its history, and the steps the caller may take.
pub async fn ticket_page(
    State(state): State<AppState>,
    Extension(portal): P,
    Path(id): Path<String>,
    ctx: Ctx,
) -> Response {
    let p = login!(ctx);
    ticket_view(&state, &portal, &ctx, &p, &id, None).await
}

/// `POST /console/tickets/{id}/{action}`: one step; a refusal re-renders the page with the
/// input kept and the reason next to the field.
pub async fn ticket_step(
    State(state): State<AppState>,
    Extension(portal): P,
    Path((id, action)): Path<(String, String)>,
    ctx: Ctx,
    Form(f): Form<TicketForm>,
) -> Response {
    let p = login!(ctx);
    csrf!(ctx, &f.csrf);
    let nonempty = |s: &str| Some(s.trim().to_string()).filter(|s| !s.is_empty());
    let result = if action == "comment" {
        state.core.comment_ticket(&ctx.meta, &p, &id, &f.body).await
    } else if action == "assign" {
        state.core.assign_ticket(&ctx.meta, &p, &id, nonempty(&f.assignee).as_deref()).await
    } else {
        let Some(a) = TicketAction::parse(&action) else {
            return ctx.error_page(&portal, StatusCode::NOT_FOUND, &ctx.m("error_not_found"));
        };
        let version = match nonempty(&f.version).map(|v| v.parse::<i64>()) {
            None => None,
            Some(Ok(v)) => Some(v),
            Some(Err(_)) => {
                let e = citydata_domain::FieldError::new(
                    "version",
                    "invalid_version",
                    "版本号须为整数 / the version must be a whole number",
                );
                return ticket_view(&state, &portal, &ctx, &p, &id, Some((&action, &f, e.into()))).await;
            }
        };
        let step = TicketStep { reason: nonempty(&f.reason), note: nonempty(&f.note), version };
        state.core.ticket_step(&ctx.meta, &p, &id, a, &step).await
    };
    match result {
        Ok(_) => ctx.redirect(&format!("/console/tickets/{id}?done={action}")),
        Err(e @ (CoreError::Validation(_) | CoreError::InvalidTransition { .. })) => {
            ticket_view(&state, &portal, &ctx, &p, &id, Some((&action, &f, e))).await
        }
        Err(e) => ctx.core_error(&portal, e),
    }
}
