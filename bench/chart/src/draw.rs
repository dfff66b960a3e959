//! Renders the panels into one PNG: a header (title, subtitle, legend), a grid of bar-chart
//! panels, and a one-line footnote explaining the labels.
//!
//! Everything is laid out in pixels from a few constants so the figure looks the same no
//! matter how many panels there are; only the number of grid rows changes.

use std::error::Error;
use std::path::Path;

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, VPos};

use crate::data::KNOWN_CONTENDERS;
use crate::numbers::{axis, fmt_ratio, fmt_tick, fmt_value};
use crate::panels::Panel;
use crate::text::{self, Fonts, Style};

const WIDTH: u32 = 1600;
const HEADER_H: u32 = 128;
const PANEL_H: u32 = 300;
const FOOTER_H: u32 = 34;
/// Space reserved above the tallest bar for its two label lines, in pixels.
const LABEL_ROOM: f64 = 44.0;

const BACKGROUND: RGBColor = RGBColor(243, 244, 246);
const INK: RGBColor = RGBColor(17, 24, 39);
const MUTED: RGBColor = RGBColor(107, 114, 128);
const RULE: RGBColor = RGBColor(229, 231, 235);

/// Colours of the known contenders, in [`KNOWN_CONTENDERS`] order.
const KNOWN_COLOURS: [RGBColor; 5] = [
    RGBColor(37, 99, 235),   // portcullis: blue
    RGBColor(0, 150, 57),    // nginx: nginx green
    RGBColor(31, 136, 169),  // caddy: teal
    RGBColor(198, 40, 40),   // haproxy: red
    RGBColor(148, 156, 170), // registry-direct: neutral grey (baseline, no gateway)
];
/// Colours handed out to any other contender, in order of appearance.
const OTHER_COLOURS: [RGBColor; 4] = [
    RGBColor(217, 119, 6),
    RGBColor(124, 58, 237),
    RGBColor(219, 39, 119),
    RGBColor(13, 148, 136),
];

/// Fixed colour of a contender; unknown ones cycle through [`OTHER_COLOURS`] by their index
/// among the unknown contenders of `all`, so colours are stable within one figure.
fn colour(contender: &str, all: &[String]) -> RGBColor {
    if let Some(i) = KNOWN_CONTENDERS.iter().position(|k| *k == contender) {
        return KNOWN_COLOURS[i];
    }
    let nth = all
        .iter()
        .filter(|c| !KNOWN_CONTENDERS.contains(&c.as_str()))
        .position(|c| c == contender)
        .unwrap_or(0);
    OTHER_COLOURS[nth % OTHER_COLOURS.len()]
}

/// Grid columns for `n` panels: up to 3 in one row; otherwise 4, unless 3 columns need no
/// more rows than 4 would (then 3 leaves fewer empty cells).
pub fn columns(n: usize) -> usize {
    match n {
        0..=3 => n.max(1),
        _ if n.div_ceil(3) == n.div_ceil(4) => 3,
        _ => 4,
    }
}

type Area<'a> = DrawingArea<BitMapBackend<'a>, Shift>;
type DrawResult = Result<(), Box<dyn Error>>;

/// Everything a figure needs besides the panels.
pub struct Figure<'a> {
    pub title: &'a str,
    pub subtitle: &'a str,
    pub footnote: &'a str,
    /// Contenders in legend order (also fixes the colours of unknown ones).
    pub contenders: &'a [String],
}

/// Draws the whole figure to `out` (PNG, by extension).
pub fn render(out: &Path, fonts: &Fonts, fig: &Figure, panels: &[Panel]) -> DrawResult {
    let cols = columns(panels.len());
    let rows = panels.len().div_ceil(cols) as u32;
    let height = HEADER_H + rows * PANEL_H + FOOTER_H;
    let root = BitMapBackend::new(out, (WIDTH, height)).into_drawing_area();
    root.fill(&BACKGROUND)?;

    let (header, rest) = root.split_vertically(HEADER_H);
    let (grid, footer) = rest.split_vertically(rows * PANEL_H);
    draw_header(&header, fonts, fig)?;
    for (area, panel) in grid.split_evenly((rows as usize, cols)).iter().zip(panels) {
        draw_panel(area, fonts, panel, fig.contenders)?;
    }
    let fit = (WIDTH - 48) as f32;
    let small = Style::new(&fonts.regular, 14.0, MUTED).shrunk_to_fit(fig.footnote, fit);
    text::draw(&footer, (24, 4), fig.footnote, &small)?;
    root.present()?;
    Ok(())
}

