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
    /// Signed checkpoints checked (0 without an audit key).
    pub checkpoints: usize,
}

/// Who acted, for the details of an audit entry: how they authenticated (`via`), the token's
/// id and name when a token was used, and every department they belong to. [`Core::record`] merges it
/// into each entry of a principal; reads and exports that build their own details may call it.
pub fn actor_details(p: &Principal) -> serde_json::Map<String, serde_json::Value> {
    let mut m = serde_json::Map::new();
    match &p.via {
        AuthMethod::Session => {
            m.insert("via".into(), "session".into());
        }
        AuthMethod::Token { token_id, token_name, .. } => {
            m.insert("via".into(), "token".into());
            m.insert("token_id".into(), token_id.to_string().into());
            m.insert("token_name".into(), token_name.clone().into());
        }
        AuthMethod::Cli => {
            m.insert("via".into(), "cli".into());
        }
    }
    let mut depts: Vec<String> = p.memberships.iter().map(|x| x.department.to_string()).collect();
    depts.sort();
    depts.dedup();
    m.insert("departments".into(), depts.into());
    m
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
                for (k, v) in actor_details(p) {
                    details.entry(k).or_insert(v);
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
        if entry.seq % crate::audit_seal::CHECKPOINT_EVERY == 0
            && let Some(key) = &self.audit_key
            && let Err(e) = crate::audit_seal::seal(&*self.store, key, entry.seq, &entry.hash).await
        {
            tracing::error!(error = %e, seq = entry.seq, "signing an audit checkpoint failed");
        }
        Ok(entry)
    }

    /// Sign the chain's head now (at shutdown; `audit verify` does it after a clean walk).
    pub async fn checkpoint_audit(&self) -> Result<Option<citydata_domain::audit::AuditCheckpoint>, CoreError> {
        match &self.audit_key {
            Some(key) => crate::audit_seal::seal_head(&*self.store, key).await,
            None => Ok(None),
        }
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
        self.audited_with(meta, actor, action, target, serde_json::Map::new(), result).await
    }

    /// [`Core::audited`] with further facts the entry should carry (a reason, counts), merged
    /// with the outcome's own.
    pub(crate) async fn audited_with<T>(
        &self,
        meta: &RequestMeta,
        actor: Actor<'_>,
        action: &str,
        target: Option<String>,
        extra: serde_json::Map<String, serde_json::Value>,
        result: Result<T, CoreError>,
    ) -> Result<T, CoreError> {
        let (outcome, mut details) = match &result {
            Ok(_) => (Outcome::Success, serde_json::json!({})),
            Err(
                e @ (CoreError::Forbidden(_)
                | CoreError::InsufficientScope(_)
                | CoreError::Unauthenticated(_)
                | CoreError::RateLimited { .. }),
            ) => (Outcome::Denied, serde_json::json!({ "error": e.code() })),
            Err(e) => (Outcome::Failure, serde_json::json!({ "error": e.code() })),
        };
        if let Some(d) = details.as_object_mut() {
            d.extend(extra);
        }
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
        let report = verify_chain(&*self.store, self.audit_key.as_deref()).await?;
        if report.ok {
            self.checkpoint_audit().await?;
        }
        Ok(report)
    }
}

/// Walk the whole chain in pages, stopping at the first broken entry; with the audit key, check
/// every signed checkpoint too (see [`crate::audit_seal`]). Signs nothing: callers seal the
/// head after a clean walk.
pub async fn verify_chain(
    store: &dyn Store,
    key: Option<&crate::audit_seal::AuditKey>,
) -> Result<VerifyReport, CoreError> {
    let checkpoints = match key {
        Some(k) => match crate::audit_seal::checked_checkpoints(store, k).await? {
            Ok(c) => c,
            Err(seq) => {
                let b = ChainBreak {
                    seq,
                    kind: citydata_domain::audit::BreakKind::Forged,
                    message: format!(
                        "检查点 #{seq} 的签名无效：检查点被伪造或密钥被更换 / the signature of checkpoint #{seq} does not hold: forged, or the key changed"
                    ),
                };
                return Ok(VerifyReport { ok: false, entries: 0, first_break: Some(b), checkpoints: 0 });
            }
        },
        None => vec![],
    };
    let n_checkpoints = checkpoints.len();
    let mut v = ChainVerifier::new().with_checkpoints(&checkpoints);
    let mut after = 0;
    let mut seen = 0u64;
    loop {
        let page = store.audit_after(after, 1000).await?;
        if page.is_empty() {
            break;
        }
        for e in &page {
            if let Err(b) = v.push(e) {
                return Ok(VerifyReport { ok: false, entries: seen, first_break: Some(b), checkpoints: n_checkpoints });
            }
            seen += 1;
            after = e.seq;
        }
    }
    let head = store.audit_head().await?;
    match v.finish(head.as_ref().map(|(s, h)| (*s, h.as_str()))) {
        Ok(n) => Ok(VerifyReport { ok: true, entries: n, first_break: None, checkpoints: n_checkpoints }),
        Err(b) => Ok(VerifyReport { ok: false, entries: seen, first_break: Some(b), checkpoints: n_checkpoints }),
    }
}
