//! The template environment, the embedded templates and assets, theming.

use crate::i18n::{Catalog, Lang, catalogs};
use minijinja::{AutoEscape, Environment};
use serde_json::Value;
use std::path::PathBuf;

/// The embedded templates, by name. A file of the same name in `PortalConfig::template_dir`
/// replaces one (a city's own home page, say).
pub(crate) const TEMPLATES: &[(&str, &str)] = &[
    ("base.html", include_str!("../templates/base.html")),
    ("macros.html", include_str!("../templates/macros.html")),
    ("error.html", include_str!("../templates/error.html")),
    ("home.html", include_str!("../templates/home.html")),
    ("datasets.html", include_str!("../templates/datasets.html")),
    ("dataset.html", include_str!("../templates/dataset.html")),
    ("departments.html", include_str!("../templates/departments.html")),
    ("department.html", include_str!("../templates/department.html")),
    ("api_docs.html", include_str!("../templates/api_docs.html")),
    ("help.html", include_str!("../templates/help.html")),
    ("licenses.html", include_str!("../templates/licenses.html")),
    ("login.html", include_str!("../templates/login.html")),
    ("register.html", include_str!("../templates/register.html")),
    ("message.html", include_str!("../templates/message.html")),
    ("quality.html", include_str!("../templates/quality.html")),
    ("iot_live.html", include_str!("../templates/iot_live.html")),
    ("console/devices.html", include_str!("../templates/console/devices.html")),
    ("department_quality.html", include_str!("../templates/department_quality.html")),
    ("evaluation.html", include_str!("../templates/evaluation.html")),
    ("dashboard.html", include_str!("../templates/dashboard.html")),
    ("console/evaluation.html", include_str!("../templates/console/evaluation.html")),
    ("console/evaluation_rules.html", include_str!("../templates/console/evaluation_rules.html")),
    ("console/applications.html", include_str!("../templates/console/applications.html")),
    ("console/quality.html", include_str!("../templates/console/quality.html")),
    ("console/sources.html", include_str!("../templates/console/sources.html")),
    ("console/source.html", include_str!("../templates/console/source.html")),
    ("console/source_new.html", include_str!("../templates/console/source_new.html")),
    ("console/nav.html", include_str!("../templates/console/nav.html")),
    ("console/home.html", include_str!("../templates/console/home.html")),
    ("console/edit.html", include_str!("../templates/console/edit.html")),
    ("console/new.html", include_str!("../templates/console/new.html")),
    ("console/upload.html", include_str!("../templates/console/upload.html")),
    ("console/files.html", include_str!("../templates/console/files.html")),
    ("console/requests.html", include_str!("../templates/console/requests.html")),
    ("console/request.html", include_str!("../templates/console/request.html")),
    ("console/apply.html", include_str!("../templates/console/apply.html")),
    ("console/grants.html", include_str!("../templates/console/grants.html")),
    ("console/tokens.html", include_str!("../templates/console/tokens.html")),
    ("console/share_profiles.html", include_str!("../templates/console/share_profiles.html")),
    ("console/sessions.html", include_str!("../templates/console/sessions.html")),
    ("console/service_accounts.html", include_str!("../templates/console/service_accounts.html")),
    ("console/service_account.html", include_str!("../templates/console/service_account.html")),
    ("console/inbox.html", include_str!("../templates/console/inbox.html")),
    ("console/audit.html", include_str!("../templates/console/audit.html")),
    ("console/confirm.html", include_str!("../templates/console/confirm.html")),
    ("console/rules.html", include_str!("../templates/console/rules.html")),
    ("console/profile.html", include_str!("../templates/console/profile.html")),
    ("console/tickets.html", include_str!("../templates/console/tickets.html")),
    ("console/ticket.html", include_str!("../templates/console/ticket.html")),
    ("console/verify.html", include_str!("../templates/console/verify.html")),
];

pub(crate) const CSS: &str = include_str!("../static/app.css");
pub(crate) const LOGO_SVG: &str = include_str!("../static/logo.svg");

/// Theming and overrides, from the server's settings.
#[derive(Debug, Clone)]
pub struct PortalConfig {
    /// The portal's name in Chinese (e.g. 泰州市公共数据开放平台).
    pub site_name: String,
    pub site_name_en: String,
    /// An image URL for the logo (default: the embedded logo).
    pub logo_url: Option<String>,
    /// A CSS color for headers, buttons and charts.
    pub primary_color: String,
    /// A directory whose templates replace the embedded ones of the same name.
    pub template_dir: Option<PathBuf>,
    /// The server's secret (signs CSRF tokens).
    pub secret: Vec<u8>,
    /// Mark cookies `Secure` (https deployments).
    pub cookie_secure: bool,
}

