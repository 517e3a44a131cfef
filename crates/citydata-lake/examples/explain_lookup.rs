//! `cargo run -p citydata-lake --example explain_lookup -- <table dir> <sql>`: EXPLAIN ANALYZE
//! of a query over one Delta table in the read session's settings (for profiling reads).

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let url = url::Url::from_directory_path(std::path::Path::new(&args[1]).canonicalize()?).unwrap();
    let _lake = citydata_lake::table::Lake::new(&args[1])?; // registers the stores
    let table = deltalake::DeltaTable::try_from_url(url).await?;
    let ctx = datafusion::prelude::SessionContext::new_with_config(citydata_lake::governed::read_config(None));
    table.update_datafusion_session(&ctx.state())?;
    ctx.register_table("t", table.table_provider().await?)?;
    for _ in 0..2 {
        let t = std::time::Instant::now();
        let df = ctx.sql(&args[2]).await?;
        let b = df.collect().await?;
        println!("{:?}", t.elapsed());
        println!("{}", arrow::util::pretty::pretty_format_batches(&b)?);
    }
    Ok(())
}
