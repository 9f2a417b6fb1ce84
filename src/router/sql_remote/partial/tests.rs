use std::sync::Weak;

use datafusion::arrow::record_batch::RecordBatch;
use datafusion::arrow::util::pretty::pretty_format_batches;
use datafusion::datasource::MemTable;
use datafusion::prelude::{DataFrame, SessionContext};

use super::*;
use crate::router::sql_remote::testdata;
use crate::router::sql_remote::{ScanRequest, ScanTable, scan_sql};
use crate::shard::columnar::table_schema;

/// Partitions 0 (here), 1 and 2 (on owners), of different sizes so that some groups are
/// missing from some partitions.
fn partitions() -> Vec<RecordBatch> {
    vec![
        testdata::batch(0, 3),
        testdata::batch(1, 40),
        testdata::batch(2, 7),
    ]
}

fn memtable(batches: Vec<RecordBatch>) -> Arc<MemTable> {
    Arc::new(MemTable::try_new(table_schema(), vec![batches]).expect("memtable"))
}

/// A coordinator holding partition 0 of `logs`, registered as `t` like `/_sql` does.
fn coordinator() -> SessionContext {
    let ctx = SessionContext::new();
    let remote = RemoteSource {
        node: Weak::new(),
        topic: "logs".into(),
        table: ScanTable::All,
        partitions: vec![1, 2],
    };
    let local: Arc<dyn TableProvider> = memtable(vec![partitions()[0].clone()]);
    let table = ClusterTable::new(table_schema(), vec![local], remote).expect("table");
    ctx.register_table("t", Arc::new(table)).expect("register");
    ctx
}

async fn optimized(sql: &str) -> LogicalPlan {
    coordinator()
        .sql(sql)
        .await
        .expect("plan")
        .into_optimized_plan()
        .expect("optimise")
}

async fn run(ctx: &SessionContext, plan: LogicalPlan) -> (Vec<String>, String) {
    let df = DataFrame::new(ctx.state(), plan);
    let columns = df
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    let batches = df.collect().await.expect("run");
    let text = pretty_format_batches(&batches).expect("format").to_string();
    (columns, text)
}

/// `sql` on one node with every partition, and split: the coordinator's plan rewritten,
/// its owners' leaf answered by running the owner's statement over partitions 1 and 2.
async fn single_and_split(sql: &str) -> ((Vec<String>, String), (Vec<String>, String)) {
    let single = SessionContext::new();
    single
        .register_table("t", memtable(partitions()))
        .expect("register");
    let single_plan = single.sql(sql).await.expect("plan").into_optimized_plan();
    let expected = run(&single, single_plan.expect("optimise")).await;

    let owner = SessionContext::new();
    owner
        .register_table("logs", memtable(partitions()[1..].to_vec()))
        .expect("register");
    let rewritten = push_partial_aggregates(optimized(sql).await)
        .expect("rewrite")
        .unwrap_or_else(|| panic!("{sql}: not split"));
    let mut owners_asked = 0;
    let mut answered = Vec::new();
    rewritten
        .apply(|node| {
            if let LogicalPlan::TableScan(scan) = node
                && let Ok(provider) = source_as_provider(&scan.source)
                && provider.is::<PartialTable>()
            {
                answered.push(scan.source.clone());
            }
            Ok(datafusion::common::tree_node::TreeNodeRecursion::Continue)
        })
        .expect("walk");
    let mut replacements = Vec::new();
    for source in answered {
        let provider = source_as_provider(&source).expect("provider");
        let any: Arc<dyn std::any::Any + Send + Sync> = provider;
        let table = any.downcast::<PartialTable>().expect("partial table");
        let request = ScanRequest {
            topic: "logs".into(),
            table: ScanTable::All,
            partitions: vec![1, 2],
            columns: None,
            filters: table.filters.clone(),
            limit: None,
            count_only: false,
            aggregate: Some(table.spec.clone()),
            fresh_wait_ms: None,
        };
        let owner_sql = scan_sql(&owner, &request).expect("owner sql");
        let batches = owner
            .sql(&owner_sql)
            .await
            .expect("owner plan")
            .collect()
            .await
            .expect("owner run");
        let relabelled: Vec<RecordBatch> = batches
            .iter()
            .map(|b| RecordBatch::try_new(table.schema.clone(), b.columns().to_vec()))
            .collect::<Result<_, _>>()
            .expect("owner answer has the expected columns");
        let answer = MemTable::try_new(table.schema.clone(), vec![relabelled]).expect("mem");
        replacements.push(provider_as_source(Arc::new(answer)));
        owners_asked += 1;
    }
    assert!(owners_asked > 0, "{sql}: no owner leaf");
    let mut replacements = replacements.into_iter();
    let plan = rewritten
        .transform_up(|node| match node {
            LogicalPlan::TableScan(mut scan)
                if source_as_provider(&scan.source)
                    .map(|p| p.is::<PartialTable>())
                    .unwrap_or(false) =>
            {
                scan.source = replacements.next().expect("replacement");
                Ok(Transformed::yes(LogicalPlan::TableScan(scan)))
            }
            other => Ok(Transformed::no(other)),
        })
        .expect("replace")
        .data;
    let got = run(&coordinator(), plan).await;
    (expected, got)
}

