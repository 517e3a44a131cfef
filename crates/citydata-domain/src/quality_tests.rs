use super::*;
use crate::resource::ItemInput;

fn items() -> Vec<InfoItem> {
    let input = |name: &str, t: &str, v: Option<&str>| ItemInput {
        name: Some(name.into()),
        title: Some(name.to_uppercase()),
        data_type: Some(t.into()),
        validator: v.map(str::to_string),
        ..Default::default()
    };
    let specs = [
        input("sfzh", "string", Some("id_card")),
        input("xm", "string", None),
        input("nl", "integer", None),
        input("csrq", "date", None),
        input("xb", "string", None),
        input("gxsj", "datetime", None),
        input("zp", "binary", None),
    ];
    let mut input: crate::resource::ResourceInput = serde_json::from_value(serde_json::json!({
        "name": "人口基础信息", "abstract": "全市户籍人口", "provider": "gaj",
        "classification": {"class": "basic", "theme": "人口"},
        "format": {"category": "数据库", "type": "table"},
        "share": {"type": "无条件共享", "method": "api"}, "open": {"type": "none"},
        "update_cycle": "每日", "security_level": "general_3"
    }))
    .unwrap();
    input.items = specs.to_vec();
    crate::resource::ResourceDraft::parse(&input).unwrap().content.items
}

fn rule(spec: &str, sev: Option<&str>) -> QualityRuleInput {
    QualityRuleInput { rule: spec.into(), severity: sev.map(str::to_string) }
}

#[test]
fn every_kind_parses_and_round_trips() {
    let items = items();
    for spec in [
        "not_null(xm)",
        "range(nl, 0, 150)",
        "regex(xm, ^[\\u4e00-\\u9fa5]{2,4}$)",
        "regex(xm, a{1,3},b)",
        "enum(xb, 男|女)",
        "length(xm, 2, 20)",
        "unique(sfzh)",
        "reference(sfzh, 101/000001, sfzh)",
        "freshness(gxsj, 30d)",
        "freshness(csrq, 12h)",
        "id_card_birth_date(sfzh, csrq)",
        "id_card_sex(sfzh, xb)",
    ] {
        let r = QualityRule::parse("r", &rule(spec, Some("reject"))).unwrap_or_else(|e| panic!("{spec}: {e}"));
        r.check("r", &items).unwrap_or_else(|e| panic!("{spec}: {e}"));
        assert_eq!(r.severity, Severity::Reject);
        let again = QualityRule::parse("r", &rule(&r.spec(), Some("reject"))).unwrap();
        assert_eq!(again, r, "{spec}");
        let json = serde_json::to_value(&r).unwrap();
        let back: QualityRule = serde_json::from_value(json).unwrap();
        assert_eq!(back, r);
    }
    assert_eq!(QualityRule::parse("r", &rule("unique(xm)", None)).unwrap().severity, Severity::Warn);
}

#[test]
fn rules_that_do_not_type_check_are_refused_with_the_field() {
    let items = items();
    let cases = [
        ("range(xm, 0, 10)", "rule_type_mismatch"),
        ("regex(nl, \\d+)", "rule_type_mismatch"),
        ("enum(nl, 1|2)", "rule_type_mismatch"),
        ("length(csrq, 1, 2)", "rule_type_mismatch"),
        ("freshness(xm, 3d)", "rule_type_mismatch"),
        ("unique(zp)", "rule_type_mismatch"),
        ("reference(csrq, 101/000001, sfzh)", "rule_type_mismatch"),
        ("id_card_sex(xm, xb)", "rule_type_mismatch"),
        ("id_card_birth_date(sfzh, xm)", "rule_type_mismatch"),
        ("not_null(nope)", "unknown_item"),
        ("id_card_sex(sfzh, nope)", "unknown_item"),
        ("regex(xm, [unclosed)", "invalid_rule"),
        ("range(nl, 10, 1)", "invalid_rule"),
        ("range(nl, a, 1)", "invalid_rule"),
        ("length(xm, -1, 3)", "invalid_rule"),
        ("enum(xb, |)", "invalid_rule"),
        ("freshness(gxsj, 30y)", "invalid_rule"),
        ("freshness(gxsj, 0d)", "invalid_rule"),
        ("reference(sfzh, nowhere, sfzh)", "invalid_rule"),
        ("not_null", "invalid_rule"),
        ("not_null(xm, 1)", "invalid_rule"),
        ("sometimes(xm)", "invalid_rule"),
    ];
    for (spec, code) in cases {
        let inputs = vec![rule("not_null(xm)", None), rule(spec, None)];
        let e = parse_rules(&inputs, &items).expect_err(spec);
        assert_eq!(e.0.len(), 1, "{spec}: {e:?}");
        assert_eq!(e.0[0].code, code, "{spec}: {:?}", e.0[0]);
        assert!(e.0[0].field.starts_with("quality_rules[1]"), "{spec}: {}", e.0[0].field);
    }
    let e = parse_rules(&[rule("not_null(xm)", Some("fatal"))], &items).unwrap_err();
    assert_eq!(e.0[0].field, "quality_rules[0].severity");
}

