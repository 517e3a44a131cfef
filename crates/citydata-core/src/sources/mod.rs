//! 数据汇聚（定时采集）: sources that collect by themselves. A source (kind, connection,
//! schedule, target resource, mode) belongs to the target's provider department and is managed
//! by its stewards; its runs go `queued → running → succeeded | failed | aborted` on the job
//! runner ([`runner`]), and each pull goes through the same conversion, validation and
//! one-commit path as an upload ([`Core::ingest_data`]), so the ingest history, the quality
//! report, timeliness and the `table.version` webhooks follow a run exactly as an upload.
//!
//! Steps of each use case: validate the input into a [`Spec`], authorize (the provider's
//! stewards), write, audit. Secrets are sealed ([`secret`]) and never returned.

mod harvest;
mod harvest_dcat;
mod http;
mod keys;
mod mysql;
mod pg;
pub mod runner;
mod runs;
pub mod schedule;
pub(crate) mod secret;
mod validate;

use crate::audit::Actor;
use crate::{Core, CoreError, RequestMeta};
use chrono::{DateTime, SubsecRound, Utc};
use citydata_domain::audit::Outcome;
use citydata_domain::dept::DeptCode;
use citydata_domain::principal::Principal;
use citydata_domain::{FieldError, ValidationErrors};
use citydata_store::{SourceRecord, SourceRunRecord};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use uuid::Uuid;
use validate::{check_name, check_query, check_retries, nonblank, parse_schedule, take_connection};

/// The kinds implemented so far.
pub const KINDS: &[&str] = &["postgres", "mysql", "http", "ckan", "dcat"];

/// Connection settings of a source. `password` and `headers` are secrets: sealed at rest and
/// never returned.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ConnectionInput {
    /// `postgres://user:password@host:5432/db` or `mysql://user:password@host:3306/db` (a
    /// password in it is taken out and sealed).
    pub url: Option<String>,
    pub host: Option<String>,
    pub port: Option<u16>,
    pub database: Option<String>,
    pub user: Option<String>,
    /// Write-only.
    pub password: Option<String>,
    /// HTTP sources: request headers (`Authorization`, an API key); write-only.
    pub headers: Option<BTreeMap<String, String>>,
}

/// How an HTTP source pages.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Pagination {
    /// `page` (`?page=1`, 2, …), `offset` (`?offset=0`, then the rows seen) or `next` (follow
    /// the link found at `next` in each answer).
    pub kind: String,
    /// The query parameter (default `page` / `offset`).
    pub param: Option<String>,
    /// The page-size parameter and its value (e.g. `size` = 100).
    pub size_param: Option<String>,
    pub size: Option<u32>,
    /// `next`: the path of the link in the answer, e.g. `links.next`.
    pub next: Option<String>,
    /// `page`: the first page's number (default 1).
    pub start: Option<u32>,
}

