//! Watching and signalling OS processes by pid (local cluster nodes, supervised nodes).

use std::process::Command;
use std::time::{Duration, Instant};

use crate::error::{Error, Result};

pub fn process_alive(pid: u32) -> bool {
    // A zombie (exited, not yet reaped) counts as gone.
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state != "Z"),
        Err(_) => false,
    }
}

/// Sends signal `name` (`TERM`, `KILL`) to `pid`.
pub fn signal(pid: u32, name: &str) -> Result<()> {
    let status = Command::new("kill")
        .arg(format!("-{name}"))
        .arg(pid.to_string())
        .status()
        .map_err(|e| Error::Internal(format!("cannot run kill: {e}")))?;
    if status.success() {
        Ok(())
    } else {
        Err(Error::Internal(format!("kill -{name} {pid} failed")))
    }
}

/// Waits until `pid` is gone; false if it still runs after `timeout`.
pub fn wait_gone(pid: u32, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    while process_alive(pid) {
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    true
}
