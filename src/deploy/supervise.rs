//! `sv-appliance supervise`: the unit's job where systemd cannot run it (`up
//! --service-manager process`): validate the config, run `serve`, restart it on failure with a
//! limit, stop it on SIGTERM. Its own output and the node's go to the same log.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::config::{ConfigOverrides, NodeConfig};
use crate::error::{Error, Result};
use crate::process::{process_alive, signal, wait_gone};

/// The unit's `StartLimitBurst` / `StartLimitIntervalSec` / `RestartSec` / `TimeoutStopSec`.
const START_LIMIT: usize = 5;
const START_WINDOW: Duration = Duration::from_secs(60);
const RESTART_DELAY: Duration = Duration::from_secs(2);
const STOP_TIMEOUT: Duration = Duration::from_secs(60);

pub fn supervisor_pid_file(run_dir: &Path) -> PathBuf {
    run_dir.join("supervisor.pid")
}

pub fn node_pid_file(run_dir: &Path) -> PathBuf {
    run_dir.join("node.pid")
}

pub async fn run(config: PathBuf, run_dir: PathBuf) -> Result<()> {
    std::fs::create_dir_all(&run_dir)?;
    let pid_file = supervisor_pid_file(&run_dir);
    claim_pid_file(&pid_file)?;
    stop_orphaned_node(&run_dir);
    let outcome = supervise(&config, &run_dir).await;
    // Only our own: a file another supervisor claimed meanwhile stays.
    if read_pid(&pid_file) == Some(std::process::id()) {
        let _ = std::fs::remove_file(&pid_file);
        let _ = std::fs::remove_file(node_pid_file(&run_dir));
    }
    if let Err(e) = &outcome {
        say(&format!("stopped: {e}"));
    }
    outcome
}

/// Creates the pid file exclusively. One left by a supervisor that is gone (killed, or a
/// reboot that handed its pid to another program) is replaced; a live supervisor's is not.
fn claim_pid_file(pid_file: &Path) -> Result<()> {
    use std::io::Write;
    for _ in 0..2 {
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(pid_file)
        {
            Ok(mut file) => {
                write!(file, "{}", std::process::id())?;
                return Ok(());
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                if let Some(pid) = read_pid(pid_file)
                    && is_supervisor(pid)
                {
                    return Err(Error::Conflict(format!(
                        "a supervisor is already running as pid {pid} ({})",
                        pid_file.display()
                    )));
                }
                let _ = std::fs::remove_file(pid_file);
            }
            Err(e) => return Err(e.into()),
        }
    }
    Err(Error::Conflict(format!(
        "{} is being claimed by another supervisor",
        pid_file.display()
    )))
}

/// A live process whose command line is `… supervise …`.
fn is_supervisor(pid: u32) -> bool {
    process_alive(pid) && has_arg(pid, b"supervise")
}

fn has_arg(pid: u32, arg: &[u8]) -> bool {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .unwrap_or_default()
        .split(|b| *b == 0)
        .any(|a| a == arg)
}

async fn supervise(config: &Path, run_dir: &Path) -> Result<()> {
    use tokio::signal::unix::{SignalKind, signal as unix_signal};
    let mut term = unix_signal(SignalKind::terminate()).map_err(Error::internal)?;
    let mut interrupt = unix_signal(SignalKind::interrupt()).map_err(Error::internal)?;
    let exe = std::env::current_exe()?;
    let mut starts: VecDeque<Instant> = VecDeque::new();
    loop {
        // ExecStartPre: a config that cannot work is not restarted in a loop.
        let env = std::env::vars().collect();
        NodeConfig::load(Some(config), &env, &ConfigOverrides::default())?;
        let now = Instant::now();
        starts.retain(|t| now.duration_since(*t) < START_WINDOW);
        if starts.len() >= START_LIMIT {
            return Err(Error::Unavailable(format!(
                "the node failed {START_LIMIT} times within {START_WINDOW:?}; not restarting (see the lines above)"
            )));
        }
        starts.push_back(now);
        let mut child = tokio::process::Command::new(&exe)
            .arg("serve")
            .arg("--config")
            .arg(config)
            .stdin(std::process::Stdio::null())
            .spawn()?;
        let pid = child.id().unwrap_or(0);
        std::fs::write(node_pid_file(run_dir), pid.to_string())?;
        say(&format!("started node (pid {pid})"));
        let stop = tokio::select! {
            status = child.wait() => {
                let status = status?;
                if status.success() {
                    say("node exited cleanly; not restarting");
                    return Ok(());
                }
                say(&format!("node exited ({status}); restarting in {RESTART_DELAY:?}"));
                false
            }
            _ = term.recv() => true,
            _ = interrupt.recv() => true,
        };
        if stop {
            say("stopping node");
            let _ = signal(pid, "TERM");
            let exited = tokio::task::spawn_blocking(move || wait_gone(pid, STOP_TIMEOUT))
                .await
                .unwrap_or(false);
            if !exited {
                say("node did not stop in time; killing it");
                let _ = child.kill().await;
            }
            let _ = child.wait().await;
            return Ok(());
        }
        tokio::select! {
            _ = tokio::time::sleep(RESTART_DELAY) => {}
            _ = term.recv() => return Ok(()),
            _ = interrupt.recv() => return Ok(()),
        }
    }
}

/// A node left running by a supervisor that was killed would hold the ports, so every start of
/// the new one would fail: stop it first.
fn stop_orphaned_node(run_dir: &Path) {
    let Some(pid) = read_pid(&node_pid_file(run_dir)) else {
        return;
    };
    if !process_alive(pid) || !has_arg(pid, b"serve") {
        return;
    }
    say(&format!(
        "a node from an earlier supervisor still runs (pid {pid}); stopping it"
    ));
    let _ = signal(pid, "TERM");
    if !wait_gone(pid, STOP_TIMEOUT) {
        let _ = signal(pid, "KILL");
        wait_gone(pid, Duration::from_secs(5));
    }
}

fn read_pid(path: &Path) -> Option<u32> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

fn say(line: &str) {
    eprintln!("sv-appliance supervise: {line}");
}
