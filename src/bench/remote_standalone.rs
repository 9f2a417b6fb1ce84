//! A plan's standalone-node baseline on real hosts: one extra node process started over ssh on
//! the first deployed host, beside the node `up` deployed there, with that node's settings but
//! no cluster, its own data directory and a port the kernel picks; stopped and deleted after.

use crate::bench::faults::DeployedHosts;
use crate::deploy::layout::address;
use crate::deploy::ssh::{Input, Ssh, quote};
use crate::error::{Error, Result};

/// How long the standalone node may take to open its data and listen.
const START_SECS: u32 = 60;

/// A standalone node running on a deployed host; [`RemoteStandalone::stop`] removes it.
#[derive(Debug)]
pub struct RemoteStandalone {
    pub host: String,
    pub base_url: String,
    /// Its directory on the host: config, data, log and pid file.
    pub dir: String,
    ssh: Ssh,
    stopped: bool,
}

impl RemoteStandalone {
    /// Starts it on the first host of `hosts` with `partitions` per topic, and waits until
    /// it serves. Its config is the deployed node's `node.toml` without the `[cluster]`
    /// table (so operator settings such as `vector.ef_search` hold for both), and its
    /// environment the host's environment file without the cluster's variables.
    pub fn start(hosts: &DeployedHosts, partitions: u32) -> Result<Self> {
        let node = hosts
            .nodes
            .first()
            .ok_or_else(|| Error::bad_request("--nodes needs at least one host"))?;
        let layout = node.layout();
        let ssh = hosts.ssh().clone();
        let deployed = ssh.probe(
            &node.host,
            "read node config",
            &format!("cat {}", quote(&layout.config())),
        )?;
        let config = standalone_config(&deployed, partitions).map_err(|e| {
            Error::Config(format!(
                "{}: {}: cannot be read as the baseline's config: {e}",
                node.host,
                layout.config()
            ))
        })?;
        let dir = format!("{}/bench-baseline", layout.state_dir());
        // Port 0: the kernel picks a free one, which the node prints once it serves.
        let listen = crate::deploy::layout::bind_address(&node.host, 0);
        let script = start_script(
            &dir,
            &layout.binary(),
            &layout.env_file(),
            &listen,
            partitions,
        );
        let out = ssh.change(
            &node.host,
            "start the standalone baseline node",
            &script,
            Input::Bytes(config.as_bytes()),
        )?;
        let port = serving_port(&out).ok_or_else(|| {
            Error::Unavailable(format!(
                "{}: the standalone baseline node did not say where it listens ({out:?}); see {dir}/node.log",
                node.host
            ))
        })?;
        Ok(RemoteStandalone {
            host: node.host.clone(),
            base_url: format!("http://{}", address(&node.host, port)),
            dir,
            ssh,
            stopped: false,
        })
    }

    /// Stops the node (TERM, then KILL after 30 s) and deletes its directory.
    pub fn stop(&mut self) -> Result<()> {
        if self.stopped {
            return Ok(());
        }
        self.stopped = true;
        self.ssh.change(
            &self.host,
            "stop the standalone baseline node",
            &stop_script(&self.dir),
            Input::None,
        )?;
        Ok(())
    }
}

impl Drop for RemoteStandalone {
    /// An interrupted run (Ctrl-C, an error) still removes the node from the host.
    fn drop(&mut self) {
        if let Err(e) = self.stop() {
            eprintln!("warning: {e}");
        }
    }
}

/// The deployed node's config made standalone: no `[cluster]` table (no raft, no members),
/// and `partitions` per topic. Identity and paths are set by flags on the command line.
fn standalone_config(deployed: &str, partitions: u32) -> std::result::Result<String, String> {
    let mut table: toml::Table = deployed.parse().map_err(|e| format!("{e}"))?;
    for key in ["cluster", "node_id", "data_dir"] {
        table.remove(key);
    }
    if let Some(toml::Value::Table(api)) = table.get_mut("api") {
        api.remove("listen");
    }
    let topics = table
        .entry("topics")
        .or_insert_with(|| toml::Value::Table(Default::default()));
    let toml::Value::Table(topics) = topics else {
        return Err("`topics` is not a table".into());
    };
    topics.insert("default_partitions".into(), i64::from(partitions).into());
    let text = toml::to_string(&table).map_err(|e| format!("{e}"))?;
    Ok(format!(
        "# Written by `sv-appliance bench run --nodes`: the deployed node's config without its cluster, for the standalone baseline; deleted after it.\n{text}"
    ))
}

