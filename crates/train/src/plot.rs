//! Training curves as a PNG (plotters): train loss and train/val accuracy per epoch.
//! Text needs a TrueType font; we load a system one (DejaVu/Liberation) rather than ship one.

use std::path::Path;
use std::sync::OnceLock;

use plotters::prelude::*;

use crate::{MetricLine, TrainError};

const FONT_PATHS: &[&str] = &[
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
    "/Library/Fonts/Arial.ttf",
];

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

fn series(lines: &[MetricLine], split: &str, metric: &str) -> Vec<(f64, f64)> {
    lines
        .iter()
        .filter(|l| l.split == split && l.metric == metric && l.value.is_finite())
        .map(|l| (l.epoch as f64, l.value))
        .collect()
}

/// Draws the curves into `path` (written to a temp file, then renamed); returns false, drawing
/// nothing, when no font is available.
pub fn plot_curves(lines: &[MetricLine], path: &Path) -> Result<bool, TrainError> {
    if !font_ready() {
        return Ok(false);
    }
    let tmp = path.with_extension(format!("tmp-{}.png", std::process::id()));
    // A link planted at the temp name is removed, not drawn through.
    let _ = std::fs::remove_file(&tmp);
    let draw = || -> Result<(), Box<dyn std::error::Error>> {
        let loss = series(lines, "train", "loss");
        let tr = series(lines, "train", "acc");
        let va = series(lines, "val", "acc");
        let max_epoch = loss.iter().map(|p| p.0).fold(1.0, f64::max);
        let max_loss = loss.iter().map(|p| p.1).fold(1e-3, f64::max) * 1.05;
        let root = BitMapBackend::new(&tmp, (1000, 400)).into_drawing_area();
        root.fill(&WHITE)?;
        let (left, right) = root.split_horizontally(500);
        let mut c = ChartBuilder::on(&left)
            .caption("train loss", ("sans-serif", 20))
            .margin(12)
            .x_label_area_size(32)
            .y_label_area_size(48)
            .build_cartesian_2d(0f64..max_epoch, 0f64..max_loss)?;
        c.configure_mesh().x_desc("epoch").draw()?;
        c.draw_series(LineSeries::new(loss, &RED))?;
        let mut c = ChartBuilder::on(&right)
            .caption("accuracy", ("sans-serif", 20))
            .margin(12)
            .x_label_area_size(32)
            .y_label_area_size(48)
            .build_cartesian_2d(0f64..max_epoch, 0f64..1.0)?;
        c.configure_mesh().x_desc("epoch").draw()?;
        c.draw_series(LineSeries::new(tr, &BLUE))?
            .label("train")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], BLUE));
        c.draw_series(LineSeries::new(va, &GREEN))?
            .label("val")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], GREEN));
        c.configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()?;
        root.present()?;
        Ok(())
    };
    if let Err(e) = draw() {
        let _ = std::fs::remove_file(&tmp);
        return Err(TrainError::io(path, std::io::Error::other(e.to_string())));
    }
    std::fs::rename(&tmp, path).map_err(|e| TrainError::io(path, e))?;
    Ok(true)
}

/// SAGMM's plots into `path`: each expert's importance over the epochs (left) and how many
/// nodes use 1, 2, … experts (right); false, drawing nothing, without a font.
pub fn plot_moe(lines: &[MetricLine], hist: &[u64], path: &Path) -> Result<bool, TrainError> {
    if !font_ready() {
        return Ok(false);
    }
    let tmp = path.with_extension(format!("tmp-{}.png", std::process::id()));
    // A link planted at the temp name is removed, not drawn through.
    let _ = std::fs::remove_file(&tmp);
    let series = crate::sagmm::importance_series(lines);
    let draw = || -> Result<(), Box<dyn std::error::Error>> {
        let max_epoch = series
            .iter()
            .flat_map(|(_, p)| p.iter().map(|q| q.0))
            .fold(1.0, f64::max);
        let max_imp = series
            .iter()
            .flat_map(|(_, p)| p.iter().map(|q| q.1))
            .fold(1e-6, f64::max)
            * 1.05;
        let root = BitMapBackend::new(&tmp, (1000, 400)).into_drawing_area();
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
        root.present()?;
        Ok(())
    };
    if let Err(e) = draw() {
        let _ = std::fs::remove_file(&tmp);
        return Err(TrainError::io(path, std::io::Error::other(e.to_string())));
    }
    std::fs::rename(&tmp, path).map_err(|e| TrainError::io(path, e))?;
    Ok(true)
}
