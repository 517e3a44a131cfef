//! The portal as citizens, analysts, stewards and administrators use it, over HTTP: every zh
//! page in plain Chinese (no vocabulary code, epoch millisecond or bare UUID), absolute URLs
//! from `public_base_url` or the request's host, forms that keep their input, confirmation
//! steps before destructive actions, honest upload reports, and a console per role without
//! buttons that lead to a 403.

use crate::plain::raw_codes;
use crate::support::{csrf_of, get, login_form as login};
use citydata_core::demo::generate::{Register, generate_listing};
use citydata_testkit::{DEMO_PASSWORD, SpawnOptions, TestApp, new_client, spawn_app, spawn_app_with};
use serde_json::Value;

async fn register(app: &TestApp, email: &str, name: &str) -> reqwest::Client {
    let c = new_client();
    let (_, html) = get(&c, app, "/register?lang=zh").await;
    assert!(html.contains("密码须为 8–256 个字符"), "the password rules before submitting");
    let r = c
        .post(app.url("/register"))
        .form(&[
            ("csrf", csrf_of(&html).as_str()),
            ("email", email),
            ("password", "public-pass-1"),
            ("display_name", name),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.url().path(), "/login", "registered");
    let html = r.text().await.unwrap();
    assert!(html.contains("注册成功") && html.contains(&format!("value=\"{email}\"")), "says so, fills the username");
    login(app, email, "public-pass-1").await
}

async fn slug_of(app: &TestApp, code: &str) -> String {
    let v: Value = app
        .login("admin")
        .await
        .get(app.url(&format!("/api/v1/resources/{}", code.replace('/', "%2F"))))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    v["slug"].as_str().unwrap().to_string()
}

async fn load(app: &TestApp, user: &str, code: &str, register: Register, rows: u64, defects: f64) {
    let c = app.login(user).await;
    let mut body = Vec::new();
    generate_listing(register, rows, defects, 7, false, &mut body).unwrap();
    let r = c
        .post(app.url(&format!("/api/v1/resources/{}/data", code.replace('/', "%2F"))))
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
}

/// Fetch `path` as `c` in Chinese and note what raw codes it shows in `bad`; returns the page.
async fn plain(c: &reqwest::Client, app: &TestApp, path: &str, bad: &mut Vec<String>) -> String {
    let (status, html) = get(c, app, path).await;
    assert!(status < 500, "{path}: {status}");
    assert!(html.contains("lang=\"zh-CN\""), "{path} is in Chinese");
    bad.extend(raw_codes(&html).into_iter().map(|f| format!("{path}: {f}")));
    html
}

#[tokio::test]
async fn every_zh_page_speaks_plain_chinese_for_every_role() {
    let app = spawn_app().await;
    load(&app, "scjgj-steward", "102/000001", Register::Enterprise, 60, 0.0).await;
    load(&app, "gaj-steward", "101/000001", Register::Population, 120, 0.05).await;
    let people = slug_of(&app, "101/000001").await;
    let firms = slug_of(&app, "102/000001").await;
    let zones = slug_of(&app, "103/000001").await;

    // wjw asks for 人口基础信息; gaj approves it narrowed to one district with a mask.
    let wjw = login(&app, "wjw-analyst", DEMO_PASSWORD).await;
    let (_, html) = get(&wjw, &app, &format!("/console/apply/{people}")).await;
    let form = [
        ("csrf", csrf_of(&html)),
        ("fields", "sfzh".into()),
        ("fields", "xb".into()),
        ("fields", "qx".into()),
        ("purpose", "统计".into()),
        ("basis", "职责".into()),
        ("period_days", "90".into()),
    ];
    let r = wjw.post(app.url(&format!("/console/apply/{people}"))).form(&form).send().await.unwrap();
    let request = r.url().path().to_string();
    assert!(request.starts_with("/console/requests/"), "{request}");
    let gaj = login(&app, "gaj-steward", DEMO_PASSWORD).await;
    let mut bad = Vec::new();
    let pending = plain(&gaj, &app, &request, &mut bad).await;
    let form = [
        ("csrf", csrf_of(&pending)),
        ("fields", "sfzh".into()),
        ("fields", "qx".into()),
        ("mask_sfzh", "id_card".into()),
        ("row_filter", "qx = '海陵区'".into()),
    ];
    let r = gaj.post(app.url(&format!("{request}/approve"))).form(&form).send().await.unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());

    // A citizen registers and applies for 有条件开放 data.
    let citizen = register(&app, "wang@example.cn", "王市民").await;
    let admin = login(&app, "admin", DEMO_PASSWORD).await;

    let public = new_client();
    for path in [
        "/?lang=zh",
        "/datasets",
        "/datasets?q=企业",
        &format!("/datasets/{firms}"),
        &format!("/datasets/{zones}"),
        "/departments",
        "/departments/scjgj",
        "/themes/market",
        "/help",
        "/login",
        "/register",
    ] {
        plain(&public, &app, path, &mut bad).await;
    }
    for path in [
        "/console",
        "/console/requests",
        &request,
        "/console/grants",
        "/console/tokens",
        "/console/inbox",
        &format!("/datasets/{people}"),
    ] {
        plain(&wjw, &app, path, &mut bad).await;
    }
    for path in [
        "/console",
        "/console/requests",
        &request,
        "/console/grants",
        "/console/inbox",
        &format!("/datasets/{people}"),
        &format!("/console/resources/{people}/upload"),
        &format!("/console/resources/{people}/edit"),
        "/console/resources/new",
        "/console/sources",
        "/console/sources/new",
    ] {
        plain(&gaj, &app, path, &mut bad).await;
    }
    for path in [
        "/console",
        "/console/requests",
        "/console/grants",
        "/console/tokens",
        "/console/inbox",
        &format!("/datasets/{zones}"),
        &format!("/console/apply/{zones}"),
    ] {
        plain(&citizen, &app, path, &mut bad).await;
    }
    for path in ["/console", "/console/audit", "/console/audit?outcome=denied", "/console/requests", "/console/grants"]
    {
        plain(&admin, &app, path, &mut bad).await;
    }
    assert!(bad.is_empty(), "raw codes on zh pages: {bad:#?}");
}

