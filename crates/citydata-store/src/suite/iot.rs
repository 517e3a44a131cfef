//! Device types, devices, streams and the stream lease.

use super::{depts, resource, rev};
use crate::{DeviceRecord, DeviceSeen, DeviceTypeRecord, Store, StoreError, StreamRecord};
use chrono::{Duration, SubsecRound, Utc};
use citydata_domain::vocab::ResourceState;
use std::sync::Arc;
use uuid::Uuid;

pub async fn iot_devices_and_stream_leases(s: Arc<dyn Store>) {
    depts(&*s).await;
    let r = resource(1, "gaj", "population", "none", ResourceState::Published);
    s.insert_resource(&r, &rev(&r, "create")).await.unwrap();
    let now = Utc::now().trunc_subsecs(6);
    let t = DeviceTypeRecord {
        id: Uuid::new_v4(),
        name: "空气站".into(),
        department: "gaj".into(),
        resource_id: r.id,
        payload: serde_json::json!({"device_item": "a"}),
        interval_secs: 60,
        created_at: now,
        updated_at: now,
    };
    s.create_device_type(&t).await.unwrap();
    assert_eq!(s.get_device_type(t.id).await.unwrap().unwrap(), t);
    assert_eq!(s.list_device_types(Some("gaj"), 10).await.unwrap().len(), 1);
    assert!(s.list_device_types(Some("other"), 10).await.unwrap().is_empty());
    let d = DeviceRecord {
        id: "AQ-1".into(),
        type_id: t.id,
        name: "海陵站".into(),
        model: Some("X1".into()),
        lon: Some("119.92".into()),
        lat: Some("32.45".into()),
        region: Some("321202".into()),
        department: "gaj".into(),
        resource_id: r.id,
        status: "active".into(),
        last_seen: None,
        last_message: None,
        messages: 0,
        offline_notified_at: None,
        created_at: now,
        updated_at: now,
    };
    s.create_device(&d).await.unwrap();
    assert!(matches!(s.create_device(&d).await, Err(StoreError::Conflict(_))));
    assert_eq!(s.get_device("AQ-1").await.unwrap().unwrap(), d);
    // Several at once; unknown ids are absent (and more ids than one statement's chunk).
    let mut ids: Vec<String> = (0..1200).map(|i| format!("X-{i}")).collect();
    ids.push("AQ-1".into());
    assert_eq!(s.get_devices(&ids).await.unwrap(), vec![d.clone()]);
    assert!(s.get_devices(&[]).await.unwrap().is_empty());
    // Touches add up and never move last_seen backwards.
    let seen = |at, v: i64| DeviceSeen { id: "AQ-1".into(), at, n: 2, last_message: serde_json::json!({ "v": v }) };
    s.touch_devices(&[seen(now, 1)]).await.unwrap();
    s.touch_devices(&[seen(now - Duration::hours(1), 0)]).await.unwrap();
    let got = s.get_device("AQ-1").await.unwrap().unwrap();
    assert_eq!((got.messages, got.last_seen, got.last_message), (4, Some(now), Some(serde_json::json!({"v": 1}))));
    // The offline notice is a compare-and-set.
    assert!(s.mark_device_offline("AQ-1", None, Some(now)).await.unwrap());
    assert!(!s.mark_device_offline("AQ-1", None, Some(now)).await.unwrap());
    assert!(s.mark_device_offline("AQ-1", Some(now), None).await.unwrap());
    assert_eq!(s.list_devices(None, Some(r.id), 10).await.unwrap().len(), 1);
    // Streams: one node holds the lease until it lapses.
    let st = StreamRecord {
        id: Uuid::new_v4(),
        name: "空气站数据流".into(),
        department: "gaj".into(),
        resource_id: r.id,
        broker_url: "mqtt://127.0.0.1:1883".into(),
        topics: vec!["city/air/+".into()],
        username: Some("u".into()),
        password: Some("secret".into()),
        qos: 1,
        mqtt_version: 5,
        ca_pem: Some("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n".into()),
        batch_secs: 1,
        batch_max: 1000,
        max_payload: 65536,
        dedup_secs: 3600,
        enabled: true,
        node: None,
        lease_until: None,
        created_at: now,
        updated_at: now,
    };
    s.create_stream(&st).await.unwrap();
    assert!(!format!("{st:?}").contains("secret"));
    assert_eq!(s.get_stream(st.id).await.unwrap().unwrap(), st);
    let until = now + Duration::seconds(30);
    assert!(s.claim_stream(st.id, "n1", until, now).await.unwrap());
    assert!(!s.claim_stream(st.id, "n2", until, now).await.unwrap());
    assert!(s.claim_stream(st.id, "n1", until, now).await.unwrap());
    assert!(s.claim_stream(st.id, "n2", until + Duration::seconds(30), until + Duration::seconds(1)).await.unwrap());
    s.release_stream(st.id, "n1").await.unwrap();
    assert_eq!(s.get_stream(st.id).await.unwrap().unwrap().node.as_deref(), Some("n2"));
    s.release_stream(st.id, "n2").await.unwrap();
    let mut off = s.get_stream(st.id).await.unwrap().unwrap();
    off.enabled = false;
    off.mqtt_version = 4;
    off.ca_pem = None;
    assert!(s.update_stream(&off).await.unwrap());
    let back = s.get_stream(st.id).await.unwrap().unwrap();
    assert_eq!((back.mqtt_version, back.ca_pem), (4, None));
    assert!(!s.claim_stream(st.id, "n1", until, now).await.unwrap());
    assert_eq!(s.list_streams(Some("gaj"), 10).await.unwrap().len(), 1);
}
