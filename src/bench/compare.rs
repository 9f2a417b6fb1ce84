//! `bench list` and `bench compare` in the terminal: runs in the runs directory, and two runs
//! side by side per phase and task (p50, p99, throughput, B/A) with both verdicts.

use std::fmt::Write;

use super::record::{RunRecord, TaskRecord};

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