/// `POST /api/v1/sources`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SourceInput {
    pub name: String,
    /// `postgres`, `mysql` (MySQL or MariaDB), `http` (data into a resource's table), `ckan` or
    /// `dcat` (a catalog harvest).
    pub kind: String,
    /// `ckan`: the remote portal's address (its CKAN API is under `/api/3/action/`); `dcat`:
    /// the catalog document's address (Turtle, RDF/XML or JSON-LD; Hydra pages are followed).
    pub url: Option<String>,
    /// `ckan`: the department the harvested entries are cataloged under (default: the
    /// caller's first department).
    pub department: Option<String>,
    /// `ckan`: the theme of remote datasets without a GB/T 21063 classification (default
    /// `urban`, 城乡建设; a non-basic theme).
    pub theme: Option<String>,
    /// `ckan` / `dcat`: remote organizations to local departments — the key is the remote's
    /// organization (CKAN `organization.name` or `.title`; DCAT `dct:publisher`'s IRI or
    /// `foaf:name`), the value a department code the caller stewards. Entries of organizations
    /// not listed go under `department`.
    pub departments: Option<BTreeMap<String, String>>,
    /// `ckan` / `dcat`: also load each new or changed dataset's CSV distribution into its
    /// table (items from the remote's `info_items`, else one per CSV column).
    pub distributions: Option<bool>,
    /// The resource (id, code or slug) whose table the source fills.
    pub resource_id: Option<String>,
    pub connection: Option<ConnectionInput>,
    /// A read-only query (its columns are matched to the items by name or title) …
    pub query: Option<String>,
    /// … or a table or view (`schema.table`).
    pub table: Option<String>,
    /// `replace` (the whole table each run) or `upsert` (by the key items; needed for
    /// `watermark` and `deleted`). Default: `upsert` with a watermark, else `replace`.
    pub mode: Option<String>,
    /// Incremental: the column that grows with every change (`updated_at`, a sequence).
    pub watermark: Option<String>,
    /// Soft deletes: a boolean column; rows where it is true are deleted by key.
    pub deleted: Option<String>,
    /// Hard deletes: compare every key of the source with the table's each run and delete
    /// the rows the source no longer has (`upsert` only; refused when it would delete more
    /// than half the table).
    pub compare_keys: Option<bool>,
    /// HTTP: `json` (default), `csv` or `xlsx` (the first sheet; a file is one request).
    pub format: Option<String>,
    /// HTTP JSON: where the records are, e.g. `data.items` (default: the answer is the list).
    pub records: Option<String>,
    /// HTTP: how to page (default: one request).
    pub pagination: Option<Pagination>,
    /// `0 */6 * * *` (cron, the platform's zone) or `every 6h`; absent: on demand only.
    pub schedule: Option<String>,
    pub enabled: Option<bool>,
    /// Retries of a failed run (0–10, default 2), with exponential backoff.
    pub max_retries: Option<u32>,
}

/// `PATCH /api/v1/sources/{id}`: the fields to change.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SourcePatch {
    pub name: Option<String>,
    /// `ckan`: the remote portal's address.
    pub url: Option<String>,
    /// `ckan`: the theme of unclassified remote datasets.
    pub theme: Option<String>,
    /// `ckan` / `dcat`: replaces the organization → department mapping (`{}` clears it).
    pub departments: Option<BTreeMap<String, String>>,
    /// `ckan` / `dcat`: load CSV distributions into tables (on or off).
    pub distributions: Option<bool>,
    /// Replaces the connection; without `password` the sealed one is kept.
    pub connection: Option<ConnectionInput>,
    pub query: Option<String>,
    pub table: Option<String>,
    pub mode: Option<String>,
    pub watermark: Option<String>,
    pub deleted: Option<String>,
    pub compare_keys: Option<bool>,
    pub format: Option<String>,
    pub records: Option<String>,
    pub pagination: Option<Pagination>,
    /// A schedule, or `""` for on demand only.
    pub schedule: Option<String>,
    pub enabled: Option<bool>,
    pub max_retries: Option<u32>,
    /// Forget the watermark: the next run reads everything again.
    #[serde(default)]
    pub reset_watermark: bool,
}

/// What a source keeps besides its record's columns (no secrets).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub(crate) struct Spec {
    pub url: Option<String>,
    pub host: Option<String>,
    pub port: Option<u16>,
    pub database: Option<String>,
    pub user: Option<String>,
    pub query: Option<String>,
    pub table: Option<String>,
    pub mode: String,
    pub watermark: Option<String>,
    pub deleted: Option<String>,
    #[serde(default)]
    pub compare_keys: bool,
    #[serde(default)]
    pub format: Option<String>,
    #[serde(default)]
    pub records: Option<String>,
    #[serde(default)]
    pub pagination: Option<Pagination>,
    /// Names of the sealed headers (their values are secret).
    #[serde(default)]
    pub header_names: Vec<String>,
    /// `ckan`: the theme of unclassified remote datasets.
    #[serde(default)]
    pub theme: Option<String>,
    /// `ckan` / `dcat`: remote organization → local department.
    #[serde(default)]
    pub departments: BTreeMap<String, String>,
    /// `ckan` / `dcat`: load CSV distributions into tables.
    #[serde(default)]
    pub distributions: bool,
}

