//! What several test modules need to act as a user: the CSRF token of a page's form, a page
//! fetched as HTML, signing in through the login form, a public account signed in.

use citydata_testkit::{TestApp, new_client};
use serde_json::json;

/// The CSRF token of a page's first form.
pub fn csrf_of(html: &str) -> String {
    let at = html.find("name=\"csrf\" value=\"").expect("a form with a CSRF token");
    let rest = &html[at + "name=\"csrf\" value=\"".len()..];
    rest[..rest.find('"').unwrap()].to_string()
}

/// A page, with the `/` minijinja writes as `&#x2f;` decoded (for comparisons and links).
pub async fn get(c: &reqwest::Client, app: &TestApp, path: &str) -> (u16, String) {
    let r = c.get(app.url(path)).send().await.unwrap();
    (r.status().as_u16(), r.text().await.unwrap().replace("&#x2f;", "/"))
}

/// A browser-like client signed in through the login form (pages in Chinese).
pub async fn login_form(app: &TestApp, username: &str, password: &str) -> reqwest::Client {
    let c = new_client();
    let (_, html) = get(&c, app, "/login?lang=zh").await;
    let r = c
        .post(app.url("/login"))
        .form(&[
            ("csrf", csrf_of(&html).as_str()),
            ("username", username),
            ("password", password),
            ("next", "/console"),
        ])
        .send()
        .await
        .unwrap();
    assert!(r.url().path().starts_with("/console"), "{username} logged in: {}", r.url());
    c
}

/// A public (email) account registered and signed in through the API.
pub async fn public_user(app: &TestApp, email: &str) -> reqwest::Client {
    let c = new_client();
    let r = c
        .post(app.url("/api/v1/auth/register"))
        .json(&json!({"email": email, "password": "public-pass-1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
    let r = c
        .post(app.url("/api/v1/auth/login"))
        .json(&json!({"username": email, "password": "public-pass-1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    c
}

/// The audit entries of one action (or action prefix), newest first, as the platform admin.
pub async fn audit_entries(app: &TestApp, action: &str) -> Vec<serde_json::Value> {
    let page: serde_json::Value = app
        .login("admin")
        .await
        .get(app.url(&format!("/api/v1/audit?action={action}")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    page["entries"].as_array().cloned().unwrap_or_default()
}
