//! 评估考核 pages over HTTP: the public table shows only openness and service, in plain
//! Chinese and in English; the dashboard (members only) refreshes itself and draws the matrix
//! of reads; the console page shows a department's indicators with links to their records.

use crate::evaluation::{Fixture, fixture};
use crate::plain::raw_codes;
use citydata_testkit::new_client;

async fn page(c: &reqwest::Client, url: String) -> (u16, String) {
    let r = c.get(url).send().await.unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

#[tokio::test]
async fn evaluation_pages_render_in_zh_and_en_for_those_allowed() {
    let Fixture { app, a, b, .. } = fixture().await;
    let anon = new_client();
    let (s, zh) = page(&anon, app.url(&format!("/evaluation?period={a}&lang=zh"))).await;
    assert_eq!(s, 200, "{zh}");
    assert!(zh.contains("开放与服务评估") && zh.contains("泰州市市场监督管理局") && zh.contains("<svg"), "{zh}");
    assert!(raw_codes(&zh).is_empty(), "{:?}", raw_codes(&zh));
    assert!(!zh.contains("实际共享率"), "the public table shows openness and service only");
    let (s, en) = page(&anon, app.url(&format!("/evaluation?period={a}&lang=en"))).await;
    assert_eq!(s, 200);
    assert!(en.contains("Openness and service") && en.contains("Open rate"));
    let (s, _) = page(&anon, app.url("/evaluation?period=2026-Q9")).await;
    assert_eq!(s, 400);

    // The dashboard and the console page: members only.
    let (_, body) = page(&anon, app.url("/dashboard")).await;
    assert!(!body.contains("部门间数据流向") && !body.contains("<svg"), "anonymous: sign in first");
    let admin = app.login("admin").await;
    let (s, d) = page(&admin, app.url(&format!("/dashboard?period={b}&lang=zh"))).await;
    assert_eq!(s, 200, "{d}");
    assert!(!d.contains("http-equiv"), "no reload the reader did not ask for (WCAG 2.2.1)");
    assert!(d.contains("refresh=300"), "the wall-display link");
    let (_, wall) = page(&admin, app.url(&format!("/dashboard?period={b}&refresh=300"))).await;
    assert!(wall.contains(r#"<meta http-equiv="refresh" content="300">"#));
    assert!(d.contains("部门间数据流向") && d.contains("class=\"chart matrix\""), "the matrix is drawn");
    assert!(d.contains("泰州市公安局 → 泰州市卫生健康委员会: 2"), "gaj read wjw's data twice");
    assert!(d.contains("规划目标完成情况") && d.contains("60.0%"), "the plan's share target: 60% of it");
    assert!(raw_codes(&d).is_empty(), "{:?}", raw_codes(&d));
    let (s, en) = page(&admin, app.url(&format!("/dashboard?period={b}&lang=en"))).await;
    assert_eq!(s, 200);
    assert!(en.contains("City data dashboard"));
    let gaj = app.login("gaj-steward").await;
    let (s, c) = page(&gaj, app.url(&format!("/console/evaluation?period={b}&lang=zh"))).await;
    assert_eq!(s, 200, "{c}");
    assert!(c.contains("55.00") && c.contains("-6.11"), "score and change");
    // Each row links to its records (minijinja escapes the slashes in attributes).
    assert!(c.contains("records?period=") && c.contains("indicator=effective_share_rate"), "{c}");
    assert!(raw_codes(&c).is_empty(), "{:?}", raw_codes(&c));
    let (_, body) = page(&anon, app.url("/console/evaluation")).await;
    assert!(!body.contains("effective_share_rate"), "anonymous: sign in first");
    let public = app.login("wjw-analyst").await;
    let (s, _) = page(&public, app.url(&format!("/console/evaluation?period={b}&department=gaj"))).await;
    assert_eq!(s, 200, "members see other departments' pages (the table is shared among them)");
}

/// An anonymous visitor of the public table does not fix a closed period's rules: the center
/// may still change them, and the first member who scores the period pins the rules then in force.
#[tokio::test]
async fn an_anonymous_visit_does_not_pin_a_closed_periods_rules() {
    let Fixture { app, a, .. } = fixture().await;
    let (s, _) = page(&new_client(), app.url(&format!("/evaluation?period={a}"))).await;
    assert_eq!(s, 200);
    let admin = app.login("admin").await;
    let rules = serde_json::json!({"weights": {"effective_share_rate": 60, "open_rate": 40},
        "targets": {"effective_share_rate": 1, "open_rate": 1}});
    let r = admin.put(app.url("/api/v1/evaluation/rules")).json(&rules).send().await.unwrap();
    assert_eq!(r.status(), 201);
    let e = crate::evaluation::evaluate(&admin, &app, &format!("period={a}")).await;
    assert_eq!(e["rules_version"], 1, "the visit before the change pinned nothing");
    // Now pinned by the admin's scoring: a later change leaves the closed period alone.
    let r = admin.put(app.url("/api/v1/evaluation/rules")).json(&rules).send().await.unwrap();
    assert_eq!(r.status(), 201);
    let e = crate::evaluation::evaluate(&admin, &app, &format!("period={a}")).await;
    assert_eq!(e["rules_version"], 1);
}
