//! `sv-appliance fetch` against a local HTTP server that serves Zenodo's paths: a record API
//! with the md5, and a zip built here, with Range support, a connection dropped mid-download,
//! or a corrupted byte.

use std::io::{BufRead, BufReader, Cursor, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};

use md5::Digest;
use serde_json::json;

use crate::support::binary;

const LINES: u64 = 20_000;

/// The log inside the archive, like Loghub's (last line without a newline, as in the 2k files).
fn log_text() -> Vec<u8> {
    let mut text = Vec::new();
    for i in 0..LINES {
        if i > 0 {
            text.push(b'\n');
        }
        write!(
            text,
            "- {} 2005.11.09 cn{} Nov 9 12:01:01 cn{}/cn{} kernel: fetch test line {i}",
            1131566461 + i,
            i % 50,
            i % 50,
            i % 50
        )
        .unwrap();
    }
    text
}

fn md5_hex(bytes: &[u8]) -> String {
    md5::Md5::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn zip_of(name: &str, content: &[u8]) -> Vec<u8> {
    let mut zip = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    zip.start_file(name, options).unwrap();
    zip.write_all(content).unwrap();
    zip.finish().unwrap().into_inner()
}

/// What the mirror does with the archive.
#[derive(Clone, Copy)]
enum Fault {
    None,
    /// The first download request sends this many bytes, then closes the connection.
    DropFirstAfter(usize),
    /// The first download request sends this many bytes, then holds the connection silent.
    StallFirstAfter(usize),
    /// One byte of the served archive differs from the one the md5 was taken of.
    CorruptByte,
    /// The record lists the archive, but downloading it answers 404.
    MissingArchive,
}

struct Mirror {
    url: String,
    /// Request line and Range header of every request.
    log: Arc<Mutex<Vec<String>>>,
}

fn start_mirror(archive: Vec<u8>, fault: Fault) -> Mirror {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let md5 = md5_hex(&archive);
    let mut served = archive.clone();
    if let Fault::CorruptByte = fault {
        let middle = served.len() / 2;
        served[middle] ^= 0x55;
    }
    let log = Arc::new(Mutex::new(Vec::new()));
    let seen = log.clone();
    let api = json!({
        "id": 8275861,
        "files": [
            { "key": "BGL.zip", "size": 1, "checksum": "md5:00000000000000000000000000000000" },
            // As Zenodo lists it since InvenioRDM: `links.self` names the file by id and
            // answers 404, so the fetcher must not follow it.
            { "key": "Thunderbird.zip", "size": archive.len(), "checksum": format!("md5:{md5}"),
              "links": { "self": format!("{url}/api/records/8275861/files/4f1c-uuid") } },
        ]
    })
    .to_string();
    std::thread::spawn(move || {
        let mut file_requests = 0;
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            let (path, range) = read_request(&stream);
            seen.lock().unwrap().push(format!(
                "{path} range={}",
                range.map_or("-".into(), |r| r.to_string())
            ));
            if path == "/api/records/8275861" {
                respond(stream, "200 OK", "application/json", &[], api.as_bytes());
            } else if path == "/records/8275861/files/Thunderbird.zip?download=1"
                && !matches!(fault, Fault::MissingArchive)
            {
                file_requests += 1;
                let from = range.unwrap_or(0) as usize;
                let body = &served[from..];
                match (fault, file_requests) {
                    (Fault::StallFirstAfter(n), 1) => {
                        // Then nothing, on its own thread so the retry is served meanwhile.
                        let s = promise_all_send_part(stream, body, n);
                        std::thread::spawn(move || {
                            std::thread::sleep(std::time::Duration::from_secs(20));
                            drop(s);
                        });
                        continue;
                    }
                    (Fault::DropFirstAfter(n), 1) => {
                        // Then hang up.
                        let s = promise_all_send_part(stream, body, n);
                        let _ = s.shutdown(std::net::Shutdown::Both);
                        continue;
                    }
                    _ => {}
                }
                let extra = match range {
                    Some(r) => vec![format!(
                        "Content-Range: bytes {r}-{}/{}",
                        served.len() - 1,
                        served.len()
                    )],
                    None => vec![],
                };
                let status = if range.is_some() {
                    "206 Partial Content"
                } else {
                    "200 OK"
                };
                respond(stream, status, "application/zip", &extra, body);
            } else {
                respond(stream, "404 Not Found", "text/plain", &[], b"not found");
            }
        }
    });
    Mirror { url, log }
}

