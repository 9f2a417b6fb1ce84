//! A partition's data: the Tantivy index and the columnar store, fed by the partition's raft
//! state machine, and the checkpoint that makes both durable.
//!
//! Exactly-once across crashes: each durable part records the [`Watermark`] it covers. The shard
//! tells openraft it has applied up to the *lower* of the two, so openraft replays the log from
//! there, and each part skips records below its own watermark's `next_offset`.

pub mod columnar;
pub mod text;
pub mod vector;
pub mod watermark;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use openraft::{BasicNode, LogId, StoredMembership};
use parking_lot::Mutex;
use serde::Serialize;

use crate::cluster::types::{Appended, NodeId};
use crate::error::Result;
use crate::record::LogRecord;
use columnar::{ColumnarSnapshot, ColumnarStore};
use text::TextIndex;
pub use watermark::Watermark;

/// Counters a status page shows for one partition.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct ShardStats {
    pub partition: u32,
    /// Records applied (committed to the raft log and handed to the shard).
    pub records: u64,
    /// Next offset to be assigned; offsets run 0..next_offset.
    pub next_offset: u64,
    /// Records visible to text search.
    pub searchable: u64,
    /// Applied records not yet searchable (bounded by the checkpoint interval).
    pub index_lag: u64,
    pub hot_rows: u64,
    pub cold_rows: u64,
    pub applied_log_index: Option<u64>,
}

struct ShardState {
    current: Watermark,
    text_committed: Watermark,
    /// Records below these offsets are already in the durable part and are skipped on replay.
    text_skip_below: u64,
    columnar_skip_below: u64,
}

pub struct Shard {
    pub partition: u32,
    text: TextIndex,
    columnar: ColumnarStore,
    state: Mutex<ShardState>,
    /// Copies of the state's counts, written under its lock and read without it: a text
    /// commit holds the lock for its whole length, and readers of the counts (every query's
    /// freshness check, `/metrics`, telemetry) run on the async workers. Blocking them behind
    /// a commit stalled whole nodes under ingest (SV-3).
    counts: ShardCounts,
}

/// Lock-free mirror of a shard's counts; `applied_log_index` holds `u64::MAX` for none.
#[derive(Default)]
struct ShardCounts {
    records: AtomicU64,
    searchable: AtomicU64,
    applied_log_index: AtomicU64,
    /// Woken whenever the counts move, so a read waiting for this replica to catch up resumes
    /// when it does instead of on its next poll.
    moved: tokio::sync::Notify,
}

impl ShardCounts {
    fn publish(&self, state: &ShardState) {
        self.records
            .store(state.current.next_offset, Ordering::Release);
        self.searchable
            .store(state.text_committed.next_offset, Ordering::Release);
        let applied = state.current.applied.map_or(u64::MAX, |l| l.index);
        self.applied_log_index.store(applied, Ordering::Release);
        self.moved.notify_waiters();
    }
}

impl Shard {
    pub fn open(dir: &Path, partition: u32) -> Result<Arc<Self>> {
        let (text, text_mark) = TextIndex::open(&dir.join("text"))?;
        let (columnar, columnar_mark) = ColumnarStore::open(&dir.join("columnar"))?;
        let state = ShardState {
            text_skip_below: text_mark.next_offset,
            columnar_skip_below: columnar_mark.next_offset,
            current: Watermark::min(text_mark.clone(), columnar_mark),
            text_committed: text_mark,
        };
        let counts = ShardCounts::default();
        counts.publish(&state);
        Ok(Arc::new(Self {
            partition,
            text,
            columnar,
            state: Mutex::new(state),
            counts,
        }))
    }

    pub fn text(&self) -> &TextIndex {
        &self.text
    }

    pub fn columnar(&self) -> &ColumnarStore {
        &self.columnar
    }

    /// What openraft must be told has been applied.
    pub fn applied_state(&self) -> (Option<LogId<NodeId>>, StoredMembership<NodeId, BasicNode>) {
        let state = self.state.lock();
        (state.current.applied, state.current.membership.clone())
    }

