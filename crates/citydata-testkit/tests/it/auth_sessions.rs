//! Sessions people can manage (issue #21): list one's sessions, end one, an admin ends a
//! user's, others cannot; the idle timeout ends an unused session.

use citydata_testkit::{DEMO_PASSWORD, TestApp, assert_error, spawn_app};
use serde_json::{Value, json};

async fn login_with(app: &TestApp, username: &str, agent: &str) -> reqwest::Client {
    let c = reqwest::Client::builder().cookie_store(true).user_agent(agent).build().unwrap();
    let r = c
        .post(app.url("/api/v1/auth/login"))
        .json(&json!({"username": username, "password": DEMO_PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    c
}

async fn sessions(app: &TestApp, c: &reqwest::Client, query: &str) -> Vec<Value> {
    let r = c.get(app.url(&format!("/api/v1/sessions{query}"))).send().await.unwrap();
    assert_eq!(r.status(), 200);
    r.json::<Vec<Value>>().await.unwrap()
}

#[tokio::test]
async fn people_list_and_end_their_sessions_and_admins_end_anyones() {
    let app = spawn_app().await;
    let a = login_with(&app, "wjw-analyst", "办公室电脑 Firefox").await;
    let b = login_with(&app, "wjw-analyst", "手机 Safari").await;
    let list = sessions(&app, &a, "").await;
    assert_eq!(list.len(), 2, "{list:?}");
    let mine = list.iter().find(|s| s["current"] == true).unwrap();
    assert_eq!(mine["user_agent"], "办公室电脑 Firefox");
    assert_eq!(mine["client"], "127.0.0.1");
    let other = list.iter().find(|s| s["current"] == false).unwrap();
    assert_eq!(other["user_agent"], "手机 Safari");
    let other_id = other["id"].as_str().unwrap().to_string();
    assert!(list.iter().all(|s| s["id"].as_str().unwrap().len() == 32 && s["expires_at"].is_string()));

    // Someone else cannot see or end them.
    let gaj = login_with(&app, "gaj-steward", "x").await;
    let r = gaj.delete(app.url(&format!("/api/v1/sessions/{other_id}"))).send().await.unwrap();
    assert_error(r, 404, "not_found").await;
    assert_error(gaj.get(app.url("/api/v1/sessions?user=wjw-analyst")).send().await.unwrap(), 403, "forbidden").await;
    assert_eq!(b.get(app.url("/api/v1/me")).send().await.unwrap().status(), 200, "still signed in");

    // The owner ends the phone's session.
    let r = a.delete(app.url(&format!("/api/v1/sessions/{other_id}"))).send().await.unwrap();
    assert_eq!(r.status(), 204);
    assert_error(b.get(app.url("/api/v1/me")).send().await.unwrap(), 401, "unauthenticated").await;
    let r = a.delete(app.url(&format!("/api/v1/sessions/{other_id}"))).send().await.unwrap();
    assert_error(r, 404, "not_found").await;

    // The platform admin sees the user's remaining session and ends it.
    let admin = app.login("admin").await;
    assert_error(admin.get(app.url("/api/v1/sessions?user=nobody")).send().await.unwrap(), 404, "not_found").await;
    let theirs = sessions(&app, &admin, "?user=wjw-analyst").await;
    assert_eq!(theirs.len(), 1);
    assert_eq!(theirs[0]["current"], false);
    let id = theirs[0]["id"].as_str().unwrap();
    assert_eq!(admin.delete(app.url(&format!("/api/v1/sessions/{id}"))).send().await.unwrap().status(), 204);
    assert_error(a.get(app.url("/api/v1/me")).send().await.unwrap(), 401, "unauthenticated").await;

    let page: Value =
        admin.get(app.url("/api/v1/audit?action=session.end")).send().await.unwrap().json().await.unwrap();
    let outcomes: Vec<&str> =
        page["entries"].as_array().unwrap().iter().map(|e| e["outcome"].as_str().unwrap()).collect();
    assert_eq!(outcomes.iter().filter(|o| **o == "success").count(), 2, "{outcomes:?}");
    assert!(outcomes.contains(&"failure"), "the refused and repeated ends are audited: {outcomes:?}");
}

/// "Sign out everywhere else" ends every session but the caller's, and is audited.
#[tokio::test]
async fn ending_all_other_sessions_keeps_the_current_one() {
    let app = spawn_app().await;
    let a = login_with(&app, "wjw-analyst", "a").await;
    let b = login_with(&app, "wjw-analyst", "b").await;
    let c = login_with(&app, "wjw-analyst", "c").await;
    let other_user = login_with(&app, "gaj-steward", "d").await;
    let r = a.delete(app.url("/api/v1/sessions")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap()["ended"], 2);
    for gone in [&b, &c] {
        assert_error(gone.get(app.url("/api/v1/me")).send().await.unwrap(), 401, "unauthenticated").await;
    }
    assert_eq!(a.get(app.url("/api/v1/me")).send().await.unwrap().status(), 200);
    assert_eq!(other_user.get(app.url("/api/v1/me")).send().await.unwrap().status(), 200, "others untouched");
    let audit = crate::support::audit_entries(&app, "session.end_others").await;
    assert_eq!(audit[0]["details"]["ended"], 2);
}

/// A session unused for longer than `session_idle_minutes` ends at its next use; a used one
/// stays. (The clock is moved by rewriting the stored last use, not by waiting.)
#[tokio::test]
async fn an_idle_session_ends() {
    let app = spawn_app().await;
    let idle = login_with(&app, "wjw-analyst", "idle").await;
    let busy = login_with(&app, "gaj-steward", "busy").await;
    let long_ago = if app.database_url.starts_with("sqlite") { "0" } else { "'2000-01-01T00:00:00Z'" };
    let hash_of_idle = {
        let list = sessions(&app, &idle, "").await;
        list[0]["id"].as_str().unwrap().to_string()
    };
    app.exec_sql(&format!("UPDATE sessions SET last_seen_at = {long_ago} WHERE public_id = '{hash_of_idle}'")).await;
    assert_error(idle.get(app.url("/api/v1/me")).send().await.unwrap(), 401, "unauthenticated").await;
    assert_eq!(busy.get(app.url("/api/v1/me")).send().await.unwrap().status(), 200);
}

/// The console lists one's sessions in Chinese (no raw codes) and ends another one; its token
/// form asks for scopes, the least (读目录) ticked by default.
#[tokio::test]
async fn the_console_lists_sessions_and_makes_scoped_tokens() {
    use crate::plain::raw_codes;
    use crate::support::{csrf_of, get};
    let app = spawn_app().await;
    let phone = login_with(&app, "wjw-analyst", "手机 Safari").await;
    let web = crate::support::login_form(&app, "wjw-analyst", DEMO_PASSWORD).await;
    let (status, html) = get(&web, &app, "/console/sessions?lang=zh").await;
    assert_eq!(status, 200);
    assert!(html.contains("手机 Safari") && html.contains("当前会话") && html.contains("127.0.0.1"), "{html}");
    assert!(raw_codes(&html).is_empty(), "{:?}", raw_codes(&html));
    let action = html.split("action=\"/console/sessions/").nth(1).unwrap().split('"').next().unwrap();
    let r = web
        .post(app.url(&format!("/console/sessions/{action}")))
        .form(&[("csrf", csrf_of(&html).as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "redirected back");
    assert!(r.text().await.unwrap().contains("会话已结束"));
    assert_error(phone.get(app.url("/api/v1/me")).send().await.unwrap(), 401, "unauthenticated").await;
    assert!(!get(&web, &app, "/console/sessions").await.1.contains("end-others"), "alone: no button");
    // Without the CSRF token nothing ends.
    let r = web.post(app.url(&format!("/console/sessions/{action}"))).form(&[("x", "y")]).send().await.unwrap();
    assert_eq!(r.status(), 403);

    let (_, html) = get(&web, &app, "/console/tokens?lang=zh").await;
    assert!(html.contains("name=\"scope_catalog_read\" checked"), "the least scope is ticked by default");
    assert!(html.contains("读数据"));
    let r = web
        .post(app.url("/console/tokens"))
        .form(&[
            ("csrf", csrf_of(&html).as_str()),
            ("name", "报表"),
            ("days", "30"),
            ("scope_data_read", "on"),
            ("resources", "201/000001"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let html = r.text().await.unwrap();
    assert!(html.contains("读数据（1）"), "scopes and the resource count are listed");
    assert!(raw_codes(&html).is_empty(), "{:?}", raw_codes(&html));
    let secret = html.split("<code class=\"token\">").nth(1).unwrap().split('<').next().unwrap().to_string();
    let c = reqwest::Client::new();
    let r = c.get(app.url("/api/v1/resources")).bearer_auth(&secret).send().await.unwrap();
    assert_error(r, 403, "insufficient_scope").await;
    let r = c.get(app.url("/api/v1/resources/201%2F000002/rows")).bearer_auth(&secret).send().await.unwrap();
    assert_error(r, 403, "insufficient_scope").await;
}
