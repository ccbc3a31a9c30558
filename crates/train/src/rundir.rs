//! Run directories and who owns them: scalegnn writes into, replaces or deletes only a
//! directory that carries its marker (`.scalegnn-run`), holds an advisory lock on it while a
//! run writes there, and never writes through a symlink planted inside it.

use std::fs::File;
use std::path::{Path, PathBuf};

use crate::TrainError;

/// Marker file of a run directory; its content names the format version.
pub const MARKER: &str = ".scalegnn-run";
/// Content of the marker.
pub const FORMAT: &str = "scalegnn-run/1";
/// Lock file held (flock, exclusive) while a process writes into the directory.
const LOCK: &str = ".lock";

/// Names a run directory may hold, all written by scalegnn: `--force` replaces a directory
/// holding only these (and `run-N` directories that are run directories themselves).
const OWNED: &[&str] = &[
    MARKER,
    LOCK,
    "config.toml",
    "metrics.jsonl",
    "metrics.jsonl.tmp",
    "summary.json",
    "result.json",
    "curves.png",
    "sagmm.png",
    "checkpoint",
    "state",
    "predictions.npy",
    "probabilities.npy",
    "embeddings.npy",
    "tune.json",
];

/// A run directory this process owns for writing (locked until dropped).
#[derive(Debug)]
pub struct RunDir {
    path: PathBuf,
    _lock: File,
}

impl RunDir {
    /// Claims `path` for a new run: created when absent, adopted when an empty directory,
    /// replaced when it is a run directory and `force` is set; anything else is refused,
    /// naming the path. Fails when another process holds the directory.
    pub fn create(path: &Path, force: bool) -> Result<RunDir, TrainError> {
        let refuse = |reason: String| TrainError::RunDir {
            path: path.to_path_buf(),
            reason,
        };
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|e| TrainError::io(parent, e))?;
        }
        match std::fs::create_dir(path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                if !path.is_dir() {
                    return Err(refuse("exists and is not a directory".into()));
                }
            }
            Err(e) => return Err(TrainError::io(path, e)),
        }
        let foreign_files = |entries: &[String]| -> Result<(), TrainError> {
            let foreign: Vec<&String> = entries
                .iter()
                .filter(|n| n.as_str() != LOCK && !owned(path, n))
                .collect();
            if foreign.is_empty() {
                return Ok(());
            }
            let shown: Vec<&str> = foreign.iter().take(5).map(|s| s.as_str()).collect();
            Err(refuse(format!(
                "holds files scalegnn did not write ({}{}); choose another --out",
                shown.join(", "),
                if foreign.len() > 5 { ", …" } else { "" }
            )))
        };
        // Checked before the lock file is created, so a refused directory is left untouched;
        // checked again under the lock, against a race.
        foreign_files(&list(path)?)?;
        let had_lock = path.join(LOCK).exists();
        let lock = lock(path)?;
        let entries = list(path)?;
        if let Err(e) = foreign_files(&entries) {
            if !had_lock {
                let _ = std::fs::remove_file(path.join(LOCK));
            }
            return Err(e);
        }
        let is_run = entries.iter().any(|n| n == MARKER);
        if is_run && !force {
            return Err(refuse(
                "already holds a run; choose another --out, or --force to replace it".into(),
            ));
        }
        // Only scalegnn's own entries are left here: remove them (not the lock we hold).
        for name in entries.iter().filter(|n| n.as_str() != LOCK) {
            let p = path.join(name);
            let md = std::fs::symlink_metadata(&p).map_err(|e| TrainError::io(&p, e))?;
            let res = if md.is_dir() {
                std::fs::remove_dir_all(&p)
            } else {
                std::fs::remove_file(&p)
            };
            res.map_err(|e| TrainError::io(&p, e))?;
        }
        write_new(&path.join(MARKER), format!("{FORMAT}\n").as_bytes())?;
        Ok(RunDir {
            path: path.to_path_buf(),
            _lock: lock,
        })
    }

    /// Reopens a run directory to continue its run (`--resume`): it must carry the marker;
    /// locked like a new one.
    pub fn resume(path: &Path) -> Result<RunDir, TrainError> {
        if !path.join(MARKER).is_file() {
            return Err(TrainError::RunDir {
                path: path.to_path_buf(),
                reason:
                    "is not a run directory scalegnn wrote (no .scalegnn-run): nothing to resume"
                        .into(),
            });
        }
        Ok(RunDir {
            path: path.to_path_buf(),
            _lock: lock(path)?,
        })
    }

    /// A run directory `name` inside this one: created new, or reopened when resuming.
    pub fn sub_or_resume(&self, name: &str, resume: bool) -> Result<RunDir, TrainError> {
        let p = self.path.join(name);
        if resume && p.join(MARKER).is_file() {
            return RunDir::resume(&p);
        }
        self.sub(name)
    }

    /// Opens an existing run directory to add outputs (predictions, embeddings): it must carry
    /// the marker or be a run written before markers existed (it holds `config.toml`).
    pub fn open(path: &Path) -> Result<RunDir, TrainError> {
        let md = std::fs::metadata(path).map_err(|e| TrainError::io(path, e))?;
        if !md.is_dir() || !(path.join(MARKER).is_file() || path.join("config.toml").is_file()) {
            return Err(TrainError::RunDir {
                path: path.to_path_buf(),
                reason: "is not a run directory (no .scalegnn-run or config.toml)".into(),
            });
        }
        Ok(RunDir {
            path: path.to_path_buf(),
            _lock: lock(path)?,
        })
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A new run directory `name` inside this one (`run-0`, …); it must not exist yet.
    pub fn sub(&self, name: &str) -> Result<RunDir, TrainError> {
        let p = self.path.join(name);
        if std::fs::symlink_metadata(&p).is_ok() {
            return Err(TrainError::RunDir {
                path: p,
                reason: "already exists".into(),
            });
        }
        RunDir::create(&p, false)
    }

    /// `dir/name` to write, refusing a symlink there (it would redirect the write).
    pub fn file(&self, name: &str) -> Result<PathBuf, TrainError> {
        let p = self.path.join(name);
        if std::fs::symlink_metadata(&p).is_ok_and(|m| m.file_type().is_symlink()) {
            return Err(TrainError::RunDir {
                path: p,
                reason: "is a symlink; scalegnn does not write through links".into(),
            });
        }
        Ok(p)
    }

    /// Writes `dir/name` atomically (temp file, fsync, rename), never through a symlink.
    pub fn write(&self, name: &str, bytes: &[u8]) -> Result<(), TrainError> {
        let p = self.file(name)?;
        scalegnn_npy::write_file_atomic(&p, bytes)?;
        Ok(())
    }
}

