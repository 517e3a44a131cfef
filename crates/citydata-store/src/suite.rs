//! The storage test suite, run by every backend against itself (see [`store_suite!`]).
//!
//! Each function receives a store on a fresh, migrated database and panics on a failed check.

use crate::{AuditFilter, NewUser, ResourceFilter, RevisionRecord, SessionRecord, Store, StoreError, TokenRecord};
use chrono::{Duration, SubsecRound, Utc};
use citydata_domain::audit::{AuditCheckpoint, AuditEvent, ChainVerifier, Outcome};
use citydata_domain::dept::{Department, DeptCode};
use citydata_domain::resource::{Audience, FieldChange, Resource, ResourceCode, ResourceDraft, ResourceInput, Slug};
use citydata_domain::user::{Membership, Role, Username};
use citydata_domain::vocab::ResourceState;
use std::sync::Arc;
use uuid::Uuid;

/// Generate one `#[tokio::test]` per suite function. `$factory` is an async fn returning
/// `Option<(Arc<dyn Store>, Guard)>`; `None` skips (e.g. PostgreSQL not configured).
#[macro_export]
macro_rules! store_suite {
    ($factory:path) => {
        $crate::store_suite!(@tests $factory;
            departments, department_parent_must_exist, users, user_with_unknown_department_writes_nothing,
            sessions, tokens, audit_chain, audit_checkpoints, audit_filters, audit_concurrent, migrations_idempotent,
            resources_roundtrip_and_uniqueness, resource_audiences_and_filters, resource_updates_are_optimistic,
            resource_delete_and_changes, ingests, grants, requests_and_inbox, webhooks_and_deliveries,
            quality_reports_and_tickets, iot_devices_and_stream_leases, sharing_profiles, service_accounts,
            session_details, files_versions_and_refs, concurrency_slots);
    };
    (@tests $factory:path; $($name:ident),*) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $name() {
                let Some((store, _guard)) = $factory().await else { return; };
                $crate::suite::$name(store).await;
            }
        )*
    };
}

mod auth;
mod files;
mod iot;
mod quality;
mod rate;
mod sharing;
pub use auth::{service_accounts, session_details};
pub use files::files_versions_and_refs;
pub use iot::iot_devices_and_stream_leases;
pub use quality::quality_reports_and_tickets;
pub use rate::concurrency_slots;
pub use sharing::sharing_profiles;

fn dept(code: &str, parent: Option<&str>) -> Department {
    Department::parse(code, &format!("部门{code}"), "321200", "city", parent).unwrap()
}

fn new_user(name: &str, ms: Vec<Membership>) -> NewUser {
    NewUser {
        id: Uuid::new_v4(),
        username: Username::parse(name).unwrap(),
        display_name: format!("用户 {name}"),
        password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into(),
        memberships: ms,
        created_at: Utc::now().trunc_subsecs(6),
    }
}

fn member(d: &str, r: Role) -> Membership {
    Membership { department: DeptCode::parse(d).unwrap(), role: r }
}

pub async fn departments(s: Arc<dyn Store>) {
    s.create_department(&dept("dsjzx", None)).await.unwrap();
    let child = Department::parse("hlq-gaj", "海陵区公安分局", "321202", "district", Some("dsjzx")).unwrap();
    s.create_department(&child).await.unwrap();
    let got = s.get_department(&child.code).await.unwrap().unwrap();
    assert_eq!(got, child);
    let all = s.list_departments().await.unwrap();
    assert_eq!(all.iter().map(|d| d.code.as_str()).collect::<Vec<_>>(), ["dsjzx", "hlq-gaj"]);
    match s.create_department(&dept("dsjzx", None)).await {
        Err(StoreError::Conflict(m)) => assert!(m.contains("dsjzx"), "{m}"),
        other => panic!("expected conflict, got {other:?}"),
    }
    assert!(s.get_department(&DeptCode::parse("nope").unwrap()).await.unwrap().is_none());
}

pub async fn department_parent_must_exist(s: Arc<dyn Store>) {
    match s.create_department(&dept("a", Some("missing"))).await {
        Err(StoreError::NotFound(m)) => assert!(m.contains("missing"), "{m}"),
        other => panic!("expected not found, got {other:?}"),
    }
    assert!(s.list_departments().await.unwrap().is_empty());
}

