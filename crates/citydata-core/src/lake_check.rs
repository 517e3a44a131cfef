//! `Core::check_lake`: check that every table (or one) can be read as its current version
//! says (`citydata_lake::check`), for the operator's `citydata lake check`.

use crate::{Core, CoreError};
use citydata_domain::principal::Principal;
use citydata_lake::check::TableCheck;
use serde::Serialize;

/// The check of one resource's table.
#[derive(Debug, Clone, Serialize)]
pub struct ResourceCheck {
    pub id: uuid::Uuid,
    pub code: String,
    pub name: String,
    #[serde(flatten)]
    pub check: TableCheck,
}

impl Core {
    /// Check the table of `resource` (code, slug or id), or of every resource in the catalog
    /// (all states), in catalog order. Platform administrators (and the operator) only.
    pub async fn check_lake(
        &self,
        principal: &Principal,
        resource: Option<&str>,
    ) -> Result<Vec<ResourceCheck>, CoreError> {
        if !principal.can_manage_departments() {
            return Err(CoreError::forbidden());
        }
        let lake = self.lake()?;
        let resources = match resource {
            Some(key) => vec![self.get_resource(Some(principal), key).await?],
            None => {
                let f = citydata_store::ResourceFilter::new(citydata_domain::resource::Audience::Platform);
                let mut all = Vec::new();
                loop {
                    let page = self.store.list_resources(&f, 500, all.len() as u64).await?;
                    if page.is_empty() {
                        break;
                    }
                    all.extend(page);
                }
                all
            }
        };
        let mut out = Vec::with_capacity(resources.len());
        for r in resources {
            let code = r.content.code.to_string();
            let check = lake.check(r.id).await.map_err(|e| CoreError::from(e).for_resource(&code))?;
            out.push(ResourceCheck { id: r.id, code, name: r.content.name.to_string(), check });
        }
        Ok(out)
    }
}
