//! Topics: `GET/POST /topics`, `GET /topics/{t}` (counts, offsets, index lag) and
//! `POST /topics/{t}/records`, the batch write the loader uses.

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, Path, Request, State};
use axum::http::StatusCode;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::cluster::freshness::shards_json;
use crate::error::{Error, Result};
use crate::node::TopicStats;
use crate::record::LogRecord;
use crate::router::AppState;
use crate::router::gather::gather;
use crate::router::remote::Read;

/// `Json<T>` whose rejections are this crate's JSON errors (400 naming the problem, 413 when
/// the body is over the limit) instead of axum's plain-text ones.
pub struct JsonBody<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = Error;

    async fn from_request(req: Request, state: &S) -> Result<Self> {
        match Json::<T>::from_request(req, state).await {
            Ok(Json(value)) => Ok(JsonBody(value)),
            Err(rejection) => Err(json_rejection(rejection)),
        }
    }
}

fn json_rejection(rejection: JsonRejection) -> Error {
    if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
        return Error::TooLarge("request body is larger than api.max_body_bytes".into());
    }
    Error::BadRequest(format!("invalid JSON body: {}", rejection.body_text()))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateTopic {
    pub name: String,
    pub partitions: Option<u32>,
    /// Embed the topic's records for vector search (default: the node's `vector.enabled`).
    pub vector: Option<bool>,
}

pub async fn list(State(state): State<AppState>) -> Json<Value> {
    let topics: Vec<Value> = state
        .node
        .topics()
        .iter()
        .map(|t| {
            let stats = state.node.topic_stats(t);
            json!({ "name": t.name, "partitions": t.partition_count, "records": stats.records, "index_lag": stats.index_lag })
        })
        .collect();
    Json(json!({ "topics": topics }))
}

pub async fn create(
    State(state): State<AppState>,
    JsonBody(body): JsonBody<CreateTopic>,
) -> Result<(StatusCode, Json<Value>)> {
    let (meta, created) = state
        .node
        .create_topic(&body.name, body.partitions, body.vector)
        .await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((
        status,
        Json(json!({
            "name": meta.name,
            "partitions": meta.partitions,
            "vector": meta.vector.unwrap_or(state.node.config.vector.enabled),
            "created": created,
        })),
    ))
}

pub async fn describe(
    State(state): State<AppState>,
    Path(topic): Path<String>,
) -> Result<Json<Value>> {
    let topic = state.node.topic(&topic)?;
    if topic.holds_all() {
        let stats = state.node.topic_stats(&topic);
        return Ok(Json(serde_json::to_value(stats).map_err(Error::internal)?));
    }
    // Partitions held elsewhere are counted by their owners; one that none answers for is
    // named, so a total that looks complete always is.
    let all: Vec<u32> = (0..topic.partition_count).collect();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    let gathered = gather(&state.node, &topic, &all, Read::Stats, deadline).await?;
    let partitions = gathered.stats;
    let mut stats = serde_json::to_value(TopicStats {
        name: topic.name.clone(),
        records: partitions.iter().map(|p| p.records).sum(),
        searchable: partitions.iter().map(|p| p.searchable).sum(),
        index_lag: partitions.iter().map(|p| p.index_lag).sum(),
        partitions,
    })
    .map_err(Error::internal)?;
    stats["_shards"] = shards_json(gathered.partitions, &gathered.failures);
    Ok(Json(stats))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WriteRequest {
    pub records: Vec<LogRecord>,
}

pub async fn write(
    State(state): State<AppState>,
    Path(topic): Path<String>,
    JsonBody(body): JsonBody<WriteRequest>,
) -> Result<Json<Value>> {
    let max = state.node.config.api.max_batch_records;
    if body.records.len() > max {
        return Err(Error::TooLarge(format!(
            "batch has {} records; the limit is {max} (api.max_batch_records)",
            body.records.len()
        )));
    }
    for (i, r) in body.records.iter().enumerate() {
        validate_record(r).map_err(|why| Error::bad_request(format!("records[{i}]: {why}")))?;
    }
    let accepted = body.records.len();
    let partitions = state.node.write(&topic, body.records).await?;
    Ok(Json(
        json!({ "accepted": accepted, "partitions": partitions }),
    ))
}

/// Nothing that would corrupt a shard gets past the API: whole batch rejected, nothing written.
fn validate_record(r: &LogRecord) -> std::result::Result<(), String> {
    if r.host.is_empty() {
        return Err("host is empty (it is the record key)".into());
    }
    if r.label.is_empty() {
        return Err("label is empty (use \"-\" for a normal line)".into());
    }
    if r.timestamp < 0 {
        return Err(format!("timestamp {} is negative", r.timestamp));
    }
    Ok(())
}
