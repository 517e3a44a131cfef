//! Data quality over HTTP: rules type-checked and versioned with the resource, the report of
//! every table version with exact counts per rule (the demo register's planted defects and
//! every rule kind), visibility of failing values, and the reference rule's leak check.

use citydata_core::demo::generate::{Register, generate_listing};
use citydata_testkit::{TestApp, assert_error, new_client, spawn_app};
use serde_json::{Value, json};
use std::collections::BTreeMap;

const POP: &str = "101%2F000001";
const ENT: &str = "102%2F000001";

async fn upload(app: &TestApp, c: &reqwest::Client, res: &str, body: impl Into<reqwest::Body>) -> Value {
    let (res, query) = res.split_once('?').map(|(r, q)| (r, format!("?{q}"))).unwrap_or((res, String::new()));
    let r = c.post(app.url(&format!("/api/v1/resources/{res}/data{query}"))).body(body).send().await.unwrap();
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
    r.json().await.unwrap()
}

async fn get(c: &reqwest::Client, app: &TestApp, path: &str) -> (u16, Value) {
    let r = c.get(app.url(path)).send().await.unwrap();
    let s = r.status().as_u16();
    (s, r.json().await.unwrap_or(Value::Null))
}

fn failed(report: &Value, rule: &str) -> Option<u64> {
    report["rules"].as_array().unwrap().iter().find(|r| r["rule"] == rule).and_then(|r| r["failed"].as_u64())
}

#[tokio::test]
async fn the_population_register_reports_exactly_the_planted_defects() {
    let app = spawn_app().await;
    let steward = app.login("gaj-steward").await;
    let mut file = Vec::new();
    let defects = generate_listing(Register::Population, 4000, 0.03, 7, false, &mut file).unwrap();
    let mut want: BTreeMap<&str, u64> = BTreeMap::new();
    for (_, rule) in &defects {
        *want.entry(rule).or_default() += 1;
    }
    assert_eq!(want.len(), 4, "every defect kind planted: {want:?}");
    let ingest = upload(&app, &steward, POP, file).await;
    let (status, q) = get(&steward, &app, &format!("/api/v1/resources/{POP}/quality")).await;
    assert_eq!(status, 200, "{q}");
    assert_eq!(q["version"], ingest["report"]["table_version"]);
    for (rule, n) in &want {
        assert_eq!(failed(&q, rule), Some(*n), "{rule}: {q}");
    }
    assert_eq!(q["rows"], 4000);
    assert_eq!(q["rows_quarantined"].as_u64().unwrap(), defects.len() as u64);
    // The rates follow from the counts: the id_card defects are invalid 身份证号 cells, the
    // sex and birth-date defects inconsistent 性别 and 出生日期 cells.
    let item = |name: &str| q["items"].as_array().unwrap().iter().find(|i| i["name"] == name).unwrap().clone();
    let sfzh = item("sfzh");
    assert_eq!(sfzh["invalid"].as_u64(), Some(want["id_card"]));
    assert_eq!(sfzh["validity"].as_f64().unwrap(), 1.0 - want["id_card"] as f64 / 4000.0);
    assert_eq!(sfzh["completeness"], 1.0);
    assert_eq!(sfzh["uniqueness"], 1.0, "a key item has a uniqueness rate");
    assert_eq!(item("xb")["inconsistent"].as_u64(), Some(want["id_card_sex"]));
    assert_eq!(item("csrq")["inconsistent"].as_u64(), Some(want["id_card_birth_date"]));
    assert_eq!(item("sjh")["invalid"].as_u64(), Some(want["mobile"]));
    assert!(item("xm")["uniqueness"].is_null(), "no uniqueness check on 姓名");
    let d = &q["dimensions"];
    for k in ["completeness", "validity", "uniqueness", "consistency", "timeliness", "accuracy"] {
        let v = d[k].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&v), "{k} = {v}");
    }
    assert!(d["validity"].as_f64().unwrap() < 1.0 && d["consistency"].as_f64().unwrap() < 1.0);
    assert_eq!(d["timeliness"], 1.0, "just committed");
    let score = q["score"].as_f64().unwrap();
    assert!(score > 90.0 && score < 100.0, "{score}");

    // The trend: one point per version.
    upload(&app, &steward, &format!("{POP}?mode=replace"), {
        let mut f = Vec::new();
        generate_listing(Register::Population, 500, 0.0, 8, false, &mut f).unwrap();
        f
    })
    .await;
    let (_, h) = get(&steward, &app, &format!("/api/v1/resources/{POP}/quality/history")).await;
    let points = h.as_array().unwrap();
    assert_eq!(points.len(), 2);
    assert!(
        points[1]["score"].as_f64().unwrap() > points[0]["score"].as_f64().unwrap(),
        "a clean version scores higher"
    );
    let (_, old) = get(&steward, &app, &format!("/api/v1/resources/{POP}/quality?version=0")).await;
    assert_eq!(old["rows"], 4000);
    let (s, e) = get(&steward, &app, &format!("/api/v1/resources/{POP}/quality?version=9")).await;
    assert_eq!((s, e["error"]["code"].as_str()), (404, Some("not_found")));
    let (s, _) = get(&steward, &app, &format!("/api/v1/resources/{POP}/quality?version=-1")).await;
    assert_eq!(s, 400);

    // Visibility: 人口基础信息 is not open, so the public sees no report at all; another
    // department sees the counts (it sees the catalog entry) but never a failing value.
    let (s, _) = get(&new_client(), &app, &format!("/api/v1/resources/{POP}/quality?version=0")).await;
    assert_eq!(s, 404);
    let wjw = app.login("wjw-steward").await;
    let (s, other) = get(&wjw, &app, &format!("/api/v1/resources/{POP}/quality?version=0")).await;
    assert_eq!(s, 200);
    assert_eq!(failed(&other, "id_card"), Some(want["id_card"]));
    assert!(!other.to_string().contains("top_values"), "{other}");
}

