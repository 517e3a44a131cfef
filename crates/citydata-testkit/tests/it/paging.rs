//! Paging returns every row exactly once (issue #14): tables of random sizes, read with random
//! page sizes, with commits (appends, upserts, deletes) between the pages, on every paged
//! surface — `rows` with `next_cursor`, CKAN `datastore_search` following `_links.next`, and
//! the change feed with `next_offset` and `until_version`. Each surface must return exactly the
//! rows of the version its first page was read at. `CITYDATA_PAGING_CASES` (default 3) and
//! `CITYDATA_PAGING_SEED` reproduce or lengthen a run.

use citydata_core::demo::generate::{Register, generate_listing};
use citydata_testkit::spawn_app;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};

const ENT: &str = "102%2F000001";

/// A tiny deterministic generator (xorshift), seeded per run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + (self.next() % (hi - lo + 1) as u64) as usize
    }
}

fn listing(rows: u64, seed: u64) -> (String, Vec<String>) {
    let mut out = Vec::new();
    generate_listing(Register::Enterprise, rows, 0.0, seed, false, &mut out).unwrap();
    let text = String::from_utf8(out).unwrap();
    let mut lines = text.lines().map(str::to_string);
    let header = lines.next().unwrap();
    (header, lines.collect())
}

fn key(line: &str) -> String {
    line.split(',').next().unwrap().to_string()
}

