//! Delta Sharing's change feed (`GET .../changes`) with the PyPI client's
//! `load_table_changes_as_pandas`, through the gate: the grantee receives exactly the changes
//! `GET /api/v1/resources/{id}/changes` gives it (its items, masks and row filter), on a local
//! lake and on S3 (moto); a department without a grant is refused with the protocol's error.

use citydata_core::demo::generate::{Register, generate_listing};
use citydata_testkit::s3::Moto;
use citydata_testkit::{SpawnOptions, TestApp, spawn_app_with};
use serde_json::{Value, json};

const SCRIPT: &str = r##"
import json, os, sys
import delta_sharing
df = delta_sharing.load_table_changes_as_pandas(sys.argv[1] + "#" + sys.argv[2], starting_version=int(sys.argv[3]))
def cell(v):
    if v is None or (isinstance(v, float) and v != v):
        return None
    return str(v)
cols = list(df.columns)
print(json.dumps({"columns": cols, "rows": [[cell(v) for v in r] for r in df.itertuples(index=False)]}, ensure_ascii=False))
# Leave without the interpreter's teardown: under load pyarrow's threads have been seen to
# abort the process at exit ("terminate called without an active exception") after the answer
# was printed.
sys.stdout.flush()
os._exit(0)
"##;

fn csv(header: &str, lines: &[String]) -> String {
    format!("{header}\n{}\n", lines.join("\n"))
}

