//! 信息资源目录 (the resource catalog): create, edit, publish, withdraw, delete, list, search,
//! revisions — with the visibility rules and the search index kept in step.

use crate::audit::Actor;

/// Attempts at a free resource code before a creation answers `conflict`.
const CODE_ATTEMPTS: u32 = 30;
use crate::{Core, CoreError, RequestMeta};
use chrono::{SubsecRound, Utc};
use citydata_domain::FieldError;
use citydata_domain::ValidationErrors;
use citydata_domain::dept::DeptCode;
use citydata_domain::principal::Principal;
use citydata_domain::resource::{
    Audience, FieldChange, Resource, ResourceCode, ResourceContent, ResourceDraft, ResourceInput, Slug, diff,
    merge_patch,
};
use citydata_domain::user::Role;
use citydata_domain::vocab::ResourceState;
use citydata_search::{SearchQuery, SearchResults};
use citydata_store::{ResourceFilter, RevisionAction, RevisionRecord, StoreError};
use std::collections::HashMap;
use uuid::Uuid;

/// Filters of a catalog listing, as received.
#[derive(Debug, Clone, Default)]
pub struct ListFilter {
    pub provider: Option<String>,
    pub theme: Option<String>,
    pub class: Option<String>,
    pub share: Option<String>,
    pub open: Option<String>,
    pub cycle: Option<String>,
    pub state: Option<String>,
    pub region: Option<String>,
    pub code: Option<String>,
}

/// What the caller may see of the catalog.
pub fn audience(principal: Option<&Principal>) -> Audience {
    match principal {
        None => Audience::Public,
        Some(p) if p.is_admin() => Audience::Platform,
        Some(p) if p.memberships.is_empty() => Audience::Public,
        Some(p) => Audience::Government { departments: p.memberships.iter().map(|m| m.department.clone()).collect() },
    }
}

/// Who may edit a department's resources: [`Principal::can_steward`].
pub fn can_edit(principal: &Principal, provider: &DeptCode) -> bool {
    principal.can_steward(provider)
}

/// Who may give another department or a member of the public access to a department's data:
/// the department's own stewards and admins (a platform admin only for a department it is a
/// member of — it runs the platform, it does not decide whom other departments share with).
pub fn can_grant(principal: &Principal, provider: &DeptCode) -> bool {
    [Role::Steward, Role::DeptAdmin, Role::Admin].into_iter().any(|r| principal.has_role(provider, r))
}

fn not_found(key: &str) -> CoreError {
    CoreError::NotFound(format!("信息资源不存在：{key} / no such resource: {key}"))
}

fn input_error(e: serde_json::Error) -> CoreError {
    CoreError::Validation(
        FieldError::new("body", "invalid_field", format!("资源字段有误 / invalid resource field: {e}")).into(),
    )
}

/// One revision of a resource: who changed which elements, when.
#[derive(Debug, Clone, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RevisionView {
    pub revision: i64,
    pub at: chrono::DateTime<chrono::Utc>,
    pub actor: String,
    /// `create`, `update`, `publish`, `withdraw`.
    pub action: String,
    pub changes: Vec<citydata_domain::resource::FieldChange>,
}

impl From<RevisionRecord> for RevisionView {
    fn from(r: RevisionRecord) -> Self {
        Self {
            revision: r.revision,
            at: r.at,
            actor: r.actor,
            action: r.action.as_str().to_string(),
            changes: r.changes,
        }
    }
}

tokio::task_local! {
    /// Set while a batch of catalog writes runs ([`Core::deferring_search`]): each write skips
    /// its own index commit.
    static SEARCH_DEFERRED: ();
}

impl Core {
    async fn visible(&self, principal: Option<&Principal>, key: &str) -> Result<Resource, CoreError> {
        let r = self.store.find_resource(key.trim()).await?.ok_or_else(|| not_found(key))?;
        if audience(principal).can_see(&r) { Ok(r) } else { Err(not_found(key)) }
    }

    async fn editable(&self, principal: &Principal, key: &str) -> Result<Resource, CoreError> {
        let r = self.visible(Some(principal), key).await?;
        if !can_edit(principal, &r.content.provider) {
            return Err(CoreError::forbidden());
        }
        Ok(r)
    }

