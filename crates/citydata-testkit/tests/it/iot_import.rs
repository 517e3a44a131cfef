//! Bulk device import (设备批量导入) from XLSX and CSV: all or nothing, every bad cell named by
//! row and column, only the owner department.

use crate::iot::{air_resource, iot_app, registry};
use citydata_testkit::{TestApp, assert_error, new_client};
use serde_json::Value;

fn xlsx(rows: &[[&str; 6]]) -> Vec<u8> {
    let mut wb = rust_xlsxwriter::Workbook::new();
    let ws = wb.add_worksheet();
    for (c, h) in ["设备编码", "设备名称", "型号", "经度", "纬度", "行政区划代码"].iter().enumerate()
    {
        ws.write_string(0, c as u16, *h).unwrap();
    }
    for (r, row) in rows.iter().enumerate() {
        for (c, v) in row.iter().enumerate() {
            match v.parse::<f64>() {
                Ok(n) if (3..=4).contains(&c) => ws.write_number(r as u32 + 1, c as u16, n).unwrap(),
                _ => ws.write_string(r as u32 + 1, c as u16, *v).unwrap(),
            };
        }
    }
    wb.save_to_buffer().unwrap()
}

async fn import(app: &TestApp, c: &reqwest::Client, tid: &str, body: Vec<u8>) -> reqwest::Response {
    c.post(app.url(&format!("/api/v1/device-types/{tid}/devices"))).body(body).send().await.unwrap()
}

async fn device_ids(app: &TestApp, c: &reqwest::Client, res: &str) -> Vec<String> {
    let v: Value =
        c.get(app.url(&format!("/api/v1/devices?resource={res}"))).send().await.unwrap().json().await.unwrap();
    let mut ids: Vec<String> = v.as_array().unwrap().iter().map(|d| d["id"].as_str().unwrap().to_string()).collect();
    ids.sort();
    ids
}

#[tokio::test]
async fn devices_are_imported_from_a_spreadsheet_all_or_nothing() {
    let app = iot_app().await;
    let gaj = app.login("gaj-steward").await;
    let res = air_resource(&app, &gaj).await;
    let tid = registry(&app, &gaj, &res).await;

    let good = xlsx(&[
        ["AQ-10", "海陵站", "TX-3", "119.92", "32.45", "321202"],
        ["AQ-11", "高港站", "", "119.88", "32.32", "321203"],
        ["AQ-12", "姜堰站", "TX-3", "", "", ""],
    ]);
    let r = import(&app, &gaj, &tid, good).await;
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
    let v: Value = r.json().await.unwrap();
    assert_eq!(v.as_array().unwrap().len(), 3);
    assert_eq!(device_ids(&app, &gaj, &res).await, ["AQ-1", "AQ-10", "AQ-11", "AQ-12", "AQ-2"]);

    // CSV in GB18030 with English headers.
    let (csv, _, _) = encoding_rs::GB18030.encode("id,name,lon,lat\nAQ-20,兴化站,119.85,32.93\n");
    let r = import(&app, &gaj, &tid, csv.into_owned()).await;
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());

    // Bad cells: each named by row and column, and nothing written.
    let bad = xlsx(&[
        ["AQ-30", "好站", "", "119.9", "32.4", "321202"],
        ["AQ-31", "经度错", "", "东经120", "32.4", ""],
        ["AQ-32", "", "", "200", "32.4", "99999x"],
        ["AQ-30", "重复", "", "", "", ""],
    ]);
    let e = assert_error(import(&app, &gaj, &tid, bad).await, 400, "validation_failed").await;
    let text = e.to_string();
    for needle in ["rows[3].lon", "第 3 行「经度」", "rows[4].name", "rows[4].lon", "rows[4].region", "rows[5].id"]
    {
        assert!(text.contains(needle), "{needle} not named in {e}");
    }
    assert!(!device_ids(&app, &gaj, &res).await.contains(&"AQ-30".to_string()), "nothing half-written");

    // An id that exists: 409, and the file's other devices are not written either.
    let clash = xlsx(&[["AQ-40", "新站", "", "", "", ""], ["AQ-1", "旧站", "", "", "", ""]]);
    assert_error(import(&app, &gaj, &tid, clash).await, 409, "conflict").await;
    assert!(!device_ids(&app, &gaj, &res).await.contains(&"AQ-40".to_string()));

    // A misspelt column is refused, not dropped; not a spreadsheet at all is refused.
    let e = assert_error(
        import(&app, &gaj, &tid, "设备编码,设备名称,经 度\nAQ-50,站,119\n".into()).await,
        400,
        "validation_failed",
    )
    .await;
    assert!(e.to_string().contains("经 度"), "{e}");
    assert_error(import(&app, &gaj, &tid, b"PK\x03\x04garbage".to_vec()).await, 400, "validation_failed").await;

    // Another department cannot see the type; anonymous callers are not signed in.
    let wjw = app.login("wjw-steward").await;
    let r = import(&app, &wjw, &tid, xlsx(&[["AQ-60", "站", "", "", "", ""]])).await;
    assert_eq!(r.status(), 404);
    let r = import(&app, &new_client(), &tid, xlsx(&[["AQ-61", "站", "", "", "", ""]])).await;
    assert_eq!(r.status(), 401);
    let ids = device_ids(&app, &gaj, &res).await;
    assert!(!ids.iter().any(|i| i == "AQ-60" || i == "AQ-61"), "{ids:?}");
}
