//! The page of one run (`GET /runs/{id}`): what ran where, then per phase the verdicts against
//! the plan's criteria, the dataset, the tasks' latency and throughput, the failover timeline
//! and node telemetry.

use std::collections::BTreeMap;
use std::fmt::Write;

use super::charts;
use super::html::{
    Live, bytes, duration, esc, num, opt, page, status_badge, timestamp, url_segment, verdict,
};
use super::store;
use crate::bench::record::{PhaseRecord, RunRecord, TaskRecord};

/// The whole page, mounted at `base` (see `html::normalise_base`); `etag` is the record's, so
/// a live page can tell when to reload.
pub fn render(run: &RunRecord, etag: &str, base: &str) -> String {
    let mut body = String::new();
    header(&mut body, run, base);
    if run.phases.is_empty() {
        body.push_str(r#"<p class="muted">No phase has started yet.</p>"#);
    }
    if run.phases.len() > 1 {
        body.push_str(r#"<nav class="phases">Phases:"#);
        for (i, phase) in run.phases.iter().enumerate() {
            let _ = write!(
                body,
                r##" <a href="#phase-{i}">{}</a> {}"##,
                esc(&phase.plan),
                status_badge(&phase.status)
            );
        }
        body.push_str("</nav>");
    }
    for (i, phase) in run.phases.iter().enumerate() {
        phase_section(&mut body, run, i, phase);
    }
    let api = format!("{base}/api/runs/{}", url_segment(&run.id));
    let live = (run.status == "running").then_some(Live { url: &api, etag });
    page(base, &format!("{} {}", run.label, run.id), live, &body)
}

fn header(out: &mut String, run: &RunRecord, base: &str) {
    let id = url_segment(&run.id);
    let _ = write!(
        out,
        r#"<section class="run-head"><h1>{} <span class="scale">{}</span> {}</h1>"#,
        esc(&run.label),
        esc(&run.scale),
        status_badge(&run.status)
    );
    if run.status == "running" {
        out.push_str(r#"<p class="live" id="live-note">Live: this run is still going; the page reloads when its record changes.</p>"#);
    }
    if run.version.build == "debug" {
        out.push_str(r#"<p class="warning"><strong>Debug build.</strong> This run was measured with an unoptimised binary: its timings are not benchmarks.</p>"#);
    }
    if let Some(error) = &run.error {
        let _ = write!(out, r#"<p class="error">Run error: {}</p>"#, esc(error));
    }
    let finished = run
        .finished_at
        .as_deref()
        .map_or_else(|| "—".to_string(), timestamp);
    let took = store::elapsed(run).map_or_else(|| "—".to_string(), duration);
    let _ = write!(
        out,
        r#"<dl class="facts"><dt>id</dt><dd>{}</dd><dt>started</dt><dd>{}</dd><dt>finished</dt><dd>{}</dd><dt>duration</dt><dd>{}{}</dd><dt>version</dt><dd>{} {}</dd><dt>build</dt><dd>{}</dd><dt>runner hardware</dt><dd>{}</dd><dt>environment</dt><dd>{}{}</dd></dl>"#,
        esc(&run.id),
        esc(&timestamp(&run.started_at)),
        esc(&finished),
        took,
        if run.finished_at.is_none() {
            " so far"
        } else {
            ""
        },
        esc(&run.version.package),
        esc(&run.version.git),
        esc(&run.version.build),
        hardware(&run.hardware),
        esc(&run.environment.kind),
        if run.environment.targets.is_empty() {
            String::new()
        } else {
            format!(": {}", esc(&run.environment.targets.join(", ")))
        },
    );
    if !run.environment.notes.is_empty() {
        out.push_str(r#"<ul class="notes">"#);
        for note in &run.environment.notes {
            let _ = write!(out, "<li>{}</li>", esc(note));
        }
        out.push_str("</ul>");
    }
    nodes(out, run);
    let _ = write!(
        out,
        r#"<p class="downloads">Download: <a href="{base}/runs/{id}.json">JSON</a> · <a href="{base}/runs/{id}.csv">CSV (tasks)</a> · <a href="{base}/?b={id}">compare…</a></p></section>"#,
        base = esc(base),
    );
}

/// `host: OS, N × CPU model, M memory`, escaped.
fn hardware(hw: &crate::host::Hardware) -> String {
    format!(
        "{}: {}, {} × {}, {} memory",
        esc(&hw.hostname),
        esc(&hw.os),
        hw.cpus,
        esc(&hw.cpu_model),
        bytes(hw.memory_bytes)
    )
}

/// Each node the run used: where it ran and how it was configured (its secrets withheld).
fn nodes(out: &mut String, run: &RunRecord) {
    if run.nodes.is_empty() {
        return;
    }
    out.push_str(r#"<h3>Nodes</h3><table class="nodes"><thead><tr><th>node</th><th>id</th><th>version</th><th>hardware</th><th>effective config</th></tr></thead><tbody>"#);
    for node in &run.nodes {
        let config = serde_json::to_string_pretty(&node.config).unwrap_or_default();
        let _ = write!(
            out,
            "<tr><td>{}</td><td>{}</td><td>{} {} ({})</td><td>{}</td><td><details><summary>config</summary><pre>{}</pre></details></td></tr>",
            esc(&node.target),
            node.node_id,
            esc(&node.version.package),
            esc(&node.version.git),
            esc(&node.version.build),
            hardware(&node.hardware),
            esc(&config),
        );
    }
    out.push_str("</tbody></table>");
}

fn phase_section(out: &mut String, run: &RunRecord, index: usize, phase: &PhaseRecord) {
    let _ = write!(
        out,
        r#"<section class="phase" id="phase-{index}"><h2>{} — {} {}</h2>"#,
        esc(&phase.plan),
        esc(&phase.title),
        status_badge(&phase.status)
    );
    let took = phase.finished_secs.map_or_else(
        || "still going".to_string(),
        |end| format!("took {}", duration(end - phase.started_secs)),
    );
    let _ = write!(
        out,
        r#"<p class="muted">Started {} s into the run, {took}.</p>"#,
        num(phase.started_secs)
    );
    let notes: Vec<&str> = run.phase_notes(&phase.plan).collect();
    if !notes.is_empty() {
        out.push_str(r#"<ul class="notes">"#);
        for note in notes {
            let _ = write!(out, "<li>{}</li>", esc(note));
        }
        out.push_str("</ul>");
    }
    if let Some(error) = &phase.error {
        let _ = write!(out, r#"<p class="error">Phase error: {}</p>"#, esc(error));
    }
    if phase.status == "pending" {
        out.push_str("</section>");
        return;
    }
    out.push_str("<h3>Criteria</h3>");
    criteria(out, phase);
    if let Some(d) = &phase.dataset {
        let _ = write!(
            out,
            r#"<h3>Dataset</h3><dl class="facts"><dt>data</dt><dd>{} from {} into topic {}</dd><dt>loaded</dt><dd>{} of {} lines ({} rejected) in {}: {} records/s</dd><dt>searchable</dt><dd>{} after the load</dd><dt>vectors</dt><dd>{}</dd></dl>"#,
            esc(&d.format),
            esc(&d.source),
            esc(&d.topic),
            d.records_loaded,
            d.lines,
            d.rejected,
            duration(d.load_secs),
            num(d.records_per_sec),
            duration(d.searchable_secs),
            match (d.vectors, d.embed_secs) {
                (Some(v), Some(s)) => format!("{v} embedded in {}", duration(s)),
                (Some(v), None) => v.to_string(),
                _ => "not asked for".to_string(),
            },
        );
    }
    if !phase.measurements.is_empty() {
        out.push_str(r#"<h3>Measurements</h3><table><thead><tr><th>measurement</th><th class="num">value</th><th>detail</th></tr></thead><tbody>"#);
        for m in &phase.measurements {
            let _ = write!(
                out,
                r#"<tr><td>{}</td><td class="num">{} {}</td><td>{}</td></tr>"#,
                esc(&m.name),
                num(m.value),
                esc(&m.unit),
                esc(&m.detail)
            );
        }
        out.push_str("</tbody></table>");
    }
    if !phase.tasks.is_empty() {
        out.push_str("<h3>Tasks</h3>");
        tasks(out, &phase.tasks);
        out.push_str("<h3>Latency by category</h3>");
        categories(out, &phase.tasks);
        let _ = write!(
            out,
            r#"<div class="chart-grid">{}{}</div>"#,
            charts::latency_bars(phase),
            charts::throughput(phase)
        );
    }
    out.push_str("<h3>Failover timeline</h3>");
    out.push_str(&charts::failover(phase));
    out.push_str("<h3>Node telemetry</h3>");
    out.push_str(&charts::telemetry(run, phase));
    let _ = write!(
        out,
        r#"<details><summary>Plan as run</summary><pre>{}</pre></details></section>"#,
        esc(&phase.plan_source)
    );
}

fn criteria(out: &mut String, phase: &PhaseRecord) {
    if phase.criteria.is_empty() {
        out.push_str(r#"<p class="muted">The plan sets no criteria for this phase.</p>"#);
        return;
    }
    out.push_str(r#"<table class="criteria"><thead><tr><th>criterion</th><th class="num">value</th><th class="num">threshold</th><th>verdict</th><th>detail</th></tr></thead><tbody>"#);
    for c in &phase.criteria {
        let value = c
            .value
            .map_or_else(|| "—".to_string(), |v| format!("{} {}", num(v), c.unit));
        let _ = write!(
            out,
            r#"<tr class="{}"><td>{}</td><td class="num">{}</td><td class="num">{}{} {}</td><td>{}</td><td>{}</td></tr>"#,
            if c.passed { "pass" } else { "fail" },
            esc(&c.name),
            esc(&value),
            match c.bound.as_str() {
                "<=" => "≤ ",
                ">=" => "≥ ",
                _ => "",
            },
            num(c.threshold),
            esc(&c.unit),
            verdict(c.passed, c.judged),
            esc(&c.detail)
        );
    }
    out.push_str("</tbody></table>");
}

fn tasks(out: &mut String, tasks: &[TaskRecord]) {
    // Service time differs from latency only for rate-limited tasks (coordinated omission);
    // the column appears only when some task has it.
    let service_differs = |t: &TaskRecord| t.service_ms.p50 != t.latency_ms.p50;
    let show_service = tasks.iter().any(service_differs);
    let _ = write!(
        out,
        r#"<table class="tasks"><thead><tr><th>task</th><th>category</th><th class="num">clients</th><th class="num">samples</th><th class="num">errors</th><th class="num">req/s</th><th class="num">p50 ms</th><th class="num">p90 ms</th><th class="num">p95 ms</th><th class="num">p99 ms</th><th class="num">p99.9 ms</th><th class="num">max ms</th>{}<th>assertions</th><th>verdict</th></tr></thead><tbody>"#,
        if show_service {
            r#"<th class="num">service p50 ms</th>"#
        } else {
            ""
        }
    );
    for t in tasks {
        let l = &t.latency_ms;
        let _ = write!(
            out,
            r#"<tr class="{}"><td><details class="request"><summary>{}</summary><pre>{}</pre>{}{}</details></td><td>{}</td><td class="num">{}</td><td class="num">{}</td><td class="num">{}{}</td><td class="num">{}</td><td class="num">{}</td><td class="num">{}</td><td class="num">{}</td><td class="num">{}</td><td class="num">{}</td><td class="num">{}</td>"#,
            if t.passed { "pass" } else { "fail" },
            esc(&t.name),
            esc(&serde_json::to_string_pretty(&t.request).unwrap_or_default()),
            per_query(t),
            t.sample_answer
                .as_deref()
                .map_or_else(String::new, |a| format!(
                    r#"<p class="muted">Sample answer:</p><pre>{}</pre>"#,
                    esc(a)
                )),
            esc(&t.category),
            t.clients,
            t.samples,
            t.errors,
            if t.errors > 0 {
                format!(" ({:.1} %)", t.error_rate * 100.0)
            } else {
                String::new()
            },
            num(t.throughput),
            opt(l.p50),
            opt(l.p90),
            opt(l.p95),
            opt(l.p99),
            opt(l.p99_9),
            opt(l.max),
        );
        if show_service {
            let service = if service_differs(t) {
                opt(t.service_ms.p50)
            } else {
                "=".to_string()
            };
            let _ = write!(out, r#"<td class="num">{service}</td>"#);
        }
        out.push_str(r#"<td><ul class="assertions">"#);
        for a in &t.assertions {
            let _ = write!(
                out,
                r#"<li>{} {} <span class="muted">{}</span></li>"#,
                verdict(a.passed, true),
                esc(&a.name),
                esc(&a.detail)
            );
        }
        let _ = write!(out, "</ul></td><td>{}</td></tr>", verdict(t.passed, true));
    }
    out.push_str("</tbody></table>");
}

/// The latency of each query of a task that sends several, in the order it sends them.
fn per_query(task: &TaskRecord) -> String {
    if task.queries.is_empty() {
        return String::new();
    }
    let mut out = String::from(
        r#"<table class="queries"><thead><tr><th>query</th><th class="num">n</th><th class="num">p50 ms</th><th class="num">p90 ms</th><th class="num">p99 ms</th><th class="num">max ms</th></tr></thead><tbody>"#,
    );
    for q in &task.queries {
        let text = serde_json::to_string(&q.request).unwrap_or_default();
        let shown: String = text.chars().take(120).collect();
        let l = &q.latency_ms;
        let _ = write!(
            out,
            r#"<tr><td><code>{}</code></td><td class="num">{}</td><td class="num">{}</td><td class="num">{}</td><td class="num">{}</td><td class="num">{}</td></tr>"#,
            esc(&shown),
            l.count,
            opt(l.p50),
            opt(l.p90),
            opt(l.p99),
            opt(l.max)
        );
    }
    out.push_str("</tbody></table>");
    out
}

/// Worst percentiles per category: a category meets a latency criterion only if its slowest
/// task does.
fn categories(out: &mut String, tasks: &[TaskRecord]) {
    let mut order: Vec<&str> = Vec::new();
    let mut groups: BTreeMap<&str, Vec<&TaskRecord>> = BTreeMap::new();
    for t in tasks {
        if !groups.contains_key(t.category.as_str()) {
            order.push(&t.category);
        }
        groups.entry(&t.category).or_default().push(t);
    }
    let worst = |group: &[&TaskRecord], f: fn(&TaskRecord) -> Option<f64>| {
        group.iter().filter_map(|t| f(t)).reduce(f64::max)
    };
    out.push_str(r#"<table class="categories"><thead><tr><th>category</th><th class="num">tasks</th><th class="num">samples</th><th class="num">errors</th><th class="num">worst p50 ms</th><th class="num">worst p90 ms</th><th class="num">worst p99 ms</th><th class="num">worst p99.9 ms</th><th>slowest task (p50)</th></tr></thead><tbody>"#);
    for category in order {
        let group = &groups[category];
        let slowest = group
            .iter()
            .filter(|t| t.latency_ms.p50.is_some())
            .max_by(|a, b| {
                a.latency_ms
                    .p50
                    .partial_cmp(&b.latency_ms.p50)
                    .unwrap_or(std::cmp::Ordering::Equal)
            })
            .map_or("—", |t| t.name.as_str());
        let _ = write!(
            out,
            r#"<tr><td>{}</td><td class="num">{}</td><td class="num">{}</td><td class="num">{}</td><td class="num">{}</td><td class="num">{}</td><td class="num">{}</td><td class="num">{}</td><td>{}</td></tr>"#,
            esc(category),
            group.len(),
            group.iter().map(|t| t.samples).sum::<u64>(),
            group.iter().map(|t| t.errors).sum::<u64>(),
            opt(worst(group, |t| t.latency_ms.p50)),
            opt(worst(group, |t| t.latency_ms.p90)),
            opt(worst(group, |t| t.latency_ms.p99)),
            opt(worst(group, |t| t.latency_ms.p99_9)),
            esc(slowest),
        );
    }
    out.push_str("</tbody></table>");
}
