//! Deciding requests (approve, possibly narrowed; reject; withdraw), comments and the inbox.

use super::*;

impl Core {
    /// Approve a pending request (stewards of the provider): issue the grant, possibly narrowed.
    pub async fn approve_request(
        &self,
        meta: &RequestMeta,
        principal: &Principal,
        id: &str,
        input: &ApproveInput,
    ) -> Result<RequestRecord, CoreError> {
        let result = async {
            let (r, resource) = self.get_request(principal, id).await?;
            if !crate::catalog::can_grant(principal, &resource.content.provider) {
                return Err(CoreError::forbidden());
            }
            if r.state != RequestState::Pending {
                return Err(CoreError::Conflict(format!(
                    "申请状态为 {}，不能批准 / the request is {}",
                    r.state, r.state
                )));
            }
            let mut errs = ValidationErrors::new();
            let fields = match &input.fields {
                None => r.fields.clone(),
                Some(list) => {
                    let mut out = Vec::new();
                    for (i, f) in list.iter().enumerate() {
                        match resource.content.item(f) {
                            Some(item) if r.fields.is_empty() || r.fields.contains(&item.name.to_string()) => {
                                out.push(item.name.to_string())
                            }
                            Some(item) => errs.push(FieldError::new(
                                format!("fields[{i}]"),
                                "not_requested",
                                format!(
                                    "“{}”不在申请的信息项中，批准只能缩小范围 / not among the requested items",
                                    item.title
                                ),
                            )),
                            None => errs.push(FieldError::new(
                                format!("fields[{i}]"),
                                "unknown_item",
                                format!("没有信息项“{f}” / no item \"{f}\""),
                            )),
                        }
                    }
                    out
                }
            };
            let latest = r.created_at + Duration::days(r.period_days);
            let expires_at = input.expires_at.unwrap_or(latest);
            if expires_at > latest {
                errs.push(FieldError::new(
                    "expires_at",
                    "beyond_period",
                    "到期时间不能晚于申请的期限 / expires_at cannot exceed the requested period",
                ));
            }
            errs.into_result()?;
            let (kind, who) = match &r.requester_department {
                Some(d) => (Some(d.clone()), None),
                None => (None, Some(r.requester.to_string())),
            };
            // A renewal keeps the old grant's row filter and masks; the approval can only narrow
            // them: its filter is ANDed with the old one, and each mask is the stronger of the two.
            let old = match r.renews_grant {
                Some(g) => self.store.get_grant(g).await?,
                None => None,
            };
            let (row_filter, masks) = match &old {
                Some(o) => renewal_scope(o, input, &resource),
                None => (input.row_filter.clone(), input.masks.clone()),
            };
            // A request of kind `verify` is approved into a verification grant (no rows).
            let verify = self.store.is_verify_request(r.id).await?;
            let input = NewGrantInput {
                resource_id: resource.id.to_string(),
                grantee: GranteeInput { department: kind, user: who },
                fields,
                row_filter,
                masks,
                purpose: r.purpose.clone(),
                valid_from: None,
                expires_at: Some(expires_at),
                kind: verify.then(|| "verify".to_string()),
                daily_quota: None,
                max_batch: None,
            };
            let grant = if verify {
                self.create_verify_grant(meta, principal, &input).await?
            } else {
                let by =
                    if old.is_some() { crate::grants::IssuedBy::Renewal } else { crate::grants::IssuedBy::Provider };
                self.issue_grant(meta, principal, &input, by).await?
            };
            let now = Utc::now().trunc_subsecs(6);
            let decided = RequestRecord {
                state: RequestState::Approved,
                decided_by: Some(principal.username.to_string()),
                decided_at: Some(now),
                grant_id: Some(grant.id),
                // `fields` stays what was asked; the grant holds what was granted.
                ..r.clone()
            };
            if !self.store.transition_request(&decided, RequestState::Pending).await? {
                self.store.revoke_grant(grant.id, now, "system").await?;
                return Err(CoreError::Conflict("申请已被处理 / the request was already decided".into()));
            }
            if let Some(o) = &old {
                self.store.revoke_grant(o.id, now, "renewal").await?;
            }
            self.notify(
                &[r.requester],
                "request.decided",
                format!("申请已批准：{} / request approved", resource.content.name),
                {
                    // Items by their titles, as the requester knows them.
                    let titles: Vec<&str> = grant
                        .fields
                        .iter()
                        .map(|f| resource.content.item(f).map(|i| i.title.as_str()).unwrap_or(f.as_str()))
                        .collect();
                    let until = expires_at.format("%Y-%m-%d");
                    format!(
                        "可用信息项：{}；到期：{until} / items: {}; expires {until}",
                        titles.join("、"),
                        titles.join(", ")
                    )
                },
                format!("/api/v1/requests/{}", r.id),
            )
            .await?;
            Ok(decided)
        }
        .await;
        self.audited(meta, Actor::Principal(principal), "request.approve", Some(format!("request:{id}")), result).await
    }

