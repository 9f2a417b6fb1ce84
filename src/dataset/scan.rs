//! Byte-level helpers shared by the hand-written parsers: the whitespace rule, trimming, token
//! cutting and digit checks. Everything borrows from the line; nothing allocates.

/// Whitespace as Python's `\s` and `str.strip()` see it for ASCII input.
///
/// Loghub matches with Python regexes, where `\s` also covers the four ASCII separators
/// 0x1C–0x1F; including them keeps our field split identical on odd bytes. Non-ASCII Unicode
/// spaces (U+00A0 and friends) are not treated as whitespace; the Loghub data is ASCII.
#[inline]
pub(crate) fn is_ws(byte: u8) -> bool {
    byte == b' ' || (b'\t'..=b'\r').contains(&byte) || (0x1c..=0x1f).contains(&byte)
}

/// Strips leading and trailing whitespace, like Python's `line.strip()`.
#[inline]
pub(crate) fn trim(line: &str) -> &str {
    let bytes = line.as_bytes();
    let mut start = 0;
    let mut end = bytes.len();
    while start < end && is_ws(bytes[start]) {
        start += 1;
    }
    while end > start && is_ws(bytes[end - 1]) {
        end -= 1;
    }
    // Both cut points sit next to ASCII bytes, so they are char boundaries.
    &line[start..end]
}

#[inline]
pub(crate) fn all_digits(text: &str) -> bool {
    !text.is_empty() && text.bytes().all(|byte| byte.is_ascii_digit())
}

/// Parses a run of ASCII digits that `all_digits` accepted; `None` on overflow.
#[inline]
pub(crate) fn digits_value(text: &str) -> Option<i64> {
    let mut value: i64 = 0;
    for byte in text.bytes() {
        value = value.checked_mul(10)?.checked_add(i64::from(byte - b'0'))?;
    }
    Some(value)
}

/// Checks `text` against a shape where `9` stands for any ASCII digit and every other byte must
/// match literally, e.g. `9999.99.99` for a Loghub `Date`.
#[inline]
pub(crate) fn matches_shape(text: &str, shape: &[u8]) -> bool {
    let bytes = text.as_bytes();
    bytes.len() == shape.len()
        && bytes.iter().zip(shape).all(|(&byte, &want)| {
            if want == b'9' {
                byte.is_ascii_digit()
            } else {
                byte == want
            }
        })
}

/// Walks a trimmed line token by token, where a token is a maximal run of non-whitespace bytes,
/// exactly what `\S+` followed by `\s+` captures in the strict regexes.
pub(crate) struct Cursor<'a> {
    line: &'a str,
    pos: usize,
}

impl<'a> Cursor<'a> {
    /// `line` must already be trimmed, so it starts with a token (or is empty).
    pub(crate) fn new(line: &'a str) -> Self {
        Cursor { line, pos: 0 }
    }

    /// The next token, skipping the whitespace before it; `None` at the end of the line.
    #[inline]
    pub(crate) fn token(&mut self) -> Option<&'a str> {
        let bytes = self.line.as_bytes();
        let mut start = self.pos;
        while start < bytes.len() && is_ws(bytes[start]) {
            start += 1;
        }
        if start == bytes.len() {
            self.pos = start;
            return None;
        }
        let mut end = start;
        while end < bytes.len() && !is_ws(bytes[end]) {
            end += 1;
        }
        self.pos = end;
        // Token edges are next to ASCII whitespace or the line ends, so they are char boundaries.
        Some(&self.line[start..end])
    }

    /// The rest of the line after the whitespace run that follows the last token; `None` when
    /// nothing is left. This is the start of a `.*?` field such as `Component` or `Content`.
    #[inline]
    pub(crate) fn rest(&mut self) -> Option<(&'a str, usize)> {
        let bytes = self.line.as_bytes();
        let mut start = self.pos;
        while start < bytes.len() && is_ws(bytes[start]) {
            start += 1;
        }
        self.pos = bytes.len();
        (start < bytes.len()).then(|| (&self.line[start..], start))
    }
}

/// The `<Label> <Timestamp> <Date>` head that Thunderbird and BGL lines share.
pub(crate) struct LoghubHead<'a> {
    pub label: &'a str,
    pub timestamp: &'a str,
    pub epoch: i64,
    pub date: &'a str,
}

/// Reads the shared head, reporting problems as `format`'s parse errors.
pub(crate) fn loghub_head<'a>(
    cursor: &mut Cursor<'a>,
    format: crate::dataset::LogFormat,
) -> Result<LoghubHead<'a>, crate::dataset::ParseError> {
    let error = |reason| crate::dataset::ParseError::new(format, reason);
    let label = cursor.token().ok_or(error("empty line"))?;
    let timestamp = cursor.token().ok_or(error("missing timestamp"))?;
    if !all_digits(timestamp) {
        return Err(error("timestamp is not a number"));
    }
    let epoch = digits_value(timestamp).ok_or(error("timestamp is out of range"))?;
    let date = cursor.token().ok_or(error("missing date"))?;
    if !matches_shape(date, b"9999.99.99") {
        return Err(error("date is not YYYY.MM.DD"));
    }
    Ok(LoghubHead {
        label,
        timestamp,
        epoch,
        date,
    })
}

/// Index of the first byte at or after `from` that is not whitespace (or `bytes.len()`).
#[inline]
pub(crate) fn skip_ws(bytes: &[u8], mut from: usize) -> usize {
    while from < bytes.len() && is_ws(bytes[from]) {
        from += 1;
    }
    from
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trim_uses_python_whitespace() {
        assert_eq!(trim("  a b \r\n"), "a b");
        assert_eq!(trim("\x1c a\x1f"), "a");
        assert_eq!(trim("\u{a0}a"), "\u{a0}a");
        assert_eq!(trim(" \t "), "");
    }

    #[test]
    fn cursor_cuts_maximal_tokens() {
        let mut cursor = Cursor::new("a  bb\tccc  rest of it");
        assert_eq!(cursor.token(), Some("a"));
        assert_eq!(cursor.token(), Some("bb"));
        assert_eq!(cursor.token(), Some("ccc"));
        assert_eq!(cursor.rest(), Some(("rest of it", 11)));
        assert_eq!(cursor.token(), None);
    }

    #[test]
    fn shapes_and_digits() {
        assert!(matches_shape("2005.11.09", b"9999.99.99"));
        assert!(!matches_shape("2005-11-09", b"9999.99.99"));
        assert!(!matches_shape("2005.11.9", b"9999.99.99"));
        assert_eq!(digits_value("0042"), Some(42));
        assert_eq!(digits_value("99999999999999999999"), None);
        assert!(!all_digits(""));
        assert!(!all_digits("12a"));
    }
}
