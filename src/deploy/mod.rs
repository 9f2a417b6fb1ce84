//! Bare-metal deployment: `up`, `down`, `status` and `logs` over SSH, the systemd unit, and
//! the process supervisor that stands in for systemd where it cannot run.

pub mod layout;
pub mod notify;
pub mod ops;
pub mod ssh;
pub mod supervise;
pub mod up;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use clap::Args;

use crate::error::{Error, Result};
use layout::{Ports, ServiceManager, address};
use ssh::Ssh;

/// How to reach the hosts and who runs the node there.
#[derive(Debug, Clone, Args)]
pub struct SshArgs {
    /// SSH user (default: from your ssh config, else your login name).
    #[arg(long)]
    pub user: Option<String>,
    /// SSH port of every host (default: from your ssh config, else 22).
    #[arg(long)]
    pub ssh_port: Option<u16>,
    /// Private key to log in with (ssh -i).
    #[arg(long)]
    pub identity: Option<PathBuf>,
    /// Extra ssh option, repeatable, e.g. `--ssh-option StrictHostKeyChecking=accept-new`.
    #[arg(long = "ssh-option")]
    pub ssh_options: Vec<String>,
    /// systemd units, or `process`: the `supervise` command in the background, for hosts
    /// where systemd is not PID 1.
    #[arg(long, value_enum, default_value = "systemd")]
    pub service_manager: ServiceManager,
}

impl SshArgs {
    pub fn client(&self, dry_run: bool) -> Ssh {
        Ssh {
            user: self.user.clone(),
            port: self.ssh_port,
            identity: self.identity.clone(),
            options: self.ssh_options.clone(),
            dry_run,
        }
    }
}

/// The cluster's hosts, in node-id order, and the ports every node uses.
#[derive(Debug, Clone, Args)]
pub struct HostsArgs {
    /// Hosts (names or IP addresses), comma separated; the first becomes node 1.
    #[arg(long, value_delimiter = ',', required = true)]
    pub nodes: Vec<String>,
    /// HTTP API port on every host.
    #[arg(long, default_value_t = 6092)]
    pub api_port: u16,
    /// Raft and cluster-internal port on every host.
    #[arg(long, default_value_t = 5001)]
    pub raft_port: u16,
    #[command(flatten)]
    pub ssh: SshArgs,
}

impl HostsArgs {
    /// The host list, refusing empty entries, duplicates and characters that do not belong in
    /// a host name or address (they would end up in the node config).
    pub fn checked_nodes(&self) -> Result<Vec<String>> {
        let hosts: Vec<String> = self.nodes.iter().map(|h| h.trim().to_string()).collect();
        if hosts.is_empty() || hosts.iter().any(|h| h.is_empty()) {
            return Err(Error::bad_request(
                "--nodes needs a comma-separated list of hosts, e.g. dell-1,dell-2,dell-3",
            ));
        }
        for host in &hosts {
            check_host(host)?;
        }
        for (i, h) in hosts.iter().enumerate() {
            if hosts[..i].contains(h) {
                return Err(Error::bad_request(format!("--nodes lists {h} twice")));
            }
        }
        if self.api_port == self.raft_port {
            return Err(Error::bad_request("--api-port and --raft-port must differ"));
        }
        Ok(hosts)
    }

    pub fn ports(&self) -> Ports {
        Ports {
            api: self.api_port,
            raft: self.raft_port,
        }
    }
}

/// A host name or IP address: it reaches ssh's command line and the node config, so nothing
/// else (a leading `-` would be read as an ssh option).
pub fn check_host(host: &str) -> Result<()> {
    let charset = host
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | ':'));
    if host.is_empty() || host.starts_with('-') || !charset {
        return Err(Error::bad_request(format!(
            "{host:?} is not a host name or IP address (give the user with --user)"
        )));
    }
    Ok(())
}

/// `/_cluster/status` from the first host that answers, with the last failure otherwise.
pub async fn cluster_status(hosts: &[String], api_port: u16) -> Result<serde_json::Value> {
    let client = reqwest::Client::new();
    let mut last = String::from("no host listed");
    for host in hosts {
        let url = format!("http://{}/_cluster/status", address(host, api_port));
        match client
            .get(&url)
            .timeout(Duration::from_secs(3))
            .send()
            .await
        {
            Ok(r) if r.status().is_success() => return r.json().await.map_err(Error::internal),
            Ok(r) => last = format!("{url}: HTTP {}", r.status()),
            Err(e) => last = format!("{url}: {e}"),
        }
    }
    Err(Error::Unavailable(last))
}

/// Waits until every member is ready, every group has a leader and no replica lags.
pub async fn wait_healthy(hosts: &[String], api_port: u16, timeout: Duration) -> Result<()> {
    let ids: Vec<u64> = (1..=hosts.len() as u64).collect();
    let deadline = Instant::now() + timeout;
    loop {
        let last = match cluster_status(hosts, api_port).await {
            Ok(status) if crate::cluster::local::is_formed(&status, &ids) => return Ok(()),
            Ok(status) => not_formed_reason(&status),
            Err(e) => e.to_string(),
        };
        if Instant::now() > deadline {
            return Err(Error::Unavailable(format!(
                "the cluster is not healthy after {timeout:?}: {last} (see `sv-appliance logs HOST`)"
            )));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

fn not_formed_reason(status: &serde_json::Value) -> String {
    let down: Vec<String> = status["members"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|m| m["ready"] != true)
        .map(|m| format!("node {} not ready", m["id"]))
        .collect();
    if down.is_empty() {
        "some groups have no leader yet or a replica is catching up".to_string()
    } else {
        down.join(", ")
    }
}
