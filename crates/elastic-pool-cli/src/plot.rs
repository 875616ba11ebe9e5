//! SVG plots: one run's timeline (`timeline.svg`) and the contenders overlaid (`compare.svg`).
//!
//! Drawn with plotters' SVG backend and no font files: text is emitted as SVG `<text>`
//! elements that the viewer renders, and plotters only estimates its size for layout.

use plotters::coord::Shift;
use plotters::prelude::*;

use crate::score::Mode;
use crate::timeline::Row;

/// Colours for contenders, in order.
const COLOURS: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
    RGBColor(214, 39, 40),
];
const ORACLE: RGBColor = RGBColor(0, 0, 0);
const SLO: RGBColor = RGBColor(214, 39, 40);
/// Waits below this are drawn at it (log scale).
const WAIT_FLOOR_MS: f64 = 0.1;

type Area<'a> = DrawingArea<SVGBackend<'a>, Shift>;

fn e<E: std::fmt::Display>(err: E) -> String {
    format!("cannot draw the plot: {err}")
}

/// The title line, marked as a model in virtual mode.
pub fn title(what: &str, mode: Mode) -> String {
    match mode {
        Mode::Real => format!("{what} (measured on real threads)"),
        Mode::Virtual => format!("{what} (MODEL: virtual time, not a measurement)"),
    }
}

fn x_end(rows: &[Row]) -> f64 {
    rows.last()
        .map_or(1.0, |r| {
            r.t_s + (r.t_s - rows[0].t_s) / rows.len().max(1) as f64
        })
        .max(1.0)
}

fn wait_ms(x: f64) -> f64 {
    if x.is_finite() {
        x.max(WAIT_FLOOR_MS)
    } else {
        1e7
    }
}

/// One line of a panel.
struct Series {
    label: String,
    colour: RGBColor,
    width: u32,
    points: Vec<(f64, f64)>,
}

impl Series {
    fn new(label: &str, colour: RGBColor, width: u32, points: Vec<(f64, f64)>) -> Series {
        Series {
            label: label.to_string(),
            colour,
            width,
            points,
        }
    }
}

/// Width of the legend strip right of each panel, pixels.
const LEGEND_W: u32 = 160;

/// Draws a panel: the chart on the left, its legend in a strip on the right. `log` draws the
/// y axis on a log scale from [`WAIT_FLOOR_MS`].
fn panel(
    area: &Area<'_>,
    caption: &str,
    x1: f64,
    series: &[Series],
    log: bool,
) -> Result<(), String> {
    let (w, _) = area.dim_in_pixel();
    let (chart_area, legend_area) = area.split_horizontally(w.saturating_sub(LEGEND_W));
    let ymax = series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.1))
        .filter(|y| y.is_finite())
        .fold(1.0, f64::max);
    let mut b = ChartBuilder::on(&chart_area);
    b.margin(8)
        .x_label_area_size(30)
        .y_label_area_size(60)
        .caption(caption, ("sans-serif", 15));
    if log {
        let mut c = b
            .build_cartesian_2d(0.0..x1, (WAIT_FLOOR_MS..ymax * 2.0).log_scale())
            .map_err(e)?;
        c.configure_mesh()
            .x_desc("seconds")
            .x_label_formatter(&|x| format!("{x:.0}"))
            .y_label_formatter(&|y| {
                if *y >= 1.0 {
                    format!("{y:.0}")
                } else {
                    format!("{y}")
                }
            })
            .draw()
            .map_err(e)?;
        for s in series {
            c.draw_series(LineSeries::new(
                s.points.iter().copied(),
                s.colour.stroke_width(s.width),
            ))
            .map_err(e)?;
        }
    } else {
        let mut c = b.build_cartesian_2d(0.0..x1, 0.0..ymax * 1.1).map_err(e)?;
        let digits = if ymax >= 10.0 { 0 } else { 1 };
        c.configure_mesh()
            .x_desc("seconds")
            .x_label_formatter(&|x| format!("{x:.0}"))
            .y_label_formatter(&|y| format!("{y:.digits$}"))
            .draw()
            .map_err(e)?;
        for s in series {
            c.draw_series(LineSeries::new(
                s.points.iter().copied(),
                s.colour.stroke_width(s.width),
            ))
            .map_err(e)?;
        }
    }
    for (i, s) in series.iter().enumerate() {
        let y = 36 + 18 * i as i32;
        legend_area
            .draw(&PathElement::new(
                vec![(6, y), (30, y)],
                s.colour.stroke_width(s.width.max(2)),
            ))
            .map_err(e)?;
        legend_area
            .draw(&Text::new(
                s.label.clone(),
                (36, y - 7),
                ("sans-serif", 13).into_font().color(&BLACK),
            ))
            .map_err(e)?;
    }
    Ok(())
}

fn slo_line(slo_ms: f64, x1: f64) -> Series {
    Series::new(
        &format!("SLO {} ms", crate::trace::fmt_num(slo_ms)),
        SLO,
        1,
        vec![(0.0, slo_ms), (x1, slo_ms)],
    )
}

fn waits(rows: &[Row]) -> Vec<(f64, f64)> {
    rows.iter()
        .filter_map(|r| r.wait_p99_ms.map(|w| (r.t_s, wait_ms(w))))
        .collect()
}

