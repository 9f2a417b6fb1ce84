//! Horizontal grouped bar charts (one row per task, one bar per percentile).

use std::fmt::Write;

use super::{
    LEFT, LEGEND_ITEM_WIDTH, LEGEND_ROW, RIGHT, Scale, TOP, WIDTH, X_AXIS_HEIGHT, axis, axis_ticks,
    colour, esc, finite, legend, no_data, open_svg, tick_label, trim_float, truncate,
};

/// One row of a bar chart: a label and one value per series (`None`: not measured).
#[derive(Debug, Clone)]
pub struct BarGroup {
    pub label: String,
    pub values: Vec<Option<f64>>,
}

/// Horizontal grouped bars (one row per group, one bar per series) with the value written at
/// the end of each bar, so rows with long task names stay readable and small bars stay legible.
pub fn bar_chart(title: &str, unit: &str, series_names: &[&str], groups: &[BarGroup]) -> String {
    let max = groups
        .iter()
        .flat_map(|g| g.values.iter())
        .filter_map(|v| finite(*v))
        .fold(f64::MIN, f64::max);
    if groups.is_empty() || max == f64::MIN {
        return no_data(title, "bar-chart");
    }
    const LABEL_WIDTH: f64 = 190.0;
    const BAR: f64 = 11.0;
    const GAP: f64 = 8.0;
    let bars = series_names.len().max(1);
    let row = bars as f64 * BAR + GAP;
    let (_, top_value, step) = axis(0.0, max.max(0.0), 5);
    // Leave room right of the longest bar for its value label.
    let x = Scale {
        lo: 0.0,
        hi: top_value,
        from: LEFT + LABEL_WIDTH,
        to: WIDTH - RIGHT - 60.0,
    };
    let plot_bottom = TOP + groups.len() as f64 * row;
    let legend_y = plot_bottom + X_AXIS_HEIGHT + 6.0;
    let per_row = (((WIDTH - LEFT - RIGHT) / LEGEND_ITEM_WIDTH).floor() as usize).max(1);
    let height = legend_y + series_names.len().div_ceil(per_row) as f64 * LEGEND_ROW;

    let mut out = String::new();
    open_svg(&mut out, height, title, unit, "bar-chart");
    for t in axis_ticks(0.0, top_value, step) {
        let px = x.at(t);
        let _ = write!(
            out,
            r#"<line class="grid" x1="{px:.1}" y1="{TOP}" x2="{px:.1}" y2="{plot_bottom:.1}"/><text class="tick" x="{px:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
            plot_bottom + 14.0,
            tick_label(t, step)
        );
    }
    for (g, group) in groups.iter().enumerate() {
        let row_top = TOP + g as f64 * row + GAP / 2.0;
        let _ = write!(
            out,
            r#"<text class="label" x="{:.1}" y="{:.1}" text-anchor="end"><title>{}</title>{}</text>"#,
            x.from - 6.0,
            row_top + bars as f64 * BAR / 2.0 + 4.0,
            esc(&group.label),
            esc(&truncate(&group.label, 30)),
        );
        for (s, value) in group.values.iter().enumerate().take(bars) {
            let bar_y = row_top + s as f64 * BAR;
            let series = series_names.get(s).copied().unwrap_or("");
            let Some(v) = finite(*value) else {
                let _ = write!(
                    out,
                    r#"<text class="value" x="{:.1}" y="{:.1}">—</text>"#,
                    x.from + 2.0,
                    bar_y + BAR - 2.0
                );
                continue;
            };
            let end = x.at(v.max(0.0));
            let _ = write!(
                out,
                r#"<rect x="{:.1}" y="{bar_y:.1}" width="{:.1}" height="{:.1}" fill="{}"><title>{} {}: {} {}</title></rect><text class="value" x="{:.1}" y="{:.1}">{}</text>"#,
                x.from,
                (end - x.from).max(0.5),
                BAR - 1.0,
                colour(s),
                esc(&group.label),
                esc(series),
                trim_float(v, 3),
                esc(unit),
                end + 4.0,
                bar_y + BAR - 2.0,
                trim_float(v, if v < 10.0 { 2 } else { 1 }),
            );
        }
    }
    legend(&mut out, series_names, legend_y);
    out.push_str("</svg>");
    out
}
