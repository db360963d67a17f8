//! The CloudEvents 1.0 structured JSON form of a usage record.

use serde::{Deserialize, Serialize};

use super::{
    EVENT_TYPE, EVENT_TYPE_V1, MAX_V1_WINDOW_MILLIS, RecordError, RecordKind, SPEC_VERSION, Trigger, UnixMillis, UsageRecord, invalid,
};

#[derive(Serialize, Deserialize)]
struct Envelope<'a> {
    specversion: &'a str,
    id: &'a str,
    source: &'a str,
    #[serde(rename = "type")]
    event_type: &'a str,
    time: &'a str,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    datacontenttype: Option<&'a str>,
    #[serde(borrow)]
    data: Data<'a>,
}

#[derive(Serialize, Deserialize)]
struct Data<'a> {
    seq: u64,
    start: &'a str,
    end: &'a str,
    cpu_pct: f64,
    cpu_cores: u32,
    mem_used_bytes: u64,
    mem_total_bytes: u64,
    disk_read_bytes: u64,
    disk_write_bytes: u64,
    net_rx_bytes: u64,
    net_tx_bytes: u64,
    samples: u32,
    trigger: &'a str,
    // Version 2 on; absent in version 1, where every window was usage.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    kind: Option<&'a str>,
    #[serde(default)]
    late_millis: u64,
    #[serde(default)]
    clock_steps: u32,
}

pub(super) fn encode(record: &UsageRecord) -> Vec<u8> {
    let id = record.id();
    let start = record.start.to_string();
    let end = record.end.to_string();
    let envelope = Envelope {
        specversion: SPEC_VERSION,
        id: &id,
        source: &record.machine_id,
        event_type: EVENT_TYPE,
        time: &end,
        datacontenttype: Some("application/json"),
        data: Data {
            seq: record.seq,
            start: &start,
            end: &end,
            cpu_pct: record.cpu_pct,
            cpu_cores: record.cpu_cores,
            mem_used_bytes: record.mem_used_bytes,
            mem_total_bytes: record.mem_total_bytes,
            disk_read_bytes: record.disk_read_bytes,
            disk_write_bytes: record.disk_write_bytes,
            net_rx_bytes: record.net_rx_bytes,
            net_tx_bytes: record.net_tx_bytes,
            samples: record.samples,
            trigger: record.trigger.as_str(),
            kind: Some(record.kind.as_str()),
            late_millis: record.late_millis,
            clock_steps: record.clock_steps,
        },
    };
    serde_json::to_vec(&envelope).expect("a usage record always serialises")
}

/// Decodes the envelope; returns the record and the `id` it claimed (checked after validation).
pub(super) fn decode(bytes: &[u8]) -> Result<(UsageRecord, String), RecordError> {
    let envelope: Envelope<'_> = serde_json::from_slice(bytes).map_err(|error| RecordError::Malformed(error.to_string()))?;
    if envelope.specversion != SPEC_VERSION {
        return Err(invalid("specversion", envelope.specversion, "must be \"1.0\""));
    }
    let version_1 = envelope.event_type == EVENT_TYPE_V1;
    if !version_1 && envelope.event_type != EVENT_TYPE {
        return Err(invalid("type", envelope.event_type, "must be \"usagebill.usage.v2\" (or v1)"));
    }
    if let Some(content_type) = envelope.datacontenttype
        && content_type != "application/json"
    {
        return Err(invalid("datacontenttype", content_type, "must be \"application/json\""));
    }
    let data = envelope.data;
    let start = parse_instant("data.start", data.start)?;
    let end = parse_instant("data.end", data.end)?;
    parse_instant("time", envelope.time)?;
    let trigger = Trigger::parse(data.trigger)
        .ok_or_else(|| invalid("data.trigger", data.trigger, "must be manual, interval, threshold or replay"))?;
    let kind = match data.kind {
        None => RecordKind::Usage,
        Some(_) if version_1 => return Err(invalid("data.kind", data.kind.unwrap_or_default(), "is not a field of version 1")),
        Some(text) => RecordKind::parse(text).ok_or_else(|| invalid("data.kind", text, "must be usage, asleep or clock_step"))?,
    };
    if version_1 && end.millis_since(start) > MAX_V1_WINDOW_MILLIS {
        // A version-1 agent timed windows by the wall clock alone: a long window may hold a sleep
        // or a clock step, which would be billed as hours of use at the window's levels.
        return Err(invalid("data.end", end, "a version-1 window longer than 1 h may span a sleep or a clock step"));
    }
    let record = UsageRecord {
        machine_id: envelope.source.to_owned(),
        seq: data.seq,
        start,
        end,
        cpu_pct: data.cpu_pct,
        cpu_cores: data.cpu_cores,
        mem_used_bytes: data.mem_used_bytes,
        mem_total_bytes: data.mem_total_bytes,
        disk_read_bytes: data.disk_read_bytes,
        disk_write_bytes: data.disk_write_bytes,
        net_rx_bytes: data.net_rx_bytes,
        net_tx_bytes: data.net_tx_bytes,
        samples: data.samples,
        trigger,
        kind,
        late_millis: data.late_millis,
        clock_steps: data.clock_steps,
    };
    Ok((record, envelope.id.to_owned()))
}

fn parse_instant(field: &'static str, text: &str) -> Result<UnixMillis, RecordError> {
    UnixMillis::parse_rfc3339(text).ok_or_else(|| invalid(field, text, "must be an RFC 3339 time"))
}
