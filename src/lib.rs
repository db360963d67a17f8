//! usagebill: meters what each machine uses and bills it, live, over Apache Kafka.
//!
//! The modules follow the data: [`record`] → [`collect`] → [`kafka`] → [`transmit`] → [`billing`] → [`gui`].
//! [`app`] wires them together for each command; `main.rs` only parses arguments.

pub mod app;
pub mod bench;
pub mod billing;
pub mod cli;
pub mod collect;
pub mod config;
pub mod duration;
pub mod gui;
pub mod kafka;
pub mod progress;
pub mod record;
pub mod simulate;
pub mod transmit;
