//! Where a plan's requests go: nodes the runner starts itself (a node inside its process, or a
//! local cluster of node processes, with the plan's embedding provider) or external nodes
//! given with `--target`. Consecutive phases that need the same setup share one environment.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use super::LocalNode;
use super::faults::{DeployedHosts, Faults};
use super::plan::EnvironmentSpec;
use super::remote_standalone::RemoteStandalone;
use crate::cluster::local::LocalCluster;
use crate::embed::LocalEmbedder;
use crate::embed::test_server::{self, TestServerHandle, TestServerOptions};
use crate::error::{Error, Result};

enum Backing {
    InProcess {
        node: LocalNode,
        /// The emulated OpenAI-compatible provider, when the plan asks for one.
        _provider: Option<TestServerHandle>,
    },
    /// Node processes (a local cluster, or one standalone node), with the emulated provider
    /// they call when the plan asks for one.
    Cluster {
        cluster: LocalCluster,
        _provider: Option<TestServerHandle>,
    },
    /// Nodes the runner did not start; with the hosts `up` deployed when given by `--nodes`.
    External(Option<DeployedHosts>),
    /// A standalone node the runner started over ssh on a deployed host (a baseline).
    Remote(RemoteStandalone),
}

pub struct Environment {
    pub targets: Vec<String>,
    /// `in-process node`, `local cluster of 3`, `external`.
    pub kind: String,
    pub notes: Vec<String>,
    /// The spec it was started for; `None` for external targets (shared by every phase).
    pub spec: Option<EnvironmentSpec>,
    /// Whether its data was loaded, and how (format, topic, lines, seed, vectors).
    pub loaded: Option<String>,
    /// `None` once stopped; dropping a running environment (Ctrl-C, an error) still stops
    /// its node processes, so none outlives the run.
    backing: Option<Backing>,
}

impl Environment {
    /// External nodes: `--target` URLs, or the hosts `up` deployed (`--nodes`), whose
    /// service manager the failover scenario drives over ssh.
    pub fn external(targets: Vec<String>, hosts: Option<DeployedHosts>) -> Self {
        let notes = match &hosts {
            Some(h) => vec![format!(
                "queries sent to {}; faults driven over ssh on {}",
                targets.join(", "),
                h.nodes
                    .iter()
                    .map(|n| format!("{} (node {})", n.host, n.id))
                    .collect::<Vec<_>>()
                    .join(", ")
            )],
            None => vec![format!("queries sent to {}", targets.join(", "))],
        };
        Environment {
            kind: if hosts.is_some() {
                format!("deployed cluster of {}", targets.len())
            } else {
                "external".into()
            },
            notes,
            targets,
            spec: None,
            loaded: None,
            backing: Some(Backing::External(hosts)),
        }
    }

    /// A standalone node for `spec` (a baseline) on the first of the deployed `hosts`, beside
    /// the node deployed there, with that node's settings and embedding provider.
    pub async fn remote_standalone(spec: &EnvironmentSpec, hosts: &DeployedHosts) -> Result<Self> {
        let partitions = spec.partitions;
        let node = tokio::task::block_in_place(|| RemoteStandalone::start(hosts, partitions))?;
        let notes = vec![format!(
            "one standalone node process started over ssh on {} beside its deployed node, with that node's config less its cluster, {partitions} partitions; its data ({}) is deleted after the baseline",
            node.host, node.dir
        )];
        Ok(Environment {
            targets: vec![node.base_url.clone()],
            kind: format!("standalone node process on {}", node.host),
            notes,
            spec: Some(spec.clone()),
            loaded: None,
            backing: Some(Backing::Remote(node)),
        })
    }

