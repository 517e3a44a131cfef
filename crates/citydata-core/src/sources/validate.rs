//! Checking a source's input into a [`Spec`] and its secrets: every problem a
//! `FieldError` naming its field.

use super::schedule::Schedule;
use super::{ConnectionInput, Secrets, Spec};
use chrono::{DateTime, SubsecRound, Utc};
use citydata_domain::{FieldError, ValidationErrors};

/// A plain SQL identifier, optionally schema-qualified when `qualified`.
pub(crate) fn valid_ident(s: &str, qualified: bool) -> bool {
    let part = |p: &str| {
        !p.is_empty()
            && p.len() <= 63
            && p.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && p.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
    };
    let parts: Vec<&str> = s.split('.').collect();
    match parts.len() {
        1 => part(parts[0]),
        2 if qualified => part(parts[0]) && part(parts[1]),
        _ => false,
    }
}

pub(super) fn nonblank(s: &Option<String>) -> Option<String> {
    s.as_deref().map(str::trim).filter(|s| !s.is_empty()).map(str::to_string)
}

/// Check the connection into the spec and the secrets (the URL's password moves to secrets).
pub(super) fn take_connection(
    errs: &mut ValidationErrors,
    kind: &str,
    c: &ConnectionInput,
    spec: &mut Spec,
    secrets: &mut Secrets,
) {
    spec.url = None;
    if matches!(kind, "http" | "ckan" | "dcat") {
        match nonblank(&c.url).map(|u| (url::Url::parse(&u), u)) {
            Some((Ok(u), _)) if matches!(u.scheme(), "http" | "https") && u.host_str().is_some_and(|h| !h.is_empty()) => {
                if !u.username().is_empty() || u.password().is_some() {
                    errs.push(FieldError::new(
                        "connection.url",
                        "invalid_url",
                        "connection.url 不能包含用户名或密码（请用 headers） / connection.url must not carry credentials (use headers)",
                    ));
                }
                spec.url = Some(u.to_string());
            }
            _ => errs.push(FieldError::new(
                "connection.url",
                "invalid_url",
                "connection.url 须为 http:// 或 https:// 开头的完整地址 / connection.url must be an absolute http(s) URL",
            )),
        }
        if let Some(h) = &c.headers {
            for (name, value) in h {
                if reqwest::header::HeaderName::from_bytes(name.as_bytes()).is_err()
                    || reqwest::header::HeaderValue::from_str(value).is_err()
                {
                    errs.push(FieldError::new(
                        "connection.headers",
                        "invalid_value",
                        format!("请求头“{name}”无效 / header {name:?} is not valid"),
                    ));
                }
            }
            secrets.headers = h.clone();
        }
        spec.header_names = secrets.headers.keys().cloned().collect();
        return;
    }
    let schemes: &[&str] = if kind == "mysql" { &["mysql", "mariadb"] } else { &["postgres", "postgresql"] };
    if let Some(raw) = nonblank(&c.url) {
        match url::Url::parse(&raw) {
            Ok(mut u) if schemes.contains(&u.scheme()) && u.host_str().is_some() => {
                if let Some(p) = u.password() {
                    secrets.password = Some(percent_decode(p).unwrap_or_else(|| p.to_string()));
                    let _ = u.set_password(None);
                }
                spec.url = Some(u.to_string());
            }
            _ => errs.push(FieldError::new(
                "connection.url",
                "invalid_url",
                format!(
                    "connection.url 须为 {0}://用户@主机:端口/数据库 / connection.url must be {0}://user@host:port/database",
                    schemes[0]
                ),
            )),
        }
    }
    spec.host = nonblank(&c.host);
    spec.port = c.port;
    spec.database = nonblank(&c.database);
    spec.user = nonblank(&c.user);
    if let Some(p) = &c.password {
        secrets.password = Some(p.clone());
    }
    // A URL that was given but refused has its own message above.
    if nonblank(&c.url).is_none() && (spec.host.is_none() || spec.database.is_none()) {
        errs.push(FieldError::new(
            "connection",
            "required",
            "connection 须给出 url，或 host 与 database / connection needs url, or host and database",
        ));
    }
}