impl Default for PortalConfig {
    fn default() -> Self {
        Self {
            site_name: "城市公共数据开放平台".into(),
            site_name_en: "City Open Data Portal".into(),
            logo_url: None,
            primary_color: "#b4232a".into(),
            template_dir: None,
            secret: b"citydata-default-portal-secret".to_vec(),
            cookie_secure: false,
        }
    }
}

pub struct Portal {
    env: Environment<'static>,
    zh: Catalog,
    en: Catalog,
    pub(crate) config: PortalConfig,
    pub(crate) secret: Vec<u8>,
    pub(crate) cookie_secure: bool,
    /// `/static/app.<hash>.css`: the hash makes the file cacheable for a year.
    pub(crate) css_path: String,
    pub(crate) css_etag: String,
    /// The OpenAPI document, for `/api-docs`.
    pub(crate) api_doc: Value,
}

fn to_json(v: &minijinja::Value) -> Value {
    serde_json::to_value(v).unwrap_or(Value::Null)
}

fn short_hash(s: &str) -> String {
    use sha2::Digest;
    hex::encode(&sha2::Sha256::digest(s.as_bytes())[..6])
}

/// A color a stylesheet may take as is: `#rgb`, `#rrggbb` or a plain color name.
fn safe_color(c: &str) -> Option<String> {
    let c = c.trim();
    let hex_ok =
        c.strip_prefix('#').is_some_and(|h| matches!(h.len(), 3 | 6) && h.chars().all(|x| x.is_ascii_hexdigit()));
    let name_ok = !c.is_empty() && c.len() <= 20 && c.chars().all(|x| x.is_ascii_alphabetic());
    (hex_ok || name_ok).then(|| c.to_string())
}

impl Portal {
    pub fn new(mut config: PortalConfig, api_doc: Value) -> Self {
        config.primary_color = safe_color(&config.primary_color).unwrap_or_else(|| "#b4232a".into());
        let mut env = Environment::new();
        env.set_auto_escape_callback(|_| AutoEscape::Html);
        env.set_undefined_behavior(minijinja::UndefinedBehavior::Chainable);
        let dir = config.template_dir.clone();
        env.set_loader(move |name| {
            if let Some(d) = &dir
                && !name.contains("..")
            {
                let p = d.join(name);
                if p.is_file() {
                    return std::fs::read_to_string(&p).map(Some).map_err(|e| {
                        minijinja::Error::new(minijinja::ErrorKind::InvalidOperation, format!("template {name}: {e}"))
                    });
                }
            }
            Ok(TEMPLATES.iter().find(|(n, _)| *n == name).map(|(_, t)| t.to_string()))
        });
        env.add_filter("thousands", |v: i64| -> String {
            let s = v.abs().to_string();
            let mut out = String::new();
            for (i, c) in s.chars().enumerate() {
                if i > 0 && (s.len() - i).is_multiple_of(3) {
                    out.push(',');
                }
                out.push(c);
            }
            if v < 0 { format!("-{out}") } else { out }
        });
        // Times in the platform's zone (RFC 3339 text or epoch milliseconds), never raw.
        env.add_filter("date", |v: minijinja::Value| -> String { crate::present::local_date(&to_json(&v)) });
        env.add_filter("datetime", |v: minijinja::Value| -> String { crate::present::local_datetime(&to_json(&v)) });
        // Codes by their names, in the page's language (`lang_code` of the context).
        fn lang_of(state: &minijinja::State) -> Lang {
            match state.lookup("lang_code").and_then(|v| v.as_str().map(str::to_string)).as_deref() {
                Some("en") => Lang::En,
                _ => Lang::Zh,
            }
        }
        env.add_filter("mask_name", |s: &minijinja::State, v: String| crate::present::mask_title(&v, lang_of(s)));
        env.add_filter("rule_name", |s: &minijinja::State, v: String| crate::present::rule_title(&v, lang_of(s)));
        env.add_filter("operation_name", |s: &minijinja::State, v: String| {
            crate::present::operation_title(&v, lang_of(s))
        });
        env.add_filter("outcome_name", |s: &minijinja::State, v: String| crate::present::outcome_title(&v, lang_of(s)));
        env.add_filter("action_name", |s: &minijinja::State, v: String| crate::present::action_title(&v, lang_of(s)));
        env.add_filter("one_lang", |s: &minijinja::State, v: String| crate::present::one_language(&v, lang_of(s)));
        env.add_filter("mode_name", |s: &minijinja::State, v: String| crate::present::mode_title(&v, lang_of(s)));
        env.add_filter("urlencode_path", |v: String| -> String { crate::ctx::urlencode(&v) });
        let (zh, en) = catalogs();
        let css = CSS.replace("--primary: #b4232a", &format!("--primary: {}", config.primary_color));
        let hash = short_hash(&css);
        Self {
            env,
            zh,
            en,
            secret: config.secret.clone(),
            cookie_secure: config.cookie_secure,
            css_path: format!("/static/app.{hash}.css"),
            css_etag: format!("\"{hash}\""),
            config,
            api_doc,
        }
    }

