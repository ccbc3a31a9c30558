//! `DatasetWriter`: builds a dataset directory under a temp name beside the target, fsyncs
//! every file, writes the checksummed manifest, then renames it into place. A crash at any
//! point leaves no partial directory under the final name.

use std::path::{Path, PathBuf};

use rayon::prelude::*;
use scalegnn_npy::{write_array, Element};

use crate::{xxh3_file, DataError, FileEntry, Manifest, Result};

/// Test hook: abort the process (as a kill would) after this many files are written.
const ABORT_ENV: &str = "SCALEGNN_TEST_ABORT_AFTER_FILES";

/// Writes a dataset directory atomically.
pub struct DatasetWriter {
    out: PathBuf,
    tmp: PathBuf,
    force: bool,
    files_written: usize,
    committed: bool,
}

fn fsync_dir(dir: &Path) -> Result<()> {
    let f = std::fs::File::open(dir).map_err(|e| DataError::io(dir, e))?;
    f.sync_all().map_err(|e| DataError::io(dir, e))
}

impl DatasetWriter {
    /// Starts a dataset at `out`; refuses an existing `out` unless `force`.
    pub fn create(out: &Path, force: bool) -> Result<DatasetWriter> {
        if out.exists() && !force {
            return Err(DataError::Exists {
                path: out.to_path_buf(),
            });
        }
        if out.exists() {
            check_replaceable(out)?;
        }
        let name = out
            .file_name()
            .ok_or_else(|| DataError::invalid(out, "output path has no directory name"))?
            .to_string_lossy()
            .into_owned();
        let parent = match out.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        std::fs::create_dir_all(&parent).map_err(|e| DataError::io(&parent, e))?;
        remove_stale_temps(&parent, &name);
        let tmp = parent.join(format!(".{name}.tmp-{}", std::process::id()));
        if tmp.exists() {
            std::fs::remove_dir_all(&tmp).map_err(|e| DataError::io(&tmp, e))?;
        }
        std::fs::create_dir(&tmp).map_err(|e| DataError::io(&tmp, e))?;
        Ok(DatasetWriter {
            out: out.to_path_buf(),
            tmp,
            force,
            files_written: 0,
            committed: false,
        })
    }

    /// The temp directory files are written into before the rename.
    pub fn dir(&self) -> &Path {
        &self.tmp
    }

    /// Path of `name` inside the temp directory.
    pub fn path(&self, name: &str) -> PathBuf {
        self.tmp.join(name)
    }

    /// Writes one `.npy` array into the dataset.
    pub fn write<T: Element>(&mut self, name: &str, shape: &[usize], data: &[T]) -> Result<()> {
        write_array(&self.path(name), shape, data)?;
        self.file_done();
        Ok(())
    }

    /// Records that a file written directly into `dir()` is complete.
    pub fn file_done(&mut self) {
        self.files_written += 1;
        if let Ok(v) = std::env::var(ABORT_ENV) {
            if v.parse::<usize>().ok() == Some(self.files_written) {
                eprintln!("{ABORT_ENV}: aborting after {} files", self.files_written);
                std::process::abort();
            }
        }
    }

    /// Checksums every file, writes `manifest.json`, and renames the directory into place.
    pub fn commit(mut self, mut manifest: Manifest) -> Result<Manifest> {
        let mut names = Vec::new();
        for entry in std::fs::read_dir(&self.tmp).map_err(|e| DataError::io(&self.tmp, e))? {
            let entry = entry.map_err(|e| DataError::io(&self.tmp, e))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if name != "manifest.json" {
                names.push(name);
            }
        }
        let entries: Vec<(String, FileEntry)> = names
            .par_iter()
            .map(|name| {
                let p = self.tmp.join(name);
                let bytes = std::fs::metadata(&p)
                    .map_err(|e| DataError::io(&p, e))?
                    .len();
                Ok((
                    name.clone(),
                    FileEntry {
                        bytes,
                        xxh3: xxh3_file(&p)?,
                    },
                ))
            })
            .collect::<Result<_>>()?;
        manifest.files = entries.into_iter().collect();
        manifest.write(&self.tmp.join("manifest.json"))?;
        fsync_dir(&self.tmp)?;
        let parent = self
            .tmp
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| ".".into());
        let mut old = None;
        if self.out.exists() {
            if !self.force {
                return Err(DataError::Exists {
                    path: self.out.clone(),
                });
            }
            // Checked again: the directory may have changed while this one was written.
            check_replaceable(&self.out)?;
            let name = self
                .out
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned();
            let o = parent.join(format!(".{name}.old-{}", std::process::id()));
            std::fs::rename(&self.out, &o).map_err(|e| DataError::io(&self.out, e))?;
            old = Some(o);
        }
        if let Err(e) = std::fs::rename(&self.tmp, &self.out) {
            // Put the previous dataset back so nothing the user had is lost.
            if let Some(o) = &old {
                let _ = std::fs::rename(o, &self.out);
            }
            return Err(DataError::io(&self.out, e));
        }
        self.committed = true;
        fsync_dir(&parent)?;
        if let Some(o) = old {
            std::fs::remove_dir_all(&o).map_err(|e| DataError::io(&o, e))?;
        }
        Ok(manifest)
    }
}