pub(super) fn percent_decode(s: &str) -> Option<String> {
    let mut out = Vec::new();
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            let h = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(h, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// The query part of a spec and the mode rules.
pub(super) fn check_query(errs: &mut ValidationErrors, kind: &str, spec: &Spec) {
    if matches!(kind, "ckan" | "dcat") {
        return;
    }
    if kind == "http" {
        check_http(errs, spec);
    } else {
        check_sql(errs, spec);
    }
}

pub(super) fn check_http(errs: &mut ValidationErrors, spec: &Spec) {
    if spec.compare_keys {
        errs.push(FieldError::new(
            "compare_keys",
            "not_for_http",
            "compare_keys 仅适用于数据库来源 / compare_keys applies to database sources only",
        ));
    }
    if !matches!(spec.format.as_deref().unwrap_or("json"), "json" | "csv" | "xlsx") {
        errs.push(FieldError::new(
            "format",
            "invalid_value",
            "format 须为 json、csv 或 xlsx / format must be json, csv or xlsx",
        ));
    }
    if let Some(p) = &spec.pagination {
        let ok = match p.kind.as_str() {
            "page" | "offset" => true,
            "next" => p.next.as_deref().is_some_and(|n| !n.trim().is_empty()),
            _ => false,
        };
        if !ok {
            errs.push(FieldError::new(
                "pagination",
                "invalid_value",
                "pagination.kind 须为 page、offset 或 next（next 须给出链接路径 next） / pagination.kind must be page, offset or next (with the link's path in next)",
            ));
        }
    }
    for (field, v) in
        [("query", &spec.query), ("table", &spec.table), ("watermark", &spec.watermark), ("deleted", &spec.deleted)]
    {
        if v.is_some() {
            errs.push(FieldError::new(
                field,
                "not_for_http",
                format!("{field} 不适用于 HTTP 来源 / {field} does not apply to an HTTP source"),
            ));
        }
    }
    if !matches!(spec.mode.as_str(), "replace" | "upsert") {
        errs.push(FieldError::new(
            "mode",
            "invalid_value",
            format!("mode“{}”须为 replace 或 upsert / mode must be replace or upsert", spec.mode),
        ));
    }
}

pub(super) fn check_sql(errs: &mut ValidationErrors, spec: &Spec) {
    if spec.format.is_some() || spec.records.is_some() || spec.pagination.is_some() {
        errs.push(FieldError::new("format", "not_for_database", "format、records、pagination 仅适用于 HTTP 来源 / format, records and pagination apply to HTTP sources only"));
    }
    match (&spec.query, &spec.table) {
        (Some(_), Some(_)) | (None, None) => errs.push(FieldError::new(
            "query",
            "required",
            "须给出 query 或 table 之一 / give exactly one of query and table",
        )),
        (None, Some(t)) if !valid_ident(t, true) => errs.push(FieldError::new(
            "table",
            "invalid_value",
            format!("table“{t}”须为表名或 模式.表名 / table {t:?} must be a table name or schema.table"),
        )),
        _ => {}
    }
    for (field, v) in [("watermark", &spec.watermark), ("deleted", &spec.deleted)] {
        if let Some(c) = v
            && !valid_ident(c, false)
        {
            errs.push(FieldError::new(
                field,
                "invalid_value",
                format!("{field}“{c}”须为列名 / {field} {c:?} must be a column name"),
            ));
        }
    }
    if !matches!(spec.mode.as_str(), "replace" | "upsert") {
        errs.push(FieldError::new(
            "mode",
            "invalid_value",
            format!("mode“{}”须为 replace 或 upsert / mode must be replace or upsert", spec.mode),
        ));
    } else if spec.mode == "replace" && spec.compare_keys {
        errs.push(FieldError::new(
            "compare_keys",
            "needs_upsert",
            "比对主键删除须使用 mode=upsert / comparing keys needs mode=upsert",
        ));
    } else if spec.mode == "replace" && spec.watermark.is_some() {
        errs.push(FieldError::new(
            "watermark",
            "needs_upsert",
            "按水位增量采集须使用 mode=upsert / an incremental watermark needs mode=upsert",
        ));
    }
}

pub(super) fn check_name(errs: &mut ValidationErrors, name: &str) -> String {
    let n = name.trim().to_string();
    if n.is_empty() || n.chars().count() > 200 {
        errs.push(FieldError::new("name", "invalid_value", "name 须为 1–200 个字符 / name must be 1–200 characters"));
    }
    n
}

pub(super) fn check_retries(errs: &mut ValidationErrors, r: Option<u32>) -> i32 {
    match r {
        Some(r) if r > 10 => {
            errs.push(FieldError::new(
                "max_retries",
                "invalid_value",
                "max_retries 须在 0–10 之间 / max_retries must be 0–10",
            ));
            0
        }
        Some(r) => r as i32,
        None => 2,
    }
}

pub(super) fn parse_schedule(
    errs: &mut ValidationErrors,
    s: &Option<String>,
) -> (Option<String>, Option<DateTime<Utc>>) {
    match nonblank(s) {
        None => (None, None),
        Some(text) => match Schedule::parse(&text) {
            Ok(sch) => (Some(text), sch.next_after(Utc::now()).map(|t| t.trunc_subsecs(6))),
            Err(e) => {
                errs.push(e);
                (None, None)
            }
        },
    }
}
