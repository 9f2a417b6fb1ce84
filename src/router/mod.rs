//! The HTTP API (Chronik's Unified API shapes): topics and writes, `/_search`, `/_sql`,
//! health, readiness and Prometheus metrics; and the benchmark report under `/report/`.

pub mod cluster;
pub mod embedding_cache;
pub mod es_query;
pub mod fanout;
pub mod gather;
pub mod health;
pub mod node_info;
pub mod node_telemetry;
pub mod query;
pub mod remote;
pub mod retrieve;
pub mod rrf;
pub mod search;
pub mod sql;
pub mod sql_remote;
pub mod topics;
pub mod vector;

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{get, post};
use metrics_exporter_prometheus::PrometheusHandle;

use crate::error::Result;
use crate::node::Node;
use sql::SqlEngine;

/// What every handler gets.
#[derive(Clone)]
pub struct AppState {
    pub node: Arc<Node>,
    pub sql: Arc<SqlEngine>,
    pub metrics: PrometheusHandle,
}

impl AppState {
    pub fn new(node: Arc<Node>) -> Result<Self> {
        let metrics = crate::telemetry::prometheus();
        // After the recorder, so the counter shows at 0 from the start.
        crate::telemetry::count_panics();
        Ok(Self {
            node,
            sql: Arc::new(SqlEngine::new()?),
            metrics,
        })
    }
}

pub fn app(state: AppState) -> Router {
    let max_body = state.node.config.api.max_body_bytes;
    let report = crate::report::node_router(state.node.config.runs_dir());
    Router::new()
        .route("/health", get(health::health))
        .route("/ready", get(health::ready))
        .route("/metrics", get(health::metrics))
        .route("/_node", get(node_info::node_info))
        .route(
            "/_embedding_cache",
            axum::routing::delete(embedding_cache::clear),
        )
        .route("/_telemetry", get(node_telemetry::telemetry))
        .route("/_cluster/status", get(cluster::status))
        .route(
            "/_cluster/members/{id}",
            axum::routing::delete(cluster::remove_member),
        )
        .route("/topics", get(topics::list).post(topics::create))
        .route("/topics/{topic}", get(topics::describe))
        .route("/topics/{topic}/records", post(topics::write))
        .route(
            "/_search",
            get(search::search_all_get).post(search::search_all),
        )
        .route(
            "/{index}/_search",
            get(search::search_index_get).post(search::search_index),
        )
        .route("/_sql", post(sql_handler))
        .route("/_vector/topics", get(vector::topics))
        .route("/_vector/{topic}/search", post(vector::search))
        .route(
            "/_vector/{topic}/search_by_vector",
            post(vector::search_by_vector),
        )
        .route("/_vector/{topic}/hybrid", post(vector::hybrid))
        .route("/_vector/{topic}/stats", get(vector::stats))
        .route("/_query", post(query::query))
        .route("/_query/profiles", get(query::profiles))
        .route("/_query/capabilities", get(query::capabilities))
        // Read-only pages over this node's runs dir. `nest_service`, not `nest`: axum 0.8's
        // `nest` serves the inner `/` at `/report` only, and the pages link to `/report/`.
        .nest_service(crate::report::NODE_PREFIX, report)
        .layer(DefaultBodyLimit::max(max_body))
        .layer(middleware::from_fn(record_latency))
        .with_state(state)
}

async fn sql_handler(
    axum::extract::State(state): axum::extract::State<AppState>,
    body: crate::router::topics::JsonBody<sql::SqlRequest>,
) -> Result<axum::Json<sql::SqlResponse>> {
    let response = state.sql.execute(&state.node, &body.0).await?;
    Ok(axum::Json(response))
}

/// Request latency as a Prometheus histogram per route and status.
async fn record_latency(request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "unmatched".to_string());
    let method = request.method().to_string();
    let started = Instant::now();
    let response = next.run(request).await;
    let labels = [
        ("route", route),
        ("method", method),
        ("status", response.status().as_u16().to_string()),
    ];
    metrics::histogram!("chronik_http_request_duration_seconds", &labels)
        .record(started.elapsed().as_secs_f64());
    response
}
