//! Compaction (Delta optimize) of a table fed by many small appends: the files become one, and
//! nothing a reader can see changes — the rows, the earlier versions, the change feed.

use crate::support::audit_entries;
use citydata_testkit::spawn_app;
use serde_json::Value;

const CODE: &str = "201%2F000001";

async fn rows(c: &reqwest::Client, url: String) -> Vec<String> {
    let v: Value = c.get(url).send().await.unwrap().json().await.unwrap();
    let mut out: Vec<String> =
        v["rows"].as_array().unwrap_or_else(|| panic!("{v}")).iter().map(|r| r.to_string()).collect();
    out.sort();
    out
}

#[tokio::test]
async fn compaction_merges_small_files_and_changes_nothing_readers_see() {
    let app = spawn_app().await;
    let steward = app.login("wjw-steward").await;
    for batch in 0..6 {
        let csv = format!(
            "jgdm,jgmc,dj,dz,cws\nJ{batch}01,第{batch}人民医院,三级,海陵路{batch}号,500\nJ{batch}02,第{batch}中医院,二级,凤凰路{batch}号,300\n"
        );
        let r = steward
            .post(app.url(&format!("/api/v1/resources/{CODE}/data?mode=append")))
            .body(csv)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
    }
    let resource = app.store.find_resource("201/000001").await.unwrap().unwrap();
    let lake = app.core.lake().unwrap();
    assert_eq!(lake.small_files(resource.id).await.unwrap(), 6);
    let before = lake.version(resource.id).await.unwrap().unwrap();
    let url = |q: &str| app.url(&format!("/api/v1/resources/{CODE}/rows?limit=100{q}"));
    let seen = rows(&steward, url("")).await;
    assert_eq!(seen.len(), 12);

    // Below the threshold: nothing happens.
    assert_eq!(app.core.compact_table(&resource, 7).await.unwrap(), None);
    let rep = app.core.compact_table(&resource, 2).await.unwrap().expect("compacted");
    assert_eq!((rep.small_files, rep.files_removed, rep.files_added), (6, 6, 1), "{rep:?}");
    assert_eq!(rep.version, Some(before + 1));
    assert_eq!(lake.small_files(resource.id).await.unwrap(), 1);

    // The same rows now, at the old version, and no change in the change feed.
    assert_eq!(rows(&steward, url("")).await, seen);
    assert_eq!(rows(&steward, url(&format!("&version={before}"))).await, seen);
    let ch: Value = steward
        .get(app.url(&format!("/api/v1/resources/{CODE}/changes?since_version={before}")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    for kind in ["inserted", "updated", "deleted"] {
        assert_eq!(ch[kind].as_array().map(Vec::len), Some(0), "{kind}: {ch}");
    }
    assert_eq!(ch["current_version"], before + 1);
    // Audited, by the system; a second round finds nothing to do.
    let entries = audit_entries(&app, "data.compact").await;
    assert_eq!(entries.len(), 1, "{entries:?}");
    assert_eq!(entries[0]["actor"], "system");
    assert_eq!(app.core.compact_lake(2).await.unwrap(), (0, 0));
}