    /// Checks needing the store: the provider, related resources and defaults for regions.
    async fn check_references(&self, draft: &mut ResourceDraft, own_id: Option<Uuid>) -> Result<(), CoreError> {
        let mut errs = ValidationErrors::new();
        let provider = self.store.get_department(&draft.content.provider).await?;
        match &provider {
            None => errs.push(FieldError::new(
                "provider",
                "unknown_department",
                format!("资源提供方部门不存在：{} / provider department does not exist", draft.content.provider),
            )),
            Some(d) if draft.content.regions.is_empty() => draft.content.regions.push(d.region.clone()),
            Some(_) => {}
        }
        let rules = draft.content.quality_rules.clone();
        let own_code = draft.code.clone();
        self.check_rule_targets(&draft.content.provider, &rules, own_id, own_code.as_ref(), &mut errs).await?;
        for (i, code) in draft.content.related.iter().enumerate() {
            let found = self.store.find_resource(code.as_str()).await?;
            if found.is_none() || found.as_ref().map(|r| r.id) == own_id {
                errs.push(FieldError::new(
                    format!("related[{i}]"),
                    "unknown_resource",
                    format!("关联资源不存在：{code} / related resource does not exist: {code}"),
                ));
            }
        }
        errs.into_result().map_err(Into::into)
    }

    async fn assign_code(&self, prefix: &str, attempt: u32) -> Result<ResourceCode, CoreError> {
        let seq = self.store.max_code_sequence(prefix).await? + 1 + attempt % 3;
        Ok(ResourceCode::assign(prefix, seq))
    }

    async fn assign_slug(&self, name: &str, code: &ResourceCode) -> Result<Slug, CoreError> {
        let fallback = format!("r-{}", code.as_str().replace('/', "-"));
        let base = Slug::from_text(name, &fallback);
        if !self.store.slug_taken(base.as_str()).await? {
            return Ok(base);
        }
        for n in 2..1000 {
            let s = base.with_suffix(n);
            if !self.store.slug_taken(s.as_str()).await? {
                return Ok(s);
            }
        }
        Ok(Slug::parse(&fallback)?)
    }

    /// Create a draft resource (stewards of the provider department, platform admins).
    pub async fn create_resource(
        &self,
        meta: &RequestMeta,
        principal: &Principal,
        input: &ResourceInput,
    ) -> Result<Resource, CoreError> {
        let target = input.code.as_deref().map(|c| format!("resource:{c}"));
        let result = self.create_resource_inner(principal, input, RevisionAction::Create).await;
        let target = result.as_ref().ok().map(|r| format!("resource:{}", r.content.code)).or(target);
        let result = self.audited(meta, Actor::Principal(principal), "resource.create", target, result).await;
        if result.is_ok() {
            self.sync_search().await;
        }
        result
    }

    async fn create_resource_inner(
        &self,
        principal: &Principal,
        input: &ResourceInput,
        action: RevisionAction,
    ) -> Result<Resource, CoreError> {
        let mut draft = ResourceDraft::parse(input)?;
        if !can_edit(principal, &draft.content.provider) {
            return Err(CoreError::forbidden());
        }
        self.check_references(&mut draft, None).await?;
        let prefix = draft.content.classification.code();
        let given_code = draft.code.clone();
        let given_slug = draft.slug.clone();
        let now = Utc::now().trunc_subsecs(6);
        // Concurrent creations under one prefix race for the next sequence number; the loser
        // reads the new maximum and tries again after a short random pause, so even dozens of
        // simultaneous creations all get a code.
        for attempt in 0..CODE_ATTEMPTS {
            if attempt > 0 {
                let pause = rand::Rng::gen_range(&mut rand::thread_rng(), 0..=(5 * u64::from(attempt.min(10))));
                tokio::time::sleep(std::time::Duration::from_millis(pause)).await;
            }
            let code = match &given_code {
                Some(c) => c.clone(),
                None => self.assign_code(&prefix, attempt).await?,
            };
            let slug = match &given_slug {
                Some(s) => s.clone(),
                None => self.assign_slug(&draft.content.name, &code).await?,
            };
            let r = Resource {
                id: Uuid::now_v7(),
                state: ResourceState::Draft,
                revision: 1,
                created_at: now,
                updated_at: now,
                published_at: None,
                content: draft.clone().complete(code, slug),
            };
            let rev = RevisionRecord {
                resource_id: r.id,
                revision: 1,
                at: now,
                actor: principal.username.to_string(),
                action,
                changes: vec![],
            };
            match self.store.insert_resource(&r, &rev).await {
                Ok(()) => return Ok(r),
                // A concurrent creation took the sequence number: take the next one.
                Err(StoreError::Conflict(m)) if given_code.is_none() && m.starts_with("resource code") => continue,
                Err(StoreError::Conflict(m)) => {
                    return Err(CoreError::Conflict(format!("信息资源代码或 slug 已被使用：{m} / already taken: {m}")));
                }
                Err(e) => return Err(e.into()),
            }
        }
        Err(CoreError::Conflict("无法分配信息资源代码，请重试 / could not assign a resource code, retry".into()))
    }

