//! Drawing the described charts with plotters: a bitmap, the embedded font, ticks at the
//! values measured, and a legend in a column of its own so it hides no line.

use std::ops::Range;
use std::path::Path;
use std::sync::OnceLock;

use plotters::coord::Shift;
use plotters::coord::ranged1d::{DefaultFormatting, KeyPointHint, ValueFormatter};
use plotters::coord::types::RangedCoordf64;
use plotters::element::DashedPathElement;
use plotters::prelude::*;
use plotters::style::register_font;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::{Bars, Chart, Measure, axis_name};
use crate::report::analysis::Variable;
use crate::report::format;

/// DejaVu Sans (see `assets/LICENSE-DejaVu.txt`), registered as plotters' `sans-serif`.
static FONT: &[u8] = include_bytes!("../../assets/DejaVuSans.ttf");
const FAMILY: &str = "sans-serif";
const SIZE: (u32, u32) = (1000, 600);
/// Pixels on the right for the legend.
const LEGEND_WIDTH: u32 = 220;

/// Registers the embedded font with plotters, once per process.
pub(super) fn font() -> anyhow::Result<()> {
    static REGISTERED: OnceLock<Result<(), String>> = OnceLock::new();
    REGISTERED
        .get_or_init(|| {
            register_font(FAMILY, FontStyle::Normal, FONT)
                .map_err(|_| "the embedded DejaVu Sans is not a font plotters can read".into())
        })
        .clone()
        .map_err(anyhow::Error::msg)
}

const COLORS: [RGBColor; 6] = [
    RGBColor(31, 119, 180),
    RGBColor(214, 39, 40),
    RGBColor(44, 160, 44),
    RGBColor(255, 127, 14),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
];

fn color(i: usize) -> RGBColor {
    COLORS.get(i).copied().unwrap_or_else(|| {
        let c = Palette99::pick(i).to_rgba();
        RGBColor(c.0, c.1, c.2)
    })
}

fn x_label(variable: Variable, v: f64) -> String {
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    variable.value(v.round().max(0.0) as usize)
}

/// A y tick: the same number of decimals along a linear axis, chosen from its top (`0`,
/// `5`, `10` rather than `0.000`, `5.00`, `10.0`); significant digits along a log axis.
fn tick(v: f64, top: f64, log: bool) -> String {
    if !log && top >= 20.0 {
        return format::count(v);
    }
    let text = if log {
        format::ms(v)
    } else {
        let decimals = match top {
            t if t >= 2.0 => 1,
            t if t >= 0.2 => 2,
            _ => 3,
        };
        format!("{v:.decimals$}")
    };
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_owned()
    } else {
        text
    }
}

/// An axis's extent, and whether it is logarithmic.
struct Extent {
    range: Range<f64>,
    log: bool,
}

/// The x axis: ticks at the values measured, with some room on either side; logarithmic
/// for sizes and client counts (when all are positive).
fn x_extent(chart: &Chart) -> (Extent, Vec<f64>) {
    let mut ticks: Vec<f64> = chart
        .series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.0))
        .collect();
    ticks.sort_by(f64::total_cmp);
    ticks.dedup();
    let (lo, hi) = (
        ticks.first().copied().unwrap_or(0.0),
        ticks.last().copied().unwrap_or(1.0),
    );
    let log = chart.variable.log_axis() && lo > 0.0;
    let range = if log {
        lo / 1.3..hi * 1.3
    } else {
        let pad = ((hi - lo) * 0.06).max(0.5);
        lo - pad..hi + pad
    };
    (Extent { range, log }, ticks)
}

fn y_extent(chart: &Chart) -> Extent {
    let ys = chart
        .series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.1))
        .filter(|y| y.is_finite());
    let (lo, hi) = ys.fold((f64::INFINITY, 0.0f64), |(lo, hi), y| {
        (lo.min(y), hi.max(y))
    });
    if chart.y_log && lo > 0.0 {
        Extent {
            range: lo / 1.5..hi * 1.5,
            log: true,
        }
    } else {
        Extent {
            range: 0.0..if hi > 0.0 { hi * 1.1 } else { 1.0 },
            log: false,
        }
    }
}

