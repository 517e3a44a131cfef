//! 纠错 tickets and timeliness over HTTP: a public user's ticket on 企业登记信息 goes submitted →
//! accepted → fixed (by an upload) → confirmed with the other side notified each time; every
//! transition and every refusal (409 with the current state); the SLA on working days and the
//! overdue flag; an overdue daily resource in `/api/v1/quality/overdue`.

use crate::support::public_user;
use chrono::{Duration, Utc};
use citydata_core::demo::generate::{Register, generate_listing};
use citydata_testkit::{TestApp, assert_error, new_client, spawn_app, using_postgres};
use serde_json::{Value, json};

const ENT: &str = "102%2F000001";

async fn upload(app: &TestApp, c: &reqwest::Client, query: &str, rows: u64, seed: u64) -> Value {
    let mut f = Vec::new();
    generate_listing(Register::Enterprise, rows, 0.0, seed, false, &mut f).unwrap();
    let r = c.post(app.url(&format!("/api/v1/resources/{ENT}/data{query}"))).body(f).send().await.unwrap();
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
    r.json().await.unwrap()
}

async fn kinds(c: &reqwest::Client, app: &TestApp) -> Vec<String> {
    let v: Vec<Value> = c.get(app.url("/api/v1/inbox")).send().await.unwrap().json().await.unwrap();
    v.iter().map(|m| m["kind"].as_str().unwrap().to_string()).collect()
}

async fn step(c: &reqwest::Client, app: &TestApp, id: &str, action: &str, body: Value) -> reqwest::Response {
    c.post(app.url(&format!("/api/v1/tickets/{id}/{action}"))).json(&body).send().await.unwrap()
}

async fn ok(r: reqwest::Response) -> Value {
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    r.json().await.unwrap()
}

