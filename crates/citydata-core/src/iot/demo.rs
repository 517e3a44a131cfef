//! The demo's air-quality stations: a device type and six stations for 空气质量实时监测数据
//! (`203/000001`, 生态环境局) and a stream from `citydata/air/+` on a local broker, created once
//! (`serve --demo` with `demo_mqtt_url`; `scripts/iot-simulate.sh` publishes the stations).

use crate::{Core, CoreError};
use chrono::{SubsecRound, Utc};
use citydata_store::{DeviceRecord, DeviceTypeRecord, StreamRecord};
use uuid::Uuid;

/// The simulated stations: id, name, longitude, latitude, region.
pub const STATIONS: &[(&str, &str, &str, &str, &str)] = &[
    ("AQ-HL01", "海陵区公园路站", "119.9230", "32.4550", "321202"),
    ("AQ-GG01", "高港区口岸站", "119.8810", "32.3190", "321203"),
    ("AQ-JY01", "姜堰区罗塘站", "120.1270", "32.5090", "321204"),
    ("AQ-XH01", "兴化市昭阳站", "119.8520", "32.9100", "321281"),
    ("AQ-JJ01", "靖江市城南站", "120.2770", "32.0140", "321282"),
    ("AQ-TX01", "泰兴市泰兴站", "120.0510", "32.1710", "321283"),
];

impl Core {
    /// Create the demo stream into 空气质量实时监测数据 unless one exists. Returns its id.
    pub async fn seed_demo_stream(&self, broker_url: &str) -> Result<Option<Uuid>, CoreError> {
        let Some(r) = self.store.find_resource("203/000001").await? else { return Ok(None) };
        if let Some(s) = self.store.list_streams(None, 10_000).await?.into_iter().find(|s| s.resource_id == r.id) {
            return Ok(Some(s.id));
        }
        let now = Utc::now().trunc_subsecs(6);
        let dept = r.content.provider.to_string();
        let t = DeviceTypeRecord {
            id: Uuid::now_v7(),
            name: "空气质量自动监测站".into(),
            department: dept.clone(),
            resource_id: r.id,
            payload: serde_json::json!({
                "device_item": "zdbm", "timestamp_item": "jcsj", "timestamp_path": "time",
                "fields": [{"item": "aqi", "path": "aqi"}, {"item": "pm25", "path": "pm25"}, {"item": "pm10", "path": "pm10"}]
            }),
            interval_secs: 5,
            created_at: now,
            updated_at: now,
        };
        self.store.create_device_type(&t).await?;
        for (id, name, lon, lat, region) in STATIONS {
            let d = DeviceRecord {
                id: (*id).into(),
                type_id: t.id,
                name: (*name).into(),
                model: Some("AQMS-3000".into()),
                lon: Some((*lon).into()),
                lat: Some((*lat).into()),
                region: Some((*region).into()),
                department: dept.clone(),
                resource_id: r.id,
                status: "active".into(),
                last_seen: None,
                last_message: None,
                messages: 0,
                offline_notified_at: None,
                created_at: now,
                updated_at: now,
            };
            match self.store.create_device(&d).await {
                Ok(()) | Err(citydata_store::StoreError::Conflict(_)) => {}
                Err(e) => return Err(e.into()),
            }
        }
        let s = StreamRecord {
            id: Uuid::now_v7(),
            name: "空气质量监测站数据流".into(),
            department: dept,
            resource_id: r.id,
            broker_url: broker_url.into(),
            topics: vec!["citydata/air/+".into()],
            username: None,
            password: None,
            qos: 1,
            mqtt_version: 4,
            ca_pem: None,
            batch_secs: 1,
            batch_max: 5_000,
            max_payload: 65_536,
            dedup_secs: 3_600,
            enabled: true,
            node: None,
            lease_until: None,
            created_at: now,
            updated_at: now,
        };
        self.store.create_stream(&s).await?;
        Ok(Some(s.id))
    }
}
