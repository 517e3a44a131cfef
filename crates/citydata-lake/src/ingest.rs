//! One ingest: read → map → convert and validate → commit valid rows as one Delta transaction
//! (streaming, bounded memory) → quarantine invalid rows → report.

use crate::convert::{Converted, Converter, InvalidRow, Mapping, Staged};
use crate::error::{LakeError, Result};
use crate::quality::{QualityCounts, QualityEval, References};
use crate::read::{RawBatch, RawSource};
use crate::schema::quarantine_schema;
use crate::table::{Lake, WriteMode};
use arrow::array::{Int64Builder, RecordBatch, StringBuilder, TimestampMicrosecondBuilder};
use citydata_domain::quality::QualityRule;
use citydata_domain::resource::{ConsistencyRule, InfoItem};
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::mpsc;
use uuid::Uuid;

/// What to do with invalid rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Policy {
    /// Commit the valid rows; put each invalid row in the quarantine table (default).
    Quarantine,
    /// Any invalid row: commit nothing.
    Reject,
    /// Commit every row (cells that could not be read become null); record the failures.
    Accept,
}

impl Policy {
    pub fn parse(s: &str) -> Result<Self> {
        match s.trim() {
            "" | "quarantine" => Ok(Self::Quarantine),
            "reject" => Ok(Self::Reject),
            "accept" => Ok(Self::Accept),
            other => Err(LakeError::input(
                "invalid_policy",
                format!(
                    "policy 须为 quarantine、reject 或 accept，收到 \"{other}\" / policy must be quarantine, reject or accept"
                ),
            )),
        }
    }
}

/// What to ingest, and how.
#[derive(Debug, Clone)]
pub struct IngestSpec {
    pub resource_id: Uuid,
    pub items: Vec<InfoItem>,
    pub rules: Vec<ConsistencyRule>,
    pub mode: WriteMode,
    pub policy: Policy,
    pub ignore_extra: bool,
    pub ingest_id: Uuid,
    /// The idempotency key: an ingest with a key already committed to the table writes nothing.
    pub idempotency_key: Option<String>,
    /// Quality rules beyond the validators, with the key sets of their `reference` targets.
    pub quality_rules: Vec<QualityRule>,
    pub references: References,
    /// Only rows in this time window are checked for the new rows' keys (the key includes the
    /// time item, and every new row lies in the window).
    pub key_range: Option<crate::table::KeyRange>,
}

/// Failures counted by item and rule.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct FailureCount {
    pub item: Option<String>,
    pub title: Option<String>,
    pub rule: String,
    pub count: u64,
}

/// The outcome of an ingest.
#[derive(Debug, Clone, Serialize)]
pub struct IngestReport {
    pub ingest_id: Uuid,
    pub mode: WriteMode,
    pub policy: Policy,
    pub rows_read: u64,
    pub rows_committed: u64,
    pub rows_quarantined: u64,
    pub failures: Vec<FailureCount>,
    /// The first invalid rows, with their failures and cells.
    pub sample: Vec<InvalidRow>,
    pub duration_ms: u64,
    pub rows_per_sec: f64,
    pub bytes_read: u64,
    pub encoding: Option<String>,
    /// The table version after the ingest (unchanged when nothing was committed).
    pub table_version: Option<i64>,
    /// The idempotency key had been applied before: nothing was written this time.
    pub already_applied: bool,
    /// The whole ingest was refused (policy `reject` with invalid rows).
    pub rejected: bool,
    /// Every row was invalid and quarantined (policy `quarantine`): nothing was committed and
    /// the table kept its version.
    pub all_quarantined: bool,
    /// The counters of the version's quality report (failing values included: not serialized,
    /// the caller stores what each audience may see).
    #[serde(skip)]
    pub quality: Option<QualityCounts>,
}

/// Progress callback: (bytes read, rows read).
pub type Progress = Arc<dyn Fn(u64, u64) + Send + Sync>;

const SAMPLE: usize = 20;

