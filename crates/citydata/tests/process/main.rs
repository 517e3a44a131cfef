//! Tests that drive the `citydata` binary as a process (a server started, killed, restarted;
//! the CLI; the README's walk; the soak), in one test binary so the suite links the product's
//! dependencies once.

mod backup;
mod cli;
mod crash;
mod evaluate;
mod faults;
mod iot_crash;
mod nodes;
mod readme_walk;
mod soak;
mod support;
mod verify;
