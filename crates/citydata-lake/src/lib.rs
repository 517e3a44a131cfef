//! citydata-lake: the data behind catalog resources. Each resource's rows live in a Delta Lake
//! table on object storage (a local directory or `s3://`); every write is one atomic Delta
//! commit, so a crash leaves the previous version intact.
//!
//! This crate owns readers and decoders ([`read`], [`decode`]), the conversion and validation
//! of rows against information items ([`convert`]), and table operations ([`table`]). It knows
//! nothing of HTTP or of the metadata database; it depends only on `citydata-domain`.
#![forbid(unsafe_code)]

pub mod bbox;
pub mod check;
pub mod compact;
pub mod convert;
pub mod decode;
pub mod erase;
mod error;
pub mod files;
pub mod governed;
mod group_count;
pub mod ingest;
mod key_order;
pub mod keyset;
mod latest;
pub mod limits;
pub mod local_store;
pub mod mask;
pub mod quality;
pub mod read;
pub mod schema;
pub mod sharing;
pub mod sharing_changes;
pub mod snapshot;
pub mod sorted;
pub mod spatial;
pub mod storage;
pub mod table;

pub use error::{LakeError, Result, StorageKind};
