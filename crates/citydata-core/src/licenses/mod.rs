//! 电子证照核验 (license verification, issue #23 item 5): anyone — signed in or not — gives a
//! license number and the holder's name and learns `valid` / `revoked` / `expired` /
//! `not_found` and the issuing department, never the license's other contents, with a receipt
//! signed by the platform's Ed25519 key (`receipt`).
//!
//! 1. validations: `number` and `holder` given (400 naming the field);
//! 2. limits, counted in the database so that every node shares them (`RateStore`): requests
//!    per client address and minute (429 `rate_limited` with `Retry-After`); and the
//!    verification's enumeration rule across requests — one address may look up at most
//!    `MAX_NEIGHBOURS` numbers per day that differ only in their last `NEIGHBOUR_SUFFIX`
//!    characters (a repeat counts), else 400 `enumeration_suspected`;
//! 3. the lookup: every published license register (`citydata_domain::license`), one governed
//!    plan each with `number IN (…)`, reading only the number, holder, status, validity and
//!    issuer items; compared here and dropped here. A wrong holder answers `not_found`, the same
//!    as an unknown number, so a number alone confirms nothing;
//! 4. the receipt: the canonical JSON of the answer (keys sorted, no spaces, UTF-8) signed;
//! 5. audit `license.verify`: the outcome and the number as a keyed hash, never a value.

pub mod receipt;

use crate::audit::Actor;
use crate::{Core, CoreError, RequestMeta};
use arrow::array::{Array, StringArray};
use chrono::{DateTime, Duration, DurationRound, SecondsFormat, Utc};
use citydata_domain::FieldError;
use citydata_domain::ValidationErrors;
use citydata_domain::filter::{Filter, Literal};
use citydata_domain::license::{LicenseStatus, license_items, normalize_holder, normalize_number, status_of};
use citydata_domain::principal::Principal;
use citydata_domain::resource::{Audience, ItemName, Resource};
use citydata_domain::verify::{MAX_NEIGHBOURS, NEIGHBOUR_SUFFIX};
use citydata_lake::governed::GovernedRead;
use citydata_store::ResourceFilter;
use receipt::ReceiptKey;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicI64, Ordering};

/// Limits and the key of license verification (settings `license_verify_per_minute`,
/// `license_receipt_key`).
#[derive(Debug, Clone)]
pub struct LicenseConfig {
    /// Verifications one client address may ask per minute, over all nodes.
    pub per_minute: u32,
    /// The receipt key; `None`: one random key per process (tests, one-off commands).
    pub receipt_key: Option<ReceiptKey>,
}

impl Default for LicenseConfig {
    fn default() -> Self {
        Self { per_minute: 30, receipt_key: None }
    }
}

/// What one asks.
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct LicenseQuery {
    /// The license number (证照编号) as printed on the license.
    pub number: String,
    /// The holder's name (持证主体) as printed on the license.
    pub holder: String,
}

/// The department that issued a found license.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct IssuingDepartment {
    pub code: String,
    pub name: String,
}

/// A signed statement of one answer: `signature` is the Ed25519 signature (base64) of the
/// UTF-8 bytes of `payload`, itself the canonical JSON of the answer (keys sorted, no spaces).
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LicenseReceipt {
    /// Always `Ed25519`.
    pub algorithm: String,
    /// The signing key's id (`GET /api/v1/licenses/receipt-key`).
    pub key_id: String,
    pub payload: String,
    pub signature: String,
}

/// The answer: the status and, for a found license, who issued it — nothing else of it.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LicenseAnswer {
    pub status: LicenseStatus,
    /// The register's name (e.g. 营业执照电子证照); found licenses only.
    pub license_type: Option<String>,
    /// The provider department of the register; found licenses only.
    pub issuing_department: Option<IssuingDepartment>,
    /// The issuing authority as the license names it (发证机关), when the register has one.
    pub issuer: Option<String>,
    /// When it was verified (RFC 3339, UTC).
    pub verified_at: String,
    pub receipt: LicenseReceipt,
}

