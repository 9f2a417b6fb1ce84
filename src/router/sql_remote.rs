//! Distributed SQL: the partitions a node does not hold are scanned on their owners.
//!
//! With a replication factor below the member count, `/_sql` on a node registers each topic
//! whose partitions are not all here as [`ClusterTable`]s: this node's partitions, scanned as
//! on a single node, plus a remote scan (`table::RemoteScanExec`) that at execution asks an owner of
//! each other partition (`POST /internal/scan` on the raft port, one call per owner, one retry
//! on another replica) for the rows that survive the query's pushable filters, as an Arrow
//! IPC stream. Everything above the scans (aggregates, joins, ORDER BY) runs here, so answers
//! equal a single node's. A scan of `<t>` is one call for the owner's `<t>` (its hot and cold
//! rows from one snapshot): two calls, for hot and then cold, could count rows flushed in
//! between twice or not at all. A scan that needs no column (`COUNT(*)`) asks only for a count.
//! An aggregate of the common shape (COUNT, SUM, MIN, MAX, AVG grouped by columns over one
//! table, filters all sendable) is instead computed partially on each owner and combined here
//! (`partial`), so only one row per group and owner travels.
//!
//! Partitions no replica answered for, and replicas an owner could not bring up to their
//! leaders, are named in the answer's `_shards`; the rows that did come back are returned.

mod filters;
mod ipc;
mod partial;
mod table;

use std::collections::BTreeMap;
use std::time::Duration;

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::response::Response;
use datafusion::common::DFSchema;
use datafusion::prelude::SessionContext;
use serde::{Deserialize, Serialize};

pub use partial::push_partial_aggregates;
pub use table::{ClusterTable, RemoteScope, RemoteSource};

use crate::cluster::freshness::{
    FRESHNESS_WAIT, FailureKind, PartitionFailure, Reads, partitions_of,
};
use crate::error::{Error, Result};
use crate::router::AppState;
use crate::router::sql::{read_only, sql_error, sql_table_name};
use crate::shard::columnar::table_schema;

/// Where owners serve scans (raft port, behind the cluster token).
pub const SCAN_PATH: &str = "/internal/scan";

/// Which of a topic's three tables a scan reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScanTable {
    /// `<t>_hot`: rows still in memory.
    Hot,
    /// `<t>_cold`: rows flushed to Parquet.
    Cold,
    /// `<t>`: both, from one snapshot of each partition.
    All,
}

impl ScanTable {
    /// The SQL name of this table of `topic`.
    pub fn table_name(self, topic: &str) -> String {
        let base = sql_table_name(topic);
        match self {
            ScanTable::Hot => format!("{base}_hot"),
            ScanTable::Cold => format!("{base}_cold"),
            ScanTable::All => base,
        }
    }
}

/// One table scan over some partitions an owner holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScanRequest {
    pub topic: String,
    pub table: ScanTable,
    pub partitions: Vec<u32>,
    /// Columns to return, in order; `None` for all.
    pub columns: Option<Vec<String>>,
    /// SQL boolean expressions over the table's columns, all of which a row must pass.
    #[serde(default)]
    pub filters: Vec<String>,
    pub limit: Option<usize>,
    /// Return only the number of matching rows (a one-row `n` column).
    #[serde(default)]
    pub count_only: bool,
    /// Return one row per group of partial aggregates instead of the rows themselves.
    #[serde(default)]
    pub aggregate: Option<AggregateSpec>,
    /// How long the owner may wait for its replicas to catch up with their leaders; at most
    /// [`FRESHNESS_WAIT`].
    #[serde(default)]
    pub fresh_wait_ms: Option<u64>,
}

/// A partial aggregate an owner computes over its partitions: `SELECT <group_by>,
/// <partials> … GROUP BY <group_by>`, one row per group (one row in all without groups), the
/// columns in that order. The coordinator combines the rows of every owner and its own.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AggregateSpec {
    pub group_by: Vec<String>,
    pub partials: Vec<Partial>,
}

/// One partial aggregate of an [`AggregateSpec`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Partial {
    /// `count(*)` (Int64).
    CountAll,
    /// `count(column)`: its non-null values (Int64).
    Count(String),
    /// `sum(column)`, the column's own sum type.
    Sum(String),
    /// `sum(CAST(column AS DOUBLE))`: the sum AVG divides (Float64).
    SumFloat(String),
    Min(String),
    Max(String),
}

