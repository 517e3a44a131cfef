//! 脱敏 kernels: each `MaskSpec` as a function over a whole Arrow array, correct on multi-byte
//! Chinese text, NULL in → NULL out. The output of the text masks is `Utf8`; `date_to_year`
//! gives `Int32` years, `number_range` gives `Utf8` ranges, `pseudonym` gives `Utf8`.

use crate::error::{LakeError, Result};
use arrow::array::{Array, ArrayRef, AsArray, Int32Builder, StringArray, StringBuilder, new_null_array};
use arrow::datatypes::{DataType, Date32Type};
use base64::Engine;
use citydata_domain::mask::MaskSpec;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::sync::Arc;

const STAR: char = '*';

fn stars(out: &mut String, n: usize) {
    out.extend(std::iter::repeat_n(STAR, n));
}

/// Keep `first` and `last` characters; if the value is not longer than that, hide it all.
fn keep(s: &str, first: usize, last: usize, out: &mut String) {
    let n = s.chars().count();
    if n <= first + last {
        stars(out, n);
        return;
    }
    out.extend(s.chars().take(first));
    stars(out, n - first - last);
    out.extend(s.chars().skip(n - last));
}

/// Mask one text value with a text mask; `None` for masks that are not text masks.
pub fn mask_text(spec: &MaskSpec, s: &str, out: &mut String) {
    out.clear();
    match spec {
        MaskSpec::Keep { first, last } => keep(s, *first as usize, *last as usize, out),
        MaskSpec::ChineseName => {
            let n = s.chars().count();
            if n <= 1 {
                stars(out, n.max(1));
            } else {
                out.extend(s.chars().take(1));
                stars(out, n - 1);
            }
        }
        MaskSpec::IdCard => {
            let n = s.chars().count();
            if n == 18 || n == 15 { keep(s, 6, 0, out) } else { keep(s, 1, 0, out) }
        }
        MaskSpec::Mobile => {
            let digits = s.chars().filter(|c| c.is_ascii_digit()).count();
            if digits >= 11 {
                let n = s.chars().count();
                // Keep the 3 digits after any +86 prefix and the last 4.
                let lead = n - 8;
                keep(s, lead.min(n), 4, out)
            } else {
                keep(s, 0, 0, out)
            }
        }
        MaskSpec::Address => {
            let chars: Vec<char> = s.chars().collect();
            let cut = chars.iter().position(|c| *c == '区' || *c == '县').or_else(|| {
                let mut last_city = None;
                for (i, c) in chars.iter().enumerate().take(12) {
                    if *c == '市' {
                        last_city = Some(i);
                    }
                }
                last_city
            });
            match cut {
                Some(i) if i + 1 < chars.len() => {
                    out.extend(&chars[..=i]);
                    stars(out, chars.len() - i - 1);
                }
                _ => stars(out, chars.len()),
            }
        }
        MaskSpec::BankCard => keep(s, 0, 4, out),
        MaskSpec::Email => match s.split_once('@') {
            Some((local, domain)) if !local.is_empty() => {
                out.extend(local.chars().take(1));
                out.push_str("***@");
                out.push_str(domain);
            }
            _ => out.push_str("***"),
        },
        MaskSpec::Redact => out.push_str("***"),
        MaskSpec::Clear => out.push_str(s),
        MaskSpec::Grid { meters } => match citydata_domain::geo_cell::parse_text(s) {
            Ok(g) => out.push_str(&citydata_domain::geo_cell::snap(&g, f64::from(*meters)).to_wkt()),
            Err(_) => stars(out, s.chars().count()),
        },
        // The district mask needs the boundary's districts, which text masking has not.
        MaskSpec::District => stars(out, s.chars().count()),
        // Non-text masks on text: hide it.
        MaskSpec::DateToYear | MaskSpec::NumberRange { .. } | MaskSpec::Null | MaskSpec::Pseudonym => {
            stars(out, s.chars().count())
        }
    }
}

/// The short keyed pseudonym of a value: HMAC-SHA256 with `secret`, base64url of 12 bytes.
pub fn pseudonym(secret: &[u8], value: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes keys of any size");
    mac.update(value.trim().to_uppercase().as_bytes());
    let tag = mac.finalize().into_bytes();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&tag[..12])
}

