//! `sv-appliance up --nodes H1,H2,H3`: install or upgrade the appliance on each host over SSH
//! and wait until the cluster is healthy. Every host is checked before any is changed; a
//! running node is restarted only when its binary, config or unit changed, one at a time.

use std::path::PathBuf;
use std::time::Duration;

use crate::deploy::layout::{
    ALIVE, ENV_FILE, Layout, Probe, ServiceManager, address, node_config, probe_script, sha256,
    sha256_file,
};
use crate::deploy::ssh::{Input, Ssh, quote};
use crate::deploy::{HostsArgs, wait_healthy};
use crate::error::{Error, Result};

pub struct UpOptions {
    pub hosts: HostsArgs,
    pub dry_run: bool,
    pub binary: Option<PathBuf>,
    pub wait: Duration,
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

    // Every host is checked before any is changed, so a bad host leaves the others as they were.
    let mut probes = Vec::new();
    for host in &hosts {
        let probe = Probe::parse(&ssh.probe(host, "check host", &probe_script(manager))?);
        probe.check_platform(host)?;
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
        let mut changed: Vec<&str> = Vec::new();
        if probe.get("binary_sha") != binary_sha {
            installer.binary(&binary, &binary_sha)?;
            changed.push("binary");
        }
        let config = node_config(&hosts, i, ports, &token, &layout);
        if probe.get("config_sha") != sha256(config.as_bytes()) {
            installer.config(&config)?;
            changed.push("config");
        }
        if probe.get("env_file") != "yes" {
            installer.file(
                "write environment file",
                &layout.env_file(),
                ENV_FILE,
                "644",
                None,
            )?;
        }
        if manager == ServiceManager::Systemd {
            if probe.get("user") != "yes" {
                ssh.change(
                    host,
                    "create system user",
                    "useradd --system --no-create-home --home-dir /var/lib/sv-appliance --shell /usr/sbin/nologin sv-appliance",
                    Input::None,
                )?;
            }
            let unit = layout.unit_text();
            if probe.get("unit_sha") != sha256(unit.as_bytes()) {
                installer.file("install systemd unit", &layout.unit(), &unit, "644", None)?;
                ssh.change(
                    host,
                    "reload systemd",
                    "systemctl daemon-reload",
                    Input::None,
                )?;
                changed.push("unit");
            }
        }
        let action = if !probe.active() {
            installer.start()?;
            "started"
        } else if changed.is_empty() {
            "already running, nothing changed"
        } else {
            // Rolling upgrade: the next host waits until this one is back and caught up.
            installer.restart()?;
            if !options.dry_run {
                wait_healthy(&hosts, ports.api, options.wait).await?;
            }
            "restarted"
        };
        let what = if changed.is_empty() {
            "unchanged".to_string()
        } else {
            format!("new {}", changed.join(", "))
        };
        println!("{host}: node {} {what}; {action}", i + 1);
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
    println!(
        "  report page: not built yet (the report at :8080 comes with the scale-test harness)"
    );
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
            "set -e; mkdir -p {dir}; cat > {tmp}; if ! echo {check} | sha256sum -c --status -; then rm -f {tmp}; echo 'checksum mismatch after copy' >&2; exit 1; fi; chmod 755 {tmp}; mv -f {tmp} {target}",
            dir = quote(parent(&target)),
            tmp = quote(&tmp),
            check = quote(&format!("{sha}  {tmp}")),
            target = quote(&target),
        );
        self.ssh
            .change(self.host, "install binary", &script, Input::File(path))?;
        Ok(())
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
        "(set -e; mkdir -p {state}; if [ -f {env} ]; then set -a; . {env}; set +a; fi; cd /; setsid -f {bin} supervise --config {config} --run-dir {state} </dev/null >>{log} 2>&1; for i in $(seq 100); do [ -f {pid} ] && exit 0; sleep 0.1; done; echo \"the supervisor did not start; see {log}\" >&2; exit 1)",
        bin = quote(&layout.binary()),
        config = quote(&layout.config()),
        log = quote(&layout.node_log()),
    )
}

/// Stops the supervisor (which stops the node gracefully) and waits until it is gone.
pub fn stop_supervisor_script(layout: &Layout) -> String {
    let pid = quote(&layout.supervisor_pid());
    format!(
        "(pid=$(cat {pid} 2>/dev/null) || exit 0; kill -TERM \"$pid\" 2>/dev/null || exit 0; for i in $(seq 700); do {ALIVE} || exit 0; sleep 0.1; done; echo \"supervisor $pid did not stop within 70 s\" >&2; exit 1)"
    )
}
