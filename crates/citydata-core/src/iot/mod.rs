//! 物联网 (IoT collection): the device registry (设备类型 and 设备) and MQTT streams into the
//! governed tables.
//!
//! - Device types map a JSON payload onto a resource's items ([`citydata_domain::iot`]); a
//!   device belongs to one type, and so to its resource and to the resource's provider
//!   department, the only department that may write either (its stewards and admins, and the
//!   platform admins).
//! - The registry (devices with their newest message) is visible to the owner department's
//!   members and the platform admins only: a newest message is table data, which other
//!   departments read through the gate (`latest`).
//! - [`streams`] holds the stream settings, [`consumer`] the consumer (micro-batches through
//!   the upload pipeline, acknowledged after the commit), [`latest`] the gated real-time reads.

pub mod consumer;
pub mod demo;
pub mod import;
pub mod latest;
pub mod offline;
pub mod streams;

use crate::audit::Actor;
use crate::catalog::can_edit;
use crate::{Core, CoreError, RequestMeta};
use chrono::{DateTime, SubsecRound, Utc};
use citydata_domain::audit::Outcome;
use citydata_domain::dept::DeptCode;
use citydata_domain::iot::{DeviceId, PayloadInput, PayloadSchema};
use citydata_domain::principal::Principal;
use citydata_domain::region::RegionCode;
use citydata_domain::{FieldError, ValidationErrors};
use citydata_store::{DeviceRecord, DeviceTypeRecord};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// A device counts as offline after this many missed reporting intervals.
pub const OFFLINE_AFTER_INTERVALS: i64 = 3;

/// A new device type.
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct DeviceTypeInput {
    /// 类型名称, e.g. 空气质量自动监测站.
    pub name: String,
    /// The resource its devices feed (id, code or slug).
    pub resource: String,
    pub payload: PayloadInput,
    /// Seconds between two messages of a device (default 60); offline after 3 missed.
    #[serde(default)]
    pub interval_secs: Option<u32>,
}

/// Changes to a device type.
#[derive(Debug, Clone, Default, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct DeviceTypePatch {
    pub name: Option<String>,
    pub payload: Option<PayloadInput>,
    pub interval_secs: Option<u32>,
}

#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DeviceTypeView {
    pub id: Uuid,
    pub name: String,
    pub department: String,
    pub resource_id: Uuid,
    pub payload: PayloadInput,
    pub interval_secs: i32,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A new device.
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct DeviceInput {
    /// 设备编码: 1–64 ASCII letters, digits, `-_.:`; the id messages carry.
    pub id: String,
    /// Its device type.
    pub type_id: Uuid,
    /// 设备名称, e.g. 海陵区监测站.
    pub name: String,
    pub model: Option<String>,
    /// Longitude (−180…180).
    pub lon: Option<f64>,
    /// Latitude (−90…90).
    pub lat: Option<f64>,
    /// GB/T 2260 region code (6 digits).
    pub region: Option<String>,
}

/// Changes to a device (`status`: `active` or `disabled`; a disabled device's messages are
/// quarantined).
#[derive(Debug, Clone, Default, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct DevicePatch {
    pub name: Option<String>,
    pub model: Option<String>,
    pub lon: Option<f64>,
    pub lat: Option<f64>,
    pub region: Option<String>,
    pub status: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DeviceView {
    pub id: String,
    pub type_id: Uuid,
    pub name: String,
    pub model: Option<String>,
    pub lon: Option<f64>,
    pub lat: Option<f64>,
    pub region: Option<String>,
    pub department: String,
    pub resource_id: Uuid,
    /// `active` or `disabled`.
    pub status: String,
    pub last_seen: Option<DateTime<Utc>>,
    /// The newest committed message as its row (item → value).
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub last_message: Option<serde_json::Value>,
    /// Messages committed so far.
    pub messages: i64,
    /// Seen within `interval × 3`.
    pub online: bool,
    pub offline_notified_at: Option<DateTime<Utc>>,
}

pub(crate) fn device_view(d: DeviceRecord, interval_secs: i32, now: DateTime<Utc>) -> DeviceView {
    let online = d.last_seen.is_some_and(|t| {
        d.status == "active" && now - t <= chrono::Duration::seconds(i64::from(interval_secs) * OFFLINE_AFTER_INTERVALS)
    });
    DeviceView {
        online,
        lon: d.lon.as_deref().and_then(|v| v.parse().ok()),
        lat: d.lat.as_deref().and_then(|v| v.parse().ok()),
        id: d.id,
        type_id: d.type_id,
        name: d.name,
        model: d.model,
        region: d.region,
        department: d.department,
        resource_id: d.resource_id,
        status: d.status,
        last_seen: d.last_seen,
        last_message: d.last_message,
        messages: d.messages,
        offline_notified_at: d.offline_notified_at,
    }
}

