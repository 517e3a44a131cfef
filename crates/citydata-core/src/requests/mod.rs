//! 共享申请 (the sharing workflow): a department (or a public user) asks for a resource; by
//! share type it is granted at once, waits for the provider, or is refused at once; the
//! provider approves (possibly narrowing) or rejects with a reason; both sides comment; the
//! inbox tells everyone concerned; a due date counts working days.

use crate::audit::Actor;
use crate::catalog::can_edit;
use crate::grants::{GranteeInput, NewGrantInput};
use crate::{Core, CoreError, RequestMeta};
use chrono::{DateTime, Duration, SubsecRound, Utc};
use citydata_domain::principal::Principal;
use citydata_domain::resource::Resource;
use citydata_domain::user::Role;
use citydata_domain::vocab::{OpenType, ShareType};
use citydata_domain::{FieldError, ValidationErrors};
use citydata_store::{CommentRecord, GranteeKind, InboxRecord, RequestRecord, RequestState};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use uuid::Uuid;

mod decide;
mod response_times;

pub use response_times::ResponseTimes;

/// A sharing request as clients see it.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RequestView {
    pub id: Uuid,
    pub resource_id: Uuid,
    /// The requesting user's name.
    pub requester: String,
    /// The requesting department (null for a public applicant).
    pub requester_department: Option<String>,
    /// Item names asked for (empty: all).
    pub fields: Vec<String>,
    pub purpose: String,
    pub basis: String,
    pub scenario: String,
    pub contact: String,
    pub period_days: i64,
    /// `pending`, `approved`, `rejected`, `withdrawn`.
    pub state: String,
    pub reason: Option<String>,
    pub decided_by: Option<String>,
    pub decided_at: Option<DateTime<Utc>>,
    pub grant_id: Option<Uuid>,
    pub due_at: DateTime<Utc>,
    /// Pending past its due date.
    pub overdue: bool,
    pub created_at: DateTime<Utc>,
    /// The grant this request asks to renew (续期).
    pub renews_grant: Option<Uuid>,
    /// SHA-256 of the 安全承诺书 a public applicant accepted.
    pub commitment_sha256: Option<String>,
}

/// A comment on a request, as clients see it.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CommentView {
    pub id: Uuid,
    pub author: String,
    pub body: String,
    pub created_at: DateTime<Utc>,
}

impl From<&CommentRecord> for CommentView {
    fn from(c: &CommentRecord) -> Self {
        Self { id: c.id, author: c.author.clone(), body: c.body.clone(), created_at: c.created_at }
    }
}

/// A message in one's inbox, as clients see it.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct InboxView {
    pub id: Uuid,
    /// `request.new`, `request.decided`, `request.comment`, `grant.expiring`, `grant.revoked`, ...
    pub kind: String,
    pub title: String,
    pub body: String,
    /// An API path about the subject, e.g. `/api/v1/requests/<id>`.
    pub link: Option<String>,
    pub created_at: DateTime<Utc>,
    pub read: bool,
}

impl From<&InboxRecord> for InboxView {
    fn from(m: &InboxRecord) -> Self {
        Self {
            id: m.id,
            kind: m.kind.clone(),
            title: m.title.clone(),
            body: m.body.clone(),
            link: m.link.clone(),
            created_at: m.created_at,
            read: m.read_at.is_some(),
        }
    }
}

impl From<&RequestRecord> for RequestView {
    fn from(r: &RequestRecord) -> Self {
        Self {
            id: r.id,
            resource_id: r.resource_id,
            requester: r.requester_name.clone(),
            requester_department: r.requester_department.clone(),
            fields: r.fields.clone(),
            purpose: r.purpose.clone(),
            basis: r.basis.clone(),
            scenario: r.scenario.clone(),
            contact: r.contact.clone(),
            period_days: r.period_days,
            state: r.state.as_str().to_string(),
            reason: r.reason.clone(),
            decided_by: r.decided_by.clone(),
            decided_at: r.decided_at,
            grant_id: r.grant_id,
            due_at: r.due_at,
            overdue: r.state == RequestState::Pending && r.due_at < Utc::now(),
            created_at: r.created_at,
            renews_grant: r.renews_grant,
            commitment_sha256: r.commitment.clone(),
        }
    }
}