/// An axis with ticks exactly at the values measured. (plotters' own `with_key_points`
/// loses the label formatter on a linear axis.)
struct Ticked<R> {
    inner: R,
    ticks: Vec<f64>,
}

impl<R> Ticked<R> {
    fn new(inner: R, ticks: Vec<f64>) -> Ticked<R> {
        Ticked { inner, ticks }
    }
}

impl<R: Ranged<ValueType = f64>> Ranged for Ticked<R> {
    type FormatOption = DefaultFormatting;
    type ValueType = f64;

    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        self.inner.map(value, limit)
    }

    fn key_points<Hint: KeyPointHint>(&self, hint: Hint) -> Vec<f64> {
        // Bold points only: light grid lines between measured values would mean nothing.
        if hint.weight().allow_light_points() {
            Vec::new()
        } else {
            self.ticks.clone()
        }
    }

    fn range(&self) -> Range<f64> {
        self.inner.range()
    }
}

pub(super) fn chart(chart: &Chart, path: &Path) -> anyhow::Result<()> {
    let (x, ticks) = x_extent(chart);
    let y = y_extent(chart);
    let logs = (x.log, y.log);
    let linear = RangedCoordf64::from;
    let log = |r: Range<f64>| LogCoord::<f64>::from(r.log_scale());
    // One monomorphised `render` per pair of axis kinds.
    match logs {
        (true, true) => render(
            chart,
            path,
            logs,
            Ticked::new(log(x.range), ticks),
            log(y.range),
        ),
        (true, false) => render(
            chart,
            path,
            logs,
            Ticked::new(log(x.range), ticks),
            linear(y.range),
        ),
        (false, true) => render(
            chart,
            path,
            logs,
            Ticked::new(linear(x.range), ticks),
            log(y.range),
        ),
        (false, false) => render(
            chart,
            path,
            logs,
            Ticked::new(linear(x.range), ticks),
            linear(y.range),
        ),
    }
}

/// Draws `chart` on the axes given; `(x_log, y_log)` say which are logarithmic.
fn render<X, Y>(
    chart: &Chart,
    path: &Path,
    (x_log, y_log): (bool, bool),
    x: X,
    y: Y,
) -> anyhow::Result<()>
where
    X: Ranged<ValueType = f64> + ValueFormatter<f64>,
    Y: Ranged<ValueType = f64> + ValueFormatter<f64>,
{
    let root = BitMapBackend::new(path, SIZE).into_drawing_area();
    root.fill(&WHITE)?;
    let body = root.titled(&chart.title, (FAMILY, 20))?;
    let (plot, legend) = body.split_horizontally(SIZE.0 - LEGEND_WIDTH);
    let scale = |log: bool| if log { " (log scale)" } else { "" };
    let x_desc = format!("{}{}", axis_name(chart.variable), scale(x_log));
    let y_desc = match chart.measure {
        Measure::LatencyMs => format!("latency, ms{}", scale(y_log)),
        Measure::MessagesPerSecond => format!("messages per second{}", scale(y_log)),
    };
    let mut ctx = ChartBuilder::on(&plot)
        .margin(12)
        .x_label_area_size(50)
        .y_label_area_size(80)
        .build_cartesian_2d(x, y)?;
    let (variable, top) = (chart.variable, ctx.y_range().end);
    ctx.configure_mesh()
        .x_desc(x_desc)
        .y_desc(y_desc)
        .x_label_formatter(&|v| x_label(variable, *v))
        .y_label_formatter(&|v| tick(*v, top, y_log))
        .label_style((FAMILY, 14))
        .axis_desc_style((FAMILY, 16))
        .light_line_style(BLACK.mix(0.05))
        .draw()?;
    for s in &chart.series {
        let style = color(s.color).stroke_width(2);
        let points = s.points.iter().copied();
        if s.dashed {
            ctx.draw_series(DashedLineSeries::new(points, 8, 5, style))?;
        } else {
            ctx.draw_series(LineSeries::new(points, style))?;
        }
        ctx.draw_series(
            s.points
                .iter()
                .map(|&p| Circle::new(p, 3, color(s.color).filled())),
        )?;
    }
    let entries: Vec<(&str, RGBColor, bool)> = chart
        .series
        .iter()
        .map(|s| (s.label.as_str(), color(s.color), s.dashed))
        .collect();
    draw_legend(&legend, &entries)?;
    root.present()?;
    Ok(())
}

