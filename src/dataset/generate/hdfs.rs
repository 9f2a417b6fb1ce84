//! The HDFS line source: a simple model of HDFS_v1 DataNode/NameNode traffic.
//!
//! `yymmdd HHMMSS pid level component: content`, Date and Time in UTC (the parser reads them as
//! UTC, so generated lines round-trip to their epoch), about 80 lines per second (11.2 M lines
//! over 38.7 h), and the block-lifecycle messages in the proportions of datasets.md §7, written by
//! us. HDFS has no per-line labels, so `GenOptions::alert_rate` does not apply.

use super::LineSource;
use super::clock::{Clock, ClockModel};
use super::rng::{AliasTable, Rng};
use super::template::{LineContext, Part, compile, render};
use super::text::{push_padded, push_u64};
use crate::dataset::civil::CivilTime;

/// `(component, level, text, share)`.
type HdfsSpec = (&'static str, &'static str, &'static str, f64);

#[rustfmt::skip] // One spec per line reads as a table.
const MESSAGES: &[HdfsSpec] = &[
    ("dfs.FSNamesystem", "INFO", "BLOCK* NameSystem.addStoredBlock: blockMap updated: {dnip}:50010 is added to {blk} size {int:1024:67108864}", 0.157),
    ("dfs.DataNode$PacketResponder", "INFO", "PacketResponder {int:0:2} for block {blk} terminating", 0.155),
    ("dfs.DataNode$PacketResponder", "INFO", "Received block {blk} of size {int:1024:67108864} from /{dnip}", 0.146),
    ("dfs.DataNode$DataXceiver", "INFO", "Receiving block {blk} src: /{dnip}:{port} dest: /{dnip}:50010", 0.146),
    ("dfs.FSDataset", "INFO", "Deleting block {blk} file /mnt/hadoop/dfs/data/current/subdir{int:0:63}/{blk}", 0.1315),
    ("dfs.FSNamesystem", "INFO", "BLOCK* NameSystem.delete: {blk} is added to invalidSet of {dnip}:50010", 0.112),
    ("dfs.FSNamesystem", "INFO", "BLOCK* NameSystem.allocateBlock: /user/root/rand/_temporary/_task_200811092030_0001_m_00{int:1000:9999}_0/part-0{int:1000:9999}. {blk}", 0.05),
    ("dfs.DataNode$DataXceiver", "INFO", "{dnip}:50010 Served block {blk} to /{dnip}", 0.04),
    ("dfs.DataNode$DataXceiver", "WARN", "{dnip}:50010:Got exception while serving {blk} to /{dnip}:", 0.035),
    ("dfs.DataBlockScanner", "INFO", "Verification succeeded for {blk}", 0.01),
    ("dfs.DataNode", "INFO", "{dnip}:50010 Starting thread to transfer block {blk} to {dnip}:50010", 0.005),
    ("dfs.FSNamesystem", "INFO", "BLOCK* ask {dnip}:50010 to replicate {blk} to datanode(s) {dnip}:50010", 0.005),
    ("dfs.DataNode$DataXceiver", "INFO", "writeBlock {blk} received exception java.io.IOException: Could not read from stream", 0.004),
    ("dfs.DataNode$PacketResponder", "INFO", "PacketResponder {blk} {int:0:2} Exception java.io.IOException: Connection reset by peer", 0.002),
    ("dfs.DataNode", "WARN", "{dnip}:50010:Failed to transfer {blk} to {dnip}:50010 got java.net.SocketException: Connection reset", 0.002),
    ("dfs.FSNamesystem", "WARN", "BLOCK* NameSystem.addStoredBlock: Redundant addStoredBlock request received for {blk} on {dnip}:50010 size {int:1024:67108864}", 0.0015),
];

const CLOCK: ClockModel = ClockModel {
    same_second: 0.9875,
    extra_second: 0.0,
    max_gap: 1,
    burst_per_second: 0.0,
    burst_lines: (1, 1),
};

struct Message {
    component: &'static [u8],
    level: &'static [u8],
    parts: Vec<Part>,
}

pub struct HdfsSource {
    rng: Rng,
    clock: Clock,
    messages: Vec<Message>,
    table: AliasTable,
    second: Option<i64>,
    /// `"yymmdd HHMMSS"` of the current second.
    date_time: Vec<u8>,
}

impl HdfsSource {
    pub fn new(seed: u64, start_epoch: i64) -> Self {
        let messages = MESSAGES
            .iter()
            .map(|&(component, level, text, _)| Message {
                component: component.as_bytes(),
                level: level.as_bytes(),
                parts: compile(text, &[]),
            })
            .collect();
        let weights: Vec<f64> = MESSAGES.iter().map(|spec| spec.3).collect();
        HdfsSource {
            rng: Rng::new(seed),
            clock: Clock::new(start_epoch, CLOCK),
            messages,
            table: AliasTable::new(&weights),
            second: None,
            date_time: Vec::with_capacity(16),
        }
    }

    fn set_second(&mut self, epoch: i64) {
        if self.second == Some(epoch) {
            return;
        }
        self.second = Some(epoch);
        let utc = CivilTime::from_epoch(epoch, 0);
        let text = &mut self.date_time;
        text.clear();
        for value in [utc.year.rem_euclid(100) as u32, utc.month, utc.day] {
            push_padded(text, u64::from(value), 2);
        }
        text.push(b' ');
        for value in [utc.hour, utc.minute, utc.second] {
            push_padded(text, u64::from(value), 2);
        }
    }
}

impl LineSource for HdfsSource {
    fn write_line(&mut self, buf: &mut Vec<u8>) {
        let epoch = self.clock.tick(&mut self.rng).epoch;
        self.set_second(epoch);
        let message = &self.messages[self.table.sample(&mut self.rng)];
        buf.extend_from_slice(&self.date_time);
        buf.push(b' ');
        // Thread ids: small numbers, most below a few thousand.
        push_u64(buf, self.rng.range(1, 32) * self.rng.range(1, 160));
        buf.push(b' ');
        buf.extend_from_slice(message.level);
        buf.push(b' ');
        buf.extend_from_slice(message.component);
        buf.extend_from_slice(b": ");
        let context = LineContext {
            epoch,
            host_name: b"",
            host_key: 0,
        };
        render(&message.parts, buf, &mut self.rng, &context);
    }
}
