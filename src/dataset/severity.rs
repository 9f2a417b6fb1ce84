//! The severity rule: one of `ALERT`, `ERROR`, `WARNING`, `INFO` for every record, derived the
//! same way for all formats so queries and dashboards can filter on it.
//!
//! The rule, first match wins:
//! 1. **ALERT** when the label is an alert tag, i.e. neither `-` nor empty (Thunderbird, BGL).
//! 2. When the line carries its own level (BGL, HDFS), that level decides, compared
//!    case-insensitively: `FATAL`, `ERROR`, `SEVERE`, `FAILURE`, `CRITICAL` → **ERROR**;
//!    `WARN`, `WARNING` → **WARNING**; any other level (`INFO`, `DEBUG`, …) → **INFO**. The
//!    writer's own level is trusted over keywords: BGL logs `instruction cache parity error
//!    corrected` at INFO, and that is not an error.
//! 3. Otherwise (Thunderbird has no level) keywords in the message or the component decide,
//!    case-insensitively, each matched as a word prefix (it must start a word, but may run on:
//!    `failed`, `errors`, `Warning:`): `error`, `fail`, `fatal`, `panic`, `critical` → **ERROR**;
//!    else `warn` → **WARNING**.
//! 4. Otherwise **INFO**.
//!
//! A word starts at the beginning of the text or after a byte that is not an ASCII letter, digit
//! or `_` (so `ib_error` and `terror` do not match; `(error)` and `data-error` do).
//!
//! [`derive_severity`] runs once per record at ingest rates, so it allocates nothing: it scans
//! the bytes once with an ASCII case-insensitive comparison instead of lowercasing the message.

use crate::record::LogRecord;

pub const ALERT: &str = "ALERT";
pub const ERROR: &str = "ERROR";
pub const WARNING: &str = "WARNING";
pub const INFO: &str = "INFO";

/// The severity of `record` under the rule in the module docs.
pub fn derive_severity(record: &LogRecord) -> &'static str {
    if !record.label.is_empty() && record.label != "-" {
        return ALERT;
    }
    if let Some(level) = &record.level {
        return severity_of_level(level);
    }
    // The message is scanned first and an error there settles it; the component (short) only
    // matters when the message has no error keyword.
    let in_message = keyword_severity(&record.message);
    if in_message == Some(ERROR) {
        return ERROR;
    }
    match keyword_severity(&record.component) {
        Some(ERROR) => ERROR,
        in_component => in_message.or(in_component).unwrap_or(INFO),
    }
}

fn severity_of_level(level: &str) -> &'static str {
    const ERROR_LEVELS: [&str; 5] = ["FATAL", "ERROR", "SEVERE", "FAILURE", "CRITICAL"];
    const WARNING_LEVELS: [&str; 2] = ["WARN", "WARNING"];
    let level = level.trim();
    if ERROR_LEVELS
        .iter()
        .any(|known| known.eq_ignore_ascii_case(level))
    {
        ERROR
    } else if WARNING_LEVELS
        .iter()
        .any(|known| known.eq_ignore_ascii_case(level))
    {
        WARNING
    } else {
        INFO
    }
}

const ERROR_WORDS: [&[u8]; 5] = [b"error", b"fail", b"fatal", b"panic", b"critical"];
const WARNING_WORDS: [&[u8]; 1] = [b"warn"];

fn is_word_byte(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || byte == b'_'
}