/// The sealed part.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct Secrets {
    pub password: Option<String>,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
}

/// A connection as the API shows it: never a secret, only whether one is set.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ConnectionView {
    pub url: Option<String>,
    pub host: Option<String>,
    pub port: Option<u16>,
    pub database: Option<String>,
    pub user: Option<String>,
    pub has_password: bool,
    /// The names of the headers sent (their values are never shown).
    pub headers: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SourceView {
    pub id: Uuid,
    pub department: String,
    pub name: String,
    pub kind: String,
    pub resource_id: Option<Uuid>,
    pub connection: ConnectionView,
    pub query: Option<String>,
    pub table: Option<String>,
    pub mode: String,
    /// The watermark column.
    pub watermark: Option<String>,
    pub deleted: Option<String>,
    /// Hard deletes by a full key comparison each run.
    pub compare_keys: bool,
    pub format: Option<String>,
    pub records: Option<String>,
    pub pagination: Option<Pagination>,
    /// `ckan`: the theme of unclassified remote datasets.
    pub theme: Option<String>,
    /// `ckan` / `dcat`: remote organization → local department.
    pub departments: BTreeMap<String, String>,
    /// `ckan` / `dcat`: CSV distributions are loaded into tables.
    pub distributions: bool,
    pub schedule: Option<String>,
    pub enabled: bool,
    pub max_retries: i32,
    /// The position the last committed run reached (advanced only with a commit).
    pub watermark_value: Option<String>,
    pub next_run_at: Option<DateTime<Utc>>,
    pub consecutive_failures: i32,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// One run and its report.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RunView {
    pub id: Uuid,
    pub source_id: Uuid,
    /// `queued`, `running`, `succeeded`, `failed`, `aborted`.
    pub state: String,
    /// `manual`, `schedule`, `retry`.
    pub cause: String,
    pub attempt: i32,
    /// Counts: `rows_read`, `rows_committed`, `rows_quarantined`, `rows_deleted`,
    /// `table_version`, `ingest_ids`, `watermark`; absent until the run ends.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub report: Option<serde_json::Value>,
    /// Why it failed (or was aborted).
    pub error: Option<String>,
    pub not_before: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
}

/// `POST /api/v1/sources/{id}/run`.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RunStarted {
    pub run_id: Uuid,
    /// `queued` (or `running` when a run of this source was already under way).
    pub state: String,
}

impl From<SourceRunRecord> for RunView {
    fn from(r: SourceRunRecord) -> Self {
        Self {
            id: r.id,
            source_id: r.source_id,
            state: r.state,
            cause: r.cause,
            attempt: r.attempt,
            report: r.report,
            error: r.error,
            not_before: r.not_before,
            created_at: r.created_at,
            started_at: r.started_at,
            finished_at: r.finished_at,
        }
    }
}

pub(crate) fn spec_of(s: &SourceRecord) -> Spec {
    serde_json::from_value(s.config.clone()).unwrap_or_default()
}

pub(super) fn view(s: SourceRecord) -> SourceView {
    let spec = spec_of(&s);
    let has_password = s.secret.is_some() && s.kind != "http";
    SourceView {
        id: s.id,
        department: s.department,
        name: s.name,
        kind: s.kind,
        resource_id: s.resource_id,
        connection: ConnectionView {
            url: spec.url,
            host: spec.host,
            port: spec.port,
            database: spec.database,
            user: spec.user,
            has_password,
            headers: spec.header_names,
        },
        query: spec.query,
        table: spec.table,
        mode: spec.mode,
        watermark: spec.watermark,
        deleted: spec.deleted,
        compare_keys: spec.compare_keys,
        format: spec.format,
        records: spec.records,
        pagination: spec.pagination,
        theme: spec.theme,
        departments: spec.departments,
        distributions: spec.distributions,
        schedule: s.schedule,
        enabled: s.enabled,
        max_retries: s.max_retries,
        watermark_value: s.watermark,
        next_run_at: s.next_run_at,
        consecutive_failures: s.consecutive_failures,
        created_by: s.created_by,
        created_at: s.created_at,
        updated_at: s.updated_at,
    }
}

