//! `scalegnn-direct`: a read-only SQLite VFS that reads the database file with `O_DIRECT`,
//! past the page cache, for SQLite stores larger than the memory the run may use.
//!
//! **Why.** Under a memory limit that counts the page cache, every page SQLite reads through
//! the kernel (its memory map or `pread`) costs a page fault or a copy plus cgroup reclaim, on
//! the trainer's two cores: on the products preset with half the features allowed in memory,
//! SQLite ran at 49–60 % of the in-memory speed and each batch's *compute* slowed from ~750
//! to ~1,430 ms. With direct reads the bytes go by DMA into a buffer of ours and nothing is
//! reclaimed; what SQLite keeps is its own page cache (interior b-tree pages), sized per
//! connection.
//!
//! **How.** Only the main database file of a read-only connection is opened here; every
//! other file (temp files, journals) and every other VFS method goes to the default VFS. A
//! file keeps one aligned *window*: a read inside it is a copy. A read starting at most
//! `FORWARD_GAP` after the previous one (a sorted chunk walks the leaves forward) refills the
//! window with `WINDOW` bytes from the page's block, so neighbouring leaves come in one
//! request. Any other read (an interior page SQLite evicted, the first leaf of a chunk) reads
//! only its own aligned blocks into a side buffer and leaves the window alone: when such reads
//! replaced the window, the leaves after an interior page were read twice (1,180 MiB per
//! products batch against 1,055 MiB with the side buffer). A file system that refuses
//! `O_DIRECT` is read with plain `pread` the same way.

use std::ffi::{c_char, c_int, c_void, CStr, OsStr};
use std::fs::File;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::ptr;
use std::sync::atomic::{AtomicPtr, Ordering};
use std::sync::OnceLock;

use rusqlite::{ffi, Connection};

use crate::direct::{align_down, align_up, open_direct, read_blocks, AlignedBuf};

/// The VFS's registered name (pass it when opening a connection).
pub(crate) const VFS_NAME: &str = "scalegnn-direct";
const VFS_NAME_C: &CStr = c"scalegnn-direct";

/// Bytes read ahead when reads walk forward (products preset, 190k sorted ids per batch of
/// its 2.45M rows, 4 threads: 256 KiB windows took ~960 ms and 1 MiB ~880 ms per batch,
/// both reading about the whole 1,066 MiB file once).
const WINDOW: usize = 1 << 20;
/// Largest gap after the previous read that still counts as walking forward.
const FORWARD_GAP: u64 = 256 * 1024;

/// Initial size of the buffer for reads off the walk (one page of the largest size).
const SIDE: usize = 64 * 1024;

/// The default VFS, whose methods ours delegate to.
static PARENT: AtomicPtr<ffi::sqlite3_vfs> = AtomicPtr::new(ptr::null_mut());
static REGISTERED: OnceLock<c_int> = OnceLock::new();

/// Registers the VFS (once per process); returns SQLite's result code on failure.
pub(crate) fn register() -> Result<(), c_int> {
    let rc = *REGISTERED.get_or_init(|| {
        // SAFETY: sqlite3_vfs_find and sqlite3_vfs_register are thread-safe; the struct we
        // register is leaked, so it outlives every connection.
        unsafe {
            let parent = ffi::sqlite3_vfs_find(ptr::null());
            if parent.is_null() {
                return ffi::SQLITE_ERROR;
            }
            PARENT.store(parent, Ordering::Release);
            // Copying the default VFS keeps its helpers (path names, time, randomness) and its
            // pAppData, which they may read; only the file size and xOpen are ours.
            let mut vfs = *parent;
            vfs.szOsFile = vfs.szOsFile.max(std::mem::size_of::<DbFile>() as c_int);
            vfs.pNext = ptr::null_mut();
            vfs.zName = VFS_NAME_C.as_ptr();
            vfs.xOpen = Some(x_open);
            ffi::sqlite3_vfs_register(Box::into_raw(Box::new(vfs)), 0)
        }
    });
    if rc == ffi::SQLITE_OK {
        Ok(())
    } else {
        Err(rc)
    }
}

/// The file object SQLite allocates (`szOsFile` bytes) for a main database file of ours.
#[repr(C)]
struct DbFile {
    base: ffi::sqlite3_file,
    state: *mut FileState,
}

