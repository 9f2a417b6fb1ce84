//! `PUT /internal/runs/{id}` on a node's raft port (behind the cluster token like every
//! `/internal` route): stores a run record the harness publishes into the node's runs dir, so
//! the node's `/report/` shows it. The id is checked before it touches the file system, the
//! body must be a run record of this binary's schema carrying that id, and the file is
//! replaced atomically, so a page never reads half a record.

use std::path::{Path as FsPath, PathBuf};
use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde_json::{Value, json};

use super::store;
use crate::bench::record::{self, RunRecord, SCHEMA};
use crate::error::{Error, Result};
use crate::node::Node;

/// Largest record accepted. A record carries one telemetry sample a second per node, so a
/// long run of a large cluster reaches tens of MiB; the raft port's own limit is far higher.
pub const MAX_RUN_BYTES: usize = 64 * 1024 * 1024;

/// Serialises the compare-and-replace of a record: two publishes of the same run may arrive
/// together, and the older must not overwrite the newer.
static WRITE_LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// The handler: 201 for a new run, 200 for a replaced (or kept newer) one, 400 for a bad id or
/// body, 413 over [`MAX_RUN_BYTES`].
pub async fn put_run(
    State(node): State<Arc<Node>>,
    Path(id): Path<String>,
    body: Body,
) -> Result<(StatusCode, Json<Value>)> {
    let bytes = axum::body::to_bytes(body, MAX_RUN_BYTES)
        .await
        .map_err(|e| {
            Error::TooLarge(format!(
                "run record over {MAX_RUN_BYTES} bytes or not fully received: {e}"
            ))
        })?;
    let run = parse(&id, &bytes)?;
    let dir = node.config.runs_dir();
    let stored = tokio::task::spawn_blocking(move || store_run(&dir, &run))
        .await
        .map_err(Error::internal)??;
    let status = match stored {
        Stored::Created => StatusCode::CREATED,
        Stored::Replaced | Stored::KeptNewer => StatusCode::OK,
    };
    Ok((
        status,
        Json(json!({ "id": id, "stored": stored != Stored::KeptNewer })),
    ))
}

/// The record in `body`, if it is one this node can show under `id`.
pub fn parse(id: &str, body: &[u8]) -> Result<RunRecord> {
    record::check_run_id(id)?;
    if id == "latest" {
        // `latest` names the newest run in every lookup, so no run can be stored under it.
        return Err(Error::bad_request("run id \"latest\" is reserved"));
    }
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| Error::bad_request(format!("body is not JSON: {e}")))?;
    let schema = value["schema"].as_u64().unwrap_or(0);
    if schema != u64::from(SCHEMA) {
        return Err(Error::bad_request(format!(
            "run record has schema {schema}; this node reads schema {SCHEMA}"
        )));
    }
    let run: RunRecord = serde_json::from_value(value)
        .map_err(|e| Error::bad_request(format!("body is not a run record: {e}")))?;
    if run.id != id {
        return Err(Error::bad_request(format!(
            "run id in the path ({id:?}) differs from the record's ({:?})",
            run.id
        )));
    }
    Ok(run)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stored {
    Created,
    Replaced,
    /// The file already held a later `updated_at`: publishes that overtook each other.
    KeptNewer,
}

/// Writes `run` as `<dir>/<id>.json` (temp file, fsync, rename), unless the file there was
/// updated later.
pub fn store_run(dir: &FsPath, run: &RunRecord) -> Result<Stored> {
    let _guard = WRITE_LOCK
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    std::fs::create_dir_all(dir)
        .map_err(|e| Error::Internal(format!("cannot create runs dir {}: {e}", dir.display())))?;
    let path = run.path_in(dir);
    let existed = path.is_file();
    if existed
        && let Ok(current) = RunRecord::load(&path)
        && is_later(current.updated_at.as_deref(), run.updated_at.as_deref())
    {
        return Ok(Stored::KeptNewer);
    }
    // A leading dot: `list_runs` skips it, and `check_run_id` refuses such ids. Not the name
    // `RunRecord::save` uses, in case a runner writes into this directory too.
    let tmp: PathBuf = dir.join(format!(".{}.json.received", run.id));
    {
        let mut file = std::fs::File::create(&tmp)?;
        std::io::Write::write_all(&mut file, &store::record_json(run)?)?;
        file.sync_all()?;
    }
    std::fs::rename(&tmp, &path)?;
    Ok(if existed {
        Stored::Replaced
    } else {
        Stored::Created
    })
}

/// Whether `current` is strictly later than `incoming`; unknown times never keep a file.
fn is_later(current: Option<&str>, incoming: Option<&str>) -> bool {
    match (
        current.and_then(store::epoch_secs),
        incoming.and_then(store::epoch_secs),
    ) {
        (Some(current), Some(incoming)) => current > incoming,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(id: &str, updated_at: &str, status: &str) -> Value {
        json!({
            "schema": SCHEMA, "id": id, "label": "SV-2a", "scale": "tiny", "status": status,
            "error": null, "started_at": "2026-05-01T12:00:00Z", "finished_at": null,
            "updated_at": updated_at,
            "version": { "package": "0.1.0", "git": "abc", "build": "debug" },
            "hardware": { "hostname": "h", "os": "linux", "cpu_model": "x", "cpus": 2,
                          "memory_bytes": 1024 },
            "environment": { "kind": "external", "targets": [], "notes": [] },
            "phases": [], "telemetry": []
        })
    }

    fn bytes(v: &Value) -> Vec<u8> {
        serde_json::to_vec(v).unwrap()
    }

    #[test]
    fn refuses_bad_ids_and_bodies_with_400() {
        let good = record("20260501T120000Z-SV-2a", "2026-05-01T12:00:01Z", "running");
        parse("20260501T120000Z-SV-2a", &bytes(&good)).unwrap();
        for (id, body) in [
            ("../x", bytes(&good)),
            ("a/b", bytes(&good)),
            (".hidden", bytes(&good)),
            ("latest", bytes(&record("latest", "", "passed"))),
            ("20260501T120000Z-other", bytes(&good)),
            ("20260501T120000Z-SV-2a", b"{not json".to_vec()),
            ("20260501T120000Z-SV-2a", b"{\"schema\": 1}".to_vec()),
            ("20260501T120000Z-SV-2a", bytes(&json!({ "schema": 99 }))),
        ] {
            let err = parse(id, &body).unwrap_err();
            assert_eq!(err.status_code(), 400, "{id:?}: {err}");
        }
    }

    #[test]
    fn stores_atomically_and_keeps_the_later_copy() {
        let dir = tempfile::tempdir().unwrap();
        let runs = dir.path().join("runs");
        let id = "20260501T120000Z-SV-2a";
        let parse_at = |at: &str, status: &str| parse(id, &bytes(&record(id, at, status))).unwrap();
        let first = parse_at("2026-05-01T12:00:01Z", "running");
        assert_eq!(store_run(&runs, &first).unwrap(), Stored::Created);
        let done = parse_at("2026-05-01T12:05:00Z", "passed");
        assert_eq!(store_run(&runs, &done).unwrap(), Stored::Replaced);
        // A publish that overtook the final one must not bring `running` back.
        assert_eq!(store_run(&runs, &first).unwrap(), Stored::KeptNewer);
        let (list, problems) = record::list_runs(&runs);
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(list.len(), 1);
        assert_eq!(list[0].status, "passed");
        let names: Vec<_> = std::fs::read_dir(&runs)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(names, [format!("{id}.json")], "no temp file left");
    }
}
