//! The web pages over HTTP: every page answers with its key content in Chinese and English,
//! names are escaped everywhere, forms refuse a missing or forged CSRF token, the console's
//! flows work without JavaScript, and the preview goes through the gate.

use crate::support::{csrf_of, login_form};
use citydata_core::demo::generate::{Register, generate_listing};
use citydata_testkit::{TestApp, new_client, spawn_app};
use serde_json::{Value, json};

/// Every HTML page the tests fetch must parse as HTML5 without a single parse error (html5ever
/// with exact errors: misnested or unclosed elements, bad attributes, stray end tags).
fn assert_valid_html(path: &str, html: &str) {
    use html5ever::driver::ParseOpts;
    use html5ever::tendril::TendrilSink;
    use html5ever::tokenizer::TokenizerOpts;
    use html5ever::tree_builder::TreeBuilderOpts;
    let opts = ParseOpts {
        tokenizer: TokenizerOpts { exact_errors: true, ..Default::default() },
        tree_builder: TreeBuilderOpts { exact_errors: true, ..Default::default() },
    };
    let dom = html5ever::parse_document(markup5ever_rcdom::RcDom::default(), opts).one(html);
    let errors = dom.errors.borrow();
    if !errors.is_empty() {
        let _ = std::fs::write(std::env::temp_dir().join("citydata-invalid.html"), html);
    }
    assert!(errors.is_empty(), "{path} is not valid HTML5: {errors:?}");
}

async fn page(c: &reqwest::Client, app: &TestApp, path: &str) -> (u16, String) {
    let r = c.get(app.url(path)).send().await.unwrap();
    let status = r.status().as_u16();
    let is_html = r.headers().get("content-type").is_some_and(|v| v.to_str().unwrap_or("").starts_with("text/html"));
    let body = r.text().await.unwrap();
    if is_html {
        assert_valid_html(path, &body);
    }
    (status, body)
}

async fn enterprise_slug(app: &TestApp) -> String {
    let v: Value =
        new_client().get(app.url("/api/v1/resources/102%2F000001")).send().await.unwrap().json().await.unwrap();
    v["slug"].as_str().unwrap().to_string()
}

async fn load_enterprises(app: &TestApp, rows: u64) {
    let scjgj = app.login("scjgj-steward").await;
    let mut body = Vec::new();
    generate_listing(Register::Enterprise, rows, 0.0, 3, false, &mut body).unwrap();
    let r = scjgj.post(app.url("/api/v1/resources/102%2F000001/data")).body(body).send().await.unwrap();
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
}