/// A new request, as received.
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct NewRequestInput {
    /// Resource UUID, code or slug.
    pub resource_id: String,
    /// Items wanted (names or titles); empty: every item.
    #[serde(default)]
    pub fields: Vec<String>,
    /// 用途
    pub purpose: String,
    /// 依据 (legal or policy basis)
    #[serde(default)]
    pub basis: String,
    /// 使用场景
    #[serde(default)]
    pub scenario: String,
    #[serde(default)]
    pub contact: String,
    /// How long the data is needed, in days (1–3650, default 365).
    #[serde(default)]
    pub period_days: Option<i64>,
    /// Public applicants accept the security commitment (安全承诺书).
    #[serde(default)]
    pub accept_commitment: bool,
    /// The `sha256` of the commitment text the applicant read (`GET /requests/commitment`);
    /// when given and the text has changed since, the application is refused.
    #[serde(default)]
    pub commitment_sha256: Option<String>,
    /// `read` (default) or `verify`: a verification grant (核验, match answers only), which
    /// the provider approves even on 不予共享 resources; `fields` must hold the key items.
    #[serde(default)]
    pub kind: Option<String>,
}

/// `POST /grants/{id}/renew`: ask the provider for another period under the same grant.
#[derive(Debug, Clone, Deserialize, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct RenewInput {
    /// Days from the current expiry (1–3650, default 365).
    #[serde(default)]
    pub period_days: Option<i64>,
    /// Default: the grant's purpose.
    #[serde(default)]
    pub purpose: Option<String>,
    /// Default: 续期 (renewal of grant <id>).
    #[serde(default)]
    pub basis: Option<String>,
    #[serde(default)]
    pub scenario: Option<String>,
    /// Public grantees accept the current security commitment again.
    #[serde(default)]
    pub accept_commitment: bool,
}

/// The security commitment public applicants accept, and its fingerprint.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CommitmentView {
    pub text: String,
    pub sha256: String,
}

/// An approval, as received: everything optional narrows the request.
#[derive(Debug, Clone, Deserialize, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ApproveInput {
    /// A subset of the requested items.
    #[serde(default)]
    pub fields: Option<Vec<String>>,
    #[serde(default)]
    pub row_filter: Option<String>,
    #[serde(default)]
    pub masks: BTreeMap<String, String>,
    /// No later than the requested period.
    #[serde(default)]
    pub expires_at: Option<DateTime<Utc>>,
}

fn text(errs: &mut ValidationErrors, field: &str, v: &str, required: bool, max: usize) -> String {
    let t = v.trim();
    if required && t.is_empty() {
        errs.push(FieldError::new(field, "required", format!("{field} 为必填项 / {field} is required")));
    } else if t.chars().count() > max {
        errs.push(FieldError::new(
            field,
            "too_long",
            format!("{field} 不能超过 {max} 字 / {field} is longer than {max}"),
        ));
    }
    t.to_string()
}

/// The users a grant reaches: members of the grantee department, or the grantee user.
fn grantee_ids(users: &[citydata_domain::user::User], g: &citydata_store::GrantRecord) -> Vec<Uuid> {
    match g.grantee_kind {
        GranteeKind::Department => users
            .iter()
            .filter(|u| u.memberships.iter().any(|m| m.department.as_str() == g.grantee))
            .map(|u| u.id)
            .collect(),
        GranteeKind::User => Uuid::parse_str(&g.grantee).into_iter().collect(),
    }
}

impl Core {
    /// Tell `users` in their inboxes, and their departments' webhooks.
    pub(crate) async fn notify(
        &self,
        users: &[Uuid],
        kind: &str,
        title: String,
        body: String,
        link: String,
    ) -> Result<(), CoreError> {
        let now = Utc::now().trunc_subsecs(6);
        for u in users {
            self.store
                .push_inbox(&InboxRecord {
                    id: Uuid::now_v7(),
                    user_id: *u,
                    kind: kind.into(),
                    title: title.clone(),
                    body: body.clone(),
                    link: Some(link.clone()),
                    created_at: now,
                    read_at: None,
                })
                .await?;
        }
        // The same event goes to the webhooks of the departments those users belong to (the
        // users are looked up only when some webhook asks for this event).
        let hooks = self.webhooks_for(kind).await?;
        if hooks.is_empty() {
            return Ok(());
        }
        let departments: std::collections::BTreeSet<String> = self
            .store
            .list_users()
            .await?
            .iter()
            .filter(|u| users.contains(&u.id))
            .flat_map(|u| u.memberships.iter().map(|m| m.department.to_string()))
            .collect();
        self.emit(&hooks, &departments, kind, serde_json::json!({"title": title, "body": body, "link": link})).await?;
        Ok(())
    }

