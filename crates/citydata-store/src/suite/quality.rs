//! Quality reports, 纠错 tickets and reminders.

use super::{depts, resource, rev};
use crate::{QualityReportRecord, Store, TicketFilter, TicketRecord};
use chrono::{Duration, SubsecRound, Utc};
use citydata_domain::vocab::ResourceState;
use std::sync::Arc;
use uuid::Uuid;

pub async fn quality_reports_and_tickets(s: Arc<dyn Store>) {
    depts(&*s).await;
    let r = resource(1, "gaj", "population", "none", ResourceState::Published);
    s.insert_resource(&r, &rev(&r, "create")).await.unwrap();
    let now = Utc::now().trunc_subsecs(6);
    // Reports: one per version, replaced on a second put; the newest by default.
    assert!(s.get_quality_report(r.id, None).await.unwrap().is_none());
    for v in [0i64, 1, 2] {
        let rec = QualityReportRecord {
            resource_id: r.id,
            version: v,
            ingest_id: Some(Uuid::new_v4()),
            report: serde_json::json!({"version": v, "score": 90.0 + v as f64}),
            samples: serde_json::json!({}),
            created_at: now,
        };
        s.put_quality_report(&rec).await.unwrap();
    }
    let again = QualityReportRecord {
        resource_id: r.id,
        version: 1,
        ingest_id: None,
        report: serde_json::json!({"version": 1, "score": 50.0}),
        samples: serde_json::json!({"x": 1}),
        created_at: now,
    };
    s.put_quality_report(&again).await.unwrap();
    assert_eq!(s.get_quality_report(r.id, None).await.unwrap().unwrap().version, 2);
    assert_eq!(s.get_quality_report(r.id, Some(1)).await.unwrap().unwrap(), again);
    assert!(s.get_quality_report(r.id, Some(7)).await.unwrap().is_none());
    let hist = s.list_quality_reports(r.id, 2).await.unwrap();
    assert_eq!(hist.iter().map(|h| h.version).collect::<Vec<_>>(), [1, 2]);

    // Tickets: compare-and-set transitions, filters, the overdue view.
    let reporter = Uuid::new_v4();
    let t = TicketRecord {
        id: Uuid::new_v4(),
        resource_id: r.id,
        department: "gaj".into(),
        title: "地址有误".into(),
        description: "门牌号错".into(),
        record_key: Some("320".into()),
        item: Some("dz".into()),
        reporter_id: Some(reporter),
        reporter: "alice@example.com".into(),
        state: "submitted".into(),
        fixed_version: None,
        due_at: now + Duration::days(7),
        overdue_notified_at: None,
        assignee: None,
        history: serde_json::json!([{"action": "submit"}]),
        created_at: now,
        updated_at: now,
    };
    s.create_ticket(&t).await.unwrap();
    let other = TicketRecord {
        id: Uuid::new_v4(),
        department: "scjgj".into(),
        reporter_id: None,
        due_at: now - Duration::days(1),
        ..t.clone()
    };
    s.create_ticket(&other).await.unwrap();
    assert_eq!(s.get_ticket(t.id).await.unwrap().unwrap(), t);
    let f = |d: Option<&str>| TicketFilter { department: d.map(str::to_string), ..Default::default() };
    assert_eq!(s.list_tickets(&f(None), 10).await.unwrap().len(), 2);
    assert_eq!(s.list_tickets(&f(Some("gaj")), 10).await.unwrap().len(), 1);
    let overdue = TicketFilter { overdue_at: Some(now), ..Default::default() };
    assert_eq!(s.list_tickets(&overdue, 10).await.unwrap().iter().map(|x| x.id).collect::<Vec<_>>(), [other.id]);
    let mine = TicketFilter { reporter_id: Some(reporter), ..Default::default() };
    assert_eq!(s.list_tickets(&mine, 10).await.unwrap().len(), 1);
    let accepted = TicketRecord { state: "accepted".into(), updated_at: now + Duration::seconds(1), ..t.clone() };
    assert!(s.update_ticket(&accepted, "submitted").await.unwrap());
    assert!(!s.update_ticket(&accepted, "submitted").await.unwrap(), "a second writer from the old state loses");
    // Assigned without a state change: the same compare-and-set, then found by assignee.
    let assigned = TicketRecord { assignee: Some("gaj-steward".into()), ..accepted.clone() };
    assert!(s.update_ticket(&assigned, "accepted").await.unwrap());
    let theirs = TicketFilter { assignee: Some("gaj-steward".into()), ..Default::default() };
    assert_eq!(s.list_tickets(&theirs, 10).await.unwrap().iter().map(|x| x.id).collect::<Vec<_>>(), [t.id]);
    assert_eq!(s.get_ticket(t.id).await.unwrap().unwrap().assignee.as_deref(), Some("gaj-steward"));
    let accepted = assigned;
    let fixed = TicketRecord { state: "fixed".into(), fixed_version: Some(2), ..accepted.clone() };
    assert!(s.update_ticket(&fixed, "accepted").await.unwrap());
    assert_eq!(s.get_ticket(t.id).await.unwrap().unwrap().fixed_version, Some(2));
    assert_eq!(s.count_confirmed_tickets(r.id).await.unwrap(), 0);
    let confirmed = TicketRecord { state: "confirmed".into(), ..fixed };
    assert!(s.update_ticket(&confirmed, "fixed").await.unwrap());
    assert_eq!(s.count_confirmed_tickets(r.id).await.unwrap(), 1);
    let st = TicketFilter { state: Some("confirmed".into()), ..Default::default() };
    assert_eq!(s.list_tickets(&st, 10).await.unwrap().len(), 1);

    // Reminders: claimed once per (resource, period, kind), whoever asks again.
    assert!(s.claim_reminder(r.id, "2026-01-02", "overdue", now).await.unwrap());
    assert!(!s.claim_reminder(r.id, "2026-01-02", "overdue", now).await.unwrap());
    assert!(s.claim_reminder(r.id, "2026-01-02", "due_soon", now).await.unwrap());
    assert!(s.claim_reminder(r.id, "2026-01-03", "overdue", now).await.unwrap());

    // Deleting the resource removes its reports and tickets.
    assert!(s.delete_resource(r.id).await.unwrap());
    assert!(s.get_ticket(t.id).await.unwrap().is_none());
    assert!(s.get_quality_report(r.id, None).await.unwrap().is_none());
}
