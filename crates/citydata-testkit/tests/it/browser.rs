//! The portal in a real browser: headless Chromium driven over WebDriver (Debian's `chromium`
//! and `chromium-driver` packages; fantoccini speaks the protocol). A newcomer searches 企业,
//! opens 企业登记信息 and downloads its CSV; a public user registers and applies for a
//! conditionally open dataset; the provider approves; the applicant reads it. Every page is
//! saved as a screenshot in zh and en under `<target dir>/screenshots/`.
//!
//! When the browser is missing the test says how to install it and skips — except when
//! `CI=true`, where a missing browser fails the run.

use citydata_core::demo::generate::{Register, generate_listing};
use citydata_testkit::{DEMO_PASSWORD, TestApp, spawn_app};
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// 国土空间规划分区 rows.
const PLANNING_ZONES: &str =
    "分区编码,分区名称,面积\nHL-01,海陵老城区,12.5\nHL-02,凤城河风景区,8.25\nGG-01,高港港区,20\n";

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// chromedriver, and the browser profile directory (removed when the test ends).
pub(crate) struct Driver {
    child: Child,
    _profile: tempfile::TempDir,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The screenshots directory: `$CARGO_TARGET_DIR/screenshots`, else `target/screenshots` at the
/// workspace root.
pub(crate) fn screenshots_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target"));
    let dir = target.join("screenshots");
    std::fs::create_dir_all(&dir).expect("screenshots dir");
    dir
}

