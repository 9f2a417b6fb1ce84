//! `POST /_sql`: DataFusion over every topic's `<t>_hot` (Arrow in memory), `<t>_cold`
//! (Parquet files) and `<t>` (their union), read-only.
//!
//! Tables are registered per request from a consistent snapshot of each partition. The
//! `RuntimeEnv` is shared, so Parquet footers and statistics are read once and cached: that is
//! what lets `COUNT(*)` over millions of rows answer from file metadata.

use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow::record_batch::RecordBatch;
use datafusion::datasource::MemTable;
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::{
    ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl,
};
use datafusion::error::DataFusionError;
use datafusion::execution::runtime_env::{RuntimeEnv, RuntimeEnvBuilder};
use datafusion::logical_expr::LogicalPlan;
use datafusion::prelude::{SQLOptions, SessionConfig, SessionContext};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::cluster::freshness::{FRESHNESS_WAIT, Reads, all_partitions, shards_json};
use crate::error::{Error, Result};
use crate::node::Node;
use crate::shard::columnar::table_schema;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SqlRequest {
    pub query: String,
    pub limit: Option<usize>,
    pub timeout_secs: Option<u64>,
    /// How long the query may wait for replicas to catch up with their leaders (the
    /// orchestrator passes what is left of its own deadline); at most half the timeout.
    #[serde(skip)]
    pub fresh_wait: Option<Duration>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct SqlResponse {
    pub columns: Vec<String>,
    pub rows: Vec<Map<String, Value>>,
    pub row_count: usize,
    pub execution_time_ms: f64,
    pub truncated: bool,
    /// Partitions the tables cover, and those this node could not confirm complete (on a
    /// cluster, a replica behind its leader).
    #[serde(rename = "_shards", default)]
    pub shards: Value,
}

/// SQL name of a topic: every character outside `[A-Za-z0-9]` becomes `_` (Chronik's rule).
pub fn sql_table_name(topic: &str) -> String {
    topic
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect()
}

/// Identifies the data a context was built from: every topic with its partitions' versions.
type DataVersion = Vec<(String, Vec<u64>)>;

pub struct SqlEngine {
    runtime: Arc<RuntimeEnv>,
    /// The last context built and the data it covers. Building one costs milliseconds that grow
    /// with the number of batches and files; between writes every query can share it.
    cached: parking_lot::Mutex<Option<(DataVersion, SessionContext)>>,
}

impl SqlEngine {
    pub fn new() -> Result<Self> {
        let runtime = RuntimeEnvBuilder::new()
            .build_arc()
            .map_err(Error::internal)?;
        Ok(Self {
            runtime,
            cached: parking_lot::Mutex::new(None),
        })
    }

    pub async fn execute(&self, node: &Node, request: &SqlRequest) -> Result<SqlResponse> {
        let started = Instant::now();
        let max_rows = node.config.query.sql_max_rows;
        let limit = request.limit.unwrap_or(1000).min(max_rows);
        let timeout_ms = request
            .timeout_secs
            .map(|s| s * 1000)
            .unwrap_or(node.config.query.timeout_ms);
        if request.query.trim().is_empty() {
            return Err(Error::bad_request("query is empty"));
        }
        // The topics whose table names the statement mentions (a superset of those it reads:
        // a name inside a string literal counts too) must be as fresh as their leaders.
        let statement = request.query.to_ascii_lowercase();
        let mut named = node.topics();
        named.retain(|t| statement.contains(&sql_table_name(&t.name).to_ascii_lowercase()));
        let wanted = all_partitions(&named);
        let fresh_wait = request
            .fresh_wait
            .unwrap_or(FRESHNESS_WAIT)
            .min(Duration::from_millis(timeout_ms / 2));
        let stale = node.await_fresh(&wanted, Reads::Applied, fresh_wait).await;
        let remaining_ms = timeout_ms.saturating_sub(started.elapsed().as_millis() as u64);
        let ctx = self.context(node).await?;
        // Queries are read-only: no DDL (CREATE EXTERNAL TABLE would read server files), no DML
        // (COPY/INSERT would write them), no SET.
        let options = SQLOptions::new()
            .with_allow_ddl(false)
            .with_allow_dml(false)
            .with_allow_statements(false);
        let run = async {
            let df = ctx
                .sql_with_options(&request.query, options)
                .await
                .map_err(sql_error)?;
            // One extra row tells whether the result was cut. EXPLAIN must stay the plan's root.
            let is_explain = matches!(
                df.logical_plan(),
                LogicalPlan::Explain(_) | LogicalPlan::Analyze(_)
            );
            let df = if is_explain {
                df
            } else {
                df.limit(0, Some(limit + 1)).map_err(sql_error)?
            };
            let schema = df.schema().as_arrow().clone();
            let batches = df.collect().await.map_err(sql_error)?;
            Ok::<_, Error>((schema, batches))
        };
        let (schema, batches) = tokio::time::timeout(Duration::from_millis(remaining_ms), run)
            .await
            .map_err(|_| {
                Error::Timeout(format!("query ran past its {timeout_ms} ms deadline"))
            })??;
        let columns: Vec<String> = schema.fields().iter().map(|f| f.name().clone()).collect();
        let mut rows = batches_to_rows(&batches)?;
        let truncated = rows.len() > limit;
        rows.truncate(limit);
        Ok(SqlResponse {
            columns,
            row_count: rows.len(),
            rows,
            execution_time_ms: started.elapsed().as_secs_f64() * 1000.0,
            truncated,
            shards: shards_json(wanted.len(), &stale),
        })
    }

    /// A context over the current data: the cached one while no partition has changed.
    async fn context(&self, node: &Node) -> Result<SessionContext> {
        let topics = node.topics();
        // Versions are read before the snapshots inside `build_context`, so a cached context can
        // only be newer than its key, never older.
        let version: DataVersion = topics
            .iter()
            .map(|t| {
                (
                    t.name.clone(),
                    t.partitions
                        .iter()
                        .map(|p| p.shard.columnar().version())
                        .collect(),
                )
            })
            .collect();
        if let Some((key, ctx)) = self.cached.lock().as_ref()
            && *key == version
        {
            return Ok(ctx.clone());
        }
        let ctx = self.build_context(&topics).await?;
        *self.cached.lock() = Some((version, ctx.clone()));
        Ok(ctx)
    }

    async fn build_context(&self, topics: &[Arc<crate::node::Topic>]) -> Result<SessionContext> {
        let config = SessionConfig::new()
            .with_collect_statistics(true)
            .with_information_schema(true);
        let ctx = SessionContext::new_with_config_rt(config, self.runtime.clone());
        let schema = table_schema();
        for topic in topics {
            let base = sql_table_name(&topic.name);
            let mut hot: Vec<Vec<RecordBatch>> = Vec::new();
            let mut cold = Vec::new();
            for p in &topic.partitions {
                let snapshot = p.shard.snapshot();
                hot.push(snapshot.hot);
                cold.extend(snapshot.cold);
            }
            let hot_table = MemTable::try_new(schema.clone(), hot).map_err(Error::internal)?;
            ctx.register_table(format!("{base}_hot"), Arc::new(hot_table))
                .map_err(Error::internal)?;
            if cold.is_empty() {
                let empty =
                    MemTable::try_new(schema.clone(), vec![vec![]]).map_err(Error::internal)?;
                ctx.register_table(format!("{base}_cold"), Arc::new(empty))
                    .map_err(Error::internal)?;
            } else {
                let mut urls = Vec::with_capacity(cold.len());
                for path in &cold {
                    let text = path
                        .to_str()
                        .ok_or_else(|| Error::internal("non-UTF-8 data path"))?;
                    urls.push(ListingTableUrl::parse(text).map_err(Error::internal)?);
                }
                let options = ListingOptions::new(Arc::new(ParquetFormat::default()))
                    .with_file_extension(".parquet");
                let config = ListingTableConfig::new_with_multi_paths(urls)
                    .with_listing_options(options)
                    .with_schema(schema.clone());
                let table = ListingTable::try_new(config).map_err(Error::internal)?;
                ctx.register_table(format!("{base}_cold"), Arc::new(table))
                    .map_err(Error::internal)?;
            }
            let view = format!(
                "CREATE VIEW \"{base}\" AS SELECT * FROM \"{base}_hot\" UNION ALL SELECT * FROM \"{base}_cold\""
            );
            ctx.sql(&view).await.map_err(Error::internal)?;
        }
        Ok(ctx)
    }
}

/// Planning errors (syntax, unknown table or column, types) are the caller's; the rest are ours.
fn sql_error(e: DataFusionError) -> Error {
    match e.find_root() {
        DataFusionError::SQL(..)
        | DataFusionError::Plan(_)
        | DataFusionError::SchemaError(..)
        | DataFusionError::NotImplemented(_) => Error::bad_request(format!("SQL error: {e}")),
        _ => Error::Internal(format!("SQL execution failed: {e}")),
    }
}

fn batches_to_rows(batches: &[RecordBatch]) -> Result<Vec<Map<String, Value>>> {
    let mut buf = Vec::new();
    {
        let mut writer = arrow::json::WriterBuilder::new()
            .with_explicit_nulls(true)
            .build::<_, arrow::json::writer::JsonArray>(&mut buf);
        let refs: Vec<&RecordBatch> = batches.iter().collect();
        writer.write_batches(&refs).map_err(Error::internal)?;
        writer.finish().map_err(Error::internal)?;
    }
    if buf.is_empty() {
        return Ok(Vec::new());
    }
    serde_json::from_slice(&buf).map_err(Error::internal)
}
