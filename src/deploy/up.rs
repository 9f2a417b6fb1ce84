//! `sv-appliance up --nodes H1,H2,H3`: install or upgrade the appliance on each host over SSH
//! and wait until the cluster is healthy. Every host is checked before any is changed; a
//! running node is restarted only when its binary, config or unit changed, one at a time.

use std::path::PathBuf;
use std::time::Duration;

use crate::deploy::layout::{
    ALIVE, ENV_FILE, Layout, Probe, ServiceManager, address, members_line, node_config,
    probe_script, sha256, sha256_file,
};
use crate::deploy::ssh::{Input, Ssh, quote};
use crate::deploy::{HostsArgs, wait_healthy};
use crate::error::{Error, Result};

pub struct UpOptions {
    pub hosts: HostsArgs,
    pub dry_run: bool,
    pub binary: Option<PathBuf>,
    pub wait: Duration,
    /// Copies of each partition; `None`: one per host.
    pub replication_factor: Option<usize>,
}

pub async fn run(options: UpOptions) -> Result<()> {
    let hosts = options.hosts.checked_nodes()?;
    let manager = options.hosts.ssh.service_manager;
    let ssh = options.hosts.ssh.client(options.dry_run);
    let ports = options.hosts.ports();
    let binary = match options.binary {
        Some(path) => path,
        None => std::env::current_exe()?,
    };
    let binary_sha = sha256_file(&binary)?;
    let replication_factor = options.replication_factor.unwrap_or(hosts.len());
    if !(1..=hosts.len()).contains(&replication_factor) {
        return Err(Error::bad_request(format!(
            "--replication-factor must be between 1 and the number of hosts ({}), got {replication_factor}",
            hosts.len()
        )));
    }

    // Every host is checked before any is changed, so a bad host leaves the others as they were.
    // A dry run reports what would stop a real one and goes on showing the changes.
    let mut probes = Vec::new();
    let mut blockers = Vec::new();
    for (i, host) in hosts.iter().enumerate() {
        let probe = Probe::parse(&ssh.probe(host, "check host", &probe_script(manager))?);
        let checked = probe
            .check_platform(host, manager)
            .and_then(|()| check_membership(&probe, host, &hosts, i, ports));
        match checked {
            Ok(()) => {}
            Err(e) if options.dry_run => {
                println!("[{host}] WOULD FAIL: {e}");
                blockers.push(e.to_string());
            }
            Err(e) => return Err(e),
        }
        probes.push(probe);
    }
    let token = cluster_token(&hosts, &probes)?;

    for (i, host) in hosts.iter().enumerate() {
        let probe = &probes[i];
        let layout = probe.layout();
        let installer = Installer {
            ssh: &ssh,
            host,
            layout: &layout,
            manager,
        };
        let config = node_config(&hosts, i, ports, &token, replication_factor, &layout);
        let unit = layout.unit_text();
        let mut changed: Vec<&str> = Vec::new();
        if probe.get("binary_sha") != binary_sha {
            changed.push("binary");
        }
        if probe.get("config_sha") != sha256(config.as_bytes()) {
            changed.push("config");
        }
        if manager == ServiceManager::Systemd && probe.get("unit_sha") != sha256(unit.as_bytes()) {
            changed.push("unit");
        }
        // A change installed by an earlier `up` that stopped before restarting the node.
        if probe.get("restart_pending") == "yes" {
            changed.push("restart pending");
        }
        let restart = probe.active() && !changed.is_empty();
        if restart {
            // Never take a node down while the cluster is not whole: with one node already
            // out, a restart would cost the majority.
            if !options.dry_run {
                wait_healthy(&hosts, ports.api, options.wait)
                    .await
                    .map_err(|e| {
                        Error::Unavailable(format!(
                            "{host}: not restarting it, the cluster is not healthy: {e}"
                        ))
                    })?;
            }
            installer.mark_restart_pending()?;
        }
        if manager == ServiceManager::Systemd && probe.get("user") != "yes" {
            // Before the config, which is made readable to its group.
            ssh.change(
                host,
                "create system user",
                "useradd --system --user-group --no-create-home --home-dir /var/lib/sv-appliance --shell /usr/sbin/nologin sv-appliance",
                Input::None,
            )?;
        }
        if changed.contains(&"binary") {
            installer.binary(&binary, &binary_sha)?;
        }
        if changed.contains(&"config") {
            installer.config(&config)?;
        }
        if probe.get("env_file") != "yes" {
            // It will hold OPENAI_API_KEY: root only (systemd and the supervisor start as root
            // or as the ssh user that wrote it).
            installer.file(
                "write environment file",
                &layout.env_file(),
                ENV_FILE,
                "600",
                None,
            )?;
        }
        if changed.contains(&"unit") {
            installer.file("install systemd unit", &layout.unit(), &unit, "644", None)?;
            ssh.change(
                host,
                "reload systemd",
                "systemctl daemon-reload",
                Input::None,
            )?;
        }
        let action = if !probe.active() {
            installer.start()?;
            "started"
        } else if !restart {
            "already running, nothing changed"
        } else {
            // Rolling upgrade: the next host waits until this one is back and caught up.
            installer.restart()?;
            if !options.dry_run {
                wait_healthy(&hosts, ports.api, options.wait).await?;
            }
            installer.clear_restart_pending()?;
            "restarted"
        };
        let what = if changed.is_empty() {
            "unchanged".to_string()
        } else {
            format!("new {}", changed.join(", "))
        };
        println!("{host}: node {} {what}; {action}", i + 1);
    }
    if !blockers.is_empty() {
        return Err(Error::bad_request(format!(
            "dry run: nothing was changed, and a real run would stop at: {}",
            blockers.join("; ")
        )));
    }
    if options.dry_run {
        println!("dry run: nothing was changed");
        return Ok(());
    }
    wait_healthy(&hosts, ports.api, options.wait).await?;
    println!("cluster healthy: every member ready, every partition has a leader");
    for (i, host) in hosts.iter().enumerate() {
        println!("  node {}: http://{}", i + 1, address(host, ports.api));
    }
    // Runs are recorded where `bench run` runs; given the hosts, it also reads the cluster
    // token from them and stores each run on every node, whose API serves them under /report/.
    let mut bench = format!("sv-appliance bench run all --nodes {}", hosts.join(","));
    if ports.api != 6092 {
        bench.push_str(&format!(" --api-port {}", ports.api));
    }
    if manager == ServiceManager::Process {
        bench.push_str(" --service-manager process");
    }
    println!(
        "  next, on this machine: `{bench}` with the same ssh options (SV-3 kills and restarts nodes through their service manager); the verdict is then at http://{}/report/ (and `sv-appliance report` serves this machine's runs on http://127.0.0.1:8080)",
        address(&hosts[0], ports.api)
    );
    Ok(())
}

