//! 纠错 (readers' corrections) and usage figures for the portal.

use crate::{Core, CoreError, RequestMeta};
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
    /// A reader (signed in or not) reports a problem with a resource (the portal's 纠错 form):
    /// it becomes a 纠错 ticket ([`crate::quality::tickets`]) routed to the provider's
    /// stewards. Limited to 20 per client address per hour.
    pub async fn submit_feedback(
        &self,
        meta: &RequestMeta,
        principal: Option<&Principal>,
        key: &str,
        body: &str,
        contact: &str,
    ) -> Result<(), CoreError> {
        let body = body.trim();
        let title: String = body.lines().next().unwrap_or("").chars().take(60).collect();
        let input =
            crate::quality::tickets::NewTicket { title, description: body.to_string(), record_key: None, item: None };
        let contact = Some(contact.trim()).filter(|c| !c.is_empty());
        match self.create_ticket(meta, principal, key, &input, contact).await {
            Ok(_) => Ok(()),
            // The form has one text field: name it.
            Err(CoreError::Validation(errs)) => Err(CoreError::Validation(ValidationErrors(
                errs.0
                    .into_iter()
                    .map(|e| match e.field.as_str() {
                        "title" | "description" => FieldError { field: "body".into(), ..e },
                        _ => e,
                    })
                    .collect(),
            ))),
            Err(e) => Err(e),
        }
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
