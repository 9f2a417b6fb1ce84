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
            let mut lines = wrap(&c.name, 62).into_iter();
            let first = lines.next().unwrap_or_default();
            let _ = writeln!(
                out,
                "{:<6} {verdict:<9} {first:<62} {value:>14} {:>12}",
                "",
                format!("{} {} {}", c.bound, c.threshold, c.unit)
            );
            for more in lines {
                let _ = writeln!(out, "{:<16} {more}", "");
            }
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

/// `text` in lines of at most `width` characters, broken between words (a longer word is
/// cut): criterion names are the plan's wording and should be read whole.
fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        let fits = line.chars().count() + 1 + word.chars().count() <= width;
        if !line.is_empty() && !fits {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
        while line.chars().count() > width {
            let head: String = line.chars().take(width).collect();
            line = line.chars().skip(width).collect();
            lines.push(head);
        }
    }
    if !line.is_empty() || lines.is_empty() {
        lines.push(line);
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::wrap;

    #[test]
    fn long_criterion_names_wrap_between_words_and_lose_nothing() {
        let name = "No degradation in existing dataset queries: text p50 within 1 ms of a node holding only them";
        let lines = wrap(name, 62);
        assert!(
            lines.len() == 2 && lines.iter().all(|l| l.chars().count() <= 62),
            "{lines:?}"
        );
        assert_eq!(lines.join(" "), name);
        assert_eq!(wrap("short", 62), ["short"]);
        assert_eq!(wrap("abcdefgh", 3), ["abc", "def", "gh"]);
    }
}
