//! "Plain Chinese": what a zh page shows its reader must not contain the English codes of the
//! platform's vocabularies (masks, rules, formats, cycles, states, outcomes, table operations),
//! epoch milliseconds, or bare UUIDs. Codes may live in attributes (`value=`, `href=`,
//! `title=`) and in `<code>`/`<pre>` (item names, API examples): those are for machines and
//! developers. Shared by the HTTP sweep and the browser tests.

use citydata_domain::vocab;

/// The codes no zh page may show as text.
fn codes() -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    macro_rules! all {
        ($t:ty) => {
            out.extend(<$t>::ALL.iter().map(|v| v.as_str().to_string()))
        };
    }
    all!(vocab::ResourceClass);
    all!(vocab::ShareType);
    all!(vocab::ShareMethod);
    all!(vocab::OpenType);
    all!(vocab::UpdateCycle);
    all!(vocab::SecurityLevel);
    all!(vocab::FormatCategory);
    all!(vocab::DataType);
    all!(vocab::Sensitivity);
    all!(vocab::PublicTreatment);
    all!(vocab::ResourceState);
    for c in [
        // masks
        "chinese_name",
        "id_card",
        "mobile",
        "address",
        "bank_card",
        "email",
        "date_to_year",
        "number_range",
        "null",
        "redact",
        "pseudonym",
        "keep",
        "clear",
        // quality rules and checks
        "required",
        "regex",
        "uscc",
        "org_code",
        "region_code",
        "enum",
        "range",
        "unique_key",
        "id_card_birth_date",
        "id_card_sex",
        // outcomes and states
        "success",
        "denied",
        "failure",
        "pending",
        "approved",
        "rejected",
        "active",
        "expired",
        "revoked",
        "committed",
        "running",
        "failed",
        "interrupted",
        "superseded",
        // table operations and write modes
        "WRITE",
        "MERGE",
        "DELETE",
        "OPTIMIZE",
        "VACUUM",
        "append",
        "replace",
        "upsert",
    ] {
        out.push(c.to_string());
    }
    out.sort();
    out.dedup();
    out
}

/// The text a reader sees: tags, attributes, `<code>`, `<pre>`, `<textarea>` (the user's own
/// text), `<script>` and `<style>` removed.
pub fn visible_text(html: &str) -> String {
    let mut s = html.to_string();
    for tag in ["pre", "code", "script", "style", "title", "textarea"] {
        loop {
            let open = format!("<{tag}");
            let close = format!("</{tag}>");
            let Some(a) = s.find(&open) else { break };
            let Some(b) = s[a..].find(&close) else { break };
            s.replace_range(a..a + b + close.len(), " ");
        }
    }
    // Text marked as English (`lang="en"`: the API reference's descriptions) is not zh UI.
    while let Some(at) = s.find(" lang=\"en\"") {
        let Some(open) = s[..at].rfind('<') else { break };
        let tag: String = s[open + 1..].chars().take_while(|c| c.is_ascii_alphanumeric()).collect();
        let close = format!("</{tag}>");
        let Some(end) = s[at..].find(&close) else { break };
        s.replace_range(open..at + end + close.len(), " ");
    }
    let mut out = String::with_capacity(s.len());
    let mut in_tag = false;
    for ch in s.chars() {
        match ch {
            '<' => in_tag = true,
            '>' if in_tag => {
                in_tag = false;
                out.push(' ');
            }
            _ if !in_tag => out.push(ch),
            _ => {}
        }
    }
    let out = out
        .replace("&#x2f;", "/")
        .replace("&amp;", "&")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#x27;", "'");
    // Paths and URLs name things for machines: leave them out.
    out.split(|c: char| c.is_whitespace() || "（）()".contains(c))
        .filter(|w| !(w.starts_with('/') || w.starts_with("http://") || w.starts_with("https://")))
        .collect::<Vec<_>>()
        .join(" ")
}

fn is_word(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// Whole-word occurrences of `word` in `text`.
fn has_word(text: &str, word: &str) -> bool {
    let mut from = 0;
    while let Some(i) = text[from..].find(word) {
        let at = from + i;
        let before = text[..at].chars().next_back();
        let after = text[at + word.len()..].chars().next();
        if !before.is_some_and(is_word) && !after.is_some_and(is_word) {
            return true;
        }
        from = at + word.len();
    }
    false
}

fn uuid_like(w: &str) -> bool {
    let parts: Vec<&str> = w.split('-').collect();
    parts.len() == 5
        && [8, 4, 4, 4, 12].iter().zip(&parts).all(|(n, p)| p.len() == *n && p.chars().all(|c| c.is_ascii_hexdigit()))
}

/// What a zh page shows that it should not: raw codes, epoch milliseconds, UUIDs outside URLs.
pub fn raw_codes(html: &str) -> Vec<String> {
    let text = visible_text(html);
    let mut found = Vec::new();
    for c in codes() {
        if has_word(&text, &c) {
            let at = text.find(&c).unwrap_or(0);
            let from = text[..at].char_indices().rev().nth(30).map(|(i, _)| i).unwrap_or(0);
            let to = text[at..].char_indices().nth(30 + c.len()).map(|(i, _)| at + i).unwrap_or(text.len());
            found.push(format!("code `{c}` in “{}”", text[from..to].split_whitespace().collect::<Vec<_>>().join(" ")));
        }
    }
    for w in text.split(|c: char| c.is_whitespace() || "，。：；、（）()[]{}\"'".contains(c)) {
        if w.starts_with("http://") || w.starts_with("https://") || w.starts_with('/') {
            continue;
        }
        if w.len() == 13 && w.starts_with('1') && w.chars().all(|c| c.is_ascii_digit()) {
            found.push(format!("epoch milliseconds {w}"));
        }
        if w.len() >= 36 && w.split(|c: char| !(c.is_ascii_hexdigit() || c == '-')).any(uuid_like) {
            found.push(format!("UUID {w}"));
        }
    }
    found
}

#[test]
fn the_scanner_finds_codes_and_uuids_but_not_urls_or_attributes() {
    let bad = r#"<p>脱敏方式 id_card · WRITE · 1733212345678 · 3f1c2a9e-1b2c-4d5e-8f90-0123456789ab</p>"#;
    assert_eq!(raw_codes(bad).len(), 4, "{:?}", raw_codes(bad));
    let good = r#"<p title="id_card"><a href="/console/requests/3f1c2a9e-1b2c-4d5e-8f90-0123456789ab">身份证号</a>
        <code>sfzh</code> <pre>curl http://x/api/v1/resources/3f1c2a9e-1b2c-4d5e-8f90-0123456789ab</pre> idcard_x
        <span lang="en">query `success`, `denied`</span></p>"#;
    assert!(raw_codes(good).is_empty(), "{:?}", raw_codes(good));
}
