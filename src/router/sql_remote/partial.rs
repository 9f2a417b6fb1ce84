//! Partial aggregation on the owners: an aggregate over one [`ClusterTable`] whose functions
//! split into parts (COUNT, SUM, MIN, MAX, AVG over plain columns, grouped by plain columns)
//! is computed by each owner over its partitions and by this node over its own, and only
//! those per-group rows travel. Without this a `GROUP BY` ships its columns of every remote
//! row.
//!
//! The optimized plan's
//!
//! ```text
//! Aggregate: groups, aggs
//!   [Filter: p]
//!     TableScan: t (a ClusterTable)
//! ```
//!
//! becomes
//!
//! ```text
//! Projection: the Aggregate's own columns (AVG = sum of sums / sum of counts)
//!   Aggregate: groups, SUM of counts and sums, MIN of mins, MAX of maxes
//!     Union
//!       Aggregate: groups, partial aggs           (this node's partitions)
//!         [Filter: p]
//!           TableScan: t (local part only)
//!       TableScan: partial aggs of the owners      (`/internal/scan` with an AggregateSpec)
//! ```
//!
//! The owners cannot re-apply a filter to a partial aggregate, so a query whose filters are
//! not all sent exactly ([`filter_sql`]) keeps the remote scan of rows.

use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::catalog::default_table_source::source_as_provider;
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::{Column, DFSchema, ExprSchema};
use datafusion::datasource::provider_as_source;
use datafusion::functions_aggregate::expr_fn::{count, max, min, sum};
use datafusion::logical_expr::utils::split_conjunction;
use datafusion::logical_expr::{
    Aggregate, Expr, LogicalPlan, LogicalPlanBuilder, TableScan, TableType, cast,
};
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::projection::ProjectionExec;

use super::filters::filter_sql;
use super::table::{ClusterTable, RemoteScanExec};
use super::{AggregateSpec, Partial, RemoteSource};

type DfResult<T> = datafusion::common::Result<T>;

/// `plan` (optimized) with every aggregate of the covered shape computed partially on the
/// owners, or `None` when there is none.
pub fn push_partial_aggregates(plan: LogicalPlan) -> DfResult<Option<LogicalPlan>> {
    let rewritten = plan.transform_up(|node| {
        let LogicalPlan::Aggregate(aggregate) = &node else {
            return Ok(Transformed::no(node));
        };
        match rewrite(aggregate)? {
            Some(replacement) => Ok(Transformed::yes(replacement)),
            None => Ok(Transformed::no(node)),
        }
    })?;
    Ok(rewritten.transformed.then_some(rewritten.data))
}

/// One aggregate function of the query, over a column of the table (its bare name and the
/// expression the query used).
#[derive(Debug, Clone, PartialEq)]
enum Function {
    CountAll,
    Count(String, Expr),
    Sum(String, Expr),
    Min(String, Expr),
    Max(String, Expr),
    Avg(String, Expr),
}

/// What [`recognise`] found: the scanned table, the filters (all sendable) and the
/// aggregate's groups (bare names) and functions.
struct Shape {
    table: Arc<ClusterTable>,
    remote: RemoteSource,
    filters: Vec<String>,
    groups: Vec<String>,
    functions: Vec<Function>,
}

