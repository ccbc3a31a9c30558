//! Training curves as PNGs (plotters). Per run: train and validation loss (left) and the
//! selection metric on train/val/test (right), the selected epoch marked, the dataset, model
//! and test figure in the title. Across `--runs`: mean ± std bands over the runs.
//! Legends sit in a strip under each panel, never over a curve; epoch ticks are integers.
//! Text needs a TrueType font; we load a system one (DejaVu/Liberation) rather than ship one.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::OnceLock;

use plotters::coord::ranged1d::{DefaultFormatting, KeyPointHint};
use plotters::coord::types::RangedCoordf64;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::scores::higher_is_better;
use crate::{MetricLine, RunSummary, Setup, TrainError};

const FONT_PATHS: &[&str] = &[
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
    "/Library/Fonts/Arial.ttf",
];

/// One colour per split, the same in every panel and figure (matplotlib's tab10).
const TRAIN: RGBColor = RGBColor(31, 119, 180);
const VAL: RGBColor = RGBColor(255, 127, 14);
const TEST: RGBColor = RGBColor(44, 160, 44);
const SELECT: RGBColor = RGBColor(214, 39, 40);

/// Figure size; the legend strips' height is added to it (see `render`).
const SIZE: (u32, u32) = (1200, 470);
const TITLE_H: u32 = 40;
/// Pixels left of and right of each plotting area: the y labels, and room for the last
/// x tick label (centred on the right edge it would otherwise be clipped).
const Y_LABEL_W: i32 = 64;
const LEFT_MARGIN: i32 = 10;
const RIGHT_MARGIN: i32 = 30;
const LEGEND_ROW_H: i32 = 22;
/// Legend glyph width and the gaps after a glyph and after an entry.
const GLYPH_W: i32 = 24;
const GLYPH_GAP: i32 = 6;
const ENTRY_GAP: i32 = 22;
/// At most this many epoch ticks, so their labels never run into each other.
const MAX_TICKS: usize = 10;
/// Value ticks plotters may place on the y axis.
const Y_TICKS: usize = 11;

/// What a curves figure says besides the metric lines: its title and the selected epoch.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PlotInfo<'a> {
    /// The dataset's name (its manifest's).
    pub dataset: &'a str,
    /// The model's name (`gcn`, `sagmm`, …).
    pub model: &'a str,
    /// The selection metric (`acc`, `rmse`, …).
    pub metric: &'a str,
    /// The run's seed (per-run figures).
    pub seed: Option<u64>,
    /// The reported test figure of the selection metric (the kept model's), or its mean over
    /// runs in a summary.
    pub test: Option<f64>,
    /// Its standard deviation over runs (summary figures).
    pub test_std: Option<f64>,
    /// The selected epoch as the run recorded it; None or 0: the best validation epoch is
    /// recomputed from the lines.
    pub best_epoch: Option<usize>,
}

impl<'a> PlotInfo<'a> {
    /// The figure of one finished run of `setup` with seed `seed`.
    pub fn run(setup: &'a Setup, s: &'a RunSummary, seed: u64) -> PlotInfo<'a> {
        PlotInfo {
            dataset: &setup.ds.manifest.name,
            model: setup.cfg.model.as_deref().unwrap_or(""),
            metric: &s.metric,
            seed: Some(seed),
            test: Some(s.test),
            test_std: None,
            best_epoch: Some(s.best_epoch),
        }
    }

    /// The summary figure of `results`, every run of `setup`.
    pub fn summary(setup: &'a Setup, results: &[(u64, RunSummary)]) -> PlotInfo<'a> {
        // The mean and population std summary.json and the terminal show (a run without a
        // finite figure left out, where those would print NaN).
        let (mean, std) = mean_std_of(results.iter().map(|(_, s)| s.test));
        PlotInfo {
            dataset: &setup.ds.manifest.name,
            model: setup.cfg.model.as_deref().unwrap_or(""),
            metric: setup.metric,
            seed: None,
            test: mean,
            test_std: std,
            best_epoch: None,
        }
    }
}

/// Registers a system font once; false when none is installed.
fn font_ready() -> bool {
    static READY: OnceLock<bool> = OnceLock::new();
    *READY.get_or_init(|| {
        for p in FONT_PATHS {
            if let Ok(bytes) = std::fs::read(p) {
                // plotters keeps fonts for the whole process; one leaked copy is the price.
                let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
                if plotters::style::register_font("sans-serif", FontStyle::Normal, bytes).is_ok() {
                    return true;
                }
            }
        }
        false
    })
}

/// The finite values of `split`/`metric` by epoch, in epoch order (NaN and inf left out: a
/// gap in the line is better than an axis stretched to infinity).
fn points(lines: &[MetricLine], split: &str, metric: &str) -> Vec<(usize, f64)> {
    let mut p: Vec<(usize, f64)> = lines
        .iter()
        .filter(|l| l.split == split && l.metric == metric && l.value.is_finite())
        .map(|l| (l.epoch, l.value))
        .collect();
    p.sort_by_key(|q| q.0);
    p
}

/// The selected epoch: `recorded` when the run recorded one (it may follow a rule other than
/// the best value, e.g. `select = best_and_loss`), else the first epoch with the best finite
/// validation `metric` (max, or min when lower is better), as the trainer keeps the first.
fn selected_epoch(lines: &[MetricLine], metric: &str, recorded: Option<usize>) -> Option<usize> {
    if let Some(e) = recorded.filter(|&e| e > 0) {
        return Some(e);
    }
    let up = higher_is_better(metric);
    points(lines, "val", metric)
        .into_iter()
        .fold(None, |best: Option<(usize, f64)>, (e, v)| match best {
            Some((_, b)) if (up && v <= b) || (!up && v >= b) => best,
            _ => Some((e, v)),
        })
        .map(|(e, _)| e)
}