/// Refuses to rewrite a host's node id or member list: the node's raft log and votes belong to
/// that identity, and membership changes are not built.
fn check_membership(
    probe: &Probe,
    host: &str,
    hosts: &[String],
    index: usize,
    ports: crate::deploy::layout::Ports,
) -> Result<()> {
    let current_id = probe.get("node_id");
    if current_id.is_empty() {
        return Ok(()); // nothing installed yet
    }
    let wanted = members_line(&node_config(
        hosts,
        index,
        ports,
        "",
        hosts.len(),
        &probe.layout(),
    ));
    let current = probe.get("members");
    if current_id != (index + 1).to_string() || current != wanted {
        return Err(Error::Conflict(format!(
            "{host}: check host: it is node {current_id} of [{current}]; this would make it node {} of [{wanted}]. Changing node ids, members or ports is not built: keep --nodes in the same order with the same ports, or `down --purge` every host and delete /etc/sv-appliance/node.toml to start a new cluster",
            index + 1
        )));
    }
    Ok(())
}

/// The token already on the hosts (a rerun keeps it), or a new one. Two different tokens mean
/// these hosts are not one cluster: refuse rather than split them.
fn cluster_token(hosts: &[String], probes: &[Probe]) -> Result<String> {
    let found: Vec<(&String, &str)> = hosts
        .iter()
        .zip(probes)
        .map(|(h, p)| (h, p.get("token")))
        .filter(|(_, t)| !t.is_empty())
        .collect();
    match found.first() {
        None => crate::cluster::local::random_token(),
        Some((_, first)) => {
            if let Some((other, _)) = found.iter().find(|(_, t)| t != first) {
                return Err(Error::Conflict(format!(
                    "{} and {other} carry different cluster tokens: they belong to different clusters (run `down --purge` on the one to reuse, and remove its /etc/sv-appliance/node.toml)",
                    found[0].0
                )));
            }
            Ok(first.to_string())
        }
    }
}

/// The changes on one host.
struct Installer<'a> {
    ssh: &'a Ssh,
    host: &'a str,
    layout: &'a Layout,
    manager: ServiceManager,
}

