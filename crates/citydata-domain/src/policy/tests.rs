//! The decision table: every caller class × share type × open type × grant state.

use super::*;
use crate::resource::{ResourceCode, ResourceDraft, ResourceInput, Slug};
use chrono::Duration;

fn resource(share: &str, open: &str, state: ResourceState) -> Resource {
    let input: ResourceInput = serde_json::from_value(serde_json::json!({
        "name": "人口基础信息", "abstract": "x", "provider": "gaj",
        "classification": {"class": "basic", "theme": "population"},
        "format": {"category": "database"},
        "items": [
            {"name": "sfzh", "title": "身份证号", "key": true, "validator": "id_card", "sensitivity": "sensitive_personal", "public": if open == "unconditional" { "excluded" } else { "" }},
            {"name": "xm", "title": "姓名", "sensitivity": "personal"},
            {"name": "qx", "title": "区县"},
            {"name": "csrq", "title": "出生日期", "data_type": "date"}
        ],
        "share": {"type": share, "conditions": "依据"},
        "open": {"type": open, "conditions": "申请"},
        "update_cycle": "daily"
    }))
    .unwrap();
    let d = ResourceDraft::parse(&input).unwrap();
    Resource {
        id: Uuid::from_u128(7),
        state,
        revision: 1,
        created_at: Utc::now(),
        updated_at: Utc::now(),
        published_at: None,
        content: d.complete(ResourceCode::assign("101", 1), Slug::parse("r").unwrap()),
    }
}

fn dept(code: &str) -> DeptCode {
    DeptCode::parse(code).unwrap()
}

