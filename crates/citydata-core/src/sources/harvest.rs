//! Catalog harvest (目录汇聚): another portal's catalog kept in step with ours. A `ckan` source
//! reads the whole of the remote catalog through `package_search` (pages of 1,000, oldest
//! change first), all pages before anything is written, so that a document that does not
//! parse fails the run with nothing changed. Then each remote dataset is matched to its local
//! entry by the remote's stable identifier (the package `id`, kept in `harvest_records`):
//!
//! - new → a catalog entry created under the source's department and published;
//! - `metadata_modified` changed → the entry updated (one revision with the changed elements),
//!   and published again if it had been withdrawn;
//! - unchanged → nothing written (a harvest of an unchanged catalog writes nothing);
//! - listed before, gone now → the entry withdrawn (deletions propagate), published again if
//!   it comes back.
//!
//! The GB/T 21063 elements come from the package's `extras` when the remote is a citydata (or
//! speaks its extras); a plain CKAN's dataset becomes a 部门信息资源 under the source's `theme`
//! (default 城乡建设), 无条件共享 and 无条件开放 (it was open on the remote), 不定期, with its
//! tags, licence and maintainer. Every entry is written through the catalog's use cases as the
//! source's owner, so validation, revisions, audit and search are the same as by hand; an entry
//! the catalog refuses is reported with its reason and the run goes on.

use super::pg::until_abort;
use super::runner::{AbortSignal, PullFailure, PullOutcome};
use super::validate::{check_name, check_retries, parse_schedule, take_connection};
use super::{ConnectionInput, Secrets, SourceInput, SourceView, Spec, view};
use crate::audit::Actor;
use crate::{Core, CoreError, RequestMeta};
use chrono::{SubsecRound, Utc};
use citydata_domain::audit::Outcome;
use citydata_domain::dept::DeptCode;
use citydata_domain::principal::Principal;
use citydata_domain::resource::ResourceInput;
use citydata_domain::vocab::ResourceState;
use citydata_domain::{FieldError, ValidationErrors};
use citydata_store::{HarvestRecord, SourceRecord};
use serde_json::{Value, json};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use uuid::Uuid;

/// Organizations one harvest maps to departments, at most.
const MAX_MAPPED: usize = 500;

/// The local department of a remote dataset: its organization's mapping, else `fallback`.
fn department_of<'a>(pkg: &Value, map: &'a std::collections::BTreeMap<String, String>, fallback: &'a str) -> &'a str {
    let org = &pkg["organization"];
    [text(&org["name"]), text(&org["title"])]
        .into_iter()
        .flatten()
        .find_map(|o| map.get(&o))
        .map_or(fallback, String::as_str)
}

/// Datasets asked per `package_search` page (CKAN's usual ceiling).
const PAGE: usize = 1000;
/// The most datasets one harvest reads.
const MAX_DATASETS: usize = 100_000;

/// One remote dataset, as read (a CKAN package, or a DCAT dataset in that shape).
#[derive(Debug)]
pub(super) struct Remote {
    pub(super) id: String,
    pub(super) modified: Option<String>,
    pub(super) url: Option<String>,
    pub(super) package: Value,
}

/// A package with an id and a title as a [`Remote`].
pub(super) fn remote_of(p: Value) -> Result<Remote, String> {
    let id = text(&p["id"]).ok_or_else(|| "有数据集没有 id / a dataset has no id".to_string())?;
    if text(&p["title"]).or_else(|| text(&p["name"])).is_none() {
        return Err(format!("数据集 {id} 没有标题 / dataset {id} has no title"));
    }
    Ok(Remote {
        modified: text(&p["metadata_modified"]),
        url: text(&p["url"]).filter(|u| u.starts_with("http://") || u.starts_with("https://")),
        package: p,
        id,
    })
}

