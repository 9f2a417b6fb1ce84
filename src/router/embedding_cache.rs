//! `DELETE /_embedding_cache`: empties this node's query-embedding cache, so a benchmark can
//! time cache misses on nodes an earlier run warmed. Stored data is untouched; on a cluster
//! node it still needs the cluster token, as an operator's action.

use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use serde_json::{Value, json};

use crate::cluster::network::TOKEN_HEADER;
use crate::error::{Error, Result};
use crate::router::AppState;

pub async fn clear(State(state): State<AppState>, headers: HeaderMap) -> Result<Json<Value>> {
    let node = &state.node;
    if node.config.cluster.is_clustered() {
        let given = headers
            .get(TOKEN_HEADER)
            .map(|v| v.as_bytes())
            .unwrap_or_default();
        if !crate::cluster::rpc::constant_time_eq(given, node.config.cluster.token.as_bytes()) {
            return Err(Error::Unauthorized(format!(
                "clearing the embedding cache of a cluster node needs the cluster token in {TOKEN_HEADER}"
            )));
        }
    }
    let entries = node.query_cache.clear().await;
    Ok(Json(json!({ "cleared_entries": entries })))
}
