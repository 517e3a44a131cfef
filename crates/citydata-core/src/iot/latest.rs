//! Real-time reads of a stream-fed resource: the newest row per device and the last 24 hours
//! of one measured item, both through the gate (`read_rows`), so a caller without a grant gets
//! the gate's refusal, masks apply and every read is audited.

use crate::reads::{FieldView, RowsParams};
use crate::{Core, CoreError, RequestMeta};
use chrono::{Duration, Utc};
use citydata_domain::iot::{PayloadInput, PayloadSchema};
use citydata_domain::principal::Principal;
use serde::Serialize;
use serde_json::Value;

/// The newest row of each device (or of one).
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LatestView {
    /// The item that names the device and the item that holds the time.
    pub device_item: String,
    pub time_item: String,
    pub fields: Vec<FieldView>,
    /// One row per device, newest device first.
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<Object>))]
    pub rows: Vec<Value>,
}

/// How many rows a `latest` read scans, newest first (devices silent for longer are absent).
pub const LATEST_SCAN: u32 = 5_000;

/// The window a `latest` read tries first.
const RECENT_MINUTES: i64 = 15;

/// Text literal for the filter language.
fn quoted(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

impl Core {
    /// The device and time items of a stream-fed resource (from its first device type).
    async fn stream_items(
        &self,
        resource_id: uuid::Uuid,
        items: &[citydata_domain::resource::InfoItem],
    ) -> Option<(String, String)> {
        let types = self.store.list_device_types(None, 10_000).await.ok()?;
        types.into_iter().filter(|t| t.resource_id == resource_id).rev().find_map(|t| {
            let input: PayloadInput = serde_json::from_value(t.payload).ok()?;
            let s = PayloadSchema::parse(&input, items).ok()?;
            Some((s.device_item, s.timestamp_item))
        })
    }

    /// `GET /resources/{id}/latest[?device=]`: the newest row per device, through the gate.
    pub async fn latest(
        &self,
        meta: &RequestMeta,
        principal: Option<&Principal>,
        key: &str,
        device: Option<&str>,
    ) -> Result<LatestView, CoreError> {
        let resource = self.get_resource(principal, key).await?;
        let (device_item, time_item) =
            self.stream_items(resource.id, &resource.content.items).await.ok_or_else(|| {
                CoreError::NotFound(
                    "此资源没有设备类型，不是实时数据流 / the resource has no device type (it is not a stream)".into(),
                )
            })?;
        let filter = match device.map(str::trim).filter(|d| !d.is_empty()) {
            Some(d) if d.len() > 64 => {
                return Err(citydata_domain::FieldError::new(
                    "device",
                    "invalid_device_id",
                    "device 过长 / device is too long",
                )
                .into());
            }
            Some(d) => Some(format!("{device_item} = {}", quoted(d))),
            None => None,
        };
        let limit = if device.is_some() { 1 } else { LATEST_SCAN };
        // First the last `RECENT_MINUTES` only: the time item's statistics skip every older
        // file and row group, so a busy stream's `latest` does not slow down as its table
        // grows. The answer is the same as the full read's when that window holds `limit`
        // rows; otherwise (or when the caller may not filter on the time item) the full read follows.
        let since = (Utc::now() - Duration::minutes(RECENT_MINUTES)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        let recent = format!("{time_item} >= {}", quoted(&since));
        let windowed = RowsParams {
            filter: Some(match &filter {
                Some(f) => format!("{f} AND {recent}"),
                None => recent,
            }),
            sort: Some(format!("-{time_item}")),
            limit: Some(limit),
            ..Default::default()
        };
        let key = resource.id.to_string();
        // A caller who may not filter on the time item (masked) gets the full read.
        let r = match self.read_rows(meta, principal, &key, &windowed).await {
            Ok(r) if r.rows.len() >= limit as usize => r,
            _ => self.read_rows(meta, principal, &key, &RowsParams { filter, ..windowed }).await?,
        };
        let mut seen = std::collections::HashSet::new();
        let rows = r.rows.into_iter().filter(|row| seen.insert(row.get(&device_item).map(Value::to_string))).collect();
        Ok(LatestView { device_item, time_item, fields: r.fields, rows })
    }

    /// The last 24 hours of `item` per device, newest last, as (device, time, value) rows — the
    /// portal's line chart. Through the gate like `latest`.
    pub async fn recent_series(
        &self,
        meta: &RequestMeta,
        principal: Option<&Principal>,
        key: &str,
        item: &str,
    ) -> Result<(LatestView, Vec<Value>), CoreError> {
        let latest = self.latest(meta, principal, key, None).await?;
        let since = (Utc::now() - Duration::hours(24)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        let params = RowsParams {
            fields: Some(format!("{},{},{item}", latest.device_item, latest.time_item)),
            filter: Some(format!("{} >= {}", latest.time_item, quoted(&since))),
            sort: Some(latest.time_item.clone()),
            limit: Some(LATEST_SCAN),
            ..Default::default()
        };
        let rows = self.read_rows(meta, principal, key, &params).await?.rows;
        Ok((latest, rows))
    }
}
