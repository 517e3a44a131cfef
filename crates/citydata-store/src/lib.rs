//! citydata-store: the metadata store, as traits split by entity, and [`StoreError`].
//!
//! Backends (`citydata-store-sqlite`, `citydata-store-postgres`) implement every trait and own
//! their migrations. [`suite`] is the one storage test suite that each backend runs against
//! itself. This crate knows no SQL and no backend; it depends only on `citydata-domain`.
#![forbid(unsafe_code)]

mod error;
pub mod suite;
mod traits;

pub use error::StoreError;
pub use traits::*;
