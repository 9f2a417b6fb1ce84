//! Headless Chromium for the report tests: load a page, return the DOM after its scripts ran
//! and every console message the page produced.
//!
//! Chromium 148 logs each console message of a page to stderr (with `--enable-logging=stderr`)
//! as `…:INFO:CONSOLE:<line>] "<text>", source: <url> (<line>)` whatever its level, so
//! `console.log`, `console.error`, uncaught exceptions, CSP violations and failed loads all
//! look alike. The report's script logs nothing on purpose, so any console line is a failure.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

pub const CHROMIUM: &str = "/usr/bin/chromium";

pub struct Rendered {
    pub dom: String,
    pub console: Vec<String>,
    pub stderr: String,
}

/// Console lines in Chromium's stderr log (older builds wrote `CONSOLE(12)`, 148 `CONSOLE:12`).
pub fn console_lines(stderr: &str) -> Vec<String> {
    stderr
        .lines()
        .filter(|l| l.contains(":CONSOLE:") || l.contains(":CONSOLE("))
        .map(str::to_string)
        .collect()
}

/// Loads `url` in a fresh headless Chromium profile and dumps the DOM. `virtual_time_ms` lets
/// timers (the live page's 2 s poll) fire before the dump without waiting in real time.
pub fn render(url: &str, work: &Path, virtual_time_ms: Option<u64>) -> Rendered {
    assert!(
        Path::new(CHROMIUM).exists(),
        "{CHROMIUM} not found: the report test renders pages in headless Chromium; install it \
         (`apt-get install -y chromium` as root, or run scripts/test.sh as root, which does)"
    );
    let profile = tempfile::tempdir_in(work).unwrap();
    let stdout_path = profile.path().join("dom.html");
    let stderr_path = profile.path().join("stderr.log");
    let mut command = Command::new(CHROMIUM);
    command
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
            "--enable-logging=stderr",
            "--v=0",
        ])
        .arg(format!(
            "--user-data-dir={}",
            profile.path().join("profile").display()
        ));
    if let Some(ms) = virtual_time_ms {
        command.arg(format!("--virtual-time-budget={ms}"));
    }
    // Files, not pipes: a big DOM would fill a pipe nobody reads until the process exits.
    let mut child = command
        .args(["--dump-dom", url])
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&stdout_path).unwrap())
        .stderr(std::fs::File::create(&stderr_path).unwrap())
        .spawn()
        .expect("start chromium");
    let deadline = Instant::now() + Duration::from_secs(120);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "chromium did not finish rendering {url} in 120 s; stderr:\n{}",
                std::fs::read_to_string(&stderr_path).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let dom = std::fs::read_to_string(&stdout_path).unwrap();
    let stderr = std::fs::read_to_string(&stderr_path).unwrap();
    assert!(
        status.success() && dom.contains("</html>"),
        "chromium failed on {url} ({status}); stderr:\n{stderr}"
    );
    Rendered {
        dom,
        console: console_lines(&stderr),
        stderr,
    }
}
