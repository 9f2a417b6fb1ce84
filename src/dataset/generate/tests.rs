//! Black-box tests of the generator: determinism, grammar (every line parses with the real
//! parser and re-renders byte for byte), and the realism targets of datasets.md §10, measured
//! on generated output the way §9 measured the real sample.

use std::collections::HashMap;

use super::*;
use crate::dataset::civil::{CivilTime, pacific_offset_secs};
use crate::dataset::{bgl, hdfs, thunderbird};

fn generate_text(format: LogFormat, opts: &GenOptions) -> String {
    let mut out = Vec::new();
    let written = generate(format, opts, &mut out).unwrap();
    assert_eq!(written, opts.lines);
    String::from_utf8(out).unwrap()
}

fn options(lines: u64, seed: u64) -> GenOptions {
    GenOptions {
        lines,
        seed,
        ..GenOptions::default()
    }
}

fn share(count: usize, total: usize) -> f64 {
    count as f64 / total as f64
}

#[test]
fn same_seed_same_bytes_other_seed_other_bytes() {
    for format in LogFormat::ALL {
        let first = generate_text(format, &options(20_000, 42));
        let again = generate_text(format, &options(20_000, 42));
        let other = generate_text(format, &options(20_000, 43));
        assert!(first == again, "{format}: not deterministic");
        assert_ne!(first, other, "{format}: seed ignored");
        assert_eq!(first.lines().count(), 20_000);
    }
}

/// Everything §10 asks of Thunderbird lines, on 200k lines at the default options.
#[test]
fn thunderbird_lines_are_grammatical_and_realistic() {
    const LINES: usize = 200_000;
    let text = generate_text(LogFormat::Thunderbird, &options(LINES as u64, 7));
    let mut previous_epoch = i64::MIN;
    let mut zero_deltas = 0;
    let mut lengths = Vec::with_capacity(LINES);
    let mut alerts: Vec<(String, String)> = Vec::new();
    let mut hosts: HashMap<String, usize> = HashMap::new();
    let mut pids: HashMap<(String, String), String> = HashMap::new();
    let (mut top1, mut top6) = (0, 0);
    for (index, line) in text.lines().enumerate() {
        let parsed = thunderbird::parse(line)
            .unwrap_or_else(|err| panic!("line {}: {err}: {line}", index + 1));
        assert_eq!(
            parsed.to_string(),
            line,
            "line {} does not round-trip",
            index + 1
        );
        lengths.push(line.len());

        // Time: non-decreasing, header fields = epoch − 8 h.
        assert!(
            parsed.epoch >= previous_epoch,
            "time went back at line {}",
            index + 1
        );
        if index == 0 {
            assert_eq!(parsed.epoch, 1_131_523_501);
        }
        zero_deltas += usize::from(parsed.epoch == previous_epoch);
        previous_epoch = parsed.epoch;
        let local = CivilTime::from_epoch(parsed.epoch, -8 * 3600);
        assert_eq!(
            parsed.date,
            format!("{:04}.{:02}.{:02}", local.year, local.month, local.day)
        );
        assert_eq!(parsed.month, local.month_abbr());
        assert_eq!(parsed.day, local.day.to_string());
        assert_eq!(
            parsed.time,
            format!("{:02}:{:02}:{:02}", local.hour, local.minute, local.second)
        );

        // Location by host class.
        let host = parsed.user;
        let expected_location = match host {
            "tbird-admin1" => format!("local@{host}"),
            _ if host.contains("admin") || host == "tbird-sm1" => format!("src@{host}"),
            _ => format!("{host}/{host}"),
        };
        assert_eq!(parsed.location, expected_location);
        *hosts.entry(host.to_string()).or_default() += 1;
        if let Some(pid) = parsed.pid {
            let known = pids
                .entry((host.to_string(), parsed.component.to_string()))
                .or_insert_with(|| pid.to_string());
            assert_eq!(known, pid, "PID of {} on {host} changed", parsed.component);
        }

        if parsed.label != "-" {
            alerts.push((parsed.label.to_string(), host.to_string()));
        }
        let is_top1 = parsed
            .content
            .starts_with("data_thread() got not answer from any [Thunderbird_");
        top1 += usize::from(is_top1);
        top6 += usize::from(
            is_top1
                || (parsed.component == "ntpd"
                    && parsed.content.starts_with("synchronized to 10.100."))
                || parsed.content.starts_with("[ib_sm_sweep.c:")
                || parsed
                    .content
                    .starts_with("Warning: we failed to resolve data source name "),
        );
    }
    assert_eq!(lengths.len(), LINES);

    let zero = share(zero_deltas, LINES);
    assert!((0.60..0.68).contains(&zero), "zero-delta share {zero}");

    lengths.sort_unstable();
    let median = lengths[LINES / 2];
    let mean = lengths.iter().sum::<usize>() as f64 / LINES as f64;
    assert!((132..=152).contains(&median), "median length {median}");
    assert!((150.0..172.0).contains(&mean), "mean length {mean}");
    assert!(
        lengths[LINES - 1] >= 800,
        "longest line {}",
        lengths[LINES - 1]
    );

    let top1 = share(top1, LINES);
    let top6 = share(top6, LINES);
    assert!((0.38..0.43).contains(&top1), "top template share {top1}");
    assert!((0.75..0.83).contains(&top6), "top-6 share {top6}");

    let admin1 = share(hosts["tbird-admin1"], LINES);
    let sm1 = share(hosts["tbird-sm1"], LINES);
    assert!(
        (0.48..0.62).contains(&admin1),
        "tbird-admin1 share {admin1}"
    );
    assert!((0.08..0.11).contains(&sm1), "tbird-sm1 share {sm1}");
    assert!(hosts.len() > 4000, "{} distinct hosts", hosts.len());

    // Alerts: the default 1.5 % rate, VAPI-dominated, in bursts on one node.
    let rate = share(alerts.len(), LINES);
    assert!((0.011..0.019).contains(&rate), "alert rate {rate}");
    let vapi = share(
        alerts.iter().filter(|(tag, _)| tag == "VAPI").count(),
        alerts.len(),
    );
    assert!(vapi > 0.97, "VAPI share of alerts {vapi}");
    let same_host_as_previous = alerts
        .windows(2)
        .filter(|pair| pair[0].1 == pair[1].1)
        .count();
    assert!(
        share(same_host_as_previous, alerts.len()) > 0.85,
        "alerts are not bursty"
    );
}

