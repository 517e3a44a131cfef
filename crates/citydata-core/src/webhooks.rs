//! Webhooks and change subscriptions. A department registers a URL; every event that reaches
//! one of its members' inboxes (and every new table version of a resource it subscribes to)
//! is queued as a delivery, POSTed as JSON and signed with HMAC-SHA256, retried with
//! exponential backoff, and logged.
//!
//! Signature: `X-Citydata-Signature: sha256=<hex>` where `<hex>` is
//! HMAC-SHA256(secret, `<X-Citydata-Timestamp>` + "." + body). Receivers recompute it over
//! the raw body and reject timestamps far from their clock (replays).

use crate::audit::Actor;
use crate::{Core, CoreError, RequestMeta};
use chrono::{DateTime, SubsecRound, Utc};
use citydata_domain::audit::Outcome;
use citydata_domain::dept::DeptCode;
use citydata_domain::policy::{Action, Decision};
use citydata_domain::principal::Principal;
use citydata_domain::{FieldError, ValidationErrors};
use citydata_store::{DeliveryRecord, DeliveryState, SubscriptionRecord, WebhookRecord};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use std::collections::BTreeSet;
use uuid::Uuid;

/// The events a webhook may ask for.
pub const EVENTS: &[&str] = &[
    "request.new",
    "request.decided",
    "request.comment",
    "request.overdue",
    "grant.expiring",
    "grant.revoked",
    "resource.feedback",
    "table.version",
    "ticket.submitted",
    "ticket.accepted",
    "ticket.rejected",
    "ticket.fixed",
    "ticket.confirmed",
    "ticket.overdue",
    "ticket.assigned",
    "quality.due_soon",
    "quality.overdue",
    "source.failing",
];