fn test_resource(provider: &str) -> Value {
    json!({
        "name": "质量规则测试",
        "abstract": "每种质量规则各一条",
        "provider": provider,
        "classification": {"class": "thematic", "theme": "environment"},
        "format": {"category": "spreadsheet", "type": "csv"},
        "items": [
            {"name": "dm", "title": "代码", "key": true},
            {"name": "qydm", "title": "企业代码"},
            {"name": "sfzh", "title": "身份证号", "validator": "id_card"},
            {"name": "xb", "title": "性别"},
            {"name": "csrq", "title": "出生日期", "data_type": "date"},
            {"name": "nl", "title": "年龄", "data_type": "integer"},
            {"name": "mc", "title": "名称"},
            {"name": "lx", "title": "类型"},
            {"name": "hy", "title": "行业"},
            {"name": "gxsj", "title": "更新时间", "data_type": "datetime"}
        ],
        "share": {"type": "unconditional", "method": "api"},
        "open": {"type": "unconditional"},
        "update_cycle": "daily",
        "quality_rules": [
            {"rule": "reference(qydm, 102/000001, tyshxydm)", "severity": "reject"},
            {"rule": "range(nl, 0, 150)", "severity": "reject"},
            {"rule": "not_null(mc)"},
            {"rule": "length(mc, 2, 10)", "severity": "warn"},
            {"rule": "regex(mc, [^0-9]+)", "severity": "info"},
            {"rule": "enum(lx, 甲|乙)"},
            {"rule": "unique(hy)"},
            {"rule": "freshness(gxsj, 30d)"},
            {"rule": "id_card_birth_date(sfzh, csrq)"},
            {"rule": "id_card_sex(sfzh, xb)", "severity": "reject"}
        ]
    })
}

fn id_number(birth: &str, seq: u32) -> String {
    let first17 = format!("321202{birth}{seq:03}");
    format!("{first17}{}", citydata_domain::identifiers::id_check_char(&first17).unwrap())
}

