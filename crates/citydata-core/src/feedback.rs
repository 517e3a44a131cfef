//! 纠错 (readers' corrections) and usage figures for the portal.

use crate::audit::Actor;
use crate::{Core, CoreError, RequestMeta};
use chrono::Utc;
use citydata_domain::audit::Outcome;
use citydata_domain::principal::Principal;
use citydata_domain::{FieldError, ValidationErrors};
use citydata_store::AuditFilter;
use std::collections::HashMap;

/// Reads and downloads of one resource, from the audit log.
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct Usage {
    pub reads: u64,
    pub downloads: u64,
}

/// How many of the newest audit entries the usage figures look at.
const USAGE_WINDOW: u32 = 5000;

impl Core {
    /// A reader (signed in or not) reports a problem with a resource: the provider's stewards
    /// find it in their inboxes (and webhooks). Limited to 20 per client address per hour.
    pub async fn submit_feedback(
        &self,
        meta: &RequestMeta,
        principal: Option<&Principal>,
        key: &str,
        body: &str,
        contact: &str,
    ) -> Result<(), CoreError> {
        let result = async {
            let resource = self.get_resource(principal, key).await?;
            let client = format!("feedback|{}", meta.client.as_deref().unwrap_or(""));
            let now = Utc::now();
            if let Some(retry_after_secs) = self.feedback_limiter.blocked(&client, now) {
                return Err(CoreError::RateLimited { retry_after_secs });
            }
            let mut errs = ValidationErrors::new();
            let body = body.trim();
            if body.is_empty() {
                errs.push(FieldError::new("body", "required", "请填写纠错内容 / describe the problem"));
            } else if body.chars().count() > 2000 {
                errs.push(FieldError::new("body", "too_long", "纠错内容不能超过 2000 字 / at most 2000 characters"));
            }
            if contact.trim().chars().count() > 200 {
                errs.push(FieldError::new("contact", "too_long", "联系方式不能超过 200 字 / at most 200 characters"));
            }
            errs.into_result()?;
            self.feedback_limiter.record_failure(&client, now);
            let from = principal.map(|p| p.display_name.clone()).unwrap_or_else(|| "匿名用户 / anonymous".into());
            let to = self.answerers(resource.content.provider.as_str()).await?;
            self.notify(
                &to,
                "resource.feedback",
                format!("数据纠错：{} / feedback", resource.content.name),
                format!(
                    "{from}：{body}（联系方式 / contact: {}）",
                    if contact.trim().is_empty() { "-" } else { contact.trim() }
                ),
                format!("/api/v1/resources/{}", resource.id),
            )
            .await?;
            Ok(resource.content.code.to_string())
        }
        .await;
        let target = result.as_ref().ok().map(|c| format!("resource:{c}"));
        let actor = match principal {
            Some(p) => Actor::Principal(p),
            None => Actor::Anonymous,
        };
        self.audited(meta, actor, "resource.feedback", target, result).await.map(|_| ())
    }

    /// Reads and downloads per resource code over the newest audit entries (cached a minute).
    pub async fn usage_counts(&self) -> Result<HashMap<String, Usage>, CoreError> {
        if let Some((at, cached)) = self.usage_cache.lock().ok().and_then(|c| c.clone())
            && at.elapsed() < std::time::Duration::from_secs(60)
        {
            return Ok(cached);
        }
        let filter =
            AuditFilter { action: Some("data.".into()), outcome: Some(Outcome::Success), ..Default::default() };
        let mut out: HashMap<String, Usage> = HashMap::new();
        for e in self.store.list_audit(&filter, USAGE_WINDOW, 0).await? {
            let Some(code) = e.event.target.as_deref().and_then(|t| t.strip_prefix("resource:")) else { continue };
            let u = out.entry(code.to_string()).or_default();
            match e.event.action.as_str() {
                "data.export" => u.downloads += 1,
                "data.read_rows" | "data.aggregate" | "data.read_changes" => u.reads += 1,
                _ => {}
            }
        }
        if let Ok(mut c) = self.usage_cache.lock() {
            *c = Some((std::time::Instant::now(), out.clone()));
        }
        Ok(out)
    }
}
