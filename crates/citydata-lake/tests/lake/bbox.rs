//! Bounding-box columns of spatial items (issue #24): spatial filters answer exactly what the
//! geometry predicates say, on a table that had no box columns, gained them by an upsert and
//! an append, and was compacted; the columns never show; the plan tests them.

use arrow::array::{Array, RecordBatch, StringArray};
use arrow::datatypes::Schema;
use citydata_domain::filter::Filter;
use citydata_domain::geo::{Geometry, Regions, distance_m};
use citydata_domain::resource::{InfoItem, ItemName, ResourceDraft, ResourceInput};
use citydata_lake::governed::{GovernedRead, Order};
use citydata_lake::table::{CommitTag, Lake, WriteMode};
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use uuid::Uuid;

fn items() -> Vec<InfoItem> {
    let input: ResourceInput = serde_json::from_value(json!({
        "name": "点位", "abstract": "x", "provider": "gaj",
        "classification": {"class": "basic", "theme": "geospatial"}, "format": {"category": "database"},
        "items": [
            {"name": "bh", "title": "编号", "key": true},
            {"name": "wz", "title": "位置", "data_type": "point"},
            {"name": "fw", "title": "范围", "data_type": "geometry"}
        ],
        "share": {"type": "unconditional"}, "open": {"type": "none"}, "update_cycle": "daily"
    }))
    .unwrap();
    ResourceDraft::parse(&input).unwrap().content.items
}

/// Row `i` of generation `g`: a point and a small polygon around 泰州 (every 13th cell NULL),
/// deterministic.
fn row(i: u32, g: u32) -> (String, Option<Geometry>, Option<Geometry>) {
    let mut s = u64::from(i) * 0x9E37_79B9 + u64::from(g) * 0x85EB_CA6B + 1;
    let mut next = || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        (s % 1_000_000) as f64 / 1_000_000.0
    };
    let (x, y) = (119.8 + next() * 0.4, 32.3 + next() * 0.3);
    let r = 0.001 + next() * 0.03;
    let p = (i % 13 != 5).then_some(Geometry::Point(x, y));
    let poly = (i % 13 != 7)
        .then(|| Geometry::Polygon(vec![vec![(x, y), (x + r, y), (x + r, y + r * 0.7), (x, y + r), (x, y)]]));
    (format!("P{i:05}"), p, poly)
}

/// A lake in a temporary directory and a table id in it.
fn new_table() -> (tempfile::TempDir, Lake, Uuid) {
    let dir = tempfile::tempdir().unwrap();
    let lake = Lake::new(dir.path().to_str().unwrap()).unwrap();
    (dir, lake, Uuid::new_v4())
}

/// `schema` as tables were written before the box columns existed: no spatial mark.
fn unmarked(schema: &Schema) -> Arc<Schema> {
    Arc::new(Schema::new(
        schema.fields().iter().map(|f| f.as_ref().clone().with_metadata(Default::default())).collect::<Vec<_>>(),
    ))
}

fn batch(schema: &Arc<Schema>, rows: &[(String, Option<Geometry>, Option<Geometry>)]) -> RecordBatch {
    let wkb = |g: &Option<Geometry>| g.as_ref().map(Geometry::to_wkb);
    RecordBatch::try_new(
        schema.clone(),
        vec![
            Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.0.clone()))),
            Arc::new(arrow::array::BinaryArray::from_iter(rows.iter().map(|r| wkb(&r.1)))),
            Arc::new(arrow::array::BinaryArray::from_iter(rows.iter().map(|r| wkb(&r.2)))),
        ],
    )
    .unwrap()
}

async fn write(lake: &Lake, id: Uuid, schema: &Arc<Schema>, mode: WriteMode, b: RecordBatch) {
    let (tx, rx) = tokio::sync::mpsc::channel(1);
    tx.send(Ok(b)).await.unwrap();
    drop(tx);
    let keys = vec!["bh".to_string()];
    lake.write(id, schema.clone(), mode, &keys, rx, CommitTag { app_id: None, ingest_id: "t" }).await.unwrap();
}

fn read<'a>(filter: &'a Filter, masks: &'a BTreeMap<ItemName, citydata_domain::mask::MaskSpec>) -> GovernedRead<'a> {
    let name = |s: &str| ItemName::parse(s).unwrap();
    GovernedRead {
        fields: vec![name("bh"), name("wz"), name("fw")],
        masks,
        filters: vec![filter],
        sort: vec![],
        offset: 0,
        limit: None,
        version: None,
        secret: b"test",
        contains: vec![],
        order: Some(Order::Items(vec![name("bh")])),
        spatial: vec![name("wz"), name("fw")],
        regions: None,
    }
}

