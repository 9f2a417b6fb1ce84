//! JSON lines input: one JSON object per line with the [`LogRecord`] fields, so the loader can
//! take logs from any source (and the generated 3-topic services dataset) without a parser of
//! its own per format.
//!
//! `timestamp`, `host` and `message` are required; `label` defaults to `-` (a normal line),
//! `location` and `component` to empty, `pid` and `level` to none. Keys this record has no field
//! for are ignored, so a richer JSON log loads as is. Every error names the field at fault:
//! serde's own "invalid type" errors do not, and a user with a million-line file needs to know
//! which key to fix.

use std::fmt;

use serde_json::{Map, Value};

use crate::record::LogRecord;

/// Why a JSON line is not a record. The loader adds the line number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonlError {
    reason: String,
}

impl JsonlError {
    fn new(reason: impl Into<String>) -> Self {
        JsonlError {
            reason: reason.into(),
        }
    }

    /// A short lowercase reason such as ``missing field `host` ``.
    pub fn reason(&self) -> &str {
        &self.reason
    }
}

impl fmt::Display for JsonlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid jsonl line: {}", self.reason)
    }
}

impl std::error::Error for JsonlError {}

/// Parses one line holding one JSON object into a [`LogRecord`].
pub fn parse(line: &str) -> Result<LogRecord, JsonlError> {
    let value: Value =
        serde_json::from_str(line.trim()).map_err(|e| JsonlError::new(format!("not JSON: {e}")))?;
    let Value::Object(object) = value else {
        return Err(JsonlError::new("not a JSON object"));
    };
    Ok(LogRecord {
        timestamp: timestamp(&object)?,
        label: optional_string(&object, "label")?.unwrap_or_else(|| "-".to_string()),
        host: required_string(&object, "host")?,
        location: optional_string(&object, "location")?.unwrap_or_default(),
        component: optional_string(&object, "component")?.unwrap_or_default(),
        pid: match object.get("pid") {
            None | Some(Value::Null) => None,
            Some(v) => Some(
                v.as_i64()
                    .ok_or_else(|| wrong_type("pid", "an integer", v))?,
            ),
        },
        level: optional_string(&object, "level")?,
        message: required_string(&object, "message")?,
    })
}

/// Epoch seconds as an integer; a float is accepted when it is whole (some encoders write
/// `1700000000.0`), anything else would silently move the record in time.
fn timestamp(object: &Map<String, Value>) -> Result<i64, JsonlError> {
    let value = object
        .get("timestamp")
        .ok_or_else(|| missing("timestamp"))?;
    if let Some(seconds) = value.as_i64() {
        return Ok(seconds);
    }
    match value.as_f64() {
        Some(f) if f.fract() == 0.0 && f.abs() < 1e15 => Ok(f as i64),
        _ => Err(wrong_type(
            "timestamp",
            "an integer (unix epoch seconds)",
            value,
        )),
    }
}

fn required_string(object: &Map<String, Value>, field: &str) -> Result<String, JsonlError> {
    optional_string(object, field)?.ok_or_else(|| missing(field))
}

fn optional_string(object: &Map<String, Value>, field: &str) -> Result<Option<String>, JsonlError> {
    match object.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => Err(wrong_type(field, "a string", other)),
    }
}

fn missing(field: &str) -> JsonlError {
    JsonlError::new(format!("missing field `{field}`"))
}

fn wrong_type(field: &str, expected: &str, got: &Value) -> JsonlError {
    let mut shown = got.to_string();
    if shown.len() > 40 {
        let cut = (0..=40)
            .rev()
            .find(|&i| shown.is_char_boundary(i))
            .unwrap_or(0);
        shown.truncate(cut);
        shown.push('…');
    }
    JsonlError::new(format!("field `{field}` must be {expected}, got {shown}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_line_round_trips_through_serde() {
        let record = LogRecord {
            timestamp: 1_767_225_600,
            label: "-".into(),
            host: "api-7".into(),
            location: "eu-west-1a".into(),
            component: "checkout".into(),
            pid: Some(4242),
            level: Some("ERROR".into()),
            message: "connection pool exhausted".into(),
        };
        let line = serde_json::to_string(&record).unwrap();
        assert_eq!(parse(&line), Ok(record));
    }

    #[test]
    fn optional_fields_take_defaults_and_unknown_keys_are_ignored() {
        let record =
            parse(r#"{"timestamp": 12, "host": "h", "message": "m", "trace_id": "abc"}"#).unwrap();
        assert_eq!(record.label, "-");
        assert_eq!(record.location, "");
        assert_eq!(record.component, "");
        assert_eq!(record.pid, None);
        assert_eq!(record.level, None);
        // A whole float is the same second; CRLF and blanks around the object are fine.
        let record =
            parse("{\"timestamp\": 12.0, \"host\": \"h\", \"message\": \"m\"}\r\n").unwrap();
        assert_eq!(record.timestamp, 12);
    }

    #[test]
    fn bad_json_says_so() {
        let err = parse(r#"{"timestamp": 12, "host": "#).unwrap_err();
        assert!(
            err.to_string().starts_with("invalid jsonl line: not JSON:"),
            "{err}"
        );
        let err = parse("[1, 2]").unwrap_err();
        assert_eq!(err.reason(), "not a JSON object");
    }

    #[test]
    fn a_missing_or_mistyped_field_is_named() {
        let err = parse(r#"{"timestamp": 12, "message": "m"}"#).unwrap_err();
        assert_eq!(err.to_string(), "invalid jsonl line: missing field `host`");
        let err = parse(r#"{"host": "h", "message": "m"}"#).unwrap_err();
        assert_eq!(err.reason(), "missing field `timestamp`");
        let err = parse(r#"{"timestamp": "yesterday", "host": "h", "message": "m"}"#).unwrap_err();
        assert_eq!(
            err.reason(),
            "field `timestamp` must be an integer (unix epoch seconds), got \"yesterday\""
        );
        let err =
            parse(r#"{"timestamp": 1, "host": "h", "message": "m", "pid": "x"}"#).unwrap_err();
        assert_eq!(err.reason(), "field `pid` must be an integer, got \"x\"");
        let err = parse(r#"{"timestamp": 1, "host": 7, "message": "m"}"#).unwrap_err();
        assert_eq!(err.reason(), "field `host` must be a string, got 7");
    }
}
