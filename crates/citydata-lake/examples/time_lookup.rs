//! `cargo run --release -p citydata-lake --example time_lookup -- <lake dir> <table id> <key item> <items> <csv> [n]`:
//! times `n` governed key lookups (the comma-separated `items`, `limit 1`, in key order, as the
//! rows API plans them) with keys sampled from the first column of `csv`, and prints the p50 and the minimum
//! (for profiling reads without HTTP, the gate or the audit).

use citydata_domain::filter::{CmpOp, Filter, Literal};
use citydata_domain::resource::ItemName;
use citydata_lake::governed::{GovernedRead, Order};
use std::io::BufRead;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let lake = citydata_lake::table::Lake::new(&args[1])?;
    let id: uuid::Uuid = args[2].parse()?;
    let key = ItemName::parse(&args[3]).map_err(|e| format!("{e:?}"))?;
    let fields: Vec<ItemName> =
        args[4].split(',').map(|h| ItemName::parse(h).map_err(|e| format!("{e:?}"))).collect::<Result<_, _>>()?;
    let n: usize = args.get(6).map(|s| s.parse()).transpose()?.unwrap_or(1000);
    let lines = std::io::BufReader::new(std::fs::File::open(&args[5])?).lines().skip(1);
    let keys: Vec<String> = lines
        .step_by(9973)
        .take(300)
        .map(|l| l.map(|l| l.split(',').next().unwrap_or_default().to_string()))
        .collect::<Result<_, _>>()?;
    let masks = Default::default();
    let mut lat = Vec::with_capacity(n);
    for i in 0..n {
        let filter =
            Filter::Cmp { item: key.clone(), op: CmpOp::Eq, value: Literal::Str(keys[i % keys.len()].clone()) };
        let read = GovernedRead {
            fields: fields.clone(),
            masks: &masks,
            filters: vec![&filter],
            sort: vec![],
            offset: 0,
            limit: Some(1),
            version: None,
            secret: b"time",
            contains: vec![],
            order: Some(Order::Items(vec![key.clone()])),
            spatial: vec![],
            regions: None,
        };
        let t = std::time::Instant::now();
        let (batches, _) = lake.read_governed_at(id, &read).await?;
        lat.push(t.elapsed().as_secs_f64() * 1000.0);
        let rows: usize = batches.iter().map(|b| b.num_rows()).sum();
        if rows != 1 {
            return Err(format!("key {} gave {rows} rows", keys[i % keys.len()]).into());
        }
    }
    lat.sort_by(f64::total_cmp);
    println!("lookups {n}: p50 {:.3} ms, min {:.3} ms, p90 {:.3} ms", lat[n / 2], lat[0], lat[n * 9 / 10]);
    Ok(())
}
