//! Re-identification by combination, over the whole demo catalog: whatever grant a provider
//! issues (any items, any masks that fit) and whoever reads (another department, the public,
//! a public grantee), every masked identifier in what the gate releases keeps at least
//! `MIN_CANDIDATES` candidates given everything else released beside it.

use super::{CATALOG, DemoResource};
use chrono::{Duration, Utc};
use citydata_domain::dept::DeptCode;
use citydata_domain::linkage::{MIN_CANDIDATES, Release, candidates};
use citydata_domain::mask::MaskSpec;
use citydata_domain::policy::{Action, Caller, Decision, Grant, Grantee, decide};
use citydata_domain::resource::{Resource, ResourceCode, ResourceDraft, Slug};
use citydata_domain::vocab::ResourceState;
use proptest::prelude::*;
use std::collections::BTreeMap;
use uuid::Uuid;

fn catalog() -> Vec<Resource> {
    let demo: Vec<DemoResource> = serde_json::from_str(CATALOG).expect("demo catalog parses");
    demo.iter()
        .enumerate()
        .map(|(i, d)| {
            let draft = ResourceDraft::parse(&d.input()).expect("demo resource parses");
            let code = ResourceCode::parse(&d.code).unwrap_or_else(|_| ResourceCode::assign("101", i as u32 + 1));
            Resource {
                id: Uuid::from_u128(i as u128 + 1),
                state: ResourceState::Published,
                revision: 1,
                created_at: Utc::now(),
                updated_at: Utc::now(),
                published_at: None,
                content: draft.complete(code, Slug::parse(&format!("r{i}")).expect("slug")),
            }
        })
        .collect()
}

const MASKS: [&str; 11] = [
    "none",
    "keep(6,4)",
    "keep(3,4)",
    "keep(14,0)",
    "id_card",
    "mobile",
    "date_to_year",
    "number_range(5)",
    "redact",
    "pseudonym",
    "null",
];

fn check(resource: &Resource, caller: &Caller, grants: &[Grant]) -> Result<(), TestCaseError> {
    let Decision::Allow(allow) = decide(caller, resource, Action::ReadRows, grants, Utc::now()) else { return Ok(()) };
    let release: Release<'_> = allow.fields.iter().map(|f| (f, allow.masks.get(f))).collect();
    for (item, n) in candidates(&resource.content.items, &resource.content.consistency, &release) {
        prop_assert!(
            n >= MIN_CANDIDATES,
            "{} {}: {item} keeps {n} candidates under {:?} with {:?}",
            resource.content.code,
            resource.content.name,
            allow.masks,
            allow.fields
        );
    }
    Ok(())
}

#[test]
fn default_reads_keep_every_identifier_hidden() {
    for r in catalog() {
        let other = Caller::Department { user_id: Uuid::nil(), departments: vec![DeptCode::parse("zzz").unwrap()] };
        check(&r, &other, &[]).unwrap();
        check(&r, &Caller::Anonymous, &[]).unwrap();
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2_000))]
    #[test]
    fn no_grant_rebuilds_a_masked_identifier(
        which in 0usize..64,
        field_bits in any::<u64>(),
        mask_picks in proptest::collection::vec(0usize..MASKS.len(), 16),
        public in any::<bool>(),
    ) {
        let all = catalog();
        let r = &all[which % all.len()];
        let items = &r.content.items;
        let fields = items.iter().enumerate().filter(|(i, _)| field_bits & (1 << (i % 64)) != 0).map(|(_, it)| it.name.clone()).collect();
        let masks: BTreeMap<_, _> = items
            .iter()
            .zip(mask_picks.iter().cycle())
            .filter_map(|(it, p)| {
                let m = MaskSpec::parse(MASKS[*p]).ok()?;
                m.fits(it.data_type).then(|| (it.name.clone(), m))
            })
            .collect();
        let user = Uuid::from_u128(99);
        let dept = DeptCode::parse("zzz").unwrap();
        let grantee = if public { Grantee::User(user) } else { Grantee::Department(dept.clone()) };
        let grant = Grant {
            id: Uuid::from_u128(5),
            resource_id: r.id,
            grantee,
            fields,
            row_filter: None,
            masks,
            purpose: "p".into(),
            valid_from: Utc::now() - Duration::days(1),
            expires_at: None,
            revoked_at: None,
            damaged: false,
        };
        let caller = if public { Caller::Public { user_id: user } } else { Caller::Department { user_id: user, departments: vec![dept] } };
        check(r, &caller, &[grant])?;
    }
}
