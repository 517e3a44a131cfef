//! 数据汇聚: taking a department's file into the resource's table — authorization, the
//! idempotency key, the ingest record and report, audit.

use crate::audit::Actor;
use crate::catalog::can_edit;
use crate::{Core, CoreError, RequestMeta};
use chrono::Utc;
use citydata_domain::audit::Outcome;
use citydata_domain::principal::Principal;
use citydata_lake::decode::Encoding;
use citydata_lake::ingest::{IngestReport, IngestSpec, Policy, Progress};
use citydata_lake::limits::DecompressLimits;
pub use citydata_lake::read::Format;
use citydata_lake::read::{self, RawSource};
use citydata_lake::table::{VersionInfo, WriteMode};
use citydata_store::{IngestRecord, IngestState, StoreError};
use serde_json::Value;
use std::io::Read;
use std::path::PathBuf;
use uuid::Uuid;

/// How to read and apply an upload (query parameters of the API, flags of the CLI).
#[derive(Debug, Clone, Default)]
pub struct IngestParams {
    pub mode: Option<String>,
    pub format: Option<String>,
    pub encoding: Option<String>,
    pub policy: Option<String>,
    pub delimiter: Option<String>,
    pub sheet: Option<String>,
    /// `false` when the file has no header row.
    pub header: Option<bool>,
    pub ignore_extra: bool,
    pub idempotency_key: Option<String>,
    /// 擦除: after a `delete` or `replace` commit, make the removed rows unrecoverable (old
    /// files, change feed and commit log removed; older versions answer `version_erased`).
    pub erase: bool,
    /// For appends of timed rows (a stream's batch): the key check reads only this window.
    pub key_range: Option<citydata_lake::table::KeyRange>,
}

/// The upload itself.
pub enum IngestBody {
    /// A stream (text formats are read as it arrives; others are spooled to a file first).
    Stream(Box<dyn Read + Send>),
    /// A file on this machine (the CLI).
    File(PathBuf),
}

struct Parsed {
    mode: WriteMode,
    format: Format,
    encoding: Encoding,
    policy: Policy,
}

fn parse_params(p: &IngestParams, file_hint: Option<&str>) -> Result<Parsed, CoreError> {
    let format_name =
        p.format.clone().or_else(|| file_hint.and_then(Format::name_from_file_name)).unwrap_or_else(|| "csv".into());
    Ok(Parsed {
        mode: WriteMode::parse(p.mode.as_deref().unwrap_or("append"))?,
        format: Format::parse(&format_name, p.delimiter.as_deref(), p.sheet.as_deref(), p.header.unwrap_or(true))?,
        encoding: Encoding::parse(p.encoding.as_deref().unwrap_or("auto"))?,
        policy: Policy::parse(p.policy.as_deref().unwrap_or("quarantine"))?,
    })
}

fn valid_key(k: &str) -> Result<(), CoreError> {
    if k.is_empty() || k.len() > 200 || k.chars().any(char::is_control) {
        return Err(citydata_domain::FieldError::new(
            "Idempotency-Key",
            "invalid_key",
            "Idempotency-Key 须为 1–200 个可见字符 / must be 1–200 visible characters",
        )
        .into());
    }
    Ok(())
}

/// Open a raw source; spooling streams that need random access into `spool`.
/// Gzip input decompressed within `limits` (other input unchanged), as a stream.
fn decompressed(r: Box<dyn Read + Send>, limits: DecompressLimits) -> Result<Box<dyn Read + Send>, CoreError> {
    Ok(Box::new(citydata_lake::limits::gunzip_limited(r, limits)?))
}

/// A file that starts with the gzip magic bytes.
fn is_gzip(path: &std::path::Path) -> bool {
    let mut head = [0u8; 2];
    std::fs::File::open(path).and_then(|mut f| f.read_exact(&mut head)).is_ok() && head == [0x1f, 0x8b]
}

