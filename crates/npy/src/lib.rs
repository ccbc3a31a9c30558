//! NumPy `.npy` arrays: header parsing and writing, zero-copy memory-mapped views, atomic writes.
//! Hand-written rather than `npyz`/`ndarray-npy` because we need the data offset to map the
//! payload without a copy (a 495 MB `indices.npy` opens in microseconds).

mod array;
mod error;
mod header;
mod io;

pub use array::{Array, Element};
pub use error::NpyError;
pub use header::{DType, Header};
pub use io::{
    confined, open_mmap, open_regular, read_any_as_f32, read_any_as_i64, read_array, read_from,
    read_header, write_array, write_array_atomic, write_array_unsynced, write_file_atomic,
    NpyWriter, RawArray,
};

/// Result type of this crate.
pub type Result<T> = std::result::Result<T, NpyError>;
