//! The console's quality-rule editor: the provider's steward writes rules one a line (severity
//! in Chinese words), a rule that does not type-check comes back naming its line with the text
//! kept, a save from a stale form does not overwrite a newer one, and nobody else gets in.

use crate::plain::raw_codes;
use crate::support::{csrf_of, get, login_form};
use citydata_testkit::{DEMO_PASSWORD, TestApp, new_client, spawn_app};
use serde_json::Value;

async fn save(c: &reqwest::Client, app: &TestApp, page: &str, rules: &str, revision: Option<&str>) -> (u16, String) {
    let (_, html) = get(c, app, page).await;
    let rev = html.split("name=\"revision\" value=\"").nth(1).map(|x| x.split('"').next().unwrap().to_string());
    let rev = revision.map(str::to_string).or(rev).unwrap();
    let r = c
        .post(app.url(page))
        .form(&[("csrf", csrf_of(&html).as_str()), ("rules", rules), ("revision", rev.as_str())])
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.text().await.unwrap().replace("&#x2f;", "/"))
}

#[tokio::test]
async fn a_steward_edits_quality_rules_in_the_console() {
    let app = spawn_app().await;
    let v: Value =
        new_client().get(app.url("/api/v1/resources/102%2F000001")).send().await.unwrap().json().await.unwrap();
    let page = format!("/console/resources/{}/rules", v["slug"].as_str().unwrap());
    let scj = login_form(&app, "scjgj-steward", DEMO_PASSWORD).await;
    let (status, html) = get(&scj, &app, &page).await;
    assert_eq!(status, 200);
    assert!(raw_codes(&html).is_empty(), "{:?}", raw_codes(&html));
    assert!(html.contains("企业名称") && html.contains("name=\"rules\""), "items listed beside the field");
    let (_, home) = get(&scj, &app, "/console").await;
    assert!(home.contains(&page), "linked from the console");

    // A range on a text item: refused, the line named, the text kept.
    let bad = "拒绝 not_null(qymc)\n警告 range(qymc, 0, 10)";
    let (status, html) = save(&scj, &app, &page, bad, None).await;
    assert_eq!(status, 400, "{html}");
    assert!(html.contains("第 2 条规则") && html.contains("range(qymc, 0, 10)"), "{html}");
    let now: Value = scj.get(app.url("/api/v1/resources/102%2F000001")).send().await.unwrap().json().await.unwrap();
    assert_eq!(now["revision"], v["revision"], "nothing saved");

    let good = "拒绝 not_null(qymc)\n警告 unique(zs)\n提示 range(zczb, 0, 1000000)";
    let (status, html) = save(&scj, &app, &page, good, None).await;
    assert_eq!(status, 200, "{html}");
    assert!(html.contains("质量规则已保存"), "{html}");
    assert!(raw_codes(&html).is_empty(), "{:?}", raw_codes(&html));
    let now: Value = scj.get(app.url("/api/v1/resources/102%2F000001")).send().await.unwrap().json().await.unwrap();
    let rules: Vec<(String, String)> = now["quality_rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["rule"].as_str().unwrap().to_string(), r["severity"].as_str().unwrap_or("warn").to_string()))
        .collect();
    assert_eq!(
        rules,
        [
            ("not_null(qymc)".to_string(), "reject".to_string()),
            ("unique(zs)".to_string(), "warn".to_string()),
            ("range(zczb, 0, 1000000)".to_string(), "info".to_string())
        ]
    );
    // The page shows the rules back in the page's words.
    let (_, html) = get(&scj, &app, &page).await;
    assert!(html.contains("拒绝 not_null(qymc)") && html.contains("提示 range(zczb, 0, 1000000)"), "{html}");

    // A form loaded before that save does not overwrite it.
    let (status, html) = save(&scj, &app, &page, "警告 not_null(hy)", v["revision"].to_string().as_str().into()).await;
    assert_eq!(status, 409, "{html}");
    assert!(html.contains("已被他人修改") && html.contains("not_null(hy)"), "{html}");
    let after: Value = scj.get(app.url("/api/v1/resources/102%2F000001")).send().await.unwrap().json().await.unwrap();
    assert_eq!(after["quality_rules"].as_array().unwrap().len(), 3);

    // Other departments and citizens cannot edit, nor post.
    let gaj = login_form(&app, "gaj-steward", DEMO_PASSWORD).await;
    let (status, _) = get(&gaj, &app, &page).await;
    assert_eq!(status, 403);
    let (status, _) = save(&gaj, &app, &page, "拒绝 not_null(hy)", Some("99")).await;
    assert_eq!(status, 403);
    let anon = new_client().get(app.url(&page)).send().await.unwrap();
    assert_eq!(anon.url().path(), "/login");
}
