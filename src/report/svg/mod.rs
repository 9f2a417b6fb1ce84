//! SVG charts drawn on the server: line charts (several series, axes, legend), horizontal
//! grouped bar charts and an event timeline, each a self-contained `<svg>` string.
//!
//! Drawing here rather than in the browser keeps the page free of chart libraries, makes a
//! saved page (or `--dump-dom`) show the same charts, and lets unit tests check geometry.
//! Hover text uses SVG `<title>` elements, which browsers show natively.

use std::fmt::Write;

use super::html::esc;

mod bars;
mod line;
mod timeline;

pub use bars::{BarGroup, bar_chart};
pub use line::{LineChart, Marker, Series, line_chart};
pub use timeline::{TimelineEvent, timeline};

/// Series colours, chosen to stay distinguishable for the common colour-vision deficiencies.
pub const PALETTE: [&str; 8] = [
    "#2b6cb0", "#dd6b20", "#2f855a", "#c53030", "#6b46c1", "#b7791f", "#0987a0", "#718096",
];

const WIDTH: f64 = 720.0;
const LEFT: f64 = 64.0;
const RIGHT: f64 = 20.0;
const TOP: f64 = 30.0;
const PLOT_HEIGHT: f64 = 180.0;
/// Room under the plot for the x tick labels and the axis caption.
const X_AXIS_HEIGHT: f64 = 38.0;
const LEGEND_ROW: f64 = 18.0;
const LEGEND_ITEM_WIDTH: f64 = 160.0;

pub fn colour(index: usize) -> &'static str {
    PALETTE[index % PALETTE.len()]
}

/// Linear map from a data interval onto a pixel interval.
#[derive(Debug, Clone, Copy)]
struct Scale {
    lo: f64,
    hi: f64,
    from: f64,
    to: f64,
}

impl Scale {
    fn at(&self, v: f64) -> f64 {
        let span = self.hi - self.lo;
        let fraction = if span > 0.0 {
            (v - self.lo) / span
        } else {
            0.5
        };
        self.from + fraction.clamp(0.0, 1.0) * (self.to - self.from)
    }
}

/// About `target` round tick values (steps of 1, 2 or 5 × 10ⁿ) covering `lo..=hi`, and the step.
pub fn nice_ticks(lo: f64, hi: f64, target: usize) -> (Vec<f64>, f64) {
    let (lo, hi) = if hi > lo {
        (lo, hi)
    } else {
        (lo - 0.5, lo + 0.5)
    };
    let rough = (hi - lo) / target.max(1) as f64;
    let magnitude = 10f64.powf(rough.log10().floor());
    // Round to the nearest of 1, 2, 5, 10 on a log scale (the cut-offs are the geometric
    // means), so the tick count stays near the target instead of always rounding up.
    let error = rough / magnitude;
    let step = magnitude
        * if error >= 50f64.sqrt() {
            10.0
        } else if error >= 10f64.sqrt() {
            5.0
        } else if error >= 2f64.sqrt() {
            2.0
        } else {
            1.0
        };
    let first = (lo / step).ceil() as i64;
    let last = (hi / step + 1e-9).floor() as i64;
    let ticks = (first..=last).map(|i| i as f64 * step).collect();
    (ticks, step)
}

/// An axis covering `lo..=hi` that starts and ends on round ticks: `(bottom, top, step)`.
pub fn axis(lo: f64, hi: f64, target: usize) -> (f64, f64, f64) {
    // A flat series (all zero, say) still gets a unit-high axis rather than a sliver.
    let hi = if hi > lo { hi } else { lo + 1.0 };
    let (_, step) = nice_ticks(lo, hi, target);
    let bottom = (lo / step).floor() * step;
    let top = ((hi / step).ceil() * step).max(bottom + step);
    (bottom, top, step)
}

/// The ticks of an axis from [`axis`].
fn axis_ticks(bottom: f64, top: f64, step: f64) -> impl Iterator<Item = f64> {
    let n = ((top - bottom) / step).round() as i64;
    (0..=n).map(move |i| bottom + i as f64 * step)
}

/// A tick label: as many decimals as the step needs, thousands as `k` and millions as `M`.
pub fn tick_label(v: f64, step: f64) -> String {
    let abs = v.abs();
    if abs >= 1e6 && step >= 1e5 {
        return format!("{}M", trim_float(v / 1e6, 1));
    }
    if abs >= 1e4 && step >= 1e3 {
        return format!("{}k", trim_float(v / 1e3, 1));
    }
    let decimals = (-step.log10().floor()).clamp(0.0, 4.0) as usize;
    format!("{v:.decimals$}")
}

