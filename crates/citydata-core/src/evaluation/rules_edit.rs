//! The console's rules editor (issue #17): setting the rules from a form that was filled in
//! against one version — refused with 409 when someone set newer rules in between, so that two
//! admins editing at once never overwrite each other unseen.

use crate::{Core, CoreError, RequestMeta};
use citydata_domain::evaluation::Rules;
use citydata_domain::principal::Principal;

use super::RulesVersion;

impl Core {
    /// Set the rules if the current version is still `expected` (409 `conflict` otherwise);
    /// otherwise the same as `set_evaluation_rules` (platform admins, checked whole, audited).
    pub async fn set_evaluation_rules_from(
        &self,
        meta: &RequestMeta,
        principal: &Principal,
        rules: Rules,
        expected: i64,
    ) -> Result<RulesVersion, CoreError> {
        if !principal.is_admin() {
            return Err(CoreError::Forbidden("仅平台管理员可设置评估规则 / only platform admins set the rules".into()));
        }
        let current = self.evaluation_rules(None).await?.version;
        if current != expected {
            return Err(CoreError::Conflict(format!(
                "评估规则已被他人更新为第 {current} 版，请在最新规则上重新修改 / the rules were changed to version {current} meanwhile; edit the newest rules again"
            )));
        }
        self.set_evaluation_rules(meta, principal, rules).await
    }
}
