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
        (name = "service-accounts", description = "服务账号 / service accounts"),
        (name = "audit", description = "审计日志 / audit log"),
        (name = "catalog", description = "信息资源目录 / resource catalog"),
        (name = "data", description = "数据汇聚与版本 / data ingest and versions"),
        (name = "grants", description = "授权 / grants"),
        (name = "requests", description = "共享申请与消息 / requests and inbox"),
        (name = "webhooks", description = "回调与订阅 / webhooks and change subscriptions"),
        (name = "quality", description = "数据质量与纠错 / data quality and corrections"),
        (name = "evaluation", description = "评估考核与应用 / evaluation and applications"),
        (name = "sharing", description = "共享协议凭证（Delta Sharing）/ Delta Sharing profiles"),
        (name = "iot", description = "物联网设备与数据流 / IoT devices and MQTT streams"),
        (name = "files", description = "文件分发 / file distributions"),
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

/// Document the answers every handler can give before its own code runs, so that clients (and
/// schemathesis) find each status they can receive: a JSON body that is malformed (400), of the
/// wrong type (415) or with a bad field (422); query parameters that do not parse (400); a path
/// whose id names nothing (404); a protected route called without credentials (401).
pub fn document_rejections(doc: &mut utoipa::openapi::OpenApi) {
    use utoipa::openapi::path::ParameterIn;
    use utoipa::openapi::{RefOr, ResponseBuilder, content::ContentBuilder};
    let envelope = |description: &str| {
        RefOr::T(
            ResponseBuilder::new()
                .description(description)
                .content(
                    "application/json",
                    ContentBuilder::new()
                        .schema(Some(RefOr::Ref(utoipa::openapi::Ref::from_schema_name("ErrorEnvelope"))))
                        .build(),
                )
                .build(),
        )
    };
    for item in doc.paths.paths.values_mut() {
        for op in
            [&mut item.get, &mut item.post, &mut item.put, &mut item.patch, &mut item.delete].into_iter().flatten()
        {
            let params = op.parameters.as_deref().unwrap_or_default();
            let has_query = params.iter().any(|p| p.parameter_in == ParameterIn::Query);
            let has_path = params.iter().any(|p| p.parameter_in == ParameterIn::Path);
            let json_body = op.request_body.as_ref().is_some_and(|b| b.content.contains_key("application/json"));
            let secured = op.security.as_ref().is_some_and(|s| !s.is_empty());
            let mut add = |status: &str, description: &str| {
                op.responses.responses.entry(status.to_string()).or_insert_with(|| envelope(description));
            };
            if json_body {
                add("400", "请求体不是合法的 JSON / malformed JSON body (`malformed_json`)");
                add("415", "Content-Type 不是 application/json / not a JSON body (`unsupported_media_type`)");
                add("422", "请求体字段有误 / a field of the body is invalid (`invalid_body`)");
            }
            if has_query {
                add("400", "查询参数有误 / invalid query parameters (`validation_failed`)");
            }
            if has_path {
                add("404", "不存在或无权查看 / not found or not visible (`not_found`)");
            }
            if secured {
                add("401", "未登录 / not authenticated (`unauthenticated`)");
            }
        }
    }
}
