//! Where derived tables live and how they get there: `<base>/derived/<name>-<key>/`, built
//! in a temp directory beside it (`.<name>-<key>.tmp-<pid>`), fsynced and renamed into
//! place, so a killed build never leaves a partial table under the final name. Each table
//! carries `derived.json` (the marker: who wrote it and from what); only directories with
//! that marker are ever removed.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::key::{FileSum, KeyInputs};
use super::scratch::io;
use super::{abort_point, DerivedError, MARKER_FILE};

/// The `producer` of every marker this crate writes.
pub(crate) const PRODUCER: &str = "scalegnn-loader";

/// File a temp directory gets at creation, so a dead build's leftovers are recognisably ours.
const BUILDING_FILE: &str = ".scalegnn-building";

/// Largest marker read (a real one is a few KiB).
const MAX_MARKER_BYTES: u64 = 1 << 20;

/// The content of `derived.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Marker {
    pub producer: String,
    pub table: String,
    pub key: String,
    pub inputs: KeyInputs,
    pub shape: Vec<usize>,
    pub files: BTreeMap<String, FileSum>,
    /// How it was built (budget, plan, time): informative, not part of the key.
    #[serde(default)]
    pub build: serde_json::Value,
}

/// The marker of `dir`, or None when it has none, or one that is not ours or not readable.
pub(crate) fn read_marker(dir: &Path) -> Option<Marker> {
    let path = dir.join(MARKER_FILE);
    let f = scalegnn_npy::open_regular(&path).ok()?;
    let mut text = String::new();
    f.take(MAX_MARKER_BYTES + 1)
        .read_to_string(&mut text)
        .ok()?;
    if text.len() as u64 > MAX_MARKER_BYTES {
        return None;
    }
    let m: Marker = serde_json::from_str(&text).ok()?;
    (m.producer == PRODUCER).then_some(m)
}

fn fsync_dir(dir: &Path) -> Result<(), DerivedError> {
    std::fs::File::open(dir)
        .and_then(|f| f.sync_all())
        .map_err(|e| io(dir, e))
}

/// True when `path` is a real directory (not a link to one).
pub(crate) fn is_real_dir(path: &Path) -> bool {
    std::fs::symlink_metadata(path).is_ok_and(|m| m.is_dir())
}

/// A table being built; removed on drop unless committed.
pub(crate) struct TempTable {
    dir: PathBuf,
    committed: bool,
}

impl TempTable {
    /// Creates `<derived>/.<name>.tmp-<pid>` (and `derived` itself), after removing temp
    /// directories that dead builds left there. Fails when `derived` is not writable.
    pub(crate) fn create(derived: &Path, name: &str) -> std::io::Result<TempTable> {
        std::fs::create_dir_all(derived)?;
        remove_dead_temps(derived);
        let dir = derived.join(format!(".{name}.tmp-{}", std::process::id()));
        if is_real_dir(&dir) {
            std::fs::remove_dir_all(&dir)?;
        }
        std::fs::create_dir(&dir)?;
        let t = TempTable {
            dir,
            committed: false,
        };
        std::fs::write(t.dir.join(BUILDING_FILE), PRODUCER)?;
        Ok(t)
    }

    /// The temp directory.
    pub(crate) fn path(&self) -> &Path {
        &self.dir
    }

    /// Writes the marker (fsynced), fsyncs the directory and renames it to `target`. Returns
    /// false, leaving the existing directory alone, when `target` appeared meanwhile (another
    /// process built the same table first).
    pub(crate) fn commit(mut self, marker: &Marker, target: &Path) -> Result<bool, DerivedError> {
        let mpath = self.dir.join(MARKER_FILE);
        let text = serde_json::to_string_pretty(marker).map_err(|e| DerivedError::Marker {
            path: mpath.clone(),
            reason: e.to_string(),
        })?;
        std::fs::File::create(&mpath)
            .and_then(|mut f| {
                f.write_all(text.as_bytes())?;
                f.write_all(b"\n")?;
                f.sync_all()
            })
            .map_err(|e| io(&mpath, e))?;
        let _ = std::fs::remove_file(self.dir.join(BUILDING_FILE));
        fsync_dir(&self.dir)?;
        abort_point("commit");
        if let Err(e) = std::fs::rename(&self.dir, target) {
            if std::fs::symlink_metadata(target).is_ok() {
                return Ok(false);
            }
            return Err(io(target, e));
        }
        self.committed = true;
        if let Some(parent) = target.parent() {
            fsync_dir(parent)?;
        }
        Ok(true)
    }
}

impl Drop for TempTable {
    fn drop(&mut self) {
        if !self.committed {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// Removes `.<name>.tmp-<pid>` directories of `derived` that a build of ours started
/// (they hold the building file) and whose process is gone.
fn remove_dead_temps(derived: &Path) {
    let Ok(rd) = std::fs::read_dir(derived) else {
        return;
    };
    for entry in rd.flatten() {
        let fname = entry.file_name().to_string_lossy().into_owned();
        let Some(pid) = fname
            .strip_prefix('.')
            .and_then(|f| f.rsplit_once(".tmp-"))
            .and_then(|(_, p)| p.parse::<u32>().ok())
        else {
            continue;
        };
        let path = entry.path();
        let ours = is_real_dir(&path)
            && (path.join(BUILDING_FILE).is_file() || read_marker(&path).is_some());
        if ours && pid != std::process::id() && !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = std::fs::remove_dir_all(&path);
        }
    }
}

/// Removes the tables of `derived` other than `keep` that carry our marker and that
/// `stale` says can never be used again; returns the directories removed.
pub(crate) fn remove_stale(
    derived: &Path,
    keep: &str,
    stale: impl Fn(&Marker) -> bool,
) -> Vec<PathBuf> {
    let mut removed = Vec::new();
    let Ok(rd) = std::fs::read_dir(derived) else {
        return removed;
    };
    for entry in rd.flatten() {
        let fname = entry.file_name().to_string_lossy().into_owned();
        if fname == keep || fname.starts_with('.') {
            continue;
        }
        let path = entry.path();
        if !is_real_dir(&path) {
            continue;
        }
        if let Some(m) = read_marker(&path) {
            if stale(&m) && std::fs::remove_dir_all(&path).is_ok() {
                removed.push(path);
            }
        }
    }
    removed
}
