//! Identifier validators with their standards' check characters:
//! 公民身份号码 (GB 11643), 统一社会信用代码 (GB 32100), 组织机构代码 (GB 11714),
//! 行政区划代码 (GB/T 2260, bundled table), mobile numbers, bank cards (Luhn), email.

use chrono::{Datelike, NaiveDate};
use std::collections::HashMap;
use std::sync::OnceLock;

const GBT2260: &str = include_str!("gbt2260.tsv");

fn regions() -> &'static HashMap<&'static str, &'static str> {
    static TABLE: OnceLock<HashMap<&'static str, &'static str>> = OnceLock::new();
    TABLE.get_or_init(|| GBT2260.lines().filter(|l| !l.starts_with('#')).filter_map(|l| l.split_once('\t')).collect())
}

/// The name of a GB/T 2260 code in the bundled table (province, prefecture or county).
pub fn region_name(code: &str) -> Option<&'static str> {
    regions().get(code).copied()
}

/// `true` when `code` is a current GB/T 2260 code.
pub fn is_region_code(code: &str) -> bool {
    code.len() == 6 && region_name(code).is_some()
}

/// 性别 from an identity number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sex {
    Male,
    Female,
}

impl Sex {
    pub fn title(self) -> &'static str {
        match self {
            Self::Male => "男",
            Self::Female => "女",
        }
    }
}

/// A valid 18-character 公民身份号码 (15-digit legacy numbers are converted).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdNumber(String);

const ID_WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
const ID_CHECK: [char; 11] = ['1', '0', 'X', '9', '8', '7', '6', '5', '4', '3', '2'];

/// The ISO 7064 MOD 11-2 check character of the first 17 digits.
pub fn id_check_char(first17: &str) -> Option<char> {
    if first17.len() != 17 || !first17.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let sum: u32 = first17.bytes().zip(ID_WEIGHTS).map(|(b, w)| u32::from(b - b'0') * w).sum();
    Some(ID_CHECK[(sum % 11) as usize])
}

/// Why an identity number is not valid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdError {
    Length,
    Characters,
    CheckCharacter,
    BirthDate,
    Address,
}

impl IdError {
    pub fn message(self) -> &'static str {
        match self {
            Self::Length => "公民身份号码应为 18 位（或 15 位旧号）/ must have 18 characters (or 15 digits)",
            Self::Characters => "公民身份号码只能是数字，末位可为 X / digits only, last may be X",
            Self::CheckCharacter => "公民身份号码校验码错误（GB 11643）/ wrong check character (GB 11643)",
            Self::BirthDate => "公民身份号码中的出生日期无效 / the birth date in the number is not a real date",
            Self::Address => "公民身份号码的地址码不在 GB/T 2260 中 / unknown address code (GB/T 2260)",
        }
    }
}

fn address_known(code: &str) -> bool {
    // Numbers keep the code of the place at the time of issue, so counties since merged or
    // renamed must pass: the province and prefecture must exist.
    is_region_code(code) || is_region_code(&format!("{}00", &code[..4]))
}

impl IdNumber {
    pub fn parse(s: &str) -> Result<Self, IdError> {
        let t = s.trim().to_ascii_uppercase();
        if !t.is_ascii() {
            return Err(IdError::Characters);
        }
        let t = match t.len() {
            18 => t,
            15 => {
                if !t.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(IdError::Characters);
                }
                let first17 = format!("{}19{}", &t[..6], &t[6..]);
                let check = id_check_char(&first17).ok_or(IdError::Characters)?;
                format!("{first17}{check}")
            }
            _ => return Err(IdError::Length),
        };
        let b = t.as_bytes();
        if !b[..17].iter().all(u8::is_ascii_digit) || !(b[17].is_ascii_digit() || b[17] == b'X') {
            return Err(IdError::Characters);
        }
        if id_check_char(&t[..17]) != Some(b[17] as char) {
            return Err(IdError::CheckCharacter);
        }
        let birth = crate::cast::ymd8(&t[6..14]).ok_or(IdError::BirthDate)?;
        if birth.year() < 1800 {
            return Err(IdError::BirthDate);
        }
        if !address_known(&t[..6]) {
            return Err(IdError::Address);
        }
        Ok(Self(t))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
    pub fn birth_date(&self) -> NaiveDate {
        crate::cast::ymd8(&self.0[6..14]).expect("checked at parse")
    }
    pub fn sex(&self) -> Sex {
        if (self.0.as_bytes()[16] - b'0') % 2 == 1 { Sex::Male } else { Sex::Female }
    }
    pub fn region(&self) -> &str {
        &self.0[..6]
    }
}

