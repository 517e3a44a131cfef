//! 纠错工单 (correction tickets): a reader's report becomes a ticket routed to the provider's
//! stewards — submitted → accepted | rejected (reason) → fixed (a table version) → confirmed
//! by the reporter, or closed automatically; reopen with a reason. The response clock runs on
//! the working-day calendar (`ticket_sla_days`). Every step notifies the other side (inbox and
//! webhooks); an out-of-order step is 409 with the current state.

use crate::audit::Actor;
use crate::catalog::can_edit;
use crate::{Core, CoreError, RequestMeta};
use chrono::{DateTime, Utc};
use citydata_domain::principal::Principal;
use citydata_domain::quality::{TicketAction, TicketState};
use citydata_domain::resource::Resource;
use citydata_domain::user::Role as UserRole;
use citydata_domain::vocab::OpenType;
use citydata_domain::{FieldError, ValidationErrors};
use citydata_store::{TicketFilter, TicketRecord};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// A new ticket.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct NewTicket {
    pub title: String,
    pub description: String,
    /// The key of the wrong record, as the reporter sees it.
    pub record_key: Option<String>,
    /// The wrong item (name or Chinese title).
    pub item: Option<String>,
}

/// The body of a transition: `reason` for reject and reopen, `note` (and optionally the fixing
/// `version`) for fix.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TicketStep {
    pub reason: Option<String>,
    pub note: Option<String>,
    pub version: Option<i64>,
}

/// One step or comment in a ticket's history.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TicketEvent {
    pub at: DateTime<Utc>,
    /// `submit`, `accept`, `reject`, `fix`, `confirm`, `reopen`, `close`, `comment`, `overdue`.
    pub action: String,
    /// `reporter`, `provider` or `system`; the username only for the provider and the reporter.
    pub by: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<TicketState>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<i64>,
}

/// A ticket as a caller sees it: the reporter's identity only for the provider's stewards,
/// platform admins and the reporter; the record key to others only on unconditionally open data.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TicketView {
    pub id: Uuid,
    pub resource_id: Uuid,
    pub department: String,
    pub title: String,
    pub description: String,
    /// Withheld (null) from others than the provider and the reporter unless the data is open.
    pub record_key: Option<String>,
    pub item: Option<String>,
    pub state: TicketState,
    /// 已提交 / 已受理 / ...
    pub state_title: String,
    pub reporter: Option<String>,
    /// The provider's steward answering it (username); shown to the provider and the reporter.
    pub assignee: Option<String>,
    pub fixed_version: Option<i64>,
    pub due_at: DateTime<Utc>,
    /// Waiting for the provider past its due time.
    pub overdue: bool,
    pub history: Vec<TicketEvent>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

fn text(errs: &mut ValidationErrors, field: &str, v: Option<&str>, max: usize, need: bool) -> Option<String> {
    let t = v.map(str::trim).filter(|s| !s.is_empty());
    match t {
        None if need => {
            errs.push(FieldError::new(field, "required", format!("{field} 为必填项 / {field} is required")));
            None
        }
        Some(s) if s.chars().count() > max => {
            errs.push(FieldError::new(field, "too_long", format!("{field} 最多 {max} 字 / at most {max} characters")));
            None
        }
        other => other.map(str::to_string),
    }
}

fn history(r: &TicketRecord) -> Vec<TicketEvent> {
    serde_json::from_value(r.history.clone()).unwrap_or_default()
}

fn state_of(r: &TicketRecord) -> TicketState {
    TicketState::parse(&r.state).unwrap_or(TicketState::Submitted)
}

/// Who the caller is to a ticket.
#[derive(Clone, Copy, PartialEq)]
enum Role {
    Provider,
    Reporter,
    /// Anyone else who sees the resource: no identities; the record key only when the data
    /// itself is open to all (it names a row, e.g. a person by 身份证号, of a table the caller
    /// may not read).
    Other {
        record_key: bool,
    },
}

impl Core {
    fn ticket_role(&self, p: Option<&Principal>, t: &TicketRecord, resource: &Resource) -> Role {
        match p {
            Some(p) if can_edit(p, &resource.content.provider) || p.is_admin() => Role::Provider,
            Some(p) if t.reporter_id == Some(p.user_id) => Role::Reporter,
            _ => Role::Other { record_key: resource.content.open.kind == OpenType::Unconditional },
        }
    }