/// Open a raw source; spooling streams that need random access into `spool`. Gzip input is
/// decompressed within `limits` as it is read (random-access formats are spooled
/// decompressed), and XLSX workbooks are checked against them before they are opened.
fn open_source(
    format: &Format,
    encoding: Encoding,
    body: IngestBody,
    spool: Option<&PathBuf>,
    limits: DecompressLimits,
    ingest_id: Uuid,
) -> Result<(Box<dyn RawSource>, Option<tempfile::TempPath>), CoreError> {
    let body = match body {
        IngestBody::File(p) if format.needs_file() && is_gzip(&p) => {
            let f = std::fs::File::open(&p).map_err(|e| CoreError::Input {
                code: "unreadable",
                message: format!("无法打开文件 / cannot open the file: {e}"),
                line: None,
                column: None,
            })?;
            IngestBody::Stream(Box::new(f))
        }
        other => other,
    };
    let (path, temp) = match (format.needs_file(), body) {
        (false, IngestBody::Stream(r)) => return Ok((text_source(format, encoding, decompressed(r, limits)?)?, None)),
        (false, IngestBody::File(p)) => {
            let f = std::fs::File::open(&p).map_err(|e| CoreError::Input {
                code: "unreadable",
                message: format!("无法打开文件 / cannot open the file: {e}"),
                line: None,
                column: None,
            })?;
            return Ok((text_source(format, encoding, decompressed(Box::new(f), limits)?)?, None));
        }
        (true, IngestBody::File(p)) => (p, None),
        (true, IngestBody::Stream(r)) => {
            let mut r = decompressed(r, limits)?;
            let dir = spool.cloned().unwrap_or_else(std::env::temp_dir);
            std::fs::create_dir_all(&dir).map_err(|e| CoreError::Internal(e.to_string()))?;
            // Named after the ingest, so that settling an interrupted one removes it.
            let mut f = tempfile::Builder::new()
                .prefix(&crate::ingest_lease::spool_prefix(ingest_id))
                .tempfile_in(&dir)
                .map_err(|e| CoreError::Internal(e.to_string()))?;
            std::io::copy(&mut r, &mut f).map_err(|e| match e.kind() {
                std::io::ErrorKind::FileTooLarge if citydata_lake::limits::bomb_message(&e).is_some() => {
                    CoreError::from(citydata_lake::decode::input_io_error(e))
                }
                std::io::ErrorKind::FileTooLarge => CoreError::TooLarge(e.to_string()),
                std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded => {
                    tracing::error!(error = %e, "spooling an upload failed");
                    CoreError::Storage {
                        code: "storage_full",
                        message:
                            "存储空间已满，请联系平台管理员 / the storage is full: contact the platform administrator"
                                .into(),
                        retry_after_secs: None,
                    }
                }
                _ => CoreError::Input {
                    code: "unreadable",
                    message: format!("上传中断 / the upload was interrupted: {e}"),
                    line: None,
                    column: None,
                },
            })?;
            let temp = f.into_temp_path();
            (temp.to_path_buf(), Some(temp))
        }
    };
    let src: Box<dyn RawSource> = match format {
        Format::Xlsx { sheet } => Box::new(read::xlsx_limited(&path, sheet.as_deref(), limits)?),
        Format::Parquet => Box::new(read::ParquetSource::new(&path)?),
        Format::Json => Box::new(read::json_array(&path, encoding)?),
        Format::Shapefile => Box::new(read::shapefile_zip(&path, encoding, limits)?),
        _ => unreachable!("text formats are streamed"),
    };
    Ok((src, temp))
}

fn text_source(format: &Format, encoding: Encoding, r: Box<dyn Read + Send>) -> Result<Box<dyn RawSource>, CoreError> {
    Ok(match format {
        Format::Csv { delimiter, quote, header } => {
            Box::new(read::CsvSource::new(r, encoding, *delimiter, *quote, *header)?)
        }
        Format::Ndjson => Box::new(read::NdjsonSource::new(r, encoding)?),
        _ => return Err(CoreError::Internal("not a text format".into())),
    })
}