pub async fn users(s: Arc<dyn Store>) {
    s.create_department(&dept("gaj", None)).await.unwrap();
    s.create_department(&dept("wjw", None)).await.unwrap();
    let u = new_user("gaj-steward", vec![member("gaj", Role::Steward), member("wjw", Role::Analyst)]);
    let created = s.create_user(&u).await.unwrap();
    assert_eq!(created.memberships, u.memberships);
    let (by_name, hash) = s.get_user_by_username(&u.username).await.unwrap().unwrap();
    assert_eq!(by_name, created);
    assert_eq!(hash, u.password_hash);
    assert_eq!(s.get_user(u.id).await.unwrap().unwrap(), created);
    s.set_password_hash(u.id, "$argon2id$new").await.unwrap();
    assert_eq!(s.get_user_by_username(&u.username).await.unwrap().unwrap().1, "$argon2id$new");
    let dup = new_user("gaj-steward", vec![]);
    assert!(matches!(s.create_user(&dup).await, Err(StoreError::Conflict(_))));
    s.create_user(&new_user("admin", vec![])).await.unwrap();
    s.set_user_email(u.id, "Steward@TZ.gov.cn").await.unwrap();
    assert_eq!(s.get_user_by_email("steward@tz.gov.cn").await.unwrap().unwrap().0.id, u.id);
    let admin = s.get_user_by_username(&Username::parse("admin").unwrap()).await.unwrap().unwrap().0;
    // A user without memberships (the one-query read joins none) and one with two, in order.
    assert!(admin.memberships.is_empty() && s.get_user(admin.id).await.unwrap().unwrap().memberships.is_empty());
    assert_eq!(s.get_user(u.id).await.unwrap().unwrap().memberships, u.memberships);
    assert!(matches!(s.set_user_email(admin.id, "steward@tz.gov.cn").await, Err(StoreError::Conflict(_))));
    assert!(s.get_user_by_email("nobody@tz.gov.cn").await.unwrap().is_none());
    let names: Vec<String> = s.list_users().await.unwrap().into_iter().map(|u| u.username.to_string()).collect();
    assert_eq!(names, ["admin", "gaj-steward"]);
}

pub async fn user_with_unknown_department_writes_nothing(s: Arc<dyn Store>) {
    let u = new_user("ghost", vec![member("nowhere", Role::Analyst)]);
    match s.create_user(&u).await {
        Err(StoreError::NotFound(m)) => assert!(m.contains("nowhere"), "{m}"),
        other => panic!("expected not found, got {other:?}"),
    }
    assert!(s.get_user_by_username(&u.username).await.unwrap().is_none());
}

pub async fn sessions(s: Arc<dyn Store>) {
    let u = new_user("someone", vec![]);
    s.create_user(&u).await.unwrap();
    let now = Utc::now().trunc_subsecs(6);
    let live =
        SessionRecord { id_hash: "h1".into(), user_id: u.id, created_at: now, expires_at: now + Duration::hours(1) };
    let old = SessionRecord {
        id_hash: "h2".into(),
        user_id: u.id,
        created_at: now - Duration::hours(2),
        expires_at: now - Duration::hours(1),
    };
    s.create_session(&live).await.unwrap();
    s.create_session(&old).await.unwrap();
    assert_eq!(s.get_session("h1", now).await.unwrap(), Some(live.clone()));
    assert_eq!(s.get_session("h2", now).await.unwrap(), None, "expired sessions are not returned");
    assert_eq!(s.delete_expired_sessions(now).await.unwrap(), 1);
    s.delete_session("h1").await.unwrap();
    assert_eq!(s.get_session("h1", now).await.unwrap(), None);
}

pub async fn tokens(s: Arc<dyn Store>) {
    let a = new_user("alice", vec![]);
    let b = new_user("bob", vec![]);
    s.create_user(&a).await.unwrap();
    s.create_user(&b).await.unwrap();
    let now = Utc::now().trunc_subsecs(6);
    let t = TokenRecord {
        id: Uuid::new_v4(),
        user_id: a.id,
        name: "etl".into(),
        prefix: "cd_abcdefg".into(),
        secret_hash: "sh1".into(),
        created_at: now,
        expires_at: Some(now + Duration::days(90)),
        last_used_at: None,
        revoked_at: None,
        scopes: Some("catalog:read data:read".into()),
        resources: Some(Uuid::nil().to_string()),
    };
    s.create_token(&t).await.unwrap();
    assert_eq!(s.get_token_by_hash("sh1").await.unwrap(), Some(t.clone()));
    assert_eq!(s.list_tokens(a.id).await.unwrap(), vec![t.clone()]);
    assert!(s.list_tokens(b.id).await.unwrap().is_empty());
    assert!(!s.revoke_token(b.id, t.id, now).await.unwrap(), "another user's token cannot be revoked");
    s.touch_token(t.id, now).await.unwrap();
    assert!(s.revoke_token(a.id, t.id, now).await.unwrap());
    assert!(!s.revoke_token(a.id, t.id, now).await.unwrap(), "revoking twice reports false");
    let got = s.get_token_by_hash("sh1").await.unwrap().unwrap();
    assert_eq!(got.revoked_at, Some(now));
    assert_eq!(got.last_used_at, Some(now));
}