/// Start chromedriver and a headless Chromium session, or explain why not.
pub(crate) async fn browser(downloads: &Path) -> Option<(Driver, Client)> {
    let missing: Vec<&str> = [CHROMIUM, CHROMEDRIVER].into_iter().filter(|p| !Path::new(p).exists()).collect();
    if !missing.is_empty() {
        let msg = format!(
            "browser tests need {}: install them with `apt-get install -y chromium chromium-driver`",
            missing.join(" and ")
        );
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("{msg} (CI=true: a missing browser fails the run)");
        }
        eprintln!("skipped: {msg}");
        return None;
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let child = Command::new(CHROMEDRIVER)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start chromedriver");
    let profile = tempfile::tempdir().unwrap();
    let profile_path = profile.path().to_path_buf();
    let driver = Driver { child, _profile: profile };
    let caps: serde_json::Map<String, Value> = serde_json::from_value(json!({
        "browserName": "chrome",
        "goog:chromeOptions": {
            "binary": CHROMIUM,
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic",
                     "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
                     "--window-size=1280,1000", format!("--user-data-dir={}", profile_path.display())],
            "prefs": {"download.default_directory": downloads.display().to_string(), "download.prompt_for_download": false}
        }
    }))
    .unwrap();
    let url = format!("http://127.0.0.1:{port}");
    for _ in 0..100 {
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        if let Ok(c) = ClientBuilder::new(connector).capabilities(caps.clone()).connect(&url).await {
            return Some((driver, c));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("chromedriver did not start on {url}");
}

/// axe-core, the accessibility checker (npm's `axe-core`, installed by `.ci/run` under
/// `~/.cache/citydata-axe`; `CITYDATA_AXE` names another `axe.min.js`). Missing: the check is
/// skipped with a message, except under `CI=true`.
fn axe_source() -> Option<String> {
    let path = std::env::var_os("CITYDATA_AXE").map(PathBuf::from).unwrap_or_else(|| {
        PathBuf::from(std::env::var_os("HOME").unwrap_or_default())
            .join(".cache/citydata-axe/node_modules/axe-core/axe.min.js")
    });
    match std::fs::read_to_string(&path) {
        Ok(s) => Some(s),
        Err(_) => {
            let msg = format!(
                "the accessibility check needs axe-core at {}: `npm install --prefix ~/.cache/citydata-axe axe-core@4`",
                path.display()
            );
            if std::env::var("CI").as_deref() == Ok("true") {
                panic!("{msg} (CI=true: a missing checker fails the run)");
            }
            eprintln!("skipped: {msg}");
            None
        }
    }
}

/// Every page the journeys pass: screenshots in zh and en on a desktop and in zh on a 390-px
/// phone; the zh page scanned for raw codes; axe-core run on it (serious and critical
/// violations of WCAG 2.1 A/AA collected).
pub(crate) struct Tour {
    dir: PathBuf,
    axe: Option<String>,
    raw: Vec<String>,
    violations: Vec<String>,
    pages: usize,
}

impl Tour {
    pub(crate) fn new() -> Self {
        Tour { dir: screenshots_dir(), axe: axe_source(), raw: vec![], violations: vec![], pages: 0 }
    }

    /// Visit `path` in both languages and on a phone, ending in Chinese on the desktop.
    /// Returns the Chinese page's source.
    pub(crate) async fn visit(&mut self, c: &Client, app: &TestApp, name: &str, path: &str) -> String {
        let sep = if path.contains('?') { '&' } else { '?' };
        for lang in ["en", "zh"] {
            c.goto(&app.url(&format!("{path}{sep}lang={lang}"))).await.unwrap();
            self.shot(c, &format!("{name}-{lang}")).await;
        }
        let html = c.source().await.unwrap();
        assert!(html.contains("lang=\"zh-CN\""), "{name} ends in Chinese");
        self.check(c, name, &html).await;
        c.set_window_size(390, 844).await.unwrap();
        self.shot(c, &format!("{name}-phone")).await;
        // Nothing may stick out sideways on a phone but the tables that scroll.
        let overflow = c
            .execute("return document.documentElement.scrollWidth - document.documentElement.clientWidth", vec![])
            .await
            .unwrap();
        assert!(overflow.as_i64().unwrap_or(0) <= 1, "{name} is wider than a 390-px phone by {overflow}px");
        c.set_window_size(1280, 1000).await.unwrap();
        self.pages += 1;
        html
    }

    async fn shot(&self, c: &Client, file: &str) {
        let png = c.screenshot().await.unwrap();
        assert!(png.starts_with(b"\x89PNG"), "{file}: a PNG screenshot");
        std::fs::write(self.dir.join(format!("{file}.png")), png).unwrap();
    }

    /// The current (zh) page: no raw code, and no serious accessibility violation.
    async fn check(&mut self, c: &Client, name: &str, html: &str) {
        self.raw.extend(crate::plain::raw_codes(html).into_iter().map(|f| format!("{name}: {f}")));
        let Some(axe) = &self.axe else { return };
        c.execute(&format!("{axe}\n;return true;"), vec![]).await.expect("axe-core loads");
        let found = c
            .execute_async(
                "const done = arguments[arguments.length - 1];
                 axe.run(document, {runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa']},
                                    resultTypes: ['violations']})
                   .then(r => done(r.violations.filter(v => v.impact === 'serious' || v.impact === 'critical')
                       .map(v => v.impact + ' ' + v.id + ': ' + v.help + ' @ ' + v.nodes.slice(0, 3).map(n => n.target.join(' ')).join(' | '))))
                   .catch(e => done(['axe failed: ' + e]));",
                vec![],
            )
            .await
            .expect("axe-core runs");
        for v in found.as_array().into_iter().flatten() {
            self.violations.push(format!("{name}: {}", v.as_str().unwrap_or("?")));
        }
    }

    /// After the journeys: every zh page plain, zero serious accessibility violations.
    pub(crate) fn finish(&self) {
        assert!(self.raw.is_empty(), "raw codes on zh pages: {:#?}", self.raw);
        assert!(self.violations.is_empty(), "accessibility (axe-core, serious or critical): {:#?}", self.violations);
    }
}

async fn fill(c: &Client, css: &str, text: &str) {
    let e = c.find(Locator::Css(css)).await.unwrap_or_else(|e| panic!("{css}: {e}"));
    e.clear().await.unwrap();
    e.send_keys(text).await.unwrap();
}

async fn click(c: &Client, css: &str) {
    c.find(Locator::Css(css)).await.unwrap_or_else(|e| panic!("{css}: {e}")).click().await.unwrap();
}

/// Click a form's submit button and wait for the answer page to load.
async fn submit(c: &Client, css: &str) {
    let before = c.current_url().await.unwrap();
    let old = c.find(Locator::Css("body")).await.unwrap();
    click(c, css).await;
    for _ in 0..100 {
        // The old page's body goes stale once the next page has replaced it.
        let stale = old.html(false).await.is_err();
        let ready =
            c.execute("return document.readyState", vec![]).await.ok().and_then(|v| v.as_str().map(str::to_string));
        if stale && ready.as_deref() == Some("complete") {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("submitting {css} on {before} loaded no new page");
}

pub(crate) async fn login(c: &Client, app: &TestApp, user: &str, password: &str) {
    c.goto(&app.url("/login?lang=zh")).await.unwrap();
    fill(c, "#username", user).await;
    fill(c, "#password", password).await;
    submit(c, "form[action='/login'] button[type=submit]").await;
    let url = c.current_url().await.unwrap();
    assert!(url.path().starts_with("/console"), "{user} logged in: {url}");
}

async fn logout(c: &Client) {
    submit(c, "form[action='/logout'] button").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_newcomer_an_applicant_and_a_provider_in_a_real_browser() {
    let downloads = tempfile::tempdir().unwrap();
    let Some((_driver, c)) = browser(downloads.path()).await else { return };
    let mut t = Tour::new();
    let app = spawn_app().await;
    let scjgj = app.login("scjgj-steward").await;
    let mut body = Vec::new();
    generate_listing(Register::Enterprise, 80, 0.0, 3, false, &mut body).unwrap();
    let r = scjgj.post(app.url("/api/v1/resources/102%2F000001/data")).body(body).send().await.unwrap();
    assert_eq!(r.status(), 201);
    let admin = app.login("admin").await;
    let r = admin.post(app.url("/api/v1/resources/103%2F000001/data")).body(PLANNING_ZONES).send().await.unwrap();
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());

    // A newcomer: home → search 企业 → 企业登记信息 → its preview and chart → CSV download.
    t.visit(&c, &app, "home", "/").await;
    fill(&c, "#q", "企业").await;
    submit(&c, "form.search button").await;
    let html = c.source().await.unwrap();
    assert!(html.contains("企业登记信息"), "search finds it");
    let path = c.current_url().await.unwrap();
    t.visit(&c, &app, "search", &format!("{}?{}", path.path(), path.query().unwrap_or(""))).await;
    submit(&c, "a.dataset-link[data-code='102/000001']").await;
    let dataset = c.current_url().await.unwrap().path().to_string();
    let html = t.visit(&c, &app, "dataset", &dataset).await;
    assert!(html.contains("<table class=\"data\">") && html.contains("<svg class=\"chart\""), "preview and chart");
    c.find(Locator::LinkText("CSV")).await.unwrap().click().await.unwrap();
    let mut csv = None;
    for _ in 0..100 {
        if let Some(f) = std::fs::read_dir(downloads.path())
            .unwrap()
            .filter_map(Result::ok)
            .find(|e| e.path().extension().is_some_and(|x| x == "csv"))
        {
            csv = Some(std::fs::read_to_string(f.path()).unwrap());
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let csv = csv.expect("the CSV was downloaded");
    assert_eq!(csv.lines().count(), 81, "a header and 80 rows");
    for (name, path) in [
        ("departments", "/departments"),
        ("department", "/departments/scjgj"),
        ("theme", "/themes/market"),
        ("api-docs", "/api-docs"),
        ("help", "/help"),
        ("login", "/login"),
        ("register", "/register"),
        ("not-found", "/no/such/page"),
    ] {
        t.visit(&c, &app, name, path).await;
    }

    // A public user registers and applies for a 有条件开放 dataset.
    c.goto(&app.url("/register?lang=zh")).await.unwrap();
    fill(&c, "#email", "zhang@example.cn").await;
    fill(&c, "#display_name", "张同学").await;
    fill(&c, "#password", "public-pass-1").await;
    submit(&c, "form[action='/register'] button").await;
    login(&c, &app, "zhang@example.cn", "public-pass-1").await;
    let v: Value =
        app.client.get(app.url("/api/v1/resources/103%2F000001")).send().await.unwrap().json().await.unwrap();
    let slug = v["slug"].as_str().unwrap().to_string();
    let html = t.visit(&c, &app, "dataset-conditional", &format!("/datasets/{slug}")).await;
    assert!(!html.contains("<table class=\"data\">"), "no preview before approval");
    submit(&c, "a.button.apply").await;
    t.visit(&c, &app, "apply", &format!("/console/apply/{slug}")).await;
    // A refusal comes back with the input kept and the message by the field.
    fill(&c, "#scenario", "高校毕业论文").await;
    c.execute("document.getElementById('purpose').removeAttribute('required')", vec![]).await.unwrap();
    click(&c, "input[name=accept_commitment]").await;
    submit(&c, "form.stack button[type=submit]").await;
    let html = c.source().await.unwrap();
    assert!(html.contains("id=\"err-purpose\""), "the refusal names the purpose");
    let kept = c.find(Locator::Css("#scenario")).await.unwrap().prop("value").await.unwrap();
    assert_eq!(kept.as_deref(), Some("高校毕业论文"), "the input is kept");
    t.shot(&c, "apply-refused-zh").await;
    t.check(&c, "apply-refused", &html).await;
    fill(&c, "#purpose", "城市规划课题研究").await;
    submit(&c, "form.stack button[type=submit]").await;
    let request = c.current_url().await.unwrap().path().to_string();
    if !request.starts_with("/console/requests/") {
        let html = c.source().await.unwrap();
        let errors: Vec<&str> =
            html.split("class=\"error\"").skip(1).map(|s| s.split('<').next().unwrap_or("")).collect();
        panic!("{request}: {errors:?}");
    }
    t.visit(&c, &app, "my-request", &request).await;
    logout(&c).await;

    // The provider (大数据管理中心, whose steward is the platform admin in the demo) approves.
    assert_eq!(v["provider"], "dsjzx");
    let user = "admin".to_string();
    login(&c, &app, &user, DEMO_PASSWORD).await;
    for (name, path) in [
        ("console", "/console"),
        ("console-requests", "/console/requests"),
        ("console-grants", "/console/grants"),
        ("console-tokens", "/console/tokens"),
        ("console-inbox", "/console/inbox"),
    ] {
        t.visit(&c, &app, name, path).await;
    }
    t.visit(&c, &app, "request-review", &request).await;
    submit(&c, &format!("form[action='{request}/approve'] button[type=submit]")).await;
    let html = c.source().await.unwrap();
    assert!(html.contains("已批准") && html.contains("批准的范围"), "approved, with what was granted");
    t.visit(&c, &app, "request-decided", &request).await;
    t.visit(&c, &app, "console-grants-after", "/console/grants").await;
    let revoke = c.find(Locator::Css("a[href$='/revoke']")).await.unwrap().attr("href").await.unwrap().unwrap();
    t.visit(&c, &app, "confirm-revoke-grant", &revoke).await;
    t.visit(&c, &app, "console-audit", "/console/audit").await;
    logout(&c).await;

    // The applicant reads it.
    login(&c, &app, "zhang@example.cn", "public-pass-1").await;
    let html = t.visit(&c, &app, "dataset-granted", &format!("/datasets/{slug}")).await;
    assert!(html.contains("<table class=\"data\">"), "the preview is open now");
    assert!(!html.contains("须申请并获批准"));
    // 纠错: the reader reports a problem with a contact; the provider's steward sees both.
    fill(&c, "#fb-body", "HL-02 的面积与规划文本不一致").await;
    fill(&c, "#fb-contact", "138-0000-1234").await;
    submit(&c, "form[action$='/feedback'] button[type=submit]").await;
    assert!(c.source().await.unwrap().contains("已提交"), "the report was sent");
    let html = t.visit(&c, &app, "citizen-tickets", "/console/tickets").await;
    assert!(html.contains("HL-02 的面积与规划文本不一致"), "the report is under 我的纠错");
    let ticket =
        c.find(Locator::Css("td a[href^='/console/tickets/']")).await.unwrap().attr("href").await.unwrap().unwrap();
    t.visit(&c, &app, "citizen-ticket", &ticket).await;
    t.visit(&c, &app, "citizen-profile", "/console/profile").await;
    t.visit(&c, &app, "citizen-console", "/console").await;
    t.visit(&c, &app, "citizen-requests", "/console/requests").await;
    t.visit(&c, &app, "citizen-grants", "/console/grants").await;
    logout(&c).await;
    login(&c, &app, "admin", DEMO_PASSWORD).await;
    let html = t.visit(&c, &app, "feedback-inbox", "/console/inbox").await;
    assert!(html.contains("HL-02 的面积与规划文本不一致") && html.contains("138-0000-1234"), "the steward can reply");
    t.visit(&c, &app, "steward-tickets", "/console/tickets").await;
    let html = t.visit(&c, &app, "steward-ticket", &ticket).await;
    assert!(html.contains(&format!("{ticket}/accept")), "the provider's steps");
    t.visit(&c, &app, "audit-denied", "/console/audit?outcome=denied").await;
    logout(&c).await;

    // A department steward uploads a file and reads the report.
    login(&c, &app, "gaj-steward", DEMO_PASSWORD).await;
    let mut pop = Vec::new();
    generate_listing(Register::Population, 150, 0.05, 6, true, &mut pop).unwrap();
    let file = downloads.path().join("人口-gbk.csv");
    std::fs::write(&file, pop).unwrap();
    let v: Value = app.client.get(app.url("/api/v1/departments")).send().await.unwrap().json().await.unwrap();
    assert!(v.is_array());
    let gaj = app.login("gaj-steward").await;
    let r: Value = gaj.get(app.url("/api/v1/resources/101%2F000001")).send().await.unwrap().json().await.unwrap();
    let upload = format!("/console/resources/{}/upload", r["slug"].as_str().unwrap());
    t.visit(&c, &app, "console-upload", &upload).await;
    c.find(Locator::Css("#file")).await.unwrap().send_keys(&file.display().to_string()).await.unwrap();
    submit(&c, "form[enctype='multipart/form-data'] button[type=submit]").await;
    let html = c.source().await.unwrap();
    assert!(html.contains("汇聚报告") && html.contains("按规则统计的问题"), "the report of a GB18030 file");
    t.shot(&c, "console-upload-report-zh").await;
    t.check(&c, "console-upload-report", &html).await;
    // A file whose every row fails: 全部隔离, no version, the first reasons.
    let bad = downloads.path().join("人口-坏.csv");
    std::fs::write(&bad, crate::journeys::all_invalid_population(4)).unwrap();
    c.goto(&app.url(&upload)).await.unwrap();
    c.find(Locator::Css("#file")).await.unwrap().send_keys(&bad.display().to_string()).await.unwrap();
    submit(&c, "form[enctype='multipart/form-data'] button[type=submit]").await;
    let html = c.source().await.unwrap();
    assert!(html.contains("全部隔离") && !html.contains("新版本"), "nothing committed, said so");
    t.shot(&c, "console-upload-rejected-zh").await;
    t.check(&c, "console-upload-rejected", &html).await;
    c.set_window_size(390, 844).await.unwrap();
    t.shot(&c, "console-upload-rejected-phone").await;
    c.set_window_size(1280, 1000).await.unwrap();
    // Replacing the whole table asks first.
    c.goto(&app.url(&upload)).await.unwrap();
    c.find(Locator::Css("#mode option[value=replace]")).await.unwrap().click().await.unwrap();
    c.find(Locator::Css("#file")).await.unwrap().send_keys(&file.display().to_string()).await.unwrap();
    submit(&c, "form[enctype='multipart/form-data'] button[type=submit]").await;
    let html = c.source().await.unwrap();
    assert!(html.contains("确认整表替换"), "asked first");
    t.shot(&c, "confirm-replace-zh").await;
    t.check(&c, "confirm-replace", &html).await;
    t.visit(&c, &app, "confirm-withdraw", &upload.replace("/upload", "/withdraw")).await;
    t.visit(&c, &app, "console-rules", &upload.replace("/upload", "/rules")).await;
    t.visit(&c, &app, "steward-console", "/console").await;
    t.visit(&c, &app, "steward-requests", "/console/requests").await;
    t.visit(&c, &app, "console-source-new", "/console/sources/new").await;
    t.visit(&c, &app, "steward-dataset", &upload.replace("/console/resources/", "/datasets/").replace("/upload", ""))
        .await;
    // 评估考核 (#17): the public table, the center's big screen, the department's page.
    t.visit(&c, &app, "evaluation", "/evaluation").await;
    t.visit(&c, &app, "dashboard", "/dashboard").await;
    t.visit(&c, &app, "console-evaluation", "/console/evaluation").await;
    c.close().await.unwrap();
    let shots = std::fs::read_dir(screenshots_dir()).unwrap().count();
    assert!(shots >= 90, "{shots} screenshots");
    eprintln!("{} pages in zh, en and on a 390-px phone; {} screenshots", t.pages, shots);
    t.finish();
}