    /// Apply a JSON merge patch (RFC 7396) to a resource's elements.
    pub async fn update_resource(
        &self,
        meta: &RequestMeta,
        principal: &Principal,
        key: &str,
        patch: &serde_json::Value,
    ) -> Result<Resource, CoreError> {
        let found = self.store.find_resource(key.trim()).await?;
        let target =
            Some(format!("resource:{}", found.as_ref().map(|r| r.content.code.to_string()).unwrap_or(key.to_string())));
        let result = async {
            let current = self.editable(principal, key).await?;
            if !patch.is_object() {
                return Err(input_error(serde::de::Error::custom("the patch must be a JSON object")));
            }
            let mut doc = serde_json::to_value(ResourceInput::from(&current.content)).map_err(input_error)?;
            merge_patch(&mut doc, patch);
            let input: ResourceInput = serde_json::from_value(doc).map_err(input_error)?;
            let mut draft = ResourceDraft::parse(&input)?;
            let mut errs = ValidationErrors::new();
            if draft.content.provider != current.content.provider {
                errs.push(FieldError::new("provider", "immutable", "资源提供方不可更改 / the provider cannot change"));
            }
            let code = draft.code.clone().unwrap_or_else(|| current.content.code.clone());
            let slug = draft.slug.clone().unwrap_or_else(|| current.content.slug.clone());
            if current.state != ResourceState::Draft {
                if code != current.content.code {
                    errs.push(FieldError::new(
                        "code",
                        "immutable",
                        "已发布资源的信息资源代码不可更改 / the code of a published resource cannot change",
                    ));
                }
                if slug != current.content.slug {
                    errs.push(FieldError::new(
                        "slug",
                        "immutable",
                        "已发布资源的 slug 不可更改 / the slug of a published resource cannot change",
                    ));
                }
            }
            errs.into_result()?;
            self.check_references(&mut draft, Some(current.id)).await?;
            let content = draft.complete(code, slug);
            self.save(principal, current, content, None, RevisionAction::Update).await
        }
        .await;
        let result = self.audited(meta, Actor::Principal(principal), "resource.update", target, result).await;
        if result.is_ok() {
            self.sync_search().await;
        }
        result
    }

    async fn save(
        &self,
        principal: &Principal,
        current: Resource,
        content: ResourceContent,
        state: Option<ResourceState>,
        action: RevisionAction,
    ) -> Result<Resource, CoreError> {
        let now = Utc::now().trunc_subsecs(6);
        let mut changes = diff(&current.content, &content);
        let mut next = Resource { revision: current.revision + 1, updated_at: now, content, ..current.clone() };
        if let Some(s) = state {
            changes.push(FieldChange {
                field: "state".into(),
                before: current.state.as_str().into(),
                after: s.as_str().into(),
            });
            next.state = s;
            if s == ResourceState::Published {
                next.published_at = Some(now);
                if next.content.publish_date.is_none() {
                    next.content.publish_date = Some(now.date_naive());
                }
            }
        }
        if changes.is_empty() {
            return Ok(current);
        }
        let rev = RevisionRecord {
            resource_id: next.id,
            revision: next.revision,
            at: now,
            actor: principal.username.to_string(),
            action,
            changes,
        };
        match self.store.update_resource(&next, &rev).await {
            Ok(()) => {
                self.notify_tightened(&current, &next).await?;
                Ok(next)
            }
            Err(StoreError::Conflict(m)) => {
                Err(CoreError::Conflict(format!("保存冲突，请刷新后重试：{m} / conflict, reload and retry: {m}")))
            }
            Err(e) => Err(e.into()),
        }
    }