/// Mean and population std of the finite values (None without any).
fn mean_std_of(vals: impl Iterator<Item = f64>) -> (Option<f64>, Option<f64>) {
    let v: Vec<f64> = vals.filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return (None, None);
    }
    let n = v.len() as f64;
    let mean = v.iter().sum::<f64>() / n;
    let std = (v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n).sqrt();
    (Some(mean), Some(std))
}

/// Mean and std per epoch over the runs holding the series, at the epochs *every* such run
/// has. With early stopping the runs end at different epochs; a mean over whichever runs
/// remain would jump where one drops out and look like a change in training, so the band
/// stops at the shortest run (the summary's faint per-run lines show the rest).
fn mean_std(runs: &[Vec<(usize, f64)>]) -> Vec<(usize, f64, f64)> {
    let held: Vec<&Vec<(usize, f64)>> = runs.iter().filter(|r| !r.is_empty()).collect();
    let mut by_epoch: BTreeMap<usize, Vec<f64>> = BTreeMap::new();
    for r in &held {
        for &(e, v) in r.iter() {
            by_epoch.entry(e).or_default().push(v);
        }
    }
    by_epoch
        .into_iter()
        .filter(|(_, vs)| vs.len() == held.len())
        .filter_map(|(e, vs)| match mean_std_of(vs.into_iter()) {
            (Some(m), Some(s)) => Some((e, m, s)),
            _ => None,
        })
        .collect()
}

/// Epoch ticks for epochs 1..=`max_epoch`: whole multiples of a step of 1, 2 or 5 × 10^k,
/// at most `max_ticks` of them.
fn epoch_ticks(max_epoch: usize, max_ticks: usize) -> Vec<usize> {
    let (max_epoch, max_ticks) = (max_epoch.max(1), max_ticks.max(1));
    let mut step = 1usize;
    for k in 0.. {
        let s = [1usize, 2, 5][k % 3].saturating_mul(10usize.saturating_pow((k / 3) as u32));
        step = s;
        if max_epoch / s <= max_ticks {
            break;
        }
    }
    (1..=max_epoch / step).map(|i| i * step).collect()
}

/// An epoch tick's label: the nearest whole number, never "10.0".
fn epoch_label(x: f64) -> String {
    format!("{}", x.round() as i64)
}

/// Decimals that tell apart the y ticks plotters places in `lo..hi` and print them all
/// alike (1.60, 1.65, 1.70 rather than 1.6, 1.65, 1.7).
fn y_decimals(lo: f64, hi: f64) -> usize {
    let ticks = RangedCoordf64::from(lo..hi).key_points(Y_TICKS);
    let step = ticks
        .windows(2)
        .map(|w| (w[1] - w[0]).abs())
        .fold(f64::INFINITY, f64::min);
    if !step.is_finite() || step <= 0.0 {
        return 2;
    }
    // The epsilon keeps a step of 0.1 (0.0999… in binary) at one decimal.
    let d = (-step.log10() - 1e-9).ceil();
    (d.max(0.0) as usize).min(8)
}

/// `v` with about four significant digits (0.8694, 12.35, 1234), "n/a" when not finite.
fn fmt_value(v: f64) -> String {
    if !v.is_finite() {
        return "n/a".into();
    }
    let mag = if v == 0.0 {
        0
    } else {
        v.abs().log10().floor() as i32
    };
    format!("{v:.*}", (3 - mag).clamp(0, 6) as usize)
}

/// How a series is drawn (and its legend glyph).
#[derive(Debug, Clone, Copy, PartialEq)]
enum Mark {
    Line,
    /// A thin, light line (one run among several).
    Faint,
    /// Mean line with a ± std band (`Curve::spread`).
    Band,
    /// Filled dots (a test figure at the selected epoch).
    Dot,
    /// Rings around points (the selected epoch on a curve).
    Ring,
    /// A dashed vertical line at each point's x (the selected epoch).
    VLine,
}

/// One series of a panel; no label: no legend entry.
#[derive(Debug, Clone)]
struct Curve {
    label: Option<String>,
    color: RGBColor,
    mark: Mark,
    points: Vec<(f64, f64)>,
    /// Std at each point (Band only).
    spread: Vec<f64>,
}

impl Curve {
    fn new(label: Option<String>, color: RGBColor, mark: Mark, pts: &[(usize, f64)]) -> Curve {
        Curve {
            label,
            color,
            mark,
            points: pts.iter().map(|&(e, v)| (e as f64, v)).collect(),
            spread: Vec::new(),
        }
    }
}

/// One chart: its caption, y axis name and series.
#[derive(Debug, Clone)]
struct Panel {
    caption: String,
    y_desc: String,
    curves: Vec<Curve>,
}

/// A whole figure: title and two panels sharing the epoch axis.
#[derive(Debug, Clone)]
struct Figure {
    title: String,
    panels: [Panel; 2],
    max_epoch: usize,
}

/// A legend entry: label, colour and glyph.
type Entry<'c> = (&'c str, RGBColor, Mark);

/// The legend of `curves`: one entry per labelled series that has points (a series with
/// nothing to draw — train accuracy of a mini-batch run — gets none), each label once.
fn legend(curves: &[Curve]) -> Vec<Entry<'_>> {
    let mut out: Vec<Entry<'_>> = Vec::new();
    for c in curves.iter().filter(|c| !c.points.is_empty()) {
        if let Some(l) = c.label.as_deref() {
            if !out.iter().any(|e| e.0 == l) {
                out.push((l, c.color, c.mark));
            }
        }
    }
    out
}

/// Where each legend entry goes in a strip `width` pixels wide: (row, x) per entry, left to
/// right, wrapping to a new row rather than running past the edge. `text_w` measures a label.
fn legend_layout(labels: &[&str], width: i32, text_w: impl Fn(&str) -> i32) -> Vec<(i32, i32)> {
    let (mut row, mut x) = (0, 0);
    let mut out = Vec::with_capacity(labels.len());
    for l in labels {
        let w = GLYPH_W + GLYPH_GAP + text_w(l);
        if x > 0 && x + w > width {
            row += 1;
            x = 0;
        }
        out.push((row, x));
        x += w + ENTRY_GAP;
    }
    out
}

