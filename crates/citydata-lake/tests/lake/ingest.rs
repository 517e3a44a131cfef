//! The ingest pipeline against real Delta tables in a temporary directory.

use citydata_domain::resource::{ResourceDraft, ResourceInput};
use citydata_lake::LakeError;
use citydata_lake::decode::Encoding;
use citydata_lake::ingest::{IngestSpec, Policy, ingest};
use citydata_lake::read::CsvSource;
use citydata_lake::table::{Lake, WriteMode};
use serde_json::json;
use uuid::Uuid;

fn population() -> (Vec<citydata_domain::resource::InfoItem>, Vec<citydata_domain::resource::ConsistencyRule>) {
    let input: ResourceInput = serde_json::from_value(json!({
        "name": "人口", "abstract": "x", "provider": "gaj",
        "classification": {"class": "basic", "theme": "population"},
        "format": {"category": "database"},
        "items": [
            {"name": "sfzh", "title": "身份证号", "key": true, "validator": "id_card"},
            {"name": "xm", "title": "姓名", "required": true},
            {"name": "xb", "title": "性别", "validator": "enum:男|女"},
            {"name": "csrq", "title": "出生日期", "data_type": "date"},
            {"name": "sjh", "title": "手机号", "validator": "mobile"},
            {"name": "zczb", "title": "存款", "data_type": "decimal"}
        ],
        "share": {"type": "unconditional"}, "open": {"type": "none"}, "update_cycle": "daily",
        "consistency": ["id_card_birth_date(sfzh, csrq)", "id_card_sex(sfzh, xb)"]
    }))
    .unwrap();
    let d = ResourceDraft::parse(&input).unwrap();
    (d.content.items, d.content.consistency)
}

fn id(region: &str, birth: &str, seq: u32) -> String {
    let first17 = format!("{region}{birth}{seq:03}");
    format!("{first17}{}", citydata_domain::identifiers::id_check_char(&first17).unwrap())
}

fn spec(rid: Uuid, mode: WriteMode, policy: Policy, key: Option<&str>) -> IngestSpec {
    let (items, rules) = population();
    IngestSpec {
        resource_id: rid,
        items,
        rules,
        mode,
        policy,
        ignore_extra: false,
        ingest_id: Uuid::new_v4(),
        idempotency_key: key.map(str::to_string),
        quality_rules: vec![],
        references: Default::default(),
        key_range: None,
    }
}

fn source(text: &str) -> Box<CsvSource> {
    Box::new(CsvSource::new(std::io::Cursor::new(text.as_bytes().to_vec()), Encoding::Auto, b',', b'"', true).unwrap())
}

async fn count(lake: &Lake, rid: Uuid) -> i64 {
    let b = lake.query(rid, None, "SELECT count(*) AS n FROM t").await.unwrap();
    b.first().map(|b| b.column(0).as_any().downcast_ref::<arrow::array::Int64Array>().unwrap().value(0)).unwrap_or(0)
}

