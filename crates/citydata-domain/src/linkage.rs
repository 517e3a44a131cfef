//! 重识别风险 (re-identification by combination): what one response releases about a person,
//! taken together, must leave at least [`MIN_CANDIDATES`] candidates for every masked
//! identifier. A masked 公民身份号码 beside an unmasked 出生日期 and 性别 is not masked at all:
//! the number is region (6) + birth date (8) + sequence (3) + check digit (1), and the check digit
//! follows from the rest. This module counts the candidates a reader is left with and
//! generalizes the other items (or strengthens the identifier's mask) until the count holds.
//!
//! The counts are deliberate lower bounds (a prefecture has about 10 districts, a birth date
//! hidden to the year leaves 12 × 28 days), so the rule errs on the side of the person.

use crate::mask::MaskSpec;
use crate::resource::{ConsistencyRule, InfoItem, ItemName, Validator};
use crate::vocab::{DataType, Sensitivity};
use std::collections::BTreeMap;

/// The fewest candidates a masked identifier must keep given everything else in a response.
pub const MIN_CANDIDATES: u64 = 1_000;

/// What a response releases: each item it may contain and its mask (`None`: in clear).
pub type Release<'a> = BTreeMap<&'a ItemName, Option<&'a MaskSpec>>;

/// The kind of personal identifier an item holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum IdKind {
    IdNumber,
    Mobile,
    BankCard,
}

fn id_kind(item: &InfoItem) -> Option<IdKind> {
    if !matches!(item.sensitivity, Sensitivity::Personal | Sensitivity::SensitivePersonal) {
        return None;
    }
    match item.validator {
        Some(Validator::IdCard) => Some(IdKind::IdNumber),
        Some(Validator::Mobile) => Some(IdKind::Mobile),
        Some(Validator::BankCard) => Some(IdKind::BankCard),
        _ => None,
    }
}

/// Which positions of a value of `len` characters a mask shows: (first, last).
fn shown(mask: &MaskSpec, kind: IdKind, len: u32) -> (u32, u32) {
    match mask {
        MaskSpec::Clear => (len, 0),
        MaskSpec::Keep { first, last } => ((*first).min(len), (*last).min(len.saturating_sub(*first))),
        MaskSpec::IdCard => (6, 0),
        MaskSpec::Mobile => (3, 4),
        MaskSpec::BankCard => (0, 4),
        MaskSpec::ChineseName | MaskSpec::Email => (1, 0),
        // Address keeps a prefix of unknown length; for digits, assume up to a district code.
        MaskSpec::Address => (6, 0),
        // Not text masks, or masks that show nothing of the value.
        MaskSpec::DateToYear
        | MaskSpec::NumberRange { .. }
        | MaskSpec::Grid { .. }
        | MaskSpec::District
        | MaskSpec::Null
        | MaskSpec::Redact
        | MaskSpec::Pseudonym => {
            let _ = kind;
            (0, 0)
        }
    }
}

/// The role an item plays in rebuilding an identity number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Quasi {
    BirthDate,
    Sex,
    Age,
    Region,
}

fn quasi_of(item: &InfoItem, rules: &[ConsistencyRule], id: &ItemName) -> Option<Quasi> {
    for r in rules {
        match r {
            ConsistencyRule::IdCardBirthDate { id: i, date } if i == id && date == &item.name => {
                return Some(Quasi::BirthDate);
            }
            ConsistencyRule::IdCardSex { id: i, sex } if i == id && sex == &item.name => return Some(Quasi::Sex),
            _ => {}
        }
    }
    let t = item.title.as_str();
    if matches!(item.validator, Some(Validator::RegionCode))
        || t.contains("区县")
        || t.contains("地址")
        || t.contains("住址")
        || t.contains("住所")
        || t.contains("居住地")
        || t.contains("籍贯")
    {
        return Some(Quasi::Region);
    }
    if t.contains("出生") && matches!(item.data_type, DataType::Date | DataType::Datetime | DataType::String) {
        return Some(Quasi::BirthDate);
    }
    if t.contains("性别") {
        return Some(Quasi::Sex);
    }
    if t.contains("年龄") || t.contains("岁") {
        return Some(Quasi::Age);
    }
    None
}