#[tokio::test]
async fn every_paged_surface_returns_each_row_once_while_commits_arrive() {
    let cases: usize = std::env::var("CITYDATA_PAGING_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(3);
    let seed: u64 = std::env::var("CITYDATA_PAGING_SEED").ok().and_then(|v| v.parse().ok()).unwrap_or_else(|| {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64 | 1
    });
    eprintln!("CITYDATA_PAGING_SEED={seed}");
    let mut rng = Rng(seed);
    let app = spawn_app().await;
    let steward = app.login("scjgj-steward").await;
    let analyst = app.login("wjw-analyst").await;
    // 企业登记信息 is shared unconditionally: the request is granted at once.
    let r = analyst
        .post(app.url("/api/v1/requests"))
        .json(&json!({"resource_id": "102/000001", "purpose": "同步", "basis": "职责"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let (header, pool) = listing(900, seed % 1000 + 1);
    let upload = |mode: &'static str, lines: Vec<String>| {
        let body = format!("{header}\n{}\n", lines.join("\n"));
        let c = steward.clone();
        let url = app.url(&format!("/api/v1/resources/{ENT}/data?mode={mode}"));
        async move {
            let r = c.post(url).body(body).send().await.unwrap();
            assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
            let v: Value = r.json().await.unwrap();
            v["report"]["table_version"].as_i64().unwrap()
        }
    };
    for case in 0..cases {
        let n = rng.range(1, 400);
        // At most about a dozen pages, so that a case stays quick.
        let page = rng.range(n.div_ceil(12), n.div_ceil(12) + 60);
        let ctx = format!("seed {seed}, case {case}: {n} rows, pages of {page}");
        let base: Vec<String> = pool[..n].to_vec();
        let expected: BTreeSet<String> = base.iter().map(|l| key(l)).collect();
        let v0 = upload("replace", base.clone()).await;
        // Commits to make between pages: new rows, a rename, a deletion.
        let mut spare = pool[400..].to_vec();
        let mut commit = {
            let mut i = 0usize;
            let base = base.clone();
            move |rng: &mut Rng| {
                i += 1;
                if i.is_multiple_of(4) {
                    return ("append", vec![]);
                }
                let take = rng.range(1, 30);
                let lines: Vec<String> = spare.drain(..take.min(spare.len())).collect();
                let which = rng.range(0, 2);
                let (mode, body) = match which {
                    0 => ("append", lines),
                    1 => ("upsert", base.iter().take(take).map(|l| l.replacen(",", &format!(",改{i}"), 1)).collect()),
                    _ => ("delete", base.iter().rev().take(take.min(base.len())).cloned().collect()),
                };
                (mode, body)
            }
        };

        // 1. rows with next_cursor.
        let mut seen: BTreeMap<String, usize> = BTreeMap::new();
        let mut url = app.url(&format!("/api/v1/resources/{ENT}/rows?limit={page}&fields=tyshxydm"));
        let mut first_version = None;
        loop {
            let v: Value = analyst.get(&url).send().await.unwrap().json().await.unwrap();
            let rows = v["rows"].as_array().unwrap_or_else(|| panic!("{ctx}: {v}"));
            first_version.get_or_insert(v["version"].as_i64().unwrap());
            for r in rows {
                *seen.entry(r["tyshxydm"].as_str().unwrap().to_string()).or_default() += 1;
            }
            let (mode, body) = commit(&mut rng);
            if !body.is_empty() {
                upload(mode, body).await;
            }
            match v["next_cursor"].as_str() {
                Some(c) => {
                    url = app.url(&format!("/api/v1/resources/{ENT}/rows?limit={page}&fields=tyshxydm&cursor={c}"))
                }
                None => break,
            }
        }
        assert_eq!(first_version, Some(v0), "{ctx}: the first page reads the newest version");
        let twice: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).collect();
        assert!(twice.is_empty(), "{ctx}: rows: returned more than once: {twice:?}");
        let got: BTreeSet<String> = seen.keys().cloned().collect();
        assert_eq!(got, expected, "{ctx}: rows: not exactly the rows of version {v0}");

        // 2. CKAN datastore_search following _links.next, on a fresh version.
        let v1 = upload("replace", base.clone()).await;
        let mut seen: BTreeMap<String, usize> = BTreeMap::new();
        let mut url =
            app.url(&format!("/api/3/action/datastore_search?resource_id=102/000001&limit={page}&fields=tyshxydm"));
        loop {
            let v: Value = analyst.get(&url).send().await.unwrap().json().await.unwrap();
            assert_eq!(v["success"], true, "{ctx}: {v}");
            let records = v["result"]["records"].as_array().unwrap();
            assert_eq!(v["result"]["version"], v1, "{ctx}: CKAN pages stay on the first page's version");
            for r in records {
                *seen.entry(r["tyshxydm"].as_str().unwrap().to_string()).or_default() += 1;
            }
            let (mode, body) = commit(&mut rng);
            if !body.is_empty() {
                upload(mode, body).await;
            }
            if records.len() < page {
                break;
            }
            let next = v["result"]["_links"]["next"].as_str().unwrap();
            assert!(next.contains("fields=tyshxydm") && next.contains(&format!("limit={page}")), "{next}");
            url = next.to_string();
        }
        let twice: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).collect();
        assert!(twice.is_empty(), "{ctx}: CKAN: returned more than once: {twice:?}");
        let got: BTreeSet<String> = seen.keys().cloned().collect();
        assert_eq!(got, expected, "{ctx}: CKAN: not exactly the rows of version {v1}");

        // 3. The change feed after a replace: every old row deleted, every new one inserted,
        // each once, on pages pinned with until_version while commits arrive.
        let versions: Value = steward
            .get(app.url(&format!("/api/v1/resources/{ENT}/versions")))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let before = versions[0]["version"].as_i64().unwrap();
        let target: Vec<String> = pool[..rng.range(1, 400)].to_vec();
        let v2 = upload("replace", target.clone()).await;
        let mut inserted: BTreeMap<String, usize> = BTreeMap::new();
        let mut offset = 0;
        let mut until = None;
        loop {
            let mut u = format!("/api/v1/resources/{ENT}/changes?since_version={before}&limit={page}&offset={offset}");
            if let Some(t) = until {
                u.push_str(&format!("&until_version={t}"));
            }
            let v: Value = analyst.get(app.url(&u)).send().await.unwrap().json().await.unwrap();
            let current = v["current_version"].as_i64().unwrap_or_else(|| panic!("{ctx}: {v}"));
            until.get_or_insert(current);
            assert_eq!(current, v2, "{ctx}: the feed stays on the first page's versions");
            for r in v["inserted"].as_array().unwrap() {
                *inserted.entry(r["tyshxydm"].as_str().unwrap().to_string()).or_default() += 1;
            }
            let (mode, body) = commit(&mut rng);
            if !body.is_empty() {
                upload(mode, body).await;
            }
            match v["next_offset"].as_u64() {
                Some(o) => offset = o,
                None => break,
            }
        }
        let twice: Vec<_> = inserted.iter().filter(|(_, n)| **n > 1).collect();
        assert!(twice.is_empty(), "{ctx}: changes: inserted more than once: {twice:?}");
        let want: BTreeSet<String> = target.iter().map(|l| key(l)).collect();
        assert_eq!(inserted.keys().cloned().collect::<BTreeSet<_>>(), want, "{ctx}: changes: not the replace's rows");
    }
}