#[tokio::test]
async fn valid_rows_commit_invalid_rows_are_quarantined_with_their_rule() {
    let dir = tempfile::tempdir().unwrap();
    let lake = Lake::new(dir.path().to_str().unwrap()).unwrap();
    let rid = Uuid::new_v4();
    let good1 = id("321202", "19900101", 11); // male (odd)
    let good2 = id("321203", "19851231", 22); // female
    let bad_check = format!("{}{}", &good1[..17], if good1.ends_with('0') { "1" } else { "0" });
    let wrong_sex = id("321204", "19700505", 33); // male, but the row says 女
    let text = format!(
        "身份证号,姓名,性别,出生日期,手机号,存款\n\
         {good1},张三,男,1990/1/1,13812345678,\"1,234.5\"\n\
         {good2},李四,女,1985年12月31日,,0\n\
         {bad_check},王五,男,1990-01-01,13812345678,1\n\
         {wrong_sex},赵六,女,19700505,1381234567,2\n\
         {good1},重复,男,1990-01-01,,3\n"
    );
    let r = ingest(&lake, spec(rid, WriteMode::Append, Policy::Quarantine, None), source(&text), None).await.unwrap();
    assert_eq!((r.rows_read, r.rows_committed, r.rows_quarantined), (5, 2, 3));
    assert_eq!(r.table_version, Some(0));
    let rules: Vec<&str> = r.failures.iter().map(|f| f.rule.as_str()).collect();
    for rule in ["id_card", "id_card_sex", "mobile", "unique_key"] {
        assert!(rules.contains(&rule), "{rule} missing from {rules:?}");
    }
    assert_eq!(r.sample[0].line, 4);
    let inline_before = citydata_lake::local_store::inline_reads();
    assert_eq!(count(&lake, rid).await, 2);
    assert!(
        citydata_lake::local_store::inline_reads() > inline_before,
        "a local table is read through the lake's inline store"
    );
    let q = lake.query_quarantine(rid, "SELECT rule, line FROM t ORDER BY line").await.unwrap();
    assert_eq!(q.iter().map(|b| b.num_rows()).sum::<usize>(), 3);
    // Decimals keep their value.
    let b = lake.query(rid, None, "SELECT CAST(zczb AS VARCHAR) FROM t WHERE xm = '张三'").await.unwrap();
    assert_eq!(arrow::util::display::array_value_to_string(b[0].column(0), 0).unwrap(), "1234.500000");
}

#[tokio::test]
async fn modes_upsert_delete_replace_and_idempotency() {
    let dir = tempfile::tempdir().unwrap();
    let lake = Lake::new(dir.path().to_str().unwrap()).unwrap();
    let rid = Uuid::new_v4();
    let a = id("321202", "19900101", 11);
    let b = id("321202", "19900101", 13);
    let c = id("321202", "19900101", 15);
    let first = format!("sfzh,xm,xb,csrq\n{a},甲,男,1990-01-01\n{b},乙,男,1990-01-01\n");
    let r = ingest(&lake, spec(rid, WriteMode::Append, Policy::Quarantine, Some("k1")), source(&first), None)
        .await
        .unwrap();
    assert_eq!(r.table_version, Some(0));
    // The same key again changes nothing.
    let r = ingest(&lake, spec(rid, WriteMode::Append, Policy::Quarantine, Some("k1")), source(&first), None)
        .await
        .unwrap();
    assert!(r.already_applied);
    assert_eq!(lake.version(rid).await.unwrap(), Some(0));
    assert_eq!(count(&lake, rid).await, 2);
    // Appending an existing key is quarantined.
    let r = ingest(
        &lake,
        spec(rid, WriteMode::Append, Policy::Quarantine, None),
        source(&format!("sfzh,xm\n{a},甲2\n")),
        None,
    )
    .await
    .unwrap();
    assert_eq!(r.failures[0].rule, "unique_key");
    // Its only row quarantined: nothing committed, no empty version.
    assert!(r.all_quarantined && r.rows_committed == 0);
    assert_eq!(lake.version(rid).await.unwrap(), Some(0));
    // Upsert updates a and inserts c.
    let up = format!("sfzh,xm\n{a},甲改\n{c},丙\n");
    let r = ingest(&lake, spec(rid, WriteMode::Upsert, Policy::Quarantine, None), source(&up), None).await.unwrap();
    assert_eq!(r.rows_committed, 2);
    assert_eq!(count(&lake, rid).await, 3);
    let names = lake.query(rid, None, &format!("SELECT xm FROM t WHERE sfzh = '{a}'")).await.unwrap();
    assert_eq!(arrow::util::display::array_value_to_string(names[0].column(0), 0).unwrap(), "甲改");
    // Delete by key.
    let del = format!("sfzh,xm\n{b},x\n");
    ingest(&lake, spec(rid, WriteMode::Delete, Policy::Quarantine, None), source(&del), None).await.unwrap();
    assert_eq!(count(&lake, rid).await, 2);
    // Replace: the new version holds only these rows; the old version is still readable.
    let before = lake.version(rid).await.unwrap().unwrap();
    ingest(&lake, spec(rid, WriteMode::Replace, Policy::Quarantine, None), source(&format!("sfzh,xm\n{b},乙\n")), None)
        .await
        .unwrap();
    assert_eq!(count(&lake, rid).await, 1);
    let old = lake.query(rid, Some(before), "SELECT count(*) FROM t").await.unwrap();
    assert_eq!(arrow::util::display::array_value_to_string(old[0].column(0), 0).unwrap(), "2");
    let history = lake.history(rid).await.unwrap();
    assert_eq!(history.len(), 4, "append, upsert, delete, replace: {history:?}");
    assert!(history[0].ingest_id.is_some());
}

