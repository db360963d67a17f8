//! Feeds arbitrary bytes to `UsageRecord::parse`. Parsing may refuse the bytes but must never
//! panic; a record it accepts must encode to JSON that parses back to the same record, since every
//! boundary (outbox, Kafka, ledger, feed) re-encodes what it accepted.

#![no_main]

use libfuzzer_sys::fuzz_target;
use usagebill::record::UsageRecord;

fuzz_target!(|bytes: &[u8]| {
    let Ok(record) = UsageRecord::parse(bytes) else { return };
    let encoded = record.to_json();
    let again = UsageRecord::parse(&encoded)
        .unwrap_or_else(|error| panic!("an accepted record re-encodes to JSON that is refused: {error}\n{record:?}"));
    assert_eq!(again, record, "the record changed over a JSON round trip");
    // Encoding is deterministic, so the second encoding must be byte for byte the first.
    assert_eq!(again.to_json(), encoded, "the encoding of an accepted record is not stable");
});
