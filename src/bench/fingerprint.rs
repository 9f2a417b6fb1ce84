//! What a run record says about where it ran: run ids and UTC times, the code version and
//! build profile, and the machine (CPU model, cores, memory, OS).

use std::time::{SystemTime, UNIX_EPOCH};

use super::record::{Hardware, Version};
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

pub fn version() -> Version {
    Version {
        package: env!("CARGO_PKG_VERSION").into(),
        git: env!("SV_GIT_VERSION").into(),
        build: if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        }
        .into(),
    }
}

pub fn hardware() -> Hardware {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cpu_model = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split(':').nth(1))
        .map_or_else(
            || std::env::consts::ARCH.to_string(),
            |m| m.trim().to_string(),
        );
    let memory_bytes = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<u64>().ok())
        })
        .map_or(0, |kb| kb * 1024);
    let os = std::fs::read_to_string("/etc/os-release")
        .ok()
        .and_then(|r| {
            r.lines()
                .find_map(|l| l.strip_prefix("PRETTY_NAME="))
                .map(|v| v.trim_matches('"').to_string())
        })
        .unwrap_or_else(|| std::env::consts::OS.to_string());
    Hardware {
        hostname: std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_string())
            .unwrap_or_default(),
        os,
        cpu_model,
        cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
        memory_bytes,
    }
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