fn keys_of(batches: &[RecordBatch]) -> BTreeSet<String> {
    for b in batches {
        let names: Vec<&str> = b.schema_ref().fields().iter().map(|f| f.name().as_str()).collect();
        assert_eq!(names, ["bh", "wz", "fw"], "a read shows the items only, never a box column");
    }
    keys_of_one(batches)
}

fn keys_of_one(batches: &[RecordBatch]) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for b in batches {
        let k = arrow::compute::cast(b.column(0), &arrow::datatypes::DataType::Utf8).unwrap();
        let k = k.as_any().downcast_ref::<StringArray>().unwrap();
        out.extend((0..k.len()).map(|i| k.value(i).to_string()));
    }
    out
}

#[tokio::test]
async fn spatial_filters_answer_exactly_before_and_after_the_box_columns() {
    let (_dir, lake, id) = new_table();
    let items = items();
    let marked = citydata_lake::schema::table_schema(&items);
    // A table as written before the box columns existed: the fields carry no spatial mark.
    let plain = unmarked(&marked);
    let mut state: BTreeMap<String, (Option<Geometry>, Option<Geometry>)> = BTreeMap::new();
    let mut apply = |rows: &[(String, Option<Geometry>, Option<Geometry>)]| {
        for r in rows {
            state.insert(r.0.clone(), (r.1.clone(), r.2.clone()));
        }
    };
    let old: Vec<_> = (0..1000).map(|i| row(i, 0)).collect();
    write(&lake, id, &plain, WriteMode::Append, batch(&plain, &old)).await;
    apply(&old);
    // An upsert moving half of the old rows and adding new ones: the table has no box
    // columns yet, so it is written without them.
    let upsert: Vec<_> = (500..1500).map(|i| row(i, 1)).collect();
    write(&lake, id, &marked, WriteMode::Upsert, batch(&marked, &upsert)).await;
    apply(&upsert);
    // An append gives the table its box columns (the older files read them as NULL) ...
    let more: Vec<_> = (1500..3000).map(|i| row(i, 2)).collect();
    write(&lake, id, &marked, WriteMode::Append, batch(&marked, &more)).await;
    apply(&more);
    // ... and later upserts write them: rows of old files and new ones move.
    let moved: Vec<_> = (0..300).chain(2000..2300).map(|i| row(i, 3)).collect();
    write(&lake, id, &marked, WriteMode::Upsert, batch(&marked, &moved)).await;
    apply(&moved);
    let n = lake.query(id, None, "SELECT count(*) AS n, count(DISTINCT bh) AS k FROM t").await.unwrap();
    let counts = arrow::util::pretty::pretty_format_batches(&n).unwrap().to_string();
    assert!(counts.contains("| 3000 | 3000 |"), "every row once:\n{counts}");

    let district = Arc::new(Geometry::Polygon(vec![vec![
        (119.90, 32.35),
        (120.05, 32.38),
        (120.02, 32.52),
        (119.93, 32.48),
        (119.90, 32.35),
    ]]));
    let regions = Regions { by_code: BTreeMap::from([("321202".to_string(), district.clone())]) };
    let b = citydata_domain::geo::BBox { min_lon: 119.9, min_lat: 32.35, max_lon: 120.0, max_lat: 32.45 };
    type Test = Box<dyn Fn(&str, &Option<Geometry>, &Option<Geometry>) -> bool>;
    let near = |g: &Geometry, m: f64| distance_m(g.anchor(), (120.0, 32.4)) < m;
    let cases: Vec<(&str, Test)> = vec![
        (
            "within(wz, bbox(119.9, 32.35, 120.0, 32.45))",
            Box::new(move |_, p, _| p.as_ref().is_some_and(|g| g.within_bbox(&b))),
        ),
        (
            "within(fw, bbox(119.9, 32.35, 120.0, 32.45))",
            Box::new(move |_, _, f| f.as_ref().is_some_and(|g| g.within_bbox(&b))),
        ),
        (
            "distance(wz, point(120.0, 32.4)) < 5000",
            Box::new(move |_, p, _| p.as_ref().is_some_and(|g| near(g, 5000.0))),
        ),
        (
            "distance(fw, point(120.0, 32.4)) < 3000",
            Box::new(move |_, _, f| f.as_ref().is_some_and(|g| near(g, 3000.0))),
        ),
        ("within(wz, '321202')", {
            let d = district.clone();
            Box::new(move |_, p, _| p.as_ref().is_some_and(|g| g.within_shape(&d)))
        }),
        ("within(fw, '321202')", {
            let d = district.clone();
            Box::new(move |_, _, f| f.as_ref().is_some_and(|g| g.within_shape(&d)))
        }),
        // A NULL geometry is neither inside nor outside.
        (
            "NOT within(wz, bbox(119.9, 32.35, 120.0, 32.45))",
            Box::new(move |_, p, _| p.as_ref().is_some_and(|g| !g.within_bbox(&b))),
        ),
        (
            "within(wz, bbox(119.9, 32.35, 120.0, 32.45)) OR bh = 'P00005'",
            Box::new(move |k, p, _| k == "P00005" || p.as_ref().is_some_and(|g| g.within_bbox(&b))),
        ),
    ];
    let masks = BTreeMap::new();
    for round in ["after the upsert and append", "after compaction"] {
        for (text, test) in &cases {
            let f = Filter::parse_in(text, &items, Some(&regions)).unwrap();
            let want: BTreeSet<String> =
                state.iter().filter(|(k, (p, g))| test(k, p, g)).map(|(k, _)| k.clone()).collect();
            assert!(
                want.len() > 5 && want.len() < state.len() - 5,
                "{text}: a filter that tells rows apart ({})",
                want.len()
            );
            let got = keys_of(&lake.read_governed(id, &read(&f, &masks)).await.unwrap());
            assert_eq!(got, want, "{text} {round}");
            let plan = lake.explain_governed(id, &read(&f, &masks)).await.unwrap();
            assert!(plan.contains("__citydata_bbox_"), "{text}: the plan tests the box columns first:\n{plan}");
        }
        lake.compact(id, &["bh".to_string()], 0).await.unwrap();
    }
    // The change feed across a compaction (no change) and of the whole history, unfiltered.
    let last: Vec<_> = (3000..3010).map(|i| row(i, 4)).collect();
    write(&lake, id, &marked, WriteMode::Append, batch(&marked, &last)).await;
    let compacted = lake.compact(id, &["bh".to_string()], 0).await.unwrap().expect("two files").version.unwrap();
    let none = Filter::parse("bh IS NOT NULL", &items).unwrap();
    let mut all = read(&none, &masks);
    all.filters.clear();
    let name = |s: &str| ItemName::parse(s).unwrap();
    let (changes, _) = lake.changes_governed(id, compacted - 1, None, &[name("bh")], &all).await.unwrap().unwrap();
    assert_eq!(changes.iter().map(RecordBatch::num_rows).sum::<usize>(), 0, "compaction changes nothing");
    let (changes, _) = lake.changes_governed(id, 0, None, &[name("bh")], &all).await.unwrap().unwrap();
    assert!(changes.iter().map(RecordBatch::num_rows).sum::<usize>() > 0);
    // The change feed of the compacted table, filtered by a spatial test, still plans and
    // shows items only.
    let f = Filter::parse_in(cases[0].0, &items, Some(&regions)).unwrap();
    let (changes, _) = lake.changes_governed(id, 0, None, &[name("bh")], &read(&f, &masks)).await.unwrap().unwrap();
    let fields: Vec<String> = changes[0].schema().fields().iter().map(|f| f.name().clone()).collect();
    assert_eq!(fields, ["bh", "wz", "fw", "_change_type", "_commit_version"]);
    assert!(changes.iter().map(RecordBatch::num_rows).sum::<usize>() > 0);
}