/// The [`Shape`] of `aggregate`, or `None` when it is not one this module splits.
fn recognise(aggregate: &Aggregate) -> DfResult<Option<Shape>> {
    // Down to the scan through filters, aliases and projections of plain columns, none of
    // which changes a column's bare name.
    let mut input = aggregate.input.as_ref();
    let mut predicates: Vec<&Expr> = Vec::new();
    loop {
        match input {
            LogicalPlan::Filter(filter) => {
                predicates.extend(split_conjunction(&filter.predicate));
                input = filter.input.as_ref();
            }
            LogicalPlan::SubqueryAlias(alias) => input = alias.input.as_ref(),
            LogicalPlan::Projection(projection)
                if projection.expr.iter().all(|e| matches!(e, Expr::Column(_))) =>
            {
                input = projection.input.as_ref();
            }
            _ => break,
        }
    }
    let LogicalPlan::TableScan(scan) = input else {
        return Ok(None);
    };
    // Filters pushed into the scan without a Filter above would be applied by the local part
    // alone; every ClusterTable filter is Inexact, so each is in the Filter too.
    if scan.fetch.is_some() || scan.filters.iter().any(|f| !predicates.contains(&f)) {
        return Ok(None);
    }
    let Some(table) = cluster_table(scan)? else {
        return Ok(None);
    };
    let Some(remote) = table.remote().cloned() else {
        return Ok(None);
    };
    let df_schema = Arc::new(DFSchema::try_from(table.schema())?);
    let mut filters = Vec::with_capacity(predicates.len());
    for predicate in predicates {
        match filter_sql(predicate, &df_schema) {
            Some(sql) => filters.push(sql),
            None => return Ok(None),
        }
    }
    let input_schema = aggregate.input.schema();
    let mut groups = Vec::with_capacity(aggregate.group_expr.len());
    for group in &aggregate.group_expr {
        match strip_alias(group) {
            Expr::Column(c) => groups.push(c.name.clone()),
            _ => return Ok(None),
        }
    }
    let mut functions = Vec::with_capacity(aggregate.aggr_expr.len());
    for expr in &aggregate.aggr_expr {
        let Expr::AggregateFunction(function) = strip_alias(expr) else {
            return Ok(None);
        };
        let params = &function.params;
        if params.distinct
            || params.filter.is_some()
            || !params.order_by.is_empty()
            || params.args.len() != 1
        {
            return Ok(None);
        }
        let argument = &params.args[0];
        let column_of = |e: &Expr| match e {
            Expr::Column(c) => input_schema
                .field_from_column(c)
                .ok()
                .map(|f| (c.name.clone(), f.data_type().clone())),
            _ => None,
        };
        let recognised = match (function.func.name(), argument) {
            ("count", Expr::Literal(value, _)) if !value.is_null() => Some(Function::CountAll),
            ("count", e) => column_of(e).map(|(c, _)| Function::Count(c, e.clone())),
            ("sum", e) => column_of(e)
                .filter(|(_, t)| {
                    matches!(t, DataType::Int64 | DataType::UInt64 | DataType::Float64)
                })
                .map(|(c, _)| Function::Sum(c, e.clone())),
            ("min", e) => column_of(e).map(|(c, _)| Function::Min(c, e.clone())),
            ("max", e) => column_of(e).map(|(c, _)| Function::Max(c, e.clone())),
            // AVG of an integer arrives as AVG(CAST(c AS Float64)).
            ("avg", Expr::Cast(c)) if *c.field.data_type() == DataType::Float64 => {
                column_of(&c.expr)
                    .filter(|(_, t)| t.is_integer() || t.is_floating())
                    .map(|(name, _)| Function::Avg(name, c.expr.as_ref().clone()))
            }
            ("avg", e) => column_of(e)
                .filter(|(_, t)| *t == DataType::Float64)
                .map(|(c, _)| Function::Avg(c, e.clone())),
            _ => None,
        };
        match recognised {
            Some(f) => functions.push(f),
            None => return Ok(None),
        }
    }
    // Grouping sets add a column; only plain groups and functions are expected.
    if aggregate.schema.fields().len() != groups.len() + functions.len() {
        return Ok(None);
    }
    Ok(Some(Shape {
        table,
        remote,
        filters,
        groups,
        functions,
    }))
}

fn strip_alias(expr: &Expr) -> &Expr {
    match expr {
        Expr::Alias(alias) => strip_alias(&alias.expr),
        other => other,
    }
}

/// The [`ClusterTable`] `scan` reads, if it reads one.
fn cluster_table(scan: &TableScan) -> DfResult<Option<Arc<ClusterTable>>> {
    let Ok(provider) = source_as_provider(&scan.source) else {
        return Ok(None);
    };
    if !provider.is::<ClusterTable>() {
        return Ok(None);
    }
    let any: Arc<dyn std::any::Any + Send + Sync> = provider;
    Ok(any.downcast::<ClusterTable>().ok())
}

/// The partial aggregates of one function, with what combines them.
fn partials(function: &Function) -> Vec<(Expr, Partial, Combine)> {
    match function {
        Function::CountAll => vec![(
            datafusion::functions_aggregate::count::count_all(),
            Partial::CountAll,
            Combine::Sum,
        )],
        Function::Count(c, e) => vec![(count(e.clone()), Partial::Count(c.clone()), Combine::Sum)],
        Function::Sum(c, e) => vec![(sum(e.clone()), Partial::Sum(c.clone()), Combine::Sum)],
        Function::Min(c, e) => vec![(min(e.clone()), Partial::Min(c.clone()), Combine::Min)],
        Function::Max(c, e) => vec![(max(e.clone()), Partial::Max(c.clone()), Combine::Max)],
        Function::Avg(c, e) => vec![
            (
                sum(cast(e.clone(), DataType::Float64)),
                Partial::SumFloat(c.clone()),
                Combine::Sum,
            ),
            (count(e.clone()), Partial::Count(c.clone()), Combine::Sum),
        ],
    }
}

#[derive(Debug, Clone, Copy)]
enum Combine {
    Sum,
    Min,
    Max,
}

