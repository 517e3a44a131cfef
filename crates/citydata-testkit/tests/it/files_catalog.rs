//! Files beyond the REST API (issue #24): as CKAN resources (read with the PyPI `ckanapi`
//! client), as DCAT distributions, on the dataset page (a link the browser's viewer opens, no
//! script) and in the console's file form — each showing only what the gate releases.

use crate::files::{PDF, put_file};
use crate::support::{csrf_of, get};
use citydata_testkit::{TestApp, new_client, spawn_app};
use serde_json::Value;

/// 标准地名地址 (大数据中心, 无条件开放, no personal items).
const ADDR: &str = "103%2F000002";
/// 人口基础信息 (公安局, 不予开放, personal items).
const POP: &str = "101%2F000001";

async fn slug_of(app: &TestApp, code: &str) -> String {
    let admin = app.login("admin").await;
    let r: Value = admin.get(app.url(&format!("/api/v1/resources/{code}"))).send().await.unwrap().json().await.unwrap();
    r["slug"].as_str().unwrap().to_string()
}

async fn created(r: reqwest::Response) -> Value {
    let s = r.status();
    let v: Value = r.json().await.unwrap();
    assert_eq!(s, 201, "{v}");
    v
}

const CKAN_SCRIPT: &str = r#"
import json, sys
import ckanapi
ckan = ckanapi.RemoteCKAN(sys.argv[1], user_agent="citydata-test")
p = ckan.action.package_show(id=sys.argv[2])
files = [r for r in p["resources"] if r.get("resource_type") == "file"]
out = {"names": [r["name"] for r in files], "formats": [r["format"] for r in files],
       "urls": [r["url"] for r in files], "num": p["num_resources"], "all": len(p["resources"])}
out["shown"] = ckan.action.resource_show(id=files[0]["id"])["name"] if files else None
s = ckan.action.package_search(q="标准地名地址", rows=5)
out["search_files"] = sum(1 for q in s["results"] for r in q["resources"] if r.get("resource_type") == "file")
print(json.dumps(out, ensure_ascii=False))
"#;

