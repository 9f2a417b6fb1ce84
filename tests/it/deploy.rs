//! `up`, `status`, `logs`, `down` against real OpenSSH servers: three sshd processes on their
//! own loopback addresses, each giving its sessions its own install root (`SV_INSTALL_ROOT`),
//! standing in for three bare-metal hosts. The node runs under the process supervisor (systemd
//! cannot be PID 1 here); the systemd path is checked by `--dry-run` and `systemd-analyze`.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::support::{binary, post_json, sql_count};

const SSHD: &str = "/usr/sbin/sshd";

/// Test hosts: one sshd per loopback address, all on the same port.
struct Hosts {
    dir: tempfile::TempDir,
    ips: Vec<String>,
    ssh_port: u16,
    api_port: u16,
    raft_port: u16,
    sshd: Vec<Child>,
}

impl Hosts {
    fn start(n: usize) -> Hosts {
        assert!(
            Path::new(SSHD).exists(),
            "{SSHD} is missing: install openssh-server (scripts/test.sh does it with apt-get)"
        );
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let _ = std::fs::create_dir_all("/run/sshd"); // privilege-separation dir, when root
        for key in ["host_key", "client_key"] {
            let ok = Command::new("ssh-keygen")
                .args(["-q", "-t", "ed25519", "-N", "", "-f"])
                .arg(d.join(key))
                .status()
                .unwrap()
                .success();
            assert!(ok, "ssh-keygen failed");
        }
        std::fs::copy(d.join("client_key.pub"), d.join("authorized_keys")).unwrap();
        // A /16 of loopback picked per process, so parallel runs do not collide.
        let pid = std::process::id();
        let net = format!("127.{}.{}", 100 + pid % 150, (pid / 150) % 250);
        let ips: Vec<String> = (1..=n).map(|i| format!("{net}.{i}")).collect();
        let ports = free_ports(&ips, 3);
        let mut sshd = Vec::new();
        for (i, ip) in ips.iter().enumerate() {
            let root = d.join(format!("host{}", i + 1));
            std::fs::create_dir_all(&root).unwrap();
            let config = format!(
                "ListenAddress {ip}:{port}\nHostKey {d}/host_key\nAuthorizedKeysFile {d}/authorized_keys\nPidFile {d}/sshd{i}.pid\nUsePAM no\nStrictModes no\nPasswordAuthentication no\nKbdInteractiveAuthentication no\nPermitRootLogin prohibit-password\nSetEnv SV_INSTALL_ROOT={root}\n",
                port = ports[0],
                d = d.display(),
                root = root.display(),
            );
            let config_path = d.join(format!("sshd{i}.conf"));
            std::fs::write(&config_path, config).unwrap();
            let log = std::fs::File::create(d.join(format!("sshd{i}.log"))).unwrap();
            let child = Command::new(SSHD)
                .arg("-D")
                .arg("-e")
                .arg("-f")
                .arg(&config_path)
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .expect("start sshd");
            sshd.push(child);
        }
        let hosts = Hosts {
            dir,
            ips,
            ssh_port: ports[0],
            api_port: ports[1],
            raft_port: ports[2],
            sshd,
        };
        for ip in &hosts.ips {
            wait_until(&format!("sshd on {ip}"), Duration::from_secs(10), || {
                std::net::TcpStream::connect((ip.as_str(), hosts.ssh_port)).is_ok()
            });
        }
        hosts
    }

    fn root(&self, i: usize) -> PathBuf {
        self.dir.path().join(format!("host{}", i + 1))
    }

