//! 服务账号 in the console: a platform admin registers an application's identity, gives it a
//! read-only token for one resource (the least scopes for the stated use), the token works for
//! that resource only and its calls are audited under the account's name; other people get
//! nothing through these pages.

use crate::support::{csrf_of, get, login_form};
use citydata_testkit::{DEMO_PASSWORD, TestApp, assert_error, new_client, spawn_app};
use serde_json::Value;

fn token_of(html: &str) -> String {
    let at = html.find("<code class=\"token\">").expect("the new token on the page");
    let rest = &html[at + "<code class=\"token\">".len()..];
    rest[..rest.find('<').unwrap()].to_string()
}

async fn issue(app: &TestApp, c: &reqwest::Client, sa: &str, purpose: &str, resources: &str) -> String {
    let (_, html) = get(c, app, sa).await;
    let r = c
        .post(app.url(sa))
        .form(&[
            ("csrf", csrf_of(&html).as_str()),
            ("name", "只读同步"),
            ("purpose", purpose),
            ("resources", resources),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    token_of(&r.text().await.unwrap())
}

#[tokio::test]
async fn an_admin_gives_an_application_a_read_only_token_for_one_resource() {
    let app = spawn_app().await;
    let admin = login_form(&app, "admin", DEMO_PASSWORD).await;
    let (s, html) = get(&admin, &app, "/console/service-accounts").await;
    assert_eq!(s, 200);
    assert!(html.contains("服务账号") && html.contains("还没有服务账号"), "{html}");
    // Without the form's CSRF token: refused, nothing created.
    let r = admin
        .post(app.url("/console/service-accounts"))
        .form(&[("username", "wjw-sync"), ("display_name", "卫健委同步"), ("department", "wjw")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    // A bad name: 400 with the field named and the input kept.
    let form = |user: &'static str, csrf: String| {
        vec![
            ("csrf", csrf),
            ("username", user.to_string()),
            ("display_name", "卫健委夜间同步".to_string()),
            ("department", "wjw".to_string()),
            ("role", "analyst".to_string()),
            ("description", "每晚同步医疗机构名录".to_string()),
        ]
    };
    let r = admin.post(app.url("/console/service-accounts")).form(&form("x y!", csrf_of(&html))).send().await.unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("卫健委夜间同步"), "the input is kept");
    let r =
        admin.post(app.url("/console/service-accounts")).form(&form("wjw-sync", csrf_of(&html))).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let sa = r.url().path().to_string();
    assert!(sa.starts_with("/console/service-accounts/"), "{sa}");

    // The stated use "read the listed resources" with one resource: catalog:read + data:read on it.
    let token = issue(&app, &admin, &sa, "read", "201/000001").await;
    let api = new_client();
    let call = |path: &str| api.get(app.url(path)).bearer_auth(&token);
    assert_eq!(call("/api/v1/resources/201%2F000001/rows").send().await.unwrap().status(), 200);
    assert_error(call("/api/v1/resources/101%2F000001/rows").send().await.unwrap(), 403, "insufficient_scope").await;
    let upload = api
        .post(app.url("/api/v1/resources/201%2F000001/data"))
        .bearer_auth(&token)
        .body("jgdm,jgmc\nJ1,医院\n")
        .send()
        .await
        .unwrap();
    assert_error(upload, 403, "insufficient_scope").await;
    // Its calls are audited under its name, naming the token.
    let audit: Value = app
        .login("admin")
        .await
        .get(app.url("/api/v1/audit?actor=wjw-sync"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let entries = audit["entries"].as_array().unwrap();
    assert!(
        entries.iter().any(|e| e["action"] == "data.read_rows" && e["details"]["token_name"] == "只读同步"),
        "{audit}"
    );
    // No resource named: the catalog only, whatever use was ticked.
    let catalog_only = issue(&app, &admin, &sa, "upload", "").await;
    let r = api.get(app.url("/api/v1/resources/201%2F000001/rows")).bearer_auth(&catalog_only).send().await.unwrap();
    assert_error(r, 403, "insufficient_scope").await;

    // The applications registry names the account its application calls as: only one of the
    // owning department's service accounts, named by the field when it is not; the account's
    // page then lists the application, and the public registry does not show the account.
    let steward = app.login("wjw-steward").await;
    let register = |sa: &'static str| {
        let c = steward.clone();
        let url = app.url("/api/v1/applications");
        async move {
            c.post(url)
                .json(&serde_json::json!({"name": "医疗机构查询", "scenario": "市民查询附近医院", "resources": ["201/000001"],
                                          "department": "wjw", "service_account": sa}))
                .send()
                .await
                .unwrap()
        }
    };
    let e = assert_error(register("gaj-sync").await, 400, "validation_failed").await;
    assert_eq!(e["error"]["details"]["fields"][0]["field"], "service_account", "{e}");
    let r = register("wjw-sync").await;
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
    let (_, html) = get(&admin, &app, &format!("{sa}?lang=zh")).await;
    assert!(html.contains("使用该账号的应用") && html.contains("医疗机构查询"), "{html}");
    let public: Value = new_client().get(app.url("/api/v1/applications")).send().await.unwrap().json().await.unwrap();
    assert!(public.to_string().contains("医疗机构查询") && !public.to_string().contains("wjw-sync"), "{public}");
    let mine: Value = steward.get(app.url("/api/v1/applications")).send().await.unwrap().json().await.unwrap();
    assert!(mine.to_string().contains("\"service_account\":\"wjw-sync\""), "{mine}");

    // The page lists both tokens in English too; revoking one goes through a confirmation.
    let (_, html) = get(&admin, &app, &format!("{sa}?lang=en")).await;
    assert!(html.contains("Service accounts") && html.matches("/revoke\"").count() == 2, "{html}");
    let link =
        html.split("href=\"").filter_map(|s| s.split('"').next()).find(|l| l.ends_with("/revoke")).unwrap().to_string();
    let (s, confirm) = get(&admin, &app, &link).await;
    assert_eq!(s, 200);
    let r = admin
        .post(app.url(&link))
        .form(&[("csrf", csrf_of(&confirm).as_str()), ("confirm", "yes")])
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    let (_, html) = get(&admin, &app, &format!("{sa}?lang=zh")).await;
    assert!(html.contains("已撤销"), "{html}");

    // A steward is not a department admin: no list, no account page.
    let steward = login_form(&app, "wjw-steward", DEMO_PASSWORD).await;
    assert_eq!(get(&steward, &app, "/console/service-accounts").await.0, 403);
    assert_eq!(get(&steward, &app, &sa).await.0, 404);
    let (_, home) = get(&steward, &app, "/console").await;
    assert!(!home.contains("/console/service-accounts"), "no nav entry for those who cannot use it");
    assert_eq!(get(&new_client(), &app, &sa).await.0, 200, "anonymous: the login page");
}
