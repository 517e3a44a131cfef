//! Files of resources: versions per name, listing, deletion, blob references.

use super::{depts, resource, rev};
use crate::{FileRecord, Store};
use chrono::{SubsecRound, Utc};
use citydata_domain::vocab::ResourceState;
use std::sync::Arc;
use uuid::Uuid;

pub async fn files_versions_and_refs(s: Arc<dyn Store>) {
    depts(&*s).await;
    let r = resource(1, "gaj", "population", "none", ResourceState::Published);
    s.insert_resource(&r, &rev(&r, "create")).await.unwrap();
    let now = Utc::now().trunc_subsecs(6);
    let f = |name: &str, sha: &str| FileRecord {
        id: Uuid::new_v4(),
        resource_id: r.id,
        name: name.into(),
        version: 0,
        sha256: sha.into(),
        size: 42,
        kind: "pdf".into(),
        description: Some("规划文本".into()),
        deidentified: true,
        uploaded_by: "u1".into(),
        created_at: now,
    };
    let a1 = f("规划.pdf", "aa");
    let a2 = f("规划.pdf", "bb");
    let b1 = f("图.png", "aa");
    assert_eq!(s.insert_file(&a1).await.unwrap(), 1);
    assert_eq!(s.insert_file(&a2).await.unwrap(), 2);
    assert_eq!(s.insert_file(&b1).await.unwrap(), 1);
    let got = s.get_file(r.id, a1.id).await.unwrap().unwrap();
    assert_eq!(got, FileRecord { version: 1, ..a1.clone() });
    let list = s.list_files(r.id).await.unwrap();
    let names: Vec<(String, i32)> = list.iter().map(|x| (x.name.clone(), x.version)).collect();
    assert_eq!(names, vec![("图.png".into(), 1), ("规划.pdf".into(), 2), ("规划.pdf".into(), 1)]);
    assert_eq!(s.count_blob_refs("aa").await.unwrap(), 2);
    // Another resource's id never reaches this resource's file.
    assert!(s.get_file(Uuid::new_v4(), a1.id).await.unwrap().is_none());
    assert!(!s.delete_file(Uuid::new_v4(), a1.id).await.unwrap());
    assert!(s.delete_file(r.id, a1.id).await.unwrap());
    assert!(!s.delete_file(r.id, a1.id).await.unwrap());
    assert_eq!(s.count_blob_refs("aa").await.unwrap(), 1);
    // Concurrent uploads of one name get distinct versions.
    let tasks: Vec<_> = (0..4)
        .map(|_| {
            let s = s.clone();
            let x = f("并发.csv", "cc");
            tokio::spawn(async move { s.insert_file(&x).await.unwrap() })
        })
        .collect();
    let mut versions = Vec::new();
    for t in tasks {
        versions.push(t.await.unwrap());
    }
    versions.sort();
    assert_eq!(versions, vec![1, 2, 3, 4]);
}
