//! Node configuration: compiled default < TOML file < `SV_*` environment < command-line flags.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The commented default, also shipped as `configs/default.toml`.
pub const DEFAULT_CONFIG_TOML: &str = include_str!("../configs/default.toml");

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeConfig {
    pub node_id: u64,
    pub data_dir: PathBuf,
    pub api: ApiConfig,
    pub topics: TopicsConfig,
    pub storage: StorageConfig,
    pub query: QueryConfig,
    pub embedding: crate::embed::EmbeddingConfig,
    pub vector: VectorConfig,
    pub cluster: ClusterConfig,
    pub report: ReportConfig,
}

/// The benchmark report every node serves under `/report/` (see `report::receive`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReportConfig {
    /// Run records shown at `/report/` and stored by `PUT /internal/runs/{id}`; empty means
    /// `<data_dir>/runs`, which the systemd unit already lets the node write.
    pub runs_dir: PathBuf,
}

/// Cluster membership as this node sees it. No members = a single node that opens no raft port.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterConfig {
    /// Where this node accepts raft and cluster-internal calls.
    pub raft_listen: String,
    /// Shared secret every cluster-internal request must carry.
    pub token: String,
    /// Replicas per partition.
    pub replication_factor: usize,
    /// Every voter, this node included; the same list on every node.
    pub members: Vec<ClusterMember>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterMember {
    pub id: u64,
    /// Raft and internal address peers dial (host name or IP, with port).
    pub raft: String,
    /// HTTP API address clients and `cluster status` use.
    pub api: String,
}

impl ClusterConfig {
    pub fn is_clustered(&self) -> bool {
        !self.members.is_empty()
    }

