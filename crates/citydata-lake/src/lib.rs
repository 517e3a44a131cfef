//! citydata-lake (under construction).
#![forbid(unsafe_code)]
