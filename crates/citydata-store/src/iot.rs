//! 物联网: device types, devices and MQTT streams, and the stream lease.

use crate::Result;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

/// A device type (设备类型): its payload schema (the input JSON, checked by core against the
/// resource's items) and the interval its devices report at.
#[derive(Debug, Clone, PartialEq)]
pub struct DeviceTypeRecord {
    pub id: Uuid,
    pub name: String,
    pub department: String,
    pub resource_id: Uuid,
    pub payload: serde_json::Value,
    pub interval_secs: i32,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A device (设备). `lon`/`lat` are decimal text; `last_message` the newest decoded row.
#[derive(Debug, Clone, PartialEq)]
pub struct DeviceRecord {
    pub id: String,
    pub type_id: Uuid,
    pub name: String,
    pub model: Option<String>,
    pub lon: Option<String>,
    pub lat: Option<String>,
    pub region: Option<String>,
    pub department: String,
    pub resource_id: Uuid,
    /// `active` or `disabled`.
    pub status: String,
    pub last_seen: Option<DateTime<Utc>>,
    pub last_message: Option<serde_json::Value>,
    pub messages: i64,
    pub offline_notified_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// An MQTT stream into a resource's table. `password` is a secret: never in a view or a log.
#[derive(Clone, PartialEq)]
pub struct StreamRecord {
    pub id: Uuid,
    pub name: String,
    pub department: String,
    pub resource_id: Uuid,
    pub broker_url: String,
    pub topics: Vec<String>,
    pub username: Option<String>,
    pub password: Option<String>,
    pub qos: i32,
    /// 4 (MQTT 3.1.1) or 5 (MQTT 5.0).
    pub mqtt_version: i32,
    /// PEM certificates that may sign an `mqtts` broker's certificate (besides the system's).
    pub ca_pem: Option<String>,
    pub batch_secs: i32,
    pub batch_max: i32,
    pub max_payload: i32,
    pub dedup_secs: i32,
    pub enabled: bool,
    pub node: Option<String>,
    pub lease_until: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl std::fmt::Debug for StreamRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamRecord")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("broker_url", &self.broker_url)
            .field("topics", &self.topics)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .finish_non_exhaustive()
    }
}

/// What a message did to its device: seen at `at`, `n` more messages, the newest row.
#[derive(Debug, Clone, PartialEq)]
pub struct DeviceSeen {
    pub id: String,
    pub at: DateTime<Utc>,
    pub n: i64,
    pub last_message: serde_json::Value,
}

#[async_trait]
pub trait IotStore: Send + Sync {
    async fn create_device_type(&self, t: &DeviceTypeRecord) -> Result<()>;
    async fn get_device_type(&self, id: Uuid) -> Result<Option<DeviceTypeRecord>>;
    /// Newest first; `department` narrows.
    async fn list_device_types(&self, department: Option<&str>, limit: u32) -> Result<Vec<DeviceTypeRecord>>;
    async fn update_device_type(&self, t: &DeviceTypeRecord) -> Result<bool>;

    /// `Conflict` when the id exists.
    async fn create_device(&self, d: &DeviceRecord) -> Result<()>;
    /// Several devices in one transaction: all or none (`Conflict` names the first id taken).
    async fn create_devices(&self, ds: &[DeviceRecord]) -> Result<()>;
    async fn get_device(&self, id: &str) -> Result<Option<DeviceRecord>>;
    /// The registered devices among `ids` (any order; unknown ids are absent).
    async fn get_devices(&self, ids: &[String]) -> Result<Vec<DeviceRecord>>;
    /// By id; `department` and `resource_id` narrow.
    async fn list_devices(
        &self,
        department: Option<&str>,
        resource_id: Option<Uuid>,
        limit: u32,
    ) -> Result<Vec<DeviceRecord>>;
    /// The registry fields (not the counters).
    async fn update_device(&self, d: &DeviceRecord) -> Result<bool>;
    /// Record committed messages: `last_seen` moves forward only, counters add up.
    async fn touch_devices(&self, seen: &[DeviceSeen]) -> Result<()>;
    /// Compare-and-set of the offline notice (`None` clears it once the device is back).
    async fn mark_device_offline(
        &self,
        id: &str,
        from: Option<DateTime<Utc>>,
        to: Option<DateTime<Utc>>,
    ) -> Result<bool>;

    async fn create_stream(&self, s: &StreamRecord) -> Result<()>;
    async fn get_stream(&self, id: Uuid) -> Result<Option<StreamRecord>>;
    async fn list_streams(&self, department: Option<&str>, limit: u32) -> Result<Vec<StreamRecord>>;
    async fn update_stream(&self, s: &StreamRecord) -> Result<bool>;
    /// Take or renew a stream's lease: succeeds when the stream is enabled and free, expired at
    /// `now`, or already this node's.
    async fn claim_stream(&self, id: Uuid, node: &str, until: DateTime<Utc>, now: DateTime<Utc>) -> Result<bool>;
    /// Give a lease up (shutdown), only if this node holds it.
    async fn release_stream(&self, id: Uuid, node: &str) -> Result<()>;
}
