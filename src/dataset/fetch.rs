//! `sv-appliance fetch`: a Loghub-2.0 dataset from Zenodo (record 8275861): resumable download
//! (HTTP Range), the md5 Zenodo publishes, streamed unpacking of `<Name>_full.log`, and the
//! published line count. Nothing that looks complete is ever left half written: work goes to
//! `.part` files, renamed only once verified.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::dataset::LogFormat;
use crate::error::{Error, Result};

pub const ZENODO: &str = "https://zenodo.org";
/// Loghub-2.0 on Zenodo.
pub const RECORD: u64 = 8275861;
/// Attempts per download before giving up (each resumes where the last stopped).
const ATTEMPTS: u32 = 6;

/// What Loghub publishes about a dataset.
pub struct Published {
    /// Archive and log stem on Zenodo: `Thunderbird` → `Thunderbird.zip`, `Thunderbird_full.log`.
    pub name: &'static str,
    /// Lines of `<name>_full.log` (Loghub-2.0 README).
    pub lines: u64,
}

pub fn published(format: LogFormat) -> Published {
    match format {
        LogFormat::Thunderbird => Published {
            name: "Thunderbird",
            lines: 16_601_745,
        },
        LogFormat::Bgl => Published {
            name: "BGL",
            lines: 4_631_261,
        },
        LogFormat::Hdfs => Published {
            name: "HDFS",
            lines: 11_167_740,
        },
    }
}

pub struct FetchOptions {
    pub format: LogFormat,
    pub dir: PathBuf,
    /// Base URL serving Zenodo's paths (`/api/records/…`, `/records/…/files/…`).
    pub mirror: Option<String>,
    pub offline: bool,
    /// Overrides the published line count (a mirror of another version).
    pub expect_lines: Option<u64>,
    /// The archive's md5 as the user trusts it, instead of the one the record serves: a
    /// mirror publishes its own record, so without a pin it vouches for itself.
    pub md5: Option<String>,
    /// Gives up on a connection that sends nothing for this long (the next attempt resumes).
    pub read_timeout: Duration,
    pub progress: bool,
}

/// Written beside the log once it is verified; its presence makes a rerun a no-op.
#[derive(Debug, Serialize, Deserialize)]
struct Verified {
    archive: String,
    md5: String,
    /// `pinned (--md5)` or `the record's`.
    #[serde(default)]
    md5_from: String,
    lines: u64,
    bytes: u64,
    source: String,
}

pub struct FetchOutcome {
    pub log: PathBuf,
    pub lines: u64,
    pub bytes: u64,
    pub already: bool,
}

/// `--md5` as given, lower-cased, or why it cannot be one.
fn pinned_md5(given: Option<&str>) -> Result<Option<String>> {
    let Some(given) = given else {
        return Ok(None);
    };
    let hex = given.trim().to_ascii_lowercase();
    if hex.len() != 32 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(Error::bad_request(format!(
            "--md5 must be 32 hexadecimal digits, got {given:?}"
        )));
    }
    Ok(Some(hex))
}

