//! citydata-store: the metadata store, as traits split by entity, and [`StoreError`].
//!
//! Backends (`citydata-store-sqlite`, `citydata-store-postgres`) own their migrations and a
//! thin dialect; the statements themselves are written once in [`sql`] (feature `sql`), which
//! implements every trait for any [`sql::SqlBackend`]. [`suite`] (feature `suite`) is the one
//! storage test suite that each backend runs against itself. Without features this crate knows
//! no SQL and no backend; it depends only on `citydata-domain`.
#![forbid(unsafe_code)]

mod auth;
mod error;
mod evaluation;
mod files;
mod iot;
mod oidc;
mod rate;
mod sharing;
mod sources;
#[cfg(feature = "sql")]
pub mod sql;
mod states;
#[cfg(feature = "suite")]
pub mod suite;
mod totp;
mod traits;
mod verify;

pub use auth::{ServiceAccountRecord, ServiceAccountStore, SessionInfo, SessionInfoStore};
pub use error::StoreError;
pub use evaluation::*;
pub use files::{FileRecord, FileStore};
pub use iot::*;
pub use oidc::{OidcIdentity, OidcStateRecord, OidcStore};
pub use rate::RateStore;
pub use sharing::SharingStore;
pub use sources::{HarvestRecord, SourceRecord, SourceRunRecord, SourceStore};
pub use totp::{TotpRecord, TotpStore};
pub use traits::*;
pub use verify::{VerifyStore, VerifyTermsRecord};
