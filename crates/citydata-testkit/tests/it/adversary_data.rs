//! Attackers over HTTP against the data paths around the gate (issue #11, classes 1, 4, 8, 9):
//! cells of a table outside governed reads, engine internals in errors, a quietly rewritten
//! audit trail, and erased rows that come back. Each test plays the attacker and fails on the
//! code before the fix.

use crate::support::public_user;
use citydata_core::demo::generate::{Register, generate_listing};
use citydata_domain::audit::chain_hash;
use citydata_testkit::{TestApp, assert_error, new_client, spawn_app};
use serde_json::{Value, json};

const SECRET: &str = "攻击者看不见的值12345";
const ERASED: &str = "擦除后不应出现";

/// The population listing's header and its data lines.
fn listing(rows: u64) -> (String, Vec<String>) {
    let mut out = Vec::new();
    generate_listing(Register::Population, rows, 0.0, 8, false, &mut out).unwrap();
    let text = String::from_utf8(out).unwrap();
    let mut lines = text.lines().map(str::to_string);
    let header = lines.next().unwrap();
    (header, lines.collect())
}

async fn upload(app: &TestApp, c: &reqwest::Client, code: &str, query: &str, body: String) -> Value {
    let url = app.url(&format!("/api/v1/resources/{}/data?{query}", code.replace('/', "%2F")));
    let r = c.post(url).body(body).send().await.unwrap();
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
    r.json().await.unwrap()
}

async fn text(r: reqwest::Response) -> (u16, String) {
    let s = r.status().as_u16();
    (s, r.text().await.unwrap())
}

