//! `sv-appliance load`: reads a log file (plain, `.gz`, `.zst`, or stdin), parses each line,
//! sends batches to a node over HTTP with several requests in flight, and reports what was
//! read, accepted and rejected.
//!
//! A malformed line is counted and remembered (the first few, with the reason), never sent: the
//! index only ever sees parsed records.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{Value, json};
use tokio::sync::{Mutex, mpsc};

use crate::dataset::{InputFormat, parse_input_line};
use crate::error::{Error, Result};
use crate::record::LogRecord;

/// How many rejected lines the summary shows.
const REJECTS_SHOWN: usize = 5;

#[derive(Debug, Clone)]
pub struct LoadOptions {
    /// Base URL of a node, e.g. `http://127.0.0.1:6092`.
    pub target: String,
    pub topic: String,
    /// A Loghub line format, or JSON lines with the record's fields.
    pub format: InputFormat,
    /// File to read; `-` is stdin.
    pub input: PathBuf,
    pub batch_size: usize,
    pub concurrency: usize,
    /// Partitions for the topic if the loader has to create it.
    pub partitions: Option<u32>,
    /// Whether the topic embeds its records, if the loader creates it.
    pub vector: Option<bool>,
    pub progress: bool,
    /// Wait until every accepted record is searchable before reporting.
    pub wait_visible: bool,
}

#[derive(Debug, Clone)]
pub struct Rejected {
    pub line_number: u64,
    pub reason: String,
    pub line: String,
}

#[derive(Debug, Clone)]
pub struct LoadSummary {
    pub lines_read: u64,
    pub accepted: u64,
    pub rejected: u64,
    pub first_rejected: Vec<Rejected>,
    /// From the first line read to the last batch acknowledged.
    pub elapsed: Duration,
    /// From the first line read to everything searchable (when waited for).
    pub visible_after: Option<Duration>,
}

impl LoadSummary {
    pub fn lines_per_sec(&self) -> f64 {
        self.accepted as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    pub fn render(&self) -> String {
        let mut out = format!(
            "lines read: {}\naccepted:   {}\nrejected:   {}\nelapsed:    {:.2} s ({:.0} lines/s acknowledged)\n",
            self.lines_read,
            self.accepted,
            self.rejected,
            self.elapsed.as_secs_f64(),
            self.lines_per_sec()
        );
        if let Some(v) = self.visible_after {
            out += &format!(
                "searchable: {:.2} s after start ({:.0} lines/s end to end)\n",
                v.as_secs_f64(),
                self.accepted as f64 / v.as_secs_f64().max(1e-9)
            );
        }
        for r in &self.first_rejected {
            out += &format!(
                "  rejected line {}: {} | {}\n",
                r.line_number,
                r.reason,
                truncate(&r.line, 120)
            );
        }
        if self.rejected > self.first_rejected.len() as u64 {
            out += &format!(
                "  ... and {} more rejected lines\n",
                self.rejected - self.first_rejected.len() as u64
            );
        }
        out
    }
}

fn truncate(s: &str, n: usize) -> &str {
    match s.char_indices().nth(n) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

/// Opens the input, decompressing by extension.
fn open_input(path: &Path) -> Result<(Box<dyn Read + Send>, Option<u64>)> {
    if path.as_os_str() == "-" {
        return Ok((Box::new(std::io::stdin()), None));
    }
    let file = std::fs::File::open(path)
        .map_err(|e| Error::bad_request(format!("cannot open {}: {e}", path.display())))?;
    let size = file.metadata().ok().map(|m| m.len());
    let name = path.to_string_lossy();
    let reader: Box<dyn Read + Send> = if name.ends_with(".gz") {
        Box::new(flate2::read::MultiGzDecoder::new(file))
    } else if name.ends_with(".zst") {
        Box::new(zstd::Decoder::new(file)?)
    } else {
        Box::new(file)
    };
    // Compressed sizes don't measure progress through the text, so only plain files get a bar.
    let plain = !name.ends_with(".gz") && !name.ends_with(".zst");
    Ok((reader, size.filter(|_| plain)))
}

struct ReadStats {
    lines: AtomicU64,
    bytes: AtomicU64,
    rejected: AtomicU64,
    first_rejected: parking_lot::Mutex<Vec<Rejected>>,
}

/// Reads and parses on a plain thread (parsing is CPU-bound), handing batches to the senders.
fn spawn_reader(
    reader: Box<dyn Read + Send>,
    format: InputFormat,
    batch_size: usize,
    stats: Arc<ReadStats>,
    tx: mpsc::Sender<Vec<LogRecord>>,
) -> std::thread::JoinHandle<Result<()>> {
    std::thread::spawn(move || {
        let mut reader = BufReader::with_capacity(1 << 20, reader);
        let mut line = Vec::with_capacity(1024);
        let mut batch = Vec::with_capacity(batch_size);
        let mut line_number = 0u64;
        loop {
            line.clear();
            let n = reader.read_until(b'\n', &mut line)?;
            if n == 0 {
                break;
            }
            line_number += 1;
            stats.bytes.fetch_add(n as u64, Ordering::Relaxed);
            let text = String::from_utf8_lossy(&line);
            if text.trim().is_empty() {
                continue;
            }
            stats.lines.fetch_add(1, Ordering::Relaxed);
            match parse_input_line(format, &text) {
                Ok(record) => {
                    batch.push(record);
                    if batch.len() >= batch_size {
                        let full = std::mem::replace(&mut batch, Vec::with_capacity(batch_size));
                        if tx.blocking_send(full).is_err() {
                            return Ok(()); // senders stopped on an error; they report it
                        }
                    }
                }
                Err(e) => {
                    stats.rejected.fetch_add(1, Ordering::Relaxed);
                    let mut first = stats.first_rejected.lock();
                    if first.len() < REJECTS_SHOWN {
                        first.push(Rejected {
                            line_number,
                            reason: e.to_string(),
                            line: text.trim_end().to_string(),
                        });
                    }
                }
            }
        }
        if !batch.is_empty() {
            let _ = tx.blocking_send(batch);
        }
        Ok(())
    })
}

/// Loads the input into the topic, creating the topic if it does not exist.
pub async fn load(options: &LoadOptions) -> Result<LoadSummary> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(120))
        .build()
        .map_err(Error::internal)?;
    let base = options.target.trim_end_matches('/').to_string();
    ensure_topic(&client, &base, options).await?;