pub async fn fetch(options: &FetchOptions) -> Result<FetchOutcome> {
    let pinned = pinned_md5(options.md5.as_deref())?;
    let info = published(options.format);
    let expected_lines = options.expect_lines.unwrap_or(info.lines);
    let log = options.dir.join(format!("{}_full.log", info.name));
    let marker = options.dir.join(format!("{}_full.log.verified", info.name));
    if let Some(done) = already_fetched(&log, &marker, expected_lines) {
        if let Some(pin) = pinned.as_ref().filter(|pin| **pin != done.md5) {
            return Err(Error::Conflict(format!(
                "{} was verified against md5 {} ({}), not the pinned {pin}; delete it and {} to fetch it again",
                log.display(),
                done.md5,
                if done.md5_from.is_empty() {
                    "the record's"
                } else {
                    done.md5_from.as_str()
                },
                marker.display()
            )));
        }
        return Ok(FetchOutcome {
            log,
            lines: done.lines,
            bytes: done.bytes,
            already: true,
        });
    }
    if options.offline {
        return Err(Error::bad_request(format!(
            "--offline: {} is not fetched yet (run without --offline; add --mirror URL to fetch from a mirror)",
            log.display()
        )));
    }
    std::fs::create_dir_all(&options.dir).map_err(|e| io_context(&options.dir, e))?;
    let base = options
        .mirror
        .as_deref()
        .unwrap_or(ZENODO)
        .trim_end_matches('/')
        .to_string();
    let client = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(15))
        // A stalled connection otherwise waits forever with the progress bar frozen.
        .read_timeout(options.read_timeout)
        .build()
        .map_err(Error::internal)?;
    let archive_name = format!("{}.zip", info.name);
    let remote = record_file(&client, &base, &archive_name).await?;
    // The md5 to verify against, and in whose word.
    let (md5, md5_from) = match (pinned, &remote.md5) {
        (Some(pin), Some(published)) if &pin != published => {
            return Err(Error::Unavailable(format!(
                "{archive_name}: {base} publishes md5 {published}, but --md5 pins {pin}: it may serve another file; nothing was downloaded"
            )));
        }
        (Some(pin), _) => (pin, "pinned (--md5)"),
        (None, Some(published)) => (published.clone(), "the record's"),
        (None, None) => {
            return Err(Error::Unavailable(format!(
                "{base}: the record gives no md5 for {archive_name}; pass the one you trust with --md5"
            )));
        }
    };
    let archive = options.dir.join(&archive_name);
    let part = options.dir.join(format!("{archive_name}.part"));
    // An archive an earlier run kept (its unpack failed) was checked against that run's md5,
    // which need not be this one's.
    if archive.exists() && md5_file(&archive)? != md5 {
        std::fs::remove_file(&archive).map_err(|e| io_context(&archive, e))?;
    }
    if !archive.exists() {
        if options.mirror.is_some() && options.md5.is_none() {
            eprintln!(
                "note: the md5 checked is the one the mirror's record gives; --md5 HEX checks the archive against one you trust"
            );
        }
        download(&client, &remote, &part, options.progress).await?;
        let actual = md5_file(&part)?;
        if actual != md5 {
            // A corrupt download must not be resumed from: start over next time.
            let _ = std::fs::remove_file(&part);
            return Err(Error::Unavailable(format!(
                "{archive_name}: checksum mismatch: expected md5 {md5} ({md5_from}), the download has {actual}; the download was deleted, run again"
            )));
        }
        std::fs::rename(&part, &archive).map_err(|e| io_context(&archive, e))?;
    }
    let (lines, bytes) = unpack(&archive, info.name, &log, options.progress).inspect_err(|_| {
        // A partly unpacked log is of no use to a later run, which unpacks from the start.
        let _ = std::fs::remove_file(log.with_extension("log.part"));
    })?;
    if lines != expected_lines {
        let _ = std::fs::remove_file(log.with_extension("log.part"));
        return Err(Error::Unavailable(format!(
            "{}: {lines} lines, but {expected_lines} are published; the archive is kept at {} for inspection (if the source carries another version, --expect-lines {lines} accepts its count)",
            log.display(),
            archive.display()
        )));
    }
    std::fs::rename(log.with_extension("log.part"), &log).map_err(|e| io_context(&log, e))?;
    let verified = Verified {
        archive: archive_name,
        md5,
        md5_from: md5_from.into(),
        lines,
        bytes,
        source: remote.url,
    };
    std::fs::write(
        &marker,
        serde_json::to_vec_pretty(&verified).map_err(Error::internal)?,
    )
    .map_err(|e| io_context(&marker, e))?;
    // The log is what the loader reads; the archive is only a second copy of it.
    let _ = std::fs::remove_file(&archive);
    Ok(FetchOutcome {
        log,
        lines,
        bytes,
        already: false,
    })
}

fn already_fetched(log: &Path, marker: &Path, lines: u64) -> Option<Verified> {
    let done: Verified = serde_json::from_slice(&std::fs::read(marker).ok()?).ok()?;
    let size = std::fs::metadata(log).ok()?.len();
    (done.lines == lines && done.bytes == size).then_some(done)
}