/// What one open database file holds: the file and its read window.
struct FileState {
    file: File,
    path: PathBuf,
    direct: bool,
    buf: AlignedBuf,
    /// Blocks read off the walk, so that they do not replace the window.
    side: AlignedBuf,
    /// File offset of the window's first byte and how many bytes it holds.
    win_start: u64,
    win_len: usize,
    /// Bytes read from the file since the store last asked (`take_bytes_read`).
    bytes: u64,
    /// End offset of the last read asked for: the next read starting at or just past it is
    /// the forward walk that the window serves.
    last_end: u64,
}

impl FileState {
    /// [`FileState::read`], falling back to plain reads for good when the file system
    /// accepted `O_DIRECT` at open but refuses direct reads (EINVAL).
    fn read_or_fallback(&mut self, out: &mut [u8], off: u64) -> std::io::Result<bool> {
        match self.read(out, off) {
            Err(e) if self.direct && e.raw_os_error() == Some(libc::EINVAL) => {
                self.file = File::open(&self.path)?;
                self.direct = false;
                self.win_len = 0;
                self.read(out, off)
            }
            r => r,
        }
    }

    /// Fills `out` from offset `off`; false when the file ended first (the rest zeroed, as
    /// SQLite expects of a short read).
    fn read(&mut self, out: &mut [u8], off: u64) -> std::io::Result<bool> {
        let end = off + out.len() as u64;
        let inside = off >= self.win_start && end <= self.win_start + self.win_len as u64;
        let forward = off >= self.last_end && off - self.last_end <= FORWARD_GAP;
        self.last_end = end;
        let start = align_down(off);
        let own = (align_up(end) - start) as usize;
        if !inside && !forward {
            // Off the walk (an interior page evicted from SQLite's cache, the first leaf of
            // a chunk): read just these blocks and keep the window, whose leaves come next.
            if own > self.side.capacity() {
                self.side = AlignedBuf::new(own);
            }
            let got = fill(&self.file, self.direct, &mut self.side, start, own)?;
            self.bytes += got as u64;
            return Ok(copy_out(self.side.as_slice(got), start, off, out));
        }
        if !inside {
            let len = own.max(WINDOW);
            if len > self.buf.capacity() {
                self.buf = AlignedBuf::new(len);
            }
            self.win_start = start;
            self.win_len = 0;
            self.win_len = fill(&self.file, self.direct, &mut self.buf, start, len)?;
            self.bytes += self.win_len as u64;
        }
        Ok(copy_out(
            self.buf.as_slice(self.win_len),
            self.win_start,
            off,
            out,
        ))
    }
}

/// Copies what `have` (the bytes from file offset `at`) holds of `out`'s range starting at
/// `off` and zeroes the rest; false when that was not all of it.
fn copy_out(have: &[u8], at: u64, off: u64, out: &mut [u8]) -> bool {
    // `at <= off` always (the bytes start at or before the read); the file may end before
    // `off` itself, and then nothing is copied.
    let from = ((off - at) as usize).min(have.len());
    let n = (have.len() - from).min(out.len());
    out[..n].copy_from_slice(&have[from..from + n]);
    out[n..].fill(0);
    n == out.len()
}

/// Reads `len` bytes at aligned `start` into `buf`; returns how many came (fewer only at the
/// end of the file).
fn fill(
    file: &File,
    direct: bool,
    buf: &mut AlignedBuf,
    start: u64,
    len: usize,
) -> std::io::Result<usize> {
    read_blocks(file, direct, buf.as_mut(len), start)
}

unsafe extern "C" fn x_open(
    _vfs: *mut ffi::sqlite3_vfs,
    name: ffi::sqlite3_filename,
    file: *mut ffi::sqlite3_file,
    flags: c_int,
    out_flags: *mut c_int,
) -> c_int {
    let parent = PARENT.load(Ordering::Acquire);
    if flags & ffi::SQLITE_OPEN_MAIN_DB == 0 || name.is_null() {
        // Not the database itself: the default VFS opens it into the same (larger) slot.
        return match (*parent).xOpen {
            Some(open) => open(parent, name, file, flags, out_flags),
            None => ffi::SQLITE_CANTOPEN,
        };
    }
    let f = file as *mut DbFile;
    (*f).base.pMethods = ptr::null();
    (*f).state = ptr::null_mut();
    let path = Path::new(OsStr::from_bytes(
        CStr::from_ptr(name as *const c_char).to_bytes(),
    ));
    let Ok((handle, direct)) = open_direct(path) else {
        return ffi::SQLITE_CANTOPEN;
    };
    (*f).state = Box::into_raw(Box::new(FileState {
        file: handle,
        path: path.to_path_buf(),
        direct,
        buf: AlignedBuf::new(WINDOW),
        side: AlignedBuf::new(SIDE),
        win_start: 0,
        win_len: 0,
        last_end: u64::MAX,
        bytes: 0,
    }));
    (*f).base.pMethods = &IO_METHODS;
    if !out_flags.is_null() {
        *out_flags = (flags & !(ffi::SQLITE_OPEN_READWRITE | ffi::SQLITE_OPEN_CREATE))
            | ffi::SQLITE_OPEN_READONLY;
    }
    ffi::SQLITE_OK
}

