//! 增量同步 over HTTP: `GET /resources/{id}/changes?since_version=N` returns the inserted,
//! updated and deleted rows from the change data feed, through the gate like every read.

use citydata_core::demo::generate::{Register, generate_listing};
use citydata_testkit::{assert_error, spawn_app};
use serde_json::{Value, json};

/// The population listing's header and its data lines.
fn listing(rows: u64) -> (String, Vec<String>) {
    let mut out = Vec::new();
    generate_listing(Register::Population, rows, 0.0, 8, false, &mut out).unwrap();
    let text = String::from_utf8(out).unwrap();
    let mut lines = text.lines().map(str::to_string);
    let header = lines.next().unwrap();
    (header, lines.collect())
}

fn csv(header: &str, lines: &[String]) -> String {
    format!("{header}\n{}\n", lines.join("\n"))
}

#[tokio::test]
async fn changes_since_a_version_are_governed_like_rows() {
    let app = spawn_app().await;
    let gaj = app.login("gaj-steward").await;
    let upload = |mode: &str, body: String| {
        let url = app.url(&format!("/api/v1/resources/101%2F000001/data?mode={mode}"));
        let gaj = gaj.clone();
        async move {
            let r = gaj.post(url).body(body).send().await.unwrap();
            assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
        }
    };
    let (header, lines) = listing(66);
    upload("append", csv(&header, &lines[..60])).await; // version 0
    // Rows 0–11 renamed (2 per district), rows 12–17 deleted (1 per district), rows 60–65 added.
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

    // Without a grant nothing comes through, signed in or not.
    let wjw = app.login("wjw-analyst").await;
    let url = app.url("/api/v1/resources/101%2F000001/changes?since_version=0");
    let body = assert_error(wjw.get(&url).send().await.unwrap(), 403, "grant_required").await;
    assert!(body.get("inserted").is_none() && !body.to_string().contains("改名"), "{body}");
    // The public does not even learn that the (government-only) resource exists.
    let body = assert_error(citydata_testkit::new_client().get(&url).send().await.unwrap(), 404, "not_found").await;
    assert!(!body.to_string().contains("海陵区"), "{body}");

    // A narrowed grant: three items, one district, the birth date masked to the year.
    let grant = json!({
        "resource_id": "101/000001", "grantee": {"department": "wjw"},
        "fields": ["性别", "出生日期", "区县"], "row_filter": "区县 = '海陵区'",
        "masks": {"出生日期": "date_to_year"}, "purpose": "妇幼健康服务", "expires_at": "2099-01-01T00:00:00Z"
    });
    assert_eq!(gaj.post(app.url("/api/v1/grants")).json(&grant).send().await.unwrap().status(), 201);
    let v: Value = wjw.get(&url).send().await.unwrap().json().await.unwrap();
    assert_eq!(v["since_version"], 0);
    assert_eq!(v["current_version"], 3);
    let names: Vec<&str> = v["fields"].as_array().unwrap().iter().map(|f| f["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["xb", "csrq", "qx"]);
    let (ins, upd, del) =
        (v["inserted"].as_array().unwrap(), v["updated"].as_array().unwrap(), v["deleted"].as_array().unwrap());
    assert_eq!((ins.len(), upd.len(), del.len()), (1, 2, 1), "{v}");
    for row in ins.iter().chain(upd).chain(del) {
        assert_eq!(row["qx"], "海陵区");
        assert!(row.get("sfzh").is_none() && row.get("xm").is_none(), "ungranted items leak: {row}");
        assert_eq!(row["csrq"].to_string().trim_matches('"').len(), 4, "masked to the year: {row}");
    }
    assert!(upd.iter().all(|r| r["_commit_version"] == 1));
    assert_eq!(del[0]["_commit_version"], 2);
    assert_eq!(ins[0]["_commit_version"], 3);
    // From the current version on there is nothing new; paging splits a range.
    let v: Value = wjw
        .get(app.url("/api/v1/resources/101%2F000001/changes?since_version=3"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!((v["inserted"].as_array().unwrap().len(), v["next_offset"].is_null()), (0, true));
    let v: Value = wjw
        .get(app.url("/api/v1/resources/101%2F000001/changes?since_version=0&limit=3"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["next_offset"], 3);

    // A replace keeps the feed: every old row deleted, every new row inserted.
    upload("replace", csv(&header, &lines[..6])).await; // version 4
    let v: Value = wjw
        .get(app.url("/api/v1/resources/101%2F000001/changes?since_version=3"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    // 海陵区 before: 10 of the first 60 rows, less 1 deleted, plus 1 appended; after: 1 of 6.
    assert_eq!((v["deleted"].as_array().unwrap().len(), v["inserted"].as_array().unwrap().len()), (10, 1), "{v}");

    // Bad input names the parameter.
    let body = assert_error(
        wjw.get(app.url("/api/v1/resources/101%2F000001/changes")).send().await.unwrap(),
        400,
        "validation_failed",
    )
    .await;
    assert!(body.to_string().contains("since_version"), "{body}");
    assert_error(
        wjw.get(app.url("/api/v1/resources/101%2F000001/changes?since_version=0&filter=身份证号 = '1'"))
            .send()
            .await
            .unwrap(),
        400,
        "validation_failed",
    )
    .await;

    // Every read of changes is audited, refusals included.
    let admin = app.login("admin").await;
    let page: Value = admin
        .get(app.url("/api/v1/audit?action=data.read_changes&per_page=100"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let outcomes: Vec<&str> =
        page["entries"].as_array().unwrap().iter().map(|e| e["outcome"].as_str().unwrap()).collect();
    assert!(outcomes.contains(&"denied") && outcomes.contains(&"success"), "{outcomes:?}");
}
