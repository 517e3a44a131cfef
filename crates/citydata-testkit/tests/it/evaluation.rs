//! 评估考核 over HTTP: a seeded fixture of departments with known commits, reads, requests and
//! tickets over two closed quarters, where every indicator and score equals the value computed
//! by hand below; the rules versions, rescoring, bad input and who may see what.

use chrono::{DateTime, Duration, Utc};
use citydata_domain::audit::{AuditEvent, Outcome};
use citydata_domain::evaluation::Period;
use citydata_store::{
    IngestRecord, IngestState, QualityReportRecord, RequestRecord, RequestState, RevisionAction, RevisionRecord,
    TicketRecord,
};
use citydata_testkit::{SpawnOptions, TestApp, assert_error, new_client, spawn_app_with};
use serde_json::{Value, json};
use uuid::Uuid;

pub(crate) fn body(name: &str, provider: &str, share: &str, open: &str, cycle: &str) -> Value {
    let mut share_v = json!({"type": share, "method": "api"});
    if share == "conditional" {
        share_v["conditions"] = json!("须经审批");
    }
    if share == "none" {
        share_v["conditions"] = json!("涉及国家秘密");
    }
    json!({
        "name": name,
        "abstract": format!("{name}的摘要"),
        "provider": provider,
        "classification": {"class": "thematic", "theme": "environment"},
        "format": {"category": "spreadsheet", "type": "csv"},
        "items": [{"name": "station", "title": "站点", "key": true}, {"name": "v", "title": "数值", "data_type": "decimal"}],
        "share": share_v,
        "open": {"type": open},
        "update_cycle": cycle,
        "tags": ["测试"],
        "regions": ["321202"]
    })
}

/// Create, publish and back-date a resource; its id.
pub(crate) async fn resource(app: &TestApp, c: &reqwest::Client, b: Value, published: DateTime<Utc>) -> Uuid {
    let r = c.post(app.url("/api/v1/resources")).json(&b).send().await.unwrap();
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
    let v: Value = r.json().await.unwrap();
    let id: Uuid = v["id"].as_str().unwrap().parse().unwrap();
    let r = c.post(app.url(&format!("/api/v1/resources/{id}/publish"))).send().await.unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let mut res = app.store.get_resource(id).await.unwrap().unwrap();
    res.published_at = Some(published);
    res.revision += 1;
    let rev = RevisionRecord {
        resource_id: id,
        revision: res.revision,
        at: published,
        actor: "fixture".into(),
        action: RevisionAction::Update,
        changes: vec![],
    };
    app.store.update_resource(&res, &rev).await.unwrap();
    id
}

async fn code(app: &TestApp, id: Uuid) -> String {
    app.store.get_resource(id).await.unwrap().unwrap().content.code.to_string()
}

async fn commit(app: &TestApp, resource_id: Uuid, at: DateTime<Utc>, version: i64, score: f64) {
    let rec = IngestRecord {
        id: Uuid::new_v4(),
        resource_id,
        idempotency_key: None,
        actor: "fixture".into(),
        mode: "append".into(),
        policy: "quarantine".into(),
        state: IngestState::Committed,
        report: Some(json!({"table_version": version})),
        error: None,
        created_at: at,
        finished_at: Some(at),
        node: None,
        lease_until: None,
        body_sha256: None,
    };
    app.store.create_ingest(&rec).await.unwrap();
    let q = QualityReportRecord {
        resource_id,
        version,
        ingest_id: Some(rec.id),
        report: json!({"version": version, "score": score}),
        samples: json!({}),
        created_at: at,
    };
    app.store.put_quality_report(&q).await.unwrap();
}

async fn read(
    app: &TestApp,
    action: &str,
    actor: Option<&str>,
    dept: Option<&str>,
    code: &str,
    at: DateTime<Utc>,
    outcome: Outcome,
) {
    let mut ev = AuditEvent::new(action, outcome, at);
    ev.actor = actor.map(str::to_string);
    ev.department = dept.map(str::to_string);
    ev.target = Some(format!("resource:{code}"));
    app.store.append_audit(&ev).await.unwrap();
}

