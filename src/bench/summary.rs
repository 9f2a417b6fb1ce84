//! The terminal summary printed at the end of a run: one block per phase with its verdict
//! and every criterion's value against its threshold.

use std::fmt::Write;

use super::record::RunRecord;

pub fn render(run: &RunRecord) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "run {} — {} ({} scale, {} build, {})",
        run.id,
        run.status.to_uppercase(),
        run.scale,
        run.version.build,
        run.environment.kind
    );
    if let Some(e) = &run.error {
        let _ = writeln!(out, "error: {e}");
    }
    let _ = writeln!(
        out,
        "{:<6} {:<9} {:<62} {:>14} {:>12}",
        "phase", "verdict", "criterion", "measured", "threshold"
    );
    for phase in &run.phases {
        let _ = writeln!(out, "{:<6} {:<9}", phase.plan, phase.status.to_uppercase());
        for note in run.phase_notes(&phase.plan) {
            let _ = writeln!(out, "{:<16} note: {note}", "");
        }
        if let Some(e) = &phase.error {
            let _ = writeln!(out, "{:<16} error: {e}", "");
        }
        for c in &phase.criteria {
            let verdict = match (c.judged, c.passed) {
                (false, _) => "n/j",
                (true, true) => "pass",
                (true, false) => "FAIL",
            };
            let value = c.value.map_or("—".into(), |v| format!("{v:.2} {}", c.unit));
            let name: String = c.name.chars().take(62).collect();
            let _ = writeln!(
                out,
                "{:<6} {verdict:<9} {name:<62} {value:>14} {:>12}",
                "",
                format!("{} {} {}", c.bound, c.threshold, c.unit)
            );
        }
    }
    let not_judged = run
        .phases
        .iter()
        .flat_map(|p| &p.criteria)
        .filter(|c| !c.judged)
        .count();
    if not_judged > 0 {
        let _ = writeln!(
            out,
            "n/j = not judged ({not_judged}): not built, not measured, or not comparable on this setup; the report says why"
        );
    }
    out
}