#[tokio::test]
async fn every_rule_kind_counts_exactly_and_reject_rules_quarantine() {
    let app = spawn_app().await;
    let scj = app.login("scjgj-steward").await;
    // The referenced register: two enterprises.
    let mut ent = Vec::new();
    generate_listing(Register::Enterprise, 2, 0.0, 3, false, &mut ent).unwrap();
    upload(&app, &scj, ENT, ent.clone()).await;
    let text = String::from_utf8(ent).unwrap();
    let codes: Vec<&str> = text.lines().skip(1).map(|l| l.split(',').next().unwrap()).collect();

    let r = scj.post(app.url("/api/v1/resources")).json(&test_resource("scjgj")).send().await.unwrap();
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
    let res: Value = r.json().await.unwrap();
    let id = res["id"].as_str().unwrap().to_string();
    assert_eq!(res["quality_rules"].as_array().unwrap().len(), 10, "rules are part of the resource");
    assert_eq!(res["quality_rules"][2], json!({"rule": "not_null(mc)", "severity": "warn"}));
    let p = scj.post(app.url(&format!("/api/v1/resources/{id}/publish"))).send().await.unwrap();
    assert_eq!(p.status(), 200, "{}", p.text().await.unwrap());

    let male = id_number("19900101", 1); // odd sequence: male
    let now = chrono::Utc::now().format("%Y-%m-%d %H:%M:%S").to_string();
    let (c0, c1) = (codes[0], codes[1]);
    let rows = [
        // 1 clean
        format!("D1,{c0},{male},男,1990-01-01,30,泰州公司,甲,制造,{now}"),
        // 2 reference fails (reject) and a duplicate 行业 (warn)
        format!("D2,91321202000000000X,{male},男,1990-01-01,30,泰州公司,甲,制造,{now}"),
        // 3 range fails (reject)
        format!("D3,{c1},{male},男,1990-01-01,200,泰州公司,乙,零售,{now}"),
        // 4 mc missing (warn not_null), lx not in enum (warn), stale (warn)
        format!("D4,{c1},{male},男,1990-01-01,40,,丙,建筑,2020-01-01 00:00:00"),
        // 5 mc too long (warn length) and with digits (info regex), birth date disagrees (warn)
        format!("D5,{c0},{male},男,1990-01-02,40,泰州市第12345678号公司,甲,物流,{now}"),
        // 6 sex disagrees (reject)
        format!("D6,{c0},{male},女,1990-01-01,40,泰州公司,甲,餐饮,{now}"),
    ];
    let csv = format!("dm,qydm,sfzh,xb,csrq,nl,mc,lx,hy,gxsj\n{}\n", rows.join("\n"));
    let ingest = upload(&app, &scj, &id, csv).await;
    assert_eq!(ingest["report"]["rows_quarantined"], 3, "reference, range and sex reject: {ingest}");
    assert_eq!(ingest["report"]["rows_committed"], 3);
    let (_, q) = get(&scj, &app, &format!("/api/v1/resources/{id}/quality")).await;
    let expect = [
        ("reference(qydm, 102/000001, tyshxydm)", 1),
        ("range(nl, 0, 150)", 1),
        ("not_null(mc)", 1),
        ("length(mc, 2, 10)", 1),
        ("regex(mc, [^0-9]+)", 1),
        ("enum(lx, 甲|乙)", 1),
        ("unique(hy)", 1),
        ("freshness(gxsj, 30d)", 1),
        ("id_card_birth_date(sfzh, csrq)", 1),
        ("id_card_sex(sfzh, xb)", 1),
    ];
    for (rule, n) in expect {
        assert_eq!(failed(&q, rule), Some(n), "{rule}: {q}");
    }
    let sev: Vec<&str> = q["rules"].as_array().unwrap().iter().map(|r| r["severity"].as_str().unwrap()).collect();
    assert!(sev.contains(&"info") && sev.contains(&"warn") && sev.contains(&"reject"));
    // The provider sees the failing values; another department only the counts.
    let top = |q: &Value, rule: &str| {
        q["rules"].as_array().unwrap().iter().find(|r| r["rule"] == rule).unwrap()["top_values"].clone()
    };
    assert_eq!(top(&q, "range(nl, 0, 150)"), json!([{"value": "200", "count": 1}]));
    assert_eq!(top(&q, "enum(lx, 甲|乙)"), json!([{"value": "丙", "count": 1}]));
    let wjw = app.login("wjw-steward").await;
    let (_, other) = get(&wjw, &app, &format!("/api/v1/resources/{id}/quality")).await;
    assert_eq!(failed(&other, "range(nl, 0, 150)"), Some(1));
    assert!(top(&other, "range(nl, 0, 150)").is_null());
    assert!(!other.to_string().contains("200\""), "no failing value leaks: {other}");
    let item = |name: &str| q["items"].as_array().unwrap().iter().find(|i| i["name"] == name).unwrap().clone();
    assert_eq!(item("qydm")["unreferenced"], 1);
    assert!((item("qydm")["reference"].as_f64().unwrap() - 5.0 / 6.0).abs() < 1e-9);
    assert_eq!(item("gxsj")["stale"], 1);
    assert_eq!(item("hy")["duplicate"], 1);
    assert!((item("mc")["completeness"].as_f64().unwrap() - 5.0 / 6.0).abs() < 1e-9);
    assert!(q["dimensions"]["timeliness"].as_f64().unwrap() < 1.0, "a stale cell lowers timeliness");
}

