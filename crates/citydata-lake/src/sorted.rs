//! Rows ordered by the key before they are written, in chunks of bounded size.
//!
//! A lookup by key prunes by each row group's min/max statistics and then by each page's (the
//! page index). Rows written in arrival order give every row group and every page the whole
//! key range, so a lookup passes every row group's statistics, reads every bloom filter and
//! decodes a whole row group's keys to find one. Sorting each chunk of
//! [`SORT_CHUNK_ROWS`] rows by the key before the writer cuts it into row groups gives the row
//! groups of a chunk disjoint key ranges and the pages of a row group disjoint ranges: a lookup
//! passes one row group per chunk and decodes one page.
//!
//! A chunk, not the whole input: the memory stays bounded (one chunk held, its sorted copy
//! built page by page), and no spill files are needed. A whole-table order (fewer row groups
//! to check) would need an external sort; see ARCHITECTURE.md, "Performance work".

use crate::error::{LakeError, Result};
use arrow::array::{ArrayRef, RecordBatch};
use arrow::compute::{SortColumn, concat, interleave_record_batch, lexsort_to_indices};
use arrow::datatypes::SchemaRef;
use tokio::sync::mpsc;

/// Rows sorted together: four row groups of the written files.
pub const SORT_CHUNK_ROWS: usize = 4 * crate::table::ROW_GROUP_ROWS;

/// Rows per batch handed on after sorting.
const OUT_BATCH_ROWS: usize = crate::table::DATA_PAGE_ROWS;

/// `rx`'s batches, re-ordered by `keys` within chunks of about [`SORT_CHUNK_ROWS`] rows, on a
/// blocking thread (so the sort runs beside the conversion that feeds it). An error from `rx`
/// is passed on at once and ends the stream; the rows held are dropped. With no key column in
/// `schema` the batches pass unchanged.
pub fn sorted_in_chunks(
    schema: &SchemaRef,
    keys: &[String],
    mut rx: mpsc::Receiver<Result<RecordBatch>>,
) -> mpsc::Receiver<Result<RecordBatch>> {
    let key_idx: Vec<usize> = keys.iter().filter_map(|k| schema.index_of(k).ok()).collect();
    if key_idx.is_empty() {
        return rx;
    }
    let (tx, out) = mpsc::channel::<Result<RecordBatch>>(2);
    tokio::task::spawn_blocking(move || {
        let mut held: Vec<RecordBatch> = Vec::new();
        let mut rows = 0usize;
        loop {
            match rx.blocking_recv() {
                Some(Ok(b)) => {
                    rows += b.num_rows();
                    held.push(b);
                    if rows >= SORT_CHUNK_ROWS {
                        if !send_sorted(&tx, std::mem::take(&mut held), &key_idx) {
                            return;
                        }
                        rows = 0;
                    }
                }
                Some(Err(e)) => {
                    let _ = tx.blocking_send(Err(e));
                    return;
                }
                None => {
                    send_sorted(&tx, held, &key_idx);
                    return;
                }
            }
        }
    });
    out
}

/// Sort `held` by the key columns and send it on in batches; `false` when the receiver is gone.
fn send_sorted(tx: &mpsc::Sender<Result<RecordBatch>>, held: Vec<RecordBatch>, key_idx: &[usize]) -> bool {
    if held.is_empty() {
        return true;
    }
    match sort_order(&held, key_idx) {
        Ok(order) => {
            for piece in order.chunks(OUT_BATCH_ROWS) {
                let refs: Vec<&RecordBatch> = held.iter().collect();
                let batch = interleave_record_batch(&refs, piece).map_err(LakeError::from);
                let failed = batch.is_err();
                if tx.blocking_send(batch).is_err() || failed {
                    return false;
                }
            }
            true
        }
        Err(e) => {
            let _ = tx.blocking_send(Err(e));
            false
        }
    }
}

