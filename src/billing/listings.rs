//! Listings over a ledger beyond the totals: quarantined messages (`report --quarantine`) and
//! metering gaps (`report --gaps`), in table, CSV or JSON form.

use serde::Serialize;

use super::ledger::{Gap, Ledger, LedgerError};
use super::table_format::ReportFormat;
use super::table_format::{CsvRow, csv_cell};
use crate::record::UnixMillis;

/// A quarantined message as listed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct QuarantineEntry {
    /// Topic it came from.
    pub topic: String,
    /// Partition it came from.
    pub partition: i32,
    /// Its offset.
    pub offset: i64,
    /// Why it was refused.
    pub reason: String,
    /// The kept bytes (at most `QUARANTINE_RAW_CAP`): text when they are UTF-8, else base64.
    pub raw: String,
    /// `text` or `base64`.
    pub raw_encoding: &'static str,
    /// Size of the whole message in bytes.
    pub raw_size: u64,
    /// When the worker received it.
    pub received: UnixMillis,
}

/// Every quarantined message, in the order received.
pub fn quarantined(ledger: &Ledger) -> Result<Vec<QuarantineEntry>, LedgerError> {
    let rows = super::ledger::quarantined(ledger, 0, i64::MAX)?;
    Ok(rows
        .into_iter()
        .map(|row| {
            let (raw, raw_encoding) = match String::from_utf8(row.raw) {
                Ok(text) => (text, "text"),
                Err(not_text) => (base64(not_text.as_bytes()), "base64"),
            };
            QuarantineEntry {
                topic: row.topic,
                partition: row.partition,
                offset: row.offset,
                reason: row.reason,
                raw,
                raw_encoding,
                raw_size: row.raw_size,
                received: row.received,
            }
        })
        .collect())
}

/// Renders quarantined messages; the table shows the first 60 characters of each message.
pub fn render_quarantine(entries: &[QuarantineEntry], format: ReportFormat) -> String {
    match format {
        ReportFormat::Json => serde_json::to_string_pretty(entries).expect("entries serialise") + "\n",
        ReportFormat::Csv => {
            let mut out = String::from("topic,partition,offset,reason,raw_encoding,raw_size,received,raw\n");
            for entry in entries {
                out += &format!(
                    "{},{},{},{},{},{},{},{}\n",
                    entry.topic,
                    entry.partition,
                    entry.offset,
                    csv_cell(&entry.reason),
                    entry.raw_encoding,
                    entry.raw_size,
                    entry.received,
                    csv_cell(&entry.raw)
                );
            }
            out
        }
        ReportFormat::Table => {
            let mut out = String::new();
            for entry in entries {
                let preview: String = entry.raw.chars().take(60).map(|c| if c.is_control() { ' ' } else { c }).collect();
                out += &format!(
                    "{}[{}]@{}  {} bytes  {}\n    {preview}\n",
                    entry.topic, entry.partition, entry.offset, entry.raw_size, entry.reason
                );
            }
            out + &format!("{} quarantined message(s)\n", entries.len())
        }
    }
}

impl CsvRow for Gap {
    const HEADER: &'static [&'static str] =
        &["machine_id", "first_missing_seq", "last_missing_seq", "missing", "unmetered_from", "unmetered_to"];
    fn cells(&self) -> Vec<String> {
        vec![
            self.machine_id.clone(),
            self.first_missing_seq.to_string(),
            self.last_missing_seq.to_string(),
            self.missing.to_string(),
            self.unmetered_from.to_string(),
            self.unmetered_to.to_string(),
        ]
    }
}

/// Renders gaps.
pub fn render_gaps(gaps: &[Gap], format: ReportFormat) -> String {
    super::table_format::render(gaps, format, |gaps| {
        let width = gaps.iter().map(|gap| gap.machine_id.len()).max().unwrap_or(0).max("machine".len());
        let mut out = format!("{:<width$}  {:>10}  {:>10}  {:<24}  {:<24}\n", "machine", "first_seq", "last_seq", "unmetered from", "to");
        for gap in gaps {
            let (from, to) = (gap.unmetered_from.to_string(), gap.unmetered_to.to_string());
            out +=
                &format!("{:<width$}  {:>10}  {:>10}  {from:<24}  {to:<24}\n", gap.machine_id, gap.first_missing_seq, gap.last_missing_seq);
        }
        let missing: u64 = gaps.iter().map(|gap| gap.missing).sum();
        out + &format!("{} gap(s), {missing} missing record(s)\n", gaps.len())
    })
}

