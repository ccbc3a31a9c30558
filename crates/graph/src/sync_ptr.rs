//! A raw pointer that rayon tasks may share to write *disjoint* positions of one buffer.
//! Why: the counting-sort scatter writes each edge to a slot no other task touches, and
//! splitting the output into per-task `&mut` slices is impossible because rows interleave.

#[derive(Clone, Copy)]
pub(crate) struct SyncPtr<T>(pub(crate) *mut T);

// SAFETY: users guarantee that concurrent tasks write disjoint indices only.
unsafe impl<T: Send> Send for SyncPtr<T> {}
unsafe impl<T: Send> Sync for SyncPtr<T> {}

impl<T> SyncPtr<T> {
    /// Writes `v` at index `i`.
    ///
    /// # Safety
    /// `i` is in bounds and no other thread accesses index `i` concurrently.
    #[inline]
    pub(crate) unsafe fn write(self, i: usize, v: T) {
        unsafe { self.0.add(i).write(v) }
    }

    /// A mutable sub-slice `[start, start+len)`.
    ///
    /// # Safety
    /// The range is in bounds and no other thread accesses it concurrently.
    #[inline]
    #[allow(clippy::mut_from_ref)]
    pub(crate) unsafe fn slice_mut(&self, start: usize, len: usize) -> &mut [T] {
        unsafe { std::slice::from_raw_parts_mut(self.0.add(start), len) }
    }
}
