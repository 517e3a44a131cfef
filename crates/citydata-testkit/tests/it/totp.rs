//! 动态口令 (TOTP) for administrators with local passwords: enrolment at login, the code as a
//! second step, no code twice, single-use recovery codes; over the API and the login form.

use crate::support::{csrf_of, get};
use citydata_domain::totp::{DIGITS, STEP_SECS, TotpAlgorithm, totp};
#[allow(unused_imports)]
use citydata_store::{TotpStore, UserStore};
use citydata_testkit::{DEMO_PASSWORD, SpawnOptions, TestApp, assert_error, new_client, spawn_app_with};
use serde_json::{Value, json};

fn base32_decode(s: &str) -> Vec<u8> {
    let (mut out, mut buf, mut bits) = (vec![], 0u32, 0u32);
    for c in s.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'2'..=b'7' => c - b'2' + 26,
            _ => panic!("not base32: {s}"),
        };
        buf = (buf << 5) | u32::from(v);
        bits += 5;
        if bits >= 8 {
            out.push((buf >> (bits - 8)) as u8);
            bits -= 8;
        }
    }
    out
}

fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()
}

/// A code of `secret` for the step `offset` steps from now.
fn code(secret: &[u8], offset: i64) -> String {
    let t = (now() as i64 + offset * STEP_SECS as i64) as u64;
    totp(secret, t, STEP_SECS, DIGITS, TotpAlgorithm::Sha1)
}

async fn login(app: &TestApp, username: &str, totp_code: Option<&str>) -> reqwest::Response {
    let mut body = json!({"username": username, "password": DEMO_PASSWORD});
    if let Some(c) = totp_code {
        body["totp_code"] = json!(c);
    }
    new_client().post(app.url("/api/v1/auth/login")).json(&body).send().await.unwrap()
}

async fn app() -> TestApp {
    spawn_app_with(SpawnOptions {
        demo: false,
        accounts_only: true,
        config_toml: Some("totp_required_for_admins = true\n".into()),
        ..Default::default()
    })
    .await
}

#[tokio::test]
async fn an_admin_enrols_and_then_needs_a_code_or_a_recovery_code() {
    let app = app().await;
    // The right password alone: enrol first. The secret comes as text, URI and QR code.
    let body = assert_error(login(&app, "admin", None).await, 401, "totp_enrolment_required").await;
    let d = &body["error"]["details"];
    let secret = base32_decode(d["secret"].as_str().unwrap());
    assert_eq!(secret.len(), 20);
    // This step's code and the next one's, computed once (a step boundary may pass meanwhile;
    // both stay accepted for the test's few seconds).
    let (c0, c1) = (code(&secret, 0), code(&secret, 1));
    assert!(d["otpauth_uri"].as_str().unwrap().starts_with("otpauth://totp/citydata:admin?secret="), "{d}");
    assert!(d["qr_svg"].as_str().unwrap().starts_with("<?xml") || d["qr_svg"].as_str().unwrap().contains("<svg"));
    // A wrong password never reaches the second step.
    let r = new_client()
        .post(app.url("/api/v1/auth/login"))
        .json(&json!({"username": "admin", "password": "wrong-password", "totp_code": c0}))
        .send()
        .await
        .unwrap();
    assert_error(r, 401, "unauthenticated").await;
    // A wrong code does not enrol.
    let wrong = format!("{:06}", (c0.parse::<u32>().unwrap() + 1) % 1_000_000);
    assert_error(login(&app, "admin", Some(&wrong)).await, 401, "totp_invalid").await;
    // The right code enrols and signs in; the recovery codes come once.
    let r = login(&app, "admin", Some(&c0)).await;
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    let recovery: Vec<String> =
        v["recovery_codes"].as_array().unwrap().iter().map(|c| c.as_str().unwrap().to_string()).collect();
    assert_eq!(recovery.len(), 10);
    // From now on a code is needed; the one just used (same step) does not work twice.
    assert_error(login(&app, "admin", None).await, 401, "totp_required").await;
    assert_error(login(&app, "admin", Some(&c0)).await, 401, "totp_invalid").await;
    // The next step's code works (clock drift of one step), once; then the older one is
    // refused too (steps only move forward).
    assert_eq!(login(&app, "admin", Some(&c1)).await.status(), 200);
    assert_error(login(&app, "admin", Some(&c1)).await, 401, "totp_invalid").await;
    // A recovery code works once, whatever its case and dashes.
    let rc = recovery[3].to_uppercase().replace('-', " ");
    assert_eq!(login(&app, "admin", Some(&rc)).await.status(), 200);
    assert_error(login(&app, "admin", Some(&recovery[3])).await, 401, "totp_invalid").await;
    assert_eq!(login(&app, "admin", Some(&recovery[4])).await.status(), 200);
    // The secret is sealed at rest: the database holds no base32 or hex of it.
    let stored = app.store.get_totp(user_id(&app, "admin").await).await.unwrap().unwrap();
    assert!(stored.secret.starts_with("v1:") && !stored.secret.contains(&hex_of(&secret)));
    // Staff who are not admins need no code.
    assert_eq!(login(&app, "wjw-analyst", None).await.status(), 200);
    // Every failure is audited.
    let admin = app.login_with_totp("admin", &recovery[5]).await;
    let page: Value = admin
        .get(app.url("/api/v1/audit?action=auth.login&actor=admin&outcome=failure"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(page["total"].as_u64().unwrap() >= 5, "{page}");
}

fn hex_of(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

async fn user_id(app: &TestApp, username: &str) -> uuid::Uuid {
    let u = citydata_domain::user::Username::parse(username).unwrap();
    app.store.get_user_by_username(&u).await.unwrap().unwrap().0.id
}

#[tokio::test]
async fn the_login_form_enrols_with_a_qr_code_and_shows_recovery_codes() {
    let app = app().await;
    let c = new_client();
    let (_, html) = get(&c, &app, "/login?lang=zh").await;
    let form = |csrf: String, code: &str| {
        vec![
            ("csrf", csrf),
            ("username", "admin".to_string()),
            ("password", DEMO_PASSWORD.to_string()),
            ("totp_code", code.to_string()),
            ("next", "/console".to_string()),
        ]
    };
    let r = c.post(app.url("/login")).form(&form(csrf_of(&html), "")).send().await.unwrap();
    assert_eq!(r.status(), 401);
    let html = r.text().await.unwrap().replace("&#x2f;", "/");
    assert!(html.contains("<svg") && html.contains("name=\"totp_code\""), "{html}");
    let at = html.find("密钥: <code>").or_else(|| html.find("密钥：<code>")).expect("the secret as text");
    let rest = &html[at..];
    let start = rest.find("<code>").unwrap() + 6;
    let secret = base32_decode(&rest[start..start + rest[start..].find('<').unwrap()]);
    let r = c.post(app.url("/login")).form(&form(csrf_of(&html), &code(&secret, 0))).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let html = r.text().await.unwrap();
    assert!(html.contains("恢复码（只显示这一次）"), "{html}");
    assert_eq!(html.matches("<li><code>").count(), 10);
    // Signed in.
    assert_eq!(c.get(app.url("/api/v1/me")).send().await.unwrap().status(), 200);
}
