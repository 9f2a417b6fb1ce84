//! Log datasets: the Loghub line formats (Thunderbird, BGL, HDFS), their zero-copy parsers, the
//! severity rule, and a seeded generator of realistic synthetic lines.
//!
//! Layout:
//! - [`thunderbird`], [`bgl`], [`hdfs`]: one hand-written parser per format. Each returns a struct
//!   that borrows every raw field of the Loghub `log_format` from the line, and converts it into
//!   the shared [`LogRecord`] with `to_record()`.
//! - [`severity`]: the documented rule that maps a record to ALERT / ERROR / WARNING / INFO.
//! - [`generate`]: deterministic synthetic lines for scale tests, in the same grammar, and the
//!   three JSON-lines topics of chronik's 37-query scale test (`generate::services`).
//! - [`jsonl`]: JSON lines with the [`LogRecord`] fields, the loader's format for any other log
//!   ([`InputFormat`] is what the loader reads: a Loghub format or JSON lines).
//! - `scan` and [`civil`]: the byte and calendar helpers the parsers and the generator share.
//!
//! The parsers follow the "strict" regexes of `shared/reference/datasets.md` (§1, §6, §7), which
//! reproduce every field of the Loghub v1 structured CSVs; the fidelity tests in each parser file
//! check that claim against the 2k samples.

pub mod bgl;
pub mod civil;
pub mod fetch;
pub mod generate;
pub mod hdfs;
pub mod jsonl;
mod scan;
pub mod severity;
pub mod thunderbird;

#[cfg(test)]
mod testutil;

use std::fmt;
use std::str::FromStr;

use crate::record::LogRecord;

pub use bgl::BglLine;
pub use generate::{GenOptions, generate};
pub use hdfs::HdfsLine;
pub use severity::derive_severity;
pub use thunderbird::ThunderbirdLine;

/// The log formats this crate can parse and generate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LogFormat {
    Thunderbird,
    Bgl,
    Hdfs,
}

impl LogFormat {
    /// Every format, in the order the CLI lists them.
    pub const ALL: [LogFormat; 3] = [LogFormat::Thunderbird, LogFormat::Bgl, LogFormat::Hdfs];

    /// The lowercase name used on the command line and in configs.
    pub fn name(self) -> &'static str {
        match self {
            LogFormat::Thunderbird => "thunderbird",
            LogFormat::Bgl => "bgl",
            LogFormat::Hdfs => "hdfs",
        }
    }
}

impl fmt::Display for LogFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Returned by `LogFormat::from_str` for a name that is not a known format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownFormat {
    given: String,
    expected: &'static str,
}

impl fmt::Display for UnknownFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "unknown log format `{}`: expected one of {}",
            self.given, self.expected
        )
    }
}

impl std::error::Error for UnknownFormat {}

impl FromStr for LogFormat {
    type Err = UnknownFormat;

    /// Accepts the names case-insensitively, so `Thunderbird` (the Loghub spelling) also works.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        LogFormat::ALL
            .into_iter()
            .find(|format| format.name().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| UnknownFormat {
                given: s.to_string(),
                expected: "thunderbird, bgl, hdfs",
            })
    }
}

/// What the loader reads: the lines of a Loghub format, or JSON lines with the record's fields.
///
/// JSON lines are kept out of [`LogFormat`] on purpose: a `LogFormat` can also be fetched from
/// Loghub and generated line by line, which JSON lines cannot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum InputFormat {
    Log(LogFormat),
    Jsonl,
}

impl InputFormat {
    /// The lowercase name used on the command line.
    pub fn name(self) -> &'static str {
        match self {
            InputFormat::Log(format) => format.name(),
            InputFormat::Jsonl => "jsonl",
        }
    }
}

impl From<LogFormat> for InputFormat {
    fn from(format: LogFormat) -> Self {
        InputFormat::Log(format)
    }
}

impl fmt::Display for InputFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for InputFormat {
    type Err = UnknownFormat;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.trim().eq_ignore_ascii_case("jsonl") {
            return Ok(InputFormat::Jsonl);
        }
        s.parse::<LogFormat>()
            .map(InputFormat::Log)
            .map_err(|_| UnknownFormat {
                given: s.to_string(),
                expected: "thunderbird, bgl, hdfs, jsonl",
            })
    }
}

/// Why an input line is not a record: a Loghub line that breaks its grammar, or a JSON line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LineError {
    Log(ParseError),
    Jsonl(jsonl::JsonlError),
}

