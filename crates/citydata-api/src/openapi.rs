//! The OpenAPI 3.1 document, generated from the handlers' annotations.

use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "citydata API",
        description = "城市数据共享交换与开放平台 REST API / city data sharing, exchange and open-data platform. \
Errors use one envelope: `{\"error\": {\"code\", \"message\", \"details\"}}`.",
        license(name = "Apache-2.0")
    ),
    modifiers(&Security),
    tags(
        (name = "auth", description = "登录与会话 / login and sessions"),
        (name = "departments", description = "部门 / departments"),
        (name = "users", description = "用户 / users"),
        (name = "tokens", description = "API 令牌 / API tokens"),
        (name = "audit", description = "审计日志 / audit log"),
        (name = "catalog", description = "信息资源目录 / resource catalog"),
        (name = "data", description = "数据汇聚与版本 / data ingest and versions"),
        (name = "grants", description = "授权 / grants"),
        (name = "requests", description = "共享申请与消息 / requests and inbox"),
        (name = "webhooks", description = "回调与订阅 / webhooks and change subscriptions"),
        (name = "meta", description = "本文档 / this document"),
    )
)]
pub struct ApiDoc;

struct Security;

impl Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).bearer_format("cd_...").build()),
        );
        components.add_security_scheme(
            "session",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::new(crate::SESSION_COOKIE))),
        );
    }
}
