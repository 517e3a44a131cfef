//! 纠错 tickets in the console, as the people involved use them: a registered citizen reports
//! an error on the dataset page and follows it under 我的纠错; the provider's steward accepts,
//! fixes (a refused step comes back with the input kept and the reason by the field), and the
//! citizen confirms. Others who can see the dataset see the ticket without the reporter and
//! without any step; every page is in plain Chinese.

use crate::plain::raw_codes;
use crate::support::{csrf_of, get, login_form};
use citydata_core::demo::generate::{Register, generate_listing};
use citydata_testkit::{DEMO_PASSWORD, TestApp, new_client, spawn_app};
use serde_json::Value;

/// A citizen registered and signed in through the portal's forms.
async fn citizen(app: &TestApp, email: &str) -> reqwest::Client {
    let c = new_client();
    let (_, html) = get(&c, app, "/register?lang=zh").await;
    let r = c
        .post(app.url("/register"))
        .form(&[
            ("csrf", csrf_of(&html).as_str()),
            ("email", email),
            ("password", "public-pass-1"),
            ("display_name", "王小明"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.url().path(), "/login");
    login_form(app, email, "public-pass-1").await
}

async fn post(c: &reqwest::Client, app: &TestApp, page: &str, action: &str, fields: &[(&str, &str)]) -> (u16, String) {
    let (_, html) = get(c, app, page).await;
    let csrf = csrf_of(&html);
    let mut form = vec![("csrf", csrf.as_str())];
    form.extend_from_slice(fields);
    let r = c.post(app.url(action)).form(&form).send().await.unwrap();
    (r.status().as_u16(), r.text().await.unwrap().replace("&#x2f;", "/"))
}

fn plain(path: &str, html: &str) {
    let bad = raw_codes(html);
    assert!(bad.is_empty(), "{path} shows raw codes: {bad:?}");
}

#[tokio::test]
async fn a_citizen_follows_a_correction_in_the_console_from_report_to_confirmation() {
    let app = spawn_app().await;
    let scj_api = app.login("scjgj-steward").await;
    let mut body = Vec::new();
    generate_listing(Register::Enterprise, 30, 0.0, 3, false, &mut body).unwrap();
    let r = scj_api.post(app.url("/api/v1/resources/102%2F000001/data")).body(body).send().await.unwrap();
    assert_eq!(r.status(), 201);
    let slug: Value =
        new_client().get(app.url("/api/v1/resources/102%2F000001")).send().await.unwrap().json().await.unwrap();
    let slug = slug["slug"].as_str().unwrap().to_string();
    let dataset = format!("/datasets/{slug}?lang=zh");

    // Nothing reported yet: the empty state says how to report.
    let alice = citizen(&app, "alice@example.cn").await;
    let (status, html) = get(&alice, &app, "/console/tickets").await;
    assert_eq!(status, 200);
    assert!(html.contains("我的纠错") && html.contains("您还没有提交过纠错"), "{html}");
    assert!(!html.contains("本部门数据的纠错"), "a citizen has no department's tickets");

    // Reported on the dataset page; the confirmation leads to 我的纠错.
    let (status, html) = post(
        &alice,
        &app,
        &dataset,
        &format!("/datasets/{slug}/feedback"),
        &[("body", "企业名称有误\n该企业已于上月更名"), ("contact", "13800000000")],
    )
    .await;
    assert_eq!(status, 200);
    assert!(html.contains("/console/tickets"), "the sent page leads to 我的纠错");
    let (_, html) = get(&alice, &app, "/console/tickets").await;
    plain("/console/tickets", &html);
    assert!(html.contains("企业名称有误") && html.contains("已提交"), "{html}");
    let at = html.find("/console/tickets/").expect("a link to the ticket");
    let id: String = html[at + "/console/tickets/".len()..].chars().take_while(|c| *c != '"').collect();
    let page = format!("/console/tickets/{id}");

    // The reporter sees the ticket but cannot answer it.
    let (_, html) = get(&alice, &app, &page).await;
    plain(&page, &html);
    assert!(html.contains("该企业已于上月更名") && html.contains("王小明"), "description and the reporter's name");
    assert!(!html.contains(&format!("{page}/accept")), "no provider step for the reporter");
    let (status, _) = post(&alice, &app, &page, &format!("{page}/accept"), &[]).await;
    assert_eq!(status, 403, "a forged step is refused");

    // The steward: the ticket under 本部门数据的纠错, with the reporter's contact.
    let scj = login_form(&app, "scjgj-steward", DEMO_PASSWORD).await;
    let (_, html) = get(&scj, &app, "/console/tickets").await;
    plain("/console/tickets (steward)", &html);
    assert!(html.contains("本部门数据的纠错") && html.contains(&page), "{html}");
    let (_, html) = get(&scj, &app, &page).await;
    plain(&page, &html);
    assert!(html.contains("13800000000"), "the contact, so the steward can reply");
    assert!(html.contains(&format!("{page}/accept")) && html.contains(&format!("{page}/reject")));
    assert!(!html.contains(&format!("{page}/confirm")), "the steward does not confirm");

    // A rejection without a reason comes back with the error by the field.
    let (status, html) = post(&scj, &app, &page, &format!("{page}/reject"), &[("reason", " ")]).await;
    assert_eq!(status, 400, "{html}");
    assert!(html.contains("id=\"err-reason\"") && html.contains("aria-invalid=\"true\""), "{html}");
    assert!(html.contains("已提交"), "still submitted");

    let (status, html) = post(&scj, &app, &page, &format!("{page}/accept"), &[]).await;
    assert_eq!(status, 200, "{html}");
    assert!(html.contains("已受理") && html.contains("对方会收到通知"), "{html}");

    // Assigned to a colleague, who is told; only the provider's stewards can be chosen.
    let admin = app.login("admin").await;
    let r = admin
        .post(app.url("/api/v1/users"))
        .json(&serde_json::json!({"username": "scjgj-li", "display_name": "李承办", "password": "long-enough-1",
                                  "memberships": [{"department": "scjgj", "role": "steward"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let (_, html) = get(&scj, &app, &page).await;
    assert!(html.contains("name=\"assignee\"") && html.contains("李承办"), "the colleagues to choose from");
    let (status, html) = post(&scj, &app, &page, &format!("{page}/assign"), &[("assignee", "scjgj-li")]).await;
    assert_eq!(status, 200, "{html}");
    assert!(html.contains("承办人") && html.contains("李承办"), "{html}");
    let li = login_form(&app, "scjgj-li", "long-enough-1").await;
    let (_, inbox) = get(&li, &app, "/console/inbox").await;
    assert!(inbox.contains("指派给您") && inbox.contains(&format!("href=\"{page}\"")), "{inbox}");
    let (status, html) = post(&scj, &app, &page, &format!("{page}/assign"), &[("assignee", "gaj-steward")]).await;
    assert_eq!(status, 400, "another department's steward cannot be assigned");
    assert!(html.contains("id=\"err-assignee\""), "{html}");
    let api_id = id.clone();
    let r = alice
        .post(app.url(&format!("/api/v1/tickets/{api_id}/assign")))
        .json(&serde_json::json!({"assignee": "scjgj-steward"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403, "the reporter does not assign");
    let (_, html) = get(&alice, &app, &page).await;
    assert!(html.contains("李承办") && !html.contains("name=\"assignee\""), "the reporter sees who, cannot change it");
    // A bad version keeps the note.
    let (status, html) =
        post(&scj, &app, &page, &format!("{page}/fix"), &[("note", "已按营业执照更正名称"), ("version", "abc")]).await;
    assert_eq!(status, 400);
    assert!(html.contains("已按营业执照更正名称") && html.contains("id=\"err-version\""), "{html}");
    let (status, html) = post(&scj, &app, &page, &format!("{page}/fix"), &[("note", "已按营业执照更正名称")]).await;
    assert_eq!(status, 200, "{html}");
    assert!(html.contains("已修正"));
    // Out of order: 409, the current state said in Chinese.
    let (status, html) = post(&scj, &app, &page, &format!("{page}/accept"), &[]).await;
    assert_eq!(status, 409, "{html}");
    assert!(html.contains("role=\"alert\""), "{html}");

    // The citizen's inbox leads to the ticket's page, which now offers confirm and reopen.
    let (_, html) = get(&alice, &app, "/console/inbox").await;
    assert!(html.contains(&format!("href=\"{page}\"")), "inbox links to the ticket page: {html}");
    assert!(!html.contains("/api/v1/tickets/"), "never to the API");
    let (_, html) = get(&alice, &app, &page).await;
    assert!(html.contains(&format!("{page}/confirm")) && html.contains(&format!("{page}/reopen")));
    let (status, html) = post(&alice, &app, &page, &format!("{page}/comment"), &[("body", "谢谢，已核对")]).await;
    assert_eq!(status, 200);
    assert!(html.contains("谢谢，已核对"));
    let (status, html) = post(&alice, &app, &page, &format!("{page}/confirm"), &[]).await;
    assert_eq!(status, 200);
    assert!(html.contains("已确认"));
    for action in ["提交", "受理", "指派", "修正", "留言", "确认"] {
        assert!(html.contains(action), "the history names {action}");
    }

    // Another citizen sees the ticket's state, not the reporter, and no step or comment form.
    let bob = citizen(&app, "bob@example.cn").await;
    let (status, html) = get(&bob, &app, &page).await;
    assert_eq!(status, 200);
    assert!(
        !html.contains("王小明")
            && !html.contains("13800000000")
            && !html.contains("李承办")
            && !html.contains("scjgj-li"),
        "no identity, contact or assignee to others"
    );
    assert!(!html.contains("method=\"post\" action=\"/console/tickets/"), "no forms for others");
    let (status, _) = post(&bob, &app, &dataset, &format!("{page}/comment"), &[("body", "路过")]).await;
    assert_eq!(status, 403);
    let (_, html) = get(&bob, &app, "/console/tickets").await;
    assert!(!html.contains(&page), "not in bob's list");

    // In English the states are English words; anonymous callers go to the login page.
    let (_, html) = get(&alice, &app, &format!("{page}?lang=en")).await;
    assert!(html.contains("Confirmed") && !html.contains("已确认"), "{html}");
    let r = new_client().get(app.url(&page)).send().await.unwrap();
    assert_eq!(r.url().path(), "/login");
}