fn extras(pkg: &Value) -> HashMap<String, String> {
    pkg["extras"]
        .as_array()
        .map(|a| {
            a.iter().filter_map(|e| Some((e["key"].as_str()?.to_string(), e["value"].as_str()?.to_string()))).collect()
        })
        .unwrap_or_default()
}

fn text(v: &Value) -> Option<String> {
    v.as_str().map(str::trim).filter(|s| !s.is_empty()).map(str::to_string)
}

/// A remote package as our catalog's input (no code, slug or provider: those are local).
pub(crate) fn package_input(pkg: &Value, department: &str, theme: &str) -> ResourceInput {
    let x = extras(pkg);
    let get = |k: &str| x.get(k).map(|s| s.trim().to_string()).filter(|s| !s.is_empty());
    let title = text(&pkg["title"]).or_else(|| text(&pkg["name"])).unwrap_or_default();
    let mut input = ResourceInput {
        name: Some(title.clone()),
        summary: Some(text(&pkg["notes"]).unwrap_or(title)),
        provider: Some(department.to_string()),
        update_cycle: Some(get("update_cycle").unwrap_or_else(|| "irregular".into())),
        security_level: get("security_level"),
        tags: pkg["tags"]
            .as_array()
            .map(|a| a.iter().filter_map(|t| text(&t["name"])).take(50).collect())
            .unwrap_or_default(),
        license: text(&pkg["license_id"]).filter(|l| l != "notspecified"),
        contact: text(&pkg["maintainer"]),
        regions: get("regions").map(|r| r.split(',').map(|s| s.trim().to_string()).collect()).unwrap_or_default(),
        ..ResourceInput::default()
    };
    // Classification: the remote's when it is given whole, else 部门信息资源 under `theme`.
    let (class, th) = match (get("classification_class"), get("classification_theme")) {
        (Some(c), Some(t)) => (c, t),
        _ => ("departmental".into(), theme.to_string()),
    };
    input.classification = Some(citydata_domain::resource::ClassificationInput { class: Some(class), theme: Some(th) });
    let res_format = pkg["resources"].as_array().and_then(|a| a.iter().find_map(|r| text(&r["format"])));
    input.format = Some(citydata_domain::resource::FormatInput {
        category: Some(get("format_category").unwrap_or_else(|| "electronic_file".into())),
        kind: get("format_type").or(res_format.map(|f| f.to_lowercase())),
    });
    input.share = Some(citydata_domain::resource::ShareInput {
        kind: Some(get("share_type").unwrap_or_else(|| "unconditional".into())),
        conditions: get("share_conditions"),
        method: get("share_method"),
    });
    input.open = Some(citydata_domain::resource::OpenInput {
        kind: Some(get("open_type").unwrap_or_else(|| "unconditional".into())),
        conditions: get("open_conditions"),
    });
    if let Some(items) = get("info_items").and_then(|s| serde_json::from_str(&s).ok()) {
        input.items = items;
    }
    input
}

/// The datasets of one `package_search` answer, and the total the remote reports.
fn parse_page(doc: &Value) -> Result<(u64, Vec<Remote>), String> {
    let bad = || "CKAN 的回答不是 package_search 结果 / the CKAN answer is not a package_search result".to_string();
    if doc["success"] != json!(true) {
        return Err(bad());
    }
    let count = doc["result"]["count"].as_u64().ok_or_else(bad)?;
    let results = doc["result"]["results"].as_array().ok_or_else(bad)?;
    let out = results.iter().map(|p| remote_of(p.clone())).collect::<Result<Vec<_>, _>>()?;
    Ok((count, out))
}

/// A theme for unclassified remote datasets: a known, non-basic one (they become 部门信息资源).
pub(super) fn check_theme(errs: &mut ValidationErrors, t: Option<&String>) -> String {
    let t = t.map(|t| t.trim()).filter(|t| !t.is_empty()).unwrap_or(DEFAULT_THEME);
    match citydata_domain::vocab::theme(t) {
        Some(th) if !th.basic => th.code.to_string(),
        _ => {
            errs.push(FieldError::new(
                "theme",
                "unknown_theme",
                format!("theme“{t}”须为非基础库的主题（如 urban、transport） / theme {t:?} must be a non-basic theme (e.g. urban, transport)"),
            ));
            DEFAULT_THEME.into()
        }
    }
}