    /// Starts what `spec` describes under `work`.
    pub async fn start(spec: &EnvironmentSpec, work: &Path) -> Result<Self> {
        std::fs::create_dir_all(work)?;
        let mut notes = Vec::new();
        let mut env: HashMap<String, String> = HashMap::new();
        let provider = match spec.embedding.as_str() {
            "openai-emulated" => {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
                let server = test_server::start(
                    listener,
                    TestServerOptions::new(Arc::new(LocalEmbedder::new()?))
                        .latency_ms(spec.provider_latency_ms),
                )
                .await;
                env.insert("SV_EMBEDDING_PROVIDER".into(), "openai".into());
                env.insert("CHRONIK_EMBEDDING_ENDPOINT".into(), server.base_url());
                env.insert("OPENAI_API_KEY".into(), "sv-bench-emulated".into());
                if let Some(dims) = spec.dimensions {
                    env.insert("CHRONIK_EMBEDDING_DIMENSIONS".into(), dims.to_string());
                }
                notes.push(format!(
                    "embedding provider emulated: the local model behind an OpenAI-compatible server answering after {} ms (the plan's measured OpenAI p50); no OpenAI call is made",
                    spec.provider_latency_ms
                ));
                Some(server)
            }
            other => {
                env.insert("SV_EMBEDDING_PROVIDER".into(), other.to_string());
                if other == "local" {
                    notes.push("embedding: the built-in local model".into());
                }
                None
            }
        };
        if spec.nodes <= 1 && spec.process {
            let env: BTreeMap<String, String> = env.into_iter().collect();
            let partitions = spec.partitions;
            let dir = work.join("standalone");
            let node = tokio::task::block_in_place(|| {
                LocalCluster::standalone_with_env(&dir, partitions, env)
            })?;
            notes.push(format!(
                "one standalone node process on this machine (no cluster), {partitions} partitions"
            ));
            let mut environment = Environment {
                targets: node.nodes.iter().map(|n| n.base_url()).collect(),
                kind: "standalone node process".into(),
                notes,
                spec: Some(spec.clone()),
                loaded: None,
                backing: Some(Backing::Cluster {
                    cluster: node,
                    _provider: provider,
                }),
            };
            if let Some(node) = environment.cluster() {
                node.wait_formed(Duration::from_secs(120)).await?;
            }
            Ok(environment)
        } else if spec.nodes <= 1 {
            let node = LocalNode::start(&work.join("data"), env).await?;
            notes.push(format!(
                "one node inside the runner's process, {} partitions",
                spec.partitions
            ));
            Ok(Environment {
                targets: vec![node.base.clone()],
                kind: "in-process node".into(),
                notes,
                spec: Some(spec.clone()),
                loaded: None,
                backing: Some(Backing::InProcess {
                    node,
                    _provider: provider,
                }),
            })
        } else {
            let dir = work.join("cluster");
            let mut env: BTreeMap<String, String> = env.into_iter().collect();
            let n = spec.nodes;
            let rf = spec.replication_factor.unwrap_or(n);
            if !(1..=n).contains(&rf) {
                return Err(Error::Config(format!(
                    "environment.replication_factor must be between 1 and nodes ({n}), got {rf}"
                )));
            }
            env.insert("SV_REPLICATION_FACTOR".into(), rf.to_string());
            let partitions = spec.partitions;
            let cluster = tokio::task::block_in_place(|| {
                LocalCluster::up_with_env(&dir, n, partitions, env)
            })?;
            notes.push(format!(
                "{n} node processes on this machine (RF = {rf}), {partitions} partitions; they share its {} cores",
                std::thread::available_parallelism().map_or(1, |c| c.get())
            ));
            // Owned by the environment before the wait, so a failed start or a Ctrl-C while
            // waiting still stops the processes (its drop does).
            let mut environment = Environment {
                targets: cluster.nodes.iter().map(|n| n.base_url()).collect(),
                kind: format!("local cluster of {n}"),
                notes,
                spec: Some(spec.clone()),
                loaded: None,
                backing: Some(Backing::Cluster {
                    cluster,
                    _provider: provider,
                }),
            };
            if let Some(cluster) = environment.cluster() {
                cluster.wait_formed(Duration::from_secs(120)).await?;
            }
            Ok(environment)
        }
    }

    /// Whether a phase needing `spec` can run here as it is.
    pub fn suits(&self, spec: &EnvironmentSpec) -> bool {
        match &self.spec {
            None => true,
            Some(own) => {
                own.nodes == spec.nodes
                    && own.partitions == spec.partitions
                    && own.embedding == spec.embedding
                    && own.provider_latency_ms == spec.provider_latency_ms
                    && own.dimensions == spec.dimensions
                    && own.replication_factor == spec.replication_factor
                    && own.process == spec.process
            }
        }
    }

    /// The nodes a fault scenario may kill: a local cluster, or hosts deployed by `up`.
    pub fn faults(&mut self) -> Option<Faults<'_>> {
        match &mut self.backing {
            Some(Backing::Cluster { cluster, .. }) if !cluster.standalone => {
                Some(Faults::Local(cluster))
            }
            Some(Backing::External(Some(hosts))) => Some(Faults::Deployed(hosts)),
            _ => None,
        }
    }

    /// The local cluster, when the runner started one.
    pub fn cluster(&mut self) -> Option<&mut LocalCluster> {
        match &mut self.backing {
            Some(Backing::Cluster { cluster, .. }) => Some(cluster),
            _ => None,
        }
    }

    /// Stops what the runner started and deletes its data; external nodes are left alone.
    pub async fn stop(mut self) {
        match self.backing.take() {
            Some(Backing::InProcess { node, _provider }) => {
                node.stop().await;
                drop(_provider);
            }
            Some(Backing::Cluster {
                mut cluster,
                _provider,
            }) => {
                let _ = tokio::task::block_in_place(|| cluster.down(true));
                drop(_provider);
            }
            Some(Backing::Remote(mut node)) => {
                if let Err(e) = tokio::task::block_in_place(|| node.stop()) {
                    eprintln!("warning: {e}");
                }
            }
            Some(Backing::External(_)) | None => {}
        }
    }
}

impl Drop for Environment {
    fn drop(&mut self) {
        if let Some(Backing::Cluster { mut cluster, .. }) = self.backing.take() {
            let _ = cluster.down(true);
        }
    }
}
