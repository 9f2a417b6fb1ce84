//! The coordinator's side: a table whose rows are this node's partitions plus a scan of the
//! others on their owners, run when the query executes (never cached with the context).

use std::fmt;
use std::sync::{Arc, Weak};
use std::time::Instant;

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::common::{DFSchema, DataFusionError};
use datafusion::execution::TaskContext;
use datafusion::logical_expr::{Expr, TableProviderFilterPushDown, TableType};
use datafusion::physical_expr::EquivalenceProperties;
use datafusion::physical_plan::execution_plan::{Boundedness, EmissionType};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::union::UnionExec;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, Partitioning, PhysicalExpr, PlanProperties,
    SendableRecordBatchStream,
};
use futures::TryStreamExt;
use parking_lot::Mutex;

use super::filters::{filter_sql, unqualified};
use super::ipc::{count_batches, decode, decode_count};
use super::{AggregateSpec, SCAN_PATH, ScanRequest, ScanTable};
use crate::cluster::freshness::PartitionFailure;
use crate::error::Error;
use crate::node::Node;
use crate::router::fanout::{PeerError, post_peer};

type DfResult<T> = datafusion::common::Result<T>;

/// One query's view of its remote scans: the deadline they share, the end of the query's
/// freshness budget, and the partitions no replica answered for (or answered from a stale
/// replica). Set on the query's session config, so a context cached across queries never
/// holds one.
#[derive(Debug)]
pub struct RemoteScope {
    deadline: Instant,
    /// Owners wait for their replicas until this instant at most (and always check once):
    /// one budget for the query, not one per owner and retry, or a failover would cost the
    /// coordinator's wait plus each owner's in turn.
    fresh_until: Instant,
    failures: Mutex<Vec<PartitionFailure>>,
}

impl RemoteScope {
    pub fn new(deadline: Instant, fresh_until: Instant) -> Arc<Self> {
        Arc::new(Self {
            deadline,
            fresh_until,
            failures: Mutex::new(Vec::new()),
        })
    }

    /// Every failure the query's remote scans recorded (possibly one partition twice).
    pub fn take_failures(&self) -> Vec<PartitionFailure> {
        std::mem::take(&mut *self.failures.lock())
    }
}

/// The partitions of one table that this node reads on their owners.
#[derive(Debug, Clone)]
pub struct RemoteSource {
    /// Weak: a cached context must not keep a stopped node alive.
    pub node: Weak<Node>,
    pub topic: String,
    pub table: ScanTable,
    pub partitions: Vec<u32>,
}

/// A table over this node's partitions (`local`, scanned as usual) and a remote scan of the
/// rest. Every filter is accepted as `Inexact`: DataFusion applies it again above the scan,
/// so the local parts use it for pruning only and the owners get those [`filter_sql`] can
/// send exactly.
#[derive(Debug)]
pub struct ClusterTable {
    schema: SchemaRef,
    df_schema: Arc<DFSchema>,
    local: Vec<Arc<dyn TableProvider>>,
    remote: RemoteSource,
    /// False for [`ClusterTable::local_part`]: a scan reads only the local partitions.
    scans_remote: bool,
}

impl ClusterTable {
    pub fn new(
        schema: SchemaRef,
        local: Vec<Arc<dyn TableProvider>>,
        remote: RemoteSource,
    ) -> DfResult<Self> {
        let df_schema = Arc::new(DFSchema::try_from(schema.clone())?);
        Ok(Self {
            schema,
            df_schema,
            local,
            remote,
            scans_remote: true,
        })
    }

    /// The remote partitions of this table (none asked for by a [`ClusterTable::local_part`]).
    pub(super) fn remote(&self) -> Option<&RemoteSource> {
        self.scans_remote.then_some(&self.remote)
    }

    /// The same table without its remote partitions: what this node contributes to an
    /// aggregate computed partially on each owner.
    pub(super) fn local_part(&self) -> Self {
        Self {
            schema: self.schema.clone(),
            df_schema: self.df_schema.clone(),
            local: self.local.clone(),
            remote: self.remote.clone(),
            scans_remote: false,
        }
    }

    async fn plan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        // Filters arrive qualified with the name the query used; the parts know bare names.
        let mut bare = Vec::with_capacity(filters.len());
        for f in filters {
            bare.push(unqualified(f.clone())?);
        }
        let mut inputs = Vec::with_capacity(self.local.len() + 1);
        for part in &self.local {
            inputs.push(part.scan(state, projection, &bare, limit).await?);
        }
        if !self.scans_remote {
            return UnionExec::try_new(inputs);
        }
        let schema = match projection {
            Some(p) => Arc::new(self.schema.project(p)?),
            None => self.schema.clone(),
        };
        let columns = projection.map(|p| {
            p.iter()
                .map(|&i| self.schema.field(i).name().clone())
                .collect()
        });
        let filters = bare
            .iter()
            .filter_map(|f| filter_sql(f, &self.df_schema))
            .collect();
        inputs.push(Arc::new(RemoteScanExec::new(
            self.remote.clone(),
            columns,
            filters,
            limit,
            None,
            schema,
        )));
        UnionExec::try_new(inputs)
    }
}