/// One file of the record, as Zenodo's API lists it.
struct RemoteFile {
    url: String,
    size: u64,
    /// None when the record gives none (a mirror's hand-written record may not).
    md5: Option<String>,
}

async fn record_file(client: &reqwest::Client, base: &str, key: &str) -> Result<RemoteFile> {
    let api = format!("{base}/api/records/{RECORD}");
    let response = client
        .get(&api)
        .timeout(Duration::from_secs(60))
        .send()
        .await
        .map_err(|e| {
            Error::Unavailable(format!(
                "cannot reach {api}: {e} (no network? --mirror URL serves the same paths)"
            ))
        })?;
    if !response.status().is_success() {
        return Err(Error::Unavailable(format!(
            "{api}: HTTP {}",
            response.status()
        )));
    }
    let record: Value = response
        .json()
        .await
        .map_err(|e| Error::Unavailable(format!("{api}: not a Zenodo record: {e}")))?;
    let files = record["files"].as_array().cloned().unwrap_or_default();
    let Some(file) = files.iter().find(|f| f["key"] == key) else {
        let keys: Vec<&str> = files.iter().filter_map(|f| f["key"].as_str()).collect();
        return Err(Error::NotFound(format!(
            "record {RECORD} has no {key} (it lists: {})",
            keys.join(", ")
        )));
    };
    // `md5:<hex>` as the records API writes it; a bare hex digest as the deposit API does.
    let md5 = file["checksum"]
        .as_str()
        .map(|c| c.strip_prefix("md5:").unwrap_or(c).to_ascii_lowercase())
        .filter(|c| c.len() == 32 && c.chars().all(|ch| ch.is_ascii_hexdigit()));
    let size = file["size"]
        .as_u64()
        .ok_or_else(|| Error::Unavailable(format!("{api}: no size for {key}")))?;
    // The record page's download link, built rather than taken from `links.self`: since
    // Zenodo moved to InvenioRDM that link names the file by id and answers 404
    // (zenodo/zenodo#2486).
    let url = format!("{base}/records/{RECORD}/files/{key}?download=1");
    Ok(RemoteFile { url, size, md5 })
}

/// Downloads `remote` into `part`, resuming from what `part` already holds, retrying a dropped
/// connection from where it stopped.
async fn download(
    client: &reqwest::Client,
    remote: &RemoteFile,
    part: &Path,
    progress: bool,
) -> Result<()> {
    let bar = bar(progress, remote.size, "download");
    let mut last_error = String::new();
    for attempt in 0..ATTEMPTS {
        if attempt > 0 {
            tokio::time::sleep(Duration::from_millis(500 << attempt.min(4))).await;
        }
        let mut have = std::fs::metadata(part).map(|m| m.len()).unwrap_or(0);
        if have > remote.size {
            std::fs::remove_file(part).map_err(|e| io_context(part, e))?;
            have = 0;
        }
        bar.set_position(have);
        if have == remote.size {
            bar.finish_and_clear();
            return Ok(());
        }
        let mut request = client.get(&remote.url);
        if have > 0 {
            request = request.header("Range", format!("bytes={have}-"));
        }
        let mut response = match request.send().await {
            Ok(r) => r,
            Err(e) => {
                last_error = format!("cannot reach {}: {e}", remote.url);
                continue;
            }
        };
        let status = response.status();
        let append = match status.as_u16() {
            206 => true,
            200 => false, // the server ignored the range: start over
            404 => {
                return Err(Error::NotFound(format!("{}: HTTP 404", remote.url)));
            }
            _ => {
                last_error = format!("{}: HTTP {status}", remote.url);
                continue;
            }
        };
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(append)
            .write(true)
            .truncate(!append)
            .open(part)
            .map_err(|e| io_context(part, e))?;
        if !append {
            bar.set_position(0);
        }
        loop {
            match response.chunk().await {
                Ok(Some(chunk)) => {
                    file.write_all(&chunk).map_err(|e| io_context(part, e))?;
                    bar.inc(chunk.len() as u64);
                }
                Ok(None) => break,
                Err(e) => {
                    last_error = format!("connection dropped: {e}");
                    break;
                }
            }
        }
        file.sync_all().map_err(|e| io_context(part, e))?;
        let have = std::fs::metadata(part).map(|m| m.len()).unwrap_or(0);
        if have == remote.size {
            bar.finish_and_clear();
            return Ok(());
        }
        if last_error.is_empty() {
            last_error = format!("the server sent {have} of {} bytes", remote.size);
        }
    }
    bar.abandon();
    Err(Error::Unavailable(format!(
        "download of {} failed after {ATTEMPTS} attempts: {last_error}; what arrived is kept in {} and the next run resumes it",
        remote.url,
        part.display()
    )))
}

