//! One running node: the metadata group, the topics and their partitions, and the background
//! checkpoint task. [`Node::start`] is all a test or `serve` needs to get a working node.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::RwLock;
use serde::Serialize;

use crate::cluster::meta::{MetaGroup, TopicMeta};
use crate::cluster::partition::Partition;
use crate::cluster::types::{Appended, MetaResponse};
use crate::config::NodeConfig;
use crate::embed::{Embedder, QueryEmbeddingCache};
use crate::error::{Error, Result};
use crate::record::LogRecord;
use crate::shard::ShardStats;
use crate::shard::vector::indexer::{self, IndexerHandle, IndexerSettings};
use crate::shard::vector::{IndexIdentity, VectorIndex};

/// Records per raft entry: large enough to amortise the fsync, small enough to keep one apply
/// short so text-index commits are not held up.
const RECORDS_PER_ENTRY: usize = 8192;

/// A topic opened on this node.
pub struct Topic {
    pub name: String,
    pub partitions: Vec<Partition>,
    /// One per partition when the topic is embedded, else empty.
    pub vectors: Vec<Arc<VectorIndex>>,
}

impl Topic {
    pub fn vector_enabled(&self) -> bool {
        !self.vectors.is_empty()
    }
}

/// FNV-1a (64-bit) of a byte stream. Fixed by its definition, so values stored on disk or used
/// for placement never change across versions or platforms (std's hasher may).
pub fn fnv1a(bytes: impl IntoIterator<Item = u8>) -> u64 {
    bytes.into_iter().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// Partition for a record key: FNV-1a of the key bytes, mod the partition count.
pub fn partition_for_key(key: &str, partitions: u32) -> u32 {
    (fnv1a(key.bytes()) % u64::from(partitions)) as u32
}

/// Where a write landed, per partition.
#[derive(Debug, Clone, Serialize)]
pub struct PartitionWrite {
    pub partition: u32,
    pub base_offset: u64,
    pub count: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct TopicStats {
    pub name: String,
    pub partitions: Vec<ShardStats>,
    pub records: u64,
    pub searchable: u64,
    pub index_lag: u64,
}

pub struct Node {
    pub config: NodeConfig,
    meta: MetaGroup,
    topics: RwLock<HashMap<String, Arc<Topic>>>,
    /// Serialises topic opening so two requests never open the same partitions twice.
    open_lock: tokio::sync::Mutex<()>,
    /// `None` when `embedding.provider = "none"`.
    pub embedder: Option<Arc<dyn Embedder>>,
    /// Every query path that embeds text goes through this.
    pub query_cache: QueryEmbeddingCache,
    indexers: parking_lot::Mutex<Vec<IndexerHandle>>,
}

impl Node {
    /// Opens everything under `config.data_dir`, replaying committed log entries the shards
    /// lack, and starts the checkpoint task.
    pub async fn start(config: NodeConfig) -> Result<Arc<Self>> {
        std::fs::create_dir_all(&config.data_dir).map_err(|e| {
            Error::Config(format!(
                "cannot create data_dir {}: {e}",
                config.data_dir.display()
            ))
        })?;
        let meta = MetaGroup::open(
            &config.data_dir.join("meta"),
            config.node_id,
            &config.api.listen,
        )
        .await?;
        let embedder = config.embedding.build()?;
        let query_cache = QueryEmbeddingCache::new(&config.embedding.cache);
        let node = Arc::new(Self {
            config,
            meta,
            topics: RwLock::new(HashMap::new()),
            open_lock: tokio::sync::Mutex::new(()),
            embedder,
            query_cache,
            indexers: parking_lot::Mutex::new(Vec::new()),
        });
        for topic in node.meta.topics() {
            node.open_topic(&topic).await?;
        }
        node.clone().spawn_checkpoints();
        Ok(node)
    }

    fn spawn_checkpoints(self: Arc<Self>) {
        let interval = Duration::from_millis(self.config.storage.checkpoint_interval_ms);
        let weak = Arc::downgrade(&self);
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(interval);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticker.tick().await;
                let Some(node) = weak.upgrade() else { break };
                let flush_rows = node.config.storage.flush_rows;
                let topics: Vec<Arc<Topic>> = node.topics.read().values().cloned().collect();
                drop(node);
                for topic in topics {
                    for p in &topic.partitions {
                        let shard = p.shard.clone();
                        let result =
                            tokio::task::spawn_blocking(move || shard.checkpoint(flush_rows)).await;
                        match result {
                            Ok(Ok(())) => {}
                            Ok(Err(e)) => {
                                tracing::error!(topic = %topic.name, partition = p.id, error = %e, "checkpoint failed")
                            }
                            Err(e) => tracing::error!(error = %e, "checkpoint task panicked"),
                        }
                        let stats = p.shard.stats();
                        let labels = [
                            ("topic", topic.name.clone()),
                            ("partition", p.id.to_string()),
                        ];
                        metrics::gauge!("chronik_index_lag_records", &labels)
                            .set(stats.index_lag as f64);
                        metrics::gauge!("chronik_partition_records", &labels)
                            .set(stats.records as f64);
                    }
                }
            }
        });
    }

    async fn open_topic(&self, meta: &TopicMeta) -> Result<Arc<Topic>> {
        let _guard = self.open_lock.lock().await;
        if let Some(topic) = self.topics.read().get(&meta.name) {
            return Ok(topic.clone());
        }
        let dir = self.config.data_dir.join("topics").join(&meta.name);
        let mut partitions = Vec::with_capacity(meta.partitions as usize);
        for id in 0..meta.partitions {
            let pdir = dir.join(format!("p{id}"));
            partitions.push(
                Partition::open(&pdir, id, self.config.node_id, &self.config.api.listen).await?,
            );
        }
        let embedded = meta.vector.unwrap_or(self.config.vector.enabled);
        let mut vectors = Vec::new();
        if let (true, Some(embedder)) = (embedded, &self.embedder) {
            let identity = IndexIdentity::new(&embedder.id(), &self.config.vector.field);
            let settings = IndexerSettings {
                field: self.config.vector.field.clone(),
                batch_size: self.config.vector.batch_size,
                idle_poll: Duration::from_millis(200),
                dump_every: self.config.vector.dump_every,
            };
            for p in &partitions {
                let index = VectorIndex::create(
                    &dir.join(format!("p{}", p.id)).join("vectors"),
                    p.id,
                    &identity,
                    embedder.dimensions(),
                    self.config.vector.hnsw(),
                )?;
                let handle = indexer::spawn(
                    meta.name.clone(),
                    p.shard.clone(),
                    index.clone(),
                    embedder.clone(),
                    settings.clone(),
                )?;
                self.indexers.lock().push(handle);
                vectors.push(index);
            }
        }
        let topic = Arc::new(Topic {
            name: meta.name.clone(),
            partitions,
            vectors,
        });
        self.topics.write().insert(meta.name.clone(), topic.clone());
        Ok(topic)
    }

    /// Creates a topic (idempotent for the same settings). Returns whether it was new.
    pub async fn create_topic(
        &self,
        name: &str,
        partitions: Option<u32>,
        vector: Option<bool>,
    ) -> Result<(TopicMeta, bool)> {
        validate_topic_name(name)?;
        let partitions = partitions.unwrap_or(self.config.topics.default_partitions);
        if !(1..=1024).contains(&partitions) {
            return Err(Error::bad_request(format!(
                "partitions must be 1..=1024, got {partitions}"
            )));
        }
        let (meta, created) = match self.meta.create_topic(name, partitions, vector).await? {
            MetaResponse::TopicCreated(meta) => (meta, true),
            MetaResponse::TopicExists(existing) => {
                if existing.partitions != partitions {
                    return Err(Error::Conflict(format!(
                        "topic {name:?} already exists with {} partitions, not {partitions}",
                        existing.partitions
                    )));
                }
                let effective = existing.vector.unwrap_or(self.config.vector.enabled);
                if vector.is_some_and(|v| v != effective) {
                    return Err(Error::Conflict(format!(
                        "topic {name:?} already exists with vector {effective}"
                    )));
                }
                (existing, false)
            }
            MetaResponse::None => {
                return Err(Error::internal(
                    "metadata group gave no answer to create_topic",
                ));
            }
        };
        self.open_topic(&meta).await?;
        Ok((meta, created))
    }

    pub fn topic(&self, name: &str) -> Result<Arc<Topic>> {
        self.topics
            .read()
            .get(name)
            .cloned()
            .ok_or_else(|| Error::NotFound(format!("topic {name:?} does not exist")))
    }

    pub fn topics(&self) -> Vec<Arc<Topic>> {
        let mut topics: Vec<Arc<Topic>> = self.topics.read().values().cloned().collect();
        topics.sort_by(|a, b| a.name.cmp(&b.name));
        topics
    }

    /// Writes records to their partitions; returns when every batch is committed and applied.
    pub async fn write(&self, topic: &str, records: Vec<LogRecord>) -> Result<Vec<PartitionWrite>> {
        let topic = self.topic(topic)?;
        let n = topic.partitions.len() as u32;
        let mut by_partition: Vec<Vec<LogRecord>> = vec![Vec::new(); n as usize];
        for record in records {
            by_partition[partition_for_key(&record.host, n) as usize].push(record);
        }
        let mut writes = Vec::new();
        for (pid, mut records) in by_partition.into_iter().enumerate() {
            let partition = &topic.partitions[pid];
            while !records.is_empty() {
                let rest = records.split_off(records.len().min(RECORDS_PER_ENTRY));
                let chunk = std::mem::replace(&mut records, rest);
                writes.push(async move { (partition.id, partition.write(chunk).await) });
            }
        }
        let mut results: Vec<PartitionWrite> = Vec::new();
        let mut first_error = None;
        for (partition, result) in futures::future::join_all(writes).await {
            match result {
                Ok(Appended { base_offset, count }) => results.push(PartitionWrite {
                    partition,
                    base_offset,
                    count,
                }),
                Err(e) => first_error = first_error.or(Some(e)),
            }
        }
        metrics::counter!("chronik_ingest_records_total")
            .increment(results.iter().map(|w| w.count).sum());
        match first_error {
            // Some partitions may have committed: the error says so, so a client can retry knowing
            // a retry of the whole batch can duplicate the committed part.
            Some(e) => Err(Error::Unavailable(format!(
                "write partly failed ({} partition batches committed): {e}",
                results.len()
            ))),
            None => Ok(results),
        }
    }

    pub fn topic_stats(&self, topic: &Topic) -> TopicStats {
        let partitions: Vec<ShardStats> =
            topic.partitions.iter().map(|p| p.shard.stats()).collect();
        TopicStats {
            name: topic.name.clone(),
            records: partitions.iter().map(|p| p.records).sum(),
            searchable: partitions.iter().map(|p| p.searchable).sum(),
            index_lag: partitions.iter().map(|p| p.index_lag).sum(),
            partitions,
        }
    }

    /// Ready when the metadata group has a leader and every partition has a leader and has
    /// replayed what its log held at start.
    pub fn is_ready(&self) -> bool {
        self.meta.has_leader()
            && self
                .topics
                .read()
                .values()
                .all(|t| t.partitions.iter().all(|p| p.is_ready()))
    }

    /// Stops the indexers (each dumps its graph) and every raft group (tests and orderly
    /// shutdown).
    pub async fn shutdown(&self) {
        let indexers: Vec<IndexerHandle> = std::mem::take(&mut *self.indexers.lock());
        let _ = tokio::task::spawn_blocking(move || {
            for handle in indexers {
                handle.stop();
            }
        })
        .await;
        let topics: Vec<Arc<Topic>> = self.topics.read().values().cloned().collect();
        for topic in topics {
            for p in &topic.partitions {
                let _ = p.raft.shutdown().await;
            }
        }
        let _ = self.meta.raft.shutdown().await;
    }
}

/// Topic names become directory names and SQL table names, so they are kept plain.
pub fn validate_topic_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 128
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
        && !name.starts_with('.');
    if ok {
        Ok(())
    } else {
        Err(Error::bad_request(format!(
            "invalid topic name {name:?}: use 1-128 characters from A-Z a-z 0-9 . _ - (not starting with .)"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partitioning_is_stable_and_spreads() {
        // Fixed values: a change here would move existing data to other partitions.
        assert_eq!(partition_for_key("dn228", 6), partition_for_key("dn228", 6));
        let mut seen = [0u32; 6];
        for i in 0..600 {
            seen[partition_for_key(&format!("cn{i}"), 6) as usize] += 1;
        }
        assert!(seen.iter().all(|&c| c > 50), "uneven spread {seen:?}");
    }

    #[test]
    fn topic_names_are_checked() {
        assert!(validate_topic_name("thunderbird").is_ok());
        assert!(validate_topic_name("app-logs.v2").is_ok());
        assert!(validate_topic_name("../etc").is_err());
        assert!(validate_topic_name("").is_err());
        assert!(validate_topic_name("a b").is_err());
    }
}
