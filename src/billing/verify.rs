//! `usagebill report --verify`: reprices every stored record with the rate-card version its line
//! names and lists each line whose stored amounts differ from the recomputed ones.

use super::ledger::{Ledger, LedgerError, StoredLine};
use super::price::{self, PricedLine};
use super::rate_card::RateCard;

/// Rows read per query, so a large ledger is verified in bounded memory.
const CHUNK_ROWS: usize = 10_000;

/// One line that does not match its recomputation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Difference {
    /// `machine/seq`.
    pub record_id: String,
    /// What differs, with the stored and the recomputed value.
    pub detail: String,
}

/// The outcome of a verification.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Verification {
    /// Lines checked.
    pub lines: u64,
    /// Lines that differ (one entry per differing field).
    pub differences: Vec<Difference>,
}

impl Verification {
    /// The report: one line per difference, then exactly `N differences`.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for difference in &self.differences {
            out += &format!("{}: {}\n", difference.record_id, difference.detail);
        }
        out += &format!("checked {} line(s)\n{} differences\n", self.lines, self.differences.len());
        out
    }
}

/// Reprices every line of `ledger` with `card`.
pub fn verify(ledger: &Ledger, card: &RateCard) -> Result<Verification, LedgerError> {
    let mut verification = Verification::default();
    let mut after = 0;
    loop {
        let chunk = ledger.lines_after(after, CHUNK_ROWS)?;
        let Some(last) = chunk.last() else { break };
        after = last.row_id;
        for stored in &chunk {
            verification.lines += 1;
            check_line(stored, card, &mut verification.differences);
        }
    }
    Ok(verification)
}

fn check_line(stored: &StoredLine, card: &RateCard, differences: &mut Vec<Difference>) {
    let record_id = stored.record.id();
    let mut differ = |detail: String| differences.push(Difference { record_id: record_id.clone(), detail });
    let Some(version) = card.version_named(&stored.line.card_version) else {
        differ(format!("names rate-card version {:?}, which the card does not hold", stored.line.card_version));
        return;
    };
    let in_force = &card.version_at(stored.record.start).version;
    if *in_force != version.version {
        differ(format!("priced with version {:?} but {in_force:?} is in force at {}", version.version, stored.record.start));
    }
    let recomputed = match price::price(&stored.record, version) {
        Ok(line) => line,
        Err(error) => {
            differ(format!("cannot be repriced: {error}"));
            return;
        }
    };
    for (field, kept, fresh) in compared_fields(&stored.line, &recomputed) {
        if kept != fresh {
            differ(format!("{field}: stored {kept}, recomputed {fresh}"));
        }
    }
}

fn compared_fields(stored: &PricedLine, fresh: &PricedLine) -> [(&'static str, String, String); 8] {
    // Compared as exact decimals (normalised), so `0.10` and `0.1` are the same amount.
    let pair = |a: rust_decimal::Decimal, b: rust_decimal::Decimal| (a.normalize().to_string(), b.normalize().to_string());
    let field = |name, (a, b)| (name, a, b);
    [
        ("currency", stored.currency.clone(), fresh.currency.clone()),
        field("cpu", pair(stored.cpu, fresh.cpu)),
        field("memory", pair(stored.memory, fresh.memory)),
        field("net_rx", pair(stored.net_rx, fresh.net_rx)),
        field("net_tx", pair(stored.net_tx, fresh.net_tx)),
        field("disk_read", pair(stored.disk_read, fresh.disk_read)),
        field("disk_write", pair(stored.disk_write, fresh.disk_write)),
        field("total", pair(stored.total, fresh.total)),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::billing::biller::{Biller, RawMessage};
    use crate::record::UnixMillis;
    use crate::simulate::{Fleet, Profile, record_at};

    fn billed_ledger(directory: &std::path::Path) -> Ledger {
        let fleet = Fleet {
            machines: 4,
            machine_prefix: crate::simulate::DEFAULT_MACHINE_PREFIX.into(),
            records: 200,
            window: std::time::Duration::from_secs(7),
            profile: Profile::Random,
            seed: 9,
            start: UnixMillis(1_767_225_600_000),
        };
        let messages: Vec<RawMessage> = (0..fleet.records)
            .map(|index| RawMessage {
                topic: "usage".into(),
                partition: 0,
                offset: index as i64,
                payload: Some(record_at(&fleet, index).to_json()),
            })
            .collect();
        let mut biller = Biller::new(Ledger::open(&directory.join("ledger.db")).unwrap(), RateCard::built_in());
        biller.bill(&messages).unwrap();
        Ledger::open(&directory.join("ledger.db")).unwrap()
    }

    #[test]
    fn an_untouched_ledger_verifies_and_a_changed_line_is_found() {
        let directory = tempfile::tempdir().unwrap();
        let ledger = billed_ledger(directory.path());
        let clean = verify(&ledger, &RateCard::built_in()).unwrap();
        assert_eq!((clean.lines, clean.differences.len()), (200, 0));
        assert!(clean.render().ends_with("\n0 differences\n"));

        ledger.connection().execute("UPDATE records SET total = '1000' WHERE id = 17", []).unwrap();
        let tampered = verify(&ledger, &RateCard::built_in()).unwrap();
        assert_eq!(tampered.differences.len(), 1, "{:?}", tampered.differences);
        assert!(tampered.differences[0].detail.starts_with("total: stored 1000, recomputed "), "{:?}", tampered.differences);
        assert!(tampered.render().ends_with("\n1 differences\n"));
    }

    #[test]
    fn a_line_naming_an_unknown_version_is_a_difference() {
        let directory = tempfile::tempdir().unwrap();
        let ledger = billed_ledger(directory.path());
        ledger.connection().execute("UPDATE records SET card_version = 'gone' WHERE id <= 3", []).unwrap();
        let found = verify(&ledger, &RateCard::built_in()).unwrap();
        assert_eq!(found.differences.len(), 3);
        assert!(found.differences.iter().all(|difference| difference.detail.contains("\"gone\"")));
    }
}
