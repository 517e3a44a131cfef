//! The console's editor of the evaluation rules (issue #17): the center sets weights, targets
//! and plan targets in a form (zh/en, CSRF, no raw codes) through the same use case as
//! `PUT /api/v1/evaluation/rules`; a new version each time; a form filled from an older version
//! is refused with 409; bad numbers and weights not summing to 100 come back with the reason;
//! a steward gets 403.

use crate::plain::raw_codes;
use crate::support::{csrf_of, get, login_form};
use citydata_testkit::{DEMO_PASSWORD, spawn_app};
use serde_json::Value;

const PAGE: &str = "/console/evaluation-rules";

/// The form's fields as the page shows them, with `changes` applied.
fn filled(html: &str, changes: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut out = vec![("csrf".to_string(), csrf_of(html))];
    let mut rest = html;
    while let Some(at) = rest.find("<input name=\"") {
        rest = &rest[at + "<input name=\"".len()..];
        let name = rest[..rest.find('"').unwrap()].to_string();
        let v = &rest[rest.find("value=\"").unwrap() + "value=\"".len()..];
        let value = v[..v.find('"').unwrap()].to_string();
        out.push((name, value));
    }
    let at = html.find("name=\"version\" value=\"").unwrap() + "name=\"version\" value=\"".len();
    out.push(("version".into(), html[at..at + html[at..].find('"').unwrap()].to_string()));
    for (k, v) in changes {
        out.iter_mut().find(|(n, _)| n == k).unwrap_or_else(|| panic!("no field {k}")).1 = v.to_string();
    }
    out
}

#[tokio::test]
async fn the_center_edits_the_rules_in_the_console_and_stale_forms_are_refused() {
    let app = spawn_app().await;
    let admin = login_form(&app, "admin", DEMO_PASSWORD).await;
    let (status, html) = get(&admin, &app, PAGE).await;
    assert_eq!(status, 200, "{html}");
    assert!(html.contains("实际共享率") && html.contains("name=\"w.effective_share_rate\" value=\"20\""), "{html}");
    assert!(raw_codes(&html).is_empty(), "{:?}", raw_codes(&html));
    // Move 10 points from the open rate to the effective share rate; raise a plan target.
    let form = filled(&html, &[("w.open_rate", ""), ("w.effective_share_rate", "30"), ("p.applications", "25")]);
    let r = admin.post(app.url(PAGE)).form(&form).send().await.unwrap();
    assert!(r.url().path() == PAGE && r.url().query() == Some("saved=1"), "{}", r.url());
    let api = app.login("admin").await;
    let v: Value = api.get(app.url("/api/v1/evaluation/rules")).send().await.unwrap().json().await.unwrap();
    assert_eq!(v["version"], 1, "{v}");
    assert_eq!(v["rules"]["weights"]["effective_share_rate"], 30.0);
    assert!(v["rules"]["weights"].get("open_rate").is_none(), "{v}");
    assert_eq!(v["rules"]["plan"]["applications"], 25.0);
    // The same old form again: the rules changed meanwhile → 409, nothing stored.
    let r = admin.post(app.url(PAGE)).form(&form).send().await.unwrap();
    assert_eq!(r.status(), 409);
    assert!(r.text().await.unwrap().contains("第 1 版"));
    // Weights not summing to 100, and a word for a number: 400 with the reasons, the values kept.
    let (_, html) = get(&admin, &app, PAGE).await;
    let r = admin.post(app.url(PAGE)).form(&filled(&html, &[("w.open_rate", "15")])).send().await.unwrap();
    assert_eq!(r.status(), 400);
    let out = r.text().await.unwrap();
    assert!(out.contains("100") && out.contains("value=\"15\""), "{out}");
    let r = admin.post(app.url(PAGE)).form(&filled(&html, &[("t.open_rate", "一半")])).send().await.unwrap();
    assert_eq!(r.status(), 400);
    let out = r.text().await.unwrap();
    assert!(out.contains("开放率") && out.contains("须为不小于 0 的数字"), "{out}");
    let v: Value = api.get(app.url("/api/v1/evaluation/rules")).send().await.unwrap().json().await.unwrap();
    assert_eq!(v["version"], 1, "nothing half-written: {v}");
    // Without the form's token: refused.
    let mut no_token = filled(&html, &[]);
    no_token.retain(|(k, _)| k != "csrf");
    assert_eq!(admin.post(app.url(PAGE)).form(&no_token).send().await.unwrap().status(), 403);
    // English.
    let (_, en) = get(&admin, &app, &format!("{PAGE}?lang=en")).await;
    assert!(en.contains("Evaluation rules") && en.contains("Effective share rate"), "{en}");
    // A department's steward: neither the page nor the save.
    let scj = login_form(&app, "scjgj-steward", DEMO_PASSWORD).await;
    let (status, _) = get(&scj, &app, PAGE).await;
    assert_eq!(status, 403);
    let (_, own) = get(&scj, &app, "/console").await;
    let mut form = filled(&html, &[]);
    form[0].1 = csrf_of(&own);
    assert_eq!(scj.post(app.url(PAGE)).form(&form).send().await.unwrap().status(), 403);
    // The audit names the new version.
    let entries = crate::support::audit_entries(&app, "evaluation.rules").await;
    assert_eq!(entries.len(), 1, "{entries:?}");
}