/// Standard base64 (RFC 4648, with padding); small enough not to need a dependency.
pub fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let triple = u32::from(chunk[0]) << 16 | u32::from(*chunk.get(1).unwrap_or(&0)) << 8 | u32::from(*chunk.get(2).unwrap_or(&0));
        for position in 0..4 {
            if position <= chunk.len() {
                out.push(ALPHABET[(triple >> (18 - 6 * position) & 0x3f) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::billing::ledger::{Batch, Quarantined};

    #[test]
    fn base64_matches_the_rfc_examples() {
        let cases = [("", ""), ("f", "Zg=="), ("fo", "Zm8="), ("foo", "Zm9v"), ("foob", "Zm9vYg=="), ("foobar", "Zm9vYmFy")];
        for (plain, encoded) in cases {
            assert_eq!(base64(plain.as_bytes()), encoded);
        }
    }

    #[test]
    fn gaps_are_listed_as_runs_and_a_late_record_closes_one() {
        use crate::billing::biller::{Biller, RawMessage};
        use crate::billing::ledger::gaps;
        use crate::billing::rate_card::RateCard;
        use crate::simulate::{Fleet, Profile, record_at};
        let fleet = Fleet {
            machines: 1,
            machine_prefix: crate::simulate::DEFAULT_MACHINE_PREFIX.into(),
            records: 10,
            window: std::time::Duration::from_secs(10),
            profile: Profile::Constant,
            seed: 1,
            start: UnixMillis(1_767_225_600_000),
        };
        let message = |seq: u64| RawMessage {
            topic: "u".into(),
            partition: 0,
            offset: seq as i64,
            payload: Some(record_at(&fleet, seq - 1).to_json()),
        };
        let directory = tempfile::tempdir().unwrap();
        let mut biller = Biller::new(Ledger::open(&directory.path().join("ledger.db")).unwrap(), RateCard::built_in());
        biller.bill(&[1, 2, 5, 6, 9, 10].map(message)).unwrap();
        let runs = |ledger: &Ledger| -> Vec<(u64, u64)> {
            gaps(ledger, None).unwrap().iter().map(|gap| (gap.first_missing_seq, gap.last_missing_seq)).collect()
        };
        assert_eq!(runs(biller.ledger()), vec![(3, 4), (7, 8)]);
        biller.bill(&[message(7), message(8)]).unwrap();
        assert_eq!(runs(biller.ledger()), vec![(3, 4)]);
        let csv = render_gaps(&gaps(biller.ledger(), None).unwrap(), ReportFormat::Csv);
        assert!(csv.lines().nth(1).is_some_and(|line| line.starts_with("sim-00001,3,4,2,")), "{csv}");
    }

    #[test]
    fn binary_messages_are_listed_as_base64_and_text_as_text() {
        let directory = tempfile::tempdir().unwrap();
        let mut ledger = Ledger::open(&directory.path().join("ledger.db")).unwrap();
        let item = |offset, raw: &[u8]| Quarantined { topic: "t".into(), partition: 1, offset, reason: "bad".into(), raw: raw.to_vec() };
        let batch = Batch { quarantined: vec![item(4, b"not json"), item(5, &[0xff, 0x00, 0xfe])], ..Batch::default() };
        ledger.write_batch(&batch).unwrap();
        let listed = quarantined(&ledger).unwrap();
        assert_eq!((listed[0].raw.as_str(), listed[0].raw_encoding), ("not json", "text"));
        assert_eq!((listed[1].raw.as_str(), listed[1].raw_encoding, listed[1].raw_size), ("/wD+", "base64", 3));
        let json: serde_json::Value = serde_json::from_str(&render_quarantine(&listed, ReportFormat::Json)).unwrap();
        assert_eq!(json[1]["offset"], 5);
    }
}
