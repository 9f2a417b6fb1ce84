//! The HDFS (HDFS_v1) line format and its zero-copy parser.
//!
//! Loghub `log_format`: `<Date> <Time> <Pid> <Level> <Component>: <Content>`.
//!
//! Following the strict regex of datasets.md §7: Date `yymmdd`, Time `HHMMSS`, Pid digits, a Level
//! token, then a lazy Component that ends at the first `:` followed by whitespace.
//!
//! Two choices the format leaves open, made here:
//! - **Time zone.** The log carries no zone, so Date+Time are read as UTC, with `yy` meaning
//!   20yy. The epoch is only used for ordering and time-range queries, and UTC keeps it a pure
//!   function of the text.
//! - **Host.** HDFS lines name no reporting host. The record's `host` (the partition key) is the
//!   first IPv4 address in Content, without its port (`10.251.73.220:50010` → `10.251.73.220`),
//!   which is the DataNode the line is about; lines with no address (e.g. `Verification succeeded
//!   for blk_…`) use the Component instead, so they still spread by subsystem.

use std::fmt;

use super::civil::{SECS_PER_DAY, days_from_civil, days_in_month};
use super::scan::{Cursor, all_digits, digits_value, is_ws, matches_shape, skip_ws, trim};
use super::{LogFormat, ParseError};
use crate::record::LogRecord;

/// One HDFS line, every field borrowed from the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HdfsLine<'a> {
    /// `yymmdd`, leading zero kept (`081109`).
    pub date: &'a str,
    /// `HHMMSS`.
    pub time: &'a str,
    /// Raw `Pid` digits; [`Self::pid_value`] is its value.
    pub pid: &'a str,
    /// `INFO`, `WARN`, …
    pub level: &'a str,
    /// `dfs.DataNode$PacketResponder`, …
    pub component: &'a str,
    pub content: &'a str,
    /// Date and Time read as UTC, in Unix epoch seconds.
    pub epoch: i64,
    pub pid_value: i64,
}

const fn error(reason: &'static str) -> ParseError {
    ParseError::new(LogFormat::Hdfs, reason)
}

/// Parses one line; surrounding whitespace (CR, LF) is stripped first.
pub fn parse(line: &str) -> Result<HdfsLine<'_>, ParseError> {
    let line = trim(line);
    let mut cursor = Cursor::new(line);
    let date = cursor.token().ok_or(error("empty line"))?;
    if !matches_shape(date, b"999999") {
        return Err(error("date is not yymmdd"));
    }
    let time = cursor.token().ok_or(error("missing time"))?;
    if !matches_shape(time, b"999999") {
        return Err(error("time is not HHMMSS"));
    }
    let epoch = epoch_of(date.as_bytes(), time.as_bytes())?;
    let pid = cursor.token().ok_or(error("missing pid"))?;
    if !all_digits(pid) {
        return Err(error("pid is not a number"));
    }
    let pid_value = digits_value(pid).ok_or(error("pid is out of range"))?;
    let level = cursor.token().ok_or(error("missing level"))?;
    let (tail, tail_start) = cursor.rest().ok_or(error("missing component"))?;
    let bytes = tail.as_bytes();
    let colon = (0..bytes.len())
        .find(|&index| {
            bytes[index] == b':' && bytes.get(index + 1).is_some_and(|&next| is_ws(next))
        })
        .ok_or(error("missing ': ' after the component"))?;
    let content = &line[tail_start + skip_ws(bytes, colon + 1)..];
    Ok(HdfsLine {
        date,
        time,
        pid,
        level,
        component: &tail[..colon],
        content,
        epoch,
        pid_value,
    })
}

fn two_digits(bytes: &[u8], at: usize) -> u32 {
    u32::from(bytes[at] - b'0') * 10 + u32::from(bytes[at + 1] - b'0')
}

/// `yymmdd` + `HHMMSS` (already shape-checked) as UTC epoch seconds, years 2000–2099.
fn epoch_of(date: &[u8], time: &[u8]) -> Result<i64, ParseError> {
    let year = 2000 + i64::from(two_digits(date, 0));
    let month = two_digits(date, 2);
    let day = two_digits(date, 4);
    if !(1..=12).contains(&month) || day == 0 || day > days_in_month(year, month) {
        return Err(error("date is not a calendar day"));
    }
    let (hour, minute, second) = (
        two_digits(time, 0),
        two_digits(time, 2),
        two_digits(time, 4),
    );
    if hour > 23 || minute > 59 || second > 59 {
        return Err(error("time is not a clock time"));
    }
    let secs_of_day = i64::from(hour * 3600 + minute * 60 + second);
    Ok(days_from_civil(year, month, day) * SECS_PER_DAY + secs_of_day)
}

/// The first dotted-quad IPv4 address in `text` (each part 0–255), without any `:port`.
///
/// The address must stand alone: no digit or `.` right before it, and no digit or `.digit` right
/// after it, so version strings like `3.0.1.2.5` are not taken.
pub fn first_ipv4(text: &str) -> Option<&str> {
    let bytes = text.as_bytes();
    let mut start = 0;
    while start < bytes.len() {
        let starts_here = bytes[start].is_ascii_digit()
            && (start == 0 || !(bytes[start - 1].is_ascii_digit() || bytes[start - 1] == b'.'));
        if starts_here && let Some(end) = ipv4_end(bytes, start) {
            return Some(&text[start..end]);
        }
        start += 1;
    }
    None
}

