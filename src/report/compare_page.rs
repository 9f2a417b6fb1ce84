//! Two runs side by side (`GET /compare?a=ID&b=ID`): per phase, each task's p50, p99 and
//! throughput in A and B with the ratio B/A, and both runs' criteria verdicts.

use std::fmt::Write;

use super::html::{esc, num, opt, page, status_badge, timestamp, url_segment, verdict};
use crate::bench::record::{CriterionResult, PhaseRecord, RunRecord, TaskRecord};

/// `base`: where the report is mounted (see `html::normalise_base`).
pub fn render(a: &RunRecord, b: &RunRecord, base: &str) -> String {
    let mut body = String::from("<h1>Compare runs</h1>");
    facts(&mut body, a, b, base);
    if a.version.build == "debug" || b.version.build == "debug" {
        body.push_str(r#"<p class="warning"><strong>Debug build.</strong> At least one of these runs used an unoptimised binary: its timings are not benchmarks.</p>"#);
    }
    if a.hardware.hostname != b.hardware.hostname || a.environment.kind != b.environment.kind {
        body.push_str(r#"<p class="warning">The runs differ in host or environment; ratios compare the setups as much as the code.</p>"#);
    }
    let differences = crate::bench::compare::config_differences(a, b);
    if !differences.is_empty() {
        body.push_str(r#"<h3>Node config that differs</h3><table class="config-diff"><thead><tr><th>setting</th><th>A</th><th>B</th></tr></thead><tbody>"#);
        for (key, va, vb) in &differences {
            let _ = write!(
                body,
                "<tr><td><code>{}</code></td><td>{}</td><td>{}</td></tr>",
                esc(key),
                esc(va),
                esc(vb)
            );
        }
        body.push_str("</tbody></table>");
    }
    for (phase_a, phase_b) in pair_phases(a, b) {
        let any = phase_a.or(phase_b).expect("a pair has at least one side");
        let _ = write!(
            body,
            r#"<section class="phase"><h2>{} — {}</h2><p>A {} · B {}</p>"#,
            esc(&any.plan),
            esc(&any.title),
            phase_a.map_or_else(|| "not run".to_string(), |p| status_badge(&p.status)),
            phase_b.map_or_else(|| "not run".to_string(), |p| status_badge(&p.status)),
        );
        criteria(&mut body, phase_a, phase_b);
        tasks(&mut body, phase_a, phase_b);
        body.push_str("</section>");
    }
    page(base, &format!("{} vs {}", a.id, b.id), None, &body)
}

fn facts(out: &mut String, a: &RunRecord, b: &RunRecord, base: &str) {
    out.push_str(
        r#"<table class="facts-side"><thead><tr><th></th><th>A</th><th>B</th></tr></thead><tbody>"#,
    );
    let link = |r: &RunRecord| {
        format!(
            r#"<a href="{}/runs/{}">{}</a>"#,
            esc(base),
            url_segment(&r.id),
            esc(&r.id)
        )
    };
    let rows: [(&str, String, String); 7] = [
        ("run", link(a), link(b)),
        (
            "label",
            esc(&a.label).to_string(),
            esc(&b.label).to_string(),
        ),
        ("status", status_badge(&a.status), status_badge(&b.status)),
        (
            "started",
            esc(&timestamp(&a.started_at)).to_string(),
            esc(&timestamp(&b.started_at)).to_string(),
        ),
        (
            "version",
            format!("{} ({})", esc(&a.version.git), esc(&a.version.build)),
            format!("{} ({})", esc(&b.version.git), esc(&b.version.build)),
        ),
        (
            "host",
            format!("{}, {} cpus", esc(&a.hardware.hostname), a.hardware.cpus),
            format!("{}, {} cpus", esc(&b.hardware.hostname), b.hardware.cpus),
        ),
        (
            "environment",
            esc(&a.environment.kind).to_string(),
            esc(&b.environment.kind).to_string(),
        ),
    ];
    for (name, va, vb) in rows {
        let _ = write!(out, "<tr><th>{name}</th><td>{va}</td><td>{vb}</td></tr>");
    }
    out.push_str("</tbody></table>");
}

/// Phases matched by plan id and occurrence (a run may repeat a plan), in A's order, then
/// the ones only B has.
fn pair_phases<'a>(
    a: &'a RunRecord,
    b: &'a RunRecord,
) -> Vec<(Option<&'a PhaseRecord>, Option<&'a PhaseRecord>)> {
    let mut unmatched_b: Vec<&PhaseRecord> = b.phases.iter().collect();
    let mut pairs = Vec::new();
    for phase in &a.phases {
        let partner = unmatched_b.iter().position(|p| p.plan == phase.plan);
        pairs.push((Some(phase), partner.map(|i| unmatched_b.remove(i))));
    }
    pairs.extend(unmatched_b.into_iter().map(|p| (None, Some(p))));
    pairs
}

/// Names in first-seen order across both sides.
fn union<'a>(a: impl Iterator<Item = &'a str>, b: impl Iterator<Item = &'a str>) -> Vec<&'a str> {
    let mut names: Vec<&str> = Vec::new();
    for name in a.chain(b) {
        if !names.contains(&name) {
            names.push(name);
        }
    }
    names
}

fn criteria(out: &mut String, a: Option<&PhaseRecord>, b: Option<&PhaseRecord>) {
    let ca = a.map(|p| p.criteria.as_slice()).unwrap_or_default();
    let cb = b.map(|p| p.criteria.as_slice()).unwrap_or_default();
    if ca.is_empty() && cb.is_empty() {
        return;
    }
    out.push_str(r#"<h3>Criteria</h3><table class="criteria"><thead><tr><th>criterion</th><th class="num">A value</th><th>A</th><th class="num">B value</th><th>B</th></tr></thead><tbody>"#);
    let cell = |list: &[CriterionResult], name: &str| match list.iter().find(|c| c.name == name) {
        Some(c) => format!(
            r#"<td class="num">{}</td><td>{}</td>"#,
            c.value.map_or_else(
                || "—".to_string(),
                |v| format!("{} {}", num(v), esc(&c.unit))
            ),
            verdict(c.passed, c.judged)
        ),
        None => r#"<td class="num">—</td><td class="muted">not in run</td>"#.to_string(),
    };
    for name in union(
        ca.iter().map(|c| c.name.as_str()),
        cb.iter().map(|c| c.name.as_str()),
    ) {
        let _ = write!(
            out,
            "<tr><td>{}</td>{}{}</tr>",
            esc(name),
            cell(ca, name),
            cell(cb, name)
        );
    }
    out.push_str("</tbody></table>");
}

/// B/A with a class saying whether B is better: lower latency, higher throughput. Changes
/// within 10 % are left uncoloured; run-to-run noise is about that large on shared hardware.
fn ratio(a: Option<f64>, b: Option<f64>, higher_is_better: bool) -> String {
    let (Some(a), Some(b)) = (a, b) else {
        return r#"<td class="num ratio">—</td>"#.to_string();
    };
    if a <= 0.0 || !a.is_finite() || !b.is_finite() {
        return r#"<td class="num ratio">—</td>"#.to_string();
    }
    let r = b / a;
    let class = match (r > 1.1, r < 0.9, higher_is_better) {
        (true, _, false) | (_, true, true) => "worse",
        (true, _, true) | (_, true, false) => "better",
        _ => "same",
    };
    format!(r#"<td class="num ratio {class}">{r:.2}×</td>"#)
}

fn tasks(out: &mut String, a: Option<&PhaseRecord>, b: Option<&PhaseRecord>) {
    let ta = a.map(|p| p.tasks.as_slice()).unwrap_or_default();
    let tb = b.map(|p| p.tasks.as_slice()).unwrap_or_default();
    if ta.is_empty() && tb.is_empty() {
        return;
    }
    out.push_str(r#"<h3>Tasks</h3><table class="compare"><thead><tr><th>task</th><th>category</th><th class="num">p50 A</th><th class="num">p50 B</th><th class="num">B/A</th><th class="num">p99 A</th><th class="num">p99 B</th><th class="num">B/A</th><th class="num">req/s A</th><th class="num">req/s B</th><th class="num">B/A</th></tr></thead><tbody>"#);
    for name in union(
        ta.iter().map(|t| t.name.as_str()),
        tb.iter().map(|t| t.name.as_str()),
    ) {
        let find = |list: &[TaskRecord]| list.iter().position(|t| t.name == name);
        let (x, y) = (find(ta).map(|i| &ta[i]), find(tb).map(|i| &tb[i]));
        let category = x.or(y).map_or("", |t| t.category.as_str());
        let p50 = |t: Option<&TaskRecord>| t.and_then(|t| t.latency_ms.p50);
        let p99 = |t: Option<&TaskRecord>| t.and_then(|t| t.latency_ms.p99);
        let thr = |t: Option<&TaskRecord>| t.map(|t| t.throughput);
        let _ = write!(
            out,
            r#"<tr><td>{}</td><td>{}</td><td class="num">{}</td><td class="num">{}</td>{}<td class="num">{}</td><td class="num">{}</td>{}<td class="num">{}</td><td class="num">{}</td>{}</tr>"#,
            esc(name),
            esc(category),
            opt(p50(x)),
            opt(p50(y)),
            ratio(p50(x), p50(y), false),
            opt(p99(x)),
            opt(p99(y)),
            ratio(p99(x), p99(y), false),
            opt(thr(x)),
            opt(thr(y)),
            ratio(thr(x), thr(y), true),
        );
    }
    out.push_str("</tbody></table>");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ratio_colours_by_direction() {
        assert!(ratio(Some(10.0), Some(20.0), false).contains("worse"));
        assert!(ratio(Some(10.0), Some(20.0), true).contains("better"));
        assert!(ratio(Some(10.0), Some(10.5), false).contains("same"));
        assert!(ratio(Some(10.0), Some(5.0), false).contains("0.50×"));
        assert!(ratio(None, Some(5.0), false).contains("—"));
        assert!(ratio(Some(0.0), Some(5.0), false).contains("—"));
    }
}
