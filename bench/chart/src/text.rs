//! Text drawn onto plotters drawing areas, rasterised with `ab_glyph` directly.
//!
//! Why not plotters' own `Text`: with the `ab_glyph` feature, plotters 0.3.7 places each glyph
//! at the pen position without its left side bearing, so letters visibly jitter
//! ("ngin x", "92b c0fd"). [`draw`] positions glyphs properly (bearings, kerning, sub-pixel
//! pen positions) and anchors on the real ascent/descent, then paints the anti-aliased pixels
//! through the drawing area (so it needs no backend-level dependency).

use ab_glyph::{point, Font, FontRef, PxScale, ScaleFont};
use plotters::coord::Shift;
use plotters::prelude::{Color, DrawingArea, DrawingAreaErrorKind, DrawingBackend, RGBColor};
use plotters::style::text_anchor::{HPos, VPos};

/// The two faces the chart uses. Bold falls back to regular when no bold file is found.
#[derive(Clone)]
pub struct Fonts {
    pub regular: FontRef<'static>,
    pub bold: FontRef<'static>,
}

/// Face, size, colour and anchor of a piece of text.
#[derive(Clone, Copy)]
pub struct Style<'f> {
    font: &'f FontRef<'static>,
    size: f32,
    colour: RGBColor,
    h: HPos,
    v: VPos,
}

impl<'f> Style<'f> {
    /// Text of `size` px in `colour`, anchored at its top-left corner.
    pub fn new(font: &'f FontRef<'static>, size: f32, colour: RGBColor) -> Self {
        Self {
            font,
            size,
            colour,
            h: HPos::Left,
            v: VPos::Top,
        }
    }

    /// Which point of the text's box sits at the label position.
    pub fn anchor(self, h: HPos, v: VPos) -> Self {
        Self { h, v, ..self }
    }

    /// The same style, scaled down (never up) so that `text` is at most `max_width` px wide.
    pub fn shrunk_to_fit(self, text: &str, max_width: f32) -> Self {
        let width = self.width(text);
        if width <= max_width || width <= 0.0 {
            return self;
        }
        Self {
            size: self.size * max_width / width,
            ..self
        }
    }

    /// Line height in pixels (ascent minus descent).
    pub fn size(&self) -> f32 {
        self.size
    }

    /// Advance width of `text` in pixels, kerning included.
    pub fn width(&self, text: &str) -> f32 {
        let font = self.font.as_scaled(PxScale::from(self.size));
        let mut width = 0.0;
        let mut prev = None;
        for c in text.chars() {
            let id = font.glyph_id(c);
            if let Some(p) = prev {
                width += font.kern(p, id);
            }
            width += font.h_advance(id);
            prev = Some(id);
        }
        width
    }
}

/// Draws one line of `text` with its anchor point (see [`Style::anchor`]) at pixel `at` of
/// `area`. Pixels outside the backend are dropped by the backend; nothing is clipped to `area`.
pub fn draw<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    at: (i32, i32),
    text: &str,
    style: &Style,
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    let font = style.font.as_scaled(PxScale::from(style.size));
    let width = style.width(text);
    let x0 = at.0 as f32
        - match style.h {
            HPos::Left => 0.0,
            HPos::Center => width / 2.0,
            HPos::Right => width,
        };
    // Baseline from the font's real ascent/descent (descent is negative).
    let baseline = at.1 as f32
        + match style.v {
            VPos::Top => font.ascent(),
            VPos::Center => (font.ascent() + font.descent()) / 2.0,
            VPos::Bottom => font.descent(),
        };

    let mut pixels = Vec::new();
    let mut pen = x0;
    let mut prev = None;
    for c in text.chars() {
        let id = font.glyph_id(c);
        if let Some(p) = prev {
            pen += font.kern(p, id);
        }
        prev = Some(id);
        let glyph = id.with_scale_and_position(font.scale(), point(pen, baseline));
        pen += font.h_advance(id);
        // No outline for e.g. a space.
        if let Some(outline) = font.outline_glyph(glyph) {
            let min = outline.px_bounds().min;
            outline.draw(|x, y, coverage| {
                if coverage > 0.0 {
                    let p = (min.x as i32 + x as i32, min.y as i32 + y as i32);
                    pixels.push((p, f64::from(coverage.min(1.0))));
                }
            });
        }
    }
    for (p, alpha) in pixels {
        area.draw_pixel(p, &style.colour.mix(alpha))?;
    }
    Ok(())
}
