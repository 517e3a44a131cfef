//! 闸门 (the gate at run time): the one place that turns a caller's request for table data
//! into a governed plan. Every read path — rows, exports, aggregates, SQL, the change feed,
//! CKAN `datastore_search`, portal previews, subscriptions — calls [`Core::gate`] (or
//! [`Core::decision`] for yes/no questions) and builds its plan with [`Gated::plan`]:
//!
//! 1. load the resource as the caller may see it in the catalog;
//! 2. `citydata_domain::policy::decide` over the stored grants (a grant that no longer fits
//!    the resource fails closed) — a refusal is audited here, once, for every path;
//! 3. resolve what the caller asks for (`fields`, `filter`, `sort`) against the decision:
//!    only readable items, filters and sorts only on items read unmasked — filtering or
//!    ordering on a masked value would reveal it;
//! 4. the history window: other departments and the public read older versions and the
//!    change feed only as far back as the resource's `history_days`;
//! 5. the governed plan (`citydata_lake::governed::GovernedRead`): the grant's row filter AND
//!    the caller's, the masked projection, and for paged reads a stable order that reveals
//!    nothing about masked items.

use crate::audit::Actor;
use crate::{Core, CoreError, RequestMeta};
use chrono::Utc;
use citydata_domain::audit::Outcome;
use citydata_domain::dept::DeptCode;
use citydata_domain::filter::Filter;
use citydata_domain::geo::Regions;
use citydata_domain::mask::MaskSpec;
use citydata_domain::policy::{Action, Allow, Caller, Decision, Grant, Grantee, decide};
use citydata_domain::principal::Principal;
use citydata_domain::resource::{ItemName, Resource};
use citydata_domain::{FieldError, ValidationErrors};
use citydata_lake::governed::{GovernedRead, Order};
use citydata_store::{GrantRecord, GranteeKind};
use std::collections::BTreeMap;
use uuid::Uuid;

/// The gate's caller class for a principal.
pub fn caller(p: Option<&Principal>) -> Caller {
    match p {
        None => Caller::Anonymous,
        Some(p) if p.memberships.is_empty() => Caller::Public { user_id: p.user_id },
        Some(p) => Caller::Department {
            user_id: p.user_id,
            departments: p.memberships.iter().map(|m| m.department.clone()).collect(),
        },
    }
}

/// A stored grant as the gate's `Grant`. A grant whose items, filter or masks no longer parse
/// against the resource's current items comes back `damaged` (it gives nothing; the gate
/// refuses a conditional resource with `grant_invalid`) and is logged; `None` only when its
/// grantee cannot be read, so it can match nobody. `regions` are the boundary resource's
/// districts for a row filter naming one (`within(item, '<code>')`, see
/// [`Core::grant_regions`]); without them such a grant is damaged — it fails closed.
pub fn to_domain(r: &GrantRecord, resource: &Resource, regions: Option<&Regions>) -> Option<Grant> {
    let items = &resource.content.items;
    let grantee = match r.grantee_kind {
        GranteeKind::Department => Grantee::Department(DeptCode::parse(&r.grantee).ok()?),
        GranteeKind::User => Grantee::User(Uuid::parse_str(&r.grantee).ok()?),
    };
    // Items removed from the resource since narrow the grant; a grant left with none of its
    // items would read as "every item", so it is damaged instead.
    let fields = r
        .fields
        .iter()
        .map(|f| ItemName::parse(f).ok())
        .collect::<Option<Vec<_>>>()
        .map(|names| names.into_iter().filter(|n| items.iter().any(|i| &i.name == n)).collect::<Vec<_>>())
        .filter(|kept| r.fields.is_empty() || !kept.is_empty());
    let row_filter = match &r.row_filter {
        Some(t) => Filter::parse_in(t, items, regions).ok().map(Some),
        None => Some(None),
    };
    let masks = r
        .masks
        .iter()
        .map(|(k, v)| Some((ItemName::parse(k).ok()?, MaskSpec::parse(v).ok()?)))
        .collect::<Option<BTreeMap<_, _>>>();
    let damaged = fields.is_none() || row_filter.is_none() || masks.is_none();
    if damaged && r.revoked_at.is_none() {
        tracing::warn!(grant = %r.id, resource = %resource.content.code, "grant no longer fits the resource: it gives nothing until reissued");
    }
    Some(Grant {
        id: r.id,
        resource_id: r.resource_id,
        grantee,
        fields: fields.unwrap_or_default(),
        row_filter: row_filter.flatten(),
        masks: masks.unwrap_or_default(),
        purpose: r.purpose.clone(),
        valid_from: r.valid_from,
        expires_at: r.expires_at,
        revoked_at: r.revoked_at,
        damaged,
    })
}