/// The timeline of one run: workers against the oracle, p99 wait per window against the SLO,
/// queue depth, and arrivals against the true rate.
///
/// # Errors
/// A message if plotters fails (it cannot run out of fonts: there are none).
pub fn timeline_svg(rows: &[Row], title: &str, slo_ms: f64) -> Result<String, String> {
    let mut buf = String::new();
    {
        let root = SVGBackend::with_string(&mut buf, (1100, 1200)).into_drawing_area();
        root.fill(&WHITE).map_err(e)?;
        let root = root.titled(title, ("sans-serif", 20)).map_err(e)?;
        let panels = root.split_evenly((4, 1));
        let x1 = x_end(rows);
        let line = |f: &dyn Fn(&Row) -> f64| rows.iter().map(|r| (r.t_s, f(r))).collect();
        panel(
            &panels[0],
            "workers",
            x1,
            &[
                Series::new("oracle c*", ORACLE, 2, line(&|r| r.oracle as f64)),
                Series::new("live (mean)", COLOURS[0], 2, line(&|r| r.live_mean)),
                Series::new("live (max)", COLOURS[8], 1, line(&|r| r.live_max as f64)),
            ],
            false,
        )?;
        panel(
            &panels[1],
            "p99 queue wait per window (ms, log scale)",
            x1,
            &[
                slo_line(slo_ms, x1),
                Series::new("p99 wait", COLOURS[0], 2, waits(rows)),
            ],
            true,
        )?;
        panel(
            &panels[2],
            "queue depth",
            x1,
            &[
                Series::new("max", COLOURS[1], 1, line(&|r| r.queue_max as f64)),
                Series::new("mean", COLOURS[0], 2, line(&|r| r.queue_mean)),
            ],
            false,
        )?;
        panel(
            &panels[3],
            "arrivals per second",
            x1,
            &[
                Series::new("arrivals", COLOURS[0], 2, line(&|r| r.arrivals_per_s)),
                Series::new("true λ", ORACLE, 1, line(&|r| r.lambda)),
            ],
            false,
        )?;
        root.present().map_err(e)?;
    }
    Ok(buf)
}

/// Every contender's workers and p99 wait per window on shared axes, with the oracle and the
/// SLO.
///
/// # Errors
/// A message if plotters fails.
pub fn overlay_svg(
    runs: &[(String, Vec<Row>)],
    title: &str,
    slo_ms: f64,
) -> Result<String, String> {
    let mut buf = String::new();
    {
        let root = SVGBackend::with_string(&mut buf, (1100, 800)).into_drawing_area();
        root.fill(&WHITE).map_err(e)?;
        let root = root.titled(title, ("sans-serif", 20)).map_err(e)?;
        let panels = root.split_evenly((2, 1));
        let x1 = runs.iter().map(|(_, r)| x_end(r)).fold(1.0, f64::max);
        let mut workers = Vec::new();
        if let Some((_, rows)) = runs.first() {
            workers.push(Series::new(
                "oracle c*",
                ORACLE,
                2,
                rows.iter().map(|r| (r.t_s, r.oracle as f64)).collect(),
            ));
        }
        let mut wait = vec![slo_line(slo_ms, x1)];
        for (i, (name, rows)) in runs.iter().enumerate() {
            let col = COLOURS[i % COLOURS.len()];
            workers.push(Series::new(
                name,
                col,
                2,
                rows.iter().map(|r| (r.t_s, r.live_mean)).collect(),
            ));
            wait.push(Series::new(name, col, 1, waits(rows)));
        }
        panel(
            &panels[0],
            "live workers (mean per window)",
            x1,
            &workers,
            false,
        )?;
        panel(
            &panels[1],
            "p99 queue wait per window (ms, log scale)",
            x1,
            &wait,
            true,
        )?;
        root.present().map_err(e)?;
    }
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows() -> Vec<Row> {
        (0..30)
            .map(|i| Row {
                t_s: i as f64,
                lambda: 20.0,
                arrivals_per_s: 19.0,
                completed_per_s: 19.0,
                live_mean: 3.5,
                live_max: 4,
                oracle: 4,
                queue_mean: 0.1,
                queue_max: 2,
                wait_p99_ms: if i == 3 { None } else { Some(0.2 * i as f64) },
            })
            .collect()
    }

    #[test]
    fn the_timeline_plot_has_its_panels_and_text() {
        let svg = timeline_svg(&rows(), &title("spike / erlang", Mode::Virtual), 20.0).unwrap();
        assert!(svg.starts_with("<svg"));
        for text in [
            "MODEL: virtual time",
            "workers",
            "p99 queue wait",
            "queue depth",
            "arrivals per second",
            "oracle c*",
            "SLO",
        ] {
            assert!(svg.contains(text), "missing {text}");
        }
        assert!(svg.contains("<polyline"));
    }

    #[test]
    fn the_overlay_names_every_contender() {
        let runs = vec![
            ("erlang".to_string(), rows()),
            ("on-demand".to_string(), rows()),
        ];
        let svg = overlay_svg(&runs, &title("step", Mode::Real), 20.0).unwrap();
        assert!(
            svg.contains("erlang") && svg.contains("on-demand") && svg.contains("real threads")
        );
    }
}
