//! Where the appliance lives on a host, what `up` finds there (the probe), and the files it
//! writes: the node config, the systemd unit, the environment file.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};

use crate::error::{Error, Result};

/// The unit with `@BINARY@`, `@CONFIG@`, `@ENV_FILE@` and `@STATE_DIR@` to fill in.
pub const UNIT_TEMPLATE: &str = include_str!("../../systemd/sv-appliance.service");

/// Written once; the operator edits it and `up` never overwrites it (the package ships the same).
pub const ENV_FILE: &str = include_str!("../../packaging/sv-appliance.default");

/// Who keeps the node running on a host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ServiceManager {
    /// A systemd unit (`systemctl enable --now`).
    Systemd,
    /// `sv-appliance supervise` started in the background: for hosts without systemd as PID 1
    /// (containers, tests).
    Process,
}

/// Paths on one host. `root` is empty on a real host; a host that sets `SV_INSTALL_ROOT` in
/// its ssh environment gets every path under it (several test hosts on one machine).
#[derive(Debug, Clone)]
pub struct Layout {
    pub root: String,
}

impl Layout {
    pub fn binary(&self) -> String {
        format!("{}/usr/local/bin/sv-appliance", self.root)
    }
    pub fn config(&self) -> String {
        format!("{}/etc/sv-appliance/node.toml", self.root)
    }
    pub fn env_file(&self) -> String {
        format!("{}/etc/default/sv-appliance", self.root)
    }
    pub fn unit(&self) -> String {
        format!("{}/etc/systemd/system/sv-appliance.service", self.root)
    }
    pub fn state_dir(&self) -> String {
        format!("{}/var/lib/sv-appliance", self.root)
    }
    pub fn data_dir(&self) -> String {
        format!("{}/data", self.state_dir())
    }
    /// The process supervisor's pid file (process manager only).
    pub fn supervisor_pid(&self) -> String {
        format!("{}/supervisor.pid", self.state_dir())
    }
    /// The node's output under the process supervisor (systemd uses the journal).
    pub fn node_log(&self) -> String {
        format!("{}/node.log", self.state_dir())
    }

    pub fn unit_text(&self) -> String {
        UNIT_TEMPLATE
            .replace("@BINARY@", &self.binary())
            .replace("@CONFIG@", &self.config())
            .replace("@ENV_FILE@", &self.env_file())
            .replace("@STATE_DIR@", &self.state_dir())
    }
}

/// Shell test: is `$pid` a live supervisor? A zombie is not (containers often run an init that
/// never reaps, and `kill -0` succeeds on a zombie), and neither is an unrelated process that
/// reused the pid of a stale pid file (after a reboot).
pub const ALIVE: &str = r#"[ -r /proc/$pid/stat ] && [ "$(sed 's/.*) //' /proc/$pid/stat | cut -d' ' -f1)" != Z ] && tr '\0' ' ' < /proc/$pid/cmdline | grep -q ' supervise '"#;

