//! The `.npy` header: magic, version, and the Python-dict description of dtype and shape.

use std::path::Path;

use crate::{NpyError, Result};

/// Magic bytes every `.npy` file starts with.
pub const MAGIC: &[u8; 6] = b"\x93NUMPY";

/// Element types we read and write (little-endian only).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DType {
    Bool,
    U8,
    I8,
    I16,
    U16,
    I32,
    U32,
    I64,
    U64,
    F16,
    F32,
    F64,
}

impl DType {
    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            DType::Bool | DType::U8 | DType::I8 => 1,
            DType::I16 | DType::U16 | DType::F16 => 2,
            DType::I32 | DType::U32 | DType::F32 => 4,
            DType::I64 | DType::U64 | DType::F64 => 8,
        }
    }

    /// NumPy's `descr` string for this type.
    pub fn descr(self) -> &'static str {
        match self {
            DType::Bool => "|b1",
            DType::U8 => "|u1",
            DType::I8 => "|i1",
            DType::I16 => "<i2",
            DType::U16 => "<u2",
            DType::I32 => "<i4",
            DType::U32 => "<u4",
            DType::I64 => "<i8",
            DType::U64 => "<u8",
            DType::F16 => "<f2",
            DType::F32 => "<f4",
            DType::F64 => "<f8",
        }
    }

    fn from_descr(s: &str) -> Option<DType> {
        // '=' (native) is little-endian on every platform we build for; '|' marks one-byte types.
        let norm = s.replacen('=', "<", 1);
        let all = [
            DType::Bool,
            DType::U8,
            DType::I8,
            DType::I16,
            DType::U16,
            DType::I32,
            DType::U32,
            DType::I64,
            DType::U64,
            DType::F16,
            DType::F32,
            DType::F64,
        ];
        all.into_iter().find(|d| {
            let want = d.descr();
            norm == want || (d.size() == 1 && norm.get(1..) == want.get(1..))
        })
    }
}

/// A parsed header: dtype, shape, and where the data starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    pub dtype: DType,
    pub shape: Vec<usize>,
    /// Byte offset of the first element.
    pub data_offset: usize,
}

impl Header {
    /// Number of elements (product of the shape; 1 for a scalar). [`Header::parse`] refuses
    /// shapes whose byte size overflows, so this cannot wrap for a parsed header.
    pub fn len(&self) -> usize {
        self.shape
            .iter()
            .try_fold(1usize, |acc, &d| acc.checked_mul(d))
            .unwrap_or(usize::MAX)
    }

    /// True when the array holds no element.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Number of payload bytes the header promises.
    pub fn data_bytes(&self) -> u64 {
        (self.len() as u64).saturating_mul(self.dtype.size() as u64)
    }