    let (reader, total_bytes) = open_input(&options.input)?;
    let started = Instant::now();
    let stats = Arc::new(ReadStats {
        lines: AtomicU64::new(0),
        bytes: AtomicU64::new(0),
        rejected: AtomicU64::new(0),
        first_rejected: parking_lot::Mutex::new(Vec::new()),
    });
    let (tx, rx) = mpsc::channel::<Vec<LogRecord>>(options.concurrency * 2);
    let reader_thread = spawn_reader(
        reader,
        options.format,
        options.batch_size.max(1),
        stats.clone(),
        tx,
    );

    let bar = progress_bar(options.progress, total_bytes);
    let accepted = Arc::new(AtomicU64::new(0));
    let rx = Arc::new(Mutex::new(rx));
    let url = format!("{base}/topics/{}/records", options.topic);
    let mut senders = Vec::new();
    for _ in 0..options.concurrency.max(1) {
        let (rx, client, url, accepted) =
            (rx.clone(), client.clone(), url.clone(), accepted.clone());
        senders.push(tokio::spawn(async move {
            loop {
                let Some(batch) = rx.lock().await.recv().await else {
                    return Ok::<(), Error>(());
                };
                let n = batch.len() as u64;
                send_batch(&client, &url, &batch).await?;
                accepted.fetch_add(n, Ordering::Relaxed);
            }
        }));
    }
    let ticker = {
        let (bar, stats, accepted) = (bar.clone(), stats.clone(), accepted.clone());
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_millis(200)).await;
                let secs = started.elapsed().as_secs_f64().max(1e-3);
                let done = accepted.load(Ordering::Relaxed);
                bar.set_position(stats.bytes.load(Ordering::Relaxed));
                bar.set_message(format!(
                    "{done} accepted, {:.0} lines/s",
                    done as f64 / secs
                ));
            }
        })
    };
    let mut failure = None;
    for sender in senders {
        match sender.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => failure = failure.or(Some(e)),
            Err(e) => failure = failure.or(Some(Error::internal(e))),
        }
    }
    // Closing the channel unblocks the reader if the senders stopped early.
    drop(rx);
    let read_result = tokio::task::spawn_blocking(move || reader_thread.join())
        .await
        .map_err(Error::internal)?;
    ticker.abort();
    bar.finish_and_clear();
    let elapsed = started.elapsed();
    if let Some(e) = failure {
        return Err(Error::Unavailable(format!(
            "load stopped after {} accepted records: {e}",
            accepted.load(Ordering::Relaxed)
        )));
    }
    match read_result {
        Ok(Ok(())) => {}
        Ok(Err(e)) => {
            return Err(Error::bad_request(format!(
                "reading {} failed: {e}",
                options.input.display()
            )));
        }
        Err(_) => return Err(Error::internal("reader thread panicked")),
    }
    let visible_after = if options.wait_visible {
        wait_visible(&client, &base, &options.topic, 0).await?;
        Some(started.elapsed())
    } else {
        None
    };
    let first_rejected = stats.first_rejected.lock().clone();
    Ok(LoadSummary {
        lines_read: stats.lines.load(Ordering::Relaxed),
        accepted: accepted.load(Ordering::Relaxed),
        rejected: stats.rejected.load(Ordering::Relaxed),
        first_rejected,
        elapsed,
        visible_after,
    })
}

