//! Token scopes at run time, for what the HTTP layer's route table cannot see: which resource
//! a call touches. The gate ([`Core::decision`](crate::Core::decision)) and the ingest call
//! [`check_resource`], so a token limited to a resource list reads and writes nothing else
//! through any path.

use crate::CoreError;
use citydata_domain::principal::Principal;
use citydata_domain::resource::Resource;
use citydata_domain::scope::Scope;

/// Refuse a token whose resource list leaves `resource` out.
pub fn check_resource(p: &Principal, resource: &Resource) -> Result<(), CoreError> {
    if p.reaches_resource(resource.id) {
        Ok(())
    } else {
        Err(CoreError::InsufficientScope(format!(
            "此令牌不能访问资源 {code} / this token is not allowed to reach resource {code}",
            code = resource.content.code
        )))
    }
}

/// Refuse a token without `scope` (for use cases reached other than through the route table).
pub fn require(p: &Principal, scope: Scope) -> Result<(), CoreError> {
    if p.has_scope(scope) { Ok(()) } else { Err(insufficient(scope)) }
}

/// The refusal for a missing scope, naming it in Chinese and in English.
pub fn insufficient(scope: Scope) -> CoreError {
    CoreError::InsufficientScope(format!(
        "此令牌没有“{}”权限（{}） / this token lacks the scope {}",
        scope.title_zh(),
        scope.as_str(),
        scope.as_str()
    ))
}