    /// Reject a pending request with a reason (stewards of the provider).
    pub async fn reject_request(
        &self,
        meta: &RequestMeta,
        principal: &Principal,
        id: &str,
        reason: &str,
    ) -> Result<RequestRecord, CoreError> {
        let result = async {
            let (r, resource) = self.get_request(principal, id).await?;
            if !can_edit(principal, &resource.content.provider) {
                return Err(CoreError::forbidden());
            }
            let reason = reason.trim();
            if reason.is_empty() {
                return Err(FieldError::new("reason", "required", "驳回须写明理由 / a rejection needs a reason").into());
            }
            let now = Utc::now().trunc_subsecs(6);
            let decided = RequestRecord {
                state: RequestState::Rejected,
                reason: Some(reason.into()),
                decided_by: Some(principal.username.to_string()),
                decided_at: Some(now),
                ..r.clone()
            };
            if !self.store.transition_request(&decided, RequestState::Pending).await? {
                return Err(CoreError::Conflict(format!(
                    "申请状态为 {}，不能驳回 / the request is {}",
                    r.state, r.state
                )));
            }
            self.notify(
                &[r.requester],
                "request.decided",
                format!("申请被驳回：{} / request rejected", resource.content.name),
                reason.into(),
                format!("/api/v1/requests/{}", r.id),
            )
            .await?;
            Ok(decided)
        }
        .await;
        self.audited(meta, Actor::Principal(principal), "request.reject", Some(format!("request:{id}")), result).await
    }

    /// Withdraw one's own pending request.
    pub async fn withdraw_request(
        &self,
        meta: &RequestMeta,
        principal: &Principal,
        id: &str,
    ) -> Result<RequestRecord, CoreError> {
        let result = async {
            let (r, _) = self.get_request(principal, id).await?;
            if r.requester != principal.user_id {
                return Err(CoreError::forbidden());
            }
            let now = Utc::now().trunc_subsecs(6);
            let w = RequestRecord {
                state: RequestState::Withdrawn,
                decided_at: Some(now),
                decided_by: Some(principal.username.to_string()),
                ..r.clone()
            };
            if !self.store.transition_request(&w, RequestState::Pending).await? {
                return Err(CoreError::Conflict(format!(
                    "申请状态为 {}，不能撤回 / the request is {}",
                    r.state, r.state
                )));
            }
            Ok(w)
        }
        .await;
        self.audited(meta, Actor::Principal(principal), "request.withdraw", Some(format!("request:{id}")), result).await
    }

    /// Comment on a request; the other side is told.
    pub async fn comment_request(
        &self,
        meta: &RequestMeta,
        principal: &Principal,
        id: &str,
        body: &str,
    ) -> Result<CommentRecord, CoreError> {
        let result = async {
            let (r, resource) = self.get_request(principal, id).await?;
            let body = body.trim();
            if body.is_empty() || body.chars().count() > 5000 {
                return Err(
                    FieldError::new("body", "required", "评论须为 1–5000 字 / a comment is 1–5000 characters").into()
                );
            }
            let c = CommentRecord {
                id: Uuid::now_v7(),
                request_id: r.id,
                author: principal.username.to_string(),
                body: body.into(),
                created_at: Utc::now().trunc_subsecs(6),
            };
            self.store.add_comment(&c).await?;
            let to: Vec<Uuid> = if r.requester == principal.user_id {
                self.answerers(resource.content.provider.as_str()).await?
            } else {
                vec![r.requester]
            };
            self.notify(
                &to,
                "request.comment",
                format!("申请有新评论：{} / new comment", resource.content.name),
                body.into(),
                format!("/api/v1/requests/{}", r.id),
            )
            .await?;
            Ok(c)
        }
        .await;
        self.audited(meta, Actor::Principal(principal), "request.comment", Some(format!("request:{id}")), result).await
    }

    pub async fn request_comments(&self, principal: &Principal, id: &str) -> Result<Vec<CommentRecord>, CoreError> {
        let (r, _) = self.get_request(principal, id).await?;
        Ok(self.store.list_comments(r.id).await?)
    }

    pub async fn inbox(&self, principal: &Principal, unread_only: bool) -> Result<Vec<InboxRecord>, CoreError> {
        Ok(self.store.list_inbox(principal.user_id, unread_only, 200).await?)
    }

    pub async fn mark_read(&self, principal: &Principal, id: &str) -> Result<(), CoreError> {
        let not_found = || CoreError::NotFound(format!("消息不存在：{id} / no such message"));
        let mid = Uuid::parse_str(id).map_err(|_| not_found())?;
        if self.store.mark_read(principal.user_id, mid, Utc::now().trunc_subsecs(6)).await? {
            Ok(())
        } else {
            Err(not_found())
        }
    }
}

/// The row filter and masks of a renewed grant: the old grant's, narrowed by the approval.
fn renewal_scope(
    old: &citydata_store::GrantRecord,
    input: &ApproveInput,
    resource: &Resource,
) -> (Option<String>, std::collections::BTreeMap<String, String>) {
    use citydata_domain::mask::MaskSpec;
    let new_filter = input.row_filter.as_deref().map(str::trim).filter(|f| !f.is_empty());
    let row_filter = match (&old.row_filter, new_filter) {
        (Some(a), Some(b)) if a.trim() != b => Some(format!("({a}) AND ({b})")),
        (Some(a), _) => Some(a.clone()),
        (None, b) => b.map(str::to_string),
    };
    let mut masks = old.masks.clone();
    for (key, spec) in &input.masks {
        // Stored grants key masks by item name; the approval may name items by title. An
        // unknown item is passed on as given, for create_grant to refuse.
        let item = resource.content.item(key).map(|i| i.name.to_string()).unwrap_or_else(|| key.clone());
        let item = &item;
        let next = match (masks.get(item).and_then(|m| MaskSpec::parse(m).ok()), MaskSpec::parse(spec)) {
            (Some(current), Ok(asked)) => current.stronger(asked).to_spec(),
            _ => spec.clone(),
        };
        masks.insert(item.clone(), next);
    }
    (row_filter, masks)
}