    /// The stewards and department admins of a department (who answer its requests).
    pub(crate) async fn answerers(&self, dept: &str) -> Result<Vec<Uuid>, CoreError> {
        Ok(self
            .store
            .list_users()
            .await?
            .into_iter()
            .filter(|u| {
                u.memberships.iter().any(|m| {
                    m.department.as_str() == dept && matches!(m.role, Role::Steward | Role::DeptAdmin | Role::Admin)
                })
            })
            .map(|u| u.id)
            .collect())
    }

    /// The users a grant reaches: members of the grantee department, or the grantee user.
    pub(crate) async fn grantee_users(&self, g: &citydata_store::GrantRecord) -> Result<Vec<Uuid>, CoreError> {
        Ok(grantee_ids(&self.store.list_users().await?, g))
    }

    /// The periodic notices, each sent once: platform admins learn of every overdue pending
    /// request; grantees learn of grants expiring within 7 days. Returns (overdue, expiring)
    /// notices sent. Run hourly by the server; `now` is a parameter so tests can move the clock.
    pub async fn sweep_notices(&self, now: DateTime<Utc>) -> Result<(usize, usize), CoreError> {
        let mut overdue = 0;
        let users = self.store.list_users().await?;
        let admins: Vec<Uuid> =
            users.iter().filter(|u| u.memberships.iter().any(|m| m.role == Role::Admin)).map(|u| u.id).collect();
        for r in self.store.list_requests(None, None, None).await? {
            if r.state != RequestState::Pending || r.due_at >= now {
                continue;
            }
            let link = format!("/api/v1/requests/{}", r.id);
            if self.store.inbox_notice_exists("request.overdue", &link).await? {
                continue;
            }
            let Some(resource) = self.store.get_resource(r.resource_id).await? else { continue };
            self.notify(
                &admins,
                "request.overdue",
                format!("申请已超期：{} / request overdue", resource.content.name),
                format!(
                    "{} 对“{}”的申请应于 {} 前答复，提供部门 {} 尚未处理 / due {}, not answered by {}",
                    r.requester_name,
                    resource.content.name,
                    r.due_at.format("%Y-%m-%d"),
                    resource.content.provider,
                    r.due_at.format("%Y-%m-%d"),
                    resource.content.provider,
                ),
                link,
            )
            .await?;
            overdue += 1;
        }
        let mut expiring = 0;
        let horizon = now + Duration::days(7);
        for g in self.store.list_grants(None, None, None).await? {
            let Some(exp) = g.expires_at else { continue };
            if g.revoked_at.is_some() || exp <= now || exp > horizon {
                continue;
            }
            let link = format!("/api/v1/grants/{}", g.id);
            if self.store.inbox_notice_exists("grant.expiring", &link).await? {
                continue;
            }
            let Some(resource) = self.store.get_resource(g.resource_id).await? else { continue };
            self.notify(
                &grantee_ids(&users, &g),
                "grant.expiring",
                format!("授权即将到期：{} / grant expiring", resource.content.name),
                format!(
                    "对“{}”的授权将于 {} 到期，如需继续使用请重新申请 / the grant expires on {}",
                    resource.content.name,
                    exp.format("%Y-%m-%d"),
                    exp.format("%Y-%m-%d"),
                ),
                link,
            )
            .await?;
            expiring += 1;
        }
        Ok((overdue, expiring))
    }

    fn may_see_request(p: &Principal, r: &RequestRecord, resource: &Resource) -> bool {
        r.requester == p.user_id
            || r.requester_department
                .as_deref()
                .is_some_and(|d| p.memberships.iter().any(|m| m.department.as_str() == d))
            || can_edit(p, &resource.content.provider)
            || p.is_admin()
    }