/// The y range showing every finite value of `curves` (bands included) with some air; a
/// constant series gets a small range around it, no values (0, 1).
fn y_range(curves: &[Curve]) -> (f64, f64) {
    let vals = curves
        .iter()
        .filter(|c| c.mark != Mark::VLine)
        .flat_map(|c| {
            c.points.iter().enumerate().flat_map(move |(i, p)| {
                let s = c.spread.get(i).copied().unwrap_or(0.0);
                [p.1 - s, p.1 + s]
            })
        })
        .filter(|v| v.is_finite());
    let (lo, hi) = vals.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
        (lo.min(v), hi.max(v))
    });
    if lo > hi {
        return (0.0, 1.0);
    }
    let span = hi - lo;
    let pad = if span > 1e-12 * hi.abs().max(1.0) {
        span * 0.06
    } else {
        (hi.abs() * 0.05).max(0.05)
    };
    (lo - pad, hi + pad)
}

/// The largest epoch any curve reaches (at least 1).
fn max_epoch(panels: &[Panel]) -> usize {
    panels
        .iter()
        .flat_map(|p| p.curves.iter())
        .flat_map(|c| c.points.iter())
        .map(|p| p.0 as usize)
        .fold(1, usize::max)
}

/// The title's figure: "test acc 0.8694", "test acc 0.8640 ± 0.0182".
fn test_text(info: &PlotInfo) -> String {
    match (info.test.filter(|v| v.is_finite()), info.test_std) {
        (Some(m), Some(s)) if s.is_finite() => {
            // The std to the mean's decimals: 0.8640 ± 0.0182, not ± 0.01824.
            let mean = fmt_value(m);
            let d = mean.split_once('.').map_or(0, |(_, f)| f.len());
            format!("test {} {mean} ± {s:.d$}", info.metric)
        }
        (Some(m), _) => format!("test {} {}", info.metric, fmt_value(m)),
        (None, _) => format!("test {}: n/a", info.metric),
    }
}

/// "dataset · model · extra…", skipping empty parts.
fn title(info: &PlotInfo, extra: &[String]) -> String {
    [info.dataset.to_string(), info.model.to_string()]
        .into_iter()
        .chain(extra.iter().cloned())
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join("  ·  ")
}

/// The figure of one run.
fn run_figure(lines: &[MetricLine], info: &PlotInfo) -> Figure {
    let m = info.metric;
    let val = points(lines, "val", m);
    let test = points(lines, "test", m);
    let sel = selected_epoch(lines, m, info.best_epoch);
    let at_sel: Vec<(usize, f64)> = val.iter().filter(|p| Some(p.0) == sel).copied().collect();
    let vline = |label: String| {
        let pts: Vec<(usize, f64)> = sel.map(|e| (e, f64::NAN)).into_iter().collect();
        Curve::new(Some(label), SELECT, Mark::VLine, &pts)
    };
    let sel_text = sel.map_or(String::new(), |e| format!("selected epoch {e}"));
    let sel_val = match at_sel.first() {
        Some(&(_, v)) => format!("{sel_text} (val {m} {})", fmt_value(v)),
        None => sel_text.clone(),
    };
    let left = Panel {
        caption: "loss".into(),
        y_desc: "loss".into(),
        curves: vec![
            Curve::new(
                Some("train".into()),
                TRAIN,
                Mark::Line,
                &points(lines, "train", "loss"),
            ),
            Curve::new(
                Some("val".into()),
                VAL,
                Mark::Line,
                &points(lines, "val", "loss"),
            ),
            vline(sel_text),
        ],
    };
    // Test is scored once, for the kept model, at the selected epoch: a dot. A log with test
    // lines at every epoch gets a line.
    let test_curve = if test.len() > 1 {
        Curve::new(Some("test".into()), TEST, Mark::Line, &test)
    } else {
        Curve::new(Some("test (kept model)".into()), TEST, Mark::Dot, &test)
    };
    let right = Panel {
        caption: format!("{m} (selection metric)"),
        y_desc: m.into(),
        curves: vec![
            Curve::new(
                Some("train".into()),
                TRAIN,
                Mark::Line,
                &points(lines, "train", m),
            ),
            Curve::new(Some("val".into()), VAL, Mark::Line, &val),
            test_curve,
            vline(sel_val),
            Curve::new(None, SELECT, Mark::Ring, &at_sel),
        ],
    };
    let seed = info.seed.map_or(String::new(), |s| format!("seed {s}"));
    let panels = [left, right];
    Figure {
        title: title(info, &[seed, test_text(info)]),
        max_epoch: max_epoch(&panels),
        panels,
    }
}

/// A band curve (mean ± std over `runs`) labelled `what`; the label says when the band
/// stops before the longest run (see `mean_std`).
fn band(runs: &[Vec<(usize, f64)>], what: &str, color: RGBColor) -> Curve {
    let ms = mean_std(runs);
    let n = runs.iter().filter(|r| !r.is_empty()).count();
    let longest = runs.iter().filter_map(|r| r.last()).map(|p| p.0).max();
    let end = ms.last().map(|p| p.0);
    let mut label = format!("{what}: mean ± std of {n} runs");
    if let (Some(e), Some(l)) = (end, longest) {
        if e < l {
            label.push_str(&format!(" (to epoch {e}, which all reached)"));
        }
    }
    let mut c = Curve::new(
        Some(label),
        color,
        Mark::Band,
        &ms.iter().map(|p| (p.0, p.1)).collect::<Vec<_>>(),
    );
    c.spread = ms.iter().map(|p| p.2).collect();
    c
}

