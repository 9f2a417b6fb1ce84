//! `sv-appliance cluster …`: a cluster of node processes on this machine (loopback ports,
//! data under one folder) for the demo, the SV-3/SV-4 plans and the tests. The state file
//! `cluster.json` in that folder remembers ports, token and process ids between commands.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{Error, Result};
use crate::process::{process_alive, signal, wait_gone};

const STATE_FILE: &str = "cluster.json";

/// A replica this many raft entries behind its leader counts as caught up (a load keeps a few
/// entries in flight).
const CAUGHT_UP_ENTRIES: u64 = 8;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LocalNode {
    pub id: u64,
    pub api: String,
    pub raft: String,
    pub dir: PathBuf,
    pub pid: Option<u32>,
}

impl LocalNode {
    pub fn base_url(&self) -> String {
        format!("http://{}", self.api)
    }

    /// The raft port's URL, where the token-protected `/internal/...` routes are.
    pub fn internal_url(&self) -> String {
        format!("http://{}", self.raft)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LocalCluster {
    pub dir: PathBuf,
    pub token: String,
    pub nodes: Vec<LocalNode>,
    /// Extra environment of every node process (e.g. `SV_EMBEDDING_PROVIDER`), kept for
    /// restarts.
    #[serde(default)]
    pub env: std::collections::BTreeMap<String, String>,
    /// Default partitions per topic written into every node's config.
    #[serde(default)]
    pub partitions: Option<u32>,
    /// Replicas per partition in the configs (default: the node count when formed); kept when
    /// a member is added, so existing placements stay valid.
    #[serde(default)]
    pub replication_factor: Option<usize>,
    /// One node with no `[cluster]` section: a standalone node run as a process (a baseline
    /// for the cluster's nodes).
    #[serde(default)]
    pub standalone: bool,
}

/// Free loopback ports below Linux's ephemeral range (32768+): a port from that range can be
/// taken by an outgoing connection while its node is down, and the node could not restart.
fn free_ports(n: usize) -> Result<Vec<u16>> {
    let start = 20_000 + (u16::from_str_radix(&random_token()?[..4], 16).unwrap_or(0) % 10_000);
    let ports: Vec<u16> = (start..32_000)
        .filter(|&p| std::net::TcpListener::bind(("127.0.0.1", p)).is_ok())
        .take(n)
        .collect();
    if ports.len() < n {
        return Err(Error::Unavailable(format!(
            "fewer than {n} free loopback ports between {start} and 32000"
        )));
    }
    Ok(ports)
}

/// 128 random bits from the kernel, as hex.
pub fn random_token() -> Result<String> {
    use std::io::Read;
    let mut bytes = [0u8; 16];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut bytes)?;
    Ok(crate::checksum::hex(&bytes))
}

impl LocalCluster {
    /// `(internal URL, cluster token)` of every node, running or not, for
    /// `report::publish::publish_run`.
    pub fn internal_targets(&self) -> Vec<(String, String)> {
        self.nodes
            .iter()
            .map(|n| (n.internal_url(), self.token.clone()))
            .collect()
    }

    pub fn load(dir: &Path) -> Result<Self> {
        let path = dir.join(STATE_FILE);
        let bytes = std::fs::read(&path).map_err(|e| {
            Error::bad_request(format!(
                "no local cluster in {} ({e}); start one with `sv-appliance cluster up --local 3 --dir {}`",
                dir.display(),
                dir.display()
            ))
        })?;
        serde_json::from_slice(&bytes)
            .map_err(|e| Error::Internal(format!("{}: {e}", path.display())))
    }

    fn save(&self) -> Result<()> {
        let bytes = serde_json::to_vec_pretty(self).map_err(Error::internal)?;
        write_private(&self.dir.join(STATE_FILE), &bytes)
    }

    /// Writes the configs of a new cluster of `n` nodes under `dir` (or reuses an existing
    /// one's), starts every node that is not running, and waits until it is formed.
    pub fn up(dir: &Path, n: usize, partitions: u32) -> Result<Self> {
        Self::up_with_env(dir, n, partitions, Default::default())
    }