/// Answers 200 with the whole body's length but sends only its first `n` bytes.
fn promise_all_send_part(mut stream: TcpStream, body: &[u8], n: usize) -> TcpStream {
    let head = format!(
        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let _ = stream.write_all(head.as_bytes());
    let _ = stream.write_all(&body[..n]);
    let _ = stream.flush();
    stream
}

fn read_request(stream: &TcpStream) -> (String, Option<u64>) {
    let mut reader = BufReader::new(stream);
    let mut first = String::new();
    reader.read_line(&mut first).unwrap_or(0);
    let path = first.split_whitespace().nth(1).unwrap_or("").to_string();
    let mut range = None;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 || line.trim().is_empty() {
            break;
        }
        let lower = line.to_ascii_lowercase();
        if let Some(v) = lower.strip_prefix("range: bytes=") {
            range = v.trim().trim_end_matches('-').parse().ok();
        }
    }
    (path, range)
}

fn respond(mut stream: TcpStream, status: &str, kind: &str, extra: &[String], body: &[u8]) {
    let mut head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {kind}\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for h in extra {
        head += h;
        head += "\r\n";
    }
    head += "\r\n";
    let _ = stream.write_all(head.as_bytes());
    let _ = stream.write_all(body);
}

fn fetch(dir: &Path, mirror: &str, extra: &[&str]) -> (bool, String) {
    let out = Command::new(binary())
        .args(["fetch", "thunderbird", "--no-progress", "--dir"])
        .arg(dir)
        .args(["--mirror", mirror, "--expect-lines", &LINES.to_string()])
        .args(extra)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[test]
fn fetch_resumes_a_dropped_download_verifies_and_a_second_run_is_a_no_op() {
    let content = log_text();
    let archive = zip_of("Thunderbird/Thunderbird_full.log", &content);
    let mirror = start_mirror(archive.clone(), Fault::DropFirstAfter(archive.len() / 3));
    let dir = tempfile::tempdir().unwrap();
    let (ok, out) = fetch(dir.path(), &mirror.url, &[]);
    assert!(ok, "{out}");
    assert!(out.contains(&format!("{LINES} lines")), "{out}");
    let log = dir.path().join("Thunderbird_full.log");
    assert_eq!(std::fs::read(&log).unwrap(), content);
    let requests = mirror.log.lock().unwrap().clone();
    assert!(
        requests.iter().any(|r| r
            .starts_with("/records/8275861/files/Thunderbird.zip?download=1 range=")
            && !r.ends_with("range=-")),
        "the second attempt resumes with a Range request: {requests:?}"
    );
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(!names.iter().any(|n| n.ends_with(".part")), "{names:?}");

    let before = mirror.log.lock().unwrap().len();
    let (ok, out) = fetch(dir.path(), &mirror.url, &[]);
    assert!(ok && out.contains("already fetched"), "{out}");
    assert_eq!(
        mirror.log.lock().unwrap().len(),
        before,
        "no request on a rerun"
    );
    let (ok, out) = fetch(dir.path(), "http://127.0.0.1:9", &["--offline"]);
    assert!(ok && out.contains("already fetched"), "{out}");
}

#[test]
fn a_corrupt_download_is_refused_and_deleted() {
    let archive = zip_of("Thunderbird/Thunderbird_full.log", &log_text());
    let mirror = start_mirror(archive, Fault::CorruptByte);
    let dir = tempfile::tempdir().unwrap();
    let (ok, out) = fetch(dir.path(), &mirror.url, &[]);
    assert!(!ok, "{out}");
    assert!(out.contains("checksum mismatch"), "{out}");
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "nothing left behind that could be taken for the dataset"
    );
}

