//! Micro-benchmarks of the hot paths: parsing a record, pricing it, writing a batch to the ledger.
//! `cargo bench --bench micro`; the fleet-scale figures come from `usagebill bench`.

use std::hint::black_box;
use std::time::Duration;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use usagebill::billing::biller::{Biller, RawMessage};
use usagebill::billing::ledger::Ledger;
use usagebill::billing::price::price;
use usagebill::billing::rate_card::RateCard;
use usagebill::record::{UnixMillis, UsageRecord};
use usagebill::simulate::{Fleet, Profile, record_at};

fn fleet(records: u64) -> Fleet {
    Fleet {
        machines: 100,
        machine_prefix: usagebill::simulate::DEFAULT_MACHINE_PREFIX.into(),
        records,
        window: Duration::from_secs(10),
        profile: Profile::Random,
        seed: 11,
        start: UnixMillis(1_767_225_600_000),
    }
}

fn parse_and_price(criterion: &mut Criterion) {
    let fleet = fleet(1);
    let record = record_at(&fleet, 0);
    let payload = record.to_json();
    let card = RateCard::built_in();
    let version = card.version_at(record.start).clone();
    criterion.bench_function("parse + validate one record", |bench| bench.iter(|| UsageRecord::parse(black_box(&payload)).unwrap()));
    criterion.bench_function("encode one record", |bench| bench.iter(|| black_box(&record).to_json()));
    criterion.bench_function("price one record (time-weighted)", |bench| bench.iter(|| price(black_box(&record), &version).unwrap()));
}

fn ledger_writes(criterion: &mut Criterion) {
    let batch_size = 1_000u64;
    let mut group = criterion.benchmark_group("ledger");
    group.throughput(Throughput::Elements(batch_size));
    group.sample_size(20);
    let directory = tempfile::tempdir().unwrap();
    let mut biller = Biller::new(Ledger::open(&directory.path().join("ledger.db")).unwrap(), RateCard::built_in());
    let mut next = 0u64;
    group.bench_function("bill a batch of 1,000 new records", |bench| {
        bench.iter_batched(
            || {
                let fleet = fleet(next + batch_size);
                let messages: Vec<RawMessage> = (next..next + batch_size)
                    .map(|index| RawMessage {
                        topic: "bench".into(),
                        partition: 0,
                        offset: index as i64,
                        payload: Some(record_at(&fleet, index).to_json()),
                    })
                    .collect();
                next += batch_size;
                messages
            },
            |messages| biller.bill(&messages).unwrap().outcome,
            BatchSize::PerIteration,
        );
    });
    group.finish();
}

criterion_group!(benches, parse_and_price, ledger_writes);
criterion_main!(benches);
