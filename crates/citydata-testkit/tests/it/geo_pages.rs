//! Spatial data on the portal, CKAN and DCAT (issue #24): the dataset pages of the demo's
//! spatial resources draw their features as server-side SVG (script-free, zh and en, legend,
//! hover titles, the generated district outlines), only for callers the gate lets read;
//! CKAN and DCAT offer a GeoJSON download; and in a real browser the map pages are
//! photographed in zh and en and the planning PDF opens under `CSP: sandbox`.

use crate::support::{get, login_form};
use citydata_testkit::{DEMO_PASSWORD, SpawnOptions, TestApp, new_client, spawn_app_with};
use fantoccini::Locator;
use serde_json::Value;

async fn slug_of(app: &TestApp, code: &str) -> String {
    let admin = app.login("admin").await;
    let r: Value = admin.get(app.url(&format!("/api/v1/resources/{code}"))).send().await.unwrap().json().await.unwrap();
    r["slug"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn spatial_dataset_pages_draw_maps_for_those_who_may_read() {
    let app = spawn_app_with(SpawnOptions { demo_rows: 20, ..Default::default() }).await;
    let planning = slug_of(&app, "103%2F000001").await;
    let addresses = slug_of(&app, "103%2F000002").await;
    let gaj = login_form(&app, "gaj-steward", DEMO_PASSWORD).await;
    let (s, html) = get(&gaj, &app, &format!("/datasets/{planning}?lang=zh")).await;
    assert_eq!(s, 200);
    assert!(html.contains("<svg class=\"map\""), "the planning zones have a map: {html}");
    assert!(html.contains("<path d=\"M") && html.contains("fill-rule=\"evenodd\""), "polygons are drawn");
    assert!(html.contains("<title>海陵区（321202）</title>"), "district outlines from the demo's boundary resource");
    assert!(html.contains("区县行政区划边界（示例）"), "the legend names the boundary, labelled as generated");
    assert!(html.contains("图例") && html.contains("<title>"), "legend and hover titles");
    assert!(!html.contains("<script"), "script-free");
    assert!(crate::plain::raw_codes(&html).is_empty(), "plain Chinese: {:?}", crate::plain::raw_codes(&html));
    assert!(html.contains("geojson"), "the GeoJSON export is offered");
    let (_, en) = get(&gaj, &app, &format!("/datasets/{planning}?lang=en")).await;
    assert!(en.contains("Map preview") && en.contains("district outlines from") && en.contains("Legend"));
    // 有条件开放: anonymous readers get no rows, so no map either.
    let (s, anon) = get(&new_client(), &app, &format!("/datasets/{planning}?lang=zh")).await;
    assert_eq!(s, 200);
    assert!(!anon.contains("<svg class=\"map\""), "no features for a caller the gate refuses");
    // 标准地名地址 is open: everyone sees its points (GCJ-02 cells, stored in CGCS2000).
    let (_, open) = get(&new_client(), &app, &format!("/datasets/{addresses}?lang=zh")).await;
    assert!(open.contains("<svg class=\"map\"") && open.contains("<circle"), "points are drawn");
    assert!(open.contains("POINT (1"), "hover titles give the position");

    // The demo's boundary resource is the configured one: the open addresses by district, for
    // anyone — every demo district holds some of them, and no row is lost.
    let v: Value = new_client()
        .get(app.url("/api/v1/resources/103%2F000002/aggregate?group_by=wz&bucket=region"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let groups = v["rows"].as_array().unwrap_or_else(|| panic!("{v}"));
    let total: u64 = groups.iter().map(|g| g["count"].as_u64().unwrap_or(0)).sum();
    assert_eq!(total, 300, "{v}");
    for (code, _) in citydata_core::demo::DISTRICTS {
        assert!(groups.iter().any(|g| g["wz"] == *code), "{code} in {v}");
    }
    let r: Value = new_client()
        .get(app.url("/api/v1/resources/103%2F000002/rows?limit=500&filter=within(wz,%20%27321202%27)"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let haizhou = groups.iter().find(|g| g["wz"] == "321202").unwrap()["count"].as_u64().unwrap();
    assert_eq!(r["rows"].as_array().map(Vec::len), Some(haizhou as usize), "{r}");

    // CKAN and DCAT offer the GeoJSON download, and it is a FeatureCollection of the points.
    let pkg: Value = new_client()
        .get(app.url(&format!("/api/3/action/package_show?id={addresses}")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let geojson = pkg["result"]["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["format"] == "GeoJSON")
        .unwrap_or_else(|| panic!("a GeoJSON resource: {pkg}"))
        .clone();
    assert_eq!(geojson["mimetype"], "application/geo+json");
    let fc: Value = new_client().get(geojson["url"].as_str().unwrap()).send().await.unwrap().json().await.unwrap();
    assert_eq!(fc["type"], "FeatureCollection");
    assert_eq!(fc["features"][0]["geometry"]["type"], "Point", "{fc}");
    assert_eq!(fc["features"].as_array().unwrap().len(), 300, "every row the demo generated");
    let ttl =
        new_client().get(app.url(&format!("/dataset/{addresses}.ttl"))).send().await.unwrap().text().await.unwrap();
    assert!(ttl.contains("format=geojson") && ttl.contains("application/geo+json"), "{ttl}");
    // A table without spatial items has no GeoJSON download.
    let ent: Value = new_client()
        .get(app.url("/api/3/action/package_show?id=102%2F000001"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(!ent.to_string().contains("GeoJSON"));
}

/// Screenshots of the map pages in zh and en (and on a phone), the zh pages scanned for raw
/// codes and checked by axe-core; the demo PDF opened in the browser under `CSP: sandbox`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn map_pages_and_the_planning_pdf_in_a_real_browser() {
    let app = spawn_app_with(SpawnOptions { demo_rows: 30, ..Default::default() }).await;
    let downloads = tempfile::tempdir().unwrap();
    let Some((_driver, c)) = crate::browser::browser(downloads.path()).await else { return };
    crate::browser::login(&c, &app, "gaj-steward", DEMO_PASSWORD).await;
    let mut tour = crate::browser::Tour::new();
    for (name, code) in
        [("map-planning", "103%2F000001"), ("map-addresses", "103%2F000002"), ("map-clinics", "201%2F000001")]
    {
        let slug = slug_of(&app, code).await;
        let html = tour.visit(&c, &app, name, &format!("/datasets/{slug}")).await;
        assert!(html.contains("class=\"map\""), "{name} shows its map");
        // The map itself, scrolled into view, in both languages.
        for lang in ["zh", "en"] {
            c.goto(&app.url(&format!("/datasets/{slug}?lang={lang}"))).await.unwrap();
            c.execute("document.getElementById('map-h').scrollIntoView(); return true;", vec![]).await.unwrap();
            let png = c.screenshot().await.unwrap();
            std::fs::write(crate::browser::screenshots_dir().join(format!("{name}-map-{lang}.png")), png).unwrap();
        }
    }
    // The planning PDF, from the planning page's link, opens in the browser (not a download).
    let slug = slug_of(&app, "103%2F000001").await;
    c.goto(&app.url(&format!("/datasets/{slug}?lang=zh"))).await.unwrap();
    let link = c.find(Locator::Css("a[href*='/files/']")).await.expect("the PDF is linked");
    let href = link.attr("href").await.unwrap().unwrap();
    c.goto(&app.url(&href)).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let png = c.screenshot().await.unwrap();
    std::fs::write(crate::browser::screenshots_dir().join("planning-pdf.png"), &png).unwrap();
    let url = c.current_url().await.unwrap();
    assert!(url.path().contains("/files/"), "the browser stays on the PDF: {url}");
    assert!(std::fs::read_dir(downloads.path()).unwrap().next().is_none(), "opened inline, not downloaded");
    tour.finish();
    c.close().await.unwrap();
}
