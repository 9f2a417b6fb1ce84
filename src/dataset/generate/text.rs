//! Appending numbers and fixed-width fields to the output buffer without `format!`, which would
//! allocate and parse a format string for every line.

/// Appends `value` in decimal.
#[inline]
pub fn push_u64(buf: &mut Vec<u8>, mut value: u64) {
    let mut digits = [0u8; 20];
    let mut start = digits.len();
    loop {
        start -= 1;
        digits[start] = b'0' + (value % 10) as u8;
        value /= 10;
        if value == 0 {
            break;
        }
    }
    buf.extend_from_slice(&digits[start..]);
}

/// Appends `value` in decimal, with a `-` sign when negative.
#[inline]
pub fn push_i64(buf: &mut Vec<u8>, value: i64) {
    if value < 0 {
        buf.push(b'-');
    }
    push_u64(buf, value.unsigned_abs());
}

/// Appends the low `width` decimal digits of `value`, zero-padded (`push_padded(buf, 7, 2)` → `07`).
#[inline]
pub fn push_padded(buf: &mut Vec<u8>, mut value: u64, width: usize) {
    let start = buf.len();
    buf.resize(start + width, b'0');
    for slot in buf[start..].iter_mut().rev() {
        *slot = b'0' + (value % 10) as u8;
        value /= 10;
    }
}

/// Appends the low `width` hex digits of `value`, lowercase and zero-padded.
#[inline]
pub fn push_hex(buf: &mut Vec<u8>, mut value: u64, width: usize) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let start = buf.len();
    buf.resize(start + width, b'0');
    for slot in buf[start..].iter_mut().rev() {
        *slot = HEX[(value & 0xf) as usize];
        value >>= 4;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(write: impl FnOnce(&mut Vec<u8>)) -> String {
        let mut buf = Vec::new();
        write(&mut buf);
        String::from_utf8(buf).unwrap()
    }

    #[test]
    fn numbers() {
        assert_eq!(render(|b| push_u64(b, 0)), "0");
        assert_eq!(render(|b| push_u64(b, u64::MAX)), u64::MAX.to_string());
        assert_eq!(
            render(|b| push_i64(b, -6_952_295_868_487_656_571)),
            "-6952295868487656571"
        );
        assert_eq!(render(|b| push_padded(b, 7, 2)), "07");
        assert_eq!(render(|b| push_padded(b, 81109, 6)), "081109");
        assert_eq!(render(|b| push_hex(b, 0xe3, 2)), "e3");
        assert_eq!(
            render(|b| push_hex(b, 0x1_0000_7f6c, 16)),
            "0000000100007f6c"
        );
    }
}