/// The SHA-256 of a retry's body (read whole).
async fn body_digest(body: IngestBody) -> Result<String, CoreError> {
    tokio::task::spawn_blocking(move || match body {
        IngestBody::File(p) => std::fs::File::open(p).and_then(|f| crate::ingest_lease::digest_all(Box::new(f))),
        IngestBody::Stream(r) => crate::ingest_lease::digest_all(r),
    })
    .await
    .map_err(|e| CoreError::Internal(e.to_string()))?
    .map_err(|e| CoreError::Input {
        code: "unreadable",
        message: format!("上传中断 / the upload was interrupted: {e}"),
        line: None,
        column: None,
    })
}

/// May the caller see the cells of a resource's invalid rows (report samples, quarantine,
/// failure values)? The provider department's stewards and department admins, and platform
/// admins: the same people who may upload. Everyone else who sees the catalog entry gets the
/// counts, the failures per item and rule, and the line numbers, never a cell.
pub fn sees_cells(principal: Option<&Principal>, provider: &citydata_domain::dept::DeptCode) -> bool {
    // Members of the provider who maintain its data; a platform admin only as such a member
    // (admins read table data under the same rules as everyone).
    principal.is_some_and(|p| p.is_member_of(provider) && can_edit(p, provider))
}

/// An ingest record as someone outside the provider sees it: the sample keeps each row's line
/// and the items and rules that failed; cells, values and messages go; an error becomes a
/// generic sentence (a reader's message may quote the file).
pub fn redact_ingest(mut r: IngestRecord) -> IngestRecord {
    if let Some(Value::Object(report)) = r.report.as_mut()
        && let Some(Value::Array(sample)) = report.get_mut("sample")
    {
        for row in sample.iter_mut() {
            let line = row.get("line").cloned().unwrap_or(Value::Null);
            let failures: Vec<Value> = row
                .get("failures")
                .and_then(Value::as_array)
                .map(|fs| {
                    fs.iter()
                        .map(|f| serde_json::json!({"item": f.get("item"), "title": f.get("title"), "rule": f.get("rule")}))
                        .collect()
                })
                .unwrap_or_default();
            *row = serde_json::json!({"line": line, "failures": failures});
        }
    }
    if r.error.is_some() {
        r.error = Some("导入失败（详情仅数据提供部门可见）/ the ingest failed (details for the provider only)".into());
    }
    r
}

/// After an erasure the table's version is the marker commit's.
fn x_version(report: &serde_json::Map<String, Value>) -> Option<i64> {
    report.get("erasure")?.get("erased_before")?.as_i64()
}

/// An ingest as clients see it: who sent what, how it ended, its report (the store's record
/// minus what only the store needs: the node, its lease, the upload's hash).
#[derive(Debug, Clone, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct IngestView {
    pub id: Uuid,
    pub resource_id: Uuid,
    pub idempotency_key: Option<String>,
    pub actor: String,
    /// `append`, `replace`, `upsert` or `delete`.
    pub mode: String,
    /// `quarantine`, `reject` or `accept`.
    pub policy: String,
    /// `running`, `committed`, `rejected`, `failed` or `interrupted`.
    pub state: String,
    /// Rows read, committed and quarantined, failures per item and rule, a sample of failing
    /// rows (cells for the provider only), duration, the resulting table version.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub report: Option<Value>,
    pub error: Option<String>,
    pub created_at: chrono::DateTime<Utc>,
    pub finished_at: Option<chrono::DateTime<Utc>>,
}

impl From<&IngestRecord> for IngestView {
    fn from(r: &IngestRecord) -> Self {
        Self {
            id: r.id,
            resource_id: r.resource_id,
            idempotency_key: r.idempotency_key.clone(),
            actor: r.actor.clone(),
            mode: r.mode.clone(),
            policy: r.policy.clone(),
            state: r.state.as_str().to_string(),
            report: r.report.clone(),
            error: r.error.clone(),
            created_at: r.created_at,
            finished_at: r.finished_at,
        }
    }
}