#[async_trait::async_trait]
impl TableProvider for ClusterTable {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> DfResult<Vec<TableProviderFilterPushDown>> {
        Ok(vec![TableProviderFilterPushDown::Inexact; filters.len()])
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        self.plan(state, projection, filters, limit).await
    }
}

/// Scans the remote partitions of one table when executed: one `/internal/scan` per owner
/// (through [`Node::fan_out`]), the answers concatenated in one output partition.
#[derive(Debug)]
pub(super) struct RemoteScanExec {
    source: RemoteSource,
    /// Projected column names; `Some(vec![])` asks only for a row count.
    columns: Option<Vec<String>>,
    filters: Vec<String>,
    limit: Option<usize>,
    /// Ask for partial aggregates (rows of `schema`) instead of the table's rows.
    aggregate: Option<AggregateSpec>,
    schema: SchemaRef,
    properties: Arc<PlanProperties>,
}

impl RemoteScanExec {
    pub(super) fn new(
        source: RemoteSource,
        columns: Option<Vec<String>>,
        filters: Vec<String>,
        limit: Option<usize>,
        aggregate: Option<AggregateSpec>,
        schema: SchemaRef,
    ) -> Self {
        let properties = PlanProperties::new(
            EquivalenceProperties::new(schema.clone()),
            Partitioning::UnknownPartitioning(1),
            EmissionType::Final,
            Boundedness::Bounded,
        );
        Self {
            source,
            columns,
            filters,
            limit,
            aggregate,
            schema,
            properties: Arc::new(properties),
        }
    }

    fn count_only(&self) -> bool {
        self.aggregate.is_none() && self.columns.as_ref().is_some_and(Vec::is_empty)
    }
}

impl DisplayAs for RemoteScanExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        write!(
            f,
            "RemoteScanExec: {}/{:?} partitions={:?} columns={:?} filters={:?} limit={:?}",
            self.source.topic,
            self.source.table,
            self.source.partitions,
            self.columns,
            self.filters,
            self.limit
        )?;
        if let Some(aggregate) = &self.aggregate {
            write!(f, " aggregate={aggregate:?}")?;
        }
        Ok(())
    }
}

impl ExecutionPlan for RemoteScanExec {
    fn name(&self) -> &str {
        "RemoteScanExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        Vec::new()
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> DfResult<TreeNodeRecursion>,
    ) -> DfResult<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn with_new_children(
        self: Arc<Self>,
        _children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        Ok(self)
    }

    fn execute(
        &self,
        _partition: usize,
        context: Arc<TaskContext>,
    ) -> DfResult<SendableRecordBatchStream> {
        let scope = context
            .session_config()
            .get_extension::<RemoteScope>()
            .ok_or_else(|| {
                DataFusionError::Internal("a remote scan ran outside a cluster query".into())
            })?;
        let call = RemoteCall {
            source: self.source.clone(),
            request: ScanRequest {
                topic: self.source.topic.clone(),
                table: self.source.table,
                partitions: Vec::new(),
                columns: if self.count_only() {
                    None
                } else {
                    self.columns.clone()
                },
                filters: self.filters.clone(),
                limit: self.limit,
                count_only: self.count_only(),
                aggregate: self.aggregate.clone(),
                fresh_wait_ms: None,
            },
            schema: self.schema.clone(),
            batch_size: context.session_config().batch_size(),
        };
        let batches = futures::stream::once(call.run(scope))
            .map_ok(|batches| futures::stream::iter(batches.into_iter().map(Ok)))
            .try_flatten();
        Ok(Box::pin(RecordBatchStreamAdapter::new(
            self.schema.clone(),
            batches,
        )))
    }
}

/// What one execution of a [`RemoteScanExec`] needs, owned so it can outlive the plan.
struct RemoteCall {
    source: RemoteSource,
    request: ScanRequest,
    schema: SchemaRef,
    batch_size: usize,
}

/// One owner's answer.
enum Answer {
    Rows(Vec<RecordBatch>),
    Count(u64),
}

