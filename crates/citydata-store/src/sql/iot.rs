//! Device types, devices and MQTT streams. A stream's lease is one compare-and-set `UPDATE`
//! (free, expired or already ours), so on both backends one node at a time holds it.

use super::{Cols, Db, SqlBackend, SqlRow, json_text, sql, unique};
use crate::{DeviceRecord, DeviceSeen, DeviceTypeRecord, IotStore, Result, StoreError, StreamRecord};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

fn device_type<R: SqlRow>(r: &Cols<'_, R>) -> Result<DeviceTypeRecord> {
    Ok(DeviceTypeRecord {
        id: r.uuid("id")?,
        name: r.text("name")?,
        department: r.text("department")?,
        resource_id: r.uuid("resource_id")?,
        payload: r.json("payload")?,
        interval_secs: r.i32("interval_secs")?,
        created_at: r.time("created_at")?,
        updated_at: r.time("updated_at")?,
    })
}

fn device<R: SqlRow>(r: &Cols<'_, R>) -> Result<DeviceRecord> {
    let last_message = match r.opt_text("last_message")? {
        Some(t) => Some(serde_json::from_str(&t).map_err(|e| r.corrupt("last_message", e))?),
        None => None,
    };
    Ok(DeviceRecord {
        id: r.text("id")?,
        type_id: r.uuid("type_id")?,
        name: r.text("name")?,
        model: r.opt_text("model")?,
        lon: r.opt_text("lon")?,
        lat: r.opt_text("lat")?,
        region: r.opt_text("region")?,
        department: r.text("department")?,
        resource_id: r.uuid("resource_id")?,
        status: r.text("status")?,
        last_seen: r.opt_time("last_seen")?,
        last_message,
        messages: r.i64("messages")?,
        offline_notified_at: r.opt_time("offline_notified_at")?,
        created_at: r.time("created_at")?,
        updated_at: r.time("updated_at")?,
    })
}

fn stream<R: SqlRow>(r: &Cols<'_, R>) -> Result<StreamRecord> {
    Ok(StreamRecord {
        id: r.uuid("id")?,
        name: r.text("name")?,
        department: r.text("department")?,
        resource_id: r.uuid("resource_id")?,
        broker_url: r.text("broker_url")?,
        topics: r.json("topics")?,
        username: r.opt_text("username")?,
        password: r.opt_text("password")?,
        qos: r.i32("qos")?,
        mqtt_version: r.i32("mqtt_version")?,
        ca_pem: r.opt_text("ca_pem")?,
        batch_secs: r.i32("batch_secs")?,
        batch_max: r.i32("batch_max")?,
        max_payload: r.i32("max_payload")?,
        dedup_secs: r.i32("dedup_secs")?,
        enabled: r.flag("enabled")?,
        node: r.opt_text("node")?,
        lease_until: r.opt_time("lease_until")?,
        created_at: r.time("created_at")?,
        updated_at: r.time("updated_at")?,
    })
}

#[async_trait]
impl<B: SqlBackend> IotStore for B {
    async fn create_device_type(&self, t: &DeviceTypeRecord) -> Result<()> {
        let q = sql("INSERT INTO iot_device_types (id, name, department, resource_id, payload, interval_secs, \
                     created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)")
        .bind(t.id)
        .bind(&t.name)
        .bind(&t.department)
        .bind(t.resource_id)
        .bind(json_text(&t.payload)?)
        .bind(t.interval_secs)
        .bind(t.created_at)
        .bind(t.updated_at);
        self.run(q).await.map(drop)
    }

    async fn get_device_type(&self, id: Uuid) -> Result<Option<DeviceTypeRecord>> {
        self.map_one(sql("SELECT * FROM iot_device_types WHERE id = $1").bind(id), "iot_device_types", device_type)
            .await
    }

    async fn list_device_types(&self, department: Option<&str>, limit: u32) -> Result<Vec<DeviceTypeRecord>> {
        let mut q = sql("SELECT * FROM iot_device_types WHERE 1=1");
        if let Some(d) = department {
            q.push(" AND department = ").push_bind(d);
        }
        q.push(" ORDER BY created_at DESC, id LIMIT ").push_bind(i64::from(limit));
        self.map(q, "iot_device_types", device_type).await
    }

