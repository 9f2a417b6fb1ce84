//! The log record every role passes around: what a parsed line becomes and what a shard stores.

use serde::{Deserialize, Serialize};

/// One parsed log line, format-independent.
///
/// `host` is the record key: it decides the partition (`stable hash(host) mod N`), so all lines of
/// one host stay in order inside one partition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogRecord {
    /// Unix epoch seconds as written in the log (Thunderbird/BGL `Timestamp`; HDFS date+time as UTC).
    pub timestamp: i64,
    /// `-` for a normal line, otherwise the alert category tag (`VAPI`, `KERNDTLB`, ...).
    pub label: String,
    /// Reporting host (Thunderbird `User`, BGL `Node`); the record key.
    pub host: String,
    /// Thunderbird `Location` (`dn228/dn228`, `local@tbird-admin1`); BGL `NodeRepeat`; empty for HDFS.
    pub location: String,
    /// Program or subsystem that wrote the line.
    pub component: String,
    /// Process id when the line carries one.
    pub pid: Option<i64>,
    /// Level written in the line itself (BGL `Level`, HDFS `Level`); `None` for Thunderbird.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub level: Option<String>,
    /// Free text after the header.
    pub message: String,
}
