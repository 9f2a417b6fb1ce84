//! Which filters of a query travel to the owners of remote partitions, as SQL text.
//!
//! A filter is sent only when its SQL, parsed back against the table's schema, is the same
//! expression: then the owner (same code, same schema) filters exactly as this node would.
//! The coordinator applies every filter again on what comes back (they are pushed down as
//! `Inexact`), so a filter the owner applied too loosely would cost only bandwidth; the check
//! is there against one applied too strictly, which would drop rows, and against text the
//! owner could not parse, which would fail the query.

use std::sync::{Arc, OnceLock};

use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::{Column, DFSchema};
use datafusion::logical_expr::Expr;
use datafusion::logical_expr::simplify::SimplifyContext;
use datafusion::optimizer::simplify_expressions::ExprSimplifier;
use datafusion::prelude::SessionContext;
use datafusion::sql::unparser::expr_to_sql;

/// The SQL of `filter` for an owner's `WHERE`, or `None` when it cannot be sent safely:
/// volatile (`random()` would be drawn twice), not expressible in SQL, or not the same
/// expression once parsed back.
pub fn filter_sql(filter: &Expr, schema: &Arc<DFSchema>) -> Option<String> {
    if filter.is_volatile() {
        return None;
    }
    // The owner's table has another name (and the query may use an alias): columns go bare.
    let bare = unqualified(filter.clone()).ok()?;
    let sql = expr_to_sql(&bare).ok()?.to_string();
    let parsed = parser().parse_sql_expr(&sql, schema).ok()?;
    let simplifier = ExprSimplifier::new(
        SimplifyContext::builder()
            .with_schema(schema.clone())
            .build(),
    );
    // Both sides normalised the way the owner's planner will treat its copy.
    let back = simplifier
        .coerce(parsed, schema)
        .and_then(|e| simplifier.simplify(e))
        .ok()?;
    let original = simplifier.simplify(bare).ok()?;
    (back == original).then_some(sql)
}

/// `expr` with every column unqualified (`l.host` becomes `host`).
pub fn unqualified(expr: Expr) -> datafusion::common::Result<Expr> {
    Ok(expr
        .transform_up(|e| match e {
            Expr::Column(c) if c.relation.is_some() => Ok(Transformed::yes(Expr::Column(
                Column::new_unqualified(c.name),
            ))),
            other => Ok(Transformed::no(other)),
        })?
        .data)
}

/// A context used only to parse filter text: default functions, no tables.
fn parser() -> &'static SessionContext {
    static PARSER: OnceLock<SessionContext> = OnceLock::new();
    PARSER.get_or_init(SessionContext::new)
}

#[cfg(test)]
mod tests {
    use datafusion::arrow::datatypes::SchemaRef;
    use datafusion::logical_expr::{LogicalPlan, TableScan};

    use super::*;
    use crate::shard::columnar::table_schema;

    /// The filters DataFusion hands a table for `sql`, planned and optimised like `/_sql`.
    async fn pushed_filters(sql: &str) -> Vec<Expr> {
        let ctx = SessionContext::new();
        let table =
            datafusion::datasource::MemTable::try_new(table_schema(), vec![vec![]]).expect("table");
        ctx.register_table("logs", Arc::new(table))
            .expect("register");
        let plan = ctx
            .sql(sql)
            .await
            .expect("plan")
            .into_optimized_plan()
            .expect("optimise");
        let mut filters = Vec::new();
        plan.apply(|node| {
            if let LogicalPlan::Filter(f) = node {
                filters.extend(datafusion::logical_expr::utils::split_conjunction_owned(
                    f.predicate.clone(),
                ));
            }
            if let LogicalPlan::TableScan(TableScan { filters: f, .. }) = node {
                filters.extend(f.iter().cloned());
            }
            Ok(datafusion::common::tree_node::TreeNodeRecursion::Continue)
        })
        .expect("walk");
        filters
    }

    fn df_schema(schema: SchemaRef) -> Arc<DFSchema> {
        Arc::new(DFSchema::try_from(schema).expect("schema"))
    }

