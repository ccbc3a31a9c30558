//! Metrics as JSON lines (`{"epoch":3,"split":"val","metric":"acc","value":0.81}`).

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::TrainError;

/// One metric value.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct MetricLine {
    pub epoch: usize,
    pub split: String,
    pub metric: String,
    pub value: f64,
}

/// Appends metric lines to a file (flushed per epoch) and keeps them in memory.
pub struct MetricsLog {
    out: Option<(BufWriter<File>, std::path::PathBuf)>,
    pub lines: Vec<MetricLine>,
}

impl MetricsLog {
    /// A log kept in memory only.
    pub fn memory() -> MetricsLog {
        MetricsLog {
            out: None,
            lines: Vec::new(),
        }
    }

    /// A log also written to `path` (created or truncated; never through a symlink).
    pub fn to_file(path: &Path) -> Result<MetricsLog, TrainError> {
        use std::os::unix::fs::OpenOptionsExt;
        let f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .custom_flags(libc::O_NOFOLLOW)
            .open(path)
            .map_err(|e| TrainError::io(path, e))?;
        Ok(MetricsLog {
            out: Some((BufWriter::new(f), path.to_path_buf())),
            lines: Vec::new(),
        })
    }

    /// Continues the log at `path` after its first `keep` lines (a resumed run: later lines
    /// belong to the epoch that was interrupted and will be written again). The kept lines
    /// are rewritten through a temporary file and a rename, so a kill during the rewrite
    /// leaves the old log whole.
    pub fn resume(path: &Path, keep: usize) -> Result<MetricsLog, TrainError> {
        use std::io::{BufRead, BufReader};
        use std::os::unix::fs::OpenOptionsExt;
        let f = scalegnn_npy::open_regular(path)?;
        let mut lines = Vec::with_capacity(keep);
        let mut raw = String::new();
        for (k, line) in BufReader::new(f).lines().take(keep).enumerate() {
            let line = line.map_err(|e| TrainError::io(path, e))?;
            lines.push(serde_json::from_str::<MetricLine>(&line).map_err(|e| {
                TrainError::Checkpoint {
                    path: path.to_path_buf(),
                    reason: format!("line {}: {e}", k + 1),
                }
            })?);
            raw.push_str(&line);
            raw.push('\n');
        }
        if lines.len() < keep {
            return Err(TrainError::Checkpoint {
                path: path.to_path_buf(),
                reason: format!(
                    "holds {} lines, the saved state counts {keep}: it was changed",
                    lines.len()
                ),
            });
        }
        let tmp = path.with_extension("jsonl.tmp");
        let io = |e| TrainError::io(&tmp, e);
        {
            let mut t = std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .custom_flags(libc::O_NOFOLLOW)
                .open(&tmp)
                .map_err(io)?;
            t.write_all(raw.as_bytes()).map_err(io)?;
            t.sync_all().map_err(io)?;
        }
        std::fs::rename(&tmp, path).map_err(|e| TrainError::io(path, e))?;
        let f = std::fs::OpenOptions::new()
            .append(true)
            .custom_flags(libc::O_NOFOLLOW)
            .open(path)
            .map_err(|e| TrainError::io(path, e))?;
        Ok(MetricsLog {
            out: Some((BufWriter::new(f), path.to_path_buf())),
            lines,
        })
    }

    /// Records one value.
    pub fn push(
        &mut self,
        epoch: usize,
        split: &str,
        metric: &str,
        value: f64,
    ) -> Result<(), TrainError> {
        let line = MetricLine {
            epoch,
            split: split.into(),
            metric: metric.into(),
            value,
        };
        if let Some((w, p)) = &mut self.out {
            let text =
                serde_json::to_string(&line).map_err(|e| TrainError::io(p.clone(), e.into()))?;
            writeln!(w, "{text}").map_err(|e| TrainError::io(p.clone(), e))?;
        }
        self.lines.push(line);
        Ok(())
    }

    /// Flushes buffered lines to disk.
    pub fn flush(&mut self) -> Result<(), TrainError> {
        if let Some((w, p)) = &mut self.out {
            w.flush().map_err(|e| TrainError::io(p.clone(), e))?;
        }
        Ok(())
    }
}