impl Partial {
    /// The aggregate function and the SQL of its argument over the table's columns (`None`
    /// for `count(*)`).
    fn parts(
        &self,
        schema: &datafusion::arrow::datatypes::Schema,
    ) -> Result<(&str, Option<String>)> {
        let column = |c: &String| {
            schema
                .field_with_name(c)
                .map(|_| quote_ident(c))
                .map_err(|_| Error::bad_request(format!("no column {c:?} to aggregate")))
        };
        Ok(match self {
            Partial::CountAll => ("count", None),
            Partial::Count(c) => ("count", Some(column(c)?)),
            Partial::Sum(c) => ("sum", Some(column(c)?)),
            Partial::SumFloat(c) => ("sum", Some(format!("CAST({} AS DOUBLE)", column(c)?))),
            Partial::Min(c) => ("min", Some(column(c)?)),
            Partial::Max(c) => ("max", Some(column(c)?)),
        })
    }
}

/// `POST /internal/scan`: runs a [`ScanRequest`] over this node's replicas and streams the
/// rows as Arrow IPC (`application/vnd.apache.arrow.stream`), the stale replicas in the
/// stream's schema metadata. A partition not held here is a 404, so the coordinator asks
/// another replica; a filter or column the planner refuses is a 400, the query's fault.
pub async fn scan(
    State(state): State<AppState>,
    Json(request): Json<ScanRequest>,
) -> Result<Response> {
    let node = &state.node;
    let topic = node.topic_holding(&request.topic, &request.partitions)?;
    let wanted = partitions_of(&topic.name, &request.partitions);
    let wait = request
        .fresh_wait_ms
        .map_or(FRESHNESS_WAIT, Duration::from_millis)
        .min(FRESHNESS_WAIT);
    let stale = node.await_fresh(&wanted, Reads::Applied, wait).await;
    let ctx = state.sql.scan_context(&topic, &request.partitions).await?;
    let sql = scan_sql(&ctx, &request)?;
    let df = ctx
        .sql_with_options(&sql, read_only())
        .await
        .map_err(sql_error)?;
    let batches = df.execute_stream().await.map_err(sql_error)?;
    // Streamed: the raft port sets TCP_NODELAY, so rows written after the headers leave at
    // once instead of waiting for a delayed ACK.
    let body = Body::from_stream(ipc::encode(batches, &stale).map_err(Error::internal)?);
    Response::builder()
        .header(CONTENT_TYPE, ipc::ARROW_STREAM)
        .body(body)
        .map_err(Error::internal)
}

/// The owner's statement for `request`: quoted columns, each filter checked to be one
/// expression over the table's columns (so none can close the `WHERE` and add clauses).
fn scan_sql(ctx: &SessionContext, request: &ScanRequest) -> Result<String> {
    let schema = table_schema();
    let df_schema = DFSchema::try_from(schema.clone()).map_err(Error::internal)?;
    for f in &request.filters {
        ctx.parse_sql_expr(f, &df_schema)
            .map_err(|e| Error::bad_request(format!("scan filter {f:?}: {e}")))?;
    }
    let table = quote_ident(&request.table.table_name(&request.topic));
    let mut from = format!("FROM {table}");
    if !request.filters.is_empty() {
        from.push_str(&format!(" WHERE ({})", request.filters.join(") AND (")));
    }
    if let Some(aggregate) = &request.aggregate {
        return aggregate_sql(&schema, aggregate, &from);
    }
    let select = if request.count_only {
        "count(*) AS \"n\"".to_string()
    } else {
        match &request.columns {
            None => "*".to_string(),
            Some(columns) if columns.is_empty() => {
                return Err(Error::bad_request(
                    "a scan with no columns must be count_only",
                ));
            }
            Some(columns) => {
                let mut quoted = Vec::with_capacity(columns.len());
                for c in columns {
                    if schema.field_with_name(c).is_err() {
                        return Err(Error::bad_request(format!("no column {c:?} to scan")));
                    }
                    quoted.push(quote_ident(c));
                }
                quoted.join(", ")
            }
        }
    };
    let mut sql = format!("SELECT {select} {from}");
    // A count with a limit is capped by the coordinator; a LIMIT here would cut the one row.
    if let (Some(limit), false) = (request.limit, request.count_only) {
        sql.push_str(&format!(" LIMIT {limit}"));
    }
    Ok(sql)
}