/// Version 1: no shared memory (connections are `immutable=1`) and no memory map (`xFetch`),
/// so every page comes through `x_read`.
static IO_METHODS: ffi::sqlite3_io_methods = ffi::sqlite3_io_methods {
    iVersion: 1,
    xClose: Some(x_close),
    xRead: Some(x_read),
    xWrite: Some(x_write),
    xTruncate: Some(x_truncate),
    xSync: Some(x_sync),
    xFileSize: Some(x_file_size),
    xLock: Some(x_lock),
    xUnlock: Some(x_lock),
    xCheckReservedLock: Some(x_check_reserved_lock),
    xFileControl: Some(x_file_control),
    xSectorSize: Some(x_sector_size),
    xDeviceCharacteristics: Some(x_device_characteristics),
    xShmMap: None,
    xShmLock: None,
    xShmBarrier: None,
    xShmUnmap: None,
    xFetch: None,
    xUnfetch: None,
};

/// The state of a file opened by `x_open` (never null while its methods are set).
unsafe fn state<'a>(file: *mut ffi::sqlite3_file) -> &'a mut FileState {
    &mut *(*(file as *mut DbFile)).state
}

unsafe extern "C" fn x_close(file: *mut ffi::sqlite3_file) -> c_int {
    let f = file as *mut DbFile;
    if !(*f).state.is_null() {
        drop(Box::from_raw((*f).state));
        (*f).state = ptr::null_mut();
    }
    ffi::SQLITE_OK
}

unsafe extern "C" fn x_read(
    file: *mut ffi::sqlite3_file,
    buf: *mut c_void,
    amt: c_int,
    off: ffi::sqlite3_int64,
) -> c_int {
    let (Ok(len), Ok(off)) = (usize::try_from(amt), u64::try_from(off)) else {
        return ffi::SQLITE_IOERR_READ;
    };
    let out = std::slice::from_raw_parts_mut(buf as *mut u8, len);
    match state(file).read_or_fallback(out, off) {
        Ok(true) => ffi::SQLITE_OK,
        Ok(false) => ffi::SQLITE_IOERR_SHORT_READ,
        Err(_) => ffi::SQLITE_IOERR_READ,
    }
}

unsafe extern "C" fn x_write(
    _file: *mut ffi::sqlite3_file,
    _buf: *const c_void,
    _amt: c_int,
    _off: ffi::sqlite3_int64,
) -> c_int {
    ffi::SQLITE_READONLY
}

unsafe extern "C" fn x_truncate(_file: *mut ffi::sqlite3_file, _size: ffi::sqlite3_int64) -> c_int {
    ffi::SQLITE_READONLY
}

unsafe extern "C" fn x_sync(_file: *mut ffi::sqlite3_file, _flags: c_int) -> c_int {
    ffi::SQLITE_OK
}

unsafe extern "C" fn x_file_size(
    file: *mut ffi::sqlite3_file,
    size: *mut ffi::sqlite3_int64,
) -> c_int {
    match state(file).file.metadata() {
        Ok(m) => {
            *size = m.len() as ffi::sqlite3_int64;
            ffi::SQLITE_OK
        }
        Err(_) => ffi::SQLITE_IOERR_FSTAT,
    }
}

/// Locks are no-ops: the file is opened `immutable=1`, so SQLite takes none.
unsafe extern "C" fn x_lock(_file: *mut ffi::sqlite3_file, _level: c_int) -> c_int {
    ffi::SQLITE_OK
}

unsafe extern "C" fn x_check_reserved_lock(
    _file: *mut ffi::sqlite3_file,
    out: *mut c_int,
) -> c_int {
    *out = 0;
    ffi::SQLITE_OK
}

unsafe extern "C" fn x_file_control(
    file: *mut ffi::sqlite3_file,
    op: c_int,
    arg: *mut c_void,
) -> c_int {
    if op == FCNTL_TAKE_BYTES && !arg.is_null() {
        *(arg as *mut u64) = std::mem::take(&mut state(file).bytes);
        return ffi::SQLITE_OK;
    }
    ffi::SQLITE_NOTFOUND
}