    /// File a request. Unconditional sharing is granted at once, 不予共享 refused at once with the
    /// catalog's stated basis, conditional sharing waits for the provider.
    pub async fn create_request(
        &self,
        meta: &RequestMeta,
        principal: &Principal,
        input: &NewRequestInput,
    ) -> Result<RequestRecord, CoreError> {
        let result = self.create_request_inner(meta, principal, input, None).await;
        let target = result.as_ref().ok().map(|r| format!("request:{}", r.id));
        self.audited(meta, Actor::Principal(principal), "request.create", target, result).await
    }

    /// The 安全承诺书 in force.
    pub fn commitment(&self) -> CommitmentView {
        use sha2::Digest;
        let text = self.config.commitment_text.clone();
        let sha256 = hex::encode(sha2::Sha256::digest(text.as_bytes()));
        CommitmentView { text, sha256 }
    }

    /// Ask to renew a grant before it expires (its grantees): a request for the same items
    /// and purpose, answered like any other. On approval the new grant replaces the old one,
    /// which is closed with `revoked_by = "renewal"`.
    pub async fn renew_grant(
        &self,
        meta: &RequestMeta,
        principal: &Principal,
        grant_id: &str,
        input: &RenewInput,
    ) -> Result<RequestRecord, CoreError> {
        let result = async {
            let not_found = || CoreError::NotFound(format!("授权不存在：{grant_id} / no such grant"));
            let gid = Uuid::parse_str(grant_id.trim()).map_err(|_| not_found())?;
            let g = self.store.get_grant(gid).await?.ok_or_else(not_found)?;
            let mine = match g.grantee_kind {
                GranteeKind::Department => principal.memberships.iter().any(|m| m.department.as_str() == g.grantee),
                GranteeKind::User => g.grantee == principal.user_id.to_string(),
            };
            if !mine {
                return Err(not_found());
            }
            if self.store.verify_terms(g.id).await?.is_some() {
                // A renewal is approved into a read grant: a verification grant is reissued
                // by the provider instead, never turned into rows.
                return Err(CoreError::Conflict(
                    "核验授权不能续期，请联系提供部门重新授权 / a verification grant is not renewed: ask the provider to issue a new one".into(),
                ));
            }
            if g.revoked_at.is_some() {
                return Err(CoreError::Conflict("授权已撤销，请重新申请 / the grant was revoked: apply anew".into()));
            }
            if g.expires_at.is_some_and(|e| e <= Utc::now()) {
                return Err(CoreError::Conflict("授权已到期，请重新申请 / the grant has expired: apply anew".into()));
            }
            let pending = self.store.list_requests(None, None, None).await?;
            if pending.iter().any(|r| r.renews_grant == Some(g.id) && r.state == RequestState::Pending) {
                return Err(CoreError::Conflict("已有待处理的续期申请 / a renewal is already pending".into()));
            }
            // The new period runs from the current expiry.
            let extra = input.period_days.unwrap_or(365);
            let from_expiry = g.expires_at.map(|e| (e - Utc::now()).num_days().max(0)).unwrap_or(0);
            let req = NewRequestInput {
                resource_id: g.resource_id.to_string(),
                fields: g.fields.clone(),
                purpose: input.purpose.clone().unwrap_or_else(|| g.purpose.clone()),
                basis: input
                    .basis
                    .clone()
                    .unwrap_or_else(|| format!("续期（授权 {}）/ renewal of grant {}", g.id, g.id)),
                scenario: input.scenario.clone().unwrap_or_else(|| "续期 / renewal".into()),
                contact: String::new(),
                period_days: Some(if (1..=3650).contains(&extra) { extra + from_expiry } else { extra }),
                accept_commitment: input.accept_commitment,
                commitment_sha256: None,
                kind: None,
            };
            self.create_request_inner(meta, principal, &req, Some(&g)).await
        }
        .await;
        let target = result.as_ref().ok().map(|r| format!("request:{}", r.id));
        self.audited(meta, Actor::Principal(principal), "grant.renew_request", target, result).await
    }