/// A read the gate allowed: the resource and what the caller may see of it.
pub struct Gated {
    pub resource: Resource,
    pub allow: Allow,
    /// The boundary's districts when the decision masks an item by district.
    pub regions: Option<std::sync::Arc<Regions>>,
}

/// What a read asks for, resolved against what it may see.
pub(crate) struct Requested {
    pub fields: Vec<ItemName>,
    pub caller_filter: Option<Filter>,
    pub sort: Vec<(ItemName, bool)>,
}

/// Items named in a comma-separated list (names or titles, `-` for descending) that the
/// decision lets the caller read.
pub(crate) fn resolve(
    resource: &Resource,
    allow: &Allow,
    list: &str,
    field: &str,
    errs: &mut ValidationErrors,
) -> Vec<(ItemName, bool)> {
    let mut out = Vec::new();
    for part in list.split([',', '，']).map(str::trim).filter(|s| !s.is_empty()) {
        let (desc, name) = match part.strip_prefix('-') {
            Some(n) => (true, n),
            None => (false, part),
        };
        match resource.content.item(name) {
            Some(i) if allow.fields.contains(&i.name) => out.push((i.name.clone(), desc)),
            _ => errs.push(FieldError::new(
                field,
                "unavailable_item",
                format!("没有可读取的信息项“{name}” / no readable item \"{name}\""),
            )),
        }
    }
    out
}

/// Resolve `fields`, `filter` and `sort` against the decision: only readable items; filters
/// and sorts only on items read unmasked (filtering or ordering on a hidden or masked value
/// would reveal it: a sort on masked 身份证号 ranks people by their real numbers).
impl Core {
    /// [`requested`] for a caller's filter text, with the boundary resource's districts when
    /// the filter may name one (`within(item, '<code>')`).
    pub(crate) async fn requested(
        &self,
        resource: &Resource,
        allow: &Allow,
        fields: Option<&str>,
        filter: Option<&str>,
        sort: Option<&str>,
        errs: &mut ValidationErrors,
    ) -> Result<Requested, CoreError> {
        let regions = self.regions_for(filter).await?;
        Ok(requested(resource, allow, fields, filter, regions.as_deref(), sort, errs))
    }
}

pub(crate) fn requested(
    resource: &Resource,
    allow: &Allow,
    fields: Option<&str>,
    filter: Option<&str>,
    regions: Option<&citydata_domain::geo::Regions>,
    sort: Option<&str>,
    errs: &mut ValidationErrors,
) -> Requested {
    let fields: Vec<ItemName> = match fields.map(str::trim).filter(|s| !s.is_empty()) {
        Some(list) => resolve(resource, allow, list, "fields", errs).into_iter().map(|(n, _)| n).collect(),
        None => allow.fields.clone(),
    };
    let caller_filter = match filter.map(str::trim).filter(|s| !s.is_empty()) {
        None => None,
        Some(t) => match Filter::parse_in(t, &resource.content.items, regions) {
            Ok(f) => {
                for item in f.items() {
                    if !allow.fields.contains(item) || allow.masks.contains_key(item) {
                        errs.push(FieldError::new("filter", "unavailable_item", format!("不能按未授权或已脱敏的信息项“{item}”过滤 / cannot filter on {item}: not granted or masked")));
                    }
                }
                Some(f)
            }
            Err(e) => {
                errs.push(e);
                None
            }
        },
    };
    let sort = match sort {
        Some(s) => {
            let sort = resolve(resource, allow, s, "sort", errs);
            for (item, _) in &sort {
                if allow.masks.contains_key(item) {
                    errs.push(FieldError::new(
                        "sort",
                        "masked_item",
                        format!("不能按已脱敏的信息项“{item}”排序 / cannot sort on {item}: it is masked for you"),
                    ));
                }
            }
            sort
        }
        None => vec![],
    };
    Requested { fields, caller_filter, sort }
}