fn md5_file(path: &Path) -> Result<String> {
    let file = std::fs::File::open(path).map_err(|e| io_context(path, e))?;
    crate::checksum::hex_digest_of::<md5::Md5>(file).map_err(|e| io_context(path, e))
}

/// Streams the archive's `*_full.log` member into `<log>.part`, counting lines on the way.
fn unpack(archive: &Path, name: &str, log: &Path, progress: bool) -> Result<(u64, u64)> {
    let damaged = |e: &dyn std::fmt::Display| {
        Error::Unavailable(format!(
            "{} matches its md5 but is not a readable zip ({e}): the source publishes a damaged archive; it is kept for inspection",
            archive.display()
        ))
    };
    let file = std::fs::File::open(archive).map_err(|e| io_context(archive, e))?;
    let mut zip = zip::ZipArchive::new(file).map_err(|e| damaged(&e))?;
    let wanted = format!("{name}_full.log");
    let names: Vec<String> = zip
        .file_names()
        .filter_map(|n| n.ok().map(|n| n.into_owned()))
        .collect();
    let member = names
        .iter()
        .find(|n| n.ends_with(&wanted))
        .or_else(|| names.iter().find(|n| n.ends_with("_full.log")))
        .cloned()
        .ok_or_else(|| {
            Error::Unavailable(format!(
                "{} has no member ending in {wanted}",
                archive.display()
            ))
        })?;
    let mut entry = zip.by_name(&member).map_err(|e| damaged(&e))?;
    let bar = bar(progress, entry.size(), "unpack");
    let part = log.with_extension("log.part");
    let mut out = std::io::BufWriter::with_capacity(
        1 << 20,
        std::fs::File::create(&part).map_err(|e| io_context(&part, e))?,
    );
    let (mut lines, mut bytes, mut last) = (0u64, 0u64, b'\n');
    let mut buf = vec![0u8; 1 << 20];
    loop {
        // A truncated or corrupt member fails here (deflate error or CRC mismatch at the end).
        let n = entry.read(&mut buf).map_err(|e| damaged(&e))?;
        if n == 0 {
            break;
        }
        out.write_all(&buf[..n]).map_err(|e| io_context(&part, e))?;
        lines += buf[..n].iter().filter(|&&b| b == b'\n').count() as u64;
        bytes += n as u64;
        last = buf[n - 1];
        bar.inc(n as u64);
    }
    if bytes > 0 && last != b'\n' {
        lines += 1; // a last line without a newline
    }
    let file = out
        .into_inner()
        .map_err(|e| io_context(&part, e.into_error()))?;
    file.sync_all().map_err(|e| io_context(&part, e))?;
    bar.finish_and_clear();
    Ok((lines, bytes))
}

fn bar(enabled: bool, total: u64, what: &str) -> ProgressBar {
    if !enabled {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(total);
    bar.set_style(
        ProgressStyle::with_template(
            "{msg:9} {bar:30} {bytes}/{total_bytes} {bytes_per_sec} ETA {eta}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar.set_message(what.to_string());
    bar
}

/// An I/O error naming the file (a full disk says which write failed, and what to do).
fn io_context(path: &Path, e: std::io::Error) -> Error {
    let message = if e.kind() == std::io::ErrorKind::StorageFull {
        format!(
            "{}: the disk is full ({e}); free some space and run again (a download resumes where it stopped)",
            path.display()
        )
    } else {
        format!("{}: {e}", path.display())
    };
    Error::Io(std::io::Error::new(e.kind(), message))
}