#[tokio::test]
async fn absolute_urls_follow_public_url_or_the_request_host() {
    // Unset: the host the request came to, never a made-up 127.0.0.1:8080.
    let app = spawn_app().await;
    load(&app, "scjgj-steward", "102/000001", Register::Enterprise, 5, 0.0).await;
    let firms = slug_of(&app, "102/000001").await;
    let html = new_client()
        .get(app.url(&format!("/datasets/{firms}")))
        .header("host", "data.taizhou.example")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
        .replace("&#x2f;", "/");
    assert!(html.contains("http://data.taizhou.example/api/v1/resources/"), "examples use the request's host");
    assert!(!html.contains("127.0.0.1:8080"));
    // 企业登记信息 is open without conditions: its examples need no token.
    let api = html.split("id=\"api-h\"").nth(1).unwrap().split("</section>").next().unwrap();
    assert!(!api.contains("Authorization") && !api.contains("apikey"), "no token for open data: {api}");

    // Configured (`public_url`, an alias of `public_base_url`): every absolute URL follows it.
    let app = spawn_app_with(SpawnOptions {
        configure: Some(|s| s.public_base_url = Some("https://data.taizhou.gov.cn".into())),
        ..Default::default()
    })
    .await;
    load(&app, "scjgj-steward", "102/000001", Register::Enterprise, 5, 0.0).await;
    let people = slug_of(&app, "101/000001").await;
    let wjw = login(&app, "wjw-analyst", DEMO_PASSWORD).await;
    let (_, html) = get(&wjw, &app, &format!("/datasets/{people}")).await;
    assert!(html.contains("https://data.taizhou.gov.cn/api/v1/resources/101%2F000001/rows"), "the configured address");
    assert!(html.contains("Authorization: Bearer"), "a conditionally shared resource's examples carry a token");
    for path in ["/api/3/action/package_show?id=102/000001", "/catalog.ttl"] {
        let body =
            new_client().get(app.url(path)).header("host", "evil.example").send().await.unwrap().text().await.unwrap();
        assert!(body.contains("https://data.taizhou.gov.cn/"), "{path} links under public_url");
        assert!(!body.contains("evil.example"), "{path} ignores the Host header when public_url is set");
    }
}