#[test]
fn spreadsheet_cells_round_trip() {
    let items = items();
    let rules = parse_rules(
        &[
            rule("range(nl, 0, 150)", Some("reject")),
            rule("regex(xm, a;b c)", Some("info")),
            rule("unique(sfzh)", None),
        ],
        &items,
    )
    .unwrap();
    let cell = rules_cell(&rules);
    let back = parse_rules(&parse_rules_cell(&cell), &items).unwrap();
    assert_eq!(back, rules);
    assert_eq!(parse_rules_cell("not_null(xm)")[0].severity, None);
    assert_eq!(parse_rules_cell("拒绝 not_null(xm)")[0].severity.as_deref(), Some("拒绝"));
}

#[test]
fn score_is_the_weighted_mean() {
    let w = QualityWeights::default();
    let all =
        |x: f64| Dimensions { completeness: x, validity: x, uniqueness: x, consistency: x, timeliness: x, accuracy: x };
    assert_eq!(w.score(&all(1.0)), 100.0);
    assert_eq!(w.score(&all(0.0)), 0.0);
    let d = Dimensions { completeness: 0.0, ..all(1.0) };
    assert_eq!(w.score(&d), 75.0);
    let only = QualityWeights {
        completeness: 1.0,
        validity: 0.0,
        uniqueness: 0.0,
        consistency: 0.0,
        timeliness: 0.0,
        accuracy: 0.0,
    };
    assert_eq!(only.score(&d), 0.0);
    assert!(QualityWeights { completeness: -1.0, ..w }.check().is_err());
    assert!(
        QualityWeights {
            completeness: 0.0,
            validity: 0.0,
            uniqueness: 0.0,
            consistency: 0.0,
            timeliness: 0.0,
            accuracy: 0.0
        }
        .check()
        .is_err()
    );
    assert_eq!(accuracy(0, 100), 1.0);
    assert_eq!(accuracy(1, 10_000), 0.5);
}

#[test]
fn timeliness_follows_the_cycle() {
    let t0 = DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z").unwrap().with_timezone(&Utc);
    assert_eq!(due_at(UpdateCycle::Daily, t0), Some(t0 + Duration::days(1)));
    assert_eq!(due_at(UpdateCycle::Irregular, t0), None);
    assert_eq!(timeliness(UpdateCycle::Daily, Some(t0), t0 + Duration::hours(23)), 1.0);
    assert_eq!(timeliness(UpdateCycle::Daily, Some(t0), t0 + Duration::hours(36)), 0.5);
    assert_eq!(timeliness(UpdateCycle::Daily, Some(t0), t0 + Duration::days(5)), 0.0);
    assert_eq!(timeliness(UpdateCycle::Irregular, None, t0), 1.0);
    assert_eq!(timeliness(UpdateCycle::Daily, None, t0), 0.0);
}

#[test]
fn ticket_transitions() {
    use TicketAction as A;
    use TicketState as S;
    let all = [S::Submitted, S::Accepted, S::Rejected, S::Fixed, S::Confirmed, S::Closed];
    let actions = [A::Accept, A::Reject, A::Fix, A::Confirm, A::Reopen, A::Close];
    let allowed = [
        (S::Submitted, A::Accept, S::Accepted),
        (S::Submitted, A::Reject, S::Rejected),
        (S::Accepted, A::Reject, S::Rejected),
        (S::Accepted, A::Fix, S::Fixed),
        (S::Fixed, A::Confirm, S::Confirmed),
        (S::Fixed, A::Close, S::Closed),
        (S::Rejected, A::Reopen, S::Submitted),
        (S::Fixed, A::Reopen, S::Submitted),
        (S::Closed, A::Reopen, S::Submitted),
    ];
    for s in all {
        assert_eq!(S::parse(s.as_str()), Some(s));
        for a in actions {
            let want = allowed.iter().find(|(f, x, _)| *f == s && *x == a).map(|t| t.2);
            assert_eq!(s.after(a), want, "{s:?} {a:?}");
        }
    }
}