#[tokio::test]
async fn reject_policy_commits_nothing_and_bad_input_leaves_the_table_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let lake = Lake::new(dir.path().to_str().unwrap()).unwrap();
    let rid = Uuid::new_v4();
    let a = id("321202", "19900101", 11);
    ingest(&lake, spec(rid, WriteMode::Append, Policy::Quarantine, None), source(&format!("sfzh,xm\n{a},甲\n")), None)
        .await
        .unwrap();
    let v0 = lake.version(rid).await.unwrap();
    let b = id("321202", "19900101", 13);
    let r = ingest(
        &lake,
        spec(rid, WriteMode::Append, Policy::Reject, None),
        source(&format!("sfzh,xm\n{b},乙\n123,丙\n")),
        None,
    )
    .await
    .unwrap();
    assert!(r.rejected);
    assert_eq!(r.rows_committed, 0);
    assert_eq!(lake.version(rid).await.unwrap(), v0);
    // A ragged row mid-file: an error naming the line, nothing committed.
    let many: String =
        (0..40_000).map(|i| format!("{},人{i}\n", id("321202", "19900101", (i % 900) as u32))).collect::<String>();
    let text = format!("sfzh,xm\n{many}x,y,z\n");
    let e =
        ingest(&lake, spec(rid, WriteMode::Replace, Policy::Quarantine, None), source(&text), None).await.unwrap_err();
    assert!(matches!(&e, LakeError::Input { code: "ragged_row", line: Some(40002), .. }), "{e:?}");
    assert_eq!(lake.version(rid).await.unwrap(), v0);
    assert_eq!(count(&lake, rid).await, 1);
    // Unknown columns and missing required items are named before anything is read.
    let e = ingest(&lake, spec(rid, WriteMode::Append, Policy::Quarantine, None), source("sfzh,xm,color\n"), None)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("color"), "{e}");
    let e = ingest(&lake, spec(rid, WriteMode::Append, Policy::Quarantine, None), source("xb\n男\n"), None)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("身份证号") && e.to_string().contains("姓名"), "{e}");
}

/// Every tenth commit leaves a checkpoint, so opening a table replays at most ten commit files
/// (the memory a read's log replay takes grows with them); reads, history and old versions
/// are unchanged by it.
#[tokio::test]
async fn a_checkpoint_every_ten_commits_keeps_the_log_replay_short() {
    let dir = tempfile::tempdir().unwrap();
    let lake = Lake::new(dir.path().to_str().unwrap()).unwrap();
    let rid = Uuid::new_v4();
    for n in 0..23u32 {
        let row = format!("sfzh,xm\n{},人{n}\n", id("321202", "19900101", n));
        let mode = if n == 0 { WriteMode::Append } else { WriteMode::Upsert };
        ingest(&lake, spec(rid, mode, Policy::Quarantine, None), source(&row), None).await.unwrap();
    }
    assert_eq!(lake.version(rid).await.unwrap(), Some(22));
    let log = dir.path().join("tables").join(rid.to_string()).join("_delta_log");
    let mut checkpoints: Vec<String> = std::fs::read_dir(&log)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .filter(|n| n.ends_with(".checkpoint.parquet"))
        .collect();
    checkpoints.sort();
    assert_eq!(
        checkpoints,
        ["00000000000000000009.checkpoint.parquet", "00000000000000000019.checkpoint.parquet"],
        "in {}",
        log.display()
    );
    assert_eq!(count(&lake, rid).await, 23);
    let at_five = lake.query(rid, Some(5), "SELECT count(*) FROM t").await.unwrap();
    assert_eq!(arrow::util::display::array_value_to_string(at_five[0].column(0), 0).unwrap(), "6");
    assert_eq!(lake.history(rid).await.unwrap().len(), 23);
}