#[tokio::test]
async fn rules_that_do_not_fit_are_refused_naming_the_rule() {
    let app = spawn_app().await;
    let scj = app.login("scjgj-steward").await;
    let create = |rules: Value| {
        let mut body = test_resource("scjgj");
        body["quality_rules"] = rules;
        body
    };
    let cases = [
        (json!([{"rule": "range(mc, 0, 1)"}]), "rule_type_mismatch"),
        (json!([{"rule": "regex(mc, [unclosed)"}]), "invalid_rule"),
        (json!([{"rule": "not_null(nope)"}]), "unknown_item"),
        (json!([{"rule": "reference(qydm, 102/999999, tyshxydm)"}]), "unknown_resource"),
        (json!([{"rule": "reference(qydm, 102/000001, qymc)"}]), "not_a_key"),
        (json!([{"rule": "reference(qydm, 102/000001, nope)"}]), "unknown_item"),
        // 人口基础信息 is 有条件共享 of 公安局: without a grant, scjgj may not read it, and the
        // failure counts would tell it which identity numbers exist.
        (json!([{"rule": "reference(sfzh, 101/000001, sfzh)"}]), "reference_not_readable"),
        (json!([{"rule": "not_null(mc)", "severity": "fatal"}]), "invalid_severity"),
    ];
    for (rules, code) in cases {
        let r = scj.post(app.url("/api/v1/resources")).json(&create(rules.clone())).send().await.unwrap();
        let body = assert_error(r, 400, "validation_failed").await;
        let f = &body["error"]["details"]["fields"][0];
        assert_eq!(f["code"], code, "{rules}: {body}");
        assert!(f["field"].as_str().unwrap().starts_with("quality_rules[0]"), "{body}");
    }
    // Nothing was written.
    let (_, list) = get(&scj, &app, "/api/v1/resources?provider=scjgj&per_page=1000").await;
    assert!(!list.to_string().contains("质量规则测试"));

    // Rules are versioned with the resource: an edit is a revision; bad edits change nothing.
    let mut ok = create(json!([{"rule": "not_null(mc)"}]));
    ok["quality_rules"] = json!([{"rule": "not_null(mc)"}]);
    let r: Value = scj.post(app.url("/api/v1/resources")).json(&ok).send().await.unwrap().json().await.unwrap();
    let url = app.url(&format!("/api/v1/resources/{}", r["id"].as_str().unwrap()));
    let patched = scj
        .patch(&url)
        .json(&json!({"quality_rules": [{"rule": "range(nl, 0, 120)", "severity": "reject"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(patched.status(), 200, "{}", patched.text().await.unwrap());
    let bad = scj.patch(&url).json(&json!({"quality_rules": [{"rule": "range(mc, 0, 1)"}]})).send().await.unwrap();
    assert_error(bad, 400, "validation_failed").await;
    let (_, now) = get(&scj, &app, &format!("/api/v1/resources/{}", r["id"].as_str().unwrap())).await;
    assert_eq!(now["quality_rules"], json!([{"rule": "range(nl, 0, 120)", "severity": "reject"}]));
    assert_eq!(now["revision"], 2);
    let (_, revs) = get(&scj, &app, &format!("/api/v1/resources/{}/revisions", r["id"].as_str().unwrap())).await;
    assert!(revs.to_string().contains("quality_rules"), "{revs}");
}

/// A grant revoked after the rule was written: the rule is no longer evaluated (its target's
/// values would leak through the counts), says so, and cannot be written again.
#[tokio::test]
async fn a_reference_whose_target_became_unreadable_is_not_evaluated() {
    let app = spawn_app().await;
    let gaj = app.login("gaj-steward").await;
    let mut pop = Vec::new();
    generate_listing(Register::Population, 20, 0.0, 4, false, &mut pop).unwrap();
    upload(&app, &gaj, POP, pop).await;
    let grant = json!({"resource_id": "101/000001", "grantee": {"department": "wjw"}, "fields": ["sfzh"],
        "masks": {"sfzh": "none"}, "purpose": "核验身份证号"});
    let r = gaj.post(app.url("/api/v1/grants")).json(&grant).send().await.unwrap();
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
    let grant_id = r.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_string();
    // With the grant, wjw may check its identity numbers against the register.
    let mut body = test_resource("wjw");
    body["quality_rules"] = json!([{"rule": "reference(sfzh, 101/000001, sfzh)", "severity": "warn"}]);
    let wjw = app.login("wjw-steward").await;
    let r = wjw.post(app.url("/api/v1/resources")).json(&body).send().await.unwrap();
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
    let id = r.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_string();
    let csv = format!("dm,sfzh\nA,{}\n", id_number("19900101", 1));
    upload(&app, &wjw, &id, csv.clone()).await;
    let (_, q) = get(&wjw, &app, &format!("/api/v1/resources/{id}/quality")).await;
    assert_eq!(failed(&q, "reference(sfzh, 101/000001, sfzh)"), Some(1), "{q}");
    // The grant is revoked: the rule is no longer evaluated.
    let r = gaj.post(app.url(&format!("/api/v1/grants/{grant_id}/revoke"))).send().await.unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    upload(&app, &wjw, &format!("{id}?mode=replace"), csv).await;
    let (_, q) = get(&wjw, &app, &format!("/api/v1/resources/{id}/quality")).await;
    let rule =
        q["rules"].as_array().unwrap().iter().find(|r| r["rule"].as_str().unwrap().starts_with("reference")).unwrap();
    assert!(rule["failed"].is_null(), "not evaluated: {q}");
    // And writing it again is refused.
    let bad = wjw
        .patch(app.url(&format!("/api/v1/resources/{id}")))
        .json(&json!({"quality_rules": [{"rule": "reference(sfzh, 101/000001, sfzh)"}]}))
        .send()
        .await
        .unwrap();
    let e = assert_error(bad, 400, "validation_failed").await;
    assert_eq!(e["error"]["details"]["fields"][0]["code"], "reference_not_readable");
}

/// A full profile re-reads the stored version: with `policy=accept` the defective rows are in
/// the table, so the profile finds exactly what the ingest counted.
#[tokio::test]
async fn a_full_profile_recounts_the_stored_version() {
    let app = spawn_app().await;
    let steward = app.login("gaj-steward").await;
    let mut file = Vec::new();
    let defects = generate_listing(Register::Population, 1500, 0.04, 21, false, &mut file).unwrap();
    let mut want: BTreeMap<&str, u64> = BTreeMap::new();
    for (_, rule) in &defects {
        *want.entry(rule).or_default() += 1;
    }
    upload(&app, &steward, &format!("{POP}?policy=accept"), file).await;
    let url = app.url(&format!("/api/v1/resources/{POP}/quality/profile"));
    assert_error(new_client().post(&url).send().await.unwrap(), 401, "unauthenticated").await;
    let wjw = app.login("wjw-steward").await;
    assert_error(wjw.post(&url).send().await.unwrap(), 403, "forbidden").await;
    let r = steward.post(&url).send().await.unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let p: Value = r.json().await.unwrap();
    assert_eq!(p["profile"], true);
    assert_eq!(p["rows"], 1500);
    for (rule, n) in &want {
        assert_eq!(failed(&p, rule), Some(*n), "{rule}: {p}");
    }
    let (_, q) = get(&steward, &app, &format!("/api/v1/resources/{POP}/quality")).await;
    assert_eq!(q["profile"], true, "the profile replaced the version's report");
}