/// Our file-control opcode (far above SQLite's own, which stay below 100): returns and
/// resets the bytes read.
const FCNTL_TAKE_BYTES: c_int = 0x5347_0001;

/// Bytes the connection's database file read from disk since the last call (0 when the
/// connection does not use this VFS).
pub(crate) fn take_bytes_read(conn: &Connection) -> u64 {
    let mut bytes = 0u64;
    // SAFETY: the handle is live for the borrow; SQLite hands `arg` to x_file_control, which
    // writes one u64 to it, or returns SQLITE_NOTFOUND for another VFS and writes nothing.
    let rc = unsafe {
        ffi::sqlite3_file_control(
            conn.handle(),
            c"main".as_ptr(),
            FCNTL_TAKE_BYTES,
            &mut bytes as *mut u64 as *mut c_void,
        )
    };
    if rc == ffi::SQLITE_OK {
        bytes
    } else {
        0
    }
}

unsafe extern "C" fn x_sector_size(_file: *mut ffi::sqlite3_file) -> c_int {
    crate::direct::ALIGN as c_int
}

unsafe extern "C" fn x_device_characteristics(_file: *mut ffi::sqlite3_file) -> c_int {
    ffi::SQLITE_IOCAP_IMMUTABLE
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A file of `len` bytes, byte k = k mod 251, opened as the VFS opens one.
    fn state(len: usize) -> (tempfile::TempDir, FileState, Vec<u8>) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let bytes: Vec<u8> = (0..len).map(|k| (k % 251) as u8).collect();
        std::fs::write(&path, &bytes).unwrap();
        let (file, direct) = open_direct(&path).unwrap();
        let st = FileState {
            file,
            path: path.clone(),
            direct,
            buf: AlignedBuf::new(WINDOW),
            side: AlignedBuf::new(SIDE),
            win_start: 0,
            win_len: 0,
            bytes: 0,
            last_end: u64::MAX,
        };
        (dir, st, bytes)
    }

    #[test]
    fn reads_forward_through_the_window_and_aside_without_dropping_it() {
        let len = 3 * WINDOW + 1000;
        let (_d, mut st, want) = state(len);
        let mut page = vec![0u8; 4096];
        // First read: off the walk, read aside.
        assert!(st.read(&mut page, 8192).unwrap());
        assert_eq!(page, want[8192..12288]);
        assert_eq!(st.win_len, 0);
        // The next page: forward, fills a window.
        assert!(st.read(&mut page, 12288).unwrap());
        assert_eq!(page, want[12288..16384]);
        assert_eq!((st.win_start, st.win_len), (12288, WINDOW));
        // A page far behind (an interior page): read aside, the window stays.
        assert!(st.read(&mut page, 0).unwrap());
        assert_eq!(page, want[..4096]);
        assert_eq!(st.win_start, 12288);
        // Back inside the window: a copy, nothing read.
        let before = st.bytes;
        assert!(st.read(&mut page, 12288 + 8 * 4096).unwrap());
        assert_eq!(page, want[12288 + 8 * 4096..12288 + 9 * 4096]);
        assert_eq!(st.bytes, before);
        // Odd sizes and offsets (SQLite reads its 100-byte header).
        let mut head = vec![0u8; 100];
        assert!(st.read(&mut head, 5).unwrap());
        assert_eq!(head, want[5..105]);
    }

    #[test]
    fn reads_at_and_past_the_end_are_short_and_zero_filled() {
        let len = WINDOW + 1000;
        let (_d, mut st, want) = state(len);
        let mut page = vec![7u8; 4096];
        // Straddling the end, through the window (forward from the previous read).
        let at = (WINDOW - 4096) as u64;
        assert!(st.read(&mut page, at - 4096).unwrap());
        assert!(!st.read(&mut page, at + 4096).unwrap());
        assert_eq!(page[..1000], want[WINDOW..]);
        assert!(page[1000..].iter().all(|&b| b == 0));
        // Wholly past the end, aside and through the window: nothing but zeros, no panic.
        for off in [len as u64 + 10_000, 4 * WINDOW as u64] {
            page.fill(7);
            assert!(!st.read(&mut page, off).unwrap());
            assert!(page.iter().all(|&b| b == 0));
        }
        st.last_end = len as u64 + 100;
        page.fill(7);
        assert!(!st.read(&mut page, len as u64 + 200).unwrap());
        assert!(page.iter().all(|&b| b == 0));
    }
}
