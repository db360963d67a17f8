//! Statements: the bill of one account for one billing period. Until the period closes (its end plus
//! the grace period) its statement is a draft that changes as records arrive; at close it becomes
//! final: numbered, issued, and never changed again. A record that arrives later for a closed period
//! is billed on the account's next statement as an adjustment line naming its period, machine and
//! seqs.
//!
//! A statement is one object ([`Statement`]) with one canonical JSON form, whose SHA-256 it carries;
//! the CSV and PDF forms are rendered from it. [`compute`] derives drafts from a ledger-schema file
//! (the deduplicated view of the costs topic, or the embedded ledger); [`close`] numbers and issues
//! them through a [`StatementStore`]. See docs/billing.md.

pub mod accounts;
pub mod close;
pub mod compute;
pub mod ledger_store;
pub mod listing;
pub mod period;
pub mod render;
pub mod seqs;
pub mod verify;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

pub use self::accounts::{Account, Accounts, AccountsError};
pub use self::close::{CloseError, Issued, StatementStore, close_period};
pub use self::compute::{ComputeError, Sources, drafts};
pub use self::ledger_store::LedgerStatements;
pub use self::listing::{StatementRow, render_rows};
pub use self::period::{Cycle, CycleError, Period, PeriodError, PeriodLength};
pub use self::seqs::SeqSet;
pub use self::verify::verify;
use crate::billing::price::round_for_display;
use crate::record::UnixMillis;

/// The `schema` of every statement; the suffix versions the layout.
pub const STATEMENT_SCHEMA: &str = "usagebill.statement.v1";

/// Digits after the point the usage quantities are shown with (they are for reading; the amounts
/// come from the priced lines).
pub const QUANTITY_DIGITS: u32 = 6;

/// Draft or final.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// The period is open (or in its grace period): the statement still changes.
    Draft,
    /// Closed: numbered, issued, immutable.
    Final,
}

/// How much a machine used, in the card's units, rounded to [`QUANTITY_DIGITS`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Quantities {
    /// CPU core-hours.
    #[serde(with = "rust_decimal::serde::str")]
    pub cpu_core_hours: Decimal,
    /// Memory GB-hours (lived windows).
    #[serde(with = "rust_decimal::serde::str")]
    pub memory_gb_hours: Decimal,
    /// GB received.
    #[serde(with = "rust_decimal::serde::str")]
    pub net_rx_gb: Decimal,
    /// GB sent.
    #[serde(with = "rust_decimal::serde::str")]
    pub net_tx_gb: Decimal,
    /// GB read from disk.
    #[serde(with = "rust_decimal::serde::str")]
    pub disk_read_gb: Decimal,
    /// GB written to disk.
    #[serde(with = "rust_decimal::serde::str")]
    pub disk_write_gb: Decimal,
}

/// The flat amounts of a machine's lines per component, exact.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FlatAmounts {
    /// CPU.
    #[serde(with = "rust_decimal::serde::str")]
    pub cpu: Decimal,
    /// Memory (an asleep window's memory included).
    #[serde(with = "rust_decimal::serde::str")]
    pub memory: Decimal,
    /// Network received.
    #[serde(with = "rust_decimal::serde::str")]
    pub net_rx: Decimal,
    /// Network sent.
    #[serde(with = "rust_decimal::serde::str")]
    pub net_tx: Decimal,
    /// Disk read.
    #[serde(with = "rust_decimal::serde::str")]
    pub disk_read: Decimal,
    /// Disk written.
    #[serde(with = "rust_decimal::serde::str")]
    pub disk_write: Decimal,
}

/// One machine's line: its usage in the period and what it costs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MachineLine {
    /// The machine.
    pub machine_id: String,
    /// Records billed on this line.
    pub records: u64,
    /// Their seqs.
    pub seqs: SeqSet,
    /// Seqs missing between the lowest and highest of them (metering gaps).
    pub gaps: u64,
    /// Milliseconds the machine was asleep.
    pub asleep_ms: u64,
    /// Milliseconds of usage observed late (a stalled agent).
    pub late_ms: u64,
    /// Wall-clock steps its agent saw.
    pub clock_steps: u64,
    /// Card versions its lines were priced with.
    pub card_versions: Vec<String>,
    /// Usage.
    pub quantities: Quantities,
    /// Flat amounts per component.
    pub flat: FlatAmounts,
    /// Sum of the flat amounts.
    #[serde(with = "rust_decimal::serde::str")]
    pub flat_total: Decimal,
    /// Graduated tiers' adjustment over the period (negative for a volume discount).
    #[serde(with = "rust_decimal::serde::str")]
    pub tier_adjustment: Decimal,
    /// `flat_total + tier_adjustment`, exact.
    #[serde(with = "rust_decimal::serde::str")]
    pub exact_total: Decimal,
    /// `exact_total` rounded once to the currency's minor unit.
    #[serde(with = "rust_decimal::serde::str")]
    pub total: Decimal,
}