fn ipv4_end(bytes: &[u8], start: usize) -> Option<usize> {
    let mut pos = start;
    for part in 0..4 {
        if part > 0 {
            if bytes.get(pos) != Some(&b'.') {
                return None;
            }
            pos += 1;
        }
        let digits = bytes[pos..]
            .iter()
            .take(3)
            .take_while(|b| b.is_ascii_digit())
            .count();
        if digits == 0 {
            return None;
        }
        let value = bytes[pos..pos + digits]
            .iter()
            .fold(0u32, |acc, &b| acc * 10 + u32::from(b - b'0'));
        if value > 255 {
            return None;
        }
        pos += digits;
    }
    let next_is_digit = |at: usize| bytes.get(at).is_some_and(u8::is_ascii_digit);
    if next_is_digit(pos) || (bytes.get(pos) == Some(&b'.') && next_is_digit(pos + 1)) {
        return None;
    }
    Some(pos)
}

impl<'a> HdfsLine<'a> {
    /// The record key: the first IPv4 address in Content, else the Component (module docs).
    pub fn host(&self) -> &'a str {
        first_ipv4(self.content).unwrap_or(self.component)
    }

    /// Converts into the shared record: label `-` (HDFS has no per-line labels), empty location.
    pub fn to_record(&self) -> LogRecord {
        LogRecord {
            timestamp: self.epoch,
            label: "-".to_string(),
            host: self.host().to_string(),
            location: String::new(),
            component: self.component.to_string(),
            pid: Some(self.pid_value),
            level: Some(self.level.to_string()),
            message: self.content.to_string(),
        }
    }
}

/// Writes the line back with single spaces between fields.
impl fmt::Display for HdfsLine<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} {} {} {}: {}",
            self.date, self.time, self.pid, self.level, self.component, self.content
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dataset::testutil::{read_sample_csv, read_sample_log};

    #[test]
    fn timestamp_is_utc_and_host_is_first_ip() {
        let line = "081109 204005 35 INFO dfs.FSNamesystem: BLOCK* NameSystem.addStoredBlock: blockMap updated: 10.251.73.220:50010 is added to blk_7128370237687728475 size 67108864";
        let parsed = parse(line).unwrap();
        assert_eq!(parsed.epoch, 1_226_263_205); // 2008-11-09 20:40:05 UTC
        assert_eq!(parsed.component, "dfs.FSNamesystem");
        assert_eq!(
            parsed.content,
            "BLOCK* NameSystem.addStoredBlock: blockMap updated: 10.251.73.220:50010 is added to blk_7128370237687728475 size 67108864"
        );
        let record = parsed.to_record();
        assert_eq!(record.host, "10.251.73.220");
        assert_eq!(record.label, "-");
        assert_eq!(record.pid, Some(35));
        assert_eq!(record.level.as_deref(), Some("INFO"));

        let no_ip =
            parse("081109 203615 148 INFO dfs.DataBlockScanner: Verification succeeded for blk_-1")
                .unwrap();
        assert_eq!(no_ip.host(), "dfs.DataBlockScanner");
    }

    #[test]
    fn ipv4_boundaries() {
        assert_eq!(
            first_ipv4("src: /10.250.19.102:54106 dest"),
            Some("10.250.19.102")
        );
        assert_eq!(
            first_ipv4("ganglia-3.0.1.2.5 then 10.0.0.1."),
            Some("10.0.0.1")
        );
        assert_eq!(first_ipv4("256.1.1.1 1.2.3.4"), Some("1.2.3.4"));
        assert_eq!(first_ipv4("11.2.3.4567"), None);
        assert_eq!(first_ipv4("blk_38865049064139660 size 67108864"), None);
    }

    #[test]
    fn rejects_broken_lines_with_a_reason() {
        let cases = [
            ("81109 203615 148 INFO c: x", "date is not yymmdd"),
            ("081109 2036 148 INFO c: x", "time is not HHMMSS"),
            ("081339 203615 148 INFO c: x", "date is not a calendar day"),
            ("081109 253615 148 INFO c: x", "time is not a clock time"),
            ("081109 203615 1x8 INFO c: x", "pid is not a number"),
            ("081109 203615 148 INFO", "missing component"),
            (
                "081109 203615 148 INFO dfs.FSNamesystem:blockMap",
                "missing ': ' after the component",
            ),
        ];
        for (line, reason) in cases {
            assert_eq!(parse(line).unwrap_err().reason(), reason, "{line:?}");
        }
    }

    /// Every field of every line of `HDFS_2k.log` equals the Loghub v1 structured CSV.
    #[test]
    fn fidelity_against_loghub_2k_structured_csv() {
        let lines = read_sample_log("HDFS_2k.log");
        let rows = read_sample_csv("HDFS_2k.log_structured.csv");
        assert_eq!(
            rows.header[..7],
            [
                "LineId",
                "Date",
                "Time",
                "Pid",
                "Level",
                "Component",
                "Content"
            ]
        );
        assert_eq!(lines.len(), 2000);
        assert_eq!(rows.records.len(), 2000);
        let mut with_ip = 0;
        for (index, (line, row)) in lines.iter().zip(&rows.records).enumerate() {
            assert_eq!(row[0], (index + 1).to_string(), "LineId order");
            let parsed =
                parse(line).unwrap_or_else(|err| panic!("line {}: {err}: {line}", index + 1));
            let got = [
                parsed.date,
                parsed.time,
                parsed.pid,
                parsed.level,
                parsed.component,
                parsed.content,
            ];
            assert_eq!(got, row[1..7], "line {}", index + 1);
            assert_eq!(parsed.pid_value.to_string(), row[3]);
            with_ip += usize::from(first_ipv4(parsed.content).is_some());
        }
        // Two thirds of the lines name a DataNode address; the rest fall back to the Component.
        assert_eq!(with_ip, 1291);
    }
}