impl Drop for DatasetWriter {
    fn drop(&mut self) {
        if !self.committed {
            let _ = std::fs::remove_dir_all(&self.tmp);
        }
    }
}

/// Refuses to replace `out` unless scalegnn provably wrote it: a directory whose
/// `manifest.json` is a scalegnn manifest and which holds nothing but the files it lists (and
/// scalegnn's own derived tables and temp files). A home directory, a `make_synth.py`
/// directory or a dataset the user added files to is never deleted by `--force`.
fn check_replaceable(out: &Path) -> Result<()> {
    let refuse = |reason: String| DataError::invalid(out, reason);
    let md = std::fs::symlink_metadata(out).map_err(|e| DataError::io(out, e))?;
    if !md.is_dir() {
        return Err(refuse(
            "exists and is not a directory; refusing to replace it".into(),
        ));
    }
    let mpath = out.join("manifest.json");
    if !std::fs::symlink_metadata(&mpath).is_ok_and(|m| m.is_file()) {
        return Err(refuse(
            "exists and is not a scalegnn dataset (no manifest.json); --force replaces only \
             a dataset scalegnn wrote: choose another --out"
                .into(),
        ));
    }
    let m = Manifest::load(out).map_err(|e| {
        refuse(format!(
            "exists and its manifest.json is not scalegnn's ({e}); refusing to replace it"
        ))
    })?;
    let mut foreign = Vec::new();
    for entry in std::fs::read_dir(out).map_err(|e| DataError::io(out, e))? {
        let entry = entry.map_err(|e| DataError::io(out, e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let ours = name == "manifest.json"
            || name == "derived"
            || m.files.contains_key(&name)
            || (name.starts_with('.') && name.contains(".tmp-"));
        if !ours {
            foreign.push(name);
        }
    }
    if !foreign.is_empty() {
        foreign.sort();
        let more = if foreign.len() > 5 { ", …" } else { "" };
        foreign.truncate(5);
        return Err(refuse(format!(
            "holds files its manifest does not list ({}{more}); --force replaces only what \
             scalegnn wrote: move them away or choose another --out",
            foreign.join(", ")
        )));
    }
    Ok(())
}

/// Removes `.NAME.tmp-PID` directories left by killed writers whose process is gone.
fn remove_stale_temps(parent: &Path, name: &str) {
    let prefix = format!(".{name}.tmp-");
    let Ok(rd) = std::fs::read_dir(parent) else {
        return;
    };
    for entry in rd.flatten() {
        let fname = entry.file_name().to_string_lossy().into_owned();
        let Some(pid) = fname
            .strip_prefix(&prefix)
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        if pid != std::process::id() && !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Task;

    #[test]
    fn commit_refuse_force_and_drop_cleanup() {
        let root = tempfile::tempdir().unwrap();
        let out = root.path().join("ds");
        let mut w = DatasetWriter::create(&out, false).unwrap();
        w.write("a.npy", &[3], &[1i64, 2, 3]).unwrap();
        let m = w.commit(Manifest::new("ds", Task::None)).unwrap();
        assert_eq!(m.files.len(), 1);
        assert!(out.join("manifest.json").exists());
        assert!(matches!(
            DatasetWriter::create(&out, false),
            Err(DataError::Exists { .. })
        ));
        // Replacing with force keeps the old data until the new one is in place.
        let mut w = DatasetWriter::create(&out, true).unwrap();
        w.write("b.npy", &[1], &[5i64]).unwrap();
        w.commit(Manifest::new("ds", Task::None)).unwrap();
        assert!(out.join("b.npy").exists() && !out.join("a.npy").exists());
        // --force never replaces what scalegnn did not write: a user's directory, or a dataset
        // holding a file its manifest does not list.
        let home = root.path().join("home");
        std::fs::create_dir(&home).unwrap();
        std::fs::write(home.join("thesis.tex"), "years of work").unwrap();
        let e = DatasetWriter::create(&home, true)
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("not a scalegnn dataset"), "{e}");
        std::fs::write(out.join("notes.txt"), "mine").unwrap();
        let e = DatasetWriter::create(&out, true).err().unwrap().to_string();
        assert!(e.contains("notes.txt"), "{e}");
        std::fs::remove_file(out.join("notes.txt")).unwrap();
        assert_eq!(
            std::fs::read_to_string(home.join("thesis.tex")).unwrap(),
            "years of work"
        );
        // A writer dropped without commit leaves nothing behind.
        let out2 = root.path().join("ds2");
        let mut w = DatasetWriter::create(&out2, false).unwrap();
        w.write("a.npy", &[1], &[1i64]).unwrap();
        drop(w);
        assert!(!out2.exists());
        let mut names: Vec<String> = std::fs::read_dir(root.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names, vec!["ds".to_string(), "home".to_string()]);
    }
}