impl Gated {
    /// The governed plan of a read: the grant's row filter AND the caller's, the allowed
    /// items with their masks.
    pub(crate) fn plan<'a>(&'a self, req: &'a Requested, secret: &'a [u8], version: Option<i64>) -> GovernedRead<'a> {
        GovernedRead {
            fields: req.fields.clone(),
            masks: &self.allow.masks,
            filters: self.allow.row_filter.iter().chain(req.caller_filter.iter()).collect(),
            sort: req.sort.clone(),
            offset: 0,
            limit: None,
            version,
            secret,
            contains: vec![],
            order: None,
            spatial: citydata_lake::spatial::spatial_items(&self.resource.content.items),
            regions: self.regions.clone(),
        }
    }

    /// The order that makes paging exact: the key items when the caller reads them unmasked,
    /// else a keyed hash of the key items (of every column when there is no key), which says
    /// nothing about masked or hidden values.
    pub(crate) fn stable_order(&self) -> Order {
        let keys: Vec<ItemName> =
            self.resource.content.items.iter().filter(|i| i.key).map(|i| i.name.clone()).collect();
        let visible =
            !keys.is_empty() && keys.iter().all(|k| self.allow.fields.contains(k) && !self.allow.masks.contains_key(k));
        if visible { Order::Items(keys) } else { Order::Hashed(keys) }
    }
}

impl Core {
    /// What `principal` may read of `resource` for `action`.
    pub async fn decision(
        &self,
        principal: Option<&Principal>,
        resource: &Resource,
        action: Action,
    ) -> Result<Decision, CoreError> {
        if let Some(p) = principal {
            crate::scopes::check_resource(p, resource)?;
        }
        let records = self.store.grants_for_resource(resource.id).await?;
        let regions = self.grant_regions(&records).await?;
        let grants: Vec<Grant> = records.iter().filter_map(|r| to_domain(r, resource, regions.as_deref())).collect();
        Ok(decide(&caller(principal), resource, action, &grants, Utc::now()))
    }

    /// The boundary resource's districts when one of `records` limits its rows to a district
    /// (`within(item, '<code>')`); `None` otherwise, so most decisions read no boundary.
    pub(crate) async fn grant_regions(
        &self,
        records: &[GrantRecord],
    ) -> Result<Option<std::sync::Arc<Regions>>, CoreError> {
        let names_a_region =
            |r: &GrantRecord| r.row_filter.as_deref().is_some_and(|t| t.to_lowercase().contains("within"));
        if !records.iter().any(names_a_region) {
            return Ok(None);
        }
        // A boundary that cannot be read leaves such grants damaged (they give nothing) rather
        // than failing every read of the resource, its provider's included.
        Ok(self.regions().await.unwrap_or_else(|e| {
            tracing::warn!(error = %e, "the boundary resource cannot be read: district-limited grants give nothing");
            None
        }))
    }

    /// The allowed scope, or the gate's refusal as an error.
    pub async fn allow(
        &self,
        principal: Option<&Principal>,
        resource: &Resource,
        action: Action,
    ) -> Result<Allow, CoreError> {
        match self.decision(principal, resource, action).await? {
            Decision::Allow(a) => Ok(a),
            Decision::Deny(r) => Err(CoreError::Denied(r)),
        }
    }