/// The read-only script that reports a host's state as `key=value` lines.
pub fn probe_script(manager: ServiceManager) -> String {
    let service = match manager {
        ServiceManager::Systemd => {
            "command -v systemctl >/dev/null && echo \"active=$(systemctl is-active sv-appliance 2>/dev/null)\"".to_string()
        }
        ServiceManager::Process => {
            format!(
            "pid=$(cat \"$R/var/lib/sv-appliance/supervisor.pid\" 2>/dev/null); if [ -n \"$pid\" ] && {ALIVE}; then echo active=active; echo \"pid=$pid\"; else echo active=inactive; fi"
        )
        }
    };
    format!(
        r#"R="${{SV_INSTALL_ROOT:-}}"
echo "os=$(uname -s)"
echo "arch=$(uname -m)"
echo "root=$R"
for t in sha256sum sed setsid; do command -v $t >/dev/null || echo "missing=$t"; done
echo "binary_sha=$(sha256sum "$R/usr/local/bin/sv-appliance" 2>/dev/null | cut -d' ' -f1)"
echo "config_sha=$(sha256sum "$R/etc/sv-appliance/node.toml" 2>/dev/null | cut -d' ' -f1)"
echo "unit_sha=$(sha256sum "$R/etc/systemd/system/sv-appliance.service" 2>/dev/null | cut -d' ' -f1)"
echo "token=$(sed -n 's/^token = "\([^"]*\)"$/\1/p' "$R/etc/sv-appliance/node.toml" 2>/dev/null)"
echo "node_id=$(sed -n 's/^node_id = //p' "$R/etc/sv-appliance/node.toml" 2>/dev/null)"
echo "members=$(sed -n 's/^  {{ \(id = .*\) }},$/\1/p' "$R/etc/sv-appliance/node.toml" 2>/dev/null | tr '\n' ';')"
[ -e "$R/etc/sv-appliance/restart-pending" ] && echo restart_pending=yes
[ -d /run/systemd/system ] && echo systemd=yes
echo "uid=$(id -u)"
echo "version=$("$R/usr/local/bin/sv-appliance" --version 2>/dev/null)"
[ -e "$R/etc/default/sv-appliance" ] && echo env_file=yes
id -u sv-appliance >/dev/null 2>&1 && echo user=yes
{service}
true
"#
    )
}

/// A host as the probe found it.
#[derive(Debug, Clone, Default)]
pub struct Probe {
    pub values: HashMap<String, String>,
}

impl Probe {
    pub fn parse(text: &str) -> Self {
        let values = text
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
            .collect();
        Self { values }
    }

    pub fn get(&self, key: &str) -> &str {
        self.values.get(key).map_or("", |v| v.as_str())
    }

    pub fn layout(&self) -> Layout {
        Layout {
            root: self.get("root").trim_end_matches('/').to_string(),
        }
    }

    pub fn active(&self) -> bool {
        self.get("active") == "active"
    }

    /// Refuses a host this binary (or this service manager) cannot run on, naming what is wrong.
    pub fn check_platform(&self, host: &str, manager: ServiceManager) -> Result<()> {
        let (os, arch) = (self.get("os"), self.get("arch"));
        if os != "Linux" || arch != std::env::consts::ARCH {
            return Err(Error::bad_request(format!(
                "{host}: check host: this binary is for Linux {}, the host runs {os} {arch}",
                std::env::consts::ARCH
            )));
        }
        if manager == ServiceManager::Systemd {
            if self.get("systemd") != "yes" {
                return Err(Error::bad_request(format!(
                    "{host}: check host: systemd is not running there (not PID 1); use --service-manager process"
                )));
            }
            if self.get("uid") != "0" {
                return Err(Error::bad_request(format!(
                    "{host}: check host: installing a systemd unit needs root; log in as root (--user root)"
                )));
            }
        }
        // Several missing tools collapse into one key: naming one is enough to act on.
        let missing = self.get("missing");
        if !missing.is_empty() {
            return Err(Error::bad_request(format!(
                "{host}: check host: `{missing}` is not installed there"
            )));
        }
        Ok(())
    }
}

/// The member list of a config as the probe reports it: `id = 1, raft = "…", api = "…";…`.
pub fn members_line(config: &str) -> String {
    config
        .lines()
        .filter_map(|l| l.strip_prefix("  { ")?.strip_suffix(" },"))
        .filter(|l| l.starts_with("id = "))
        .map(|l| format!("{l};"))
        .collect()
}

/// API and raft ports, the same on every host.
#[derive(Debug, Clone, Copy)]
pub struct Ports {
    pub api: u16,
    pub raft: u16,
}

/// `host:port` as peers dial it (brackets around an IPv6 literal).
pub fn address(host: &str, port: u16) -> String {
    match host.parse::<IpAddr>() {
        Ok(ip) => SocketAddr::new(ip, port).to_string(),
        Err(_) => format!("{host}:{port}"),
    }
}

/// Where a node listens: the host's address when it was given as an IP; all interfaces when
/// it was given by name (on Debian a host's own name resolves to 127.0.1.1, which peers could
/// not reach).
pub fn bind_address(host: &str, port: u16) -> String {
    match host.parse::<IpAddr>() {
        Ok(ip) => SocketAddr::new(ip, port).to_string(),
        Err(_) => format!("0.0.0.0:{port}"),
    }
}

/// The node config `up` writes on host `index` (node id `index + 1`) of a cluster keeping
/// `replication_factor` copies of each partition. Deterministic, so a rerun with the same
/// hosts and options finds it unchanged.
pub fn node_config(
    hosts: &[String],
    index: usize,
    ports: Ports,
    token: &str,
    replication_factor: usize,
    layout: &Layout,
) -> String {
    let members: Vec<String> = hosts
        .iter()
        .enumerate()
        .map(|(i, h)| {
            format!(
                "  {{ id = {}, raft = \"{}\", api = \"{}\" }},",
                i + 1,
                address(h, ports.raft),
                address(h, ports.api)
            )
        })
        .collect();
    format!(
        "# Written by `sv-appliance up --nodes {}`; rerunning `up` rewrites it.\n# Every key of configs/default.toml can be added here.\nnode_id = {}\ndata_dir = \"{}\"\n\n[api]\nlisten = \"{}\"\n\n[cluster]\nraft_listen = \"{}\"\ntoken = \"{token}\"\nreplication_factor = {}\nmembers = [\n{}\n]\n",
        hosts.join(","),
        index + 1,
        layout.data_dir(),
        bind_address(&hosts[index], ports.api),
        bind_address(&hosts[index], ports.raft),
        replication_factor,
        members.join("\n")
    )
}

/// Lowercase hex SHA-256 of a file, streamed.
pub fn sha256_file(path: &std::path::Path) -> Result<String> {
    let file = std::fs::File::open(path)
        .map_err(|e| Error::bad_request(format!("cannot read {}: {e}", path.display())))?;
    Ok(crate::checksum::hex_digest_of::<sha2::Sha256>(file)?)
}

pub fn sha256(bytes: &[u8]) -> String {
    use sha2::Digest;
    crate::checksum::hex(&sha2::Sha256::digest(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap as Map;

    #[test]
    fn the_written_config_is_a_valid_cluster_member_config() {
        let hosts: Vec<String> = ["10.0.0.1", "dell-2", "10.0.0.3"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let layout = Layout {
            root: "/srv/x".into(),
        };
        let ports = Ports {
            api: 6092,
            raft: 5001,
        };
        let text = node_config(&hosts, 1, ports, "0123456789abcdef0123", 3, &layout);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node.toml");
        std::fs::write(&path, &text).unwrap();
        let config = crate::config::NodeConfig::load(
            Some(&path),
            &Map::new(),
            &crate::config::ConfigOverrides::default(),
        )
        .unwrap();
        assert_eq!(config.node_id, 2);
        assert_eq!(
            config.api.listen, "0.0.0.0:6092",
            "a named host listens everywhere"
        );
        assert_eq!(config.cluster.members[0].raft, "10.0.0.1:5001");
        assert_eq!(config.cluster.members[1].api, "dell-2:6092");
        assert_eq!(config.cluster.replication_factor, 3);
        assert_eq!(
            config.data_dir,
            std::path::PathBuf::from("/srv/x/var/lib/sv-appliance/data")
        );
        let first = node_config(&hosts, 0, ports, "0123456789abcdef0123", 3, &layout);
        assert!(first.contains("listen = \"10.0.0.1:6092\""), "{first}");
        // Deterministic: the same inputs give the same bytes (idempotent reruns).
        assert_eq!(
            text,
            node_config(&hosts, 1, ports, "0123456789abcdef0123", 3, &layout)
        );
    }

    #[test]
    fn a_host_of_another_platform_is_refused_by_name() {
        let probe = Probe::parse("os=Darwin\narch=arm64\nroot=\n");
        let err = probe
            .check_platform("mac-1", ServiceManager::Process)
            .unwrap_err()
            .to_string();
        assert!(err.contains("mac-1") && err.contains("Darwin"), "{err}");
        let ok = Probe::parse(&format!("os=Linux\narch={}\n", std::env::consts::ARCH));
        ok.check_platform("h", ServiceManager::Process).unwrap();
        let err = ok
            .check_platform("h", ServiceManager::Systemd)
            .unwrap_err()
            .to_string();
        assert!(err.contains("systemd is not running"), "{err}");
        let missing = Probe::parse(&format!(
            "os=Linux\narch={}\nmissing=setsid\n",
            std::env::consts::ARCH
        ));
        let err = missing
            .check_platform("h", ServiceManager::Process)
            .unwrap_err()
            .to_string();
        assert!(err.contains("setsid"), "{err}");
    }
}
