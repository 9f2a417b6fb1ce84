//! Reading run records for the report: run ids are checked before they touch the file system
//! (a request can never name a file outside the runs dir), files are read off the async
//! threads, and each run gets a summary for the list and an ETag for live pages.

use std::path::{Path, PathBuf};

use serde::Serialize;
use sha2::Digest;

use crate::bench::record::{self, RunRecord};
use crate::dataset::civil::days_from_civil;
use crate::error::{Error, Result};

/// The run with this id (or a unique id prefix, or `latest`).
pub async fn load(dir: &Path, id: &str) -> Result<RunRecord> {
    record::check_run_id(id)?;
    let dir = dir.to_path_buf();
    let id = id.to_string();
    blocking(move || {
        let direct = dir.join(format!("{id}.json"));
        if direct.is_file() {
            // A file that exists but cannot be read as a record is the server's problem, not
            // the request's.
            return RunRecord::load(&direct).map_err(|e| match e {
                Error::Config(msg) => Error::Internal(msg),
                other => other,
            });
        }
        record::find_run(&dir, &id).map_err(|e| match e {
            // An ambiguous prefix: the caller can fix it by giving more of the id.
            Error::Config(msg) => Error::BadRequest(msg),
            other => other,
        })
    })
    .await
}

/// Every run, newest first, and a message per file that could not be read.
pub async fn list(dir: &Path) -> Result<(Vec<RunRecord>, Vec<String>)> {
    let dir = dir.to_path_buf();
    blocking(move || {
        let (mut runs, problems) = record::list_runs(&dir);
        runs.reverse();
        Ok((runs, problems))
    })
    .await
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(Error::internal)?
}

/// The record as the API serves it (and as `save` writes it).
pub fn record_json(run: &RunRecord) -> Result<Vec<u8>> {
    serde_json::to_vec_pretty(run).map_err(Error::internal)
}

/// A strong ETag of a response body: the run page embeds the one of its record, and
/// `report.js` reloads when `/api/runs/{id}` answers with another.
pub fn etag(body: &[u8]) -> String {
    let digest = sha2::Sha256::digest(body);
    format!("\"{}\"", crate::checksum::hex(&digest[..12]))
}

/// One line of the run list (`GET /api/runs`). Only values from the file, nothing relative to
/// now, so the list's ETag changes only when a run does.
#[derive(Debug, Clone, Serialize)]
pub struct RunSummary {
    pub id: String,
    pub label: String,
    pub scale: String,
    pub status: String,
    pub error: Option<String>,
    pub started_at: String,
    pub finished_at: Option<String>,
    pub duration_secs: Option<f64>,
    pub package: String,
    pub git: String,
    pub build: String,
    pub phases: usize,
    pub tasks: usize,
    pub criteria_passed: usize,
    pub criteria_total: usize,
}

impl RunSummary {
    pub fn of(run: &RunRecord) -> RunSummary {
        let criteria = run.phases.iter().flat_map(|p| &p.criteria);
        RunSummary {
            id: run.id.clone(),
            label: run.label.clone(),
            scale: run.scale.clone(),
            status: run.status.clone(),
            error: run.error.clone(),
            started_at: run.started_at.clone(),
            finished_at: run.finished_at.clone(),
            duration_secs: finished_duration(run),
            package: run.version.package.clone(),
            git: run.version.git.clone(),
            build: run.version.build.clone(),
            phases: run.phases.len(),
            tasks: run.phases.iter().map(|p| p.tasks.len()).sum(),
            criteria_passed: criteria.clone().filter(|c| c.passed).count(),
            criteria_total: criteria.count(),
        }
    }
}

/// `finished_at - started_at`, when both parse.
pub fn finished_duration(run: &RunRecord) -> Option<f64> {
    let start = epoch_secs(&run.started_at)?;
    let end = epoch_secs(run.finished_at.as_deref()?)?;
    Some(end - start)
}

