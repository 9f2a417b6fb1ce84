//! `GET /_telemetry`: this node's process and cluster vitals in one small JSON object, which the
//! benchmark runner samples every second on every node (CPU, RSS, disk and network bytes,
//! raft leadership and lag, index and embedding lag, query-cache hit ratio).

use std::sync::OnceLock;

use axum::Json;
use axum::extract::State;
use parking_lot::Mutex;
use serde_json::{Value, json};
use sysinfo::{Networks, Pid, ProcessRefreshKind, ProcessesToUpdate, System};

use crate::router::AppState;

/// One `System` for the process: CPU usage is the change since the previous refresh, so the
/// state must outlive a request.
fn probe() -> &'static Mutex<(Option<System>, Option<Networks>)> {
    static PROBE: OnceLock<Mutex<(Option<System>, Option<Networks>)>> = OnceLock::new();
    PROBE.get_or_init(|| Mutex::new((System::new().ok(), Networks::new_with_refreshed_list().ok())))
}

pub async fn telemetry(State(state): State<AppState>) -> Json<Value> {
    let (process, host) = tokio::task::spawn_blocking(process_vitals)
        .await
        .unwrap_or((Value::Null, Value::Null));
    let node = &state.node;
    let (mut records, mut index_lag, mut vectors, mut vector_topics) = (0u64, 0u64, 0u64, false);
    for topic in node.topics() {
        let stats = node.topic_stats(&topic);
        records += stats.records;
        index_lag += stats.index_lag;
        if topic.vector_enabled() {
            vector_topics = true;
            vectors += topic.vectors.iter().map(|v| v.len()).sum::<u64>();
        }
    }
    let (leaders, max_lag) = raft_vitals(&node.raft_status(), node.config.node_id);
    let cache = node.query_cache.stats();
    Json(json!({
        "node_id": node.config.node_id,
        "process": process,
        "host": host,
        "records": records,
        "index_lag": index_lag,
        "embed_lag": vector_topics.then(|| records.saturating_sub(vectors)),
        "raft_leaders": leaders,
        "raft_max_lag": max_lag,
        "cache_hit_ratio": cache.hit_ratio(),
    }))
}

/// This process's CPU, memory and disk I/O, and the host's network bytes (per-process network
/// counters do not exist on Linux; on a host running one node they are the node's).
fn process_vitals() -> (Value, Value) {
    let mut guard = probe().lock();
    let (system, networks) = &mut *guard;
    let pid = Pid::from_u32(std::process::id());
    let (rx, tx) = networks.as_mut().map_or((None, None), |n| {
        n.refresh(true);
        let rx = n.values().map(|d| d.total_received()).sum::<u64>();
        let tx = n.values().map(|d| d.total_transmitted()).sum::<u64>();
        (Some(rx), Some(tx))
    });
    let host = json!({ "net_rx_bytes": rx, "net_tx_bytes": tx });
    let Some(system) = system.as_mut() else {
        return (Value::Null, host);
    };
    system.refresh_processes_specifics(
        ProcessesToUpdate::Some(&[pid]),
        true,
        ProcessRefreshKind::nothing()
            .with_cpu()
            .with_memory()
            .with_disk_usage(),
    );
    let process = match system.process(pid) {
        Some(p) => {
            let disk = p.disk_usage();
            json!({
                "cpu_percent": p.cpu_usage(),
                "rss_bytes": p.memory(),
                "disk_read_bytes": disk.total_read_bytes,
                "disk_written_bytes": disk.total_written_bytes,
            })
        }
        None => Value::Null,
    };
    (process, host)
}

/// Groups this node leads, and over those the largest gap between its log and a follower's
/// matched index (0 on a single node, whose groups have no followers).
fn raft_vitals(status: &Value, me: u64) -> (u64, u64) {
    let mut leaders = 0;
    let mut max_lag = 0;
    for group in status["groups"].as_array().into_iter().flatten() {
        if group["leader"].as_u64() != Some(me) {
            continue;
        }
        leaders += 1;
        let last = group["last_log_index"].as_u64().unwrap_or(0);
        for matched in group["matched"]
            .as_object()
            .into_iter()
            .flat_map(|m| m.values())
        {
            max_lag = max_lag.max(last.saturating_sub(matched.as_u64().unwrap_or(0)));
        }
    }
    (leaders, max_lag)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lag_counts_only_groups_this_node_leads() {
        let status = json!({ "groups": [
            { "leader": 1, "last_log_index": 100, "matched": { "1": 100, "2": 90, "3": null } },
            { "leader": 2, "last_log_index": 500, "matched": { "1": 1 } },
            { "leader": 1, "last_log_index": 7, "matched": null },
        ]});
        // Group 1: node 3 has matched nothing yet, so its lag is the whole log.
        assert_eq!(raft_vitals(&status, 1), (2, 100));
        assert_eq!(raft_vitals(&status, 2), (1, 499));
        assert_eq!(raft_vitals(&status, 3), (0, 0));
    }
}