/// The longitude/latitude pair path (parallel for large batches in a converted system) gives
/// each row what the `lon,lat` text cell gives: the same stored point, the same rule.
#[test]
fn column_pairs_agree_with_text_cells_row_for_row() {
    use arrow::array::{Array, BinaryArray, StringArray};
    use citydata_domain::crs::Crs;
    use citydata_lake::spatial::{PairCell, pair_column};
    for validator in ["crs:gcj02", "crs:bd09", "crs:cgcs2000"] {
        let input: ResourceInput = serde_json::from_value(json!({
            "name": "点位", "abstract": "x", "provider": "gaj",
            "classification": {"class": "basic", "theme": "geospatial"}, "format": {"category": "database"},
            "items": [{"name": "wz", "title": "位置", "data_type": "point", "validator": validator}],
            "share": {"type": "unconditional"}, "open": {"type": "none"}, "update_cycle": "daily"
        }))
        .unwrap();
        let item = ResourceDraft::parse(&input).unwrap().content.items.remove(0);
        let crs = citydata_lake::spatial::declared_crs(&item);
        let n = 9_001;
        let cells: Vec<(Option<String>, Option<String>)> = (0..n)
            .map(|i| match i % 97 {
                0 => (None, None),
                1 => (Some("abc".into()), Some("32.1".into())),
                2 => (Some("10.5".into()), Some("50.1".into())),
                3 => (Some("120.1".into()), None),
                _ => (
                    Some(format!("{:.7}", 119.7 + (i as f64) * 0.0001)),
                    Some(format!("{:.7}", 32.0 + (i % 500) as f64 * 0.002)),
                ),
            })
            .collect();
        let lon = StringArray::from(cells.iter().map(|c| c.0.clone()).collect::<Vec<_>>());
        let lat = StringArray::from(cells.iter().map(|c| c.1.clone()).collect::<Vec<_>>());
        let (col, out) = pair_column(&item, Some(&lon), Some(&lat), n);
        let col = col.as_any().downcast_ref::<BinaryArray>().unwrap();
        for (i, (l, t)) in cells.iter().enumerate() {
            let text = format!("{},{}", l.as_deref().unwrap_or(""), t.as_deref().unwrap_or(""));
            match (l.is_none() && t.is_none(), citydata_domain::geo_cell::parse_cell(&text, crs, true)) {
                (true, _) => assert!(matches!(out[i], PairCell::Null) && col.is_null(i)),
                (false, Ok(g)) => {
                    assert!(matches!(out[i], PairCell::Point(..)), "row {i}");
                    assert_eq!(col.value(i), g.to_wkb().as_slice(), "row {i} ({validator})");
                }
                (false, Err(e)) => {
                    assert!(matches!(out[i], PairCell::Bad(r) if r == e.code), "row {i}: {}", e.code);
                    assert!(col.is_null(i));
                }
            }
        }
        assert_ne!(crs == Crs::Cgcs2000, validator != "crs:cgcs2000");
    }
}

