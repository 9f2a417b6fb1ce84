//! The BGL (Blue Gene/L) line format and its zero-copy parser.
//!
//! Loghub `log_format`:
//! `<Label> <Timestamp> <Date> <Node> <Time> <NodeRepeat> <Type> <Component> <Level> <Content>`
//!
//! Following the strict regex of datasets.md §6 (it reproduces the v1 structured CSV): nine
//! whitespace-separated tokens (Timestamp digits, Date `dddd.dd.dd`), then the rest of the line is
//! Content. `Time` is local US Pacific text (`2005-06-03-15.42.50.675872`) and is kept raw;
//! `Timestamp` is the authoritative epoch.

use std::fmt;

use super::scan::{Cursor, LoghubHead, loghub_head, trim};
use super::{LogFormat, ParseError};
use crate::record::LogRecord;

/// One BGL line, every field borrowed from the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BglLine<'a> {
    /// `-` or the alert tag (`KERNDTLB`, `APPSEV`, …).
    pub label: &'a str,
    /// Raw `Timestamp` digits; [`Self::epoch`] is its value.
    pub timestamp: &'a str,
    /// `YYYY.MM.DD`.
    pub date: &'a str,
    /// `R02-M1-N0-C:J12-U11`, `NULL`, `UNKNOWN_LOCATION`, …
    pub node: &'a str,
    /// `YYYY-MM-DD-HH.MM.SS.ffffff`, local Pacific time.
    pub time: &'a str,
    pub node_repeat: &'a str,
    /// Loghub's `Type` column (`RAS`, `NULL`).
    pub event_type: &'a str,
    /// `KERNEL`, `APP`, `DISCOVERY`, `MMCS`, `HARDWARE`, …
    pub component: &'a str,
    /// `INFO`, `WARNING`, `SEVERE`, `ERROR`, `FATAL`, `FAILURE`, …
    pub level: &'a str,
    pub content: &'a str,
    /// `timestamp` as Unix epoch seconds.
    pub epoch: i64,
}

const fn error(reason: &'static str) -> ParseError {
    ParseError::new(LogFormat::Bgl, reason)
}

/// Parses one line; surrounding whitespace (CR, LF) is stripped first.
pub fn parse(line: &str) -> Result<BglLine<'_>, ParseError> {
    let line = trim(line);
    let mut cursor = Cursor::new(line);
    let LoghubHead {
        label,
        timestamp,
        epoch,
        date,
    } = loghub_head(&mut cursor, LogFormat::Bgl)?;
    let node = cursor.token().ok_or(error("missing node"))?;
    let time = cursor.token().ok_or(error("missing time"))?;
    let node_repeat = cursor.token().ok_or(error("missing repeated node"))?;
    let event_type = cursor.token().ok_or(error("missing type"))?;
    let component = cursor.token().ok_or(error("missing component"))?;
    let level = cursor.token().ok_or(error("missing level"))?;
    let (content, _) = cursor.rest().ok_or(error("missing content"))?;
    Ok(BglLine {
        label,
        timestamp,
        date,
        node,
        time,
        node_repeat,
        event_type,
        component,
        level,
        content,
        epoch,
    })
}

impl BglLine<'_> {
    /// Converts into the shared record: host = `Node`, location = `NodeRepeat`, level = `Level`.
    /// `Type` and the textual `Date`/`Time` are dropped; `timestamp` carries the time.
    pub fn to_record(&self) -> LogRecord {
        LogRecord {
            timestamp: self.epoch,
            label: self.label.to_string(),
            host: self.node.to_string(),
            location: self.node_repeat.to_string(),
            component: self.component.to_string(),
            pid: None,
            level: Some(self.level.to_string()),
            message: self.content.to_string(),
        }
    }
}

/// Writes the line back with single spaces between fields.
impl fmt::Display for BglLine<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} {} {} {} {} {} {} {} {}",
            self.label,
            self.timestamp,
            self.date,
            self.node,
            self.time,
            self.node_repeat,
            self.event_type,
            self.component,
            self.level,
            self.content
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dataset::testutil::{read_sample_csv, read_sample_log};

    #[test]
    fn alert_line_to_record() {
        let line = "KERNDTLB 1118536327 2005.06.11 R30-M0-N9-C:J16-U01 2005-06-11-17.32.07.581048 R30-M0-N9-C:J16-U01 RAS KERNEL FATAL data TLB error interrupt\r\n";
        let record = parse(line).unwrap().to_record();
        assert_eq!(record.timestamp, 1_118_536_327);
        assert_eq!(record.label, "KERNDTLB");
        assert_eq!(record.host, "R30-M0-N9-C:J16-U01");
        assert_eq!(record.component, "KERNEL");
        assert_eq!(record.level.as_deref(), Some("FATAL"));
        assert_eq!(record.message, "data TLB error interrupt");
    }

    #[test]
    fn rejects_broken_lines_with_a_reason() {
        let cases = [
            ("  ", "empty line"),
            ("- x1117838570", "timestamp is not a number"),
            ("- 1117838570 2005/06/03", "date is not YYYY.MM.DD"),
            (
                "- 1117838570 2005.06.03 R02-M1-N0-C:J12-U11 2005-06-03-15.42.50.675872 R02-M1-N0-C:J12-U11 RAS KERNEL",
                "missing level",
            ),
            (
                "- 1117838570 2005.06.03 R02-M1-N0-C:J12-U11 2005-06-03-15.42.50.675872 R02-M1-N0-C:J12-U11 RAS KERNEL INFO  ",
                "missing content",
            ),
        ];
        for (line, reason) in cases {
            assert_eq!(parse(line).unwrap_err().reason(), reason, "{line:?}");
        }
    }

    /// Every field of every line of `BGL_2k.log` equals the Loghub v1 structured CSV.
    #[test]
    fn fidelity_against_loghub_2k_structured_csv() {
        let lines = read_sample_log("BGL_2k.log");
        let rows = read_sample_csv("BGL_2k.log_structured.csv");
        assert_eq!(
            rows.header[..11],
            [
                "LineId",
                "Label",
                "Timestamp",
                "Date",
                "Node",
                "Time",
                "NodeRepeat",
                "Type",
                "Component",
                "Level",
                "Content"
            ]
        );
        assert_eq!(lines.len(), 2000);
        assert_eq!(rows.records.len(), 2000);
        let mut alerts = 0;
        for (index, (line, row)) in lines.iter().zip(&rows.records).enumerate() {
            assert_eq!(row[0], (index + 1).to_string(), "LineId order");
            let parsed =
                parse(line).unwrap_or_else(|err| panic!("line {}: {err}: {line}", index + 1));
            let got = [
                parsed.label,
                parsed.timestamp,
                parsed.date,
                parsed.node,
                parsed.time,
                parsed.node_repeat,
                parsed.event_type,
                parsed.component,
                parsed.level,
                parsed.content,
            ];
            assert_eq!(got, row[1..11], "line {}", index + 1);
            assert_eq!(parsed.epoch.to_string(), row[2]);
            alerts += usize::from(parsed.label != "-");
        }
        // datasets.md §6: 143 alert lines in the sample.
        assert_eq!(alerts, 143);
    }
}
