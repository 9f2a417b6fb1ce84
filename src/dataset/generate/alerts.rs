//! Thunderbird alert lines: the ten alert categories of the full log with their real mix, and
//! the process that places them — in bursts on one node, at a configurable overall rate.
//!
//! Category sizes are the raw alert-line counts of Oliner & Stearley (DSN 2007, Table 3) quoted
//! in datasets.md §2: VAPI is 99.4 % of alert lines. Messages are our own, after the typical
//! messages listed there.
//!
//! Burst model: outside a burst, each line starts one with probability `start`; the burst picks a
//! category (weighted by lines ÷ mean burst length, so the *line* mix matches the table), a host
//! of that category's class, and a length N. The burst's remaining N − 1 alert lines are spread
//! over the following lines, each line being the next alert with probability `interleave` (other
//! traffic keeps flowing). By renewal, the alert share of lines is
//! `E[N] / (1/start + (E[N] − 1)/interleave)`, which [`Alerts::new`] solves for `start`.

use super::catalog::PidMode::{Absent, Stable};
use super::catalog::Role::Alert;
use super::catalog::{Catalog, Spec, spec};
use super::hosts::HostClass::{self, Admin1, Compute};
use super::hosts::{HostId, Hosts};
use super::rng::{AliasTable, Prob, Rng};

pub struct Tag {
    pub name: &'static str,
    pub raw_lines: f64,
    /// Burst length range (inclusive), in alert lines.
    pub burst: (u32, u32),
    pub class: HostClass,
}

#[rustfmt::skip] // One spec per line reads as a table.
pub const TAGS: [Tag; 10] = [
    tag("VAPI", 3_229_194.0, (8, 40), Compute),
    tag("PBS_CON", 5_318.0, (1, 6), Compute),
    tag("MPT", 4_583.0, (1, 6), Admin1),
    tag("EXT_FS", 4_022.0, (1, 5), Admin1),
    tag("CPU", 2_741.0, (1, 4), Compute),
    tag("SCSI", 2_186.0, (1, 4), Admin1),
    tag("ECC", 146.0, (1, 3), Compute),
    tag("PBS_BFD", 28.0, (1, 2), Compute),
    tag("CHK_DSK", 13.0, (1, 2), Compute),
    tag("NMI", 8.0, (1, 2), Compute),
];

const fn tag(name: &'static str, raw_lines: f64, burst: (u32, u32), class: HostClass) -> Tag {
    Tag {
        name,
        raw_lines,
        burst,
        class,
    }
}

/// Alert messages; `Alert(tag index, weight within the tag)`. The class here is unused: the
/// burst's host decides.
#[rustfmt::skip] // One spec per line reads as a table.
pub const SPECS: &[Spec] = &[
    spec(Alert(0, 0.6), Compute, "kernel", Absent, "[KERNEL_IB][tsIbTavorAsyncEvent][/usr/src/topspin-3.2.0/ib/ts_api_ng/vapi/vapi_async.c:{int:150:190}] Fatal error (Local Catastrophic Error)", &[]),
    spec(Alert(0, 0.25), Compute, "kernel", Absent, "[KERNEL_IB][ib_mad_send][/usr/src/topspin-3.2.0/ib/ts_api_ng/mad/mad_send.c:{int:80:120}] EVAPI_post_gsi_sq failed: VAPI_EAGAIN (Local Catastrophic Error)", &[]),
    spec(Alert(0, 0.15), Compute, "kernel", Absent, "[KERNEL_IB][tsIbTavorCqPoll][/usr/src/topspin-3.2.0/ib/ts_api_ng/vapi/vapi_cq.c:{int:300:340}] completion with error: VAPI_RETRY_EXC_ERR, qp 0x{hex:6}", &[]),
    spec(Alert(1, 1.0), Compute, "pbs_mom", Stable, "Connection refused (111) in open_demux, open_demux: connect {ip}:{int:15000:15100}", &[]),
    spec(Alert(2, 0.6), Admin1, "kernel", Absent, "mptscsih: ioc0: attempting task abort! (sc=0000010{hex:9})", &[]),
    spec(Alert(2, 0.4), Admin1, "kernel", Absent, "mptscsih: ioc0: task abort: SUCCESS (sc=0000010{hex:9})", &[]),
    spec(Alert(3, 0.7), Admin1, "kernel", Absent, "EXT3-fs error (device {0}): ext3_journal_start_sb: Detected aborted journal", &[&["sda5", "sdb1", "md0"]]),
    spec(Alert(3, 0.3), Admin1, "kernel", Absent, "EXT3-fs error (device {0}) in start_transaction: Journal has aborted", &[&["sda5", "sdb1", "md0"]]),
    spec(Alert(4, 1.0), Compute, "kernel", Absent, "Losing some ticks... checking if CPU frequency changed.", &[]),
    spec(Alert(5, 1.0), Admin1, "kernel", Absent, "scsi0 (0:{int:0:1}): rejecting I/O to offline device", &[]),
    spec(Alert(6, 1.0), Compute, "Server Administrator", Absent, "Instrumentation Service EventID: 1404 Memory device status is critical Memory device location: DIMM{int:1:8}_{0} Possible memory module event cause: Multi bit ECC memory error", &[&["A", "B"]]),
    spec(Alert(7, 1.0), Compute, "pbs_mom", Stable, "Bad file descriptor (9) in tm_request, job {int:10000:99999}.tbird-admin1 not running", &[]),
    spec(Alert(8, 1.0), Compute, "check-disks", Stable, "[{self}] Fault Status assert on /dev/sda: disk I/O error, sector {int:1024:143000000}", &[]),
    spec(Alert(9, 0.5), Compute, "kernel", Absent, "Uhhuh. NMI received for unknown reason {hex:2} on CPU {int:0:3}.", &[]),
    spec(Alert(9, 0.5), Compute, "kernel", Absent, "Dazed and confused, but trying to continue", &[]),
];

