//! `POST /_sql`: DataFusion over every topic's `<t>_hot` (Arrow in memory), `<t>_cold`
//! (Parquet files) and `<t>` (their union), read-only.
//!
//! Tables are registered per request from a consistent snapshot of each partition. The
//! `RuntimeEnv` is shared, so Parquet footers and statistics are read once and cached: that is
//! what lets `COUNT(*)` over millions of rows answer from file metadata.
//!
//! On a cluster whose nodes hold only some partitions, a topic not wholly held here is
//! registered as [`ClusterTable`]s, which scan the other partitions on their owners
//! (`router::sql_remote`); topics held wholly here keep the purely local tables.

use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow::record_batch::RecordBatch;
use datafusion::catalog::TableProvider;
use datafusion::datasource::MemTable;
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::{
    ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl,
};
use datafusion::error::DataFusionError;
use datafusion::execution::runtime_env::{RuntimeEnv, RuntimeEnvBuilder};
use datafusion::logical_expr::LogicalPlan;
use datafusion::prelude::{DataFrame, SQLOptions, SessionConfig, SessionContext};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::cluster::freshness::{FRESHNESS_WAIT, Reads, all_partitions, shards_json};
use crate::cluster::partition::Partition;
use crate::error::{Error, Result};
use crate::node::{Node, Topic};
use crate::router::sql_remote::{
    ClusterTable, RemoteScope, RemoteSource, ScanTable, merge_failures, push_partial_aggregates,
};
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
    /// with the number of batches and files; between writes every query can share it. Remote
    /// partitions are read when a query executes, so they never make it stale.
    cached: parking_lot::Mutex<Option<(DataVersion, Built)>>,
}

/// A context, and whether some of its tables scan partitions on peers.
#[derive(Clone)]
struct Built {
    ctx: SessionContext,
    remote: bool,
}