/// One version of a resource's table, as clients see it.
#[derive(Debug, Clone, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TableVersionView {
    pub version: i64,
    /// When it was committed, in milliseconds since the epoch.
    pub timestamp: Option<i64>,
    /// The Delta operation (`WRITE`, `MERGE`, ...).
    pub operation: Option<String>,
    /// The ingest that made it.
    pub ingest_id: Option<String>,
    pub rows_added: Option<i64>,
}

impl From<&VersionInfo> for TableVersionView {
    fn from(v: &VersionInfo) -> Self {
        Self {
            version: v.version,
            timestamp: v.timestamp,
            operation: v.operation.clone(),
            ingest_id: v.ingest_id.clone(),
            rows_added: v.rows_added,
        }
    }
}

/// The JSON of an ingest record, with its report.
pub fn ingest_view(r: &IngestRecord) -> Value {
    serde_json::to_value(IngestView::from(r)).unwrap_or_default()
}

/// A row an ingest set aside (隔离区): why, and its original cells (the provider's eyes only).
#[derive(Debug, Clone, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct QuarantinedRow {
    pub ingest_id: String,
    /// Line (row) number in the uploaded file.
    pub line: i64,
    /// The first failing item.
    pub item: String,
    pub rule: String,
    pub message: String,
    /// Every failed check of the row.
    pub failures: Vec<QuarantineFailure>,
    /// The row's original cells by column header.
    pub record: std::collections::BTreeMap<String, Option<String>>,
}

/// One failed check of a quarantined row.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct QuarantineFailure {
    pub line: u64,
    /// Item name; absent for whole-row rules.
    pub item: Option<String>,
    pub title: Option<String>,
    /// `required`, `type`, `length`, `id_card`, `uscc`, `unique_key`, ...
    pub rule: String,
    pub message: String,
    /// The offending cell.
    pub value: Option<String>,
}

impl Core {
    /// Take an upload into a resource's table (stewards of the provider department).
    pub async fn ingest_data(
        &self,
        meta: &RequestMeta,
        principal: &Principal,
        key: &str,
        params: &IngestParams,
        body: IngestBody,
        progress: Option<Progress>,
    ) -> Result<(IngestRecord, bool), CoreError> {
        let found = self.store.find_resource(key.trim()).await?;
        let target =
            Some(format!("resource:{}", found.as_ref().map(|r| r.content.code.to_string()).unwrap_or(key.to_string())));
        let result = self.ingest_inner(principal, key, params, body, progress).await;
        let details = match &result {
            Ok((r, replayed)) => serde_json::json!({
                "ingest_id": r.id,
                "replayed": replayed,
                "state": r.state,
                "rows_committed": r.report.as_ref().and_then(|v| v.get("rows_committed")).cloned(),
                "rows_quarantined": r.report.as_ref().and_then(|v| v.get("rows_quarantined")).cloned(),
                "table_version": r.report.as_ref().and_then(|v| v.get("table_version")).cloned(),
                // Counts only (files and log entries removed), never a value.
                "erasure": r.report.as_ref().and_then(|v| v.get("erasure")).cloned(),
            }),
            Err(e) => serde_json::json!({ "error": e.code() }),
        };
        let outcome = match &result {
            Ok(_) => Outcome::Success,
            Err(CoreError::Forbidden(_) | CoreError::InsufficientScope(_) | CoreError::Unauthenticated(_)) => {
                Outcome::Denied
            }
            Err(_) => Outcome::Failure,
        };
        self.record(meta, Actor::Principal(principal), "data.ingest", target, outcome, details).await?;
        // A new version only when something was committed (a refused or wholly quarantined
        // upload leaves the table as it was).
        let committed_nothing =
            |r: &IngestRecord| r.report.as_ref().is_some_and(|v| v["rejected"] == true || v["all_quarantined"] == true);
        if let Ok((r, false)) = &result
            && !committed_nothing(r)
            && let Some(v) = r.report.as_ref().and_then(|v| v.get("table_version")).and_then(|v| v.as_i64())
            && let Err(e) = self.emit_table_version(r.resource_id, v).await
        {
            tracing::warn!(error = %e, "queueing table.version webhooks failed");
        }
        result
    }