/// How long the run has taken so far: finished runs from their timestamps, a run still going
/// from its start until now.
pub fn elapsed(run: &RunRecord) -> Option<f64> {
    finished_duration(run).or_else(|| {
        let start = epoch_secs(&run.started_at)?;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .ok()?
            .as_secs_f64();
        Some((now - start).max(0.0))
    })
}

/// Seconds since 1970 of an RFC 3339 time (`2026-05-01T12:00:00.25Z`, `…+02:00`).
pub fn epoch_secs(text: &str) -> Option<f64> {
    let text = text.trim();
    let number = |range: std::ops::Range<usize>| -> Option<i64> {
        let part = text.get(range)?;
        part.bytes()
            .all(|b| b.is_ascii_digit())
            .then(|| part.parse().ok())?
    };
    let (year, month, day) = (number(0..4)?, number(5..7)?, number(8..10)?);
    let (hour, minute, second) = (number(11..13)?, number(14..16)?, number(17..19)?);
    if !matches!(text.as_bytes().get(10), Some(b'T' | b't' | b' '))
        || !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
    {
        return None;
    }
    let rest = &text[19..];
    let zone_at = rest.find(['Z', 'z', '+', '-']).unwrap_or(rest.len());
    let fraction = match &rest[..zone_at] {
        "" => 0.0,
        f if f.starts_with('.') => format!("0{f}").parse::<f64>().ok()?,
        _ => return None,
    };
    let offset = match &rest[zone_at..] {
        "Z" | "z" => 0,
        zone if zone.len() == 6 && zone.as_bytes()[3] == b':' => {
            let hours: i64 = zone[1..3].parse().ok()?;
            let minutes: i64 = zone[4..6].parse().ok()?;
            let sign = if zone.starts_with('-') { -1 } else { 1 };
            sign * (hours * 3600 + minutes * 60)
        }
        _ => return None,
    };
    let days = days_from_civil(year, month as u32, day as u32);
    let secs = days * 86_400 + hour * 3600 + minute * 60 + second - offset;
    Some(secs as f64 + fraction)
}

/// The runs dir as printed to the user: absolute when it can be made so.
pub fn display_dir(dir: &Path) -> PathBuf {
    std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_that_could_leave_the_runs_dir_are_refused() {
        for bad in [
            "", "..", "../x", "a/b", "a\\b", "x..y", ".hidden", "..%2F", "a\0b", "a\nb",
        ] {
            let err = record::check_run_id(bad).unwrap_err();
            assert_eq!(err.status_code(), 400, "{bad:?}");
        }
        for good in ["20260501T120000Z-SV-2a", "latest", "2026", "run.v2", "a b"] {
            record::check_run_id(good).unwrap();
        }
    }

    #[test]
    fn parses_rfc3339() {
        assert_eq!(epoch_secs("1970-01-01T00:00:00Z"), Some(0.0));
        assert_eq!(epoch_secs("2026-05-01T12:00:00Z"), Some(1_777_636_800.0));
        assert_eq!(
            epoch_secs("2026-05-01T14:00:00.5+02:00"),
            Some(1_777_636_800.5)
        );
        assert_eq!(epoch_secs("2026-05-01"), None);
        assert_eq!(epoch_secs("2026-13-01T00:00:00Z"), None);
        assert_eq!(epoch_secs("2026-05-01T12:00:00"), None);
    }

    #[tokio::test]
    async fn unknown_and_refused_ids_map_to_404_and_400() {
        let dir = tempfile::tempdir().unwrap();
        let missing = load(dir.path(), "20990101T000000Z-nothing")
            .await
            .unwrap_err();
        assert_eq!(missing.status_code(), 404);
        let refused = load(dir.path(), "../etc/passwd").await.unwrap_err();
        assert_eq!(refused.status_code(), 400);
        std::fs::write(dir.path().join("broken.json"), b"{not json").unwrap();
        let broken = load(dir.path(), "broken").await.unwrap_err();
        assert_eq!(broken.status_code(), 500);
        let (runs, problems) = list(dir.path()).await.unwrap();
        assert!(runs.is_empty());
        assert_eq!(problems.len(), 1, "{problems:?}");
    }
}