/// A column of `(label, colour, dashed)` entries, drawn beside the plot so it hides nothing.
fn draw_legend(
    area: &DrawingArea<BitMapBackend<'_>, Shift>,
    entries: &[(&str, RGBColor, bool)],
) -> anyhow::Result<()> {
    for (y, &(label, color, dashed)) in (60..).step_by(24).zip(entries) {
        let style = color.stroke_width(2);
        let line = vec![(8, y), (44, y)];
        if dashed {
            area.draw(&DashedPathElement::new(line, 6, 4, style))?;
        } else {
            area.draw(&PathElement::new(line, style))?;
        }
        let text = TextStyle::from((FAMILY, 14).into_font())
            .color(&BLACK)
            .pos(Pos::new(HPos::Left, VPos::Center));
        area.draw(&Text::new(label, (52, y), text))?;
    }
    Ok(())
}

pub(super) fn bars(bars: &Bars, path: &Path) -> anyhow::Result<()> {
    let root = BitMapBackend::new(path, SIZE).into_drawing_area();
    root.fill(&WHITE)?;
    let body = root.titled(&bars.title, (FAMILY, 20))?;
    let (plot, legend) = body.split_horizontally(SIZE.0 - LEGEND_WIDTH);
    #[allow(clippy::cast_precision_loss)]
    let n = bars.strategies.len() as f64;
    let top = bars
        .p99_ms
        .iter()
        .chain(&bars.p50_ms)
        .copied()
        .filter(|v| v.is_finite())
        .fold(0.0f64, f64::max);
    let ticks: Vec<f64> = (0..bars.strategies.len()).map(|i| i as f64).collect();
    let mut ctx = ChartBuilder::on(&plot)
        .margin(12)
        .x_label_area_size(50)
        .y_label_area_size(80)
        .build_cartesian_2d(
            Ticked::new(RangedCoordf64::from(-0.6..n - 0.4), ticks),
            0.0..if top > 0.0 { top * 1.15 } else { 1.0 },
        )?;
    let names = bars.strategies.clone();
    ctx.configure_mesh()
        .disable_x_mesh()
        .x_desc("strategy")
        .y_desc("latency, ms")
        .x_label_formatter(&|v| {
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            let i = v.round().max(0.0) as usize;
            names.get(i).cloned().unwrap_or_default()
        })
        .y_label_formatter(&|v| tick(*v, top, false))
        .label_style((FAMILY, 14))
        .axis_desc_style((FAMILY, 16))
        .light_line_style(BLACK.mix(0.05))
        .draw()?;
    let groups = [
        (&bars.p50_ms, color(0), -0.38, -0.02),
        (&bars.p99_ms, color(3), 0.02, 0.38),
    ];
    for (values, fill, left, right) in groups {
        for (i, &v) in values.iter().enumerate().filter(|(_, v)| v.is_finite()) {
            #[allow(clippy::cast_precision_loss)]
            let x = i as f64;
            ctx.draw_series([Rectangle::new(
                [(x + left, 0.0), (x + right, v)],
                fill.filled(),
            )])?;
            let label = TextStyle::from((FAMILY, 13).into_font())
                .color(&BLACK)
                .pos(Pos::new(HPos::Center, VPos::Bottom));
            ctx.draw_series([Text::new(
                format::ms(v),
                (x + (left + right) / 2.0, v),
                label,
            )])?;
        }
    }
    draw_legend(
        &legend,
        &[("p50", color(0), false), ("p99", color(3), false)],
    )?;
    root.present()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_share_their_decimals_along_an_axis() {
        let linear: Vec<String> = [0.0, 2.5, 5.0]
            .iter()
            .map(|&v| tick(v, 5.5, false))
            .collect();
        assert_eq!(linear, ["0", "2.5", "5"]);
        assert_eq!(tick(0.05, 0.12, false), "0.05");
        assert_eq!(tick(12_000.0, 15_000.0, false), "12,000");
        let log: Vec<String> = [0.1, 1.0, 10.0, 100.0]
            .iter()
            .map(|&v| tick(v, 150.0, true))
            .collect();
        assert_eq!(log, ["0.1", "1", "10", "100"]);
    }
}