    async fn ingest_inner(
        &self,
        principal: &Principal,
        key: &str,
        params: &IngestParams,
        body: IngestBody,
        progress: Option<Progress>,
    ) -> Result<(IngestRecord, bool), CoreError> {
        // 1. The resource, visible and editable by the caller.
        let resource = self.get_resource(Some(principal), key).await?;
        if !can_edit(principal, &resource.content.provider) {
            return Err(CoreError::forbidden());
        }
        crate::scopes::check_resource(principal, &resource)?;
        if resource.content.items.is_empty() {
            return Err(CoreError::Conflict(
                "此资源没有信息项，无法接收数据 / the resource has no items, so it cannot take data".into(),
            ));
        }
        // 2. Parameters (the format may come from the file's name).
        let file_hint = match &body {
            IngestBody::File(p) => p.file_name().map(|n| n.to_string_lossy().to_string()),
            IngestBody::Stream(_) => None,
        };
        let p = parse_params(params, file_hint.as_deref())?;
        if params.erase && !matches!(p.mode, WriteMode::Delete | WriteMode::Replace) {
            return Err(citydata_domain::FieldError::new(
                "erase",
                "erase_needs_removal",
                "erase 仅用于 mode=delete 或 mode=replace / erase applies to mode=delete or mode=replace only",
            )
            .into());
        }
        if let Some(k) = &params.idempotency_key {
            valid_key(k)?;
        }
        let lake = self.lake()?.clone();
        // 3. Idempotency: a key seen before returns the earlier ingest (the same body only), or
        // runs again when the earlier attempt was interrupted.
        if let Some(k) = &params.idempotency_key
            && let Some(mut prev) = self.store.find_ingest_by_key(resource.id, k).await?
        {
            if prev.state == IngestState::Running && prev.lease_until.is_none_or(|l| l < Utc::now()) {
                // Its node stopped: settle it now rather than wait for the sweep.
                self.settle_ingest(&prev).await?;
                prev = self.store.get_ingest(prev.id).await?.unwrap_or(prev);
            }
            match prev.state {
                IngestState::Running => {
                    return Err(CoreError::Conflict(format!(
                        "使用此 Idempotency-Key 的导入正在进行 / an ingest with this key is in progress: {}",
                        prev.id
                    )));
                }
                IngestState::Interrupted | IngestState::Failed => self.store.delete_ingest(prev.id).await?,
                _ => {
                    if let Some(first) = prev.body_sha256.clone()
                        && body_digest(body).await? != first
                    {
                        return Err(CoreError::Input {
                            code: "idempotency_key_reused",
                            message: "此 Idempotency-Key 已用于另一份不同的上传 / this Idempotency-Key was used for a different upload: use a new key".into(),
                            line: None,
                            column: None,
                        });
                    }
                    return Ok((prev, true));
                }
            }
        }
        let now = Utc::now();
        let record = IngestRecord {
            id: Uuid::now_v7(),
            resource_id: resource.id,
            idempotency_key: params.idempotency_key.clone(),
            actor: principal.username.to_string(),
            mode: p.mode.as_str().into(),
            policy: serde_json::to_value(p.policy)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default(),
            state: IngestState::Running,
            report: None,
            error: None,
            created_at: now,
            finished_at: None,
            node: Some(self.config.node_id.clone()),
            lease_until: Some(self.lease_from(now)),
            body_sha256: None,
        };
        match self.store.create_ingest(&record).await {
            Ok(()) => {}
            Err(StoreError::Conflict(_)) => {
                return Err(CoreError::Conflict(
                    "使用此 Idempotency-Key 的导入正在进行 / an ingest with this key is in progress".into(),
                ));
            }
            Err(e) => return Err(e.into()),
        }
        let _heartbeat = self.heartbeat(record.id);
        crate::ingest_lease::crash_point("ingest.started");
        let _writer = self.table_writer(resource.id).await;
        // The upload's SHA-256, recorded before the commit can happen (a file on this machine
        // is hashed first), so that a retry with the same key and another body is told apart
        // even after a crash between the commit and the end of this function.
        let file_digest = match &body {
            IngestBody::File(p) => {
                let p = p.clone();
                tokio::task::spawn_blocking(move || {
                    std::fs::File::open(&p).and_then(|f| crate::ingest_lease::digest_all(Box::new(f))).ok()
                })
                .await
                .ok()
                .flatten()
            }
            IngestBody::Stream(_) => None,
        };
        if let Some(d) = &file_digest {
            self.store.record_ingest_body(record.id, d).await?;
        }
        let (body, hasher) = match body {
            IngestBody::Stream(r) => {
                let (store, id, handle) = (self.store.clone(), record.id, tokio::runtime::Handle::current());
                // Runs on the reader's blocking thread, at the end of the upload.
                let on_end: crate::ingest_lease::OnEnd = Box::new(move |digest: &str| {
                    handle.block_on(store.record_ingest_body(id, digest)).map_err(std::io::Error::other)
                });
                let (r, h) = crate::ingest_lease::Hashing::new(r, Some(on_end));
                (IngestBody::Stream(Box::new(r)), Some(h))
            }
            IngestBody::File(p) => (IngestBody::File(p), None),
        };
        // 4. Read, validate, commit.
        let spool = self.spool_dir.clone();
        let opened = {
            let format = p.format.clone();
            let encoding = p.encoding;
            let limits = self.config.decompress;
            let id = record.id;
            tokio::task::spawn_blocking(move || open_source(&format, encoding, body, spool.as_ref(), limits, id))
                .await
                .map_err(|e| CoreError::Internal(e.to_string()))?
        };
        let spec = IngestSpec {
            resource_id: resource.id,
            items: resource.content.items.clone(),
            rules: resource.content.consistency.clone(),
            mode: p.mode,
            policy: p.policy,
            ignore_extra: params.ignore_extra,
            ingest_id: record.id,
            idempotency_key: params.idempotency_key.clone(),
            quality_rules: resource.content.quality_rules.clone(),
            references: self.reference_keys(&resource.content, resource.id).await?,
            key_range: params.key_range.clone(),
        };
        let code = resource.content.code.to_string();
        let result: Result<IngestReport, CoreError> = match opened {
            Ok((source, _temp)) => citydata_lake::ingest::ingest(&lake, spec, source, progress)
                .await
                .map_err(|e| CoreError::from(e).for_resource(&code)),
            Err(e) => Err(e),
        };
        // 4b. Erasure: only after a commit that removed rows.
        let erasure = match &result {
            Ok(r) if params.erase && !r.rejected && !r.all_quarantined => {
                let erased = lake.erase(resource.id).await.map_err(|e| CoreError::from(e).for_resource(&code));
                self.chart_cache.forget(resource.id);
                Some(erased)
            }
            _ => None,
        };
        let (result, erasure) = match erasure {
            Some(Err(e)) => (Err(e), None),
            Some(Ok(x)) => (result, Some(x)),
            None => (result, None),
        };
        crate::ingest_lease::crash_point("ingest.committed");
        // 5. Record the outcome. A failed attempt forgets its key so that it can be retried.
        let now = Utc::now();
        let digest = file_digest.or_else(|| hasher.as_ref().and_then(crate::ingest_lease::hex_digest));
        match result {
            Ok(report) => {
                if let Err(e) = self.record_quality(&resource, &report).await {
                    tracing::warn!(error = %e, resource = %code, "storing the quality report failed");
                }
                if erasure.is_some() {
                    self.forget_quality_samples(resource.id).await?;
                }
                let state = if report.rejected { IngestState::Rejected } else { IngestState::Committed };
                let mut value = serde_json::to_value(&report).map_err(|e| CoreError::Internal(e.to_string()))?;
                if let (Some(x), Value::Object(o)) = (&erasure, &mut value) {
                    let mut x = serde_json::to_value(x).unwrap_or_default();
                    if let Value::Object(m) = &mut x {
                        m.insert("rows_requested".into(), report.rows_committed.into());
                    }
                    o.insert("erasure".into(), x);
                    if let Some(v) = x_version(o) {
                        o.insert("table_version".into(), v.into());
                    }
                }
                let outcome = citydata_store::IngestOutcome {
                    state,
                    report: Some(&value),
                    error: None,
                    body_sha256: digest.as_deref(),
                    at: now,
                };
                self.store.finish_ingest(record.id, outcome).await?;
                Ok((
                    IngestRecord {
                        state,
                        report: Some(value),
                        finished_at: Some(now),
                        lease_until: None,
                        body_sha256: digest,
                        ..record
                    },
                    false,
                ))
            }
            Err(e) => {
                if record.idempotency_key.is_some() {
                    self.store.delete_ingest(record.id).await?;
                } else {
                    // Only what a client may read: an engine's text stays in the log.
                    let message = e.client_message();
                    let outcome = citydata_store::IngestOutcome {
                        state: IngestState::Failed,
                        report: None,
                        error: Some(&message),
                        body_sha256: None,
                        at: now,
                    };
                    self.store.finish_ingest(record.id, outcome).await?;
                }
                Err(e)
            }
        }
    }