impl Installer<'_> {
    /// Copies the binary beside its place, checks the checksum there, and renames it in.
    fn binary(&self, path: &std::path::Path, sha: &str) -> Result<()> {
        let target = self.layout.binary();
        let tmp = format!("{target}.new");
        let script = format!(
            "set -e; mkdir -p {dir}; cat > {tmp}; if ! echo {check} | sha256sum -c --status -; then rm -f {tmp}; echo 'checksum mismatch after copy' >&2; exit 1; fi; chmod 755 {tmp}; if ! {tmp} --version >/dev/null; then rm -f {tmp}; echo 'the new binary does not run on this host' >&2; exit 1; fi; mv -f {tmp} {target}",
            dir = quote(parent(&target)),
            tmp = quote(&tmp),
            check = quote(&format!("{sha}  {tmp}")),
            target = quote(&target),
        );
        self.ssh
            .change(self.host, "install binary", &script, Input::File(path))?;
        Ok(())
    }

    /// Written before the first change on a running node and removed after its restart, so an
    /// `up` interrupted in between still restarts it on the next run.
    fn mark_restart_pending(&self) -> Result<()> {
        let marker = self.restart_marker();
        let script = format!(
            "mkdir -p {} && touch {}",
            quote(parent(&marker)),
            quote(&marker)
        );
        self.ssh
            .change(self.host, "mark restart pending", &script, Input::None)?;
        Ok(())
    }

    fn clear_restart_pending(&self) -> Result<()> {
        let script = format!("rm -f {}", quote(&self.restart_marker()));
        self.ssh
            .change(self.host, "clear restart pending", &script, Input::None)?;
        Ok(())
    }

    fn restart_marker(&self) -> String {
        format!("{}/restart-pending", parent(&self.layout.config()))
    }

    fn config(&self, text: &str) -> Result<()> {
        // It holds the cluster token: readable by the service only.
        let (mode, owner) = match self.manager {
            ServiceManager::Systemd => ("640", Some("root:sv-appliance")),
            ServiceManager::Process => ("600", None),
        };
        self.file("write config", &self.layout.config(), text, mode, owner)
    }

    /// Writes `text` to `path` atomically (temporary file, then rename).
    fn file(
        &self,
        step: &str,
        path: &str,
        text: &str,
        mode: &str,
        owner: Option<&str>,
    ) -> Result<()> {
        let tmp = format!("{path}.new");
        let chown = owner.map_or(String::new(), |o| format!("chown {o} {}; ", quote(&tmp)));
        let script = format!(
            "set -e; mkdir -p {dir}; umask 077; cat > {tmp}; chmod {mode} {tmp}; {chown}mv -f {tmp} {path}",
            dir = quote(parent(path)),
            tmp = quote(&tmp),
            path = quote(path),
        );
        self.ssh
            .change(self.host, step, &script, Input::Bytes(text.as_bytes()))?;
        Ok(())
    }

    fn start(&self) -> Result<()> {
        let script = match self.manager {
            // --no-block: a lone first node is not ready until a majority runs.
            ServiceManager::Systemd => "systemctl reset-failed sv-appliance 2>/dev/null; systemctl enable --now --no-block sv-appliance".to_string(),
            ServiceManager::Process => start_supervisor_script(self.layout),
        };
        self.ssh
            .change(self.host, "start service", &script, Input::None)?;
        Ok(())
    }

    fn restart(&self) -> Result<()> {
        let script = match self.manager {
            ServiceManager::Systemd => "systemctl restart sv-appliance".to_string(),
            ServiceManager::Process => format!(
                "{} && {}",
                stop_supervisor_script(self.layout),
                start_supervisor_script(self.layout)
            ),
        };
        self.ssh
            .change(self.host, "restart service", &script, Input::None)?;
        Ok(())
    }
}

fn parent(path: &str) -> &str {
    path.rsplit_once('/').map_or(".", |(dir, _)| dir)
}

/// Starts `supervise` detached from the ssh session (all its descriptors redirected, its own
/// session), with the environment file loaded, and waits until it has written its pid file.
pub fn start_supervisor_script(layout: &Layout) -> String {
    let state = quote(&layout.state_dir());
    let env = quote(&layout.env_file());
    let pid = quote(&layout.supervisor_pid());
    format!(
        "(set -e; mkdir -p {state}; if [ -f {env} ]; then set -a; . {env}; set +a; fi; rm -f {pid}; cd /; setsid -f {bin} supervise --config {config} --run-dir {state} </dev/null >>{log} 2>&1; for i in $(seq 100); do [ -f {pid} ] && exit 0; sleep 0.1; done; echo \"the supervisor did not start; see {log}\" >&2; exit 1)",
        bin = quote(&layout.binary()),
        config = quote(&layout.config()),
        log = quote(&layout.node_log()),
    )
}

/// Stops the supervisor (which stops the node gracefully) and waits until it is gone; then a
/// node orphaned by a supervisor that was killed, so `down` never leaves one serving.
pub fn stop_supervisor_script(layout: &Layout) -> String {
    let pid = quote(&layout.supervisor_pid());
    let node_pid = quote(&format!("{}/node.pid", layout.state_dir()));
    format!(
        "(pid=$(cat {pid} 2>/dev/null); if [ -n \"$pid\" ] && {ALIVE}; then kill -TERM \"$pid\"; for i in $(seq 700); do {ALIVE} || break; sleep 0.1; done; if {ALIVE}; then echo \"supervisor $pid did not stop within 70 s\" >&2; exit 1; fi; fi; pid=$(cat {node_pid} 2>/dev/null); if [ -n \"$pid\" ] && [ -r /proc/$pid/cmdline ] && tr '\\0' ' ' < /proc/$pid/cmdline | grep -q ' serve '; then kill -TERM \"$pid\"; for i in $(seq 700); do [ -d /proc/$pid ] && [ \"$(sed 's/.*) //' /proc/$pid/stat | cut -d' ' -f1)\" != Z ] || exit 0; sleep 0.1; done; echo \"node $pid did not stop within 70 s\" >&2; exit 1; fi; exit 0)"
    )
}