    async fn transition(
        &self,
        meta: &RequestMeta,
        principal: &Principal,
        key: &str,
        to: ResourceState,
    ) -> Result<Resource, CoreError> {
        let found = self.store.find_resource(key.trim()).await?;
        let target =
            Some(format!("resource:{}", found.as_ref().map(|r| r.content.code.to_string()).unwrap_or(key.to_string())));
        let action = if to == ResourceState::Published { RevisionAction::Publish } else { RevisionAction::Withdraw };
        let result = async {
            let current = self.editable(principal, key).await?;
            let allowed = match to {
                ResourceState::Published => current.state != ResourceState::Published,
                ResourceState::Withdrawn => current.state == ResourceState::Published,
                ResourceState::Draft => false,
            };
            if !allowed {
                return Err(CoreError::Conflict(format!(
                    "资源当前状态为“{}”，不能{} / cannot {action} a resource that is {}",
                    current.state.title(),
                    if to == ResourceState::Published { "发布" } else { "撤回" },
                    current.state.as_str()
                )));
            }
            let content = current.content.clone();
            self.save(principal, current, content, Some(to), action).await
        }
        .await;
        let result =
            self.audited(meta, Actor::Principal(principal), &format!("resource.{action}"), target, result).await;
        if result.is_ok() {
            self.sync_search().await;
        }
        result
    }

    pub async fn publish_resource(
        &self,
        meta: &RequestMeta,
        principal: &Principal,
        key: &str,
    ) -> Result<Resource, CoreError> {
        self.transition(meta, principal, key, ResourceState::Published).await
    }

    pub async fn withdraw_resource(
        &self,
        meta: &RequestMeta,
        principal: &Principal,
        key: &str,
    ) -> Result<Resource, CoreError> {
        self.transition(meta, principal, key, ResourceState::Withdrawn).await
    }

    /// Delete a draft (never a resource that has been published).
    pub async fn delete_resource(&self, meta: &RequestMeta, principal: &Principal, key: &str) -> Result<(), CoreError> {
        let found = self.store.find_resource(key.trim()).await?;
        let target =
            Some(format!("resource:{}", found.as_ref().map(|r| r.content.code.to_string()).unwrap_or(key.to_string())));
        let result = async {
            let current = self.editable(principal, key).await?;
            if current.state != ResourceState::Draft {
                return Err(CoreError::Conflict(
                    "只能删除草稿；已发布的资源请撤回 / only drafts can be deleted; withdraw a published resource"
                        .into(),
                ));
            }
            self.store.delete_resource(current.id).await?;
            Ok(())
        }
        .await;
        let result = self.audited(meta, Actor::Principal(principal), "resource.delete", target, result).await;
        if result.is_ok() {
            self.sync_search().await;
        }
        result
    }

    /// One resource by UUID, code or slug, when the caller may see it (404 otherwise).
    pub async fn get_resource(&self, principal: Option<&Principal>, key: &str) -> Result<Resource, CoreError> {
        self.visible(principal, key).await
    }

    /// A resource's record and origin for a metadata read, from the in-memory catalog cache
    /// (see [`crate::catalog_cache`]) when current; 404 when the caller may not see it.
    pub async fn get_resource_cached(
        &self,
        principal: Option<&Principal>,
        key: &str,
    ) -> Result<std::sync::Arc<crate::catalog_cache::Cached>, CoreError> {
        let key = key.trim();
        match self.cached_resource(key).await? {
            Some(c) if audience(principal).can_see(&c.resource) => Ok(c),
            _ => Err(not_found(key)),
        }
    }

    /// A page of the catalog the caller may see, newest first.
    pub async fn list_resources(
        &self,
        principal: Option<&Principal>,
        filter: &ListFilter,
        limit: u32,
        offset: u64,
    ) -> Result<(u64, Vec<Resource>), CoreError> {
        let f = ResourceFilter {
            audience: audience(principal),
            provider: filter.provider.clone(),
            theme: filter.theme.clone(),
            class: filter.class.clone(),
            share: filter.share.clone(),
            open: filter.open.clone(),
            cycle: filter.cycle.clone(),
            state: filter.state.clone(),
            region: filter.region.clone(),
            code: filter.code.clone(),
        };
        let total = self.store.count_resources(&f).await?;
        let items = self.store.list_resources(&f, limit.clamp(1, 1000), offset).await?;
        Ok((total, items))
    }

    /// The revisions of a resource (government users who can see it).
    pub async fn resource_revisions(
        &self,
        principal: Option<&Principal>,
        key: &str,
    ) -> Result<Vec<RevisionView>, CoreError> {
        if audience(principal) == Audience::Public {
            return Err(not_found(key));
        }
        let r = self.visible(principal, key).await?;
        Ok(self.store.list_revisions(r.id).await?.into_iter().map(RevisionView::from).collect())
    }