#[allow(clippy::too_many_arguments)]
async fn request(
    app: &TestApp,
    resource_id: Uuid,
    from: &str,
    created: DateTime<Utc>,
    decided: Option<(DateTime<Utc>, &str, RequestState)>,
) -> Uuid {
    let id = Uuid::new_v4();
    let r = RequestRecord {
        id,
        resource_id,
        requester: Uuid::new_v4(),
        requester_name: "申请人".into(),
        requester_department: Some(from.into()),
        fields: vec![],
        purpose: "测试".into(),
        basis: "测试".into(),
        scenario: "测试".into(),
        contact: "0523".into(),
        period_days: 30,
        state: decided.map_or(RequestState::Pending, |d| d.2),
        reason: None,
        decided_by: decided.map(|d| d.1.to_string()),
        decided_at: decided.map(|d| d.0),
        grant_id: None,
        due_at: app.core.config().calendar.due(created, app.core.config().response_days),
        created_at: created,
        renews_grant: None,
        commitment: None,
    };
    app.store.create_request(&r).await.unwrap();
    id
}

async fn ticket(
    app: &TestApp,
    resource_id: Uuid,
    dept: &str,
    created: DateTime<Utc>,
    due: DateTime<Utc>,
    answer: Option<(&str, DateTime<Utc>)>,
) {
    let mut history = vec![json!({"at": created, "action": "submit", "by": "reporter"})];
    if let Some((action, at)) = answer {
        history.push(json!({"at": at, "action": action, "by": "provider"}));
    }
    let t = TicketRecord {
        id: Uuid::new_v4(),
        resource_id,
        department: dept.into(),
        title: "有误".into(),
        description: "数值有误".into(),
        record_key: None,
        item: None,
        reporter_id: None,
        reporter: "匿名".into(),
        state: if answer.is_some() { "fixed".into() } else { "submitted".into() },
        fixed_version: None,
        due_at: due,
        overdue_notified_at: None,
        assignee: None,
        history: json!(history),
        created_at: created,
        updated_at: created,
    };
    app.store.create_ticket(&t).await.unwrap();
}

fn dept<'a>(e: &'a Value, code: &str) -> &'a Value {
    e["departments"].as_array().unwrap().iter().find(|d| d["code"] == code).unwrap_or_else(|| panic!("{code} in {e}"))
}

fn ind(e: &Value, code: &str, name: &str) -> Value {
    dept(e, code)["indicators"][name]["value"].clone()
}

pub(crate) async fn evaluate(c: &reqwest::Client, app: &TestApp, q: &str) -> Value {
    let r = c.get(app.url(&format!("/api/v1/evaluation?{q}"))).send().await.unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    r.json().await.unwrap()
}

pub(crate) struct Fixture {
    pub(crate) app: TestApp,
    pub(crate) a: Period,
    pub(crate) b: Period,
    /// Working days of the answers, by the app's calendar.
    pub(crate) wd: std::collections::BTreeMap<&'static str, u32>,
}

