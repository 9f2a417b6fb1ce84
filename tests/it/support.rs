//! Test support: the real binary as a server process on a free loopback port, and small
//! HTTP helpers.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

pub fn binary() -> &'static str {
    env!("CARGO_BIN_EXE_sv-appliance")
}

/// A node process; killed (SIGKILL) when dropped.
pub struct ServerProcess {
    pub child: Child,
    pub base: String,
}

impl ServerProcess {
    /// Starts `sv-appliance serve` on 127.0.0.1:0 and waits until `/ready` answers 200.
    pub fn start(data_dir: &Path, extra_env: &[(&str, &str)]) -> ServerProcess {
        let mut command = Command::new(binary());
        command
            .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(data_dir)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (k, v) in extra_env {
            command.env(k, v);
        }
        let mut child = command.spawn().expect("spawn sv-appliance serve");
        let stderr = child.stderr.take().expect("stderr");
        let (tx, rx) = std::sync::mpsc::channel();
        // Keep draining stderr so the child never blocks on a full pipe.
        std::thread::spawn(move || {
            let mut sent = false;
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if !sent && let Some(url) = line.split("API on ").nth(1) {
                    let _ = tx.send(url.trim().to_string());
                    sent = true;
                }
                if std::env::var("SV_TEST_VERBOSE").is_ok() {
                    eprintln!("[server] {line}");
                }
            }
        });
        let base = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("server printed its address");
        let server = ServerProcess { child, base };
        server.wait_ready(Duration::from_secs(30));
        server
    }

    pub fn wait_ready(&self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(r) = ureq_get(&format!("{}/ready", self.base))
                && r.0 == 200
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "node at {} not ready in {timeout:?}",
                self.base
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGKILL: no shutdown hooks run, exactly like a crash.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// Blocking GET returning (status, json body).
pub fn ureq_get(url: &str) -> Result<(u16, Value), String> {
    let client = reqwest::blocking::Client::new();
    let r = client
        .get(url)
        .timeout(Duration::from_secs(60))
        .send()
        .map_err(|e| e.to_string())?;
    let status = r.status().as_u16();
    let body = r.json::<Value>().unwrap_or(Value::Null);
    Ok((status, body))
}

/// Blocking POST of a JSON value, returning (status, json body).
pub fn post_json(url: &str, body: &Value) -> (u16, Value) {
    post_raw(url, serde_json::to_vec(body).unwrap())
}

pub fn post_raw(url: &str, body: Vec<u8>) -> (u16, Value) {
    let client = reqwest::blocking::Client::new();
    let r = client
        .post(url)
        .header("content-type", "application/json")
        .body(body)
        .timeout(Duration::from_secs(120))
        .send()
        .expect("request sent");
    let status = r.status().as_u16();
    (status, r.json::<Value>().unwrap_or(Value::Null))
}

pub fn sql_count(base: &str, query: &str) -> i64 {
    let (status, body) = post_json(
        &format!("{base}/_sql"),
        &serde_json::json!({ "query": query }),
    );
    assert_eq!(status, 200, "{query}: {body}");
    let row = &body["rows"][0];
    let value = row
        .as_object()
        .and_then(|o| o.values().next())
        .cloned()
        .unwrap_or(Value::Null);
    value
        .as_i64()
        .unwrap_or_else(|| panic!("{query}: no count in {body}"))
}

/// Blocking GET of a text body (`/metrics`), returning (status, text).
pub fn get_text(url: &str) -> (u16, String) {
    let r = reqwest::blocking::Client::new()
        .get(url)
        .timeout(Duration::from_secs(60))
        .send()
        .expect("request sent");
    let status = r.status().as_u16();
    (status, r.text().unwrap_or_default())
}