    /// One ingest of a resource (whoever may see the resource).
    pub async fn get_ingest(
        &self,
        principal: Option<&Principal>,
        key: &str,
        ingest_id: &str,
    ) -> Result<IngestRecord, CoreError> {
        let resource = self.get_resource(principal, key).await?;
        let not_found = || CoreError::NotFound(format!("导入记录不存在：{ingest_id} / no such ingest"));
        let id = Uuid::parse_str(ingest_id).map_err(|_| not_found())?;
        match self.store.get_ingest(id).await? {
            Some(r) if r.resource_id == resource.id => {
                Ok(if sees_cells(principal, &resource.content.provider) { r } else { redact_ingest(r) })
            }
            _ => Err(not_found()),
        }
    }

    /// The newest ingests of a resource (whoever may see the resource; cells for the provider only).
    pub async fn list_ingests(&self, principal: Option<&Principal>, key: &str) -> Result<Vec<IngestRecord>, CoreError> {
        let resource = self.get_resource(principal, key).await?;
        let all = self.store.list_ingests(resource.id, 100).await?;
        Ok(if sees_cells(principal, &resource.content.provider) {
            all
        } else {
            all.into_iter().map(redact_ingest).collect()
        })
    }

    /// The table's versions, newest first: the provider sees its whole history, everyone else
    /// who may see the resource the current version and those within its history window.
    pub async fn table_versions(
        &self,
        principal: Option<&Principal>,
        key: &str,
    ) -> Result<Vec<VersionInfo>, CoreError> {
        let resource = self.get_resource(principal, key).await?;
        let provider = principal.is_some_and(|p| p.is_member_of(&resource.content.provider));
        self.visible_history(&resource, provider).await
    }

