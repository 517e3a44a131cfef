//! citydata-domain: the platform's vocabulary as types that can only be built by parsing,
//! plus the pure rules over them (validators, the audit hash chain, permissions).
//!
//! This crate owns no IO: no database, no files, no network, no clock reads except through
//! arguments. Everything here is deterministic and unit-testable. It must not depend on any
//! other citydata crate.
#![forbid(unsafe_code)]

pub mod audit;
pub mod calendar;
pub mod cast;
pub mod crs;
pub mod dept;
pub mod error;
pub mod evaluation;
pub mod files;
pub mod filter;
pub mod geo;
pub mod geo_cell;
pub mod identifiers;
pub mod iot;
pub mod license;
pub mod linkage;
pub mod mask;
pub mod policy;
pub mod principal;
pub mod quality;
pub mod region;
pub mod resource;
pub mod scope;
pub mod totp;
pub mod user;
pub mod verify;
pub mod vocab;

pub use error::{FieldError, ValidationErrors};