/// The public half of the receipt key.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ReceiptKeyView {
    /// Always `Ed25519`.
    pub algorithm: String,
    pub key_id: String,
    /// The raw 32-byte public key, base64.
    pub public_key: String,
    /// The same as a PEM SubjectPublicKeyInfo.
    pub pem: String,
}

/// The found license: status and issuer.
struct Found {
    status: LicenseStatus,
    resource: Resource,
    issuer: Option<String>,
}

static PROCESS_KEY: OnceLock<ReceiptKey> = OnceLock::new();
static LAST_PRUNE: AtomicI64 = AtomicI64::new(0);

fn window_minute(now: DateTime<Utc>) -> (String, DateTime<Utc>) {
    let start = now.duration_trunc(Duration::minutes(1)).unwrap_or(now);
    (start.format("%Y-%m-%dT%H:%M").to_string(), start + Duration::minutes(1))
}

/// The platform's local day (`time_zone`, default +08:00) of `now` and when it ends.
pub(crate) fn local_day(now: DateTime<Utc>) -> (String, DateTime<Utc>) {
    let zone = citydata_domain::cast::local_offset();
    let day = now.with_timezone(&zone).date_naive();
    let end = (day + Duration::days(1))
        .and_hms_opt(0, 0, 0)
        .and_then(|t| t.and_local_timezone(zone).single())
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or(now + Duration::days(1));
    (day.format("%Y-%m-%d").to_string(), end)
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

impl Core {
    /// The key receipts are signed with.
    pub fn receipt_key(&self) -> &ReceiptKey {
        self.config.licenses.receipt_key.as_ref().unwrap_or_else(|| PROCESS_KEY.get_or_init(ReceiptKey::random))
    }

    /// The public half of the receipt key.
    pub fn receipt_key_view(&self) -> ReceiptKeyView {
        let k = self.receipt_key();
        ReceiptKeyView {
            algorithm: "Ed25519".into(),
            key_id: k.key_id(),
            public_key: k.public_base64(),
            pem: k.public_pem(),
        }
    }

    /// Take one unit of `scope` in a shared window; `false` when the limit is reached. Ended
    /// windows are pruned at most once a minute per process.
    pub(crate) async fn take_rate(
        &self,
        scope: &str,
        window: &str,
        until: DateTime<Utc>,
        limit: i64,
    ) -> Result<bool, CoreError> {
        let now = Utc::now();
        let last = LAST_PRUNE.load(Ordering::Relaxed);
        if now.timestamp() - last > 60
            && LAST_PRUNE.compare_exchange(last, now.timestamp(), Ordering::Relaxed, Ordering::Relaxed).is_ok()
        {
            self.store.prune_rates(&rfc3339(now - Duration::seconds(1))).await?;
        }
        Ok(self.store.take_rate(scope, window, &rfc3339(until), 1, limit).await?.is_some())
    }

    /// Verify a license by number and holder (anyone; see the module docs).
    pub async fn verify_license(
        &self,
        meta: &RequestMeta,
        principal: Option<&Principal>,
        q: &LicenseQuery,
    ) -> Result<LicenseAnswer, CoreError> {
        let mut details = serde_json::Map::new();
        let number = normalize_number(&q.number);
        if !number.is_empty() {
            details.insert("number".into(), citydata_lake::mask::pseudonym(&self.config.pseudonym_key, &number).into());
        }
        let result = self.verify_license_inner(meta, q, &number, &mut details).await;
        if let Ok(a) = &result {
            details.insert("status".into(), a.status.as_str().into());
        }
        let actor = principal.map_or(Actor::Anonymous, Actor::Principal);
        self.audited_with(meta, actor, "license.verify", None, details, result).await
    }

    async fn verify_license_inner(
        &self,
        meta: &RequestMeta,
        q: &LicenseQuery,
        number: &str,
        details: &mut serde_json::Map<String, serde_json::Value>,
    ) -> Result<LicenseAnswer, CoreError> {
        // Validations.
        let mut errs = ValidationErrors::new();
        let holder = normalize_holder(&q.holder);
        if number.is_empty() || number.chars().count() > 64 {
            errs.push(FieldError::new(
                "number",
                "required",
                "须填写证照编号（不超过 64 字）/ the license number is required",
            ));
        }
        if holder.is_empty() || holder.chars().count() > 200 {
            errs.push(FieldError::new(
                "holder",
                "required",
                "须填写持证主体名称（不超过 200 字）/ the holder is required",
            ));
        }
        errs.into_result()?;
        // Limits shared by every node: per address and minute, then the neighbourhood rule.
        let now = Utc::now();
        let client = meta.client.clone().unwrap_or_else(|| "-".into());
        let (minute, minute_end) = window_minute(now);
        if !self
            .take_rate(&format!("license:addr:{client}"), &minute, minute_end, self.config.licenses.per_minute.into())
            .await?
        {
            details.insert("limit".into(), "per_minute".into());
            return Err(CoreError::RateLimited { retry_after_secs: (minute_end - now).num_seconds().max(1) as u64 });
        }
        let cut = number.chars().count().saturating_sub(NEIGHBOUR_SUFFIX);
        let prefix: String = number.chars().take(cut).collect();
        let hood = citydata_lake::mask::pseudonym(&self.config.pseudonym_key, &format!("license-prefix:{prefix}"));
        let (day, day_end) = local_day(now);
        if !self.take_rate(&format!("license:near:{client}:{hood}"), &day, day_end, MAX_NEIGHBOURS as i64).await? {
            details.insert("limit".into(), "enumeration".into());
            return Err(FieldError::new(
                "number",
                "enumeration_suspected",
                format!(
                    "今日已核验 {MAX_NEIGHBOURS} 个仅末 {NEIGHBOUR_SUFFIX} 位不同的证照编号，疑似遍历，已拒绝 / {MAX_NEIGHBOURS} numbers differing only in their last {NEIGHBOUR_SUFFIX} characters were verified today from this address: refused as enumeration"
                ),
            )
            .into());
        }
        // The lookup.
        let found = self.find_license(number, &holder, now).await?;
        let verified_at = rfc3339(now);
        let key = self.receipt_key();
        let mut payload: BTreeMap<&str, String> = BTreeMap::new();
        payload.insert("holder", q.holder.trim().to_string());
        payload.insert("key_id", key.key_id());
        payload.insert("license_number", number.to_string());
        payload.insert("status", found.as_ref().map_or(LicenseStatus::NotFound, |f| f.status).as_str().into());
        payload.insert("verified_at", verified_at.clone());
        payload.insert("version", "1".into());
        let (license_type, issuing_department, issuer) = match &found {
            None => (None, None, None),
            Some(f) => {
                let code = f.resource.content.provider.to_string();
                let name = self
                    .store
                    .get_department(&f.resource.content.provider)
                    .await?
                    .map(|d| d.name.as_str().to_string())
                    .unwrap_or_else(|| code.clone());
                payload.insert("license_type", f.resource.content.name.clone());
                payload.insert("issuing_department", code.clone());
                payload.insert("issuing_department_name", name.clone());
                if let Some(i) = &f.issuer {
                    payload.insert("issuer", i.clone());
                }
                details.insert("resource".into(), f.resource.content.code.to_string().into());
                (Some(f.resource.content.name.clone()), Some(IssuingDepartment { code, name }), f.issuer.clone())
            }
        };
        let payload = serde_json::to_string(&payload).map_err(|e| CoreError::Internal(format!("receipt: {e}")))?;
        let receipt = LicenseReceipt {
            algorithm: "Ed25519".into(),
            key_id: key.key_id(),
            signature: key.sign(&payload),
            payload,
        };
        Ok(LicenseAnswer {
            status: found.as_ref().map_or(LicenseStatus::NotFound, |f| f.status),
            license_type,
            issuing_department,
            issuer,
            verified_at,
            receipt,
        })
    }

    /// The license with this number **and** holder in any published register.
    async fn find_license(&self, number: &str, holder: &str, now: DateTime<Utc>) -> Result<Option<Found>, CoreError> {
        let mut filter = ResourceFilter::new(Audience::Government { departments: vec![] });
        filter.theme = Some(citydata_domain::license::LICENSE_THEME.into());
        filter.state = Some("published".into());
        let registers = self.store.list_resources(&filter, 1000, 0).await?;
        let today = now.with_timezone(&citydata_domain::cast::local_offset()).date_naive();
        for resource in registers {
            let Some(items) = license_items(&resource.content) else { continue };
            let mut fields: Vec<ItemName> = vec![items.number.name.clone(), items.holder.name.clone()];
            for i in [items.status, items.valid_until, items.issuer].into_iter().flatten() {
                fields.push(i.name.clone());
            }
            let mut values = vec![Literal::Str(number.to_string())];
            if number.to_lowercase() != number {
                values.push(Literal::Str(number.to_lowercase()));
            }
            let filters = [Filter::In { item: items.number.name.clone(), values, negated: false }];
            let masks = BTreeMap::new();
            let read = GovernedRead {
                fields: fields.clone(),
                masks: &masks,
                filters: filters.iter().collect(),
                sort: vec![],
                offset: 0,
                limit: Some(100),
                version: None,
                secret: &self.config.pseudonym_key,
                contains: vec![],
                order: None,
                spatial: citydata_lake::spatial::spatial_items(&resource.content.items),
                regions: None,
            };
            let code = resource.content.code.to_string();
            let batches = self
                .lake()?
                .read_governed(resource.id, &read)
                .await
                .map_err(|e| CoreError::from(e).for_resource(&code))?;
            for b in &batches {
                let cols: Vec<StringArray> = fields
                    .iter()
                    .map(|f| {
                        let c = b
                            .column_by_name(f.as_str())
                            .ok_or_else(|| CoreError::Internal(format!("license lookup lost column {f}")))?;
                        let t = arrow::compute::cast(c, &arrow::datatypes::DataType::Utf8)
                            .map_err(|e| CoreError::Internal(format!("license lookup cast {f}: {e}")))?;
                        t.as_any()
                            .downcast_ref::<StringArray>()
                            .cloned()
                            .ok_or_else(|| CoreError::Internal(format!("license lookup cast {f}")))
                    })
                    .collect::<Result<_, _>>()?;
                let col = |name: &ItemName| fields.iter().position(|f| f == name).map(|i| &cols[i]);
                for row in 0..b.num_rows() {
                    let value =
                        |c: Option<&StringArray>| c.filter(|c| !c.is_null(row)).map(|c| c.value(row).to_string());
                    let same_number = value(col(&items.number.name)).is_some_and(|v| normalize_number(&v) == number);
                    let same_holder = value(col(&items.holder.name)).is_some_and(|v| normalize_holder(&v) == holder);
                    if !(same_number && same_holder) {
                        continue;
                    }
                    let status_text = items.status.and_then(|i| value(col(&i.name)));
                    let until = items
                        .valid_until
                        .and_then(|i| value(col(&i.name)))
                        .and_then(|v| citydata_domain::cast::parse_date(&v));
                    let issuer = items.issuer.and_then(|i| value(col(&i.name))).filter(|s| !s.trim().is_empty());
                    return Ok(Some(Found {
                        status: status_of(status_text.as_deref(), until, today),
                        resource: resource.clone(),
                        issuer,
                    }));
                }
            }
        }
        Ok(None)
    }
}
