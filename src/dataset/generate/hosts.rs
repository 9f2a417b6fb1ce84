//! The Thunderbird host model (datasets.md §9, §10.4): which machines log, in which proportions,
//! and how each kind writes its `Location`.
//!
//! - `tbird-admin1`, the management node that also collects syslog (`local@tbird-admin1`); most
//!   gmetad, xinetd and kernel traffic.
//! - `tbird-sm1`, the InfiniBand subnet manager (`src@tbird-sm1`); only `ib_sm.x`.
//! - service nodes `aadmin1`…`eadmin4` (`src@<host>`): dhcpd, tftp, sendmail, cron; the `a` row is
//!   the busiest, as in the sample.
//! - masked hosts `#8#` and `#32#` (`#8#/#8#`): anonymised names that appear in the real log.
//! - 5,500 compute nodes `{an,bn,cn,dn,en}1..1100` (`cn142/cn142`), no zero padding, each logging
//!   rarely and mostly `ntpd`; the `cn` and `bn` rows dominate, cron runs on `dn`/`en`.
//!
//! All names are rendered once into one arena, so writing a host is a single slice copy.

use super::rng::{AliasTable, Rng};
use super::template::NODES_PER_PREFIX;

/// Which group of hosts a template's lines come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostClass {
    Admin1,
    Sm1,
    Service,
    Masked,
    Compute,
    /// Hosts that run the hourly cron jobs: mostly `dn`/`en` nodes, some service nodes.
    Cron,
    /// Hosts whose reboots print kernel boot messages: mostly `tbird-admin1`.
    Boot,
}

/// A host, as an index into [`Hosts`].
pub type HostId = u32;

const ADMIN1: HostId = 0;
const SM1: HostId = 1;
const FIRST_SERVICE: HostId = 2;
const SERVICE_COUNT: u32 = 20;
const FIRST_MASKED: HostId = FIRST_SERVICE + SERVICE_COUNT;
const MASKED: [&str; 2] = ["#8#", "#32#"];
const FIRST_COMPUTE: HostId = FIRST_MASKED + MASKED.len() as u32;
const PREFIXES: [&str; 5] = ["an", "bn", "cn", "dn", "en"];
/// Relative activity of the compute rows (ntpd lines in the 2k sample: cn 320, bn 161, dn 84).
const COMPUTE_ROW_WEIGHTS: [f64; 5] = [0.04, 0.28, 0.52, 0.13, 0.03];

#[derive(Debug, Clone, Copy)]
struct Span {
    start: u32,
    len: u32,
}

pub struct Hosts {
    arena: Vec<u8>,
    names: Vec<Span>,
    locations: Vec<Span>,
    service: AliasTable,
    compute_rows: AliasTable,
}

impl Hosts {
    pub fn new() -> Self {
        let mut hosts = Hosts {
            arena: Vec::new(),
            names: Vec::new(),
            locations: Vec::new(),
            service: AliasTable::new(&service_weights()),
            compute_rows: AliasTable::new(&COMPUTE_ROW_WEIGHTS),
        };
        hosts.add("tbird-admin1", "local@tbird-admin1");
        hosts.add("tbird-sm1", "src@tbird-sm1");
        for row in ["a", "b", "c", "d", "e"] {
            for number in 1..=4 {
                let name = format!("{row}admin{number}");
                hosts.add(&name, &format!("src@{name}"));
            }
        }
        for name in MASKED {
            hosts.add(name, &format!("{name}/{name}"));
        }
        for prefix in PREFIXES {
            for number in 1..=NODES_PER_PREFIX {
                let name = format!("{prefix}{number}");
                hosts.add(&name, &format!("{name}/{name}"));
            }
        }
        debug_assert_eq!(
            hosts.names.len() as u32,
            FIRST_COMPUTE + 5 * NODES_PER_PREFIX as u32
        );
        hosts
    }

    fn add(&mut self, name: &str, location: &str) {
        for (text, list) in [(name, &mut self.names), (location, &mut self.locations)] {
            list.push(Span {
                start: self.arena.len() as u32,
                len: text.len() as u32,
            });
            self.arena.extend_from_slice(text.as_bytes());
        }
    }