/// The 31 characters of 统一社会信用代码 (no I, O, Z, S, V).
pub const USCC_ALPHABET: &str = "0123456789ABCDEFGHJKLMNPQRTUWXY";
const USCC_WEIGHTS: [u32; 17] = [1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28];

fn uscc_value(c: u8) -> Option<u32> {
    USCC_ALPHABET.bytes().position(|a| a == c).map(|p| p as u32)
}

/// The check character of the first 17 characters of a 统一社会信用代码.
pub fn uscc_check_char(first17: &str) -> Option<char> {
    if first17.len() != 17 {
        return None;
    }
    let mut sum = 0;
    for (c, w) in first17.bytes().zip(USCC_WEIGHTS) {
        sum += uscc_value(c)? * w;
    }
    let v = (31 - sum % 31) % 31;
    USCC_ALPHABET.chars().nth(v as usize)
}

/// 统一社会信用代码 (GB 32100): 18 characters of the 31-character alphabet, a valid check
/// character, and positions 9–17 a valid 组织机构代码.
pub fn is_uscc(s: &str) -> bool {
    let t = s.trim().to_ascii_uppercase();
    t.is_ascii()
        && t.len() == 18
        && t.bytes().all(|b| uscc_value(b).is_some())
        && uscc_check_char(&t[..17]) == t.chars().nth(17)
        && is_org_code(&t[8..17])
}

const ORG_WEIGHTS: [u32; 8] = [3, 7, 9, 10, 5, 8, 4, 2];

/// The check character of an 8-character 组织机构代码 body.
pub fn org_check_char(body: &str) -> Option<char> {
    if body.len() != 8 {
        return None;
    }
    let mut sum = 0;
    for (c, w) in body.bytes().zip(ORG_WEIGHTS) {
        let v = match c {
            b'0'..=b'9' => u32::from(c - b'0'),
            b'A'..=b'Z' => u32::from(c - b'A') + 10,
            _ => return None,
        };
        sum += v * w;
    }
    Some(match 11 - sum % 11 {
        10 => 'X',
        11 => '0',
        n => char::from_digit(n, 10)?,
    })
}

/// 组织机构代码 (GB 11714), with or without the hyphen before the check character.
pub fn is_org_code(s: &str) -> bool {
    let t: String = s.trim().to_ascii_uppercase().chars().filter(|c| *c != '-').collect();
    t.is_ascii() && t.len() == 9 && org_check_char(&t[..8]) == t.chars().nth(8)
}

/// Mainland mobile numbers: 11 digits starting 13–19, optionally prefixed +86 or 86.
pub fn is_mobile(s: &str) -> bool {
    let t: String = s.trim().chars().filter(|c| *c != ' ' && *c != '-').collect();
    let t = t.strip_prefix("+86").or_else(|| t.strip_prefix("0086")).unwrap_or(&t);
    let t = if t.len() == 13 { t.strip_prefix("86").unwrap_or(t) } else { t };
    t.len() == 11
        && t.bytes().all(|b| b.is_ascii_digit())
        && t.starts_with('1')
        && (b'3'..=b'9').contains(&t.as_bytes()[1])
}