/// Queries are read-only: no DDL (CREATE EXTERNAL TABLE would read server files), no DML
/// (COPY/INSERT would write them), no SET.
pub(crate) fn read_only() -> SQLOptions {
    SQLOptions::new()
        .with_allow_ddl(false)
        .with_allow_dml(false)
        .with_allow_statements(false)
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

    pub async fn execute(&self, node: &Arc<Node>, request: &SqlRequest) -> Result<SqlResponse> {
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
        // This node's replicas are checked here; owners check theirs when scanned.
        let wanted = all_partitions(&named);
        let total: usize = named.iter().map(|t| t.partition_count as usize).sum();
        let fresh_wait = request
            .fresh_wait
            .unwrap_or(FRESHNESS_WAIT)
            .min(Duration::from_millis(timeout_ms / 2));
        let stale = node.await_fresh(&wanted, Reads::Applied, fresh_wait).await;
        let remaining_ms = timeout_ms.saturating_sub(started.elapsed().as_millis() as u64);
        let built = self.context(node).await?;
        // Remote scans report to a scope of this query alone, set on a copy of the cached
        // context's state (cheap: `sql_with_options` copies the state anyway). They give up a
        // tenth of the time before the query does, so a peer that never answers costs its
        // partitions, named in `_shards`, rather than the whole answer.
        let (ctx, scope) = if built.remote {
            let scope = RemoteScope::new(
                Instant::now() + Duration::from_millis(remaining_ms * 9 / 10),
                started + fresh_wait,
            );
            let mut state = built.ctx.state();
            state.config_mut().set_extension(scope.clone());
            (SessionContext::new_with_state(state), Some(scope))
        } else {
            (built.ctx, None)
        };
        let run = async {
            let df = ctx
                .sql_with_options(&request.query, read_only())
                .await
                .map_err(sql_error)?;
            // One extra row tells whether the result was cut. EXPLAIN must stay the plan's root.
            let is_explain = matches!(
                df.logical_plan(),
                LogicalPlan::Explain(_) | LogicalPlan::Analyze(_)
            );
            // Aggregates over remote partitions are computed partly on their owners.
            let df = match &scope {
                Some(_) if !is_explain => {
                    let state = ctx.state();
                    let optimized = state.optimize(df.logical_plan()).map_err(sql_error)?;
                    match push_partial_aggregates(optimized).map_err(sql_error)? {
                        Some(plan) => DataFrame::new(state, plan),
                        None => df,
                    }
                }
                _ => df,
            };
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
        let failures = match scope {
            Some(scope) => {
                let mut all = stale;
                all.extend(scope.take_failures());
                merge_failures(all)
            }
            None => stale,
        };
        Ok(SqlResponse {
            columns,
            row_count: rows.len(),
            rows,
            execution_time_ms: started.elapsed().as_secs_f64() * 1000.0,
            truncated,
            shards: shards_json(total, &failures),
        })
    }

    /// A context over the current data: the cached one while no partition has changed.
    async fn context(&self, node: &Arc<Node>) -> Result<Built> {
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
        if let Some((key, built)) = self.cached.lock().as_ref()
            && *key == version
        {
            return Ok(built.clone());
        }
        let built = self.build_context(node, &topics).await?;
        *self.cached.lock() = Some((version, built.clone()));
        Ok(built)
    }

    fn new_context(&self) -> SessionContext {
        let config = SessionConfig::new()
            .with_collect_statistics(true)
            .with_information_schema(true);
        SessionContext::new_with_config_rt(config, self.runtime.clone())
    }

    /// Every topic's tables: local when this node holds all its partitions, else
    /// [`ClusterTable`]s that add the other partitions from their owners.
    async fn build_context(&self, node: &Arc<Node>, topics: &[Arc<Topic>]) -> Result<Built> {
        let ctx = self.new_context();
        let mut remote = false;
        for topic in topics {
            if topic.holds_all() {
                register_local(&ctx, &topic.name, &topic.partitions).await?;
                continue;
            }
            remote = true;
            let base = sql_table_name(&topic.name);
            let (hot, cold) = local_tables(&topic.partitions)?;
            let elsewhere: Vec<u32> = (0..topic.partition_count)
                .filter(|&p| topic.local(p).is_none())
                .collect();
            let source = |table| RemoteSource {
                node: Arc::downgrade(node),
                topic: topic.name.clone(),
                table,
                partitions: elsewhere.clone(),
            };
            // `<t>` is not the union of the two others: its remote part must be one scan of
            // the owner's `<t>`, hot and cold from one snapshot.
            let tables = [
                (format!("{base}_hot"), vec![hot.clone()], ScanTable::Hot),
                (format!("{base}_cold"), vec![cold.clone()], ScanTable::Cold),
                (base, vec![hot, cold], ScanTable::All),
            ];
            for (name, local, table) in tables {
                let provider = ClusterTable::new(table_schema(), local, source(table))
                    .map_err(Error::internal)?;
                ctx.register_table(name, Arc::new(provider))
                    .map_err(Error::internal)?;
            }
        }
        Ok(Built { ctx, remote })
    }

    /// A context with only `partitions` of `topic` (all held here), for a peer's scan. Not
    /// cached: each coordinator asks for its own set, and the set decides the answer.
    pub(crate) async fn scan_context(
        &self,
        topic: &Topic,
        partitions: &[u32],
    ) -> Result<SessionContext> {
        let ctx = self.new_context();
        let held: Vec<&Partition> = partitions.iter().filter_map(|&p| topic.local(p)).collect();
        register_local(&ctx, &topic.name, held).await?;
        Ok(ctx)
    }
}

/// Registers `<t>_hot`, `<t>_cold` and the view `<t>` over `partitions` of topic `name`.
async fn register_local<'a>(
    ctx: &SessionContext,
    name: &str,
    partitions: impl IntoIterator<Item = &'a Partition>,
) -> Result<()> {
    let base = sql_table_name(name);
    let (hot, cold) = local_tables(partitions)?;
    ctx.register_table(format!("{base}_hot"), hot)
        .map_err(Error::internal)?;
    ctx.register_table(format!("{base}_cold"), cold)
        .map_err(Error::internal)?;
    let view = format!(
        "CREATE VIEW \"{base}\" AS SELECT * FROM \"{base}_hot\" UNION ALL SELECT * FROM \"{base}_cold\""
    );
    ctx.sql(&view).await.map_err(Error::internal)?;
    Ok(())
}