/// The summary figure over runs: each run's lines and its recorded selected epoch.
fn summary_figure(runs: &[(Vec<MetricLine>, Option<usize>)], info: &PlotInfo) -> Figure {
    let m = info.metric;
    let of = |split: &str, metric: &str| -> Vec<Vec<(usize, f64)>> {
        runs.iter().map(|(l, _)| points(l, split, metric)).collect()
    };
    let val = of("val", m);
    let left = Panel {
        caption: "loss".into(),
        y_desc: "loss".into(),
        curves: vec![
            band(&of("train", "loss"), "train", TRAIN),
            band(&of("val", "loss"), "val", VAL),
        ],
    };
    let mut curves = Vec::new();
    for v in &val {
        curves.push(Curve::new(
            Some("val, each run".into()),
            VAL,
            Mark::Faint,
            v,
        ));
    }
    curves.push(band(&val, "val", VAL));
    for ((lines, rec), v) in runs.iter().zip(&val) {
        let sel = selected_epoch(lines, m, *rec);
        let at: Vec<(usize, f64)> = v.iter().filter(|p| Some(p.0) == sel).copied().collect();
        curves.push(Curve::new(
            Some("selected epoch, each run".into()),
            SELECT,
            Mark::Ring,
            &at,
        ));
        curves.push(Curve::new(
            Some("test (kept model), each run".into()),
            TEST,
            Mark::Dot,
            &points(lines, "test", m),
        ));
    }
    let right = Panel {
        caption: format!("{m} (selection metric)"),
        y_desc: m.into(),
        curves,
    };
    let panels = [left, right];
    Figure {
        title: title(info, &[test_text(info)]),
        max_epoch: max_epoch(&panels),
        panels,
    }
}

type Area<'b> = DrawingArea<BitMapBackend<'b>, Shift>;
type DrawResult = Result<(), Box<dyn std::error::Error>>;

fn font(size: f64) -> TextStyle<'static> {
    ("sans-serif", size).into_font().color(&BLACK)
}

/// The most rows a panel's legend of `fig` takes in a panel `panel_w` pixels wide.
fn legend_rows(root: &Area, fig: &Figure, panel_w: i32) -> i32 {
    let style = font(14.0);
    let width = panel_w - LEFT_MARGIN - Y_LABEL_W - RIGHT_MARGIN;
    fig.panels
        .iter()
        .map(|p| {
            let labels: Vec<&str> = legend(&p.curves).iter().map(|e| e.0).collect();
            let layout = legend_layout(&labels, width, |t| text_width(root, t, &style));
            layout.last().map_or(0, |l| l.0 + 1)
        })
        .max()
        .unwrap_or(0)
}

/// The width of `text` in `style`, in pixels.
fn text_width(area: &Area, text: &str, style: &TextStyle) -> i32 {
    // A failed estimate only misplaces the legend a little; 8 px a character is generous.
    area.estimate_text_size(text, style)
        .map_or(text.chars().count() as i32 * 8, |s| s.0 as i32)
}

/// Draws `fig` onto `root`.
fn draw_figure(root: &Area, fig: &Figure, legend_h: i32) -> DrawResult {
    root.fill(&WHITE)?;
    let (w, _) = root.dim_in_pixel();
    let (top, body) = root.split_vertically(TITLE_H);
    // A long dataset name shrinks the title rather than running off the figure.
    let mut size = 22.0;
    while size > 11.0 && text_width(&top, &fig.title, &font(size)) > w as i32 - 20 {
        size -= 1.0;
    }
    top.draw_text(
        &fig.title,
        &font(size).pos(Pos::new(HPos::Center, VPos::Center)),
        (w as i32 / 2, TITLE_H as i32 / 2),
    )?;
    let (lp, rp) = body.split_horizontally(w / 2);
    for (area, panel) in [lp, rp].iter().zip(&fig.panels) {
        draw_panel(area, panel, fig.max_epoch, legend_h)?;
    }
    Ok(())
}

/// One panel: the chart, and under it its legend strip (`legend_h` pixels).
fn draw_panel(area: &Area, panel: &Panel, max_epoch: usize, legend_h: i32) -> DrawResult {
    let (pw, ph) = area.dim_in_pixel();
    let (chart_area, legend_area) = area.split_vertically(ph as i32 - legend_h);
    let (lo, hi) = y_range(&panel.curves);
    let decimals = y_decimals(lo, hi);
    let ticks: Vec<f64> = epoch_ticks(max_epoch, MAX_TICKS)
        .into_iter()
        .map(|t| t as f64)
        .collect();
    // Half an epoch of air each side, so the first and last points clear the axes.
    let x = EpochAxis {
        range: (0.5..max_epoch as f64 + 0.5).into(),
        ticks,
    };
    let mut chart = ChartBuilder::on(&chart_area)
        .caption(&panel.caption, font(17.0))
        .margin_top(4)
        .margin_bottom(0)
        .margin_left(LEFT_MARGIN)
        .margin_right(RIGHT_MARGIN)
        .x_label_area_size(42)
        .y_label_area_size(Y_LABEL_W)
        .build_cartesian_2d(x, lo..hi)?;
    chart
        .configure_mesh()
        .x_desc("epoch")
        .y_desc(&panel.y_desc)
        .x_label_formatter(&|x| epoch_label(*x))
        .y_labels(Y_TICKS)
        .y_label_formatter(&|y| format!("{y:.*}", decimals))
        .label_style(font(13.0))
        .axis_desc_style(font(14.0))
        .bold_line_style(BLACK.mix(0.12))
        .light_line_style(WHITE)
        .draw()?;
    // Back to front: marker lines, bands, faint lines, lines, dots, rings.
    let order = [
        Mark::VLine,
        Mark::Band,
        Mark::Faint,
        Mark::Line,
        Mark::Dot,
        Mark::Ring,
    ];
    for mark in order {
        for c in panel.curves.iter().filter(|c| c.mark == mark) {
            draw_curve(&mut chart, c, (lo, hi))?;
        }
    }
    draw_legend(&legend_area, &legend(&panel.curves), pw as i32)
}