/// The quarantine rows of `rows`, under `ingest_id` (also used by the MQTT streams for
/// messages that never became rows).
pub fn quarantine_batch(ingest_id: Uuid, rows: &[InvalidRow]) -> Result<RecordBatch> {
    let now = chrono::Utc::now().timestamp_micros();
    let mut id = StringBuilder::new();
    let mut line = Int64Builder::new();
    let mut item = StringBuilder::new();
    let mut rule = StringBuilder::new();
    let mut message = StringBuilder::new();
    let mut failures = StringBuilder::new();
    let mut record = StringBuilder::new();
    let mut at = TimestampMicrosecondBuilder::new().with_timezone(crate::schema::TZ);
    for r in rows {
        let first = &r.failures[0];
        id.append_value(ingest_id.to_string());
        line.append_value(r.line as i64);
        item.append_option(first.item.as_deref());
        rule.append_value(&first.rule);
        message.append_value(&first.message);
        failures.append_value(serde_json::to_string(&r.failures).unwrap_or_default());
        record.append_value(serde_json::to_string(&r.record).unwrap_or_default());
        at.append_value(now);
    }
    Ok(RecordBatch::try_new(
        quarantine_schema(),
        vec![
            Arc::new(id.finish()),
            Arc::new(line.finish()),
            Arc::new(item.finish()),
            Arc::new(rule.finish()),
            Arc::new(message.finish()),
            Arc::new(failures.finish()),
            Arc::new(record.finish()),
            Arc::new(at.finish()),
        ],
    )?)
}

struct Tally {
    rows_read: u64,
    rows_ok: u64,
    counts: BTreeMap<(Option<String>, Option<String>, String), u64>,
    invalid: Vec<InvalidRow>,
    bytes: u64,
    encoding: Option<&'static str>,
    quality: Option<QualityCounts>,
}

/// What the process runs when an ingest's reader has freed its memory (the key set: about
/// 150 MB for 14,000,000 keys, the converter's buffers) and before the sort merges its runs. The
/// server binary sets it to hand free memory back to the system (glibc's `malloc_trim`): glibc
/// keeps freed memory in the arena of the thread that freed it, and the merge allocates on the
/// runtime's threads, which use the other arena, so an ingest's peak held both.
pub static AFTER_READ: std::sync::OnceLock<fn()> = std::sync::OnceLock::new();

fn release_freed_memory() {
    if let Some(f) = AFTER_READ.get() {
        f();
    }
}

const WRITER_STOPPED: &str = "the table writer stopped";

/// Threads that cast and check batches beside the reader: one per core but one (the writer
/// sorts and encodes on the cores too), at most 8; none on one core, where the reader converts
/// its own batches. `CITYDATA_CONVERSION_WORKERS` sets the number (0: the reader converts).
///
/// Each worker keeps batches in flight (about 7 MB each for rows of 150 bytes). On 2 cores one
/// worker was as fast as two (1,000,000 rows in 1.98 s against 2.07 s) and the 2 GB ingest
/// peaked at 297 MB, against 302–336 MB with two (BENCHMARKS.md, session 21).
fn conversion_workers() -> usize {
    if let Some(n) = std::env::var("CITYDATA_CONVERSION_WORKERS").ok().and_then(|v| v.trim().parse::<usize>().ok()) {
        return n.min(64);
    }
    std::thread::available_parallelism().map_or(0, |n| (n.get() - 1).min(8))
}

/// Count a converted batch and pass its valid rows to the writer.
fn take_batch(
    t: &mut Tally,
    rows: usize,
    converted: Converted,
    policy: Policy,
    tx: &mpsc::Sender<Result<RecordBatch>>,
) -> Result<()> {
    t.rows_read += rows as u64;
    for row in &converted.invalid {
        for f in &row.failures {
            *t.counts.entry((f.item.clone(), f.title.clone(), f.rule.clone())).or_default() += 1;
        }
    }
    t.rows_ok += converted.batch.num_rows() as u64;
    t.invalid.extend(converted.invalid);
    if policy == Policy::Reject && !t.invalid.is_empty() {
        return Ok(()); // keep reading to report every failure; send nothing more
    }
    if converted.batch.num_rows() > 0 && tx.blocking_send(Ok(converted.batch)).is_err() {
        return Err(LakeError::Other(WRITER_STOPPED.into()));
    }
    Ok(())
}