/// Data files are written for lookups: rows in key order (each page and row group a disjoint
/// key range), the key has a bloom filter and no dictionary, pages hold at most 8,192 rows
/// (the page index can skip to one), and a dictionary stops at `DICTIONARY_PAGE_BYTES` (a
/// column of few values keeps it; a column of many falls back to plain encoding).
#[tokio::test]
async fn data_files_are_laid_out_for_lookups() {
    use arrow::array::{RecordBatch, StringArray};
    use arrow::datatypes::{DataType, Field, Schema};
    use citydata_lake::table::CommitTag;
    use parquet::basic::Encoding as PqEncoding;
    use parquet::file::reader::FileReader;
    use parquet::file::serialized_reader::{ReadOptionsBuilder, SerializedFileReader};
    use std::sync::Arc;
    let dir = tempfile::tempdir().unwrap();
    let lake = Lake::new(dir.path().to_str().unwrap()).unwrap();
    let rid = Uuid::new_v4();
    let n = 20_000;
    let schema = Arc::new(Schema::new(vec![
        Field::new("k", DataType::Utf8, true),
        Field::new("few", DataType::Utf8, true),
        Field::new("many", DataType::Utf8, true),
    ]));
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![
            // Keys arrive scrambled; the file holds them in order.
            Arc::new(StringArray::from_iter_values((0..n).map(|i| format!("{:018}", (i * 7919) % n)))),
            Arc::new(StringArray::from_iter_values((0..n).map(|i| ["海陵区", "高港区", "姜堰区"][i % 3]))),
            Arc::new(StringArray::from_iter_values((0..n).map(|i| format!("江苏省泰州市某路{i}号{}", i * 7919)))),
        ],
    )
    .unwrap();
    let (tx, rx) = tokio::sync::mpsc::channel(1);
    tx.send(Ok(batch)).await.unwrap();
    drop(tx);
    let keys = vec!["k".to_string()];
    lake.write(rid, schema, WriteMode::Append, &keys, rx, CommitTag { app_id: None, ingest_id: "t" }).await.unwrap();
    let table_dir = lake.table_url(rid).unwrap().to_file_path().unwrap();
    let file = std::fs::read_dir(&table_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|x| x == "parquet"))
        .expect("a data file");
    let options = ReadOptionsBuilder::new().with_page_index().build();
    let reader = SerializedFileReader::new_with_options(std::fs::File::open(&file).unwrap(), options).unwrap();
    let meta = reader.metadata();
    let rg = meta.row_group(0);
    let dictionary = |c: usize| {
        rg.column(c).encodings().any(|e| matches!(e, PqEncoding::RLE_DICTIONARY | PqEncoding::PLAIN_DICTIONARY))
    };
    assert!(rg.column(0).bloom_filter_offset().is_some(), "the key has a bloom filter");
    assert!(!dictionary(0), "the key has no dictionary");
    assert!(dictionary(1), "a column of three values keeps its dictionary");
    let pages = &meta.offset_index().expect("an offset index")[0][0];
    assert!(
        pages.page_locations().len() >= 3,
        "20,000 rows in pages of at most 8,192: {}",
        pages.page_locations().len()
    );
    for w in pages.page_locations().windows(2) {
        assert!(w[1].first_row_index - w[0].first_row_index <= 8_192, "{:?}", pages.page_locations());
    }
    // The rows are in key order (sorted before the writer cut them into pages).
    let in_file: Vec<String> =
        parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(&file).unwrap())
            .unwrap()
            .build()
            .unwrap()
            .flat_map(|b| {
                let b = b.unwrap();
                let k = b.column(0).as_any().downcast_ref::<StringArray>().unwrap().clone();
                (0..arrow::array::Array::len(&k)).map(move |i| k.value(i).to_string()).collect::<Vec<_>>()
            })
            .collect();
    assert_eq!(in_file.len(), n);
    assert!(in_file.windows(2).all(|w| w[0] < w[1]), "keys in order in the file");
    // The many-valued column: whatever dictionary it has is at most the limit plus a header
    // (compressed, so smaller still).
    if let Some(dict) = rg.column(2).dictionary_page_offset() {
        let first_data = meta.offset_index().unwrap()[0][2].page_locations()[0].offset;
        let limit = citydata_lake::table::DICTIONARY_PAGE_BYTES as i64;
        assert!(first_data - dict <= limit + 1024, "dictionary of {} bytes", first_data - dict);
    }
}