#[tokio::test]
async fn files_are_ckan_resources_dcat_distributions_and_links_on_the_dataset_page() {
    let app = spawn_app().await;
    let admin = app.login("admin").await;
    let gaj = app.login("gaj-steward").await;
    let f = created(put_file(&app, &admin, ADDR, "地名地址编制规范.pdf", PDF, "&description=%E8%A7%84%E8%8C%83").await)
        .await;
    created(put_file(&app, &gaj, POP, "户籍人口明细说明.pdf", PDF, "").await).await;
    let addr = slug_of(&app, ADDR).await;

    // CKAN: the file after the exports, found again by resource_show, through the PyPI client.
    let pkg: Value = new_client()
        .get(app.url(&format!("/api/3/action/package_show?id={addr}")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let resources = pkg["result"]["resources"].as_array().unwrap();
    let file = resources.iter().find(|r| r["resource_type"] == "file").expect("the file is a CKAN resource");
    assert_eq!(file["name"], "地名地址编制规范.pdf");
    assert_eq!(file["format"], "PDF");
    assert_eq!(file["mimetype"], "application/pdf");
    assert_eq!(file["hash"], format!("sha256:{}", f["sha256"].as_str().unwrap()));
    assert_eq!(pkg["result"]["num_resources"].as_u64(), Some(resources.len() as u64));
    let url = file["url"].as_str().unwrap();
    assert_eq!(new_client().get(url).send().await.unwrap().bytes().await.unwrap().as_ref(), PDF);
    if let Some(py) = citydata_testkit::python_with("ckanapi") {
        let (address, slug) = (app.address.clone(), addr.clone());
        let out = tokio::task::spawn_blocking(move || {
            std::process::Command::new(py).args(["-c", CKAN_SCRIPT, &address, &slug]).output().expect("run python")
        })
        .await
        .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "ckanapi failed: {stdout}\n{}", String::from_utf8_lossy(&out.stderr));
        let v: Value = serde_json::from_str(stdout.trim()).unwrap();
        assert_eq!(v["names"], serde_json::json!(["地名地址编制规范.pdf"]), "{v}");
        assert_eq!(v["formats"], serde_json::json!(["PDF"]), "{v}");
        assert_eq!(v["shown"], "地名地址编制规范.pdf", "{v}");
        assert_eq!(v["num"], v["all"], "{v}");
        assert!(v["search_files"].as_u64().unwrap() >= 1, "{v}");
    }
    // The population register's file is the provider's only: not in CKAN for anyone else.
    let pop = slug_of(&app, POP).await;
    for c in [new_client(), app.login("wjw-steward").await] {
        let body =
            c.get(app.url(&format!("/api/3/action/package_show?id={pop}"))).send().await.unwrap().text().await.unwrap();
        assert!(!body.contains("户籍人口明细说明"), "{body}");
    }
    let own =
        gaj.get(app.url(&format!("/api/3/action/package_show?id={pop}"))).send().await.unwrap().text().await.unwrap();
    assert!(own.contains("户籍人口明细说明"), "the provider sees its file in CKAN too");

    // DCAT: a distribution with its download URL, media type and size, in Turtle and JSON-LD.
    let ttl = new_client().get(app.url(&format!("/dataset/{addr}.ttl"))).send().await.unwrap().text().await.unwrap();
    let dist = format!("/distribution/file-{}", f["id"].as_str().unwrap());
    assert!(ttl.contains(&dist) && ttl.contains("dcat:byteSize") && ttl.contains("application/pdf"), "{ttl}");
    assert!(ttl.contains(f["download_url"].as_str().unwrap()), "{ttl}");
    let jsonld = new_client().get(app.url("/catalog.jsonld")).send().await.unwrap().text().await.unwrap();
    assert!(jsonld.contains(&dist) && jsonld.contains("地名地址编制规范.pdf"), "in the catalog");
    assert!(!jsonld.contains("户籍人口明细说明"), "never the restricted file");

    // The dataset page links the file (inline PDF: no download attribute), runs no script.
    let (s, html) = get(&new_client(), &app, &format!("/datasets/{addr}?lang=zh")).await;
    assert_eq!(s, 200);
    let link = format!("<a href=\"{}\">地名地址编制规范.pdf</a>", f["download_url"].as_str().unwrap());
    assert!(html.contains(&link), "{html}");
    assert!(!html.contains("<script"), "script-free");
    assert!(crate::plain::raw_codes(&html).is_empty(), "plain Chinese: {:?}", crate::plain::raw_codes(&html));
    let (_, en) = get(&new_client(), &app, &format!("/datasets/{addr}?lang=en")).await;
    assert!(en.contains("Files") && en.contains("地名地址编制规范.pdf"));
    let (_, pop_page) = get(&app.login("wjw-steward").await, &app, &format!("/datasets/{pop}?lang=zh")).await;
    assert!(!pop_page.contains("户籍人口明细说明"), "another department's page shows no restricted file");
}

#[tokio::test]
async fn stewards_publish_files_through_the_console_form() {
    let app = spawn_app().await;
    let gaj = crate::support::login_form(&app, "gaj-steward", citydata_testkit::DEMO_PASSWORD).await;
    let pop = slug_of(&app, POP).await;
    let page = format!("/console/resources/{pop}/files");
    let (s, html) = get(&gaj, &app, &format!("{page}?lang=zh")).await;
    assert_eq!(s, 200, "{html}");
    assert!(html.contains("enctype=\"multipart/form-data\"") && !html.contains("<script"));
    let csrf = csrf_of(&html);
    let form = |name: &str, body: &[u8], file_name: &str, csrf: &str| {
        reqwest::multipart::Form::new()
            .text("csrf", csrf.to_string())
            .text("name", name.to_string())
            .text("description", "户籍统计口径说明")
            .text("deidentified", "yes")
            .part("file", reqwest::multipart::Part::bytes(body.to_vec()).file_name(file_name.to_string()))
    };
    let r = gaj.post(app.url(&page)).multipart(form("", PDF, "统计口径.pdf", &csrf)).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let html = r.text().await.unwrap();
    assert!(html.contains("已保存“统计口径.pdf”（第 1 版）"), "{html}");
    // A refused file re-renders the form with the reason in Chinese, status 400.
    let r = gaj.post(app.url(&page)).multipart(form("伪装.pdf", b"MZ\x90\x00", "x.pdf", &csrf)).send().await.unwrap();
    assert_eq!(r.status(), 400);
    let html = r.text().await.unwrap();
    assert!(html.contains("可执行文件"), "{html}");
    // A forged post (no valid CSRF token) stores nothing.
    let r = gaj.post(app.url(&page)).multipart(form("伪造.pdf", PDF, "f.pdf", "forged")).send().await.unwrap();
    assert!(r.status().is_client_error());
    // Another department's steward gets no form and cannot post one.
    let wjw = crate::support::login_form(&app, "wjw-steward", citydata_testkit::DEMO_PASSWORD).await;
    let (s, _) = get(&wjw, &app, &page).await;
    assert_eq!(s, 403);
    let (_, wjw_html) = get(&wjw, &app, "/console?lang=zh").await;
    let r = wjw.post(app.url(&page)).multipart(form("x.pdf", PDF, "x.pdf", &csrf_of(&wjw_html))).send().await.unwrap();
    assert_eq!(r.status(), 403);
    let files: Value = app
        .login("gaj-steward")
        .await
        .get(app.url(&format!("/api/v1/resources/{POP}/files")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let names: Vec<&str> = files.as_array().unwrap().iter().map(|f| f["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["统计口径.pdf"]);
    assert_eq!(files[0]["deidentified"], true);
}

#[tokio::test]
async fn the_demo_planning_zones_carry_a_sample_pdf_that_opens_in_the_browser() {
    let app = spawn_app().await;
    let zones = slug_of(&app, "103%2F000001").await;
    // Another department reads it (无条件共享): the page links it, the PDF is served inline.
    let gaj = app.login("gaj-steward").await;
    let (s, html) = get(&gaj, &app, &format!("/datasets/{zones}?lang=zh")).await;
    assert_eq!(s, 200);
    assert!(html.contains("国土空间规划分区说明（示例）.pdf"), "{html}");
    let files: Value =
        gaj.get(app.url("/api/v1/resources/103%2F000001/files")).send().await.unwrap().json().await.unwrap();
    let url = app.url(files[0]["download_url"].as_str().unwrap());
    let r = gaj.get(&url).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "application/pdf");
    assert!(r.headers()["content-disposition"].to_str().unwrap().starts_with("inline; "));
    assert!(r.bytes().await.unwrap().starts_with(b"%PDF-1.4"));
    // 有条件开放: the public needs a grant — no link, no bytes.
    let (_, anon) = get(&new_client(), &app, &format!("/datasets/{zones}?lang=zh")).await;
    assert!(!anon.contains("国土空间规划分区说明（示例）.pdf"));
    assert_eq!(new_client().get(&url).send().await.unwrap().status(), 403);
    // Seeding again adds nothing.
    assert!(!app.core.seed_demo_files().await.unwrap());
}