/// The reader's loop with `workers` threads casting and checking batches ([`Stage::run`],
/// the bulk of an ingest's CPU) while the reader parses the next ones. The staged batches are
/// finished in the order they were read, so the outcome is the one-thread loop's exactly (the
/// first of two equal keys kept, the invalid rows in line order). At most `workers` batches
/// are in flight beside the one the reader is parsing.
fn convert_on_workers(
    workers: usize,
    source: &mut dyn RawSource,
    converter: &mut Converter,
    t: &mut Tally,
    policy: Policy,
    tx: &mpsc::Sender<Result<RecordBatch>>,
    progress: Option<&Progress>,
) -> Result<()> {
    use std::sync::mpsc as std_mpsc;
    type Done = (u64, RawBatch, Result<Staged>);
    let (work_tx, work_rx) = std_mpsc::sync_channel::<(u64, RawBatch)>(workers);
    // The workers borrow the receiver; they take turns waiting on it.
    let work_rx = std::sync::Mutex::new(work_rx);
    std::thread::scope(|scope| -> Result<()> {
        // Moved in: however the loop below ends, the sender is dropped with it, and the workers
        // waiting for a batch stop before the scope joins them.
        let work_tx = work_tx;
        let (done_tx, done_rx) = std_mpsc::channel::<Done>();
        for _ in 0..workers {
            let (work_rx, done_tx, stage) = (&work_rx, done_tx.clone(), converter.stage());
            scope.spawn(move || {
                loop {
                    // The lock is held only while waiting for the next batch.
                    let job = match work_rx.lock() {
                        Ok(rx) => rx.recv(),
                        Err(_) => return,
                    };
                    let Ok((seq, raw)) = job else { return };
                    let staged = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| stage.run(&raw)))
                        .unwrap_or_else(|_| Err(LakeError::Other("a conversion worker failed".into())));
                    if done_tx.send((seq, raw, staged)).is_err() {
                        return;
                    }
                }
            });
        }
        drop(done_tx);
        let mut pending: BTreeMap<u64, (RawBatch, Result<Staged>)> = BTreeMap::new();
        let (mut sent, mut next) = (0u64, 0u64);
        // Wait for one staged batch, then finish every batch that is next in order.
        let settle = |pending: &mut BTreeMap<u64, (RawBatch, Result<Staged>)>,
                      next: &mut u64,
                      t: &mut Tally,
                      converter: &mut Converter|
         -> Result<()> {
            let (seq, raw, staged) =
                done_rx.recv().map_err(|_| LakeError::Other("the conversion workers stopped".into()))?;
            pending.insert(seq, (raw, staged));
            while let Some((raw, staged)) = pending.remove(next) {
                let converted = converter.finish(&raw, staged?)?;
                take_batch(t, raw.num_rows(), converted, policy, tx)?;
                *next += 1;
            }
            Ok(())
        };
        while let Some(raw) = source.next_batch()? {
            while sent - next >= workers as u64 {
                settle(&mut pending, &mut next, t, converter)?;
            }
            if work_tx.send((sent, raw)).is_err() {
                return Err(LakeError::Other("the conversion workers stopped".into()));
            }
            sent += 1;
            t.bytes = source.bytes_read();
            if let Some(p) = progress {
                p(t.bytes, t.rows_read);
            }
        }
        drop(work_tx);
        while next < sent {
            settle(&mut pending, &mut next, t, converter)?;
        }
        Ok(())
    })
}