static FREED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

fn count_release() {
    FREED.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
}

/// The server's hook that hands freed memory back to the system runs once the reader is done
/// (its key set dropped), before the sorted rows are written: an ingest runs it, and the rows
/// still commit.
#[tokio::test]
async fn an_ingest_runs_the_after_read_hook_and_still_commits() {
    let _ = citydata_lake::ingest::AFTER_READ.set(count_release);
    let dir = tempfile::tempdir().unwrap();
    let lake = Lake::new(dir.path().to_str().unwrap()).unwrap();
    let rid = Uuid::new_v4();
    let text = format!(
        "身份证号,姓名,性别,出生日期,手机号,存款\n{},张三,男,1990-01-01,,1\n{},李四,女,1985-12-31,,2\n",
        id("321202", "19900101", 11),
        id("321203", "19851231", 22)
    );
    let before = FREED.load(std::sync::atomic::Ordering::SeqCst);
    let r = ingest(&lake, spec(rid, WriteMode::Replace, Policy::Quarantine, None), source(&text), None).await.unwrap();
    assert!(FREED.load(std::sync::atomic::Ordering::SeqCst) > before, "the hook ran");
    assert_eq!((r.rows_committed, count(&lake, rid).await), (2, 2));
}

/// A file of several batches (16,384 rows each) with keys repeated across batches, bad
/// identity numbers and birth dates the numbers disagree with: the text and the lines the
/// quarantine should hold, in order.
fn many_batches(rows: u32) -> (String, Vec<u64>) {
    let person = |n: u32| {
        let birth = chrono::NaiveDate::from_ymd_opt(1950, 1, 1).unwrap() + chrono::Duration::days(i64::from(n / 1000));
        (id("321202", &birth.format("%Y%m%d").to_string(), n % 1000), birth.format("%Y-%m-%d").to_string())
    };
    let mut text = String::from("身份证号,姓名,性别,出生日期,手机号,存款\n");
    let mut bad = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for i in 0..rows {
        // Every 997th row from 20,011 on repeats the key of the row 20,011 rows before it,
        // in an earlier batch: the earlier row is kept.
        let repeat = i >= 20_011 && i % 997 == 0;
        let (key, birth) = person(if repeat { i - 20_011 } else { i });
        let (sfzh, csrq) = match i % 1_501 {
            7 => (format!("{}{}", &key[..17], if key.ends_with('0') { "1" } else { "0" }), birth),
            11 => (key, "1949-10-01".to_string()),
            _ => (key, birth),
        };
        // A row bad by itself does not claim its key; of valid rows, the first with a key wins.
        if i % 1_501 == 7 || i % 1_501 == 11 || !seen.insert(sfzh.clone()) {
            bad.push(u64::from(i) + 2);
        }
        text.push_str(&format!(
            "{sfzh},人{i},{},{csrq},,{i}\n",
            if sfzh.as_bytes()[16] % 2 == 1 { "男" } else { "女" }
        ));
    }
    (text, bad)
}

