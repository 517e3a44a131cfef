//! The GeoJSON export (`format=geojson`, issue #24): a FeatureCollection streamed batch by
//! batch from the same governed plan as every other export. The geometry is the first spatial
//! item the caller reads, as the plan presents it (WKT: exact, or snapped by the location
//! mask); the other items are the feature's properties.

use citydata_domain::geo_cell;
use serde_json::{Map, Value};

pub(crate) const HEAD: &[u8] = br#"{"type":"FeatureCollection","features":["#;
pub(crate) const TAIL: &[u8] = b"]}";
pub(crate) const EMPTY: &[u8] = br#"{"type":"FeatureCollection","features":[]}"#;

/// One batch's features, comma-separated, with the collection's head before the first.
pub(crate) fn features(
    b: &arrow::record_batch::RecordBatch,
    geometry: usize,
    first: bool,
) -> Result<Vec<u8>, arrow::error::ArrowError> {
    let mut arr = Vec::new();
    {
        let mut w = arrow::json::WriterBuilder::new()
            .with_explicit_nulls(true)
            .build::<_, arrow::json::writer::JsonArray>(&mut arr);
        w.write(b)?;
        w.finish()?;
    }
    let rows: Vec<Map<String, Value>> =
        serde_json::from_slice(&arr).map_err(|e| arrow::error::ArrowError::JsonError(e.to_string()))?;
    let name = b.schema().field(geometry).name().clone();
    let mut out = Vec::new();
    if first {
        out.extend_from_slice(HEAD);
    }
    for (i, mut props) in rows.into_iter().enumerate() {
        let geom = props
            .remove(&name)
            .and_then(|v| v.as_str().map(str::to_string))
            .and_then(|t| geo_cell::parse_text(&t).ok())
            .map(|g| g.to_geojson())
            .unwrap_or(Value::Null);
        if !(first && i == 0) {
            out.push(b',');
        }
        let f = serde_json::json!({"type": "Feature", "geometry": geom, "properties": props});
        out.extend_from_slice(f.to_string().as_bytes());
    }
    Ok(out)
}
