//! Software prefetch of memory a loop will read a few iterations later. Why: sampling reads
//! rows at random offsets of a graph far larger than the caches, and each row costs a full
//! memory latency unless its load is started early.

/// Bytes per cache line.
const LINE: usize = 64;

/// Hints that `data` will be read soon (a no-op off x86_64).
#[inline(always)]
pub(crate) fn prefetch<T>(data: &[T]) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        let bytes = std::mem::size_of_val(data);
        let p = data.as_ptr().cast::<i8>();
        let mut off = 0;
        while off < bytes {
            // SAFETY: prefetch never faults and `p + off` stays inside `data`.
            unsafe { _mm_prefetch::<_MM_HINT_T0>(p.add(off)) };
            off += LINE;
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = data;
}
