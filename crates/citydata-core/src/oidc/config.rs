//! The identity providers as configured (`[oidc]` in `citydata.toml`, `CITYDATA__OIDC__*`).

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Who may still sign in with a local password once a provider is configured.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LocalLogin {
    /// Everyone with a password (the default).
    #[default]
    All,
    /// Department staff sign in through a provider; only the `operators` (and the public, who
    /// have no department) keep local passwords.
    Operators,
}

/// What a sign-in whose claims name no known department gets.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum UnmappedDepartment {
    /// An account without a department (what the public sees). The default.
    #[default]
    Public,
    /// No account, no session.
    Refuse,
}

/// A client secret: never shown by `Debug`.
#[derive(Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(transparent)]
pub struct ClientSecret(pub String);

impl std::fmt::Debug for ClientSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

/// Unified-authentication settings.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct OidcSettings {
    /// The providers by name (the name is in the routes: `/auth/oidc/{name}/login`).
    pub providers: BTreeMap<String, ProviderSettings>,
    pub local_login: LocalLogin,
    /// Usernames that keep local passwords under `local_login = "operators"`.
    pub operators: Vec<String>,
}

/// One OpenID provider (e.g. the province's 政务统一身份认证平台).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderSettings {
    /// The issuer URL; discovery reads `{issuer}/.well-known/openid-configuration`.
    pub issuer: String,
    pub client_id: String,
    #[serde(default)]
    pub client_secret: Option<ClientSecret>,
    /// Scopes asked for besides `openid`.
    #[serde(default = "default_scopes")]
    pub scopes: Vec<String>,
    /// The button's text, in Chinese and in English.
    pub name: String,
    #[serde(default)]
    pub name_en: Option<String>,
    /// The claim naming the user's organization (e.g. an organization code).
    #[serde(default)]
    pub department_claim: Option<String>,
    /// Claim value → department code. A value not listed that is itself a department's code
    /// maps to that department.
    #[serde(default)]
    pub department_map: BTreeMap<String, String>,
    /// The claim listing the user's groups or roles (a string or an array of strings).
    #[serde(default)]
    pub roles_claim: Option<String>,
    /// Claim value → role (`dept_admin`, `steward`, `analyst`). Values that are role names
    /// map to themselves; the platform role `admin` never comes from a provider.
    #[serde(default)]
    pub role_map: BTreeMap<String, String>,
    /// The role of a member whose claims name none.
    #[serde(default = "default_role")]
    pub default_role: String,
    #[serde(default)]
    pub unmapped_department: UnmappedDepartment,
}

fn default_scopes() -> Vec<String> {
    vec!["profile".into(), "email".into()]
}

fn default_role() -> String {
    "analyst".into()
}

impl OidcSettings {
    /// Check names and URLs; the message names the offending key.
    pub fn check(&self) -> Result<(), String> {
        for (name, p) in &self.providers {
            let ok_name = (1..=32).contains(&name.len())
                && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
            if !ok_name {
                return Err(format!("oidc.providers.{name}: a provider name is 1–32 of a-z, 0-9, '-', '_'"));
            }
            match url::Url::parse(&p.issuer) {
                Ok(u) if matches!(u.scheme(), "https" | "http") => {}
                _ => return Err(format!("oidc.providers.{name}.issuer: not an http(s) URL: {}", p.issuer)),
            }
            if p.client_id.trim().is_empty() {
                return Err(format!("oidc.providers.{name}.client_id: empty"));
            }
            for (k, r) in p.role_map.iter().map(|(k, v)| (k.as_str(), v)).chain([("default_role", &p.default_role)]) {
                match citydata_domain::user::Role::parse(r) {
                    Ok(citydata_domain::user::Role::Admin) | Err(_) => {
                        return Err(format!(
                            "oidc.providers.{name}.role_map.{k}: `{r}` is not dept_admin, steward or analyst"
                        ));
                    }
                    Ok(_) => {}
                }
            }
            for (k, d) in &p.department_map {
                if citydata_domain::dept::DeptCode::parse(d).is_err() {
                    return Err(format!("oidc.providers.{name}.department_map.{k}: `{d}` is not a department code"));
                }
            }
        }
        Ok(())
    }
}
