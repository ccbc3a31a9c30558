//! `Codec`: how one feature value is stored (f32, f16, or u8 with a per-column affine scale),
//! and the row encoder/decoder every store shares.

use std::fmt;
use std::str::FromStr;

use half::f16;
use half::slice::HalfFloatSliceExt;

use crate::{StoreError, U8Scale};

/// The storage format of feature values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Codec {
    /// IEEE single precision, stored exactly.
    F32,
    /// IEEE half precision (relative error below 1e-3, values up to 65504).
    F16,
    /// One byte per value, `x = min_c + q * step_c` per column `c` (error at most `step_c / 2`).
    U8,
}

impl Codec {
    /// All codecs, in order of decreasing precision.
    pub const ALL: [Codec; 3] = [Codec::F32, Codec::F16, Codec::U8];

    /// The codec's name as it appears in manifests: `f32`, `f16` or `u8`.
    pub fn name(self) -> &'static str {
        match self {
            Codec::F32 => "f32",
            Codec::F16 => "f16",
            Codec::U8 => "u8",
        }
    }

    /// Bytes one stored value takes.
    pub fn value_bytes(self) -> usize {
        match self {
            Codec::F32 => 4,
            Codec::F16 => 2,
            Codec::U8 => 1,
        }
    }
}

impl fmt::Display for Codec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Codec {
    type Err = StoreError;
    fn from_str(s: &str) -> Result<Codec, StoreError> {
        match s.trim().to_ascii_lowercase().as_str() {
            "f32" | "float32" => Ok(Codec::F32),
            "f16" | "float16" => Ok(Codec::F16),
            "u8" | "uint8" => Ok(Codec::U8),
            _ => Err(StoreError::UnknownCodec(s.to_string())),
        }
    }
}

/// One chunk of encoded rows, typed so `.npy` writers keep the dtype and SQLite gets bytes.
pub(crate) enum Encoded<'a> {
    F32(&'a [f32]),
    F16(&'a [f16]),
    U8(&'a [u8]),
}

impl Encoded<'_> {
    /// The little-endian bytes of the chunk.
    pub(crate) fn bytes(&self) -> &[u8] {
        match self {
            Encoded::F32(v) => bytemuck::cast_slice(v),
            Encoded::F16(v) => bytemuck::cast_slice(v),
            Encoded::U8(v) => v,
        }
    }
}

/// Encodes chunks of f32 rows, rejecting non-finite and out-of-range values; reuses its buffers.
pub(crate) struct Encoder<'s> {
    codec: Codec,
    dim: usize,
    scale: Option<&'s U8Scale>,
    f16_buf: Vec<f16>,
    u8_buf: Vec<u8>,
}

impl<'s> Encoder<'s> {
    /// An encoder for rows of `dim` values; `scale` is required for [`Codec::U8`].
    pub(crate) fn new(codec: Codec, dim: usize, scale: Option<&'s U8Scale>) -> Self {
        Encoder {
            codec,
            dim,
            scale,
            f16_buf: Vec::new(),
            u8_buf: Vec::new(),
        }
    }

    /// Encodes whole rows `src` whose first row is node `first_row`.
    pub(crate) fn encode<'a>(
        &'a mut self,
        first_row: usize,
        src: &'a [f32],
    ) -> Result<Encoded<'a>, StoreError> {
        check_finite(first_row, self.dim, src)?;
        match self.codec {
            Codec::F32 => Ok(Encoded::F32(src)),
            Codec::F16 => {
                self.f16_buf.resize(src.len(), f16::ZERO);
                self.f16_buf.convert_from_f32_slice(src);
                // Finite inputs above 65504 become infinite in f16: report, don't store Inf.
                if let Some(i) = self.f16_buf.iter().position(|h| h.is_infinite()) {
                    return Err(StoreError::OutOfRange {
                        row: first_row + i / self.dim.max(1),
                        col: i % self.dim.max(1),
                        value: src[i],
                        codec: "f16",
                    });
                }
                Ok(Encoded::F16(&self.f16_buf))
            }
            Codec::U8 => {
                let scale = self.scale.ok_or_else(|| {
                    StoreError::BadSource("the u8 codec needs a per-column scale".into())
                })?;
                self.u8_buf.resize(src.len(), 0);
                if self.dim > 0 {
                    for (q, x) in self
                        .u8_buf
                        .chunks_exact_mut(self.dim)
                        .zip(src.chunks_exact(self.dim))
                    {
                        scale.quantize_row(x, q);
                    }
                }
                Ok(Encoded::U8(&self.u8_buf))
            }
        }
    }
}

/// Fails on the first NaN or infinite value, naming its node (row) and column.
pub(crate) fn check_finite(first_row: usize, dim: usize, src: &[f32]) -> Result<(), StoreError> {
    // A branch-free sweep first: the common case (all finite) stays vectorised.
    if src.iter().all(|v| v.is_finite()) {
        return Ok(());
    }
    let i = src.iter().position(|v| !v.is_finite()).unwrap_or(0);
    Err(StoreError::NonFinite {
        row: first_row + i / dim.max(1),
        col: i % dim.max(1),
        value: src[i],
    })
}

/// Decodes f16 values, going through `scratch` when `bytes` is not 2-byte aligned
/// (SQLite hands out blobs at any address).
pub(crate) fn decode_f16_bytes(bytes: &[u8], scratch: &mut Vec<f16>, out: &mut [f32]) {
    match bytemuck::try_cast_slice::<u8, f16>(bytes) {
        Ok(h) => h.convert_to_f32_slice(out),
        Err(_) => {
            scratch.resize(bytes.len() / 2, f16::ZERO);
            bytemuck::cast_slice_mut::<f16, u8>(scratch).copy_from_slice(bytes);
            scratch.convert_to_f32_slice(out);
        }
    }
}

/// Decodes f32 values from bytes at any alignment.
pub(crate) fn decode_f32_bytes(bytes: &[u8], out: &mut [f32]) {
    bytemuck::cast_slice_mut::<f32, u8>(out).copy_from_slice(bytes);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for c in Codec::ALL {
            assert_eq!(c.to_string().parse::<Codec>().unwrap(), c);
        }
        assert!("f64".parse::<Codec>().is_err());
    }

    #[test]
    fn f16_roundtrip_and_overflow() {
        let src = [1.0f32, -2.5, 0.1, 1000.0];
        let mut e = Encoder::new(Codec::F16, 2, None);
        let bytes = e.encode(0, &src).unwrap().bytes().to_vec();
        let mut out = [0f32; 4];
        // Misaligned on purpose: the decoder must not care.
        let mut shifted = vec![0u8; bytes.len() + 1];
        shifted[1..].copy_from_slice(&bytes);
        decode_f16_bytes(&shifted[1..], &mut Vec::new(), &mut out);
        for (a, b) in src.iter().zip(out) {
            assert!((a - b).abs() <= 1e-3 * a.abs());
        }
        let err = e.encode(5, &[1.0, 7e4]).err().unwrap();
        assert!(
            matches!(err, StoreError::OutOfRange { row: 5, col: 1, .. }),
            "{err}"
        );
    }

    #[test]
    fn non_finite_names_row_and_column() {
        let err = check_finite(10, 3, &[0.0, 1.0, 2.0, 3.0, f32::NAN, 5.0]).unwrap_err();
        assert!(matches!(
            err,
            StoreError::NonFinite {
                row: 11,
                col: 1,
                ..
            }
        ));
        assert!(err.to_string().contains("node 11, column 1"), "{err}");
    }
}
