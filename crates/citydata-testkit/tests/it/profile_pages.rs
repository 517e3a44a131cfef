//! 个人资料: one's name, departments and roles in plain words, and a password change that keeps
//! this session, ends the others, refuses a wrong current password by the field, and never
//! echoes a password back.

use crate::plain::raw_codes;
use crate::support::{csrf_of, get, login_form};
use citydata_testkit::{DEMO_PASSWORD, TestApp, assert_error, new_client, spawn_app};
use serde_json::json;

async fn change(c: &reqwest::Client, app: &TestApp, current: &str, new: &str, again: &str) -> (u16, String, String) {
    let (_, html) = get(c, app, "/console/profile").await;
    let r = c
        .post(app.url("/console/profile/password"))
        .form(&[
            ("csrf", csrf_of(&html).as_str()),
            ("current_password", current),
            ("new_password", new),
            ("confirm_password", again),
        ])
        .send()
        .await
        .unwrap();
    let path = r.url().path().to_string();
    (r.status().as_u16(), path, r.text().await.unwrap())
}

#[tokio::test]
async fn a_password_change_keeps_this_session_and_ends_the_others() {
    let app = spawn_app().await;
    let c = new_client();
    let r = c
        .post(app.url("/api/v1/auth/register"))
        .json(&json!({"email": "li@example.cn", "password": "public-pass-1", "display_name": "李华"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let here = login_form(&app, "li@example.cn", "public-pass-1").await;
    let elsewhere = login_form(&app, "li@example.cn", "public-pass-1").await;

    let (status, html) = get(&here, &app, "/console/profile").await;
    assert_eq!(status, 200);
    assert!(raw_codes(&html).is_empty(), "{:?}", raw_codes(&html));
    assert!(html.contains("李华") && html.contains("社会公众用户"), "{html}");
    assert!(!html.contains("p-"), "no generated username for a citizen");
    assert!(html.contains("密码须为 8–256 个字符"), "the rules before submitting");

    // Refusals by the field; the passwords typed are never sent back.
    let (status, _, html) = change(&here, &app, "wrong-pass-9", "brand-new-pass", "brand-new-pass").await;
    assert_eq!(status, 400);
    assert!(html.contains("id=\"err-current_password\"") && html.contains("当前密码不正确"), "{html}");
    assert!(!html.contains("wrong-pass-9") && !html.contains("brand-new-pass"), "no password echoed");
    let (status, _, html) = change(&here, &app, "public-pass-1", "brand-new-pass", "brand-new-pas").await;
    assert_eq!(status, 400);
    assert!(html.contains("id=\"err-confirm_password\""), "{html}");
    let (status, _, html) = change(&here, &app, "public-pass-1", "short", "short").await;
    assert_eq!(status, 400);
    assert!(html.contains("id=\"err-new_password\""), "{html}");
    // Nothing changed so far: the other session is still in.
    let (status, _) = get(&elsewhere, &app, "/console/profile").await;
    assert_eq!(status, 200);

    let (status, path, html) = change(&here, &app, "public-pass-1", "brand-new-pass", "brand-new-pass").await;
    assert_eq!((status, path.as_str()), (200, "/console/profile"));
    assert!(html.contains("密码已修改"), "{html}");
    let r = elsewhere.get(app.url("/console/profile")).send().await.unwrap();
    assert_eq!(r.url().path(), "/login", "the other session ended");
    let (status, _) = get(&here, &app, "/console/profile").await;
    assert_eq!(status, 200, "this one stays");
    let old = new_client()
        .post(app.url("/api/v1/auth/login"))
        .json(&json!({"username": "li@example.cn", "password": "public-pass-1"}))
        .send()
        .await
        .unwrap();
    assert_error(old, 401, "unauthenticated").await;
    login_form(&app, "li@example.cn", "brand-new-pass").await;

    // The API: the same rules; the change is audited under the user's name.
    let r = here
        .post(app.url("/api/v1/auth/password"))
        .json(&json!({"current_password": "nope-nope-1", "new_password": "another-pass-2"}))
        .send()
        .await
        .unwrap();
    let e = assert_error(r, 400, "validation_failed").await;
    assert_eq!(e["error"]["details"]["fields"][0]["field"], "current_password");
    let r = here
        .post(app.url("/api/v1/auth/password"))
        .json(&json!({"current_password": "brand-new-pass", "new_password": "another-pass-2"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let audit = crate::support::audit_entries(&app, "user.password").await;
    let outcomes: Vec<&str> = audit.iter().map(|e| e["outcome"].as_str().unwrap_or("")).collect();
    assert!(outcomes.contains(&"success") && outcomes.len() >= 3, "{audit:?}");
}

#[tokio::test]
async fn a_stewards_profile_names_the_department_and_the_role() {
    let app = spawn_app().await;
    let c = login_form(&app, "scjgj-steward", DEMO_PASSWORD).await;
    let (_, html) = get(&c, &app, "/console/profile").await;
    assert!(raw_codes(&html).is_empty(), "{:?}", raw_codes(&html));
    assert!(html.contains("数据管理员") && html.contains("scjgj-steward"), "{html}");
    assert!(html.contains("aria-current=\"page\""), "the nav marks the page");
    let (_, html) = get(&c, &app, "/console/profile?lang=en").await;
    assert!(html.contains("Data steward") && html.contains("Change password"));
}
