//! The lake against real Delta tables in temporary directories: the ingest pipeline and the
//! readers' fuzzing, in one test binary.

mod bbox;
mod ingest;
mod readers_fuzz;
