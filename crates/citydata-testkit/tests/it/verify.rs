//! 核验 (verification grants, issue #23): "does this match?" answered without handing over
//! data. The first test is the Done-when: 卫健委's analyst checks 1,000 (ID, name)
//! pairs against the demo population register and the match statistics equal the truth the
//! provider reads from its own table. The others play the attacker: reading rows with a
//! verification grant, submitting items the grant does not cover, another department's
//! grant, batches over the limit, enumerating sequential ID numbers, exhausting the quota,
//! renewing the grant into rows — and look for table values in every answer, error and
//! audit entry.

use citydata_domain::identifiers::{IdNumber, id_check_char};
use citydata_testkit::{SpawnOptions, TestApp, assert_error, new_client, spawn_app_with};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};

use crate::support::audit_entries;

const POP: &str = "101%2F000001";

async fn app_with_population(rows: u64) -> TestApp {
    spawn_app_with(SpawnOptions { demo_rows: rows, ..Default::default() }).await
}

/// Every stored row of the population table as the provider reads it: 身份证号 → row.
async fn register(app: &TestApp) -> BTreeMap<String, Value> {
    let gaj = app.login("gaj-steward").await;
    let v: Value = gaj
        .get(app.url(&format!("/api/v1/resources/{POP}/rows?limit=32000")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    v["rows"].as_array().unwrap().iter().map(|r| (r["sfzh"].as_str().unwrap().to_string(), r.clone())).collect()
}

async fn verify_grant(app: &TestApp, body: Value) -> Value {
    let gaj = app.login("gaj-steward").await;
    let r = gaj.post(app.url("/api/v1/grants")).json(&body).send().await.unwrap();
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
    r.json().await.unwrap()
}

fn standard_grant(extra: Value) -> Value {
    let mut g = json!({"resource_id": "101/000001", "grantee": {"department": "wjw"}, "kind": "verify",
        "fields": ["身份证号", "姓名", "出生日期"], "purpose": "医保结算人证核验", "expires_at": "2099-01-01T00:00:00Z"});
    for (k, v) in extra.as_object().unwrap() {
        g[k] = v.clone();
    }
    g
}

async fn post_verify(app: &TestApp, who: &reqwest::Client, body: Value) -> reqwest::Response {
    who.post(app.url(&format!("/api/v1/resources/{POP}/verify"))).json(&body).send().await.unwrap()
}

/// A valid ID number no generated row has: born after 2010 (the register's births end in
/// 2009), one per day so that no two are neighbours.
fn unknown_id(j: i64) -> String {
    let day = chrono::NaiveDate::from_ymd_opt(2012, 1, 1).unwrap() + chrono::Duration::days(j * 3);
    let first17 = format!("321203{}{:03}", day.format("%Y%m%d"), j % 500);
    format!("{first17}{}", id_check_char(&first17).unwrap())
}

fn flip_check(id: &str) -> String {
    let mut s = id.to_string();
    let c = s.pop().unwrap();
    s.push(if c == '0' { '1' } else { '0' });
    s
}

/// No value of the table (an ID number or a name of a row) appears in `text`.
fn assert_no_table_values(text: &str, rows: &BTreeMap<String, Value>, what: &str) {
    for (id, row) in rows {
        assert!(!text.contains(id.as_str()), "{what} carries the ID number of a row");
        let name = row["xm"].as_str().unwrap();
        assert!(!text.contains(&format!("\"{name}\"")), "{what} carries the name {name} of a row");
    }
}

#[tokio::test]
async fn a_thousand_pairs_match_the_truth_of_the_register_and_nothing_leaks() {
    let app = app_with_population(1_500).await;
    let rows = register(&app).await;
    assert!(rows.len() >= 1_400, "the demo seeded the register: {}", rows.len());
    let grant = verify_grant(&app, standard_grant(json!({}))).await;
    assert_eq!(grant["verify"]["max_batch"], 1000, "{grant}");
    assert_eq!(grant["verify"]["daily_quota"], 10000);
    // 600 true pairs, 200 with a wrong name, 150 unknown IDs, 50 malformed IDs.
    let stored: Vec<(&String, &Value)> = rows.iter().filter(|(id, _)| IdNumber::parse(id).is_ok()).take(800).collect();
    assert_eq!(stored.len(), 800);
    let mut records = Vec::new();
    let mut expected = Vec::new();
    for (i, (id, row)) in stored.iter().enumerate() {
        let name = row["xm"].as_str().unwrap();
        if i < 600 {
            records.push(json!({"身份证号": id, "姓名": name}));
            expected.push("match");
        } else {
            // Another row's name, or the name with one character more.
            let other = stored[(i + 1) % stored.len()].1["xm"].as_str().unwrap();
            let wrong = if other != name { other.to_string() } else { format!("{name}华") };
            records.push(json!({"身份证号": id, "姓名": wrong}));
            expected.push("no_match");
        }
    }
    for j in 0..150 {
        records.push(json!({"身份证号": unknown_id(j), "姓名": "王某"}));
        expected.push("not_found");
    }
    for j in 150..200 {
        records.push(json!({"身份证号": flip_check(&unknown_id(j)), "姓名": "李某"}));
        expected.push("invalid");
    }
    let wjw = app.login("wjw-analyst").await;
    let r = post_verify(&app, &wjw, json!({"records": records, "compare": ["姓名"]})).await;
    assert_eq!(r.status(), 200);
    let text = r.text().await.unwrap();
    let v: Value = serde_json::from_str(&text).unwrap();
    let results = v["results"].as_array().unwrap();
    assert_eq!(results.len(), 1000);
    let mut got: BTreeMap<&str, usize> = BTreeMap::new();
    for (i, (res, want)) in results.iter().zip(&expected).enumerate() {
        assert_eq!(res["status"], *want, "record {i}: {res}");
        *got.entry(res["status"].as_str().unwrap()).or_default() += 1;
        match *want {
            "match" => assert_eq!(res["fields"], json!({"姓名": "match"})),
            "no_match" => assert_eq!(res["fields"], json!({"姓名": "mismatch"})),
            _ => assert_eq!(res["fields"], json!({})),
        }
    }
    let truth: BTreeMap<&str, usize> = [("match", 600), ("no_match", 200), ("not_found", 150), ("invalid", 50)].into();
    assert_eq!(got, truth);
    assert_eq!(v["quota_left"], 9000);
    // The answer names statuses only: no row's ID number or name, not even of matched rows.
    assert_no_table_values(&text, &rows, "the answer");
    // The audit entry: counts, outcomes and keyed hashes of the keys — no value at all.
    let entries = audit_entries(&app, "data.verify").await;
    assert_eq!(entries.len(), 1);
    let e = &entries[0];
    let entry_text = e.to_string();
    assert_no_table_values(&entry_text, &rows, "the audit entry");
    for rec in &records[950..] {
        assert!(!entry_text.contains(rec["身份证号"].as_str().unwrap()), "a submitted ID in the audit entry");
    }
    assert!(!entry_text.contains("王某") && !entry_text.contains("李某"), "a submitted name in the audit entry");
    let d = &e["details"];
    assert_eq!(d["records"], 1000, "{d}");
    assert_eq!(d["outcomes"], json!({"match": 600, "no_match": 200, "not_found": 150, "invalid": 50}));
    let keys = d["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 1000);
    // The same person checked twice hashes the same (the provider can review who checked whom).
    let distinct: BTreeSet<&str> = keys.iter().map(|k| k.as_str().unwrap()).collect();
    assert_eq!(distinct.len(), 1000);
    // Comparing another item names it per record, never its value.
    let (id, row) = stored[0];
    let birth = row["csrq"].as_str().unwrap();
    let r = post_verify(
        &app,
        &wjw,
        json!({"records": [{"身份证号": id, "姓名": row["xm"], "出生日期": "1900-01-01"},
                           {"sfzh": id.to_lowercase(), "xm": row["xm"], "csrq": birth.replace('-', "/")}],
               "compare": ["姓名", "出生日期"]}),
    )
    .await;
    let v: Value = r.json().await.unwrap();
    assert_eq!(
        v["results"][0],
        json!({"status": "no_match", "fields": {"姓名": "match", "出生日期": "mismatch"}}),
        "{v}"
    );
    assert_eq!(v["results"][1], json!({"status": "match", "fields": {"姓名": "match", "出生日期": "match"}}), "{v}");
}

#[tokio::test]
async fn a_verification_grant_reads_no_rows_on_any_path() {
    let app = app_with_population(300).await;
    verify_grant(&app, standard_grant(json!({}))).await;
    let wjw = app.login("wjw-analyst").await;
    for path in [
        format!("/api/v1/resources/{POP}/rows?limit=5"),
        format!("/api/v1/resources/{POP}/rows?filter=sfzh%20%3D%20'110105194912310029'"),
        format!("/api/v1/resources/{POP}/export?format=csv"),
        format!("/api/v1/resources/{POP}/aggregate?group_by=区县"),
        format!("/api/v1/resources/{POP}/changes?since_version=0"),
    ] {
        let r = wjw.get(app.url(&path)).send().await.unwrap();
        assert_eq!(r.status(), 403, "{path}: {}", r.text().await.unwrap());
    }
    let r = wjw
        .post(app.url("/api/v1/sql"))
        .json(&json!({"sql": "SELECT sfzh, xm FROM \"101/000001\" LIMIT 5"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403, "sql: {}", r.text().await.unwrap());
    let r = wjw
        .post(app.url("/api/3/action/datastore_search"))
        .json(&json!({"resource_id": "101/000001", "limit": 5}))
        .send()
        .await
        .unwrap();
    let status = r.status();
    let v: Value = r.json().await.unwrap();
    assert!(status == 403 && v["success"] == false, "CKAN: {status} {v}");
    // A renewal would be approved into a read grant: refused.
    let grants: Value = wjw.get(app.url("/api/v1/grants")).send().await.unwrap().json().await.unwrap();
    let g =
        grants.as_array().unwrap().iter().find(|g| g["verify"].is_object()).expect("the verification grant is listed");
    let r = wjw
        .post(app.url(&format!("/api/v1/grants/{}/renew", g["id"].as_str().unwrap())))
        .json(&json!({"period_days": 30}))
        .send()
        .await
        .unwrap();
    assert_error(r, 409, "conflict").await;
}

#[tokio::test]
async fn attackers_get_answers_only_within_the_grant() {
    let app = app_with_population(300).await;
    let rows = register(&app).await;
    let (id, row) = rows.iter().find(|(id, _)| IdNumber::parse(id).is_ok()).unwrap();
    let name = row["xm"].as_str().unwrap();
    let one = json!({"records": [{"身份证号": id, "姓名": name}]});
    // Before any grant: 403 for the department, 401 for anonymous callers.
    let wjw = app.login("wjw-analyst").await;
    assert_error(post_verify(&app, &wjw, one.clone()).await, 403, "forbidden").await;
    assert_error(post_verify(&app, &new_client(), one.clone()).await, 401, "unauthenticated").await;
    // Only the provider grants; an analyst cannot grant itself.
    let r = wjw.post(app.url("/api/v1/grants")).json(&standard_grant(json!({}))).send().await.unwrap();
    assert_eq!(r.status(), 403);
    // A verification grant must include the key and cannot mask.
    let gaj = app.login("gaj-steward").await;
    let r =
        gaj.post(app.url("/api/v1/grants")).json(&standard_grant(json!({"fields": ["姓名"]}))).send().await.unwrap();
    let e = assert_error(r, 400, "validation_failed").await;
    assert_eq!(e["error"]["details"]["fields"][0]["code"], "missing_key", "{e}");
    let r = gaj.post(app.url("/api/v1/grants")).json(&standard_grant(json!({"kind": "peek"}))).send().await.unwrap();
    assert_error(r, 400, "validation_failed").await;
    verify_grant(&app, standard_grant(json!({"max_batch": 10, "daily_quota": 25}))).await;
    // Another department's grant does not work.
    let scjgj = app.login("scjgj-steward").await;
    assert_error(post_verify(&app, &scjgj, one.clone()).await, 403, "forbidden").await;
    let ok = post_verify(&app, &wjw, one.clone()).await;
    assert_eq!(ok.status(), 200);
    let v: Value = ok.json().await.unwrap();
    assert_eq!(v["results"][0]["status"], "match");
    assert_eq!(v["quota_left"], 24);
    // Items the grant does not cover: 400 naming the item, whether submitted or compared.
    let mobile = row["sjh"].as_str().unwrap_or("13800000000");
    let r = post_verify(&app, &wjw, json!({"records": [{"身份证号": id, "手机号": mobile}]})).await;
    let e = assert_error(r, 400, "validation_failed").await;
    assert_eq!(e["error"]["details"]["fields"][0]["code"], "item_not_allowed");
    assert!(e["error"]["message"].as_str().unwrap().contains("手机号"), "{e}");
    let r = post_verify(&app, &wjw, json!({"records": [{"身份证号": id}], "compare": ["户籍地址"]})).await;
    let e = assert_error(r, 400, "validation_failed").await;
    assert_eq!(e["error"]["details"]["fields"][0]["field"], "compare[0]");
    let r = post_verify(&app, &wjw, json!({"records": [{"姓名": name}]})).await;
    let e = assert_error(r, 400, "validation_failed").await;
    assert_eq!(e["error"]["details"]["fields"][0]["code"], "missing_key");
    // A batch over the grant's limit.
    let eleven: Vec<Value> = (0..11).map(|j| json!({"身份证号": unknown_id(j), "姓名": "王某"})).collect();
    assert_error(post_verify(&app, &wjw, json!({"records": eleven})).await, 413, "payload_too_large").await;
    // Sequential ID numbers (one region and birth date, sequence 001–006): enumeration.
    let sequential: Vec<Value> = (1..=6)
        .map(|s| {
            let first17 = format!("{}{s:03}", &id[..14]);
            json!({"身份证号": format!("{first17}{}", id_check_char(&first17).unwrap()), "姓名": name})
        })
        .collect();
    let r = post_verify(&app, &wjw, json!({"records": sequential})).await;
    let e = assert_error(r, 400, "validation_failed").await;
    assert_eq!(e["error"]["details"]["fields"][0]["code"], "enumeration_suspected", "{e}");
    // One known ID with four candidate names (guessing by elimination): refused whole.
    let guesses: Vec<Value> =
        ["张伟", "王芳", "李娜", "刘洋"].iter().map(|n| json!({"身份证号": id, "姓名": n})).collect();
    let r = post_verify(&app, &wjw, json!({"records": guesses})).await;
    let e = assert_error(r, 400, "validation_failed").await;
    assert_eq!(e["error"]["details"]["fields"][0]["code"], "enumeration_suspected", "{e}");
    // The quota: 25 a day, 1 used; 10 + 10 pass, the next 10 are refused whole with the reset.
    for start in [100, 200] {
        let batch: Vec<Value> =
            (start..start + 10).map(|j| json!({"身份证号": unknown_id(j), "姓名": "王某"})).collect();
        let r = post_verify(&app, &wjw, json!({"records": batch})).await;
        assert_eq!(r.status(), 200);
    }
    let batch: Vec<Value> = (300..310).map(|j| json!({"身份证号": unknown_id(j), "姓名": "王某"})).collect();
    let r = post_verify(&app, &wjw, json!({"records": batch})).await;
    let retry: u64 = r.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!(retry > 0 && retry <= 86_400, "{retry}");
    let e = assert_error(r, 429, "quota_exhausted").await;
    // The quota resets at the next midnight of the city's day (+08:00), not UTC's.
    let resets = chrono::DateTime::parse_from_rfc3339(e["error"]["details"]["resets_at"].as_str().unwrap()).unwrap();
    let local = resets.with_timezone(&chrono::FixedOffset::east_opt(8 * 3600).unwrap());
    assert_eq!(local.format("%H:%M:%S").to_string(), "00:00:00", "{e}");
    let ahead = resets.with_timezone(&chrono::Utc) - chrono::Utc::now();
    assert!(ahead > chrono::Duration::zero() && ahead <= chrono::Duration::hours(24), "{e}");
    // Four records still fit.
    let batch: Vec<Value> = (400..404).map(|j| json!({"身份证号": unknown_id(j), "姓名": "王某"})).collect();
    let v: Value = post_verify(&app, &wjw, json!({"records": batch})).await.json().await.unwrap();
    assert_eq!(v["quota_left"], 0, "{v}");
    // Revoked: nothing more.
    let grants: Value = gaj.get(app.url("/api/v1/grants")).send().await.unwrap().json().await.unwrap();
    let g = grants.as_array().unwrap().iter().find(|g| g["verify"].is_object() && g["state"] == "active").unwrap();
    let r = gaj.post(app.url(&format!("/api/v1/grants/{}/revoke", g["id"].as_str().unwrap()))).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_error(post_verify(&app, &wjw, one.clone()).await, 403, "forbidden").await;
    // No error and no audit entry carried a value of the table.
    let entries = audit_entries(&app, "data.verify").await;
    assert!(entries.len() >= 11, "every verification is audited: {}", entries.len());
    assert_no_table_values(&serde_json::to_string(&entries).unwrap(), &rows, "the audit entries");
    assert!(entries.iter().any(|e| e["outcome"] != "success"), "refusals are audited too");
}

/// A verification grant asked for like any other grant: a request of kind `verify`, pending
/// for the provider even on a 不予共享 resource (a read request there is refused at once),
/// approved into a verification grant that answers and reads nothing.
#[tokio::test]
async fn a_verification_request_is_approved_into_a_verification_grant() {
    let app = app_with_population(200).await;
    let wjw = app.login("wjw-analyst").await;
    let ask = |code: &str, kind: &str, fields: Value| {
        json!({"resource_id": code, "kind": kind, "fields": fields, "purpose": "就诊人员身份核验",
               "basis": "《医疗机构管理条例》", "period_days": 90})
    };
    // 居民身份证电子证照 is not shared: a read request is refused, a verification request waits.
    let r: Value = wjw
        .post(app.url("/api/v1/requests"))
        .json(&ask("105/000002", "read", json!(["身份证号"])))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(r["state"], "rejected", "{r}");
    let r: Value = wjw
        .post(app.url("/api/v1/requests"))
        .json(&ask("105/000002", "verify", json!(["身份证号"])))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(r["state"], "pending", "{r}");
    // The key item is required; an unknown kind is named.
    let r =
        wjw.post(app.url("/api/v1/requests")).json(&ask("101/000001", "verify", json!(["姓名"]))).send().await.unwrap();
    let e = assert_error(r, 400, "validation_failed").await;
    assert_eq!(e["error"]["details"]["fields"][0]["code"], "missing_key", "{e}");
    let r = wjw
        .post(app.url("/api/v1/requests"))
        .json(&ask("101/000001", "copy", json!(["身份证号"])))
        .send()
        .await
        .unwrap();
    assert_error(r, 400, "validation_failed").await;
    let r: Value = wjw
        .post(app.url("/api/v1/requests"))
        .json(&ask("101/000001", "verify", json!(["身份证号", "姓名"])))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(r["state"], "pending", "{r}");
    let gaj = app.login("gaj-steward").await;
    let r = gaj
        .post(app.url(&format!("/api/v1/requests/{}/approve", r["id"].as_str().unwrap())))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let grants: Value = wjw.get(app.url("/api/v1/grants")).send().await.unwrap().json().await.unwrap();
    let g = grants.as_array().unwrap().iter().find(|g| g["state"] == "active").expect("the approved grant");
    assert_eq!(g["verify"]["daily_quota"], 10000, "{g}");
    assert_eq!(g["fields"], json!(["sfzh", "xm"]));
    let r = post_verify(&app, &wjw, json!({"records": [{"身份证号": unknown_id(1), "姓名": "王某"}]})).await;
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["results"][0]["status"], "not_found", "{v}");
    let r = wjw.get(app.url(&format!("/api/v1/resources/{POP}/rows?limit=1"))).send().await.unwrap();
    assert_eq!(r.status(), 403);
}

/// 核验 by hand in the console (zh and en): the analyst's grant is listed, the form names the
/// granted items, one record comes back as words (未找到 / 一致), never a value; a department
/// without the grant is refused the page.
#[tokio::test]
async fn a_member_checks_one_record_by_hand_in_the_console() {
    use crate::plain::raw_codes;
    use crate::support::{csrf_of, get, login_form};
    let app = app_with_population(200).await;
    let rows = register(&app).await;
    let (id, row) = rows.iter().find(|(id, _)| IdNumber::parse(id).is_ok()).unwrap();
    verify_grant(&app, standard_grant(json!({}))).await;
    let wjw = login_form(&app, "wjw-analyst", citydata_testkit::DEMO_PASSWORD).await;
    let (status, list) = get(&wjw, &app, "/console/verify").await;
    assert_eq!(status, 200);
    assert!(list.contains("人口基础信息") && list.contains("身份证号"), "{list}");
    assert!(raw_codes(&list).is_empty(), "{:?}", raw_codes(&list));
    let api = app.login("wjw-analyst").await;
    let v: Value = api.get(app.url(&format!("/api/v1/resources/{POP}"))).send().await.unwrap().json().await.unwrap();
    let slug = v["slug"].as_str().unwrap().to_string();
    let page = format!("/console/verify/{slug}");
    assert!(list.contains(&page.replace('/', "&#x2f;")) || list.contains(&page), "linked: {list}");
    let (status, html) = get(&wjw, &app, &page).await;
    assert_eq!(status, 200);
    assert!(html.contains("name=\"v.sfzh\"") && html.contains("name=\"c.xm\""), "{html}");
    assert!(raw_codes(&html).is_empty(), "{:?}", raw_codes(&html));
    let post = |values: Vec<(&'static str, String)>| {
        let wjw = wjw.clone();
        let app_url = app.url(&page);
        let html = html.clone();
        async move {
            let mut form = vec![("csrf", csrf_of(&html))];
            form.extend(values);
            let r = wjw.post(app_url).form(&form).send().await.unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        }
    };
    let (status, out) = post(vec![("v.sfzh", unknown_id(7)), ("v.xm", "王某".into()), ("c.xm", "on".into())]).await;
    assert_eq!(status, 200, "{out}");
    assert!(out.contains("未找到"), "{out}");
    let name = row["xm"].as_str().unwrap().to_string();
    let (status, out) = post(vec![("v.sfzh", id.clone()), ("v.xm", name.clone()), ("c.xm", "on".into())]).await;
    assert_eq!(status, 200, "{out}");
    assert!(out.contains("<strong>一致</strong>") && out.contains("姓名：一致"), "{out}");
    assert!(raw_codes(&out).is_empty(), "{:?}", raw_codes(&out));
    // The page never shows a stored value the caller did not type (the birth date, the address).
    assert!(!out.contains(row["csrq"].as_str().unwrap()) && !out.contains(row["hjdz"].as_str().unwrap()));
    // A key missing: the form comes back with the reason.
    let (status, out) = post(vec![("v.xm", name.clone())]).await;
    assert_eq!(status, 400, "{out}");
    assert!(out.contains("身份证号"), "{out}");
    // English.
    let (_, en) = get(&wjw, &app, &format!("{page}?lang=en")).await;
    assert!(en.contains("Verification"), "{en}");
    // Another department: no grant, no page.
    let scj = login_form(&app, "scjgj-steward", citydata_testkit::DEMO_PASSWORD).await;
    let (status, _) = get(&scj, &app, &page).await;
    assert_eq!(status, 403);
}

/// The privacy-preserving join recipe (issue #23, 4): 卫健委 links 人口基础信息 (公安局) and
/// 社会保险参保信息 (人社局) on the keyed pseudonym of 身份证号 through SQL — each provider
/// grants the ID number only as `pseudonym` — and counts the insured by district without any
/// raw ID number in any answer.
#[tokio::test]
async fn two_departments_tables_join_on_the_pseudonym_without_a_raw_id() {
    use citydata_core::demo::generate::{Register, generate_listing};
    let app = spawn_app_with(SpawnOptions::default()).await;
    let mut out = Vec::new();
    generate_listing(Register::Population, 300, 0.0, 23, false, &mut out).unwrap();
    let text = String::from_utf8(out).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let header: Vec<&str> = lines[0].split(',').collect();
    let col = |t: &str| header.iter().position(|h| *h == t).unwrap();
    let people: Vec<Vec<&str>> = lines[1..].iter().map(|l| l.split(',').collect()).collect();
    let gaj = app.login("gaj-steward").await;
    let r = gaj.post(app.url(&format!("/api/v1/resources/{POP}/data"))).body(text.clone()).send().await.unwrap();
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
    // 人社局's register: 120 of the same people (every other one of the first 240), insured.
    let mut si = String::from("身份证号,姓名,险种,参保状态\n");
    let mut truth: BTreeMap<String, u64> = BTreeMap::new();
    for p in people.iter().take(240).step_by(2) {
        si.push_str(&format!("{},{},职工基本养老保险,参保缴费\n", p[col("身份证号")], p[col("姓名")]));
        *truth.entry(p[col("区县")].to_string()).or_default() += 1;
    }
    let admin = app.login("admin").await;
    let r = admin
        .post(app.url("/api/v1/users"))
        .json(&json!({"username": "rsj-steward", "display_name": "人社局数据管理员",
                      "password": citydata_testkit::DEMO_PASSWORD,
                      "memberships": [{"department": "rsj", "role": "steward"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
    let rsj = app.login("rsj-steward").await;
    let r = rsj.post(app.url("/api/v1/resources/207%2F000001/data")).body(si).send().await.unwrap();
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
    for (who, code, fields) in
        [(&gaj, "101/000001", json!(["身份证号", "区县"])), (&rsj, "207/000001", json!(["身份证号", "参保状态"]))]
    {
        let r = who
            .post(app.url("/api/v1/grants"))
            .json(&json!({"resource_id": code, "grantee": {"department": "wjw"}, "fields": fields,
                          "masks": {"身份证号": "pseudonym"}, "purpose": "参保与户籍关联分析"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201, "{code}: {}", r.text().await.unwrap());
    }
    let wjw = app.login("wjw-analyst").await;
    let sql = "SELECT p.qx AS district, count(*) AS insured FROM \"101/000001\" p \
               JOIN \"207/000001\" s ON p.sfzh = s.sfzh WHERE s.cbzt = '参保缴费' GROUP BY p.qx ORDER BY p.qx";
    let r = wjw.post(app.url("/api/v1/sql")).json(&json!({"sql": sql})).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let body = r.text().await.unwrap();
    let v: Value = serde_json::from_str(&body).unwrap();
    let got: BTreeMap<String, u64> = v["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["district"].as_str().unwrap().to_string(), r["insured"].as_u64().unwrap()))
        .collect();
    assert_eq!(got, truth);
    // The pseudonyms themselves may be selected; the raw numbers never appear.
    let r = wjw
        .post(app.url("/api/v1/sql"))
        .json(&json!({"sql": "SELECT p.sfzh, s.sfzh AS s2 FROM \"101/000001\" p JOIN \"207/000001\" s ON p.sfzh = s.sfzh"}))
        .send()
        .await
        .unwrap();
    let joined = r.text().await.unwrap();
    let v: Value = serde_json::from_str(&joined).unwrap();
    assert_eq!(v["rows"].as_array().unwrap().len(), 120, "{v}");
    for p in &people {
        let id = p[col("身份证号")];
        assert!(!body.contains(id) && !joined.contains(id), "a raw ID number in a join answer");
    }
}