    /// [`LocalCluster::up`] with extra environment for the node processes.
    pub fn up_with_env(
        dir: &Path,
        n: usize,
        partitions: u32,
        env: std::collections::BTreeMap<String, String>,
    ) -> Result<Self> {
        if !(1..=9).contains(&n) {
            return Err(Error::bad_request(format!(
                "--local takes 1 to 9 nodes, got {n}"
            )));
        }
        std::fs::create_dir_all(dir)?;
        let mut cluster = match Self::load(dir) {
            Ok(existing) if existing.nodes.len() == n => existing,
            Ok(existing) => {
                return Err(Error::bad_request(format!(
                    "{} holds a {}-node cluster; use another --dir or `cluster down --purge` first",
                    dir.display(),
                    existing.nodes.len()
                )));
            }
            Err(_) => Self::create(dir, n)?,
        };
        cluster.env.extend(env);
        cluster.partitions = Some(partitions);
        cluster.write_configs(partitions)?;
        for i in 0..n {
            if !cluster.is_running(i) {
                cluster.spawn(i)?;
            }
        }
        cluster.save()?;
        Ok(cluster)
    }

    /// One standalone node process (no `[cluster]` section) under `dir`, started and saved;
    /// wait for it with [`LocalCluster::wait_formed`].
    pub fn standalone_with_env(
        dir: &Path,
        partitions: u32,
        env: std::collections::BTreeMap<String, String>,
    ) -> Result<Self> {
        std::fs::create_dir_all(dir)?;
        let mut node = Self::create(dir, 1)?;
        node.standalone = true;
        node.env = env;
        node.partitions = Some(partitions);
        node.write_configs(partitions)?;
        node.spawn(0)?;
        node.save()?;
        Ok(node)
    }

    fn create(dir: &Path, n: usize) -> Result<Self> {
        let ports = free_ports(2 * n)?;
        let dir = std::path::absolute(dir)?;
        let nodes = (0..n)
            .map(|i| LocalNode {
                id: i as u64 + 1,
                api: format!("127.0.0.1:{}", ports[i]),
                raft: format!("127.0.0.1:{}", ports[n + i]),
                dir: dir.join(format!("node{}", i + 1)),
                pid: None,
            })
            .collect();
        Ok(Self {
            dir,
            token: random_token()?,
            nodes,
            env: Default::default(),
            partitions: None,
            replication_factor: None,
            standalone: false,
        })
    }

    fn write_configs(&self, partitions: u32) -> Result<()> {
        let members: Vec<String> = self
            .nodes
            .iter()
            .map(|m| {
                format!(
                    "  {{ id = {}, raft = \"{}\", api = \"{}\" }},",
                    m.id, m.raft, m.api
                )
            })
            .collect();
        for node in &self.nodes {
            std::fs::create_dir_all(&node.dir)?;
            if self.standalone {
                let text = format!(
                    "# Written by the benchmark runner: one standalone node.\nnode_id = {}\ndata_dir = \"{}\"\n\n[api]\nlisten = \"{}\"\n\n[topics]\ndefault_partitions = {partitions}\n",
                    node.id,
                    node.dir.join("data").display(),
                    node.api,
                );
                write_private(&node.dir.join("node.toml"), text.as_bytes())?;
                continue;
            }
            let text = format!(
                "# Written by `sv-appliance cluster up --local`.\nnode_id = {}\ndata_dir = \"{}\"\n\n[api]\nlisten = \"{}\"\n\n[topics]\ndefault_partitions = {partitions}\n\n[cluster]\nraft_listen = \"{}\"\ntoken = \"{}\"\nreplication_factor = {}\nmembers = [\n{}\n]\n",
                node.id,
                node.dir.join("data").display(),
                node.api,
                node.raft,
                self.token,
                self.replication_factor.unwrap_or(self.nodes.len()),
                members.join("\n")
            );
            write_private(&node.dir.join("node.toml"), text.as_bytes())?;
        }
        Ok(())
    }

