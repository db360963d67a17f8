//! The last costs read from the summary topic, kept on disk, so that a desktop that cannot reach
//! the brokers still shows what it knew and when, instead of an empty tab. One JSON header line,
//! then each machine's summary as the topic carries it, one per line (about 1 KB a machine).
//!
//! A file that does not parse, or was written by another layout, is ignored with a log line: it is
//! a cache, and the topic is the truth.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::billing::cost_engine::CostSummary;
use crate::record::UnixMillis;

/// The layout written in the header; a file with another is ignored.
const FORMAT: &str = "usagebill.costs-snapshot.v1";
/// The largest snapshot kept: the 20 MB the Costs tab may hold, about 20,000 machines.
pub const MAX_SNAPSHOT_BYTES: usize = 20 * 1024 * 1024;

#[derive(Debug, Serialize, Deserialize)]
struct Header {
    format: String,
    saved_at: UnixMillis,
    machines: usize,
}

/// The snapshot file in `data_dir`.
pub fn snapshot_path(data_dir: &Path) -> PathBuf {
    data_dir.join("costs-snapshot.jsonl")
}

/// Writes `summaries` as read at `saved_at`, replacing the file whole (never half written).
pub fn save(path: &Path, saved_at: UnixMillis, summaries: &[&CostSummary]) -> Result<(), String> {
    let header = Header { format: FORMAT.into(), saved_at, machines: summaries.len() };
    let mut text = serde_json::to_vec(&header).map_err(|error| error.to_string())?;
    for summary in summaries {
        text.push(b'\n');
        serde_json::to_writer(&mut text, summary).map_err(|error| error.to_string())?;
        if text.len() > MAX_SNAPSHOT_BYTES {
            return Err(format!("the costs of {} machines pass the {} MB a snapshot may take", summaries.len(), MAX_SNAPSHOT_BYTES >> 20));
        }
    }
    text.push(b'\n');
    let failed = |error: std::io::Error| format!("cannot write {}: {error}", path.display());
    let directory = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(directory).map_err(failed)?;
    crate::files::replace(path, &text).map_err(failed)
}

/// The snapshot at `path`: when it was read and the summaries. `Ok(None)` when there is none;
/// an error says why a file there cannot be used.
pub fn load(path: &Path) -> Result<Option<(UnixMillis, Vec<CostSummary>)>, String> {
    let text = match std::fs::read(path) {
        Ok(text) => text,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(error) => return Err(format!("cannot read {}: {error}", path.display())),
    };
    let mut lines = text.split(|byte| *byte == b'\n').filter(|line| !line.is_empty());
    let bad = |what: String| format!("{} is not a costs snapshot this version reads: {what}", path.display());
    let header: Header = lines
        .next()
        .ok_or_else(|| bad("it is empty".into()))
        .and_then(|line| serde_json::from_slice(line).map_err(|error| bad(format!("its header: {error}"))))?;
    if header.format != FORMAT {
        return Err(bad(format!("its layout is {:?}, not {FORMAT:?}", header.format)));
    }
    let summaries = lines
        .enumerate()
        .map(|(index, line)| CostSummary::parse(line).map_err(|error| bad(format!("line {}: {error}", index + 2))))
        .collect::<Result<Vec<_>, _>>()?;
    if summaries.len() != header.machines {
        return Err(bad(format!("the header names {} machines and {} follow (cut short?)", header.machines, summaries.len())));
    }
    Ok(Some((header.saved_at, summaries)))
}

#[cfg(test)]
mod tests {
    use rust_decimal::Decimal;

    use super::*;
    use crate::billing::cost_engine::{Outlook, SUMMARY_SCHEMA, Series};

    fn summary_of(machine: &str) -> CostSummary {
        let start = UnixMillis::parse_rfc3339("2026-12-01T00:00:00Z").unwrap();
        CostSummary {
            schema: SUMMARY_SCHEMA.into(),
            machine_id: machine.into(),
            revision: 3,
            computed_at: start.plus_millis(3_600_000),
            currency: "USD".into(),
            card_version: "v1".into(),
            day_start: start,
            period_start: start,
            today: Decimal::new(1234, 2),
            period: Decimal::new(1234, 2),
            period_records: 3,
            gaps: 0,
            asleep_ms: 0,
            late_ms: 0,
            clock_steps: 0,
            last_seen: start.plus_millis(3_600_000),
            burn_per_hour: Decimal::ONE,
            forecast: Outlook::NotEnoughHistory { hours: 1 },
            hourly: Series { from: start, costs: vec![Decimal::new(1234, 2)] },
            daily: Series { from: start, costs: vec![Decimal::new(1234, 2)] },
            periods: Vec::new(),
        }
    }

    #[test]
    fn a_snapshot_round_trips_and_a_cut_short_or_foreign_file_is_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let path = snapshot_path(dir.path());
        assert_eq!(load(&path).unwrap(), None, "no file yet");
        let saved_at = UnixMillis::parse_rfc3339("2026-12-04T14:02:00Z").unwrap();
        let summaries = [summary_of("desk-1"), summary_of("desk-2")];
        save(&path, saved_at, &summaries.iter().collect::<Vec<_>>()).unwrap();
        assert_eq!(load(&path).unwrap(), Some((saved_at, summaries.to_vec())));

        let text = std::fs::read_to_string(&path).unwrap();
        let cut = text.lines().take(2).collect::<Vec<_>>().join("\n");
        std::fs::write(&path, cut).unwrap();
        assert!(load(&path).unwrap_err().contains("the header names 2 machines and 1 follow"));
        std::fs::write(&path, text.replace(FORMAT, "usagebill.costs-snapshot.v0")).unwrap();
        assert!(load(&path).unwrap_err().contains("usagebill.costs-snapshot.v0"));
        std::fs::write(&path, "{not json").unwrap();
        let error = load(&path).unwrap_err();
        assert!(error.contains(&path.display().to_string()) && error.contains("header"), "{error}");
    }
}
