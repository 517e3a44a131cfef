//! Message catalogs and language negotiation: `?lang=` (remembered in a cookie), then the
//! cookie, then `Accept-Language`, then zh-CN.

use std::collections::BTreeMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Lang {
    Zh,
    En,
}

impl Lang {
    /// The HTML `lang` attribute.
    pub fn tag(self) -> &'static str {
        match self {
            Lang::Zh => "zh-CN",
            Lang::En => "en",
        }
    }
    /// The short code used in `?lang=`.
    pub fn code(self) -> &'static str {
        match self {
            Lang::Zh => "zh",
            Lang::En => "en",
        }
    }
    pub fn other(self) -> Lang {
        match self {
            Lang::Zh => Lang::En,
            Lang::En => Lang::Zh,
        }
    }
    /// `zh`, `zh-CN`, `zh-Hans`, `en`, `en-US`, … → a language; anything else → `None`.
    pub fn parse(s: &str) -> Option<Lang> {
        let s = s.trim().to_ascii_lowercase();
        if s == "zh" || s.starts_with("zh-") || s.starts_with("zh_") {
            Some(Lang::Zh)
        } else if s == "en" || s.starts_with("en-") || s.starts_with("en_") {
            Some(Lang::En)
        } else {
            None
        }
    }
    /// The preferred supported language of an `Accept-Language` header (by q-value, then order).
    pub fn from_accept_language(h: &str) -> Option<Lang> {
        let mut best: Option<(f32, usize, Lang)> = None;
        for (i, part) in h.split(',').enumerate() {
            let mut it = part.split(';');
            let tag = it.next().unwrap_or("");
            let q =
                it.find_map(|p| p.trim().strip_prefix("q=")).and_then(|q| q.trim().parse::<f32>().ok()).unwrap_or(1.0);
            if let Some(l) = Lang::parse(tag)
                && q > 0.0
                && best.is_none_or(|(bq, bi, _)| q > bq || (q == bq && i < bi))
            {
                best = Some((q, i, l));
            }
        }
        best.map(|(_, _, l)| l)
    }
}

pub type Catalog = BTreeMap<String, String>;

const ZH: &str = include_str!("../messages/zh-CN.toml");
const EN: &str = include_str!("../messages/en.toml");

/// The two embedded catalogs. Panics only if an embedded file is not valid TOML, which the
/// unit tests rule out.
/// Chinese summaries of the API's operations for `/api-docs`, keyed `METHOD /path` (the
/// OpenAPI document's own descriptions are English).
pub fn api_summaries_zh() -> &'static Catalog {
    static ZH_API: std::sync::OnceLock<Catalog> = std::sync::OnceLock::new();
    ZH_API.get_or_init(|| toml::from_str(include_str!("../messages/api-zh.toml")).expect("api-zh.toml is valid TOML"))
}

/// The Chinese summary of one operation, when written.
pub fn api_summary_zh(method: &str, path: &str) -> Option<&'static str> {
    api_summaries_zh().get(&format!("{} {path}", method.to_uppercase())).map(String::as_str)
}

pub fn catalogs() -> (Catalog, Catalog) {
    let parse = |s: &str| -> Catalog { toml::from_str(s).expect("embedded message catalog is valid TOML") };
    (parse(ZH), parse(EN))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalogs_have_the_same_keys_and_no_empty_message() {
        let (zh, en) = catalogs();
        let zk: Vec<_> = zh.keys().collect();
        let ek: Vec<_> = en.keys().collect();
        assert_eq!(zk, ek, "zh-CN and en catalogs list the same keys");
        for (k, v) in zh.iter().chain(en.iter()) {
            assert!(!v.trim().is_empty(), "{k} is empty");
        }
    }

    #[test]
    fn every_message_a_template_uses_exists() {
        let (zh, _) = catalogs();
        let re = regex_lite_keys();
        for (name, text) in crate::render::TEMPLATES {
            for key in re(text) {
                assert!(zh.contains_key(&key), "{name} uses m.{key}, missing from the catalogs");
            }
        }
    }

    /// `m.key` references in a template.
    fn regex_lite_keys() -> impl Fn(&str) -> Vec<String> {
        |t: &str| {
            let mut out = Vec::new();
            let b = t.as_bytes();
            let mut i = 0;
            while i + 2 < b.len() {
                let boundary = i == 0 || !(b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'_' || b[i - 1] == b'.');
                if boundary && b[i] == b'm' && b[i + 1] == b'.' {
                    let start = i + 2;
                    let mut j = start;
                    while j < b.len() && (b[j].is_ascii_alphanumeric() || b[j] == b'_') {
                        j += 1;
                    }
                    if j > start {
                        out.push(t[start..j].to_string());
                    }
                    i = j;
                } else {
                    i += 1;
                }
            }
            out
        }
    }

    #[test]
    fn accept_language_picks_the_preferred_supported_tag() {
        assert_eq!(Lang::from_accept_language("en-US,en;q=0.9,zh-CN;q=0.8"), Some(Lang::En));
        assert_eq!(Lang::from_accept_language("fr;q=1, zh-CN;q=0.9, en;q=0.5"), Some(Lang::Zh));
        assert_eq!(Lang::from_accept_language("de, fr"), None);
        assert_eq!(Lang::from_accept_language("zh;q=0.2, en;q=0.2"), Some(Lang::Zh));
    }
}