    /// Applies one committed batch, assigning consecutive offsets.
    pub fn apply_records(&self, log_id: LogId<NodeId>, records: &[LogRecord]) -> Result<Appended> {
        let mut state = self.state.lock();
        let base = state.current.next_offset;
        let count = records.len() as u64;
        let end = base + count;
        if end > state.text_skip_below {
            let skip = state.text_skip_below.saturating_sub(base) as usize;
            self.text.add(base + skip as u64, &records[skip..])?;
        }
        state.current.applied = Some(log_id);
        state.current.next_offset = end;
        if end > state.columnar_skip_below {
            let skip = state.columnar_skip_below.saturating_sub(base) as usize;
            let batch =
                columnar::records_to_batch(self.partition, base + skip as u64, &records[skip..])?;
            self.columnar.append(batch, state.current.clone());
        }
        self.counts.publish(&state);
        Ok(Appended {
            base_offset: base,
            count,
        })
    }

    /// Applies an entry that carries no records (blank or membership).
    pub fn apply_marker(
        &self,
        log_id: LogId<NodeId>,
        membership: Option<StoredMembership<NodeId, BasicNode>>,
    ) {
        let mut state = self.state.lock();
        state.current.applied = Some(log_id);
        if let Some(m) = membership {
            state.current.membership = m;
        }
        self.counts.publish(&state);
    }

    /// Makes applied records searchable and durable in the text index, and moves the hot buffer
    /// to Parquet once it holds `flush_rows`. Called every checkpoint interval.
    pub fn checkpoint(&self, flush_rows: u64) -> Result<()> {
        self.commit_text(&mut self.state.lock())?;
        self.columnar.flush(flush_rows)?;
        Ok(())
    }

    /// Commits the text index now if it holds fewer than `target` records, for a read that
    /// must see what a leader shows. Only this partition's text index is committed: a commit
    /// of every partition per read, under a write load, kept the disk busy with commits and
    /// cost a follower's reads 55 ms at p50 (SV-3 during ingest). Reads that arrive together
    /// share one commit: whoever takes the lock second finds the target reached.
    pub fn make_searchable(&self, target: u64) -> Result<()> {
        let mut state = self.state.lock();
        if state.text_committed.next_offset < target {
            self.commit_text(&mut state)?;
        }
        Ok(())
    }

    /// The state lock is held through the commit so the payload names exactly the documents
    /// the commit contains.
    fn commit_text(&self, state: &mut ShardState) -> Result<()> {
        if state.current != state.text_committed {
            let mark = state.current.clone();
            let started = std::time::Instant::now();
            self.text.commit(&mark)?;
            state.text_committed = mark;
            self.counts.publish(state);
            metrics::histogram!("chronik_text_commit_seconds")
                .record(started.elapsed().as_secs_f64());
        }
        Ok(())
    }

    pub fn snapshot(&self) -> ColumnarSnapshot {
        self.columnar.snapshot()
    }

    /// Resolves the next time this shard's counts move (records applied or committed to the
    /// text index). Create it before reading the counts so a move in between is not missed.
    pub fn counts_moved(&self) -> tokio::sync::futures::Notified<'_> {
        self.counts.moved.notified()
    }

    /// Never waits for a commit in progress (see `Shard::counts`).
    pub fn stats(&self) -> ShardStats {
        let searchable = self.counts.searchable.load(Ordering::Acquire);
        let records = self.counts.records.load(Ordering::Acquire);
        let applied = self.counts.applied_log_index.load(Ordering::Acquire);
        ShardStats {
            partition: self.partition,
            records,
            next_offset: records,
            searchable,
            // While a restarted shard replays, the text index can be ahead of the replay.
            index_lag: records.saturating_sub(searchable),
            hot_rows: self.columnar.hot_rows(),
            cold_rows: self.columnar.cold_rows(),
            applied_log_index: (applied != u64::MAX).then_some(applied),
        }
    }
}
