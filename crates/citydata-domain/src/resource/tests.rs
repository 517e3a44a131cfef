use super::*;
use serde_json::json;

fn population() -> ResourceInput {
    serde_json::from_value(json!({
        "name": "人口基础信息",
        "abstract": "全市户籍人口基础信息",
        "provider": "gaj",
        "classification": {"class": "basic", "theme": "人口"},
        "format": {"category": "数据库", "type": "table"},
        "items": [
            {"name": "sfzh", "title": "身份证号", "key": true, "validator": "id_card", "sensitivity": "sensitive_personal"},
            {"name": "xm", "title": "姓名", "sensitivity": "personal"},
            {"name": "csrq", "title": "出生日期", "data_type": "D"}
        ],
        "share": {"type": "有条件共享", "conditions": "用于公共服务", "method": "api"},
        "open": {"type": "none"},
        "update_cycle": "每日",
        "security_level": "general_3",
        "regions": ["321200"],
        "tags": ["人口", "户籍", "人口"]
    }))
    .unwrap()
}

#[test]
fn parses_a_full_resource() {
    let d = ResourceDraft::parse(&population()).unwrap();
    let c = &d.content;
    assert_eq!(c.classification.theme, "population");
    assert_eq!(c.classification.code(), "101");
    assert!(c.items[0].required, "key implies required");
    assert_eq!(c.items[2].data_type, DataType::Date);
    assert_eq!(c.tags, ["人口", "户籍"]);
    let content = d.complete(ResourceCode::assign("101", 1), Slug::parse("ren-kou").unwrap());
    assert_eq!(content.code.as_str(), "101/000001");
    // Round trip through the input shape.
    let again = ResourceDraft::parse(&ResourceInput::from(&content)).unwrap();
    assert_eq!(again.complete(content.code.clone(), content.slug.clone()), content);
}

#[test]
fn reports_every_missing_field() {
    let e = ResourceDraft::parse(&ResourceInput::default()).unwrap_err();
    let fields: Vec<&str> = e.0.iter().map(|f| f.field.as_str()).collect();
    for f in [
        "name",
        "abstract",
        "provider",
        "classification.class",
        "classification.theme",
        "format.category",
        "share.type",
        "open.type",
        "update_cycle",
    ] {
        assert!(fields.contains(&f), "{f} missing from {fields:?}");
    }
}

#[test]
fn important_data_cannot_be_opened() {
    let mut i = population();
    i.security_level = Some("important".into());
    i.open = Some(OpenInput { kind: Some("conditional".into()), conditions: Some("x".into()) });
    let e = ResourceDraft::parse(&i).unwrap_err();
    assert!(e.0.iter().any(|f| f.field == "open.type" && f.code == "cannot_open_important_data"), "{e}");
}

#[test]
fn sensitive_items_must_be_protected_when_open() {
    let mut i = population();
    i.open = Some(OpenInput { kind: Some("unconditional".into()), conditions: None });
    let e = ResourceDraft::parse(&i).unwrap_err();
    assert_eq!(e.0[0].field, "items[0].public");
    i.items[0].public = Some("masked".into());
    assert!(ResourceDraft::parse(&i).is_ok());
}

#[test]
fn share_conditions_and_basis_are_required() {
    let mut i = population();
    i.share = Some(ShareInput { kind: Some("none".into()), conditions: None, method: None });
    let e = ResourceDraft::parse(&i).unwrap_err();
    assert_eq!(e.0[0].field, "share.conditions");
}

#[test]
fn theme_must_fit_class_and_code_must_fit_classification() {
    let mut i = population();
    i.classification = Some(ClassificationInput { class: Some("basic".into()), theme: Some("health".into()) });
    assert_eq!(ResourceDraft::parse(&i).unwrap_err().0[0].code, "theme_class_mismatch");
    let mut i = population();
    i.code = Some("201/000001".into());
    assert_eq!(ResourceDraft::parse(&i).unwrap_err().0[0].code, "code_classification_mismatch");
    let mut i = population();
    i.classification = Some(ClassificationInput { class: Some("basic".into()), theme: Some("外星人".into()) });
    assert_eq!(ResourceDraft::parse(&i).unwrap_err().0[0].code, "unknown_theme");
}

#[test]
fn items_are_checked() {
    let mut i = population();
    i.items.push(ItemInput {
        name: Some("sfzh".into()),
        title: Some("姓名".into()),
        validator: Some("range:1..0".into()),
        ..Default::default()
    });
    i.items.push(ItemInput {
        name: Some("age".into()),
        title: Some("年龄".into()),
        data_type: Some("integer".into()),
        validator: Some("mobile".into()),
        ..Default::default()
    });
    let e = ResourceDraft::parse(&i).unwrap_err();
    let fields: Vec<&str> = e.0.iter().map(|f| f.field.as_str()).collect();
    assert!(fields.contains(&"items[3].validator"));
    assert!(fields.contains(&"items[4].validator"));
}

#[test]
fn validators_roundtrip() {
    for s in [
        "id_card",
        "uscc",
        "org_code",
        "region_code",
        "mobile",
        "bank_card",
        "email",
        "regex:^[A-Z]+$",
        "enum:男|女",
        "range:0..150",
    ] {
        assert_eq!(Validator::parse(s).unwrap().to_spec(), s);
    }
    assert!(Validator::parse("regex:(").is_err());
    assert!(Validator::parse("enum:").is_err());
    assert!(Validator::parse("luhn").is_err());
}

#[test]
fn codes_and_slugs() {
    assert!(ResourceCode::parse("101/000001").is_ok());
    assert!(ResourceCode::parse("101001001/0001").is_ok());
    for bad in ["101", "401/000001", "10/000001", "101/01", "abc/000001"] {
        assert!(ResourceCode::parse(bad).is_err(), "{bad}");
    }
    assert_eq!(ResourceCode::parse("101/000042").unwrap().sequence(), 42);
    assert!(Slug::parse("ren-kou-2").is_ok());
    assert!(Slug::parse("Ren Kou").is_err());
    assert_eq!(Slug::from_text("Air quality 2024!", "x").as_str(), "air-quality-2024");
    assert_eq!(Slug::from_text("人口基础信息", "x").as_str(), "ren-kou-ji-chu-xin-xi");
    assert_eq!(Slug::from_text("——", "r-101-000001").as_str(), "r-101-000001");
}

#[test]
fn merge_patch_follows_rfc7396() {
    let mut t = json!({"a": 1, "b": {"c": 2, "d": 3}});
    merge_patch(&mut t, &json!({"a": null, "b": {"c": 5}, "e": [1]}));
    assert_eq!(t, json!({"b": {"c": 5, "d": 3}, "e": [1]}));
}
