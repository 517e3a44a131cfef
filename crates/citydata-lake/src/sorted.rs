//! Rows ordered by the key before they are written.
//!
//! A lookup by key prunes files by the Delta log's min/max statistics, row groups by theirs,
//! and pages by the page index. Rows written in arrival order give every file, row group and
//! page the whole key range: a lookup then passes every file and row group, reads every bloom
//! filter and decodes a whole row group's keys to find one. Rows sorted by the key before the
//! writer cuts them into files give each file, row group and page a disjoint range, so a
//! lookup opens one file and decodes one page; a paged read in key order (the rows API's
//! stable order) stops after the first file, the others pruned by the top-K's bound.
//!
//! The sort is DataFusion's external sort: it holds at most [`SORT_MEMORY_BYTES`] and spills
//! sorted runs to temporary files beyond it, merging them as the writer reads, so the ingest's
//! memory stays bounded for inputs of any size. A table written by several appends is ordered
//! within each append; compaction does not re-sort (see ARCHITECTURE.md, "Performance work").

use crate::error::{LakeError, Result};
use crate::table::ChannelPartition;
use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use datafusion::catalog::streaming::StreamingTable;
use futures::StreamExt;
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc;

/// Memory a write's sort holds before it spills sorted runs to temporary files.
pub const SORT_MEMORY_BYTES: usize = 64 << 20;

/// The session a keyed write plans its sort in: delta-rs' planner, one partition, a memory
/// pool of [`SORT_MEMORY_BYTES`] and spill files in the system's temporary directory.
pub fn sort_session() -> datafusion::prelude::SessionContext {
    datafusion::prelude::SessionContext::new_with_state(one_partition_state(Some(SORT_MEMORY_BYTES)))
}

/// delta-rs' session state (with a spilling memory pool of `memory` bytes) in one partition:
/// with more, DataFusion deals ordered batches round robin and merges them back in whatever
/// order they arrive. The sort plans in it, and so does the writer of the sorted rows.
pub(crate) fn one_partition_state(memory: Option<usize>) -> datafusion::execution::SessionState {
    let mut state = deltalake::delta_datafusion::create_session_state_with_spill_config(memory, None);
    state.config_mut().options_mut().execution.target_partitions = 1;
    state
}

/// `rx`'s batches in the order of the `keys` columns (ascending, nulls last): a DataFusion
/// sort in [`sort_session`] (sorted runs spilled to temporary files beyond
/// [`SORT_MEMORY_BYTES`], then merged), run on its own task and handed on through a channel.
/// An error from `rx` ends the stream with an error; nothing is handed on after it. With no
/// key column in `schema`, `rx` is returned as it is.
pub async fn sorted_by_keys(
    schema: &SchemaRef,
    keys: &[String],
    rx: mpsc::Receiver<Result<RecordBatch>>,
) -> Result<mpsc::Receiver<Result<RecordBatch>>> {
    let order: Vec<_> = keys
        .iter()
        .filter(|k| schema.index_of(k).is_ok())
        .map(|k| datafusion::prelude::ident(k.as_str()).sort(true, false))
        .collect();
    if order.is_empty() {
        return Ok(rx);
    }
    let ctx = sort_session();
    let part = Arc::new(ChannelPartition { schema: schema.clone(), rx: Mutex::new(Some(rx)), boxes: false });
    ctx.register_table("source", Arc::new(StreamingTable::try_new(schema.clone(), vec![part])?))?;
    let mut sorted = ctx.table("source").await?.sort(order)?.execute_stream().await?;
    let (tx, out) = mpsc::channel::<Result<RecordBatch>>(2);
    tokio::spawn(async move {
        let _ctx = ctx; // the memory pool and the spill files live as long as the stream
        while let Some(next) = sorted.next().await {
            let failed = next.is_err();
            if tx.send(next.map_err(LakeError::from)).await.is_err() || failed {
                return;
            }
        }
    });
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Int64Array, StringArray};
    use arrow::datatypes::{DataType, Field, Schema};

    fn batch(schema: &SchemaRef, keys: &[&str], n: &[i64]) -> RecordBatch {
        RecordBatch::try_new(
            schema.clone(),
            vec![Arc::new(StringArray::from(keys.to_vec())), Arc::new(Int64Array::from(n.to_vec()))],
        )
        .unwrap()
    }

    fn schema() -> SchemaRef {
        Arc::new(Schema::new(vec![Field::new("k", DataType::Utf8, false), Field::new("n", DataType::Int64, true)]))
    }

    /// More rows than the sort's memory holds (so runs are spilled and merged) come out whole
    /// and in key order.
    #[tokio::test]
    async fn rows_beyond_the_sort_memory_come_out_whole_and_in_key_order() {
        let schema = schema();
        // About 1.5 × SORT_MEMORY_BYTES of keys and padding, in a scrambled order.
        let total: usize = 1_500_000;
        let pad = "x".repeat(120);
        let (tx, rx) = mpsc::channel(4);
        let s2 = schema.clone();
        let feeder = tokio::spawn(async move {
            for start in (0..total).step_by(8192) {
                let ids: Vec<usize> = (start..(start + 8192).min(total)).map(|i| (i * 7919) % total).collect();
                let k: Vec<String> = ids.iter().map(|i| format!("{i:08}{pad}")).collect();
                let k: Vec<&str> = k.iter().map(String::as_str).collect();
                let n: Vec<i64> = ids.iter().map(|&i| i as i64).collect();
                if tx.send(Ok(batch(&s2, &k, &n))).await.is_err() {
                    return;
                }
            }
        });
        let mut out = sorted_by_keys(&schema, &["k".to_string()], rx).await.unwrap();
        let mut expected = 0i64;
        while let Some(b) = out.recv().await {
            let b = b.unwrap();
            let k = b.column(0).as_any().downcast_ref::<StringArray>().unwrap();
            let n = b.column(1).as_any().downcast_ref::<Int64Array>().unwrap();
            for i in 0..b.num_rows() {
                assert_eq!(n.value(i), expected, "row {expected} in key order");
                assert_eq!(&k.value(i)[..8], format!("{expected:08}"), "the row is whole");
                expected += 1;
            }
        }
        feeder.await.unwrap();
        assert_eq!(expected as usize, total);
    }

    #[tokio::test]
    async fn an_input_error_ends_the_stream_with_an_error() {
        let schema = schema();
        let (tx, rx) = mpsc::channel(4);
        tx.send(Ok(batch(&schema, &["b", "a"], &[1, 2]))).await.unwrap();
        tx.send(Err(LakeError::Rejected("rejected".into()))).await.unwrap();
        let mut out = sorted_by_keys(&schema, &["k".to_string()], rx).await.unwrap();
        assert!(matches!(out.recv().await, Some(Err(_))));
        assert!(out.recv().await.is_none());
    }

    #[tokio::test]
    async fn without_a_key_the_batches_pass_unchanged() {
        let schema = schema();
        let (tx, rx) = mpsc::channel(4);
        tx.send(Ok(batch(&schema, &["b", "a"], &[1, 2]))).await.unwrap();
        drop(tx);
        let mut out = sorted_by_keys(&schema, &[], rx).await.unwrap();
        let b = out.recv().await.unwrap().unwrap();
        assert_eq!(b.column(0).as_any().downcast_ref::<StringArray>().unwrap().value(0), "b");
    }
}
