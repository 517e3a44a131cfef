//! Delta Sharing (issue #20) against the PyPI `delta-sharing` client, unchanged: a grantee
//! downloads its profile, lists its share and reads exactly what `GET .../rows` gives it (row
//! filter and masks included); a department without a grant sees no table; revoking the grant
//! or the profile refuses the same profile at once; signed file URLs are checked.
//! `.ci/run` installs the client into the CI virtual environment and sets `CITYDATA_PYTHON`;
//! under `CI=true` a missing client fails the test instead of skipping it.

use citydata_core::demo::generate::{Register, generate_listing};
use citydata_testkit::{TestApp, assert_error, spawn_app};
use serde_json::{Value, json};
use std::collections::BTreeSet;

const SCRIPT: &str = r##"
import json, os, sys
import delta_sharing
profile, which = sys.argv[1], sys.argv[2]
client = delta_sharing.SharingClient(profile)
out = {"shares": [s.name for s in client.list_shares()]}
tables = client.list_all_tables()
out["tables"] = [[t.share, t.schema, t.name] for t in tables]
if which != "-":
    df = delta_sharing.load_as_pandas(profile + "#" + which)
    out["columns"] = list(df.columns)
    def cell(v):
        if v is None:
            return None
        try:
            import pandas as pd
            if pd.isna(v):
                return None
        except (TypeError, ValueError):
            pass
        return str(v)
    out["rows"] = [[cell(v) for v in r] for r in df.itertuples(index=False)]
    out["limited"] = len(delta_sharing.load_as_pandas(profile + "#" + which, limit=3))
print(json.dumps(out, ensure_ascii=False))
# Leave without the interpreter's teardown: under load pyarrow's threads have been seen to
# abort the process at exit ("terminate called without an active exception") after the answer
# was printed.
sys.stdout.flush()
os._exit(0)
"##;

fn run_client(py: &str, profile: &std::path::Path, table: &str) -> Result<Value, String> {
    let out = std::process::Command::new(py)
        .args(["-c", SCRIPT, profile.to_str().unwrap(), table])
        .output()
        .expect("run python");
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        return Err(format!("{stdout}\n{}", String::from_utf8_lossy(&out.stderr)));
    }
    Ok(serde_json::from_str(stdout.trim()).unwrap_or_else(|_| panic!("not JSON: {stdout}")))
}

async fn client_in_thread(py: &str, profile: &std::path::Path, table: &str) -> Result<Value, String> {
    let (py, profile, table) = (py.to_string(), profile.to_path_buf(), table.to_string());
    tokio::task::spawn_blocking(move || run_client(&py, &profile, &table)).await.unwrap()
}

/// A profile file for `user`, written into the app's data directory.
async fn profile_for(app: &TestApp, user: &str) -> (reqwest::Client, std::path::PathBuf, Value) {
    let c = app.login(user).await;
    let r = c.post(app.url("/api/v1/sharing/profiles")).json(&json!({"name": "pandas"})).send().await.unwrap();
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
    let profile: Value = r.json().await.unwrap();
    let path = app.data_dir.path().join(format!("{user}.share"));
    std::fs::write(&path, profile.to_string()).unwrap();
    (c, path, profile)
}