pub(crate) fn parse_source_id(id: &str) -> Result<Uuid, CoreError> {
    Uuid::parse_str(id.trim()).map_err(|_| CoreError::NotFound(format!("采集来源不存在 / no such source: {id}")))
}

impl Core {
    /// The server secret sources seal their secrets with.
    pub(crate) fn source_key(&self) -> &[u8] {
        &self.config.pseudonym_key
    }

    /// Create a source for a resource of a department the caller stewards.
    pub async fn create_source(
        &self,
        meta: &RequestMeta,
        principal: &Principal,
        input: SourceInput,
    ) -> Result<SourceView, CoreError> {
        // 1. Validate.
        if matches!(input.kind.trim(), "ckan" | "dcat") {
            return self.create_harvest_source(meta, principal, input).await;
        }
        let mut errs = ValidationErrors::new();
        let name = check_name(&mut errs, &input.name);
        let kind = input.kind.trim().to_string();
        if !KINDS.contains(&kind.as_str()) {
            errs.push(FieldError::new(
                "kind",
                "unsupported_kind",
                format!(
                    "kind“{kind}”暂不支持，可选：{} / kind {kind:?} is not supported yet; supported: {}",
                    KINDS.join(", "),
                    KINDS.join(", ")
                ),
            ));
        }
        let mut spec = Spec {
            query: nonblank(&input.query),
            table: nonblank(&input.table),
            watermark: nonblank(&input.watermark),
            deleted: nonblank(&input.deleted),
            compare_keys: input.compare_keys.unwrap_or(false),
            format: nonblank(&input.format),
            records: nonblank(&input.records),
            pagination: input.pagination.clone(),
            ..Spec::default()
        };
        spec.mode = nonblank(&input.mode)
            .unwrap_or_else(|| if spec.watermark.is_some() { "upsert".into() } else { "replace".into() });
        let mut secrets = Secrets::default();
        match &input.connection {
            Some(c) => take_connection(&mut errs, &kind, c, &mut spec, &mut secrets),
            None => {
                errs.push(FieldError::new("connection", "required", "connection 为必填项 / connection is required"))
            }
        }
        check_query(&mut errs, &kind, &spec);
        if input.departments.is_some() {
            errs.push(FieldError::new(
                "departments",
                "not_applicable",
                "departments 仅用于目录汇聚 / departments applies to catalog harvests only",
            ));
        }
        if input.distributions.is_some() {
            errs.push(FieldError::new(
                "distributions",
                "not_applicable",
                "distributions 仅用于目录汇聚 / distributions applies to catalog harvests only",
            ));
        }
        let (schedule, next_run_at) = parse_schedule(&mut errs, &input.schedule);
        let max_retries = check_retries(&mut errs, input.max_retries);
        let resource_key = nonblank(&input.resource_id);
        if resource_key.is_none() {
            errs.push(FieldError::new("resource_id", "required", "resource_id 为必填项 / resource_id is required"));
        }
        errs.into_result()?;
        // 2. Authorize: the resource's provider stewards it.
        let resource = self.get_resource(Some(principal), resource_key.as_deref().unwrap_or_default()).await?;
        let dept = resource.content.provider.clone();
        if !principal.can_steward(&dept) {
            self.record(
                meta,
                Actor::Principal(principal),
                "source.create",
                Some(format!("resource:{}", resource.content.code)),
                Outcome::Denied,
                serde_json::json!({}),
            )
            .await?;
            return Err(CoreError::forbidden());
        }
        let mut errs = ValidationErrors::new();
        if resource.content.items.is_empty() {
            errs.push(FieldError::new("resource_id", "no_items", "此资源没有信息项 / the resource has no items"));
        }
        if spec.mode == "upsert" && !resource.content.items.iter().any(|i| i.key) {
            errs.push(FieldError::new(
                "mode",
                "needs_key",
                "mode=upsert 需要资源有主键信息项 / mode=upsert needs key items in the resource",
            ));
        }
        if let Err(m) = self.source_address_allowed(&spec).await {
            errs.push(FieldError::new("connection", "address_not_allowed", m));
        }
        errs.into_result()?;
        // 3. Write.
        let now = Utc::now().trunc_subsecs(6);
        let id = Uuid::now_v7();
        let sealed = self.seal_secrets(id, &secrets)?;
        let s = SourceRecord {
            id,
            department: dept.to_string(),
            name,
            kind,
            resource_id: Some(resource.id),
            config: serde_json::to_value(&spec).map_err(|e| CoreError::Internal(e.to_string()))?,
            secret: sealed,
            schedule,
            enabled: input.enabled.unwrap_or(true),
            max_retries,
            watermark: None,
            next_run_at,
            consecutive_failures: 0,
            created_by: principal.username.to_string(),
            created_at: now,
            updated_at: now,
        };
        self.store.create_source(&s).await?;
        // 4. Audit (never the secret).
        self.record(
            meta,
            Actor::Principal(principal),
            "source.create",
            Some(format!("source:{}", s.id)),
            Outcome::Success,
            serde_json::json!({"name": s.name, "kind": s.kind, "resource": resource.content.code.to_string(), "schedule": s.schedule}),
        )
        .await?;
        Ok(view(s))
    }