    fn ticket_view(&self, t: &TicketRecord, role: Role, now: DateTime<Utc>) -> TicketView {
        let state = state_of(t);
        let mut hist = history(t);
        let other = matches!(role, Role::Other { .. });
        if other {
            for e in hist.iter_mut() {
                e.actor = None;
                if e.action == "submit" || e.action == "assign" {
                    e.text = None; // the reporter's contact; the assignee
                }
            }
        }
        TicketView {
            id: t.id,
            resource_id: t.resource_id,
            department: t.department.clone(),
            title: t.title.clone(),
            description: t.description.clone(),
            record_key: t.record_key.clone().filter(|_| role != Role::Other { record_key: false }),
            item: t.item.clone(),
            state,
            state_title: state.title().to_string(),
            reporter: (!other).then(|| t.reporter.clone()),
            assignee: t.assignee.clone().filter(|_| !other),
            fixed_version: t.fixed_version,
            due_at: t.due_at,
            overdue: state.awaits_provider() && t.due_at < now,
            history: hist,
            created_at: t.created_at,
            updated_at: t.updated_at,
        }
    }

    /// File a 纠错 ticket on a resource the caller can see. `contact` (the portal's anonymous
    /// form) is kept for the provider only.
    pub async fn create_ticket(
        &self,
        meta: &RequestMeta,
        principal: Option<&Principal>,
        key: &str,
        input: &NewTicket,
        contact: Option<&str>,
    ) -> Result<TicketView, CoreError> {
        let result = async {
            let resource = self.get_resource(principal, key).await?;
            let client = format!("feedback|{}", meta.client.as_deref().unwrap_or(""));
            let now = Utc::now();
            if let Some(retry_after_secs) = self.feedback_limiter.blocked(self.store.as_ref(), &client, now).await? {
                return Err(CoreError::RateLimited { retry_after_secs });
            }
            let mut errs = ValidationErrors::new();
            let title = text(&mut errs, "title", Some(&input.title), 200, true);
            let description = text(&mut errs, "description", Some(&input.description), 2000, true);
            let record_key = text(&mut errs, "record_key", input.record_key.as_deref(), 200, false);
            let contact = text(&mut errs, "contact", contact, 200, false);
            let item = match input.item.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
                None => None,
                Some(i) => match resource.content.item(i) {
                    Some(it) => Some(it.name.to_string()),
                    None => {
                        errs.push(FieldError::new(
                            "item",
                            "unknown_item",
                            format!("此资源没有信息项“{i}” / the resource has no item {i}"),
                        ));
                        None
                    }
                },
            };
            errs.into_result()?;
            self.feedback_limiter.record_failure(self.store.as_ref(), &client, now).await?;
            let reporter = principal.map(|p| p.username.to_string()).unwrap_or_else(|| "anonymous".into());
            let first = TicketEvent {
                at: now,
                action: "submit".into(),
                by: "reporter".into(),
                actor: Some(reporter.clone()),
                state: Some(TicketState::Submitted),
                text: contact.as_deref().map(|c| format!("联系方式 / contact: {c}")),
                version: None,
            };
            let t = TicketRecord {
                id: Uuid::now_v7(),
                resource_id: resource.id,
                department: resource.content.provider.to_string(),
                title: title.unwrap_or_default(),
                description: description.unwrap_or_default(),
                record_key,
                item,
                reporter_id: principal.map(|p| p.user_id),
                reporter,
                state: TicketState::Submitted.as_str().into(),
                fixed_version: None,
                due_at: self.config.calendar.due(now, self.config.ticket_sla_days),
                overdue_notified_at: None,
                assignee: None,
                history: serde_json::to_value(vec![first]).unwrap_or_default(),
                created_at: now,
                updated_at: now,
            };
            self.store.create_ticket(&t).await?;
            let to = self.answerers(&t.department).await?;
            self.notify(
                &to,
                "ticket.submitted",
                format!("数据纠错：{} / correction ticket", resource.content.name),
                // The notice goes to the provider's answerers only, so it carries what they
                // need to reply: the report and the reporter's contact.
                format!(
                    "{}{}{}（请在 {} 前答复 / answer by {}）",
                    t.title,
                    if t.description != t.title {
                        format!("\n{}", t.description.chars().take(500).collect::<String>())
                    } else {
                        String::new()
                    },
                    contact.as_deref().map(|c| format!("\n联系方式 / contact: {c}")).unwrap_or_default(),
                    t.due_at.format("%Y-%m-%d"),
                    t.due_at.to_rfc3339()
                ),
                format!("/api/v1/tickets/{}", t.id),
            )
            .await?;
            Ok((resource.content.code.to_string(), self.ticket_view(&t, Role::Reporter, now)))
        }
        .await;
        let target = result.as_ref().ok().map(|(c, _)| format!("resource:{c}"));
        let actor = match principal {
            Some(p) => Actor::Principal(p),
            None => Actor::Anonymous,
        };
        self.audited(meta, actor, "ticket.create", target, result).await.map(|(_, v)| v)
    }

    async fn load_ticket(
        &self,
        principal: Option<&Principal>,
        id: &str,
    ) -> Result<(TicketRecord, Resource), CoreError> {
        let nf = || CoreError::NotFound(format!("工单不存在：{id} / no such ticket"));
        let id = Uuid::parse_str(id.trim()).map_err(|_| nf())?;
        let t = self.store.get_ticket(id).await?.ok_or_else(nf)?;
        let resource = self.get_resource(principal, &t.resource_id.to_string()).await.map_err(|_| nf())?;
        Ok((t, resource))
    }

    /// One ticket with its history (whoever sees the resource; identities as [`TicketView`]).
    pub async fn get_ticket(&self, principal: Option<&Principal>, id: &str) -> Result<TicketView, CoreError> {
        let (t, resource) = self.load_ticket(principal, id).await?;
        Ok(self.ticket_view(&t, self.ticket_role(principal, &t, &resource), Utc::now()))
    }

    /// A resource's tickets, newest first (public, without the reporters' identities).
    pub async fn resource_tickets(
        &self,
        principal: Option<&Principal>,
        key: &str,
    ) -> Result<Vec<TicketView>, CoreError> {
        let resource = self.get_resource(principal, key).await?;
        let f = TicketFilter { resource_id: Some(resource.id), ..Default::default() };
        let now = Utc::now();
        Ok(self
            .store
            .list_tickets(&f, 500)
            .await?
            .iter()
            .map(|t| self.ticket_view(t, self.ticket_role(principal, t, &resource), now))
            .collect())
    }

    /// Tickets the caller works on or filed: platform admins all; department members their
    /// departments' (as providers); everyone their own reports. `overdue` keeps those waiting
    /// for the provider past their due time.
    pub async fn list_tickets(
        &self,
        principal: &Principal,
        state: Option<&str>,
        department: Option<&str>,
        overdue: bool,
    ) -> Result<Vec<TicketView>, CoreError> {
        if let Some(s) = state
            && TicketState::parse(s).is_none()
        {
            return Err(FieldError::new(
                "state",
                "invalid_state",
                "state 须为 submitted、accepted、rejected、fixed、confirmed 或 closed / unknown state",
            )
            .into());
        }
        let now = Utc::now();
        let mut f = TicketFilter {
            state: state.map(str::to_string),
            department: department.map(str::to_string),
            overdue_at: overdue.then_some(now),
            ..Default::default()
        };
        let mut out: Vec<TicketRecord> = Vec::new();
        if principal.is_admin() {
            out = self.store.list_tickets(&f, 1000).await?;
        } else {
            for m in &principal.memberships {
                if department.is_some_and(|d| d != m.department.as_str()) || !can_edit(principal, &m.department) {
                    continue;
                }
                f.department = Some(m.department.to_string());
                out.extend(self.store.list_tickets(&f, 1000).await?);
            }
            f.department = department.map(str::to_string);
            f.reporter_id = Some(principal.user_id);
            for t in self.store.list_tickets(&f, 1000).await? {
                if !out.iter().any(|o| o.id == t.id) {
                    out.push(t);
                }
            }
        }
        out.sort_by_key(|t| std::cmp::Reverse(t.created_at));
        Ok(out
            .iter()
            .map(|t| {
                let role = if t.reporter_id == Some(principal.user_id) { Role::Reporter } else { Role::Provider };
                self.ticket_view(t, role, now)
            })
            .collect())
    }

    /// A step of a ticket: accept, reject (reason), fix (note, version), confirm, reopen
    /// (reason). Provider steps by the provider's stewards and admins; confirm and reopen by
    /// the reporter. Out of order: 409 `invalid_transition` with the current state.
    pub async fn ticket_step(
        &self,
        meta: &RequestMeta,
        principal: &Principal,
        id: &str,
        action: TicketAction,
        step: &TicketStep,
    ) -> Result<TicketView, CoreError> {
        let result = self.ticket_step_inner(principal, id, action, step).await;
        let target = result.as_ref().ok().map(|v| format!("ticket:{}", v.id));
        self.audited(meta, Actor::Principal(principal), &format!("ticket.{}", action.as_str()), target, result).await
    }

    async fn ticket_step_inner(
        &self,
        principal: &Principal,
        id: &str,
        action: TicketAction,
        step: &TicketStep,
    ) -> Result<TicketView, CoreError> {
        let (t, resource) = self.load_ticket(Some(principal), id).await?;
        let role = self.ticket_role(Some(principal), &t, &resource);
        let allowed = match action {
            TicketAction::Accept | TicketAction::Reject | TicketAction::Fix => role == Role::Provider,
            TicketAction::Confirm | TicketAction::Reopen => t.reporter_id == Some(principal.user_id),
            TicketAction::Close => false,
        };
        if !allowed {
            return Err(CoreError::forbidden());
        }
        let from = state_of(&t);
        let Some(to) = from.after(action) else {
            return Err(CoreError::InvalidTransition {
                state: from.as_str(),
                message: format!(
                    "工单当前为“{}”，不能执行 {} / the ticket is {}: {} is not possible now",
                    from.title(),
                    action.as_str(),
                    from.as_str(),
                    action.as_str()
                ),
            });
        };
        let mut errs = ValidationErrors::new();
        let note = match action {
            TicketAction::Reject | TicketAction::Reopen => {
                text(&mut errs, "reason", step.reason.as_deref(), 2000, true)
            }
            TicketAction::Fix => text(&mut errs, "note", step.note.as_deref(), 2000, true),
            _ => text(&mut errs, "note", step.note.as_deref(), 2000, false),
        };
        let mut version = None;
        if action == TicketAction::Fix {
            let current = self.lake()?.version(resource.id).await?;
            match (step.version, current) {
                (Some(v), Some(c)) if v >= 0 && v <= c => version = Some(v),
                (None, Some(c)) => version = Some(c),
                _ => errs.push(FieldError::new(
                    "version",
                    "invalid_version",
                    "version 须为此资源表中已有的版本 / version must be an existing table version",
                )),
            }
        }
        errs.into_result()?;
        let now = Utc::now();
        let mut hist = history(&t);
        hist.push(TicketEvent {
            at: now,
            action: action.as_str().into(),
            by: if role == Role::Provider { "provider" } else { "reporter" }.into(),
            actor: Some(principal.username.to_string()),
            state: Some(to),
            text: note,
            version,
        });
        let next = TicketRecord {
            state: to.as_str().into(),
            fixed_version: if action == TicketAction::Fix { version } else { t.fixed_version },
            due_at: if action == TicketAction::Reopen {
                self.config.calendar.due(now, self.config.ticket_sla_days)
            } else {
                t.due_at
            },
            overdue_notified_at: if action == TicketAction::Reopen { None } else { t.overdue_notified_at },
            history: serde_json::to_value(&hist).unwrap_or_default(),
            updated_at: now,
            ..t.clone()
        };
        if !self.store.update_ticket(&next, from.as_str()).await? {
            let cur = self.store.get_ticket(t.id).await?.map(|c| state_of(&c)).unwrap_or(from);
            return Err(CoreError::InvalidTransition {
                state: cur.as_str(),
                message: format!("工单状态已变为“{}” / the ticket is now {}", cur.title(), cur.as_str()),
            });
        }
        self.notify_ticket(&next, &resource, to).await?;
        Ok(self.ticket_view(&next, role, now))
    }

    /// Tell the other side of a ticket about its new state: the reporter of provider steps,
    /// the provider's stewards of reporter steps.
    async fn notify_ticket(&self, t: &TicketRecord, resource: &Resource, to: TicketState) -> Result<(), CoreError> {
        let users: Vec<Uuid> = match to {
            TicketState::Confirmed | TicketState::Submitted => self.answerers(&t.department).await?,
            _ => t.reporter_id.into_iter().collect(),
        };
        self.notify(
            &users,
            &format!("ticket.{}", to.as_str()),
            format!("纠错工单{}：{} / ticket {}", to.title(), resource.content.name, to.as_str()),
            t.title.clone(),
            format!("/api/v1/tickets/{}", t.id),
        )
        .await
    }

    /// Add a comment (the provider's stewards or the reporter).
    pub async fn comment_ticket(
        &self,
        meta: &RequestMeta,
        principal: &Principal,
        id: &str,
        body: &str,
    ) -> Result<TicketView, CoreError> {
        let result = async {
            let (t, resource) = self.load_ticket(Some(principal), id).await?;
            let role = self.ticket_role(Some(principal), &t, &resource);
            if matches!(role, Role::Other { .. }) {
                return Err(CoreError::forbidden());
            }
            let mut errs = ValidationErrors::new();
            let body = text(&mut errs, "body", Some(body), 2000, true);
            errs.into_result()?;
            let now = Utc::now();
            let mut hist = history(&t);
            hist.push(TicketEvent {
                at: now,
                action: "comment".into(),
                by: if role == Role::Provider { "provider" } else { "reporter" }.into(),
                actor: Some(principal.username.to_string()),
                state: None,
                text: body,
                version: None,
            });
            let next =
                TicketRecord { history: serde_json::to_value(&hist).unwrap_or_default(), updated_at: now, ..t.clone() };
            if !self.store.update_ticket(&next, &t.state).await? {
                return Err(CoreError::Conflict("工单刚被修改，请重试 / the ticket just changed: retry".into()));
            }
            Ok(self.ticket_view(&next, role, now))
        }
        .await;
        let target = result.as_ref().ok().map(|v| format!("ticket:{}", v.id));
        self.audited(meta, Actor::Principal(principal), "ticket.comment", target, result).await
    }

    /// Whom a ticket can be assigned to: the provider department's stewards and department
    /// admins as (username, display name), for the provider only.
    pub async fn ticket_assignees(&self, principal: &Principal, id: &str) -> Result<Vec<(String, String)>, CoreError> {
        let (t, resource) = self.load_ticket(Some(principal), id).await?;
        if self.ticket_role(Some(principal), &t, &resource) != Role::Provider {
            return Err(CoreError::forbidden());
        }
        Ok(self
            .store
            .list_users()
            .await?
            .into_iter()
            .filter(|u| {
                !u.disabled
                    && u.memberships.iter().any(|m| {
                        m.department.as_str() == t.department
                            && matches!(m.role, UserRole::Steward | UserRole::DeptAdmin)
                    })
            })
            .map(|u| (u.username.to_string(), u.display_name))
            .collect())
    }

    /// Assign a ticket to one of the provider's stewards (or department admins), or clear the
    /// assignment with `None`: by the provider's stewards and platform admins, on a ticket still
    /// open. The assignee is told through the inbox; the step is in the history.
    pub async fn assign_ticket(
        &self,
        meta: &RequestMeta,
        principal: &Principal,
        id: &str,
        assignee: Option<&str>,
    ) -> Result<TicketView, CoreError> {
        let result = async {
            let (t, resource) = self.load_ticket(Some(principal), id).await?;
            if self.ticket_role(Some(principal), &t, &resource) != Role::Provider {
                return Err(CoreError::forbidden());
            }
            let state = state_of(&t);
            if matches!(state, TicketState::Confirmed | TicketState::Closed | TicketState::Rejected) {
                return Err(CoreError::InvalidTransition {
                    state: state.as_str(),
                    message: format!("工单已“{}”，不能再指派 / the ticket is {}", state.title(), state.as_str()),
                });
            }
            let who = match assignee.map(str::trim).filter(|a| !a.is_empty()) {
                None => None,
                Some(a) => {
                    let user = match citydata_domain::user::Username::parse(a) {
                        Ok(u) => self.store.get_user_by_username(&u).await?.map(|(u, _)| u),
                        Err(_) => None,
                    };
                    let answers = user.as_ref().is_some_and(|u| {
                        !u.disabled
                            && u.memberships.iter().any(|m| {
                                m.department.as_str() == t.department
                                    && matches!(m.role, UserRole::Steward | UserRole::DeptAdmin | UserRole::Admin)
                            })
                    });
                    if !answers {
                        return Err(FieldError::new(
                            "assignee",
                            "not_a_steward",
                            format!("“{a}”不是提供部门的数据管理员 / {a} is not a steward of the provider"),
                        )
                        .into());
                    }
                    user
                }
            };
            let now = Utc::now();
            let mut hist = history(&t);
            hist.push(TicketEvent {
                at: now,
                action: "assign".into(),
                by: "provider".into(),
                actor: Some(principal.username.to_string()),
                state: None,
                text: who.as_ref().map(|u| u.username.to_string()),
                version: None,
            });
            let next = TicketRecord {
                assignee: who.as_ref().map(|u| u.username.to_string()),
                history: serde_json::to_value(&hist).unwrap_or_default(),
                updated_at: now,
                ..t.clone()
            };
            if !self.store.update_ticket(&next, &t.state).await? {
                return Err(CoreError::Conflict("工单刚被修改，请重试 / the ticket just changed: retry".into()));
            }
            if let Some(u) = &who
                && u.id != principal.user_id
            {
                self.notify(
                    &[u.id],
                    "ticket.assigned",
                    format!("纠错工单指派给您：{} / a correction ticket is assigned to you", t.title),
                    format!(
                        "{}（{}）请在 {} 前答复 / answer by {}",
                        t.title,
                        resource.content.name,
                        t.due_at.format("%Y-%m-%d"),
                        t.due_at.to_rfc3339()
                    ),
                    format!("/api/v1/tickets/{}", t.id),
                )
                .await?;
            }
            Ok(self.ticket_view(&next, Role::Provider, now))
        }
        .await;
        let target = result.as_ref().ok().map(|v| format!("ticket:{}", v.id));
        self.audited(meta, Actor::Principal(principal), "ticket.assign", target, result).await
    }

    /// The ticket part of the notice sweep: overdue tickets are flagged once to the provider's
    /// stewards and the platform admins; fixed tickets nobody confirmed close after
    /// `ticket_autoclose_days`. Returns (flagged, closed).
    pub async fn sweep_tickets(&self, now: DateTime<Utc>) -> Result<(usize, usize), CoreError> {
        let mut flagged = 0;
        let overdue = TicketFilter { overdue_at: Some(now), ..Default::default() };
        let admins: Vec<Uuid> = self
            .store
            .list_users()
            .await?
            .into_iter()
            .filter(|u| u.memberships.iter().any(|m| m.role == citydata_domain::user::Role::Admin))
            .map(|u| u.id)
            .collect();
        for t in self.store.list_tickets(&overdue, 1000).await? {
            if t.overdue_notified_at.is_some() {
                continue;
            }
            let next = TicketRecord { overdue_notified_at: Some(now), ..t.clone() };
            if !self.store.update_ticket(&next, &t.state).await? {
                continue; // changed meanwhile, or another node flagged it
            }
            let mut to = self.answerers(&t.department).await?;
            for a in &admins {
                if !to.contains(a) {
                    to.push(*a);
                }
            }
            self.notify(
                &to,
                "ticket.overdue",
                format!("纠错工单超期未答复 / overdue ticket: {}", t.title),
                format!("应于 {} 前答复 / was due {}", t.due_at.format("%Y-%m-%d"), t.due_at.to_rfc3339()),
                format!("/api/v1/tickets/{}", t.id),
            )
            .await?;
            flagged += 1;
        }
        let mut closed = 0;
        let fixed = TicketFilter { state: Some("fixed".into()), ..Default::default() };
        let limit = chrono::Duration::days(i64::from(self.config.ticket_autoclose_days));
        for t in self.store.list_tickets(&fixed, 1000).await? {
            if now - t.updated_at < limit {
                continue;
            }
            let mut hist = history(&t);
            hist.push(TicketEvent {
                at: now,
                action: "close".into(),
                by: "system".into(),
                actor: None,
                state: Some(TicketState::Closed),
                text: None,
                version: None,
            });
            let next = TicketRecord {
                state: TicketState::Closed.as_str().into(),
                history: serde_json::to_value(&hist).unwrap_or_default(),
                updated_at: now,
                ..t.clone()
            };
            if self.store.update_ticket(&next, "fixed").await? {
                closed += 1;
            }
        }
        Ok((flagged, closed))
    }
}