/// `POST /api/v1/webhooks`.
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct WebhookInput {
    /// `https://…` (or `http://…` inside the government network).
    pub url: String,
    /// Event kinds to deliver (see `EVENTS`); empty or absent: all.
    #[serde(default)]
    pub events: Vec<String>,
    /// The department the webhook belongs to; default: your first department.
    #[serde(default)]
    pub department: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct WebhookView {
    pub id: Uuid,
    pub department: String,
    pub url: String,
    pub events: Vec<String>,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    /// The signing secret: in the creation answer only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
}

impl From<WebhookRecord> for WebhookView {
    fn from(w: WebhookRecord) -> Self {
        Self {
            id: w.id,
            department: w.department,
            url: w.url,
            events: w.events,
            created_by: w.created_by,
            created_at: w.created_at,
            secret: None,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DeliveryView {
    pub id: Uuid,
    pub event: String,
    pub state: String,
    pub attempts: i32,
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub last_attempt_at: Option<DateTime<Utc>>,
    pub last_status: Option<i32>,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub delivered_at: Option<DateTime<Utc>>,
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub payload: serde_json::Value,
}

impl From<DeliveryRecord> for DeliveryView {
    fn from(d: DeliveryRecord) -> Self {
        Self {
            id: d.id,
            event: d.event,
            next_attempt_at: (d.state == DeliveryState::Pending).then_some(d.next_attempt_at),
            state: d.state.as_str().to_string(),
            attempts: d.attempts,
            last_attempt_at: d.last_attempt_at,
            last_status: d.last_status,
            last_error: d.last_error,
            created_at: d.created_at,
            delivered_at: d.delivered_at,
            payload: serde_json::from_str(&d.payload).unwrap_or(serde_json::Value::Null),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SubscriptionView {
    pub id: Uuid,
    pub resource_id: Uuid,
    pub department: String,
    pub webhook_id: Uuid,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
}

impl From<SubscriptionRecord> for SubscriptionView {
    fn from(s: SubscriptionRecord) -> Self {
        Self {
            id: s.id,
            resource_id: s.resource_id,
            department: s.department,
            webhook_id: s.webhook_id,
            created_by: s.created_by,
            created_at: s.created_at,
        }
    }
}

/// `sha256=<hex>` of HMAC-SHA256(secret, timestamp + "." + body).
pub fn signature(secret: &str, timestamp: i64, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// Who manages a department's webhooks: [`Principal::can_steward`].
fn may_manage(p: &Principal, dept: &DeptCode) -> bool {
    p.can_steward(dept)
}

fn parse_id(id: &str, what: &str) -> Result<Uuid, CoreError> {
    Uuid::parse_str(id.trim()).map_err(|_| CoreError::NotFound(format!("{what}不存在 / no such {what}: {id}")))
}

fn validate_url(errs: &mut ValidationErrors, raw: &str) -> String {
    let raw = raw.trim();
    match url::Url::parse(raw) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host_str().is_some_and(|h| !h.is_empty()) => {
            if !u.username().is_empty() || u.password().is_some() {
                errs.push(FieldError::new(
                    "url",
                    "invalid_url",
                    "url 不能包含用户名或密码 / url must not carry credentials",
                ));
            }
        }
        _ => errs.push(FieldError::new(
            "url",
            "invalid_url",
            format!("url 须为 http:// 或 https:// 开头的完整地址：{raw} / url must be an absolute http(s) URL"),
        )),
    }
    raw.to_string()
}

impl Core {
    /// Register a webhook for a department. The answer carries the signing secret, once.
    pub async fn create_webhook(
        &self,
        meta: &RequestMeta,
        principal: &Principal,
        input: WebhookInput,
    ) -> Result<WebhookView, CoreError> {
        let mut errs = ValidationErrors::new();
        let url = validate_url(&mut errs, &input.url);
        if errs.0.is_empty()
            && let Ok(u) = url::Url::parse(&url)
            && let Err(m) = crate::webhook_guard::check_host(&u, &self.config.webhook_allow).await
        {
            errs.push(FieldError::new("url", "webhook_address_not_allowed", m));
        }
        let events: BTreeSet<String> = input.events.iter().map(|e| e.trim().to_string()).collect();
        for e in &events {
            if !EVENTS.contains(&e.as_str()) {
                errs.push(FieldError::new(
                    "events",
                    "invalid_value",
                    format!("未知事件“{e}”，可选：{} / unknown event {e}", EVENTS.join(", ")),
                ));
            }
        }
        let dept = match input.department.as_deref().map(str::trim).filter(|d| !d.is_empty()) {
            Some(d) => DeptCode::parse(d).map_err(|e| {
                errs.push(FieldError::new("department", "invalid_value", e.to_string()));
            }),
            None => principal.primary_department().cloned().ok_or_else(|| {
                errs.push(FieldError::new("department", "required", "department 为必填项 / department is required"));
            }),
        };
        errs.into_result()?;
        let Ok(dept) = dept else { return Err(CoreError::forbidden()) };
        if !may_manage(principal, &dept) {
            self.record(
                meta,
                Actor::Principal(principal),
                "webhook.create",
                Some(format!("department:{dept}")),
                Outcome::Denied,
                serde_json::json!({}),
            )
            .await?;
            return Err(CoreError::forbidden());
        }
        let secret = format!("whsec_{}", hex::encode(rand::random::<[u8; 24]>()));
        let w = WebhookRecord {
            id: Uuid::now_v7(),
            department: dept.to_string(),
            url,
            secret: secret.clone(),
            events: events.into_iter().collect(),
            created_by: principal.username.to_string(),
            created_at: Utc::now().trunc_subsecs(6),
        };
        self.store.create_webhook(&w).await?;
        self.record(
            meta,
            Actor::Principal(principal),
            "webhook.create",
            Some(format!("webhook:{}", w.id)),
            Outcome::Success,
            serde_json::json!({"department": w.department, "url": w.url, "events": w.events}),
        )
        .await?;
        Ok(WebhookView { secret: Some(secret), ..WebhookView::from(w) })
    }

    /// The webhooks of the caller's departments (platform admins: all).
    pub async fn list_webhooks(&self, principal: &Principal) -> Result<Vec<WebhookView>, CoreError> {
        Ok(self
            .store
            .list_webhooks(None)
            .await?
            .into_iter()
            .filter(|w| DeptCode::parse(&w.department).is_ok_and(|d| may_manage(principal, &d)))
            .map(WebhookView::from)
            .collect())
    }

    async fn managed_webhook(&self, principal: &Principal, id: &str) -> Result<WebhookRecord, CoreError> {
        let uid = parse_id(id, "webhook")?;
        match self.store.get_webhook(uid).await? {
            Some(w) if DeptCode::parse(&w.department).is_ok_and(|d| may_manage(principal, &d)) => Ok(w),
            _ => Err(CoreError::NotFound(format!("webhook 不存在 / no such webhook: {id}"))),
        }
    }

    pub async fn delete_webhook(&self, meta: &RequestMeta, principal: &Principal, id: &str) -> Result<(), CoreError> {
        let w = self.managed_webhook(principal, id).await?;
        self.store.delete_webhook(w.id).await?;
        self.record(
            meta,
            Actor::Principal(principal),
            "webhook.delete",
            Some(format!("webhook:{}", w.id)),
            Outcome::Success,
            serde_json::json!({"department": w.department, "url": w.url}),
        )
        .await?;
        Ok(())
    }

    /// The delivery log of a webhook, newest first.
    pub async fn webhook_deliveries(
        &self,
        principal: &Principal,
        id: &str,
        limit: u32,
    ) -> Result<Vec<DeliveryView>, CoreError> {
        let w = self.managed_webhook(principal, id).await?;
        Ok(self.store.list_deliveries(w.id, limit.clamp(1, 1000)).await?.into_iter().map(DeliveryView::from).collect())
    }

    /// Subscribe a webhook of the caller's department to a resource's new table versions.
    /// The department must be able to read the resource now (the gate decides).
    pub async fn subscribe(
        &self,
        meta: &RequestMeta,
        principal: &Principal,
        resource_key: &str,
        webhook_id: &str,
    ) -> Result<SubscriptionView, CoreError> {
        let resource = self.get_resource(Some(principal), resource_key).await?;
        let w = self.managed_webhook(principal, webhook_id).await?;
        let target = Some(format!("resource:{}", resource.content.code));
        if let Decision::Deny(r) = self.decision(Some(principal), &resource, Action::ReadRows).await? {
            self.record(
                meta,
                Actor::Principal(principal),
                "subscription.create",
                target,
                Outcome::Denied,
                serde_json::json!({"decision": r.code()}),
            )
            .await?;
            return Err(CoreError::Denied(r));
        }
        let existing = self.store.list_subscriptions(Some(resource.id), None).await?;
        if let Some(s) = existing.into_iter().find(|s| s.webhook_id == w.id) {
            return Ok(s.into());
        }
        let s = SubscriptionRecord {
            id: Uuid::now_v7(),
            resource_id: resource.id,
            department: w.department.clone(),
            webhook_id: w.id,
            created_by: principal.username.to_string(),
            created_at: Utc::now().trunc_subsecs(6),
        };
        self.store.create_subscription(&s).await?;
        self.record(
            meta,
            Actor::Principal(principal),
            "subscription.create",
            target,
            Outcome::Success,
            serde_json::json!({"subscription_id": s.id, "webhook_id": w.id}),
        )
        .await?;
        Ok(s.into())
    }

    /// The subscriptions of the caller's departments (platform admins: all).
    pub async fn list_subscriptions(&self, principal: &Principal) -> Result<Vec<SubscriptionView>, CoreError> {
        Ok(self
            .store
            .list_subscriptions(None, None)
            .await?
            .into_iter()
            .filter(|s| DeptCode::parse(&s.department).is_ok_and(|d| may_manage(principal, &d)))
            .map(SubscriptionView::from)
            .collect())
    }

    pub async fn unsubscribe(&self, meta: &RequestMeta, principal: &Principal, id: &str) -> Result<(), CoreError> {
        let uid = parse_id(id, "subscription")?;
        let found = self.store.list_subscriptions(None, None).await?.into_iter().find(|s| s.id == uid);
        let Some(s) = found.filter(|s| DeptCode::parse(&s.department).is_ok_and(|d| may_manage(principal, &d))) else {
            return Err(CoreError::NotFound(format!("订阅不存在 / no such subscription: {id}")));
        };
        self.store.delete_subscription(s.id).await?;
        self.record(
            meta,
            Actor::Principal(principal),
            "subscription.delete",
            Some(format!("subscription:{}", s.id)),
            Outcome::Success,
            serde_json::json!({"resource_id": s.resource_id, "webhook_id": s.webhook_id}),
        )
        .await?;
        Ok(())
    }

    /// The webhooks that ask for `event` (an empty event list asks for all).
    pub(crate) async fn webhooks_for(&self, event: &str) -> Result<Vec<WebhookRecord>, CoreError> {
        let mut hooks = self.store.list_webhooks(None).await?;
        hooks.retain(|w| w.events.is_empty() || w.events.iter().any(|e| e == event));
        Ok(hooks)
    }

    /// Queue `event` for those of `hooks` (see [`Core::webhooks_for`]) that belong to
    /// `departments`, and wake the dispatcher.
    pub(crate) async fn emit(
        &self,
        hooks: &[WebhookRecord],
        departments: &BTreeSet<String>,
        event: &str,
        data: serde_json::Value,
    ) -> Result<usize, CoreError> {
        let now = Utc::now().trunc_subsecs(6);
        let mut queued = 0;
        for w in hooks.iter().filter(|w| departments.contains(&w.department)) {
            self.enqueue(w, event, data.clone(), now).await?;
            queued += 1;
        }
        if queued > 0 {
            self.webhook_wake.notify_one();
        }
        Ok(queued)
    }

    async fn enqueue(
        &self,
        w: &WebhookRecord,
        event: &str,
        data: serde_json::Value,
        now: DateTime<Utc>,
    ) -> Result<(), CoreError> {
        let id = Uuid::now_v7();
        // Links in the payload are absolute under the configured public address.
        let mut data = data;
        if let (Some(base), Some(o)) = (&self.config.public_url, data.as_object_mut()) {
            for key in ["link", "changes"] {
                if let Some(serde_json::Value::String(l)) = o.get_mut(key)
                    && l.starts_with('/')
                {
                    *l = format!("{base}{l}");
                }
            }
        }
        let payload = serde_json::json!({
            "id": id, "event": event, "department": w.department, "created_at": now, "data": data,
        });
        self.store
            .enqueue_delivery(&DeliveryRecord {
                id,
                webhook_id: w.id,
                event: event.into(),
                payload: payload.to_string(),
                state: DeliveryState::Pending,
                attempts: 0,
                next_attempt_at: now,
                last_attempt_at: None,
                last_status: None,
                last_error: None,
                created_at: now,
                delivered_at: None,
            })
            .await?;
        Ok(())
    }

    /// A new table version of `resource_id`: tell the subscribed webhooks whose department
    /// may still read the resource (checked through the gate as the subscriber).
    pub(crate) async fn emit_table_version(&self, resource_id: Uuid, version: i64) -> Result<usize, CoreError> {
        let subs = self.store.list_subscriptions(Some(resource_id), None).await?;
        if subs.is_empty() {
            return Ok(0);
        }
        let Some(resource) = self.store.get_resource(resource_id).await? else { return Ok(0) };
        let now = Utc::now().trunc_subsecs(6);
        let mut queued = 0;
        for s in subs {
            let Ok(p) = self.cli_principal(&s.created_by).await else { continue };
            if !matches!(self.decision(Some(&p), &resource, Action::ReadRows).await?, Decision::Allow(_)) {
                continue;
            }
            let Some(w) = self.store.get_webhook(s.webhook_id).await? else { continue };
            let data = serde_json::json!({
                "resource_id": resource.id, "code": resource.content.code.to_string(),
                "name": resource.content.name, "version": version,
                "changes": format!("/api/v1/resources/{}/changes?since_version={}", resource.id, version - 1),
            });
            self.enqueue(&w, "table.version", data, now).await?;
            queued += 1;
        }
        if queued > 0 {
            self.webhook_wake.notify_one();
        }
        Ok(queued)
    }

    /// Send the deliveries that are due, each once per node at a time; retry failures with
    /// exponential backoff (`webhook_retry_base` × 2^(attempt−1)) until
    /// `webhook_max_attempts`, then mark them `failed`. Returns how many were attempted.
    /// `client` must come from [`Core::webhook_client`], whose resolver enforces the address
    /// rule for host names (address literals are checked here).
    pub async fn dispatch_webhooks(&self, client: &reqwest::Client) -> Result<usize, CoreError> {
        use futures::StreamExt;
        let now = Utc::now();
        let lease = now + chrono::Duration::minutes(5);
        let due = self.store.claim_deliveries(now, lease, 64).await?;
        let n = due.len();
        let results: Vec<Result<(), CoreError>> =
            futures::stream::iter(due).map(|d| self.attempt(client, d)).buffer_unordered(8).collect().await;
        for r in results {
            r?;
        }
        Ok(n)
    }

    async fn attempt(&self, client: &reqwest::Client, d: DeliveryRecord) -> Result<(), CoreError> {
        let Some(w) = self.store.get_webhook(d.webhook_id).await? else { return Ok(()) };
        let ts = Utc::now().timestamp();
        let body = d.payload.clone().into_bytes();
        let literal_refused = url::Url::parse(&w.url)
            .map(|u| crate::webhook_guard::literal_refused(&u, &self.config.webhook_allow))
            .unwrap_or(true);
        let sent = if literal_refused {
            Err("address_not_allowed")
        } else {
            client
                .post(&w.url)
                .header("Content-Type", "application/json")
                .header("User-Agent", concat!("citydata-webhook/", env!("CARGO_PKG_VERSION")))
                .header("X-Citydata-Event", &d.event)
                .header("X-Citydata-Delivery", d.id.to_string())
                .header("X-Citydata-Timestamp", ts.to_string())
                .header("X-Citydata-Signature", signature(&w.secret, ts, &body))
                .body(body)
                .send()
                .await
                .map_err(|e| crate::webhook_guard::error_class(&e))
        };
        let at = Utc::now().trunc_subsecs(6);
        // Only a coarse class is logged (the status code is in `last_status`).
        let (status, error) = match sent {
            Ok(r) if r.status().is_success() => (Some(i32::from(r.status().as_u16())), None),
            Ok(r) => (Some(i32::from(r.status().as_u16())), Some("http_status".to_string())),
            Err(class) => (None, Some(class.to_string())),
        };
        let attempts = d.attempts + 1;
        let next = match error {
            None => DeliveryRecord {
                state: DeliveryState::Delivered,
                attempts,
                last_attempt_at: Some(at),
                last_status: status,
                last_error: None,
                delivered_at: Some(at),
                ..d
            },
            Some(err) => {
                let exhausted = attempts >= self.config.webhook_max_attempts as i32;
                let backoff = self.config.webhook_retry_base * 2i32.pow((attempts - 1).clamp(0, 20) as u32);
                DeliveryRecord {
                    state: if exhausted { DeliveryState::Failed } else { DeliveryState::Pending },
                    attempts,
                    next_attempt_at: at + backoff.min(chrono::Duration::hours(24)),
                    last_attempt_at: Some(at),
                    last_status: status,
                    last_error: Some(err),
                    ..d
                }
            }
        };
        self.store.finish_attempt(&next).await?;
        Ok(())
    }

    /// The HTTP client for deliveries: 10 s timeout, no redirects, no proxy, and names resolved
    /// through the address guard ([`crate::webhook_guard`]).
    pub fn webhook_client(&self) -> Result<reqwest::Client, CoreError> {
        reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(10))
            .connect_timeout(std::time::Duration::from_secs(5))
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .dns_resolver(std::sync::Arc::new(crate::webhook_guard::GuardedResolver {
                allow: std::sync::Arc::new(self.config.webhook_allow.clone()),
            }))
            .build()
            .map_err(|e| CoreError::Internal(format!("webhook client: {e}")))
    }

    /// Wakes when a delivery is queued on this node (the dispatcher also polls, for other
    /// nodes' deliveries and retries).
    pub fn webhook_wakeup(&self) -> std::sync::Arc<tokio::sync::Notify> {
        self.webhook_wake.clone()
    }
}
