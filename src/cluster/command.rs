//! The `cluster` subcommand: start, inspect, crash, restart and stop a local cluster.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use clap::Subcommand;

use crate::cluster::local::{LocalCluster, render_status};
use crate::error::{Error, Result};

#[derive(Debug, Subcommand)]
pub enum ClusterCommand {
    /// Start N node processes on loopback ports (data and logs under --dir) and wait until
    /// the metadata group and every partition have a leader.
    Up {
        /// Number of local nodes.
        #[arg(long, value_name = "N")]
        local: usize,
        #[arg(long, default_value = "./sv-cluster")]
        dir: PathBuf,
        /// Default partitions per topic.
        #[arg(long, default_value_t = 6)]
        partitions: u32,
        /// Replicas per partition (default: every node). Below the node count each node holds
        /// some partitions and queries fan out to the others.
        #[arg(long, value_name = "N")]
        replication_factor: Option<usize>,
        /// Seconds to wait for leaders.
        #[arg(long, default_value_t = 60)]
        timeout: u64,
    },
    /// Add a node to the running local cluster: it joins the metadata group through the
    /// leaders (existing partitions stay where they are; new topics are placed over every
    /// member), then the other nodes restart one at a time to learn its address.
    AddMember {
        #[arg(long, default_value = "./sv-cluster")]
        dir: PathBuf,
        #[arg(long, default_value_t = 60)]
        timeout: u64,
    },
    /// Remove node N from every raft group of the running local cluster, stop it (its data
    /// folder is kept) and restart the others without it. Partitions it held keep their other
    /// replicas (one fewer).
    RemoveMember {
        node: u64,
        #[arg(long, default_value = "./sv-cluster")]
        dir: PathBuf,
        #[arg(long, default_value_t = 60)]
        timeout: u64,
    },
    /// Members, group leaders, and each replica's applied index and lag.
    Status {
        #[arg(long, default_value = "./sv-cluster")]
        dir: PathBuf,
        /// Print the JSON from `/_cluster/status` instead of the table.
        #[arg(long)]
        json: bool,
    },
    /// SIGKILL node N (a crash: nothing is flushed).
    Kill {
        node: u64,
        #[arg(long, default_value = "./sv-cluster")]
        dir: PathBuf,
    },
    /// Stop node N if it runs and start it again; waits until the cluster is formed.
    Restart {
        node: u64,
        #[arg(long, default_value = "./sv-cluster")]
        dir: PathBuf,
        #[arg(long, default_value_t = 60)]
        timeout: u64,
    },
    /// Stop every node (data kept unless --purge).
    Down {
        #[arg(long, default_value = "./sv-cluster")]
        dir: PathBuf,
        #[arg(long)]
        purge: bool,
    },
}

pub async fn run(command: ClusterCommand) -> Result<()> {
    match command {
        ClusterCommand::RemoveMember { node, dir, timeout } => {
            let started = Instant::now();
            let mut cluster = LocalCluster::load(&dir)?;
            cluster
                .remove_member(node, Duration::from_secs(timeout))
                .await?;
            println!(
                "node {node} removed in {:.2} s",
                started.elapsed().as_secs_f64()
            );
            let status = cluster.wait_formed(Duration::from_secs(timeout)).await?;
            print!("{}", render_status(&status));
            Ok(())
        }
        ClusterCommand::AddMember { dir, timeout } => {
            let started = Instant::now();
            let mut cluster = LocalCluster::load(&dir)?;
            let i = cluster.add_member(Duration::from_secs(timeout)).await?;
            let n = &cluster.nodes[i];
            println!(
                "node {} joined in {:.2} s: api {}  raft {}",
                n.id,
                started.elapsed().as_secs_f64(),
                n.base_url(),
                n.raft
            );
            let status = cluster.wait_formed(Duration::from_secs(timeout)).await?;
            print!("{}", render_status(&status));
            Ok(())
        }
        ClusterCommand::Up {
            local,
            dir,
            partitions,
            replication_factor,
            timeout,
        } => {
            let started = Instant::now();
            let mut env = std::collections::BTreeMap::new();
            if let Some(rf) = replication_factor {
                if !(1..=local).contains(&rf) {
                    return Err(Error::bad_request(format!(
                        "--replication-factor must be between 1 and --local ({local}), got {rf}"
                    )));
                }
                env.insert("SV_REPLICATION_FACTOR".to_string(), rf.to_string());
            }
            let cluster = LocalCluster::up_with_env(&dir, local, partitions, env)?;
            let status = cluster.wait_formed(Duration::from_secs(timeout)).await?;
            println!(
                "local cluster of {local} formed in {:.2} s (data and logs in {})",
                started.elapsed().as_secs_f64(),
                cluster.dir.display()
            );
            for n in &cluster.nodes {
                println!("  node {}: api {}  raft {}", n.id, n.base_url(), n.raft);
            }
            print!("{}", render_status(&status));
            Ok(())
        }
        ClusterCommand::Status { dir, json } => {
            let cluster = LocalCluster::load(&dir)?;
            let status = cluster.status_from(&reqwest::Client::new()).await?;
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&status).map_err(Error::internal)?
                );
            } else {
                print!("{}", render_status(&status));
            }
            Ok(())
        }
        ClusterCommand::Kill { node, dir } => {
            let mut cluster = LocalCluster::load(&dir)?;
            let i = cluster.index(node)?;
            cluster.kill(i)?;
            println!("node {node} killed (SIGKILL)");
            Ok(())
        }
        ClusterCommand::Restart { node, dir, timeout } => {
            let mut cluster = LocalCluster::load(&dir)?;
            let i = cluster.index(node)?;
            let started = Instant::now();
            cluster.restart(i)?;
            cluster.wait_formed(Duration::from_secs(timeout)).await?;
            println!(
                "node {node} restarted and caught up in {:.2} s",
                started.elapsed().as_secs_f64()
            );
            Ok(())
        }
        ClusterCommand::Down { dir, purge } => {
            let mut cluster = LocalCluster::load(&dir)?;
            cluster.down(purge)?;
            println!("local cluster in {} stopped", dir.display());
            Ok(())
        }
    }
}
