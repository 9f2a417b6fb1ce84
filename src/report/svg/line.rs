//! Line charts: one polyline per series over a shared time axis, with fault markers.

use std::fmt::Write;

use super::{
    LEFT, LEGEND_ITEM_WIDTH, LEGEND_ROW, PLOT_HEIGHT, RIGHT, Scale, TOP, WIDTH, X_AXIS_HEIGHT,
    axis, axis_ticks, colour, esc, finite, legend, nice_ticks, no_data, open_svg, tick_label,
};

/// One line of a line chart. A `None` value (a node that did not answer, a metric it does not
/// report) breaks the line instead of drawing a misleading zero.
#[derive(Debug, Clone)]
pub struct Series {
    pub name: String,
    pub points: Vec<(f64, Option<f64>)>,
}

/// A vertical line across a line chart at an x value (a fault injection, say).
#[derive(Debug, Clone)]
pub struct Marker {
    pub x: f64,
    pub label: String,
}

#[derive(Debug, Clone, Default)]
pub struct LineChart<'a> {
    pub title: &'a str,
    pub x_caption: &'a str,
    pub y_unit: &'a str,
    pub series: &'a [Series],
    pub markers: &'a [Marker],
    /// The x extent to draw; the data's own extent when `None`.
    pub x_range: Option<(f64, f64)>,
    /// Fixed top of the y axis (1 for ratios); otherwise a round number above the data.
    pub y_max: Option<f64>,
}

/// A line chart with one polyline per series, or a "no data" placeholder when no series has a
/// finite value.
pub fn line_chart(chart: &LineChart) -> String {
    let values = chart
        .series
        .iter()
        .flat_map(|s| s.points.iter())
        .filter_map(|(x, y)| finite(*y).filter(|_| x.is_finite()).map(|y| (*x, y)));
    let (mut x_lo, mut x_hi, mut y_lo, mut y_hi) = (f64::MAX, f64::MIN, 0.0f64, f64::MIN);
    for (x, y) in values {
        x_lo = x_lo.min(x);
        x_hi = x_hi.max(x);
        y_lo = y_lo.min(y);
        y_hi = y_hi.max(y);
    }
    if x_lo > x_hi {
        return no_data(chart.title, "line-chart");
    }
    if let Some((lo, hi)) = chart.x_range {
        (x_lo, x_hi) = (lo, hi.max(lo));
    }
    let (y_bottom, y_top, y_step) = axis(y_lo, chart.y_max.unwrap_or(y_hi).max(y_hi), 4);
    let x = Scale {
        lo: x_lo,
        hi: x_hi,
        from: LEFT,
        to: WIDTH - RIGHT,
    };
    let y = Scale {
        lo: y_bottom,
        hi: y_top,
        from: TOP + PLOT_HEIGHT,
        to: TOP,
    };
    let names: Vec<&str> = chart.series.iter().map(|s| s.name.as_str()).collect();
    let per_row = (((WIDTH - LEFT - RIGHT) / LEGEND_ITEM_WIDTH).floor() as usize).max(1);
    let legend_height = names.len().div_ceil(per_row) as f64 * LEGEND_ROW;
    let height = TOP + PLOT_HEIGHT + X_AXIS_HEIGHT + legend_height + 6.0;

    let mut out = String::new();
    open_svg(&mut out, height, chart.title, chart.y_unit, "line-chart");
    for t in axis_ticks(y_bottom, y_top, y_step) {
        let py = y.at(t);
        let _ = write!(
            out,
            r#"<line class="grid" x1="{LEFT}" y1="{py:.1}" x2="{:.1}" y2="{py:.1}"/><text class="tick" x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"#,
            WIDTH - RIGHT,
            LEFT - 6.0,
            py + 4.0,
            tick_label(t, y_step)
        );
    }
    let (x_ticks, x_step) = nice_ticks(x_lo, x_hi, 6);
    for t in x_ticks.iter().filter(|t| **t >= x_lo && **t <= x_hi) {
        let px = x.at(*t);
        let _ = write!(
            out,
            r#"<line class="axis" x1="{px:.1}" y1="{:.1}" x2="{px:.1}" y2="{:.1}"/><text class="tick" x="{px:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
            TOP + PLOT_HEIGHT,
            TOP + PLOT_HEIGHT + 4.0,
            TOP + PLOT_HEIGHT + 16.0,
            tick_label(*t, x_step)
        );
    }
    let _ = write!(
        out,
        r#"<line class="axis" x1="{LEFT}" y1="{:.1}" x2="{:.1}" y2="{:.1}"/><text class="caption" x="{:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
        TOP + PLOT_HEIGHT,
        WIDTH - RIGHT,
        TOP + PLOT_HEIGHT,
        (LEFT + WIDTH - RIGHT) / 2.0,
        TOP + PLOT_HEIGHT + 32.0,
        esc(chart.x_caption),
    );
    for marker in chart.markers.iter().filter(|m| m.x >= x_lo && m.x <= x_hi) {
        let px = x.at(marker.x);
        let _ = write!(
            out,
            r#"<line class="marker" x1="{px:.1}" y1="{TOP}" x2="{px:.1}" y2="{:.1}"><title>{}</title></line>"#,
            TOP + PLOT_HEIGHT,
            esc(&marker.label)
        );
    }
    for (i, series) in chart.series.iter().enumerate() {
        let _ = write!(
            out,
            r#"<g class="series"><title>{}</title>"#,
            esc(&series.name)
        );
        for segment in segments(&series.points) {
            let inside: Vec<(f64, f64)> = segment
                .into_iter()
                .filter(|(px, _)| *px >= x_lo && *px <= x_hi)
                .collect();
            match inside.as_slice() {
                [] => {}
                [(px, py)] => {
                    let _ = write!(
                        out,
                        r#"<circle cx="{:.1}" cy="{:.1}" r="2.5" fill="{}"/>"#,
                        x.at(*px),
                        y.at(*py),
                        colour(i)
                    );
                }
                points => {
                    let _ = write!(
                        out,
                        r#"<polyline fill="none" stroke="{}" points=""#,
                        colour(i)
                    );
                    for (n, (px, py)) in points.iter().enumerate() {
                        let sep = if n == 0 { "" } else { " " };
                        let _ = write!(out, "{sep}{:.1},{:.1}", x.at(*px), y.at(*py));
                    }
                    out.push_str(r#""/>"#);
                }
            }
        }
        out.push_str("</g>");
    }
    legend(&mut out, &names, TOP + PLOT_HEIGHT + X_AXIS_HEIGHT + 12.0);
    out.push_str("</svg>");
    out
}

/// Splits points into runs of consecutive finite values.
fn segments(points: &[(f64, Option<f64>)]) -> Vec<Vec<(f64, f64)>> {
    let mut all = Vec::new();
    let mut current = Vec::new();
    for (x, y) in points {
        match finite(*y).filter(|_| x.is_finite()) {
            Some(y) => current.push((*x, y)),
            None if !current.is_empty() => all.push(std::mem::take(&mut current)),
            None => {}
        }
    }
    if !current.is_empty() {
        all.push(current);
    }
    all
}