fn name(n: &str) -> ItemName {
    ItemName::parse(n).unwrap()
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum GrantState {
    None,
    Active,
    Expired,
    Revoked,
    Narrowed,
    NotYetValid,
}

const WJW_USER: u128 = 42;

fn grant(state: GrantState, grantee: Grantee, now: DateTime<Utc>) -> Vec<Grant> {
    let base = Grant {
        id: Uuid::from_u128(9),
        resource_id: Uuid::from_u128(7),
        grantee,
        fields: vec![],
        row_filter: None,
        masks: BTreeMap::new(),
        purpose: "test".into(),
        valid_from: now - Duration::days(10),
        expires_at: Some(now + Duration::days(10)),
        revoked_at: None,
        damaged: false,
    };
    match state {
        GrantState::None => vec![],
        GrantState::Active => vec![base],
        GrantState::Expired => vec![Grant { expires_at: Some(now - Duration::days(1)), ..base }],
        GrantState::Revoked => vec![Grant { revoked_at: Some(now - Duration::hours(1)), ..base }],
        GrantState::NotYetValid => vec![Grant { valid_from: now + Duration::days(1), ..base }],
        GrantState::Narrowed => {
            let r = resource("conditional", "none", ResourceState::Published);
            vec![Grant {
                fields: vec![name("sfzh"), name("qx")],
                row_filter: Some(crate::filter::Filter::parse("区县 = '海陵区'", &r.content.items).unwrap()),
                ..base
            }]
        }
    }
}

/// The expected outcome, as a short string: `deny:<code>` or `allow:<fields>|<masked>|<filter?>`.
fn outcome(d: &Decision) -> String {
    match d {
        Decision::Deny(r) => format!("deny:{}", r.code()),
        Decision::Allow(a) => {
            let f: Vec<&str> = a.fields.iter().map(|f| f.as_str()).collect();
            let m: Vec<&str> = a.masks.keys().map(|f| f.as_str()).collect();
            format!("allow:{}|{}|{}", f.join(","), m.join(","), if a.row_filter.is_some() { "filtered" } else { "all" })
        }
    }
}

#[test]
fn the_decision_table() {
    let now = Utc::now();
    let provider = Caller::Department { user_id: Uuid::from_u128(1), departments: vec![dept("gaj")] };
    let other = Caller::Department { user_id: Uuid::from_u128(WJW_USER), departments: vec![dept("wjw")] };
    let public = Caller::Public { user_id: Uuid::from_u128(WJW_USER) };
    let anon = Caller::Anonymous;
    let states = [
        GrantState::None,
        GrantState::Active,
        GrantState::Expired,
        GrantState::Revoked,
        GrantState::Narrowed,
        GrantState::NotYetValid,
    ];
    let mut rows = 0;
    for share in ["unconditional", "conditional", "none"] {
        for open in ["unconditional", "conditional", "none"] {
            for state in states {
                let r = resource(share, open, ResourceState::Published);
                let dg = grant(state, Grantee::Department(dept("wjw")), now);
                let ug = grant(state, Grantee::User(Uuid::from_u128(WJW_USER)), now);
                // The provider always reads everything, unmasked, whatever the grants.
                assert_eq!(outcome(&decide(&provider, &r, Action::ReadRows, &dg, now)), "allow:sfzh,xm,qx,csrq||all");
                // Another department: by share type and grant.
                let want_dept = match (share, state) {
                    ("none", _) => "deny:not_shared".to_string(),
                    (_, GrantState::Active) => "allow:sfzh,xm,qx,csrq|sfzh,xm|all".into(),
                    // On 无条件共享 a grant only adds: a narrower one never shrinks the default.
                    ("unconditional", _) => "allow:sfzh,xm,qx,csrq|sfzh,xm|all".into(),
                    (_, GrantState::Narrowed) => "allow:sfzh,qx|sfzh|filtered".into(),
                    ("conditional", GrantState::None | GrantState::NotYetValid) => "deny:grant_required".into(),
                    ("conditional", GrantState::Expired) => "deny:grant_expired".into(),
                    ("conditional", GrantState::Revoked) => "deny:grant_revoked".into(),
                    _ => unreachable!(),
                };
                assert_eq!(
                    outcome(&decide(&other, &r, Action::ReadRows, &dg, now)),
                    want_dept,
                    "dept {share}/{open}/{state:?}"
                );
                // A department grant never serves the public, nor a user grant a department.
                assert_eq!(
                    outcome(&decide(&other, &r, Action::ReadRows, &ug, now)),
                    outcome(&decide(&other, &r, Action::ReadRows, &[], now))
                );
                // The public: by open type; sensitive personal items removed, personal masked.
                // Either way 身份证号 is gone: excluded when open, sensitive personal otherwise.
                let public_fields = "xm,qx,csrq|xm";
                let want_public = match (open, state) {
                    ("none", _) => "deny:not_open".to_string(),
                    ("unconditional", _) => format!("allow:{public_fields}|all"),
                    ("conditional", GrantState::Active) => format!("allow:{public_fields}|all"),
                    ("conditional", GrantState::Narrowed) => "allow:qx||filtered".into(),
                    ("conditional", GrantState::None | GrantState::NotYetValid) => "deny:grant_required".into(),
                    ("conditional", GrantState::Expired) => "deny:grant_expired".into(),
                    ("conditional", GrantState::Revoked) => "deny:grant_revoked".into(),
                    _ => unreachable!(),
                };
                assert_eq!(
                    outcome(&decide(&public, &r, Action::ReadRows, &ug, now)),
                    want_public,
                    "public {share}/{open}/{state:?}"
                );
                // Anonymous callers cannot hold grants.
                let want_anon = match open {
                    "none" => "deny:not_open".to_string(),
                    "unconditional" => format!("allow:{public_fields}|all"),
                    _ => "deny:grant_required".into(),
                };
                assert_eq!(
                    outcome(&decide(&anon, &r, Action::ReadRows, &ug, now)),
                    want_anon,
                    "anon {share}/{open}/{state:?}"
                );
                rows += 1;
            }
        }
    }
    assert_eq!(rows, 54);
}

#[test]
fn unpublished_resources_are_for_the_provider_only() {
    let now = Utc::now();
    for state in [ResourceState::Draft, ResourceState::Withdrawn] {
        let r = resource("unconditional", "unconditional", state);
        let other = Caller::Department { user_id: Uuid::nil(), departments: vec![dept("wjw")] };
        assert_eq!(decide(&other, &r, Action::ReadRows, &[], now), Decision::Deny(DenyReason::NotPublished));
        assert_eq!(decide(&Caller::Anonymous, &r, Action::Preview, &[], now), Decision::Deny(DenyReason::NotPublished));
        let provider = Caller::Department { user_id: Uuid::nil(), departments: vec![dept("gaj")] };
        assert!(matches!(decide(&provider, &r, Action::Export, &[], now), Decision::Allow(_)));
    }
}

#[test]
fn the_public_gets_small_cell_suppression_and_no_sql() {
    let now = Utc::now();
    let r = resource("unconditional", "unconditional", ResourceState::Published);
    let Decision::Allow(a) = decide(&Caller::Anonymous, &r, Action::Aggregate, &[], now) else { panic!() };
    assert_eq!(a.min_group_size, Some(DEFAULT_MIN_GROUP));
    assert_eq!(decide(&Caller::Anonymous, &r, Action::Sql, &[], now), Decision::Deny(DenyReason::ActionNotAllowed));
    let other = Caller::Department { user_id: Uuid::nil(), departments: vec![dept("wjw")] };
    let Decision::Allow(a) = decide(&other, &r, Action::Aggregate, &[], now) else { panic!() };
    assert_eq!(a.min_group_size, None);
}

#[test]
fn grant_masks_override_defaults_but_never_unmask_for_the_public() {
    let now = Utc::now();
    let r = resource("conditional", "conditional", ResourceState::Published);
    let mut g = grant(GrantState::Active, Grantee::Department(dept("wjw")), now);
    g[0].masks.insert(name("sfzh"), MaskSpec::Pseudonym);
    g[0].masks.insert(name("xm"), MaskSpec::Clear);
    g[0].masks.insert(name("qx"), MaskSpec::Redact);
    let other = Caller::Department { user_id: Uuid::nil(), departments: vec![dept("wjw")] };
    let Decision::Allow(a) = decide(&other, &r, Action::ReadRows, &g, now) else { panic!() };
    assert_eq!(a.masks.get(&name("sfzh")), Some(&MaskSpec::Pseudonym));
    assert_eq!(a.masks.get(&name("xm")), None, "a grant may reveal a field to a department");
    assert_eq!(a.masks.get(&name("qx")), Some(&MaskSpec::Redact));
    assert_eq!(a.masks.get(&name("sfzh")).map(|m| m.to_spec()), Some("pseudonym".into()));
    assert_eq!(a.grant_id, Some(Uuid::from_u128(9)));
    let mut ug = grant(GrantState::Active, Grantee::User(Uuid::from_u128(WJW_USER)), now);
    ug[0].masks.insert(name("xm"), MaskSpec::Clear);
    let Decision::Allow(a) =
        decide(&Caller::Public { user_id: Uuid::from_u128(WJW_USER) }, &r, Action::ReadRows, &ug, now)
    else {
        panic!()
    };
    assert_eq!(a.masks.get(&name("xm")), Some(&MaskSpec::ChineseName), "public rules still mask personal items");
    assert!(!a.fields.contains(&name("sfzh")), "and remove sensitive ones");
}
