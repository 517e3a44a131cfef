//! Editing a registered application (issue #17, the console's applications editor): the owning
//! department's stewards change its name, scenario, URL, status and resources under the same
//! checks as registration; the department stays. A form carries the application's `revision`
//! (a digest of what it showed): a stale one is refused with 409, and the store's update holds
//! only while the row is unchanged, so two editors never overwrite each other unseen.

use super::applications::{ApplicationView, NewApplication};
use crate::audit::Actor;
use crate::{Core, CoreError, RequestMeta};
use citydata_domain::audit::Outcome;
use citydata_domain::dept::DeptCode;
use citydata_domain::principal::Principal;
use citydata_store::ApplicationRecord;
use sha2::{Digest, Sha256};
use uuid::Uuid;

/// An application as its editor shows it: the view, its revision and its resources' codes.
pub struct EditableApplication {
    pub view: ApplicationView,
    pub revision: String,
    /// The codes of every resource it declares (the caller stewards its department).
    pub resource_codes: Vec<String>,
}

/// A digest of the editable fields: what the form was filled from.
fn revision(a: &ApplicationRecord) -> String {
    let mut resources = a.resources.clone();
    resources.sort();
    let text = serde_json::json!([a.name, a.scenario, a.url, a.status, resources, a.service_account]).to_string();
    hex::encode(&Sha256::digest(text.as_bytes())[..8])
}

impl Core {
    async fn application_record(&self, principal: &Principal, id: &str) -> Result<ApplicationRecord, CoreError> {
        let not_found = || CoreError::NotFound(format!("应用 {id} / application {id}"));
        let id = Uuid::parse_str(id.trim()).map_err(|_| not_found())?;
        let rec = self.store.list_applications().await?.into_iter().find(|a| a.id == id).ok_or_else(not_found)?;
        let dept = DeptCode::parse(&rec.department).map_err(|_| not_found())?;
        if !principal.can_steward(&dept) {
            return Err(CoreError::Forbidden(
                "仅本部门数据管理员可修改应用 / only the department's stewards edit its applications".into(),
            ));
        }
        Ok(rec)
    }

    /// An application to edit (stewards of its department; 403 for others, 404 if none).
    pub async fn application_for_edit(
        &self,
        principal: &Principal,
        id: &str,
    ) -> Result<EditableApplication, CoreError> {
        let rec = self.application_record(principal, id).await?;
        let revision = revision(&rec);
        let mut resource_codes = Vec::new();
        for r in &rec.resources {
            if let Ok(res) = self.get_resource(Some(principal), &r.to_string()).await {
                resource_codes.push(res.content.code.to_string());
            }
        }
        let view = self.view_application(Some(principal), rec).await;
        Ok(EditableApplication { view, revision, resource_codes })
    }

    /// Change an application filled in from `expected_revision` (409 `conflict` when it changed
    /// since); the fields are checked as at registration (400 naming each); audited.
    pub async fn update_application(
        &self,
        meta: &RequestMeta,
        principal: &Principal,
        id: &str,
        input: &NewApplication,
        expected_revision: &str,
    ) -> Result<ApplicationView, CoreError> {
        let old = self.application_record(principal, id).await?;
        let stale = || {
            CoreError::Conflict(
                "应用已被他人修改，请在最新内容上重新编辑 / the application changed meanwhile; edit it again".into(),
            )
        };
        if revision(&old) != expected_revision.trim() {
            return Err(stale());
        }
        let input = NewApplication { department: Some(old.department.clone()), ..input.clone() };
        let v = self.checked_application(principal, &input).await?;
        let new = ApplicationRecord {
            name: v.name,
            scenario: v.scenario,
            url: v.url,
            status: v.status,
            resources: v.resources,
            service_account: v.service_account,
            ..old.clone()
        };
        if !self.store.update_application(&old, &new).await? {
            return Err(stale());
        }
        self.record(
            meta,
            Actor::Principal(principal),
            "application.update",
            Some(format!("application:{}", new.id)),
            Outcome::Success,
            serde_json::json!({"name": new.name, "status": new.status, "resources": new.resources}),
        )
        .await?;
        Ok(self.view_application(Some(principal), new).await)
    }
}
