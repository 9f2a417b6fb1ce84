//! One running node: the metadata group, the topics and their partitions, and the background
//! checkpoint task. [`Node::start`] is all a test or `serve` needs to get a working node.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::RwLock;
use serde::Serialize;

use crate::cluster::Members;
use crate::cluster::meta::{MetaGroup, TopicMeta, place_replicas};
use crate::cluster::network::{PeerClient, partition_group};
use crate::cluster::partition::{Partition, PartitionPlacement};
use crate::cluster::rejoin::RejoinGate;
use crate::cluster::types::{MetaCommand, MetaResponse, NodeId};
use crate::config::NodeConfig;
use crate::embed::{Embedder, QueryEmbeddingCache};
use crate::error::{Error, Result};
use crate::shard::ShardStats;
use crate::shard::vector::indexer::{self, IndexerHandle, IndexerSettings};
use crate::shard::vector::{IndexIdentity, VectorIndex};

/// Records per raft entry: large enough to amortise the fsync, small enough to keep one apply
/// short so text-index commits are not held up.
pub(crate) const RECORDS_PER_ENTRY: usize = 8192;

/// A topic opened on this node. With a replication factor below the member count a node
/// holds only some partitions; the others are read from their replicas on peers.
pub struct Topic {
    pub name: String,
    /// Partitions of the topic over the whole cluster.
    pub partition_count: u32,
    /// Replica node ids per partition, preferred leader first (empty on a single node).
    pub replicas: Vec<Vec<NodeId>>,
    /// The partitions this node holds a replica of, by ascending id.
    pub partitions: Vec<Partition>,
    /// One per local partition (same order) when the topic is embedded, else empty.
    pub vectors: Vec<Arc<VectorIndex>>,
    /// Whether records are embedded (true even when this node holds no partition).
    pub embedded: bool,
}

impl Topic {
    pub fn vector_enabled(&self) -> bool {
        self.embedded
    }

    /// This node's replica of partition `id`, if it holds one.
    pub fn local(&self, id: u32) -> Option<&Partition> {
        self.position(id).map(|i| &self.partitions[i])
    }

    /// This node's vector index of partition `id`, if it holds one and the topic is embedded.
    pub fn local_vectors(&self, id: u32) -> Option<&Arc<VectorIndex>> {
        self.position(id).and_then(|i| self.vectors.get(i))
    }

    fn position(&self, id: u32) -> Option<usize> {
        self.partitions.binary_search_by_key(&id, |p| p.id).ok()
    }

    /// Whether every partition has a replica here (always true on a single node).
    pub fn holds_all(&self) -> bool {
        self.partitions.len() == self.partition_count as usize
    }

    /// Replica node ids of partition `id` (this node alone on a single node).
    pub fn replicas_of(&self, id: u32, me: NodeId) -> Vec<NodeId> {
        self.replicas
            .get(id as usize)
            .cloned()
            .unwrap_or_else(|| vec![me])
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
    pub(crate) meta: MetaGroup,
    /// HTTP client for raft and internal calls to peers (carries the cluster token).
    pub(crate) peers: PeerClient,
    topics: RwLock<HashMap<String, Arc<Topic>>>,
    /// Serialises topic opening so two requests never open the same partitions twice.
    open_lock: tokio::sync::Mutex<()>,
    /// `None` when `embedding.provider = "none"`.
    pub embedder: Option<Arc<dyn Embedder>>,
    /// Every query path that embeds text goes through this.
    pub query_cache: QueryEmbeddingCache,
    indexers: parking_lot::Mutex<Vec<IndexerHandle>>,
    /// Reads in flight to each peer, for replica choice.
    pub(crate) peer_load: crate::router::fanout::PeerLoad,
    /// Closed while this member rejoins after losing its data (see `cluster::rejoin`).
    pub(crate) rejoin: RejoinGate,
}

impl Node {
    /// Opens everything under `config.data_dir`, replaying committed log entries the shards
    /// lack, and starts the checkpoint task.
    pub async fn start(config: NodeConfig) -> Result<Arc<Self>> {
        Self::start_with(config, |_| {}).await
    }

    /// Like [`Node::start`], calling `on_created` with the node before its groups open, so
    /// the raft port can serve peers while this node replays and joins.
    pub async fn start_with(
        config: NodeConfig,
        on_created: impl FnOnce(&Arc<Self>),
    ) -> Result<Arc<Self>> {
        std::fs::create_dir_all(&config.data_dir).map_err(|e| {
            Error::Config(format!(
                "cannot create data_dir {}: {e}",
                config.data_dir.display()
            ))
        })?;
        let peers = PeerClient::new(&config.cluster);
        let wiped = crate::cluster::coordinator::is_wiped_member(&config, &peers).await?;
        if wiped {
            // Before any group opens (and writes files), so a crash from here on resumes the
            // rejoin rather than starting with a half-built log as a member in good standing.
            let marker = config.data_dir.join(crate::cluster::rejoin::REJOIN_MARKER);
            std::fs::write(&marker, b"a rejoin is under way; a restart resumes it\n")?;
        }
        let meta = MetaGroup::open(
            &config.data_dir.join("meta"),
            config.node_id,
            &voters(&config),
            &peers,
            !wiped,
        )
        .await?;
        let embedder = config.embedding.build()?;
        let query_cache = QueryEmbeddingCache::new(&config.embedding.cache);
        let node = Arc::new(Self {
            config,
            meta,
            peers,
            topics: RwLock::new(HashMap::new()),
            open_lock: tokio::sync::Mutex::new(()),
            embedder,
            query_cache,
            indexers: parking_lot::Mutex::new(Vec::new()),
            peer_load: Default::default(),
            rejoin: if wiped {
                RejoinGate::closed()
            } else {
                RejoinGate::default()
            },
        });
        on_created(&node);
        for topic in node.meta.topics() {
            node.open_topic(&topic).await?;
        }
        node.clone().spawn_checkpoints();
        if node.config.cluster.is_clustered() {
            node.clone().spawn_topic_watcher();
            node.spawn_join_record();
        }
        if wiped {
            node.spawn_rejoin();
        }
        Ok(node)
    }