    fn running_ids(&self) -> Vec<u64> {
        (0..self.nodes.len())
            .filter(|&i| self.is_running(i))
            .map(|i| self.nodes[i].id)
            .collect()
    }

    pub fn is_running(&self, i: usize) -> bool {
        self.nodes[i].pid.is_some_and(process_alive)
    }

    /// Starts node `i` detached from this terminal, logging to `nodeN/node.log`.
    pub fn spawn(&mut self, i: usize) -> Result<()> {
        use std::os::unix::process::CommandExt;
        let node = &self.nodes[i];
        // A killed process's sockets close only when its last thread has exited (one may
        // still be in an fsync), which can be after it already shows as a zombie.
        for addr in [&node.api, &node.raft] {
            let deadline = Instant::now() + Duration::from_secs(15);
            while std::net::TcpListener::bind(addr.as_str()).is_err() {
                if Instant::now() > deadline {
                    return Err(Error::Unavailable(format!(
                        "node {}: {addr} is still in use",
                        node.id
                    )));
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(node.dir.join("node.log"))?;
        let child = Command::new(std::env::current_exe()?)
            .arg("serve")
            .arg("--config")
            .arg(node.dir.join("node.toml"))
            .envs(&self.env)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            // Its own process group: Ctrl-C in the terminal that ran `cluster up` does not
            // reach the nodes; `cluster down` stops them.
            .process_group(0)
            .spawn()
            .map_err(|e| Error::Internal(format!("cannot start node {}: {e}", node.id)))?;
        self.nodes[i].pid = Some(child.id());
        // The child is reaped by init once this command exits; dropping the handle does not
        // kill it.
        drop(child);
        Ok(())
    }

    /// Node index for a 1-based node number given on the command line.
    pub fn index(&self, number: u64) -> Result<usize> {
        self.nodes
            .iter()
            .position(|n| n.id == number)
            .ok_or_else(|| {
                Error::bad_request(format!(
                    "no node {number}: this cluster has nodes 1..={}",
                    self.nodes.len()
                ))
            })
    }

    /// SIGKILL, like a crash: no shutdown hooks run.
    pub fn kill(&mut self, i: usize) -> Result<()> {
        let pid = self.nodes[i]
            .pid
            .filter(|p| process_alive(*p))
            .ok_or_else(|| {
                Error::bad_request(format!("node {} is not running", self.nodes[i].id))
            })?;
        signal(pid, "KILL")?;
        wait_gone(pid, Duration::from_secs(10));
        self.nodes[i].pid = None;
        self.save()
    }

    /// Adds a node to a running cluster: its config and every other node's list the new
    /// member, it starts and joins (the group leaders add it to the metadata group, see
    /// `cluster::rejoin`), and once the cluster is formed with it the other nodes restart one
    /// at a time to learn its address. Returns the new node's index.
    pub async fn add_member(&mut self, timeout: Duration) -> Result<usize> {
        let ports = free_ports(2)?;
        let id = self.nodes.iter().map(|n| n.id).max().unwrap_or(0) + 1;
        self.replication_factor.get_or_insert(self.nodes.len());
        self.nodes.push(LocalNode {
            id,
            api: format!("127.0.0.1:{}", ports[0]),
            raft: format!("127.0.0.1:{}", ports[1]),
            dir: self.dir.join(format!("node{id}")),
            pid: None,
        });
        let new = self.nodes.len() - 1;
        self.write_configs(self.partitions.unwrap_or(6))?;
        self.spawn(new)?;
        self.save()?;
        self.wait_formed(timeout).await?;
        for i in 0..new {
            if self.is_running(i) {
                self.restart(i)?;
                self.wait_formed(timeout).await?;
            }
        }
        Ok(new)
    }

    /// Removes node `id`: a running member removes it from every raft group
    /// (`DELETE /_cluster/members/{id}`), its process stops (its folder is kept), and the
    /// others restart one at a time with configs that no longer list it.
    pub async fn remove_member(&mut self, id: u64, timeout: Duration) -> Result<()> {
        let i = self
            .nodes
            .iter()
            .position(|n| n.id == id)
            .ok_or_else(|| Error::NotFound(format!("node {id} is not in this cluster")))?;
        if self.nodes.len() <= 1 {
            return Err(Error::bad_request("cannot remove the last node"));
        }
        let via = (0..self.nodes.len())
            .find(|&j| j != i && self.is_running(j))
            .ok_or_else(|| Error::Unavailable("no other node is running".into()))?;
        let url = format!("{}/_cluster/members/{id}", self.nodes[via].base_url());
        let response = reqwest::Client::new()
            .delete(&url)
            .header(crate::cluster::network::TOKEN_HEADER, &self.token)
            .timeout(timeout)
            .send()
            .await
            .map_err(|e| Error::Unavailable(format!("{url}: {e}")))?;
        if !response.status().is_success() {
            let status = response.status();
            let text = response.text().await.unwrap_or_default();
            return Err(Error::Unavailable(format!("{url}: HTTP {status}: {text}")));
        }
        if let Some(pid) = self.nodes[i].pid.filter(|p| process_alive(*p)) {
            signal(pid, "TERM")?;
            if !wait_gone(pid, Duration::from_secs(20)) {
                signal(pid, "KILL")?;
                wait_gone(pid, Duration::from_secs(5));
            }
        }
        self.replication_factor.get_or_insert(self.nodes.len());
        self.nodes.remove(i);
        let rf = self.replication_factor.unwrap_or(1).min(self.nodes.len());
        self.replication_factor = Some(rf);
        self.write_configs(self.partitions.unwrap_or(6))?;
        self.save()?;
        for j in 0..self.nodes.len() {
            if self.is_running(j) {
                self.restart(j)?;
                self.wait_formed(timeout).await?;
            }
        }
        Ok(())
    }

    pub fn restart(&mut self, i: usize) -> Result<()> {
        if let Some(pid) = self.nodes[i].pid.filter(|p| process_alive(*p)) {
            signal(pid, "TERM")?;
            if !wait_gone(pid, Duration::from_secs(20)) {
                signal(pid, "KILL")?;
                wait_gone(pid, Duration::from_secs(5));
            }
        }
        self.spawn(i)?;
        self.save()
    }

    /// Stops every node (SIGTERM, then SIGKILL after 20 s); `purge` also deletes the folder.
    pub fn down(&mut self, purge: bool) -> Result<()> {
        let running: Vec<u32> = self
            .nodes
            .iter()
            .filter_map(|n| n.pid)
            .filter(|p| process_alive(*p))
            .collect();
        for &pid in &running {
            signal(pid, "TERM")?;
        }
        for &pid in &running {
            if !wait_gone(pid, Duration::from_secs(20)) {
                signal(pid, "KILL")?;
                wait_gone(pid, Duration::from_secs(5));
            }
        }
        for n in &mut self.nodes {
            n.pid = None;
        }
        if purge {
            std::fs::remove_dir_all(&self.dir)?;
            Ok(())
        } else {
            self.save()
        }
    }

    /// Waits until every running node is ready and every group has a leader; returns the
    /// cluster status.
    pub async fn wait_formed(&self, timeout: Duration) -> Result<Value> {
        let client = reqwest::Client::new();
        let deadline = Instant::now() + timeout;
        loop {
            // A node that exited (bad config, refused to start) will never form: say why now.
            for (i, n) in self.nodes.iter().enumerate() {
                if n.pid.is_some() && !self.is_running(i) {
                    let log = std::fs::read_to_string(n.dir.join("node.log")).unwrap_or_default();
                    let last = log
                        .lines()
                        .rev()
                        .find(|l| !l.trim().is_empty())
                        .unwrap_or("");
                    return Err(Error::Unavailable(format!(
                        "node {} exited: {last} (log: {})",
                        n.id,
                        n.dir.join("node.log").display()
                    )));
                }
            }
            let last = match self.status_from(&client).await {
                Ok(status) if is_formed(&status, &self.running_ids()) => return Ok(status),
                Ok(_) => "some groups have no leader yet or a node is not ready".to_string(),
                Err(e) => e.to_string(),
            };
            if Instant::now() > deadline {
                return Err(Error::Unavailable(format!(
                    "cluster in {} not formed within {timeout:?}: {last} (node logs: {}/node*/node.log)",
                    self.dir.display(),
                    self.dir.display()
                )));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// `/_cluster/status` from the first running node that answers.
    pub async fn status_from(&self, client: &reqwest::Client) -> Result<Value> {
        let mut last = String::from("no node is running");
        for (i, n) in self.nodes.iter().enumerate() {
            if !self.is_running(i) {
                continue;
            }
            let url = format!("{}/_cluster/status", n.base_url());
            match client
                .get(&url)
                .timeout(Duration::from_secs(5))
                .send()
                .await
            {
                Ok(r) if r.status().is_success() => {
                    return r.json().await.map_err(Error::internal);
                }
                Ok(r) => last = format!("{url}: HTTP {}", r.status()),
                Err(e) => last = format!("{url}: {e}"),
            }
        }
        Err(Error::Unavailable(last))
    }
}

/// Every node in `running` reachable and ready, every group led by one of them, and each of
/// them that is a voter of a group (every member when RF = members) holding it within a few
/// entries of its leader.
pub fn is_formed(status: &Value, running: &[u64]) -> bool {
    let members_ok = status["members"].as_array().is_some_and(|ms| {
        ms.iter()
            .filter(|m| m["id"].as_u64().is_some_and(|id| running.contains(&id)))
            .all(|m| m["ready"] == true)
    });
    // Caught up: every running node holds every group and trails its leader by a few entries
    // at most (a restarted or wiped node is not "formed" while it replays).
    let groups_ok = status["groups"].as_array().is_some_and(|gs| {
        gs.iter().all(|g| {
            let replicas = g["replicas"].as_array().cloned().unwrap_or_default();
            let voter = |id: &u64| {
                g["voters"]
                    .as_array()
                    .is_none_or(|vs| vs.iter().any(|v| v.as_u64() == Some(*id)))
            };
            g["leader"].as_u64().is_some_and(|l| running.contains(&l))
                && running.iter().filter(|id| voter(id)).all(|id| {
                    replicas.iter().any(|r| {
                        r["node"].as_u64() == Some(*id)
                            && r["lag"]
                                .as_u64()
                                .is_some_and(|lag| lag <= CAUGHT_UP_ENTRIES)
                    })
                })
        })
    });
    members_ok && groups_ok
}

/// The status as the table `cluster status` prints.
pub fn render_status(status: &Value) -> String {
    let mut out = String::from("members:\n");
    for m in status["members"].as_array().into_iter().flatten() {
        out += &format!(
            "  node {}  api {}  raft {}  {}\n",
            m["id"],
            m["api"].as_str().unwrap_or("?"),
            m["raft"].as_str().unwrap_or("-"),
            if m["reachable"] == false {
                "UNREACHABLE"
            } else if m["ready"] == true {
                "ready"
            } else {
                "not ready"
            }
        );
    }
    out += "groups (leader; per replica: applied index, lag):\n";
    for g in status["groups"].as_array().into_iter().flatten() {
        let replicas: Vec<String> = g["replicas"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|r| format!("n{}={}/{}", r["node"], r["last_applied"], r["lag"]))
            .collect();
        let leader = g["leader"]
            .as_u64()
            .map_or("NONE".to_string(), |l| format!("n{l}"));
        out += &format!(
            "  {:<24} leader {:<5} {}\n",
            g["group"].as_str().unwrap_or("?"),
            leader,
            replicas.join("  ")
        );
    }
    out
}

/// Writes a file only its owner can read: configs and the state file hold the cluster token.
fn write_private(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = path.with_extension("tmp");
    {
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?;
        std::io::Write::write_all(&mut file, bytes)?;
        file.sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    Ok(())
}
