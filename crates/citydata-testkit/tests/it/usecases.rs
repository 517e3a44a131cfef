//! Use cases called on `Core` directly, where HTTP adds nothing: the approval's narrowing rules
//! and who sees which part of the catalog. The app still runs (its `core` is the real one, on
//! the real store), but the tests speak Rust, not JSON.

use citydata_core::catalog::ListFilter;
use citydata_core::requests::{ApproveInput, NewRequestInput};
use citydata_core::{CoreError, RequestMeta};
use citydata_domain::vocab::OpenType;
use citydata_testkit::spawn_app;
use uuid::Uuid;

fn meta() -> RequestMeta {
    RequestMeta::new(Some("usecase-test".into()), Some("test".into()))
}

fn request(fields: &[&str]) -> NewRequestInput {
    NewRequestInput {
        resource_id: "101/000001".into(),
        fields: fields.iter().map(|f| f.to_string()).collect(),
        purpose: "孕产妇健康管理".into(),
        basis: "《母婴保健法》".into(),
        scenario: "随访".into(),
        contact: "0523-0000000".into(),
        period_days: Some(180),
        accept_commitment: false,
        commitment_sha256: None,
        kind: None,
    }
}

#[tokio::test]
async fn an_approval_may_narrow_a_request_but_never_widen_it() {
    let app = spawn_app().await;
    let core = &app.core;
    let wjw = core.cli_principal("wjw-analyst").await.unwrap();
    let gaj = core.cli_principal("gaj-steward").await.unwrap();
    let asked = ["身份证号", "性别", "出生日期", "区县"];

    // An item that was not asked for: refused, and the request stays pending.
    let r = core.create_request(&meta(), &wjw, &request(&asked)).await.unwrap();
    let id = r.id.to_string();
    let widen = ApproveInput { fields: Some(vec!["姓名".into()]), ..Default::default() };
    let err = core.approve_request(&meta(), &gaj, &id, &widen).await.unwrap_err();
    assert!(matches!(err, CoreError::Validation(_)), "{err:?}");
    assert_eq!(core.get_request(&gaj, &id).await.unwrap().0.state.as_str(), "pending");

    // The requester cannot approve their own request.
    let err = core.approve_request(&meta(), &wjw, &id, &ApproveInput::default()).await.unwrap_err();
    assert!(matches!(err, CoreError::Forbidden(_)), "{err:?}");

    // A subset of the items with a row filter: the grant is exactly that.
    let narrow = ApproveInput {
        fields: Some(vec!["性别".into(), "区县".into()]),
        row_filter: Some("区县 = '海陵区'".into()),
        ..Default::default()
    };
    let decided = core.approve_request(&meta(), &gaj, &id, &narrow).await.unwrap();
    assert_eq!(decided.state.as_str(), "approved");
    let grant_id: Uuid = decided.grant_id.expect("a grant");
    let grants = core.list_grants(&wjw).await.unwrap();
    let g = grants.iter().find(|g| g.id == grant_id).expect("the requester sees the grant");
    assert_eq!(g.fields, ["xb", "qx"]);
    // Stored with item names, whatever the approver wrote.
    assert_eq!(g.row_filter.as_deref(), Some("qx = '海陵区'"));

    // Decided once: a second approval is a conflict, not a second grant.
    let err = core.approve_request(&meta(), &gaj, &id, &ApproveInput::default()).await.unwrap_err();
    assert!(matches!(err, CoreError::Conflict(_)), "{err:?}");
    let after = core.list_grants(&wjw).await.unwrap();
    assert_eq!(after.len(), grants.len());
}

#[tokio::test]
async fn each_audience_sees_its_part_of_the_catalog() {
    let app = spawn_app().await;
    let core = &app.core;
    let all = ListFilter::default();
    let (public_total, public) = core.list_resources(None, &all, 1000, 0).await.unwrap();
    let wjw = core.cli_principal("wjw-analyst").await.unwrap();
    let (gov_total, gov) = core.list_resources(Some(&wjw), &all, 1000, 0).await.unwrap();
    let admin = core.cli_principal("admin").await.unwrap();
    let (admin_total, _) = core.list_resources(Some(&admin), &all, 1000, 0).await.unwrap();

    // The public sees published open resources only; government users see the sharing
    // catalog, which holds more (the demo has resources that are shared but not open).
    assert!(public_total > 0);
    assert!(public.iter().all(|r| r.content.open.kind != OpenType::None && r.state.as_str() == "published"));
    assert!(gov_total > public_total, "government {gov_total} vs public {public_total}");
    assert!(public.iter().all(|p| gov.iter().any(|g| g.id == p.id)), "the open catalog is part of the sharing one");
    assert!(admin_total >= gov_total);
    // A resource the public cannot see is "not found" to it, not "forbidden".
    let hidden = gov.iter().find(|g| !public.iter().any(|p| p.id == g.id)).expect("a shared, not open resource");
    let err = core.get_resource(None, &hidden.id.to_string()).await.unwrap_err();
    assert!(matches!(err, CoreError::NotFound(_)), "{err:?}");
}