/// The batches of a file converted on worker threads (when the machine has more than one
/// core) and finished in order: the quarantine holds exactly the bad lines in order, and of
/// two rows with one key the first is kept.
#[tokio::test]
async fn a_file_of_many_batches_keeps_the_first_of_each_key_and_quarantines_in_line_order() {
    let dir = tempfile::tempdir().unwrap();
    let lake = Lake::new(dir.path().to_str().unwrap()).unwrap();
    let rid = Uuid::new_v4();
    let rows = 50_000;
    let (text, bad) = many_batches(rows);
    let r = ingest(&lake, spec(rid, WriteMode::Append, Policy::Quarantine, None), source(&text), None).await.unwrap();
    assert_eq!(r.rows_read, u64::from(rows));
    assert_eq!(r.rows_quarantined, bad.len() as u64);
    assert_eq!(r.rows_committed, u64::from(rows) - bad.len() as u64);
    let q = lake.query_quarantine(rid, "SELECT line FROM t ORDER BY line").await.unwrap();
    let lines: Vec<u64> = q
        .iter()
        .flat_map(|b| {
            let c = b.column(0).as_any().downcast_ref::<arrow::array::Int64Array>().unwrap();
            c.values().iter().map(|v| *v as u64).collect::<Vec<_>>()
        })
        .collect();
    assert_eq!(lines, bad);
    // Row 20,937 (997 × 21) repeats row 926's key, in the first batch: 人926 is the one kept.
    let kept = lake.query(rid, None, "SELECT xm FROM t WHERE xm IN ('人926', '人20937')").await.unwrap();
    let names: Vec<String> = kept
        .iter()
        .flat_map(|b| (0..b.num_rows()).map(|i| arrow::util::display::array_value_to_string(b.column(0), i).unwrap()))
        .collect();
    assert_eq!(names, vec!["人926".to_string()]);
    assert!(bad.len() > 60, "the file has repeats and bad rows in every batch: {}", bad.len());
    assert_eq!(count(&lake, rid).await as u64, r.rows_committed);
}

/// Staging batches on threads in any order and finishing them in order gives exactly what one
/// thread converting them one by one gives.
#[test]
fn batches_staged_out_of_order_finish_as_one_thread_converts_them() {
    use citydata_lake::convert::{Converter, Mapping};
    use citydata_lake::read::RawSource;
    let (items, rules) = population();
    let (text, bad) = many_batches(40_000);
    let mut src = source(&text);
    let mapping = Mapping::new(src.headers(), &items, false).unwrap();
    let mut raws = Vec::new();
    while let Some(raw) = src.next_batch().unwrap() {
        raws.push(raw);
    }
    assert!(raws.len() >= 3, "{} batches", raws.len());
    let mut one = Converter::new(&items, &rules, mapping.clone());
    let expected: Vec<_> = raws.iter().map(|r| one.convert(r).unwrap()).collect();
    let mut two = Converter::new(&items, &rules, mapping);
    let stage = two.stage();
    let mut staged: Vec<_> = std::thread::scope(|s| {
        let handles: Vec<_> = raws.iter().rev().map(|r| s.spawn(|| stage.run(r).unwrap())).collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    staged.reverse();
    let mut lines = Vec::new();
    for ((raw, staged), want) in raws.iter().zip(staged).zip(&expected) {
        let got = two.finish(raw, staged).unwrap();
        assert_eq!(got.batch, want.batch);
        let key = |rows: &[citydata_lake::convert::InvalidRow]| {
            rows.iter().map(|r| (r.line, r.failures.clone())).collect::<Vec<_>>()
        };
        assert_eq!(key(&got.invalid), key(&want.invalid));
        lines.extend(got.invalid.iter().map(|r| r.line));
    }
    assert_eq!(lines, bad);
}

/// A key's hash is the hash of its trimmed, upper-cased parts, however the text is written
/// (the stored tables' key sets were hashed that way: a change would let a repeated key in).
#[test]
fn key_hashes_are_those_of_the_upper_cased_parts() {
    use std::hash::{Hash, Hasher};
    let reference = |parts: &[&str]| {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        for p in parts {
            p.trim().to_uppercase().hash(&mut h);
            0xffu8.hash(&mut h);
        }
        h.finish()
    };
    for parts in [
        vec!["11010519491231002X"],
        vec![" 11010519491231002x "],
        vec!["abc", "DEF"],
        vec!["泰州市", "ß"],
        vec!["ǅ"],
        vec![""],
        vec!["A", ""],
    ] {
        assert_eq!(citydata_lake::convert::key_hash(parts.iter().copied()), reference(&parts), "{parts:?}");
    }
    assert_eq!(
        citydata_lake::convert::key_hash(["11010519491231002x"]),
        citydata_lake::convert::key_hash(["11010519491231002X"])
    );
}
