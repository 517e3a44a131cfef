//! 共享协议 (Delta Sharing, issue #20): recipients read what the gate allows them with pandas,
//! Spark or BI tools, over the open protocol.
//!
//! - [`profiles`]: a recipient's profile (共享凭证) — a bearer token stored only as SHA-256,
//!   acting for its owner and accepted only under `/delta-sharing/`; created, listed and
//!   revoked by its owner.
//! - [`protocol`]: shares, schemas and tables as the gate allows the profile's owner (one share
//!   per recipient; schema = the provider department's code; table = the resource's slug), and
//!   the query: the governed read materialized as a Delta table
//!   ([`citydata_lake::sharing`]) whose files are handed out as short-lived signed URLs.
//!   Every query is audited like a read (`data.sharing_query`, with files and bytes).
//! - [`changes`]: the change feed (`/changes`) of what the same gate allows: the governed
//!   changes per commit version as Parquet files beside the shared tables
//!   ([`citydata_lake::sharing_changes`]), audited as `data.sharing_changes`.

pub mod changes;
pub mod hints;
pub mod profiles;
pub mod protocol;

pub use profiles::{CreatedProfile, ProfileAuth, SHARING_TOKEN_PREFIX};
pub use protocol::{QueryAnswer, SharedFileUrl, SharedTableRef, SharingQuery, TableMeta};