/// The words the benchmark queries search for all occur, most of them rarely.
#[test]
fn thunderbird_vocabulary_covers_the_benchmark_queries() {
    const LINES: usize = 200_000;
    let text =
        generate_text(LogFormat::Thunderbird, &options(LINES as u64, 11)).to_ascii_lowercase();
    let phrases = [
        "error",
        "warning",
        "failure",
        "timeout",
        "kernel",
        "network interface down",
        "disk i/o error",
        "memory allocation failed",
        "kernel panic",
        "postfix",
        "tftp: client",
        "sshd",
        "postdrop",
        "ntpd",
        "rsync",
        "gmetad",
        "ecc memory",
        "cpu ticks",
        "dimm",
        "synchronized to",
        "topology change",
        "startup succeeded",
        "publickey",
        "no such file or directory",
    ];
    for phrase in phrases {
        let hits = text.matches(phrase).count();
        assert!(hits > 0, "no line mentions {phrase:?}");
        if ![
            "kernel",
            "sshd",
            "ntpd",
            "gmetad",
            "synchronized to",
            "topology change",
            "error",
            "warning",
        ]
        .contains(&phrase)
        {
            assert!(
                share(hits, LINES) < 0.01,
                "{phrase:?} is too common: {hits}"
            );
        }
    }
}

#[test]
fn alert_rate_is_configurable() {
    let none = generate_text(
        LogFormat::Thunderbird,
        &GenOptions {
            alert_rate: 0.0,
            ..options(50_000, 3)
        },
    );
    assert!(none.lines().all(|line| line.starts_with("- ")));
    // Alerts come in bursts of ~24 lines, so the count is noisy: 200k lines keep it within 15 %.
    for rate in [0.05, 0.3, 1.0] {
        let text = generate_text(
            LogFormat::Thunderbird,
            &GenOptions {
                alert_rate: rate,
                ..options(200_000, 3)
            },
        );
        let alerts = text.lines().filter(|line| !line.starts_with("- ")).count();
        let got = share(alerts, 200_000);
        assert!((got - rate).abs() < rate * 0.15, "asked {rate}, got {got}");
    }
}