    pub(crate) fn css(&self) -> String {
        CSS.replace("--primary: #b4232a", &format!("--primary: {}", self.config.primary_color))
    }

    pub fn catalog(&self, lang: Lang) -> &Catalog {
        match lang {
            Lang::Zh => &self.zh,
            Lang::En => &self.en,
        }
    }

    pub fn message(&self, lang: Lang, key: &str) -> String {
        self.catalog(lang).get(key).cloned().unwrap_or_else(|| key.to_string())
    }

    pub fn render(&self, name: &str, ctx: Value) -> Result<String, minijinja::Error> {
        self.env.get_template(name)?.render(ctx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colors_cannot_break_out_of_the_stylesheet() {
        assert_eq!(safe_color("#1a2b3c").as_deref(), Some("#1a2b3c"));
        assert_eq!(safe_color("teal").as_deref(), Some("teal"));
        assert_eq!(safe_color("red;}body{display:none"), None);
        assert_eq!(safe_color("#12345"), None);
    }

    #[test]
    fn every_embedded_template_parses() {
        let p = Portal::new(PortalConfig::default(), Value::Null);
        for (name, _) in TEMPLATES {
            p.env.get_template(name).unwrap_or_else(|e| panic!("{name}: {e:#}"));
        }
    }
}

#[cfg(test)]
mod render_tests {
    use super::*;

    #[test]
    fn the_upload_report_renders() {
        let p = Portal::new(PortalConfig::default(), Value::Null);
        let ctx = serde_json::json!({
            "m": p.catalog(Lang::Zh), "r": {"slug": "x"},
            "report": {"state": "committed", "report": {"rows_read": 3, "rows_committed": 2, "rows_quarantined": 1, "table_version": 0,
                "failures": [{"rule": "id_card", "item": "sfzh", "title": "身份证号", "count": 1}]}},
            "sample": [{"line": 2, "failures": [{"rule": "id_card", "message": "bad"}], "record": {"sfzh": "1"}}],
        });
        let html = p.render("console/upload.html", ctx).unwrap_or_else(|e| panic!("{e:#}"));
        assert!(html.contains("身份证号"));
    }

    /// A template file that is not embedded would be a 500 on its page.
    #[test]
    fn every_template_file_is_embedded() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("templates");
        let mut missing = Vec::new();
        for dir in [root.clone(), root.join("console")] {
            for e in std::fs::read_dir(&dir).unwrap() {
                let path = e.unwrap().path();
                if path.extension().is_some_and(|x| x == "html") {
                    let name = path.strip_prefix(&root).unwrap().to_string_lossy().replace('\\', "/");
                    if !TEMPLATES.iter().any(|(n, _)| *n == name) {
                        missing.push(name);
                    }
                }
            }
        }
        assert!(missing.is_empty(), "not in TEMPLATES: {missing:?}");
    }
}

#[cfg(test)]
mod override_tests {
    use super::*;

    #[test]
    fn a_template_in_the_override_directory_replaces_the_embedded_one() {
        let dir = std::env::temp_dir().join(format!("citydata-tpl-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("help.html"),
            "{% extends \"base.html\" %}{% block content %}<p>泰州市数据局自定义帮助</p>{% endblock %}",
        )
        .unwrap();
        let p = Portal::new(PortalConfig { template_dir: Some(dir.clone()), ..Default::default() }, Value::Null);
        let ctx = serde_json::json!({"m": p.catalog(Lang::Zh), "site": {"name": "x"}});
        let help = p.render("help.html", ctx.clone()).unwrap();
        assert!(help.contains("泰州市数据局自定义帮助"), "the override wins");
        assert!(help.contains("<!DOCTYPE html>"), "and still extends the embedded base");
        let login = p.render("login.html", ctx).unwrap();
        assert!(login.contains("name=\"password\""), "other templates stay embedded");
        // Names that climb out of the directory are never read from disk.
        assert!(p.render("../help.html", Value::Null).is_err());
        std::fs::remove_dir_all(&dir).ok();
    }
}
