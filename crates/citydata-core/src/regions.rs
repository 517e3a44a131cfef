//! District boundaries for `within(item, '<code>')` (issue #24): the resource named by the
//! `boundary_resource` setting — published and opened unconditionally, so that a region filter
//! tells a caller nothing the boundaries themselves would not — read as the platform: one row
//! per district with a GB/T 2260 code item (the `region_code` validator, else an item named
//! `code`/`xzqhdm`/`qhdm` or titled 行政区划代码) and a `geometry` item. Kept per node for a
//! minute.

use crate::{Core, CoreError};
use arrow::array::{Array, StringArray};
use citydata_domain::geo::{Geometry, Regions};
use citydata_domain::resource::{InfoItem, Validator};
use citydata_domain::vocab::{DataType, OpenType, ResourceState};
use citydata_lake::governed::GovernedRead;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long a node keeps the boundaries it read.
const KEEP: Duration = Duration::from_secs(60);

/// A node's boundaries and when they were read.
pub(crate) type RegionsCache = Arc<tokio::sync::Mutex<Option<(Instant, Arc<Regions>)>>>;

fn code_item(items: &[InfoItem]) -> Option<&InfoItem> {
    items.iter().find(|i| matches!(i.validator, Some(Validator::RegionCode))).or_else(|| {
        items.iter().find(|i| matches!(i.name.as_str(), "code" | "xzqhdm" | "qhdm") || i.title.contains("行政区划代码"))
    })
}

impl Core {
    /// The districts `filter` may name: `None` unless it holds a `within(` and a boundary
    /// resource is configured, published and open (then the parser says what is missing).
    pub(crate) async fn regions_for(&self, filter: Option<&str>) -> Result<Option<Arc<Regions>>, CoreError> {
        if !filter.is_some_and(|f| f.to_ascii_lowercase().contains("within")) {
            return Ok(None);
        }
        self.regions().await
    }

    /// The boundary resource's name and districts for display (the portal's maps draw them
    /// behind a spatial resource's features). Open to all like the resource itself; `None`
    /// when no boundary is configured, readable or holding districts.
    pub async fn district_outlines(&self) -> Option<(String, Arc<Regions>)> {
        let regions = self.regions().await.ok().flatten().filter(|r| !r.by_code.is_empty())?;
        let key = self.config.boundary_resource.as_deref()?;
        let name = self.store.find_resource(key).await.ok().flatten()?.content.name.to_string();
        Some((name, regions))
    }

    /// The districts of the boundary resource, when one is configured, published and open.
    pub(crate) async fn regions(&self) -> Result<Option<Arc<Regions>>, CoreError> {
        let mut cache = self.regions.lock().await;
        if let Some((at, r)) = cache.as_ref()
            && at.elapsed() < KEEP
        {
            return Ok(Some(r.clone()));
        }
        let read = self.read_regions().await?;
        // Only boundaries that were read are kept: a boundary resource published a moment
        // after a refused filter serves the next one.
        *cache = read.clone().map(|r| (Instant::now(), r));
        Ok(read)
    }

    async fn read_regions(&self) -> Result<Option<Arc<Regions>>, CoreError> {
        let Some(key) = self.config.boundary_resource.as_deref() else { return Ok(None) };
        let Some(resource) = self.store.find_resource(key).await? else {
            tracing::warn!(boundary_resource = key, "the boundary resource does not exist");
            return Ok(None);
        };
        if resource.state != ResourceState::Published || resource.content.open.kind != OpenType::Unconditional {
            tracing::warn!(boundary_resource = key, "the boundary resource is not published and open to all");
            return Ok(None);
        }
        let items = &resource.content.items;
        let (Some(code), Some(shape)) = (code_item(items), items.iter().find(|i| i.data_type == DataType::Geometry))
        else {
            tracing::warn!(boundary_resource = key, "the boundary resource has no region code or geometry item");
            return Ok(None);
        };
        let masks = BTreeMap::new();
        let read = GovernedRead {
            fields: vec![code.name.clone(), shape.name.clone()],
            masks: &masks,
            filters: vec![],
            sort: vec![],
            offset: 0,
            limit: Some(10_000),
            version: None,
            secret: &self.config.pseudonym_key,
            contains: vec![],
            order: None,
            spatial: citydata_lake::spatial::spatial_items(items),
            regions: None,
        };
        let batches = self.lake()?.read_governed(resource.id, &read).await.map_err(CoreError::from)?;
        let mut regions = Regions::default();
        // A code read twice is ambiguous: it is left out (its filters are refused as unknown)
        // rather than decided by scan order. Codes must be GB/T 2260 codes.
        let mut twice = std::collections::BTreeSet::new();
        for b in &batches {
            let col = |f: &citydata_domain::resource::ItemName| {
                b.column_by_name(f.as_str())
                    .and_then(|c| arrow::compute::cast(c, &arrow::datatypes::DataType::Utf8).ok())
            };
            let (Some(codes), Some(shapes)) = (col(&code.name), col(&shape.name)) else { continue };
            let codes = codes.as_any().downcast_ref::<StringArray>().expect("cast to Utf8");
            let shapes = shapes.as_any().downcast_ref::<StringArray>().expect("cast to Utf8");
            for r in 0..b.num_rows() {
                if codes.is_null(r) || shapes.is_null(r) {
                    continue;
                }
                let Ok(g @ Geometry::Polygon(_)) = Geometry::parse_wkt(shapes.value(r)) else { continue };
                let Ok(code) = citydata_domain::region::RegionCode::parse(codes.value(r)) else { continue };
                if regions.by_code.insert(code.as_str().to_string(), Arc::new(g)).is_some() {
                    twice.insert(code.as_str().to_string());
                }
            }
        }
        for code in &twice {
            tracing::warn!(boundary_resource = key, code = %code, "the boundary resource holds a district twice: it is left out");
            regions.by_code.remove(code);
        }
        Ok(Some(Arc::new(regions)))
    }
}
