//! 统一身份认证 end to end through a real OpenID provider (`scripts/oidc-mock.mjs`, the npm
//! package oauth2-mock-server): the browser follows the real redirects, the server checks
//! state, PKCE, nonce and the ID token against the provider's keys.

use crate::support::{audit_entries, csrf_of, get};
use citydata_testkit::oidc_mock::Provider;
use citydata_testkit::{SpawnOptions, TestApp, assert_error, new_client, spawn_app_with};
use serde_json::{Value, json};

/// The organization code the provider sends for 泰州市卫生健康委员会.
const WJW_ORG: &str = "12321200MB0000000W";

fn config(issuer: &str, extra: &str) -> String {
    format!(
        r#"
[oidc.providers.zwfw]
issuer = "{issuer}"
client_id = "citydata"
client_secret = "citydata-secret"
name = "政务统一身份认证"
name_en = "Government identity"
department_claim = "org_code"
roles_claim = "groups"
role_map = {{ "数据分析" = "analyst", "数据管理" = "steward" }}
department_map = {{ "{WJW_ORG}" = "wjw" }}
{extra}
"#
    )
}

async fn app_with(toml: String) -> TestApp {
    spawn_app_with(SpawnOptions { demo: false, accounts_only: true, config_toml: Some(toml), ..Default::default() })
        .await
}

/// A browser: one cookie jar, a client that follows redirects and one that does not.
struct Browser {
    follow: reqwest::Client,
    manual: reqwest::Client,
}

fn browser() -> Browser {
    let jar = std::sync::Arc::new(reqwest::cookie::Jar::default());
    Browser {
        follow: reqwest::Client::builder().cookie_provider(jar.clone()).build().unwrap(),
        manual: reqwest::Client::builder()
            .cookie_provider(jar)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap(),
    }
}

/// Sign in through the provider as a browser does (every redirect followed); returns the
/// browser (with its cookies) and the last response's status and page.
async fn sign_in_as_browser(app: &TestApp) -> (Browser, u16, String) {
    let b = browser();
    let r = b.follow.get(app.url("/auth/oidc/zwfw/login?next=/console")).send().await.unwrap();
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    (b, status, text)
}

async fn sign_in(app: &TestApp) -> (reqwest::Client, u16, String) {
    let (b, status, text) = sign_in_as_browser(app).await;
    (b.follow, status, text)
}