fn as_text(v: &Value) -> Option<String> {
    match v {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

async fn sharing_get(app: &TestApp, token: &str, path: &str) -> reqwest::Response {
    reqwest::Client::new().get(app.url(path)).bearer_auth(token).send().await.unwrap()
}

#[tokio::test]
async fn the_pypi_delta_sharing_client_reads_exactly_what_the_gate_allows() {
    let Some(py) = citydata_testkit::python_with("delta_sharing") else { return };
    let app = spawn_app().await;
    let gaj = app.login("gaj-steward").await;
    let mut people = Vec::new();
    generate_listing(Register::Population, 300, 0.0, 20, false, &mut people).unwrap();
    let r = gaj.post(app.url("/api/v1/resources/101%2F000001/data")).body(people).send().await.unwrap();
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
    let resource: Value =
        gaj.get(app.url("/api/v1/resources/101%2F000001")).send().await.unwrap().json().await.unwrap();
    let slug = resource["slug"].as_str().unwrap().to_string();
    let r = gaj
        .post(app.url("/api/v1/grants"))
        .json(&json!({
            "resource_id": "101/000001",
            "grantee": {"department": "wjw"},
            "fields": ["身份证号", "性别", "出生日期", "区县"],
            "row_filter": "区县 = '海陵区'",
            "masks": {"出生日期": "date_to_year"},
            "purpose": "妇幼健康服务",
            "expires_at": "2099-01-01T00:00:00Z"
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
    let grant: Value = r.json().await.unwrap();

    // The grantee's profile file, as the interface fixes it.
    let (wjw, wjw_profile, profile) = profile_for(&app, "wjw-analyst").await;
    assert_eq!(profile["shareCredentialsVersion"], 1);
    assert_eq!(profile["endpoint"], app.url("/delta-sharing"));
    let token = profile["bearerToken"].as_str().unwrap().to_string();
    assert!(token.starts_with("cds_") && profile["expirationTime"].is_string(), "{profile}");
    let listed: Value = wjw.get(app.url("/api/v1/sharing/profiles")).send().await.unwrap().json().await.unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 1);
    assert!(!listed.to_string().contains(&token), "the token is shown only once");
    // A sharing token is no API token.
    let r = reqwest::Client::new().get(app.url("/api/v1/me")).bearer_auth(&token).send().await.unwrap();
    assert_eq!(r.status(), 401);

    // What GET .../rows gives the grantee.
    let rows: Value =
        wjw.get(app.url("/api/v1/resources/101%2F000001/rows?limit=32000")).send().await.unwrap().json().await.unwrap();
    let names: Vec<String> =
        rows["fields"].as_array().unwrap().iter().map(|f| f["name"].as_str().unwrap().to_string()).collect();
    let expected: BTreeSet<Vec<Option<String>>> =
        rows["rows"].as_array().unwrap().iter().map(|r| names.iter().map(|n| as_text(&r[n])).collect()).collect();
    assert!(expected.len() > 10 && expected.len() < 300, "the row filter applies: {}", expected.len());

    let table = format!("wjw.gaj.{slug}");
    let out = client_in_thread(&py, &wjw_profile, &table).await.expect("delta-sharing client");
    assert_eq!(out["shares"], json!(["wjw"]), "{out}");
    assert_eq!(out["tables"], json!([["wjw", "gaj", slug]]), "exactly what the gate allows: {out}");
    assert_eq!(out["columns"], json!(names), "{out}");
    let got: BTreeSet<Vec<Option<String>>> = out["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_array().unwrap().iter().map(|v| v.as_str().map(str::to_string)).collect())
        .collect();
    assert_eq!(out["rows"].as_array().unwrap().len(), rows["rows"].as_array().unwrap().len());
    assert_eq!(got, expected, "pandas reads exactly the rows and masked values of GET .../rows");
    assert_eq!(out["limited"], 3, "{out}");

    // Audited like a read, with files and bytes.
    let admin = app.login("admin").await;
    let page: Value =
        admin.get(app.url("/api/v1/audit?action=data.sharing_query")).send().await.unwrap().json().await.unwrap();
    let e = page["entries"].as_array().unwrap().iter().find(|e| e["outcome"] == "success").expect("audited");
    assert!(e["details"]["files"].as_u64().unwrap() >= 1 && e["details"]["bytes"].as_u64().unwrap() > 0, "{e}");
    assert_eq!(e["details"]["grant_id"], grant["id"]);

    // A department without a grant sees no table, and cannot query the grantee's.
    let (_, scj_profile, scj) = profile_for(&app, "scjgj-steward").await;
    let out = client_in_thread(&py, &scj_profile, "-").await.expect("client");
    assert_eq!(out["shares"], json!(["scjgj"]));
    assert_eq!(out["tables"], json!([]), "no grant, no table: {out}");
    let scj_token = scj["bearerToken"].as_str().unwrap();
    let q = reqwest::Client::new()
        .post(app.url(&format!("/delta-sharing/shares/scjgj/schemas/gaj/tables/{slug}/query")))
        .bearer_auth(scj_token)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(q.status(), 403);
    let body: Value = q.json().await.unwrap();
    assert_eq!(body["errorCode"], "PERMISSION_DENIED", "{body}");
    let r =
        sharing_get(&app, scj_token, &format!("/delta-sharing/shares/wjw/schemas/gaj/tables/{slug}/metadata")).await;
    assert_eq!(r.status(), 404, "another recipient's share does not exist for it");

    // Signed file URLs: HEAD and Range work; a wrong signature is refused.
    let q = reqwest::Client::new()
        .post(app.url(&format!("/delta-sharing/shares/wjw/schemas/gaj/tables/{slug}/query")))
        .bearer_auth(&token)
        .json(&json!({"jsonPredicateHints": "not a predicate", "limitHint": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(q.status(), 200, "a bad hint is ignored");
    assert!(q.headers().get("delta-table-version").is_some());
    let text = q.text().await.unwrap();
    let file: Value = serde_json::from_str(text.lines().nth(2).expect("a file line")).unwrap();
    let url = file["file"]["url"].as_str().unwrap().to_string();
    let size = file["file"]["size"].as_u64().unwrap();
    let plain = reqwest::Client::new();
    let head = plain.head(&url).send().await.unwrap();
    assert_eq!(head.status(), 200);
    assert_eq!(head.headers()["content-length"].to_str().unwrap(), size.to_string());
    let part = plain.get(&url).header("range", "bytes=0-3").send().await.unwrap();
    assert_eq!(part.status(), 206);
    assert_eq!(part.bytes().await.unwrap().as_ref(), b"PAR1");
    let forged = url.replace("sig=", "sig=0");
    assert_eq!(plain.get(&forged).send().await.unwrap().status(), 403);
    let expired = url.replacen("expires=", "expires=1", 1);
    assert_eq!(plain.get(&expired).send().await.unwrap().status(), 403);
    let r = sharing_get(&app, &token, "/delta-sharing/shares/wjw/schemas/gaj/tables/no-such-table/version").await;
    assert_eq!(r.status(), 404);
    assert_eq!(r.json::<Value>().await.unwrap()["errorCode"], "RESOURCE_DOES_NOT_EXIST");
    let r = sharing_get(&app, "cds_nonsense", "/delta-sharing/shares").await;
    assert_eq!(r.status(), 401);

    // Revoking the grant: the same profile is refused at once, and the files are gone.
    let id = grant["id"].as_str().unwrap();
    let r = gaj.post(app.url(&format!("/api/v1/grants/{id}/revoke"))).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let err = client_in_thread(&py, &wjw_profile, &table).await.expect_err("refused after the grant ends");
    assert!(err.contains("403"), "{err}");
    let r = reqwest::Client::new()
        .post(app.url(&format!("/delta-sharing/shares/wjw/schemas/gaj/tables/{slug}/query")))
        .bearer_auth(&token)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert_ne!(plain.get(&url).send().await.unwrap().status(), 200, "the shared table was dropped with its grant");
    let out = client_in_thread(&py, &wjw_profile, "-").await.expect("client");
    assert_eq!(out["tables"], json!([]), "{out}");

    // Revoking the profile: its token is refused (403), the owner's session is unaffected.
    let pid = listed[0]["id"].as_str().unwrap();
    let r = wjw.delete(app.url(&format!("/api/v1/sharing/profiles/{pid}"))).send().await.unwrap();
    assert_eq!(r.status(), 204);
    let r = sharing_get(&app, &token, "/delta-sharing/shares").await;
    assert_eq!(r.status(), 403);
    assert_eq!(r.json::<Value>().await.unwrap()["errorCode"], "PERMISSION_DENIED");
    let r = wjw.delete(app.url(&format!("/api/v1/sharing/profiles/{pid}"))).send().await.unwrap();
    assert_error(r, 404, "not_found").await;
    // Another user cannot revoke it either.
    let scjc = app.login("scjgj-steward").await;
    let r = scjc.delete(app.url(&format!("/api/v1/sharing/profiles/{pid}"))).send().await.unwrap();
    assert_error(r, 404, "not_found").await;
}

#[tokio::test]
async fn bad_profiles_name_the_field() {
    let app = spawn_app().await;
    let c = app.login("wjw-analyst").await;
    let r = c.post(app.url("/api/v1/sharing/profiles")).json(&json!({"name": " "})).send().await.unwrap();
    let body = assert_error(r, 400, "validation_failed").await;
    assert_eq!(body["error"]["details"]["fields"][0]["field"], "name");
    let r = c
        .post(app.url("/api/v1/sharing/profiles"))
        .json(&json!({"name": "x", "expires_in_days": 0}))
        .send()
        .await
        .unwrap();
    let body = assert_error(r, 400, "validation_failed").await;
    assert_eq!(body["error"]["details"]["fields"][0]["field"], "expires_in_days");
    let r = app.client.post(app.url("/api/v1/sharing/profiles")).json(&json!({"name": "x"})).send().await.unwrap();
    assert_error(r, 401, "unauthenticated").await;
    let r = reqwest::Client::new().get(app.url("/delta-sharing/shares")).send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(r.json::<Value>().await.unwrap()["errorCode"], "UNAUTHENTICATED");
}

#[tokio::test]
async fn the_console_creates_downloads_and_revokes_a_profile() {
    use crate::support::{csrf_of, get, login_form};
    let app = spawn_app().await;
    let wjw = login_form(&app, "wjw-analyst", citydata_testkit::DEMO_PASSWORD).await;
    let (status, html) = get(&wjw, &app, "/console/sharing-profiles").await;
    assert_eq!(status, 200);
    assert!(html.contains("共享凭证") && html.contains("config.share"), "{html}");
    assert!(crate::plain::raw_codes(&html).is_empty(), "{:?}", crate::plain::raw_codes(&html));
    let t = csrf_of(&html);
    // A bad name keeps the input and names the field.
    let r = wjw
        .post(app.url("/console/sharing-profiles"))
        .form(&[("csrf", t.as_str()), ("name", " ")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let r = wjw
        .post(app.url("/console/sharing-profiles"))
        .form(&[("csrf", t.as_str()), ("name", "分析师的 pandas"), ("days", "30")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-disposition"].to_str().unwrap().contains("config.share"));
    let file: Value = r.json().await.unwrap();
    assert_eq!(file["shareCredentialsVersion"], 1);
    let token = file["bearerToken"].as_str().unwrap().to_string();
    assert_eq!(sharing_get(&app, &token, "/delta-sharing/shares").await.status(), 200);
    // Revoke through the confirmation.
    let (_, html) = get(&wjw, &app, "/console/sharing-profiles").await;
    let html = html.replace("&#x2f;", "/");
    assert!(html.contains("分析师的 pandas"));
    let link = html.split("href=\"/console/sharing-profiles/").nth(1).unwrap().split('"').next().unwrap();
    let link = format!("/console/sharing-profiles/{link}");
    let (status, page) = get(&wjw, &app, &link).await;
    assert_eq!(status, 200);
    assert!(page.contains("撤销共享凭证"), "{page}");
    wjw.post(app.url(&link)).form(&[("csrf", t.as_str()), ("confirm", "yes")]).send().await.unwrap();
    assert_eq!(sharing_get(&app, &token, "/delta-sharing/shares").await.status(), 403);
    // The English page too.
    let (_, en) = get(&wjw, &app, "/console/sharing-profiles?lang=en").await;
    assert!(en.contains("Sharing profiles"), "{en}");
}

#[tokio::test]
async fn a_public_user_reads_open_data_masked_and_nothing_else() {
    let Some(py) = citydata_testkit::python_with("delta_sharing") else { return };
    let app = spawn_app().await;
    let scj = app.login("scjgj-steward").await;
    let mut ent = Vec::new();
    generate_listing(Register::Enterprise, 40, 0.0, 21, false, &mut ent).unwrap();
    let r = scj.post(app.url("/api/v1/resources/102%2F000001/data")).body(ent).send().await.unwrap();
    assert_eq!(r.status(), 201);
    let gaj = app.login("gaj-steward").await;
    let mut people = Vec::new();
    generate_listing(Register::Population, 30, 0.0, 22, false, &mut people).unwrap();
    let r = gaj.post(app.url("/api/v1/resources/101%2F000001/data")).body(people).send().await.unwrap();
    assert_eq!(r.status(), 201);
    let resource: Value =
        scj.get(app.url("/api/v1/resources/102%2F000001")).send().await.unwrap().json().await.unwrap();
    let slug = resource["slug"].as_str().unwrap().to_string();

    let public = crate::support::public_user(&app, "reader@example.com").await;
    let r = public.post(app.url("/api/v1/sharing/profiles")).json(&json!({"name": "pandas"})).send().await.unwrap();
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
    let profile: Value = r.json().await.unwrap();
    let path = app.data_dir.path().join("public.share");
    std::fs::write(&path, profile.to_string()).unwrap();
    let rows: Value = public
        .get(app.url("/api/v1/resources/102%2F000001/rows?limit=1000"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let names: Vec<String> =
        rows["fields"].as_array().unwrap().iter().map(|f| f["name"].as_str().unwrap().to_string()).collect();
    let text_items = ["tyshxydm", "qymc", "fddbr", "qx"];
    let expected: BTreeSet<Vec<Option<String>>> = rows["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| text_items.iter().filter(|n| names.iter().any(|x| x == *n)).map(|n| as_text(&r[*n])).collect())
        .collect();

    let out = client_in_thread(&py, &path, &format!("open.scjgj.{slug}")).await.expect("client");
    assert_eq!(out["shares"], json!(["open"]), "{out}");
    assert_eq!(out["tables"], json!([["open", "scjgj", slug]]), "only open data, never 人口基础信息: {out}");
    assert_eq!(out["columns"], json!(names), "{out}");
    let got: BTreeSet<Vec<Option<String>>> = out["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let r = r.as_array().unwrap();
            text_items
                .iter()
                .filter_map(|n| names.iter().position(|x| x == n))
                .map(|i| r[i].as_str().map(str::to_string))
                .collect()
        })
        .collect();
    assert_eq!(got.len(), 40);
    assert_eq!(got, expected, "the public's masks apply to the files too");
    // The population register is no table of the public's share, by any name.
    let token = profile["bearerToken"].as_str().unwrap();
    let people: Value = gaj.get(app.url("/api/v1/resources/101%2F000001")).send().await.unwrap().json().await.unwrap();
    let people_slug = people["slug"].as_str().unwrap();
    let path = format!("/delta-sharing/shares/open/schemas/gaj/tables/{people_slug}/metadata");
    let r = sharing_get(&app, token, &path).await;
    assert!(matches!(r.status().as_u16(), 403 | 404), "{}", r.status());
}

#[tokio::test]
async fn queries_pin_a_version_and_refuse_what_does_not_exist() {
    let app = spawn_app().await;
    let gaj = app.login("gaj-steward").await;
    for seed in [30, 31] {
        let mut people = Vec::new();
        generate_listing(Register::Population, 20, 0.0, seed, false, &mut people).unwrap();
        let r = gaj.post(app.url("/api/v1/resources/101%2F000001/data")).body(people).send().await.unwrap();
        assert_eq!(r.status(), 201);
    }
    let resource: Value =
        gaj.get(app.url("/api/v1/resources/101%2F000001")).send().await.unwrap().json().await.unwrap();
    let slug = resource["slug"].as_str().unwrap();
    let r = gaj.post(app.url("/api/v1/sharing/profiles")).json(&json!({"name": "own"})).send().await.unwrap();
    let token = r.json::<Value>().await.unwrap()["bearerToken"].as_str().unwrap().to_string();
    let base = format!("/delta-sharing/shares/gaj/schemas/gaj/tables/{slug}");
    let r = sharing_get(&app, &token, &format!("{base}/version")).await;
    assert_eq!(r.status(), 200);
    let current: i64 = r.headers()["delta-table-version"].to_str().unwrap().parse().unwrap();
    assert!(current >= 1);
    let query = |body: Value| {
        let (url, token) = (app.url(&format!("{base}/query")), token.clone());
        async move { reqwest::Client::new().post(url).bearer_auth(token).json(&body).send().await.unwrap() }
    };
    let r = query(json!({"version": current - 1})).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["delta-table-version"].to_str().unwrap(), (current - 1).to_string());
    let older = r.text().await.unwrap();
    let r = query(json!({})).await;
    assert_eq!(r.headers()["delta-table-version"].to_str().unwrap(), current.to_string());
    let newer = r.text().await.unwrap();
    let rows = |t: &str| -> i64 {
        t.lines()
            .skip(2)
            .map(|l| {
                let v: Value = serde_json::from_str(l).unwrap();
                let stats: Value = serde_json::from_str(v["file"]["stats"].as_str().unwrap()).unwrap();
                stats["numRecords"].as_i64().unwrap()
            })
            .sum()
    };
    assert_eq!(rows(&older), 20, "the first version's rows");
    let all: Value = gaj
        .get(app.url("/api/v1/resources/101%2F000001/rows?limit=1&count=exact"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(rows(&newer), all["total"].as_i64().unwrap(), "the provider reads its whole table");
    let r = query(json!({"version": current + 5})).await;
    assert_eq!(r.status(), 404, "{}", r.text().await.unwrap());
    let r = query(json!({"version": 0, "timestamp": "2026-01-01T00:00:00Z"})).await;
    assert_eq!(r.status(), 400);
    assert_eq!(r.json::<Value>().await.unwrap()["errorCode"], "INVALID_PARAMETER_VALUE");
    let r = query(json!({"timestamp": "yesterday"})).await;
    assert_eq!(r.status(), 400);
    let r = sharing_get(&app, &token, "/delta-sharing/shares/gaj/all-tables?maxResults=0").await;
    assert_eq!(r.status(), 400);
    let r = sharing_get(&app, &token, "/delta-sharing/shares/gaj/all-tables?maxResults=1").await;
    let page: Value = r.json().await.unwrap();
    assert_eq!(page["items"].as_array().unwrap().len(), 1, "{page}");
    let r = sharing_get(&app, &token, "/delta-sharing/shares/nope/schemas").await;
    assert_eq!(r.status(), 404);
}

/// Files under the lake's `sharing/` directory.
fn shared_files(app: &TestApp) -> usize {
    fn walk(p: &std::path::Path, inside: bool) -> usize {
        let Ok(dir) = std::fs::read_dir(p) else { return 0 };
        dir.flatten()
            .map(|e| {
                let inside = inside || e.file_name() == "sharing";
                if e.path().is_dir() { walk(&e.path(), inside) } else { usize::from(inside) }
            })
            .sum()
    }
    walk(app.data_dir.path(), false)
}

/// Shared tables are removed once every file URL handed out from them has expired (superseded
/// versions do not pile up), kept while they may still be fetched, and written again on use.
#[tokio::test]
async fn shared_tables_are_swept_after_their_urls_expire() {
    let app = spawn_app().await;
    let gaj = app.login("gaj-steward").await;
    for seed in [40, 41] {
        let mut people = Vec::new();
        generate_listing(Register::Population, 20, 0.0, seed, false, &mut people).unwrap();
        let r = gaj.post(app.url("/api/v1/resources/101%2F000001/data")).body(people).send().await.unwrap();
        assert_eq!(r.status(), 201);
    }
    let resource: Value =
        gaj.get(app.url("/api/v1/resources/101%2F000001")).send().await.unwrap().json().await.unwrap();
    let slug = resource["slug"].as_str().unwrap();
    let r = gaj.post(app.url("/api/v1/sharing/profiles")).json(&json!({"name": "own"})).send().await.unwrap();
    let token = r.json::<Value>().await.unwrap()["bearerToken"].as_str().unwrap().to_string();
    let url = app.url(&format!("/delta-sharing/shares/gaj/schemas/gaj/tables/{slug}/query"));
    let query = |body: Value| {
        let (url, token) = (url.clone(), token.clone());
        async move {
            let r = reqwest::Client::new().post(url).bearer_auth(token).json(&body).send().await.unwrap();
            assert_eq!(r.status(), 200);
            let text = r.text().await.unwrap();
            let line = text.lines().nth(2).expect("a file").to_string();
            serde_json::from_str::<Value>(&line).unwrap()["file"]["url"].as_str().unwrap().to_string()
        }
    };
    let fetch = |file: String| {
        let file = if file.starts_with("http") { file } else { app.url(&file) };
        async move { reqwest::get(file).await.unwrap().status().as_u16() }
    };
    let current = app.core.lake().unwrap().version(uuid::Uuid::parse_str(resource["id"].as_str().unwrap()).unwrap());
    let current = current.await.unwrap().unwrap();
    let old = query(json!({"version": current - 1})).await;
    let new = query(json!({})).await;
    assert_eq!(fetch(old.clone()).await, 200);
    assert!(shared_files(&app) > 0);
    // Within twice the URLs' lifetime nothing goes.
    let now = chrono::Utc::now();
    assert_eq!(app.core.sweep_shared_tables(now).await.unwrap(), 0);
    assert_eq!(app.core.sweep_shared_tables(now + chrono::Duration::minutes(20)).await.unwrap(), 0);
    assert_eq!(fetch(new.clone()).await, 200);
    // Past it, both tables (two versions, one scope) are removed, files and all.
    assert_eq!(app.core.sweep_shared_tables(now + chrono::Duration::minutes(31)).await.unwrap(), 2);
    assert_eq!(shared_files(&app), 0);
    assert_ne!(fetch(old).await, 200);
    // The next query writes the current table again.
    let again = query(json!({})).await;
    assert_eq!(fetch(again).await, 200);
}