#[tokio::test]
async fn every_public_page_answers_in_chinese_and_english() {
    let app = spawn_app().await;
    load_enterprises(&app, 60).await;
    let slug = enterprise_slug(&app).await;
    let anon = new_client();
    let pages: Vec<(String, &str, &str)> = vec![
        ("/".into(), "数据资源", "datasets"),
        ("/datasets?q=企业".into(), "企业登记信息", "Datasets"),
        (format!("/datasets/{slug}"), "企业登记信息", "Preview"),
        ("/departments".into(), "市场监督管理局", "Departments"),
        ("/departments/scjgj".into(), "企业登记信息", "datasets"),
        ("/themes/market".into(), "市场监管", "Market regulation"),
        ("/api-docs".into(), "接口文档", "API documentation"),
        ("/help".into(), "如何查找数据", "How do I find data"),
        ("/login".into(), "用户名或邮箱", "Username or email"),
        ("/register".into(), "注册账号", "Create an account"),
    ];
    for (path, zh, en) in &pages {
        let (status, html) = page(&new_client(), &app, path).await;
        assert_eq!(status, 200, "{path}: {html}");
        assert!(html.starts_with("<!DOCTYPE html>") && html.contains("<html lang=\"zh-CN\">"), "{path}");
        assert!(html.contains(zh), "{path} lacks {zh}");
        let sep = if path.contains('?') { '&' } else { '?' };
        let (status, html) = page(&anon, &app, &format!("{path}{sep}lang=en")).await;
        assert_eq!(status, 200, "{path} in English");
        assert!(html.contains("<html lang=\"en\">") && html.contains(en), "{path}?lang=en lacks {en}");
    }
    // The choice sticks (cookie), and Accept-Language is honoured for new visitors.
    let (_, html) = page(&anon, &app, "/help").await;
    assert!(html.contains("How do I find data"), "the language cookie is remembered");
    let r = new_client().get(app.url("/help")).header("Accept-Language", "en-US,en;q=0.9").send().await.unwrap();
    assert!(r.text().await.unwrap().contains("<html lang=\"en\">"));

    // The dataset page: metadata, items, a preview through the gate, charts, downloads, API examples.
    let (_, html) = page(&new_client(), &app, &format!("/datasets/{slug}")).await;
    for needle in [
        "统一社会信用代码",
        "数据预览",
        "<table class=\"data\">",
        "<svg class=\"chart\"",
        "format=csv",
        "ckanapi",
        "数据纠错",
    ] {
        assert!(html.contains(needle), "dataset page lacks {needle}");
    }
    // Assets: cacheable, embedded.
    let css_path =
        html.split("rel=\"stylesheet\" href=\"").nth(1).unwrap().split('"').next().unwrap().replace("&#x2f;", "/");
    let r = anon.get(app.url(&css_path)).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers()["cache-control"].to_str().unwrap().contains("immutable"));
    assert!(r.text().await.unwrap().contains("--primary"));
    assert_eq!(anon.get(app.url("/static/logo.svg")).send().await.unwrap().status(), 200);
    // Unknown pages are HTML; unknown API paths keep the JSON envelope.
    let (status, html) = page(&new_client(), &app, "/no/such/page").await;
    assert_eq!(status, 404);
    assert!(html.contains("页面不存在"));
    let r = anon.get(app.url("/api/v1/no-such")).send().await.unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(r.json::<Value>().await.unwrap()["error"]["code"], "not_found");
    // Search paging and facets link to themselves.
    let (_, html) = page(&anon, &app, "/datasets?share=unconditional").await;
    assert!(html.contains("aria-current=\"true\""), "the selected facet is marked");
    // Search by region: the 行政区划 facet names divisions by GB/T 2260, and picking one keeps
    // the resources covering it (an exact match: city-wide ones stay under 321200).
    let (_, html) = page(&anon, &app, "/datasets?lang=zh").await;
    assert!(html.contains("行政区划") && html.contains("兴化市（321281）"), "the region facet");
    let (_, html) = page(&anon, &app, "/datasets?region=321281&lang=zh").await;
    assert!(html.contains("景区实时客流"), "a resource covering 兴化市");
    assert!(!html.contains("企业登记信息"), "a city-wide resource is not listed under a district");
    let (_, html) = page(&anon, &app, "/datasets?region=321200&lang=zh").await;
    assert!(html.contains("企业登记信息") && !html.contains("景区实时客流"));
}