fn event(i: usize, actor: &str, action: &str, outcome: Outcome) -> AuditEvent {
    let mut e = AuditEvent::new(action, outcome, Utc::now());
    e.actor = Some(actor.into());
    e.department = Some("gaj".into());
    e.target = Some(format!("thing:{i}"));
    e.request_id = Some(format!("req-{i}"));
    e.client = Some("127.0.0.1".into());
    e.details = serde_json::json!({"i": i, "名称": "测试"});
    e
}

async fn verify_all(s: &dyn Store) -> u64 {
    let mut v = ChainVerifier::new();
    let mut after = 0;
    loop {
        let page = s.audit_after(after, 100).await.unwrap();
        if page.is_empty() {
            break;
        }
        for e in &page {
            v.push(e).unwrap_or_else(|b| panic!("chain broken: {b}"));
            after = e.seq;
        }
    }
    let head = s.audit_head().await.unwrap();
    v.finish(head.as_ref().map(|(s, h)| (*s, h.as_str()))).unwrap()
}

pub async fn audit_chain(s: Arc<dyn Store>) {
    assert_eq!(s.audit_head().await.unwrap(), None);
    let mut last = None;
    for i in 0..5 {
        let ev = event(i, "alice", "token.create", Outcome::Success);
        let e = s.append_audit(&ev).await.unwrap();
        assert_eq!(e.seq, i as i64 + 1);
        assert_eq!(e.event, ev, "the stored event reads back unchanged");
        last = Some((e.seq, e.hash));
    }
    assert_eq!(s.audit_head().await.unwrap(), last);
    assert_eq!(verify_all(&*s).await, 5);
    let page = s.audit_after(2, 2).await.unwrap();
    assert_eq!(page.iter().map(|e| e.seq).collect::<Vec<_>>(), [3, 4]);
}

pub async fn audit_checkpoints(s: Arc<dyn Store>) {
    assert!(s.audit_checkpoints().await.unwrap().is_empty());
    let at = Utc::now().trunc_subsecs(6);
    let c = |seq: i64, mac: &str| AuditCheckpoint { seq, hash: format!("{seq:064x}"), at, mac: mac.into() };
    s.add_audit_checkpoint(&c(200, "b")).await.unwrap();
    s.add_audit_checkpoint(&c(100, "a")).await.unwrap();
    // A second checkpoint for the same seq is ignored (two nodes may sign the same head).
    s.add_audit_checkpoint(&c(100, "other")).await.unwrap();
    let all = s.audit_checkpoints().await.unwrap();
    assert_eq!(all, vec![c(100, "a"), c(200, "b")], "ascending by seq, read back unchanged");
}

pub async fn audit_filters(s: Arc<dyn Store>) {
    s.append_audit(&event(1, "alice", "auth.login", Outcome::Success)).await.unwrap();
    s.append_audit(&event(2, "bob", "auth.login", Outcome::Failure)).await.unwrap();
    s.append_audit(&event(3, "alice", "department.create", Outcome::Denied)).await.unwrap();
    let all = s.list_audit(&AuditFilter::default(), 10, 0).await.unwrap();
    assert_eq!(all.iter().map(|e| e.seq).collect::<Vec<_>>(), [3, 2, 1], "newest first");
    let alice = AuditFilter { actor: Some("alice".into()), ..Default::default() };
    assert_eq!(s.count_audit(&alice).await.unwrap(), 2);
    let auth = AuditFilter { action: Some("auth.".into()), ..Default::default() };
    assert_eq!(s.count_audit(&auth).await.unwrap(), 2);
    let exact =
        AuditFilter { action: Some("auth.login".into()), outcome: Some(Outcome::Failure), ..Default::default() };
    let got = s.list_audit(&exact, 10, 0).await.unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].event.actor.as_deref(), Some("bob"));
    let paged = s.list_audit(&AuditFilter::default(), 1, 1).await.unwrap();
    assert_eq!(paged[0].seq, 2);
    let future = AuditFilter { from: Some(Utc::now() + Duration::hours(1)), ..Default::default() };
    assert_eq!(s.count_audit(&future).await.unwrap(), 0);
    let target = AuditFilter { target: Some("thing:3".into()), ..Default::default() };
    assert_eq!(s.count_audit(&target).await.unwrap(), 1);
}