/// Run one ingest from `source` into the resource's table.
pub async fn ingest(
    lake: &Lake,
    spec: IngestSpec,
    mut source: Box<dyn RawSource>,
    progress: Option<Progress>,
) -> Result<IngestReport> {
    let started = Instant::now();
    let mapping = Mapping::new(source.headers(), &spec.items, spec.ignore_extra)?;
    let eval = QualityEval::new(&spec.items, &spec.quality_rules, spec.references.clone(), chrono::Utc::now());
    let mut converter = Converter::new(&spec.items, &spec.rules, mapping).with_quality(eval);
    if spec.policy == Policy::Accept {
        converter = converter.keep_invalid_rows();
    }
    let keys: Vec<String> = converter.key_items().iter().map(|i| i.name.to_string()).collect();
    if spec.mode == WriteMode::Append && !keys.is_empty() {
        converter =
            converter.with_existing_keys(lake.key_hashes(spec.resource_id, &keys, spec.key_range.as_ref()).await?);
    }
    let schema = converter.schema().clone();
    let (tx, rx) = mpsc::channel::<Result<RecordBatch>>(2);
    let policy = spec.policy;
    let reader = tokio::task::spawn_blocking(move || -> Result<Tally> {
        let mut t = Tally {
            rows_read: 0,
            rows_ok: 0,
            counts: BTreeMap::new(),
            invalid: Vec::new(),
            bytes: 0,
            encoding: None,
            quality: None,
        };
        let outcome = (|| -> Result<()> {
            let workers = conversion_workers();
            if workers > 0 {
                convert_on_workers(workers, source.as_mut(), &mut converter, &mut t, policy, &tx, progress.as_ref())?;
            } else {
                while let Some(raw) = source.next_batch()? {
                    let converted = converter.convert(&raw)?;
                    take_batch(&mut t, raw.num_rows(), converted, policy, &tx)?;
                    t.bytes = source.bytes_read();
                    if let Some(p) = &progress {
                        p(t.bytes, t.rows_read);
                    }
                }
            }
            if t.rows_read == 0 {
                return Err(LakeError::at_line(
                    "no_rows",
                    2,
                    "文件只有表头，没有数据行 / the file has a header but no data rows",
                ));
            }
            Ok(())
        })();
        t.bytes = source.bytes_read();
        t.encoding = source.encoding();
        t.quality = converter.take_quality().map(|q| q.counts);
        // The key set and the reader's buffers are freed before the channel closes, that is
        // before the sort starts merging its runs.
        drop(converter);
        drop(source);
        release_freed_memory();
        match outcome {
            Ok(()) if policy == Policy::Reject && !t.invalid.is_empty() => {
                let _ = tx.blocking_send(Err(LakeError::Rejected("rejected".into())));
                Ok(t)
            }
            // Every row quarantined: nothing to commit, so no new (empty) version either.
            Ok(()) if policy == Policy::Quarantine && t.rows_ok == 0 && !t.invalid.is_empty() => {
                let _ = tx.blocking_send(Err(LakeError::Rejected("all_quarantined".into())));
                Ok(t)
            }
            Ok(()) => Ok(t),
            Err(e) => {
                let _ = tx.blocking_send(Err(LakeError::Other("input failed".into())));
                Err(e)
            }
        }
    });
    let app_id = spec.idempotency_key.as_ref().map(|k| format!("citydata-ingest:{k}"));
    let mut written = lake
        .write(
            spec.resource_id,
            schema,
            spec.mode,
            &keys,
            rx,
            crate::table::CommitTag { app_id: app_id.as_deref(), ingest_id: &spec.ingest_id.to_string() },
        )
        .await;
    let tally = reader.await.map_err(|e| LakeError::Other(format!("reader task: {e}")))?;
    // An input error explains a failed write better than the write's own error — unless the
    // input stopped only because the writer had.
    let tally = match (tally, written) {
        (Err(LakeError::Other(m)), Err(w)) if m == WRITER_STOPPED => return Err(w),
        (tally, w) => {
            written = w;
            tally?
        }
    };
    let rejected = policy == Policy::Reject && !tally.invalid.is_empty();
    let all_quarantined = policy == Policy::Quarantine && tally.rows_ok == 0 && !tally.invalid.is_empty();
    let (version, already_applied) = match written {
        Ok(w) => (w.version, w.already_applied),
        Err(_) if rejected || all_quarantined => (lake.version(spec.resource_id).await?, false),
        Err(e) => return Err(e),
    };
    if already_applied {
        let dur = started.elapsed();
        return Ok(IngestReport {
            ingest_id: spec.ingest_id,
            mode: spec.mode,
            policy,
            rows_read: tally.rows_read,
            rows_committed: 0,
            rows_quarantined: 0,
            failures: vec![],
            sample: vec![],
            duration_ms: dur.as_millis() as u64,
            rows_per_sec: 0.0,
            bytes_read: tally.bytes,
            encoding: tally.encoding.map(str::to_string),
            table_version: version,
            already_applied: true,
            rejected: false,
            all_quarantined: false,
            quality: None,
        });
    }
    let rows_quarantined = if rejected { 0 } else { tally.invalid.len() as u64 };
    if !rejected && !tally.invalid.is_empty() {
        let batches =
            tally.invalid.chunks(50_000).map(|c| quarantine_batch(spec.ingest_id, c)).collect::<Result<Vec<_>>>()?;
        lake.quarantine(spec.resource_id, batches).await?;
    }
    let rows_committed = match (rejected, policy) {
        (true, _) => 0,
        (false, Policy::Accept) => tally.rows_read,
        _ => tally.rows_ok,
    };
    let dur = started.elapsed();
    Ok(IngestReport {
        ingest_id: spec.ingest_id,
        mode: spec.mode,
        policy,
        rows_read: tally.rows_read,
        rows_committed,
        rows_quarantined,
        failures: tally
            .counts
            .into_iter()
            .map(|((item, title, rule), count)| FailureCount { item, title, rule, count })
            .collect(),
        sample: tally.invalid.into_iter().take(SAMPLE).collect(),
        duration_ms: dur.as_millis() as u64,
        rows_per_sec: if dur.as_secs_f64() > 0.0 { tally.rows_read as f64 / dur.as_secs_f64() } else { 0.0 },
        bytes_read: tally.bytes,
        encoding: tally.encoding.map(str::to_string),
        table_version: version,
        already_applied: false,
        rejected,
        all_quarantined,
        quality: tally.quality,
    })
}
