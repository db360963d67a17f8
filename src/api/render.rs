//! Responses: JSON bodies, CSV tables (the rows of the API's own queries; see `billing::table_format`) and
//! the error bodies every refusal uses.

use std::borrow::Cow;

use serde::Serialize;
use serde_json::json;

use super::params::ParamError;
use super::queries::{CostGroup, QuarantineEntry, UsageBucket};
pub use crate::billing::table_format::{CsvRow, csv_table};

/// Content type of JSON bodies.
pub const JSON: &str = "application/json";
/// Content type of CSV tables.
pub const CSV: &str = "text/csv; charset=utf-8";
/// Content type of a statement's PDF.
pub const PDF: &str = "application/pdf";
/// Content type of the Prometheus text exposition format.
pub const PROMETHEUS: &str = "text/plain; version=0.0.4; charset=utf-8";

/// An answer, before it is written to the socket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiResponse {
    /// HTTP status code.
    pub status: u16,
    /// `Content-Type`.
    pub content_type: &'static str,
    /// Further headers.
    pub headers: Vec<(&'static str, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl ApiResponse {
    /// A body of `content_type`.
    pub fn new(status: u16, content_type: &'static str, body: impl Into<Vec<u8>>) -> ApiResponse {
        ApiResponse { status, content_type, headers: Vec::new(), body: body.into() }
    }

    /// `value` as pretty JSON.
    pub fn json(status: u16, value: &impl Serialize) -> ApiResponse {
        // Serialising these plain structs cannot fail; an empty object is still valid JSON if it did.
        let body = serde_json::to_vec_pretty(value).unwrap_or_else(|_| b"{}".to_vec());
        ApiResponse::new(status, JSON, body)
    }

    /// `{"error": message}` with `status`.
    pub fn error(status: u16, message: &str) -> ApiResponse {
        ApiResponse::json(status, &json!({ "error": message }))
    }

    /// A 400 naming the parameter and the value.
    pub fn bad_parameter(error: &ParamError) -> ApiResponse {
        ApiResponse::json(400, &json!({ "error": error.to_string(), "parameter": error.name, "value": error.value }))
    }

    /// Adds a header.
    pub fn with_header(mut self, name: &'static str, value: impl Into<String>) -> ApiResponse {
        self.headers.push((name, value.into()));
        self
    }

    /// The body as text, for tests and logs.
    pub fn text(&self) -> Cow<'_, str> {
        String::from_utf8_lossy(&self.body)
    }
}

impl CsvRow for CostGroup {
    const HEADER: &'static [&'static str] = &["group", "currency", "records", "cost"];
    fn cells(&self) -> Vec<String> {
        vec![self.group.clone(), self.currency.clone(), self.records.to_string(), self.cost.to_string()]
    }
}

impl CsvRow for UsageBucket {
    const HEADER: &'static [&'static str] = &[
        "start",
        "end",
        "records",
        "cpu_core_hours",
        "memory_gb_hours",
        "disk_read_bytes",
        "disk_write_bytes",
        "net_rx_bytes",
        "net_tx_bytes",
        "cost",
        "currency",
    ];
    fn cells(&self) -> Vec<String> {
        vec![
            self.start.to_string(),
            self.end.to_string(),
            self.records.to_string(),
            self.cpu_core_hours.to_string(),
            self.memory_gb_hours.to_string(),
            self.disk_read_bytes.to_string(),
            self.disk_write_bytes.to_string(),
            self.net_rx_bytes.to_string(),
            self.net_tx_bytes.to_string(),
            self.cost.to_string(),
            self.currency.clone(),
        ]
    }
}

impl CsvRow for QuarantineEntry {
    const HEADER: &'static [&'static str] = &["id", "topic", "partition", "offset", "received_at", "reason", "raw_size", "raw"];
    fn cells(&self) -> Vec<String> {
        vec![
            self.id.to_string(),
            self.topic.clone(),
            self.partition.to_string(),
            self.offset.to_string(),
            self.received_at.to_string(),
            self.reason.clone(),
            self.raw_size.to_string(),
            self.raw.clone(),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bad_parameter_names_itself_in_the_body() {
        let error = ParamError { name: "from".into(), value: "yesterday".into(), expected: "an RFC 3339 time".into() };
        let response = ApiResponse::bad_parameter(&error);
        assert_eq!(response.status, 400);
        let body: serde_json::Value = serde_json::from_slice(&response.body).unwrap();
        assert_eq!(body["parameter"], "from");
        assert_eq!(body["value"], "yesterday");
    }
}