    /// Runs `sv-appliance ARGS` with this cluster's hosts and ssh settings.
    fn run(&self, args: &[&str], hosts: &[String]) -> (bool, String) {
        let mut cmd = Command::new(binary());
        cmd.args(args);
        if !hosts.is_empty() {
            cmd.arg("--nodes").arg(hosts.join(","));
            cmd.arg("--api-port").arg(self.api_port.to_string());
            cmd.arg("--raft-port").arg(self.raft_port.to_string());
        }
        cmd.args(self.ssh_args());
        let out = cmd.output().expect("run sv-appliance");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.success(), text)
    }

    fn ssh_args(&self) -> Vec<String> {
        let d = self.dir.path().display();
        vec![
            "--user".into(),
            whoami(),
            "--ssh-port".into(),
            self.ssh_port.to_string(),
            "--identity".into(),
            format!("{d}/client_key"),
            "--ssh-option".into(),
            format!("UserKnownHostsFile={d}/known_hosts"),
            "--ssh-option".into(),
            "StrictHostKeyChecking=accept-new".into(),
        ]
    }

    fn ok(&self, args: &[&str]) -> String {
        let (ok, text) = self.run(args, &self.ips);
        assert!(ok, "{args:?} failed:\n{text}");
        text
    }

    fn pid(&self, i: usize, name: &str) -> Option<u32> {
        let path = self.root(i).join("var/lib/sv-appliance").join(name);
        std::fs::read_to_string(path).ok()?.trim().parse().ok()
    }

    /// Every host's supervisor pid, in host order (equal lists = nothing was restarted).
    fn supervisor_pids(&self) -> Vec<Option<u32>> {
        (0..self.ips.len())
            .map(|i| self.pid(i, "supervisor.pid"))
            .collect()
    }

    fn base(&self, i: usize) -> String {
        format!("http://{}:{}", self.ips[i], self.api_port)
    }
}

