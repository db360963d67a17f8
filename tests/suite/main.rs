//! Integration tests: real broker, real processes, real SQLite files.

mod agent;
mod faults;
mod pipeline;
mod util;
