//! The event timeline: faults and recoveries as marks on a time axis, labels in lanes.

use std::fmt::Write;

use super::{
    LEFT, RIGHT, Scale, TOP, WIDTH, X_AXIS_HEIGHT, esc, nice_ticks, no_data, open_svg, tick_label,
    trim_float, truncate,
};

/// A point in time on a timeline.
#[derive(Debug, Clone)]
pub struct TimelineEvent {
    pub t: f64,
    pub kind: String,
    pub detail: String,
}

/// A colour per event kind: faults red, recoveries green, elections blue, anything else grey.
fn event_colour(kind: &str) -> &'static str {
    let kind = kind.to_ascii_lowercase();
    if ["kill", "crash", "error", "fail", "partition"]
        .iter()
        .any(|k| kind.contains(k))
    {
        "#c53030"
    } else if ["caught up", "recover", "ready", "healed"]
        .iter()
        .any(|k| kind.contains(k))
    {
        "#2f855a"
    } else if kind.contains("leader") || kind.contains("elect") {
        "#2b6cb0"
    } else if kind.contains("restart") || kind.contains("start") {
        "#dd6b20"
    } else {
        "#718096"
    }
}

/// Events on a time axis from `start` to `end` (seconds), labels stacked in lanes so that
/// close events do not overwrite each other.
pub fn timeline(title: &str, start: f64, end: f64, events: &[TimelineEvent]) -> String {
    let events: Vec<&TimelineEvent> = events.iter().filter(|e| e.t.is_finite()).collect();
    if events.is_empty() {
        return no_data(title, "timeline");
    }
    let lo = events.iter().map(|e| e.t).fold(start, f64::min);
    let hi = events.iter().map(|e| e.t).fold(end, f64::max);
    let x = Scale {
        lo,
        hi,
        from: LEFT,
        to: WIDTH - RIGHT - 90.0,
    };
    const LANE: f64 = 16.0;
    // Greedy lanes: an event goes in the first lane whose last label ends left of it.
    let mut lane_ends: Vec<f64> = Vec::new();
    let mut placed = Vec::new();
    for event in &events {
        let px = x.at(event.t);
        let label_width = truncate(&event.kind, 24).chars().count() as f64 * 6.5 + 10.0;
        let lane = match lane_ends.iter().position(|end| *end < px) {
            Some(lane) => lane,
            None => {
                lane_ends.push(f64::MIN);
                lane_ends.len() - 1
            }
        };
        lane_ends[lane] = px + label_width;
        placed.push((event, px, lane));
    }
    let axis_y = TOP + lane_ends.len() as f64 * LANE + 8.0;
    let height = axis_y + X_AXIS_HEIGHT;
    let mut out = String::new();
    open_svg(&mut out, height, title, "", "timeline");
    let _ = write!(
        out,
        r#"<line class="axis" x1="{LEFT}" y1="{axis_y:.1}" x2="{:.1}" y2="{axis_y:.1}"/>"#,
        x.to
    );
    let (ticks, step) = nice_ticks(lo, hi, 6);
    for t in ticks.iter().filter(|t| **t >= lo && **t <= hi) {
        let px = x.at(*t);
        let _ = write!(
            out,
            r#"<line class="axis" x1="{px:.1}" y1="{axis_y:.1}" x2="{px:.1}" y2="{:.1}"/><text class="tick" x="{px:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
            axis_y + 4.0,
            axis_y + 16.0,
            tick_label(*t, step)
        );
    }
    let _ = write!(
        out,
        r#"<text class="caption" x="{:.1}" y="{:.1}" text-anchor="middle">seconds since the run started</text>"#,
        (x.from + x.to) / 2.0,
        axis_y + 32.0
    );
    for (event, px, lane) in placed {
        let label_y = TOP + lane as f64 * LANE + 10.0;
        let fill = event_colour(&event.kind);
        let _ = write!(
            out,
            r#"<g class="event"><title>{} s: {} — {}</title><line class="event-line" x1="{px:.1}" y1="{:.1}" x2="{px:.1}" y2="{axis_y:.1}" stroke="{fill}"/><circle cx="{px:.1}" cy="{axis_y:.1}" r="4" fill="{fill}"/><text x="{:.1}" y="{label_y:.1}">{}</text></g>"#,
            trim_float(event.t, 2),
            esc(&event.kind),
            esc(&event.detail),
            label_y + 3.0,
            px + 3.0,
            esc(&truncate(&event.kind, 24)),
        );
    }
    out.push_str("</svg>");
    out
}