/// Two closed quarters A and B (the two before the current one): gaj provides G1 (每月,
/// 无条件共享), G2 (每季度, 有条件共享) and, from B, G3 (不予共享, no data); scjgj provides S1
/// (不定期, 无条件开放); wjw provides W1 (每月, no data).
pub(crate) async fn fixture() -> Fixture {
    let app = spawn_app_with(SpawnOptions { demo: false, accounts_only: true, ..Default::default() }).await;
    let b = Period::quarter_of(Utc::now()).previous();
    let a = b.previous();
    let at = |p: &Period, d: i64| p.start() + Duration::days(d) + Duration::hours(2);
    let gaj = app.login("gaj-steward").await;
    let scj = app.login("scjgj-steward").await;
    let wjw = app.login("wjw-steward").await;
    let g1 = resource(&app, &gaj, body("G1监测", "gaj", "unconditional", "none", "monthly"), at(&a, 1)).await;
    let g2 = resource(&app, &gaj, body("G2记录", "gaj", "conditional", "none", "quarterly"), at(&a, 1)).await;
    let g3 = resource(&app, &gaj, body("G3档案", "gaj", "none", "none", "yearly"), at(&b, 1)).await;
    let s1 =
        resource(&app, &scj, body("S1名录", "scjgj", "unconditional", "unconditional", "irregular"), at(&a, 1)).await;
    let w1 = resource(&app, &wjw, body("W1统计", "wjw", "unconditional", "none", "monthly"), at(&a, 1)).await;
    let (c1, c2, cs, cw) = (code(&app, g1).await, code(&app, g2).await, code(&app, s1).await, code(&app, w1).await);
    let _ = g3;

    commit(&app, g1, at(&a, 10), 0, 80.0).await;
    commit(&app, g1, at(&b, 70), 1, 90.0).await;
    commit(&app, g2, at(&a, 5), 0, 70.0).await;
    commit(&app, s1, at(&a, 20), 0, 95.0).await;

    let ok = Outcome::Success;
    for _ in 0..2 {
        read(&app, "data.read_rows", Some("wjw-analyst"), Some("wjw"), &c1, at(&a, 30), ok).await;
    }
    read(&app, "data.read_rows", Some("gaj-steward"), Some("gaj"), &c1, at(&a, 30), ok).await;
    read(&app, "data.read_rows", Some("scjgj-steward"), Some("scjgj"), &c2, at(&a, 32), Outcome::Denied).await;
    for _ in 0..3 {
        read(&app, "data.read_rows", None, None, &cs, at(&a, 31), ok).await;
    }
    read(&app, "data.export", Some("alice"), None, &cs, at(&a, 31), ok).await;
    read(&app, "data.read_rows", Some("wjw-analyst"), Some("wjw"), &c1, at(&b, 10), ok).await;
    read(&app, "data.export", Some("wjw-analyst"), Some("wjw"), &c2, at(&b, 10), ok).await;
    read(&app, "data.aggregate", Some("scjgj-steward"), Some("scjgj"), &c1, at(&b, 11), ok).await;
    for _ in 0..2 {
        read(&app, "data.read_rows", Some("gaj-steward"), Some("gaj"), &cw, at(&b, 12), ok).await;
    }

    let cal = app.core.config().calendar.clone();
    let mut wd = std::collections::BTreeMap::new();
    let steward = "gaj-steward";
    request(&app, g2, "wjw", at(&a, 10), Some((at(&a, 12), steward, RequestState::Approved))).await;
    request(&app, g2, "scjgj", at(&a, 20), Some((at(&a, 40), steward, RequestState::Rejected))).await;
    request(&app, g1, "wjw", at(&a, 21), Some((at(&a, 21), "system", RequestState::Approved))).await;
    request(&app, w1, "gaj", at(&a, 50), None).await;
    request(&app, g2, "wjw", at(&b, 5), Some((at(&b, 6), steward, RequestState::Approved))).await;
    wd.insert("r2", cal.workdays_between(at(&a, 20), at(&a, 40)));
    wd.insert("r5", cal.workdays_between(at(&b, 5), at(&b, 6)));

    ticket(&app, s1, "scjgj", at(&a, 15), at(&a, 22), Some(("fix", at(&a, 18)))).await;
    ticket(&app, s1, "scjgj", at(&a, 60), at(&a, 67), Some(("reject", at(&a, 80)))).await;
    ticket(&app, g1, "gaj", at(&b, 3), at(&b, 10), None).await;
    wd.insert("t1", cal.workdays_between(at(&a, 15), at(&a, 18)));
    wd.insert("t2", cal.workdays_between(at(&a, 60), at(&a, 80)));
    Fixture { app, a, b, wd }
}

