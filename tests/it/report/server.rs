//! The report server under test: `sv-appliance report` as a process on a free port, plain
//! GETs, and raw request lines for paths an HTTP client would normalise.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::support::binary;

/// A `report` process on a free port; killed when dropped.
pub struct ReportProcess {
    child: Child,
    pub base: String,
}

impl ReportProcess {
    pub fn start(runs_dir: &Path) -> ReportProcess {
        let mut child = Command::new(binary())
            .args(["report", "--listen", "127.0.0.1:0", "--runs-dir"])
            .arg(runs_dir)
            .env_remove("SV_RUNS_DIR")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn sv-appliance report");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let line = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("report printed its address");
        // `report at http://127.0.0.1:PORT/ (runs in DIR)`
        let rest = line
            .strip_prefix("report at ")
            .unwrap_or_else(|| panic!("unexpected first line: {line}"));
        let (url, dir) = rest.split_once(' ').unwrap();
        assert!(dir.contains(&runs_dir.display().to_string()), "{line}");
        ReportProcess {
            child,
            base: url.trim_end_matches('/').to_string(),
        }
    }
}

impl Drop for ReportProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub struct Fetched {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: String,
}

pub fn get(url: &str, if_none_match: Option<&str>) -> Fetched {
    let mut request = reqwest::blocking::Client::new()
        .get(url)
        .timeout(Duration::from_secs(30));
    if let Some(etag) = if_none_match {
        request = request.header("If-None-Match", etag);
    }
    let response = request.send().expect("request sent");
    Fetched {
        status: response.status().as_u16(),
        headers: response.headers().clone(),
        body: response.text().unwrap(),
    }
}

/// A request line sent as is, so `..` reaches the server unnormalised (HTTP clients resolve
/// dot segments before sending). Returns the status code.
pub fn raw_status(base: &str, path: &str) -> u16 {
    let addr = base.trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    response
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("no status in {response:?}"))
}
