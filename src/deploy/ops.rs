//! `down`, `status` and `logs` for a deployed cluster.

use serde_json::Value;

use crate::deploy::layout::{Probe, ServiceManager, address, probe_script};
use crate::deploy::ssh::{Input, quote};
use crate::deploy::up::stop_supervisor_script;
use crate::deploy::{HostsArgs, SshArgs, cluster_status};
use crate::error::{Error, Result};

/// Stops and disables the service on every host; `purge` also deletes the data. A host that
/// fails does not stop the others: every host is tried, the failures reported at the end.
pub fn down(hosts: &HostsArgs, purge: bool, dry_run: bool) -> Result<()> {
    let nodes = hosts.checked_nodes()?;
    let manager = hosts.ssh.service_manager;
    let ssh = hosts.ssh.client(dry_run);
    let mut failures = Vec::new();
    for host in &nodes {
        let stop = || -> Result<()> {
            let probe = Probe::parse(&ssh.probe(host, "check host", &probe_script(manager))?);
            let layout = probe.layout();
            let script = match manager {
                ServiceManager::Systemd => {
                    "if systemctl cat sv-appliance >/dev/null 2>&1; then systemctl disable --now sv-appliance; fi".to_string()
                }
                ServiceManager::Process => stop_supervisor_script(&layout),
            };
            ssh.change(host, "stop service", &script, Input::None)?;
            if purge {
                ssh.change(
                    host,
                    "delete data",
                    &format!("rm -rf {}", quote(&layout.data_dir())),
                    Input::None,
                )?;
            }
            Ok(())
        };
        match stop() {
            Ok(()) => println!(
                "{host}: stopped, data {}",
                if purge { "deleted" } else { "kept" }
            ),
            Err(e) => {
                println!("{host}: FAILED: {e}");
                failures.push(e.to_string());
            }
        }
    }
    if failures.is_empty() {
        Ok(())
    } else {
        Err(Error::Unavailable(failures.join("; ")))
    }
}

/// Per host: service state, version, raft role, partitions led and lag. Fails (exit 1) when
/// a host's service is down or the cluster is not healthy, after printing the table.
pub async fn status(hosts: &HostsArgs) -> Result<()> {
    let nodes = hosts.checked_nodes()?;
    let manager = hosts.ssh.service_manager;
    let ssh = hosts.ssh.client(false);
    let cluster = cluster_status(&nodes, hosts.api_port).await.ok();
    println!(
        "{:<20} {:>4}  {:<10} {:<22} {:<9} {:>4} {:>8}  api",
        "host", "node", "service", "version", "meta", "led", "max lag"
    );
    let mut problems = Vec::new();
    for (i, host) in nodes.iter().enumerate() {
        let id = i as u64 + 1;
        let (service, version) = match ssh.probe(host, "check host", &probe_script(manager)) {
            Ok(text) => {
                let probe = Probe::parse(&text);
                let state = probe.get("active");
                let state = if state.is_empty() { "unknown" } else { state }.to_string();
                (state, probe.get("version").to_string())
            }
            Err(e) => {
                problems.push(e.to_string());
                ("unreachable".to_string(), String::new())
            }
        };
        if service != "active" && service != "unreachable" {
            problems.push(format!("{host}: service {service}"));
        }
        let view = cluster.as_ref().map(|c| member_view(c, id));
        let (role, led, lag) = view.unwrap_or_else(|| ("?".into(), "?".into(), "?".into()));
        println!(
            "{host:<20} {id:>4}  {service:<10} {version:<22} {role:<9} {led:>4} {lag:>8}  http://{}",
            address(host, hosts.api_port)
        );
    }
    match &cluster {
        None => problems.push("no host answered /_cluster/status".to_string()),
        Some(c) => {
            let ids: Vec<u64> = (1..=nodes.len() as u64).collect();
            if !crate::cluster::local::is_formed(c, &ids) {
                problems.push(
                    "the cluster is not healthy (a member not ready, a group without leader, or a replica catching up)"
                        .to_string(),
                );
            }
        }
    }
    if problems.is_empty() {
        println!("cluster healthy");
        Ok(())
    } else {
        Err(Error::Unavailable(format!(
            "degraded: {}",
            problems.join("; ")
        )))
    }
}

/// The member's role in the metadata group, partitions it leads and its largest lag.
fn member_view(status: &Value, id: u64) -> (String, String, String) {
    let mut role = "-".to_string();
    let mut led = 0;
    let mut lag: Option<u64> = None;
    for g in status["groups"].as_array().into_iter().flatten() {
        let leads = g["leader"].as_u64() == Some(id);
        if g["group"] == crate::cluster::network::META_GROUP {
            role = if leads { "leader" } else { "follower" }.to_string();
        } else if leads {
            led += 1;
        }
        for r in g["replicas"].as_array().into_iter().flatten() {
            if r["node"].as_u64() == Some(id) {
                lag = lag.max(r["lag"].as_u64());
            }
        }
    }
    let reachable = status["members"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|m| m["id"].as_u64() == Some(id) && m["reachable"] == true);
    if !reachable {
        return ("down".into(), "-".into(), "-".into());
    }
    (
        role,
        led.to_string(),
        lag.map_or("-".to_string(), |l| l.to_string()),
    )
}

/// The node's recent log lines on `host`: the unit's journal, or the supervisor's log.
pub fn logs(host: &str, ssh_args: &SshArgs, lines: usize) -> Result<()> {
    crate::deploy::check_host(host)?;
    let ssh = ssh_args.client(false);
    let script = match ssh_args.service_manager {
        ServiceManager::Systemd => format!("journalctl -u sv-appliance --no-pager -n {lines}"),
        ServiceManager::Process => {
            format!("tail -n {lines} \"${{SV_INSTALL_ROOT:-}}/var/lib/sv-appliance/node.log\"")
        }
    };
    print!("{}", ssh.probe(host, "read logs", &script)?);
    Ok(())
}
