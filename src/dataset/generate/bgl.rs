//! The BGL line source: a simpler model than Thunderbird's, enough for a realistic mix.
//!
//! `label epoch yyyy.mm.dd node yyyy-mm-dd-HH.MM.SS.ffffff node type component level content`,
//! with Date and Time in US Pacific local time (daylight saving applied, as in the sample), the
//! node repeated, and microseconds increasing within a second. Messages follow the measured mix
//! of datasets.md §6 (`generating core.<n>` ≈ 36 % of lines; the weights below are relative), written
//! by us. Alert lines (rate from
//! `GenOptions::alert_rate`; the real BGL rate is 7.3 %) are FATAL with the category tag as label,
//! drawn independently per line; categories are weighted by their DSN'07 counts.

use super::LineSource;
use super::clock::{Clock, ClockModel};
use super::rng::{AliasTable, Prob, Rng};
use super::template::{LineContext, Part, compile, render};
use super::text::{push_i64, push_padded, push_u64};
use crate::dataset::civil::{CivilTime, pacific_offset_secs};

/// How the Node column looks for a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum NodeKind {
    /// A compute chip `R23-M1-NB-C:J05-U01`.
    Compute,
    /// An I/O chip `R23-M1-NB-I:J18-U11`.
    Io,
    /// A node card `R37-M1-N4`.
    Card,
    /// `NULL`.
    Null,
    /// `UNKNOWN_LOCATION`.
    Unknown,
}

use NodeKind::{Card, Compute, Io, Null, Unknown};

/// `(label, type, component, level, node kind, text, weight)`; label `-` for ordinary messages,
/// weight = share of ordinary lines, or the category's alert count for alerts.
type BglSpec = (
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    NodeKind,
    &'static str,
    f64,
);

#[rustfmt::skip] // One spec per line reads as a table.
const MESSAGES: &[BglSpec] = &[
    ("-", "RAS", "KERNEL", "INFO", Compute, "generating core.{int:1:4095}", 0.27),
    ("-", "RAS", "KERNEL", "INFO", Compute, "iar 0x{hex:8} dear 0x{hex:8}", 0.10),
    ("-", "RAS", "KERNEL", "INFO", Compute, "{int:1:9000} floating point alignment exceptions", 0.06),
    ("-", "RAS", "KERNEL", "INFO", Compute, "{int:1:9000} double-hummer alignment exceptions", 0.055),
    ("-", "RAS", "KERNEL", "INFO", Compute, "CE sym {int:0:40}, at 0x{hex:8}, mask 0x{hex:2}", 0.046),
    ("-", "RAS", "KERNEL", "INFO", Compute, "{int:1000:99999} total interrupts. 0 critical input interrupts. {int:0:99} microseconds total spent on critical input interrupts.", 0.035),
    ("-", "RAS", "KERNEL", "INFO", Compute, "{int:100:9999} microseconds spent in the rbs signal handler during {int:1:999} calls. {int:1:99} microseconds was the maximum time for a single instance of a correctable condition.", 0.025),
    ("-", "RAS", "KERNEL", "INFO", Compute, "instruction cache parity error corrected", 0.021),
    ("-", "RAS", "MMCS", "ERROR", Null, "idoproxydb hit ASSERT condition: ASSERT expression=0 Source file=idotransportmgr.cpp Source line={int:1000:1100} Function=int IdoTransportMgr::SendPacket(IdoUdpMgr*, BglCtlPavTrace*)", 0.0175),
    ("-", "RAS", "APP", "INFO", Io, "ciod: generated {int:1:128} core files for program /g/g{int:10:99}/run/a.out", 0.015),
    ("-", "RAS", "APP", "FATAL", Io, "ciod: Error loading /g/g{int:10:99}/app{int:1:40}: invalid or missing program image, No such file or directory", 0.0105),
    ("-", "RAS", "KERNEL", "FATAL", Compute, "instruction address: 0x{hex:8}", 0.010),
    ("-", "RAS", "APP", "FATAL", Io, "ciod: LOGIN chdir(/p/gb{int:1:2}/run{int:1:999}) failed: No such file or directory", 0.009),
    ("-", "RAS", "KERNEL", "INFO", Compute, "{int:1:9} ddr errors(s) detected and corrected on rank 0, symbol {int:0:30}, bit {int:0:7}", 0.009),
    ("-", "RAS", "APP", "INFO", Io, "ciod: Received signal {int:1:31}, code={int:0:3}, errno={int:0:9}, address=0x{hex:8}", 0.008),
    ("-", "RAS", "KERNEL", "FATAL", Compute, "data address: 0x{hex:8}", 0.004),
    ("-", "RAS", "KERNEL", "FATAL", Compute, "core configuration register: 0x{hex:8}", 0.0035),
    ("-", "RAS", "KERNEL", "INFO", Compute, "MACHINE CHECK DCR read timeout (mc=e{int:0:9}00 iar 0x{hex:8} lr 0x{hex:8})", 0.0035),
    ("-", "NULL", "DISCOVERY", "WARNING", Card, "Node card is not fully functional", 0.003),
    ("-", "NULL", "DISCOVERY", "SEVERE", Card, "Can not get assembly information for node card", 0.003),
    ("-", "RAS", "KERNEL", "INFO", Compute, "data cache search parity error detected. attempting to correct", 0.003),
    ("-", "NULL", "DISCOVERY", "INFO", Card, "Node card VPD check: U{int:10:11} node in processor card slot J{int:10:18} do not match. VPD ecid {hex:16}, found {hex:16}", 0.0045),
    ("-", "NULL", "DISCOVERY", "ERROR", Card, "Node card status: no ALERTs are active. Clock Mode is Low. Clock Select is Midplane. Phy JTAG Reset is asserted. ASIC JTAG Reset is not asserted.", 0.0025),
    ("-", "NULL", "DISCOVERY", "INFO", Unknown, "ido packet timeout", 0.004),
    ("-", "NULL", "HARDWARE", "WARNING", Card, "PrepareForService is being done on this part, service action {int:100:999}", 0.0015),
    ("-", "RAS", "KERNEL", "FATAL", Compute, "machine check interrupt (bit=0x{hex:2}): L2 dcache unit data parity error", 0.002),
];