#[tokio::test]
async fn a_public_users_ticket_goes_from_submitted_to_confirmed() {
    let app = spawn_app().await;
    let scj = app.login("scjgj-steward").await;
    upload(&app, &scj, "", 50, 1).await;
    let alice = public_user(&app, "alice@example.cn").await;
    let bob = public_user(&app, "bob@example.cn").await;

    // Filing: bad input names the field; anonymous callers must sign in.
    let url = app.url(&format!("/api/v1/resources/{ENT}/tickets"));
    let r = alice.post(&url).json(&json!({"title": " ", "description": "x", "item": "nope"})).send().await.unwrap();
    let e = assert_error(r, 400, "validation_failed").await;
    let fields: Vec<&str> =
        e["error"]["details"]["fields"].as_array().unwrap().iter().map(|f| f["field"].as_str().unwrap()).collect();
    assert_eq!(fields, ["title", "item"]);
    let r = new_client().post(&url).json(&json!({"title": "a", "description": "b"})).send().await.unwrap();
    assert_error(r, 401, "unauthenticated").await;
    let body = json!({"title": "企业名称有误", "description": "该企业已更名", "record_key": "91321202MA1", "item": "企业名称"});
    let r = alice.post(&url).json(&body).send().await.unwrap();
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
    let t: Value = r.json().await.unwrap();
    let id = t["id"].as_str().unwrap().to_string();
    assert_eq!(t["state"], "submitted");
    assert_eq!(t["item"], "qymc", "the item by its name");
    assert!(kinds(&scj, &app).await.contains(&"ticket.submitted".to_string()), "routed to the provider");
    // The due time: 5 working days later, on the calendar.
    let due: chrono::DateTime<Utc> = t["due_at"].as_str().unwrap().parse().unwrap();
    let cal = citydata_domain::calendar::WorkCalendar::default();
    assert!(cal.workdays_between(Utc::now(), due) == 5, "{due}");

    // Out of order and out of role.
    let r = step(&scj, &app, &id, "confirm", json!({})).await;
    assert_error(r, 403, "forbidden").await;
    let r = step(&alice, &app, &id, "confirm", json!({})).await;
    let e = assert_error(r, 409, "invalid_transition").await;
    assert_eq!(e["error"]["details"]["state"], "submitted");
    let r = step(&alice, &app, &id, "accept", json!({})).await;
    assert_error(r, 403, "forbidden").await;
    let r = step(&scj, &app, &id, "fix", json!({"note": "已改"})).await;
    let e = assert_error(r, 409, "invalid_transition").await;
    assert_eq!(e["error"]["details"]["state"], "submitted");
    let r = step(&scj, &app, &id, "accept", json!({"surprise": 1})).await;
    assert_error(r, 422, "invalid_body").await;

    // submitted → accepted: the reporter is told.
    let t = ok(step(&scj, &app, &id, "accept", json!({})).await).await;
    assert_eq!(t["state"], "accepted");
    assert!(kinds(&alice, &app).await.contains(&"ticket.accepted".to_string()));
    let r = step(&scj, &app, &id, "accept", json!({})).await;
    assert_eq!(assert_error(r, 409, "invalid_transition").await["error"]["details"]["state"], "accepted");
    // A fix needs a note and an existing version.
    let r = step(&scj, &app, &id, "fix", json!({"note": "", "version": 99})).await;
    let e = assert_error(r, 400, "validation_failed").await;
    let fields: Vec<&str> =
        e["error"]["details"]["fields"].as_array().unwrap().iter().map(|f| f["field"].as_str().unwrap()).collect();
    assert_eq!(fields, ["note", "version"]);
    // accepted → fixed by an upload: linked to the version it made.
    let fixed = upload(&app, &scj, "?mode=upsert", 50, 1).await;
    let v = fixed["report"]["table_version"].as_i64().unwrap();
    let t = ok(step(&scj, &app, &id, "fix", json!({"note": "已按营业执照更正", "version": v})).await).await;
    assert_eq!((t["state"].as_str(), t["fixed_version"].as_i64()), (Some("fixed"), Some(v)));
    assert!(kinds(&alice, &app).await.contains(&"ticket.fixed".to_string()));
    // Only the reporter confirms.
    assert_error(step(&bob, &app, &id, "confirm", json!({})).await, 403, "forbidden").await;
    let t = ok(step(&alice, &app, &id, "confirm", json!({})).await).await;
    assert_eq!(t["state"], "confirmed");
    assert!(kinds(&scj, &app).await.contains(&"ticket.confirmed".to_string()));
    let r = step(&alice, &app, &id, "reopen", json!({"reason": "again"})).await;
    assert_eq!(assert_error(r, 409, "invalid_transition").await["error"]["details"]["state"], "confirmed");
    let history: Vec<&str> = t["history"].as_array().unwrap().iter().map(|h| h["action"].as_str().unwrap()).collect();
    assert_eq!(history, ["submit", "accept", "fix", "confirm"]);

    // The public list shows the states, never the reporter.
    let mine: Value = alice.get(app.url(&format!("/api/v1/tickets/{id}"))).send().await.unwrap().json().await.unwrap();
    let who = mine["reporter"].as_str().expect("the reporter sees itself").to_string();
    let list: Value = new_client()
        .get(app.url(&format!("/api/v1/resources/{ENT}/tickets")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list[0]["state"], "confirmed");
    assert!(list[0]["reporter"].is_null());
    assert!(!list.to_string().contains(&who), "{list}");
    let theirs: Value = scj.get(app.url(&format!("/api/v1/tickets/{id}"))).send().await.unwrap().json().await.unwrap();
    // The dataset's quality page: score, one bar per dimension, tickets without reporters.
    let res: Value =
        new_client().get(app.url(&format!("/api/v1/resources/{ENT}"))).send().await.unwrap().json().await.unwrap();
    let page = new_client()
        .get(app.url(&format!("/datasets/{}/quality", res["slug"].as_str().unwrap())))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("质量得分") && page.contains("<svg") && page.contains("完整性"), "{page}");
    assert!(!page.contains(&who));
    assert_eq!(theirs["reporter"], who.as_str(), "the provider sees who reported");
    // A confirmed error counts against accuracy (50 rows: one per 10,000 would be 0.5).
    let q: Value =
        scj.get(app.url(&format!("/api/v1/resources/{ENT}/quality"))).send().await.unwrap().json().await.unwrap();
    assert_eq!(q["confirmed_tickets"], 1);
    assert!(q["dimensions"]["accuracy"].as_f64().unwrap() < 0.01, "{q}");
}

