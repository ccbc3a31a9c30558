//! Resource limits: how much memory one allocation sized by file contents or flags may take,
//! and how many threads a flag may start. Checked *before* allocating, so a crafted file or a
//! typo gets an error naming it instead of an abort after gigabytes.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};

/// An allocation or a thread count refused by a limit.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LimitError {
    /// One allocation would be larger than the memory a run may use.
    #[error("{what} would need {} but {} may be used ({})", human(*.need), human(*.have), .cap)]
    Memory {
        what: String,
        need: u128,
        have: u64,
        cap: CapSource,
    },
    /// A size computation overflows 64 bits: no machine can hold it.
    #[error("{what}: the size overflows 64 bits")]
    Overflow { what: String },
    /// More threads asked for than the limit allows.
    #[error("{what}: {asked} threads is more than {max} (4 per core, at least 16)")]
    Threads {
        what: String,
        asked: usize,
        max: usize,
    },
}

/// Where the memory limit came from, for the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CapSource {
    /// `--mem-budget` (set with [`set_memory_cap`]).
    Budget,
    /// The memory the system reports available (MemAvailable, or the cgroup's limit).
    Available,
}

impl fmt::Display for CapSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CapSource::Budget => "--mem-budget",
            CapSource::Available => "memory available now",
        })
    }
}

/// 0 = no explicit cap: the available memory is read at each check.
static CAP: AtomicU64 = AtomicU64::new(0);

/// Sets the memory cap of this process (from `--mem-budget`); 0 clears it.
pub fn set_memory_cap(bytes: u64) {
    CAP.store(bytes, Ordering::Relaxed);
}

/// The memory one allocation may take, and where that figure comes from.
pub fn memory_cap() -> (u64, CapSource) {
    match CAP.load(Ordering::Relaxed) {
        0 => (available_memory(), CapSource::Available),
        c => (c, CapSource::Budget),
    }
}

/// Fails when `bytes` (of `what`, named in the error) is more than [`memory_cap`] allows.
pub fn check_alloc(what: impl Into<String>, bytes: u128) -> Result<(), LimitError> {
    let (have, cap) = memory_cap();
    if bytes > have as u128 {
        return Err(LimitError::Memory {
            what: what.into(),
            need: bytes,
            have,
            cap,
        });
    }
    Ok(())
}

/// `count × elem_bytes` (count the product of `dims`), or an overflow error naming `what`.
pub fn bytes_of(what: &str, dims: &[usize], elem_bytes: usize) -> Result<u128, LimitError> {
    dims.iter()
        .try_fold(elem_bytes as u128, |acc, &d| acc.checked_mul(d as u128))
        .filter(|&b| b <= u64::MAX as u128)
        .ok_or_else(|| LimitError::Overflow { what: what.into() })
}

/// [`bytes_of`] then [`check_alloc`]: the usual guard before `vec![0; n * d]`.
pub fn check_array(what: &str, dims: &[usize], elem_bytes: usize) -> Result<(), LimitError> {
    check_alloc(what, bytes_of(what, dims, elem_bytes)?)
}

/// The most threads a flag may ask for: 4 per core, at least 16.
pub fn max_threads() -> usize {
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    (4 * cores).max(16)
}

/// Fails when `asked` threads (for `what`, e.g. `--threads`) exceeds [`max_threads`].
pub fn check_threads(what: &str, asked: usize) -> Result<(), LimitError> {
    let max = max_threads();
    if asked > max {
        return Err(LimitError::Threads {
            what: what.into(),
            asked,
            max,
        });
    }
    Ok(())
}

/// Bytes of memory available now: `MemAvailable`, lowered to what the cgroup (v2 or v1) still
/// allows. Unknown (no /proc) counts as 1 TiB, so checks then catch only the absurd.
pub fn available_memory() -> u64 {
    let mut avail = meminfo_available().unwrap_or(1 << 40);
    if let Some(room) = cgroup_room() {
        avail = avail.min(room);
    }
    avail
}

fn meminfo_available() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib.saturating_mul(1024))
}

/// Limit minus usage of this process's memory cgroup, when it has a limit.
fn cgroup_room() -> Option<u64> {
    let read = |p: &str| -> Option<u64> { std::fs::read_to_string(p).ok()?.trim().parse().ok() };
    let cg = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    for line in cg.lines() {
        let mut parts = line.splitn(3, ':');
        let (_, ctrl, path) = (parts.next()?, parts.next()?, parts.next()?);
        if ctrl.is_empty() {
            // cgroup v2: "max" means no limit (the parse fails and we go on).
            let base = format!("/sys/fs/cgroup{path}");
            if let (Some(max), Some(cur)) = (
                read(&format!("{base}/memory.max")),
                read(&format!("{base}/memory.current")),
            ) {
                return Some(max.saturating_sub(cur));
            }
        } else if ctrl.split(',').any(|c| c == "memory") {
            let base = format!("/sys/fs/cgroup/memory{path}");
            if let (Some(max), Some(cur)) = (
                read(&format!("{base}/memory.limit_in_bytes")),
                read(&format!("{base}/memory.usage_in_bytes")),
            ) {
                // v1 reports "no limit" as a huge number (2^63 rounded to pages).
                if max < (1u64 << 60) {
                    return Some(max.saturating_sub(cur));
                }
            }
        }
    }
    None
}

/// `n` bytes as "12.3 GiB".
pub fn human(n: impl Into<u128>) -> String {
    let n = n.into();
    let units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < units.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", units[u])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_what_the_cap_cannot_hold_and_overflow() {
        assert!(available_memory() > 1 << 20);
        let e = check_array("x.npy features", &[1 << 40, 1 << 10], 4).unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.contains("x.npy features") && msg.contains("PiB") && msg.contains("may be used"),
            "{msg}"
        );
        assert!(matches!(
            bytes_of("w", &[usize::MAX, 3], 8),
            Err(LimitError::Overflow { .. })
        ));
        check_array("small", &[10, 10], 4).unwrap();
        assert!(check_threads("--threads", 100_000).is_err());
        check_threads("--threads", 2).unwrap();
        assert_eq!(human(1536u64), "1.5 KiB");
    }
}
