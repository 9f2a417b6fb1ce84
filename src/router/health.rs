//! `GET /health` (the process is up), `GET /ready` (it can serve), `GET /metrics`.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde_json::json;

use crate::router::AppState;

pub async fn health(State(state): State<AppState>) -> impl IntoResponse {
    Json(json!({
        "status": "ok",
        "version": env!("CARGO_PKG_VERSION"),
        "sql_enabled": true,
        "search_enabled": true,
        "vector_enabled": state.node.embedder.is_some(),
        "admin_enabled": false,
    }))
}

/// 503 until the metadata group and every partition on this node have a leader.
pub async fn ready(State(state): State<AppState>) -> impl IntoResponse {
    if state.node.is_ready() {
        (StatusCode::OK, Json(json!({ "ready": true })))
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "ready": false, "error": "raft groups have no leader yet" })),
        )
    }
}

pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    // moka counts entries lazily; settle it so `chronik_embedding_cache_size` is exact.
    state.node.query_cache.run_pending_tasks().await;
    (
        [("content-type", "text/plain; version=0.0.4")],
        state.metrics.render(),
    )
}