#[tokio::test]
async fn every_indicator_and_score_equals_the_hand_computed_value() {
    let Fixture { app, a, b, wd } = fixture().await;
    let admin = app.login("admin").await;
    let ea = evaluate(&admin, &app, &format!("period={a}")).await;
    assert_eq!(ea["period"], a.to_string());
    assert_eq!(ea["rules_version"], 0);
    assert_eq!(ea["closed"], true);
    let n = |v: f64| json!(v);
    // Period A. gaj: G1, G2 cataloged; both with data; G2 on time (quarterly, committed day
    // 5), G1 not (monthly, last commit day 10); both declared shared, G1 read by wjw (2 reads;
    // its own read and scjgj's refused read do not count); quality (80 + 70) / 2; requests: R1
    // in time, R2 late (R3 decided by the system is not counted).
    let want_a_gaj = [
        ("catalog_resources", n(2.0)),
        // abstract, titled items, publication date (set by publishing), tags, regions: 5 of 7
        ("catalog_completeness", n(0.7143)),
        ("data_attached_rate", n(1.0)),
        ("timeliness_rate", n(0.5)),
        ("declared_share_rate", n(1.0)),
        ("effective_share_rate", n(0.5)),
        ("open_rate", n(0.0)),
        ("public_reads", n(0.0)),
        ("quality_score", n(75.0)),
        ("tickets_received", n(0.0)),
        ("tickets_closed_in_sla_rate", Value::Null),
        ("requests_received", n(2.0)),
        ("requests_in_sla_rate", n(0.5)),
        ("response_median_days", n(f64::from(wd["r2"]))),
        ("response_p90_days", n(f64::from(wd["r2"]))),
        ("consuming_departments", n(1.0)),
        ("public_users", n(0.0)),
        ("reads", n(2.0)),
        ("downloads", n(0.0)),
        ("applications", n(0.0)),
    ];
    for (k, v) in &want_a_gaj {
        assert_eq!(&ind(&ea, "gaj", k), v, "A gaj {k}");
    }
    // scjgj: S1 irregular (timely once it has data), open, read only by the public (3
    // anonymous reads, 1 export by the public user alice); tickets T1 in time, T2 late.
    let want_a_scj = [
        ("catalog_resources", n(1.0)),
        ("timeliness_rate", n(1.0)),
        ("effective_share_rate", n(0.0)),
        ("open_rate", n(1.0)),
        ("public_reads", n(4.0)),
        ("public_users", n(1.0)),
        ("downloads", n(1.0)),
        ("reads", n(4.0)),
        ("quality_score", n(95.0)),
        ("tickets_received", n(2.0)),
        ("tickets_closed_in_sla_rate", n(0.5)),
        ("ticket_median_days", n(f64::from(wd["t1"].max(wd["t2"])))),
        ("requests_received", n(0.0)),
        ("requests_in_sla_rate", Value::Null),
    ];
    for (k, v) in &want_a_scj {
        assert_eq!(&ind(&ea, "scjgj", k), v, "A scjgj {k}");
    }
    // wjw: W1 without data; R4 pending past its due time.
    for (k, v) in [("data_attached_rate", n(0.0)), ("requests_received", n(1.0)), ("requests_in_sla_rate", n(0.0))] {
        assert_eq!(ind(&ea, "wjw", k), v, "A wjw {k}");
    }
    // Scores with the default weights (attached 10, timeliness 15, declared 10, effective 20,
    // open 10, quality 15, requests 10, tickets 10), indicators without a value left out:
    // gaj (10·100 + 15·50 + 10·100 + 20·50 + 10·0 + 15·83.33 + 10·50) / 90 = 61.11
    // scjgj (10·100 + 15·100 + 10·100 + 20·0 + 10·100 + 15·100 + 10·50) / 90 = 72.22
    // wjw (10·0 + 15·0 + 10·100 + 20·0 + 10·0 + 10·0) / 75 = 13.33
    let score = |e: &Value, c: &str| (dept(e, c)["score"].clone(), dept(e, c)["rank"].clone());
    assert_eq!(score(&ea, "scjgj"), (json!(72.22), json!(1)));
    assert_eq!(score(&ea, "gaj"), (json!(61.11), json!(2)));
    assert_eq!(score(&ea, "wjw"), (json!(13.33), json!(3)));
    assert_eq!(score(&ea, "rsj"), (Value::Null, Value::Null), "nothing cataloged, no score");
    assert_eq!(dept(&ea, "gaj")["indicators"]["quality_score"]["score"], json!(83.33));
    assert_eq!(dept(&ea, "gaj")["indicators"]["effective_share_rate"]["numerator"], 1);
    assert_eq!(dept(&ea, "gaj")["indicators"]["effective_share_rate"]["denominator"], 2);

    // Period B. gaj: G3 joins (no data, not shared); G1 committed day 70 (on time), G2's
    // quarterly update is late; G1 read by wjw and scjgj, G2 exported by wjw; quality
    // (90 + 70) / 2; R5 in time; T3 unanswered past due.
    let eb = evaluate(&admin, &app, &format!("period={b}")).await;
    let want_b_gaj = [
        ("catalog_resources", n(3.0)),
        ("data_attached_rate", n(0.6667)),
        ("timeliness_rate", n(0.3333)),
        ("declared_share_rate", n(0.6667)),
        ("effective_share_rate", n(0.6667)),
        ("quality_score", n(80.0)),
        ("tickets_received", n(1.0)),
        ("tickets_closed_in_sla_rate", n(0.0)),
        ("ticket_median_days", Value::Null),
        ("requests_received", n(1.0)),
        ("requests_in_sla_rate", n(1.0)),
        ("response_median_days", n(f64::from(wd["r5"]))),
        ("consuming_departments", n(2.0)),
        ("reads", n(3.0)),
        ("downloads", n(1.0)),
    ];
    for (k, v) in &want_b_gaj {
        assert_eq!(&ind(&eb, "gaj", k), v, "B gaj {k}");
    }
    assert_eq!(ind(&eb, "wjw", "effective_share_rate"), n(1.0), "gaj read W1");
    assert_eq!(ind(&eb, "scjgj", "public_reads"), n(0.0));
    // gaj (10·66.67 + 15·33.33 + 10·66.67 + 20·66.67 + 10·0 + 15·88.89 + 10·100 + 10·0) / 100 = 55.00
    // scjgj (10·100 + 15·100 + 10·100 + 20·0 + 10·100 + 15·100) / 80 = 75.00
    // wjw (10·0 + 15·0 + 10·100 + 20·100 + 10·0) / 65 = 46.15
    assert_eq!(score(&eb, "scjgj"), (json!(75.0), json!(1)));
    assert_eq!(score(&eb, "gaj"), (json!(55.0), json!(2)));
    assert_eq!(score(&eb, "wjw"), (json!(46.15), json!(3)));
    assert_eq!(dept(&eb, "scjgj")["change"], json!(2.78));
    assert_eq!(dept(&eb, "gaj")["change"], json!(-6.11));
    assert_eq!(dept(&eb, "wjw")["change"], json!(32.82));
    // The city: shared 3 of 5 cataloged; the flows between departments.
    assert_eq!(eb["city"]["indicators"]["effective_share_rate"], json!(0.6));
    let plan = eb["city"]["plan"].as_array().unwrap();
    let share = plan.iter().find(|p| p["indicator"] == "effective_share_rate").unwrap();
    assert_eq!((share["target"].clone(), share["progress"].clone()), (json!(1.0), json!(60.0)));
    let mut flows: Vec<(String, String, i64)> = eb["city"]["flows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (f["reader"].as_str().unwrap().into(), f["provider"].as_str().unwrap().into(), f["reads"].as_i64().unwrap())
        })
        .collect();
    flows.sort();
    assert_eq!(
        flows,
        [("gaj".into(), "wjw".into(), 2), ("scjgj".into(), "gaj".into(), 1), ("wjw".into(), "gaj".into(), 2)]
    );

    // Explained: the records behind gaj's effective share rate in B and its requests in A.
    let r: Value = admin
        .get(app.url(&format!("/api/v1/evaluation/departments/gaj/records?period={b}&indicator=effective_share_rate")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let reads: i64 = r["records"].as_array().unwrap().iter().map(|x| x["value"].as_f64().unwrap() as i64).sum();
    assert_eq!(reads, 3, "{r}");
    let r: Value = admin
        .get(app.url(&format!("/api/v1/evaluation/departments/gaj/records?period={a}&indicator=requests_in_sla_rate")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let counted: Vec<bool> = r["records"].as_array().unwrap().iter().map(|x| x["counted"].as_bool().unwrap()).collect();
    assert_eq!(counted, [true, false], "{r}");

    // One department's page equals its row.
    let r: Value = admin
        .get(app.url(&format!("/api/v1/evaluation/departments/gaj?period={b}")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(&r, dept(&eb, "gaj"));
}

#[tokio::test]
async fn rules_are_versioned_and_a_closed_period_keeps_its_own_unless_rescored() {
    let Fixture { app, a, .. } = fixture().await;
    let admin = app.login("admin").await;
    let steward = app.login("gaj-steward").await;
    let first = evaluate(&admin, &app, &format!("period={a}")).await;
    assert_eq!(first["rules_version"], 0);
    // Bad rules: 400 naming the field; nothing stored.
    let mut rules = json!({"weights": {"effective_share_rate": 60, "open_rate": 39}, "targets": {"effective_share_rate": 1, "open_rate": 1}});
    let r = admin.put(app.url("/api/v1/evaluation/rules")).json(&rules).send().await.unwrap();
    let e = assert_error(r, 400, "validation_failed").await;
    assert_eq!(e["error"]["details"]["fields"][0]["field"], "weights", "{e}");
    rules["weights"]["open_rate"] = json!(40);
    rules["targets"]["popularity"] = json!(3);
    let r = admin.put(app.url("/api/v1/evaluation/rules")).json(&rules).send().await.unwrap();
    let e = assert_error(r, 400, "validation_failed").await;
    assert_eq!(e["error"]["details"]["fields"][0]["field"], "targets.popularity", "{e}");
    rules["targets"].as_object_mut().unwrap().remove("popularity");
    // Only the platform admin sets them.
    let r = steward.put(app.url("/api/v1/evaluation/rules")).json(&rules).send().await.unwrap();
    assert_error(r, 403, "forbidden").await;
    let r = admin.put(app.url("/api/v1/evaluation/rules")).json(&rules).send().await.unwrap();
    assert_eq!(r.status(), 201);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["version"], 1);
    // The closed period keeps version 0; the current one uses version 1.
    let again = evaluate(&admin, &app, &format!("period={a}")).await;
    assert_eq!(again, first, "recomputed, unchanged");
    let now = Period::quarter_of(Utc::now());
    assert_eq!(evaluate(&admin, &app, &format!("period={now}")).await["rules_version"], 1);
    // Rescoring needs the flag, a platform admin, a closed period; it is audited.
    let r = steward.get(app.url(&format!("/api/v1/evaluation?period={a}&rescore=true"))).send().await.unwrap();
    assert_error(r, 403, "forbidden").await;
    let r = admin.get(app.url(&format!("/api/v1/evaluation?period={now}&rescore=true"))).send().await.unwrap();
    let e = assert_error(r, 400, "validation_failed").await;
    assert_eq!(e["error"]["details"]["fields"][0]["field"], "rescore");
    let re = evaluate(&admin, &app, &format!("period={a}&rescore=true")).await;
    assert_eq!(re["rules_version"], 1);
    // (60·50 + 40·0) / 100 for gaj: effective share 0.5, nothing open.
    assert_eq!(dept(&re, "gaj")["score"], json!(30.0));
    assert_eq!(evaluate(&admin, &app, &format!("period={a}")).await["rules_version"], 1, "the new pin holds");
    let audit: Value =
        admin.get(app.url("/api/v1/audit?action=evaluation.rescore")).send().await.unwrap().json().await.unwrap();
    assert_eq!(audit["total"], 1, "{audit}");
    assert_eq!(audit["entries"][0]["details"]["previous_rules_version"], 0);
    assert_eq!(audit["entries"][0]["target"], format!("evaluation:{a}"));
}

#[tokio::test]
async fn bad_periods_are_refused_by_name_and_only_members_see_the_evaluation() {
    let app = spawn_app_with(SpawnOptions { demo: false, accounts_only: true, ..Default::default() }).await;
    let analyst = app.login("wjw-analyst").await;
    for bad in ["2026-Q5", "2026-13", "26", "2026-q", "2026-Q1-x", ""] {
        let r = analyst.get(app.url(&format!("/api/v1/evaluation?period={bad}"))).send().await.unwrap();
        let e = assert_error(r, 400, "validation_failed").await;
        assert_eq!(e["error"]["details"]["fields"][0]["field"], "period", "{bad}: {e}");
    }
    let next = Period::quarter_of(Utc::now() + Duration::days(100));
    let r = analyst.get(app.url(&format!("/api/v1/evaluation?period={next}"))).send().await.unwrap();
    let e = assert_error(r, 400, "validation_failed").await;
    assert_eq!(e["error"]["details"]["fields"][0]["code"], "future_period");
    let r = analyst.get(app.url("/api/v1/evaluation")).send().await.unwrap();
    let e = assert_error(r, 400, "validation_failed").await;
    assert_eq!(e["error"]["details"]["fields"][0]["field"], "period");
    let r = analyst.get(app.url("/api/v1/evaluation/export?period=2026&format=csv")).send().await.unwrap();
    assert_error(r, 400, "validation_failed").await;
    // Anonymous callers get nothing (the public table is the portal's /evaluation).
    let now = Period::quarter_of(Utc::now());
    for path in [
        format!("/api/v1/evaluation?period={now}"),
        format!("/api/v1/evaluation/departments/gaj?period={now}"),
        format!("/api/v1/evaluation/departments/gaj/records?period={now}&indicator=reads"),
        format!("/api/v1/evaluation/export?period={now}"),
    ] {
        let r = new_client().get(app.url(&path)).send().await.unwrap();
        assert_eq!(r.status(), 401, "{path}");
    }
    let r = analyst
        .get(app.url(&format!("/api/v1/evaluation/departments/gaj/records?period={now}&indicator=nope")))
        .send()
        .await
        .unwrap();
    let e = assert_error(r, 400, "validation_failed").await;
    assert_eq!(e["error"]["details"]["fields"][0]["field"], "indicator");
}