impl Drop for Hosts {
    fn drop(&mut self) {
        // Whatever the test left running: supervisors first (they stop their nodes), then any
        // node still alive, then the ssh servers.
        for i in 0..self.ips.len() {
            for name in ["supervisor.pid", "node.pid"] {
                if let Some(pid) = self.pid(i, name) {
                    let _ = Command::new("kill").arg("-9").arg(pid.to_string()).status();
                }
            }
        }
        for child in &mut self.sshd {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn whoami() -> String {
    let out = Command::new("id").arg("-un").output().unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Ports free on every address (each reserved on the first, then checked on the others).
fn free_ports(ips: &[String], n: usize) -> Vec<u16> {
    let mut ports = Vec::new();
    while ports.len() < n {
        let port = TcpListener::bind((ips[0].as_str(), 0))
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        if !ports.contains(&port)
            && ips
                .iter()
                .all(|ip| TcpListener::bind((ip.as_str(), port)).is_ok())
        {
            ports.push(port);
        }
    }
    ports
}

fn wait_until(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !done() {
        assert!(Instant::now() < deadline, "{what}: not within {timeout:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn record(seq: u64) -> serde_json::Value {
    json!({
        "timestamp": 1131566461 + seq as i64,
        "label": "-",
        "host": format!("cn{}", seq % 17),
        "location": "cn1/cn1",
        "component": "kernel",
        "pid": seq,
        "message": format!("deployed cluster record {seq}"),
    })
}

fn sha256(path: &Path) -> String {
    sv_appliance::deploy::layout::sha256_file(path).unwrap()
}

#[test]
fn up_deploys_three_hosts_over_ssh_survives_a_node_kill_and_upgrades_one_host_at_a_time() {
    let hosts = Hosts::start(3);
    // The operator's environment file is theirs: `up` must not overwrite it. Cheap embeddings
    // keep three nodes from starving the test on two cores.
    for i in 0..3 {
        let etc = hosts.root(i).join("etc/default");
        std::fs::create_dir_all(&etc).unwrap();
        std::fs::write(etc.join("sv-appliance"), "SV_EMBEDDING_PROVIDER=hashing\n").unwrap();
    }
    let started = Instant::now();
    let out = hosts.ok(&["up", "--service-manager", "process"]);
    eprintln!("up took {:?}:\n{out}", started.elapsed());
    assert!(out.contains("cluster healthy"), "{out}");
    for i in 0..3 {
        assert!(
            out.contains(&format!(
                "{}: node {} new binary, config; started",
                hosts.ips[i],
                i + 1
            )),
            "{out}"
        );
        let root = hosts.root(i);
        assert_eq!(
            sha256(&root.join("usr/local/bin/sv-appliance")),
            sha256(Path::new(binary()))
        );
        let config = root.join("etc/sv-appliance/node.toml");
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(&config).unwrap().permissions(),
        );
        assert_eq!(mode & 0o777, 0o600, "the config holds the token");
        assert_eq!(
            std::fs::read_to_string(root.join("etc/default/sv-appliance")).unwrap(),
            "SV_EMBEDDING_PROVIDER=hashing\n"
        );
    }
    // Data through host 2, visible on all three.
    let (code, body) = post_json(&format!("{}/topics", hosts.base(1)), &json!({"name": "tb"}));
    assert_eq!(code, 201, "{body}");
    let total = 1200u64;
    for chunk in 0..4 {
        let records: Vec<_> = (chunk * 300..(chunk + 1) * 300).map(record).collect();
        let (code, body) = post_json(
            &format!("{}/topics/tb/records", hosts.base(1)),
            &json!({ "records": records }),
        );
        assert_eq!(code, 200, "{body}");
    }
    let counted_everywhere = |hosts: &Hosts| {
        (0..3).all(|i| {
            std::panic::catch_unwind(|| sql_count(&hosts.base(i), "SELECT COUNT(*) FROM tb"))
                .is_ok_and(|c| c == total as i64)
        })
    };
    wait_until(
        "1200 records on every host",
        Duration::from_secs(30),
        || counted_everywhere(&hosts),
    );

    // A crash: the supervisor restarts the node, which catches up.
    let victim = hosts.pid(2, "node.pid").expect("node pid on host 3");
    let supervisor = hosts.pid(2, "supervisor.pid").expect("supervisor pid");
    assert!(
        Command::new("kill")
            .args(["-9", &victim.to_string()])
            .status()
            .unwrap()
            .success()
    );
    wait_until(
        "node 3 restarted by its supervisor",
        Duration::from_secs(30),
        || hosts.pid(2, "node.pid").is_some_and(|p| p != victim),
    );
    assert_eq!(hosts.pid(2, "supervisor.pid"), Some(supervisor));
    wait_until(
        "status healthy after the kill",
        Duration::from_secs(60),
        || {
            hosts
                .run(&["status", "--service-manager", "process"], &hosts.ips)
                .0
        },
    );
    let status = hosts.ok(&["status", "--service-manager", "process"]);
    assert_eq!(status.matches(" active ").count(), 3, "{status}");
    assert!(status.contains("cluster healthy"), "{status}");
    wait_until("node 3 caught up", Duration::from_secs(30), || {
        counted_everywhere(&hosts)
    });
    let logs = hosts.run(
        &["logs", &hosts.ips[2], "--service-manager", "process"],
        &[],
    );
    assert!(logs.0, "{}", logs.1);
    assert!(
        logs.1.contains("restarting"),
        "the supervisor logs the restart:\n{}",
        logs.1
    );

    sv3_on_the_deployed_hosts(&hosts);
    sv4_on_hosts_at_another_replication_factor(&hosts);

    // A rerun with the same binary changes nothing and restarts nothing.
    let supervisors = hosts.supervisor_pids();
    let out = hosts.ok(&["up", "--service-manager", "process"]);
    assert_eq!(
        out.matches("unchanged; already running, nothing changed")
            .count(),
        3,
        "{out}"
    );
    assert_eq!(supervisors, hosts.supervisor_pids());

    // The same hosts in another order would swap node ids under their raft logs: refused,
    // before anything is touched.
    let reordered = vec![
        hosts.ips[1].clone(),
        hosts.ips[0].clone(),
        hosts.ips[2].clone(),
    ];
    let (ok, out) = hosts.run(&["up", "--service-manager", "process"], &reordered);
    assert!(
        !ok && out.contains("Changing node ids, members or ports is not built"),
        "{out}"
    );
    assert_eq!(supervisors, hosts.supervisor_pids());

    // The supervisor itself is SIGKILLed: its node runs on, orphaned, and the service counts
    // as down. `up` starts a supervisor, which stops the orphan and starts a fresh node.
    let orphan = hosts.pid(0, "node.pid").unwrap();
    let dead = supervisors[0].unwrap().to_string();
    assert!(
        Command::new("kill")
            .args(["-9", &dead])
            .status()
            .unwrap()
            .success()
    );
    let out = hosts.ok(&["up", "--service-manager", "process"]);
    assert!(
        out.contains(&format!("{}: node 1 unchanged; started", hosts.ips[0])),
        "{out}"
    );
    wait_until(
        "the orphaned node replaced",
        Duration::from_secs(60),
        || {
            !sv_appliance::process::process_alive(orphan)
                && hosts.pid(0, "node.pid").is_some_and(|p| p != orphan)
        },
    );
    let supervisors = hosts.supervisor_pids();

    // A new binary: one host at a time, each back and healthy before the next.
    let newer = hosts.dir.path().join("sv-appliance-next");
    std::fs::copy(binary(), &newer).unwrap();
    std::fs::OpenOptions::new()
        .append(true)
        .open(&newer)
        .and_then(|mut f| std::io::Write::write_all(&mut f, b"next build"))
        .unwrap();
    let out = hosts.ok(&[
        "up",
        "--service-manager",
        "process",
        "--binary",
        newer.to_str().unwrap(),
    ]);
    assert_eq!(out.matches("new binary; restarted").count(), 3, "{out}");
    for (i, before) in supervisors.iter().enumerate() {
        assert_eq!(
            sha256(&hosts.root(i).join("usr/local/bin/sv-appliance")),
            sha256(&newer)
        );
        assert_ne!(
            &hosts.pid(i, "supervisor.pid"),
            before,
            "host {i} restarted"
        );
    }
    wait_until(
        "data kept through the upgrade",
        Duration::from_secs(30),
        || counted_everywhere(&hosts),
    );

    // down stops every node and keeps the data; status says so; up brings it back.
    hosts.ok(&["down", "--service-manager", "process"]);
    for i in 0..3 {
        assert_eq!(hosts.pid(i, "supervisor.pid"), None, "supervisor {i} gone");
    }
    let (ok, status) = hosts.run(&["status", "--service-manager", "process"], &hosts.ips);
    assert!(!ok && status.contains("degraded"), "{status}");
    hosts.ok(&[
        "up",
        "--service-manager",
        "process",
        "--binary",
        newer.to_str().unwrap(),
    ]);
    wait_until(
        "data kept through down and up",
        Duration::from_secs(30),
        || counted_everywhere(&hosts),
    );
    hosts.ok(&["down", "--service-manager", "process", "--purge"]);
    assert!(!hosts.root(0).join("var/lib/sv-appliance/data").exists());
}

#[test]
fn up_dry_run_prints_the_systemd_actions_and_a_bad_host_stops_before_any_change() {
    let hosts = Hosts::start(1);
    let (ok, out) = hosts.run(&["up", "--dry-run"], &hosts.ips);
    // systemd is not PID 1 here: the dry run says a real run would stop, and still shows every
    // action it would take.
    assert!(!ok, "{out}");
    assert!(
        out.contains("WOULD FAIL") && out.contains("systemd is not running there"),
        "{out}"
    );
    let root = hosts.root(0).display().to_string();
    for expected in [
        "install binary: set -e; mkdir -p",
        &format!("sha256sum -c --status -; then rm -f '{root}/usr/local/bin/sv-appliance.new'"),
        "--version >/dev/null; then rm -f",
        &format!("chown root:sv-appliance '{root}/etc/sv-appliance/node.toml.new'"),
        "create system user: useradd --system --user-group",
        &format!("install systemd unit: set -e; mkdir -p '{root}/etc/systemd/system'"),
        "reload systemd: systemctl daemon-reload",
        "start service: systemctl reset-failed sv-appliance 2>/dev/null; systemctl enable --now --no-block sv-appliance",
        "dry run: nothing was changed",
    ] {
        assert!(out.contains(expected), "missing {expected:?} in:\n{out}");
    }
    let position = |needle: &str| out.find(needle).unwrap();
    assert!(
        position("create system user") < position("write config"),
        "the group must exist before the config is given to it:\n{out}"
    );
    assert_eq!(
        std::fs::read_dir(hosts.root(0)).unwrap().count(),
        0,
        "a dry run writes nothing"
    );

    // A second host without sshd: `up` names it and the step, and host 1 stays untouched.
    let mut two = hosts.ips.clone();
    let dead = format!("{}.9", hosts.ips[0].rsplit_once('.').unwrap().0);
    two.push(dead.clone());
    let (ok, out) = hosts.run(&["up", "--service-manager", "process"], &two);
    assert!(!ok, "{out}");
    assert!(
        out.contains(&format!("{dead}: check host: ssh failed")),
        "{out}"
    );
    assert_eq!(
        std::fs::read_dir(hosts.root(0)).unwrap().count(),
        0,
        "{out}"
    );

    let (ok, out) = hosts.run(&["up"], &["dell-1".into(), "dell-1".into()]);
    assert!(!ok && out.contains("lists dell-1 twice"), "{out}");
}

#[test]
fn the_rendered_unit_passes_systemd_analyze_verify() {
    let root = tempfile::tempdir().unwrap();
    let layout = sv_appliance::deploy::layout::Layout {
        root: root.path().display().to_string(),
    };
    let bin = PathBuf::from(layout.binary());
    std::fs::create_dir_all(bin.parent().unwrap()).unwrap();
    std::os::unix::fs::symlink(binary(), &bin).unwrap();
    let unit = root.path().join("sv-appliance.service");
    std::fs::write(&unit, layout.unit_text()).unwrap();
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&unit)
        .output()
        .expect("systemd-analyze (package systemd) is installed");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && stderr.trim().is_empty(), "{stderr}");
    // A unit with a typo'd key must not pass this check silently.
    std::fs::write(
        &unit,
        layout.unit_text().replace("ProtectHome", "ProtectHomes"),
    )
    .unwrap();
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&unit)
        .output()
        .unwrap();
    assert!(!String::from_utf8_lossy(&out.stderr).trim().is_empty());
}

/// `bench run SV-3 --nodes …` on the cluster `up` deployed: the data is loaded through the
/// hosts' APIs, the leader of thunderbird/0 is SIGKILLed through its service manager over
/// ssh and started again, every acknowledged write is found on every host, and the run is
/// stored on every node with the token read from the hosts.
fn sv3_on_the_deployed_hosts(hosts: &Hosts) {
    let (_, text, record) = bench_on_the_hosts(hosts, "SV-3", &[]);
    let phase = &record["phases"][0];
    assert_ne!(phase["status"], "error", "{text}");
    assert!(
        record["environment"]["kind"]
            .as_str()
            .unwrap()
            .starts_with("deployed cluster of 3"),
        "{text}"
    );
    let events: Vec<String> = phase["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            format!(
                "{} {}",
                e["kind"].as_str().unwrap(),
                e["detail"].as_str().unwrap()
            )
        })
        .collect();
    let kill = events
        .iter()
        .find(|e| e.starts_with("kill "))
        .unwrap_or_else(|| panic!("no kill event:\n{text}"));
    assert!(kill.contains("over ssh"), "{kill}");
    assert!(
        events.iter().any(|e| e.starts_with("caught up ")),
        "{events:?}"
    );
    let measured = |name: &str| {
        phase["measurements"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["name"] == name)
            .unwrap_or_else(|| panic!("no {name}:\n{text}"))
            .clone()
    };
    assert!(measured("election_secs")["value"].as_f64().unwrap() < 30.0);
    let lost = measured("acknowledged_writes_lost");
    assert_eq!(lost["value"].as_f64(), Some(0.0), "{lost}");
    let acknowledged: u64 = lost["detail"]
        .as_str()
        .unwrap()
        .trim_start_matches("of ")
        .split(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(acknowledged > 0, "writes were made during the kill: {lost}");
    // The standalone baseline ran over ssh on the first host, beside its deployed node, and
    // was judged against; then it was stopped and its directory deleted.
    for name in [
        "Query latency per-node matches standalone",
        "Vector search via each node: same latency as standalone",
    ] {
        let c = phase["criteria"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"].as_str().unwrap().starts_with(name))
            .unwrap_or_else(|| panic!("no criterion {name}:\n{text}"));
        assert_eq!(c["judged"], true, "{c}");
        assert!(c["value"].is_number(), "{c}");
    }
    for task in [
        "COUNT(*) via each node (baseline) @ node 1",
        "vector via each node (baseline) @ node 1",
    ] {
        let t = phase["tasks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["name"] == task)
            .unwrap_or_else(|| panic!("no task {task}:\n{text}"));
        assert_eq!(t["passed"], true, "{t}");
    }
    let standalone: Vec<&serde_json::Value> = record["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| {
            let target = n["target"].as_str().unwrap();
            target.starts_with(&format!("http://{}:", hosts.ips[0])) && target != hosts.base(0)
        })
        .collect();
    assert_eq!(
        standalone.len(),
        1,
        "the standalone node is described: {}",
        record["nodes"]
    );
    assert!(
        standalone[0]["config"]["cluster"]["members"]
            .as_array()
            .is_none_or(|m| m.is_empty()),
        "the standalone node is no cluster member: {}",
        standalone[0]
    );
    assert_eq!(
        standalone[0]["config"]["embedding"]["provider"], "hashing",
        "the standalone node has the host's environment file, like the deployed node"
    );
    assert!(
        record["environment"]["notes"]
            .to_string()
            .contains("started over ssh on"),
        "{}",
        record["environment"]
    );
    assert!(
        !hosts
            .root(0)
            .join("var/lib/sv-appliance/bench-baseline")
            .exists(),
        "the baseline node's directory is deleted"
    );
    let gone = crate::support::ureq_get(&format!(
        "{}/_node",
        standalone[0]["target"].as_str().unwrap()
    ));
    assert!(gone.is_err(), "the baseline node is stopped: {gone:?}");
    assert!(text.contains("run published to 3 of 3 nodes"), "{text}");
    let id = record["id"].as_str().unwrap();
    for i in 0..3 {
        let (code, listed) =
            crate::support::get_text(&format!("{}/report/api/runs", hosts.base(i)));
        assert_eq!(code, 200);
        assert!(listed.contains(id), "host {i} lists the run: {listed}");
    }
    // The node killed over ssh is back under a new supervisor, and the cluster healthy.
    let status = hosts.ok(&["status", "--service-manager", "process"]);
    assert!(status.contains("cluster healthy"), "{status}");
}

/// SV-4 measures fan-out at one replica per partition; on the deployed cluster (three) every
/// node answers from its own copies, so its comparisons are not judged, say how to deploy
/// for them, and no baseline is loaded for nothing. The answers are still checked.
fn sv4_on_hosts_at_another_replication_factor(hosts: &Hosts) {
    let (ok, text, record) = bench_on_the_hosts(hosts, "SV-4", &["--reuse-data"]);
    assert!(ok, "{text}");
    assert!(!text.contains("starting a standalone node"), "{text}");
    let phase = &record["phases"][0];
    assert_eq!(phase["status"], "passed", "{text}");
    for c in phase["criteria"].as_array().unwrap() {
        let name = c["name"].as_str().unwrap();
        if name.starts_with("Remote fan-out") {
            assert_eq!(c["judged"], false, "{c}");
            assert!(
                c["detail"]
                    .as_str()
                    .unwrap()
                    .contains("up --replication-factor 1"),
                "{c}"
            );
        } else {
            assert_eq!(c["judged"], true, "{c}");
        }
    }
    // And `up` refuses a replication factor the hosts cannot hold, before changing anything.
    let (ok, text) = hosts.run(
        &[
            "up",
            "--service-manager",
            "process",
            "--replication-factor",
            "4",
        ],
        &hosts.ips,
    );
    assert!(!ok, "{text}");
    assert!(
        text.contains("--replication-factor must be between 1 and the number of hosts (3), got 4"),
        "{text}"
    );
}

/// `bench run PLAN --scale tiny --nodes …` on the deployed hosts, with the cluster token only
/// from the hosts: whether it succeeded, its output, and its run record.
fn bench_on_the_hosts(
    hosts: &Hosts,
    plan: &str,
    extra: &[&str],
) -> (bool, String, serde_json::Value) {
    let runs = hosts.dir.path().join(format!("runs-{plan}"));
    let out = Command::new(binary())
        .args(["bench", "run", plan, "--scale", "tiny", "--no-progress"])
        .args(extra)
        .arg("--runs-dir")
        .arg(&runs)
        .arg("--nodes")
        .arg(hosts.ips.join(","))
        .arg("--api-port")
        .arg(hosts.api_port.to_string())
        .args(["--service-manager", "process"])
        .args(hosts.ssh_args())
        .env_remove("SV_CLUSTER_TOKEN")
        .output()
        .expect("run bench");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let file = std::fs::read_dir(&runs)
        .unwrap_or_else(|e| panic!("no runs dir ({e}):\n{text}"))
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|x| x == "json"))
        .unwrap_or_else(|| panic!("no run record:\n{text}"));
    let record = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    (out.status.success(), text, record)
}