/// One alert line to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AlertLine {
    pub tag: usize,
    pub host: HostId,
    pub template: u32,
}

struct Burst {
    tag: usize,
    host: HostId,
    remaining: u32,
}

pub struct Alerts {
    start: Prob,
    interleave: Prob,
    tags: AliasTable,
    /// Per tag: its template ids and a table over their weights.
    messages: Vec<(Vec<u32>, AliasTable)>,
    burst: Option<Burst>,
}

impl Alerts {
    /// `rate` is the wanted share of alert lines among all lines (0 disables alerts).
    pub fn new(rate: f64, catalog: &Catalog) -> Self {
        let mean_len = |tag: &Tag| f64::from(tag.burst.0 + tag.burst.1) / 2.0;
        let burst_weights: Vec<f64> = TAGS
            .iter()
            .map(|tag| tag.raw_lines / mean_len(tag))
            .collect();
        let weight_total: f64 = burst_weights.iter().sum();
        let expected_len: f64 = TAGS
            .iter()
            .zip(&burst_weights)
            .map(|(tag, weight)| weight / weight_total * mean_len(tag))
            .sum();
        // Interleaving caps the reachable rate near 0.75; above that, alert lines run back to back.
        let interleave = if rate <= 0.7 { 0.75 } else { 1.0 };
        let start = if rate <= 0.0 {
            0.0
        } else {
            let denominator = expected_len / rate - (expected_len - 1.0) / interleave;
            if denominator <= 1.0 {
                1.0
            } else {
                1.0 / denominator
            }
        };
        let messages = (0..TAGS.len())
            .map(|tag| {
                let (ids, weights): (Vec<u32>, Vec<f64>) = catalog
                    .alerts
                    .iter()
                    .filter(|&&(_, of_tag, _)| of_tag == tag)
                    .map(|&(id, _, weight)| (id, weight))
                    .unzip();
                let table = AliasTable::new(&weights);
                (ids, table)
            })
            .collect();
        Alerts {
            start: Prob::new(start),
            interleave: Prob::new(interleave),
            tags: AliasTable::new(&burst_weights),
            messages,
            burst: None,
        }
    }

    /// Whether the next line is an alert, and which.
    #[inline]
    pub fn next(&mut self, rng: &mut Rng, hosts: &Hosts) -> Option<AlertLine> {
        let (tag, host) = match &mut self.burst {
            Some(burst) => {
                if !rng.chance(self.interleave) {
                    return None;
                }
                burst.remaining -= 1;
                let picked = (burst.tag, burst.host);
                if burst.remaining == 0 {
                    self.burst = None;
                }
                picked
            }
            None => {
                if !rng.chance(self.start) {
                    return None;
                }
                let tag = self.tags.sample(rng);
                let host = hosts.pick(TAGS[tag].class, rng);
                let (low, high) = TAGS[tag].burst;
                let len = rng.range(u64::from(low), u64::from(high)) as u32;
                if len > 1 {
                    self.burst = Some(Burst {
                        tag,
                        host,
                        remaining: len - 1,
                    });
                }
                (tag, host)
            }
        };
        let (ids, table) = &self.messages[tag];
        Some(AlertLine {
            tag,
            host,
            template: ids[table.sample(rng)],
        })
    }
}