fn progress_bar(enabled: bool, total_bytes: Option<u64>) -> ProgressBar {
    if !enabled {
        return ProgressBar::hidden();
    }
    match total_bytes {
        Some(total) => {
            let bar = ProgressBar::new(total);
            bar.set_style(
                ProgressStyle::with_template("{bar:30} {bytes}/{total_bytes} ({eta}) {msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            bar
        }
        None => ProgressBar::new_spinner(),
    }
}

async fn ensure_topic(client: &reqwest::Client, base: &str, options: &LoadOptions) -> Result<()> {
    let mut body = json!({ "name": options.topic });
    if let Some(p) = options.partitions {
        body["partitions"] = json!(p);
    }
    if let Some(v) = options.vector {
        body["vector"] = json!(v);
    }
    let response = client
        .post(format!("{base}/topics"))
        .json(&body)
        .send()
        .await
        .map_err(|e| Error::Unavailable(format!("cannot reach node at {base}: {e}")))?;
    let status = response.status();
    if status.is_success() {
        return Ok(());
    }
    Err(remote_error(status, response).await)
}

async fn remote_error(status: reqwest::StatusCode, response: reqwest::Response) -> Error {
    let text = response.text().await.unwrap_or_default();
    let message = serde_json::from_str::<Value>(&text)
        .ok()
        .and_then(|v| v.get("error").and_then(Value::as_str).map(str::to_string))
        .unwrap_or(text);
    let message = format!("node answered {status}: {message}");
    if status.is_client_error() {
        Error::BadRequest(message)
    } else {
        Error::Unavailable(message)
    }
}

/// Sends one batch. Only a request that never reached the node is retried: one that reached it
/// may have committed, and resending it would duplicate records.
async fn send_batch(client: &reqwest::Client, url: &str, batch: &[LogRecord]) -> Result<()> {
    let body = serde_json::to_vec(&json!({ "records": batch })).map_err(Error::internal)?;
    let mut attempt = 0;
    loop {
        let result = client
            .post(url)
            .header("content-type", "application/json")
            .body(body.clone())
            .send()
            .await;
        match result {
            Ok(response) if response.status().is_success() => return Ok(()),
            Ok(response) => return Err(remote_error(response.status(), response).await),
            Err(e) if e.is_connect() && attempt < 5 => {
                attempt += 1;
                tokio::time::sleep(Duration::from_millis(200 << attempt)).await;
            }
            Err(e) => {
                return Err(Error::Unavailable(format!(
                    "sending a batch to {url} failed: {e}"
                )));
            }
        }
    }
}

/// Polls the topic on the node at `base` until its index lag is zero (everything it applied
/// is searchable) and at least `records` are searchable there (a follower may not have
/// applied everything yet).
pub async fn wait_visible(
    client: &reqwest::Client,
    base: &str,
    topic: &str,
    records: u64,
) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let response = client
            .get(format!("{base}/topics/{topic}"))
            .send()
            .await
            .map_err(|e| Error::Unavailable(format!("cannot reach node at {base}: {e}")))?;
        let stats: Value = response.json().await.map_err(Error::internal)?;
        let searchable = stats.get("searchable").and_then(Value::as_u64).unwrap_or(0);
        if stats.get("index_lag").and_then(Value::as_u64) == Some(0) && searchable >= records {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(Error::Timeout(format!(
                "topic {topic} on {base} is not all searchable after 300 s: {stats}"
            )));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