    pub(super) fn seal_secrets(&self, id: Uuid, s: &Secrets) -> Result<Option<String>, CoreError> {
        if s.password.is_none() && s.headers.is_empty() {
            return Ok(None);
        }
        let plain = serde_json::to_string(s).map_err(|e| CoreError::Internal(e.to_string()))?;
        secret::seal(self.source_key(), id, &plain).map(Some).map_err(CoreError::Internal)
    }

    pub(crate) fn open_secrets(&self, s: &SourceRecord) -> Result<Secrets, String> {
        match &s.secret {
            None => Ok(Secrets::default()),
            Some(sealed) => {
                let plain = secret::open(self.source_key(), s.id, sealed)?;
                serde_json::from_str(&plain).map_err(|e| e.to_string())
            }
        }
    }

    /// The sources of the departments the caller stewards (platform admins: all).
    pub async fn list_sources(&self, principal: &Principal) -> Result<Vec<SourceView>, CoreError> {
        Ok(self
            .store
            .list_sources(None)
            .await?
            .into_iter()
            .filter(|s| DeptCode::parse(&s.department).is_ok_and(|d| principal.can_steward(&d)))
            .map(view)
            .collect())
    }

    /// A source the caller stewards; any other is "not found" (its existence is not told).
    pub(crate) async fn managed_source(&self, principal: &Principal, id: &str) -> Result<SourceRecord, CoreError> {
        let uid = parse_source_id(id)?;
        match self.store.get_source(uid).await? {
            Some(s) if DeptCode::parse(&s.department).is_ok_and(|d| principal.can_steward(&d)) => Ok(s),
            _ => Err(CoreError::NotFound(format!("采集来源不存在 / no such source: {id}"))),
        }
    }

    pub async fn get_source(&self, principal: &Principal, id: &str) -> Result<SourceView, CoreError> {
        Ok(view(self.managed_source(principal, id).await?))
    }