fn draw_header(area: &Area, fonts: &Fonts, fig: &Figure) -> DrawResult {
    // Long version strings must not run off the image: shrink the line instead.
    let fit = (WIDTH - 48) as f32;
    let title = Style::new(&fonts.bold, 32.0, INK).shrunk_to_fit(fig.title, fit);
    text::draw(area, (24, 20), fig.title, &title)?;
    let subtitle = Style::new(&fonts.regular, 16.0, MUTED).shrunk_to_fit(fig.subtitle, fit);
    text::draw(area, (24, 62), fig.subtitle, &subtitle)?;
    let name = Style::new(&fonts.regular, 16.0, INK).anchor(HPos::Left, VPos::Center);
    let mut x = 24;
    for c in fig.contenders {
        let swatch = colour(c, fig.contenders);
        area.draw(&Rectangle::new([(x, 95), (x + 16, 111)], swatch.filled()))?;
        text::draw(area, (x + 24, 103), c, &name)?;
        x += 24 + name.width(c).ceil() as i32 + 36;
    }
    Ok(())
}

fn draw_panel(area: &Area, fonts: &Fonts, panel: &Panel, contenders: &[String]) -> DrawResult {
    let card = area.margin(8, 8, 8, 8);
    let (w, h) = card.dim_in_pixel();
    card.fill(&WHITE)?;
    card.draw(&Rectangle::new(
        [(0, 0), (w as i32 - 1, h as i32 - 1)],
        RULE,
    ))?;
    let fit = w.saturating_sub(32) as f32;
    let title = Style::new(&fonts.bold, 18.0, INK).shrunk_to_fit(&panel.title, fit);
    text::draw(&card, (16, 14), &panel.title, &title)?;
    let note = Style::new(&fonts.regular, 14.0, MUTED).shrunk_to_fit(&panel.note, fit);
    text::draw(&card, (16, 40), &panel.note, &note)?;

    // Plot area below the heading; the left margin holds the tick labels.
    let plot = card.margin(80, 16, 60, 18);
    let plot_h = f64::from(plot.dim_in_pixel().1).max(LABEL_ROOM * 2.0);
    let max = panel.bars.iter().map(|b| b.value).fold(0.0, f64::max);
    let (y_max, step) = axis(max / (1.0 - LABEL_ROOM / plot_h));
    // At least three slots so that one or two bars do not become very wide.
    let slots = panel.bars.len().max(3);
    let offset = (slots - panel.bars.len()) as f64 / 2.0;
    let chart = ChartBuilder::on(&plot).build_cartesian_2d(0f64..slots as f64, 0f64..y_max)?;
    let plotting = chart.plotting_area();

    // Horizontal grid with tick labels; the zero line doubles as the baseline.
    let tick_style = Style::new(&fonts.regular, 13.0, MUTED).anchor(HPos::Right, VPos::Center);
    let origin = plot.get_base_pixel();
    let steps = (y_max / step).round() as usize;
    for t in (0..=steps).map(|i| i as f64 * step) {
        let line = if t == 0.0 {
            MUTED.mix(0.7)
        } else {
            RULE.mix(1.0)
        };
        plotting.draw(&PathElement::new([(0.0, t), (slots as f64, t)], line))?;
        let (x, y) = chart.backend_coord(&(0.0, t));
        text::draw(
            &plot,
            (x - origin.0 - 8, y - origin.1),
            &fmt_tick(&t),
            &tick_style,
        )?;
    }

    let value_style = Style::new(&fonts.bold, 16.0, INK).anchor(HPos::Center, VPos::Bottom);
    let half = 0.31;
    for (i, bar) in panel.bars.iter().enumerate() {
        let centre = offset + i as f64 + 0.5;
        let fill = colour(&bar.contender, contenders);
        // Keep tiny non-zero values visible as a 2 px sliver; the label carries the number.
        let shown = if bar.value > 0.0 {
            bar.value.max(2.0 * y_max / plot_h)
        } else {
            0.0
        };
        plotting.draw(&Rectangle::new(
            [(centre - half, 0.0), (centre + half, shown)],
            fill.filled(),
        ))?;
        let (x, y) = chart.backend_coord(&(centre, shown));
        let (x, mut y) = (x - origin.0, y - origin.1 - 4);
        if let Some(r) = bar.ratio {
            // In the bar's colour, to tie the ratio to its contender.
            let ratio_style =
                Style::new(&fonts.regular, 14.0, fill).anchor(HPos::Center, VPos::Bottom);
            bar_label(&plot, (x, y), &fmt_ratio(r), &ratio_style)?;
            y -= 18;
        }
        bar_label(&plot, (x, y), &fmt_value(bar.value), &value_style)?;
    }
    Ok(())
}

/// Draws a label anchored at its bottom centre on a white backing, so that grid lines do not
/// run through the digits.
fn bar_label(area: &Area, at: (i32, i32), label: &str, style: &Style) -> DrawResult {
    let half_w = (style.width(label) / 2.0).ceil() as i32 + 3;
    let h = style.size().ceil() as i32;
    let backing = [(at.0 - half_w, at.1 - h), (at.0 + half_w, at.1 - 1)];
    area.draw(&Rectangle::new(backing, WHITE.filled()))?;
    text::draw(area, at, label, style)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grid_columns() {
        let got: Vec<usize> = (1..=16).map(columns).collect();
        assert_eq!(got, [1, 2, 3, 4, 3, 3, 4, 4, 3, 4, 4, 4, 4, 4, 4, 4]);
    }
}
