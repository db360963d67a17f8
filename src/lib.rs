//! usagebill: meters what each machine uses and bills it, live, over Apache Kafka.
//!
//! Layers, lowest first, each importing only lower ones (a test in `tests/suite/layers.rs` keeps
//! them): [`record`] and [`duration`] → [`collect`] → [`kafka`] → [`transmit`], [`billing`] and
//! [`config`] (the file's schema) → [`feed`] (the cost feed and the cost summaries) → [`worker`]
//! (the consumer runtime) → [`api`] (the HTTP API) → the [`simulate`] tool →
//! [`bench`](mod@bench) → [`runtime`] (settings built once, and what the app and the headless
//! commands run) → [`gui`] (views) → [`cli`] → [`commands`] (the edge: one function per command);
//! `main.rs` only parses arguments.

pub mod api;
pub mod bench;
pub mod billing;
pub mod cli;
pub mod collect;
pub mod commands;
pub mod config;
pub mod duration;
pub mod errors;
pub mod feed;
pub mod files;
pub mod gui;
pub mod kafka;
pub mod priority;
pub mod progress;
pub mod record;
pub mod runtime;
pub mod simulate;
pub mod sqlite;
pub mod transmit;
pub mod worker;