    /// Plain comparisons, IN lists, LIKE, null checks and keyword-named columns all survive
    /// the trip through SQL text unchanged.
    #[tokio::test]
    async fn common_filters_round_trip() {
        let schema = df_schema(table_schema());
        let cases = [
            "host = 'web-01'",
            "severity IN ('error', 'warn')",
            "pid > 100 AND pid <= 2000",
            "message LIKE '%timeout%'",
            "level IS NULL",
            "NOT alert",
            "\"timestamp\" >= 1700000000",
            "host = 'it''s'",
            "_partition = 3 OR _offset < 10",
            "lower(component) = 'kernel'",
            "pid * 2 > 7",
            "label <> '-'",
        ];
        for case in cases {
            let filters = pushed_filters(&format!("SELECT * FROM logs AS l WHERE {case}")).await;
            assert!(!filters.is_empty(), "{case}: no filter planned");
            for f in &filters {
                let sql = filter_sql(f, &schema);
                assert!(sql.is_some(), "{case}: {f} was not pushable");
            }
        }
    }

    /// What the owner receives selects the same rows: the filter texts, applied the way the
    /// owner applies them, count what the original query counts on a small table.
    #[tokio::test]
    async fn pushed_text_selects_the_same_rows() {
        let schema = df_schema(table_schema());
        let ctx = SessionContext::new();
        let table = datafusion::datasource::MemTable::try_new(
            table_schema(),
            vec![vec![crate::router::sql_remote::testdata::batch(0, 40)]],
        )
        .expect("table");
        ctx.register_table("logs", Arc::new(table))
            .expect("register");
        let cases = [
            "host = 'host-3'",
            "pid BETWEEN 5 AND 20 AND severity <> 'info'",
            "message LIKE '%1%' OR level IS NULL",
            "\"timestamp\" % 3 = 1",
            "component IN ('kernel', 'sshd') AND NOT alert",
            "_timestamp >= '2023-11-14T22:13:30.001'",
            "pid > 2.5",
        ];
        for case in cases {
            let query = format!("SELECT count(*) AS n FROM logs WHERE {case}");
            let texts: Vec<String> = pushed_filters(&query)
                .await
                .iter()
                .map(|f| filter_sql(f, &schema).expect("pushable"))
                .collect();
            let owner = format!(
                "SELECT count(*) AS n FROM logs WHERE ({})",
                texts.join(") AND (")
            );
            let count = |sql: String| {
                let ctx = ctx.clone();
                async move {
                    let batches = ctx
                        .sql(&sql)
                        .await
                        .expect("plan")
                        .collect()
                        .await
                        .expect("run");
                    datafusion::arrow::util::pretty::pretty_format_batches(&batches)
                        .expect("format")
                        .to_string()
                }
            };
            assert_eq!(count(query).await, count(owner).await, "{case}: {texts:?}");
        }
    }

    /// Volatile filters stay on the coordinator: the owner would draw other random numbers.
    #[tokio::test]
    async fn volatile_filters_are_not_pushed() {
        let schema = df_schema(table_schema());
        let filters = pushed_filters("SELECT * FROM logs WHERE random() < 0.5").await;
        assert!(!filters.is_empty());
        for f in &filters {
            assert_eq!(filter_sql(f, &schema), None, "{f}");
        }
    }

    /// Timestamp literals are pushed as text that parses back to the same instant (to the
    /// millisecond): never a rounded or shifted bound.
    #[tokio::test]
    async fn timestamp_filters_keep_their_instant() {
        let schema = df_schema(table_schema());
        let filters =
            pushed_filters("SELECT * FROM logs WHERE _timestamp > '2024-01-02T03:04:05.678'").await;
        assert_eq!(filters.len(), 1, "{filters:?}");
        let sql = filter_sql(&filters[0], &schema).expect("pushable");
        assert!(sql.contains("2024-01-02 03:04:05.678"), "{sql}");
    }
}
