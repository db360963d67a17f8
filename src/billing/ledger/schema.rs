//! Ledger migrations, keyed on `PRAGMA user_version` and applied by `crate::sqlite`, which refuses a
//! ledger newer than this code.

/// Each entry moves the schema from version `index` to `index + 1`.
pub const MIGRATIONS: &[&str] = &[
    // 1: machines, records, priced lines, offsets, quarantine.
    "CREATE TABLE machines (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL UNIQUE
    );
    CREATE TABLE records (
        id INTEGER PRIMARY KEY,
        machine INTEGER NOT NULL REFERENCES machines(id),
        seq INTEGER NOT NULL,
        start_ms INTEGER NOT NULL,
        end_ms INTEGER NOT NULL,
        cpu_pct REAL NOT NULL,
        cpu_cores INTEGER NOT NULL,
        mem_used_bytes INTEGER NOT NULL,
        mem_total_bytes INTEGER NOT NULL,
        disk_read_bytes INTEGER NOT NULL,
        disk_write_bytes INTEGER NOT NULL,
        net_rx_bytes INTEGER NOT NULL,
        net_tx_bytes INTEGER NOT NULL,
        samples INTEGER NOT NULL,
        trigger TEXT NOT NULL,
        source_partition INTEGER,
        source_offset INTEGER,
        billed_ms INTEGER NOT NULL,
        UNIQUE (machine, seq)
    );
    CREATE TABLE lines (
        record INTEGER PRIMARY KEY REFERENCES records(id),
        card_version TEXT NOT NULL,
        currency TEXT NOT NULL,
        cpu TEXT NOT NULL,
        memory TEXT NOT NULL,
        net_rx TEXT NOT NULL,
        net_tx TEXT NOT NULL,
        disk_read TEXT NOT NULL,
        disk_write TEXT NOT NULL,
        total TEXT NOT NULL
    );
    CREATE TABLE offsets (
        topic TEXT NOT NULL,
        partition INTEGER NOT NULL,
        next_offset INTEGER NOT NULL,
        PRIMARY KEY (topic, partition)
    ) WITHOUT ROWID;
    CREATE TABLE quarantine (
        id INTEGER PRIMARY KEY,
        topic TEXT NOT NULL,
        partition INTEGER NOT NULL,
        offset INTEGER NOT NULL,
        received_ms INTEGER NOT NULL,
        reason TEXT NOT NULL,
        raw BLOB NOT NULL,
        raw_size INTEGER NOT NULL
    );",
    // 2: small counters (the cost-feed cursor) and budget alerts, first alert per machine and period.
    "CREATE TABLE meta (
        key TEXT PRIMARY KEY,
        value INTEGER NOT NULL
    ) WITHOUT ROWID;
    CREATE TABLE budget_alerts (
        machine TEXT NOT NULL,
        period_start_ms INTEGER NOT NULL,
        budget TEXT NOT NULL,
        projected TEXT NOT NULL,
        currency TEXT NOT NULL,
        raised_ms INTEGER NOT NULL,
        PRIMARY KEY (machine, period_start_ms)
    ) WITHOUT ROWID;",
    // 3: hourly rollups per machine, backfilled from the records already billed.
    super::rollup::CREATE_AND_BACKFILL,
    // 4: each record's priced line in the record's own row: one row and one unique-key entry per
    // record billed, instead of two rows and a key. A record without its line (never written so, as
    // both went in one transaction) fails the NOT NULL checks and leaves the ledger as it was.
    "CREATE TABLE billed (
        id INTEGER PRIMARY KEY,
        machine INTEGER NOT NULL REFERENCES machines(id),
        seq INTEGER NOT NULL,
        start_ms INTEGER NOT NULL,
        end_ms INTEGER NOT NULL,
        cpu_pct REAL NOT NULL,
        cpu_cores INTEGER NOT NULL,
        mem_used_bytes INTEGER NOT NULL,
        mem_total_bytes INTEGER NOT NULL,
        disk_read_bytes INTEGER NOT NULL,
        disk_write_bytes INTEGER NOT NULL,
        net_rx_bytes INTEGER NOT NULL,
        net_tx_bytes INTEGER NOT NULL,
        samples INTEGER NOT NULL,
        trigger TEXT NOT NULL,
        source_partition INTEGER,
        source_offset INTEGER,
        billed_ms INTEGER NOT NULL,
        card_version TEXT NOT NULL,
        currency TEXT NOT NULL,
        cpu TEXT NOT NULL,
        memory TEXT NOT NULL,
        net_rx TEXT NOT NULL,
        net_tx TEXT NOT NULL,
        disk_read TEXT NOT NULL,
        disk_write TEXT NOT NULL,
        total TEXT NOT NULL,
        UNIQUE (machine, seq)
    );
    INSERT INTO billed
        SELECT r.id, r.machine, r.seq, r.start_ms, r.end_ms, r.cpu_pct, r.cpu_cores, r.mem_used_bytes, r.mem_total_bytes,
               r.disk_read_bytes, r.disk_write_bytes, r.net_rx_bytes, r.net_tx_bytes, r.samples, r.trigger,
               r.source_partition, r.source_offset, r.billed_ms,
               l.card_version, l.currency, l.cpu, l.memory, l.net_rx, l.net_tx, l.disk_read, l.disk_write, l.total
        FROM records r LEFT JOIN lines l ON l.record = r.id ORDER BY r.id;
    DROP TABLE lines;
    DROP TABLE records;
    ALTER TABLE billed RENAME TO records;",
    // 5: what each record says of time (usage, or a span the machine did not live; time observed
    // late; clock steps seen), and their sums in the hourly rollups, which report them next to gaps.
    // Adding a column with a default rewrites nothing. Every record billed before is a usage window
    // with no late time or step (schema 4 kept none), so the defaults are what a backfill of the
    // rollups from the records would compute.
    "ALTER TABLE records ADD COLUMN kind TEXT NOT NULL DEFAULT 'usage';
    ALTER TABLE records ADD COLUMN late_ms INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE records ADD COLUMN clock_steps INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE hourly ADD COLUMN asleep_ms INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE hourly ADD COLUMN late_ms INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE hourly ADD COLUMN clock_steps INTEGER NOT NULL DEFAULT 0;",
    // 6: final statements, in embedded mode (with a broker they are kept on the statements topic),
    // as their canonical JSON bytes, and the periods closed. One row per number: the primary key
    // keeps numbers unique, and the closer numbers inside a write transaction.
    "CREATE TABLE statements (
        number INTEGER PRIMARY KEY,
        account TEXT NOT NULL,
        period TEXT NOT NULL,
        bytes BLOB NOT NULL,
        UNIQUE (account, period)
    );
    CREATE TABLE closed_periods (
        period TEXT PRIMARY KEY
    ) WITHOUT ROWID;",
    // 7: the UTC day a budget alert's forecast crosses the budget on (empty in alerts of before).
    "ALTER TABLE budget_alerts ADD COLUMN crossing_day_ms INTEGER;",
];

/// The schema version this code writes.
pub const CURRENT_VERSION: i64 = MIGRATIONS.len() as i64;
