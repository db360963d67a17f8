//! Integration tests: real broker, real processes, real SQLite files.

mod agent;
mod api;
mod audit;
mod backtest;
mod billing;
mod cluster;
mod disk;
mod faults;
mod gui;
mod kafka;
mod layers;
mod ledger_faults;
mod netns;
mod pipeline;
mod properties;
mod proxy;
mod secrets;
mod security;
mod statements;
mod summary;
mod takeover;
mod time_truth;
mod util;