#[rustfmt::skip] // One spec per line reads as a table.
const ALERTS: &[BglSpec] = &[
    ("KERNDTLB", "RAS", "KERNEL", "FATAL", Compute, "data TLB error interrupt", 152_734.0),
    ("KERNSTOR", "RAS", "KERNEL", "FATAL", Compute, "data storage interrupt", 63_491.0),
    ("APPSEV", "RAS", "APP", "FATAL", Io, "ciod: Error reading message prefix after LOAD_MESSAGE on CioStream socket to {ioip}:{port}: Link has been severed", 49_651.0),
    ("KERNMNTF", "RAS", "KERNEL", "FATAL", Io, "Lustre mount FAILED : bglio{int:1:64} : point /p/gb{int:1:2}", 31_531.0),
    ("KERNTERM", "RAS", "KERNEL", "FATAL", Compute, "rts: kernel terminated for reason {int:1001:1004}", 23_338.0),
    ("KERNREC", "RAS", "KERNEL", "FATAL", Io, "Error receiving packet on tree network, expecting type 57 instead of type {int:1:99}", 9_000.0),
    ("APPREAD", "RAS", "APP", "FATAL", Io, "ciod: failed to read message prefix on control stream (CioStream socket to {ioip}:{port}", 6_000.0),
    ("KERNRTSP", "RAS", "KERNEL", "FATAL", Compute, "rts panic! - stopping execution", 4_000.0),
    ("APPTO", "RAS", "APP", "FATAL", Io, "ciod: Error creating node map from file /p/gb{int:1:2}/map{int:1:99}.txt: Connection timed out", 4_000.0),
];

struct Message {
    label: &'static [u8],
    event_type: &'static [u8],
    component: &'static [u8],
    level: &'static [u8],
    node: NodeKind,
    parts: Vec<Part>,
}

fn compile_all(specs: &[BglSpec]) -> (Vec<Message>, AliasTable) {
    let messages = specs
        .iter()
        .map(
            |&(label, event_type, component, level, node, text, _)| Message {
                label: label.as_bytes(),
                event_type: event_type.as_bytes(),
                component: component.as_bytes(),
                level: level.as_bytes(),
                node,
                parts: compile(text, &[]),
            },
        )
        .collect();
    let weights: Vec<f64> = specs.iter().map(|spec| spec.6).collect();
    (messages, AliasTable::new(&weights))
}

/// Sparse logging: ~0.25 lines/s on average (4.7 M lines over 215 days), many repeats per second.
const CLOCK: ClockModel = ClockModel {
    same_second: 0.45,
    extra_second: 0.8,
    max_gap: 120,
    burst_per_second: 0.0,
    burst_lines: (1, 1),
};