    async fn create_request_inner(
        &self,
        meta: &RequestMeta,
        principal: &Principal,
        input: &NewRequestInput,
        renews: Option<&citydata_store::GrantRecord>,
    ) -> Result<RequestRecord, CoreError> {
        let resource = self.get_resource(Some(principal), &input.resource_id).await?;
        // A renewal is for the grant's own grantee department, never the renewer's other one.
        let dept = match renews {
            Some(g) if g.grantee_kind == GranteeKind::Department => Some(g.grantee.clone()),
            _ => principal.primary_department().map(|d| d.to_string()),
        };
        let mut errs = ValidationErrors::new();
        if renews.is_none() && principal.is_member_of(&resource.content.provider) {
            errs.push(FieldError::new(
                "resource_id",
                "own_resource",
                "本部门的资源无需申请 / your own department's resource needs no request",
            ));
        }
        let mut fields = Vec::new();
        for (i, f) in input.fields.iter().enumerate() {
            match resource.content.item(f) {
                Some(item) => fields.push(item.name.to_string()),
                None => errs.push(FieldError::new(
                    format!("fields[{i}]"),
                    "unknown_item",
                    format!("没有信息项“{f}” / no item \"{f}\""),
                )),
            }
        }
        let verify = match input.kind.as_deref().map(str::trim) {
            None | Some("read") => false,
            Some("verify") if dept.is_some() && renews.is_none() => {
                for k in resource.content.items.iter().filter(|i| i.key) {
                    if !fields.contains(&k.name.to_string()) {
                        errs.push(FieldError::new(
                            "fields",
                            "missing_key",
                            format!(
                                "核验申请须包含主键“{}” / a verification request must include the key item {}",
                                k.title, k.name
                            ),
                        ));
                    }
                }
                true
            }
            Some(_) => {
                errs.push(FieldError::new(
                    "kind",
                    "invalid_kind",
                    "kind 须为 read 或 verify（核验仅限政务部门）/ kind must be read or verify (verification is for departments)",
                ));
                false
            }
        };
        let purpose = text(&mut errs, "purpose", &input.purpose, true, 2000);
        let basis = text(&mut errs, "basis", &input.basis, dept.is_some(), 2000);
        let scenario = text(&mut errs, "scenario", &input.scenario, dept.is_none(), 2000);
        let contact = text(&mut errs, "contact", &input.contact, false, 200);
        let period_days = input.period_days.unwrap_or(365);
        if !(1..=3650).contains(&period_days) {
            errs.push(FieldError::new(
                "period_days",
                "out_of_range",
                "period_days 须在 1–3650 之间 / period_days must be 1–3650",
            ));
        }
        let commitment = self.commitment();
        if dept.is_none() {
            if input.commitment_sha256.as_deref().is_some_and(|h| !h.trim().eq_ignore_ascii_case(&commitment.sha256)) {
                errs.push(FieldError::new(
                    "commitment_sha256",
                    "stale_commitment",
                    "《数据安全承诺书》已更新，请重新阅读后再提交 / the security commitment has changed: read it again",
                ));
            }
            if !input.accept_commitment {
                errs.push(FieldError::new(
                    "accept_commitment",
                    "required",
                    "须阅读并接受《数据安全承诺书》/ you must accept the security commitment",
                ));
            }
            if resource.content.open.kind != OpenType::Conditional {
                errs.push(FieldError::new(
                    "resource_id",
                    "not_applicable",
                    "只有有条件开放的资源需要申请 / only conditionally open resources take applications",
                ));
            }
        }
        // A duplicate of one's own pending application (same resource, items and purpose) is
        // refused, named; another purpose is another application.
        if renews.is_none() {
            let mine = self.store.list_requests(Some(principal.user_id), None, None).await?;
            let mut asked = fields.clone();
            asked.sort();
            if mine.iter().any(|r| {
                let mut f = r.fields.clone();
                f.sort();
                r.resource_id == resource.id
                    && r.state == RequestState::Pending
                    && r.purpose.trim() == input.purpose.trim()
                    && f == asked
            }) {
                errs.push(FieldError::new(
                    "resource_id",
                    "duplicate_pending",
                    "您对该资源已有一份相同的申请正在审核，请等待答复或先撤回 / you already have the same request pending for this resource",
                ));
            }
        }
        errs.into_result()?;
        let now = Utc::now().trunc_subsecs(6);
        let mut r = RequestRecord {
            id: Uuid::now_v7(),
            resource_id: resource.id,
            requester: principal.user_id,
            requester_name: principal.username.to_string(),
            requester_department: dept.clone(),
            fields,
            purpose,
            basis,
            scenario,
            contact,
            period_days,
            state: RequestState::Pending,
            reason: None,
            decided_by: None,
            decided_at: None,
            grant_id: None,
            due_at: self.config.calendar.due(now, self.config.response_days),
            created_at: now,
            renews_grant: renews.map(|g| g.id),
            commitment: dept.is_none().then(|| commitment.sha256.clone()),
        };
        let link = format!("/api/v1/requests/{}", r.id);
        if verify {
            // Marked before the request exists: its approval always issues a verification grant.
            self.store.mark_verify_request(r.id).await?;
        }
        match (dept.is_some() && !verify, resource.content.share.kind) {
            (true, ShareType::None) => {
                r.state = RequestState::Rejected;
                r.reason = Some(format!(
                    "该资源不予共享，依据：{} / not shared; basis: {}",
                    resource.content.share.conditions.as_deref().unwrap_or("-"),
                    resource.content.share.conditions.as_deref().unwrap_or("-")
                ));
                r.decided_by = Some("system".into());
                r.decided_at = Some(now);
                self.store.create_request(&r).await?;
            }
            (true, ShareType::Unconditional) => {
                self.store.create_request(&r).await?;
                let system = crate::auth::operator("system");
                let grant = self
                    .issue_grant(
                        meta,
                        &system,
                        &NewGrantInput {
                            resource_id: resource.id.to_string(),
                            grantee: GranteeInput { department: dept.clone(), user: None },
                            fields: r.fields.clone(),
                            row_filter: None,
                            masks: BTreeMap::new(),
                            purpose: r.purpose.clone(),
                            valid_from: None,
                            expires_at: Some(now + Duration::days(period_days)),
                            kind: None,
                            daily_quota: None,
                            max_batch: None,
                        },
                        crate::grants::IssuedBy::Policy,
                    )
                    .await?;
                let decided = RequestRecord {
                    state: RequestState::Approved,
                    decided_by: Some("system".into()),
                    decided_at: Some(now),
                    grant_id: Some(grant.id),
                    ..r.clone()
                };
                self.store.transition_request(&decided, RequestState::Pending).await?;
                if let Some(old) = renews {
                    self.store.revoke_grant(old.id, now, "renewal").await?;
                }
                r = decided;
            }
            _ => {
                self.store.create_request(&r).await?;
                let to = self.answerers(resource.content.provider.as_str()).await?;
                self.notify(
                    &to,
                    "request.new",
                    format!("新的数据申请：{} / new request", resource.content.name),
                    format!(
                        "{} 申请使用“{}”，用途：{}。请于 {} 前答复。",
                        r.requester_name,
                        resource.content.name,
                        r.purpose,
                        r.due_at.format("%Y-%m-%d")
                    ),
                    link,
                )
                .await?;
            }
        }
        Ok(r)
    }