fn pow10(n: u32) -> u64 {
    10u64.saturating_pow(n)
}

/// Candidates left for an identity number shown as `(first, last)` of 18 digits, given the
/// other items of the release.
fn id_number_candidates(
    first: u32,
    last: u32,
    id: &ItemName,
    items: &[InfoItem],
    rules: &[ConsistencyRule],
    release: &Release<'_>,
) -> u64 {
    let visible = |pos: u32| pos < first || pos >= 18 - last;
    let hidden_in = |from: u32, to: u32| (from..to).filter(|p| !visible(*p)).count() as u32;
    let mut region_known = false;
    let mut birth_known = false;
    let mut year_known = false;
    let mut year_range: Option<u64> = None;
    let mut sex_known = false;
    for item in items {
        if &item.name == id {
            continue;
        }
        let Some(mask) = release.get(&item.name) else { continue };
        match (quasi_of(item, rules, id), mask) {
            (Some(Quasi::Region), None | Some(MaskSpec::Address | MaskSpec::Clear)) => region_known = true,
            (Some(Quasi::BirthDate), None | Some(MaskSpec::Clear)) => birth_known = true,
            (Some(Quasi::BirthDate), Some(MaskSpec::DateToYear)) => year_known = true,
            // A text birth date shown in part: most of it shown is the date; its first four
            // characters are the year.
            (Some(Quasi::BirthDate), Some(MaskSpec::Keep { first, last })) if first + last >= 6 => birth_known = true,
            (Some(Quasi::BirthDate), Some(MaskSpec::Keep { first, .. })) if *first >= 4 => year_known = true,
            (Some(Quasi::Sex), None | Some(MaskSpec::Clear)) => sex_known = true,
            (Some(Quasi::Age), None | Some(MaskSpec::Clear)) => year_known = true,
            (Some(Quasi::Age), Some(MaskSpec::NumberRange { width })) => {
                year_range = Some(year_range.map_or(*width as u64, |w| w.min(*width as u64)))
            }
            _ => {}
        }
    }
    // Region: a prefecture has ~10 districts, a province ~100, the country ~3,000 codes.
    let region: u64 = if region_known {
        1
    } else {
        match hidden_in(0, 6) {
            0 | 1 => 1,
            2 | 3 => 10,
            4 | 5 => 100,
            _ => 3_000,
        }
    };
    // Birth date: year (positions 6–9, ~100 plausible years), month (10–11), day (12–13).
    let birth: u64 = if birth_known {
        1
    } else {
        let year = if year_known || hidden_in(6, 10) == 0 {
            1
        } else {
            year_range.unwrap_or(100).min(pow10(hidden_in(6, 10)))
        };
        let month = if hidden_in(10, 12) == 0 { 1 } else { 12.min(pow10(hidden_in(10, 12))) };
        let day = if hidden_in(12, 14) == 0 { 1 } else { 28.min(pow10(hidden_in(12, 14))) };
        year * month * day
    };
    // Sequence: three digits, the last of which is odd for men and even for women.
    let seq_hidden = hidden_in(14, 17);
    let mut seq = pow10(seq_hidden);
    if sex_known && !visible(16) {
        seq /= 2;
    }
    // The check digit follows from the other 17.
    region.saturating_mul(birth).saturating_mul(seq.max(1))
}

/// Candidates left for each masked identifier of the release, in item order.
pub fn candidates(items: &[InfoItem], rules: &[ConsistencyRule], release: &Release<'_>) -> Vec<(ItemName, u64)> {
    let mut out = Vec::new();
    for item in items {
        let Some(kind) = id_kind(item) else { continue };
        let Some(mask) = release.get(&item.name) else { continue };
        let Some(mask) = mask.filter(|m| **m != MaskSpec::Clear) else { continue };
        let n = match kind {
            IdKind::IdNumber => {
                let (f, l) = shown(mask, kind, 18);
                id_number_candidates(f, l, &item.name, items, rules, release)
            }
            IdKind::Mobile => {
                let (f, l) = shown(mask, kind, 11);
                pow10(11u32.saturating_sub(f + l))
            }
            IdKind::BankCard => {
                // 16–19 digits with a Luhn check digit: at least 16.
                let (f, l) = shown(mask, kind, 16);
                let hidden = 16u32.saturating_sub(f + l);
                (pow10(hidden) / 10).max(1)
            }
        };
        out.push((item.name.clone(), n));
    }
    out
}