pub struct BglSource {
    rng: Rng,
    clock: Clock,
    alert: Prob,
    messages: (Vec<Message>, AliasTable),
    alerts: (Vec<Message>, AliasTable),
    /// `"<epoch> <yyyy.mm.dd>"` and `"yyyy-mm-dd-HH.MM.SS."` of the current second.
    second: Option<i64>,
    epoch_and_date: Vec<u8>,
    time_prefix: Vec<u8>,
    micros: u64,
    node: Vec<u8>,
}

impl BglSource {
    pub fn new(seed: u64, alert_rate: f64, start_epoch: i64) -> Self {
        BglSource {
            rng: Rng::new(seed),
            clock: Clock::new(start_epoch, CLOCK),
            alert: Prob::new(alert_rate),
            messages: compile_all(MESSAGES),
            alerts: compile_all(ALERTS),
            second: None,
            epoch_and_date: Vec::with_capacity(32),
            time_prefix: Vec::with_capacity(32),
            micros: 0,
            node: Vec::with_capacity(32),
        }
    }

    fn set_second(&mut self, epoch: i64) {
        if self.second == Some(epoch) {
            // Later lines of the same second get later microseconds.
            self.micros = (self.micros + self.rng.range(1, 20_000)).min(999_999);
            return;
        }
        self.second = Some(epoch);
        self.micros = self.rng.below(500_000);
        let local = CivilTime::from_epoch(epoch, pacific_offset_secs(epoch));
        let (year, month, day) = (
            local.year.unsigned_abs(),
            u64::from(local.month),
            u64::from(local.day),
        );
        let head = &mut self.epoch_and_date;
        head.clear();
        push_i64(head, epoch);
        head.push(b' ');
        for (index, (value, width)) in [(year, 4), (month, 2), (day, 2)].into_iter().enumerate() {
            if index > 0 {
                head.push(b'.');
            }
            push_padded(head, value, width);
        }
        let time = &mut self.time_prefix;
        time.clear();
        for (value, width, separator) in [
            (year, 4, b'-'),
            (month, 2, b'-'),
            (day, 2, b'-'),
            (u64::from(local.hour), 2, b'.'),
            (u64::from(local.minute), 2, b'.'),
            (u64::from(local.second), 2, b'.'),
        ] {
            push_padded(time, value, width);
            time.push(separator);
        }
    }

    fn render_node(&mut self, kind: NodeKind) {
        let node = &mut self.node;
        let rng = &mut self.rng;
        node.clear();
        match kind {
            Null => node.extend_from_slice(b"NULL"),
            Unknown => node.extend_from_slice(b"UNKNOWN_LOCATION"),
            Compute | Io | Card => {
                // R<row 0-7><column 0-7>-M<0|1>-N<0-F>
                node.push(b'R');
                push_u64(node, rng.below(8));
                push_u64(node, rng.below(8));
                node.extend_from_slice(b"-M");
                push_u64(node, rng.below(2));
                node.extend_from_slice(b"-N");
                node.push(b"0123456789ABCDEF"[rng.below(16) as usize]);
                if kind != Card {
                    node.extend_from_slice(if kind == Io { b"-I:J" } else { b"-C:J" });
                    push_padded(node, rng.range(2, 18), 2);
                    node.extend_from_slice(if rng.below(2) == 0 { b"-U01" } else { b"-U11" });
                }
            }
        }
    }
}

impl LineSource for BglSource {
    fn write_line(&mut self, buf: &mut Vec<u8>) {
        let epoch = self.clock.tick(&mut self.rng).epoch;
        self.set_second(epoch);
        let is_alert = self.rng.chance(self.alert);
        let (messages, table) = if is_alert {
            &self.alerts
        } else {
            &self.messages
        };
        let index = table.sample(&mut self.rng);
        let kind = messages[index].node;
        self.render_node(kind);
        let (messages, _) = if is_alert {
            &self.alerts
        } else {
            &self.messages
        };
        let message = &messages[index];
        buf.extend_from_slice(message.label);
        buf.push(b' ');
        buf.extend_from_slice(&self.epoch_and_date);
        buf.push(b' ');
        buf.extend_from_slice(&self.node);
        buf.push(b' ');
        buf.extend_from_slice(&self.time_prefix);
        push_padded(buf, self.micros, 6);
        buf.push(b' ');
        buf.extend_from_slice(&self.node);
        for field in [message.event_type, message.component, message.level] {
            buf.push(b' ');
            buf.extend_from_slice(field);
        }
        buf.push(b' ');
        let context = LineContext {
            epoch,
            host_name: &self.node,
            host_key: 0,
        };
        render(&message.parts, buf, &mut self.rng, &context);
    }
}