#[tokio::test]
async fn names_are_escaped_on_every_page() {
    let app = spawn_app().await;
    let scjgj = app.login("scjgj-steward").await;
    let evil = "<script>alert(1)</script>";
    let r = scjgj
        .post(app.url("/api/v1/resources"))
        .json(&json!({
            "name": evil, "abstract": format!("{evil} 摘要"), "provider": "scjgj",
            "classification": {"class": "thematic", "theme": "market"}, "format": {"category": "spreadsheet", "type": "xlsx"},
            "items": [{"name": "mc", "title": evil, "data_type": "string"}],
            "share": {"type": "unconditional", "method": "api"}, "open": {"type": "unconditional"},
            "update_cycle": "monthly", "tags": [evil]
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
    let created: Value = r.json().await.unwrap();
    let id = created["id"].as_str().unwrap();
    assert_eq!(scjgj.post(app.url(&format!("/api/v1/resources/{id}/publish"))).send().await.unwrap().status(), 200);
    let slug = created["slug"].as_str().unwrap();
    let anon = new_client();
    let console = login_form(&app, "scjgj-steward", citydata_testkit::DEMO_PASSWORD).await;
    for (c, path) in [
        (&anon, "/".to_string()),
        (&anon, "/datasets?q=script".to_string()),
        (&anon, "/datasets".to_string()),
        (&anon, format!("/datasets/{slug}")),
        (&anon, "/departments/scjgj".to_string()),
        (&anon, "/themes/market".to_string()),
        (&console, "/console".to_string()),
        (&console, format!("/console/resources/{slug}/edit")),
        (&console, format!("/console/resources/{slug}/upload")),
    ] {
        let (status, html) = page(c, &app, &path).await;
        assert_eq!(status, 200, "{path}");
        assert!(!html.contains(evil), "{path} renders the name unescaped");
        assert!(html.contains("&lt;script&gt;"), "{path} shows the escaped name");
    }
}

#[tokio::test]
async fn forms_refuse_missing_and_forged_csrf_tokens() {
    let app = spawn_app().await;
    let c = new_client();
    let (_, html) = page(&c, &app, "/login").await;
    let token = csrf_of(&html);
    let creds = [("username", "gaj-steward"), ("password", citydata_testkit::DEMO_PASSWORD)];
    // No token.
    let r = c.post(app.url("/login")).form(&creds).send().await.unwrap();
    assert_eq!(r.status(), 403);
    assert!(r.text().await.unwrap().contains("表单已过期"));
    // A token this server did not sign, sent as both cookie and field.
    let forged = format!("{}.{}", "a".repeat(32), "b".repeat(64));
    let r = new_client()
        .post(app.url("/login"))
        .header("Cookie", format!("citydata_csrf={forged}"))
        .form(&[("csrf", forged.as_str()), ("username", "gaj-steward"), ("password", citydata_testkit::DEMO_PASSWORD)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    // A valid token from another visitor's cookie does not match this visitor's.
    let other = new_client();
    let (_, other_html) = page(&other, &app, "/login").await;
    let r = c
        .post(app.url("/login"))
        .form(&[
            ("csrf", csrf_of(&other_html).as_str()),
            ("username", "gaj-steward"),
            ("password", citydata_testkit::DEMO_PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    // The right token logs in; a wrong password says so without a stack of details.
    let r = c
        .post(app.url("/login"))
        .form(&[("csrf", token.as_str()), ("username", "gaj-steward"), ("password", "wrong-password")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert!(r.text().await.unwrap().contains("用户名或密码错误"));
    let r = c
        .post(app.url("/login"))
        .form(&[
            ("csrf", token.as_str()),
            ("username", "gaj-steward"),
            ("password", citydata_testkit::DEMO_PASSWORD),
            ("next", "https://evil.example/"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.url().path(), "/console", "no open redirect");
    // Console forms need the token too.
    let r = c.post(app.url("/console/tokens")).form(&[("name", "x")]).send().await.unwrap();
    assert_eq!(r.status(), 403);
}

#[tokio::test]
async fn the_console_works_without_javascript() {
    let app = spawn_app().await;
    // The console needs a login.
    let r = new_client().get(app.url("/console")).send().await.unwrap();
    assert_eq!(r.url().path(), "/login");
    let gaj = login_form(&app, "gaj-steward", citydata_testkit::DEMO_PASSWORD).await;
    let (status, html) = page(&gaj, &app, "/console").await;
    assert_eq!(status, 200);
    assert!(html.contains("人口基础信息"), "the department's resources are listed");

    // Upload a file through the form; the report shows counts and failures per rule.
    let slug: String = {
        let v: Value = gaj.get(app.url("/api/v1/resources/101%2F000001")).send().await.unwrap().json().await.unwrap();
        v["slug"].as_str().unwrap().to_string()
    };
    let (_, html) = page(&gaj, &app, &format!("/console/resources/{slug}/upload")).await;
    let token = csrf_of(&html);
    let mut csv = Vec::new();
    generate_listing(Register::Population, 200, 0.05, 4, false, &mut csv).unwrap();
    let form = reqwest::multipart::Form::new()
        .text("csrf", token.clone())
        .text("mode", "append")
        .text("policy", "quarantine")
        .part("file", reqwest::multipart::Part::bytes(csv).file_name("人口.csv"));
    let r = gaj.post(app.url(&format!("/console/resources/{slug}/upload"))).multipart(form).send().await.unwrap();
    let status = r.status();
    let html = r.text().await.unwrap();
    assert_eq!(status, 200, "{html}");
    assert!(html.contains("汇聚报告") && html.contains("入库行数") && html.contains("按规则统计的问题"), "{html}");
    // Without the token the file is refused before it is read.
    let form = reqwest::multipart::Form::new()
        .text("mode", "append")
        .part("file", reqwest::multipart::Part::bytes(b"a,b\n1,2\n".to_vec()).file_name("x.csv"));
    let r = gaj.post(app.url(&format!("/console/resources/{slug}/upload"))).multipart(form).send().await.unwrap();
    assert_eq!(r.status(), 403);

    // Edit with a bad value: the API's validation is shown next to the field, nothing saved.
    let (_, html) = page(&gaj, &app, &format!("/console/resources/{slug}/edit")).await;
    let token = csrf_of(&html);
    let r = gaj
        .post(app.url(&format!("/console/resources/{slug}/edit")))
        .form(&[
            ("csrf", token.as_str()),
            ("name", ""),
            ("abstract", "x"),
            ("update_cycle", "daily"),
            ("share_type", "conditional"),
            ("share_conditions", ""),
            ("open_type", "none"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let html = r.text().await.unwrap();
    assert!(html.contains("id=\"err-name\""), "the name's error is next to the name field");
    let v: Value = gaj.get(app.url("/api/v1/resources/101%2F000001")).send().await.unwrap().json().await.unwrap();
    assert_eq!(v["name"], "人口基础信息");

    // wjw applies through the form; gaj approves narrowed through the form; wjw reads.
    let wjw = login_form(&app, "wjw-analyst", citydata_testkit::DEMO_PASSWORD).await;
    let (status, html) = page(&wjw, &app, &format!("/datasets/{slug}")).await;
    assert_eq!(status, 200);
    assert!(html.contains("须申请并获批准"), "the preview says why it is refused");
    assert!(!html.contains("<table class=\"data\">"), "no rows without a grant");
    let (_, html) = page(&wjw, &app, &format!("/console/apply/{slug}")).await;
    let token = csrf_of(&html);
    let form = [
        ("csrf", token.as_str()),
        ("fields", "xb"),
        ("fields", "csrq"),
        ("fields", "qx"),
        ("purpose", "统计"),
        ("basis", "职责"),
        ("period_days", "90"),
    ];
    let r = wjw.post(app.url(&format!("/console/apply/{slug}"))).form(&form).send().await.unwrap();
    assert!(r.url().path().starts_with("/console/requests/"), "{}", r.url());
    let req_path = r.url().path().to_string();
    let (_, html) = page(&gaj, &app, "/console/requests").await;
    assert!(html.contains(&req_path), "the provider sees the request");
    let (_, html) = page(&gaj, &app, &req_path).await;
    let token = csrf_of(&html);
    let form = [
        ("csrf", token.as_str()),
        ("fields", "xb"),
        ("fields", "qx"),
        ("mask_xb", ""),
        ("row_filter", "区县 = '海陵区'"),
    ];
    let r = gaj.post(app.url(&format!("{req_path}/approve"))).form(&form).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().contains("已批准"));
    let (_, html) = page(&wjw, &app, &format!("/datasets/{slug}")).await;
    assert!(html.contains("<table class=\"data\">") && html.contains("海陵区"), "the grantee now sees the preview");
    let preview = html.split("<table class=\"data\">").nth(1).unwrap().split("</table>").next().unwrap();
    assert!(
        preview.contains("性别") && !preview.contains("身份证号") && !preview.contains("出生日期"),
        "only granted items: {preview}"
    );
    assert!(!preview.contains("姜堰区") && !preview.contains("高港区"), "only the granted district's rows");
    let (_, html) = page(&wjw, &app, "/console/inbox").await;
    assert!(html.contains("申请已批准"));
    let (status, html) = page(&wjw, &app, "/console/grants").await;
    assert_eq!(status, 200);
    assert!(html.contains("人口基础信息") && html.contains("海陵区"), "the grant is listed with its filter");

    // Tokens: created once-shown, then only the prefix.
    let (_, html) = page(&wjw, &app, "/console/tokens").await;
    let token = csrf_of(&html);
    let r = wjw
        .post(app.url("/console/tokens"))
        .form(&[("csrf", token.as_str()), ("name", "脚本"), ("days", "30")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let html = r.text().await.unwrap();
    let secret = html.split("<code class=\"token\">").nth(1).unwrap().split('<').next().unwrap().to_string();
    assert!(secret.starts_with("cd_"));
    let (_, html) = page(&wjw, &app, "/console/tokens").await;
    assert!(!html.contains(&secret), "shown once");
    let r = new_client().get(app.url("/api/v1/me")).bearer_auth(&secret).send().await.unwrap();
    assert_eq!(r.status(), 200, "the token works");

    // The audit log is for platform admins, with the chain status.
    assert_eq!(page(&wjw, &app, "/console/audit").await.0, 403);
    let admin = login_form(&app, "admin", citydata_testkit::DEMO_PASSWORD).await;
    let (status, html) = page(&admin, &app, "/console/audit?action=request.").await;
    assert_eq!(status, 200);
    assert!(html.contains("完整，未被篡改") && html.contains("request.approve"), "{html}");

    // Feedback reaches the provider's inbox.
    let anon = new_client();
    let (_, html) = page(&anon, &app, "/login").await;
    let token = csrf_of(&html);
    let r = anon
        .post(app.url(&format!("/datasets/{slug}/feedback")))
        .form(&[("csrf", token.as_str()), ("body", "出生日期有误"), ("contact", "")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404, "the public cannot see a government-only resource, so cannot report on it");
    let (_, html) = page(&wjw, &app, &format!("/datasets/{slug}")).await;
    let token = csrf_of(html.split("id=\"feedback\"").nth(1).unwrap());
    let r = wjw
        .post(app.url(&format!("/datasets/{slug}/feedback")))
        .form(&[("csrf", token.as_str()), ("body", "出生日期有误"), ("contact", "0523-1234")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().contains("已提交"));
    let (_, html) = page(&gaj, &app, "/console/inbox").await;
    assert!(html.contains("出生日期有误"), "the provider's steward got the feedback");
}

#[tokio::test]
async fn a_public_user_registers_and_applies_through_the_pages() {
    let app = spawn_app().await;
    let c = new_client();
    let (_, html) = page(&c, &app, "/register").await;
    let token = csrf_of(&html);
    // Bad input: each field's message next to it.
    let r = c
        .post(app.url("/register"))
        .form(&[("csrf", token.as_str()), ("email", "not-an-email"), ("password", "short")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let html = r.text().await.unwrap();
    assert!(html.contains("id=\"err-email\"") && html.contains("id=\"err-password\""), "{html}");
    let r = c
        .post(app.url("/register"))
        .form(&[
            ("csrf", token.as_str()),
            ("email", "li@example.cn"),
            ("password", "public-pass-1"),
            ("display_name", "李研究员"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.url().path(), "/login");
    let user = login_form(&app, "li@example.cn", "public-pass-1").await;
    // 103/000001 is 有条件开放: the page offers an application with the commitment.
    let v: Value =
        new_client().get(app.url("/api/v1/resources/103%2F000001")).send().await.unwrap().json().await.unwrap();
    let slug = v["slug"].as_str().unwrap();
    let (_, html) = page(&user, &app, &format!("/datasets/{slug}")).await;
    assert!(html.contains(&format!("/console/apply/{slug}")), "an apply button");
    let (_, html) = page(&user, &app, &format!("/console/apply/{slug}")).await;
    assert!(html.contains("数据安全承诺书"));
    let token = csrf_of(&html);
    let sha = html.split("name=\"commitment_sha256\" value=\"").nth(1).unwrap().split('"').next().unwrap().to_string();
    // Without accepting the commitment: refused, named.
    let mut form = vec![
        ("csrf", token.as_str()),
        ("purpose", "research"),
        ("scenario", "thesis"),
        ("commitment_sha256", sha.as_str()),
    ];
    let r = user.post(app.url(&format!("/console/apply/{slug}"))).form(&form).send().await.unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("id=\"err-accept_commitment\""));
    form.push(("accept_commitment", "on"));
    let r = user.post(app.url(&format!("/console/apply/{slug}"))).form(&form).send().await.unwrap();
    assert!(r.url().path().starts_with("/console/requests/"), "{}", r.url());
    assert!(r.text().await.unwrap().contains("待审核"));
}

#[tokio::test]
async fn stewards_create_resources_in_the_console() {
    let app = spawn_app().await;
    let analyst = login_form(&app, "wjw-analyst", citydata_testkit::DEMO_PASSWORD).await;
    assert_eq!(page(&analyst, &app, "/console/resources/new").await.0, 403, "analysts create nothing");
    let c = login_form(&app, "scjgj-steward", citydata_testkit::DEMO_PASSWORD).await;
    let (status, html) = page(&c, &app, "/console/resources/new").await;
    assert_eq!(status, 200);
    let token = csrf_of(&html);
    let form = |items: &'static str, name: &'static str| {
        vec![
            ("csrf", token.clone()),
            ("provider", "scjgj".into()),
            ("name", name.into()),
            ("abstract", "全市食品经营许可证发放情况".into()),
            ("class", "thematic".into()),
            ("theme", "market".into()),
            ("format_category", "database".into()),
            ("format_type", "table".into()),
            ("update_cycle", "monthly".into()),
            ("share_type", "unconditional".into()),
            ("share_method", "api".into()),
            ("open_type", "unconditional".into()),
            ("items", items.into()),
        ]
    };
    // A bad item type and a missing name: each named where it belongs, nothing created.
    let r = c
        .post(app.url("/console/resources/new"))
        .form(&form("xkzh,许可证号,string,none,主键\nfzrq,发证日期,bogus", ""))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let html = r.text().await.unwrap();
    assert!(html.contains("id=\"err-name\""), "{html}");
    let items_error = html.split("id=\"err-items\">").nth(1).unwrap().split('<').next().unwrap();
    assert!(items_error.contains('2') && items_error.contains("bogus"), "the second line is named: {items_error}");
    let v: Value =
        c.get(app.url("/api/v1/resources?provider=scjgj&per_page=100")).send().await.unwrap().json().await.unwrap();
    let before = v["total"].as_u64().unwrap();
    // Good input: a draft, then the edit page.
    let r = c
        .post(app.url("/console/resources/new"))
        .form(&form("xkzh,许可证号,string,none,主键\nfzrq,发证日期,date", "食品经营许可信息"))
        .send()
        .await
        .unwrap();
    assert!(r.url().path().ends_with("/edit"), "{}", r.url());
    assert!(r.text().await.unwrap().contains("已创建为草稿"));
    let v: Value =
        c.get(app.url("/api/v1/resources?provider=scjgj&per_page=100")).send().await.unwrap().json().await.unwrap();
    assert_eq!(v["total"].as_u64().unwrap(), before + 1);
    let created =
        v["items"].as_array().unwrap().iter().find(|r| r["name"] == "食品经营许可信息").expect("created").clone();
    assert_eq!(created["state"], "draft");
    assert_eq!(created["items"][0]["key"], true);
}