    /// Quarantined rows with their failures and cells (the provider's stewards and department
    /// admins, and platform admins: [`sees_cells`]).
    pub async fn quarantine(
        &self,
        principal: &Principal,
        key: &str,
        ingest_id: Option<&str>,
        limit: u32,
    ) -> Result<Vec<QuarantinedRow>, CoreError> {
        let resource = self.get_resource(Some(principal), key).await?;
        if !sees_cells(Some(principal), &resource.content.provider) {
            return Err(CoreError::forbidden());
        }
        let mut sql = String::from("SELECT ingest_id, line, item, rule, message, failures, record FROM t");
        if let Some(i) = ingest_id {
            let id = Uuid::parse_str(i).map_err(|_| {
                citydata_domain::FieldError::new("ingest_id", "invalid_id", "ingest_id 须为 UUID / must be a UUID")
            })?;
            sql.push_str(&format!(" WHERE ingest_id = '{id}'"));
        }
        sql.push_str(&format!(" ORDER BY quarantined_at DESC, line LIMIT {}", limit.clamp(1, 10_000)));
        let batches = self.lake()?.query_quarantine(resource.id, &sql).await?;
        let mut out = Vec::new();
        for b in &batches {
            let col =
                |i: usize, r: usize| arrow::util::display::array_value_to_string(b.column(i), r).unwrap_or_default();
            for r in 0..b.num_rows() {
                out.push(QuarantinedRow {
                    ingest_id: col(0, r),
                    line: col(1, r).parse::<i64>().unwrap_or(0),
                    item: col(2, r),
                    rule: col(3, r),
                    message: col(4, r),
                    failures: serde_json::from_str(&col(5, r)).unwrap_or_default(),
                    record: serde_json::from_str(&col(6, r)).unwrap_or_default(),
                });
            }
        }
        Ok(out)
    }