/// Writes the config from standard input, starts `serve` detached from the ssh session with
/// the host's environment file (less what would make it a cluster member or move it), and
/// prints `api=ADDRESS` once it serves; fails with the end of its log if it exits first.
fn start_script(dir: &str, binary: &str, env_file: &str, listen: &str, partitions: u32) -> String {
    let d = quote(dir);
    format!(
        r#"(set -e; rm -rf {d}; mkdir -p {d}; cat > {d}/node.toml
if [ -f {env} ]; then set -a; . {env}; set +a; fi
unset SV_CONFIG SV_RAFT_LISTEN SV_CLUSTER_TOKEN SV_REPLICATION_FACTOR SV_REPORT_RUNS_DIR SV_DATA_DIR SV_LISTEN SV_NODE_ID
export SV_DEFAULT_PARTITIONS={partitions}
cd /
setsid -f sh -c 'echo $$ > "$1/node.pid"; exec "$2" serve --config "$1/node.toml" --data-dir "$1/data" --listen "$3" --node-id 1' sh {d} {bin} {listen} </dev/null >{d}/node.log 2>&1
for i in $(seq {ticks}); do
  a=$(sed -n 's#^sv-appliance: API on http://##p' {d}/node.log)
  if [ -n "$a" ]; then echo "api=$a"; exit 0; fi
  pid=$(cat {d}/node.pid 2>/dev/null || true)
  if [ -n "$pid" ] && ! [ -d /proc/$pid ]; then echo "the standalone baseline node exited: $(tail -n 3 {d}/node.log | tr '\n' ' ')" >&2; exit 1; fi
  sleep 0.1
done
echo "the standalone baseline node did not serve within {START_SECS} s; see {dir}/node.log" >&2; exit 1)"#,
        env = quote(env_file),
        bin = quote(binary),
        listen = quote(listen),
        ticks = START_SECS * 10,
    )
}

/// TERM, wait up to 30 s (a zombie counts as gone: some container inits never reap), KILL,
/// then delete the directory. Only a `serve` process is signalled, never a reused pid.
fn stop_script(dir: &str) -> String {
    let d = quote(dir);
    format!(
        r#"(pid=$(cat {d}/node.pid 2>/dev/null); if [ -n "$pid" ] && [ -r /proc/$pid/cmdline ] && tr '\0' ' ' < /proc/$pid/cmdline | grep -q ' serve '; then kill -TERM "$pid"; for i in $(seq 300); do [ -d /proc/$pid ] && [ "$(sed 's/.*) //' /proc/$pid/stat | cut -d' ' -f1)" != Z ] || break; sleep 0.1; done; kill -KILL "$pid" 2>/dev/null || true; fi; rm -rf {d})"#
    )
}

/// The port in the start script's `api=HOST:PORT` line.
fn serving_port(out: &str) -> Option<u16> {
    out.lines()
        .find_map(|l| l.trim().strip_prefix("api="))
        .and_then(|a| a.rsplit_once(':'))
        .and_then(|(_, port)| port.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_deployed_config_loses_its_cluster_and_keeps_the_operators_settings() {
        let layout = crate::deploy::layout::Layout {
            root: "/srv/x".into(),
        };
        let hosts: Vec<String> = ["10.0.0.1", "10.0.0.2", "10.0.0.3"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let ports = crate::deploy::layout::Ports {
            api: 6092,
            raft: 5001,
        };
        let mut deployed = crate::deploy::layout::node_config(
            &hosts,
            0,
            ports,
            "0123456789abcdef0123",
            3,
            &layout,
        );
        deployed.push_str("\n[vector]\nef_search = 128\n");
        let text = standalone_config(&deployed, 4).unwrap();
        assert!(!text.contains("0123456789abcdef0123"), "no token: {text}");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node.toml");
        std::fs::write(&path, &text).unwrap();
        let config = crate::config::NodeConfig::load(
            Some(&path),
            &Default::default(),
            &crate::config::ConfigOverrides::default(),
        )
        .unwrap();
        assert!(!config.cluster.is_clustered());
        assert_eq!(config.vector.ef_search, 128);
        assert_eq!(config.topics.default_partitions, 4);
        assert_ne!(
            config.api.listen, "10.0.0.1:6092",
            "not the deployed node's port"
        );
        assert!(standalone_config("not = [toml", 4).is_err());
    }

    #[test]
    fn the_port_is_read_from_the_start_scripts_answer() {
        assert_eq!(serving_port("api=10.0.0.1:40123\n"), Some(40123));
        assert_eq!(serving_port("api=[::1]:40124\n"), Some(40124));
        assert_eq!(serving_port("api=0.0.0.0:\n"), None);
        assert_eq!(serving_port(""), None);
    }
}