    /// Change a source; the connection is checked again, a password not given is kept.
    pub async fn update_source(
        &self,
        meta: &RequestMeta,
        principal: &Principal,
        id: &str,
        patch: SourcePatch,
    ) -> Result<SourceView, CoreError> {
        let mut s = self.managed_source(principal, id).await?;
        let mut spec = spec_of(&s);
        let mut secrets = self.open_secrets(&s).unwrap_or_default();
        let mut errs = ValidationErrors::new();
        if let Some(n) = &patch.name {
            s.name = check_name(&mut errs, n);
        }
        if let Some(u) = &patch.url {
            let c = ConnectionInput { url: Some(u.clone()), ..ConnectionInput::default() };
            take_connection(&mut errs, &s.kind, &c, &mut spec, &mut secrets);
        }
        if let Some(t) = &patch.theme {
            spec.theme = Some(harvest::check_theme(&mut errs, Some(t)));
        }
        if let Some(d) = &patch.departments {
            spec.departments = self.check_departments(&mut errs, principal, &s.kind, d).await?;
        }
        if let Some(d) = patch.distributions {
            if !matches!(s.kind.as_str(), "ckan" | "dcat") {
                errs.push(FieldError::new(
                    "distributions",
                    "not_applicable",
                    "distributions 仅用于目录汇聚 / distributions applies to catalog harvests only",
                ));
            }
            spec.distributions = d;
        }
        if let Some(c) = &patch.connection {
            let keep = secrets.password.clone();
            secrets.password = None;
            let keep_headers = std::mem::take(&mut secrets.headers);
            take_connection(&mut errs, &s.kind, c, &mut spec, &mut secrets);
            if secrets.password.is_none() {
                secrets.password = keep;
            }
            if c.headers.is_none() {
                secrets.headers = keep_headers;
                spec.header_names = secrets.headers.keys().cloned().collect();
            }
        }
        let opt = |v: &Option<String>, cur: &Option<String>| match v {
            Some(x) => nonblank(&Some(x.clone())),
            None => cur.clone(),
        };
        spec.query = opt(&patch.query, &spec.query);
        spec.table = opt(&patch.table, &spec.table);
        spec.watermark = opt(&patch.watermark, &spec.watermark);
        spec.deleted = opt(&patch.deleted, &spec.deleted);
        if let Some(c) = patch.compare_keys {
            spec.compare_keys = c;
        }
        if let Some(m) = nonblank(&patch.mode) {
            spec.mode = m;
        }
        if let Some(f) = &patch.format {
            spec.format = nonblank(&Some(f.clone()));
        }
        if let Some(r) = &patch.records {
            spec.records = nonblank(&Some(r.clone()));
        }
        if let Some(p) = &patch.pagination {
            spec.pagination = Some(p.clone());
        }
        check_query(&mut errs, &s.kind, &spec);
        if patch.schedule.is_some() {
            let (sch, next) = parse_schedule(&mut errs, &patch.schedule);
            s.schedule = sch;
            s.next_run_at = next;
        }
        if let Some(e) = patch.enabled {
            s.enabled = e;
        }
        if patch.max_retries.is_some() {
            s.max_retries = check_retries(&mut errs, patch.max_retries);
        }
        if let Err(m) = self.source_address_allowed(&spec).await {
            errs.push(FieldError::new("connection", "address_not_allowed", m));
        }
        errs.into_result()?;
        let moved = s.kind == "http" && spec.url != spec_of(&s).url;
        if patch.reset_watermark || moved || spec.watermark != spec_of(&s).watermark {
            s.watermark = None;
        }
        s.config = serde_json::to_value(&spec).map_err(|e| CoreError::Internal(e.to_string()))?;
        s.secret = self.seal_secrets(s.id, &secrets)?;
        s.updated_at = Utc::now().trunc_subsecs(6);
        if !self.store.update_source(&s).await? {
            return Err(CoreError::NotFound(format!("采集来源不存在 / no such source: {id}")));
        }
        self.record(
            meta,
            Actor::Principal(principal),
            "source.update",
            Some(format!("source:{}", s.id)),
            Outcome::Success,
            serde_json::json!({"name": s.name, "schedule": s.schedule, "enabled": s.enabled}),
        )
        .await?;
        Ok(view(s))
    }

    /// Remove a source with its run history (the data it collected stays in the table).
    pub async fn delete_source(&self, meta: &RequestMeta, principal: &Principal, id: &str) -> Result<(), CoreError> {
        let s = self.managed_source(principal, id).await?;
        if let Some(r) = self.store.active_run(s.id).await?
            && r.state == "running"
        {
            return Err(CoreError::Conflict(
                "此来源正在运行，请先中止 / the source is running: abort the run first".into(),
            ));
        }
        self.store.delete_source(s.id).await?;
        self.record(
            meta,
            Actor::Principal(principal),
            "source.delete",
            Some(format!("source:{}", s.id)),
            Outcome::Success,
            serde_json::json!({"name": s.name}),
        )
        .await?;
        Ok(())
    }
}
