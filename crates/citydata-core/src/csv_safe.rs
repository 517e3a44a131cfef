//! CSV injection (OWASP "formula injection"): a spreadsheet opening a CSV or XLSX runs a cell
//! that starts with `=`, `+`, `-` or `@` as a formula (and tab or CR can hide one). Exports
//! meant for people prefix such cells with `'`, which spreadsheets show as text; numbers such as
//! `-12.5` stay as they are. Machine readers opt out (`csv_safe=false` on the endpoints that
//! apply it), since the prefix changes the value.
//!
//! ```
//! use citydata_core::csv_safe::neutralize;
//! assert_eq!(neutralize("=HYPERLINK(\"http://x\")"), "'=HYPERLINK(\"http://x\")");
//! assert_eq!(neutralize("-12.5"), "-12.5");
//! assert_eq!(neutralize("海陵区"), "海陵区");
//! ```

use arrow::array::{Array, ArrayRef, AsArray, LargeStringArray, StringArray, StringViewArray};
use arrow::datatypes::DataType;
use arrow::record_batch::RecordBatch;
use std::borrow::Cow;
use std::sync::Arc;

/// A plain number (`-12.5`, `+3`, `1e5`): safe even though it may start with `-` or `+`.
fn is_number(s: &str) -> bool {
    s.bytes().any(|b| b.is_ascii_digit())
        && s.bytes().all(|b| b.is_ascii_digit() || matches!(b, b'+' | b'-' | b'.' | b'e' | b'E'))
        && s.parse::<f64>().is_ok()
}

/// `cell` with a leading `'` when a spreadsheet would take it for a formula.
pub fn neutralize(cell: &str) -> Cow<'_, str> {
    match cell.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r') if !is_number(cell) => Cow::Owned(format!("'{cell}")),
        _ => Cow::Borrowed(cell),
    }
}

/// `cell` without the `'` that [`neutralize`] put before it (for imports of exported files).
pub fn restore(cell: &str) -> &str {
    match cell.strip_prefix('\'') {
        Some(rest) if needs_neutralizing(rest) => rest,
        _ => cell,
    }
}

/// Every cell [`neutralize`]d when `on`; unchanged otherwise.
pub fn neutralize_cells(cells: Vec<String>, on: bool) -> Vec<String> {
    if !on {
        return cells;
    }
    cells.into_iter().map(|c| if needs_neutralizing(&c) { format!("'{c}") } else { c }).collect()
}

/// `true` when [`neutralize`] would change `cell`.
pub fn needs_neutralizing(cell: &str) -> bool {
    matches!(neutralize(cell), Cow::Owned(_))
}

/// `batch` with [`neutralize`] applied to every cell of every text column (other columns, and
/// text columns with nothing to change, are shared, not copied).
pub fn neutralize_batch(batch: &RecordBatch) -> RecordBatch {
    let columns: Vec<ArrayRef> = batch
        .columns()
        .iter()
        .map(|c| match c.data_type() {
            DataType::Utf8 => {
                let a = c.as_string::<i32>();
                if a.iter().flatten().any(needs_neutralizing) {
                    Arc::new(a.iter().map(|v| v.map(neutralize)).collect::<StringArray>()) as ArrayRef
                } else {
                    c.clone()
                }
            }
            DataType::LargeUtf8 => {
                let a = c.as_string::<i64>();
                if a.iter().flatten().any(needs_neutralizing) {
                    Arc::new(a.iter().map(|v| v.map(neutralize)).collect::<LargeStringArray>()) as ArrayRef
                } else {
                    c.clone()
                }
            }
            // Parquet text read by DataFusion arrives as string views.
            DataType::Utf8View => {
                let a = c.as_string_view();
                if a.iter().flatten().any(needs_neutralizing) {
                    Arc::new(a.iter().map(|v| v.map(neutralize)).collect::<StringViewArray>()) as ArrayRef
                } else {
                    c.clone()
                }
            }
            _ => c.clone(),
        })
        .collect();
    RecordBatch::try_new(batch.schema(), columns).unwrap_or_else(|_| batch.clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::Int64Array;
    use arrow::datatypes::{Field, Schema};

    #[test]
    fn formulas_are_neutralized_numbers_are_not() {
        for (input, want) in [
            ("=1+1", "'=1+1"),
            ("+cmd|' /C calc'!A0", "'+cmd|' /C calc'!A0"),
            ("-2+3", "'-2+3"),
            ("@SUM(A1)", "'@SUM(A1)"),
            ("\t=1", "'\t=1"),
            ("\r=1", "'\r=1"),
            ("-inf", "'-inf"),
            ("-", "'-"),
            ("-12.5", "-12.5"),
            ("+3", "+3"),
            ("-1e5", "-1e5"),
            ("12", "12"),
            ("a=b", "a=b"),
            ("", ""),
        ] {
            assert_eq!(neutralize(input), want, "{input:?}");
            assert_eq!(restore(&neutralize(input)), input, "{input:?}");
            // The upload reader undoes it the same way.
            assert_eq!(citydata_lake::read::restore_neutralized(&neutralize(input)), input, "{input:?}");
        }
    }

    #[test]
    fn batches_change_only_text_cells_that_need_it() {
        let schema = Arc::new(Schema::new(vec![
            Field::new("s", DataType::Utf8, true),
            Field::new("n", DataType::Int64, true),
            Field::new("t", DataType::Utf8, true),
        ]));
        let b = RecordBatch::try_new(
            schema,
            vec![
                Arc::new(StringArray::from(vec![Some("=cmd"), None, Some("-3")])),
                Arc::new(Int64Array::from(vec![-1, 2, 3])),
                Arc::new(StringArray::from(vec!["a", "b", "c"])),
            ],
        )
        .unwrap();
        let out = neutralize_batch(&b);
        let s = out.column(0).as_string::<i32>();
        assert_eq!(s.value(0), "'=cmd");
        assert!(s.is_null(1));
        assert_eq!(s.value(2), "-3");
        assert!(Arc::ptr_eq(out.column(2), b.column(2)), "unchanged columns are shared");
    }
}