async fn me(c: &reqwest::Client, app: &TestApp) -> Value {
    let r = c.get(app.url("/api/v1/me")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

fn roles(me: &Value) -> Vec<(String, String)> {
    me["memberships"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["department"].as_str().unwrap().to_string(), m["role"].as_str().unwrap().to_string()))
        .collect()
}

#[tokio::test]
async fn a_wjw_analyst_signs_in_through_the_provider() {
    let Some(mut idp) = Provider::start_or_skip("a_wjw_analyst_signs_in_through_the_provider") else { return };
    idp.set_claims(json!({"name": "王医生", "org_code": WJW_ORG, "groups": ["数据分析"]}));
    let app = app_with(config(&idp.issuer, "")).await;

    // The login page offers the provider by name (zh and en), script-free (a plain link).
    let (_, html) = get(&new_client(), &app, "/login?lang=zh").await;
    assert!(html.contains("政务统一身份认证") && html.contains("/auth/oidc/zwfw/login"), "{html}");
    let (_, html) = get(&new_client(), &app, "/login?lang=en").await;
    assert!(html.contains("Government identity"), "{html}");

    let (c, status, _) = sign_in(&app).await;
    assert_eq!(status, 200);
    let m = me(&c, &app).await;
    assert_eq!(m["display_name"], "王医生");
    assert_eq!(roles(&m), vec![("wjw".to_string(), "analyst".to_string())]);
    let username = m["username"].as_str().unwrap().to_string();
    assert!(username.starts_with("zwfw-"), "{username}");
    // The account is one: a second sign-in finds it by (issuer, subject) and refreshes the
    // roles from the claims.
    idp.set_claims(json!({"name": "王医生", "org_code": WJW_ORG, "groups": ["数据管理"]}));
    let (c2, _, _) = sign_in(&app).await;
    let m2 = me(&c2, &app).await;
    assert_eq!(m2["id"], m["id"]);
    assert_eq!(roles(&m2), vec![("wjw".to_string(), "steward".to_string())]);
    // Its sign-ins are audited as made through the provider.
    let logins = audit_entries(&app, "auth.login").await;
    assert!(logins.iter().any(|e| e["actor"] == username.as_str() && e["details"]["provider"] == "zwfw"));
    // It has no password: the local login refuses it whatever is typed.
    let r = new_client()
        .post(app.url("/api/v1/auth/login"))
        .json(&json!({"username": username, "password": "!oidc"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);

    // A department admin pins the roles; later sign-ins leave them alone.
    let admin = app.login("admin").await;
    let r = admin
        .post(app.url("/api/v1/users"))
        .json(&json!({"username": "wjw-admin", "display_name": "卫健委管理员", "password": citydata_testkit::DEMO_PASSWORD,
                       "memberships": [{"department": "wjw", "role": "dept_admin"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
    let id = m["id"].as_str().unwrap();
    let path = format!("/api/v1/users/{id}/pinned-roles");
    // Someone else's department, or not an admin: the account does not exist for them.
    for who in ["gaj-steward", "wjw-steward"] {
        let c = app.login(who).await;
        let r = c.put(app.url(&path)).json(&json!({"roles": ["dept_admin"]})).send().await.unwrap();
        assert_error(r, 404, "not_found").await;
    }
    let wjw_admin = app.login("wjw-admin").await;
    let r = wjw_admin.put(app.url(&path)).json(&json!({"roles": ["admin"]})).send().await.unwrap();
    let body = assert_error(r, 400, "validation_failed").await;
    assert!(body.to_string().contains("roles[0]"), "{body}");
    let r = wjw_admin.put(app.url(&path)).json(&json!({"roles": ["analyst"]})).send().await.unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let (c3, _, _) = sign_in(&app).await;
    assert_eq!(roles(&me(&c3, &app).await), vec![("wjw".to_string(), "analyst".to_string())]);
    // Unpinned, the claims govern again.
    let r = wjw_admin.put(app.url(&path)).json(&json!({"roles": []})).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let (b4, _, _) = sign_in_as_browser(&app).await;
    let c4 = b4.follow.clone();
    assert_eq!(roles(&me(&c4, &app).await), vec![("wjw".to_string(), "steward".to_string())]);

    // Logout ends the session here and at the provider (RP-initiated), then comes back.
    let (_, html) = get(&c4, &app, "/console").await;
    let r = b4.manual.post(app.url("/logout")).form(&[("csrf", csrf_of(&html))]).send().await.unwrap();
    assert_eq!(r.status(), 303);
    let to = r.headers()["location"].to_str().unwrap().to_string();
    assert!(to.starts_with(&format!("{}/endsession?", idp.issuer)), "{to}");
    assert!(to.contains("id_token_hint=") && to.contains("post_logout_redirect_uri="), "{to}");
    let r = c4.get(app.url("/api/v1/me")).send().await.unwrap();
    assert_eq!(r.status(), 401);
}

#[tokio::test]
async fn forged_id_tokens_are_refused() {
    let Some(mut idp) = Provider::start_or_skip("forged_id_tokens_are_refused") else { return };
    idp.set_claims(json!({"name": "王医生", "org_code": WJW_ORG}));
    let app = app_with(config(&idp.issuer, "")).await;
    for mode in ["tamper", "wrong_nonce", "wrong_aud", "expired"] {
        idp.spoil_next(mode);
        let (c, status, html) = sign_in(&app).await;
        assert_eq!(status, 401, "{mode}: {html}");
        assert!(html.contains("ID 令牌未通过校验"), "{mode}: {html}");
        // No session: the caller is still anonymous.
        assert_eq!(c.get(app.url("/api/v1/me")).send().await.unwrap().status(), 401, "{mode}");
    }
    // Each refusal is audited, and no account was made.
    let refused = audit_entries(&app, "auth.oidc").await;
    assert_eq!(refused.iter().filter(|e| e["outcome"] == "denied").count(), 4, "{refused:?}");
    let admin = app.login("admin").await;
    let users: Value = admin.get(app.url("/api/v1/users")).send().await.unwrap().json().await.unwrap();
    assert!(!users.to_string().contains("zwfw-"), "{users}");
    // The same provider, unspoiled, signs in: the refusals were the token's fault.
    let (_, status, _) = sign_in(&app).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn key_rotation_is_followed() {
    let Some(mut idp) = Provider::start_or_skip("key_rotation_is_followed") else { return };
    idp.set_claims(json!({"org_code": WJW_ORG}));
    let app = app_with(config(&idp.issuer, "")).await;
    let (_, status, _) = sign_in(&app).await;
    assert_eq!(status, 200);
    let old = idp.kid.clone();
    idp.rotate();
    assert_ne!(idp.kid, old);
    idp.set_claims(json!({"org_code": WJW_ORG}));
    // The cached key set lacks the new kid: the server fetches the keys again and accepts.
    let (c, status, html) = sign_in(&app).await;
    assert_eq!(status, 200, "{html}");
    assert_eq!(roles(&me(&c, &app).await), vec![("wjw".to_string(), "analyst".to_string())]);
}

#[tokio::test]
async fn a_state_works_once_and_for_its_browser_only() {
    let Some(mut idp) = Provider::start_or_skip("a_state_works_once_and_for_its_browser_only") else { return };
    idp.set_claims(json!({"org_code": WJW_ORG}));
    let app = app_with(config(&idp.issuer, "")).await;
    let b = browser();
    // To the provider: PKCE (S256), state and nonce in the request.
    let r = b.manual.get(app.url("/auth/oidc/zwfw/login")).send().await.unwrap();
    assert_eq!(r.status(), 303);
    let authorize = r.headers()["location"].to_str().unwrap().to_string();
    for p in ["code_challenge_method=S256", "code_challenge=", "state=", "nonce=", "client_id=citydata"] {
        assert!(authorize.contains(p), "{p} in {authorize}");
    }
    // The provider sends the browser back with a code.
    let r = b.manual.get(&authorize).send().await.unwrap();
    let callback = r.headers()["location"].to_str().unwrap().to_string();
    assert!(callback.starts_with(&app.url("/auth/oidc/zwfw/callback?")), "{callback}");
    // Another browser cannot use it (login CSRF): refused, and the state is spent.
    let other = browser();
    let r = other.manual.get(&callback).send().await.unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("不属于此浏览器"));
    let r = b.manual.get(&callback).send().await.unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("已使用过"));

    // A fresh sign-in works once; its replay is refused with the reason.
    let r = b.manual.get(app.url("/auth/oidc/zwfw/login")).send().await.unwrap();
    let authorize = r.headers()["location"].to_str().unwrap().to_string();
    let r = b.manual.get(&authorize).send().await.unwrap();
    let callback = r.headers()["location"].to_str().unwrap().to_string();
    let r = b.manual.get(&callback).send().await.unwrap();
    assert_eq!(r.status(), 303, "{}", r.text().await.unwrap());
    let r = b.manual.get(&callback).send().await.unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("已使用过"));
    // No state at all.
    let r = b.manual.get(app.url("/auth/oidc/zwfw/callback?code=abc")).send().await.unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("缺少 state"));
    // An unknown provider.
    let r = b.manual.get(app.url("/auth/oidc/nobody/login")).send().await.unwrap();
    assert_eq!(r.status(), 404);
}

#[tokio::test]
async fn a_provider_down_leaves_local_login_working() {
    let Some(mut idp) = Provider::start_or_skip("a_provider_down_leaves_local_login_working") else { return };
    // A second provider that answers, but with a discovery document that is no JSON.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let html = axum::Router::new().fallback(|| async { axum::response::Html("<html>维护中</html>") });
    tokio::spawn(async move { axum::serve(listener, html).await });
    let broken = format!(
        r#"
[oidc.providers.broken]
issuer = "http://{addr}"
client_id = "citydata"
name = "区级身份认证"
name_en = "District identity"
"#
    );
    let app = app_with(config(&idp.issuer, &broken)).await;
    idp.stop();
    for (lang, says) in [("zh", "身份提供方暂时无法使用"), ("en", "identity provider is unavailable")] {
        let (status, html) = get(&new_client(), &app, &format!("/login?lang={lang}")).await;
        assert_eq!(status, 200);
        assert_eq!(html.matches(says).count(), 2, "{lang}: {html}");
        assert!(!html.contains("/auth/oidc/zwfw/login"), "no link to a provider that is down");
    }
    // Going there anyway: 503 with the reason, on the login page.
    let (status, html) = get(&new_client(), &app, "/auth/oidc/zwfw/login").await;
    assert_eq!(status, 503);
    assert!(html.contains("暂时无法使用"), "{html}");
    // Local passwords still work.
    crate::support::login_form(&app, "wjw-analyst", citydata_testkit::DEMO_PASSWORD).await;
}

#[tokio::test]
async fn an_unknown_organization_is_public_or_refused_by_setting() {
    let Some(mut idp) = Provider::start_or_skip("an_unknown_organization_is_public_or_refused_by_setting") else {
        return;
    };
    idp.set_claims(json!({"name": "外单位人员", "org_code": "99999999XX0000000X"}));
    // Default: an account without a department, and the platform admins see it in the audit log.
    let app = app_with(config(&idp.issuer, "")).await;
    let (c, status, _) = sign_in(&app).await;
    assert_eq!(status, 200);
    assert!(roles(&me(&c, &app).await).is_empty());
    let told = audit_entries(&app, "auth.oidc.unmapped").await;
    assert_eq!(told.len(), 1, "{told:?}");
    assert_eq!(told[0]["details"]["values"], json!(["99999999XX0000000X"]));
    assert_eq!(told[0]["details"]["result"], "public");
    // `refuse`: no account, no session, 403 with the reason; told as well.
    let app = app_with(config(&idp.issuer, "unmapped_department = \"refuse\"")).await;
    let (c, status, html) = sign_in(&app).await;
    assert_eq!(status, 403);
    assert!(html.contains("未在本平台登记"), "{html}");
    assert_eq!(c.get(app.url("/api/v1/me")).send().await.unwrap().status(), 401);
    let told = audit_entries(&app, "auth.oidc.unmapped").await;
    assert_eq!(told[0]["details"]["result"], "refused");
    assert_eq!(told[0]["outcome"], "denied");
}

#[tokio::test]
async fn staff_local_passwords_can_be_turned_off() {
    let Some(idp) = Provider::start_or_skip("staff_local_passwords_can_be_turned_off") else { return };
    let toml = format!("[oidc]\nlocal_login = \"operators\"\noperators = [\"admin\"]\n{}", config(&idp.issuer, ""));
    let app = app_with(toml).await;
    // Staff: refused with the reason, over the API and the form.
    let r = new_client()
        .post(app.url("/api/v1/auth/login"))
        .json(&json!({"username": "wjw-analyst", "password": citydata_testkit::DEMO_PASSWORD}))
        .send()
        .await
        .unwrap();
    let body = assert_error(r, 403, "forbidden").await;
    assert!(body["error"]["message"].as_str().unwrap().contains("统一身份认证"), "{body}");
    let c = new_client();
    let (_, html) = get(&c, &app, "/login?lang=zh").await;
    let r = c
        .post(app.url("/login"))
        .form(&[
            ("csrf", csrf_of(&html).as_str()),
            ("username", "wjw-steward"),
            ("password", citydata_testkit::DEMO_PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert!(r.text().await.unwrap().contains("统一身份认证登录"));
    // A wrong password still says only that (the rule is not a way to probe accounts).
    let r = new_client()
        .post(app.url("/api/v1/auth/login"))
        .json(&json!({"username": "wjw-analyst", "password": "wrong-password"}))
        .send()
        .await
        .unwrap();
    assert_error(r, 401, "unauthenticated").await;
    // The operator keeps the password, and so does the public (no department).
    app.login("admin").await;
    crate::support::public_user(&app, "citizen@example.com").await;
}
