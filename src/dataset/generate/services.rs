//! The three topics of chronik's "37-query scale test" (SV-1): `app-logs`, `support-tickets`
//! and `system-events`, generated seeded and deterministic as JSON lines that the loader reads
//! with `--format jsonl`.
//!
//! Each record takes a template of its topic (`services_templates`) and fills its slots with
//! values drawn from the seed. The first records of a topic go through every template once, in
//! a shuffled order, so any run of at least as many records as templates holds each of them:
//! the test's queries then have hits at every scale, down to the CI one.

use std::fmt::{self, Write as _};
use std::io::{self, Write};
use std::str::FromStr;

use super::rng::Rng;
use super::services_slots as slots;
use super::services_templates::{self as vocab, Template};
use crate::record::LogRecord;

/// First timestamp of every topic: 2026-01-01 00:00:00 UTC.
const START_EPOCH: i64 = 1_767_225_600;

/// One topic of the dataset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ServiceTopic {
    AppLogs,
    SupportTickets,
    SystemEvents,
}

impl ServiceTopic {
    pub const ALL: [ServiceTopic; 3] = [
        ServiceTopic::AppLogs,
        ServiceTopic::SupportTickets,
        ServiceTopic::SystemEvents,
    ];

    /// The topic name, as chronik's test named it.
    pub fn name(self) -> &'static str {
        match self {
            ServiceTopic::AppLogs => "app-logs",
            ServiceTopic::SupportTickets => "support-tickets",
            ServiceTopic::SystemEvents => "system-events",
        }
    }

    pub fn templates(self) -> &'static [Template] {
        match self {
            ServiceTopic::AppLogs => &vocab::APP_LOGS,
            ServiceTopic::SupportTickets => &vocab::SUPPORT_TICKETS,
            ServiceTopic::SystemEvents => &vocab::SYSTEM_EVENTS,
        }
    }

    /// Mixed into the seed so that the three topics of one seed differ.
    fn salt(self) -> u64 {
        match self {
            ServiceTopic::AppLogs => 0x61_70_70,
            ServiceTopic::SupportTickets => 0x73_75_70,
            ServiceTopic::SystemEvents => 0x73_79_73,
        }
    }
}

impl fmt::Display for ServiceTopic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for ServiceTopic {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ServiceTopic::ALL
            .into_iter()
            .find(|topic| topic.name().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| {
                format!(
                    "unknown services topic `{s}`: expected one of app-logs, support-tickets, system-events"
                )
            })
    }
}

/// Yields the records of one topic, in order.
pub struct ServicesSource {
    topic: ServiceTopic,
    rng: Rng,
    /// Templates still to show once each before picks become uniform.
    first_round: Vec<usize>,
    clock: i64,
    text: String,
}

impl ServicesSource {
    pub fn new(topic: ServiceTopic, seed: u64) -> Self {
        let mut rng = Rng::new(super::rng::mix64(seed ^ topic.salt()));
        let mut first_round: Vec<usize> = (0..topic.templates().len()).collect();
        // Fisher-Yates; popped from the end.
        for i in (1..first_round.len()).rev() {
            let j = rng.below(i as u64 + 1) as usize;
            first_round.swap(i, j);
        }
        ServicesSource {
            topic,
            rng,
            first_round,
            clock: START_EPOCH,
            text: String::with_capacity(256),
        }
    }

    pub fn next_record(&mut self) -> LogRecord {
        let templates = self.topic.templates();
        let index = match self.first_round.pop() {
            Some(index) => index,
            None => self.rng.below(templates.len() as u64) as usize,
        };
        let template = templates[index];
        // A few events a second on average, bursts included (several in the same second).
        self.clock += self.rng.below(4) as i64;
        self.text.clear();
        render(template.text, &mut self.rng, &mut self.text);
        let rng = &mut self.rng;
        let (host, location, component, pid) = match self.topic {
            ServiceTopic::AppLogs => {
                let service = rng.below(slots::SERVICES.len() as u64);
                let instance = rng.below(4);
                let name = slots::SERVICES[service as usize];
                let host = format!("{name}-{instance}");
                let location = pick(rng, &slots::ZONES).to_string();
                // One stable process id per host, so the same host always shows the same pid.
                let pid = 1000 + (super::rng::mix64(service * 4 + instance) % 30_000) as i64;
                (host, location, name.to_string(), Some(pid))
            }
            ServiceTopic::SupportTickets => (
                format!("helpdesk-{}", pick(rng, &slots::REGIONS)),
                pick(rng, &slots::CHANNELS).to_string(),
                template.component.to_string(),
                None,
            ),
            ServiceTopic::SystemEvents => (
                format!("ops-node-{:02}", rng.below(16)),
                pick(rng, &slots::REGIONS).to_string(),
                template.component.to_string(),
                None,
            ),
        };
        LogRecord {
            timestamp: self.clock,
            label: "-".into(),
            host,
            location,
            component,
            pid,
            level: Some(template.level.to_string()),
            message: self.text.clone(),
        }
    }
}

/// Writes `lines` records of `topic` as JSON lines to `out`; returns how many were written.
pub fn generate_services(
    topic: ServiceTopic,
    lines: u64,
    seed: u64,
    out: &mut impl Write,
) -> io::Result<u64> {
    let mut source = ServicesSource::new(topic, seed);
    let mut buf = Vec::with_capacity(1 << 16);
    for _ in 0..lines {
        serde_json::to_writer(&mut buf, &source.next_record()).map_err(io::Error::other)?;
        buf.push(b'\n');
        if buf.len() >= 1 << 16 {
            out.write_all(&buf)?;
            buf.clear();
        }
    }
    out.write_all(&buf)?;
    out.flush()?;
    Ok(lines)
}

