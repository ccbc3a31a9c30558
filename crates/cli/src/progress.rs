//! Progress bars (indicatif) for long library operations; hidden when stdout is not a terminal.

use std::io::IsTerminal;
use std::sync::Mutex;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use scalegnn_data::Progress;

/// A `Progress` sink that draws one bar (or spinner) per stage on stderr.
pub struct Bars {
    current: Mutex<Option<ProgressBar>>,
    visible: bool,
}

impl Bars {
    /// Bars shown only when stdout is a terminal (so piped output stays clean).
    pub fn new() -> Bars {
        Bars {
            current: Mutex::new(None),
            visible: std::io::stdout().is_terminal(),
        }
    }

    /// Ends the current bar.
    pub fn finish(&self) {
        if let Ok(mut cur) = self.current.lock() {
            if let Some(b) = cur.take() {
                b.finish_and_clear();
            }
        }
    }
}

impl Progress for Bars {
    fn stage(&self, name: &str, total: Option<u64>) {
        let Ok(mut cur) = self.current.lock() else {
            return;
        };
        if let Some(b) = cur.take() {
            b.finish_and_clear();
        }
        let bar = match total {
            Some(t) => ProgressBar::new(t).with_style(
                ProgressStyle::with_template(
                    "{msg:24} [{bar:40}] {percent:>3}% {elapsed}/{duration}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
            ),
            None => ProgressBar::new_spinner().with_style(
                ProgressStyle::with_template("{spinner} {msg} {elapsed}")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            ),
        };
        if self.visible {
            bar.set_draw_target(ProgressDrawTarget::stderr());
            bar.enable_steady_tick(std::time::Duration::from_millis(120));
        } else {
            bar.set_draw_target(ProgressDrawTarget::hidden());
        }
        bar.set_message(name.to_string());
        *cur = Some(bar);
    }

    fn advance(&self, n: u64) {
        if let Ok(cur) = self.current.lock() {
            if let Some(b) = cur.as_ref() {
                b.inc(n);
            }
        }
    }
}
