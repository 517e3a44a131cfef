//! The one table of what each route needs from a token ([`REQUIRED`]), the middleware that
//! enforces it ([`enforce`]), and the OpenAPI extension `x-required-scope` that documents it
//! ([`document`]).
//!
//! Sessions, the command line and tokens made without scopes pass every check (they carry
//! every scope). A route missing from the table needs `admin` (fail closed), and the
//! `it/auth_scopes.rs` test requires every documented operation to be listed. Which resource a
//! call touches is checked by core (`citydata_core::scopes::check_resource`) in the gate.

use crate::extract::MaybeAuth;
use crate::{ApiError, AppState};
use axum::extract::{MatchedPath, Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use citydata_domain::scope::Scope;
use serde_json::json;
use utoipa::openapi::OpenApi as OpenApiDoc;

use Scope::{Admin, CatalogRead, CatalogWrite, DataRead, DataWrite, Requests, Webhooks};

/// `(method, path template, scope)`: `None` is a route any caller may use with any token.
pub const REQUIRED: &[(&str, &str, Option<Scope>)] = &[
    ("GET", "/api/v1/openapi.json", None),
    ("POST", "/api/v1/auth/login", None),
    ("POST", "/api/v1/auth/logout", None),
    ("POST", "/api/v1/auth/register", None),
    ("GET", "/api/v1/me", None),
    ("POST", "/api/v1/auth/password", Some(Admin)),
    ("GET", "/api/v1/departments", Some(CatalogRead)),
    ("POST", "/api/v1/departments", Some(Admin)),
    ("GET", "/api/v1/departments/{code}", Some(CatalogRead)),
    ("GET", "/api/v1/users", Some(Admin)),
    ("POST", "/api/v1/users", Some(Admin)),
    ("GET", "/api/v1/tokens", Some(Admin)),
    ("POST", "/api/v1/tokens", Some(Admin)),
    ("DELETE", "/api/v1/tokens/{id}", Some(Admin)),
    ("GET", "/api/v1/service-accounts", Some(Admin)),
    ("POST", "/api/v1/service-accounts", Some(Admin)),
    ("GET", "/api/v1/service-accounts/{id}/tokens", Some(Admin)),
    ("POST", "/api/v1/service-accounts/{id}/tokens", Some(Admin)),
    ("DELETE", "/api/v1/service-accounts/{id}/tokens/{token_id}", Some(Admin)),
    ("PUT", "/api/v1/users/{id}/pinned-roles", Some(Admin)),
    // A sharing profile is a credential reading data through Delta Sharing: like a token,
    // only a caller with every right may mint one.
    ("GET", "/api/v1/sharing/profiles", Some(Admin)),
    ("POST", "/api/v1/sharing/profiles", Some(Admin)),
    ("DELETE", "/api/v1/sharing/profiles/{id}", Some(Admin)),
    ("GET", "/api/v1/sessions", Some(Admin)),
    ("DELETE", "/api/v1/sessions", Some(Admin)),
    ("DELETE", "/api/v1/sessions/{id}", Some(Admin)),
    ("GET", "/api/v1/audit", Some(Admin)),
    ("GET", "/api/v1/audit/verify", Some(Admin)),
    ("GET", "/api/v1/resources", Some(CatalogRead)),
    ("POST", "/api/v1/resources", Some(CatalogWrite)),
    ("GET", "/api/v1/resources/{id}", Some(CatalogRead)),
    ("PATCH", "/api/v1/resources/{id}", Some(CatalogWrite)),
    ("DELETE", "/api/v1/resources/{id}", Some(CatalogWrite)),
    ("POST", "/api/v1/resources/{id}/publish", Some(CatalogWrite)),
    ("POST", "/api/v1/resources/{id}/withdraw", Some(CatalogWrite)),
    ("GET", "/api/v1/resources/{id}/revisions", Some(CatalogRead)),
    ("GET", "/api/v1/themes", Some(CatalogRead)),
    ("GET", "/api/v1/search", Some(CatalogRead)),
    ("GET", "/api/v1/catalog/export", Some(CatalogRead)),
    ("POST", "/api/v1/catalog/import", Some(CatalogWrite)),
    ("POST", "/api/v1/resources/{id}/data", Some(DataWrite)),
    ("POST", "/api/v1/resources/{id}/files", Some(DataWrite)),
    ("GET", "/api/v1/resources/{id}/files", Some(DataRead)),
    ("GET", "/api/v1/resources/{id}/files/{file_id}", Some(DataRead)),
    ("DELETE", "/api/v1/resources/{id}/files/{file_id}", Some(DataWrite)),
    ("GET", "/api/v1/resources/{id}/ingests", Some(DataRead)),
    ("GET", "/api/v1/resources/{id}/ingests/{ingest_id}", Some(DataRead)),
    ("GET", "/api/v1/resources/{id}/versions", Some(DataRead)),
    ("GET", "/api/v1/resources/{id}/quarantine", Some(DataRead)),
    ("GET", "/api/v1/resources/{id}/rows", Some(DataRead)),
    ("POST", "/api/v1/resources/{id}/verify", Some(DataRead)),
    // 电子证照核验 is public: anyone, with any token.
    ("POST", "/api/v1/licenses/verify", None),
    ("GET", "/api/v1/licenses/receipt-key", None),
    ("GET", "/api/v1/licenses/receipt-key.pem", None),
    ("GET", "/api/v1/resources/{id}/export", Some(DataRead)),
    ("GET", "/api/v1/resources/{id}/aggregate", Some(DataRead)),
    ("GET", "/api/v1/resources/{id}/changes", Some(DataRead)),
    ("GET", "/api/v1/resources/{id}/latest", Some(DataRead)),
    ("POST", "/api/v1/sql", Some(DataRead)),
    ("GET", "/api/v1/grants", Some(Requests)),
    ("POST", "/api/v1/grants", Some(Requests)),
    ("POST", "/api/v1/grants/{id}/revoke", Some(Requests)),
    ("POST", "/api/v1/grants/{id}/renew", Some(Requests)),
    ("GET", "/api/v1/requests", Some(Requests)),
    ("POST", "/api/v1/requests", Some(Requests)),
    ("GET", "/api/v1/requests/commitment", Some(Requests)),
    ("GET", "/api/v1/requests/{id}", Some(Requests)),
    ("POST", "/api/v1/requests/{id}/approve", Some(Requests)),
    ("POST", "/api/v1/requests/{id}/reject", Some(Requests)),
    ("POST", "/api/v1/requests/{id}/withdraw", Some(Requests)),
    ("GET", "/api/v1/requests/{id}/comments", Some(Requests)),
    ("POST", "/api/v1/requests/{id}/comments", Some(Requests)),
    ("GET", "/api/v1/inbox", Some(Requests)),
    ("POST", "/api/v1/inbox/{id}/read", Some(Requests)),
    ("GET", "/api/v1/departments/{code}/response-times", Some(CatalogRead)),
    ("GET", "/api/v1/webhooks", Some(Webhooks)),
    ("POST", "/api/v1/webhooks", Some(Webhooks)),
    ("DELETE", "/api/v1/webhooks/{id}", Some(Webhooks)),
    ("GET", "/api/v1/webhooks/{id}/deliveries", Some(Webhooks)),
    ("POST", "/api/v1/resources/{id}/subscriptions", Some(Webhooks)),
    ("GET", "/api/v1/subscriptions", Some(Webhooks)),
    ("DELETE", "/api/v1/subscriptions/{id}", Some(Webhooks)),
    ("GET", "/api/v1/resources/{id}/quality", Some(CatalogRead)),
    ("GET", "/api/v1/resources/{id}/quality/history", Some(CatalogRead)),
    ("POST", "/api/v1/resources/{id}/quality/profile", Some(DataRead)),
    ("GET", "/api/v1/resources/{id}/tickets", Some(Requests)),
    ("POST", "/api/v1/resources/{id}/tickets", Some(Requests)),
    ("GET", "/api/v1/tickets", Some(Requests)),
    ("GET", "/api/v1/tickets/{id}", Some(Requests)),
    ("POST", "/api/v1/tickets/{id}/accept", Some(Requests)),
    ("POST", "/api/v1/tickets/{id}/assign", Some(Requests)),
    ("POST", "/api/v1/tickets/{id}/reject", Some(Requests)),
    ("POST", "/api/v1/tickets/{id}/fix", Some(Requests)),
    ("POST", "/api/v1/tickets/{id}/confirm", Some(Requests)),
    ("POST", "/api/v1/tickets/{id}/reopen", Some(Requests)),
    ("POST", "/api/v1/tickets/{id}/comments", Some(Requests)),
    ("GET", "/api/v1/quality/overdue", Some(CatalogRead)),
    ("GET", "/api/v1/evaluation", Some(CatalogRead)),
    ("GET", "/api/v1/evaluation/departments/{code}", Some(CatalogRead)),
    ("GET", "/api/v1/evaluation/departments/{code}/records", Some(CatalogRead)),
    ("GET", "/api/v1/evaluation/export", Some(CatalogRead)),
    ("GET", "/api/v1/evaluation/rules", Some(CatalogRead)),
    ("PUT", "/api/v1/evaluation/rules", Some(Admin)),
    ("GET", "/api/v1/applications", Some(CatalogRead)),
    ("POST", "/api/v1/applications", Some(CatalogWrite)),
    ("GET", "/api/v1/sources", Some(CatalogRead)),
    ("POST", "/api/v1/sources", Some(CatalogWrite)),
    ("GET", "/api/v1/sources/{id}", Some(CatalogRead)),
    ("PATCH", "/api/v1/sources/{id}", Some(CatalogWrite)),
    ("DELETE", "/api/v1/sources/{id}", Some(CatalogWrite)),
    ("POST", "/api/v1/sources/{id}/run", Some(DataWrite)),
    ("GET", "/api/v1/sources/{id}/runs", Some(CatalogRead)),
    ("GET", "/api/v1/sources/{id}/runs/{run_id}", Some(CatalogRead)),
    ("POST", "/api/v1/runs/{id}/abort", Some(DataWrite)),
    ("GET", "/api/v1/device-types", Some(CatalogRead)),
    ("POST", "/api/v1/device-types", Some(CatalogWrite)),
    ("GET", "/api/v1/device-types/{id}", Some(CatalogRead)),
    ("PATCH", "/api/v1/device-types/{id}", Some(CatalogWrite)),
    ("GET", "/api/v1/devices", Some(CatalogRead)),
    ("POST", "/api/v1/devices", Some(CatalogWrite)),
    ("POST", "/api/v1/device-types/{id}/devices", Some(CatalogWrite)),
    ("GET", "/api/v1/devices/{id}", Some(CatalogRead)),
    ("PATCH", "/api/v1/devices/{id}", Some(CatalogWrite)),
    ("GET", "/api/v1/streams", Some(CatalogRead)),
    ("POST", "/api/v1/streams", Some(CatalogWrite)),
    ("GET", "/api/v1/streams/{id}", Some(CatalogRead)),
    ("PATCH", "/api/v1/streams/{id}", Some(CatalogWrite)),
];

/// The table's entry for an operation: `None` when the route is not listed.
pub fn listed(method: &Method, route: &str) -> Option<Option<Scope>> {
    REQUIRED.iter().find(|(m, p, _)| *p == route && *m == method.as_str()).map(|(_, _, s)| *s)
}

/// The scope a request needs, by the route it matched (`route`, the template) and its `path`:
/// the table for `/api/v1`; CKAN's `datastore_*` actions read data, its other actions, DCAT
/// and `/dataset/...` read the catalog; anything else (the portal's pages, an unlisted route)
/// needs `admin`.
pub fn required(method: &Method, route: &str, path: &str) -> Option<Scope> {
    if let Some(s) = listed(method, route) {
        return s;
    }
    if let Some(action) = path.strip_prefix("/api/3/action/").or_else(|| path.strip_prefix("/api/action/")) {
        return Some(if action.starts_with("datastore_") { DataRead } else { CatalogRead });
    }
    if route == "/api/3" || route.starts_with("/catalog.") || route.starts_with("/dataset/") {
        return Some(CatalogRead);
    }
    if route == "/healthz" || route == "/readyz" {
        return None;
    }
    Some(Admin)
}

/// Refuse a token call outside the token's scopes: 403 `insufficient_scope` naming the scope
/// (`details.required_scope`), before the handler reads the path or the body. Runs inside
/// `authenticate`, after routing.
pub async fn enforce(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let Some(MaybeAuth(Some(p))) = req.extensions().get::<MaybeAuth>() else {
        return next.run(req).await;
    };
    let route = match req.extensions().get::<MatchedPath>() {
        Some(m) => m.as_str().to_string(),
        None => req.uri().path().to_string(),
    };
    let Some(scope) = required(req.method(), &route, req.uri().path()) else {
        return next.run(req).await;
    };
    if p.has_scope(scope) {
        return next.run(req).await;
    }
    let e = ApiError::from(citydata_core::scopes::insufficient(scope))
        .with_details(json!({ "required_scope": scope.as_str() }));
    if route.starts_with("/api/3/") || route.starts_with("/api/action/") {
        return crate::ckan::refusal(&state.base_url(req.headers()), req.uri().path(), e);
    }
    e.into_response()
}

/// Write each operation's scope into the document as `x-required-scope`, and the 403 a token
/// without it receives.
pub fn document(doc: &mut OpenApiDoc) {
    use utoipa::openapi::{RefOr, ResponseBuilder, content::ContentBuilder};
    let forbidden = || {
        RefOr::T(
            ResponseBuilder::new()
                .description("令牌缺少所需的权限范围 / the token lacks the scope (`insufficient_scope`)")
                .content(
                    "application/json",
                    ContentBuilder::new()
                        .schema(Some(RefOr::Ref(utoipa::openapi::Ref::from_schema_name("ErrorEnvelope"))))
                        .build(),
                )
                .build(),
        )
    };
    for (path, item) in doc.paths.paths.iter_mut() {
        let ops = [
            ("GET", item.get.as_mut()),
            ("POST", item.post.as_mut()),
            ("PUT", item.put.as_mut()),
            ("PATCH", item.patch.as_mut()),
            ("DELETE", item.delete.as_mut()),
        ];
        for (method, op) in ops {
            let Some(op) = op else { continue };
            let m = Method::from_bytes(method.as_bytes()).expect("static");
            let scope = match listed(&m, path) {
                Some(Some(s)) => s.as_str(),
                Some(None) => "none",
                None => "unlisted",
            };
            if scope != "none" {
                op.responses.responses.entry("403".to_string()).or_insert_with(forbidden);
            }
            let ext = utoipa::openapi::extensions::ExtensionsBuilder::new().add("x-required-scope", scope).build();
            match op.extensions.as_mut() {
                Some(e) => e.merge(ext),
                None => op.extensions = Some(ext),
            }
        }
    }
}