/// Writes a directory's files with `fill` into a temp directory beside `dir`, fsyncs them
/// when `sync`, then renames it over `dir` (the old one is removed after): neither a kill nor
/// (with `sync`) a crash of the machine leaves a half directory under the final name.
pub fn replace_dir(
    dir: &Path,
    sync: bool,
    fill: impl FnOnce(&Path) -> Result<(), TrainError>,
) -> Result<(), TrainError> {
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "out".into());
    let parent = dir.parent().unwrap_or(Path::new("."));
    let tmp = parent.join(format!(".{name}.tmp-{}", std::process::id()));
    let old = parent.join(format!(".{name}.old-{}", std::process::id()));
    // A leftover (or a planted link) is removed, never followed.
    let _ = std::fs::remove_dir_all(&tmp);
    let _ = std::fs::remove_file(&tmp);
    std::fs::create_dir(&tmp).map_err(|e| TrainError::io(&tmp, e))?;
    let res = fill(&tmp).and_then(|()| if sync { sync_dir(&tmp) } else { Ok(()) });
    if let Err(e) = res {
        let _ = std::fs::remove_dir_all(&tmp);
        return Err(e);
    }
    let had = std::fs::symlink_metadata(dir).is_ok();
    if had {
        std::fs::rename(dir, &old).map_err(|e| TrainError::io(dir, e))?;
    }
    std::fs::rename(&tmp, dir).map_err(|e| TrainError::io(dir, e))?;
    if had {
        let _ = std::fs::remove_dir_all(&old);
        let _ = std::fs::remove_file(&old);
    }
    if sync {
        if let Ok(d) = File::open(parent) {
            let _ = d.sync_all();
        }
    }
    Ok(())
}

/// Flushes every file of `dir` and the directory itself to the disk.
pub fn sync_dir(dir: &Path) -> Result<(), TrainError> {
    for e in std::fs::read_dir(dir).map_err(|e| TrainError::io(dir, e))? {
        let p = e.map_err(|e| TrainError::io(dir, e))?.path();
        File::open(&p)
            .and_then(|f| f.sync_all())
            .map_err(|e| TrainError::io(&p, e))?;
    }
    File::open(dir)
        .and_then(|f| f.sync_all())
        .map_err(|e| TrainError::io(dir, e))?;
    if let Some(parent) = dir.parent() {
        if let Ok(d) = File::open(parent) {
            let _ = d.sync_all();
        }
    }
    Ok(())
}

