//! The background indexer of one partition: reads committed records from the columnar store
//! past the last embedded offset, embeds them in batches, and appends the vectors.
//!
//! Exactly once per offset: the next offset to embed is the length of the durable vector log,
//! so a restart resumes where the log ends and never asks the provider twice for a record.
//! Back-pressure is built in: the indexer pulls the next batch only after the previous one is
//! stored, so a slow provider makes the lag grow (visible in `/metrics` and
//! `/_vector/{topic}/stats`) instead of a queue.

use std::collections::HashMap;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tokio::runtime::Handle;
use tokio::sync::watch;

use crate::embed::Embedder;
use crate::shard::Shard;
use crate::shard::vector::VectorIndex;
use crate::shard::vector::log::{VectorEntry, text_hash};

#[derive(Debug, Clone)]
pub struct IndexerSettings {
    /// Column embedded (`message` unless configured otherwise).
    pub field: String,
    pub batch_size: usize,
    /// Wait between looks for new records when caught up.
    pub idle_poll: Duration,
    /// Dump the graph after this many new vectors (also when idle, and at shutdown).
    pub dump_every: u64,
}

/// Longest text sent to a provider; log lines are far shorter, this only guards the API limit.
const MAX_TEXT_CHARS: usize = 4_000;
/// A caught-up index dumps its graph once nothing new arrived for this long.
const IDLE_DUMP_AFTER: Duration = Duration::from_secs(3);
const MAX_BACKOFF: Duration = Duration::from_secs(30);

pub struct IndexerHandle {
    stop: watch::Sender<bool>,
    thread: Option<JoinHandle<()>>,
}