impl fmt::Display for LineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LineError::Log(e) => e.fmt(f),
            LineError::Jsonl(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for LineError {}

/// Parses one input line of `format` into a [`LogRecord`].
pub fn parse_input_line(format: InputFormat, line: &str) -> Result<LogRecord, LineError> {
    match format {
        InputFormat::Log(format) => parse_line(format, line).map_err(LineError::Log),
        InputFormat::Jsonl => jsonl::parse(line).map_err(LineError::Jsonl),
    }
}

/// Why a line does not fit its format.
///
/// It is `Copy` and holds only static text, so rejecting millions of lines costs no allocation;
/// the loader can count reasons or print a few of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParseError {
    format: LogFormat,
    reason: &'static str,
}

impl ParseError {
    pub(crate) const fn new(format: LogFormat, reason: &'static str) -> Self {
        ParseError { format, reason }
    }

    /// The format the line was parsed as.
    pub fn format(&self) -> LogFormat {
        self.format
    }

    /// A short lowercase reason such as `timestamp is not a number`.
    pub fn reason(&self) -> &'static str {
        self.reason
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid {} line: {}", self.format, self.reason)
    }
}

impl std::error::Error for ParseError {}

/// Parses one raw line of `format` into a [`LogRecord`].
///
/// Surrounding whitespace (the CR of CRLF files, the LF, trailing blanks) is stripped first, as
/// Loghub does with `line.strip()` before matching.
pub fn parse_line(format: LogFormat, line: &str) -> Result<LogRecord, ParseError> {
    match format {
        LogFormat::Thunderbird => thunderbird::parse(line).map(|parsed| parsed.to_record()),
        LogFormat::Bgl => bgl::parse(line).map(|parsed| parsed.to_record()),
        LogFormat::Hdfs => hdfs::parse(line).map(|parsed| parsed.to_record()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_names_round_trip() {
        for format in LogFormat::ALL {
            assert_eq!(format.to_string().parse::<LogFormat>(), Ok(format));
        }
        assert_eq!(
            "Thunderbird".parse::<LogFormat>(),
            Ok(LogFormat::Thunderbird)
        );
        assert_eq!(" HDFS ".parse::<LogFormat>(), Ok(LogFormat::Hdfs));
    }

    #[test]
    fn unknown_format_names_the_valid_ones() {
        let err = "spark".parse::<LogFormat>().unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown log format `spark`: expected one of thunderbird, bgl, hdfs"
        );
    }

    #[test]
    fn input_formats_take_jsonl_beside_the_loghub_ones() {
        assert_eq!("JSONL".parse::<InputFormat>(), Ok(InputFormat::Jsonl));
        assert_eq!(
            "bgl".parse::<InputFormat>(),
            Ok(InputFormat::Log(LogFormat::Bgl))
        );
        for format in [InputFormat::Jsonl, InputFormat::Log(LogFormat::Hdfs)] {
            assert_eq!(format.to_string().parse::<InputFormat>(), Ok(format));
        }
        let err = "csv".parse::<InputFormat>().unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown log format `csv`: expected one of thunderbird, bgl, hdfs, jsonl"
        );
        // jsonl is no Loghub format: `fetch` and `gen` refuse it by type.
        assert!("jsonl".parse::<LogFormat>().is_err());
    }

    #[test]
    fn parse_input_line_dispatches_to_both_kinds() {
        let record = parse_input_line(
            InputFormat::Jsonl,
            r#"{"timestamp": 5, "host": "h", "message": "disk full"}"#,
        )
        .unwrap();
        assert_eq!(record.message, "disk full");
        let err =
            parse_input_line(InputFormat::Jsonl, r#"{"timestamp": 5, "host": "h"}"#).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid jsonl line: missing field `message`"
        );
        let err = parse_input_line(LogFormat::Bgl.into(), "- notanumber").unwrap_err();
        assert_eq!(
            err,
            LineError::Log(ParseError::new(LogFormat::Bgl, "timestamp is not a number"))
        );
    }

    #[test]
    fn parse_line_strips_crlf_and_dispatches() {
        let line = "- 1131566461 2005.11.09 dn228 Nov 9 12:01:01 dn228/dn228 crond[2916]: (root) CMD (run-parts /etc/cron.hourly)\r\n";
        let record = parse_line(LogFormat::Thunderbird, line).unwrap();
        assert_eq!(record.host, "dn228");
        assert_eq!(record.message, "(root) CMD (run-parts /etc/cron.hourly)");

        let err = parse_line(LogFormat::Bgl, "- notanumber").unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid bgl line: timestamp is not a number"
        );
        assert_eq!(err.format(), LogFormat::Bgl);
    }
}