/// True for an entry scalegnn writes into a run directory.
fn owned(dir: &Path, name: &str) -> bool {
    if OWNED.contains(&name)
        || name.starts_with(".checkpoint.")
        || name.starts_with(".state.")
        || (name.starts_with('.') && name.contains(".tmp-"))
    {
        return true;
    }
    // run-N of --runs: itself a run directory (marker inside, no symlink).
    name.strip_prefix("run-")
        .is_some_and(|k| !k.is_empty() && k.bytes().all(|b| b.is_ascii_digit()))
        && std::fs::symlink_metadata(dir.join(name)).is_ok_and(|m| m.is_dir())
        && dir.join(name).join(MARKER).is_file()
}

/// Entry names of `dir`.
fn list(dir: &Path) -> Result<Vec<String>, TrainError> {
    let mut names = Vec::new();
    for e in std::fs::read_dir(dir).map_err(|e| TrainError::io(dir, e))? {
        let e = e.map_err(|e| TrainError::io(dir, e))?;
        names.push(e.file_name().to_string_lossy().into_owned());
    }
    names.sort();
    Ok(names)
}

/// Takes the directory's advisory lock, or says who holds it.
fn lock(dir: &Path) -> Result<File, TrainError> {
    use std::os::unix::fs::OpenOptionsExt;
    let p = dir.join(LOCK);
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&p)
        .map_err(|e| TrainError::io(&p, e))?;
    match f.try_lock() {
        Ok(()) => Ok(f),
        Err(std::fs::TryLockError::WouldBlock) => Err(TrainError::RunDir {
            path: dir.to_path_buf(),
            reason: "is in use by another scalegnn process (its .lock is held)".into(),
        }),
        Err(std::fs::TryLockError::Error(e)) => Err(TrainError::io(&p, e)),
    }
}

/// Creates `path` (which must not exist: no symlink is followed) with `bytes`, fsynced.
fn write_new(path: &Path, bytes: &[u8]) -> Result<(), TrainError> {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(|e| TrainError::io(path, e))?;
    f.write_all(bytes)
        .and_then(|_| f.sync_all())
        .map_err(|e| TrainError::io(path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ownership_force_lock_and_links() {
        let root = tempfile::tempdir().unwrap();
        // A directory with the user's files is never claimed, --force or not.
        let home = root.path().join("home");
        std::fs::create_dir(&home).unwrap();
        std::fs::write(home.join("notes.txt"), "mine").unwrap();
        for force in [false, true] {
            let e = RunDir::create(&home, force).unwrap_err().to_string();
            assert!(e.contains("notes.txt") && e.contains("home"), "{e}");
        }
        assert_eq!(
            std::fs::read_to_string(home.join("notes.txt")).unwrap(),
            "mine"
        );
        // Nothing was added to it either (not even the lock file).
        let names: Vec<_> = std::fs::read_dir(&home)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["notes.txt"]);
        // A new run; a second one into it is refused while held, and without --force.
        let run = root.path().join("run");
        let r = RunDir::create(&run, false).unwrap();
        r.write("metrics.jsonl", b"{}\n").unwrap();
        let e = RunDir::create(&run, true).unwrap_err().to_string();
        assert!(e.contains("in use"), "{e}");
        drop(r);
        let e = RunDir::create(&run, false).unwrap_err().to_string();
        assert!(e.contains("already holds a run"), "{e}");
        // --force replaces it.
        let r = RunDir::create(&run, true).unwrap();
        assert!(!run.join("metrics.jsonl").exists() && run.join(MARKER).exists());
        // A planted symlink is not written through.
        let victim = root.path().join("victim.txt");
        std::fs::write(&victim, "keep").unwrap();
        std::os::unix::fs::symlink(&victim, run.join("summary.json")).unwrap();
        assert!(r.write("summary.json", b"x").is_err());
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "keep");
        // run-N: a fresh subdirectory each; an existing one is refused.
        let s = r.sub("run-0").unwrap();
        assert!(s.path().join(MARKER).exists());
        drop(s);
        assert!(r.sub("run-0").is_err());
    }
}