/// `Some(ERROR)` if an error keyword starts a word in `text`, else `Some(WARNING)` if a warning
/// keyword does, else `None`.
fn keyword_severity(text: &str) -> Option<&'static str> {
    let bytes = text.as_bytes();
    let mut found_warning = false;
    let mut previous_is_word = false;
    for (index, &byte) in bytes.iter().enumerate() {
        let word_start = !previous_is_word;
        previous_is_word = is_word_byte(byte);
        // Every keyword starts with one of these letters; checking it first keeps the scan to
        // one comparison for almost every byte.
        if !word_start || !matches!(byte | 0x20, b'e' | b'f' | b'p' | b'c' | b'w') {
            continue;
        }
        let rest = &bytes[index..];
        let starts_with =
            |word: &[u8]| rest.len() >= word.len() && rest[..word.len()].eq_ignore_ascii_case(word);
        if ERROR_WORDS.iter().any(|word| starts_with(word)) {
            return Some(ERROR);
        }
        found_warning |= WARNING_WORDS.iter().any(|word| starts_with(word));
    }
    found_warning.then_some(WARNING)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(label: &str, level: Option<&str>, component: &str, message: &str) -> LogRecord {
        LogRecord {
            timestamp: 0,
            label: label.to_string(),
            host: "dn1".to_string(),
            location: String::new(),
            component: component.to_string(),
            pid: None,
            level: level.map(str::to_string),
            message: message.to_string(),
        }
    }

    #[test]
    fn alert_label_wins_over_everything() {
        assert_eq!(
            derive_severity(&record("VAPI", None, "kernel", "all good")),
            ALERT
        );
        assert_eq!(
            derive_severity(&record("KERNDTLB", Some("INFO"), "KERNEL", "x")),
            ALERT
        );
        assert_eq!(
            derive_severity(&record("-", None, "kernel", "all good")),
            INFO
        );
        assert_eq!(
            derive_severity(&record("", None, "kernel", "all good")),
            INFO
        );
    }

    #[test]
    fn own_level_decides_when_present() {
        for level in [
            "FATAL", "ERROR", "SEVERE", "FAILURE", "CRITICAL", "fatal", "Error",
        ] {
            assert_eq!(
                derive_severity(&record("-", Some(level), "KERNEL", "x")),
                ERROR,
                "{level}"
            );
        }
        for level in ["WARN", "WARNING", "warning"] {
            assert_eq!(
                derive_severity(&record("-", Some(level), "KERNEL", "x")),
                WARNING,
                "{level}"
            );
        }
        // The level is trusted over keywords in either direction.
        assert_eq!(
            derive_severity(&record(
                "-",
                Some("INFO"),
                "KERNEL",
                "instruction cache parity error corrected"
            )),
            INFO
        );
        assert_eq!(
            derive_severity(&record("-", Some("DEBUG"), "x", "fatal")),
            INFO
        );
    }

    #[test]
    fn keywords_without_a_level() {
        let cases = [
            (
                "sshd",
                "error: Bind to port 22 on 0.0.0.0 failed: Address already in use.",
                ERROR,
            ),
            (
                "kernel",
                "Kernel panic - not syncing: Fatal exception",
                ERROR,
            ),
            (
                "gmetad",
                "Warning: we failed to resolve data source name an14",
                ERROR,
            ),
            (
                "postfix/postdrop",
                "warning: unable to look up public/pickup",
                WARNING,
            ),
            ("smartd", "Device: /dev/sda, CRITICAL temperature", ERROR),
            ("vesafb", "probe of vesafb0 failed with error -6", ERROR),
            ("netfs", "Mounting other filesystems: FAILED", ERROR),
            ("ntpd", "synchronized to 10.100.20.250, stratum 3", INFO),
            // Only word starts count: no match inside words or after `_`.
            ("kernel", "terror unfailing ib_error rewarn", INFO),
            // Punctuation separates words.
            ("kernel", "read(error) data-fail", ERROR),
            // The component counts too.
            ("Warning", "something happened", WARNING),
            ("crond", "session closed for user root", INFO),
        ];
        for (component, message, want) in cases {
            assert_eq!(
                derive_severity(&record("-", None, component, message)),
                want,
                "{message}"
            );
        }
    }

    #[test]
    fn error_in_component_beats_warning_in_message() {
        assert_eq!(
            derive_severity(&record("-", None, "fail2ban", "warn: x")),
            ERROR
        );
    }
}
