//! Embedded mode's transport: no broker, each record billed into the local ledger as it is offered.
//! It lives here, above both, because it joins the agent's side (`transmit`) to billing.

use std::time::Duration;

use crate::billing::biller::{Biller, RawMessage};
use crate::kafka::{Delivery, LinkState};
use crate::transmit::transport::{OfferError, Transport};

/// Embedded: records are billed into the local ledger at once, in this process.
pub struct EmbeddedTransport {
    biller: Biller,
    reports: Vec<Delivery>,
    next_offset: i64,
}

/// The topic name recorded for embedded deliveries.
pub const EMBEDDED_TOPIC: &str = "embedded";

impl EmbeddedTransport {
    /// Bills into `biller`.
    pub fn new(biller: Biller) -> Self {
        let next_offset = biller.ledger().offsets(EMBEDDED_TOPIC).ok().and_then(|offsets| offsets.get(&0).copied()).unwrap_or(0);
        EmbeddedTransport { biller, reports: Vec::new(), next_offset }
    }
}

impl Transport for EmbeddedTransport {
    fn offer(&mut self, _key: &str, seq: u64, payload: &[u8]) -> Result<(), OfferError> {
        let message = RawMessage { topic: EMBEDDED_TOPIC.into(), partition: 0, offset: self.next_offset, payload: Some(payload.to_vec()) };
        let outcome = match self.biller.bill(std::slice::from_ref(&message)) {
            Ok(_) => {
                self.next_offset += 1;
                Ok(())
            }
            Err(error) => Err(format!("local ledger: {}", crate::errors::chain(&error))),
        };
        self.reports.push(Delivery { tag: seq, outcome, refused: false });
        Ok(())
    }

    fn deliveries(&mut self) -> Vec<Delivery> {
        std::mem::take(&mut self.reports)
    }

    fn state(&self) -> LinkState {
        LinkState::Embedded
    }

    fn in_flight(&self) -> usize {
        0
    }

    fn flush(&mut self, _timeout: Duration) {}
}