/// `aggregate` split between the owners and this node, or `None` when its shape is not
/// covered.
fn rewrite(aggregate: &Aggregate) -> DfResult<Option<LogicalPlan>> {
    let Some(shape) = recognise(aggregate)? else {
        return Ok(None);
    };
    // This node's part: the same input, its ClusterTable reduced to the local partitions.
    let local_table: Arc<dyn TableProvider> = Arc::new(shape.table.local_part());
    let local_input = aggregate
        .input
        .as_ref()
        .clone()
        .transform_up(|node| match node {
            LogicalPlan::TableScan(mut scan) => {
                scan.source = provider_as_source(local_table.clone());
                Ok(Transformed::yes(LogicalPlan::TableScan(scan)))
            }
            other => Ok(Transformed::no(other)),
        })?
        .data;
    let group_name = |i: usize| format!("__sv_g{i}");
    let partial_name = |i: usize| format!("__sv_p{i}");
    let local_groups: Vec<Expr> = aggregate
        .group_expr
        .iter()
        .enumerate()
        .map(|(i, g)| strip_alias(g).clone().alias(group_name(i)))
        .collect();
    let mut local_partials = Vec::new();
    let mut wire = Vec::new();
    let mut combines = Vec::new();
    for function in &shape.functions {
        for (expr, partial, combine) in partials(function) {
            local_partials.push(expr.alias(partial_name(wire.len())));
            wire.push(partial);
            combines.push(combine);
        }
    }
    let local = LogicalPlanBuilder::from(local_input)
        .aggregate(local_groups, local_partials)?
        .build()?;
    // The owners answer rows of the same columns (nullable: a decoded batch is relabelled).
    let fields: Vec<Field> = local
        .schema()
        .fields()
        .iter()
        .map(|f| f.as_ref().clone().with_nullable(true))
        .collect();
    let remote_schema = Arc::new(Schema::new(fields));
    let remote = PartialTable {
        source: shape.remote,
        filters: shape.filters,
        spec: AggregateSpec {
            group_by: shape.groups,
            partials: wire,
        },
        schema: remote_schema,
    };
    let remote =
        LogicalPlanBuilder::scan("__sv_owners", provider_as_source(Arc::new(remote)), None)?
            .build()?;
    let bare = |name: String| Expr::Column(Column::new_unqualified(name));
    let final_groups: Vec<Expr> = (0..aggregate.group_expr.len())
        .map(|i| bare(group_name(i)))
        .collect();
    let final_aggs: Vec<Expr> = combines
        .iter()
        .enumerate()
        .map(|(i, combine)| {
            let p = bare(partial_name(i));
            let combined = match combine {
                Combine::Sum => sum(p),
                Combine::Min => min(p),
                Combine::Max => max(p),
            };
            combined.alias(partial_name(i))
        })
        .collect();
    // Back to the original columns, named and qualified as the Aggregate named them.
    let mut outputs = Vec::with_capacity(aggregate.schema.fields().len());
    for i in 0..aggregate.group_expr.len() {
        outputs.push(bare(group_name(i)));
    }
    let mut next = 0;
    for function in &shape.functions {
        let output = match function {
            Function::Avg(..) => {
                let (sums, counts) = (bare(partial_name(next)), bare(partial_name(next + 1)));
                next += 2;
                // NULL without values: then the sum of sums is NULL too.
                sums / cast(counts, DataType::Float64)
            }
            _ => {
                next += 1;
                bare(partial_name(next - 1))
            }
        };
        outputs.push(output);
    }
    let outputs: Vec<Expr> = outputs
        .into_iter()
        .zip(aggregate.schema.iter())
        .map(|(e, (qualifier, field))| e.alias_qualified(qualifier.cloned(), field.name()))
        .collect();
    let plan = LogicalPlanBuilder::from(local)
        .union(remote)?
        .aggregate(final_groups, final_aggs)?
        .project(outputs)?
        .build()?;
    let same = plan
        .schema()
        .iter()
        .zip(aggregate.schema.iter())
        .all(|((q1, f1), (q2, f2))| {
            q1 == q2 && f1.name() == f2.name() && f1.data_type() == f2.data_type()
        })
        && plan.schema().fields().len() == aggregate.schema.fields().len();
    if !same {
        tracing::debug!(plan = %plan.display_indent(), "partial aggregate changed the schema; not used");
        return Ok(None);
    }
    Ok(Some(plan))
}

/// The owners' partial aggregates of a [`ClusterTable`]'s remote partitions, as a table.
#[derive(Debug)]
struct PartialTable {
    source: RemoteSource,
    filters: Vec<String>,
    spec: AggregateSpec,
    schema: SchemaRef,
}

impl PartialTable {
    async fn plan(&self, projection: Option<&Vec<usize>>) -> DfResult<Arc<dyn ExecutionPlan>> {
        let scan: Arc<dyn ExecutionPlan> = Arc::new(RemoteScanExec::new(
            self.source.clone(),
            None,
            self.filters.clone(),
            None,
            Some(self.spec.clone()),
            self.schema.clone(),
        ));
        let Some(projection) = projection else {
            return Ok(scan);
        };
        let mut exprs = Vec::with_capacity(projection.len());
        for &i in projection {
            let name = self.schema.field(i).name().clone();
            let column: Arc<dyn datafusion::physical_plan::PhysicalExpr> = Arc::new(
                datafusion::physical_expr::expressions::Column::new(&name, i),
            );
            exprs.push((column, name));
        }
        Ok(Arc::new(ProjectionExec::try_new(exprs, scan)?))
    }
}

#[async_trait::async_trait]
impl TableProvider for PartialTable {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn table_type(&self) -> TableType {
        TableType::Temporary
    }

    async fn scan(
        &self,
        _state: &dyn Session,
        projection: Option<&Vec<usize>>,
        _filters: &[Expr],
        _limit: Option<usize>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        self.plan(projection).await
    }
}

#[cfg(test)]
mod tests;
