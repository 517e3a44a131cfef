//! Rows counted per value of one text column: the commonest aggregate (a chart of 区县, 性别,
//! 民族 …: `group_by` one text item, no metric), counted over the governed plan's output
//! without DataFusion's grouping.
//!
//! DataFusion groups a text column by hashing every row's value into its own map (session 15's
//! profile of `group_count`: 34% of the CPU in `ArrowBytesViewMap::insert_if_new` and 7.5% in
//! hashing the values). Here each partition counts its rows on its own task: a run of equal
//! values (files in key order often hold long runs) is counted once, and a value of at most 12
//! bytes is looked up by its 16-byte view, which holds it whole. The answer is the one the
//! grouping gives: the same groups and counts, NULL as a group of its own, sorted ascending by
//! value with NULL last.

use crate::error::{LakeError, Result};
use crate::keyset::MixHasher;
use arrow::array::{Array, ArrayRef, Int64Array, RecordBatch, StringViewArray, StringViewBuilder};
use arrow::datatypes::{DataType, Field, Schema};
use datafusion::prelude::DataFrame;
use futures::StreamExt;
use std::collections::HashMap;
use std::hash::BuildHasherDefault;
use std::sync::Arc;

/// One partition's counts.
#[derive(Default)]
struct Counts {
    /// Values of at most 12 bytes, by their view (length and bytes, zero-padded). An unkeyed
    /// hash is enough: the views are the table's own values, and a partition's map lives for
    /// one request.
    short: HashMap<u128, u64, BuildHasherDefault<MixHasher>>,
    long: HashMap<String, u64>,
    nulls: u64,
}

/// The longest value a view holds whole.
const INLINE: u32 = 12;

impl Counts {
    fn groups(&self) -> usize {
        self.short.len() + self.long.len() + usize::from(self.nulls > 0)
    }

    fn add(&mut self, a: &StringViewArray) {
        let views = a.views();
        let nulls = a.nulls();
        let null = |i: usize| nulls.is_some_and(|b| b.is_null(i));
        let (mut i, n) = (0, a.len());
        while i < n {
            if null(i) {
                self.nulls += 1;
                i += 1;
                continue;
            }
            let v = views[i];
            let mut j = i + 1;
            while j < n && views[j] == v && !null(j) {
                j += 1;
            }
            let run = (j - i) as u64;
            if (v as u32) <= INLINE {
                *self.short.entry(v).or_default() += run;
            } else {
                let s = a.value(i);
                match self.long.get_mut(s) {
                    Some(c) => *c += run,
                    None => {
                        self.long.insert(s.to_owned(), run);
                    }
                }
            }
            i = j;
        }
    }

    fn merge(&mut self, other: Counts) {
        for (v, c) in other.short {
            *self.short.entry(v).or_default() += c;
        }
        for (s, c) in other.long {
            *self.long.entry(s).or_default() += c;
        }
        self.nulls += other.nulls;
    }
}

/// The text of an inline view.
fn inline_text(v: u128) -> String {
    let len = (v as u32) as usize;
    let bytes = v.to_le_bytes();
    String::from_utf8_lossy(&bytes[4..4 + len.min(12)]).into_owned()
}

/// Whether [`count_by_text`] can answer a grouping by `column` of `df`.
pub(crate) fn applies(df: &DataFrame, column: &str) -> bool {
    df.schema().field_with_unqualified_name(column).is_ok_and(|f| f.data_type() == &DataType::Utf8View)
}

/// `SELECT column, count(*) AS count FROM df GROUP BY column ORDER BY column NULLS LAST`, as
/// one batch. `Ok(None)` when more than `max_groups` groups are found (counting stops there).
pub(crate) async fn count_by_text(
    df: DataFrame,
    column: &str,
    max_groups: Option<usize>,
) -> Result<Option<RecordBatch>> {
    let df = df.select(vec![datafusion::prelude::ident(column)])?;
    let streams = df.execute_stream_partitioned().await?;
    // A join set: the tasks end with the request if it is dropped.
    let mut tasks = tokio::task::JoinSet::new();
    for mut stream in streams {
        tasks.spawn(async move {
            let mut counts = Counts::default();
            while let Some(batch) = stream.next().await {
                let batch = batch?;
                let a = batch
                    .column(0)
                    .as_any()
                    .downcast_ref::<StringViewArray>()
                    .ok_or_else(|| LakeError::Other("grouped column is not text".into()))?;
                counts.add(a);
                if max_groups.is_some_and(|m| counts.groups() > m) {
                    return Ok(None);
                }
            }
            Ok::<_, LakeError>(Some(counts))
        });
    }
    let mut all = Counts::default();
    while let Some(t) = tasks.join_next().await {
        match t.map_err(|e| LakeError::Other(format!("group count task: {e}")))?? {
            Some(c) => all.merge(c),
            None => return Ok(None),
        }
    }
    if max_groups.is_some_and(|m| all.groups() > m) {
        return Ok(None);
    }
    let mut groups: Vec<(String, u64)> = all.short.into_iter().map(|(v, c)| (inline_text(v), c)).collect();
    groups.extend(all.long);
    groups.sort_unstable_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    let mut values = StringViewBuilder::with_capacity(groups.len() + 1);
    let mut counts = Vec::with_capacity(groups.len() + 1);
    for (v, c) in &groups {
        values.append_value(v);
        counts.push(*c as i64);
    }
    if all.nulls > 0 {
        values.append_null();
        counts.push(all.nulls as i64);
    }
    let schema = Arc::new(Schema::new(vec![
        Field::new(column, DataType::Utf8View, true),
        Field::new("count", DataType::Int64, false),
    ]));
    let columns: Vec<ArrayRef> = vec![Arc::new(values.finish()), Arc::new(Int64Array::from(counts))];
    Ok(Some(RecordBatch::try_new(schema, columns)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs, repeats across batches, long and short values, NULLs, and values that share a
    /// 12-byte prefix: the counts are those of a plain map of the values.
    #[test]
    fn counts_agree_with_a_map_of_the_values() {
        let values: Vec<Option<&str>> = vec![
            Some("海陵区"),
            Some("海陵区"),
            None,
            Some("高港区"),
            Some("a very long value past twelve bytes"),
            Some("a very long value past twelve bytez"),
            Some("a very long value past twelve bytes"),
            Some(""),
            None,
            Some("海陵区"),
            Some("123456789012"),
            Some("1234567890123"),
        ];
        let mut counts = Counts::default();
        for chunk in values.chunks(5) {
            counts.add(&StringViewArray::from(chunk.to_vec()));
        }
        let mut expected: HashMap<Option<String>, u64> = HashMap::new();
        for v in &values {
            *expected.entry(v.map(str::to_string)).or_default() += 1;
        }
        let mut got: HashMap<Option<String>, u64> = HashMap::new();
        for (v, c) in &counts.short {
            got.insert(Some(inline_text(*v)), *c);
        }
        for (s, c) in &counts.long {
            got.insert(Some(s.clone()), *c);
        }
        if counts.nulls > 0 {
            got.insert(None, counts.nulls);
        }
        assert_eq!(got, expected);
        assert_eq!(counts.groups(), expected.len());
    }
}