/// Damaged lines are exactly the ones that differ from an undamaged run of the same seed, and
/// the parser rejects every one of them.
#[test]
fn malformed_lines_are_rejected_by_the_parser() {
    const LINES: usize = 50_000;
    for format in LogFormat::ALL {
        let clean = generate_text(format, &options(LINES as u64, 5));
        let damaged = generate_text(
            format,
            &GenOptions {
                malformed_rate: 0.01,
                ..options(LINES as u64, 5)
            },
        );
        let clean: Vec<&str> = clean.lines().collect();
        let damaged: Vec<&str> = damaged.lines().collect();
        assert_eq!(clean.len(), damaged.len());
        let mut rejected = 0;
        for (good, bad) in clean.iter().zip(&damaged) {
            if good == bad {
                assert!(
                    crate::dataset::parse_line(format, bad).is_ok(),
                    "{format}: {bad}"
                );
            } else {
                let err = crate::dataset::parse_line(format, bad).expect_err(bad);
                assert_eq!(err.format(), format);
                rejected += 1;
            }
        }
        let rate = share(rejected, LINES);
        assert!(
            (0.008..0.012).contains(&rate),
            "{format}: malformed share {rate}"
        );
    }
}

#[test]
fn bgl_lines_are_grammatical() {
    const LINES: usize = 50_000;
    let text = generate_text(
        LogFormat::Bgl,
        &GenOptions {
            alert_rate: 0.07,
            ..options(LINES as u64, 9)
        },
    );
    let mut previous = i64::MIN;
    let mut alerts = 0;
    let mut cores = 0;
    for line in text.lines() {
        let parsed = bgl::parse(line).unwrap_or_else(|err| panic!("{err}: {line}"));
        assert_eq!(parsed.to_string(), line);
        assert!(parsed.epoch >= previous);
        previous = parsed.epoch;
        assert_eq!(parsed.node, parsed.node_repeat);
        let local = CivilTime::from_epoch(parsed.epoch, pacific_offset_secs(parsed.epoch));
        let date = format!("{:04}.{:02}.{:02}", local.year, local.month, local.day);
        let time = format!(
            "{:04}-{:02}-{:02}-{:02}.{:02}.{:02}.",
            local.year, local.month, local.day, local.hour, local.minute, local.second
        );
        assert_eq!(parsed.date, date);
        assert!(
            parsed.time.starts_with(&time) && parsed.time.len() == time.len() + 6,
            "{}",
            parsed.time
        );
        if parsed.label != "-" {
            alerts += 1;
            assert_eq!(parsed.level, "FATAL");
        }
        cores += usize::from(parsed.content.starts_with("generating core."));
    }
    assert!((0.06..0.08).contains(&share(alerts, LINES)));
    assert!((0.30..0.36).contains(&share(cores, LINES)));
}

#[test]
fn hdfs_lines_are_grammatical() {
    const LINES: usize = 50_000;
    let text = generate_text(
        LogFormat::Hdfs,
        &GenOptions {
            crlf: true,
            ..options(LINES as u64, 4)
        },
    );
    assert!(text.ends_with("\r\n"));
    let mut previous = 1_131_523_501;
    let mut with_ip = 0;
    for line in text.split_terminator("\r\n") {
        let parsed = hdfs::parse(line).unwrap_or_else(|err| panic!("{err}: {line}"));
        assert_eq!(parsed.to_string(), line);
        assert!(parsed.epoch >= previous);
        previous = parsed.epoch;
        with_ip += usize::from(hdfs::first_ipv4(parsed.content).is_some());
    }
    // Two thirds of the lines name a DataNode, as in the sample (1,291 of 2,000).
    assert!((0.6..0.7).contains(&share(with_ip, LINES)));
    // About 80 lines per second.
    let rate = LINES as f64 / (previous - 1_131_523_501) as f64;
    assert!((60.0..100.0).contains(&rate), "{rate} lines/s");
}

#[test]
fn crlf_endings_and_option_checks() {
    let text = generate_text(
        LogFormat::Thunderbird,
        &GenOptions {
            crlf: true,
            ..options(1000, 1)
        },
    );
    assert_eq!(text.matches("\r\n").count(), 1000);
    assert_eq!(text.matches('\n').count(), 1000);

    let mut sink = Vec::new();
    for bad in [
        GenOptions {
            alert_rate: 1.5,
            ..options(10, 1)
        },
        GenOptions {
            malformed_rate: -0.1,
            ..options(10, 1)
        },
        GenOptions {
            alert_rate: f64::NAN,
            ..options(10, 1)
        },
        GenOptions {
            start_epoch: i64::MAX,
            ..options(10, 1)
        },
    ] {
        let err = generate(LogFormat::Thunderbird, &bad, &mut sink).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    }
    assert!(sink.is_empty());
    assert_eq!(
        generate(LogFormat::Bgl, &options(0, 1), &mut sink).unwrap(),
        0
    );
}