#[tokio::test]
async fn refused_forms_come_back_with_the_input_kept_and_the_error_by_the_field() {
    let app = spawn_app().await;
    load(&app, "gaj-steward", "101/000001", Register::Population, 40, 0.0).await;
    let people = slug_of(&app, "101/000001").await;
    let wjw = login(&app, "wjw-analyst", DEMO_PASSWORD).await;

    // An application without a purpose: the page again, the other answers and items kept.
    let (_, html) = get(&wjw, &app, &format!("/console/apply/{people}")).await;
    let token = csrf_of(&html);
    let form = [
        ("csrf", token.as_str()),
        ("fields", "xb"),
        ("fields", "qx"),
        ("purpose", ""),
        ("basis", "《统计法》第七条"),
        ("period_days", "45"),
    ];
    let r = wjw.post(app.url(&format!("/console/apply/{people}"))).form(&form).send().await.unwrap();
    assert_eq!(r.status(), 400);
    let html = r.text().await.unwrap().replace("&#x2f;", "/");
    assert!(html.contains("id=\"err-purpose\""), "the error by the field");
    assert!(html.contains("《统计法》第七条") && html.contains("value=\"45\""), "answers kept");
    assert!(html.contains("value=\"xb\" checked") && html.contains("value=\"qx\" checked"), "items kept");
    assert!(!html.contains("value=\"sfzh\" checked"), "only the chosen items");
    assert!(raw_codes(&html).is_empty() && !html.contains("/ "), "the error in Chinese only: {:?}", raw_codes(&html));

    // The real application; a second one while it is pending is refused by name.
    let form = [
        ("csrf", token.as_str()),
        ("fields", "sfzh"),
        ("fields", "xb"),
        ("fields", "qx"),
        ("purpose", "统计"),
        ("basis", "职责"),
    ];
    let r = wjw.post(app.url(&format!("/console/apply/{people}"))).form(&form).send().await.unwrap();
    let request = r.url().path().to_string();
    assert!(request.starts_with("/console/requests/"), "{request}");
    let r = wjw.post(app.url(&format!("/console/apply/{people}"))).form(&form).send().await.unwrap();
    assert_eq!(r.status(), 400, "a duplicate pending application is refused");
    assert!(r.text().await.unwrap().contains("已有一份相同的申请正在审核"));

    // The approval form offers only masks the server accepts, sensitive items masked by default.
    let gaj = login(&app, "gaj-steward", DEMO_PASSWORD).await;
    let (_, html) = get(&gaj, &app, &request).await;
    let select = html.split("name=\"mask_sfzh\"").nth(1).unwrap().split("</select>").next().unwrap();
    assert!(select.contains("<option value=\"id_card\" selected>"), "身份证号 starts masked: {select}");
    assert!(!select.contains("value=\"name\""), "no mask the server would refuse");
    for v in select.split("value=\"").skip(1).map(|s| s.split('"').next().unwrap()) {
        assert!(citydata_domain::mask::MaskSpec::parse(v).is_ok(), "{v} is a mask the server accepts");
    }
    assert!(html.contains("name=\"fv_qx\" value=\"海陵区\""), "the row filter offers the district's values");

    // A bad filter: 400, the page again with every choice kept and the error by the filter.
    let token = csrf_of(&html);
    let expires = (chrono::Utc::now() + chrono::Duration::days(30)).format("%Y-%m-%d").to_string();
    let form = [
        ("csrf", token.as_str()),
        ("fields", "sfzh"),
        ("fields", "qx"),
        ("mask_sfzh", "redact"),
        ("mask_qx", "none"),
        ("row_filter", "nosuchitem = 1"),
        ("expires", expires.as_str()),
    ];
    let r = gaj.post(app.url(&format!("{request}/approve"))).form(&form).send().await.unwrap();
    assert_eq!(r.status(), 400);
    let html = r.text().await.unwrap().replace("&#x2f;", "/");
    let shown: Vec<&str> = html.split("class=\"error\"").skip(1).map(|s| s.split('<').next().unwrap_or("")).collect();
    assert!(html.contains("id=\"err-row_filter\""), "the filter's error by the filter: {shown:?}");
    assert!(
        html.contains("value=\"nosuchitem = 1\"") && html.contains(&format!("value=\"{expires}\"")),
        "filter and date kept"
    );
    assert!(
        html.contains("value=\"sfzh\" checked") && !html.contains("value=\"xb\" checked"),
        "the items chosen, kept"
    );
    let select = html.split("name=\"mask_sfzh\"").nth(1).unwrap().split("</select>").next().unwrap();
    assert!(select.contains("<option value=\"redact\" selected>"), "the mask chosen, kept: {select}");

    // With the pickers: 区县 = 海陵区; the decided request shows what was granted and by whom.
    let form = [
        ("csrf", token.as_str()),
        ("fields", "sfzh"),
        ("fields", "qx"),
        ("mask_sfzh", "id_card"),
        ("fv_qx", "海陵区"),
        ("fv_qx", "高港区"),
    ];
    let r = gaj.post(app.url(&format!("{request}/approve"))).form(&form).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let (_, html) = get(&wjw, &app, &request).await;
    let decided = html.split("id=\"decided-h\"").nth(1).expect("the decided scope").split("</section>").next().unwrap();
    for text in ["身份证号", "区县", "身份证号（仅显示地区码）", "区县 属于 海陵区、高港区", "公安局"]
    {
        assert!(decided.contains(text), "the decision shows {text}: {decided}");
    }
    let asked = html.split("申请的信息项").nth(1).unwrap_or("").split("</dd>").next().unwrap_or("");
    assert!(asked.contains("性别"), "beside what was asked: {asked}");
}

