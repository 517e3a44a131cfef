//! Differences between versions of a resource (revisions) and JSON merge patches.

use super::*;

/// One changed element between two versions of a resource's content.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FieldChange {
    pub field: String,
    pub before: serde_json::Value,
    pub after: serde_json::Value,
}

/// The top-level elements that differ between `before` and `after`.
pub fn diff(before: &ResourceContent, after: &ResourceContent) -> Vec<FieldChange> {
    let b = serde_json::to_value(before).unwrap_or_default();
    let a = serde_json::to_value(after).unwrap_or_default();
    let (Some(bm), Some(am)) = (b.as_object(), a.as_object()) else { return vec![] };
    let mut out = Vec::new();
    for (k, av) in am {
        let bv = bm.get(k).cloned().unwrap_or(serde_json::Value::Null);
        if &bv != av {
            out.push(FieldChange { field: k.clone(), before: bv, after: av.clone() });
        }
    }
    out
}

/// RFC 7396 JSON merge patch.
pub fn merge_patch(target: &mut serde_json::Value, patch: &serde_json::Value) {
    match patch {
        serde_json::Value::Object(p) => {
            if !target.is_object() {
                *target = serde_json::Value::Object(Default::default());
            }
            let t = target.as_object_mut().expect("object");
            for (k, v) in p {
                if v.is_null() {
                    t.remove(k);
                } else {
                    merge_patch(t.entry(k.clone()).or_insert(serde_json::Value::Null), v);
                }
            }
        }
        other => *target = other.clone(),
    }
}