    /// 擦除历史 (`citydata lake erase`): make the rows that earlier commits removed from a
    /// resource's table unrecoverable — every file the current version does not reference, the
    /// change feed and the commit log before a new marker version go; older versions answer
    /// `version_erased`. For rows deleted or replaced without `erase=true`. Audited with counts,
    /// never values.
    pub async fn erase_history(
        &self,
        meta: &RequestMeta,
        principal: &Principal,
        key: &str,
    ) -> Result<citydata_lake::erase::EraseReport, CoreError> {
        let resource = self.get_resource(Some(principal), key).await?;
        let target = Some(format!("resource:{}", resource.content.code));
        let result = async {
            if !can_edit(principal, &resource.content.provider) {
                return Err(CoreError::forbidden());
            }
            let code = resource.content.code.to_string();
            let _writer = self.table_writer(resource.id).await;
            let report = self.lake()?.erase(resource.id).await.map_err(|e| CoreError::from(e).for_resource(&code))?;
            self.chart_cache.forget(resource.id);
            self.forget_quality_samples(resource.id).await?;
            Ok(report)
        }
        .await;
        let details = match &result {
            Ok(r) => serde_json::json!({
                "files_vacuumed": r.files_vacuumed,
                "change_files_removed": r.change_files_removed,
                "log_files_removed": r.log_files_removed,
                "erased_before": r.erased_before,
            }),
            Err(e) => serde_json::json!({"error": e.code()}),
        };
        let outcome = match &result {
            Ok(_) => citydata_domain::audit::Outcome::Success,
            Err(CoreError::Forbidden(_)) => citydata_domain::audit::Outcome::Denied,
            Err(_) => citydata_domain::audit::Outcome::Failure,
        };
        self.record(meta, Actor::Principal(principal), "data.erase", target, outcome, details).await?;
        result
    }

    /// Vacuum every resource table (files left by failed writes and expired versions).
    pub async fn vacuum_lake(&self, retention_hours: u64) -> Result<usize, CoreError> {
        let mut n = 0;
        for r in self.every_resource().await? {
            n += self.lake()?.vacuum(r.id, retention_hours).await?;
        }
        Ok(n)
    }

    /// Every resource of the catalog, read in pages (for sweeps over all tables).
    pub(crate) async fn every_resource(&self) -> Result<Vec<citydata_domain::resource::Resource>, CoreError> {
        let f = citydata_store::ResourceFilter::new(citydata_domain::resource::Audience::Platform);
        let mut all = Vec::new();
        loop {
            let page = self.store.list_resources(&f, 500, all.len() as u64).await?;
            if page.is_empty() {
                return Ok(all);
            }
            all.extend(page);
        }
    }
}