/// The hot (`MemTable`) and cold (`ListingTable` over the exact Parquet files) tables of
/// `partitions`, from one consistent snapshot of each.
fn local_tables<'a>(
    partitions: impl IntoIterator<Item = &'a Partition>,
) -> Result<(Arc<dyn TableProvider>, Arc<dyn TableProvider>)> {
    let schema = table_schema();
    let mut hot: Vec<Vec<RecordBatch>> = Vec::new();
    let mut cold = Vec::new();
    for p in partitions {
        let snapshot = p.shard.snapshot();
        hot.push(snapshot.hot);
        cold.extend(snapshot.cold);
    }
    if hot.is_empty() {
        // A node may hold no partition of a topic; a MemTable needs one.
        hot.push(Vec::new());
    }
    let hot_table = MemTable::try_new(schema.clone(), hot).map_err(Error::internal)?;
    if cold.is_empty() {
        let empty = MemTable::try_new(schema, vec![vec![]]).map_err(Error::internal)?;
        return Ok((Arc::new(hot_table), Arc::new(empty)));
    }
    let mut urls = Vec::with_capacity(cold.len());
    for path in &cold {
        let text = path
            .to_str()
            .ok_or_else(|| Error::internal("non-UTF-8 data path"))?;
        urls.push(ListingTableUrl::parse(text).map_err(Error::internal)?);
    }
    let options =
        ListingOptions::new(Arc::new(ParquetFormat::default())).with_file_extension(".parquet");
    let config = ListingTableConfig::new_with_multi_paths(urls)
        .with_listing_options(options)
        .with_schema(schema);
    let table = ListingTable::try_new(config).map_err(Error::internal)?;
    Ok((Arc::new(hot_table), Arc::new(table)))
}

/// Planning errors (syntax, unknown table or column, types) are the caller's; the rest are ours.
/// A peer's refusal (an [`Error`] inside DataFusion's) keeps its status: a 400 from an owner
/// is the query's 400.
pub(crate) fn sql_error(e: DataFusionError) -> Error {
    let root = e.find_root();
    if let DataFusionError::External(inner) = root
        && let Some(ours) = inner.downcast_ref::<Error>()
    {
        return match ours {
            Error::BadRequest(m) => Error::BadRequest(m.clone()),
            Error::Unavailable(m) => Error::Unavailable(m.clone()),
            Error::Timeout(m) => Error::Timeout(m.clone()),
            _ => Error::Internal(format!("SQL execution failed: {e}")),
        };
    }
    match root {
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A peer's 400 comes back as the query's 400 however DataFusion wrapped it on the way
    /// up; other failures inside DataFusion stay internal.
    #[test]
    fn peer_refusal_keeps_its_status() {
        let refused =
            || DataFusionError::External(Box::new(Error::bad_request("SQL error: no such column")));
        for e in [
            refused(),
            refused().context("while scanning"),
            DataFusionError::Shared(Arc::new(refused())),
        ] {
            match sql_error(e) {
                Error::BadRequest(m) => assert_eq!(m, "SQL error: no such column"),
                other => panic!("not a 400: {other:?}"),
            }
        }
        let down = DataFusionError::External(Box::new(Error::Unavailable("stopping".into())));
        assert!(matches!(sql_error(down), Error::Unavailable(_)));
        let io = DataFusionError::External(Box::new(std::io::Error::other("disk")));
        assert!(matches!(sql_error(io), Error::Internal(_)));
    }
}