/// The Arrow type a mask produces from `input`.
pub fn output_type(spec: &MaskSpec, input: &DataType) -> DataType {
    match spec {
        MaskSpec::Clear => input.clone(),
        MaskSpec::Null => input.clone(),
        MaskSpec::DateToYear if matches!(input, DataType::Date32 | DataType::Timestamp(..)) => DataType::Int32,
        _ => DataType::Utf8,
    }
}

/// Apply `spec` to a whole array.
pub fn apply(spec: &MaskSpec, array: &ArrayRef, secret: &[u8]) -> Result<ArrayRef> {
    let n = array.len();
    match spec {
        MaskSpec::Clear => return Ok(array.clone()),
        MaskSpec::Grid { meters } => return crate::spatial::grid(array, *meters),
        // Without the districts (see `governed`, which passes them) nothing is shown.
        MaskSpec::District => return Ok(arrow::array::new_null_array(&DataType::Utf8, n)),
        MaskSpec::Null => return Ok(new_null_array(array.data_type(), n)),
        MaskSpec::DateToYear => {
            let mut b = Int32Builder::with_capacity(n);
            match array.data_type() {
                DataType::Date32 => {
                    let a = array.as_primitive::<Date32Type>();
                    for i in 0..n {
                        if a.is_null(i) {
                            b.append_null();
                        } else {
                            let d = chrono::NaiveDate::from_ymd_opt(1970, 1, 1).expect("epoch")
                                + chrono::Duration::days(i64::from(a.value(i)));
                            b.append_value(chrono::Datelike::year(&d));
                        }
                    }
                    return Ok(Arc::new(b.finish()));
                }
                DataType::Timestamp(..) => {
                    let a = arrow::compute::cast(array, &DataType::Int64)?;
                    let a = a.as_primitive::<arrow::datatypes::Int64Type>();
                    for i in 0..n {
                        if a.is_null(i) {
                            b.append_null();
                        } else {
                            let t = chrono::DateTime::from_timestamp_micros(
                                a.value(i)
                                    + i64::from(citydata_domain::cast::local_offset().local_minus_utc()) * 1_000_000,
                            )
                            .unwrap_or_default();
                            b.append_value(chrono::Datelike::year(&t));
                        }
                    }
                    return Ok(Arc::new(b.finish()));
                }
                _ => {}
            }
        }
        MaskSpec::NumberRange { width } => {
            let w = f64::from(*width);
            let f = arrow::compute::cast(array, &DataType::Float64)?;
            let f = f.as_primitive::<arrow::datatypes::Float64Type>();
            let mut b = StringBuilder::with_capacity(n, n * 8);
            for i in 0..n {
                if f.is_null(i) {
                    b.append_null();
                } else {
                    let lo = (f.value(i) / w).floor() * w;
                    b.append_value(format!("{}-{}", lo as i64, (lo + w) as i64 - 1));
                }
            }
            return Ok(Arc::new(b.finish()));
        }
        _ => {}
    }
    let text: ArrayRef = if array.data_type() == &DataType::Utf8 {
        array.clone()
    } else {
        arrow::compute::cast(array, &DataType::Utf8)?
    };
    let a: &StringArray =
        text.as_any().downcast_ref().ok_or_else(|| LakeError::Other("mask input is not text".into()))?;
    let mut b = StringBuilder::with_capacity(n, a.value_data().len() + n);
    let mut buf = String::new();
    for i in 0..n {
        if a.is_null(i) {
            b.append_null();
            continue;
        }
        if *spec == MaskSpec::Pseudonym {
            b.append_value(pseudonym(secret, a.value(i)));
        } else {
            mask_text(spec, a.value(i), &mut buf);
            b.append_value(&buf);
        }
    }
    Ok(Arc::new(b.finish()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn m(spec: &str, s: &str) -> String {
        let mut out = String::new();
        mask_text(&MaskSpec::parse(spec).unwrap(), s, &mut out);
        out
    }

    #[test]
    fn the_conventions() {
        assert_eq!(m("chinese_name", "张三丰"), "张**");
        assert_eq!(m("chinese_name", "张"), "*");
        assert_eq!(m("id_card", "32120219900101001X"), "321202************");
        assert_eq!(m("mobile", "13812341234"), "138****1234");
        assert_eq!(m("mobile", "+8613812341234"), "+86138****1234");
        assert_eq!(m("address", "江苏省泰州市海陵区鼓楼路322号"), "江苏省泰州市海陵区*******");
        assert_eq!(m("address", "泰州市靖江市人民路1号"), "泰州市靖江市*****");
        assert_eq!(m("bank_card", "6222020200112233445"), "***************3445");
        assert_eq!(m("email", "zhangsan@tz.gov.cn"), "z***@tz.gov.cn");
        assert_eq!(m("keep(2,1)", "ABCDE"), "AB**E");
        assert_eq!(m("keep(2,1)", "AB"), "**");
        assert_eq!(m("redact", "秘密"), "***");
    }

    #[test]
    fn arrays_keep_nulls_and_types() {
        let a: ArrayRef = Arc::new(StringArray::from(vec![Some("张三"), None, Some("李四四")]));
        let out = apply(&MaskSpec::ChineseName, &a, b"k").unwrap();
        let out = out.as_string::<i32>();
        assert_eq!(out.value(0), "张*");
        assert!(out.is_null(1));
        let d: ArrayRef = Arc::new(arrow::array::Date32Array::from(vec![Some(7305), None]));
        let y = apply(&MaskSpec::DateToYear, &d, b"k").unwrap();
        assert_eq!(y.as_primitive::<arrow::datatypes::Int32Type>().value(0), 1990);
        assert!(y.is_null(1));
        let n: ArrayRef = Arc::new(arrow::array::Int64Array::from(vec![Some(37), None]));
        let r = apply(&MaskSpec::NumberRange { width: 10 }, &n, b"k").unwrap();
        assert_eq!(r.as_string::<i32>().value(0), "30-39");
        let nul = apply(&MaskSpec::Null, &n, b"k").unwrap();
        assert_eq!(nul.null_count(), 2);
    }

    #[test]
    fn pseudonyms_are_stable_keyed_and_join() {
        let a = pseudonym(b"secret", "11010519491231002X");
        assert_eq!(a, pseudonym(b"secret", "11010519491231002x"), "normalized");
        assert_ne!(a, pseudonym(b"other", "11010519491231002X"), "keyed");
        assert_eq!(a.len(), 16);
        assert!(!a.contains("1101"));
    }

    proptest! {
        #[test]
        fn masked_characters_never_show(s in "\\PC{0,30}", first in 0u32..4, last in 0u32..4) {
            let spec = MaskSpec::Keep { first, last };
            let out = m(&spec.to_spec(), &s);
            let n = s.chars().count();
            prop_assert_eq!(out.chars().count(), n, "length kept");
            if n > (first + last) as usize {
                let hidden: Vec<char> = s.chars().skip(first as usize).take(n - (first + last) as usize).collect();
                let shown: Vec<char> = out.chars().skip(first as usize).take(n - (first + last) as usize).collect();
                prop_assert!(shown.iter().all(|c| *c == '*'));
                prop_assert_eq!(hidden.len(), shown.len());
            } else {
                prop_assert!(out.chars().all(|c| c == '*'));
            }
        }

        #[test]
        fn names_and_ids_hide_their_middles(name in "[\\u4e00-\\u9fa5]{1,4}", id in "[0-9]{17}[0-9X]") {
            let out = m("chinese_name", &name);
            prop_assert_eq!(out.chars().count(), name.chars().count().max(1));
            prop_assert!(out.chars().skip(1).all(|c| c == '*'));
            let masked = m("id_card", &id);
            prop_assert_eq!(&masked[..6], &id[..6]);
            prop_assert_eq!(&masked[6..], "************");
        }

        #[test]
        fn text_masks_never_panic(s in "\\PC{0,40}") {
            for spec in ["chinese_name", "id_card", "mobile", "address", "bank_card", "email", "redact", "keep(3,4)"] {
                let _ = m(spec, &s);
            }
        }
    }
}