/// The (batch, row) pairs of `held` in ascending key order.
fn sort_order(held: &[RecordBatch], key_idx: &[usize]) -> Result<Vec<(usize, usize)>> {
    let mut sort_columns = Vec::with_capacity(key_idx.len());
    for &i in key_idx {
        let parts: Vec<&dyn arrow::array::Array> = held.iter().map(|b| b.column(i).as_ref()).collect();
        let values: ArrayRef = concat(&parts)?;
        sort_columns.push(SortColumn { values, options: None });
    }
    let indices = lexsort_to_indices(&sort_columns, None)?;
    let mut starts = Vec::with_capacity(held.len());
    let mut at = 0usize;
    for b in held {
        starts.push(at);
        at += b.num_rows();
    }
    Ok(indices
        .values()
        .iter()
        .map(|&g| {
            let g = g as usize;
            let batch = starts.partition_point(|&s| s <= g) - 1;
            (batch, g - starts[batch])
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Int64Array, StringArray};
    use arrow::datatypes::{DataType, Field, Schema};
    use std::sync::Arc;

    fn batch(schema: &SchemaRef, keys: &[&str], n: &[i64]) -> RecordBatch {
        RecordBatch::try_new(
            schema.clone(),
            vec![Arc::new(StringArray::from(keys.to_vec())), Arc::new(Int64Array::from(n.to_vec()))],
        )
        .unwrap()
    }

    #[tokio::test]
    async fn chunks_come_out_in_key_order_with_every_row_and_errors_pass_at_once() {
        let schema: SchemaRef =
            Arc::new(Schema::new(vec![Field::new("k", DataType::Utf8, false), Field::new("n", DataType::Int64, true)]));
        // Two chunks' worth in descending order, sent in small batches.
        let total = SORT_CHUNK_ROWS + 20_000;
        let keys: Vec<String> = (0..total).rev().map(|i| format!("{i:08}")).collect();
        let (tx, rx) = mpsc::channel(4);
        let s2 = schema.clone();
        let feeder = tokio::spawn(async move {
            for part in keys.chunks(7000) {
                let k: Vec<&str> = part.iter().map(String::as_str).collect();
                let n: Vec<i64> = part.iter().map(|s| s.parse::<i64>().unwrap() * 10).collect();
                tx.send(Ok(batch(&s2, &k, &n))).await.unwrap();
            }
        });
        let mut out = sorted_in_chunks(&schema, &["k".to_string()], rx);
        let mut seen: Vec<(String, i64)> = Vec::new();
        while let Some(b) = out.recv().await {
            let b = b.unwrap();
            assert!(b.num_rows() <= OUT_BATCH_ROWS);
            let k = b.column(0).as_any().downcast_ref::<StringArray>().unwrap();
            let n = b.column(1).as_any().downcast_ref::<Int64Array>().unwrap();
            for i in 0..b.num_rows() {
                seen.push((k.value(i).to_string(), n.value(i)));
            }
        }
        feeder.await.unwrap();
        assert_eq!(seen.len(), total);
        // Every row kept whole: the value still belongs to its key.
        assert!(seen.iter().all(|(k, n)| k.parse::<i64>().unwrap() * 10 == *n));
        // Two ascending runs: the first chunk (at least SORT_CHUNK_ROWS rows), then the rest.
        let descents: Vec<usize> = (1..seen.len()).filter(|&i| seen[i].0 < seen[i - 1].0).collect();
        assert_eq!(descents.len(), 1, "two chunks, each in key order");
        assert!(descents[0] >= SORT_CHUNK_ROWS && descents[0] < total, "{descents:?}");

        // An error is passed on at once, before the held rows.
        let (tx, rx) = mpsc::channel(4);
        tx.send(Ok(batch(&schema, &["b", "a"], &[1, 2]))).await.unwrap();
        tx.send(Err(LakeError::Rejected("rejected".into()))).await.unwrap();
        let mut out = sorted_in_chunks(&schema, &["k".to_string()], rx);
        assert!(matches!(out.recv().await, Some(Err(LakeError::Rejected(_)))));
        assert!(out.recv().await.is_none());
    }

    #[tokio::test]
    async fn without_a_key_the_batches_pass_unchanged() {
        let schema: SchemaRef =
            Arc::new(Schema::new(vec![Field::new("k", DataType::Utf8, false), Field::new("n", DataType::Int64, true)]));
        let (tx, rx) = mpsc::channel(4);
        tx.send(Ok(batch(&schema, &["b", "a"], &[1, 2]))).await.unwrap();
        drop(tx);
        let mut out = sorted_in_chunks(&schema, &[], rx);
        let b = out.recv().await.unwrap().unwrap();
        assert_eq!(b.column(0).as_any().downcast_ref::<StringArray>().unwrap().value(0), "b");
    }
}
