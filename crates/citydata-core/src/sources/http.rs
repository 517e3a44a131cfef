//! HTTP pull: a JSON answer (records found at a path like `data.items`) or a CSV file, paged by
//! page number, offset or a next link, with the validators of the first page (`ETag`,
//! `Last-Modified`) kept as the source's watermark so that an unchanged source answers 304 and
//! commits nothing. The client is the outgoing-webhook one in kind: no proxy, no redirects,
//! every address the host resolves to checked against the webhook rule (loopback, private and
//! metadata addresses refused unless inside `webhook_allow_cidrs`), bounded time and size.
//! The records then take the upload path as NDJSON (or CSV) in one ingest.

use super::pg::{add_report, ingest_result, until_abort};
use super::runner::{AbortSignal, PullFailure, PullOutcome};
use super::{Pagination, Secrets, Spec};
use crate::ingest::{IngestBody, IngestParams};
use crate::{Core, RequestMeta};
use citydata_store::SourceRecord;
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// The most a run reads over all its pages.
pub(super) const MAX_BYTES: usize = 256 << 20;
/// The most pages a run follows.
const MAX_PAGES: usize = 10_000;
const TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

/// The first page's validators, kept as the watermark of an HTTP source.
#[derive(Debug, Default, Serialize, Deserialize, PartialEq)]
pub(super) struct Validators {
    etag: Option<String>,
    last_modified: Option<String>,
}