/// Partials from this node and the owners combine into the single node's answer, column
/// names included: counts, sums, extremes, AVG with NULL values, groups missing from
/// some partitions, groups with no value at all, and a global aggregate over no row.
#[tokio::test]
async fn partials_combine_into_the_single_node_answer() {
    let queries = [
        "SELECT severity, COUNT(*) FROM t GROUP BY severity ORDER BY severity",
        "SELECT host, COUNT(*) AS n, SUM(pid) AS s, MIN(message), MAX(_timestamp) FROM t GROUP BY host ORDER BY host",
        "SELECT label, COUNT(pid) AS c, AVG(pid) AS a FROM t GROUP BY label ORDER BY label",
        "SELECT host, AVG(pid) AS a, COUNT(pid), COUNT(*) AS n FROM t WHERE pid IS NULL GROUP BY host ORDER BY host",
        "SELECT COUNT(*), SUM(pid), AVG(pid), MIN(host), MAX(pid) FROM t WHERE host = 'nope'",
        "SELECT SUM(pid) AS s, MIN(timestamp) AS lo, MAX(timestamp) AS hi, AVG(pid) AS a FROM t",
        "SELECT host, component, COUNT(*) AS n FROM t WHERE pid > 3 AND level = 'INFO' GROUP BY host, component HAVING COUNT(*) > 1 ORDER BY n DESC, host, component LIMIT 4",
        "SELECT x.host, COUNT(*) FROM t AS x WHERE x.pid < 30 GROUP BY x.host ORDER BY 1",
        "SELECT COUNT(DISTINCT host) AS hosts FROM t WHERE label <> '-'",
        "SELECT _partition, COUNT(*) AS n FROM t GROUP BY _partition ORDER BY _partition",
        "SELECT COUNT(*) AS n FROM t",
    ];
    for sql in queries {
        let (expected, got) = single_and_split(sql).await;
        assert_eq!(got, expected, "{sql}");
    }
}

/// What is not covered keeps the remote scan of rows: a filter the owners cannot apply
/// exactly, computed groups, DISTINCT, FILTER and ordered aggregates, other functions,
/// casts the optimizer added, and anything but one table under the aggregate.
#[tokio::test]
async fn other_shapes_are_not_split() {
    let queries = [
        "SELECT host, COUNT(*) FROM t WHERE random() < 0.5 GROUP BY host",
        "SELECT lower(host), COUNT(*) FROM t GROUP BY lower(host)",
        "SELECT COUNT(DISTINCT host), COUNT(*) FROM t",
        "SELECT COUNT(pid) FILTER (WHERE pid > 3) FROM t",
        "SELECT array_agg(host ORDER BY pid) FROM t",
        "SELECT median(pid) FROM t",
        "SELECT SUM(_partition) FROM t",
        "SELECT SUM(pid + 1) FROM t",
        "SELECT a.host, COUNT(*) FROM t a JOIN t b ON a._offset = b._offset GROUP BY a.host",
        "SELECT host, COUNT(*) FROM (SELECT * FROM t LIMIT 5) GROUP BY host",
        "SELECT host, COUNT(*) FROM t GROUP BY ROLLUP(host)",
    ];
    for sql in queries {
        let plan = optimized(sql).await;
        let rewritten = push_partial_aggregates(plan.clone()).expect("rewrite");
        assert!(
            rewritten.is_none(),
            "{sql} was split:\n{}",
            rewritten
                .map(|p| p.display_indent().to_string())
                .unwrap_or_default()
        );
    }
}

/// The owners get the groups, partials and filters by bare column name.
#[tokio::test]
async fn owners_get_bare_names_and_filters() {
    let plan = optimized(
        "SELECT x.severity, AVG(x.pid) AS a FROM t AS x WHERE x.host = 'host-1' GROUP BY x.severity",
    )
    .await;
    let rewritten = push_partial_aggregates(plan)
        .expect("rewrite")
        .expect("split");
    let mut specs = Vec::new();
    rewritten
        .apply(|node| {
            if let LogicalPlan::TableScan(scan) = node
                && let Ok(provider) = source_as_provider(&scan.source)
                && provider.is::<PartialTable>()
            {
                let any: Arc<dyn std::any::Any + Send + Sync> = provider;
                let table = any.downcast::<PartialTable>().expect("partial");
                specs.push((table.spec.clone(), table.filters.clone()));
            }
            Ok(datafusion::common::tree_node::TreeNodeRecursion::Continue)
        })
        .expect("walk");
    assert_eq!(
        specs,
        vec![(
            AggregateSpec {
                group_by: vec!["severity".into()],
                partials: vec![
                    Partial::SumFloat("pid".into()),
                    Partial::Count("pid".into())
                ],
            },
            vec!["(host = 'host-1')".to_string()]
        )]
    );
}