/// Files of disjoint areas: a box in one area skips the other's files by their statistics.
#[tokio::test]
async fn a_box_skips_the_files_of_other_areas() {
    let (_dir, lake, id) = new_table();
    let items = items();
    let schema = citydata_lake::schema::table_schema(&items);
    for (area, x0) in [(0u32, 119.5), (1, 120.3)] {
        let rows: Vec<_> = (0..2000)
            .map(|i| {
                let (k, _, _) = row(area * 10_000 + i, 0);
                let (x, y) = (x0 + f64::from(i % 50) * 0.001, 32.4 + f64::from(i / 50) * 0.001);
                (k, Some(Geometry::Point(x, y)), None)
            })
            .collect();
        write(&lake, id, &schema, WriteMode::Append, batch(&schema, &rows)).await;
    }
    let f = Filter::parse("within(wz, bbox(119.5, 32.4, 119.52, 32.41))", &items).unwrap();
    let masks = BTreeMap::new();
    let got = keys_of(&lake.read_governed(id, &read(&f, &masks)).await.unwrap());
    assert_eq!(got.len(), 21 * 11, "the positions of the first area inside the box");
    let plan = lake.explain_governed(id, &read(&f, &masks)).await.unwrap();
    // delta-rs prunes files by the log's statistics before the Parquet scan: one file left.
    assert!(plan.contains("file_groups={1 group: [[") && !plan.contains(".parquet, "), "one file scanned:\n{plan}");
}