    /// Full-text search of the catalog the caller may see.
    pub async fn search_catalog(
        &self,
        principal: Option<&Principal>,
        q: &SearchQuery,
    ) -> Result<SearchResults, CoreError> {
        let Some(index) = &self.search else {
            return Err(CoreError::Internal("search index not configured".into()));
        };
        citydata_search::limits::check_query("q", &q.text)?;
        let index = index.clone();
        let scope = audience(principal);
        let q = q.clone();
        tokio::task::spawn_blocking(move || index.search(&q, &scope))
            .await
            .map_err(|e| CoreError::Internal(e.to_string()))?
            .map_err(|e| CoreError::Internal(e.to_string()))
    }

    /// Department code → name, for labels. Cached for 30 seconds per node (names are labels;
    /// this node forgets them at once when it creates a department).
    pub async fn department_names(&self) -> Result<HashMap<String, String>, CoreError> {
        if let Some((at, names)) = self.dept_names.lock().ok().and_then(|c| c.clone())
            && at.elapsed() < std::time::Duration::from_secs(30)
        {
            return Ok(names);
        }
        let names: HashMap<String, String> = self
            .store
            .list_departments()
            .await?
            .into_iter()
            .map(|d| (d.code.to_string(), d.name.as_str().to_string()))
            .collect();
        if let Ok(mut c) = self.dept_names.lock() {
            *c = Some((std::time::Instant::now(), names.clone()));
        }
        Ok(names)
    }

    pub(crate) fn forget_department_names(&self) {
        if let Ok(mut c) = self.dept_names.lock() {
            *c = None;
        }
    }

    /// Apply catalog changes made since the index last caught up (by this node, another node,
    /// or the command line). Failures are logged; the next call retries.
    pub async fn sync_search(&self) {
        self.forget_catalog_records();
        // Inside a batch (a harvest): the batch syncs once for all its writes.
        if SEARCH_DEFERRED.try_with(|_| ()).is_ok() {
            return;
        }
        if let Err(e) = self.try_sync_search().await {
            tracing::warn!(error = %e, "search index sync failed");
        }
    }

    /// Run `f` (many catalog writes) with the search index brought up to date once at the end
    /// instead of after each write; the store's change journal carries what changed.
    pub async fn deferring_search<T>(&self, f: impl std::future::Future<Output = T>) -> T {
        let out = SEARCH_DEFERRED.scope((), f).await;
        self.sync_search().await;
        out
    }

    async fn try_sync_search(&self) -> Result<(), CoreError> {
        let Some(index) = &self.search else { return Ok(()) };
        let _guard = self.search_sync.lock().await;
        let mut seq = index.applied_seq();
        loop {
            let changes = self.store.catalog_changes_after(seq, 500).await?;
            if changes.is_empty() {
                return Ok(());
            }
            let names = self.department_names().await?;
            let mut upserts = Vec::new();
            for c in &changes {
                match self.store.get_resource(c.resource_id).await? {
                    Some(r) => upserts.push(r),
                    None => index.delete(c.resource_id).map_err(|e| CoreError::Internal(e.to_string()))?,
                }
            }
            let pairs: Vec<(&Resource, &str)> = upserts
                .iter()
                .map(|r| (r, names.get(r.content.provider.as_str()).map(String::as_str).unwrap_or("")))
                .collect();
            index.upsert_many(pairs).map_err(|e| CoreError::Internal(e.to_string()))?;
            seq = changes.last().map(|c| c.seq).unwrap_or(seq);
            index.set_applied_seq(seq).map_err(|e| CoreError::Internal(e.to_string()))?;
        }
    }

    /// Rebuild the index from the store.
    pub async fn reindex(&self) -> Result<u64, CoreError> {
        let Some(index) = &self.search else { return Ok(0) };
        let _guard = self.search_sync.lock().await;
        let upto = self.store.last_catalog_change().await?;
        index.clear().map_err(|e| CoreError::Internal(e.to_string()))?;
        let names = self.department_names().await?;
        let f = ResourceFilter::new(Audience::Platform);
        let mut offset = 0;
        loop {
            let page = self.store.list_resources(&f, 500, offset).await?;
            if page.is_empty() {
                break;
            }
            offset += page.len() as u64;
            let pairs: Vec<(&Resource, &str)> = page
                .iter()
                .map(|r| (r, names.get(r.content.provider.as_str()).map(String::as_str).unwrap_or("")))
                .collect();
            index.upsert_many(pairs).map_err(|e| CoreError::Internal(e.to_string()))?;
        }
        index.set_applied_seq(upto).map_err(|e| CoreError::Internal(e.to_string()))?;
        Ok(index.num_docs())
    }
}