    async fn update_device_type(&self, t: &DeviceTypeRecord) -> Result<bool> {
        let q = sql("UPDATE iot_device_types SET name = $1, payload = $2, interval_secs = $3, updated_at = $4 \
                     WHERE id = $5")
        .bind(&t.name)
        .bind(json_text(&t.payload)?)
        .bind(t.interval_secs)
        .bind(t.updated_at)
        .bind(t.id);
        Ok(self.run(q).await? > 0)
    }

    async fn create_device(&self, d: &DeviceRecord) -> Result<()> {
        match self.execute(None, insert_device(d)).await {
            Ok(_) => Ok(()),
            Err(e) if unique(&e) => Err(StoreError::Conflict(format!("device {}", d.id))),
            Err(e) => Err(Self::error(e)),
        }
    }

    async fn create_devices(&self, ds: &[DeviceRecord]) -> Result<()> {
        let mut tx = self.tx_begin().await?;
        for d in ds {
            match self.execute(Some(&mut tx), insert_device(d)).await {
                Ok(_) => {}
                Err(e) if unique(&e) => return Err(StoreError::Conflict(format!("device {}", d.id))),
                Err(e) => return Err(Self::error(e)),
            }
        }
        self.tx_commit(tx).await
    }

    async fn get_device(&self, id: &str) -> Result<Option<DeviceRecord>> {
        self.map_one(sql("SELECT * FROM iot_devices WHERE id = $1").bind(id), "iot_devices", device).await
    }

    async fn get_devices(&self, ids: &[String]) -> Result<Vec<DeviceRecord>> {
        let mut out = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(500) {
            let mut q = sql("SELECT * FROM iot_devices WHERE id IN (");
            for (i, id) in chunk.iter().enumerate() {
                if i > 0 {
                    q.push(", ");
                }
                q.push_bind(id.as_str());
            }
            q.push(")");
            out.extend(self.map(q, "iot_devices", device).await?);
        }
        Ok(out)
    }

    async fn list_devices(
        &self,
        department: Option<&str>,
        resource_id: Option<Uuid>,
        limit: u32,
    ) -> Result<Vec<DeviceRecord>> {
        let mut q = sql("SELECT * FROM iot_devices WHERE 1=1");
        if let Some(d) = department {
            q.push(" AND department = ").push_bind(d);
        }
        if let Some(r) = resource_id {
            q.push(" AND resource_id = ").push_bind(r);
        }
        q.push(" ORDER BY id LIMIT ").push_bind(i64::from(limit));
        self.map(q, "iot_devices", device).await
    }

    async fn update_device(&self, d: &DeviceRecord) -> Result<bool> {
        let q = sql("UPDATE iot_devices SET type_id = $1, name = $2, model = $3, lon = $4, lat = $5, region = $6, \
                     status = $7, updated_at = $8 WHERE id = $9")
        .bind(d.type_id)
        .bind(&d.name)
        .bind(&d.model)
        .bind(&d.lon)
        .bind(&d.lat)
        .bind(&d.region)
        .bind(&d.status)
        .bind(d.updated_at)
        .bind(&d.id);
        Ok(self.run(q).await? > 0)
    }

    async fn touch_devices(&self, seen: &[DeviceSeen]) -> Result<()> {
        // One transaction: a stream batch touches thousands of devices, and one commit (one
        // fsync on SQLite) each would cost seconds.
        let mut tx = self.tx_begin().await?;
        for s in seen {
            let q = sql("UPDATE iot_devices SET messages = messages + $1, \
                         last_message = CASE WHEN last_seen IS NULL OR last_seen <= $2 THEN $3 ELSE last_message END, \
                         last_seen = CASE WHEN last_seen IS NULL OR last_seen <= $2 THEN $2 ELSE last_seen END \
                         WHERE id = $4")
            .bind(s.n)
            .bind(s.at)
            .bind(json_text(&s.last_message)?)
            .bind(&s.id);
            self.tx_run(&mut tx, q).await?;
        }
        self.tx_commit(tx).await
    }

    async fn mark_device_offline(
        &self,
        id: &str,
        from: Option<DateTime<Utc>>,
        to: Option<DateTime<Utc>>,
    ) -> Result<bool> {
        let mut q = sql("UPDATE iot_devices SET offline_notified_at = ");
        q.push_bind(to).push(" WHERE id = ").push_bind(id);
        match from {
            Some(f) => q.push(" AND offline_notified_at = ").push_bind(f),
            None => q.push(" AND offline_notified_at IS NULL"),
        };
        Ok(self.run(q).await? > 0)
    }

