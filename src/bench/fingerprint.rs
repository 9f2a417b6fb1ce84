//! Run ids and UTC times for run records (the code version and the machine are `crate::host`'s).

use std::time::{SystemTime, UNIX_EPOCH};

use crate::dataset::civil::civil_from_days;

fn utc_parts(epoch: i64) -> (i64, u32, u32, i64, i64, i64) {
    let (y, m, d) = civil_from_days(epoch.div_euclid(86_400));
    let secs = epoch.rem_euclid(86_400);
    (y, m, d, secs / 3600, secs / 60 % 60, secs % 60)
}

fn now_epoch() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

pub fn now_rfc3339() -> String {
    let (y, m, d, hh, mm, ss) = utc_parts(now_epoch());
    format!("{y:04}-{m:02}-{d:02}T{hh:02}:{mm:02}:{ss:02}Z")
}

/// `20261127T061500Z-sv-2a`: sorts by start time; the label keeps only `[a-z0-9-]`.
pub fn run_id(label: &str) -> String {
    let (y, m, d, hh, mm, ss) = utc_parts(now_epoch());
    let label: String = label
        .to_ascii_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    // Two runs started in the same second get different ids.
    let nonce = std::process::id() % 1000;
    format!("{y:04}{m:02}{d:02}T{hh:02}{mm:02}{ss:02}Z-{label}-{nonce:03}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_parts_of_known_instants() {
        assert_eq!(utc_parts(0), (1970, 1, 1, 0, 0, 0));
        // 2005-11-09 18:11:38 UTC, a Thunderbird timestamp.
        assert_eq!(utc_parts(1_131_559_898), (2005, 11, 9, 18, 11, 38));
    }

    #[test]
    fn run_ids_sort_by_time_and_are_file_safe() {
        let id = run_id("SV-2a / demo");
        assert!(id.contains("-sv-2a---demo-"), "{id}");
        assert!(
            id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'),
            "{id}"
        );
    }
}