/// The owner's statement for a partial aggregate over the rows of `from` (`FROM … WHERE …`):
/// groups `g<i>`, partials `p<i>`. Groups and arguments are named in a subquery, so that two
/// aggregates DataFusion would name alike (`sum(pid)` and `sum(CAST(pid AS DOUBLE))` are
/// both `sum(pid)` to it) stay apart.
fn aggregate_sql(
    schema: &datafusion::arrow::datatypes::Schema,
    aggregate: &AggregateSpec,
    from: &str,
) -> Result<String> {
    let (mut inner, mut outer, mut groups) = (Vec::new(), Vec::new(), Vec::new());
    for (i, c) in aggregate.group_by.iter().enumerate() {
        if schema.field_with_name(c).is_err() {
            return Err(Error::bad_request(format!("no column {c:?} to group by")));
        }
        inner.push(format!("{} AS \"g{i}\"", quote_ident(c)));
        outer.push(format!("\"g{i}\""));
        groups.push(format!("\"g{i}\""));
    }
    for (i, p) in aggregate.partials.iter().enumerate() {
        match p.parts(schema)? {
            (function, Some(argument)) => {
                inner.push(format!("{argument} AS \"a{i}\""));
                outer.push(format!("{function}(\"a{i}\") AS \"p{i}\""));
            }
            (function, None) => outer.push(format!("{function}(*) AS \"p{i}\"")),
        }
    }
    if outer.is_empty() {
        return Err(Error::bad_request(
            "an aggregate scan must ask for something",
        ));
    }
    if inner.is_empty() {
        inner.push("1 AS \"one\"".to_string());
    }
    let mut sql = format!(
        "SELECT {} FROM (SELECT {} {from}) AS \"rows\"",
        outer.join(", "),
        inner.join(", ")
    );
    if !groups.is_empty() {
        sql.push_str(&format!(" GROUP BY {}", groups.join(", ")));
    }
    Ok(sql)
}

/// `name` as a double-quoted SQL identifier.
fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// One failure per partition, ordered, a missing partition winning over a stale one: the
/// same partition can fail in several scans of one query (`<t>_hot` and `<t>_cold`, a
/// self-join) and in the local freshness check.
pub fn merge_failures(failures: Vec<PartitionFailure>) -> Vec<PartitionFailure> {
    let mut by_partition: BTreeMap<(String, u32), PartitionFailure> = BTreeMap::new();
    for f in failures {
        let key = (f.topic.clone(), f.partition);
        match by_partition.get(&key) {
            Some(kept)
                if kept.kind == FailureKind::Unavailable || f.kind != FailureKind::Unavailable => {}
            _ => {
                by_partition.insert(key, f);
            }
        }
    }
    by_partition.into_values().collect()
}

#[cfg(test)]
pub(crate) mod testdata {
    use datafusion::arrow::record_batch::RecordBatch;

    use crate::record::LogRecord;
    use crate::shard::columnar::records_to_batch;

