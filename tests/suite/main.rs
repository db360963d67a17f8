//! Integration tests: real broker, real processes, real SQLite files.

mod agent;
mod api;
mod billing;
mod disk;
mod faults;
mod gui;
mod pipeline;
mod properties;
mod proxy;
mod secrets;
mod util;
