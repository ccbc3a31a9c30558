//! A global allocator that aborts on any single allocation above [`ALLOC_LIMIT`], so "no
//! allocation above the cap" is checked on every build (libFuzzer's `-malloc_limit_mb` needs
//! a sanitizer's malloc hooks; this does not). The fuzz targets and the smoke test install it:
//!
//! ```ignore
//! #[global_allocator]
//! static ALLOC: scalegnn_fuzz::alloc::CappedAlloc = scalegnn_fuzz::alloc::CappedAlloc;
//! ```
//!
//! On abort it prints the size and, when the allocating thread is running a target, the
//! input in hex: the smoke test's mutated inputs are not saved anywhere else.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::fmt::Write as _;
use std::marker::PhantomData;

/// Largest single allocation allowed: twice the memory cap the readers check against (a
/// checked buffer may be converted or copied once), far below what a crafted size asks.
pub const ALLOC_LIMIT: usize = 2 * crate::MEMORY_CAP as usize;

/// Most input bytes printed on abort.
const MAX_DUMP: usize = 1 << 16;

/// The system allocator with a per-allocation limit of [`ALLOC_LIMIT`].
pub struct CappedAlloc;

// SAFETY: every call is forwarded unchanged to `System`, which upholds the contract; the
// limit check only reads the size and may abort.
unsafe impl GlobalAlloc for CappedAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        check(layout.size());
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        check(layout.size());
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        check(new_size);
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { System.dealloc(ptr, layout) }
    }
}

thread_local! {
    /// The input the current thread's target is running on (pointer, length), for the dump.
    static CURRENT: Cell<(*const u8, usize)> = const { Cell::new((std::ptr::null(), 0)) };
}

/// Marks `data` as the input of this thread's running target until dropped.
pub struct CurrentInput<'a>(PhantomData<&'a [u8]>);

impl<'a> CurrentInput<'a> {
    /// Records `data` for the abort message of [`CappedAlloc`].
    pub fn set(data: &'a [u8]) -> Self {
        let _ = CURRENT.try_with(|c| c.set((data.as_ptr(), data.len())));
        CurrentInput(PhantomData)
    }
}

impl Drop for CurrentInput<'_> {
    fn drop(&mut self) {
        let _ = CURRENT.try_with(|c| c.set((std::ptr::null(), 0)));
    }
}

fn check(size: usize) {
    if size > ALLOC_LIMIT {
        over_limit(size);
    }
}

/// A fixed buffer written to stderr in pieces: formatting must not allocate here.
struct Stderr {
    buf: [u8; 512],
    len: usize,
}

impl Stderr {
    fn flush(&mut self) {
        let mut done = 0;
        while done < self.len {
            // SAFETY: writes initialised bytes of our own buffer to fd 2.
            let n = unsafe {
                libc::write(2, self.buf[done..self.len].as_ptr().cast(), self.len - done)
            };
            if n <= 0 {
                break;
            }
            done += n as usize;
        }
        self.len = 0;
    }
}

impl std::fmt::Write for Stderr {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        for &b in s.as_bytes() {
            if self.len == self.buf.len() {
                self.flush();
            }
            self.buf[self.len] = b;
            self.len += 1;
        }
        Ok(())
    }
}

#[cold]
fn over_limit(size: usize) -> ! {
    let mut out = Stderr {
        buf: [0; 512],
        len: 0,
    };
    let _ = writeln!(
        out,
        "scalegnn-fuzz: allocation of {size} bytes, above the limit of {ALLOC_LIMIT}"
    );
    let (ptr, len) = CURRENT.try_with(Cell::get).unwrap_or((std::ptr::null(), 0));
    if ptr.is_null() {
        let _ = writeln!(out, "scalegnn-fuzz: no input recorded on this thread");
    } else {
        // SAFETY: `CurrentInput` borrows the slice for as long as the pointer is recorded.
        let data = unsafe { std::slice::from_raw_parts(ptr, len) };
        let _ = write!(out, "scalegnn-fuzz: input ({len} bytes, hex): ");
        for b in &data[..len.min(MAX_DUMP)] {
            let _ = write!(out, "{b:02x}");
        }
        let _ = writeln!(out);
    }
    out.flush();
    std::process::abort()
}