    pub fn member(&self, id: u64) -> Option<&ClusterMember> {
        self.members.iter().find(|m| m.id == id)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiConfig {
    pub listen: String,
    pub max_body_bytes: usize,
    pub max_batch_records: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TopicsConfig {
    pub default_partitions: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StorageConfig {
    pub checkpoint_interval_ms: u64,
    pub flush_rows: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueryConfig {
    pub timeout_ms: u64,
    pub sql_max_rows: usize,
    /// On a cluster, whether a query first brings its replicas up to their leaders.
    pub read_freshness: ReadFreshness,
}

/// `query.read_freshness` (see `cluster/freshness.rs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ReadFreshness {
    /// Every replica read holds what its leader held when the query arrived, or the answer
    /// names it in `_shards.failures`.
    Leader,
    /// Answer from the local replicas as they are: no call to any leader, no wait, and no
    /// word in the answer when a replica is behind.
    Local,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VectorConfig {
    /// Embed the records of topics that do not say otherwise when created.
    pub enabled: bool,
    /// Column embedded: message, host, location, component, label, severity or level.
    pub field: String,
    /// Records per provider call.
    pub batch_size: usize,
    pub m: usize,
    pub ef_construction: usize,
    pub ef_search: usize,
    /// Dump the HNSW graph after this many new vectors (also when idle and at shutdown).
    pub dump_every: u64,
}

impl VectorConfig {
    pub fn hnsw(&self) -> crate::shard::vector::graph::HnswParams {
        crate::shard::vector::graph::HnswParams {
            m: self.m,
            ef_construction: self.ef_construction,
            ef_search: self.ef_search,
        }
    }
}

/// Command-line overrides; `None` leaves the layer below in force.
#[derive(Debug, Clone, Default)]
pub struct ConfigOverrides {
    pub node_id: Option<u64>,
    pub data_dir: Option<PathBuf>,
    pub listen: Option<String>,
}

/// Environment variable → dotted key it sets.
const ENV_KEYS: &[(&str, &str)] = &[
    ("SV_NODE_ID", "node_id"),
    ("SV_DATA_DIR", "data_dir"),
    ("SV_LISTEN", "api.listen"),
    ("SV_MAX_BODY_BYTES", "api.max_body_bytes"),
    ("SV_MAX_BATCH_RECORDS", "api.max_batch_records"),
    ("SV_DEFAULT_PARTITIONS", "topics.default_partitions"),
    (
        "SV_CHECKPOINT_INTERVAL_MS",
        "storage.checkpoint_interval_ms",
    ),
    ("SV_FLUSH_ROWS", "storage.flush_rows"),
    ("SV_QUERY_TIMEOUT_MS", "query.timeout_ms"),
    ("SV_SQL_MAX_ROWS", "query.sql_max_rows"),
    ("SV_QUERY_READ_FRESHNESS", "query.read_freshness"),
    // Chronik's name first, so the SV_ one wins when both are set.
    ("CHRONIK_EMBEDDING_PROVIDER", "embedding.provider"),
    ("SV_EMBEDDING_PROVIDER", "embedding.provider"),
    ("SV_VECTOR_ENABLED", "vector.enabled"),
    ("SV_VECTOR_FIELD", "vector.field"),
    ("SV_VECTOR_BATCH_SIZE", "vector.batch_size"),
    ("SV_HNSW_M", "vector.m"),
    ("SV_HNSW_EF_CONSTRUCTION", "vector.ef_construction"),
    ("SV_HNSW_EF_SEARCH", "vector.ef_search"),
    ("SV_RAFT_LISTEN", "cluster.raft_listen"),
    ("SV_CLUSTER_TOKEN", "cluster.token"),
    ("SV_REPLICATION_FACTOR", "cluster.replication_factor"),
    // Not `SV_RUNS_DIR`: that one names the bench runner's own directory, and the local
    // cluster's node processes inherit the runner's environment.
    ("SV_REPORT_RUNS_DIR", "report.runs_dir"),
];

impl NodeConfig {
    /// Where this node keeps the run records its report serves: `report.runs_dir`, else
    /// `<data_dir>/runs`.
    pub fn runs_dir(&self) -> PathBuf {
        if self.report.runs_dir.as_os_str().is_empty() {
            self.data_dir.join("runs")
        } else {
            self.report.runs_dir.clone()
        }
    }

    /// Resolves every layer. `env` is passed in so tests control it.
    pub fn load(
        file: Option<&Path>,
        env: &HashMap<String, String>,
        flags: &ConfigOverrides,
    ) -> Result<Self> {
        let mut merged: toml::Table = toml::from_str(DEFAULT_CONFIG_TOML)
            .map_err(|e| Error::Internal(format!("default config: {e}")))?;
        if let Some(path) = file {
            let text = std::fs::read_to_string(path)
                .map_err(|e| Error::Config(format!("cannot read {}: {e}", path.display())))?;
            let table: toml::Table = toml::from_str(&text)
                .map_err(|e| Error::Config(format!("{}: {e}", path.display())))?;
            merge(&mut merged, table);
        }
        for (var, key) in ENV_KEYS {
            if let Some(raw) = env.get(*var) {
                // A token or a path is text even when it happens to look like a number.
                let value = if *key == "cluster.token" || *key == "report.runs_dir" {
                    toml::Value::String(raw.clone())
                } else {
                    parse_scalar(raw)
                };
                set_key(&mut merged, key, value)
                    .map_err(|e| Error::Config(format!("{var}: {e}")))?;
            }
        }
        let mut config: NodeConfig = toml::Value::Table(merged)
            .try_into()
            .map_err(|e: toml::de::Error| Error::Config(e.to_string()))?;
        config.embedding.apply_env(env)?;
        if let Some(id) = flags.node_id {
            config.node_id = id;
        }
        if let Some(dir) = &flags.data_dir {
            config.data_dir = dir.clone();
        }
        if let Some(listen) = &flags.listen {
            config.api.listen = listen.clone();
        }
        config.validate()?;
        Ok(config)
    }

    /// Checks values that parse but cannot work.
    pub fn validate(&self) -> Result<()> {
        let bad = |msg: String| Err(Error::Config(msg));
        if self.node_id == 0 {
            return bad("node_id must be at least 1".into());
        }
        if self.api.listen.parse::<std::net::SocketAddr>().is_err() {
            return bad(format!(
                "api.listen {:?} is not an address like 127.0.0.1:6092",
                self.api.listen
            ));
        }
        if !(1..=1024).contains(&self.topics.default_partitions) {
            return bad(format!(
                "topics.default_partitions must be 1..=1024, got {}",
                self.topics.default_partitions
            ));
        }
        if self.storage.checkpoint_interval_ms == 0 || self.storage.flush_rows == 0 {
            return bad(
                "storage.checkpoint_interval_ms and storage.flush_rows must be positive".into(),
            );
        }
        if self.api.max_batch_records == 0 || self.api.max_body_bytes < 1024 {
            return bad(
                "api.max_batch_records must be positive and api.max_body_bytes at least 1024"
                    .into(),
            );
        }
        if self.query.timeout_ms == 0 || self.query.sql_max_rows == 0 {
            return bad("query.timeout_ms and query.sql_max_rows must be positive".into());
        }
        self.embedding.validate()?;
        let v = &self.vector;
        if !crate::shard::columnar::EMBEDDABLE_COLUMNS.contains(&v.field.as_str()) {
            return bad(format!(
                "vector.field {:?} is not one of {}",
                v.field,
                crate::shard::columnar::EMBEDDABLE_COLUMNS.join(", ")
            ));
        }
        // hnsw_rs exits the process above 256 links, so the bound is checked here.
        if !(2..=128).contains(&v.m) {
            return bad(format!("vector.m must be 2..=128, got {}", v.m));
        }
        if !(1..=2048).contains(&v.batch_size) {
            return bad(format!(
                "vector.batch_size must be 1..=2048, got {}",
                v.batch_size
            ));
        }
        if v.ef_construction < v.m || v.ef_search == 0 || v.ef_search > 10_000 {
            return bad(format!(
                "vector.ef_construction must be at least vector.m, and vector.ef_search 1..=10000 (got {} and {})",
                v.ef_construction, v.ef_search
            ));
        }
        if v.dump_every == 0 {
            return bad("vector.dump_every must be positive".into());
        }
        self.validate_cluster()
    }

    fn validate_cluster(&self) -> Result<()> {
        let c = &self.cluster;
        if !c.is_clustered() {
            return Ok(());
        }
        let bad = |msg: String| Err(Error::Config(msg));
        let mut ids: Vec<u64> = c.members.iter().map(|m| m.id).collect();
        ids.sort_unstable();
        ids.dedup();
        if ids.len() != c.members.len() || ids.contains(&0) {
            return bad("cluster.members must have distinct ids, each at least 1".into());
        }
        if c.member(self.node_id).is_none() {
            return bad(format!(
                "cluster.members does not list this node (node_id {})",
                self.node_id
            ));
        }
        if c.raft_listen.parse::<std::net::SocketAddr>().is_err() {
            return bad(format!(
                "cluster.raft_listen {:?} is not an address like 0.0.0.0:7092",
                c.raft_listen
            ));
        }
        if c.token.len() < 16 {
            return bad("cluster.token must be at least 16 characters (the same on every member; `sv-appliance up` generates one)".into());
        }
        if !(1..=c.members.len()).contains(&c.replication_factor) {
            return bad(format!(
                "cluster.replication_factor must be between 1 and the number of members ({}), got {}",
                c.members.len(),
                c.replication_factor
            ));
        }
        for m in &c.members {
            if !m.raft.contains(':') || !m.api.contains(':') {
                return bad(format!(
                    "cluster member {}: raft {:?} and api {:?} must be host:port",
                    m.id, m.raft, m.api
                ));
            }
        }
        Ok(())
    }
}

fn merge(base: &mut toml::Table, over: toml::Table) {
    for (key, value) in over {
        match (base.get_mut(&key), value) {
            (Some(toml::Value::Table(b)), toml::Value::Table(o)) => merge(b, o),
            (_, value) => {
                base.insert(key, value);
            }
        }
    }
}

fn parse_scalar(raw: &str) -> toml::Value {
    if let Ok(i) = raw.parse::<i64>() {
        toml::Value::Integer(i)
    } else if let Ok(b) = raw.parse::<bool>() {
        toml::Value::Boolean(b)
    } else {
        toml::Value::String(raw.to_string())
    }
}

fn set_key(
    table: &mut toml::Table,
    dotted: &str,
    value: toml::Value,
) -> std::result::Result<(), String> {
    let mut parts = dotted.split('.').peekable();
    let mut current = table;
    while let Some(part) = parts.next() {
        if parts.peek().is_none() {
            current.insert(part.to_string(), value);
            return Ok(());
        }
        current = current
            .entry(part.to_string())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()))
            .as_table_mut()
            .ok_or_else(|| format!("{part} is not a table"))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layers_apply_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("node.toml");
        std::fs::write(
            &file,
            "data_dir = \"/from/file\"\n[topics]\ndefault_partitions = 3\n",
        )
        .unwrap();
        let env = HashMap::from([("SV_DEFAULT_PARTITIONS".to_string(), "4".to_string())]);
        let flags = ConfigOverrides {
            listen: Some("127.0.0.1:7000".into()),
            ..Default::default()
        };
        let c = NodeConfig::load(Some(&file), &env, &flags).unwrap();
        assert_eq!(c.data_dir, PathBuf::from("/from/file"));
        assert_eq!(c.topics.default_partitions, 4, "env beats file");
        assert_eq!(c.api.listen, "127.0.0.1:7000", "flag beats default");
        assert_eq!(c.storage.flush_rows, 262144, "default survives");
    }

    #[test]
    fn unknown_keys_and_bad_values_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("node.toml");
        std::fs::write(&file, "[api]\nlisten = \"nowhere\"\n").unwrap();
        let err = NodeConfig::load(Some(&file), &HashMap::new(), &Default::default()).unwrap_err();
        assert!(err.to_string().contains("api.listen"), "{err}");
        std::fs::write(&file, "bogus_key = 1\n").unwrap();
        let err = NodeConfig::load(Some(&file), &HashMap::new(), &Default::default()).unwrap_err();
        assert!(err.to_string().contains("bogus_key"), "{err}");
        let env = |v: &str| HashMap::from([("SV_QUERY_READ_FRESHNESS".to_string(), v.to_string())]);
        let c = NodeConfig::load(None, &env("local"), &Default::default()).unwrap();
        assert_eq!(c.query.read_freshness, ReadFreshness::Local);
        let err = NodeConfig::load(None, &env("sometimes"), &Default::default()).unwrap_err();
        assert!(
            err.to_string().contains("`leader` or `local`"),
            "names the choices: {err}"
        );
    }

    #[test]
    fn runs_dir_defaults_under_data_dir_and_follows_the_environment() {
        let flags = ConfigOverrides {
            data_dir: Some("/var/lib/sv/data".into()),
            ..Default::default()
        };
        let c = NodeConfig::load(None, &HashMap::new(), &flags).unwrap();
        assert_eq!(c.runs_dir(), PathBuf::from("/var/lib/sv/data/runs"));
        let env = HashMap::from([("SV_REPORT_RUNS_DIR".to_string(), "2026".to_string())]);
        let c = NodeConfig::load(None, &env, &flags).unwrap();
        assert_eq!(
            c.runs_dir(),
            PathBuf::from("2026"),
            "a numeric-looking path stays a path"
        );
    }

    #[test]
    fn cluster_settings_are_checked() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("node.toml");
        let members = "members = [{ id = 1, raft = \"h1:7092\", api = \"h1:6092\" }, { id = 2, raft = \"h2:7092\", api = \"h2:6092\" }, { id = 3, raft = \"h3:7092\", api = \"h3:6092\" }]";
        let load = |body: &str| {
            std::fs::write(&file, body).unwrap();
            NodeConfig::load(Some(&file), &HashMap::new(), &Default::default())
        };
        let good = format!("node_id = 2\n[cluster]\ntoken = \"0123456789abcdef\"\n{members}\n");
        let c = load(&good).unwrap();
        assert!(c.cluster.is_clustered());
        assert_eq!(c.cluster.member(2).unwrap().raft, "h2:7092");
        let err = load(&good.replace("node_id = 2", "node_id = 4")).unwrap_err();
        assert!(err.to_string().contains("does not list this node"), "{err}");
        let err = load(&good.replace("0123456789abcdef", "short")).unwrap_err();
        assert!(err.to_string().contains("cluster.token"), "{err}");
        let err = load(&format!("{good}replication_factor = 0\n")).unwrap_err();
        assert!(err.to_string().contains("replication_factor"), "{err}");
        let err = load(&format!("{good}replication_factor = 4\n")).unwrap_err();
        assert!(err.to_string().contains("between 1 and"), "{err}");
        let one = load(&format!("{good}replication_factor = 1\n")).unwrap();
        assert_eq!(one.cluster.replication_factor, 1);
        let err = load(&good.replace("id = 3", "id = 2")).unwrap_err();
        assert!(err.to_string().contains("distinct"), "{err}");
        // A numeric-looking token from the environment stays text.
        let env = HashMap::from([(
            "SV_CLUSTER_TOKEN".to_string(),
            "12345678901234567890".to_string(),
        )]);
        std::fs::write(&file, &good).unwrap();
        let c = NodeConfig::load(Some(&file), &env, &Default::default()).unwrap();
        assert_eq!(c.cluster.token, "12345678901234567890");
        // No members: a single node, whatever the rest says.
        assert!(!load("node_id = 1\n").unwrap().cluster.is_clustered());
    }
}
