//! The Arrow schema of a resource's table, from its information items.

use arrow::datatypes::{DataType as A, Field, Schema, SchemaRef, TimeUnit};
use citydata_domain::resource::InfoItem;
use citydata_domain::vocab::DataType;
use std::collections::HashMap;
use std::sync::Arc;

/// Decimal items keep six fractional digits; money keeps two.
pub const DECIMAL_SCALE: i8 = 6;
pub const MONEY_SCALE: i8 = 2;

/// Times are stored as UTC instants. Cell text without an offset is a local time in the
/// platform's zone ([`citydata_domain::cast::local_offset`], UTC+8 by default); reads present
/// them in that zone ([`local_timestamp_type`]).
pub const TZ: &str = "UTC";

/// The type every read presents a datetime column as: the same instants, in the platform's zone,
/// so text, JSON, CSV, SQL literals and `date_trunc` all work in local time.
pub fn local_timestamp_type() -> A {
    A::Timestamp(TimeUnit::Microsecond, Some(citydata_domain::cast::local_zone_name().into()))
}

pub fn arrow_type(t: DataType) -> A {
    match t {
        DataType::String | DataType::Text => A::Utf8,
        DataType::Integer => A::Int64,
        DataType::Decimal => A::Decimal128(38, DECIMAL_SCALE),
        DataType::Money => A::Decimal128(20, MONEY_SCALE),
        DataType::Boolean => A::Boolean,
        DataType::Date => A::Date32,
        DataType::Datetime => A::Timestamp(TimeUnit::Microsecond, Some(TZ.into())),
        DataType::Binary | DataType::Point | DataType::Geometry => A::Binary,
    }
}

/// One nullable field per item, named by the item's name, with its Chinese title in metadata
/// and, for a spatial item, its type ([`crate::bbox::SPATIAL_KIND`]: the write adds its
/// bounding-box columns). (Required items are enforced by validation; keeping fields nullable
/// lets nullable items be added later without rewriting the table.)
pub fn table_schema(items: &[InfoItem]) -> SchemaRef {
    Arc::new(Schema::new(
        items
            .iter()
            .map(|i| {
                let mut meta = HashMap::from([("title".to_string(), i.title.clone())]);
                match i.data_type {
                    DataType::Point => meta.insert(crate::bbox::SPATIAL_KIND.into(), "point".into()),
                    DataType::Geometry => meta.insert(crate::bbox::SPATIAL_KIND.into(), "geometry".into()),
                    _ => None,
                };
                Field::new(i.name.as_str(), arrow_type(i.data_type), true).with_metadata(meta)
            })
            .collect::<Vec<_>>(),
    ))
}

/// The quarantine table's schema.
pub fn quarantine_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("ingest_id", A::Utf8, false),
        Field::new("line", A::Int64, false),
        Field::new("item", A::Utf8, true),
        Field::new("rule", A::Utf8, false),
        Field::new("message", A::Utf8, false),
        Field::new("failures", A::Utf8, false),
        Field::new("record", A::Utf8, false),
        Field::new("quarantined_at", A::Timestamp(TimeUnit::Microsecond, Some(TZ.into())), false),
    ]))
}
