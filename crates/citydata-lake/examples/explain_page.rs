//! `cargo run -p citydata-lake --example explain_page -- <lake dir> <table id> <key item> [<item> <value>]`
//! (or `… within <item> <minlon> <minlat> <maxlon> <maxlat>`): `EXPLAIN ANALYZE` of a
//! rows-API page (100 rows in key order, optionally filtered by `item = value` or a spatial
//! box) through the governed read, as the rows API plans it (for profiling).

use citydata_domain::filter::{CmpOp, Filter, Literal};
use citydata_domain::resource::ItemName;
use citydata_lake::governed::{GovernedRead, Order};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let lake = citydata_lake::table::Lake::new(&args[1])?;
    let id: uuid::Uuid = args[2].parse()?;
    let key = ItemName::parse(&args[3]).map_err(|e| format!("{e:?}"))?;
    let filter = match (args.get(4), args.get(5)) {
        // `within <item> <minlon> <minlat> <maxlon> <maxlat>`: a spatial box.
        (Some(w), Some(item)) if w == "within" && args.len() == 10 => {
            let v: Vec<f64> = args[6..10].iter().map(|a| a.parse()).collect::<Result<_, _>>()?;
            Some(Filter::Within {
                item: ItemName::parse(item).map_err(|e| format!("{e:?}"))?,
                bbox: citydata_domain::geo::BBox { min_lon: v[0], min_lat: v[1], max_lon: v[2], max_lat: v[3] },
            })
        }
        (Some(item), Some(value)) => Some(Filter::Cmp {
            item: ItemName::parse(item).map_err(|e| format!("{e:?}"))?,
            op: CmpOp::Eq,
            value: Literal::Str(value.clone()),
        }),
        _ => None,
    };
    let masks = Default::default();
    let read = GovernedRead {
        fields: vec![key.clone()],
        masks: &masks,
        filters: filter.iter().collect(),
        sort: vec![],
        offset: 0,
        limit: Some(100),
        version: None,
        secret: b"explain",
        contains: vec![],
        order: Some(Order::Items(vec![key])),
        spatial: vec![],
        regions: None,
    };
    for _ in 0..2 {
        let t = std::time::Instant::now();
        let shown = lake.explain_governed(id, &read).await?;
        println!("{:?}\n{shown}", t.elapsed());
    }
    Ok(())
}
