//! Recording, listing and verifying the audit log.

use crate::{Core, CoreError, RequestMeta};
use chrono::Utc;
use citydata_domain::audit::{AuditEntry, AuditEvent, ChainBreak, ChainVerifier, Outcome};
use citydata_domain::principal::{AuthMethod, Principal};
use citydata_store::{AuditFilter, Store};
use serde::Serialize;

/// Who did it, for an audit entry: a principal, or a bare (attempted) username.
pub enum Actor<'a> {
    Principal(&'a Principal),
    Name(&'a str),
    Anonymous,
}

/// One page of audit entries.
#[derive(Debug, Serialize)]
pub struct AuditPage {
    pub total: u64,
    pub entries: Vec<AuditEntry>,
}

/// The result of walking the chain.
#[derive(Debug, Serialize)]
pub struct VerifyReport {
    pub ok: bool,
    pub entries: u64,
    pub first_break: Option<ChainBreak>,
}

impl Core {
    /// Append an audit entry. `details` is merged with how the actor authenticated.
    pub async fn record(
        &self,
        meta: &RequestMeta,
        actor: Actor<'_>,
        action: &str,
        target: Option<String>,
        outcome: Outcome,
        details: serde_json::Value,
    ) -> Result<AuditEntry, CoreError> {
        let mut ev = AuditEvent::new(action, outcome, Utc::now());
        let mut details = match details {
            serde_json::Value::Object(m) => m,
            serde_json::Value::Null => Default::default(),
            other => {
                let mut m = serde_json::Map::new();
                m.insert("value".into(), other);
                m
            }
        };
        match actor {
            Actor::Principal(p) => {
                ev.actor = Some(p.username.to_string());
                ev.department = p.primary_department().map(|d| d.to_string());
                match &p.via {
                    AuthMethod::Session => {
                        details.insert("via".into(), "session".into());
                    }
                    AuthMethod::Token { token_id } => {
                        details.insert("via".into(), "token".into());
                        details.insert("token_id".into(), token_id.to_string().into());
                    }
                    AuthMethod::Cli => {
                        details.insert("via".into(), "cli".into());
                    }
                }
            }
            Actor::Name(n) => ev.actor = Some(n.chars().take(128).collect()),
            Actor::Anonymous => {}
        }
        ev.target = target;
        ev.request_id = meta.request_id.clone();
        ev.client = meta.client.clone();
        ev.details = serde_json::Value::Object(details);
        let entry = self.store.append_audit(&ev).await?;
        meta.audited.store(true, std::sync::atomic::Ordering::SeqCst);
        Ok(entry)
    }

    /// Record the outcome of a mutation and pass its result through: success, or the error
    /// with its code as `denied` (401/403/429) or `failure`.
    pub(crate) async fn audited<T>(
        &self,
        meta: &RequestMeta,
        actor: Actor<'_>,
        action: &str,
        target: Option<String>,
        result: Result<T, CoreError>,
    ) -> Result<T, CoreError> {
        let (outcome, details) = match &result {
            Ok(_) => (Outcome::Success, serde_json::json!({})),
            Err(e @ (CoreError::Forbidden(_) | CoreError::Unauthenticated(_) | CoreError::RateLimited { .. })) => {
                (Outcome::Denied, serde_json::json!({ "error": e.code() }))
            }
            Err(e) => (Outcome::Failure, serde_json::json!({ "error": e.code() })),
        };
        if let Err(e) = self.record(meta, actor, action, target, outcome, details).await {
            tracing::error!(error = %e, action, "audit append failed");
            return Err(e);
        }
        result
    }

    /// Audit entries matching `filter`, newest first (platform admins only).
    pub async fn list_audit(
        &self,
        principal: &Principal,
        filter: &AuditFilter,
        limit: u32,
        offset: u64,
    ) -> Result<AuditPage, CoreError> {
        if !principal.can_read_audit() {
            return Err(CoreError::forbidden());
        }
        let limit = limit.clamp(1, 500);
        let total = self.store.count_audit(filter).await?;
        let entries = self.store.list_audit(filter, limit, offset).await?;
        Ok(AuditPage { total, entries })
    }

    /// Walk the chain (platform admins only).
    pub async fn verify_audit(&self, principal: &Principal) -> Result<VerifyReport, CoreError> {
        if !principal.can_read_audit() {
            return Err(CoreError::forbidden());
        }
        verify_chain(&*self.store).await
    }
}

/// Walk the whole chain in pages, stopping at the first broken entry.
pub async fn verify_chain(store: &dyn Store) -> Result<VerifyReport, CoreError> {
    let mut v = ChainVerifier::new();
    let mut after = 0;
    let mut seen = 0u64;
    loop {
        let page = store.audit_after(after, 1000).await?;
        if page.is_empty() {
            break;
        }
        for e in &page {
            if let Err(b) = v.push(e) {
                return Ok(VerifyReport { ok: false, entries: seen, first_break: Some(b) });
            }
            seen += 1;
            after = e.seq;
        }
    }
    let head = store.audit_head().await?;
    match v.finish(head.as_ref().map(|(s, h)| (*s, h.as_str()))) {
        Ok(n) => Ok(VerifyReport { ok: true, entries: n, first_break: None }),
        Err(b) => Ok(VerifyReport { ok: false, entries: seen, first_break: Some(b) }),
    }
}
