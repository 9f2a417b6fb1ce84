//! `bench list` and `bench compare` in the terminal: runs in the runs directory, and two runs
//! side by side per phase and task (p50, p99, throughput, B/A) with both verdicts.

use std::fmt::Write;

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use super::record::{RunRecord, TaskRecord};

/// Config keys that name a node rather than set it up: they differ between any two runs.
const IDENTITY_KEYS: &[&str] = &[
    "node_id",
    "data_dir",
    "api.listen",
    "cluster.raft_listen",
    "cluster.members",
    "report.runs_dir",
];

/// One run's node settings: dotted key → every value its nodes had (one, unless they differed).
fn node_settings(run: &RunRecord) -> BTreeMap<String, BTreeSet<String>> {
    fn walk(prefix: &str, value: &Value, out: &mut BTreeMap<String, BTreeSet<String>>) {
        if IDENTITY_KEYS.contains(&prefix) {
            return;
        }
        match value {
            Value::Object(fields) => {
                for (name, v) in fields {
                    let key = if prefix.is_empty() {
                        name.clone()
                    } else {
                        format!("{prefix}.{name}")
                    };
                    walk(&key, v, out);
                }
            }
            leaf => {
                out.entry(prefix.to_string())
                    .or_default()
                    .insert(leaf.to_string());
            }
        }
    }
    let mut settings = BTreeMap::new();
    for node in &run.nodes {
        walk("", &node.config, &mut settings);
    }
    settings
}

/// The node settings two runs did not share, as `(key, A's values, B's values)`; empty when
/// either run recorded no node (a record from before nodes were recorded).
pub fn config_differences(a: &RunRecord, b: &RunRecord) -> Vec<(String, String, String)> {
    if a.nodes.is_empty() || b.nodes.is_empty() {
        return Vec::new();
    }
    let (sa, sb) = (node_settings(a), node_settings(b));
    let shown = |values: Option<&BTreeSet<String>>| {
        values.map_or("—".to_string(), |v| {
            v.iter().cloned().collect::<Vec<_>>().join(" / ")
        })
    };
    let keys: BTreeSet<&String> = sa.keys().chain(sb.keys()).collect();
    keys.into_iter()
        .filter(|k| sa.get(*k) != sb.get(*k))
        .map(|k| (k.clone(), shown(sa.get(k)), shown(sb.get(k))))
        .collect()
}

fn ms(v: Option<f64>) -> String {
    v.map_or("—".into(), |v| format!("{v:.2}"))
}

pub fn render_list(runs: &[RunRecord], problems: &[String]) -> String {
    let mut out = String::new();
    if runs.is_empty() {
        out.push_str("no runs yet (`sv-appliance bench run SV-2a --scale demo` makes one)\n");
    } else {
        let _ = writeln!(
            out,
            "{:<36} {:<8} {:<7} {:<9} {:<20} {:>7}  git",
            "run", "label", "scale", "status", "started", "phases"
        );
    }
    for run in runs.iter().rev() {
        let _ = writeln!(
            out,
            "{:<36} {:<8} {:<7} {:<9} {:<20} {:>7}  {} ({})",
            run.id,
            run.label,
            run.scale,
            run.status,
            run.started_at,
            run.phases.len(),
            run.version.git,
            run.version.build
        );
    }
    for p in problems {
        let _ = writeln!(out, "unreadable: {p}");
    }
    out
}

fn task_key(phase: &str, task: &TaskRecord) -> String {
    format!("{phase}/{}", task.name)
}

pub fn render_compare(a: &RunRecord, b: &RunRecord) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "A = {} ({}, {} build, {} on {} cpus)\nB = {} ({}, {} build, {} on {} cpus)",
        a.id,
        a.version.git,
        a.version.build,
        a.environment.kind,
        a.hardware.cpus,
        b.id,
        b.version.git,
        b.version.build,
        b.environment.kind,
        b.hardware.cpus
    );
    if a.version.build != b.version.build || a.scale != b.scale {
        let _ = writeln!(
            out,
            "note: the runs differ in build ({} vs {}) or scale ({} vs {}); ratios compare unlike things",
            a.version.build, b.version.build, a.scale, b.scale
        );
    }
    for (key, va, vb) in config_differences(a, b) {
        let _ = writeln!(out, "node config differs: {key} = {va} (A) vs {vb} (B)");
    }
    for pa in &a.phases {
        let Some(pb) = b.phases.iter().find(|p| p.plan == pa.plan) else {
            let _ = writeln!(out, "\n{}: only in A", pa.plan);
            continue;
        };
        let _ = writeln!(
            out,
            "\n{} — A {} / B {}\n  {:<44} {:>9} {:>9} {:>6}  {:>9} {:>9}  {:>8} {:>8}",
            pa.plan,
            pa.status,
            pb.status,
            "task",
            "A p50",
            "B p50",
            "B/A",
            "A p99",
            "B p99",
            "A ops/s",
            "B ops/s"
        );
        for ta in &pa.tasks {
            let key = task_key(&pa.plan, ta);
            let Some(tb) = pb.tasks.iter().find(|t| task_key(&pb.plan, t) == key) else {
                continue;
            };
            let ratio = match (ta.latency_ms.p50, tb.latency_ms.p50) {
                (Some(x), Some(y)) if x > 0.0 => format!("{:.2}", y / x),
                _ => "—".into(),
            };
            let name: String = ta.name.chars().take(44).collect();
            let _ = writeln!(
                out,
                "  {name:<44} {:>9} {:>9} {ratio:>6}  {:>9} {:>9}  {:>8.1} {:>8.1}",
                ms(ta.latency_ms.p50),
                ms(tb.latency_ms.p50),
                ms(ta.latency_ms.p99),
                ms(tb.latency_ms.p99),
                ta.throughput,
                tb.throughput
            );
        }
        for ca in &pa.criteria {
            let verdict = |judged: bool, passed: bool| match (judged, passed) {
                (false, _) => "not judged",
                (true, true) => "pass",
                (true, false) => "FAIL",
            };
            let b_verdict = pb
                .criteria
                .iter()
                .find(|c| c.name == ca.name)
                .map_or("—", |c| verdict(c.judged, c.passed));
            let _ = writeln!(
                out,
                "  criterion {:<60} A {:<10} B {}",
                ca.name,
                verdict(ca.judged, ca.passed),
                b_verdict
            );
        }
    }
    out
}