    /// `n` varied records of partition `partition`, offsets from 0.
    pub fn batch(partition: u32, n: usize) -> RecordBatch {
        let records: Vec<LogRecord> = (0..n)
            .map(|i| LogRecord {
                timestamp: 1_700_000_000 + i as i64,
                label: if i % 7 == 0 {
                    "KERNDTLB".into()
                } else {
                    "-".into()
                },
                host: format!("host-{}", i % 5),
                location: format!("rack{}", i % 3),
                component: ["kernel", "sshd", "crond"][i % 3].into(),
                pid: (i % 4 != 0).then_some(i as i64),
                level: (i % 2 == 0).then(|| "INFO".to_string()),
                message: format!("message {i} it's"),
            })
            .collect();
        records_to_batch(partition, 0, &records).expect("batch")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request() -> ScanRequest {
        ScanRequest {
            topic: "app.logs".into(),
            table: ScanTable::All,
            partitions: vec![1, 2],
            columns: Some(vec!["host".into(), "timestamp".into()]),
            filters: vec!["host = 'a'".into(), "\"timestamp\" > 5".into()],
            limit: Some(10),
            count_only: false,
            aggregate: None,
            fresh_wait_ms: None,
        }
    }

    /// A partial aggregate groups by the quoted columns and names its outputs by position.
    #[test]
    fn scan_sql_of_a_partial_aggregate() {
        let r = ScanRequest {
            columns: None,
            limit: None,
            aggregate: Some(AggregateSpec {
                group_by: vec!["severity".into(), "host".into()],
                partials: vec![
                    Partial::CountAll,
                    Partial::Count("pid".into()),
                    Partial::SumFloat("pid".into()),
                    Partial::Max("_timestamp".into()),
                ],
            }),
            ..request()
        };
        let sql = scan_sql(&SessionContext::new(), &r).expect("sql");
        assert_eq!(
            sql,
            "SELECT \"g0\", \"g1\", count(*) AS \"p0\", count(\"a1\") AS \"p1\", sum(\"a2\") AS \"p2\", max(\"a3\") AS \"p3\" FROM (SELECT \"severity\" AS \"g0\", \"host\" AS \"g1\", \"pid\" AS \"a1\", CAST(\"pid\" AS DOUBLE) AS \"a2\", \"_timestamp\" AS \"a3\" FROM \"app_logs\" WHERE (host = 'a') AND (\"timestamp\" > 5)) AS \"rows\" GROUP BY \"g0\", \"g1\""
        );
        let bad = ScanRequest {
            aggregate: Some(AggregateSpec {
                group_by: vec![],
                partials: vec![Partial::Sum("pid) FROM x --".into())],
            }),
            ..r
        };
        assert!(matches!(
            scan_sql(&SessionContext::new(), &bad),
            Err(Error::BadRequest(_))
        ));
    }

    /// Columns are quoted, filters each in parentheses, the table is the topic's SQL name.
    #[test]
    fn scan_sql_quotes_and_parenthesises() {
        let sql = scan_sql(&SessionContext::new(), &request()).expect("sql");
        assert_eq!(
            sql,
            "SELECT \"host\", \"timestamp\" FROM \"app_logs\" WHERE (host = 'a') AND (\"timestamp\" > 5) LIMIT 10"
        );
        let count = ScanRequest {
            count_only: true,
            columns: None,
            table: ScanTable::Hot,
            ..request()
        };
        let sql = scan_sql(&SessionContext::new(), &count).expect("sql");
        assert_eq!(
            sql,
            "SELECT count(*) AS \"n\" FROM \"app_logs_hot\" WHERE (host = 'a') AND (\"timestamp\" > 5)"
        );
    }

    /// A filter that is not one expression (it would escape its parentheses), or that names
    /// no column of the table, or an unknown column, is refused before anything runs.
    #[test]
    fn scan_sql_refuses_what_is_not_one_filter() {
        let ctx = SessionContext::new();
        for bad in [
            "1 = 1) UNION SELECT * FROM other WHERE (1 = 1",
            "host = 'a'; DROP TABLE x",
            "nope = 1",
            "host IN (SELECT host FROM other)",
        ] {
            let r = ScanRequest {
                filters: vec![bad.into()],
                ..request()
            };
            assert!(
                matches!(scan_sql(&ctx, &r), Err(Error::BadRequest(_))),
                "{bad}"
            );
        }
        let r = ScanRequest {
            columns: Some(vec!["host\" FROM x --".into()]),
            ..request()
        };
        assert!(matches!(scan_sql(&ctx, &r), Err(Error::BadRequest(_))));
    }

    /// One failure per partition; an unavailable partition outranks a stale one.
    #[test]
    fn failures_merge_per_partition() {
        let stale = |p| PartitionFailure {
            topic: "t".into(),
            partition: p,
            kind: FailureKind::StaleReplica,
            reason: "behind".into(),
        };
        let merged = merge_failures(vec![
            stale(3),
            PartitionFailure::unavailable("t", 3, "down"),
            stale(3),
            stale(1),
            PartitionFailure::unavailable("t", 2, "down"),
            PartitionFailure::unavailable("t", 2, "down again"),
        ]);
        let got: Vec<(u32, FailureKind)> = merged.iter().map(|f| (f.partition, f.kind)).collect();
        assert_eq!(
            got,
            vec![
                (1, FailureKind::StaleReplica),
                (2, FailureKind::Unavailable),
                (3, FailureKind::Unavailable),
            ]
        );
    }

    /// The wire format names tables in snake case and defaults the optional parts.
    #[test]
    fn scan_request_wire_format() {
        let r: ScanRequest = serde_json::from_value(serde_json::json!({
            "topic": "t", "table": "cold", "partitions": [4], "columns": null, "limit": null
        }))
        .expect("parse");
        assert_eq!(r.table, ScanTable::Cold);
        assert!(r.filters.is_empty() && !r.count_only && r.fresh_wait_ms.is_none());
    }
}