/// The epoch axis: a float range (so points can sit half an epoch off the axes) with our
/// integer ticks. (plotters' `WithKeyPoints` over f64 lacks a label formatter.)
struct EpochAxis {
    range: RangedCoordf64,
    ticks: Vec<f64>,
}

impl Ranged for EpochAxis {
    type FormatOption = DefaultFormatting;
    type ValueType = f64;

    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        self.range.map(value, limit)
    }

    fn key_points<H: KeyPointHint>(&self, hint: H) -> Vec<f64> {
        // No light grid lines between epochs.
        if hint.weight().allow_light_points() {
            Vec::new()
        } else {
            self.ticks.clone()
        }
    }

    fn range(&self) -> std::ops::Range<f64> {
        self.range.range()
    }
}

/// A panel's coordinates: epochs, values.
type Xy = Cartesian2d<EpochAxis, RangedCoordf64>;
type Chart<'a, 'b> = ChartContext<'a, BitMapBackend<'b>, Xy>;

/// `c` onto `chart`, whose y axis spans `lo..hi`.
fn draw_curve(chart: &mut Chart, c: &Curve, (lo, hi): (f64, f64)) -> DrawResult {
    let pts = c.points.clone();
    match c.mark {
        Mark::VLine => {
            for p in &pts {
                chart.draw_series(DashedLineSeries::new(
                    [(p.0, lo), (p.0, hi)],
                    6,
                    4,
                    c.color.stroke_width(1),
                ))?;
            }
        }
        Mark::Band => {
            let upper = pts.iter().zip(&c.spread).map(|(p, s)| (p.0, p.1 + s));
            let lower = pts.iter().zip(&c.spread).rev().map(|(p, s)| (p.0, p.1 - s));
            match (pts.as_slice(), c.spread.as_slice()) {
                // One epoch has no band to fill: a bar of ± std instead.
                ([p], [s]) => {
                    chart.draw_series(std::iter::once(PathElement::new(
                        vec![(p.0, p.1 - s), (p.0, p.1 + s)],
                        c.color.mix(0.5).stroke_width(3),
                    )))?;
                }
                _ => {
                    chart.draw_series(std::iter::once(Polygon::new(
                        upper.chain(lower).collect::<Vec<_>>(),
                        c.color.mix(0.2).filled(),
                    )))?;
                }
            }
            draw_line(chart, pts, c.color.stroke_width(2))?;
        }
        Mark::Faint => draw_line(chart, pts, c.color.mix(0.35).stroke_width(1))?,
        Mark::Line => draw_line(chart, pts, c.color.stroke_width(2))?,
        Mark::Dot => {
            chart.draw_series(pts.into_iter().map(|p| Circle::new(p, 5, c.color.filled())))?;
        }
        Mark::Ring => {
            chart.draw_series(
                pts.into_iter()
                    .map(|p| Circle::new(p, 6, c.color.stroke_width(2))),
            )?;
        }
    }
    Ok(())
}

/// A line through `pts`; a lone point (a run of one epoch) as a dot, which a line would not
/// show.
fn draw_line(chart: &mut Chart, pts: Vec<(f64, f64)>, style: ShapeStyle) -> DrawResult {
    if pts.len() == 1 {
        chart.draw_series(pts.into_iter().map(|p| Circle::new(p, 3, style.filled())))?;
    } else {
        chart.draw_series(LineSeries::new(pts, style))?;
    }
    Ok(())
}

/// The legend entries in `area`, aligned with the plotting area above.
fn draw_legend(area: &Area, entries: &[Entry], panel_w: i32) -> DrawResult {
    let style = font(14.0);
    let width = panel_w - LEFT_MARGIN - Y_LABEL_W - RIGHT_MARGIN;
    let labels: Vec<&str> = entries.iter().map(|e| e.0).collect();
    let layout = legend_layout(&labels, width, |t| text_width(area, t, &style));
    let x0 = LEFT_MARGIN + Y_LABEL_W;
    for ((label, color, mark), (row, dx)) in entries.iter().zip(layout) {
        let (x, y) = (x0 + dx, 4 + row * LEGEND_ROW_H + LEGEND_ROW_H / 2);
        let mid = x + GLYPH_W / 2;
        match mark {
            Mark::Line => area.draw(&PathElement::new(
                vec![(x, y), (x + GLYPH_W, y)],
                color.stroke_width(2),
            ))?,
            Mark::Faint => area.draw(&PathElement::new(
                vec![(x, y), (x + GLYPH_W, y)],
                color.mix(0.35).stroke_width(1),
            ))?,
            Mark::Band => {
                area.draw(&Rectangle::new(
                    [(x, y - 6), (x + GLYPH_W, y + 6)],
                    color.mix(0.2).filled(),
                ))?;
                area.draw(&PathElement::new(
                    vec![(x, y), (x + GLYPH_W, y)],
                    color.stroke_width(2),
                ))?;
            }
            Mark::Dot => area.draw(&Circle::new((mid, y), 5, color.filled()))?,
            Mark::Ring => area.draw(&Circle::new((mid, y), 6, color.stroke_width(2)))?,
            Mark::VLine => {
                for (a, b) in [(-9, -4), (-1, 3), (6, 9)] {
                    area.draw(&PathElement::new(
                        vec![(mid, y + a), (mid, y + b)],
                        color.stroke_width(1),
                    ))?;
                }
            }
        }
        area.draw_text(
            label,
            &style.pos(Pos::new(HPos::Left, VPos::Center)),
            (x + GLYPH_W + GLYPH_GAP, y),
        )?;
    }
    Ok(())
}

