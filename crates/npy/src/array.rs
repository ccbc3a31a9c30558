//! `Array<T>`: a typed, read-only array that is either memory-mapped from a `.npy` file or owned.

use std::ops::Deref;
use std::sync::Arc;

use memmap2::Mmap;

use crate::DType;

/// A plain-old-data element type with a NumPy dtype.
pub trait Element: bytemuck::Pod + Send + Sync + 'static {
    /// The dtype this Rust type is stored as.
    const DTYPE: DType;
}

macro_rules! element {
    ($t:ty, $d:expr) => {
        impl Element for $t {
            const DTYPE: DType = $d;
        }
    };
}
element!(u8, DType::U8);
element!(i8, DType::I8);
element!(i16, DType::I16);
element!(u16, DType::U16);
element!(i32, DType::I32);
element!(u32, DType::U32);
element!(i64, DType::I64);
element!(u64, DType::U64);
// f16 as `<f2`, so half-precision feature files are plain NumPy arrays.
element!(half::f16, DType::F16);
element!(f32, DType::F32);
element!(f64, DType::F64);

enum Storage<T> {
    /// Shared map plus byte offset of the first element; the map outlives every view.
    Mapped {
        map: Arc<Mmap>,
        offset: usize,
        len: usize,
    },
    Owned(Vec<T>),
}

/// A typed array with a shape, backed by a memory map (zero copy) or a `Vec`.
pub struct Array<T: Element> {
    storage: Storage<T>,
    shape: Vec<usize>,
}

impl<T: Element> Array<T> {
    /// Wraps an owned vector; `shape` must multiply to `data.len()`.
    pub fn from_vec(data: Vec<T>, shape: Vec<usize>) -> Self {
        debug_assert_eq!(shape.iter().product::<usize>(), data.len());
        Array {
            storage: Storage::Owned(data),
            shape,
        }
    }

    /// A one-dimensional owned array.
    pub fn from_vec1(data: Vec<T>) -> Self {
        let n = data.len();
        Self::from_vec(data, vec![n])
    }

    /// Wraps a map region; the caller has checked alignment and bounds.
    pub(crate) fn mapped(map: Arc<Mmap>, offset: usize, len: usize, shape: Vec<usize>) -> Self {
        Array {
            storage: Storage::Mapped { map, offset, len },
            shape,
        }
    }

    /// The array's shape.
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// True when the data lives in a memory map rather than on the heap.
    pub fn is_mapped(&self) -> bool {
        matches!(self.storage, Storage::Mapped { .. })
    }

    /// Number of rows (first dimension), 1 for a scalar.
    pub fn rows(&self) -> usize {
        self.shape.first().copied().unwrap_or(1)
    }

    /// Elements per row (product of the trailing dimensions).
    pub fn row_len(&self) -> usize {
        self.shape.iter().skip(1).product()
    }

    /// Advises the kernel that the whole mapping will be needed soon (no-op for owned data).
    pub fn advise_willneed(&self) {
        #[cfg(unix)]
        if let Storage::Mapped { map, .. } = &self.storage {
            let _ = map.advise(memmap2::Advice::WillNeed);
        }
    }
}

impl<T: Element> Deref for Array<T> {
    type Target = [T];
    fn deref(&self) -> &[T] {
        match &self.storage {
            Storage::Owned(v) => v,
            Storage::Mapped { map, offset, len } => {
                let bytes = &map[*offset..*offset + *len * std::mem::size_of::<T>()];
                // Alignment and length were checked when the view was made.
                bytemuck::cast_slice(bytes)
            }
        }
    }
}

impl<T: Element + std::fmt::Debug> std::fmt::Debug for Array<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Array")
            .field("shape", &self.shape)
            .field("mapped", &self.is_mapped())
            .finish()
    }
}