/// The value at a dotted path (`data.items`, `links.next`); the whole value for none.
fn at_path<'a>(v: &'a serde_json::Value, path: Option<&str>) -> Option<&'a serde_json::Value> {
    let mut cur = v;
    for part in path.unwrap_or("").split('.').filter(|p| !p.is_empty()) {
        cur = match cur {
            serde_json::Value::Object(o) => o.get(part)?,
            serde_json::Value::Array(a) => a.get(part.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    Some(cur)
}

/// `url` with `param=value` set (replacing an earlier value).
fn with_param(url: &url::Url, param: &str, value: &str) -> url::Url {
    let pairs: Vec<(String, String)> =
        url.query_pairs().filter(|(k, _)| k != param).map(|(k, v)| (k.into(), v.into())).collect();
    let mut u = url.clone();
    u.query_pairs_mut().clear().extend_pairs(pairs).append_pair(param, value);
    u
}

fn send_reason(e: &reqwest::Error) -> String {
    let mut src: Option<&dyn std::error::Error> = Some(e);
    while let Some(s) = src {
        if s.to_string().contains("address not allowed") {
            return "地址指向内部网络，未被允许 / the address points into an internal network and is not allowed"
                .into();
        }
        src = s.source();
    }
    if e.is_timeout() {
        "请求超时 / the request timed out".into()
    } else {
        "无法连接 HTTP 来源（连接被拒绝或不可达） / cannot connect to the HTTP source (refused or unreachable)".into()
    }
}

impl Core {
    pub(super) fn source_http_client(&self) -> Result<reqwest::Client, String> {
        reqwest::Client::builder()
            .timeout(TIMEOUT)
            .connect_timeout(std::time::Duration::from_secs(10))
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .dns_resolver(Arc::new(crate::webhook_guard::GuardedResolver {
                allow: Arc::new(self.config.webhook_allow.clone()),
            }))
            .build()
            .map_err(|_| "HTTP 客户端无法创建 / the HTTP client could not be built".to_string())
    }

    /// One GET, its body read up to what is left of the run's byte budget.
    pub(super) async fn fetch_page(
        &self,
        client: &reqwest::Client,
        url: &url::Url,
        secrets: &Secrets,
        validators: Option<&Validators>,
        budget: &mut usize,
    ) -> Result<Option<(reqwest::header::HeaderMap, Vec<u8>)>, String> {
        if crate::webhook_guard::literal_refused(url, &self.config.webhook_allow) {
            return Err(
                "地址指向内部网络，未被允许 / the address points into an internal network and is not allowed".into()
            );
        }
        let mut req = client.get(url.clone());
        for (k, v) in &secrets.headers {
            req = req.header(k, v);
        }
        if let Some(v) = validators {
            if let Some(e) = &v.etag {
                req = req.header(reqwest::header::IF_NONE_MATCH, e);
            }
            if let Some(m) = &v.last_modified {
                req = req.header(reqwest::header::IF_MODIFIED_SINCE, m);
            }
        }
        let resp = req.send().await.map_err(|e| send_reason(&e))?;
        if resp.status() == reqwest::StatusCode::NOT_MODIFIED && validators.is_some() {
            return Ok(None);
        }
        if !resp.status().is_success() {
            return Err(format!(
                "HTTP 来源回答 {} / the HTTP source answered {}",
                resp.status().as_u16(),
                resp.status()
            ));
        }
        let headers = resp.headers().clone();
        let mut body = Vec::new();
        let mut stream = resp.bytes_stream();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| send_reason(&e))?;
            if chunk.len() > *budget {
                return Err(format!(
                    "HTTP 来源的数据超过 {} MiB 上限 / the HTTP source sent more than {} MiB",
                    MAX_BYTES >> 20,
                    MAX_BYTES >> 20
                ));
            }
            *budget -= chunk.len();
            body.extend_from_slice(&chunk);
        }
        Ok(Some((headers, body)))
    }

    pub(crate) async fn pull_http(
        &self,
        s: &SourceRecord,
        spec: &Spec,
        secrets: &Secrets,
        abort: &Arc<AbortSignal>,
    ) -> Result<PullOutcome, PullFailure> {
        let (resource, principal) = self.run_context(s).await?;
        let first = spec
            .url
            .as_deref()
            .and_then(|u| url::Url::parse(u).ok())
            .ok_or_else(|| "来源没有有效的 URL / the source has no valid URL".to_string())?;
        self.source_address_allowed(spec).await?;
        let client = self.source_http_client()?;
        // A whole file (CSV or XLSX) is one request; JSON pages.
        let file_format = spec.format.as_deref().filter(|f| matches!(*f, "csv" | "xlsx"));
        let csv = file_format.is_some();
        let previous: Option<Validators> = s.watermark.as_deref().and_then(|w| serde_json::from_str(w).ok());
        let paging = spec.pagination.clone().filter(|_| !csv);
        let size = paging.as_ref().and_then(|p| p.size);
        let page_url = |p: &Pagination, n: u64| -> url::Url {
            let mut u = with_param(&first, p.param.as_deref().unwrap_or(&p.kind), &n.to_string());
            if let (Some(sp), Some(sz)) = (&p.size_param, p.size) {
                u = with_param(&u, sp, &sz.to_string());
            }
            u
        };
        let mut url = match &paging {
            Some(p) if p.kind == "page" => page_url(p, u64::from(p.start.unwrap_or(1))),
            Some(p) if p.kind == "offset" => page_url(p, 0),
            _ => first.clone(),
        };
        let mut budget = MAX_BYTES;
        let mut body: Vec<u8> = Vec::new();
        let mut rows: u64 = 0;
        let mut validators = Validators::default();
        let mut page_no = u64::from(paging.as_ref().and_then(|p| p.start).unwrap_or(1));
        for i in 0..MAX_PAGES {
            let conditional = if i == 0 { previous.as_ref() } else { None };
            let fetched = until_abort(abort, self.fetch_page(&client, &url, secrets, conditional, &mut budget)).await?;
            let Some((headers, page)) = fetched else {
                // 304: unchanged since the last commit.
                let report = serde_json::json!({
                    "rows_read": 0, "rows_committed": 0, "rows_quarantined": 0, "rows_deleted": 0,
                    "table_version": null, "ingest_ids": [], "unchanged": true, "not_modified": true,
                });
                return Ok(PullOutcome { report, watermark: s.watermark.clone() });
            };
            if i == 0 {
                let h =
                    |n: reqwest::header::HeaderName| headers.get(n).and_then(|v| v.to_str().ok()).map(str::to_string);
                validators =
                    Validators { etag: h(reqwest::header::ETAG), last_modified: h(reqwest::header::LAST_MODIFIED) };
            }
            if csv {
                body = page;
                break;
            }
            let doc: serde_json::Value = serde_json::from_slice(&page).map_err(|_| {
                format!("HTTP 来源的回答不是 JSON（{url}） / the HTTP source's answer is not JSON ({url})")
            })?;
            let records = at_path(&doc, spec.records.as_deref()).and_then(|v| v.as_array()).ok_or_else(|| {
                let at = spec.records.as_deref().unwrap_or("(根)");
                format!("回答中“{at}”处没有记录列表 / the answer has no list of records at {at}")
            })?;
            for r in records {
                if !r.is_object() {
                    return Err("记录须为 JSON 对象 / each record must be a JSON object".to_string().into());
                }
                body.extend_from_slice(r.to_string().as_bytes());
                body.push(b'\n');
            }
            rows += records.len() as u64;
            let n = records.len() as u64;
            url = match &paging {
                None => break,
                Some(_) if n == 0 || size.is_some_and(|sz| n < u64::from(sz)) => break,
                Some(p) if p.kind == "page" => {
                    page_no += 1;
                    page_url(p, page_no)
                }
                Some(p) if p.kind == "offset" => page_url(p, rows),
                Some(p) => match at_path(&doc, p.next.as_deref()).and_then(|v| v.as_str()) {
                    Some(next) if !next.is_empty() => url
                        .join(next)
                        .map_err(|_| format!("下一页链接无效：{next} / the next link is not valid: {next}"))?,
                    _ => break,
                },
            };
            if i + 1 == MAX_PAGES {
                return Err(format!("分页超过 {MAX_PAGES} 页 / more than {MAX_PAGES} pages").into());
            }
        }
        let mut report = serde_json::json!({
            "rows_read": 0, "rows_committed": 0, "rows_quarantined": 0, "rows_deleted": 0,
            "table_version": null, "ingest_ids": [], "unchanged": false, "pages_bytes": MAX_BYTES - budget,
        });
        if body.is_empty() || (!csv && rows == 0) {
            report["unchanged"] = true.into();
        } else {
            let params = IngestParams {
                mode: Some(spec.mode.clone()),
                format: Some(file_format.unwrap_or("ndjson").to_string()),
                ..IngestParams::default()
            };
            let meta = RequestMeta::new(Some(format!("source-{}", s.id)), None);
            let ingested = self
                .ingest_data(
                    &meta,
                    &principal,
                    &resource.id.to_string(),
                    &params,
                    IngestBody::Stream(Box::new(std::io::Cursor::new(body))),
                    None,
                )
                .await;
            add_report(&mut report, ingest_result(ingested), "rows_committed")?;
        }
        let watermark =
            (validators != Validators::default()).then(|| serde_json::to_string(&validators).unwrap_or_default());
        Ok(PullOutcome { report, watermark })
    }
}