/// Writes a PNG of `size` drawn by `draw` to `path`: drawn into a hidden temp file beside it
/// (a name `--force` knows as scalegnn's should a kill leave it), then renamed.
fn write_png(
    path: &Path,
    size: (u32, u32),
    draw: impl FnOnce(&Area) -> DrawResult,
) -> Result<(), TrainError> {
    let name = path
        .file_name()
        .map_or("plot".into(), |n| n.to_string_lossy().into_owned());
    let tmp = path.with_file_name(format!(".{name}.tmp-{}.png", std::process::id()));
    // A link planted at the temp name is removed, not drawn through.
    let _ = std::fs::remove_file(&tmp);
    let res = (|| -> DrawResult {
        let root = BitMapBackend::new(&tmp, size).into_drawing_area();
        draw(&root)?;
        root.present()?;
        Ok(())
    })();
    if let Err(e) = res {
        let _ = std::fs::remove_file(&tmp);
        return Err(TrainError::io(path, std::io::Error::other(e.to_string())));
    }
    std::fs::rename(&tmp, path).map_err(|e| TrainError::io(path, e))
}

/// Draws `fig` into `path`, the height grown to fit its legends.
fn render(fig: &Figure, path: &Path) -> Result<(), TrainError> {
    // The legend's rows depend on text widths, which need a drawing area to measure with.
    let probe = {
        let mut buf = vec![0u8; 3];
        let area = BitMapBackend::with_buffer(&mut buf, (1, 1)).into_drawing_area();
        legend_rows(&area, fig, SIZE.0 as i32 / 2)
    };
    let legend_h = probe.max(1) * LEGEND_ROW_H + 8;
    let size = (SIZE.0, SIZE.1 + legend_h as u32);
    write_png(path, size, |root| draw_figure(root, fig, legend_h))
}

/// Draws one run's curves into `path`: train and validation loss (left), the selection
/// metric on train/val/test (right), the selected epoch marked; title from `info`. Returns
/// false, drawing nothing, when no font is available.
pub fn plot_curves(lines: &[MetricLine], info: &PlotInfo, path: &Path) -> Result<bool, TrainError> {
    if !font_ready() {
        return Ok(false);
    }
    render(&run_figure(lines, info), path)?;
    Ok(true)
}

/// Draws the summary of several runs into `path`: mean ± std bands of train and validation
/// loss and of the validation selection metric, each run's selected epoch and test figure.
/// `runs` holds each run's lines and recorded selected epoch. False without a font.
pub fn plot_summary(
    runs: &[(Vec<MetricLine>, Option<usize>)],
    info: &PlotInfo,
    path: &Path,
) -> Result<bool, TrainError> {
    if !font_ready() {
        return Ok(false);
    }
    render(&summary_figure(runs, info), path)?;
    Ok(true)
}

/// The metric lines of `path` (a run's metrics.jsonl); lines that do not parse are skipped
/// and an unreadable file gives none: a figure is no reason to fail a finished command.
pub fn read_lines(path: &Path) -> Vec<MetricLine> {
    let Ok(f) = scalegnn_npy::open_regular(path) else {
        return Vec::new();
    };
    use std::io::BufRead;
    std::io::BufReader::new(f)
        .lines()
        .map_while(Result::ok)
        .filter_map(|l| serde_json::from_str(&l).ok())
        .collect()
}