fn type_view(t: DeviceTypeRecord) -> Result<DeviceTypeView, CoreError> {
    Ok(DeviceTypeView {
        payload: serde_json::from_value(t.payload)
            .map_err(|e| CoreError::Internal(format!("device type payload: {e}")))?,
        id: t.id,
        name: t.name,
        department: t.department,
        resource_id: t.resource_id,
        interval_secs: t.interval_secs,
        created_at: t.created_at,
        updated_at: t.updated_at,
    })
}

/// A new device of type `t` from its input, every field checked (errors name the field).
pub(crate) fn device_record(input: &DeviceInput, t: &DeviceTypeRecord) -> Result<DeviceRecord, ValidationErrors> {
    let mut errs = ValidationErrors::new();
    let id = errs.check(DeviceId::parse(&input.id));
    let n = name(&mut errs, "name", &input.name);
    let lon = coordinate(&mut errs, "lon", input.lon, 180.0);
    let lat = coordinate(&mut errs, "lat", input.lat, 90.0);
    let reg = region(&mut errs, input.region.as_deref());
    let m = model(&mut errs, input.model.as_deref());
    if !errs.0.is_empty() {
        return Err(errs);
    }
    let Some(id) = id else { return Err(errs) };
    let now = Utc::now().trunc_subsecs(6);
    Ok(DeviceRecord {
        id: id.to_string(),
        type_id: t.id,
        name: n,
        model: m,
        lon,
        lat,
        region: reg,
        department: t.department.clone(),
        resource_id: t.resource_id,
        status: "active".into(),
        last_seen: None,
        last_message: None,
        messages: 0,
        offline_notified_at: None,
        created_at: now,
        updated_at: now,
    })
}

fn name(errs: &mut ValidationErrors, field: &str, v: &str) -> String {
    let v = v.trim();
    if v.is_empty() || v.chars().count() > 100 {
        errs.push(FieldError::new(
            field,
            "invalid_name",
            format!("{field} 须为 1–100 个字符 / {field} is 1–100 characters"),
        ));
    }
    v.to_string()
}

fn interval(errs: &mut ValidationErrors, v: Option<u32>) -> i32 {
    let v = v.unwrap_or(60);
    if !(1..=86_400).contains(&v) {
        errs.push(FieldError::new(
            "interval_secs",
            "out_of_range",
            "interval_secs 须在 1–86400 之间 / interval_secs is 1–86400",
        ));
    }
    v.min(86_400) as i32
}

fn coordinate(errs: &mut ValidationErrors, field: &str, v: Option<f64>, max: f64) -> Option<String> {
    let v = v?;
    if !v.is_finite() || v.abs() > max {
        errs.push(FieldError::new(
            field,
            "out_of_range",
            format!("{field} 须在 ±{max} 之内 / {field} must be within ±{max}"),
        ));
        return None;
    }
    Some(format!("{v}"))
}

fn region(errs: &mut ValidationErrors, v: Option<&str>) -> Option<String> {
    let v = v.map(str::trim).filter(|v| !v.is_empty())?;
    match RegionCode::parse(v) {
        Ok(r) => Some(r.as_str().to_string()),
        Err(mut e) => {
            e.field = "region".into();
            errs.push(e);
            None
        }
    }
}

fn model(errs: &mut ValidationErrors, v: Option<&str>) -> Option<String> {
    let v = v.map(str::trim).filter(|v| !v.is_empty())?;
    if v.chars().count() > 100 {
        errs.push(FieldError::new("model", "too_long", "model 至多 100 个字符 / model is at most 100 characters"));
    }
    Some(v.to_string())
}

/// The registry is the owner department's (and the platform admins').
pub(crate) fn sees_registry(p: &Principal, dept: &str) -> bool {
    p.is_admin() || DeptCode::parse(dept).is_ok_and(|d| p.is_member_of(&d))
}

pub(crate) fn writes(p: &Principal, dept: &str) -> bool {
    DeptCode::parse(dept).is_ok_and(|d| can_edit(p, &d))
}