    pub async fn get_request(&self, principal: &Principal, id: &str) -> Result<(RequestRecord, Resource), CoreError> {
        let not_found = || CoreError::NotFound(format!("申请不存在：{id} / no such request"));
        let rid = Uuid::parse_str(id).map_err(|_| not_found())?;
        let r = self.store.get_request(rid).await?.ok_or_else(not_found)?;
        let resource = self.store.get_resource(r.resource_id).await?.ok_or_else(not_found)?;
        if !Self::may_see_request(principal, &r, &resource) {
            return Err(not_found());
        }
        Ok((r, resource))
    }

    /// My requests, my departments' requests, and requests to my departments (as answerer).
    pub async fn list_requests(
        &self,
        principal: &Principal,
        overdue_only: bool,
        state: Option<&str>,
    ) -> Result<Vec<RequestRecord>, CoreError> {
        let mut out: Vec<RequestRecord> = if principal.is_admin() {
            self.store.list_requests(None, None, None).await?
        } else {
            let mut v = self.store.list_requests(Some(principal.user_id), None, None).await?;
            for m in &principal.memberships {
                let provider = matches!(m.role, Role::Steward | Role::DeptAdmin).then_some(m.department.as_str());
                for r in self.store.list_requests(None, Some(m.department.as_str()), provider).await? {
                    if !v.iter().any(|x| x.id == r.id) {
                        v.push(r);
                    }
                }
            }
            v.sort_by_key(|r| std::cmp::Reverse(r.created_at));
            v
        };
        let now = Utc::now();
        if overdue_only {
            out.retain(|r| r.state == RequestState::Pending && r.due_at < now);
        }
        if let Some(s) = state {
            out.retain(|r| r.state.as_str() == s);
        }
        Ok(out)
    }
}