    /// Parses a header from the first bytes of a file (`bytes` may hold more than the header).
    pub fn parse(bytes: &[u8], path: &Path) -> Result<Header> {
        let bad = |reason: &str| NpyError::BadHeader {
            path: path.to_path_buf(),
            reason: reason.to_string(),
        };
        if bytes.len() < 10 || &bytes[..6] != MAGIC {
            return Err(bad(
                "missing the \\x93NUMPY magic (file empty, truncated or not .npy)",
            ));
        }
        let major = bytes[6];
        let (hlen, start) = match major {
            1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10),
            2 | 3 => {
                if bytes.len() < 12 {
                    return Err(bad("truncated header"));
                }
                (
                    u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize,
                    12,
                )
            }
            v => return Err(bad(&format!("unsupported format version {v}"))),
        };
        let end = start + hlen;
        if bytes.len() < end {
            return Err(bad("truncated header"));
        }
        let text =
            std::str::from_utf8(&bytes[start..end]).map_err(|_| bad("header is not text"))?;
        let descr = dict_value(text, "descr").ok_or_else(|| bad("no 'descr' key"))?;
        let descr = descr.trim().trim_matches(|c| c == '\'' || c == '"');
        if descr.starts_with('>') {
            return Err(bad(&format!("big-endian dtype {descr} is not supported")));
        }
        let dtype =
            DType::from_descr(descr).ok_or_else(|| bad(&format!("unsupported dtype {descr}")))?;
        let fortran =
            dict_value(text, "fortran_order").ok_or_else(|| bad("no 'fortran_order' key"))?;
        match fortran.trim() {
            "False" => {}
            "True" => {
                return Err(bad(
                    "Fortran-ordered arrays are not supported; save with C order",
                ))
            }
            other => return Err(bad(&format!("bad fortran_order {other}"))),
        }
        let shape_s = dict_value(text, "shape").ok_or_else(|| bad("no 'shape' key"))?;
        let inner = shape_s
            .trim()
            .strip_prefix('(')
            .and_then(|s| s.strip_suffix(')'))
            .ok_or_else(|| bad("shape is not a tuple"))?;
        let mut shape = Vec::new();
        for part in inner.split(',') {
            let p = part.trim().trim_end_matches('L');
            if p.is_empty() {
                continue;
            }
            shape.push(
                p.parse::<usize>()
                    .map_err(|_| bad(&format!("bad shape entry {p:?}")))?,
            );
        }
        // Every size computed from the shape later (elements, bytes, offsets) must not wrap:
        // a header `(2, 2**63)` would otherwise promise 0 bytes and pass the size check.
        let bytes = shape
            .iter()
            .try_fold(dtype.size() as u64, |acc, &d| acc.checked_mul(d as u64))
            .filter(|&b| b.checked_add(end as u64).is_some() && b <= isize::MAX as u64);
        if bytes.is_none() {
            return Err(bad(&format!(
                "shape {shape:?} of {} is larger than any file can hold",
                dtype.descr()
            )));
        }
        Ok(Header {
            dtype,
            shape,
            data_offset: end,
        })
    }

    /// Encodes a version-1.0 (or 2.0 when large) header padded to 64 bytes, as NumPy does.
    pub fn encode(dtype: DType, shape: &[usize]) -> Vec<u8> {
        let shape_s = match shape.len() {
            1 => format!("({},)", shape[0]),
            _ => format!(
                "({})",
                shape
                    .iter()
                    .map(|d| d.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        };
        let mut dict = format!(
            "{{'descr': '{}', 'fortran_order': False, 'shape': {}, }}",
            dtype.descr(),
            shape_s
        );
        let v1 = dict.len() + 1 + 10 <= u16::MAX as usize;
        let prefix = if v1 { 10 } else { 12 };
        let total = (prefix + dict.len() + 1).div_ceil(64) * 64;
        while prefix + dict.len() + 1 < total {
            dict.push(' ');
        }
        dict.push('\n');
        let mut out = Vec::with_capacity(total);
        out.extend_from_slice(MAGIC);
        if v1 {
            out.extend_from_slice(&[1, 0]);
            out.extend_from_slice(&(dict.len() as u16).to_le_bytes());
        } else {
            out.extend_from_slice(&[2, 0]);
            out.extend_from_slice(&(dict.len() as u32).to_le_bytes());
        }
        out.extend_from_slice(dict.as_bytes());
        out
    }
}

/// Finds the raw text of `'key': value` in a Python dict literal (value up to the next top-level comma).
fn dict_value<'a>(text: &'a str, key: &str) -> Option<&'a str> {
    let pat1 = format!("'{key}'");
    let pat2 = format!("\"{key}\"");
    let pos = text.find(&pat1).or_else(|| text.find(&pat2))? + pat1.len();
    let rest = text[pos..].trim_start().strip_prefix(':')?;
    let mut depth = 0i32;
    for (i, c) in rest.char_indices() {
        match c {
            '(' | '[' => depth += 1,
            ')' | ']' => depth -= 1,
            ',' | '}' if depth == 0 => return Some(&rest[..i]),
            _ => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_shapes() {
        for shape in [vec![], vec![0], vec![5], vec![3, 4], vec![2, 3, 4]] {
            let h = Header::encode(DType::F32, &shape);
            assert_eq!(h.len() % 64, 0);
            let p = Header::parse(&h, Path::new("t.npy")).unwrap();
            assert_eq!(p.shape, shape);
            assert_eq!(p.dtype, DType::F32);
            assert_eq!(p.data_offset, h.len());
        }
    }

    #[test]
    fn parses_numpy_header_text() {
        let dict = "{'descr': '|b1', 'fortran_order': False, 'shape': (2708,), }";
        let mut b = MAGIC.to_vec();
        b.extend_from_slice(&[1, 0]);
        b.extend_from_slice(&(dict.len() as u16).to_le_bytes());
        b.extend_from_slice(dict.as_bytes());
        let h = Header::parse(&b, Path::new("m.npy")).unwrap();
        assert_eq!(h.dtype, DType::Bool);
        assert_eq!(h.shape, vec![2708]);
    }

    #[test]
    fn rejects_fortran_big_endian_and_garbage() {
        for dict in [
            "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 2), }",
            "{'descr': '>f4', 'fortran_order': False, 'shape': (2, 2), }",
            "{'descr': '<c8', 'fortran_order': False, 'shape': (2, 2), }",
            "{'descr': '<f4', 'fortran_order': False, 'shape': (2, x), }",
        ] {
            let mut b = MAGIC.to_vec();
            b.extend_from_slice(&[1, 0]);
            b.extend_from_slice(&(dict.len() as u16).to_le_bytes());
            b.extend_from_slice(dict.as_bytes());
            let e = Header::parse(&b, Path::new("bad.npy")).unwrap_err();
            assert!(e.to_string().contains("bad.npy"), "{e}");
        }
        assert!(Header::parse(b"hello", Path::new("x")).is_err());
        // Shapes whose size wraps 64 bits (2 * 2**63 elements = 0 mod 2**64) are refused.
        for shape in [
            "(2, 9223372036854775808)",
            "(4611686018427387904, 4)",
            "(99999999999999999999,)",
        ] {
            let dict = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': {shape}, }}");
            let mut b = MAGIC.to_vec();
            b.extend_from_slice(&[1, 0]);
            b.extend_from_slice(&(dict.len() as u16).to_le_bytes());
            b.extend_from_slice(dict.as_bytes());
            let e = Header::parse(&b, Path::new("wrap.npy"))
                .unwrap_err()
                .to_string();
            assert!(e.contains("wrap.npy"), "{e}");
        }
        assert!(Header::parse(b"\x93NUMPY\x01\x00\xff\x00{'descr'", Path::new("x")).is_err());
    }
}