    async fn create_stream(&self, s: &StreamRecord) -> Result<()> {
        let q =
            sql("INSERT INTO iot_streams (id, name, department, resource_id, broker_url, topics, username, password, \
                     qos, batch_secs, batch_max, max_payload, dedup_secs, enabled, created_at, updated_at, mqtt_version, \
                     ca_pem) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)")
            .bind(s.id)
            .bind(&s.name)
            .bind(&s.department)
            .bind(s.resource_id)
            .bind(&s.broker_url)
            .bind(json_text(&s.topics)?)
            .bind(&s.username)
            .bind(&s.password)
            .bind(s.qos)
            .bind(s.batch_secs)
            .bind(s.batch_max)
            .bind(s.max_payload)
            .bind(s.dedup_secs)
            .bind(s.enabled)
            .bind(s.created_at)
            .bind(s.updated_at)
            .bind(s.mqtt_version)
            .bind(&s.ca_pem);
        self.run(q).await.map(drop)
    }

    async fn get_stream(&self, id: Uuid) -> Result<Option<StreamRecord>> {
        self.map_one(sql("SELECT * FROM iot_streams WHERE id = $1").bind(id), "iot_streams", stream).await
    }

    async fn list_streams(&self, department: Option<&str>, limit: u32) -> Result<Vec<StreamRecord>> {
        let mut q = sql("SELECT * FROM iot_streams WHERE 1=1");
        if let Some(d) = department {
            q.push(" AND department = ").push_bind(d);
        }
        q.push(" ORDER BY created_at, id LIMIT ").push_bind(i64::from(limit));
        self.map(q, "iot_streams", stream).await
    }

    async fn update_stream(&self, s: &StreamRecord) -> Result<bool> {
        let q = sql("UPDATE iot_streams SET name = $1, broker_url = $2, topics = $3, username = $4, password = $5, \
                     qos = $6, batch_secs = $7, batch_max = $8, max_payload = $9, dedup_secs = $10, enabled = $11, \
                     updated_at = $12, mqtt_version = $13, ca_pem = $14 WHERE id = $15")
        .bind(&s.name)
        .bind(&s.broker_url)
        .bind(json_text(&s.topics)?)
        .bind(&s.username)
        .bind(&s.password)
        .bind(s.qos)
        .bind(s.batch_secs)
        .bind(s.batch_max)
        .bind(s.max_payload)
        .bind(s.dedup_secs)
        .bind(s.enabled)
        .bind(s.updated_at)
        .bind(s.mqtt_version)
        .bind(&s.ca_pem)
        .bind(s.id);
        Ok(self.run(q).await? > 0)
    }

    async fn claim_stream(&self, id: Uuid, node: &str, until: DateTime<Utc>, now: DateTime<Utc>) -> Result<bool> {
        let q = sql("UPDATE iot_streams SET node = $1, lease_until = $2 WHERE id = $3 AND enabled = $4 \
                     AND (node IS NULL OR node = $1 OR lease_until IS NULL OR lease_until < $5)")
        .bind(node)
        .bind(until)
        .bind(id)
        .bind(true)
        .bind(now);
        Ok(self.run(q).await? > 0)
    }

    async fn release_stream(&self, id: Uuid, node: &str) -> Result<()> {
        let q = sql("UPDATE iot_streams SET node = NULL, lease_until = NULL WHERE id = $1 AND node = $2")
            .bind(id)
            .bind(node);
        self.run(q).await.map(drop)
    }
}

fn insert_device(d: &DeviceRecord) -> super::Stmt {
    sql("INSERT INTO iot_devices (id, type_id, name, model, lon, lat, region, department, resource_id, \
         status, messages, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 0, $11, $12)")
    .bind(&d.id)
    .bind(d.type_id)
    .bind(&d.name)
    .bind(&d.model)
    .bind(&d.lon)
    .bind(&d.lat)
    .bind(&d.region)
    .bind(&d.department)
    .bind(d.resource_id)
    .bind(&d.status)
    .bind(d.created_at)
    .bind(d.updated_at)
}