fn pick<'a>(rng: &mut Rng, values: &[&'a str]) -> &'a str {
    values[rng.below(values.len() as u64) as usize]
}

/// Appends `text` with every `{slot}` replaced by a value drawn for it.
fn render(text: &str, rng: &mut Rng, out: &mut String) {
    let mut rest = text;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let close = after.find('}').expect("templates close every slot");
        let filled = fill(&after[..close], rng, out);
        debug_assert!(filled, "unknown slot {{{}}}", &after[..close]);
        rest = &after[close + 1..];
    }
    out.push_str(rest);
}

/// Appends a value for `slot`; false when the slot is unknown (a template bug, caught by the
/// tests).
fn fill(slot: &str, rng: &mut Rng, out: &mut String) -> bool {
    let value: &str = match slot {
        "svc" => pick(rng, &slots::SERVICES),
        "resource" => pick(rng, &slots::RESOURCES),
        "rpc" => pick(rng, &slots::RPCS),
        "db" => pick(rng, &slots::DATABASES),
        "table" => pick(rng, &slots::TABLES),
        "domain" => pick(rng, &slots::DOMAINS),
        "ns" => pick(rng, &slots::NAMESPACES),
        "zone" => pick(rng, &slots::ZONES),
        "region" => pick(rng, &slots::REGIONS),
        "event" => pick(rng, &slots::EVENTS),
        "ktopic" => pick(rng, &slots::KAFKA_TOPICS),
        "auth" => pick(rng, &slots::AUTH_METHODS),
        "flag" => pick(rng, &slots::FLAGS),
        "code" => pick(rng, &slots::ERROR_CODES),
        "job" => pick(rng, &slots::JOBS),
        "cust" => pick(rng, &slots::CUSTOMERS),
        "plan" => pick(rng, &slots::PLANS),
        "month" => pick(rng, &slots::MONTHS),
        "team" => pick(rng, &slots::TEAMS),
        "image" => pick(rng, &slots::IMAGES),
        "bucket" => pick(rng, &slots::BUCKETS),
        "cluster" => pick(rng, &slots::CLUSTERS),
        "k8sver" => pick(rng, &slots::K8S_VERSIONS),
        "control" => pick(rng, &slots::CONTROLS),
        "policy" => pick(rng, &slots::POLICIES),
        "iosver" => pick(rng, &slots::IOS_VERSIONS),
        _ => return fill_number(slot, rng, out),
    };
    out.push_str(value);
    true
}

/// The slots whose values are numbers or identifiers built from numbers.
fn fill_number(slot: &str, rng: &mut Rng, out: &mut String) -> bool {
    // Writing to a String cannot fail.
    let _ = match slot {
        "id" | "order" => write!(out, "{}", 100_000 + rng.below(900_000)),
        "ms" => write!(out, "{}", 2 + rng.below(4000)),
        "n" => write!(out, "{}", 10 + rng.below(990)),
        "small" => write!(out, "{}", 2 + rng.below(9)),
        "pct" => write!(out, "{}", 50 + rng.below(50)),
        "mem" => write!(out, "{}", 128 * (1 + rng.below(32))),
        "days" => write!(out, "{}", 1 + rng.below(29)),
        "score" => write!(out, "{}", 1 + rng.below(5)),
        "hour" => write!(out, "{:02}", rng.below(24)),
        "user" => write!(out, "u{}", 10_000 + rng.below(90_000)),
        "reqid" => write!(out, "{:016x}", rng.next_u64()),
        "key" => write!(out, "ak_{:08x}", rng.next_u64() as u32),
        "ip" => write!(
            out,
            "10.{}.{}.{}",
            rng.below(8),
            rng.below(256),
            1 + rng.below(254)
        ),
        "ver" => write!(
            out,
            "{}.{}.{}",
            1 + rng.below(4),
            rng.below(20),
            rng.below(10)
        ),
        "pod" => write!(
            out,
            "{}-{:x}-{:05x}",
            pick(rng, &slots::SERVICES),
            0x5000_0000 + rng.below(0x1000_0000),
            rng.below(0x10_0000)
        ),
        "ticket" => write!(out, "#{}", 40_000 + rng.below(60_000)),
        "invoice" => write!(out, "INV-2026-{:05}", rng.below(100_000)),
        "amount" => write!(out, "{}.{:02}", 20 + rng.below(20_000), rng.below(100)),
        "date" => write!(out, "2026-0{}-{:02}", 1 + rng.below(6), 1 + rng.below(28)),
        "acct" => write!(out, "{:012}", rng.below(1_000_000_000_000)),
        "cve" => write!(
            out,
            "CVE-202{}-{}",
            3 + rng.below(3),
            1000 + rng.below(50_000)
        ),
        "cvss" => write!(out, "{}.{}", 7 + rng.below(3), rng.below(10)),
        "snap" => write!(out, "snap-{:012x}", rng.next_u64() >> 16),
        "node" => write!(out, "ip-10-0-{}-{}", rng.below(64), 1 + rng.below(254)),
        "asg" => write!(out, "asg-workers-{}", rng.below(6)),
        "rule" => write!(out, "fw-{}", 100 + rng.below(900)),
        _ => return false,
    };
    true
}

#[cfg(test)]
pub(super) fn slots_of(text: &str) -> Vec<&str> {
    text.split('{')
        .skip(1)
        .map(|part| part.split('}').next().unwrap_or(part))
        .collect()
}

#[cfg(test)]
pub(super) fn slot_is_known(slot: &str) -> bool {
    fill(slot, &mut Rng::new(1), &mut String::new())
}
