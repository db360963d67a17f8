//! Getting closed windows to the billing side: the send policy, the durable outbox, and a transport
//! that is either Kafka or the in-process embedded biller.

pub mod agent;
pub mod outbox;
pub mod policy;
pub mod rule;
pub mod transport;