    /// Opens topics created through another node: the metadata group replicates them here.
    fn spawn_topic_watcher(self: Arc<Self>) {
        let weak = Arc::downgrade(&self);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_millis(100)).await;
                let Some(node) = weak.upgrade() else { break };
                let opened: Vec<String> = node.topics.read().keys().cloned().collect();
                for meta in node.meta.topics() {
                    if !opened.contains(&meta.name)
                        && let Err(e) = node.open_topic(&meta).await
                    {
                        tracing::error!(topic = %meta.name, error = %e, "cannot open topic");
                    }
                }
            }
        });
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

    pub(crate) async fn open_topic(&self, meta: &TopicMeta) -> Result<Arc<Topic>> {
        let _guard = self.open_lock.lock().await;
        if let Some(topic) = self.topics.read().get(&meta.name) {
            return Ok(topic.clone());
        }
        let dir = self.config.data_dir.join("topics").join(&meta.name);
        let mut partitions = Vec::with_capacity(meta.partitions as usize);
        let all_voters = voters(&self.config);
        for id in 0..meta.partitions {
            let pdir = dir.join(format!("p{id}"));
            let replicas: Members = match meta.replicas.get(id as usize) {
                Some(ids) => ids
                    .iter()
                    .filter_map(|r| all_voters.get(r).map(|n| (*r, n.clone())))
                    .collect(),
                None => all_voters.clone(),
            };
            if !replicas.contains_key(&self.config.node_id) {
                continue;
            }
            let group = partition_group(&meta.name, id);
            let placement = PartitionPlacement {
                node_id: self.config.node_id,
                preferred_leader: meta
                    .replicas
                    .get(id as usize)
                    .and_then(|r| r.first())
                    .is_some_and(|&first| first == self.config.node_id),
                replicas: &replicas,
                group: &group,
                peers: &self.peers,
                may_initialize: !self.rejoin.is_rejoining(),
            };
            partitions.push(Partition::open(&pdir, id, placement).await?);
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
            partition_count: meta.partitions,
            // Members removed since the topic was placed are no longer asked.
            replicas: meta
                .replicas
                .iter()
                .map(|ids| {
                    ids.iter()
                        .copied()
                        .filter(|r| all_voters.contains_key(r))
                        .collect()
                })
                .collect(),
            partitions,
            vectors,
            embedded: embedded && self.embedder.is_some(),
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
        let members: Vec<NodeId> = voters(&self.config).keys().copied().collect();
        let replicas = if self.config.cluster.is_clustered() {
            place_replicas(partitions, &members, self.config.cluster.replication_factor)
        } else {
            Vec::new()
        };
        let command = MetaCommand::CreateTopic {
            name: name.to_string(),
            partitions,
            replicas,
            vector,
        };
        let (meta, created) = match self.meta_propose(command).await? {
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

    /// The open topic `name`, when this node holds a replica of every one of `partitions`;
    /// a peer asked for one it does not hold gets a 404 and asks another replica.
    pub fn topic_holding(&self, name: &str, partitions: &[u32]) -> Result<Arc<Topic>> {
        let topic = self.topic(name)?;
        match partitions.iter().find(|&&p| topic.local(p).is_none()) {
            Some(missing) => Err(Error::NotFound(format!(
                "node {} holds no replica of {name}/{missing}",
                self.config.node_id
            ))),
            None => Ok(topic),
        }
    }

    pub fn topics(&self) -> Vec<Arc<Topic>> {
        let mut topics: Vec<Arc<Topic>> = self.topics.read().values().cloned().collect();
        topics.sort_by(|a, b| a.name.cmp(&b.name));
        topics
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

    /// Ready when the metadata group has a leader, every topic it lists is open here, and
    /// every partition has a leader and has replayed what its log held at start.
    pub fn is_ready(&self) -> bool {
        let opened = self.topics.read();
        !self.rejoin.is_rejoining()
            && self.meta.has_leader()
            && self
                .meta
                .topics()
                .iter()
                .all(|t| opened.contains_key(&t.name))
            && opened
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

/// Voters of every group: the configured members (dialled on their raft port), or this node
/// alone.
pub fn voters(config: &NodeConfig) -> Members {
    use openraft::BasicNode;
    if config.cluster.is_clustered() {
        config
            .cluster
            .members
            .iter()
            .map(|m| {
                (
                    m.id,
                    BasicNode {
                        addr: m.raft.clone(),
                    },
                )
            })
            .collect()
    } else {
        Members::from([(
            config.node_id,
            BasicNode {
                addr: config.api.listen.clone(),
            },
        )])
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
