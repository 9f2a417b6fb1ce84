//! Who kills and restarts nodes for SV-3's failover scenario: the runner's own local cluster
//! (signals to its child processes), or the hosts `up` deployed (their service manager, over
//! ssh), so the same scenario runs on real machines.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::cluster::local::{LocalCluster, is_formed};
use crate::deploy::layout::{Layout, Probe, ServiceManager, address, probe_script};
use crate::deploy::ssh::{Input, Ssh, quote};
use crate::deploy::up::{start_supervisor_script, stop_supervisor_script};
use crate::deploy::{SshArgs, check_host, cluster_status};
use crate::error::{Error, Result};

/// A node `up` deployed, as its host's probe found it.
#[derive(Debug, Clone)]
pub struct DeployedNode {
    pub id: u64,
    pub host: String,
    pub base_url: String,
    layout: Layout,
}

impl DeployedNode {
    /// Where the appliance lives on its host.
    pub fn layout(&self) -> &Layout {
        &self.layout
    }
}

/// The hosts of a cluster `up` deployed, reached with the operator's ssh settings.
#[derive(Debug, Clone)]
pub struct DeployedHosts {
    pub nodes: Vec<DeployedNode>,
    /// The cluster token from the node configs: it lets the runner publish the run record.
    pub token: Option<String>,
    ssh: Ssh,
    manager: ServiceManager,
    api_port: u16,
}

impl DeployedHosts {
    /// Probes every host (read-only) for its node id, install root and the cluster token;
    /// a host without a deployed node is refused by name.
    pub fn probe(hosts: &[String], api_port: u16, ssh: &SshArgs) -> Result<Self> {
        if hosts.is_empty() {
            return Err(Error::bad_request("--nodes needs at least one host"));
        }
        let client = ssh.client(false);
        let mut nodes = Vec::new();
        let mut tokens = Vec::new();
        for host in hosts {
            check_host(host)?;
            let probe = Probe::parse(&client.probe(
                host,
                "check host",
                &probe_script(ssh.service_manager),
            )?);
            let id = probe.get("node_id").parse::<u64>().map_err(|_| {
                Error::bad_request(format!(
                    "{host}: no sv-appliance node is deployed there (no node_id in its node.toml; run `sv-appliance up` first)"
                ))
            })?;
            if nodes.iter().any(|n: &DeployedNode| n.id == id) {
                return Err(Error::bad_request(format!(
                    "{host} is node {id}, like another host given to --nodes"
                )));
            }
            if !probe.get("token").is_empty() {
                tokens.push(probe.get("token").to_string());
            }
            nodes.push(DeployedNode {
                id,
                host: host.clone(),
                base_url: format!("http://{}", address(host, api_port)),
                layout: probe.layout(),
            });
        }
        tokens.dedup();
        Ok(DeployedHosts {
            nodes,
            token: (tokens.len() == 1).then(|| tokens.remove(0)),
            ssh: client,
            manager: ssh.service_manager,
            api_port,
        })
    }

    pub fn targets(&self) -> Vec<String> {
        self.nodes.iter().map(|n| n.base_url.clone()).collect()
    }

    /// The operator's ssh settings, as given to the run.
    pub fn ssh(&self) -> &Ssh {
        &self.ssh
    }

    fn node(&self, id: u64) -> Result<&DeployedNode> {
        self.nodes.iter().find(|n| n.id == id).ok_or_else(|| {
            Error::bad_request(format!(
                "node {id} is not one of the hosts given to --nodes"
            ))
        })
    }

    /// SIGKILL the node (a crash: nothing flushed), then keep its service manager from
    /// starting it again until [`Self::restart`]: systemd would restart it after 2 s, which
    /// would cut short the time the survivors are measured alone.
    fn kill(&self, id: u64) -> Result<String> {
        let node = self.node(id)?;
        let script = match self.manager {
            ServiceManager::Systemd => {
                "systemctl kill --signal=SIGKILL sv-appliance && systemctl stop sv-appliance"
                    .to_string()
            }
            ServiceManager::Process => {
                let pid = quote(&format!("{}/node.pid", node.layout.state_dir()));
                format!(
                    "pid=$(cat {pid} 2>/dev/null); if [ -z \"$pid\" ] || ! [ -d /proc/$pid ]; then echo \"no running node (pid file {pid})\" >&2; exit 1; fi; kill -KILL \"$pid\" && {}",
                    stop_supervisor_script(&node.layout)
                )
            }
        };
        self.ssh
            .change(&node.host, "kill node", &script, Input::None)?;
        Ok(format!("on {} over ssh", node.host))
    }

    fn restart(&self, id: u64) -> Result<()> {
        let node = self.node(id)?;
        let script = match self.manager {
            ServiceManager::Systemd => {
                "systemctl reset-failed sv-appliance 2>/dev/null; systemctl start --no-block sv-appliance".to_string()
            }
            ServiceManager::Process => start_supervisor_script(&node.layout),
        };
        self.ssh
            .change(&node.host, "start node", &script, Input::None)?;
        Ok(())
    }

    async fn status(&self) -> Result<Value> {
        let hosts: Vec<String> = self.nodes.iter().map(|n| n.host.clone()).collect();
        cluster_status(&hosts, self.api_port).await
    }
}

/// The nodes a failover scenario kills and restarts.
pub enum Faults<'a> {
    Local(&'a mut LocalCluster),
    Deployed(&'a DeployedHosts),
}

impl Faults<'_> {
    /// Every member: id and API address.
    pub fn members(&self) -> Vec<(u64, String)> {
        match self {
            Faults::Local(c) => c.nodes.iter().map(|n| (n.id, n.base_url())).collect(),
            Faults::Deployed(h) => h.nodes.iter().map(|n| (n.id, n.base_url.clone())).collect(),
        }
    }

    /// `/_cluster/status` from a node that answers.
    pub async fn status(&self, client: &reqwest::Client) -> Result<Value> {
        match self {
            Faults::Local(c) => c.status_from(client).await,
            Faults::Deployed(h) => h.status().await,
        }
    }

    /// SIGKILLs node `id`; says where, for the timeline.
    pub fn kill(&mut self, id: u64) -> Result<String> {
        match self {
            Faults::Local(c) => {
                let i = c.index(id)?;
                tokio::task::block_in_place(|| c.kill(i))?;
                Ok("on this machine".into())
            }
            Faults::Deployed(h) => tokio::task::block_in_place(|| h.kill(id)),
        }
    }

    /// Starts node `id` again (it must then catch up).
    pub fn restart(&mut self, id: u64) -> Result<()> {
        match self {
            Faults::Local(c) => {
                let i = c.index(id)?;
                tokio::task::block_in_place(|| c.restart(i))
            }
            Faults::Deployed(h) => tokio::task::block_in_place(|| h.restart(id)),
        }
    }

    /// Waits until every member is ready, every group led and no replica lags.
    pub async fn wait_formed(&self, client: &reqwest::Client, timeout: Duration) -> Result<()> {
        if let Faults::Local(c) = self {
            return c.wait_formed(timeout).await.map(|_| ());
        }
        let ids: Vec<u64> = self.members().iter().map(|(id, _)| *id).collect();
        let deadline = Instant::now() + timeout;
        loop {
            let last = match self.status(client).await {
                Ok(status) if is_formed(&status, &ids) => return Ok(()),
                Ok(_) => "a member is not ready, a group has no leader or a replica lags".into(),
                Err(e) => e.to_string(),
            };
            if Instant::now() > deadline {
                return Err(Error::Unavailable(format!(
                    "the cluster did not form again within {timeout:?}: {last}"
                )));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}