fn trim_float(v: f64, decimals: usize) -> String {
    let s = format!("{v:.decimals$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

/// The `<svg>` element and the title line; `unit` (if any) follows the title in grey.
fn open_svg(out: &mut String, height: f64, title: &str, unit: &str, class: &str) {
    let unit = if unit.is_empty() {
        String::new()
    } else {
        format!(r#" <tspan class="unit">({})</tspan>"#, esc(unit))
    };
    let _ = write!(
        out,
        r#"<svg class="chart {class}" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {height:.0}" role="img" aria-label="{t}"><text class="title" x="{LEFT}" y="18">{t}{unit}</text>"#,
        t = esc(title),
    );
}

fn no_data(title: &str, class: &str) -> String {
    let mut out = String::new();
    let height = TOP + 60.0;
    open_svg(&mut out, height, title, "", class);
    let _ = write!(
        out,
        r#"<text class="no-data" x="{:.1}" y="{:.1}" text-anchor="middle">no data</text></svg>"#,
        WIDTH / 2.0,
        TOP + 30.0
    );
    out
}

/// Legend rows below the plot, starting at `y`; returns the height used.
fn legend(out: &mut String, names: &[&str], y: f64) -> f64 {
    let per_row = (((WIDTH - LEFT - RIGHT) / LEGEND_ITEM_WIDTH).floor() as usize).max(1);
    for (i, name) in names.iter().enumerate() {
        let x = LEFT + (i % per_row) as f64 * LEGEND_ITEM_WIDTH;
        let row_y = y + (i / per_row) as f64 * LEGEND_ROW;
        let _ = write!(
            out,
            r#"<g class="legend-item"><rect x="{x:.1}" y="{:.1}" width="12" height="12" fill="{}"/><text x="{:.1}" y="{:.1}">{}</text></g>"#,
            row_y - 10.0,
            colour(i),
            x + 16.0,
            row_y,
            esc(&truncate(name, 22)),
        );
    }
    names.len().div_ceil(per_row) as f64 * LEGEND_ROW
}

/// Shortens a label to `max` characters with an ellipsis (the full text goes in a `<title>`).
pub fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let mut short: String = text.chars().take(max.saturating_sub(1)).collect();
    short.push('…');
    short
}

fn finite(v: Option<f64>) -> Option<f64> {
    v.filter(|v| v.is_finite())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every number in the drawing attributes (`points`, `x`, `y`, `cx`, `width` …).
    fn coordinates(svg: &str) -> Vec<(String, f64)> {
        let mut found = Vec::new();
        for attr in [
            "points", "x", "y", "x1", "x2", "y1", "y2", "cx", "cy", "width", "height",
        ] {
            let needle = format!(" {attr}=\"");
            for (start, _) in svg.match_indices(&needle) {
                let rest = &svg[start + needle.len()..];
                let value = &rest[..rest.find('"').unwrap()];
                for number in value.split([' ', ',']).filter(|s| !s.is_empty()) {
                    found.push((attr.to_string(), number.parse::<f64>().unwrap()));
                }
            }
        }
        found
    }

    fn view_box(svg: &str) -> (f64, f64) {
        let start = svg.find("viewBox=\"0 0 ").unwrap() + "viewBox=\"0 0 ".len();
        let mut parts = svg[start..].split(['"', ' ']);
        let w = parts.next().unwrap().parse().unwrap();
        let h = parts.next().unwrap().parse().unwrap();
        (w, h)
    }

    fn assert_inside(svg: &str) {
        let (w, h) = view_box(svg);
        let coords = coordinates(svg);
        assert!(!coords.is_empty());
        for (attr, v) in coords {
            let limit = if attr.starts_with('y') || attr == "cy" || attr == "height" {
                h
            } else {
                w
            };
            assert!(
                (0.0..=limit).contains(&v),
                "{attr}={v} outside 0..{limit} in {svg}"
            );
        }
    }

    fn series(name: &str, points: &[(f64, Option<f64>)]) -> Series {
        Series {
            name: name.to_string(),
            points: points.to_vec(),
        }
    }

    #[test]
    fn empty_inputs_render_a_no_data_placeholder() {
        let empty = line_chart(&LineChart {
            title: "CPU",
            ..Default::default()
        });
        assert!(empty.contains("no data") && empty.starts_with("<svg"));
        let all_none = [series("n1", &[(0.0, None), (1.0, Some(f64::NAN))])];
        let chart = line_chart(&LineChart {
            title: "CPU",
            series: &all_none,
            ..Default::default()
        });
        assert!(chart.contains("no data"));
        assert!(bar_chart("lat", "ms", &["p50"], &[]).contains("no data"));
        assert!(timeline("events", 0.0, 10.0, &[]).contains("no data"));
    }

    #[test]
    fn line_chart_values_land_inside_the_view_box() {
        let data = [
            series(
                "node-1",
                &[(0.0, Some(10.0)), (1.0, Some(95.5)), (2.0, Some(40.0))],
            ),
            series("node-2", &[(0.0, Some(0.0)), (1.0, None), (2.0, Some(1e6))]),
            series("node-3", &[(5.0, Some(3.0))]),
        ];
        let markers = [Marker {
            x: 1.5,
            label: "kill".into(),
        }];
        let svg = line_chart(&LineChart {
            title: "RSS",
            x_caption: "s",
            y_unit: "MiB",
            series: &data,
            markers: &markers,
            ..Default::default()
        });
        assert_inside(&svg);
        // node-2's gap splits its line: two isolated points, no polyline across the gap.
        assert_eq!(svg.matches("<polyline").count(), 1);
        assert_eq!(svg.matches("<circle").count(), 3);
        assert!(svg.contains("class=\"marker\""));
        assert_eq!(svg.matches("class=\"legend-item\"").count(), 3);
    }

    #[test]
    fn bar_chart_and_timeline_stay_inside_the_view_box() {
        let groups = [
            BarGroup {
                label: "simple text".into(),
                values: vec![Some(1.5), Some(12.0)],
            },
            BarGroup {
                label: "a task with a very long name that will be truncated".into(),
                values: vec![Some(400.0), None],
            },
        ];
        let bars = bar_chart("latency", "ms", &["p50", "p99"], &groups);
        assert_inside(&bars);
        assert_eq!(
            bars.matches("<rect x=").count(),
            3 + 2,
            "3 bars, 2 legend swatches"
        );
        let events: Vec<TimelineEvent> = (0..12)
            .map(|i| TimelineEvent {
                t: 100.0 + f64::from(i),
                kind: if i % 2 == 0 { "kill" } else { "leader elected" }.into(),
                detail: format!("node {i}"),
            })
            .collect();
        let line = timeline("failover", 90.0, 130.0, &events);
        assert_inside(&line);
        assert_eq!(line.matches("class=\"event\"").count(), 12);
    }

    #[test]
    fn text_is_escaped() {
        let data = [series("<node&1>", &[(0.0, Some(1.0)), (1.0, Some(2.0))])];
        let svg = line_chart(&LineChart {
            title: "a \"quoted\" <title>",
            series: &data,
            ..Default::default()
        });
        assert!(!svg.contains("<node&1>") && svg.contains("&lt;node&amp;1&gt;"));
        assert!(svg.contains("a &quot;quoted&quot; &lt;title&gt;"));
        let events = [TimelineEvent {
            t: 1.0,
            kind: "<script>".into(),
            detail: "x & y".into(),
        }];
        let line = timeline("t", 0.0, 2.0, &events);
        assert!(!line.contains("<script>") && line.contains("x &amp; y"));
    }

    #[test]
    fn ticks_are_round_and_cover_the_range() {
        let (ticks, step) = nice_ticks(0.0, 97.0, 4);
        assert_eq!(step, 20.0);
        assert_eq!(ticks, vec![0.0, 20.0, 40.0, 60.0, 80.0]);
        let (ticks, step) = nice_ticks(0.0, 0.93, 4);
        assert_eq!(step, 0.2);
        assert_eq!(ticks.len(), 5);
        assert_eq!(tick_label(0.4, 0.2), "0.4");
        assert_eq!(tick_label(20000.0, 5000.0), "20k");
        assert_eq!(tick_label(2_500_000.0, 500_000.0), "2.5M");
        // A flat series still gets an axis.
        let (ticks, _) = nice_ticks(5.0, 5.0, 4);
        assert!(!ticks.is_empty());
    }
}
