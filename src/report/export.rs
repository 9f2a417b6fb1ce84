//! CSV export of a run: one row per task, quoted per RFC 4180 so task names with commas,
//! quotes or line breaks survive a spreadsheet.

use std::fmt::Write;

use crate::bench::record::RunRecord;

const HEADER: [&str; 14] = [
    "phase",
    "task",
    "category",
    "samples",
    "errors",
    "throughput_per_s",
    "latency_p50_ms",
    "latency_p90_ms",
    "latency_p95_ms",
    "latency_p99_ms",
    "latency_p99_9_ms",
    "latency_max_ms",
    "service_p50_ms",
    "passed",
];

/// A field, quoted when it holds a separator, a quote or a line break (quotes doubled).
pub fn field(value: &str) -> String {
    if value.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", value.replace('"', "\"\""))
    } else {
        value.to_string()
    }
}

/// A missing percentile is an empty cell, not a zero, so spreadsheets leave it out of sums.
fn number(value: Option<f64>) -> String {
    value
        .filter(|v| v.is_finite())
        .map(|v| v.to_string())
        .unwrap_or_default()
}

/// The tasks of every phase as CSV, header first, lines ending in CRLF as RFC 4180 asks.
pub fn tasks_csv(run: &RunRecord) -> String {
    let mut out = HEADER.join(",");
    out.push_str("\r\n");
    for phase in &run.phases {
        for task in &phase.tasks {
            let row = [
                field(&phase.plan),
                field(&task.name),
                field(&task.category),
                task.samples.to_string(),
                task.errors.to_string(),
                number(Some(task.throughput)),
                number(task.latency_ms.p50),
                number(task.latency_ms.p90),
                number(task.latency_ms.p95),
                number(task.latency_ms.p99),
                number(task.latency_ms.p99_9),
                number(task.latency_ms.max),
                number(task.service_ms.p50),
                task.passed.to_string(),
            ];
            let _ = write!(out, "{}\r\n", row.join(","));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_only_what_needs_quoting() {
        assert_eq!(field("simple text"), "simple text");
        assert_eq!(field("a,b"), "\"a,b\"");
        assert_eq!(field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(field("two\nlines"), "\"two\nlines\"");
        assert_eq!(field("cr\r"), "\"cr\r\"");
        assert_eq!(field(""), "");
    }

    #[test]
    fn missing_numbers_are_empty_cells() {
        assert_eq!(number(None), "");
        assert_eq!(number(Some(f64::NAN)), "");
        assert_eq!(number(Some(1.5)), "1.5");
    }
}