/// Records of an earlier, closed period that arrived after its statement was final.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdjustmentLine {
    /// The period they belong to.
    pub period: Period,
    /// The machine.
    pub machine_id: String,
    /// How many records arrived late.
    pub records: u64,
    /// Their seqs.
    pub seqs: SeqSet,
    /// What the period now costs for the machine minus what was billed for it, exact (tiers may
    /// move the earlier records' price too).
    #[serde(with = "rust_decimal::serde::str")]
    pub exact_amount: Decimal,
    /// `exact_amount` rounded once to the currency's minor unit.
    #[serde(with = "rust_decimal::serde::str")]
    pub amount: Decimal,
}

/// A statement's totals: sums of rounded lines.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Totals {
    /// Sum of the machine lines' rounded totals.
    #[serde(with = "rust_decimal::serde::str")]
    pub machines: Decimal,
    /// Sum of the adjustment lines' rounded amounts.
    #[serde(with = "rust_decimal::serde::str")]
    pub adjustments: Decimal,
    /// What the account owes for this statement.
    #[serde(with = "rust_decimal::serde::str")]
    pub total: Decimal,
}

/// One account's bill for one period.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Statement {
    /// Always [`STATEMENT_SCHEMA`].
    pub schema: String,
    /// Who bills.
    pub issuer: String,
    /// Draft or final.
    pub status: Status,
    /// Gapless per issuer, assigned when final.
    pub number: Option<u64>,
    /// Who is billed.
    pub account: Account,
    /// The period billed.
    pub period: Period,
    /// Its first instant.
    pub period_start: UnixMillis,
    /// The first instant after it.
    pub period_end: UnixMillis,
    /// When it closes: its end plus the grace period.
    pub closes_at: UnixMillis,
    /// When it was issued (final only): the close time.
    pub issued_at: Option<UnixMillis>,
    /// Currency of every amount.
    pub currency: String,
    /// Digits of the currency's minor unit.
    pub minor_unit_digits: u32,
    /// The rounding rule, in words.
    pub rounding: String,
    /// Card versions the lines were priced with.
    pub card_versions: Vec<String>,
    /// One line per machine, by machine id.
    pub machines: Vec<MachineLine>,
    /// Late records of earlier periods, by period then machine.
    pub adjustments: Vec<AdjustmentLine>,
    /// Totals.
    pub totals: Totals,
    /// `sha256:` and the hex SHA-256 of the canonical JSON with this field empty.
    pub content_hash: String,
}

/// A statement message that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a valid statement: {0}")]
pub struct StatementFormatError(pub String);

impl Statement {
    /// The rounding rule a statement states.
    pub fn rounding_rule(minor_unit_digits: u32) -> String {
        format!(
            "each line is rounded once, half away from zero, to {minor_unit_digits} decimal place(s); the total is the sum of the rounded lines"
        )
    }

    /// Sets the totals from the lines and the content hash from the rest.
    pub fn seal(mut self) -> Statement {
        let machines: Decimal = self.machines.iter().map(|line| line.total).sum();
        let adjustments: Decimal = self.adjustments.iter().map(|line| line.amount).sum();
        let round = |amount: Decimal| round_for_display(amount, self.minor_unit_digits);
        self.totals = Totals { machines: round(machines), adjustments: round(adjustments), total: round(machines + adjustments) };
        self.content_hash = String::new();
        self.content_hash = format!("sha256:{}", hex(&Sha256::digest(self.canonical_bytes())));
        self
    }

    /// The final form of a draft: numbered, issued at `issued_at`, sealed again.
    pub fn finalized(self, number: u64, issued_at: UnixMillis) -> Statement {
        Statement { status: Status::Final, number: Some(number), issued_at: Some(issued_at), ..self }.seal()
    }

    /// The canonical JSON: fields in declaration order, amounts as exact decimal text, no spaces.
    pub fn canonical_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a statement serialises")
    }

    /// Parses stored bytes and checks them: the schema, that they are the canonical form, and that
    /// the content hash matches. Altered bytes fail here.
    pub fn parse(bytes: &[u8]) -> Result<Statement, StatementFormatError> {
        let statement: Statement = serde_json::from_slice(bytes).map_err(|error| StatementFormatError(error.to_string()))?;
        if statement.schema != STATEMENT_SCHEMA {
            return Err(StatementFormatError(format!("schema {:?}, expected {STATEMENT_SCHEMA:?}", statement.schema)));
        }
        let resealed = statement.clone().seal();
        if resealed.content_hash != statement.content_hash {
            return Err(StatementFormatError(format!(
                "content hash {} does not match its content ({}): the statement was altered",
                statement.content_hash, resealed.content_hash
            )));
        }
        if resealed.canonical_bytes() != bytes {
            return Err(StatementFormatError("the bytes are not the statement's canonical form: the statement was altered".into()));
        }
        Ok(statement)
    }

    /// The key a store files it under: account and period.
    pub fn key(&self) -> String {
        format!("{}/{}", self.account.id, self.period)
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

#[cfg(test)]
mod tests;
