//! 物联网 pages: a stream-fed dataset's live page (the newest value per station and a line chart
//! of the last 24 hours, hourly means, redrawn on each reload) and the console's device list
//! (newest message, message count, online/offline). The live page reads through the gate
//! (`Core::latest`, `Core::recent_series`), like every preview.

use crate::chart;
use crate::ctx::Ctx;
use crate::render::Portal;
use axum::Extension;
use axum::extract::{Path, State};
use axum::response::Response;
use chrono::{DateTime, Timelike};
use citydata_api::AppState;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::Arc;

type P = Extension<Arc<Portal>>;

fn cell(v: &Value) -> String {
    match v {
        Value::Null => "—".into(),
        Value::String(s) => match DateTime::parse_from_rfc3339(s) {
            Ok(t) => t.format("%Y-%m-%d %H:%M:%S").to_string(),
            Err(_) => s.clone(),
        },
        other => other.to_string(),
    }
}

/// `/datasets/{slug}/live`: the newest row per station and the 24-hour chart of the first
/// measured number.
pub async fn live(State(state): State<AppState>, Extension(portal): P, Path(slug): Path<String>, ctx: Ctx) -> Response {
    let p = ctx.principal.as_ref();
    let r = match state.core.get_resource(p, &slug).await {
        Ok(r) => r,
        Err(e) => return ctx.core_error(&portal, e),
    };
    let latest = match state.core.latest(&ctx.meta, p, &slug, None).await {
        Ok(l) => l,
        // A real-time resource no stream feeds yet: an empty page, not an error.
        Err(citydata_core::CoreError::NotFound(_)) => {
            return ctx.render(
                &portal,
                "iot_live.html",
                json!({"r": {"name": r.content.name, "slug": r.content.slug.as_str()}}),
            );
        }
        Err(e) => return ctx.core_error(&portal, e),
    };
    let measured = latest
        .fields
        .iter()
        .find(|f| {
            f.name != latest.device_item
                && f.name != latest.time_item
                && f.mask.is_none()
                && matches!(f.data_type.as_str(), "integer" | "decimal" | "money")
        })
        .map(|f| (f.name.clone(), f.title.clone()));
    let chart = match &measured {
        Some((name, title)) => match state.core.recent_series(&ctx.meta, p, &slug, name).await {
            Ok((_, rows)) => {
                // Hourly means over the stations, in the platform's zone.
                let mut hours: BTreeMap<String, (f64, u32)> = BTreeMap::new();
                for row in &rows {
                    let (Some(t), Some(v)) = (
                        row.get(&latest.time_item)
                            .and_then(Value::as_str)
                            .and_then(|t| DateTime::parse_from_rfc3339(t).ok()),
                        row.get(name).and_then(|v| v.as_f64().or_else(|| v.as_str().and_then(|s| s.parse().ok()))),
                    ) else {
                        continue;
                    };
                    let key = t
                        .with_minute(0)
                        .and_then(|t| t.with_second(0))
                        .map(|t| t.format("%m-%d %H:00").to_string())
                        .unwrap_or_default();
                    let e = hours.entry(key).or_default();
                    e.0 += v;
                    e.1 += 1;
                }
                let data: Vec<(String, f64)> =
                    hours.into_iter().map(|(k, (s, n))| (k, (s / f64::from(n) * 10.0).round() / 10.0)).collect();
                (!data.is_empty()).then(|| chart::line(title, &data))
            }
            Err(e) => return ctx.core_error(&portal, e),
        },
        None => None,
    };
    let heads: Vec<String> = latest.fields.iter().map(|f| f.title.clone()).collect();
    let rows: Vec<Vec<String>> = latest
        .rows
        .iter()
        .map(|row| latest.fields.iter().map(|f| cell(row.get(&f.name).unwrap_or(&Value::Null))).collect())
        .collect();
    ctx.render(
        &portal,
        "iot_live.html",
        json!({
            "r": {"name": r.content.name, "slug": r.content.slug.as_str()},
            "heads": heads, "rows": rows, "chart": chart,
            "measured": measured.map(|m| m.1),
        }),
    )
}

/// `/console/devices`: the devices of my departments.
pub async fn devices(State(state): State<AppState>, Extension(portal): P, ctx: Ctx) -> Response {
    let p = match ctx.require_login() {
        Ok(p) => p.clone(),
        Err(r) => return r,
    };
    let list = match state.core.list_devices(&p, None).await {
        Ok(l) => l,
        Err(e) => return ctx.core_error(&portal, e),
    };
    let now = chrono::Utc::now();
    let devices: Vec<Value> = list
        .iter()
        .map(|d| {
            // Messages per hour since the device was first seen by a stream (a rough rate).
            let hours = d.last_seen.map(|t| ((now - t).num_seconds().max(0) as f64 / 3600.0).max(1.0)).unwrap_or(1.0);
            let last = d
                .last_message
                .as_ref()
                .and_then(Value::as_object)
                .map(|o| o.iter().map(|(k, v)| format!("{k}={}", cell(v))).collect::<Vec<_>>().join(" · "))
                .unwrap_or_default();
            json!({
                "id": d.id, "name": d.name, "model": d.model, "region": d.region,
                "last_seen": d.last_seen.map(|t| t.with_timezone(&citydata_domain::cast::local_offset()).format("%Y-%m-%d %H:%M:%S").to_string()),
                "messages": d.messages, "rate": (d.messages as f64 / hours * 10.0).round() / 10.0,
                "online": d.online, "disabled": d.status != "active", "last": last,
            })
        })
        .collect();
    ctx.render(&portal, "console/devices.html", json!({ "devices": devices }))
}
