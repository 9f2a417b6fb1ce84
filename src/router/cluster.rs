//! `GET /_cluster/status`: every member's raft view gathered into one answer: who is up, who
//! leads each group, and how far each replica lags its leader.

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};

use crate::cluster::rpc::{Forwarded, forward_get};
use crate::error::Result;
use crate::router::AppState;

/// A member that does not answer within this is reported unreachable.
const MEMBER_TIMEOUT: Duration = Duration::from_secs(2);

pub async fn status(State(state): State<AppState>) -> Result<Json<Value>> {
    let node = &state.node;
    let config = &node.config;
    if !config.cluster.is_clustered() {
        return Ok(Json(json!({
            "clustered": false,
            "members": [{ "id": config.node_id, "api": config.api.listen, "reachable": true, "ready": node.is_ready() }],
            "groups": group_rows(&[(config.node_id, node.raft_status())]),
        })));
    }
    let calls = config.cluster.members.iter().map(|m| async move {
        if m.id == config.node_id {
            return (m, Ok(node.raft_status()));
        }
        let answer = forward_get(&node.peers, &m.raft, "/internal/status", MEMBER_TIMEOUT).await;
        match answer {
            Ok(Forwarded::Done(v)) => (m, Ok(v)),
            Ok(Forwarded::NotSent(why)) => (m, Err(why)),
            Err(e) => (m, Err(e.to_string())),
        }
    });
    let answers = futures::future::join_all(calls).await;
    let members: Vec<Value> = answers
        .iter()
        .map(|(m, view)| {
            json!({
                "id": m.id,
                "api": m.api,
                "raft": m.raft,
                "reachable": view.is_ok(),
                "ready": view.as_ref().map(|v| v["ready"].clone()).unwrap_or(Value::Bool(false)),
                "error": view.as_ref().err(),
            })
        })
        .collect();
    let views: Vec<(u64, Value)> = answers
        .into_iter()
        .filter_map(|(m, v)| v.ok().map(|v| (m.id, v)))
        .collect();
    Ok(Json(json!({
        "clustered": true,
        "coordinator": config.node_id,
        "replication_factor": config.cluster.replication_factor,
        "members": members,
        "groups": group_rows(&views),
    })))
}

/// One row per raft group: the leader (as the replicas report it) and per replica its log,
/// applied index and lag behind the leader's last log index.
fn group_rows(views: &[(u64, Value)]) -> Vec<Value> {
    let mut names: Vec<String> = Vec::new();
    for (_, view) in views {
        for g in view["groups"].as_array().into_iter().flatten() {
            if let Some(name) = g["group"].as_str()
                && !names.iter().any(|n| n == name)
            {
                names.push(name.to_string());
            }
        }
    }
    names
        .into_iter()
        .map(|name| {
            let replicas: Vec<(u64, &Value)> = views
                .iter()
                .filter_map(|(id, view)| {
                    view["groups"]
                        .as_array()?
                        .iter()
                        .find(|g| g["group"] == name.as_str())
                        .map(|g| (*id, g))
                })
                .collect();
            // A replica that calls itself leader; a stale one (cut off, not yet told) has a
            // lower term than the real one.
            let leader = replicas
                .iter()
                .filter(|(id, g)| g["leader"].as_u64() == Some(*id))
                .max_by_key(|(_, g)| g["term"].as_u64())
                .map(|(id, _)| *id);
            let head = replicas
                .iter()
                .find(|(id, _)| Some(*id) == leader)
                .and_then(|(_, g)| g["last_log_index"].as_u64());
            let rows: Vec<Value> = replicas
                .iter()
                .map(|(id, g)| {
                    let applied = g["last_applied"].as_u64();
                    json!({
                        "node": id,
                        "state": g["state"],
                        "term": g["term"],
                        "last_log_index": g["last_log_index"],
                        "last_applied": applied,
                        "lag": head.map(|h| h.saturating_sub(applied.unwrap_or(0))),
                    })
                })
                .collect();
            // The group's voters as its replicas record them (every member when RF = members).
            let voters = replicas
                .iter()
                .map(|(_, g)| &g["voters"])
                .find(|v| v.is_array())
                .cloned()
                .unwrap_or(Value::Null);
            json!({ "group": name, "leader": leader, "voters": voters, "replicas": rows })
        })
        .collect()
}

/// `DELETE /_cluster/members/{id}` (needs the cluster token): removes a member from the
/// metadata group and from every partition group placed on it. Its configs entry and process
/// are the operator's to retire (`cluster remove-member` does both for a local cluster).
pub async fn remove_member(
    State(state): State<AppState>,
    axum::extract::Path(id): axum::extract::Path<u64>,
    headers: axum::http::HeaderMap,
) -> Result<Json<Value>> {
    let node = &state.node;
    if !node.config.cluster.is_clustered() {
        return Err(crate::error::Error::bad_request(
            "this node is not part of a cluster",
        ));
    }
    let given = headers
        .get(crate::cluster::network::TOKEN_HEADER)
        .map(|v| v.as_bytes())
        .unwrap_or_default();
    if !crate::cluster::rpc::constant_time_eq(given, node.config.cluster.token.as_bytes()) {
        return Err(crate::error::Error::Unauthorized(format!(
            "removing a member needs the cluster token in {}",
            crate::cluster::network::TOKEN_HEADER
        )));
    }
    let groups = node.remove_member(id).await?;
    Ok(Json(json!({ "removed": id, "groups": groups })))
}