/// The generalization steps tried, weakest first, when an identifier keeps too few candidates:
/// birth dates to years, ages to decades, the identifier to its default mask, then redacted,
/// then the birth date, sex and region items nulled.
pub fn enforce(
    items: &[InfoItem],
    rules: &[ConsistencyRule],
    fields: &[ItemName],
    masks: &mut BTreeMap<ItemName, MaskSpec>,
) -> Vec<ItemName> {
    let mut changed: Vec<ItemName> = Vec::new();
    for _round in 0..8 {
        let release: Release<'_> = fields.iter().map(|f| (f, masks.get(f))).collect();
        let weak: Vec<ItemName> = candidates(items, rules, &release)
            .into_iter()
            .filter(|(_, n)| *n < MIN_CANDIDATES)
            .map(|(i, _)| i)
            .collect();
        drop(release);
        let Some(id) = weak.first() else { return changed };
        let id_item = items.iter().find(|i| &i.name == id).expect("candidates come from items");
        let quasi = |want: Quasi| -> Vec<&InfoItem> {
            items.iter().filter(|i| fields.contains(&i.name) && quasi_of(i, rules, id) == Some(want)).collect()
        };
        let set =
            |name: &ItemName, m: MaskSpec, masks: &mut BTreeMap<ItemName, MaskSpec>, changed: &mut Vec<ItemName>| {
                let current = masks.get(name).cloned().unwrap_or(MaskSpec::Clear);
                if m.strength() > current.strength() {
                    masks.insert(name.clone(), m);
                    if !changed.contains(name) {
                        changed.push(name.clone());
                    }
                    true
                } else {
                    false
                }
            };
        let mut progressed = false;
        for b in quasi(Quasi::BirthDate) {
            if matches!(b.data_type, DataType::Date | DataType::Datetime) {
                progressed |= set(&b.name, MaskSpec::DateToYear, masks, &mut changed);
            } else {
                // A text date: keep its year (replacing a mask that shows more), else hide it.
                let year = MaskSpec::Keep { first: 4, last: 0 };
                match masks.get(&b.name) {
                    Some(MaskSpec::Keep { first, last }) if first + last > 4 => {
                        masks.insert(b.name.clone(), year);
                        if !changed.contains(&b.name) {
                            changed.push(b.name.clone());
                        }
                        progressed = true;
                    }
                    _ => progressed |= set(&b.name, year, masks, &mut changed),
                }
            }
        }
        for a in quasi(Quasi::Age) {
            let m = if matches!(a.data_type, DataType::Integer | DataType::Decimal) {
                MaskSpec::NumberRange { width: 10 }
            } else {
                MaskSpec::Redact
            };
            progressed |= set(&a.name, m, masks, &mut changed);
        }
        if progressed {
            continue;
        }
        let default = MaskSpec::default_for(id_item);
        if masks.get(id).is_some_and(|m| *m != default && default.strength() >= m.strength()) {
            masks.insert(id.clone(), default);
            if !changed.contains(id) {
                changed.push(id.clone());
            }
            continue;
        }
        if set(id, MaskSpec::Redact, masks, &mut changed) {
            continue;
        }
        for q in [Quasi::BirthDate, Quasi::Sex, Quasi::Region, Quasi::Age] {
            for i in quasi(q) {
                progressed |= set(&i.name, MaskSpec::Null, masks, &mut changed);
            }
        }
        if !progressed {
            return changed;
        }
    }
    changed
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resource::{ResourceDraft, ResourceInput};

    fn register() -> (Vec<InfoItem>, Vec<ConsistencyRule>) {
        let input: ResourceInput = serde_json::from_value(serde_json::json!({
            "name": "人口基础信息", "abstract": "x", "provider": "gaj",
            "classification": {"class": "basic", "theme": "population"},
            "format": {"category": "database"},
            "items": [
                {"name": "sfzh", "title": "身份证号", "key": true, "validator": "id_card", "sensitivity": "sensitive_personal"},
                {"name": "xb", "title": "性别"},
                {"name": "csrq", "title": "出生日期", "data_type": "date"},
                {"name": "qx", "title": "区县"},
                {"name": "sjh", "title": "手机号", "validator": "mobile", "sensitivity": "personal"}
            ],
            "consistency": ["id_card_birth_date(sfzh, csrq)", "id_card_sex(sfzh, xb)"],
            "share": {"type": "conditional", "conditions": "依据"},
            "open": {"type": "none"},
            "update_cycle": "daily"
        }))
        .unwrap();
        let d = ResourceDraft::parse(&input).unwrap();
        let c = d.complete(crate::resource::ResourceCode::assign("101", 1), crate::resource::Slug::parse("r").unwrap());
        (c.items, c.consistency)
    }

    fn n(s: &str) -> ItemName {
        ItemName::parse(s).unwrap()
    }

    #[test]
    fn the_old_id_mask_beside_a_birth_date_gives_the_number_away() {
        let (items, rules) = register();
        let fields: Vec<ItemName> = items.iter().map(|i| i.name.clone()).collect();
        let old = MaskSpec::Keep { first: 6, last: 4 };
        let masks: BTreeMap<ItemName, MaskSpec> = [(n("sfzh"), old)].into();
        let release: Release<'_> = fields.iter().map(|f| (f, masks.get(f))).collect();
        let c = candidates(&items, &rules, &release);
        assert_eq!(c[0], (n("sfzh"), 1), "region, birth date, sequence and check digit all known");
    }

    #[test]
    fn enforce_generalizes_the_birth_date_first() {
        let (items, rules) = register();
        let fields: Vec<ItemName> = items.iter().map(|i| i.name.clone()).collect();
        let mut masks: BTreeMap<ItemName, MaskSpec> = [(n("sfzh"), MaskSpec::IdCard)].into();
        let changed = enforce(&items, &rules, &fields, &mut masks);
        assert_eq!(changed, vec![n("csrq")]);
        assert_eq!(masks.get(&n("csrq")), Some(&MaskSpec::DateToYear));
        let release: Release<'_> = fields.iter().map(|f| (f, masks.get(f))).collect();
        assert!(candidates(&items, &rules, &release).iter().all(|(_, c)| *c >= MIN_CANDIDATES));
    }

    #[test]
    fn a_weak_mobile_mask_is_strengthened() {
        let (items, rules) = register();
        let fields = vec![n("sjh")];
        let mut masks: BTreeMap<ItemName, MaskSpec> = [(n("sjh"), MaskSpec::Keep { first: 7, last: 3 })].into();
        enforce(&items, &rules, &fields, &mut masks);
        assert_eq!(masks.get(&n("sjh")), Some(&MaskSpec::Mobile));
    }

    #[test]
    fn a_text_birth_date_shown_in_part_counts_as_shown() {
        let (mut items, rules) = register();
        for i in &mut items {
            if i.name.as_str() == "csrq" {
                i.data_type = DataType::String;
            }
        }
        let fields: Vec<ItemName> = items.iter().map(|i| i.name.clone()).collect();
        let mut masks: BTreeMap<ItemName, MaskSpec> =
            [(n("sfzh"), MaskSpec::IdCard), (n("csrq"), MaskSpec::Keep { first: 10, last: 0 })].into();
        let release: Release<'_> = fields.iter().map(|f| (f, masks.get(f))).collect();
        assert!(candidates(&items, &rules, &release)[0].1 < MIN_CANDIDATES);
        drop(release);
        enforce(&items, &rules, &fields, &mut masks);
        assert_eq!(masks.get(&n("csrq")), Some(&MaskSpec::Keep { first: 4, last: 0 }));
    }

    #[test]
    fn items_not_released_do_not_count() {
        let (items, rules) = register();
        let fields = vec![n("sfzh"), n("qx")];
        let mut masks: BTreeMap<ItemName, MaskSpec> = [(n("sfzh"), MaskSpec::IdCard)].into();
        assert!(enforce(&items, &rules, &fields, &mut masks).is_empty());
    }
}
