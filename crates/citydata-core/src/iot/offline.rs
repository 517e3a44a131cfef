//! 离线检测: a device silent for [`OFFLINE_AFTER_INTERVALS`] reporting intervals is offline; the
//! owner department's stewards are told once (a compare-and-set on `offline_notified_at`, so
//! one notice whichever node sweeps), and the mark is cleared when the device reports again.

use super::OFFLINE_AFTER_INTERVALS;
use crate::{Core, CoreError};
use chrono::{DateTime, Duration, Utc};
use std::collections::HashMap;

impl Core {
    /// Notify the owners of devices that went offline since the last sweep; returns how many.
    pub async fn sweep_offline_devices(&self, now: DateTime<Utc>) -> Result<usize, CoreError> {
        let intervals: HashMap<uuid::Uuid, i32> =
            self.store.list_device_types(None, 10_000).await?.into_iter().map(|t| (t.id, t.interval_secs)).collect();
        let mut sent = 0;
        for d in self.store.list_devices(None, None, 100_000).await? {
            let Some(seen) = d.last_seen else { continue };
            let limit = Duration::seconds(
                i64::from(intervals.get(&d.type_id).copied().unwrap_or(60)) * OFFLINE_AFTER_INTERVALS,
            );
            let offline = d.status == "active" && now - seen > limit;
            match (offline, d.offline_notified_at) {
                (true, None) => {
                    if !self.store.mark_device_offline(&d.id, None, Some(now)).await? {
                        continue; // another node told them
                    }
                    let to = self.answerers(&d.department).await?;
                    self.notify(
                        &to,
                        "iot.device_offline",
                        format!("设备离线：{} / device offline: {}", d.name, d.id),
                        format!(
                            "设备 {}（{}）最近上报于 {}，已超过 {} 个上报周期 / last seen {}, more than {} intervals ago",
                            d.name,
                            d.id,
                            citydata_domain::cast::format_instant(seen),
                            OFFLINE_AFTER_INTERVALS,
                            citydata_domain::cast::format_instant(seen),
                            OFFLINE_AFTER_INTERVALS
                        ),
                        "/console/devices".into(),
                    )
                    .await?;
                    sent += 1;
                }
                (false, Some(at)) => {
                    self.store.mark_device_offline(&d.id, Some(at), None).await?;
                }
                _ => {}
            }
        }
        Ok(sent)
    }
}