/// Bank card numbers: 12–19 digits passing the Luhn check.
pub fn is_bank_card(s: &str) -> bool {
    let t: String = s.trim().chars().filter(|c| *c != ' ').collect();
    if !(12..=19).contains(&t.len()) || !t.bytes().all(|b| b.is_ascii_digit()) {
        return false;
    }
    let sum: u32 = t
        .bytes()
        .rev()
        .enumerate()
        .map(|(i, b)| {
            let d = u32::from(b - b'0');
            if i % 2 == 1 {
                let x = d * 2;
                if x > 9 { x - 9 } else { x }
            } else {
                d
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

/// A plausible email address: one `@`, a non-empty local part, a dotted domain, no spaces.
pub fn is_email(s: &str) -> bool {
    let t = s.trim();
    if t.len() > 254 || t.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return false;
    }
    let Some((local, domain)) = t.split_once('@') else { return false };
    !local.is_empty()
        && local.len() <= 64
        && !domain.contains('@')
        && domain.contains('.')
        && domain.split('.').all(|l| !l.is_empty() && l.chars().all(|c| c.is_alphanumeric() || c == '-'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn id_numbers_from_the_standard() {
        let a = IdNumber::parse("11010519491231002X").unwrap();
        assert_eq!(a.birth_date(), NaiveDate::from_ymd_opt(1949, 12, 31).unwrap());
        assert_eq!(a.sex(), Sex::Female);
        let b = IdNumber::parse("440524188001010014").unwrap();
        assert_eq!(b.sex(), Sex::Male);
        assert_eq!(IdNumber::parse("11010519491231002Y"), Err(IdError::Characters));
        assert_eq!(IdNumber::parse("110105194912310021"), Err(IdError::CheckCharacter));
        assert_eq!(IdNumber::parse("11010519491231"), Err(IdError::Length));
        // 15-digit legacy numbers convert to 18.
        let legacy = IdNumber::parse("110105491231002").unwrap();
        assert_eq!(legacy.as_str(), "11010519491231002X");
        // An impossible date (2月30日) with a correct check character still fails.
        let first17 = "11010519490230002";
        let bad = format!("{first17}{}", id_check_char(first17).unwrap());
        assert_eq!(IdNumber::parse(&bad), Err(IdError::BirthDate));
        // An unknown province fails even with a correct check character.
        let first17 = "99010519491231002";
        let bad = format!("{first17}{}", id_check_char(first17).unwrap());
        assert_eq!(IdNumber::parse(&bad), Err(IdError::Address));
    }

    #[test]
    fn uscc_and_org_codes_from_the_standards() {
        assert!(is_uscc("91350100M000100Y43"));
        assert!(!is_uscc("91350100M000100Y44"));
        assert!(!is_uscc("91350100M000100Y4"));
        assert!(!is_uscc("9135010OM000100Y43"), "O is not in the alphabet");
        assert!(is_org_code("D2143569X"));
        assert!(is_org_code("D2143569-X"));
        assert!(!is_org_code("D21435691"));
    }

    #[test]
    fn region_table() {
        assert!(is_region_code("321202"));
        assert_eq!(region_name("321200"), Some("泰州市"));
        assert!(!is_region_code("321299"));
        assert!(regions().len() > 3000);
    }

    #[test]
    fn mobiles_cards_emails() {
        assert!(is_mobile("13812345678"));
        assert!(is_mobile("+86 138 1234 5678"));
        assert!(is_mobile("8613812345678"));
        assert!(!is_mobile("12812345678"));
        assert!(!is_mobile("1381234567"));
        assert!(is_bank_card("4111111111111111"));
        assert!(!is_bank_card("4111111111111112"));
        assert!(is_email("zhang.san@tz.gov.cn"));
        assert!(!is_email("zhang san@tz.gov.cn"));
        assert!(!is_email("zhang@localhost"));
    }

    proptest! {
        #[test]
        fn generated_id_numbers_validate(days in 0i64..40000, seq in 0u32..1000, region in prop::sample::select(vec!["321202", "321203", "321281", "110105"])) {
            let birth = NaiveDate::from_ymd_opt(1920, 1, 1).unwrap() + chrono::Duration::days(days);
            let first17 = format!("{region}{}{seq:03}", birth.format("%Y%m%d"));
            let id = format!("{first17}{}", id_check_char(&first17).unwrap());
            let parsed = IdNumber::parse(&id).unwrap();
            prop_assert_eq!(parsed.birth_date(), birth);
            // Changing any one digit of the body breaks the check character.
            let mut bytes = id.clone().into_bytes();
            bytes[10] = if bytes[10] == b'9' { b'0' } else { bytes[10] + 1 };
            let changed = String::from_utf8(bytes).unwrap();
            prop_assert!(IdNumber::parse(&changed).is_err());
        }

        #[test]
        fn generated_usccs_validate(body in "[0-9A-HJ-NP-RTUWXY]{8}", head in "[1-9][1-9]") {
            let org = format!("{body}{}", org_check_char(&body).unwrap());
            let first17 = format!("{head}321200{org}");
            let code = format!("{first17}{}", uscc_check_char(&first17).unwrap());
            prop_assert!(is_uscc(&code), "{}", code);
        }

        #[test]
        fn luhn_detects_single_digit_errors(digits in "[0-9]{15}", pos in 0usize..15, delta in 1u8..10) {
            let mut best = None;
            for check in 0..10u8 {
                let s = format!("{digits}{check}");
                if is_bank_card(&s) { best = Some(s); }
            }
            let s = best.unwrap();
            let mut b = s.clone().into_bytes();
            b[pos] = b'0' + (b[pos] - b'0' + delta) % 10;
            prop_assert!(!is_bank_card(&String::from_utf8(b).unwrap()));
        }

        #[test]
        fn validators_never_panic(s in "\\PC{0,30}") {
            let _ = IdNumber::parse(&s);
            let _ = is_uscc(&s);
            let _ = is_org_code(&s);
            let _ = is_mobile(&s);
            let _ = is_bank_card(&s);
            let _ = is_email(&s);
        }
    }
}