#[test]
fn fetch_failures_are_named_and_leave_no_complete_looking_file() {
    let dir = tempfile::tempdir().unwrap();
    // Nothing listens on the mirror.
    let closed = TcpListener::bind("127.0.0.1:0").unwrap();
    let dead = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let (ok, out) = fetch(dir.path(), &dead, &[]);
    assert!(!ok && out.contains("cannot reach"), "{out}");
    let (ok, out) = fetch(dir.path(), &dead, &["--offline"]);
    assert!(!ok && out.contains("--offline"), "{out}");

    // The archive is fine but holds another line count than published.
    let archive = zip_of("Thunderbird/Thunderbird_full.log", &log_text());
    let mirror = start_mirror(archive, Fault::None);
    let out = Command::new(binary())
        .args(["fetch", "thunderbird", "--no-progress", "--dir"])
        .arg(dir.path())
        .args(["--mirror", &mirror.url])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{text}");
    assert!(text.contains("16601745 are published"), "{text}");
    assert!(!dir.path().join("Thunderbird_full.log").exists());
    assert!(!dir.path().join("Thunderbird_full.log.part").exists());

    // A dataset the record does not hold on this mirror.
    let (ok, out) = {
        let out = Command::new(binary())
            .args(["fetch", "hdfs", "--no-progress", "--dir"])
            .arg(dir.path())
            .args(["--mirror", &mirror.url])
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    assert!(!ok && out.contains("has no HDFS.zip"), "{out}");
}

/// Every file in `dir`, by name.
fn names_in(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect()
}

#[test]
fn a_truncated_archive_or_a_full_disk_fails_cleanly() {
    // The record publishes an archive cut short (its md5 is of the cut bytes, so it downloads
    // and verifies): unpacking finds it damaged and leaves no log behind.
    let whole = zip_of("Thunderbird/Thunderbird_full.log", &log_text());
    let cut = whole[..whole.len() * 2 / 3].to_vec();
    let mirror = start_mirror(cut, Fault::None);
    let dir = tempfile::tempdir().unwrap();
    let (ok, out) = fetch(dir.path(), &mirror.url, &[]);
    assert!(!ok && out.contains("damaged archive"), "{out}");
    let names = names_in(dir.path());
    assert!(!names.iter().any(|n| n.contains("_full.log")), "{names:?}");

    // A full disk (writes to /dev/full fail with ENOSPC), first while downloading: the error
    // says so, and nothing that looks like the archive or the log is left.
    let mirror = start_mirror(whole, Fault::None);
    let dir = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink("/dev/full", dir.path().join("Thunderbird.zip.part")).unwrap();
    let (ok, out) = fetch(dir.path(), &mirror.url, &[]);
    assert!(!ok && out.contains("the disk is full"), "{out}");
    let names = names_in(dir.path());
    assert!(
        !names.contains(&"Thunderbird.zip".to_string())
            && !names.iter().any(|n| n.contains("_full.log")),
        "{names:?}"
    );

    // Then while unpacking: the verified archive is kept, the partial log is removed, and once
    // there is space again the next run finishes without downloading anything.
    let dir = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink("/dev/full", dir.path().join("Thunderbird_full.log.part")).unwrap();
    let (ok, out) = fetch(dir.path(), &mirror.url, &[]);
    assert!(!ok && out.contains("the disk is full"), "{out}");
    let names = names_in(dir.path());
    assert_eq!(names, vec!["Thunderbird.zip".to_string()], "{out}");
    let downloads = |m: &Mirror| {
        m.log
            .lock()
            .unwrap()
            .iter()
            .filter(|r| r.starts_with("/records/"))
            .count()
    };
    let before = downloads(&mirror);
    let (ok, out) = fetch(dir.path(), &mirror.url, &[]);
    assert!(ok, "{out}");
    assert_eq!(
        downloads(&mirror),
        before,
        "the kept archive is not downloaded again"
    );
    assert_eq!(
        std::fs::read(dir.path().join("Thunderbird_full.log")).unwrap(),
        log_text()
    );
}

#[test]
fn a_missing_archive_is_named_and_a_partial_download_from_an_earlier_run_resumes() {
    let archive = zip_of("Thunderbird/Thunderbird_full.log", &log_text());
    let missing = start_mirror(archive.clone(), Fault::MissingArchive);
    let dir = tempfile::tempdir().unwrap();
    let (ok, out) = fetch(dir.path(), &missing.url, &[]);
    assert!(!ok && out.contains("HTTP 404"), "{out}");
    assert_eq!(names_in(dir.path()), Vec::<String>::new(), "{out}");

    // An earlier run stopped after a third of the archive: the next one asks only for the
    // rest, and the joined file verifies and unpacks.
    let mirror = start_mirror(archive.clone(), Fault::None);
    let dir = tempfile::tempdir().unwrap();
    let had = archive.len() / 3;
    std::fs::write(dir.path().join("Thunderbird.zip.part"), &archive[..had]).unwrap();
    let (ok, out) = fetch(dir.path(), &mirror.url, &[]);
    assert!(ok, "{out}");
    let downloads: Vec<String> = mirror
        .log
        .lock()
        .unwrap()
        .iter()
        .filter(|r| r.starts_with("/records/"))
        .cloned()
        .collect();
    assert_eq!(
        downloads,
        [format!(
            "/records/8275861/files/Thunderbird.zip?download=1 range={had}"
        )]
    );
    assert_eq!(
        std::fs::read(dir.path().join("Thunderbird_full.log")).unwrap(),
        log_text()
    );
}

/// A mirror publishes its own record, so its md5 vouches only for itself. A pinned `--md5` is
/// checked against the record before anything is downloaded, and the download against the pin.
#[test]
fn a_pinned_md5_refuses_a_mirror_serving_another_file() {
    let genuine = zip_of("Thunderbird/Thunderbird_full.log", &log_text());
    let genuine_md5 = md5_hex(&genuine);
    // Same line count, one word changed: only the checksum can tell.
    let mut altered_text = log_text();
    let at = altered_text.len() / 2;
    altered_text[at] = if altered_text[at] == b'x' { b'y' } else { b'x' };
    let altered = start_mirror(
        zip_of("Thunderbird/Thunderbird_full.log", &altered_text),
        Fault::None,
    );
    let dir = tempfile::tempdir().unwrap();
    let (ok, out) = fetch(dir.path(), &altered.url, &["--md5", &genuine_md5]);
    assert!(!ok, "{out}");
    assert!(
        out.contains(&format!("but --md5 pins {genuine_md5}"))
            && out.contains("nothing was downloaded"),
        "{out}"
    );
    let requests = altered.log.lock().unwrap().clone();
    assert!(
        !requests.iter().any(|r| r.contains("/files/")),
        "{requests:?}"
    );
    assert!(
        names_in(dir.path()).is_empty(),
        "{:?}",
        names_in(dir.path())
    );
    // Without a pin the mirror's word is taken, and the user is told so.
    let (ok, out) = fetch(dir.path(), &altered.url, &[]);
    assert!(ok, "{out}");
    assert!(
        out.contains("the md5 checked is the one the mirror's record gives"),
        "{out}"
    );

    // Pinned to what the mirror serves (in capitals, as a web page may show it): verified
    // against the pin, and the marker says so.
    let mirror = start_mirror(genuine, Fault::None);
    let pinned_dir = tempfile::tempdir().unwrap();
    let (ok, out) = fetch(
        pinned_dir.path(),
        &mirror.url,
        &["--md5", &genuine_md5.to_ascii_uppercase()],
    );
    assert!(ok && out.contains("as pinned with --md5"), "{out}");
    assert!(!out.contains("note: the md5"), "{out}");
    let marker =
        std::fs::read_to_string(pinned_dir.path().join("Thunderbird_full.log.verified")).unwrap();
    assert!(
        marker.contains(&genuine_md5) && marker.contains("pinned (--md5)"),
        "{marker}"
    );

    // Already fetched against one md5, a different pin is refused rather than waved through.
    let (ok, out) = fetch(pinned_dir.path(), &mirror.url, &["--md5", &genuine_md5]);
    assert!(ok && out.contains("already fetched"), "{out}");
    let other = md5_hex(b"another archive");
    let (ok, out) = fetch(pinned_dir.path(), &mirror.url, &["--md5", &other]);
    assert!(
        !ok && out.contains(&format!(
            "verified against md5 {genuine_md5} (pinned (--md5)), not the pinned {other}"
        )),
        "{out}"
    );
    let (ok, out) = fetch(
        tempfile::tempdir().unwrap().path(),
        &mirror.url,
        &["--md5", "d41d8cd9"],
    );
    assert!(
        !ok && out.contains("--md5 must be 32 hexadecimal digits"),
        "{out}"
    );
}

/// A connection that goes silent mid-download is dropped after `--read-timeout-secs` and the
/// download resumes from where it stopped, instead of hanging with a frozen progress bar.
#[test]
fn a_stalled_download_times_out_and_resumes() {
    let content = log_text();
    let archive = zip_of("Thunderbird/Thunderbird_full.log", &content);
    let mirror = start_mirror(archive.clone(), Fault::StallFirstAfter(archive.len() / 2));
    let dir = tempfile::tempdir().unwrap();
    let started = std::time::Instant::now();
    let (ok, out) = fetch(dir.path(), &mirror.url, &["--read-timeout-secs", "1"]);
    assert!(ok, "{out}");
    // Well before the mirror would have closed the stalled connection (20 s).
    assert!(
        started.elapsed() < std::time::Duration::from_secs(15),
        "{out}"
    );
    assert_eq!(
        std::fs::read(dir.path().join("Thunderbird_full.log")).unwrap(),
        content
    );
    let requests = mirror.log.lock().unwrap().clone();
    assert!(
        requests.contains(&format!(
            "/records/8275861/files/Thunderbird.zip?download=1 range={}",
            archive.len() / 2
        )),
        "{requests:?}"
    );
    let (ok, out) = fetch(dir.path(), &mirror.url, &["--read-timeout-secs", "0"]);
    assert!(
        !ok && out.contains("not a number of seconds above 0"),
        "{out}"
    );
}
