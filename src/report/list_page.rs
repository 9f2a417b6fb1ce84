//! The list of runs (`GET /`): newest first, with a status badge each and a form that picks two
//! runs for `/compare`. Files that could not be read are listed below, not fatal.

use std::fmt::Write;
use std::path::Path;

use super::html::{Live, duration, esc, page, status_badge, timestamp, url_segment};
use super::store;
use crate::bench::record::RunRecord;

/// What the list says about where runs come from when there are none: `sv-appliance report`
/// and a node fill their directories differently.
pub const EMPTY_LOCAL: &str = "Each benchmark run writes one JSON file into this directory (<code>--runs-dir</code> or <code>SV_RUNS_DIR</code> chooses it).";
pub const EMPTY_NODE: &str = "A benchmark run stores its record here through <code>PUT /internal/runs/{id}</code> on the raft port (<code>report.runs_dir</code> or <code>SV_REPORT_RUNS_DIR</code> chooses the directory).";

/// The page, mounted at `base` (see `html::normalise_base`); `empty_hint` is one of the
/// `EMPTY_*` texts (HTML). `preselect_b`: the run a "compare…" link came from; it becomes B and
/// the next older run A.
pub fn render(
    runs: &[RunRecord],
    problems: &[String],
    dir: &Path,
    live: Option<Live>,
    preselect_b: Option<&str>,
    base: &str,
    empty_hint: &str,
) -> String {
    let mut body = String::new();
    let _ = write!(
        body,
        r#"<h1>Benchmark runs</h1><p class="muted">{} run(s) in <code>{}</code>{}.</p>"#,
        runs.len(),
        esc(&store::display_dir(dir).display().to_string()),
        if live.is_some() {
            "; some are still going, this list reloads when one changes"
        } else {
            ""
        }
    );
    if runs.is_empty() {
        let _ = write!(body, r#"<p class="empty">No runs yet. {empty_hint}</p>"#);
    } else {
        table(&mut body, runs, preselect_b, base);
    }
    if !problems.is_empty() {
        body.push_str(r#"<section class="problems"><h2>Files that could not be read</h2><ul>"#);
        for problem in problems {
            // `record::load` reports a bad file as a configuration error; here the prefix
            // would only mislead.
            let problem = problem
                .strip_prefix("invalid configuration: ")
                .unwrap_or(problem);
            let _ = write!(body, "<li>{}</li>", esc(problem));
        }
        body.push_str("</ul></section>");
    }
    page(base, "runs", live, &body)
}

fn table(out: &mut String, runs: &[RunRecord], preselect_b: Option<&str>, base: &str) {
    let base = esc(base);
    let b = preselect_b
        .and_then(|id| runs.iter().position(|r| r.id == id))
        .unwrap_or(0);
    // A defaults to the run just older than B (the previous run of the same thing, usually).
    let a = if b + 1 < runs.len() {
        b + 1
    } else {
        b.saturating_sub(1)
    };
    let comparable = runs.len() >= 2;
    if comparable {
        let _ = write!(out, r#"<form method="get" action="{base}/compare">"#);
    }
    let _ = write!(
        out,
        r#"<table class="runs"><thead><tr>{}<th>run</th><th>label</th><th>scale</th><th>status</th><th>started</th><th class="num">duration</th><th>version</th><th>build</th><th class="num">criteria passed</th></tr></thead><tbody>"#,
        if comparable {
            "<th>A</th><th>B</th>"
        } else {
            ""
        }
    );
    for (i, run) in runs.iter().enumerate() {
        let summary = store::RunSummary::of(run);
        let id = esc(&run.id);
        out.push_str("<tr>");
        if comparable {
            for (name, picked) in [("a", i == a), ("b", i == b)] {
                let _ = write!(
                    out,
                    r#"<td><input type="radio" name="{name}" value="{id}" aria-label="compare {name}: {id}"{}></td>"#,
                    if picked { " checked" } else { "" }
                );
            }
        }
        let took = match store::elapsed(run) {
            Some(secs) if run.finished_at.is_none() => format!("{} so far", duration(secs)),
            Some(secs) => duration(secs),
            None => "—".to_string(),
        };
        let build = if run.version.build == "debug" {
            r#"<span class="badge st-warning" title="debug timings are not benchmarks">debug</span>"#
                .to_string()
        } else {
            esc(&run.version.build).to_string()
        };
        let _ = write!(
            out,
            r#"<td><a href="{base}/runs/{}">{id}</a></td><td>{}</td><td>{}</td><td>{}{}</td><td>{}</td><td class="num">{took}</td><td>{}</td><td>{build}</td><td class="num">{}/{}</td></tr>"#,
            url_segment(&run.id),
            esc(&run.label),
            esc(&run.scale),
            status_badge(&run.status),
            run.error.as_deref().map_or_else(String::new, |e| format!(
                r#" <span class="muted">{}</span>"#,
                esc(e)
            )),
            esc(&timestamp(&run.started_at)),
            esc(&run.version.git),
            summary.criteria_passed,
            summary.criteria_total,
        );
    }
    out.push_str("</tbody></table>");
    if comparable {
        out.push_str(r#"<p><button type="submit">Compare A with B</button></p></form>"#);
    }
}