/// SAGMM's plots into `path`: each expert's importance over the epochs (left) and how many
/// nodes use 1, 2, … experts (right); false, drawing nothing, without a font.
pub fn plot_moe(lines: &[MetricLine], hist: &[u64], path: &Path) -> Result<bool, TrainError> {
    if !font_ready() {
        return Ok(false);
    }
    let series = crate::sagmm::importance_series(lines);
    write_png(path, (1000, 400), |root| {
        let max_epoch = series
            .iter()
            .flat_map(|(_, p)| p.iter().map(|q| q.0))
            .fold(1.0, f64::max);
        let max_imp = series
            .iter()
            .flat_map(|(_, p)| p.iter().map(|q| q.1))
            .fold(1e-6, f64::max)
            * 1.05;
        root.fill(&WHITE)?;
        let (left, right) = root.split_horizontally(500);
        let mut c = ChartBuilder::on(&left)
            .caption("expert importance", ("sans-serif", 20))
            .margin(12)
            .x_label_area_size(32)
            .y_label_area_size(56)
            .build_cartesian_2d(0f64..max_epoch, 0f64..max_imp)?;
        c.configure_mesh().x_desc("epoch").draw()?;
        for (i, (name, pts)) in series.iter().enumerate() {
            let color = Palette99::pick(i).to_rgba();
            c.draw_series(LineSeries::new(pts.clone(), color))?
                .label(name.clone())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], color));
        }
        c.configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()?;
        let top = hist.iter().copied().max().unwrap_or(1).max(1) as f64 * 1.05;
        let mut c = ChartBuilder::on(&right)
            .caption("experts per node", ("sans-serif", 20))
            .margin(12)
            .x_label_area_size(32)
            .y_label_area_size(56)
            .build_cartesian_2d(0.5f64..hist.len() as f64 + 0.5, 0f64..top)?;
        c.configure_mesh()
            .x_desc("experts used")
            .y_desc("nodes")
            .draw()?;
        c.draw_series(hist.iter().enumerate().map(|(k, &n)| {
            let x = (k + 1) as f64;
            Rectangle::new([(x - 0.35, 0.0), (x + 0.35, n as f64)], BLUE.filled())
        }))?;
        Ok(())
    })?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(epoch: usize, split: &str, metric: &str, value: f64) -> MetricLine {
        MetricLine {
            epoch,
            split: split.into(),
            metric: metric.into(),
            value,
        }
    }

    /// A log like a run's: per epoch train loss, val loss and `metric` (and train `metric`
    /// when `train_metric`, as full-batch runs log it), then test at `best`.
    fn log(metric: &str, vals: &[f64], train_metric: bool, best: usize) -> Vec<MetricLine> {
        let mut l = Vec::new();
        for (i, &v) in vals.iter().enumerate() {
            let e = i + 1;
            l.push(line(e, "train", "loss", 2.0 / e as f64));
            if train_metric {
                l.push(line(e, "train", metric, v + 0.05));
            }
            l.push(line(e, "train", "fetch_ms", 3.0));
            l.push(line(e, "val", metric, v));
            l.push(line(e, "val", "loss", 1.5 / e as f64));
        }
        l.push(line(best, "test", "loss", 0.4));
        l.push(line(best, "test", metric, 0.77));
        l
    }

    fn info(metric: &str) -> PlotInfo<'_> {
        PlotInfo {
            dataset: "tiny",
            model: "gcn",
            metric,
            seed: Some(3),
            test: Some(0.869_396_79),
            test_std: None,
            best_epoch: Some(3),
        }
    }

    fn labels(p: &Panel) -> Vec<String> {
        legend(&p.curves).iter().map(|e| e.0.to_string()).collect()
    }

    #[test]
    fn a_series_without_points_gets_no_legend_entry() {
        let empty = Curve::new(Some("train".into()), TRAIN, Mark::Line, &[]);
        let unlabelled = Curve::new(None, SELECT, Mark::Ring, &[(1, 0.5)]);
        assert!(legend(&[empty.clone(), unlabelled]).is_empty());
        let val = Curve::new(Some("val".into()), VAL, Mark::Line, &[(1, 0.5)]);
        assert_eq!(legend(&[empty, val]).len(), 1);
        // A mini-batch run logs no train accuracy: no "train" on the right, but on the left.
        let lines = log("acc", &[0.3, 0.5, 0.6, 0.55], false, 3);
        let fig = run_figure(&lines, &info("acc"));
        assert_eq!(
            labels(&fig.panels[1]),
            [
                "val",
                "test (kept model)",
                "selected epoch 3 (val acc 0.6000)"
            ]
        );
        assert_eq!(labels(&fig.panels[0]), ["train", "val", "selected epoch 3"]);
        // Timing metrics are never drawn.
        let drawn: Vec<&Curve> = fig.panels.iter().flat_map(|p| &p.curves).collect();
        assert!(drawn.iter().all(|c| c.points.iter().all(|p| p.1 != 3.0)));
        // Full batch: train accuracy is there, and listed.
        let lines = log("acc", &[0.3, 0.5, 0.6, 0.55], true, 3);
        assert_eq!(
            labels(&run_figure(&lines, &info("acc")).panels[1])[0],
            "train"
        );
    }

    #[test]
    fn a_run_without_val_lines_has_no_val_entry_and_no_marker() {
        let lines = vec![line(1, "train", "loss", 1.0), line(2, "train", "loss", 0.8)];
        let mut i = info("acc");
        i.best_epoch = None;
        let fig = run_figure(&lines, &i);
        assert_eq!(labels(&fig.panels[0]), ["train"]);
        assert!(labels(&fig.panels[1]).is_empty());
        assert_eq!(fig.max_epoch, 2);
    }

    #[test]
    fn the_selected_epoch_follows_the_metric_direction() {
        let acc = log("acc", &[0.5, 0.8, 0.8, 0.7], false, 2);
        // Higher is better; a tie keeps the first, as the trainer does.
        assert_eq!(selected_epoch(&acc, "acc", None), Some(2));
        let rmse = log("rmse", &[3.0, 2.5, 2.0, 2.0, 2.2], false, 3);
        assert_eq!(selected_epoch(&rmse, "rmse", None), Some(3));
        let mse = log("mse", &[3.0, 4.0], false, 1);
        assert_eq!(selected_epoch(&mse, "mse", None), Some(1));
        // Not finite values are no candidates.
        let odd = log("acc", &[f64::NAN, 0.4, f64::INFINITY, 0.3], false, 2);
        assert_eq!(selected_epoch(&odd, "acc", None), Some(2));
        let odd = log("rmse", &[f64::NEG_INFINITY, 0.4, f64::NAN], false, 2);
        assert_eq!(selected_epoch(&odd, "rmse", None), Some(2));
        // The run's own record wins (best_and_loss may keep another epoch); 0 is "none".
        assert_eq!(selected_epoch(&acc, "acc", Some(4)), Some(4));
        assert_eq!(selected_epoch(&acc, "acc", Some(0)), Some(2));
        assert_eq!(selected_epoch(&[], "acc", None), None);
        assert_eq!(selected_epoch(&[], "acc", Some(0)), None);
    }

    #[test]
    fn mean_and_std_cover_the_epochs_every_run_has() {
        let runs = vec![
            vec![(1, 1.0), (2, 2.0), (3, 3.0)],
            vec![(1, 3.0), (2, 4.0)],
            // A run without this series (its file unreadable) does not empty the band.
            vec![],
        ];
        assert_eq!(mean_std(&runs), [(1, 2.0, 1.0), (2, 3.0, 1.0)]);
        // An epoch one run skipped (a NaN left out by `points`) drops out.
        let lines = [
            vec![line(1, "val", "acc", 0.2), line(2, "val", "acc", f64::NAN)],
            vec![line(1, "val", "acc", 0.4), line(2, "val", "acc", 0.5)],
        ];
        let runs: Vec<_> = lines.iter().map(|l| points(l, "val", "acc")).collect();
        let ms = mean_std(&runs);
        assert_eq!(ms.len(), 1);
        assert_eq!(ms[0].0, 1);
        assert!((ms[0].1 - 0.3).abs() < 1e-12 && (ms[0].2 - 0.1).abs() < 1e-12);
        assert!(mean_std(&[]).is_empty());
        assert!(mean_std(&[vec![], vec![]]).is_empty());
        // The summary band stops at the shortest run and says so.
        let c = band(
            &[vec![(1, 1.0), (2, 1.0), (3, 1.0)], vec![(1, 1.0)]],
            "val",
            VAL,
        );
        assert_eq!(c.points, [(1.0, 1.0)]);
        assert!(c.label.as_deref().is_some_and(|l| l.contains("to epoch 1")));
        let c = band(
            &[vec![(1, 1.0), (2, 1.0)], vec![(1, 3.0), (2, 1.0)]],
            "val",
            VAL,
        );
        assert_eq!(c.spread, [1.0, 0.0]);
        assert!(c.label.as_deref().is_some_and(|l| !l.contains("to epoch")));
    }

    #[test]
    fn epoch_ticks_are_whole_epochs_in_range_and_few() {
        for max in [
            1, 2, 3, 7, 10, 11, 20, 21, 60, 99, 100, 101, 250, 999, 1_000_000,
        ] {
            let t = epoch_ticks(max, MAX_TICKS);
            assert!(!t.is_empty() && t.len() <= MAX_TICKS, "{max}: {t:?}");
            assert!(t.iter().all(|&e| (1..=max).contains(&e)), "{max}: {t:?}");
            assert!(t.windows(2).all(|w| w[0] < w[1]), "{max}: {t:?}");
        }
        assert_eq!(epoch_ticks(1, MAX_TICKS), [1]);
        assert_eq!(epoch_ticks(0, MAX_TICKS), [1]);
        assert_eq!(epoch_ticks(7, MAX_TICKS), [1, 2, 3, 4, 5, 6, 7]);
        assert_eq!(
            epoch_ticks(20, MAX_TICKS),
            [2, 4, 6, 8, 10, 12, 14, 16, 18, 20]
        );
        assert_eq!(epoch_ticks(60, MAX_TICKS), [10, 20, 30, 40, 50, 60]);
        assert_eq!(epoch_label(10.0), "10");
        assert_eq!(epoch_label(9.999_999), "10");
        assert_eq!(epoch_label(1.0), "1");
    }

    #[test]
    fn values_print_with_steady_decimals() {
        assert_eq!(fmt_value(0.869_396_79), "0.8694");
        assert_eq!(fmt_value(12.3456), "12.35");
        assert_eq!(fmt_value(1234.4), "1234");
        assert_eq!(fmt_value(0.0), "0.000");
        assert_eq!(fmt_value(f64::NAN), "n/a");
        // y ticks: one decimal count for the whole axis.
        assert_eq!(y_decimals(1.35, 1.75), 2);
        assert_eq!(y_decimals(0.05, 0.95), 1);
        assert_eq!(y_decimals(0.0, 100.0), 0);
        let mut i = info("acc");
        i.test = Some(0.864_047);
        i.test_std = Some(0.018_244);
        assert_eq!(test_text(&i), "test acc 0.8640 ± 0.0182");
        i.test = None;
        assert_eq!(test_text(&i), "test acc: n/a");
        let t = run_figure(&[], &info("rmse")).title;
        assert!(
            t.contains("tiny") && t.contains("gcn") && t.contains("test rmse 0.8694"),
            "{t}"
        );
    }

    #[test]
    fn the_y_range_holds_every_finite_value() {
        assert_eq!(y_range(&[]), (0.0, 1.0));
        let c = Curve::new(None, VAL, Mark::Line, &[(1, 2.0), (2, f64::NAN), (3, 4.0)]);
        let (lo, hi) = y_range(&[c]);
        assert!(lo < 2.0 && hi > 4.0 && hi.is_finite());
        let flat = Curve::new(None, VAL, Mark::Line, &[(1, 0.5), (2, 0.5)]);
        let (lo, hi) = y_range(&[flat]);
        assert!(lo < 0.5 && hi > 0.5);
        let mut b = Curve::new(None, VAL, Mark::Band, &[(1, 1.0)]);
        b.spread = vec![2.0];
        let (lo, hi) = y_range(&[b]);
        assert!(lo < -1.0 && hi > 3.0);
    }

    #[test]
    fn the_legend_wraps_inside_its_strip() {
        let layout = legend_layout(&["a", "b", "c"], 300, |_| 100);
        assert_eq!(layout, [(0, 0), (0, 152), (1, 0)]);
        // A label wider than the strip still gets a row of its own.
        assert_eq!(legend_layout(&["a", "b"], 50, |_| 100), [(0, 0), (1, 0)]);
        assert!(legend_layout(&[], 300, |_| 1).is_empty());
    }

    #[test]
    fn odd_logs_draw_or_say_no_font_without_failing() {
        let dir = tempfile::tempdir().unwrap();
        let nan = vec![
            line(1, "train", "loss", f64::NAN),
            line(1, "val", "acc", f64::NAN),
        ];
        let one = log("acc", &[0.5], true, 1);
        let rmse = log("rmse", &[3.0, 2.0, 2.5], false, 2);
        for (k, lines) in [vec![], nan, one.clone(), rmse.clone()].iter().enumerate() {
            let p = dir.path().join(format!("c{k}.png"));
            let drawn = plot_curves(lines, &info("acc"), &p).unwrap();
            assert_eq!(drawn, p.exists(), "{k}");
        }
        let runs = [(one, Some(1)), (rmse, None), (vec![], None)];
        for (k, r) in [&runs[..], &runs[..1], &[]].iter().enumerate() {
            let p = dir.path().join(format!("s{k}.png"));
            let drawn = plot_summary(r, &info("rmse"), &p).unwrap();
            assert_eq!(drawn, p.exists(), "{k}");
        }
        // No temp file is left behind.
        let names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert!(names.iter().all(|n| !n.contains("tmp")), "{names:?}");
    }

    #[test]
    fn read_lines_skips_what_does_not_parse() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("metrics.jsonl");
        std::fs::write(
            &p,
            "{\"epoch\":1,\"split\":\"val\",\"metric\":\"acc\",\"value\":0.5}\nnot json\n",
        )
        .unwrap();
        assert_eq!(read_lines(&p), [line(1, "val", "acc", 0.5)]);
        assert!(read_lines(&dir.path().join("absent")).is_empty());
        assert!(read_lines(dir.path()).is_empty());
    }
}