pub async fn audit_concurrent(s: Arc<dyn Store>) {
    let mut tasks = Vec::new();
    for w in 0..8 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..40 {
                s.append_audit(&event(w * 1000 + i, &format!("writer{w}"), "x.y", Outcome::Success)).await.unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(verify_all(&*s).await, 320);
}

pub async fn migrations_idempotent(s: Arc<dyn Store>) {
    s.migrate().await.unwrap();
    s.migrate().await.unwrap();
    assert!(s.ready().await.unwrap());
}

fn resource(seq: u32, provider: &str, theme: &str, open: &str, state: ResourceState) -> Resource {
    let class = if theme == "population" { "basic" } else { "thematic" };
    let input: ResourceInput = serde_json::from_value(serde_json::json!({
        "name": format!("资源{seq}"), "abstract": "摘要", "provider": provider,
        "classification": {"class": class, "theme": theme},
        "format": {"category": "database"},
        "items": [{"name": "a", "title": "甲"}],
        "share": {"type": "unconditional"},
        "open": {"type": open, "conditions": "申请"},
        "update_cycle": "daily",
        "regions": ["321202", "321203"]
    }))
    .unwrap();
    let d = ResourceDraft::parse(&input).unwrap();
    let prefix = d.content.classification.code();
    let now = Utc::now().trunc_subsecs(6) + Duration::seconds(i64::from(seq));
    Resource {
        id: Uuid::new_v4(),
        state,
        revision: 1,
        created_at: now,
        updated_at: now,
        published_at: None,
        content: d.complete(ResourceCode::assign(&prefix, seq), Slug::parse(&format!("r-{seq}")).unwrap()),
    }
}

fn rev(r: &Resource, action: &str) -> RevisionRecord {
    RevisionRecord {
        resource_id: r.id,
        revision: r.revision,
        at: r.updated_at,
        actor: "gaj-steward".into(),
        action: crate::RevisionAction::parse(action).expect("a revision action"),
        changes: vec![FieldChange { field: "name".into(), before: serde_json::Value::Null, after: "x".into() }],
    }
}

async fn depts(s: &dyn Store) {
    for c in ["gaj", "wjw", "sthjj"] {
        s.create_department(&dept(c, None)).await.unwrap();
    }
}

pub async fn resources_roundtrip_and_uniqueness(s: Arc<dyn Store>) {
    depts(&*s).await;
    let r = resource(1, "gaj", "population", "none", ResourceState::Draft);
    s.insert_resource(&r, &rev(&r, "create")).await.unwrap();
    assert_eq!(s.get_resource(r.id).await.unwrap(), Some(r.clone()));
    for key in [r.id.to_string(), r.content.code.to_string(), r.content.slug.as_str().to_string()] {
        assert_eq!(s.find_resource(&key).await.unwrap().map(|x| x.id), Some(r.id), "by {key}");
    }
    assert!(s.find_resource("nothing").await.unwrap().is_none());
    let mut same_code = resource(1, "gaj", "population", "none", ResourceState::Draft);
    same_code.content.slug = Slug::parse("other").unwrap();
    match s.insert_resource(&same_code, &rev(&same_code, "create")).await {
        Err(StoreError::Conflict(m)) => assert!(m.contains("101/000001"), "{m}"),
        other => panic!("expected conflict, got {other:?}"),
    }
    let same_slug = resource(2, "gaj", "population", "none", ResourceState::Draft);
    let mut same_slug = same_slug;
    same_slug.content.slug = r.content.slug.clone();
    match s.insert_resource(&same_slug, &rev(&same_slug, "create")).await {
        Err(StoreError::Conflict(m)) => assert!(m.contains("slug"), "{m}"),
        other => panic!("expected conflict, got {other:?}"),
    }
    let orphan = resource(3, "nowhere", "population", "none", ResourceState::Draft);
    assert!(matches!(s.insert_resource(&orphan, &rev(&orphan, "create")).await, Err(StoreError::NotFound(_))));
    assert_eq!(s.max_code_sequence("101").await.unwrap(), 1);
    assert_eq!(s.max_code_sequence("203").await.unwrap(), 0);
    assert!(s.slug_taken("r-1").await.unwrap());
    assert!(!s.slug_taken("r-9").await.unwrap());
    let revs = s.list_revisions(r.id).await.unwrap();
    assert_eq!(revs, vec![rev(&r, "create")]);
}

pub async fn resource_audiences_and_filters(s: Arc<dyn Store>) {
    depts(&*s).await;
    let all = [
        resource(1, "gaj", "population", "none", ResourceState::Published),
        resource(2, "gaj", "population", "none", ResourceState::Draft),
        resource(3, "sthjj", "environment", "unconditional", ResourceState::Published),
        resource(4, "sthjj", "environment", "conditional", ResourceState::Withdrawn),
        resource(5, "wjw", "health", "unconditional", ResourceState::Draft),
    ];
    for r in &all {
        s.insert_resource(r, &rev(r, "create")).await.unwrap();
    }
    let names = |v: Vec<Resource>| v.into_iter().map(|r| r.content.name).collect::<Vec<_>>();
    let public = ResourceFilter::new(Audience::Public);
    assert_eq!(names(s.list_resources(&public, 100, 0).await.unwrap()), ["资源3"]);
    let wjw = ResourceFilter::new(Audience::Government { departments: vec![DeptCode::parse("wjw").unwrap()] });
    assert_eq!(names(s.list_resources(&wjw, 100, 0).await.unwrap()), ["资源5", "资源3", "资源1"], "newest first");
    assert_eq!(s.count_resources(&wjw).await.unwrap(), 3);
    let platform = ResourceFilter::new(Audience::Platform);
    assert_eq!(s.count_resources(&platform).await.unwrap(), 5);
    let mut f = ResourceFilter::new(Audience::Platform);
    f.theme = Some("population".into());
    f.state = Some("draft".into());
    assert_eq!(names(s.list_resources(&f, 100, 0).await.unwrap()), ["资源2"]);
    let mut f = ResourceFilter::new(Audience::Platform);
    f.region = Some("321203".into());
    assert_eq!(s.count_resources(&f).await.unwrap(), 5);
    f.region = Some("32120".into());
    assert_eq!(s.count_resources(&f).await.unwrap(), 0, "region matches whole codes only");
    let mut f = ResourceFilter::new(Audience::Platform);
    f.provider = Some("sthjj".into());
    f.open = Some("conditional".into());
    assert_eq!(names(s.list_resources(&f, 100, 0).await.unwrap()), ["资源4"]);
    let mut f = ResourceFilter::new(Audience::Platform);
    f.code = Some(all[2].content.code.to_string());
    assert_eq!(s.count_resources(&f).await.unwrap(), 1);
    assert_eq!(names(s.list_resources(&platform, 2, 1).await.unwrap()), ["资源4", "资源3"]);
}

pub async fn resource_updates_are_optimistic(s: Arc<dyn Store>) {
    depts(&*s).await;
    let r = resource(1, "gaj", "population", "none", ResourceState::Draft);
    s.insert_resource(&r, &rev(&r, "create")).await.unwrap();
    let mut v2 = r.clone();
    v2.revision = 2;
    v2.state = ResourceState::Published;
    v2.content.name = "改名".into();
    s.update_resource(&v2, &rev(&v2, "update")).await.unwrap();
    assert_eq!(s.get_resource(r.id).await.unwrap().unwrap().content.name, "改名");
    // A writer that read revision 1 loses.
    match s.update_resource(&v2, &rev(&v2, "update")).await {
        Err(StoreError::Conflict(_)) => {}
        other => panic!("expected conflict, got {other:?}"),
    }
    assert_eq!(s.list_revisions(r.id).await.unwrap().len(), 2);
    let other = resource(2, "gaj", "population", "none", ResourceState::Draft);
    s.insert_resource(&other, &rev(&other, "create")).await.unwrap();
    let mut clash = other.clone();
    clash.revision = 2;
    clash.content.slug = r.content.slug.clone();
    assert!(matches!(s.update_resource(&clash, &rev(&clash, "update")).await, Err(StoreError::Conflict(_))));
    assert_eq!(s.list_revisions(other.id).await.unwrap().len(), 1, "a failed update writes no revision");
}

pub async fn resource_delete_and_changes(s: Arc<dyn Store>) {
    depts(&*s).await;
    let start = s.last_catalog_change().await.unwrap();
    let r = resource(1, "gaj", "population", "none", ResourceState::Draft);
    s.insert_resource(&r, &rev(&r, "create")).await.unwrap();
    assert!(s.delete_resource(r.id).await.unwrap());
    assert!(!s.delete_resource(r.id).await.unwrap());
    assert!(s.get_resource(r.id).await.unwrap().is_none());
    assert!(s.list_revisions(r.id).await.unwrap().is_empty());
    let changes = s.catalog_changes_after(start, 10).await.unwrap();
    assert_eq!(changes.iter().map(|c| c.resource_id).collect::<Vec<_>>(), vec![r.id, r.id]);
    assert_eq!(s.last_catalog_change().await.unwrap(), changes[1].seq);
    assert_eq!(s.catalog_changes_after(changes[0].seq, 10).await.unwrap().len(), 1);
}

pub async fn ingests(s: Arc<dyn Store>) {
    depts(&*s).await;
    let r = resource(1, "gaj", "population", "none", ResourceState::Published);
    s.insert_resource(&r, &rev(&r, "create")).await.unwrap();
    let now = Utc::now().trunc_subsecs(6);
    let rec = crate::IngestRecord {
        id: Uuid::new_v4(),
        resource_id: r.id,
        idempotency_key: Some("k1".into()),
        actor: "gaj-steward".into(),
        mode: "append".into(),
        policy: "quarantine".into(),
        state: crate::IngestState::Running,
        report: None,
        error: None,
        created_at: now,
        finished_at: None,
        node: Some("node-a".into()),
        lease_until: Some(now + chrono::Duration::seconds(120)),
        body_sha256: None,
    };
    s.create_ingest(&rec).await.unwrap();
    let dup = crate::IngestRecord { id: Uuid::new_v4(), ..rec.clone() };
    assert!(matches!(s.create_ingest(&dup).await, Err(StoreError::Conflict(_))));
    let keyless = crate::IngestRecord { id: Uuid::new_v4(), idempotency_key: None, ..rec.clone() };
    s.create_ingest(&keyless).await.unwrap();
    s.create_ingest(&crate::IngestRecord { id: Uuid::new_v4(), ..keyless.clone() }).await.unwrap();
    // Leases: nothing is stale while the lease runs, except a node's own leftovers.
    assert!(s.stale_ingests(now, None, 10).await.unwrap().is_empty());
    assert_eq!(s.stale_ingests(now, Some("node-a"), 10).await.unwrap().len(), 3);
    assert!(s.stale_ingests(now, Some("node-b"), 10).await.unwrap().is_empty());
    let later = now + chrono::Duration::seconds(121);
    assert_eq!(s.stale_ingests(later, None, 10).await.unwrap().len(), 3);
    let renewed = now + chrono::Duration::seconds(300);
    assert!(s.renew_ingest_lease(keyless.id, renewed).await.unwrap());
    assert_eq!(s.stale_ingests(later, None, 10).await.unwrap().len(), 2);
    // A settle with a lease seen before the renewal loses; with the current one it wins, once.
    let interrupted = crate::IngestOutcome {
        state: crate::IngestState::Interrupted,
        report: None,
        error: Some("x"),
        body_sha256: None,
        at: now,
    };
    assert!(!s.settle_ingest(keyless.id, rec.lease_until, interrupted).await.unwrap());
    assert!(s.settle_ingest(keyless.id, Some(renewed), interrupted).await.unwrap());
    assert!(!s.settle_ingest(keyless.id, Some(renewed), interrupted).await.unwrap());
    assert!(!s.renew_ingest_lease(keyless.id, renewed).await.unwrap());
    assert_eq!(s.get_ingest(keyless.id).await.unwrap().unwrap().state, crate::IngestState::Interrupted);
    s.record_ingest_body(rec.id, "ab12").await.unwrap();
    assert_eq!(s.get_ingest(rec.id).await.unwrap().unwrap().body_sha256.as_deref(), Some("ab12"));
    let report = serde_json::json!({"rows_read": 3});
    let committed = crate::IngestOutcome {
        state: crate::IngestState::Committed,
        report: Some(&report),
        error: None,
        body_sha256: None,
        at: now,
    };
    s.finish_ingest(rec.id, committed).await.unwrap();
    let got = s.find_ingest_by_key(r.id, "k1").await.unwrap().unwrap();
    assert_eq!(got.state, crate::IngestState::Committed);
    assert_eq!(got.report, Some(report));
    assert_eq!(got.finished_at, Some(now));
    assert_eq!(got.body_sha256.as_deref(), Some("ab12"));
    assert_eq!(got.node.as_deref(), Some("node-a"));
    assert_eq!(s.stale_ingests(later, None, 10).await.unwrap().len(), 1);
    assert_eq!(s.get_ingest(rec.id).await.unwrap().unwrap().id, rec.id);
    assert_eq!(s.list_ingests(r.id, 10).await.unwrap().len(), 3);
    s.delete_ingest(rec.id).await.unwrap();
    assert!(s.find_ingest_by_key(r.id, "k1").await.unwrap().is_none());
}

pub async fn grants(s: Arc<dyn Store>) {
    depts(&*s).await;
    let r = resource(1, "gaj", "population", "none", ResourceState::Published);
    s.insert_resource(&r, &rev(&r, "create")).await.unwrap();
    let now = Utc::now().trunc_subsecs(6);
    let g = crate::GrantRecord {
        id: Uuid::new_v4(),
        resource_id: r.id,
        grantee_kind: crate::GranteeKind::Department,
        grantee: "wjw".into(),
        fields: vec!["a".into()],
        row_filter: Some("a = 'x'".into()),
        masks: [("a".to_string(), "redact".to_string())].into_iter().collect(),
        purpose: "用途".into(),
        valid_from: now,
        expires_at: Some(now + Duration::days(30)),
        granted_by: "gaj-steward".into(),
        created_at: now,
        revoked_at: None,
        revoked_by: None,
    };
    s.create_grant(&g).await.unwrap();
    let user = crate::GrantRecord {
        id: Uuid::new_v4(),
        grantee_kind: crate::GranteeKind::User,
        grantee: Uuid::nil().to_string(),
        ..g.clone()
    };
    s.create_grant(&user).await.unwrap();
    assert_eq!(s.get_grant(g.id).await.unwrap(), Some(g.clone()));
    assert_eq!(s.grants_for_resource(r.id).await.unwrap().len(), 2);
    assert_eq!(s.list_grants(Some("gaj"), None, None).await.unwrap().len(), 2);
    assert_eq!(s.list_grants(None, Some("wjw"), None).await.unwrap(), vec![g.clone()]);
    assert_eq!(s.list_grants(None, None, Some(Uuid::nil())).await.unwrap().len(), 1);
    assert_eq!(s.list_grants(Some("sthjj"), None, None).await.unwrap().len(), 0);
    assert_eq!(s.list_grants(None, None, None).await.unwrap().len(), 2);
    assert!(s.revoke_grant(g.id, now, "gaj-steward").await.unwrap());
    assert!(!s.revoke_grant(g.id, now, "gaj-steward").await.unwrap());
    let got = s.get_grant(g.id).await.unwrap().unwrap();
    assert_eq!(got.revoked_at, Some(now));
    assert_eq!(got.revoked_by.as_deref(), Some("gaj-steward"));
}

pub async fn requests_and_inbox(s: Arc<dyn Store>) {
    depts(&*s).await;
    let r = resource(1, "gaj", "population", "none", ResourceState::Published);
    s.insert_resource(&r, &rev(&r, "create")).await.unwrap();
    let now = Utc::now().trunc_subsecs(6);
    let req = crate::RequestRecord {
        id: Uuid::new_v4(),
        resource_id: r.id,
        requester: Uuid::from_u128(5),
        requester_name: "wjw-analyst".into(),
        requester_department: Some("wjw".into()),
        fields: vec!["a".into()],
        purpose: "用途".into(),
        basis: "依据".into(),
        scenario: "场景".into(),
        contact: "电话".into(),
        period_days: 90,
        state: crate::RequestState::Pending,
        reason: None,
        decided_by: None,
        decided_at: None,
        grant_id: None,
        due_at: now + Duration::days(14),
        created_at: now,
        renews_grant: Some(Uuid::from_u128(9)),
        commitment: Some("0f1e".into()),
    };
    s.create_request(&req).await.unwrap();
    assert_eq!(s.get_request(req.id).await.unwrap(), Some(req.clone()));
    assert_eq!(s.list_requests(None, Some("wjw"), None).await.unwrap().len(), 1);
    assert_eq!(s.list_requests(None, None, Some("gaj")).await.unwrap().len(), 1);
    assert_eq!(s.list_requests(Some(Uuid::from_u128(5)), None, None).await.unwrap().len(), 1);
    assert!(s.list_requests(None, Some("sthjj"), None).await.unwrap().is_empty());
    let approved = crate::RequestRecord {
        state: crate::RequestState::Approved,
        decided_by: Some("gaj-steward".into()),
        decided_at: Some(now),
        grant_id: Some(Uuid::from_u128(9)),
        ..req.clone()
    };
    assert!(s.transition_request(&approved, crate::RequestState::Pending).await.unwrap());
    assert!(
        !s.transition_request(&approved, crate::RequestState::Pending).await.unwrap(),
        "only from the expected state"
    );
    assert_eq!(s.get_request(req.id).await.unwrap().unwrap(), approved);
    let c = crate::CommentRecord {
        id: Uuid::new_v4(),
        request_id: req.id,
        author: "gaj-steward".into(),
        body: "请补充依据".into(),
        created_at: now,
    };
    s.add_comment(&c).await.unwrap();
    assert_eq!(s.list_comments(req.id).await.unwrap(), vec![c]);
    let m = crate::InboxRecord {
        id: Uuid::new_v4(),
        user_id: Uuid::from_u128(5),
        kind: "request.decided".into(),
        title: "t".into(),
        body: "b".into(),
        link: Some("/x".into()),
        created_at: now,
        read_at: None,
    };
    assert!(!s.inbox_notice_exists(&m.kind, m.link.as_deref().unwrap()).await.unwrap());
    s.push_inbox(&m).await.unwrap();
    assert!(s.inbox_notice_exists(&m.kind, m.link.as_deref().unwrap()).await.unwrap());
    assert!(!s.inbox_notice_exists("grant.expiring", m.link.as_deref().unwrap()).await.unwrap());
    assert_eq!(s.list_inbox(Uuid::from_u128(5), true, 10).await.unwrap(), vec![m.clone()]);
    assert!(!s.mark_read(Uuid::from_u128(6), m.id, now).await.unwrap(), "not someone else's");
    assert!(s.mark_read(Uuid::from_u128(5), m.id, now).await.unwrap());
    assert!(s.list_inbox(Uuid::from_u128(5), true, 10).await.unwrap().is_empty());
    assert_eq!(s.list_inbox(Uuid::from_u128(5), false, 10).await.unwrap()[0].read_at, Some(now));
}

pub async fn webhooks_and_deliveries(s: Arc<dyn Store>) {
    use crate::{DeliveryRecord, SubscriptionRecord, WebhookRecord};
    depts(&*s).await;
    let r = resource(1, "gaj", "population", "none", ResourceState::Published);
    s.insert_resource(&r, &rev(&r, "create")).await.unwrap();
    let now = Utc::now().trunc_subsecs(6);
    let hook = WebhookRecord {
        id: Uuid::new_v4(),
        department: "wjw".into(),
        url: "https://wjw.example/hook".into(),
        secret: "whsec_x".into(),
        events: vec!["request.decided".into()],
        created_by: "wjw-steward".into(),
        created_at: now,
    };
    s.create_webhook(&hook).await.unwrap();
    assert_eq!(s.get_webhook(hook.id).await.unwrap().as_ref(), Some(&hook));
    assert_eq!(s.list_webhooks(Some("wjw")).await.unwrap(), vec![hook.clone()]);
    assert!(s.list_webhooks(Some("gaj")).await.unwrap().is_empty());

    let due = DeliveryRecord {
        id: Uuid::new_v4(),
        webhook_id: hook.id,
        event: "request.decided".into(),
        payload: "{}".into(),
        state: crate::DeliveryState::Pending,
        attempts: 0,
        next_attempt_at: now,
        last_attempt_at: None,
        last_status: None,
        last_error: None,
        created_at: now,
        delivered_at: None,
    };
    let later = DeliveryRecord {
        id: Uuid::new_v4(),
        next_attempt_at: now + Duration::hours(1),
        created_at: now + Duration::seconds(1),
        ..due.clone()
    };
    s.enqueue_delivery(&due).await.unwrap();
    s.enqueue_delivery(&later).await.unwrap();
    // Only what is due is claimed, and a claimed delivery is leased away from the next claim.
    let lease = now + Duration::minutes(1);
    let claimed = s.claim_deliveries(now, lease, 10).await.unwrap();
    assert_eq!(claimed.len(), 1);
    assert_eq!(claimed[0].id, due.id);
    assert_eq!(claimed[0].next_attempt_at, lease);
    assert!(s.claim_deliveries(now, lease, 10).await.unwrap().is_empty());
    let failed_once = DeliveryRecord {
        attempts: 1,
        next_attempt_at: now + Duration::seconds(30),
        last_attempt_at: Some(now),
        last_status: Some(500),
        last_error: Some("HTTP 500".into()),
        ..claimed[0].clone()
    };
    s.finish_attempt(&failed_once).await.unwrap();
    let again = s.claim_deliveries(now + Duration::seconds(31), lease + Duration::seconds(31), 10).await.unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!((again[0].attempts, again[0].last_status), (1, Some(500)));
    let done = DeliveryRecord {
        state: crate::DeliveryState::Delivered,
        attempts: 2,
        delivered_at: Some(now),
        ..again[0].clone()
    };
    s.finish_attempt(&done).await.unwrap();
    let log = s.list_deliveries(hook.id, 10).await.unwrap();
    assert_eq!(log.len(), 2);
    assert_eq!(log[0].id, later.id, "newest first");
    assert_eq!(log[1].state, crate::DeliveryState::Delivered);

    let sub = SubscriptionRecord {
        id: Uuid::new_v4(),
        resource_id: r.id,
        department: "wjw".into(),
        webhook_id: hook.id,
        created_by: "wjw-steward".into(),
        created_at: now,
    };
    s.create_subscription(&sub).await.unwrap();
    assert_eq!(s.list_subscriptions(Some(r.id), None).await.unwrap(), vec![sub.clone()]);
    assert!(s.list_subscriptions(None, Some("gaj")).await.unwrap().is_empty());
    // Deleting the webhook takes its deliveries and subscriptions with it.
    assert!(s.delete_webhook(hook.id).await.unwrap());
    assert!(!s.delete_webhook(hook.id).await.unwrap());
    assert!(s.list_deliveries(hook.id, 10).await.unwrap().is_empty());
    assert!(s.list_subscriptions(Some(r.id), None).await.unwrap().is_empty());
}