impl IndexerHandle {
    /// Stops the indexer after its current batch (an embedding call in flight is abandoned;
    /// its records are embedded again next time, since nothing of them was stored) and waits
    /// for it to dump its graph.
    pub fn stop(mut self) {
        let _ = self.stop.send(true);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

pub fn spawn(
    topic: String,
    shard: Arc<Shard>,
    index: Arc<VectorIndex>,
    embedder: Arc<dyn Embedder>,
    settings: IndexerSettings,
) -> std::io::Result<IndexerHandle> {
    let runtime = Handle::current();
    let (stop_tx, stop_rx) = watch::channel(false);
    let name = format!("indexer-{topic}-{}", index.partition);
    let thread = std::thread::Builder::new().name(name).spawn(move || {
        let indexer = Indexer {
            topic,
            shard,
            index,
            embedder,
            settings,
            runtime,
            stop: stop_rx,
        };
        indexer.run();
    })?;
    Ok(IndexerHandle {
        stop: stop_tx,
        thread: Some(thread),
    })
}

struct Indexer {
    topic: String,
    shard: Arc<Shard>,
    index: Arc<VectorIndex>,
    embedder: Arc<dyn Embedder>,
    settings: IndexerSettings,
    runtime: Handle,
    stop: watch::Receiver<bool>,
}

impl Indexer {
    fn stopped(&self) -> bool {
        *self.stop.borrow()
    }

    /// Sleeps for `d` or until stopped.
    fn pause(&self, d: Duration) {
        let mut stop = self.stop.clone();
        self.runtime.block_on(async {
            let _ = tokio::time::timeout(d, stop.wait_for(|s| *s)).await;
        });
    }

    fn labels(&self) -> [(&'static str, String); 2] {
        [
            ("topic", self.topic.clone()),
            ("partition", self.index.partition.to_string()),
        ]
    }

    fn run(self) {
        let started = Instant::now();
        if let Err(e) = self.index.load() {
            tracing::error!(topic = %self.topic, partition = self.index.partition, error = %e,
                "vector index could not be loaded; vector search on this partition is off");
            return;
        }
        tracing::info!(topic = %self.topic, partition = self.index.partition,
            vectors = self.index.len(), secs = started.elapsed().as_secs_f64(), "vector index loaded");
        let mut backoff = Duration::from_millis(500);
        let mut last_append = Instant::now();
        while !self.stopped() {
            let next = self.index.len();
            self.publish(next);
            let rows = match self.shard.columnar().read_rows(
                next,
                self.settings.batch_size,
                &self.settings.field,
            ) {
                Ok(rows) => rows,
                Err(e) => {
                    tracing::error!(topic = %self.topic, error = %e, "indexer cannot read records");
                    self.pause(MAX_BACKOFF);
                    continue;
                }
            };
            if rows.is_empty() {
                if self.index.undumped() > 0 && last_append.elapsed() >= IDLE_DUMP_AFTER {
                    self.dump();
                }
                self.pause(self.settings.idle_poll);
                continue;
            }
            // Repeated texts (most log lines repeat) reuse the vector of their first record:
            // only texts new to this partition go to the provider.
            let texts: Vec<String> = rows.iter().map(|r| provider_text(&r.text)).collect();
            let mut same_as: Vec<Option<u64>> = Vec::with_capacity(rows.len());
            let mut first_in_batch: HashMap<u64, u64> = HashMap::new();
            let mut to_embed: Vec<String> = Vec::new();
            let hashes: Vec<u64> = texts.iter().map(|t| text_hash(t)).collect();
            for ((row, text), &hash) in rows.iter().zip(&texts).zip(&hashes) {
                let earlier = self
                    .index
                    .representative_of(hash)
                    .or_else(|| first_in_batch.get(&hash).copied());
                if earlier.is_none() {
                    first_in_batch.insert(hash, row.offset);
                    to_embed.push(text.clone());
                }
                same_as.push(earlier);
            }
            let vectors = if to_embed.is_empty() {
                Vec::new()
            } else {
                let call_started = Instant::now();
                let embedded = {
                    let mut stop = self.stop.clone();
                    let embedder = self.embedder.clone();
                    self.runtime.block_on(async move {
                        tokio::select! {
                            result = embedder.embed(&to_embed) => Some(result.map(|v| (v, to_embed.len()))),
                            _ = stop.wait_for(|s| *s) => None,
                        }
                    })
                };
                match embedded {
                    None => break,
                    Some(Ok((v, asked))) if v.len() == asked => {
                        metrics::histogram!("chronik_embedding_batch_seconds")
                            .record(call_started.elapsed().as_secs_f64());
                        metrics::counter!("chronik_embedding_requests_total").increment(1);
                        v
                    }
                    Some(Ok((v, asked))) => {
                        tracing::error!(
                            got = v.len(),
                            want = asked,
                            "provider returned the wrong number of vectors"
                        );
                        self.pause(backoff);
                        continue;
                    }
                    Some(Err(e)) => {
                        metrics::counter!("chronik_embedding_errors_total", &self.labels())
                            .increment(1);
                        tracing::warn!(topic = %self.topic, partition = self.index.partition, error = %e,
                            retry_in_ms = backoff.as_millis() as u64, "embedding failed; will retry");
                        self.pause(backoff);
                        backoff = (backoff * 2).min(MAX_BACKOFF);
                        continue;
                    }
                }
            };
            backoff = Duration::from_millis(500);
            let mut fresh = vectors.into_iter();
            let mut entries: Vec<VectorEntry> = Vec::with_capacity(rows.len());
            for ((row, same), hash) in rows.into_iter().zip(same_as).zip(hashes) {
                let vector = if same.is_none() {
                    fresh.next().unwrap_or_default()
                } else {
                    Vec::new()
                };
                entries.push(VectorEntry {
                    offset: row.offset,
                    timestamp: row.timestamp,
                    host: row.host,
                    label: row.label,
                    text_hash: hash,
                    same_as: same,
                    vector,
                });
            }
            let count = entries.len() as u64;
            if let Err(e) = self.index.append(&entries) {
                tracing::error!(topic = %self.topic, partition = self.index.partition, error = %e,
                    "storing vectors failed; indexer stops for this partition");
                return;
            }
            metrics::counter!("chronik_embedding_vectors_total", &self.labels()).increment(count);
            last_append = Instant::now();
            if self.index.undumped() >= self.settings.dump_every.max(self.index.len() / 2) {
                self.dump();
            }
        }
        self.dump();
    }

    fn publish(&self, vectors: u64) {
        let records = self.shard.stats().records;
        metrics::gauge!("chronik_vector_built_count", &self.labels()).set(vectors as f64);
        metrics::gauge!("chronik_vector_pending_count", &self.labels())
            .set(records.saturating_sub(vectors) as f64);
    }

    fn dump(&self) {
        let started = Instant::now();
        match self.index.dump() {
            Ok(()) => tracing::debug!(topic = %self.topic, partition = self.index.partition,
                secs = started.elapsed().as_secs_f64(), "vector graph dumped"),
            Err(e) => tracing::warn!(topic = %self.topic, error = %e, "vector graph dump failed"),
        }
    }
}

/// The text a provider gets for a record: OpenAI refuses empty inputs, and very long ones
/// exceed its token limit.
fn provider_text(text: &str) -> String {
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return "-".to_string();
    }
    match trimmed.char_indices().nth(MAX_TEXT_CHARS) {
        Some((cut, _)) => trimmed[..cut].to_string(),
        None => trimmed.to_string(),
    }
}
