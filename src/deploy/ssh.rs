//! Running shell scripts on a host through the system OpenSSH client in batch mode, or only
//! printing them (`--dry-run`).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::error::{Error, Result};

/// How to reach every host: the operator's ssh settings, shared by all of them.
#[derive(Debug, Clone)]
pub struct Ssh {
    pub user: Option<String>,
    pub port: Option<u16>,
    pub identity: Option<PathBuf>,
    /// Extra `-o` options, e.g. `StrictHostKeyChecking=accept-new`.
    pub options: Vec<String>,
    /// Print changes instead of making them (probes still run: they change nothing).
    pub dry_run: bool,
}

/// What a change sends on the remote command's standard input.
pub enum Input<'a> {
    None,
    Bytes(&'a [u8]),
    File(&'a Path),
}

impl Ssh {
    fn command(&self, host: &str, script: &str) -> Command {
        let mut cmd = Command::new("ssh");
        // BatchMode: never ask for a password or a host-key confirmation on a terminal.
        cmd.args(["-o", "BatchMode=yes", "-o", "ConnectTimeout=10"]);
        if let Some(port) = self.port {
            cmd.arg("-p").arg(port.to_string());
        }
        if let Some(identity) = &self.identity {
            cmd.arg("-i").arg(identity);
        }
        for option in &self.options {
            cmd.arg("-o").arg(option);
        }
        let target = match &self.user {
            Some(user) => format!("{user}@{host}"),
            None => host.to_string(),
        };
        cmd.arg(target).arg("--").arg(script);
        cmd
    }

    /// Runs a read-only script (it runs in a dry run too) and returns its standard output.
    pub fn probe(&self, host: &str, step: &str, script: &str) -> Result<String> {
        self.execute(host, step, script, Input::None)
    }

    /// Runs a script that changes the host; in a dry run prints it instead.
    pub fn change(&self, host: &str, step: &str, script: &str, input: Input) -> Result<String> {
        if self.dry_run {
            let stdin = match input {
                Input::None => String::new(),
                Input::Bytes(b) => format!("   (stdin: {} bytes)", b.len()),
                Input::File(p) => format!("   (stdin: {})", p.display()),
            };
            println!("[{host}] {step}: {script}{stdin}");
            return Ok(String::new());
        }
        self.execute(host, step, script, input)
    }

    fn execute(&self, host: &str, step: &str, script: &str, input: Input) -> Result<String> {
        let mut cmd = self.command(host, script);
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        cmd.stdin(match input {
            Input::None => Stdio::null(),
            Input::Bytes(_) => Stdio::piped(),
            Input::File(path) => Stdio::from(std::fs::File::open(path).map_err(|e| {
                Error::bad_request(format!(
                    "{host}: {step}: cannot read {}: {e}",
                    path.display()
                ))
            })?),
        });
        let mut child = cmd.spawn().map_err(|e| {
            Error::Unavailable(format!(
                "{host}: {step}: cannot run ssh (is the OpenSSH client installed?): {e}"
            ))
        })?;
        if let Input::Bytes(bytes) = input {
            let mut stdin = child.stdin.take().expect("piped stdin");
            // A writer thread, so a remote that answers before reading everything cannot
            // deadlock us against a full stdout pipe.
            let bytes = bytes.to_vec();
            std::thread::spawn(move || std::io::Write::write_all(&mut stdin, &bytes));
        }
        let output = child.wait_with_output()?;
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        if output.status.success() {
            return Ok(stdout);
        }
        let stderr = String::from_utf8_lossy(&output.stderr);
        let detail = stderr.trim().lines().last().unwrap_or("").to_string();
        // ssh itself exits 255 (unreachable host, refused key); anything else is the script.
        let what = match output.status.code() {
            Some(255) => "ssh failed".to_string(),
            Some(code) => format!("exit {code}"),
            None => "killed by a signal".to_string(),
        };
        Err(Error::Unavailable(format!(
            "{host}: {step}: {what}: {detail}"
        )))
    }
}

/// `s` as one single-quoted shell word.
pub fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_survives_a_quote_inside() {
        let out = Command::new("sh")
            .arg("-c")
            .arg(format!("printf %s {}", quote("it's a $HOME `x`")))
            .output()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout), "it's a $HOME `x`");
    }
}