    /// An allowed read, with the districts its `district` masks need (read only then).
    pub(crate) async fn gated(&self, resource: Resource, allow: Allow) -> Result<Gated, CoreError> {
        let regions = if allow.masks.values().any(|m| *m == MaskSpec::District) {
            // Unreadable districts leave the mask showing nothing (NULLs), never the positions.
            self.regions().await.unwrap_or_else(|e| {
                tracing::warn!(error = %e, "the boundary resource cannot be read: district masks show nothing");
                None
            })
        } else {
            None
        };
        Ok(Gated { resource, allow, regions })
    }

    /// The gate for one read: the resource as the caller sees it in the catalog, the
    /// decision, and an audit entry `event` when it refuses.
    pub(crate) async fn gate(
        &self,
        meta: &RequestMeta,
        principal: Option<&Principal>,
        key: &str,
        action: Action,
        event: &str,
    ) -> Result<Gated, CoreError> {
        let resource = self.get_resource(principal, key).await?;
        match self.allow(principal, &resource, action).await {
            Ok(allow) => self.gated(resource, allow).await,
            Err(e) => {
                let actor = match principal {
                    Some(p) => Actor::Principal(p),
                    None => Actor::Anonymous,
                };
                self.record(
                    meta,
                    actor,
                    event,
                    Some(format!("resource:{}", resource.content.code)),
                    Outcome::Denied,
                    serde_json::json!({"decision": e.code()}),
                )
                .await?;
                Err(e)
            }
        }
    }

    /// Whether a non-provider may read table `version` (or, for the change feed, the changes
    /// after it): the current version always; an older one only while the time it was
    /// superseded lies within the resource's history window. The provider reads its whole
    /// history.
    pub(crate) async fn check_history(&self, g: &Gated, version: i64, field: &str) -> Result<(), CoreError> {
        if version < 0 {
            return Err(
                FieldError::new(field, "out_of_range", format!("{field} 不能为负 / {field} must be ≥ 0")).into()
            );
        }
        let code = g.resource.content.code.to_string();
        let history = self.lake()?.history(g.resource.id).await.map_err(|e| CoreError::from(e).for_resource(&code))?;
        // No table yet: every read answers empty.
        let Some(current) = history.first().map(|v| v.version) else { return Ok(()) };
        if version > current {
            return Err(CoreError::VersionNotFound(format!(
                "表版本 {version} 不存在，当前版本为 {current} / version {version} does not exist: the current version is {current}"
            )));
        }
        if version == current || g.allow.provider {
            return Ok(());
        }
        let days = g.resource.content.history_days();
        let cutoff = (Utc::now() - chrono::Duration::days(days as i64)).timestamp_millis();
        // The version was current until the next one was committed.
        let superseded = history.iter().find(|v| v.version == version + 1).and_then(|v| v.timestamp);
        match superseded {
            Some(t) if days > 0 && t >= cutoff => Ok(()),
            _ => Err(CoreError::Gone {
                code: "outside_history_window",
                message: format!(
                    "表版本 {version} 超出该资源的历史保留期（{days} 天），请读取当前版本 / version {version} is outside this resource's history window ({days} days): read the current version"
                ),
            }),
        }
    }

    /// The table versions a non-provider may see: the current one and those within the
    /// history window.
    pub(crate) async fn visible_history(
        &self,
        resource: &Resource,
        provider: bool,
    ) -> Result<Vec<citydata_lake::table::VersionInfo>, CoreError> {
        let code = resource.content.code.to_string();
        let history = self.lake()?.history(resource.id).await.map_err(|e| CoreError::from(e).for_resource(&code))?;
        if provider {
            return Ok(history);
        }
        let days = resource.content.history_days();
        let cutoff = (Utc::now() - chrono::Duration::days(days as i64)).timestamp_millis();
        let mut out = Vec::new();
        for (i, v) in history.iter().enumerate() {
            // history is newest first: the entry before this one superseded it.
            let superseded = if i == 0 { None } else { history[i - 1].timestamp };
            let visible = i == 0 || (days > 0 && superseded.is_some_and(|t| t >= cutoff));
            if visible {
                out.push(v.clone());
            }
        }
        Ok(out)
    }
}