#[tokio::test]
async fn rejection_reopening_overdue_flags_and_automatic_closing() {
    let app = spawn_app().await;
    let scj = app.login("scjgj-steward").await;
    let admin = app.login("admin").await;
    upload(&app, &scj, "", 10, 2).await;
    let alice = public_user(&app, "carol@example.cn").await;
    let url = app.url(&format!("/api/v1/resources/{ENT}/tickets"));
    let file = |title: &str| json!({"title": title, "description": "见附件"});
    let t: Value = alice.post(&url).json(&file("一")).send().await.unwrap().json().await.unwrap();
    let id = t["id"].as_str().unwrap().to_string();
    // Reject needs a reason; then the reporter may reopen with one.
    let e = assert_error(step(&scj, &app, &id, "reject", json!({})).await, 400, "validation_failed").await;
    assert_eq!(e["error"]["details"]["fields"][0]["field"], "reason");
    let t = ok(step(&scj, &app, &id, "reject", json!({"reason": "数据无误"})).await).await;
    assert_eq!(t["state"], "rejected");
    assert!(kinds(&alice, &app).await.contains(&"ticket.rejected".to_string()));
    let e = assert_error(step(&alice, &app, &id, "reopen", json!({})).await, 400, "validation_failed").await;
    assert_eq!(e["error"]["details"]["fields"][0]["field"], "reason");
    let t = ok(step(&alice, &app, &id, "reopen", json!({"reason": "请再核对"})).await).await;
    assert_eq!(t["state"], "submitted");
    // Comments from both sides; a stranger may not.
    let c = alice.post(app.url(&format!("/api/v1/tickets/{id}/comments"))).json(&json!({"body": "补充说明"})).send();
    assert_eq!(c.await.unwrap().status(), 201);
    let stranger = public_user(&app, "dave@example.cn").await;
    let c = stranger.post(app.url(&format!("/api/v1/tickets/{id}/comments"))).json(&json!({"body": "x"})).send();
    assert_error(c.await.unwrap(), 403, "forbidden").await;

    // Unanswered past the SLA: overdue, flagged once to the provider and the admins.
    let later = Utc::now() + Duration::days(30);
    assert_eq!(app.core.sweep_tickets(later).await.unwrap(), (1, 0));
    assert_eq!(app.core.sweep_tickets(later).await.unwrap(), (0, 0), "once");
    assert!(kinds(&scj, &app).await.contains(&"ticket.overdue".to_string()));
    assert!(kinds(&admin, &app).await.contains(&"ticket.overdue".to_string()));
    // The overdue list (with real time: backdate the due time).
    let backdate = if using_postgres() {
        format!("UPDATE quality_tickets SET due_at = due_at - interval '60 days' WHERE id = '{id}'")
    } else {
        format!("UPDATE quality_tickets SET due_at = due_at - 5184000000000 WHERE id = '{id}'")
    };
    app.exec_sql(&backdate).await;
    let overdue: Value = scj.get(app.url("/api/v1/tickets?overdue=true")).send().await.unwrap().json().await.unwrap();
    assert_eq!(overdue.as_array().unwrap().len(), 1, "{overdue}");
    assert_eq!(overdue[0]["overdue"], true);
    let all: Value = admin
        .get(app.url("/api/v1/tickets?department=scjgj&state=submitted"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(all.as_array().unwrap().len(), 1);
    let r = admin.get(app.url("/api/v1/tickets?state=bogus")).send().await.unwrap();
    assert_error(r, 400, "validation_failed").await;
    let gaj = app.login("gaj-steward").await;
    let none: Value = gaj.get(app.url("/api/v1/tickets")).send().await.unwrap().json().await.unwrap();
    assert!(none.as_array().unwrap().is_empty(), "another department's stewards see none");
    // Another department's steward sees the resource, yet may take no provider step.
    for action in ["accept", "reject", "fix"] {
        let r = step(&gaj, &app, &id, action, json!({"reason": "x", "note": "x"})).await;
        assert_error(r, 403, "forbidden").await;
    }
    // A ticket on a resource the caller cannot see does not exist for it.
    let pop = gaj.post(app.url("/api/v1/resources/101%2F000001/tickets")).json(&file("人口")).send().await.unwrap();
    assert_eq!(pop.status(), 201);
    let pop_id = pop.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_string();
    let r = new_client().get(app.url(&format!("/api/v1/tickets/{pop_id}"))).send().await.unwrap();
    assert_error(r, 404, "not_found").await;
    let r = alice.post(app.url("/api/v1/resources/101%2F000001/tickets")).json(&file("x")).send().await.unwrap();
    assert_error(r, 404, "not_found").await;
    let r = new_client().get(app.url("/api/v1/tickets/not-a-uuid")).send().await.unwrap();
    assert_error(r, 404, "not_found").await;

    // accepted → rejected is allowed; fixed → reopen → ... ; fixed and unconfirmed closes.
    ok(step(&scj, &app, &id, "accept", json!({})).await).await;
    ok(step(&scj, &app, &id, "fix", json!({"note": "已更正"})).await).await;
    let t = ok(step(&alice, &app, &id, "reopen", json!({"reason": "仍有误"})).await).await;
    assert_eq!(t["state"], "submitted");
    assert!(!t["overdue"].as_bool().unwrap(), "a reopened ticket gets a new due time");
    ok(step(&scj, &app, &id, "accept", json!({})).await).await;
    ok(step(&scj, &app, &id, "fix", json!({"note": "再次更正"})).await).await;
    assert_eq!(app.core.sweep_tickets(Utc::now() + Duration::days(15)).await.unwrap().1, 1);
    let t: Value = alice.get(app.url(&format!("/api/v1/tickets/{id}"))).send().await.unwrap().json().await.unwrap();
    assert_eq!(t["state"], "closed");
    let t = ok(step(&alice, &app, &id, "reopen", json!({"reason": "没有改"})).await).await;
    assert_eq!(t["state"], "submitted");
    let t2: Value = alice.post(&url).json(&file("二")).send().await.unwrap().json().await.unwrap();
    let id2 = t2["id"].as_str().unwrap();
    ok(step(&scj, &app, id2, "accept", json!({})).await).await;
    let t2 = ok(step(&scj, &app, id2, "reject", json!({"reason": "重复"})).await).await;
    assert_eq!(t2["state"], "rejected");
}

#[tokio::test]
async fn an_overdue_daily_resource_is_listed_and_its_stewards_reminded_once() {
    let app = spawn_app().await;
    let scj = app.login("scjgj-steward").await;
    upload(&app, &scj, "", 10, 3).await;
    let now = Utc::now();
    let is_listed =
        |v: &Vec<citydata_core::quality::timeliness::OverdueResource>| v.iter().any(|o| o.code == "102/000001");
    assert!(!is_listed(&app.core.overdue_resources(None, Some("scjgj"), now).await.unwrap()));
    let later = now + Duration::days(2);
    let o = app.core.overdue_resources(None, Some("scjgj"), later).await.unwrap();
    assert!(is_listed(&o));
    let ent = o.iter().find(|o| o.code == "102/000001").unwrap();
    assert_eq!(ent.cycle, "daily");
    assert!(ent.last_commit_at.is_some() && ent.due_at < later);
    // Reminders: before the due time once, after it once (on whichever node claims it).
    let inbox_for = |kinds: Vec<Value>, kind: &str| {
        kinds.iter().filter(|m| m["kind"] == kind && m["title"].as_str().unwrap().contains("企业登记信息")).count()
    };
    let soon = now + Duration::hours(20);
    app.core.sweep_quality(soon).await.unwrap();
    app.core.sweep_quality(soon).await.unwrap();
    let msgs: Vec<Value> = scj.get(app.url("/api/v1/inbox")).send().await.unwrap().json().await.unwrap();
    assert_eq!(inbox_for(msgs, "quality.due_soon"), 1);
    app.core.sweep_quality(later).await.unwrap();
    app.core.sweep_quality(later).await.unwrap();
    let msgs: Vec<Value> = scj.get(app.url("/api/v1/inbox")).send().await.unwrap().json().await.unwrap();
    assert_eq!(inbox_for(msgs, "quality.overdue"), 1);

    // Over HTTP, with the last commit two days back.
    let backdate = if using_postgres() {
        "UPDATE ingests SET finished_at = finished_at - interval '2 days'".to_string()
    } else {
        "UPDATE ingests SET finished_at = finished_at - 172800000000".to_string()
    };
    app.exec_sql(&backdate).await;
    let v: Value = new_client()
        .get(app.url("/api/v1/quality/overdue?department=scjgj"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let row = v.as_array().unwrap().iter().find(|r| r["code"] == "102/000001").expect("listed").clone();
    for k in ["resource_id", "code", "name", "department", "cycle", "due_at", "last_commit_at"] {
        assert!(!row[k].is_null(), "{k}: {row}");
    }
    assert_eq!(row["department"], "scjgj");
    // The public sees only the open catalog's overdue resources (人口 is not open).
    assert!(!v.to_string().contains("101/000001"));
    // The steward's console lists it as an overdue update; the department page too.
    let html = scj.get(app.url("/console/quality")).send().await.unwrap().text().await.unwrap();
    let todo = html.split("todo-overdue").nth(1).expect("an overdue list");
    assert!(todo.contains("企业登记信息"), "{html}");
    let html = new_client().get(app.url("/departments/scjgj/quality")).send().await.unwrap().text().await.unwrap();
    assert!(html.contains("企业登记信息") && html.contains("quality?format=xlsx"), "{html}");
    let x = new_client().get(app.url("/departments/scjgj/quality?format=xlsx")).send().await.unwrap();
    assert_eq!(x.status(), 200);
    assert!(x.bytes().await.unwrap().starts_with(b"PK"));
    // The timeliness dimension falls once overdue.
    let q: Value =
        scj.get(app.url(&format!("/api/v1/resources/{ENT}/quality"))).send().await.unwrap().json().await.unwrap();
    assert!(q["dimensions"]["timeliness"].as_f64().unwrap() < 1.0, "{q}");
}