/// An upload of points (a longitude/latitude column pair in GCJ-02) writes the box columns,
/// replacing a table that had none, and a box query answers from them.
#[tokio::test]
async fn an_upload_of_points_writes_their_boxes() {
    use citydata_lake::decode::Encoding;
    use citydata_lake::ingest::{IngestSpec, Policy, ingest};
    use citydata_lake::read::CsvSource;
    let (_dir, lake, id) = new_table();
    let mut items = items();
    items.retain(|i| i.name.as_str() != "fw");
    items[1].validator = Some(citydata_domain::resource::Validator::Crs(citydata_domain::crs::Crs::Gcj02));
    let mut csv = String::from("编号,经度,纬度\n");
    for i in 0..500 {
        let (x, y) = (119.9 + f64::from(i % 25) * 0.002, 32.4 + f64::from(i / 25) * 0.002);
        let (gx, gy) = citydata_domain::crs::wgs84_to_gcj02(x, y);
        csv.push_str(&format!("P{i:05},{gx:.7},{gy:.7}\n"));
    }
    let spec = IngestSpec {
        resource_id: id,
        items: items.clone(),
        rules: vec![],
        mode: WriteMode::Replace,
        policy: Policy::Quarantine,
        ignore_extra: false,
        ingest_id: Uuid::new_v4(),
        idempotency_key: None,
        quality_rules: vec![],
        references: Default::default(),
        key_range: None,
    };
    let source = || {
        Box::new(
            CsvSource::new(std::io::Cursor::new(csv.clone().into_bytes()), Encoding::Auto, b',', b'"', true).unwrap(),
        )
    };
    // A table written before the box columns existed.
    let marked = citydata_lake::schema::table_schema(&items);
    let plain = unmarked(&marked);
    let old = RecordBatch::try_new(
        plain.clone(),
        vec![
            Arc::new(StringArray::from(vec!["P00000"])),
            Arc::new(arrow::array::BinaryArray::from(vec![Some(Geometry::Point(119.9, 32.4).to_wkb().as_slice())])),
        ],
    )
    .unwrap();
    write(&lake, id, &plain, WriteMode::Append, old).await;
    let report = ingest(&lake, spec.clone(), source(), None).await.unwrap();
    assert_eq!(report.rows_committed, 500);
    let q = lake
        .query(id, None, "SELECT count(__citydata_bbox_wz_x) AS x, count(__citydata_bbox_wz_y) AS y FROM t")
        .await
        .unwrap();
    let shown = arrow::util::pretty::pretty_format_batches(&q).unwrap().to_string();
    assert!(shown.contains("| 500 | 500 |"), "every point has its box:\n{shown}");
    // The box columns are plain doubles: no compression, no dictionary.
    use parquet::file::reader::FileReader;
    let table_dir = lake.table_url(id).unwrap().to_file_path().unwrap();
    let mut checked = 0;
    for file in std::fs::read_dir(&table_dir).unwrap().map(|e| e.unwrap().path()) {
        if file.extension().is_none_or(|x| x != "parquet") {
            continue;
        }
        let reader =
            parquet::file::serialized_reader::SerializedFileReader::new(std::fs::File::open(&file).unwrap()).unwrap();
        let rg = reader.metadata().row_group(0);
        for c in rg.columns().iter().filter(|c| c.column_path().string().starts_with("__citydata_bbox_")) {
            assert_eq!(c.compression(), parquet::basic::Compression::UNCOMPRESSED);
            assert!(c.encodings().all(|e| e == parquet::basic::Encoding::PLAIN || e == parquet::basic::Encoding::RLE));
            checked += 1;
        }
    }
    assert_eq!(checked, 2, "the replace wrote one file with two box columns");
    let f = Filter::parse("within(wz, bbox(119.9, 32.4, 119.91, 32.41))", &items).unwrap();
    let masks = BTreeMap::new();
    let mut r = read(&f, &masks);
    r.fields.retain(|f| f.as_str() != "fw");
    r.spatial.retain(|f| f.as_str() != "fw");
    let got = keys_of_one(&lake.read_governed(id, &r).await.unwrap());
    let b = citydata_domain::geo::BBox { min_lon: 119.9, min_lat: 32.4, max_lon: 119.91, max_lat: 32.41 };
    // The exact answer, from the stored WKB (the WKT a read shows is rounded).
    let all = lake.query(id, None, "SELECT bh, wz FROM t").await.unwrap();
    let mut want = BTreeSet::new();
    for batch in &all {
        let k = arrow::compute::cast(batch.column(0), &arrow::datatypes::DataType::Utf8).unwrap();
        let k = k.as_any().downcast_ref::<StringArray>().unwrap();
        let w = arrow::compute::cast(batch.column(1), &arrow::datatypes::DataType::Binary).unwrap();
        let w = w.as_any().downcast_ref::<arrow::array::BinaryArray>().unwrap();
        for i in 0..batch.num_rows() {
            if Geometry::from_wkb(w.value(i)).unwrap().within_bbox(&b) {
                want.insert(k.value(i).to_string());
            }
        }
    }
    assert!(want.len() > 10, "{want:?}");
    assert_eq!(got, want);
}