#[tokio::test]
async fn destructive_actions_ask_first_and_say_what_will_happen() {
    let app = spawn_app().await;
    load(&app, "scjgj-steward", "102/000001", Register::Enterprise, 30, 0.0).await;
    let firms = slug_of(&app, "102/000001").await;
    let scjgj = login(&app, "scjgj-steward", DEMO_PASSWORD).await;

    // Withdraw: the console links to a confirmation page; a post without `confirm` does nothing.
    let (_, home) = get(&scjgj, &app, "/console").await;
    assert!(home.contains(&format!("href=\"/console/resources/{firms}/withdraw\"")), "a link, not a one-click form");
    let (status, page) = get(&scjgj, &app, &format!("/console/resources/{firms}/withdraw")).await;
    assert_eq!(status, 200);
    assert!(page.contains("可随时在工作台重新发布") && page.contains("name=\"confirm\" value=\"yes\""), "{page}");
    let token = csrf_of(&page);
    let r = scjgj
        .post(app.url(&format!("/console/resources/{firms}/withdraw")))
        .form(&[("csrf", token.as_str())])
        .send()
        .await
        .unwrap();
    assert!(r.url().path().ends_with("/withdraw"), "back to the confirmation: {}", r.url());
    assert_eq!(resource_state(&scjgj, &app).await, "published", "nothing happened without confirming");
    let r = scjgj
        .post(app.url(&format!("/console/resources/{firms}/withdraw")))
        .form(&[("csrf", token.as_str()), ("confirm", "yes")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.url().path(), "/console");
    assert_eq!(resource_state(&scjgj, &app).await, "withdrawn");
    // Reversible: publish again.
    let html = r.text().await.unwrap().replace("&#x2f;", "/");
    assert!(html.contains("重新发布"), "the console offers to publish it again");
    let r = scjgj
        .post(app.url(&format!("/console/resources/{firms}/publish")))
        .form(&[("csrf", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(resource_state(&scjgj, &app).await, "published");

    // Replace the whole table: asked first, before the file is read; the table is unchanged.
    let before = version_count(&scjgj, &app, "102%2F000001").await;
    let mut csv = Vec::new();
    generate_listing(Register::Enterprise, 3, 0.0, 9, false, &mut csv).unwrap();
    let upload = |confirm: bool| {
        let mut form = reqwest::multipart::Form::new().text("csrf", token.clone()).text("mode", "replace");
        if confirm {
            form = form.text("confirm", "yes");
        }
        form.part("file", reqwest::multipart::Part::bytes(csv.clone()).file_name("企业.csv"))
    };
    let r = scjgj
        .post(app.url(&format!("/console/resources/{firms}/upload")))
        .multipart(upload(false))
        .send()
        .await
        .unwrap();
    let html = r.text().await.unwrap().replace("&#x2f;", "/");
    assert!(html.contains("确认整表替换") && html.contains("name=\"confirm\" value=\"yes\" required"), "asked first");
    assert!(html.contains("<option value=\"replace\" selected>"), "the mode kept");
    assert_eq!(version_count(&scjgj, &app, "102%2F000001").await, before, "nothing written before confirming");
    let r = scjgj
        .post(app.url(&format!("/console/resources/{firms}/upload")))
        .multipart(upload(true))
        .send()
        .await
        .unwrap();
    assert!(r.text().await.unwrap().contains("已入库"));
    assert_eq!(version_count(&scjgj, &app, "102%2F000001").await, before + 1, "confirmed: replaced");

    // Revoking a grant: a confirmation with a reason the grantee receives.
    let people = slug_of(&app, "101/000001").await;
    load(&app, "gaj-steward", "101/000001", Register::Population, 20, 0.0).await;
    let wjw = login(&app, "wjw-analyst", DEMO_PASSWORD).await;
    let (_, html) = get(&wjw, &app, &format!("/console/apply/{people}")).await;
    let t = csrf_of(&html);
    let form = [("csrf", t.as_str()), ("fields", "xb"), ("purpose", "统计"), ("basis", "职责")];
    let request = wjw
        .post(app.url(&format!("/console/apply/{people}")))
        .form(&form)
        .send()
        .await
        .unwrap()
        .url()
        .path()
        .to_string();
    let gaj = login(&app, "gaj-steward", DEMO_PASSWORD).await;
    let (_, html) = get(&gaj, &app, &request).await;
    let t = csrf_of(&html);
    let r = gaj
        .post(app.url(&format!("{request}/approve")))
        .form(&[("csrf", t.as_str()), ("fields", "xb")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let (_, inbox) = get(&wjw, &app, "/console/inbox").await;
    assert!(inbox.contains("可用信息项：性别"), "items by their titles, not codes: {inbox}");
    let (_, grants) = get(&gaj, &app, "/console/grants").await;
    let revoke = grants.split("href=\"/console/grants/").nth(1).expect("a revoke link").split('"').next().unwrap();
    let revoke = format!("/console/grants/{revoke}");
    let (_, page) = get(&gaj, &app, &revoke).await;
    assert!(
        page.contains("泰州市卫生健康委员会") && page.contains("人口基础信息") && page.contains("name=\"reason\""),
        "{page}"
    );
    let r = gaj.post(app.url(&revoke)).form(&[("csrf", t.as_str())]).send().await.unwrap();
    assert!(r.url().path().ends_with("/revoke"));
    let (_, html) = get(&wjw, &app, &format!("/datasets/{people}")).await;
    assert!(html.contains("<table class=\"data\">"), "still granted before confirming");
    let r = gaj
        .post(app.url(&revoke))
        .form(&[("csrf", t.as_str()), ("confirm", "yes"), ("reason", "项目已结束")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.url().path(), "/console/grants");
    let (_, inbox) = get(&wjw, &app, "/console/inbox").await;
    assert!(inbox.contains("项目已结束"), "the grantee learns why");
    assert!(!inbox.contains("grant revoked"), "in the page's language only");
    let audit = crate::support::audit_entries(&app, "grant.revoke").await;
    assert_eq!(audit[0]["details"]["reason"], "项目已结束", "the audit keeps why: {audit:?}");

    // Revoking a token: a confirmation naming the token.
    let (_, html) = get(&wjw, &app, "/console/tokens").await;
    let t = csrf_of(&html);
    let r = wjw
        .post(app.url("/console/tokens"))
        .form(&[("csrf", t.as_str()), ("name", "夜间同步"), ("days", "30")])
        .send()
        .await
        .unwrap();
    let html = r.text().await.unwrap().replace("&#x2f;", "/");
    let secret = html.split("<code class=\"token\">").nth(1).unwrap().split('<').next().unwrap().to_string();
    let link = html.split("href=\"/console/tokens/").nth(1).unwrap().split('"').next().unwrap();
    let link = format!("/console/tokens/{link}");
    let (_, page) = get(&wjw, &app, &link).await;
    assert!(page.contains("夜间同步") && page.contains("无法撤销"), "{page}");
    wjw.post(app.url(&link)).form(&[("csrf", t.as_str())]).send().await.unwrap();
    assert_eq!(new_client().get(app.url("/api/v1/me")).bearer_auth(&secret).send().await.unwrap().status(), 200);
    wjw.post(app.url(&link)).form(&[("csrf", t.as_str()), ("confirm", "yes")]).send().await.unwrap();
    assert_eq!(new_client().get(app.url("/api/v1/me")).bearer_auth(&secret).send().await.unwrap().status(), 401);
}

#[tokio::test]
async fn an_upload_that_committed_nothing_says_so_and_makes_no_version() {
    let app = spawn_app().await;
    load(&app, "gaj-steward", "101/000001", Register::Population, 20, 0.0).await;
    let people = slug_of(&app, "101/000001").await;
    let gaj = login(&app, "gaj-steward", DEMO_PASSWORD).await;
    let api = app.login("gaj-steward").await;
    let before = version_count(&api, &app, "101%2F000001").await;
    let (_, html) = get(&gaj, &app, &format!("/console/resources/{people}/upload")).await;
    let token = csrf_of(&html);
    // Every row has a bad 身份证号 (the key): all of them quarantined.
    let csv = all_invalid_population(5);
    let form = reqwest::multipart::Form::new()
        .text("csrf", token)
        .text("mode", "append")
        .text("policy", "quarantine")
        .part("file", reqwest::multipart::Part::bytes(csv).file_name("坏数据.csv"));
    let r = gaj.post(app.url(&format!("/console/resources/{people}/upload"))).multipart(form).send().await.unwrap();
    let html = r.text().await.unwrap().replace("&#x2f;", "/");
    assert!(html.contains("全部隔离") && html.contains("没有数据入库"), "says nothing was stored");
    assert!(!html.contains("<strong>已入库</strong>") && !html.contains("新版本"), "no 已入库, no version");
    assert!(html.contains("公民身份号码校验") && html.contains("隔离数据示例"), "the first reasons, in words");
    assert!(raw_codes(&html).is_empty(), "{:?}", raw_codes(&html));
    assert_eq!(version_count(&api, &app, "101%2F000001").await, before, "no empty version");
    // The dataset page speaks of the whole table.
    let (_, html) = get(&gaj, &app, &format!("/datasets/{people}")).await;
    let q = html.split("id=\"quality-h\"").nth(1).unwrap().split("</section>").next().unwrap();
    assert!(q.contains("整张数据表") && q.contains("表中现有行数") && q.contains(">20<"), "{q}");
}

/// Every link and button target on the console pages a user sees answers that user without
/// a 403 (buttons that lead nowhere are not shown).
#[tokio::test]
async fn each_role_gets_a_console_without_dead_ends() {
    let app = spawn_app().await;
    load(&app, "gaj-steward", "101/000001", Register::Population, 10, 0.0).await;
    let citizen = register(&app, "zhao@example.cn", "赵先生").await;
    let analyst = login(&app, "wjw-analyst", DEMO_PASSWORD).await;
    let steward = login(&app, "gaj-steward", DEMO_PASSWORD).await;
    let admin = login(&app, "admin", DEMO_PASSWORD).await;
    let (_, home) = get(&citizen, &app, "/console").await;
    assert!(home.contains("我的申请") && home.contains("我的授权") && home.contains("API 令牌"), "a citizen's console");
    assert!(
        !home.contains("待我答复") && !home.contains("/console/resources/new") && !home.contains("本部门"),
        "{home}"
    );
    let (_, home) = get(&analyst, &app, "/console").await;
    assert!(
        !home.contains("/console/resources/new") && !home.contains("待我答复"),
        "an analyst creates nothing, answers nothing"
    );
    let (_, home) = get(&steward, &app, "/console").await;
    assert!(home.contains("/console/resources/new") && home.contains("待我答复"), "a steward's console");
    for (who, c) in [("citizen", &citizen), ("analyst", &analyst), ("steward", &steward), ("admin", &admin)] {
        for page in ["/console", "/console/requests", "/console/grants", "/console/tokens", "/console/inbox"] {
            let (_, html) = get(c, &app, page).await;
            let nav = html.split("class=\"console-nav\"").nth(1).unwrap().split("</nav>").next().unwrap();
            assert!(nav.contains(&format!("href=\"{page}\" aria-current=\"page\"")), "{who} {page}: aria-current");
            for href in html.split("href=\"").skip(1).map(|s| s.split('"').next().unwrap()) {
                if !href.starts_with("/console") || href.contains('#') {
                    continue;
                }
                let href = href.replace("&amp;", "&");
                let (status, _) = get(c, &app, &href).await;
                assert_ne!(status, 403, "{who} on {page}: {href} leads to a 403");
                assert!(status < 500, "{who} on {page}: {href}: {status}");
            }
        }
    }
}

async fn resource_state(c: &reqwest::Client, app: &TestApp) -> String {
    let v: Value = c.get(app.url("/api/v1/resources/102%2F000001")).send().await.unwrap().json().await.unwrap();
    v["state"].as_str().unwrap().to_string()
}

async fn version_count(c: &reqwest::Client, app: &TestApp, code: &str) -> usize {
    let v: Value =
        c.get(app.url(&format!("/api/v1/resources/{code}/versions"))).send().await.unwrap().json().await.unwrap();
    v.as_array().or(v["versions"].as_array()).map(Vec::len).unwrap_or(0)
}

/// A population register of `rows` rows whose every 身份证号 is invalid.
pub fn all_invalid_population(rows: u64) -> Vec<u8> {
    let mut good = Vec::new();
    generate_listing(Register::Population, rows, 0.0, 11, false, &mut good).unwrap();
    let mut reader = csv::Reader::from_reader(good.as_slice());
    let headers = reader.headers().unwrap().clone();
    let id = headers.iter().position(|h| h == "身份证号" || h == "sfzh").expect("an id column");
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(&headers).unwrap();
    for row in reader.records() {
        let row = row.unwrap();
        let cells: Vec<&str> = row.iter().enumerate().map(|(i, c)| if i == id { "12345" } else { c }).collect();
        w.write_record(&cells).unwrap();
    }
    w.into_inner().unwrap()
}

#[tokio::test]
async fn empty_states_explain_and_english_words_find_chinese_entries() {
    let app = spawn_app().await;
    let c = new_client();
    // No results: suggestions, not a bare "nothing found".
    let (_, html) = get(&c, &app, "/datasets?q=不存在的数据集名称xyz&lang=zh").await;
    assert!(html.contains("换个说法") && html.contains("按主题浏览"), "suggestions");
    // A department whose data is government-only: says why nothing is public.
    let (_, html) = get(&c, &app, "/departments/gaj?lang=zh").await;
    if !html.contains("class=\"hits\"") {
        assert!(html.contains("仅在政务部门间共享"), "says why nothing is public");
    }
    // English mode: "enterprise" finds 企业登记信息.
    let (_, html) = get(&c, &app, "/datasets?q=enterprise&lang=en").await;
    assert!(html.contains("data-code=\"102/000001\""), "English words find Chinese entries");
    // The CSV link is UTF-8 with a BOM, for Excel.
    load(&app, "scjgj-steward", "102/000001", Register::Enterprise, 3, 0.0).await;
    let firms = slug_of(&app, "102/000001").await;
    let (_, html) = get(&c, &app, &format!("/datasets/{firms}?lang=zh")).await;
    let href = html.split("download>CSV<").next().unwrap().rsplit("href=\"").next().unwrap().split('"').next().unwrap();
    let href = href.replace("&amp;", "&");
    assert!(href.contains("bom=true"), "{href}");
    let bytes = c.get(app.url(&href)).send().await.unwrap().bytes().await.unwrap();
    assert!(bytes.starts_with(b"\xEF\xBB\xBF"), "a UTF-8 byte-order mark");
}