async fn scenario(app: &TestApp, py: &str, local: bool) {
    let gaj = app.login("gaj-steward").await;
    let upload = |mode: &str, body: String| {
        let url = app.url(&format!("/api/v1/resources/101%2F000001/data?mode={mode}"));
        let gaj = gaj.clone();
        async move {
            let r = gaj.post(url).body(body).send().await.unwrap();
            assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
        }
    };
    let mut out = Vec::new();
    generate_listing(Register::Population, 66, 0.0, 8, false, &mut out).unwrap();
    let text = String::from_utf8(out).unwrap();
    let header = text.lines().next().unwrap().to_string();
    let lines: Vec<String> = text.lines().skip(1).map(str::to_string).collect();
    upload("append", csv(&header, &lines[..60])).await; // version 0
    let renamed: Vec<String> = lines[..12]
        .iter()
        .map(|l| {
            let mut cols: Vec<&str> = l.split(',').collect();
            cols[1] = "改名";
            cols.join(",")
        })
        .collect();
    upload("upsert", csv(&header, &renamed)).await; // version 1
    upload("delete", csv(&header, &lines[12..18])).await; // version 2
    upload("append", csv(&header, &lines[60..])).await; // version 3
    let resource: Value =
        gaj.get(app.url("/api/v1/resources/101%2F000001")).send().await.unwrap().json().await.unwrap();
    let slug = resource["slug"].as_str().unwrap().to_string();
    let grant = json!({
        "resource_id": "101/000001", "grantee": {"department": "wjw"},
        "fields": ["性别", "出生日期", "区县"], "row_filter": "区县 = '海陵区'",
        "masks": {"出生日期": "date_to_year"}, "purpose": "妇幼健康服务", "expires_at": "2099-01-01T00:00:00Z"
    });
    assert_eq!(gaj.post(app.url("/api/v1/grants")).json(&grant).send().await.unwrap().status(), 201);

    // What the REST change feed gives the grantee after version 0.
    let wjw = app.login("wjw-analyst").await;
    let v: Value = wjw
        .get(app.url("/api/v1/resources/101%2F000001/changes?since_version=0"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut expected = Vec::new();
    for (kind, list) in [("insert", "inserted"), ("update_postimage", "updated"), ("delete", "deleted")] {
        for r in v[list].as_array().unwrap() {
            let cell = |n: &str| r[n].as_str().map(str::to_string).unwrap_or_else(|| r[n].to_string());
            expected.push(vec![
                cell("xb"),
                cell("csrq"),
                cell("qx"),
                kind.to_string(),
                r["_commit_version"].to_string(),
            ]);
        }
    }
    expected.sort();
    assert_eq!(expected.len(), 4, "{v}");

    // The same through Delta Sharing and pandas.
    let r = wjw.post(app.url("/api/v1/sharing/profiles")).json(&json!({"name": "cdf"})).send().await.unwrap();
    assert_eq!(r.status(), 201);
    let profile: Value = r.json().await.unwrap();
    let path = app.data_dir.path().join("cdf.share");
    std::fs::write(&path, profile.to_string()).unwrap();
    let table = format!("wjw.gaj.{slug}");
    let run = |start: &'static str| {
        let (py, path, table) = (py.to_string(), path.clone(), table.clone());
        tokio::task::spawn_blocking(move || {
            std::process::Command::new(py).args(["-c", SCRIPT, path.to_str().unwrap(), &table, start]).output().unwrap()
        })
    };
    let out = run("1").await.unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let got: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(got["columns"], json!(["xb", "csrq", "qx", "_change_type", "_commit_version", "_commit_timestamp"]));
    let mut rows: Vec<Vec<String>> = got["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let r = r.as_array().unwrap();
            (0..5).map(|i| r[i].as_str().unwrap_or("null").to_string()).collect()
        })
        .collect();
    rows.sort();
    assert_eq!(rows, expected, "pandas gets exactly the governed changes");
    // From version 0: the first load's rows too, still only 海陵区 and masked.
    let out = run("0").await.unwrap();
    let got: Value = serde_json::from_slice(&out.stdout).unwrap();
    let all = got["rows"].as_array().unwrap();
    assert!(all.len() > 4 && all.iter().all(|r| r[2] == "海陵区" && r[1].as_str().unwrap().len() == 4), "{got}");

    // The protocol's errors: no start, a bad number, and a department without a grant.
    let token = profile["bearerToken"].as_str().unwrap();
    let changes = |who: &str, q: &str| {
        reqwest::Client::new()
            .get(app.url(&format!("/delta-sharing/shares/{who}/schemas/gaj/tables/{slug}/changes{q}")))
            .bearer_auth(token)
    };
    for q in ["", "?startingVersion=x", "?startingVersion=2&endingVersion=1"] {
        let r = changes("wjw", q).send().await.unwrap();
        assert_eq!(r.status(), 400, "{q}");
        assert_eq!(r.json::<Value>().await.unwrap()["errorCode"], "INVALID_PARAMETER_VALUE", "{q}");
    }
    let scj = app.login("scjgj-steward").await;
    let r = scj.post(app.url("/api/v1/sharing/profiles")).json(&json!({"name": "x"})).send().await.unwrap();
    let scj_token = r.json::<Value>().await.unwrap()["bearerToken"].as_str().unwrap().to_string();
    let r = reqwest::Client::new()
        .get(app.url(&format!("/delta-sharing/shares/scjgj/schemas/gaj/tables/{slug}/changes?startingVersion=0")))
        .bearer_auth(&scj_token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["errorCode"], "PERMISSION_DENIED", "{body}");
    assert!(!body.to_string().contains("海陵区"));
    // A file URL already handed out stops working when the profile is revoked (on a local
    // lake, where citydata serves the files; presigned S3 URLs run until they expire).
    let body = changes("wjw", "?startingVersion=1").send().await.unwrap().text().await.unwrap();
    let url = body
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find_map(|v| v["cdf"]["url"].as_str().map(str::to_string))
        .expect("a cdf file");
    assert_eq!(url.starts_with(&app.address), local, "citydata serves local files, the bucket S3 ones: {url}");
    if local {
        assert_eq!(reqwest::get(&url).await.unwrap().status(), 200);
        let forged = url.replace("&u=", "&u=0");
        assert_eq!(reqwest::get(&forged).await.unwrap().status(), 403, "the holder is signed");
        let list: Value = wjw.get(app.url("/api/v1/sharing/profiles")).send().await.unwrap().json().await.unwrap();
        let id =
            list.as_array().unwrap().iter().find(|p| p["name"] == "cdf").unwrap()["id"].as_str().unwrap().to_string();
        let r = wjw.delete(app.url(&format!("/api/v1/sharing/profiles/{id}"))).send().await.unwrap();
        assert!(r.status().is_success(), "{}", r.status());
        assert_eq!(reqwest::get(&url).await.unwrap().status(), 403, "the revoked profile's URL is refused");
    }
    // Audited like a read.
    let admin = app.login("admin").await;
    let page: Value =
        admin.get(app.url("/api/v1/audit?action=data.sharing_changes")).send().await.unwrap().json().await.unwrap();
    let e = page["entries"].as_array().unwrap().iter().find(|e| e["outcome"] == "success").expect("audited");
    assert!(e["details"]["files"].as_u64().unwrap() >= 1, "{e}");
}

#[tokio::test]
async fn load_table_changes_gets_exactly_the_governed_change_feed() {
    let Some(py) = citydata_testkit::python_with("delta_sharing") else { return };
    let app = spawn_app_with(SpawnOptions::default()).await;
    scenario(&app, &py, true).await;
}

#[tokio::test]
async fn load_table_changes_on_s3() {
    let Some(py) = citydata_testkit::python_with("delta_sharing") else { return };
    let Some(moto) = Moto::start_or_skip("sharing_changes::on_s3") else { return };
    let lake = moto.lake().await;
    let app = spawn_app_with(SpawnOptions { s3: Some(lake), ..SpawnOptions::default() }).await;
    scenario(&app, &py, false).await;
}
