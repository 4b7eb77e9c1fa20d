//! PNG plots with `plotters`, drawn with a bundled font (DejaVu Sans) so they look the same
//! on every machine.

use std::path::Path;

use beldi::BeldiError;
use plotters::prelude::*;

const FONT: &str = "sans-serif";
const WIDTH: u32 = 1100;
const HEIGHT: u32 = 560;
const COLORS: [RGBColor; 8] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
];

static FOOTER: std::sync::Mutex<String> = std::sync::Mutex::new(String::new());

/// A line printed under every plot from now on (machine, scale, durability).
pub fn set_footer(text: String) {
    *FOOTER.lock().unwrap_or_else(|e| e.into_inner()) = text;
}

type Area<'a> = DrawingArea<BitMapBackend<'a>, plotters::coord::Shift>;
type Chart<'a, 'b> = ChartContext<
    'a,
    BitMapBackend<'b>,
    Cartesian2d<plotters::coord::types::RangedCoordf64, plotters::coord::types::RangedCoordf64>,
>;

/// A white canvas writing to `path`, with the footer in a strip at the bottom; returns the
/// canvas and the area above the strip, for the chart.
fn canvas(path: &Path) -> Result<(Area<'_>, Area<'_>), BeldiError> {
    font()?;
    let what = path.display().to_string();
    let canvas = BitMapBackend::new(path, (WIDTH, HEIGHT)).into_drawing_area();
    canvas.fill(&WHITE).map_err(|e| failed(&what, e))?;
    let footer = FOOTER.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let (chart, strip) = canvas.split_vertically(HEIGHT - 22);
    strip
        .draw_text(
            &footer,
            &(FONT, 12).into_font().color(&BLACK.mix(0.7)),
            (12, 4),
        )
        .map_err(|e| failed("footer", e))?;
    Ok((canvas, chart))
}

/// Draws the series legend (top left) and writes the file.
fn finish<'a, 'b: 'a>(
    chart: &mut Chart<'a, 'b>,
    canvas: &Area<'_>,
    what: &str,
) -> Result<(), BeldiError> {
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .label_font((FONT, 13))
        .position(SeriesLabelPosition::UpperLeft)
        .draw()
        .map_err(|e| failed(what, e))?;
    canvas.present().map_err(|e| failed(what, e))
}

fn font() -> Result<(), BeldiError> {
    static ONCE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    let ok = *ONCE.get_or_init(|| {
        plotters::style::register_font(
            FONT,
            FontStyle::Normal,
            include_bytes!("../../assets/DejaVuSans.ttf"),
        )
        .is_ok()
    });
    if ok {
        Ok(())
    } else {
        Err(failed("the bundled font", "DejaVuSans.ttf did not load"))
    }
}

fn failed(what: &str, e: impl std::fmt::Display) -> BeldiError {
    BeldiError::Corrupt {
        what: format!("plot {what}"),
        message: e.to_string(),
    }
}

/// Grouped bars: one group per category, one bar per series.
pub fn bars(
    path: &Path,
    title: &str,
    y_label: &str,
    categories: &[&str],
    series: &[(String, Vec<f64>)],
) -> Result<(), BeldiError> {
    let what = path.display().to_string();
    let err = |e: &dyn std::fmt::Display| failed(&what, e);
    let (canvas, root) = canvas(path)?;
    let max = series
        .iter()
        .flat_map(|(_, v)| v.iter().copied())
        .filter(|v| v.is_finite())
        .fold(0.0f64, f64::max)
        .max(1e-9)
        * 1.15;
    let n = categories.len().max(1);
    let mut chart = ChartBuilder::on(&root)
        .caption(title, (FONT, 22))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(0f64..n as f64, 0f64..max)
        .map_err(|e| err(&e))?;
    let cats: Vec<String> = categories.iter().map(|c| c.to_string()).collect();
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(n * 2 + 1)
        .x_label_formatter(&|x| {
            let i = x.floor() as usize;
            if (x - i as f64 - 0.5).abs() < 0.01 && i < cats.len() {
                cats[i].clone()
            } else {
                String::new()
            }
        })
        .y_desc(y_label)
        .label_style((FONT, 13))
        .draw()
        .map_err(|e| err(&e))?;
    let k = series.len().max(1) as f64;
    let w = 0.8 / k;
    for (s, (name, values)) in series.iter().enumerate() {
        let color = COLORS[s % COLORS.len()];
        chart
            .draw_series(values.iter().enumerate().map(|(i, v)| {
                let x0 = i as f64 + 0.1 + s as f64 * w;
                Rectangle::new([(x0, 0.0), (x0 + w * 0.9, v.max(0.0))], color.filled())
            }))
            .map_err(|e| err(&e))?
            .label(name.clone())
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 12, y + 5)], color.filled()));
    }
    finish(&mut chart, &canvas, &what)
}

/// Lines: several series of (x, y) points.
pub fn lines(
    path: &Path,
    title: &str,
    x_label: &str,
    y_label: &str,
    series: &[(String, Vec<(f64, f64)>)],
) -> Result<(), BeldiError> {
    let what = path.display().to_string();
    let err = |e: &dyn std::fmt::Display| failed(&what, e);
    let (canvas, root) = canvas(path)?;
    let pts = || {
        series
            .iter()
            .flat_map(|(_, v)| v.iter().copied())
            .filter(|(x, y)| x.is_finite() && y.is_finite())
    };
    let x_max = pts().map(|p| p.0).fold(0.0f64, f64::max).max(1e-9) * 1.05;
    let y_max = pts().map(|p| p.1).fold(0.0f64, f64::max).max(1e-9) * 1.15;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, (FONT, 22))
        .margin(12)
        .x_label_area_size(45)
        .y_label_area_size(60)
        .build_cartesian_2d(0f64..x_max, 0f64..y_max)
        .map_err(|e| err(&e))?;
    chart
        .configure_mesh()
        .x_desc(x_label)
        .y_desc(y_label)
        .label_style((FONT, 13))
        .draw()
        .map_err(|e| err(&e))?;
    for (s, (name, values)) in series.iter().enumerate() {
        let color = COLORS[s % COLORS.len()];
        let values: Vec<(f64, f64)> = values
            .iter()
            .copied()
            .filter(|(x, y)| x.is_finite() && y.is_finite())
            .collect();
        chart
            .draw_series(LineSeries::new(values.clone(), color.stroke_width(2)))
            .map_err(|e| err(&e))?
            .label(name.clone())
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 14, y)], color.stroke_width(2))
            });
        chart
            .draw_series(
                values
                    .into_iter()
                    .map(|p| Circle::new(p, 3, color.filled())),
            )
            .map_err(|e| err(&e))?;
    }
    finish(&mut chart, &canvas, &what)
}
