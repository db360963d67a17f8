//! Where closed windows go: Kafka, or (no brokers configured) straight into the local ledger.
//! Both sit behind one interface, so the outbox and the agent do not know which one they feed.

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::mpsc::{self, Receiver};
use std::time::Duration;

use rdkafka::error::{KafkaError, RDKafkaErrorCode};

use crate::kafka::{Delivery, KafkaConfig, LinkState, ReportingProducer, link_state_from};

/// An offer the transport cannot take now; the record stays in the outbox.
#[derive(Debug, thiserror::Error)]
pub enum OfferError {
    /// The local queue is full; try again shortly.
    #[error("the send queue is full")]
    Busy,
    /// The transport refused the record.
    #[error("{0}")]
    Failed(String),
}

/// Sends encoded records and reports their deliveries.
pub trait Transport: Send {
    /// Offers one record; its delivery (tagged with `seq`) follows from [`Transport::deliveries`].
    fn offer(&mut self, key: &str, seq: u64, payload: &[u8]) -> Result<(), OfferError>;
    /// Delivery reports that arrived since the last call.
    fn deliveries(&mut self) -> Vec<Delivery>;
    /// The link's state.
    fn state(&self) -> LinkState;
    /// Records offered and not yet reported.
    fn in_flight(&self) -> usize;
    /// Waits up to `timeout` for in-flight records to be reported.
    fn flush(&mut self, timeout: Duration);
}

/// Kafka: an idempotent producer keyed by machine id.
pub struct KafkaTransport {
    kafka: KafkaConfig,
    producer: ReportingProducer,
    reports: Receiver<Delivery>,
    state: Arc<AtomicU8>,
    /// Reports left by a replaced producer.
    pending: Vec<Delivery>,
}

impl KafkaTransport {
    /// A transport to `kafka.topic`; connects in the background.
    pub fn new(kafka: &KafkaConfig) -> Result<Self, crate::kafka::KafkaSetupError> {
        let (sender, reports) = mpsc::channel();
        let producer = ReportingProducer::new(kafka, crate::record::CONTENT_TYPE, sender)?;
        let state = producer.link_state();
        Ok(KafkaTransport { kafka: kafka.clone(), producer, reports, state, pending: Vec::new() })
    }

    /// Replaces a producer that hit a fatal error; what it had in flight fails and stays in the outbox.
    fn replace_if_fatal(&mut self) {
        let Some(error) = self.producer.fatal_error() else { return };
        tracing::warn!("the producer stopped on a fatal error ({error}); starting a new one");
        match Self::new(&self.kafka) {
            Ok(fresh) => {
                let old = std::mem::replace(self, fresh);
                // Dropping the old producer fails what it had in flight; those reports still reach the agent.
                drop(old.producer);
                self.pending = old.pending;
                self.pending.extend(old.reports.try_iter());
            }
            Err(error) => tracing::error!("starting a new producer: {}", crate::errors::chain(&error)),
        }
    }
}

impl Transport for KafkaTransport {
    fn offer(&mut self, key: &str, seq: u64, payload: &[u8]) -> Result<(), OfferError> {
        match self.producer.send(&self.kafka.topic, key, payload, seq) {
            Ok(()) => Ok(()),
            Err(KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull)) => Err(OfferError::Busy),
            Err(error) => Err(OfferError::Failed(error.to_string())),
        }
    }

    fn deliveries(&mut self) -> Vec<Delivery> {
        self.replace_if_fatal();
        let mut reports = std::mem::take(&mut self.pending);
        reports.extend(self.reports.try_iter());
        reports
    }

    fn state(&self) -> LinkState {
        link_state_from(self.state.load(Ordering::Relaxed))
    }

    fn in_flight(&self) -> usize {
        self.producer.in_flight().max(0) as usize
    }

    fn flush(&mut self, timeout: Duration) {
        let _ = self.producer.flush(timeout);
    }
}
