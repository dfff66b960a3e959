//! `chart RAW_TSV META_ENV OUT_PNG`: turns `bench/run`'s raw results into a PNG chart.
//!
//! A separate, standalone crate (not part of the Portcullis workspace) so that the proxy
//! itself never depends on a plotting library. Text is rendered with `ab_glyph` from a TTF
//! file loaded at run time (no fontconfig / freetype system libraries): `$CHART_FONT`, or
//! DejaVu Sans from the Debian package `fonts-dejavu-core`.
//!
//! Exit status: 0 on success, 1 on unreadable or malformed input (or output failure),
//! 2 on wrong usage.
#![forbid(unsafe_code)]

mod data;
mod draw;
mod numbers;
mod panels;
mod text;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use ab_glyph::FontRef;
use plotters::style::{register_font, FontStyle};

/// Font used when `$CHART_FONT` is not set.
const DEFAULT_FONT: &str = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf";
/// Bold companion of [`DEFAULT_FONT`]; optional (regular is used for bold text if missing).
const DEFAULT_BOLD_FONT: &str = "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf";

const USAGE: &str = "usage: chart RAW_TSV META_ENV OUT_PNG

Draws bench/run's raw results (TSV: group metric contender round value) as a PNG chart.
META_ENV holds KEY=value lines (NPROC, CPU, MEM_GIB, DATE, PORTCULLIS, NGINX, REGISTRY, ROUNDS)
for the subtitle. Font: $CHART_FONT, else DejaVu Sans (Debian package fonts-dejavu-core).";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [raw, meta, out] = &args[..] else {
        if args.iter().any(|a| a == "-h" || a == "--help") {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        eprintln!("{USAGE}");
        return ExitCode::from(2);
    };
    match run(Path::new(raw), Path::new(meta), Path::new(out)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(msg) => {
            eprintln!("chart: {msg}");
            ExitCode::from(1)
        }
    }
}

/// Reads both inputs, registers the fonts and draws; every failure becomes one message.
fn run(raw_path: &Path, meta_path: &Path, out: &Path) -> Result<(), String> {
    // The encoder picks the format from the extension; insist on PNG up front.
    let is_png = out
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("png"));
    if !is_png {
        return Err(format!("output {} must end in .png", out.display()));
    }
    let read = |p: &Path| {
        std::fs::read_to_string(p).map_err(|e| format!("cannot read {}: {e}", p.display()))
    };
    let results =
        data::parse_tsv(&read(raw_path)?).map_err(|e| format!("{}: {e}", raw_path.display()))?;
    let meta =
        data::parse_meta(&read(meta_path)?).map_err(|e| format!("{}: {e}", meta_path.display()))?;

    let contenders = results.contenders();
    let panels = panels::build(&results, &contenders, &meta);
    if panels.is_empty() {
        return Err(format!(
            "{}: none of the charted metrics is present (see PANELS in src/panels.rs)",
            raw_path.display()
        ));
    }
    // The legend lists only contenders that have at least one bar.
    let shown: Vec<String> = contenders
        .into_iter()
        .filter(|c| {
            panels
                .iter()
                .any(|p| p.bars.iter().any(|b| &b.contender == c))
        })
        .collect();

    let fonts = load_fonts()?;
    let mut title = String::from("Portcullis vs nginx, Caddy and HAProxy vs registry direct");
    if let Some(mode) = meta.get("MODE").filter(|m| *m != "full") {
        title.push_str(&format!(" ({mode} run)"));
    }
    let figure = draw::Figure {
        title: &title,
        subtitle: &meta.subtitle(),
        footnote: "Bar labels: the value and, for Portcullis, the ratio to the best of nginx, Caddy \
                   and HAProxy in that panel. registry-direct: the registry without a gateway (plain HTTP). \
                   Everything runs on one machine over loopback.",
        contenders: &shown,
    };
    draw::render(out, &fonts, &figure, &panels).map_err(|e| {
        // The bitmap backend writes whatever it has when dropped; do not leave half a chart.
        let _ = std::fs::remove_file(out);
        format!("cannot draw {}: {e}", out.display())
    })
}

/// Loads the TTF(s): `$CHART_FONT` (used for bold too), else DejaVu Sans and DejaVu Sans Bold.
fn load_fonts() -> Result<text::Fonts, String> {
    let from_env = std::env::var_os("CHART_FONT").map(PathBuf::from);
    let (regular_path, bold_path) = match from_env {
        Some(p) => (p, None),
        None => (
            PathBuf::from(DEFAULT_FONT),
            Some(PathBuf::from(DEFAULT_BOLD_FONT)),
        ),
    };
    let bytes = std::fs::read(&regular_path).map_err(|e| {
        let hint = if bold_path.is_none() {
            "check CHART_FONT, or unset it to use DejaVu Sans (Debian package fonts-dejavu-core)"
        } else {
            "install the Debian package fonts-dejavu-core, or set CHART_FONT to a .ttf file"
        };
        format!("cannot read font {}: {e}; {hint}", regular_path.display())
    })?;
    let regular = load(&regular_path, bytes, FontStyle::Normal)?;
    let bold = match bold_path.and_then(|p| std::fs::read(&p).ok().map(|b| (p, b))) {
        Some((path, bytes)) => load(&path, bytes, FontStyle::Bold)?,
        None => regular.clone(),
    };
    Ok(text::Fonts { regular, bold })
}

/// Parses one font and also registers it with plotters, so that plotters' own text elements
/// would work too. Both need `&'static` bytes; the font lives for the whole (short) run anyway.
fn load(path: &Path, bytes: Vec<u8>, style: FontStyle) -> Result<FontRef<'static>, String> {
    let invalid = || format!("{} is not a usable TrueType/OpenType font", path.display());
    let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
    let font = FontRef::try_from_slice(bytes).map_err(|_| invalid())?;
    register_font("sans-serif", style, bytes).map_err(|_| invalid())?;
    Ok(font)
}