fn no_type(id: Uuid) -> CoreError {
    CoreError::NotFound(format!("设备类型不存在：{id} / no such device type: {id}"))
}

fn no_device(id: &str) -> CoreError {
    CoreError::NotFound(format!("设备不存在：{id} / no such device: {id}"))
}

impl Core {
    pub(crate) async fn audit_iot(
        &self,
        meta: &RequestMeta,
        p: &Principal,
        action: &str,
        target: String,
        outcome: Outcome,
    ) -> Result<(), CoreError> {
        self.record(meta, Actor::Principal(p), action, Some(target), outcome, serde_json::json!({})).await.map(drop)
    }

    /// Register a device type for a resource (its provider's stewards and admins).
    pub async fn create_device_type(
        &self,
        meta: &RequestMeta,
        p: &Principal,
        input: &DeviceTypeInput,
    ) -> Result<DeviceTypeView, CoreError> {
        let resource = self.get_resource(Some(p), &input.resource).await?;
        let dept = resource.content.provider.to_string();
        if !writes(p, &dept) {
            self.audit_iot(
                meta,
                p,
                "iot.device_type.create",
                format!("resource:{}", resource.content.code),
                Outcome::Denied,
            )
            .await?;
            return Err(CoreError::forbidden());
        }
        let mut errs = ValidationErrors::new();
        let n = name(&mut errs, "name", &input.name);
        let iv = interval(&mut errs, input.interval_secs);
        if let Err(e) = PayloadSchema::parse(&input.payload, &resource.content.items) {
            errs.0.extend(e.0);
        }
        errs.into_result()?;
        let now = Utc::now().trunc_subsecs(6);
        let t = DeviceTypeRecord {
            id: Uuid::now_v7(),
            name: n,
            department: dept,
            resource_id: resource.id,
            payload: serde_json::to_value(&input.payload).map_err(|e| CoreError::Internal(e.to_string()))?,
            interval_secs: iv,
            created_at: now,
            updated_at: now,
        };
        self.store.create_device_type(&t).await?;
        self.audit_iot(meta, p, "iot.device_type.create", format!("device_type:{}", t.id), Outcome::Success).await?;
        type_view(t)
    }

    /// Device types the caller's departments own (platform admins: all).
    pub async fn list_device_types(&self, p: &Principal) -> Result<Vec<DeviceTypeView>, CoreError> {
        let all = self.store.list_device_types(None, 1000).await?;
        all.into_iter().filter(|t| sees_registry(p, &t.department)).map(type_view).collect()
    }

    pub async fn get_device_type(&self, p: &Principal, id: Uuid) -> Result<DeviceTypeView, CoreError> {
        match self.store.get_device_type(id).await? {
            Some(t) if sees_registry(p, &t.department) => type_view(t),
            _ => Err(no_type(id)),
        }
    }

    pub async fn update_device_type(
        &self,
        meta: &RequestMeta,
        p: &Principal,
        id: Uuid,
        patch: &DeviceTypePatch,
    ) -> Result<DeviceTypeView, CoreError> {
        let mut t = match self.store.get_device_type(id).await? {
            Some(t) if sees_registry(p, &t.department) => t,
            _ => return Err(no_type(id)),
        };
        if !writes(p, &t.department) {
            self.audit_iot(meta, p, "iot.device_type.update", format!("device_type:{id}"), Outcome::Denied).await?;
            return Err(CoreError::forbidden());
        }
        let mut errs = ValidationErrors::new();
        if let Some(n) = &patch.name {
            t.name = name(&mut errs, "name", n);
        }
        if patch.interval_secs.is_some() {
            t.interval_secs = interval(&mut errs, patch.interval_secs);
        }
        if let Some(payload) = &patch.payload {
            let resource = self.get_resource(Some(p), &t.resource_id.to_string()).await?;
            if let Err(e) = PayloadSchema::parse(payload, &resource.content.items) {
                errs.0.extend(e.0);
            }
            t.payload = serde_json::to_value(payload).map_err(|e| CoreError::Internal(e.to_string()))?;
        }
        errs.into_result()?;
        t.updated_at = Utc::now().trunc_subsecs(6);
        self.store.update_device_type(&t).await?;
        self.audit_iot(meta, p, "iot.device_type.update", format!("device_type:{id}"), Outcome::Success).await?;
        type_view(t)
    }

