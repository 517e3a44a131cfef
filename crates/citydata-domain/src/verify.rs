//! 核验 (verification, "usable but invisible"): the pure rules of answering "does this match?"
//! without handing over data — whether a submitted value is well-formed for its item's
//! validator, and the enumeration rule that refuses batches built to walk the key space.
//!
//! **The enumeration rule.** Two submitted keys are *neighbours* when they are equal except
//! for their last [`NEIGHBOUR_SUFFIX`] characters (compared after trimming and upper-casing).
//! For a 公民身份号码 that is the same region and birth date with another sequence number and
//! check digit — exactly what a caller walking sequential ID numbers submits. A batch is
//! refused when any group of distinct neighbours has more than [`MAX_NEIGHBOURS`] members. A
//! real batch (people of a city) almost never has six people of one district born on the
//! same day; an enumeration of one person's candidates has hundreds. Keys shorter than
//! `NEIGHBOUR_SUFFIX + 4` characters are all one group (a short key space is walked by
//! counting, so few of them may come together).
//!
//! **The repetition rule.** One key may appear at most [`MAX_REPEATS`] times in a batch:
//! submitting one ID number a thousand times with a thousand candidate birth dates or names
//! would read the stored value by elimination.

use crate::identifiers::{self, IdNumber};
use crate::resource::Validator;
use std::collections::BTreeMap;

/// How many trailing characters may differ between neighbouring keys.
pub const NEIGHBOUR_SUFFIX: usize = 4;
/// The most distinct neighbours one batch may carry.
pub const MAX_NEIGHBOURS: usize = 5;

/// How often one key may appear in a batch.
pub const MAX_REPEATS: usize = 3;

/// The repetition rule: `Some(count)` of the most repeated key when it exceeds [`MAX_REPEATS`].
pub fn repeats(keys: &[String]) -> Option<usize> {
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for k in keys {
        *counts.entry(normalize_key(k)).or_default() += 1;
    }
    let most = counts.values().copied().max().unwrap_or(0);
    (most > MAX_REPEATS).then_some(most)
}

/// Whether `value` is well-formed for `validator` (the GB validators; other validators and
/// items without one accept anything: verification compares, it does not judge quality).
pub fn well_formed(validator: Option<&Validator>, value: &str) -> bool {
    let v = value.trim();
    match validator {
        Some(Validator::IdCard) => IdNumber::parse(v).is_ok(),
        Some(Validator::Uscc) => identifiers::is_uscc(v),
        Some(Validator::OrgCode) => identifiers::is_org_code(v),
        Some(Validator::RegionCode) => identifiers::is_region_code(v),
        Some(Validator::Mobile) => identifiers::is_mobile(v),
        Some(Validator::BankCard) => identifiers::is_bank_card(v),
        Some(Validator::Email) => identifiers::is_email(v),
        _ => true,
    }
}

/// A key as compared: trimmed, upper case (an ID number's `x` is its `X`).
pub fn normalize_key(value: &str) -> String {
    value.trim().to_uppercase()
}

/// The enumeration rule over a batch's keys (see the module docs): `Some(size)` of the largest
/// neighbour group when it exceeds [`MAX_NEIGHBOURS`], else `None`.
pub fn enumeration(keys: &[String]) -> Option<usize> {
    let mut groups: BTreeMap<String, std::collections::BTreeSet<String>> = BTreeMap::new();
    for k in keys {
        let k = normalize_key(k);
        let chars: Vec<char> = k.chars().collect();
        let stem: String = if chars.len() < NEIGHBOUR_SUFFIX + 4 {
            String::new()
        } else {
            chars[..chars.len() - NEIGHBOUR_SUFFIX].iter().collect()
        };
        groups.entry(stem).or_default().insert(k);
    }
    let largest = groups.values().map(|g| g.len()).max().unwrap_or(0);
    (largest > MAX_NEIGHBOURS).then_some(largest)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identifiers::id_check_char;

    fn id(first17: &str) -> String {
        format!("{first17}{}", id_check_char(first17).unwrap())
    }

    #[test]
    fn sequential_id_numbers_are_enumeration() {
        let keys: Vec<String> = (0..10).map(|s| id(&format!("32120219900101{s:03}"))).collect();
        assert_eq!(enumeration(&keys), Some(10));
        // Five of one day pass; the sixth is refused.
        assert_eq!(enumeration(&keys[..5]), None);
        assert_eq!(enumeration(&keys[..6]), Some(6));
    }

    #[test]
    fn people_of_a_city_are_not_enumeration() {
        let keys: Vec<String> = (0..1000)
            .map(|i| {
                let day = chrono::NaiveDate::from_ymd_opt(1950, 1, 1).unwrap() + chrono::Duration::days(i * 17);
                id(&format!("32120{}{}{:03}", 2 + i % 4, day.format("%Y%m%d"), i % 500))
            })
            .collect();
        assert_eq!(enumeration(&keys), None);
    }

    #[test]
    fn repeating_one_key_is_one_neighbour_and_short_keys_group_together() {
        let same = vec![id("32120219900101001"); 50];
        assert_eq!(enumeration(&same), None);
        // ... but a key repeated to guess its other items by elimination is refused.
        assert_eq!(repeats(&same), Some(50));
        assert_eq!(repeats(&same[..3]), None);
        let short: Vec<String> = (0..6).map(|i| format!("A{i}")).collect();
        assert_eq!(enumeration(&short), Some(6));
        // Case and spaces do not make neighbours distinct.
        let x = vec!["11010519491231002x".to_string(), " 11010519491231002X".to_string()];
        assert_eq!(enumeration(&x), None);
    }

    #[test]
    fn identifiers_are_checked_with_the_gb_validators() {
        let good = id("32120219900101001");
        assert!(well_formed(Some(&Validator::IdCard), &good));
        let mut bad = good.clone();
        let c = bad.pop().unwrap();
        bad.push(if c == '0' { '1' } else { '0' });
        assert!(!well_formed(Some(&Validator::IdCard), &bad));
        assert!(!well_formed(Some(&Validator::Mobile), "1380000"));
        assert!(well_formed(None, "张三"));
    }
}
