//! The gate under attack: each test plays a caller trying to get past `decide()` — by
//! rebuilding masked identifiers from the other items of a response, by ordering rows on a
//! masked item, by reading history after the provider shortened it, by keeping access after
//! the policy tightened, by asking a grant for more than the policy allows, by paging through
//! a table that changes underneath, by watching rows leave a row filter in the change feed, by
//! exhausting memory with SQL. Each failed on the code before the gate issue (#11).

use citydata_core::demo::generate::{Register, generate_listing};
use citydata_testkit::{SpawnOptions, TestApp, assert_error, new_client, spawn_app, spawn_app_with};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};

fn listing(register: Register, rows: u64, seed: u64) -> (String, Vec<String>) {
    let mut out = Vec::new();
    generate_listing(register, rows, 0.0, seed, false, &mut out).unwrap();
    let text = String::from_utf8(out).unwrap();
    let mut lines = text.lines().map(str::to_string);
    let header = lines.next().unwrap();
    (header, lines.collect())
}

fn csv(header: &str, lines: &[String]) -> String {
    format!("{header}\n{}\n", lines.join("\n"))
}

fn col(header: &str, title: &str) -> usize {
    header.split(',').position(|h| h == title).unwrap_or_else(|| panic!("no column {title} in {header}"))
}

async fn upload(app: &TestApp, who: &reqwest::Client, code: &str, mode: &str, body: String) {
    let url = app.url(&format!("/api/v1/resources/{}/data?mode={mode}", code.replace('/', "%2F")));
    let r = who.post(url).body(body).send().await.unwrap();
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
}

async fn grant(app: &TestApp, who: &reqwest::Client, body: Value) -> reqwest::Response {
    who.post(app.url("/api/v1/grants")).json(&body).send().await.unwrap()
}

async fn get(who: &reqwest::Client, url: &str) -> Value {
    let r = who.get(url).send().await.unwrap();
    let status = r.status();
    let text = r.text().await.unwrap();
    assert!(status.is_success(), "{url}: {status} {text}");
    serde_json::from_str(&text).unwrap()
}