    /// Register a device under a type of the caller's department.
    pub async fn create_device(
        &self,
        meta: &RequestMeta,
        p: &Principal,
        input: &DeviceInput,
    ) -> Result<DeviceView, CoreError> {
        let t = match self.store.get_device_type(input.type_id).await? {
            Some(t) if sees_registry(p, &t.department) => t,
            _ => {
                return Err(CoreError::Validation(
                    FieldError::new("type_id", "unknown_device_type", "设备类型不存在 / no such device type").into(),
                ));
            }
        };
        if !writes(p, &t.department) {
            self.audit_iot(meta, p, "iot.device.create", format!("device_type:{}", t.id), Outcome::Denied).await?;
            return Err(CoreError::forbidden());
        }
        let d = device_record(input, &t)?;
        let id = d.id.clone();
        match self.store.create_device(&d).await {
            Ok(()) => {}
            Err(citydata_store::StoreError::Conflict(_)) => {
                return Err(CoreError::Conflict(format!("设备编码已存在：{id} / the device id exists: {id}")));
            }
            Err(e) => return Err(e.into()),
        }
        self.audit_iot(meta, p, "iot.device.create", format!("device:{id}"), Outcome::Success).await?;
        Ok(device_view(d, t.interval_secs, Utc::now()))
    }

    /// Devices of the caller's departments (platform admins: all), optionally of one resource.
    pub async fn list_devices(&self, p: &Principal, resource: Option<&str>) -> Result<Vec<DeviceView>, CoreError> {
        let rid = match resource {
            Some(r) => Some(self.get_resource(Some(p), r).await?.id),
            None => None,
        };
        let types: std::collections::HashMap<Uuid, i32> =
            self.store.list_device_types(None, 10_000).await?.into_iter().map(|t| (t.id, t.interval_secs)).collect();
        let now = Utc::now();
        Ok(self
            .store
            .list_devices(None, rid, 10_000)
            .await?
            .into_iter()
            .filter(|d| sees_registry(p, &d.department))
            .map(|d| {
                let iv = types.get(&d.type_id).copied().unwrap_or(60);
                device_view(d, iv, now)
            })
            .collect())
    }

    pub async fn get_device(&self, p: &Principal, id: &str) -> Result<DeviceView, CoreError> {
        match self.store.get_device(id).await? {
            Some(d) if sees_registry(p, &d.department) => {
                let iv = self.store.get_device_type(d.type_id).await?.map(|t| t.interval_secs).unwrap_or(60);
                Ok(device_view(d, iv, Utc::now()))
            }
            _ => Err(no_device(id)),
        }
    }

    pub async fn update_device(
        &self,
        meta: &RequestMeta,
        p: &Principal,
        id: &str,
        patch: &DevicePatch,
    ) -> Result<DeviceView, CoreError> {
        let mut d = match self.store.get_device(id).await? {
            Some(d) if sees_registry(p, &d.department) => d,
            _ => return Err(no_device(id)),
        };
        if !writes(p, &d.department) {
            self.audit_iot(meta, p, "iot.device.update", format!("device:{id}"), Outcome::Denied).await?;
            return Err(CoreError::forbidden());
        }
        let mut errs = ValidationErrors::new();
        if let Some(n) = &patch.name {
            d.name = name(&mut errs, "name", n);
        }
        if patch.model.is_some() {
            d.model = model(&mut errs, patch.model.as_deref());
        }
        if patch.lon.is_some() {
            d.lon = coordinate(&mut errs, "lon", patch.lon, 180.0);
        }
        if patch.lat.is_some() {
            d.lat = coordinate(&mut errs, "lat", patch.lat, 90.0);
        }
        if patch.region.is_some() {
            d.region = region(&mut errs, patch.region.as_deref());
        }
        if let Some(s) = &patch.status {
            if !matches!(s.as_str(), "active" | "disabled") {
                errs.push(FieldError::new(
                    "status",
                    "invalid_value",
                    "status 须为 active 或 disabled / status is active or disabled",
                ));
            }
            d.status = s.clone();
        }
        errs.into_result()?;
        d.updated_at = Utc::now().trunc_subsecs(6);
        self.store.update_device(&d).await?;
        self.audit_iot(meta, p, "iot.device.update", format!("device:{id}"), Outcome::Success).await?;
        let iv = self.store.get_device_type(d.type_id).await?.map(|t| t.interval_secs).unwrap_or(60);
        Ok(device_view(d, iv, Utc::now()))
    }
}
