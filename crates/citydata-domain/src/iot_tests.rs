use super::*;
use crate::resource::ItemInput;
use serde_json::json;

fn items() -> Vec<InfoItem> {
    let input = |name: &str, title: &str, t: &str| ItemInput {
        name: Some(name.into()),
        title: Some(title.into()),
        data_type: Some(t.into()),
        ..Default::default()
    };
    let mut r: crate::resource::ResourceInput = serde_json::from_value(json!({
        "name": "空气质量实时监测数据", "abstract": "站点小时浓度", "provider": "sthjj",
        "classification": {"class": "thematic", "theme": "environment"},
        "format": {"category": "service", "type": "api"},
        "share": {"type": "unconditional", "method": "api"}, "open": {"type": "none"},
        "update_cycle": "realtime", "security_level": "general_1"
    }))
    .unwrap();
    r.items = vec![
        input("zdbm", "站点编码", "string"),
        input("jcsj", "监测时间", "datetime"),
        input("aqi", "AQI", "integer"),
        input("pm25", "PM2.5", "decimal"),
    ];
    crate::resource::ResourceDraft::parse(&r).unwrap().content.items
}

fn schema() -> PayloadSchema {
    let input: PayloadInput = serde_json::from_value(json!({
        "device_item": "站点编码", "timestamp_item": "jcsj", "timestamp_path": "ts",
        "fields": [{"item": "aqi", "path": "aqi"}, {"item": "PM2.5", "path": "data.pm25", "factor": 1000.0}]
    }))
    .unwrap();
    PayloadSchema::parse(&input, &items()).unwrap()
}

#[test]
fn device_ids_are_checked() {
    assert!(DeviceId::parse("AQ-001").is_ok());
    assert!(DeviceId::parse("").is_err());
    assert!(DeviceId::parse("a/b").is_err());
    assert!(DeviceId::parse(&"x".repeat(65)).is_err());
}

#[test]
fn a_message_becomes_a_row_with_converted_units() {
    let d = schema()
        .decode("city/air/AQ-001", br#"{"ts":"2026-12-03T08:00:00+08:00","aqi":55,"data":{"pm25":0.0321}}"#)
        .unwrap();
    assert_eq!(d.device, "AQ-001");
    assert_eq!(d.row["zdbm"], "AQ-001");
    assert_eq!(d.row["jcsj"], "2026-12-03T00:00:00Z");
    assert_eq!(d.row["aqi"], "55");
    assert_eq!(d.row["pm25"], "32.1");
    assert_eq!(d.key, format!("AQ-001\u{1f}{}", d.at.timestamp_micros()));
}

#[test]
fn bad_messages_name_their_reason() {
    let s = schema();
    assert_eq!(s.decode("t/A", b"not json").unwrap_err().code, "not_json");
    assert_eq!(s.decode("t/A", b"[1,2]").unwrap_err().code, "not_json");
    assert_eq!(s.decode("t/A", br#"{"aqi":1}"#).unwrap_err().code, "missing_timestamp");
    assert_eq!(s.decode("t/A", br#"{"ts":"yesterday"}"#).unwrap_err().code, "invalid_timestamp");
    assert_eq!(s.decode("t/", br#"{"ts":"2026-12-03T08:00:00+08:00"}"#).unwrap_err().code, "missing_device");
}

#[test]
fn timestamp_formats() {
    let t = |f: &str, v: Value| parse_time(&v, &TimestampFormat::parse(f).unwrap()).map(|t| t.to_rfc3339());
    assert_eq!(t("epoch_s", json!(1_764_720_000)).as_deref(), Some("2025-12-03T00:00:00+00:00"));
    assert_eq!(t("epoch_ms", json!("1764720000000")).as_deref(), Some("2025-12-03T00:00:00+00:00"));
    assert_eq!(t("%Y-%m-%d %H:%M:%S", json!("2025-12-03 08:00:00")).as_deref(), Some("2025-12-03T00:00:00+00:00"));
    assert_eq!(t("epoch_s", json!(1e300)), None);
    assert!(TimestampFormat::parse("whenever").is_err());
}

#[test]
fn schemas_must_fit_the_items() {
    let bad: PayloadInput = serde_json::from_value(json!({
        "device_item": "nope", "timestamp_item": "aqi", "timestamp_path": "a..b",
        "fields": [{"item": "zdbm", "path": "x", "factor": 2.0}]
    }))
    .unwrap();
    let errs = PayloadSchema::parse(&bad, &items()).unwrap_err();
    let fields: Vec<&str> = errs.0.iter().map(|e| e.field.as_str()).collect();
    assert!(fields.contains(&"payload.device_item"), "{fields:?}");
    assert!(fields.contains(&"payload.timestamp_item"), "{fields:?}");
    assert!(fields.contains(&"payload.timestamp_path"), "{fields:?}");
    assert!(fields.contains(&"payload.fields[0].factor"), "{fields:?}");
}

#[test]
fn a_payload_id_keys_deduplication() {
    let input: PayloadInput = serde_json::from_value(json!({
        "device_item": "zdbm", "device_path": "sid", "timestamp_item": "jcsj", "timestamp_path": "ts",
        "timestamp_format": "epoch_s", "id_path": "msg", "fields": [{"item": "aqi", "path": "aqi"}]
    }))
    .unwrap();
    let s = PayloadSchema::parse(&input, &items()).unwrap();
    let d = s.decode("ignored", br#"{"sid":"S1","ts":1764720000,"msg":"m-7","aqi":null}"#).unwrap();
    assert_eq!((d.device.as_str(), d.key.as_str(), &d.row["aqi"]), ("S1", "S1\u{1f}id:m-7", &Value::Null));
}