    fn slice(&self, span: Span) -> &[u8] {
        &self.arena[span.start as usize..(span.start + span.len) as usize]
    }

    pub fn name(&self, host: HostId) -> &[u8] {
        self.slice(self.names[host as usize])
    }

    pub fn location(&self, host: HostId) -> &[u8] {
        self.slice(self.locations[host as usize])
    }

    fn compute(row: usize, number: u64) -> HostId {
        FIRST_COMPUTE + (row as u64 * NODES_PER_PREFIX + number - 1) as u32
    }

    /// A host of `class`, drawn with that class's proportions.
    #[inline]
    pub fn pick(&self, class: HostClass, rng: &mut Rng) -> HostId {
        match class {
            HostClass::Admin1 => ADMIN1,
            HostClass::Sm1 => SM1,
            HostClass::Service => FIRST_SERVICE + self.service.sample(rng) as u32,
            HostClass::Masked => FIRST_MASKED + u32::from(rng.below(5) == 0),
            HostClass::Compute => Self::compute(
                self.compute_rows.sample(rng),
                rng.range(1, NODES_PER_PREFIX),
            ),
            HostClass::Cron => match rng.below(20) {
                0..=9 => Self::compute(3, rng.range(1, NODES_PER_PREFIX)),
                10..=11 => Self::compute(4, rng.range(1, NODES_PER_PREFIX)),
                12 => FIRST_MASKED,
                _ => self.pick(HostClass::Service, rng),
            },
            HostClass::Boot => match rng.below(10) {
                0..=6 => ADMIN1,
                _ => self.pick(HostClass::Service, rng),
            },
        }
    }
}

/// Weights of `aadmin1..4, badmin1..4, …, eadmin1..4`: the first of each row and the whole `a`
/// row (DHCP/tftp servers) do most of the talking.
fn service_weights() -> Vec<f64> {
    let mut weights = Vec::with_capacity(SERVICE_COUNT as usize);
    for row in 0..5 {
        for number in 0..4 {
            weights.push(match (row, number) {
                (0, 0) => 6.0,
                (0, _) => 3.0,
                (4, 1) => 1.0,
                (_, 0) => 2.0,
                _ => 0.1,
            });
        }
    }
    weights
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(bytes: &[u8]) -> &str {
        std::str::from_utf8(bytes).unwrap()
    }

    #[test]
    fn names_and_locations_by_class() {
        let hosts = Hosts::new();
        let mut rng = Rng::new(5);
        assert_eq!(
            text(hosts.name(hosts.pick(HostClass::Admin1, &mut rng))),
            "tbird-admin1"
        );
        assert_eq!(text(hosts.location(ADMIN1)), "local@tbird-admin1");
        assert_eq!(text(hosts.location(SM1)), "src@tbird-sm1");
        for _ in 0..2000 {
            let service = hosts.pick(HostClass::Service, &mut rng);
            let name = text(hosts.name(service));
            assert!(name.len() == 7 && name.contains("admin"), "{name}");
            assert_eq!(text(hosts.location(service)), format!("src@{name}"));

            let compute = hosts.pick(HostClass::Compute, &mut rng);
            let name = text(hosts.name(compute));
            let number: u64 = name[2..].parse().unwrap();
            assert!(
                PREFIXES.contains(&&name[..2]) && (1..=1100).contains(&number),
                "{name}"
            );
            assert!(!name[2..].starts_with('0'));
            assert_eq!(text(hosts.location(compute)), format!("{name}/{name}"));
        }
        assert_eq!(text(hosts.name(FIRST_MASKED)), "#8#");
        assert_eq!(text(hosts.location(FIRST_MASKED)), "#8#/#8#");
        assert_eq!(text(hosts.name(FIRST_COMPUTE)), "an1");
        assert_eq!(text(hosts.name(FIRST_COMPUTE + 5 * 1100 - 1)), "en1100");
    }
}