/// A masked 身份证号 beside 出生日期 and 性别 in one response: the attacker tries to rebuild
/// every number of the register from what the grant released.
#[tokio::test]
async fn masked_identity_numbers_cannot_be_rebuilt_from_the_other_items() {
    let app = spawn_app().await;
    let gaj = app.login("gaj-steward").await;
    let (header, lines) = listing(Register::Population, 300, 11);
    upload(&app, &gaj, "101/000001", "append", csv(&header, &lines)).await;
    let ids: BTreeSet<String> =
        lines.iter().map(|l| l.split(',').nth(col(&header, "身份证号")).unwrap().into()).collect();
    let r = grant(
        &app,
        &gaj,
        json!({"resource_id": "101/000001", "grantee": {"department": "wjw"},
               "fields": ["身份证号", "性别", "出生日期", "区县", "行政区划代码"],
               "purpose": "妇幼保健", "expires_at": "2099-01-01T00:00:00Z"}),
    )
    .await;
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
    let wjw = app.login("wjw-analyst").await;
    let v = get(&wjw, &app.url("/api/v1/resources/101%2F000001/rows?limit=1000")).await;
    let masks: BTreeMap<String, Value> = v["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (f["name"].as_str().unwrap().to_string(), f["mask"].clone()))
        .collect();
    assert_eq!(masks["sfzh"], "id_card");
    assert_eq!(masks["csrq"], "date_to_year", "the birth date is generalized beside a masked number");
    let mut rebuilt = 0;
    for row in v["rows"].as_array().unwrap() {
        let shown = row["sfzh"].as_str().unwrap();
        let birth = row["csrq"].to_string().trim_matches('"').replace('-', "");
        // The attack: visible prefix + birth date + visible suffix, every sequence digit.
        let prefix: String = shown.chars().take_while(|c| *c != '*').collect();
        let suffix: String =
            shown.chars().rev().take_while(|c| *c != '*').collect::<Vec<_>>().into_iter().rev().collect();
        let candidates = ids.iter().filter(|id| id.starts_with(&prefix) && id.ends_with(&suffix) && id[6..14] == birth);
        if candidates.count() == 1 {
            rebuilt += 1;
        }
        assert!(shown.chars().filter(|c| *c == '*').count() >= 12, "{shown}");
    }
    assert_eq!(rebuilt, 0);
    // Asking the gate for the birth date in clear beside the masked number is refused, naming it.
    let body = assert_error(
        grant(
            &app,
            &gaj,
            json!({"resource_id": "101/000001", "grantee": {"department": "wjw"},
                   "fields": ["身份证号", "性别", "出生日期"], "masks": {"出生日期": "none"},
                   "purpose": "妇幼保健", "expires_at": "2099-01-01T00:00:00Z"}),
        )
        .await,
        400,
        "validation_failed",
    )
    .await;
    assert_eq!(body["error"]["details"]["fields"][0]["field"], "masks.csrq", "{body}");
    assert_eq!(body["error"]["details"]["fields"][0]["code"], "mask_not_allowed", "{body}");
    // A weak mask on the number itself is strengthened the same way.
    let body = assert_error(
        grant(
            &app,
            &gaj,
            json!({"resource_id": "101/000001", "grantee": {"department": "wjw"},
                   "fields": ["身份证号", "出生日期"], "masks": {"身份证号": "keep(6,4)", "出生日期": "date_to_year"},
                   "purpose": "妇幼保健", "expires_at": "2099-01-01T00:00:00Z"}),
        )
        .await,
        400,
        "validation_failed",
    )
    .await;
    assert_eq!(body["error"]["details"]["fields"][0]["field"], "masks.sfzh", "{body}");
}

/// Sorting on a masked item would rank people by their real values: refused on every path.
#[tokio::test]
async fn no_ordering_on_masked_items() {
    let app = spawn_app().await;
    let scj = app.login("scjgj-steward").await;
    let (header, lines) = listing(Register::Enterprise, 60, 12);
    upload(&app, &scj, "102/000001", "append", csv(&header, &lines)).await;
    let wjw = app.login("wjw-analyst").await;
    // 法定代表人 is personal: masked for other departments of this unconditional resource.
    for url in [
        "/api/v1/resources/102%2F000001/rows?sort=fddbr",
        "/api/v1/resources/102%2F000001/rows?sort=-法定代表人",
        "/api/v1/resources/102%2F000001/export?format=csv&sort=fddbr",
    ] {
        let body = assert_error(wjw.get(app.url(url)).send().await.unwrap(), 400, "validation_failed").await;
        assert_eq!(body["error"]["details"]["fields"][0]["code"], "masked_item", "{url}: {body}");
    }
    let r = wjw
        .post(app.url("/api/3/action/datastore_search"))
        .json(&json!({"resource_id": "102/000001", "sort": "fddbr desc"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 409, "CKAN validation error");
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["success"], false);
    // The public too (the item is masked for them as well), and unmasked items still sort.
    let anon = new_client();
    assert_eq!(anon.get(app.url("/api/v1/resources/102%2F000001/rows?sort=fddbr")).send().await.unwrap().status(), 400);
    let v = get(&wjw, &app.url("/api/v1/resources/102%2F000001/rows?sort=-zczb&limit=5")).await;
    assert_eq!(v["rows"].as_array().unwrap().len(), 5);
}

/// The provider shortens the history window to 0 days: older versions and the change feed
/// are gone for everyone else, and the versions list shows only the current one.
#[tokio::test]
async fn history_reaches_back_no_further_than_the_window() {
    let app = spawn_app().await;
    let scj = app.login("scjgj-steward").await;
    let (header, lines) = listing(Register::Enterprise, 40, 13);
    upload(&app, &scj, "102/000001", "append", csv(&header, &lines[..20])).await; // version 0
    upload(&app, &scj, "102/000001", "append", csv(&header, &lines[20..])).await; // version 1
    let wjw = app.login("wjw-analyst").await;
    // Within the default 30-day window: readable.
    let v = get(&wjw, &app.url("/api/v1/resources/102%2F000001/rows?version=0&limit=100")).await;
    assert_eq!(v["rows"].as_array().unwrap().len(), 20);
    let r =
        scj.patch(app.url("/api/v1/resources/102%2F000001")).json(&json!({"history_days": 0})).send().await.unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    for url in [
        "/api/v1/resources/102%2F000001/rows?version=0",
        "/api/v1/resources/102%2F000001/export?format=csv&version=0",
        "/api/v1/resources/102%2F000001/aggregate?group_by=qx&version=0",
        "/api/v1/resources/102%2F000001/changes?since_version=0",
    ] {
        assert_error(wjw.get(app.url(url)).send().await.unwrap(), 410, "outside_history_window").await;
        assert_error(new_client().get(app.url(url)).send().await.unwrap(), 410, "outside_history_window").await;
    }
    let versions = get(&wjw, &app.url("/api/v1/resources/102%2F000001/versions")).await;
    assert_eq!(versions.as_array().map(Vec::len), Some(1), "{versions}");
    // The current version is always readable; the provider keeps its whole history.
    let v = get(&wjw, &app.url("/api/v1/resources/102%2F000001/rows?version=1&limit=100")).await;
    assert_eq!(v["rows"].as_array().unwrap().len(), 40);
    let v = get(&scj, &app.url("/api/v1/resources/102%2F000001/rows?version=0&limit=100")).await;
    assert_eq!(v["rows"].as_array().unwrap().len(), 20);
    // Out-of-range windows are refused by name.
    let r = scj
        .patch(app.url("/api/v1/resources/102%2F000001"))
        .json(&json!({"history_days": 99999}))
        .send()
        .await
        .unwrap();
    let body = assert_error(r, 400, "validation_failed").await;
    assert_eq!(body["error"]["details"]["fields"][0]["field"], "history_days");
}

/// Grants never exceed the resource's current policy; only the provider grants; one active
/// grant per grantee; unconditional access never shrinks.
#[tokio::test]
async fn grants_are_bounded_by_the_current_policy() {
    let app = spawn_app().await;
    let gaj = app.login("gaj-steward").await;
    let (header, lines) = listing(Register::Population, 60, 14);
    upload(&app, &gaj, "101/000001", "append", csv(&header, &lines)).await;
    let g1: Value = grant(
        &app,
        &gaj,
        json!({"resource_id": "101/000001", "grantee": {"department": "wjw"}, "fields": ["性别", "区县", "民族"],
               "purpose": "统计", "expires_at": "2099-01-01T00:00:00Z"}),
    )
    .await
    .json()
    .await
    .unwrap();
    let wjw = app.login("wjw-analyst").await;
    let rows = app.url("/api/v1/resources/101%2F000001/rows?limit=5");
    get(&wjw, &rows).await;

    // A platform admin does not decide whom a department shares with.
    let admin = app.login("admin").await;
    let r = grant(
        &app,
        &admin,
        json!({"resource_id": "101/000001", "grantee": {"department": "wjw"}, "purpose": "x",
               "expires_at": "2099-01-01T00:00:00Z"}),
    )
    .await;
    assert_eq!(r.status(), 403);

    // A second grant supersedes the first: one active grant per grantee.
    let g2: Value = grant(
        &app,
        &gaj,
        json!({"resource_id": "101/000001", "grantee": {"department": "wjw"}, "fields": ["性别"],
               "purpose": "统计", "expires_at": "2099-01-01T00:00:00Z"}),
    )
    .await
    .json()
    .await
    .unwrap();
    let listed = get(&gaj, &app.url("/api/v1/grants")).await;
    let active: Vec<&Value> = listed
        .as_array()
        .unwrap()
        .iter()
        .filter(|g| g["grantee"]["department"] == "wjw" && g["revoked_at"].is_null())
        .collect();
    assert_eq!(active.len(), 1, "{listed}");
    assert_eq!(active[0]["id"], g2["id"]);
    let old = listed.as_array().unwrap().iter().find(|g| g["id"] == g1["id"]).unwrap();
    assert_eq!(old["revoked_by"], "superseded");
    let v = get(&wjw, &rows).await;
    assert_eq!(v["fields"].as_array().unwrap().len(), 1);

    // The provider stops sharing: the grantee is cut off at the next read and told why.
    let r = gaj
        .patch(app.url("/api/v1/resources/101%2F000001"))
        .json(&json!({"share": {"type": "none"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    assert_error(wjw.get(&rows).send().await.unwrap(), 403, "not_shared").await;
    let inbox = get(&wjw, &app.url("/api/v1/inbox")).await;
    assert!(inbox.to_string().contains("grant.narrowed"), "{inbox}");

    // Requests on an unconditional resource never shrink what the department already had.
    let scj = app.login("scjgj-steward").await;
    let (eh, el) = listing(Register::Enterprise, 20, 15);
    upload(&app, &scj, "102/000001", "append", csv(&eh, &el)).await;
    let all = get(&wjw, &app.url("/api/v1/resources/102%2F000001/rows?limit=1")).await;
    let n_all = all["fields"].as_array().unwrap().len();
    let r = grant(
        &app,
        &scj,
        json!({"resource_id": "102/000001", "grantee": {"department": "wjw"}, "fields": ["企业名称", "法定代表人"],
               "row_filter": "区县 = '海陵区'", "masks": {"法定代表人": "none"}, "purpose": "x",
               "expires_at": "2099-01-01T00:00:00Z"}),
    )
    .await;
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
    let after = get(&wjw, &app.url("/api/v1/resources/102%2F000001/rows?limit=100")).await;
    assert_eq!(after["fields"].as_array().unwrap().len(), n_all);
    assert_eq!(after["rows"].as_array().unwrap().len(), 20, "the grant's filter does not shrink it");
    let lifted = after["fields"].as_array().unwrap().iter().find(|f| f["name"] == "fddbr").unwrap();
    assert!(lifted["mask"].is_null(), "the grant lifted the default mask: {lifted}");
}

/// A grant whose row filter names an item the provider removed fails closed.
#[tokio::test]
async fn a_grant_that_no_longer_fits_gives_nothing() {
    let app = spawn_app().await;
    let gaj = app.login("gaj-steward").await;
    let (header, lines) = listing(Register::Population, 30, 16);
    upload(&app, &gaj, "101/000001", "append", csv(&header, &lines)).await;
    let r = grant(
        &app,
        &gaj,
        json!({"resource_id": "101/000001", "grantee": {"department": "wjw"}, "fields": ["性别", "区县"],
               "row_filter": "婚姻状况 = '已婚'", "purpose": "统计", "expires_at": "2099-01-01T00:00:00Z"}),
    )
    .await;
    assert_eq!(r.status(), 201);
    let wjw = app.login("wjw-analyst").await;
    let rows = app.url("/api/v1/resources/101%2F000001/rows");
    get(&wjw, &rows).await;
    // Drop 婚姻状况 from the items: the grant's filter no longer parses.
    let res = get(&gaj, &app.url("/api/v1/resources/101%2F000001")).await;
    let items: Vec<Value> = res["items"].as_array().unwrap().iter().filter(|i| i["name"] != "hyzk").cloned().collect();
    let r = gaj.patch(app.url("/api/v1/resources/101%2F000001")).json(&json!({"items": items})).send().await.unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    assert_error(wjw.get(&rows).send().await.unwrap(), 403, "grant_invalid").await;
}

/// A public applicant's grant cannot unmask what the open rules mask.
#[tokio::test]
async fn a_public_grant_cannot_unmask() {
    let app = spawn_app().await;
    let gaj = app.login("gaj-steward").await;
    let r = gaj
        .post(app.url("/api/v1/resources"))
        .json(&json!({
            "name": "志愿者登记", "abstract": "志愿者", "provider": "gaj",
            "classification": {"class": "thematic", "theme": "environment"}, "format": {"category": "database"},
            "items": [
                {"name": "xm", "title": "姓名", "sensitivity": "personal"},
                {"name": "sjh", "title": "手机号", "validator": "mobile", "sensitivity": "personal"},
                {"name": "qx", "title": "区县"}
            ],
            "share": {"type": "unconditional"}, "open": {"type": "conditional", "conditions": "申请"},
            "update_cycle": "monthly"
        }))
        .send()
        .await
        .unwrap();
    let status = r.status();
    let created: Value = r.json().await.unwrap();
    assert_eq!(status, 201, "{created}");
    let code = created["code"].as_str().unwrap().to_string();
    assert_eq!(
        gaj.post(app.url(&format!("/api/v1/resources/{}/publish", code.replace('/', "%2F"))))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let c = new_client();
    let r = c
        .post(app.url("/api/v1/auth/register"))
        .json(&json!({"email": "citizen@example.cn", "password": "Citizen#2026pass"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let registered: Value = r.json().await.unwrap();
    let user = registered["id"].as_str().or(registered["user"]["id"].as_str()).unwrap().to_string();
    let body = assert_error(
        grant(
            &app,
            &gaj,
            json!({"resource_id": code, "grantee": {"user": user}, "masks": {"姓名": "none", "手机号": "keep(7,0)"},
                   "purpose": "研究", "expires_at": "2099-01-01T00:00:00Z"}),
        )
        .await,
        400,
        "validation_failed",
    )
    .await;
    let fields: BTreeSet<&str> =
        body["error"]["details"]["fields"].as_array().unwrap().iter().map(|d| d["field"].as_str().unwrap()).collect();
    assert_eq!(fields, BTreeSet::from(["masks.xm", "masks.sjh"]), "{body}");
}

/// Paging with `next_cursor` returns every row exactly once, as the provider (ordered by the
/// key) and as a grantee who sees the key masked (a keyed-hash order), even when a commit
/// lands between pages.
#[tokio::test]
async fn paging_returns_every_row_exactly_once() {
    let app = spawn_app().await;
    let gaj = app.login("gaj-steward").await;
    let (header, lines) = listing(Register::Population, 1500, 17);
    upload(&app, &gaj, "101/000001", "append", csv(&header, &lines[..700])).await;
    upload(&app, &gaj, "101/000001", "append", csv(&header, &lines[700..1400])).await;
    let r = grant(
        &app,
        &gaj,
        json!({"resource_id": "101/000001", "grantee": {"department": "wjw"}, "fields": ["身份证号", "姓名", "区县", "民族"],
               "purpose": "同步", "expires_at": "2099-01-01T00:00:00Z"}),
    )
    .await;
    assert_eq!(r.status(), 201);
    let wjw = app.login("wjw-analyst").await;
    for (who, name) in [(&gaj, "provider"), (&wjw, "grantee")] {
        let whole = get(who, &app.url("/api/v1/resources/101%2F000001/rows?limit=32000")).await;
        let expected: Vec<String> = whole["rows"].as_array().unwrap().iter().map(|r| r.to_string()).collect();
        // The grantee walks after the provider's walk committed the last 100 rows.
        assert_eq!(expected.len(), if name == "provider" { 1400 } else { 1500 });
        let mut seen: Vec<String> = Vec::new();
        let mut url = app.url("/api/v1/resources/101%2F000001/rows?limit=97");
        let mut page = 0;
        loop {
            let v = get(who, &url).await;
            seen.extend(v["rows"].as_array().unwrap().iter().map(|r| r.to_string()));
            page += 1;
            if page == 3 && name == "provider" {
                // A commit between pages: the walk stays on the version it started on.
                upload(&app, &gaj, "101/000001", "append", csv(&header, &lines[1400..])).await;
            }
            match v["next_cursor"].as_str() {
                Some(c) => url = app.url(&format!("/api/v1/resources/101%2F000001/rows?limit=97&cursor={c}")),
                None => break,
            }
        }
        let mut a = expected.clone();
        a.sort();
        let mut b = seen.clone();
        b.sort();
        assert_eq!(b.len(), a.len(), "{name}: rows returned");
        assert_eq!(b, a, "{name}: every row once");
        // The same order on every walk.
        assert_eq!(seen, expected, "{name}: stable order");
    }
    // CKAN offsets walk the same stable order.
    let mut seen = BTreeSet::new();
    let mut n = 0;
    for offset in (0..1500).step_by(250) {
        let v: Value = gaj
            .post(app.url("/api/3/action/datastore_search"))
            .json(&json!({"resource_id": "101/000001", "limit": 250, "offset": offset, "fields": ["sfzh"]}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        for r in v["result"]["records"].as_array().unwrap() {
            seen.insert(r["sfzh"].as_str().unwrap().to_string());
            n += 1;
        }
    }
    assert_eq!((n, seen.len()), (1500, 1500));
    // A forged cursor is refused by name.
    assert_error(
        gaj.get(app.url("/api/v1/resources/101%2F000001/rows?cursor=%%%")).send().await.unwrap(),
        400,
        "validation_failed",
    )
    .await;
}

/// A grantee syncing through the change feed under a row filter: rows an update moves out of
/// the filter arrive as deletes, rows it moves in as inserts, so the synced copy equals `rows`.
#[tokio::test]
async fn the_change_feed_follows_rows_across_the_row_filter() {
    let app = spawn_app().await;
    let gaj = app.login("gaj-steward").await;
    let (header, lines) = listing(Register::Population, 80, 18);
    upload(&app, &gaj, "101/000001", "append", csv(&header, &lines)).await; // version 0
    let r = grant(
        &app,
        &gaj,
        json!({"resource_id": "101/000001", "grantee": {"department": "wjw"}, "fields": ["姓名", "区县"],
               "row_filter": "区县 = '海陵区'", "masks": {"姓名": "none"}, "purpose": "同步",
               "expires_at": "2099-01-01T00:00:00Z"}),
    )
    .await;
    assert_eq!(r.status(), 201);
    let wjw = app.login("wjw-analyst").await;
    let snapshot =
        |v: &Value| -> BTreeSet<String> { v["rows"].as_array().unwrap().iter().map(|r| r["xm"].to_string()).collect() };
    let before = get(&wjw, &app.url("/api/v1/resources/101%2F000001/rows?limit=1000")).await;
    let mut copy = snapshot(&before);
    // Move two rows out of 海陵区 and two in, renaming them so they are recognizable.
    let qx = col(&header, "区县");
    let xm = col(&header, "姓名");
    let mut moved = Vec::new();
    let (mut out, mut inn) = (0, 0);
    for l in &lines {
        let mut cols: Vec<String> = l.split(',').map(str::to_string).collect();
        if cols[qx] == "海陵区" && out < 2 {
            cols[qx] = "高港区".into();
            cols[xm] = format!("迁出{out}");
            out += 1;
        } else if cols[qx] != "海陵区" && inn < 2 {
            cols[qx] = "海陵区".into();
            cols[xm] = format!("迁入{inn}");
            inn += 1;
        } else {
            continue;
        }
        moved.push(cols.join(","));
    }
    upload(&app, &gaj, "101/000001", "upsert", csv(&header, &moved)).await; // version 1
    let v = get(&wjw, &app.url("/api/v1/resources/101%2F000001/changes?since_version=0")).await;
    let names = |k: &str| -> Vec<String> { v[k].as_array().unwrap().iter().map(|r| r["xm"].to_string()).collect() };
    assert_eq!(names("deleted").len(), 2, "{v}");
    assert_eq!(names("inserted").len(), 2, "{v}");
    assert!(names("inserted").iter().all(|n| n.contains("迁入")), "{v}");
    assert!(v.to_string().find("迁出").is_none(), "the new values outside the filter never show: {v}");
    for d in names("deleted") {
        copy.remove(&d);
    }
    for i in names("inserted").into_iter().chain(names("updated")) {
        copy.insert(i);
    }
    let after = get(&wjw, &app.url("/api/v1/resources/101%2F000001/rows?limit=1000")).await;
    assert_eq!(copy, snapshot(&after));
}

/// SQL that would take the server's memory is refused cleanly; nested input is refused
/// instead of overflowing the stack; the server stays up.
#[tokio::test]
async fn sql_runs_under_a_memory_pool_and_nesting_limits() {
    let app = spawn_app_with(SpawnOptions { sql_memory_mib: Some(16), ..SpawnOptions::default() }).await;
    let gaj = app.login("gaj-steward").await;
    let (header, lines) = listing(Register::Population, 2000, 19);
    upload(&app, &gaj, "101/000001", "append", csv(&header, &lines)).await;
    let sql = |q: String| {
        let gaj = gaj.clone();
        let url = app.url("/api/v1/sql");
        async move { gaj.post(url).json(&json!({"sql": q})).send().await.unwrap() }
    };
    let bomb =
        r#"SELECT a.*, b.xm AS x2, b.hjdz AS d2 FROM "101/000001" a CROSS JOIN "101/000001" b ORDER BY x2, d2, a.hjdz"#;
    assert_error(sql(bomb.to_string()).await, 400, "sql_memory_exceeded").await;
    // Deeply nested expressions and long operator chains.
    let nested = format!("SELECT {}1{} AS x", "(".repeat(5000), ")".repeat(5000));
    assert_error(sql(nested).await, 400, "sql_too_complex").await;
    let chain = format!("SELECT 1{} AS x", "+1".repeat(9000));
    assert_error(sql(chain).await, 400, "sql_too_complex").await;
    let chain = format!("SELECT count(*) AS n FROM \"101/000001\" WHERE {}", vec!["xm = 'a'"; 1500].join(" OR "));
    assert_error(sql(chain).await, 400, "sql_too_complex").await;
    assert_eq!(new_client().get(app.url("/healthz")).send().await.unwrap().status(), 200);
    // An ordinary statement still runs, and it is audited whole.
    let long_tail = format!("SELECT count(*) AS n FROM \"101/000001\" WHERE xm <> '{}'", "长".repeat(3000));
    let r = sql(long_tail.clone()).await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let admin = app.login("admin").await;
    let audit = get(&admin, &app.url("/api/v1/audit?action=data.sql&limit=5")).await;
    assert!(audit.to_string().contains(&"长".repeat(3000)), "the whole statement is in the audit log");
}

/// A statement's WHERE never runs on rows outside the grant: a predicate that fails on
/// out-of-scope rows (division by zero) would otherwise answer one bit per statement.
#[tokio::test]
async fn sql_predicates_see_only_the_governed_rows() {
    let app = spawn_app().await;
    let gaj = app.login("gaj-steward").await;
    let (header, lines) = listing(Register::Population, 400, 22);
    upload(&app, &gaj, "101/000001", "append", csv(&header, &lines)).await;
    let r = grant(
        &app,
        &gaj,
        json!({"resource_id": "101/000001", "grantee": {"department": "wjw"}, "fields": ["区县", "民族"],
               "row_filter": "区县 <> '海陵区'", "purpose": "统计", "expires_at": "2099-01-01T00:00:00Z"}),
    )
    .await;
    assert_eq!(r.status(), 201);
    // Most rows are inside, so the engine would evaluate the statement's predicate on whole
    // batches, the excluded 海陵区 rows among them.
    let inside = lines.iter().filter(|l| l.split(',').nth(col(&header, "区县")).unwrap() != "海陵区").count();
    assert!(inside > 0 && inside < 400);
    let wjw = app.login("wjw-analyst").await;
    let oracle = r#"SELECT count(*) AS n FROM "101/000001" WHERE 1 / (CASE WHEN qx = '海陵区' THEN 0 ELSE 1 END) = 1"#;
    let r = wjw.post(app.url("/api/v1/sql")).json(&json!({"sql": oracle})).send().await.unwrap();
    let status = r.status();
    let v: Value = r.json().await.unwrap();
    assert_eq!(status, 200, "the predicate ran on rows outside the grant: {v}");
    assert_eq!(v["rows"][0]["n"], inside as u64, "{v}");
}

/// A grant issued while a resource was shared unconditionally (the platform approves such
/// requests itself) ends when the provider makes the resource conditional: it must not turn
/// into a whole scope nobody reviewed.
#[tokio::test]
async fn grants_issued_under_unconditional_sharing_end_when_it_becomes_conditional() {
    let app = spawn_app().await;
    let scj = app.login("scjgj-steward").await;
    let (header, lines) = listing(Register::Enterprise, 30, 23);
    upload(&app, &scj, "102/000001", "append", csv(&header, &lines)).await;
    let wjw = app.login("wjw-analyst").await;
    let v: Value = wjw
        .post(app.url("/api/v1/requests"))
        .json(&json!({"resource_id": "102/000001", "purpose": "营商环境分析", "basis": "职责", "period_days": 3650}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["state"], "approved", "{v}");
    let rows = app.url("/api/v1/resources/102%2F000001/rows");
    get(&wjw, &rows).await;
    let r = scj
        .patch(app.url("/api/v1/resources/102%2F000001"))
        .json(&json!({"share": {"type": "conditional", "conditions": "须说明用途"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    assert_error(wjw.get(&rows).send().await.unwrap(), 403, "grant_revoked").await;
    let inbox = get(&wjw, &app.url("/api/v1/inbox")).await;
    assert!(inbox.to_string().contains("grant.revoked"), "{inbox}");
}

/// Reads in key order keep the table's scan per version and projection (`lake::key_order`),
/// shared by every caller. The attacker holds a grant limited to 海陵区 whose items are the
/// owner's page's exactly (so both plan over the same kept scan) and looks up keys after the
/// owner looked them up: a key outside the district gives nothing, inside it gives its row, a
/// page gives only the district, and the owner still sees everything afterwards.
#[tokio::test]
async fn a_kept_scan_carries_no_callers_filter_to_the_next() {
    let app = spawn_app().await;
    let gaj = app.login("gaj-steward").await;
    let (header, lines) = listing(Register::Population, 120, 31);
    upload(&app, &gaj, "101/000001", "append", csv(&header, &lines)).await;
    let (id, qx) = (col(&header, "身份证号"), col(&header, "区县"));
    let field = |l: &String, i: usize| l.split(',').nth(i).unwrap().to_string();
    let inside: Vec<String> = lines.iter().filter(|l| field(l, qx) == "海陵区").map(|l| field(l, id)).collect();
    let outside: Vec<String> = lines.iter().filter(|l| field(l, qx) != "海陵区").map(|l| field(l, id)).collect();
    assert!(inside.len() >= 3 && outside.len() >= 3);
    let r = grant(
        &app,
        &gaj,
        json!({"resource_id": "101/000001", "grantee": {"department": "wjw"}, "fields": ["身份证号", "区县"],
               "row_filter": "区县 = '海陵区'", "masks": {"身份证号": "none"}, "purpose": "核验",
               "expires_at": "2099-01-01T00:00:00Z"}),
    )
    .await;
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
    let wjw = app.login("wjw-analyst").await;
    let lookup = |key: &str| {
        let filter = format!("身份证号 = '{key}'");
        let params = [("fields", "身份证号,区县"), ("limit", "5"), ("filter", filter.as_str())];
        reqwest::Url::parse_with_params(&app.url("/api/v1/resources/101%2F000001/rows"), &params).unwrap().to_string()
    };
    let ids = |v: &Value| -> Vec<String> {
        v["rows"].as_array().unwrap().iter().map(|r| r["sfzh"].as_str().unwrap().to_string()).collect()
    };
    for key in outside.iter().take(3).chain(inside.iter().take(3)) {
        assert_eq!(ids(&get(&gaj, &lookup(key)).await), std::slice::from_ref(key), "the owner finds {key}");
    }
    for key in outside.iter().take(3) {
        assert!(ids(&get(&wjw, &lookup(key)).await).is_empty(), "{key} is outside the grant's rows");
    }
    for key in inside.iter().take(3) {
        assert_eq!(ids(&get(&wjw, &lookup(key)).await), std::slice::from_ref(key));
    }
    let page = get(&wjw, &app.url("/api/v1/resources/101%2F000001/rows?fields=身份证号,区县&limit=1000")).await;
    assert_eq!(page["rows"].as_array().unwrap().len(), inside.len());
    assert!(page["rows"].as_array().unwrap().iter().all(|r| r["qx"] == "海陵区"), "{page}");
    for key in outside.iter().take(3) {
        assert_eq!(ids(&get(&gaj, &lookup(key)).await), std::slice::from_ref(key), "the owner still finds {key}");
    }
    let all = get(&gaj, &app.url("/api/v1/resources/101%2F000001/rows?fields=身份证号,区县&limit=1000")).await;
    assert_eq!(all["rows"].as_array().unwrap().len(), lines.len());
}

/// Counts by one text item are taken from the data files when the read sees every row and
/// the item as stored (the owner's). A grantee whose grant filters the rows, or masks the
/// item, must not be answered from the files: its counts are those of its own rows and show
/// only the masked values, whoever counted before it.
#[tokio::test]
async fn counts_from_the_files_are_only_for_reads_that_see_every_row() {
    let app = spawn_app().await;
    let gaj = app.login("gaj-steward").await;
    let (header, lines) = listing(Register::Population, 150, 47);
    upload(&app, &gaj, "101/000001", "append", csv(&header, &lines)).await;
    let qx = col(&header, "区县");
    let districts: Vec<String> = lines.iter().map(|l| l.split(',').nth(qx).unwrap().to_string()).collect();
    let inside = districts.iter().filter(|d| *d == "海陵区").count();
    assert!(inside >= 3 && inside < lines.len());
    let counts = |v: &Value| -> std::collections::BTreeMap<String, u64> {
        v["rows"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| (r["qx"].as_str().unwrap().to_string(), r["count"].as_u64().unwrap()))
            .collect()
    };
    let url = app.url("/api/v1/resources/101%2F000001/aggregate?group_by=区县");
    let mut expected = std::collections::BTreeMap::new();
    for d in &districts {
        *expected.entry(d.clone()).or_insert(0u64) += 1;
    }
    assert_eq!(counts(&get(&gaj, &url).await), expected, "the owner counts every row");

    let r = grant(
        &app,
        &gaj,
        json!({"resource_id": "101/000001", "grantee": {"department": "wjw"}, "fields": ["区县", "性别"],
               "row_filter": "区县 = '海陵区'", "purpose": "统计", "expires_at": "2099-01-01T00:00:00Z"}),
    )
    .await;
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
    let wjw = app.login("wjw-analyst").await;
    let seen = counts(&get(&wjw, &url).await);
    assert_eq!(
        seen,
        std::collections::BTreeMap::from([("海陵区".to_string(), inside as u64)]),
        "only the grant's rows"
    );
    let by_sex = get(&wjw, &app.url("/api/v1/resources/101%2F000001/aggregate?group_by=性别")).await;
    let total: u64 = by_sex["rows"].as_array().unwrap().iter().map(|r| r["count"].as_u64().unwrap()).sum();
    assert_eq!(total, inside as u64, "{by_sex}");

    let r = grant(
        &app,
        &gaj,
        json!({"resource_id": "101/000001", "grantee": {"department": "scjgj"}, "fields": ["区县"],
               "masks": {"区县": "pseudonym"}, "purpose": "统计", "expires_at": "2099-01-01T00:00:00Z"}),
    )
    .await;
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
    let scjgj = app.login("scjgj-steward").await;
    let masked = counts(&get(&scjgj, &url).await);
    assert_eq!(masked.values().sum::<u64>(), lines.len() as u64, "{masked:?}");
    assert!(masked.keys().all(|k| !expected.contains_key(k)), "raw districts shown: {masked:?}");
    let mut sizes: Vec<u64> = masked.values().copied().collect();
    let mut want: Vec<u64> = expected.values().copied().collect();
    sizes.sort_unstable();
    want.sort_unstable();
    assert_eq!(sizes, want, "one pseudonym per district");
    assert_eq!(counts(&get(&gaj, &url).await), expected, "the owner still counts every row");
}