impl RemoteCall {
    async fn run(self, scope: Arc<RemoteScope>) -> DfResult<Vec<RecordBatch>> {
        let node = self
            .source
            .node
            .upgrade()
            .ok_or_else(|| external(Error::Unavailable("the node is stopping".into())))?;
        let topic = node.topic(&self.source.topic).map_err(external)?;
        let plan = node.plan_reads(&topic, &self.source.partitions);
        // The context was built when these were elsewhere; its local tables lack them.
        let mut failures: Vec<PartitionFailure> = plan
            .local
            .iter()
            .map(|&p| {
                PartitionFailure::unavailable(
                    &topic.name,
                    p,
                    "the partition moved to this node during the query; ask again",
                )
            })
            .collect();
        let count_only = self.request.count_only;
        let (node_ref, request, schema) = (&node, &self.request, &self.schema);
        let fresh_until = scope.fresh_until;
        let fanned = node
            .fan_out(
                &topic.name,
                &plan.remote,
                scope.deadline,
                |addr, partitions, timeout| async move {
                    let request = ScanRequest {
                        partitions,
                        // At most half of what is left, so a slow catch-up leaves time to scan.
                        fresh_wait_ms: Some(
                            fresh_until
                                .saturating_duration_since(Instant::now())
                                .min(timeout / 2)
                                .as_millis() as u64,
                        ),
                        ..request.clone()
                    };
                    let response = post_peer(node_ref, &addr, SCAN_PATH, &request, timeout).await?;
                    let body = response
                        .bytes()
                        .await
                        .map_err(|e| PeerError::Failed(format!("{addr}: {e}")))?;
                    let answer = if count_only {
                        decode_count(&body).map(|(n, stale)| (Answer::Count(n), stale))
                    } else {
                        decode(&body, schema).map(|d| (Answer::Rows(d.batches), d.stale))
                    };
                    answer.map_err(|e| PeerError::Failed(format!("{addr}: {e}")))
                },
            )
            .await;
        let (answers, missed) = match fanned {
            Ok(done) => done,
            Err(e) => return Err(external(e)),
        };
        failures.extend(missed);
        let mut batches = Vec::new();
        let mut rows = 0u64;
        for (answer, stale) in answers {
            failures.extend(stale);
            match answer {
                Answer::Rows(b) => batches.extend(b),
                Answer::Count(n) => rows += n,
            }
        }
        scope.failures.lock().extend(failures);
        if count_only {
            let limit = self.request.limit.map_or(u64::MAX, |l| l as u64);
            return count_batches(rows.min(limit), self.batch_size)
                .map_err(|e| DataFusionError::ArrowError(Box::new(e), None));
        }
        Ok(batches)
    }
}

/// Our error inside DataFusion's, so `/_sql` can give it back with its own status (a peer's
/// 400 stays a 400).
fn external(e: Error) -> DataFusionError {
    DataFusionError::External(Box::new(e))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use datafusion::datasource::MemTable;
    use datafusion::physical_plan::displayable;
    use datafusion::prelude::SessionContext;

    use super::*;
    use crate::router::sql_remote::testdata;
    use crate::shard::columnar::table_schema;

    /// A context with `t` = 10 local rows plus partitions 1 and 2 of `logs` on peers.
    fn context() -> SessionContext {
        let ctx = SessionContext::new();
        let local = MemTable::try_new(table_schema(), vec![vec![testdata::batch(0, 10)]])
            .expect("memtable");
        let remote = RemoteSource {
            node: Weak::new(),
            topic: "logs".into(),
            table: ScanTable::All,
            partitions: vec![1, 2],
        };
        let table =
            ClusterTable::new(table_schema(), vec![Arc::new(local)], remote).expect("table");
        ctx.register_table("t", Arc::new(table)).expect("register");
        ctx
    }

    async fn physical(sql: &str) -> String {
        let plan = context()
            .sql(sql)
            .await
            .expect("plan")
            .create_physical_plan()
            .await
            .expect("physical");
        displayable(plan.as_ref()).indent(true).to_string()
    }

    /// `COUNT(*)` asks the owners for a count, not rows; a filtered scan asks for the
    /// columns the query needs and sends its filters, unqualified; LIMIT travels without a
    /// filter; volatile filters stay here.
    #[tokio::test]
    async fn remote_scan_gets_what_the_query_needs() {
        let count = physical("SELECT count(*) FROM t").await;
        assert!(
            count.contains(
                "RemoteScanExec: logs/All partitions=[1, 2] columns=Some([]) filters=[] limit=None"
            ),
            "{count}"
        );
        let filtered = physical("SELECT x.host FROM t AS x WHERE x.pid > 3 AND random() < 2").await;
        assert!(
            filtered.contains("columns=Some([\"host\", \"pid\"])"),
            "{filtered}"
        );
        assert!(filtered.contains("filters=[\"(pid > 3)\"]"), "{filtered}");
        let limited = physical("SELECT host FROM t LIMIT 4").await;
        assert!(limited.contains("limit=Some(4)"), "{limited}");
    }

    /// Executed outside a `/_sql` query (no scope to report missing partitions to), a remote
    /// scan fails instead of quietly answering from the local rows alone.
    #[tokio::test]
    async fn remote_scan_without_a_query_scope_fails() {
        let result = context()
            .sql("SELECT count(*) FROM t")
            .await
            .expect("plan")
            .collect()
            .await;
        let error = result.expect_err("no scope").to_string();
        assert!(error.contains("outside a cluster query"), "{error}");
    }

    /// With its node gone the scan is an error (503), not an empty remote part.
    #[tokio::test]
    async fn remote_scan_of_a_stopped_node_is_unavailable() {
        let ctx = context();
        let mut state = ctx.state();
        let now = Instant::now();
        let scope = RemoteScope::new(now + Duration::from_secs(5), now);
        state.config_mut().set_extension(scope.clone());
        let ctx = SessionContext::new_with_state(state);
        let error = ctx
            .sql("SELECT count(*) FROM t")
            .await
            .expect("plan")
            .collect()
            .await
            .expect_err("node gone");
        assert!(matches!(
            crate::router::sql::sql_error(error),
            Error::Unavailable(_)
        ));
        assert!(scope.take_failures().is_empty());
    }
}