#[tokio::test]
async fn invalid_rows_show_their_cells_to_the_provider_only() {
    let app = spawn_app().await;
    // 医疗机构 (wjw, open to the public): one good row, one row whose cells carry the secret.
    let wjw_steward = app.login("wjw-steward").await;
    let csv = format!("jgdm,jgmc,dj,dz,cws\nJ001,人民医院,三级,海陵路1号,500\nJ002,{SECRET},二级,某路2号,{SECRET}\n");
    let v = upload(&app, &wjw_steward, "201/000001", "mode=append", csv).await;
    assert_eq!(v["report"]["rows_quarantined"], 1, "{v}");
    assert!(v.to_string().contains(SECRET), "the uploading steward sees the bad row: {v}");
    let ingest = v["id"].as_str().unwrap().to_string();
    // 人口基础信息 (gaj, conditional sharing): a bad row too, and a grant to 卫健委.
    let gaj = app.login("gaj-steward").await;
    let (header, lines) = listing(3);
    let mut cols: Vec<String> = lines[0].split(',').map(str::to_string).collect();
    cols[0] = "123".into(); // not an ID number
    cols[1] = SECRET.into();
    let bad = cols.join(",");
    let v = upload(&app, &gaj, "101/000001", "mode=append", format!("{header}\n{}\n{bad}\n", lines[1])).await;
    assert_eq!(v["report"]["rows_quarantined"], 1, "{v}");
    let pop_ingest = v["id"].as_str().unwrap().to_string();
    let grant = json!({"resource_id": "101/000001", "grantee": {"department": "wjw"}, "purpose": "统计"});
    assert_eq!(gaj.post(app.url("/api/v1/grants")).json(&grant).send().await.unwrap().status(), 201);

    let slug: Value =
        new_client().get(app.url("/api/v1/resources/201%2F000001")).send().await.unwrap().json().await.unwrap();
    let slug = slug["slug"].as_str().unwrap().to_string();
    let attackers = [
        ("anonymous", new_client()),
        ("public", public_user(&app, "mallory@example.cn").await),
        ("another department's steward", app.login("gaj-steward").await),
        ("the provider's analyst", app.login("wjw-analyst").await),
    ];
    for (who, c) in &attackers {
        let paths = [
            "/api/v1/resources/201%2F000001/ingests".to_string(),
            format!("/api/v1/resources/201%2F000001/ingests/{ingest}"),
            "/api/v1/resources/201%2F000001/quarantine".to_string(),
            "/api/v1/resources/201%2F000001/quarantine?limit=10000".to_string(),
            "/api/v1/inbox".to_string(),
            format!("/datasets/{slug}"),
        ];
        for path in &paths {
            let (status, body) = text(c.get(app.url(path)).send().await.unwrap()).await;
            assert!(!body.contains(SECRET), "{who} read a cell through {path} ({status}): {body}");
        }
        // Counts and rule names stay where the catalog entry is.
        let (status, body) =
            text(c.get(app.url(&format!("/api/v1/resources/201%2F000001/ingests/{ingest}"))).send().await.unwrap())
                .await;
        assert_eq!(status, 200, "{who}: {body}");
        let v: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["report"]["rows_quarantined"], 1, "{who}: {v}");
        assert_eq!(v["report"]["sample"][0]["failures"][0]["rule"], "type", "{who}: {v}");
        assert_eq!(v["report"]["sample"][0]["line"], 3, "{who}: {v}");
        // The quarantine is the provider's.
        let (status, _) = text(c.get(app.url("/api/v1/resources/201%2F000001/quarantine")).send().await.unwrap()).await;
        assert!(status == 401 || status == 403, "{who} got the quarantine: {status}");
    }
    // 卫健委's analyst holds a grant on the population register: rows, yes; the bad row, no.
    let wjw = app.login("wjw-analyst").await;
    let rows = wjw.get(app.url("/api/v1/resources/101%2F000001/rows")).send().await.unwrap();
    assert_eq!(rows.status(), 200);
    for path in [
        "/api/v1/resources/101%2F000001/ingests".to_string(),
        format!("/api/v1/resources/101%2F000001/ingests/{pop_ingest}"),
        "/api/v1/resources/101%2F000001/quarantine".to_string(),
        "/api/v1/inbox".to_string(),
    ] {
        let (status, body) = text(wjw.get(app.url(&path)).send().await.unwrap()).await;
        assert!(!body.contains(SECRET), "a grantee read a quarantined cell through {path} ({status}): {body}");
    }
    // The provider's steward sees the cells, in the report and in the quarantine.
    for path in
        [format!("/api/v1/resources/201%2F000001/ingests/{ingest}"), "/api/v1/resources/201%2F000001/quarantine".into()]
    {
        let (status, body) = text(wjw_steward.get(app.url(&path)).send().await.unwrap()).await;
        assert_eq!(status, 200, "{body}");
        assert!(body.contains(SECRET), "the provider sees the bad row through {path}: {body}");
    }
    // Failure messages name the item and the rule, never the cell (they sit beside counts).
    let q: Value = wjw_steward
        .get(app.url("/api/v1/resources/201%2F000001/quarantine"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(!q[0]["message"].as_str().unwrap().contains(SECRET), "{q}");
    // The audit trail of the uploads has counts, not cells.
    let admin = app.login("admin").await;
    let (_, audit) = text(admin.get(app.url("/api/v1/audit?action=data.ingest")).send().await.unwrap()).await;
    assert!(audit.contains("rows_quarantined") && !audit.contains(SECRET), "{audit}");
}

#[tokio::test]
async fn errors_name_the_callers_mistake_not_the_engine() {
    let app = spawn_app().await;
    let gaj = app.login("gaj-steward").await;
    let (header, lines) = listing(5);
    upload(&app, &gaj, "101/000001", "mode=append", format!("{header}\n{}\n", lines.join("\n"))).await;
    let data_dir = app.data_dir.path().display().to_string();
    let clean = |body: &str| {
        for leak in
            ["Kernel", "kernel", "delta", "Delta", "file://", "/tmp", data_dir.as_str(), "LogSegment", "parquet"]
        {
            assert!(!body.contains(leak), "the answer leaks {leak:?}: {body}");
        }
    };
    for path in ["rows?version=999", "export?version=999", "aggregate?group_by=区县&version=999"] {
        let r = gaj.get(app.url(&format!("/api/v1/resources/101%2F000001/{path}"))).send().await.unwrap();
        let body = assert_error(r, 404, "version_not_found").await;
        let m = body["error"]["message"].as_str().unwrap();
        assert!(m.contains("999") && m.contains("0"), "names the version asked and those that exist: {m}");
        clean(&body.to_string());
    }
    for bad in ["-1", "abc"] {
        let r = gaj.get(app.url(&format!("/api/v1/resources/101%2F000001/rows?version={bad}"))).send().await.unwrap();
        let (status, body) = text(r).await;
        assert_eq!(status, 400, "{body}");
        assert!(body.contains("version"), "names the parameter: {body}");
        clean(&body);
    }
    // A data file goes missing under the table: the answer names the problem, not the path.
    let id: Value = gaj.get(app.url("/api/v1/resources/101%2F000001")).send().await.unwrap().json().await.unwrap();
    let dir = app.data_dir.path().join("lake/tables").join(id["id"].as_str().unwrap());
    let mut removed = 0;
    for f in std::fs::read_dir(&dir).unwrap() {
        let p = f.unwrap().path();
        if p.extension().is_some_and(|e| e == "parquet") {
            std::fs::remove_file(p).unwrap();
            removed += 1;
        }
    }
    assert!(removed > 0);
    let r = gaj.get(app.url("/api/v1/resources/101%2F000001/rows")).send().await.unwrap();
    let body = assert_error(r, 500, "table_unreadable").await;
    clean(&body.to_string());
}

/// Every audit entry as stored, in order.
async fn entries(app: &TestApp) -> Vec<citydata_domain::audit::AuditEntry> {
    app.store.audit_after(0, 100_000).await.unwrap()
}

fn sql_text(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

async fn verify(app: &TestApp, admin: &str) -> Value {
    reqwest::Client::new()
        .get(app.url("/api/v1/audit/verify"))
        .bearer_auth(admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

async fn app_with_history() -> (TestApp, String) {
    let app = spawn_app().await;
    let admin = app.token("admin").await;
    let c = app.login("gaj-steward").await;
    for i in 0..8 {
        c.post(app.url("/api/v1/tokens")).json(&json!({"name": format!("t{i}")})).send().await.unwrap();
    }
    // The administrator verifies: the walk is clean and the head gets signed.
    let v = verify(&app, &admin).await;
    assert_eq!(v["ok"], true, "{v}");
    (app, admin)
}

#[tokio::test]
async fn a_rewritten_and_rehashed_audit_log_is_caught() {
    let (app, admin) = app_with_history().await;
    let key = citydata_core::audit_seal::AuditKey::open_or_create(&app.data_dir.path().join("audit.key")).unwrap();
    // The attacker, with database access: rewrite entry 3's details, re-hash everything after it.
    let all = entries(&app).await;
    let mut prev = all[1].hash.clone();
    for e in &all[2..] {
        let mut ev = e.event.clone();
        if e.seq == 3 {
            ev.details = json!({"note": "nothing happened here"});
        }
        let hash = chain_hash(&prev, e.seq, &ev);
        app.exec_sql(&format!(
            "UPDATE audit_log SET details = {}, prev_hash = {}, hash = {} WHERE seq = {}",
            sql_text(&citydata_domain::audit::canonical_json(&ev.details)),
            sql_text(&prev),
            sql_text(&hash),
            e.seq
        ))
        .await;
        prev = hash;
    }
    let last = all.last().unwrap().seq;
    app.exec_sql(&format!("UPDATE audit_head SET hash = {} WHERE id = 1", sql_text(&prev))).await;
    app.exec_sql(&format!("DELETE FROM audit_checkpoints WHERE seq <= {last}")).await;
    // The bare hash chain is fooled...
    let bare = citydata_core::audit::verify_chain(&*app.store, None).await.unwrap();
    assert!(bare.ok, "the attack re-hashed consistently: {bare:?}");
    // ...the signed checkpoints (kept in the file beside the key) are not: API and CLI path.
    let v = verify(&app, &admin).await;
    assert_eq!(v["ok"], false, "{v}");
    assert_eq!(v["first_break"]["kind"], "rewritten", "{v}");
    assert!(v["first_break"]["seq"].as_i64().unwrap() <= 3, "names a seq at or before the edit: {v}");
    let cli = citydata_core::audit::verify_chain(&*app.store, Some(&key)).await.unwrap();
    assert!(!cli.ok && cli.first_break.unwrap().seq <= 3);
    // A forged checkpoint row (no key) is refused outright.
    app.exec_sql(&format!(
        "INSERT INTO audit_checkpoints (seq, hash, at, mac) VALUES ({}, {}, {}, '00')",
        last,
        sql_text(&prev),
        if citydata_testkit::using_postgres() { "now()".to_string() } else { "0".to_string() }
    ))
    .await;
    let v = verify(&app, &admin).await;
    assert_eq!(v["first_break"]["kind"], "forged", "{v}");
}

#[tokio::test]
async fn removing_the_last_entries_and_their_checkpoints_is_caught() {
    let (app, admin) = app_with_history().await;
    let all = entries(&app).await;
    let last = all.last().unwrap().seq;
    let keep = &all[all.len() - 6];
    app.exec_sql(&format!("DELETE FROM audit_log WHERE seq > {}", keep.seq)).await;
    app.exec_sql(&format!("UPDATE audit_head SET seq = {}, hash = {} WHERE id = 1", keep.seq, sql_text(&keep.hash)))
        .await;
    app.exec_sql("DELETE FROM audit_checkpoints").await;
    assert!(citydata_core::audit::verify_chain(&*app.store, None).await.unwrap().ok, "the bare chain is fooled");
    let v = verify(&app, &admin).await;
    assert_eq!(v["ok"], false, "{v}");
    assert_eq!(v["first_break"]["kind"], "truncated", "{v}");
    assert_eq!(v["first_break"]["seq"], keep.seq + 1, "{v}");
    assert!(v["first_break"]["message"].as_str().unwrap().contains(&format!("#{last}")), "{v}");
}

#[tokio::test]
async fn audit_entries_name_the_token_and_the_departments() {
    let app = spawn_app().await;
    let token = app.token("gaj-steward").await;
    let c = reqwest::Client::new();
    // A write with a token: the entry names the token and every department of the actor.
    let (header, lines) = listing(2);
    let r = c
        .post(app.url("/api/v1/resources/101%2F000001/data"))
        .bearer_auth(&token)
        .body(format!("{header}\n{}\n", lines.join("\n")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    // CKAN reads carry the request id and the client like REST reads.
    c.get(app.url("/api/3/action/datastore_search?resource_id=101/000001"))
        .bearer_auth(&token)
        .header("x-request-id", "ckan-read-1")
        .send()
        .await
        .unwrap();
    let admin = app.login("admin").await;
    let v: Value = admin.get(app.url("/api/v1/audit?limit=50")).send().await.unwrap().json().await.unwrap();
    let entries = v["entries"].as_array().unwrap();
    let ingest = entries.iter().find(|e| e["action"] == "data.ingest").expect("ingest audited");
    assert!(ingest["details"]["token_id"].is_string(), "{ingest}");
    assert_eq!(ingest["details"]["departments"], json!(["gaj"]), "{ingest}");
    let Some(ckan) = entries.iter().find(|e| e["action"] == "data.read_rows" && e["request_id"] == "ckan-read-1")
    else {
        panic!("the CKAN read is not audited with its request id: {v}");
    };
    assert_eq!(ckan["client"], "127.0.0.1", "{ckan}");
    assert_eq!(ckan["details"]["departments"], json!(["gaj"]), "{ckan}");
}

/// Does any file under `dir` contain `needle` (as UTF-8 bytes)?
fn any_file_contains(dir: &std::path::Path, needle: &str) -> Vec<std::path::PathBuf> {
    let mut hits = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if std::fs::read(&p).unwrap().windows(needle.len()).any(|w| w == needle.as_bytes()) {
                hits.push(p);
            }
        }
    }
    hits
}

#[tokio::test]
async fn erased_rows_do_not_come_back() {
    let app = spawn_app().await;
    let gaj = app.login("gaj-steward").await;
    let (header, lines) = listing(40);
    let mut rows = lines.clone();
    let mut cols: Vec<String> = rows[7].split(',').map(str::to_string).collect();
    cols[1] = ERASED.into();
    rows[7] = cols.join(",");
    upload(&app, &gaj, "101/000001", "mode=append", format!("{header}\n{}\n", rows[..30].join("\n"))).await; // v0
    upload(&app, &gaj, "101/000001", "mode=append", format!("{header}\n{}\n", rows[30..].join("\n"))).await; // v1
    let id: Value = gaj.get(app.url("/api/v1/resources/101%2F000001")).send().await.unwrap().json().await.unwrap();
    let dir = app.data_dir.path().join("lake/tables").join(id["id"].as_str().unwrap());
    assert!(!any_file_contains(&dir, ERASED).is_empty(), "the byte search finds the value before the erasure");

    // Delete the row and erase it.
    let v = upload(&app, &gaj, "101/000001", "mode=delete&erase=true", format!("{header}\n{}\n", rows[7])).await;
    let erasure = &v["report"]["erasure"];
    assert!(erasure["files_vacuumed"].as_u64().unwrap() > 0, "{v}");
    let erased_before = erasure["erased_before"].as_i64().unwrap();

    // No file under the table holds it: data, change feed, log.
    let hits = any_file_contains(&dir, ERASED);
    assert!(hits.is_empty(), "files still hold the erased value: {hits:?}");
    // No older version, no change feed, no export.
    for version in 0..=erased_before {
        let r = gaj
            .get(app.url(&format!("/api/v1/resources/101%2F000001/rows?version={version}&limit=1000")))
            .send()
            .await
            .unwrap();
        let (status, body) = text(r).await;
        assert!(!body.contains(ERASED), "version {version} still shows the row ({status})");
        if version < erased_before {
            assert_eq!(status, 410, "version {version}: {body}");
            assert!(body.contains("version_erased"), "{body}");
        } else {
            assert_eq!(status, 200, "{body}");
        }
    }
    let (status, body) =
        text(gaj.get(app.url("/api/v1/resources/101%2F000001/changes?since_version=0")).send().await.unwrap()).await;
    assert!(!body.contains(ERASED) && status == 410, "the change feed: {status} {body}");
    let (status, body) = text(gaj.get(app.url("/api/v1/resources/101%2F000001/export")).send().await.unwrap()).await;
    assert_eq!(status, 200);
    assert!(!body.contains(ERASED) && body.lines().count() == 40, "39 rows and the header: {body}");
    // Still a table: new writes and their change feed work after the marker.
    upload(&app, &gaj, "101/000001", "mode=append", format!("{header}\n{}\n", listing(41).1[40])).await;
    let (status, body) = text(
        gaj.get(app.url(&format!("/api/v1/resources/101%2F000001/changes?since_version={erased_before}")))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    // The audit trail records counts, never the value.
    let admin = app.login("admin").await;
    let (_, audit) = text(admin.get(app.url("/api/v1/audit?action=data.ingest")).send().await.unwrap()).await;
    assert!(audit.contains("files_vacuumed") && !audit.contains(ERASED), "{audit}");
    // erase only goes with a mode that removes rows.
    let r = gaj
        .post(app.url("/api/v1/resources/101%2F000001/data?mode=append&erase=true"))
        .body(format!("{header}\n{}\n", rows[0]))
        .send()
        .await
        .unwrap();
    assert_error(r, 400, "validation_failed").await;
}
