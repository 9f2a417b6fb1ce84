//! `GET /health` (the process is up), `GET /ready` (it can serve), `GET /metrics`.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde_json::json;

use crate::router::AppState;

pub async fn health() -> impl IntoResponse {
    Json(
        json!({ "status": "ok", "version": env!("CARGO_PKG_VERSION"), "sql_enabled": true, "search_enabled": true, "vector_enabled": false }),
    )
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
    (
        [("content-type", "text/plain; version=0.0.4")],
        state.metrics.render(),
    )
}