impl Core {
    /// `POST /api/v1/sources` with `"kind": "ckan" | "dcat"`: a harvest of another portal's catalog into
    /// a department the caller stewards.
    pub(super) async fn create_harvest_source(
        &self,
        meta: &RequestMeta,
        principal: &Principal,
        input: SourceInput,
    ) -> Result<SourceView, CoreError> {
        let mut errs = ValidationErrors::new();
        let name = check_name(&mut errs, &input.name);
        let kind = input.kind.trim().to_string();
        let mut spec = Spec { mode: "harvest".into(), ..Spec::default() };
        let url = input.url.clone().or_else(|| input.connection.as_ref().and_then(|c| c.url.clone()));
        if url.as_deref().is_none_or(|u| u.trim().is_empty()) {
            errs.push(FieldError::new("url", "required", "url 为必填项 / url is required"));
        } else {
            let c = ConnectionInput { url, ..ConnectionInput::default() };
            let mut sub = ValidationErrors::new();
            take_connection(&mut sub, &kind, &c, &mut spec, &mut Secrets::default());
            for mut e in sub.0 {
                e.field = "url".into();
                errs.push(e);
            }
        }
        spec.theme = Some(check_theme(&mut errs, input.theme.as_ref()));
        if let Some(d) = &input.departments {
            spec.departments = self.check_departments(&mut errs, principal, &kind, d).await?;
        }
        spec.distributions = input.distributions.unwrap_or(false);
        for (field, set) in [
            ("resource_id", input.resource_id.is_some()),
            ("query", input.query.is_some()),
            ("table", input.table.is_some()),
            ("watermark", input.watermark.is_some()),
        ] {
            if set {
                errs.push(FieldError::new(
                    field,
                    "not_applicable",
                    format!("目录汇聚不使用 {field} / a catalog harvest has no {field}"),
                ));
            }
        }
        let (schedule, next_run_at) = parse_schedule(&mut errs, &input.schedule);
        let max_retries = check_retries(&mut errs, input.max_retries);
        let dept = match input.department.as_deref().map(str::trim).filter(|d| !d.is_empty()) {
            Some(d) => match DeptCode::parse(d) {
                Ok(d) => Some(d),
                Err(_) => {
                    errs.push(FieldError::new(
                        "department",
                        "unknown_department",
                        format!("部门代码无效：{d} / not a department code: {d}"),
                    ));
                    None
                }
            },
            None => principal.primary_department().cloned(),
        };
        errs.into_result()?;
        let Some(dept) = dept.filter(|d| principal.can_steward(d)) else {
            self.record(
                meta,
                Actor::Principal(principal),
                "source.create",
                None,
                Outcome::Denied,
                json!({"kind": "ckan"}),
            )
            .await?;
            return Err(CoreError::forbidden());
        };
        if self.store.get_department(&dept).await?.is_none() {
            return Err(ValidationErrors::from(FieldError::new(
                "department",
                "unknown_department",
                format!("部门不存在：{dept} / no such department: {dept}"),
            ))
            .into());
        }
        let mut errs = ValidationErrors::new();
        if let Err(m) = self.source_address_allowed(&spec).await {
            errs.push(FieldError::new("url", "address_not_allowed", m));
        }
        errs.into_result()?;
        let now = Utc::now().trunc_subsecs(6);
        let s = SourceRecord {
            id: Uuid::now_v7(),
            department: dept.to_string(),
            name,
            kind: kind.clone(),
            resource_id: None,
            config: serde_json::to_value(&spec).map_err(|e| CoreError::Internal(e.to_string()))?,
            secret: None,
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
        self.record(
            meta,
            Actor::Principal(principal),
            "source.create",
            Some(format!("source:{}", s.id)),
            Outcome::Success,
            json!({"name": s.name, "kind": kind, "url": spec.url, "department": s.department, "schedule": s.schedule}),
        )
        .await?;
        Ok(view(s))
    }

    /// The organization → department mapping of a harvest: each department known and
    /// stewarded by the caller, each organization named; problems under `departments`.
    pub(super) async fn check_departments(
        &self,
        errs: &mut ValidationErrors,
        principal: &Principal,
        kind: &str,
        map: &std::collections::BTreeMap<String, String>,
    ) -> Result<std::collections::BTreeMap<String, String>, CoreError> {
        let mut out = std::collections::BTreeMap::new();
        if !matches!(kind, "ckan" | "dcat") {
            errs.push(FieldError::new(
                "departments",
                "not_applicable",
                "departments 仅用于目录汇聚 / departments applies to catalog harvests only",
            ));
            return Ok(out);
        }
        if map.len() > MAX_MAPPED {
            errs.push(FieldError::new(
                "departments",
                "too_many",
                format!("departments 最多 {MAX_MAPPED} 项 / departments has at most {MAX_MAPPED} entries"),
            ));
            return Ok(out);
        }
        for (org, code) in map {
            let org = org.trim();
            if org.is_empty() || org.chars().count() > 200 {
                errs.push(FieldError::new(
                    "departments",
                    "invalid_value",
                    "departments 的机构名须为 1–200 个字符 / an organization in departments must be 1–200 characters",
                ));
                continue;
            }
            let known = match DeptCode::parse(code.trim()) {
                Ok(d) => self.store.get_department(&d).await?.map(|_| d),
                Err(_) => None,
            };
            match known {
                None => errs.push(FieldError::new(
                    "departments",
                    "unknown_department",
                    format!("“{org}”对应的部门不存在：{code} / no such department for {org:?}: {code}"),
                )),
                Some(d) if !principal.can_steward(&d) => errs.push(FieldError::new(
                    "departments",
                    "not_stewarded",
                    format!("您不是部门 {d} 的数据管理员，不能把条目归入该部门 / you do not steward {d}, so entries cannot go under it"),
                )),
                Some(d) => {
                    out.insert(org.to_string(), d.to_string());
                }
            }
        }
        Ok(out)
    }

    /// Where a catalog entry was harvested from (`origin` in the resource's API view).
    pub async fn resource_origin(&self, resource_id: Uuid) -> Result<Option<HarvestRecord>, CoreError> {
        Ok(self.store.harvest_origin(resource_id).await?)
    }

    /// Every dataset of a CKAN catalog (all pages, or an error and nothing).
    async fn ckan_datasets(&self, base: &url::Url, abort: &Arc<AbortSignal>) -> Result<Vec<Remote>, String> {
        let mut api = base.clone();
        let path = api.path().trim_end_matches('/').to_string();
        api.set_path(&format!("{path}/api/3/action/package_search"));
        let client = self.source_http_client()?;
        let mut budget = super::http::MAX_BYTES;
        let mut all: Vec<Remote> = Vec::new();
        let mut seen = HashSet::new();
        loop {
            let mut u = api.clone();
            u.query_pairs_mut()
                .append_pair("q", "")
                .append_pair("rows", &PAGE.to_string())
                .append_pair("start", &all.len().to_string())
                .append_pair("sort", "metadata_modified asc");
            let fetched =
                until_abort(abort, self.fetch_page(&client, &u, &Secrets::default(), None, &mut budget)).await?;
            let Some((_, body)) = fetched else { return Err("CKAN 回答 304 / the CKAN site answered 304".into()) };
            let doc: Value = serde_json::from_slice(&body)
                .map_err(|_| format!("CKAN 的回答不是 JSON（{u}） / the CKAN answer is not JSON ({u})"))?;
            let (count, page) = parse_page(&doc)?;
            let n = page.len();
            for r in page {
                if seen.insert(r.id.clone()) {
                    all.push(r);
                }
            }
            if n == 0 || all.len() as u64 >= count {
                break;
            }
            if all.len() > MAX_DATASETS {
                return Err(format!(
                    "目录超过 {MAX_DATASETS} 个数据集 / the catalog has more than {MAX_DATASETS} datasets"
                ));
            }
        }
        Ok(all)
    }

    /// A catalog harvest run (`ckan` or `dcat`).
    pub(crate) async fn pull_catalog(
        &self,
        s: &SourceRecord,
        spec: &Spec,
        abort: &Arc<AbortSignal>,
    ) -> Result<PullOutcome, PullFailure> {
        let base = spec
            .url
            .as_deref()
            .and_then(|u| url::Url::parse(u).ok())
            .ok_or_else(|| "来源没有有效的 URL / the source has no valid URL".to_string())?;
        self.source_address_allowed(spec).await?;
        let principal = self.cli_principal(&s.created_by).await.map_err(|_| {
            format!("来源的创建者 {} 已不存在 / the source's owner {} no longer exists", s.created_by, s.created_by)
        })?;
        let dept = citydata_domain::dept::DeptCode::parse(&s.department).map_err(|e| e.message)?;
        if !principal.can_steward(&dept) {
            return Err(format!(
                "来源的创建者 {} 已不再管理该部门的目录 / the source's owner {} no longer stewards the department's catalog",
                s.created_by, s.created_by
            )
            .into());
        }
        // 1. Read the whole remote catalog first: a failure here changes nothing.
        let remote = if s.kind == "dcat" {
            self.dcat_datasets(&base, abort).await?
        } else {
            self.ckan_datasets(&base, abort).await?
        };
        if abort.is_set() {
            return Err("已中止 / aborted".to_string().into());
        }
        // 2. Bring each entry in step.
        let theme = spec.theme.as_deref().unwrap_or(DEFAULT_THEME);
        let known: HashMap<String, HarvestRecord> = self
            .store
            .harvest_records(s.id)
            .await
            .map_err(|e| CoreError::from(e).client_message())?
            .into_iter()
            .map(|r| (r.identifier.clone(), r))
            .collect();
        let meta = RequestMeta::new(Some(format!("source-{}", s.id)), None);
        let (mut created, mut updated, mut withdrawn, mut unchanged) = (0u64, 0u64, 0u64, 0u64);
        let mut errors: Vec<Value> = Vec::new();
        let listed: HashSet<&str> = remote.iter().map(|r| r.id.as_str()).collect();
        // Distributions: tables loaded, rows committed, rows quarantined.
        let mut tables = (0u64, 0u64, 0u64);
        let mut client: Option<reqwest::Client> = None;
        let mut budget = super::http::MAX_BYTES;
        // One search-index commit for the whole run, not one per entry.
        self.deferring_search(async {
            for r in &remote {
                if abort.is_set() {
                    break;
                }
                let before = known.get(&r.id);
                if before.is_some_and(|b| !b.withdrawn && b.modified == r.modified) {
                    unchanged += 1;
                    continue;
                }
                let target = department_of(&r.package, &spec.departments, dept.as_str());
                if target != dept.as_str() && !DeptCode::parse(target).is_ok_and(|d| principal.can_steward(&d)) {
                    errors.push(json!({"identifier": r.id, "error": format!(
                        "来源的创建者已不再管理部门 {target} / the source's owner no longer stewards {target}"
                    )}));
                    continue;
                }
                let input = package_input(&r.package, target, theme);
                let resource_id = match self.harvest_one(&meta, &principal, s, r, before, &input).await {
                    Ok((true, id)) => {
                        created += 1;
                        id
                    }
                    Ok((false, id)) => {
                        updated += 1;
                        id
                    }
                    Err(e) => {
                        errors.push(json!({"identifier": r.id, "error": e.client_message()}));
                        continue;
                    }
                };
                if spec.distributions {
                    let client = match &client {
                        Some(c) => c.clone(),
                        None => match self.source_http_client() {
                            Ok(c) => client.insert(c).clone(),
                            Err(e) => {
                                errors.push(json!({"identifier": r.id, "distribution": true, "error": e}));
                                continue;
                            }
                        },
                    };
                    match self.pull_distribution(&meta, &principal, resource_id, &r.package, &client, &mut budget).await
                    {
                        Ok(Some(rep)) => {
                            tables.0 += 1;
                            tables.1 += rep["rows_committed"].as_u64().unwrap_or(0);
                            tables.2 += rep["rows_quarantined"].as_u64().unwrap_or(0);
                        }
                        Ok(None) => {}
                        Err(e) => errors.push(json!({"identifier": r.id, "distribution": true, "error": e})),
                    }
                }
            }
            // 3. What the remote no longer lists is withdrawn here too.
            for (id, rec) in &known {
                if abort.is_set() || rec.withdrawn || listed.contains(id.as_str()) {
                    continue;
                }
                let key = rec.resource_id.to_string();
                let res = match self.store.get_resource(rec.resource_id).await {
                    Ok(Some(r)) if r.state == ResourceState::Published => {
                        self.withdraw_resource(&meta, &principal, &key).await.map(drop)
                    }
                    Ok(_) => Ok(()),
                    Err(e) => Err(e.into()),
                };
                let res = match res {
                    Ok(()) => self
                        .store
                        .put_harvest_record(&HarvestRecord {
                            withdrawn: true,
                            updated_at: Utc::now().trunc_subsecs(6),
                            ..rec.clone()
                        })
                        .await
                        .map_err(CoreError::from)
                        .inspect(|_| self.forget_catalog_records()),
                    Err(e) => Err(e),
                };
                match res {
                    Ok(()) => withdrawn += 1,
                    Err(e) => errors.push(json!({"identifier": id, "error": e.client_message()})),
                }
            }
        })
        .await;
        if abort.is_set() {
            return Err(PullFailure {
                reason: "已中止；已处理的条目保留 / aborted; the entries handled so far stay".into(),
                report: Some(harvest_report(remote.len(), created, updated, withdrawn, unchanged, tables, &errors)),
            });
        }
        let report = harvest_report(remote.len(), created, updated, withdrawn, unchanged, tables, &errors);
        Ok(PullOutcome { report, watermark: remote.iter().filter_map(|r| r.modified.clone()).max() })
    }

    /// Create or update the local entry of one remote dataset; `true` when created.
    async fn harvest_one(
        &self,
        meta: &RequestMeta,
        principal: &citydata_domain::principal::Principal,
        s: &SourceRecord,
        r: &Remote,
        before: Option<&HarvestRecord>,
        input: &ResourceInput,
    ) -> Result<(bool, Uuid), CoreError> {
        let existing = match before {
            Some(b) => self.store.get_resource(b.resource_id).await?,
            None => None,
        };
        let (resource, created) = match existing {
            Some(current) => {
                let mut patch = serde_json::to_value(input).map_err(|e| CoreError::Internal(e.to_string()))?;
                if let Some(o) = patch.as_object_mut() {
                    o.retain(|k, _| !matches!(k.as_str(), "code" | "slug" | "provider"));
                }
                let key = current.id.to_string();
                let updated = self.update_resource(meta, principal, &key, &patch).await?;
                (updated, false)
            }
            None => (self.create_resource(meta, principal, input).await?, true),
        };
        if resource.state != ResourceState::Published {
            self.publish_resource(meta, principal, &resource.id.to_string()).await?;
        }
        self.store
            .put_harvest_record(&HarvestRecord {
                source_id: s.id,
                identifier: r.id.clone(),
                resource_id: resource.id,
                url: r.url.clone(),
                modified: r.modified.clone(),
                withdrawn: false,
                updated_at: Utc::now().trunc_subsecs(6),
            })
            .await?;
        self.forget_catalog_records();
        Ok((created, resource.id))
    }

    /// Load a harvested dataset's CSV distribution into its table (replacing it). Items come
    /// from the catalog entry; an entry without any gets one per CSV column first. `None`:
    /// the dataset has no CSV distribution.
    async fn pull_distribution(
        &self,
        meta: &RequestMeta,
        principal: &Principal,
        resource_id: Uuid,
        pkg: &Value,
        client: &reqwest::Client,
        budget: &mut usize,
    ) -> Result<Option<Value>, String> {
        let Some(u) = csv_distribution(pkg) else { return Ok(None) };
        let fetched = self.fetch_page(client, &u, &Secrets::default(), None, budget).await?;
        let Some((_, body)) = fetched else {
            return Err("分发地址回答 304 / the distribution answered 304".into());
        };
        let (header, encoding) = csv_header(&body)?;
        let key = resource_id.to_string();
        let resource = self
            .store
            .get_resource(resource_id)
            .await
            .map_err(|e| CoreError::from(e).client_message())?
            .ok_or_else(|| "条目已删除 / the entry was removed".to_string())?;
        if resource.content.items.is_empty() {
            let patch = json!({ "items": items_from_header(&header) });
            self.update_resource(meta, principal, &key, &patch).await.map_err(|e| e.client_message())?;
        }
        let params = crate::ingest::IngestParams {
            mode: Some("replace".into()),
            format: Some("csv".into()),
            encoding: Some(encoding.into()),
            ..Default::default()
        };
        let body = crate::ingest::IngestBody::Stream(Box::new(std::io::Cursor::new(body)));
        let ingested = self.ingest_data(meta, principal, &key, &params, body, None).await;
        super::pg::ingest_result(ingested).map(Some)
    }
}

/// The first CSV distribution of a package with an http(s) address.
fn csv_distribution(pkg: &Value) -> Option<url::Url> {
    pkg["resources"].as_array()?.iter().find_map(|r| {
        let format = text(&r["format"]).unwrap_or_default().to_ascii_lowercase();
        let address = text(&r["url"])?;
        let csv = format == "csv"
            || format.ends_with("/csv")
            || format == "text/csv"
            || (format.is_empty() && address.to_ascii_lowercase().ends_with(".csv"));
        let u = url::Url::parse(&address).ok().filter(|u| matches!(u.scheme(), "http" | "https"))?;
        csv.then_some(u)
    })
}

/// The header of a CSV file and its encoding (`utf-8`, or `gb18030` when the first line is not
/// UTF-8).
fn csv_header(body: &[u8]) -> Result<(Vec<String>, &'static str), String> {
    let body = body.strip_prefix(b"\xEF\xBB\xBF".as_slice()).unwrap_or(body);
    let end = body.iter().take(65536).position(|b| *b == b'\n').unwrap_or(body.len().min(65536));
    let line = &body[..end];
    let (text, encoding) = match std::str::from_utf8(line) {
        Ok(t) => (t.to_string(), "utf-8"),
        Err(_) => (encoding_rs::GB18030.decode_without_bom_handling(line).0.into_owned(), "gb18030"),
    };
    let mut r = csv::ReaderBuilder::new().has_headers(false).from_reader(text.as_bytes());
    let header: Vec<String> = match r.records().next() {
        Some(Ok(rec)) => rec.iter().map(|f| f.trim().to_string()).collect(),
        _ => Vec::new(),
    };
    if header.is_empty() || header.iter().all(String::is_empty) {
        return Err("分发文件没有表头 / the distribution has no header row".into());
    }
    if header.len() > 500 {
        return Err("分发文件超过 500 列 / the distribution has more than 500 columns".into());
    }
    Ok((header, encoding))
}

/// Items for a table whose entry has none: one text item per column, titled by its header (a
/// header that is an identifier is also the name, else `c1`, `c2`, …).
fn items_from_header(header: &[String]) -> Vec<Value> {
    let mut seen = HashSet::new();
    header
        .iter()
        .enumerate()
        .map(|(i, h)| {
            let name = citydata_domain::resource::ItemName::parse(h)
                .ok()
                .map(|n| n.as_str().to_string())
                .filter(|n| !seen.contains(n))
                .unwrap_or_else(|| format!("c{}", i + 1));
            seen.insert(name.clone());
            let title = if h.is_empty() { format!("第{}列", i + 1) } else { h.chars().take(100).collect() };
            json!({"name": name, "title": title, "data_type": "string"})
        })
        .collect()
}

/// The theme of remote datasets that carry no GB/T 21063 classification.
pub(crate) const DEFAULT_THEME: &str = "urban";

fn harvest_report(
    read: usize,
    created: u64,
    updated: u64,
    withdrawn: u64,
    unchanged: u64,
    tables: (u64, u64, u64),
    errors: &[Value],
) -> Value {
    json!({
        "datasets_read": read,
        "objects_created": created,
        "objects_updated": updated,
        "objects_withdrawn": withdrawn,
        "objects_unchanged": unchanged,
        "objects_refused": errors.iter().filter(|e| e["distribution"] != true).count(),
        "distributions_failed": errors.iter().filter(|e| e["distribution"] == true).count(),
        "errors": errors,
        "tables_loaded": tables.0,
        "rows_read": tables.1 + tables.2, "rows_committed": tables.1, "rows_quarantined": tables.2, "rows_deleted": 0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plain_ckan_package_becomes_a_departmental_entry_and_extras_win() {
        let plain = json!({"id": "p1", "name": "bus-stops", "title": "公交站点", "notes": "",
            "tags": [{"name": "交通"}], "license_id": "cc-by", "resources": [{"format": "CSV"}]});
        let i = package_input(&plain, "jtj", "transport");
        assert_eq!(i.name.as_deref(), Some("公交站点"));
        assert_eq!(i.summary.as_deref(), Some("公交站点"), "an empty description falls back to the title");
        let c = i.classification.unwrap();
        assert_eq!((c.class.as_deref(), c.theme.as_deref()), (Some("departmental"), Some("transport")));
        assert_eq!(i.format.unwrap().kind.as_deref(), Some("csv"));
        assert_eq!(i.open.unwrap().kind.as_deref(), Some("unconditional"));
        assert_eq!(i.tags, ["交通"]);
        let ours = json!({"id": "p2", "title": "人口", "extras": [
            {"key": "classification_class", "value": "basic"}, {"key": "classification_theme", "value": "population"},
            {"key": "share_type", "value": "conditional"}, {"key": "share_conditions", "value": "经审批"},
            {"key": "info_items", "value": "[{\"name\":\"xm\",\"title\":\"姓名\",\"data_type\":\"string\"}]"}]});
        let i = package_input(&ours, "gaj", "urban");
        assert_eq!(i.classification.unwrap().class.as_deref(), Some("basic"));
        assert_eq!(i.share.unwrap().conditions.as_deref(), Some("经审批"));
        assert_eq!(i.items.len(), 1);
    }

    #[test]
    fn a_page_that_is_not_a_search_result_is_refused_by_name() {
        assert!(parse_page(&json!({"success": false})).is_err());
        assert!(parse_page(&json!({"success": true, "result": {"count": 1}})).is_err());
        let e =
            parse_page(&json!({"success": true, "result": {"count": 1, "results": [{"title": "x"}]}})).err().unwrap();
        assert!(e.contains("没有 id"), "{e}");
        let (n, page) =
            parse_page(&json!({"success": true, "result": {"count": 7, "results": [{"id": "a", "name": "a"}]}}))
                .unwrap();
        assert_eq!((n, page.len()), (7, 1));
    }
}
